//! The training loop: PK batches, the NEXT model, ID + triplet losses, Adam with coupled weight
//! decay and per-group learning rates, warm-up + cosine schedule, periodic evaluation, best and
//! last checkpoints, JSON-lines logs, exact resume.

use crate::checkpoint::Checkpoint;
use crate::config::RunConfig;
use crate::evaluate::{batch_captions, evaluate_model, EvalSettings, ModalityMask, SettingResult};
use crate::logs::{truncate_after, JsonLines};
use crate::loss_scale::LossScaler;
use crate::params::GroupIds;
use crate::schedule::WarmupCosine;
use crate::text_cache::TextFeatureCache;
use crate::RunError;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::{AutodiffModule, Module};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, Optimizer};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ElementConversion;
use next_reid::common::Progress;
use next_reid::data::transform::mix_seed;
use next_reid::data::{train_stream, Dataset, TransformConfig};
use next_reid::model::{ClipSource, NextInput, NextModel};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to run a training.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Output folder: checkpoints, logs, curves.
    pub out_dir: PathBuf,
    /// Continue from `out_dir/last.ckpt` when it exists.
    pub resume: bool,
    /// Progress bars and per-epoch lines on stderr.
    pub verbose: bool,
    /// Testing aid: after this many completed epochs, block forever one step into the next epoch
    /// (so that a test can SIGKILL a run that has progress past its last checkpoint).
    pub hang_after_epoch: Option<usize>,
}

/// Per-epoch summary (also one line of `epochs.jsonl`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean total loss.
    pub loss: f64,
    /// Mean identity loss.
    pub id_loss: f64,
    /// Mean triplet loss.
    pub triplet_loss: f64,
    /// Mean training accuracy of the classifier.
    pub accuracy: f64,
    /// Learning rate of the non-CLIP weights.
    pub lr: f64,
    /// Steps run.
    pub steps: usize,
    /// Training images per second.
    pub samples_per_sec: f64,
    /// Evaluation (all modalities) if run this epoch.
    pub eval: Option<SettingResult>,
}

/// What a finished training returns.
pub struct TrainOutcome<B: Backend> {
    /// The final model (inference backend).
    pub model: NextModel<B>,
    /// Every epoch (including those before a resume).
    pub history: Vec<EpochRecord>,
    /// Best (epoch, mAP) seen by the periodic evaluation.
    pub best: Option<(usize, f64)>,
}

/// Build the NEXT model for a dataset: classes and cameras from the training split, CLIP random
/// or pretrained per `model.clip`. `num_cameras = 0` in the config turns SIE off.
pub fn build_model<B: Backend>(
    cfg: &RunConfig,
    dataset: &Dataset,
    device: &B::Device,
) -> Result<NextModel<B>, RunError> {
    let mut model_cfg = cfg.model.clone();
    model_cfg.num_classes = dataset.num_train_ids.max(1);
    if model_cfg.num_cameras > 0 {
        model_cfg.num_cameras = dataset.camera_table_size();
    }
    B::seed(device, mix_seed(&[cfg.solver.seed, 0x1A17]));
    Ok(match &model_cfg.clip {
        ClipSource::HfDir(_) => {
            let (model, report) = model_cfg.init_pretrained::<B>(device)?;
            if !report.missing.is_empty() {
                eprintln!(
                    "CLIP weights: {} tensors missing (random init)",
                    report.missing.len()
                );
            }
            model
        }
        ClipSource::Preset(_) => model_cfg.init::<B>(device)?,
    })
}

/// Header of a training checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    format: String,
    epochs_done: usize,
    global_step: usize,
    seed: u64,
    best: Option<(usize, f64)>,
    history: Vec<EpochRecord>,
    sampler_epoch: u64,
    config: String,
    /// Dynamic loss scale (f16 mixed precision only).
    #[serde(default)]
    loss_scaler: Option<LossScaler>,
}

type Adam<B> = burn::optim::adaptor::OptimizerAdaptor<burn::optim::Adam, NextModel<B>, B>;

fn recorder() -> BinBytesRecorder<FullPrecisionSettings> {
    BinBytesRecorder::<FullPrecisionSettings>::default()
}

