//! Data-parallel training speed on the CPU backend: steps/s of the tiny NEXT model with 1 device
//! and with 2 replicas (threads) at the same global PK batch, and the share of the replicas'
//! time spent in collective calls (gathers, gradient all-reduce; waiting included).
//!
//! `cargo bench -p next-train --bench data_parallel` (numbers depend on the machine's load:
//! note `uptime` beside them).

use burn::backend::{Autodiff, Flex};
use next_common::Progress;
use next_data::{load_dataset, write_synthetic, SynthConfig};
use next_model::{NextConfig, TextMode};
use next_train::distributed::collective_time;
use next_train::{train_parallel, DataParallel, StepInfo, TrainConfig, TrainOptions};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const STEPS: usize = 6;

fn main() {
    let tmp = tempfile::tempdir().expect("temporary folder");
    let synth = SynthConfig {
        train_ids: 16,
        test_ids: 2,
        images_per_id: 16,
        image_size: Some([128, 64]),
        ..SynthConfig::default()
    };
    let data = write_synthetic(&synth, &tmp.path().join("data"), &mut Progress::hidden(0))
        .expect("synthetic data")
        .dataset_config();
    let dataset = load_dataset(&data).expect("dataset");
    let mut model = NextConfig::tiny(1);
    model.text = TextMode::Off;
    let mut cfg = TrainConfig::default();
    cfg.solver.epochs = 1;
    cfg.solver.warmup_epochs = 0;
    cfg.solver.max_steps_per_epoch = STEPS;
    cfg.loader.batch_size = 32;
    cfg.loader.instances_per_id = 4;
    cfg.loader.workers = 1;
    cfg.eval.every = 0;
    let device = Default::default();
    println!(
        "tiny NEXT, 128x64 images, global batch {} ({} ids x {}), {STEPS} steps, CPU (Flex)",
        cfg.loader.batch_size,
        cfg.loader.batch_size / cfg.loader.instances_per_id,
        cfg.loader.instances_per_id
    );
    for devices in [1, 2] {
        // (global step, time, collective time) at the start of every step, every replica.
        let marks = Arc::new(Mutex::new(Vec::new()));
        let mut options = TrainOptions::new(tmp.path().join(format!("run-{devices}")));
        let hook_marks = marks.clone();
        options.step_hook = Some(Arc::new(move |info: &StepInfo| {
            let mark = (info.global_step, Instant::now(), collective_time());
            hook_marks.lock().expect("marks").push(mark);
        }));
        train_parallel::<Autodiff<Flex>>(
            &model,
            &cfg,
            &dataset,
            &options,
            &DataParallel::local(devices),
            &vec![device; devices],
        )
        .expect("training");
        let marks = marks.lock().expect("marks");
        let at = |step: usize| marks.iter().find(|m| m.0 == step).expect("step mark");
        // From the start of step 1 (step 0 warms up) to the start of the last step.
        let (first, last) = (at(1), at(STEPS - 1));
        let steps = STEPS - 2;
        let wall = (last.1 - first.1).as_secs_f64();
        let comm = (last.2 - first.2).as_secs_f64();
        println!(
            "{devices} device(s): {:.3} steps/s ({steps} steps in {wall:.2} s); collective calls \
             {:.1}% of the replicas' time",
            steps as f64 / wall,
            100.0 * comm / (devices as f64 * wall)
        );
    }
}
