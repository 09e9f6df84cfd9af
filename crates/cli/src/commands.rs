//! The `next` subcommands (clap), each generic over the Burn backend chosen with `--backend`.

use crate::config::RunConfig;
use crate::evaluate::{
    eval_config, evaluate_model, format_table, EvalSettings, Extracted, SettingResult,
};
use crate::report::{write_expert_masks, write_rank_lists};
use crate::trainer::{build_model, checkpoint_config, load_model_weights, train, TrainOptions};
use crate::RunError;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::{Args, Parser, Subcommand, ValueEnum};
use next_reid::data::{load_dataset, Dataset};
use next_reid::metrics::{evaluate, top_k, FeatureSet};
use std::path::{Path, PathBuf};

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
    Caption(next_reid::captions::CaptionCommand),
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
    /// Continue from OUT/last.ckpt.
    #[arg(long)]
    pub resume: bool,
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
    /// Skip the six missing-modality settings.
    #[arg(long)]
    pub no_missing: bool,
    /// Write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
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

/// The embedded demo configuration (configs/synthetic.toml).
pub const DEMO_CONFIG: &str = include_str!("../../../configs/synthetic.toml");

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<(), RunError> {
    match cli.backend {
        BackendChoice::Flex => run_on::<next_reid::backend::CpuTrain>(cli.command),
        #[cfg(feature = "wgpu")]
        BackendChoice::Wgpu => run_on::<next_reid::backend::WgpuTrain>(cli.command),
        #[cfg(feature = "cuda")]
        BackendChoice::Cuda => run_on::<next_reid::backend::CudaTrain>(cli.command),
        #[allow(unreachable_patterns)]
        other => Err(RunError::Other(format!(
            "backend {other:?} is not compiled in: rebuild with `--features {}` (compiled: {:?})",
            format!("{other:?}").to_lowercase(),
            next_reid::backend::compiled_backends()
        ))),
    }
}

fn run_on<B: AutodiffBackend>(command: Command) -> Result<(), RunError> {
    let device = B::Device::default();
    match command {
        Command::Train(a) => cmd_train::<B>(&a, &device),
        Command::Eval(a) => cmd_eval::<B::InnerBackend>(&a, &device),
        Command::Embed(a) => cmd_embed::<B::InnerBackend>(&a, &device),
        Command::Search(a) => cmd_search::<B::InnerBackend>(&a, &device),
        Command::Synth(a) => cmd_synth(&a),
        Command::Demo(a) => crate::demo::run_demo::<B>(&a, &device),
        Command::Info(a) => cmd_info::<B>(&a),
        Command::Caption(c) => {
            next_reid::captions::run_caption_command(c).map_err(|e| RunError::Other(e.to_string()))
        }
    }
}

/// Load the dataset of a config, printing its load report.
pub fn open_dataset(cfg: &RunConfig, verbose: bool) -> Result<Dataset, RunError> {
    let dataset = load_dataset(&cfg.data)?;
    if verbose {
        eprintln!(
            "{} at {}: {} train ({} ids), {} query, {} gallery",
            cfg.data.kind.name(),
            cfg.data.root.display(),
            dataset.train.len(),
            dataset.num_train_ids,
            dataset.query.len(),
            dataset.gallery.len()
        );
        for line in dataset.report.lines() {
            eprintln!("  {line}");
        }
    }
    Ok(dataset)
}

fn cmd_train<B: AutodiffBackend>(a: &TrainArgs, device: &B::Device) -> Result<(), RunError> {
    let cfg = a.config.load()?;
    let dataset = open_dataset(&cfg, true)?;
    let opts = TrainOptions {
        out_dir: a.out.clone(),
        resume: a.resume,
        verbose: true,
        hang_after_epoch: a.hang_after_epoch,
    };
    let outcome = train::<B>(&cfg, &dataset, &opts, device)?;
    if let Some((epoch, map)) = outcome.best {
        println!(
            "best mAP {map:.2} at epoch {epoch}; checkpoints in {}",
            a.out.display()
        );
    }
    Ok(())
}

/// Model and dataset of a training checkpoint (config from the checkpoint plus overrides).
pub fn open_checkpoint<B: Backend>(
    checkpoint: &Path,
    overrides: &[String],
    device: &B::Device,
) -> Result<(RunConfig, Dataset, next_reid::model::NextModel<B>), RunError> {
    let saved = checkpoint_config(checkpoint)?;
    let cfg = RunConfig::from_toml_str(&saved.to_toml(), overrides)?;
    let dataset = open_dataset(&cfg, false)?;
    let model = build_model::<B>(&cfg, &dataset, device)?;
    let model = load_model_weights(model, checkpoint, device)?;
    Ok((cfg, dataset, model))
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), RunError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| RunError::Other(e.to_string()))?;
    next_reid::common::write_atomic(path, text.as_bytes())?;
    Ok(())
}