fn save_checkpoint<B: AutodiffBackend>(
    path: &Path,
    state: &TrainState,
    model: &NextModel<B>,
    optim: &Adam<B>,
) -> Result<(), RunError> {
    let rec = recorder();
    let model_bytes =
        Recorder::<B>::record(&rec, model.clone().into_record(), ()).map_err(|e| {
            RunError::Other(format!("serialising the model for {}: {e}", path.display()))
        })?;
    let optim_bytes = Recorder::<B>::record(&rec, optim.to_record(), ()).map_err(|e| {
        RunError::Other(format!(
            "serialising the optimiser for {}: {e}",
            path.display()
        ))
    })?;
    let mut header = serde_json::to_value(state).map_err(|e| RunError::Other(e.to_string()))?;
    header["weights_digest"] =
        serde_json::Value::String(crate::params::weights_digest::<B, _>(model));
    Checkpoint {
        header,
        blobs: vec![
            ("model".into(), model_bytes),
            ("optimizer".into(), optim_bytes),
        ],
    }
    .save(path)?;
    Ok(())
}

/// Load model weights from a checkpoint written by training (`best.ckpt` / `last.ckpt`).
pub fn load_model_weights<B: Backend>(
    model: NextModel<B>,
    path: &Path,
    device: &B::Device,
) -> Result<NextModel<B>, RunError> {
    let ck = Checkpoint::load(path)?;
    let bytes = ck
        .blob("model")
        .ok_or_else(|| RunError::Other(format!("{}: expected a `model` part", path.display())))?;
    let record = Recorder::<B>::load::<<NextModel<B> as Module<B>>::Record>(
        &recorder(),
        bytes.to_vec(),
        device,
    )
    .map_err(|e| {
        RunError::Other(format!(
            "{}: model record does not fit this config: {e}",
            path.display()
        ))
    })?;
    Ok(model.load_record(record))
}

/// Read the run configuration saved in a training checkpoint.
pub fn checkpoint_config(path: &Path) -> Result<RunConfig, RunError> {
    let ck = Checkpoint::load(path)?;
    let text = ck
        .header
        .get("config")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            RunError::Other(format!(
                "{}: expected a `config` entry in the header",
                path.display()
            ))
        })?;
    Ok(RunConfig::from_toml_str(text, &[])?)
}

