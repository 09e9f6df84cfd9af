//! Table-driven tests of the multi-modal merge (models) and complement (modalities) rules.

use next_captions::{
    complement_modalities, merge_models, AttributeSet, AttributeValue, ComplementRules, ObjectKind,
};
use next_common::Modality::{self, Nir, Rgb, Tir};
use std::collections::BTreeMap;

fn set(pairs: &[(&str, &str, f32)]) -> AttributeSet {
    pairs
        .iter()
        .map(|(k, v, c)| (k.to_string(), AttributeValue::new(*v, *c)))
        .collect()
}

/// (case, per-model answers for one attribute in tie-break order, expected value, confidence, source model)
type MergeCase = (
    &'static str,
    Vec<(&'static str, Option<(&'static str, f32)>)>,
    &'static str,
    f32,
    Option<&'static str>,
);

#[test]
fn merge_takes_the_most_confident_model_per_attribute() {
    let cases: Vec<MergeCase> = vec![
        (
            "highest confidence wins",
            vec![
                ("gpt", Some(("red", 0.6))),
                ("qwen", Some(("blue", 0.8))),
                ("llava", Some(("green", 0.7))),
            ],
            "blue",
            0.8,
            Some("qwen"),
        ),
        (
            "tie goes to the first model",
            vec![("gpt", Some(("red", 0.7))), ("qwen", Some(("blue", 0.7)))],
            "red",
            0.7,
            Some("gpt"),
        ),
        (
            "tie order follows the list, not names",
            vec![("qwen", Some(("blue", 0.7))), ("gpt", Some(("red", 0.7)))],
            "blue",
            0.7,
            Some("qwen"),
        ),
        (
            "known beats a confident unknown",
            vec![
                ("gpt", Some(("unknown", 0.95))),
                ("qwen", Some(("black", 0.2))),
            ],
            "black",
            0.2,
            Some("qwen"),
        ),
        (
            "all unknown keeps the most confident unknown",
            vec![
                ("gpt", Some(("unknown", 0.1))),
                ("qwen", Some(("unknown", 0.3))),
            ],
            "unknown",
            0.3,
            Some("qwen"),
        ),
        (
            "answers missing everywhere",
            vec![("gpt", None), ("qwen", None)],
            "unknown",
            0.0,
            None,
        ),
        (
            "a model without the attribute is skipped",
            vec![("gpt", None), ("qwen", Some(("jeans", 0.4)))],
            "jeans",
            0.4,
            Some("qwen"),
        ),
        (
            "single model",
            vec![("gpt", Some(("jeans", 0.4)))],
            "jeans",
            0.4,
            Some("gpt"),
        ),
    ];
    for (name, answers, value, confidence, source) in cases {
        let sets: Vec<(&str, AttributeSet)> = answers
            .iter()
            .map(|(m, a)| {
                (
                    *m,
                    a.map(|(v, c)| set(&[("lower_type", v, c)]))
                        .unwrap_or_default(),
                )
            })
            .collect();
        let refs: Vec<(&str, &AttributeSet)> = sets.iter().map(|(m, s)| (*m, s)).collect();
        let merged = merge_models(ObjectKind::Person, &refs);
        assert_eq!(
            merged.len(),
            ObjectKind::Person.attributes().len(),
            "{name}: every schema attribute present"
        );
        let got = &merged["lower_type"];
        assert_eq!(
            (got.value.as_str(), got.confidence, got.source.as_deref()),
            (value, confidence, source),
            "{name}"
        );
    }
}

