//! Caption files in the IDEA/NEXT format: a JSON array of `{"item": file name, "description": caption}`,
//! one file per split and modality (`train_RGB.json`, `test_NI.json`, ...).

use crate::error::{json_error, CaptionError};
use next_common::Modality;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One caption of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptionEntry {
    /// Image file name.
    pub item: String,
    /// Caption text.
    pub description: String,
}

/// The file name of a split's captions for one modality (`train_RGB.json`).
pub fn caption_file_name(split: &str, modality: Modality) -> String {
    format!("{split}_{}.json", modality.caption_tag())
}

/// The caption file path of a split and modality under `dir`.
pub fn caption_file_path(dir: &Path, split: &str, modality: Modality) -> PathBuf {
    dir.join(caption_file_name(split, modality))
}

/// Read a caption file.
pub fn read_caption_file(path: &Path) -> Result<Vec<CaptionEntry>, CaptionError> {
    let bytes = next_common::read_file(path)?;
    parse_caption_file(&bytes, path)
}

/// Parse the bytes of a caption file (a leading UTF-8 byte-order mark is allowed); `path` names
/// the source in errors.
pub fn parse_caption_file(bytes: &[u8], path: &Path) -> Result<Vec<CaptionEntry>, CaptionError> {
    serde_json::from_slice(next_common::strip_utf8_bom(bytes)).map_err(|e| {
        json_error(
            path,
            "a JSON array of {\"item\", \"description\"} objects",
            e,
        )
    })
}

/// Write a caption file atomically (pretty-printed JSON, as the NEXT authors ship them).
pub fn write_caption_file(path: &Path, entries: &[CaptionEntry]) -> Result<(), CaptionError> {
    let text = serde_json::to_string_pretty(entries)
        .map_err(|e| json_error(path, "serialisable captions", e))?;
    next_common::write_atomic(path, text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = caption_file_path(dir.path(), "train", Modality::Nir);
        assert!(path.ends_with("train_NI.json"));
        let entries = vec![CaptionEntry {
            item: "a.jpg".into(),
            description: "A car.".into(),
        }];
        write_caption_file(&path, &entries).unwrap();
        assert_eq!(read_caption_file(&path).unwrap(), entries);
        std::fs::write(&path, "{\"item\": 1}").unwrap();
        let err = read_caption_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("train_NI.json") && err.contains("expected a JSON array"),
            "{err}"
        );
        // A UTF-8 byte-order mark (Windows editors) is accepted.
        let mut bom = next_common::fsio::UTF8_BOM.to_vec();
        bom.extend_from_slice(br#"[{"item": "a.jpg", "description": "A car."}]"#);
        std::fs::write(&path, bom).unwrap();
        assert_eq!(read_caption_file(&path).unwrap(), entries);
    }
}
