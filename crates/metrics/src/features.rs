//! Feature matrices (row-major f32) and per-sample metadata (pid, camera, scene).

use crate::MetricsError;
use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

/// Norms below this are treated as this value when normalising, like `torch.nn.functional.normalize`.
pub const NORM_EPSILON: f32 = 1e-12;

/// A row-major matrix of feature vectors: `rows` samples of dimension `dim`.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    data: Vec<f32>,
    rows: usize,
    dim: usize,
    normalized: bool,
}

impl Features {
    /// Wrap `data` as `rows` x `dim` (row-major); fails when the length does not match or `dim` is 0.
    pub fn new(data: Vec<f32>, rows: usize, dim: usize) -> Result<Self, MetricsError> {
        if dim == 0 {
            return Err(MetricsError::ZeroDim { set: "input" });
        }
        if rows.checked_mul(dim) != Some(data.len()) {
            return Err(MetricsError::BadShape {
                set: "input",
                len: data.len(),
                rows,
                dim,
            });
        }
        Ok(Self {
            data,
            rows,
            dim,
            normalized: false,
        })
    }

    /// Copy a `[rows, dim]` Burn tensor into a feature matrix.
    pub fn from_tensor<B: Backend>(tensor: Tensor<B, 2>) -> Result<Self, MetricsError> {
        let [rows, dim] = tensor.dims();
        let data = tensor
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| MetricsError::TensorData(format!("{e:?}")))?;
        Self::new(data, rows, dim)
    }

    /// Number of feature vectors.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Dimension of each feature vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Row `i` (panics when out of range, like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Whether [`Features::l2_normalize`] has been applied (evaluation then skips its own copy).
    pub fn is_normalized(&self) -> bool {
        self.normalized
    }

    /// Divide every row by its L2 norm (at least [`NORM_EPSILON`]), in place.
    pub fn l2_normalize(&mut self) {
        if !self.normalized {
            l2_normalize_rows(&mut self.data, self.dim);
            self.normalized = true;
        }
    }

    /// Check that every value and every squared row norm is finite; `set` names the input in errors.
    pub fn check_finite(&self, set: &'static str) -> Result<(), MetricsError> {
        for (row, values) in self.data.chunks_exact(self.dim).enumerate() {
            let finite = values.iter().all(|v| v.is_finite());
            if !finite || !squared_norm(values).is_finite() {
                return Err(MetricsError::NonFinite { set, row });
            }
        }
        Ok(())
    }

    /// Consume the matrix and return its row-major values.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// Squared L2 norm of one row, summed left to right in f32 (the order every caller shares).
pub(crate) fn squared_norm(row: &[f32]) -> f32 {
    row.iter().fold(0.0f32, |acc, v| acc + v * v)
}

/// L2-normalise each `dim`-long row of `data` in place.
pub(crate) fn l2_normalize_rows(data: &mut [f32], dim: usize) {
    for row in data.chunks_exact_mut(dim) {
        let norm = squared_norm(row).sqrt().max(NORM_EPSILON);
        for v in row.iter_mut() {
            *v /= norm;
        }
    }
}

/// The scene id of a sample whose scene is unknown (the data crate's marker too).
pub const NO_SCENE: i64 = -1;

/// Identity, camera and scene of one sample; `sample_id` optionally names the underlying image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SampleMeta {
    /// Identity label.
    pub pid: i64,
    /// Camera id.
    pub camid: i64,
    /// Scene id (MSVR310; any value elsewhere); [`NO_SCENE`] when unknown.
    pub sceneid: i64,
    /// Optional id of the image itself: a query and a gallery entry with the same id are the same
    /// sample and the gallery entry is never counted for that query.
    pub sample_id: Option<u64>,
}

impl SampleMeta {
    /// Metadata without a sample id.
    pub fn new(pid: i64, camid: i64, sceneid: i64) -> Self {
        Self {
            pid,
            camid,
            sceneid,
            sample_id: None,
        }
    }

    /// The same metadata with `sample_id` set.
    pub fn with_sample_id(mut self, sample_id: u64) -> Self {
        self.sample_id = Some(sample_id);
        self
    }
}
