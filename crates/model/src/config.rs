//! The NEXT model configuration: every ablation switch of the paper as a TOML-able field.

use crate::query::QueryConfig;
use crate::umm::UmmConfig;
use crate::ModelError;
use next_aggregation::MgfaConfig;
use next_clip::{ClipConfig, Precision};
use next_experts::{CsseConfig, TmseConfig};
use next_losses::{ReidLossConfig, TripletMargin};
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
    /// Any-modality queries: sketch embedding, text head, alignment loss (off by default).
    pub query: QueryConfig,
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
            query: QueryConfig::default(),
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

    /// Check the range of every numeric field; the error names the key and the range.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |message: String| {
            Err(ModelError::Config {
                path: None,
                message,
            })
        };
        let counts: [(&str, usize, usize, usize); 10] = [
            ("num_classes", self.num_classes, 1, 1 << 24),
            ("num_cameras", self.num_cameras, 0, 1 << 16),
            ("tmse.num_experts", self.tmse.num_experts, 1, 64),
            ("tmse.mlp_ratio", self.tmse.mlp_ratio, 1, 64),
            (
                "tmse.modulation_hidden",
                self.tmse.modulation_hidden,
                1,
                1 << 16,
            ),
            (
                "tmse.route_hidden_divisor",
                self.tmse.route_hidden_divisor,
                1,
                1 << 16,
            ),
            ("csse.num_experts", self.csse.num_experts, 1, 64),
            ("csse.mlp_ratio", self.csse.mlp_ratio, 1, 64),
            ("mgfa.num_heads", self.mgfa.num_heads, 1, 1024),
            ("mgfa.ffn_ratio", self.mgfa.ffn_ratio, 0, 64),
        ];
        for (key, value, min, max) in counts {
            if !(min..=max).contains(&value) {
                return bad(format!("{key} = {value}: expected {min}..={max}"));
            }
        }
        // (key, value, lowest, highest, lowest allowed, highest allowed)
        let reals: [(&str, f64, f64, f64, bool, bool); 10] = [
            (
                "sentence_keep_prob",
                self.sentence_keep_prob,
                0.0,
                1.0,
                false,
                true,
            ),
            (
                "camera_coef",
                f64::from(self.camera_coef),
                0.0,
                1e3,
                true,
                true,
            ),
            ("tmse.dropout", self.tmse.dropout, 0.0, 1.0, true, false),
            (
                "tmse.top_k_fraction",
                f64::from(self.tmse.top_k_fraction),
                0.0,
                1.0,
                false,
                true,
            ),
            (
                "tmse.fixed_threshold",
                f64::from(self.tmse.fixed_threshold),
                0.0,
                1.0,
                true,
                true,
            ),
            ("csse.dropout", self.csse.dropout, 0.0, 1.0, true, false),
            ("mgfa.dropout", self.mgfa.dropout, 0.0, 1.0, true, false),
            (
                "loss.label_smoothing",
                f64::from(self.loss.label_smoothing),
                0.0,
                1.0,
                true,
                false,
            ),
            (
                "loss.id_weight",
                f64::from(self.loss.id_weight),
                0.0,
                1e6,
                true,
                true,
            ),
            (
                "loss.triplet_weight",
                f64::from(self.loss.triplet_weight),
                0.0,
                1e6,
                true,
                true,
            ),
        ];
        for (key, value, lo, hi, lo_in, hi_in) in reals {
            let above = if lo_in { value >= lo } else { value > lo };
            let below = if hi_in { value <= hi } else { value < hi };
            if !(value.is_finite() && above && below) {
                let (open, close) = (if lo_in { '[' } else { '(' }, if hi_in { ']' } else { ')' });
                return bad(format!(
                    "{key} = {value}: expected a number in {open}{lo}, {hi}{close}"
                ));
            }
        }
        if let TripletMargin::Fixed(margin) = self.loss.triplet_margin {
            if !(margin.is_finite() && (0.0..=1e3).contains(&margin)) {
                return bad(format!(
                    "loss.triplet_margin = {margin}: expected a fixed margin in [0, 1000] (or \"soft\")"
                ));
            }
        }
        if let Err(message) = self.umm.validate(None) {
            return bad(message);
        }
        if let Err(message) = self.query.validate(self.umm.enabled) {
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
    fn every_numeric_value_out_of_range_is_an_error_naming_its_key() {
        // Each of these reached a Burn assertion (dropout) or a silent misconfiguration before.
        for (toml, key) in [
            ("[tmse]\ndropout = 1.5", "tmse.dropout"),
            ("[csse]\ndropout = -0.1", "csse.dropout"),
            ("[mgfa]\ndropout = 1.0", "mgfa.dropout"),
            ("[tmse]\nmlp_ratio = 0", "tmse.mlp_ratio"),
            ("[tmse]\nfixed_threshold = nan", "tmse.fixed_threshold"),
            ("[tmse]\ntop_k_fraction = 0.0", "tmse.top_k_fraction"),
            ("[csse]\nnum_experts = 0", "csse.num_experts"),
            ("[mgfa]\nnum_heads = 0", "mgfa.num_heads"),
            ("[loss]\nlabel_smoothing = 1.0", "loss.label_smoothing"),
            ("[loss]\nid_weight = -1.0", "loss.id_weight"),
            ("[loss]\ntriplet_weight = inf", "loss.triplet_weight"),
            (
                "[loss]\ntriplet_margin = { fixed = -0.3 }",
                "loss.triplet_margin",
            ),
            ("camera_coef = -2.0", "camera_coef"),
            ("num_classes = 0", "num_classes"),
            ("sentence_keep_prob = 1.5", "sentence_keep_prob"),
        ] {
            let err = NextConfig::from_toml_str(toml).expect_err(toml).to_string();
            assert!(err.contains(key), "{toml}: {err}");
        }
        assert!(NextConfig::default().validate().is_ok());
        assert!(NextConfig::tiny(3).validate().is_ok());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.toml");
        std::fs::write(&path, "[tmse]\ndropout = 2.0\n").unwrap();
        let err = NextConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("model.toml") && err.contains("tmse.dropout"),
            "{err}"
        );
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
