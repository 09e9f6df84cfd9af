//! A built-in synthetic tri-spectral ReID benchmark, written in the RGBNT201 layout with
//! NEXT-format caption files so that it loads through the real reader.
//!
//! Physics: by night the RGB camera sees a dark, noisy, sodium-tinted scene while the NIR camera
//! (active illumination) keeps fabric texture and the TIR camera shows body heat; TIR shows no
//! colour; glasses are seen in RGB (day) and TIR (cold lenses) but not NIR; stripes are strong in
//! NIR only; fabric NIR reflectance is unrelated to visible colour.
//!
//! Identities come in look-alike triples ([`LookAlikes`]). By default a triple wears the same
//! garment models (upper and lower type with their fabrics: NIR reflectance and stripes) and shares
//! sex and hair length, while every member wears them in its own colours (the lower-garment colour
//! distinct inside the triple) and draws its own shoes, hair tone, skin, glasses, bag, build and body
//! heat. So, as on real RGBNT201, RGB (colours, by day) and TIR (heat, hot spot, build) each tell
//! members apart, NIR less (same fabrics: only hair tone, skin, bag and build differ) but it keeps
//! working at night when RGB is dark, and no single modality separates everyone: night hides
//! colours from RGB, TIR sees no colour, NIR neither colour nor heat. `LookAlikes::AllVisible`
//! is the earlier drawing (a triple shares every RGB-visible garment, so RGB identified worst),
//! kept for the `next pretrain` split that the committed tiny CLIP was trained on.
//!
//! Each shot also gets a line drawing of the identity in `SK/` beside `RGB/`, `NI/`, `TI/` (same
//! file name; see [`sketch`]), read with `data.sketch = "folder"`; `sketches = false` leaves it out.

pub mod identity;
pub mod render;
mod shapes;
pub mod sketch;

use crate::captions::captions_to_json;
use crate::config::{DatasetConfig, DatasetKind};
use crate::error::{DataError, Result};
use crate::transform::mix_seed;
pub use identity::LookAlikes;
use identity::{draw_identities, person_caption, vehicle_caption, Identity, Shot};
use image::RgbImage;
use next_common::{FileError, Modality, Progress};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What the synthetic objects are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SynthObject {
    /// Pedestrians (tall images).
    #[default]
    Person,
    /// Vehicles (wide images).
    Vehicle,
}

/// Settings of the synthetic benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthConfig {
    /// Seed: the same seed writes the same files.
    pub seed: u64,
    /// Persons or vehicles.
    pub object: SynthObject,
    /// Training identities.
    pub train_ids: usize,
    /// Test identities (test is query and gallery, as in RGBNT201).
    pub test_ids: usize,
    /// Pid of the first identity (identities are drawn from the seed and their pid, so another
    /// pid range gives other identities: `next pretrain` uses one disjoint from the benchmark's).
    pub first_pid: u32,
    /// Images (triplets) per identity, spread over the cameras.
    pub images_per_id: usize,
    /// Cameras (1..=9).
    pub cameras: u32,
    /// Image `[height, width]`; default 128x64 persons, 64x128 vehicles.
    pub image_size: Option<[u32; 2]>,
    /// Fraction of night-time images.
    pub night_ratio: f32,
    /// Fraction of motion-blurred images.
    pub blur_ratio: f32,
    /// JPEG quality (1..=100).
    pub jpeg_quality: u8,
    /// Draw a sketch of every shot into `SK/` (default true).
    pub sketches: bool,
    /// What the members of a look-alike group of three share (default: garment models, not colours).
    pub look_alikes: LookAlikes,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 2024,
            object: SynthObject::Person,
            train_ids: 48,
            test_ids: 24,
            first_pid: 1,
            images_per_id: 8,
            cameras: 4,
            image_size: None,
            night_ratio: 0.4,
            blur_ratio: 0.15,
            jpeg_quality: 90,
            sketches: true,
            look_alikes: LookAlikes::default(),
        }
    }
}

impl SynthConfig {
    /// Effective image size `[height, width]`.
    pub fn size(&self) -> [u32; 2] {
        self.image_size.unwrap_or(match self.object {
            SynthObject::Person => [128, 64],
            SynthObject::Vehicle => [64, 128],
        })
    }

