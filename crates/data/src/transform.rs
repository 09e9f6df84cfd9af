//! Image decoding and the train/test transforms of the reference recipe, on raw `f32` buffers
//! laid out channel-first (`[3, H, W]`), ready to be packed into a Burn tensor.

use crate::config::{AugmentSync, DatasetConfig, Normalization, SketchInk};
pub use crate::decode::{
    decode_image, decode_pixels, load_present_pixels, load_triplet, load_triplet_pixels, Pixels,
};
use image::imageops::FilterType;
use image::{GrayImage, RgbImage};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Zero padding added on each side before the random crop (reference: 10).
pub const PAD: u32 = 10;

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
    /// Dark ink as drawn, or inverted to bright ink, on the sketches.
    pub sketch_ink: SketchInk,
    /// Standardise each sketch per channel plane (zero mean, unit deviation) after normalising.
    pub sketch_standardize: bool,
}

impl TransformConfig {
    /// The transform settings of a dataset configuration.
    pub fn from_dataset(cfg: &DatasetConfig) -> Self {
        Self {
            size: cfg.size(),
            normalization: cfg.normalization,
            sync: cfg.augment_sync,
            random_erasing: cfg.random_erasing,
            sketch_ink: cfg.sketch_ink,
            sketch_standardize: cfg.sketch_standardize,
        }
    }

    /// Number of `f32` values of one transformed modality image (`3 * H * W`).
    pub fn image_len(&self) -> usize {
        3 * self.size[0] as usize * self.size[1] as usize
    }

