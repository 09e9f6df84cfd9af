//! NumPy `.npy` (format v1.0) writer for `next embed --format npy`.

use crate::RunError;
use next_reid::train::Extracted;
use std::path::{Path, PathBuf};

/// Encode a row-major float32 matrix `[rows, cols]` as NPY v1.0 bytes (little-endian `<f4`,
/// header padded with spaces and a newline to a multiple of 64 bytes).
pub fn npy_f32_bytes(data: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // magic (6) + version (2) + header length (2) + dict + padding + '\n'
    let unpadded = 10 + dict.len() + 1;
    let padding = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + padding + 1;
    let mut out = Vec::with_capacity(10 + header_len + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY");
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padding));
    out.push(b'\n');
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Write `<out>.npy` with the query rows then the gallery rows (only the query rows when
/// `query_only`), and `<out>.keys.json` with the ids. Returns both paths.
pub fn write_features_npy(
    out: &Path,
    query: &Extracted,
    gallery: &Extracted,
    query_only: bool,
) -> Result<(PathBuf, PathBuf), RunError> {
    let npy_path = out.with_extension("npy");
    let dim = query.features.dim();
    let mut data = Vec::new();
    let mut rows = 0;
    let parts: Vec<&Extracted> = if query_only {
        vec![query]
    } else {
        vec![query, gallery]
    };
    for part in &parts {
        for r in 0..part.features.rows() {
            data.extend_from_slice(part.features.row(r));
        }
        rows += part.features.rows();
    }
    next_reid::common::write_atomic(&npy_path, &npy_f32_bytes(&data, rows, dim))?;
    let keys_path = out.with_extension("keys.json");
    let keys = if query_only {
        serde_json::json!({"rows": query.keys})
    } else {
        serde_json::json!({"query": query.keys, "gallery": gallery.keys, "rows": "query then gallery"})
    };
    let text = serde_json::to_string_pretty(&keys).map_err(|e| RunError::Json {
        what: "feature keys".into(),
        message: e.to_string(),
    })?;
    next_reid::common::write_atomic(&keys_path, text.as_bytes())?;
    Ok((npy_path, keys_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_to_64_and_data_follows() {
        let bytes = npy_f32_bytes(&[1.0, -2.5, 3.0, 4.0, 5.0, 6.0], 2, 3);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(bytes[10 + header_len - 1], b'\n');
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'shape': (2, 3)"));
        let second = f32::from_le_bytes(
            bytes[10 + header_len + 4..10 + header_len + 8]
                .try_into()
                .unwrap(),
        );
        assert_eq!(second, -2.5);
        assert_eq!(bytes.len(), 10 + header_len + 24);
    }
}
