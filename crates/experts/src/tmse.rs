//! TMSE: text-modulated semantic experts (Eqs. 2-7).
//!
//! For expert `i` and modality `m` a route scores every patch token (Eq. 2), the modality class
//! token sets a dynamic threshold, the caption's semantic matrix `beta = cos(t, P)` modulates the
//! scores (Eqs. 4-6), a hard mask keeps the tokens above the threshold (straight-through, Eq. 3),
//! and the expert runs on the masked tokens of the three modalities, pooled over the kept ones.
//!
//! Gradient of the threshold: the hard mask is `1[s > tau]`; the straight-through soft value used
//! for the backward pass is `s - tau` (for `top_k`: `s`), so the gradient with respect to `s`
//! equals the soft score's and the threshold layer `FC_3` also learns (with `s` alone it would
//! never receive a gradient).

use crate::block::{ExpertBlock, ExpertBlockConfig};
use crate::pooling::{masked_mean, straight_through};
use crate::ExpertError;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, sigmoid};
use serde::{Deserialize, Serialize};

/// Whether each modality has its own routes or one route per expert serves all modalities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SemanticRouter {
    /// One route per (expert, modality) pair (paper default).
    PerModality,
    /// One route per expert, shared by the three modalities.
    Shared,
}

/// How the hard sampling mask is formed (Table VI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingStrategy {
    /// `1[s > tau]` with the CLS-driven dynamic threshold (default).
    Dynamic,
    /// Every token is kept; routes are unused.
    AllTokens,
    /// The `top_k_fraction` highest-scoring tokens of each modality.
    TopK,
    /// `1[s > fixed_threshold]`.
    FixedThreshold,
}

/// TMSE settings (TOML-able). The token width comes from the encoder at `init`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TmseConfig {
    /// Number of semantic experts K_s.
    pub num_experts: usize,
    /// Expert MLP ratio r.
    pub mlp_ratio: usize,
    /// Expert output dropout.
    pub dropout: f64,
    /// Per-modality or shared routes.
    pub router: SemanticRouter,
    /// Sampling strategy of the hard mask.
    pub sampling: SamplingStrategy,
    /// Fraction of tokens kept by `top_k`.
    pub top_k_fraction: f32,
    /// Threshold of `fixed_threshold`.
    pub fixed_threshold: f32,
    /// Hidden width of the text-modulation MLP (`[alpha; beta]` 2 -> hidden -> 1).
    pub modulation_hidden: usize,
    /// Route-score hidden width as a divisor of D (FC_1: D -> D / divisor).
    pub route_hidden_divisor: usize,
}

impl Default for TmseConfig {
    fn default() -> Self {
        Self {
            num_experts: 3,
            mlp_ratio: 2,
            dropout: 0.1,
            router: SemanticRouter::PerModality,
            sampling: SamplingStrategy::Dynamic,
            top_k_fraction: 0.5,
            fixed_threshold: 0.5,
            modulation_hidden: 16,
            route_hidden_divisor: 4,
        }
    }
}

impl TmseConfig {
    /// Number of routes: K_s per modality, or K_s shared.
    pub fn num_routes(&self) -> usize {
        match self.router {
            SemanticRouter::PerModality => self.num_experts * 3,
            SemanticRouter::Shared => self.num_experts,
        }
    }

    fn expert_config(&self, dim: usize) -> ExpertBlockConfig {
        ExpertBlockConfig {
            dim,
            mlp_ratio: self.mlp_ratio,
            dropout: self.dropout,
        }
    }

    fn route_hidden(&self, dim: usize) -> usize {
        (dim / self.route_hidden_divisor.max(1)).max(1)
    }

    /// Build TMSE for tokens of width `dim`.
    pub fn init<B: Backend>(&self, dim: usize, device: &B::Device) -> Tmse<B> {
        let hidden = self.route_hidden(dim);
        let mod_hidden = self.modulation_hidden.max(1);
        let routes = (0..self.num_routes())
            .map(|_| TokenRoute {
                score_hidden: LinearConfig::new(dim, hidden).init(device),
                score_out: LinearConfig::new(hidden, 1).init(device),
                threshold: LinearConfig::new(dim, 1).init(device),
                modulation_hidden: LinearConfig::new(2, mod_hidden).init(device),
                modulation_out: LinearConfig::new(mod_hidden, 1).init(device),
            })
            .collect();
        let experts = (0..self.num_experts)
            .map(|_| self.expert_config(dim).init(device))
            .collect();
        Tmse {
            routes,
            experts,
            per_modality: self.router == SemanticRouter::PerModality,
            sampling: self.sampling,
            top_k_fraction: self.top_k_fraction,
            fixed_threshold: self.fixed_threshold,
        }
    }

