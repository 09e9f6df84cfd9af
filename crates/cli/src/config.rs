//! Run configuration of the `next` tool: one TOML file with the sections of every library
//! (`[data]`, `[model]`, `[loader]`, `[solver]`, `[eval]`, `[umm_augment]`, `[synthetic]`), read by the shared
//! loader of `next-common` (`--set a.b=value` overrides, unknown keys reported with the nearest
//! valid key, relative paths of a file resolved against the file's folder).

use next_reid::common::{ConfigError, TomlLayout, TomlSource};
use next_reid::data::{DatasetConfig, DatasetKind, LoaderConfig, ModalityAugConfig, SynthConfig};
use next_reid::model::NextConfig;
use next_reid::train::{EvaluationConfig, SolverConfig, TrainConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole configuration of a training / evaluation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Run name, used for the output folder.
    pub name: String,
    /// Dataset layout, captions, image size and augmentation (the `next-data` settings).
    pub data: DatasetConfig,
    /// The NEXT model (the `next-model` settings); `num_classes` and `num_cameras` are taken
    /// from the training split at run time.
    pub model: NextConfig,
    /// Batching and decoding threads.
    pub loader: LoaderConfig,
    /// Optimiser and schedule.
    pub solver: SolverConfig,
    /// Evaluation protocol.
    pub eval: EvaluationConfig,
    /// UMM synthetic modality augmentation of training batches (the `next-data` settings).
    pub umm_augment: ModalityAugConfig,
    /// The synthetic benchmark written by `next synth` / `next demo` (the `next-data` settings).
    pub synthetic: SynthConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: "run".into(),
            data: DatasetConfig::new("data/synthetic", DatasetKind::Rgbnt201),
            model: NextConfig::default(),
            loader: LoaderConfig::default(),
            solver: SolverConfig::default(),
            eval: EvaluationConfig::default(),
            umm_augment: ModalityAugConfig::default(),
            synthetic: SynthConfig::default(),
        }
    }
}

/// Keys holding file paths (relative ones in a file are resolved against the file's folder).
const PATH_KEYS: [&str; 3] = ["data.root", "data.captions", "model.clip"];

/// Values of `model.clip` that are preset names, not folders.
const CLIP_PRESETS: [&str; 3] = ["tiny", "vit_b16", "vit_b32"];

fn layout() -> Result<TomlLayout, ConfigError> {
    let mut schema = RunConfig::default();
    // Optional fields are skipped when `None`: give them a value so that they are in the schema.
    schema.data.captions = Some(PathBuf::from("captions"));
    schema.data.image_size = Some([256, 128]);
    schema.synthetic.image_size = Some([128, 64]);
    Ok(TomlLayout::new(&RunConfig::default(), &schema, &PATH_KEYS)?.with_literals(&CLIP_PRESETS))
}

