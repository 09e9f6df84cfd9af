//! Loss functions on tensors: label-smoothed cross-entropy, batch-hard triplet, and their sum.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu, softplus};
use serde::{Deserialize, Serialize};

/// How the batch-hard triplet loss turns `d(a,p) - d(a,n)` into a loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TripletMargin {
    /// Soft margin: `log(1 + exp(d_ap - d_an))`.
    Soft,
    /// Hinge with a fixed margin: `max(0, d_ap - d_an + margin)`.
    Fixed(f32),
}

/// The unit of the distances the batch-hard triplet loss compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TripletScale {
    /// Raw Euclidean distances of the feature (the references' default).
    Raw,
    /// Euclidean distances of the L2-normalised feature rows (the references' `normalize_feature`).
    Unit,
    /// Euclidean distances divided by the batch's mean pairwise distance (not detached): the loss
    /// does not change when every feature is scaled by the same factor, so it cannot be lowered by
    /// shrinking the embedding.
    BatchMean,
}

/// Weights and settings of the identity + triplet objective (Eq. 12).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReidLossConfig {
    /// Label-smoothing epsilon of the identity loss.
    pub label_smoothing: f32,
    /// Weight of the identity (cross-entropy) loss.
    pub id_weight: f32,
    /// Weight of the triplet loss.
    pub triplet_weight: f32,
    /// Soft or fixed-margin triplet loss.
    pub triplet_margin: TripletMargin,
    /// Unit of the triplet distances.
    pub triplet_scale: TripletScale,
}

impl Default for ReidLossConfig {
    fn default() -> Self {
        Self {
            label_smoothing: 0.1,
            id_weight: 0.25,
            triplet_weight: 1.0,
            triplet_margin: TripletMargin::Soft,
            triplet_scale: TripletScale::Raw,
        }
    }
}

/// The weighted total and its two unweighted parts, each a one-element tensor.
#[derive(Debug, Clone)]
pub struct ReidLoss<B: Backend> {
    /// `id_weight * id + triplet_weight * triplet`.
    pub total: Tensor<B, 1>,
    /// Unweighted label-smoothed cross-entropy.
    pub id: Tensor<B, 1>,
    /// Unweighted batch-hard triplet loss.
    pub triplet: Tensor<B, 1>,
}

/// Label-smoothed cross-entropy, mean over the batch: target distribution
/// `(1 - eps) * onehot + eps / C`. `logits` `[B, C]`, `targets` `[B]` class indices in `0..C`.
pub fn label_smoothed_cross_entropy<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    epsilon: f32,
) -> Tensor<B, 1> {
    let [_, num_classes] = logits.dims();
    let log_probs = log_softmax(logits, 1);
    let one_hot: Tensor<B, 2> = targets.one_hot(num_classes).float();
    let target = one_hot
        .mul_scalar(1.0 - epsilon)
        .add_scalar(epsilon / num_classes as f32);
    (target * log_probs).sum_dim(1).neg().mean()
}

/// Euclidean distance matrix `[B, B]` between the rows of `features` `[B, F]`
/// (squared distances clamped at 1e-12 before the square root, so gradients stay finite).
pub fn pairwise_euclidean<B: Backend>(features: Tensor<B, 2>) -> Tensor<B, 2> {
    let squared_norms = features.clone().powi_scalar(2).sum_dim(1); // [B, 1]
    let gram = features.clone().matmul(features.transpose()); // [B, B]
    let squared = squared_norms.clone() + squared_norms.transpose() - gram.mul_scalar(2.0);
    squared.clamp_min(1e-12).sqrt()
}

/// Batch-hard triplet loss: for each anchor, the farthest same-id sample and the nearest
/// other-id sample, on Euclidean distances of `features` `[B, F]`; mean over anchors.
/// An anchor without a positive uses distance 0; one without a negative contributes a
/// large negative distance (zero hinge, near-zero soft margin).
pub fn batch_hard_triplet<B: Backend>(
    features: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    margin: TripletMargin,
    scale: TripletScale,
) -> Tensor<B, 1> {
    let [batch, _] = features.dims();
    let dist = scaled_distances(features, scale);
    let same = labels
        .clone()
        .unsqueeze_dim::<2>(1)
        .equal(labels.unsqueeze_dim::<2>(0)); // [B, B]
    let same_f = same.float();
    debug_assert_eq!(same_f.dims(), [batch, batch]);
    // Distances are >= 0, so zeroing the negatives keeps the max over positives.
    let hardest_positive = (dist.clone() * same_f.clone())
        .max_dim(1)
        .squeeze_dim::<1>(1);
    // Push positives far away before taking the min over negatives.
    let far = dist.clone().max().detach().add_scalar(1e4).unsqueeze::<2>();
    let hardest_negative = (dist + same_f * far).min_dim(1).squeeze_dim::<1>(1);
    let gap = hardest_positive - hardest_negative;
    let per_anchor = match margin {
        TripletMargin::Soft => softplus(gap, 1.0),
        TripletMargin::Fixed(m) => relu(gap.add_scalar(m)),
    };
    per_anchor.mean()
}