    /// Learnable parameters for width `dim`.
    pub fn num_params(&self, dim: usize) -> usize {
        let h = self.route_hidden(dim);
        let mh = self.modulation_hidden.max(1);
        let route = (dim * h + h) + (h + 1) + (dim + 1) + (2 * mh + mh) + (mh + 1);
        self.num_routes() * route + self.num_experts * self.expert_config(dim).num_params()
    }

    /// Multiply-adds per sample for `tokens` patch tokens per modality, width `dim`.
    pub fn macs(&self, dim: usize, tokens: usize) -> u64 {
        let h = self.route_hidden(dim);
        let mh = self.modulation_hidden.max(1);
        let per_route_modality = (tokens * (dim * h + h + 2 * mh + mh + dim) + dim) as u64; // FC1, FC2, FC4, FC5, cos; FC3
        let routes = (self.num_experts * 3) as u64 * per_route_modality;
        let experts = self.num_experts as u64 * self.expert_config(dim).macs(3 * tokens);
        routes + experts
    }
}

/// One route (expert i, modality m): token scores, dynamic threshold and text modulation.
#[derive(Module, Debug)]
pub struct TokenRoute<B: Backend> {
    /// FC_1: D -> D/4.
    pub score_hidden: Linear<B>,
    /// FC_2: D/4 -> 1.
    pub score_out: Linear<B>,
    /// FC_3: class token -> threshold logit.
    pub threshold: Linear<B>,
    /// FC_4: `[alpha; beta]` -> hidden.
    pub modulation_hidden: Linear<B>,
    /// FC_5: hidden -> 1.
    pub modulation_out: Linear<B>,
}

/// The TMSE layer: routes plus K_s expert blocks.
#[derive(Module, Debug)]
pub struct Tmse<B: Backend> {
    /// Routes, indexed `expert * 3 + modality` (per-modality) or `expert` (shared).
    pub routes: Vec<TokenRoute<B>>,
    /// The K_s semantic expert blocks.
    pub experts: Vec<ExpertBlock<B>>,
    /// True when routes are per modality.
    pub per_modality: bool,
    /// Sampling strategy.
    pub sampling: SamplingStrategy,
    /// Fraction kept by `top_k`.
    pub top_k_fraction: f32,
    /// Threshold of `fixed_threshold`.
    pub fixed_threshold: f32,
}

/// What TMSE returns for a batch.
#[derive(Debug, Clone)]
pub struct TmseOutput<B: Backend> {
    /// Pooled semantic expert features `[B, K_s, D]`.
    pub features: Tensor<B, 3>,
    /// Hard sampling masks `[B, K_s, 3, N]` (1 = kept), detached: the Fig. 9 visualisation.
    pub masks: Tensor<B, 4>,
    /// Kept-token counts per expert and modality `[B, K_s, 3]`.
    pub counts: Tensor<B, 3>,
}

impl<B: Backend> Tmse<B> {
    /// Number of semantic experts.
    pub fn num_experts(&self) -> usize {
        self.experts.len()
    }

    fn route(&self, expert: usize, modality: usize) -> &TokenRoute<B> {
        if self.per_modality {
            &self.routes[expert * 3 + modality]
        } else {
            &self.routes[expert]
        }
    }

    /// Run TMSE. `class_tokens` `[B, 3, D]`, `patches` `[B, 3, N, D]` (modalities RGB, NIR, TIR),
    /// `text` `[B, K, 3, D]` with K = K_s (one caption sample per expert) or K = 1 (one caption
    /// shared by the experts), or `None` (beta = 0, "w/o text").
    pub fn forward(
        &self,
        class_tokens: Tensor<B, 3>,
        patches: Tensor<B, 4>,
        text: Option<Tensor<B, 4>>,
    ) -> Result<TmseOutput<B>, ExpertError> {
        self.forward_masked(class_tokens, patches, text, None)
    }

