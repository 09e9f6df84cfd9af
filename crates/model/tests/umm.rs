//! UMM on the tiny CLIP config (CPU, Flex): presence masks, the three fills, gradients into the
//! synthesiser and cue learner, the reconstruction loss, and UMM off being exactly NEXT.

use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use next_model::{
    Fill, ModelError, NextConfig, NextInput, NextModel, Presence, SampleCaptions, TextMode,
    Tokenizer,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Ad = Autodiff<Flex>;

const HEIGHT: usize = 64;
const WIDTH: usize = 32;

fn next_config() -> NextConfig {
    let mut config = NextConfig::tiny(4);
    config.tmse.dropout = 0.0;
    config.csse.dropout = 0.0;
    config.text = TextMode::Optional;
    config
}

fn umm_config(fill: Fill) -> NextConfig {
    let mut config = next_config();
    config.umm.enabled = true;
    config.umm.fill = fill;
    config
}

fn captions(batch: usize) -> Vec<SampleCaptions> {
    (0..batch)
        .map(|b| {
            [
                Some(format!("A person in coat {b}. Carrying a bag.")),
                Some("A bright figure. Short hair.".to_string()),
                Some(format!("A warm silhouette {b}.")),
            ]
        })
        .collect()
}

fn input<Bk: Backend>(batch: usize, seed: u64, device: &Bk::Device) -> NextInput<Bk> {
    // Host-made pseudo-random pixels: tests run in parallel and share the backend's RNG.
    let mut rng = StdRng::seed_from_u64(seed);
    let images = std::array::from_fn(|_| {
        let len = batch * 3 * HEIGHT * WIDTH;
        let pixels: Vec<f32> = (0..len).map(|_| rng.random_range(-2.0..2.0)).collect();
        Tensor::from_data(TensorData::new(pixels, [batch, 3, HEIGHT, WIDTH]), device)
    });
    let cams: Vec<i64> = (0..batch as i64).map(|i| i % 4).collect();
    NextInput {
        images,
        camera_ids: Some(Tensor::from_data(TensorData::new(cams, [batch]), device)),
        captions: Some(captions(batch)),
    }
}

/// Rows `range` of every tensor of `input`.
fn rows<Bk: Backend>(input: &NextInput<Bk>, range: std::ops::Range<usize>) -> NextInput<Bk> {
    NextInput {
        images: input.images.clone().map(|i| i.slice_dim(0, range.clone())),
        camera_ids: input
            .camera_ids
            .clone()
            .map(|c| c.slice_dim(0, range.clone())),
        captions: input.captions.as_ref().map(|c| c[range.clone()].to_vec()),
    }
}

fn values<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

fn max_diff<Bk: Backend, const D: usize>(a: Tensor<Bk, D>, b: Tensor<Bk, D>) -> f32 {
    (a - b).abs().max().into_scalar().elem()
}

struct FloatCount(usize);

impl<Bk: Backend> ModuleVisitor<Bk> for FloatCount {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
        self.0 += param.val().shape().num_elements();
    }
}

/// Every float tensor element of a module (parameters and buffers).
fn count_floats<Bk: Backend, M: Module<Bk>>(module: &M) -> usize {
    let mut count = FloatCount(0);
    module.visit(&mut count);
    count.0
}

/// A model built from `config` with the weights of the checkpoint at `path`.
fn load_into(
    config: &NextConfig,
    path: &std::path::Path,
    device: &burn::backend::flex::FlexDevice,
) -> Result<NextModel<Flex>, next_model::ModelError> {
    let model = config.init::<Flex>(device)?;
    next_model::Checkpoint::load(path)?.load_weights(model, path, device)
}

