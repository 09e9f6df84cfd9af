//! `NextModel`: shared CLIP visual encoder, frozen CLIP text encoder, TMSE, CSSE, MGFA, BNNeck.

use crate::config::{ClipSource, NextConfig, TextMode};
use crate::query::TextQueryHead;
use crate::sentences::{SampleCaptions, SentenceSampler};
use crate::umm::{Presence, UmmModules};
use crate::ModelError;
use burn::module::Module;
use burn::prelude::*;
use burn::tensor::TensorData;
use next_aggregation::Mgfa;
use next_clip::{
    ClipConfig, ClipModel, ClipText, ClipTokenizer, ClipVision, LoadReport, Precision,
};
use next_common::Modality;
use next_experts::{Csse, Tmse, TmseOutput};
use next_losses::{reid_loss, BnNeck, BnNeckConfig, ReidLoss};
use std::collections::HashMap;
use std::sync::Arc;

/// The CLIP tokenizer shared by model clones (not a module: never saved, never trained).
#[derive(Clone)]
pub struct SharedTokenizer(pub Arc<ClipTokenizer>);

/// Token ids and attention mask of a batch of texts, `[texts, context]` each.
type TokenTensors<B> = (Tensor<B, 2, Int>, Tensor<B, 2, Int>);

impl SharedTokenizer {
    /// Token ids and attention mask (`[texts, context]` each) of `texts`, ready for the text encoder.
    pub(crate) fn token_tensors<B: Backend>(
        &self,
        texts: &[&str],
        device: &B::Device,
    ) -> Result<TokenTensors<B>, ModelError> {
        let tokenized = self.0.encode_batch(texts)?;
        let len = tokenized.first().map_or(0, |t| t.ids.len());
        let ids: Vec<i64> = tokenized
            .iter()
            .flat_map(|t| t.ids.iter().map(|&v| v as i64))
            .collect();
        let mask: Vec<i64> = tokenized
            .iter()
            .flat_map(|t| t.attention_mask.iter().map(|&v| v as i64))
            .collect();
        let shape = [texts.len(), len];
        Ok((
            Tensor::from_data(TensorData::new(ids, shape), device),
            Tensor::from_data(TensorData::new(mask, shape), device),
        ))
    }
}

impl std::fmt::Debug for SharedTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedTokenizer")
    }
}

/// One batch of aligned tri-modal images.
#[derive(Debug, Clone)]
pub struct NextInput<B: Backend> {
    /// RGB, NIR, TIR images, each `[B, 3, H, W]` (CLIP-normalised; a missing modality zero-filled).
    pub images: [Tensor<B, 4>; 3],
    /// Camera ids `[B]` for SIE (ignored when the model has no camera embedding).
    pub camera_ids: Option<Tensor<B, 1, Int>>,
    /// Per sample, one optional caption per modality; `None` = no text at all.
    pub captions: Option<Vec<SampleCaptions>>,
}

/// Everything the training forward computes.
#[derive(Debug, Clone)]
pub struct NextOutput<B: Backend> {
    /// Identity feature before the BNNeck `[B, 3D]` (the triplet-loss input).
    pub feature: Tensor<B, 2>,
    /// Batch-normalised feature `[B, 3D]`.
    pub bn_feature: Tensor<B, 2>,
    /// Identity logits `[B, num_classes]`.
    pub logits: Tensor<B, 2>,
    /// TMSE features, hard masks `[B, K_s, 3, N]` and per-modality counts `[B, K_s, 3]`.
    pub semantic: Option<TmseOutput<B>>,
    /// CSSE routing weights `[B, 3N, K_c]`.
    pub structure_routing: Option<Tensor<B, 3>>,
    /// Pre-BN branch features `[B, 3D]` (semantic, structure) when branch losses are on.
    pub branch_features: Vec<Tensor<B, 2>>,
    /// Logits of the branch BNNecks, aligned with `branch_features`.
    pub branch_logits: Vec<Tensor<B, 2>>,
    /// UMM reconstruction loss `L_rec` (unweighted MSE of synthesised vs real tokens) when the
    /// batch had modalities dropped in training whose real image was kept; `None` otherwise.
    pub reconstruction: Option<Tensor<B, 1>>,
}

