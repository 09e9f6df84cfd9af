//! Readers of the sketch-ReID datasets, whose samples are an RGB photo or a sketch.
//!
//! Market-Sketch-1K (Lin et al., ACM MM 2023; layout as read by its official code,
//! github.com/Lin-Kayla/subjectivity-sketch-reid `preprocess.py` and `data_manager.py`):
//!
//! ```text
//! <root>/photo/train/<Market name>.jpg      training photos (`0002_c1s1_000451_03.jpg`)
//! <root>/photo/query/<Market name>.jpg      test photos: the gallery
//! <root>/sketch/<style>/train/<PPPP...>.jpg training sketches (styles A..F), 4-digit pid prefix
//! <root>/sketch/<style>/query/<PPPP...>.jpg test sketches: the queries
//! ```
//!
//! PKU-Sketch (Pang et al., ACM MM 2018; its ReadMe: 200 persons, one sketch and two photos each,
//! no official split; the protocol draws 150 training and 50 test identities):
//!
//! ```text
//! <root>/sketch/<pid>.jpg                   one sketch per person (`1.jpg`)
//! <root>/photo/<pid>_<rest>.jpg             two photos per person (`1_05_356.jpg`)
//! ```
//!
//! Photos have the RGB spectrum only, sketches no spectrum. Market photos keep their cameras;
//! every sketch gets the camera one past the largest photo camera, so the same-camera filter of
//! the evaluation never removes a gallery photo for a sketch query. PKU-Sketch names carry no
//! camera: sketches get camera 0 and photos camera 1.

use crate::config::{BadSamplePolicy, DatasetConfig, DatasetKind, Split};
use crate::dataset::{LoadReport, ReadSplits, SketchImage, TripletRecord};
use crate::error::{DataError, Result};
use crate::names::parse_sketch_name;
use crate::scan::{
    list_images, list_subfolders, parse_or_policy, require_dir, ScanCounts, ScanRules,
    TripletImages,
};
use crate::transform::mix_seed;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A photo record: the RGB spectrum only.
fn photo_record(key: String, path: PathBuf, pid: i64, camid: i64) -> TripletRecord {
    TripletRecord {
        key,
        images: TripletImages::Partial([Some(path), None, None]),
        pid,
        label: pid,
        camid,
        sceneid: -1,
        captions: Default::default(),
        sketch: None,
    }
}

/// A sketch record: no spectrum, the sketch file.
fn sketch_record(key: String, path: PathBuf, pid: i64, camid: i64) -> TripletRecord {
    TripletRecord {
        key,
        images: TripletImages::Partial([None, None, None]),
        pid,
        label: pid,
        camid,
        sceneid: -1,
        captions: Default::default(),
        sketch: Some(SketchImage::File(path)),
    }
}

/// One image file found on disk with the ids of its name.
struct Found {
    name: String,
    path: PathBuf,
    pid: i64,
    camid: Option<i64>,
}

/// The photos of one folder; distractors (pid -1) are skipped and bad names follow
/// `data.bad_name`.
fn read_photos(dir: &Path, cfg: &DatasetConfig, counts: &mut ScanCounts) -> Result<Vec<Found>> {
    let rules = ScanRules {
        kind: cfg.kind,
        missing_partner: cfg.missing_partner,
        bad_name: cfg.bad_name,
    };
    let mut out = Vec::new();
    for (name, path) in list_images(dir, counts)? {
        if let Some(ids) = parse_or_policy(&rules, &name, &path, None, counts)? {
            out.push(Found {
                name,
                path,
                pid: ids.pid,
                camid: ids.camid,
            });
        }
    }
    Ok(out)
}

/// The sketches of one folder (no camera); bad names follow `data.bad_name`.
fn read_sketches(dir: &Path, cfg: &DatasetConfig, counts: &mut ScanCounts) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for (name, path) in list_images(dir, counts)? {
        match parse_sketch_name(cfg.kind, &name) {
            Ok(pid) => out.push(Found {
                name,
                path,
                pid,
                camid: None,
            }),
            Err(rule) if cfg.bad_name == BadSamplePolicy::Error => {
                return Err(DataError::BadName { path, rule })
            }
            Err(_) => counts.bad_name += 1,
        }
    }
    Ok(out)
}

/// Error on a split without records, naming the folder it was read from.
fn non_empty(records: Vec<TripletRecord>, folder: &Path) -> Result<Vec<TripletRecord>> {
    if records.is_empty() {
        return Err(DataError::EmptySplit {
            path: folder.to_path_buf(),
        });
    }
    Ok(records)
}

