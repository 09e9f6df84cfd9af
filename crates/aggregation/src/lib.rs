//! MGFA: multi-grained features aggregation of NEXT (Eqs. 10-11).
//!
//! The three modality class tokens query the semantic and the structure expert features with two
//! pre-LN cross-attention blocks (each followed by a pre-LN FFN, both residual); the identity
//! feature is the flattened average of the two branches. [`AggregationMode`] selects the rows
//! (a)-(d) of the paper's Table IV.

#![warn(missing_docs)]

use burn::module::Module;
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use serde::{Deserialize, Serialize};

/// Which Table IV row the model implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregationMode {
    /// (a) No MGFA and no experts: `f = [c_R ; c_N ; c_T]`.
    ClassTokens,
    /// (b) MGFA over the modality class tokens taken as one "expert" set.
    ModalityFeatures,
    /// (c) MGFA over the semantic (TMSE) expert features only.
    Semantic,
    /// (d) MGFA over semantic and structure expert features, branches averaged (full NEXT).
    Full,
}

impl AggregationMode {
    /// Whether this row runs the semantic experts.
    pub fn uses_semantic_experts(self) -> bool {
        matches!(self, Self::Semantic | Self::Full)
    }

    /// Whether this row runs the structure experts.
    pub fn uses_structure_experts(self) -> bool {
        matches!(self, Self::Full)
    }

    /// Number of cross-attention branches.
    pub fn num_branches(self) -> usize {
        match self {
            Self::ClassTokens => 0,
            Self::ModalityFeatures | Self::Semantic => 1,
            Self::Full => 2,
        }
    }
}

/// MGFA settings (TOML-able). The token width comes from the encoder at `init`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MgfaConfig {
    /// Table IV row.
    pub mode: AggregationMode,
    /// Attention heads.
    pub num_heads: usize,
    /// FFN hidden ratio (0 = no FFN).
    pub ffn_ratio: usize,
    /// Dropout in attention weights and FFN output.
    pub dropout: f64,
}

impl Default for MgfaConfig {
    fn default() -> Self {
        Self {
            mode: AggregationMode::Full,
            num_heads: 8,
            ffn_ratio: 4,
            dropout: 0.0,
        }
    }
}

/// Errors of the aggregation layer.
#[derive(Debug, thiserror::Error)]
pub enum AggregationError {
    /// A branch's input is missing for the configured mode.
    #[error("aggregation mode {mode:?} needs the {what}")]
    MissingInput {
        /// The configured mode.
        mode: AggregationMode,
        /// Which input is missing.
        what: &'static str,
    },
    /// An input has the wrong shape.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// The expected shape, in words.
        expected: &'static str,
        /// The received shape.
        got: Vec<usize>,
    },
    /// The token width is not divisible by the head count.
    #[error("MGFA width {dim} is not divisible by {heads} heads")]
    Heads {
        /// Token width.
        dim: usize,
        /// Head count.
        heads: usize,
    },
}

impl MgfaConfig {
    /// Build MGFA for width `dim`; fails when `dim` is not a multiple of `num_heads`.
    pub fn init<B: Backend>(
        &self,
        dim: usize,
        device: &B::Device,
    ) -> Result<Mgfa<B>, AggregationError> {
        let heads = self.num_heads.max(1);
        if !dim.is_multiple_of(heads) {
            return Err(AggregationError::Heads { dim, heads });
        }
        let block = || CrossAttentionBlock::new(dim, heads, self.ffn_ratio, self.dropout, device);
        let semantic = (self.mode.num_branches() >= 1).then(block);
        let structure = (self.mode.num_branches() >= 2).then(block);
        Ok(Mgfa {
            semantic,
            structure,
            mode: self.mode,
        })
    }

