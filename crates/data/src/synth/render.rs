//! Rendering of synthetic identities in three aligned modalities. Shapes are painted into a
//! material map once; each modality then shades the materials with its own physics (visible
//! colour and illumination, NIR reflectance and active illumination, thermal emission).

use super::identity::{Identity, Shot, PALETTE, UPPER};
use super::shapes::{paint_person, paint_vehicle, Canvas, Mat};
use crate::transform::mix_seed;
use image::{GrayImage, RgbImage};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Value noise in [0, 1] on a lattice of `cell` pixels.
pub(super) fn value_noise(seed: u64, x: f32, y: f32, cell: f32) -> f32 {
    let (gx, gy) = (x / cell, y / cell);
    let (ix, iy) = (gx.floor(), gy.floor());
    let (fx, fy) = (gx - ix, gy - iy);
    let corner = |dx: f32, dy: f32| {
        (mix_seed(&[seed, (ix + dx) as i64 as u64, (iy + dy) as i64 as u64]) >> 40) as f32
            / (1u64 << 24) as f32
    };
    let (a, b, c, d) = (
        corner(0.0, 0.0),
        corner(1.0, 0.0),
        corner(0.0, 1.0),
        corner(1.0, 1.0),
    );
    let top = a + (b - a) * fx;
    let bottom = c + (d - c) * fx;
    top + (bottom - top) * fy
}

/// How a camera's scene looks: wall and ground in each modality, vegetation.
struct Scene {
    seed: u64,
    wall_rgb: [f32; 3],
    ground_rgb: [f32; 3],
    horizon: f32,
    vegetation: bool,
}

fn scene(seed: u64, camera: u32) -> Scene {
    let mut rng = SmallRng::seed_from_u64(mix_seed(&[seed, 0x5CE7E, camera as u64]));
    let grey = rng.random_range(0.3..0.7);
    Scene {
        seed: mix_seed(&[seed, camera as u64, 77]),
        wall_rgb: [
            grey + rng.random_range(-0.1..0.1),
            grey,
            grey + rng.random_range(-0.1..0.1),
        ],
        ground_rgb: [0.4 + rng.random_range(-0.1..0.1), 0.38, 0.35],
        horizon: rng.random_range(0.55..0.8),
        vegetation: camera % 2 == 1,
    }
}

