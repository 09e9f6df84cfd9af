//! k-reciprocal re-ranking (Zhong et al., CVPR 2017) in O((Q + G) k) memory.
//!
//! Same algorithm as the widely copied reference implementation: neighbour lists of all Q + G
//! samples, k-reciprocal sets expanded by their k1/2 sets, Gaussian-weighted sparse vectors V,
//! query expansion over the k2 nearest, Jaccard distance from min-sums, and the final distance
//! `jaccard * (1 - lambda) + d / max_d * lambda` where `max_d` is the query's largest distance to
//! any sample. Differences: only the top `k1 + 1` neighbours of each sample are kept (never the
//! (Q + G)^2 matrix), V and the Jaccard sums are f32 (the reference stores them in f16), and
//! neighbour lists are ordered by the unscaled distance, ties by index.

use crate::engine::{in_pool, Columns, Engine, PreparedSet, RowAdjust};
use crate::evaluate::{check_meta, evaluate_engine, Exclusions};
use crate::ranking::{nearest, to_neighbours, Neighbour};
use crate::report::EvalReport;
use crate::{EvalConfig, Features, MetricsError, SampleMeta};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Re-ranking parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RerankConfig {
    /// Neighbourhood size of the k-reciprocal sets (fast-reid 20, DeMo 50).
    pub k1: usize,
    /// Neighbours averaged in the query expansion (fast-reid 6, DeMo 15); 1 disables it.
    pub k2: usize,
    /// Weight of the original distance in the final distance (0.3 in both).
    pub lambda: f32,
}

impl Default for RerankConfig {
    fn default() -> Self {
        Self {
            k1: 20,
            k2: 6,
            lambda: 0.3,
        }
    }
}

