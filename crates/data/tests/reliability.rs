//! Issue 17: bad data is found when the dataset opens (every bad file at once), image headers
//! are checked against size limits before any decoding, names that are not UTF-8 and caption
//! files with a byte-order mark are handled, and every config value is range-checked by key.

mod common;

use common::*;
use next_data::decode::{decode_bytes, read_header, ImageLimits};
use next_data::{load_dataset, DataError, DatasetConfig, DatasetKind, LoaderConfig, SynthConfig};
use std::path::Path;

const RGBNT: [&str; 3] = ["RGB", "NI", "TI"];

/// A valid RGBNT201 tree: 2 train ids and 2 test ids, 2 cameras each.
fn rgbnt201(root: &Path) {
    let jpg = tiny_jpeg(4, 8, 100);
    for (split, pids) in [("train_171", [1, 2]), ("test", [10, 11])] {
        for pid in pids {
            for cam in 1..=2 {
                for f in RGBNT {
                    put(
                        &root
                            .join(split)
                            .join(f)
                            .join(format!("{pid:06}_cam{cam}_0_01.jpg")),
                        &jpg,
                    );
                }
            }
        }
    }
}

/// A JPEG whose frame header claims `width` x `height` (the scan data is that of a 4x8 image).
fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = tiny_jpeg(4, 8, 100);
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline JPEG has an SOF0 marker");
    // SOF0: marker(2) length(2) precision(1) height(2) width(2).
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

#[test]
fn a_jpeg_header_claiming_huge_dimensions_is_refused_before_decoding() {
    let huge = jpeg_claiming(60_000, 60_000);
    let path = Path::new("/data/huge.jpg");
    // Without limits this decode allocated 60000 x 60000 x 3 bytes (10 GB) and aborted.
    for err in [
        read_header(&huge, path, &ImageLimits::DEFAULT).unwrap_err(),
        decode_bytes(&huge, path, &ImageLimits::DEFAULT).unwrap_err(),
    ] {
        let text = err.to_string();
        assert!(
            text.contains("/data/huge.jpg")
                && text.contains("60000x60000")
                && text.contains("max_image_side"),
            "{text}"
        );
    }
    let small = ImageLimits { max_side: 4 };
    let err = decode_bytes(&tiny_jpeg(4, 8, 1), path, &small).unwrap_err();
    assert!(err.to_string().contains("4x8"), "{err}");
    let png = {
        let mut out = Vec::new();
        image::RgbImage::new(9, 3)
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    };
    assert!(decode_bytes(&png, path, &ImageLimits { max_side: 8 }).is_err());
    assert_eq!(
        read_header(&png, path, &ImageLimits::DEFAULT)
            .unwrap()
            .width,
        9
    );
}

#[test]
fn every_bad_image_is_reported_when_the_dataset_opens() {
    let dir = tempfile::tempdir().unwrap();
    rgbnt201(dir.path());
    let garbage = dir.path().join("test/NI/000011_cam2_0_01.jpg");
    std::fs::write(&garbage, b"this is not an image").unwrap();
    let huge = dir.path().join("test/RGB/000010_cam1_0_01.jpg");
    std::fs::write(&huge, jpeg_claiming(20_000, 100)).unwrap();
    let cut = dir.path().join("train_171/TI/000002_cam2_0_01.jpg");
    let jpg = tiny_jpeg(4, 8, 100);
    std::fs::write(&cut, &jpg[..jpg.len() / 2]).unwrap();
    let cfg = DatasetConfig::new(dir.path(), DatasetKind::Rgbnt201);
    let err = load_dataset(&cfg).unwrap_err();
    let DataError::BadImages { checked, bad } = &err else {
        panic!("expected BadImages, got {err}");
    };
    assert_eq!(*checked, 24);
    let mut paths: Vec<_> = bad.iter().map(|(p, _)| p.clone()).collect();
    paths.sort();
    let mut expected = vec![garbage.clone(), huge.clone(), cut.clone()];
    expected.sort();
    assert_eq!(paths, expected);
    let text = err.to_string();
    for p in [&garbage, &huge, &cut] {
        assert!(text.contains(&p.display().to_string()), "{text}");
    }
    assert!(
        text.contains("3 of 24") && text.contains("truncated JPEG"),
        "{text}"
    );
    // The check can be switched off; the bad files then fail when read, naming the file.
    let unchecked = DatasetConfig {
        check_images: false,
        ..cfg
    };
    assert!(load_dataset(&unchecked).is_ok());
}

