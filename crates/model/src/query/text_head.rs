//! The text query head: the frozen CLIP text encoder's features of a description (its projected
//! end-of-text feature and its token features) mapped into the identity space `[3D]`.

use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, softmax};

/// Additive attention score of a padding token (exp underflows to exactly 0 in f32).
const PADDING: f32 = -1.0e9;

/// The frozen text encoder's output for a batch of descriptions (no gradient).
#[derive(Debug, Clone)]
pub struct TextQueryInput<B: Backend> {
    /// Projected end-of-text features `[B, D]`.
    pub eot: Tensor<B, 2>,
    /// Token features `[B, L, W]` after the final layer norm (W = text width).
    pub tokens: Tensor<B, 3>,
    /// `[B, L]`: 1 for a token of the description, 0 for padding.
    pub mask: Tensor<B, 2>,
}

/// Attention pooling of the token features with one learned query, concatenated with the EOT
/// feature, then a two-layer MLP to the identity feature width.
#[derive(Module, Debug)]
pub struct TextQueryHead<B: Backend> {
    /// Token features `W` to `D`.
    pub token_projection: Linear<B>,
    /// The pooling query `[1, D]`.
    pub pool_query: Param<Tensor<B, 2>>,
    /// Layer norm of `[EOT, pooled]` (`2D`).
    pub norm: LayerNorm<B>,
    /// `2D` to the hidden width.
    pub hidden: Linear<B>,
    /// Hidden width to the identity feature `3D`.
    pub output: Linear<B>,
}

impl<B: Backend> TextQueryHead<B> {
    /// A fresh head for text width `text_width`, token width `dim` and MLP width `hidden`
    /// (0 = `2 dim`).
    pub fn new(text_width: usize, dim: usize, hidden: usize, device: &B::Device) -> Self {
        let hidden = if hidden == 0 { 2 * dim } else { hidden };
        Self {
            token_projection: LinearConfig::new(text_width, dim).init(device),
            pool_query: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([1, dim], device),
            norm: LayerNormConfig::new(2 * dim).init(device),
            hidden: LinearConfig::new(2 * dim, hidden).init(device),
            output: LinearConfig::new(hidden, 3 * dim).init(device),
        }
    }

    /// Identity-space features `[B, 3D]` (not normalised) of `input`.
    pub fn forward(&self, input: TextQueryInput<B>) -> Tensor<B, 2> {
        let [batch, len, _] = input.tokens.dims();
        let dim = self.pool_query.dims()[1];
        let keys = self.token_projection.forward(input.tokens); // [B, L, D]
        let query = self.pool_query.val().reshape([1, dim, 1]);
        let scores = keys
            .clone()
            .matmul(query.expand([batch, dim, 1]))
            .reshape([batch, len])
            .div_scalar((dim as f32).sqrt());
        let scores = scores + (input.mask.neg() + 1.0) * PADDING;
        let weights = softmax(scores, 1).reshape([batch, 1, len]);
        let pooled = weights.matmul(keys).reshape([batch, dim]);
        let x = self.norm.forward(Tensor::cat(vec![input.eot, pooled], 1));
        self.output.forward(gelu(self.hidden.forward(x)))
    }
}
