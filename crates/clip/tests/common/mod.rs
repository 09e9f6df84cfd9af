//! Helpers shared by the integration tests: fixture paths and safetensors readers.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::{Int, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

/// CPU test backend.
pub type B = burn::backend::Flex;

/// Repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
}

/// The committed tiny Hugging Face CLIP folder.
pub fn tiny_dir() -> PathBuf {
    repo_root().join("tests/fixtures/clip/tiny")
}

/// A float tensor of the reference file.
pub fn float<const D: usize>(file: &SafeTensors, name: &str) -> Tensor<B, D> {
    let view = file.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(view.dtype(), Dtype::F32, "{name}");
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Tensor::from_data(
        TensorData::new(values, view.shape().to_vec()),
        &Default::default(),
    )
}

/// An int64 tensor of the reference file.
pub fn int<const D: usize>(file: &SafeTensors, name: &str) -> Tensor<B, D, Int> {
    let view = file.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(view.dtype(), Dtype::I64, "{name}");
    let values: Vec<i64> = view
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    Tensor::from_data(
        TensorData::new(values, view.shape().to_vec()),
        &Default::default(),
    )
}

/// Largest absolute difference of two same-shaped tensors.
pub fn max_abs_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b).abs().max().into_scalar()
}

/// Copy a folder's files into a fresh temporary folder (to corrupt them in a test).
pub fn copy_dir(from: &std::path::Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    dir
}
