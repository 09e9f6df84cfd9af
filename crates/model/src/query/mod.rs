//! Any-modality queries: a sketch, a text description or a single spectrum (or a subset of them)
//! against a gallery of another modality set.
//!
//! - **Sketch** (`query.sketch`, needs UMM): a fourth visual modality of the UMM token mapper with
//!   its own learned modality embedding. A sketch takes the RGB slot of the tri-modal pipeline
//!   ([`crate::Presence::with_sketch`]), so TMSE / CSSE / MGFA keep their three modalities; the
//!   absent spectra are synthesised, zero-filled or dropped per `umm.fill`.
//! - **Text** (`query.text_head`): the frozen CLIP text encoder's features of a description (EOT
//!   and tokens, [`NextModel::encode_query_texts`]) mapped into the identity space by a small
//!   learned [`TextQueryHead`] ([`NextModel::text_query_feature`]).
//! - **Alignment** (`query.align`): [`NextModel::alignment_loss`], SDM (temperature 0.02, as
//!   IRRA / ReID5o) between each query embedding and the fused embeddings of the batch, plus the
//!   identity loss on the query embeddings, so that they live in the gallery's space.
//!
//! With every switch off nothing is built and the model is exactly NEXT / UMM. The heads are
//! drawn last at initialisation, so switching them on leaves every other weight as it was.
//!
//! ```
//! use burn::backend::Flex;
//! use burn::prelude::*;
//! use next_model::{NextConfig, NextInput, Presence, TextMode};
//!
//! let mut config = NextConfig::tiny(4);
//! config.num_cameras = 0;
//! config.text = TextMode::Optional;
//! config.umm.enabled = true;
//! config.query.sketch = true;
//! config.query.text_head = true;
//! let device = Default::default();
//! let model = config.init::<Flex>(&device).unwrap();
//! // A text query: a description into the identity space.
//! let texts = vec!["a man in a grey hoodie with a black backpack".to_string()];
//! let text = model.text_query_embedding(&texts).unwrap();
//! assert_eq!(text.dims(), [1, model.feature_dim()]);
//! // A sketch query: the sketch in the RGB slot, NIR and TIR absent (synthesised).
//! let sketch = Tensor::<Flex, 4>::ones([1, 1, 32, 16], &device);
//! let blank = || Tensor::<Flex, 4>::zeros([1, 3, 32, 16], &device);
//! let presence = Presence::new(vec![[true, false, false]]).unwrap().with_sketch(vec![true]).unwrap();
//! let input = NextInput { images: [sketch, blank(), blank()], camera_ids: None, captions: None };
//! let feature = model.forward_inference_present(input, &presence).unwrap();
//! assert_eq!(feature.dims(), [1, model.feature_dim()]);
//! ```

mod config;
mod text_head;

pub use config::{AlignConfig, QueryConfig};
pub use text_head::{TextQueryHead, TextQueryInput};

use crate::config::FeatureStage;
use crate::model::{l2_normalize, NextModel};
use crate::sentences::SampleCaptions;
use crate::ModelError;
use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;
use next_losses::{label_smoothed_cross_entropy, sdm_loss};

/// The alignment loss of a step: weighted total and its unweighted parts (one-element tensors).
#[derive(Debug, Clone)]
pub struct AlignLoss<B: Backend> {
    /// `sdm_weight * sdm + id_weight * id`.
    pub total: Tensor<B, 1>,
    /// Mean SDM loss over the query patterns.
    pub sdm: Tensor<B, 1>,
    /// Mean identity cross-entropy over the query patterns.
    pub id: Tensor<B, 1>,
}

/// The description a sample's captions give as a text query: its RGB caption (the one a
/// witness would give), else the first non-empty one.
pub fn query_text(captions: &SampleCaptions) -> Option<String> {
    captions
        .iter()
        .flatten()
        .map(|c| c.trim())
        .find(|c| !c.is_empty())
        .map(str::to_string)
}

