//! Any-to-any evaluation protocols: query and gallery modality sets chosen independently (text
//! -> RNT, sketch -> R, N -> R, ...), each a row with mAP, R-1/5/10 and mINP, with and without the
//! same-camera filter, next to the R-1 of a random ranking.

use super::{visual_inputs, QueryParts, TextInputCache, VisualPart};
use crate::evaluate::{
    append_rows, batch_captions, eval_config, query_is_gallery, Extracted, ModalityMask,
};
use crate::text_cache::TextFeatureCache;
use crate::{EvalSettings, SettingResult, TrainError};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use next_common::{ModalitySet, Progress, QueryModality};
use next_data::{eval_stream, Dataset, SampleModalities, TransformConfig, TripletRecord};
use next_metrics::{evaluate, EvalProtocol, Features, SampleMeta};
use next_model::{query_text, NextModel};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A query modality set against a gallery modality set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protocol {
    /// What each query provides.
    pub query: ModalitySet,
    /// What each gallery entry provides.
    pub gallery: ModalitySet,
}

impl Protocol {
    /// `query -> gallery`, e.g. `S+text -> RNT`.
    pub fn label(&self) -> String {
        format!("{} -> {}", self.query, self.gallery)
    }

    /// Why `model` cannot run this protocol on data with (`sketches`) or without sketches.
    pub fn unsupported<B: Backend>(&self, model: &NextModel<B>, sketches: bool) -> Option<String> {
        let both = [self.query, self.gallery];
        if both.iter().any(|s| s.contains(QueryModality::Text)) && model.text_query.is_none() {
            return Some(format!(
                "{}: text needs a model trained with the text query head (query.text_head = true)",
                self.label()
            ));
        }
        if both.iter().any(|s| s.contains(QueryModality::Sketch)) && !sketches {
            return Some(format!(
                "{}: the dataset has no sketches (a SK/ folder, or the sketch-from-photo operator)",
                self.label()
            ));
        }
        None
    }
}

/// The protocols of the any-modality issue: text -> RNT, sketch -> R and -> RNT, sketch + text
/// -> RNT, N -> R, N + text -> R, T -> R.
pub fn default_protocols() -> Vec<Protocol> {
    [
        ("text", "RNT"),
        ("S", "R"),
        ("S", "RNT"),
        ("S+text", "RNT"),
        ("N", "R"),
        ("N+text", "R"),
        ("T", "R"),
    ]
    .into_iter()
    .filter_map(|(q, g)| {
        Some(Protocol {
            query: ModalitySet::parse(q).ok()?,
            gallery: ModalitySet::parse(g).ok()?,
        })
    })
    .collect()
}

/// One protocol under one exclusion rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProtocolRow {
    /// Query modality set.
    pub query: String,
    /// Gallery modality set.
    pub gallery: String,
    /// Same-identity gallery entries of the query's camera removed (else only the very sample).
    pub camera_filter: bool,
    /// Metrics (percent); `setting` is `query -> gallery`.
    pub result: SettingResult,
    /// Expected R-1 of a random ranking, percent.
    pub chance_rank1: f64,
    /// Queries evaluated (with at least one positive left).
    pub queries: usize,
}

/// Every row of [`evaluate_protocols`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProtocolReport {
    /// Rows, two per protocol (with and without the camera filter).
    pub rows: Vec<ProtocolRow>,
    /// Protocols skipped, with the reason.
    pub skipped: Vec<String>,
}

/// Embeddings of one split for several parts, one row per record (zeros where a part is absent).
struct SplitParts {
    visual: BTreeMap<VisualPart, Vec<f32>>,
    text: Option<Vec<f32>>,
    has_text: Vec<bool>,
    available: Vec<SampleModalities>,
    meta: Vec<SampleMeta>,
    dim: usize,
}

