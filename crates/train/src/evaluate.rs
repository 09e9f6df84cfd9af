//! Feature extraction and evaluation with the dataset's protocol, including the six
//! missing-modality settings (the missing modality's caption dropped and, for NEXT, its
//! normalised image replaced by zeros; a UMM model fills it per `umm.fill`), at test time only.

use crate::text_cache::TextFeatureCache;
use crate::umm::{inference_features, EvalCondition};
use crate::TrainError;
use burn::tensor::backend::Backend;
use next_common::{Modality, Progress};
use next_data::{eval_stream, Dataset, TransformConfig, TripletRecord};
use next_metrics::{evaluate, EvalConfig, EvalProtocol, EvalReport, Features, SampleMeta};
use next_model::{NextModel, SampleCaptions};
use serde::{Deserialize, Serialize};

/// Which modalities are present in an evaluation setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModalityMask(pub [bool; 3]);

impl ModalityMask {
    /// Whether `modality` is present.
    pub fn has(self, modality: Modality) -> bool {
        self.0[modality.index()]
    }

    /// All three modalities present.
    pub const FULL: ModalityMask = ModalityMask([true, true, true]);

    /// The six missing-modality settings of the references: missing R, N, T, RN, RT, NT.
    pub const MISSING: [(&'static str, ModalityMask); 6] = [
        ("-R", ModalityMask([false, true, true])),
        ("-N", ModalityMask([true, false, true])),
        ("-T", ModalityMask([true, true, false])),
        ("-RN", ModalityMask([false, false, true])),
        ("-RT", ModalityMask([false, true, false])),
        ("-NT", ModalityMask([true, false, false])),
    ];
}

/// How features are extracted and ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalSettings {
    /// Images per forward batch.
    pub batch_size: usize,
    /// Decoding threads.
    pub workers: usize,
    /// Ranks kept in CMC.
    pub max_rank: usize,
    /// Progress bars on stderr.
    pub verbose: bool,
}

impl EvalSettings {
    /// Settings of a training configuration.
    pub fn from_config(cfg: &crate::TrainConfig, verbose: bool) -> Self {
        Self {
            batch_size: cfg.eval.batch_size,
            workers: cfg.loader.workers,
            max_rank: cfg.eval.max_rank,
            verbose,
        }
    }
}

/// Extracted features of a list of records, with their metadata.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// L2-normalised features, one row per record.
    pub features: Features,
    /// pid / camid / sceneid per row.
    pub meta: Vec<SampleMeta>,
    /// Record keys (file names) per row.
    pub keys: Vec<String>,
}

/// Captions of a batch as the model wants them (empty captions become `None`).
pub fn batch_captions(captions: &[Vec<String>; 3], mask: ModalityMask) -> Vec<SampleCaptions> {
    let n = captions[0].len();
    (0..n)
        .map(|i| {
            Modality::ALL.map(|m| {
                let c = captions[m.index()].get(i).map(|s| s.trim()).unwrap_or("");
                (mask.has(m) && !c.is_empty()).then(|| c.to_string())
            })
        })
        .collect()
}

/// Run the inference forward over `records` (test transform), with absent modalities zero-filled.
pub fn extract<B: Backend>(
    model: &NextModel<B>,
    records: &[TripletRecord],
    transform: TransformConfig,
    settings: &EvalSettings,
    mask: ModalityMask,
    label: &str,
    device: &B::Device,
) -> Result<Extracted, TrainError> {
    extract_cached(
        model,
        records,
        transform,
        settings,
        EvalCondition::missing(mask),
        label,
        &mut TextFeatureCache::new(),
        device,
    )
}

