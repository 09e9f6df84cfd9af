//! Model behaviour: SIE camera embedding, positional grid resizing, EOT pooling, frozen text
//! tower under autodiff, burnpack round trip, configs.

mod common;

use burn::backend::Autodiff;
use burn::module::Param;
use burn::tensor::{Int, Tensor, TensorData};
use common::{max_abs_diff, tiny_dir, B};
use next_clip::{
    load_burnpack, save_burnpack, ClipConfig, ClipError, ClipModel, ClipText, ClipVision,
};

fn device() -> burn::tensor::Device<B> {
    Default::default()
}

fn pixels(batch: usize, h: usize, w: usize, seed: u64) -> Tensor<B, 4> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let values: Vec<f32> = (0..batch * 3 * h * w)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [batch, 3, h, w]), &device())
}

fn ids(rows: &[Vec<i64>]) -> Tensor<B, 2, Int> {
    let t = rows[0].len();
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), t]), &device())
}

#[test]
fn camera_embedding_adds_coef_times_row_to_the_class_token() {
    let config = ClipConfig::tiny();
    let coef = 1.5;
    let vision = ClipVision::<B>::new(&config.vision, config.projection_dim, 4, coef, &device());
    let input = pixels(1, 64, 32, 1);
    let camera = 2;
    let with_camera = vision.forward(
        input.clone(),
        Some(Tensor::from_data([camera as i64], &device())),
    );
    let table = vision.camera_embedding.as_ref().expect("SIE on").val();
    let row = table.slice([camera..camera + 1, 0..64]).reshape([64]);
    let mut manual = vision.clone();
    manual.camera_embedding = None;
    manual.embeddings.class_embedding =
        Param::from_tensor(manual.embeddings.class_embedding.val() + row * coef);
    let expected = manual.forward(input.clone(), None);
    assert!(max_abs_diff(with_camera.tokens.clone(), expected.tokens) < 1e-5);
    let without = vision.forward(input, None);
    assert!(
        max_abs_diff(with_camera.pooled, without.pooled) > 1e-4,
        "camera must matter"
    );
}

#[test]
fn tokens_have_one_plus_grid_entries_and_pooled_is_the_class_token() {
    let config = ClipConfig::tiny();
    let vision = ClipVision::<B>::new(&config.vision, 32, 0, 1.0, &device());
    assert_eq!(vision.output_dim(), 32);
    let out = vision.forward(pixels(2, 256, 128, 2), None);
    assert_eq!(out.tokens.dims(), [2, 1 + 16 * 8, 32]);
    assert_eq!(out.pooled.dims(), [2, 32]);
    let cls = out.tokens.slice([0..2, 0..1, 0..32]).reshape([2, 32]);
    assert_eq!(max_abs_diff(cls, out.pooled), 0.0);
    assert_eq!(vision.positions_for(16, 8).dims(), [129, 64]);
    let native = vision.positions_for(14, 14);
    assert_eq!(
        max_abs_diff(native, vision.embeddings.position_embedding.weight.val()),
        0.0
    );
}

#[test]
fn pooling_takes_first_eot_even_when_padding_uses_the_eot_id() {
    let config = ClipConfig::tiny();
    let text = ClipText::<B>::new(&config.text, 64, &device());
    let eot = 49407;
    let input = ids(&[
        vec![49406, 320, 1929, eot, eot, eot],
        vec![49406, 320, eot, 0, 0, 0],
        vec![49406, 320, 1929, 539, 0, 0],
    ]);
    let mask = ids(&[
        vec![1, 1, 1, 1, 0, 0],
        vec![1, 1, 1, 0, 0, 0],
        vec![1, 1, 1, 1, 0, 0],
    ]);
    let positions = text.pool_positions(input, mask);
    assert_eq!(
        positions
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .expect("ints"),
        vec![3, 2, 3]
    );
}

#[test]
fn padding_does_not_change_real_tokens_or_the_pooled_embedding() {
    let config = ClipConfig::tiny();
    let text = ClipText::<B>::new(&config.text, 64, &device());
    let short = ids(&[vec![49406, 320, 1929, 49407]]);
    let mut long_row = vec![49406, 320, 1929, 49407];
    long_row.resize(77, 0);
    let mut long_mask = vec![1, 1, 1, 1];
    long_mask.resize(77, 0);
    let a = text.forward(short, ids(&[vec![1, 1, 1, 1]]));
    let b = text.forward(ids(&[long_row]), ids(&[long_mask]));
    assert_eq!(b.tokens.dims(), [1, 77, 64]);
    let b_head = b.tokens.slice([0..1, 0..4, 0..64]);
    assert!(max_abs_diff(a.tokens, b_head) < 1e-5);
    assert!(max_abs_diff(a.pooled, b.pooled) < 1e-5);
}