/// The training forward up to the BNNecks (see [`NextModel::forward_pre_neck`]).
#[derive(Debug, Clone)]
pub struct PreNeckOutput<B: Backend> {
    /// Identity feature before the BNNeck `[B, 3D]`.
    pub feature: Tensor<B, 2>,
    /// TMSE features, hard masks and per-modality counts.
    pub semantic: Option<TmseOutput<B>>,
    /// CSSE routing weights `[B, 3N, K_c]`.
    pub structure_routing: Option<Tensor<B, 3>>,
    /// Pre-BN branch features `[B, 3D]`, one per branch BNNeck.
    pub branch_features: Vec<Tensor<B, 2>>,
    /// UMM reconstruction loss (see [`NextOutput::reconstruction`]).
    pub reconstruction: Option<Tensor<B, 1>>,
}

/// The NEXT model.
#[derive(Module, Debug)]
pub struct NextModel<B: Backend> {
    /// CLIP visual encoder shared by the three modalities (fine-tuned).
    pub vision: ClipVision<B>,
    /// Frozen CLIP text encoder (absent when the configuration uses neither captions nor text
    /// queries).
    pub text: Option<ClipText<B>>,
    /// Semantic experts (rows (c), (d)).
    pub tmse: Option<Tmse<B>>,
    /// Structure experts (row (d)).
    pub csse: Option<Csse<B>>,
    /// Aggregation.
    pub mgfa: Mgfa<B>,
    /// BNNeck head.
    pub neck: BnNeck<B>,
    /// BNNecks of the MGFA branches (empty unless `branch_losses` in row (d)).
    pub branch_necks: Vec<BnNeck<B>>,
    /// The configuration the model was built from.
    pub config: NextConfig,
    /// The resolved CLIP architecture (saved in checkpoints: no CLIP folder needed to reopen).
    pub clip_architecture: ClipConfig,
    /// Tokenizer for captions (present with the text encoder).
    pub tokenizer: Option<SharedTokenizer>,
    /// Token mapper, synthesiser and cue learner (present when `umm.enabled`).
    pub umm: Option<UmmModules<B>>,
    /// Text query head (present when `query.text_head`).
    pub text_query: Option<TextQueryHead<B>>,
}

impl NextConfig {
    /// Whether this configuration encodes captions at all.
    pub fn uses_text(&self) -> bool {
        self.text != TextMode::Off && self.mgfa.mode.uses_semantic_experts()
    }

    /// Whether the model has the frozen text encoder: for captions, or for the text query head.
    pub fn builds_text_encoder(&self) -> bool {
        self.uses_text() || self.query.text_head
    }