/// [`extract`] under `condition` (missing modalities, a degradation), with caption features
/// taken from (and added to) `cache`, which must belong to `model`'s frozen text encoder.
#[allow(clippy::too_many_arguments)]
fn extract_cached<B: Backend>(
    model: &NextModel<B>,
    records: &[TripletRecord],
    transform: TransformConfig,
    settings: &EvalSettings,
    condition: EvalCondition,
    label: &str,
    cache: &mut TextFeatureCache,
    device: &B::Device,
) -> Result<Extracted, TrainError> {
    let mut stream = eval_stream(records, transform, settings.batch_size, settings.workers, 2)?;
    let mut progress = if label.is_empty() {
        Progress::hidden(records.len() as u64)
    } else {
        Progress::new(label, records.len() as u64, "img")
    };
    let mut rows: Vec<f32> = Vec::new();
    let mut dim = 0;
    let mut meta = Vec::with_capacity(records.len());
    let mut keys = Vec::with_capacity(records.len());
    let use_text = model.config.uses_text();
    let mask = condition.mask;
    for host in stream.by_ref() {
        let mut host = host?;
        let present = condition.apply(&mut host, transform.normalization)?;
        let batch = host.into_tensors::<B>(device);
        let n = batch.raw_pids.len();
        // The model's inference path, with each caption's feature from the cache.
        let text = if use_text {
            let texts = NextModel::<B>::inference_texts(&batch_captions(&batch.captions, mask));
            Some(
                cache
                    .features(model, &texts, device)?
                    .reshape([n, 1, 3, model.dim()]),
            )
        } else {
            None
        };
        let feats = inference_features(
            model,
            batch.images,
            batch.camids.clone(),
            text,
            present,
            mask,
        )?;
        dim = append_rows(&mut rows, feats)?;
        for i in 0..n {
            meta.push(SampleMeta::new(
                batch.raw_pids[i],
                batch.raw_camids[i],
                batch.sceneids[i],
            ));
            keys.push(records[batch.indices[i]].key.clone());
        }
        progress.inc(n as u64);
    }
    progress.finish();
    let features = Features::new(rows, records.len(), dim)?;
    Ok(Extracted {
        features,
        meta,
        keys,
    })
}

/// Evaluation of one setting (all modalities, or one missing-modality setting).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettingResult {
    /// Setting name: `all`, `-R`, `-N`, ...
    pub setting: String,
    /// mAP in percent.
    pub map: f64,
    /// Rank-1 in percent.
    pub rank1: f64,
    /// Rank-5 in percent.
    pub rank5: f64,
    /// Rank-10 in percent.
    pub rank10: f64,
    /// mINP in percent.
    pub minp: f64,
}

impl SettingResult {
    /// Percentages from a metrics report.
    pub fn from_report(setting: &str, r: &EvalReport) -> Self {
        let rank = |k: usize| 100.0 * r.rank(k).or_else(|| r.cmc.last().copied()).unwrap_or(0.0);
        Self {
            setting: setting.to_string(),
            map: 100.0 * r.map,
            rank1: rank(1),
            rank5: rank(5),
            rank10: rank(10),
            minp: 100.0 * r.minp,
        }
    }
}

/// The metrics configuration of a dataset: MSVR310 uses the scene protocol.
pub fn eval_config(dataset: &Dataset, max_rank: usize) -> EvalConfig {
    let protocol = if dataset.config.kind.uses_scene_protocol() {
        EvalProtocol::Msvr
    } else {
        EvalProtocol::Standard
    };
    EvalConfig {
        protocol,
        max_rank,
        ..EvalConfig::default()
    }
}

/// Whether query and gallery are the same records (RGBNT201: the test set is both).
pub fn query_is_gallery(dataset: &Dataset) -> bool {
    dataset.query.len() == dataset.gallery.len()
        && dataset
            .query
            .iter()
            .zip(&dataset.gallery)
            .all(|(q, g)| q.key == g.key)
}

/// Query and gallery features of one setting (extracted once when they are the same records).
pub fn extract_query_gallery<B: Backend>(
    model: &NextModel<B>,
    dataset: &Dataset,
    settings: &EvalSettings,
    mask: ModalityMask,
    device: &B::Device,
) -> Result<(Extracted, Extracted), TrainError> {
    let mut cache = TextFeatureCache::new();
    let condition = EvalCondition::missing(mask);
    extract_query_gallery_cached(model, dataset, settings, condition, &mut cache, device)
}

fn extract_query_gallery_cached<B: Backend>(
    model: &NextModel<B>,
    dataset: &Dataset,
    settings: &EvalSettings,
    condition: EvalCondition,
    cache: &mut TextFeatureCache,
    device: &B::Device,
) -> Result<(Extracted, Extracted), TrainError> {
    let transform = TransformConfig::from_dataset(&dataset.config);
    let label = |s: &str| {
        if settings.verbose {
            s.to_string()
        } else {
            String::new()
        }
    };
    let query = extract_cached(
        model,
        &dataset.query,
        transform,
        settings,
        condition,
        &label("query"),
        cache,
        device,
    )?;
    let gallery = if query_is_gallery(dataset) {
        query.clone()
    } else {
        extract_cached(
            model,
            &dataset.gallery,
            transform,
            settings,
            condition,
            &label("gallery"),
            cache,
            device,
        )?
    };
    Ok((query, gallery))
}