/// Read Market-Sketch-1K: the sketches of the styles `data.train_sketch_styles` (training) and
/// `data.sketch_styles` (queries), each by default every style found under `sketch/`.
pub(crate) fn read_market_sketch(
    cfg: &DatasetConfig,
    report: &mut LoadReport,
) -> Result<ReadSplits> {
    let layout = cfg.kind.name();
    let photo = cfg.root.join("photo");
    let (photo_train, photo_test) = (photo.join("train"), photo.join("query"));
    require_dir(&photo_train, layout, "the training photos photo/train")?;
    require_dir(
        &photo_test,
        layout,
        "the test photos photo/query (the gallery)",
    )?;
    let sketch_root = cfg.root.join("sketch");
    require_dir(
        &sketch_root,
        layout,
        "one folder per sketch style, sketch/<style>/{train,query}",
    )?;
    let styles = list_subfolders(&sketch_root)?;
    if styles.is_empty() {
        return Err(DataError::MissingFolder {
            path: sketch_root.join("A"),
            layout,
            expected: "at least one sketch style folder sketch/<style>/{train,query}",
        });
    }
    let [train_counts, query_counts, gallery_counts] = &mut report.scan;
    let train_photos = read_photos(&photo_train, cfg, train_counts)?;
    let gallery_photos = read_photos(&photo_test, cfg, gallery_counts)?;
    let camera = |path: &Path, cam: Option<i64>| {
        cam.ok_or_else(|| DataError::BadName {
            path: path.to_path_buf(),
            rule: crate::names::rule_text(DatasetKind::MarketSketch).to_string(),
        })
    };
    let mut max_cam = 0;
    let mut to_records = |photos: Vec<Found>| -> Result<Vec<TripletRecord>> {
        photos
            .into_iter()
            .map(
                |Found {
                     name,
                     path,
                     pid,
                     camid: cam,
                 }| {
                    let camid = camera(&path, cam)?;
                    max_cam = max_cam.max(camid);
                    Ok(photo_record(name, path, pid, camid))
                },
            )
            .collect()
    };
    let mut train = to_records(train_photos)?;
    let gallery = to_records(gallery_photos)?;
    let sketch_cam = max_cam + 1;
    let train_styles = chosen_styles(
        &styles,
        &cfg.train_sketch_styles,
        "train_sketch_styles",
        &sketch_root,
    )?;
    let query_styles = chosen_styles(&styles, &cfg.sketch_styles, "sketch_styles", &sketch_root)?;
    let mut query = Vec::new();
    for (style, dir) in &styles {
        let mut subs = Vec::new();
        if train_styles.contains(style) {
            subs.push(("train", &mut train, &mut *train_counts));
        }
        if query_styles.contains(style) {
            subs.push(("query", &mut query, &mut *query_counts));
        }
        for (sub, records, counts) in subs {
            let folder = dir.join(sub);
            require_dir(
                &folder,
                layout,
                "train and query folders in every sketch style folder",
            )?;
            for Found {
                name, path, pid, ..
            } in read_sketches(&folder, cfg, counts)?
            {
                records.push(sketch_record(
                    format!("{style}/{name}"),
                    path,
                    pid,
                    sketch_cam,
                ));
            }
        }
    }
    Ok(ReadSplits {
        splits: [
            non_empty(train, &photo_train)?,
            non_empty(query, &sketch_root)?,
            non_empty(gallery, &photo_test)?,
        ],
        has_camera_ids: true,
    })
}

/// The style folders named by `data.<key>` (all of `found` when the key is absent); a name
/// that is not a folder of `sketch/` is an error naming the key and the styles found.
fn chosen_styles(
    found: &[(String, PathBuf)],
    chosen: &Option<Vec<String>>,
    key: &str,
    sketch_root: &Path,
) -> Result<BTreeSet<String>> {
    let names: BTreeSet<String> = found.iter().map(|(name, _)| name.clone()).collect();
    let Some(chosen) = chosen else {
        return Ok(names);
    };
    let mut out = BTreeSet::new();
    for style in chosen {
        let style = style.trim();
        if !names.contains(style) {
            return Err(DataError::Config {
                path: sketch_root.to_path_buf(),
                reason: format!(
                    "data.{key}: no sketch style folder {style:?} in sketch/ (found {})",
                    names.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        out.insert(style.to_string());
    }
    Ok(out)
}

/// Read PKU-Sketch; a quarter of the identities with both a sketch and a photo (at least one)
/// are drawn for the test with `data.split_seed`, the rest train.
pub(crate) fn read_pku_sketch(cfg: &DatasetConfig, report: &mut LoadReport) -> Result<ReadSplits> {
    let layout = cfg.kind.name();
    let (sketch_dir, photo_dir) = (cfg.root.join("sketch"), cfg.root.join("photo"));
    require_dir(&sketch_dir, layout, "the sketches sketch/<pid>.jpg")?;
    require_dir(&photo_dir, layout, "the photos photo/<pid>_<rest>.jpg")?;
    let counts = &mut report.scan[Split::Train.index()];
    let sketches = read_sketches(&sketch_dir, cfg, counts)?;
    let photos = read_photos(&photo_dir, cfg, counts)?;
    let sketched: BTreeSet<i64> = sketches.iter().map(|s| s.pid).collect();
    let photographed: BTreeSet<i64> = photos.iter().map(|p| p.pid).collect();
    let mut both: Vec<i64> = sketched.intersection(&photographed).copied().collect();
    if both.len() < 2 {
        return Err(DataError::Config {
            path: cfg.root.clone(),
            reason: format!(
                "the {layout} layout needs at least 2 identities with both a sketch in sketch/ \
                 and a photo in photo/ (one to test, one to train), found {}",
                both.len()
            ),
        });
    }
    let mut rng = SmallRng::seed_from_u64(mix_seed(&[cfg.split_seed, 0x9C5]));
    both.shuffle(&mut rng);
    let test_count = both.len().div_ceil(4).min(both.len() - 1);
    let test: BTreeSet<i64> = both[..test_count].iter().copied().collect();
    let (mut train, mut query, mut gallery) = (Vec::new(), Vec::new(), Vec::new());
    for Found {
        name, path, pid, ..
    } in sketches
    {
        let list = if test.contains(&pid) {
            &mut query
        } else {
            &mut train
        };
        list.push(sketch_record(name, path, pid, 0));
    }
    for Found {
        name, path, pid, ..
    } in photos
    {
        let list = if test.contains(&pid) {
            &mut gallery
        } else {
            &mut train
        };
        list.push(photo_record(name, path, pid, 1));
    }
    Ok(ReadSplits {
        splits: [train, query, gallery],
        has_camera_ids: false,
    })
}
