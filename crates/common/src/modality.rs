//! The three aligned image modalities of multi-modal ReID.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One image modality: visible RGB, near-infrared or thermal-infrared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    /// Visible-light colour image.
    Rgb,
    /// Near-infrared image (grey, replicated to three channels).
    Nir,
    /// Thermal-infrared image (grey, replicated to three channels).
    Tir,
}

impl Modality {
    /// All modalities in the canonical order used for tensors and features: RGB, NIR, TIR.
    pub const ALL: [Modality; 3] = [Modality::Rgb, Modality::Nir, Modality::Tir];

    /// Position of this modality in [`Modality::ALL`].
    pub fn index(self) -> usize {
        match self {
            Modality::Rgb => 0,
            Modality::Nir => 1,
            Modality::Tir => 2,
        }
    }

    /// Short upper-case tag as used in the caption files (`RGB`, `NI`, `TI`).
    pub fn caption_tag(self) -> &'static str {
        match self {
            Modality::Rgb => "RGB",
            Modality::Nir => "NI",
            Modality::Tir => "TI",
        }
    }

    /// Human name (`RGB`, `NIR`, `TIR`).
    pub fn name(self) -> &'static str {
        match self {
            Modality::Rgb => "RGB",
            Modality::Nir => "NIR",
            Modality::Tir => "TIR",
        }
    }

    /// Parse a modality from a name or tag (`rgb`, `nir`, `ni`, `tir`, `ti`, `vis`, `th`; any case).
    pub fn parse(text: &str) -> Option<Modality> {
        match text.to_ascii_lowercase().as_str() {
            "rgb" | "r" | "vis" => Some(Modality::Rgb),
            "nir" | "ni" | "n" => Some(Modality::Nir),
            "tir" | "ti" | "t" | "th" => Some(Modality::Tir),
            _ => None,
        }
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_tags_and_names() {
        for m in Modality::ALL {
            assert_eq!(Modality::parse(m.caption_tag()), Some(m));
            assert_eq!(Modality::parse(m.name()), Some(m));
            assert_eq!(Modality::ALL[m.index()], m);
        }
        assert_eq!(Modality::parse("sketch"), None);
    }
}