    /// [`Self::forward`] where `modality_mask` `[B, 3]` (1 = present, 0 = absent) removes the
    /// tokens of absent modalities from every sampling mask: an expert pools only over sampled
    /// tokens of present modalities (its blocks are token-wise, so absent tokens do not reach
    /// the feature at all).
    pub fn forward_masked(
        &self,
        class_tokens: Tensor<B, 3>,
        patches: Tensor<B, 4>,
        text: Option<Tensor<B, 4>>,
        modality_mask: Option<Tensor<B, 2>>,
    ) -> Result<TmseOutput<B>, ExpertError> {
        let [batch, modalities, tokens, dim] = patches.dims();
        if let Some(mask) = &modality_mask {
            if mask.dims() != [batch, 3] {
                return Err(shape_error("modality_mask", "[B, 3]", &mask.dims()));
            }
        }
        let k_s = self.num_experts();
        if modalities != 3 {
            return Err(shape_error("patches", "[B, 3, N, D]", &patches.dims()));
        }
        if class_tokens.dims() != [batch, 3, dim] {
            return Err(shape_error(
                "class_tokens",
                "[B, 3, D]",
                &class_tokens.dims(),
            ));
        }
        if let Some(t) = &text {
            let [tb, tk, tm, td] = t.dims();
            if tb != batch || (tk != k_s && tk != 1) || tm != 3 || td != dim {
                return Err(shape_error("text", "[B, K_s or 1, 3, D]", &t.dims()));
            }
        }
        let unit_patches: Vec<Tensor<B, 3>> = (0..3)
            .map(|m| {
                let p = patches
                    .clone()
                    .slice_dim(1, m..m + 1)
                    .reshape([batch, tokens, dim]);
                p.clone() / p.powi_scalar(2).sum_dim(2).sqrt().clamp_min(1e-6)
            })
            .collect();
        let mut features = Vec::with_capacity(k_s);
        let mut masks = Vec::with_capacity(k_s);
        for (i, expert) in self.experts.iter().enumerate() {
            let mut kept_tokens = Vec::with_capacity(3);
            let mut kept_masks = Vec::with_capacity(3);
            for (m, unit) in unit_patches.iter().enumerate() {
                let p_m = patches
                    .clone()
                    .slice_dim(1, m..m + 1)
                    .reshape([batch, tokens, dim]);
                let c_m = class_tokens
                    .clone()
                    .slice_dim(1, m..m + 1)
                    .reshape([batch, dim]);
                let beta = text.as_ref().map(|t| {
                    let k = if t.dims()[1] == 1 { 0 } else { i };
                    let t_m = t.clone().slice_dim(1, k..k + 1).slice_dim(2, m..m + 1);
                    let t_m = t_m.reshape([batch, 1, dim]);
                    let t_m = t_m.clone() / t_m.powi_scalar(2).sum_dim(2).sqrt().clamp_min(1e-6);
                    (unit.clone() * t_m).sum_dim(2).reshape([batch, tokens])
                });
                let mut mask = self.sample(self.route(i, m), p_m.clone(), c_m, beta);
                if let Some(present) = &modality_mask {
                    mask = mask * present.clone().slice_dim(1, m..m + 1);
                }
                kept_tokens.push(p_m * mask.clone().unsqueeze_dim::<3>(2));
                kept_masks.push(mask);
            }
            let x = Tensor::cat(kept_tokens, 1); // [B, 3N, D]
            let mask = Tensor::cat(kept_masks, 1); // [B, 3N]
            let y = expert.forward(x);
            features.push(masked_mean(y, mask.clone()).unsqueeze_dim::<3>(1));
            masks.push(mask.detach().reshape([batch, 1, 3, tokens]));
        }
        let masks = Tensor::cat(masks, 1);
        let counts = masks.clone().sum_dim(3).reshape([batch, k_s, 3]);
        Ok(TmseOutput {
            features: Tensor::cat(features, 1),
            masks,
            counts,
        })
    }

