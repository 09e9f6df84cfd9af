//! UMM: the model keeps working when modalities are missing or uncertain.
//!
//! With `umm.enabled`, [`NextModel::forward_train_present`] and
//! [`NextModel::forward_inference_present`] take a per-sample [`Presence`] and run:
//!
//! 1. **Token mapper** ([`TokenMapper`]): each present image (1 channel replicated to 3) goes
//!    through the shared CLIP ViT, with a learned modality embedding added to every token
//!    (`tokenizer = "shared_embed"`) or a patch embedding of its own (`"per_modality"`). Absent
//!    images are never encoded, so their pixels may be anything.
//! 2. **Fill** (`umm.fill`): `synth` replaces an absent modality by the [`TokenSynthesizer`]'s
//!    tokens (learned queries cross-attending to the present modalities' tokens), flagged as
//!    synthesised; `zero` encodes a zero image instead (the references' baseline); `drop`
//!    excludes the modality: no token attends to it in the cue learner, TMSE and CSSE pool over
//!    present tokens only, and its third of the identity feature is zero (MGFA's queries are
//!    independent, so the other slots do not depend on it).
//! 3. **Cross-modal cue interactive learner** ([`CueLearner`]): pre-LN self-attention over the
//!    tokens of all three modalities, then TMSE / CSSE / MGFA as in NEXT.
//!
//! In training, modalities dropped by the augmentation but whose real image is still in the batch
//! ([`Presence::with_targets`]) are reconstruction targets: [`NextOutput::reconstruction`] is the
//! MSE between their synthesised and real mapper tokens (target detached by default), and
//! [`NextModel::loss`] adds `umm.rec.weight * L_rec` to the total. Shadow-dropped modalities
//! ([`Presence::with_shadow`]) are targets too: present, so the cue learner, experts and losses
//! see their real tokens, but hidden from the synthesiser, which makes them from the others.
//!
//! With `umm.enabled = false` the model is exactly NEXT, and the `*_present` calls zero-fill the
//! absent images.
//!
//! ```
//! use burn::backend::Flex;
//! use burn::prelude::*;
//! use next_model::{NextConfig, NextInput, Presence, TextMode};
//!
//! let mut config = NextConfig::tiny(4);
//! config.num_cameras = 0;
//! config.text = TextMode::Off;
//! config.umm.enabled = true;
//! let device = Default::default();
//! let model = config.init::<Flex>(&device).unwrap();
//! let image = || Tensor::<Flex, 4>::zeros([2, 3, 32, 16], &device);
//! let input = NextInput { images: [image(), image(), image()], camera_ids: None, captions: None };
//! // Sample 0 has every modality, sample 1 only its TIR image.
//! let presence = Presence::new(vec![[true, true, true], [false, false, true]]).unwrap();
//! let features = model.forward_inference_present(input, &presence).unwrap();
//! assert_eq!(features.dims(), [2, model.feature_dim()]);
//! ```

mod config;
mod modules;
mod presence;

pub use config::{CueConfig, Fill, RecConfig, SynthConfig, Tokenizer, UmmConfig};
pub use modules::{CueLearner, TokenMapper, TokenSynthesizer, UmmModules};
pub use presence::Presence;

use crate::config::TextMode;
use crate::model::{NextInput, NextModel, NextOutput, PreNeckOutput};
use crate::sentences::{SampleCaptions, SentenceSampler};
use crate::ModelError;
use burn::prelude::*;
use next_common::Modality;

/// Per-modality cosine similarity of synthesised and of zero-image tokens to the real tokens,
/// summed over samples (accumulate batches with [`TokenCosine::merge`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TokenCosine {
    /// Sum over samples of the mean token cosine(synthesised, real), per modality.
    pub synthesized: [f64; 3],
    /// Sum over samples of the mean token cosine(zero-image tokens, real), per modality.
    pub zero_fill: [f64; 3],
    /// Number of samples summed.
    pub samples: usize,
}

impl TokenCosine {
    /// Add another batch's sums.
    pub fn merge(&mut self, other: &TokenCosine) {
        for m in 0..3 {
            self.synthesized[m] += other.synthesized[m];
            self.zero_fill[m] += other.zero_fill[m];
        }
        self.samples += other.samples;
    }

    /// Mean cosines `(synthesised, zero_fill)` per modality (zeros when no sample).
    pub fn means(&self) -> ([f64; 3], [f64; 3]) {
        let n = self.samples.max(1) as f64;
        (
            self.synthesized.map(|v| v / n),
            self.zero_fill.map(|v| v / n),
        )
    }
}

/// The mapper tokens of a batch, split into what the model sees and what it reconstructs.
struct MappedTokens<B: Backend> {
    /// Tokens `[B, 3, T, D]` of the encoded images (zeros where not encoded).
    tokens: Tensor<B, 4>,
    /// CLIP positional embeddings `[T, width]` of the grid.
    positions: Tensor<B, 2>,
}

