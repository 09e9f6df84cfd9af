//! Which modalities of each sample the model may see, and which exist as reconstruction targets.

use crate::ModelError;
use burn::prelude::*;
use burn::tensor::TensorData;
use next_common::Modality;

/// Per sample, which of RGB, NIR, TIR are present (seen by the model) and which have a real
/// image in the batch (present ones, plus modalities dropped in training whose real image is kept
/// as the target of the reconstruction loss), and which present ones are shadow-dropped (hidden
/// from the token synthesiser only, see [`Presence::with_shadow`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    present: Vec<[bool; 3]>,
    real: Vec<[bool; 3]>,
    /// Per sample, the present modalities hidden from the token synthesiser.
    shadow: Vec<[bool; 3]>,
    /// Per sample, whether the RGB slot holds a sketch (see [`Presence::with_sketch`]).
    sketch: Vec<bool>,
}

impl Presence {
    /// Presence for inference: `present[b][m]` says whether modality m of sample b is there; the
    /// pixels of an absent one are never read. Every sample needs at least one modality.
    pub fn new(present: Vec<[bool; 3]>) -> Result<Self, ModelError> {
        let real = present.clone();
        Self::with_targets(present, real)
    }

    /// Presence for training: `real[b][m]` marks modalities whose image is in the batch; those
    /// real but not present are reconstruction targets. `present` must be a subset of `real`.
    pub fn with_targets(present: Vec<[bool; 3]>, real: Vec<[bool; 3]>) -> Result<Self, ModelError> {
        if present.len() != real.len() {
            return Err(ModelError::Input(format!(
                "presence: {} present rows but {} real rows",
                present.len(),
                real.len()
            )));
        }
        for (sample, (p, r)) in present.iter().zip(&real).enumerate() {
            if !p.iter().any(|&v| v) {
                return Err(ModelError::Input(format!(
                    "presence: sample {sample} has no modality present (RGB, NIR and TIR all \
                     absent); at least one is needed"
                )));
            }
            if let Some(m) = Modality::ALL
                .into_iter()
                .find(|m| p[m.index()] && !r[m.index()])
            {
                return Err(ModelError::Input(format!(
                    "presence: sample {sample} has {m} present but not marked real"
                )));
            }
        }
        let sketch = vec![false; present.len()];
        let shadow = vec![[false; 3]; present.len()];
        Ok(Self {
            present,
            real,
            shadow,
            sketch,
        })
    }

    /// Mark shadow drops (training): `shadow[b][m]` hides present modality m of sample b from the
    /// token synthesiser only. The synthesiser then makes its tokens from the sample's other
    /// present modalities and the reconstruction loss compares them with the real ones, while
    /// the cue learner, experts and losses still see the real tokens. A shadow modality must be
    /// present, and every sample keeps at least one present modality that is not a shadow.
    pub fn with_shadow(mut self, shadow: Vec<[bool; 3]>) -> Result<Self, ModelError> {
        if shadow.len() != self.present.len() {
            return Err(ModelError::Input(format!(
                "presence: {} shadow rows for {} samples",
                shadow.len(),
                self.present.len()
            )));
        }
        for (sample, (s, p)) in shadow.iter().zip(&self.present).enumerate() {
            if let Some(m) = Modality::ALL
                .into_iter()
                .find(|m| s[m.index()] && !p[m.index()])
            {
                return Err(ModelError::Input(format!(
                    "presence: sample {sample} has {m} shadow-dropped but not present"
                )));
            }
            if !(0..3).any(|m| p[m] && !s[m]) {
                return Err(ModelError::Input(format!(
                    "presence: sample {sample} has every present modality shadow-dropped; the \
                     token synthesiser needs at least one source"
                )));
            }
        }
        self.shadow = shadow;
        Ok(self)
    }

    /// Mark the samples whose RGB slot holds a sketch instead of an RGB image (a sketch is a
    /// visible-light line drawing: it takes the RGB place of the tri-modal pipeline and gets its
    /// own modality embedding in the UMM token mapper). A marked sample needs its RGB slot present.
    pub fn with_sketch(mut self, sketch: Vec<bool>) -> Result<Self, ModelError> {
        if sketch.len() != self.present.len() {
            return Err(ModelError::Input(format!(
                "presence: {} sketch flags for {} samples",
                sketch.len(),
                self.present.len()
            )));
        }
        if let Some(sample) = (0..sketch.len()).find(|&b| sketch[b] && !self.present[b][0]) {
            return Err(ModelError::Input(format!(
                "presence: sample {sample} is marked as a sketch but its RGB slot (where the \
                 sketch goes) is not present"
            )));
        }
        self.sketch = sketch;
        Ok(self)
    }

    /// Per sample, whether the RGB slot holds a sketch.
    pub fn sketch(&self) -> &[bool] {
        &self.sketch
    }

    /// Every modality present for `batch` samples.
    pub fn complete(batch: usize) -> Self {
        Self {
            present: vec![[true; 3]; batch],
            real: vec![[true; 3]; batch],
            shadow: vec![[false; 3]; batch],
            sketch: vec![false; batch],
        }
    }

    /// The same modality pattern for all `batch` samples (an evaluation setting).
    pub fn uniform(pattern: [bool; 3], batch: usize) -> Result<Self, ModelError> {
        Self::new(vec![pattern; batch])
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.present.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.present.is_empty()
    }

