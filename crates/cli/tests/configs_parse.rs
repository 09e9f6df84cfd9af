//! Every configuration in configs/ parses, and the dataset configs carry the reference recipe.

use next_cli::config::RunConfig;
use std::path::Path;

fn configs_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs"))
}

#[test]
fn every_config_file_parses_and_validates() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(configs_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            RunConfig::load(Some(&path), &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            names.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    for expected in [
        "ablation_a",
        "ablation_b",
        "ablation_c",
        "ablation_d",
        "market_mm",
        "msvr310",
        "rgbnt100",
        "rgbnt201",
        "synthetic",
        "wmveid863",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "configs/{expected}.toml missing: {names:?}"
        );
    }
}

#[test]
fn dataset_configs_follow_the_reference_recipe() {
    let load = |name: &str| {
        RunConfig::load(Some(&configs_dir().join(format!("{name}.toml"))), &[]).unwrap()
    };
    let rgbnt201 = load("rgbnt201");
    assert_eq!(
        (rgbnt201.loader.batch_size, rgbnt201.loader.instances_per_id),
        (64, 8)
    );
    assert_eq!(
        (rgbnt201.solver.epochs, rgbnt201.solver.warmup_epochs),
        (50, 10)
    );
    assert_eq!(
        (rgbnt201.solver.base_lr, rgbnt201.solver.clip_lr),
        (3.5e-4, 5e-6)
    );
    assert_eq!(rgbnt201.data.size(), [256, 128]);
    let rgbnt100 = load("rgbnt100");
    assert_eq!(
        (rgbnt100.loader.batch_size, rgbnt100.loader.instances_per_id),
        (128, 16)
    );
    assert_eq!(
        (rgbnt100.solver.epochs, rgbnt100.solver.warmup_epochs),
        (30, 5)
    );
    assert_eq!(load("msvr310").data.size(), [128, 256]);
    let modes: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .map(|r| load(&format!("ablation_{r}")).model.mgfa.mode)
        .collect();
    let distinct: std::collections::HashSet<_> = modes.iter().map(|m| format!("{m:?}")).collect();
    assert_eq!(distinct.len(), 4, "{modes:?}");
}

#[test]
fn relative_paths_resolve_against_the_config_files_folder() {
    // The test's working directory is crates/cli, not the repo root: the captions folder of
    // configs/rgbnt201.toml (`../tests/data/next-captions/201`) is found all the same.
    let cfg = RunConfig::load(Some(&configs_dir().join("rgbnt201.toml")), &[]).unwrap();
    let captions = cfg
        .data
        .captions
        .clone()
        .expect("rgbnt201 names a captions folder");
    assert!(captions.is_dir(), "{}", captions.display());
    assert!(
        cfg.data.root.starts_with(configs_dir()),
        "{}",
        cfg.data.root.display()
    );
    let off = RunConfig::load(
        Some(&configs_dir().join("rgbnt201.toml")),
        &["data.captions=none".into()],
    )
    .unwrap();
    assert_eq!(off.data.captions, None);
    let err = RunConfig::load(
        Some(&configs_dir().join("rgbnt201.toml")),
        &["loader.batch_size=many".into()],
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("--set loader.batch_size=many"), "{err}");
}

#[test]
fn umm_synthetic_is_the_demo_config_with_umm_on() {
    let load = |name: &str| {
        RunConfig::load(Some(&configs_dir().join(format!("{name}.toml"))), &[]).unwrap()
    };
    let demo = load("synthetic");
    let umm = load("umm_synthetic");
    assert!(umm.model.umm.enabled && umm.umm_augment.enabled);
    // The same data, model, optimiser and budget as the demo: only the UMM sections differ.
    let mut rest = umm.clone();
    rest.name = demo.name.clone();
    rest.model.umm = demo.model.umm.clone();
    rest.umm_augment = demo.umm_augment.clone();
    assert_eq!(
        rest, demo,
        "configs/umm_synthetic.toml differs from configs/synthetic.toml outside [model.umm] and [umm_augment]"
    );
}

#[test]
fn query_synthetic_is_the_umm_config_with_the_query_heads_and_sketches() {
    let load = |name: &str| {
        RunConfig::load(Some(&configs_dir().join(format!("{name}.toml"))), &[]).unwrap()
    };
    let umm = load("umm_synthetic");
    let query = load("query_synthetic");
    assert!(query.model.query.sketch && query.model.query.text_head);
    assert!(query.model.query.align.enabled);
    // The same data, model, optimiser, budget and modality augmentation (shadow drops) as the
    // UMM demo: only the query parts differ.
    let mut rest = query.clone();
    rest.name = umm.name.clone();
    rest.data.sketch = umm.data.sketch;
    rest.data.sketch_ink = umm.data.sketch_ink;
    rest.data.sketch_standardize = umm.data.sketch_standardize;
    rest.model.query = umm.model.query.clone();
    assert_eq!(
        rest, umm,
        "configs/query_synthetic.toml differs from configs/umm_synthetic.toml outside data.sketch*, [model.query] and the name"
    );
}
