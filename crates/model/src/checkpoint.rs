//! The one checkpoint format of next-reid (`NEXTCKPT`): a JSON header followed by named binary
//! blobs, each with a length and a checksum, written atomically.
//!
//! The header is self-describing: `model` holds the resolved [`NextConfig`] (with `num_classes`
//! and `num_cameras`), `clip` the resolved CLIP architecture, `image_size` the input size the
//! weights were trained at (when known); the `model` blob holds the weights. A training run adds
//! its state (epoch, step, optimiser blob, ...) to the same file, so [`NextModel::from_checkpoint`]
//! opens any checkpoint with no dataset and no CLIP folder on disk.

use crate::config::NextConfig;
use crate::model::NextModel;
use crate::ModelError;
use burn::module::{Module, ModuleVisitor, Param};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use next_clip::ClipConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

const MAGIC: &[u8; 8] = b"NEXTCKPT";
const VERSION: u32 = 1;

/// Value of the header's `format` entry.
pub const CHECKPOINT_FORMAT: &str = "next-reid-checkpoint-v2";

/// A checkpoint in memory: the JSON header and the named blobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Model description, training state and metadata.
    pub header: serde_json::Value,
    /// Named binary parts (`model`, and `optimizer` for a training checkpoint).
    pub blobs: Vec<(String, Vec<u8>)>,
}

/// The model description every checkpoint header holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    /// The resolved model configuration (with `num_classes` and `num_cameras`).
    pub model: NextConfig,
    /// The resolved CLIP architecture.
    pub clip: ClipConfig,
    /// Input size `[height, width]` the weights were trained at, when known.
    #[serde(default)]
    pub image_size: Option<[u32; 2]>,
}

/// 64-bit FNV-1a hash (detects damaged blobs before they reach a decoder).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Sequential reader over a byte slice; `None` when the slice is too short.
struct ByteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len())?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn u64(&mut self) -> Option<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Some(u64::from_le_bytes(a))
    }
}

fn recorder() -> BinBytesRecorder<FullPrecisionSettings> {
    BinBytesRecorder::<FullPrecisionSettings>::default()
}

fn format_error(path: &Path, problem: impl Into<String>) -> ModelError {
    ModelError::Checkpoint {
        path: path.to_path_buf(),
        message: format!(
            "expected a next-reid checkpoint (NEXTCKPT v{VERSION}): {}",
            problem.into()
        ),
    }
}

impl Checkpoint {
    /// The blob called `name`, if present.
    pub fn blob(&self, name: &str) -> Option<&[u8]> {
        self.blobs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// Serialise to bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).unwrap_or_default();
        let mut out = Vec::with_capacity(
            64 + header.len() + self.blobs.iter().map(|b| b.1.len() + 32).sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&(self.blobs.len() as u64).to_le_bytes());
        for (name, data) in &self.blobs {
            out.extend_from_slice(&(name.len() as u64).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(data.len() as u64).to_le_bytes());
            out.extend_from_slice(&fnv1a(data).to_le_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    /// Parse bytes; `path` is only used in error messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ModelError> {
        let bad = |problem: &str| format_error(path, problem);
        let mut reader = ByteReader { bytes, pos: 0 };
        let truncated = || bad("file is truncated");
        if reader.take(8).ok_or_else(truncated)? != MAGIC {
            return Err(bad("wrong magic bytes"));
        }
        let mut version = [0u8; 4];
        version.copy_from_slice(reader.take(4).ok_or_else(truncated)?);
        if u32::from_le_bytes(version) != VERSION {
            return Err(bad("unsupported version"));
        }
        let header_len = reader.u64().ok_or_else(truncated)? as usize;
        let header: serde_json::Value =
            serde_json::from_slice(reader.take(header_len).ok_or_else(truncated)?)
                .map_err(|e| bad(&format!("header is not JSON: {e}")))?;
        let count = reader.u64().ok_or_else(truncated)?;
        let mut blobs = Vec::new();
        for _ in 0..count {
            let name_len = reader.u64().ok_or_else(truncated)? as usize;
            let name =
                String::from_utf8_lossy(reader.take(name_len).ok_or_else(truncated)?).into_owned();
            let len = reader.u64().ok_or_else(truncated)? as usize;
            let hash = reader.u64().ok_or_else(truncated)?;
            let data = reader.take(len).ok_or_else(truncated)?.to_vec();
            if fnv1a(&data) != hash {
                return Err(bad(&format!(
                    "blob `{name}` is damaged (checksum mismatch)"
                )));
            }
            blobs.push((name, data));
        }
        Ok(Self { header, blobs })
    }

    /// Write atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        next_common::write_atomic(path, &self.to_bytes())?;
        Ok(())
    }

    /// Read from `path`.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let bytes = next_common::read_file(path)?;
        Self::from_bytes(&bytes, path)
    }

