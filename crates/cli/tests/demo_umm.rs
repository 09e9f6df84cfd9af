//! `next demo` end to end at tiny sizes: the NEXT part and the UMM part (UMM trained on the same
//! data, the NEXT-vs-UMM table with the goals in the summary, the chart, the JSON), and
//! `--no-umm` leaving the UMM part out.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_next");

/// Tiny sizes: 4 training ids, 2 steps per part, 32 x 16 images.
const TINY: [&str; 13] = [
    "synthetic.train_ids=4",
    "synthetic.test_ids=3",
    "synthetic.images_per_id=4",
    "data.image_size=[32, 16]",
    "solver.epochs=1",
    "solver.warmup_epochs=0",
    "solver.max_steps_per_epoch=2",
    "loader.batch_size=8",
    "loader.instances_per_id=2",
    "loader.workers=1",
    "eval.every=0",
    "eval.batch_size=8",
    "eval.show_queries=2",
];

fn demo(out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "demo".to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    for item in TINY {
        args.push("--set".into());
        args.push(item.into());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let output = Command::new(BIN).args(&args).output().unwrap();
    assert!(
        output.status.success(),
        "next {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn demo_trains_umm_on_the_same_data_and_reports_next_against_umm() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let stdout = demo(&out, &[]);
    let report = out.join("report");
    let summary = std::fs::read_to_string(report.join("summary.txt")).unwrap();
    assert_eq!(stdout, summary);
    let table_start = summary
        .find("NEXT vs UMM")
        .unwrap_or_else(|| panic!("no NEXT vs UMM table in\n{summary}"));
    let table = &summary[table_start..];
    let header = table.lines().nth(1).unwrap();
    for column in ["NEXT zero", "UMM zero", "UMM synth", "UMM drop"] {
        assert!(header.contains(column), "{table}");
    }
    for row in [
        "-RN",
        "missing avg",
        "retention",
        "night_rgb",
        "goal retention",
    ] {
        assert!(table.contains(row), "{row} missing from\n{table}");
    }
    // The UMM run is its own training run on the demo's data, with the UMM switches on.
    let umm_cfg = std::fs::read_to_string(report.join("umm/config.toml")).unwrap();
    let umm_cfg: toml::Value = toml::from_str(&umm_cfg).unwrap();
    assert_eq!(umm_cfg["model"]["umm"]["enabled"].as_bool(), Some(true));
    assert_eq!(umm_cfg["umm_augment"]["enabled"].as_bool(), Some(true));
    let next_cfg: toml::Value =
        toml::from_str(&std::fs::read_to_string(report.join("config.toml")).unwrap()).unwrap();
    assert_eq!(umm_cfg["data"], next_cfg["data"]);
    let steps = std::fs::read_to_string(report.join("umm/steps.jsonl")).unwrap();
    assert_eq!(steps.lines().count(), 2, "{steps}");
    assert!(report.join("umm/last.ckpt").exists());
    let chart = image::open(report.join("umm_missing.png")).unwrap();
    assert!(chart.width() > 100 && chart.height() > 100);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("results.json")).unwrap())
            .unwrap();
    let umm = &json["umm"];
    assert_eq!(umm["comparison"]["umm_fill"], "synth");
    let next_fills = umm["comparison"]["next"]["missing"].as_array().unwrap();
    assert_eq!(
        next_fills.len(),
        1,
        "NEXT is evaluated with the zero fill only"
    );
    let umm_fills = umm["comparison"]["umm"]["missing"].as_array().unwrap();
    assert_eq!(umm_fills.len(), 3);
    // The goals are computed from the two reports, not typed in.
    let synth_avg = umm_fills[1]["average"]["map"].as_f64().unwrap();
    let next_avg = next_fills[0]["average"]["map"].as_f64().unwrap();
    let gain = umm["goals"]["gain"].as_f64().unwrap();
    assert!((gain - (synth_avg - next_avg)).abs() < 1e-9, "{umm}");
}

#[test]
fn no_umm_leaves_the_umm_part_out() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let stdout = demo(&out, &["--no-umm"]);
    assert!(!stdout.contains("NEXT vs UMM"), "{stdout}");
    let report = out.join("report");
    assert!(!report.join("umm").exists() && !report.join("umm_missing.png").exists());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("results.json")).unwrap())
            .unwrap();
    assert!(json["umm"].is_null());
}
