//! The any-modality side of `next eval` (`--protocols`, `--query-modalities` /
//! `--gallery-modalities`) and `next search` (`--text`, `--sketch`, combined with `--rgb`,
//! `--nir`, `--tir`): parsing, printing and the rank-list picture with the query drawn as what
//! it is (the description written out, the sketch drawn). The logic is the library's
//! (`next_reid::train::query`).

use crate::args::{EvalArgs, SearchArgs};
use crate::config::RunConfig;
use crate::font::text_size;
use crate::grid::{paste, rank_grid, RankRow};
use crate::plot::{draw_text, save_png, BLACK, WHITE};
use crate::report::triplet_picture;
use crate::RunError;
use burn::tensor::backend::Backend;
use image::imageops::FilterType;
use image::RgbImage;
use next_reid::common::ModalitySet;
use next_reid::data::transform::decode_image;
use next_reid::data::{Dataset, TransformConfig};
use next_reid::metrics::top_k;
use next_reid::model::NextModel;
use next_reid::train::evaluate::eval_config;
use next_reid::train::query::extract_modality_set;
use next_reid::train::{
    default_protocols, embed_query, evaluate_protocols, format_protocol_table, EvalSettings,
    Protocol, QuerySpec,
};
use std::path::Path;

/// Height of the pictures in a rank list.
const PICTURE_HEIGHT: u32 = 48;

/// Parse a modality set given to `flag`; the error names the flag and the value.
pub fn parse_set(flag: &str, value: &str) -> Result<ModalitySet, RunError> {
    ModalitySet::parse(value).map_err(|e| RunError::Usage(format!("{flag} {value:?}: {e}")))
}

/// The protocols `next eval` was asked for (`None`: the usual evaluation).
pub fn requested_protocols(a: &EvalArgs) -> Result<Option<Vec<Protocol>>, RunError> {
    match (&a.query_modalities, &a.gallery_modalities) {
        (None, None) if a.protocols => Ok(Some(default_protocols())),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(RunError::Usage(
            "--gallery-modalities needs --query-modalities (e.g. --query-modalities text \
             --gallery-modalities RNT)"
                .into(),
        )),
        (Some(q), g) => {
            let query = parse_set("--query-modalities", q)?;
            let gallery = parse_set("--gallery-modalities", g.as_deref().unwrap_or("RNT"))?;
            Ok(Some(vec![Protocol { query, gallery }]))
        }
    }
}

/// Run and print the protocols (`strict`: an explicit set the model cannot run is an error).
pub fn eval_protocols<B: Backend>(
    a: &EvalArgs,
    protocols: &[Protocol],
    cfg: &RunConfig,
    dataset: &Dataset,
    model: &NextModel<B>,
    device: &B::Device,
) -> Result<(), RunError> {
    let untrained;
    let model = if a.untrained {
        untrained = model
            .config
            .init_with_clip::<B>(&model.clip_architecture, device)?;
        &untrained
    } else {
        model
    };
    let settings = EvalSettings::from_config(&cfg.train_config(), true);
    let strict = a.query_modalities.is_some();
    let report = evaluate_protocols(model, dataset, protocols, strict, &settings, device)?;
    let title = if a.untrained {
        "any-modality protocols, untrained weights (%)"
    } else {
        "any-modality protocols (%)"
    };
    print!("{}", format_protocol_table(title, &report));
    if let Some(path) = &a.protocol_json {
        crate::commands::write_json(path, "protocol results", &report)?;
    }
    Ok(())
}

/// Whether `next search` was asked for an any-modality query (a text or a sketch, or a gallery
/// modality set).
pub fn is_any_query(a: &SearchArgs) -> bool {
    a.text.is_some() || a.sketch.is_some() || a.gallery_modalities.is_some()
}

