//! Dataset configuration: which layout, where, and what to do with imperfect data.

use crate::error::{DataError, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The on-disk layouts this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// RGBNT201 persons: `train_171/{RGB,NI,TI}`, `test/{RGB,NI,TI}` (test is query and gallery).
    Rgbnt201,
    /// RGBNT100 vehicles: `rgbir/{bounding_box_train,query,bounding_box_test}` with 768x128 strips.
    Rgbnt100,
    /// MSVR310 vehicles: `{bounding_box_train,query3,bounding_box_test}/<vid>/{vis,ni,th}`.
    Msvr310,
    /// Market1501-MM persons: `{train,query,gallery}/{RGB,NI,TI}` with Market names.
    MarketMm,
    /// WMVEID863 vehicles: `{train,query,test}/<vid>/{vis,ni,th}`.
    Wmveid863,
    /// The documented generic layout (see the crate docs).
    Custom,
    /// Market-Sketch-1K persons: `photo/{train,query}` Market photos and
    /// `sketch/<style>/{train,query}` sketches named by a 4-digit pid prefix.
    MarketSketch,
    /// PKU-Sketch persons: `sketch/<pid>.jpg` and `photo/<pid>_*.jpg`, no official split.
    PkuSketch,
    /// Text-ReID (CUHK-PEDES, ICFG-PEDES, RSTPReid): `imgs/` and one JSON annotation file.
    TextReid,
}

impl DatasetKind {
    /// Human-readable layout name, used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Rgbnt201 => "RGBNT201",
            DatasetKind::Rgbnt100 => "RGBNT100",
            DatasetKind::Msvr310 => "MSVR310",
            DatasetKind::MarketMm => "Market1501-MM",
            DatasetKind::Wmveid863 => "WMVEID863",
            DatasetKind::Custom => "custom",
            DatasetKind::MarketSketch => "Market-Sketch-1K",
            DatasetKind::PkuSketch => "PKU-Sketch",
            DatasetKind::TextReid => "text-ReID (CUHK-PEDES / ICFG-PEDES / RSTPReid)",
        }
    }

    /// Whether the objects are vehicles (wide images) rather than persons (tall images).
    pub fn is_vehicle(self) -> bool {
        matches!(
            self,
            DatasetKind::Rgbnt100 | DatasetKind::Msvr310 | DatasetKind::Wmveid863
        )
    }

    /// Default model input size `[height, width]`: 256x128 for persons, 128x256 for vehicles.
    pub fn default_image_size(self) -> [u32; 2] {
        if self.is_vehicle() {
            [128, 256]
        } else {
            [256, 128]
        }
    }

    /// Whether the layout holds the three spectra RGB, NIR and TIR per sample (false for the
    /// sketch and text datasets, whose samples have an RGB photo, a sketch or captions).
    pub fn is_tri_spectral(self) -> bool {
        !matches!(
            self,
            DatasetKind::MarketSketch | DatasetKind::PkuSketch | DatasetKind::TextReid
        )
    }

    /// Whether the evaluation protocol ignores cameras and excludes same-scene matches instead.
    pub fn uses_scene_protocol(self) -> bool {
        matches!(self, DatasetKind::Msvr310)
    }
}

/// The three splits of a ReID benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training images (labels relabelled 0..N-1).
    Train,
    /// Query images of the evaluation.
    Query,
    /// Gallery images of the evaluation.
    Gallery,
}

impl Split {
    /// All splits in order train, query, gallery.
    pub const ALL: [Split; 3] = [Split::Train, Split::Query, Split::Gallery];

    /// Prefix of the caption files for this split (`train` or `test`; query and gallery share `test`).
    pub fn caption_prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Query | Split::Gallery => "test",
        }
    }

    /// Position in [`Split::ALL`].
    pub fn index(self) -> usize {
        match self {
            Split::Train => 0,
            Split::Query => 1,
            Split::Gallery => 2,
        }
    }
}

/// What to do with a sample that breaks a rule (missing partner, unparseable name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadSamplePolicy {
    /// Stop with an error naming the file (default).
    #[default]
    Error,
    /// Skip the sample and count it in the load report.
    Skip,
}

/// What to do with an image that has no caption entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingCaptionPolicy {
    /// Stop with an error naming the image and the caption file.
    Error,
    /// Use an empty text and count it in the load report (the reference behaviour; default).
    #[default]
    Empty,
}

/// Pixel normalisation after scaling to [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// mean = std = 0.5 per channel (the reference default).
    #[default]
    Half,
    /// CLIP mean (0.4815, 0.4578, 0.4082) and std (0.2686, 0.2613, 0.2758).
    Clip,
}

impl Normalization {
    /// Per-channel (mean, std).
    pub fn mean_std(self) -> ([f32; 3], [f32; 3]) {
        match self {
            Normalization::Half => ([0.5; 3], [0.5; 3]),
            Normalization::Clip => (
                [0.481_454_66, 0.457_827_5, 0.408_210_73],
                [0.268_629_55, 0.261_302_6, 0.275_777_1],
            ),
        }
    }
}

