//! The sketch-ReID readers on tiny replicas of the real layouts (Market-Sketch-1K, PKU-Sketch):
//! counts, pids, cameras, modalities, bad names.

mod common;

use common::{put, tiny_jpeg};
use next_data::{
    load_dataset, BadSamplePolicy, DatasetConfig, DatasetKind, SketchImage, SketchSource,
};
use std::collections::BTreeSet;
use std::path::Path;

/// Market-Sketch-1K: 3 training ids, 2 test ids, styles A and B; one distractor photo.
fn market_sketch_replica(root: &Path) {
    let jpg = tiny_jpeg(8, 16, 90);
    for name in [
        "0002_c1s1_000451_03.jpg",
        "0002_c3s1_000551_01.jpg",
        "0007_c2s1_000001_01.jpg",
        "0011_c6s2_000101_02.jpg",
    ] {
        put(&root.join("photo/train").join(name), &jpg);
    }
    for name in [
        "0005_c1s1_001051_01.jpg",
        "0005_c4s1_001151_02.jpg",
        "0009_c2s1_000301_01.jpg",
        "-1_c1s1_000401_03.jpg",
    ] {
        put(&root.join("photo/query").join(name), &jpg);
    }
    for name in [
        "sketch/A/train/0002_A.jpg",
        "sketch/A/train/0007_A.jpg",
        "sketch/B/train/0002_B.jpg",
        "sketch/B/train/0011_B.jpg",
    ] {
        put(&root.join(name), &jpg);
    }
    for name in [
        "sketch/A/query/0005_A.jpg",
        "sketch/B/query/0005_B.jpg",
        "sketch/B/query/0009_B.jpg",
    ] {
        put(&root.join(name), &jpg);
    }
}

#[test]
fn market_sketch_replica_gives_sketch_queries_and_photo_gallery() {
    let dir = tempfile::tempdir().unwrap();
    market_sketch_replica(dir.path());
    let cfg = DatasetConfig::new(dir.path(), DatasetKind::MarketSketch);
    let ds = load_dataset(&cfg).unwrap();
    assert_eq!(
        (ds.train.len(), ds.query.len(), ds.gallery.len()),
        (8, 3, 3)
    );
    assert_eq!(ds.report.scan[2].distractors, 1);
    assert_eq!(ds.num_train_ids, 3);
    assert!(ds.has_camera_ids);
    let pids = |records: &[next_data::TripletRecord]| {
        records.iter().map(|r| r.pid).collect::<BTreeSet<_>>()
    };
    assert_eq!(pids(&ds.train), BTreeSet::from([2, 7, 11]));
    assert_eq!(pids(&ds.query), BTreeSet::from([5, 9]));
    assert_eq!(pids(&ds.gallery), BTreeSet::from([5, 9]));
    // Photos: RGB only, Market cameras; sketches: no spectrum, the camera past the last photo one.
    let photo = ds
        .gallery
        .iter()
        .find(|r| r.key == "0005_c4s1_001151_02.jpg")
        .unwrap();
    assert_eq!(
        (
            photo.camid,
            photo.modalities().spectra,
            photo.modalities().sketch
        ),
        (3, [true, false, false], false)
    );
    for q in &ds.query {
        let m = q.modalities();
        assert_eq!(
            (m.spectra, m.sketch, m.text, q.camid),
            ([false; 3], true, false, 6),
            "{}",
            q.key
        );
        assert!(
            matches!(&q.sketch, Some(SketchImage::File(p)) if p.file_name() == Path::new(&q.key).file_name())
        );
    }
    assert_eq!(
        ds.query.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["A/0005_A.jpg", "B/0005_B.jpg", "B/0009_B.jpg"]
    );
    let train_sketches = ds.train.iter().filter(|r| r.sketch.is_some()).count();
    assert_eq!(train_sketches, 4);
    // Labels are relabelled over photos and sketches together.
    let labels: BTreeSet<i64> = ds.train.iter().map(|r| r.label).collect();
    assert_eq!(labels, BTreeSet::from([0, 1, 2]));
    // XDoG gives the photos a sketch too; the drawn sketches stay files.
    let xdog = load_dataset(&DatasetConfig {
        sketch: SketchSource::Xdog,
        ..cfg.clone()
    })
    .unwrap();
    assert!(xdog
        .gallery
        .iter()
        .all(|r| r.sketch == Some(SketchImage::Xdog)));
    assert!(xdog
        .query
        .iter()
        .all(|r| matches!(r.sketch, Some(SketchImage::File(_)))));
}

