//! CLIP-style contrastive image-caption pretraining of a small CLIP on a synthetic split whose
//! identities are disjoint from the ReID benchmark's, so that NEXT's text modulation
//! `cos(t, P)` starts from aligned encoders as it does with OpenAI's CLIP.
//!
//! Every triplet gives three (image, caption) pairs, one per modality with its own caption. The
//! loss is CLIP's symmetric InfoNCE over all pairs of a batch with a learned temperature
//! (`logit_scale`, initialised to ln(1 / 0.07) and clamped at ln 100 as in CLIP). Captions of the
//! synthetic set repeat (look-alike identities, and NIR/TIR captions say less), so a pair's
//! captions of the batch are encoded once: an image's target is its caption, a caption's target is
//! spread over its images; otherwise identical captions would be pushed apart as negatives. The result is a Hugging Face folder
//! ([`next_clip::save_hf_dir`]) with a tokenizer restricted to the synthetic vocabulary
//! ([`next_clip::restricted_vocab`]), which `model.clip = "<folder>"` loads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::{AutodiffModule, Module, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use next_clip::{batch_tensors, ClipConfig, ClipModel, ClipTokenizer, TokenizedText};
use next_common::Progress;
use next_data::synth::identity::{
    LookAlikes, BAGS, HAIR, LOWER, PALETTE, ROOFS, SHOES, UPPER, VEHICLES,
};
use next_data::transform::mix_seed;
use next_data::{
    load_dataset, write_or_reuse_synthetic, BatchStream, DatasetConfig, LoadMode, Normalization,
    SynthConfig, TransformConfig, TripletRecord,
};
use serde::{Deserialize, Serialize};

use crate::schedule::WarmupCosine;
use crate::TrainError;

/// CLIP's initial temperature: logit scale ln(1 / 0.07).
pub const CLIP_INIT_LOGIT_SCALE: f32 = 2.659_26;

/// CLIP's largest logit scale: ln 100 (temperature 0.01).
pub const CLIP_MAX_LOGIT_SCALE: f32 = 4.605_17;

/// Settings of a pretraining run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainConfig {
    /// The synthetic split: `train_ids` identities for training, `test_ids` held out for the
    /// retrieval report; `first_pid` keeps them apart from the ReID benchmark's pids.
    pub synthetic: SynthConfig,
    /// Input `[height, width]` (the ReID input size, so positional embeddings are trained at it).
    pub image_size: [u32; 2],
    /// Pixel normalisation (CLIP's).
    pub normalization: Normalization,
    /// Passes over the training triplets.
    pub epochs: usize,
    /// Triplets per step (three image-caption pairs each).
    pub batch_size: usize,
    /// Peak learning rate (Adam).
    pub lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Linear warm-up epochs before the cosine decay.
    pub warmup_epochs: usize,
    /// Seed of the initialisation, the batch order and the augmentation.
    pub seed: u64,
    /// Initial logit scale (ln of the inverse temperature).
    pub init_logit_scale: f32,
    /// Upper clamp of the logit scale.
    pub max_logit_scale: f32,
    /// Loader threads.
    pub workers: usize,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            synthetic: SynthConfig {
                seed: 7_001,
                first_pid: 500_001,
                train_ids: 120,
                test_ids: 24,
                images_per_id: 8,
                // The drawing the committed weights were pretrained on (README "Pretraining the
                // tiny CLIP"): the benchmark's newer look-alike groups would change the split.
                look_alikes: LookAlikes::AllVisible,
                ..SynthConfig::default()
            },
            image_size: [128, 64],
            normalization: Normalization::Clip,
            epochs: 24,
            batch_size: 32,
            lr: 3e-3,
            weight_decay: 1e-4,
            warmup_epochs: 2,
            seed: 1,
            init_logit_scale: CLIP_INIT_LOGIT_SCALE,
            max_logit_scale: CLIP_MAX_LOGIT_SCALE,
            workers: 2,
        }
    }
}

