//! Multi-process data-parallel training through `next orchestrator` on the loopback address:
//! two `next train` processes give the weights of one single-device process at the same global
//! batch; a killed rank stops the other at once with an error naming it (no hang) and the run
//! resumes. Every process is started and stopped here, each wait bounded (a process still
//! running at the end of the test, or after a failed assertion, is killed).

use next_reid::burn::backend::Flex;
use next_reid::burn::module::{Module, ModuleVisitor, Param};
use next_reid::burn::tensor::backend::Backend;
use next_reid::burn::tensor::Tensor;
use next_reid::common::Progress;
use next_reid::data::{write_synthetic, SynthConfig};
use next_reid::model::{Checkpoint, NextModel};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_next");

/// Longest a process of this test may run (a tiny model, 3 steps an epoch).
const LIMIT: Duration = Duration::from_secs(300);

/// The weights of 2 processes vs 1 (see crates/train/tests/data_parallel.rs for the reason).
const TOLERANCE: f32 = 5e-5;

/// A child process killed when dropped (a failing assertion leaves nothing running).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn start(args: &[String], log: &Path) -> Proc {
        let out = std::fs::File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        Proc(child)
    }

    /// Wait for the exit (at most [`LIMIT`]); returns whether it succeeded.
    fn wait(&mut self) -> bool {
        let started = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.success();
            }
            assert!(
                started.elapsed() < LIMIT,
                "a `next` process ran past {LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path, data: &Path, epochs: usize) -> PathBuf {
    let text = format!(
        r#"name = "ddp"
[data]
root = "{root}"
kind = "rgbnt201"
image_size = [32, 16]
random_erasing = false
[model]
clip = "tiny"
num_cameras = 0
text = "off"
[model.tmse]
dropout = 0.0
[model.csse]
dropout = 0.0
[loader]
batch_size = 8
instances_per_id = 2
workers = 1
prefetch = 1
[solver]
base_lr = 1e-3
clip_lr = 1e-3
epochs = {epochs}
warmup_epochs = 0
seed = 3
max_steps_per_epoch = 3
[eval]
every = 0
missing_modalities = false
batch_size = 8
"#,
        root = data.display()
    );
    let path = dir.join(format!("ddp-{epochs}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Every float parameter and buffer of the model saved in `checkpoint`.
fn weights(checkpoint: &Path) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.extend(data.to_vec::<f32>().unwrap());
        }
    }
    let device = Default::default();
    let model = NextModel::<Flex>::from_checkpoint(checkpoint, &device).unwrap();
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `next train` arguments of rank `rank` of 2 processes.
fn rank_args(
    config: &Path,
    out: &Path,
    rank: usize,
    orchestrator: u16,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--config",
        &config.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--rank",
        &rank.to_string(),
        "--world-size",
        "2",
        "--orchestrator",
        &format!("ws://127.0.0.1:{orchestrator}"),
        "--collective-timeout",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Run ranks 0 and 1 to the end through a fresh orchestrator; both must succeed.
fn run_two(tmp: &Path, config: &Path, out: &Path, extra: &[&str], tag: &str) {
    let port = free_port();
    let _orchestrator = Proc::start(
        &["orchestrator".into(), "--port".into(), port.to_string()],
        &tmp.join(format!("orchestrator-{tag}.log")),
    );
    let logs = [0, 1].map(|r| tmp.join(format!("rank{r}-{tag}.log")));
    let mut ranks: Vec<Proc> = (0..2)
        .map(|r| Proc::start(&rank_args(config, out, r, port, extra), &logs[r]))
        .collect();
    for (r, p) in ranks.iter_mut().enumerate() {
        let ok = p.wait();
        assert!(
            ok,
            "rank {r} failed:\n{}",
            std::fs::read_to_string(&logs[r]).unwrap()
        );
    }
}

#[test]
fn two_processes_match_one_and_a_killed_rank_stops_the_other_then_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let synth = SynthConfig {
        train_ids: 6,
        test_ids: 2,
        images_per_id: 4,
        image_size: Some([32, 16]),
        ..SynthConfig::default()
    };
    write_synthetic(&synth, &tmp.join("data"), &mut Progress::hidden(0)).unwrap();
    let config = write_config(tmp, &tmp.join("data"), 1);

    // One process, one device.
    let single = tmp.join("single");
    let log = tmp.join("single.log");
    let ok = Proc::start(
        &[
            "train".into(),
            "--config".into(),
            config.display().to_string(),
            "--out".into(),
            single.display().to_string(),
        ],
        &log,
    )
    .wait();
    assert!(ok, "{}", std::fs::read_to_string(&log).unwrap());

    // Two processes (one device each) sharing the output folder: rank 0 writes it.
    let multi = tmp.join("multi");
    run_two(tmp, &config, &multi, &[], "fresh");
    let diff = max_abs_diff(
        &weights(&single.join("last.ckpt")),
        &weights(&multi.join("last.ckpt")),
    );
    eprintln!("2 processes vs 1: max |dw| = {diff}");
    assert!(diff <= TOLERANCE, "2 processes vs 1: max |dw| = {diff}");

    // Kill rank 1 in epoch 2 (it blocks there): rank 0 stops with an error, no hang.
    let three = write_config(tmp, &tmp.join("data"), 3);
    let port = free_port();
    let _orchestrator = Proc::start(
        &["orchestrator".into(), "--port".into(), port.to_string()],
        &tmp.join("orchestrator-kill.log"),
    );
    let killed = tmp.join("killed");
    let log0 = tmp.join("rank0-kill.log");
    let mut rank0 = Proc::start(&rank_args(&three, &killed, 0, port, &[]), &log0);
    let mut rank1 = Proc::start(
        &rank_args(&three, &killed, 1, port, &["--hang-after-epoch", "1"]),
        &tmp.join("rank1-kill.log"),
    );
    let started = Instant::now();
    while !killed.join("last.ckpt").is_file() {
        assert!(started.elapsed() < LIMIT, "no checkpoint after epoch 1");
        assert!(rank0.0.try_wait().unwrap().is_none(), "rank 0 ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    rank1.0.kill().unwrap();
    let ok = rank0.wait();
    let text = std::fs::read_to_string(&log0).unwrap();
    assert!(!ok, "rank 0 went on without rank 1:\n{text}");
    assert!(text.contains("data-parallel training, rank 0"), "{text}");
    // The orchestrator saw rank 1's connection drop (not a timeout of rank 0's call).
    assert!(text.contains("node 1 lost its connection"), "{text}");
    let epochs = |dir: &Path| {
        std::fs::read_to_string(dir.join("epochs.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(epochs(&killed), 1);

    // Resume with two processes: the run ends after epoch 3.
    run_two(tmp, &three, &killed, &["--resume"], "resume");
    assert_eq!(epochs(&killed), 3);
    let ck = Checkpoint::load(&killed.join("last.ckpt")).unwrap();
    assert_eq!(ck.header["epochs_done"], 3);
}