#[test]
fn a_decode_failure_in_a_loader_worker_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    rgbnt201(dir.path());
    let ds = load_dataset(&DatasetConfig::new(dir.path(), DatasetKind::Rgbnt201)).unwrap();
    // Replaced after the open-time check: the worker meets it.
    let huge = dir.path().join("test/TI/000011_cam1_0_01.jpg");
    std::fs::write(&huge, jpeg_claiming(65_000, 65_000)).unwrap();
    let tf = next_data::TransformConfig::from_dataset(&ds.config);
    let results: Vec<_> = next_data::eval_stream(&ds.gallery, tf, 4, 2, 1)
        .unwrap()
        .collect();
    let err = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("the stream reports the bad file")
        .to_string();
    assert!(
        err.contains(&huge.display().to_string()) && err.contains("65000x65000"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn a_file_name_that_is_not_utf8_is_reported_at_scan_time_with_its_folder() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    rgbnt201(dir.path());
    let folder = dir.path().join("train_171/NI");
    let name = std::ffi::OsStr::from_bytes(b"000001_cam1_\xFF\xFE.jpg");
    if std::fs::write(folder.join(name), tiny_jpeg(4, 8, 1)).is_err() {
        return; // a file system that refuses such names cannot hold the case
    }
    let err = load_dataset(&DatasetConfig::new(dir.path(), DatasetKind::Rgbnt201))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&folder.display().to_string())
            && err.contains("not valid UTF-8")
            && err.contains("000001_cam1_\u{FFFD}\u{FFFD}.jpg"),
        "{err}"
    );
}

#[test]
fn caption_files_with_a_byte_order_mark_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train_RGB.json");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(br#"[{"item": "a.jpg", "description": "A person."}]"#);
    std::fs::write(&path, &bytes).unwrap();
    let table = next_data::captions::CaptionTable::read(&path).unwrap();
    assert_eq!(table.entries["a.jpg"], "A person.");
    // A BOM in the middle is still an error naming the file.
    let err = next_data::captions::CaptionTable::parse(b"[\xEF\xBB\xBF]", &path).unwrap_err();
    assert!(err.to_string().contains("train_RGB.json"), "{err}");
}

#[test]
fn every_numeric_config_value_is_range_checked_by_key() {
    let origin = Path::new("/configs/data.toml");
    let base = "root = \"x\"\nkind = \"rgbnt201\"\n";
    for (line, key) in [
        ("image_size = [256, 5000]", "image_size"),
        ("max_image_side = 0", "max_image_side"),
        ("max_image_side = 100000", "max_image_side"),
    ] {
        let err = DatasetConfig::from_toml_str(&format!("{base}{line}\n"), origin)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(key) && err.contains("data.toml"),
            "{line}: {err}"
        );
    }
    for (loader, key) in [
        (
            LoaderConfig {
                batch_size: 0,
                ..LoaderConfig::default()
            },
            "loader.batch_size",
        ),
        (
            LoaderConfig {
                instances_per_id: 0,
                ..LoaderConfig::default()
            },
            "loader.instances_per_id",
        ),
        (
            LoaderConfig {
                workers: 0,
                ..LoaderConfig::default()
            },
            "loader.workers",
        ),
        (
            LoaderConfig {
                prefetch: 0,
                ..LoaderConfig::default()
            },
            "loader.prefetch",
        ),
        (
            LoaderConfig {
                batch_size: 60,
                ..LoaderConfig::default()
            },
            "loader.batch_size",
        ),
    ] {
        let err = loader.validate().unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
    }
    assert!(LoaderConfig::default().validate().is_ok());
    for (synth, key) in [
        (
            SynthConfig {
                night_ratio: 1.5,
                ..SynthConfig::default()
            },
            "night_ratio",
        ),
        (
            SynthConfig {
                blur_ratio: f32::NAN,
                ..SynthConfig::default()
            },
            "blur_ratio",
        ),
        (
            SynthConfig {
                cameras: 1,
                ..SynthConfig::default()
            },
            "cameras",
        ),
        (
            SynthConfig {
                images_per_id: 1,
                ..SynthConfig::default()
            },
            "images_per_id",
        ),
        (
            SynthConfig {
                train_ids: usize::MAX,
                ..SynthConfig::default()
            },
            "train_ids",
        ),
        (
            SynthConfig {
                jpeg_quality: 0,
                ..SynthConfig::default()
            },
            "jpeg_quality",
        ),
        (
            SynthConfig {
                image_size: Some([8, 64]),
                ..SynthConfig::default()
            },
            "image_size",
        ),
    ] {
        let err = synth.validate().unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
    }
    assert!(SynthConfig::default().validate().is_ok());
}
