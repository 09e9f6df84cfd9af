//! Ranked lists: the `k` nearest gallery entries of every query, for visualisation and export.

use crate::engine::{chunk_len, for_each_tile, in_pool, Columns, Engine, RowAdjust};
use crate::engine::{GALLERY_TILE, QUERY_TILE};
use crate::evaluate::{check_meta, prepare, Exclusions};
use crate::{EvalConfig, Features, MetricsError, SampleMeta};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// One entry of a ranked list.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Neighbour {
    /// Gallery row.
    pub index: usize,
    /// Distance to the query.
    pub distance: f32,
}

/// The `k` nearest gallery entries of each query (ascending distance, ties by gallery index).
/// With `metadata` (query, gallery), junk entries of `cfg.protocol` are left out of the lists.
pub fn top_k(
    query: &Features,
    gallery: &Features,
    metadata: Option<(&[SampleMeta], &[SampleMeta])>,
    k: usize,
    cfg: &EvalConfig,
) -> Result<Vec<Vec<Neighbour>>, MetricsError> {
    let q_default;
    let g_default;
    let (q_meta, g_meta) = match metadata {
        Some(m) => m,
        None => {
            q_default = vec![SampleMeta::new(0, 0, 0); query.rows()];
            g_default = vec![SampleMeta::new(1, 0, 0); gallery.rows()];
            (q_default.as_slice(), g_default.as_slice())
        }
    };
    check_meta(query, gallery, q_meta, g_meta, cfg)?;
    let engine = prepare(query, gallery, q_meta, g_meta, cfg)?;
    let exclusions = Exclusions::new(q_meta, g_meta, cfg);
    let lists = in_pool(cfg.threads, || {
        let junk = metadata.is_some().then_some(&exclusions);
        nearest(&engine, None, junk, k, cfg.block_size).0
    })?;
    Ok(lists.into_iter().map(to_neighbours).collect())
}

/// Convert internal `(distance, index)` pairs.
pub(crate) fn to_neighbours(list: Vec<(f32, usize)>) -> Vec<Neighbour> {
    list.into_iter()
        .map(|(distance, index)| Neighbour { index, distance })
        .collect()
}

/// Whether `(d, j)` ranks before `(ld, lj)`.
#[inline]
fn before(d: f32, j: usize, ld: f32, lj: usize) -> bool {
    d < ld || (d == ld && j < lj)
}

/// Insert into a sorted list of at most `k` entries.
#[inline]
fn push(list: &mut Vec<(f32, usize)>, k: usize, d: f32, j: usize) {
    if list.len() == k {
        match list.last() {
            Some(&(wd, wj)) if before(d, j, wd, wj) => {
                list.pop();
            }
            _ => return,
        }
    }
    let pos = list.partition_point(|&(ld, lj)| before(ld, lj, d, j));
    list.insert(pos, (d, j));
}

/// Merge two sorted lists, keeping the first `k`.
fn merge(mut a: Vec<(f32, usize)>, b: Vec<(f32, usize)>, k: usize) -> Vec<(f32, usize)> {
    a.extend(b);
    a.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    a.truncate(k);
    a
}

/// Sorted `k` nearest per query (input order) and each query's largest distance to any gallery
/// row (junk included). Must run inside the pool.
pub(crate) fn nearest(
    engine: &Engine<'_>,
    adjust: Option<&dyn RowAdjust>,
    junk: Option<&Exclusions<'_>>,
    k: usize,
    block_size: usize,
) -> (Vec<Vec<(f32, usize)>>, Vec<f32>) {
    let num_q = engine.query.rows();
    let num_g = engine.gallery.rows();
    let chunk = chunk_len(block_size);
    let chunks: Vec<(usize, usize)> = (0..num_g)
        .step_by(chunk)
        .map(|s| (s, (s + chunk).min(num_g)))
        .collect();
    let tiles: Vec<Vec<usize>> = (0..num_q)
        .step_by(QUERY_TILE)
        .map(|s| (s..(s + QUERY_TILE).min(num_q)).collect())
        .collect();
    type TileLists = (Vec<Vec<(f32, usize)>>, Vec<f32>);
    let per_tile: Vec<TileLists> = tiles
        .par_iter()
        .map(|tile| {
            let empty = || {
                (
                    vec![Vec::new(); tile.len()],
                    vec![f32::NEG_INFINITY; tile.len()],
                )
            };
            chunks
                .par_iter()
                .map(|&(start, end)| {
                    let (mut lists, mut maxima) = empty();
                    let mut scratch = engine.scratch();
                    engine.load_queries(tile, &mut scratch);
                    for_each_tile(start, end, |columns| {
                        let Columns::Range { start: first, len } = columns else {
                            return;
                        };
                        let out = engine.distances(tile, columns, adjust, &mut scratch);
                        for (r, &q) in tile.iter().enumerate() {
                            let row = &out[r * GALLERY_TILE..r * GALLERY_TILE + len];
                            let list = &mut lists[r];
                            for (c, &d) in row.iter().enumerate() {
                                maxima[r] = maxima[r].max(d);
                                if d.is_nan() || k == 0 {
                                    continue;
                                }
                                if list.len() == k && list.last().is_some_and(|&(wd, _)| d > wd) {
                                    continue;
                                }
                                let j = first + c;
                                if junk.is_some_and(|x| x.is_junk(q, j)) {
                                    continue;
                                }
                                push(list, k, d, j);
                            }
                        }
                    });
                    (lists, maxima)
                })
                .reduce(empty, |(la, ma), (lb, mb)| {
                    let lists = la
                        .into_iter()
                        .zip(lb)
                        .map(|(a, b)| merge(a, b, k))
                        .collect();
                    let maxima = ma.into_iter().zip(mb).map(|(a, b)| a.max(b)).collect();
                    (lists, maxima)
                })
        })
        .collect();
    let mut lists = Vec::with_capacity(num_q);
    let mut maxima = Vec::with_capacity(num_q);
    for (l, m) in per_tile {
        lists.extend(l);
        maxima.extend(m);
    }
    (lists, maxima)
}
