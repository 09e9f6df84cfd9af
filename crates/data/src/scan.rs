//! Folder scanning: listing image files and pairing the three modalities by file name.

use crate::config::{BadSamplePolicy, DatasetKind};
use crate::error::{DataError, Result};
use crate::names::{parse_name, ParsedName};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Where the three modality images of one sample are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TripletImages {
    /// One file per modality, in RGB, NIR, TIR order.
    Separate([PathBuf; 3]),
    /// One strip holding RGB, NIR and TIR side by side (RGBNT100, 768x128 cut into thirds).
    Strip(PathBuf),
    /// Only some of the spectra, in RGB, NIR, TIR order (`None`: absent): the RGB-only photos
    /// of the sketch and text datasets, or no spectrum at all for a sketch or text query.
    Partial([Option<PathBuf>; 3]),
}

impl TripletImages {
    /// The file shown in messages about this sample (the RGB image, the strip, or the first
    /// present spectrum; an empty path for a sample without any spectrum).
    pub fn primary(&self) -> &Path {
        match self {
            TripletImages::Separate(paths) => &paths[0],
            TripletImages::Strip(path) => path,
            TripletImages::Partial(paths) => {
                paths.iter().flatten().next().map_or(Path::new(""), |p| p)
            }
        }
    }

    /// Which of RGB, NIR, TIR the sample has.
    pub fn present(&self) -> [bool; 3] {
        match self {
            TripletImages::Separate(_) | TripletImages::Strip(_) => [true; 3],
            TripletImages::Partial(paths) => paths.each_ref().map(Option::is_some),
        }
    }

    /// The image file of the RGB photo, if it is a file of its own (not a strip crop).
    pub fn rgb_file(&self) -> Option<&Path> {
        match self {
            TripletImages::Separate(paths) => Some(&paths[0]),
            TripletImages::Strip(_) => None,
            TripletImages::Partial(paths) => paths[0].as_deref(),
        }
    }
}

/// Counters of what the scan skipped or ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanCounts {
    /// Samples skipped because a modality partner was missing (policy `skip`).
    pub missing_partner: usize,
    /// Samples skipped because the name broke the rule (policy `skip`).
    pub bad_name: usize,
    /// Distractor images skipped by rule (Market pid -1).
    pub distractors: usize,
    /// Non-image or hidden files ignored.
    pub ignored_files: usize,
}

/// One sample found on disk, before relabelling and captions.
#[derive(Debug, Clone)]
pub struct ScannedSample {
    /// Caption key (the file name; `<vid>_<file>` for WMVEID863).
    pub key: String,
    /// The images.
    pub images: TripletImages,
    /// Ids read from the name.
    pub ids: ParsedName,
}

const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "bmp", "tif"];

fn is_image_name(name: &str) -> bool {
    if name.starts_with('.') {
        return false;
    }
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    name.contains('.') && IMAGE_EXTENSIONS.contains(&ext.as_str())
}

/// A directory entry's name as text; a name that is not UTF-8 is an error naming the folder.
fn utf8_name(dir: &Path, name: std::ffi::OsString) -> Result<String> {
    name.into_string().map_err(|raw| DataError::NonUtf8Name {
        folder: dir.to_path_buf(),
        lossy: raw.to_string_lossy().into_owned(),
    })
}

/// Image files of a folder, sorted by name; non-image and hidden files are counted, not listed.
pub fn list_images(dir: &Path, counts: &mut ScanCounts) -> Result<BTreeMap<String, PathBuf>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| next_common::FileError::new("listing", dir, e))?;
    let mut out = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| next_common::FileError::new("listing", dir, e))?;
        let name = utf8_name(dir, entry.file_name())?;
        let path = entry.path();
        if path.is_file() && is_image_name(&name) {
            out.insert(name, path);
        } else if !path.is_dir() {
            counts.ignored_files += 1;
        }
    }
    Ok(out)
}

