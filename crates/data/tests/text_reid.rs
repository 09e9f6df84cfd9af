//! The text-ReID reader (CUHK-PEDES / ICFG-PEDES / RSTPReid annotation JSON) on a tiny replica,
//! and text-only query batches.

mod common;

use common::{put, tiny_jpeg};
use next_data::loader::{load_batch, LoadMode};
use next_data::transform::TransformConfig;
use next_data::{load_dataset, DatasetConfig, DatasetKind};
use serde_json::json;
use std::path::Path;

/// A replica: 3 training photos (2 ids), 2 test photos (2 ids), 1 validation photo; RSTPReid's
/// `img_path` on one entry, CUHK's `file_path` on the others.
fn replica(root: &Path, file: &str) {
    let jpg = tiny_jpeg(8, 16, 120);
    for name in [
        "CUHK01/0363004.png",
        "CUHK01/0363003.png",
        "Market/0001_c1.jpg",
        "test/a.jpg",
        "test/b.jpg",
        "val/c.jpg",
    ] {
        put(&root.join("imgs").join(name), &jpg);
    }
    let entries = json!([
        {"split": "train", "captions": ["A man in a red coat.", "He wears a red coat."], "file_path": "CUHK01/0363004.png", "processed_tokens": [["a"]], "id": 1},
        {"split": "train", "captions": ["The man walks."], "file_path": "CUHK01/0363003.png", "id": 1},
        {"split": "train", "captions": ["A woman with a bag.", "She carries a bag."], "img_path": "Market/0001_c1.jpg", "id": 2},
        {"split": "test", "captions": ["A person in grey.", "Grey hoodie, black backpack."], "file_path": "test/a.jpg", "id": 11},
        {"split": "test", "captions": ["A child."], "file_path": "test/b.jpg", "id": 12},
        {"split": "val", "captions": ["Someone."], "file_path": "val/c.jpg", "id": 13}
    ]);
    put(&root.join(file), entries.to_string().as_bytes());
}

#[test]
fn text_reid_replica_gives_caption_queries_and_photo_gallery() {
    let dir = tempfile::tempdir().unwrap();
    replica(dir.path(), "reid_raw.json");
    let cfg = DatasetConfig::new(dir.path(), DatasetKind::TextReid);
    let ds = load_dataset(&cfg).unwrap();
    // Training: one sample per (photo, caption); queries: every test caption; gallery: test photos.
    assert_eq!(
        (ds.train.len(), ds.query.len(), ds.gallery.len()),
        (5, 3, 2)
    );
    assert_eq!((ds.num_train_ids, ds.report.unused_annotations), (2, 1));
    assert!(!ds.has_camera_ids);
    let t = &ds.train[2];
    assert_eq!(
        (t.key.as_str(), t.pid, t.label),
        ("CUHK01/0363003.png#0", 1, 0)
    );
    assert_eq!(t.captions[0], "The man walks.");
    assert_eq!(
        t.images.primary(),
        dir.path().join("imgs/CUHK01/0363003.png")
    );
    assert_eq!(ds.train[3].label, 1);
    for q in &ds.query {
        let m = q.modalities();
        assert_eq!(
            (m.spectra, m.sketch, m.text, q.camid),
            ([false; 3], false, true, 0)
        );
    }
    assert_eq!(ds.query[1].captions[0], "Grey hoodie, black backpack.");
    assert_eq!(
        ds.query.iter().map(|q| q.pid).collect::<Vec<_>>(),
        [11, 11, 12]
    );
    for g in &ds.gallery {
        let m = g.modalities();
        assert_eq!(
            (m.spectra, m.text, g.camid),
            ([true, false, false], false, 1)
        );
    }
    // A text-only batch: zero spectra, nothing present, the caption in the RGB slot.
    let tcfg = TransformConfig::from_dataset(&cfg);
    let batch = load_batch(&ds.query, &[0, 2], &tcfg, LoadMode::Eval, 0).unwrap();
    assert_eq!(batch.present, vec![[false; 3]; 2]);
    assert!(batch.pixels.iter().flatten().all(|&v| v == 0.0));
    assert_eq!(
        (batch.sketch.is_none(), batch.captions[0][1].as_str()),
        (true, "A child.")
    );
    // ICFG-PEDES and RSTPReid file names are found too; data.annotations names any file.
    for name in ["ICFG-PEDES.json", "data_captions.json"] {
        let d = tempfile::tempdir().unwrap();
        replica(d.path(), name);
        assert_eq!(
            load_dataset(&DatasetConfig::new(d.path(), DatasetKind::TextReid))
                .unwrap()
                .query
                .len(),
            3
        );
    }
    let d = tempfile::tempdir().unwrap();
    replica(d.path(), "my_annotations.json");
    let err = load_dataset(&DatasetConfig::new(d.path(), DatasetKind::TextReid))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("reid_raw.json") && err.contains("data.annotations"),
        "{err}"
    );
    let named = DatasetConfig {
        annotations: Some(d.path().join("my_annotations.json")),
        ..DatasetConfig::new(d.path(), DatasetKind::TextReid)
    };
    assert_eq!(load_dataset(&named).unwrap().gallery.len(), 2);
}

