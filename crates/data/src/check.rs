//! The image check run when a dataset opens: the header of every image file is read (format,
//! size within the configured limit, JPEG completeness) and every bad file is reported at once,
//! before training starts instead of at the first evaluation.

use crate::dataset::{SketchImage, TripletRecord};
use crate::decode::{read_header_file, ImageLimits};
use crate::error::{DataError, Result};
use crate::scan::TripletImages;
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Check the header of every image of `records` (each file once); the error lists every bad
/// file with its reason.
pub fn check_image_files<'a>(
    records: impl IntoIterator<Item = &'a TripletRecord>,
    limits: &ImageLimits,
) -> Result<()> {
    let mut files: BTreeSet<(&Path, bool)> = BTreeSet::new();
    for record in records {
        match &record.images {
            TripletImages::Separate(paths) => {
                files.extend(paths.iter().map(|p| (p.as_path(), false)));
            }
            TripletImages::Strip(path) => {
                files.insert((path.as_path(), true));
            }
            TripletImages::Partial(paths) => {
                files.extend(paths.iter().flatten().map(|p| (p.as_path(), false)));
            }
        }
        if let Some(SketchImage::File(path)) = &record.sketch {
            files.insert((path.as_path(), false));
        }
    }
    let checked = files.len();
    let bad: Vec<(PathBuf, String)> = files
        .into_par_iter()
        .filter_map(|(path, strip)| check_one(path, strip, limits).err())
        .map(|e| (bad_path(&e), e.to_string()))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(DataError::BadImages { checked, bad })
    }
}

/// The header check of one file; a strip's width must split into three modalities.
fn check_one(path: &Path, strip: bool, limits: &ImageLimits) -> Result<()> {
    let header = read_header_file(path, limits)?;
    if strip && !header.width.is_multiple_of(3) {
        return Err(DataError::BadImageSize {
            path: path.to_path_buf(),
            expected: "a width divisible by 3 (RGB|NIR|TIR side by side, e.g. 768x128)".into(),
            width: header.width,
            height: header.height,
        });
    }
    Ok(())
}

/// The file an image error is about.
fn bad_path(error: &DataError) -> PathBuf {
    match error {
        DataError::File(e) => e.path.clone(),
        DataError::CorruptImage { path, .. } | DataError::BadImageSize { path, .. } => path.clone(),
        _ => PathBuf::new(),
    }
}
