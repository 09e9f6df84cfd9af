//! Ablations over several seeds: Table IV rows (a)-(d), the TMSE sampling strategies of Table VI
//! and the sentence-keep sweep of Fig. 6, each row trained once per seed and summarised as
//! mean +- sample standard deviation of the final mAP and rank-1.
//!
//! Every (row, seed) run lives in its own folder with a `result.json`: a finished run is read
//! back instead of retrained, an interrupted one resumes exactly from its `last.ckpt`, so a long
//! ablation can be stopped and continued. Rows with the same model configuration (Table IV (d),
//! Table VI "dynamic" and the base keep probability are all the full model) share their runs.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use next_aggregation::AggregationMode;
use next_data::Dataset;
use next_experts::SamplingStrategy;
use next_model::NextConfig;
use serde::{Deserialize, Serialize};

use crate::{train, TrainConfig, TrainError, TrainOptions};

/// A group of ablation rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AblationSuite {
    /// Table IV: (a) class tokens, (b) MGFA on modality features, (c) + TMSE, (d) + CSSE.
    TableIv,
    /// Table VI: TMSE sampling dynamic / all tokens / top-k / fixed threshold (on the full model).
    Sampling,
    /// Fig. 6: sentence keep probability 0.6 / 0.75 / 0.9 (on the full model).
    SentenceKeep,
}

impl AblationSuite {
    /// Every suite, in the paper's order.
    pub const ALL: [AblationSuite; 3] = [Self::TableIv, Self::Sampling, Self::SentenceKeep];
}

/// One row: a name and the model configuration it trains.
#[derive(Debug, Clone, PartialEq)]
pub struct AblationRow {
    /// The suite it belongs to.
    pub suite: AblationSuite,
    /// Short name (also the run folder's name).
    pub name: String,
    /// The model configuration of the row.
    pub model: NextConfig,
}

/// The rows of `suites` built on `base` (the full model: its aggregation mode is replaced by
/// each Table IV row, its sampling and keep probability by each Table VI / Fig. 6 row).
pub fn ablation_rows(base: &NextConfig, suites: &[AblationSuite]) -> Vec<AblationRow> {
    let mut full = base.clone();
    full.mgfa.mode = AggregationMode::Full;
    let mut rows = Vec::new();
    for &suite in suites {
        let mut push = |name: &str, model: NextConfig| {
            rows.push(AblationRow {
                suite,
                name: name.to_string(),
                model,
            })
        };
        match suite {
            AblationSuite::TableIv => {
                for (name, mode) in [
                    ("iv-a-class-tokens", AggregationMode::ClassTokens),
                    ("iv-b-mgfa-modality", AggregationMode::ModalityFeatures),
                    ("iv-c-tmse", AggregationMode::Semantic),
                    ("iv-d-tmse-csse", AggregationMode::Full),
                ] {
                    let mut model = full.clone();
                    model.mgfa.mode = mode;
                    push(name, model);
                }
            }
            AblationSuite::Sampling => {
                for (name, sampling) in [
                    ("vi-dynamic", SamplingStrategy::Dynamic),
                    ("vi-all-tokens", SamplingStrategy::AllTokens),
                    ("vi-top-k", SamplingStrategy::TopK),
                    ("vi-fixed-threshold", SamplingStrategy::FixedThreshold),
                ] {
                    let mut model = full.clone();
                    model.tmse.sampling = sampling;
                    push(name, model);
                }
            }
            AblationSuite::SentenceKeep => {
                for keep in [0.6, 0.75, 0.9] {
                    let mut model = full.clone();
                    model.sentence_keep_prob = keep;
                    push(&format!("fig6-keep-{keep}"), model);
                }
            }
        }
    }
    rows
}

/// The final evaluation of one (row, seed) run, stored as its `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Training seed.
    pub seed: u64,
    /// Final mAP (%).
    pub map: f64,
    /// Final rank-1 (%).
    pub rank1: f64,
    /// The model configuration trained (to check a reused result).
    pub model: NextConfig,
}

/// One row over all seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowSummary {
    /// Suite of the row.
    pub suite: AblationSuite,
    /// Row name.
    pub name: String,
    /// One result per seed, in seed order.
    pub runs: Vec<RunResult>,
}

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, var.sqrt())
}

impl RowSummary {
    /// mAP values, in seed order.
    pub fn maps(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.map).collect()
    }

    /// Rank-1 values, in seed order.
    pub fn rank1s(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.rank1).collect()
    }
}

/// The printed table: one line per row with mAP and R-1 as mean +- std and the per-seed mAPs.
pub fn format_ablation(rows: &[RowSummary]) -> String {
    let mut out = format!(
        "{:<22} {:>5} {:>16} {:>16}   per-seed mAP\n",
        "row", "seeds", "mAP", "R-1"
    );
    for row in rows {
        let (m, ms) = mean_std(&row.maps());
        let (r, rs) = mean_std(&row.rank1s());
        let seeds: Vec<String> = row.maps().iter().map(|v| format!("{v:.2}")).collect();
        out.push_str(&format!(
            "{:<22} {:>5} {:>8.2} +- {:<5.2} {:>8.2} +- {:<5.2}   {}\n",
            row.name,
            row.runs.len(),
            m,
            ms,
            r,
            rs,
            seeds.join(" ")
        ));
    }
    out
}

