//! Safetensors feature files: round trip, other dtypes, and errors that name the file.

mod common;

use common::{random_features, random_meta, Rng};
use next_metrics::{FeatureSet, MetricsError};
use safetensors::tensor::{Dtype, TensorView};

fn sample_set() -> FeatureSet {
    let mut rng = Rng(7);
    FeatureSet {
        query: random_features(&mut rng, 5, 3, false),
        gallery: random_features(&mut rng, 9, 3, false),
        query_meta: random_meta(&mut rng, 5, 4, 2, 3),
        gallery_meta: random_meta(&mut rng, 9, 4, 2, 3),
    }
}

#[test]
fn round_trip_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.safetensors");
    let set = sample_set();
    set.to_safetensors(&path).unwrap();
    let back = FeatureSet::from_safetensors(&path).unwrap();
    assert_eq!(back, set);
    assert!(!back.query_is_gallery());
    let same = FeatureSet {
        gallery: set.query.clone(),
        gallery_meta: set.query_meta.clone(),
        ..set
    };
    assert!(same.query_is_gallery());
}

#[test]
fn f16_features_and_i32_labels_without_scenes() {
    let q: Vec<u8> = [1.0f32, 0.5, -2.0, 0.25]
        .iter()
        .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
        .collect();
    let pids: Vec<u8> = [3i32, 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let cams: Vec<u8> = [0i32, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut views = Vec::new();
    for set in ["query", "gallery"] {
        views.push((
            set.to_string(),
            TensorView::new(Dtype::F16, vec![2, 2], &q).unwrap(),
        ));
        views.push((
            format!("{set}_pids"),
            TensorView::new(Dtype::I32, vec![2], &pids).unwrap(),
        ));
        views.push((
            format!("{set}_camids"),
            TensorView::new(Dtype::I32, vec![2], &cams).unwrap(),
        ));
    }
    let bytes = safetensors::serialize(views, &None).unwrap();
    let set = FeatureSet::from_safetensors_bytes(&bytes, "mem.safetensors".as_ref()).unwrap();
    assert_eq!(set.query.as_slice(), &[1.0, 0.5, -2.0, 0.25]);
    assert_eq!(set.gallery_meta[1].pid, 4);
    assert_eq!(set.gallery_meta[1].camid, 1);
    assert_eq!(set.gallery_meta[1].sceneid, next_metrics::NO_SCENE);
    assert!(set.query_is_gallery());
    // The msvr protocol needs the scene ids this file lacks, and says so (it used to report
    // that no query identity appears in the gallery).
    let cfg = next_metrics::EvalConfig {
        protocol: next_metrics::EvalProtocol::Msvr,
        ..Default::default()
    };
    let err = next_metrics::evaluate(
        &set.query,
        &set.gallery,
        &set.query_meta,
        &set.gallery_meta,
        &cfg,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("query_sceneids") && err.contains("msvr") && !err.contains("no identity"),
        "{err}"
    );
}

#[test]
fn errors_name_the_file_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.safetensors");
    let err = FeatureSet::from_safetensors(&missing).unwrap_err();
    assert!(err.to_string().contains("absent.safetensors"), "{err}");

    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not safetensors at all").unwrap();
    let err = FeatureSet::from_safetensors(&garbage).unwrap_err();
    assert!(matches!(err, MetricsError::BadFile { .. }));
    assert!(
        err.to_string()
            .contains("garbage.safetensors: not a safetensors file"),
        "{err}"
    );

    let data = [0u8; 16];
    let views = vec![(
        "query".to_string(),
        TensorView::new(Dtype::F32, vec![2, 2], &data).unwrap(),
    )];
    let partial = dir.path().join("partial.safetensors");
    std::fs::write(&partial, safetensors::serialize(views, &None).unwrap()).unwrap();
    let err = FeatureSet::from_safetensors(&partial).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("partial.safetensors")
            && text.contains("expected a tensor named \"gallery\""),
        "{text}"
    );

    let flat = [0u8; 16];
    let views = vec![(
        "query".to_string(),
        TensorView::new(Dtype::F32, vec![4], &flat).unwrap(),
    )];
    let bytes = safetensors::serialize(views, &None).unwrap();
    let err = FeatureSet::from_safetensors_bytes(&bytes, "flat.safetensors".as_ref()).unwrap_err();
    assert!(err.to_string().contains("must be 2-D"), "{err}");
}

#[test]
fn features_from_a_burn_tensor() {
    use burn::backend::Flex;
    use burn::tensor::{Tensor, TensorData};
    let device = Default::default();
    let tensor = Tensor::<Flex, 2>::from_data(
        TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2]),
        &device,
    );
    let features = next_metrics::Features::from_tensor(tensor).unwrap();
    assert_eq!((features.rows(), features.dim()), (3, 2));
    assert_eq!(features.row(2), &[5.0, 6.0]);
}
