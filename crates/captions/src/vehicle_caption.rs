//! The NEXT vehicle caption template (MSVR310, WMVEID863): a deterministic composer.
//!
//! `A {color} {brand} {type} viewed from the {view}[ in {illumination} {capture_time} light] (image appears
//! {target_clarity}). The vehicle shows {wear} wear with {window_tint} {window_shape} windows. It features
//! {headlight_state} {headlight_shape} headlights and {taillight_shape} taillights, complemented by a
//! {grille_shape} grille with {grille_edges} edges. The {roof_condition} {roof_shape} roof sits above
//! {tire_condition} {tire_size} {tire_type} tires with {bumpers} bumpers. Side mirrors are {mirrors}. License
//! plate is {plate}. Spoiler is {spoiler}. Roof rack is {roof_rack}. Exhaust system features {exhaust} pipes.`
//! Unknown slots are left out; a sentence whose slots are all unknown is left out.

use crate::schema::{AttributeSet, AttributeValue, UNKNOWN};

/// Surface choices of a vehicle caption that the attributes do not determine (default: composer's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VehicleStyle {
    /// Opening article when it is not the vowel rule's (`A Audi sedan`).
    pub article: Option<String>,
    /// Without taillights, the grille is joined with "and" instead of ", complemented by".
    pub grille_with_and: bool,
}

fn slot<'a>(set: &'a AttributeSet, key: &str) -> Option<&'a str> {
    set.get(key)
        .map(|v| v.value.as_str())
        .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case(UNKNOWN))
}

fn words(set: &AttributeSet, keys: &[&str]) -> Option<String> {
    let parts: Vec<&str> = keys.iter().filter_map(|k| slot(set, k)).collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn article(phrase: &str) -> &'static str {
    if phrase.starts_with(|c: char| "aeiouAEIOU".contains(c)) {
        "An"
    } else {
        "A"
    }
}

/// Compose the caption of one vehicle in the NEXT template.
pub fn compose_vehicle(set: &AttributeSet) -> String {
    compose_vehicle_styled(set, &VehicleStyle::default())
}

/// Compose the caption of one vehicle with explicit surface choices.
pub fn compose_vehicle_styled(set: &AttributeSet, style: &VehicleStyle) -> String {
    let noun = words(set, &["color", "brand", "type"]).unwrap_or_else(|| "vehicle".to_string());
    let mut s1 = format!(
        "{} {noun}",
        style.article.as_deref().unwrap_or(article(&noun))
    );
    if let Some(view) = slot(set, "view") {
        s1 += &format!(" viewed from the {view}");
    }
    if let Some(light) = words(set, &["illumination", "capture_time"]) {
        s1 += &format!(" in {light} light");
    }
    if let Some(clarity) = slot(set, "target_clarity") {
        s1 += &format!(" (image appears {clarity})");
    }
    let mut sentences = vec![s1 + "."];
    let windows = words(set, &["window_tint", "window_shape"]).map(|w| format!("{w} windows"));
    match (slot(set, "wear"), windows) {
        (Some(w), Some(win)) => sentences.push(format!("The vehicle shows {w} wear with {win}.")),
        (Some(w), None) => sentences.push(format!("The vehicle shows {w} wear.")),
        (None, Some(win)) => sentences.push(format!("The vehicle has {win}.")),
        (None, None) => {}
    }
    let head =
        words(set, &["headlight_state", "headlight_shape"]).map(|h| format!("{h} headlights"));
    let tail = slot(set, "taillight_shape").map(|t| format!("{t} taillights"));
    let lights = match (head, tail.clone()) {
        (Some(h), Some(t)) => Some(format!("{h} and {t}")),
        (h, t) => h.or(t),
    };
    let grille = words(set, &["grille_shape"]).map(|g| match slot(set, "grille_edges") {
        Some(e) => format!("{} {g} grille with {e} edges", article(&g).to_lowercase()),
        None => format!("{} {g} grille", article(&g).to_lowercase()),
    });
    let has_tail = tail.is_some();
    match (lights, grille) {
        (Some(l), Some(g)) if style.grille_with_and && !has_tail && l.ends_with(" headlights") => {
            sentences.push(format!("It features {l} and {g}."))
        }
        (Some(l), Some(g)) => sentences.push(format!("It features {l}, complemented by {g}.")),
        (Some(l), None) => sentences.push(format!("It features {l}.")),
        (None, Some(g)) => sentences.push(format!("It features {g}.")),
        (None, None) => {}
    }
    let roof = words(set, &["roof_condition", "roof_shape"]);
    let tires = words(set, &["tire_condition", "tire_size", "tire_type"]).map(|t| {
        match slot(set, "bumpers") {
            Some(b) => format!("{t} tires with {b} bumpers"),
            None => format!("{t} tires"),
        }
    });
    match (roof, tires) {
        (Some(r), Some(t)) => sentences.push(format!("The {r} roof sits above {t}.")),
        (Some(r), None) => sentences.push(format!("The roof is {r}.")),
        (None, Some(t)) => sentences.push(format!("The roof sits above {t}.")),
        (None, None) => {}
    }
    let tail_sentences = [
        ("mirrors", "Side mirrors are {}."),
        ("plate", "License plate is {}."),
        ("spoiler", "Spoiler is {}."),
        ("roof_rack", "Roof rack is {}."),
        ("exhaust", "Exhaust system features {} pipes."),
    ];
    for (key, pattern) in tail_sentences {
        if let Some(v) = slot(set, key) {
            sentences.push(pattern.replace("{}", v));
        }
    }
    sentences.join(" ")
}

