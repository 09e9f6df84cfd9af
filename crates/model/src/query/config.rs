//! The `[query]` section of the model config: any-modality queries (sketch, text, single
//! spectra) and the alignment loss that puts their embeddings in the gallery's space. Off by
//! default (then the model is exactly NEXT / UMM).

use serde::{Deserialize, Serialize};

/// Most visual query patterns there are (`subsets = true` with sketches: six subsets of R, N,
/// T and four with the sketch).
const MAX_PATTERNS: usize = 10;

/// The loss that pulls single-modality (and subset) query embeddings of an identity towards its
/// fused embedding: SDM (similarity-distribution matching) plus the identity loss on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlignConfig {
    /// Add the alignment loss in training.
    pub enabled: bool,
    /// Weight of the SDM loss (per query pattern, averaged over the patterns of a step).
    pub sdm_weight: f32,
    /// Weight of the identity cross-entropy on the query embeddings (BNNeck classifier).
    pub id_weight: f32,
    /// Temperature of the SDM softmax over cosine similarities.
    pub temperature: f32,
    /// Stop the gradient through the fused embedding (the target), so that the gallery feature
    /// is trained by the ReID losses only.
    pub detach_fused: bool,
    /// Visual query patterns (modality subsets) drawn per step, each a forward of its own; the
    /// loss averages them (and the text query, cheap: the text encoder is frozen, added to
    /// every step when the text head is on). `visual_per_step` is its former name.
    #[serde(alias = "visual_per_step")]
    pub patterns_per_step: usize,
    /// Draw the patterns from every proper subset of R, N, T (R, N, T, RN, RT, NT) and, with
    /// sketches, S, S+N, S+T, S+N+T; off: the single modalities R, N, T and S.
    pub subsets: bool,
    /// Multiplier of the loss of a drawn pattern that holds the sketch (1.0: weighted like the
    /// others), so that the sketch branch can be given more of the learning signal.
    pub sketch_weight: f32,
}

impl Default for AlignConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            sdm_weight: 1.0,
            id_weight: 0.25,
            temperature: 0.02,
            detach_fused: true,
            patterns_per_step: 1,
            subsets: false,
            sketch_weight: 1.0,
        }
    }
}

/// Every any-modality query setting (`[query]` in the model TOML).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Sketch as a fourth visual modality of the UMM token mapper (its own learned modality
    /// embedding; a sketch takes the RGB slot of the tri-modal pipeline). Needs `umm.enabled`.
    pub sketch: bool,
    /// A small learned head mapping the frozen CLIP text encoder's features (EOT and tokens) of a
    /// description into the identity space (builds the text encoder even with `text = "off"`).
    pub text_head: bool,
    /// Hidden width of the text head's MLP (0 = twice the token width).
    pub text_hidden: usize,
    /// The alignment loss.
    pub align: AlignConfig,
}

impl QueryConfig {
    /// Check the ranges serde cannot; `umm_enabled` is the model's `umm.enabled`.
    pub fn validate(&self, umm_enabled: bool) -> Result<(), String> {
        if self.sketch && !umm_enabled {
            return Err(
                "query.sketch needs umm.enabled = true (the sketch embedding is part of the UMM \
                 token mapper)"
                    .into(),
            );
        }
        let a = &self.align;
        for (key, value) in [
            ("query.align.sdm_weight", a.sdm_weight),
            ("query.align.id_weight", a.id_weight),
            ("query.align.sketch_weight", a.sketch_weight),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!("{key} = {value}: expected a finite number >= 0"));
            }
        }
        if !(a.temperature.is_finite() && a.temperature > 0.0 && a.temperature <= 10.0) {
            return Err(format!(
                "query.align.temperature = {}: expected a number in (0, 10]",
                a.temperature
            ));
        }
        if self.text_hidden > 1 << 16 {
            return Err(format!(
                "query.text_hidden = {}: expected 0..=65536",
                self.text_hidden
            ));
        }
        if a.patterns_per_step > MAX_PATTERNS {
            return Err(format!(
                "query.align.patterns_per_step = {}: expected 0..={MAX_PATTERNS} (the number of \
                 patterns with subsets = true and sketches; fewer are there, all are used)",
                a.patterns_per_step
            ));
        }
        Ok(())
    }
}