#[test]
fn market_sketch_bad_names_and_missing_folders_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    market_sketch_replica(dir.path());
    let bad = dir.path().join("sketch/A/query/x12_A.jpg");
    put(&bad, &tiny_jpeg(8, 16, 90));
    let cfg = DatasetConfig::new(dir.path(), DatasetKind::MarketSketch);
    let err = load_dataset(&cfg).unwrap_err().to_string();
    assert!(
        err.contains(&bad.display().to_string()) && err.contains("4-digit pid"),
        "{err}"
    );
    let skip = DatasetConfig {
        bad_name: BadSamplePolicy::Skip,
        ..cfg.clone()
    };
    let ds = load_dataset(&skip).unwrap();
    assert_eq!((ds.query.len(), ds.report.scan[1].bad_name), (3, 1));
    std::fs::remove_file(&bad).unwrap();

    let bad_photo = dir.path().join("photo/train/0003.jpg");
    put(&bad_photo, &tiny_jpeg(8, 16, 90));
    let err = load_dataset(&cfg).unwrap_err().to_string();
    assert!(
        err.contains(&bad_photo.display().to_string()) && err.contains("Market-style"),
        "{err}"
    );
    std::fs::remove_file(&bad_photo).unwrap();

    std::fs::create_dir_all(dir.path().join("sketch/C/train")).unwrap();
    let err = load_dataset(&cfg).unwrap_err().to_string();
    assert!(
        err.contains(&dir.path().join("sketch/C/query").display().to_string()),
        "{err}"
    );
    std::fs::remove_dir_all(dir.path().join("sketch/C")).unwrap();

    std::fs::remove_dir_all(dir.path().join("photo/query")).unwrap();
    let err = load_dataset(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("photo/query") && err.contains("Market-Sketch-1K"),
        "{err}"
    );
}

/// PKU-Sketch: 8 persons, one sketch and two photos each.
fn pku_replica(root: &Path) {
    let jpg = tiny_jpeg(8, 16, 60);
    for pid in 1..=8 {
        put(&root.join(format!("sketch/{pid}.jpg")), &jpg);
        put(&root.join(format!("photo/{pid}_05_356.jpg")), &jpg);
        put(
            &root.join(format!("photo/{pid}_01_{}.jpg", 100 + pid)),
            &jpg,
        );
    }
    put(&root.join("styleAnnotation/a_4.txt"), b"1\n2\n3\n4\n");
}