#[test]
fn umm_off_is_bit_identical_to_next() {
    let device = Default::default();
    let next = next_config().init::<Flex>(&device).unwrap();
    // Every UMM switch but `enabled` changed: nothing of it may reach the model. The NEXT
    // checkpoint loads with no tensor missing or left over, so the models are equal.
    let mut off = next_config();
    off.umm.fill = Fill::Drop;
    off.umm.tokenizer = Tokenizer::PerModality;
    off.umm.cue.layers = 5;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("next.ckpt");
    next.save(&path).unwrap();
    let model = load_into(&off, &path, &device).unwrap();
    assert!(model.umm.is_none());
    assert_eq!(next.num_learnable_params(), model.num_learnable_params());
    assert_eq!(count_floats(&next), count_floats(&model));

    let batch = input::<Flex>(3, 5, &device);
    let mut s1 = next.sentence_sampler(1);
    let mut s2 = model.sentence_sampler(1);
    let a = next.forward_train(batch.clone(), &mut s1).unwrap();
    let b = model
        .forward_train_present(batch.clone(), &Presence::complete(3), &mut s2)
        .unwrap();
    assert_eq!(values(a.feature), values(b.feature));
    assert_eq!(values(a.logits), values(b.logits));
    assert!(b.reconstruction.is_none());

    let a = next.forward_inference(batch.clone()).unwrap();
    let b = model
        .forward_inference_present(batch.clone(), &Presence::complete(3))
        .unwrap();
    assert_eq!(values(a), values(b));

    // Missing modalities with UMM off: exactly today's zero-filled images (captions dropped).
    let pattern = vec![[true, false, true], [false, false, true], [true; 3]];
    let presence = Presence::new(pattern.clone()).unwrap();
    let got = model
        .forward_inference_present(batch.clone(), &presence)
        .unwrap();
    let mut zeroed = batch.clone();
    let dims = zeroed.images[0].dims();
    for (m, image) in zeroed.images.iter_mut().enumerate() {
        let keep: Vec<f32> = pattern.iter().map(|p| f32::from(u8::from(p[m]))).collect();
        let keep =
            Tensor::<Flex, 1>::from_floats(keep.as_slice(), &device).reshape([dims[0], 1, 1, 1]);
        *image = image.clone() * keep;
    }
    if let Some(captions) = zeroed.captions.as_mut() {
        for (entry, p) in captions.iter_mut().zip(&pattern) {
            for m in 0..3 {
                if !p[m] {
                    entry[m] = None;
                }
            }
        }
    }
    let expected = next.forward_inference(zeroed).unwrap();
    assert_eq!(values(got), values(expected));
}

#[test]
fn a_partial_sample_gives_the_same_feature_alone_or_batched() {
    let device = Default::default();
    for fill in [Fill::Synth, Fill::Drop, Fill::Zero] {
        let model = umm_config(fill).init::<Flex>(&device).unwrap();
        let batch = input::<Flex>(3, 8, &device);
        let pattern = vec![[true; 3], [true; 3], [false, false, true]];
        let batched = model
            .forward_inference_present(batch.clone(), &Presence::new(pattern).unwrap())
            .unwrap()
            .slice_dim(0, 2..3);
        let alone = model
            .forward_inference_present(
                rows(&batch, 2..3),
                &Presence::new(vec![[false, false, true]]).unwrap(),
            )
            .unwrap();
        let err = max_diff(batched, alone.clone());
        // Different batch sizes take different GEMM blockings: equal up to f32 rounding.
        assert!(err < 1e-5, "{fill:?}: batched vs alone differ by {err}");

        // An absent modality is absent: its pixels and caption are never read.
        let mut other = rows(&batch, 2..3);
        other.images[0] = Tensor::random(
            [1, 3, HEIGHT, WIDTH],
            Distribution::Normal(0.0, 3.0),
            &device,
        );
        other.images[1] = Tensor::zeros([1, 3, HEIGHT, WIDTH], &device);
        if let Some(c) = other.captions.as_mut() {
            c[0][0] = Some("Something else entirely.".into());
        }
        let again = model
            .forward_inference_present(other, &Presence::new(vec![[false, false, true]]).unwrap())
            .unwrap();
        assert_eq!(
            values(again),
            values(alone.clone()),
            "{fill:?}: absent pixels were read"
        );

        if fill == Fill::Drop {
            // The RGB and NIR thirds of the feature are exactly zero.
            let d = model.dim();
            let v = values(alone);
            assert!(v[..2 * d].iter().all(|&x| x == 0.0));
            assert!(v[2 * d..].iter().any(|&x| x != 0.0));
        }
    }
}

