//! Errors of the metrics crate: every message says which input was wrong and what was expected.

use std::path::PathBuf;

/// Everything that can go wrong while evaluating or loading features.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The query or the gallery has no rows.
    #[error("the {set} set is empty: at least one feature row is needed")]
    Empty {
        /// `query` or `gallery`.
        set: &'static str,
    },
    /// A feature buffer whose length is not rows x dim.
    #[error("{set} features: {len} values cannot be {rows} rows of dimension {dim}")]
    BadShape {
        /// Which set.
        set: &'static str,
        /// Number of values given.
        len: usize,
        /// Rows expected.
        rows: usize,
        /// Dimension expected.
        dim: usize,
    },
    /// Feature dimension zero.
    #[error("{set} features have dimension 0")]
    ZeroDim {
        /// Which set.
        set: &'static str,
    },
    /// Query and gallery dimensions differ.
    #[error("query features have dimension {query} but gallery features have dimension {gallery}")]
    DimMismatch {
        /// Query dimension.
        query: usize,
        /// Gallery dimension.
        gallery: usize,
    },
    /// Metadata count differs from the number of feature rows.
    #[error("{set} has {rows} feature rows but {meta} metadata entries")]
    MetaMismatch {
        /// Which set.
        set: &'static str,
        /// Feature rows.
        rows: usize,
        /// Metadata entries.
        meta: usize,
    },
    /// A NaN or infinite feature value, or a squared norm that overflows f32.
    #[error("{set} feature row {row} is not finite (NaN, infinity or a norm that overflows f32)")]
    NonFinite {
        /// Which set.
        set: &'static str,
        /// Offending row.
        row: usize,
    },
    /// No query has a positive in the gallery, so nothing can be averaged.
    #[error("none of the {queries} queries has a positive in the gallery: no identity of the query set appears there")]
    NoValidQuery {
        /// Number of queries.
        queries: usize,
    },
    /// The MSVR310 protocol was asked for samples without scene ids.
    #[error("the msvr protocol drops same-scene matches and needs scene ids, but {set} row {row} has none (scene id -1; a features file needs `{set}_sceneids`): add them or use the standard protocol")]
    MissingSceneIds {
        /// `query` or `gallery`.
        set: &'static str,
        /// The first row without a scene id.
        row: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// `query_is_gallery` was set but the two sets have different sizes.
    #[error("query_is_gallery is set but query has {query} rows and gallery {gallery}")]
    NotSameSet {
        /// Query rows.
        query: usize,
        /// Gallery rows.
        gallery: usize,
    },
    /// The thread pool could not be built.
    #[error("cannot build a thread pool of {threads} threads: {message}")]
    ThreadPool {
        /// Threads requested.
        threads: usize,
        /// Reason given by rayon.
        message: String,
    },
    /// A file could not be read.
    #[error(transparent)]
    File(#[from] next_common::FileError),
    /// A safetensors file that is malformed or lacks what is expected.
    #[error("{path}: {message}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What was expected and what was found.
        message: String,
    },
    /// A Burn tensor whose data could not be read as f32.
    #[error("cannot read tensor data as f32: {0}")]
    TensorData(String),
}
