//! CSSE: context-shared structure experts (Eqs. 8-9).
//!
//! A soft router assigns every token of the three modalities a distribution over the K_c
//! structure experts; expert `j` processes all tokens and its feature is the routing-weighted
//! mean of its outputs.

use crate::block::{ExpertBlock, ExpertBlockConfig};
use crate::pooling::masked_mean;
use crate::ExpertError;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

/// One routing network for all modalities, or one per modality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructureRouter {
    /// A single router shared across modalities (paper default).
    Shared,
    /// One router per modality.
    PerModality,
}

/// CSSE settings (TOML-able). The token width comes from the encoder at `init`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsseConfig {
    /// Number of structure experts K_c.
    pub num_experts: usize,
    /// Expert MLP ratio r.
    pub mlp_ratio: usize,
    /// Expert output dropout.
    pub dropout: f64,
    /// Shared or per-modality router.
    pub router: StructureRouter,
}

impl Default for CsseConfig {
    fn default() -> Self {
        Self {
            num_experts: 3,
            mlp_ratio: 2,
            dropout: 0.1,
            router: StructureRouter::Shared,
        }
    }
}

impl CsseConfig {
    fn num_routers(&self) -> usize {
        match self.router {
            StructureRouter::Shared => 1,
            StructureRouter::PerModality => 3,
        }
    }

    fn expert_config(&self, dim: usize) -> ExpertBlockConfig {
        ExpertBlockConfig {
            dim,
            mlp_ratio: self.mlp_ratio,
            dropout: self.dropout,
        }
    }

    /// Build CSSE for tokens of width `dim`.
    pub fn init<B: Backend>(&self, dim: usize, device: &B::Device) -> Csse<B> {
        let k = self.num_experts.max(1);
        Csse {
            routers: (0..self.num_routers())
                .map(|_| LinearConfig::new(dim, k).init(device))
                .collect(),
            experts: (0..k)
                .map(|_| self.expert_config(dim).init(device))
                .collect(),
        }
    }

    /// Learnable parameters for width `dim`.
    pub fn num_params(&self, dim: usize) -> usize {
        let k = self.num_experts.max(1);
        self.num_routers() * (dim * k + k) + k * self.expert_config(dim).num_params()
    }

    /// Multiply-adds per sample for `tokens` patch tokens per modality, width `dim`.
    pub fn macs(&self, dim: usize, tokens: usize) -> u64 {
        let k = self.num_experts.max(1);
        let router = (3 * tokens * dim * k) as u64;
        let pooling = (k * 3 * tokens * dim) as u64;
        router + pooling + k as u64 * self.expert_config(dim).macs(3 * tokens)
    }
}

/// The CSSE layer: soft router(s) plus K_c expert blocks.
#[derive(Module, Debug)]
pub struct Csse<B: Backend> {
    /// FC_r: one (shared) or three (per modality) D -> K_c routers.
    pub routers: Vec<Linear<B>>,
    /// The K_c structure expert blocks.
    pub experts: Vec<ExpertBlock<B>>,
}

/// What CSSE returns for a batch.
#[derive(Debug, Clone)]
pub struct CsseOutput<B: Backend> {
    /// Pooled structure expert features `[B, K_c, D]`.
    pub features: Tensor<B, 3>,
    /// Routing weights `[B, 3N, K_c]`; each token's row sums to 1.
    pub routing: Tensor<B, 3>,
}

impl<B: Backend> Csse<B> {
    /// Number of structure experts.
    pub fn num_experts(&self) -> usize {
        self.experts.len()
    }

    /// Run CSSE on patch tokens `[B, 3, N, D]`.
    pub fn forward(&self, patches: Tensor<B, 4>) -> Result<CsseOutput<B>, ExpertError> {
        self.forward_masked(patches, None)
    }

