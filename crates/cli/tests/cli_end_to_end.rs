//! End to end through the `next` binary on a tiny generated dataset (custom layout, 64x32 images,
//! tiny CLIP): train, SIGKILL + resume (same weights as an uninterrupted run), eval, embed, search.

use image::{Rgb, RgbImage};
use next_reid::model::Checkpoint;
use next_reid::train::logs::read_json_lines;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_next");

/// A deterministic picture for (identity, sample, modality): identity colour blocks plus noise.
fn picture(pid: u32, sample: u32, modality: u32) -> RgbImage {
    let mut state = (pid as u64 * 7919 + sample as u64 * 104729 + modality as u64 * 1299709) | 1;
    let mut noise = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 40) as u8
    };
    let base = [
        (pid * 67) % 200,
        (pid * 131) % 200,
        (pid * 29 + modality * 50) % 200,
    ];
    RgbImage::from_fn(32, 64, |x, y| {
        let band = ((y / 16 + pid) % 3) as usize;
        let c = if x < 16 {
            base[band]
        } else {
            base[(band + 1) % 3]
        };
        let v = (c as u8).saturating_add(noise());
        if modality == 0 {
            Rgb([v, v / 2 + 30, 255 - v])
        } else {
            Rgb([v, v, v])
        }
    })
}

