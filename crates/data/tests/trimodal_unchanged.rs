//! The tri-modal path is bit-identical to the loader before sketches existed: a batch of a tiny
//! RGBNT201 replica (lossless PNGs drawn from a formula) hashes to the value recorded with the
//! loader of commit 96b3073, in train and eval mode, with sketches off and on (`folder`, `xdog`).

use burn::backend::Flex;
use next_data::loader::{load_batch, HostBatch, LoadMode};
use next_data::transform::TransformConfig;
use next_data::{load_dataset, BadSamplePolicy, DatasetConfig, DatasetKind, SketchSource};
use std::path::Path;

/// FNV-1a over the bits of every pixel value and every id of a batch.
fn batch_hash(batch: &HostBatch) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for plane in &batch.pixels {
        for v in plane {
            eat(&v.to_bits().to_le_bytes());
        }
    }
    for ids in [&batch.labels, &batch.pids, &batch.camids, &batch.sceneids] {
        for v in ids {
            eat(&v.to_le_bytes());
        }
    }
    h
}

/// A tiny RGBNT201 tree: 3 ids x 2 images per split, each modality a distinct smooth pattern.
pub fn write_replica(root: &Path) {
    for (split, first_pid) in [("train_171", 1u32), ("test", 10)] {
        for m in 0..3u32 {
            let dir = root.join(split).join(["RGB", "NI", "TI"][m as usize]);
            std::fs::create_dir_all(&dir).unwrap();
            for pid in first_pid..first_pid + 3 {
                for j in 0..2u32 {
                    let name = format!("{pid:06}_cam{}_0_{j:02}.png", j + 1);
                    let img = image::RgbImage::from_fn(20, 36, |x, y| {
                        let v = (x * 11 + y * 7 + pid * 29 + j * 13 + m * 51) % 256;
                        image::Rgb([v as u8, ((v * 3) % 256) as u8, (255 - v) as u8])
                    });
                    img.save(dir.join(name)).unwrap();
                }
            }
        }
    }
}

#[test]
fn tri_modal_batches_hash_to_the_values_recorded_before_sketches() {
    let dir = tempfile::tempdir().unwrap();
    write_replica(dir.path());
    let mut cfg = DatasetConfig::new(dir.path(), DatasetKind::Rgbnt201);
    cfg.image_size = Some([32, 16]);
    let ds = load_dataset(&cfg).unwrap();
    let tcfg = TransformConfig::from_dataset(&cfg);
    let indices: Vec<usize> = (0..ds.train.len()).collect();
    let train = load_batch(
        &ds.train,
        &indices,
        &tcfg,
        LoadMode::Train {
            seed: 7,
            epoch: 2,
            first_batch: 1,
            first_position: 0,
        },
        3,
    )
    .unwrap();
    let eval = load_batch(&ds.query, &indices, &tcfg, LoadMode::Eval, 0).unwrap();
    assert_eq!(batch_hash(&train), 0xeb05_2dd3_3713_7c41);
    assert_eq!(batch_hash(&eval), 0x40f9_f993_ac83_4b84);
}

/// Grey sketches `SK/<name>` for every image of the replica.
fn write_sketches(root: &Path) {
    for split in ["train_171", "test"] {
        let rgb = root.join(split).join("RGB");
        let sk = root.join(split).join("SK");
        std::fs::create_dir_all(&sk).unwrap();
        for entry in std::fs::read_dir(&rgb).unwrap() {
            let name = entry.unwrap().file_name();
            let img = image::GrayImage::from_fn(20, 36, |x, y| {
                image::Luma([if (x + y) % 9 == 0 { 0 } else { 255 }])
            });
            img.save(sk.join(name)).unwrap();
        }
    }
}

