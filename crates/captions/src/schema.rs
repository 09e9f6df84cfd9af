//! Attribute schemas for persons and vehicles, confidence-scored values and the normalisation of
//! "unknown"-like answers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The canonical spelling of an unknown value.
pub const UNKNOWN: &str = "unknown";

/// What kind of object a dataset shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// Pedestrians (RGBNT201, Market-MM).
    Person,
    /// Vehicles (MSVR310, RGBNT100, WMVEID863).
    Vehicle,
}

/// The family an attribute belongs to; complement rules are stated per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeClass {
    /// Colours: only visible light shows them.
    Colour,
    /// Shape, garment and part types, silhouette cues.
    Silhouette,
    /// Carried or held items (bags, phones, umbrellas).
    Carried,
    /// Scene context: view, illumination, capture time, clarity.
    Environment,
}

/// One attribute of a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeSpec {
    /// JSON key, snake_case.
    pub key: &'static str,
    /// Family, used by complement rules.
    pub class: AttributeClass,
    /// Short description used in prompts.
    pub hint: &'static str,
}

const fn spec(key: &'static str, class: AttributeClass, hint: &'static str) -> AttributeSpec {
    AttributeSpec { key, class, hint }
}

use AttributeClass::{Carried, Colour, Environment, Silhouette};

/// Person attributes, in caption order.
pub const PERSON_ATTRIBUTES: &[AttributeSpec] = &[
    spec("age", Silhouette, "child, teenager, adult or senior"),
    spec("gender", Silhouette, "male or female"),
    spec("view", Environment, "front, back or side"),
    spec("capture_time", Environment, "daytime or nighttime"),
    spec("illumination", Environment, "bright, normal or dim"),
    spec("upper_color", Colour, "colour of the upper-body garment"),
    spec(
        "upper_type",
        Silhouette,
        "upper garment: t-shirt, jacket, sweater, coat, dress, ...",
    ),
    spec("lower_color", Colour, "colour of the lower-body garment"),
    spec(
        "lower_type",
        Silhouette,
        "lower garment: trousers, jeans, shorts, skirt, ...",
    ),
    spec("footwear_style", Silhouette, "casual, athletic or formal"),
    spec(
        "footwear_type",
        Silhouette,
        "sneakers, boots, sandals, shoes, heels, ...",
    ),
    spec("hair_length", Silhouette, "short, medium or long"),
    spec("hair_style", Silhouette, "straight, curly, wavy, bun, ..."),
    spec("glasses", Silhouette, "yes or no"),
    spec(
        "carried_items",
        Carried,
        "action and item, e.g. carrying a backpack, holding a phone",
    ),
    spec("target_clarity", Environment, "clear or blurry"),
];

/// Vehicle attributes, in caption order.
pub const VEHICLE_ATTRIBUTES: &[AttributeSpec] = &[
    spec("color", Colour, "body colour"),
    spec("brand", Silhouette, "manufacturer, e.g. Volkswagen"),
    spec(
        "type",
        Silhouette,
        "sedan, SUV, hatchback, van, bus, truck, ...",
    ),
    spec("view", Environment, "front, back, side or diagonal"),
    spec("illumination", Environment, "bright, normal or dim"),
    spec("capture_time", Environment, "daytime or nighttime"),
    spec("target_clarity", Environment, "clear or blurry"),
    spec("wear", Silhouette, "new, used or worn"),
    spec("window_tint", Silhouette, "tinted or clear"),
    spec("window_shape", Silhouette, "curved or flat"),
    spec("headlight_state", Silhouette, "on or off"),
    spec(
        "headlight_shape",
        Silhouette,
        "angular, oval, rectangular, ...",
    ),
    spec(
        "taillight_shape",
        Silhouette,
        "angular, oval, rectangular, ...",
    ),
    spec(
        "grille_shape",
        Silhouette,
        "horizontal, hexagonal, mesh, ...",
    ),
    spec("grille_edges", Silhouette, "rounded, sharp or straight"),
    spec("roof_condition", Silhouette, "clean or dirty"),
    spec("roof_shape", Silhouette, "sloped or flat"),
    spec("tire_condition", Silhouette, "new, used or worn"),
    spec("tire_size", Silhouette, "small, medium or large"),
    spec("tire_type", Silhouette, "regular, street, off-road, ..."),
    spec("bumpers", Silhouette, "intact or damaged"),
    spec("mirrors", Silhouette, "intact or damaged"),
    spec("plate", Silhouette, "visible or not visible"),
    spec("spoiler", Silhouette, "present or not present"),
    spec("roof_rack", Carried, "present or not present"),
    spec("exhaust", Silhouette, "hidden, single or dual pipes"),
];

