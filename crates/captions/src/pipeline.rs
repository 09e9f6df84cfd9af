//! The pipeline's stage files under a work folder and the merge, complement and compose stages.
//!
//! Layout: `attributes/<split>_<TAG>.json` (item -> model -> attributes), `attributes/failures.json`,
//! `merged/` and `complemented/` (item -> attributes), `stats.json` + `stats.txt`, and
//! `captions/<split>_<TAG>.json` in the IDEA/NEXT caption format.

use crate::aggregate::{complement_modalities, merge_models, ComplementRules};
use crate::attributes::{FailedRequest, ModelAttributes};
use crate::cache::{sha256_hex, AnswerCache, CacheEntry};
use crate::captions_file::{caption_file_name, write_caption_file, CaptionEntry};
use crate::client::ChatClient;
use crate::error::{json_error, CaptionError, ExtractError};
use crate::person_caption::compose_person;
use crate::prompt::PromptTemplate;
use crate::schema::{AttributeSet, ObjectKind};
use crate::stats::UnknownReport;
use crate::vehicle_caption::compose_vehicle;
use next_common::Modality;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One attribute set per (split, modality, item).
pub type ImageAttributes = BTreeMap<(String, Modality, String), AttributeSet>;

/// Captions per (split, modality), in item order.
pub type CaptionFiles = BTreeMap<(String, Modality), Vec<CaptionEntry>>;

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CaptionError> {
    let text =
        serde_json::to_vec_pretty(value).map_err(|e| json_error(path, "serialisable data", e))?;
    next_common::write_atomic(path, &text)?;
    Ok(())
}

fn read_json<T: DeserializeOwned>(path: &Path, expected: &'static str) -> Result<T, CaptionError> {
    let bytes = next_common::read_file(path)?;
    serde_json::from_slice(next_common::strip_utf8_bom(&bytes))
        .map_err(|e| json_error(path, expected, e))
}

/// Write per-(split, modality) files `<split>_<TAG>.json` mapping item -> value.
fn write_split_files<T: Serialize>(
    dir: &Path,
    data: &BTreeMap<(String, Modality, String), T>,
) -> Result<(), CaptionError> {
    let mut files: BTreeMap<(String, Modality), BTreeMap<&str, &T>> = BTreeMap::new();
    for ((split, modality, item), value) in data {
        files
            .entry((split.clone(), *modality))
            .or_default()
            .insert(item, value);
    }
    for ((split, modality), items) in files {
        write_json(&dir.join(caption_file_name(&split, modality)), &items)?;
    }
    Ok(())
}

/// Read every `<split>_<TAG>.json` file of `dir` back into one map.
fn read_split_files<T: DeserializeOwned>(
    dir: &Path,
    expected: &'static str,
) -> Result<BTreeMap<(String, Modality, String), T>, CaptionError> {
    let read =
        std::fs::read_dir(dir).map_err(|e| next_common::FileError::new("listing", dir, e))?;
    let mut out = BTreeMap::new();
    let mut paths: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let Some((split, tag)) = stem.rsplit_once('_') else {
            continue;
        };
        let Some(modality) = Modality::parse(tag) else {
            continue;
        };
        let items: BTreeMap<String, T> = read_json(&path, expected)?;
        for (item, value) in items {
            out.insert((split.to_string(), modality, item), value);
        }
    }
    if out.is_empty() {
        return Err(CaptionError::Dataset {
            path: dir.to_path_buf(),
            message: "expected <split>_<RGB|NI|TI>.json stage files, found none".into(),
        });
    }
    Ok(out)
}

/// Save the attribute stage's results and its failure report (always written, possibly empty).
pub fn save_attributes(
    work: &Path,
    sets: &ModelAttributes,
    failures: &[FailedRequest],
) -> Result<PathBuf, CaptionError> {
    let dir = work.join("attributes");
    write_split_files(&dir, sets)?;
    let report = dir.join("failures.json");
    write_json(&report, &failures)?;
    Ok(report)
}

/// Load the attribute stage's results.
pub fn load_attributes(work: &Path) -> Result<ModelAttributes, CaptionError> {
    read_split_files(
        &work.join("attributes"),
        "an object: item -> model -> attributes",
    )
}

/// Load merged or complemented attribute sets (`stage` is `merged` or `complemented`).
pub fn load_stage(work: &Path, stage: &str) -> Result<ImageAttributes, CaptionError> {
    read_split_files(&work.join(stage), "an object: item -> attributes")
}

