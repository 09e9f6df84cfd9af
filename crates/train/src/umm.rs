//! UMM in training and evaluation: the hook between loading a batch and making it tensors.
//!
//! Training ([`training_batch`]): with `[umm_augment]` on, each host batch goes through
//! [`next_data::augment_batch`] (modality dropout with the captions of dropped modalities
//! cleared, pixel synthesis, degradations) and comes back with its per-sample [`Presence`]
//! (dropped-but-real and shadow-dropped modalities are the reconstruction targets). The text-feature cache keys on
//! the caption texts, so cleared captions simply become zero rows.
//!
//! Evaluation ([`evaluate_umm`]): all modalities; the six missing settings (query and gallery,
//! as DeMo / TOP-ReID) under each fill (zero / synth / drop; zero only for a model without
//! UMM, which is the NEXT baseline); the three "uncertain" settings (night-dark RGB, noisy NIR,
//! blurred TIR); each group's average and retention (average / full); and the token cosine of
//! synthesised vs real tokens against zero-image tokens, per modality.

use crate::evaluate::{evaluate_setting, SettingResult};
use crate::text_cache::TextFeatureCache;
use crate::{EvalSettings, ModalityMask, TrainError};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use next_common::Modality;
use next_data::{
    apply_missing_setting, apply_test_degradation, augment_batch, eval_stream, Dataset, HostBatch,
    ModalityAugConfig, Normalization, TestDegradation, TransformConfig, TripletBatch,
    MISSING_SETTINGS,
};
use next_model::{Fill, NextModel, Presence};
use serde::{Deserialize, Serialize};

/// Seed of the test-time degradations (fixed, so that every checkpoint sees the same noise).
const DEGRADATION_SEED: u64 = 0xDE6_2ADE;

/// A training batch as tensors, with the per-sample presence of the UMM forward (`None`: the
/// plain NEXT forward, when neither the augmentation nor the model's UMM is on).
pub fn training_batch<B: Backend>(
    mut host: HostBatch,
    augment: &ModalityAugConfig,
    umm_model: bool,
    normalization: Normalization,
    seed: u64,
    step: u64,
    device: &B::Device,
) -> Result<(TripletBatch<B>, Option<Presence>), TrainError> {
    if !augment.enabled && !umm_model {
        return Ok((host.into_tensors(device), None));
    }
    let drawn = augment_batch(&mut host, augment, normalization, seed, step)?;
    let presence = Presence::with_targets(drawn.present, drawn.real)?.with_shadow(drawn.shadow)?;
    Ok((host.into_tensors(device), Some(presence)))
}

/// What an evaluation pass does to every batch before the forward: which modalities are present
/// (captions of the others cleared) and which fixed degradation, if any, is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalCondition {
    /// Modalities present.
    pub mask: ModalityMask,
    /// Test-time degradation of one modality.
    pub degradation: Option<TestDegradation>,
}

impl EvalCondition {
    /// Only the modalities of `mask` present, nothing degraded.
    pub fn missing(mask: ModalityMask) -> Self {
        Self {
            mask,
            degradation: None,
        }
    }

    /// Every modality present, one degraded.
    pub fn degraded(degradation: TestDegradation) -> Self {
        Self {
            mask: ModalityMask::FULL,
            degradation: Some(degradation),
        }
    }

    /// Apply the condition to a host batch; returns the per-sample presence rows.
    pub fn apply(
        &self,
        batch: &mut HostBatch,
        normalization: Normalization,
    ) -> Result<Vec<[bool; 3]>, TrainError> {
        if let Some(d) = self.degradation {
            apply_test_degradation(batch, d, normalization, DEGRADATION_SEED)?;
        }
        Ok(apply_missing_setting(batch, self.mask.0))
    }
}