impl<B: Backend> NextModel<B> {
    /// Switch what replaces an absent modality (zero / synth / drop) on a built or loaded model.
    pub fn set_umm_fill(&mut self, fill: Fill) {
        self.config.umm.fill = fill;
    }

    /// Training forward with per-sample presence: absent modalities are filled per `umm.fill`
    /// (or zero-filled when UMM is off), their captions ignored; with `text = "required"` every
    /// present modality needs a caption. Modalities real but not present are reconstruction
    /// targets (see [`NextOutput::reconstruction`]).
    pub fn forward_train_present(
        &self,
        input: NextInput<B>,
        presence: &Presence,
        sampler: &mut SentenceSampler,
    ) -> Result<NextOutput<B>, ModelError> {
        let batch = input.images[0].dims()[0];
        presence.check_batch(batch)?;
        let captions = present_captions(input.captions, presence, self.config.text)?;
        let text = self.train_text(captions.as_deref(), batch, TextMode::Optional, sampler)?;
        self.forward_present(input.images, input.camera_ids, text, presence, true)
    }

    /// Inference with per-sample presence: the L2-normalised identity feature `[B, 3D]`. A
    /// sample's feature depends only on its own present modalities (and captions).
    pub fn forward_inference_present(
        &self,
        input: NextInput<B>,
        presence: &Presence,
    ) -> Result<Tensor<B, 2>, ModelError> {
        let batch = input.images[0].dims()[0];
        presence.check_batch(batch)?;
        let captions = present_captions(input.captions, presence, TextMode::Optional)?;
        let text = self.inference_text(captions.as_deref(), batch)?;
        let out = self.forward_present(input.images, input.camera_ids, text, presence, false)?;
        Ok(self.inference_feature(out))
    }

    /// [`Self::forward_train_present`] with already-encoded text features `[B, K_s, 3, D]` (or
    /// none), e.g. from a cache of the frozen text encoder; the rows of absent modalities'
    /// captions should be zero, as [`Self::forward_train_present`] makes them.
    pub fn forward_train_present_with_text(
        &self,
        images: [Tensor<B, 4>; 3],
        camera_ids: Option<Tensor<B, 1, Int>>,
        text: Option<Tensor<B, 4>>,
        presence: &Presence,
    ) -> Result<NextOutput<B>, ModelError> {
        presence.check_batch(images[0].dims()[0])?;
        self.forward_present(images, camera_ids, text, presence, true)
    }

    /// [`Self::forward_inference_present`] with already-encoded text features `[B, 1, 3, D]`
    /// (or none), e.g. from a cache of the frozen text encoder.
    pub fn inference_present_with_text(
        &self,
        images: [Tensor<B, 4>; 3],
        camera_ids: Option<Tensor<B, 1, Int>>,
        text: Option<Tensor<B, 4>>,
        presence: &Presence,
    ) -> Result<Tensor<B, 2>, ModelError> {
        presence.check_batch(images[0].dims()[0])?;
        let out = self.forward_present(images, camera_ids, text, presence, false)?;
        Ok(self.inference_feature(out))
    }

    /// How close synthesised tokens come to the real ones, against the zero-fill baseline: for
    /// complete samples, each modality is synthesised from the other two and compared (cosine
    /// per token, averaged over tokens) with its real mapper tokens, as are the tokens of a zero
    /// image. Needs `umm.enabled`.
    pub fn synthesis_cosine(
        &self,
        images: [Tensor<B, 4>; 3],
        camera_ids: Option<Tensor<B, 1, Int>>,
    ) -> Result<TokenCosine, ModelError> {
        let Some(umm) = &self.umm else {
            return Err(ModelError::Input(
                "synthesis_cosine needs a model with umm.enabled".into(),
            ));
        };
        let batch = images[0].dims()[0];
        let complete = Presence::complete(batch);
        let zeros = images.clone().map(|i| i.zeros_like());
        let real = self.map_tokens(images, camera_ids.clone(), complete.present(), &[])?;
        let zero = self.map_tokens(zeros, camera_ids, complete.present(), &[])?;
        let synth =
            umm.synthesizer
                .forward(real.tokens.clone(), real.positions, complete.present());
        let synthesized = mean_token_cosine(synth, real.tokens.clone());
        let zero_fill = mean_token_cosine(zero.tokens, real.tokens);
        Ok(TokenCosine {
            synthesized: synthesized.map(f64::from),
            zero_fill: zero_fill.map(f64::from),
            samples: batch,
        })
    }