/// Merge models per image, complement across modalities, and count unknowns at each step.
/// `model_order` breaks confidence ties (models not listed follow in name order).
pub fn merge_and_complement(
    kind: ObjectKind,
    sets: &ModelAttributes,
    model_order: &[String],
    rules: &ComplementRules,
) -> (ImageAttributes, ImageAttributes, UnknownReport) {
    let mut report = UnknownReport::default();
    let mut merged = ImageAttributes::new();
    for (key, per_model) in sets {
        let mut answers: Vec<(&str, &AttributeSet)> =
            per_model.iter().map(|(m, s)| (m.as_str(), s)).collect();
        answers.sort_by_key(|(m, _)| {
            model_order
                .iter()
                .position(|o| o == m)
                .unwrap_or(usize::MAX)
        });
        for (_, set) in &answers {
            report.before_merge.add(kind, key.1, set);
        }
        let set = merge_models(kind, &answers);
        report.after_merge.add(kind, key.1, &set);
        merged.insert(key.clone(), set);
    }
    let mut groups: BTreeMap<(String, String), BTreeMap<Modality, AttributeSet>> = BTreeMap::new();
    for ((split, modality, item), set) in &merged {
        groups
            .entry((split.clone(), item.clone()))
            .or_default()
            .insert(*modality, set.clone());
    }
    let mut complemented = ImageAttributes::new();
    for ((split, item), per_modality) in groups {
        for (modality, set) in complement_modalities(kind, &per_modality, rules) {
            report.after_complement.add(kind, modality, &set);
            complemented.insert((split.clone(), modality, item.clone()), set);
        }
    }
    (merged, complemented, report)
}

/// Save the merged and complemented sets and the unknown-rate report.
pub fn save_merge(
    work: &Path,
    kind: ObjectKind,
    merged: &ImageAttributes,
    complemented: &ImageAttributes,
    report: &UnknownReport,
) -> Result<(), CaptionError> {
    write_split_files(&work.join("merged"), merged)?;
    write_split_files(&work.join("complemented"), complemented)?;
    write_json(&work.join("stats.json"), report)?;
    next_common::write_atomic(work.join("stats.txt"), report.table(kind).as_bytes())?;
    Ok(())
}

/// The deterministic template caption of one attribute set.
pub fn compose_caption(kind: ObjectKind, set: &AttributeSet) -> String {
    match kind {
        ObjectKind::Person => compose_person(set),
        ObjectKind::Vehicle => compose_vehicle(set),
    }
}

/// Optional LLM composition: model, instruction and answer cache.
pub struct LlmComposer<'a> {
    /// Client of the endpoint.
    pub client: &'a ChatClient,
    /// Model asked to rewrite the template draft.
    pub model: &'a str,
    /// Instruction template (`caption_compose.v1`).
    pub prompt: PromptTemplate,
    /// Cache of composed captions, keyed by the rendered instruction's hash.
    pub cache: AnswerCache,
}

/// Compose every image's caption. With an LLM composer, a failed request keeps the template caption
/// and is listed in the returned failures.
pub fn compose_all(
    kind: ObjectKind,
    sets: &ImageAttributes,
    llm: Option<&LlmComposer<'_>>,
) -> (CaptionFiles, Vec<FailedRequest>) {
    let mut files = CaptionFiles::new();
    let mut failures = Vec::new();
    for ((split, modality, item), set) in sets {
        let draft = compose_caption(kind, set);
        let description = match llm {
            None => draft,
            Some(llm) => match compose_with_llm(kind, *modality, set, &draft, llm) {
                Ok(text) => text,
                Err(error) => {
                    failures.push(FailedRequest {
                        split: split.clone(),
                        modality: *modality,
                        item: item.clone(),
                        path: PathBuf::from(item),
                        model: llm.model.to_string(),
                        error,
                    });
                    draft
                }
            },
        };
        files
            .entry((split.clone(), *modality))
            .or_default()
            .push(CaptionEntry {
                item: item.clone(),
                description,
            });
    }
    (files, failures)
}

fn compose_with_llm(
    kind: ObjectKind,
    modality: Modality,
    set: &AttributeSet,
    draft: &str,
    llm: &LlmComposer<'_>,
) -> Result<String, String> {
    let attributes = serde_json::to_string(set).map_err(|e| e.to_string())?;
    let prompt = llm.prompt.render(&[
        ("kind", kind.name()),
        ("modality", modality.name()),
        ("attributes", &attributes),
        ("draft", draft),
    ]);
    let hash = sha256_hex(prompt.as_bytes());
    if let Ok(Some(entry)) = llm.cache.get(llm.model, &llm.prompt.id, &hash) {
        return Ok(entry.answer);
    }
    let accept = |answer: &str| {
        let text = answer.trim().trim_matches('"').trim();
        if text.is_empty() {
            Err(ExtractError::NoJson("empty caption".into()))
        } else {
            Ok(text.to_string())
        }
    };
    let (_, caption) = llm
        .client
        .complete_validated(llm.model, &prompt, None, accept)
        .map_err(|e| e.to_string())?;
    let entry = CacheEntry {
        model: llm.model.to_string(),
        prompt: llm.prompt.id.clone(),
        image_sha256: hash,
        answer: caption.clone(),
        attributes: set.clone(),
    };
    llm.cache.put(&entry).map_err(|e| e.to_string())?;
    Ok(caption)
}

/// Write the caption files `<split>_<TAG>.json` under `dir`.
pub fn save_captions(dir: &Path, files: &CaptionFiles) -> Result<(), CaptionError> {
    for ((split, modality), entries) in files {
        write_caption_file(&dir.join(caption_file_name(split, *modality)), entries)?;
    }
    Ok(())
}
