//! Scale benchmark of the metrics crate (plain `main`, printed as a table).
//!
//! Each variant runs in its own child process so that its peak memory (VmHWM) is its own:
//! - `streaming`: `evaluate` (tiled GEMM, exact AP/CMC/mINP without the Q x G matrix);
//! - `textbook`: full Q x G distance matrix, then a stable argsort per row and the reference
//!   loop (`distance_matrix` + `evaluate_distance_matrix`);
//! - `rerank`: sparse k-reciprocal re-ranking + evaluation.
//!
//! `cargo bench --bench metrics_scale -- [--queries 10000] [--gallery 100000] [--dim 1536]
//!  [--textbook-queries N] [--rerank-queries 5000] [--rerank-gallery 50000] [--rerank-dim 1536]
//!  [--threads 2] [--skip-textbook] [--skip-rerank]`
//! Synthetic data: `queries / 10` identities, gallery identities drawn uniformly, features = a
//! random centre per identity plus noise (identities overlap), L2-normalised.

use clap::Parser;
use next_metrics::{
    distance_matrix, evaluate, evaluate_distance_matrix, EvalConfig, EvalReport, Features,
    RerankConfig, Reranked, SampleMeta,
};
use std::process::Command;
use std::time::Instant;

/// Benchmark options.
#[derive(Parser, Debug, Clone)]
struct Args {
    /// Queries of the streaming run.
    #[arg(long, default_value_t = 10_000)]
    queries: usize,
    /// Gallery size of the streaming and textbook runs.
    #[arg(long, default_value_t = 100_000)]
    gallery: usize,
    /// Feature dimension.
    #[arg(long, default_value_t = 1536)]
    dim: usize,
    /// Queries of the textbook run (default: same as --queries); its time and memory are also
    /// reported scaled linearly to --queries when smaller.
    #[arg(long)]
    textbook_queries: Option<usize>,
    /// Queries of the re-ranking run.
    #[arg(long, default_value_t = 5_000)]
    rerank_queries: usize,
    /// Gallery of the re-ranking run.
    #[arg(long, default_value_t = 50_000)]
    rerank_gallery: usize,
    /// Feature dimension of the re-ranking run.
    #[arg(long, default_value_t = 1536)]
    rerank_dim: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Skip the textbook run.
    #[arg(long)]
    skip_textbook: bool,
    /// Skip the re-ranking run.
    #[arg(long)]
    skip_rerank: bool,
    /// Internal: run one variant in this process and print its result line.
    #[arg(long, hide = true)]
    variant: Option<String>,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

/// SplitMix64 random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Roughly normal: sum of four uniforms, centred.
    fn noise(&mut self) -> f32 {
        let x = self.next();
        let u = |s: u32| ((x >> s) & 0xFFFF) as f32 / 65536.0;
        (u(0) + u(16) + u(32) + u(48)) - 2.0
    }
}

/// Synthetic clustered features and metadata (normalised in place).
fn synthetic(
    rows: usize,
    dim: usize,
    ids: usize,
    seed: u64,
    centres: &[f32],
) -> (Features, Vec<SampleMeta>) {
    let mut rng = Rng(seed);
    let meta: Vec<SampleMeta> = (0..rows)
        .map(|_| SampleMeta::new((rng.next() % ids as u64) as i64, (rng.next() % 6) as i64, 0))
        .collect();
    // Noise grows with sqrt(sqrt(dim)) so that identities overlap (mAP well below 1) at any dim.
    let noise = (0.35 * (dim as f32).sqrt()).sqrt();
    let mut data = vec![0.0f32; rows * dim];
    for (row, m) in data.chunks_exact_mut(dim).zip(&meta) {
        let centre = &centres[m.pid as usize * dim..(m.pid as usize + 1) * dim];
        for (v, c) in row.iter_mut().zip(centre) {
            *v = c + noise * rng.noise();
        }
    }
    let mut features = Features::new(data, rows, dim).expect("consistent shape");
    features.l2_normalize();
    (features, meta)
}

fn dataset(
    queries: usize,
    gallery: usize,
    dim: usize,
) -> (Features, Vec<SampleMeta>, Features, Vec<SampleMeta>) {
    let ids = (queries / 10).max(1);
    let mut rng = Rng(42);
    let centres: Vec<f32> = (0..ids * dim).map(|_| rng.noise()).collect();
    let (q, qm) = synthetic(queries, dim, ids, 1, &centres);
    let (g, gm) = synthetic(gallery, dim, ids, 2, &centres);
    (q, qm, g, gm)
}

