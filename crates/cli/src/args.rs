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
    /// Contrastive image-caption pretraining of the tiny CLIP on a disjoint synthetic split,
    /// saved as a Hugging Face folder (`model.clip = "<folder>"`).
    Pretrain(PretrainArgs),
    /// Ablations over seeds: Table IV rows, Table VI sampling, Fig. 6 sentence keep (mean +- std, PNG).
    Ablate(AblateArgs),
    /// Backends, devices and model size.
    Info(ConfigArgs),
    /// Caption pipeline (attributes, merge, compose) of next-captions.
    #[command(subcommand)]
    Caption(crate::caption_args::CaptionCommand),
    /// Serve the orchestrator of a multi-process `next train --world-size N`.
    Orchestrator(OrchestratorArgs),
}

/// `next orchestrator`.
#[derive(Debug, Clone, Args)]
pub struct OrchestratorArgs {
    /// Port to listen on (the processes' --orchestrator is ws://THIS_HOST:PORT).
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
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
    /// Data-parallel replicas in this process, one per device 0..N of the backend (on the CPU
    /// backend, N threads sharing the cores); each trains on 1/N of every PK batch.
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    /// This process's rank, 0..--world-size (rank 0 writes the run), for a multi-process run.
    #[arg(long, requires_all = ["world_size", "orchestrator"])]
    pub rank: Option<usize>,
    /// Number of processes of a multi-process run (each with --devices replicas).
    #[arg(long, requires = "rank")]
    pub world_size: Option<usize>,
    /// Address of the `next orchestrator` of a multi-process run, e.g. ws://10.0.0.1:3000.
    #[arg(long, requires = "rank")]
    pub orchestrator: Option<String>,
    /// Seconds a replica waits for the others in one collective call before the run stops
    /// with an error (a rank died); must cover rank 0's evaluation.
    #[arg(long, default_value_t = 300)]
    pub collective_timeout: u64,
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
    /// Run the any-modality protocols (text -> RNT, sketch -> R / RNT, sketch + text, N -> R,
    /// N + text -> R, T -> R) instead of the usual tables; those the model or data cannot run
    /// are listed as skipped.
    #[arg(long)]
    pub protocols: bool,
    /// One any-to-any protocol: the query modality set (any of R, N, T, S and text, e.g. `T`,
    /// `S+text`, `RN`), against --gallery-modalities.
    #[arg(long, value_name = "SET", conflicts_with = "protocols")]
    pub query_modalities: Option<String>,
    /// The gallery modality set of --query-modalities (default RNT).
    #[arg(long, value_name = "SET")]
    pub gallery_modalities: Option<String>,
    /// With --protocols / --query-modalities: evaluate fresh random weights of the checkpoint's
    /// architecture (the untrained baseline).
    #[arg(long)]
    pub untrained: bool,
    /// Write the protocol rows as JSON.
    #[arg(long)]
    pub protocol_json: Option<PathBuf>,
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
    /// A description of the person as the query (alone, or with --sketch / --rgb / --nir / --tir).
    #[arg(long, conflicts_with_all = ["query", "query_dir"])]
    pub text: Option<String>,
    /// A sketch (line drawing) image file as the query (alone or combined).
    #[arg(long, conflicts_with_all = ["query", "query_dir"])]
    pub sketch: Option<PathBuf>,
    /// With --text / --sketch (or image files): the gallery modality set (default RNT).
    #[arg(long, value_name = "SET", conflicts_with_all = ["query", "query_dir"])]
    pub gallery_modalities: Option<String>,
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
    /// Overrides on the embedded demo configs, NEXT and UMM alike (e.g. solver.epochs=4).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Skip the UMM part (training UMM on the same data and the NEXT-vs-UMM comparison).
    #[arg(long)]
    pub no_umm: bool,
}

/// `next pretrain`.
#[derive(Debug, Clone, Args)]
pub struct PretrainArgs {
    /// The Hugging Face CLIP folder to write (config.json, model.safetensors, tokenizer.json).
    #[arg(long, default_value = "clip-tiny-pretrained")]
    pub out: PathBuf,
    /// Where the synthetic pretraining split is written (reused when it has the same settings).
    #[arg(long, default_value = "data/pretrain-synthetic")]
    pub data: PathBuf,
    /// Passes over the training pairs.
    #[arg(long, default_value_t = 24)]
    pub epochs: usize,
    /// Training identities of the pretraining split.
    #[arg(long, default_value_t = 120)]
    pub train_ids: usize,
    /// Held-out identities (the retrieval report).
    #[arg(long, default_value_t = 24)]
    pub test_ids: usize,
    /// Triplets per step (three image-caption pairs each).
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Seed of initialisation, batch order and augmentation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Replace a CLIP folder already in --out.
    #[arg(long)]
    pub force: bool,
}

/// A suite of `next ablate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SuiteChoice {
    /// Table IV rows (a)-(d).
    Table4,
    /// Table VI TMSE sampling: dynamic, all tokens, top-k, fixed threshold.
    Sampling,
    /// Fig. 6 sentence keep probability 0.6 / 0.75 / 0.9.
    Sentences,
}

/// `next ablate`.
#[derive(Debug, Clone, Args)]
pub struct AblateArgs {
    /// Base configuration (the full model; each row changes one switch of it).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Suites to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "table4")]
    pub suite: Vec<SuiteChoice>,
    /// Only these rows (comma-separated names as printed, e.g. iv-d-tmse-csse).
    #[arg(long, value_delimiter = ',')]
    pub rows: Vec<String>,
    /// Training seeds (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub seeds: Vec<u64>,
    /// Write the config's `[synthetic]` benchmark into `<out>/data` (reused when unchanged) and
    /// train on it instead of `data.root`.
    #[arg(long)]
    pub synthetic: bool,
    /// Output folder (one run per row and seed; finished runs are reused, stopped ones resumed).
    #[arg(long, default_value = "runs/ablation")]
    pub out: PathBuf,
}
