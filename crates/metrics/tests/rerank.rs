//! Re-ranking: the sparse implementation against a dense textbook one written here.

mod common;

use common::{random_meta, Rng};
use next_metrics::{evaluate_distance_matrix, EvalConfig, Features, RerankConfig, Reranked};

/// Stable argsort of a row (ties by index).
fn argsort(row: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[a].total_cmp(&row[b]));
    order
}

/// The textbook dense k-reciprocal re-ranking on L2-normalised features, (Q+G)^2 memory:
/// full distance matrix, argsort, dense V, dense query expansion, dense Jaccard.
fn dense_rerank(
    query: &Features,
    gallery: &Features,
    k1: usize,
    k2: usize,
    lambda: f32,
) -> Vec<f32> {
    let dim = query.dim();
    let mut all = Features::new(
        [query.as_slice(), gallery.as_slice()].concat(),
        query.rows() + gallery.rows(),
        dim,
    )
    .unwrap();
    all.l2_normalize();
    let n = all.rows();
    let sq: Vec<f32> = (0..n)
        .map(|i| all.row(i).iter().fold(0.0f32, |a, v| a + v * v))
        .collect();
    let mut dist = vec![0.0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            let dot = all
                .row(i)
                .iter()
                .zip(all.row(j))
                .fold(0.0f32, |a, (x, y)| a + x * y);
            dist[i * n + j] = (sq[i] + sq[j]) - 2.0 * dot;
        }
    }
    let max: Vec<f32> = (0..n)
        .map(|i| {
            dist[i * n..(i + 1) * n]
                .iter()
                .fold(f32::MIN, |a, &b| a.max(b))
        })
        .collect();
    let scaled = |i: usize, j: usize| dist[i * n + j] / max[i];
    let rank: Vec<Vec<usize>> = (0..n).map(|i| argsort(&dist[i * n..(i + 1) * n])).collect();
    let reciprocal = |i: usize, k: usize| -> Vec<usize> {
        let head = |x: usize| &rank[x][..(k + 1).min(n)];
        head(i)
            .iter()
            .copied()
            .filter(|&j| head(j).contains(&i))
            .collect()
    };
    let half = (k1 as f64 / 2.0).round_ties_even() as usize;
    let mut v = vec![0.0f32; n * n];
    for i in 0..n {
        let base = reciprocal(i, k1);
        let mut expansion = base.clone();
        for &c in &base {
            let around = reciprocal(c, half);
            let shared = around.iter().filter(|x| base.contains(x)).count();
            if shared as f64 > 2.0 / 3.0 * around.len() as f64 {
                expansion.extend(around);
            }
        }
        expansion.sort_unstable();
        expansion.dedup();
        let w: Vec<f32> = expansion.iter().map(|&j| (-scaled(i, j)).exp()).collect();
        let total: f32 = w.iter().sum();
        for (&j, wj) in expansion.iter().zip(w) {
            v[i * n + j] = wj / total;
        }
    }
    if k2 != 1 {
        let mut expanded = vec![0.0f32; n * n];
        for i in 0..n {
            let rows = &rank[i][..k2.min(n)];
            for c in 0..n {
                let sum: f32 = rows.iter().map(|&t| v[t * n + c]).fold(0.0, |a, b| a + b);
                expanded[i * n + c] = sum / rows.len() as f32;
            }
        }
        v = expanded;
    }
    let (nq, ng) = (query.rows(), gallery.rows());
    let mut out = vec![0.0f32; nq * ng];
    for q in 0..nq {
        for g in 0..ng {
            let j = nq + g;
            let m: f32 = (0..n)
                .filter(|&c| v[q * n + c] != 0.0)
                .fold(0.0, |a, c| a + v[q * n + c].min(v[j * n + c]));
            let jaccard = 1.0 - m / (2.0 - m);
            out[q * ng + g] = jaccard * (1.0 - lambda) + scaled(q, j) * lambda;
        }
    }
    out
}

