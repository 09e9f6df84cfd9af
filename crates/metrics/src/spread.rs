//! How spread out a set of features is: pairwise cosines across and within identities, and the
//! size of the component all features share.
//!
//! A collapsed embedding (every feature close to one common direction, identity information in a
//! tiny residual) can still rank well, but it makes distance-based losses and thresholds useless
//! and rankings sensitive to float summation order. These numbers show it at a glance.

use crate::{Features, MetricsError, SampleMeta};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;

/// At most this many rows (evenly spaced) enter [`feature_spread`]: the pair loop is quadratic.
pub const SPREAD_MAX_ROWS: usize = 2048;

/// Mean, minimum and maximum of the cosines of a set of feature pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CosineSummary {
    /// Number of pairs.
    pub pairs: usize,
    /// Mean cosine.
    pub mean: f64,
    /// Smallest cosine.
    pub min: f64,
    /// Largest cosine.
    pub max: f64,
}

impl CosineSummary {
    fn from_accumulator(acc: &Accumulator) -> Option<Self> {
        (acc.pairs > 0).then(|| Self {
            pairs: acc.pairs,
            mean: acc.sum / acc.pairs as f64,
            min: acc.min,
            max: acc.max,
        })
    }
}

/// Spread statistics of a feature set (rows L2-normalised first, so the scale does not matter).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpread {
    /// Rows measured (at most [`SPREAD_MAX_ROWS`], evenly spaced over the input).
    pub samples: usize,
    /// Distinct identities among them.
    pub identities: usize,
    /// Cosines of pairs of different identities (`None` with a single identity).
    pub between_ids: Option<CosineSummary>,
    /// Cosines of pairs of the same identity (`None` when no identity has two rows).
    pub within_ids: Option<CosineSummary>,
    /// Norm of the mean unit feature divided by the root-mean-square norm of the unit features'
    /// deviations from it: about 0 for features spread over the sphere, large when all features
    /// share one direction (a ratio r means a mean cosine of about r^2 / (1 + r^2)).
    pub common_to_residual: f64,
}

