//! Writing a CLIP model as a Hugging Face folder (`config.json`, `model.safetensors`,
//! `tokenizer.json`) that [`ClipModel::from_hf_dir`] and Hugging Face `CLIPModel` read back.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::DType;
use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot};
use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;

use crate::config::ClipConfig;
use crate::error::ClipError;
use crate::model::{ClipModel, HF_WEIGHTS_FILE};
use crate::weights::{model_path_to_hf, FULL_MODEL_PREFIXES};

fn write_error(path: &Path, message: impl std::fmt::Display) -> ClipError {
    ClipError::Weights {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// The `config.json` of a Hugging Face `CLIPModel` with this architecture (QuickGELU, f32).
fn config_json(config: &ClipConfig, logit_scale: f32) -> serde_json::Value {
    let mut vision = serde_json::to_value(&config.vision).unwrap_or_default();
    let mut text = serde_json::to_value(&config.text).unwrap_or_default();
    for (section, model_type) in [
        (&mut vision, "clip_vision_model"),
        (&mut text, "clip_text_model"),
    ] {
        section["hidden_act"] = json!("quick_gelu");
        section["model_type"] = json!(model_type);
        section["projection_dim"] = json!(config.projection_dim);
    }
    json!({
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": config.projection_dim,
        "logit_scale_init_value": logit_scale,
        "torch_dtype": "float32",
        "vision_config": vision,
        "text_config": text,
    })
}

/// Save `model` (architecture `config`, learned `logit_scale` = log of the inverse temperature)
/// as a Hugging Face folder `dir`: `config.json`, `model.safetensors` (Hugging Face tensor names,
/// `[out, in]` linear weights, `logit_scale` as a scalar) and `tokenizer_json` as
/// `tokenizer.json`. Each file is written atomically.
pub fn save_hf_dir<B: Backend>(
    model: &ClipModel<B>,
    config: &ClipConfig,
    logit_scale: f32,
    tokenizer_json: &[u8],
    dir: &Path,
) -> Result<(), ClipError> {
    let weights_path = dir.join(HF_WEIGHTS_FILE);
    let snapshots = model.collect(None, Some(Box::new(BurnToPyTorchAdapter)), false);
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(snapshots.len() + 1);
    for snapshot in &snapshots {
        let name = model_path_to_hf(&snapshot.full_path(), FULL_MODEL_PREFIXES);
        let data = snapshot
            .to_data()
            .map_err(|e| write_error(&weights_path, format!("{name}: {e:?}")))?;
        if data.dtype != DType::F32 {
            return Err(ClipError::UnsupportedDtype {
                path: weights_path,
                tensor: name,
                dtype: format!("{:?}", data.dtype),
            });
        }
        tensors.push((name, data.shape.to_vec(), data.as_bytes().to_vec()));
    }
    tensors.push((
        "logit_scale".into(),
        Vec::new(),
        logit_scale.to_le_bytes().to_vec(),
    ));
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| write_error(&weights_path, format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = safetensors::serialize(views, &None).map_err(|e| write_error(&weights_path, e))?;
    let config_bytes = serde_json::to_vec_pretty(&config_json(config, logit_scale))
        .map_err(|e| write_error(&dir.join("config.json"), e))?;
    next_common::write_atomic(dir.join("config.json"), &config_bytes)?;
    next_common::write_atomic(dir.join("tokenizer.json"), tokenizer_json)?;
    next_common::write_atomic(&weights_path, &bytes)?;
    Ok(())
}
