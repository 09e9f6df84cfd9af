//! Query/gallery features and labels stored in one safetensors file.
//!
//! Tensors: `query` `[Q, D]` and `gallery` `[G, D]` (f32, f64, f16 or bf16), and the integer
//! vectors `query_pids`, `query_camids`, `gallery_pids`, `gallery_camids` (`[Q]` / `[G]`) plus,
//! optionally, `query_sceneids` and `gallery_sceneids` (-1, "no scene", when absent; the MSVR310
//! protocol needs them and says so when they are missing).

use crate::{Features, MetricsError, SampleMeta, NO_SCENE};
use half::{bf16, f16};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::path::{Path, PathBuf};

/// Query and gallery features with their metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSet {
    /// Query features.
    pub query: Features,
    /// Gallery features.
    pub gallery: Features,
    /// One entry per query row.
    pub query_meta: Vec<SampleMeta>,
    /// One entry per gallery row.
    pub gallery_meta: Vec<SampleMeta>,
}

impl FeatureSet {
    /// Read a safetensors file with the tensors described in the module documentation.
    pub fn from_safetensors(path: impl AsRef<Path>) -> Result<Self, MetricsError> {
        let path = path.as_ref();
        let bytes = next_common::read_file(path)?;
        Self::from_safetensors_bytes(&bytes, path)
    }

    /// Parse safetensors bytes; `path` only names the source in errors.
    pub fn from_safetensors_bytes(bytes: &[u8], path: &Path) -> Result<Self, MetricsError> {
        let reader = Reader {
            path: path.to_path_buf(),
        };
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| reader.error(format!("not a safetensors file ({e})")))?;
        let query = reader.features(&tensors, "query")?;
        let gallery = reader.features(&tensors, "gallery")?;
        let query_meta = reader.meta(&tensors, "query", query.rows())?;
        let gallery_meta = reader.meta(&tensors, "gallery", gallery.rows())?;
        Ok(Self {
            query,
            gallery,
            query_meta,
            gallery_meta,
        })
    }

    /// Write the set as safetensors (f32 features, i64 labels), atomically.
    pub fn to_safetensors(&self, path: impl AsRef<Path>) -> Result<(), MetricsError> {
        let path = path.as_ref();
        let bad = |e: safetensors::SafeTensorError| MetricsError::BadFile {
            path: path.to_path_buf(),
            message: format!("cannot serialise tensors: {e}"),
        };
        let f32_bytes = |f: &Features| {
            f.as_slice()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
        };
        let i64_bytes = |m: &[SampleMeta], get: fn(&SampleMeta) -> i64| {
            m.iter()
                .flat_map(|s| get(s).to_le_bytes())
                .collect::<Vec<u8>>()
        };
        let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = vec![
            (
                "query".into(),
                Dtype::F32,
                vec![self.query.rows(), self.query.dim()],
                f32_bytes(&self.query),
            ),
            (
                "gallery".into(),
                Dtype::F32,
                vec![self.gallery.rows(), self.gallery.dim()],
                f32_bytes(&self.gallery),
            ),
        ];
        for (set, meta) in [("query", &self.query_meta), ("gallery", &self.gallery_meta)] {
            let fields: [(&str, MetaField); 3] = [
                ("pids", |s| s.pid),
                ("camids", |s| s.camid),
                ("sceneids", |s| s.sceneid),
            ];
            for (field, get) in fields {
                buffers.push((
                    format!("{set}_{field}"),
                    Dtype::I64,
                    vec![meta.len()],
                    i64_bytes(meta, get),
                ));
            }
        }
        let views = buffers
            .iter()
            .map(|(name, dtype, shape, data)| {
                Ok((name.clone(), TensorView::new(*dtype, shape.clone(), data)?))
            })
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
            .map_err(bad)?;
        let bytes = safetensors::serialize(views, &None).map_err(bad)?;
        next_common::write_atomic(path, &bytes)?;
        Ok(())
    }

    /// Whether query and gallery are the same samples (identical features and metadata), as in
    /// RGBNT201 where the test set is both.
    pub fn query_is_gallery(&self) -> bool {
        self.query == self.gallery && self.query_meta == self.gallery_meta
    }
}

