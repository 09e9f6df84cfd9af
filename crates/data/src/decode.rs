//! Image decoding: files to 8-bit grey or RGB pixels.
//!
//! JPEG files go straight to `zune-jpeg` (the decoder `image` itself uses, with the options
//! `image` sets), which skips format guessing and an input copy; grey images stay one channel
//! instead of being expanded to RGB (the transforms read the grey value for all three channels,
//! which is exactly what `image`'s grey-to-RGB conversion produces). Other formats, and JPEGs in
//! rare colour spaces (CMYK, YCCK, with alpha), go through `image` as before.

use crate::error::{DataError, Result};
use crate::scan::TripletImages;
use image::{DynamicImage, GrayImage, RgbImage};
use std::path::Path;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// A decoded 8-bit image: grey (one channel, standing for R = G = B) or RGB (three interleaved
/// channels).
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// One channel per pixel (grey NIR/TIR files); every RGB channel equals it.
    Grey(GrayImage),
    /// Three interleaved channels per pixel.
    Rgb(RgbImage),
}

impl Pixels {
    /// Width and height in pixels.
    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            Pixels::Grey(img) => img.dimensions(),
            Pixels::Rgb(img) => img.dimensions(),
        }
    }

    /// The image as RGB (a grey image has its value replicated to the three channels).
    pub fn into_rgb(self) -> RgbImage {
        match self {
            Pixels::Rgb(img) => img,
            Pixels::Grey(img) => DynamicImage::ImageLuma8(img).into_rgb8(),
        }
    }

    /// A copy of the columns `x..x + width` over all rows.
    fn crop_columns(&self, x: u32, width: u32) -> Pixels {
        let h = self.dimensions().1;
        match self {
            Pixels::Grey(img) => {
                Pixels::Grey(image::imageops::crop_imm(img, x, 0, width, h).to_image())
            }
            Pixels::Rgb(img) => {
                Pixels::Rgb(image::imageops::crop_imm(img, x, 0, width, h).to_image())
            }
        }
    }
}

fn corrupt(path: &Path, reason: String) -> DataError {
    DataError::CorruptImage {
        path: path.to_path_buf(),
        reason,
    }
}

/// Decode an image file to 8-bit grey or RGB pixels (any other colour type becomes RGB).
pub fn decode_pixels(path: &Path) -> Result<Pixels> {
    let bytes = next_common::read_file(path)?;
    if bytes.starts_with(&[0xFF, 0xD8]) {
        // The JPEG decoder fills missing data silently, so a cut-off file is caught here: a
        // complete JPEG ends with the end-of-image marker (a little trailing padding is tolerated).
        let tail = &bytes[bytes.len().saturating_sub(64)..];
        if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
            return Err(corrupt(
                path,
                "truncated JPEG: no end-of-image marker".into(),
            ));
        }
        if let Some(decoded) = decode_jpeg(&bytes).map_err(|reason| corrupt(path, reason))? {
            return Ok(decoded);
        }
    }
    let img = image::load_from_memory(&bytes).map_err(|e| corrupt(path, e.to_string()))?;
    Ok(match img {
        DynamicImage::ImageLuma8(grey) => Pixels::Grey(grey),
        other => Pixels::Rgb(other.into_rgb8()),
    })
}

/// Decode a JPEG held in memory with the decoder options of `image`; `Ok(None)` for a colour
/// space left to `image` (anything but grey, YCbCr and RGB).
fn decode_jpeg(bytes: &[u8]) -> std::result::Result<Option<Pixels>, String> {
    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(|e| e.to_string())?;
    let (w, h) = decoder
        .dimensions()
        .ok_or("no image dimensions after the JPEG headers")?;
    let out_space = match decoder.input_colorspace() {
        Some(ColorSpace::Luma) => ColorSpace::Luma,
        Some(ColorSpace::YCbCr | ColorSpace::RGB) => ColorSpace::RGB,
        _ => return Ok(None),
    };
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(out_space));
    let raw = decoder.decode().map_err(|e| e.to_string())?;
    let (w, h) = (w as u32, h as u32);
    let len = raw.len();
    let wrong_size = || format!("decoded {len} bytes for a {w}x{h} image");
    Ok(Some(match out_space {
        ColorSpace::Luma => Pixels::Grey(GrayImage::from_raw(w, h, raw).ok_or_else(wrong_size)?),
        _ => Pixels::Rgb(RgbImage::from_raw(w, h, raw).ok_or_else(wrong_size)?),
    }))
}

