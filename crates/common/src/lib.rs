//! Shared building blocks of next-reid: the modality vocabulary, atomic file writes, progress
//! reporting and file-naming errors. Logic needed by more than one crate lives here, once.

pub mod fsio;
pub mod modality;
pub mod progress;

pub use fsio::{read_file, strip_utf8_bom, write_atomic, FileError};
pub use modality::Modality;
pub use progress::Progress;
