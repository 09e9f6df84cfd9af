//! The `[umm]` section of the model config: every switch of the uncertain/missing-modality
//! machinery, off by default (then the model is exactly NEXT).

use serde::{Deserialize, Serialize};

/// What the model puts in the place of a modality that is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    /// A zero image (the references' protocol and our baseline), encoded like a present one.
    Zero,
    /// Tokens synthesised from the present modalities' tokens (flagged as synthesised).
    Synth,
    /// The absent modality is excluded: its tokens are never keys of the cue learner, TMSE and
    /// CSSE pool over present tokens only, and its slot of the identity feature is zero.
    Drop,
}

/// How images become tokens of the shared CLIP token space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tokenizer {
    /// The shared ViT patch embedding plus a learned modality embedding on every token.
    SharedEmbed,
    /// One patch embedding per modality (each a copy of the ViT's at build time).
    PerModality,
}

/// The token synthesiser: learned queries cross-attending to the present modalities' tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthConfig {
    /// Number of cross-attention layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// FFN expansion ratio of each layer (0 = no FFN).
    pub ffn_ratio: usize,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            layers: 1,
            heads: 8,
            ffn_ratio: 2,
        }
    }
}

/// The cross-modal cue interactive learner: self-attention over all modalities' tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CueConfig {
    /// Number of pre-LN transformer layers (0 = none).
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP expansion ratio of each layer.
    pub mlp_ratio: usize,
    /// Start every layer as the identity: the output projections of its attention and MLP
    /// (the ends of both residual branches) are zero at build time, so an untrained cue learner
    /// passes the mapper tokens through unchanged and the experts start as in NEXT (off by
    /// default: it did not train better on the synthetic benchmark, see the README).
    pub identity_init: bool,
}

impl Default for CueConfig {
    fn default() -> Self {
        Self {
            layers: 2,
            heads: 8,
            mlp_ratio: 2,
            identity_init: false,
        }
    }
}

/// The reconstruction loss of synthesised tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecConfig {
    /// Weight lambda_rec of the MSE in the total loss.
    pub weight: f32,
    /// Stop the gradient through the real tokens (the target).
    pub detach_target: bool,
    /// In training, the synthesiser reads the present modalities' tokens without passing
    /// gradient back to the token mapper: `L_rec` (and the synthesised tokens' share of the
    /// identity losses) then train the synthesiser only, instead of also pulling the modalities'
    /// tokens towards what the others can predict.
    pub detach_sources: bool,
}

impl Default for RecConfig {
    fn default() -> Self {
        Self {
            weight: 1.0,
            detach_target: true,
            detach_sources: false,
        }
    }
}

/// Every UMM setting (`[umm]` in the model TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UmmConfig {
    /// Build the UMM modules at all (off = exactly NEXT; absent modalities are zero images).
    pub enabled: bool,
    /// What replaces an absent modality (can be switched on a trained model).
    pub fill: Fill,
    /// Token mapper.
    pub tokenizer: Tokenizer,
    /// Token synthesiser.
    pub synth: SynthConfig,
    /// Cross-modal cue interactive learner.
    pub cue: CueConfig,
    /// Reconstruction loss.
    pub rec: RecConfig,
}

impl Default for UmmConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            fill: Fill::Synth,
            tokenizer: Tokenizer::SharedEmbed,
            synth: SynthConfig::default(),
            cue: CueConfig::default(),
            rec: RecConfig::default(),
        }
    }
}

impl UmmConfig {
    /// Check the ranges serde cannot, for a token width `dim` (None before the CLIP width is known).
    pub fn validate(&self, dim: Option<usize>) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.synth.layers == 0 {
            return Err("umm.synth.layers must be at least 1".into());
        }
        if self.synth.heads == 0 || self.cue.heads == 0 {
            return Err("umm.synth.heads and umm.cue.heads must be at least 1".into());
        }
        if self.cue.layers > 0 && self.cue.mlp_ratio == 0 {
            return Err("umm.cue.mlp_ratio must be at least 1".into());
        }
        if !(self.rec.weight.is_finite() && self.rec.weight >= 0.0) {
            return Err(format!(
                "umm.rec.weight must be finite and >= 0, got {}",
                self.rec.weight
            ));
        }
        if let Some(dim) = dim {
            for (name, heads) in [
                ("umm.synth.heads", self.synth.heads),
                ("umm.cue.heads", self.cue.heads),
            ] {
                if !dim.is_multiple_of(heads) {
                    return Err(format!(
                        "{name} = {heads} must divide the token width {dim}"
                    ));
                }
            }
        }
        Ok(())
    }
}