    /// Check every field's range; the error names the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(DataError::Config {
                path: PathBuf::from("<synth config>"),
                reason,
            })
        };
        let [h, w] = self.size();
        if !(16..=1024).contains(&h) || !(16..=1024).contains(&w) {
            return bad(format!(
                "image_size must be within 16..=1024, got [{h}, {w}]"
            ));
        }
        if !(2..=9).contains(&self.cameras) {
            return bad(format!(
                "cameras must be 2..=9 (RGBNT201 names; every test id needs a cross-camera match), got {}",
                self.cameras
            ));
        }
        let last_pid = self
            .train_ids
            .checked_add(self.test_ids)
            .and_then(|n| n.checked_add(self.first_pid as usize));
        if self.train_ids == 0
            || self.test_ids == 0
            || self.first_pid == 0
            || last_pid.is_none_or(|n| n > 1_000_000)
        {
            return bad(format!(
                "train_ids ({}) and test_ids ({}) must be positive and, from first_pid ({}, at least 1), fit 6-digit pids (at most 999999)",
                self.train_ids, self.test_ids, self.first_pid
            ));
        }
        if !(2..=10_000).contains(&self.images_per_id) {
            return bad(format!(
                "images_per_id must be 2..=10000 (every test id needs a cross-camera match), got {}",
                self.images_per_id
            ));
        }
        for (key, value) in [
            ("night_ratio", self.night_ratio),
            ("blur_ratio", self.blur_ratio),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return bad(format!("{key} must be within 0..=1, got {value}"));
            }
        }
        if self.jpeg_quality == 0 || self.jpeg_quality > 100 {
            return bad(format!(
                "jpeg_quality must be 1..=100, got {}",
                self.jpeg_quality
            ));
        }
        Ok(())
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSummary {
    /// Dataset root (RGBNT201 layout).
    pub root: PathBuf,
    /// Caption folder (`train_RGB.json` ... `test_TI.json`).
    pub captions: PathBuf,
    /// Contact sheet PNG.
    pub contact_sheet: PathBuf,
    /// Training triplets.
    pub train_triplets: usize,
    /// Test triplets.
    pub test_triplets: usize,
    /// Object kind.
    pub object: SynthObject,
    /// Image `[height, width]`.
    pub image_size: [u32; 2],
    /// Whether `SK/` sketches were written.
    pub sketches: bool,
}

impl SynthSummary {
    /// A dataset configuration that loads the written benchmark with its captions.
    pub fn dataset_config(&self) -> DatasetConfig {
        let mut cfg =
            DatasetConfig::new(&self.root, DatasetKind::Rgbnt201).with_captions(&self.captions);
        cfg.image_size = Some(self.image_size);
        if self.sketches {
            cfg.sketch = crate::config::SketchSource::Folder;
        }
        cfg
    }
}

struct Job {
    id_index: usize,
    train: bool,
    name: String,
    shot: Shot,
}

fn plan_shots(cfg: &SynthConfig, ids: &[Identity]) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(ids.len() * cfg.images_per_id);
    for (k, id) in ids.iter().enumerate() {
        for j in 0..cfg.images_per_id {
            let seed = mix_seed(&[cfg.seed, 0x5407, id.pid as u64, j as u64]);
            let mut rng = SmallRng::seed_from_u64(seed);
            let camera = ((j as u32) + id.pid) % cfg.cameras;
            let shot = Shot {
                camera,
                view: rng.random_range(0..3),
                night: rng.random::<f32>() < cfg.night_ratio,
                blurry: rng.random::<f32>() < cfg.blur_ratio,
                seed: mix_seed(&[seed, 1]),
            };
            let name = format!(
                "{:06}_cam{}_{}_{:02}.jpg",
                id.pid,
                camera + 1,
                shot.night as u8,
                j
            );
            jobs.push(Job {
                id_index: k,
                train: k < cfg.train_ids,
                name,
                shot,
            });
        }
    }
    jobs
}

