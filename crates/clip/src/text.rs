//! The CLIP text transformer: causal, pooled at the end-of-text token.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Initializer, LayerNorm, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::config::ClipTextConfig;
use crate::layers::{layer_norm, ClipEncoder};

/// Additive value that blocks attention to a position.
const BLOCKED: f32 = -1.0e9;

/// Token and position embeddings (`text_model.embeddings.*`).
#[derive(Module, Debug)]
pub struct TextEmbeddings<B: Backend> {
    /// Token embedding table `[vocab, width]`.
    pub token_embedding: Embedding<B>,
    /// Position embedding table `[context, width]`.
    pub position_embedding: Embedding<B>,
}

/// CLIP text encoder (`text_model` plus `text_projection` in Hugging Face names).
#[derive(Module, Debug)]
pub struct ClipText<B: Backend> {
    /// Token embeddings.
    pub embeddings: TextEmbeddings<B>,
    /// The causal transformer layers.
    pub encoder: ClipEncoder<B>,
    /// Final layer norm.
    pub final_layer_norm: LayerNorm<B>,
    /// Projection of the end-of-text token into the joint space (no bias).
    pub text_projection: Linear<B>,
    /// Token id that ends a text; pooling happens at its first occurrence.
    pub eos_token_id: usize,
}

/// Output of [`ClipText::forward`].
#[derive(Debug, Clone)]
pub struct TextOutput<B: Backend> {
    /// `[B, T, width]`: every token after the final layer norm (Hugging Face `last_hidden_state`).
    pub tokens: Tensor<B, 3>,
    /// `[B, P]`: the projected end-of-text token (Hugging Face `text_embeds`).
    pub pooled: Tensor<B, 2>,
}

impl<B: Backend> ClipText<B> {
    /// Randomly initialised text tower.
    pub fn new(config: &ClipTextConfig, projection_dim: usize, device: &B::Device) -> Self {
        let width = config.hidden_size;
        let normal = |std: f64| Initializer::Normal { mean: 0.0, std };
        Self {
            embeddings: TextEmbeddings {
                token_embedding: EmbeddingConfig::new(config.vocab_size, width)
                    .with_initializer(normal(0.02))
                    .init(device),
                position_embedding: EmbeddingConfig::new(config.max_position_embeddings, width)
                    .with_initializer(normal(0.01))
                    .init(device),
            },
            encoder: ClipEncoder::new(
                config.num_hidden_layers,
                width,
                config.num_attention_heads,
                config.intermediate_size,
                config.layer_norm_eps,
                device,
            ),
            final_layer_norm: layer_norm(width, config.layer_norm_eps, device),
            text_projection: LinearConfig::new(width, projection_dim)
                .with_bias(false)
                .init(device),
            eos_token_id: config.effective_eos_token_id(),
        }
    }

    /// Width of the projected embedding.
    pub fn output_dim(&self) -> usize {
        self.text_projection.weight.dims()[1]
    }

    /// Longest sequence the position table allows (77 for CLIP).
    pub fn context_length(&self) -> usize {
        self.embeddings.position_embedding.weight.dims()[0]
    }

    /// Mark every parameter as not requiring gradients, so that no autodiff graph is recorded
    /// through the text tower (frozen use).
    pub fn frozen(self) -> Self {
        self.no_grad()
    }

    /// Encode `input_ids` `[B, T]` with `attention_mask` `[B, T]` (1 = token, 0 = padding).
    ///
    /// Pools at the first `eos_token_id` of each row; a row without one pools at its last
    /// attended position.
    ///
    /// # Panics
    /// When `T` exceeds [`ClipText::context_length`] or an id is outside the vocabulary.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> TextOutput<B> {
        let [batch, seq] = input_ids.dims();
        assert!(
            seq <= self.context_length(),
            "ClipText::forward: {seq} tokens exceed the context length {}",
            self.context_length()
        );
        let device = input_ids.device();
        let positions = Tensor::<B, 1, Int>::arange(0..seq as i64, &device).reshape([1, seq]);
        let x = self.embeddings.token_embedding.forward(input_ids.clone())
            + self.embeddings.position_embedding.forward(positions);

        let mask = attention_bias(attention_mask.clone(), &device);
        let x = self.encoder.forward(x, Some(mask));
        let tokens = self.final_layer_norm.forward(x);

        let width = tokens.dims()[2];
        let eot = self.pool_positions(input_ids, attention_mask);
        let index = eot.reshape([batch, 1, 1]).expand([batch, 1, width]);
        let pooled = tokens.clone().gather(1, index).reshape([batch, width]);
        let pooled = self.text_projection.forward(pooled);
        TextOutput { tokens, pooled }
    }

    /// Index `[B]` of the first end-of-text token per row, or of the last attended position when
    /// a row has none (never `argmax(ids)`, which breaks when padding reuses the EOT id).
    pub fn pool_positions(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Tensor<B, 1, Int> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let position = Tensor::<B, 1, Int>::arange(0..seq as i64, &device)
            .reshape([1, seq])
            .expand([batch, seq]);
        let is_eot = input_ids.equal_elem(self.eos_token_id as i64);
        let has_eot = is_eot.clone().any_dim(1);
        // Earlier positions score higher, so the maximum is the first EOT.
        let eot_score = is_eot.int() * (position.clone().neg() + seq as i64);
        let first_eot = eot_score.argmax(1);
        // Later attended positions score higher, so the maximum is the last attended one.
        let mask_score = attention_mask.greater_elem(0).int() * (position + 1);
        let last_attended = mask_score.argmax(1);
        last_attended
            .mask_where(has_eot, first_eot)
            .reshape([batch])
    }
}

/// Additive attention bias `[B, 1, T, T]`: causal (no looking ahead) and no attention to padding.
fn attention_bias<B: Backend>(
    attention_mask: Tensor<B, 2, Int>,
    device: &B::Device,
) -> Tensor<B, 4> {
    let [batch, seq] = attention_mask.dims();
    let causal: Vec<f32> = (0..seq * seq)
        .map(|i| if i % seq > i / seq { BLOCKED } else { 0.0 })
        .collect();
    let causal = Tensor::<B, 2>::from_data(TensorData::new(causal, [seq, seq]), device)
        .reshape([1, 1, seq, seq])
        .expand([batch, 1, seq, seq]);
    let padding = attention_mask.equal_elem(0).float() * BLOCKED;
    causal
        + padding
            .reshape([batch, 1, 1, seq])
            .expand([batch, 1, seq, seq])
}
