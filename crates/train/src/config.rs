//! The training configuration of the library: optimiser and schedule (`[solver]`), batching
//! (`[loader]`, the `next-data` settings) and evaluation cadence (`[eval]`), each numeric field
//! checked with its range, and the UMM synthetic modality augmentation (`[umm_augment]`).

use next_common::ConfigError;
use next_data::{LoaderConfig, ModalityAugConfig};
use serde::{Deserialize, Serialize};

/// Everything the trainer needs besides the model configuration and the dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Optimiser and schedule.
    pub solver: SolverConfig,
    /// Batching and decoding threads.
    pub loader: LoaderConfig,
    /// Evaluation protocol and cadence.
    pub eval: EvaluationConfig,
    /// UMM synthetic modality augmentation of training batches (off by default).
    pub umm_augment: ModalityAugConfig,
}

/// Optimiser and schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SolverConfig {
    /// Learning rate of everything but the CLIP visual encoder.
    pub base_lr: f64,
    /// Learning rate of the CLIP visual encoder.
    pub clip_lr: f64,
    /// Bias learning-rate multiplier.
    pub bias_lr_factor: f64,
    /// Coupled (L2) weight decay.
    pub weight_decay: f64,
    /// Number of epochs.
    pub epochs: usize,
    /// Warm-up epochs.
    pub warmup_epochs: usize,
    /// Learning-rate factor at the start of warm-up.
    pub warmup_factor: f64,
    /// Learning-rate factor at the end of the cosine decay.
    pub final_lr_factor: f64,
    /// Per-parameter gradient L2-norm clip (0 = off).
    pub grad_clip: f32,
    /// Random seed (model init, sampler, augmentation, dropout, sentence sampling).
    pub seed: u64,
    /// Stop an epoch after this many steps (0 = whole epoch).
    pub max_steps_per_epoch: usize,
    /// Write the last checkpoint every N epochs (0 = only the best checkpoint).
    pub checkpoint_every: usize,
}

/// Evaluation protocol and cadence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationConfig {
    /// Evaluate every N epochs (0 = only at the end).
    pub every: usize,
    /// Also evaluate the six missing-modality settings.
    pub missing_modalities: bool,
    /// Images per feature-extraction batch.
    pub batch_size: usize,
    /// Ranks kept in CMC.
    pub max_rank: usize,
    /// Queries shown in rank-list pictures.
    pub show_queries: usize,
    /// Ranks shown per query in rank-list pictures.
    pub show_ranks: usize,
}

impl Default for SolverConfig {
    fn default() -> Self {
        Self {
            base_lr: 3.5e-4,
            clip_lr: 5e-6,
            bias_lr_factor: 2.0,
            weight_decay: 1e-4,
            epochs: 50,
            warmup_epochs: 10,
            warmup_factor: 0.1,
            final_lr_factor: 0.001,
            grad_clip: 0.0,
            seed: 1,
            max_steps_per_epoch: 0,
            checkpoint_every: 1,
        }
    }
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        Self {
            every: 1,
            missing_modalities: true,
            batch_size: 64,
            max_rank: 50,
            show_queries: 6,
            show_ranks: 8,
        }
    }
}

/// `Err` naming `key` unless `value` is finite and within `[low, high]`.
fn check_range(key: &str, value: f64, low: f64, high: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= low && value <= high {
        return Ok(());
    }
    let expected = if high == f64::MAX {
        format!("a finite number of at least {low}")
    } else {
        format!("a number in [{low}, {high}]")
    };
    Err(ConfigError::out_of_range(key, value, &expected))
}

/// `Err` naming `key` unless `value >= low`.
fn check_at_least(key: &str, value: usize, low: usize) -> Result<(), ConfigError> {
    if value >= low {
        return Ok(());
    }
    Err(ConfigError::out_of_range(
        key,
        value,
        &format!("an integer of at least {low}"),
    ))
}

