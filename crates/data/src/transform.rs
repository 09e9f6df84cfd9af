//! Image decoding and the train/test transforms of the reference recipe, on raw `f32` buffers
//! laid out channel-first (`[3, H, W]`), ready to be packed into a Burn tensor.

use crate::config::{AugmentSync, DatasetConfig, Normalization};
use crate::error::{DataError, Result};
use crate::scan::TripletImages;
use image::imageops::FilterType;
use image::RgbImage;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

/// Zero padding added on each side before the random crop (reference: 10).
pub const PAD: u32 = 10;

/// Decode an image file to 8-bit RGB (grey images are replicated to three channels).
pub fn decode_image(path: &Path) -> Result<RgbImage> {
    let bytes = next_common::read_file(path)?;
    // The JPEG decoder fills missing data silently, so a cut-off file is caught here: a complete
    // JPEG ends with the end-of-image marker (a little trailing padding is tolerated).
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let tail = &bytes[bytes.len().saturating_sub(64)..];
        if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
            return Err(DataError::CorruptImage {
                path: path.to_path_buf(),
                reason: "truncated JPEG: no end-of-image marker".into(),
            });
        }
    }
    let img = image::load_from_memory(&bytes).map_err(|e| DataError::CorruptImage {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(img.to_rgb8())
}

/// Decode the three modality images of a sample; a strip is cut into three equal-width crops.
pub fn load_triplet(images: &TripletImages) -> Result<[RgbImage; 3]> {
    match images {
        TripletImages::Separate(paths) => Ok([
            decode_image(&paths[0])?,
            decode_image(&paths[1])?,
            decode_image(&paths[2])?,
        ]),
        TripletImages::Strip(path) => {
            let strip = decode_image(path)?;
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
            Ok([0, 1, 2]
                .map(|i| image::imageops::crop_imm(&strip, i * third, 0, third, h).to_image()))
        }
    }
}

/// Settings of the train and test transforms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransformConfig {
    /// Output `[height, width]`.
    pub size: [u32; 2],
    /// Normalisation after scaling to [0, 1].
    pub normalization: Normalization,
    /// Shared or independent random draws per modality.
    pub sync: AugmentSync,
    /// Apply random erasing (p 0.5) in the train transform.
    pub random_erasing: bool,
}

impl TransformConfig {
    /// The transform settings of a dataset configuration.
    pub fn from_dataset(cfg: &DatasetConfig) -> Self {
        Self {
            size: cfg.size(),
            normalization: cfg.normalization,
            sync: cfg.augment_sync,
            random_erasing: cfg.random_erasing,
        }
    }

    /// Number of `f32` values of one transformed modality image (`3 * H * W`).
    pub fn image_len(&self) -> usize {
        3 * self.size[0] as usize * self.size[1] as usize
    }

    fn lut(&self) -> [[f32; 256]; 3] {
        let (mean, std) = self.normalization.mean_std();
        let mut lut = [[0.0; 256]; 3];
        for c in 0..3 {
            for (v, slot) in lut[c].iter_mut().enumerate() {
                *slot = (v as f32 / 255.0 - mean[c]) / std[c];
            }
        }
        lut
    }
}

fn resized(img: &RgbImage, size: [u32; 2], filter: FilterType) -> std::borrow::Cow<'_, RgbImage> {
    let [h, w] = size;
    if img.dimensions() == (w, h) {
        std::borrow::Cow::Borrowed(img)
    } else {
        std::borrow::Cow::Owned(image::imageops::resize(img, w, h, filter))
    }
}

/// Test transform: bilinear resize and normalise into `out` (`[3, H, W]`).
pub fn test_transform(img: &RgbImage, cfg: &TransformConfig, out: &mut [f32]) {
    let img = resized(img, cfg.size, FilterType::Triangle);
    let lut = cfg.lut();
    let plane = (cfg.size[0] * cfg.size[1]) as usize;
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = lut[c][px.0[c] as usize];
        }
    }
}

/// The random draws of one train transform.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Draws {
    flip: bool,
    crop_y: u32,
    crop_x: u32,
}

