//! Weights: Hugging Face safetensors through burn-store (with name remapping and a check of every
//! tensor by name), and Burn's own burnpack format for saving and reloading.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::DType;
use burn_store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, BurnpackStore, KeyRemapper, ModuleSnapshot,
    ModuleStore, PyTorchToBurnAdapter, SafetensorsStore,
};

use crate::error::ClipError;

/// Name prefixes `(hugging_face, burn)` for a whole `ClipModel`.
pub const FULL_MODEL_PREFIXES: &[(&str, &str)] = &[
    ("vision_model.", "vision."),
    ("visual_projection.", "vision.visual_projection."),
    ("text_model.", "text."),
    ("text_projection.", "text.text_projection."),
];

/// Name prefixes `(hugging_face, burn)` for a lone `ClipVision`.
pub const VISION_ONLY_PREFIXES: &[(&str, &str)] = &[
    ("vision_model.", ""),
    ("visual_projection.", "visual_projection."),
];

/// Model parameters that are not part of a CLIP checkpoint and may stay initialised.
const OPTIONAL_PARAMETERS: &[&str] = &["camera_embedding"];

/// What a load left aside.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Model parameters (Burn paths) not in the file, kept at their initialisation
    /// (only the SIE camera embedding may be missing; anything else is an error).
    pub missing: Vec<String>,
    /// Tensors of the file (their file names) that the model does not use, e.g. `logit_scale`.
    pub unused: Vec<String>,
}

/// Map a checkpoint tensor name to the model's path, or `None` when no prefix rule applies.
pub fn hf_to_model_path(name: &str, prefixes: &[(&str, &str)]) -> Option<String> {
    prefixes
        .iter()
        .find_map(|(hf, burn)| name.strip_prefix(hf).map(|rest| format!("{burn}{rest}")))
}

/// Map a model path back to the checkpoint's naming (the longest matching prefix wins).
pub fn model_path_to_hf(path: &str, prefixes: &[(&str, &str)]) -> String {
    prefixes
        .iter()
        .filter(|(_, burn)| path.starts_with(burn))
        .max_by_key(|(_, burn)| burn.len())
        .map(|(hf, burn)| format!("{hf}{}", &path[burn.len()..]))
        .unwrap_or_else(|| path.to_string())
}

fn is_optional(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    OPTIONAL_PARAMETERS.contains(&last)
}