impl ObjectKind {
    /// The attribute schema of this kind of object.
    pub fn attributes(self) -> &'static [AttributeSpec] {
        match self {
            ObjectKind::Person => PERSON_ATTRIBUTES,
            ObjectKind::Vehicle => VEHICLE_ATTRIBUTES,
        }
    }

    /// The specification of one attribute key, if the schema has it.
    pub fn spec(self, key: &str) -> Option<&'static AttributeSpec> {
        self.attributes().iter().find(|s| s.key == key)
    }

    /// Lower-case name (`person`, `vehicle`).
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Person => "person",
            ObjectKind::Vehicle => "vehicle",
        }
    }
}

/// Whether a free-text answer means "I cannot tell" (unknown, unclear, none, n/a, not visible, ...).
pub fn is_unknown_text(text: &str) -> bool {
    let t = text.trim().to_ascii_lowercase();
    let t = t.trim_matches(|c: char| c == '.' || c == '"' || c == '\'' || c.is_whitespace());
    if t.is_empty() {
        return true;
    }
    const EXACT: &[&str] = &[
        "unknown",
        "unclear",
        "none",
        "n/a",
        "na",
        "null",
        "nil",
        "not visible",
        "none visible",
        "not applicable",
        "unsure",
        "uncertain",
        "undetermined",
        "indeterminate",
        "unspecified",
        "undefined",
        "unidentifiable",
        "unidentified",
        "unknowable",
        "nothing",
        "not sure",
        "cannot tell",
        "can't tell",
        "cannot determine",
        "not determinable",
        "-",
        "?",
    ];
    if EXACT.contains(&t) {
        return true;
    }
    const PREFIXES: &[&str] = &[
        "unknown ",
        "unclear ",
        "unknowable",
        "unidentifiable",
        "indeterminate",
        "undetermined",
        "cannot be determined",
        "not visible",
        "not discernible",
        "undiscernible",
    ];
    PREFIXES.iter().any(|p| t.starts_with(p))
}

/// Attributes whose values keep their capitalisation (proper names).
const CASE_KEPT: &[&str] = &["brand"];

/// Normalise a free-text answer for attribute `key`: trimmed, [`UNKNOWN`] for every unknown form,
/// lower-case except for proper names (`brand`).
pub fn normalise_value(key: &str, text: &str) -> String {
    if is_unknown_text(text) {
        UNKNOWN.to_string()
    } else if CASE_KEPT.contains(&key) {
        text.trim().to_string()
    } else {
        text.trim().to_lowercase()
    }
}

/// One attribute value with the confidence the model gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeValue {
    /// The value text ([`UNKNOWN`] when the model could not tell).
    pub value: String,
    /// Confidence in `[0, 1]`.
    pub confidence: f32,
    /// Where the value came from after aggregation (`model`, or `model@TIR` when complemented).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl AttributeValue {
    /// A value with a confidence (clamped to `[0, 1]`; NaN becomes 0).
    pub fn new(value: impl Into<String>, confidence: f32) -> Self {
        let confidence = if confidence.is_nan() {
            0.0
        } else {
            confidence.clamp(0.0, 1.0)
        };
        Self {
            value: value.into(),
            confidence,
            source: None,
        }
    }

    /// An unknown value with confidence 0.
    pub fn unknown() -> Self {
        Self::new(UNKNOWN, 0.0)
    }

    /// Whether the value is an unknown form.
    pub fn is_unknown(&self) -> bool {
        is_unknown_text(&self.value)
    }
}

/// The attributes of one image, keyed by schema key.
pub type AttributeSet = BTreeMap<String, AttributeValue>;

/// Whether the attribute `key` of `set` is missing or unknown.
pub fn is_missing(set: &AttributeSet, key: &str) -> bool {
    set.get(key).is_none_or(AttributeValue::is_unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_forms_are_normalised() {
        for text in [
            "Unknown",
            " unclear.",
            "none",
            "N/A",
            "unknowable due to blurriness",
            "",
            "Not visible",
        ] {
            assert!(is_unknown_text(text), "{text:?}");
            assert_eq!(normalise_value("age", text), UNKNOWN);
        }
        for text in [
            "black",
            "casual",
            "carrying a backpack",
            "not wearing glasses",
        ] {
            assert!(!is_unknown_text(text), "{text:?}");
        }
        assert_eq!(normalise_value("color", " Dark Blue "), "dark blue");
        assert_eq!(normalise_value("brand", " Volkswagen "), "Volkswagen");
    }

    #[test]
    fn schemas_have_unique_keys() {
        for kind in [ObjectKind::Person, ObjectKind::Vehicle] {
            let mut keys: Vec<_> = kind.attributes().iter().map(|s| s.key).collect();
            let n = keys.len();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), n, "{kind:?}");
        }
        assert_eq!(
            ObjectKind::Person.spec("upper_color").map(|s| s.class),
            Some(AttributeClass::Colour)
        );
        assert!(ObjectKind::Vehicle.spec("hair_style").is_none());
    }

    #[test]
    fn confidence_is_clamped() {
        assert_eq!(AttributeValue::new("x", 1.7).confidence, 1.0);
        assert_eq!(AttributeValue::new("x", -0.2).confidence, 0.0);
        assert_eq!(AttributeValue::new("x", f32::NAN).confidence, 0.0);
    }
}
