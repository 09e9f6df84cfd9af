//! Exact, scalable ReID evaluation: mAP, CMC and mINP under the standard, MSVR310 and "none"
//! protocols, ranked lists, and memory-bounded k-reciprocal re-ranking.
//!
//! Distances are computed tile by tile through a GEMM of one fixed shape, in parallel, and never
//! held as a full query x gallery matrix: for each query only its positives' distances and the
//! counts of closer negatives are kept, which is all exact AP/CMC/mINP need. Ties rank by gallery
//! index, like a stable argsort of the distance row.

#![warn(missing_docs)]

mod config;
mod dense;
mod engine;
mod error;
mod evaluate;
mod features;
mod io;
mod ranking;
mod report;
mod rerank;
mod spread;

pub use config::{Distance, EvalConfig, EvalProtocol};
pub use dense::{distance_matrix, evaluate_distance_matrix};
pub use error::MetricsError;
pub use evaluate::evaluate;
pub use features::{Features, SampleMeta, NORM_EPSILON, NO_SCENE};
pub use io::FeatureSet;
pub use ranking::{top_k, Neighbour};
pub use report::{EvalReport, QueryStats, Summary};
pub use rerank::{RerankConfig, Reranked};
pub use spread::{feature_spread, CosineSummary, FeatureSpread, SPREAD_MAX_ROWS};
