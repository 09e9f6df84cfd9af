//! Masked pooling and the straight-through hard mask.

use burn::prelude::*;

/// Straight-through estimator: the forward value is `hard`, the gradient is that of `soft`
/// (`hard + soft - stopgrad(soft)`). `hard` carries no gradient of its own.
pub fn straight_through<B: Backend, const D: usize>(
    hard: Tensor<B, D>,
    soft: Tensor<B, D>,
) -> Tensor<B, D> {
    // (soft - soft) is exactly 0 in the forward pass, so the value is exactly `hard`.
    hard.detach() + (soft.clone() - soft.detach())
}

/// Weighted mean of `tokens` `[B, T, D]` with non-negative `weights` `[B, T]`:
/// `sum_t w_t x_t / sum_t w_t`. A row whose weights are all zero falls back to the plain mean
/// of all its tokens, so an empty sampling mask never produces NaN.
pub fn masked_mean<B: Backend>(tokens: Tensor<B, 3>, weights: Tensor<B, 2>) -> Tensor<B, 2> {
    let total = weights.clone().sum_dim(1); // [B, 1]
    let empty = total.clone().detach().lower_equal_elem(0.0).float(); // 1 where no token is kept
    let weights = weights + empty.clone(); // all-ones row where empty
    let total = total + empty.mul_scalar(tokens.dims()[1] as f32);
    let summed = (tokens * weights.unsqueeze_dim::<3>(2))
        .sum_dim(1)
        .squeeze_dim::<2>(1);
    summed / total
}

/// [`masked_mean`] whose empty rows fall back to the mean over the tokens `fallback` `[B, T]`
/// marks (0/1; every token when `None`) instead of over all tokens.
pub fn masked_mean_or<B: Backend>(
    tokens: Tensor<B, 3>,
    weights: Tensor<B, 2>,
    fallback: Option<Tensor<B, 2>>,
) -> Tensor<B, 2> {
    let Some(fallback) = fallback else {
        return masked_mean(tokens, weights);
    };
    let total = weights.clone().sum_dim(1); // [B, 1]
    let empty = total.detach().lower_equal_elem(0.0).float(); // 1 where no token is kept
    let weights = weights + fallback.detach() * empty;
    let total = weights.clone().sum_dim(1).clamp_min(1e-12);
    let summed = (tokens * weights.unsqueeze_dim::<3>(2))
        .sum_dim(1)
        .squeeze_dim::<2>(1);
    summed / total
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type Ad = Autodiff<Flex>;

    #[test]
    fn masked_mean_ignores_unsampled_tokens_and_survives_empty_mask() {
        let device = Default::default();
        let tokens = Tensor::<Flex, 3>::from_floats(
            [
                [[1.0, 2.0], [100.0, -100.0], [3.0, 4.0]],
                [[1.0, 1.0], [2.0, 2.0], [6.0, 3.0]],
            ],
            &device,
        );
        let weights = Tensor::<Flex, 2>::from_floats([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], &device);
        let got: Vec<f32> = masked_mean(tokens, weights).into_data().to_vec().unwrap();
        assert_eq!(got, vec![2.0, 3.0, 3.0, 2.0]);
        assert!(got.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn masked_mean_or_falls_back_to_the_marked_tokens() {
        let device = Default::default();
        let tokens = Tensor::<Flex, 3>::from_floats(
            [
                [[1.0, 2.0], [100.0, -100.0], [3.0, 4.0]],
                [[1.0, 1.0], [2.0, 2.0], [6.0, 3.0]],
            ],
            &device,
        );
        let weights = Tensor::<Flex, 2>::from_floats([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], &device);
        let marked = Tensor::<Flex, 2>::from_floats([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]], &device);
        let got: Vec<f32> = masked_mean_or(tokens.clone(), weights.clone(), Some(marked))
            .into_data()
            .to_vec()
            .unwrap();
        // Row 0 keeps tokens: unchanged; row 1 is empty: mean of its tokens 0 and 1.
        assert_eq!(got, vec![2.0, 3.0, 1.5, 1.5]);
        let plain: Vec<f32> = masked_mean_or(tokens, weights, None)
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(plain, vec![2.0, 3.0, 3.0, 2.0]);
    }

    #[test]
    fn straight_through_is_hard_forward_and_soft_backward() {
        let device = Default::default();
        let logits = Tensor::<Ad, 1>::from_floats([-2.0, 0.5, 3.0], &device).require_grad();
        let soft = burn::tensor::activation::sigmoid(logits.clone());
        let hard = soft.clone().greater_elem(0.6).float();
        let st = straight_through(hard, soft.clone());
        let values: Vec<f32> = st.clone().into_data().to_vec().unwrap();
        assert_eq!(values, vec![0.0, 1.0, 1.0]);
        // d(sum(w * st))/d logits = w * s (1 - s), exactly the soft score's gradient.
        let w = Tensor::<Ad, 1>::from_floats([1.0, 2.0, 3.0], &device);
        let grads = (st * w).sum().backward();
        let g: Vec<f32> = logits.grad(&grads).unwrap().into_data().to_vec().unwrap();
        for (i, (x, wi)) in [(-2.0f32, 1.0f32), (0.5, 2.0), (3.0, 3.0)]
            .iter()
            .enumerate()
        {
            let s = 1.0 / (1.0 + (-x).exp());
            assert!((g[i] - wi * s * (1.0 - s)).abs() < 1e-6, "{g:?}");
        }
    }
}
