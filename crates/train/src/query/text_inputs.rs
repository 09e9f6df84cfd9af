//! Cache of the frozen text encoder's outputs for the text query head, per distinct description:
//! the EOT feature and the token features up to the description's length. The encoder is
//! frozen, so a cached row is exactly what re-encoding would give.

use crate::TrainError;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use next_model::{NextModel, TextQueryInput};
use std::collections::HashMap;

/// One encoded description: EOT feature `[D]`, tokens `[len, W]` (padding cut off).
#[derive(Debug, Clone)]
struct EncodedText {
    eot: Vec<f32>,
    tokens: Vec<f32>,
    len: usize,
}

/// Text-head inputs of every description seen so far (trimmed text -> encoder output).
#[derive(Debug, Default)]
pub struct TextInputCache {
    rows: HashMap<String, EncodedText>,
    width: usize,
}

impl TextInputCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Distinct descriptions encoded so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether nothing was encoded yet.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The text-head input of `texts` (each non-empty), padded to the longest of them, encoding
    /// only the descriptions not seen before.
    pub fn inputs<B: Backend>(
        &mut self,
        model: &NextModel<B>,
        texts: &[String],
        device: &B::Device,
    ) -> Result<TextQueryInput<B>, TrainError> {
        let keys: Vec<&str> = texts.iter().map(|t| t.trim()).collect();
        let mut fresh: Vec<String> = Vec::new();
        for key in &keys {
            if !self.rows.contains_key(*key) && !fresh.iter().any(|f| f == key) {
                fresh.push((*key).to_string());
            }
        }
        if !fresh.is_empty() {
            let encoded = model.encode_query_texts(&fresh)?;
            let [_, len, width] = encoded.tokens.dims();
            self.width = width;
            let eot = host(encoded.eot, "text EOT features")?;
            let tokens = host(encoded.tokens, "text token features")?;
            let mask = host(encoded.mask, "text mask")?;
            let dim = eot.len() / fresh.len();
            for (i, text) in fresh.into_iter().enumerate() {
                let used = mask[i * len..(i + 1) * len]
                    .iter()
                    .filter(|&&m| m > 0.5)
                    .count()
                    .max(1);
                let start = i * len * width;
                self.rows.insert(
                    text,
                    EncodedText {
                        eot: eot[i * dim..(i + 1) * dim].to_vec(),
                        tokens: tokens[start..start + used * width].to_vec(),
                        len: used,
                    },
                );
            }
        }
        let rows: Vec<&EncodedText> = keys
            .iter()
            .map(|k| {
                self.rows
                    .get(*k)
                    .ok_or_else(|| TrainError::Input(format!("text query {k:?} was not encoded")))
            })
            .collect::<Result<_, _>>()?;
        let n = rows.len();
        let longest = rows.iter().map(|r| r.len).max().unwrap_or(1);
        let (width, dim) = (self.width, rows.first().map_or(0, |r| r.eot.len()));
        let mut eot = Vec::with_capacity(n * dim);
        let mut tokens = vec![0.0f32; n * longest * width];
        let mut mask = vec![0.0f32; n * longest];
        for (i, row) in rows.iter().enumerate() {
            eot.extend_from_slice(&row.eot);
            let start = i * longest * width;
            tokens[start..start + row.tokens.len()].copy_from_slice(&row.tokens);
            mask[i * longest..i * longest + row.len].fill(1.0);
        }
        Ok(TextQueryInput {
            eot: Tensor::from_data(TensorData::new(eot, [n, dim]), device),
            tokens: Tensor::from_data(TensorData::new(tokens, [n, longest, width]), device),
            mask: Tensor::from_data(TensorData::new(mask, [n, longest]), device),
        })
    }
}

fn host<B: Backend, const D: usize>(
    t: Tensor<B, D>,
    what: &'static str,
) -> Result<Vec<f32>, TrainError> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| TrainError::TensorData {
            what,
            message: format!("{e:?}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use next_model::{NextConfig, TextMode};

    #[test]
    fn cached_inputs_give_the_features_of_a_fresh_encoding() {
        let device = Default::default();
        let mut config = NextConfig::tiny(3);
        config.num_cameras = 0;
        config.text = TextMode::Off;
        config.query.text_head = true;
        let model = config.init::<Flex>(&device).unwrap();
        let texts: Vec<String> = [
            "a man in a red coat with a bag",
            "a woman",
            "a man in a red coat with a bag",
        ]
        .map(String::from)
        .to_vec();
        let direct = model.text_query_embedding(&texts).unwrap();
        let mut cache = TextInputCache::new();
        let input = cache.inputs(&model, &texts, &device).unwrap();
        assert_eq!(cache.len(), 2);
        let cached = model.query_embedding(model.text_query_feature(input).unwrap());
        let diff: f32 = (direct - cached).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
        cache.inputs(&model, &texts[1..2], &device).unwrap();
        assert_eq!(cache.len(), 2);
    }
}
