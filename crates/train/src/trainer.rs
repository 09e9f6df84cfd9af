//! The training loop: PK batches, the NEXT model, ID + triplet losses, Adam with coupled weight
//! decay and per-group learning rates, warm-up + cosine schedule, periodic evaluation, best and
//! last checkpoints, JSON-lines logs, exact resume.
//!
//! [`prepare`] checks everything (configuration ranges, the output folder, the checkpoint to
//! resume and its architecture) without writing anything; [`Training::run`] then trains.

use crate::distributed::Replica;
use crate::evaluate::{batch_captions, evaluate_model, EvalSettings, ModalityMask, SettingResult};
use crate::logs::{truncate_after, JsonLines};
use crate::loss_scale::LossScaler;
use crate::params::GroupIds;
use crate::schedule::WarmupCosine;
use crate::text_cache::TextFeatureCache;
use crate::{TrainConfig, TrainError};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, Optimizer};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ElementConversion;
use next_common::{FileError, Progress};
use next_data::transform::mix_seed;
use next_data::{train_stream_shard, Dataset, TransformConfig};
use next_model::{Checkpoint, LoadReport, ModelError, NextConfig, NextInput, NextModel};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Called before every training step (e.g. to report progress or to stop a run in a test).
pub type StepHook = Arc<dyn Fn(&StepInfo) + Send + Sync>;

/// Where a training is, given to a [`StepHook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepInfo {
    /// 0-based epoch.
    pub epoch: usize,
    /// 0-based step within the epoch.
    pub step: usize,
    /// Steps completed so far over the whole run.
    pub global_step: usize,
}

/// How to run a training.
#[derive(Clone, Default)]
pub struct TrainOptions {
    /// Output folder: checkpoints and logs.
    pub out_dir: PathBuf,
    /// Continue from `out_dir/last.ckpt` (an error when it does not exist).
    pub resume: bool,
    /// Start over in a folder that already holds a run (its checkpoints and logs are replaced).
    pub force: bool,
    /// Progress bars and per-epoch lines on stderr.
    pub verbose: bool,
    /// Called before every step.
    pub step_hook: Option<StepHook>,
}

impl std::fmt::Debug for TrainOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainOptions")
            .field("out_dir", &self.out_dir)
            .field("resume", &self.resume)
            .field("force", &self.force)
            .field("verbose", &self.verbose)
            .field("step_hook", &self.step_hook.is_some())
            .finish()
    }
}

impl TrainOptions {
    /// A fresh, quiet run into `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            ..Self::default()
        }
    }
}

/// Files that mark a folder as holding a run.
const RUN_FILES: [&str; 5] = [
    "last.ckpt",
    "best.ckpt",
    "steps.jsonl",
    "epochs.jsonl",
    "config.toml",
];

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

/// The model configuration for a dataset: classes and cameras from the training split
/// (`num_cameras = 0` in the config keeps SIE off).
pub fn resolve_model_config(cfg: &NextConfig, dataset: &Dataset) -> NextConfig {
    let mut model_cfg = cfg.clone();
    model_cfg.num_classes = dataset.num_train_ids.max(1);
    if model_cfg.num_cameras > 0 {
        model_cfg.num_cameras = dataset.camera_table_size();
    }
    model_cfg
}

/// Build the model of a resolved configuration with the run's seed: CLIP weights loaded when
/// the config names a Hugging Face folder (with the load report), random otherwise.
pub fn build_model<B: Backend>(
    model_cfg: &NextConfig,
    seed: u64,
    device: &B::Device,
) -> Result<(NextModel<B>, Option<LoadReport>), TrainError> {
    B::seed(device, mix_seed(&[seed, 0x1A17]));
    let (model, report) = model_cfg.build::<B>(device)?;
    // Initial values from the seed alone, not from the RNG state at the first forward (a
    // data-parallel replica on another thread would draw others).
    model.materialize();
    Ok((model, report))
}

/// Training state saved in every checkpoint header (next to the model description).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    epochs_done: usize,
    global_step: usize,
    seed: u64,
    best: Option<(usize, f64)>,
    history: Vec<EpochRecord>,
    sampler_epoch: u64,
    /// Dynamic loss scale (f16 mixed precision only).
    #[serde(default)]
    loss_scaler: Option<LossScaler>,
}

