//! The crate's error type: every variant that concerns a file or a tensor names it.

use std::path::PathBuf;

/// Errors from loading CLIP configs, weights and tokenizers, or from bad inputs.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// A file or folder that should exist does not.
    #[error("missing {path}: expected {expected}")]
    MissingFile {
        /// The path that was looked for.
        path: PathBuf,
        /// What the path should have held.
        expected: &'static str,
    },
    /// Reading or writing a file failed.
    #[error(transparent)]
    File(#[from] next_common::FileError),
    /// A config.json that could not be parsed or has invalid values.
    #[error("invalid CLIP config {path}: {message}")]
    InvalidConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A config.json describing another model family than CLIP.
    #[error("{path}: model_type is {found:?}, expected {expected}")]
    UnsupportedArchitecture {
        /// The config file.
        path: PathBuf,
        /// The `model_type` found in it.
        found: String,
        /// The model types accepted here.
        expected: &'static str,
    },
    /// A weights file that is not valid safetensors / burnpack, or that could not be applied.
    #[error("cannot read weights {path}: {message}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// The underlying problem.
        message: String,
    },
    /// Tensors the model needs that the weights file lacks.
    #[error("{path}: missing tensor(s) {names:?}")]
    MissingTensors {
        /// The weights file.
        path: PathBuf,
        /// Names of the missing tensors, in the file's naming.
        names: Vec<String>,
    },
    /// A tensor in the weights file whose shape differs from the model's.
    #[error("{path}: tensor {tensor} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The weights file.
        path: PathBuf,
        /// The tensor name, in the file's naming.
        tensor: String,
        /// The shape the model expects.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor stored with an element type other than f32.
    #[error("{path}: tensor {tensor} is stored as {dtype}, expected f32")]
    UnsupportedDtype {
        /// The weights file.
        path: PathBuf,
        /// The tensor name, in the file's naming.
        tensor: String,
        /// The element type found.
        dtype: String,
    },
    /// A tokenizer.json that could not be loaded.
    #[error("cannot load tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer file (`<builtin>` for the embedded one).
        path: PathBuf,
        /// The underlying problem.
        message: String,
    },
    /// A tokenizer that does not fit the model's text tower (ids beyond its vocabulary, or
    /// another end token).
    #[error("{config}: {key} is {config_value} but the tokenizer {tokenizer} needs {tokenizer_value}: use the model's own tokenizer.json (next to config.json) or fix {key}")]
    TokenizerMismatch {
        /// The model config.
        config: PathBuf,
        /// The tokenizer file (`<builtin ...>` for the embedded one).
        tokenizer: PathBuf,
        /// The config key concerned.
        key: &'static str,
        /// The value in the config.
        config_value: usize,
        /// The value the tokenizer needs.
        tokenizer_value: usize,
    },
    /// Tokenizing a text failed.
    #[error("cannot tokenize {text:?}: {message}")]
    Encode {
        /// The start of the offending text.
        text: String,
        /// The underlying problem.
        message: String,
    },
    /// An input tensor of the wrong size.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}