    /// [`Self::forward_train_present`] up to the BNNecks (see [`NextModel::forward_pre_neck`]);
    /// `text`, when given, replaces the encoding of the present captions.
    pub(crate) fn train_present_pre_neck(
        &self,
        input: NextInput<B>,
        text: Option<Tensor<B, 4>>,
        presence: &Presence,
        sampler: &mut SentenceSampler,
    ) -> Result<PreNeckOutput<B>, ModelError> {
        let batch = input.images[0].dims()[0];
        presence.check_batch(batch)?;
        let text = match text {
            Some(text) => Some(text),
            None => {
                let captions = present_captions(input.captions, presence, self.config.text)?;
                self.train_text(captions.as_deref(), batch, TextMode::Optional, sampler)?
            }
        };
        self.present_pre_neck(input.images, input.camera_ids, text, presence, true)
    }

    /// The UMM forward (or NEXT with zero-filled images when UMM is off).
    fn forward_present(
        &self,
        images: [Tensor<B, 4>; 3],
        camera_ids: Option<Tensor<B, 1, Int>>,
        text: Option<Tensor<B, 4>>,
        presence: &Presence,
        training: bool,
    ) -> Result<NextOutput<B>, ModelError> {
        let pre = self.present_pre_neck(images, camera_ids, text, presence, training)?;
        Ok(self.apply_necks(pre))
    }

    /// [`Self::forward_present`] up to the BNNecks.
    fn present_pre_neck(
        &self,
        images: [Tensor<B, 4>; 3],
        camera_ids: Option<Tensor<B, 1, Int>>,
        text: Option<Tensor<B, 4>>,
        presence: &Presence,
        training: bool,
    ) -> Result<PreNeckOutput<B>, ModelError> {
        let device = images[0].device();
        let Some(umm) = &self.umm else {
            let images = zero_fill(images, presence);
            let (class_tokens, patches) = self.encode_images(images, camera_ids)?;
            return self.forward_pre_neck(class_tokens, patches, text, None);
        };
        let fill = self.config.umm.fill;
        let batch = presence.len();
        let present = presence.present_mask::<B>(&device);
        let (mixed, synthesized, drop_mask, reconstruction) = match fill {
            Fill::Zero => {
                let images = zero_fill(images, presence);
                let all = vec![[true; 3]; batch];
                let mapped = self.map_tokens(images, camera_ids, &all, presence.sketch())?;
                let none = Tensor::zeros([batch, 3], &device);
                (mapped.tokens, none, None, None)
            }
            Fill::Drop => {
                let mapped =
                    self.map_tokens(images, camera_ids, presence.present(), presence.sketch())?;
                let none = Tensor::zeros([batch, 3], &device);
                (mapped.tokens, none, Some(present), None)
            }
            Fill::Synth => {
                let with_targets = training && presence.has_targets();
                let shadow = training && presence.has_shadow();
                let encode = if with_targets {
                    presence.real()
                } else {
                    presence.present()
                };
                let mapped = self.map_tokens(images, camera_ids, encode, presence.sketch())?;
                if presence.is_complete() && !shadow {
                    let none = Tensor::zeros([batch, 3], &device);
                    (mapped.tokens, none, None, None)
                } else {
                    let keep = present.clone().reshape([batch, 3, 1, 1]);
                    let seen = mapped.tokens.clone() * keep.clone();
                    // Shadow drops: the synthesiser reads the present modalities minus the
                    // shadow ones, while the cue learner below still gets their real tokens.
                    let (read, source_rows) = if shadow {
                        let sources = presence.source_mask::<B>(&device);
                        let read = mapped.tokens.clone() * sources.reshape([batch, 3, 1, 1]);
                        (read, presence.sources())
                    } else {
                        (seen.clone(), presence.present().to_vec())
                    };
                    let sources = if training && self.config.umm.rec.detach_sources {
                        read.detach()
                    } else {
                        read
                    };
                    let synth = umm
                        .synthesizer
                        .forward(sources, mapped.positions, &source_rows);
                    let reconstruction = with_targets.then(|| {
                        let target = if self.config.umm.rec.detach_target {
                            mapped.tokens.clone().detach()
                        } else {
                            mapped.tokens.clone()
                        };
                        reconstruction_loss(synth.clone(), target, presence)
                    });
                    let absent = present.clone().neg() + 1.0;
                    let mixed = seen + synth * (keep.neg() + 1.0);
                    (mixed, absent, None, reconstruction)
                }
            }
        };
        let tokens = umm.cue.forward(mixed, synthesized, drop_mask.clone());
        let [_, _, t, d] = tokens.dims();
        let class_tokens = tokens.clone().slice_dim(2, 0..1).reshape([batch, 3, d]);
        let patches = tokens.slice_dim(2, 1..t);
        let mut pre = self.forward_pre_neck(class_tokens, patches, text, drop_mask)?;
        pre.reconstruction = reconstruction;
        Ok(pre)
    }

