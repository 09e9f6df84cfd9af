//! Every bad input gives an error that names the file (or folder) and the rule it broke.

mod common;

use common::*;
use next_data::transform::TransformConfig;
use next_data::{
    eval_stream, load_dataset, BadSamplePolicy, DatasetConfig, DatasetKind, MissingCaptionPolicy,
};
use std::path::Path;

const RGBNT: [&str; 3] = ["RGB", "NI", "TI"];

/// A small valid RGBNT201 tree: 3 train ids x 2 cameras, 2 test ids x 2 cameras.
fn rgbnt201(root: &Path) {
    let jpg = tiny_jpeg(4, 8, 100);
    for pid in 1..=3 {
        for cam in 1..=2 {
            for f in RGBNT {
                put(
                    &root
                        .join("train_171")
                        .join(f)
                        .join(format!("{pid:06}_cam{cam}_0_01.jpg")),
                    &jpg,
                );
            }
        }
    }
    for pid in 10..=11 {
        for cam in 1..=2 {
            for f in RGBNT {
                put(
                    &root
                        .join("test")
                        .join(f)
                        .join(format!("{pid:06}_cam{cam}_0_01.jpg")),
                    &jpg,
                );
            }
        }
    }
}

fn err_text(cfg: &DatasetConfig) -> String {
    load_dataset(cfg).unwrap_err().to_string()
}

#[test]
fn missing_partner_is_an_error_naming_the_file_or_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    rgbnt201(dir.path());
    let victim = dir.path().join("train_171/TI/000002_cam1_0_01.jpg");
    std::fs::remove_file(&victim).unwrap();
    let mut cfg = DatasetConfig::new(dir.path(), DatasetKind::Rgbnt201);
    let err = err_text(&cfg);
    assert!(
        err.contains(&victim.display().to_string()) && err.contains("missing partner"),
        "{err}"
    );
    cfg.missing_partner = BadSamplePolicy::Skip;
    let ds = load_dataset(&cfg).unwrap();
    assert_eq!(ds.train.len(), 5);
    assert_eq!(ds.report.scan[0].missing_partner, 1);
    // An NIR image whose RGB partner is missing is caught too.
    put(
        &dir.path().join("test/NI/000099_cam1_0_01.jpg"),
        &tiny_jpeg(4, 8, 1),
    );
    cfg.missing_partner = BadSamplePolicy::Error;
    std::fs::copy(
        dir.path().join("train_171/RGB/000002_cam1_0_01.jpg"),
        &victim,
    )
    .unwrap();
    let err = err_text(&cfg);
    assert!(err.contains("test/RGB/000099_cam1_0_01.jpg"), "{err}");
}

#[test]
fn unparseable_name_is_an_error_naming_the_file_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    rgbnt201(dir.path());
    for f in RGBNT {
        put(
            &dir.path()
                .join("train_171")
                .join(f)
                .join("holiday_photo.jpg"),
            &tiny_jpeg(4, 8, 5),
        );
    }
    put(&dir.path().join("train_171/RGB/Thumbs.db"), b"not an image");
    let mut cfg = DatasetConfig::new(dir.path(), DatasetKind::Rgbnt201);
    let err = err_text(&cfg);
    assert!(
        err.contains("holiday_photo.jpg") && err.contains("PPPPPP_camC"),
        "{err}"
    );
    cfg.bad_name = BadSamplePolicy::Skip;
    let ds = load_dataset(&cfg).unwrap();
    assert_eq!(
        (
            ds.train.len(),
            ds.report.scan[0].bad_name,
            ds.report.scan[0].ignored_files
        ),
        (6, 1, 1)
    );
}

#[test]
fn empty_split_and_missing_folders_name_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    rgbnt201(dir.path());
    for f in RGBNT {
        let d = dir.path().join("test").join(f);
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::create_dir_all(&d).unwrap();
    }
    let cfg = DatasetConfig::new(dir.path(), DatasetKind::Rgbnt201);
    let err = err_text(&cfg);
    assert!(
        err.contains("empty split") && err.contains(&dir.path().join("test").display().to_string()),
        "{err}"
    );
    std::fs::remove_dir_all(dir.path().join("test/TI")).unwrap();
    let err = err_text(&cfg);
    assert!(
        err.contains("test/TI") && err.contains("missing folder"),
        "{err}"
    );
    let err = err_text(&DatasetConfig::new(
        dir.path().join("nowhere"),
        DatasetKind::MarketMm,
    ));
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn duplicate_names_in_a_split_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let jpg = tiny_jpeg(8, 4, 10);
    for vid in ["0001", "0002"] {
        for f in ["vis", "ni", "th"] {
            put(
                &dir.path()
                    .join("bounding_box_train")
                    .join(vid)
                    .join(f)
                    .join("0001_s001_v1_001.jpg"),
                &jpg,
            );
            for split in ["query3", "bounding_box_test"] {
                put(
                    &dir.path()
                        .join(split)
                        .join(vid)
                        .join(f)
                        .join(format!("{vid}_s001_v2_001.jpg")),
                    &jpg,
                );
            }
        }
    }
    let err = err_text(&DatasetConfig::new(dir.path(), DatasetKind::Msvr310));
    assert!(
        err.contains("duplicate name") && err.contains("0002/vis/0001_s001_v1_001.jpg"),
        "{err}"
    );
    assert!(err.contains("0001/vis/0001_s001_v1_001.jpg"), "{err}");
}

