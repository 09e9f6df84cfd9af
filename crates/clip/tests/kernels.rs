//! The fused CPU kernels (QuickGELU, softmax, layer norm) and the flattened linear equal the
//! compositions of Burn ops they replace, forward and backward, on Flex and `Autodiff<Flex>`.
//!
//! Tolerance: `|ours - reference| <= 1e-5 * (1 + |reference|)` element-wise. The kernels'
//! polynomial `exp` is within 2.5e-7 relative of the exact one and their sums run in 16
//! partial accumulators instead of one, so they differ from Burn's ops by a few f32 ulps
//! (1.2e-7 relative each); the bound leaves a factor > 10 while a wrong formula, a lost mask
//! or a gradient sent to the wrong parent gives errors of order 1. The flattened linear does the
//! same arithmetic per row, so its forward pass is compared exactly.

use burn::backend::{Autodiff, Flex};
use burn::module::Param;
use burn::nn::{LayerNormConfig, LinearConfig};
use burn::tensor::{Distribution, Tensor, TensorData};
use next_clip::kernels;
use next_clip::precision::linear_in;

type B = Flex;
type AD = Autodiff<Flex>;

fn assert_close<const D: usize, Bk: burn::tensor::backend::Backend>(
    what: &str,
    ours: Tensor<Bk, D>,
    reference: Tensor<Bk, D>,
) {
    assert_eq!(ours.dims(), reference.dims(), "{what}: shapes differ");
    let ours = ours.into_data().to_vec::<f32>().expect("f32 data");
    let reference = reference.into_data().to_vec::<f32>().expect("f32 data");
    for (i, (a, r)) in ours.iter().zip(&reference).enumerate() {
        let bound = 1e-5 * (1.0 + r.abs());
        assert!(
            (a - r).abs() <= bound,
            "{what}[{i}]: {a} vs reference {r} (bound {bound})"
        );
    }
}

fn random<Bk: burn::tensor::backend::Backend, const D: usize>(
    shape: [usize; D],
    std: f64,
) -> Tensor<Bk, D> {
    Tensor::random(shape, Distribution::Normal(0.0, std), &Default::default())
}

#[test]
fn quick_gelu_matches_the_composition_forward_and_backward() {
    // Wide inputs reach both tails of the sigmoid; 3 * 37 * 50 is not a multiple of 16.
    let x = random::<B, 3>([3, 37, 50], 6.0);
    assert_close(
        "quick_gelu",
        kernels::quick_gelu(x.clone()),
        kernels::quick_gelu_reference(x.clone()),
    );

    let upstream = random::<AD, 3>([3, 37, 50], 1.0);
    let grad_of = |fused: bool| {
        let x = Tensor::<AD, 3>::from_data(x.to_data(), &Default::default()).require_grad();
        let y = if fused {
            kernels::quick_gelu(x.clone())
        } else {
            kernels::quick_gelu_reference(x.clone())
        };
        let grads = (y * upstream.clone()).sum().backward();
        x.grad(&grads).expect("gradient of x")
    };
    assert_close("quick_gelu gradient", grad_of(true), grad_of(false));
}

#[test]
fn softmax_matches_burn_forward_and_backward_with_masked_scores() {
    // A causal-style mask of large negative values, as the text tower adds.
    let scores = random::<B, 4>([2, 3, 17, 17], 3.0);
    let mask: Vec<f32> = (0..17 * 17)
        .map(|i| if i % 17 > i / 17 { -1e9 } else { 0.0 })
        .collect();
    let mask = Tensor::<B, 2>::from_data(TensorData::new(mask, [17, 17]), &Default::default())
        .reshape([1, 1, 17, 17]);
    let x = scores + mask;
    assert_close(
        "softmax",
        kernels::softmax_last(x.clone()),
        burn::tensor::activation::softmax(x.clone(), 3),
    );

    let upstream = random::<AD, 4>([2, 3, 17, 17], 1.0);
    let grad_of = |fused: bool| {
        let x = Tensor::<AD, 4>::from_data(x.to_data(), &Default::default()).require_grad();
        let y = if fused {
            kernels::softmax_last(x.clone())
        } else {
            burn::tensor::activation::softmax(x.clone(), 3)
        };
        let grads = (y * upstream.clone()).sum().backward();
        x.grad(&grads).expect("gradient of x")
    };
    assert_close("softmax gradient", grad_of(true), grad_of(false));
}

