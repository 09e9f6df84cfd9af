//! Diagnostic: the TMSE routes of a freshly built model (CLIP as the config says, experts at
//! their initial values) on the query set: per modality the patch-token norm, the cosine of
//! each token to its modality's mean token, and per route the score-vs-threshold margin
//! (mean over samples of the mean over tokens, and its token-to-token std) with the tokens kept.
//!
//! `cargo run --release -p next-cli --example route_init -- CONFIG [--set k=v ...]`

use burn::backend::Flex;
use next_cli::config::RunConfig;
use next_reid::data::{eval_stream, load_dataset, TransformConfig};
use next_reid::model::NextModel;
use next_reid::train::evaluate::{batch_captions, ModalityMask};
use next_reid::train::text_cache::TextFeatureCache;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, rest) = args
        .split_first()
        .ok_or("usage: route_init CONFIG [--set k=v ...]")?;
    let overrides: Vec<String> = rest.iter().filter(|a| *a != "--set").cloned().collect();
    let mut cfg = RunConfig::load(Some(Path::new(path)), &overrides)?;
    let device = Default::default();
    let dataset = load_dataset(&cfg.data)?;
    cfg.model.num_classes = dataset.num_train_ids.max(1);
    let (model, _) = next_reid::train::build_model::<Flex>(&cfg.model, cfg.solver.seed, &device)?;
    let tmse = model.tmse.as_ref().ok_or("the config has no TMSE")?;
    let k = tmse.num_experts();
    let transform = TransformConfig::from_dataset(&dataset.config);
    let records = &dataset.query[..dataset.query.len().min(128)];
    let mut cache = TextFeatureCache::new();
    // sums over samples: [route][modality] of (mean margin, token std of margin, kept fraction)
    let mut acc = vec![[0f64; 3]; 3 * k];
    let mut acc_abs = vec![0f64; 3 * k];
    let mut token = [[0f64; 2]; 3];
    let mut samples = 0usize;
    for batch in eval_stream(records, transform, 32, 2, 2)? {
        let batch = batch?.into_tensors::<Flex>(&device);
        let n = batch.raw_pids.len();
        let captions = batch_captions(&batch.captions, ModalityMask::FULL);
        let texts = NextModel::<Flex>::inference_texts(&captions);
        let text = model
            .config
            .uses_text()
            .then(|| cache.features(&model, &texts, &device))
            .transpose()?
            .map(|t| t.reshape([n, 1, 3, model.dim()]));
        let (cls, patches) = model.encode_images(batch.images, None)?;
        let [_, _, tokens, dim] = patches.dims();
        for (m, sums) in token.iter_mut().enumerate() {
            let p = patches
                .clone()
                .slice_dim(1, m..m + 1)
                .reshape([n, tokens, dim]);
            let norm = p.clone().powi_scalar(2).sum_dim(2).sqrt();
            let mean = p.clone().mean_dim(1);
            let unit = p.clone() / norm.clone();
            let mean_unit = mean.clone() / mean.powi_scalar(2).sum_dim(2).sqrt();
            let cos = (unit * mean_unit).sum_dim(2);
            sums[0] += norm.mean().into_scalar() as f64 * n as f64;
            sums[1] += cos.mean().into_scalar() as f64 * n as f64;
        }
        let margins = tmse.route_margins(cls, patches, text)?; // [B, K, 3, N]
        let values: Vec<f32> = margins.into_data().to_vec().map_err(|e| format!("{e:?}"))?;
        for b in 0..n {
            for r in 0..k {
                for m in 0..3 {
                    let start = ((b * k + r) * 3 + m) * tokens;
                    let row = &values[start..start + tokens];
                    let mean = row.iter().map(|&v| v as f64).sum::<f64>() / tokens as f64;
                    let var =
                        row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / tokens as f64;
                    let kept = row.iter().filter(|&&v| v > 0.0).count() as f64 / tokens as f64;
                    let a = &mut acc[r * 3 + m];
                    a[0] += mean;
                    a[1] += var.sqrt();
                    a[2] += kept;
                    acc_abs[r * 3 + m] += mean.abs();
                }
            }
        }
        samples += n;
    }
    let s = samples as f64;
    println!("{samples} query samples, seed {}", cfg.solver.seed);
    for (m, name) in ["RGB", "NIR", "TIR"].iter().enumerate() {
        println!(
            "{name}: patch-token norm {:.3}, cosine to the modality's mean token {:.4}",
            token[m][0] / s,
            token[m][1] / s
        );
    }
    println!(
        "route (expert, modality): mean margin, |mean| margin, token std of margin, kept fraction"
    );
    for r in 0..k {
        for (m, name) in ["RGB", "NIR", "TIR"].iter().enumerate() {
            let a = acc[r * 3 + m];
            println!(
                "  expert {} {name}: {:+.4} {:.4} {:.4} {:.3}",
                r + 1,
                a[0] / s,
                acc_abs[r * 3 + m] / s,
                a[1] / s,
                a[2] / s
            );
        }
    }
    Ok(())
}