/// Identity features of an evaluation batch: the UMM forward with per-sample presence (and the
/// model's fill) when the model has UMM, else NEXT with absent images zero-filled.
pub fn inference_features<B: Backend>(
    model: &NextModel<B>,
    images: [Tensor<B, 4>; 3],
    camera_ids: Tensor<B, 1, Int>,
    text: Option<Tensor<B, 4>>,
    present: Vec<[bool; 3]>,
    mask: ModalityMask,
) -> Result<Tensor<B, 2>, TrainError> {
    if model.umm.is_some() {
        let presence = Presence::new(present)?;
        return Ok(model.inference_present_with_text(images, Some(camera_ids), text, &presence)?);
    }
    let images = Modality::ALL.map(|m| {
        let image = images[m.index()].clone();
        if mask.has(m) {
            image
        } else {
            image.zeros_like()
        }
    });
    Ok(model.inference_with_text(images, Some(camera_ids), text)?)
}

/// The six missing settings under one fill, with their average and retention.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FillResults {
    /// `zero`, `synth` or `drop`.
    pub fill: String,
    /// `-R`, `-N`, `-T`, `-RN`, `-RT`, `-NT`.
    pub settings: Vec<SettingResult>,
    /// Mean over the six settings.
    pub average: SettingResult,
    /// Average mAP / full-modality mAP.
    pub retention: f64,
}

/// Token cosine of synthesised and of zero-image tokens to the real ones, per modality.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CosineResults {
    /// Mean cosine(synthesised, real) for R, N, T.
    pub synthesized: [f64; 3],
    /// Mean cosine(zero-image tokens, real) for R, N, T.
    pub zero_fill: [f64; 3],
    /// Samples averaged (the query set).
    pub samples: usize,
}

/// Everything `next eval` reports about missing and uncertain modalities.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UmmReport {
    /// Whether the model has UMM (else only the zero fill: the NEXT baseline).
    pub umm: bool,
    /// All modalities.
    pub full: SettingResult,
    /// The six missing settings per fill.
    pub missing: Vec<FillResults>,
    /// `night_rgb`, `noisy_nir`, `blurred_tir`.
    pub uncertain: Vec<SettingResult>,
    /// Mean over the uncertain settings.
    pub uncertain_average: SettingResult,
    /// Uncertain average mAP / full-modality mAP.
    pub uncertain_retention: f64,
    /// Synthesised vs zero tokens (UMM models only).
    pub cosine: Option<CosineResults>,
}

impl UmmReport {
    /// The missing-setting results of `fill`, if evaluated.
    pub fn fill(&self, fill: &str) -> Option<&FillResults> {
        self.missing.iter().find(|f| f.fill == fill)
    }
}

/// Mean of every metric over `rows`, named `name`.
fn average(name: &str, rows: &[SettingResult]) -> SettingResult {
    let n = rows.len().max(1) as f64;
    let avg = |f: fn(&SettingResult) -> f64| rows.iter().map(f).sum::<f64>() / n;
    SettingResult {
        setting: name.into(),
        map: avg(|r| r.map),
        rank1: avg(|r| r.rank1),
        rank5: avg(|r| r.rank5),
        rank10: avg(|r| r.rank10),
        minp: avg(|r| r.minp),
    }
}

/// Name of a fill as in the config.
pub fn fill_name(fill: Fill) -> &'static str {
    match fill {
        Fill::Zero => "zero",
        Fill::Synth => "synth",
        Fill::Drop => "drop",
    }
}

