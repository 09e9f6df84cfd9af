//! A sketch from a photo for datasets without drawn sketches: XDoG, the extended difference of
//! Gaussians of Winnemöller, Kyprianidis and Olsen (2012), on the luminance of the RGB image.
//!
//! With `G_s` a Gaussian blur of standard deviation `s`, the difference
//! `D = G_sigma(Y) - tau * G_{k sigma}(Y)` is `(1 - tau) Y >= 0` on flat regions and negative on the
//! dark side of an edge; the soft threshold `T = 1` where `D >= epsilon`, else
//! `1 + tanh(phi (D - epsilon))`, turns that into dark lines on white paper, whatever the colour
//! or brightness of the flat regions.

use crate::decode::Pixels;
use image::GrayImage;

/// Settings of the XDoG operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct XdogParams {
    /// Inner Gaussian standard deviation in pixels of a 128-pixel-high image (scaled with the
    /// image height, so a line has the same relative width at any resolution).
    pub sigma: f32,
    /// Ratio of the outer to the inner standard deviation.
    pub k: f32,
    /// Weight of the outer Gaussian (just below 1: flat regions stay white).
    pub tau: f32,
    /// Threshold on the difference below which a pixel is inked.
    pub epsilon: f32,
    /// Steepness of the soft threshold.
    pub phi: f32,
}

impl Default for XdogParams {
    fn default() -> Self {
        Self {
            sigma: 0.8,
            k: 1.6,
            tau: 0.98,
            epsilon: -0.01,
            phi: 200.0,
        }
    }
}

/// The XDoG sketch of a photo (a grey image is its own luminance): dark lines on white.
pub fn xdog_sketch(photo: &Pixels, params: &XdogParams) -> GrayImage {
    let (w, h) = photo.dimensions();
    let (wu, hu) = (w as usize, h as usize);
    let luma: Vec<f32> = match photo {
        Pixels::Grey(img) => img.as_raw().iter().map(|&v| v as f32 / 255.0).collect(),
        Pixels::Rgb(img) => img
            .as_raw()
            .chunks_exact(3)
            .map(|p| (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0)
            .collect(),
    };
    let sigma = params.sigma * (h as f32 / 128.0).max(0.25);
    let inner = gaussian_blur(&luma, wu, hu, sigma);
    let outer = gaussian_blur(&luma, wu, hu, sigma * params.k);
    let ink: Vec<u8> = inner
        .iter()
        .zip(&outer)
        .map(|(&a, &b)| {
            let d = a - params.tau * b;
            let t = if d >= params.epsilon {
                1.0
            } else {
                1.0 + (params.phi * (d - params.epsilon)).tanh()
            };
            (t.clamp(0.0, 1.0) * 255.0).round() as u8
        })
        .collect();
    GrayImage::from_raw(w, h, ink)
        .unwrap_or_else(|| GrayImage::from_pixel(w, h, image::Luma([255])))
}

/// Separable Gaussian blur of a `w x h` plane (borders repeat the edge pixel, so a flat image
/// stays flat).
fn gaussian_blur(src: &[f32], w: usize, h: usize, sigma: f32) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil().max(1.0) as isize;
    let mut kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|v| *v /= total);
    let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    let mut rows = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            rows[y * w + x] = kernel
                .iter()
                .zip(-radius..=radius)
                .map(|(k, d)| k * src[y * w + clamp(x as isize + d, w)])
                .sum();
        }
    }
    let mut out = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = kernel
                .iter()
                .zip(-radius..=radius)
                .map(|(k, d)| k * rows[clamp(y as isize + d, h) * w + x])
                .sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    /// A 48x64 photo: a dark blue left half and a light yellow right half (edge at x = 24).
    fn two_halves() -> RgbImage {
        RgbImage::from_fn(48, 64, |x, _| {
            if x < 24 {
                image::Rgb([20, 30, 90])
            } else {
                image::Rgb([230, 220, 120])
            }
        })
    }

    #[test]
    fn edges_are_dark_and_flat_regions_white() {
        let sketch = xdog_sketch(&Pixels::Rgb(two_halves()), &XdogParams::default());
        assert_eq!(sketch.dimensions(), (48, 64));
        for y in 0..64 {
            // Flat regions, dark or light, are white paper.
            for x in (0..18).chain(28..48) {
                assert_eq!(sketch.get_pixel(x, y).0[0], 255, "flat pixel ({x}, {y})");
            }
            // The edge is inked on its dark side.
            let darkest = (20..28).map(|x| sketch.get_pixel(x, y).0[0]).min().unwrap();
            assert!(darkest < 40, "row {y}: darkest edge pixel {darkest}");
        }
    }

    #[test]
    fn a_flat_photo_is_blank_paper_and_grey_equals_its_rgb_expansion() {
        let flat = GrayImage::from_pixel(16, 32, image::Luma([70]));
        let sketch = xdog_sketch(&Pixels::Grey(flat.clone()), &XdogParams::default());
        assert!(sketch.pixels().all(|p| p.0[0] == 255));
        let grey = GrayImage::from_fn(16, 32, |x, y| image::Luma([((x * 13 + y * 5) % 256) as u8]));
        let rgb = Pixels::Grey(grey.clone()).into_rgb();
        let from_grey = xdog_sketch(&Pixels::Grey(grey), &XdogParams::default());
        let from_rgb = xdog_sketch(&Pixels::Rgb(rgb), &XdogParams::default());
        // The luminance weights sum to 1 up to f32 rounding: at most one grey level apart.
        for (a, b) in from_grey.pixels().zip(from_rgb.pixels()) {
            assert!(a.0[0].abs_diff(b.0[0]) <= 1, "{} vs {}", a.0[0], b.0[0]);
        }
    }
}
