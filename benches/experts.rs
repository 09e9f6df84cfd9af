//! Expert throughput on the CPU backend (Flex): TMSE, CSSE and MGFA forward at batch 64 with the
//! paper's shapes (D = 512, N = 128 tokens per modality = 256x128 input), and the end-to-end NEXT
//! forward (ViT-B/16 + text encoder, random weights) in samples/s. Ends by printing the share of
//! inference time spent outside the CLIP encoders (goal: <= 15%).
//!
//! `cargo bench --bench experts`; `NEXT_BENCH_E2E_BATCH` sets the end-to-end batch (default 4),
//! `NEXT_BENCH_THREADS` the threads (default 2).

#[path = "support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use next_reid::aggregation::MgfaConfig;
use next_reid::backend::{Cpu, CpuDevice};
use next_reid::burn::prelude::*;
use next_reid::burn::tensor::Distribution;
use next_reid::experts::{CsseConfig, TmseConfig};
use next_reid::model::{NextConfig, NextInput, NextModel, SampleCaptions};
use std::time::{Duration, Instant};

const BATCH: usize = 64;
const DIM: usize = 512;
const TOKENS: usize = 128;

fn normal<const D: usize>(shape: [usize; D], device: &CpuDevice) -> Tensor<Cpu, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn sync(t: Tensor<Cpu, 2>) {
    let _ = t.into_data();
}

fn e2e_batch() -> usize {
    support::env_usize("NEXT_BENCH_E2E_BATCH", 4)
}

fn setup() {
    support::setup(support::env_usize("NEXT_BENCH_THREADS", 2));
}

fn e2e_input(batch: usize, device: &CpuDevice) -> NextInput<Cpu> {
    let caption = "A man in a dark jacket. He carries a backpack. Light trousers and white shoes.";
    let captions: Vec<SampleCaptions> = (0..batch)
        .map(|_| std::array::from_fn(|_| Some(caption.to_string())))
        .collect();
    NextInput {
        images: std::array::from_fn(|_| normal([batch, 3, 256, 128], device)),
        camera_ids: Some(Tensor::zeros([batch], device)),
        captions: Some(captions),
    }
}

fn time_it<F: FnMut()>(iters: usize, mut f: F) -> Duration {
    f();
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed() / iters as u32
}

fn bench_experts(c: &mut Criterion) {
    setup();
    let device = CpuDevice::default();
    let tmse = TmseConfig::default().init::<Cpu>(DIM, &device);
    let csse = CsseConfig::default().init::<Cpu>(DIM, &device);
    let mgfa = MgfaConfig::default()
        .init::<Cpu>(DIM, &device)
        .expect("MGFA");
    let cls = normal([BATCH, 3, DIM], &device);
    let patches = normal([BATCH, 3, TOKENS, DIM], &device);
    let text = normal([BATCH, 1, 3, DIM], &device);
    let sem = normal([BATCH, 3, DIM], &device);
    let st = normal([BATCH, 3, DIM], &device);

    let mut group = c.benchmark_group("experts_b64");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function(BenchmarkId::new("tmse", BATCH), |b| {
        b.iter(|| {
            let out = tmse
                .forward(cls.clone(), patches.clone(), Some(text.clone()))
                .expect("tmse");
            sync(out.features.reshape([BATCH, 3 * DIM]))
        })
    });
    group.bench_function(BenchmarkId::new("csse", BATCH), |b| {
        b.iter(|| {
            sync(
                csse.forward(patches.clone())
                    .expect("csse")
                    .features
                    .reshape([BATCH, 3 * DIM]),
            )
        })
    });
    group.bench_function(BenchmarkId::new("mgfa", BATCH), |b| {
        b.iter(|| {
            sync(
                mgfa.forward(cls.clone(), Some(sem.clone()), Some(st.clone()))
                    .expect("mgfa"),
            )
        })
    });
    group.finish();
}

fn full_model(device: &CpuDevice) -> NextModel<Cpu> {
    NextConfig::default()
        .init::<Cpu>(device)
        .expect("NEXT model")
}

fn bench_end_to_end(c: &mut Criterion) {
    setup();
    let device = CpuDevice::default();
    let model = full_model(&device);
    let batch = e2e_batch();
    let input = e2e_input(batch, &device);
    let mut group = c.benchmark_group("next_forward");
    group.throughput(Throughput::Elements(batch as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function(BenchmarkId::new("inference_vit_b16_256x128", batch), |b| {
        b.iter(|| sync(model.forward_inference(input.clone()).expect("forward")))
    });
    group.finish();

    // Share of inference time outside the CLIP encoders: the encoders and the heads (experts,
    // MGFA, neck) are timed separately on the same batch, the heads on the encoders' tokens.
    let iters = 3;
    let texts: Vec<Option<String>> = input.captions.iter().flatten().flatten().cloned().collect();
    let encode = || {
        let (cls, patches) = model
            .encode_images(input.images.clone(), input.camera_ids.clone())
            .expect("vision");
        let text = model.encode_texts(&texts).expect("text");
        (cls, patches, text)
    };
    let clip = time_it(iters, || {
        let (cls, _, text) = encode();
        let _ = cls.into_data();
        sync(text)
    });
    let (cls, patches, text) = encode();
    let dim = model.dim();
    let text = text.reshape([batch, 1, 3, dim]);
    let heads = time_it(iters, || {
        let out = model
            .forward_tokens(cls.clone(), patches.clone(), Some(text.clone()))
            .expect("heads");
        sync(out.feature)
    });
    let total = clip + heads;
    println!(
        "end-to-end batch {batch}: CLIP encoders {:.1} ms, experts + aggregation + neck {:.1} ms \
         = {:.1}% of inference (goal <= 15%); {:.2} samples/s",
        clip.as_secs_f64() * 1e3,
        heads.as_secs_f64() * 1e3,
        100.0 * heads.as_secs_f64() / total.as_secs_f64(),
        batch as f64 / total.as_secs_f64()
    );
}

criterion_group!(benches, bench_experts, bench_end_to_end);
criterion_main!(benches);
