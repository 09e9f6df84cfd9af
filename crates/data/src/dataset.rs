//! Loading a dataset: the split folders of each layout, relabelling, captions, load report.

use crate::captions::CaptionTable;
use crate::check::check_image_files;
use crate::config::{
    BadSamplePolicy, DatasetConfig, DatasetKind, MissingCaptionPolicy, SketchSource, Split,
};
use crate::error::{DataError, Result};
use crate::scan::{
    check_unique_keys, require_dir, scan_id_folders, scan_modality_folders, scan_strips,
    ScanCounts, ScanRules, ScannedSample, TripletImages,
};
use next_common::Modality;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Where the sketch of a sample comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SketchImage {
    /// A drawn sketch file (decoded as one grey channel).
    File(PathBuf),
    /// Computed from the sample's RGB photo by XDoG when the batch is loaded
    /// ([`crate::xdog::xdog_sketch`]).
    Xdog,
}

/// Which inputs one sample has: the three spectra, a sketch, a caption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleModalities {
    /// RGB, NIR, TIR images.
    pub spectra: [bool; 3],
    /// A sketch (drawn or computed by XDoG).
    pub sketch: bool,
    /// At least one non-empty caption.
    pub text: bool,
}

/// One sample: up to three aligned spectra of one object, an optional sketch, its ids and
/// captions. A tri-modal sample has all three spectra and no sketch unless `data.sketch` asks.
#[derive(Debug, Clone, PartialEq)]
pub struct TripletRecord {
    /// Caption key (file name; `<vid>_<file>` for WMVEID863).
    pub key: String,
    /// Where the images are.
    pub images: TripletImages,
    /// Raw identity id from the name or folder.
    pub pid: i64,
    /// Training label: the relabelled pid (0..N-1) in the train split, the raw pid elsewhere.
    pub label: i64,
    /// Camera id (0-based).
    pub camid: i64,
    /// Scene id (MSVR310, WMVEID863), -1 where the dataset has none.
    pub sceneid: i64,
    /// One caption per modality in RGB, NIR, TIR order ("" where none). A text-ReID caption
    /// (which describes the RGB photo) sits in the RGB slot.
    pub captions: [String; 3],
    /// The sketch of the sample, if it has one.
    pub sketch: Option<SketchImage>,
}

impl TripletRecord {
    /// The inputs this sample has.
    pub fn modalities(&self) -> SampleModalities {
        SampleModalities {
            spectra: self.images.present(),
            sketch: self.sketch.is_some(),
            text: self.captions.iter().any(|c| !c.trim().is_empty()),
        }
    }

    /// The file shown in messages about this sample: its first spectrum, else its sketch file.
    pub fn primary_file(&self) -> &Path {
        match (&self.images, &self.sketch) {
            (TripletImages::Partial([None, None, None]), Some(SketchImage::File(p))) => p,
            (images, _) => images.primary(),
        }
    }
}

/// Counts of everything imperfect met while loading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Scan counters per split (train, query, gallery).
    pub scan: [ScanCounts; 3],
    /// Images without caption entry, per split and modality.
    pub missing_captions: [[usize; 3]; 3],
    /// Images whose caption entry is empty text, per split and modality.
    pub empty_captions: [[usize; 3]; 3],
    /// Samples left without sketch because `SK/` lacks theirs (policy `skip`), per split.
    pub missing_sketches: [usize; 3],
    /// Text-ReID annotation entries of other splits (`val`), not loaded.
    pub unused_annotations: usize,
}

impl LoadReport {
    /// Total images without caption entry over all splits and modalities.
    pub fn total_missing_captions(&self) -> usize {
        self.missing_captions.iter().flatten().sum()
    }

    /// Human-readable summary lines (one per non-zero counter).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for split in Split::ALL {
            let i = split.index();
            let s = &self.scan[i];
            for (what, n) in [
                ("skipped (missing partner)", s.missing_partner),
                ("skipped (bad name)", s.bad_name),
                ("skipped distractors (pid -1)", s.distractors),
                ("ignored non-image files", s.ignored_files),
            ] {
                if n > 0 {
                    out.push(format!("{split:?}: {n} {what}"));
                }
            }
            if self.missing_sketches[i] > 0 {
                out.push(format!(
                    "{split:?}: {} samples without sketch (missing in SK/)",
                    self.missing_sketches[i]
                ));
            }
            for m in Modality::ALL {
                let (miss, empty) = (
                    self.missing_captions[i][m.index()],
                    self.empty_captions[i][m.index()],
                );
                if miss + empty > 0 {
                    out.push(format!(
                        "{split:?} {m}: {miss} missing and {empty} empty captions"
                    ));
                }
            }
        }
        if self.unused_annotations > 0 {
            out.push(format!(
                "{} annotation entries of other splits (val) not loaded",
                self.unused_annotations
            ));
        }
        out
    }
}

