//! Bad inputs: every failure is an error (no panic) that names the file or tensor.

mod common;

use std::path::Path;

use common::{copy_dir, tiny_dir, B};
use next_clip::{ClipConfig, ClipError, ClipModel, ClipVision};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};

fn load(dir: &Path) -> Result<ClipModel<B>, ClipError> {
    ClipModel::<B>::from_hf_dir(dir, 0, 1.0, &Default::default()).map(|(m, _)| m)
}

/// Rewrite `model.safetensors` in `dir`, letting `edit` drop or replace tensors.
fn rewrite_weights(
    dir: &Path,
    edit: impl Fn(&str, &[usize], &[u8]) -> Option<(Vec<usize>, Vec<u8>)>,
) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).expect("weights");
    let file = SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut kept: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in file.tensors() {
        if let Some((shape, data)) = edit(&name, view.shape(), view.data()) {
            kept.push((name, shape, data));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = kept
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), d).expect("view"),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, &None, &path).expect("write");
}

#[test]
fn missing_folder_is_named() {
    let err = load(Path::new("/no/such/clip-folder")).unwrap_err();
    assert!(matches!(err, ClipError::MissingFile { .. }), "{err:?}");
    assert!(err.to_string().contains("/no/such/clip-folder"), "{err}");
}

#[test]
fn missing_config_and_missing_weights_are_named() {
    let dir = copy_dir(&tiny_dir());
    std::fs::remove_file(dir.path().join("model.safetensors")).expect("rm");
    let err = load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    std::fs::remove_file(dir.path().join("config.json")).expect("rm");
    let err = load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn another_architecture_is_rejected_by_name() {
    let dir = copy_dir(&tiny_dir());
    std::fs::write(
        dir.path().join("config.json"),
        br#"{"model_type": "bert", "hidden_size": 768}"#,
    )
    .expect("write");
    let err = load(dir.path()).unwrap_err();
    assert!(
        matches!(err, ClipError::UnsupportedArchitecture { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("bert") && text.contains("config.json"),
        "{text}"
    );
    let err = ClipVision::<B>::from_hf_dir(dir.path(), 0, 1.0, &Default::default()).unwrap_err();
    assert!(err.to_string().contains("bert"), "{err}");
}

#[test]
fn broken_or_unsupported_config_is_an_error() {
    let dir = copy_dir(&tiny_dir());
    std::fs::write(dir.path().join("config.json"), b"{ not json").expect("write");
    let err = ClipConfig::from_hf_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");
    let gelu = r#"{"model_type": "clip", "vision_config": {"hidden_act": "gelu"}}"#;
    std::fs::write(dir.path().join("config.json"), gelu).expect("write");
    let err = ClipConfig::from_hf_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("gelu"), "{err}");
    let heads =
        r#"{"model_type": "clip", "text_config": {"hidden_size": 100, "num_attention_heads": 8}}"#;
    std::fs::write(dir.path().join("config.json"), heads).expect("write");
    let err = ClipConfig::from_hf_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("num_attention_heads"), "{err}");
}

#[test]
fn wrong_shape_is_named_with_both_shapes() {
    let dir = copy_dir(&tiny_dir());
    let target = "vision_model.encoder.layers.1.mlp.fc1.weight";
    rewrite_weights(dir.path(), |name, shape, data| {
        if name == target {
            Some((
                vec![shape[0] / 2, shape[1]],
                data[..data.len() / 2].to_vec(),
            ))
        } else {
            Some((shape.to_vec(), data.to_vec()))
        }
    });
    let err = load(dir.path()).unwrap_err();
    match &err {
        ClipError::ShapeMismatch {
            tensor,
            expected,
            found,
            ..
        } => {
            assert_eq!(tensor, target);
            assert_eq!(expected, &vec![256, 64]);
            assert_eq!(found, &vec![128, 64]);
        }
        other => panic!("expected a shape mismatch, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(target) && text.contains("model.safetensors"),
        "{text}"
    );
}

#[test]
fn missing_tensor_is_named() {
    let dir = copy_dir(&tiny_dir());
    let target = "text_model.final_layer_norm.weight";
    rewrite_weights(dir.path(), |name, shape, data| {
        (name != target).then(|| (shape.to_vec(), data.to_vec()))
    });
    let err = load(dir.path()).unwrap_err();
    match &err {
        ClipError::MissingTensors { names, .. } => assert_eq!(names, &vec![target.to_string()]),
        other => panic!("expected missing tensors, got {other:?}"),
    }
    assert!(err.to_string().contains(target), "{err}");
}

#[test]
fn corrupt_weights_file_is_named() {
    let dir = copy_dir(&tiny_dir());
    std::fs::write(
        dir.path().join("model.safetensors"),
        b"definitely not safetensors",
    )
    .expect("write");
    let err = load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn odd_image_size_is_an_error_not_a_panic() {
    let vision = ClipVision::<B>::new(&ClipConfig::tiny().vision, 64, 0, 1.0, &Default::default());
    assert!(vision.grid_for(256, 128).is_ok());
    let err = vision.grid_for(250, 128).unwrap_err();
    assert!(err.to_string().contains("250x128"), "{err}");
}