/// Clustered features: `ids` centres plus noise, so k-reciprocal sets are non-trivial.
fn clustered(
    rng: &mut Rng,
    rows: usize,
    dim: usize,
    ids: usize,
    centres: &[f32],
) -> (Features, Vec<i64>) {
    let pids: Vec<i64> = (0..rows).map(|_| rng.below(ids as u64) as i64).collect();
    let data = pids
        .iter()
        .flat_map(|&p| {
            (0..dim)
                .map(|d| centres[p as usize * dim + d])
                .collect::<Vec<_>>()
        })
        .map(|c| c + 0.6 * (rng.uniform() - 0.5))
        .collect();
    (Features::new(data, rows, dim).unwrap(), pids)
}

fn check(seed: u64, rerank: RerankConfig, nq: usize, ng: usize) {
    let mut rng = Rng(seed);
    let (dim, ids) = (6, 7);
    let centres: Vec<f32> = (0..ids * dim).map(|_| rng.uniform() * 2.0 - 1.0).collect();
    let (q, qp) = clustered(&mut rng, nq, dim, ids, &centres);
    let (g, gp) = clustered(&mut rng, ng, dim, ids, &centres);
    let cfg = EvalConfig::default();
    let reranked = Reranked::new(&q, &g, &rerank, &cfg).unwrap();
    let sparse = reranked.distance_matrix().unwrap();
    let dense = dense_rerank(&q, &g, rerank.k1, rerank.k2, rerank.lambda);
    let worst = sparse
        .iter()
        .zip(&dense)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "largest difference {worst}");
    // Re-ranking must matter here, or the comparison proves little.
    let plain = next_metrics::distance_matrix(&q, &g, &cfg).unwrap();
    let changed = (0..nq)
        .filter(|&i| {
            argsort(&plain[i * ng..(i + 1) * ng]) != argsort(&sparse[i * ng..(i + 1) * ng])
        })
        .count();
    assert!(changed > 0, "re-ranking changed no ranking");
    for i in 0..nq {
        assert_eq!(
            argsort(&sparse[i * ng..(i + 1) * ng]),
            argsort(&dense[i * ng..(i + 1) * ng]),
            "query {i}"
        );
    }
    // Streaming evaluation and ranked lists on the sparse distances equal the dense path.
    let mut meta_rng = Rng(seed + 100);
    let mut qm = random_meta(&mut meta_rng, nq, 1, 4, 1);
    let mut gm = random_meta(&mut meta_rng, ng, 1, 4, 1);
    qm.iter_mut().zip(&qp).for_each(|(m, &p)| m.pid = p);
    gm.iter_mut().zip(&gp).for_each(|(m, &p)| m.pid = p);
    let report = reranked.evaluate(&qm, &gm).unwrap();
    assert_eq!(
        report,
        evaluate_distance_matrix(&sparse, &qm, &gm, &cfg).unwrap()
    );
    let dense_report = evaluate_distance_matrix(&dense, &qm, &gm, &cfg).unwrap();
    assert!((report.map - dense_report.map).abs() < 1e-12);
    assert_eq!(report.cmc, dense_report.cmc);
    let lists = reranked.top_k(None, 5).unwrap();
    for (i, list) in lists.iter().enumerate() {
        let got: Vec<usize> = list.iter().map(|n| n.index).collect();
        assert_eq!(got, argsort(&sparse[i * ng..(i + 1) * ng])[..5].to_vec());
    }
}

#[test]
fn sparse_rerank_equals_dense_textbook_fast_reid_parameters() {
    check(11, RerankConfig::default(), 20, 90);
}

#[test]
fn sparse_rerank_equals_dense_textbook_small_k() {
    check(
        12,
        RerankConfig {
            k1: 5,
            k2: 3,
            lambda: 0.3,
        },
        15,
        60,
    );
}

#[test]
fn sparse_rerank_equals_dense_textbook_without_query_expansion() {
    check(
        13,
        RerankConfig {
            k1: 7,
            k2: 1,
            lambda: 0.5,
        },
        12,
        50,
    );
}

#[test]
fn rerank_rejects_bad_parameters() {
    let f = Features::new(vec![1.0, 0.0, 0.0, 1.0], 2, 2).unwrap();
    for bad in [
        RerankConfig {
            k1: 0,
            ..Default::default()
        },
        RerankConfig {
            lambda: 1.5,
            ..Default::default()
        },
    ] {
        assert!(Reranked::new(&f, &f, &bad, &EvalConfig::default()).is_err());
    }
}
