//! CLIP ViT-B/16 vision tower on the CPU backend against PyTorch, side by side in one run: batch 8
//! at 256x128 (the ReID input size), fp32, random weights, the same thread count on both sides.
//! Inference is the forward pass (all tokens projected); training is forward + backward of
//! `mean(tokens^2)`, as `benches/torch_clip_bench.py` does. Prints both and the ratio.
//!
//! `cargo bench --bench clip_vision`. The PyTorch side runs when `python3` (or
//! `NEXT_BENCH_PYTHON`) imports torch and transformers, and is skipped with a note otherwise.
//! `NEXT_BENCH_THREADS` (default 2) sets both thread counts, `NEXT_BENCH_ROUNDS` (default 3) the
//! timed rounds after one warm-up, `NEXT_BENCH_MODES` (default `infer,train`) what runs.

use std::process::Command;
use std::time::Instant;

use next_reid::backend::{Cpu, CpuDevice, CpuTrain};
use next_reid::burn::tensor::backend::Backend;
use next_reid::burn::tensor::{Distribution, Tensor};
use next_reid::clip::{ClipConfig, ClipVision};

#[path = "support/mod.rs"]
mod support;

use support::env_usize;

const BATCH: usize = 8;
const HEIGHT: usize = 256;
const WIDTH: usize = 128;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Seconds per call of `step`: one warm-up call, then the mean of `rounds` calls.
fn seconds_per_round(rounds: usize, mut step: impl FnMut()) -> f64 {
    step();
    let start = Instant::now();
    for _ in 0..rounds {
        step();
    }
    start.elapsed().as_secs_f64() / rounds as f64
}

fn vision<B: Backend>(device: &B::Device) -> (ClipVision<B>, Tensor<B, 4>) {
    let config = ClipConfig::vit_b16();
    let vision = ClipVision::<B>::new(&config.vision, config.projection_dim, 0, 1.0, device);
    let pixels = Tensor::<B, 4>::random(
        [BATCH, 3, HEIGHT, WIDTH],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    (vision, pixels)
}

/// Images/s of our inference.
fn ours_infer(rounds: usize) -> f64 {
    let device = CpuDevice::default();
    let (vision, pixels) = vision::<Cpu>(&device);
    let seconds = seconds_per_round(rounds, || {
        let out = vision.forward(pixels.clone(), None);
        let _ = out.tokens.sum().into_data();
    });
    BATCH as f64 / seconds
}

/// Images/s of our training step (forward + backward, no optimiser).
fn ours_train(rounds: usize) -> f64 {
    let device = CpuDevice::default();
    let (vision, pixels) = vision::<CpuTrain>(&device);
    let seconds = seconds_per_round(rounds, || {
        let out = vision.forward(pixels.clone(), None);
        let loss = out.tokens.powi_scalar(2).mean();
        let grads = loss.backward();
        drop(grads);
    });
    BATCH as f64 / seconds
}

/// Images/s of PyTorch for `mode`, or why it did not run.
fn torch(mode: &str, threads: usize) -> Result<f64, String> {
    let python = env_or("NEXT_BENCH_PYTHON", "python3");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/torch_clip_bench.py");
    let args = [threads, BATCH, HEIGHT, WIDTH].map(|v| v.to_string());
    let output = Command::new(&python)
        .arg(script)
        .args(&args)
        .arg(mode)
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no output");
        return Err(format!("{python} {script} failed: {last}"));
    }
    let line = stdout.lines().last().unwrap_or_default();
    println!("  {line}");
    line.split(": ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("unexpected output from {script}: {line}"))
}

fn main() {
    let threads = env_usize("NEXT_BENCH_THREADS", 2);
    let rounds = env_usize("NEXT_BENCH_ROUNDS", 3).max(1);
    support::setup(threads);
    println!(
        "clip_vision: ViT-B/16, batch {BATCH} at {HEIGHT}x{WIDTH}, fp32, {threads} threads, \
         {rounds} rounds after a warm-up"
    );
    for mode in env_or("NEXT_BENCH_MODES", "infer,train").split(',') {
        let reference = torch(mode, threads);
        let ours = match mode {
            "infer" => ours_infer(rounds),
            "train" => ours_train(rounds),
            other => {
                eprintln!("unknown mode {other:?} (expected infer or train)");
                continue;
            }
        };
        print!("  next-reid flex {mode}: {ours:.2} images/s");
        match reference {
            Ok(torch) => println!(
                " | PyTorch {torch:.2} images/s | ratio {:.2}x",
                ours / torch
            ),
            Err(why) => println!(" | PyTorch reference skipped: {why}"),
        }
    }
}
