//! The NEXT vehicle caption template (MSVR310, WMVEID863): a deterministic composer.
//!
//! `A {color} {brand} {type} viewed from the {view}[ in {illumination} {capture_time} light] (image appears
//! {target_clarity}). The vehicle shows {wear} wear with {window_tint} {window_shape} windows. It features
//! {headlight_state} {headlight_shape} headlights and {taillight_shape} taillights, complemented by a
//! {grille_shape} grille with {grille_edges} edges. The {roof_condition} {roof_shape} roof sits above
//! {tire_condition} {tire_size} {tire_type} tires with {bumpers} bumpers. Side mirrors are {mirrors}. License
//! plate is {plate}. Spoiler is {spoiler}. Roof rack is {roof_rack}. Exhaust system features {exhaust} pipes.`
//! Unknown slots are left out; a sentence whose slots are all unknown is left out.

use crate::schema::{AttributeSet, UNKNOWN};

fn slot<'a>(set: &'a AttributeSet, key: &str) -> Option<&'a str> {
    set.get(key).map(|v| v.value.as_str()).filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case(UNKNOWN))
}

fn words(set: &AttributeSet, keys: &[&str]) -> Option<String> {
    let parts: Vec<&str> = keys.iter().filter_map(|k| slot(set, k)).collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn article(phrase: &str) -> &'static str {
    if phrase.starts_with(|c: char| "aeiouAEIOU".contains(c)) { "An" } else { "A" }
}

/// Compose the caption of one vehicle in the NEXT template.
pub fn compose_vehicle(set: &AttributeSet) -> String {
    let noun = words(set, &["color", "brand", "type"]).unwrap_or_else(|| "vehicle".to_string());
    let mut s1 = format!("{} {noun}", article(&noun));
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
    let head = words(set, &["headlight_state", "headlight_shape"]).map(|h| format!("{h} headlights"));
    let tail = slot(set, "taillight_shape").map(|t| format!("{t} taillights"));
    let lights = match (head, tail) {
        (Some(h), Some(t)) => Some(format!("{h} and {t}")),
        (h, t) => h.or(t),
    };
    let grille = words(set, &["grille_shape"]).map(|g| match slot(set, "grille_edges") {
        Some(e) => format!("a {g} grille with {e} edges"),
        None => format!("a {g} grille"),
    });
    match (lights, grille) {
        (Some(l), Some(g)) => sentences.push(format!("It features {l}, complemented by {g}.")),
        (Some(l), None) => sentences.push(format!("It features {l}.")),
        (None, Some(g)) => sentences.push(format!("It features {g}.")),
        (None, None) => {}
    }
    let roof = words(set, &["roof_condition", "roof_shape"]);
    let tires = words(set, &["tire_condition", "tire_size", "tire_type"]).map(|t| match slot(set, "bumpers") {
        Some(b) => format!("{t} tires with {b} bumpers"),
        None => format!("{t} tires"),
    });
    match (roof, tires) {
        (Some(r), Some(t)) => sentences.push(format!("The {r} roof sits above {t}.")),
        (Some(r), None) => sentences.push(format!("The roof is {r}.")),
        (None, Some(t)) => sentences.push(format!("It rides on {t}.")),
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