    /// The model description of the header (`path` names the file in errors).
    pub fn model_header(&self, path: &Path) -> Result<ModelHeader, ModelError> {
        if self.header.get("format").and_then(|f| f.as_str()) != Some(CHECKPOINT_FORMAT) {
            return Err(format_error(
                path,
                format!("header `format` is not \"{CHECKPOINT_FORMAT}\""),
            ));
        }
        serde_json::from_value(self.header.clone())
            .map_err(|e| format_error(path, format!("header has no model description: {e}")))
    }

    /// Load the `model` blob into `model`, after checking that `model` has the architecture
    /// the header describes (a mismatch names the checkpoint, the key and both values).
    pub fn load_weights<B: Backend>(
        &self,
        model: NextModel<B>,
        path: &Path,
        device: &B::Device,
    ) -> Result<NextModel<B>, ModelError> {
        let header = self.model_header(path)?;
        check_architecture(path, &header, &model.config, &model.clip_architecture)?;
        let bytes = self
            .blob("model")
            .ok_or_else(|| format_error(path, "no `model` part"))?;
        // Burn's record decoder panics on some byte layouts of another module structure (e.g. a
        // record written by an older next-reid): turn that into an error naming the file too.
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Recorder::<B>::load::<<NextModel<B> as Module<B>>::Record>(
                &recorder(),
                bytes.to_vec(),
                device,
            )
        }));
        let not_a_record = |e: String| ModelError::Checkpoint {
            path: path.to_path_buf(),
            message: format!(
                "the `model` part is not a record of this model's structure (written by another \
                 next-reid version or damaged): {e}"
            ),
        };
        let record = match decoded {
            Ok(result) => result.map_err(|e| not_a_record(e.to_string()))?,
            Err(_) => return Err(not_a_record("the record decoder failed".into())),
        };
        Ok(model.load_record(record))
    }
}

/// Every leaf of a JSON value as (dotted key, value text), in order.
fn leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&key, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The first key whose value differs between `saved` and `wanted` (keys of either side).
fn first_difference(
    prefix: &str,
    saved: &serde_json::Value,
    wanted: &serde_json::Value,
) -> Option<(String, String, String)> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    leaves(prefix, saved, &mut a);
    leaves(prefix, wanted, &mut b);
    let value = |list: &[(String, String)], key: &str| {
        list.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "nothing".into())
    };
    a.iter()
        .chain(&b)
        .map(|(k, _)| k)
        .find(|k| value(&a, k) != value(&b, k))
        .map(|k| (k.clone(), value(&a, k), value(&b, k)))
}

/// Model keys that change no weight shape or module: never a mismatch.
const RUNTIME_KEYS: [&str; 6] = [
    "clip",
    "precision",
    "feature",
    "sentence_keep_prob",
    "loss",
    "camera_coef",
];

/// Check that a model of config `config` (CLIP architecture `clip`) has the weights of the
/// checkpoint `path` described by `header`: same CLIP architecture, text encoder, experts,
/// aggregation, classifier and camera table. The error names the checkpoint, the config key
/// and both values.
pub fn check_architecture(
    path: &Path,
    header: &ModelHeader,
    config: &NextConfig,
    clip: &ClipConfig,
) -> Result<(), ModelError> {
    let mismatch = |key: String, saved: String, wanted: String| ModelError::Mismatch {
        checkpoint: path.to_path_buf(),
        key,
        checkpoint_value: saved,
        config_value: wanted,
    };
    if let Some((key, saved, wanted)) = first_difference("", &json(&header.clip), &json(clip)) {
        return Err(mismatch(
            format!("model.clip (CLIP architecture `{key}`)"),
            saved,
            wanted,
        ));
    }
    if header.model.builds_text_encoder() != config.builds_text_encoder() {
        return Err(mismatch(
            "model.text (text encoder present)".into(),
            header.model.builds_text_encoder().to_string(),
            config.builds_text_encoder().to_string(),
        ));
    }
    let strip = |c: &NextConfig| {
        let mut v = json(c);
        if let Some(map) = v.as_object_mut() {
            for key in RUNTIME_KEYS.iter().chain(&["text"]) {
                map.remove(*key);
            }
            // The TMSE mask-gradient path builds no weights (an older checkpoint has none).
            if let Some(tmse) = map.get_mut("tmse").and_then(|t| t.as_object_mut()) {
                tmse.remove("mask_gradient");
            }
            // UMM off builds none of its modules; on, its fill and loss switch at run time.
            if let Some(umm) = map.get_mut("umm").and_then(|u| u.as_object_mut()) {
                if c.umm.enabled {
                    umm.remove("fill");
                    umm.remove("rec");
                } else {
                    umm.retain(|k, _| k == "enabled");
                }
            }
            // The alignment loss and a sketch switch without UMM build no weights.
            if let Some(query) = map.get_mut("query").and_then(|q| q.as_object_mut()) {
                query.remove("align");
                if !c.umm.enabled {
                    query.remove("sketch");
                }
                if !c.query.text_head {
                    query.remove("text_hidden");
                }
            }
        }
        v
    };
    if let Some((key, saved, wanted)) =
        first_difference("model", &strip(&header.model), &strip(config))
    {
        return Err(mismatch(key, saved, wanted));
    }
    Ok(())
}

