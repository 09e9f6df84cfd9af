//! Checkpoint files: a JSON header (training state: epoch, step, seed, sampler position, best
//! score, config) followed by named binary blobs (model record, optimiser record), each with a
//! length and a checksum, written atomically (temp file + rename).

use std::path::Path;

const MAGIC: &[u8; 8] = b"NEXTCKPT";
const VERSION: u32 = 1;

/// Errors while reading or writing a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error(transparent)]
    File(#[from] next_reid::common::FileError),
    /// The file is not a checkpoint of this format, or is damaged.
    #[error("{path}: expected a next-reid checkpoint (NEXTCKPT v{VERSION}): {problem}")]
    Format {
        /// The file concerned.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

/// A checkpoint in memory: the JSON header and the named blobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Training state and metadata.
    pub header: serde_json::Value,
    /// Named binary parts (e.g. `model`, `optimizer`).
    pub blobs: Vec<(String, Vec<u8>)>,
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
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Some(s)
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
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
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let bad = |problem: &str| CheckpointError::Format {
            path: path.display().to_string(),
            problem: problem.to_string(),
        };
        let mut reader = ByteReader { bytes, pos: 0 };
        let truncated = || bad("file is truncated");
        if reader.take(8).ok_or_else(truncated)? != MAGIC {
            return Err(bad("wrong magic bytes"));
        }
        let version = reader.take(4).ok_or_else(truncated)?;
        if u32::from_le_bytes([version[0], version[1], version[2], version[3]]) != VERSION {
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
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        next_reid::common::write_atomic(path, &self.to_bytes())?;
        Ok(())
    }

    /// Read from `path`.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = next_reid::common::read_file(path)?;
        Self::from_bytes(&bytes, path)
    }
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
    }
}
