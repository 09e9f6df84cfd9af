//! Helpers shared by the integration tests: tiny images and real-name replica trees.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The NEXT caption files shipped with the repository.
pub fn captions_dir(dataset: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/next-captions")
        .join(dataset)
}

/// Item names of one caption file.
pub fn caption_items(dataset: &str, file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(captions_dir(dataset).join(file)).unwrap();
    let list: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    list.iter()
        .map(|v| v["item"].as_str().unwrap().to_string())
        .collect()
}

/// Bytes of a tiny JPEG (`w` x `h`, one grey level).
pub fn tiny_jpeg(w: u32, h: u32, level: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([level, level / 2, 255 - level]));
    let mut out = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut out),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    out
}

/// Write `bytes` to `path`, creating folders.
pub fn put(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A tiny JPEG written once in `dir`, to be hard-linked into replica trees (file creation with
/// data is slow on CI disks; links are cheap).
pub fn tiny_jpeg_file(dir: &Path, w: u32, h: u32, level: u8) -> PathBuf {
    let path = dir.join(format!("source_{w}x{h}_{level}.jpg"));
    put(&path, &tiny_jpeg(w, h, level));
    path
}

/// Link `source` under each modality folder of `dir` as `name`.
pub fn put_triplet(dir: &Path, folders: [&str; 3], name: &str, source: &Path) {
    for f in folders {
        let d = dir.join(f);
        std::fs::create_dir_all(&d).unwrap();
        if std::fs::hard_link(source, d.join(name)).is_err() {
            std::fs::copy(source, d.join(name)).unwrap();
        }
    }
}
