//! Run configuration: TOML files in `configs/`, `--set a.b=value` overrides applied to the TOML tree
//! before deserialising, and unknown keys reported with the nearest valid key.

use next_reid::data::{DatasetConfig, DatasetKind, LoaderConfig, SynthConfig};
use next_reid::model::NextConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors while reading or checking a run configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error(transparent)]
    Read(#[from] next_reid::common::FileError),
    /// The file is not valid TOML.
    #[error("{path}: expected a TOML run configuration: {message}")]
    Syntax {
        /// The file concerned.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key that the configuration does not have.
    #[error("{origin}: unknown key `{key}`{}", nearest.as_ref().map(|n| format!(" (did you mean `{n}`?)")).unwrap_or_default())]
    UnknownKey {
        /// Where the key came from (file name or `--set`).
        origin: String,
        /// The full dotted key.
        key: String,
        /// The closest valid key, if any is close.
        nearest: Option<String>,
    },
    /// A `--set` argument that is not `key=value`.
    #[error("--set {0}: expected KEY=VALUE, e.g. solver.base_lr=3.5e-4")]
    BadOverride(String),
    /// A value of the wrong type or out of range.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where the value came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration of a training / evaluation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Run name, used for the output folder.
    pub name: String,
    /// Dataset layout, captions, image size and augmentation (the `next-data` settings).
    pub data: DatasetConfig,
    /// The NEXT model (the `next-model` settings); `num_classes` and `num_cameras` are taken
    /// from the training split at run time.
    pub model: NextConfig,
    /// Batching and decoding threads.
    pub loader: LoaderConfig,
    /// Optimiser and schedule.
    pub solver: SolverSection,
    /// Evaluation protocol.
    pub eval: EvalSection,
    /// The synthetic benchmark written by `next synth` / `next demo` (the `next-data` settings).
    pub synthetic: SynthConfig,
}

/// Optimiser and schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SolverSection {
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
    /// Write the last checkpoint every N epochs.
    pub checkpoint_every: usize,
}

/// Evaluation protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
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

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: "run".into(),
            data: DatasetConfig::new("data/synthetic", DatasetKind::Rgbnt201),
            model: NextConfig::default(),
            loader: LoaderConfig::default(),
            solver: SolverSection::default(),
            eval: EvalSection::default(),
            synthetic: SynthConfig::default(),
        }
    }
}