impl SplitParts {
    /// The embedding rows of `set` (sum of its parts, normalised) and the records that have it.
    fn embed(&self, set: ModalitySet) -> Result<(Vec<f32>, Vec<usize>), TrainError> {
        let parts = QueryParts::of(set);
        let mut sources: Vec<&Vec<f32>> = Vec::new();
        for part in &parts.visual {
            sources.push(self.visual.get(part).ok_or_else(|| missing(set))?);
        }
        if parts.text {
            sources.push(self.text.as_ref().ok_or_else(|| missing(set))?);
        }
        let d = self.dim;
        let mut rows = Vec::new();
        let mut kept = Vec::new();
        for i in 0..self.meta.len() {
            if !has_all(self.available[i], self.has_text[i], set) {
                continue;
            }
            let mut row = vec![0.0f32; d];
            for s in &sources {
                for (r, v) in row.iter_mut().zip(&s[i * d..(i + 1) * d]) {
                    *r += v;
                }
            }
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            rows.extend(row.iter().map(|v| v / norm));
            kept.push(i);
        }
        Ok((rows, kept))
    }
}

/// Whether a record with inputs `available` (and a description when `text`) has every member of
/// `set`.
fn has_all(available: SampleModalities, text: bool, set: ModalitySet) -> bool {
    let spectra = set.spectra();
    (0..3).all(|m| !spectra[m] || available.spectra[m])
        && (!set.contains(QueryModality::Sketch) || available.sketch)
        && (!set.contains(QueryModality::Text) || text)
}

fn missing(set: ModalitySet) -> TrainError {
    TrainError::Input(format!("modality set {set}: its parts were not extracted"))
}

/// Extract every part of `sets` over `records` in one pass.
#[allow(clippy::too_many_arguments)]
fn extract_parts<B: Backend>(
    model: &NextModel<B>,
    records: &[TripletRecord],
    transform: TransformConfig,
    settings: &EvalSettings,
    sets: &BTreeSet<ModalitySet>,
    label: &str,
    caches: &mut (TextFeatureCache, TextInputCache),
    device: &B::Device,
) -> Result<SplitParts, TrainError> {
    let visual: BTreeSet<VisualPart> = sets
        .iter()
        .flat_map(|s| QueryParts::of(*s).visual)
        .collect();
    let want_text = sets.iter().any(|s| s.contains(QueryModality::Text));
    let mut out = SplitParts {
        visual: visual.iter().map(|p| (*p, Vec::new())).collect(),
        text: want_text.then(Vec::new),
        has_text: Vec::with_capacity(records.len()),
        available: Vec::with_capacity(records.len()),
        meta: Vec::with_capacity(records.len()),
        dim: model.feature_dim(),
    };
    let mut stream = eval_stream(records, transform, settings.batch_size, settings.workers, 2)?;
    let mut progress = if settings.verbose {
        Progress::new(label, records.len() as u64, "img")
    } else {
        Progress::hidden(records.len() as u64)
    };
    let (caption_cache, text_cache) = caches;
    for host in stream.by_ref() {
        let batch = host?.into_tensors::<B>(device);
        let n = batch.raw_pids.len();
        let sketch = super::search::batch_sketch(&batch);
        for part in &visual {
            let (images, presence) = visual_inputs(batch.images.clone(), sketch.clone(), *part, n)?;
            let text = if model.config.uses_text() {
                let captions = batch_captions(&batch.captions, ModalityMask(part.captioned()));
                let texts = NextModel::<B>::inference_texts(&captions);
                Some(
                    caption_cache
                        .features(model, &texts, device)?
                        .reshape([n, 1, 3, model.dim()]),
                )
            } else {
                None
            };
            let feats = model.inference_present_with_text(
                images,
                Some(batch.camids.clone()),
                text,
                &presence,
            )?;
            if let Some(rows) = out.visual.get_mut(part) {
                append_rows(rows, feats)?;
            }
        }
        let captions = batch_captions(&batch.captions, ModalityMask::FULL);
        let texts: Vec<Option<String>> = captions.iter().map(query_text).collect();
        out.has_text.extend(texts.iter().map(Option::is_some));
        if let Some(rows) = out.text.as_mut() {
            let present: Vec<(usize, String)> = texts
                .into_iter()
                .enumerate()
                .filter_map(|(i, t)| t.map(|t| (i, t)))
                .collect();
            let mut block = vec![0.0f32; n * out.dim];
            if !present.is_empty() {
                let strings: Vec<String> = present.iter().map(|(_, t)| t.clone()).collect();
                let input = text_cache.inputs(model, &strings, device)?;
                let emb = model.query_embedding(model.text_query_feature(input)?);
                let mut host = Vec::new();
                append_rows(&mut host, emb)?;
                for (k, (i, _)) in present.iter().enumerate() {
                    block[i * out.dim..(i + 1) * out.dim]
                        .copy_from_slice(&host[k * out.dim..(k + 1) * out.dim]);
                }
            }
            rows.extend(block);
        }
        for i in 0..n {
            out.available.push(records[batch.indices[i]].modalities());
            out.meta.push(SampleMeta::new(
                batch.raw_pids[i],
                batch.raw_camids[i],
                batch.sceneids[i],
            ));
        }
        progress.inc(n as u64);
    }
    progress.finish();
    Ok(out)
}

