//! Line drawings of the synthetic identities (the `SK/` folder): what a sketch artist would draw
//! from a witness's memory of one shot. The identity is painted again in the shot's view with a
//! pose of its own (scale, position and stride drawn afresh, so the drawing is no pixel copy of
//! the photo), and the borders between its parts (outline, garment borders, hair, glasses, bag;
//! for vehicles body, cabin, windows, lamps, plate, tyres) are inked on white paper: no colour,
//! no texture, no background, no occluder. Each sketch has its own style, drawn from its seed:
//! line width, hand jitter (a smooth displacement field), missing strokes (a smooth mask of
//! gaps) and ink strength with pressure variation.

use super::identity::{Identity, Shot};
use super::render::value_noise;
use super::shapes::{paint_person, paint_vehicle, Canvas};
use crate::transform::mix_seed;
use image::GrayImage;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The drawing style of one sketch.
struct Style {
    /// Line width in pixels of a 128-pixel-high image.
    width: f32,
    /// Largest hand displacement in pixels of a 128-pixel-high image.
    jitter: f32,
    /// Fraction of the strokes left out.
    gaps: f32,
    /// Darkness of a full stroke (1 = black).
    ink: f32,
    /// Seed of the smooth noise fields.
    noise: u64,
}

impl Style {
    fn draw(rng: &mut SmallRng) -> Self {
        Self {
            width: rng.random_range(0.8..2.0),
            jitter: rng.random_range(0.4..2.0),
            gaps: rng.random_range(0.0..0.3),
            ink: rng.random_range(0.6..1.0),
            noise: rng.random(),
        }
    }
}

/// Border pixels of the painted figure: a pixel whose right or lower neighbour is another
/// material (one-sided, so a border is one pixel thick before the line width is applied).
fn borders(canvas: &Canvas) -> Vec<bool> {
    let (w, h) = (canvas.w, canvas.h);
    let mut out = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let m = canvas.mat[y * w + x];
            let right = x + 1 < w && canvas.mat[y * w + x + 1] != m;
            let below = y + 1 < h && canvas.mat[(y + 1) * w + x] != m;
            out[y * w + x] = right || below;
        }
    }
    out
}

/// Draw the sketch of one shot of `id` (`size` is `[height, width]`); deterministic from the
/// shot's seed.
pub fn render_sketch(id: &Identity, shot: &Shot, vehicle: bool, size: [u32; 2]) -> GrayImage {
    let [h, w] = size.map(|v| v as usize);
    let mut rng = SmallRng::seed_from_u64(mix_seed(&[shot.seed, 0x5E7C4]));
    let mut pose = SmallRng::seed_from_u64(rng.random());
    let mut canvas = Canvas::new(w, h);
    if vehicle {
        paint_vehicle(&mut canvas, id, shot, &mut pose);
    } else {
        paint_person(&mut canvas, id, shot, &mut pose);
    }
    let style = Style::draw(&mut rng);
    let border = borders(&canvas);
    let scale = h as f32 / 128.0;
    let half_width = 0.5 * style.width * scale;
    let jitter = style.jitter * scale;
    let reach = (half_width + 1.0).ceil() as isize;
    let cell = 8.0 * scale.max(0.5);
    let mut paper = vec![255u8; w * h];
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32, y as f32);
            if value_noise(style.noise ^ 3, fx, fy, 1.5 * cell) < style.gaps {
                continue;
            }
            // The hand wanders: ink at p shows the border near p + displacement(p).
            let qx = fx + jitter * (2.0 * value_noise(style.noise, fx, fy, cell) - 1.0);
            let qy = fy + jitter * (2.0 * value_noise(style.noise ^ 1, fx, fy, cell) - 1.0);
            let (cx, cy) = (qx.round() as isize, qy.round() as isize);
            let mut nearest = f32::MAX;
            for by in (cy - reach).max(0)..(cy + reach + 1).min(h as isize) {
                for bx in (cx - reach).max(0)..(cx + reach + 1).min(w as isize) {
                    if border[by as usize * w + bx as usize] {
                        let d = ((bx as f32 - qx).powi(2) + (by as f32 - qy).powi(2)).sqrt();
                        nearest = nearest.min(d);
                    }
                }
            }
            let coverage = (half_width + 0.5 - nearest).clamp(0.0, 1.0);
            if coverage > 0.0 {
                let pressure = 0.7 + 0.3 * value_noise(style.noise ^ 2, fx, fy, 2.0 * cell);
                let dark = style.ink * pressure * coverage;
                paper[y * w + x] = (255.0 * (1.0 - dark)).round() as u8;
            }
        }
    }
    GrayImage::from_raw(w as u32, h as u32, paper)
        .unwrap_or_else(|| GrayImage::from_pixel(w as u32, h as u32, image::Luma([255])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::identity::draw_identities;

    fn shot(seed: u64) -> Shot {
        Shot {
            camera: 0,
            view: 0,
            night: false,
            blurry: false,
            seed,
        }
    }

    #[test]
    fn sketches_are_line_drawings_that_differ_per_shot_and_repeat_per_seed() {
        let ids = draw_identities(3, 1, 2, Default::default());
        let a = render_sketch(&ids[0], &shot(11), false, [128, 64]);
        assert_eq!(a, render_sketch(&ids[0], &shot(11), false, [128, 64]));
        let inked = a.pixels().filter(|p| p.0[0] < 200).count();
        let paper = a.pixels().filter(|p| p.0[0] == 255).count();
        // Lines, not filled shapes: some ink, mostly white paper (also in every corner).
        assert!(
            inked > 100 && paper > 128 * 64 * 6 / 10,
            "inked {inked} paper {paper}"
        );
        for (x, y) in [(0, 0), (63, 0), (0, 127), (63, 127)] {
            assert_eq!(a.get_pixel(x, y).0[0], 255);
        }
        let other_shot = render_sketch(&ids[0], &shot(12), false, [128, 64]);
        let other_id = render_sketch(&ids[1], &shot(11), false, [128, 64]);
        assert_ne!(a, other_shot);
        assert_ne!(a, other_id);
        let vehicle = render_sketch(&ids[0], &shot(11), true, [64, 128]);
        assert!(vehicle.pixels().filter(|p| p.0[0] < 200).count() > 100);
    }
}
