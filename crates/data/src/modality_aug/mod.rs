//! Synthetic modality augmentation (UMM training) and the fixed missing/uncertain settings of
//! evaluation, applied to a [`HostBatch`] before it becomes tensors.
//!
//! Training: [`augment_batch`] draws per sample, deterministically from `(seed, step, position,
//! record index)`, whether all modalities are kept (probability `p_full`, reached after a linear
//! ramp from 1 over `ramp_steps` optimiser steps) or one of the six
//! [`MISSING_SETTINGS`] (uniformly; never all three absent). A dropped modality's caption is
//! cleared, but its pixels stay in the batch: the model only uses them as the reconstruction
//! target (see [`BatchPresence::real`]). With `pixel_synth = "channel_aug"`, a dropped NIR or TIR
//! of a sample whose RGB is kept is replaced, with probability `pixel_synth_prob`, by an IR-like
//! image made from the RGB ([`channel_augment`]) and counts as present. Each present real
//! modality is degraded with probability `uncertain_prob` ([`Degradation::random_for`]).
//! With `shadow_prob > 0`, a sample that keeps all its (at least two) modalities gets, with that
//! probability, one of them (uniformly) marked as a **shadow drop** ([`BatchPresence::shadow`]):
//! hidden from the model's token synthesiser only, which must reconstruct it from the others,
//! while the rest of the model still sees it. The shadow draw has its own random stream, so the
//! other draws are the same whatever `shadow_prob` (and with 0 nothing is drawn).
//!
//! Evaluation: [`apply_missing_setting`] (captions of absent modalities cleared) and
//! [`apply_test_degradation`] (the three fixed [`TestDegradation`]s, seeded per record so a
//! sample is degraded the same whatever batch it is in).

mod degrade;

pub use degrade::{channel_augment, Degradation};

use crate::config::Normalization;
use crate::error::{DataError, Result};
use crate::loader::HostBatch;
use crate::transform::mix_seed;
use next_common::Modality;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One of the six missing-modality settings of the references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingSetting {
    /// Name as in the papers' tables (`-R` = RGB missing, `-RN` = RGB and NIR missing).
    pub name: &'static str,
    /// Which of RGB, NIR, TIR are present.
    pub present: [bool; 3],
}

/// The six missing-modality settings, in the order of the references' tables.
pub const MISSING_SETTINGS: [MissingSetting; 6] = [
    MissingSetting {
        name: "-R",
        present: [false, true, true],
    },
    MissingSetting {
        name: "-N",
        present: [true, false, true],
    },
    MissingSetting {
        name: "-T",
        present: [true, true, false],
    },
    MissingSetting {
        name: "-RN",
        present: [false, false, true],
    },
    MissingSetting {
        name: "-RT",
        present: [false, true, false],
    },
    MissingSetting {
        name: "-NT",
        present: [true, false, false],
    },
];

/// How a dropped infrared modality may be replaced by an image synthesised from RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PixelSynth {
    /// Never: a dropped modality stays absent.
    #[default]
    None,
    /// Channel augmentation of the RGB image (one random channel or the grey mix, to three).
    ChannelAug,
}

/// Settings of the synthetic modality augmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModalityAugConfig {
    /// Apply the augmentation at all (off: every modality present, nothing changed).
    pub enabled: bool,
    /// Probability of keeping every modality of a sample (after the ramp).
    pub p_full: f64,
    /// Optimiser steps over which the probability of keeping every modality falls linearly
    /// from 1 to `p_full` (0 = `p_full` from the first step): the model first learns from
    /// complete samples, as NEXT does, before it learns to do without modalities.
    pub ramp_steps: u64,
    /// Pixel-level synthesis of a dropped NIR/TIR from RGB.
    pub pixel_synth: PixelSynth,
    /// Probability of pixel synthesis for each eligible dropped modality.
    pub pixel_synth_prob: f64,
    /// Probability of degrading each present real modality ("uncertain" inputs).
    pub uncertain_prob: f64,
    /// Probability that a sample keeping all its (at least two) modalities has one of them,
    /// uniformly, shadow-dropped: hidden from the token synthesiser only, as its reconstruction
    /// target (0 = never, today's behaviour).
    pub shadow_prob: f64,
}

impl Default for ModalityAugConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            p_full: 0.5,
            ramp_steps: 0,
            pixel_synth: PixelSynth::None,
            pixel_synth_prob: 0.5,
            uncertain_prob: 0.1,
            shadow_prob: 0.0,
        }
    }
}

