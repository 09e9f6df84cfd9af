//! The demo starts from the committed pretrained tiny CLIP: the embedded config names the
//! folder, the demo writes the embedded copy (identical to `assets/clip-tiny-pretrained`) and the
//! model builds from it; `next ablate`'s Table IV rows are the `configs/ablation_*.toml` rows.

use next_cli::config::RunConfig;
use next_cli::demo::demo_config;
use next_cli::demo_clip::DEMO_CLIP_IN_CONFIG;
use next_reid::model::{ClipSource, TextMode};
use next_reid::train::{ablation_rows, AblationSuite};
use std::path::{Path, PathBuf};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn demo_writes_the_embedded_pretrained_clip_and_builds_on_it() {
    let tmp = tempfile::tempdir().unwrap();
    let embedded = RunConfig::from_toml_str(next_cli::commands::DEMO_CONFIG, &[]).unwrap();
    assert_eq!(
        embedded.model.clip,
        ClipSource::HfDir(PathBuf::from(DEMO_CLIP_IN_CONFIG))
    );
    let cfg = demo_config(tmp.path(), None, &[]).unwrap();
    let dir = tmp.path().join("clip-tiny-pretrained");
    assert_eq!(cfg.model.clip, ClipSource::HfDir(dir.clone()));
    for name in ["config.json", "model.safetensors", "tokenizer.json"] {
        let committed =
            std::fs::read(repo().join("assets/clip-tiny-pretrained").join(name)).unwrap();
        assert_eq!(std::fs::read(dir.join(name)).unwrap(), committed, "{name}");
    }
    let mut model = cfg.model.clone();
    model.num_classes = 3;
    assert_eq!(model.text, TextMode::Optional);
    let device = Default::default();
    let (_, load) = model.build::<burn::backend::Flex>(&device).unwrap();
    assert!(load.is_some_and(|r| r.missing.is_empty()));

    // --clip DIR still wins over the embedded folder.
    let other = demo_config(tmp.path(), Some(Path::new("/models/clip")), &[]).unwrap();
    assert_eq!(other.model.clip, ClipSource::HfDir("/models/clip".into()));
}

#[test]
fn ablate_table_iv_rows_are_the_ablation_config_files() {
    let configs = repo().join("configs");
    let base = RunConfig::load(Some(&configs.join("synthetic.toml")), &[]).unwrap();
    let rows = ablation_rows(&base.model, &[AblationSuite::TableIv]);
    for (row, letter) in rows.iter().zip(["a", "b", "c", "d"]) {
        let file = configs.join(format!("ablation_{letter}.toml"));
        let cfg = RunConfig::load(Some(&file), &[]).unwrap();
        assert_eq!(row.model, cfg.model, "{} vs {}", row.name, file.display());
        assert_eq!(cfg.synthetic, base.synthetic, "{}", file.display());
        assert_eq!(cfg.solver, base.solver, "{}", file.display());
    }
}
