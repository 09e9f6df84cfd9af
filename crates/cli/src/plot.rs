//! PNG pictures drawn with the `image` crate and the built-in bitmap font: line charts (loss, lr,
//! mAP, rank-1), rank-list grids with green/red borders, and expert token-sampling masks (Fig. 9).

use crate::font::{glyph, text_width, ADVANCE, GLYPH_H};
use image::{Rgb, RgbImage};
use std::path::Path;

/// Errors while encoding or writing a picture.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// PNG encoding failed.
    #[error("encoding PNG for {path}: {message}")]
    Encode {
        /// Target file.
        path: String,
        /// Encoder message.
        message: String,
    },
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] next_reid::common::FileError),
}

/// Colour white.
pub const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
/// Colour black.
pub const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
/// Light grey used for grid lines.
pub const GRID: Rgb<u8> = Rgb([225, 225, 225]);
/// Border of a correct match.
pub const GREEN: Rgb<u8> = Rgb([0, 170, 0]);
/// Border of a wrong match.
pub const RED: Rgb<u8> = Rgb([220, 0, 0]);
/// Series colours, in order.
pub const PALETTE: [Rgb<u8>; 6] = [
    Rgb([31, 119, 180]),
    Rgb([255, 127, 14]),
    Rgb([44, 160, 44]),
    Rgb([214, 39, 40]),
    Rgb([148, 103, 189]),
    Rgb([140, 86, 75]),
];

/// Fill an axis-aligned rectangle, clipped to the image.
pub fn fill_rect(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, color: Rgb<u8>) {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    for yy in y.max(0)..(y + h).min(ih) {
        for xx in x.max(0)..(x + w).min(iw) {
            img.put_pixel(xx as u32, yy as u32, color);
        }
    }
}

/// Draw a rectangle outline of the given thickness.
pub fn draw_border(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, t: i64, color: Rgb<u8>) {
    fill_rect(img, x, y, w, t, color);
    fill_rect(img, x, y + h - t, w, t, color);
    fill_rect(img, x, y, t, h, color);
    fill_rect(img, x + w - t, y, t, h, color);
}

/// Draw a line segment (Bresenham) of thickness `t`.
pub fn draw_line(img: &mut RgbImage, p0: (i64, i64), p1: (i64, i64), t: i64, color: Rgb<u8>) {
    let (mut x, mut y) = p0;
    let dx = (p1.0 - x).abs();
    let dy = -(p1.1 - y).abs();
    let sx = if x < p1.0 { 1 } else { -1 };
    let sy = if y < p1.1 { 1 } else { -1 };
    let mut err = dx + dy;
    loop {
        fill_rect(img, x - t / 2, y - t / 2, t, t, color);
        if x == p1.0 && y == p1.1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// Draw `text` with its top-left corner at (x, y), each font pixel `scale` image pixels wide.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: i64, color: Rgb<u8>) {
    for (i, c) in text.chars().enumerate() {
        let gx = x + i as i64 * ADVANCE as i64 * scale;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..5 {
                if bits & (1 << (4 - col)) != 0 {
                    fill_rect(
                        img,
                        gx + col * scale,
                        y + row as i64 * scale,
                        scale,
                        scale,
                        color,
                    );
                }
            }
        }
    }
}

/// Encode an image as PNG and write it atomically.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<(), PlotError> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| PlotError::Encode {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    next_reid::common::write_atomic(path, &bytes)?;
    Ok(())
}

/// One named series of (x, y) points for [`line_chart`].
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points (x ascending); non-finite values are skipped.
    pub points: Vec<(f64, f64)>,
}

