//! Training and evaluation of the NEXT model as a library: the training loop (PK batches, ID +
//! triplet losses, Adam with per-group learning rates, warm-up + cosine schedule, dynamic loss
//! scaling for f16), checkpoints with exact resume, the frozen-text feature cache, feature
//! extraction and evaluation with the six missing-modality settings, and a torchreid-style
//! [`FeatureExtractor`].
//!
//! ```no_run
//! use next_train::{train, TrainConfig, TrainOptions};
//! use burn::backend::{Autodiff, Flex};
//!
//! # fn main() -> Result<(), next_train::TrainError> {
//! let data = next_data::DatasetConfig::new("data/RGBNT201", next_data::DatasetKind::Rgbnt201);
//! let dataset = next_data::load_dataset(&data)?;
//! let model = next_model::NextConfig::tiny(1);
//! let options = TrainOptions::new("runs/tiny");
//! let device = Default::default();
//! let outcome = train::<Autodiff<Flex>>(&model, &TrainConfig::default(), &dataset, &options, &device)?;
//! println!("best (epoch, mAP): {:?}", outcome.best);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod ablate;
pub mod config;
pub mod distributed;
pub mod evaluate;
pub mod expert_stats;
pub mod extractor;
pub mod image_query;
pub mod logs;
pub mod loss_scale;
pub mod orchestrator;
pub mod params;
pub mod pretrain;
pub mod query;
pub mod schedule;
pub mod spread;
pub mod text_cache;
pub mod trainer;
pub mod umm;
pub mod umm_compare;

pub use ablate::{
    ablate, ablation_rows, format_ablation, mean_std, AblationOptions, AblationRow, AblationSuite,
    RowSummary, RunResult,
};
pub use config::{EvaluationConfig, SolverConfig, TrainConfig};
pub use distributed::{
    prepare_parallel, train_parallel, DataParallel, NodeConfig, ParallelTraining,
};
pub use evaluate::{
    evaluate_model, extract, extract_query_gallery, format_table, EvalSettings, Extracted,
    ModalityMask, SettingResult,
};
pub use expert_stats::expert_mask_stats;
pub use extractor::FeatureExtractor;
pub use pretrain::{pretrain, PretrainConfig, PretrainOptions, PretrainReport, RetrievalReport};
pub use query::{
    default_protocols, embed_query, evaluate_protocols, format_protocol_table, Protocol,
    ProtocolReport, QuerySpec,
};
pub use spread::{embedding_spread, EmbeddingSpread};
pub use trainer::{
    build_model, prepare, resolve_model_config, train, EpochRecord, StepHook, StepInfo,
    TrainOptions, TrainOutcome, Training,
};
pub use umm::{evaluate_umm, format_umm_table, UmmReport};
pub use umm_compare::{UmmComparison, UmmGoals};

use std::path::PathBuf;

/// Every error of training, evaluation and extraction.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value out of range.
    #[error(transparent)]
    Config(#[from] next_common::ConfigError),
    /// Dataset or loader problem.
    #[error(transparent)]
    Data(#[from] next_data::DataError),
    /// Model or checkpoint problem (including an architecture mismatch).
    #[error(transparent)]
    Model(#[from] next_model::ModelError),
    /// Evaluation problem.
    #[error(transparent)]
    Metrics(#[from] next_metrics::MetricsError),
    /// File problem.
    #[error(transparent)]
    File(#[from] next_common::FileError),
    /// The output folder already holds a run and neither resume nor force was asked for.
    #[error("{dir} already holds a run ({found}): resume it with --resume, overwrite it with --force, or choose another --out")]
    RunExists {
        /// The output folder.
        dir: PathBuf,
        /// The run's files found there.
        found: String,
    },
    /// Resume was asked for but there is no `last.ckpt` to resume from.
    #[error("--resume: no {} to resume from{}", dir.join("last.ckpt").display(), if *best_only { " (only best.ckpt is there: it holds no resumable position; train without --resume and --force to start over)" } else { " (is --out the run's folder?)" })]
    NothingToResume {
        /// The output folder.
        dir: PathBuf,
        /// Whether `best.ckpt` exists there.
        best_only: bool,
    },
    /// A checkpoint whose training state cannot be read.
    #[error("checkpoint {path}: {message}")]
    TrainingState {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Tensor values that could not be read back (backend problem).
    #[error("reading {what}: {message}")]
    TensorData {
        /// What was being read.
        what: &'static str,
        /// The backend's message.
        message: String,
    },
    /// Data-parallel training: a collective operation failed (often because another rank
    /// stopped) or the device / rank settings are inconsistent.
    #[error("data-parallel training{}: {message}", rank.map(|r| format!(", rank {r}")).unwrap_or_default())]
    Collective {
        /// The global rank that saw the failure (absent for a settings error).
        rank: Option<usize>,
        /// What went wrong.
        message: String,
    },
    /// Bad input images or folders given to extraction.
    #[error("{0}")]
    Input(String),
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
}
