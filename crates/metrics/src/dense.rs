//! The textbook approach, for small inputs, exports and cross-checks: the full query x gallery
//! distance matrix, then a stable argsort of every row and the reference evaluation loop.
//! Memory is O(Q x G); prefer [`crate::evaluate`] for anything large.

use crate::engine::{in_pool, Columns, Engine, RowAdjust, GALLERY_TILE, QUERY_TILE};
use crate::evaluate::{check_meta, prepare, Exclusions};
use crate::report::{summarize, EvalReport, QueryStats};
use crate::{EvalConfig, Features, MetricsError, SampleMeta};
use rayon::prelude::*;

/// The full `Q x G` distance matrix (row-major), with the exact values [`crate::evaluate`] ranks by.
pub fn distance_matrix(
    query: &Features,
    gallery: &Features,
    cfg: &EvalConfig,
) -> Result<Vec<f32>, MetricsError> {
    cfg.validate()?;
    let q_meta = vec![SampleMeta::new(0, 0, 0); query.rows()];
    let g_meta = vec![SampleMeta::new(0, 0, 0); gallery.rows()];
    let cfg = EvalConfig {
        query_is_gallery: false,
        ..cfg.clone()
    };
    check_meta(query, gallery, &q_meta, &g_meta, &cfg)?;
    let engine = prepare(query, gallery, &q_meta, &g_meta, &cfg)?;
    in_pool(cfg.threads, || engine_matrix(&engine, None))
}

/// Fill the dense matrix from an engine (rows in query order), in parallel over query tiles.
pub(crate) fn engine_matrix(engine: &Engine<'_>, adjust: Option<&dyn RowAdjust>) -> Vec<f32> {
    let num_g = engine.gallery.rows();
    let num_q = engine.query.rows();
    let mut matrix = vec![0.0f32; num_q * num_g];
    matrix
        .par_chunks_mut(QUERY_TILE * num_g)
        .enumerate()
        .for_each(|(t, block)| {
            let queries: Vec<usize> =
                (t * QUERY_TILE..(t * QUERY_TILE + QUERY_TILE).min(num_q)).collect();
            let mut scratch = engine.scratch();
            engine.load_queries(&queries, &mut scratch);
            crate::engine::for_each_tile(0, num_g, |columns| {
                let Columns::Range { start, len } = columns else {
                    return;
                };
                let out = engine.distances(&queries, columns, adjust, &mut scratch);
                for r in 0..queries.len() {
                    block[r * num_g + start..r * num_g + start + len]
                        .copy_from_slice(&out[r * GALLERY_TILE..r * GALLERY_TILE + len]);
                }
            });
        });
    matrix
}

/// Evaluate a precomputed `Q x G` distance matrix the textbook way (stable argsort per row, then
/// the reference loop over the sorted row). Single-threaded, like the NumPy reference.
pub fn evaluate_distance_matrix(
    distances: &[f32],
    query_meta: &[SampleMeta],
    gallery_meta: &[SampleMeta],
    cfg: &EvalConfig,
) -> Result<EvalReport, MetricsError> {
    cfg.validate()?;
    let (num_q, num_g) = (query_meta.len(), gallery_meta.len());
    if num_q == 0 {
        return Err(MetricsError::Empty { set: "query" });
    }
    if num_g == 0 {
        return Err(MetricsError::Empty { set: "gallery" });
    }
    if distances.len() != num_q * num_g {
        return Err(MetricsError::BadShape {
            set: "distance matrix",
            len: distances.len(),
            rows: num_q,
            dim: num_g,
        });
    }
    if cfg.query_is_gallery && num_q != num_g {
        return Err(MetricsError::NotSameSet {
            query: num_q,
            gallery: num_g,
        });
    }
    let exclusions = Exclusions::new(query_meta, gallery_meta, cfg);
    let mut per_query = Vec::with_capacity(num_q);
    let mut order: Vec<usize> = Vec::with_capacity(num_g);
    for (i, row) in distances.chunks_exact(num_g).enumerate() {
        if row.iter().any(|d| d.is_nan()) {
            return Err(MetricsError::NonFinite {
                set: "distance matrix",
                row: i,
            });
        }
        order.clear();
        order.extend(0..num_g);
        order.sort_by(|&a, &b| row[a].total_cmp(&row[b])); // stable: ties keep gallery order
        let matches: Vec<bool> = order
            .iter()
            .filter(|&&j| !exclusions.is_junk(i, j))
            .map(|&j| gallery_meta[j].pid == query_meta[i].pid)
            .collect();
        per_query.push(reference_query_stats(&matches));
    }
    summarize(per_query, cfg, num_g)
}

/// The reference per-query loop over a ranked match vector (junk already removed).
fn reference_query_stats(matches: &[bool]) -> Option<QueryStats> {
    let num_rel = matches.iter().filter(|m| **m).count();
    if num_rel == 0 {
        return None;
    }
    let mut hits = 0usize;
    let mut ap = 0.0f64;
    let mut first = None;
    let mut last = 0;
    for (i, _) in matches.iter().enumerate().filter(|(_, m)| **m) {
        hits += 1;
        ap += hits as f64 / (i + 1) as f64;
        first.get_or_insert(i);
        last = i;
    }
    Some(QueryStats {
        ap: ap / num_rel as f64,
        inp: num_rel as f64 / (last + 1) as f64,
        first_hit_rank: first.unwrap_or(0) + 1,
        hardest_positive_rank: last + 1,
        num_positives: num_rel,
    })
}
