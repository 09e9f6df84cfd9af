//! The NEXT model: a CLIP ViT shared by the RGB, NIR and TIR images, a frozen CLIP text encoder,
//! text-modulated semantic experts (TMSE), context-shared structure experts (CSSE), multi-grained
//! features aggregation (MGFA) and a BNNeck head, configured from TOML; plus the parameter and
//! multiply-add report of the paper's Table VIII.

#![warn(missing_docs)]

mod checkpoint;
mod config;
mod cost;
mod inference;
mod model;
pub mod query;
mod sentences;
pub mod umm;

pub use checkpoint::{
    check_architecture, checkpoint_image_size, Checkpoint, ModelHeader, CHECKPOINT_FORMAT,
};
pub use config::{ClipPreset, ClipSource, FeatureStage, NextConfig, TextMode};
pub use cost::{cost_report, CostReport, CostRow};
pub use model::{l2_normalize, NextInput, NextModel, NextOutput, PreNeckOutput, SharedTokenizer};
pub use next_clip::{ClipConfig, LoadReport, Precision};
pub use next_experts::{ExpertMaskStats, ExpertOverlap, ExpertTokens, MaskStatsAccumulator};
pub use query::{query_text, AlignConfig, AlignLoss, QueryConfig, TextQueryHead, TextQueryInput};
pub use sentences::{join_sentences, SampleCaptions, SentenceSampler};
pub use umm::{Fill, Presence, TokenCosine, Tokenizer, UmmConfig};

use std::path::PathBuf;

/// Errors of building, running, saving and loading the NEXT model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An invalid configuration (the file is named when it came from one).
    #[error("invalid NEXT config{}: {message}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Config {
        /// The config file, when the config was read from one.
        path: Option<PathBuf>,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error(transparent)]
    File(#[from] next_common::FileError),
    /// A CLIP config, weight or tokenizer problem.
    #[error(transparent)]
    Clip(#[from] next_clip::ClipError),
    /// Expert layer input problem.
    #[error(transparent)]
    Experts(#[from] next_experts::ExpertError),
    /// Aggregation problem.
    #[error(transparent)]
    Aggregation(#[from] next_aggregation::AggregationError),
    /// A training batch without the caption that `text = "required"` demands.
    #[error("sample {sample}, modality {modality}: caption missing but the config has text = \"required\"")]
    MissingCaption {
        /// Index of the sample in the batch.
        sample: usize,
        /// The modality whose caption is missing.
        modality: next_common::Modality,
    },
    /// A training batch with no captions at all while the config has `text = "required"`.
    #[error("the batch has no captions but the config has text = \"required\"")]
    NoCaptions,
    /// Inputs of the wrong shape or range.
    #[error("invalid model input: {0}")]
    Input(String),
    /// A checkpoint whose architecture differs from the configuration it is used with.
    #[error("checkpoint {checkpoint}: `{key}` is {checkpoint_value} in the checkpoint but {config_value} in the configuration")]
    Mismatch {
        /// The checkpoint file.
        checkpoint: PathBuf,
        /// The configuration key that differs.
        key: String,
        /// Its value in the checkpoint.
        checkpoint_value: String,
        /// Its value in the configuration (or dataset).
        config_value: String,
    },
    /// A checkpoint that could not be written or does not fit the model.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong, and what was expected.
        message: String,
    },
}