/// Evaluate `model` under every missing and uncertain setting (see the module docs).
pub fn evaluate_umm<B: Backend>(
    model: &NextModel<B>,
    dataset: &Dataset,
    settings: &EvalSettings,
    device: &B::Device,
) -> Result<UmmReport, TrainError> {
    let quiet = EvalSettings {
        verbose: false,
        ..*settings
    };
    let mut model = model.clone();
    let mut cache = TextFeatureCache::new();
    let umm = model.umm.is_some();
    let configured = model.config.umm.fill;
    let full = evaluate_setting(
        &model,
        dataset,
        &quiet,
        "all",
        EvalCondition::missing(ModalityMask::FULL),
        &mut cache,
        device,
    )?;
    let fills: &[Fill] = if umm {
        &[Fill::Zero, Fill::Synth, Fill::Drop]
    } else {
        &[Fill::Zero]
    };
    let mut missing = Vec::new();
    for &fill in fills {
        model.set_umm_fill(fill);
        let mut rows = Vec::new();
        for s in MISSING_SETTINGS {
            let condition = EvalCondition::missing(ModalityMask(s.present));
            rows.push(evaluate_setting(
                &model, dataset, &quiet, s.name, condition, &mut cache, device,
            )?);
        }
        let avg = average("avg", &rows);
        missing.push(FillResults {
            fill: fill_name(fill).into(),
            retention: avg.map / full.map.max(1e-9),
            settings: rows,
            average: avg,
        });
    }
    model.set_umm_fill(configured);
    let mut uncertain = Vec::new();
    for d in TestDegradation::ALL {
        let condition = EvalCondition::degraded(d);
        uncertain.push(evaluate_setting(
            &model,
            dataset,
            &quiet,
            d.name(),
            condition,
            &mut cache,
            device,
        )?);
    }
    let uncertain_average = average("avg", &uncertain);
    let cosine = if umm {
        Some(token_cosine(&model, dataset, &quiet, device)?)
    } else {
        None
    };
    Ok(UmmReport {
        umm,
        uncertain_retention: uncertain_average.map / full.map.max(1e-9),
        full,
        missing,
        uncertain,
        uncertain_average,
        cosine,
    })
}

/// [`NextModel::synthesis_cosine`] over the query set.
fn token_cosine<B: Backend>(
    model: &NextModel<B>,
    dataset: &Dataset,
    settings: &EvalSettings,
    device: &B::Device,
) -> Result<CosineResults, TrainError> {
    let transform = TransformConfig::from_dataset(&dataset.config);
    let mut stream = eval_stream(
        &dataset.query,
        transform,
        settings.batch_size,
        settings.workers,
        2,
    )?;
    let mut sum = next_model::TokenCosine::default();
    while let Some(batch) = stream.next_tensors::<B>(device) {
        let batch = batch?;
        sum.merge(&model.synthesis_cosine(batch.images, Some(batch.camids))?);
    }
    let (synthesized, zero_fill) = sum.means();
    Ok(CosineResults {
        synthesized,
        zero_fill,
        samples: sum.samples,
    })
}

/// The report as plain-text tables: mAP / R-1 per setting and fill, averages, retention, cosine.
pub fn format_umm_table(report: &UmmReport) -> String {
    let mut out = String::from("missing / uncertain modalities (mAP / R-1, %)\n");
    out.push_str(&format!("{:<14}", "fill"));
    let names: Vec<&str> = MISSING_SETTINGS.iter().map(|s| s.name).collect();
    for name in names.iter().chain(&["avg"]) {
        out.push_str(&format!(" {name:>13}"));
    }
    out.push_str(&format!(" {:>9}\n", "retention"));
    let cell = |r: &SettingResult| format!(" {:>6.2}/{:>6.2}", r.map, r.rank1);
    for f in &report.missing {
        out.push_str(&format!("{:<14}", f.fill));
        for r in f.settings.iter().chain(std::iter::once(&f.average)) {
            out.push_str(&cell(r));
        }
        out.push_str(&format!(" {:>9.3}\n", f.retention));
    }
    out.push_str(&format!(
        "{:<14}{}  (all modalities)\n",
        "full",
        cell(&report.full)
    ));
    out.push_str(&format!("{:<14}", "uncertain"));
    for r in &report.uncertain {
        out.push_str(&format!(" {}:{}", r.setting, cell(r).trim_start()));
    }
    out.push_str(&format!(
        " avg:{} retention {:.3}\n",
        cell(&report.uncertain_average).trim_start(),
        report.uncertain_retention
    ));
    if let Some(c) = &report.cosine {
        out.push_str("token cosine to the real tokens (R / N / T)\n");
        let row = |v: &[f64; 3]| format!("{:.3} / {:.3} / {:.3}", v[0], v[1], v[2]);
        out.push_str(&format!("  synthesised  {}\n", row(&c.synthesized)));
        out.push_str(&format!("  zero image   {}\n", row(&c.zero_fill)));
    }
    out
}
