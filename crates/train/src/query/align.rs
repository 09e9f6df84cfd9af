//! The alignment loss in training: per step, the embeddings of a few query patterns (single
//! modalities R, N, T and S when the batch has sketches, or with `query.align.subsets` every
//! proper subset; the text query whenever the model has its head) are pulled towards the fused
//! embeddings of the batch ([`NextModel::alignment_loss`]), the mean over the patterns.
//!
//! In data-parallel training each rank runs the patterns' forwards on its own rows; the query
//! features of every rank are gathered (this rank's rows differentiable, as the fused features
//! of [`crate::distributed::Replica::global_output`]) and every rank computes the loss on the
//! whole global batch, exactly as one device would.

use super::{visual_inputs, VisualPart};
use crate::distributed::Replica;
use crate::evaluate::{batch_captions, ModalityMask};
use crate::query::TextInputCache;
use crate::text_cache::TextFeatureCache;
use crate::TrainError;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use next_data::transform::mix_seed;
use next_model::{query_text, AlignLoss, NextInput, NextModel, SentenceSampler};

/// What the alignment loss of one step reads from the batch.
#[derive(Debug, Clone)]
pub struct AlignBatch<'a, B: Backend> {
    /// RGB, NIR, TIR images `[B, 3, H, W]` as the loader made them.
    pub images: [Tensor<B, 4>; 3],
    /// Camera ids `[B]`.
    pub camids: Tensor<B, 1, Int>,
    /// Captions per modality, as in the batch.
    pub captions: &'a [Vec<String>; 3],
    /// Sketches `[B, 1 or 3, H, W]`, when the batch has them.
    pub sketch: Option<Tensor<B, 4>>,
    /// Per sample, which of RGB, NIR, TIR it has.
    pub present: Vec<[bool; 3]>,
    /// Per sample, whether it has a sketch.
    pub sketch_present: Vec<bool>,
    /// Training labels of the rows of the fused features: every rank's batch in rank order in
    /// data-parallel training (as [`crate::distributed::GlobalOutput::labels`]), else this
    /// batch's `[B]`.
    pub labels: Tensor<B, 1, Int>,
}

/// The caches the alignment loss encodes text with (the frozen encoder's rows).
#[derive(Debug, Default)]
pub struct AlignCaches {
    /// Caption features for TMSE.
    pub captions: TextFeatureCache,
    /// Text-head inputs of the descriptions.
    pub texts: TextInputCache,
}

/// The visual query patterns the loss draws from: the single modalities R, N, T (and S with
/// sketches), or with `subsets` every proper subset of R, N, T and the sketch alone or with NIR
/// and / or TIR.
pub fn candidate_parts(sketches: bool, subsets: bool) -> Vec<VisualPart> {
    let mut spectra = vec![
        [true, false, false],
        [false, true, false],
        [false, false, true],
    ];
    let mut others = vec![[false, false]];
    if subsets {
        spectra.extend([
            [true, true, false],
            [true, false, true],
            [false, true, true],
        ]);
        others.extend([[true, false], [false, true], [true, true]]);
    }
    let mut parts: Vec<VisualPart> = spectra.into_iter().map(VisualPart::spectra).collect();
    if sketches {
        parts.extend(others.into_iter().map(VisualPart::sketch));
    }
    parts
}

/// The visual query patterns drawn at `step`: `count` of [`candidate_parts`] (all of them when
/// there are fewer), without repetition, in an order fixed by `(seed, step)`.
pub fn draw_visual_parts(
    seed: u64,
    step: u64,
    sketches: bool,
    subsets: bool,
    count: usize,
) -> Vec<VisualPart> {
    let mut keyed: Vec<(u64, VisualPart)> = candidate_parts(sketches, subsets)
        .into_iter()
        .enumerate()
        .map(|(k, p)| (mix_seed(&[seed, step, k as u64, 0xA11]), p))
        .collect();
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().take(count).map(|(_, p)| p).collect()
}

/// Where the rows of a step's alignment loss come from: this batch alone, or (data parallel)
/// every rank's batch, gathered through `replica`.
#[derive(Debug, Clone, Copy)]
pub struct AlignScope<'a> {
    /// This rank's handle on the collective (`None`: one device).
    pub replica: Option<&'a Replica>,
}

impl AlignScope<'_> {
    /// One device: the batch is the whole batch.
    pub const LOCAL: AlignScope<'static> = AlignScope { replica: None };
}

