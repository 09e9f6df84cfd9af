//! Parity with Hugging Face transformers on the committed tiny random CLIP.
//!
//! Tolerance 1e-5 max-abs: both sides compute in f32; the only differences are summation order
//! inside matmuls/softmax/layer norms (relative error ~1e-7 per op on values of order 1, a few
//! dozen ops deep), far below 1e-5, while any real error (a transposed weight, a wrong mask or
//! norm) shows up at 1e-2 or more.

mod common;

use common::{float, int, max_abs_diff, reference_bytes, tiny_dir, B};
use next_clip::{ClipModel, LoadReport};
use safetensors::SafeTensors;

const TOLERANCE: f32 = 1e-5;

fn load() -> (ClipModel<B>, LoadReport) {
    ClipModel::<B>::from_hf_dir(&tiny_dir(), 0, 1.0, &Default::default()).expect("tiny fixture loads")
}

#[test]
fn load_report_lists_logit_scale_as_unused_and_nothing_missing() {
    let (_, report) = load();
    assert_eq!(report.unused, vec!["logit_scale".to_string()]);
    assert!(report.missing.is_empty(), "{:?}", report.missing);
}

#[test]
fn camera_embedding_is_reported_missing_when_enabled() {
    let (model, report) =
        ClipModel::<B>::from_hf_dir(&tiny_dir(), 3, 1.0, &Default::default()).expect("loads");
    assert_eq!(report.missing, vec!["vision.camera_embedding".to_string()]);
    assert_eq!(model.vision.num_cameras(), 3);
}

#[test]
fn vision_matches_transformers_at_224_and_256x128() {
    let (model, _) = load();
    let bytes = reference_bytes();
    let file = SafeTensors::deserialize(&bytes).expect("reference");
    for size in ["224x224", "256x128"] {
        let pixels = float::<4>(&file, &format!("pixels_{size}"));
        let out = model.vision.forward(pixels, None);
        let tokens = float::<3>(&file, &format!("vision_tokens_{size}"));
        let pooled = float::<2>(&file, &format!("vision_pooled_{size}"));
        let d_tokens = max_abs_diff(out.tokens, tokens);
        let d_pooled = max_abs_diff(out.pooled, pooled);
        eprintln!("vision {size}: max-abs tokens {d_tokens:e}, pooled {d_pooled:e}");
        assert!(d_tokens < TOLERANCE, "{size} tokens differ by {d_tokens}");
        assert!(d_pooled < TOLERANCE, "{size} pooled differs by {d_pooled}");
    }
}

#[test]
fn text_matches_transformers_with_padding_and_eot_padding() {
    let (model, _) = load();
    let bytes = reference_bytes();
    let file = SafeTensors::deserialize(&bytes).expect("reference");
    let ids = int::<2>(&file, "text_ids");
    let mask = int::<2>(&file, "text_mask");
    let out = model.text.forward(ids, mask);
    let d_tokens = max_abs_diff(out.tokens, float::<3>(&file, "text_tokens"));
    let d_pooled = max_abs_diff(out.pooled, float::<2>(&file, "text_pooled"));
    eprintln!("text: max-abs tokens {d_tokens:e}, pooled {d_pooled:e}");
    assert!(d_tokens < TOLERANCE, "text tokens differ by {d_tokens}");
    assert!(d_pooled < TOLERANCE, "text pooled differs by {d_pooled}");
}
