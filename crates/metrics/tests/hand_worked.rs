//! Hand-worked examples: every expected number is derived in the comments.

mod common;

use common::{meta, scalars};
use next_metrics::{
    distance_matrix, evaluate, evaluate_distance_matrix, EvalConfig, EvalProtocol, MetricsError,
    SampleMeta,
};

fn raw(protocol: EvalProtocol) -> EvalConfig {
    EvalConfig {
        protocol,
        normalize: false,
        ..EvalConfig::default()
    }
}

const EPS: f64 = 1e-12;

#[test]
fn ties_keep_gallery_order_and_junk_is_removed() {
    // Query x = 0, pid 1, cam 0. Squared distance = x^2 (1-D, no normalisation).
    // g0 x=2  pid 2 cam 1 -> d 4, negative
    // g1 x=1  pid 1 cam 1 -> d 1, positive
    // g2 x=1  pid 3 cam 1 -> d 1, negative (ties g1, larger index: after g1)
    // g3 x=-1 pid 1 cam 2 -> d 1, positive (ties, index 3: after g2)
    // g4 x=3  pid 1 cam 0 -> junk (same pid, same camera)
    // g5 x=0  pid 4 cam 0 -> d 0, negative
    // Ranked (junk removed): g5, g1, g2, g3, g0 -> matches 0 1 0 1 0.
    // AP = (1/2 + 2/4) / 2 = 0.5; first hit at rank 2; mINP = 2 positives / rank 4 = 0.5.
    // Gallery of 6 < 50: CMC has 6 entries, [0, 1, 1, 1, 1, 1].
    let q = scalars(&[0.0]);
    let g = scalars(&[2.0, 1.0, 1.0, -1.0, 3.0, 0.0]);
    let qm = meta(&[(1, 0)]);
    let gm = meta(&[(2, 1), (1, 1), (3, 1), (1, 2), (1, 0), (4, 0)]);
    let cfg = raw(EvalProtocol::Standard);
    let report = evaluate(&q, &g, &qm, &gm, &cfg).unwrap();
    assert!((report.map - 0.5).abs() < EPS, "{report:?}");
    assert!((report.minp - 0.5).abs() < EPS);
    assert_eq!(report.cmc, vec![0.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    let stats = report.per_query[0].unwrap();
    assert_eq!(
        (
            stats.first_hit_rank,
            stats.hardest_positive_rank,
            stats.num_positives
        ),
        (2, 4, 2)
    );
    // The textbook path (full matrix + stable argsort) agrees exactly.
    let dense = distance_matrix(&q, &g, &cfg).unwrap();
    assert_eq!(dense, vec![4.0, 1.0, 1.0, 1.0, 9.0, 0.0]);
    assert_eq!(
        evaluate_distance_matrix(&dense, &qm, &gm, &cfg).unwrap(),
        report
    );
}

#[test]
fn queries_without_a_usable_positive_are_skipped_and_counted() {
    // Gallery x = [1, 2, 3], pids [1, 1, 2], cams [0, 1, 0].
    // q0 x=0 pid 1 cam 0: g0 is junk (same cam), g1 positive d 4, g2 negative d 9.
    //    Ranked: g1, g2 -> AP 1, rank-1 hit.
    // q1 x=0 pid 7: no gallery entry with pid 7 -> skipped.
    // q2 x=0 pid 2 cam 0: its only positive g2 has the same camera -> junk -> skipped.
    // mAP = 1 over 1 valid query; 2 skipped.
    let q = scalars(&[0.0, 0.0, 0.0]);
    let g = scalars(&[1.0, 2.0, 3.0]);
    let qm = meta(&[(1, 0), (7, 0), (2, 0)]);
    let gm = meta(&[(1, 0), (1, 1), (2, 0)]);
    let report = evaluate(&q, &g, &qm, &gm, &raw(EvalProtocol::Standard)).unwrap();
    assert_eq!(
        (
            report.num_valid_queries,
            report.num_skipped,
            report.num_queries
        ),
        (1, 2, 3)
    );
    assert!((report.map - 1.0).abs() < EPS);
    assert_eq!(report.per_query[1], None);
    assert_eq!(report.per_query[2], None);
    assert_eq!(report.cmc, vec![1.0, 1.0, 1.0]);
}

#[test]
fn msvr_protocol_uses_scenes_not_cameras() {
    // Query x=0 pid 1 cam 0 scene 5. Gallery:
    // g0 x=1 pid 1 cam 3 scene 5 -> MSVR: junk (same scene); standard: positive (other camera)
    // g1 x=2 pid 2 cam 0 scene 1 -> negative, d 4
    // g2 x=3 pid 1 cam 0 scene 9 -> MSVR: positive (other scene); standard: junk (same camera)
    // MSVR ranked: g1 (4), g2 (9) -> positive at rank 2 -> AP 0.5.
    // Standard ranked: g0 (1), g1 (4) -> positive at rank 1 -> AP 1.
    let q = scalars(&[0.0]);
    let g = scalars(&[1.0, 2.0, 3.0]);
    let qm = vec![SampleMeta::new(1, 0, 5)];
    let gm = vec![
        SampleMeta::new(1, 3, 5),
        SampleMeta::new(2, 0, 1),
        SampleMeta::new(1, 0, 9),
    ];
    let msvr = evaluate(&q, &g, &qm, &gm, &raw(EvalProtocol::Msvr)).unwrap();
    assert!((msvr.map - 0.5).abs() < EPS);
    assert_eq!(msvr.cmc, vec![0.0, 1.0, 1.0]);
    let standard = evaluate(&q, &g, &qm, &gm, &raw(EvalProtocol::Standard)).unwrap();
    assert!((standard.map - 1.0).abs() < EPS);
}

#[test]
fn identical_query_and_gallery_sets() {
    // One set used as both: x = [0, 2, 1, 5], pids [1, 1, 2, 2], all camera 0.
    // Protocol "none" with query_is_gallery drops only the sample itself:
    // q0 (0): g1 d4 pos, g2 d1 neg, g3 d25 neg -> g2, g1, g3: hit at rank 2, AP 1/2
    // q1 (2): g0 d4 pos, g2 d1 neg, g3 d9 neg  -> g2, g0, g3: rank 2, AP 1/2
    // q2 (1): g0 d1 neg, g1 d1 neg, g3 d16 pos -> g0, g1, g3: rank 3, AP 1/3
    // q3 (5): g0 d25 neg, g1 d9 neg, g2 d16 pos -> g1, g2, g0: rank 2, AP 1/2
    // mAP = (1/2 + 1/2 + 1/3 + 1/2) / 4 = 11/24; one positive each, so mINP = mAP.
    // CMC: rank 1: 0; rank 2: 3/4; rank 3 and 4: 1.
    let x = scalars(&[0.0, 2.0, 1.0, 5.0]);
    let m = meta(&[(1, 0), (1, 0), (2, 0), (2, 0)]);
    let cfg = EvalConfig {
        query_is_gallery: true,
        ..raw(EvalProtocol::None)
    };
    let report = evaluate(&x, &x, &m, &m, &cfg).unwrap();
    assert!((report.map - 11.0 / 24.0).abs() < EPS, "{}", report.map);
    assert!((report.minp - 11.0 / 24.0).abs() < EPS);
    assert_eq!(report.cmc, vec![0.0, 0.75, 1.0, 1.0]);
    assert_eq!(report.per_query[2].unwrap().first_hit_rank, 3);

    // Sample ids do the same job as the flag.
    let with_ids: Vec<SampleMeta> = m
        .iter()
        .enumerate()
        .map(|(i, s)| s.with_sample_id(i as u64))
        .collect();
    let by_id = evaluate(&x, &x, &with_ids, &with_ids, &raw(EvalProtocol::None)).unwrap();
    assert_eq!(by_id.map, report.map);

    // Without either, every query finds itself first (distance 0) and counts it as a positive:
    // q0: g0 pos, g2 neg, g1 pos -> (1 + 2/3) / 2 = 5/6; q1: g1, g2, g0 -> 5/6;
    // q2: g2 pos, g0 neg, g1 neg, g3 pos -> (1 + 2/4) / 2 = 3/4; q3: g3, g1, g2 -> 5/6.
    // mAP = (3 * 5/6 + 3/4) / 4 = 13/16; rank-1 = 1.
    let naive = evaluate(&x, &x, &m, &m, &raw(EvalProtocol::None)).unwrap();
    assert!((naive.map - 13.0 / 16.0).abs() < EPS, "{}", naive.map);
    assert_eq!(naive.rank(1), Some(1.0));

    // The standard protocol with one camera per sample gives the same as "none" + flag here.
    let m_cam = meta(&[(1, 0), (1, 1), (2, 2), (2, 3)]);
    let standard = evaluate(&x, &x, &m_cam, &m_cam, &raw(EvalProtocol::Standard)).unwrap();
    assert_eq!(standard.map, report.map);
}

#[test]
fn cmc_is_clipped_to_max_rank() {
    // Gallery of 60 entries, only positive at x = 10 (d 100) behind 9 negatives at x = 1..9:
    // first hit at rank 10 -> CMC[0..9] = 0, CMC[9..] = 1; max_rank 50 < 60 keeps 50 entries.
    let mut values: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    values.push(10.0);
    values.extend((11..=60).map(|v| v as f32));
    let g = scalars(&values);
    let mut gm = meta(&vec![(2, 1); 60]);
    gm[9] = SampleMeta::new(1, 1, 0);
    let report = evaluate(
        &scalars(&[0.0]),
        &g,
        &meta(&[(1, 0)]),
        &gm,
        &raw(EvalProtocol::Standard),
    )
    .unwrap();
    assert_eq!(report.cmc.len(), 50);
    assert_eq!(report.rank(9), Some(0.0));
    assert_eq!(report.rank(10), Some(1.0));
    assert!((report.map - 0.1).abs() < EPS); // AP = 1/10
}

#[test]
fn no_valid_query_is_an_error() {
    let err = evaluate(
        &scalars(&[0.0]),
        &scalars(&[1.0]),
        &meta(&[(1, 0)]),
        &meta(&[(2, 0)]),
        &raw(EvalProtocol::Standard),
    )
    .unwrap_err();
    assert!(
        matches!(err, MetricsError::NoValidQuery { queries: 1 }),
        "{err}"
    );
}

#[test]
fn report_serialises_and_prints_a_table() {
    let report = evaluate(
        &scalars(&[0.0]),
        &scalars(&[1.0, 2.0]),
        &meta(&[(1, 0)]),
        &meta(&[(2, 1), (1, 1)]),
        &raw(EvalProtocol::Standard),
    )
    .unwrap();
    let json = serde_json::to_string(&report).unwrap();
    let back: next_metrics::EvalReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let summary = serde_json::to_value(report.summary()).unwrap();
    assert_eq!(summary["mAP"], 50.0);
    assert_eq!(summary["rank1"], 0.0);
    assert_eq!(summary["rank5"], serde_json::Value::Null); // gallery of 2
    assert_eq!(summary["valid_queries"], 1);
    let table = report.to_string();
    assert!(table.contains("| standard | 50.00 | 0.00 |"), "{table}");
}