#[test]
fn bad_annotations_are_errors_naming_the_file_entry_and_key() {
    let dir = tempfile::tempdir().unwrap();
    replica(dir.path(), "reid_raw.json");
    let file = dir.path().join("reid_raw.json");
    let cfg = DatasetConfig::new(dir.path(), DatasetKind::TextReid);
    let cases = [
        (json!({"split": "train"}).to_string(), "JSON list"),
        (
            json!([{"split": "train", "captions": ["x"], "file_path": "a.jpg"}]).to_string(),
            "entry 0: expected an integer `id`",
        ),
        (
            json!([{"split": "train", "captions": ["x"], "id": 3}]).to_string(),
            "`file_path` or `img_path`",
        ),
        (
            json!([{"split": "train", "captions": [], "file_path": "a.jpg", "id": 3}]).to_string(),
            "entry 0 (a.jpg): expected `captions`",
        ),
        (
            json!([{"split": "train", "captions": [1], "file_path": "a.jpg", "id": 3}]).to_string(),
            "non-empty list of strings",
        ),
        (
            json!([{"split": "dev", "captions": ["x"], "file_path": "a.jpg", "id": 3}]).to_string(),
            "\"dev\"",
        ),
        (
            json!([{"split": "test", "captions": ["x"], "file_path": "test/a.jpg", "id": 3}])
                .to_string(),
            "split \"train\"",
        ),
        (
            json!([
                {"split": "train", "captions": ["x"], "file_path": "test/a.jpg", "id": 3},
                {"split": "train", "captions": ["y"], "file_path": "test/a.jpg", "id": 3}
            ])
            .to_string(),
            "entry 1: image test/a.jpg appears twice",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&file, text).unwrap();
        let err = load_dataset(&cfg).unwrap_err().to_string();
        assert!(
            err.contains(&file.display().to_string()) && err.contains(expected),
            "{err}"
        );
    }
    // An annotation naming a missing image is found by the image check, naming the file.
    replica(dir.path(), "reid_raw.json");
    std::fs::remove_file(dir.path().join("imgs/test/b.jpg")).unwrap();
    let err = load_dataset(&cfg).unwrap_err().to_string();
    assert!(
        err.contains(&dir.path().join("imgs/test/b.jpg").display().to_string()),
        "{err}"
    );
}

#[test]
fn eval_split_val_evaluates_the_val_entries_and_a_bad_value_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    replica(dir.path(), "reid_raw.json");
    let toml =
        |split: &str| format!("root = \"d\"\nkind = \"text_reid\"\neval_split = \"{split}\"\n");
    let origin = dir.path().join("data.toml");
    let mut cfg = DatasetConfig::from_toml_str(&toml("val"), &origin).unwrap();
    cfg.root = dir.path().to_path_buf();
    let ds = load_dataset(&cfg).unwrap();
    // Queries: the val caption; gallery: the val photo; the test entries are counted, unused.
    assert_eq!(
        (ds.train.len(), ds.query.len(), ds.gallery.len()),
        (5, 1, 1)
    );
    assert_eq!(ds.report.unused_annotations, 2);
    assert_eq!(
        (ds.query[0].pid, ds.query[0].captions[0].as_str()),
        (13, "Someone.")
    );
    assert_eq!(ds.gallery[0].key, "val/c.jpg");
    assert_eq!(
        ds.gallery[0].images.primary(),
        dir.path().join("imgs/val/c.jpg")
    );
    // "test" is the default: the same dataset as without the key.
    let mut test = DatasetConfig::from_toml_str(&toml("test"), &origin).unwrap();
    test.root = dir.path().to_path_buf();
    assert_eq!(
        load_dataset(&test).unwrap().query,
        load_dataset(&DatasetConfig::new(dir.path(), DatasetKind::TextReid))
            .unwrap()
            .query
    );
    // A bad value, or val on another layout, is an error naming the key.
    let err = DatasetConfig::from_toml_str(&toml("valid"), &origin)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("eval_split") && err.contains("`test`") && err.contains("`val`"),
        "{err}"
    );
    let other = "root = \"d\"\nkind = \"rgbnt201\"\neval_split = \"val\"\n";
    let err = DatasetConfig::from_toml_str(other, &origin)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("eval_split") && err.contains("text_reid"),
        "{err}"
    );
    // An annotation file without val entries: the error names the split and the key.
    let d = tempfile::tempdir().unwrap();
    replica(d.path(), "reid_raw.json");
    let no_val = json!([
        {"split": "train", "captions": ["x"], "file_path": "test/a.jpg", "id": 1},
        {"split": "test", "captions": ["y"], "file_path": "test/b.jpg", "id": 2}
    ]);
    put(
        &d.path().join("reid_raw.json"),
        no_val.to_string().as_bytes(),
    );
    let err = load_dataset(&DatasetConfig {
        root: d.path().to_path_buf(),
        ..cfg.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("reid_raw.json") && err.contains("\"val\"") && err.contains("data.eval_split"),
        "{err}"
    );
}