/// (split folder, identities, (sample, camera) shots per identity).
type SplitPlan = (&'static str, std::ops::Range<u32>, Vec<(u32, u32)>);

fn write_dataset(root: &Path) {
    let splits: [SplitPlan; 3] = [
        ("train", 1..7, vec![(0, 0), (1, 1), (2, 0), (3, 1)]),
        ("query", 10..14, vec![(0, 0)]),
        ("gallery", 10..14, vec![(1, 1), (2, 1)]),
    ];
    let mut captions: std::collections::HashMap<String, Vec<serde_json::Value>> =
        Default::default();
    for (split, ids, shots) in splits {
        for pid in ids {
            for &(sample, cam) in &shots {
                let name = format!("{pid:04}_c{cam}_{sample:02}.png");
                for (m, folder) in ["RGB", "NI", "TI"].iter().enumerate() {
                    let dir = root.join(split).join(folder);
                    std::fs::create_dir_all(&dir).unwrap();
                    picture(pid, sample, m as u32)
                        .save(dir.join(&name))
                        .unwrap();
                    let prefix = if split == "train" { "train" } else { "test" };
                    let colour =
                        ["red", "green", "blue", "black", "white", "grey"][(pid % 6) as usize];
                    captions.entry(format!("{prefix}_{folder}.json")).or_default().push(serde_json::json!({
                        "item": name,
                        "description": format!("A person in a {colour} coat. Seen by camera {cam}. The image is clear.")
                    }));
                }
            }
        }
    }
    let cap_dir = root.join("captions");
    std::fs::create_dir_all(&cap_dir).unwrap();
    for (file, list) in captions {
        std::fs::write(cap_dir.join(file), serde_json::to_vec(&list).unwrap()).unwrap();
    }
}

fn write_config(dir: &Path, data: &Path) -> PathBuf {
    let text = format!(
        r#"name = "e2e"
[data]
root = "{root}"
kind = "custom"
captions = "{root}/captions"
image_size = [64, 32]
random_erasing = false
[model]
clip = "tiny"
num_cameras = 2
text = "optional"
[model.tmse]
num_experts = 2
[model.csse]
num_experts = 2
[model.mgfa]
num_heads = 2
[loader]
batch_size = 8
instances_per_id = 2
workers = 1
prefetch = 1
[solver]
base_lr = 1e-3
clip_lr = 1e-3
epochs = 3
warmup_epochs = 1
seed = 5
max_steps_per_epoch = 2
[eval]
every = 2
missing_modalities = true
batch_size = 8
show_queries = 2
show_ranks = 3
"#,
        root = data.display()
    );
    let path = dir.join("e2e.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn next(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "next {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn weights_digest(path: &Path) -> String {
    Checkpoint::load(path).unwrap().header["weights_digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn train_kill_resume_eval_embed_search() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    let config = write_config(tmp.path(), &data);
    let config = config.to_str().unwrap();

    // Uninterrupted run.
    let full = tmp.path().join("full");
    next(&["train", "--config", config, "--out", full.to_str().unwrap()]);
    for f in [
        "last.ckpt",
        "best.ckpt",
        "steps.jsonl",
        "epochs.jsonl",
        "config.toml",
        "loss.png",
        "lr.png",
        "map.png",
    ] {
        assert!(full.join(f).is_file(), "{f} missing");
    }
    let steps = read_json_lines(&full.join("steps.jsonl")).unwrap();
    assert_eq!(steps.len(), 6);
    assert!(steps
        .iter()
        .all(|s| s["loss"].as_f64().unwrap().is_finite()));

    refusals_change_nothing(tmp.path(), config, &full);

    // A run killed (SIGKILL) one step into epoch 2, after its epoch-1 checkpoint, then resumed.
    let killed = tmp.path().join("killed");
    let mut child = Command::new(BIN)
        .args([
            "train",
            "--config",
            config,
            "--out",
            killed.to_str().unwrap(),
            "--hang-after-epoch",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let logged = read_json_lines(&killed.join("steps.jsonl"))
            .map(|v| v.len())
            .unwrap_or(0);
        if logged >= 3 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the run never reached epoch 2"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let header = Checkpoint::load(&killed.join("last.ckpt")).unwrap().header;
    assert_eq!(header["epochs_done"], 1);
    let before_kill = weights_digest(&killed.join("last.ckpt"));
    next(&[
        "train",
        "--config",
        config,
        "--out",
        killed.to_str().unwrap(),
        "--resume",
    ]);
    assert_eq!(
        weights_digest(&full.join("last.ckpt")),
        weights_digest(&killed.join("last.ckpt")),
        "resumed weights differ"
    );
    assert_ne!(before_kill, weights_digest(&full.join("last.ckpt")));
    let resumed_steps = read_json_lines(&killed.join("steps.jsonl")).unwrap();
    assert_eq!(resumed_steps.len(), 6);
    for (a, b) in steps.iter().zip(&resumed_steps) {
        assert_eq!(a["loss"], b["loss"], "losses differ after resume");
    }

    // Evaluation, features, and evaluation of the exported features.
    let ckpt = full.join("last.ckpt");
    let ckpt = ckpt.to_str().unwrap();
    let eval_json = tmp.path().join("eval.json");
    next(&[
        "eval",
        "--checkpoint",
        ckpt,
        "--json",
        eval_json.to_str().unwrap(),
    ]);
    let eval: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&eval_json).unwrap()).unwrap();
    let names: Vec<&str> = eval
        .iter()
        .map(|r| r["setting"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["all", "-R", "-N", "-T", "-RN", "-RT", "-NT", "avg"]);

    let feats = tmp.path().join("features.safetensors");
    next(&[
        "embed",
        "--checkpoint",
        ckpt,
        "--out",
        feats.to_str().unwrap(),
    ]);
    let set = next_reid::metrics::FeatureSet::from_safetensors(&feats).unwrap();
    assert_eq!((set.query.rows(), set.gallery.rows()), (4, 8));
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(feats.with_extension("keys.json")).unwrap()).unwrap();
    assert_eq!(keys["gallery"].as_array().unwrap().len(), 8);
    let report = next_reid::metrics::evaluate(
        &set.query,
        &set.gallery,
        &set.query_meta,
        &set.gallery_meta,
        &next_reid::metrics::EvalConfig::default(),
    )
    .unwrap();
    assert!((eval[0]["map"].as_f64().unwrap() - 100.0 * report.map).abs() < 1e-9);
    assert!((eval[0]["rank1"].as_f64().unwrap() - 100.0 * report.rank(1).unwrap()).abs() < 1e-9);
    let feats_json = tmp.path().join("eval_features.json");
    next(&[
        "eval",
        "--features",
        feats.to_str().unwrap(),
        "--json",
        feats_json.to_str().unwrap(),
    ]);
    let from_file: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&feats_json).unwrap()).unwrap();
    assert_eq!(from_file[0]["map"], eval[0]["map"]);

    let png = tmp.path().join("search.png");
    let out = next(&[
        "search",
        "--checkpoint",
        ckpt,
        "--query",
        "1",
        "--top",
        "3",
        "--png",
        png.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.contains("dist")).count(),
        3,
        "{text}"
    );
    let picture = image::open(&png).unwrap();
    assert!(picture.width() > 100);

    search_with_image_queries(tmp.path(), &data, ckpt);
    embed_npy_matches_safetensors(tmp.path(), &data, ckpt, &set);

    // A bad override names the key and its nearest valid key.
    let bad = Command::new(BIN)
        .args(["train", "--config", config, "--set", "solver.base_lrr=1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("solver.base_lr"));
}

#[test]
fn non_finite_loss_stops_and_keeps_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    let config = write_config(tmp.path(), &data);
    let config = config.to_str().unwrap();
    let out = tmp.path().join("run");
    let out_s = out.to_str().unwrap();
    next(&[
        "train",
        "--config",
        config,
        "--out",
        out_s,
        "--set",
        "solver.epochs=1",
        "--set",
        "eval.every=0",
    ]);
    let good = std::fs::read(out.join("last.ckpt")).unwrap();
    let blown = Command::new(BIN)
        .args([
            "train",
            "--config",
            config,
            "--out",
            out_s,
            "--resume",
            "--set",
            "solver.epochs=3",
        ])
        .args([
            "--set",
            "solver.base_lr=1e30",
            "--set",
            "solver.clip_lr=1e30",
            "--set",
            "solver.warmup_epochs=0",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&blown.stderr);
    assert!(!blown.status.success(), "{stderr}");
    assert!(
        stderr.contains("training stopped") && stderr.contains("last.ckpt"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(out.join("last.ckpt")).unwrap(),
        good,
        "the last good checkpoint changed"
    );
}

/// Run `next` expecting a failure; returns its stderr.
fn next_fails(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "next {args:?} succeeded:\n{stderr}");
    assert!(
        !stderr.contains("panicked"),
        "next {args:?} panicked:\n{stderr}"
    );
    stderr
}

/// The bytes of every file of a folder, by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Training into a folder that holds a run, resuming nothing, and resuming with another
/// architecture or image size are errors naming the folder, file or key; no file changes.
fn refusals_change_nothing(tmp: &Path, config: &str, full: &Path) {
    let out = full.to_str().unwrap();
    let before = snapshot(full);
    let err = next_fails(&["train", "--config", config, "--out", out]);
    assert!(
        err.contains("already holds a run") && err.contains("--force"),
        "{err}"
    );
    for (set, key) in [
        ("model.tmse.num_experts=3", "model.tmse.num_experts"),
        ("data.image_size=[32, 16]", "data.image_size"),
    ] {
        let err = next_fails(&[
            "train", "--config", config, "--out", out, "--resume", "--set", set,
        ]);
        assert!(
            err.contains(key) && err.contains("last.ckpt"),
            "{set}: {err}"
        );
    }
    let err = next_fails(&[
        "eval",
        "--checkpoint",
        full.join("last.ckpt").to_str().unwrap(),
        "--set",
        "model.mgfa.num_heads=4",
    ]);
    assert!(err.contains("model.mgfa.num_heads"), "{err}");
    assert!(
        snapshot(full) == before,
        "a refused command changed the run's files"
    );

    let best_only = tmp.join("best_only");
    std::fs::create_dir_all(&best_only).unwrap();
    std::fs::copy(full.join("best.ckpt"), best_only.join("best.ckpt")).unwrap();
    let err = next_fails(&[
        "train",
        "--config",
        config,
        "--out",
        best_only.to_str().unwrap(),
        "--resume",
    ]);
    assert!(
        err.contains("last.ckpt") && err.contains("only best.ckpt"),
        "{err}"
    );
    assert_eq!(
        snapshot(&best_only).len(),
        1,
        "nothing is written by a failed resume"
    );
    let typo = tmp.join("fulll");
    let err = next_fails(&[
        "train",
        "--config",
        config,
        "--out",
        typo.to_str().unwrap(),
        "--resume",
    ]);
    assert!(err.contains("fulll"), "{err}");
    assert!(!typo.exists(), "a failed resume created its --out folder");
}

/// `next search --query-dir` and `--rgb/--nir` (TIR missing): ranks printed and the PNG drawn.
fn search_with_image_queries(tmp: &Path, data: &Path, ckpt: &str) {
    let query_dir = data.join("query");
    let png = tmp.join("search_dir.png");
    let out = next(&[
        "search",
        "--checkpoint",
        ckpt,
        "--query-dir",
        query_dir.to_str().unwrap(),
        "--top",
        "2",
        "--png",
        png.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("query ")).count(),
        4,
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains("dist")).count(),
        8,
        "{text}"
    );
    assert!(image::open(&png).unwrap().height() > 50);

    let name = "0011_c0_00.png";
    let png = tmp.join("search_triplet.png");
    let out = next(&[
        "search",
        "--checkpoint",
        ckpt,
        "--rgb",
        query_dir.join("RGB").join(name).to_str().unwrap(),
        "--nir",
        query_dir.join("NI").join(name).to_str().unwrap(),
        "--top",
        "3",
        "--png",
        png.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(name), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains("dist")).count(),
        3,
        "{text}"
    );
    assert!(image::open(&png).unwrap().width() > 100);

    let missing = tmp.join("no_such_image.png");
    let bad = Command::new(BIN)
        .args([
            "search",
            "--checkpoint",
            ckpt,
            "--tir",
            missing.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no_such_image.png"));
}

/// Parse an NPY v1.0 float32 file: (shape, values).
fn read_npy_f32(path: &Path) -> ((usize, usize), Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0, "header not padded to 64 bytes");
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.ends_with('\n'));
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap();
    let shape: Vec<usize> = shape[..shape.find(')').unwrap()]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let values: Vec<f32> = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values.len(), shape[0] * shape[1]);
    ((shape[0], shape[1]), values)
}

/// `next embed --format npy`: valid header, same numbers as the safetensors output; and
/// `--images-dir` embeds every triplet of a folder.
fn embed_npy_matches_safetensors(
    tmp: &Path,
    data: &Path,
    ckpt: &str,
    set: &next_reid::metrics::FeatureSet,
) {
    let out = tmp.join("features_npy");
    next(&[
        "embed",
        "--checkpoint",
        ckpt,
        "--format",
        "npy",
        "--out",
        out.to_str().unwrap(),
    ]);
    let ((rows, dim), values) = read_npy_f32(&out.with_extension("npy"));
    assert_eq!((rows, dim), (12, set.query.dim()));
    let expected: Vec<f32> = (0..4)
        .flat_map(|r| set.query.row(r).to_vec())
        .chain((0..8).flat_map(|r| set.gallery.row(r).to_vec()))
        .collect();
    assert_eq!(values, expected);
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.with_extension("keys.json")).unwrap()).unwrap();
    assert_eq!(keys["query"].as_array().unwrap().len(), 4);

    let dir_out = tmp.join("folder_npy");
    next(&[
        "embed",
        "--checkpoint",
        ckpt,
        "--format",
        "npy",
        "--images-dir",
        data.join("gallery").to_str().unwrap(),
        "--out",
        dir_out.to_str().unwrap(),
    ]);
    let ((rows, dim), values) = read_npy_f32(&dir_out.with_extension("npy"));
    assert_eq!((rows, dim), (8, set.query.dim()));
    assert!(values.iter().all(|v| v.is_finite()));
}

/// f16 mixed precision on the CPU backend: finite losses, the dynamic loss scale logged per step
/// and saved in the checkpoint, and a resumed run ending with the same weights as a straight one.
#[test]
fn f16_mixed_precision_trains_with_a_saved_loss_scale_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    let config = write_config(tmp.path(), &data);
    let config = config.to_str().unwrap();
    let run = |out: &Path, epochs: &str, resume: bool| {
        let mut args = vec!["train", "--config", config, "--out", out.to_str().unwrap()];
        // No warm-up: the 1-epoch first leg then has the 2-epoch run's schedule.
        args.extend(["--set", "model.precision=f16", "--set", "eval.every=0"]);
        args.extend(["--set", "solver.warmup_epochs=0"]);
        args.extend(["--set", epochs]);
        if resume {
            args.push("--resume");
        }
        next(&args);
    };
    let straight = tmp.path().join("straight");
    run(&straight, "solver.epochs=2", false);
    let steps = read_json_lines(&straight.join("steps.jsonl")).unwrap();
    assert_eq!(steps.len(), 4);
    for step in &steps {
        assert!(step["loss"].as_f64().unwrap().is_finite(), "{step}");
        let scale = step["loss_scale"].as_f64().expect("loss_scale logged");
        assert!((1.0..=65_536.0).contains(&scale), "{step}");
    }
    let header = Checkpoint::load(&straight.join("last.ckpt"))
        .unwrap()
        .header;
    assert!(
        header["loss_scaler"]["scale"].as_f64().is_some(),
        "{header}"
    );
    assert_eq!(header["model"]["precision"], "f16", "{header}");

    let resumed = tmp.path().join("resumed");
    run(&resumed, "solver.epochs=1", false);
    run(&resumed, "solver.epochs=2", true);
    assert_eq!(
        weights_digest(&resumed.join("last.ckpt")),
        weights_digest(&straight.join("last.ckpt"))
    );
}
