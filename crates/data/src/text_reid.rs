//! Reader of the text-ReID benchmarks CUHK-PEDES, ICFG-PEDES and RSTPReid: person photos under
//! `<root>/imgs/` and one JSON annotation file in the root (`reid_raw.json`, `ICFG-PEDES.json`,
//! `data_captions.json` respectively, as IRRA's dataset classes read them).
//!
//! The file is a list of entries `{"id": int, "file_path" | "img_path": str, "captions": [str],
//! "split": "train" | "test" | "val", ...}` (RSTPReid says `img_path`, the others `file_path`;
//! other keys such as `processed_tokens` are ignored). Image paths are relative to `imgs/` (or,
//! failing that, to the root). As in the references' protocol, the queries are the captions of
//! the test split, each on its own (text only, no spectrum), and the gallery is its photos (RGB
//! only); training has one sample per (photo, caption) pair. The caption sits in the RGB slot of
//! [`TripletRecord::captions`]. With `data.eval_split = "val"` the `val` entries take the place
//! of the test entries; the held-out split not evaluated is counted and not loaded (as
//! `report.unused_annotations`). Names carry no camera:
//! queries get camera 0, gallery photos camera 1, training samples camera 0.

use crate::config::{DatasetConfig, EvalSplit};
use crate::dataset::{LoadReport, ReadSplits, TripletRecord};
use crate::error::{DataError, Result};
use crate::scan::{require_dir, TripletImages};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Annotation file names of the three benchmarks, looked for in this order.
pub const ANNOTATION_FILES: [&str; 3] = ["reid_raw.json", "ICFG-PEDES.json", "data_captions.json"];

/// One checked annotation entry.
struct Entry {
    pid: i64,
    file: String,
    captions: Vec<String>,
    /// Held out for evaluation (`data.eval_split`), else training.
    test: bool,
}

/// The annotation file: `data.annotations`, else the first of [`ANNOTATION_FILES`] in the root.
fn annotation_path(cfg: &DatasetConfig) -> Result<PathBuf> {
    if let Some(path) = &cfg.annotations {
        return Ok(path.clone());
    }
    ANNOTATION_FILES
        .iter()
        .map(|name| cfg.root.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::Config {
            path: cfg.root.clone(),
            reason: format!(
                "expected a text-ReID annotation file {} in the root, or data.annotations naming it",
                ANNOTATION_FILES.join(", ")
            ),
        })
}

/// Check one entry (`None`: the held-out split that is not `eval`, not loaded).
fn parse_entry(
    index: usize,
    value: &Value,
    eval: EvalSplit,
) -> std::result::Result<Option<Entry>, String> {
    let field = |key: &str| value.get(key);
    let pid = field("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("entry {index}: expected an integer `id`"))?;
    let file = field("file_path")
        .or_else(|| field("img_path"))
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            format!("entry {index}: expected an image path `file_path` or `img_path`")
        })?;
    let captions: Vec<String> = field("captions")
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .map(|c| c.as_str().map(str::to_string))
                .collect::<Option<_>>()
        })
        .filter(|list: &Vec<String>| !list.is_empty())
        .ok_or_else(|| {
            format!("entry {index} ({file}): expected `captions`, a non-empty list of strings")
        })?;
    let test = match field("split").and_then(Value::as_str) {
        Some("train") => false,
        Some(split @ ("test" | "val")) if split == eval.name() => true,
        Some("test" | "val") => return Ok(None),
        other => {
            return Err(format!(
                "entry {index} ({file}): expected `split` \"train\", \"test\" or \"val\", found {}",
                other.map_or("nothing".to_string(), |s| format!("{s:?}"))
            ))
        }
    };
    Ok(Some(Entry {
        pid,
        file: file.to_string(),
        captions,
        test,
    }))
}

/// The image of an annotation path: under `imgs/`, or under the root when only that exists.
fn image_path(root: &Path, images: &Path, file: &str) -> PathBuf {
    let under_images = images.join(file);
    let under_root = root.join(file);
    if !under_images.is_file() && under_root.is_file() {
        under_root
    } else {
        under_images
    }
}

/// A record with the given spectra path (RGB) and caption (RGB slot).
fn record(
    key: String,
    photo: Option<PathBuf>,
    caption: String,
    pid: i64,
    camid: i64,
) -> TripletRecord {
    TripletRecord {
        key,
        images: TripletImages::Partial([photo, None, None]),
        pid,
        label: pid,
        camid,
        sceneid: -1,
        captions: [caption, String::new(), String::new()],
        sketch: None,
    }
}

/// Read a text-ReID benchmark.
pub(crate) fn read_text_reid(cfg: &DatasetConfig, report: &mut LoadReport) -> Result<ReadSplits> {
    let images = cfg.root.join("imgs");
    require_dir(&images, cfg.kind.name(), "the person photos imgs/")?;
    let path = annotation_path(cfg)?;
    let bytes = next_common::read_file(&path)?;
    let bad = |reason: String| DataError::BadAnnotation {
        path: path.clone(),
        reason,
    };
    let list: Vec<Value> = serde_json::from_slice(next_common::strip_utf8_bom(&bytes))
        .map_err(|e| bad(format!("expected a JSON list of annotation objects ({e})")))?;
    let (mut train, mut query, mut gallery) = (Vec::new(), Vec::new(), Vec::new());
    let mut seen: [HashSet<String>; 2] = Default::default();
    for (index, value) in list.iter().enumerate() {
        let Some(entry) = parse_entry(index, value, cfg.eval_split).map_err(bad)? else {
            report.unused_annotations += 1;
            continue;
        };
        if !seen[entry.test as usize].insert(entry.file.clone()) {
            return Err(bad(format!(
                "entry {index}: image {} appears twice in one split",
                entry.file
            )));
        }
        let photo = image_path(&cfg.root, &images, &entry.file);
        for (k, caption) in entry.captions.into_iter().enumerate() {
            let key = format!("{}#{k}", entry.file);
            if entry.test {
                query.push(record(key, None, caption, entry.pid, 0));
            } else {
                train.push(record(key, Some(photo.clone()), caption, entry.pid, 0));
            }
        }
        if entry.test {
            gallery.push(record(entry.file, Some(photo), String::new(), entry.pid, 1));
        }
    }
    if train.is_empty() {
        return Err(bad("no entry with split \"train\"".into()));
    }
    if gallery.is_empty() {
        let split = cfg.eval_split.name();
        return Err(bad(format!(
            "no entry with split \"{split}\", the split data.eval_split = \"{split}\" evaluates"
        )));
    }
    Ok(ReadSplits {
        splits: [train, query, gallery],
        has_camera_ids: false,
    })
}