/// A loaded benchmark: train, query and gallery records plus what the model needs to know.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The configuration it was loaded with.
    pub config: DatasetConfig,
    /// Training records, labels relabelled 0..num_train_ids-1 by ascending raw pid.
    pub train: Vec<TripletRecord>,
    /// Query records (raw pids).
    pub query: Vec<TripletRecord>,
    /// Gallery records (raw pids).
    pub gallery: Vec<TripletRecord>,
    /// Number of training identities (classifier size).
    pub num_train_ids: usize,
    /// Number of distinct training camera ids.
    pub num_train_cams: usize,
    /// Whether the names carry real camera ids (false for a custom dataset without cameras).
    pub has_camera_ids: bool,
    /// What was skipped, ignored or missing.
    pub report: LoadReport,
}

impl Dataset {
    /// Records of one split.
    pub fn split(&self, split: Split) -> &[TripletRecord] {
        match split {
            Split::Train => &self.train,
            Split::Query => &self.query,
            Split::Gallery => &self.gallery,
        }
    }

    /// Size of a camera-embedding table indexable by every camid of every split (max camid + 1).
    pub fn camera_table_size(&self) -> usize {
        let max = self
            .train
            .iter()
            .chain(&self.query)
            .chain(&self.gallery)
            .map(|r| r.camid)
            .max();
        max.map_or(1, |m| (m.max(0) + 1) as usize)
    }
}

struct SplitDirs {
    train: PathBuf,
    query: PathBuf,
    gallery: PathBuf,
}

fn split_dirs(cfg: &DatasetConfig) -> SplitDirs {
    let r = &cfg.root;
    let (t, q, g) = match cfg.kind {
        DatasetKind::Rgbnt201 => ("train_171", "test", "test"),
        DatasetKind::Rgbnt100 => {
            let base = if r.join("rgbir").is_dir() {
                r.join("rgbir")
            } else {
                r.clone()
            };
            return SplitDirs {
                train: base.join("bounding_box_train"),
                query: base.join("query"),
                gallery: base.join("bounding_box_test"),
            };
        }
        DatasetKind::Msvr310 => ("bounding_box_train", "query3", "bounding_box_test"),
        DatasetKind::Wmveid863 => ("train", "query", "test"),
        DatasetKind::MarketMm
        | DatasetKind::Custom
        | DatasetKind::MarketSketch
        | DatasetKind::PkuSketch
        | DatasetKind::TextReid => ("train", "query", "gallery"),
    };
    SplitDirs {
        train: r.join(t),
        query: r.join(q),
        gallery: r.join(g),
    }
}

fn scan_split(
    dir: &Path,
    rules: &ScanRules,
    counts: &mut ScanCounts,
) -> Result<Vec<ScannedSample>> {
    let layout = rules.kind.name();
    let samples = match rules.kind {
        DatasetKind::Rgbnt201 | DatasetKind::MarketMm | DatasetKind::Custom => {
            let dirs = Modality::ALL.map(|m| dir.join(m.caption_tag()));
            for d in &dirs {
                require_dir(
                    d,
                    layout,
                    "modality folders RGB, NI and TI in every split folder",
                )?;
            }
            scan_modality_folders([&dirs[0], &dirs[1], &dirs[2]], rules, None, "", counts)?
        }
        DatasetKind::Rgbnt100 => {
            require_dir(dir, layout, "a split folder of 768x128 RGB|NIR|TIR strips")?;
            scan_strips(dir, rules, counts)?
        }
        DatasetKind::Msvr310 | DatasetKind::Wmveid863 => {
            require_dir(dir, layout, "a split folder of <id>/{vis,ni,th} folders")?;
            let prefix_keys = rules.kind == DatasetKind::Wmveid863;
            scan_id_folders(dir, ["vis", "ni", "th"], rules, prefix_keys, counts)?
        }
        DatasetKind::MarketSketch | DatasetKind::PkuSketch | DatasetKind::TextReid => {
            return Err(DataError::Config {
                path: dir.to_path_buf(),
                reason: format!("the {layout} layout has no RGB/NI/TI split folders"),
            })
        }
    };
    if samples.is_empty() {
        return Err(DataError::EmptySplit {
            path: dir.to_path_buf(),
        });
    }
    check_unique_keys(&samples)?;
    Ok(samples)
}

