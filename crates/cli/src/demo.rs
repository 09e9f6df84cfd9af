//! `next demo`: write the synthetic benchmark, evaluate an untrained small NEXT, train it on the
//! CPU, evaluate again (all modalities and the six missing-modality settings) and write a report
//! folder with curves, a missing-modality bar chart, rank lists and expert sampling masks. Then
//! the UMM part (unless `--no-umm`): train UMM (configs/umm_synthetic.toml) on the same data,
//! evaluate both models under every missing and uncertain setting ([`UmmComparison`]) and add
//! the NEXT-vs-UMM table, the goals and a bar chart (`umm_missing.png`) to the report.

use crate::commands::{open_dataset, write_eval_pictures, DemoArgs, DEMO_CONFIG, DEMO_UMM_CONFIG};
use crate::config::RunConfig;
use crate::report::{write_curves, write_missing_modality_chart};
use crate::umm_chart::write_umm_chart;
use crate::RunError;
use burn::tensor::backend::AutodiffBackend;
use next_reid::common::Progress;
use next_reid::data::{write_synthetic, Dataset, DatasetConfig};
use next_reid::model::{ClipSource, NextModel};
use next_reid::train::{
    build_model, embedding_spread, evaluate_model, expert_mask_stats, format_table,
    resolve_model_config, train, EvalSettings, TrainOptions, UmmComparison,
};
use std::path::Path;
use std::time::Instant;

/// Write the synthetic benchmark of `cfg.synthetic` into `out` (images of `synthetic.image_size`,
/// or of `data.image_size` when that is unset); returns the dataset settings pointing at it and
/// a one-line summary.
pub fn write_synthetic_benchmark(
    cfg: &RunConfig,
    out: &Path,
) -> Result<(DatasetConfig, String), RunError> {
    let mut synth = cfg.synthetic.clone();
    synth.image_size = synth.image_size.or(Some(cfg.data.size()));
    let total = (synth.train_ids + synth.test_ids) * synth.images_per_id;
    let mut progress = Progress::new("synthetic", total as u64, "triplet");
    let summary = write_synthetic(&synth, out, &mut progress)?;
    progress.finish();
    let mut data = summary.dataset_config();
    data.normalization = cfg.data.normalization;
    data.augment_sync = cfg.data.augment_sync;
    data.random_erasing = cfg.data.random_erasing;
    let line = format!(
        "synthetic benchmark: {} train / {} test triplets ({} x {} px) in {}; contact sheet {}",
        summary.train_triplets,
        summary.test_triplets,
        summary.image_size[0],
        summary.image_size[1],
        summary.root.display(),
        summary.contact_sheet.display()
    );
    Ok((data, line))
}

/// The demo configuration with its data folder under `out` and its embedded pretrained CLIP
/// written there (or the CLIP folder given).
pub fn demo_config(
    out: &Path,
    clip: Option<&Path>,
    overrides: &[String],
) -> Result<RunConfig, RunError> {
    let mut cfg = RunConfig::from_toml_str(DEMO_CONFIG, overrides)?;
    cfg.data.root = out.join("data");
    if let Some(dir) = clip {
        cfg.model.clip = ClipSource::HfDir(dir.to_path_buf());
        cfg.data.normalization = next_reid::data::Normalization::Clip;
    } else {
        cfg.model.clip = crate::demo_clip::materialise_demo_clip(&cfg.model.clip, out)?;
    }
    Ok(cfg)
}

/// The configuration of the demo's UMM part: configs/umm_synthetic.toml with the same
/// overrides as the NEXT part, reading the NEXT part's `data` with its CLIP (`next.model.clip`:
/// the materialised demo CLIP or the `--clip` folder).
pub fn demo_umm_config(next: &RunConfig, overrides: &[String]) -> Result<RunConfig, RunError> {
    let mut cfg =
        RunConfig::from_toml_text("configs/umm_synthetic.toml", DEMO_UMM_CONFIG, overrides)?;
    cfg.data = next.data.clone();
    cfg.model.clip = next.model.clip.clone();
    Ok(cfg)
}

/// What the UMM part adds to the demo.
struct UmmPart {
    comparison: UmmComparison,
    epochs: usize,
    train_secs: f64,
}

/// The UMM part: train UMM on `dataset` into `report_dir/umm` (checkpoints, logs, curves),
/// evaluate it and the trained NEXT `next` under every missing / uncertain setting, and draw
/// `report_dir/umm_missing.png`.
fn run_umm_part<B: AutodiffBackend>(
    cfg: &RunConfig,
    dataset: &Dataset,
    next: &NextModel<B::InnerBackend>,
    report_dir: &Path,
    device: &B::Device,
) -> Result<UmmPart, RunError> {
    let umm_dir = report_dir.join("umm");
    let opts = TrainOptions {
        out_dir: umm_dir.clone(),
        force: true,
        verbose: true,
        ..TrainOptions::default()
    };
    eprintln!("training UMM on the same data ...");
    next_reid::common::write_atomic(umm_dir.join("config.toml"), cfg.to_file_text()?.as_bytes())?;
    let train_cfg = cfg.train_config();
    let started = Instant::now();
    let outcome = train::<B>(&cfg.model, &train_cfg, dataset, &opts, device)?;
    let train_secs = started.elapsed().as_secs_f64();
    write_curves(&umm_dir, &umm_dir.join("steps.jsonl"), &outcome.history)?;
    eprintln!("evaluating NEXT and UMM under missing and uncertain modalities ...");
    let settings = EvalSettings::from_config(&train_cfg, false);
    let comparison = UmmComparison::evaluate(next, &outcome.model, dataset, &settings, device)?;
    write_umm_chart(
        &report_dir.join("umm_missing.png"),
        &[("NEXT", &comparison.next), ("UMM", &comparison.umm)],
    )?;
    Ok(UmmPart {
        comparison,
        epochs: cfg.solver.epochs,
        train_secs,
    })
}

