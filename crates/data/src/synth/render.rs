//! Rendering of synthetic identities in three aligned modalities. Shapes are painted into a
//! material map once; each modality then shades the materials with its own physics (visible
//! colour and illumination, NIR reflectance and active illumination, thermal emission).

use super::identity::{bag_visible, Identity, Shot, PALETTE, UPPER, VEHICLES};
use crate::transform::mix_seed;
use image::{GrayImage, RgbImage};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Surface materials of the material map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mat {
    Background,
    Skin,
    Hair,
    Upper,
    Lower,
    Shoes,
    Bag,
    Glasses,
    Occluder,
    Window,
    Tyre,
    Lamp,
    Plate,
    Engine,
}

struct Canvas {
    w: usize,
    h: usize,
    mat: Vec<Mat>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Self { w, h, mat: vec![Mat::Background; w * h] }
    }

    fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, m: Mat) {
        let xa = x0.round().max(0.0) as usize;
        let xb = (x1.round().max(0.0) as usize).min(self.w);
        let ya = y0.round().max(0.0) as usize;
        let yb = (y1.round().max(0.0) as usize).min(self.h);
        for y in ya..yb {
            for x in xa..xb {
                self.mat[y * self.w + x] = m;
            }
        }
    }

    fn ellipse(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, m: Mat, max_y: f32) {
        let ya = (cy - ry).floor().max(0.0) as usize;
        let yb = ((cy + ry).ceil().max(0.0) as usize).min(self.h);
        let xa = (cx - rx).floor().max(0.0) as usize;
        let xb = ((cx + rx).ceil().max(0.0) as usize).min(self.w);
        for y in ya..yb {
            let fy = y as f32 + 0.5;
            if fy > max_y {
                break;
            }
            for x in xa..xb {
                let dx = (x as f32 + 0.5 - cx) / rx;
                let dy = (fy - cy) / ry;
                if dx * dx + dy * dy <= 1.0 {
                    self.mat[y * self.w + x] = m;
                }
            }
        }
    }
}

/// Geometry of the person in one shot, in pixels.
struct PersonFrame {
    cx: f32,
    top: f32,
    s: f32,
    wf: f32,
}