impl SolverConfig {
    /// Check every numeric field (keys named `solver.*` in errors).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("solver.base_lr", self.base_lr, 0.0, f64::MAX)?;
        check_range("solver.clip_lr", self.clip_lr, 0.0, f64::MAX)?;
        check_range("solver.bias_lr_factor", self.bias_lr_factor, 0.0, f64::MAX)?;
        check_range("solver.weight_decay", self.weight_decay, 0.0, f64::MAX)?;
        check_at_least("solver.epochs", self.epochs, 1)?;
        check_range("solver.warmup_factor", self.warmup_factor, 0.0, 1.0)?;
        check_range("solver.final_lr_factor", self.final_lr_factor, 0.0, 1.0)?;
        check_range("solver.grad_clip", self.grad_clip as f64, 0.0, f64::MAX)?;
        // warmup_epochs, seed, max_steps_per_epoch and checkpoint_every: every value is valid
        // (warm-up is capped at epochs - 1 by the schedule; 0 means "off" for the last two).
        Ok(())
    }
}

impl EvaluationConfig {
    /// Check every numeric field (keys named `eval.*` in errors).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_at_least("eval.batch_size", self.batch_size, 1)?;
        check_at_least("eval.max_rank", self.max_rank, 1)?;
        check_at_least("eval.show_ranks", self.show_ranks, 1)?;
        // every = 0 means "only at the end"; show_queries = 0 draws no rank list.
        Ok(())
    }
}

impl TrainConfig {
    /// Check the solver, evaluation and batching ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.solver.validate()?;
        self.eval.validate()?;
        self.loader.validate().map_err(|e| ConfigError::Invalid {
            origin: "config".into(),
            message: e.to_string(),
        })?;
        let a = &self.umm_augment;
        check_range("umm_augment.p_full", a.p_full, 0.0, 1.0)?;
        check_range("umm_augment.pixel_synth_prob", a.pixel_synth_prob, 0.0, 1.0)?;
        check_range("umm_augment.uncertain_prob", a.uncertain_prob, 0.0, 1.0)?;
        check_range("umm_augment.shadow_prob", a.shadow_prob, 0.0, 1.0)?;
        let l = &self.loader;
        if l.instances_per_id == 0 || l.batch_size < 2 * l.instances_per_id {
            return Err(ConfigError::out_of_range(
                "loader.batch_size",
                l.batch_size,
                &format!(
                    "room for at least two identities of loader.instances_per_id ({}) samples",
                    l.instances_per_id
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_out_of_range_solver_and_eval_field_is_named() {
        type Change = Box<dyn Fn(&mut TrainConfig)>;
        let cases: Vec<(&str, Change)> = vec![
            ("solver.base_lr", Box::new(|c| c.solver.base_lr = -1.0)),
            ("solver.clip_lr", Box::new(|c| c.solver.clip_lr = f64::NAN)),
            (
                "solver.bias_lr_factor",
                Box::new(|c| c.solver.bias_lr_factor = -2.0),
            ),
            (
                "solver.weight_decay",
                Box::new(|c| c.solver.weight_decay = f64::INFINITY),
            ),
            ("solver.epochs", Box::new(|c| c.solver.epochs = 0)),
            (
                "solver.warmup_factor",
                Box::new(|c| c.solver.warmup_factor = 1.5),
            ),
            (
                "solver.final_lr_factor",
                Box::new(|c| c.solver.final_lr_factor = -0.1),
            ),
            ("solver.grad_clip", Box::new(|c| c.solver.grad_clip = -1.0)),
            ("eval.batch_size", Box::new(|c| c.eval.batch_size = 0)),
            ("eval.max_rank", Box::new(|c| c.eval.max_rank = 0)),
            ("eval.show_ranks", Box::new(|c| c.eval.show_ranks = 0)),
            ("loader.batch_size", Box::new(|c| c.loader.batch_size = 3)),
            (
                "umm_augment.p_full",
                Box::new(|c| c.umm_augment.p_full = 1.5),
            ),
            (
                "umm_augment.pixel_synth_prob",
                Box::new(|c| c.umm_augment.pixel_synth_prob = -0.5),
            ),
            (
                "umm_augment.uncertain_prob",
                Box::new(|c| c.umm_augment.uncertain_prob = f64::NAN),
            ),
            (
                "umm_augment.shadow_prob",
                Box::new(|c| c.umm_augment.shadow_prob = 1.5),
            ),
        ];
        assert!(TrainConfig::default().validate().is_ok());
        for (key, change) in cases {
            let mut cfg = TrainConfig::default();
            change(&mut cfg);
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