#[test]
fn caption_problems_name_the_files() {
    let dir = tempfile::tempdir().unwrap();
    rgbnt201(dir.path());
    let caps = dir.path().join("text");
    let entries: Vec<String> = (1..=3)
        .flat_map(|p| {
            (1..=2).map(move |c| {
                format!("{{\"item\":\"{p:06}_cam{c}_0_01.jpg\",\"description\":\"A person.\"}}")
            })
        })
        .collect();
    let train_json = format!("[{}]", entries.join(","));
    let test_json = r#"[{"item":"000010_cam1_0_01.jpg","description":""},{"item":"000010_cam2_0_01.jpg","description":"x"},{"item":"000011_cam1_0_01.jpg","description":"y"}]"#;
    for tag in RGBNT {
        put(
            &caps.join(format!("train_{tag}.json")),
            train_json.as_bytes(),
        );
        put(&caps.join(format!("test_{tag}.json")), test_json.as_bytes());
    }
    let mut cfg = DatasetConfig::new(dir.path(), DatasetKind::Rgbnt201).with_captions(&caps);
    let ds = load_dataset(&cfg).unwrap();
    // One test image without entry, one with empty text, per modality; query and gallery both.
    assert_eq!(ds.report.missing_captions[1], [1, 1, 1]);
    assert_eq!(ds.report.empty_captions[2], [1, 1, 1]);
    assert!(!ds.report.lines().is_empty());
    cfg.missing_caption = MissingCaptionPolicy::Error;
    let err = err_text(&cfg);
    assert!(
        err.contains("000011_cam2_0_01.jpg") && err.contains("test_RGB.json"),
        "{err}"
    );
    put(&caps.join("test_NI.json"), b"[{\"item\": 1}]");
    cfg.missing_caption = MissingCaptionPolicy::Empty;
    let err = err_text(&cfg);
    assert!(
        err.contains("test_NI.json") && err.contains("JSON list"),
        "{err}"
    );
    std::fs::remove_file(caps.join("train_TI.json")).unwrap();
    let err = err_text(&cfg);
    assert!(err.contains("train_TI.json"), "{err}");
}

#[test]
fn corrupt_and_truncated_images_fail_at_load_time_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    rgbnt201(dir.path());
    let ds = load_dataset(&DatasetConfig::new(dir.path(), DatasetKind::Rgbnt201)).unwrap();
    let tf = TransformConfig::from_dataset(&ds.config);
    assert!(eval_stream(&ds.gallery, tf, 2, 2, 1)
        .unwrap()
        .all(|b| b.is_ok()));
    let garbage = dir.path().join("test/NI/000011_cam2_0_01.jpg");
    std::fs::write(&garbage, b"this is not a jpeg").unwrap();
    let full =
        image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([(x * 4) as u8, (y * 4) as u8, 7]));
    let mut bytes = Vec::new();
    full.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    let truncated = dir.path().join("test/TI/000010_cam1_0_01.jpg");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let results: Vec<_> = eval_stream(&ds.gallery, tf, 2, 2, 1).unwrap().collect();
    let err = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .unwrap()
        .to_string();
    assert!(
        err.contains(&truncated.display().to_string()) && err.contains("corrupt image"),
        "{err}"
    );
    let single: Vec<_> = eval_stream(&ds.gallery[3..], tf, 1, 1, 1)
        .unwrap()
        .collect();
    let err = single[0].as_ref().unwrap_err().to_string();
    assert!(err.contains(&garbage.display().to_string()), "{err}");
    // A JPEG cut in half (the decoder alone would fill the rest with grey).
    let mut jpeg = Vec::new();
    full.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    let cut = dir.path().join("test/RGB/000011_cam1_0_01.jpg");
    std::fs::write(&cut, &jpeg[..jpeg.len() / 2]).unwrap();
    let mut stream = eval_stream(&ds.gallery[2..3], tf, 1, 1, 1).unwrap();
    let err = stream.next().unwrap().unwrap_err().to_string();
    assert!(
        err.contains(&cut.display().to_string()) && err.contains("truncated JPEG"),
        "{err}"
    );
}

#[test]
fn config_files_are_strict_and_errors_name_the_file() {
    let origin = Path::new("/configs/data.toml");
    let good = "root = \"/data/RGBNT201\"\nkind = \"rgbnt201\"\nmissing_caption = \"error\"\nimage_size = [256, 128]\n";
    let cfg = DatasetConfig::from_toml_str(good, origin).unwrap();
    assert_eq!(
        (cfg.kind, cfg.missing_caption, cfg.size()),
        (
            DatasetKind::Rgbnt201,
            MissingCaptionPolicy::Error,
            [256, 128]
        )
    );
    let err = DatasetConfig::from_toml_str(&format!("{good}colour = true\n"), origin)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/configs/data.toml") && err.contains("colour"),
        "{err}"
    );
    let err = DatasetConfig::from_toml_str(
        "root = \"x\"\nkind = \"rgbnt201\"\nimage_size = [0, 4]\n",
        origin,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("/configs/data.toml") && err.contains("image_size"),
        "{err}"
    );
    // From a file: relative paths are resolved against the file's folder; errors name the file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.toml");
    std::fs::write(
        &file,
        "root = \"RGBNT201\"\nkind = \"rgbnt201\"\ncaptions = \"text\"\n",
    )
    .unwrap();
    let cfg = DatasetConfig::from_toml_file(&file).unwrap();
    assert_eq!(
        (cfg.root, cfg.captions),
        (dir.path().join("RGBNT201"), Some(dir.path().join("text")))
    );
    let err = DatasetConfig::from_toml_file(&dir.path().join("absent.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.toml"), "{err}");
}