impl RunConfig {
    /// Read a TOML file (or start from defaults when `path` is `None`), apply `--set` overrides,
    /// check every key against the schema, deserialise and check the ranges.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Self, ConfigError> {
        let source = match path {
            Some(p) => TomlSource::File(p),
            None => TomlSource::Defaults,
        };
        let config: Self = layout()?.load(source, overrides)?;
        config.validate()?;
        Ok(config)
    }

    /// Parse TOML text (embedded configs, checkpoints), with overrides; `origin` names it in
    /// errors. Paths are kept as written.
    pub fn from_toml_text(
        origin: &str,
        text: &str,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        let config: Self = layout()?.load(TomlSource::Text { origin, text }, overrides)?;
        config.validate()?;
        Ok(config)
    }

    /// Parse an embedded TOML string, with overrides.
    pub fn from_toml_str(text: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        Self::from_toml_text("<embedded>", text, overrides)
    }

    /// The configuration as TOML text (saved next to checkpoints).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The configuration as the text of a `config.toml` written beside a run: relative paths
    /// made absolute, so `next train --config RUN/config.toml` works from any folder.
    pub fn to_file_text(&self) -> Result<String, ConfigError> {
        layout()?.file_text(self)
    }

    /// The library's training configuration (solver, loader, evaluation).
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            solver: self.solver.clone(),
            loader: self.loader,
            eval: self.eval.clone(),
            umm_augment: self.umm_augment.clone(),
        }
    }

    /// Check value ranges that serde cannot express (each error names its key).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.train_config().validate()?;
        self.data
            .validate(Path::new("config [data]"))
            .map_err(|e| ConfigError::Invalid {
                origin: "config".into(),
                message: e.to_string(),
            })?;
        self.synthetic
            .validate()
            .map_err(|e| ConfigError::Invalid {
                origin: "config".into(),
                message: e.to_string(),
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_sets_nested_values_and_converts_integers_to_floats() {
        let cfg = RunConfig::from_toml_str(
            "[solver]\nepochs = 3\n",
            &[
                "solver.base_lr=1".into(),
                "model.mgfa.mode=modality_features".into(),
                "data.root=/x/y".into(),
                "data.captions=/caps".into(),
                "data.image_size=[128, 256]".into(),
            ],
        )
        .unwrap();
        assert_eq!(cfg.solver.epochs, 3);
        assert_eq!(cfg.solver.base_lr, 1.0);
        assert_eq!(
            cfg.model.mgfa.mode,
            next_reid::aggregation::AggregationMode::ModalityFeatures
        );
        assert_eq!(cfg.data.root, PathBuf::from("/x/y"));
        assert_eq!(cfg.data.captions, Some(PathBuf::from("/caps")));
        assert_eq!(cfg.data.size(), [128, 256]);
    }

    #[test]
    fn unknown_key_names_key_and_nearest_valid_key() {
        let err = RunConfig::from_toml_str("", &["solver.base_lrr=0.1".into()]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`solver.base_lrr`"), "{text}");
        assert!(text.contains("did you mean `solver.base_lr`"), "{text}");
        let err = RunConfig::from_toml_str("[sovler]\nepochs = 2\n", &[]).unwrap_err();
        assert!(err.to_string().contains("did you mean `solver`"), "{err}");
    }

    #[test]
    fn wrong_type_and_bad_ranges_are_errors() {
        assert!(RunConfig::from_toml_str("", &["solver.epochs=abc".into()]).is_err());
        assert!(RunConfig::from_toml_str("", &["model.mgfa.mode=z".into()]).is_err());
        assert!(RunConfig::from_toml_str("", &["novalue".into()]).is_err());
        assert!(RunConfig::from_toml_str("", &["loader.batch_size=4".into()]).is_err());
        let err = RunConfig::from_toml_str("", &["model.tmse.num_expert=2".into()]).unwrap_err();
        assert!(err.to_string().contains("model.tmse.num_experts"), "{err}");
    }

    #[test]
    fn a_saved_config_reads_back_with_the_same_paths_from_another_folder() {
        let mut cfg = RunConfig::default();
        cfg.data.root = PathBuf::from("runs/d1/data");
        cfg.model.clip = next_reid::model::ClipSource::HfDir(PathBuf::from("runs/d1/clip"));
        let dir = tempfile::tempdir().unwrap();
        let saved = dir.path().join("nested/config.toml");
        std::fs::create_dir_all(saved.parent().unwrap()).unwrap();
        std::fs::write(&saved, cfg.to_file_text().unwrap()).unwrap();
        let back = RunConfig::load(Some(&saved), &[]).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(back.data.root, cwd.join("runs/d1/data"));
        assert_eq!(
            back.model.clip,
            next_reid::model::ClipSource::HfDir(cwd.join("runs/d1/clip"))
        );
        // Preset names are not paths.
        let preset = RunConfig::default();
        std::fs::write(&saved, preset.to_file_text().unwrap()).unwrap();
        let back = RunConfig::load(Some(&saved), &[]).unwrap();
        assert_eq!(back.model.clip, preset.model.clip);
    }

    #[test]
    fn defaults_round_trip_through_toml() {
        let cfg = RunConfig::default();
        let back = RunConfig::from_toml_str(&cfg.to_toml(), &[]).unwrap();
        assert_eq!(cfg, back);
    }

    #[test]
    fn a_type_error_in_set_names_the_set_argument() {
        let err = RunConfig::from_toml_text(
            "run.toml",
            "[solver]\nepochs = 3\n",
            &["solver.epochs=abc".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("--set solver.epochs=abc"), "{err}");
        let err = RunConfig::from_toml_text("run.toml", "[solver]\nepochs = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("run.toml"), "{err}");
    }

    #[test]
    fn solver_and_eval_ranges_name_the_key() {
        for (item, key) in [
            ("solver.warmup_factor=2", "solver.warmup_factor"),
            ("solver.weight_decay=-1", "solver.weight_decay"),
            ("eval.max_rank=0", "eval.max_rank"),
        ] {
            let err = RunConfig::from_toml_str("", &[item.into()])
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(key), "{item}: {err}");
        }
    }

    #[test]
    fn bad_umm_settings_are_errors_naming_the_key() {
        for (item, key) in [
            ("umm_augment.p_full=1.5", "umm_augment.p_full"),
            (
                "umm_augment.uncertain_prob=-0.1",
                "umm_augment.uncertain_prob",
            ),
            ("umm_augment.shadow_prob=2", "umm_augment.shadow_prob"),
        ] {
            let err = RunConfig::from_toml_str("", &[item.into()])
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(key), "{item}: {err}");
        }
        for item in [
            "umm_augment.pixel_synth=blur",
            "umm_augment.p_ful=0.5",
            "model.umm.fill=maybe",
            "model.umm.tokenizer=own",
        ] {
            let err = RunConfig::from_toml_str("", &[item.into()])
                .unwrap_err()
                .to_string();
            let key = item.split('=').next().unwrap();
            assert!(err.contains(key), "{item}: {err}");
        }
        let cfg =
            RunConfig::from_toml_str("", &["umm_augment.pixel_synth=channel_aug".into()]).unwrap();
        assert!(!cfg.train_config().umm_augment.enabled);
    }

    #[test]
    fn captions_none_turns_captions_off() {
        let cfg = RunConfig::from_toml_str(
            "[data]\ncaptions = \"/caps\"\n",
            &["data.captions=none".into()],
        )
        .unwrap();
        assert_eq!(cfg.data.captions, None);
    }
}
