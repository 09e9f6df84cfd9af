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

    /// The image as one grey channel (an RGB image is converted to its luminance).
    pub fn into_grey(self) -> Pixels {
        Pixels::Grey(self.into_luma())
    }

    /// The grey image (an RGB image converted with the luma weights).
    pub fn into_luma(self) -> GrayImage {
        match self {
            Pixels::Rgb(img) => DynamicImage::ImageRgb8(img).into_luma8(),
            Pixels::Grey(img) => img,
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

/// Size limits on image files, checked from the headers before any pixel memory is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest accepted width and height, in pixels.
    pub max_side: u32,
}

impl ImageLimits {
    /// The default limit: 8192 pixels a side (a 8192x8192 RGB image needs 192 MiB).
    pub const DEFAULT: ImageLimits = ImageLimits { max_side: 8192 };

    /// Error unless `width` x `height` is within the limits.
    fn check(&self, width: u32, height: u32) -> std::result::Result<(), String> {
        if width == 0 || height == 0 {
            return Err(format!("the header says {width}x{height} pixels"));
        }
        if width > self.max_side || height > self.max_side {
            return Err(format!(
                "the header says {width}x{height} pixels, more than the limit of {} a side \
                 (data.max_image_side)",
                self.max_side
            ));
        }
        Ok(())
    }

    /// The limits of the `image` crate's decoders: these sides and the bytes of an RGBA image.
    fn image_limits(&self) -> image::Limits {
        let side = u64::from(self.max_side);
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(self.max_side);
        limits.max_image_height = Some(self.max_side);
        limits.max_alloc = Some((side * side * 4).max(1 << 20));
        limits
    }
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What an image header says, read without decoding the pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// The file format, from the first bytes (not the extension).
    pub format: image::ImageFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

fn corrupt(path: &Path, reason: String) -> DataError {
    DataError::CorruptImage {
        path: path.to_path_buf(),
        reason,
    }
}

/// Whether `bytes` start like a JPEG file.
fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8])
}

/// Error for a JPEG that lacks its end-of-image marker. The JPEG decoder fills missing data
/// silently, so a cut-off file is caught here (a little trailing padding is tolerated).
fn check_jpeg_complete(bytes: &[u8]) -> std::result::Result<(), String> {
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    if tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
        Ok(())
    } else {
        Err("truncated JPEG: no end-of-image marker".into())
    }
}

/// Read the format and size of an image held in memory without decoding its pixels, and check
/// them against `limits`; `path` names the file in errors.
pub fn read_header(bytes: &[u8], path: &Path, limits: &ImageLimits) -> Result<ImageHeader> {
    let format = image::guess_format(bytes).map_err(|_| {
        corrupt(
            path,
            "the first bytes are not those of a JPEG, PNG, BMP or TIFF file".into(),
        )
    })?;
    let (width, height) = if format == image::ImageFormat::Jpeg {
        check_jpeg_complete(bytes).map_err(|reason| corrupt(path, reason))?;
        // Headers only (no pixel memory): read the claimed size, then check it with our message.
        let unlimited = ImageLimits { max_side: u32::MAX };
        let mut decoder =
            JpegDecoder::new_with_options(ZCursor::new(bytes), jpeg_options(&unlimited));
        decoder
            .decode_headers()
            .map_err(|e| corrupt(path, e.to_string()))?;
        let (w, h) = decoder
            .dimensions()
            .ok_or_else(|| corrupt(path, "no image dimensions after the JPEG headers".into()))?;
        (
            u32::try_from(w).unwrap_or(u32::MAX),
            u32::try_from(h).unwrap_or(u32::MAX),
        )
    } else {
        let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
        reader.limits(limits.image_limits());
        reader
            .into_dimensions()
            .map_err(|e| corrupt(path, e.to_string()))?
    };
    limits
        .check(width, height)
        .map_err(|reason| corrupt(path, reason))?;
    Ok(ImageHeader {
        format,
        width,
        height,
    })
}

/// Read the header of an image file (see [`read_header`]); errors name the file.
pub fn read_header_file(path: &Path, limits: &ImageLimits) -> Result<ImageHeader> {
    let bytes = next_common::read_file(path)?;
    read_header(&bytes, path, limits)
}

