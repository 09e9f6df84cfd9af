//! Exact mAP / CMC / mINP without the query x gallery matrix.
//!
//! Ranking rule (identical to a stable argsort of each distance row): gallery entries are ordered
//! by ascending distance and, at equal distance, by ascending gallery index. Junk entries (same pid
//! and same camera, or same scene for MSVR310, or the identical sample) are removed from the ranked
//! list. For each query only its positives' distances and, per positive, the number of kept
//! negatives ranked before it are kept; AP, CMC and mINP follow exactly from those counts.

use crate::engine::{chunk_len, for_each_tile, in_pool, Columns, Engine, PreparedSet, RowAdjust};
use crate::engine::{GALLERY_TILE, QUERY_TILE};
use crate::report::{summarize, EvalReport, QueryStats};
use crate::{EvalConfig, EvalProtocol, Features, MetricsError, SampleMeta, NO_SCENE};
use rayon::prelude::*;
use std::collections::HashMap;

/// Evaluate `query` against `gallery`: mAP, CMC up to `cfg.max_rank`, mINP, per-query results.
pub fn evaluate(
    query: &Features,
    gallery: &Features,
    query_meta: &[SampleMeta],
    gallery_meta: &[SampleMeta],
    cfg: &EvalConfig,
) -> Result<EvalReport, MetricsError> {
    let engine = prepare(query, gallery, query_meta, gallery_meta, cfg)?;
    in_pool(cfg.threads, || {
        evaluate_engine(&engine, None, query_meta, gallery_meta, cfg)
    })?
}

/// Validate inputs and build the distance engine shared by every entry point.
pub(crate) fn prepare<'a>(
    query: &'a Features,
    gallery: &'a Features,
    query_meta: &[SampleMeta],
    gallery_meta: &[SampleMeta],
    cfg: &EvalConfig,
) -> Result<Engine<'a>, MetricsError> {
    cfg.validate()?;
    check_meta(query, gallery, query_meta, gallery_meta, cfg)?;
    if query.dim() != gallery.dim() {
        return Err(MetricsError::DimMismatch {
            query: query.dim(),
            gallery: gallery.dim(),
        });
    }
    let q = PreparedSet::new(query, cfg.normalize, "query")?;
    let g = PreparedSet::new(gallery, cfg.normalize, "gallery")?;
    Engine::new(q, g, cfg.distance)
}

/// Metadata lengths must match the feature rows; `query_is_gallery` needs equal sizes.
pub(crate) fn check_meta(
    query: &Features,
    gallery: &Features,
    query_meta: &[SampleMeta],
    gallery_meta: &[SampleMeta],
    cfg: &EvalConfig,
) -> Result<(), MetricsError> {
    if query_meta.len() != query.rows() {
        return Err(MetricsError::MetaMismatch {
            set: "query",
            rows: query.rows(),
            meta: query_meta.len(),
        });
    }
    if gallery_meta.len() != gallery.rows() {
        return Err(MetricsError::MetaMismatch {
            set: "gallery",
            rows: gallery.rows(),
            meta: gallery_meta.len(),
        });
    }
    if cfg.protocol == EvalProtocol::Msvr {
        for (set, meta) in [("query", query_meta), ("gallery", gallery_meta)] {
            if let Some(row) = meta.iter().position(|m| m.sceneid == NO_SCENE) {
                return Err(MetricsError::MissingSceneIds { set, row });
            }
        }
    }
    if cfg.query_is_gallery && query.rows() != gallery.rows() {
        return Err(MetricsError::NotSameSet {
            query: query.rows(),
            gallery: gallery.rows(),
        });
    }
    Ok(())
}

/// Which gallery entries are junk or positive for each query.
pub(crate) struct Exclusions<'m> {
    query_meta: &'m [SampleMeta],
    gallery_meta: &'m [SampleMeta],
    by_pid: HashMap<i64, Vec<usize>>,
    by_sample: HashMap<u64, Vec<usize>>,
    protocol: EvalProtocol,
    query_is_gallery: bool,
}

impl<'m> Exclusions<'m> {
    /// Index the gallery by pid and by sample id.
    pub(crate) fn new(
        query_meta: &'m [SampleMeta],
        gallery_meta: &'m [SampleMeta],
        cfg: &EvalConfig,
    ) -> Self {
        let mut by_pid: HashMap<i64, Vec<usize>> = HashMap::new();
        let mut by_sample: HashMap<u64, Vec<usize>> = HashMap::new();
        for (j, m) in gallery_meta.iter().enumerate() {
            by_pid.entry(m.pid).or_default().push(j);
            if let Some(id) = m.sample_id {
                by_sample.entry(id).or_default().push(j);
            }
        }
        Self {
            query_meta,
            gallery_meta,
            by_pid,
            by_sample,
            protocol: cfg.protocol,
            query_is_gallery: cfg.query_is_gallery,
        }
    }