fn cmd_eval<B: Backend>(a: &EvalArgs, device: &B::Device) -> Result<(), RunError> {
    let results: Vec<SettingResult> = if let Some(features) = &a.features {
        let set = FeatureSet::from_safetensors(features)?;
        let cfg = next_reid::metrics::EvalConfig::default();
        let report = evaluate(
            &set.query,
            &set.gallery,
            &set.query_meta,
            &set.gallery_meta,
            &cfg,
        )?;
        vec![SettingResult::from_report("all", &report)]
    } else {
        let checkpoint = a
            .checkpoint
            .as_ref()
            .ok_or_else(|| RunError::Other("next eval needs --checkpoint or --features".into()))?;
        let (cfg, dataset, model) = open_checkpoint::<B>(checkpoint, &a.overrides, device)?;
        evaluate_model(
            &model,
            &dataset,
            &EvalSettings::from_config(&cfg, true),
            !a.no_missing,
            device,
        )?
        .0
    };
    print!("{}", format_table("evaluation (%)", &results));
    if let Some(path) = &a.json {
        write_json(
            path,
            &serde_json::to_value(&results).map_err(|e| RunError::Other(e.to_string()))?,
        )?;
    }
    Ok(())
}

/// Write extracted query / gallery features as a metrics feature file plus a keys file.
pub fn write_features(
    path: &Path,
    query: &Extracted,
    gallery: &Extracted,
) -> Result<PathBuf, RunError> {
    let set = FeatureSet {
        query: query.features.clone(),
        gallery: gallery.features.clone(),
        query_meta: query.meta.clone(),
        gallery_meta: gallery.meta.clone(),
    };
    set.to_safetensors(path)?;
    let keys_path = path.with_extension("keys.json");
    write_json(
        &keys_path,
        &serde_json::json!({"query": query.keys, "gallery": gallery.keys}),
    )?;
    Ok(keys_path)
}

fn cmd_embed<B: Backend>(a: &EmbedArgs, device: &B::Device) -> Result<(), RunError> {
    let (cfg, dataset, model) = open_checkpoint::<B>(&a.checkpoint, &a.overrides, device)?;
    let (query, gallery) = match &a.images_dir {
        // A folder of triplets is written as both query and gallery (searchable against itself).
        Some(dir) => {
            let triplets = crate::image_query::scan_triplet_dir(dir)?;
            let feats = crate::image_query::extract_triplets(
                &model,
                &triplets,
                next_reid::data::TransformConfig::from_dataset(&dataset.config),
                cfg.eval.batch_size,
                a.camera,
                device,
            )?;
            (feats.clone(), feats)
        }
        None => crate::evaluate::extract_query_gallery(
            &model,
            &dataset,
            &EvalSettings::from_config(&cfg, true),
            crate::evaluate::ModalityMask::FULL,
            device,
        )?,
    };
    let (out, keys) = match a.format {
        EmbedFormat::Safetensors => (a.out.clone(), write_features(&a.out, &query, &gallery)?),
        EmbedFormat::Npy => {
            crate::npy::write_features_npy(&a.out, &query, &gallery, a.images_dir.is_some())?
        }
    };
    println!(
        "{} query and {} gallery features of dimension {} written to {} (ids in {})",
        query.features.rows(),
        gallery.features.rows(),
        query.features.dim(),
        out.display(),
        keys.display()
    );
    Ok(())
}