impl PretrainConfig {
    /// Check the ranges; the error names the key.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |key: &str, value: String, expected: &str| {
            Err(TrainError::Config(next_common::ConfigError::out_of_range(
                &format!("pretrain.{key}"),
                value,
                expected,
            )))
        };
        if self.epochs == 0 {
            return bad("epochs", "0".into(), "at least 1");
        }
        if self.batch_size < 2 {
            return bad(
                "batch_size",
                self.batch_size.to_string(),
                "at least 2 (contrastive pairs)",
            );
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", self.lr.to_string(), "a positive number");
        }
        if !(self.max_logit_scale >= self.init_logit_scale && self.init_logit_scale >= 0.0) {
            return bad(
                "init_logit_scale",
                self.init_logit_scale.to_string(),
                "within 0..=max_logit_scale",
            );
        }
        self.synthetic.validate()?;
        Ok(())
    }
}

/// Held-out retrieval and the text-patch cosine of one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetrievalReport {
    /// Held-out images (three per triplet).
    pub images: usize,
    /// Distinct held-out captions.
    pub captions: usize,
    /// Image -> text rank-1 (%): the most similar distinct caption is the image's own text.
    pub image_to_text_r1: f64,
    /// Text -> image rank-1 (%): the most similar image has this caption.
    pub text_to_image_r1: f64,
    /// Mean over images of the mean over patches of `cos(t, P)` with the image's own caption
    /// (`t` the projected caption feature, `P` the projected patch tokens, as TMSE uses them).
    pub patch_cos_matching: f64,
    /// The same with the other distinct captions of the same modality.
    pub patch_cos_non_matching: f64,
    /// Image -> text rank-1 (%) ranking captions by the patch-mean cosine instead of the class
    /// token: whether the patch tokens, not only the pooled feature, carry the caption.
    pub patch_image_to_text_r1: f64,
}

impl RetrievalReport {
    /// One line per figure, for printing.
    pub fn lines(&self) -> Vec<String> {
        vec![
            format!(
                "held-out: {} images, {} distinct captions",
                self.images, self.captions
            ),
            format!(
                "image->text R-1 {:.2}%, text->image R-1 {:.2}%",
                self.image_to_text_r1, self.text_to_image_r1
            ),
            format!(
                "cos(t, P) matching {:.4} vs non-matching {:.4} (gap {:+.4}); patch-token image->text R-1 {:.2}%",
                self.patch_cos_matching,
                self.patch_cos_non_matching,
                self.patch_cos_matching - self.patch_cos_non_matching,
                self.patch_image_to_text_r1
            ),
        ]
    }
}

/// One epoch of pretraining.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PretrainEpoch {
    /// 0-based epoch.
    pub epoch: usize,
    /// Mean contrastive loss.
    pub loss: f64,
    /// Logit scale at the end of the epoch (clamped value used in the loss).
    pub logit_scale: f64,
    /// Learning rate.
    pub lr: f64,
    /// Image-caption pairs per second.
    pub pairs_per_sec: f64,
}

/// What a pretraining run measured (also written as `pretrain_report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainReport {
    /// The settings.
    pub config: PretrainConfig,
    /// Token ids of the restricted vocabulary.
    pub vocab_size: usize,
    /// Parameters of the saved CLIP.
    pub parameters: usize,
    /// Training image-caption pairs per epoch.
    pub train_pairs: usize,
    /// The random initialisation on the held-out pairs.
    pub before: RetrievalReport,
    /// The pretrained model on the held-out pairs.
    pub after: RetrievalReport,
    /// Per-epoch loss, temperature and speed.
    pub epochs: Vec<PretrainEpoch>,
    /// Wall-clock seconds of the training loop.
    pub train_seconds: f64,
}

/// The trained module: CLIP and its learned logit scale.
#[derive(Module, Debug)]
pub struct ContrastiveClip<B: Backend> {
    /// Image and text towers.
    pub clip: ClipModel<B>,
    /// ln of the inverse temperature (unclamped parameter).
    pub logit_scale: Param<Tensor<B, 1>>,
}