    /// Whether gallery `j` is the very sample of query `i`.
    fn identical(&self, i: usize, j: usize) -> bool {
        (self.query_is_gallery && i == j)
            || (self.query_meta[i].sample_id.is_some()
                && self.query_meta[i].sample_id == self.gallery_meta[j].sample_id)
    }

    /// Whether gallery `j` is removed from the ranked list of query `i`.
    pub(crate) fn is_junk(&self, i: usize, j: usize) -> bool {
        let (q, g) = (&self.query_meta[i], &self.gallery_meta[j]);
        let protocol_junk = q.pid == g.pid
            && match self.protocol {
                EvalProtocol::Standard => q.camid == g.camid,
                EvalProtocol::Msvr => q.sceneid == g.sceneid,
                EvalProtocol::None => false,
            };
        protocol_junk || self.identical(i, j)
    }

    /// Gallery entries with the pid of query `i`, ascending.
    fn same_pid(&self, i: usize) -> &[usize] {
        self.by_pid
            .get(&self.query_meta[i].pid)
            .map_or(&[], Vec::as_slice)
    }

    /// Entries that may be the identical sample of query `i` (whatever their pid).
    fn identical_candidates(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let by_index = (self.query_is_gallery && i < self.gallery_meta.len()).then_some(i);
        let by_id = self.query_meta[i]
            .sample_id
            .and_then(|id| self.by_sample.get(&id))
            .map_or(&[][..], Vec::as_slice);
        by_index.into_iter().chain(by_id.iter().copied())
    }

    /// Positives (ascending) and all excluded-from-negatives entries (positives and junk, ascending).
    fn plan(&self, i: usize) -> (Vec<usize>, Vec<usize>) {
        let same = self.same_pid(i);
        let positives: Vec<usize> = same
            .iter()
            .copied()
            .filter(|&j| !self.is_junk(i, j))
            .collect();
        let mut special: Vec<usize> = same.to_vec();
        special.extend(self.identical_candidates(i));
        special.sort_unstable();
        special.dedup();
        (positives, special)
    }
}

/// Per-query working state: positives sorted by (distance, index), the excluded entries, and a
/// lookup table over the positives' distance range that makes finding a negative's bucket O(1).
struct QueryPlan {
    query: usize,
    positives: Vec<(f32, usize)>,
    special: Vec<usize>,
    lookup: Vec<u32>,
    lookup_low: f32,
    lookup_scale: f32,
}

/// Cells of the per-query lookup table.
const LOOKUP_CELLS: usize = 512;

/// Whether positive `(pd, pj)` ranks before the entry `(d, j)`.
#[inline]
fn positive_before((pd, pj): (f32, usize), d: f32, j: usize) -> bool {
    pd < d || (pd == d && pj < j)
}

impl QueryPlan {
    /// Build the plan and its lookup table (`lookup[c]`: positives below the start of cell `c`).
    fn new(query: usize, positives: Vec<(f32, usize)>, special: Vec<usize>) -> Self {
        let (low, high) = match (positives.first(), positives.last()) {
            (Some(a), Some(b)) => (a.0, b.0),
            _ => (0.0, 0.0),
        };
        let width = (high - low) / LOOKUP_CELLS as f32;
        let scale = if width > 0.0 && width.is_finite() {
            1.0 / width
        } else {
            0.0
        };
        let lookup = (0..=LOOKUP_CELLS)
            .map(|c| {
                let edge = low + c as f32 * width;
                positives.partition_point(|&(pd, _)| pd < edge) as u32
            })
            .collect();
        Self {
            query,
            positives,
            special,
            lookup,
            lookup_low: low,
            lookup_scale: scale,
        }
    }

    /// Number of positives ranked before the entry `(d, j)`.
    #[inline]
    fn bucket(&self, d: f32, j: usize) -> usize {
        let cell = ((d - self.lookup_low) * self.lookup_scale).clamp(0.0, LOOKUP_CELLS as f32);
        // The table is only a starting point: rounding may put it one step off either way.
        let mut b = self.lookup[cell as usize] as usize;
        while b > 0 && !positive_before(self.positives[b - 1], d, j) {
            b -= 1;
        }
        while b < self.positives.len() && positive_before(self.positives[b], d, j) {
            b += 1;
        }
        b
    }
}