    /// Build a randomly initialised model (CLIP architecture from [`NextConfig::clip`]).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<NextModel<B>, ModelError> {
        self.init_with_clip(&self.clip_config()?, device)
    }

    /// Build a randomly initialised model with the CLIP architecture `clip` (e.g. the one saved
    /// in a checkpoint) instead of the one [`NextConfig::clip`] names.
    pub fn init_with_clip<B: Backend>(
        &self,
        clip: &ClipConfig,
        device: &B::Device,
    ) -> Result<NextModel<B>, ModelError> {
        self.validate()?;
        let vision = ClipVision::new(
            &clip.vision,
            clip.projection_dim,
            self.num_cameras,
            self.camera_coef,
            device,
        );
        let text = self
            .builds_text_encoder()
            .then(|| ClipText::new(&clip.text, clip.projection_dim, device));
        self.assemble(vision, text, clip.clone(), device)
    }

    /// Build the model with CLIP weights from the Hugging Face folder of [`NextConfig::clip`];
    /// the experts, aggregation and neck are freshly initialised.
    pub fn init_pretrained<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<(NextModel<B>, LoadReport), ModelError> {
        self.validate()?;
        let ClipSource::HfDir(dir) = &self.clip else {
            return Err(ModelError::Config {
                path: None,
                message: "init_pretrained needs `clip` to be a Hugging Face folder".into(),
            });
        };
        let architecture = ClipConfig::from_hf_dir(dir)?;
        let (clip, report) =
            ClipModel::from_hf_dir(dir, self.num_cameras, self.camera_coef, device)?;
        let text = self.builds_text_encoder().then_some(clip.text);
        Ok((
            self.assemble(clip.vision, text, architecture, device)?,
            report,
        ))
    }

    /// Build the model the way the trainer wants it: CLIP weights loaded when
    /// [`NextConfig::clip`] is a Hugging Face folder (with the load report), random otherwise.
    pub fn build<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<(NextModel<B>, Option<LoadReport>), ModelError> {
        match &self.clip {
            ClipSource::HfDir(_) => {
                let (model, report) = self.init_pretrained(device)?;
                Ok((model, Some(report)))
            }
            ClipSource::Preset(_) => Ok((self.init(device)?, None)),
        }
    }

    fn assemble<B: Backend>(
        &self,
        mut vision: ClipVision<B>,
        mut text: Option<ClipText<B>>,
        clip_architecture: ClipConfig,
        device: &B::Device,
    ) -> Result<NextModel<B>, ModelError> {
        vision.encoder.precision = self.precision;
        if let Some(text) = text.as_mut() {
            text.encoder.precision = self.precision;
        }
        let dim = vision.output_dim();
        let mode = self.mgfa.mode;
        let tokenizer = match (&text, &self.clip) {
            (None, _) => None,
            (Some(_), ClipSource::HfDir(dir)) => Some(ClipTokenizer::for_model(
                Some(dir),
                &clip_architecture.text,
                &dir.join("config.json"),
            )?),
            (Some(_), ClipSource::Preset(preset)) => Some(ClipTokenizer::for_model(
                None,
                &clip_architecture.text,
                std::path::Path::new(&format!("<clip preset {preset:?}>")),
            )?),
        };
        self.umm
            .validate(Some(dim))
            .map_err(|message| ModelError::Config {
                path: None,
                message,
            })?;
        let umm = self.umm.init(&vision, dim, device);
        let mut model = NextModel {
            umm,
            text_query: None,
            vision,
            text: text.map(ClipText::frozen),
            tmse: mode
                .uses_semantic_experts()
                .then(|| self.tmse.init(dim, device)),
            csse: mode
                .uses_structure_experts()
                .then(|| self.csse.init(dim, device)),
            mgfa: self.mgfa.init(dim, device)?,
            neck: BnNeckConfig::new(3 * dim, self.num_classes).init(device),
            branch_necks: (0..self.num_branch_necks())
                .map(|_| BnNeckConfig::new(3 * dim, self.num_classes).init(device))
                .collect(),
            config: self.clone(),
            clip_architecture,
            tokenizer: tokenizer.map(|t| SharedTokenizer(Arc::new(t))),
        };
        model.add_query_heads(self.query.clone(), device);
        Ok(model)
    }
}

impl<B: Backend> NextModel<B> {
    /// Switch the CLIP transformers' matrix products to `precision` (weights are unchanged).
    pub fn set_precision(&mut self, precision: Precision) {
        self.config.precision = precision;
        self.vision.encoder.precision = precision;
        if let Some(text) = self.text.as_mut() {
            text.encoder.precision = precision;
        }
    }

    /// Width D of the expert tokens (CLIP projection width).
    pub fn dim(&self) -> usize {
        self.vision.output_dim()
    }

