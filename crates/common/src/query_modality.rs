//! The modalities a query or a gallery can be made of: the three aligned spectra of
//! [`Modality::ALL`] plus a sketch and a text description, and sets of them as the command line
//! writes them (`RNT`, `N`, `S+text`).
//!
//! The tri-modal pipeline (TMSE, CSSE, MGFA) keeps its three spectra: a sketch takes the RGB slot
//! of a sample that has no RGB image (it is a visible-light line drawing), and text is a query of
//! its own mapped into the identity space. [`Modality`] stays the three spectra.

use crate::Modality;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One query modality: a spectrum, a sketch or a text description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryModality {
    /// Visible-light colour image.
    Rgb,
    /// Near-infrared image.
    Nir,
    /// Thermal-infrared image.
    Tir,
    /// A line drawing of the person (one channel, replicated to three).
    Sketch,
    /// A free-text description (a witness statement or a caption).
    Text,
}

impl QueryModality {
    /// Every query modality in canonical order: RGB, NIR, TIR, sketch, text.
    pub const ALL: [QueryModality; 5] = [
        QueryModality::Rgb,
        QueryModality::Nir,
        QueryModality::Tir,
        QueryModality::Sketch,
        QueryModality::Text,
    ];

    /// Bit of this modality in a [`ModalitySet`].
    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The spectrum this modality is, if it is one of [`Modality::ALL`].
    pub fn spectrum(self) -> Option<Modality> {
        match self {
            QueryModality::Rgb => Some(Modality::Rgb),
            QueryModality::Nir => Some(Modality::Nir),
            QueryModality::Tir => Some(Modality::Tir),
            QueryModality::Sketch | QueryModality::Text => None,
        }
    }

    /// One-letter tag in a compact set (`R`, `N`, `T`, `S`); text has none (it is `text`).
    pub fn letter(self) -> Option<char> {
        match self {
            QueryModality::Rgb => Some('R'),
            QueryModality::Nir => Some('N'),
            QueryModality::Tir => Some('T'),
            QueryModality::Sketch => Some('S'),
            QueryModality::Text => None,
        }
    }

    /// Human name (`RGB`, `NIR`, `TIR`, `sketch`, `text`).
    pub fn name(self) -> &'static str {
        match self {
            QueryModality::Rgb => "RGB",
            QueryModality::Nir => "NIR",
            QueryModality::Tir => "TIR",
            QueryModality::Sketch => "sketch",
            QueryModality::Text => "text",
        }
    }

    /// Parse a whole name (`rgb`, `nir`, `tir`, their tags, `sketch`, `text`; any case).
    pub fn parse_name(text: &str) -> Option<QueryModality> {
        if let Some(m) = Modality::parse(text).filter(|_| text.len() > 1) {
            return Some(QueryModality::from(m));
        }
        match text.to_ascii_lowercase().as_str() {
            "sketch" | "sk" => Some(QueryModality::Sketch),
            "text" | "caption" | "description" => Some(QueryModality::Text),
            _ => None,
        }
    }

    /// Parse a one-letter tag (`R`, `N`, `T`, `S`; any case).
    pub fn parse_letter(letter: char) -> Option<QueryModality> {
        match letter.to_ascii_uppercase() {
            'R' => Some(QueryModality::Rgb),
            'N' => Some(QueryModality::Nir),
            'T' => Some(QueryModality::Tir),
            'S' => Some(QueryModality::Sketch),
            _ => None,
        }
    }
}

impl From<Modality> for QueryModality {
    fn from(m: Modality) -> Self {
        match m {
            Modality::Rgb => QueryModality::Rgb,
            Modality::Nir => QueryModality::Nir,
            Modality::Tir => QueryModality::Tir,
        }
    }
}

impl fmt::Display for QueryModality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A non-empty set of query modalities (e.g. the query side or the gallery side of a protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModalitySet(u8);

/// Why a modality set could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModalitySetError {
    /// Nothing was given.
    #[error("empty modality set: expected one or more of R, N, T, S and text (e.g. `RNT`, `N`, `S+text`)")]
    Empty,
    /// A part that is neither a modality name nor a string of modality letters.
    #[error("unknown modality `{0}` in a modality set: expected R (RGB), N (NIR), T (TIR), S (sketch) or `text`, joined like `RNT`, `N` or `S+text`")]
    Unknown(String),
}

impl ModalitySet {
    /// The three spectra `RNT` (the tri-modal gallery).
    pub const SPECTRA: ModalitySet = ModalitySet(0b00111);

