//! The pre-norm transformer shared by both towers, named as in Hugging Face's CLIP
//! (`self_attn.{q,k,v,out}_proj`, `layer_norm1`, `mlp.fc1`, `mlp.fc2`, `layer_norm2`).

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor};

use crate::kernels;
use crate::precision::{linear_in, to_compute, to_full, Precision};

/// QuickGELU, OpenAI CLIP's activation: `x * sigmoid(1.702 x)` (a fused kernel on the CPU).
pub fn quick_gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    kernels::quick_gelu(x)
}

/// Multi-head self-attention with separate query/key/value/output projections.
#[derive(Module, Debug)]
pub struct ClipAttention<B: Backend> {
    /// Query projection.
    pub q_proj: Linear<B>,
    /// Key projection.
    pub k_proj: Linear<B>,
    /// Value projection.
    pub v_proj: Linear<B>,
    /// Output projection.
    pub out_proj: Linear<B>,
    /// Number of heads.
    pub num_heads: usize,
}

impl<B: Backend> ClipAttention<B> {
    /// Randomly initialised attention of the given width and head count.
    pub fn new(width: usize, num_heads: usize, device: &B::Device) -> Self {
        let linear = || LinearConfig::new(width, width).init(device);
        Self {
            q_proj: linear(),
            k_proj: linear(),
            v_proj: linear(),
            out_proj: linear(),
            num_heads,
        }
    }

    /// Attend over `x` `[B, T, D]`; `mask` is added to the scores `[B, 1, T, T]` (0 = keep,
    /// large negative = block).
    pub fn forward(&self, x: Tensor<B, 3>, mask: Option<Tensor<B, 4>>) -> Tensor<B, 3> {
        self.forward_in(x, mask, Precision::F32)
    }

    /// [`Self::forward`] with the projections and both attention products in `precision`;
    /// scores get the mask and softmax in the input's float type, as does the output.
    pub fn forward_in(
        &self,
        x: Tensor<B, 3>,
        mask: Option<Tensor<B, 4>>,
        precision: Precision,
    ) -> Tensor<B, 3> {
        let full = FloatDType::from(x.dtype());
        let half = precision.half_dtype();
        let x = to_compute(x, half);
        let [batch, tokens, width] = x.dims();
        let head_dim = width / self.num_heads;
        let scale = (head_dim as f64).powf(-0.5);
        let split = |t: Tensor<B, 3>| {
            t.reshape([batch, tokens, self.num_heads, head_dim])
                .swap_dims(1, 2)
        };
        let q = split(linear_in(&self.q_proj, x.clone(), half) * scale);
        let k = split(linear_in(&self.k_proj, x.clone(), half));
        let v = split(linear_in(&self.v_proj, x, half));
        let mut scores = to_full(q.matmul(k.swap_dims(2, 3)), half, full);
        if let Some(mask) = mask {
            scores = scores + mask;
        }
        let weights = to_compute(kernels::softmax_last(scores), half);
        let context = kernels::merge_heads(weights.matmul(v));
        to_full(linear_in(&self.out_proj, context, half), half, full)
    }
}

/// Two-layer MLP with QuickGELU.
#[derive(Module, Debug)]
pub struct ClipMlp<B: Backend> {
    /// Expansion layer.
    pub fc1: Linear<B>,
    /// Contraction layer.
    pub fc2: Linear<B>,
}

impl<B: Backend> ClipMlp<B> {
    /// Randomly initialised MLP `width -> hidden -> width`.
    pub fn new(width: usize, hidden: usize, device: &B::Device) -> Self {
        Self {
            fc1: LinearConfig::new(width, hidden).init(device),
            fc2: LinearConfig::new(hidden, width).init(device),
        }
    }

    /// Apply to `[B, T, D]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.forward_in(x, Precision::F32)
    }

    /// [`Self::forward`] with both layers and the activation in `precision`; the output is in
    /// the input's float type.
    pub fn forward_in(&self, x: Tensor<B, 3>, precision: Precision) -> Tensor<B, 3> {
        let full = FloatDType::from(x.dtype());
        let half = precision.half_dtype();
        let hidden = quick_gelu(linear_in(&self.fc1, to_compute(x, half), half));
        to_full(linear_in(&self.fc2, hidden, half), half, full)
    }
}

/// One pre-norm transformer layer: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Module, Debug)]
pub struct ClipEncoderLayer<B: Backend> {
    /// Self-attention.
    pub self_attn: ClipAttention<B>,
    /// Norm before attention.
    pub layer_norm1: LayerNorm<B>,
    /// Feed-forward block.
    pub mlp: ClipMlp<B>,
    /// Norm before the MLP.
    pub layer_norm2: LayerNorm<B>,
    /// Epsilon of both norms (Burn's `LayerNorm` keeps its own private).
    pub layer_norm_eps: f64,
}

impl<B: Backend> ClipEncoderLayer<B> {
    /// Randomly initialised layer.
    pub fn new(width: usize, heads: usize, hidden: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            self_attn: ClipAttention::new(width, heads, device),
            layer_norm1: layer_norm(width, eps, device),
            mlp: ClipMlp::new(width, hidden, device),
            layer_norm2: layer_norm(width, eps, device),
            layer_norm_eps: eps,
        }
    }

    /// Apply to `[B, T, D]` with an optional additive attention mask `[B, 1, T, T]`.
    pub fn forward(&self, x: Tensor<B, 3>, mask: Option<Tensor<B, 4>>) -> Tensor<B, 3> {
        self.forward_in(x, mask, Precision::F32)
    }

    /// [`Self::forward`] with the attention and MLP products in `precision` (norms and the
    /// residual stream stay in the input's float type).
    pub fn forward_in(
        &self,
        x: Tensor<B, 3>,
        mask: Option<Tensor<B, 4>>,
        precision: Precision,
    ) -> Tensor<B, 3> {
        let eps = self.layer_norm_eps;
        let normed = kernels::layer_norm(&self.layer_norm1, eps, x.clone());
        let x = x + self.self_attn.forward_in(normed, mask, precision);
        let normed = kernels::layer_norm(&self.layer_norm2, eps, x.clone());
        x + self.mlp.forward_in(normed, precision)
    }
}

/// A stack of encoder layers (`encoder.layers.N` in Hugging Face names).
#[derive(Module, Debug)]
pub struct ClipEncoder<B: Backend> {
    /// The layers, applied in order.
    pub layers: Vec<ClipEncoderLayer<B>>,
    /// Precision of the matrix products (not saved with the weights; f32 unless set).
    pub precision: Precision,
}

impl<B: Backend> ClipEncoder<B> {
    /// Randomly initialised stack of `depth` layers.
    pub fn new(
        depth: usize,
        width: usize,
        heads: usize,
        hidden: usize,
        eps: f64,
        device: &B::Device,
    ) -> Self {
        let layers = (0..depth)
            .map(|_| ClipEncoderLayer::new(width, heads, hidden, eps, device))
            .collect();
        Self {
            layers,
            precision: Precision::F32,
        }
    }

    /// Apply every layer with the same optional mask, in [`Self::precision`].
    pub fn forward(&self, mut x: Tensor<B, 3>, mask: Option<Tensor<B, 4>>) -> Tensor<B, 3> {
        for layer in &self.layers {
            x = layer.forward_in(x, mask.clone(), self.precision);
        }
        x
    }
}

/// Layer norm with the given epsilon.
pub fn layer_norm<B: Backend>(width: usize, eps: f64, device: &B::Device) -> LayerNorm<B> {
    LayerNormConfig::new(width).with_epsilon(eps).init(device)
}