impl ModalityAugConfig {
    /// Check every probability is in [0, 1].
    pub fn validate(&self) -> Result<()> {
        for (key, value) in [
            ("p_full", self.p_full),
            ("pixel_synth_prob", self.pixel_synth_prob),
            ("uncertain_prob", self.uncertain_prob),
            ("shadow_prob", self.shadow_prob),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(DataError::Setting(format!(
                    "modality augmentation {key} must be in [0, 1], got {value}"
                )));
            }
        }
        Ok(())
    }

    /// The probability of keeping every modality at optimiser step `step` (0-based).
    pub fn p_full_at(&self, step: u64) -> f64 {
        if step >= self.ramp_steps {
            return self.p_full;
        }
        1.0 - (1.0 - self.p_full) * step as f64 / self.ramp_steps as f64
    }
}

/// What [`augment_batch`] did to each sample of a batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchPresence {
    /// Per sample, the modalities the model may see (never all false for a sample whose record
    /// has a spectrum; a sketch or text query has none).
    pub present: Vec<[bool; 3]>,
    /// Per sample, the modalities whose pixels are in the batch: all its record has, since a dropped
    /// modality keeps its real image as the reconstruction target (`real` but not `present`)
    /// and a pixel-synthesised one is present.
    pub real: Vec<[bool; 3]>,
    /// Per sample, the modalities replaced by a pixel-synthesised image.
    pub pixel_synth: Vec<[bool; 3]>,
    /// Per sample and modality, the degradation applied, if any.
    pub degraded: Vec<[Option<Degradation>; 3]>,
    /// Per sample, the shadow-dropped modality, if any (see [`ModalityAugConfig::shadow_prob`]):
    /// present (the model sees it) but hidden from the token synthesiser, which reconstructs it.
    pub shadow: Vec<[bool; 3]>,
}

/// Tag mixed into the seed of the shadow draw, so that it is a stream of its own.
const SHADOW_STREAM: u64 = 0x5AD0_D809;

/// Draw the shadow drop of a sample whose modalities `present` are all kept: with probability
/// `shadow_prob` one present modality, uniformly, when at least two are present.
pub fn draw_shadow(rng: &mut SmallRng, present: [bool; 3], shadow_prob: f64) -> [bool; 3] {
    let mut shadow = [false; 3];
    let candidates: Vec<usize> = (0..3).filter(|&m| present[m]).collect();
    if candidates.len() >= 2 && rng.random::<f64>() < shadow_prob {
        shadow[candidates[rng.random_range(0..candidates.len())]] = true;
    }
    shadow
}

/// Draw which modalities to keep: all with probability `p_full`, otherwise one of the six
/// [`MISSING_SETTINGS`] uniformly.
pub fn draw_presence(rng: &mut SmallRng, p_full: f64) -> [bool; 3] {
    if rng.random::<f64>() < p_full {
        [true; 3]
    } else {
        MISSING_SETTINGS[rng.random_range(0..MISSING_SETTINGS.len())].present
    }
}

/// Apply the training augmentation to `batch` (pixels normalised with `normalization`) for
/// optimiser step `step`; the same `(seed, step)` and batch give the same result.
pub fn augment_batch(
    batch: &mut HostBatch,
    cfg: &ModalityAugConfig,
    normalization: Normalization,
    seed: u64,
    step: u64,
) -> Result<BatchPresence> {
    cfg.validate()?;
    let n = batch.len();
    let recorded = if batch.present.len() == n {
        batch.present.clone()
    } else {
        vec![[true; 3]; n]
    };
    let mut out = BatchPresence {
        present: recorded.clone(),
        real: recorded.clone(),
        pixel_synth: vec![[false; 3]; n],
        degraded: vec![[None; 3]; n],
        shadow: vec![[false; 3]; n],
    };
    if !cfg.enabled {
        return Ok(out);
    }
    let [h, w] = batch.size.map(|v| v as usize);
    let len = image_len(batch)?;
    for i in 0..n {
        let mut rng = SmallRng::seed_from_u64(mix_seed(&[
            seed,
            step,
            (batch.first_position + i) as u64,
            batch.indices[i] as u64,
        ]));
        // Only what the record has can be kept; a draw that keeps nothing of it keeps it all.
        let drawn = draw_presence(&mut rng, cfg.p_full_at(step));
        let has = recorded[i];
        if has == [false; 3] {
            // A sketch or text sample: no spectrum to drop, synthesise or degrade.
            continue;
        }
        let kept: [bool; 3] = std::array::from_fn(|m| drawn[m] && has[m]);
        let keep = if kept.iter().any(|&k| k) { kept } else { has };
        let mut present = keep;
        for m in 0..3 {
            if keep[m] {
                continue;
            }
            batch.captions[m][i].clear();
            let infrared = Modality::ALL[m] != Modality::Rgb;
            let eligible = infrared
                && keep[Modality::Rgb.index()]
                && cfg.pixel_synth == PixelSynth::ChannelAug;
            if eligible && rng.random::<f64>() < cfg.pixel_synth_prob {
                let (rgb, ir) = split_two(&mut batch.pixels, m);
                channel_augment(
                    &rgb[i * len..(i + 1) * len],
                    &mut ir[i * len..(i + 1) * len],
                    h * w,
                    normalization,
                    &mut rng,
                );
                present[m] = true;
                out.pixel_synth[i][m] = true;
            }
        }
        for (m, &kept) in keep.iter().enumerate() {
            if kept && rng.random::<f64>() < cfg.uncertain_prob {
                let d = Degradation::random_for(Modality::ALL[m], &mut rng);
                d.apply(
                    &mut batch.pixels[m][i * len..(i + 1) * len],
                    h,
                    w,
                    normalization,
                    &mut rng,
                );
                out.degraded[i][m] = Some(d);
            }
        }
        out.present[i] = present;
        if cfg.shadow_prob > 0.0 && keep == has {
            let mut shadow_rng = SmallRng::seed_from_u64(mix_seed(&[
                seed,
                step,
                (batch.first_position + i) as u64,
                batch.indices[i] as u64,
                SHADOW_STREAM,
            ]));
            out.shadow[i] = draw_shadow(&mut shadow_rng, present, cfg.shadow_prob);
        }
    }
    Ok(out)
}

