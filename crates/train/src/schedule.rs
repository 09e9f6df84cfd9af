//! Learning-rate schedule of the references: linear warm-up from `warmup_factor` x base, then a
//! cosine decay to `final_factor` x base at the last epoch.

use serde::{Deserialize, Serialize};

/// Epoch-wise warm-up + cosine schedule, returning a multiplier of the base learning rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WarmupCosine {
    /// Total epochs.
    pub epochs: usize,
    /// Warm-up epochs.
    pub warmup_epochs: usize,
    /// Multiplier at epoch 0.
    pub warmup_factor: f64,
    /// Multiplier at the last epoch.
    pub final_factor: f64,
}

impl WarmupCosine {
    /// Build from the solver section.
    pub fn from_solver(s: &crate::SolverConfig) -> Self {
        Self {
            epochs: s.epochs,
            warmup_epochs: s.warmup_epochs.min(s.epochs.saturating_sub(1)),
            warmup_factor: s.warmup_factor,
            final_factor: s.final_lr_factor,
        }
    }

    /// Multiplier of the base learning rate for a 0-based `epoch`.
    pub fn factor(&self, epoch: usize) -> f64 {
        if epoch < self.warmup_epochs {
            let t = epoch as f64 / self.warmup_epochs as f64;
            return self.warmup_factor + (1.0 - self.warmup_factor) * t;
        }
        let decay_epochs = self.epochs.saturating_sub(self.warmup_epochs + 1);
        if decay_epochs == 0 {
            return 1.0;
        }
        let t = ((epoch - self.warmup_epochs) as f64 / decay_epochs as f64).min(1.0);
        self.final_factor
            + (1.0 - self.final_factor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_starts_low_peaks_at_one_and_cosine_ends_at_final_factor() {
        let s = WarmupCosine {
            epochs: 50,
            warmup_epochs: 10,
            warmup_factor: 0.1,
            final_factor: 0.001,
        };
        assert!((s.factor(0) - 0.1).abs() < 1e-12);
        assert!((s.factor(5) - 0.55).abs() < 1e-12);
        assert!((s.factor(10) - 1.0).abs() < 1e-12);
        assert!((s.factor(49) - 0.001).abs() < 1e-12);
        let mid = s.factor(10 + 39 / 2);
        assert!(mid > 0.45 && mid < 0.56, "{mid}");
        for e in 10..49 {
            assert!(s.factor(e + 1) <= s.factor(e), "not decreasing at {e}");
        }
    }

    #[test]
    fn single_epoch_runs_at_full_rate() {
        let s = WarmupCosine {
            epochs: 1,
            warmup_epochs: 0,
            warmup_factor: 0.1,
            final_factor: 0.001,
        };
        assert_eq!(s.factor(0), 1.0);
    }
}