/// `next search` with a description, a sketch and / or spectrum images as one query, against
/// the gallery's `--gallery-modalities` (default RNT): printed, and drawn with `--png`.
pub fn search_any<B: Backend>(
    a: &SearchArgs,
    cfg: &RunConfig,
    dataset: &Dataset,
    model: &NextModel<B>,
    device: &B::Device,
) -> Result<(), RunError> {
    let spec = QuerySpec {
        text: a.text.clone(),
        images: [a.rgb.clone(), a.nir.clone(), a.tir.clone()],
        sketch: a.sketch.clone(),
    };
    let gallery_set = parse_set(
        "--gallery-modalities",
        a.gallery_modalities.as_deref().unwrap_or("RNT"),
    )?;
    let transform = TransformConfig::from_dataset(&dataset.config);
    let query = embed_query(model, &spec, transform, a.camera, device)?;
    let settings = EvalSettings::from_config(&cfg.train_config(), false);
    let (gallery, records) = extract_modality_set(
        model,
        &dataset.gallery,
        transform,
        gallery_set,
        &settings,
        device,
    )?;
    let ecfg = eval_config(dataset, cfg.eval.max_rank);
    let lists = top_k(&query.features, &gallery.features, None, a.top, &ecfg)?;
    let set = spec.modalities()?;
    println!("query {} ({set} -> {gallery_set} gallery):", query.keys[0]);
    let list = lists.first().map(Vec::as_slice).unwrap_or(&[]);
    for (rank, nb) in list.iter().enumerate() {
        let g = &dataset.gallery[records[nb.index]];
        println!(
            "  {:>3}. {:<40} id {:>5} cam {:>2} dist {:.4}",
            rank + 1,
            g.key,
            g.pid,
            g.camid,
            nb.distance
        );
    }
    if let Some(png) = &a.png {
        let ranked = list
            .iter()
            .map(|nb| {
                let g = &dataset.gallery[records[nb.index]];
                Ok((triplet_picture(g, PICTURE_HEIGHT)?, false))
            })
            .collect::<Result<Vec<_>, RunError>>()?;
        let row = RankRow {
            label: format!("Query ({set})"),
            query: query_picture(&spec, PICTURE_HEIGHT)?,
            ranked,
        };
        save_png(&rank_grid(&[row])?, png)?;
        println!("rank list drawn to {}", png.display());
    }
    Ok(())
}

/// The query as what it is: its images (spectra and sketch) side by side, then its description
/// written out in a box, `height` pixels high.
pub fn query_picture(spec: &QuerySpec, height: u32) -> Result<RgbImage, RunError> {
    let mut parts: Vec<RgbImage> = Vec::new();
    for path in spec
        .images
        .iter()
        .chain(std::iter::once(&spec.sketch))
        .flatten()
    {
        parts.push(scaled(path, height)?);
    }
    if let Some(text) = &spec.text {
        parts.push(text_picture(text.trim(), 2 * height, height)?);
    }
    let width = parts.iter().map(|p| p.width() + 2).sum::<u32>().max(1);
    let mut out = RgbImage::from_pixel(width, height, WHITE);
    let mut x = 0i64;
    for p in &parts {
        paste(&mut out, p, x, 0);
        x += p.width() as i64 + 2;
    }
    Ok(out)
}

/// An image file scaled to `height` pixels.
fn scaled(path: &Path, height: u32) -> Result<RgbImage, RunError> {
    let img = decode_image(path)?;
    let w = (img.width() as f64 * height as f64 / img.height().max(1) as f64)
        .round()
        .max(1.0) as u32;
    Ok(image::imageops::resize(
        &img,
        w,
        height,
        FilterType::Triangle,
    ))
}

/// Size in pixels of the description's text in a query picture.
const TEXT_SIZE: f64 = 9.0;

/// `text` word-wrapped into a `width` x `height` white box (lines that do not fit are cut, the
/// last shown line ending in "...").
fn text_picture(text: &str, width: u32, height: u32) -> Result<RgbImage, RunError> {
    let mut img = RgbImage::from_pixel(width, height, WHITE);
    let (_, line_h) = text_size("Ag", TEXT_SIZE)?;
    let line_h = line_h.max(1) + 1;
    let max_lines = (height / line_h).max(1) as usize;
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let candidate = if current.is_empty() {
            word.to_string()
        } else {
            format!("{current} {word}")
        };
        if text_size(&candidate, TEXT_SIZE)?.0 + 4 > width && !current.is_empty() {
            lines.push(std::mem::replace(&mut current, word.to_string()));
        } else {
            current = candidate;
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            last.push_str("...");
        }
    }
    for (i, line) in lines.iter().enumerate() {
        draw_text(
            &mut img,
            2,
            (i as u32 * line_h) as i32,
            line,
            TEXT_SIZE,
            BLACK,
        )?;
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modality_set_flags_name_the_flag_and_the_value() {
        let err = parse_set("--query-modalities", "RX")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--query-modalities") && err.contains("\"RX\""),
            "{err}"
        );
        let err = parse_set("--gallery-modalities", "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty modality set"), "{err}");
        assert_eq!(
            parse_set("--query-modalities", "S+text").unwrap().label(),
            "S+text"
        );
    }

    #[test]
    fn a_text_query_is_drawn_as_its_words() {
        let spec = QuerySpec {
            text: Some("a man in a grey hoodie with a black backpack".into()),
            ..QuerySpec::default()
        };
        let img = query_picture(&spec, 48).unwrap();
        assert_eq!(img.height(), 48);
        let dark = img.pixels().filter(|p| p.0[0] < 128).count();
        assert!(dark > 20, "the words are drawn ({dark} dark pixels)");
    }
}