impl<B: Backend> ContrastiveClip<B> {
    /// The logit scale used in the loss: the parameter clamped to `0..=max`.
    pub fn clamped_scale(&self, max: f32) -> Tensor<B, 1> {
        self.logit_scale.val().clamp(0.0, max)
    }
}

/// Unit-length rows.
fn unit_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    x.clone() / x.powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-6)
}

/// The distinct texts of `captions` (first-seen order) and, per caption, its index among them.
pub fn distinct_captions(captions: &[String]) -> (Vec<String>, Vec<usize>) {
    let mut distinct: Vec<String> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let own = captions
        .iter()
        .map(|c| {
            *index.entry(c.as_str()).or_insert_with(|| {
                distinct.push(c.clone());
                distinct.len() - 1
            })
        })
        .collect();
    (distinct, own)
}

/// CLIP's symmetric InfoNCE over `N` images and the `D` distinct captions of the batch
/// (`own[i]` = caption of image i), unit features, `logits = exp(scale) * I T^T` `[N, D]`:
/// image -> text cross-entropy against the image's caption, text -> image cross-entropy
/// spreading each caption's target equally over its images; the mean of the two directions.
/// With one caption per image this is CLIP's loss; with repeated captions, identical texts are
/// never pushed apart as negatives.
pub fn symmetric_info_nce<B: Backend>(
    images: Tensor<B, 2>,
    texts: Tensor<B, 2>,
    own: &[usize],
    logit_scale: Tensor<B, 1>,
) -> Tensor<B, 1> {
    let device = images.device();
    let (n, d) = (images.dims()[0], texts.dims()[0]);
    let mut one_hot = vec![0.0f32; n * d];
    let mut per_caption = vec![0usize; d];
    for (i, &c) in own.iter().enumerate() {
        one_hot[i * d + c] = 1.0;
        per_caption[c] += 1;
    }
    let spread: Vec<f32> = (0..d)
        .flat_map(|c| (0..n).map(move |i| (c, i)))
        .map(|(c, i)| one_hot[i * d + c] / per_caption[c].max(1) as f32)
        .collect();
    let image_targets = Tensor::<B, 2>::from_data(TensorData::new(one_hot, [n, d]), &device);
    let text_targets = Tensor::<B, 2>::from_data(TensorData::new(spread, [d, n]), &device);
    let logits = unit_rows(images).matmul(unit_rows(texts).transpose())
        * logit_scale.exp().unsqueeze_dim::<2>(1);
    let image_to_text = (image_targets * log_softmax(logits.clone(), 1)).sum() / n as f64;
    let text_to_image = (text_targets * log_softmax(logits.transpose(), 1)).sum() / d as f64;
    (image_to_text + text_to_image).neg() / 2.0
}

/// Token ids and attention mask `[B, T]` of a batch of texts.
type TokenBatch<B> = (Tensor<B, 2, Int>, Tensor<B, 2, Int>);

/// Tokenized captions, each text encoded once.
struct TokenCache {
    tokenizer: ClipTokenizer,
    encoded: HashMap<String, TokenizedText>,
}

impl TokenCache {
    fn batch<B: Backend>(
        &mut self,
        texts: &[String],
        device: &B::Device,
    ) -> Result<TokenBatch<B>, TrainError> {
        let mut rows = Vec::with_capacity(texts.len());
        for text in texts {
            if !self.encoded.contains_key(text) {
                let tokens = self
                    .tokenizer
                    .encode(text)
                    .map_err(next_model::ModelError::from)?;
                self.encoded.insert(text.clone(), tokens);
            }
            if let Some(tokens) = self.encoded.get(text) {
                rows.push(tokens.clone());
            }
        }
        // Causal attention: positions after the longest text change no pooled feature.
        let longest = rows
            .iter()
            .map(|t| t.attention_mask.iter().sum::<u32>() as usize)
            .max()
            .unwrap_or(1)
            .max(1);
        let (ids, mask) = batch_tensors::<B>(&rows, device);
        let b = rows.len();
        Ok((
            ids.slice([0..b, 0..longest]),
            mask.slice([0..b, 0..longest]),
        ))
    }
}

