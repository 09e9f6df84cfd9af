//! Per-query results and the summary report (serialisable, printable as a table).

use crate::{Distance, EvalConfig, EvalProtocol, MetricsError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Exact results of one valid query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QueryStats {
    /// Average precision.
    pub ap: f64,
    /// Inverse negative penalty: positives / rank of the hardest positive.
    pub inp: f64,
    /// 1-based rank of the first positive in the ranked list (junk removed).
    pub first_hit_rank: usize,
    /// 1-based rank of the last (hardest) positive.
    pub hardest_positive_rank: usize,
    /// Number of positives (same pid, not junk).
    pub num_positives: usize,
}

impl QueryStats {
    /// Results from, per positive in ranked order, the kept negatives between it and the previous positive.
    pub fn from_closer_negatives(closer: &[u64]) -> Self {
        let mut negatives_before = 0u64;
        let mut ap = 0.0f64;
        let mut first = 0u64;
        let mut last = 0u64;
        for (k, n) in closer.iter().enumerate() {
            negatives_before += n;
            let rank = k as u64 + negatives_before; // 0-based rank of positive k
            if k == 0 {
                first = rank;
            }
            last = rank;
            ap += (k + 1) as f64 / (rank + 1) as f64;
        }
        let positives = closer.len();
        Self {
            ap: ap / positives as f64,
            inp: positives as f64 / (last + 1) as f64,
            first_hit_rank: first as usize + 1,
            hardest_positive_rank: last as usize + 1,
            num_positives: positives,
        }
    }
}

/// Everything a ReID paper reports, plus per-query detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Protocol used.
    pub protocol: EvalProtocol,
    /// Distance used.
    pub distance: Distance,
    /// Mean average precision over valid queries.
    pub map: f64,
    /// CMC: `cmc[k]` is the fraction of valid queries with a positive within the first `k + 1` ranks.
    pub cmc: Vec<f64>,
    /// Mean inverse negative penalty over valid queries.
    pub minp: f64,
    /// Number of queries given.
    pub num_queries: usize,
    /// Queries with at least one positive.
    pub num_valid_queries: usize,
    /// Queries skipped because no positive is left in the gallery.
    pub num_skipped: usize,
    /// Per query (input order): `None` when skipped.
    pub per_query: Vec<Option<QueryStats>>,
}

impl EvalReport {
    /// CMC at 1-based rank `k` (`None` beyond the computed length).
    pub fn rank(&self, k: usize) -> Option<f64> {
        k.checked_sub(1).and_then(|i| self.cmc.get(i)).copied()
    }

    /// The headline numbers, in percent, as printed by the tools.
    pub fn summary(&self) -> Summary {
        let pct = |v: Option<f64>| v.map(|v| 100.0 * v);
        Summary {
            protocol: self.protocol,
            map: 100.0 * self.map,
            rank1: pct(self.rank(1)),
            rank5: pct(self.rank(5)),
            rank10: pct(self.rank(10)),
            minp: 100.0 * self.minp,
            valid_queries: self.num_valid_queries,
            skipped_queries: self.num_skipped,
        }
    }
}

/// Headline numbers in percent (`None`: the gallery is shorter than that rank).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Protocol used.
    pub protocol: EvalProtocol,
    /// mAP, percent.
    #[serde(rename = "mAP")]
    pub map: f64,
    /// Rank-1 accuracy, percent.
    pub rank1: Option<f64>,
    /// Rank-5 accuracy, percent.
    pub rank5: Option<f64>,
    /// Rank-10 accuracy, percent.
    pub rank10: Option<f64>,
    /// mINP, percent.
    #[serde(rename = "mINP")]
    pub minp: f64,
    /// Queries with a positive.
    pub valid_queries: usize,
    /// Queries skipped (no positive).
    pub skipped_queries: usize,
}

/// Average per-query results into a report; CMC length is `min(max_rank, gallery size)`.
pub(crate) fn summarize(
    per_query: Vec<Option<QueryStats>>,
    cfg: &EvalConfig,
    num_gallery: usize,
) -> Result<EvalReport, MetricsError> {
    let max_rank = cfg.max_rank.min(num_gallery);
    let valid: Vec<&QueryStats> = per_query.iter().flatten().collect();
    if valid.is_empty() {
        return Err(MetricsError::NoValidQuery {
            queries: per_query.len(),
        });
    }
    let n = valid.len() as f64;
    // A valid query's CMC is 1 from its first hit on, including past the end of a ranked list
    // shorter than max_rank (the reference would fail there).
    let mut first_hits = vec![0usize; max_rank];
    for s in &valid {
        if s.first_hit_rank <= max_rank {
            first_hits[s.first_hit_rank - 1] += 1;
        }
    }
    let mut cumulative = 0usize;
    let cmc = first_hits
        .iter()
        .map(|h| {
            cumulative += h;
            cumulative as f64 / n
        })
        .collect();
    Ok(EvalReport {
        protocol: cfg.protocol,
        distance: cfg.distance,
        map: valid.iter().map(|s| s.ap).sum::<f64>() / n,
        cmc,
        minp: valid.iter().map(|s| s.inp).sum::<f64>() / n,
        num_queries: per_query.len(),
        num_valid_queries: valid.len(),
        num_skipped: per_query.len() - valid.len(),
        per_query,
    })
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct =
            |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{:.2}", 100.0 * v));
        writeln!(
            f,
            "| protocol | mAP | R-1 | R-5 | R-10 | R-20 | mINP | valid | skipped |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|")?;
        writeln!(
            f,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.protocol,
            pct(Some(self.map)),
            pct(self.rank(1)),
            pct(self.rank(5)),
            pct(self.rank(10)),
            pct(self.rank(20)),
            pct(Some(self.minp)),
            self.num_valid_queries,
            self.num_skipped
        )
    }
}
