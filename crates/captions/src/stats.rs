//! Unknown-rate report: per attribute and modality, before merge, after merge, after complement.

use crate::schema::{AttributeSet, ObjectKind};
use next_common::Modality;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Unknown counts of one stage: modality -> attribute -> (unknown, total).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnknownCounts {
    /// Counts per modality and attribute.
    pub counts: BTreeMap<Modality, BTreeMap<String, (usize, usize)>>,
}

impl UnknownCounts {
    /// Count one attribute set of `modality` (missing attributes count as unknown).
    pub fn add(&mut self, kind: ObjectKind, modality: Modality, set: &AttributeSet) {
        let per = self.counts.entry(modality).or_default();
        for spec in kind.attributes() {
            let c = per.entry(spec.key.to_string()).or_default();
            c.0 += usize::from(crate::schema::is_missing(set, spec.key));
            c.1 += 1;
        }
    }

    /// Unknown share of one attribute in one modality (`None` when nothing was counted).
    pub fn rate(&self, modality: Modality, key: &str) -> Option<f64> {
        let (u, t) = *self.counts.get(&modality)?.get(key)?;
        (t > 0).then(|| u as f64 / t as f64)
    }

    /// Unknown share over all attributes of one modality.
    pub fn overall(&self, modality: Modality) -> Option<f64> {
        let per = self.counts.get(&modality)?;
        let (u, t) = per.values().fold((0, 0), |(a, b), (u, t)| (a + u, b + t));
        (t > 0).then(|| u as f64 / t as f64)
    }
}

/// The three stages of the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnknownReport {
    /// Every model's answer counted separately.
    pub before_merge: UnknownCounts,
    /// After merging models per attribute.
    pub after_merge: UnknownCounts,
    /// After complementing across modalities.
    pub after_complement: UnknownCounts,
}

impl UnknownReport {
    /// A plain-text table: one row per modality and attribute, unknown % at each stage.
    pub fn table(&self, kind: ObjectKind) -> String {
        let mut out =
            String::from("modality attribute              before%  merged%  complemented%\n");
        let pct = |c: &UnknownCounts, m, k: &str| {
            c.rate(m, k)
                .map_or("-".to_string(), |r| format!("{:.1}", 100.0 * r))
        };
        for m in Modality::ALL {
            if !self.after_merge.counts.contains_key(&m) {
                continue;
            }
            for spec in kind.attributes() {
                let _ = writeln!(
                    out,
                    "{:<8} {:<22} {:>7}  {:>7}  {:>13}",
                    m.name(),
                    spec.key,
                    pct(&self.before_merge, m, spec.key),
                    pct(&self.after_merge, m, spec.key),
                    pct(&self.after_complement, m, spec.key)
                );
            }
            let all = |c: &UnknownCounts| {
                c.overall(m)
                    .map_or("-".to_string(), |r| format!("{:.1}", 100.0 * r))
            };
            let _ = writeln!(
                out,
                "{:<8} {:<22} {:>7}  {:>7}  {:>13}",
                m.name(),
                "ALL",
                all(&self.before_merge),
                all(&self.after_merge),
                all(&self.after_complement)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::AttributeValue;

    #[test]
    fn rates_count_missing_and_unknown_values() {
        let mut counts = UnknownCounts::default();
        let known: AttributeSet = [("age".to_string(), AttributeValue::new("adult", 0.9))].into();
        let unknown: AttributeSet =
            [("age".to_string(), AttributeValue::new("unclear", 0.9))].into();
        counts.add(ObjectKind::Person, Modality::Tir, &known);
        counts.add(ObjectKind::Person, Modality::Tir, &unknown);
        assert_eq!(counts.rate(Modality::Tir, "age"), Some(0.5));
        assert_eq!(counts.rate(Modality::Tir, "gender"), Some(1.0));
        assert_eq!(counts.rate(Modality::Rgb, "age"), None);
        let n = ObjectKind::Person.attributes().len() as f64;
        let overall = counts.overall(Modality::Tir).unwrap();
        assert!((overall - (2.0 * n - 1.0) / (2.0 * n)).abs() < 1e-12);
        let report = UnknownReport {
            after_merge: counts.clone(),
            ..Default::default()
        };
        let table = report.table(ObjectKind::Person);
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("TIR") && l.contains("age") && l.contains("50.0")),
            "{table}"
        );
        assert!(!table.contains("RGB "), "{table}");
    }
}
