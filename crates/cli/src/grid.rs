//! Image grids assembled with the `image` crate: rank lists with green/red borders and tables
//! of labelled pictures (expert token-sampling masks of Fig. 9), captioned in the embedded font.

use crate::font::text_size;
use crate::plot::{draw_text, PlotError, BLACK, GREEN, RED, WHITE};
use image::{Rgb, RgbImage};

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

/// Size in pixels of the captions of image grids.
const CAPTION_SIZE: f64 = 14.0;

/// Largest width and height of `pictures` (`fallback` when there are none).
fn largest(pictures: impl Iterator<Item = (u32, u32)>, fallback: i64) -> (i64, i64) {
    pictures
        .map(|(w, h)| (w as i64, h as i64))
        .reduce(|a, b| (a.0.max(b.0), a.1.max(b.1)))
        .unwrap_or((fallback, fallback))
}

/// Draw rank lists: one row per query, its caption on top, then the query (black border) and
/// the ranked gallery pictures with green (same identity) or red (different identity) borders,
/// each numbered with its rank underneath.
pub fn rank_grid(rows: &[RankRow]) -> Result<RgbImage, PlotError> {
    let border = 4i64;
    let gap = 8i64;
    let (_, text_h) = text_size("Query 0", CAPTION_SIZE)?;
    let line_h = text_h as i64 + 6;
    let (pic_w, pic_h) = largest(
        rows.iter()
            .flat_map(|r| std::iter::once(&r.query).chain(r.ranked.iter().map(|(i, _)| i)))
            .map(|i| i.dimensions()),
        32,
    );
    let (cell_w, cell_h) = (pic_w + 2 * border, pic_h + 2 * border);
    let row_h = line_h + cell_h + line_h + gap;
    let cols = rows.iter().map(|r| 1 + r.ranked.len()).max().unwrap_or(1) as i64;
    let w = gap + cols * (cell_w + gap) + gap;
    let h = gap + rows.len().max(1) as i64 * row_h;
    let mut img = RgbImage::from_pixel(w as u32, h as u32, WHITE);
    for (r, row) in rows.iter().enumerate() {
        let y = gap + r as i64 * row_h;
        draw_text(
            &mut img,
            gap as i32,
            y as i32,
            &row.label,
            CAPTION_SIZE,
            BLACK,
        )?;
        let yc = y + line_h;
        draw_border(&mut img, gap, yc, cell_w, cell_h, border, BLACK);
        paste(&mut img, &row.query, gap + border, yc + border);
        draw_text(
            &mut img,
            gap as i32,
            (yc + cell_h + 3) as i32,
            "query",
            CAPTION_SIZE,
            BLACK,
        )?;
        for (k, (pic, good)) in row.ranked.iter().enumerate() {
            let x = gap + (k as i64 + 1) * (cell_w + gap) + gap;
            let color = if *good { GREEN } else { RED };
            draw_border(&mut img, x, yc, cell_w, cell_h, border, color);
            paste(&mut img, pic, x + border, yc + border);
            let rank = format!("{}", k + 1);
            let (rank_w, _) = text_size(&rank, CAPTION_SIZE)?;
            let rank_x = x + (cell_w - rank_w as i64) / 2;
            draw_text(
                &mut img,
                rank_x as i32,
                (yc + cell_h + 3) as i32,
                &rank,
                CAPTION_SIZE,
                BLACK,
            )?;
        }
    }
    Ok(img)
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
) -> Result<RgbImage, PlotError> {
    let gap = 8i64;
    let mut head_w = 0i64;
    for name in row_names {
        head_w = head_w.max(text_size(name, CAPTION_SIZE)?.0 as i64);
    }
    let mut col_w = 0i64;
    for name in col_names {
        col_w = col_w.max(text_size(name, CAPTION_SIZE)?.0 as i64);
    }
    let (pic_w, ch) = largest(cells.iter().flatten().map(|i| i.dimensions()), 16);
    let cw = pic_w.max(col_w);
    let (_, text_h) = text_size("Expert 1", CAPTION_SIZE)?;
    let head_w = head_w + 2 * gap;
    let head_h = text_h as i64 + 2 * gap;
    let ncols = col_names
        .len()
        .max(cells.iter().map(Vec::len).max().unwrap_or(0)) as i64;
    let w = head_w + ncols * (cw + gap) + gap;
    let h = head_h + cells.len() as i64 * (ch + gap) + gap;
    let mut img = RgbImage::from_pixel(w.max(1) as u32, h.max(1) as u32, WHITE);
    for (c, name) in col_names.iter().enumerate() {
        let x = head_w + c as i64 * (cw + gap);
        draw_text(&mut img, x as i32, gap as i32, name, CAPTION_SIZE, BLACK)?;
    }
    for (r, row) in cells.iter().enumerate() {
        let y = head_h + r as i64 * (ch + gap);
        if let Some(name) = row_names.get(r) {
            let text_y = y + (ch - text_h as i64) / 2;
            draw_text(
                &mut img,
                gap as i32,
                text_y as i32,
                name,
                CAPTION_SIZE,
                BLACK,
            )?;
        }
        for (c, pic) in row.iter().enumerate() {
            paste(&mut img, pic, head_w + c as i64 * (cw + gap), y);
        }
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_grid_borders_are_green_for_matches_and_red_otherwise() {
        let pic = RgbImage::from_pixel(10, 20, Rgb([128, 128, 128]));
        let rows = vec![RankRow {
            label: "Q 1".into(),
            query: pic.clone(),
            ranked: vec![(pic.clone(), true), (pic.clone(), false)],
        }];
        let img = rank_grid(&rows).unwrap();
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