#[test]
fn pku_sketch_replica_splits_a_quarter_of_the_ids_for_the_test() {
    let dir = tempfile::tempdir().unwrap();
    pku_replica(dir.path());
    let cfg = DatasetConfig::new(dir.path(), DatasetKind::PkuSketch);
    let ds = load_dataset(&cfg).unwrap();
    assert_eq!(
        (ds.train.len(), ds.query.len(), ds.gallery.len()),
        (18, 2, 4)
    );
    assert_eq!(ds.num_train_ids, 6);
    assert!(!ds.has_camera_ids);
    let test: BTreeSet<i64> = ds.query.iter().map(|r| r.pid).collect();
    assert_eq!(test, ds.gallery.iter().map(|r| r.pid).collect());
    assert!(ds.train.iter().all(|r| !test.contains(&r.pid)));
    assert!(ds
        .query
        .iter()
        .all(|r| r.camid == 0 && r.modalities().sketch && r.modalities().spectra == [false; 3]));
    assert!(ds
        .gallery
        .iter()
        .all(|r| r.camid == 1 && r.modalities().spectra == [true, false, false]));
    // The draw repeats with its seed; other seeds draw other test ids.
    assert_eq!(load_dataset(&cfg).unwrap().query, ds.query);
    let draws: BTreeSet<Vec<i64>> = (0..6)
        .map(|seed| {
            let ds = load_dataset(&DatasetConfig {
                split_seed: seed,
                ..cfg.clone()
            })
            .unwrap();
            ds.query.iter().map(|r| r.pid).collect()
        })
        .collect();
    assert!(draws.len() > 1, "{draws:?}");

    let bad = dir.path().join("sketch/abc.jpg");
    put(&bad, &tiny_jpeg(8, 16, 60));
    let err = load_dataset(&cfg).unwrap_err().to_string();
    assert!(
        err.contains(&bad.display().to_string()) && err.contains("PID.ext"),
        "{err}"
    );
    std::fs::remove_file(&bad).unwrap();
    let bad = dir.path().join("photo/7.jpg");
    put(&bad, &tiny_jpeg(8, 16, 60));
    let err = load_dataset(&cfg).unwrap_err().to_string();
    assert!(
        err.contains(&bad.display().to_string()) && err.contains("PID_rest"),
        "{err}"
    );
}

#[test]
fn market_sketch_styles_choose_the_query_and_training_sketches() {
    let dir = tempfile::tempdir().unwrap();
    market_sketch_replica(dir.path());
    let origin = dir.path().join("data.toml");
    let load = |extra: &str| {
        let text = format!("root = \"d\"\nkind = \"market_sketch\"\n{extra}");
        let mut cfg = DatasetConfig::from_toml_str(&text, &origin)?;
        cfg.root = dir.path().to_path_buf();
        load_dataset(&cfg)
    };
    let keys = |records: &[next_data::TripletRecord]| {
        records
            .iter()
            .filter(|r| r.sketch.is_some())
            .map(|r| r.key.clone())
            .collect::<Vec<_>>()
    };
    // Default: every style for both.
    let all = load("").unwrap();
    assert_eq!(keys(&all.query).len(), 3);
    assert_eq!(keys(&all.train).len(), 4);
    // Queries of style B only; training sketches of style A only (photos unchanged).
    let chosen = load("sketch_styles = [\"B\"]\ntrain_sketch_styles = [\"A\"]\n").unwrap();
    assert_eq!(keys(&chosen.query), ["B/0005_B.jpg", "B/0009_B.jpg"]);
    assert_eq!(keys(&chosen.train), ["A/0002_A.jpg", "A/0007_A.jpg"]);
    assert_eq!(chosen.gallery, all.gallery);
    assert_eq!(
        chosen.train.iter().filter(|r| r.sketch.is_none()).count(),
        all.train.iter().filter(|r| r.sketch.is_none()).count()
    );
    let a_only = load("sketch_styles = [\"A\", \"A\"]\n").unwrap();
    assert_eq!(keys(&a_only.query), ["A/0005_A.jpg"]);
    // A style that is not a folder, an empty list, or styles on another layout: errors naming
    // the key (and the styles found).
    let err = load("sketch_styles = [\"C\"]\n").unwrap_err().to_string();
    assert!(
        err.contains("data.sketch_styles") && err.contains("\"C\"") && err.contains("A, B"),
        "{err}"
    );
    let err = load("train_sketch_styles = []\n").unwrap_err().to_string();
    assert!(err.contains("train_sketch_styles"), "{err}");
    let err = DatasetConfig::from_toml_str(
        "root = \"d\"\nkind = \"pku_sketch\"\nsketch_styles = [\"A\"]\n",
        &origin,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("sketch_styles") && err.contains("market_sketch"),
        "{err}"
    );
}