/// Encode an 8-bit RGB or grey image as JPEG and write it to `path`.
fn write_jpeg<P>(path: &Path, img: &image::ImageBuffer<P, Vec<u8>>, quality: u8) -> Result<()>
where
    P: image::PixelWithColorType<Subpixel = u8>,
{
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality)
        .encode_image(img)
        .map_err(|e| DataError::CorruptImage {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    std::fs::write(path, buf).map_err(|e| FileError::new("writing", path, e).into())
}

fn caption(id: &Identity, shot: &Shot, object: SynthObject, m: Modality) -> String {
    match object {
        SynthObject::Person => person_caption(id, shot, m),
        SynthObject::Vehicle => vehicle_caption(id, shot, m),
    }
}

/// Write the synthetic benchmark under `out_dir`: `train_171/{RGB,NI,TI,SK}`, `test/{RGB,NI,TI,SK}`,
/// `captions/{train,test}_{RGB,NI,TI}.json` and `contact_sheet.png`. Deterministic from the seed;
/// rendering runs on the rayon pool and reports to `progress` (one step per triplet).
pub fn write_synthetic(
    cfg: &SynthConfig,
    out_dir: &Path,
    progress: &mut Progress,
) -> Result<SynthSummary> {
    cfg.validate()?;
    let size = cfg.size();
    let vehicle = cfg.object == SynthObject::Vehicle;
    let ids = draw_identities(
        cfg.seed,
        cfg.first_pid,
        cfg.train_ids + cfg.test_ids,
        cfg.look_alikes,
    );
    let jobs = plan_shots(cfg, &ids);
    let split_dir = |train: bool| out_dir.join(if train { "train_171" } else { "test" });
    for train in [true, false] {
        let rgb = split_dir(train).join("RGB");
        let occupied = std::fs::read_dir(&rgb)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if occupied {
            return Err(DataError::Config {
                path: rgb,
                reason: "already holds images; remove the folder or choose another output folder"
                    .into(),
            });
        }
    }
    for train in [true, false] {
        for tag in modality_folders(cfg) {
            let d = split_dir(train).join(tag);
            std::fs::create_dir_all(&d).map_err(|e| FileError::new("creating folder", &d, e))?;
        }
    }
    let mut captions: [Vec<Vec<(String, String)>>; 2] = Default::default();
    for list in captions.iter_mut() {
        *list = vec![Vec::new(); 3];
    }
    for chunk in jobs.chunks(64) {
        let results: Vec<Result<[String; 3]>> = chunk
            .par_iter()
            .map(|job| {
                let id = &ids[job.id_index];
                let (rgb, nir, tir) =
                    render::render_triplet(id, &job.shot, vehicle, size, cfg.seed);
                let dir = split_dir(job.train);
                write_jpeg(&dir.join("RGB").join(&job.name), &rgb, cfg.jpeg_quality)?;
                write_jpeg(&dir.join("NI").join(&job.name), &nir, cfg.jpeg_quality)?;
                write_jpeg(&dir.join("TI").join(&job.name), &tir, cfg.jpeg_quality)?;
                if cfg.sketches {
                    let drawn = sketch::render_sketch(id, &job.shot, vehicle, size);
                    write_jpeg(&dir.join("SK").join(&job.name), &drawn, cfg.jpeg_quality)?;
                }
                Ok(Modality::ALL.map(|m| caption(id, &job.shot, cfg.object, m)))
            })
            .collect();
        for (job, result) in chunk.iter().zip(results) {
            let texts = result?;
            let split = if job.train { 0 } else { 1 };
            for (m, text) in texts.into_iter().enumerate() {
                captions[split][m].push((job.name.clone(), text));
            }
        }
        progress.inc(chunk.len() as u64);
    }
    let caption_dir = out_dir.join("captions");
    for (split, prefix) in ["train", "test"].into_iter().enumerate() {
        for m in Modality::ALL {
            let path = caption_dir.join(format!("{prefix}_{}.json", m.caption_tag()));
            let json = captions_to_json(&captions[split][m.index()]);
            next_common::write_atomic(&path, json.as_bytes())?;
        }
    }
    let sheet_path = out_dir.join("contact_sheet.png");
    let sheet = contact_sheet(cfg, &ids, &jobs, size, vehicle);
    let mut png = Vec::new();
    sheet
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| DataError::CorruptImage {
            path: sheet_path.clone(),
            reason: e.to_string(),
        })?;
    next_common::write_atomic(&sheet_path, &png)?;
    let train_triplets = jobs.iter().filter(|j| j.train).count();
    Ok(SynthSummary {
        root: out_dir.to_path_buf(),
        captions: caption_dir,
        contact_sheet: sheet_path,
        train_triplets,
        test_triplets: jobs.len() - train_triplets,
        object: cfg.object,
        image_size: size,
        sketches: cfg.sketches,
    })
}