fn camera_of(sample: &ScannedSample, split: Split, has_cams: bool) -> Result<i64> {
    match (sample.ids.camid, has_cams) {
        (Some(c), true) => Ok(c),
        (None, false) => Ok(if split == Split::Gallery { 1 } else { 0 }),
        _ => Err(DataError::BadName {
            path: sample.images.primary().to_path_buf(),
            rule: "all names of a custom dataset with or all without the `_cCAM_` camera field"
                .to_string(),
        }),
    }
}

/// Caption tables loaded lazily, one per (prefix, modality).
struct CaptionSource {
    folder: PathBuf,
    tables: HashMap<(String, usize), CaptionTable>,
}

impl CaptionSource {
    fn table(&mut self, prefix: &str, m: Modality) -> Result<&CaptionTable> {
        let key = (prefix.to_string(), m.index());
        if !self.tables.contains_key(&key) {
            let path = self
                .folder
                .join(CaptionTable::file_name(prefix, m.caption_tag()));
            let table = CaptionTable::read(&path)?;
            self.tables.insert(key.clone(), table);
        }
        Ok(&self.tables[&key])
    }
}

fn attach_captions(
    records: &mut [TripletRecord],
    split: Split,
    source: &mut CaptionSource,
    policy: MissingCaptionPolicy,
    report: &mut LoadReport,
) -> Result<()> {
    for m in Modality::ALL {
        let table = source.table(split.caption_prefix(), m)?;
        for r in records.iter_mut() {
            match table.entries.get(&r.key) {
                Some(text) => {
                    if text.trim().is_empty() {
                        report.empty_captions[split.index()][m.index()] += 1;
                    }
                    r.captions[m.index()] = text.clone();
                }
                None => {
                    if policy == MissingCaptionPolicy::Error {
                        let image = match &r.images {
                            TripletImages::Separate(p) => p[m.index()].clone(),
                            TripletImages::Strip(p) => p.clone(),
                            TripletImages::Partial(p) => p[m.index()]
                                .clone()
                                .unwrap_or_else(|| r.primary_file().to_path_buf()),
                        };
                        return Err(DataError::MissingCaption {
                            image,
                            key: r.key.clone(),
                            caption_file: table.path.clone(),
                        });
                    }
                    report.missing_captions[split.index()][m.index()] += 1;
                }
            }
        }
    }
    Ok(())
}

/// The splits of a dataset as read from disk, before relabelling (labels are raw pids).
pub(crate) struct ReadSplits {
    /// Train, query and gallery records.
    pub(crate) splits: [Vec<TripletRecord>; 3],
    /// Whether the names carry real camera ids.
    pub(crate) has_camera_ids: bool,
}

/// Load a dataset as described by `cfg`: scan the splits, pair modalities, relabel training pids,
/// attach captions and sketches. Errors name the file or folder and the rule broken.
pub fn load_dataset(cfg: &DatasetConfig) -> Result<Dataset> {
    cfg.validate(Path::new("<config>"))?;
    require_dir(&cfg.root, cfg.kind.name(), "the dataset root folder")?;
    let mut report = LoadReport::default();
    let read = match cfg.kind {
        DatasetKind::MarketSketch => crate::sketch_sets::read_market_sketch(cfg, &mut report)?,
        DatasetKind::PkuSketch => crate::sketch_sets::read_pku_sketch(cfg, &mut report)?,
        DatasetKind::TextReid => crate::text_reid::read_text_reid(cfg, &mut report)?,
        _ => read_tri_spectral(cfg, &mut report)?,
    };
    let ReadSplits {
        mut splits,
        has_camera_ids,
    } = read;
    let train_pids: BTreeSet<i64> = splits[0].iter().map(|r| r.pid).collect();
    let relabel: HashMap<i64, i64> = train_pids
        .iter()
        .enumerate()
        .map(|(i, &p)| (p, i as i64))
        .collect();
    for r in splits[0].iter_mut() {
        r.label = relabel.get(&r.pid).copied().unwrap_or(r.label);
    }
    if cfg.sketch == SketchSource::Xdog {
        for r in splits.iter_mut().flatten() {
            if r.sketch.is_none() && r.images.present()[0] {
                r.sketch = Some(SketchImage::Xdog);
            }
        }
    }
    if cfg.check_images {
        check_image_files(splits.iter().flatten(), &cfg.image_limits())?;
    }
    let [train, query, gallery] = splits;
    let num_train_cams = train.iter().map(|r| r.camid).collect::<BTreeSet<_>>().len();
    Ok(Dataset {
        config: cfg.clone(),
        num_train_ids: train_pids.len(),
        num_train_cams,
        has_camera_ids,
        train,
        query,
        gallery,
        report,
    })
}