fn paint_person(c: &mut Canvas, id: &Identity, shot: &Shot, rng: &mut SmallRng) -> PersonFrame {
    let (w, h) = (c.w as f32, c.h as f32);
    let s = h * 0.86 * id.height * rng.random_range(0.92..1.0);
    let top = (h - s) * rng.random_range(0.2..0.8);
    let cx = w * (0.5 + rng.random_range(-0.07..0.07));
    let side = shot.view == 2;
    let wf = id.width * if side { 0.62 } else { 1.0 };
    let y = |f: f32| top + f * s;
    let tw = 0.125 * s * wf;
    let lower_end = if UPPER[id.upper_type].0 == "coat" { 0.68 } else { 0.52 };
    // Behind the body: side backpack, long hair seen from the front.
    if side && id.bag == 1 {
        c.rect(cx - tw - 0.08 * s, y(0.17), cx - tw + 2.0, y(0.44), Mat::Bag);
    }
    if id.hair == 2 && shot.view == 0 {
        c.rect(cx - 0.065 * s, y(0.06), cx + 0.065 * s, y(0.27), Mat::Hair);
    }
    // Legs and shoes.
    let leg_dx = if side { 0.02 * s } else { 0.048 * s * id.width };
    let stride = if side { rng.random_range(-0.05..0.05) * s } else { 0.0 };
    for (k, dx) in [-leg_dx, leg_dx].into_iter().enumerate() {
        let lx = cx + dx + if k == 0 { stride } else { -stride };
        let hw = 0.04 * s;
        let covered = match id.lower_type {
            0 => 0.93,
            1 => 0.66,
            _ => 0.52,
        };
        c.rect(lx - hw, y(0.5), lx + hw, y(covered), Mat::Lower);
        c.rect(lx - hw * 0.85, y(covered), lx + hw * 0.85, y(0.93), Mat::Skin);
        let shoe_top = if id.shoes == 2 { 0.965 } else { 0.93 };
        c.rect(lx - hw * 1.1, y(shoe_top), lx + hw * 1.1, y(0.995), Mat::Shoes);
    }
    if id.lower_type == 2 {
        c.rect(cx - tw * 1.05, y(0.48), cx + tw * 1.05, y(0.7), Mat::Lower);
    }
    // Arms (behind the torso edge), sleeves by garment type.
    let sleeve = UPPER[id.upper_type].1;
    let arm_xs: Vec<f32> = if side { vec![cx + rng.random_range(-0.04..0.04) * s] } else { vec![cx - tw - 0.03 * s, cx + tw + 0.03 * s] };
    let draw_arms = |c: &mut Canvas| {
        for &ax in &arm_xs {
            let hw = 0.032 * s;
            let sleeve_end = 0.15 + sleeve * 0.32;
            c.rect(ax - hw, y(0.15), ax + hw, y(sleeve_end), Mat::Upper);
            c.rect(ax - hw * 0.85, y(sleeve_end), ax + hw * 0.85, y(0.47), Mat::Skin);
            c.rect(ax - hw, y(0.47), ax + hw, y(0.51), Mat::Skin);
        }
    };
    if !side {
        draw_arms(c);
    }
    // Torso and neck.
    c.rect(cx - 0.025 * s, y(0.11), cx + 0.025 * s, y(0.15), Mat::Skin);
    c.rect(cx - tw, y(0.14), cx + tw, y(lower_end), Mat::Upper);
    if side {
        draw_arms(c);
    }
    // Head, hair, glasses.
    let (hcx, hcy, hrx, hry) = (cx, y(0.072), 0.05 * s, 0.066 * s);
    c.ellipse(hcx, hcy, hrx, hry, Mat::Skin, f32::MAX);
    match shot.view {
        1 => {
            c.ellipse(hcx, hcy, hrx * 1.08, hry * 1.05, Mat::Hair, f32::MAX);
            if id.hair == 2 {
                c.rect(cx - 0.06 * s, y(0.07), cx + 0.06 * s, y(0.27), Mat::Hair);
            } else if id.hair == 1 {
                c.rect(cx - 0.05 * s, y(0.07), cx + 0.05 * s, y(0.16), Mat::Hair);
            }
        }
        _ => {
            let cap = hcy - hry * if id.hair == 0 { 0.35 } else { 0.2 };
            c.ellipse(hcx, hcy, hrx * 1.08, hry * 1.05, Mat::Hair, cap);
            if side {
                c.rect(hcx - hrx * 1.05, hcy - hry * 0.6, hcx - hrx * 0.2, hcy + hry * 0.5, Mat::Hair);
            }
        }
    }
    if id.glasses && shot.view != 1 {
        let gy = hcy - 0.008 * s;
        let (gw, gh) = (0.024 * s, 0.014 * s);
        if side {
            c.rect(hcx + hrx * 0.2, gy - gh, hcx + hrx * 0.2 + gw, gy + gh, Mat::Glasses);
        } else {
            for ex in [hcx - 0.022 * s, hcx + 0.022 * s] {
                c.rect(ex - gw / 2.0, gy - gh, ex + gw / 2.0, gy + gh, Mat::Glasses);
            }
        }
    }
    // Carried items in front.
    if bag_visible(id, shot.view) {
        match (id.bag, shot.view) {
            (1, 1) => c.rect(cx - 0.1 * s * wf, y(0.17), cx + 0.1 * s * wf, y(0.45), Mat::Bag),
            (2, _) => {
                let bx = if side { cx + 0.02 * s } else { cx + tw + 0.02 * s };
                c.rect(bx, y(0.42), bx + 0.08 * s, y(0.56), Mat::Bag);
            }
            _ => {}
        }
    } else if id.bag == 1 {
        for sx in [cx - 0.07 * s, cx + 0.07 * s] {
            c.rect(sx - 0.012 * s, y(0.14), sx + 0.012 * s, y(0.3), Mat::Bag);
        }
    }
    PersonFrame { cx, top, s, wf }
}

