//! Property tests on random inputs: the streaming evaluation equals the textbook one exactly, and
//! block size, thread count and gallery order never change results.

mod common;

use common::{random_features, random_meta, Rng};
use next_metrics::{
    distance_matrix, evaluate, evaluate_distance_matrix, top_k, Distance, EvalConfig, EvalProtocol,
    Features, SampleMeta,
};

/// Sizes that span two query tiles and three gallery tiles.
const Q: usize = 230;
const G: usize = 2100;

fn inputs(seed: u64, integer: bool) -> (Features, Features, Vec<SampleMeta>, Vec<SampleMeta>) {
    let mut rng = Rng(seed);
    let dim = if integer { 4 } else { 8 };
    let q = random_features(&mut rng, Q, dim, integer);
    let g = random_features(&mut rng, G, dim, integer);
    let qm = random_meta(&mut rng, Q, 40, 3, 4);
    let gm = random_meta(&mut rng, G, 40, 3, 4);
    (q, g, qm, gm)
}

#[test]
fn streaming_equals_textbook_with_many_ties() {
    // Features in {-1, 0, 1}^4 without normalisation: integer distances, most of them tied.
    let (q, g, qm, gm) = inputs(1, true);
    for protocol in [
        EvalProtocol::Standard,
        EvalProtocol::Msvr,
        EvalProtocol::None,
    ] {
        let cfg = EvalConfig {
            protocol,
            normalize: false,
            ..EvalConfig::default()
        };
        let fast = evaluate(&q, &g, &qm, &gm, &cfg).unwrap();
        let dense = distance_matrix(&q, &g, &cfg).unwrap();
        let textbook = evaluate_distance_matrix(&dense, &qm, &gm, &cfg).unwrap();
        assert_eq!(fast, textbook, "{protocol}");
        assert!(fast.num_valid_queries > 100);
    }
}

#[test]
fn streaming_equals_textbook_for_every_distance() {
    let (q, g, qm, gm) = inputs(2, false);
    for distance in [
        Distance::SquaredEuclidean,
        Distance::Euclidean,
        Distance::Cosine,
    ] {
        for normalize in [true, false] {
            let cfg = EvalConfig {
                distance,
                normalize,
                ..EvalConfig::default()
            };
            let fast = evaluate(&q, &g, &qm, &gm, &cfg).unwrap();
            let dense = distance_matrix(&q, &g, &cfg).unwrap();
            assert_eq!(
                fast,
                evaluate_distance_matrix(&dense, &qm, &gm, &cfg).unwrap(),
                "{distance:?}"
            );
        }
    }
}

#[test]
fn block_size_and_threads_never_change_results() {
    let (q, g, qm, gm) = inputs(3, true);
    let base = EvalConfig {
        normalize: false,
        ..EvalConfig::default()
    };
    let reference = evaluate(&q, &g, &qm, &gm, &base).unwrap();
    let reference_top = top_k(&q, &g, Some((&qm, &gm)), 7, &base).unwrap();
    for (block_size, threads) in [
        (1, Some(1)),
        (960, Some(2)),
        (1000, Some(3)),
        (100_000, Some(1)),
        (2000, None),
    ] {
        let cfg = EvalConfig {
            block_size,
            threads,
            ..base.clone()
        };
        assert_eq!(
            evaluate(&q, &g, &qm, &gm, &cfg).unwrap(),
            reference,
            "block {block_size}"
        );
        assert_eq!(
            top_k(&q, &g, Some((&qm, &gm)), 7, &cfg).unwrap(),
            reference_top
        );
    }
}