/// Decode an image file to 8-bit RGB (grey images are replicated to three channels).
pub fn decode_image(path: &Path) -> Result<RgbImage> {
    decode_pixels(path).map(Pixels::into_rgb)
}

/// Decode the three modality images of a sample, keeping grey images one channel; a strip is cut
/// into three equal-width crops.
pub fn load_triplet_pixels(images: &TripletImages) -> Result<[Pixels; 3]> {
    match images {
        TripletImages::Separate(paths) => Ok([
            decode_pixels(&paths[0])?,
            decode_pixels(&paths[1])?,
            decode_pixels(&paths[2])?,
        ]),
        TripletImages::Strip(path) => {
            let strip = decode_pixels(path)?;
            let (w, h) = strip.dimensions();
            if w % 3 != 0 || w == 0 {
                return Err(DataError::BadImageSize {
                    path: path.clone(),
                    expected: "a width divisible by 3 (RGB|NIR|TIR side by side, e.g. 768x128)"
                        .into(),
                    width: w,
                    height: h,
                });
            }
            let third = w / 3;
            Ok([0, 1, 2].map(|i| strip.crop_columns(i * third, third)))
        }
    }
}

/// Decode the three modality images of a sample as RGB; a strip is cut into three equal-width
/// crops.
pub fn load_triplet(images: &TripletImages) -> Result<[RgbImage; 3]> {
    Ok(load_triplet_pixels(images)?.map(Pixels::into_rgb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageFormat;

    /// Encode `img` as `format` into `dir/name` and return the path.
    fn write(
        dir: &Path,
        name: &str,
        img: &DynamicImage,
        format: ImageFormat,
    ) -> std::path::PathBuf {
        let path = dir.join(name);
        img.save_with_format(&path, format).unwrap();
        path
    }

    #[test]
    fn direct_jpeg_decoding_matches_image_crate_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let rgb = RgbImage::from_fn(40, 24, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 10) as u8, ((x * y) % 256) as u8])
        });
        let grey = GrayImage::from_fn(40, 24, |x, y| image::Luma([((x * 5 + y * 3) % 256) as u8]));
        let cases = [
            (
                "rgb.jpg",
                DynamicImage::ImageRgb8(rgb.clone()),
                ImageFormat::Jpeg,
                false,
            ),
            (
                "grey.jpg",
                DynamicImage::ImageLuma8(grey.clone()),
                ImageFormat::Jpeg,
                true,
            ),
            (
                "grey.png",
                DynamicImage::ImageLuma8(grey),
                ImageFormat::Png,
                true,
            ),
            (
                "rgb.png",
                DynamicImage::ImageRgb8(rgb),
                ImageFormat::Png,
                false,
            ),
        ];
        for (name, img, format, is_grey) in cases {
            let path = write(dir.path(), name, &img, format);
            let reference = image::load_from_memory(&std::fs::read(&path).unwrap())
                .unwrap()
                .to_rgb8();
            let pixels = decode_pixels(&path).unwrap();
            assert_eq!(matches!(pixels, Pixels::Grey(_)), is_grey, "{name}");
            assert_eq!(pixels.into_rgb(), reference, "{name}");
            assert_eq!(decode_image(&path).unwrap(), reference, "{name}");
        }
    }

    #[test]
    fn bmp_and_tiff_decode_to_the_same_pixels_as_png() {
        let dir = tempfile::tempdir().unwrap();
        let rgb = RgbImage::from_fn(20, 12, |x, y| {
            image::Rgb([(x * 12) as u8, (y * 20) as u8, ((x + y) * 7) as u8])
        });
        let img = DynamicImage::ImageRgb8(rgb.clone());
        for (name, format) in [("a.bmp", ImageFormat::Bmp), ("a.tif", ImageFormat::Tiff)] {
            let path = write(dir.path(), name, &img, format);
            assert_eq!(decode_image(&path).unwrap(), rgb, "{name}");
        }
    }

    #[test]
    fn undecodable_jpeg_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jpg");
        // JPEG start and end markers around garbage: passes the truncation check, fails to decode.
        std::fs::write(&path, [0xFF, 0xD8, 0xFF, 0x00, 0x12, 0x34, 0xFF, 0xD9]).unwrap();
        let err = decode_pixels(&path).unwrap_err().to_string();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("corrupt image"),
            "{err}"
        );
    }
}
