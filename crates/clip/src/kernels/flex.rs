//! The fused kernels on Flex tensors, multi-threaded with rayon, and their autodiff nodes for
//! `Autodiff<Flex>` (Burn's backend-extension pattern: a [`Backward`] step per fused op).

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::BackendTypes;
use burn::tensor::{Bytes, DType, Shape, TensorMetadata};
use rayon::prelude::*;

use super::simd;

/// Float tensor primitive of `Autodiff<Flex>`.
pub type AutodiffFlexTensor = <Autodiff<Flex> as BackendTypes>::FloatTensorPrimitive;

/// Elements per rayon task: below this, splitting costs more than it saves.
const TASK_ELEMENTS: usize = 16 * 1024;

/// Rows of `row` elements per rayon task (a fixed split, so results do not depend on threads).
fn rows_per_task(row: usize) -> usize {
    (TASK_ELEMENTS / row.max(1)).max(1)
}

/// A contiguous f32 Flex tensor holding `values`.
fn f32_tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// Last dimension of `t` (1 for a scalar).
fn last_dim(t: &FlexTensor) -> usize {
    t.shape().last().copied().unwrap_or(1)
}

/// QuickGELU `x * sigmoid(1.702 x)` of an f32 tensor.
pub fn quick_gelu(x: &FlexTensor) -> FlexTensor {
    let x = x.to_contiguous();
    let src = x.storage::<f32>();
    let mut out = vec![0.0f32; src.len()];
    out.par_chunks_mut(TASK_ELEMENTS)
        .zip(src.par_chunks(TASK_ELEMENTS))
        .for_each(|(y, x)| simd::quick_gelu(x, y));
    f32_tensor(out, x.shape())
}

/// QuickGELU's input gradient for input `x` and output gradient `grad`.
pub fn quick_gelu_backward(x: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
    let (src, g) = (x.storage::<f32>(), grad.storage::<f32>());
    let mut out = vec![0.0f32; src.len()];
    out.par_chunks_mut(TASK_ELEMENTS)
        .zip(src.par_chunks(TASK_ELEMENTS))
        .zip(g.par_chunks(TASK_ELEMENTS))
        .for_each(|((dx, x), g)| simd::quick_gelu_backward(x, g, dx));
    f32_tensor(out, x.shape())
}

/// Softmax over the last dimension of an f32 tensor.
pub fn softmax_last(x: &FlexTensor) -> FlexTensor {
    let x = x.to_contiguous();
    let row = last_dim(&x);
    let src = x.storage::<f32>();
    let mut out = vec![0.0f32; src.len()];
    let block = rows_per_task(row) * row;
    out.par_chunks_mut(block)
        .zip(src.par_chunks(block))
        .for_each(|(y, x)| simd::softmax_rows(x, y, row));
    f32_tensor(out, x.shape())
}

/// Softmax's input gradient from its output `y` and the output gradient.
pub fn softmax_last_backward(y: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    let (y, grad) = (y.to_contiguous(), grad.to_contiguous());
    let row = last_dim(&y);
    let (ys, g) = (y.storage::<f32>(), grad.storage::<f32>());
    let mut out = vec![0.0f32; ys.len()];
    let block = rows_per_task(row) * row;
    out.par_chunks_mut(block)
        .zip(ys.par_chunks(block))
        .zip(g.par_chunks(block))
        .for_each(|((dx, y), g)| simd::softmax_rows_backward(y, g, dx, row));
    f32_tensor(out, y.shape())
}

/// `[a, x, y, z]` contiguous to `[a, y, x, z]` contiguous (dims 1 and 2 swapped), copying runs
/// of `z` elements in parallel; Flex's own copy of such a view walks it one element at a time.
pub fn swap_middle(t: &FlexTensor) -> FlexTensor {
    let t = t.to_contiguous();
    let shape = t.shape();
    let [a, x, y, z] = [shape[0], shape[1], shape[2], shape[3]];
    let src = t.storage::<f32>();
    let mut out = vec![0.0f32; src.len()];
    if !out.is_empty() {
        // One task per output row `[a_i, y_i, .., ..]` (x runs of z).
        out.par_chunks_mut(x * z)
            .enumerate()
            .for_each(|(row, dst)| {
                let (ai, yi) = (row / y, row % y);
                for (xi, run) in dst.chunks_exact_mut(z).enumerate() {
                    let start = ((ai * x + xi) * y + yi) * z;
                    run.copy_from_slice(&src[start..start + z]);
                }
            });
    }
    f32_tensor(out, Shape::from(vec![a, y, x, z]))
}

/// What layer norm's backward pass needs: the input, the scale and each row's statistics.
#[derive(Debug, Clone)]
pub struct LayerNormSaved {
    x: FlexTensor,
    gamma: FlexTensor,
    /// `[mean, rstd]` of each row.
    stats: Arc<Vec<[f32; 2]>>,
}

