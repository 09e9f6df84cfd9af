//! The NEXT model configuration: every ablation switch of the paper as a TOML-able field.

use crate::umm::UmmConfig;
use crate::ModelError;
use next_aggregation::MgfaConfig;
use next_clip::{ClipConfig, Precision};
use next_experts::{CsseConfig, TmseConfig};
use next_losses::ReidLossConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A built-in CLIP architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipPreset {
    /// ViT-B/16 (the paper's encoder).
    VitB16,
    /// ViT-B/32.
    VitB32,
    /// A small random-init config for tests and demos.
    Tiny,
}

/// Where the CLIP architecture (and, for a folder, its weights) comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClipSource {
    /// A preset name: `vit_b16`, `vit_b32` or `tiny` (random init unless weights are loaded).
    Preset(ClipPreset),
    /// A Hugging Face CLIP folder with `config.json` and `model.safetensors`.
    HfDir(PathBuf),
}

/// Whether captions are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextMode {
    /// Every image must come with a caption (missing caption = error).
    Required,
    /// Captions are used when present; a missing one gives beta = 0 for that image.
    Optional,
    /// Captions are never used ("NEXT w/o text").
    Off,
}

/// Which feature the inference forward returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureStage {
    /// The identity feature before the BNNeck (paper default).
    PreBn,
    /// The batch-normalised feature.
    PostBn,
}

/// Every setting of the NEXT model, with the defaults of the architecture page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NextConfig {
    /// CLIP architecture: preset name or Hugging Face folder.
    pub clip: ClipSource,
    /// Number of training identities (classifier outputs).
    pub num_classes: usize,
    /// Number of cameras for the SIE camera embedding (0 = no SIE).
    pub num_cameras: usize,
    /// SIE coefficient.
    pub camera_coef: f32,
    /// Caption usage.
    pub text: TextMode,
    /// Probability of keeping each caption sentence during training (Fig. 6).
    pub sentence_keep_prob: f64,
    /// Inference feature: pre- or post-BN.
    pub feature: FeatureStage,
    /// Semantic experts.
    pub tmse: TmseConfig,
    /// Structure experts.
    pub csse: CsseConfig,
    /// Aggregation (including the Table IV row).
    pub mgfa: MgfaConfig,
    /// Loss weights and settings.
    pub loss: ReidLossConfig,
    /// Add the same identity + triplet pair on each MGFA branch (row (d) only), each branch
    /// with its own BNNeck.
    pub branch_losses: bool,
    /// Precision of the CLIP transformers' matrix products: `f32` (default), `bf16` or `f16`
    /// (mixed precision: parameters, norms and softmax stay f32). For GPUs; on the CPU the
    /// 16-bit paths are slower.
    pub precision: Precision,
    /// Uncertain/missing-modality machinery (off by default: the model is exactly NEXT).
    pub umm: UmmConfig,
}

impl Default for NextConfig {
    fn default() -> Self {
        Self {
            clip: ClipSource::Preset(ClipPreset::VitB16),
            num_classes: 171,
            num_cameras: 4,
            camera_coef: 1.0,
            text: TextMode::Required,
            sentence_keep_prob: 0.75,
            feature: FeatureStage::PreBn,
            tmse: TmseConfig::default(),
            csse: CsseConfig::default(),
            mgfa: MgfaConfig::default(),
            loss: ReidLossConfig::default(),
            branch_losses: false,
            precision: Precision::F32,
            umm: UmmConfig::default(),
        }
    }
}

impl NextConfig {
    /// A small config for tests and demos: tiny CLIP, `num_classes` identities, default experts.
    pub fn tiny(num_classes: usize) -> Self {
        Self {
            clip: ClipSource::Preset(ClipPreset::Tiny),
            num_classes,
            ..Self::default()
        }
    }

