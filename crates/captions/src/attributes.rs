//! Stage 1: ask every model for the attributes of every image, with bounded concurrency, the answer
//! cache, and a report of every request that failed for good.

use crate::cache::{sha256_hex, AnswerCache, CacheEntry};
use crate::client::{ChatClient, InlineImage};
use crate::error::CaptionError;
use crate::extract::parse_attribute_answer;
use crate::prompt::PromptTemplate;
use crate::schema::{AttributeSet, ObjectKind};
use next_common::{Modality, Progress};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// One image of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageJob {
    /// Split name (`train`, `test`).
    pub split: String,
    /// Image modality.
    pub modality: Modality,
    /// File name, the caption file's `item`.
    pub item: String,
    /// Full path of the image.
    pub path: PathBuf,
}

/// Image extensions the scanner picks up.
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "webp"];

/// Split name of a folder: `train_171` -> `train`, `test` -> `test` (a trailing `_<digits>` is dropped).
pub fn split_name(folder: &str) -> String {
    match folder.rsplit_once('_') {
        Some((head, tail))
            if !head.is_empty() && !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) =>
        {
            head.to_string()
        }
        _ => folder.to_string(),
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, CaptionError> {
    let read =
        std::fs::read_dir(dir).map_err(|e| next_common::FileError::new("listing", dir, e))?;
    let mut paths = Vec::new();
    for entry in read {
        paths.push(
            entry
                .map_err(|e| next_common::FileError::new("listing", dir, e))?
                .path(),
        );
    }
    paths.sort();
    Ok(paths)
}

/// List the images of a dataset laid out as `<root>/<split>/<RGB|NI|TI>/<image>` (modality folder names
/// in any case, also `nir`, `tir`), sorted by split, modality and file name.
pub fn scan_dataset(root: &Path) -> Result<Vec<ImageJob>, CaptionError> {
    let mut jobs = Vec::new();
    for split_dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
        let split = split_name(&split_dir.file_name().unwrap_or_default().to_string_lossy());
        for modality_dir in sorted_entries(&split_dir)?
            .into_iter()
            .filter(|p| p.is_dir())
        {
            let name = modality_dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let Some(modality) = Modality::parse(&name) else {
                continue;
            };
            for image in sorted_entries(&modality_dir)? {
                let ext = image
                    .extension()
                    .map(|e| e.to_string_lossy().to_ascii_lowercase())
                    .unwrap_or_default();
                if image.is_file() && IMAGE_EXTENSIONS.contains(&ext.as_str()) {
                    let item = image
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned();
                    jobs.push(ImageJob {
                        split: split.clone(),
                        modality,
                        item,
                        path: image,
                    });
                }
            }
        }
    }
    if jobs.is_empty() {
        return Err(CaptionError::Dataset {
            path: root.to_path_buf(),
            message:
                "expected <split>/<RGB|NI|TI>/<images> folders with .jpg/.png images, found none"
                    .into(),
        });
    }
    jobs.sort();
    Ok(jobs)
}

/// A request that failed for good, kept in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedRequest {
    /// Split of the image.
    pub split: String,
    /// Modality of the image.
    pub modality: Modality,
    /// Image file name.
    pub item: String,
    /// Full image path.
    pub path: PathBuf,
    /// Model asked.
    pub model: String,
    /// Last error.
    pub error: String,
}

/// Settings of the attribute stage.
#[derive(Debug, Clone)]
pub struct AttributeRunConfig {
    /// Models asked for every image, in tie-break order.
    pub models: Vec<String>,
    /// Persons or vehicles.
    pub kind: ObjectKind,
    /// Instruction template (its id keys the cache).
    pub prompt: PromptTemplate,
    /// Requests in flight at most.
    pub concurrency: usize,
}

/// Attribute sets per (split, modality, item) and per model.
pub type ModelAttributes = BTreeMap<(String, Modality, String), BTreeMap<String, AttributeSet>>;

/// What the attribute stage produced.
#[derive(Debug, Default)]
pub struct AttributeRun {
    /// Attribute sets of every answered (image, model) pair; every image has an entry, possibly empty.
    pub sets: ModelAttributes,
    /// Requests that failed for good.
    pub failures: Vec<FailedRequest>,
    /// Requests answered by a model in this run.
    pub asked: usize,
    /// Answers taken from the cache.
    pub cached: usize,
}