    /// The straight-through sampling mask `[B, N]` of one route on one modality.
    fn sample(
        &self,
        route: &TokenRoute<B>,
        patches: Tensor<B, 3>,
        class_token: Tensor<B, 2>,
        beta: Option<Tensor<B, 2>>,
    ) -> Tensor<B, 2> {
        let [batch, tokens, _] = patches.dims();
        let device = patches.device();
        if self.sampling == SamplingStrategy::AllTokens {
            return Tensor::ones([batch, tokens], &device);
        }
        let alpha = route
            .score_out
            .forward(gelu(route.score_hidden.forward(patches))); // [B,N,1]
        let beta = beta
            .map(|b| b.unsqueeze_dim::<3>(2))
            .unwrap_or_else(|| Tensor::zeros([batch, tokens, 1], &device));
        let pair = Tensor::cat(vec![alpha.clone(), beta], 2); // [B, N, 2]
        let delta = route
            .modulation_out
            .forward(gelu(route.modulation_hidden.forward(pair)));
        let score = sigmoid(alpha + delta).reshape([batch, tokens]);
        match self.sampling {
            SamplingStrategy::Dynamic => {
                let tau = sigmoid(route.threshold.forward(class_token)); // [B, 1]
                let soft = score - tau;
                straight_through(soft.clone().greater_elem(0.0).float(), soft)
            }
            SamplingStrategy::FixedThreshold => {
                let soft = score.sub_scalar(self.fixed_threshold);
                straight_through(soft.clone().greater_elem(0.0).float(), soft)
            }
            SamplingStrategy::TopK | SamplingStrategy::AllTokens => {
                let k = ((tokens as f32 * self.top_k_fraction).round() as usize).clamp(1, tokens);
                let kth = score.clone().detach().topk(k, 1).slice_dim(1, k - 1..k); // [B, 1]
                let hard = score.clone().greater_equal(kth).float();
                straight_through(hard, score)
            }
        }
    }
}