type Adam<B> = burn::optim::adaptor::OptimizerAdaptor<burn::optim::Adam, NextModel<B>, B>;

fn recorder() -> BinBytesRecorder<FullPrecisionSettings> {
    BinBytesRecorder::<FullPrecisionSettings>::default()
}

/// Write a training checkpoint: the model's checkpoint plus the training state, the training
/// configuration, the dataset settings and the optimiser.
fn save_checkpoint<B: AutodiffBackend>(
    path: &Path,
    state: &TrainState,
    model: &NextModel<B>,
    optim: &Adam<B>,
    config: &TrainConfig,
    dataset: &Dataset,
) -> Result<(), TrainError> {
    let mut ck = model.to_checkpoint(Some(dataset.config.size()))?;
    let optim = Recorder::<B>::record(&recorder(), optim.to_record(), ()).map_err(|e| {
        TrainError::TrainingState {
            path: path.to_path_buf(),
            message: format!("serialising the optimiser: {e}"),
        }
    })?;
    let fields = [
        ("state", serde_json::to_value(state)),
        ("train", serde_json::to_value(config)),
        ("data", serde_json::to_value(&dataset.config)),
    ];
    for (name, value) in fields {
        let value = value.map_err(|e| TrainError::TrainingState {
            path: path.to_path_buf(),
            message: format!("serialising the {name}: {e}"),
        })?;
        match value {
            // The training state is flat in the header (`epochs_done`, `history`, ...).
            serde_json::Value::Object(map) if name == "state" => {
                for (k, v) in map {
                    ck.header[k.as_str()] = v;
                }
            }
            other => ck.header[name] = other,
        }
    }
    ck.header["weights_digest"] =
        serde_json::Value::String(crate::params::weights_digest::<B, _>(model));
    ck.blobs.push(("optimizer".into(), optim));
    ck.save(path)?;
    Ok(())
}

/// A training that has passed every check and is ready to run (nothing written yet).
pub struct Training<'a, B: AutodiffBackend> {
    model: NextModel<B>,
    optim: Adam<B>,
    state: TrainState,
    config: TrainConfig,
    dataset: &'a Dataset,
    options: TrainOptions,
    device: B::Device,
    resumed: bool,
    /// This replica's place in a data-parallel training (`None`: one device).
    replica: Option<Replica>,
}

/// Check the configuration, the output folder and (on resume) the checkpoint against the model
/// configuration and the dataset; build the model and optimiser. Writes nothing.
pub fn prepare<'a, B: AutodiffBackend>(
    model_cfg: &NextConfig,
    config: &TrainConfig,
    dataset: &'a Dataset,
    options: &TrainOptions,
    device: &B::Device,
) -> Result<Training<'a, B>, TrainError> {
    config.validate()?;
    let dir = &options.out_dir;
    let last_path = dir.join("last.ckpt");
    if options.resume {
        if !last_path.is_file() {
            return Err(TrainError::NothingToResume {
                dir: dir.clone(),
                best_only: dir.join("best.ckpt").is_file(),
            });
        }
    } else if !options.force {
        let found: Vec<&str> = RUN_FILES
            .into_iter()
            .filter(|f| dir.join(f).exists())
            .collect();
        if !found.is_empty() {
            return Err(TrainError::RunExists {
                dir: dir.clone(),
                found: found.join(", "),
            });
        }
    }
    let s = &config.solver;
    let model_cfg = resolve_model_config(model_cfg, dataset);
    let (mut model, report) = build_model::<B>(&model_cfg, s.seed, device)?;
    if let Some(report) = report.filter(|r| !r.missing.is_empty() && options.verbose) {
        eprintln!(
            "CLIP weights: {} tensors missing (random init)",
            report.missing.len()
        );
    }
    let mut adam =
        AdamConfig::new().with_weight_decay(Some(WeightDecayConfig::new(s.weight_decay as f32)));
    if s.grad_clip > 0.0 {
        adam = adam.with_grad_clipping(Some(GradientClippingConfig::Norm(s.grad_clip)));
    }
    let mut optim: Adam<B> = adam.init::<B, NextModel<B>>();
    let mut state = TrainState {
        epochs_done: 0,
        global_step: 0,
        seed: s.seed,
        best: None,
        history: Vec::new(),
        sampler_epoch: 0,
        loss_scaler: None,
    };
    if options.resume {
        let ck = Checkpoint::load(&last_path)?;
        let header = ck.model_header(&last_path)?;
        let size = dataset.config.size();
        if let Some(saved) = header.image_size.filter(|saved| *saved != size) {
            return Err(ModelError::Mismatch {
                checkpoint: last_path,
                key: "data.image_size".into(),
                checkpoint_value: format!("{saved:?}"),
                config_value: format!("{size:?}"),
            }
            .into());
        }
        model = ck.load_weights(model, &last_path, device)?;
        state =
            serde_json::from_value(ck.header.clone()).map_err(|e| TrainError::TrainingState {
                path: last_path.clone(),
                message: format!("header is not a training state: {e}"),
            })?;
        let bytes = ck
            .blob("optimizer")
            .ok_or_else(|| TrainError::TrainingState {
                path: last_path.clone(),
                message: "expected an `optimizer` part".into(),
            })?;
        let record = Recorder::<B>::load(&recorder(), bytes.to_vec(), device).map_err(|e| {
            TrainError::TrainingState {
                path: last_path.clone(),
                message: format!("optimiser record: {e}"),
            }
        })?;
        optim = optim.load_record(record);
    }
    if model.config.precision.needs_loss_scaling() && state.loss_scaler.is_none() {
        state.loss_scaler = Some(LossScaler::default());
    }
    Ok(Training {
        model,
        optim,
        state,
        config: config.clone(),
        dataset,
        options: options.clone(),
        device: device.clone(),
        resumed: options.resume,
        replica: None,
    })
}