/// Evaluate the model on the dataset: all modalities, plus the six missing-modality settings when
/// `missing` is set. Returns the settings in order (`all` first) and the full-setting features.
pub fn evaluate_model<B: Backend>(
    model: &NextModel<B>,
    dataset: &Dataset,
    settings: &EvalSettings,
    missing: bool,
    device: &B::Device,
) -> Result<(Vec<SettingResult>, Extracted, Extracted, EvalReport), TrainError> {
    let cfg = eval_config(dataset, settings.max_rank);
    let mut cache = TextFeatureCache::new();
    let (query, gallery) = extract_query_gallery_cached(
        model,
        dataset,
        settings,
        EvalCondition::missing(ModalityMask::FULL),
        &mut cache,
        device,
    )?;
    let report = evaluate(
        &query.features,
        &gallery.features,
        &query.meta,
        &gallery.meta,
        &cfg,
    )?;
    let mut results = vec![SettingResult::from_report("all", &report)];
    if missing {
        for (name, mask) in ModalityMask::MISSING {
            let quiet = EvalSettings {
                verbose: false,
                ..*settings
            };
            let condition = EvalCondition::missing(mask);
            results.push(evaluate_setting(
                model, dataset, &quiet, name, condition, &mut cache, device,
            )?);
        }
        let n = (results.len() - 1) as f64;
        let avg = |f: fn(&SettingResult) -> f64| results[1..].iter().map(f).sum::<f64>() / n;
        let average = SettingResult {
            setting: "avg".into(),
            map: avg(|r| r.map),
            rank1: avg(|r| r.rank1),
            rank5: avg(|r| r.rank5),
            rank10: avg(|r| r.rank10),
            minp: avg(|r| r.minp),
        };
        results.push(average);
    }
    Ok((results, query, gallery, report))
}

/// Extract query and gallery under `condition` and rank them: the result named `name`.
pub fn evaluate_setting<B: Backend>(
    model: &NextModel<B>,
    dataset: &Dataset,
    settings: &EvalSettings,
    name: &str,
    condition: EvalCondition,
    cache: &mut TextFeatureCache,
    device: &B::Device,
) -> Result<SettingResult, TrainError> {
    let cfg = eval_config(dataset, settings.max_rank);
    let (q, g) = extract_query_gallery_cached(model, dataset, settings, condition, cache, device)?;
    let r = evaluate(&q.features, &g.features, &q.meta, &g.meta, &cfg)?;
    Ok(SettingResult::from_report(name, &r))
}

/// A plain-text table of settings.
pub fn format_table(title: &str, results: &[SettingResult]) -> String {
    let mut out = format!(
        "{title}\n{:<8} {:>7} {:>7} {:>7} {:>7} {:>7}\n",
        "setting", "mAP", "R-1", "R-5", "R-10", "mINP"
    );
    for r in results {
        out.push_str(&format!(
            "{:<8} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>7.2}\n",
            r.setting, r.map, r.rank1, r.rank5, r.rank10, r.minp
        ));
    }
    out
}

/// Append the rows of a feature batch `[n, dim]` to `rows`; returns `dim`.
pub(crate) fn append_rows<B: Backend>(
    rows: &mut Vec<f32>,
    features: burn::tensor::Tensor<B, 2>,
) -> Result<usize, TrainError> {
    let dim = features.dims()[1];
    let data = features.into_data().convert::<f32>();
    rows.extend(data.as_slice::<f32>().map_err(|e| TrainError::TensorData {
        what: "features",
        message: format!("{e:?}"),
    })?);
    Ok(dim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_follow_the_modality_mask_and_drop_empty_text() {
        let caps = [
            vec!["a red coat.".to_string(), "".to_string()],
            vec!["nir text".to_string(), "x".to_string()],
            vec!["tir".to_string(), "y".to_string()],
        ];
        let out = batch_captions(&caps, ModalityMask([true, false, true]));
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0],
            [Some("a red coat.".into()), None, Some("tir".into())]
        );
        assert_eq!(out[1], [None, None, Some("y".into())]);
    }

    #[test]
    fn table_lists_every_setting() {
        let r = SettingResult {
            setting: "-R".into(),
            map: 12.345,
            rank1: 50.0,
            rank5: 60.0,
            rank10: 70.0,
            minp: 5.0,
        };
        let t = format_table("T", &[r]);
        assert!(
            t.contains("-R") && t.contains("12.35") && t.contains("50.00"),
            "{t}"
        );
    }
}