fn shape_error(what: &'static str, expected: &str, got: &[usize]) -> ExpertError {
    ExpertError::Shape {
        what,
        expected: expected.to_string(),
        got: got.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;

    type Ad = Autodiff<Flex>;

    fn inputs<Bk: Backend>(b: usize, n: usize, d: usize) -> (Tensor<Bk, 3>, Tensor<Bk, 4>) {
        let device = Default::default();
        let cls = Tensor::random([b, 3, d], Distribution::Normal(0.0, 1.0), &device);
        let patches = Tensor::random([b, 3, n, d], Distribution::Normal(0.0, 1.0), &device);
        (cls, patches)
    }

    #[test]
    fn shapes_masks_and_counts_agree() {
        let device = Default::default();
        let cfg = TmseConfig::default();
        let tmse = cfg.init::<Flex>(16, &device);
        let (cls, patches) = inputs::<Flex>(2, 6, 16);
        let text = Tensor::random([2, 3, 3, 16], Distribution::Normal(0.0, 1.0), &device);
        let out = tmse.forward(cls, patches, Some(text)).unwrap();
        assert_eq!(out.features.dims(), [2, 3, 16]);
        assert_eq!(out.masks.dims(), [2, 3, 3, 6]);
        assert_eq!(out.counts.dims(), [2, 3, 3]);
        let masks: Vec<f32> = out.masks.clone().into_data().to_vec().unwrap();
        assert!(
            masks.iter().all(|&v| v == 0.0 || v == 1.0),
            "mask not binary: {masks:?}"
        );
        let total: f32 = out.counts.sum().into_scalar();
        assert_eq!(total, masks.iter().sum::<f32>());
        assert_eq!(tmse.num_params(), cfg.num_params(16));
    }

    #[test]
    fn strategies_keep_expected_token_counts() {
        let device = Default::default();
        let (cls, patches) = inputs::<Flex>(2, 8, 16);
        let count = |sampling| {
            let cfg = TmseConfig {
                sampling,
                ..TmseConfig::default()
            };
            let out = cfg
                .init::<Flex>(16, &device)
                .forward(cls.clone(), patches.clone(), None);
            out.unwrap().counts.into_data().to_vec::<f32>().unwrap()
        };
        assert!(count(SamplingStrategy::AllTokens).iter().all(|&c| c == 8.0));
        assert!(count(SamplingStrategy::TopK).iter().all(|&c| c == 4.0));
        assert!(count(SamplingStrategy::Dynamic)
            .iter()
            .all(|&c| (0.0..=8.0).contains(&c)));
        let shared = TmseConfig {
            router: SemanticRouter::Shared,
            ..TmseConfig::default()
        };
        assert_eq!(shared.init::<Flex>(16, &device).routes.len(), 3);
    }

    /// With alpha forced to 0 and a modulation MLP that only passes beta
    /// (`gamma = sum_j GELU(10 beta)`), a fixed threshold of 0.5 keeps exactly the tokens whose
    /// cosine to the caption is positive; without a caption (beta = 0) none is kept.
    #[test]
    fn text_modulation_keeps_tokens_aligned_with_the_caption() {
        use burn::module::Param;
        let device = Default::default();
        let (d, n) = (16, 10);
        let cfg = TmseConfig {
            sampling: SamplingStrategy::FixedThreshold,
            ..TmseConfig::default()
        };
        let mut tmse = cfg.init::<Flex>(d, &device);
        for route in tmse.routes.iter_mut() {
            let h = cfg.modulation_hidden;
            route.score_out.weight = Param::from_tensor(Tensor::zeros([d / 4, 1], &device));
            route.score_out.bias = Some(Param::from_tensor(Tensor::zeros([1], &device)));
            let w = Tensor::cat(
                vec![
                    Tensor::zeros([1, h], &device),
                    Tensor::full([1, h], 10.0, &device),
                ],
                0,
            );
            route.modulation_hidden.weight = Param::from_tensor(w);
            route.modulation_hidden.bias = Some(Param::from_tensor(Tensor::zeros([h], &device)));
            route.modulation_out.weight = Param::from_tensor(Tensor::ones([h, 1], &device));
            route.modulation_out.bias = Some(Param::from_tensor(Tensor::zeros([1], &device)));
        }
        let (cls, patches) = inputs::<Flex>(2, n, d);
        let text: Tensor<Flex, 4> =
            Tensor::random([2, 1, 3, d], Distribution::Normal(0.0, 1.0), &device);
        let out = tmse
            .forward(cls.clone(), patches.clone(), Some(text.clone()))
            .unwrap();
        // Expected: sign of the dot product between each patch token and its modality's caption.
        let dots = (patches.clone() * text.clone().reshape([2, 3, 1, d]))
            .sum_dim(3)
            .reshape([2, 1, 3, n]);
        let expected: Vec<f32> = dots
            .greater_elem(0.0)
            .float()
            .repeat_dim(1, 3)
            .into_data()
            .to_vec()
            .unwrap();
        let got: Vec<f32> = out.masks.into_data().to_vec().unwrap();
        assert_eq!(got, expected);
        let without = tmse.forward(cls, patches, None).unwrap();
        assert_eq!(without.counts.sum().into_scalar(), 0.0);
        let pooled: Vec<f32> = without.features.into_data().to_vec().unwrap();
        assert!(
            pooled.iter().all(|v| v.is_finite()),
            "empty masks must fall back to the mean"
        );
    }

    #[test]
    fn wrong_text_shape_is_an_error() {
        let device = Default::default();
        let tmse = TmseConfig::default().init::<Flex>(16, &device);
        let (cls, patches) = inputs::<Flex>(2, 6, 16);
        let text = Tensor::zeros([2, 2, 3, 16], &device);
        let err = tmse.forward(cls, patches, Some(text)).unwrap_err();
        assert!(err.to_string().contains("text"), "{err}");
    }

    #[test]
    fn every_parameter_receives_a_gradient() {
        let device = Default::default();
        let tmse = TmseConfig {
            dropout: 0.0,
            ..TmseConfig::default()
        }
        .init::<Ad>(16, &device);
        let (cls, patches) = inputs::<Ad>(4, 16, 16);
        let text = Tensor::random([4, 3, 3, 16], Distribution::Normal(0.0, 1.0), &device);
        let out = tmse.forward(cls, patches, Some(text)).unwrap();
        let grads = out.features.powi_scalar(2).sum().backward();
        for (r, route) in tmse.routes.iter().enumerate() {
            for (name, w) in [
                ("score_hidden", &route.score_hidden.weight),
                ("score_out", &route.score_out.weight),
                ("threshold", &route.threshold.weight),
                ("modulation_hidden", &route.modulation_hidden.weight),
                ("modulation_out", &route.modulation_out.weight),
            ] {
                let g = w.grad(&grads).expect("gradient");
                let norm: f32 = g.abs().sum().into_scalar();
                assert!(norm > 0.0, "route {r} {name} has a zero gradient");
            }
        }
        for e in &tmse.experts {
            assert!(e.fc1.weight.grad(&grads).is_some());
        }
    }

    #[test]
    fn config_round_trips_through_toml() {
        let cfg = TmseConfig {
            sampling: SamplingStrategy::TopK,
            ..TmseConfig::default()
        };
        let back: TmseConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        assert!(toml::from_str::<TmseConfig>("experts = 3").is_err());
        let partial: TmseConfig = toml::from_str("sampling = \"fixed_threshold\"").unwrap();
        assert_eq!(partial.num_experts, 3);
    }
}
