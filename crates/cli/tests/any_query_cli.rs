//! Any-modality queries end to end through the `next` binary on a tiny synthetic benchmark with
//! sketches: train a few steps with the text head, sketch embedding and alignment loss, search
//! by text (and by sketch + text) with a rank-list PNG, evaluate one protocol, and the clear
//! errors of empty or unknown modality sets.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_next");

fn write_config(dir: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"name = "any-query"
[data]
root = "{root}"
kind = "rgbnt201"
captions = "{root}/captions"
image_size = [64, 32]
random_erasing = false
sketch = "folder"
[model]
clip = "tiny"
num_cameras = 0
text = "optional"
sentence_keep_prob = 1.0
[model.tmse]
num_experts = 2
[model.csse]
num_experts = 2
[model.mgfa]
num_heads = 2
[model.umm]
enabled = true
[model.umm.synth]
heads = 2
[model.umm.cue]
layers = 1
heads = 2
[model.query]
sketch = true
text_head = true
[model.query.align]
enabled = true
patterns_per_step = 2
[loader]
batch_size = 8
instances_per_id = 2
workers = 1
prefetch = 1
[solver]
epochs = 1
warmup_epochs = 1
seed = 3
max_steps_per_epoch = 2
[eval]
every = 1
missing_modalities = false
batch_size = 16
[synthetic]
train_ids = 4
test_ids = 3
images_per_id = 4
cameras = 2
image_size = [64, 32]
"#,
        root = dir.join("data").display()
    );
    let path = dir.join("any_query.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn next(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "next {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn next_fails(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(!out.status.success(), "next {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn text_and_sketch_search_and_protocols_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path());
    let config = config.to_str().unwrap();
    let data = tmp.path().join("data");
    next(&["synth", "--config", config, "--out", data.to_str().unwrap()]);
    let run = tmp.path().join("run");
    next(&["train", "--config", config, "--out", run.to_str().unwrap()]);
    let steps = std::fs::read_to_string(run.join("steps.jsonl")).unwrap();
    assert!(
        steps
            .lines()
            .all(|l| l.contains("\"align_loss\":") && !l.contains("\"align_loss\":null")),
        "{steps}"
    );
    let ckpt = run.join("last.ckpt");
    let ckpt = ckpt.to_str().unwrap();

    let png = tmp.path().join("text.png");
    let out = next(&[
        "search",
        "--checkpoint",
        ckpt,
        "--text",
        "A person in a red coat with a black backpack",
        "--top",
        "4",
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(out.contains("text -> RNT gallery"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains("dist")).count(),
        4,
        "{out}"
    );
    assert!(image::open(&png).unwrap().width() > 100);

    let sketch_dir = data.join("test").join("SK");
    let sketch = std::fs::read_dir(&sketch_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = next(&[
        "search",
        "--checkpoint",
        ckpt,
        "--sketch",
        sketch.to_str().unwrap(),
        "--text",
        "a person",
        "--gallery-modalities",
        "R",
        "--top",
        "2",
    ]);
    assert!(out.contains("S+text -> R gallery"), "{out}");

    let out = next(&[
        "eval",
        "--checkpoint",
        ckpt,
        "--query-modalities",
        "text",
        "--gallery-modalities",
        "RNT",
    ]);
    assert!(
        out.contains("any-modality protocols") && out.contains("text "),
        "{out}"
    );

    for (set, expect) in [("", "empty modality set"), ("RX", "unknown modality `RX`")] {
        let err = next_fails(&["eval", "--checkpoint", ckpt, "--query-modalities", set]);
        assert!(
            err.contains(expect) && err.contains("--query-modalities"),
            "{err}"
        );
    }
    let err = next_fails(&[
        "search",
        "--checkpoint",
        ckpt,
        "--text",
        "a man",
        "--gallery-modalities",
        "depth",
    ]);
    assert!(
        err.contains("--gallery-modalities") && err.contains("depth"),
        "{err}"
    );
    let err = next_fails(&["search", "--checkpoint", ckpt, "--text", "   "]);
    assert!(err.contains("empty"), "{err}");
}