#[test]
fn frozen_text_keeps_no_gradients_while_vision_does() {
    type AB = Autodiff<B>;
    let config = ClipConfig::tiny();
    let model = ClipModel::<AB>::new(&config, 0, 1.0, &Default::default());
    let text = model.text.clone().frozen();
    let image = model.vision.forward(
        Tensor::from_data(pixels(1, 32, 32, 3).into_data(), &Default::default()),
        None,
    );
    let tokens = Tensor::<AB, 2, Int>::from_data([[49406, 320, 49407]], &Default::default());
    let mask = Tensor::<AB, 2, Int>::from_data([[1, 1, 1]], &Default::default());
    let caption = text.forward(tokens, mask);
    let loss = (image.pooled * caption.pooled).sum();
    let grads = loss.backward();
    assert!(
        model.vision.visual_projection.weight.grad(&grads).is_some(),
        "vision trains"
    );
    assert!(text.text_projection.weight.grad(&grads).is_none());
    assert!(text
        .embeddings
        .token_embedding
        .weight
        .grad(&grads)
        .is_none());
    assert!(text.encoder.layers[0]
        .self_attn
        .q_proj
        .weight
        .grad(&grads)
        .is_none());
    assert!(text.final_layer_norm.gamma.grad(&grads).is_none());
}

#[test]
fn burnpack_round_trip_restores_identical_outputs() {
    let (model, _) = ClipModel::<B>::from_hf_dir(&tiny_dir(), 2, 1.0, &device()).expect("tiny");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("clip.bpk");
    save_burnpack(&model, &path).expect("save");
    let config = ClipConfig::from_hf_dir(&tiny_dir()).expect("config");
    let mut fresh = ClipModel::<B>::new(&config, 2, 1.0, &device());
    load_burnpack(&mut fresh, &path).expect("load");
    let input = pixels(1, 64, 48, 4);
    let cams = || Some(Tensor::<B, 1, Int>::from_data([1], &device()));
    let a = model.vision.forward(input.clone(), cams());
    let b = fresh.vision.forward(input, cams());
    assert_eq!(max_abs_diff(a.tokens, b.tokens), 0.0);
    let t = ids(&[vec![998, 320, 999, 0]]);
    let m = ids(&[vec![1, 1, 1, 0]]);
    let a = model.text.forward(t.clone(), m.clone());
    let b = fresh.text.forward(t, m);
    assert_eq!(max_abs_diff(a.pooled, b.pooled), 0.0);

    // A model of another shape refuses the file and names a tensor.
    let mut other = ClipModel::<B>::new(&ClipConfig::tiny(), 2, 1.0, &device());
    let err = load_burnpack(&mut other, &path).unwrap_err();
    assert!(matches!(err, ClipError::ShapeMismatch { .. }), "{err:?}");
    let missing = load_burnpack(&mut fresh, &dir.path().join("absent.bpk")).unwrap_err();
    assert!(missing.to_string().contains("absent.bpk"), "{missing}");
}

#[test]
fn vision_tower_loads_alone_from_a_clip_folder() {
    let (model, _) = ClipModel::<B>::from_hf_dir(&tiny_dir(), 0, 1.0, &device()).expect("tiny");
    let (vision, report) =
        ClipVision::<B>::from_hf_dir(&tiny_dir(), 0, 1.0, &device()).expect("vision");
    assert!(report.unused.iter().any(|n| n.starts_with("text_model.")));
    assert!(report.unused.contains(&"logit_scale".to_string()));
    let input = pixels(1, 32, 48, 5);
    let a = model.vision.forward(input.clone(), None);
    let b = vision.forward(input, None);
    assert_eq!(max_abs_diff(a.tokens, b.tokens), 0.0);
}

#[test]
fn presets_and_hf_config_agree_with_hugging_face_values() {
    let b16 = ClipConfig::vit_b16();
    assert_eq!(
        (
            b16.vision.hidden_size,
            b16.vision.patch_size,
            b16.projection_dim
        ),
        (768, 16, 512)
    );
    assert_eq!(
        (b16.text.hidden_size, b16.text.num_attention_heads),
        (512, 8)
    );
    assert_eq!(ClipConfig::vit_b32().vision.patch_size, 32);
    let tiny = ClipConfig::tiny();
    assert!(tiny.validate().is_ok() && b16.validate().is_ok());
    assert_eq!(
        (
            tiny.vision.hidden_size,
            tiny.text.vocab_size,
            tiny.projection_dim
        ),
        (64, 49408, 64)
    );
    let fixture = ClipConfig::from_hf_dir(&tiny_dir()).expect("config");
    assert_eq!(fixture.vision, tiny.vision);
    assert_eq!(
        (fixture.text.vocab_size, fixture.text.eos_token_id),
        (1000, 999)
    );
    let mut legacy = b16.text.clone();
    legacy.eos_token_id = 2;
    assert_eq!(legacy.effective_eos_token_id(), 49407);
}