/// Shared evaluation loop (also used by re-ranking through `adjust`). Must run inside the pool.
pub(crate) fn evaluate_engine(
    engine: &Engine<'_>,
    adjust: Option<&dyn RowAdjust>,
    query_meta: &[SampleMeta],
    gallery_meta: &[SampleMeta],
    cfg: &EvalConfig,
) -> Result<EvalReport, MetricsError> {
    let exclusions = Exclusions::new(query_meta, gallery_meta, cfg);
    // Queries of one pid share positives: tiling in pid order keeps the positive pre-pass small.
    let mut order: Vec<usize> = (0..query_meta.len()).collect();
    order.sort_by_key(|&i| (query_meta[i].pid, i));
    let tiles: Vec<&[usize]> = order.chunks(QUERY_TILE).collect();
    let plans: Vec<Vec<QueryPlan>> = tiles
        .par_iter()
        .map(|tile| plan_tile(engine, adjust, &exclusions, tile))
        .collect();

    let num_gallery = engine.gallery.rows();
    let chunk = chunk_len(cfg.block_size);
    let chunks: Vec<(usize, usize)> = (0..num_gallery)
        .step_by(chunk)
        .map(|s| (s, (s + chunk).min(num_gallery)))
        .collect();
    let items: Vec<(usize, usize)> = (0..tiles.len())
        .flat_map(|t| (0..chunks.len()).map(move |c| (t, c)))
        .collect();
    let partial: Vec<Vec<Vec<u32>>> = items
        .par_iter()
        .map(|&(t, c)| count_closer_negatives(engine, adjust, tiles[t], &plans[t], chunks[c]))
        .collect();

    let mut stats: Vec<Option<QueryStats>> = vec![None; query_meta.len()];
    for (t, tile_plans) in plans.iter().enumerate() {
        for (r, plan) in tile_plans.iter().enumerate() {
            if plan.positives.is_empty() {
                continue;
            }
            let mut closer = vec![0u64; plan.positives.len()];
            for c in 0..chunks.len() {
                for (total, n) in closer.iter_mut().zip(&partial[t * chunks.len() + c][r]) {
                    *total += u64::from(*n);
                }
            }
            stats[plan.query] = Some(QueryStats::from_closer_negatives(&closer));
        }
    }
    summarize(stats, cfg, num_gallery)
}

/// Positives and exclusions of a tile's queries, with the positives' distances.
fn plan_tile(
    engine: &Engine<'_>,
    adjust: Option<&dyn RowAdjust>,
    exclusions: &Exclusions<'_>,
    tile: &[usize],
) -> Vec<QueryPlan> {
    let raw: Vec<(Vec<usize>, Vec<usize>)> = tile.iter().map(|&i| exclusions.plan(i)).collect();
    let mut union: Vec<usize> = raw.iter().flat_map(|(p, _)| p.iter().copied()).collect();
    union.sort_unstable();
    union.dedup();
    let mut distances: Vec<Vec<f32>> = raw.iter().map(|(p, _)| vec![f32::NAN; p.len()]).collect();
    if !union.is_empty() {
        let mut scratch = engine.scratch();
        engine.load_queries(tile, &mut scratch);
        for (block_index, block) in union.chunks(GALLERY_TILE).enumerate() {
            let offset = block_index * GALLERY_TILE;
            let out = engine.distances(tile, Columns::List(block), adjust, &mut scratch);
            for (r, (positives, _)) in raw.iter().enumerate() {
                for (k, j) in positives.iter().enumerate() {
                    // `union` holds every positive, so the search always succeeds.
                    let u = union.binary_search(j).unwrap_or(0);
                    if (offset..offset + block.len()).contains(&u) {
                        distances[r][k] = out[r * GALLERY_TILE + u - offset];
                    }
                }
            }
        }
    }
    raw.into_iter()
        .zip(distances)
        .zip(tile)
        .map(|(((positives, special), d), &query)| {
            let mut positives: Vec<(f32, usize)> = d.into_iter().zip(positives).collect();
            positives.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            QueryPlan::new(query, positives, special)
        })
        .collect()
}

/// For each query of a tile and each of its positives, the number of kept negatives in the gallery
/// rows `range` that rank before that positive but after the previous one.
fn count_closer_negatives(
    engine: &Engine<'_>,
    adjust: Option<&dyn RowAdjust>,
    tile: &[usize],
    plans: &[QueryPlan],
    (start, end): (usize, usize),
) -> Vec<Vec<u32>> {
    let mut counts: Vec<Vec<u32>> = plans.iter().map(|p| vec![0; p.positives.len()]).collect();
    if plans.iter().all(|p| p.positives.is_empty()) {
        return counts;
    }
    let mut scratch = engine.scratch();
    engine.load_queries(tile, &mut scratch);
    for_each_tile(start, end, |columns| {
        let Columns::Range { start: first, len } = columns else {
            return;
        };
        let out = engine.distances(tile, columns, adjust, &mut scratch);
        for (r, plan) in plans.iter().enumerate() {
            let Some(&(worst_d, worst_j)) = plan.positives.last() else {
                continue;
            };
            let row = &mut out[r * GALLERY_TILE..r * GALLERY_TILE + len];
            // Positives and junk in this tile become NaN, which never passes the test below.
            let from = plan.special.partition_point(|&j| j < first);
            for &j in plan.special[from..]
                .iter()
                .take_while(|&&j| j < first + len)
            {
                row[j - first] = f32::NAN;
            }
            for (c, &d) in row.iter().enumerate() {
                // Most negatives rank after the hardest positive and stop here.
                if d.is_nan() || d > worst_d {
                    continue;
                }
                let j = first + c;
                if d == worst_d && j > worst_j {
                    continue;
                }
                counts[r][plan.bucket(d, j)] += 1;
            }
        }
    });
    counts
}
