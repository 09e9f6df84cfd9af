//! Tests of the text-modulated semantic experts.

use super::*;
use burn::backend::{Autodiff, Flex};
use burn::tensor::Distribution;

type Ad = Autodiff<Flex>;

fn inputs<Bk: Backend>(b: usize, n: usize, d: usize) -> (Tensor<Bk, 3>, Tensor<Bk, 4>) {
    let device = Default::default();
    let cls = Tensor::random([b, 3, d], Distribution::Normal(0.0, 1.0), &device);
    let patches = Tensor::random([b, 3, n, d], Distribution::Normal(0.0, 1.0), &device);
    (cls, patches)
}

#[test]
fn shapes_masks_and_counts_agree() {
    let device = Default::default();
    let cfg = TmseConfig::default();
    let tmse = cfg.init::<Flex>(16, &device);
    let (cls, patches) = inputs::<Flex>(2, 6, 16);
    let text = Tensor::random([2, 3, 3, 16], Distribution::Normal(0.0, 1.0), &device);
    let out = tmse.forward(cls, patches, Some(text)).unwrap();
    assert_eq!(out.features.dims(), [2, 3, 16]);
    assert_eq!(out.masks.dims(), [2, 3, 3, 6]);
    assert_eq!(out.counts.dims(), [2, 3, 3]);
    let masks: Vec<f32> = out.masks.clone().into_data().to_vec().unwrap();
    assert!(
        masks.iter().all(|&v| v == 0.0 || v == 1.0),
        "mask not binary: {masks:?}"
    );
    let total: f32 = out.counts.sum().into_scalar();
    assert_eq!(total, masks.iter().sum::<f32>());
    assert_eq!(tmse.num_params(), cfg.num_params(16));
}

#[test]
fn strategies_keep_expected_token_counts() {
    let device = Default::default();
    let (cls, patches) = inputs::<Flex>(2, 8, 16);
    let count = |sampling| {
        let cfg = TmseConfig {
            sampling,
            ..TmseConfig::default()
        };
        let out = cfg
            .init::<Flex>(16, &device)
            .forward(cls.clone(), patches.clone(), None);
        out.unwrap().counts.into_data().to_vec::<f32>().unwrap()
    };
    assert!(count(SamplingStrategy::AllTokens).iter().all(|&c| c == 8.0));
    assert!(count(SamplingStrategy::TopK).iter().all(|&c| c == 4.0));
    assert!(count(SamplingStrategy::Dynamic)
        .iter()
        .all(|&c| (0.0..=8.0).contains(&c)));
    let shared = TmseConfig {
        router: SemanticRouter::Shared,
        ..TmseConfig::default()
    };
    assert_eq!(shared.init::<Flex>(16, &device).routes.len(), 3);
}

/// With alpha forced to 0 and a modulation MLP that only passes beta
/// (`gamma = sum_j GELU(10 beta)`), a fixed threshold of 0.5 keeps exactly the tokens whose
/// cosine to the caption is positive; without a caption (beta = 0) none is kept.
#[test]
fn text_modulation_keeps_tokens_aligned_with_the_caption() {
    use burn::module::Param;
    let device = Default::default();
    let (d, n) = (16, 10);
    let cfg = TmseConfig {
        sampling: SamplingStrategy::FixedThreshold,
        ..TmseConfig::default()
    };
    let mut tmse = cfg.init::<Flex>(d, &device);
    for route in tmse.routes.iter_mut() {
        let h = cfg.modulation_hidden;
        route.score_out.weight = Param::from_tensor(Tensor::zeros([d / 4, 1], &device));
        route.score_out.bias = Some(Param::from_tensor(Tensor::zeros([1], &device)));
        let w = Tensor::cat(
            vec![
                Tensor::zeros([1, h], &device),
                Tensor::full([1, h], 10.0, &device),
            ],
            0,
        );
        route.modulation_hidden.weight = Param::from_tensor(w);
        route.modulation_hidden.bias = Some(Param::from_tensor(Tensor::zeros([h], &device)));
        route.modulation_out.weight = Param::from_tensor(Tensor::ones([h, 1], &device));
        route.modulation_out.bias = Some(Param::from_tensor(Tensor::zeros([1], &device)));
    }
    let (cls, patches) = inputs::<Flex>(2, n, d);
    let text: Tensor<Flex, 4> =
        Tensor::random([2, 1, 3, d], Distribution::Normal(0.0, 1.0), &device);
    let out = tmse
        .forward(cls.clone(), patches.clone(), Some(text.clone()))
        .unwrap();
    // Expected: sign of the dot product between each patch token and its modality's caption.
    let dots = (patches.clone() * text.clone().reshape([2, 3, 1, d]))
        .sum_dim(3)
        .reshape([2, 1, 3, n]);
    let expected: Vec<f32> = dots
        .greater_elem(0.0)
        .float()
        .repeat_dim(1, 3)
        .into_data()
        .to_vec()
        .unwrap();
    let got: Vec<f32> = out.masks.into_data().to_vec().unwrap();
    assert_eq!(got, expected);
    let without = tmse.forward(cls, patches, None).unwrap();
    assert_eq!(without.counts.sum().into_scalar(), 0.0);
    let pooled: Vec<f32> = without.features.into_data().to_vec().unwrap();
    assert!(
        pooled.iter().all(|v| v.is_finite()),
        "empty masks must fall back to the mean"
    );
}