/// Pairwise distances `[B, B]` of `features` `[B, F]` in the unit `scale` names.
pub fn scaled_distances<B: Backend>(features: Tensor<B, 2>, scale: TripletScale) -> Tensor<B, 2> {
    match scale {
        TripletScale::Raw => pairwise_euclidean(features),
        TripletScale::Unit => {
            let norms = features
                .clone()
                .powi_scalar(2)
                .sum_dim(1)
                .sqrt()
                .clamp_min(1e-12);
            pairwise_euclidean(features / norms)
        }
        TripletScale::BatchMean => {
            let [batch, _] = features.dims();
            let dist = pairwise_euclidean(features);
            let off_diagonal = Tensor::<B, 2>::eye(batch, &dist.device())
                .neg()
                .add_scalar(1.0);
            let pairs = (batch * batch.saturating_sub(1)).max(1) as f32;
            let mean = (dist.clone() * off_diagonal)
                .sum()
                .div_scalar(pairs)
                .clamp_min(1e-12);
            dist / mean.unsqueeze::<2>()
        }
    }
}

/// Identity loss on the BNNeck `logits` plus triplet loss on the pre-BN `features`, weighted
/// as in `config`.
pub fn reid_loss<B: Backend>(
    config: &ReidLossConfig,
    logits: Tensor<B, 2>,
    features: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
) -> ReidLoss<B> {
    let id = label_smoothed_cross_entropy(logits, labels.clone(), config.label_smoothing);
    let triplet = batch_hard_triplet(
        features,
        labels,
        config.triplet_margin,
        config.triplet_scale,
    );
    let total =
        id.clone().mul_scalar(config.id_weight) + triplet.clone().mul_scalar(config.triplet_weight);
    ReidLoss { total, id, triplet }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    type B = Flex;

    fn scalar(t: Tensor<B, 1>) -> f32 {
        t.into_scalar()
    }

    #[test]
    fn smoothed_cross_entropy_matches_hand_computation() {
        let device = Default::default();
        let logits = Tensor::<B, 2>::from_floats([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], &device);
        let targets = Tensor::<B, 1, Int>::from_ints([0, 1], &device);
        let eps = 0.1f32;
        let mut expected = 0.0f32;
        for (row, t) in [([2.0f32, 0.0, -1.0], 0usize), ([0.5, 0.5, 3.0], 1)] {
            let lse = row.iter().map(|v| v.exp()).sum::<f32>().ln();
            for (c, v) in row.iter().enumerate() {
                let q = if c == t {
                    1.0 - eps + eps / 3.0
                } else {
                    eps / 3.0
                };
                expected -= q * (v - lse);
            }
        }
        expected /= 2.0;
        let got = scalar(label_smoothed_cross_entropy(
            logits.clone(),
            targets.clone(),
            eps,
        ));
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        // eps = 0 is the plain cross-entropy.
        let plain = scalar(label_smoothed_cross_entropy(logits, targets, 0.0));
        let lse0 = [2.0f32, 0.0, -1.0]
            .iter()
            .map(|v| v.exp())
            .sum::<f32>()
            .ln();
        let lse1 = [0.5f32, 0.5, 3.0].iter().map(|v| v.exp()).sum::<f32>().ln();
        let want = ((lse0 - 2.0) + (lse1 - 0.5)) / 2.0;
        assert!((plain - want).abs() < 1e-5, "{plain} vs {want}");
    }

    #[test]
    fn euclidean_distances_match_hand_values() {
        let device = Default::default();
        let x = Tensor::<B, 2>::from_floats([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]], &device);
        let d: Vec<f32> = pairwise_euclidean(x).into_data().to_vec().unwrap();
        let want = [
            0.0,
            5.0,
            1.0,
            5.0,
            0.0,
            18f32.sqrt(),
            1.0,
            18f32.sqrt(),
            0.0,
        ];
        for (g, w) in d.iter().zip(want) {
            assert!((g - w).abs() < 1e-3, "{d:?}");
        }
    }

    #[test]
    fn batch_hard_triplet_picks_hardest_pairs() {
        let device = Default::default();
        // 1-D points: ids 0,0,1,1 at 0, 2, 3, 10.
        let x = Tensor::<B, 2>::from_floats([[0.0], [2.0], [3.0], [10.0]], &device);
        let labels = Tensor::<B, 1, Int>::from_ints([0, 0, 1, 1], &device);
        // anchor: (hardest pos, hardest neg): 0:(2,3) 1:(2,1) 2:(7,1) 3:(7,8)
        let gaps = [2.0f32 - 3.0, 2.0 - 1.0, 7.0 - 1.0, 7.0 - 8.0];
        let hinge: f32 = gaps.iter().map(|g| (g + 0.3).max(0.0)).sum::<f32>() / 4.0;
        let soft: f32 = gaps.iter().map(|g| (1.0 + g.exp()).ln()).sum::<f32>() / 4.0;
        let got_hinge = scalar(batch_hard_triplet(
            x.clone(),
            labels.clone(),
            TripletMargin::Fixed(0.3),
            TripletScale::Raw,
        ));
        let got_soft = scalar(batch_hard_triplet(
            x,
            labels,
            TripletMargin::Soft,
            TripletScale::Raw,
        ));
        assert!((got_hinge - hinge).abs() < 1e-3, "{got_hinge} vs {hinge}");
        assert!((got_soft - soft).abs() < 1e-3, "{got_soft} vs {soft}");
    }

    #[test]
    fn scaled_triplets_ignore_the_feature_scale_they_remove() {
        let device = Default::default();
        let x = Tensor::<B, 2>::from_floats(
            [[0.0, 1.0], [2.0, 0.5], [3.0, -1.0], [10.0, 2.0]],
            &device,
        );
        let labels = Tensor::<B, 1, Int>::from_ints([0, 0, 1, 1], &device);
        let loss = |x: Tensor<B, 2>, scale| {
            scalar(batch_hard_triplet(
                x,
                labels.clone(),
                TripletMargin::Soft,
                scale,
            ))
        };
        // BatchMean: a global rescaling leaves the loss unchanged; Raw changes with it.
        let (a, b) = (
            loss(x.clone(), TripletScale::BatchMean),
            loss(x.clone().mul_scalar(0.01), TripletScale::BatchMean),
        );
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        let raw_small = loss(x.clone().mul_scalar(0.01), TripletScale::Raw);
        assert!((raw_small - 2f32.ln()).abs() < 0.05, "{raw_small}");
        assert!((loss(x.clone(), TripletScale::Raw) - raw_small).abs() > 0.1);
        // Unit: each row's own scale is removed.
        let rows = Tensor::<B, 2>::from_floats([[1.0], [3.0], [0.5], [7.0]], &device);
        let (u1, u2) = (
            loss(x.clone(), TripletScale::Unit),
            loss(x.clone() * rows, TripletScale::Unit),
        );
        assert!((u1 - u2).abs() < 1e-4, "{u1} vs {u2}");
        // BatchMean by hand: the 1-D points 0, 2, 3, 10 (ids 0, 0, 1, 1) have mean pairwise
        // distance (2 + 3 + 10 + 1 + 8 + 7) / 6 = 31 / 6.
        let line = Tensor::<B, 2>::from_floats([[0.0], [2.0], [3.0], [10.0]], &device);
        let gaps = [2.0f32 - 3.0, 2.0 - 1.0, 7.0 - 1.0, 7.0 - 8.0];
        let want: f32 = gaps
            .iter()
            .map(|g| (1.0 + (g * 6.0 / 31.0).exp()).ln())
            .sum::<f32>()
            / 4.0;
        let got = loss(line, TripletScale::BatchMean);
        assert!((got - want).abs() < 1e-3, "{got} vs {want}");
    }

    #[test]
    fn reid_loss_weights_its_parts() {
        let device = Default::default();
        let logits = Tensor::<B, 2>::from_floats([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], &device);
        let feats = Tensor::<B, 2>::from_floats([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], &device);
        let labels = Tensor::<B, 1, Int>::from_ints([0, 1, 0], &device);
        let cfg = ReidLossConfig::default();
        let out = reid_loss(&cfg, logits, feats, labels);
        let (total, id, tri) = (scalar(out.total), scalar(out.id), scalar(out.triplet));
        assert!(id > 0.0 && tri > 0.0);
        assert!((total - (0.25 * id + tri)).abs() < 1e-5);
    }

    #[test]
    fn config_round_trips_through_toml_and_rejects_unknown_fields() {
        let cfg = ReidLossConfig {
            triplet_margin: TripletMargin::Fixed(0.3),
            ..Default::default()
        };
        let text = toml::to_string(&cfg).unwrap();
        let back: ReidLossConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, cfg);
        assert!(toml::from_str::<ReidLossConfig>("id_weigth = 1.0").is_err());
    }
}
