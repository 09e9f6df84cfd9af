//! The `next` command line (clap): the subcommands and their arguments.

use crate::config::RunConfig;
use crate::RunError;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Multi-modal (RGB / NIR / TIR + text) object re-identification with NEXT.
#[derive(Debug, Parser)]
#[command(name = "next", version, about)]
pub struct Cli {
    /// Compute backend: flex (CPU), wgpu, cuda (the last two need the cargo features of the same name).
    #[arg(long, global = true, value_enum, default_value_t = BackendChoice::Flex)]
    pub backend: BackendChoice,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Compute backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// Pure-Rust CPU backend.
    Flex,
    /// Portable GPU backend (Vulkan / Metal / DX12).
    Wgpu,
    /// NVIDIA CUDA backend.
    Cuda,
}

impl BackendChoice {
    /// The backend's name as `next_reid::backend` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a NEXT model (checkpoints, logs and curves go to --out).
    Train(TrainArgs),
    /// Evaluate a checkpoint (all modalities and the six missing-modality settings).
    Eval(EvalArgs),
    /// Extract query / gallery (or `--images-dir`) features to safetensors or npy, with a `.keys.json`.
    Embed(EmbedArgs),
    /// Rank the gallery for dataset queries or image triplets: printed and drawn as a rank-list PNG.
    Search(SearchArgs),
    /// Write the synthetic tri-spectral benchmark.
    Synth(SynthArgs),
    /// Synthetic benchmark + small NEXT trained on CPU + evaluation + report folder.
    Demo(DemoArgs),
    /// Backends, devices and model size.
    Info(ConfigArgs),
    /// Caption pipeline (attributes, merge, compose) of next-captions.
    #[command(subcommand)]
    Caption(crate::caption_args::CaptionCommand),
}

/// A config file plus `--set` overrides.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// TOML run configuration (see configs/).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Override one key, e.g. `--set solver.base_lr=3.5e-4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

impl ConfigArgs {
    /// Load the configuration.
    pub fn load(&self) -> Result<RunConfig, RunError> {
        Ok(RunConfig::load(self.config.as_deref(), &self.overrides)?)
    }
}

/// `next train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Configuration.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Output folder.
    #[arg(long, default_value = "runs/next")]
    pub out: PathBuf,
    /// Continue from OUT/last.ckpt (an error when there is none).
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Start over in an --out folder that already holds a run (its checkpoints and logs are replaced).
    #[arg(long)]
    pub force: bool,
    /// Testing aid: block one step after this many epochs (to be killed).
    #[arg(long, hide = true)]
    pub hang_after_epoch: Option<usize>,
}

/// `next eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Training checkpoint (its config is used; `--set` overrides it, e.g. data.root).
    #[arg(long, conflicts_with = "features")]
    pub checkpoint: Option<PathBuf>,
    /// Evaluate a feature file written by `next embed` instead of a model.
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// Overrides on the checkpoint's config.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Skip the six missing-modality settings (and the missing / uncertain table).
    #[arg(long)]
    pub no_missing: bool,
    /// Write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the missing / uncertain modality report (every fill, degradations, cosine) as JSON.
    #[arg(long, conflicts_with = "no_missing")]
    pub umm_json: Option<PathBuf>,
    /// Draw the missing / uncertain modality report as a PNG bar chart.
    #[arg(long, conflicts_with = "no_missing")]
    pub umm_chart: Option<PathBuf>,
}

/// `next embed`.
#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// Training checkpoint.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Overrides on the checkpoint's config.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Output file (safetensors; with `--format npy`, `<out>.npy` is written).
    #[arg(long)]
    pub out: PathBuf,
    /// Output format of the features.
    #[arg(long, value_enum, default_value_t = EmbedFormat::Safetensors)]
    pub format: EmbedFormat,
    /// Embed every triplet of a folder with `RGB/ NI/ TI/` subfolders instead of the dataset.
    #[arg(long)]
    pub images_dir: Option<PathBuf>,
    /// Camera id (0-based) given to the model for `--images-dir` triplets.
    #[arg(long, default_value_t = 0)]
    pub camera: i64,
}

/// Feature file format of `next embed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmbedFormat {
    /// Metrics feature file (query and gallery) plus `.keys.json`.
    Safetensors,
    /// NumPy float32 `[N, D]` (`<out>.npy`) plus `<out>.keys.json`.
    Npy,
}

/// `next search`.
#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// Training checkpoint.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Overrides on the checkpoint's config.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Query samples: index in the query split or file name (repeatable; default: the first).
    #[arg(long)]
    pub query: Vec<String>,
    /// Gallery entries to list per query.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Rank-list picture.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Query RGB image (with --nir / --tir; a missing modality is zero-filled).
    #[arg(long)]
    pub rgb: Option<PathBuf>,
    /// Query near-infrared image.
    #[arg(long)]
    pub nir: Option<PathBuf>,
    /// Query thermal-infrared image.
    #[arg(long)]
    pub tir: Option<PathBuf>,
    /// Folder with `RGB/ NI/ TI/` subfolders paired by file name: every triplet is a query.
    #[arg(long)]
    pub query_dir: Option<PathBuf>,
    /// Camera id (0-based) given to the model for image queries (--rgb/--nir/--tir, --query-dir).
    #[arg(long, default_value_t = 0)]
    pub camera: i64,
}

/// `next synth`.
#[derive(Debug, Clone, Args)]
pub struct SynthArgs {
    /// Configuration (the `[synthetic]` section is used).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Output folder.
    #[arg(long, default_value = "data/synthetic")]
    pub out: PathBuf,
}

/// `next demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Output folder (data, checkpoints, report).
    #[arg(long, default_value = "next-demo")]
    pub out: PathBuf,
    /// Hugging Face CLIP folder (config.json + model.safetensors) instead of the small random CLIP.
    #[arg(long)]
    pub clip: Option<PathBuf>,
    /// Overrides on the embedded demo config (e.g. solver.epochs=4).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}