enum Outcome {
    Answered(AttributeSet),
    Cached(AttributeSet),
    Failed(String),
}

/// Ask every model about every image; cached answers are reused, new ones cached as they arrive.
pub fn run_attributes(
    client: &ChatClient,
    cache: &AnswerCache,
    jobs: &[ImageJob],
    config: &AttributeRunConfig,
    progress: &mut Progress,
) -> AttributeRun {
    let tasks: Vec<(usize, &str)> = (0..jobs.len())
        .flat_map(|j| config.models.iter().map(move |m| (j, m.as_str())))
        .collect();
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<(usize, String, Outcome)>> =
        Mutex::new(Vec::with_capacity(tasks.len()));
    let progress = Mutex::new(progress);
    let workers = config.concurrency.clamp(1, tasks.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(job, model)) = tasks.get(i) else {
                    break;
                };
                let outcome = ask_one(client, cache, &jobs[job], model, config);
                if let Ok(mut list) = outcomes.lock() {
                    list.push((job, model.to_string(), outcome));
                }
                if let Ok(mut p) = progress.lock() {
                    p.inc(1);
                }
            });
        }
    });
    let mut run = AttributeRun::default();
    for job in jobs {
        run.sets
            .entry((job.split.clone(), job.modality, job.item.clone()))
            .or_default();
    }
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
    outcomes.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (j, model, outcome) in outcomes {
        let job = &jobs[j];
        let key = (job.split.clone(), job.modality, job.item.clone());
        match outcome {
            Outcome::Answered(set) => {
                run.asked += 1;
                run.sets.entry(key).or_default().insert(model, set);
            }
            Outcome::Cached(set) => {
                run.cached += 1;
                run.sets.entry(key).or_default().insert(model, set);
            }
            Outcome::Failed(error) => run.failures.push(FailedRequest {
                split: job.split.clone(),
                modality: job.modality,
                item: job.item.clone(),
                path: job.path.clone(),
                model,
                error,
            }),
        }
    }
    run
}

fn ask_one(
    client: &ChatClient,
    cache: &AnswerCache,
    job: &ImageJob,
    model: &str,
    config: &AttributeRunConfig,
) -> Outcome {
    let bytes = match next_common::read_file(&job.path) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let hash = sha256_hex(&bytes);
    match cache.get(model, &config.prompt.id, &hash) {
        Ok(Some(entry)) => return Outcome::Cached(entry.attributes),
        Ok(None) => {}
        Err(e) => return Outcome::Failed(e.to_string()),
    }
    let prompt = config.prompt.render_for(job.modality);
    let image = InlineImage::from_file_bytes(&job.item, &bytes);
    let kind = config.kind;
    match client.complete_validated(model, &prompt, Some(image), |a| {
        parse_attribute_answer(a, kind)
    }) {
        Ok((answer, attributes)) => {
            let entry = CacheEntry {
                model: model.to_string(),
                prompt: config.prompt.id.clone(),
                image_sha256: hash,
                answer,
                attributes,
            };
            match cache.put(&entry) {
                Ok(()) => Outcome::Answered(entry.attributes),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_drop_numeric_suffixes() {
        assert_eq!(split_name("train_171"), "train");
        assert_eq!(split_name("test"), "test");
        assert_eq!(split_name("bounding_box_train"), "bounding_box_train");
    }

    #[test]
    fn scan_finds_images_per_split_and_modality() {
        let dir = tempfile::tempdir().unwrap();
        for (sub, name) in [
            ("train_171/RGB", "b.jpg"),
            ("train_171/NI", "b.jpg"),
            ("test/tir", "a.png"),
            ("test/notes", "x.jpg"),
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
            std::fs::write(dir.path().join(sub).join(name), b"x").unwrap();
        }
        std::fs::write(dir.path().join("train_171/RGB/readme.txt"), b"x").unwrap();
        let jobs = scan_dataset(dir.path()).unwrap();
        let seen: Vec<_> = jobs
            .iter()
            .map(|j| (j.split.as_str(), j.modality, j.item.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("test", Modality::Tir, "a.png"),
                ("train", Modality::Rgb, "b.jpg"),
                ("train", Modality::Nir, "b.jpg")
            ]
        );
        let empty = tempfile::tempdir().unwrap();
        let err = scan_dataset(empty.path()).unwrap_err().to_string();
        assert!(err.contains("expected <split>"), "{err}");
    }
}
