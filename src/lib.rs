//! next-reid: multi-modal object re-identification (RGB, NIR, TIR images and text) in Rust and Burn.
//!
//! This umbrella crate re-exports the component crates so that another Rust project needs one
//! dependency. Each component is also usable alone.

#![warn(missing_docs)]

pub mod alloc;
pub mod backend;

pub use burn;
pub use next_aggregation as aggregation;
pub use next_captions as captions;
pub use next_clip as clip;
pub use next_common as common;
pub use next_data as data;
pub use next_experts as experts;
pub use next_losses as losses;
pub use next_metrics as metrics;
pub use next_model as model;
pub use next_train as train;

/// The README's Rust snippets, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