/// Words of every synthetic caption template, so the restricted vocabulary covers captions of
/// identities the pretraining split does not happen to contain.
fn generator_words() -> String {
    let mut words: Vec<&str> = PALETTE.iter().map(|c| c.name).collect();
    words.extend(UPPER.iter().map(|u| u.0));
    words.extend(VEHICLES.iter().map(|v| v.0));
    words.extend(LOWER);
    words.extend(SHOES);
    words.extend(HAIR);
    words.extend(BAGS);
    words.extend(ROOFS);
    words.join(" ")
}

/// The pretraining split under `data_dir` (written once, then reused while its settings hold).
fn pretraining_split(cfg: &PretrainConfig, data_dir: &Path) -> Result<DatasetConfig, TrainError> {
    let mut synth = cfg.synthetic.clone();
    synth.image_size = Some(cfg.image_size);
    let total = (synth.train_ids + synth.test_ids) * synth.images_per_id;
    let mut progress = Progress::new("pretraining split", total as u64, "triplet");
    let summary = write_or_reuse_synthetic(&synth, data_dir, &mut progress)?;
    progress.finish();
    let mut data = summary.dataset_config();
    data.normalization = cfg.normalization;
    data.random_erasing = false;
    Ok(data)
}

/// A permutation of `0..n` from `seed` (Fisher-Yates on hashed draws).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (mix_seed(&[seed, i as u64]) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Image features (pooled and per-patch mean of unit patch tokens) and captions of `records`.
struct Encoded<B: Backend> {
    pooled: Tensor<B, 2>,
    patch_mean: Tensor<B, 2>,
    captions: Vec<String>,
    modality: Vec<usize>,
}

fn encode_images<B: Backend>(
    clip: &ClipModel<B>,
    records: &[TripletRecord],
    transform: TransformConfig,
    device: &B::Device,
) -> Result<Encoded<B>, TrainError> {
    let stream = next_data::eval_stream(records, transform, 64, 2, 2)?;
    let (mut pooled, mut patch_mean) = (Vec::new(), Vec::new());
    let (mut captions, mut modality) = (Vec::new(), Vec::new());
    for batch in stream {
        let batch = batch?.into_tensors::<B>(device);
        for (m, images) in batch.images.into_iter().enumerate() {
            let out = clip.vision.forward(images, None);
            let [b, tokens, dim] = out.tokens.dims();
            let patches = out.tokens.slice([0..b, 1..tokens, 0..dim]);
            let unit = patches.clone() / patches.powi_scalar(2).sum_dim(2).sqrt().clamp_min(1e-6);
            patch_mean.push(unit.mean_dim(1).reshape([b, dim]));
            pooled.push(out.pooled);
            captions.extend(batch.captions[m].iter().cloned());
            modality.extend(std::iter::repeat_n(m, b));
        }
    }
    Ok(Encoded {
        pooled: Tensor::cat(pooled, 0),
        patch_mean: Tensor::cat(patch_mean, 0),
        captions,
        modality,
    })
}

fn argmax_rows(scores: &[f32], cols: usize) -> Vec<usize> {
    scores
        .chunks(cols.max(1))
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (j, &v)| {
                    if v > best.1 {
                        (j, v)
                    } else {
                        best
                    }
                })
                .0
        })
        .collect()
}

fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap_or_default()
}

