//! Pixel-level operations on one normalised `[3, H, W]` image: the IR-like image synthesised
//! from RGB by channel augmentation, and the "uncertain" degradations (night darkening, sensor
//! noise, blur, occlusion). Every operation works in [0, 1] pixel space and writes normalised
//! values back, so it is right for either normalisation.

use crate::config::Normalization;
use next_common::Modality;
use rand::rngs::SmallRng;
use rand::Rng;

/// Luma weights of the grey mix (ITU-R BT.601, as CAJ/AIO use).
const GREY_MIX: [f32; 3] = [0.2989, 0.5870, 0.1140];

/// One degradation of a present modality, with its strength.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Degradation {
    /// Night-like RGB: `brightness * x^1.5` plus Gaussian noise of std `noise`.
    NightDark {
        /// Scale of the darkened intensity.
        brightness: f32,
        /// Noise std in [0, 1] pixel units.
        noise: f32,
    },
    /// Additive Gaussian sensor noise of std `sigma` (pixel units).
    Noise {
        /// Noise std.
        sigma: f32,
    },
    /// Separable Gaussian blur of std `sigma` pixels (edges clamped).
    Blur {
        /// Blur std in pixels.
        sigma: f32,
    },
    /// `patches` grey rectangles, each covering `area` of the image.
    Occlusion {
        /// Number of rectangles.
        patches: usize,
        /// Fraction of the image each covers.
        area: f32,
    },
}

impl Degradation {
    /// Short name for logs and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Degradation::NightDark { .. } => "night_dark",
            Degradation::Noise { .. } => "noise",
            Degradation::Blur { .. } => "blur",
            Degradation::Occlusion { .. } => "occlusion",
        }
    }

    /// A random training degradation fitting `modality`: RGB gets night darkening, blur or
    /// occlusion; NIR and TIR noise, blur or occlusion.
    pub fn random_for(modality: Modality, rng: &mut SmallRng) -> Self {
        let kind = rng.random_range(0..3);
        match (modality, kind) {
            (Modality::Rgb, 0) => Degradation::NightDark {
                brightness: rng.random_range(0.2..0.5),
                noise: rng.random_range(0.01..0.05),
            },
            (_, 0) => Degradation::Noise {
                sigma: rng.random_range(0.05..0.15),
            },
            (_, 1) => Degradation::Blur {
                sigma: rng.random_range(1.0..2.5),
            },
            _ => Degradation::Occlusion {
                patches: rng.random_range(1..=2),
                area: rng.random_range(0.08..0.2),
            },
        }
    }

    /// Apply to `image` (`[3, height, width]`, normalised with `normalization`).
    pub fn apply(
        &self,
        image: &mut [f32],
        height: usize,
        width: usize,
        normalization: Normalization,
        rng: &mut SmallRng,
    ) {
        let (mean, std) = normalization.mean_std();
        let plane = height * width;
        match *self {
            Degradation::NightDark { brightness, noise } => {
                for (c, values) in image.chunks_mut(plane).take(3).enumerate() {
                    for v in values {
                        let x = (*v * std[c] + mean[c]).clamp(0.0, 1.0);
                        let dark = brightness * x.powf(1.5) + noise * normal(rng);
                        *v = (dark.clamp(0.0, 1.0) - mean[c]) / std[c];
                    }
                }
            }
            Degradation::Noise { sigma } => {
                for (c, values) in image.chunks_mut(plane).take(3).enumerate() {
                    for v in values {
                        let x = *v * std[c] + mean[c] + sigma * normal(rng);
                        *v = (x.clamp(0.0, 1.0) - mean[c]) / std[c];
                    }
                }
            }
            Degradation::Blur { sigma } => {
                let kernel = gaussian_kernel(sigma);
                for values in image.chunks_mut(plane).take(3) {
                    blur_plane(values, height, width, &kernel);
                }
            }
            Degradation::Occlusion { patches, area } => {
                for _ in 0..patches {
                    occlude(image, height, width, area, rng);
                }
            }
        }
    }
}

/// An IR-like image from a normalised RGB image (AIO's channel augmentation): with probability
/// 0.5 the grey mix `0.2989 R + 0.5870 G + 0.1140 B`, otherwise one random channel, copied to all
/// three channels of `out` (normalised the same way).
pub fn channel_augment(
    rgb: &[f32],
    out: &mut [f32],
    plane: usize,
    normalization: Normalization,
    rng: &mut SmallRng,
) {
    let (mean, std) = normalization.mean_std();
    let weights = if rng.random::<f32>() < 0.5 {
        GREY_MIX
    } else {
        let mut one = [0.0; 3];
        one[rng.random_range(0..3)] = 1.0;
        one
    };
    for i in 0..plane {
        let grey: f32 = (0..3)
            .map(|c| weights[c] * (rgb[c * plane + i] * std[c] + mean[c]))
            .sum();
        for c in 0..3 {
            out[c * plane + i] = (grey - mean[c]) / std[c];
        }
    }
}