#[test]
fn presence_errors_are_clear() {
    let device = Default::default();
    let model = umm_config(Fill::Synth).init::<Flex>(&device).unwrap();
    let err = Presence::new(vec![[true; 3], [false; 3]]).unwrap_err();
    assert!(
        err.to_string().contains("sample 1 has no modality"),
        "{err}"
    );
    let wrong_len = Presence::new(vec![[true; 3]]).unwrap();
    let err = model
        .forward_inference_present(input(2, 1, &device), &wrong_len)
        .unwrap_err();
    assert!(matches!(err, ModelError::Input(_)), "{err}");
    assert!(
        err.to_string().contains("1 samples for a batch of 2"),
        "{err}"
    );
    let mut required = umm_config(Fill::Synth);
    required.text = TextMode::Required;
    let model = required.init::<Flex>(&device).unwrap();
    let mut batch = input::<Flex>(2, 1, &device);
    batch.captions.as_mut().unwrap()[1][2] = None;
    // TIR of sample 1 absent: its missing caption is fine; present, it is an error.
    let presence = Presence::new(vec![[true; 3], [true, true, false]]).unwrap();
    let mut sampler = model.sentence_sampler(0);
    model
        .forward_train_present(batch.clone(), &presence, &mut sampler)
        .unwrap();
    let err = model
        .forward_train_present(batch, &Presence::complete(2), &mut sampler)
        .unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::MissingCaption {
                sample: 1,
                modality: next_common::Modality::Tir
            }
        ),
        "{err}"
    );
    let mut bad = umm_config(Fill::Synth);
    bad.umm.cue.heads = 7;
    let err = bad.init::<Flex>(&device).unwrap_err();
    assert!(err.to_string().contains("umm.cue.heads"), "{err}");
}

fn training_presence() -> Presence {
    Presence::with_targets(
        vec![
            [true; 3],
            [true, false, true],
            [false, true, true],
            [true, true, false],
            [true, false, false],
            [false, true, false],
            [false, false, true],
            [true; 3],
        ],
        vec![[true; 3]; 8],
    )
    .unwrap()
}

fn labels<Bk: Backend>(device: &Bk::Device) -> Tensor<Bk, 1, Int> {
    Tensor::from_ints([0, 0, 1, 1, 2, 2, 3, 3], device)
}

#[test]
fn gradients_reach_the_mapper_synthesiser_and_cue_learner() {
    let device = Default::default();
    let model: NextModel<Ad> = umm_config(Fill::Synth).init(&device).unwrap();
    let mut sampler = model.sentence_sampler(1);
    let out = model
        .forward_train_present(input(8, 2, &device), &training_presence(), &mut sampler)
        .unwrap();
    let rec = out.reconstruction.clone().expect("reconstruction loss");
    let parts = model.loss(&out, labels(&device));
    let mut without = out.clone();
    without.reconstruction = None;
    let base = model.loss(&without, labels(&device)).total;
    let weight = model.config.umm.rec.weight;
    let expected = base + rec.clone().mul_scalar(weight);
    assert!(max_diff(parts.total.clone(), expected) < 1e-6);
    let grads = parts.total.backward();
    let umm = model.umm.as_ref().unwrap();
    let norm =
        |g: Option<Tensor<Flex, 2>>| -> f32 { g.map_or(0.0, |g| g.abs().sum().into_scalar()) };
    let checks: Vec<(&str, f32)> = vec![
        (
            "mapper.modality_embedding",
            norm(
                umm.token_mapper
                    .modality_embedding
                    .as_ref()
                    .unwrap()
                    .val()
                    .grad(&grads),
            ),
        ),
        (
            "synthesizer.queries",
            umm.synthesizer
                .queries
                .val()
                .grad(&grads)
                .map_or(0.0, |g| g.abs().sum().into_scalar()),
        ),
        (
            "synthesizer.position_projection",
            norm(
                umm.synthesizer
                    .position_projection
                    .weight
                    .val()
                    .grad(&grads),
            ),
        ),
        (
            "synthesizer.source_embedding",
            norm(umm.synthesizer.source_embedding.val().grad(&grads)),
        ),
        (
            "synthesizer.layers.0.attention.query",
            norm(
                umm.synthesizer.layers[0]
                    .attention
                    .query
                    .weight
                    .val()
                    .grad(&grads),
            ),
        ),
        (
            "cue.modality_embedding",
            norm(umm.cue.modality_embedding.val().grad(&grads)),
        ),
        (
            "cue.synthesized_flag",
            norm(umm.cue.synthesized_flag.val().grad(&grads)),
        ),
        // The ends of the residual branches (zero at build time: `cue.identity_init`).
        (
            "cue.encoder.layers.1.self_attn.out_proj",
            norm(
                umm.cue.encoder.layers[1]
                    .self_attn
                    .out_proj
                    .weight
                    .val()
                    .grad(&grads),
            ),
        ),
        (
            "cue.encoder.layers.0.mlp.fc2",
            norm(umm.cue.encoder.layers[0].mlp.fc2.weight.val().grad(&grads)),
        ),
    ];
    for (name, g) in checks {
        assert!(g > 0.0 && g.is_finite(), "no gradient into {name}: {g}");
    }
    // The detached target sends no gradient from L_rec into CLIP; the main loss still does.
    let vision = norm(model.vision.visual_projection.weight.val().grad(&grads));
    assert!(vision > 0.0);
}

