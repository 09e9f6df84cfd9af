//! The expert block of Eq. 1: `E(x) = x + Dropout(MLP(LN(x)))`.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;

/// Shape of one expert block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpertBlockConfig {
    /// Token width D.
    pub dim: usize,
    /// Hidden width ratio r of the MLP (hidden = r * D).
    pub mlp_ratio: usize,
    /// Dropout probability on the MLP output.
    pub dropout: f64,
}

impl ExpertBlockConfig {
    /// Build the block on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ExpertBlock<B> {
        let hidden = self.dim * self.mlp_ratio.max(1);
        ExpertBlock {
            norm: LayerNormConfig::new(self.dim).init(device),
            fc1: LinearConfig::new(self.dim, hidden).init(device),
            fc2: LinearConfig::new(hidden, self.dim).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }

    /// Learnable parameters of one block.
    pub fn num_params(&self) -> usize {
        let hidden = self.dim * self.mlp_ratio.max(1);
        2 * self.dim + (self.dim * hidden + hidden) + (hidden * self.dim + self.dim)
    }

    /// Multiply-adds of one block for `tokens` tokens (the two linear layers).
    pub fn macs(&self, tokens: usize) -> u64 {
        let hidden = self.dim * self.mlp_ratio.max(1);
        2 * (tokens * self.dim * hidden) as u64
    }
}

/// One expert: pre-LN residual MLP (Linear(D, rD) -> GELU -> Linear(rD, D)).
#[derive(Module, Debug)]
pub struct ExpertBlock<B: Backend> {
    /// Pre-normalisation.
    pub norm: LayerNorm<B>,
    /// Expansion layer D -> rD.
    pub fc1: Linear<B>,
    /// Projection layer rD -> D.
    pub fc2: Linear<B>,
    /// Dropout on the MLP output (active only under autodiff).
    pub dropout: Dropout,
}

impl<B: Backend> ExpertBlock<B> {
    /// Apply the block to tokens `[B, T, D]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = self
            .fc2
            .forward(gelu(self.fc1.forward(self.norm.forward(x.clone()))));
        x + self.dropout.forward(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn block_keeps_shape_and_counts_parameters() {
        let device = Default::default();
        let cfg = ExpertBlockConfig {
            dim: 16,
            mlp_ratio: 2,
            dropout: 0.1,
        };
        let block = cfg.init::<Flex>(&device);
        let x = Tensor::<Flex, 3>::ones([2, 5, 16], &device);
        assert_eq!(block.forward(x).dims(), [2, 5, 16]);
        assert_eq!(block.num_params(), cfg.num_params());
    }
}