fn cmd_search<B: Backend>(a: &SearchArgs, device: &B::Device) -> Result<(), RunError> {
    let (cfg, dataset, model) = open_checkpoint::<B>(&a.checkpoint, &a.overrides, device)?;
    let settings = EvalSettings::from_config(&cfg, false);
    let mut triplets = Vec::new();
    if let Some(dir) = &a.query_dir {
        triplets.extend(crate::image_query::scan_triplet_dir(dir)?);
    }
    if a.rgb.is_some() || a.nir.is_some() || a.tir.is_some() {
        triplets.push(crate::image_query::ImageTriplet::from_files([
            a.rgb.clone(),
            a.nir.clone(),
            a.tir.clone(),
        ])?);
    }
    let (query, gallery, picked, dataset) = if triplets.is_empty() {
        let picked = pick_dataset_queries(&a.query, &dataset)?;
        let (query, gallery) = crate::evaluate::extract_query_gallery(
            &model,
            &dataset,
            &settings,
            crate::evaluate::ModalityMask::FULL,
            device,
        )?;
        (query, gallery, picked, dataset)
    } else {
        let transform = next_reid::data::TransformConfig::from_dataset(&dataset.config);
        let query = crate::image_query::extract_triplets(
            &model,
            &triplets,
            transform,
            settings.batch_size,
            a.camera,
            device,
        )?;
        let gallery = crate::evaluate::extract(
            &model,
            &dataset.gallery,
            transform,
            &settings,
            crate::evaluate::ModalityMask::FULL,
            "",
            device,
        )?;
        let dataset = Dataset {
            query: triplets
                .iter()
                .map(crate::image_query::triplet_record)
                .collect(),
            ..dataset
        };
        (query, gallery, (0..triplets.len()).collect(), dataset)
    };
    let ecfg = eval_config(&dataset, cfg.eval.max_rank);
    let lists = top_k(
        &query.features,
        &gallery.features,
        Some((&query.meta, &gallery.meta)),
        a.top,
        &ecfg,
    )?;
    for &qi in &picked {
        let q = &dataset.query[qi];
        println!("query {qi} {} (id {}, camera {}):", q.key, q.pid, q.camid);
        for (rank, nb) in lists[qi].iter().enumerate() {
            let g = &dataset.gallery[nb.index];
            let mark = if g.pid == q.pid { "match" } else { "-" };
            println!(
                "  {:>3}. {:<40} id {:>5} cam {:>2} dist {:.4} {mark}",
                rank + 1,
                g.key,
                g.pid,
                g.camid,
                nb.distance
            );
        }
    }
    if let Some(png) = &a.png {
        let sub_q = subset(&query, &picked);
        let sub_records: Vec<_> = picked.iter().map(|&i| dataset.query[i].clone()).collect();
        let sub_dataset = Dataset {
            query: sub_records,
            ..dataset.clone()
        };
        write_rank_lists(
            png,
            &sub_dataset,
            &sub_q,
            &gallery,
            &ecfg,
            picked.len(),
            a.top,
        )?;
        println!("rank lists drawn to {}", png.display());
    }
    Ok(())
}

fn pick_dataset_queries(queries: &[String], dataset: &Dataset) -> Result<Vec<usize>, RunError> {
    let mut picked = Vec::new();
    for q in if queries.is_empty() {
        vec!["0".to_string()]
    } else {
        queries.to_vec()
    } {
        let index = match q.parse::<usize>() {
            Ok(i) if i < dataset.query.len() => i,
            _ => dataset
                .query
                .iter()
                .position(|r| r.key == q)
                .ok_or_else(|| {
                    RunError::Other(format!(
                        "query {q:?}: expected an index below {} or a query file name",
                        dataset.query.len()
                    ))
                })?,
        };
        picked.push(index);
    }
    Ok(picked)
}

fn subset(e: &Extracted, rows: &[usize]) -> Extracted {
    let dim = e.features.dim();
    let data: Vec<f32> = rows
        .iter()
        .flat_map(|&r| e.features.row(r).to_vec())
        .collect();
    Extracted {
        features: next_reid::metrics::Features::new(data, rows.len(), dim)
            .unwrap_or_else(|_| e.features.clone()),
        meta: rows.iter().map(|&r| e.meta[r]).collect(),
        keys: rows.iter().map(|&r| e.keys[r].clone()).collect(),
    }
}

fn cmd_synth(a: &SynthArgs) -> Result<(), RunError> {
    let cfg = a.config.load()?;
    let (data, summary) = crate::demo::write_synthetic_benchmark(&cfg, &a.out)?;
    println!("{summary}");
    println!(
        "use it with: --set data.root={} --set data.kind=rgbnt201 --set data.captions={}",
        data.root.display(),
        data.captions
            .as_ref()
            .map(|c| c.display().to_string())
            .unwrap_or_default()
    );
    Ok(())
}

fn cmd_info<B: AutodiffBackend>(a: &ConfigArgs) -> Result<(), RunError> {
    println!("next-reid {}", env!("CARGO_PKG_VERSION"));
    println!(
        "compiled backends: {:?}",
        next_reid::backend::compiled_backends()
    );
    let device = B::Device::default();
    println!("active backend: {} on {:?}", B::name(&device), device);
    let cfg = a.load()?;
    let clip = cfg.model.clip_config()?;
    let [h, w] = cfg.data.size();
    let cost = next_reid::model::cost_report(&cfg.model, &clip, h as usize, w as usize)?;
    println!(
        "model ({h} x {w}, aggregation {:?}):\n{cost}",
        cfg.model.mgfa.mode
    );
    Ok(())
}

/// Write the evaluation pictures of a model into `dir`: rank lists and expert masks.
pub fn write_eval_pictures<B: Backend>(
    dir: &Path,
    cfg: &RunConfig,
    dataset: &Dataset,
    model: &next_reid::model::NextModel<B>,
    query: &Extracted,
    gallery: &Extracted,
    device: &B::Device,
) -> Result<Option<Vec<[f64; 3]>>, RunError> {
    let ecfg = eval_config(dataset, cfg.eval.max_rank);
    write_rank_lists(
        &dir.join("rank_lists.png"),
        dataset,
        query,
        gallery,
        &ecfg,
        cfg.eval.show_queries,
        cfg.eval.show_ranks,
    )?;
    write_expert_masks(&dir.join("expert_masks.png"), model, dataset, 3, device)
}