/// The alignment loss of a step (`None` when `query.align` is off, or nothing to align): the
/// mean over the drawn query patterns of SDM + identity loss against `fused` (the training
/// forward's pre-BN features of the rows of `batch.labels`). A pattern with the sketch counts
/// `query.align.sketch_weight` times in that mean's numerator.
#[allow(clippy::too_many_arguments)]
pub fn alignment_step<B: AutodiffBackend>(
    model: &NextModel<B>,
    batch: AlignBatch<'_, B>,
    fused: Tensor<B, 2>,
    caches: &mut AlignCaches,
    sentences: &mut SentenceSampler,
    scope: AlignScope<'_>,
    seed: u64,
    step: u64,
    device: &B::Device,
) -> Result<Option<AlignLoss<B>>, TrainError> {
    let cfg = &model.config.query.align;
    if !cfg.enabled {
        return Ok(None);
    }
    let parts = draw_visual_parts(
        seed,
        step,
        batch.sketch.is_some(),
        cfg.subsets,
        cfg.patterns_per_step,
    );
    let mut losses = Vec::new();
    for part in parts {
        let loss = visual_pattern_loss(
            model, &batch, &fused, part, caches, sentences, scope, device,
        )?;
        losses.extend(loss.map(|l| {
            if part.sketch_slot && cfg.sketch_weight != 1.0 {
                AlignLoss {
                    total: l.total.mul_scalar(cfg.sketch_weight),
                    ..l
                }
            } else {
                l
            }
        }));
    }
    losses.extend(text_pattern_loss(
        model, &batch, &fused, caches, scope, device,
    )?);
    Ok(mean_loss(losses))
}

/// The loss of one visual pattern over the rows that have every input of it.
#[allow(clippy::too_many_arguments)]
pub fn visual_pattern_loss<B: AutodiffBackend>(
    model: &NextModel<B>,
    batch: &AlignBatch<'_, B>,
    fused: &Tensor<B, 2>,
    part: VisualPart,
    caches: &mut AlignCaches,
    sentences: &mut SentenceSampler,
    scope: AlignScope<'_>,
    device: &B::Device,
) -> Result<Option<AlignLoss<B>>, TrainError> {
    let n = batch.camids.dims()[0];
    let rows: Vec<usize> = (0..n)
        .filter(|&i| {
            let has = batch.present.get(i).copied().unwrap_or([true; 3]);
            let sketch = batch.sketch_present.get(i).copied().unwrap_or(false);
            (0..3).all(|m| !part.captioned()[m] || has[m]) && (!part.sketch_slot || sketch)
        })
        .collect();
    if scope.replica.is_none() && rows.len() < 2 {
        return Ok(None);
    }
    let feature = match rows.is_empty() {
        true => None,
        false => {
            let index = row_index::<B>(&rows, device);
            let pick = |t: Tensor<B, 4>| t.select(0, index.clone());
            let images = batch.images.clone().map(pick);
            let sketch = batch.sketch.clone().map(pick);
            let (images, presence) = visual_inputs(images, sketch, part, rows.len())?;
            let picked: [Vec<String>; 3] = std::array::from_fn(|m| {
                rows.iter()
                    .map(|&i| batch.captions[m].get(i).cloned().unwrap_or_default())
                    .collect()
            });
            let captions = batch_captions(&picked, ModalityMask(part.captioned()));
            let text = if model.config.uses_text() {
                caches
                    .captions
                    .training_features(model, &captions, sentences, device)?
            } else {
                None
            };
            // Up to the BNNecks only: the pre-BN feature is the query, and the necks' running
            // statistics stay those of the training batch (and of the gathered batch on every
            // rank of a data-parallel run).
            let input = NextInput {
                images,
                camera_ids: Some(batch.camids.clone().select(0, index)),
                captions: None,
            };
            let pre = model.forward_train_pre_neck(input, text, Some(&presence), sentences)?;
            Some(pre.feature)
        }
    };
    aligned(
        model,
        feature,
        &rows,
        n,
        fused,
        &batch.labels,
        scope,
        device,
    )
}

