//! On-disk answer cache keyed by (model, prompt version, image hash); entries are written atomically
//! so an interrupted run resumes without asking a model twice.

use crate::error::{json_error, CaptionError};
use crate::schema::AttributeSet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One cached model answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// Model name as sent to the endpoint.
    pub model: String,
    /// Prompt version id.
    pub prompt: String,
    /// SHA-256 of the image bytes (hex).
    pub image_sha256: String,
    /// The model's raw answer.
    pub answer: String,
    /// The validated attributes read from the answer.
    pub attributes: AttributeSet,
}

/// A folder of cached answers: `<dir>/<model>/<prompt>/<image sha256>.json`.
#[derive(Debug, Clone)]
pub struct AnswerCache {
    dir: PathBuf,
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A file-name-safe form of a model or prompt name (`Qwen/Qwen2-VL-7B` -> `Qwen_Qwen2-VL-7B`).
fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl AnswerCache {
    /// A cache rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache root.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of one key.
    pub fn path(&self, model: &str, prompt: &str, image_sha256: &str) -> PathBuf {
        self.dir
            .join(safe_name(model))
            .join(safe_name(prompt))
            .join(format!("{image_sha256}.json"))
    }

    /// The cached entry for a key, if any. A corrupt entry is an error that names the file.
    pub fn get(
        &self,
        model: &str,
        prompt: &str,
        image_sha256: &str,
    ) -> Result<Option<CacheEntry>, CaptionError> {
        let path = self.path(model, prompt, image_sha256);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = next_common::read_file(&path)?;
        let entry: CacheEntry = serde_json::from_slice(&bytes)
            .map_err(|e| json_error(&path, "a cached model answer", e))?;
        Ok(Some(entry))
    }

    /// Store an entry atomically.
    pub fn put(&self, entry: &CacheEntry) -> Result<(), CaptionError> {
        let path = self.path(&entry.model, &entry.prompt, &entry.image_sha256);
        let text = serde_json::to_vec_pretty(entry)
            .map_err(|e| json_error(&path, "a serialisable entry", e))?;
        next_common::write_atomic(&path, &text)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_then_get_and_corrupt_entry_names_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = AnswerCache::new(dir.path());
        let hash = sha256_hex(b"image");
        assert_eq!(hash.len(), 64);
        assert!(cache.get("org/model:1", "p.v1", &hash).unwrap().is_none());
        let entry = CacheEntry {
            model: "org/model:1".into(),
            prompt: "p.v1".into(),
            image_sha256: hash.clone(),
            answer: "{}".into(),
            attributes: AttributeSet::new(),
        };
        cache.put(&entry).unwrap();
        assert_eq!(
            cache.get("org/model:1", "p.v1", &hash).unwrap(),
            Some(entry)
        );
        assert!(cache.get("org/model:1", "p.v2", &hash).unwrap().is_none());
        let path = cache.path("org/model:1", "p.v1", &hash);
        std::fs::write(&path, "garbage").unwrap();
        let err = cache
            .get("org/model:1", "p.v1", &hash)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&hash) && err.contains("cached model answer"),
            "{err}"
        );
    }
}
