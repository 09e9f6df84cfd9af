//! Random sentence sampling of captions during training (Eqs. 4-6): each sentence is kept
//! independently with probability p; if none is kept, one is kept at random.

use next_clip::split_sentences;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The captions of one sample: one optional caption per modality (RGB, NIR, TIR).
pub type SampleCaptions = [Option<String>; 3];

/// Seeded sentence sampler: the same seed gives the same sequence of sampled captions.
#[derive(Debug, Clone)]
pub struct SentenceSampler {
    rng: StdRng,
    keep_prob: f64,
}

impl SentenceSampler {
    /// A sampler keeping each sentence with probability `keep_prob` (clamped to [0, 1]).
    pub fn new(seed: u64, keep_prob: f64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            keep_prob: keep_prob.clamp(0.0, 1.0),
        }
    }

    /// The keep probability p.
    pub fn keep_prob(&self) -> f64 {
        self.keep_prob
    }

    /// Sample sentences of `caption` and join the kept ones (each ending in '.', separated by a
    /// space). Never empty for a caption with at least one sentence; an empty caption stays empty.
    pub fn sample(&mut self, caption: &str) -> String {
        let sentences = split_sentences(caption);
        if sentences.is_empty() {
            return String::new();
        }
        let mut kept: Vec<&str> = sentences
            .iter()
            .filter(|_| self.rng.random_bool(self.keep_prob))
            .map(String::as_str)
            .collect();
        if kept.is_empty() {
            kept.push(&sentences[self.rng.random_range(0..sentences.len())]);
        }
        join_sentences(&kept)
    }
}

/// Join sentences as `"s1. s2."`.
pub fn join_sentences(sentences: &[&str]) -> String {
    let mut out = String::new();
    for s in sentences {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(s);
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTION: &str =
        "A man in a red coat. He carries a black bag. Grey trousers. White shoes.";

    #[test]
    fn sampling_is_deterministic_for_a_seed_and_never_empty() {
        let mut a = SentenceSampler::new(42, 0.75);
        let mut b = SentenceSampler::new(42, 0.75);
        let run_a: Vec<String> = (0..50).map(|_| a.sample(CAPTION)).collect();
        let run_b: Vec<String> = (0..50).map(|_| b.sample(CAPTION)).collect();
        assert_eq!(run_a, run_b);
        let mut c = SentenceSampler::new(7, 0.75);
        let run_c: Vec<String> = (0..50).map(|_| c.sample(CAPTION)).collect();
        assert_ne!(run_a, run_c, "different seeds gave identical samples");
        // Low keep probability: still never empty, always a subset of the sentences.
        let mut sparse = SentenceSampler::new(1, 0.01);
        for _ in 0..100 {
            let s = sparse.sample(CAPTION);
            assert!(!s.is_empty());
            for part in split_sentences(&s) {
                assert!(CAPTION.contains(&part), "{part}");
            }
        }
        assert_eq!(SentenceSampler::new(0, 1.0).sample(CAPTION), CAPTION);
        assert_eq!(SentenceSampler::new(0, 0.5).sample("  "), "");
    }

    #[test]
    fn keep_rate_is_close_to_p() {
        let mut sampler = SentenceSampler::new(3, 0.6);
        let caption = (0..10)
            .map(|i| format!("sentence {i}."))
            .collect::<String>();
        let kept: usize = (0..400)
            .map(|_| split_sentences(&sampler.sample(&caption)).len())
            .sum();
        let rate = kept as f64 / 4000.0;
        assert!((rate - 0.6).abs() < 0.05, "keep rate {rate}");
    }
}
