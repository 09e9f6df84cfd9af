//! Embed images and texts with a Hugging Face CLIP folder and print the projected embeddings.
//!
//! ```text
//! cargo run --release --example clip_embed -- --model DIR \
//!     --image a.png --image b.png --text "a person in a red coat" --text "a white car"
//! ```
//! Prints `{"images": [[...], ...], "texts": [[...], ...]}` (Hugging Face `image_embeds` and
//! `text_embeds`, not normalised). Images: shortest side resized to the config's image size,
//! centre crop, CLIP mean/std. Texts: `DIR/tokenizer.json` when present, else the built-in CLIP
//! tokenizer.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use image::imageops::FilterType;
use next_reid::backend::{Cpu, CpuDevice};
use next_reid::burn::tensor::{Tensor, TensorData};
use next_reid::clip::{batch_tensors, ClipModel, ClipTokenizer, CLIP_MEAN, CLIP_STD};

/// Command-line arguments.
#[derive(Parser, Debug)]
#[command(about = "Embed images and texts with a Hugging Face CLIP folder")]
struct Args {
    /// Hugging Face CLIP folder (config.json + model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Image file to embed (repeatable).
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    /// Text to embed (repeatable).
    #[arg(long = "text")]
    texts: Vec<String>,
}

/// Load an image as CLIP pixels `[3, size, size]`: resize the shortest side, centre-crop,
/// scale to [0, 1] and normalise with CLIP's mean/std.
fn preprocess(path: &Path, size: usize) -> Result<Vec<f32>, Box<dyn Error>> {
    let image =
        image::open(path).map_err(|e| format!("cannot read image {}: {e}", path.display()))?;
    let image = image.to_rgb8();
    let (w, h) = image.dimensions();
    // Shortest side to `size`, the other side scaled and floored (as transformers does).
    let size32 = size as u32;
    let (new_w, new_h) = if w <= h {
        (size32, ((size as u64 * h as u64) / w.max(1) as u64) as u32)
    } else {
        (((size as u64 * w as u64) / h.max(1) as u64) as u32, size32)
    };
    let (new_w, new_h) = (new_w.max(size32), new_h.max(size32));
    let resized = image::imageops::resize(&image, new_w, new_h, FilterType::CatmullRom);
    let left = (new_w - size as u32) / 2;
    let top = (new_h - size as u32) / 2;
    let crop = image::imageops::crop_imm(&resized, left, top, size as u32, size as u32).to_image();
    let mut pixels = vec![0.0f32; 3 * size * size];
    for (x, y, rgb) in crop.enumerate_pixels() {
        for c in 0..3 {
            let value = rgb[c] as f32 / 255.0;
            pixels[c * size * size + y as usize * size + x as usize] =
                (value - CLIP_MEAN[c]) / CLIP_STD[c];
        }
    }
    Ok(pixels)
}

fn rows(tensor: Tensor<Cpu, 2>) -> Result<Vec<Vec<f32>>, Box<dyn Error>> {
    let [_, width] = tensor.dims();
    let values = tensor
        .into_data()
        .to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    Ok(values.chunks(width).map(<[f32]>::to_vec).collect())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let device = CpuDevice::default();
    let (model, report) = ClipModel::<Cpu>::from_hf_dir(&args.model, 0, 1.0, &device)?;
    if !report.unused.is_empty() {
        eprintln!("unused tensors in the checkpoint: {:?}", report.unused);
    }
    let config = next_reid::clip::ClipConfig::from_hf_dir(&args.model)?;

    let mut images = Vec::new();
    if !args.images.is_empty() {
        let size = config.vision.image_size;
        let mut pixels = Vec::new();
        for path in &args.images {
            pixels.extend(preprocess(path, size)?);
        }
        let batch = Tensor::<Cpu, 4>::from_data(
            TensorData::new(pixels, [args.images.len(), 3, size, size]),
            &device,
        );
        images = rows(model.vision.forward(batch, None).pooled)?;
    }

    let mut texts = Vec::new();
    if !args.texts.is_empty() {
        let local = args.model.join("tokenizer.json");
        let tokenizer = if local.is_file() {
            ClipTokenizer::from_file(&local)?
        } else {
            ClipTokenizer::builtin()?
        };
        let refs: Vec<&str> = args.texts.iter().map(String::as_str).collect();
        let encoded = tokenizer.encode_batch(&refs)?;
        let vocab = config.text.vocab_size as u32;
        if let Some(id) = encoded
            .iter()
            .flat_map(|t| t.ids.iter())
            .find(|&&id| id >= vocab)
        {
            return Err(format!(
                "token id {id} is outside the model's vocabulary of {vocab}: use the model's tokenizer.json"
            )
            .into());
        }
        let (ids, mask) = batch_tensors::<Cpu>(&encoded, &device);
        texts = rows(model.text.forward(ids, mask).pooled)?;
    }

    let json = serde_json::json!({ "images": images, "texts": texts });
    println!("{json}");
    Ok(())
}
