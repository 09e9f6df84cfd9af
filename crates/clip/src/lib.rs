//! CLIP ViT image and text encoders in Burn, numerically equal to Hugging Face `transformers`.
//!
//! - [`ClipVision`]: ViT with every token projected (`[B, 1 + N, P]`, the ReID use), any input
//!   size divisible by the patch (bilinearly resized positional grid), optional SIE camera
//!   embedding; [`VisionOutput::pooled`] equals Hugging Face `image_embeds`.
//! - [`ClipText`]: causal text transformer pooled at the first end-of-text token.
//! - [`ClipModel::from_hf_dir`]: load a Hugging Face folder (`config.json` + `model.safetensors`),
//!   with every tensor checked by name; [`save_burnpack`]/[`load_burnpack`] for Burn's format.
//! - [`Precision`]: mixed precision (bf16/f16 matrix products over f32 master weights).
//! - [`ClipTokenizer`]: CLIP BPE on a `tokenizer.json` (a built-in one is embedded).

#![warn(missing_docs)]

mod config;
mod error;
mod hf_save;
pub mod kernels;
pub mod layers;
mod model;
pub mod precision;
mod text;
mod tokenizer;
mod vision;
mod vocab;
mod weights;

pub use config::{ClipConfig, ClipTextConfig, ClipVisionConfig};
pub use error::ClipError;
pub use hf_save::save_hf_dir;
pub use model::{ClipModel, HF_WEIGHTS_FILE};
pub use precision::Precision;
pub use text::{ClipText, TextEmbeddings, TextOutput};
pub use tokenizer::{
    batch_tensors, split_sentences, ClipTokenizer, TokenizedText, CONTEXT_LENGTH, END_TOKEN,
    PAD_ID, START_TOKEN,
};
pub use vision::{ClipVision, VisionEmbeddings, VisionOutput};
pub use vocab::{restricted_vocab, RestrictedVocab};
pub use weights::{
    hf_to_model_path, load_burnpack, load_hf_safetensors, model_path_to_hf, save_burnpack,
    LoadReport, FULL_MODEL_PREFIXES, VISION_ONLY_PREFIXES,
};

/// OpenAI CLIP's per-channel pixel mean (RGB, for pixels scaled to [0, 1]).
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];

/// OpenAI CLIP's per-channel pixel standard deviation (RGB, for pixels scaled to [0, 1]).
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];
