//! A torchreid-style entry point: open a checkpoint, extract L2-normalised features of image
//! triplets or folders, rank a gallery for each query.
//!
//! ```no_run
//! use burn::backend::Flex;
//! use next_train::FeatureExtractor;
//!
//! # fn main() -> Result<(), next_train::TrainError> {
//! let extractor = FeatureExtractor::<Flex>::from_checkpoint("runs/next/best.ckpt", &Default::default())?;
//! let query = extractor.extract_folder("query_images".as_ref())?; // RGB/ NI/ TI/ subfolders
//! let gallery = extractor.extract_folder("gallery_images".as_ref())?;
//! for (q, list) in extractor.search(&query, &gallery, 5)?.iter().enumerate() {
//!     println!("{}: best match {}", query.keys[q], gallery.keys[list[0].index]);
//! }
//! # Ok(())
//! # }
//! ```

use crate::evaluate::Extracted;
use crate::image_query::{extract_triplets, scan_triplet_dir, ImageTriplet};
use crate::TrainError;
use burn::tensor::backend::Backend;
use next_data::{DatasetConfig, DatasetKind, TransformConfig};
use next_metrics::{top_k, EvalConfig, Neighbour};
use next_model::{Checkpoint, NextModel};
use std::path::{Path, PathBuf};

/// A model with its test transform, ready to turn images into features.
#[derive(Debug)]
pub struct FeatureExtractor<B: Backend> {
    model: NextModel<B>,
    transform: TransformConfig,
    batch_size: usize,
    camera: i64,
    device: B::Device,
}

impl<B: Backend> FeatureExtractor<B> {
    /// Open a checkpoint (no dataset needed): the model, and the input size and normalisation
    /// it was trained with (a training checkpoint records them; otherwise the person default
    /// 256 x 128 with the dataset defaults).
    pub fn from_checkpoint(path: impl AsRef<Path>, device: &B::Device) -> Result<Self, TrainError> {
        let path = path.as_ref();
        let checkpoint = Checkpoint::load(path)?;
        let header = checkpoint.model_header(path)?;
        let mut data: DatasetConfig = checkpoint
            .header
            .get("data")
            .and_then(|d| serde_json::from_value(d.clone()).ok())
            .unwrap_or_else(|| DatasetConfig::new("", DatasetKind::Rgbnt201));
        if let Some(size) = header.image_size {
            data.image_size = Some(size);
        }
        let model = header.model.init_with_clip::<B>(&header.clip, device)?;
        let model = checkpoint.load_weights(model, path, device)?;
        Ok(Self::new(
            model,
            TransformConfig::from_dataset(&data),
            device,
        ))
    }

    /// An extractor for `model` with the test transform `transform`.
    pub fn new(model: NextModel<B>, transform: TransformConfig, device: &B::Device) -> Self {
        Self {
            model,
            transform,
            batch_size: 32,
            camera: 0,
            device: device.clone(),
        }
    }

    /// Images per forward batch (default 32).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Camera id given to the model's camera embedding (default 0).
    pub fn with_camera(mut self, camera: i64) -> Self {
        self.camera = camera;
        self
    }

    /// The model.
    pub fn model(&self) -> &NextModel<B> {
        &self.model
    }

    /// The test transform (input size and normalisation).
    pub fn transform(&self) -> TransformConfig {
        self.transform
    }

    /// Features of image triplets (a missing modality is zero-filled), one row per triplet.
    pub fn extract(&self, triplets: &[ImageTriplet]) -> Result<Extracted, TrainError> {
        extract_triplets(
            &self.model,
            triplets,
            self.transform,
            self.batch_size,
            self.camera,
            &self.device,
        )
    }

    /// Features of image files given as `[rgb, nir, tir]` (at least one per entry).
    pub fn extract_files(&self, files: &[[Option<PathBuf>; 3]]) -> Result<Extracted, TrainError> {
        let triplets = files
            .iter()
            .cloned()
            .map(ImageTriplet::from_files)
            .collect::<Result<Vec<_>, _>>()?;
        self.extract(&triplets)
    }

    /// Features of every triplet of a folder with `RGB/ NI/ TI/` subfolders (paired by file name).
    pub fn extract_folder(&self, dir: &Path) -> Result<Extracted, TrainError> {
        self.extract(&scan_triplet_dir(dir)?)
    }

    /// The `top` nearest gallery rows of each query row (Euclidean distance of the normalised
    /// features, ascending).
    pub fn search(
        &self,
        query: &Extracted,
        gallery: &Extracted,
        top: usize,
    ) -> Result<Vec<Vec<Neighbour>>, TrainError> {
        Ok(top_k(
            &query.features,
            &gallery.features,
            None,
            top,
            &EvalConfig::default(),
        )?)
    }
}