/// Held-out retrieval of `clip` on `records` (see [`RetrievalReport`]).
pub fn retrieval_report<B: Backend>(
    clip: &ClipModel<B>,
    tokenizer: &ClipTokenizer,
    records: &[TripletRecord],
    transform: TransformConfig,
    device: &B::Device,
) -> Result<RetrievalReport, TrainError> {
    let images = encode_images(clip, records, transform, device)?;
    let mut distinct: Vec<String> = images.captions.clone();
    distinct.sort();
    distinct.dedup();
    let mut caption_modality = vec![usize::MAX; distinct.len()];
    let index_of: HashMap<&str, usize> = distinct
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let own: Vec<usize> = images
        .captions
        .iter()
        .map(|c| index_of.get(c.as_str()).copied().unwrap_or(0))
        .collect();
    for (&c, &m) in own.iter().zip(&images.modality) {
        caption_modality[c] = m;
    }
    let mut cache = TokenCache {
        tokenizer: tokenizer.clone(),
        encoded: HashMap::new(),
    };
    let mut text_features = Vec::new();
    for chunk in distinct.chunks(128) {
        let (ids, mask) = cache.batch::<B>(chunk, device)?;
        text_features.push(clip.text.forward(ids, mask).pooled);
    }
    let texts = unit_rows(Tensor::cat(text_features, 0));
    let (n, c) = (own.len(), distinct.len());
    let by_pooled = to_vec(unit_rows(images.pooled).matmul(texts.clone().transpose()));
    let by_patches = to_vec(images.patch_mean.matmul(texts.transpose()));

    let hits = |best: &[usize]| best.iter().zip(&own).filter(|(b, o)| b == o).count();
    let image_to_text_r1 = 100.0 * hits(&argmax_rows(&by_pooled, c)) as f64 / n.max(1) as f64;
    let patch_image_to_text_r1 =
        100.0 * hits(&argmax_rows(&by_patches, c)) as f64 / n.max(1) as f64;
    let transposed: Vec<f32> = (0..c)
        .flat_map(|j| (0..n).map(move |i| (i, j)))
        .map(|(i, j)| by_pooled[i * c + j])
        .collect();
    let best_images = argmax_rows(&transposed, n);
    let text_hits = best_images
        .iter()
        .enumerate()
        .filter(|&(j, &i)| own[i] == j)
        .count();
    let (mut matching, mut non_matching, mut non_matching_count) = (0.0f64, 0.0f64, 0usize);
    for i in 0..n {
        for j in 0..c {
            let v = by_patches[i * c + j] as f64;
            if j == own[i] {
                matching += v;
            } else if caption_modality[j] == images.modality[i] {
                non_matching += v;
                non_matching_count += 1;
            }
        }
    }
    Ok(RetrievalReport {
        images: n,
        captions: c,
        image_to_text_r1,
        text_to_image_r1: 100.0 * text_hits as f64 / c.max(1) as f64,
        patch_cos_matching: matching / n.max(1) as f64,
        patch_cos_non_matching: non_matching / non_matching_count.max(1) as f64,
        patch_image_to_text_r1,
    })
}

/// Where a pretraining run writes, and whether it may replace an earlier one.
#[derive(Debug, Clone)]
pub struct PretrainOptions {
    /// The Hugging Face folder to write.
    pub out_dir: PathBuf,
    /// Where the synthetic pretraining split is written (or reused).
    pub data_dir: PathBuf,
    /// Replace a CLIP folder already in `out_dir`.
    pub force: bool,
    /// Print epoch lines and progress.
    pub verbose: bool,
}