    /// Run the token mapper on the images where `encode[b][m]` (`sketch[b]`: the RGB slot holds
    /// a sketch; an empty slice means none).
    fn map_tokens(
        &self,
        images: [Tensor<B, 4>; 3],
        camera_ids: Option<Tensor<B, 1, Int>>,
        encode: &[[bool; 3]],
        sketch: &[bool],
    ) -> Result<MappedTokens<B>, ModelError> {
        let Some(umm) = &self.umm else {
            return Err(ModelError::Input("the model has no UMM modules".into()));
        };
        let [batch, _, height, width] = images[0].dims();
        if let Some(bad) = images.iter().find(|i| {
            let [b, c, h, w] = i.dims();
            b != batch || h != height || w != width || (c != 1 && c != 3)
        }) {
            return Err(ModelError::Input(format!(
                "modality images must be [B, 1 or 3, H, W] with one B, H, W; got {:?} and {:?}",
                images[0].dims(),
                bad.dims()
            )));
        }
        if encode.len() != batch {
            return Err(ModelError::Input(format!(
                "presence has {} samples for a batch of {batch}",
                encode.len()
            )));
        }
        let grid = self.vision.grid_for(height, width)?;
        let cameras = self.checked_cameras(camera_ids, batch)?;
        let tokens = umm.token_mapper.encode(
            &self.vision,
            &images,
            cameras.as_ref(),
            grid,
            encode,
            sketch,
        );
        Ok(MappedTokens {
            tokens,
            positions: self.vision.positions_for(grid.0, grid.1),
        })
    }
}

/// Zero the pixels of absent modalities (the images are left untouched when all are present).
fn zero_fill<B: Backend>(images: [Tensor<B, 4>; 3], presence: &Presence) -> [Tensor<B, 4>; 3] {
    if presence.is_complete() {
        return images;
    }
    let device = images[0].device();
    let mask = presence.present_mask::<B>(&device);
    let batch = presence.len();
    let mut m = 0;
    images.map(|image| {
        let keep = mask
            .clone()
            .slice_dim(1, m..m + 1)
            .reshape([batch, 1, 1, 1]);
        m += 1;
        image * keep
    })
}

/// Captions with those of absent modalities removed; with `mode = Required` every present
/// modality must have a non-empty caption.
fn present_captions(
    captions: Option<Vec<SampleCaptions>>,
    presence: &Presence,
    mode: TextMode,
) -> Result<Option<Vec<SampleCaptions>>, ModelError> {
    let Some(mut captions) = captions else {
        if mode == TextMode::Required {
            return Err(ModelError::NoCaptions);
        }
        return Ok(None);
    };
    if captions.len() != presence.len() {
        return Err(ModelError::Input(format!(
            "{} caption entries for a batch of {}",
            captions.len(),
            presence.len()
        )));
    }
    for (sample, (entry, present)) in captions.iter_mut().zip(presence.present()).enumerate() {
        for (modality, caption) in Modality::ALL.into_iter().zip(entry.iter_mut()) {
            if !present[modality.index()] {
                *caption = None;
            } else if mode == TextMode::Required
                && caption.as_deref().is_none_or(|c| c.trim().is_empty())
            {
                return Err(ModelError::MissingCaption { sample, modality });
            }
        }
    }
    Ok(Some(captions))
}

/// Mean over the target (real but absent, or shadow-dropped) modalities of the token MSE of `synth` vs `target`.
fn reconstruction_loss<B: Backend>(
    synth: Tensor<B, 4>,
    target: Tensor<B, 4>,
    presence: &Presence,
) -> Tensor<B, 1> {
    let [batch, _, _, _] = synth.dims();
    let device = synth.device();
    let count = presence.num_targets().max(1);
    let per_modality = (synth - target)
        .powi_scalar(2)
        .mean_dim(3)
        .mean_dim(2)
        .reshape([batch, 3]);
    (per_modality * presence.target_mask::<B>(&device))
        .sum()
        .div_scalar(count as f32)
}

/// Per modality, the sum over samples of the mean over tokens of cosine(a, b).
fn mean_token_cosine<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> [f32; 3] {
    let norm = |x: Tensor<B, 4>| x.powi_scalar(2).sum_dim(3).sqrt().clamp_min(1e-12);
    let dot = (a.clone() * b.clone()).sum_dim(3);
    let cosine = dot / (norm(a) * norm(b)); // [B, 3, T, 1]
    let sums: Vec<f32> = cosine
        .mean_dim(2)
        .sum_dim(0)
        .reshape([3])
        .into_data()
        .iter::<f32>()
        .collect();
    [sums[0], sums[1], sums[2]]
}
