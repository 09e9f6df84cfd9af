//! Evaluate features computed elsewhere.
//!
//! Reads a safetensors file with tensors `query`, `gallery` (features) and `query_pids`,
//! `query_camids`, `query_sceneids`, `gallery_pids`, `gallery_camids`, `gallery_sceneids`
//! (integers; scene ids may be omitted outside MSVR310) and prints mAP, rank-1/5/10, mINP and the
//! number of valid queries as JSON.
//!
//! `cargo run --release --example eval_features -- features.safetensors --protocol msvr --rerank`

use clap::Parser;
use next_reid::metrics::{
    evaluate, Distance, EvalConfig, EvalProtocol, FeatureSet, MetricsError, RerankConfig, Reranked,
};
use std::path::PathBuf;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Evaluate ReID features stored in a safetensors file")]
struct Args {
    /// The safetensors file.
    file: PathBuf,
    /// standard (pid + camera), msvr (pid + scene) or none (only the identical sample).
    #[arg(long, default_value = "standard")]
    protocol: EvalProtocol,
    /// squared_euclidean, euclidean or cosine.
    #[arg(long, default_value = "squared_euclidean")]
    distance: Distance,
    /// Use the features as given (the reference L2-normalises them).
    #[arg(long)]
    no_normalize: bool,
    /// Apply k-reciprocal re-ranking.
    #[arg(long)]
    rerank: bool,
    /// Re-ranking k1.
    #[arg(long, default_value_t = 20)]
    k1: usize,
    /// Re-ranking k2.
    #[arg(long, default_value_t = 6)]
    k2: usize,
    /// Re-ranking lambda.
    #[arg(long, default_value_t = 0.3)]
    lambda: f32,
    /// CMC length.
    #[arg(long, default_value_t = 50)]
    max_rank: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn run(args: &Args) -> Result<serde_json::Value, MetricsError> {
    let set = FeatureSet::from_safetensors(&args.file)?;
    // Input errors that do not name the file (scene ids missing for msvr, ...) get its name.
    let in_file = |e: MetricsError| match e {
        MetricsError::MissingSceneIds { .. } | MetricsError::NoValidQuery { .. } => {
            MetricsError::BadFile {
                path: args.file.clone(),
                message: e.to_string(),
            }
        }
        other => other,
    };
    let cfg = EvalConfig {
        protocol: args.protocol,
        distance: args.distance,
        max_rank: args.max_rank,
        threads: args.threads,
        normalize: !args.no_normalize,
        query_is_gallery: set.query_is_gallery(),
        ..EvalConfig::default()
    };
    let report = if args.rerank {
        let rerank = RerankConfig {
            k1: args.k1,
            k2: args.k2,
            lambda: args.lambda,
        };
        Reranked::new(&set.query, &set.gallery, &rerank, &cfg)
            .and_then(|r| r.evaluate(&set.query_meta, &set.gallery_meta))
            .map_err(in_file)?
    } else {
        evaluate(
            &set.query,
            &set.gallery,
            &set.query_meta,
            &set.gallery_meta,
            &cfg,
        )
        .map_err(in_file)?
    };
    let mut json = serde_json::to_value(report.summary()).unwrap_or_default();
    json["reranked"] = args.rerank.into();
    json["query_is_gallery"] = cfg.query_is_gallery.into();
    Ok(json)
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(json) => println!("{json:#}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
