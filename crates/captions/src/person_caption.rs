//! The NEXT person caption template: a deterministic composer and the parser that reads the NEXT
//! authors' RGBNT201 captions back into attribute sets.
//!
//! Template (slots in braces, optional parts in brackets):
//! `{A|An} {age} {gender} seen from the {view}[ during {capture_time}][ in {illumination} lighting].
//! {He|She|The person} is wearing {a} {upper_color} {upper_type} with [{a}] {lower_color} {lower_type},
//! paired with {footwear_style} {footwear_type}. {Hair_length} {hair_style} hair[ and {he is} [not ]wearing
//! glasses]. [{He} is {carried_items}.] The image appears {target_clarity}.`

use crate::schema::{AttributeSet, AttributeValue, UNKNOWN};
use serde::{Deserialize, Serialize};

/// Surface choices of a caption that the attributes do not determine. The default style is what the
/// composer writes for new captions; the parser records a field only where a caption departs from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonStyle {
    /// Opening article when it is not the vowel rule's `A`/`An`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article: Option<String>,
    /// Subject of the body sentences when not the gender rule's `He`/`She`/`The person`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The glasses clause drops its subject (`Short hair and not wearing glasses.`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bare_glasses_clause: bool,
    /// Determiner before the lower garment when not the default rule's (`""` = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_determiner: Option<String>,
    /// Determiner before the upper garment when not the vowel rule's (`""` = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_determiner: Option<String>,
    /// The carried-items clause follows the hair instead of the glasses (`Short hair and he is carrying a bag.`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub carried_in_hair_sentence: bool,
    /// The carried-items sentence comes after the clarity sentence.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub carried_last: bool,
}

impl PersonStyle {
    /// Whether this is the composer's default style.
    pub fn is_default(&self) -> bool {
        *self == PersonStyle::default()
    }
}

const AGE_WORDS: &[&str] = &[
    "child",
    "teenager",
    "adult",
    "senior",
    "elderly",
    "young",
    "middle-aged",
    "old",
];
const HAIR_LENGTHS: &[&str] = &["short", "medium", "long", "shoulder-length", "bald"];
const FOOTWEAR_STYLES: &[&str] = &["casual", "athletic", "formal", "sporty", "sports"];
const SINGULAR_LOWER: &[&str] = &["skirt", "dress"];

/// A slot value: `None` when absent or the canonical unknown.
fn slot<'a>(set: &'a AttributeSet, key: &str) -> Option<&'a str> {
    set.get(key)
        .map(|v| v.value.as_str())
        .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case(UNKNOWN))
}

