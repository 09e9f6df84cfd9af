//! The pretrained tiny CLIP of the demo (`assets/clip-tiny-pretrained`, written by
//! `next pretrain`), embedded in the binary so that `next demo` starts from aligned image and
//! text encoders anywhere, with no download and no repository checkout.

use crate::RunError;
use next_reid::model::ClipSource;
use std::path::{Path, PathBuf};

/// The `model.clip` value of `configs/synthetic.toml` (relative to `configs/`): the folder whose
/// files are embedded here.
pub const DEMO_CLIP_IN_CONFIG: &str = "../assets/clip-tiny-pretrained";

/// The embedded files of that folder.
const DEMO_CLIP_FILES: [(&str, &[u8]); 3] = [
    (
        "config.json",
        include_bytes!("../../../assets/clip-tiny-pretrained/config.json"),
    ),
    (
        "model.safetensors",
        include_bytes!("../../../assets/clip-tiny-pretrained/model.safetensors"),
    ),
    (
        "tokenizer.json",
        include_bytes!("../../../assets/clip-tiny-pretrained/tokenizer.json"),
    ),
];

/// When `clip` is the embedded config's CLIP folder, write the embedded copy into
/// `out/clip-tiny-pretrained` and return that folder; any other source is returned unchanged.
pub fn materialise_demo_clip(clip: &ClipSource, out: &Path) -> Result<ClipSource, RunError> {
    if *clip != ClipSource::HfDir(PathBuf::from(DEMO_CLIP_IN_CONFIG)) {
        return Ok(clip.clone());
    }
    let dir = out.join("clip-tiny-pretrained");
    for (name, bytes) in DEMO_CLIP_FILES {
        next_reid::common::write_atomic(dir.join(name), bytes)?;
    }
    Ok(ClipSource::HfDir(dir))
}