    /// The set of exactly the given modalities (`None` when empty).
    pub fn of(modalities: &[QueryModality]) -> Option<ModalitySet> {
        let bits = modalities.iter().fold(0u8, |acc, m| acc | m.bit());
        (bits != 0).then_some(ModalitySet(bits))
    }

    /// Parse `RNT`, `N`, `S+text`, `sketch,text`, `nir + text` (parts split on `+`, `,` or
    /// spaces; a part is a name or a string of the letters R, N, T, S; any case).
    pub fn parse(text: &str) -> Result<ModalitySet, ModalitySetError> {
        let mut bits = 0u8;
        for part in text
            .split(['+', ',', ' '])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if let Some(m) = QueryModality::parse_name(part) {
                bits |= m.bit();
                continue;
            }
            for letter in part.chars() {
                let m = QueryModality::parse_letter(letter)
                    .ok_or_else(|| ModalitySetError::Unknown(part.to_string()))?;
                bits |= m.bit();
            }
        }
        if bits == 0 {
            return Err(ModalitySetError::Empty);
        }
        Ok(ModalitySet(bits))
    }

    /// Whether `m` is in the set.
    pub fn contains(self, m: QueryModality) -> bool {
        self.0 & m.bit() != 0
    }

    /// The members in canonical order.
    pub fn members(self) -> Vec<QueryModality> {
        QueryModality::ALL
            .into_iter()
            .filter(|&m| self.contains(m))
            .collect()
    }

    /// Which of RGB, NIR, TIR are in the set (in [`Modality::ALL`] order).
    pub fn spectra(self) -> [bool; 3] {
        Modality::ALL.map(|m| self.contains(m.into()))
    }

    /// Whether the set has any of RGB, NIR, TIR or a sketch (an image of some kind).
    pub fn has_image(self) -> bool {
        self.spectra().iter().any(|&v| v) || self.contains(QueryModality::Sketch)
    }

    /// Compact name: letters in canonical order, `+text` when text is in it (`RNT`, `S+text`,
    /// `text`). [`ModalitySet::parse`] reads it back.
    pub fn label(self) -> String {
        let letters: String = self.members().iter().filter_map(|m| m.letter()).collect();
        match (letters.is_empty(), self.contains(QueryModality::Text)) {
            (true, _) => "text".into(),
            (false, true) => format!("{letters}+text"),
            (false, false) => letters,
        }
    }
}

impl fmt::Display for ModalitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

impl std::str::FromStr for ModalitySet {
    type Err = ModalitySetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModalitySet::parse(s)
    }
}

impl TryFrom<String> for ModalitySet {
    type Error = ModalitySetError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        ModalitySet::parse(&s)
    }
}

impl From<ModalitySet> for String {
    fn from(set: ModalitySet) -> String {
        set.label()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_parse_letters_names_and_combinations() {
        let p = |s: &str| ModalitySet::parse(s).unwrap();
        assert_eq!(p("RNT"), ModalitySet::SPECTRA);
        assert_eq!(p("rgb, nir ,tir"), ModalitySet::SPECTRA);
        assert_eq!(p("T").members(), vec![QueryModality::Tir]);
        assert_eq!(p("tir").members(), vec![QueryModality::Tir]);
        assert_eq!(p("text").members(), vec![QueryModality::Text]);
        assert_eq!(
            p("S+text").members(),
            vec![QueryModality::Sketch, QueryModality::Text]
        );
        assert_eq!(p("sketch").spectra(), [false; 3]);
        assert!(p("sketch").has_image() && !p("text").has_image());
        assert_eq!(p("N + text").spectra(), [false, true, false]);
        for label in ["RNT", "N", "S+text", "text", "RS", "NT+text"] {
            assert_eq!(p(label).label(), label);
            assert_eq!(p(&p(label).label()), p(label));
        }
    }

    #[test]
    fn empty_and_unknown_sets_are_clear_errors() {
        for empty in ["", "  ", "+", ", +"] {
            let e = ModalitySet::parse(empty).unwrap_err();
            assert_eq!(e, ModalitySetError::Empty);
            assert!(e.to_string().contains("empty modality set"), "{e}");
        }
        let e = ModalitySet::parse("RNX").unwrap_err();
        assert_eq!(e, ModalitySetError::Unknown("RNX".into()));
        assert!(e.to_string().contains("`RNX`") && e.to_string().contains("S (sketch)"));
        assert!(ModalitySet::parse("S+txt").is_err());
        let json: Result<ModalitySet, _> = serde_json::from_str("\"depth\"");
        assert!(json.is_err());
        let back: ModalitySet = serde_json::from_str("\"N+text\"").unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), "\"N+text\"");
    }
}