fn join(parts: &[Option<&str>]) -> Option<String> {
    let words: Vec<&str> = parts.iter().flatten().copied().collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn vowel_article(word: &str, capital: bool) -> &'static str {
    let vowel = word
        .chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU".contains(c));
    match (vowel, capital) {
        (true, true) => "An",
        (false, true) => "A",
        (true, false) => "an",
        (false, false) => "a",
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn decapitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The default subject for a gender value.
fn default_subject(gender: Option<&str>) -> &'static str {
    match gender {
        Some("male") => "He",
        Some("female") => "She",
        _ => "The person",
    }
}

/// Whether a carried-items phrase already starts with its verb (`carrying ...`, `not carrying ...`).
fn has_verb(phrase: &str) -> bool {
    let first = phrase.split(' ').next().unwrap_or("");
    first.ends_with("ing") || first == "not"
}

/// Compose the caption of one person in the NEXT template with the default style.
pub fn compose_person(set: &AttributeSet) -> String {
    compose_person_styled(set, &PersonStyle::default())
}

/// Compose the caption of one person in the NEXT template with explicit surface choices.
pub fn compose_person_styled(set: &AttributeSet, style: &PersonStyle) -> String {
    let gender = slot(set, "gender");
    let subject = style
        .subject
        .clone()
        .unwrap_or_else(|| default_subject(gender).to_string());
    let noun = join(&[slot(set, "age"), gender]).unwrap_or_else(|| "person".to_string());
    let article = style
        .article
        .clone()
        .unwrap_or_else(|| vowel_article(&noun, true).to_string());
    let mut s1 = format!("{article} {noun} seen");
    if let Some(view) = slot(set, "view") {
        s1 += &format!(" from the {view}");
    }
    if let Some(time) = slot(set, "capture_time") {
        s1 += &format!(" during {time}");
    }
    if let Some(light) = slot(set, "illumination") {
        s1 += &format!(" in {light} lighting");
    }
    let mut sentences = vec![s1 + "."];

    let upper = join(&[slot(set, "upper_color"), slot(set, "upper_type")]);
    let lower_type = slot(set, "lower_type");
    let lower_color = slot(set, "lower_color");
    let lower = join(&[lower_color, lower_type]);
    let footwear = join(&[slot(set, "footwear_style"), slot(set, "footwear_type")]);
    let upper = upper.map(|u| {
        let det = style
            .upper_determiner
            .clone()
            .unwrap_or_else(|| vowel_article(&u, false).to_string());
        if det.is_empty() {
            u
        } else {
            format!("{det} {u}")
        }
    });
    let lower = lower.map(|l| {
        let rule = lower_color.is_none() && lower_type.is_some_and(|t| SINGULAR_LOWER.contains(&t));
        let default = if rule { vowel_article(&l, false) } else { "" };
        let det = style
            .lower_determiner
            .clone()
            .unwrap_or_else(|| default.to_string());
        if det.is_empty() {
            l
        } else {
            format!("{det} {l}")
        }
    });
    let clothes = match (upper, lower) {
        (Some(u), Some(l)) => Some(format!("{u} with {l}")),
        (u, l) => u.or(l),
    };
    match (clothes, footwear) {
        (Some(c), Some(f)) => sentences.push(format!("{subject} is wearing {c}, paired with {f}.")),
        (Some(c), None) => sentences.push(format!("{subject} is wearing {c}.")),
        (None, Some(f)) => sentences.push(format!("{subject} is wearing {f}.")),
        (None, None) => {}
    }

    let glasses = slot(set, "glasses").map(|g| {
        if g == "no" {
            "not wearing glasses"
        } else {
            "wearing glasses"
        }
    });
    let carried = slot(set, "carried_items").map(|c| {
        if has_verb(c) {
            c.to_string()
        } else {
            format!("carrying {c}")
        }
    });
    let hair = join(&[slot(set, "hair_length"), slot(set, "hair_style")]);
    let lower_subject = decapitalise(&subject);
    let mut carried_sentence = carried.as_ref().map(|c| format!("{subject} is {c}."));
    match (hair, glasses) {
        (Some(h), _) if style.carried_in_hair_sentence && carried.is_some() => {
            let c = carried.as_deref().unwrap_or_default();
            sentences.push(format!(
                "{} hair and {lower_subject} is {c}.",
                capitalise(&h)
            ));
            carried_sentence = None;
        }
        (Some(h), Some(g)) if style.bare_glasses_clause => {
            sentences.push(format!("{} hair and {g}.", capitalise(&h)))
        }
        (Some(h), Some(g)) => sentences.push(format!(
            "{} hair and {lower_subject} is {g}.",
            capitalise(&h)
        )),
        (Some(h), None) => sentences.push(format!("{} hair.", capitalise(&h))),
        (None, Some(g)) => sentences.push(format!("{subject} is {g}.")),
        (None, None) => {}
    }
    if !style.carried_last {
        sentences.extend(carried_sentence.take());
    }
    if let Some(clarity) = slot(set, "target_clarity") {
        sentences.push(format!("The image appears {clarity}."));
    }
    sentences.extend(carried_sentence);
    sentences.join(" ")
}

/// A NEXT person caption read back into attributes (confidence 1) and its surface style.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPersonCaption {
    /// The attribute values found in the caption.
    pub attributes: AttributeSet,
    /// The surface choices needed to write the caption again byte for byte.
    pub style: PersonStyle,
}

