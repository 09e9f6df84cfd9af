//! CLIP ViT-B/16 vision forward on the CPU backend: batch 8 at 256x128 (the ReID input size),
//! random weights. Prints images/s.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use next_reid::backend::{Cpu, CpuDevice};
use next_reid::burn::tensor::{Distribution, Tensor};
use next_reid::clip::{ClipConfig, ClipVision};

const BATCH: usize = 8;
const HEIGHT: usize = 256;
const WIDTH: usize = 128;

fn vision_forward(c: &mut Criterion) {
    let device = CpuDevice::default();
    let config = ClipConfig::vit_b16();
    let vision = ClipVision::<Cpu>::new(&config.vision, config.projection_dim, 0, 1.0, &device);
    let pixels = Tensor::<Cpu, 4>::random(
        [BATCH, 3, HEIGHT, WIDTH],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let run = || {
        let out = vision.forward(pixels.clone(), None);
        out.pooled.into_data()
    };

    // One warm-up pass and a plain timing so the number is printed even with criterion's
    // output filtered.
    run();
    let start = Instant::now();
    let rounds = 3;
    for _ in 0..rounds {
        run();
    }
    let seconds = start.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "clip_vision ViT-B/16 batch {BATCH} at {HEIGHT}x{WIDTH} on flex: {:.2} images/s ({:.1} ms/batch)",
        BATCH as f64 / seconds,
        seconds * 1e3
    );

    let mut group = c.benchmark_group("clip_vision");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("vit_b16_batch8_256x128_flex", |b| b.iter(run));
    group.finish();
}

criterion_group!(benches, vision_forward);
criterion_main!(benches);
