//! Features of image triplets given outside the dataset: `--rgb/--nir/--tir` files or a folder
//! with `RGB/ NI/ TI/` subfolders paired by file name; a missing modality is zero-filled.

use crate::evaluate::{append_rows, Extracted};
use crate::TrainError;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use next_common::Modality;
use next_data::scan::{list_images, ScanCounts};
use next_data::transform::{decode_image, test_transform};
use next_data::{TransformConfig, TripletImages, TripletRecord};
use next_metrics::{Features, SampleMeta};
use next_model::{NextInput, NextModel};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One image triplet outside the dataset; `None` marks a missing modality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTriplet {
    /// Name shown in listings (the file name).
    pub key: String,
    /// RGB, NIR, TIR image files.
    pub paths: [Option<PathBuf>; 3],
}

impl ImageTriplet {
    /// A triplet from command-line files; at least one must be given.
    pub fn from_files(paths: [Option<PathBuf>; 3]) -> Result<Self, TrainError> {
        let first = paths.iter().flatten().next().ok_or_else(|| {
            TrainError::Input("an image triplet needs at least one of --rgb, --nir, --tir".into())
        })?;
        let key = first
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| first.display().to_string());
        Ok(Self { key, paths })
    }
}

/// Every triplet of a folder holding `RGB/ NI/ TI/` subfolders, paired by file name (a name absent
/// from a subfolder is a missing modality), sorted by name.
pub fn scan_triplet_dir(dir: &Path) -> Result<Vec<ImageTriplet>, TrainError> {
    let mut by_name: BTreeMap<String, [Option<PathBuf>; 3]> = BTreeMap::new();
    let mut found_dir = false;
    for modality in Modality::ALL {
        let m = modality.index();
        let sub_dir = dir.join(modality.caption_tag());
        if !sub_dir.is_dir() {
            continue;
        }
        found_dir = true;
        // The dataset scanner's listing: image files only (by extension), hidden files skipped.
        let images = list_images(&sub_dir, &mut ScanCounts::default())?;
        for (name, path) in images {
            by_name.entry(name).or_default()[m] = Some(path);
        }
    }
    if !found_dir {
        return Err(TrainError::Input(format!(
            "{}: expected a folder with RGB/, NI/ and TI/ subfolders",
            dir.display()
        )));
    }
    if by_name.is_empty() {
        return Err(TrainError::Input(format!(
            "{}: expected image files in its RGB/, NI/ or TI/ subfolders, found none",
            dir.display()
        )));
    }
    Ok(by_name
        .into_iter()
        .map(|(key, paths)| ImageTriplet { key, paths })
        .collect())
}

/// Record for drawing a triplet (missing modalities show the first present image's file).
pub fn triplet_record(t: &ImageTriplet) -> TripletRecord {
    let first = t.paths.iter().flatten().next().cloned().unwrap_or_default();
    TripletRecord {
        key: t.key.clone(),
        images: TripletImages::Separate(
            t.paths.clone().map(|p| p.unwrap_or_else(|| first.clone())),
        ),
        pid: -1,
        label: -1,
        camid: -1,
        sceneid: -1,
        captions: Default::default(),
        sketch: None,
    }
}

/// Extract L2-normalised features of `triplets` with the test transform, without captions, all
/// with camera id `camera` (used by SIE); missing modalities are zero-filled. Rows get
/// pid / camid / scene -1.
pub fn extract_triplets<B: Backend>(
    model: &NextModel<B>,
    triplets: &[ImageTriplet],
    transform: TransformConfig,
    batch_size: usize,
    camera: i64,
    device: &B::Device,
) -> Result<Extracted, TrainError> {
    let [h, w] = transform.size;
    let plane = 3 * (h * w) as usize;
    let mut rows: Vec<f32> = Vec::new();
    let mut dim = 0;
    for chunk in triplets.chunks(batch_size.max(1)) {
        let n = chunk.len();
        let mut buffers = Modality::ALL.map(|_| vec![0.0f32; n * plane]);
        for (i, t) in chunk.iter().enumerate() {
            for (m, path) in t.paths.iter().enumerate() {
                if let Some(path) = path {
                    let img = decode_image(path)?;
                    test_transform(
                        &img,
                        &transform,
                        &mut buffers[m][i * plane..(i + 1) * plane],
                    );
                }
            }
        }
        let images = buffers.map(|b| {
            Tensor::<B, 4>::from_data(TensorData::new(b, [n, 3, h as usize, w as usize]), device)
        });
        let feats = model.forward_inference(NextInput {
            images,
            camera_ids: Some(Tensor::<B, 1, Int>::from_data(
                TensorData::new(vec![camera; n], [n]),
                device,
            )),
            captions: None,
        })?;
        dim = append_rows(&mut rows, feats)?;
    }
    Ok(Extracted {
        features: Features::new(rows, triplets.len(), dim)?,
        meta: vec![SampleMeta::new(-1, -1, -1); triplets.len()],
        keys: triplets.iter().map(|t| t.key.clone()).collect(),
    })
}