#[test]
fn an_untrained_cue_learner_starts_as_the_identity() {
    let device = Default::default();
    for identity_init in [true, false] {
        let mut config = umm_config(Fill::Synth);
        config.umm.cue.identity_init = identity_init;
        let model: NextModel<Flex> = config.init(&device).unwrap();
        let x =
            Tensor::<Flex, 3>::random([2, 9, model.dim()], Distribution::Normal(0.0, 1.0), &device);
        let encoder = &model.umm.as_ref().unwrap().cue.encoder;
        let diff = max_diff(encoder.forward(x.clone(), None), x.clone());
        if identity_init {
            assert_eq!(diff, 0.0);
        } else {
            assert!(diff > 1e-3, "random layers change the tokens: {diff}");
        }
    }
}

#[test]
fn a_short_training_drives_the_reconstruction_loss_down() {
    let device = Default::default();
    let mut model: NextModel<Ad> = umm_config(Fill::Synth).init(&device).unwrap();
    // CLIP frozen so the targets stand still (trained, they first grow with the identity losses
    // and L_rec rises before it falls); everything after it trains on the full loss.
    model.vision = model.vision.no_grad();
    let batch = input::<Ad>(8, 6, &device);
    let presence = training_presence();
    let mut sampler = model.sentence_sampler(2);
    let mut optim = AdamConfig::new().init();
    let mut recs = Vec::new();
    for _ in 0..30 {
        let out = model
            .forward_train_present(batch.clone(), &presence, &mut sampler)
            .unwrap();
        recs.push(out.reconstruction.clone().unwrap().into_scalar());
        let loss = model.loss(&out, labels(&device)).total;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
    }
    let first = recs[..3].iter().sum::<f32>() / 3.0;
    let last = recs[recs.len() - 3..].iter().sum::<f32>() / 3.0;
    println!("L_rec {first:.5} -> {last:.5}: {recs:?}");
    // A steady descent at the trainer's learning rate (measured: about 0.75 x after 30 steps).
    assert!(
        last < 0.85 * first,
        "L_rec did not fall by 15%: {first:.5} -> {last:.5}"
    );

    let trained = model.valid();
    let cos = trained
        .synthesis_cosine(
            batch.images.clone().map(|i| i.inner()),
            batch.camera_ids.clone().map(|c| c.inner()),
        )
        .unwrap();
    let (synth, zero) = cos.means();
    println!("token cosine synthesised {synth:?} zero-fill {zero:?}");
    // Independent random images per modality carry no cross-modal cue, so no ordering of the
    // two cosines is asserted here; the evaluation compares them on aligned data.
    assert_eq!(cos.samples, 8);
    for m in 0..3 {
        assert!((-1.0..=1.0).contains(&synth[m]) && (-1.0..=1.0).contains(&zero[m]));
    }
}

#[test]
fn per_modality_tokenizer_and_one_channel_inputs() {
    let device = Default::default();
    let mut config = umm_config(Fill::Synth);
    config.umm.tokenizer = Tokenizer::PerModality;
    let model = config.init::<Flex>(&device).unwrap();
    let umm = model.umm.as_ref().unwrap();
    assert_eq!(umm.token_mapper.patch_embeddings.len(), 3);
    assert!(umm.token_mapper.modality_embedding.is_none());
    let shared = values(model.vision.embeddings.patch_embedding.weight.val());
    assert_eq!(
        values(umm.token_mapper.patch_embeddings[1].weight.val()),
        shared
    );

    let batch = input::<Flex>(2, 3, &device);
    let grey = batch.images[1].clone().slice_dim(1, 0..1);
    let mut three = batch.clone();
    three.images[1] = grey.clone().repeat_dim(1, 3);
    let mut one = batch.clone();
    one.images[1] = grey;
    let presence = Presence::new(vec![[true; 3], [false, true, true]]).unwrap();
    let a = model.forward_inference_present(three, &presence).unwrap();
    let b = model.forward_inference_present(one, &presence).unwrap();
    assert_eq!(values(a), values(b));

    let mut two_channel = batch;
    two_channel.images[2] = two_channel.images[2].clone().slice_dim(1, 0..2);
    let err = model
        .forward_inference_present(two_channel, &Presence::complete(2))
        .unwrap_err();
    assert!(err.to_string().contains("1 or 3"), "{err}");
}

