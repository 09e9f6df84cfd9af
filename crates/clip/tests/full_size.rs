//! A full-size ViT-B/16 vision tower with random weights, written in the Hugging Face layout
//! (names, [out, in] linear weights, config.json), loads, runs at 256x128 and round-trips
//! through Burn's burnpack format unchanged.

mod common;

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use common::{max_abs_diff, B};
use next_clip::{load_burnpack, save_burnpack, ClipConfig, ClipVision};
use safetensors::{tensor::TensorView, Dtype};

const WIDTH: usize = 768;
const MLP: usize = 3072;
const LAYERS: usize = 12;
const PROJECTION: usize = 512;

/// Hugging Face names and shapes of a CLIPVisionModelWithProjection (ViT-B/16, 224 px).
fn hf_tensors() -> Vec<(String, Vec<usize>)> {
    let mut t = vec![
        (
            "vision_model.embeddings.class_embedding".to_string(),
            vec![WIDTH],
        ),
        (
            "vision_model.embeddings.patch_embedding.weight".into(),
            vec![WIDTH, 3, 16, 16],
        ),
        (
            "vision_model.embeddings.position_embedding.weight".into(),
            vec![197, WIDTH],
        ),
        ("vision_model.pre_layrnorm.weight".into(), vec![WIDTH]),
        ("vision_model.pre_layrnorm.bias".into(), vec![WIDTH]),
        ("vision_model.post_layernorm.weight".into(), vec![WIDTH]),
        ("vision_model.post_layernorm.bias".into(), vec![WIDTH]),
        ("visual_projection.weight".into(), vec![PROJECTION, WIDTH]),
    ];
    for i in 0..LAYERS {
        let p = format!("vision_model.encoder.layers.{i}");
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            t.push((format!("{p}.self_attn.{proj}.weight"), vec![WIDTH, WIDTH]));
            t.push((format!("{p}.self_attn.{proj}.bias"), vec![WIDTH]));
        }
        for norm in ["layer_norm1", "layer_norm2"] {
            t.push((format!("{p}.{norm}.weight"), vec![WIDTH]));
            t.push((format!("{p}.{norm}.bias"), vec![WIDTH]));
        }
        t.push((format!("{p}.mlp.fc1.weight"), vec![MLP, WIDTH]));
        t.push((format!("{p}.mlp.fc1.bias"), vec![MLP]));
        t.push((format!("{p}.mlp.fc2.weight"), vec![WIDTH, MLP]));
        t.push((format!("{p}.mlp.fc2.bias"), vec![WIDTH]));
    }
    t
}

/// Deterministic values in [-scale, scale] (+1 for norm weights), as little-endian f32 bytes.
fn random_bytes(name: &str, count: usize, seed: &mut u64) -> Vec<u8> {
    let offset = if name.contains("norm") && name.ends_with("weight") {
        1.0
    } else {
        0.0
    };
    let scale = if name.contains("embedding") {
        0.02
    } else {
        0.03
    };
    let mut bytes = Vec::with_capacity(count * 4);
    for _ in 0..count {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let unit = (*seed >> 40) as f32 / (1u64 << 24) as f32;
        bytes.extend_from_slice(&(offset + scale * (2.0 * unit - 1.0)).to_le_bytes());
    }
    bytes
}

fn write_hf_folder(dir: &Path) {
    let config = r#"{"model_type": "clip_vision_model", "hidden_size": 768, "intermediate_size": 3072,
        "num_hidden_layers": 12, "num_attention_heads": 12, "image_size": 224, "patch_size": 16,
        "num_channels": 3, "layer_norm_eps": 1e-05, "hidden_act": "quick_gelu", "projection_dim": 512}"#;
    std::fs::write(dir.join("config.json"), config).expect("config");
    let mut seed = 42u64;
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = hf_tensors()
        .into_iter()
        .map(|(name, shape)| {
            let bytes = random_bytes(&name, shape.iter().product(), &mut seed);
            (name, shape, bytes)
        })
        .collect();
    let position_ids: Vec<u8> = (0..197i64).flat_map(|i| i.to_le_bytes()).collect();
    let mut views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).expect("view"),
            )
        })
        .collect();
    views.push((
        "vision_model.embeddings.position_ids".into(),
        TensorView::new(Dtype::I64, vec![1, 197], &position_ids).expect("view"),
    ));
    safetensors::serialize_to_file(views, &None, &dir.join("model.safetensors")).expect("write");
}

#[test]
fn full_size_vit_b16_loads_runs_256x128_and_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_hf_folder(dir.path());
    let device = Default::default();
    let (vision, report) = ClipVision::<B>::from_hf_dir(dir.path(), 3, 1.0, &device).expect("load");
    assert_eq!(report.missing, vec!["camera_embedding".to_string()]);
    assert_eq!(
        report.unused,
        vec!["vision_model.embeddings.position_ids".to_string()]
    );
    assert_eq!(vision.width(), WIDTH);
    assert_eq!(vision.output_dim(), PROJECTION);

    // Linear weights arrive transposed to Burn's [in, out]: check one value by hand.
    let mut seed = 42u64;
    let mut first_q = None;
    for (name, shape) in hf_tensors() {
        let bytes = random_bytes(&name, shape.iter().product(), &mut seed);
        if name == "vision_model.encoder.layers.0.self_attn.q_proj.weight" {
            // HF [out=0, in=1] is Burn [in=1, out=0].
            first_q = Some(f32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")));
            break;
        }
    }
    let q = vision.encoder.layers[0].self_attn.q_proj.weight.val();
    let burn_value: f32 = q.slice([1..2, 0..1]).into_scalar();
    assert_eq!(Some(burn_value), first_q);

    let pixels = Tensor::<B, 4>::from_data(
        TensorData::new(
            (0..3 * 256 * 128)
                .map(|i| ((i % 97) as f32 / 48.0) - 1.0)
                .collect::<Vec<f32>>(),
            [1, 3, 256, 128],
        ),
        &device,
    );
    let cameras = || Some(Tensor::from_data([2], &device));
    let out = vision.forward(pixels.clone(), cameras());
    assert_eq!(out.tokens.dims(), [1, 129, PROJECTION]);
    let has_nan: bool = out.tokens.clone().is_nan().any().into_scalar();
    assert!(!has_nan, "NaN in output");

    let path = dir.path().join("vision.bpk");
    save_burnpack(&vision, &path).expect("save");
    let config = ClipConfig::vit_b16().vision;
    let mut reloaded = ClipVision::<B>::new(&config, PROJECTION, 3, 1.0, &device);
    load_burnpack(&mut reloaded, &path).expect("reload");
    let again = reloaded.forward(pixels, cameras());
    assert_eq!(max_abs_diff(out.tokens, again.tokens), 0.0);
}
