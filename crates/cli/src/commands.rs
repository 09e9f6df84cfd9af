//! The `next` subcommands, each generic over the Burn backend chosen with `--backend`.

pub use crate::args::*;
use crate::config::RunConfig;
use crate::report::{write_curves, write_expert_masks, write_rank_lists};
use crate::RunError;
use burn::tensor::backend::{AutodiffBackend, Backend};
use next_reid::data::{load_dataset, Dataset};
use next_reid::metrics::{evaluate, top_k, FeatureSet};
use next_reid::model::{check_architecture, Checkpoint, ModelError, NextModel};
use next_reid::train::evaluate::{eval_config, extract_query_gallery, ModalityMask};
use next_reid::train::image_query::{
    extract_triplets, scan_triplet_dir, triplet_record, ImageTriplet,
};
use next_reid::train::{
    embedding_spread, evaluate_model, evaluate_umm, expert_mask_stats, extract, format_table,
    format_umm_table, prepare_parallel, DataParallel, EvalSettings, Extracted, NodeConfig,
    SettingResult, StepInfo, TrainConfig, TrainOptions,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The embedded demo configuration (configs/synthetic.toml).
pub const DEMO_CONFIG: &str = include_str!("../../../configs/synthetic.toml");

/// The embedded configuration of the demo's UMM part (configs/umm_synthetic.toml).
pub const DEMO_UMM_CONFIG: &str = include_str!("../../../configs/umm_synthetic.toml");

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<(), RunError> {
    // Probe the device first: a backend that cannot start is a clear error here, not a panic
    // inside its driver bindings on a worker thread.
    next_reid::backend::probe(cli.backend.name())?;
    match cli.backend {
        BackendChoice::Flex => run_on::<next_reid::backend::CpuTrain>(cli.command),
        #[cfg(feature = "wgpu")]
        BackendChoice::Wgpu => run_on::<next_reid::backend::WgpuTrain>(cli.command),
        #[cfg(feature = "cuda")]
        BackendChoice::Cuda => run_on::<next_reid::backend::CudaTrain>(cli.command),
        #[allow(unreachable_patterns)]
        other => Err(RunError::Usage(format!(
            "backend {other:?} is not compiled in: rebuild with `--features {}` (compiled: {:?})",
            other.name(),
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
        Command::Ablate(a) => crate::research::cmd_ablate::<B>(&a, &device),
        Command::Pretrain(a) => crate::research::cmd_pretrain::<B>(&a, &device),
        Command::Info(a) => cmd_info::<B>(&a),
        Command::Caption(c) => Ok(c.run()?),
        Command::Orchestrator(a) => {
            eprintln!("orchestrator listening on port {}", a.port);
            Ok(next_reid::train::distributed::run_orchestrator(a.port)?)
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
        force: a.force,
        verbose: true,
        step_hook: a.hang_after_epoch.map(hang_after_epoch),
    };
    let parallel = DataParallel {
        devices: a.devices,
        node: a.rank.map(|rank| NodeConfig {
            rank,
            num_nodes: a.world_size.unwrap_or(1),
            orchestrator: a.orchestrator.clone().unwrap_or_default(),
        }),
        timeout: std::time::Duration::from_secs(a.collective_timeout),
    };
    let devices = match a.devices {
        1 => vec![device.clone()],
        n => next_reid::train::distributed::devices::<B>(n),
    };
    // Every check (folder, checkpoint, architecture) passes before anything is written.
    let training = prepare_parallel::<B>(
        &cfg.model,
        &cfg.train_config(),
        &dataset,
        &opts,
        &parallel,
        &devices,
    )?;
    let writes = parallel.global_rank(0) == 0;
    if writes {
        next_reid::common::write_atomic(a.out.join("config.toml"), cfg.to_file_text()?.as_bytes())?;
    }
    let outcome = training.run()?;
    if !writes {
        return Ok(());
    }
    write_curves(&a.out, &a.out.join("steps.jsonl"), &outcome.history)?;
    if let Some((epoch, map)) = outcome.best {
        println!(
            "best mAP {map:.2} at epoch {epoch}; checkpoints in {}",
            a.out.display()
        );
    }
    Ok(())
}

/// Testing aid of `--hang-after-epoch N`: block forever one step into epoch N + 1 (so that a
/// test can SIGKILL a run that has progress past its last checkpoint).
fn hang_after_epoch(epochs: usize) -> next_reid::train::StepHook {
    Arc::new(move |info: &StepInfo| {
        if info.epoch == epochs && info.step == 1 {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    })
}

/// The run configuration saved in a checkpoint (model, dataset and training sections).
fn saved_run_config(checkpoint: &Checkpoint, path: &Path) -> Result<RunConfig, RunError> {
    let header = checkpoint.model_header(path)?;
    let section = |name: &str| checkpoint.header.get(name).cloned();
    let mut cfg = RunConfig {
        model: header.model,
        ..RunConfig::default()
    };
    if let Some(data) = section("data").and_then(|d| serde_json::from_value(d).ok()) {
        cfg.data = data;
    }
    if let Some(train) =
        section("train").and_then(|t| serde_json::from_value::<TrainConfig>(t).ok())
    {
        cfg.solver = train.solver;
        cfg.loader = train.loader;
        cfg.eval = train.eval;
    }
    Ok(cfg)
}

/// Model and dataset of a checkpoint: the model from the checkpoint alone, the configuration
/// saved in it plus `overrides`. An override that changes the architecture (or the image size)
/// is an error naming the key.
pub fn open_checkpoint<B: Backend>(
    path: &Path,
    overrides: &[String],
    device: &B::Device,
) -> Result<(RunConfig, Dataset, NextModel<B>), RunError> {
    let checkpoint = Checkpoint::load(path)?;
    let header = checkpoint.model_header(path)?;
    let saved = saved_run_config(&checkpoint, path)?;
    let origin = format!("{} (its saved config)", path.display());
    let cfg = RunConfig::from_toml_text(&origin, &saved.to_toml(), overrides)?;
    let clip = if cfg.model.clip == header.model.clip {
        header.clip.clone()
    } else {
        cfg.model.clip_config()?
    };
    check_architecture(path, &header, &cfg.model, &clip)?;
    let size = cfg.data.size();
    if let Some(saved) = header.image_size.filter(|saved| *saved != size) {
        return Err(ModelError::Mismatch {
            checkpoint: path.to_path_buf(),
            key: "data.image_size".into(),
            checkpoint_value: format!("{saved:?}"),
            config_value: format!("{size:?}"),
        }
        .into());
    }
    let model = header.model.init_with_clip::<B>(&header.clip, device)?;
    let mut model = checkpoint.load_weights(model, path, device)?;
    // Only settings that change no weight differ now (feature stage, precision, text mode).
    let precision = cfg.model.precision;
    model.config = cfg.model.clone();
    model.set_precision(precision);
    let dataset = open_dataset(&cfg, false)?;
    Ok((cfg, dataset, model))
}

/// Write `value` as pretty JSON to `path` (atomically); `what` names it in errors.
pub(crate) fn write_json(
    path: &Path,
    what: &str,
    value: &impl serde::Serialize,
) -> Result<(), RunError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| RunError::Json {
        what: what.to_string(),
        message: e.to_string(),
    })?;
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
            .ok_or_else(|| RunError::Usage("next eval needs --checkpoint or --features".into()))?;
        let protocols = crate::any_query::requested_protocols(a)?;
        let (cfg, dataset, model) = open_checkpoint::<B>(checkpoint, &a.overrides, device)?;
        if let Some(protocols) = protocols {
            return crate::any_query::eval_protocols(a, &protocols, &cfg, &dataset, &model, device);
        }
        let settings = EvalSettings::from_config(&cfg.train_config(), true);
        let transform = next_reid::data::TransformConfig::from_dataset(&dataset.config);
        let spread = embedding_spread(&model, &dataset.query, transform, &settings, device)?;
        print!("feature spread of the query set\n{}", spread.lines());
        if let Some(stats) =
            expert_mask_stats(&model, &dataset.query, transform, &settings, device)?
        {
            print!("{stats}");
        }
        let results = evaluate_model(&model, &dataset, &settings, !a.no_missing, device)?.0;
        print!("{}", format_table("evaluation (%)", &results));
        if !a.no_missing {
            let report = evaluate_umm(&model, &dataset, &settings, device)?;
            print!("{}", format_umm_table(&report));
            if let Some(path) = &a.umm_json {
                write_json(path, "missing / uncertain modality report", &report)?;
            }
            if let Some(path) = &a.umm_chart {
                crate::umm_chart::write_umm_chart(path, &[("model", &report)])?;
            }
        }
        if let Some(path) = &a.json {
            write_json(path, "evaluation results", &results)?;
        }
        return Ok(());
    };
    print!("{}", format_table("evaluation (%)", &results));
    if let Some(path) = &a.json {
        write_json(path, "evaluation results", &results)?;
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
        "feature keys",
        &serde_json::json!({"query": query.keys, "gallery": gallery.keys}),
    )?;
    Ok(keys_path)
}

fn cmd_embed<B: Backend>(a: &EmbedArgs, device: &B::Device) -> Result<(), RunError> {
    let (cfg, dataset, model) = open_checkpoint::<B>(&a.checkpoint, &a.overrides, device)?;
    let (query, gallery) = match &a.images_dir {
        // A folder of triplets is written as both query and gallery (searchable against itself).
        Some(dir) => {
            let triplets = scan_triplet_dir(dir)?;
            let feats = extract_triplets(
                &model,
                &triplets,
                next_reid::data::TransformConfig::from_dataset(&dataset.config),
                cfg.eval.batch_size,
                a.camera,
                device,
            )?;
            (feats.clone(), feats)
        }
        None => extract_query_gallery(
            &model,
            &dataset,
            &EvalSettings::from_config(&cfg.train_config(), true),
            ModalityMask::FULL,
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
    if crate::any_query::is_any_query(a) {
        return crate::any_query::search_any(a, &cfg, &dataset, &model, device);
    }
    let settings = EvalSettings::from_config(&cfg.train_config(), false);
    let mut triplets = Vec::new();
    if let Some(dir) = &a.query_dir {
        triplets.extend(scan_triplet_dir(dir)?);
    }
    if a.rgb.is_some() || a.nir.is_some() || a.tir.is_some() {
        triplets.push(ImageTriplet::from_files([
            a.rgb.clone(),
            a.nir.clone(),
            a.tir.clone(),
        ])?);
    }
    let (query, gallery, picked, dataset) = if triplets.is_empty() {
        let picked = pick_dataset_queries(&a.query, &dataset)?;
        let (query, gallery) =
            extract_query_gallery(&model, &dataset, &settings, ModalityMask::FULL, device)?;
        (query, gallery, picked, dataset)
    } else {
        let transform = next_reid::data::TransformConfig::from_dataset(&dataset.config);
        let query = extract_triplets(
            &model,
            &triplets,
            transform,
            settings.batch_size,
            a.camera,
            device,
        )?;
        let gallery = extract(
            &model,
            &dataset.gallery,
            transform,
            &settings,
            ModalityMask::FULL,
            "",
            device,
        )?;
        let dataset = Dataset {
            query: triplets.iter().map(triplet_record).collect(),
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
                    RunError::Usage(format!(
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
        "use it with: --set data.root={} --set data.kind=rgbnt201 --set data.captions={}{}",
        data.root.display(),
        data.captions
            .as_ref()
            .map(|c| c.display().to_string())
            .unwrap_or_default(),
        if cfg.synthetic.sketches {
            " --set data.sketch=folder"
        } else {
            ""
        }
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
) -> Result<(), RunError> {
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
