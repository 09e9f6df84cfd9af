//! Any-modality queries on the tiny CLIP config (CPU, Flex): the query switches leave NEXT and
//! UMM bit-identical, a sketch gets its own embedding, gradients reach the text head and the
//! sketch embedding through the alignment loss.

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::prelude::*;
use next_model::{Fill, NextConfig, NextInput, NextModel, Presence, SampleCaptions, TextMode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Ad = Autodiff<Flex>;

const HEIGHT: usize = 64;
const WIDTH: usize = 32;

fn base_config(umm: bool) -> NextConfig {
    let mut config = NextConfig::tiny(4);
    config.tmse.dropout = 0.0;
    config.csse.dropout = 0.0;
    config.mgfa.dropout = 0.0;
    config.text = TextMode::Optional;
    config.umm.enabled = umm;
    config.umm.fill = Fill::Synth;
    config
}

fn with_queries(mut config: NextConfig) -> NextConfig {
    config.query.sketch = config.umm.enabled;
    config.query.text_head = true;
    config.query.align.enabled = true;
    config
}

fn captions(batch: usize) -> Vec<SampleCaptions> {
    (0..batch)
        .map(|b| {
            [
                Some(format!("A person in coat {b}. Carrying a bag.")),
                Some("A bright figure.".to_string()),
                None,
            ]
        })
        .collect()
}

fn input<Bk: Backend>(batch: usize, seed: u64, device: &Bk::Device) -> NextInput<Bk> {
    let mut rng = StdRng::seed_from_u64(seed);
    let images = std::array::from_fn(|_| {
        let len = batch * 3 * HEIGHT * WIDTH;
        let pixels: Vec<f32> = (0..len).map(|_| rng.random_range(-2.0..2.0)).collect();
        Tensor::from_data(TensorData::new(pixels, [batch, 3, HEIGHT, WIDTH]), device)
    });
    NextInput {
        images,
        camera_ids: Some(Tensor::from_data(
            TensorData::new(vec![0i64; batch], [batch]),
            device,
        )),
        captions: Some(captions(batch)),
    }
}

fn values<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

fn init(config: &NextConfig) -> NextModel<Flex> {
    config.init::<Flex>(&Default::default()).unwrap()
}

#[test]
fn query_switches_leave_next_and_umm_bit_identical() {
    let device = Default::default();
    for umm in [false, true] {
        let plain = init(&base_config(umm));
        // Runtime settings of the alignment loss build nothing: the plain checkpoint loads.
        let mut off = base_config(umm);
        off.query.align.sdm_weight = 3.0;
        off.query.align.temperature = 0.5;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.ckpt");
        plain.save(&path).unwrap();
        let off = next_model::Checkpoint::load(&path)
            .unwrap()
            .load_weights(init(&off), &path, &device)
            .unwrap();
        // The heads on top of the same weights.
        let mut on = plain.clone();
        on.add_query_heads(with_queries(base_config(umm)).query, &device);
        assert!(plain.text_query.is_none() && off.text_query.is_none());
        assert!(on.text_query.is_some());
        assert_eq!(plain.num_learnable_params(), off.num_learnable_params());
        assert!(on.num_learnable_params() > plain.num_learnable_params());
        // A checkpoint with the heads reopens into a model built with them.
        let with_heads = dir.path().join("heads.ckpt");
        on.save(&with_heads).unwrap();
        let reopened = next_model::Checkpoint::load(&with_heads)
            .unwrap()
            .load_weights(init(&with_queries(base_config(umm))), &with_heads, &device)
            .unwrap();
        assert_eq!(
            values(reopened.text_query_embedding(&["a man".into()]).unwrap()),
            values(on.text_query_embedding(&["a man".into()]).unwrap())
        );
        let batch = input::<Flex>(3, 5, &device);
        let presences = [
            Presence::complete(3),
            Presence::new(vec![[true, false, true], [false, false, true], [true; 3]]).unwrap(),
        ];
        for presence in presences {
            let reference = plain
                .forward_inference_present(batch.clone(), &presence)
                .unwrap();
            for model in [&off, &on] {
                let got = model
                    .forward_inference_present(batch.clone(), &presence)
                    .unwrap();
                assert_eq!(values(reference.clone()), values(got), "umm {umm}");
            }
            let mut s1 = plain.sentence_sampler(3);
            let mut s2 = on.sentence_sampler(3);
            let a = plain.forward_train_present(batch.clone(), &presence, &mut s1);
            let b = on.forward_train_present(batch.clone(), &presence, &mut s2);
            assert_eq!(values(a.unwrap().logits), values(b.unwrap().logits));
        }
    }
}

#[test]
fn a_sketch_gets_its_own_embedding_and_bad_sketch_flags_are_errors() {
    let device = Default::default();
    let model = init(&with_queries(base_config(true)));
    let batch = input::<Flex>(2, 9, &device);
    let rgb_only = Presence::new(vec![[true, false, false]; 2]).unwrap();
    let sketch = rgb_only.clone().with_sketch(vec![true, false]).unwrap();
    let as_rgb = model
        .forward_inference_present(batch.clone(), &rgb_only)
        .unwrap();
    let as_sketch = model
        .forward_inference_present(batch.clone(), &sketch)
        .unwrap();
    let (a, b) = (values(as_rgb), values(as_sketch));
    let dim = model.feature_dim();
    assert_ne!(a[..dim], b[..dim], "the sketch embedding changes sample 0");
    assert_eq!(a[dim..], b[dim..], "sample 1 is no sketch");
    let err = Presence::new(vec![[false, true, false]])
        .unwrap()
        .with_sketch(vec![true])
        .unwrap_err();
    assert!(err.to_string().contains("RGB slot"), "{err}");
    assert!(rgb_only.with_sketch(vec![true]).is_err());
    // A sketch switch without UMM, an empty query text and a model without the head are errors.
    let mut bad = base_config(false);
    bad.query.sketch = true;
    let err = bad.validate().unwrap_err().to_string();
    assert!(
        err.contains("query.sketch") && err.contains("umm.enabled"),
        "{err}"
    );
    assert!(model.text_query_embedding(&["  ".into()]).is_err());
    let plain = init(&base_config(true));
    let err = plain
        .text_query_embedding(&["a man".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("query.text_head"), "{err}");
}

#[test]
fn alignment_loss_sends_gradients_into_the_text_head_and_the_sketch_embedding() {
    let device = Default::default();
    let model: NextModel<Ad> = with_queries(base_config(true)).init(&device).unwrap();
    let labels = Tensor::<Ad, 1, Int>::from_ints([0, 0, 1, 1], &device);
    let batch = input::<Ad>(4, 11, &device);
    let mut sampler = model.sentence_sampler(2);
    let fused = model
        .forward_train_present(batch.clone(), &Presence::complete(4), &mut sampler)
        .unwrap()
        .feature;
    let sketch = Presence::new(vec![[true, false, false]; 4])
        .unwrap()
        .with_sketch(vec![true; 4])
        .unwrap();
    let mut plain_images = batch.clone();
    plain_images.captions = None;
    let sketch_feature = model
        .forward_train_present(plain_images, &sketch, &mut sampler)
        .unwrap()
        .feature;
    let texts: Vec<String> = [
        "a man in red",
        "a man in red",
        "a woman",
        "a woman in green",
    ]
    .map(String::from)
    .to_vec();
    let text_input = model.encode_query_texts(&texts).unwrap();
    let text_feature = model.text_query_feature(text_input).unwrap();
    let loss = model
        .alignment_loss(&[sketch_feature, text_feature], fused, labels)
        .unwrap();
    let total: f32 = loss.total.clone().into_scalar();
    assert!(total.is_finite() && total > 0.0, "{total}");
    let grads = loss.total.backward();
    let sum = |g: Option<Tensor<Flex, 2>>| g.map_or(0.0, |g| g.abs().sum().into_scalar());
    let head = model.text_query.as_ref().unwrap();
    let umm = model.umm.as_ref().unwrap();
    let sketch_grad = sum(umm
        .token_mapper
        .sketch_embedding
        .as_ref()
        .unwrap()
        .val()
        .grad(&grads));
    let head_grad = sum(head.output.weight.val().grad(&grads));
    let pool_grad = sum(head.token_projection.weight.val().grad(&grads));
    assert!(sketch_grad > 0.0, "sketch embedding gradient {sketch_grad}");
    assert!(
        head_grad > 0.0 && pool_grad > 0.0,
        "{head_grad} {pool_grad}"
    );
    // The fused target is detached by default, and the frozen text encoder gets nothing.
    let text = model.text.as_ref().unwrap();
    assert!(text
        .embeddings
        .token_embedding
        .weight
        .val()
        .grad(&grads)
        .is_none());
    let inner = model.valid();
    assert!(inner.text_query.is_some());
}

#[test]
fn patterns_per_step_reads_its_former_name_and_bad_counts_name_the_key() {
    let parse = |text: &str| toml::from_str::<next_model::QueryConfig>(text).unwrap();
    let new = parse("[align]\npatterns_per_step = 3\nsubsets = true\n");
    assert_eq!((new.align.patterns_per_step, new.align.subsets), (3, true));
    // Configurations and checkpoints of before the rename still read.
    assert_eq!(
        parse("[align]\nvisual_per_step = 2\n")
            .align
            .patterns_per_step,
        2
    );
    assert_eq!(parse("").align, next_model::AlignConfig::default());
    let too_many = parse("[align]\npatterns_per_step = 11\n");
    let err = too_many.validate(true).unwrap_err();
    assert!(err.contains("query.align.patterns_per_step = 11"), "{err}");
    assert_eq!(new.align.sketch_weight, 1.0);
    let negative = parse("[align]\nsketch_weight = -2.0\n");
    let err = negative.validate(true).unwrap_err();
    assert!(err.contains("query.align.sketch_weight = -2"), "{err}");
}