#[test]
fn sketches_on_leave_the_spectra_bit_identical_and_come_as_a_fourth_input() {
    let dir = tempfile::tempdir().unwrap();
    write_replica(dir.path());
    write_sketches(dir.path());
    let mut sketches = Vec::new();
    for source in [SketchSource::Folder, SketchSource::Xdog] {
        let mut cfg = DatasetConfig::new(dir.path(), DatasetKind::Rgbnt201);
        cfg.image_size = Some([32, 16]);
        cfg.sketch = source;
        let ds = load_dataset(&cfg).unwrap();
        assert!(ds
            .train
            .iter()
            .chain(&ds.query)
            .all(|r| r.modalities().sketch));
        let tcfg = TransformConfig::from_dataset(&cfg);
        let indices: Vec<usize> = (0..ds.train.len()).collect();
        let mode = LoadMode::Train {
            seed: 7,
            epoch: 2,
            first_batch: 1,
            first_position: 0,
        };
        let train = load_batch(&ds.train, &indices, &tcfg, mode, 3).unwrap();
        let eval = load_batch(&ds.query, &indices, &tcfg, LoadMode::Eval, 0).unwrap();
        assert_eq!(batch_hash(&train), 0xeb05_2dd3_3713_7c41, "{source:?}");
        assert_eq!(batch_hash(&eval), 0x40f9_f993_ac83_4b84, "{source:?}");
        for batch in [&train, &eval] {
            assert_eq!(batch.sketch_present, vec![true; 6]);
            assert_eq!(batch.present, vec![[true; 3]; 6]);
            assert_eq!(batch.sketch.as_ref().map(Vec::len), Some(6 * 3 * 32 * 16));
        }
        let tensors = eval.clone().into_tensors::<Flex>(&Default::default());
        assert_eq!(
            tensors.sketch.as_ref().map(|t| t.dims()),
            Some([6, 3, 32, 16])
        );
        assert_eq!(tensors.present, vec![[true; 3]; 6]);
        sketches.push(eval.sketch);
    }
    assert_ne!(sketches[0], sketches[1]);
}

#[test]
fn a_missing_folder_sketch_is_an_error_naming_it_or_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    write_replica(dir.path());
    let mut cfg = DatasetConfig::new(dir.path(), DatasetKind::Rgbnt201);
    cfg.sketch = SketchSource::Folder;
    let err = load_dataset(&cfg).unwrap_err().to_string();
    assert!(
        err.contains(&dir.path().join("train_171/SK").display().to_string()),
        "{err}"
    );
    write_sketches(dir.path());
    let gone = dir.path().join("test/SK/000011_cam2_0_01.png");
    std::fs::remove_file(&gone).unwrap();
    let err = load_dataset(&cfg).unwrap_err().to_string();
    assert!(
        err.contains(&gone.display().to_string()) && err.contains("missing sketch"),
        "{err}"
    );
    cfg.missing_partner = BadSamplePolicy::Skip;
    let ds = load_dataset(&cfg).unwrap();
    assert_eq!(ds.report.missing_sketches, [0, 1, 1]);
    let without: Vec<&str> = ds
        .query
        .iter()
        .filter(|r| r.sketch.is_none())
        .map(|r| r.key.as_str())
        .collect();
    assert_eq!(without, ["000011_cam2_0_01.png"]);
    // A batch mixing samples with and without sketch: zeros and a false flag for the latter.
    let tcfg = TransformConfig::from_dataset(&cfg);
    let at = ds.query.iter().position(|r| r.sketch.is_none()).unwrap();
    let batch = load_batch(&ds.query, &[at, 0], &tcfg, LoadMode::Eval, 0).unwrap();
    assert_eq!(batch.sketch_present, [false, true]);
    let sketch = batch.sketch.unwrap();
    let len = tcfg.image_len();
    assert!(sketch[..len].iter().all(|&v| v == 0.0) && sketch[len..].iter().any(|&v| v != 0.0));
}

#[test]
fn data_sketch_is_read_from_toml_and_checked_against_the_layout() {
    let origin = Path::new("run.toml");
    let cfg = DatasetConfig::from_toml_str(
        "root = \"d\"\nkind = \"text_reid\"\nsketch = \"xdog\"\n",
        origin,
    )
    .unwrap();
    assert_eq!(
        (cfg.kind, cfg.sketch),
        (DatasetKind::TextReid, SketchSource::Xdog)
    );
    let cfg =
        DatasetConfig::from_toml_str("root = \"d\"\nkind = \"market_sketch\"\n", origin).unwrap();
    assert_eq!(cfg.sketch, SketchSource::None);
    let err = DatasetConfig::from_toml_str(
        "root = \"d\"\nkind = \"msvr310\"\nsketch = \"folder\"\n",
        origin,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("run.toml") && err.contains("sketch = \"folder\"") && err.contains("MSVR310"),
        "{err}"
    );
    let err = DatasetConfig::from_toml_str(
        "root = \"d\"\nkind = \"pku_sketch\"\nsketch = \"pencil\"\n",
        origin,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("run.toml") && err.contains("pencil"), "{err}");
}