/// Compact number formatting for axis ticks.
fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-2..1e4).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// Draw a line chart of one or more series with axes, ticks, title and legend.
pub fn line_chart(title: &str, x_label: &str, series: &[Series]) -> RgbImage {
    let (w, h) = (640i64, 400i64);
    let (left, right, top, bottom) = (70i64, 20i64, 40i64, 50i64);
    let mut img = RgbImage::from_pixel(w as u32, h as u32, WHITE);
    draw_text(&mut img, left, 12, title, 2, BLACK);
    let finite: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let (pw, ph) = (w - left - right, h - top - bottom);
    draw_border(&mut img, left, top, pw, ph, 1, BLACK);
    if finite.is_empty() {
        draw_text(&mut img, left + 10, top + 10, "NO DATA", 2, BLACK);
        return img;
    }
    let (mut x0, mut x1) = finite
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (mut y0, mut y1) = finite
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if x1 - x0 < 1e-12 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9 + y1.abs() * 1e-3);
    y0 -= pad;
    y1 += pad;
    let to_px = |x: f64, y: f64| -> (i64, i64) {
        let px = left + ((x - x0) / (x1 - x0) * (pw - 1) as f64).round() as i64;
        let py = top + ph - 1 - ((y - y0) / (y1 - y0) * (ph - 1) as f64).round() as i64;
        (px, py)
    };
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let (yv, xv) = (y0 + f * (y1 - y0), x0 + f * (x1 - x0));
        let (_, py) = to_px(x0, yv);
        let (px, _) = to_px(xv, y0);
        if i > 0 && i < 4 {
            fill_rect(&mut img, left + 1, py, pw - 2, 1, GRID);
            fill_rect(&mut img, px, top + 1, 1, ph - 2, GRID);
        }
        let yl = tick_label(yv);
        draw_text(
            &mut img,
            left - 6 - text_width(&yl) as i64,
            py - 3,
            &yl,
            1,
            BLACK,
        );
        let xl = tick_label(xv);
        draw_text(
            &mut img,
            px - text_width(&xl) as i64 / 2,
            top + ph + 6,
            &xl,
            1,
            BLACK,
        );
    }
    draw_text(
        &mut img,
        left + pw / 2 - text_width(x_label) as i64,
        h - 22,
        x_label,
        2,
        BLACK,
    );
    for (k, s) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let pts: Vec<(i64, i64)> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| to_px(x, y))
            .collect();
        for pair in pts.windows(2) {
            draw_line(&mut img, pair[0], pair[1], 2, color);
        }
        if pts.len() == 1 {
            fill_rect(&mut img, pts[0].0 - 2, pts[0].1 - 2, 5, 5, color);
        }
        let ly = top + 8 + k as i64 * 14;
        let lx = left + pw - 12 - text_width(&s.name) as i64 - 20;
        fill_rect(&mut img, lx, ly + 2, 14, 3, color);
        draw_text(&mut img, lx + 18, ly, &s.name, 1, BLACK);
    }
    img
}

/// Paste `src` into `dst` at (x, y), clipped.
pub fn paste(dst: &mut RgbImage, src: &RgbImage, x: i64, y: i64) {
    for (sx, sy, p) in src.enumerate_pixels() {
        let (dx, dy) = (x + sx as i64, y + sy as i64);
        if dx >= 0 && dy >= 0 && (dx as u32) < dst.width() && (dy as u32) < dst.height() {
            dst.put_pixel(dx as u32, dy as u32, *p);
        }
    }
}

/// One row of a rank-list grid: the query picture and its ranked gallery pictures.
#[derive(Debug, Clone)]
pub struct RankRow {
    /// Caption above the query (e.g. its id).
    pub label: String,
    /// Query picture (e.g. the three modalities side by side).
    pub query: RgbImage,
    /// Ranked gallery pictures with whether each is a true match.
    pub ranked: Vec<(RgbImage, bool)>,
}

/// Draw rank lists: one row per query, the query first (black border) then the ranked gallery
/// pictures with green (same identity) or red (different identity) borders.
pub fn rank_grid(rows: &[RankRow]) -> RgbImage {
    let border = 4i64;
    let gap = 8i64;
    let label_h = GLYPH_H as i64 + 6;
    let cell_w = rows
        .iter()
        .flat_map(|r| std::iter::once(&r.query).chain(r.ranked.iter().map(|(i, _)| i)))
        .map(|i| i.width() as i64)
        .max()
        .unwrap_or(32)
        + 2 * border;
    let cell_h = rows
        .iter()
        .flat_map(|r| std::iter::once(&r.query).chain(r.ranked.iter().map(|(i, _)| i)))
        .map(|i| i.height() as i64)
        .max()
        .unwrap_or(32)
        + 2 * border;
    let cols = rows.iter().map(|r| 1 + r.ranked.len()).max().unwrap_or(1) as i64;
    let w = gap + cols * (cell_w + gap) + gap;
    let h = gap + rows.len().max(1) as i64 * (cell_h + label_h + gap);
    let mut img = RgbImage::from_pixel(w as u32, h as u32, WHITE);
    for (r, row) in rows.iter().enumerate() {
        let y = gap + r as i64 * (cell_h + label_h + gap);
        draw_text(&mut img, gap, y, &row.label, 1, BLACK);
        let yc = y + label_h;
        draw_border(&mut img, gap, yc, cell_w, cell_h, border, BLACK);
        paste(&mut img, &row.query, gap + border, yc + border);
        for (k, (pic, good)) in row.ranked.iter().enumerate() {
            let x = gap + (k as i64 + 1) * (cell_w + gap) + gap;
            draw_text(&mut img, x, y, &format!("{}", k + 1), 1, BLACK);
            draw_border(
                &mut img,
                x,
                yc,
                cell_w,
                cell_h,
                border,
                if *good { GREEN } else { RED },
            );
            paste(&mut img, pic, x + border, yc + border);
        }
    }
    img
}