#[test]
fn mask_gradient_paths_agree_forward_and_differ_on_empty_masks() {
    let device = Default::default();
    let (cls, patches) = inputs::<Flex>(3, 8, 16);
    // One module per setting, run on both gradient paths: the global seed is shared by
    // tests running in parallel, so two separately seeded inits need not be equal.
    let run_both = |sampling, threshold| {
        let tmse = TmseConfig {
            sampling,
            fixed_threshold: threshold,
            dropout: 0.0,
            ..TmseConfig::default()
        }
        .init::<Flex>(16, &device);
        let features = |gradient| {
            tmse.forward_with(cls.clone(), patches.clone(), None, None, gradient)
                .unwrap()
                .features
                .into_data()
                .to_vec::<f32>()
                .unwrap()
        };
        (features(MaskGradient::Pool), features(MaskGradient::Input))
    };
    // Top-k keeps tokens in every row: both paths give the same features.
    let (pool, input) = run_both(SamplingStrategy::TopK, 0.5);
    for (a, b) in pool.iter().zip(&input) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    // A threshold of 1 keeps nothing: `pool` falls back to the mean of the samples' own
    // expert outputs, `input` to E(0), the same for every sample.
    let per_sample = |v: &[f32]| v.chunks(3 * 16).map(<[f32]>::to_vec).collect::<Vec<_>>();
    let (empty_pool, empty_input) = run_both(SamplingStrategy::FixedThreshold, 1.0);
    let (empty_pool, empty_input) = (per_sample(&empty_pool), per_sample(&empty_input));
    assert_ne!(empty_pool[0], empty_pool[1]);
    assert_eq!(empty_input[0], empty_input[1]);
}

/// Tokens like a ViT's at initialisation: every token of a modality is its modality's
/// common vector plus a small token-specific part, and the modalities have different
/// scales (class tokens too). Scale-free routes keep part of every modality's tokens for
/// every expert; the paper's routes keep all or none of some modality (the shared offset
/// of a route's scores dwarfs their token-to-token spread).
#[test]
fn scale_free_routes_keep_part_of_every_modality_at_init() {
    let device = Default::default();
    let (b, n, d) = (8, 32, 32);
    let scales = [1.0, 4.0, 0.25];
    let common = Tensor::<Flex, 4>::random([1, 3, 1, d], Distribution::Normal(0.0, 1.0), &device);
    let own = Tensor::random([b, 3, n, d], Distribution::Normal(0.0, 0.05), &device);
    let scale = Tensor::<Flex, 1>::from_floats(scales, &device).reshape([1, 3, 1, 1]);
    let patches = (own + common.clone()) * scale.clone();
    let class_own = Tensor::random([b, 3, 1, d], Distribution::Normal(0.0, 0.05), &device);
    let class_tokens = ((class_own + common) * scale).reshape([b, 3, d]);
    // Tokens kept per sample, expert and modality.
    let kept = |route_norm| {
        let tmse = TmseConfig {
            route_norm,
            ..TmseConfig::default()
        }
        .init::<Flex>(d, &device);
        let out = tmse
            .forward(class_tokens.clone(), patches.clone(), None)
            .unwrap();
        let counts: Vec<f32> = out.counts.into_data().to_vec().unwrap();
        counts
    };
    let scale_free = kept(RouteNorm::Tokens);
    assert!(
        scale_free.iter().all(|&c| c >= 1.0 && c <= (n - 1) as f32),
        "an expert keeps none or all of a modality's tokens: {scale_free:?}"
    );
    let paper = kept(RouteNorm::None);
    assert!(
        paper.iter().any(|&c| c == 0.0 || c == n as f32),
        "every route keeps part of every modality: {paper:?}"
    );
}