/// Layer norm over the last dimension (biased variance, `eps` inside the square root).
pub fn layer_norm(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    eps: f64,
) -> (FlexTensor, LayerNormSaved) {
    let (x, gamma, beta) = (
        x.to_contiguous(),
        gamma.to_contiguous(),
        beta.to_contiguous(),
    );
    let d = last_dim(&x);
    let src = x.storage::<f32>();
    let rows = src.len() / d.max(1);
    let (gs, bs) = (gamma.storage::<f32>(), beta.storage::<f32>());
    let mut out = vec![0.0f32; src.len()];
    let mut stats = vec![[0.0f32; 2]; rows];
    let task = rows_per_task(d);
    out.par_chunks_mut(task * d)
        .zip(src.par_chunks(task * d))
        .zip(stats.par_chunks_mut(task))
        .for_each(|((y, x), stats)| simd::layer_norm_rows(x, gs, bs, eps as f32, y, stats));
    let saved = LayerNormSaved {
        x: x.clone(),
        gamma: gamma.clone(),
        stats: Arc::new(stats),
    };
    (f32_tensor(out, x.shape()), saved)
}

/// Layer norm's gradients `(dx, dgamma, dbeta)`. The scale and shift gradients are summed per
/// fixed block of rows, then the blocks in order, so they do not depend on the thread count.
pub fn layer_norm_backward(
    saved: &LayerNormSaved,
    grad: &FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let grad = grad.to_contiguous();
    let d = last_dim(&saved.x);
    let (xs, gs, g) = (
        saved.x.storage::<f32>(),
        saved.gamma.storage::<f32>(),
        grad.storage::<f32>(),
    );
    let mut dx = vec![0.0f32; xs.len()];
    let task = rows_per_task(d);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(task * d)
        .zip(xs.par_chunks(task * d).zip(g.par_chunks(task * d)))
        .zip(saved.stats.par_chunks(task))
        .map(|((dx, (x, g)), stats)| {
            let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
            simd::layer_norm_rows_backward(x, gs, stats, g, dx, &mut dgamma, &mut dbeta);
            (dgamma, dbeta)
        })
        .collect();
    let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
    for (pg, pb) in &partials {
        for ((acc, v), (acc_b, vb)) in dgamma.iter_mut().zip(pg).zip(dbeta.iter_mut().zip(pb)) {
            *acc += v;
            *acc_b += vb;
        }
    }
    let param_shape = saved.gamma.shape();
    (
        f32_tensor(dx, saved.x.shape()),
        f32_tensor(dgamma, param_shape.clone()),
        f32_tensor(dbeta, param_shape),
    )
}

/// Autodiff node of [`quick_gelu`]; keeps the input.
#[derive(Debug)]
struct QuickGeluBackward;

impl Backward<Flex, 1> for QuickGeluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            quick_gelu_backward(&x, &grad)
        });
    }
}

/// [`quick_gelu`] on `Autodiff<Flex>`.
pub fn quick_gelu_autodiff(x: AutodiffFlexTensor) -> AutodiffFlexTensor {
    let prep = QuickGeluBackward
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound();
    match prep.stateful() {
        OpsKind::Tracked(prep) => {
            let y = quick_gelu(&x.primitive);
            prep.finish(x.primitive, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(quick_gelu(&x.primitive)),
    }
}

/// Autodiff node of [`softmax_last`]; keeps the output.
#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<Flex, 1> for SoftmaxBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let y = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            softmax_last_backward(&y, &grad)
        });
    }
}

/// [`softmax_last`] on `Autodiff<Flex>`.
pub fn softmax_last_autodiff(x: AutodiffFlexTensor) -> AutodiffFlexTensor {
    let prep = SoftmaxBackward
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound();
    let y = softmax_last(&x.primitive);
    match prep.stateful() {
        OpsKind::Tracked(prep) => prep.finish(y.clone(), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// Autodiff node of [`swap_middle`]: its gradient is the same swap of the output gradient.
#[derive(Debug)]
struct SwapMiddleBackward;

impl Backward<Flex, 1> for SwapMiddleBackward {
    type State = ();

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| swap_middle(&grad));
    }
}

/// [`swap_middle`] on `Autodiff<Flex>`.
pub fn swap_middle_autodiff(x: AutodiffFlexTensor) -> AutodiffFlexTensor {
    SwapMiddleBackward
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateless(swap_middle(&x.primitive))
}

/// Autodiff node of [`layer_norm`] with parents `[x, gamma, beta]`.
#[derive(Debug)]
struct LayerNormBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    type State = LayerNormSaved;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, gamma_node, beta_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (dx, dgamma, dbeta) = layer_norm_backward(&ops.state, &grad);
        for (node, value) in [(x_node, dx), (gamma_node, dgamma), (beta_node, dbeta)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, value);
            }
        }
    }
}

/// [`layer_norm`] on `Autodiff<Flex>`.
pub fn layer_norm_autodiff(
    x: AutodiffFlexTensor,
    gamma: AutodiffFlexTensor,
    beta: AutodiffFlexTensor,
    eps: f64,
) -> AutodiffFlexTensor {
    let nodes = [x.node.clone(), gamma.node.clone(), beta.node.clone()];
    let prep = LayerNormBackward
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound();
    let (y, saved) = layer_norm(&x.primitive, &gamma.primitive, &beta.primitive, eps);
    match prep.stateful() {
        OpsKind::Tracked(prep) => prep.finish(saved, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
