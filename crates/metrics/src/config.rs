//! Evaluation settings: protocol, distance, ranks, blocking and threads.

use crate::MetricsError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which gallery entries a query may not be matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalProtocol {
    /// Drop gallery entries with the same pid and the same camid (RGBNT201, RGBNT100, Market-MM, WMVEID863).
    #[default]
    Standard,
    /// Drop gallery entries with the same pid and the same sceneid (MSVR310).
    Msvr,
    /// Drop only the identical sample (same `sample_id`, or same index with `query_is_gallery`).
    None,
}

impl FromStr for EvalProtocol {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "standard" => Ok(Self::Standard),
            "msvr" | "msvr310" => Ok(Self::Msvr),
            "none" => Ok(Self::None),
            other => Err(MetricsError::Config(format!(
                "unknown protocol {other:?}: expected standard, msvr or none"
            ))),
        }
    }
}

impl fmt::Display for EvalProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Standard => "standard",
            Self::Msvr => "msvr",
            Self::None => "none",
        })
    }
}

/// How far apart two feature vectors are; smaller ranks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    /// `|q|^2 + |g|^2 - 2 q.g` (the reference, on L2-normalised features).
    #[default]
    SquaredEuclidean,
    /// Square root of the squared Euclidean distance (clamped at 0).
    Euclidean,
    /// `1 - q.g / (|q| |g|)`.
    Cosine,
}

impl FromStr for Distance {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "squared_euclidean" | "sqeuclidean" => Ok(Self::SquaredEuclidean),
            "euclidean" => Ok(Self::Euclidean),
            "cosine" => Ok(Self::Cosine),
            other => Err(MetricsError::Config(format!(
                "unknown distance {other:?}: expected squared_euclidean, euclidean or cosine"
            ))),
        }
    }
}

/// Settings of [`crate::evaluate`] and [`crate::top_k`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Which gallery entries are excluded per query.
    pub protocol: EvalProtocol,
    /// Distance between features.
    pub distance: Distance,
    /// CMC length (50 in the references); clipped to the gallery size.
    pub max_rank: usize,
    /// Gallery rows per work item (rounded up to a multiple of the internal tile). Never changes results.
    pub block_size: usize,
    /// Worker threads; `None` uses rayon's global pool. Never changes results.
    pub threads: Option<usize>,
    /// L2-normalise features before computing distances (the reference default).
    pub normalize: bool,
    /// Query row `i` and gallery row `i` are the same sample (query set = gallery set): never match them.
    pub query_is_gallery: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            protocol: EvalProtocol::Standard,
            distance: Distance::SquaredEuclidean,
            max_rank: 50,
            block_size: 16_384,
            threads: None,
            normalize: true,
            query_is_gallery: false,
        }
    }
}

impl EvalConfig {
    /// Check ranges: `max_rank` >= 1, `block_size` >= 1, `threads` >= 1 when given.
    pub fn validate(&self) -> Result<(), MetricsError> {
        if self.max_rank == 0 {
            return Err(MetricsError::Config("max_rank must be at least 1".into()));
        }
        if self.block_size == 0 {
            return Err(MetricsError::Config("block_size must be at least 1".into()));
        }
        if self.threads == Some(0) {
            return Err(MetricsError::Config("threads must be at least 1".into()));
        }
        Ok(())
    }
}
