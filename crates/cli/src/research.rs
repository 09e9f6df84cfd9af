//! `next pretrain` and `next ablate`: argument mapping and printing around the library
//! functions [`next_reid::train::pretrain`] and [`next_reid::train::ablate`].

use crate::args::{AblateArgs, PretrainArgs, SuiteChoice};
use crate::commands::open_dataset;
use crate::plot::{bar_chart, save_png, BarGroup};
use crate::RunError;
use burn::tensor::backend::AutodiffBackend;
use next_reid::common::Progress;
use next_reid::data::{write_or_reuse_synthetic, SynthConfig};
use next_reid::train::{
    ablate, ablation_rows, format_ablation, mean_std, pretrain, AblationOptions, AblationSuite,
    PretrainConfig, PretrainOptions, RowSummary,
};
use std::path::Path;

/// `next pretrain`: pretrain the tiny CLIP and print the held-out retrieval before and after.
pub fn cmd_pretrain<B: AutodiffBackend>(
    a: &PretrainArgs,
    device: &B::Device,
) -> Result<(), RunError> {
    let defaults = PretrainConfig::default();
    let cfg = PretrainConfig {
        synthetic: SynthConfig {
            train_ids: a.train_ids,
            test_ids: a.test_ids,
            ..defaults.synthetic.clone()
        },
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
        ..defaults
    };
    let opts = PretrainOptions {
        out_dir: a.out.clone(),
        data_dir: a.data.clone(),
        force: a.force,
        verbose: true,
    };
    let report = pretrain::<B>(&cfg, &opts, device)?;
    println!(
        "tiny CLIP: {} parameters, vocabulary {} tokens, {} training pairs per epoch, {} epochs in {:.0} s",
        report.parameters,
        report.vocab_size,
        report.train_pairs,
        report.epochs.len(),
        report.train_seconds
    );
    for (name, r) in [("before", &report.before), ("after", &report.after)] {
        for line in r.lines() {
            println!("{name}: {line}");
        }
    }
    println!(
        "saved {} (config.json, model.safetensors, tokenizer.json, pretrain_report.json); use it with --set model.clip={}",
        a.out.display(),
        a.out.display()
    );
    Ok(())
}

/// `next ablate`: train the chosen rows over the seeds, print mean +- std and draw a PNG.
pub fn cmd_ablate<B: AutodiffBackend>(a: &AblateArgs, device: &B::Device) -> Result<(), RunError> {
    let mut cfg = a.config.load()?;
    if a.synthetic {
        let mut synth = cfg.synthetic.clone();
        synth.image_size = synth.image_size.or(Some(cfg.data.size()));
        let total = (synth.train_ids + synth.test_ids) * synth.images_per_id;
        let mut progress = Progress::new("synthetic", total as u64, "triplet");
        let summary = write_or_reuse_synthetic(&synth, &a.out.join("data"), &mut progress)?;
        progress.finish();
        let mut data = summary.dataset_config();
        data.normalization = cfg.data.normalization;
        data.augment_sync = cfg.data.augment_sync;
        data.random_erasing = cfg.data.random_erasing;
        cfg.data = data;
    }
    let dataset = open_dataset(&cfg, true)?;
    let suites: Vec<AblationSuite> = a
        .suite
        .iter()
        .map(|s| match s {
            SuiteChoice::Table4 => AblationSuite::TableIv,
            SuiteChoice::Sampling => AblationSuite::Sampling,
            SuiteChoice::Sentences => AblationSuite::SentenceKeep,
        })
        .collect();
    let mut rows = ablation_rows(&cfg.model, &suites);
    if !a.rows.is_empty() {
        if let Some(unknown) = a.rows.iter().find(|n| !rows.iter().any(|r| &&r.name == n)) {
            let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
            return Err(RunError::Usage(format!(
                "--rows {unknown}: no such row in the chosen suites (rows: {})",
                names.join(", ")
            )));
        }
        rows.retain(|r| a.rows.contains(&r.name));
    }
    let opts = AblationOptions {
        out_dir: a.out.clone(),
        seeds: a.seeds.clone(),
        verbose: true,
    };
    let summaries = ablate::<B>(&rows, &dataset, &cfg.train_config(), &opts, device)?;
    print!("{}", format_ablation(&summaries));
    let png = a.out.join("ablation.png");
    write_ablation_chart(&summaries, &png)?;
    println!(
        "results: {} and {}",
        a.out.join("ablation.json").display(),
        png.display()
    );
    Ok(())
}

/// Bars of every seed's mAP and of the mean, per row.
fn write_ablation_chart(rows: &[RowSummary], path: &Path) -> Result<(), RunError> {
    let categories: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    let seeds = rows.iter().map(|r| r.runs.len()).max().unwrap_or(0);
    let mut groups: Vec<BarGroup> = (0..seeds)
        .map(|k| BarGroup {
            name: rows
                .iter()
                .find_map(|r| r.runs.get(k))
                .map_or(format!("seed #{k}"), |run| format!("seed {}", run.seed)),
            values: rows
                .iter()
                .map(|r| r.runs.get(k).map_or(f64::NAN, |run| run.map))
                .collect(),
        })
        .collect();
    groups.push(BarGroup {
        name: "mean".into(),
        values: rows.iter().map(|r| mean_std(&r.maps()).0).collect(),
    });
    let chart = bar_chart(
        "Ablation: final mAP per seed and mean",
        "mAP (%)",
        &categories,
        &groups,
    )?;
    save_png(&chart, path)?;
    Ok(())
}
