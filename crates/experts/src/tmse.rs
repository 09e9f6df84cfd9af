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
use crate::pooling::{masked_mean, masked_mean_or, straight_through};
use crate::ExpertError;
use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
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

/// Where the straight-through sampling mask enters the expert (the forward value is the same:
/// the expert block is token-wise, so pooling its output over the sampled tokens equals running
/// it on the masked tokens; what differs is the mask's gradient and the empty-mask fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskGradient {
    /// The expert runs on every token and the mask weights only the pooling: a token's score
    /// learns from how its own expert output would move the pooled feature, and an empty mask
    /// falls back to the mean over all (present) tokens' outputs (default).
    Pool,
    /// The mask also multiplies the expert input (`X = S_st * P`): unsampled tokens enter as
    /// zeros, so their score gradient is that of the constant `E(0)` plus a per-token input
    /// gain, and an empty mask pools `E(0)`, the same for every image (the behaviour before
    /// this switch existed).
    Input,
}

/// Scale of a route's inputs to the keep decision `s > tau` (Eqs. 2-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteNorm {
    /// As the paper: `s = sigmoid(alpha + delta)`, `tau = sigmoid(FC_3(c))` (default).
    None,
    /// Scale-free decisions: the score logits `alpha + delta` of a modality's tokens are
    /// standardised per sample (minus their mean, over their standard deviation) before the
    /// sigmoid, and the class token enters `FC_3` scaled to unit RMS. The threshold then
    /// compares each token with the other tokens of its modality, and neither an offset shared
    /// by all of a modality's tokens (their common component) nor the modality's token scale
    /// can keep or drop the whole modality. `FC_3` starts at zero (`tau = 1/2` for every
    /// image), so at initialisation every route keeps the above-mean tokens of every modality.
    /// Without it, at initialisation that offset is many times the token-to-token spread and
    /// every route keeps all or none of a modality's tokens. The threshold still learns how
    /// many tokens pass.
    Tokens,
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
    /// Where the straight-through mask enters the expert.
    pub mask_gradient: MaskGradient,
    /// Scale of the route inputs to the keep decision.
    pub route_norm: RouteNorm,
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
            mask_gradient: MaskGradient::Pool,
            route_norm: RouteNorm::None,
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
        // Scale-free routes start from tau = 1/2 for every image: with standardised scores
        // every route then keeps about half of each modality's tokens (the above-mean ones).
        let threshold_config = match self.route_norm {
            RouteNorm::None => LinearConfig::new(dim, 1),
            RouteNorm::Tokens => LinearConfig::new(dim, 1).with_initializer(Initializer::Zeros),
        };
        let routes = (0..self.num_routes())
            .map(|_| TokenRoute {
                score_hidden: LinearConfig::new(dim, hidden).init(device),
                score_out: LinearConfig::new(hidden, 1).init(device),
                threshold: threshold_config.init(device),
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
            route_norm: self.route_norm,
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
    /// Scale of the route inputs to the keep decision (no weights: not part of the record).
    pub route_norm: RouteNorm,
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
    /// the feature at all). The mask enters the experts as [`MaskGradient::Pool`] (the default).
    pub fn forward_masked(
        &self,
        class_tokens: Tensor<B, 3>,
        patches: Tensor<B, 4>,
        text: Option<Tensor<B, 4>>,
        modality_mask: Option<Tensor<B, 2>>,
    ) -> Result<TmseOutput<B>, ExpertError> {
        self.forward_with(
            class_tokens,
            patches,
            text,
            modality_mask,
            MaskGradient::Pool,
        )
    }

    /// [`Self::forward_masked`] with the straight-through mask entering the experts as
    /// `mask_gradient` says ([`TmseConfig::mask_gradient`]; the setting is not a field of the
    /// layer, so checkpoints of the layer keep their record layout).
    pub fn forward_with(
        &self,
        class_tokens: Tensor<B, 3>,
        patches: Tensor<B, 4>,
        text: Option<Tensor<B, 4>>,
        modality_mask: Option<Tensor<B, 2>>,
        mask_gradient: MaskGradient,
    ) -> Result<TmseOutput<B>, ExpertError> {
        let [batch, _, tokens, dim] = patches.dims();
        if let Some(mask) = &modality_mask {
            if mask.dims() != [batch, 3] {
                return Err(shape_error("modality_mask", "[B, 3]", &mask.dims()));
            }
        }
        self.check_shapes(&class_tokens, &patches, text.as_ref())?;
        let k_s = self.num_experts();
        let parts = ModalityParts::new(&class_tokens, &patches, text);
        let all_patches = patches.clone().reshape([batch, 3 * tokens, dim]);
        // Tokens an empty mask falls back to: all of them, or those of present modalities.
        let fallback = modality_mask.as_ref().map(|present| {
            present
                .clone()
                .unsqueeze_dim::<3>(2)
                .expand([batch, 3, tokens])
                .reshape([batch, 3 * tokens])
        });
        let mut features = Vec::with_capacity(k_s);
        let mut masks = Vec::with_capacity(k_s);
        for (i, expert) in self.experts.iter().enumerate() {
            let mut kept_masks = Vec::with_capacity(3);
            for m in 0..3 {
                let mut mask = self.sample(self.route(i, m), &parts, i, m);
                if let Some(present) = &modality_mask {
                    mask = mask * present.clone().slice_dim(1, m..m + 1);
                }
                kept_masks.push(mask);
            }
            let mask = Tensor::cat(kept_masks, 1); // [B, 3N]
            let pooled = match mask_gradient {
                MaskGradient::Pool => {
                    let y = expert.forward(all_patches.clone());
                    masked_mean_or(y, mask.clone(), fallback.clone())
                }
                MaskGradient::Input => {
                    let x = all_patches.clone() * mask.clone().unsqueeze_dim::<3>(2);
                    masked_mean(expert.forward(x), mask.clone())
                }
            };
            features.push(pooled.unsqueeze_dim::<3>(1));
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

    /// Checks `patches` `[B, 3, N, D]`, `class_tokens` `[B, 3, D]`, `text` `[B, K_s or 1, 3, D]`.
    fn check_shapes(
        &self,
        class_tokens: &Tensor<B, 3>,
        patches: &Tensor<B, 4>,
        text: Option<&Tensor<B, 4>>,
    ) -> Result<(), ExpertError> {
        let [batch, modalities, _, dim] = patches.dims();
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
        if let Some(t) = text {
            let [tb, tk, tm, td] = t.dims();
            if tb != batch || (tk != self.num_experts() && tk != 1) || tm != 3 || td != dim {
                return Err(shape_error("text", "[B, K_s or 1, 3, D]", &t.dims()));
            }
        }
        Ok(())
    }

    /// The margins `[B, K_s, 3, N]` whose sign is each route's hard decision (kept where
    /// positive; top-k keeps margins `>= 0`): `s - tau` (dynamic), `s - fixed_threshold`, or
    /// the score minus the k-th highest score; all ones for `all_tokens`. A diagnostic of the
    /// routes (how far each modality's tokens are from its threshold); same checks as
    /// [`Self::forward`].
    pub fn route_margins(
        &self,
        class_tokens: Tensor<B, 3>,
        patches: Tensor<B, 4>,
        text: Option<Tensor<B, 4>>,
    ) -> Result<Tensor<B, 4>, ExpertError> {
        let [batch, _, tokens, _] = patches.dims();
        self.check_shapes(&class_tokens, &patches, text.as_ref())?;
        let parts = ModalityParts::new(&class_tokens, &patches, text);
        let rows = (0..self.num_experts())
            .map(|i| {
                let per_modality = (0..3)
                    .map(|m| self.margin(self.route(i, m), &parts, i, m).0)
                    .collect();
                Tensor::cat(per_modality, 1).reshape([batch, 1, 3, tokens])
            })
            .collect();
        Ok(Tensor::cat(rows, 1))
    }

    /// The route's score `[B, N]` on modality `m`: `sigmoid(alpha + delta)` (Eqs. 2, 4-6), the
    /// logits standardised over the tokens first under [`RouteNorm::Tokens`].
    fn score(
        &self,
        route: &TokenRoute<B>,
        parts: &ModalityParts<B>,
        expert: usize,
        m: usize,
    ) -> Tensor<B, 2> {
        let patches = parts.patches[m].clone();
        let [batch, tokens, _] = patches.dims();
        let device = patches.device();
        let alpha = route
            .score_out
            .forward(gelu(route.score_hidden.forward(patches))); // [B,N,1]
        let beta = parts
            .beta(expert, m)
            .map(|b| b.unsqueeze_dim::<3>(2))
            .unwrap_or_else(|| Tensor::zeros([batch, tokens, 1], &device));
        let pair = Tensor::cat(vec![alpha.clone(), beta], 2); // [B, N, 2]
        let delta = route
            .modulation_out
            .forward(gelu(route.modulation_hidden.forward(pair)));
        let logits = (alpha + delta).reshape([batch, tokens]);
        match self.route_norm {
            RouteNorm::None => sigmoid(logits),
            RouteNorm::Tokens => sigmoid(standardise_rows(logits)),
        }
    }

    /// The decision margin `[B, N]` of one route on one modality and the soft value whose
    /// gradient the straight-through mask takes (see the module docs).
    fn margin(
        &self,
        route: &TokenRoute<B>,
        parts: &ModalityParts<B>,
        expert: usize,
        m: usize,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let [batch, tokens, _] = parts.patches[m].dims();
        if self.sampling == SamplingStrategy::AllTokens {
            let ones = Tensor::ones([batch, tokens], &parts.patches[m].device());
            return (ones.clone(), ones);
        }
        let score = self.score(route, parts, expert, m);
        match self.sampling {
            SamplingStrategy::Dynamic => {
                let class_token = parts.class_tokens[m].clone();
                let class_token = match self.route_norm {
                    RouteNorm::None => class_token,
                    RouteNorm::Tokens => {
                        let rms = class_token
                            .clone()
                            .powi_scalar(2)
                            .mean_dim(1)
                            .add_scalar(1e-12);
                        class_token / rms.sqrt()
                    }
                };
                let tau = sigmoid(route.threshold.forward(class_token)); // [B, 1]
                let soft = score - tau;
                (soft.clone(), soft)
            }
            SamplingStrategy::FixedThreshold => {
                let soft = score.sub_scalar(self.fixed_threshold);
                (soft.clone(), soft)
            }
            SamplingStrategy::TopK | SamplingStrategy::AllTokens => {
                let k = ((tokens as f32 * self.top_k_fraction).round() as usize).clamp(1, tokens);
                // The k-th highest score `[B, 1]` (a sort: Burn 0.21's autodiff has no topk).
                let kth = score
                    .clone()
                    .detach()
                    .sort_descending(1)
                    .slice_dim(1, k - 1..k);
                (score.clone() - kth, score)
            }
        }
    }

    /// The straight-through sampling mask `[B, N]` of one route on one modality.
    fn sample(
        &self,
        route: &TokenRoute<B>,
        parts: &ModalityParts<B>,
        expert: usize,
        m: usize,
    ) -> Tensor<B, 2> {
        let (margin, soft) = self.margin(route, parts, expert, m);
        let hard = match self.sampling {
            SamplingStrategy::AllTokens => return margin,
            SamplingStrategy::TopK => margin.greater_equal_elem(0.0).float(),
            SamplingStrategy::Dynamic | SamplingStrategy::FixedThreshold => {
                margin.greater_elem(0.0).float()
            }
        };
        straight_through(hard, soft)
    }
}

/// Per-modality slices of TMSE's inputs: patch tokens `[B, N, D]`, their unit vectors, class
/// tokens `[B, D]` and the unit text features `[B, K, 3, D]` (K = K_s or 1).
struct ModalityParts<B: Backend> {
    patches: Vec<Tensor<B, 3>>,
    unit_patches: Vec<Tensor<B, 3>>,
    class_tokens: Vec<Tensor<B, 2>>,
    text: Option<Tensor<B, 4>>,
}

impl<B: Backend> ModalityParts<B> {
    fn new(
        class_tokens: &Tensor<B, 3>,
        patches: &Tensor<B, 4>,
        text: Option<Tensor<B, 4>>,
    ) -> Self {
        let [batch, _, tokens, dim] = patches.dims();
        let patches: Vec<Tensor<B, 3>> = (0..3)
            .map(|m| {
                patches
                    .clone()
                    .slice_dim(1, m..m + 1)
                    .reshape([batch, tokens, dim])
            })
            .collect();
        let unit_patches = patches.iter().map(|p| unit_rows(p.clone())).collect();
        let class_tokens = (0..3)
            .map(|m| {
                class_tokens
                    .clone()
                    .slice_dim(1, m..m + 1)
                    .reshape([batch, dim])
            })
            .collect();
        let text = text.map(|t| {
            let [b, k, _, _] = t.dims();
            unit_rows(t.reshape([b, k * 3, dim])).reshape([b, k, 3, dim])
        });
        Self {
            patches,
            unit_patches,
            class_tokens,
            text,
        }
    }

    /// `beta = cos(t, P)` `[B, N]` of modality `m` for expert `expert`, or `None` without text.
    fn beta(&self, expert: usize, m: usize) -> Option<Tensor<B, 2>> {
        let t = self.text.as_ref()?;
        let [batch, k, _, dim] = t.dims();
        let k = if k == 1 { 0 } else { expert };
        let t_m = t.clone().slice_dim(1, k..k + 1).slice_dim(2, m..m + 1);
        let unit = self.unit_patches[m].clone();
        let tokens = unit.dims()[1];
        Some(
            (unit * t_m.reshape([batch, 1, dim]))
                .sum_dim(2)
                .reshape([batch, tokens]),
        )
    }
}

/// Each row of `x` `[B, N]` minus its mean, over its standard deviation (`+ 1e-6` under the
/// root: a constant row becomes zeros).
fn standardise_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let centred = x.clone() - x.mean_dim(1);
    let std = centred
        .clone()
        .powi_scalar(2)
        .mean_dim(1)
        .add_scalar(1e-6)
        .sqrt();
    centred / std
}

/// Rows of `x` `[B, T, D]` scaled to unit L2 norm along the last axis (zero rows stay zero).
fn unit_rows<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    x.clone() / x.powi_scalar(2).sum_dim(2).sqrt().clamp_min(1e-6)
}

fn shape_error(what: &'static str, expected: &str, got: &[usize]) -> ExpertError {
    ExpertError::Shape {
        what,
        expected: expected.to_string(),
        got: got.to_vec(),
    }
}

#[cfg(test)]
mod tests;