fn paint_vehicle(c: &mut Canvas, id: &Identity, shot: &Shot, rng: &mut SmallRng) {
    let (w, h) = (c.w as f32, c.h as f32);
    let (_, body_h, cabin_frac) = VEHICLES[id.upper_type];
    let bottom = h * rng.random_range(0.86..0.95);
    let bh = body_h * h * rng.random_range(0.95..1.05);
    if shot.view == 2 {
        let len = w * rng.random_range(0.78..0.9);
        let x0 = (w - len) * rng.random_range(0.3..0.7);
        let lower_top = bottom - 0.12 * h - bh * 0.55;
        c.rect(x0, lower_top, x0 + len, bottom - 0.1 * h, Mat::Upper);
        c.rect(x0 + len * 0.72, lower_top, x0 + len, bottom - 0.1 * h, Mat::Engine);
        let cab_len = len * cabin_frac;
        let cab_x = x0 + len * 0.12;
        let roof = lower_top - bh * 0.5;
        match id.lower_type {
            0 => c.ellipse(cab_x + cab_len / 2.0, lower_top, cab_len / 2.0, bh * 0.5, Mat::Upper, lower_top),
            1 => {
                for i in 0..8 {
                    let t = i as f32 / 8.0;
                    let inset = cab_len * 0.18 * (1.0 - t);
                    let yy = roof + t * (lower_top - roof);
                    c.rect(cab_x + inset, yy, cab_x + cab_len - inset * 0.6, yy + (lower_top - roof) / 8.0 + 1.0, Mat::Upper);
                }
            }
            _ => c.rect(cab_x, roof, cab_x + cab_len, lower_top, Mat::Upper),
        }
        c.rect(cab_x + cab_len * 0.12, roof + bh * 0.1, cab_x + cab_len * 0.88, lower_top - 1.0, Mat::Window);
        if id.glasses {
            c.rect(cab_x + cab_len * 0.1, roof - 0.04 * h, cab_x + cab_len * 0.9, roof - 0.01 * h, Mat::Lower);
        }
        if id.bag == 1 {
            c.rect(x0, lower_top - 0.05 * h, x0 + len * 0.1, lower_top, Mat::Lower);
        }
        let r = 0.11 * h;
        for fx in [0.2, 0.8] {
            c.ellipse(x0 + len * fx, bottom - r, r, r, Mat::Tyre, f32::MAX);
        }
        c.rect(x0 + len - 0.04 * w, lower_top + 2.0, x0 + len, lower_top + 0.08 * h, Mat::Lamp);
    } else {
        let bw = w * rng.random_range(0.5..0.6) * (0.9 + body_h * 0.3);
        let x0 = (w - bw) * rng.random_range(0.35..0.65);
        let top = bottom - bh * 1.6;
        c.rect(x0, top + bh * 0.6, x0 + bw, bottom - 0.06 * h, Mat::Upper);
        let inset = if id.lower_type == 2 { 0.04 } else { 0.12 };
        c.rect(x0 + bw * inset, top, x0 + bw * (1.0 - inset), top + bh * 0.62, Mat::Upper);
        c.rect(x0 + bw * (inset + 0.05), top + bh * 0.08, x0 + bw * (0.95 - inset), top + bh * 0.58, Mat::Window);
        if id.glasses {
            c.rect(x0 + bw * 0.15, top - 0.04 * h, x0 + bw * 0.85, top - 0.01 * h, Mat::Lower);
        }
        for lx in [x0 + bw * 0.04, x0 + bw * 0.78] {
            c.rect(lx, top + bh * 0.75, lx + bw * 0.18, top + bh * 0.9, Mat::Lamp);
        }
        if shot.view == 0 {
            c.rect(x0 + bw * 0.3, top + bh * 0.75, x0 + bw * 0.7, top + bh * 0.95, Mat::Engine);
        }
        c.rect(x0 + bw * 0.38, bottom - 0.06 * h - bh * 0.25, x0 + bw * 0.62, bottom - 0.06 * h - bh * 0.1, Mat::Plate);
        for tx in [x0, x0 + bw * 0.85] {
            c.rect(tx, bottom - 0.08 * h, tx + bw * 0.15, bottom, Mat::Tyre);
        }
    }
}

