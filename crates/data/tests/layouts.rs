//! RGBNT100 strips, Market1501-MM distractors and the custom layout.

mod common;

use common::*;
use next_data::transform::{load_triplet, TransformConfig};
use next_data::{eval_stream, load_dataset, DatasetConfig, DatasetKind, TripletImages};

fn strip_png(level: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_fn(768, 128, |x, _| {
        let third = (x / 256) as usize;
        let mut px = [0u8; 3];
        px[third] = level[third];
        image::Rgb(px)
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[test]
fn rgbnt100_strips_are_cut_into_three_modalities() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("rgbir");
    let png = strip_png([200, 150, 100]);
    for (split, names) in [
        (
            "bounding_box_train",
            vec!["0001_c0001_001.png", "0002_c0003_001.png"],
        ),
        ("query", vec!["0561_c0002_006.png"]),
        (
            "bounding_box_test",
            vec!["0561_c0004_007.png", "-1_c0001_001.png"],
        ),
    ] {
        for n in names {
            put(&base.join(split).join(n), &png);
        }
    }
    let ds = load_dataset(&DatasetConfig::new(dir.path(), DatasetKind::Rgbnt100)).unwrap();
    assert_eq!(
        (ds.train.len(), ds.query.len(), ds.gallery.len()),
        (2, 1, 1)
    );
    assert_eq!(ds.report.scan[2].distractors, 1);
    assert_eq!((ds.query[0].pid, ds.query[0].camid), (561, 1));
    assert!(matches!(ds.train[0].images, TripletImages::Strip(_)));
    let [r, n, t] = load_triplet(&ds.train[0].images).unwrap();
    assert_eq!(r.dimensions(), (256, 128));
    assert_eq!(
        (
            r.get_pixel(5, 5).0,
            n.get_pixel(5, 5).0,
            t.get_pixel(250, 120).0
        ),
        ([200, 0, 0], [0, 150, 0], [0, 0, 100])
    );
    // Through the loader: size 128x256, normalised with 0.5/0.5.
    let tf = TransformConfig::from_dataset(&ds.config);
    let batch = eval_stream(&ds.train, tf, 2, 1, 1)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let plane = 128 * 256;
    let expect = |v: u8| (v as f32 / 255.0 - 0.5) / 0.5;
    assert!((batch.pixels[0][0] - expect(200)).abs() < 1e-5);
    assert!((batch.pixels[1][plane] - expect(150)).abs() < 1e-5);
    assert!((batch.pixels[2][2 * plane] - expect(100)).abs() < 1e-5);
    assert!((batch.pixels[2][0] - expect(0)).abs() < 1e-5);
    // A strip whose width is not three crops is rejected, naming the file.
    let bad = base.join("bounding_box_train/0003_c0001_001.jpg");
    put(&bad, &tiny_jpeg(10, 4, 3));
    // Found when the dataset opens ...
    let cfg = DatasetConfig::new(dir.path(), DatasetKind::Rgbnt100);
    let err = load_dataset(&cfg).unwrap_err().to_string();
    assert!(
        err.contains(&bad.display().to_string()) && err.contains("divisible by 3"),
        "{err}"
    );
    // ... and, with the check off, when it is read.
    let unchecked = DatasetConfig {
        check_images: false,
        ..cfg
    };
    let ds = load_dataset(&unchecked).unwrap();
    let rec = ds.train.iter().find(|r| r.key.starts_with("0003")).unwrap();
    let err = load_triplet(&rec.images).unwrap_err().to_string();
    assert!(
        err.contains(&bad.display().to_string()) && err.contains("divisible by 3"),
        "{err}"
    );
}

#[test]
fn market_mm_skips_pid_minus_one_and_keeps_pid_zero() {
    let dir = tempfile::tempdir().unwrap();
    let jpg = tiny_jpeg(4, 8, 50);
    let names = [
        ("train", "0002_c1s1_000451_03.jpg"),
        ("train", "0007_c6s2_000100_01.jpg"),
        ("query", "0003_c2s1_000151_01.jpg"),
        ("gallery", "-1_c1s1_000401_03.jpg"),
        ("gallery", "0000_c3s1_000551_02.jpg"),
        ("gallery", "0003_c4s1_000551_02.jpg"),
    ];
    for (split, n) in names {
        for f in ["RGB", "NI", "TI"] {
            put(&dir.path().join(split).join(f).join(n), &jpg);
        }
    }
    let ds = load_dataset(&DatasetConfig::new(dir.path(), DatasetKind::MarketMm)).unwrap();
    let gallery: Vec<(i64, i64)> = ds.gallery.iter().map(|r| (r.pid, r.camid)).collect();
    assert_eq!(gallery, vec![(0, 2), (3, 3)]);
    assert_eq!(ds.report.scan[2].distractors, 1);
    assert_eq!(
        ds.train
            .iter()
            .map(|r| (r.pid, r.label, r.camid))
            .collect::<Vec<_>>(),
        vec![(2, 0, 0), (7, 1, 5)]
    );
}

#[test]
fn custom_layout_without_cameras_evaluates_across_query_and_gallery() {
    let dir = tempfile::tempdir().unwrap();
    let jpg = tiny_jpeg(4, 8, 50);
    for (split, n) in [
        ("train", "5_a.jpg"),
        ("train", "9_b.jpg"),
        ("query", "5_q.png"),
        ("gallery", "5_g.jpg"),
    ] {
        for f in ["RGB", "NI", "TI"] {
            put(&dir.path().join(split).join(f).join(n), &jpg);
        }
    }
    let ds = load_dataset(&DatasetConfig::new(dir.path(), DatasetKind::Custom)).unwrap();
    assert!(!ds.has_camera_ids);
    assert_eq!((ds.query[0].camid, ds.gallery[0].camid), (0, 1));
    assert_eq!(ds.num_train_ids, 2);
    // Mixing names with and without cameras is rejected, naming the file.
    for f in ["RGB", "NI", "TI"] {
        put(&dir.path().join("gallery").join(f).join("5_c2_x.jpg"), &jpg);
    }
    let err = load_dataset(&DatasetConfig::new(dir.path(), DatasetKind::Custom))
        .unwrap_err()
        .to_string();
    assert!(err.contains("5_") && err.contains("camera field"), "{err}");
}
