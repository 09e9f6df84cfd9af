//! Data-parallel training on the CPU backend: two replicas (threads) at a global batch of 8 give
//! the weights of the single-device run at the same batch, and resume works with another
//! device count.

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use next_common::Progress;
use next_data::{load_dataset, write_synthetic, Dataset, SynthConfig};
use next_model::{NextConfig, NextModel, TextMode};
use next_train::{train, train_parallel, DataParallel, TrainConfig, TrainOptions, TrainOutcome};
use std::path::Path;

type B = Autodiff<Flex>;

/// A synthetic set of 6 training identities, 4 images each.
fn dataset(dir: &Path) -> Dataset {
    let synth = SynthConfig {
        train_ids: 6,
        test_ids: 2,
        images_per_id: 4,
        image_size: Some([32, 16]),
        ..SynthConfig::default()
    };
    let cfg = write_synthetic(&synth, dir, &mut Progress::hidden(0))
        .unwrap()
        .dataset_config();
    load_dataset(&cfg).unwrap()
}

/// Tiny model, no dropout and no text (their random streams are per replica, see
/// `next_train::distributed`); SIE and both expert kinds on.
fn model_config() -> NextConfig {
    let mut cfg = NextConfig::tiny(1);
    cfg.text = TextMode::Off;
    cfg.num_cameras = 4;
    cfg.tmse.dropout = 0.0;
    cfg.csse.dropout = 0.0;
    cfg
}

/// 3 steps of a PK batch of 4 identities x 2 images, Adam at a learning rate that moves the
/// weights far beyond the tolerance.
fn train_config(epochs: usize) -> TrainConfig {
    let mut cfg = TrainConfig::default();
    cfg.solver.epochs = epochs;
    cfg.solver.warmup_epochs = 0;
    cfg.solver.max_steps_per_epoch = 3;
    cfg.solver.base_lr = 1e-3;
    cfg.solver.clip_lr = 1e-3;
    cfg.loader.batch_size = 8;
    cfg.loader.instances_per_id = 2;
    cfg.loader.workers = 1;
    cfg.eval.every = 0;
    cfg.eval.batch_size = 8;
    cfg
}

