//! CLIP configurations: presets and the Hugging Face `config.json` reader.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ClipError;

/// Vision tower hyper-parameters; field names as in Hugging Face `vision_config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    /// Transformer width.
    pub hidden_size: usize,
    /// MLP hidden width.
    pub intermediate_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Side of the square training image; fixes the native positional grid.
    pub image_size: usize,
    /// Side of a square patch.
    pub patch_size: usize,
    /// Input channels (3 for RGB).
    pub num_channels: usize,
    /// Layer-norm epsilon.
    pub layer_norm_eps: f64,
}

impl Default for ClipVisionConfig {
    /// Hugging Face's `CLIPVisionConfig` defaults (ViT-B/32).
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            image_size: 224,
            patch_size: 32,
            num_channels: 3,
            layer_norm_eps: 1e-5,
        }
    }
}

/// Text tower hyper-parameters; field names as in Hugging Face `text_config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    /// Vocabulary size (49,408 for CLIP's BPE).
    pub vocab_size: usize,
    /// Transformer width.
    pub hidden_size: usize,
    /// MLP hidden width.
    pub intermediate_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Context length (77).
    pub max_position_embeddings: usize,
    /// Layer-norm epsilon.
    pub layer_norm_eps: f64,
    /// End-of-text token id (the legacy value 2 means "the highest id", as in Hugging Face).
    pub eos_token_id: usize,
    /// Start-of-text token id.
    pub bos_token_id: usize,
    /// Padding token id named by the checkpoint (this crate's tokenizer pads with 0).
    pub pad_token_id: usize,
}

impl Default for ClipTextConfig {
    /// Hugging Face's `CLIPTextConfig` defaults.
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            layer_norm_eps: 1e-5,
            eos_token_id: 49407,
            bos_token_id: 49406,
            pad_token_id: 1,
        }
    }
}

impl ClipTextConfig {
    /// The end-of-text id used for pooling: `eos_token_id`, or the highest id when a legacy
    /// checkpoint says 2 (Hugging Face then pools at the highest id, which is `<|endoftext|>`).
    pub fn effective_eos_token_id(&self) -> usize {
        if self.eos_token_id == 2 {
            self.vocab_size.saturating_sub(1)
        } else {
            self.eos_token_id
        }
    }
}

/// A whole CLIP model: both towers and the shared embedding width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipConfig {
    /// Vision tower (`vision_config` in config.json).
    #[serde(rename = "vision_config")]
    pub vision: ClipVisionConfig,
    /// Text tower (`text_config` in config.json).
    #[serde(rename = "text_config")]
    pub text: ClipTextConfig,
    /// Width of the joint image-text embedding.
    pub projection_dim: usize,
}

impl ClipConfig {
    /// OpenAI CLIP ViT-B/16 (`openai/clip-vit-base-patch16`).
    pub fn vit_b16() -> Self {
        Self {
            vision: ClipVisionConfig {
                patch_size: 16,
                ..ClipVisionConfig::default()
            },
            text: ClipTextConfig::default(),
            projection_dim: 512,
        }
    }

    /// OpenAI CLIP ViT-B/32 (`openai/clip-vit-base-patch32`).
    pub fn vit_b32() -> Self {
        Self {
            vision: ClipVisionConfig {
                patch_size: 32,
                ..ClipVisionConfig::default()
            },
            text: ClipTextConfig::default(),
            projection_dim: 512,
        }
    }

    /// A small configuration for tests and demos: width 64, 2 layers, 4 heads, MLP 256, patch 16.
    pub fn tiny() -> Self {
        Self {
            vision: ClipVisionConfig {
                hidden_size: 64,
                intermediate_size: 256,
                num_hidden_layers: 2,
                num_attention_heads: 4,
                image_size: 224,
                patch_size: 16,
                num_channels: 3,
                layer_norm_eps: 1e-5,
            },
            text: ClipTextConfig {
                hidden_size: 64,
                intermediate_size: 256,
                num_hidden_layers: 2,
                num_attention_heads: 4,
                ..ClipTextConfig::default()
            },
            projection_dim: 64,
        }
    }

