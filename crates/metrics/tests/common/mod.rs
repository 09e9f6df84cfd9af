//! Helpers shared by the metrics tests: a small deterministic RNG and feature builders.
#![allow(dead_code)]

use next_metrics::{Features, SampleMeta};

/// SplitMix64: deterministic, dependency-free randomness for tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// 1-D features (one value per row): with `normalize: false` the squared distance is exactly
/// `(q - g)^2` for small integers.
pub fn scalars(values: &[f32]) -> Features {
    Features::new(values.to_vec(), values.len(), 1).unwrap()
}

/// Metadata from (pid, camid) pairs, scene 0.
pub fn meta(pairs: &[(i64, i64)]) -> Vec<SampleMeta> {
    pairs
        .iter()
        .map(|&(p, c)| SampleMeta::new(p, c, 0))
        .collect()
}

/// Random features in `{-1, 0, 1}` (many exact ties) or continuous in [-1, 1).
pub fn random_features(rng: &mut Rng, rows: usize, dim: usize, integer: bool) -> Features {
    let data = (0..rows * dim)
        .map(|_| {
            if integer {
                rng.below(3) as f32 - 1.0
            } else {
                rng.uniform() * 2.0 - 1.0
            }
        })
        .collect();
    Features::new(data, rows, dim).unwrap()
}

/// Random metadata with `pids` identities, `cams` cameras and `scenes` scenes.
pub fn random_meta(
    rng: &mut Rng,
    rows: usize,
    pids: u64,
    cams: u64,
    scenes: u64,
) -> Vec<SampleMeta> {
    (0..rows)
        .map(|_| {
            SampleMeta::new(
                rng.below(pids) as i64,
                rng.below(cams) as i64,
                rng.below(scenes) as i64,
            )
        })
        .collect()
}
