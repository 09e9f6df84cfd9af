//! The synthetic benchmark through the real RGBNT201 reader, and the training/evaluation loaders.

use burn::backend::Flex;
use next_common::Progress;
use next_data::synth::{write_synthetic, SynthConfig, SynthObject};
use next_data::transform::TransformConfig;
use next_data::{eval_stream, load_dataset, train_stream, LoaderConfig, PkSampler, SamplerState};
use std::collections::BTreeSet;

fn small(seed: u64, object: SynthObject) -> SynthConfig {
    SynthConfig {
        seed,
        object,
        train_ids: 6,
        test_ids: 3,
        images_per_id: 4,
        ..SynthConfig::default()
    }
}

fn tree_bytes(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for split in ["train_171", "test"] {
        for m in ["RGB", "NI", "TI"] {
            let dir = root.join(split).join(m);
            let mut names: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            names.sort();
            for p in names {
                out.push((
                    p.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out
}

fn mean_luma(path: &std::path::Path) -> f32 {
    let img = image::open(path).unwrap().to_luma8();
    img.pixels().map(|p| p.0[0] as f32).sum::<f32>() / (img.width() * img.height()) as f32
}

#[test]
fn synthetic_benchmark_is_deterministic_and_loads_with_the_real_reader() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let summary = write_synthetic(
        &small(5, SynthObject::Person),
        a.path(),
        &mut Progress::hidden(36),
    )
    .unwrap();
    write_synthetic(
        &small(5, SynthObject::Person),
        b.path(),
        &mut Progress::hidden(36),
    )
    .unwrap();
    assert_eq!(tree_bytes(a.path()), tree_bytes(b.path()));
    assert!(summary.contact_sheet.is_file());
    assert_eq!((summary.train_triplets, summary.test_triplets), (24, 12));

    let ds = load_dataset(&summary.dataset_config()).unwrap();
    assert_eq!(
        (ds.train.len(), ds.query.len(), ds.num_train_ids),
        (24, 12, 6)
    );
    assert_eq!(ds.report.total_missing_captions(), 0);
    // Every test identity is seen by at least two cameras (cross-camera matches exist).
    for pid in ds.query.iter().map(|r| r.pid).collect::<BTreeSet<_>>() {
        let cams: BTreeSet<i64> = ds
            .query
            .iter()
            .filter(|r| r.pid == pid)
            .map(|r| r.camid)
            .collect();
        assert!(cams.len() >= 2, "pid {pid} cams {cams:?}");
    }
    let colours = [
        "black", "white", "grey", "red", "blue", "green", "yellow", "brown",
    ];
    for r in &ds.train {
        let [rgb, nir, tir] = &r.captions;
        assert!(
            rgb.starts_with("An adult")
                && nir.starts_with("An adult")
                && tir.starts_with("An adult")
        );
        // TIR and NIR captions never name a colour; TIR omits the lighting.
        for c in colours {
            assert!(
                !tir.contains(&format!(" {c} ")) && !nir.contains(&format!(" {c} ")),
                "{tir} / {nir}"
            );
        }
        assert!(!tir.contains("lighting"));
        for text in [rgb, nir, tir] {
            assert!(
                ["Short", "Medium", "Long"]
                    .iter()
                    .any(|h| text.contains(&format!(". {h} straight hair"))),
                "{text}"
            );
            assert!(
                !text.contains(" a shorts") && !text.contains(" a trousers"),
                "{text}"
            );
        }
        let night = r.key.split('_').nth(2) == Some("1");
        assert_eq!(rgb.contains("nighttime"), night, "{rgb}");
        if night {
            // At night RGB is much darker than the actively illuminated NIR image.
            let paths = match &r.images {
                next_data::TripletImages::Separate(p) => p.clone(),
                _ => unreachable!(),
            };
            assert!(
                mean_luma(&paths[0]) + 20.0 < mean_luma(&paths[1]),
                "{}",
                r.key
            );
            assert!(
                rgb.contains("glasses")
                    && (rgb.contains("unknown") || !rgb.contains("is wearing glasses"))
            );
        }
    }
    // TIR images are grey (no colour information): stored as one channel.
    let tir = image::open(a.path().join("train_171/TI").join(&ds.train[0].key)).unwrap();
    assert_eq!(tir.color(), image::ColorType::L8);

    let c = tempfile::tempdir().unwrap();
    write_synthetic(
        &small(6, SynthObject::Person),
        c.path(),
        &mut Progress::hidden(36),
    )
    .unwrap();
    assert_ne!(tree_bytes(a.path()), tree_bytes(c.path()));
}

#[test]
fn vehicle_benchmark_is_wide_and_bad_settings_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_synthetic(
        &small(9, SynthObject::Vehicle),
        dir.path(),
        &mut Progress::hidden(36),
    )
    .unwrap();
    assert_eq!(summary.image_size, [64, 128]);
    let ds = load_dataset(&summary.dataset_config()).unwrap();
    let img = next_data::transform::load_triplet(&ds.train[0].images).unwrap();
    assert_eq!(img[0].dimensions(), (128, 64));
    assert!(ds.train[0].captions[0].contains("viewed from the"));
    // Writing into a folder that already holds a dataset is refused, naming the folder.
    let err = write_synthetic(
        &small(9, SynthObject::Vehicle),
        dir.path(),
        &mut Progress::hidden(36),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("train_171/RGB") && err.contains("already holds images"),
        "{err}"
    );
    let bad = SynthConfig {
        cameras: 12,
        ..SynthConfig::default()
    };
    assert!(write_synthetic(&bad, dir.path(), &mut Progress::hidden(1)).is_err());
}

#[test]
fn train_and_eval_streams_give_tensors_in_order_and_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_synthetic(
        &small(3, SynthObject::Person),
        dir.path(),
        &mut Progress::hidden(36),
    )
    .unwrap();
    let ds = load_dataset(&summary.dataset_config()).unwrap();
    let tf = TransformConfig::from_dataset(&ds.config);
    let loader = LoaderConfig {
        batch_size: 8,
        instances_per_id: 4,
        ..LoaderConfig::default()
    };
    let sampler = loader.sampler(&ds.train, 11).unwrap();
    let labels: Vec<i64> = ds.train.iter().map(|r| r.label).collect();
    assert_eq!(
        sampler.epoch_batches(2),
        PkSampler::new(&labels, 8, 4, 11).unwrap().epoch_batches(2)
    );
    let state = SamplerState {
        seed: 11,
        epoch: 2,
        next_batch: 0,
    };
    let device = Default::default();
    let first: Vec<_> = train_stream(&ds.train, &sampler, &state, tf, 2, 2)
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    let again: Vec<_> = train_stream(&ds.train, &sampler, &state, tf, 1, 1)
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    assert_eq!(first, again, "worker count must not change the batches");
    assert_eq!(first.len(), sampler.epoch_batches(2).len());
    // Resuming at batch 1 continues with exactly the remaining batches.
    let resumed: Vec<_> = train_stream(
        &ds.train,
        &sampler,
        &SamplerState {
            next_batch: 1,
            ..state
        },
        tf,
        2,
        1,
    )
    .unwrap()
    .map(|b| b.unwrap())
    .collect();
    assert_eq!(resumed[..], first[1..]);

    let mut stream = train_stream(&ds.train, &sampler, &state, tf, 2, 2).unwrap();
    let batch = stream.next_tensors::<Flex>(&device).unwrap().unwrap();
    assert_eq!(batch.images[0].dims(), [8, 3, 128, 64]);
    assert_eq!(batch.images[2].dims(), [8, 3, 128, 64]);
    let pids: Vec<i64> = batch.pids.to_data().convert::<i64>().to_vec().unwrap();
    assert_eq!(
        pids,
        batch
            .indices
            .iter()
            .map(|&i| ds.train[i].label)
            .collect::<Vec<_>>()
    );
    assert_eq!(batch.captions[1].len(), 8);
    let values: Vec<f32> = batch.images[1].to_data().to_vec().unwrap();
    assert!(values.iter().all(|v| v.is_finite()));
    drop(stream);

    let eval: Vec<_> = eval_stream(&ds.gallery, tf, 5, 2, 1)
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    assert_eq!(
        eval.iter().map(|b| b.len()).collect::<Vec<_>>(),
        vec![5, 5, 2]
    );
    let order: Vec<usize> = eval.iter().flat_map(|b| b.indices.clone()).collect();
    assert_eq!(order, (0..12).collect::<Vec<_>>());
    let again: Vec<_> = eval_stream(&ds.gallery, tf, 5, 1, 1)
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    assert_eq!(eval, again);
}
