//! Queries from outside the dataset (a description, a sketch file, spectrum image files, or any
//! combination) embedded for search; and where evaluation batches get their sketches.

use super::protocol::camera_ids;
use super::{combine_parts, visual_inputs, QueryParts};
use crate::evaluate::Extracted;
use crate::TrainError;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use next_common::{ModalitySet, QueryModality};
use next_data::transform::{decode_image, decode_pixels, test_transform, test_transform_sketch};
use next_data::{Dataset, TransformConfig, TripletBatch};
use next_metrics::{Features, SampleMeta};
use next_model::NextModel;
use std::path::PathBuf;

/// One query given by the user: any of a description, RGB / NIR / TIR image files and a sketch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuerySpec {
    /// A free-text description of the person.
    pub text: Option<String>,
    /// RGB, NIR, TIR image files.
    pub images: [Option<PathBuf>; 3],
    /// A sketch (line drawing) image file.
    pub sketch: Option<PathBuf>,
}

impl QuerySpec {
    /// The modality set this query provides (an error when it provides nothing).
    pub fn modalities(&self) -> Result<ModalitySet, TrainError> {
        let mut members: Vec<QueryModality> =
            [QueryModality::Rgb, QueryModality::Nir, QueryModality::Tir]
                .into_iter()
                .zip(&self.images)
                .filter(|(_, p)| p.is_some())
                .map(|(m, _)| m)
                .collect();
        if self.sketch.is_some() {
            members.push(QueryModality::Sketch);
        }
        if let Some(text) = &self.text {
            if text.trim().is_empty() {
                return Err(TrainError::Input(
                    "--text is empty: a text query needs a description".into(),
                ));
            }
            members.push(QueryModality::Text);
        }
        ModalitySet::of(&members).ok_or_else(|| {
            TrainError::Input(
                "a query needs at least one of a text, a sketch, an RGB, NIR or TIR image".into(),
            )
        })
    }

    /// A short name of the query for listings: the description, else the first file name.
    pub fn key(&self) -> String {
        let files = self.images.iter().chain(std::iter::once(&self.sketch));
        let file = files
            .flatten()
            .next()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        match (&self.text, file) {
            (Some(t), Some(f)) => format!("{f} + \"{}\"", t.trim()),
            (Some(t), None) => format!("\"{}\"", t.trim()),
            (None, Some(f)) => f,
            (None, None) => String::new(),
        }
    }
}

/// Decode `path` with the test transform (of a sketch when `sketch`: grey, with the configured
/// ink) into a `[1, 3, H, W]` tensor.
fn image_tensor<B: Backend>(
    path: &std::path::Path,
    transform: &TransformConfig,
    sketch: bool,
    device: &B::Device,
) -> Result<Tensor<B, 4>, TrainError> {
    let [h, w] = transform.size.map(|v| v as usize);
    let mut buffer = vec![0.0f32; 3 * h * w];
    if sketch {
        test_transform_sketch(decode_pixels(path)?, transform, &mut buffer);
    } else {
        test_transform(&decode_image(path)?, transform, &mut buffer);
    }
    Ok(Tensor::from_data(
        TensorData::new(buffer, [1, 3, h, w]),
        device,
    ))
}

/// The embedding (one row) of a user's query: its visual parts through the model with camera id
/// `camera` (no captions: a user's image comes without one), its text through the text head,
/// combined as in the evaluation protocols.
pub fn embed_query<B: Backend>(
    model: &NextModel<B>,
    spec: &QuerySpec,
    transform: TransformConfig,
    camera: i64,
    device: &B::Device,
) -> Result<Extracted, TrainError> {
    let set = spec.modalities()?;
    let parts = QueryParts::of(set);
    let [h, w] = transform.size.map(|v| v as usize);
    let blank = || Tensor::<B, 4>::zeros([1, 3, h, w], device);
    let mut images = [blank(), blank(), blank()];
    for (slot, path) in images.iter_mut().zip(&spec.images) {
        if let Some(path) = path {
            *slot = image_tensor::<B>(path, &transform, false, device)?;
        }
    }
    let sketch = match &spec.sketch {
        Some(path) => Some(image_tensor::<B>(path, &transform, true, device)?),
        None => None,
    };
    let mut embeddings = Vec::new();
    for part in parts.visual {
        let (images, presence) = visual_inputs(images.clone(), sketch.clone(), part, 1)?;
        embeddings.push(model.inference_present_with_text(
            images,
            Some(camera_ids::<B>(camera, 1, device)),
            None,
            &presence,
        )?);
    }
    if let Some(text) = spec.text.as_ref().filter(|_| parts.text) {
        embeddings.push(model.text_query_embedding(std::slice::from_ref(text))?);
    }
    let embedding = combine_parts(embeddings)?;
    let dim = embedding.dims()[1];
    let mut rows = Vec::new();
    crate::evaluate::append_rows(&mut rows, embedding)?;
    Ok(Extracted {
        features: Features::new(rows, 1, dim)?,
        meta: vec![SampleMeta::new(-1, -1, -1)],
        keys: vec![spec.key()],
    })
}

/// The sketches `[B, 3, H, W]` of a batch, when some of its records have one.
pub(crate) fn batch_sketch<B: Backend>(batch: &TripletBatch<B>) -> Option<Tensor<B, 4>> {
    batch.sketch.clone()
}

/// Whether some query and some gallery record have a sketch.
pub(crate) fn dataset_has_sketches(dataset: &Dataset) -> bool {
    let any = |records: &[next_data::TripletRecord]| records.iter().any(|r| r.sketch.is_some());
    any(&dataset.query) || any(&dataset.gallery)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_without_anything_or_with_an_empty_text_is_an_error() {
        let none = QuerySpec::default();
        assert!(none
            .modalities()
            .unwrap_err()
            .to_string()
            .contains("at least one"));
        let empty = QuerySpec {
            text: Some("  ".into()),
            ..QuerySpec::default()
        };
        assert!(empty
            .modalities()
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let both = QuerySpec {
            text: Some("a man in grey".into()),
            sketch: Some("s/q.png".into()),
            ..QuerySpec::default()
        };
        assert_eq!(both.modalities().unwrap().label(), "S+text");
        assert_eq!(both.key(), "q.png + \"a man in grey\"");
    }
}