impl RerankConfig {
    /// Check `k1 >= 1`, `k2 >= 1`, `0 <= lambda <= 1`.
    pub fn validate(&self) -> Result<(), MetricsError> {
        if self.k1 == 0 || self.k2 == 0 {
            return Err(MetricsError::Config(
                "re-ranking k1 and k2 must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.lambda) {
            return Err(MetricsError::Config(format!(
                "re-ranking lambda must be in [0, 1], got {}",
                self.lambda
            )));
        }
        Ok(())
    }
}

/// A sparse row: (column, value) sorted by column.
type SparseRow = Vec<(u32, f32)>;

/// Re-ranked query-to-gallery distances, kept sparse: evaluate, rank or export them.
pub struct Reranked {
    samples: Vec<f32>,
    dim: usize,
    num_query: usize,
    cfg: EvalConfig,
    lambda: f32,
    query_max: Vec<f32>,
    jaccard: Vec<SparseRow>,
}

impl Reranked {
    /// Run the re-ranking of `query` against `gallery` (distance, normalisation, threads and block
    /// size from `cfg`).
    pub fn new(
        query: &Features,
        gallery: &Features,
        rerank: &RerankConfig,
        cfg: &EvalConfig,
    ) -> Result<Self, MetricsError> {
        cfg.validate()?;
        rerank.validate()?;
        for (set, f) in [("query", query), ("gallery", gallery)] {
            if f.rows() == 0 {
                return Err(MetricsError::Empty { set });
            }
            f.check_finite(set)?;
        }
        if query.dim() != gallery.dim() {
            return Err(MetricsError::DimMismatch {
                query: query.dim(),
                gallery: gallery.dim(),
            });
        }
        let dim = query.dim();
        let total = query.rows() + gallery.rows();
        if u32::try_from(total).is_err() {
            return Err(MetricsError::Config(format!(
                "re-ranking supports up to 2^32 samples, got {total}"
            )));
        }
        let mut samples = Vec::with_capacity(total * dim);
        for f in [query, gallery] {
            let start = samples.len();
            samples.extend_from_slice(f.as_slice());
            if cfg.normalize && !f.is_normalized() {
                crate::features::l2_normalize_rows(&mut samples[start..], dim);
            }
        }
        let num_query = query.rows();
        let (query_max, jaccard) = in_pool(cfg.threads, || {
            let all = Engine::new(
                PreparedSet::from_rows(Cow::Borrowed(&samples), dim),
                PreparedSet::from_rows(Cow::Borrowed(&samples), dim),
                cfg.distance,
            )?;
            Ok::<_, MetricsError>(sparse_jaccard(&all, num_query, rerank, cfg.block_size))
        })??;
        Ok(Self {
            samples,
            dim,
            num_query,
            cfg: cfg.clone(),
            lambda: rerank.lambda,
            query_max,
            jaccard,
        })
    }

    /// Engine over (query rows, gallery rows) of the stored samples.
    fn engine(&self) -> Result<Engine<'_>, MetricsError> {
        let (q, g) = self.samples.split_at(self.num_query * self.dim);
        Engine::new(
            PreparedSet::from_rows(Cow::Borrowed(q), self.dim),
            PreparedSet::from_rows(Cow::Borrowed(g), self.dim),
            self.cfg.distance,
        )
    }

    fn gallery_rows(&self) -> usize {
        self.samples.len() / self.dim - self.num_query
    }

    /// Evaluate the re-ranked distances (protocol and ranks from the configuration given to `new`).
    pub fn evaluate(
        &self,
        query_meta: &[SampleMeta],
        gallery_meta: &[SampleMeta],
    ) -> Result<EvalReport, MetricsError> {
        self.check(query_meta, gallery_meta)?;
        let engine = self.engine()?;
        in_pool(self.cfg.threads, || {
            evaluate_engine(&engine, Some(self), query_meta, gallery_meta, &self.cfg)
        })?
    }

    /// The `k` nearest gallery entries of each query under the re-ranked distance; with metadata,
    /// junk entries are left out.
    pub fn top_k(
        &self,
        metadata: Option<(&[SampleMeta], &[SampleMeta])>,
        k: usize,
    ) -> Result<Vec<Vec<Neighbour>>, MetricsError> {
        let engine = self.engine()?;
        let exclusions = match metadata {
            Some((q, g)) => {
                self.check(q, g)?;
                Some(Exclusions::new(q, g, &self.cfg))
            }
            None => None,
        };
        let lists = in_pool(self.cfg.threads, || {
            nearest(
                &engine,
                Some(self),
                exclusions.as_ref(),
                k,
                self.cfg.block_size,
            )
            .0
        })?;
        Ok(lists.into_iter().map(to_neighbours).collect())
    }

    /// The dense `Q x G` re-ranked distance matrix (row-major); O(Q x G) memory.
    pub fn distance_matrix(&self) -> Result<Vec<f32>, MetricsError> {
        let engine = self.engine()?;
        in_pool(self.cfg.threads, || {
            crate::dense::engine_matrix(&engine, Some(self))
        })
    }

    fn check(
        &self,
        query_meta: &[SampleMeta],
        gallery_meta: &[SampleMeta],
    ) -> Result<(), MetricsError> {
        let shape = |rows| Features::new(vec![0.0; rows], rows, 1);
        check_meta(
            &shape(self.num_query)?,
            &shape(self.gallery_rows())?,
            query_meta,
            gallery_meta,
            &self.cfg,
        )
    }
}

impl RowAdjust for Reranked {
    fn adjust(&self, query: usize, columns: Columns<'_>, row: &mut [f32]) {
        let lambda = self.lambda;
        let scale = self.query_max[query];
        let sparse = &self.jaccard[query];
        let finish = |d: f32, jaccard: f32| jaccard * (1.0 - lambda) + (d / scale) * lambda;
        match columns {
            Columns::Range { start, len } => {
                let mut next = sparse.partition_point(|&(g, _)| (g as usize) < start);
                for (c, d) in row.iter_mut().enumerate() {
                    let g = start + c;
                    let mut jaccard = 1.0;
                    if next < sparse.len() && sparse[next].0 as usize == g {
                        jaccard = sparse[next].1;
                        next += 1;
                    }
                    *d = finish(*d, jaccard);
                }
                debug_assert!(next == sparse.len() || sparse[next].0 as usize >= start + len);
            }
            Columns::List(list) => {
                for (d, &g) in row.iter_mut().zip(list) {
                    let jaccard = sparse
                        .binary_search_by_key(&g, |&(c, _)| c as usize)
                        .map_or(1.0, |i| sparse[i].1);
                    *d = finish(*d, jaccard);
                }
            }
        }
    }
}

/// `round(x / 2)` with NumPy's ties-to-even, as the reference's `np.around(k1 / 2)`.
fn half_of(k1: usize) -> usize {
    (k1 as f64 / 2.0).round_ties_even() as usize
}

/// The k-reciprocal neighbours of `i` within the first `k + 1` entries of each list.
fn reciprocal(lists: &[Vec<(f32, usize)>], i: usize, k: usize) -> Vec<usize> {
    let head = |x: usize| &lists[x][..lists[x].len().min(k + 1)];
    head(i)
        .iter()
        .map(|&(_, j)| j)
        .filter(|&j| head(j).iter().any(|&(_, x)| x == i))
        .collect()
}

/// Query scale factors (largest distance of each query) and sparse Jaccard distances of each query
/// to the gallery (gallery-local indices). Must run inside the pool.
fn sparse_jaccard(
    all: &Engine<'_>,
    num_query: usize,
    rerank: &RerankConfig,
    block_size: usize,
) -> (Vec<f32>, Vec<SparseRow>) {
    let total = all.query.rows();
    let list_len = (rerank.k1 + 1).max(rerank.k2);
    let (lists, maxima) = nearest(all, None, None, list_len, block_size);
    let scale: Vec<f32> = maxima
        .iter()
        .map(|&m| if m > 0.0 { m } else { 1.0 })
        .collect();
    let half = half_of(rerank.k1);

    // Gaussian-weighted k-reciprocal vectors.
    let v: Vec<SparseRow> = (0..total)
        .into_par_iter()
        .map(|i| {
            let base = reciprocal(&lists, i, rerank.k1);
            let mut expansion = base.clone();
            for &candidate in &base {
                let around = reciprocal(&lists, candidate, half);
                let shared = around.iter().filter(|x| base.contains(x)).count();
                if shared as f64 > 2.0 / 3.0 * around.len() as f64 {
                    expansion.extend(around);
                }
            }
            expansion.sort_unstable();
            expansion.dedup();
            let weights: Vec<f32> = expansion
                .iter()
                .map(|&j| (-all.pair_distance(i, j) / scale[i]).exp())
                .collect();
            let sum: f32 = weights.iter().sum();
            expansion
                .iter()
                .zip(weights)
                .map(|(&j, w)| (j as u32, w / sum))
                .collect()
        })
        .collect();

    // Query expansion: mean of the vectors of the k2 nearest samples (in rank order).
    let v: Vec<SparseRow> = if rerank.k2 == 1 {
        v
    } else {
        (0..total)
            .into_par_iter()
            .map(|i| {
                let rows: Vec<usize> = lists[i].iter().take(rerank.k2).map(|&(_, j)| j).collect();
                let mut entries: Vec<(u32, f32)> =
                    rows.iter().flat_map(|&t| v[t].iter().copied()).collect();
                entries.sort_by_key(|&(c, _)| c); // stable: each column sums in rank order
                let mut merged: SparseRow = Vec::new();
                for (c, x) in entries {
                    match merged.last_mut() {
                        Some((lc, lx)) if *lc == c => *lx += x,
                        _ => merged.push((c, x)),
                    }
                }
                let n = rows.len() as f32;
                merged.iter_mut().for_each(|(_, x)| *x /= n);
                merged
            })
            .collect()
    };

    // Inverted index over gallery rows: for each column, (gallery row, value), gallery ascending.
    let mut offsets = vec![0usize; total + 1];
    for row in &v[num_query..] {
        for &(c, _) in row {
            offsets[c as usize + 1] += 1;
        }
    }
    for c in 0..total {
        offsets[c + 1] += offsets[c];
    }
    let mut fill = offsets.clone();
    let mut postings = vec![(0u32, 0.0f32); offsets[total]];
    for (g, row) in v[num_query..].iter().enumerate() {
        for &(c, x) in row {
            postings[fill[c as usize]] = (g as u32, x);
            fill[c as usize] += 1;
        }
    }
    let num_gallery = total - num_query;
    let jaccard: Vec<SparseRow> = (0..num_query)
        .into_par_iter()
        .map_init(
            || (vec![0.0f32; num_gallery], Vec::<u32>::new()),
            |(sums, touched), q| {
                for &(c, vq) in &v[q] {
                    for &(g, vg) in &postings[offsets[c as usize]..offsets[c as usize + 1]] {
                        if sums[g as usize] == 0.0 {
                            touched.push(g);
                        }
                        sums[g as usize] += vq.min(vg);
                    }
                }
                touched.sort_unstable();
                touched.dedup();
                let row: SparseRow = touched
                    .iter()
                    .map(|&g| {
                        let m = sums[g as usize];
                        sums[g as usize] = 0.0;
                        (g, 1.0 - m / (2.0 - m))
                    })
                    .collect();
                touched.clear();
                row
            },
        )
        .collect();
    (scale[..num_query].to_vec(), jaccard)
}