/// Pretrain the tiny CLIP (see the module documentation) and save it as a Hugging Face folder
/// in `opts.out_dir`, with `pretrain_report.json`. Refuses an `out_dir` that already holds a
/// model unless `opts.force`; every check happens before anything is written.
pub fn pretrain<B: AutodiffBackend>(
    cfg: &PretrainConfig,
    opts: &PretrainOptions,
    device: &B::Device,
) -> Result<PretrainReport, TrainError> {
    cfg.validate()?;
    let existing: Vec<&str> = ["config.json", next_clip::HF_WEIGHTS_FILE]
        .into_iter()
        .filter(|f| opts.out_dir.join(f).exists())
        .collect();
    if !existing.is_empty() && !opts.force {
        return Err(TrainError::RunExists {
            dir: opts.out_dir.clone(),
            found: existing.join(", "),
        });
    }
    let data = pretraining_split(cfg, &opts.data_dir)?;
    let dataset = load_dataset(&data)?;
    let transform = TransformConfig::from_dataset(&dataset.config);
    let corpus: Vec<&str> = dataset
        .train
        .iter()
        .chain(&dataset.gallery)
        .flat_map(|r| r.captions.iter().map(String::as_str))
        .collect();
    let words = generator_words();
    let vocab = next_clip::restricted_vocab(&[corpus, vec![words.as_str()]].concat())
        .map_err(next_model::ModelError::from)?;
    let tokenizer = ClipTokenizer::from_json(&vocab.json, Path::new("<restricted tokenizer>"))
        .map_err(next_model::ModelError::from)?;
    let mut clip_cfg = ClipConfig::tiny();
    clip_cfg.text.vocab_size = vocab.vocab_size;
    clip_cfg.text.bos_token_id = vocab.start_id as usize;
    clip_cfg.text.eos_token_id = vocab.end_id as usize;
    clip_cfg.text.pad_token_id = vocab.end_id as usize;

    B::seed(device, mix_seed(&[cfg.seed, 0xC11F]));
    let mut model = ContrastiveClip {
        clip: ClipModel::<B>::new(&clip_cfg, 0, 1.0, device),
        logit_scale: Param::from_tensor(Tensor::from_floats([cfg.init_logit_scale], device)),
    };
    let parameters = model.num_params();
    let held_out = &dataset.gallery;
    let before = retrieval_report(&model.clip.valid(), &tokenizer, held_out, transform, device)?;
    if opts.verbose {
        for line in before.lines() {
            eprintln!("before pretraining: {line}");
        }
    }

    let schedule = WarmupCosine {
        epochs: cfg.epochs,
        warmup_epochs: cfg.warmup_epochs.min(cfg.epochs.saturating_sub(1)),
        warmup_factor: 0.1,
        final_factor: 0.01,
    };
    let mut optim = AdamConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(cfg.weight_decay as f32)))
        .init::<B, ContrastiveClip<B>>();
    let mut cache = TokenCache {
        tokenizer: tokenizer.clone(),
        encoded: HashMap::new(),
    };
    let records = Arc::new(dataset.train.clone());
    let steps_per_epoch = records.len() / cfg.batch_size;
    if steps_per_epoch == 0 {
        return Err(TrainError::Config(next_common::ConfigError::out_of_range(
            "pretrain.batch_size",
            cfg.batch_size,
            &format!("at most the {} training triplets", records.len()),
        )));
    }
    let mut progress = if opts.verbose {
        Progress::new("pretrain", (cfg.epochs * steps_per_epoch) as u64, "step")
    } else {
        Progress::hidden((cfg.epochs * steps_per_epoch) as u64)
    };
    let started = Instant::now();
    let mut epochs = Vec::with_capacity(cfg.epochs);
    for epoch in 0..cfg.epochs {
        let epoch_started = Instant::now();
        let lr = cfg.lr * schedule.factor(epoch);
        let order = shuffled(records.len(), mix_seed(&[cfg.seed, epoch as u64, 0x0DE]));
        let jobs: Vec<Vec<usize>> = order
            .chunks_exact(cfg.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        let mode = LoadMode::Train {
            seed: cfg.seed,
            epoch: epoch as u64,
            first_batch: 0,
            first_position: 0,
        };
        let stream = BatchStream::start(records.clone(), jobs, transform, mode, cfg.workers, 2)?;
        let (mut loss_sum, mut pairs) = (0.0f64, 0usize);
        for batch in stream {
            let batch = batch?.into_tensors::<B>(device);
            let images = Tensor::cat(batch.images.to_vec(), 0);
            let captions: Vec<String> = batch.captions.concat();
            let (distinct, own) = distinct_captions(&captions);
            let (ids, mask) = cache.batch::<B>(&distinct, device)?;
            let n = captions.len();
            let image_features = model.clip.vision.forward(images, None).pooled;
            let text_features = model.clip.text.forward(ids, mask).pooled;
            let loss = symmetric_info_nce(
                image_features,
                text_features,
                &own,
                model.clamped_scale(cfg.max_logit_scale),
            );
            loss_sum += loss.clone().into_scalar().elem::<f64>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            pairs += n;
            progress.inc(1);
        }
        let scale = model
            .clamped_scale(cfg.max_logit_scale)
            .into_scalar()
            .elem::<f64>();
        let record = PretrainEpoch {
            epoch,
            loss: loss_sum / steps_per_epoch as f64,
            logit_scale: scale,
            lr,
            pairs_per_sec: pairs as f64 / epoch_started.elapsed().as_secs_f64().max(1e-9),
        };
        if opts.verbose {
            let done = epoch + 1;
            let eta = started.elapsed().as_secs_f64() / done as f64 * (cfg.epochs - done) as f64;
            eprintln!(
                "pretrain epoch {done}/{}: loss {:.4}, temperature {:.4} (logit scale {:.3}), lr {:.2e}, {:.0} pairs/s, ETA {:.0} s",
                cfg.epochs,
                record.loss,
                (-scale).exp(),
                scale,
                lr,
                record.pairs_per_sec,
                eta
            );
        }
        epochs.push(record);
    }
    progress.finish();
    let train_seconds = started.elapsed().as_secs_f64();

    let trained = model.valid();
    let after = retrieval_report(&trained.clip, &tokenizer, held_out, transform, device)?;
    if opts.verbose {
        for line in after.lines() {
            eprintln!("after pretraining: {line}");
        }
    }
    let scale = trained
        .clamped_scale(cfg.max_logit_scale)
        .into_scalar()
        .elem::<f32>();
    next_clip::save_hf_dir(&trained.clip, &clip_cfg, scale, &vocab.json, &opts.out_dir)
        .map_err(next_model::ModelError::from)?;
    let report = PretrainReport {
        config: cfg.clone(),
        vocab_size: vocab.vocab_size,
        parameters,
        train_pairs: 3 * steps_per_epoch * cfg.batch_size,
        before,
        after,
        epochs,
        train_seconds,
    };
    let json =
        serde_json::to_vec_pretty(&report).map_err(|e| next_common::ConfigError::Invalid {
            origin: "pretrain_report.json".into(),
            message: e.to_string(),
        })?;
    next_common::write_atomic(opts.out_dir.join("pretrain_report.json"), &json)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn repeated_captions_are_encoded_once() {
        let captions: Vec<String> = ["a", "b", "a"].iter().map(|s| s.to_string()).collect();
        let (distinct, own) = distinct_captions(&captions);
        assert_eq!(distinct, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(own, vec![0, 1, 0]);
    }

    #[test]
    fn info_nce_is_low_for_aligned_pairs_and_ln_n_for_uninformative_ones() {
        let device = Default::default();
        let eye = Tensor::<Flex, 2>::eye(4, &device);
        let scale = Tensor::<Flex, 1>::from_floats([CLIP_MAX_LOGIT_SCALE], &device);
        let own = [0, 1, 2, 3];
        let aligned =
            symmetric_info_nce(eye.clone(), eye.clone(), &own, scale.clone()).into_scalar();
        assert!(aligned < 1e-3, "{aligned}");
        let same = Tensor::<Flex, 2>::ones([4, 4], &device);
        let flat = symmetric_info_nce(same.clone(), same, &own, scale.clone()).into_scalar();
        assert!((flat - 4f32.ln()).abs() < 1e-4, "{flat}");
        // Two images sharing one caption: aligned features still give a near-zero loss.
        let images = Tensor::<Flex, 2>::from_floats([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], &device);
        let texts = Tensor::<Flex, 2>::from_floats([[1.0, 0.0], [0.0, 1.0]], &device);
        let shared = symmetric_info_nce(images, texts, &[0, 0, 1], scale).into_scalar();
        assert!((shared - 0.25 * 2f32.ln()).abs() < 1e-3, "{shared}");
    }
}
