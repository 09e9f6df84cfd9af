//! The NEXT reliable caption pipeline (paper Section IV): confidence-scored attributes from several
//! MLLMs, merged per attribute by confidence, completed across modalities, and composed into
//! captions in the NEXT template.

#![warn(missing_docs)]

pub mod aggregate;
pub mod attributes;
pub mod cache;
pub mod captions_file;
pub mod client;
pub mod command;
pub mod error;
pub mod extract;
pub mod person_caption;
pub mod pipeline;
pub mod prompt;
pub mod schema;
pub mod stats;
pub mod vehicle_caption;

pub use aggregate::{complement_modalities, merge_models, ComplementRules};
pub use attributes::{
    run_attributes, scan_dataset, AttributeRun, AttributeRunConfig, FailedRequest, ImageJob,
};
pub use cache::{sha256_hex, AnswerCache, CacheEntry};
pub use captions_file::{parse_caption_file, read_caption_file, write_caption_file, CaptionEntry};
pub use client::{ChatClient, ClientConfig, InlineImage};
pub use command::{run_caption_stage, CaptionStage, PipelineOptions};
pub use error::{CaptionError, ClientError, ExtractError};
pub use extract::{extract_json_object, parse_attribute_answer};
pub use person_caption::{
    compose_person, compose_person_styled, parse_person_caption, ParsedPersonCaption, PersonStyle,
};
pub use pipeline::compose_caption;
pub use prompt::PromptTemplate;
pub use schema::{
    AttributeClass, AttributeSet, AttributeSpec, AttributeValue, ObjectKind, UNKNOWN,
};
pub use stats::{UnknownCounts, UnknownReport};
pub use vehicle_caption::{
    compose_vehicle, compose_vehicle_styled, parse_vehicle_caption, ParsedVehicleCaption,
    VehicleStyle,
};