/// Run the whole demo.
pub fn run_demo<B: AutodiffBackend>(a: &DemoArgs, device: &B::Device) -> Result<(), RunError> {
    let started = Instant::now();
    let mut cfg = demo_config(&a.out, a.clip.as_deref(), &a.overrides)?;
    let (data, summary) = write_synthetic_benchmark(&cfg, &cfg.data.root)?;
    eprintln!("{summary}");
    cfg.data = data;
    let dataset = open_dataset(&cfg, true)?;
    let report_dir = a.out.join("report");
    let train_cfg = cfg.train_config();
    let settings = EvalSettings::from_config(&train_cfg, false);

    eprintln!("evaluating the untrained model ...");
    let model_cfg = resolve_model_config(&cfg.model, &dataset);
    let (untrained, _) = build_model::<B::InnerBackend>(&model_cfg, cfg.solver.seed, device)?;
    let (before, ..) = evaluate_model(&untrained, &dataset, &settings, true, device)?;
    let transform = next_reid::data::TransformConfig::from_dataset(&dataset.config);
    let experts_before =
        expert_mask_stats(&untrained, &dataset.query, transform, &settings, device)?;
    drop(untrained);

    // The demo regenerates its whole --out folder (data included): its run is always replaced.
    let opts = TrainOptions {
        out_dir: report_dir.clone(),
        force: true,
        verbose: true,
        ..TrainOptions::default()
    };
    next_reid::common::write_atomic(
        report_dir.join("config.toml"),
        cfg.to_file_text()?.as_bytes(),
    )?;
    let train_started = Instant::now();
    let outcome = train::<B>(&cfg.model, &train_cfg, &dataset, &opts, device)?;
    write_curves(
        &report_dir,
        &report_dir.join("steps.jsonl"),
        &outcome.history,
    )?;
    let train_secs = train_started.elapsed().as_secs_f64();

    eprintln!("evaluating the trained model ...");
    let (after, query, gallery, _) =
        evaluate_model(&outcome.model, &dataset, &settings, true, device)?;
    write_eval_pictures(
        &report_dir,
        &cfg,
        &dataset,
        &outcome.model,
        &query,
        &gallery,
        device,
    )?;

    let trained_name = format!("trained, {} epochs", cfg.solver.epochs);
    write_missing_modality_chart(
        &report_dir.join("missing_modalities.png"),
        &[("untrained", &before), (&trained_name, &after)],
    )?;
    let spread = embedding_spread(&outcome.model, &dataset.query, transform, &settings, device)?;
    let umm = if a.no_umm {
        None
    } else {
        let umm_cfg = demo_umm_config(&cfg, &a.overrides)?;
        Some(run_umm_part::<B>(
            &umm_cfg,
            &dataset,
            &outcome.model,
            &report_dir,
            device,
        )?)
    };

    let mut text = String::new();
    text.push_str(&format!(
        "NEXT demo on the synthetic benchmark ({} train / {} query / {} gallery triplets, {} x {} px)\n",
        dataset.train.len(),
        dataset.query.len(),
        dataset.gallery.len(),
        cfg.data.size()[0],
        cfg.data.size()[1]
    ));
    text.push_str(&format_table("untrained model (%)", &before));
    text.push_str(&format_table(
        &format!("trained model, {} epochs (%)", cfg.solver.epochs),
        &after,
    ));
    let gain = after[0].map - before[0].map;
    text.push_str(&format!(
        "mAP gain from training: {gain:+.2} points; training took {train_secs:.0} s\n"
    ));
    text.push_str(&format!(
        "feature spread of the trained model's query features\n{}",
        spread.lines()
    ));
    let experts = expert_mask_stats(&outcome.model, &dataset.query, transform, &settings, device)?;
    for (name, stats) in [("untrained", &experts_before), ("trained", &experts)] {
        if let Some(stats) = stats {
            text.push_str(&format!("{name} model, query set: {stats}"));
        }
    }
    if let Some(umm) = &umm {
        text.push_str(&format!(
            "UMM (configs/umm_synthetic.toml, {} epochs, trained in {:.0} s) against the trained NEXT\n{}",
            umm.epochs,
            umm.train_secs,
            umm.comparison.format_table()
        ));
    }
    text.push_str(&format!(
        "report: {} (loss.png, lr.png, map.png, missing_modalities.png, rank_lists.png, expert_masks.png, {}results.json)\n",
        report_dir.display(),
        if umm.is_some() { "umm_missing.png, umm/, " } else { "" }
    ));
    text.push_str(&format!(
        "total time {:.0} s\n",
        started.elapsed().as_secs_f64()
    ));
    print!("{text}");
    next_reid::common::write_atomic(report_dir.join("summary.txt"), text.as_bytes())?;
    let json = serde_json::json!({
        "untrained": before, "trained": after, "train_seconds": train_secs, "spread": spread,
        "experts": { "untrained": experts_before, "trained": experts },
        "epochs": outcome.history,
        "umm": umm.as_ref().map(|u| serde_json::json!({
            "epochs": u.epochs, "train_seconds": u.train_secs,
            "comparison": u.comparison, "goals": u.comparison.goals(),
        })),
    });
    let json = serde_json::to_string_pretty(&json).map_err(|e| RunError::Json {
        what: "demo results".into(),
        message: e.to_string(),
    })?;
    next_reid::common::write_atomic(report_dir.join("results.json"), json.as_bytes())?;
    Ok(())
}
