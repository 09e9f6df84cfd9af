//! `pretrain` on a tiny budget: the saved Hugging Face folder loads back (same held-out figures),
//! NEXT builds on it with the folder's restricted tokenizer, and a second run refuses to
//! overwrite it.

use burn::backend::{Autodiff, Flex};
use next_clip::{ClipModel, ClipTokenizer};
use next_data::{
    load_dataset, DatasetConfig, DatasetKind, LookAlikes, SynthConfig, TransformConfig,
};
use next_model::{ClipSource, NextConfig, TextMode};
use next_train::pretrain::retrieval_report;
use next_train::{pretrain, PretrainConfig, PretrainOptions, TrainError};

#[test]
fn pretrained_folder_round_trips_and_feeds_next() {
    // The split keeps the drawing the committed assets/clip-tiny-pretrained was trained on.
    assert_eq!(
        PretrainConfig::default().synthetic.look_alikes,
        LookAlikes::AllVisible
    );
    let tmp = tempfile::tempdir().unwrap();
    let cfg = PretrainConfig {
        synthetic: SynthConfig {
            train_ids: 6,
            test_ids: 3,
            images_per_id: 4,
            ..PretrainConfig::default().synthetic
        },
        image_size: [32, 16],
        epochs: 2,
        batch_size: 4,
        workers: 1,
        ..PretrainConfig::default()
    };
    let opts = PretrainOptions {
        out_dir: tmp.path().join("clip"),
        data_dir: tmp.path().join("data"),
        force: false,
        verbose: false,
    };
    let device = Default::default();
    let report = pretrain::<Autodiff<Flex>>(&cfg, &opts, &device).unwrap();
    assert_eq!(report.epochs.len(), 2);
    assert!(report.epochs.iter().all(|e| e.loss.is_finite()));
    assert_eq!(report.after.images, 3 * 3 * 4);
    assert!(report.vocab_size < 1_000, "{}", report.vocab_size);

    // The folder loads with the Hugging Face loader and gives the same held-out figures.
    let (clip, load) = ClipModel::<Flex>::from_hf_dir(&opts.out_dir, 0, 1.0, &device).unwrap();
    assert!(load.missing.is_empty(), "{:?}", load.missing);
    assert_eq!(load.unused, vec!["logit_scale".to_string()]);
    let tokenizer = ClipTokenizer::from_file(&opts.out_dir.join("tokenizer.json")).unwrap();
    let mut data = DatasetConfig::new(&opts.data_dir, DatasetKind::Rgbnt201)
        .with_captions(opts.data_dir.join("captions"));
    data.image_size = Some(cfg.image_size);
    data.normalization = cfg.normalization;
    let dataset = load_dataset(&data).unwrap();
    let transform = TransformConfig::from_dataset(&dataset.config);
    let again = retrieval_report(&clip, &tokenizer, &dataset.gallery, transform, &device).unwrap();
    assert_eq!(again.image_to_text_r1, report.after.image_to_text_r1);
    assert_eq!(again.text_to_image_r1, report.after.text_to_image_r1);
    assert!((again.patch_cos_matching - report.after.patch_cos_matching).abs() < 1e-5);
    assert!((again.patch_cos_non_matching - report.after.patch_cos_non_matching).abs() < 1e-5);

    // NEXT builds on the folder (weights and its restricted tokenizer).
    let mut next = NextConfig::tiny(3);
    next.clip = ClipSource::HfDir(opts.out_dir.clone());
    next.num_cameras = 0;
    next.text = TextMode::Optional;
    let (model, load) = next.build::<Flex>(&device).unwrap();
    assert!(load.is_some());
    assert_eq!(model.clip_architecture.text.vocab_size, report.vocab_size);

    // A second run does not overwrite the folder.
    let err = pretrain::<Autodiff<Flex>>(&cfg, &opts, &device).unwrap_err();
    assert!(matches!(err, TrainError::RunExists { .. }), "{err}");
}
