//! Embedding-collapse diagnostic of a model: how spread out its pre-BN and post-BN inference
//! features are on a set of records (see [`next_metrics::feature_spread`]).

use crate::evaluate::{extract, EvalSettings, ModalityMask};
use crate::TrainError;
use burn::tensor::backend::Backend;
use next_data::{TransformConfig, TripletRecord};
use next_metrics::{feature_spread, FeatureSpread};
use next_model::{FeatureStage, NextModel};
use serde::{Deserialize, Serialize};

/// Spread of the two candidate inference features (both L2-normalised) of one record set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingSpread {
    /// The identity feature before the BNNeck (the triplet-loss input).
    pub pre_bn: FeatureSpread,
    /// The batch-normalised feature (the identity-loss input).
    pub post_bn: FeatureSpread,
}

impl EmbeddingSpread {
    /// Two lines, pre-BN then post-BN.
    pub fn lines(&self) -> String {
        format!("pre-BN:  {}\npost-BN: {}\n", self.pre_bn, self.post_bn)
    }
}

/// Extract the pre-BN and the post-BN features of `records` (all modalities, test transform)
/// and measure their spread; the model's configured inference feature is left as it was.
pub fn embedding_spread<B: Backend>(
    model: &NextModel<B>,
    records: &[TripletRecord],
    transform: TransformConfig,
    settings: &EvalSettings,
    device: &B::Device,
) -> Result<EmbeddingSpread, TrainError> {
    let mut staged = model.clone();
    let mut measure = |stage: FeatureStage| -> Result<FeatureSpread, TrainError> {
        staged.config.feature = stage;
        let extracted = extract(
            &staged,
            records,
            transform,
            settings,
            ModalityMask::FULL,
            "",
            device,
        )?;
        Ok(feature_spread(&extracted.features, &extracted.meta)?)
    };
    Ok(EmbeddingSpread {
        pre_bn: measure(FeatureStage::PreBn)?,
        post_bn: measure(FeatureStage::PostBn)?,
    })
}