/// Decode an image file to 8-bit grey or RGB pixels (any other colour type becomes RGB), within
/// the default [`ImageLimits`].
pub fn decode_pixels(path: &Path) -> Result<Pixels> {
    decode_pixels_limited(path, &ImageLimits::DEFAULT)
}

/// Decode an image file to 8-bit grey or RGB pixels within `limits`; errors name the file.
pub fn decode_pixels_limited(path: &Path, limits: &ImageLimits) -> Result<Pixels> {
    let bytes = next_common::read_file(path)?;
    decode_bytes(&bytes, path, limits)
}

/// Decode an image held in memory to 8-bit grey or RGB pixels. The header is checked against
/// `limits` before any pixel memory is allocated; `path` names the source in errors.
pub fn decode_bytes(bytes: &[u8], path: &Path, limits: &ImageLimits) -> Result<Pixels> {
    read_header(bytes, path, limits)?;
    // A decoder that panics on a malformed file (third-party code) gives an error naming the
    // file, not a dead loader thread.
    std::panic::catch_unwind(|| decode_checked(bytes, path, limits)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(corrupt(path, format!("the decoder failed: {message}")))
    })
}

/// [`decode_bytes`] after the header check.
fn decode_checked(bytes: &[u8], path: &Path, limits: &ImageLimits) -> Result<Pixels> {
    if is_jpeg(bytes) {
        if let Some(decoded) = decode_jpeg(bytes, limits).map_err(|reason| corrupt(path, reason))? {
            return Ok(decoded);
        }
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| corrupt(path, e.to_string()))?;
    reader.limits(limits.image_limits());
    let img = reader.decode().map_err(|e| corrupt(path, e.to_string()))?;
    Ok(match img {
        DynamicImage::ImageLuma8(grey) => Pixels::Grey(grey),
        other => Pixels::Rgb(other.into_rgb8()),
    })
}

/// The decoder options `image` uses for JPEG, with the size limits applied.
fn jpeg_options(limits: &ImageLimits) -> DecoderOptions {
    let side = limits.max_side as usize;
    DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(side)
        .set_max_height(side)
}

/// Decode a JPEG held in memory with the decoder options of `image`; `Ok(None)` for a colour
/// space left to `image` (anything but grey, YCbCr and RGB).
fn decode_jpeg(bytes: &[u8], limits: &ImageLimits) -> std::result::Result<Option<Pixels>, String> {
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), jpeg_options(limits));
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

/// Decode the spectra a sample has (`None` where absent), keeping grey images one channel; a
/// strip is cut into three equal-width crops.
pub fn load_present_pixels(images: &TripletImages) -> Result<[Option<Pixels>; 3]> {
    match images {
        TripletImages::Partial(paths) => {
            let mut out = [None, None, None];
            for (slot, path) in out.iter_mut().zip(paths) {
                if let Some(path) = path {
                    *slot = Some(decode_pixels(path)?);
                }
            }
            Ok(out)
        }
        images => Ok(load_triplet_pixels(images)?.map(Some)),
    }
}

/// Decode the three modality images of a sample, keeping grey images one channel; a strip is cut
/// into three equal-width crops. An absent spectrum of a partial sample is black, of the size of
/// the first present one; a sample without any spectrum is an error.
pub fn load_triplet_pixels(images: &TripletImages) -> Result<[Pixels; 3]> {
    match images {
        TripletImages::Separate(paths) => Ok([
            decode_pixels(&paths[0])?,
            decode_pixels(&paths[1])?,
            decode_pixels(&paths[2])?,
        ]),
        TripletImages::Partial(_) => {
            let present = load_present_pixels(images)?;
            let Some((w, h)) = present.iter().flatten().next().map(Pixels::dimensions) else {
                return Err(DataError::Setting(
                    "a sample without RGB, NIR or TIR image (a sketch or text query) has no \
                     spectra to load"
                        .into(),
                ));
            };
            Ok(present.map(|p| p.unwrap_or_else(|| Pixels::Grey(GrayImage::new(w, h)))))
        }
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