/// [`write_synthetic`] unless `out_dir` already holds the benchmark of exactly these settings
/// (recorded in `out_dir/synthetic.json` after a complete write), which is then reused.
pub fn write_or_reuse_synthetic(
    cfg: &SynthConfig,
    out_dir: &Path,
    progress: &mut Progress,
) -> Result<SynthSummary> {
    let marker = out_dir.join("synthetic.json");
    let wanted = serde_json::to_vec_pretty(cfg).map_err(|e| DataError::Setting(e.to_string()))?;
    if marker.is_file() && next_common::read_file(&marker)? == wanted {
        let count = |train: bool| {
            let per_id = cfg.images_per_id;
            per_id * if train { cfg.train_ids } else { cfg.test_ids }
        };
        return Ok(SynthSummary {
            root: out_dir.to_path_buf(),
            captions: out_dir.join("captions"),
            contact_sheet: out_dir.join("contact_sheet.png"),
            train_triplets: count(true),
            test_triplets: count(false),
            object: cfg.object,
            image_size: cfg.size(),
            sketches: cfg.sketches,
        });
    }
    let summary = write_synthetic(cfg, out_dir, progress)?;
    next_common::write_atomic(&marker, &wanted)?;
    Ok(summary)
}

/// The image folders of each split: the three spectra, and `SK` when sketches are drawn.
fn modality_folders(cfg: &SynthConfig) -> &'static [&'static str] {
    if cfg.sketches {
        &["RGB", "NI", "TI", "SK"]
    } else {
        &["RGB", "NI", "TI"]
    }
}

/// A grid of the first identities: one row per identity, shots side by side, each as
/// RGB|NIR|TIR (|sketch).
fn contact_sheet(
    cfg: &SynthConfig,
    ids: &[Identity],
    jobs: &[Job],
    size: [u32; 2],
    vehicle: bool,
) -> RgbImage {
    let rows = ids.len().min(9);
    let shots = cfg.images_per_id.min(4);
    let [h, w] = size;
    let gap = 2u32;
    let panels = modality_folders(cfg).len() as u32;
    let cell_w = panels * w + (panels - 1) * gap + 6;
    let mut sheet = RgbImage::from_pixel(
        shots as u32 * cell_w,
        rows as u32 * (h + gap),
        image::Rgb([255, 255, 255]),
    );
    for (r, id) in ids.iter().enumerate().take(rows) {
        let row_jobs: Vec<&Job> = jobs
            .iter()
            .filter(|j| j.id_index == r)
            .take(shots)
            .collect();
        for (s, job) in row_jobs.iter().enumerate() {
            let (rgb, nir, tir) = render::render_triplet(id, &job.shot, vehicle, size, cfg.seed);
            let x0 = s as u32 * cell_w;
            let y0 = r as u32 * (h + gap);
            image::imageops::replace(&mut sheet, &rgb, x0 as i64, y0 as i64);
            let nir = image::DynamicImage::ImageLuma8(nir).to_rgb8();
            let tir = image::DynamicImage::ImageLuma8(tir).to_rgb8();
            image::imageops::replace(&mut sheet, &nir, (x0 + w + gap) as i64, y0 as i64);
            image::imageops::replace(&mut sheet, &tir, (x0 + 2 * (w + gap)) as i64, y0 as i64);
            if cfg.sketches {
                let drawn = sketch::render_sketch(id, &job.shot, vehicle, size);
                let drawn = image::DynamicImage::ImageLuma8(drawn).to_rgb8();
                image::imageops::replace(
                    &mut sheet,
                    &drawn,
                    (x0 + 3 * (w + gap)) as i64,
                    y0 as i64,
                );
            }
        }
    }
    sheet
}
