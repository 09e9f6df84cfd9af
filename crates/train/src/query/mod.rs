//! Any-modality queries in training, evaluation and search: a query (or gallery) modality set
//! ([`ModalitySet`]: any of R, N, T, S and text) becomes [`QueryParts`] — at most two visual
//! parts through the (UMM) model and the text part through the text head — whose L2-normalised
//! embeddings are summed and normalised again into the set's embedding.
//!
//! A sketch takes the RGB slot of the tri-modal pipeline; with both RGB and a sketch in a set,
//! the sketch is a visual part of its own. Visual parts use the captions of their spectra as the
//! model's image feature does everywhere else (the machine captions of NEXT); a sketch has none.
//! Text in a set is the sample's description (its RGB caption, else its first) through the text
//! head.

mod align;
mod protocol;
mod search;
mod text_inputs;

pub use align::{
    alignment_step, candidate_parts, draw_visual_parts, scalar, text_pattern_loss,
    visual_pattern_loss, AlignBatch, AlignCaches, AlignScope,
};
pub use protocol::{
    default_protocols, evaluate_protocols, extract_modality_set, format_protocol_table,
    fuse_by_identity, Protocol, ProtocolReport, ProtocolRow,
};
pub use search::{embed_query, QuerySpec};
pub use text_inputs::TextInputCache;

use crate::TrainError;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use next_common::{ModalitySet, QueryModality};
use next_model::{l2_normalize, Presence};

/// One forward of the visual model: which slots are present, and whether the RGB slot holds a
/// sketch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VisualPart {
    /// Present slots (RGB, NIR, TIR).
    pub present: [bool; 3],
    /// The RGB slot holds the sketch.
    pub sketch_slot: bool,
}

impl VisualPart {
    /// The spectra of `present`.
    pub fn spectra(present: [bool; 3]) -> Self {
        Self {
            present,
            sketch_slot: false,
        }
    }

    /// A sketch in the RGB slot, with NIR / TIR per `others`.
    pub fn sketch(others: [bool; 2]) -> Self {
        Self {
            present: [true, others[0], others[1]],
            sketch_slot: true,
        }
    }

    /// The modalities whose captions go with this part (never the sketch's slot).
    pub fn captioned(self) -> [bool; 3] {
        let mut c = self.present;
        if self.sketch_slot {
            c[0] = false;
        }
        c
    }
}

/// How a modality set is embedded: its visual forwards and whether the text head joins in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParts {
    /// Visual forwards (none for a text-only set).
    pub visual: Vec<VisualPart>,
    /// The text query head takes part.
    pub text: bool,
}

impl QueryParts {
    /// The parts of `set`.
    pub fn of(set: ModalitySet) -> Self {
        let s = set.spectra();
        let sketch = set.contains(QueryModality::Sketch);
        let mut visual = Vec::new();
        if sketch && !s[0] {
            visual.push(VisualPart::sketch([s[1], s[2]]));
        } else {
            if s.iter().any(|&v| v) {
                visual.push(VisualPart::spectra(s));
            }
            if sketch {
                visual.push(VisualPart::sketch([false, false]));
            }
        }
        Self {
            visual,
            text: set.contains(QueryModality::Text),
        }
    }
}

/// The images and presence of a visual part for a batch of `n`: the sketch (1 channel
/// replicated to 3) in the RGB slot when the part asks for it.
pub fn visual_inputs<B: Backend>(
    mut images: [Tensor<B, 4>; 3],
    sketch: Option<Tensor<B, 4>>,
    part: VisualPart,
    n: usize,
) -> Result<([Tensor<B, 4>; 3], Presence), TrainError> {
    if part.sketch_slot {
        let sketch = sketch.ok_or_else(|| {
            TrainError::Input(
                "a sketch query needs sketches, and these samples have none (a dataset with a \
                 SK/ folder, or the sketch-from-photo operator)"
                    .into(),
            )
        })?;
        images[0] = if sketch.dims()[1] == 1 {
            sketch.repeat_dim(1, 3)
        } else {
            sketch
        };
    }
    let presence = Presence::new(vec![part.present; n])?.with_sketch(vec![part.sketch_slot; n])?;
    Ok((images, presence))
}

/// The sketches of a training batch for the alignment loss, when it has them.
pub fn training_sketch<B: Backend>(batch: &next_data::TripletBatch<B>) -> Option<Tensor<B, 4>> {
    search::batch_sketch(batch)
}

/// The embedding of a set from its parts' L2-normalised embeddings (each `[n, F]`): their sum,
/// L2-normalised.
pub fn combine_parts<B: Backend>(parts: Vec<Tensor<B, 2>>) -> Result<Tensor<B, 2>, TrainError> {
    let sum = parts
        .into_iter()
        .reduce(|a, b| a + b)
        .ok_or_else(|| TrainError::Input("a query needs at least one modality".into()))?;
    Ok(l2_normalize(sum))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> QueryParts {
        QueryParts::of(ModalitySet::parse(s).unwrap())
    }

    #[test]
    fn sets_become_visual_parts_and_text() {
        assert_eq!(parts("RNT").visual, vec![VisualPart::spectra([true; 3])]);
        assert!(!parts("RNT").text);
        let sketch = parts("S+text");
        assert_eq!(sketch.visual, vec![VisualPart::sketch([false, false])]);
        assert!(sketch.text);
        assert_eq!(parts("SN").visual, vec![VisualPart::sketch([true, false])]);
        assert_eq!(
            parts("RS").visual,
            vec![
                VisualPart::spectra([true, false, false]),
                VisualPart::sketch([false, false])
            ]
        );
        let text = parts("text");
        assert!(text.visual.is_empty() && text.text);
        assert_eq!(
            VisualPart::sketch([true, false]).captioned(),
            [false, true, false]
        );
    }
}
