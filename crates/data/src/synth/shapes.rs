//! Painting identities as shapes into a material map (persons and vehicles, per view).

use super::identity::{bag_visible, Identity, Shot, UPPER, VEHICLES};
use rand::rngs::SmallRng;
use rand::Rng;

/// Surface materials of the material map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Mat {
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

pub(crate) struct Canvas {
    pub(crate) w: usize,
    pub(crate) h: usize,
    pub(crate) mat: Vec<Mat>,
}

impl Canvas {
    pub(crate) fn new(w: usize, h: usize) -> Self {
        Self {
            w,
            h,
            mat: vec![Mat::Background; w * h],
        }
    }

    pub(crate) fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, m: Mat) {
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

    pub(crate) fn ellipse(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, m: Mat, max_y: f32) {
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
pub(crate) struct PersonFrame {
    pub(crate) cx: f32,
    pub(crate) top: f32,
    pub(crate) s: f32,
    pub(crate) wf: f32,
}

pub(crate) fn paint_person(
    c: &mut Canvas,
    id: &Identity,
    shot: &Shot,
    rng: &mut SmallRng,
) -> PersonFrame {
    let (w, h) = (c.w as f32, c.h as f32);
    let s = h * 0.86 * id.height * rng.random_range(0.92..1.0);
    let top = (h - s) * rng.random_range(0.2..0.8);
    let cx = w * (0.5 + rng.random_range(-0.07..0.07));
    let side = shot.view == 2;
    let wf = id.width * if side { 0.62 } else { 1.0 };
    let y = |f: f32| top + f * s;
    let tw = 0.125 * s * wf;
    let lower_end = if UPPER[id.upper_type].0 == "coat" {
        0.68
    } else {
        0.52
    };
    // Behind the body: side backpack, long hair seen from the front.
    if side && id.bag == 1 {
        c.rect(
            cx - tw - 0.08 * s,
            y(0.17),
            cx - tw + 2.0,
            y(0.44),
            Mat::Bag,
        );
    }
    if id.hair == 2 && shot.view == 0 {
        c.rect(cx - 0.065 * s, y(0.06), cx + 0.065 * s, y(0.27), Mat::Hair);
    }
    // Legs and shoes.
    let leg_dx = if side { 0.02 * s } else { 0.048 * s * id.width };
    let stride = if side {
        rng.random_range(-0.05..0.05) * s
    } else {
        0.0
    };
    for (k, dx) in [-leg_dx, leg_dx].into_iter().enumerate() {
        let lx = cx + dx + if k == 0 { stride } else { -stride };
        let hw = 0.04 * s;
        let covered = match id.lower_type {
            0 => 0.93,
            1 => 0.66,
            _ => 0.52,
        };
        c.rect(lx - hw, y(0.5), lx + hw, y(covered), Mat::Lower);
        c.rect(
            lx - hw * 0.85,
            y(covered),
            lx + hw * 0.85,
            y(0.93),
            Mat::Skin,
        );
        let shoe_top = if id.shoes == 2 { 0.965 } else { 0.93 };
        c.rect(
            lx - hw * 1.1,
            y(shoe_top),
            lx + hw * 1.1,
            y(0.995),
            Mat::Shoes,
        );
    }
    if id.lower_type == 2 {
        c.rect(cx - tw * 1.05, y(0.48), cx + tw * 1.05, y(0.7), Mat::Lower);
    }
    // Arms (behind the torso edge), sleeves by garment type.
    let sleeve = UPPER[id.upper_type].1;
    let arm_xs: Vec<f32> = if side {
        vec![cx + rng.random_range(-0.04..0.04) * s]
    } else {
        vec![cx - tw - 0.03 * s, cx + tw + 0.03 * s]
    };
    let draw_arms = |c: &mut Canvas| {
        for &ax in &arm_xs {
            let hw = 0.032 * s;
            let sleeve_end = 0.15 + sleeve * 0.32;
            c.rect(ax - hw, y(0.15), ax + hw, y(sleeve_end), Mat::Upper);
            c.rect(
                ax - hw * 0.85,
                y(sleeve_end),
                ax + hw * 0.85,
                y(0.47),
                Mat::Skin,
            );
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
                c.rect(
                    hcx - hrx * 1.05,
                    hcy - hry * 0.6,
                    hcx - hrx * 0.2,
                    hcy + hry * 0.5,
                    Mat::Hair,
                );
            }
        }
    }
    if id.glasses && shot.view != 1 {
        let gy = hcy - 0.008 * s;
        let (gw, gh) = (0.024 * s, 0.014 * s);
        if side {
            c.rect(
                hcx + hrx * 0.2,
                gy - gh,
                hcx + hrx * 0.2 + gw,
                gy + gh,
                Mat::Glasses,
            );
        } else {
            for ex in [hcx - 0.022 * s, hcx + 0.022 * s] {
                c.rect(ex - gw / 2.0, gy - gh, ex + gw / 2.0, gy + gh, Mat::Glasses);
            }
        }
    }
    // Carried items in front.
    if bag_visible(id, shot.view) {
        match (id.bag, shot.view) {
            (1, 1) => c.rect(
                cx - 0.1 * s * wf,
                y(0.17),
                cx + 0.1 * s * wf,
                y(0.45),
                Mat::Bag,
            ),
            (2, _) => {
                let bx = if side {
                    cx + 0.02 * s
                } else {
                    cx + tw + 0.02 * s
                };
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

pub(crate) fn paint_vehicle(c: &mut Canvas, id: &Identity, shot: &Shot, rng: &mut SmallRng) {
    let (w, h) = (c.w as f32, c.h as f32);
    let (_, body_h, cabin_frac) = VEHICLES[id.upper_type];
    let bottom = h * rng.random_range(0.86..0.95);
    let bh = body_h * h * rng.random_range(0.95..1.05);
    if shot.view == 2 {
        let len = w * rng.random_range(0.78..0.9);
        let x0 = (w - len) * rng.random_range(0.3..0.7);
        let lower_top = bottom - 0.12 * h - bh * 0.55;
        c.rect(x0, lower_top, x0 + len, bottom - 0.1 * h, Mat::Upper);
        c.rect(
            x0 + len * 0.72,
            lower_top,
            x0 + len,
            bottom - 0.1 * h,
            Mat::Engine,
        );
        let cab_len = len * cabin_frac;
        let cab_x = x0 + len * 0.12;
        let roof = lower_top - bh * 0.5;
        match id.lower_type {
            0 => c.ellipse(
                cab_x + cab_len / 2.0,
                lower_top,
                cab_len / 2.0,
                bh * 0.5,
                Mat::Upper,
                lower_top,
            ),
            1 => {
                for i in 0..8 {
                    let t = i as f32 / 8.0;
                    let inset = cab_len * 0.18 * (1.0 - t);
                    let yy = roof + t * (lower_top - roof);
                    c.rect(
                        cab_x + inset,
                        yy,
                        cab_x + cab_len - inset * 0.6,
                        yy + (lower_top - roof) / 8.0 + 1.0,
                        Mat::Upper,
                    );
                }
            }
            _ => c.rect(cab_x, roof, cab_x + cab_len, lower_top, Mat::Upper),
        }
        c.rect(
            cab_x + cab_len * 0.12,
            roof + bh * 0.1,
            cab_x + cab_len * 0.88,
            lower_top - 1.0,
            Mat::Window,
        );
        if id.glasses {
            c.rect(
                cab_x + cab_len * 0.1,
                roof - 0.04 * h,
                cab_x + cab_len * 0.9,
                roof - 0.01 * h,
                Mat::Lower,
            );
        }
        if id.bag == 1 {
            c.rect(
                x0,
                lower_top - 0.05 * h,
                x0 + len * 0.1,
                lower_top,
                Mat::Lower,
            );
        }
        let r = 0.11 * h;
        for fx in [0.2, 0.8] {
            c.ellipse(x0 + len * fx, bottom - r, r, r, Mat::Tyre, f32::MAX);
        }
        c.rect(
            x0 + len - 0.04 * w,
            lower_top + 2.0,
            x0 + len,
            lower_top + 0.08 * h,
            Mat::Lamp,
        );
    } else {
        let bw = w * rng.random_range(0.5..0.6) * (0.9 + body_h * 0.3);
        let x0 = (w - bw) * rng.random_range(0.35..0.65);
        let top = bottom - bh * 1.6;
        c.rect(x0, top + bh * 0.6, x0 + bw, bottom - 0.06 * h, Mat::Upper);
        let inset = if id.lower_type == 2 { 0.04 } else { 0.12 };
        c.rect(
            x0 + bw * inset,
            top,
            x0 + bw * (1.0 - inset),
            top + bh * 0.62,
            Mat::Upper,
        );
        c.rect(
            x0 + bw * (inset + 0.05),
            top + bh * 0.08,
            x0 + bw * (0.95 - inset),
            top + bh * 0.58,
            Mat::Window,
        );
        if id.glasses {
            c.rect(
                x0 + bw * 0.15,
                top - 0.04 * h,
                x0 + bw * 0.85,
                top - 0.01 * h,
                Mat::Lower,
            );
        }
        for lx in [x0 + bw * 0.04, x0 + bw * 0.78] {
            c.rect(
                lx,
                top + bh * 0.75,
                lx + bw * 0.18,
                top + bh * 0.9,
                Mat::Lamp,
            );
        }
        if shot.view == 0 {
            c.rect(
                x0 + bw * 0.3,
                top + bh * 0.75,
                x0 + bw * 0.7,
                top + bh * 0.95,
                Mat::Engine,
            );
        }
        c.rect(
            x0 + bw * 0.38,
            bottom - 0.06 * h - bh * 0.25,
            x0 + bw * 0.62,
            bottom - 0.06 * h - bh * 0.1,
            Mat::Plate,
        );
        for tx in [x0, x0 + bw * 0.85] {
            c.rect(tx, bottom - 0.08 * h, tx + bw * 0.15, bottom, Mat::Tyre);
        }
    }
}
