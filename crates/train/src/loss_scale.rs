//! Dynamic loss scaling for f16 mixed precision: the loss is multiplied by a scale before the
//! backward pass so that small activation gradients survive in f16; the parameter gradients are
//! divided by it again before the optimiser. A step whose gradients overflowed is skipped and
//! the scale halved; after `growth_interval` clean steps it doubles (PyTorch's `GradScaler`
//! rule, same defaults).

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor};
use serde::{Deserialize, Serialize};

/// The scaler's state (saved in training checkpoints so a resume continues exactly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    /// Current factor applied to the loss.
    pub scale: f64,
    /// Consecutive steps without overflow since the last change.
    pub clean_steps: u64,
    /// Clean steps before the scale doubles.
    pub growth_interval: u64,
    /// Steps skipped because their gradients overflowed.
    pub skipped_steps: u64,
}

impl Default for LossScaler {
    fn default() -> Self {
        Self {
            scale: 65_536.0,
            clean_steps: 0,
            growth_interval: 2_000,
            skipped_steps: 0,
        }
    }
}

impl LossScaler {
    /// Divide every gradient of `groups` by the scale in place; returns whether all of them are
    /// finite, and updates the scale (halve on overflow, double after a clean interval).
    pub fn unscale<'a, B: AutodiffBackend, M: AutodiffModule<B>>(
        &mut self,
        groups: impl IntoIterator<Item = &'a mut GradientsParams>,
        module: &M,
    ) -> bool {
        let mut non_finite: Option<Tensor<B::InnerBackend, 1, Int>> = None;
        for grads in groups {
            let mut visitor = Unscale::<B> {
                grads,
                factor: 1.0 / self.scale,
                non_finite: &mut non_finite,
            };
            module.visit(&mut visitor);
        }
        let overflowed = non_finite
            .map(|count| count.into_scalar().elem::<i64>() > 0)
            .unwrap_or(false);
        if overflowed {
            self.scale = (self.scale / 2.0).max(1.0);
            self.clean_steps = 0;
            self.skipped_steps += 1;
        } else {
            self.clean_steps += 1;
            if self.clean_steps >= self.growth_interval {
                self.scale *= 2.0;
                self.clean_steps = 0;
            }
        }
        !overflowed
    }
}

/// Rescales the gradients of the parameters it visits and counts non-finite entries.
struct Unscale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    factor: f64,
    non_finite: &'a mut Option<Tensor<B::InnerBackend, 1, Int>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Unscale<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) else {
            return;
        };
        let grad = grad * self.factor;
        let bad = grad.clone().is_finite().bool_not().int().sum();
        *self.non_finite = Some(match self.non_finite.take() {
            Some(total) => total + bad,
            None => bad,
        });
        self.grads.register(param.id, grad);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::nn::{Linear, LinearConfig};

    type B = Autodiff<Flex>;

    fn grads_of(layer: &Linear<B>, scale: f32) -> GradientsParams {
        let x = Tensor::<B, 2>::ones([2, 3], &Default::default());
        let loss = layer.forward(x).sum() * scale;
        GradientsParams::from_grads(loss.backward(), layer)
    }

    #[test]
    fn unscaled_gradients_equal_the_unscaled_backward() {
        let layer: Linear<B> = LinearConfig::new(3, 2).init(&Default::default());
        let reference = grads_of(&layer, 1.0);
        let mut scaler = LossScaler::default();
        let mut groups = vec![grads_of(&layer, scaler.scale as f32)];
        assert!(scaler.unscale::<B, _>(&mut groups, &layer));
        let id = layer.weight.id;
        let want = reference.get::<Flex, 2>(id).unwrap().into_data();
        let got = groups[0].get::<Flex, 2>(id).unwrap().into_data();
        want.assert_approx_eq::<f32>(&got, burn::tensor::Tolerance::default());
        assert_eq!(scaler.clean_steps, 1);
    }

    #[test]
    fn overflow_skips_and_halves_then_growth_doubles() {
        let layer: Linear<B> = LinearConfig::new(3, 2).init(&Default::default());
        let mut scaler = LossScaler {
            growth_interval: 2,
            ..LossScaler::default()
        };
        let mut groups = vec![grads_of(&layer, f32::INFINITY)];
        assert!(!scaler.unscale::<B, _>(&mut groups, &layer));
        assert_eq!((scaler.scale, scaler.skipped_steps), (32_768.0, 1));
        for _ in 0..2 {
            let mut groups = vec![grads_of(&layer, 1.0)];
            assert!(scaler.unscale::<B, _>(&mut groups, &layer));
        }
        assert_eq!((scaler.scale, scaler.clean_steps), (65_536.0, 0));
    }
}