/// Train (or resume) according to `cfg`; returns the final model on the inference backend.
pub fn train<B: AutodiffBackend>(
    cfg: &RunConfig,
    dataset: &Dataset,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<TrainOutcome<B::InnerBackend>, RunError> {
    let s = &cfg.solver;
    std::fs::create_dir_all(&opts.out_dir).map_err(|e| {
        next_reid::common::FileError::new("creating output folder", &opts.out_dir, e)
    })?;
    next_reid::common::write_atomic(opts.out_dir.join("config.toml"), cfg.to_toml().as_bytes())?;
    let mut model = build_model::<B>(cfg, dataset, device)?;
    let mut adam =
        AdamConfig::new().with_weight_decay(Some(WeightDecayConfig::new(s.weight_decay as f32)));
    if s.grad_clip > 0.0 {
        adam = adam.with_grad_clipping(Some(GradientClippingConfig::Norm(s.grad_clip)));
    }
    let mut optim: Adam<B> = adam.init::<B, NextModel<B>>();
    let last_path = opts.out_dir.join("last.ckpt");
    let best_path = opts.out_dir.join("best.ckpt");
    let mut state = TrainState {
        format: "next-reid-train-v1".into(),
        epochs_done: 0,
        global_step: 0,
        seed: s.seed,
        best: None,
        history: Vec::new(),
        sampler_epoch: 0,
        config: cfg.to_toml(),
        loss_scaler: None,
    };
    let step_log_path = opts.out_dir.join("steps.jsonl");
    let epoch_log_path = opts.out_dir.join("epochs.jsonl");
    if opts.resume && last_path.exists() {
        let ck = Checkpoint::load(&last_path)?;
        state = serde_json::from_value(ck.header.clone()).map_err(|e| {
            RunError::Other(format!(
                "{}: header is not a training state: {e}",
                last_path.display()
            ))
        })?;
        model = load_model_weights(model, &last_path, device)?;
        let bytes = ck.blob("optimizer").ok_or_else(|| {
            RunError::Other(format!(
                "{}: expected an `optimizer` part",
                last_path.display()
            ))
        })?;
        let record = Recorder::<B>::load(&recorder(), bytes.to_vec(), device).map_err(|e| {
            RunError::Other(format!("{}: optimiser record: {e}", last_path.display()))
        })?;
        optim = optim.load_record(record);
        truncate_after(&step_log_path, "step", state.global_step as u64)?;
        truncate_after(&epoch_log_path, "epoch", state.epochs_done as u64)?;
        if opts.verbose {
            eprintln!(
                "resumed from {} after epoch {}",
                last_path.display(),
                state.epochs_done
            );
        }
    } else {
        for p in [&step_log_path, &epoch_log_path] {
            if p.exists() {
                std::fs::remove_file(p)
                    .map_err(|e| next_reid::common::FileError::new("removing old log", p, e))?;
            }
        }
    }
    if model.config.precision.needs_loss_scaling() && state.loss_scaler.is_none() {
        state.loss_scaler = Some(LossScaler::default());
    }
    // Parameter ids come from the checkpoint on resume: classify them only now.
    let groups = GroupIds::of_module::<B, _>(&model);
    let mut step_log = JsonLines::open(&step_log_path)?;
    let mut epoch_log = JsonLines::open(&epoch_log_path)?;
    let sampler = cfg.loader.sampler(&dataset.train, s.seed)?;
    let schedule = WarmupCosine::from_solver(s);
    let transform = TransformConfig::from_dataset(&dataset.config);
    let use_text = model.config.uses_text();
    let mut text_cache = TextFeatureCache::new();
    for epoch in state.epochs_done..s.epochs {
        let factor = schedule.factor(epoch);
        let sampler_state = sampler.state_at(epoch as u64);
        let mut stream = train_stream(
            &dataset.train,
            &sampler,
            &sampler_state,
            transform,
            cfg.loader.workers,
            cfg.loader.prefetch,
        )?;
        let mut steps = stream.remaining();
        if s.max_steps_per_epoch > 0 {
            steps = steps.min(s.max_steps_per_epoch);
        }
        let mut progress = if opts.verbose {
            Progress::new(
                format!("epoch {}/{}", epoch + 1, s.epochs),
                steps as u64,
                "step",
            )
        } else {
            Progress::hidden(steps as u64)
        };
        let started = Instant::now();
        let (mut sum_loss, mut sum_id, mut sum_tri, mut sum_acc, mut samples) =
            (0.0, 0.0, 0.0, 0.0, 0usize);
        for step in 0..steps {
            if opts.hang_after_epoch == Some(epoch) && step == 1 {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                }
            }
            let Some(batch) = stream.next_tensors::<B>(device) else {
                break;
            };
            let batch = batch?;
            let n = batch.raw_pids.len();
            B::seed(
                device,
                mix_seed(&[s.seed, epoch as u64, step as u64, 0xD20]),
            );
            let mut sentences =
                model.sentence_sampler(mix_seed(&[s.seed, epoch as u64, step as u64, 0x5E7]));
            let captions = use_text.then(|| batch_captions(&batch.captions, ModalityMask::FULL));
            // The text encoder is frozen: cached features per sampled caption are exact.
            let cached = match &captions {
                Some(c) => text_cache.training_features(&model, c, &mut sentences, device)?,
                None => None,
            };
            let output = match cached {
                Some(text) => {
                    model.forward_with_text(batch.images, Some(batch.camids), Some(text))?
                }
                None => {
                    let input = NextInput {
                        images: batch.images,
                        camera_ids: Some(batch.camids),
                        captions,
                    };
                    model.forward_train(input, &mut sentences)?
                }
            };
            let loss = model.loss(&output, batch.pids.clone());
            let total: f64 = loss.total.clone().into_scalar().elem();
            if !total.is_finite() {
                return Err(RunError::NonFinite {
                    epoch: epoch + 1,
                    step: state.global_step + 1,
                    value: total,
                    last_checkpoint: last_path.exists().then(|| last_path.clone()),
                });
            }
            let id_loss: f64 = loss.id.clone().into_scalar().elem();
            let tri_loss: f64 = loss.triplet.clone().into_scalar().elem();
            let predicted = output.logits.clone().argmax(1).flatten::<1>(0, 1);
            let correct: f64 = predicted.equal(batch.pids).int().sum().into_scalar().elem();
            let scaled = match &state.loss_scaler {
                Some(scaler) => loss.total * scaler.scale,
                None => loss.total,
            };
            let mut grads = scaled.backward();
            let mut split = groups.split(&mut grads, &model);
            let apply = match state.loss_scaler.as_mut() {
                Some(scaler) => scaler.unscale::<B, _>(split.iter_mut().map(|(_, g)| g), &model),
                None => true,
            };
            if apply {
                for (group, grads) in split {
                    let lr = group.lr(s.clip_lr * factor, s.base_lr * factor, s.bias_lr_factor);
                    model = optim.step(lr, model, grads);
                }
            }
            state.global_step += 1;
            sum_loss += total * n as f64;
            sum_id += id_loss * n as f64;
            sum_tri += tri_loss * n as f64;
            sum_acc += correct;
            samples += n;
            step_log.write(&serde_json::json!({
                "step": state.global_step, "epoch": epoch + 1, "loss": total, "id_loss": id_loss,
                "triplet_loss": tri_loss, "accuracy": correct / n as f64, "lr": s.base_lr * factor,
                "loss_scale": state.loss_scaler.as_ref().map(|l| l.scale), "applied": apply,
            }))?;
            progress.set_message(format!("loss {total:.3}"));
            progress.inc(1);
        }
        drop(stream);
        progress.finish();
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let denom = samples.max(1) as f64;
        let mut record = EpochRecord {
            epoch: epoch + 1,
            loss: sum_loss / denom,
            id_loss: sum_id / denom,
            triplet_loss: sum_tri / denom,
            accuracy: sum_acc / denom,
            lr: s.base_lr * factor,
            steps,
            samples_per_sec: samples as f64 / elapsed,
            eval: None,
        };
        let last_epoch = epoch + 1 == s.epochs;
        let eval_due = (cfg.eval.every > 0 && (epoch + 1) % cfg.eval.every == 0) || last_epoch;
        if eval_due && !dataset.query.is_empty() {
            let inner = model.valid();
            let settings = EvalSettings::from_config(cfg, false);
            let (results, ..) = evaluate_model(&inner, dataset, &settings, false, device)?;
            let all = results[0].clone();
            if state.best.is_none_or(|(_, m)| all.map > m) {
                state.best = Some((epoch + 1, all.map));
                state.epochs_done = epoch + 1;
                save_checkpoint(&best_path, &state, &model, &optim)?;
            }
            record.eval = Some(all);
        }
        if opts.verbose {
            let eval = record
                .eval
                .as_ref()
                .map(|e| format!(", mAP {:.2} R-1 {:.2}", e.map, e.rank1))
                .unwrap_or_default();
            eprintln!(
                "epoch {}: loss {:.4} (id {:.4}, tri {:.4}), acc {:.3}, lr {:.2e}, {:.1} img/s{eval}",
                record.epoch, record.loss, record.id_loss, record.triplet_loss, record.accuracy, record.lr, record.samples_per_sec
            );
        }
        epoch_log.write(&record)?;
        state.history.push(record);
        state.epochs_done = epoch + 1;
        state.sampler_epoch = epoch as u64 + 1;
        if s.checkpoint_every > 0 && ((epoch + 1) % s.checkpoint_every == 0 || last_epoch) {
            save_checkpoint(&last_path, &state, &model, &optim)?;
        }
    }
    crate::report::write_curves(&opts.out_dir, &step_log_path, &state.history)?;
    Ok(TrainOutcome {
        model: model.valid(),
        history: state.history,
        best: state.best,
    })
}
