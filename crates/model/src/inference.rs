//! The one text path and the one inference path of the model: which caption texts a forward
//! encodes (and in which order), and how the output becomes the L2-normalised retrieval
//! feature. Callers that cache text features (the trainer, the evaluation) use these too.

use crate::config::FeatureStage;
use crate::model::{l2_normalize, NextModel, NextOutput};
use crate::sentences::{SampleCaptions, SentenceSampler};
use crate::ModelError;
use burn::prelude::*;

impl<B: Backend> NextModel<B> {
    /// The texts a training forward encodes, in the order (sample, semantic expert, modality):
    /// one sentence-sampled caption per expert and modality (`None` for a missing caption).
    /// The result reshapes to `[B, K_s, 3, D]` once encoded.
    pub fn training_texts(
        &self,
        captions: &[SampleCaptions],
        sampler: &mut SentenceSampler,
    ) -> Vec<Option<String>> {
        let k_s = self.tmse.as_ref().map_or(0, |t| t.num_experts());
        let mut texts = Vec::with_capacity(captions.len() * k_s * 3);
        for sample in captions {
            for _ in 0..k_s {
                for caption in sample {
                    texts.push(caption.as_deref().map(|c| sampler.sample(c)));
                }
            }
        }
        texts
    }

    /// The texts an inference forward encodes: each caption whole, in the order (sample,
    /// modality), shared by the experts. The result reshapes to `[B, 1, 3, D]` once encoded.
    pub fn inference_texts(captions: &[SampleCaptions]) -> Vec<Option<String>> {
        captions.iter().flatten().cloned().collect()
    }

    /// Inference from images and already-encoded text features `[B, 1, 3, D]` (or none): the
    /// L2-normalised identity feature `[B, 3D]`, pre- or post-BN per config.
    pub fn inference_with_text(
        &self,
        images: [Tensor<B, 4>; 3],
        camera_ids: Option<Tensor<B, 1, Int>>,
        text: Option<Tensor<B, 4>>,
    ) -> Result<Tensor<B, 2>, ModelError> {
        let out = self.forward_with_text(images, camera_ids, text)?;
        Ok(self.inference_feature(out))
    }

    /// The configured inference feature of an output (pre- or post-BN), L2-normalised.
    pub(crate) fn inference_feature(&self, out: NextOutput<B>) -> Tensor<B, 2> {
        let feature = match self.config.feature {
            FeatureStage::PreBn => out.feature,
            FeatureStage::PostBn => out.bn_feature,
        };
        l2_normalize(feature)
    }
}