/// User + system CPU seconds of this process so far (from /proc/self/stat, 100 ticks/s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after_name
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // After the name: state is field 0 (not numeric, skipped), utime and stime are fields 11, 12.
    match (fields.get(10), fields.get(11)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

fn peak_memory_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Run one variant here and print `RESULT wall_s input_mb peak_mb map rank1`.
fn run_variant(args: &Args, variant: &str) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = EvalConfig {
        threads: Some(args.threads),
        ..EvalConfig::default()
    };
    let (nq, ng, dim) = match variant {
        "textbook" => (
            args.textbook_queries.unwrap_or(args.queries),
            args.gallery,
            args.dim,
        ),
        "rerank" => (args.rerank_queries, args.rerank_gallery, args.rerank_dim),
        _ => (args.queries, args.gallery, args.dim),
    };
    let (q, qm, g, gm) = dataset(nq, ng, dim);
    let input_mb = peak_memory_mb();
    let cpu_start = cpu_seconds();
    let start = Instant::now();
    let report: EvalReport = match variant {
        "streaming" => evaluate(&q, &g, &qm, &gm, &cfg)?,
        "textbook" => {
            let matrix = distance_matrix(&q, &g, &cfg)?;
            evaluate_distance_matrix(&matrix, &qm, &gm, &cfg)?
        }
        "rerank" => Reranked::new(&q, &g, &RerankConfig::default(), &cfg)?.evaluate(&qm, &gm)?,
        other => return Err(format!("unknown variant {other}").into()),
    };
    let wall = start.elapsed().as_secs_f64();
    println!(
        "RESULT {wall:.3} {:.3} {input_mb:.1} {:.1} {:.6} {:.6}",
        cpu_seconds() - cpu_start,
        peak_memory_mb(),
        report.map,
        report.rank(1).unwrap_or(f64::NAN)
    );
    Ok(())
}

/// One finished variant.
struct Row {
    name: String,
    size: String,
    wall_s: f64,
    cpu_s: f64,
    input_mb: f64,
    peak_mb: f64,
    map: f64,
    rank1: f64,
}

fn spawn(args: &[String], variant: &str, name: String, size: String) -> Option<Row> {
    let exe = std::env::current_exe().ok()?;
    let output = Command::new(exe)
        .args(args)
        .args(["--variant", variant])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
        eprintln!(
            "{variant} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() == 6).then(|| Row {
        name,
        size,
        wall_s: v[0],
        cpu_s: v[1],
        input_mb: v[2],
        peak_mb: v[3],
        map: v[4],
        rank1: v[5],
    })
}

fn main() {
    let args = Args::parse();
    if let Some(variant) = &args.variant {
        if let Err(e) = run_variant(&args, variant) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    let forwarded: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let size = |q: usize, g: usize, d: usize| format!("{q} x {g} x {d}");
    let mut rows = Vec::new();
    rows.extend(spawn(
        &forwarded,
        "streaming",
        "streaming evaluate".into(),
        size(args.queries, args.gallery, args.dim),
    ));
    let textbook_queries = args.textbook_queries.unwrap_or(args.queries);
    if !args.skip_textbook {
        rows.extend(spawn(
            &forwarded,
            "textbook",
            "textbook full matrix + argsort".into(),
            size(textbook_queries, args.gallery, args.dim),
        ));
    }
    if !args.skip_rerank {
        rows.extend(spawn(
            &forwarded,
            "rerank",
            "k-reciprocal re-rank + evaluate".into(),
            size(args.rerank_queries, args.rerank_gallery, args.rerank_dim),
        ));
    }
    println!("threads: {}", args.threads);
    println!("| variant | Q x G x D | wall s | CPU s | input MB | peak MB | mAP | rank-1 |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.0} | {:.0} | {:.4} | {:.4} |",
            r.name, r.size, r.wall_s, r.cpu_s, r.input_mb, r.peak_mb, r.map, r.rank1
        );
    }
    let streaming = rows.iter().find(|r| r.name.starts_with("streaming"));
    let textbook = rows.iter().find(|r| r.name.starts_with("textbook"));
    if let (Some(s), Some(t)) = (streaming, textbook) {
        let scale = args.queries as f64 / textbook_queries as f64;
        let extra = t.peak_mb - t.input_mb;
        if scale != 1.0 {
            println!(
                "textbook scaled linearly to {} queries (per-row cost and matrix rows are linear in Q): {:.1} s, peak ~{:.0} MB",
                args.queries,
                t.wall_s * scale,
                s.input_mb + extra * scale
            );
        } else if (s.map - t.map).abs() > 1e-12 {
            println!("WARNING: mAP differs between streaming and textbook");
        }
        println!(
            "speed-up of streaming over textbook: {:.1}x",
            t.wall_s * scale / s.wall_s
        );
    }
}
