//! NEXT against UMM on the same data (the UMM part of `next demo`): both models' missing /
//! uncertain reports ([`evaluate_umm`]), a side-by-side table, and the three goals with
//! the margin by which each is met or missed.
//!
//! The goals (issue 12): the UMM missing-modality average with its configured fill at least
//! [`RETENTION_GOAL`] times its own full-modality mAP, at least [`GAIN_GOAL`] points above NEXT's
//! zero-fill average, and its full-modality mAP at most [`FULL_GAP_GOAL`] points below NEXT's.

use crate::evaluate::SettingResult;
use crate::umm::{evaluate_umm, fill_name, FillResults, UmmReport};
use crate::{EvalSettings, TrainError};
use burn::tensor::backend::Backend;
use next_data::{Dataset, MISSING_SETTINGS};
use next_model::NextModel;
use serde::{Deserialize, Serialize};

/// Goal: UMM missing average / UMM full mAP.
pub const RETENTION_GOAL: f64 = 0.85;
/// Goal: points of UMM's missing average above NEXT's zero-fill average.
pub const GAIN_GOAL: f64 = 8.0;
/// Goal: most points UMM's full-modality mAP may lie below NEXT's.
pub const FULL_GAP_GOAL: f64 = 2.0;

/// The missing / uncertain reports of a NEXT and a UMM model evaluated on the same dataset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UmmComparison {
    /// The NEXT model (zero fill: the references' protocol).
    pub next: UmmReport,
    /// The UMM model (every fill).
    pub umm: UmmReport,
    /// The UMM model's configured fill, the one its goals are measured with.
    pub umm_fill: String,
}

/// The three goals, measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UmmGoals {
    /// UMM missing average / UMM full mAP (goal >= [`RETENTION_GOAL`]).
    pub retention: f64,
    /// UMM missing average - NEXT zero-fill missing average, points (goal >= [`GAIN_GOAL`]).
    pub gain: f64,
    /// UMM full mAP - NEXT full mAP, points (goal >= -[`FULL_GAP_GOAL`]).
    pub full_difference: f64,
}

impl UmmGoals {
    /// Whether every goal is met.
    pub fn all_met(&self) -> bool {
        self.retention >= RETENTION_GOAL
            && self.gain >= GAIN_GOAL
            && self.full_difference >= -FULL_GAP_GOAL
    }

    /// One line per goal: measured value, goal, and `met` or by how much it is missed.
    pub fn lines(&self) -> String {
        let verdict = |margin: f64, unit: &str| {
            if margin >= 0.0 {
                "met".to_string()
            } else {
                format!("missed by {:.2}{unit}", -margin)
            }
        };
        format!(
            "goal retention >= {RETENTION_GOAL:.2}: {:.3} ({})\n\
             goal missing average >= NEXT zero-fill + {GAIN_GOAL:.0} points: {:+.2} ({})\n\
             goal full mAP >= NEXT - {FULL_GAP_GOAL:.0} points: {:+.2} ({})\n",
            self.retention,
            verdict(self.retention - RETENTION_GOAL, ""),
            self.gain,
            verdict(self.gain - GAIN_GOAL, " points"),
            self.full_difference,
            verdict(self.full_difference + FULL_GAP_GOAL, " points"),
        )
    }
}

impl UmmComparison {
    /// Evaluate `next` and `umm` (see [`evaluate_umm`]) on `dataset`.
    pub fn evaluate<B: Backend>(
        next: &NextModel<B>,
        umm: &NextModel<B>,
        dataset: &Dataset,
        settings: &EvalSettings,
        device: &B::Device,
    ) -> Result<Self, TrainError> {
        Ok(Self {
            next: evaluate_umm(next, dataset, settings, device)?,
            umm: evaluate_umm(umm, dataset, settings, device)?,
            umm_fill: fill_name(umm.config.umm.fill).into(),
        })
    }

    /// The columns of the table: NEXT's fills, then UMM's, each labelled `model fill`.
    fn columns(&self) -> Vec<(String, &UmmReport, &FillResults)> {
        let mut columns = Vec::new();
        for (label, report) in [("NEXT", &self.next), ("UMM", &self.umm)] {
            for fill in &report.missing {
                columns.push((format!("{label} {}", fill.fill), report, fill));
            }
        }
        columns
    }

    /// The goals, with UMM's configured fill (its zero fill when that was not evaluated) against
    /// NEXT's zero fill; `None` when NEXT has no zero-fill row.
    pub fn goals(&self) -> Option<UmmGoals> {
        let next = self.next.fill("zero")?;
        let umm = self
            .umm
            .fill(&self.umm_fill)
            .or_else(|| self.umm.fill("zero"))?;
        Some(UmmGoals {
            retention: umm.retention,
            gain: umm.average.map - next.average.map,
            full_difference: self.umm.full.map - self.next.full.map,
        })
    }

