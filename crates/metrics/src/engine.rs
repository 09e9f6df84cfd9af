//! Distance tiles through a GEMM of one fixed shape.
//!
//! Every distance is computed by a `QUERY_TILE x GALLERY_TILE x dim` product with the same strides
//! (short tiles are zero-padded), so the value of a (query, gallery) pair never depends on which
//! other rows share its tile, on the block size or on the thread count: rankings, including exact
//! ties, are reproducible.

use crate::features::{squared_norm, NORM_EPSILON};
use crate::{Distance, Features, MetricsError};
use std::borrow::Cow;

/// Query rows per GEMM tile (a multiple of the f32 micro-kernel sizes 16 and 6).
pub(crate) const QUERY_TILE: usize = 192;
/// Gallery rows per GEMM tile (a multiple of the f32 micro-kernel sizes 16 and 6).
pub(crate) const GALLERY_TILE: usize = 960;

/// A feature matrix ready for distance tiles: normalised when asked, with its row norms.
pub(crate) struct PreparedSet<'a> {
    data: Cow<'a, [f32]>,
    rows: usize,
    dim: usize,
    squared_norms: Vec<f32>,
    inverse_norms: Vec<f32>,
}

impl<'a> PreparedSet<'a> {
    /// Validate `features` (non-empty, finite) and normalise a copy when `normalize` asks for it.
    pub(crate) fn new(
        features: &'a Features,
        normalize: bool,
        set: &'static str,
    ) -> Result<Self, MetricsError> {
        if features.rows() == 0 {
            return Err(MetricsError::Empty { set });
        }
        features.check_finite(set)?;
        let data = if normalize && !features.is_normalized() {
            let mut copy = features.as_slice().to_vec();
            crate::features::l2_normalize_rows(&mut copy, features.dim());
            Cow::Owned(copy)
        } else {
            Cow::Borrowed(features.as_slice())
        };
        Ok(Self::from_rows(data, features.dim()))
    }

    /// Wrap already validated rows.
    pub(crate) fn from_rows(data: Cow<'a, [f32]>, dim: usize) -> Self {
        let rows = data.len() / dim;
        let squared_norms: Vec<f32> = data.chunks_exact(dim).map(squared_norm).collect();
        let inverse_norms = squared_norms
            .iter()
            .map(|n| 1.0 / n.sqrt().max(NORM_EPSILON))
            .collect();
        Self {
            data,
            rows,
            dim,
            squared_norms,
            inverse_norms,
        }
    }

    /// Number of rows.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Row `i`.
    pub(crate) fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Which gallery rows a tile covers: a contiguous range or an explicit list.
#[derive(Clone, Copy)]
pub(crate) enum Columns<'a> {
    /// Rows `start..start + len`.
    Range { start: usize, len: usize },
    /// These rows, in this order.
    List(&'a [usize]),
}

impl Columns<'_> {
    /// Number of columns.
    pub(crate) fn len(&self) -> usize {
        match self {
            Columns::Range { len, .. } => *len,
            Columns::List(list) => list.len(),
        }
    }

    /// Gallery row of column `c`.
    pub(crate) fn index(&self, c: usize) -> usize {
        match self {
            Columns::Range { start, .. } => start + c,
            Columns::List(list) => list[c],
        }
    }
}

/// A per-query rewrite of distance rows (used by re-ranking); must be a pure function of the
/// query, the gallery index and the input distance.
pub(crate) trait RowAdjust: Sync {
    /// Rewrite `row[c]`, the distance from `query` to gallery row `columns.index(c)`.
    fn adjust(&self, query: usize, columns: Columns<'_>, row: &mut [f32]);
}

/// Per-thread buffers of one tile computation.
pub(crate) struct TileScratch {
    query: Vec<f32>,
    gallery: Vec<f32>,
    gallery_norms: Vec<f32>,
    out: Vec<f32>,
}

/// Query set, gallery set and distance: produces distance tiles.
pub(crate) struct Engine<'a> {
    /// Query rows.
    pub(crate) query: PreparedSet<'a>,
    /// Gallery rows.
    pub(crate) gallery: PreparedSet<'a>,
    distance: Distance,
}

impl<'a> Engine<'a> {
    /// Pair two prepared sets; fails when their dimensions differ.
    pub(crate) fn new(
        query: PreparedSet<'a>,
        gallery: PreparedSet<'a>,
        distance: Distance,
    ) -> Result<Self, MetricsError> {
        if query.dim != gallery.dim {
            return Err(MetricsError::DimMismatch {
                query: query.dim,
                gallery: gallery.dim,
            });
        }
        Ok(Self {
            query,
            gallery,
            distance,
        })
    }

    /// Distance from query `q` to gallery `g` by a plain dot product (not bitwise equal to the tiled
    /// value; used where only a weight, not a rank, depends on it).
    pub(crate) fn pair_distance(&self, q: usize, g: usize) -> f32 {
        let dot = self
            .query
            .row(q)
            .iter()
            .zip(self.gallery.row(g))
            .fold(0.0f32, |acc, (a, b)| acc + a * b);
        let squared = (self.query.squared_norms[q] + self.gallery.squared_norms[g]) - 2.0 * dot;
        match self.distance {
            Distance::SquaredEuclidean => squared,
            Distance::Euclidean => squared.max(0.0).sqrt(),
            Distance::Cosine => {
                1.0 - dot * (self.query.inverse_norms[q] * self.gallery.inverse_norms[g])
            }
        }
    }

