//! The two-tower CLIP model and loading it from a Hugging Face folder.

use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::Backend;

use crate::config::{ClipConfig, ClipVisionConfig};
use crate::error::ClipError;
use crate::text::ClipText;
use crate::vision::ClipVision;
use crate::weights::{load_hf_safetensors, LoadReport, FULL_MODEL_PREFIXES, VISION_ONLY_PREFIXES};

/// Name of the weights file inside a Hugging Face folder.
pub const HF_WEIGHTS_FILE: &str = "model.safetensors";

/// CLIP: an image tower and a text tower projecting into one embedding space.
#[derive(Module, Debug)]
pub struct ClipModel<B: Backend> {
    /// Image encoder.
    pub vision: ClipVision<B>,
    /// Text encoder.
    pub text: ClipText<B>,
}

impl<B: Backend> ClipModel<B> {
    /// Randomly initialised model; `num_cameras = 0` disables the camera embedding.
    pub fn new(
        config: &ClipConfig,
        num_cameras: usize,
        camera_coef: f32,
        device: &B::Device,
    ) -> Self {
        Self {
            vision: ClipVision::new(
                &config.vision,
                config.projection_dim,
                num_cameras,
                camera_coef,
                device,
            ),
            text: ClipText::new(&config.text, config.projection_dim, device),
        }
    }

    /// Load a Hugging Face `CLIPModel` folder (`config.json` + `model.safetensors`).
    ///
    /// The camera embedding (not part of CLIP) keeps its random initialisation and is listed in
    /// [`LoadReport::missing`]; tensors of the file the model does not use (`logit_scale`, ...)
    /// are listed in [`LoadReport::unused`]. Any other missing tensor, or a tensor of the wrong
    /// shape, is an error naming it.
    pub fn from_hf_dir(
        dir: &Path,
        num_cameras: usize,
        camera_coef: f32,
        device: &B::Device,
    ) -> Result<(Self, LoadReport), ClipError> {
        let config = ClipConfig::from_hf_dir(dir)?;
        let mut model = Self::new(&config, num_cameras, camera_coef, device);
        let report =
            load_hf_safetensors(&mut model, &dir.join(HF_WEIGHTS_FILE), FULL_MODEL_PREFIXES)?;
        Ok((model, report))
    }
}

impl<B: Backend> ClipVision<B> {
    /// Load only the vision tower from a Hugging Face folder: a `CLIPModel` or a
    /// `CLIPVisionModelWithProjection` checkpoint (`config.json` + `model.safetensors`).
    pub fn from_hf_dir(
        dir: &Path,
        num_cameras: usize,
        camera_coef: f32,
        device: &B::Device,
    ) -> Result<(Self, LoadReport), ClipError> {
        let (config, projection_dim) = ClipVisionConfig::from_hf_dir(dir)?;
        let mut vision = Self::new(&config, projection_dim, num_cameras, camera_coef, device);
        let report = load_hf_safetensors(
            &mut vision,
            &dir.join(HF_WEIGHTS_FILE),
            VISION_ONLY_PREFIXES,
        )?;
        Ok((vision, report))
    }
}