fn normal(rng: &mut SmallRng) -> f32 {
    let u1 = rng.random::<f32>().max(1e-7);
    let u2 = rng.random::<f32>();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

fn box_blur(values: &mut [f32], w: usize, h: usize, channels: usize, rx: usize, ry: usize) {
    let src = values.to_vec();
    for y in 0..h {
        for x in 0..w {
            for ch in 0..channels {
                let (mut sum, mut n) = (0.0, 0.0);
                for yy in y.saturating_sub(ry)..(y + ry + 1).min(h) {
                    for xx in x.saturating_sub(rx)..(x + rx + 1).min(w) {
                        sum += src[(yy * w + xx) * channels + ch];
                        n += 1.0;
                    }
                }
                values[(y * w + x) * channels + ch] = sum / n;
            }
        }
    }
}

/// Render one shot of an identity: RGB colour image, NIR and TIR grey images, pixel-aligned.
pub fn render_triplet(
    id: &Identity,
    shot: &Shot,
    vehicle: bool,
    size: [u32; 2],
    world_seed: u64,
) -> (RgbImage, GrayImage, GrayImage) {
    let [h, w] = size.map(|v| v as usize);
    let mut rng = SmallRng::seed_from_u64(shot.seed);
    let mut canvas = Canvas::new(w, h);
    let frame = if vehicle {
        paint_vehicle(&mut canvas, id, shot, &mut rng);
        None
    } else {
        Some(paint_person(&mut canvas, id, shot, &mut rng))
    };
    if rng.random::<f32>() < 0.2 {
        let x0 = rng.random_range(0.0..w as f32);
        let pole = rng.random::<bool>();
        if pole {
            canvas.rect(x0, 0.0, x0 + w as f32 * 0.08, h as f32, Mat::Occluder);
        } else {
            canvas.rect(
                0.0,
                h as f32 * rng.random_range(0.75..0.9),
                w as f32,
                h as f32,
                Mat::Occluder,
            );
        }
    }
    let sc = scene(world_seed, shot.camera);
    let day_light = rng.random_range(0.8..1.1);
    let night_light = rng.random_range(0.16..0.3);
    let tint = if shot.night {
        [1.0, 0.78, 0.5]
    } else {
        [1.0, 1.0, 1.0]
    };
    let ambient = if shot.night { 0.22 } else { 0.42 } + rng.random_range(-0.04..0.04);
    let core = 0.88 + id.heat * 0.6;
    let upper = PALETTE[id.upper_colour].rgb;
    let lower = PALETTE[id.lower_colour].rgb;
    let bag = PALETTE[id.bag_colour].rgb;
    let skin = [
        0.95 * id.skin_tone + 0.05,
        0.75 * id.skin_tone + 0.05,
        0.6 * id.skin_tone + 0.05,
    ];
    let hair = [id.hair_tone * 0.9, id.hair_tone * 0.75, id.hair_tone * 0.55];
    let shoes = [[0.9, 0.9, 0.9], [0.25, 0.17, 0.1], [0.5, 0.35, 0.25]][id.shoes];
    let insulation = UPPER[id.upper_type].2;
    let occ_rgb = rng.random_range(0.3..0.6);
    let stripe_scale = h as f32 / 128.0;

    let mut rgb = vec![0.0f32; w * h * 3];
    let mut nir = vec![0.0f32; w * h];
    let mut tir = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (fx, fy) = (x as f32, y as f32);
            let stripe = if id.stripes > 0.0 && !vehicle {
                ((fy / (id.stripes * stripe_scale)) * std::f32::consts::TAU).sin()
            } else {
                0.0
            };
            let shade = match &frame {
                Some(f) => 1.0 - 0.25 * ((fx - f.cx) / (0.2 * f.s * f.wf)).powi(2).min(1.0),
                None => 1.0 - 0.2 * (fy / h as f32),
            };
            let (c, n, t): ([f32; 3], f32, f32) = match canvas.mat[i] {
                Mat::Background => {
                    let tex = value_noise(sc.seed, fx, fy, 6.0) * 0.6
                        + value_noise(sc.seed ^ 1, fx, fy, 2.0) * 0.4;
                    if fy > sc.horizon * h as f32 {
                        let g = sc.ground_rgb.map(|v| v * (0.8 + 0.4 * tex));
                        (
                            g,
                            0.35 + 0.2 * tex,
                            ambient + if shot.night { 0.0 } else { 0.1 } + 0.04 * tex,
                        )
                    } else if sc.vegetation && tex > 0.45 {
                        (
                            [0.15 + 0.1 * tex, 0.45 * (0.7 + tex), 0.12],
                            0.75 + 0.2 * tex,
                            ambient - 0.05,
                        )
                    } else {
                        (
                            sc.wall_rgb.map(|v| v * (0.85 + 0.3 * tex)),
                            0.5 * (0.8 + 0.4 * tex),
                            ambient + 0.03 * tex,
                        )
                    }
                }
                Mat::Skin => (skin, 0.62 + 0.12 * id.skin_tone, core),
                Mat::Hair => (
                    hair,
                    0.2 + 0.45 * id.hair_tone,
                    ambient + 0.55 * (core - ambient),
                ),
                Mat::Upper => {
                    let spot = match &frame {
                        Some(f) if id.hot_spot > 0.0 => {
                            let d = (fy - (f.top + id.hot_spot * f.s)) / (0.06 * f.s);
                            0.15 * (-d * d).exp()
                        }
                        _ => 0.0,
                    };
                    let t = if vehicle {
                        ambient + 0.08
                    } else {
                        ambient + (core - ambient) * (1.0 - 2.0 * insulation) + spot
                    };
                    (
                        upper.map(|v| v * (1.0 + 0.05 * stripe) * shade),
                        id.upper_nir * (1.0 + 0.35 * stripe) * shade,
                        t,
                    )
                }
                Mat::Lower => (
                    lower.map(|v| v * shade),
                    id.lower_nir * shade,
                    ambient + (core - ambient) * if vehicle { 0.1 } else { 0.6 },
                ),
                Mat::Shoes => (shoes, 0.2, ambient + 0.2 * (core - ambient)),
                Mat::Bag => (bag, 0.4, ambient + 0.03),
                Mat::Glasses => (
                    [0.08, 0.08, 0.1],
                    0.62 + 0.12 * id.skin_tone,
                    ambient + 0.08,
                ),
                Mat::Occluder => ([occ_rgb; 3], 0.45, ambient + 0.02),
                Mat::Window => ([0.12, 0.16, 0.22], 0.18, ambient - 0.08),
                Mat::Tyre => ([0.06, 0.06, 0.06], 0.08, ambient + 0.18),
                Mat::Lamp => {
                    let on = if shot.night {
                        [1.0, 1.0, 0.95]
                    } else {
                        [0.85, 0.85, 0.8]
                    };
                    (on, 0.9, ambient + 0.12)
                }
                Mat::Plate => ([0.9, 0.9, 0.85], 1.0, ambient),
                Mat::Engine => (
                    upper.map(|v| v * shade),
                    id.upper_nir * shade,
                    ambient + if id.heat > 0.0 { 0.4 } else { 0.06 },
                ),
            };
            // Lamps are switched on at night: they emit instead of reflecting.
            let lamp_on = shot.night && canvas.mat[i] == Mat::Lamp;
            let light = if lamp_on {
                1.0
            } else if shot.night {
                night_light
            } else {
                day_light
            };
            for ch in 0..3 {
                rgb[i * 3 + ch] = c[ch] * light * if lamp_on { 1.0 } else { tint[ch] };
            }
            // Active NIR illuminator at night: bright centre, fall-off to the edges.
            let nir_light = if shot.night {
                let dx = fx / w as f32 - 0.5;
                let dy = fy / h as f32 - 0.5;
                0.85 - 0.9 * (dx * dx + dy * dy)
            } else {
                0.9
            };
            nir[i] = n * nir_light;
            tir[i] = t;
        }
    }
    let (rgb_sigma, nir_sigma) = if shot.night {
        (0.06, 0.035)
    } else {
        (0.015, 0.02)
    };
    for v in rgb.iter_mut() {
        *v += rgb_sigma * normal(&mut rng);
    }
    for v in nir.iter_mut() {
        *v += nir_sigma * normal(&mut rng);
    }
    // Thermal cameras have a coarse optical resolution.
    box_blur(&mut tir, w, h, 1, 1, 1);
    for v in tir.iter_mut() {
        *v += 0.015 * normal(&mut rng);
    }
    if shot.blurry {
        box_blur(&mut rgb, w, h, 3, 2, 0);
        box_blur(&mut nir, w, h, 1, 2, 0);
        box_blur(&mut tir, w, h, 1, 2, 0);
    }
    let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let rgb_img = RgbImage::from_raw(w as u32, h as u32, rgb.into_iter().map(to_u8).collect())
        .unwrap_or_else(|| RgbImage::new(w as u32, h as u32));
    let nir_img = GrayImage::from_raw(w as u32, h as u32, nir.into_iter().map(to_u8).collect())
        .unwrap_or_else(|| GrayImage::new(w as u32, h as u32));
    let tir_img = GrayImage::from_raw(w as u32, h as u32, tir.into_iter().map(to_u8).collect())
        .unwrap_or_else(|| GrayImage::new(w as u32, h as u32));
    (rgb_img, nir_img, tir_img)
}