    /// Side-by-side mAP (%) per setting (rows) and model / fill (columns), with the averages,
    /// retention, the uncertain settings and the goals.
    pub fn format_table(&self) -> String {
        let columns = self.columns();
        let mut out = String::from("NEXT vs UMM: mAP (%) with missing and uncertain modalities\n");
        out.push_str(&format!("{:<12}", "setting"));
        for (name, ..) in &columns {
            out.push_str(&format!(" {name:>10}"));
        }
        out.push('\n');
        let mut row = |label: &str, value: &dyn Fn(&UmmReport, &FillResults) -> f64| {
            out.push_str(&format!("{label:<12}"));
            for (_, report, fill) in &columns {
                out.push_str(&format!(" {:>10.2}", value(report, fill)));
            }
            out.push('\n');
        };
        row("all", &|r, _| r.full.map);
        for (i, s) in MISSING_SETTINGS.iter().enumerate() {
            row(s.name, &|_, f| setting_map(&f.settings, i));
        }
        row("missing avg", &|_, f| f.average.map);
        row("retention", &|_, f| f.retention);
        for (i, d) in next_data::TestDegradation::ALL.iter().enumerate() {
            row(d.name(), &|r, _| setting_map(&r.uncertain, i));
        }
        row("uncert. avg", &|r, _| r.uncertain_average.map);
        if let Some(goals) = self.goals() {
            out.push_str(&format!(
                "goals (UMM {} fill against NEXT zero fill)\n{}",
                self.umm_fill,
                goals.lines()
            ));
        }
        out
    }
}

/// mAP of row `i` (NaN when absent).
fn setting_map(rows: &[SettingResult], i: usize) -> f64 {
    rows.get(i).map_or(f64::NAN, |r| r.map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, map: f64) -> SettingResult {
        SettingResult {
            setting: name.into(),
            map,
            rank1: map,
            rank5: map,
            rank10: map,
            minp: map,
        }
    }

    fn report(full: f64, fills: &[(&str, f64)]) -> UmmReport {
        let missing = fills
            .iter()
            .map(|&(fill, avg)| FillResults {
                fill: fill.into(),
                settings: MISSING_SETTINGS.iter().map(|s| row(s.name, avg)).collect(),
                average: row("avg", avg),
                retention: avg / full,
            })
            .collect();
        UmmReport {
            umm: fills.len() > 1,
            full: row("all", full),
            missing,
            uncertain: next_data::TestDegradation::ALL
                .iter()
                .map(|d| row(d.name(), full - 1.0))
                .collect(),
            uncertain_average: row("avg", full - 1.0),
            uncertain_retention: (full - 1.0) / full,
            cosine: None,
        }
    }

    #[test]
    fn goals_compare_the_configured_fill_with_next_zero_fill() {
        let cmp = UmmComparison {
            next: report(50.0, &[("zero", 30.0)]),
            umm: report(47.0, &[("zero", 35.0), ("synth", 40.0), ("drop", 36.0)]),
            umm_fill: "synth".into(),
        };
        let goals = cmp.goals().unwrap();
        assert!((goals.retention - 40.0 / 47.0).abs() < 1e-12);
        assert!((goals.gain - 10.0).abs() < 1e-12);
        assert!((goals.full_difference + 3.0).abs() < 1e-12);
        assert!(!goals.all_met());
        let lines = goals.lines();
        assert!(lines.contains("0.851 (met)"), "{lines}");
        assert!(lines.contains("+10.00 (met)"), "{lines}");
        assert!(lines.contains("-3.00 (missed by 1.00 points)"), "{lines}");
        let table = cmp.format_table();
        let header = table.lines().nth(1).unwrap();
        for column in ["NEXT zero", "UMM zero", "UMM synth", "UMM drop"] {
            assert!(header.contains(column), "{table}");
        }
        let avg = table
            .lines()
            .find(|l| l.starts_with("missing avg"))
            .unwrap();
        let values: Vec<f64> = avg
            .split_whitespace()
            .skip(2)
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(values, [30.0, 35.0, 40.0, 36.0]);
        assert!(table.contains("night_rgb") && table.contains("goals (UMM synth"));
    }

    #[test]
    fn goals_are_met_only_when_all_three_are() {
        let cmp = UmmComparison {
            next: report(50.0, &[("zero", 30.0)]),
            umm: report(49.0, &[("zero", 42.0), ("synth", 42.0), ("drop", 42.0)]),
            umm_fill: "drop".into(),
        };
        assert!(cmp.goals().unwrap().all_met());
    }
}
