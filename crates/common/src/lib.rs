//! Shared building blocks of next-reid: the modality vocabulary, atomic file writes, progress
//! reporting and file-naming errors. Logic needed by more than one crate lives here, once.

#![warn(missing_docs)]

pub mod fsio;
pub mod modality;
pub mod progress;
pub mod query_modality;
pub mod toml_config;

pub use fsio::{read_file, strip_utf8_bom, write_atomic, FileError};
pub use modality::Modality;
pub use progress::Progress;
pub use query_modality::{ModalitySet, ModalitySetError, QueryModality};
pub use toml_config::{edit_distance, ConfigError, TomlLayout, TomlSource};