    /// Parse a TOML config; unknown fields are errors.
    pub fn from_toml_str(text: &str) -> Result<Self, ModelError> {
        let config: Self = toml::from_str(text).map_err(|e| ModelError::Config {
            path: None,
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Read and parse a TOML config file; errors name the file.
    pub fn from_toml_file(path: &Path) -> Result<Self, ModelError> {
        let bytes = next_common::read_file(path)?;
        let text = String::from_utf8(bytes).map_err(|e| ModelError::Config {
            path: Some(path.to_path_buf()),
            message: format!("expected UTF-8 TOML: {e}"),
        })?;
        let config: Self = toml::from_str(&text).map_err(|e| ModelError::Config {
            path: Some(path.to_path_buf()),
            message: e.to_string(),
        })?;
        config.validate().map_err(|e| match e {
            ModelError::Config { message, .. } => ModelError::Config {
                path: Some(path.to_path_buf()),
                message,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// The config as TOML text.
    pub fn to_toml_string(&self) -> Result<String, ModelError> {
        toml::to_string(self).map_err(|e| ModelError::Config {
            path: None,
            message: e.to_string(),
        })
    }

    /// Check value ranges that serde cannot.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |message: String| {
            Err(ModelError::Config {
                path: None,
                message,
            })
        };
        if self.num_classes == 0 {
            return bad("num_classes must be at least 1".into());
        }
        if !(self.sentence_keep_prob > 0.0 && self.sentence_keep_prob <= 1.0) {
            return bad(format!(
                "sentence_keep_prob must be in (0, 1], got {}",
                self.sentence_keep_prob
            ));
        }
        if self.tmse.num_experts == 0 || self.csse.num_experts == 0 {
            return bad("tmse.num_experts and csse.num_experts must be at least 1".into());
        }
        if !(self.tmse.top_k_fraction > 0.0 && self.tmse.top_k_fraction <= 1.0) {
            return bad(format!(
                "tmse.top_k_fraction must be in (0, 1], got {}",
                self.tmse.top_k_fraction
            ));
        }
        if self.mgfa.num_heads == 0 {
            return bad("mgfa.num_heads must be at least 1".into());
        }
        if let Err(message) = self.umm.validate(None) {
            return bad(message);
        }
        Ok(())
    }

    /// Number of extra branch BNNecks (2 with `branch_losses` in row (d), else 0).
    pub fn num_branch_necks(&self) -> usize {
        if self.branch_losses && self.mgfa.mode.num_branches() == 2 {
            2
        } else {
            0
        }
    }

    /// The CLIP architecture: the preset, or `config.json` of the Hugging Face folder.
    pub fn clip_config(&self) -> Result<ClipConfig, ModelError> {
        Ok(match &self.clip {
            ClipSource::Preset(ClipPreset::VitB16) => ClipConfig::vit_b16(),
            ClipSource::Preset(ClipPreset::VitB32) => ClipConfig::vit_b32(),
            ClipSource::Preset(ClipPreset::Tiny) => ClipConfig::tiny(),
            ClipSource::HfDir(dir) => ClipConfig::from_hf_dir(dir)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use next_aggregation::AggregationMode;

    #[test]
    fn toml_round_trip_partial_files_and_unknown_fields() {
        let config = NextConfig::tiny(7);
        let back = NextConfig::from_toml_str(&config.to_toml_string().unwrap()).unwrap();
        assert_eq!(back, config);

        let partial = NextConfig::from_toml_str(
            "clip = \"/models/clip-vit-base-patch16\"\ntext = \"off\"\n[mgfa]\nmode = \"semantic\"\n",
        )
        .unwrap();
        assert_eq!(
            partial.clip,
            ClipSource::HfDir("/models/clip-vit-base-patch16".into())
        );
        assert_eq!(partial.text, TextMode::Off);
        assert_eq!(partial.mgfa.mode, AggregationMode::Semantic);
        assert_eq!(partial.tmse.num_experts, 3);
        assert_eq!(partial.sentence_keep_prob, 0.75);

        assert!(NextConfig::from_toml_str("num_clases = 3").is_err());
        assert!(NextConfig::from_toml_str("sentence_keep_prob = 0.0").is_err());
    }

    #[test]
    fn file_errors_name_the_file() {
        let err = NextConfig::from_toml_file(Path::new("/no/such/next.toml")).unwrap_err();
        assert!(err.to_string().contains("/no/such/next.toml"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "num_classes = \"many\"").unwrap();
        let err = NextConfig::from_toml_file(&path).unwrap_err();
        assert!(err.to_string().contains("bad.toml"), "{err}");
    }
}