    /// Width of the identity feature (3 D).
    pub fn feature_dim(&self) -> usize {
        3 * self.dim()
    }

    /// A sentence sampler seeded with `seed`, using the configured keep probability.
    pub fn sentence_sampler(&self, seed: u64) -> SentenceSampler {
        SentenceSampler::new(seed, self.config.sentence_keep_prob)
    }

    /// Learnable parameters: everything except the frozen text encoder, the frozen BN bias and
    /// the BN running statistics.
    pub fn num_learnable_params(&self) -> usize {
        self.vision.num_params()
            + self.tmse.as_ref().map_or(0, |t| t.num_params())
            + self.csse.as_ref().map_or(0, |c| c.num_params())
            + self.mgfa.num_params()
            + self.umm.as_ref().map_or(0, |u| u.num_params())
            + self.text_query.as_ref().map_or(0, |t| t.num_params())
            + std::iter::once(&self.neck)
                .chain(&self.branch_necks)
                .map(|n| n.bn.gamma.num_params() + n.classifier.num_params())
                .sum::<usize>()
    }

    /// Training forward: sentences of each caption are sampled per expert with `sampler`.
    pub fn forward_train(
        &self,
        input: NextInput<B>,
        sampler: &mut SentenceSampler,
    ) -> Result<NextOutput<B>, ModelError> {
        let batch = input.images[0].dims()[0];
        let text = self.train_text(input.captions.as_deref(), batch, self.config.text, sampler)?;
        self.forward_with_text(input.images, input.camera_ids, text)
    }

    /// The training forward up to the BNNecks, on every training path: with `presence` the UMM
    /// forward ([`Self::forward_train_present`]), without it [`Self::forward_train`]; `text`,
    /// when given, replaces the encoding of the captions (features from a cache of the frozen
    /// text encoder). [`Self::apply_necks`] on the result is the training output.
    pub fn forward_train_pre_neck(
        &self,
        input: NextInput<B>,
        text: Option<Tensor<B, 4>>,
        presence: Option<&Presence>,
        sampler: &mut SentenceSampler,
    ) -> Result<PreNeckOutput<B>, ModelError> {
        if let Some(presence) = presence {
            return self.train_present_pre_neck(input, text, presence, sampler);
        }
        let batch = input.images[0].dims()[0];
        let text = match text {
            Some(text) => Some(text),
            None => self.train_text(input.captions.as_deref(), batch, self.config.text, sampler)?,
        };
        let (class_tokens, patches) = self.encode_images(input.images, input.camera_ids)?;
        self.forward_pre_neck(class_tokens, patches, text, None)
    }

    /// Training text features `[B, K_s, 3, D]` (one sentence sample per expert and modality),
    /// checked against `mode`; `None` when text is not used.
    pub(crate) fn train_text(
        &self,
        captions: Option<&[SampleCaptions]>,
        batch: usize,
        mode: TextMode,
        sampler: &mut SentenceSampler,
    ) -> Result<Option<Tensor<B, 4>>, ModelError> {
        let k_s = self.tmse.as_ref().map_or(0, |t| t.num_experts());
        Ok(match (captions, self.config.uses_text()) {
            (Some(captions), true) => {
                check_captions(captions, batch, mode)?;
                let texts = self.training_texts(captions, sampler);
                Some(
                    self.encode_texts(&texts)?
                        .reshape([batch, k_s, 3, self.dim()]),
                )
            }
            (None, true) if mode == TextMode::Required => {
                return Err(ModelError::NoCaptions);
            }
            _ => None,
        })
    }

    /// Inference: the L2-normalised identity feature `[B, 3D]` (pre- or post-BN per config).
    /// Each present caption is encoded whole, once per modality, and shared by the experts;
    /// without captions (or with text off) the model runs "w/o text".
    pub fn forward_inference(&self, input: NextInput<B>) -> Result<Tensor<B, 2>, ModelError> {
        let batch = input.images[0].dims()[0];
        let text = self.inference_text(input.captions.as_deref(), batch)?;
        self.inference_with_text(input.images, input.camera_ids, text)
    }