/// Sub-folders of a folder (id folders of per-id layouts), sorted by name.
pub fn list_subfolders(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| next_common::FileError::new("listing", dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| next_common::FileError::new("listing", dir, e))?;
        let name = utf8_name(dir, entry.file_name())?;
        if entry.path().is_dir() && !name.starts_with('.') {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Error if `path` is not a folder.
pub fn require_dir(path: &Path, layout: &'static str, expected: &'static str) -> Result<()> {
    if path.is_dir() {
        Ok(())
    } else {
        Err(DataError::MissingFolder {
            path: path.to_path_buf(),
            layout,
            expected,
        })
    }
}

/// Rules applied while scanning.
#[derive(Debug, Clone, Copy)]
pub struct ScanRules {
    /// Dataset layout (selects the name rule).
    pub kind: DatasetKind,
    /// Missing partner: error or skip.
    pub missing_partner: BadSamplePolicy,
    /// Unparseable name: error or skip.
    pub bad_name: BadSamplePolicy,
}

pub(crate) fn parse_or_policy(
    rules: &ScanRules,
    name: &str,
    path: &Path,
    folder_id: Option<&str>,
    counts: &mut ScanCounts,
) -> Result<Option<ParsedName>> {
    match parse_name(rules.kind, name, folder_id) {
        Ok(Some(ids)) => Ok(Some(ids)),
        Ok(None) => {
            counts.distractors += 1;
            Ok(None)
        }
        Err(rule) => match rules.bad_name {
            BadSamplePolicy::Error => Err(DataError::BadName {
                path: path.to_path_buf(),
                rule,
            }),
            BadSamplePolicy::Skip => {
                counts.bad_name += 1;
                Ok(None)
            }
        },
    }
}

/// Pair the images of three sibling modality folders (`dirs` in RGB, NIR, TIR order) by file
/// name. `folder_id` is the id folder for per-id layouts; `key_prefix` is prepended to caption keys.
pub fn scan_modality_folders(
    dirs: [&Path; 3],
    rules: &ScanRules,
    folder_id: Option<&str>,
    key_prefix: &str,
    counts: &mut ScanCounts,
) -> Result<Vec<ScannedSample>> {
    let listed = [
        list_images(dirs[0], counts)?,
        list_images(dirs[1], counts)?,
        list_images(dirs[2], counts)?,
    ];
    let mut names: BTreeMap<&str, &Path> = BTreeMap::new();
    for list in &listed {
        for (name, path) in list {
            names.entry(name.as_str()).or_insert(path.as_path());
        }
    }
    let mut out = Vec::with_capacity(listed[0].len());
    for (name, present) in names {
        let missing = (0..3).find(|&m| !listed[m].contains_key(name));
        if let Some(m) = missing {
            match rules.missing_partner {
                BadSamplePolicy::Error => {
                    return Err(DataError::MissingPartner {
                        missing: dirs[m].join(name),
                        present: present.to_path_buf(),
                    })
                }
                BadSamplePolicy::Skip => {
                    counts.missing_partner += 1;
                    continue;
                }
            }
        }
        let Some(ids) = parse_or_policy(rules, name, present, folder_id, counts)? else {
            continue;
        };
        let paths = [dirs[0].join(name), dirs[1].join(name), dirs[2].join(name)];
        out.push(ScannedSample {
            key: format!("{key_prefix}{name}"),
            images: TripletImages::Separate(paths),
            ids,
        });
    }
    Ok(out)
}

/// Scan a folder of three-modality strips (RGBNT100).
pub fn scan_strips(
    dir: &Path,
    rules: &ScanRules,
    counts: &mut ScanCounts,
) -> Result<Vec<ScannedSample>> {
    let mut out = Vec::new();
    for (name, path) in list_images(dir, counts)? {
        let Some(ids) = parse_or_policy(rules, &name, &path, None, counts)? else {
            continue;
        };
        out.push(ScannedSample {
            key: name,
            images: TripletImages::Strip(path),
            ids,
        });
    }
    Ok(out)
}

/// Scan a per-id layout: `split/<id>/{m0,m1,m2}/*`; `prefix_keys` makes caption keys `<id>_<file>`.
pub fn scan_id_folders(
    split_dir: &Path,
    modality_folders: [&str; 3],
    rules: &ScanRules,
    prefix_keys: bool,
    counts: &mut ScanCounts,
) -> Result<Vec<ScannedSample>> {
    let mut out = Vec::new();
    for (id, id_dir) in list_subfolders(split_dir)? {
        let dirs = modality_folders.map(|m| id_dir.join(m));
        for d in &dirs {
            require_dir(
                d,
                rules.kind.name(),
                "one folder per modality (vis, ni, th) in every id folder",
            )?;
        }
        let prefix = if prefix_keys {
            format!("{id}_")
        } else {
            String::new()
        };
        out.extend(scan_modality_folders(
            [&dirs[0], &dirs[1], &dirs[2]],
            rules,
            Some(&id),
            &prefix,
            counts,
        )?);
    }
    Ok(out)
}

/// Error on two samples of one split with the same key.
pub fn check_unique_keys(samples: &[ScannedSample]) -> Result<()> {
    let mut seen: HashMap<&str, &Path> = HashMap::with_capacity(samples.len());
    for s in samples {
        if let Some(first) = seen.insert(&s.key, s.images.primary()) {
            return Err(DataError::DuplicateName {
                first: first.to_path_buf(),
                second: s.images.primary().to_path_buf(),
                key: s.key.clone(),
            });
        }
    }
    Ok(())
}
