//! NEXT expert layers: the expert block (Eq. 1), the text-modulated semantic experts (TMSE,
//! Eqs. 2-7) and the context-shared structure experts (CSSE, Eqs. 8-9). Generic over any Burn
//! backend; text features arrive as tensors (the model owns the tokenizer and text encoder).

#![warn(missing_docs)]

mod block;
mod csse;
mod mask_stats;
mod pooling;
mod tmse;

pub use block::{ExpertBlock, ExpertBlockConfig};
pub use csse::{Csse, CsseConfig, CsseOutput, StructureRouter};
pub use mask_stats::{
    ExpertMaskStats, ExpertOverlap, ExpertTokens, MaskStatsAccumulator, SAME_TOKENS_IOU,
};
pub use pooling::{masked_mean, masked_mean_or, straight_through};
pub use tmse::{
    MaskGradient, RouteNorm, SamplingStrategy, SemanticRouter, Tmse, TmseConfig, TmseOutput,
    TokenRoute,
};

/// Errors of the expert layers: inputs whose shapes do not fit the layer.
#[derive(Debug, thiserror::Error)]
pub enum ExpertError {
    /// An input tensor has a shape the layer cannot use.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape received.
        got: Vec<usize>,
    },
}
