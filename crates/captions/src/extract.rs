//! Tolerant reading of model answers: JSON inside code fences or prose, validated against the
//! attribute schema.

use crate::error::ExtractError;
use crate::schema::{normalise_value, AttributeSet, AttributeValue, ObjectKind};
use serde_json::Value;

/// Find the first complete JSON object in `text` (code fences and surrounding prose are skipped).
pub fn extract_json_object(text: &str) -> Result<Value, ExtractError> {
    let mut first_error = None;
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(offset) = text[start..].find('{') {
        let open = start + offset;
        match matching_brace(bytes, open) {
            Some(close) => match serde_json::from_str::<Value>(&text[open..=close]) {
                Ok(value @ Value::Object(_)) => return Ok(value),
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert_with(|| e.to_string());
                }
            },
            None => {
                first_error.get_or_insert_with(|| "unbalanced braces".to_string());
            }
        }
        start = open + 1;
    }
    match first_error {
        Some(e) => Err(ExtractError::Malformed(e)),
        None => Err(ExtractError::NoJson(text.chars().take(120).collect())),
    }
}

/// Index of the `}` closing the `{` at `open`, skipping braces inside JSON strings.
fn matching_brace(bytes: &[u8], open: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Read a model answer into an attribute set of `kind`: every schema attribute is present
/// (missing ones become unknown with confidence 0), values are normalised, unknown keys ignored.
pub fn parse_attribute_answer(text: &str, kind: ObjectKind) -> Result<AttributeSet, ExtractError> {
    let mut root = extract_json_object(text)?;
    // Some models wrap the answer: {"attributes": {...}}.
    if let Value::Object(map) = &root {
        if map.len() == 1 && !map.keys().any(|k| kind.spec(k).is_some()) {
            if let Some(inner @ Value::Object(_)) = map.values().next() {
                root = inner.clone();
            }
        }
    }
    let Value::Object(map) = root else {
        return Err(ExtractError::NoJson(text.chars().take(120).collect()));
    };
    let mut set = AttributeSet::new();
    let mut found = 0;
    for spec in kind.attributes() {
        let value = match map.get(spec.key) {
            Some(v) => {
                found += 1;
                read_value(spec.key, v)?
            }
            None => AttributeValue::unknown(),
        };
        set.insert(spec.key.to_string(), value);
    }
    if found == 0 {
        return Err(ExtractError::Schema {
            attribute: String::new(),
            message: format!("none of the {} attributes is present", kind.name()),
        });
    }
    Ok(set)
}

fn schema_error(key: &str, message: impl Into<String>) -> ExtractError {
    ExtractError::Schema {
        attribute: key.to_string(),
        message: message.into(),
    }
}

/// One attribute: `{"value": v, "confidence": c}` or `[v, c]`.
fn read_value(key: &str, v: &Value) -> Result<AttributeValue, ExtractError> {
    let (value, confidence) = match v {
        Value::Object(o) => {
            let value = o
                .get("value")
                .ok_or_else(|| schema_error(key, "no \"value\" field"))?;
            let conf = o
                .get("confidence")
                .or_else(|| o.get("conf"))
                .or_else(|| o.get("score"))
                .ok_or_else(|| schema_error(key, "no \"confidence\" field"))?;
            (value, conf)
        }
        Value::Array(a) if a.len() == 2 => (&a[0], &a[1]),
        _ => {
            return Err(schema_error(
                key,
                "expected {\"value\": ..., \"confidence\": ...}",
            ))
        }
    };
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".to_string(),
        Value::Bool(false) => "no".to_string(),
        Value::Null => String::new(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect();
            parts.join(", ")
        }
        Value::Object(_) => return Err(schema_error(key, "value must be a string, not an object")),
    };
    let confidence = read_confidence(key, confidence)?;
    Ok(AttributeValue::new(normalise_value(key, &text), confidence))
}

/// A confidence in `[0, 1]`; percentages (1 < c <= 100) are rescaled, numeric strings accepted.
fn read_confidence(key: &str, v: &Value) -> Result<f32, ExtractError> {
    let c = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().trim_end_matches('%').trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| schema_error(key, format!("confidence {v} is not a number")))?;
    if !c.is_finite() || !(0.0..=100.0).contains(&c) {
        return Err(schema_error(key, format!("confidence {c} outside [0, 1]")));
    }
    Ok(if c > 1.0 {
        (c / 100.0) as f32
    } else {
        c as f32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_json_in_fences_and_prose() {
        let answer =
            "Sure! Here it is:\n```json\n{\"age\": {\"value\": \"Adult\", \"confidence\": 0.9}, \
                      \"note\": \"a } brace\"}\n```\nHope this helps {not json}.";
        let set = parse_attribute_answer(answer, ObjectKind::Person).unwrap();
        assert_eq!(set["age"], AttributeValue::new("adult", 0.9));
        assert_eq!(set["gender"], AttributeValue::unknown());
        assert_eq!(set.len(), ObjectKind::Person.attributes().len());
    }

    #[test]
    fn accepts_pairs_percentages_and_unknown_forms() {
        let answer = r#"{"glasses": [false, "80%"], "upper_color": {"value": "Unclear", "confidence": 0.3}}"#;
        let set = parse_attribute_answer(answer, ObjectKind::Person).unwrap();
        assert_eq!(set["glasses"], AttributeValue::new("no", 0.8));
        assert_eq!(set["upper_color"].value, "unknown");
    }

    #[test]
    fn rejects_bad_answers() {
        let cases = [
            ("no json here", "no JSON"),
            (
                "{\"age\": {\"value\": \"adult\", \"confidence\": 0.9",
                "unbalanced",
            ),
            (
                "{\"age\": {\"value\": \"adult\" \"confidence\": 0.9}}",
                "malformed",
            ),
            ("{\"age\": {\"value\": \"adult\"}}", "confidence"),
            (
                "{\"age\": {\"value\": \"adult\", \"confidence\": 250}}",
                "outside",
            ),
            (
                "{\"colour_of_sky\": {\"value\": \"blue\", \"confidence\": 1}}",
                "none of",
            ),
        ];
        for (answer, expected) in cases {
            let err = parse_attribute_answer(answer, ObjectKind::Person).unwrap_err();
            assert!(
                err.to_string()
                    .to_lowercase()
                    .contains(&expected.to_lowercase()),
                "{answer}: {err}"
            );
        }
    }

    #[test]
    fn unwraps_a_single_wrapper_object() {
        let answer = r#"{"attributes": {"color": {"value": "white", "confidence": 0.7}}}"#;
        let set = parse_attribute_answer(answer, ObjectKind::Vehicle).unwrap();
        assert_eq!(set["color"], AttributeValue::new("white", 0.7));
    }
}
