//! Market-Sketch-1K's multi-query protocol on a tiny replica of its layout: with
//! `data.fuse_sketches` the sketches of an identity are one query (the mean of their
//! embeddings); a dataset whose queries are the gallery's own samples refuses it.

use burn::backend::Flex;
use next_common::{ModalitySet, Progress};
use next_data::{load_dataset, write_synthetic, Dataset, DatasetConfig, DatasetKind, SynthConfig};
use next_model::NextConfig;
use next_train::{evaluate_protocols, EvalSettings, Protocol};
use std::path::Path;

/// Write a small JPEG (one colour per file, so that embeddings differ).
fn put_jpeg(path: &Path, level: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(16, 32, |x, y| {
        image::Rgb([level, (x * 8) as u8 ^ level, (y * 4) as u8])
    });
    img.save_with_format(path, image::ImageFormat::Jpeg)
        .unwrap();
}

/// Market-Sketch-1K: 2 training ids; test ids 5 (sketches of styles A and B) and 9 (style B).
fn market_sketch(root: &Path, fuse: bool, styles: Option<Vec<String>>) -> Dataset {
    for (k, name) in [
        "photo/train/0002_c1s1_000451_03.jpg",
        "photo/train/0007_c2s1_000001_01.jpg",
        "photo/query/0005_c1s1_001051_01.jpg",
        "photo/query/0005_c4s1_001151_02.jpg",
        "photo/query/0009_c2s1_000301_01.jpg",
        "sketch/A/train/0002_A.jpg",
        "sketch/B/train/0007_B.jpg",
        "sketch/A/query/0005_A.jpg",
        "sketch/B/query/0005_B.jpg",
        "sketch/B/query/0009_B.jpg",
    ]
    .iter()
    .enumerate()
    {
        if !root.join(name).exists() {
            put_jpeg(&root.join(name), 20 + 23 * k as u8);
        }
    }
    let cfg = DatasetConfig {
        image_size: Some([32, 16]),
        fuse_sketches: fuse,
        sketch_styles: styles,
        ..DatasetConfig::new(root, DatasetKind::MarketSketch)
    };
    load_dataset(&cfg).unwrap()
}

/// A tiny UMM model with the sketch embedding (untrained: the protocol's bookkeeping is tested).
fn sketch_model() -> next_model::NextModel<Flex> {
    let mut cfg = NextConfig::tiny(2);
    cfg.num_cameras = 0;
    cfg.umm.enabled = true;
    cfg.query.sketch = true;
    cfg.init::<Flex>(&Default::default()).unwrap()
}

fn settings() -> EvalSettings {
    EvalSettings {
        batch_size: 8,
        workers: 1,
        max_rank: 10,
        verbose: false,
    }
}

fn sketch_to_rgb() -> Vec<Protocol> {
    vec![Protocol {
        query: ModalitySet::parse("S").unwrap(),
        gallery: ModalitySet::parse("R").unwrap(),
    }]
}

#[test]
fn fused_sketch_queries_are_one_per_identity_on_the_market_sketch_replica() {
    let dir = tempfile::tempdir().unwrap();
    let model = sketch_model();
    let device = Default::default();
    let run = |fuse: bool, styles: Option<Vec<String>>| {
        let ds = market_sketch(dir.path(), fuse, styles);
        evaluate_protocols(&model, &ds, &sketch_to_rgb(), true, &settings(), &device).unwrap()
    };
    let each = run(false, None);
    let fused = run(true, None);
    // Three sketches of two identities: three queries each on its own, two fused.
    assert_eq!(each.rows[0].queries, 3);
    assert_eq!(fused.rows[0].queries, 2);
    assert_eq!(
        (each.rows[0].query.as_str(), fused.rows[0].query.as_str()),
        ("S", "S fused")
    );
    // With one style there is one sketch per identity: fusing changes nothing.
    let one_style = Some(vec!["B".to_string()]);
    let (b_each, b_fused) = (run(false, one_style.clone()), run(true, one_style));
    assert_eq!((b_each.rows[0].queries, b_fused.rows[0].queries), (2, 2));
    for (a, b) in b_each.rows.iter().zip(&b_fused.rows) {
        assert!(
            (a.result.map - b.result.map).abs() < 1e-6,
            "{} vs {}",
            a.result.map,
            b.result.map
        );
    }
}

#[test]
fn fusing_sketches_of_queries_that_are_the_gallery_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let synth = SynthConfig {
        train_ids: 2,
        test_ids: 2,
        images_per_id: 2,
        image_size: Some([32, 16]),
        ..SynthConfig::default()
    };
    let mut cfg = write_synthetic(&synth, dir.path(), &mut Progress::hidden(0))
        .unwrap()
        .dataset_config();
    cfg.fuse_sketches = true;
    let ds = load_dataset(&cfg).unwrap();
    let device = Default::default();
    let err = evaluate_protocols(
        &sketch_model(),
        &ds,
        &sketch_to_rgb(),
        true,
        &settings(),
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("data.fuse_sketches"), "{err}");
}