/// Whether the random augmentation draws are shared by the three modalities of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AugmentSync {
    /// Independent draws per modality (the reference behaviour; default).
    #[default]
    Independent,
    /// The same flip, crop and erasing for all three (the modalities are pixel-aligned).
    Synchronised,
}

/// How the grey values of a sketch are fed to the model (`data.sketch_ink`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SketchInk {
    /// As drawn: dark ink on white paper (default).
    #[default]
    Dark,
    /// Inverted: bright ink on black paper, so that a nearly white page is not one big
    /// constant input and the zero padding of the train crop reads as paper, not as ink.
    Bright,
}

/// Where samples without a drawn sketch of their own get a sketch from (`data.sketch`). The
/// sketches of the sketch datasets (Market-Sketch-1K, PKU-Sketch) are always read; this switch
/// is about the other samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SketchSource {
    /// No sketch (the tri-modal path, unchanged; default).
    #[default]
    None,
    /// A drawn sketch `SK/<name>` beside `RGB/`, `NI/`, `TI/` in every split folder (as the
    /// synthetic benchmark writes); layouts with `RGB`/`NI`/`TI` folders only.
    Folder,
    /// A sketch computed from the sample's RGB photo by XDoG when the batch is loaded.
    Xdog,
}

/// Which held-out split of a text-ReID benchmark (`data.eval_split`) becomes the queries and
/// the gallery: the official `test` (default) or `val`, e.g. to choose a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalSplit {
    /// The entries with `"split": "test"`.
    #[default]
    Test,
    /// The entries with `"split": "val"`.
    Val,
}

impl EvalSplit {
    /// The `split` value of the annotation entries.
    pub fn name(self) -> &'static str {
        match self {
            EvalSplit::Test => "test",
            EvalSplit::Val => "val",
        }
    }
}

fn default_true() -> bool {
    true
}

/// Where a dataset is and how to read it. Deserialisable from TOML/JSON; unknown fields are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Dataset root folder (the folder holding the split folders).
    pub root: PathBuf,
    /// Layout of the folder.
    pub kind: DatasetKind,
    /// Folder with the caption JSON files (`train_RGB.json`, ..., `test_TI.json`); none: no captions.
    #[serde(default)]
    pub captions: Option<PathBuf>,
    /// A modality image without partners: error (default) or skip.
    #[serde(default)]
    pub missing_partner: BadSamplePolicy,
    /// A file name that does not follow the naming rule: error (default) or skip.
    #[serde(default)]
    pub bad_name: BadSamplePolicy,
    /// An image without caption entry: empty text (default) or error.
    #[serde(default)]
    pub missing_caption: MissingCaptionPolicy,
    /// Model input size `[height, width]`; default by kind (256x128 persons, 128x256 vehicles).
    #[serde(default)]
    pub image_size: Option<[u32; 2]>,
    /// Pixel normalisation (`half` default, or `clip`).
    #[serde(default)]
    pub normalization: Normalization,
    /// Augmentation draws per modality (`independent` default, or `synchronised`).
    #[serde(default)]
    pub augment_sync: AugmentSync,
    /// Apply random erasing in the train transform (default true).
    #[serde(default = "default_true")]
    pub random_erasing: bool,
    /// Largest width and height accepted in an image file (default 8192): a header claiming
    /// more is a bad file, found before any pixel memory is allocated.
    #[serde(default = "default_max_image_side")]
    pub max_image_side: u32,
    /// Read the header of every image when the dataset opens, so that bad files are all reported
    /// at once before training starts (default true).
    #[serde(default = "default_true")]
    pub check_images: bool,
    /// Sketches of samples without their own: `none` (default), `folder` (`SK/`) or `xdog`.
    #[serde(default)]
    pub sketch: SketchSource,
    /// How a sketch's lines reach the model: `dark` (default: as drawn, dark ink on white
    /// paper) or `bright` (inverted, so the ink is the signal and the paper is black like the
    /// padding).
    #[serde(default)]
    pub sketch_ink: SketchInk,
    /// Standardise each sketch after normalising (zero mean, unit deviation per channel
    /// plane; default false), so that the near-constant paper does not swamp the strokes.
    #[serde(default)]
    pub sketch_standardize: bool,
    /// Text-ReID annotation JSON; default the first of `reid_raw.json`, `ICFG-PEDES.json`,
    /// `data_captions.json` found in the root. Relative paths are taken from the config file.
    #[serde(default)]
    pub annotations: Option<PathBuf>,
    /// PKU-Sketch has no official split: the seed of the draw of its test identities (a quarter
    /// of them, 50 of 200 as in the protocol of Pang et al. 2018); default 0.
    #[serde(default)]
    pub split_seed: u64,
    /// Text-ReID: the held-out split evaluated, `test` (default) or `val`.
    #[serde(default)]
    pub eval_split: EvalSplit,
    /// Market-Sketch-1K: the sketch styles (`sketch/<style>/` folder names) of the queries, as
    /// the official `--test_style`; default every style found.
    #[serde(default)]
    pub sketch_styles: Option<Vec<String>>,
    /// Market-Sketch-1K: the sketch styles of the training split (`--train_style`); default
    /// every style found.
    #[serde(default)]
    pub train_sketch_styles: Option<Vec<String>>,
    /// Sketch queries of one identity fused into one query, the mean of their embeddings (the
    /// multi-query protocol of Market-Sketch-1K, `--test_mq`); needs a query split apart from
    /// the gallery. Default false: every sketch is a query of its own.
    #[serde(default)]
    pub fuse_sketches: bool,
}