    /// [`Self::forward`] where `modality_mask` `[B, 3]` (1 = present, 0 = absent) zeroes the
    /// routing weights of absent modalities' tokens: each expert feature is the weighted mean
    /// over present tokens only (the experts are token-wise, so absent tokens do not reach it).
    /// The returned routing keeps the softmax weights before masking.
    pub fn forward_masked(
        &self,
        patches: Tensor<B, 4>,
        modality_mask: Option<Tensor<B, 2>>,
    ) -> Result<CsseOutput<B>, ExpertError> {
        let [batch, modalities, tokens, dim] = patches.dims();
        if modalities != 3 {
            return Err(ExpertError::Shape {
                what: "patches",
                expected: "[B, 3, N, D]".into(),
                got: patches.dims().to_vec(),
            });
        }
        if let Some(mask) = &modality_mask {
            if mask.dims() != [batch, 3] {
                return Err(ExpertError::Shape {
                    what: "modality_mask",
                    expected: "[B, 3]".into(),
                    got: mask.dims().to_vec(),
                });
            }
        }
        let token_mask = modality_mask.map(|mask| {
            mask.unsqueeze_dim::<3>(2)
                .expand([batch, 3, tokens])
                .reshape([batch, 3 * tokens])
        });
        let all = patches.clone().reshape([batch, 3 * tokens, dim]);
        let logits = if self.routers.len() == 1 {
            self.routers[0].forward(all.clone())
        } else {
            let per_modality = self
                .routers
                .iter()
                .enumerate()
                .map(|(m, router)| {
                    let p = patches
                        .clone()
                        .slice_dim(1, m..m + 1)
                        .reshape([batch, tokens, dim]);
                    router.forward(p)
                })
                .collect();
            Tensor::cat(per_modality, 1)
        };
        let routing = softmax(logits, 2); // [B, 3N, K_c]
        let features = self
            .experts
            .iter()
            .enumerate()
            .map(|(j, expert)| {
                let w = routing
                    .clone()
                    .slice_dim(2, j..j + 1)
                    .reshape([batch, 3 * tokens]);
                let w = match &token_mask {
                    Some(mask) => w * mask.clone(),
                    None => w,
                };
                masked_mean(expert.forward(all.clone()), w).unsqueeze_dim::<3>(1)
            })
            .collect();
        Ok(CsseOutput {
            features: Tensor::cat(features, 1),
            routing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;

    #[test]
    fn routing_weights_sum_to_one_and_shapes_hold() {
        let device = Default::default();
        for router in [StructureRouter::Shared, StructureRouter::PerModality] {
            let cfg = CsseConfig {
                router,
                ..CsseConfig::default()
            };
            let csse = cfg.init::<Flex>(16, &device);
            assert_eq!(csse.num_params(), cfg.num_params(16));
            let p =
                Tensor::<Flex, 4>::random([2, 3, 5, 16], Distribution::Normal(0.0, 1.0), &device);
            let out = csse.forward(p).unwrap();
            assert_eq!(out.features.dims(), [2, 3, 16]);
            assert_eq!(out.routing.dims(), [2, 15, 3]);
            let sums: Vec<f32> = out.routing.sum_dim(2).into_data().to_vec().unwrap();
            assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
        }
    }

    #[test]
    fn router_and_experts_receive_gradients() {
        let device = Default::default();
        let csse = CsseConfig::default().init::<Autodiff<Flex>>(16, &device);
        let p = Tensor::random([2, 3, 5, 16], Distribution::Normal(0.0, 1.0), &device);
        let out = csse.forward(p).unwrap();
        let grads = out.features.powi_scalar(2).sum().backward();
        let g = csse.routers[0].weight.grad(&grads).unwrap();
        assert!(g.abs().sum().into_scalar() > 0.0);
        assert!(csse
            .experts
            .iter()
            .all(|e| e.fc2.weight.grad(&grads).is_some()));
    }

    #[test]
    fn wrong_modality_count_is_an_error() {
        let device = Default::default();
        let csse = CsseConfig::default().init::<Flex>(8, &device);
        let err = csse
            .forward(Tensor::zeros([1, 2, 4, 8], &device))
            .unwrap_err();
        assert!(err.to_string().contains("[B, 3, N, D]"), "{err}");
    }
}