    /// Learnable parameters for width `dim`.
    pub fn num_params(&self, dim: usize) -> usize {
        let attention = 4 * (dim * dim + dim);
        let norms = 2 * 2 * dim + if self.ffn_ratio > 0 { 2 * dim } else { 0 };
        let hidden = dim * self.ffn_ratio;
        let ffn = if self.ffn_ratio > 0 {
            dim * hidden + hidden + hidden * dim + dim
        } else {
            0
        };
        self.mode.num_branches() * (attention + norms + ffn)
    }

    /// Multiply-adds per sample, width `dim`: the 3 class-token queries attend over
    /// `semantic_keys` features in the first branch and `structure_keys` in the second.
    pub fn macs(&self, dim: usize, semantic_keys: usize, structure_keys: usize) -> u64 {
        let branch = |keys: usize| {
            let (q, k, d) = (3u64, keys as u64, dim as u64);
            let projections = q * d * d * 2 + k * d * d * 2; // q, out ; k, v
            let scores = 2 * q * k * d; // QK^T and weights * V
            let ffn = 2 * q * d * d * self.ffn_ratio as u64;
            projections + scores + ffn
        };
        match self.mode.num_branches() {
            0 => 0,
            1 => branch(semantic_keys),
            _ => branch(semantic_keys) + branch(structure_keys),
        }
    }
}

/// Pre-LN cross-attention (residual to the query) followed by a pre-LN FFN (residual).
#[derive(Module, Debug)]
pub struct CrossAttentionBlock<B: Backend> {
    /// LayerNorm on the queries.
    pub query_norm: LayerNorm<B>,
    /// LayerNorm on the keys/values.
    pub key_norm: LayerNorm<B>,
    /// Multi-head attention.
    pub attention: MultiHeadAttention<B>,
    /// LayerNorm before the FFN (absent when the FFN ratio is 0).
    pub ffn_norm: Option<LayerNorm<B>>,
    /// FFN expansion D -> ratio * D.
    pub ffn_in: Option<Linear<B>>,
    /// FFN projection ratio * D -> D.
    pub ffn_out: Option<Linear<B>>,
    /// Dropout on the FFN output.
    pub dropout: Dropout,
}