fn normal(rng: &mut SmallRng) -> f32 {
    rng.sample(rand_distr::StandardNormal)
}

/// Normalised Gaussian taps for std `sigma`, radius `ceil(2 sigma)`.
fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let radius = (2.0 * sigma).ceil().max(1.0) as i32;
    let taps: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = taps.iter().sum();
    taps.into_iter().map(|t| t / total).collect()
}

/// Separable blur of one `height x width` plane with clamped edges (linear, so it can run on
/// normalised values directly).
fn blur_plane(values: &mut [f32], height: usize, width: usize, kernel: &[f32]) {
    let radius = (kernel.len() / 2) as isize;
    let mut tmp = vec![0.0f32; values.len()];
    let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
    for y in 0..height {
        for x in 0..width {
            tmp[y * width + x] = kernel
                .iter()
                .enumerate()
                .map(|(k, w)| {
                    w * values[y * width + clamp(x as isize + k as isize - radius, width)]
                })
                .sum();
        }
    }
    for y in 0..height {
        for x in 0..width {
            values[y * width + x] = kernel
                .iter()
                .enumerate()
                .map(|(k, w)| w * tmp[clamp(y as isize + k as isize - radius, height) * width + x])
                .sum();
        }
    }
}

/// Fill one random rectangle of about `area` of the image (aspect 0.5..2) with grey: the
/// normalisation mean, i.e. 0 in every channel.
fn occlude(image: &mut [f32], height: usize, width: usize, area: f32, rng: &mut SmallRng) {
    let target = area * (height * width) as f32;
    let aspect: f32 = rng.random_range(0.5..2.0);
    let h = ((target * aspect).sqrt().round() as usize).clamp(1, height);
    let w = ((target / aspect).sqrt().round() as usize).clamp(1, width);
    let top = rng.random_range(0..=height - h);
    let left = rng.random_range(0..=width - w);
    for c in 0..3 {
        for y in top..top + h {
            let start = c * height * width + y * width + left;
            image[start..start + w].fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn image(h: usize, w: usize) -> Vec<f32> {
        (0..3 * h * w)
            .map(|i| ((i * 37) % 17) as f32 / 8.0 - 1.0)
            .collect()
    }

    #[test]
    fn channel_augment_gives_three_equal_raw_channels() {
        let (h, w) = (4, 3);
        let rgb = image(h, w);
        let norm = Normalization::Clip;
        let (mean, std) = norm.mean_std();
        for seed in 0..8 {
            let mut out = vec![0.0; rgb.len()];
            channel_augment(
                &rgb,
                &mut out,
                h * w,
                norm,
                &mut SmallRng::seed_from_u64(seed),
            );
            for i in 0..h * w {
                let raw: Vec<f32> = (0..3)
                    .map(|c| out[c * h * w + i] * std[c] + mean[c])
                    .collect();
                assert!((raw[0] - raw[1]).abs() < 1e-5 && (raw[1] - raw[2]).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn degradations_change_the_image_and_blur_keeps_a_constant_image() {
        let (h, w) = (8, 6);
        let norm = Normalization::Half;
        let mut rng = SmallRng::seed_from_u64(3);
        for d in [
            Degradation::NightDark {
                brightness: 0.3,
                noise: 0.02,
            },
            Degradation::Noise { sigma: 0.1 },
            Degradation::Blur { sigma: 1.5 },
            Degradation::Occlusion {
                patches: 1,
                area: 0.2,
            },
        ] {
            let mut img = image(h, w);
            d.apply(&mut img, h, w, norm, &mut rng);
            assert_ne!(img, image(h, w), "{} left the image unchanged", d.name());
            assert!(img.iter().all(|v| v.is_finite()));
        }
        let mut flat = vec![0.25f32; 3 * h * w];
        Degradation::Blur { sigma: 2.0 }.apply(&mut flat, h, w, norm, &mut rng);
        assert!(flat.iter().all(|v| (v - 0.25).abs() < 1e-5));
        // Night darkening lowers the mean intensity.
        let mut img = image(h, w);
        Degradation::NightDark {
            brightness: 0.3,
            noise: 0.0,
        }
        .apply(&mut img, h, w, norm, &mut rng);
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!(mean(&img) < mean(&image(h, w)));
    }
}