impl Default for SolverSection {
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

impl Default for EvalSection {
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

impl RunConfig {
    /// Read a TOML file (or start from defaults when `path` is `None`), apply `--set` overrides,
    /// check every key against the schema and deserialise.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Self, ConfigError> {
        let (mut tree, origin) = match path {
            Some(p) => {
                let bytes = next_reid::common::read_file(p)?;
                let text = String::from_utf8_lossy(&bytes);
                let table: toml::Table =
                    toml::from_str(&text).map_err(|e| ConfigError::Syntax {
                        path: p.to_path_buf(),
                        message: e.to_string(),
                    })?;
                (table, p.display().to_string())
            }
            None => (toml::Table::new(), "defaults".to_string()),
        };
        let schema = schema_table();
        check_keys(&mut tree, &schema, "", &origin)?;
        for item in overrides {
            apply_override(&mut tree, item)?;
            check_keys(&mut tree, &schema, "", &format!("--set {item}"))?;
        }
        let config: RunConfig = with_defaults(tree)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid {
                origin,
                message: e.to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Parse a TOML string (used for embedded configs and tests), with overrides.
    pub fn from_toml_str(text: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut tree: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: PathBuf::from("<embedded>"),
            message: e.to_string(),
        })?;
        let schema = schema_table();
        check_keys(&mut tree, &schema, "", "<embedded>")?;
        for item in overrides {
            apply_override(&mut tree, item)?;
            check_keys(&mut tree, &schema, "", &format!("--set {item}"))?;
        }
        let config: RunConfig = with_defaults(tree)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid {
                origin: "<embedded>".into(),
                message: e.to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration as TOML text (saved next to checkpoints).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Check value ranges that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |message: String| {
            Err(ConfigError::Invalid {
                origin: "config".into(),
                message,
            })
        };
        let l = &self.loader;
        if l.instances_per_id == 0 || l.batch_size < 2 * l.instances_per_id {
            return bad(format!(
                "loader.batch_size ({}) must hold at least two identities of loader.instances_per_id ({}) samples",
                l.batch_size, l.instances_per_id
            ));
        }
        if self.solver.epochs == 0 {
            return bad("solver.epochs must be at least 1".into());
        }
        for (name, lr) in [
            ("solver.base_lr", self.solver.base_lr),
            ("solver.clip_lr", self.solver.clip_lr),
        ] {
            if !(lr.is_finite() && lr >= 0.0) {
                return bad(format!("{name} = {lr}: expected a non-negative number"));
            }
        }
        if self.eval.batch_size == 0 {
            return bad("eval.batch_size must be at least 1".into());
        }
        self.data
            .validate(Path::new("config [data]"))
            .map_err(|e| ConfigError::Invalid {
                origin: "config".into(),
                message: e.to_string(),
            })?;
        Ok(())
    }
}

/// The default configuration as a TOML table: the schema every key is checked against.
fn schema_table() -> toml::Table {
    let mut full = RunConfig::default();
    // Optional fields are skipped when `None`: give them a value so that they are in the schema.
    full.data.captions = Some(PathBuf::from("captions"));
    full.data.image_size = Some([256, 128]);
    full.synthetic.image_size = Some([128, 64]);
    toml::Table::try_from(full).unwrap_or_default()
}

/// The default configuration with `user` laid over it, key by key (so a partial `[data]` section
/// keeps the default values of the keys it does not name).
fn with_defaults(user: toml::Table) -> toml::Table {
    fn merge(base: &mut toml::Table, overlay: toml::Table) {
        for (key, value) in overlay {
            match (base.get_mut(&key), value) {
                (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
                (_, v) => {
                    base.insert(key, v);
                }
            }
        }
    }
    let mut base = toml::Table::try_from(RunConfig::default()).unwrap_or_default();
    merge(&mut base, user);
    base
}

/// Walk `user` against `schema`: unknown keys are errors naming the nearest valid key; integers
/// given for float fields are converted.
fn check_keys(
    user: &mut toml::Table,
    schema: &toml::Table,
    prefix: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    for (key, value) in user.iter_mut() {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let Some(expected) = schema.get(key) else {
            return Err(ConfigError::UnknownKey {
                origin: origin.to_string(),
                nearest: nearest_key(key, schema, prefix),
                key: full,
            });
        };
        match (expected, value) {
            (toml::Value::Table(sub_schema), toml::Value::Table(sub_user)) => {
                check_keys(sub_user, sub_schema, &full, origin)?
            }
            (toml::Value::Float(_), v @ toml::Value::Integer(_)) => {
                if let toml::Value::Integer(i) = *v {
                    *v = toml::Value::Float(i as f64);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The valid key at this level closest to `key` by edit distance (if reasonably close).
fn nearest_key(key: &str, schema: &toml::Table, prefix: &str) -> Option<String> {
    let (best, dist) = schema
        .keys()
        .map(|k| (k, edit_distance(key, k)))
        .min_by_key(|(_, d)| *d)?;
    if dist > key.len().max(best.len()).div_ceil(2) {
        return None;
    }
    Some(if prefix.is_empty() {
        best.clone()
    } else {
        format!("{prefix}.{best}")
    })
}

/// Levenshtein distance between two strings (by chars).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            row[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[b.len()]
}

/// Apply one `a.b.c=value` override; the value is parsed as TOML (falling back to a bare string).
fn apply_override(tree: &mut toml::Table, item: &str) -> Result<(), ConfigError> {
    let (key, raw) = item
        .split_once('=')
        .ok_or_else(|| ConfigError::BadOverride(item.into()))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(ConfigError::BadOverride(item.into()));
    }
    let raw = raw.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    let mut table = tree;
    for part in &parts[..parts.len() - 1] {
        let entry = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Invalid {
                    origin: format!("--set {item}"),
                    message: format!("`{part}` is a value, not a section"),
                })
            }
        };
    }
    table.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_sets_nested_values_and_converts_integers_to_floats() {
        let cfg = RunConfig::from_toml_str(
            "[solver]\nepochs = 3\n",
            &[
                "solver.base_lr=1".into(),
                "model.mgfa.mode=modality_features".into(),
                "data.root=/x/y".into(),
                "data.captions=/caps".into(),
                "data.image_size=[128, 256]".into(),
            ],
        )
        .unwrap();
        assert_eq!(cfg.solver.epochs, 3);
        assert_eq!(cfg.solver.base_lr, 1.0);
        assert_eq!(
            cfg.model.mgfa.mode,
            next_reid::aggregation::AggregationMode::ModalityFeatures
        );
        assert_eq!(cfg.data.root, PathBuf::from("/x/y"));
        assert_eq!(cfg.data.captions, Some(PathBuf::from("/caps")));
        assert_eq!(cfg.data.size(), [128, 256]);
    }

    #[test]
    fn unknown_key_names_key_and_nearest_valid_key() {
        let err = RunConfig::from_toml_str("", &["solver.base_lrr=0.1".into()]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`solver.base_lrr`"), "{text}");
        assert!(text.contains("did you mean `solver.base_lr`"), "{text}");
        let err = RunConfig::from_toml_str("[sovler]\nepochs = 2\n", &[]).unwrap_err();
        assert!(err.to_string().contains("did you mean `solver`"), "{err}");
    }

    #[test]
    fn wrong_type_and_bad_ranges_are_errors() {
        assert!(RunConfig::from_toml_str("", &["solver.epochs=abc".into()]).is_err());
        assert!(RunConfig::from_toml_str("", &["model.mgfa.mode=z".into()]).is_err());
        assert!(RunConfig::from_toml_str("", &["novalue".into()]).is_err());
        assert!(RunConfig::from_toml_str("", &["loader.batch_size=4".into()]).is_err());
        let err = RunConfig::from_toml_str("", &["model.tmse.num_expert=2".into()]).unwrap_err();
        assert!(err.to_string().contains("model.tmse.num_experts"), "{err}");
    }

    #[test]
    fn defaults_round_trip_through_toml() {
        let cfg = RunConfig::default();
        let back = RunConfig::from_toml_str(&cfg.to_toml(), &[]).unwrap();
        assert_eq!(cfg, back);
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