/// A NEXT vehicle caption read back into attributes (confidence 1).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedVehicleCaption {
    /// The attribute values found in the caption.
    pub attributes: AttributeSet,
    /// The surface choices needed to write the caption again byte for byte.
    pub style: VehicleStyle,
}

/// Split `words` so that a first word in `first_set` fills the first slot and the rest the second.
fn split_first<'a>(phrase: &'a str, first_set: &[&str]) -> (&'a str, &'a str) {
    match phrase.split_once(' ') {
        Some((a, b)) if first_set.contains(&a) => (a, b),
        _ if first_set.contains(&phrase) => (phrase, ""),
        _ => ("", phrase),
    }
}

/// Parse a caption written in the NEXT vehicle template; `None` when it does not follow it.
pub fn parse_vehicle_caption(caption: &str) -> Option<ParsedVehicleCaption> {
    let body = caption.strip_suffix('.')?;
    let mut set = AttributeSet::new();
    let mut put = |key: &str, value: &str| {
        if !value.is_empty() {
            set.insert(key.to_string(), AttributeValue::new(value, 1.0));
        }
    };
    let mut sentences = body.split(". ");
    let first = sentences.next()?;
    let (article, rest) = first.split_once(' ')?;
    if article != "A" && article != "An" {
        return None;
    }
    let (rest, clarity) = match rest
        .strip_suffix(')')
        .and_then(|r| r.split_once(" (image appears "))
    {
        Some((r, c)) => (r, Some(c)),
        None => (rest, None),
    };
    let (noun, scene) = match rest.split_once(" viewed from the ") {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    if let Some(scene) = scene {
        let (view, light) = match scene.split_once(" in ") {
            Some((v, l)) => (v, Some(l.strip_suffix(" light")?)),
            None => (scene, None),
        };
        put("view", view);
        if let Some(light) = light {
            let (illumination, time) = match light.rsplit_once(' ') {
                Some((i, t)) => (i, t),
                None if light.ends_with("time") => ("", light),
                None => (light, ""),
            };
            put("illumination", illumination);
            put("capture_time", time);
        }
    }
    put("target_clarity", clarity.unwrap_or_default());
    if noun != "vehicle" {
        let (front, kind) = noun.rsplit_once(' ').unwrap_or(("", noun));
        let split = front
            .find(|c: char| c.is_uppercase())
            .unwrap_or(front.len());
        put("color", front[..split].trim_end());
        put("brand", &front[split..]);
        put("type", kind);
    }
    let mut style = VehicleStyle {
        article: (article != self::article(noun)).then(|| article.to_string()),
        grille_with_and: false,
    };
    for sentence in sentences {
        if let Some(s) = sentence.strip_prefix("The vehicle shows ") {
            let (wear, windows) = s.split_once(" wear with ")?;
            put("wear", wear);
            let (tint, shape) = split_first(
                windows.strip_suffix(" windows")?,
                &["tinted", "clear", "dirty", "unclear"],
            );
            put("window_tint", tint);
            put("window_shape", shape);
        } else if let Some(s) = sentence.strip_prefix("It features ") {
            let only_grille =
                (s.starts_with("a ") || s.starts_with("an ")) && s.contains(" grille");
            let (lights, grille) = if only_grille {
                ("", Some(s.split_once(' ')?.1))
            } else {
                match s.split_once(", complemented by ") {
                    Some((l, g)) => (l, Some(g.split_once(' ')?.1)),
                    None => match s.split_once(" headlights and a") {
                        Some((h, g)) if g.ends_with(" edges") || g.ends_with(" grille") => {
                            style.grille_with_and = true;
                            (
                                &s[..h.len() + " headlights".len()],
                                Some(g.split_once(' ')?.1),
                            )
                        }
                        _ => (s, None),
                    },
                }
            };
            let (head, tail) = match lights.split_once(" headlights") {
                _ if lights.is_empty() => ("", ""),
                Some((h, t)) => (
                    h,
                    t.strip_prefix(" and ")
                        .map(|t| t.strip_suffix(" taillights"))
                        .unwrap_or(Some(""))?,
                ),
                None => ("", lights.strip_suffix(" taillights")?),
            };
            let (state, shape) = split_first(head, &["on", "off"]);
            put("headlight_state", state);
            put("headlight_shape", shape);
            put("taillight_shape", tail);
            if let Some(grille) = grille {
                let (shape, edges) = match grille.split_once(" grille with ") {
                    Some((shape, edges)) => (shape, edges.strip_suffix(" edges")?),
                    None => (grille.strip_suffix(" grille")?, ""),
                };
                put("grille_shape", shape);
                put("grille_edges", edges);
            }
        } else if let Some(s) = sentence.strip_prefix("The ") {
            let (roof, tires) = match s.strip_prefix("roof sits above ") {
                Some(tires) => ("", tires),
                None => s.split_once(" roof sits above ")?,
            };
            let (condition, shape) = split_first(roof, &["clean", "dirty"]);
            put("roof_condition", condition);
            put("roof_shape", shape);
            let (tires, bumpers) = match tires.split_once(" tires with ") {
                Some((t, b)) => (t, b.strip_suffix(" bumpers")?),
                None => (tires.strip_suffix(" tires")?, ""),
            };
            put("bumpers", bumpers);
            let (condition, rest) = split_first(tires, &["new", "used", "worn"]);
            let (size, kind) = split_first(rest, &["small", "medium", "large"]);
            put("tire_condition", condition);
            put("tire_size", size);
            put("tire_type", kind);
        } else if let Some(v) = sentence.strip_prefix("Side mirrors are ") {
            put("mirrors", v);
        } else if let Some(v) = sentence.strip_prefix("License plate is ") {
            put("plate", v);
        } else if let Some(v) = sentence.strip_prefix("Spoiler is ") {
            put("spoiler", v);
        } else if let Some(v) = sentence.strip_prefix("Roof rack is ") {
            put("roof_rack", v);
        } else if let Some(v) = sentence.strip_prefix("Exhaust system features ") {
            put("exhaust", v.strip_suffix(" pipes")?);
        } else {
            return None;
        }
    }
    Some(ParsedVehicleCaption {
        attributes: set,
        style,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> AttributeSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), AttributeValue::new(*v, 0.9)))
            .collect()
    }

    #[test]
    fn unknown_slots_and_sentences_are_left_out() {
        let cases = [
            (vec![], "A vehicle."),
            (
                vec![("color", "unknown"), ("brand", "Audi"), ("type", "sedan"), ("view", "side"), ("plate", "visible")],
                "An Audi sedan viewed from the side. License plate is visible.",
            ),
            (
                vec![("type", "SUV"), ("capture_time", "nighttime"), ("target_clarity", "blurry"), ("grille_shape", "angular")],
                "A SUV in nighttime light (image appears blurry). It features an angular grille.",
            ),
            (
                vec![("tire_size", "medium"), ("bumpers", "intact"), ("headlight_state", "off"), ("taillight_shape", "oval")],
                "A vehicle. It features off headlights and oval taillights. The roof sits above medium tires with intact bumpers.",
            ),
        ];
        for (pairs, expected) in cases {
            let s = set(&pairs);
            let text = compose_vehicle(&s);
            assert_eq!(text, expected, "{pairs:?}");
            let parsed = parse_vehicle_caption(&text).unwrap();
            assert_eq!(
                compose_vehicle_styled(&parsed.attributes, &parsed.style),
                text
            );
        }
        assert!(parse_vehicle_caption("The car is red.").is_none());
    }
}