    /// Inference text features `[B, 1, 3, D]`: each present caption encoded whole.
    pub(crate) fn inference_text(
        &self,
        captions: Option<&[SampleCaptions]>,
        batch: usize,
    ) -> Result<Option<Tensor<B, 4>>, ModelError> {
        Ok(match (captions, self.config.uses_text()) {
            (Some(captions), true) => {
                check_captions(captions, batch, TextMode::Optional)?;
                let texts = Self::inference_texts(captions);
                Some(
                    self.encode_texts(&texts)?
                        .reshape([batch, 1, 3, self.dim()]),
                )
            }
            _ => None,
        })
    }

    /// The weighted identity + triplet loss of a training output; with branch losses, the
    /// same pair on each branch is added (to `total`, `id` and `triplet` alike).
    pub fn loss(&self, output: &NextOutput<B>, labels: Tensor<B, 1, Int>) -> ReidLoss<B> {
        let cfg = &self.config.loss;
        let mut loss = reid_loss(
            cfg,
            output.logits.clone(),
            output.feature.clone(),
            labels.clone(),
        );
        for (feature, logits) in output.branch_features.iter().zip(&output.branch_logits) {
            let branch = reid_loss(cfg, logits.clone(), feature.clone(), labels.clone());
            loss.total = loss.total + branch.total;
            loss.id = loss.id + branch.id;
            loss.triplet = loss.triplet + branch.triplet;
        }
        if let Some(rec) = &output.reconstruction {
            loss.total = loss.total + rec.clone().mul_scalar(self.config.umm.rec.weight);
        }
        loss
    }

    /// Forward with already-encoded text features `[B, K, 3, D]` (K = K_s or 1), or none.
    pub fn forward_with_text(
        &self,
        images: [Tensor<B, 4>; 3],
        camera_ids: Option<Tensor<B, 1, Int>>,
        text: Option<Tensor<B, 4>>,
    ) -> Result<NextOutput<B>, ModelError> {
        let (class_tokens, patches) = self.encode_images(images, camera_ids)?;
        self.forward_tokens(class_tokens, patches, text)
    }

    /// Everything after the CLIP encoders: experts, aggregation and neck on the class tokens
    /// `[B, 3, D]`, patch tokens `[B, 3, N, D]` and optional text features `[B, K, 3, D]`.
    pub fn forward_tokens(
        &self,
        class_tokens: Tensor<B, 3>,
        patches: Tensor<B, 4>,
        text: Option<Tensor<B, 4>>,
    ) -> Result<NextOutput<B>, ModelError> {
        self.forward_tokens_masked(class_tokens, patches, text, None)
    }

    /// [`Self::forward_tokens`] with absent modalities dropped: where `modality_mask` `[B, 3]`
    /// is 0, TMSE and CSSE pool over the present modalities' tokens only and the modality's
    /// slot of the identity feature (and of each branch feature) is zero.
    pub fn forward_tokens_masked(
        &self,
        class_tokens: Tensor<B, 3>,
        patches: Tensor<B, 4>,
        text: Option<Tensor<B, 4>>,
        modality_mask: Option<Tensor<B, 2>>,
    ) -> Result<NextOutput<B>, ModelError> {
        let pre = self.forward_pre_neck(class_tokens, patches, text, modality_mask)?;
        Ok(self.apply_necks(pre))
    }

