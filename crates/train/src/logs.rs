//! JSON-lines training logs: one JSON object per line, appended and flushed as it happens.

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An append-only JSON-lines file.
pub struct JsonLines {
    file: File,
    path: PathBuf,
}

impl JsonLines {
    /// Open (create or append to) a JSON-lines file.
    pub fn open(path: &Path) -> Result<Self, next_common::FileError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| next_common::FileError::new("creating folder for", path, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| next_common::FileError::new("opening log", path, e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Append one record as a line.
    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<(), next_common::FileError> {
        let mut line = serde_json::to_string(record).unwrap_or_else(|_| "{}".into());
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|e| next_common::FileError::new("writing log", &self.path, e))
    }
}

/// Read every line of a JSON-lines file as a JSON value; unparsable lines (e.g. a line cut by a
/// kill) are skipped.
pub fn read_json_lines(path: &Path) -> Result<Vec<serde_json::Value>, next_common::FileError> {
    let bytes = next_common::read_file(path)?;
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Rewrite a JSON-lines log keeping only the records whose `key` is at most `limit` (used on
/// resume so that steps after the checkpoint, logged by the killed run, are not duplicated).
pub fn truncate_after(path: &Path, key: &str, limit: u64) -> Result<(), next_common::FileError> {
    if !path.exists() {
        return Ok(());
    }
    let kept: Vec<String> = read_json_lines(path)?
        .into_iter()
        .filter(|v| {
            v.get(key)
                .and_then(|x| x.as_u64())
                .is_none_or(|x| x <= limit)
        })
        .map(|v| v.to_string() + "\n")
        .collect();
    next_common::write_atomic(path, kept.concat().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_append_parse_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let mut log = JsonLines::open(&path).unwrap();
        for step in 1..=5u64 {
            log.write(&serde_json::json!({"step": step, "loss": 1.0 / step as f64}))
                .unwrap();
        }
        drop(log);
        assert_eq!(read_json_lines(&path).unwrap().len(), 5);
        truncate_after(&path, "step", 3).unwrap();
        let rows = read_json_lines(&path).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2]["step"], 3);
    }
}