impl fmt::Display for FeatureSpread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summary = |s: &Option<CosineSummary>| match s {
            Some(s) => format!("mean {:.5} (min {:.5}, max {:.5})", s.mean, s.min, s.max),
            None => "n/a".to_string(),
        };
        write!(
            f,
            "cosine across ids {}; within ids {}; common component / residual {:.3} ({} samples, {} ids)",
            summary(&self.between_ids),
            summary(&self.within_ids),
            self.common_to_residual,
            self.samples,
            self.identities
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Accumulator {
    pairs: usize,
    sum: f64,
    min: f64,
    max: f64,
}

impl Accumulator {
    const EMPTY: Self = Self {
        pairs: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    fn add(&mut self, cosine: f64) {
        self.pairs += 1;
        self.sum += cosine;
        self.min = self.min.min(cosine);
        self.max = self.max.max(cosine);
    }

    fn merge(self, other: Self) -> Self {
        Self {
            pairs: self.pairs + other.pairs,
            sum: self.sum + other.sum,
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }
}

/// Pairwise-cosine and common-component statistics of `features` with identities from `meta`
/// (one entry per row). Fails on an empty set, a metadata count that differs from the rows, or
/// a non-finite value.
pub fn feature_spread(
    features: &Features,
    meta: &[SampleMeta],
) -> Result<FeatureSpread, MetricsError> {
    if features.rows() == 0 {
        return Err(MetricsError::Empty { set: "spread" });
    }
    if meta.len() != features.rows() {
        return Err(MetricsError::MetaMismatch {
            set: "spread",
            rows: features.rows(),
            meta: meta.len(),
        });
    }
    let chosen = evenly_spaced(features.rows(), SPREAD_MAX_ROWS);
    let dim = features.dim();
    let mut unit = Vec::with_capacity(chosen.len() * dim);
    for &row in &chosen {
        let values = features.row(row);
        if values.iter().any(|v| !v.is_finite()) {
            return Err(MetricsError::NonFinite { set: "spread", row });
        }
        let norm = values
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        unit.extend(values.iter().map(|&v| f64::from(v) * scale));
    }
    let pids: Vec<i64> = chosen.iter().map(|&row| meta[row].pid).collect();
    let n = chosen.len();
    let (between, within) = (0..n)
        .into_par_iter()
        .map(|i| {
            let (mut between, mut within) = (Accumulator::EMPTY, Accumulator::EMPTY);
            let a = &unit[i * dim..(i + 1) * dim];
            for j in i + 1..n {
                let b = &unit[j * dim..(j + 1) * dim];
                let cosine: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                if pids[i] == pids[j] {
                    within.add(cosine);
                } else {
                    between.add(cosine);
                }
            }
            (between, within)
        })
        .reduce(
            || (Accumulator::EMPTY, Accumulator::EMPTY),
            |(b1, w1), (b2, w2)| (b1.merge(b2), w1.merge(w2)),
        );
    let mut identities = pids.clone();
    identities.sort_unstable();
    identities.dedup();
    Ok(FeatureSpread {
        samples: n,
        identities: identities.len(),
        between_ids: CosineSummary::from_accumulator(&between),
        within_ids: CosineSummary::from_accumulator(&within),
        common_to_residual: common_to_residual(&unit, n, dim),
    })
}

/// `|mean|` over the RMS of `|row - mean|` for `n` rows of width `dim`.
fn common_to_residual(unit: &[f64], n: usize, dim: usize) -> f64 {
    let mut mean = vec![0.0f64; dim];
    for row in unit.chunks_exact(dim) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n as f64;
        }
    }
    let common = mean.iter().map(|m| m * m).sum::<f64>().sqrt();
    let residual_sq = unit
        .chunks_exact(dim)
        .map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(v, m)| (v - m).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / n as f64;
    let residual = residual_sq.sqrt();
    if residual > 0.0 {
        common / residual
    } else if common > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// At most `limit` indices of `0..rows`, evenly spaced (all of them when `rows <= limit`).
fn evenly_spaced(rows: usize, limit: usize) -> Vec<usize> {
    if rows <= limit {
        return (0..rows).collect();
    }
    (0..limit).map(|k| k * rows / limit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pids: &[i64]) -> Vec<SampleMeta> {
        pids.iter().map(|&p| SampleMeta::new(p, 0, 0)).collect()
    }

    #[test]
    fn cosines_split_by_identity_match_hand_values() {
        // ids 0, 0, 1: rows (1,0), (1,1), (0,2) -> cos(0,1) = 1/sqrt2, cos(0,2) = 0, cos(1,2) = 1/sqrt2.
        let f = Features::new(vec![1.0, 0.0, 1.0, 1.0, 0.0, 2.0], 3, 2).unwrap();
        let s = feature_spread(&f, &meta(&[0, 0, 1])).unwrap();
        let h = std::f64::consts::FRAC_1_SQRT_2;
        let within = s.within_ids.unwrap();
        assert_eq!(within.pairs, 1);
        assert!((within.mean - h).abs() < 1e-9);
        let between = s.between_ids.unwrap();
        assert_eq!(between.pairs, 2);
        assert!((between.mean - h / 2.0).abs() < 1e-9);
        assert!(between.min.abs() < 1e-9 && (between.max - h).abs() < 1e-9);
        assert_eq!((s.samples, s.identities), (3, 2));
    }

    #[test]
    fn a_shared_direction_shows_as_a_large_common_component() {
        // Opposite unit vectors: mean 0, so the ratio is 0.
        let spread = Features::new(vec![1.0, 0.0, -1.0, 0.0], 2, 2).unwrap();
        let s = feature_spread(&spread, &meta(&[0, 1])).unwrap();
        assert!(s.common_to_residual < 1e-9);
        assert!((s.between_ids.unwrap().mean + 1.0).abs() < 1e-9);
        // (1, +-e): mean (1, 0) / sqrt(1 + e^2), residual e / sqrt(1 + e^2): ratio 1 / e.
        let e = 1e-3f32;
        let collapsed = Features::new(vec![1.0, e, 1.0, -e], 2, 2).unwrap();
        let s = feature_spread(&collapsed, &meta(&[0, 1])).unwrap();
        assert!((s.common_to_residual - 1e3).abs() < 1.0, "{s}");
        assert!(s.between_ids.unwrap().mean > 0.99999);
        assert!(s.within_ids.is_none());
        assert!(s.to_string().contains("within ids n/a"), "{s}");
    }

    #[test]
    fn bad_input_is_an_error() {
        let f = Features::new(vec![1.0, 0.0], 1, 2).unwrap();
        assert!(matches!(
            feature_spread(&f, &meta(&[0, 1])),
            Err(MetricsError::MetaMismatch { .. })
        ));
        let nan = Features::new(vec![f32::NAN, 0.0], 1, 2).unwrap();
        assert!(matches!(
            feature_spread(&nan, &meta(&[0])),
            Err(MetricsError::NonFinite { row: 0, .. })
        ));
        let empty = Features::new(Vec::new(), 0, 2).unwrap();
        assert!(feature_spread(&empty, &[]).is_err());
    }

    #[test]
    fn large_sets_are_subsampled_evenly() {
        let idx = evenly_spaced(10, 4);
        assert_eq!(idx, vec![0, 2, 5, 7]);
        assert_eq!(evenly_spaced(3, 4), vec![0, 1, 2]);
    }
}