/// Every float parameter and buffer of `model`, flattened in visit order.
fn weights<Be: Backend>(model: &NextModel<Be>) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl<Be: Backend> ModuleVisitor<Be> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Be, D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.extend(data.to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Tolerance on the weights after 3 Adam steps (lr 1e-3, biases 2e-3: one step moves a weight
/// by up to ~1e-3). The two runs compute the same sums in another order: the gradient of a
/// backbone weight is the sum of two half-batch gradients instead of one full-batch sum (the
/// necks and losses run on the gathered batch as on one device), so gradients differ by float
/// rounding. Adam divides each gradient by its own running magnitude, so a gradient that nearly
/// cancels (a bias summed over every row and token) carries its larger relative rounding error
/// into the update: measured 5.7e-6 on such a bias (`mgfa.semantic.ffn_out.bias`), at most
/// 6e-7 on every other weight. 5e-5 is 5% of one step; per-replica BatchNorm statistics or
/// per-replica triplet mining change weights by ~1e-3 (a whole step in another direction).
const TOLERANCE: f32 = 5e-5;

/// burn-collective's in-process state is one per backend: tests that run replicas take turns.
static COLLECTIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn collective_turn() -> std::sync::MutexGuard<'static, ()> {
    COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn two_replicas_give_the_single_device_weights_and_resume_with_another_count() {
    let _turn = collective_turn();
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(&tmp.path().join("data"));
    let model_cfg = model_config();
    let cfg = train_config(1);
    let device = burn::backend::flex::FlexDevice;

    let single_dir = tmp.path().join("single");
    let single = train::<B>(
        &model_cfg,
        &cfg,
        &data,
        &TrainOptions::new(&single_dir),
        &device,
    )
    .unwrap();
    let parallel_dir = tmp.path().join("parallel");
    let parallel = train_parallel::<B>(
        &model_cfg,
        &cfg,
        &data,
        &TrainOptions::new(&parallel_dir),
        &DataParallel::local(2),
        &[device, device],
    )
    .unwrap();

    let init = {
        let resolved = next_train::resolve_model_config(&model_cfg, &data);
        let (model, _) =
            next_train::build_model::<Flex>(&resolved, cfg.solver.seed, &device).unwrap();
        weights(&model)
    };
    let (w1, w2) = (weights(&single.model), weights(&parallel.model));
    let moved = max_abs_diff(&init, &w1);
    let diff = max_abs_diff(&w1, &w2);
    eprintln!("weights moved by up to {moved}; 2 replicas vs 1 device: max |dw| = {diff}");
    assert!(
        moved > 100.0 * TOLERANCE,
        "training moved the weights by {moved}"
    );
    assert!(
        diff <= TOLERANCE,
        "2 replicas vs 1 device: max |dw| = {diff}"
    );
    let (l1, l2) = (single.history[0].loss, parallel.history[0].loss);
    assert!(
        (l1 - l2).abs() <= 1e-4 * l1.abs().max(1.0),
        "loss {l1} vs {l2}"
    );
    assert_eq!(single.history[0].steps, parallel.history[0].steps);

    // Rank 0 alone wrote the run: the same files as the single-device run.
    for name in ["last.ckpt", "steps.jsonl", "epochs.jsonl"] {
        assert!(parallel_dir.join(name).is_file(), "{name}");
    }
    let lines = |d: &Path| {
        std::fs::read_to_string(d.join("steps.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(lines(&parallel_dir), lines(&single_dir));

    // Resume the 2-replica run for a second epoch on 1 device, and the 1-device run on 2
    // replicas: both continue to the same weights.
    let more = train_config(2);
    let resume = |dir: &Path| {
        let mut options = TrainOptions::new(dir);
        options.resume = true;
        options
    };
    let from_parallel =
        train::<B>(&model_cfg, &more, &data, &resume(&parallel_dir), &device).unwrap();
    let from_single = train_parallel::<B>(
        &model_cfg,
        &more,
        &data,
        &resume(&single_dir),
        &DataParallel::local(2),
        &[device, device],
    )
    .unwrap();
    assert_eq!(from_parallel.history.len(), 2);
    assert_eq!(from_single.history.len(), 2);
    let diff = max_abs_diff(&weights(&from_parallel.model), &weights(&from_single.model));
    assert!(diff <= 2.0 * TOLERANCE, "after resume: max |dw| = {diff}");
}

#[test]
fn a_batch_that_does_not_split_into_whole_pk_groups_is_refused() {
    let _turn = collective_turn();
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(&tmp.path().join("data"));
    let mut cfg = train_config(1);
    cfg.loader.batch_size = 6; // 3 identities: not a multiple of 2 replicas
    let device = burn::backend::flex::FlexDevice;
    let err = train_parallel::<B>(
        &model_config(),
        &cfg,
        &data,
        &TrainOptions::new(tmp.path().join("run")),
        &DataParallel::local(2),
        &[device, device],
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("split evenly between the 2 ranks"), "{err}");
    assert!(!tmp.path().join("run").exists());
}

/// The value of `key` in every logged step of the run in `dir` (NaN where absent).
fn step_values(dir: &Path, key: &str) -> Vec<f64> {
    std::fs::read_to_string(dir.join("steps.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v[key].as_f64().unwrap_or(f64::NAN)
        })
        .collect()
}

/// Train `model_cfg` once on one device and once on two replicas; check that the weights agree
/// within [`TOLERANCE`] (`what` names the case in messages) and that the logged `key` loss of
/// the whole batch is positive, finite, logged every step and the same on both runs (relative
/// 1e-4). Returns both runs.
fn single_and_two_replicas_agree(
    model_cfg: &NextConfig,
    cfg: &TrainConfig,
    data: &Dataset,
    tmp: &Path,
    what: &str,
    key: &str,
) -> (TrainOutcome<Flex>, TrainOutcome<Flex>) {
    let device = burn::backend::flex::FlexDevice;
    let run = |dir: &Path, parallel: &DataParallel| {
        let devices = vec![device; parallel.devices];
        let options = TrainOptions::new(dir);
        train_parallel::<B>(model_cfg, cfg, data, &options, parallel, &devices).unwrap()
    };
    let (single_dir, parallel_dir) = (tmp.join("single"), tmp.join("parallel"));
    let single = run(&single_dir, &DataParallel::single());
    let parallel = run(&parallel_dir, &DataParallel::local(2));
    let diff = max_abs_diff(&weights(&single.model), &weights(&parallel.model));
    eprintln!("{what}, 2 replicas vs 1 device: max |dw| = {diff}");
    assert!(
        diff <= TOLERANCE,
        "{what}, 2 replicas vs 1 device: max |dw| = {diff}"
    );
    let (v1, v2) = (
        step_values(&single_dir, key),
        step_values(&parallel_dir, key),
    );
    assert_eq!(v1.len(), single.history[0].steps);
    assert_eq!(v1.len(), v2.len());
    assert!(v1.iter().all(|v| v.is_finite() && *v > 0.0), "{v1:?}");
    for (a, b) in v1.iter().zip(&v2) {
        assert!(
            (a - b).abs() <= 1e-4 * a.abs().max(1.0),
            "{key} {v1:?} vs {v2:?}"
        );
    }
    (single, parallel)
}

#[test]
fn umm_with_modality_dropout_on_two_replicas_gives_the_single_device_weights() {
    let _turn = collective_turn();
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(&tmp.path().join("data"));
    let mut model_cfg = model_config();
    model_cfg.umm.enabled = true; // fill = synth: reconstruction targets in training
    let mut cfg = train_config(1);
    cfg.umm_augment.enabled = true;
    cfg.umm_augment.p_full = 0.25;
    // The same samples dropped on either run: the same whole-batch reconstruction loss.
    let (single, parallel) =
        single_and_two_replicas_agree(&model_cfg, &cfg, &data, tmp.path(), "UMM", "rec_loss");
    let (l1, l2) = (single.history[0].loss, parallel.history[0].loss);
    assert!(
        (l1 - l2).abs() <= 1e-4 * l1.abs().max(1.0),
        "loss {l1} vs {l2}"
    );
}

#[test]
fn the_alignment_loss_on_two_replicas_gives_the_single_device_weights() {
    let _turn = collective_turn();
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(&tmp.path().join("data"));
    assert!(
        data.train.iter().all(|r| r.sketch.is_some()),
        "SK/ sketches"
    );
    // UMM with the sketch embedding, the text head (frozen encoder: its inputs are exact on
    // any rank) and the alignment loss on two subset patterns per step plus the text query.
    let mut model_cfg = model_config();
    model_cfg.umm.enabled = true;
    model_cfg.query.sketch = true;
    model_cfg.query.text_head = true;
    model_cfg.query.align.enabled = true;
    model_cfg.query.align.subsets = true;
    model_cfg.query.align.patterns_per_step = 2;
    let cfg = train_config(1);
    // The whole batch's alignment loss, logged by rank 0, is the single device's every step.
    single_and_two_replicas_agree(
        &model_cfg,
        &cfg,
        &data,
        tmp.path(),
        "alignment",
        "align_loss",
    );
}
