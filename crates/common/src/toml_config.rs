//! The one TOML loader of next-reid: a file (or text, or the defaults), then `--set a.b=value`
//! overrides applied to the TOML tree, every key checked against a schema (an unknown key is an
//! error naming the nearest valid key), relative paths of a file resolved against the file's
//! folder, and each type error blamed on where the value came from (the file or the `--set`).

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Errors while reading or checking a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error(transparent)]
    Read(#[from] crate::FileError),
    /// The file is not valid TOML.
    #[error("{path}: expected a TOML configuration: {message}")]
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
    /// A value of the wrong type.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where the value came from (file name or `--set KEY=VALUE`).
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A value outside its range.
    #[error("{key} = {value}: expected {expected}")]
    OutOfRange {
        /// The full dotted key.
        key: String,
        /// The value given.
        value: String,
        /// The accepted range, in words.
        expected: String,
    },
}

impl ConfigError {
    /// A value outside its range: `key = value: expected ...`.
    pub fn out_of_range(key: &str, value: impl std::fmt::Display, expected: &str) -> Self {
        Self::OutOfRange {
            key: key.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }
}

/// Where the base configuration comes from.
#[derive(Debug, Clone, Copy)]
pub enum TomlSource<'a> {
    /// Only the defaults.
    Defaults,
    /// A TOML file: relative paths in it are resolved against its folder.
    File(&'a Path),
    /// TOML text (embedded configs, checkpoints); `origin` names it in errors. Paths stay as written.
    Text {
        /// Name used in error messages.
        origin: &'a str,
        /// The TOML text.
        text: &'a str,
    },
}

/// The shape of one configuration type: its defaults, its schema and its path-valued keys.
#[derive(Debug, Clone)]
pub struct TomlLayout {
    defaults: toml::Table,
    schema: toml::Table,
    path_keys: Vec<String>,
    literals: Vec<String>,
}

impl TomlLayout {
    /// `defaults` is the default value; `schema` the same type with every optional field set
    /// (so that every key is known); `path_keys` the dotted keys holding file paths.
    pub fn new<T: Serialize>(
        defaults: &T,
        schema: &T,
        path_keys: &[&str],
    ) -> Result<Self, ConfigError> {
        let table = |value: &T| {
            toml::Table::try_from(value).map_err(|e| ConfigError::Invalid {
                origin: "defaults".into(),
                message: e.to_string(),
            })
        };
        Ok(Self {
            defaults: table(defaults)?,
            schema: table(schema)?,
            path_keys: path_keys.iter().map(|k| k.to_string()).collect(),
            literals: Vec::new(),
        })
    }

    /// Values of path keys that are names, not paths (e.g. the CLIP presets `tiny`, `vit_b16`):
    /// never resolved against the file's folder.
    pub fn with_literals(mut self, literals: &[&str]) -> Self {
        self.literals = literals.iter().map(|l| l.to_string()).collect();
        self
    }

    /// Read `source`, apply `overrides` (`KEY=VALUE`, value parsed as TOML, else a bare string;
    /// `KEY=none` turns an optional key off), check every key and deserialise. Range checks are
    /// the caller's.
    pub fn load<T: DeserializeOwned>(
        &self,
        source: TomlSource<'_>,
        overrides: &[String],
    ) -> Result<T, ConfigError> {
        let (mut tree, origin) = match source {
            TomlSource::Defaults => (toml::Table::new(), "defaults".to_string()),
            TomlSource::File(path) => {
                let bytes = crate::read_file(path)?;
                let text = String::from_utf8(bytes).map_err(|e| ConfigError::Syntax {
                    path: path.to_path_buf(),
                    message: format!("expected UTF-8 text: {e}"),
                })?;
                let mut table = parse(&text, path)?;
                // Absolute, so that the resolved paths (kept in checkpoints and run folders)
                // still name the same files when read from another folder.
                let folder = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let base = std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf());
                self.resolve_paths(&mut table, &base);
                (table, path.display().to_string())
            }
            TomlSource::Text { origin, text } => (parse(text, Path::new(origin))?, origin.into()),
        };
        check_keys(&mut tree, &self.schema, "", &origin)?;
        let mut config = self.deserialize(&tree, &origin)?;
        for item in overrides {
            let origin = format!("--set {item}");
            self.apply_override(&mut tree, item)?;
            check_keys(&mut tree, &self.schema, "", &origin)?;
            config = self.deserialize(&tree, &origin)?;
        }
        Ok(config)
    }