/// One fixed test-time degradation of a single modality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestDegradation {
    /// RGB at night: brightness 0.3 (after gamma 1.5) plus noise of std 0.03.
    NightRgb,
    /// NIR with Gaussian noise of std 0.1.
    NoisyNir,
    /// TIR blurred with a Gaussian of std 2 pixels.
    BlurredTir,
}

impl TestDegradation {
    /// The three settings, in report order.
    pub const ALL: [TestDegradation; 3] = [
        TestDegradation::NightRgb,
        TestDegradation::NoisyNir,
        TestDegradation::BlurredTir,
    ];

    /// Report name.
    pub fn name(self) -> &'static str {
        match self {
            TestDegradation::NightRgb => "night_rgb",
            TestDegradation::NoisyNir => "noisy_nir",
            TestDegradation::BlurredTir => "blurred_tir",
        }
    }

    /// The degraded modality.
    pub fn modality(self) -> Modality {
        match self {
            TestDegradation::NightRgb => Modality::Rgb,
            TestDegradation::NoisyNir => Modality::Nir,
            TestDegradation::BlurredTir => Modality::Tir,
        }
    }

    /// The degradation with its fixed strength.
    pub fn degradation(self) -> Degradation {
        match self {
            TestDegradation::NightRgb => Degradation::NightDark {
                brightness: 0.3,
                noise: 0.03,
            },
            TestDegradation::NoisyNir => Degradation::Noise { sigma: 0.1 },
            TestDegradation::BlurredTir => Degradation::Blur { sigma: 2.0 },
        }
    }
}

/// Degrade one modality of every sample of an evaluation batch; the noise of a sample depends
/// only on `seed` and its record index, not on the batch it is in.
pub fn apply_test_degradation(
    batch: &mut HostBatch,
    setting: TestDegradation,
    normalization: Normalization,
    seed: u64,
) -> Result<()> {
    let [h, w] = batch.size.map(|v| v as usize);
    let len = image_len(batch)?;
    let m = setting.modality().index();
    let degradation = setting.degradation();
    for (i, &record) in batch.indices.iter().enumerate() {
        let mut rng = SmallRng::seed_from_u64(mix_seed(&[seed, record as u64, m as u64]));
        let image = &mut batch.pixels[m][i * len..(i + 1) * len];
        degradation.apply(image, h, w, normalization, &mut rng);
    }
    Ok(())
}

/// Make every sample of `batch` miss the modalities absent from `present` (their captions are
/// cleared; their pixels are left, the model does not read them). Returns the per-sample
/// presence rows for the model.
pub fn apply_missing_setting(batch: &mut HostBatch, present: [bool; 3]) -> Vec<[bool; 3]> {
    for (captions, &kept) in batch.captions.iter_mut().zip(&present) {
        if !kept {
            captions.iter_mut().for_each(String::clear);
        }
    }
    vec![present; batch.len()]
}

/// Values of one modality image, checked against the pixel buffers.
fn image_len(batch: &HostBatch) -> Result<usize> {
    let [h, w] = batch.size.map(|v| v as usize);
    let len = 3 * h * w;
    let n = batch.len();
    if batch.pixels.iter().any(|p| p.len() != n * len)
        || batch.captions.iter().any(|c| c.len() != n)
    {
        return Err(DataError::Setting(format!(
            "batch of {n} samples of {h}x{w}: expected {} pixel values and {n} captions per modality",
            n * len
        )));
    }
    Ok(len)
}

/// The RGB buffer and a mutable other modality `m` (1 or 2).
fn split_two(pixels: &mut [Vec<f32>; 3], m: usize) -> (&[f32], &mut [f32]) {
    let (first, rest) = pixels.split_at_mut(1);
    (&first[0], &mut rest[m - 1])
}

#[cfg(test)]
mod tests;