impl<B: Backend> CrossAttentionBlock<B> {
    /// A block of width `dim` with `heads` heads and FFN ratio `ffn_ratio` (0 = none).
    pub fn new(
        dim: usize,
        heads: usize,
        ffn_ratio: usize,
        dropout: f64,
        device: &B::Device,
    ) -> Self {
        let has_ffn = ffn_ratio > 0;
        Self {
            query_norm: LayerNormConfig::new(dim).init(device),
            key_norm: LayerNormConfig::new(dim).init(device),
            attention: MultiHeadAttentionConfig::new(dim, heads)
                .with_dropout(dropout)
                .init(device),
            ffn_norm: has_ffn.then(|| LayerNormConfig::new(dim).init(device)),
            ffn_in: has_ffn.then(|| LinearConfig::new(dim, dim * ffn_ratio).init(device)),
            ffn_out: has_ffn.then(|| LinearConfig::new(dim * ffn_ratio, dim).init(device)),
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    /// Queries `[B, Q, D]` attend over `keys` `[B, K, D]`; returns `[B, Q, D]`.
    pub fn forward(&self, queries: Tensor<B, 3>, keys: Tensor<B, 3>) -> Tensor<B, 3> {
        self.forward_masked(queries, keys, None)
    }

    /// [`Self::forward`] where query `q` does not attend to key `k` when `mask[b, q, k]` is true
    /// (`mask` `[B, Q, K]`; every query needs at least one key that is not masked).
    pub fn forward_masked(
        &self,
        queries: Tensor<B, 3>,
        keys: Tensor<B, 3>,
        mask: Option<Tensor<B, 3, Bool>>,
    ) -> Tensor<B, 3> {
        let q = self.query_norm.forward(queries.clone());
        let kv = self.key_norm.forward(keys);
        let mut input = MhaInput::new(q, kv.clone(), kv);
        if let Some(mask) = mask {
            input = input.mask_attn(mask);
        }
        let attended = self.attention.forward(input).context;
        let z = queries + attended;
        match (&self.ffn_norm, &self.ffn_in, &self.ffn_out) {
            (Some(norm), Some(fc_in), Some(fc_out)) => {
                let h = fc_out.forward(gelu(fc_in.forward(norm.forward(z.clone()))));
                z + self.dropout.forward(h)
            }
            _ => z,
        }
    }
}

/// The MGFA layer for one Table IV row.
#[derive(Module, Debug)]
pub struct Mgfa<B: Backend> {
    /// Branch over the semantic expert features (or the modality features in row (b)).
    pub semantic: Option<CrossAttentionBlock<B>>,
    /// Branch over the structure expert features (row (d) only).
    pub structure: Option<CrossAttentionBlock<B>>,
    /// The configured row.
    pub mode: AggregationMode,
}

/// The identity feature and, for row (d), the two branch features it averages.
#[derive(Debug, Clone)]
pub struct MgfaOutput<B: Backend> {
    /// Identity feature `[B, 3D]`.
    pub feature: Tensor<B, 2>,
    /// Flattened branch outputs `[B, 3D]` (semantic, structure) in row (d); empty otherwise.
    pub branches: Vec<Tensor<B, 2>>,
}

impl<B: Backend> Mgfa<B> {
    /// Identity feature `[B, 3D]` from the class tokens `[B, 3, D]` and, as the mode requires,
    /// the semantic `[B, K_s, D]` and structure `[B, K_c, D]` expert features.
    pub fn forward(
        &self,
        class_tokens: Tensor<B, 3>,
        semantic: Option<Tensor<B, 3>>,
        structure: Option<Tensor<B, 3>>,
    ) -> Result<Tensor<B, 2>, AggregationError> {
        Ok(self
            .forward_branches(class_tokens, semantic, structure)?
            .feature)
    }

    /// Like [`Mgfa::forward`], also returning the two branch features of row (d).
    pub fn forward_branches(
        &self,
        class_tokens: Tensor<B, 3>,
        semantic: Option<Tensor<B, 3>>,
        structure: Option<Tensor<B, 3>>,
    ) -> Result<MgfaOutput<B>, AggregationError> {
        let [batch, queries, dim] = class_tokens.dims();
        if queries != 3 {
            return Err(AggregationError::Shape {
                what: "class tokens",
                expected: "[B, 3, D]",
                got: class_tokens.dims().to_vec(),
            });
        }
        let missing = |what| AggregationError::MissingInput {
            mode: self.mode,
            what,
        };
        let flat = |z: Tensor<B, 3>| z.reshape([batch, 3 * dim]);
        let single = |z| MgfaOutput {
            feature: flat(z),
            branches: Vec::new(),
        };
        match (&self.semantic, &self.structure, self.mode) {
            (_, _, AggregationMode::ClassTokens) => Ok(single(class_tokens)),
            (Some(block), _, AggregationMode::ModalityFeatures) => {
                Ok(single(block.forward(class_tokens.clone(), class_tokens)))
            }
            (Some(block), _, AggregationMode::Semantic) => {
                let keys = semantic.ok_or_else(|| missing("semantic expert features"))?;
                Ok(single(block.forward(class_tokens, keys)))
            }
            (Some(sem), Some(st), AggregationMode::Full) => {
                let sem_keys = semantic.ok_or_else(|| missing("semantic expert features"))?;
                let str_keys = structure.ok_or_else(|| missing("structure expert features"))?;
                let z_sem = sem.forward(class_tokens.clone(), sem_keys);
                let z_str = st.forward(class_tokens, str_keys);
                let feature = flat((z_sem.clone() + z_str.clone()).div_scalar(2.0));
                Ok(MgfaOutput {
                    feature,
                    branches: vec![flat(z_sem), flat(z_str)],
                })
            }
            _ => Err(missing("cross-attention blocks built for it")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;

    fn rand<Bk: Backend, const D: usize>(shape: [usize; D]) -> Tensor<Bk, D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    #[test]
    fn every_mode_gives_a_3d_feature_and_counts_its_parameters() {
        let device = Default::default();
        for mode in [
            AggregationMode::ClassTokens,
            AggregationMode::ModalityFeatures,
            AggregationMode::Semantic,
            AggregationMode::Full,
        ] {
            let cfg = MgfaConfig {
                mode,
                ..MgfaConfig::default()
            };
            let mgfa = cfg.init::<Flex>(16, &device).unwrap();
            assert_eq!(mgfa.num_params(), cfg.num_params(16), "{mode:?}");
            let f = mgfa
                .forward(
                    rand([2, 3, 16]),
                    Some(rand([2, 3, 16])),
                    Some(rand([2, 4, 16])),
                )
                .unwrap();
            assert_eq!(f.dims(), [2, 48]);
        }
    }

    #[test]
    fn class_token_row_is_the_concatenation() {
        let cfg = MgfaConfig {
            mode: AggregationMode::ClassTokens,
            ..MgfaConfig::default()
        };
        let mgfa = cfg.init::<Flex>(8, &Default::default()).unwrap();
        let cls: Tensor<Flex, 3> = rand([2, 3, 8]);
        let f = mgfa.forward(cls.clone(), None, None).unwrap();
        let want: Vec<f32> = cls.reshape([2, 24]).into_data().to_vec().unwrap();
        assert_eq!(f.into_data().to_vec::<f32>().unwrap(), want);
    }

    #[test]
    fn full_mode_averages_branches_and_needs_both_inputs() {
        let device = Default::default();
        let mgfa = MgfaConfig::default().init::<Flex>(16, &device).unwrap();
        let (cls, sem, st) = (rand([2, 3, 16]), rand([2, 3, 16]), rand([2, 3, 16]));
        let st2 = st.clone();
        let f: Vec<f32> = mgfa
            .forward(cls.clone(), Some(sem.clone()), Some(st.clone()))
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap();
        let a = mgfa
            .semantic
            .as_ref()
            .unwrap()
            .forward(cls.clone(), sem.clone());
        let b = mgfa.structure.as_ref().unwrap().forward(cls.clone(), st);
        let want: Vec<f32> = ((a + b) / 2.0)
            .reshape([2, 48])
            .into_data()
            .to_vec()
            .unwrap();
        for (x, y) in f.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
        let out = mgfa
            .forward_branches(cls.clone(), Some(sem.clone()), Some(st2.clone()))
            .unwrap();
        assert_eq!(out.branches.len(), 2);
        let mean = (out.branches[0].clone() + out.branches[1].clone()) / 2.0;
        let gap: f32 = (mean - out.feature).abs().max().into_scalar();
        assert!(gap < 1e-6);
        let err = mgfa.forward(cls, Some(sem), None).unwrap_err();
        assert!(err.to_string().contains("structure"), "{err}");
        assert!(MgfaConfig::default().init::<Flex>(12, &device).is_err());
    }

    #[test]
    fn gradients_reach_both_branches() {
        let device = Default::default();
        let mgfa = MgfaConfig::default()
            .init::<Autodiff<Flex>>(16, &device)
            .unwrap();
        let f = mgfa.forward(
            rand([2, 3, 16]),
            Some(rand([2, 3, 16])),
            Some(rand([2, 3, 16])),
        );
        let grads = f.unwrap().powi_scalar(2).sum().backward();
        for block in [
            mgfa.semantic.as_ref().unwrap(),
            mgfa.structure.as_ref().unwrap(),
        ] {
            assert!(block.attention.value.weight.grad(&grads).is_some());
            assert!(block.ffn_in.as_ref().unwrap().weight.grad(&grads).is_some());
        }
    }

    #[test]
    fn config_round_trips_through_toml() {
        let cfg = MgfaConfig {
            mode: AggregationMode::Semantic,
            ..MgfaConfig::default()
        };
        let back: MgfaConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        assert!(toml::from_str::<MgfaConfig>("heads = 8").is_err());
    }
}