    /// [`Self::forward_tokens_masked`] up to the BNNecks: experts and aggregation only. Every
    /// row depends on its own sample alone, so a batch may be split across devices up to here
    /// (the data-parallel trainer gathers the features and runs [`Self::apply_necks`] on the
    /// whole batch).
    pub fn forward_pre_neck(
        &self,
        class_tokens: Tensor<B, 3>,
        patches: Tensor<B, 4>,
        text: Option<Tensor<B, 4>>,
        modality_mask: Option<Tensor<B, 2>>,
    ) -> Result<PreNeckOutput<B>, ModelError> {
        let semantic = match &self.tmse {
            Some(tmse) => Some(tmse.forward_with(
                class_tokens.clone(),
                patches.clone(),
                text,
                modality_mask.clone(),
                self.config.tmse.mask_gradient,
            )?),
            None => None,
        };
        let structure = match &self.csse {
            Some(csse) => Some(csse.forward_masked(patches, modality_mask.clone())?),
            None => None,
        };
        let mut aggregated = self.mgfa.forward_branches(
            class_tokens,
            semantic.as_ref().map(|s| s.features.clone()),
            structure.as_ref().map(|s| s.features.clone()),
        )?;
        if let Some(mask) = &modality_mask {
            aggregated.feature = zero_absent_slots(aggregated.feature, mask);
            aggregated.branches = aggregated
                .branches
                .into_iter()
                .map(|b| zero_absent_slots(b, mask))
                .collect();
        }
        let mut branch_features = aggregated.branches;
        branch_features.truncate(self.branch_necks.len());
        Ok(PreNeckOutput {
            feature: aggregated.feature,
            semantic,
            structure_routing: structure.map(|s| s.routing),
            branch_features,
            reconstruction: None,
        })
    }

    /// The BNNecks (batch statistics over all rows of `pre`) on pre-neck features.
    pub fn apply_necks(&self, pre: PreNeckOutput<B>) -> NextOutput<B> {
        let neck = self.neck.forward(pre.feature.clone());
        let branch_logits = pre
            .branch_features
            .iter()
            .zip(&self.branch_necks)
            .map(|(branch, branch_neck)| branch_neck.forward(branch.clone()).logits)
            .collect();
        NextOutput {
            feature: pre.feature,
            bn_feature: neck.normalized,
            logits: neck.logits,
            semantic: pre.semantic,
            structure_routing: pre.structure_routing,
            branch_features: pre.branch_features,
            branch_logits,
            reconstruction: pre.reconstruction,
        }
    }

    /// Run the shared visual encoder on the three modalities as one batch of 3B; returns the
    /// class tokens `[B, 3, D]` and patch tokens `[B, 3, N, D]`.
    pub fn encode_images(
        &self,
        images: [Tensor<B, 4>; 3],
        camera_ids: Option<Tensor<B, 1, Int>>,
    ) -> Result<(Tensor<B, 3>, Tensor<B, 4>), ModelError> {
        let dims = images[0].dims();
        if images.iter().any(|i| i.dims() != dims) || dims[1] != 3 {
            let got = images.iter().map(|i| i.dims().to_vec()).collect::<Vec<_>>();
            return Err(ModelError::Input(format!(
                "the three modality images must share one shape [B, 3, H, W], got {got:?}"
            )));
        }
        let [batch, _, height, width] = dims;
        let (rows, cols) = self.vision.grid_for(height, width)?;
        let cameras = self
            .checked_cameras(camera_ids, batch)?
            .map(|ids| Tensor::cat(vec![ids.clone(), ids.clone(), ids], 0));
        let pixels = Tensor::cat(images.to_vec(), 0);
        let tokens = self.vision.forward(pixels, cameras).tokens; // [3B, 1+N, D]
        let (n, d) = (rows * cols, self.dim());
        let tokens = tokens.reshape([3, batch, 1 + n, d]).swap_dims(0, 1); // [B, 3, 1+N, D]
        let class_tokens = tokens.clone().slice_dim(2, 0..1).reshape([batch, 3, d]);
        let patches = tokens.slice_dim(2, 1..1 + n);
        Ok((class_tokens, patches))
    }

