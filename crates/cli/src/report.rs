//! Report pictures: training curves, the missing-modality chart, rank lists and expert
//! token-sampling masks (Fig. 9).

use crate::grid::{overlay_mask, paste, picture_table, rank_grid, RankRow};
use crate::plot::{bar_chart, line_chart, save_png, BarGroup, Series};
use crate::RunError;
use burn::tensor::backend::Backend;
use image::imageops::FilterType;
use image::RgbImage;
use next_reid::common::Modality;
use next_reid::data::transform::{decode_image, load_triplet};
use next_reid::data::TripletImages;
use next_reid::data::{eval_stream, Dataset, TransformConfig, TripletRecord};
use next_reid::metrics::{top_k, EvalConfig};
use next_reid::model::NextModel;
use next_reid::train::evaluate::{batch_captions, Extracted, ModalityMask, SettingResult};
use next_reid::train::logs::read_json_lines;
use next_reid::train::EpochRecord;
use std::path::{Path, PathBuf};

/// Write `loss.png`, `lr.png` and (when evaluated) `map.png` with mAP and rank-1 per epoch.
pub fn write_curves(
    out_dir: &Path,
    step_log: &Path,
    history: &[EpochRecord],
) -> Result<Vec<PathBuf>, RunError> {
    let steps = if step_log.exists() {
        read_json_lines(step_log)?
    } else {
        Vec::new()
    };
    let series = |key: &str| -> Vec<(f64, f64)> {
        steps
            .iter()
            .filter_map(|v| Some((v.get("step")?.as_f64()?, v.get(key)?.as_f64()?)))
            .collect()
    };
    let mut written = Vec::new();
    let loss = line_chart(
        "Training loss",
        "step",
        "loss",
        &[
            Series {
                name: "total".into(),
                points: series("loss"),
            },
            Series {
                name: "identity (cross-entropy)".into(),
                points: series("id_loss"),
            },
            Series {
                name: "triplet".into(),
                points: series("triplet_loss"),
            },
        ],
    )?;
    let path = out_dir.join("loss.png");
    save_png(&loss, &path)?;
    written.push(path);
    let lr = line_chart(
        "Learning-rate schedule",
        "step",
        "learning rate",
        &[Series {
            name: "base learning rate".into(),
            points: series("lr"),
        }],
    )?;
    let path = out_dir.join("lr.png");
    save_png(&lr, &path)?;
    written.push(path);
    let evals: Vec<(f64, f64, f64)> = history
        .iter()
        .filter_map(|h| h.eval.as_ref().map(|e| (h.epoch as f64, e.map, e.rank1)))
        .collect();
    if !evals.is_empty() {
        let chart = line_chart(
            "Evaluation per epoch",
            "epoch",
            "percent",
            &[
                Series {
                    name: "mAP".into(),
                    points: evals.iter().map(|e| (e.0, e.1)).collect(),
                },
                Series {
                    name: "rank-1".into(),
                    points: evals.iter().map(|e| (e.0, e.2)).collect(),
                },
            ],
        )?;
        let path = out_dir.join("map.png");
        save_png(&chart, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// Draw the mAP of every evaluation setting (all modalities and each missing-modality setting) as
/// grouped bars, one group per labelled result list (e.g. untrained and trained model), into `path`.
pub fn write_missing_modality_chart(
    path: &Path,
    runs: &[(&str, &[SettingResult])],
) -> Result<(), RunError> {
    let settings: Vec<String> = runs
        .first()
        .map(|(_, results)| results.iter().map(|r| r.setting.clone()).collect())
        .unwrap_or_default();
    let groups: Vec<BarGroup> = runs
        .iter()
        .map(|(name, results)| BarGroup {
            name: (*name).to_string(),
            values: settings
                .iter()
                .map(|s| {
                    results
                        .iter()
                        .find(|r| &r.setting == s)
                        .map_or(f64::NAN, |r| r.map)
                })
                .collect(),
        })
        .collect();
    let chart = bar_chart(
        "mAP with missing modalities (-R: no RGB, -N: no NIR, -T: no TIR)",
        "mAP (%)",
        &settings,
        &groups,
    )?;
    save_png(&chart, path)?;
    Ok(())
}

/// The three modality images of a record side by side, scaled to `height` pixels; an empty path
/// (a missing modality of an image query) is drawn black.
pub fn triplet_picture(record: &TripletRecord, height: u32) -> Result<RgbImage, RunError> {
    let [r, n, t] = match &record.images {
        TripletImages::Separate(paths) if paths.iter().any(|p| p.as_os_str().is_empty()) => {
            let decoded = paths
                .iter()
                .map(|p| {
                    (!p.as_os_str().is_empty())
                        .then(|| decode_image(p))
                        .transpose()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (w, h) = decoded
                .iter()
                .flatten()
                .next()
                .map(|img| img.dimensions())
                .unwrap_or((height / 2, height));
            let mut it = decoded
                .into_iter()
                .map(|img| img.unwrap_or_else(|| RgbImage::new(w.max(1), h.max(1))));
            [0, 1, 2].map(|_| it.next().unwrap_or_default())
        }
        images => load_triplet(images)?,
    };
    let scale = |img: &RgbImage| {
        let w = (img.width() as f64 * height as f64 / img.height().max(1) as f64)
            .round()
            .max(1.0) as u32;
        image::imageops::resize(img, w, height, FilterType::Triangle)
    };
    let parts = [scale(&r), scale(&n), scale(&t)];
    let width: u32 = parts.iter().map(|p| p.width()).sum::<u32>() + 4;
    let mut out = RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let mut x = 0i64;
    for p in &parts {
        paste(&mut out, p, x, 0);
        x += p.width() as i64 + 2;
    }
    Ok(out)
}

/// Draw the rank lists of the first `queries` queries (top `ranks` each) into `path`.
pub fn write_rank_lists(
    path: &Path,
    dataset: &Dataset,
    query: &Extracted,
    gallery: &Extracted,
    cfg: &EvalConfig,
    queries: usize,
    ranks: usize,
) -> Result<(), RunError> {
    let lists = top_k(
        &query.features,
        &gallery.features,
        Some((&query.meta, &gallery.meta)),
        ranks,
        cfg,
    )?;
    let step = (dataset.query.len() / queries.max(1)).max(1);
    let mut rows = Vec::new();
    for qi in (0..dataset.query.len()).step_by(step).take(queries) {
        let q = &dataset.query[qi];
        let ranked = lists[qi]
            .iter()
            .map(|nb| {
                let g = &dataset.gallery[nb.index];
                Ok((triplet_picture(g, 48)?, g.pid == q.pid))
            })
            .collect::<Result<Vec<_>, RunError>>()?;
        rows.push(RankRow {
            label: format!("Query {qi}, identity {}", q.pid),
            query: triplet_picture(q, 48)?,
            ranked,
        });
    }
    save_png(&rank_grid(&rows)?, path)?;
    Ok(())
}

/// Draw the token-sampling masks of the semantic experts for a few query samples (Fig. 9): one
/// row per sample, one column per (expert, modality); dropped tokens are dimmed. Nothing is
/// drawn for a model without semantic experts. The token counts and overlaps over the whole
/// query set are [`next_reid::train::expert_mask_stats`]'s.
pub fn write_expert_masks<B: Backend>(
    path: &Path,
    model: &NextModel<B>,
    dataset: &Dataset,
    samples: usize,
    device: &B::Device,
) -> Result<(), RunError> {
    let Some(tmse) = &model.tmse else {
        return Ok(());
    };
    // One sample per identity, so that the rows show different people.
    let mut seen = std::collections::HashSet::new();
    let records: Vec<TripletRecord> = dataset
        .query
        .iter()
        .filter(|r| seen.insert(r.pid))
        .take(samples)
        .cloned()
        .collect();
    if records.is_empty() {
        return Ok(());
    }
    let transform = TransformConfig::from_dataset(&dataset.config);
    let mut stream = eval_stream(&records, transform, records.len(), 1, 1)?;
    let Some(batch) = stream.next_tensors::<B>(device) else {
        return Ok(());
    };
    let batch = batch?;
    let [h, w] = dataset.config.size();
    let (rows, cols) = model.vision.grid_for(h as usize, w as usize)?;
    let captions = model
        .config
        .uses_text()
        .then(|| batch_captions(&batch.captions, ModalityMask::FULL));
    let text = match captions {
        Some(c) => {
            let texts: Vec<Option<String>> = c.iter().flatten().cloned().collect();
            Some(
                model
                    .encode_texts(&texts)?
                    .reshape([records.len(), 1, 3, model.dim()]),
            )
        }
        None => None,
    };
    let (class_tokens, patches) = model.encode_images(batch.images, Some(batch.camids))?;
    let out = tmse
        .forward(class_tokens, patches, text)
        .map_err(|e| RunError::Model(next_reid::model::ModelError::Experts(e)))?;
    let [b, k, m, n] = out.masks.dims();
    let masks: Vec<f32> = out
        .masks
        .into_data()
        .convert::<f32>()
        .to_vec()
        .map_err(|e| {
            RunError::Train(next_reid::train::TrainError::TensorData {
                what: "expert masks",
                message: format!("{e:?}"),
            })
        })?;
    let mut cells = Vec::new();
    let mut names = Vec::new();
    for (s, record) in records.iter().enumerate().take(b) {
        let images = load_triplet(&record.images)?;
        let mut row = Vec::new();
        for e in 0..k {
            for (mi, img) in images.iter().enumerate().take(m) {
                let img = image::imageops::resize(
                    img,
                    (w * 2).min(256),
                    (h * 2).min(512),
                    FilterType::Triangle,
                );
                let start = ((s * k + e) * m + mi) * n;
                let mask: Vec<bool> = masks[start..start + n].iter().map(|v| *v > 0.5).collect();
                row.push(overlay_mask(&img, &mask, rows, cols));
            }
        }
        cells.push(row);
        names.push(format!("identity {}", record.pid));
    }
    let columns: Vec<String> = (1..=k)
        .flat_map(|e| Modality::ALL.map(|m| format!("expert {e}, {m}")))
        .collect();
    let picture = picture_table(&names, &columns, &cells)?;
    save_png(&picture, path)?;
    Ok(())
}