    fn deserialize<T: DeserializeOwned>(
        &self,
        tree: &toml::Table,
        origin: &str,
    ) -> Result<T, ConfigError> {
        let mut full = self.defaults.clone();
        merge(&mut full, tree.clone());
        full.try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid {
                origin: origin.to_string(),
                message: e.to_string(),
            })
    }

    /// `config` as the text of a TOML file that reads back the same from any folder: relative
    /// path values (relative to the current folder, as `--set` gives them) are made absolute,
    /// since a file's relative paths resolve against the file's own folder.
    pub fn file_text<T: Serialize>(&self, config: &T) -> Result<String, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            origin: "configuration to save".into(),
            message,
        };
        let mut tree = toml::Table::try_from(config).map_err(|e| invalid(e.to_string()))?;
        let cwd = std::env::current_dir().map_err(|e| invalid(format!("current folder: {e}")))?;
        self.resolve_paths(&mut tree, &cwd);
        toml::to_string_pretty(&tree).map_err(|e| invalid(e.to_string()))
    }

    /// Relative path values of a file, joined to the file's folder (absolute ones unchanged).
    fn resolve_paths(&self, tree: &mut toml::Table, base: &Path) {
        for key in &self.path_keys {
            let parts: Vec<&str> = key.split('.').collect();
            let Some((last, sections)) = parts.split_last() else {
                continue;
            };
            let Some(table) = table_at(tree, sections) else {
                continue;
            };
            if let Some(toml::Value::String(s)) = table.get_mut(*last) {
                if !self.literals.iter().any(|l| l == s) && Path::new(s.as_str()).is_relative() {
                    *s = base.join(s.as_str()).display().to_string();
                }
            }
        }
    }

    /// Whether `key` is optional: in the schema but absent from the defaults.
    fn is_optional(&self, parts: &[&str]) -> bool {
        lookup(&self.schema, parts).is_some() && lookup(&self.defaults, parts).is_none()
    }

    /// Apply one `a.b.c=value` override to the tree.
    fn apply_override(&self, tree: &mut toml::Table, item: &str) -> Result<(), ConfigError> {
        let (key, raw) = item
            .split_once('=')
            .ok_or_else(|| ConfigError::BadOverride(item.into()))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(ConfigError::BadOverride(item.into()));
        }
        let raw = raw.trim();
        let parts: Vec<&str> = key.split('.').collect();
        let Some((last, sections)) = parts.split_last() else {
            return Err(ConfigError::BadOverride(item.into()));
        };
        let remove = raw == "none" && self.is_optional(&parts);
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        let mut table = tree;
        for part in sections {
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
        if remove {
            table.remove(*last);
        } else {
            table.insert(last.to_string(), value);
        }
        Ok(())
    }
}

fn parse(text: &str, path: &Path) -> Result<toml::Table, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The sub-table at the dotted path `sections` (`None` when a section is absent or a value).
fn table_at<'a>(table: &'a mut toml::Table, sections: &[&str]) -> Option<&'a mut toml::Table> {
    match sections.split_first() {
        None => Some(table),
        Some((first, rest)) => match table.get_mut(*first) {
            Some(toml::Value::Table(t)) => table_at(t, rest),
            _ => None,
        },
    }
}

fn lookup<'a>(table: &'a toml::Table, parts: &[&str]) -> Option<&'a toml::Value> {
    let (first, rest) = parts.split_first()?;
    let value = table.get(*first)?;
    if rest.is_empty() {
        return Some(value);
    }
    match value {
        toml::Value::Table(t) => lookup(t, rest),
        _ => None,
    }
}

/// Lay `overlay` over `base`, key by key (a partial section keeps the other default values).
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Demo {
        rate: f64,
        steps: usize,
        data: DemoData,
    }

    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct DemoData {
        root: PathBuf,
        #[serde(skip_serializing_if = "Option::is_none")]
        captions: Option<PathBuf>,
    }

    impl Default for Demo {
        fn default() -> Self {
            Self {
                rate: 0.5,
                steps: 3,
                data: DemoData {
                    root: "data".into(),
                    captions: None,
                },
            }
        }
    }

    fn layout() -> TomlLayout {
        let mut schema = Demo::default();
        schema.data.captions = Some("c".into());
        TomlLayout::new(&Demo::default(), &schema, &["data.root", "data.captions"]).unwrap()
    }

    #[test]
    fn relative_paths_of_a_file_resolve_against_its_folder_and_none_turns_a_key_off() {
        let dir = std::env::temp_dir().join(format!("next-common-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.toml");
        std::fs::write(
            &path,
            "rate = 1\n[data]\nroot = \"../images\"\ncaptions = \"/abs/caps\"\n",
        )
        .unwrap();
        let cfg: Demo = layout().load(TomlSource::File(&path), &[]).unwrap();
        assert_eq!(cfg.rate, 1.0);
        assert_eq!(cfg.data.root, dir.join("../images"));
        assert_eq!(cfg.data.captions, Some(PathBuf::from("/abs/caps")));
        let off: Demo = layout()
            .load(
                TomlSource::File(&path),
                &["data.captions=none".into(), "data.root=rel".into()],
            )
            .unwrap();
        assert_eq!(off.data.captions, None);
        assert_eq!(
            off.data.root,
            PathBuf::from("rel"),
            "--set paths stay as typed"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_named_by_a_relative_path_gives_absolute_paths() {
        let dir = std::env::temp_dir().join(format!("next-common-rel-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("images")).unwrap();
        std::fs::write(dir.join("run.toml"), "[data]\nroot = \"images\"\n").unwrap();
        // The same file, named relative to the current folder.
        let cwd = std::env::current_dir().unwrap();
        let up = "../".repeat(cwd.components().count() - 1);
        let relative = PathBuf::from(up).join(dir.strip_prefix("/").unwrap().join("run.toml"));
        assert!(relative.is_relative() && relative.is_file());
        let cfg: Demo = layout().load(TomlSource::File(&relative), &[]).unwrap();
        assert!(cfg.data.root.is_absolute(), "{}", cfg.data.root.display());
        assert_eq!(
            cfg.data.root.canonicalize().unwrap(),
            dir.join("images").canonicalize().unwrap()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_type_error_in_set_names_the_set_argument_not_the_file() {
        let err = layout()
            .load::<Demo>(
                TomlSource::Text {
                    origin: "run.toml",
                    text: "steps = 2",
                },
                &["steps=many".into()],
            )
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--set steps=many"), "{err}");
        let err = layout()
            .load::<Demo>(
                TomlSource::Text {
                    origin: "run.toml",
                    text: "steps = \"x\"",
                },
                &[],
            )
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("run.toml"), "{err}");
        let err = layout()
            .load::<Demo>(TomlSource::Defaults, &["data.rot=x".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean `data.root`"), "{err}");
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
