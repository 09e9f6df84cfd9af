//! Expert-collapse diagnostic of a model: the semantic experts' hard sampling masks on a set of
//! records (tokens kept per expert and modality, pairwise IoU; see
//! [`next_model::ExpertMaskStats`]).

use crate::evaluate::{batch_captions, EvalSettings, ModalityMask};
use crate::text_cache::TextFeatureCache;
use crate::TrainError;
use burn::tensor::backend::Backend;
use next_data::{eval_stream, TransformConfig, TripletRecord};
use next_model::{ExpertMaskStats, MaskStatsAccumulator, NextModel, Presence};

/// Run the inference forward (all modalities, whole captions, test transform) over `records`
/// and gather the statistics of the semantic experts' masks; `None` for a model without TMSE.
pub fn expert_mask_stats<B: Backend>(
    model: &NextModel<B>,
    records: &[TripletRecord],
    transform: TransformConfig,
    settings: &EvalSettings,
    device: &B::Device,
) -> Result<Option<ExpertMaskStats>, TrainError> {
    if model.tmse.is_none() {
        return Ok(None);
    }
    let mut stream = eval_stream(records, transform, settings.batch_size, settings.workers, 2)?;
    let mut cache = TextFeatureCache::new();
    let mut accumulator: Option<MaskStatsAccumulator> = None;
    for batch in stream.by_ref() {
        let batch = batch?.into_tensors::<B>(device);
        let n = batch.raw_pids.len();
        let text = if model.config.uses_text() {
            let captions = batch_captions(&batch.captions, ModalityMask::FULL);
            let texts = NextModel::<B>::inference_texts(&captions);
            Some(
                cache
                    .features(model, &texts, device)?
                    .reshape([n, 1, 3, model.dim()]),
            )
        } else {
            None
        };
        // The model's own forward (a UMM model maps and mixes its tokens before the experts).
        let out = model.forward_train_present_with_text(
            batch.images,
            Some(batch.camids),
            text,
            &Presence::complete(n),
        )?;
        let Some(masks) = out.semantic.map(|s| s.masks) else {
            return Ok(None);
        };
        let dims = masks.dims();
        let values = masks
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| TrainError::TensorData {
                what: "expert masks",
                message: format!("{e:?}"),
            })?;
        let acc = accumulator.get_or_insert_with(|| MaskStatsAccumulator::new(dims[1], dims[3]));
        acc.add(&values, dims)
            .map_err(|message| TrainError::TensorData {
                what: "expert masks",
                message,
            })?;
    }
    Ok(accumulator.map(|a| a.finish()))
}