impl<B: Backend> NextModel<B> {
    /// Switch to the query settings `query` and build the heads it asks for that the model lacks
    /// (a sketch embedding needs UMM, the text head the text encoder): e.g. to fine-tune a trained
    /// NEXT / UMM model for any-modality queries. No other weight changes. Model building calls
    /// it last, so switching the heads on leaves every other weight as it was drawn.
    pub fn add_query_heads(&mut self, query: QueryConfig, device: &B::Device) {
        self.config.query = query;
        let query = &self.config.query;
        let needs_sketch = self
            .umm
            .as_ref()
            .is_some_and(|u| u.token_mapper.sketch_embedding.is_none());
        if query.sketch && needs_sketch {
            if let Some(umm) = self.umm.as_mut() {
                let width = self.vision.width();
                let init: Param<Tensor<B, 2>> = Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                }
                .init([1, width], device);
                umm.token_mapper.sketch_embedding = Some(init);
            }
        }
        if query.text_head && self.text.is_some() && self.text_query.is_none() {
            let text_width = self.clip_architecture.text.hidden_size;
            self.text_query = Some(TextQueryHead::new(
                text_width,
                self.dim(),
                query.text_hidden,
                device,
            ));
        }
    }

    /// Encode descriptions with the frozen text encoder for the text head (no gradient). Each
    /// text must be non-empty.
    pub fn encode_query_texts(&self, texts: &[String]) -> Result<TextQueryInput<B>, ModelError> {
        let (Some(encoder), Some(tokenizer)) = (&self.text, &self.tokenizer) else {
            return Err(ModelError::Input(
                "this model has no text encoder (text queries need query.text_head = true)".into(),
            ));
        };
        if texts.is_empty() {
            return Err(ModelError::Input("no query text given".into()));
        }
        if let Some(i) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(ModelError::Input(format!(
                "query text {i} is empty: a text query needs a description"
            )));
        }
        let trimmed: Vec<&str> = texts.iter().map(|t| t.trim()).collect();
        let device = self.neck.bn.gamma.device();
        let (ids, mask) = tokenizer.token_tensors::<B>(&trimmed, &device)?;
        let out = encoder.forward(ids, mask.clone());
        Ok(TextQueryInput {
            eot: out.pooled.detach(),
            tokens: out.tokens.detach(),
            mask: mask.float(),
        })
    }

    /// Identity-space features `[B, 3D]` (not normalised; the loss input) of encoded
    /// descriptions, through the text head.
    pub fn text_query_feature(&self, input: TextQueryInput<B>) -> Result<Tensor<B, 2>, ModelError> {
        let Some(head) = &self.text_query else {
            return Err(ModelError::Input(
                "this model has no text query head (train it with query.text_head = true)".into(),
            ));
        };
        Ok(head.forward(input))
    }

    /// The L2-normalised embedding `[B, 3D]` of descriptions, comparable with the gallery's
    /// identity features (the configured pre- or post-BN stage).
    pub fn text_query_embedding(&self, texts: &[String]) -> Result<Tensor<B, 2>, ModelError> {
        let input = self.encode_query_texts(texts)?;
        let feature = self.text_query_feature(input)?;
        Ok(self.query_embedding(feature))
    }

    /// A query feature `[B, 3D]` as an inference embedding: the configured stage (pre- or
    /// post-BN), L2-normalised.
    pub fn query_embedding(&self, feature: Tensor<B, 2>) -> Tensor<B, 2> {
        match self.config.feature {
            FeatureStage::PreBn => l2_normalize(feature),
            FeatureStage::PostBn => l2_normalize(self.neck.normalize(feature)),
        }
    }

    /// The alignment loss of query features (each `[B, 3D]`, pre-BN, one per query pattern)
    /// against the fused features `[B, 3D]` of the same samples (detached when
    /// `query.align.detach_fused`): per pattern SDM and the identity loss through the BNNeck
    /// classifier, averaged over the patterns and weighted per `query.align`.
    pub fn alignment_loss(
        &self,
        queries: &[Tensor<B, 2>],
        fused: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
    ) -> Result<AlignLoss<B>, ModelError> {
        let cfg = &self.config.query.align;
        let device = fused.device();
        if queries.is_empty() {
            return Err(ModelError::Input(
                "alignment loss: no query features".into(),
            ));
        }
        if let Some(q) = queries.iter().find(|q| q.dims() != fused.dims()) {
            return Err(ModelError::Input(format!(
                "alignment loss: query features {:?} but fused features {:?}",
                q.dims(),
                fused.dims()
            )));
        }
        let fused = if cfg.detach_fused {
            fused.detach()
        } else {
            fused
        };
        let mut sdm = Tensor::<B, 1>::zeros([1], &device);
        let mut id = Tensor::<B, 1>::zeros([1], &device);
        for q in queries {
            sdm = sdm + sdm_loss(q.clone(), fused.clone(), labels.clone(), cfg.temperature);
            let logits = self.neck.forward(q.clone()).logits;
            id = id
                + label_smoothed_cross_entropy(
                    logits,
                    labels.clone(),
                    self.config.loss.label_smoothing,
                );
        }
        let n = queries.len() as f32;
        let (sdm, id) = (sdm.div_scalar(n), id.div_scalar(n));
        Ok(AlignLoss {
            total: sdm.clone().mul_scalar(cfg.sdm_weight) + id.clone().mul_scalar(cfg.id_weight),
            sdm,
            id,
        })
    }
}