    /// Random stream of input `m` (0 RGB, 1 NIR, 2 TIR, 3 sketch) of a sample's train transform.
    fn stream(&self, m: usize) -> u64 {
        match self.sync {
            AugmentSync::Independent => m as u64,
            AugmentSync::Synchronised => 0,
        }
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

/// A borrowed 8-bit image, grey (one channel) or RGB (three interleaved channels).
#[derive(Debug, Clone, Copy)]
enum View<'a> {
    Grey(&'a GrayImage),
    Rgb(&'a RgbImage),
}

impl<'a> From<&'a Pixels> for View<'a> {
    fn from(p: &'a Pixels) -> Self {
        match p {
            Pixels::Grey(img) => View::Grey(img),
            Pixels::Rgb(img) => View::Rgb(img),
        }
    }
}

impl View<'_> {
    /// Raw bytes, row-major, and the channels per pixel.
    fn raw(&self) -> (&[u8], usize) {
        match self {
            View::Grey(img) => (img.as_raw(), 1),
            View::Rgb(img) => (img.as_raw(), 3),
        }
    }

    /// The image resized to `size` (`[h, w]`), or `None` when it already has that size. Grey
    /// images are resized as one channel: the filter works per channel, so this equals resizing
    /// the RGB expansion.
    fn resized(&self, size: [u32; 2], filter: FilterType) -> Option<Pixels> {
        let [h, w] = size;
        match *self {
            View::Grey(img) if img.dimensions() != (w, h) => {
                Some(Pixels::Grey(image::imageops::resize(img, w, h, filter)))
            }
            View::Rgb(img) if img.dimensions() != (w, h) => {
                Some(Pixels::Rgb(image::imageops::resize(img, w, h, filter)))
            }
            _ => None,
        }
    }
}

/// Write normalised pixels: each source pixel (`CH` = 1: grey, 3: RGB), in reverse order when
/// `REV`, goes through the three channel tables into the three destination rows.
fn write_pixels<const CH: usize, const REV: bool>(
    rows: [&mut [f32]; 3],
    src: &[[u8; CH]],
    lut: &[[f32; 256]; 3],
) {
    let [r0, r1, r2] = rows;
    let n = src.len().min(r0.len()).min(r1.len()).min(r2.len());
    let (r0, r1, r2, src) = (&mut r0[..n], &mut r1[..n], &mut r2[..n], &src[..n]);
    let (g, b) = if CH == 3 { (1, 2) } else { (0, 0) };
    let [l0, l1, l2] = lut;
    for i in 0..n {
        let px = if REV { &src[n - 1 - i] } else { &src[i] };
        r0[i] = l0[px[0] as usize];
        r1[i] = l1[px[g] as usize];
        r2[i] = l2[px[b] as usize];
    }
}

/// Split `out` into its three channel planes of `plane` values each.
fn planes(out: &mut [f32], plane: usize) -> [&mut [f32]; 3] {
    let (p0, rest) = out[..3 * plane].split_at_mut(plane);
    let (p1, p2) = rest.split_at_mut(plane);
    [p0, p1, p2]
}

/// Test transform: bilinear resize and normalise into `out` (`[3, H, W]`).
pub fn test_transform(img: &RgbImage, cfg: &TransformConfig, out: &mut [f32]) {
    test_transform_view(View::Rgb(img), cfg, out);
}

/// [`test_transform`] of a grey or RGB image (grey counts as R = G = B).
pub fn test_transform_pixels(img: &Pixels, cfg: &TransformConfig, out: &mut [f32]) {
    test_transform_view(img.into(), cfg, out);
}

fn test_transform_view(img: View<'_>, cfg: &TransformConfig, out: &mut [f32]) {
    let resized = img.resized(cfg.size, FilterType::Triangle);
    let img = resized.as_ref().map_or(img, View::from);
    let lut = cfg.lut();
    let planes = planes(out, (cfg.size[0] * cfg.size[1]) as usize);
    match img.raw() {
        (raw, 1) => write_pixels::<1, false>(planes, raw.as_chunks().0, &lut),
        (raw, _) => write_pixels::<3, false>(planes, raw.as_chunks().0, &lut),
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
    train_transform_view(View::Rgb(img), cfg, rng, out, false);
}

/// [`train_transform`] of a grey or RGB image (grey counts as R = G = B).
pub fn train_transform_pixels(
    img: &Pixels,
    cfg: &TransformConfig,
    rng: &mut SmallRng,
    out: &mut [f32],
) {
    train_transform_view(img.into(), cfg, rng, out, false);
}

/// The train transform, with each channel plane standardised before the erasing when
/// `standardize` (sketches with `sketch_standardize`).
fn train_transform_view(
    img: View<'_>,
    cfg: &TransformConfig,
    rng: &mut SmallRng,
    out: &mut [f32],
    standardize: bool,
) {
    let resized = img.resized(cfg.size, FilterType::CatmullRom);
    let img = resized.as_ref().map_or(img, View::from);
    let draws = Draws {
        flip: rng.random::<f32>() < 0.5,
        crop_y: rng.random_range(0..=2 * PAD),
        crop_x: rng.random_range(0..=2 * PAD),
    };
    let lut = cfg.lut();
    let [h, w] = cfg.size.map(|v| v as usize);
    match img.raw() {
        (raw, 1) => flip_pad_crop::<1>(raw, h, w, draws, &lut, out),
        (raw, _) => flip_pad_crop::<3>(raw, h, w, draws, &lut, out),
    }
    if standardize {
        standardize_planes(out, h * w);
    }
    if cfg.random_erasing {
        random_erasing(out, h, w, rng);
    }
}

/// Flip, zero-pad by [`PAD`], crop back to `h x w` at the drawn offset and normalise, in one pass
/// from `raw` (`CH` interleaved channels, `h x w`) into the three planes of `out`.
fn flip_pad_crop<const CH: usize>(
    raw: &[u8],
    h: usize,
    w: usize,
    draws: Draws,
    lut: &[[f32; 256]; 3],
    out: &mut [f32],
) {
    let pad = PAD as usize;
    let fill = [lut[0][0], lut[1][0], lut[2][0]];
    // Output columns whose padded source column lies inside the image.
    let (cy, cx) = (draws.crop_y as usize, draws.crop_x as usize);
    let x0 = pad.saturating_sub(cx).min(w);
    let x1 = (w + pad).saturating_sub(cx).min(w).max(x0);
    // Padded column of output x is x + cx - pad; flipped it reads w - 1 - that.
    let (first, count) = ((x0 + cx).saturating_sub(pad), x1 - x0);
    let [p0, p1, p2] = planes(out, h * w);
    let rows = p0
        .chunks_exact_mut(w)
        .zip(p1.chunks_exact_mut(w))
        .zip(p2.chunks_exact_mut(w));
    for (y, ((r0, r1), r2)) in rows.enumerate() {
        let sy = y + cy;
        if sy < pad || sy >= h + pad {
            for (row, value) in [&mut *r0, &mut *r1, &mut *r2].into_iter().zip(fill) {
                row.fill(value);
            }
            continue;
        }
        for (row, value) in [&mut *r0, &mut *r1, &mut *r2].into_iter().zip(fill) {
            row[..x0].fill(value);
            row[x1..].fill(value);
        }
        if count == 0 {
            // Output narrower than the padding: this row shows only padding (`first` may then
            // lie past the image).
            continue;
        }
        let src = &raw[(sy - pad) * w * CH..(sy - pad + 1) * w * CH];
        let src: &[[u8; CH]] = src.as_chunks().0;
        let dst = [&mut r0[x0..x1], &mut r1[x0..x1], &mut r2[x0..x1]];
        if draws.flip {
            // Reading right to left from source column w - 1 - first.
            write_pixels::<CH, true>(dst, &src[w - first - count..w - first], lut);
        } else {
            write_pixels::<CH, false>(dst, &src[first..first + count], lut);
        }
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

/// Train-transform the three images of a sample with seed `seed` into `outs` (RGB, NIR, TIR,
/// `image_len` values each). Independent mode draws per modality; synchronised mode repeats the
/// same draws.
pub fn train_transform_triplet(
    images: &[Pixels; 3],
    cfg: &TransformConfig,
    seed: u64,
    outs: [&mut [f32]; 3],
) {
    train_transform_present(&images.each_ref().map(Some), cfg, seed, outs);
}

/// [`train_transform_triplet`] of the spectra a sample has: an absent one (`None`) leaves its
/// output untouched, and the present ones get the same draws as in a full triplet.
pub fn train_transform_present(
    images: &[Option<&Pixels>; 3],
    cfg: &TransformConfig,
    seed: u64,
    outs: [&mut [f32]; 3],
) {
    for (m, (img, out)) in images.iter().zip(outs).enumerate() {
        if let Some(img) = img {
            let mut rng = SmallRng::seed_from_u64(mix_seed(&[seed, cfg.stream(m)]));
            train_transform_pixels(img, cfg, &mut rng, out);
        }
    }
}

/// The grey sketch that enters the transforms: `sketch` in grey (a colour file is converted),
/// inverted when the ink is configured bright.
pub fn sketch_input(sketch: Pixels, ink: SketchInk) -> GrayImage {
    let mut grey = sketch.into_luma();
    if ink == SketchInk::Bright {
        image::imageops::invert(&mut grey);
    }
    grey
}

/// Train-transform the sketch of a sample with the sample's seed `seed`: its own random draws
/// (stream 3), or those of the spectra when the augmentation is synchronised; grey, with the
/// configured ink ([`sketch_input`]).
pub fn train_transform_sketch(sketch: Pixels, cfg: &TransformConfig, seed: u64, out: &mut [f32]) {
    let mut rng = SmallRng::seed_from_u64(mix_seed(&[seed, cfg.stream(3)]));
    let grey = sketch_input(sketch, cfg.sketch_ink);
    train_transform_view(
        View::Grey(&grey),
        cfg,
        &mut rng,
        out,
        cfg.sketch_standardize,
    );
}

/// Test-transform a sketch: grey, with the configured ink ([`sketch_input`]).
pub fn test_transform_sketch(sketch: Pixels, cfg: &TransformConfig, out: &mut [f32]) {
    let grey = sketch_input(sketch, cfg.sketch_ink);
    test_transform_view(View::Grey(&grey), cfg, out);
    if cfg.sketch_standardize {
        standardize_planes(out, (cfg.size[0] * cfg.size[1]) as usize);
    }
}

/// Give each channel plane (`plane` values) of `out` zero mean and unit standard deviation (a
/// constant plane becomes zeros): the paper of a sketch, which is nearly all of it, then sits
/// near zero and the strokes carry the values.
fn standardize_planes(out: &mut [f32], plane: usize) {
    for values in planes(out, plane) {
        let (mean, deviation) = mean_and_deviation(values);
        let scale = if deviation > 1e-6 {
            1.0 / deviation
        } else {
            0.0
        };
        for v in values.iter_mut() {
            *v = ((f64::from(*v) - mean) * scale) as f32;
        }
    }
}

/// The mean and the population standard deviation of `values` (zeros when empty).
fn mean_and_deviation(values: &[f32]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
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
            sketch_ink: SketchInk::Dark,
            sketch_standardize: false,
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

    /// Transform the three images of a triplet into one buffer holding them one after the other.
    fn triplet(imgs: &[Pixels; 3], c: &TransformConfig, seed: u64) -> Vec<Vec<f32>> {
        let mut bufs = vec![vec![0.0f32; c.image_len()]; 3];
        let [a, b, d] = &mut bufs[..] else {
            unreachable!()
        };
        train_transform_triplet(imgs, c, seed, [a, b, d]);
        bufs
    }

    #[test]
    fn train_transform_is_deterministic_per_seed_and_varies_across_seeds() {
        let imgs = [0, 1, 2].map(|_| Pixels::Rgb(gradient(16, 32)));
        let c = cfg(AugmentSync::Independent);
        assert_eq!(triplet(&imgs, &c, 7), triplet(&imgs, &c, 7));
        assert_ne!(triplet(&imgs, &c, 7), triplet(&imgs, &c, 8));
        let independent = triplet(&imgs, &c, 11);
        assert!(independent[0] != independent[1] || independent[1] != independent[2]);
        let bufs = triplet(&imgs, &cfg(AugmentSync::Synchronised), 11);
        assert!(bufs[0] == bufs[1] && bufs[1] == bufs[2]);
    }

    #[test]
    fn grey_pixels_transform_exactly_like_their_rgb_expansion() {
        // A grey gradient covering every value, square-ish, at the output size and at other
        // sizes (both resize filters), with the CLIP normalisation (a different table per channel).
        let grey = GrayImage::from_fn(16, 32, |x, y| image::Luma([((y * 16 + x) % 256) as u8]));
        let odd = GrayImage::from_fn(23, 41, |x, y| {
            image::Luma([((x * 37 + y * 11) % 256) as u8])
        });
        for img in [grey, odd] {
            let rgb = Pixels::Grey(img.clone()).into_rgb();
            // `image`'s own grey-to-RGB conversion replicates the value.
            assert_eq!(rgb, image::DynamicImage::ImageLuma8(img.clone()).to_rgb8());
            let c = TransformConfig {
                normalization: Normalization::Clip,
                ..cfg(AugmentSync::Independent)
            };
            let (mut a, mut b) = (vec![0.0; c.image_len()], vec![0.0; c.image_len()]);
            test_transform_pixels(&Pixels::Grey(img.clone()), &c, &mut a);
            test_transform(&rgb, &c, &mut b);
            assert_eq!(a, b);
            for seed in 0..20 {
                train_transform_pixels(
                    &Pixels::Grey(img.clone()),
                    &c,
                    &mut SmallRng::seed_from_u64(seed),
                    &mut a,
                );
                train_transform(&rgb, &c, &mut SmallRng::seed_from_u64(seed), &mut b);
                assert_eq!(a, b, "seed {seed}");
            }
        }
    }

    #[test]
    fn a_bright_ink_sketch_is_the_inverted_drawing_and_its_padding_is_paper() {
        // Dark ink (value 20) on white paper (255), grey, 16 x 32.
        let ink = |x: u32, y: u32| (x + y).is_multiple_of(5);
        let drawing = GrayImage::from_fn(16, 32, |x, y| {
            image::Luma([if ink(x, y) { 20 } else { 255 }])
        });
        let inverted = GrayImage::from_fn(16, 32, |x, y| {
            image::Luma([if ink(x, y) { 235 } else { 0 }])
        });
        let dark = TransformConfig {
            random_erasing: false,
            ..cfg(AugmentSync::Independent)
        };
        let bright = TransformConfig {
            sketch_ink: SketchInk::Bright,
            ..dark
        };
        let len = dark.image_len();
        let (mut a, mut b) = (vec![0.0; len], vec![0.0; len]);
        // Dark ink is the drawing as it is, in grey even from an RGB file.
        let rgb = Pixels::Grey(drawing.clone()).into_rgb();
        test_transform_sketch(Pixels::Rgb(rgb), &dark, &mut a);
        test_transform_pixels(&Pixels::Grey(drawing.clone()), &dark, &mut b);
        assert_eq!(a, b);
        // Bright ink is the inverted drawing, at test and train time.
        test_transform_sketch(Pixels::Grey(drawing.clone()), &bright, &mut a);
        test_transform_pixels(&Pixels::Grey(inverted.clone()), &dark, &mut b);
        assert_eq!(a, b);
        let lut = dark.lut();
        for seed in 0..16 {
            train_transform_sketch(Pixels::Grey(drawing.clone()), &bright, seed, &mut a);
            let mut rng = SmallRng::seed_from_u64(mix_seed(&[seed, bright.stream(3)]));
            train_transform_pixels(&Pixels::Grey(inverted.clone()), &dark, &mut rng, &mut b);
            assert_eq!(a, b, "seed {seed}");
            // The inverted paper is black, the value of the zero padding: a crop of the page
            // gets no ink frame, only paper and the drawn ink.
            assert!(a.iter().all(|&v| v == lut[0][0] || v == lut[0][235]));
        }
    }

    /// The mean and the population standard deviation of each of the three planes of `out`.
    fn plane_moments(out: &[f32]) -> Vec<(f64, f64)> {
        out.chunks(out.len() / 3).map(mean_and_deviation).collect()
    }

    #[test]
    fn a_standardised_sketch_has_zero_mean_unit_spread_planes_and_a_blank_page_is_zero() {
        let drawing = GrayImage::from_fn(16, 32, |x, y| {
            image::Luma([if (x * 3 + y).is_multiple_of(7) {
                30
            } else {
                250
            }])
        });
        let plain = TransformConfig {
            random_erasing: false,
            normalization: Normalization::Clip,
            sketch_ink: SketchInk::Bright,
            ..cfg(AugmentSync::Independent)
        };
        let std = TransformConfig {
            sketch_standardize: true,
            ..plain
        };
        let len = std.image_len();
        let (mut a, mut b) = (vec![0.0; len], vec![0.0; len]);
        test_transform_sketch(Pixels::Grey(drawing.clone()), &std, &mut a);
        test_transform_sketch(Pixels::Grey(drawing.clone()), &plain, &mut b);
        for (mean, sd) in plane_moments(&a) {
            assert!(mean.abs() < 1e-5 && (sd - 1.0).abs() < 1e-5, "{mean} {sd}");
        }
        // Standardising is an affine map of each plane of the plain transform: the ink and
        // paper keep their order, only offset and scale change.
        let plane = len / 3;
        for c in 0..3 {
            let (p, q) = (
                &a[c * plane..(c + 1) * plane],
                &b[c * plane..(c + 1) * plane],
            );
            let (mean, sd) = plane_moments(&b)[c];
            for (x, y) in p.iter().zip(q) {
                assert!((f64::from(*x) - (f64::from(*y) - mean) / sd).abs() < 1e-4);
            }
        }
        // At train time too (erasing off), whatever the flip and the crop draw.
        for seed in 0..8 {
            train_transform_sketch(Pixels::Grey(drawing.clone()), &std, seed, &mut a);
            for (mean, sd) in plane_moments(&a) {
                assert!(mean.abs() < 1e-5 && (sd - 1.0).abs() < 1e-5, "seed {seed}");
            }
        }
        // A blank page has nothing to standardise: zeros, not a division by zero.
        let blank = GrayImage::from_pixel(16, 32, image::Luma([255]));
        test_transform_sketch(Pixels::Grey(blank), &std, &mut a);
        assert!(a.iter().all(|&v| v == 0.0));
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
    fn outputs_narrower_than_the_padding_are_all_padding_or_image() {
        // Found by the image_decode fuzz target: a crop offset past a 4- or 8-pixel-wide image
        // indexed beyond the row.
        for size in [[8, 4], [4, 8], [2, 2]] {
            let c = TransformConfig {
                size,
                ..cfg(AugmentSync::Independent)
            };
            let img = gradient(size[1], size[0]);
            for seed in 0..64 {
                let mut out = vec![0.0; c.image_len()];
                train_transform(&img, &c, &mut SmallRng::seed_from_u64(seed), &mut out);
                assert!(out.iter().all(|v| v.is_finite()), "{size:?} seed {seed}");
            }
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
