//! UMM end to end through the library: two steps of training with the synthetic modality
//! augmentation (captions on, through the text-feature cache), the reconstruction loss in the
//! step log, then the missing / uncertain evaluation with every fill and the token cosine.

use burn::backend::{Autodiff, Flex};
use next_common::Progress;
use next_data::{load_dataset, write_synthetic, PixelSynth, SynthConfig};
use next_model::{NextConfig, TextMode};
use next_train::logs::read_json_lines;
use next_train::{evaluate_umm, format_umm_table, train, EvalSettings, TrainConfig, TrainOptions};

/// A tiny synthetic benchmark in `dir` and a two-step UMM training configuration on it.
fn tiny_setup(dir: &std::path::Path) -> (next_data::Dataset, NextConfig, TrainConfig) {
    let synth = SynthConfig {
        train_ids: 4,
        test_ids: 3,
        images_per_id: 4,
        image_size: Some([32, 16]),
        ..SynthConfig::default()
    };
    let written = write_synthetic(&synth, &dir.join("data"), &mut Progress::hidden(0)).unwrap();
    let dataset = load_dataset(&written.dataset_config()).unwrap();
    let mut model_cfg = NextConfig::tiny(1);
    model_cfg.num_cameras = 0;
    model_cfg.text = TextMode::Optional;
    model_cfg.sentence_keep_prob = 1.0;
    model_cfg.umm.enabled = true;
    let mut cfg = TrainConfig::default();
    cfg.solver.epochs = 1;
    cfg.solver.warmup_epochs = 0;
    cfg.solver.max_steps_per_epoch = 2;
    cfg.loader.batch_size = 8;
    cfg.loader.instances_per_id = 2;
    cfg.loader.workers = 1;
    cfg.eval.every = 0;
    cfg.eval.batch_size = 8;
    cfg.umm_augment.enabled = true;
    (dataset, model_cfg, cfg)
}

#[test]
fn shadow_drops_give_l_rec_on_complete_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let (dataset, model_cfg, mut cfg) = tiny_setup(tmp.path());
    cfg.umm_augment.p_full = 1.0;
    let device = Default::default();
    let mut rec_losses = Vec::new();
    for shadow_prob in [0.0, 1.0] {
        cfg.umm_augment.shadow_prob = shadow_prob;
        let run = tmp.path().join(format!("run-{shadow_prob}"));
        train::<Autodiff<Flex>>(
            &model_cfg,
            &cfg,
            &dataset,
            &TrainOptions::new(&run),
            &device,
        )
        .unwrap();
        let steps = read_json_lines(&run.join("steps.jsonl")).unwrap();
        assert_eq!(steps.len(), 2);
        rec_losses.push(
            steps
                .iter()
                .map(|s| s["rec_loss"].as_f64().unwrap_or(0.0))
                .collect::<Vec<_>>(),
        );
    }
    // p_full = 1: nothing is dropped, so without shadow drops there is no target at all; with
    // shadow_prob = 1 every sample has one.
    assert!(rec_losses[0].iter().all(|&r| r == 0.0), "{rec_losses:?}");
    assert!(
        rec_losses[1].iter().all(|&r| r.is_finite() && r > 0.0),
        "{rec_losses:?}"
    );
}

#[test]
fn tiny_umm_training_logs_l_rec_and_evaluates_every_fill() {
    let tmp = tempfile::tempdir().unwrap();
    let (dataset, model_cfg, mut cfg) = tiny_setup(tmp.path());
    cfg.umm_augment.p_full = 0.0;
    cfg.umm_augment.pixel_synth = PixelSynth::ChannelAug;
    let device = Default::default();
    let run = tmp.path().join("run");
    let outcome = train::<Autodiff<Flex>>(
        &model_cfg,
        &cfg,
        &dataset,
        &TrainOptions::new(&run),
        &device,
    )
    .unwrap();
    let steps = read_json_lines(&run.join("steps.jsonl")).unwrap();
    assert_eq!(steps.len(), 2);
    // p_full = 0: every sample misses a modality, so every step has reconstruction targets.
    for step in &steps {
        let rec = step["rec_loss"].as_f64().expect("rec_loss logged");
        assert!(rec.is_finite() && rec > 0.0, "{step}");
    }

    let settings = EvalSettings::from_config(&cfg, false);
    let report = evaluate_umm(&outcome.model, &dataset, &settings, &device).unwrap();
    let fills: Vec<&str> = report.missing.iter().map(|f| f.fill.as_str()).collect();
    assert_eq!(fills, ["zero", "synth", "drop"]);
    for f in &report.missing {
        let names: Vec<&str> = f.settings.iter().map(|s| s.setting.as_str()).collect();
        assert_eq!(names, ["-R", "-N", "-T", "-RN", "-RT", "-NT"]);
        let mean = f.settings.iter().map(|s| s.map).sum::<f64>() / 6.0;
        assert!((f.average.map - mean).abs() < 1e-9);
        assert!((f.retention - f.average.map / report.full.map).abs() < 1e-9);
    }
    let uncertain: Vec<&str> = report
        .uncertain
        .iter()
        .map(|s| s.setting.as_str())
        .collect();
    assert_eq!(uncertain, ["night_rgb", "noisy_nir", "blurred_tir"]);
    let cosine = report
        .cosine
        .as_ref()
        .expect("a UMM model reports the cosine");
    assert_eq!(cosine.samples, dataset.query.len());
    assert!(cosine
        .synthesized
        .iter()
        .all(|c| c.is_finite() && c.abs() <= 1.0 + 1e-6));
    // The fill is a test-time switch: the model's own fill is left as configured.
    assert_eq!(outcome.model.config.umm.fill, model_cfg.umm.fill);
    let table = format_umm_table(&report);
    for row in ["zero", "synth", "drop", "night_rgb", "synthesised"] {
        assert!(table.contains(row), "{row} missing from\n{table}");
    }
    println!("{table}");
}