    /// Fresh buffers for [`Engine::distances`].
    pub(crate) fn scratch(&self) -> TileScratch {
        let dim = self.query.dim;
        TileScratch {
            query: vec![0.0; QUERY_TILE * dim],
            gallery: vec![0.0; GALLERY_TILE * dim],
            gallery_norms: vec![0.0; GALLERY_TILE],
            out: vec![0.0; QUERY_TILE * GALLERY_TILE],
        }
    }

    /// Copy the query rows `queries` (at most `QUERY_TILE`) into the scratch tile, zero-padded.
    pub(crate) fn load_queries(&self, queries: &[usize], scratch: &mut TileScratch) {
        debug_assert!(queries.len() <= QUERY_TILE);
        let dim = self.query.dim;
        scratch.query.fill(0.0);
        for (r, &q) in queries.iter().enumerate() {
            scratch.query[r * dim..(r + 1) * dim].copy_from_slice(self.query.row(q));
        }
    }

    /// Distances from the loaded queries to `columns` (at most `GALLERY_TILE`): row `r` of the
    /// result starts at `r * GALLERY_TILE`; only the first `columns.len()` entries of a row count.
    pub(crate) fn distances<'s>(
        &self,
        queries: &[usize],
        columns: Columns<'_>,
        adjust: Option<&dyn RowAdjust>,
        scratch: &'s mut TileScratch,
    ) -> &'s mut [f32] {
        let dim = self.query.dim;
        let len = columns.len();
        debug_assert!(len <= GALLERY_TILE);
        let rhs: *const f32 = match columns {
            Columns::Range { start, len } if len == GALLERY_TILE => {
                self.gallery.data[start * dim..(start + len) * dim].as_ptr()
            }
            _ => {
                scratch.gallery.fill(0.0);
                for c in 0..len {
                    let g = columns.index(c);
                    scratch.gallery[c * dim..(c + 1) * dim].copy_from_slice(self.gallery.row(g));
                }
                scratch.gallery.as_ptr()
            }
        };
        // SAFETY: lhs is QUERY_TILE x dim (row stride dim), rhs holds GALLERY_TILE rows of `dim`
        // values (a full tile of the gallery or the padded scratch), dst is QUERY_TILE x
        // GALLERY_TILE; all three live for the call and dst does not alias the inputs.
        unsafe {
            gemm::gemm(
                QUERY_TILE,
                GALLERY_TILE,
                dim,
                scratch.out.as_mut_ptr(),
                1,
                GALLERY_TILE as isize,
                false,
                scratch.query.as_ptr(),
                1,
                dim as isize,
                rhs,
                dim as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        let norms = match self.distance {
            Distance::Cosine => &self.gallery.inverse_norms,
            _ => &self.gallery.squared_norms,
        };
        for c in 0..len {
            scratch.gallery_norms[c] = norms[columns.index(c)];
        }
        let gallery_norms = &scratch.gallery_norms[..len];
        for (r, &q) in queries.iter().enumerate() {
            let row = &mut scratch.out[r * GALLERY_TILE..r * GALLERY_TILE + len];
            self.finish_row(q, gallery_norms, row);
            if let Some(adjust) = adjust {
                adjust.adjust(q, columns, row);
            }
        }
        &mut scratch.out
    }

    /// Turn the dot products of query `q` into distances (`gallery_norms`: squared norms, or
    /// inverse norms for the cosine distance).
    fn finish_row(&self, q: usize, gallery_norms: &[f32], row: &mut [f32]) {
        match self.distance {
            Distance::SquaredEuclidean => {
                let qn = self.query.squared_norms[q];
                for (v, gn) in row.iter_mut().zip(gallery_norms) {
                    *v = (qn + gn) - 2.0 * *v;
                }
            }
            Distance::Euclidean => {
                let qn = self.query.squared_norms[q];
                for (v, gn) in row.iter_mut().zip(gallery_norms) {
                    *v = ((qn + gn) - 2.0 * *v).max(0.0).sqrt();
                }
            }
            Distance::Cosine => {
                let qi = self.query.inverse_norms[q];
                for (v, gi) in row.iter_mut().zip(gallery_norms) {
                    *v = 1.0 - *v * (qi * gi);
                }
            }
        }
    }
}

/// Run `work` on a pool of `threads` threads, or on the current/global pool when `None`.
pub(crate) fn in_pool<R: Send>(
    threads: Option<usize>,
    work: impl FnOnce() -> R + Send,
) -> Result<R, MetricsError> {
    match threads {
        None => Ok(work()),
        Some(threads) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| MetricsError::ThreadPool {
                    threads,
                    message: e.to_string(),
                })?;
            Ok(pool.install(work))
        }
    }
}

/// Gallery chunk length for a requested block size: a whole number of tiles.
pub(crate) fn chunk_len(block_size: usize) -> usize {
    block_size.div_ceil(GALLERY_TILE).max(1) * GALLERY_TILE
}

/// Visit the gallery rows `start..end` tile by tile.
pub(crate) fn for_each_tile(start: usize, end: usize, mut visit: impl FnMut(Columns<'_>)) {
    let mut s = start;
    while s < end {
        let len = GALLERY_TILE.min(end - s);
        visit(Columns::Range { start: s, len });
        s += len;
    }
}