/// Embeddings of `set` for the records of `records` that have every member of it (the record
/// index of each row in the second value): e.g. a gallery of another modality set for search.
pub fn extract_modality_set<B: Backend>(
    model: &NextModel<B>,
    records: &[TripletRecord],
    transform: TransformConfig,
    set: ModalitySet,
    settings: &EvalSettings,
    device: &B::Device,
) -> Result<(Extracted, Vec<usize>), TrainError> {
    let sketches = records.iter().any(|r| r.sketch.is_some());
    let protocol = Protocol {
        query: set,
        gallery: set,
    };
    if let Some(reason) = protocol.unsupported(model, sketches) {
        return Err(TrainError::Input(reason));
    }
    let mut caches = (TextFeatureCache::new(), TextInputCache::new());
    let sets = BTreeSet::from([set]);
    let label = format!("{set} features");
    let parts = extract_parts(
        model,
        records,
        transform,
        settings,
        &sets,
        &label,
        &mut caches,
        device,
    )?;
    let (rows, kept) = parts.embed(set)?;
    if kept.is_empty() {
        return Err(TrainError::Input(format!(
            "no record has every modality of {set}"
        )));
    }
    let extracted = Extracted {
        features: Features::new(rows, kept.len(), parts.dim)?,
        meta: kept.iter().map(|&i| parts.meta[i]).collect(),
        keys: kept.iter().map(|&i| records[i].key.clone()).collect(),
    };
    Ok((extracted, kept))
}

/// Expected R-1 of a random ranking: per query, the share of same-identity entries among the
/// gallery entries it may be ranked against, averaged over queries with a positive.
fn chance_rank1(
    query: &[SampleMeta],
    gallery: &[SampleMeta],
    camera_filter: bool,
    same_records: bool,
) -> f64 {
    let mut sum = 0.0;
    let mut count = 0usize;
    for q in query {
        let (mut valid, mut positive) = (0usize, 0usize);
        for g in gallery {
            let same_sample = same_records && q.sample_id.is_some() && q.sample_id == g.sample_id;
            let junk = same_sample || (camera_filter && q.pid == g.pid && q.camid == g.camid);
            if junk {
                continue;
            }
            valid += 1;
            positive += usize::from(q.pid == g.pid);
        }
        if positive > 0 {
            sum += positive as f64 / valid as f64;
            count += 1;
        }
    }
    100.0 * sum / count.max(1) as f64
}

