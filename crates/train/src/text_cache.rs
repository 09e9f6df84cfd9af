//! Cache of frozen text-encoder features per distinct caption text.
//!
//! The CLIP text encoder of NEXT is frozen, so the feature of a given (sampled) caption never
//! changes during a run: encoding each distinct text once and reusing its row gives the same
//! features as re-encoding every step, at a fraction of the cost (text encoding dominated the
//! training step of the small demo model).

use crate::TrainError;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use next_model::{NextModel, SampleCaptions, SentenceSampler, TextMode};
use std::collections::HashMap;

/// Projected text features of every caption text seen so far (trimmed text -> row of D floats).
#[derive(Debug, Default)]
pub struct TextFeatureCache {
    rows: HashMap<String, Vec<f32>>,
    encoded: usize,
    looked_up: usize,
}

impl TextFeatureCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Distinct texts encoded so far and total lookups (for logs).
    pub fn stats(&self) -> (usize, usize) {
        (self.encoded, self.looked_up)
    }

    /// Features `[len, D]` of `texts` (zero row for a missing or blank caption), encoding only
    /// the texts not seen before with the model's frozen text encoder.
    pub fn features<B: Backend>(
        &mut self,
        model: &NextModel<B>,
        texts: &[Option<String>],
        device: &B::Device,
    ) -> Result<Tensor<B, 2>, TrainError> {
        let dim = model.dim();
        let keys: Vec<Option<&str>> = texts
            .iter()
            .map(|t| t.as_deref().map(str::trim).filter(|t| !t.is_empty()))
            .collect();
        let mut fresh: Vec<String> = Vec::new();
        for key in keys.iter().flatten() {
            if !self.rows.contains_key(*key) && !fresh.iter().any(|f| f == key) {
                fresh.push((*key).to_string());
            }
        }
        if !fresh.is_empty() {
            let wrapped: Vec<Option<String>> = fresh.iter().cloned().map(Some).collect();
            let encoded = model.encode_texts(&wrapped)?;
            let values: Vec<f32> = encoded
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .map_err(|e| TrainError::TensorData {
                    what: "text features",
                    message: format!("{e:?}"),
                })?;
            for (i, text) in fresh.into_iter().enumerate() {
                self.rows
                    .insert(text, values[i * dim..(i + 1) * dim].to_vec());
                self.encoded += 1;
            }
        }
        let mut flat = Vec::with_capacity(keys.len() * dim);
        for key in &keys {
            match key.and_then(|k| self.rows.get(k)) {
                Some(row) => flat.extend_from_slice(row),
                None => flat.extend(std::iter::repeat_n(0.0f32, dim)),
            }
        }
        self.looked_up += keys.len();
        Ok(Tensor::from_data(
            TensorData::new(flat, [keys.len(), dim]),
            device,
        ))
    }

    /// Training text features `[B, K_s, 3, D]`: one sentence-sampled caption per sample, expert
    /// and modality, drawn from `sampler` in the order of `NextModel::training_texts` (the one
    /// `NextModel::forward_train` uses).
    /// `None` when the caller must fall back to `forward_train` (no semantic experts, or a
    /// missing caption in `required` text mode, which `forward_train` reports as an error).
    pub fn training_features<B: Backend>(
        &mut self,
        model: &NextModel<B>,
        captions: &[SampleCaptions],
        sampler: &mut SentenceSampler,
        device: &B::Device,
    ) -> Result<Option<Tensor<B, 4>>, TrainError> {
        let k_s = model.tmse.as_ref().map_or(0, |t| t.num_experts());
        let missing = captions.iter().flatten().any(Option::is_none);
        if k_s == 0 || (missing && model.config.text == TextMode::Required) {
            return Ok(None);
        }
        let texts = model.training_texts(captions, sampler);
        let table = self.features(model, &texts, device)?;
        Ok(Some(table.reshape([captions.len(), k_s, 3, model.dim()])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use next_model::{NextConfig, NextInput};

    type B = Flex;

    fn captions() -> Vec<SampleCaptions> {
        let c = |s: &str| Some(s.to_string());
        vec![
            [
                c("A man in a red coat. He carries a bag. Grey trousers."),
                c("A man. Striped top."),
                None,
            ],
            [
                c("A woman in green. White shoes."),
                c("A man in a red coat. He carries a bag. Grey trousers."),
                c("  "),
            ],
        ]
    }

    #[test]
    fn cached_training_features_match_forward_train_and_encode_each_text_once() {
        let device = Default::default();
        let mut config = NextConfig::tiny(3);
        config.num_cameras = 0;
        config.text = TextMode::Optional;
        let model = config.init::<B>(&device).unwrap();
        let images = || [0, 1, 2].map(|_| Tensor::<B, 4>::ones([2, 3, 32, 16], &device));
        let reference = model
            .forward_train(
                NextInput {
                    images: images(),
                    camera_ids: None,
                    captions: Some(captions()),
                },
                &mut model.sentence_sampler(7),
            )
            .unwrap();
        let mut cache = TextFeatureCache::new();
        let mut sampler = model.sentence_sampler(7);
        let text = cache
            .training_features(&model, &captions(), &mut sampler, &device)
            .unwrap()
            .expect("semantic experts use text");
        let cached = model.forward_with_text(images(), None, Some(text)).unwrap();
        let diff: f32 = (reference.feature - cached.feature)
            .abs()
            .max()
            .into_scalar();
        assert!(diff < 1e-5, "cached features differ by {diff}");
        let (encoded, looked_up) = cache.stats();
        assert_eq!(looked_up, 2 * 3 * 3);
        assert!(
            encoded > 0 && encoded < looked_up,
            "{encoded} of {looked_up}"
        );
        // A second lookup of the same texts encodes nothing new.
        let texts: Vec<Option<String>> = captions().into_iter().flatten().collect();
        let before = cache.stats().0;
        let first = cache.features(&model, &texts, &device).unwrap();
        let after_first = cache.stats().0;
        assert!(
            after_first <= before + 4,
            "at most four distinct whole captions"
        );
        let again = cache.features(&model, &texts, &device).unwrap();
        assert_eq!(cache.stats().0, after_first);
        assert_eq!(first.into_data(), again.into_data());
    }
}
