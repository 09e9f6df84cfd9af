//! Charts drawn with plotters' bitmap backend (line charts of loss, lr, mAP and rank-1; grouped
//! bar charts of the missing-modality settings), the colours and text drawing shared with the image
//! grids of [`crate::grid`], and PNG writing. All text is in the embedded font of [`crate::font`].

use crate::font::font;
use image::{Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
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
    /// The embedded font could not be loaded or measured.
    #[error("font: {message}")]
    Font {
        /// What went wrong.
        message: String,
    },
    /// Drawing a chart or caption failed.
    #[error("drawing a picture: {message}")]
    Draw {
        /// The drawing library's message.
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
/// White as a plotters colour.
const WHITE_RGB: RGBColor = RGBColor(255, 255, 255);
/// Black as a plotters colour.
const BLACK_RGB: RGBColor = RGBColor(0, 0, 0);
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

/// Draw `text` in the embedded font, `size` pixels high, with its top-left corner at (x, y).
pub fn draw_text(
    img: &mut RgbImage,
    x: i32,
    y: i32,
    text: &str,
    size: f64,
    color: Rgb<u8>,
) -> Result<(), PlotError> {
    let style = font(size)?.color(&plotters_rgb(color));
    let (w, h) = img.dimensions();
    let buffer: &mut [u8] = img;
    let area = BitMapBackend::with_buffer(buffer, (w, h)).into_drawing_area();
    area.draw_text(text, &style, (x, y)).map_err(draw_error)?;
    area.present().map_err(draw_error)
}

/// The plotters colour of an `image` colour.
fn plotters_rgb(c: Rgb<u8>) -> RGBColor {
    RGBColor(c.0[0], c.0[1], c.0[2])
}

/// A plotters drawing error as a [`PlotError`].
fn draw_error(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw {
        message: e.to_string(),
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

/// Width and height in pixels of every chart.
pub const CHART_SIZE: (u32, u32) = (800, 480);

/// Series with at most this many points also get a dot at each point (epoch curves).
const MARKER_LIMIT: usize = 40;

/// The finite points of a series.
fn finite_points(series: &Series) -> Vec<(f64, f64)> {
    series
        .points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// The span of `values` (0..1 when there are none) widened so that it is never empty and, when `pad` is set, with 5% of room
/// on both sides.
fn axis_range(values: impl Iterator<Item = f64>, pad: bool) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return 0.0..1.0;
    }
    if hi - lo < 1e-12 {
        let half = (lo.abs() * 0.05).max(0.5);
        return (lo - half)..(hi + half);
    }
    let room = if pad { (hi - lo) * 0.05 } else { 0.0 };
    (lo - room)..(hi + room)
}

/// The legend corner that covers the fewest points: upper right unless the curves end high.
fn legend_corner(
    points: &[(f64, f64)],
    x: &std::ops::Range<f64>,
    y: &std::ops::Range<f64>,
) -> SeriesLabelPosition {
    let right_third = x.start + (x.end - x.start) * 2.0 / 3.0;
    let middle = (y.start + y.end) / 2.0;
    let (high, low) =
        points
            .iter()
            .filter(|p| p.0 >= right_third)
            .fold((0usize, 0usize), |(h, l), p| {
                if p.1 > middle {
                    (h + 1, l)
                } else {
                    (h, l + 1)
                }
            });
    if high > low {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    }
}

/// Draw a [`CHART_SIZE`] line chart of one or more series, with a title, labelled axes, tick
/// labels, grid lines and a legend; a chart with no finite point says "no data".
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<RgbImage, PlotError> {
    let (w, h) = CHART_SIZE;
    let mut img = RgbImage::from_pixel(w, h, WHITE);
    let curves: Vec<(&Series, Vec<(f64, f64)>)> = series
        .iter()
        .map(|s| (s, finite_points(s)))
        .filter(|(_, pts)| !pts.is_empty())
        .collect();
    let all: Vec<(f64, f64)> = curves.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    {
        let buffer: &mut [u8] = &mut img;
        let root = BitMapBackend::with_buffer(buffer, (w, h)).into_drawing_area();
        let x_range = axis_range(all.iter().map(|p| p.0), false);
        let y_range = axis_range(all.iter().map(|p| p.1), true);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, font(22.0)?)
            .margin(16)
            .x_label_area_size(52)
            .y_label_area_size(76)
            .build_cartesian_2d(x_range.clone(), y_range.clone())
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|v| tick_label(*v))
            .y_label_formatter(&|v| tick_label(*v))
            .label_style(font(14.0)?)
            .axis_desc_style(font(16.0)?)
            .bold_line_style(plotters_rgb(GRID))
            .light_line_style(plotters_rgb(WHITE))
            .draw()
            .map_err(draw_error)?;
        if all.is_empty() {
            let (cx, cy) = chart.backend_coord(&(
                (x_range.start + x_range.end) / 2.0,
                (y_range.start + y_range.end) / 2.0,
            ));
            let style = font(20.0)?
                .color(&BLACK_RGB)
                .pos(Pos::new(HPos::Center, VPos::Center));
            root.draw_text("no data", &style, (cx, cy))
                .map_err(draw_error)?;
        }
        for (k, (s, pts)) in curves.iter().enumerate() {
            let color = plotters_rgb(PALETTE[k % PALETTE.len()]);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(draw_error)?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
            if pts.len() <= MARKER_LIMIT {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(draw_error)?;
            }
        }
        if !curves.is_empty() {
            chart
                .configure_series_labels()
                .position(legend_corner(&all, &x_range, &y_range))
                .label_font(font(14.0)?)
                .background_style(WHITE_RGB.mix(0.9))
                .border_style(BLACK_RGB)
                .draw()
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(img)
}

/// One group of bars of [`bar_chart`]: a legend name and one value per category.
#[derive(Debug, Clone)]
pub struct BarGroup {
    /// Legend label.
    pub name: String,
    /// One value per category (non-finite values draw no bar).
    pub values: Vec<f64>,
}

/// Draw a [`CHART_SIZE`] grouped bar chart: one slot per category on the x axis, one bar per
/// group in each slot, with the value written above each bar, and a legend.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    categories: &[String],
    groups: &[BarGroup],
) -> Result<RgbImage, PlotError> {
    let (w, h) = CHART_SIZE;
    let mut img = RgbImage::from_pixel(w, h, WHITE);
    let top = groups
        .iter()
        .flat_map(|g| g.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    {
        let buffer: &mut [u8] = &mut img;
        let root = BitMapBackend::with_buffer(buffer, (w, h)).into_drawing_area();
        let slots = categories.len().max(1) as f64;
        // Category labels wider than their slot alternate between two lines so they never run
        // into each other (the slot width is estimated from the plot area's share of the image).
        let label_style = font(15.0)?
            .color(&BLACK_RGB)
            .pos(Pos::new(HPos::Center, VPos::Top));
        let slot_px = (w as f64 - 2.0 * 16.0 - 76.0) / slots;
        let mut widest_label = 0u32;
        for name in categories {
            let (label_w, _) = root
                .estimate_text_size(name, &label_style)
                .map_err(draw_error)?;
            widest_label = widest_label.max(label_w);
        }
        let stagger = f64::from(widest_label) + 4.0 > slot_px;
        // Headroom above the tallest bar for its value and for the legend's rows (upper right),
        // so the legend never covers the last category's bars.
        let headroom = 1.15 + 0.08 * groups.len() as f64;
        let y_max = if top > 0.0 { top * headroom } else { 1.0 };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, font(22.0)?)
            .margin(16)
            .x_label_area_size(if stagger { 58 } else { 40 })
            .y_label_area_size(76)
            .build_cartesian_2d(0.0..slots, 0.0..y_max)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(8)
            .y_desc(y_label)
            .y_label_formatter(&|v| tick_label(*v))
            .label_style(font(14.0)?)
            .axis_desc_style(font(16.0)?)
            .bold_line_style(plotters_rgb(GRID))
            .light_line_style(plotters_rgb(WHITE))
            .draw()
            .map_err(draw_error)?;
        let width = 0.8 / groups.len().max(1) as f64;
        let value_style = font(12.0)?
            .color(&BLACK_RGB)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        for (g, group) in groups.iter().enumerate() {
            let color = plotters_rgb(PALETTE[g % PALETTE.len()]);
            let bars: Vec<(f64, f64)> = group
                .values
                .iter()
                .enumerate()
                .take(categories.len())
                .filter(|(_, v)| v.is_finite())
                .map(|(c, &v)| (c as f64 + 0.1 + g as f64 * width, v))
                .collect();
            chart
                .draw_series(
                    bars.iter()
                        .map(|&(x, v)| Rectangle::new([(x, 0.0), (x + width, v)], color.filled())),
                )
                .map_err(draw_error)?
                .label(group.name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
            // A value is written above its bar only where it fits the bar's width.
            let bar_px = chart.backend_coord(&(width, 0.0)).0 - chart.backend_coord(&(0.0, 0.0)).0;
            for &(x, v) in &bars {
                let text = format!("{v:.1}");
                let (text_w, _) = root
                    .estimate_text_size(&text, &value_style)
                    .map_err(draw_error)?;
                if text_w as i32 > bar_px + 4 {
                    continue;
                }
                let at = chart.backend_coord(&(x + width / 2.0, v));
                root.draw_text(&text, &value_style, (at.0, at.1 - 2))
                    .map_err(draw_error)?;
            }
        }
        for (c, name) in categories.iter().enumerate() {
            let at = chart.backend_coord(&(c as f64 + 0.5, 0.0));
            let line = if stagger && c % 2 == 1 { 18 } else { 0 };
            root.draw_text(name, &label_style, (at.0, at.1 + 8 + line))
                .map_err(draw_error)?;
        }
        if !groups.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font(font(14.0)?)
                .background_style(WHITE_RGB.mix(0.9))
                .border_style(BLACK_RGB)
                .draw()
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixels of `img` inside the rectangle [x0, x1) x [y0, y1) that are not white.
    fn inked(img: &RgbImage, (x0, x1): (u32, u32), (y0, y1): (u32, u32)) -> usize {
        img.enumerate_pixels()
            .filter(|(x, y, p)| (x0..x1).contains(x) && (y0..y1).contains(y) && **p != WHITE)
            .count()
    }

    #[test]
    fn line_chart_png_has_the_chart_size_and_curves_in_the_plot_area() {
        let series = vec![
            Series {
                name: "total".into(),
                points: (0..200)
                    .map(|i| (i as f64, 10.0 / (1.0 + i as f64)))
                    .collect(),
            },
            Series {
                name: "no finite point".into(),
                points: vec![(0.0, f64::NAN)],
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        save_png(
            &line_chart("Training loss", "step", "loss", &series).unwrap(),
            &path,
        )
        .unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), CHART_SIZE);
        // The plot area lies right of the y tick labels and between the title and the x labels.
        let (w, h) = CHART_SIZE;
        let (x_area, y_area) = ((110, w - 20), (60, h - 70));
        let curve = img
            .enumerate_pixels()
            .filter(|(x, y, p)| {
                (x_area.0..x_area.1).contains(x)
                    && (y_area.0..y_area.1).contains(y)
                    && **p == PALETTE[0]
            })
            .count();
        assert!(
            curve > 200,
            "only {curve} pixels of the curve in the plot area"
        );
        assert_eq!(
            img.pixels().filter(|p| **p == PALETTE[1]).count(),
            0,
            "a series without data drew a line"
        );
        // Title, tick labels and axis descriptions are text outside the plot area.
        assert!(inked(&img, (0, w), (0, 40)) > 100, "no title");
        assert!(inked(&img, (0, 90), (0, h)) > 200, "no y tick labels");
        let empty = line_chart("Empty", "x", "y", &[]).unwrap();
        assert_eq!(empty.dimensions(), CHART_SIZE);
        assert!(
            inked(&empty, (x_area.0, x_area.1), (y_area.0, y_area.1)) > 50,
            "no 'no data' text"
        );
    }

    #[test]
    fn bar_chart_draws_one_bar_per_finite_value() {
        let groups = vec![
            BarGroup {
                name: "untrained".into(),
                values: vec![10.0, 5.0, f64::NAN],
            },
            BarGroup {
                name: "trained".into(),
                values: vec![80.0, 60.0, 40.0],
            },
        ];
        let categories = ["all", "-R", "-N"].map(String::from);
        let img = bar_chart("mAP", "mAP (%)", &categories, &groups).unwrap();
        assert_eq!(img.dimensions(), CHART_SIZE);
        let trained = img.pixels().filter(|p| **p == PALETTE[1]).count();
        let untrained = img.pixels().filter(|p| **p == PALETTE[0]).count();
        // Bars are as tall as their values: the trained bars cover far more pixels.
        assert!(
            untrained > 100 && trained > 8 * untrained,
            "{untrained} / {trained} bar pixels"
        );
    }

    #[test]
    fn text_in_the_embedded_font_inks_the_image_and_has_lower_case_shapes() {
        let (upper, _) = crate::font::text_size("TEXT", 14.0).unwrap();
        let (lower, _) = crate::font::text_size("text", 14.0).unwrap();
        assert!(
            lower < upper,
            "lower case as wide as upper case: {lower} vs {upper}"
        );
        let mut img = RgbImage::from_pixel(80, 30, WHITE);
        draw_text(&mut img, 2, 4, "rank 1", 14.0, BLACK).unwrap();
        assert!(inked(&img, (0, 80), (0, 30)) > 20);
    }
}