/// Evaluate `protocols` on the dataset's query and gallery (each split extracted once for all
/// the parts it needs). A protocol the model or data cannot run is an error when `strict`, else
/// listed in [`ProtocolReport::skipped`].
pub fn evaluate_protocols<B: Backend>(
    model: &NextModel<B>,
    dataset: &Dataset,
    protocols: &[Protocol],
    strict: bool,
    settings: &EvalSettings,
    device: &B::Device,
) -> Result<ProtocolReport, TrainError> {
    let sketches = super::search::dataset_has_sketches(dataset);
    let mut runnable = Vec::new();
    let mut skipped = Vec::new();
    for p in protocols {
        match p.unsupported(model, sketches) {
            Some(reason) if strict => return Err(TrainError::Input(reason)),
            Some(reason) => skipped.push(reason),
            None => runnable.push(*p),
        }
    }
    let same = query_is_gallery(dataset);
    let transform = TransformConfig::from_dataset(&dataset.config);
    let mut caches = (TextFeatureCache::new(), TextInputCache::new());
    let mut query_sets: BTreeSet<ModalitySet> = runnable.iter().map(|p| p.query).collect();
    let gallery_sets: BTreeSet<ModalitySet> = runnable.iter().map(|p| p.gallery).collect();
    if same {
        query_sets.extend(gallery_sets.iter().copied());
    }
    let with_ids = |mut parts: SplitParts| {
        for (i, m) in parts.meta.iter_mut().enumerate() {
            m.sample_id = Some(i as u64);
        }
        parts
    };
    let query = with_ids(extract_parts(
        model,
        &dataset.query,
        transform,
        settings,
        &query_sets,
        "query parts",
        &mut caches,
        device,
    )?);
    let gallery_owned;
    let gallery = if same {
        &query
    } else {
        gallery_owned = extract_parts(
            model,
            &dataset.gallery,
            transform,
            settings,
            &gallery_sets,
            "gallery parts",
            &mut caches,
            device,
        )?;
        &gallery_owned
    };
    let fuse = dataset.config.fuse_sketches;
    if fuse
        && same
        && runnable
            .iter()
            .any(|p| p.query.contains(QueryModality::Sketch))
    {
        return Err(TrainError::Input(
            "data.fuse_sketches: fusing the sketches of an identity into one query needs a query \
             split apart from the gallery (as Market-Sketch-1K's); here the queries are the \
             gallery's own samples"
                .into(),
        ));
    }
    let mut rows = Vec::new();
    for p in &runnable {
        let (q_rows, q_kept) = query.embed(p.query)?;
        let (g_rows, g_kept) = gallery.embed(p.gallery)?;
        let q_meta: Vec<SampleMeta> = q_kept.iter().map(|&i| query.meta[i]).collect();
        let fused = fuse && p.query.contains(QueryModality::Sketch);
        let (q_rows, q_meta) = match fused {
            true => fuse_by_identity(&q_rows, &q_meta, query.dim),
            false => (q_rows, q_meta),
        };
        let mut g_meta: Vec<SampleMeta> = g_kept.iter().map(|&i| gallery.meta[i]).collect();
        if !same {
            // Distinct splits: no query is a gallery sample.
            g_meta.iter_mut().for_each(|m| m.sample_id = None);
        }
        let q = Features::new(q_rows, q_meta.len(), query.dim)?;
        let g = Features::new(g_rows, g_meta.len(), gallery.dim)?;
        for camera_filter in [true, false] {
            let mut cfg = eval_config(dataset, settings.max_rank);
            if !camera_filter {
                cfg.protocol = EvalProtocol::None;
            }
            let report = evaluate(&q, &g, &q_meta, &g_meta, &cfg)?;
            rows.push(ProtocolRow {
                query: match fused {
                    true => format!("{} fused", p.query.label()),
                    false => p.query.label(),
                },
                gallery: p.gallery.label(),
                camera_filter,
                result: SettingResult::from_report(&p.label(), &report),
                chance_rank1: chance_rank1(&q_meta, &g_meta, camera_filter, same),
                queries: report.num_valid_queries,
            });
        }
    }
    Ok(ProtocolReport { rows, skipped })
}