/// Train (or resume) `model_cfg` on `dataset`: [`prepare`] then [`Training::run`].
pub fn train<B: AutodiffBackend>(
    model_cfg: &NextConfig,
    config: &TrainConfig,
    dataset: &Dataset,
    options: &TrainOptions,
    device: &B::Device,
) -> Result<TrainOutcome<B::InnerBackend>, TrainError> {
    prepare::<B>(model_cfg, config, dataset, options, device)?.run()
}

impl<B: AutodiffBackend> Training<'_, B> {
    /// The model as it will start training (fresh or resumed).
    pub fn model(&self) -> &NextModel<B> {
        &self.model
    }

    /// Epochs already done (0 for a fresh run).
    pub fn epochs_done(&self) -> usize {
        self.state.epochs_done
    }

    /// The device this training runs on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Make this training one replica of a data-parallel run (see [`crate::distributed`]).
    pub(crate) fn set_replica(&mut self, replica: Replica) {
        self.replica = Some(replica);
    }

    /// Whether this replica writes checkpoints and logs (rank 0, or no data parallelism).
    fn writes(&self) -> bool {
        self.replica.is_none_or(|r| r.rank == 0)
    }

    /// Prepare the output folder: logs cut back to the checkpoint on resume, a forced fresh run's
    /// old checkpoints and logs removed.
    fn open_output(&self) -> Result<(JsonLines, JsonLines), TrainError> {
        let dir = &self.options.out_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| FileError::new("creating output folder", dir, e))?;
        let step_log_path = dir.join("steps.jsonl");
        let epoch_log_path = dir.join("epochs.jsonl");
        if self.resumed {
            truncate_after(&step_log_path, "step", self.state.global_step as u64)?;
            truncate_after(&epoch_log_path, "epoch", self.state.epochs_done as u64)?;
            if self.options.verbose {
                eprintln!(
                    "resumed from {} after epoch {}",
                    dir.join("last.ckpt").display(),
                    self.state.epochs_done
                );
            }
        } else {
            for name in ["steps.jsonl", "epochs.jsonl", "last.ckpt", "best.ckpt"] {
                let p = dir.join(name);
                if p.exists() {
                    std::fs::remove_file(&p)
                        .map_err(|e| FileError::new("removing the old run's", &p, e))?;
                }
            }
        }
        Ok((
            JsonLines::open(&step_log_path)?,
            JsonLines::open(&epoch_log_path)?,
        ))
    }

    /// Run the remaining epochs; returns the final model on the inference backend.
    pub fn run(self) -> Result<TrainOutcome<B::InnerBackend>, TrainError> {
        let writes = self.writes();
        let (mut step_log, mut epoch_log) = match writes {
            true => {
                let (steps, epochs) = self.open_output()?;
                (Some(steps), Some(epochs))
            }
            false => (None, None),
        };
        let Training {
            mut model,
            mut optim,
            mut state,
            config: cfg,
            dataset,
            options: opts,
            device,
            replica,
            ..
        } = self;
        let (rank, world) = replica.map_or((0, 1), |r| (r.rank, r.world));
        // Random streams of one replica: the single-device ones, the rank mixed in with several.
        let rank_seed = |parts: &[u64]| match replica {
            Some(r) if r.world > 1 => mix_seed(&[mix_seed(parts), r.rank as u64]),
            _ => mix_seed(parts),
        };
        if let Some(r) = &replica {
            model = r.broadcast_module(model)?;
        }
        let neck_ids = crate::distributed::neck_param_ids(&model);
        let device = &device;
        let s = &cfg.solver;
        let last_path = opts.out_dir.join("last.ckpt");
        let best_path = opts.out_dir.join("best.ckpt");
        // Parameter ids come from the checkpoint on resume: classify them only now.
        let groups = GroupIds::of_module::<B, _>(&model);
        let sampler = cfg.loader.sampler(&dataset.train, s.seed)?;
        let schedule = WarmupCosine::from_solver(s);
        let transform = TransformConfig::from_dataset(&dataset.config);
        let use_text = model.config.uses_text();
        let mut text_cache = TextFeatureCache::new();
        let mut align_caches = crate::query::AlignCaches::default();
        for epoch in state.epochs_done..s.epochs {
            let factor = schedule.factor(epoch);
            let sampler_state = sampler.state_at(epoch as u64);
            let mut stream = train_stream_shard(
                &dataset.train,
                &sampler,
                &sampler_state,
                transform,
                cfg.loader.workers,
                cfg.loader.prefetch,
                rank,
                world,
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
                if let Some(hook) = &opts.step_hook {
                    hook(&StepInfo {
                        epoch,
                        step,
                        global_step: state.global_step,
                    });
                }
                let Some(host) = stream.next() else {
                    break;
                };
                let (batch, presence) = crate::umm::training_batch::<B>(
                    host?,
                    &cfg.umm_augment,
                    model.umm.is_some(),
                    transform.normalization,
                    s.seed,
                    state.global_step as u64,
                    device,
                )?;
                let mut n = batch.raw_pids.len();
                B::seed(
                    device,
                    rank_seed(&[s.seed, epoch as u64, step as u64, 0xD20]),
                );
                let mut sentences =
                    model.sentence_sampler(rank_seed(&[s.seed, epoch as u64, step as u64, 0x5E7]));
                let captions =
                    use_text.then(|| batch_captions(&batch.captions, ModalityMask::FULL));
                // Any-modality alignment (query.align): what it reads of the batch, kept here.
                let align_input = model.config.query.align.enabled.then(|| {
                    (
                        batch.images.clone(),
                        batch.camids.clone(),
                        batch.captions.clone(),
                        crate::query::training_sketch(&batch),
                        batch.present.clone(),
                        batch.sketch_present.clone(),
                    )
                });
                // The text encoder is frozen: cached features per sampled caption are exact.
                let cached = match &captions {
                    Some(c) => text_cache.training_features(&model, c, &mut sentences, device)?,
                    None => None,
                };
                let input = NextInput {
                    images: batch.images,
                    camera_ids: Some(batch.camids),
                    captions,
                };
                let pre = model.forward_train_pre_neck(
                    input,
                    cached,
                    presence.as_ref(),
                    &mut sentences,
                )?;
                let (output, pids, rec_loss) = match &replica {
                    Some(r) => {
                        let global = r.global_output(&model, pre, batch.pids, presence.as_ref())?;
                        n *= r.world;
                        (global.output, global.labels, global.reconstruction)
                    }
                    None => {
                        let output = model.apply_necks(pre);
                        let rec = output
                            .reconstruction
                            .clone()
                            .map(|r| r.into_scalar().elem());
                        (output, batch.pids, rec)
                    }
                };
                let mut loss = model.loss(&output, pids.clone());
                let mut total: f64 = loss.total.clone().into_scalar().elem();
                if let (Some(_), Some(rec)) = (&replica, &output.reconstruction) {
                    // This rank's loss holds its share of L_rec; log the whole batch's.
                    let mine: f64 = rec.clone().into_scalar().elem();
                    let weight = f64::from(model.config.umm.rec.weight);
                    total += weight * (rec_loss.unwrap_or(0.0) - mine);
                }
                // Any-modality alignment (query.align), on the whole (global) batch as the
                // other losses.
                let mut align_loss: Option<f64> = None;
                if let Some((images, camids, align_captions, sketch, present, sketch_present)) =
                    align_input
                {
                    let align = crate::query::alignment_step(
                        &model,
                        crate::query::AlignBatch {
                            images,
                            camids,
                            captions: &align_captions,
                            sketch,
                            present,
                            sketch_present,
                            labels: pids.clone(),
                        },
                        output.feature.clone(),
                        &mut align_caches,
                        &mut sentences,
                        crate::query::AlignScope {
                            replica: replica.as_ref(),
                        },
                        s.seed,
                        state.global_step as u64,
                        device,
                    )?;
                    if let Some(align) = align {
                        let value = crate::query::scalar(&align.total);
                        align_loss = Some(value);
                        total += value;
                        loss.total = loss.total + align.total;
                    }
                }
                if !total.is_finite() {
                    return Err(TrainError::NonFinite {
                        epoch: epoch + 1,
                        step: state.global_step + 1,
                        value: total,
                        last_checkpoint: last_path.exists().then(|| last_path.clone()),
                    });
                }
                let id_loss: f64 = loss.id.clone().into_scalar().elem();
                let tri_loss: f64 = loss.triplet.clone().into_scalar().elem();
                let predicted = output.logits.clone().argmax(1).flatten::<1>(0, 1);
                let correct: f64 = predicted.equal(pids).int().sum().into_scalar().elem();
                let scaled = match &state.loss_scaler {
                    Some(scaler) => loss.total * scaler.scale,
                    None => loss.total,
                };
                let mut grads = scaled.backward();
                let mut split = groups.split(&mut grads, &model);
                if let Some(r) = &replica {
                    for (_, grads) in split.iter_mut() {
                        r.reduce_gradients(grads, &model, &neck_ids)?;
                    }
                }
                let apply = match state.loss_scaler.as_mut() {
                    Some(scaler) => {
                        scaler.unscale::<B, _>(split.iter_mut().map(|(_, g)| g), &model)
                    }
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
                if let Some(step_log) = step_log.as_mut() {
                    step_log.write(&serde_json::json!({
                "step": state.global_step, "epoch": epoch + 1, "loss": total, "id_loss": id_loss,
                "triplet_loss": tri_loss, "accuracy": correct / n as f64, "lr": s.base_lr * factor,
                "loss_scale": state.loss_scaler.as_ref().map(|l| l.scale), "applied": apply,
                "rec_loss": rec_loss, "align_loss": align_loss,
            }))?;
                }
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
            if writes && eval_due && !dataset.query.is_empty() {
                let inner = model.valid();
                let settings = EvalSettings::from_config(&cfg, false);
                let (results, ..) = evaluate_model(&inner, dataset, &settings, false, device)?;
                let all = results[0].clone();
                if state.best.is_none_or(|(_, m)| all.map > m) {
                    state.best = Some((epoch + 1, all.map));
                    state.epochs_done = epoch + 1;
                    save_checkpoint(&best_path, &state, &model, &optim, &cfg, dataset)?;
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
            if let Some(epoch_log) = epoch_log.as_mut() {
                epoch_log.write(&record)?;
            }
            state.history.push(record);
            state.epochs_done = epoch + 1;
            state.sampler_epoch = epoch as u64 + 1;
            let checkpoint_due =
                s.checkpoint_every > 0 && ((epoch + 1) % s.checkpoint_every == 0 || last_epoch);
            if writes && checkpoint_due {
                save_checkpoint(&last_path, &state, &model, &optim, &cfg, dataset)?;
            }
        }
        Ok(TrainOutcome {
            model: model.valid(),
            history: state.history,
            best: state.best,
        })
    }
}