fn weights_error(path: &Path, message: impl std::fmt::Display) -> ClipError {
    ClipError::Weights {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Load a Hugging Face safetensors file into `module`, renaming with `prefixes`
/// (`(hugging_face_prefix, model_prefix)`) and transposing linear weights.
///
/// Every model tensor is checked by name before anything is applied: a missing one (other than
/// the camera embedding), a wrong shape or a non-f32 tensor is an error naming the tensor.
pub fn load_hf_safetensors<B: Backend, M: Module<B>>(
    module: &mut M,
    file: &Path,
    prefixes: &[(&str, &str)],
) -> Result<LoadReport, ClipError> {
    if !file.is_file() {
        return Err(ClipError::MissingFile {
            path: file.to_path_buf(),
            expected: "CLIP weights in safetensors format",
        });
    }
    // The file's tensors, by the model path they map to, with their original names.
    let mut plain = SafetensorsStore::from_file(file);
    let stored = plain
        .get_all_snapshots()
        .map_err(|e| weights_error(file, e))?;
    let mut by_model_path = BTreeMap::new();
    let mut unused = Vec::new();
    for (name, snapshot) in stored {
        match hf_to_model_path(name, prefixes) {
            Some(path) => {
                by_model_path.insert(
                    path,
                    (name.clone(), snapshot.shape.to_vec(), snapshot.dtype),
                );
            }
            None => unused.push(name.clone()),
        }
    }

    // The model's tensors in PyTorch layout (weight/bias names, [out, in] linear weights).
    let expected = module.collect(None, Some(Box::new(BurnToPyTorchAdapter)), false);
    let mut expected_paths = BTreeSet::new();
    let mut missing_required = Vec::new();
    let mut missing_optional = Vec::new();
    for snapshot in &expected {
        let path = snapshot.full_path();
        expected_paths.insert(path.clone());
        let Some((name, shape, dtype)) = by_model_path.get(&path) else {
            if is_optional(&path) {
                missing_optional.push(path);
            } else {
                missing_required.push(model_path_to_hf(&path, prefixes));
            }
            continue;
        };
        if *shape != snapshot.shape.to_vec() {
            return Err(ClipError::ShapeMismatch {
                path: file.to_path_buf(),
                tensor: name.clone(),
                expected: snapshot.shape.to_vec(),
                found: shape.clone(),
            });
        }
        if *dtype != DType::F32 {
            return Err(ClipError::UnsupportedDtype {
                path: file.to_path_buf(),
                tensor: name.clone(),
                dtype: format!("{dtype:?}"),
            });
        }
    }
    if !missing_required.is_empty() {
        return Err(ClipError::MissingTensors {
            path: file.to_path_buf(),
            names: missing_required,
        });
    }
    for (path, (name, _, _)) in &by_model_path {
        if !expected_paths.contains(path) {
            unused.push(name.clone());
        }
    }
    unused.sort();

    let mut remapper = KeyRemapper::new();
    for (hf, burn) in prefixes {
        if hf != burn {
            let pattern = format!("^{}", hf.replace('.', r"\."));
            remapper = remapper
                .add_pattern(pattern, *burn)
                .map_err(|e| weights_error(file, e))?;
        }
    }
    let mut store = SafetensorsStore::from_file(file)
        .remap(remapper)
        .with_from_adapter(PyTorchToBurnAdapter)
        .allow_partial(true)
        .validate(false);
    let result = module
        .load_from(&mut store)
        .map_err(|e| weights_error(file, e))?;
    check_applied(file, &result, true, prefixes)?;
    Ok(LoadReport {
        missing: missing_optional,
        unused,
    })
}

/// Turn the errors of an apply into a [`ClipError`] naming the first offending tensor.
fn check_applied(
    file: &Path,
    result: &ApplyResult,
    allow_optional_missing: bool,
    prefixes: &[(&str, &str)],
) -> Result<(), ClipError> {
    if let Some(error) = result.errors.first() {
        return Err(match error {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => ClipError::ShapeMismatch {
                path: file.to_path_buf(),
                tensor: model_path_to_hf(path, prefixes),
                expected: expected.to_vec(),
                found: found.to_vec(),
            },
            other => weights_error(file, other),
        });
    }
    let missing: Vec<String> = result
        .missing
        .iter()
        .map(|(path, _)| path.clone())
        .filter(|path| !(allow_optional_missing && is_optional(path)))
        .map(|path| model_path_to_hf(&path, prefixes))
        .collect();
    if !missing.is_empty() {
        return Err(ClipError::MissingTensors {
            path: file.to_path_buf(),
            names: missing,
        });
    }
    Ok(())
}

/// Save `module` in Burn's burnpack format at exactly `path` (overwriting it).
pub fn save_burnpack<B: Backend, M: Module<B>>(module: &M, path: &Path) -> Result<(), ClipError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| next_common::FileError::new("creating folder for", path, e))?;
    }
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .overwrite(true);
    module
        .save_into(&mut store)
        .map_err(|e| weights_error(path, e))
}

/// Load every tensor of `module` from a burnpack file written by [`save_burnpack`]; a missing
/// tensor or a wrong shape is an error naming it.
pub fn load_burnpack<B: Backend, M: Module<B>>(
    module: &mut M,
    path: &Path,
) -> Result<(), ClipError> {
    if !path.is_file() {
        return Err(ClipError::MissingFile {
            path: path.to_path_buf(),
            expected: "model weights in Burn's burnpack format",
        });
    }
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .allow_partial(true)
        .validate(false);
    let result = module
        .load_from(&mut store)
        .map_err(|e| weights_error(path, e))?;
    check_applied(path, &result, false, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        let hf = "vision_model.encoder.layers.3.mlp.fc1.weight";
        let path = hf_to_model_path(hf, FULL_MODEL_PREFIXES).expect("mapped");
        assert_eq!(path, "vision.encoder.layers.3.mlp.fc1.weight");
        assert_eq!(model_path_to_hf(&path, FULL_MODEL_PREFIXES), hf);
        let proj =
            hf_to_model_path("visual_projection.weight", FULL_MODEL_PREFIXES).expect("mapped");
        assert_eq!(proj, "vision.visual_projection.weight");
        assert_eq!(
            model_path_to_hf(&proj, FULL_MODEL_PREFIXES),
            "visual_projection.weight"
        );
        assert_eq!(hf_to_model_path("logit_scale", FULL_MODEL_PREFIXES), None);
        let alone = hf_to_model_path(hf, VISION_ONLY_PREFIXES).expect("mapped");
        assert_eq!(alone, "encoder.layers.3.mlp.fc1.weight");
        assert_eq!(model_path_to_hf(&alone, VISION_ONLY_PREFIXES), hf);
        assert!(is_optional("vision.camera_embedding") && !is_optional("vision.encoder"));
    }
}