/// Value noise in [0, 1] on a lattice of `cell` pixels.
fn value_noise(seed: u64, x: f32, y: f32, cell: f32) -> f32 {
    let (gx, gy) = (x / cell, y / cell);
    let (ix, iy) = (gx.floor(), gy.floor());
    let (fx, fy) = (gx - ix, gy - iy);
    let corner = |dx: f32, dy: f32| {
        (mix_seed(&[seed, (ix + dx) as i64 as u64, (iy + dy) as i64 as u64]) >> 40) as f32 / (1u64 << 24) as f32
    };
    let (a, b, c, d) = (corner(0.0, 0.0), corner(1.0, 0.0), corner(0.0, 1.0), corner(1.0, 1.0));
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
        wall_rgb: [grey + rng.random_range(-0.1..0.1), grey, grey + rng.random_range(-0.1..0.1)],
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
pub fn render_triplet(id: &Identity, shot: &Shot, vehicle: bool, size: [u32; 2], world_seed: u64) -> (RgbImage, GrayImage, GrayImage) {
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
            canvas.rect(0.0, h as f32 * rng.random_range(0.75..0.9), w as f32, h as f32, Mat::Occluder);
        }
    }
    let sc = scene(world_seed, shot.camera);
    let day_light = rng.random_range(0.8..1.1);
    let night_light = rng.random_range(0.16..0.3);
    let tint = if shot.night { [1.0, 0.78, 0.5] } else { [1.0, 1.0, 1.0] };
    let ambient = if shot.night { 0.22 } else { 0.42 } + rng.random_range(-0.04..0.04);
    let core = 0.88 + id.heat * 0.6;
    let upper = PALETTE[id.upper_colour].rgb;
    let lower = PALETTE[id.lower_colour].rgb;
    let bag = PALETTE[id.bag_colour].rgb;
    let skin = [0.95 * id.skin_tone + 0.05, 0.75 * id.skin_tone + 0.05, 0.6 * id.skin_tone + 0.05];
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
                    let tex = value_noise(sc.seed, fx, fy, 6.0) * 0.6 + value_noise(sc.seed ^ 1, fx, fy, 2.0) * 0.4;
                    if fy > sc.horizon * h as f32 {
                        let g = sc.ground_rgb.map(|v| v * (0.8 + 0.4 * tex));
                        (g, 0.35 + 0.2 * tex, ambient + if shot.night { 0.0 } else { 0.1 } + 0.04 * tex)
                    } else if sc.vegetation && tex > 0.45 {
                        ([0.15 + 0.1 * tex, 0.45 * (0.7 + tex), 0.12], 0.75 + 0.2 * tex, ambient - 0.05)
                    } else {
                        (sc.wall_rgb.map(|v| v * (0.85 + 0.3 * tex)), 0.5 * (0.8 + 0.4 * tex), ambient + 0.03 * tex)
                    }
                }
                Mat::Skin => (skin, 0.62 + 0.12 * id.skin_tone, core),
                Mat::Hair => (hair, 0.2 + 0.45 * id.hair_tone, ambient + 0.55 * (core - ambient)),
                Mat::Upper => {
                    let spot = match &frame {
                        Some(f) if id.hot_spot > 0.0 => {
                            let d = (fy - (f.top + id.hot_spot * f.s)) / (0.06 * f.s);
                            0.15 * (-d * d).exp()
                        }
                        _ => 0.0,
                    };
                    let t = if vehicle { ambient + 0.08 } else { ambient + (core - ambient) * (1.0 - 2.0 * insulation) + spot };
                    (upper.map(|v| v * (1.0 + 0.05 * stripe) * shade), id.upper_nir * (1.0 + 0.35 * stripe) * shade, t)
                }
                Mat::Lower => (lower.map(|v| v * shade), id.lower_nir * shade, ambient + (core - ambient) * if vehicle { 0.1 } else { 0.6 }),
                Mat::Shoes => (shoes, 0.2, ambient + 0.2 * (core - ambient)),
                Mat::Bag => (bag, 0.4, ambient + 0.03),
                Mat::Glasses => ([0.08, 0.08, 0.1], 0.62 + 0.12 * id.skin_tone, ambient + 0.08),
                Mat::Occluder => ([occ_rgb; 3], 0.45, ambient + 0.02),
                Mat::Window => ([0.12, 0.16, 0.22], 0.18, ambient - 0.08),
                Mat::Tyre => ([0.06, 0.06, 0.06], 0.08, ambient + 0.18),
                Mat::Lamp => {
                    let on = if shot.night { [1.0, 1.0, 0.95] } else { [0.85, 0.85, 0.8] };
                    (on, 0.9, ambient + 0.12)
                }
                Mat::Plate => ([0.9, 0.9, 0.85], 1.0, ambient),
                Mat::Engine => (upper.map(|v| v * shade), id.upper_nir * shade, ambient + if id.heat > 0.0 { 0.4 } else { 0.06 }),
            };
            // Lamps are switched on at night: they emit instead of reflecting.
            let lamp_on = shot.night && canvas.mat[i] == Mat::Lamp;
            let light = if lamp_on { 1.0 } else if shot.night { night_light } else { day_light };
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
    let (rgb_sigma, nir_sigma) = if shot.night { (0.06, 0.035) } else { (0.015, 0.02) };
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
