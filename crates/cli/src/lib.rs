//! Library side of the `next` command-line tool: run configuration, learning-rate schedule,
//! parameter groups, training loop, evaluation (with the six missing-modality settings),
//! checkpoints, JSON-lines logs and PNG pictures (curves, rank lists, expert masks).

pub mod checkpoint;
pub mod commands;
pub mod config;
pub mod demo;
pub mod evaluate;
pub mod font;
pub mod image_query;
pub mod logs;
pub mod loss_scale;
pub mod npy;
pub mod params;
pub mod plot;
pub mod report;
pub mod schedule;
pub mod text_cache;
pub mod trainer;

use std::path::PathBuf;

/// Every error a `next` command can end with.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Dataset or loader problem.
    #[error(transparent)]
    Data(#[from] next_reid::data::DataError),
    /// Model problem.
    #[error(transparent)]
    Model(#[from] next_reid::model::ModelError),
    /// CLIP problem.
    #[error(transparent)]
    Clip(#[from] next_reid::clip::ClipError),
    /// Evaluation problem.
    #[error(transparent)]
    Metrics(#[from] next_reid::metrics::MetricsError),
    /// Checkpoint problem.
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    /// File problem.
    #[error(transparent)]
    File(#[from] next_reid::common::FileError),
    /// Picture problem.
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
    /// The loss became NaN or infinite: training stops, the last good checkpoint stays as it was.
    #[error("loss is {value} at epoch {epoch}, step {step}: training stopped; {}", match last_checkpoint {
        Some(p) => format!("the last good checkpoint {} is intact (resume with --resume, e.g. with a lower solver.base_lr)", p.display()),
        None => "no checkpoint was written yet".to_string(),
    })]
    NonFinite {
        /// 1-based epoch.
        epoch: usize,
        /// Global step (1-based).
        step: usize,
        /// The loss value.
        value: f64,
        /// The last checkpoint, if one exists.
        last_checkpoint: Option<PathBuf>,
    },
    /// Anything else, with its context.
    #[error("{0}")]
    Other(String),
}