#[test]
fn route_margins_decide_the_masks() {
    let device = Default::default();
    let (cls, patches) = inputs::<Flex>(2, 8, 16);
    for route_norm in [RouteNorm::None, RouteNorm::Tokens] {
        let tmse = TmseConfig {
            route_norm,
            ..TmseConfig::default()
        }
        .init::<Flex>(16, &device);
        let out = tmse.forward(cls.clone(), patches.clone(), None).unwrap();
        let margins = tmse
            .route_margins(cls.clone(), patches.clone(), None)
            .unwrap();
        assert_eq!(margins.dims(), [2, 3, 3, 8]);
        let from_margins: Vec<f32> = margins
            .greater_elem(0.0)
            .float()
            .into_data()
            .to_vec()
            .unwrap();
        let masks: Vec<f32> = out.masks.into_data().to_vec().unwrap();
        assert_eq!(from_margins, masks);
    }
}

#[test]
fn wrong_text_shape_is_an_error() {
    let device = Default::default();
    let tmse = TmseConfig::default().init::<Flex>(16, &device);
    let (cls, patches) = inputs::<Flex>(2, 6, 16);
    let text = Tensor::zeros([2, 2, 3, 16], &device);
    let err = tmse.forward(cls, patches, Some(text)).unwrap_err();
    assert!(err.to_string().contains("text"), "{err}");
}

/// Top-k sampling trains: the forward and backward run on the autodiff backend.
#[test]
fn top_k_sampling_runs_under_autodiff() {
    let device = Default::default();
    let tmse = TmseConfig {
        sampling: SamplingStrategy::TopK,
        ..TmseConfig::default()
    }
    .init::<Ad>(16, &device);
    let (cls, patches) = inputs::<Ad>(2, 8, 16);
    let out = tmse.forward(cls, patches, None).unwrap();
    let counts: Vec<f32> = out.counts.clone().into_data().to_vec().unwrap();
    assert!(counts.iter().all(|&c| c == 4.0), "{counts:?}");
    let grads = out.features.powi_scalar(2).sum().backward();
    assert!(tmse.routes[0].score_out.weight.grad(&grads).is_some());
}

#[test]
fn every_parameter_receives_a_gradient() {
    let device = Default::default();
    let tmse = TmseConfig {
        dropout: 0.0,
        ..TmseConfig::default()
    }
    .init::<Ad>(16, &device);
    let (cls, patches) = inputs::<Ad>(4, 16, 16);
    let text = Tensor::random([4, 3, 3, 16], Distribution::Normal(0.0, 1.0), &device);
    let out = tmse.forward(cls, patches, Some(text)).unwrap();
    let grads = out.features.powi_scalar(2).sum().backward();
    for (r, route) in tmse.routes.iter().enumerate() {
        for (name, w) in [
            ("score_hidden", &route.score_hidden.weight),
            ("score_out", &route.score_out.weight),
            ("threshold", &route.threshold.weight),
            ("modulation_hidden", &route.modulation_hidden.weight),
            ("modulation_out", &route.modulation_out.weight),
        ] {
            let g = w.grad(&grads).expect("gradient");
            let norm: f32 = g.abs().sum().into_scalar();
            assert!(norm > 0.0, "route {r} {name} has a zero gradient");
        }
    }
    for e in &tmse.experts {
        assert!(e.fc1.weight.grad(&grads).is_some());
    }
}

#[test]
fn config_round_trips_through_toml() {
    let cfg = TmseConfig {
        sampling: SamplingStrategy::TopK,
        ..TmseConfig::default()
    };
    let back: TmseConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    assert!(toml::from_str::<TmseConfig>("experts = 3").is_err());
    let partial: TmseConfig = toml::from_str("sampling = \"fixed_threshold\"").unwrap();
    assert_eq!(partial.num_experts, 3);
}
