//! BNNeck: a BatchNorm1d whose bias is frozen at zero, followed by a bias-free classifier.

use burn::module::{Initializer, Module};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Shape of a BNNeck head.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BnNeckConfig {
    /// Width of the identity feature entering the neck.
    pub in_features: usize,
    /// Number of training identities (classifier outputs).
    pub num_classes: usize,
    /// Standard deviation of the classifier's normal initialisation.
    #[serde(default = "default_classifier_std")]
    pub classifier_std: f64,
}

fn default_classifier_std() -> f64 {
    0.001
}

impl BnNeckConfig {
    /// A neck for `in_features` inputs and `num_classes` identities with the N(0, 0.001) init.
    pub fn new(in_features: usize, num_classes: usize) -> Self {
        Self {
            in_features,
            num_classes,
            classifier_std: default_classifier_std(),
        }
    }

    /// Build the neck on `device`: BN weight 1, bias 0 (frozen), classifier ~ N(0, std).
    pub fn init<B: Backend>(&self, device: &B::Device) -> BnNeck<B> {
        let mut bn = BatchNormConfig::new(self.in_features).init(device);
        bn.beta = bn.beta.set_require_grad(false);
        let classifier = LinearConfig::new(self.in_features, self.num_classes)
            .with_bias(false)
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: self.classifier_std,
            })
            .init(device);
        BnNeck { bn, classifier }
    }
}

/// The BNNeck head: batch-normalised feature and identity logits.
#[derive(Module, Debug)]
pub struct BnNeck<B: Backend> {
    /// BatchNorm1d over the feature; its bias never receives gradients.
    pub bn: BatchNorm<B>,
    /// Bias-free linear classifier to the training identities.
    pub classifier: Linear<B>,
}

/// What the neck computes for a batch.
#[derive(Debug, Clone)]
pub struct BnNeckOutput<B: Backend> {
    /// The batch-normalised feature `[B, F]`.
    pub normalized: Tensor<B, 2>,
    /// Identity logits `[B, num_classes]`.
    pub logits: Tensor<B, 2>,
}

impl<B: Backend> BnNeck<B> {
    /// Normalise `features` `[B, F]` and classify them.
    pub fn forward(&self, features: Tensor<B, 2>) -> BnNeckOutput<B> {
        let normalized = self.bn.forward(features);
        let logits = self.classifier.forward(normalized.clone());
        BnNeckOutput { normalized, logits }
    }

    /// Batch-normalise only (inference feature "post-BN"); no classifier.
    pub fn normalize(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        self.bn.forward(features)
    }

    /// Number of identities the classifier predicts.
    pub fn num_classes(&self) -> usize {
        self.classifier.weight.dims()[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type Ad = Autodiff<Flex>;

    #[test]
    fn classifier_is_bias_free_small_normal_and_bn_bias_gets_no_gradient() {
        let device = Default::default();
        let neck = BnNeckConfig::new(64, 500).init::<Ad>(&device);
        assert!(neck.classifier.bias.is_none());
        let w: Vec<f32> = neck.classifier.weight.val().into_data().to_vec().unwrap();
        let n = w.len() as f32;
        let mean = w.iter().sum::<f32>() / n;
        let std = (w.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt();
        assert!(mean.abs() < 1e-4, "mean {mean}");
        assert!((std - 0.001).abs() < 1e-4, "std {std}");

        let x = Tensor::<Ad, 2>::random(
            [8, 64],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let out = neck.forward(x);
        assert_eq!(out.logits.dims(), [8, 500]);
        assert_eq!(out.normalized.dims(), [8, 64]);
        let grads = out.logits.sum().backward();
        assert!(
            neck.bn.beta.grad(&grads).is_none(),
            "frozen BN bias received a gradient"
        );
        assert!(neck.bn.gamma.grad(&grads).is_some());
        assert!(neck.classifier.weight.grad(&grads).is_some());
    }
}
