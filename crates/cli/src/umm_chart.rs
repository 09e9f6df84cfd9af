//! The PNG bar chart of the missing / uncertain modality evaluation: mAP per setting (all, the six
//! missing settings and their average, the three uncertain settings and their average), one bar
//! per model or fill, drawn with the primitives of [`crate::plot`].

use crate::font::text_width;
use crate::plot::{
    draw_border, draw_text, fill_rect, save_png, PlotError, BLACK, GRID, PALETTE, WHITE,
};
use image::RgbImage;
use next_reid::train::UmmReport;
use std::path::Path;

/// One group of bars: a name and its mAP per series.
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    /// Setting name (x axis).
    pub name: String,
    /// One value per series, in percent.
    pub values: Vec<f64>,
}

/// The bar groups and series names of one or more reports, each labelled, with every fill a
/// report evaluated as its own series (`label fill`).
pub fn umm_bar_groups(reports: &[(&str, &UmmReport)]) -> (Vec<String>, Vec<BarGroup>) {
    let mut series = Vec::new();
    let mut columns: Vec<Vec<(String, f64)>> = Vec::new();
    for (label, report) in reports {
        for fill in &report.missing {
            series.push(format!("{label} {}", fill.fill));
            let mut col = vec![("all".to_string(), report.full.map)];
            col.extend(fill.settings.iter().map(|s| (s.setting.clone(), s.map)));
            col.push(("avg".into(), fill.average.map));
            col.extend(report.uncertain.iter().map(|s| (s.setting.clone(), s.map)));
            col.push(("unc avg".into(), report.uncertain_average.map));
            columns.push(col);
        }
    }
    let names: Vec<String> = columns
        .first()
        .map(|c| c.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    let groups = names
        .iter()
        .enumerate()
        .map(|(i, name)| BarGroup {
            name: name.clone(),
            values: columns
                .iter()
                .map(|c| c.get(i).map_or(f64::NAN, |v| v.1))
                .collect(),
        })
        .collect();
    (series, groups)
}

/// Draw grouped bars (0 to 100 %) with a legend.
pub fn bar_chart(title: &str, series: &[String], groups: &[BarGroup]) -> RgbImage {
    let widest = groups
        .iter()
        .map(|g| text_width(&g.name) as i64)
        .max()
        .unwrap_or(0);
    let group_w = (16 + 10 * series.len().max(1) as i64).max(widest + 12);
    let (left, right, top, bottom) = (50i64, 20i64, 40i64, 40i64);
    let legend_h = 14 * series.len() as i64;
    let plot_w = group_w * groups.len().max(1) as i64;
    let (w, h) = (left + plot_w + right, top + legend_h + 260 + bottom);
    let mut img = RgbImage::from_pixel(w.max(320) as u32, h as u32, WHITE);
    draw_text(&mut img, left, 12, title, 2, BLACK);
    for (k, name) in series.iter().enumerate() {
        let y = top + k as i64 * 14;
        fill_rect(&mut img, left, y + 2, 14, 6, PALETTE[k % PALETTE.len()]);
        draw_text(&mut img, left + 20, y, name, 1, BLACK);
    }
    let (plot_top, plot_h) = (top + legend_h + 10, 250i64);
    for tick in [0.0, 25.0, 50.0, 75.0, 100.0] {
        let y = plot_top + plot_h - (tick / 100.0 * plot_h as f64) as i64;
        fill_rect(&mut img, left + 1, y, plot_w - 2, 1, GRID);
        draw_text(&mut img, 8, y - 3, &format!("{tick:.0}"), 1, BLACK);
    }
    draw_border(&mut img, left, plot_top, plot_w, plot_h + 1, 1, BLACK);
    for (g, group) in groups.iter().enumerate() {
        let x0 = left + g as i64 * group_w + 8;
        for (k, value) in group.values.iter().enumerate() {
            if !value.is_finite() {
                continue;
            }
            let bar_h = (value.clamp(0.0, 100.0) / 100.0 * plot_h as f64).round() as i64;
            let color = PALETTE[k % PALETTE.len()];
            let x = x0 + 10 * k as i64;
            fill_rect(&mut img, x, plot_top + plot_h - bar_h, 9, bar_h, color);
        }
        draw_text(&mut img, x0, plot_top + plot_h + 8, &group.name, 1, BLACK);
    }
    img
}

/// Write the bar chart of `reports` (each labelled, e.g. `NEXT` and `UMM`) to `path`.
pub fn write_umm_chart(path: &Path, reports: &[(&str, &UmmReport)]) -> Result<(), PlotError> {
    let (series, groups) = umm_bar_groups(reports);
    let img = bar_chart(
        "mAP (%) by setting: missing and uncertain",
        &series,
        &groups,
    );
    save_png(&img, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use next_reid::train::evaluate::SettingResult;
    use next_reid::train::umm::FillResults;

    fn row(name: &str, map: f64) -> SettingResult {
        SettingResult {
            setting: name.into(),
            map,
            rank1: map,
            rank5: map,
            rank10: map,
            minp: map,
        }
    }

    #[test]
    fn one_series_per_fill_and_one_group_per_setting() {
        let fill = |name: &str, v: f64| FillResults {
            fill: name.into(),
            settings: vec![row("-R", v), row("-N", v + 1.0)],
            average: row("avg", v + 0.5),
            retention: 0.5,
        };
        let report = UmmReport {
            umm: true,
            full: row("all", 80.0),
            missing: vec![fill("zero", 10.0), fill("synth", 60.0)],
            uncertain: vec![row("night_rgb", 70.0)],
            uncertain_average: row("avg", 70.0),
            uncertain_retention: 0.875,
            cosine: None,
        };
        let (series, groups) = umm_bar_groups(&[("UMM", &report)]);
        assert_eq!(series, ["UMM zero", "UMM synth"]);
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["all", "-R", "-N", "avg", "night_rgb", "unc avg"]);
        assert_eq!(groups[2].values, [11.0, 61.0]);
        let img = bar_chart("t", &series, &groups);
        assert!(img.width() >= 320 && img.height() > 260);
    }
}