#[test]
fn umm_config_round_trips_and_checkpoints_reload() {
    let mut config = umm_config(Fill::Drop);
    config.umm.cue.layers = 1;
    let text = config.to_toml_string().unwrap();
    assert!(text.contains("[umm]"), "{text}");
    assert_eq!(NextConfig::from_toml_str(&text).unwrap(), config);
    let partial = NextConfig::from_toml_str(
        "[umm]\nenabled = true\nfill = \"zero\"\n[umm.synth]\nlayers = 2\n",
    )
    .unwrap();
    assert_eq!(partial.umm.synth.layers, 2);
    assert_eq!(partial.umm.cue.layers, 2);
    assert!(partial.umm.rec.detach_target);
    assert!(NextConfig::from_toml_str("[umm]\nfil = \"zero\"\n").is_err());
    assert!(NextConfig::from_toml_str("[umm]\nenabled = true\nfill = \"mean\"\n").is_err());

    let device = Default::default();
    let model = config.init::<Flex>(&device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("umm.ckpt");
    model.save(&path).unwrap();
    let presence = Presence::new(vec![[true, false, true], [false, true, false]]).unwrap();
    let expected = model
        .forward_inference_present(input(2, 4, &device), &presence)
        .unwrap();
    let mut loaded = load_into(&config, &path, &device).unwrap();
    let got = loaded
        .forward_inference_present(input(2, 4, &device), &presence)
        .unwrap();
    assert_eq!(values(got), values(expected.clone()));
    // The fill can be switched on a loaded model.
    loaded.set_umm_fill(Fill::Synth);
    let synth = loaded
        .forward_inference_present(input(2, 4, &device), &presence)
        .unwrap();
    assert!(max_diff(synth, expected) > 1e-4);
    // A NEXT checkpoint does not load into a UMM model (missing tensors are named).
    let next_path = dir.path().join("next.ckpt");
    next_config()
        .init::<Flex>(&device)
        .unwrap()
        .save(&next_path)
        .unwrap();
    let err = load_into(&config, &next_path, &device).unwrap_err();
    assert!(err.to_string().contains("model.umm.enabled"), "{err}");
}

#[test]
fn a_shadow_drop_changes_only_the_reconstruction_loss_and_trains_the_synthesiser() {
    let device = Default::default();
    let mut config = umm_config(Fill::Synth);
    config.mgfa.dropout = 0.0;
    let model: NextModel<Ad> = config.init(&device).unwrap();
    let batch = input::<Ad>(4, 9, &device);
    // One module, two paths: every sample complete, then the same samples with a shadow drop
    // each (none on sample 3).
    let complete = Presence::complete(4);
    let shadow = Presence::complete(4)
        .with_shadow(vec![
            [true, false, false],
            [false, true, false],
            [false, false, true],
            [false; 3],
        ])
        .unwrap();
    assert_eq!(shadow.num_targets(), 3);
    // No shadow drop (shadow_prob 0) is the very presence of today's path.
    let none = training_presence()
        .with_shadow(vec![[false; 3]; 8])
        .unwrap();
    assert_eq!(none, training_presence());
    let plain = model
        .forward_train_present(batch.clone(), &complete, &mut model.sentence_sampler(4))
        .unwrap();
    assert!(plain.reconstruction.is_none());
    let shadowed = model
        .forward_train_present(batch, &shadow, &mut model.sentence_sampler(4))
        .unwrap();
    for (name, a, b) in [
        ("feature", &plain.feature, &shadowed.feature),
        ("bn_feature", &plain.bn_feature, &shadowed.bn_feature),
        ("logits", &plain.logits, &shadowed.logits),
    ] {
        let diff = max_diff(a.clone(), b.clone());
        assert_eq!(diff, 0.0, "{name} differs by {diff} under a shadow drop");
    }
    let rec = shadowed.reconstruction.clone().expect("shadow rec loss");
    let rec_value: f32 = rec.clone().into_scalar().elem();
    assert!(
        rec_value > 0.0 && rec_value.is_finite(),
        "L_rec {rec_value}"
    );
    // Only L_rec reaches the synthesiser: the identity losses see the real tokens.
    let umm = model.umm.as_ref().unwrap();
    let grads = rec.backward();
    let query = umm.synthesizer.layers[0].attention.query.weight.val();
    let g: f32 = query
        .grad(&grads)
        .map_or(0.0, |g| g.abs().sum().into_scalar());
    assert!(
        g > 0.0 && g.is_finite(),
        "no L_rec gradient into the synthesiser: {g}"
    );
    let parts = model.loss(&plain, labels::<Ad>(&device).slice_dim(0, 0..4));
    let grads = parts.total.backward();
    assert!(
        umm.synthesizer.queries.val().grad(&grads).is_none(),
        "complete samples without shadow drops train no synthesiser"
    );
}
