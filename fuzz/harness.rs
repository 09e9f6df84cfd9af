//! The bodies of the fuzz targets: each feeds arbitrary bytes to one parser of outside input
//! through the same public functions the program uses. Shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`) and the corpus replay test (`tests/fuzz_corpus.rs`), so every input
//! the fuzzer ever found is checked again by an ordinary `cargo test`.
//!
//! A target must never panic or abort: errors are fine, they are what bad input should give.

use next_reid::burn::backend::Flex;
use next_reid::captions::schema::ObjectKind;
use next_reid::clip::{ClipConfig, ClipModel, ClipTextConfig, ClipVisionConfig};
use next_reid::data::decode::{decode_bytes, read_header, ImageLimits};
use next_reid::data::names::parse_name;
use next_reid::data::transform::{test_transform_pixels, train_transform_triplet};
use next_reid::data::{DatasetConfig, DatasetKind, LoaderConfig, SynthConfig, TransformConfig};
use std::path::Path;
use std::sync::OnceLock;

/// A fuzz target body: one input, no result (it must simply not panic).
pub type Target = fn(&[u8]);

/// Every target by name, for the corpus replay: `(name, body)`.
pub const TARGETS: &[(&str, Target)] = &[
    ("caption_json", caption_json),
    ("clip_config", clip_config),
    ("clip_safetensors", clip_safetensors),
    ("image_decode", image_decode),
    ("dataset_names", dataset_names),
    ("eval_features", eval_features),
    ("mllm_answer", mllm_answer),
    ("config_toml", config_toml),
    ("config_overrides", config_overrides),
    ("checkpoint", checkpoint),
];

/// Caption JSON files, as the data crate (training) and the captions crate (pipeline) read them.
pub fn caption_json(data: &[u8]) {
    let path = Path::new("fuzz/train_RGB.json");
    let _ = next_reid::data::captions::CaptionTable::parse(data, path);
    let _ = next_reid::captions::parse_caption_file(data, path);
}

/// Hugging Face `config.json`, read as a whole CLIP model and as a vision tower.
pub fn clip_config(data: &[u8]) {
    let path = Path::new("fuzz/config.json");
    let _ = ClipConfig::from_hf_json(data, path);
    let _ = ClipVisionConfig::from_hf_json(data, path);
}

/// A CLIP small enough to load thousands of times a second.
fn micro_clip() -> &'static ClipModel<Flex> {
    static MODEL: OnceLock<ClipModel<Flex>> = OnceLock::new();
    MODEL.get_or_init(|| {
        let config = ClipConfig {
            vision: ClipVisionConfig {
                hidden_size: 4,
                intermediate_size: 4,
                num_hidden_layers: 1,
                num_attention_heads: 1,
                image_size: 4,
                patch_size: 2,
                num_channels: 3,
                layer_norm_eps: 1e-5,
            },
            text: ClipTextConfig {
                vocab_size: 8,
                hidden_size: 4,
                intermediate_size: 4,
                num_hidden_layers: 1,
                num_attention_heads: 1,
                max_position_embeddings: 4,
                eos_token_id: 7,
                bos_token_id: 6,
                pad_token_id: 0,
                ..ClipTextConfig::default()
            },
            projection_dim: 4,
        };
        ClipModel::new(&config, 2, 1.0, &Default::default())
    })
}