    /// The camera ids `[B]` the SIE embedding needs (checked to be `batch` values in range),
    /// `None` when the model has no SIE; an error when SIE is on and ids are missing.
    pub(crate) fn checked_cameras(
        &self,
        camera_ids: Option<Tensor<B, 1, Int>>,
        batch: usize,
    ) -> Result<Option<Tensor<B, 1, Int>>, ModelError> {
        match camera_ids {
            Some(ids) if self.vision.num_cameras() > 0 => {
                let values: Vec<i64> = ids.clone().into_data().iter::<i64>().collect();
                let limit = self.vision.num_cameras() as i64;
                if values.len() != batch || values.iter().any(|&c| c < 0 || c >= limit) {
                    return Err(ModelError::Input(format!(
                        "camera ids must be {batch} values in 0..{limit}, got {values:?}"
                    )));
                }
                Ok(Some(ids))
            }
            Some(_) => Ok(None),
            None if self.vision.num_cameras() > 0 => Err(ModelError::Input(
                "the model has SIE: camera ids are required".into(),
            )),
            None => Ok(None),
        }
    }

    /// Encode captions with the frozen text encoder: `[len, D]` projected EOT features, a zero
    /// row for a missing or empty caption. Identical captions are encoded once.
    pub fn encode_texts(&self, texts: &[Option<String>]) -> Result<Tensor<B, 2>, ModelError> {
        let (Some(encoder), Some(tokenizer)) = (&self.text, &self.tokenizer) else {
            return Err(ModelError::Input("this model has no text encoder".into()));
        };
        let device = self.neck.bn.gamma.device();
        let mut unique: Vec<&str> = Vec::new();
        let mut slot: HashMap<&str, usize> = HashMap::new();
        let mut index = Vec::with_capacity(texts.len());
        for text in texts {
            match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                Some(t) => {
                    let next = unique.len();
                    let i = *slot.entry(t).or_insert(next);
                    if i == next {
                        unique.push(t);
                    }
                    index.push(i as i64);
                }
                None => index.push(-1),
            }
        }
        let zero_row = unique.len() as i64;
        let index: Vec<i64> = index
            .into_iter()
            .map(|i| if i < 0 { zero_row } else { i })
            .collect();
        let dim = self.dim();
        let mut table = Vec::new();
        if !unique.is_empty() {
            let (ids, mask) = tokenizer.token_tensors::<B>(&unique, &device)?;
            table.push(encoder.forward(ids, mask).pooled.detach());
        }
        table.push(Tensor::zeros([1, dim], &device));
        let table = Tensor::cat(table, 0);
        let count = index.len();
        let index = Tensor::<B, 1, Int>::from_data(TensorData::new(index, [count]), &device);
        Ok(table.select(0, index))
    }
}

fn check_captions(
    captions: &[SampleCaptions],
    batch: usize,
    mode: TextMode,
) -> Result<(), ModelError> {
    if captions.len() != batch {
        return Err(ModelError::Input(format!(
            "{} caption entries for a batch of {batch}",
            captions.len()
        )));
    }
    if mode == TextMode::Required {
        for (sample, entry) in captions.iter().enumerate() {
            if let Some(modality) = Modality::ALL.into_iter().find(|m| {
                entry[m.index()]
                    .as_deref()
                    .is_none_or(|c| c.trim().is_empty())
            }) {
                return Err(ModelError::MissingCaption { sample, modality });
            }
        }
    }
    Ok(())
}

/// Divide each row by its L2 norm (clamped at 1e-12).
pub fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// Zero the modality thirds of features `[B, 3D]` where `mask` `[B, 3]` is 0.
fn zero_absent_slots<B: Backend>(feature: Tensor<B, 2>, mask: &Tensor<B, 2>) -> Tensor<B, 2> {
    let [batch, width] = feature.dims();
    (feature.reshape([batch, 3, width / 3]) * mask.clone().unsqueeze_dim::<3>(2))
        .reshape([batch, width])
}