/// Reads one integer field of a sample's metadata.
type MetaField = fn(&SampleMeta) -> i64;

/// Error context: the file being read.
struct Reader {
    path: PathBuf,
}

impl Reader {
    fn error(&self, message: String) -> MetricsError {
        MetricsError::BadFile {
            path: self.path.clone(),
            message,
        }
    }

    fn tensor<'a>(
        &self,
        tensors: &'a SafeTensors<'a>,
        name: &str,
    ) -> Result<TensorView<'a>, MetricsError> {
        tensors.tensor(name).map_err(|_| {
            let mut names: Vec<&String> = tensors.names();
            names.sort();
            self.error(format!(
                "expected a tensor named {name:?}; the file has {names:?}"
            ))
        })
    }

    fn features(&self, tensors: &SafeTensors<'_>, name: &str) -> Result<Features, MetricsError> {
        let view = self.tensor(tensors, name)?;
        let &[rows, dim] = view.shape() else {
            return Err(self.error(format!(
                "tensor {name:?} must be 2-D [rows, dim], found shape {:?}",
                view.shape()
            )));
        };
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|b| {
                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })
                .collect(),
            Dtype::F16 => view
                .data()
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => view
                .data()
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(self.error(format!(
                    "tensor {name:?} must be f32, f64, f16 or bf16, found {other:?}"
                )))
            }
        };
        Features::new(data, rows, dim).map_err(|e| self.error(format!("tensor {name:?}: {e}")))
    }

    fn integers(
        &self,
        view: &TensorView<'_>,
        name: &str,
        rows: usize,
    ) -> Result<Vec<i64>, MetricsError> {
        let shape = view.shape();
        if !(shape == [rows] || shape == [rows, 1]) {
            return Err(self.error(format!(
                "tensor {name:?} must have shape [{rows}], found {shape:?}"
            )));
        }
        let d = view.data();
        let values: Vec<i64> = match view.dtype() {
            Dtype::I64 => d
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                .collect(),
            Dtype::I32 => d
                .chunks_exact(4)
                .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            Dtype::I16 => d
                .chunks_exact(2)
                .map(|b| i64::from(i16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::I8 => d.iter().map(|b| i64::from(*b as i8)).collect(),
            Dtype::U8 => d.iter().map(|b| i64::from(*b)).collect(),
            Dtype::U16 => d
                .chunks_exact(2)
                .map(|b| i64::from(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::U32 => d
                .chunks_exact(4)
                .map(|b| i64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            Dtype::U64 => d
                .chunks_exact(8)
                .map(|b| {
                    i64::try_from(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                        .unwrap_or(i64::MAX)
                })
                .collect(),
            other => {
                return Err(self.error(format!(
                    "tensor {name:?} must hold integers, found {other:?}"
                )))
            }
        };
        Ok(values)
    }

    fn meta(
        &self,
        tensors: &SafeTensors<'_>,
        set: &str,
        rows: usize,
    ) -> Result<Vec<SampleMeta>, MetricsError> {
        let pids_name = format!("{set}_pids");
        let cams_name = format!("{set}_camids");
        let scenes_name = format!("{set}_sceneids");
        let pids = self.integers(&self.tensor(tensors, &pids_name)?, &pids_name, rows)?;
        let cams = self.integers(&self.tensor(tensors, &cams_name)?, &cams_name, rows)?;
        let scenes = match tensors.tensor(&scenes_name) {
            Ok(view) => self.integers(&view, &scenes_name, rows)?,
            Err(_) => vec![NO_SCENE; rows],
        };
        Ok((0..rows)
            .map(|i| SampleMeta::new(pids[i], cams[i], scenes[i]))
            .collect())
    }
}