/// A serde value as JSON (`null` when it cannot be serialised).
fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

impl<B: Backend> NextModel<B> {
    /// The model's description for a checkpoint header (`image_size` when known).
    pub fn model_header(&self, image_size: Option<[u32; 2]>) -> ModelHeader {
        ModelHeader {
            model: self.config.clone(),
            clip: self.clip_architecture.clone(),
            image_size,
        }
    }

    /// A checkpoint of this model: the header (format and model description) and the
    /// `model` blob. A trainer adds its state to the header and an `optimizer` blob.
    pub fn to_checkpoint(&self, image_size: Option<[u32; 2]>) -> Result<Checkpoint, ModelError> {
        let mut header = serde_json::to_value(self.model_header(image_size)).map_err(|e| {
            ModelError::Input(format!("describing the model for a checkpoint: {e}"))
        })?;
        header["format"] = serde_json::Value::String(CHECKPOINT_FORMAT.into());
        // A freshly built model's parameters are initialised lazily: materialise them in `self`
        // first, or the clone recorded below would draw its own (different) initial values.
        self.materialize();
        let weights = Recorder::<B>::record(&recorder(), self.clone().into_record(), ())
            .map_err(|e| ModelError::Input(format!("serialising the model: {e}")))?;
        Ok(Checkpoint {
            header,
            blobs: vec![("model".into(), weights)],
        })
    }

    /// Initialise every lazily initialised parameter now: they draw from the device RNG at
    /// their first use otherwise (whatever the RNG state is then).
    pub fn materialize(&self) {
        self.visit(&mut Materialize);
    }

    /// Save the model as a checkpoint (no training state) atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        self.to_checkpoint(None)?.save(path)
    }

    /// Open any next-reid checkpoint (written by [`NextModel::save`] or by training): the model
    /// is rebuilt from the header alone (no dataset, no CLIP folder needed) and its weights
    /// loaded. With a CLIP folder's tokenizer still on disk it is used, else the built-in one.
    pub fn from_checkpoint(path: impl AsRef<Path>, device: &B::Device) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let checkpoint = Checkpoint::load(path)?;
        let header = checkpoint.model_header(path)?;
        let model = header.model.init_with_clip::<B>(&header.clip, device)?;
        checkpoint.load_weights(model, path, device)
    }
}

/// Reads every float parameter once, which initialises lazily initialised ones in place.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// The input size of a checkpoint's header, if it records one.
pub fn checkpoint_image_size(path: &Path) -> Result<Option<[u32; 2]>, ModelError> {
    Ok(Checkpoint::load(path)?.model_header(path)?.image_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_detection() {
        let ck = Checkpoint {
            header: serde_json::json!({"epoch": 3, "seed": 1}),
            blobs: vec![
                ("model".into(), vec![1, 2, 3, 4]),
                ("optimizer".into(), vec![9; 100]),
            ],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.ckpt");
        ck.save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back, ck);
        assert_eq!(back.blob("model"), Some(&[1u8, 2, 3, 4][..]));

        let mut bytes = ck.to_bytes();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        let err = Checkpoint::from_bytes(&bytes, &path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("damaged") && err.contains("last.ckpt"),
            "{err}"
        );
        let err = Checkpoint::from_bytes(&bytes[..20], &path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
        assert!(Checkpoint::from_bytes(b"not a checkpoint at all", &path).is_err());
        let err = ck.model_header(&path).unwrap_err().to_string();
        assert!(err.contains("last.ckpt") && err.contains("format"), "{err}");
    }
}
