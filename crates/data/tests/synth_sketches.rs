//! The synthetic benchmark's `SK/` sketches: one per shot, same names, deterministic from the
//! seed, loaded through `data.sketch = "folder"`; `sketches = false` writes none.

use next_common::Progress;
use next_data::loader::{load_batch, LoadMode};
use next_data::synth::{write_synthetic, SynthConfig};
use next_data::transform::TransformConfig;
use next_data::{load_dataset, SketchSource};
use std::path::Path;

fn small(seed: u64, sketches: bool) -> SynthConfig {
    SynthConfig {
        seed,
        train_ids: 3,
        test_ids: 3,
        images_per_id: 2,
        sketches,
        ..SynthConfig::default()
    }
}

/// (name, bytes) of the files of one folder, sorted by name.
fn folder(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_shot_gets_a_grey_line_drawing_deterministic_from_the_seed() {
    let [a, b, c, off] = [(); 4].map(|_| tempfile::tempdir().unwrap());
    let summary = write_synthetic(&small(4, true), a.path(), &mut Progress::hidden(0)).unwrap();
    write_synthetic(&small(4, true), b.path(), &mut Progress::hidden(0)).unwrap();
    write_synthetic(&small(5, true), c.path(), &mut Progress::hidden(0)).unwrap();
    for split in ["train_171", "test"] {
        let sketches = folder(&a.path().join(split).join("SK"));
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&sketches),
            names(&folder(&a.path().join(split).join("RGB")))
        );
        assert_eq!(sketches, folder(&b.path().join(split).join("SK")));
        assert_ne!(sketches, folder(&c.path().join(split).join("SK")));
    }
    // One grey channel, mostly white paper, some ink.
    let first = a.path().join("train_171/SK/000001_cam2_0_00.jpg");
    let img = image::open(&first).unwrap();
    assert_eq!(img.color(), image::ColorType::L8);
    let grey = img.to_luma8();
    let white = grey.pixels().filter(|p| p.0[0] > 230).count();
    let ink = grey.pixels().filter(|p| p.0[0] < 150).count();
    let total = grey.pixels().count();
    assert!(
        white > total / 2 && ink > total / 100,
        "white {white} ink {ink} of {total}"
    );

    // The dataset config of the summary reads the sketches.
    let cfg = summary.dataset_config();
    assert_eq!(cfg.sketch, SketchSource::Folder);
    let ds = load_dataset(&cfg).unwrap();
    assert!(ds
        .train
        .iter()
        .chain(&ds.query)
        .all(|r| r.modalities().sketch && r.modalities().spectra == [true; 3]));
    let tcfg = TransformConfig::from_dataset(&cfg);
    let batch = load_batch(&ds.query, &[0, 1], &tcfg, LoadMode::Eval, 0).unwrap();
    assert_eq!(batch.sketch_present, [true, true]);
    assert!(batch.sketch.is_some_and(|s| s != batch.pixels[0]));

    let summary = write_synthetic(&small(4, false), off.path(), &mut Progress::hidden(0)).unwrap();
    assert!(!off.path().join("train_171/SK").exists() && !off.path().join("test/SK").exists());
    assert_eq!(summary.dataset_config().sketch, SketchSource::None);
    // The spectra do not depend on the sketch switch.
    assert_eq!(
        folder(&off.path().join("test/RGB")),
        folder(&a.path().join("test/RGB"))
    );
}