/// (case, attribute, RGB/NIR/TIR inputs, expected (value, source) per modality)
type ComplementCase = (
    &'static str,
    &'static str,
    [Option<(&'static str, f32)>; 3],
    [(&'static str, Option<&'static str>); 3],
);

#[test]
fn complement_fills_each_modality_from_the_allowed_most_confident_other() {
    let cases: Vec<ComplementCase> = vec![
        (
            "carried items come from thermal",
            "carried_items",
            [
                Some(("unknown", 0.2)),
                Some(("unknown", 0.1)),
                Some(("carrying a backpack", 0.8)),
            ],
            [
                ("carrying a backpack", Some("m@TIR")),
                ("carrying a backpack", Some("m@TIR")),
                ("carrying a backpack", Some("m")),
            ],
        ),
        (
            "colour never from NIR or TIR",
            "upper_color",
            [
                Some(("unknown", 0.0)),
                Some(("white", 0.9)),
                Some(("black", 0.95)),
            ],
            [
                ("unknown", Some("m")),
                ("white", Some("m")),
                ("black", Some("m")),
            ],
        ),
        (
            "colour from RGB fills the infrared modalities",
            "upper_color",
            [Some(("red", 0.7)), Some(("unknown", 0.3)), None],
            [
                ("red", Some("m")),
                ("red", Some("m@RGB")),
                ("red", Some("m@RGB")),
            ],
        ),
        (
            "a weak known value is replaced by a stronger one",
            "upper_type",
            [
                Some(("shirt", 0.3)),
                Some(("jacket", 0.6)),
                Some(("coat", 0.55)),
            ],
            [
                ("jacket", Some("m@NIR")),
                ("jacket", Some("m")),
                ("coat", Some("m")),
            ],
        ),
        (
            "candidates below the threshold never fill",
            "upper_type",
            [
                Some(("unknown", 0.0)),
                Some(("jacket", 0.45)),
                Some(("coat", 0.3)),
            ],
            [
                ("unknown", Some("m")),
                ("jacket", Some("m")),
                ("coat", Some("m")),
            ],
        ),
        (
            "ties go to the earlier modality (RGB, NIR, TIR)",
            "hair_length",
            [
                Some(("unknown", 0.0)),
                Some(("short", 0.7)),
                Some(("long", 0.7)),
            ],
            [
                ("short", Some("m@NIR")),
                ("short", Some("m")),
                ("long", Some("m")),
            ],
        ),
        (
            "all modalities unknown stay unknown",
            "glasses",
            [Some(("unknown", 0.4)), Some(("unclear", 0.9)), None],
            [
                ("unknown", Some("m")),
                ("unclear", Some("m")),
                ("unknown", None),
            ],
        ),
        (
            "a confident value is kept even if another modality is more confident",
            "gender",
            [
                Some(("female", 0.6)),
                Some(("male", 0.99)),
                Some(("female", 0.5)),
            ],
            [
                ("female", Some("m")),
                ("male", Some("m")),
                ("female", Some("m")),
            ],
        ),
    ];
    let rules = ComplementRules::default();
    assert_eq!(rules.threshold, 0.5);
    for (name, key, inputs, expected) in cases {
        let merged: BTreeMap<Modality, AttributeSet> = [Rgb, Nir, Tir]
            .into_iter()
            .zip(inputs)
            .map(|(m, input)| {
                let mut s = AttributeSet::new();
                if let Some((v, c)) = input {
                    s.insert(
                        key.to_string(),
                        AttributeValue {
                            source: Some("m".into()),
                            ..AttributeValue::new(v, c)
                        },
                    );
                }
                (m, s)
            })
            .collect();
        let out = complement_modalities(ObjectKind::Person, &merged, &rules);
        for (m, (value, source)) in [Rgb, Nir, Tir].into_iter().zip(expected) {
            let got = &out[&m][key];
            assert_eq!(
                (got.value.as_str(), got.source.as_deref()),
                (value, source),
                "{name}: {m}"
            );
        }
    }
}

#[test]
fn rules_from_a_file_override_per_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.json");
    std::fs::write(
        &path,
        r#"{"threshold": 0.2, "default_sources": ["rgb", "nir", "tir"], "class_sources": {"colour": ["rgb", "nir"]},
            "attribute_sources": {"carried_items": ["rgb"]}}"#,
    )
    .unwrap();
    let rules = ComplementRules::load(&path).unwrap();
    assert_eq!(rules.sources(ObjectKind::Person, "carried_items"), [Rgb]);
    assert_eq!(rules.sources(ObjectKind::Person, "lower_color"), [Rgb, Nir]);
    assert_eq!(rules.sources(ObjectKind::Vehicle, "color"), [Rgb, Nir]);
    assert_eq!(rules.sources(ObjectKind::Person, "view"), [Rgb, Nir, Tir]);
    let merged = BTreeMap::from([
        (Rgb, set(&[("carried_items", "unknown", 0.0)])),
        (Tir, set(&[("carried_items", "holding a phone", 0.9)])),
    ]);
    let out = complement_modalities(ObjectKind::Person, &merged, &rules);
    assert_eq!(
        out[&Rgb]["carried_items"].value, "unknown",
        "TIR is no source for carried items here"
    );
    std::fs::write(&path, r#"{"threshold": 3, "default_sources": []}"#).unwrap();
    let err = ComplementRules::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("rules.json") && err.contains("threshold"),
        "{err}"
    );
    std::fs::write(&path, r#"{"threshold": "high"}"#).unwrap();
    let err = ComplementRules::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("rules.json") && err.contains("expected complement rules"),
        "{err}"
    );
}
