//! Bad input gives a clear error, never a panic.

mod common;

use common::{meta, scalars};
use next_metrics::{evaluate, top_k, EvalConfig, Features, MetricsError};

fn two_d(values: &[f32]) -> Features {
    Features::new(values.to_vec(), values.len() / 2, 2).unwrap()
}

#[test]
fn mismatched_metadata_lengths() {
    let err = evaluate(
        &scalars(&[0.0, 1.0]),
        &scalars(&[1.0]),
        &meta(&[(1, 0)]),
        &meta(&[(1, 1)]),
        &EvalConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            MetricsError::MetaMismatch {
                set: "query",
                rows: 2,
                meta: 1
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("query has 2 feature rows but 1 metadata entries"),
        "{err}"
    );
    let err = evaluate(
        &scalars(&[0.0]),
        &scalars(&[1.0]),
        &meta(&[(1, 0)]),
        &meta(&[]),
        &EvalConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, MetricsError::MetaMismatch { set: "gallery", .. }),
        "{err}"
    );
}

#[test]
fn nan_and_infinite_features_name_the_row() {
    let g = scalars(&[1.0, f32::NAN, 2.0]);
    let err = evaluate(
        &scalars(&[0.0]),
        &g,
        &meta(&[(1, 0)]),
        &meta(&[(1, 1); 3]),
        &EvalConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            MetricsError::NonFinite {
                set: "gallery",
                row: 1
            }
        ),
        "{err}"
    );
    let q = two_d(&[0.0, 1.0, f32::INFINITY, 0.0]);
    let err = evaluate(
        &q,
        &two_d(&[1.0, 0.0]),
        &meta(&[(1, 0); 2]),
        &meta(&[(1, 1)]),
        &EvalConfig::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("query feature row 1 is not finite"),
        "{err}"
    );
    // A squared norm that overflows f32 is caught too.
    let big = scalars(&[3e20]);
    let err = evaluate(
        &big,
        &scalars(&[1.0]),
        &meta(&[(1, 0)]),
        &meta(&[(1, 1)]),
        &EvalConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            MetricsError::NonFinite {
                set: "query",
                row: 0
            }
        ),
        "{err}"
    );
}

#[test]
fn empty_sets_are_rejected() {
    let empty = Features::new(vec![], 0, 1).unwrap();
    let err = evaluate(
        &empty,
        &scalars(&[1.0]),
        &[],
        &meta(&[(1, 0)]),
        &EvalConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, MetricsError::Empty { set: "query" }), "{err}");
    let err = evaluate(
        &scalars(&[1.0]),
        &empty,
        &meta(&[(1, 0)]),
        &[],
        &EvalConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, MetricsError::Empty { set: "gallery" }),
        "{err}"
    );
    assert!(top_k(&empty, &scalars(&[1.0]), None, 3, &EvalConfig::default()).is_err());
}

#[test]
fn dimension_mismatch_and_bad_shapes() {
    let err = evaluate(
        &scalars(&[0.0]),
        &two_d(&[1.0, 0.0]),
        &meta(&[(1, 0)]),
        &meta(&[(1, 1)]),
        &EvalConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            MetricsError::DimMismatch {
                query: 1,
                gallery: 2
            }
        ),
        "{err}"
    );
    assert!(matches!(
        Features::new(vec![0.0; 5], 2, 2),
        Err(MetricsError::BadShape { len: 5, .. })
    ));
    assert!(matches!(
        Features::new(vec![], 0, 0),
        Err(MetricsError::ZeroDim { .. })
    ));
}

#[test]
fn bad_configuration_values() {
    let f = scalars(&[0.0]);
    let m = meta(&[(1, 0)]);
    for cfg in [
        EvalConfig {
            max_rank: 0,
            ..EvalConfig::default()
        },
        EvalConfig {
            block_size: 0,
            ..EvalConfig::default()
        },
        EvalConfig {
            threads: Some(0),
            ..EvalConfig::default()
        },
    ] {
        assert!(
            matches!(evaluate(&f, &f, &m, &m, &cfg), Err(MetricsError::Config(_))),
            "{cfg:?}"
        );
    }
    let cfg = EvalConfig {
        query_is_gallery: true,
        ..EvalConfig::default()
    };
    let err = evaluate(&f, &scalars(&[0.0, 1.0]), &m, &meta(&[(1, 1); 2]), &cfg).unwrap_err();
    assert!(
        matches!(
            err,
            MetricsError::NotSameSet {
                query: 1,
                gallery: 2
            }
        ),
        "{err}"
    );
    assert!("euclid".parse::<next_metrics::Distance>().is_err());
    assert!("msvr".parse::<next_metrics::EvalProtocol>().is_ok());
    assert!("camera".parse::<next_metrics::EvalProtocol>().is_err());
}
