//! Versioned instruction templates (files under `configs/prompts/`, embedded at build time so the
//! defaults work from any folder).

use crate::error::CaptionError;
use crate::schema::ObjectKind;
use next_common::Modality;
use std::path::Path;

const PERSON_ATTRIBUTES_V1: &str =
    include_str!("../../../configs/prompts/person_attributes.v1.txt");
const VEHICLE_ATTRIBUTES_V1: &str =
    include_str!("../../../configs/prompts/vehicle_attributes.v1.txt");
const CAPTION_COMPOSE_V1: &str = include_str!("../../../configs/prompts/caption_compose.v1.txt");

/// An instruction template with `{placeholder}` slots and a version id that keys the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTemplate {
    /// Version id, the file stem (e.g. `person_attributes.v1`); part of every cache key.
    pub id: String,
    /// Template text.
    pub text: String,
}

impl PromptTemplate {
    /// The built-in attribute instruction for persons or vehicles.
    pub fn attributes(kind: ObjectKind) -> Self {
        match kind {
            ObjectKind::Person => Self::new("person_attributes.v1", PERSON_ATTRIBUTES_V1),
            ObjectKind::Vehicle => Self::new("vehicle_attributes.v1", VEHICLE_ATTRIBUTES_V1),
        }
    }

    /// The built-in caption composition instruction (optional LLM composition step).
    pub fn compose() -> Self {
        Self::new("caption_compose.v1", CAPTION_COMPOSE_V1)
    }

    /// A template from an id and a text.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
        }
    }

    /// Load a template file; its id is the file name without the `.txt` extension.
    pub fn load(path: &Path) -> Result<Self, CaptionError> {
        let bytes = next_common::read_file(path)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            CaptionError::Config(format!(
                "{}: expected a UTF-8 prompt template",
                path.display()
            ))
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = name.strip_suffix(".txt").unwrap_or(&name).to_string();
        if id.is_empty() {
            return Err(CaptionError::Config(format!(
                "{}: prompt file has no name",
                path.display()
            )));
        }
        Ok(Self { id, text })
    }

    /// Fill `{name}` slots with the given values; unknown slots are left as they are.
    pub fn render(&self, vars: &[(&str, &str)]) -> String {
        let mut out = self.text.clone();
        for (name, value) in vars {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }

    /// The attribute instruction for one image of `modality`.
    pub fn render_for(&self, modality: Modality) -> String {
        self.render(&[
            ("modality", modality.name()),
            ("modality_note", modality_note(modality)),
        ])
    }
}

/// What the model should know about a modality's appearance.
pub fn modality_note(modality: Modality) -> &'static str {
    match modality {
        Modality::Rgb => "visible light; colours are meaningful",
        Modality::Nir => "near-infrared, grey-scale; colours cannot be seen",
        Modality::Tir => {
            "thermal infrared, a grey-scale heat map; colours and lighting cannot be seen"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_prompts_name_every_schema_attribute() {
        for kind in [ObjectKind::Person, ObjectKind::Vehicle] {
            let prompt = PromptTemplate::attributes(kind);
            assert!(prompt.id.ends_with(".v1"));
            for spec in kind.attributes() {
                assert!(
                    prompt.text.contains(&format!("- {}:", spec.key)),
                    "{} lacks {}",
                    prompt.id,
                    spec.key
                );
            }
            let text = prompt.render_for(Modality::Tir);
            assert!(
                text.contains("TIR image") && !text.contains("{modality"),
                "{text}"
            );
        }
    }

    #[test]
    fn load_takes_the_id_from_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custom.v7.txt");
        std::fs::write(&path, "hello {x}").unwrap();
        let p = PromptTemplate::load(&path).unwrap();
        assert_eq!(p.id, "custom.v7");
        assert_eq!(p.render(&[("x", "world")]), "hello world");
        let err = PromptTemplate::load(&dir.path().join("missing.txt")).unwrap_err();
        assert!(err.to_string().contains("missing.txt"), "{err}");
    }
}