    /// Read `dir/config.json` of a Hugging Face `CLIPModel` checkpoint.
    pub fn from_hf_dir(dir: &Path) -> Result<Self, ClipError> {
        let (path, bytes) = read_config_json(dir)?;
        Self::from_hf_json(&bytes, &path)
    }

    /// Parse the bytes of a Hugging Face `CLIPModel` `config.json`; `path` names it in errors.
    pub fn from_hf_json(bytes: &[u8], path: &Path) -> Result<Self, ClipError> {
        let (path, root) = (path.to_path_buf(), parse_config_json(bytes, path)?);
        let model_type = model_type(&root);
        if model_type != "clip" {
            return Err(ClipError::UnsupportedArchitecture {
                path,
                found: model_type,
                expected: "\"clip\" (a CLIPModel checkpoint)",
            });
        }
        let vision = section::<ClipVisionConfig>(&root, "vision_config", &path)?;
        let text = section::<ClipTextConfig>(&root, "text_config", &path)?;
        let projection_dim = projection_dim(&root, &path)?;
        let config = Self {
            vision,
            text,
            projection_dim,
        };
        config
            .validate()
            .map_err(|message| ClipError::InvalidConfig { path, message })?;
        Ok(config)
    }

    /// Check that the sizes fit together (heads divide widths, patches tile the image, ...).
    pub fn validate(&self) -> Result<(), String> {
        self.vision.validate()?;
        self.text.validate()?;
        if self.projection_dim == 0 {
            return Err("projection_dim must be positive".into());
        }
        Ok(())
    }
}

impl ClipVisionConfig {
    /// Read the vision tower's config from `dir/config.json`: a `CLIPModel` checkpoint
    /// (`model_type` "clip") or a vision-only one ("clip_vision_model"). Returns it with the
    /// checkpoint's projection width.
    pub fn from_hf_dir(dir: &Path) -> Result<(Self, usize), ClipError> {
        let (path, bytes) = read_config_json(dir)?;
        Self::from_hf_json(&bytes, &path)
    }

    /// Parse the bytes of a `config.json` as [`ClipVisionConfig::from_hf_dir`] reads it; `path`
    /// names it in errors.
    pub fn from_hf_json(bytes: &[u8], path: &Path) -> Result<(Self, usize), ClipError> {
        let (path, root) = (path.to_path_buf(), parse_config_json(bytes, path)?);
        let model_type = model_type(&root);
        let config = match model_type.as_str() {
            "clip" => section::<ClipVisionConfig>(&root, "vision_config", &path)?,
            "clip_vision_model" => parse_value::<ClipVisionConfig>(root.clone(), &path)?,
            _ => {
                return Err(ClipError::UnsupportedArchitecture {
                    path,
                    found: model_type,
                    expected: "\"clip\" or \"clip_vision_model\"",
                })
            }
        };
        check_activation(
            &root,
            if model_type == "clip" {
                "vision_config"
            } else {
                ""
            },
            &path,
        )?;
        let projection_dim = projection_dim(&root, &path)?;
        config
            .validate()
            .map_err(|message| ClipError::InvalidConfig { path, message })?;
        Ok((config, projection_dim))
    }

    /// Number of patches along each side of the native (square) grid.
    pub fn native_grid(&self) -> usize {
        self.image_size / self.patch_size.max(1)
    }

    /// Check that heads divide the width and patches tile the image.
    pub fn validate(&self) -> Result<(), String> {
        check_widths(
            "vision",
            self.hidden_size,
            self.num_attention_heads,
            self.intermediate_size,
        )?;
        if self.num_hidden_layers == 0 || self.num_channels == 0 {
            return Err("vision: num_hidden_layers and num_channels must be positive".into());
        }
        if self.patch_size == 0
            || self.image_size == 0
            || !self.image_size.is_multiple_of(self.patch_size)
        {
            return Err(format!(
                "vision: image_size {} must be a positive multiple of patch_size {}",
                self.image_size, self.patch_size
            ));
        }
        Ok(())
    }
}

