//! Everything between multi-modal ReID dataset files and batches of tensors.
//!
//! - [`load_dataset`] reads the five public benchmarks as users have them (RGBNT201, RGBNT100,
//!   MSVR310, Market1501-MM, WMVEID863) and a documented custom layout, pairs the three modalities
//!   by file name, relabels training identities and attaches the IDEA/NEXT captions; and the
//!   sketch- and text-ReID benchmarks Market-Sketch-1K, PKU-Sketch ([`sketch_sets`]) and
//!   CUHK-PEDES / ICFG-PEDES / RSTPReid ([`text_reid`]), whose samples have only some inputs
//!   ([`TripletRecord::modalities`]).
//! - [`decode`] reads image files to 8-bit grey or RGB pixels (JPEG straight through zune-jpeg).
//! - [`transform`] holds the reference train/test transforms on raw `f32` buffers.
//! - [`PkSampler`] draws P identities x K instances per batch, deterministic from a seed.
//! - [`BatchStream`] decodes on worker threads ahead of the model and yields [`TripletBatch`]es.
//! - [`modality_aug`] drops, synthesises and degrades modalities for UMM training and evaluation.
//! - [`synth`] writes a synthetic tri-spectral benchmark in the RGBNT201 layout, with a sketch
//!   of every shot in `SK/`.
//! - [`xdog`] draws a sketch from an RGB photo (`data.sketch = "xdog"`).
//!
//! # Custom layout
//!
//! ```text
//! <root>/train/{RGB,NI,TI}/<name>     training images (same file name in the three folders)
//! <root>/query/{RGB,NI,TI}/<name>     query images
//! <root>/gallery/{RGB,NI,TI}/<name>   gallery images
//! <captions>/{train,test}_{RGB,NI,TI}.json   optional captions (test covers query and gallery)
//! ```
//!
//! A name is `PID_cCAM_anything.ext` (camera ids as written, 0-based or not) or, for data without
//! cameras, `PID_anything.ext`; a negative pid marks a distractor and is skipped. Without cameras,
//! every query gets camera 0 and every gallery image camera 1, so the standard protocol (drop
//! same-pid same-camera gallery items) drops nothing and evaluation stays correct;
//! [`Dataset::has_camera_ids`] says which case applies. Mixing both name forms is an error.
//! Images are JPEG, PNG, BMP or TIFF of any size (resized to the configured size).

#![warn(missing_docs)]

pub mod captions;
pub mod check;
pub mod config;
pub mod dataset;
pub mod decode;
pub mod error;
pub mod loader;
pub mod modality_aug;
pub mod names;
pub mod sampler;
pub mod scan;
pub mod sketch_sets;
pub mod synth;
pub mod text_reid;
pub mod transform;
pub mod xdog;

pub use config::{
    AugmentSync, BadSamplePolicy, DatasetConfig, DatasetKind, EvalSplit, MissingCaptionPolicy,
    Normalization, SketchInk, SketchSource, Split,
};
pub use dataset::{
    load_dataset, Dataset, LoadReport, SampleModalities, SketchImage, TripletRecord,
};
pub use decode::{ImageHeader, ImageLimits};
pub use error::{DataError, Result};
pub use loader::{
    eval_stream, train_stream, train_stream_shard, BatchStream, HostBatch, LoadMode, LoaderConfig,
    TripletBatch,
};
pub use modality_aug::{
    apply_missing_setting, apply_test_degradation, augment_batch, BatchPresence, Degradation,
    ModalityAugConfig, PixelSynth, TestDegradation, MISSING_SETTINGS,
};
pub use sampler::{PkSampler, SamplerState};
pub use scan::TripletImages;
pub use synth::{write_or_reuse_synthetic, write_synthetic, LookAlikes, SynthConfig, SynthSummary};
pub use transform::TransformConfig;
pub use xdog::{xdog_sketch, XdogParams};
