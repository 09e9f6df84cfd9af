//! Real-layout replicas built from the real file names of the NEXT caption files: the loader must
//! find the published counts.

mod common;

use common::*;
use next_data::{load_dataset, DatasetConfig, DatasetKind, Split};
use std::collections::BTreeSet;

#[test]
fn rgbnt201_replica_has_published_counts_and_captions() {
    let root = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let jpg = tiny_jpeg_file(src.path(), 4, 8, 90);
    let rgbnt = ["RGB", "NI", "TI"];
    for name in caption_items("201", "train_RGB.json") {
        put_triplet(&root.path().join("train_171"), rgbnt, &name, &jpg);
    }
    for name in caption_items("201", "test_RGB.json") {
        put_triplet(&root.path().join("test"), rgbnt, &name, &jpg);
    }
    let cfg =
        DatasetConfig::new(root.path(), DatasetKind::Rgbnt201).with_captions(captions_dir("201"));
    let ds = load_dataset(&cfg).unwrap();
    assert_eq!(ds.train.len(), 3951);
    assert_eq!(ds.num_train_ids, 171);
    assert_eq!(ds.num_train_cams, 4);
    assert_eq!(ds.query.len(), 836);
    assert_eq!(ds.gallery.len(), 836);
    assert_eq!(
        ds.query
            .iter()
            .map(|r| r.pid)
            .collect::<BTreeSet<_>>()
            .len(),
        30
    );
    assert_eq!(ds.report.total_missing_captions(), 0);
    // Relabelling: ascending raw pids map to 0..170.
    let labels: BTreeSet<i64> = ds.train.iter().map(|r| r.label).collect();
    assert_eq!(labels, (0..171).collect());
    let min_pid = ds.train.iter().map(|r| r.pid).min().unwrap();
    assert!(ds
        .train
        .iter()
        .filter(|r| r.pid == min_pid)
        .all(|r| r.label == 0));
    let r = ds
        .train
        .iter()
        .find(|r| r.key == "000030_cam1_1_12.jpg")
        .unwrap();
    assert_eq!((r.pid, r.camid), (30, 0));
    assert!(r.captions[0].starts_with("An adult female seen from the back during nighttime"));
    assert!(r.captions[2].starts_with("An adult female seen from the back."));
    // Test captions come from test_*.json, chosen by split, not by path text.
    assert!(ds.query.iter().all(|r| !r.captions[1].is_empty()));
    assert_eq!(ds.split(Split::Gallery).len(), 836);
}

#[test]
fn msvr310_replica_has_published_counts_and_scene_ids() {
    let root = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let jpg = tiny_jpeg_file(src.path(), 8, 4, 40);
    let folders = ["vis", "ni", "th"];
    for (split, file) in [
        ("bounding_box_train", "train_RGB.json"),
        ("bounding_box_test", "test_RGB.json"),
    ] {
        for name in caption_items("310", file) {
            put_triplet(
                &root.path().join(split).join(&name[..4]),
                folders,
                &name,
                &jpg,
            );
        }
    }
    // query3: the first image of every test vehicle (a subset of the gallery names).
    let mut seen = BTreeSet::new();
    for name in caption_items("310", "test_RGB.json") {
        if seen.insert(name[..4].to_string()) {
            put_triplet(
                &root.path().join("query3").join(&name[..4]),
                folders,
                &name,
                &jpg,
            );
        }
    }
    let cfg =
        DatasetConfig::new(root.path(), DatasetKind::Msvr310).with_captions(captions_dir("310"));
    let ds = load_dataset(&cfg).unwrap();
    assert_eq!(ds.train.len(), 1032);
    assert_eq!(ds.gallery.len(), 1055);
    assert_eq!(ds.num_train_ids, 155);
    assert_eq!(
        ds.gallery
            .iter()
            .map(|r| r.pid)
            .collect::<BTreeSet<_>>()
            .len(),
        155
    );
    assert_eq!(ds.query.len(), 155);
    assert_eq!(ds.num_train_cams, 8);
    assert_eq!(
        ds.train
            .iter()
            .map(|r| r.sceneid)
            .collect::<BTreeSet<_>>()
            .len(),
        30
    );
    let r = ds
        .train
        .iter()
        .find(|r| r.key == "0038_s014_v7_003.jpg")
        .unwrap();
    assert_eq!((r.pid, r.camid, r.sceneid), (38, 7, 14));
    assert!(r.captions[0].contains("Benz") || !r.captions[0].is_empty());
    assert_eq!(ds.report.total_missing_captions(), 0);
    assert_eq!(ds.config.size(), [128, 256]);
}

#[test]
fn wmveid863_replica_has_camids_and_vid_prefixed_caption_keys() {
    let root = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let jpg = tiny_jpeg_file(src.path(), 8, 4, 200);
    let folders = ["vis", "ni", "th"];
    let mut test_names = BTreeSet::new();
    for (split, prefix) in [("train", "train"), ("test", "test")] {
        // Train: the RGB caption names (3482 triplets); test: the union of the three files.
        let mut names = BTreeSet::new();
        let tags: &[&str] = if split == "train" {
            &["RGB"]
        } else {
            &["RGB", "NI", "TI"]
        };
        for tag in tags {
            names.extend(caption_items("863", &format!("{prefix}_{tag}.json")));
        }
        for key in &names {
            let (vid, file) = key.split_at(4);
            put_triplet(
                &root.path().join(split).join(vid),
                folders,
                &file[1..],
                &jpg,
            );
        }
        if split == "test" {
            test_names = names;
        }
    }
    let mut seen = BTreeSet::new();
    for key in &test_names {
        if seen.insert(key[..4].to_string()) {
            put_triplet(
                &root.path().join("query").join(&key[..4]),
                folders,
                &key[5..],
                &jpg,
            );
        }
    }
    let cfg =
        DatasetConfig::new(root.path(), DatasetKind::Wmveid863).with_captions(captions_dir("863"));
    let ds = load_dataset(&cfg).unwrap();
    assert_eq!(ds.train.len(), 3482);
    assert_eq!(ds.num_train_ids, 603);
    assert_eq!(ds.gallery.len(), 1232);
    let r = ds
        .train
        .iter()
        .find(|r| r.key == "0258_v2_n9_s000_022.jpg")
        .unwrap();
    assert_eq!((r.pid, r.camid, r.sceneid), (258, 2, 0));
    assert!(
        r.captions.iter().all(|c| c.contains("viewed from")),
        "{:?}",
        r.captions
    );
    let g = ds
        .gallery
        .iter()
        .find(|r| r.key == "0483_v7_n0_s999_004.jpg")
        .unwrap();
    assert_eq!((g.pid, g.camid, g.sceneid), (483, 7, 999));
    // The caption files leave a few images without entry: counted per split and modality.
    assert_eq!(ds.report.missing_captions[Split::Train.index()], [0, 1, 1]);
    assert_eq!(
        ds.report.missing_captions[Split::Gallery.index()],
        [4, 0, 1]
    );
    assert!(ds
        .train
        .iter()
        .map(|r| r.camid)
        .all(|c| (0..=9).contains(&c)));
}
