//! Data-loading throughput: decode + train augmentation of 256x128 JPEG triplets on worker
//! threads (goal: >= 1,500 images/s on 2 cores), the test transform, and synthetic-benchmark
//! generation speed (goal: 1,000 triplets in a few seconds). Prints a table; images per
//! CPU-second is the figure that does not depend on other load on the machine.

use next_reid::common::Progress;
use next_reid::data::synth::{write_synthetic, SynthConfig};
use next_reid::data::transform::TransformConfig;
use next_reid::data::{
    eval_stream, load_dataset, train_stream, Dataset, PkSampler, SamplerState, TripletImages,
};
use std::time::Instant;

/// CPU seconds used by this process so far (user + system, all threads), from /proc on Linux.
/// The machine is shared, so images per CPU-second is the load-independent figure.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// A table row: case name, images, wall seconds, CPU seconds.
type Row = (String, usize, f64, Option<f64>);

/// Run `f` (returning the number of images it loaded) and measure wall and CPU time.
fn timed(name: String, f: impl FnOnce() -> usize) -> Row {
    let t = Instant::now();
    let cpu = cpu_seconds();
    let images = f();
    let seconds = t.elapsed().as_secs_f64();
    (
        name,
        images,
        seconds,
        cpu.zip(cpu_seconds()).map(|(a, b)| b - a),
    )
}

/// Load the training epochs `epochs` with `w` workers; returns the number of images.
fn train_epochs(
    ds: &Dataset,
    sampler: &PkSampler,
    tf: TransformConfig,
    w: usize,
    epochs: std::ops::Range<u64>,
) -> usize {
    let mut images = 0;
    for epoch in epochs {
        let state = SamplerState {
            seed: 1,
            epoch,
            next_batch: 0,
        };
        for b in train_stream(&ds.train, sampler, &state, tf, w, 2).expect("stream") {
            images += 3 * b.expect("batch").len();
        }
    }
    images
}

/// Load the training records `passes` times with the test transform; returns the number of images.
fn eval_passes(ds: &Dataset, tf: TransformConfig, w: usize, passes: usize) -> usize {
    let mut images = 0;
    for _ in 0..passes {
        for b in eval_stream(&ds.train, tf, 64, w, 2).expect("stream") {
            images += 3 * b.expect("batch").len();
        }
    }
    images
}

fn main() {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(2);
    let dir = std::env::temp_dir().join(format!("next-bench-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    // 1. Synthetic generation speed at the default size (128x64), 1,000 triplets.
    let gen_cfg = SynthConfig {
        train_ids: 100,
        test_ids: 25,
        images_per_id: 8,
        ..SynthConfig::default()
    };
    let t = Instant::now();
    let small =
        write_synthetic(&gen_cfg, &dir.join("gen"), &mut Progress::hidden(1000)).expect("generate");
    let gen_s = t.elapsed().as_secs_f64();
    let gen_triplets = small.train_triplets + small.test_triplets;

    // 2. A 256x128 JPEG set for loading.
    let cfg = SynthConfig {
        train_ids: 64,
        test_ids: 8,
        images_per_id: 8,
        image_size: Some([256, 128]),
        ..SynthConfig::default()
    };
    let summary = write_synthetic(&cfg, &dir.join("load"), &mut Progress::hidden(576))
        .expect("generate 256x128");
    let ds = load_dataset(&summary.dataset_config()).expect("load");
    let tf = TransformConfig::from_dataset(&ds.config);
    let labels: Vec<i64> = ds.train.iter().map(|r| r.label).collect();
    let sampler = PkSampler::new(&labels, 64, 8, 1).expect("sampler");

    let mut rows = Vec::new();
    for w in [1, workers] {
        // Warm-up epoch (file cache), then timed epochs.
        train_epochs(&ds, &sampler, tf, w, 0..1);
        rows.push(timed(
            format!("train decode+augment, {w} worker(s)"),
            || train_epochs(&ds, &sampler, tf, w, 1..7),
        ));
        rows.push(timed(
            format!("eval decode+resize+normalise, {w} worker(s)"),
            || eval_passes(&ds, tf, w, 6),
        ));
    }
    // The synthetic NIR/TIR files are grey JPEGs (decoded as one channel); the public datasets
    // store them as three-channel JPEGs, which cost a full colour decode: re-encode and time that.
    for r in &ds.train {
        if let TripletImages::Separate(paths) = &r.images {
            for path in &paths[1..] {
                let img = image::open(path).expect("reopen").to_rgb8();
                let mut bytes = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, cfg.jpeg_quality)
                    .encode_image(&img)
                    .expect("re-encode as RGB JPEG");
                std::fs::write(path, bytes).expect("write");
            }
        }
    }
    train_epochs(&ds, &sampler, tf, workers, 0..1);
    rows.push(timed(
        format!("train, 3-channel NIR/TIR JPEGs, {workers} worker(s)"),
        || train_epochs(&ds, &sampler, tf, workers, 1..7),
    ));
    rows.push(timed(
        format!("eval, 3-channel NIR/TIR JPEGs, {workers} worker(s)"),
        || eval_passes(&ds, tf, workers, 6),
    ));

    println!(
        "data_loading (256x128 JPEG triplets, {} train triplets)",
        ds.train.len()
    );
    println!(
        "{:<48} {:>8} {:>9} {:>10} {:>9} {:>13}",
        "case", "images", "seconds", "images/s", "cpu s", "img/cpu-s"
    );
    for (name, n, s, cpu) in &rows {
        let per_cpu = cpu.filter(|c| *c > 0.0).map_or(f64::NAN, |c| *n as f64 / c);
        println!(
            "{name:<48} {n:>8} {s:>9.3} {:>10.0} {:>9.2} {per_cpu:>13.0}",
            *n as f64 / s,
            cpu.unwrap_or(f64::NAN)
        );
    }
    println!(
        "{:<48} {:>8} {:>9.3} {:>10.0}",
        "synthetic generation (triplets, 128x64)",
        gen_triplets,
        gen_s,
        gen_triplets as f64 / gen_s
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "load average during the run (shared machine): {}",
            load.trim()
        );
    }
    println!("goal: >= 1,500 images/s with 2 workers on 2 idle cores (about 750 img/cpu-s)");
    let _ = std::fs::remove_dir_all(&dir);
}