/// Train transform: bicubic resize, flip (p 0.5), pad 10, random crop, normalise, random erasing.
/// All randomness comes from `rng`.
pub fn train_transform(img: &RgbImage, cfg: &TransformConfig, rng: &mut SmallRng, out: &mut [f32]) {
    let [h, w] = cfg.size;
    let img = resized(img, cfg.size, FilterType::CatmullRom);
    let draws = Draws {
        flip: rng.random::<f32>() < 0.5,
        crop_y: rng.random_range(0..=2 * PAD),
        crop_x: rng.random_range(0..=2 * PAD),
    };
    let lut = cfg.lut();
    let (w, h, pad) = (w as usize, h as usize, PAD as usize);
    let plane = h * w;
    let raw = img.as_raw();
    // Output columns whose padded source column lies inside the image.
    let (cy, cx) = (draws.crop_y as usize, draws.crop_x as usize);
    let x0 = pad.saturating_sub(cx).min(w);
    let x1 = (w + pad).saturating_sub(cx).min(w).max(x0);
    for (c, dst) in out[..3 * plane].chunks_exact_mut(plane).enumerate() {
        let table = &lut[c];
        let fill = table[0];
        for (y, row) in dst.chunks_exact_mut(w).enumerate() {
            let sy = y + cy;
            if sy < pad || sy >= h + pad {
                row.fill(fill);
                continue;
            }
            let src = &raw[(sy - pad) * w * 3..(sy - pad + 1) * w * 3];
            row[..x0].fill(fill);
            row[x1..].fill(fill);
            // Padded column of output x is x + cx - pad; flipped it reads w - 1 - that.
            let first = x0 + cx - pad;
            let count = x1 - x0;
            if draws.flip {
                let pixels = src.chunks_exact(3).rev().skip(first).take(count);
                for (o, px) in row[x0..x1].iter_mut().zip(pixels) {
                    *o = table[px[c] as usize];
                }
            } else {
                let pixels = src.chunks_exact(3).skip(first).take(count);
                for (o, px) in row[x0..x1].iter_mut().zip(pixels) {
                    *o = table[px[c] as usize];
                }
            }
        }
    }
    if cfg.random_erasing {
        random_erasing(out, h, w, rng);
    }
}

/// Fill `values` with standard-normal draws (ziggurat sampler).
fn fill_normal(values: &mut [f32], rng: &mut SmallRng) {
    for v in values {
        *v = rng.sample(rand_distr::StandardNormal);
    }
}

/// Random erasing as in the reference: p 0.5, area U(0.02, 1/3), aspect log-uniform in (0.3, 1/0.3),
/// up to 10 tries, the rectangle filled with N(0, 1) noise on every channel.
pub fn random_erasing(out: &mut [f32], h: usize, w: usize, rng: &mut SmallRng) {
    if rng.random::<f32>() >= 0.5 {
        return;
    }
    let area = (h * w) as f32;
    let (lo, hi) = (0.3f32.ln(), (1.0f32 / 0.3).ln());
    for _ in 0..10 {
        let target = area * rng.random_range(0.02f32..1.0 / 3.0);
        let aspect = rng.random_range(lo..hi).exp();
        let eh = (target * aspect).sqrt().round() as usize;
        let ew = (target / aspect).sqrt().round() as usize;
        if eh == 0 || ew == 0 || eh >= h || ew >= w {
            continue;
        }
        let top = rng.random_range(0..=h - eh);
        let left = rng.random_range(0..=w - ew);
        for c in 0..3 {
            for y in top..top + eh {
                let start = c * h * w + y * w + left;
                fill_normal(&mut out[start..start + ew], rng);
            }
        }
        return;
    }
}