/// One query per identity (in order of first appearance): the mean of its rows `[n, dim]`,
/// L2-normalised, with the metadata of its first row (the multi-query protocol of
/// Market-Sketch-1K, `data.fuse_sketches`).
pub fn fuse_by_identity(
    rows: &[f32],
    meta: &[SampleMeta],
    dim: usize,
) -> (Vec<f32>, Vec<SampleMeta>) {
    let mut order: Vec<i64> = Vec::new();
    let mut sums: BTreeMap<i64, (Vec<f32>, SampleMeta)> = BTreeMap::new();
    for (m, row) in meta.iter().zip(rows.chunks(dim.max(1))) {
        let (sum, _) = sums.entry(m.pid).or_insert_with(|| {
            order.push(m.pid);
            (vec![0.0; dim], *m)
        });
        sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
    let mut out_rows = Vec::with_capacity(order.len() * dim);
    let mut out_meta = Vec::with_capacity(order.len());
    for pid in order {
        if let Some((sum, m)) = sums.remove(&pid) {
            let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            out_rows.extend(sum.iter().map(|v| v / norm));
            out_meta.push(m);
        }
    }
    (out_rows, out_meta)
}

/// The report as a plain-text table, one row per protocol and camera filter.
pub fn format_protocol_table(title: &str, report: &ProtocolReport) -> String {
    let mut out = format!(
        "{title}\n{:<10} {:<8} {:<7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>6}\n",
        "query", "gallery", "cam-flt", "mAP", "R-1", "R-5", "R-10", "mINP", "chance-R1", "n"
    );
    for r in &report.rows {
        let m = &r.result;
        out.push_str(&format!(
            "{:<10} {:<8} {:<7} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>9.2} {:>6}\n",
            r.query,
            r.gallery,
            if r.camera_filter { "yes" } else { "no" },
            m.map,
            m.rank1,
            m.rank5,
            m.rank10,
            m.minp,
            r.chance_rank1,
            r.queries
        ));
    }
    for s in &report.skipped {
        out.push_str(&format!("skipped: {s}\n"));
    }
    out
}

/// Camera ids `[n]` all `camera` (for queries from outside the dataset).
pub(crate) fn camera_ids<B: Backend>(
    camera: i64,
    n: usize,
    device: &B::Device,
) -> Tensor<B, 1, Int> {
    Tensor::from_data(TensorData::new(vec![camera; n], [n]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chance_is_the_share_of_positives_left_to_rank() {
        let m = |pid, cam, id| SampleMeta {
            sample_id: Some(id),
            ..SampleMeta::new(pid, cam, -1)
        };
        let all = vec![m(1, 0, 0), m(1, 1, 1), m(2, 0, 2), m(2, 1, 3)];
        // Without the filter: each query ranks the 3 others, one of them positive.
        let free = chance_rank1(&all, &all, false, true);
        assert!((free - 100.0 / 3.0).abs() < 1e-9, "{free}");
        // With it: the same-id same-camera entry is only the sample itself here, so the same.
        assert!((chance_rank1(&all, &all, true, true) - free).abs() < 1e-9);
        let table = format_protocol_table(
            "t",
            &ProtocolReport {
                rows: vec![],
                skipped: vec!["x: why".into()],
            },
        );
        assert!(table.contains("chance-R1") && table.contains("skipped: x: why"));
        assert_eq!(default_protocols().len(), 7);
        // Fusion: identity 5's two rows become their normalised mean, identity 9 stays.
        let meta = vec![m(5, 6, 0), m(9, 6, 1), m(5, 6, 2)];
        let rows = vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
        let (fused, fused_meta) = fuse_by_identity(&rows, &meta, 2);
        assert_eq!(fused_meta.iter().map(|m| m.pid).collect::<Vec<_>>(), [5, 9]);
        let norm = (1.6f32 * 1.6 + 0.8 * 0.8).sqrt();
        let expected = [1.6 / norm, 0.8 / norm, 0.0, 1.0];
        assert!(
            fused
                .iter()
                .zip(expected)
                .all(|(a, b)| (a - b).abs() < 1e-6),
            "{fused:?}"
        );
        assert_eq!(default_protocols()[0].label(), "text -> RNT");
    }
}