/// A `model.safetensors` loaded into a (micro) CLIP model with every tensor checked.
pub fn clip_safetensors(data: &[u8]) {
    let dir = std::env::temp_dir().join(format!("next-fuzz-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let file = dir.join("model.safetensors");
    if std::fs::write(&file, data).is_err() {
        return;
    }
    let mut model = micro_clip().clone();
    let _ = next_reid::clip::load_hf_safetensors(
        &mut model,
        &file,
        next_reid::clip::FULL_MODEL_PREFIXES,
    );
    let _ = std::fs::remove_file(&file);
}

/// Image files: header check, decoding within limits, then the test and train transforms.
pub fn image_decode(data: &[u8]) {
    let path = Path::new("fuzz/image");
    let limits = ImageLimits { max_side: 2048 };
    let _ = read_header(data, path, &limits);
    let Ok(pixels) = decode_bytes(data, path, &limits) else {
        return;
    };
    let (w, h) = pixels.dimensions();
    if u64::from(w) * u64::from(h) > 1 << 20 {
        return; // transforms of huge images are slow, not wrong
    }
    let cfg = TransformConfig {
        size: [16, 8],
        normalization: Default::default(),
        sync: Default::default(),
        random_erasing: true,
        sketch_ink: Default::default(),
        sketch_standardize: false,
    };
    let mut out = vec![0.0; cfg.image_len()];
    test_transform_pixels(&pixels, &cfg, &mut out);
    let mut outs = [out.clone(), out.clone(), out];
    let [a, b, c] = &mut outs;
    let images = [pixels.clone(), pixels.clone(), pixels];
    train_transform_triplet(&images, &cfg, 7, [a, b, c]);
}

/// File names of every dataset layout; the first byte picks the layout, a `/` splits off the
/// id folder of per-id layouts.
pub fn dataset_names(data: &[u8]) {
    const KINDS: [DatasetKind; 6] = [
        DatasetKind::Rgbnt201,
        DatasetKind::Rgbnt100,
        DatasetKind::Msvr310,
        DatasetKind::MarketMm,
        DatasetKind::Wmveid863,
        DatasetKind::Custom,
    ];
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let kind = KINDS[usize::from(first) % KINDS.len()];
    let text = String::from_utf8_lossy(rest);
    let (folder, name) = match text.split_once('/') {
        Some((folder, name)) => (Some(folder), name),
        None => (None, text.as_ref()),
    };
    let _ = parse_name(kind, name, folder);
}

/// The features file of `eval_features`, then a small evaluation of what it holds.
pub fn eval_features(data: &[u8]) {
    use next_reid::metrics::{evaluate, EvalConfig, EvalProtocol, FeatureSet};
    let Ok(set) = FeatureSet::from_safetensors_bytes(data, Path::new("fuzz/features.safetensors"))
    else {
        return;
    };
    let work = set.query.rows() * set.gallery.rows() * set.query.dim().max(1);
    if work > 1 << 16 {
        return;
    }
    for protocol in [
        EvalProtocol::Standard,
        EvalProtocol::Msvr,
        EvalProtocol::None,
    ] {
        let cfg = EvalConfig {
            protocol,
            threads: Some(1),
            query_is_gallery: set.query_is_gallery(),
            ..EvalConfig::default()
        };
        let _ = evaluate(
            &set.query,
            &set.gallery,
            &set.query_meta,
            &set.gallery_meta,
            &cfg,
        );
    }
}

/// MLLM answers (attribute JSON in prose or code fences) and NEXT caption templates.
pub fn mllm_answer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = next_reid::captions::extract_json_object(&text);
    for kind in [ObjectKind::Person, ObjectKind::Vehicle] {
        let _ = next_reid::captions::parse_attribute_answer(&text, kind);
    }
    let _ = next_reid::captions::parse_person_caption(&text);
    let _ = next_reid::captions::parse_vehicle_caption(&text);
}

/// The TOML configs parsed today: model, dataset, loader and synthetic-data sections.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = next_reid::model::NextConfig::from_toml_str(text);
    let _ = DatasetConfig::from_toml_str(text, Path::new("fuzz/data.toml"));
    if let Ok(loader) = toml::from_str::<LoaderConfig>(text) {
        let _ = loader.validate();
    }
    if let Ok(synth) = toml::from_str::<SynthConfig>(text) {
        let _ = synth.validate();
    }
}

/// The shared TOML loader with `--set` overrides, on the training configuration: lines of the
/// input that start with `--set ` are overrides, the rest is the TOML text.
pub fn config_overrides(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (sets, toml_lines): (Vec<&str>, Vec<&str>) =
        text.lines().partition(|l| l.starts_with("--set "));
    let overrides: Vec<String> = sets
        .iter()
        .map(|l| l["--set ".len()..].to_string())
        .collect();
    let toml_text = toml_lines.join("\n");
    let defaults = next_reid::train::TrainConfig::default();
    let Ok(layout) = next_reid::common::TomlLayout::new(&defaults, &defaults, &[]) else {
        return;
    };
    let source = next_reid::common::TomlSource::Text {
        origin: "fuzz.toml",
        text: &toml_text,
    };
    if let Ok(config) = layout.load::<next_reid::train::TrainConfig>(source, &overrides) {
        let _ = config.validate();
    }
}

/// The checkpoint reader: container, header, architecture check and the weights record,
/// loaded into a micro NEXT model (a header is never used to build a model here, so a
/// fuzzed architecture cannot ask for gigabytes).
pub fn checkpoint(data: &[u8]) {
    use next_reid::model::{check_architecture, Checkpoint, NextModel};
    static MODEL: OnceLock<Option<NextModel<Flex>>> = OnceLock::new();
    let path = Path::new("fuzz/last.ckpt");
    let Ok(ckpt) = Checkpoint::from_bytes(data, path) else {
        return;
    };
    let Ok(header) = ckpt.model_header(path) else {
        return;
    };
    let Some(model) = MODEL
        .get_or_init(|| {
            next_reid::model::NextConfig::tiny(4)
                .init::<Flex>(&Default::default())
                .ok()
        })
        .clone()
    else {
        return;
    };
    let _ = check_architecture(path, &header, &model.config, &model.clip_architecture);
    let _ = ckpt.load_weights(model, path, &Default::default());
}
