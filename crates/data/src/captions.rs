//! Caption files of the IDEA/NEXT format: a JSON list of `{"item": name, "description": text}`.

use crate::error::{DataError, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct CaptionEntry {
    item: String,
    description: Option<String>,
}

/// The captions of one split and modality, keyed by image name.
#[derive(Debug, Clone, Default)]
pub struct CaptionTable {
    /// The file the table was read from.
    pub path: PathBuf,
    /// Image key to caption text.
    pub entries: HashMap<String, String>,
}

impl CaptionTable {
    /// Read and parse one caption file; errors name the file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = next_common::read_file(path)?;
        Self::parse(&bytes, path)
    }

    /// Parse the bytes of a caption file (a leading UTF-8 byte-order mark is allowed); `path`
    /// names the source in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        let list: Vec<CaptionEntry> = serde_json::from_slice(next_common::strip_utf8_bom(bytes))
            .map_err(|e| DataError::BadCaptionFile {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let mut entries = HashMap::with_capacity(list.len());
        for entry in list {
            if entries.contains_key(&entry.item) {
                return Err(DataError::BadCaptionFile {
                    path: path.to_path_buf(),
                    reason: format!("item `{}` appears twice", entry.item),
                });
            }
            entries.insert(entry.item, entry.description.unwrap_or_default());
        }
        Ok(Self {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The caption file name for a split prefix (`train`/`test`) and modality tag (`RGB`/`NI`/`TI`).
    pub fn file_name(prefix: &str, tag: &str) -> String {
        format!("{prefix}_{tag}.json")
    }
}

/// Serialise captions as a NEXT-format JSON list (used by the synthetic generator).
pub fn captions_to_json(entries: &[(String, String)]) -> String {
    let list: Vec<serde_json::Value> = entries
        .iter()
        .map(|(item, text)| serde_json::json!({ "item": item, "description": text }))
        .collect();
    serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("train_RGB.json");
        let json = captions_to_json(&[
            ("a.jpg".into(), "A person.".into()),
            ("b.jpg".into(), String::new()),
        ]);
        std::fs::write(&good, json).unwrap();
        let table = CaptionTable::read(&good).unwrap();
        assert_eq!(table.entries["a.jpg"], "A person.");
        assert_eq!(table.entries["b.jpg"], "");

        let bad = dir.path().join("test_NI.json");
        std::fs::write(&bad, "{\"item\": 3}").unwrap();
        let err = CaptionTable::read(&bad).unwrap_err().to_string();
        assert!(
            err.contains("test_NI.json") && err.contains("JSON list"),
            "{err}"
        );

        let dup = dir.path().join("test_TI.json");
        std::fs::write(
            &dup,
            r#"[{"item":"a","description":"x"},{"item":"a","description":"y"}]"#,
        )
        .unwrap();
        let err = CaptionTable::read(&dup).unwrap_err().to_string();
        assert!(
            err.contains("test_TI.json") && err.contains("twice"),
            "{err}"
        );

        let err = CaptionTable::read(&dir.path().join("nope.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.json"), "{err}");
    }
}