#[test]
fn layer_norm_matches_burn_forward_and_all_three_gradients() {
    let eps = 1e-5;
    let device = Default::default();
    let mut norm = LayerNormConfig::new(40)
        .with_epsilon(eps)
        .init::<AD>(&device);
    norm.gamma = Param::from_tensor(random::<AD, 1>([40], 1.0) + 1.0);
    norm.beta = Some(Param::from_tensor(random::<AD, 1>([40], 1.0)));
    // Rows with a large common offset test the centring.
    let x = random::<AD, 3>([4, 33, 40], 2.0) + 3.0;
    let upstream = random::<AD, 3>([4, 33, 40], 1.0);

    let run = |fused: bool| {
        let x = x.clone().detach().require_grad();
        let y = if fused {
            kernels::layer_norm(&norm, eps, x.clone())
        } else {
            norm.forward(x.clone())
        };
        let grads = (y.clone() * upstream.clone()).sum().backward();
        let beta = norm.beta.as_ref().expect("beta");
        (
            y,
            x.grad(&grads).expect("gradient of x"),
            norm.gamma.grad(&grads).expect("gradient of gamma"),
            beta.grad(&grads).expect("gradient of beta"),
        )
    };
    let (y, dx, dgamma, dbeta) = run(true);
    let (y_ref, dx_ref, dgamma_ref, dbeta_ref) = run(false);
    assert_close("layer_norm", y, y_ref);
    assert_close("layer_norm dx", dx, dx_ref);
    assert_close("layer_norm dgamma", dgamma, dgamma_ref);
    assert_close("layer_norm dbeta", dbeta, dbeta_ref);
}

#[test]
fn flattened_linear_is_exact_forward_and_close_backward() {
    let device = Default::default();
    let layer = LinearConfig::new(48, 20).init::<AD>(&device);
    let x = random::<AD, 3>([3, 11, 48], 1.0);
    let upstream = random::<AD, 3>([3, 11, 20], 1.0);

    let run = |flat: bool| {
        let x = x.clone().detach().require_grad();
        let y = if flat {
            linear_in(&layer, x.clone(), None)
        } else {
            layer.forward(x.clone())
        };
        let grads = (y.clone() * upstream.clone()).sum().backward();
        (
            y,
            x.grad(&grads).expect("gradient of x"),
            layer.weight.grad(&grads).expect("gradient of the weight"),
        )
    };
    let (y, dx, dw) = run(true);
    let (y_ref, dx_ref, dw_ref) = run(false);
    assert_eq!(y.into_data(), y_ref.into_data(), "forward differs");
    assert_close("linear dx", dx, dx_ref);
    assert_close("linear dweight", dw, dw_ref);
}

#[test]
fn merged_heads_equal_the_swap_and_reshape_exactly_forward_and_backward() {
    let x = random::<AD, 4>([2, 3, 5, 4], 1.0);
    let upstream = random::<AD, 3>([2, 5, 12], 1.0);
    let run = |fused: bool| {
        let x = x.clone().detach().require_grad();
        let y = if fused {
            kernels::merge_heads(x.clone())
        } else {
            x.clone().swap_dims(1, 2).reshape([2, 5, 12])
        };
        let grads = (y.clone() * upstream.clone()).sum().backward();
        (y, x.grad(&grads).expect("gradient of x"))
    };
    let (y, dx) = run(true);
    let (y_ref, dx_ref) = run(false);
    assert_eq!(y.into_data(), y_ref.into_data(), "forward differs");
    assert_eq!(dx.into_data(), dx_ref.into_data(), "gradient differs");
}
