//! Mixed precision for the transformer: matrix products in a 16-bit float type while the
//! parameters (the optimiser's master weights), layer norms, softmax and the residual stream
//! stay in full precision, as PyTorch's autocast does.

use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor};
use serde::{Deserialize, Serialize};

/// Arithmetic precision of the transformer's matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Everything in the tensors' own float type (f32): the reference path.
    #[default]
    F32,
    /// Matrix products in bfloat16 (f32's exponent range: no loss scaling needed).
    Bf16,
    /// Matrix products in IEEE half (small exponent range: training needs loss scaling).
    F16,
}

impl Precision {
    /// Every precision, in declaration order.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::Bf16, Precision::F16];

    /// The 16-bit compute type, or `None` for the full-precision path.
    pub fn half_dtype(self) -> Option<FloatDType> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(FloatDType::BF16),
            Precision::F16 => Some(FloatDType::F16),
        }
    }

    /// Whether training in this precision needs the loss scaled (gradients underflow in f16).
    pub fn needs_loss_scaling(self) -> bool {
        self == Precision::F16
    }
}

/// Convert `x` to the compute type `half` (identity when `None`).
pub fn to_compute<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    half: Option<FloatDType>,
) -> Tensor<B, D> {
    match half {
        Some(dtype) => x.cast(dtype),
        None => x,
    }
}

/// Convert `x` back to `full` when a compute type was used (identity when `half` is `None`).
pub fn to_full<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    half: Option<FloatDType>,
    full: FloatDType,
) -> Tensor<B, D> {
    match half {
        Some(_) => x.cast(full),
        None => x,
    }
}

/// `layer(x)` with `x` already in the compute type `half`: the weight and bias are cast per
/// call, so gradients reach the full-precision parameters through the cast.
///
/// The leading dimensions are flattened so that one `[rows, in] x [in, out]` product runs instead
/// of a batch of small ones (and the backward pass gets the weight gradient from one product
/// rather than summing a `[B, in, out]` batch): the same per-row arithmetic, bit-identical.
pub fn linear_in<B: Backend, const D: usize>(
    layer: &Linear<B>,
    x: Tensor<B, D>,
    half: Option<FloatDType>,
) -> Tensor<B, D> {
    let dims = x.dims();
    let [d_in, d_out] = layer.weight.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    let flat: Tensor<B, 2> = x.reshape([rows, d_in]);
    let out = match half {
        None => layer.forward(flat),
        Some(dtype) => burn::tensor::module::linear(
            flat,
            layer.weight.val().cast(dtype),
            layer.bias.as_ref().map(|b| b.val().cast(dtype)),
        ),
    };
    let mut out_dims = dims;
    out_dims[D - 1] = d_out;
    out.reshape(out_dims)
}