/// Darken the tokens a sampling mask drops: `mask` is row-major over a `grid_h x grid_w` patch grid
/// covering `img`; kept tokens stay as they are, dropped ones are dimmed and tinted.
pub fn overlay_mask(img: &RgbImage, mask: &[bool], grid_h: usize, grid_w: usize) -> RgbImage {
    let mut out = img.clone();
    if grid_h == 0 || grid_w == 0 || mask.len() != grid_h * grid_w {
        return out;
    }
    let (w, h) = (img.width() as usize, img.height() as usize);
    for (x, y, p) in out.enumerate_pixels_mut() {
        let gy = (y as usize * grid_h / h.max(1)).min(grid_h - 1);
        let gx = (x as usize * grid_w / w.max(1)).min(grid_w - 1);
        if !mask[gy * grid_w + gx] {
            p.0 = [p.0[0] / 5 + 20, p.0[1] / 5 + 20, p.0[2] / 5 + 60];
        }
    }
    out
}

/// Arrange labelled pictures in a table: `cells[row][col]`, with row and column headers.
pub fn picture_table(
    row_names: &[String],
    col_names: &[String],
    cells: &[Vec<RgbImage>],
) -> RgbImage {
    let gap = 6i64;
    let head_w = row_names
        .iter()
        .map(|n| text_width(n) as i64)
        .max()
        .unwrap_or(0)
        + 2 * gap;
    let cw = cells
        .iter()
        .flatten()
        .map(|i| i.width() as i64)
        .max()
        .unwrap_or(16);
    let ch = cells
        .iter()
        .flatten()
        .map(|i| i.height() as i64)
        .max()
        .unwrap_or(16);
    let head_h = GLYPH_H as i64 + 2 * gap;
    let ncols = col_names
        .len()
        .max(cells.iter().map(Vec::len).max().unwrap_or(0)) as i64;
    let w = head_w + ncols * (cw + gap) + gap;
    let h = head_h + cells.len() as i64 * (ch + gap) + gap;
    let mut img = RgbImage::from_pixel(w.max(1) as u32, h.max(1) as u32, WHITE);
    for (c, name) in col_names.iter().enumerate() {
        draw_text(
            &mut img,
            head_w + c as i64 * (cw + gap),
            gap,
            name,
            1,
            BLACK,
        );
    }
    for (r, row) in cells.iter().enumerate() {
        let y = head_h + r as i64 * (ch + gap);
        if let Some(name) = row_names.get(r) {
            draw_text(&mut img, gap, y + ch / 2 - 3, name, 1, BLACK);
        }
        for (c, pic) in row.iter().enumerate() {
            paste(&mut img, pic, head_w + c as i64 * (cw + gap), y);
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_draws_series_in_palette_colours() {
        let s = vec![
            Series {
                name: "loss".into(),
                points: (0..10).map(|i| (i as f64, 10.0 - i as f64)).collect(),
            },
            Series {
                name: "nan".into(),
                points: vec![(0.0, f64::NAN)],
            },
        ];
        let img = line_chart("LOSS", "STEP", &s);
        let blue = img.pixels().filter(|p| **p == PALETTE[0]).count();
        assert!(blue > 100, "series not drawn: {blue} pixels");
        let empty = line_chart("EMPTY", "X", &[]);
        assert_eq!(empty.dimensions(), (640, 400));
    }

    #[test]
    fn rank_grid_borders_are_green_for_matches_and_red_otherwise() {
        let pic = RgbImage::from_pixel(10, 20, Rgb([128, 128, 128]));
        let rows = vec![RankRow {
            label: "Q 1".into(),
            query: pic.clone(),
            ranked: vec![(pic.clone(), true), (pic.clone(), false)],
        }];
        let img = rank_grid(&rows);
        assert!(img.pixels().any(|p| *p == GREEN));
        assert!(img.pixels().any(|p| *p == RED));
    }

    #[test]
    fn mask_overlay_dims_only_dropped_tokens() {
        let pic = RgbImage::from_pixel(4, 4, Rgb([200, 200, 200]));
        let out = overlay_mask(&pic, &[true, false, false, true], 2, 2);
        assert_eq!(out.get_pixel(0, 0), &Rgb([200, 200, 200]));
        assert_ne!(out.get_pixel(3, 0), &Rgb([200, 200, 200]));
        assert_eq!(out.get_pixel(3, 3), &Rgb([200, 200, 200]));
    }
}
