//! Errors of the data crate. Every error that concerns a file or folder names it and the rule
//! that was broken.

use std::path::PathBuf;

/// Everything that can go wrong between dataset files on disk and batches of tensors.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An I/O failure on a named file or folder.
    #[error(transparent)]
    File(#[from] next_common::FileError),
    /// A folder the layout requires is missing.
    #[error("missing folder {path}: the {layout} layout expects it ({expected})")]
    MissingFolder {
        /// The folder that was looked for.
        path: PathBuf,
        /// The dataset layout being read.
        layout: &'static str,
        /// What the folder should contain.
        expected: &'static str,
    },
    /// A file name does not follow the naming rule of its dataset.
    #[error("unparseable file name {path}: expected {rule}")]
    BadName {
        /// The offending file.
        path: PathBuf,
        /// The naming rule it broke.
        rule: String,
    },
    /// A modality image has no partner with the same name in a sibling modality folder.
    #[error("missing partner file {missing}: {present} exists, and every image needs the same name in all three modality folders")]
    MissingPartner {
        /// The partner that should exist.
        missing: PathBuf,
        /// The image that was found.
        present: PathBuf,
    },
    /// A sample has no sketch in the `SK/` folder that `data.sketch = "folder"` reads.
    #[error("missing sketch {missing}: data.sketch = \"folder\" expects a sketch of the same name as {present} in SK/ (set missing_partner = \"skip\" to go without)")]
    MissingSketch {
        /// The sketch that should exist.
        missing: PathBuf,
        /// The RGB image of the sample.
        present: PathBuf,
    },
    /// A text-ReID annotation file is not the expected JSON list, or one entry is malformed.
    #[error("bad annotation file {path}: {reason}")]
    BadAnnotation {
        /// The annotation JSON file.
        path: PathBuf,
        /// What is wrong, naming the entry and key.
        reason: String,
    },
    /// Two images of one split map to the same sample key.
    #[error("duplicate name {second}: same sample key `{key}` as {first}; names must be unique within a split")]
    DuplicateName {
        /// First file with the key.
        first: PathBuf,
        /// Second file with the key.
        second: PathBuf,
        /// The key both map to.
        key: String,
    },
    /// A split folder contains no usable sample.
    #[error("empty split {path}: no usable image triplet found (expected at least one)")]
    EmptySplit {
        /// The split folder.
        path: PathBuf,
    },
    /// A caption file is not the expected JSON list of `{item, description}` objects.
    #[error("bad caption file {path}: expected a JSON list of {{\"item\": name, \"description\": text}} objects ({reason})")]
    BadCaptionFile {
        /// The caption file.
        path: PathBuf,
        /// What the parser reported.
        reason: String,
    },
    /// An image has no caption and the configuration forbids that.
    #[error("missing caption for {image}: no entry `{key}` in {caption_file} (set missing_caption = \"empty\" to allow)")]
    MissingCaption {
        /// The image without a caption.
        image: PathBuf,
        /// The key looked up.
        key: String,
        /// The caption file that was searched.
        caption_file: PathBuf,
    },
    /// An image file could not be decoded.
    #[error("corrupt image {path}: expected a decodable JPEG/PNG/BMP/TIFF image ({reason})")]
    CorruptImage {
        /// The image file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
    /// An image does not have the size its layout requires.
    #[error("bad image size {path}: expected {expected}, found {width}x{height}")]
    BadImageSize {
        /// The image file.
        path: PathBuf,
        /// The required size.
        expected: String,
        /// Found width.
        width: u32,
        /// Found height.
        height: u32,
    },
    /// Image files that failed the check run when the dataset opened, all of them.
    #[error("{} of {checked} image files failed the check when the dataset opened (set data.check_images = false to skip it):\n{}", bad.len(), bad.iter().map(|(_, reason)| format!("  {reason}")).collect::<Vec<_>>().join("\n"))]
    BadImages {
        /// Number of files checked.
        checked: usize,
        /// Every bad file with its error message (which names it).
        bad: Vec<(PathBuf, String)>,
    },
    /// A file or folder name that is not valid UTF-8 (names are matched across modality folders
    /// and caption files as text, so they must be UTF-8).
    #[error(
        "file name {lossy:?} in {folder} is not valid UTF-8 (bad bytes shown as U+FFFD): rename it"
    )]
    NonUtf8Name {
        /// The folder holding the file.
        folder: PathBuf,
        /// The name with invalid bytes replaced.
        lossy: String,
    },
    /// A configuration file or value is invalid.
    #[error("invalid configuration {path}: {reason}")]
    Config {
        /// The configuration file (or `<memory>`).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A sampler or loader was asked for something impossible.
    #[error("invalid loader setting: {0}")]
    Setting(String),
    /// A worker thread stopped without reporting (never expected).
    #[error("data worker stopped unexpectedly: {0}")]
    Worker(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, DataError>;
