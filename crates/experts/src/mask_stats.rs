//! Diagnostics of the semantic experts' hard sampling masks (Sec. V-D "tokens selected per
//! expert", Fig. 9): how many tokens each expert keeps per modality, how often it keeps none,
//! and how much the experts' masks overlap (pairwise IoU). Collapsed experts show as IoU near 1
//! (two experts pick the same tokens) or as a modality no expert ever samples.

use next_common::Modality;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An IoU at or above this marks two experts as picking the same tokens.
pub const SAME_TOKENS_IOU: f64 = 0.9;

/// Mask statistics of one expert.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExpertTokens {
    /// Mean number of tokens kept per sample, per modality (RGB, NIR, TIR).
    pub kept: [f64; 3],
    /// Fraction of samples whose mask keeps no token of the modality.
    pub empty: [f64; 3],
}

/// Mean IoU of the masks of two experts over the samples where either keeps a token.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExpertOverlap {
    /// First expert (0-based).
    pub a: usize,
    /// Second expert (0-based).
    pub b: usize,
    /// Mean IoU over all 3N tokens (`None` when neither expert ever keeps a token).
    pub iou: Option<f64>,
    /// Mean IoU per modality (`None` where neither keeps a token of it).
    pub per_modality: [Option<f64>; 3],
}

/// Statistics of the hard masks `[B, K_s, 3, N]` of a set of samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpertMaskStats {
    /// Samples measured.
    pub samples: usize,
    /// Tokens per modality N.
    pub tokens_per_modality: usize,
    /// One entry per semantic expert.
    pub experts: Vec<ExpertTokens>,
    /// Every pair of experts, `(0, 1), (0, 2), ..., (K-2, K-1)`.
    pub overlaps: Vec<ExpertOverlap>,
}

impl ExpertMaskStats {
    /// Symptoms of collapse in words: pairs of experts with IoU of at least
    /// [`SAME_TOKENS_IOU`], modalities no expert samples, experts that never keep a token.
    pub fn collapse_symptoms(&self) -> Vec<String> {
        let mut out = Vec::new();
        for o in &self.overlaps {
            if let Some(iou) = o.iou.filter(|iou| *iou >= SAME_TOKENS_IOU) {
                out.push(format!(
                    "experts {} and {} pick the same tokens (IoU {iou:.2})",
                    o.a + 1,
                    o.b + 1
                ));
            }
        }
        for modality in Modality::ALL {
            let (m, name) = (modality.index(), modality.name());
            if self.experts.iter().all(|e| e.kept[m] == 0.0) {
                out.push(format!("no expert samples a {name} token"));
            }
        }
        for (i, e) in self.experts.iter().enumerate() {
            if e.kept.iter().all(|k| *k == 0.0) {
                out.push(format!("expert {} never keeps a token", i + 1));
            }
        }
        out
    }
}

impl fmt::Display for ExpertMaskStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "semantic experts: tokens kept per sample of {} per modality ({} samples; empty = share of samples keeping none)",
            self.tokens_per_modality, self.samples
        )?;
        for (i, e) in self.experts.iter().enumerate() {
            let cells: Vec<String> = Modality::ALL
                .map(|m| {
                    let i = m.index();
                    format!("{m} {:5.1} (empty {:3.0}%)", e.kept[i], 100.0 * e.empty[i])
                })
                .to_vec();
            writeln!(f, "  expert {}: {}", i + 1, cells.join(", "))?;
        }
        let iou = |v: Option<f64>| v.map_or("  n/a".to_string(), |v| format!("{v:5.2}"));
        for o in &self.overlaps {
            writeln!(
                f,
                "  IoU experts {}-{}: {} (RGB {}, NIR {}, TIR {})",
                o.a + 1,
                o.b + 1,
                iou(o.iou),
                iou(o.per_modality[0]),
                iou(o.per_modality[1]),
                iou(o.per_modality[2])
            )?;
        }
        for symptom in self.collapse_symptoms() {
            writeln!(f, "  collapse: {symptom}")?;
        }
        Ok(())
    }
}

/// Running sums behind [`ExpertMaskStats`]; feed it mask batches with [`MaskStatsAccumulator::add`].
#[derive(Debug, Clone)]
pub struct MaskStatsAccumulator {
    experts: usize,
    tokens: usize,
    samples: usize,
    kept: Vec<[f64; 3]>,
    empty: Vec<[f64; 3]>,
    /// Per pair, per modality (index 3 = all tokens): (sum of IoU, samples with a union).
    iou: Vec<[(f64, usize); 4]>,
}

impl MaskStatsAccumulator {
    /// An empty accumulator for `experts` experts and `tokens` tokens per modality.
    pub fn new(experts: usize, tokens: usize) -> Self {
        let pairs = experts * experts.saturating_sub(1) / 2;
        Self {
            experts,
            tokens,
            samples: 0,
            kept: vec![[0.0; 3]; experts],
            empty: vec![[0.0; 3]; experts],
            iou: vec![[(0.0, 0); 4]; pairs],
        }
    }