/// Parse a caption written in the NEXT person template; `None` when it does not follow the template.
pub fn parse_person_caption(caption: &str) -> Option<ParsedPersonCaption> {
    let mut sentences: Vec<&str> = caption.split(". ").collect();
    let last = sentences.pop()?;
    sentences.push(last.strip_suffix('.')?);
    let mut set = AttributeSet::new();
    let mut style = PersonStyle::default();
    let mut put = |key: &str, value: &str| {
        if !value.is_empty() {
            set.insert(key.to_string(), AttributeValue::new(value, 1.0));
        }
    };
    let mut rest = sentences.as_slice();

    // Sentence 1: article, age, gender, view, time, light.
    let (first, tail) = rest.split_first()?;
    rest = tail;
    let (article, after) = first.split_once(' ')?;
    if article != "A" && article != "An" {
        return None;
    }
    let (noun, scene) = after.split_once(" seen")?;
    let scene = match scene.strip_prefix(" from the ") {
        Some(s) => {
            let end = [" during ", " in "]
                .iter()
                .filter_map(|m| s.find(m))
                .min()
                .unwrap_or(s.len());
            put("view", &s[..end]);
            &s[end..]
        }
        None => scene,
    };
    let scene = match scene.strip_prefix(" during ") {
        Some(s) => {
            let end = s.find(" in ").unwrap_or(s.len());
            put("capture_time", &s[..end]);
            &s[end..]
        }
        None => scene,
    };
    if let Some(s) = scene.strip_prefix(" in ") {
        put("illumination", s.strip_suffix(" lighting")?);
    } else if !scene.is_empty() {
        return None;
    }
    let (age, gender) = match noun.split_once(' ') {
        Some((a, g)) if AGE_WORDS.contains(&a) => (a, g),
        _ if AGE_WORDS.contains(&noun) => (noun, ""),
        _ => ("", noun),
    };
    put("age", age);
    put("gender", gender);
    let gender_value = (!gender.is_empty()).then_some(gender);
    if article != vowel_article(noun, true) {
        style.article = Some(article.to_string());
    }

    // Sentence 2: clothes and footwear.
    let subjects = ["He", "She", "The person"];
    let body = rest.first().and_then(|s| {
        subjects.iter().find_map(|subj| {
            s.strip_prefix(subj)?
                .strip_prefix(" is wearing ")
                .map(|b| (*subj, b))
        })
    });
    if let Some((subject, body)) = body.filter(|(_, b)| b.contains(", paired with ")) {
        rest = &rest[1..];
        if subject != default_subject(gender_value) {
            style.subject = Some(subject.to_string());
        }
        let (clothes, footwear) = body.split_once(", paired with ")?;
        let (upper, lower) = clothes.split_once(" with ")?;
        let (upper_det, upper) = split_determiner(upper);
        let (upper_color, upper_type) = split_garment(upper);
        put("upper_color", upper_color);
        put("upper_type", upper_type);
        if upper_det != vowel_article(upper, false) {
            style.upper_determiner = Some(upper_det.to_string());
        }
        let (lower_det, lower) = split_determiner(lower);
        let (lower_color, lower_type) = split_garment(lower);
        put("lower_color", lower_color);
        put("lower_type", lower_type);
        let rule = lower_color.is_empty() && SINGULAR_LOWER.contains(&lower_type);
        if lower_det
            != if rule {
                vowel_article(lower, false)
            } else {
                ""
            }
        {
            style.lower_determiner = Some(lower_det.to_string());
        }
        let (foot_style, foot_type) = split_footwear(footwear);
        put("footwear_style", foot_style);
        put("footwear_type", foot_type);
    } else {
        return None;
    }
    let subject = style
        .subject
        .clone()
        .unwrap_or_else(|| default_subject(gender_value).to_string());
    let lower_subject = decapitalise(&subject);

    // Sentence 3: hair and glasses (or hair and carried items), or a glasses sentence.
    if let Some((hair, clause)) = rest.first().and_then(|s| hair_sentence(s)) {
        rest = &rest[1..];
        let hair = decapitalise(hair);
        let (length, hair_style) = match hair.split_once(' ') {
            Some((l, s)) if HAIR_LENGTHS.contains(&l) => (l.to_string(), s.to_string()),
            _ if HAIR_LENGTHS.contains(&hair.as_str()) => (hair.clone(), String::new()),
            _ => (String::new(), hair.clone()),
        };
        put("hair_length", &length);
        put("hair_style", &hair_style);
        if let Some(clause) = clause {
            let (bare, clause) = match clause.strip_prefix(&format!("{lower_subject} is ")) {
                Some(c) => (false, c),
                None => (true, clause),
            };
            match clause {
                "wearing glasses" => put("glasses", "yes"),
                "not wearing glasses" => put("glasses", "no"),
                c if !bare && has_verb(c) => {
                    put("carried_items", c);
                    style.carried_in_hair_sentence = true;
                }
                _ => return None,
            }
            style.bare_glasses_clause = bare;
        }
    } else if let Some(g) = rest
        .first()
        .and_then(|s| s.strip_prefix(&format!("{subject} is ")))
    {
        match g {
            "wearing glasses" => put("glasses", "yes"),
            "not wearing glasses" => put("glasses", "no"),
            _ => {}
        }
        if g.ends_with("wearing glasses") {
            rest = &rest[1..];
        }
    }

    // Carried items, clarity, carried items after clarity.
    let mut carried_seen = style.carried_in_hair_sentence;
    for (i, sentence) in rest.iter().enumerate() {
        if let Some(clarity) = sentence.strip_prefix("The image appears ") {
            put("target_clarity", clarity);
            continue;
        }
        let phrase = sentence.strip_prefix(&format!("{subject} is "))?;
        if carried_seen || !has_verb(phrase) || phrase.ends_with("glasses") {
            return None;
        }
        carried_seen = true;
        put("carried_items", phrase);
        style.carried_last = i > 0;
    }
    let parsed = ParsedPersonCaption {
        attributes: set,
        style,
    };
    Some(parsed)
}

/// `Short straight hair and he is not wearing glasses` -> (`Short straight`, Some(clause)).
fn hair_sentence(sentence: &str) -> Option<(&str, Option<&str>)> {
    if let Some(hair) = sentence.strip_suffix(" hair") {
        return Some((hair, None));
    }
    let (hair, clause) = sentence.split_once(" hair and ")?;
    Some((hair, Some(clause)))
}