/// The loss of the text query over the rows with a description (`None` without a text head).
pub fn text_pattern_loss<B: AutodiffBackend>(
    model: &NextModel<B>,
    batch: &AlignBatch<'_, B>,
    fused: &Tensor<B, 2>,
    caches: &mut AlignCaches,
    scope: AlignScope<'_>,
    device: &B::Device,
) -> Result<Option<AlignLoss<B>>, TrainError> {
    if model.text_query.is_none() {
        return Ok(None);
    }
    let n = batch.camids.dims()[0];
    let captions = batch_captions(batch.captions, ModalityMask::FULL);
    let (rows, texts): (Vec<usize>, Vec<String>) = captions
        .iter()
        .enumerate()
        .filter_map(|(i, c)| query_text(c).map(|t| (i, t)))
        .unzip();
    if scope.replica.is_none() && rows.len() < 2 {
        return Ok(None);
    }
    let feature = match rows.is_empty() {
        true => None,
        false => {
            let input = caches.texts.inputs(model, &texts, device)?;
            Some(model.text_query_feature(input)?)
        }
    };
    aligned(
        model,
        feature,
        &rows,
        n,
        fused,
        &batch.labels,
        scope,
        device,
    )
}

/// SDM + identity loss of query features `local` (of this batch's `rows`, out of `n`) against
/// the fused features and labels of the same rows; in data-parallel training every rank's rows
/// gathered first. `None` when fewer than two rows (in all) have the pattern.
#[allow(clippy::too_many_arguments)]
fn aligned<B: AutodiffBackend>(
    model: &NextModel<B>,
    local: Option<Tensor<B, 2>>,
    rows: &[usize],
    n: usize,
    fused: &Tensor<B, 2>,
    labels: &Tensor<B, 1, Int>,
    scope: AlignScope<'_>,
    device: &B::Device,
) -> Result<Option<AlignLoss<B>>, TrainError> {
    let (queries, rows) = match scope.replica {
        // Rows of the fused features: this rank's part starts past the parts before it.
        Some(r) => {
            let global: Vec<i64> = rows.iter().map(|&i| (r.rank * n + i) as i64).collect();
            match r.gather_ragged(local, &global, fused.dims()[1], device)? {
                Some(gathered) => gathered,
                None => return Ok(None),
            }
        }
        None => match local {
            Some(q) => (q, rows.iter().map(|&i| i as i64).collect()),
            None => return Ok(None),
        },
    };
    if rows.len() < 2 {
        return Ok(None);
    }
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(rows.clone(), [rows.len()]), device);
    let loss = model.alignment_loss(
        &[queries],
        fused.clone().select(0, index.clone()),
        labels.clone().select(0, index),
    )?;
    Ok(Some(loss))
}

/// `rows` as an index tensor.
fn row_index<B: Backend>(rows: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let values: Vec<i64> = rows.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(values, [rows.len()]), device)
}

/// The mean of the patterns' losses (`None` for none).
fn mean_loss<B: Backend>(losses: Vec<AlignLoss<B>>) -> Option<AlignLoss<B>> {
    let n = losses.len() as f32;
    losses
        .into_iter()
        .reduce(|a, b| AlignLoss {
            total: a.total + b.total,
            sdm: a.sdm + b.sdm,
            id: a.id + b.id,
        })
        .map(|sum| AlignLoss {
            total: sum.total.div_scalar(n),
            sdm: sum.sdm.div_scalar(n),
            id: sum.id.div_scalar(n),
        })
}