#[test]
fn permuting_the_gallery_never_changes_map_or_cmc() {
    // Tie-free by construction: distinct gallery values 0..G, every query below all of them, so
    // the distance (g - x)^2 is an exact, distinct integer in each row. Random f32 features are
    // not tie-free (f32 distances collide), and with ties the gallery order legitimately matters.
    let mut rng = Rng(4);
    let mut values: Vec<f32> = (0..G).map(|v| v as f32).collect();
    shuffle(&mut rng, &mut values);
    let g = Features::new(values, G, 1).unwrap();
    let q = Features::new((0..Q).map(|_| -1.0 - rng.below(500) as f32).collect(), Q, 1).unwrap();
    let qm = random_meta(&mut rng, Q, 40, 3, 1);
    let gm = random_meta(&mut rng, G, 40, 3, 1);
    let cfg = EvalConfig {
        normalize: false,
        ..EvalConfig::default()
    };
    let reference = evaluate(&q, &g, &qm, &gm, &cfg).unwrap();
    let mut perm: Vec<usize> = (0..G).collect();
    shuffle(&mut rng, &mut perm);
    let data: Vec<f32> = perm.iter().flat_map(|&j| g.row(j).to_vec()).collect();
    let g2 = Features::new(data, G, g.dim()).unwrap();
    let gm2: Vec<SampleMeta> = perm.iter().map(|&j| gm[j]).collect();
    let permuted = evaluate(&q, &g2, &qm, &gm2, &cfg).unwrap();
    assert!(reference.num_valid_queries > 100);
    assert_eq!(permuted.map, reference.map);
    assert_eq!(permuted.cmc, reference.cmc);
    assert_eq!(permuted.minp, reference.minp);
    assert_eq!(permuted.per_query, reference.per_query);
}

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i as u64 + 1) as usize);
    }
}

#[test]
fn perfect_ranking_gives_map_one() {
    // Each pid has its own axis; samples are the axis plus small noise, so every positive is
    // closer than every negative.
    let mut rng = Rng(5);
    let (pids, dim) = (12usize, 12usize);
    let make = |rng: &mut Rng, n: usize| {
        // Camera (i / pids) % 3: every pid appears in every camera.
        let meta: Vec<SampleMeta> = (0..n)
            .map(|i| SampleMeta::new((i % pids) as i64, ((i / pids) % 3) as i64, 0))
            .collect();
        let data: Vec<f32> = meta
            .iter()
            .flat_map(|m| {
                (0..dim)
                    .map(|d| if d == m.pid as usize { 1.0 } else { 0.0 })
                    .collect::<Vec<_>>()
            })
            .map(|v| v + 0.05 * (rng.uniform() - 0.5))
            .collect();
        (Features::new(data, n, dim).unwrap(), meta)
    };
    let (q, qm) = make(&mut rng, 50);
    let (g, gm) = make(&mut rng, 400);
    let report = evaluate(&q, &g, &qm, &gm, &EvalConfig::default()).unwrap();
    assert_eq!(report.num_valid_queries, 50);
    assert!((report.map - 1.0).abs() < 1e-12);
    assert!((report.minp - 1.0).abs() < 1e-12);
    assert!(report.cmc.iter().all(|&c| c == 1.0));
}

#[test]
fn top_k_matches_a_stable_argsort_of_the_distance_matrix() {
    let (q, g, qm, gm) = inputs(6, true);
    let cfg = EvalConfig {
        normalize: false,
        ..EvalConfig::default()
    };
    let dense = distance_matrix(&q, &g, &cfg).unwrap();
    let lists = top_k(&q, &g, None, 25, &cfg).unwrap();
    let junk_free = top_k(&q, &g, Some((&qm, &gm)), 25, &cfg).unwrap();
    for (i, row) in dense.chunks_exact(G).enumerate() {
        let mut order: Vec<usize> = (0..G).collect();
        order.sort_by(|&a, &b| row[a].total_cmp(&row[b]));
        let got: Vec<usize> = lists[i].iter().map(|n| n.index).collect();
        assert_eq!(got, order[..25].to_vec(), "query {i}");
        assert!(lists[i].iter().all(|n| n.distance == row[n.index]));
        let kept: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&j| !(gm[j].pid == qm[i].pid && gm[j].camid == qm[i].camid))
            .take(25)
            .collect();
        let got: Vec<usize> = junk_free[i].iter().map(|n| n.index).collect();
        assert_eq!(got, kept, "query {i} without junk");
    }
}