/// `a black jacket` -> (`a`, `black jacket`).
fn split_determiner(phrase: &str) -> (&str, &str) {
    for det in ["a ", "an "] {
        if let Some(rest) = phrase.strip_prefix(det) {
            return (det.trim_end(), rest);
        }
    }
    ("", phrase)
}

/// `dark blue jacket` -> (`dark blue`, `jacket`): the garment noun is the last word.
fn split_garment(phrase: &str) -> (&str, &str) {
    match phrase.rsplit_once(' ') {
        Some((colour, garment)) => (colour, garment),
        None => ("", phrase),
    }
}

/// `casual sneakers` -> (`casual`, `sneakers`); a doubled unknown form fills both slots.
fn split_footwear(phrase: &str) -> (&str, &str) {
    let words: Vec<&str> = phrase.split(' ').collect();
    if words.len().is_multiple_of(2) && words.len() >= 2 {
        let half = phrase.len() / 2;
        if phrase.as_bytes()[half] == b' ' && phrase[..half] == phrase[half + 1..] {
            return (&phrase[..half], &phrase[half + 1..]);
        }
    }
    match phrase.split_once(' ') {
        Some((style, kind)) if FOOTWEAR_STYLES.contains(&style) => (style, kind),
        _ => match phrase.rsplit_once(' ') {
            Some((style, "footwear")) => (style, "footwear"),
            _ => ("", phrase),
        },
    }
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
    fn composes_the_full_template() {
        let s = set(&[
            ("age", "adult"),
            ("gender", "male"),
            ("view", "back"),
            ("capture_time", "nighttime"),
            ("illumination", "dim"),
            ("upper_color", "black"),
            ("upper_type", "jacket"),
            ("lower_type", "skirt"),
            ("footwear_style", "casual"),
            ("footwear_type", "sneakers"),
            ("hair_length", "short"),
            ("hair_style", "straight"),
            ("glasses", "no"),
            ("carried_items", "backpack"),
            ("target_clarity", "blurry"),
        ]);
        let text = compose_person(&s);
        assert_eq!(
            text,
            "An adult male seen from the back during nighttime in dim lighting. He is wearing a black jacket with \
             a skirt, paired with casual sneakers. Short straight hair and he is not wearing glasses. He is carrying \
             backpack. The image appears blurry."
        );
        let parsed = parse_person_caption(&text).unwrap();
        assert!(parsed.style.is_default());
        assert_eq!(
            parsed.attributes["carried_items"].value,
            "carrying backpack"
        );
        assert_eq!(parsed.attributes["lower_type"].value, "skirt");
    }

    #[test]
    fn unknown_slots_are_left_out() {
        let cases = [
            (vec![], "A person seen."),
            (vec![("gender", "female"), ("glasses", "yes"), ("view", UNKNOWN)], "A female seen. She is wearing glasses."),
            (
                vec![("age", "child"), ("lower_color", "blue"), ("lower_type", "jeans"), ("hair_length", "long")],
                "A child seen. The person is wearing blue jeans. Long hair.",
            ),
            (
                vec![("upper_type", "coat"), ("footwear_type", "boots"), ("target_clarity", "clear"), ("illumination", "bright")],
                "A person seen in bright lighting. The person is wearing a coat, paired with boots. The image appears clear.",
            ),
        ];
        for (pairs, expected) in cases {
            let s = set(&pairs);
            assert_eq!(compose_person(&s), expected, "{pairs:?}");
        }
    }

    #[test]
    fn parser_records_departures_from_the_default_style() {
        let text = "A adult female seen from the side. She is wearing a dress with dress, paired with casual \
                    sneakers. Long hair and not wearing glasses. The image appears blurry. She is holding a phone.";
        let parsed = parse_person_caption(text).unwrap();
        assert_eq!(parsed.style.article.as_deref(), Some("A"));
        assert_eq!(parsed.style.lower_determiner.as_deref(), Some(""));
        assert!(parsed.style.bare_glasses_clause && parsed.style.carried_last);
        assert_eq!(
            compose_person_styled(&parsed.attributes, &parsed.style),
            text
        );
        assert!(parse_person_caption("A side view of a person.").is_none());
        let odd = "An adult seen. She is wearing a coat with jeans, paired with é é. The image appears clear.";
        let parsed = parse_person_caption(odd).unwrap();
        assert_eq!(
            compose_person_styled(&parsed.attributes, &parsed.style),
            odd
        );
        assert!(parse_person_caption(
            "An adult seen. She is wearing a coat with jeans, paired with éé ab."
        )
        .is_some());
        assert!(parse_person_caption("").is_none());
    }
}
