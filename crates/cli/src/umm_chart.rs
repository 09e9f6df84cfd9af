//! The PNG bar chart of the missing / uncertain modality evaluation: mAP per setting (all, the six
//! missing settings and their average, the three uncertain settings and their average), one bar
//! per model or fill, drawn with [`crate::plot::bar_chart`].

use crate::plot::{bar_chart, save_png, BarGroup, PlotError};
use next_reid::train::UmmReport;
use std::path::Path;

/// The categories (settings, x axis) and one bar group per series of one or more reports, each
/// labelled, with every fill a report evaluated as its own series (`label fill`).
pub fn umm_bar_groups(reports: &[(&str, &UmmReport)]) -> (Vec<String>, Vec<BarGroup>) {
    let mut categories: Vec<String> = Vec::new();
    let mut groups = Vec::new();
    for (label, report) in reports {
        for fill in &report.missing {
            let mut column = vec![("all".to_string(), report.full.map)];
            column.extend(fill.settings.iter().map(|s| (s.setting.clone(), s.map)));
            column.push(("avg".into(), fill.average.map));
            column.extend(report.uncertain.iter().map(|s| (s.setting.clone(), s.map)));
            column.push(("unc avg".into(), report.uncertain_average.map));
            if categories.is_empty() {
                categories = column.iter().map(|(n, _)| n.clone()).collect();
            }
            groups.push(BarGroup {
                name: format!("{label} {}", fill.fill),
                values: categories
                    .iter()
                    .map(|c| {
                        column
                            .iter()
                            .find(|(n, _)| n == c)
                            .map_or(f64::NAN, |v| v.1)
                    })
                    .collect(),
            });
        }
    }
    (categories, groups)
}

/// Write the bar chart of `reports` (each labelled, e.g. `NEXT` and `UMM`) to `path`.
pub fn write_umm_chart(path: &Path, reports: &[(&str, &UmmReport)]) -> Result<(), PlotError> {
    let (categories, groups) = umm_bar_groups(reports);
    let img = bar_chart(
        "mAP by setting: missing and uncertain modalities",
        "mAP (%)",
        &categories,
        &groups,
    )?;
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
        let (categories, groups) = umm_bar_groups(&[("UMM", &report)]);
        let series: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(series, ["UMM zero", "UMM synth"]);
        assert_eq!(
            categories,
            ["all", "-R", "-N", "avg", "night_rgb", "unc avg"]
        );
        assert_eq!(groups[0].values, [80.0, 10.0, 11.0, 10.5, 70.0, 70.0]);
        assert_eq!(groups[1].values[2], 61.0);
        let img = bar_chart("t", "mAP (%)", &categories, &groups).unwrap();
        assert_eq!((img.width(), img.height()), crate::plot::CHART_SIZE);
    }
}