fn default_max_image_side() -> u32 {
    crate::decode::ImageLimits::DEFAULT.max_side
}

impl DatasetConfig {
    /// A configuration with every policy at its default.
    pub fn new(root: impl Into<PathBuf>, kind: DatasetKind) -> Self {
        Self {
            root: root.into(),
            kind,
            captions: None,
            missing_partner: BadSamplePolicy::Error,
            bad_name: BadSamplePolicy::Error,
            missing_caption: MissingCaptionPolicy::Empty,
            image_size: None,
            normalization: Normalization::Half,
            augment_sync: AugmentSync::Independent,
            random_erasing: true,
            max_image_side: default_max_image_side(),
            check_images: true,
            sketch: SketchSource::None,
            sketch_ink: SketchInk::Dark,
            sketch_standardize: false,
            annotations: None,
            split_seed: 0,
            eval_split: EvalSplit::Test,
            sketch_styles: None,
            train_sketch_styles: None,
            fuse_sketches: false,
        }
    }

    /// The image size limits of this dataset.
    pub fn image_limits(&self) -> crate::decode::ImageLimits {
        crate::decode::ImageLimits {
            max_side: self.max_image_side,
        }
    }

    /// Builder: read captions from `folder`.
    pub fn with_captions(mut self, folder: impl Into<PathBuf>) -> Self {
        self.captions = Some(folder.into());
        self
    }

    /// The effective input size `[height, width]`.
    pub fn size(&self) -> [u32; 2] {
        self.image_size
            .unwrap_or_else(|| self.kind.default_image_size())
    }

    /// Parse a configuration from TOML text; `origin` names the file in errors.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self> {
        let cfg: Self = toml::from_str(text).map_err(|e| DataError::Config {
            path: origin.to_path_buf(),
            reason: e.to_string(),
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Read a TOML configuration file; relative `root` and `captions` paths are taken relative
    /// to the file's folder.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let bytes = next_common::read_file(path)?;
        let text = String::from_utf8(bytes).map_err(|_| DataError::Config {
            path: path.to_path_buf(),
            reason: "expected UTF-8 TOML text".into(),
        })?;
        let mut cfg = Self::from_toml_str(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if cfg.root.is_relative() {
            cfg.root = base.join(&cfg.root);
        }
        for p in [cfg.captions.as_mut(), cfg.annotations.as_mut()]
            .into_iter()
            .flatten()
            .filter(|p| p.is_relative())
        {
            *p = base.join(&*p);
        }
        Ok(cfg)
    }

    /// Check value ranges; `origin` names the file in errors.
    pub fn validate(&self, origin: &Path) -> Result<()> {
        let bad = |reason: String| {
            Err(DataError::Config {
                path: origin.to_path_buf(),
                reason,
            })
        };
        let [h, w] = self.size();
        if h == 0 || w == 0 || h > 4096 || w > 4096 {
            return bad(format!(
                "image_size must be within 1..=4096, got [{h}, {w}]"
            ));
        }
        if self.sketch == SketchSource::Folder
            && !matches!(
                self.kind,
                DatasetKind::Rgbnt201 | DatasetKind::MarketMm | DatasetKind::Custom
            )
        {
            return bad(format!(
                "sketch = \"folder\" reads SK/ beside the RGB/NI/TI folders, which the {} layout \
                 does not have; expected \"none\" or \"xdog\" (the own sketches of the sketch \
                 datasets are always read)",
                self.kind.name()
            ));
        }
        if self.eval_split != EvalSplit::Test && self.kind != DatasetKind::TextReid {
            return bad(format!(
                "eval_split = \"{}\": only the text_reid layout has a val split (the {} layout \
                 is evaluated on its test split; expected \"test\")",
                self.eval_split.name(),
                self.kind.name()
            ));
        }
        for (key, styles) in [
            ("sketch_styles", &self.sketch_styles),
            ("train_sketch_styles", &self.train_sketch_styles),
        ] {
            let Some(styles) = styles else { continue };
            if self.kind != DatasetKind::MarketSketch {
                return bad(format!(
                    "{key}: sketch styles are folders of the market_sketch layout, not of the \
                     {} layout",
                    self.kind.name()
                ));
            }
            if styles.is_empty() || styles.iter().any(|s| s.trim().is_empty()) {
                return bad(format!(
                    "{key} = {styles:?}: expected a non-empty list of style folder names such \
                     as [\"A\", \"C\"] (or no key: every style)"
                ));
            }
        }
        if !(16..=65_535).contains(&self.max_image_side) {
            return bad(format!(
                "max_image_side must be within 16..=65535, got {}",
                self.max_image_side
            ));
        }
        Ok(())
    }
}