/// The scalar value of a one-element loss.
pub fn scalar<B: Backend>(t: &Tensor<B, 1>) -> f64 {
    t.clone().into_scalar().elem()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;
    use next_model::{NextConfig, TextMode};
    use std::collections::HashSet;

    type A = Autodiff<Flex>;

    #[test]
    fn visual_parts_come_from_the_seed_and_include_sketches_only_when_there() {
        let a = draw_visual_parts(1, 5, false, false, 2);
        assert_eq!(a, draw_visual_parts(1, 5, false, false, 2));
        assert_eq!(a.len(), 2);
        assert!(a.iter().all(|p| !p.sketch_slot));
        let all = draw_visual_parts(1, 5, true, false, 8);
        assert_eq!(all.len(), 4);
        assert_eq!(all.iter().filter(|p| p.sketch_slot).count(), 1);
        let firsts: HashSet<_> = (0..40)
            .map(|s| draw_visual_parts(1, s, true, false, 1)[0])
            .collect();
        assert_eq!(firsts.len(), 4, "every pattern is drawn first at some step");
        // Subsets: the six proper subsets of R, N, T and four with the sketch, all different.
        let subsets = draw_visual_parts(1, 5, true, true, 100);
        assert_eq!(subsets.len(), 10);
        assert_eq!(subsets.iter().collect::<HashSet<_>>().len(), 10);
        assert!(subsets.contains(&VisualPart::spectra([false, true, true])));
        assert!(subsets.contains(&VisualPart::sketch([true, true])));
        assert!(!subsets.contains(&VisualPart::spectra([true; 3])));
        assert_eq!(draw_visual_parts(1, 5, false, true, 100).len(), 6);
    }

    /// A tiny UMM model with the sketch embedding and the alignment loss (3 patterns drawn
    /// from the subsets), no dropout and no text, so that its forwards are deterministic.
    fn aligned_model() -> NextModel<A> {
        let mut cfg = NextConfig::tiny(2);
        cfg.num_cameras = 0;
        cfg.text = TextMode::Off;
        cfg.tmse.dropout = 0.0;
        cfg.csse.dropout = 0.0;
        cfg.umm.enabled = true;
        cfg.query.sketch = true;
        cfg.query.align.enabled = true;
        cfg.query.align.subsets = true;
        cfg.query.align.patterns_per_step = 3;
        cfg.init::<A>(&Default::default()).unwrap()
    }

    #[test]
    fn a_step_is_the_mean_of_its_drawn_patterns_and_repeats_from_the_seed() {
        let device = Default::default();
        let model = aligned_model();
        let n = 4;
        let image =
            || Tensor::<A, 4>::random([n, 3, 32, 16], Distribution::Normal(0.0, 1.0), &device);
        let captions: [Vec<String>; 3] = std::array::from_fn(|_| vec![String::new(); n]);
        let batch = AlignBatch {
            images: [image(), image(), image()],
            camids: Tensor::zeros([n], &device),
            captions: &captions,
            sketch: Some(image()),
            present: vec![[true; 3]; n],
            sketch_present: vec![true; n],
            labels: Tensor::from_data(TensorData::new(vec![0i64, 0, 1, 1], [n]), &device),
        };
        let fused = Tensor::<A, 2>::random(
            [n, model.feature_dim()],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let seed = 7;
        // A step that draws both a pattern with the sketch and one without.
        let step = (0..100)
            .find(|&s| {
                let parts = draw_visual_parts(seed, s, true, true, 3);
                parts.iter().any(|p| p.sketch_slot) && parts.iter().any(|p| !p.sketch_slot)
            })
            .expect("a step with both kinds of pattern");
        let run = |model: &NextModel<A>| {
            let loss = alignment_step(
                model,
                batch.clone(),
                fused.clone(),
                &mut AlignCaches::default(),
                &mut model.sentence_sampler(0),
                AlignScope::LOCAL,
                seed,
                step,
                &device,
            )
            .unwrap()
            .expect("three patterns to align");
            scalar(&loss.total)
        };
        let total = run(&model);
        assert_eq!(
            total,
            run(&model),
            "the same seed and step give the same loss"
        );
        let parts = draw_visual_parts(seed, step, true, true, 3);
        assert_eq!(parts.len(), 3);
        let each: Vec<f64> = parts
            .iter()
            .map(|&part| {
                let loss = visual_pattern_loss(
                    &model,
                    &batch,
                    &fused,
                    part,
                    &mut AlignCaches::default(),
                    &mut model.sentence_sampler(0),
                    AlignScope::LOCAL,
                    &device,
                )
                .unwrap()
                .unwrap();
                scalar(&loss.total)
            })
            .collect();
        let mean = each.iter().sum::<f64>() / 3.0;
        assert!(
            (total - mean).abs() <= 1e-5 * mean.abs().max(1.0),
            "step {total} vs mean of {each:?}"
        );
        // `sketch_weight` scales the sketch patterns' terms of the mean, and only those.
        let mut weighted = model.clone();
        weighted.config.query.align.sketch_weight = 4.0;
        let scaled: f64 = parts
            .iter()
            .zip(&each)
            .map(|(p, l)| if p.sketch_slot { 4.0 * l } else { *l })
            .sum::<f64>()
            / 3.0;
        let total_weighted = run(&weighted);
        assert!(
            (total_weighted - scaled).abs() <= 1e-5 * scaled.abs().max(1.0),
            "weighted step {total_weighted} vs {scaled} from {each:?}"
        );
        // The patterns differ in loss (else the test could not tell a mean from one of them).
        assert!(each.iter().any(|&l| (l - each[0]).abs() > 1e-4), "{each:?}");
        // Other steps draw other patterns.
        let drawn: HashSet<Vec<VisualPart>> = (0..10)
            .map(|s| draw_visual_parts(seed, s, true, true, 3))
            .collect();
        assert!(drawn.len() > 1);
    }
}