/// Where an ablation writes and how chatty it is.
#[derive(Debug, Clone)]
pub struct AblationOptions {
    /// Output folder: one folder per distinct configuration, one per seed inside.
    pub out_dir: PathBuf,
    /// Training seeds.
    pub seeds: Vec<u64>,
    /// Per-epoch lines of every run.
    pub verbose: bool,
}

fn read_result(path: &Path) -> Result<Option<RunResult>, TrainError> {
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = next_common::read_file(path)?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        TrainError::Config(next_common::ConfigError::Invalid {
            origin: path.display().to_string(),
            message: format!("expected an ablation result.json: {e}"),
        })
    })
}

/// Train every row of `rows` once per seed on `dataset` with the solver of `train_cfg` (its seed
/// replaced), seeds outermost so that an interrupted ablation has whole seeds done; reuses
/// finished runs (see the module documentation). Writes `ablation.json` into `opts.out_dir`.
pub fn ablate<B: AutodiffBackend>(
    rows: &[AblationRow],
    dataset: &Dataset,
    train_cfg: &TrainConfig,
    opts: &AblationOptions,
    device: &B::Device,
) -> Result<Vec<RowSummary>, TrainError> {
    if opts.seeds.is_empty() {
        return Err(TrainError::Config(next_common::ConfigError::out_of_range(
            "seeds",
            "none",
            "at least one seed",
        )));
    }
    // Rows with the same configuration share the folder of the first of them.
    let mut folder_of: Vec<String> = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let first = rows[..i].iter().position(|r| r.model == row.model);
        folder_of.push(first.map_or_else(|| row.name.clone(), |j| folder_of[j].clone()));
    }
    let mut summaries: Vec<RowSummary> = rows
        .iter()
        .map(|r| RowSummary {
            suite: r.suite,
            name: r.name.clone(),
            runs: Vec::new(),
        })
        .collect();
    let total = opts.seeds.len() * rows.len();
    let mut done = 0usize;
    for &seed in &opts.seeds {
        for (i, row) in rows.iter().enumerate() {
            done += 1;
            let run_dir = opts
                .out_dir
                .join(&folder_of[i])
                .join(format!("seed-{seed}"));
            let result_path = run_dir.join("result.json");
            let result = match read_result(&result_path)? {
                Some(r) if r.model == row.model && r.seed == seed => r,
                Some(_) => {
                    return Err(TrainError::RunExists {
                        dir: run_dir,
                        found: "result.json of another configuration".into(),
                    })
                }
                None => {
                    if opts.verbose {
                        eprintln!("ablation run {done}/{total}: {} seed {seed}", row.name);
                    }
                    let mut cfg = train_cfg.clone();
                    cfg.solver.seed = seed;
                    let train_opts = TrainOptions {
                        out_dir: run_dir.clone(),
                        resume: run_dir.join("last.ckpt").is_file(),
                        force: !run_dir.join("last.ckpt").is_file(),
                        verbose: opts.verbose,
                        ..TrainOptions::default()
                    };
                    let outcome = train::<B>(&row.model, &cfg, dataset, &train_opts, device)?;
                    let last = outcome
                        .history
                        .last()
                        .and_then(|e| e.eval.clone())
                        .ok_or_else(|| {
                            TrainError::Config(next_common::ConfigError::Invalid {
                                origin: run_dir.display().to_string(),
                                message:
                                    "the run ended without a final evaluation (empty query split?)"
                                        .into(),
                            })
                        })?;
                    let result = RunResult {
                        seed,
                        map: last.map,
                        rank1: last.rank1,
                        model: row.model.clone(),
                    };
                    let json = serde_json::to_vec_pretty(&result).map_err(|e| {
                        TrainError::Config(next_common::ConfigError::Invalid {
                            origin: result_path.display().to_string(),
                            message: e.to_string(),
                        })
                    })?;
                    next_common::write_atomic(&result_path, &json)?;
                    result
                }
            };
            if opts.verbose {
                eprintln!(
                    "{} seed {seed}: mAP {:.2} R-1 {:.2}",
                    row.name, result.map, result.rank1
                );
            }
            summaries[i].runs.push(result);
        }
    }
    let json = serde_json::to_vec_pretty(&summaries).map_err(|e| {
        TrainError::Config(next_common::ConfigError::Invalid {
            origin: "ablation.json".into(),
            message: e.to_string(),
        })
    })?;
    next_common::write_atomic(opts.out_dir.join("ablation.json"), &json)?;
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_change_one_switch_of_the_full_model() {
        let base = NextConfig::tiny(4);
        let rows = ablation_rows(&base, &AblationSuite::ALL);
        assert_eq!(rows.len(), 4 + 4 + 3);
        let full = &rows[3].model;
        assert_eq!(full.mgfa.mode, AggregationMode::Full);
        assert_eq!(&rows[4].model, full, "Table VI dynamic is the full model");
        assert_eq!(rows[5].model.tmse.sampling, SamplingStrategy::AllTokens);
        assert_eq!(rows[8].model.sentence_keep_prob, 0.6);
        assert_eq!(rows[0].model.mgfa.mode, AggregationMode::ClassTokens);
    }

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
    }
}