    /// Per sample, the present modalities.
    pub fn present(&self) -> &[[bool; 3]] {
        &self.present
    }

    /// Per sample, the modalities with a real image.
    pub fn real(&self) -> &[[bool; 3]] {
        &self.real
    }

    /// Whether every modality of every sample is present.
    pub fn is_complete(&self) -> bool {
        self.present.iter().all(|p| p.iter().all(|&v| v))
    }

    /// Per sample, the shadow-dropped modalities (present, hidden from the synthesiser only).
    pub fn shadow(&self) -> &[[bool; 3]] {
        &self.shadow
    }

    /// Whether some sample has a shadow-dropped modality.
    pub fn has_shadow(&self) -> bool {
        self.shadow.iter().any(|s| s.iter().any(|&v| v))
    }

    /// Per sample, the modalities the token synthesiser reads: present and not shadow-dropped.
    pub fn sources(&self) -> Vec<[bool; 3]> {
        self.present
            .iter()
            .zip(&self.shadow)
            .map(|(p, s)| std::array::from_fn(|m| p[m] && !s[m]))
            .collect()
    }

    /// Per sample, the reconstruction targets: modalities real but not present, and the
    /// shadow-dropped ones.
    pub fn targets(&self) -> Vec<[bool; 3]> {
        self.present
            .iter()
            .zip(&self.real)
            .zip(&self.shadow)
            .map(|((p, r), s)| std::array::from_fn(|m| (r[m] && !p[m]) || s[m]))
            .collect()
    }

    /// Whether some sample has a reconstruction target (see [`Presence::targets`]).
    pub fn has_targets(&self) -> bool {
        self.num_targets() > 0
    }

    /// Number of reconstruction targets (see [`Presence::targets`]) over the batch.
    pub fn num_targets(&self) -> usize {
        self.targets().iter().flatten().filter(|&&t| t).count()
    }

    /// `[B, 3]` float mask, 1 where present.
    pub fn present_mask<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        float_mask(&self.present, device)
    }

    /// `[B, 3]` float mask, 1 where the synthesiser reads the modality (see [`Presence::sources`]).
    pub fn source_mask<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        float_mask(&self.sources(), device)
    }

    /// `[B, 3]` float mask, 1 where the modality is a reconstruction target.
    pub fn target_mask<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        float_mask(&self.targets(), device)
    }

    /// Check the presence covers a batch of `batch` samples.
    pub(crate) fn check_batch(&self, batch: usize) -> Result<(), ModelError> {
        if self.len() != batch {
            return Err(ModelError::Input(format!(
                "presence has {} samples for a batch of {batch}",
                self.len()
            )));
        }
        Ok(())
    }
}

fn float_mask<B: Backend>(rows: &[[bool; 3]], device: &B::Device) -> Tensor<B, 2> {
    let values: Vec<f32> = rows
        .iter()
        .flat_map(|r| r.map(|v| if v { 1.0 } else { 0.0 }))
        .collect();
    Tensor::from_data(TensorData::new(values, [rows.len(), 3]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn a_sample_without_any_modality_is_a_clear_error() {
        let err = Presence::new(vec![[true, false, false], [false; 3]]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("sample 1") && text.contains("no modality"),
            "{text}"
        );
        let err = Presence::with_targets(vec![[true, true, false]], vec![[true, false, false]])
            .unwrap_err();
        assert!(err.to_string().contains("NIR"), "{err}");
        assert!(Presence::with_targets(vec![[true; 3]], vec![]).is_err());
    }

    #[test]
    fn masks_mark_present_and_target_modalities() {
        let p = Presence::with_targets(
            vec![[true, false, false], [true; 3]],
            vec![[true, true, false], [true; 3]],
        )
        .unwrap();
        assert!(p.has_targets() && !p.is_complete());
        let present: Vec<f32> = p
            .present_mask::<Flex>(&Default::default())
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(present, vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let target: Vec<f32> = p
            .target_mask::<Flex>(&Default::default())
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(target, vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(Presence::complete(2).is_complete());
    }

    #[test]
    fn shadow_drops_are_targets_but_not_sources() {
        let p = Presence::with_targets(
            vec![[true, false, true], [true; 3]],
            vec![[true, true, true], [true; 3]],
        )
        .unwrap();
        assert_eq!(p.num_targets(), 1);
        let p = p
            .with_shadow(vec![[false; 3], [false, true, false]])
            .unwrap();
        assert!(p.has_shadow());
        assert_eq!(p.present()[1], [true; 3]);
        assert_eq!(p.sources(), vec![[true, false, true], [true, false, true]]);
        assert_eq!(
            p.targets(),
            vec![[false, true, false], [false, true, false]]
        );
        assert_eq!(p.num_targets(), 2);
        let target: Vec<f32> = p
            .target_mask::<Flex>(&Default::default())
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(target, vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0]);
        let absent = Presence::new(vec![[true, false, true]])
            .unwrap()
            .with_shadow(vec![[false, true, false]])
            .unwrap_err();
        assert!(absent.to_string().contains("NIR"), "{absent}");
        let alone = Presence::new(vec![[true, false, false]])
            .unwrap()
            .with_shadow(vec![[true, false, false]])
            .unwrap_err();
        assert!(alone.to_string().contains("source"), "{alone}");
        assert!(Presence::complete(2).with_shadow(vec![]).is_err());
    }
}