/// Read a layout of the three spectra: scan and pair the splits, attach captions and, with
/// `data.sketch = "folder"`, the `SK/` sketches.
fn read_tri_spectral(cfg: &DatasetConfig, report: &mut LoadReport) -> Result<ReadSplits> {
    let rules = ScanRules {
        kind: cfg.kind,
        missing_partner: cfg.missing_partner,
        bad_name: cfg.bad_name,
    };
    let dirs = split_dirs(cfg);
    let train = scan_split(&dirs.train, &rules, &mut report.scan[0])?;
    let query = scan_split(&dirs.query, &rules, &mut report.scan[1])?;
    let gallery = if dirs.gallery == dirs.query {
        report.scan[2] = report.scan[1];
        query.clone()
    } else {
        scan_split(&dirs.gallery, &rules, &mut report.scan[2])?
    };

    let has_cams = train
        .iter()
        .chain(&query)
        .chain(&gallery)
        .any(|s| s.ids.camid.is_some());
    let build = |samples: Vec<ScannedSample>, split: Split| -> Result<Vec<TripletRecord>> {
        samples
            .into_iter()
            .map(|s| {
                let camid = camera_of(&s, split, has_cams)?;
                Ok(TripletRecord {
                    key: s.key,
                    images: s.images,
                    pid: s.ids.pid,
                    label: s.ids.pid,
                    camid,
                    sceneid: s.ids.sceneid,
                    captions: Default::default(),
                    sketch: None,
                })
            })
            .collect()
    };
    let mut splits = [
        build(train, Split::Train)?,
        build(query, Split::Query)?,
        build(gallery, Split::Gallery)?,
    ];

    if let Some(folder) = &cfg.captions {
        let mut source = CaptionSource {
            folder: folder.clone(),
            tables: HashMap::new(),
        };
        for split in Split::ALL {
            attach_captions(
                &mut splits[split.index()],
                split,
                &mut source,
                cfg.missing_caption,
                report,
            )?;
        }
    }
    if cfg.sketch == SketchSource::Folder {
        for (split, dir) in Split::ALL
            .into_iter()
            .zip([&dirs.train, &dirs.query, &dirs.gallery])
        {
            attach_folder_sketches(
                &mut splits[split.index()],
                &dir.join("SK"),
                cfg,
                split,
                report,
            )?;
        }
    }
    Ok(ReadSplits {
        splits,
        has_camera_ids: has_cams,
    })
}

/// Give every record the sketch of its name in `sketch_dir` (a missing one is an error, or with
/// `missing_partner = "skip"` leaves the record without sketch and is counted).
fn attach_folder_sketches(
    records: &mut [TripletRecord],
    sketch_dir: &Path,
    cfg: &DatasetConfig,
    split: Split,
    report: &mut LoadReport,
) -> Result<()> {
    require_dir(
        sketch_dir,
        cfg.kind.name(),
        "an SK folder of sketches beside RGB, NI and TI (data.sketch = \"folder\")",
    )?;
    for r in records.iter_mut() {
        let path = sketch_dir.join(&r.key);
        if path.is_file() {
            r.sketch = Some(SketchImage::File(path));
        } else if cfg.missing_partner == BadSamplePolicy::Skip {
            report.missing_sketches[split.index()] += 1;
        } else {
            return Err(DataError::MissingSketch {
                missing: path,
                present: r.images.primary().to_path_buf(),
            });
        }
    }
    Ok(())
}