    /// Add a batch of hard masks: `values` row-major `[B, K, 3, N]` with `dims = [B, K, 3, N]`
    /// (a value above 0.5 = kept). Fails when the shape does not match the accumulator.
    pub fn add(&mut self, values: &[f32], dims: [usize; 4]) -> Result<(), String> {
        let [batch, experts, modalities, tokens] = dims;
        if experts != self.experts || modalities != 3 || tokens != self.tokens {
            return Err(format!(
                "expert masks of shape {dims:?} do not fit [B, {}, 3, {}]",
                self.experts, self.tokens
            ));
        }
        if values.len() != batch * experts * 3 * tokens {
            return Err(format!("{} mask values for shape {dims:?}", values.len()));
        }
        let row = |s: usize, e: usize, m: usize| {
            let start = ((s * experts + e) * 3 + m) * tokens;
            &values[start..start + tokens]
        };
        for s in 0..batch {
            for e in 0..experts {
                for m in 0..3 {
                    let kept = row(s, e, m).iter().filter(|v| **v > 0.5).count();
                    self.kept[e][m] += kept as f64;
                    self.empty[e][m] += f64::from(u8::from(kept == 0));
                }
            }
            let mut pair = 0;
            for a in 0..experts {
                for b in a + 1..experts {
                    let (mut inter_all, mut union_all) = (0usize, 0usize);
                    for m in 0..3 {
                        let (inter, union) = intersection_union(row(s, a, m), row(s, b, m));
                        inter_all += inter;
                        union_all += union;
                        add_iou(&mut self.iou[pair][m], inter, union);
                    }
                    add_iou(&mut self.iou[pair][3], inter_all, union_all);
                    pair += 1;
                }
            }
        }
        self.samples += batch;
        Ok(())
    }

    /// The statistics of everything added so far.
    pub fn finish(&self) -> ExpertMaskStats {
        let n = self.samples.max(1) as f64;
        let experts = (0..self.experts)
            .map(|e| ExpertTokens {
                kept: self.kept[e].map(|k| k / n),
                empty: self.empty[e].map(|k| k / n),
            })
            .collect();
        let mean = |(sum, count): (f64, usize)| (count > 0).then(|| sum / count as f64);
        let mut overlaps = Vec::new();
        let mut pair = 0;
        for a in 0..self.experts {
            for b in a + 1..self.experts {
                let sums = self.iou[pair];
                overlaps.push(ExpertOverlap {
                    a,
                    b,
                    iou: mean(sums[3]),
                    per_modality: [mean(sums[0]), mean(sums[1]), mean(sums[2])],
                });
                pair += 1;
            }
        }
        ExpertMaskStats {
            samples: self.samples,
            tokens_per_modality: self.tokens,
            experts,
            overlaps,
        }
    }
}

fn intersection_union(a: &[f32], b: &[f32]) -> (usize, usize) {
    a.iter().zip(b).fold((0, 0), |(inter, union), (x, y)| {
        let (x, y) = (*x > 0.5, *y > 0.5);
        (inter + usize::from(x && y), union + usize::from(x || y))
    })
}

fn add_iou(slot: &mut (f64, usize), inter: usize, union: usize) {
    if union > 0 {
        slot.0 += inter as f64 / union as f64;
        slot.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_empties_and_iou_match_hand_values() {
        // B = 2, K = 3, N = 2. Expert masks per sample, modalities RGB | NIR | TIR.
        #[rustfmt::skip]
        let values = [
            // sample 0
            1.0, 1.0,  1.0, 0.0,  0.0, 0.0, // expert 1
            1.0, 0.0,  1.0, 0.0,  0.0, 0.0, // expert 2
            0.0, 0.0,  0.0, 1.0,  0.0, 0.0, // expert 3
            // sample 1
            1.0, 1.0,  1.0, 1.0,  0.0, 0.0,
            1.0, 1.0,  1.0, 1.0,  0.0, 0.0,
            0.0, 0.0,  0.0, 0.0,  0.0, 0.0,
        ];
        let mut acc = MaskStatsAccumulator::new(3, 2);
        acc.add(&values, [2, 3, 3, 2]).unwrap();
        let stats = acc.finish();
        assert_eq!(stats.samples, 2);
        assert_eq!(stats.experts[0].kept, [2.0, 1.5, 0.0]);
        assert_eq!(stats.experts[2].kept, [0.0, 0.5, 0.0]);
        assert_eq!(stats.experts[2].empty, [1.0, 0.5, 1.0]);
        // Experts 1-2: sample 0 inter 2 / union 3, sample 1 inter 4 / union 4.
        let o12 = stats.overlaps[0];
        assert_eq!((o12.a, o12.b), (0, 1));
        assert!((o12.iou.unwrap() - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
        assert_eq!(o12.per_modality[2], None);
        // Experts 1-3: sample 0 inter 0 / union 4; sample 1 inter 0 / union 4.
        assert_eq!(stats.overlaps[1].iou, Some(0.0));
        let symptoms = stats.collapse_symptoms();
        assert!(symptoms.iter().any(|s| s.contains("TIR")), "{symptoms:?}");
        assert!(
            !symptoms.iter().any(|s| s.contains("same tokens")),
            "{symptoms:?}"
        );
        let text = stats.to_string();
        assert!(
            text.contains("IoU experts 1-2") && text.contains("collapse"),
            "{text}"
        );
    }

    #[test]
    fn identical_experts_are_reported_and_bad_shapes_rejected() {
        let mask = [1.0f32, 0.0, 1.0, 1.0, 0.0, 1.0];
        let values: Vec<f32> = mask.iter().chain(mask.iter()).copied().collect();
        let mut acc = MaskStatsAccumulator::new(2, 2);
        acc.add(&values, [1, 2, 3, 2]).unwrap();
        let stats = acc.finish();
        assert_eq!(stats.overlaps[0].iou, Some(1.0));
        assert!(stats.collapse_symptoms()[0].contains("experts 1 and 2"));
        assert!(acc.add(&values, [1, 3, 3, 2]).is_err());
        assert!(acc.add(&values[..5], [1, 2, 3, 2]).is_err());
    }
}
