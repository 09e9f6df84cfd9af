//! Library side of the `next` command-line tool: the run configuration (every library's
//! section in one TOML file), the subcommands, the demo, feature files (npy) and PNG pictures
//! (charts with plotters, rank lists and expert masks with `image`, text in an embedded font). Training and evaluation are the `next-train` library's.

#![warn(missing_docs)]

pub mod any_query;
pub mod args;
pub mod caption_args;
pub mod commands;
pub mod config;
pub mod demo;
pub mod demo_clip;
pub mod font;
pub mod grid;
pub mod npy;
pub mod plot;
pub mod report;
pub mod research;
pub mod umm_chart;

/// Every error a `next` command can end with.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] next_reid::common::ConfigError),
    /// Training, checkpoint or evaluation problem.
    #[error(transparent)]
    Train(#[from] next_reid::train::TrainError),
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
    /// File problem.
    #[error(transparent)]
    File(#[from] next_reid::common::FileError),
    /// Picture problem.
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
    /// Caption pipeline problem.
    #[error(transparent)]
    Captions(#[from] next_reid::captions::CaptionError),
    /// The chosen backend cannot start (not compiled in, no driver, no adapter).
    #[error(transparent)]
    Backend(#[from] next_reid::backend::BackendError),
    /// A command line that cannot be run as given.
    #[error("{0}")]
    Usage(String),
    /// A JSON document that could not be written.
    #[error("writing {what} as JSON: {message}")]
    Json {
        /// What was being written.
        what: String,
        /// The serialiser's message.
        message: String,
    },
}
