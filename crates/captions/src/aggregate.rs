//! Multi-modal attribute aggregation (paper Section IV-B): merge the models of one image per
//! attribute by confidence, then complement each modality from the other modalities.
//!
//! Merge rule: for each attribute the known value with the highest confidence wins; a known value
//! always beats an unknown one; equal confidences go to the model listed first. If every model
//! answered unknown, the result is unknown with the highest of their confidences.
//!
//! Complement rule: in modality `m`, an attribute that is unknown or below the threshold is replaced
//! by the known value of the most confident allowed source modality whose confidence is higher and at
//! least the threshold; equal confidences go to the first modality in RGB, NIR, TIR order. Sources
//! are the merged sets (no chaining). Allowed sources come from [`ComplementRules`]: by default
//! colours only from RGB, carried items and silhouette cues from any modality.

use crate::error::{json_error, CaptionError};
use crate::schema::{AttributeClass, AttributeSet, AttributeValue, ObjectKind};
use next_common::Modality;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

const DEFAULT_RULES: &str = include_str!("../../../configs/captions/complement.v1.json");

/// Merge the answers of several models about one image; `answers` is in tie-break order.
pub fn merge_models(kind: ObjectKind, answers: &[(&str, &AttributeSet)]) -> AttributeSet {
    let mut merged = AttributeSet::new();
    for spec in kind.attributes() {
        let mut best: Option<(&str, &AttributeValue)> = None;
        for (model, set) in answers {
            let Some(candidate) = set.get(spec.key) else {
                continue;
            };
            let better = match best {
                None => true,
                Some((_, current)) => match (candidate.is_unknown(), current.is_unknown()) {
                    (false, true) => true,
                    (true, false) => false,
                    _ => candidate.confidence > current.confidence,
                },
            };
            if better {
                best = Some((model, candidate));
            }
        }
        let value = match best {
            Some((model, v)) => AttributeValue {
                source: Some(model.to_string()),
                ..v.clone()
            },
            None => AttributeValue::unknown(),
        };
        merged.insert(spec.key.to_string(), value);
    }
    merged
}

/// Which modalities may fill which attributes, and the confidence below which a value is refilled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplementRules {
    /// Values below this confidence (or unknown) are candidates for filling.
    pub threshold: f32,
    /// Source modalities of attributes not covered below.
    pub default_sources: Vec<Modality>,
    /// Source modalities per attribute family.
    #[serde(default)]
    pub class_sources: BTreeMap<AttributeClass, Vec<Modality>>,
    /// Source modalities per attribute key (overrides the family).
    #[serde(default)]
    pub attribute_sources: BTreeMap<String, Vec<Modality>>,
}

impl Default for ComplementRules {
    fn default() -> Self {
        serde_json::from_str(DEFAULT_RULES).unwrap_or_else(|_| ComplementRules {
            threshold: 0.5,
            default_sources: Modality::ALL.to_vec(),
            class_sources: BTreeMap::from([(AttributeClass::Colour, vec![Modality::Rgb])]),
            attribute_sources: BTreeMap::new(),
        })
    }
}

impl ComplementRules {
    /// Load rules from a JSON file (format of `configs/captions/complement.v1.json`).
    pub fn load(path: &Path) -> Result<Self, CaptionError> {
        let bytes = next_common::read_file(path)?;
        let rules: Self = serde_json::from_slice(next_common::strip_utf8_bom(&bytes))
            .map_err(|e| json_error(path, "complement rules", e))?;
        if !(0.0..=1.0).contains(&rules.threshold) {
            return Err(CaptionError::Config(format!(
                "{}: threshold must be in [0, 1]",
                path.display()
            )));
        }
        Ok(rules)
    }

    /// The modalities allowed to fill attribute `key` of `kind`.
    pub fn sources(&self, kind: ObjectKind, key: &str) -> &[Modality] {
        if let Some(s) = self.attribute_sources.get(key) {
            return s;
        }
        kind.spec(key)
            .and_then(|spec| self.class_sources.get(&spec.class))
            .map(Vec::as_slice)
            .unwrap_or(&self.default_sources)
    }
}

/// Complement every modality's merged set from the others under `rules`.
pub fn complement_modalities(
    kind: ObjectKind,
    merged: &BTreeMap<Modality, AttributeSet>,
    rules: &ComplementRules,
) -> BTreeMap<Modality, AttributeSet> {
    let mut out = BTreeMap::new();
    for (&target, set) in merged {
        let mut filled = set.clone();
        for spec in kind.attributes() {
            let current = set
                .get(spec.key)
                .cloned()
                .unwrap_or_else(AttributeValue::unknown);
            if !current.is_unknown() && current.confidence >= rules.threshold {
                filled.insert(spec.key.to_string(), current);
                continue;
            }
            let floor = if current.is_unknown() {
                f32::NEG_INFINITY
            } else {
                current.confidence
            };
            let mut best: Option<(Modality, &AttributeValue)> = None;
            for source in Modality::ALL {
                if source == target || !rules.sources(kind, spec.key).contains(&source) {
                    continue;
                }
                let Some(candidate) = merged.get(&source).and_then(|s| s.get(spec.key)) else {
                    continue;
                };
                if candidate.is_unknown()
                    || candidate.confidence < rules.threshold
                    || candidate.confidence <= floor
                {
                    continue;
                }
                if best.is_none_or(|(_, b)| candidate.confidence > b.confidence) {
                    best = Some((source, candidate));
                }
            }
            let value = match best {
                Some((source, v)) => {
                    let origin = match &v.source {
                        Some(model) => format!("{model}@{}", source.name()),
                        None => source.name().to_string(),
                    };
                    AttributeValue {
                        source: Some(origin),
                        ..v.clone()
                    }
                }
                None => current,
            };
            filled.insert(spec.key.to_string(), value);
        }
        out.insert(target, filled);
    }
    out
}
