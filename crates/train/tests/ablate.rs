//! `ablate` on a tiny budget: two Table IV rows over two seeds give one result per seed, the
//! summary is their mean, and a second call reuses the finished runs instead of retraining.

use burn::backend::{Autodiff, Flex};
use next_common::Progress;
use next_data::{load_dataset, write_synthetic, SynthConfig};
use next_model::{NextConfig, TextMode};
use next_train::{ablate, ablation_rows, mean_std, AblationOptions, AblationSuite, TrainConfig};

#[test]
fn two_rows_two_seeds_then_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let synth = SynthConfig {
        train_ids: 4,
        test_ids: 3,
        images_per_id: 4,
        image_size: Some([32, 16]),
        ..SynthConfig::default()
    };
    let written =
        write_synthetic(&synth, &tmp.path().join("data"), &mut Progress::hidden(0)).unwrap();
    let dataset = load_dataset(&written.dataset_config()).unwrap();
    let mut base = NextConfig::tiny(1);
    base.num_cameras = 0;
    base.text = TextMode::Optional;
    base.sentence_keep_prob = 1.0;
    let mut rows = ablation_rows(&base, &[AblationSuite::TableIv]);
    rows.retain(|r| r.name == "iv-a-class-tokens" || r.name == "iv-d-tmse-csse");
    let mut cfg = TrainConfig::default();
    cfg.solver.epochs = 1;
    cfg.solver.warmup_epochs = 0;
    cfg.loader.batch_size = 4;
    cfg.loader.instances_per_id = 2;
    cfg.loader.workers = 1;
    cfg.eval.missing_modalities = false;
    let opts = AblationOptions {
        out_dir: tmp.path().join("ablation"),
        seeds: vec![1, 2],
        verbose: false,
    };
    let device = Default::default();
    let first = ablate::<Autodiff<Flex>>(&rows, &dataset, &cfg, &opts, &device).unwrap();
    assert_eq!(first.len(), 2);
    for row in &first {
        assert_eq!(row.runs.iter().map(|r| r.seed).collect::<Vec<_>>(), [1, 2]);
        assert!(row.maps().iter().all(|m| (0.0..=100.0).contains(m)));
        let (mean, _) = mean_std(&row.maps());
        assert!((mean - (row.runs[0].map + row.runs[1].map) / 2.0).abs() < 1e-9);
    }
    let result = opts.out_dir.join("iv-d-tmse-csse/seed-2/result.json");
    let written_at = std::fs::metadata(&result).unwrap().modified().unwrap();
    assert!(opts.out_dir.join("ablation.json").is_file());

    let again = ablate::<Autodiff<Flex>>(&rows, &dataset, &cfg, &opts, &device).unwrap();
    // Read back from JSON: equal up to the last digit of the printed floats.
    assert_eq!(again.len(), first.len());
    for (a, b) in again.iter().zip(&first) {
        assert_eq!((&a.name, a.runs.len()), (&b.name, b.runs.len()));
        for (x, y) in a.runs.iter().zip(&b.runs) {
            assert_eq!((x.seed, &x.model), (y.seed, &y.model));
            assert!((x.map - y.map).abs() < 1e-9 && (x.rank1 - y.rank1).abs() < 1e-9);
        }
    }
    assert_eq!(
        std::fs::metadata(&result).unwrap().modified().unwrap(),
        written_at,
        "a finished run is read back, not retrained"
    );
}