/// A 64-bit mix of several words (splitmix64 steps), for per-sample seeds independent of threads.
pub fn mix_seed(words: &[u64]) -> u64 {
    let mut z: u64 = 0x9E37_79B9_7F4A_7C15;
    for &w in words {
        z = z.wrapping_add(w).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// Train-transform the three images of a sample with seed `seed` into `out`, which holds the RGB,
/// NIR and TIR images one after the other (`3 * image_len` values). Independent mode draws per
/// modality; synchronised mode repeats the same draws.
pub fn train_transform_triplet(
    images: &[RgbImage; 3],
    cfg: &TransformConfig,
    seed: u64,
    out: &mut [f32],
) {
    for (m, out) in out.chunks_mut(cfg.image_len()).take(3).enumerate() {
        let stream = match cfg.sync {
            AugmentSync::Independent => m as u64,
            AugmentSync::Synchronised => 0,
        };
        let mut rng = SmallRng::seed_from_u64(mix_seed(&[seed, stream]));
        train_transform(&images[m], cfg, &mut rng, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 7 % 256) as u8, (y * 3 % 256) as u8, 128])
        })
    }

    fn cfg(sync: AugmentSync) -> TransformConfig {
        TransformConfig {
            size: [32, 16],
            normalization: Normalization::Half,
            sync,
            random_erasing: true,
        }
    }

    #[test]
    fn test_transform_normalises_to_half_range() {
        let c = cfg(AugmentSync::Independent);
        let img = RgbImage::from_pixel(16, 32, image::Rgb([255, 0, 51]));
        let mut out = vec![0.0; c.image_len()];
        test_transform(&img, &c, &mut out);
        let plane = 32 * 16;
        assert!((out[0] - 1.0).abs() < 1e-6 && (out[plane] + 1.0).abs() < 1e-6);
        assert!((out[2 * plane] - (0.2 - 0.5) / 0.5).abs() < 1e-5);
    }

    #[test]
    fn train_transform_is_deterministic_per_seed_and_varies_across_seeds() {
        let imgs = [gradient(16, 32), gradient(16, 32), gradient(16, 32)];
        let c = cfg(AugmentSync::Independent);
        let run = |seed| {
            let mut buf = vec![0.0f32; 3 * c.image_len()];
            train_transform_triplet(&imgs, &c, seed, &mut buf);
            buf.chunks(c.image_len())
                .map(|m| m.to_vec())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let independent = run(11);
        assert!(independent[0] != independent[1] || independent[1] != independent[2]);
        let s = cfg(AugmentSync::Synchronised);
        let mut buf = vec![0.0f32; 3 * s.image_len()];
        train_transform_triplet(&imgs, &s, 11, &mut buf);
        let bufs: Vec<&[f32]> = buf.chunks(s.image_len()).collect();
        assert!(bufs[0] == bufs[1] && bufs[1] == bufs[2]);
    }

    #[test]
    fn flip_and_crop_without_erasing_keep_pixel_values() {
        let c = TransformConfig {
            random_erasing: false,
            ..cfg(AugmentSync::Independent)
        };
        let img = gradient(16, 32);
        let mut reference = vec![0.0; c.image_len()];
        test_transform(&img, &c, &mut reference);
        let mut out = vec![0.0; c.image_len()];
        let mut rng = SmallRng::seed_from_u64(3);
        train_transform(&img, &c, &mut rng, &mut out);
        // Every output value is either padding (-1) or a value present in the source image.
        for v in &out {
            assert!(
                *v == -1.0 || reference.iter().any(|r| (r - v).abs() < 1e-6),
                "{v}"
            );
        }
    }

    #[test]
    fn fast_flip_pad_crop_matches_the_naive_definition() {
        let c = TransformConfig {
            random_erasing: false,
            ..cfg(AugmentSync::Independent)
        };
        let img = gradient(16, 32);
        let lut = c.lut();
        for seed in 0..40 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut probe = rng.clone();
            let flip = probe.random::<f32>() < 0.5;
            let cy = probe.random_range(0..=2 * PAD) as i64;
            let cx = probe.random_range(0..=2 * PAD) as i64;
            let mut out = vec![0.0; c.image_len()];
            train_transform(&img, &c, &mut rng, &mut out);
            for ch in 0..3usize {
                for y in 0..32i64 {
                    for x in 0..16i64 {
                        let (sy, px) = (y + cy - PAD as i64, x + cx - PAD as i64);
                        let expect = if (0..32).contains(&sy) && (0..16).contains(&px) {
                            let sx = if flip { 15 - px } else { px };
                            lut[ch][img.get_pixel(sx as u32, sy as u32).0[ch] as usize]
                        } else {
                            lut[ch][0]
                        };
                        assert_eq!(
                            out[ch * 512 + (y * 16 + x) as usize],
                            expect,
                            "seed {seed} {ch} {y} {x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn random_erasing_follows_the_reference_ranges() {
        let (h, w) = (64usize, 32usize);
        let mut erased = 0;
        for seed in 0..200 {
            let mut buf = vec![0.0f32; 3 * h * w];
            random_erasing(&mut buf, h, w, &mut SmallRng::seed_from_u64(seed));
            let changed: Vec<usize> = (0..h * w).filter(|&i| buf[i] != 0.0).collect();
            if changed.is_empty() {
                continue;
            }
            erased += 1;
            let frac = changed.len() as f32 / (h * w) as f32;
            assert!((0.015..=0.36).contains(&frac), "seed {seed}: {frac}");
            // A rectangle: rows times columns of the bounding box equals the count.
            let (ys, xs): (Vec<usize>, Vec<usize>) =
                changed.iter().map(|&i| (i / w, i % w)).unzip();
            let rows = ys.iter().max().unwrap() - ys.iter().min().unwrap() + 1;
            let cols = xs.iter().max().unwrap() - xs.iter().min().unwrap() + 1;
            assert_eq!(rows * cols, changed.len());
            let values: Vec<f32> = changed.iter().map(|&i| buf[2 * h * w + i]).collect();
            let mean = values.iter().sum::<f32>() / values.len() as f32;
            assert!(mean.abs() < 0.5, "noise mean {mean}");
        }
        assert!((70..=130).contains(&erased), "{erased} of 200 erased");
    }
}
