//! Fused transformer ops with fast CPU kernels: QuickGELU, softmax over the last dimension,
//! layer norm and the attention head merge, each with its backward pass.
//!
//! Each function is generic over `B: Backend` (so is the model). On Flex and `Autodiff<Flex>`
//! (the CPU backends, recognised by type at run time) f32 tensors go to multi-threaded,
//! vectorised kernels ([`flex`]); every other backend, float type or checkpointing strategy gets
//! the composition of Burn ops, which is also the reference the kernels are tested against.
//! Flex's own ops evaluate `exp` one scalar at a time on one thread and, under autodiff, split
//! layer norm and softmax into many element-wise ops: this is what the kernels replace.

mod flex;
mod simd;

use std::any::{Any, TypeId};

use burn::backend::{Autodiff, Flex};
use burn::nn::LayerNorm;
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};

pub use simd::QUICK_GELU_SLOPE;

/// QuickGELU, OpenAI CLIP's activation: `x * sigmoid(1.702 x)`.
pub fn quick_gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let x = match primitive_of::<B, Flex, D>(x) {
        Ok(p) => return tensor_of::<B, Flex, D>(flex::quick_gelu(&p)),
        Err(x) => x,
    };
    let x = match primitive_of::<B, Autodiff<Flex>, D>(x) {
        Ok(p) => return tensor_of::<B, Autodiff<Flex>, D>(flex::quick_gelu_autodiff(p)),
        Err(x) => x,
    };
    quick_gelu_reference(x)
}

/// QuickGELU as a composition of Burn ops (the path of backends without a kernel).
pub fn quick_gelu_reference<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone() * sigmoid(x * QUICK_GELU_SLOPE)
}

/// Softmax over the last dimension.
pub fn softmax_last<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let x = match primitive_of::<B, Flex, D>(x) {
        Ok(p) => return tensor_of::<B, Flex, D>(flex::softmax_last(&p)),
        Err(x) => x,
    };
    let x = match primitive_of::<B, Autodiff<Flex>, D>(x) {
        Ok(p) => return tensor_of::<B, Autodiff<Flex>, D>(flex::softmax_last_autodiff(p)),
        Err(x) => x,
    };
    softmax(x, D - 1)
}

/// Attention heads `[B, H, T, d]` merged into `[B, T, H * d]` (`swap_dims(1, 2)` then a
/// reshape, as one parallel copy on the CPU; its backward pass splits the gradient the same way).
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [batch, heads, tokens, dim] = x.dims();
    let merged = [batch, tokens, heads * dim];
    let x = match primitive_of::<B, Flex, 4>(x) {
        Ok(p) => return tensor_of::<B, Flex, 4>(flex::swap_middle(&p)).reshape(merged),
        Err(x) => x,
    };
    let x = match primitive_of::<B, Autodiff<Flex>, 4>(x) {
        Ok(p) => {
            return tensor_of::<B, Autodiff<Flex>, 4>(flex::swap_middle_autodiff(p)).reshape(merged)
        }
        Err(x) => x,
    };
    x.swap_dims(1, 2).reshape(merged)
}

/// `norm(x)` for a layer norm built with epsilon `eps`; under `Autodiff<Flex>` as one fused node
/// (Burn's layer norm is fused on Flex for inference only, and splits into many ops under
/// autodiff).
pub fn layer_norm<B: Backend, const D: usize>(
    norm: &LayerNorm<B>,
    eps: f64,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    let Some(beta) = &norm.beta else {
        return norm.forward(x);
    };
    let x = match primitive_of::<B, Autodiff<Flex>, D>(x) {
        Ok(p) => p,
        Err(x) => return norm.forward(x),
    };
    let params = (
        primitive_of::<B, Autodiff<Flex>, 1>(norm.gamma.val()),
        primitive_of::<B, Autodiff<Flex>, 1>(beta.val()),
    );
    match params {
        (Ok(gamma), Ok(beta)) => {
            tensor_of::<B, Autodiff<Flex>, D>(flex::layer_norm_autodiff(x, gamma, beta, eps))
        }
        // Parameters in another float type than the input: Burn's op.
        _ => norm.forward(tensor_of::<B, Autodiff<Flex>, D>(x)),
    }
}

/// `x`'s float primitive as backend `K`'s when `B` is `K` and `x` is plain f32; `x` otherwise.
fn primitive_of<B: Backend, K: Backend, const D: usize>(
    x: Tensor<B, D>,
) -> Result<K::FloatTensorPrimitive, Tensor<B, D>> {
    if TypeId::of::<B>() != TypeId::of::<K>() || x.dtype() != DType::F32 {
        return Err(x);
    }
    match x.into_primitive() {
        TensorPrimitive::Float(p) => {
            cast(p).map_err(|p| Tensor::from_primitive(TensorPrimitive::Float(p)))
        }
        other => Err(Tensor::from_primitive(other)),
    }
}

/// The tensor of backend `B` holding `p`, a primitive of `K`; only called when `B` is `K`.
fn tensor_of<B: Backend, K: Backend, const D: usize>(p: K::FloatTensorPrimitive) -> Tensor<B, D> {
    match cast::<_, B::FloatTensorPrimitive>(p) {
        Ok(p) => Tensor::from_primitive(TensorPrimitive::Float(p)),
        Err(_) => unreachable!("tensor_of is only called after primitive_of matched the backend"),
    }
}

/// `value` as type `T` when `S` is `T`.
fn cast<S: 'static, T: 'static>(value: S) -> Result<T, S> {
    let mut slot = Some(value);
    let taken = (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take);
    match (taken, slot) {
        (Some(t), _) => Ok(t),
        (None, Some(s)) => Err(s),
        (None, None) => unreachable!("the value is either taken or still in the slot"),
    }
}