impl ClipTextConfig {
    /// Check that heads divide the width and token ids fit the vocabulary.
    pub fn validate(&self) -> Result<(), String> {
        check_widths(
            "text",
            self.hidden_size,
            self.num_attention_heads,
            self.intermediate_size,
        )?;
        if self.num_hidden_layers == 0 || self.max_position_embeddings == 0 {
            return Err(
                "text: num_hidden_layers and max_position_embeddings must be positive".into(),
            );
        }
        if self.effective_eos_token_id() >= self.vocab_size {
            return Err(format!(
                "text: eos_token_id {} is outside the vocabulary of {}",
                self.eos_token_id, self.vocab_size
            ));
        }
        Ok(())
    }
}

fn check_widths(tower: &str, width: usize, heads: usize, mlp: usize) -> Result<(), String> {
    if width == 0 || heads == 0 || mlp == 0 || !width.is_multiple_of(heads) {
        return Err(format!(
            "{tower}: hidden_size {width} must be a positive multiple of num_attention_heads {heads} \
             (intermediate_size {mlp} positive)"
        ));
    }
    Ok(())
}

/// The path and bytes of `dir/config.json`; errors say what is missing.
fn read_config_json(dir: &Path) -> Result<(std::path::PathBuf, Vec<u8>), ClipError> {
    if !dir.is_dir() {
        return Err(ClipError::MissingFile {
            path: dir.to_path_buf(),
            expected: "a Hugging Face CLIP folder (config.json, model.safetensors)",
        });
    }
    let path = dir.join("config.json");
    if !path.is_file() {
        return Err(ClipError::MissingFile {
            path,
            expected: "a Hugging Face CLIP config.json",
        });
    }
    let bytes = next_common::read_file(&path)?;
    Ok((path, bytes))
}

/// The JSON object of a `config.json` (a leading byte-order mark is allowed).
fn parse_config_json(bytes: &[u8], path: &Path) -> Result<Value, ClipError> {
    let root: Value = serde_json::from_slice(next_common::strip_utf8_bom(bytes)).map_err(|e| {
        ClipError::InvalidConfig {
            path: path.to_path_buf(),
            message: format!("not valid JSON: {e}"),
        }
    })?;
    if !root.is_object() {
        return Err(ClipError::InvalidConfig {
            path: path.to_path_buf(),
            message: "expected a JSON object".into(),
        });
    }
    Ok(root)
}

fn model_type(root: &Value) -> String {
    root.get("model_type")
        .and_then(Value::as_str)
        .unwrap_or("<none>")
        .to_string()
}

fn projection_dim(root: &Value, path: &Path) -> Result<usize, ClipError> {
    match root.get("projection_dim") {
        None => Ok(512),
        Some(v) => v
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| ClipError::InvalidConfig {
                path: path.to_path_buf(),
                message: format!("projection_dim must be a positive integer, found {v}"),
            }),
    }
}

fn section<T: for<'de> Deserialize<'de>>(
    root: &Value,
    key: &str,
    path: &Path,
) -> Result<T, ClipError> {
    check_activation(root, key, path)?;
    let value = root
        .get(key)
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    parse_value(value, path).map_err(|e| match e {
        ClipError::InvalidConfig { path, message } => ClipError::InvalidConfig {
            path,
            message: format!("{key}: {message}"),
        },
        other => other,
    })
}

fn parse_value<T: for<'de> Deserialize<'de>>(value: Value, path: &Path) -> Result<T, ClipError> {
    serde_json::from_value(value).map_err(|e| ClipError::InvalidConfig {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Only QuickGELU (OpenAI CLIP's activation) is implemented; reject anything else by name.
fn check_activation(root: &Value, key: &str, path: &Path) -> Result<(), ClipError> {
    let section = if key.is_empty() {
        Some(root)
    } else {
        root.get(key)
    };
    let act = section
        .and_then(|s| s.get("hidden_act"))
        .and_then(Value::as_str);
    match act {
        None | Some("quick_gelu") => Ok(()),
        Some(other) => Err(ClipError::InvalidConfig {
            path: path.to_path_buf(),
            message: format!("{key}.hidden_act is {other:?}; only \"quick_gelu\" is supported"),
        }),
    }
}
