//! Similarity-distribution matching (SDM, IRRA / ReID5o): the softmax over a batch of the cosine
//! similarities between two sets of embeddings is pulled towards the normalised identity-match
//! distribution, by the KL divergence, in both directions.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};

/// Added to the match distribution before its logarithm (as IRRA), so that non-matching pairs
/// (probability 0) give a large finite penalty instead of infinity.
const MATCH_EPSILON: f32 = 1e-8;

/// SDM loss between `queries` `[B, D]` and `targets` `[B, D]` of identities `labels` `[B]`:
///
/// `p_ij = softmax_j(cos(q_i, t_j) / temperature)`, `y_ij = [label_i = label_j] / sum_k [..]`,
/// `L = mean_i KL(p_i || y_i) + mean_j KL(p'_j || y_j)` with `p'` the softmax over queries of
/// the same similarities seen from each target. Rows need not be normalised.
pub fn sdm_loss<B: Backend>(
    queries: Tensor<B, 2>,
    targets: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    temperature: f32,
) -> Tensor<B, 1> {
    let [batch, _] = queries.dims();
    let normalize = |x: Tensor<B, 2>| {
        let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
        x / norm
    };
    let logits = normalize(queries)
        .matmul(normalize(targets).transpose())
        .div_scalar(temperature); // [B, B]
    let column = labels.clone().reshape([batch, 1]).expand([batch, batch]);
    let row = labels.reshape([1, batch]).expand([batch, batch]);
    let matches = column.equal(row).float();
    let target = matches.clone() / matches.sum_dim(1);
    let log_target = (target + MATCH_EPSILON).log();
    let kl = |logits: Tensor<B, 2>| {
        let p = softmax(logits.clone(), 1);
        (p * (log_softmax(logits, 1) - log_target.clone()))
            .sum_dim(1)
            .mean()
    };
    // The label matrix is symmetric, so the target-to-query direction uses the same targets.
    kl(logits.clone()) + kl(logits.transpose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    type B = Flex;

    fn tensor(values: Vec<f32>, shape: [usize; 2]) -> Tensor<B, 2> {
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    }

    fn labels(values: Vec<i64>) -> Tensor<B, 1, Int> {
        let n = values.len();
        Tensor::from_data(TensorData::new(values, [n]), &Default::default())
    }

    #[test]
    fn worked_example_with_two_identities() {
        // q0 = t0 = (1, 0), q1 = (0, 1), t1 = (0.6, 0.8); ids 0 and 1; temperature 0.5.
        // cos: [[1, 0.6], [0, 0.8]] -> logits [[2, 1.2], [0, 1.6]]; targets are one-hot.
        // Row i: KL(p || onehot + 1e-8) = p_match * log p_match + p_other * (log p_other - log 1e-8).
        let q = tensor(vec![1.0, 0.0, 0.0, 1.0], [2, 2]);
        let t = tensor(vec![1.0, 0.0, 0.6, 0.8], [2, 2]);
        let kl_row = |own: f64, other: f64| {
            let z = (own.exp() + other.exp()).ln();
            let (pm, po) = ((own - z).exp(), (other - z).exp());
            pm * (own - z) + po * ((other - z) - 1e-8f64.ln())
        };
        // Queries to targets: rows [2, 1.2] and [1.6 (own), 0].
        let q2t = (kl_row(2.0, 1.2) + kl_row(1.6, 0.0)) / 2.0;
        // Targets to queries: columns [2, 0] and [1.6 (own), 1.2].
        let t2q = (kl_row(2.0, 0.0) + kl_row(1.6, 1.2)) / 2.0;
        let expected = q2t + t2q;
        let got: f32 = sdm_loss(q, t, labels(vec![0, 1]), 0.5).into_scalar();
        assert!(
            (got as f64 - expected).abs() < 1e-3 * expected,
            "{got} vs {expected}"
        );
    }

    #[test]
    fn matched_embeddings_give_a_near_zero_loss_and_mismatched_a_large_one() {
        // Two samples of id 0 with the same direction, one of id 1 orthogonal: at temperature
        // 0.02 the softmax puts half of the mass on each same-id sample, as the target does.
        let q = tensor(vec![1.0, 0.0, 2.0, 0.0, 0.0, 1.0], [3, 2]);
        let good: f32 = sdm_loss(q.clone(), q.clone(), labels(vec![0, 0, 1]), 0.02).into_scalar();
        assert!(good.abs() < 1e-4, "{good}");
        let swapped = tensor(vec![0.0, 1.0, 0.0, 1.0, 1.0, 0.0], [3, 2]);
        let bad: f32 = sdm_loss(q, swapped, labels(vec![0, 0, 1]), 0.02).into_scalar();
        assert!(bad > 10.0, "{bad}");
    }
}
