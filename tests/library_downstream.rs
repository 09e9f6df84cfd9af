//! next-reid used as a downstream crate would use it, through the public API only: train two
//! epochs on a tiny synthetic set, reopen the checkpoint alone (dataset folder deleted), extract
//! features of image folders, evaluate, and the run-safety errors of the library.

use next_reid::burn::backend::{Autodiff, Flex};
use next_reid::common::Progress;
use next_reid::data::{load_dataset, write_synthetic, SynthConfig};
use next_reid::metrics::{evaluate, EvalConfig, Features};
use next_reid::model::{NextConfig, NextModel, TextMode};
use next_reid::train::{
    evaluate_model, train, EvalSettings, Extracted, FeatureExtractor, TrainConfig, TrainError,
    TrainOptions,
};
use std::collections::HashMap;
use std::path::Path;

fn synthetic(dir: &Path, train_ids: usize) -> next_reid::data::DatasetConfig {
    let synth = SynthConfig {
        train_ids,
        test_ids: 3,
        images_per_id: 4,
        image_size: Some([32, 16]),
        ..SynthConfig::default()
    };
    write_synthetic(&synth, dir, &mut Progress::hidden(0))
        .unwrap()
        .dataset_config()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The rows of `e` in the order of `keys` (matched by file name).
fn rows_by_name(e: &Extracted, keys: &[String]) -> Vec<Vec<f32>> {
    let name = |k: &str| k.rsplit(['/', '\\']).next().unwrap_or(k).to_string();
    let index: HashMap<String, usize> = e
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| (name(k), i))
        .collect();
    keys.iter()
        .map(|k| e.features.row(index[&name(k)]).to_vec())
        .collect()
}

#[test]
fn train_reopen_from_the_checkpoint_alone_extract_and_evaluate() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let dataset = load_dataset(&synthetic(&data_dir, 4)).unwrap();
    let mut model_cfg = NextConfig::tiny(1);
    model_cfg.num_cameras = 0;
    model_cfg.text = TextMode::Off;
    let mut cfg = TrainConfig::default();
    cfg.solver.epochs = 2;
    cfg.solver.warmup_epochs = 0;
    cfg.solver.max_steps_per_epoch = 2;
    cfg.solver.base_lr = 1e-3;
    cfg.solver.clip_lr = 1e-3;
    cfg.loader.batch_size = 8;
    cfg.loader.instances_per_id = 2;
    cfg.loader.workers = 1;
    cfg.eval.every = 0;
    cfg.eval.batch_size = 8;
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
    assert_eq!(outcome.history.len(), 2);
    let settings = EvalSettings::from_config(&cfg, false);
    let (results, query, _, report) =
        evaluate_model(&outcome.model, &dataset, &settings, false, &device).unwrap();
    assert_eq!(results[0].setting, "all");

    // The same run again is refused; a resume with another classifier size names the key.
    let again = train::<Autodiff<Flex>>(
        &model_cfg,
        &cfg,
        &dataset,
        &TrainOptions::new(&run),
        &device,
    );
    assert!(matches!(again, Err(TrainError::RunExists { .. })));
    let other = load_dataset(&synthetic(&tmp.path().join("other"), 5)).unwrap();
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::new(&run)
    };
    let err = train::<Autodiff<Flex>>(&model_cfg, &cfg, &other, &resume, &device)
        .err()
        .expect("another number of identities cannot resume")
        .to_string();
    assert!(
        err.contains("last.ckpt") && err.contains("model.num_classes"),
        "{err}"
    );

    // Reopen with the dataset gone: images copied out first, in the RGB/ NI/ TI/ layout.
    let images = tmp.path().join("images");
    copy_dir(&data_dir.join("test"), &images);
    std::fs::remove_dir_all(&data_dir).unwrap();
    let reopened = NextModel::<Flex>::from_checkpoint(run.join("last.ckpt"), &device).unwrap();
    assert_eq!(reopened.config.num_classes, dataset.num_train_ids);
    let extractor = FeatureExtractor::<Flex>::from_checkpoint(run.join("last.ckpt"), &device)
        .unwrap()
        .with_batch_size(8);
    assert_eq!(extractor.transform().size, [32, 16]);
    let features = extractor.extract_folder(&images).unwrap();
    assert_eq!(features.features.rows(), query.features.rows());
    let got = rows_by_name(&features, &query.keys);
    let mut max_diff = 0.0f32;
    for (row, expected) in got.iter().zip(0..) {
        for (a, b) in row.iter().zip(query.features.row(expected)) {
            max_diff = max_diff.max((a - b).abs());
        }
    }
    // Same weights and transform; f32 batch composition may differ: 1e-4 on unit vectors.
    assert!(max_diff < 1e-4, "reopened features differ by {max_diff}");

    let flat: Vec<f32> = got.concat();
    let reordered = Features::new(flat, got.len(), query.features.dim()).unwrap();
    let again = evaluate(
        &reordered,
        &reordered,
        &query.meta,
        &query.meta,
        &EvalConfig {
            max_rank: settings.max_rank,
            ..EvalConfig::default()
        },
    )
    .unwrap();
    assert!(
        (again.map - report.map).abs() < 1e-6,
        "{} vs {}",
        again.map,
        report.map
    );
    let lists = extractor.search(&features, &features, 3).unwrap();
    assert_eq!(lists.len(), features.features.rows());
    assert!(lists.iter().all(|l| l.len() == 3));
}
