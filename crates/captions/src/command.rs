//! `next caption attributes|merge|compose|all`: the pipeline over a dataset folder.

use crate::aggregate::ComplementRules;
use crate::attributes::{run_attributes, scan_dataset, AttributeRunConfig, FailedRequest};
use crate::cache::AnswerCache;
use crate::client::{ChatClient, ClientConfig};
use crate::error::CaptionError;
use crate::pipeline::{self, LlmComposer};
use crate::prompt::PromptTemplate;
use crate::schema::ObjectKind;
use next_common::Progress;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options shared by the caption stages (the `next caption` and `next-captions` command lines
/// parse into this).
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineOptions {
    /// Work folder for stage files, the answer cache and the captions.
    pub work: PathBuf,
    /// Dataset folder laid out as <split>/<RGB|NI|TI>/<images> (attributes, all).
    pub dataset: Option<PathBuf>,
    /// Persons or vehicles.
    pub kind: ObjectKind,
    /// Model asked for attributes; several allowed (the order breaks confidence ties).
    pub models: Vec<String>,
    /// OpenAI-compatible endpoint up to /v1.
    pub base_url: String,
    /// Environment variable holding the API key (unset: no Authorization header).
    pub api_key_env: String,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Whole-request timeout in seconds.
    pub timeout_s: f64,
    /// Attempts per request (retries on 429, 5xx, timeouts, unusable answers).
    pub max_attempts: u32,
    /// First retry wait in seconds, doubled at each retry.
    pub backoff_s: f64,
    /// Longest retry wait in seconds.
    pub backoff_max_s: f64,
    /// Attribute instruction file (default: the built-in configs/prompts/<kind>_attributes.v1.txt).
    pub prompt: Option<PathBuf>,
    /// Complement rules JSON (default: configs/captions/complement.v1.json, built in).
    pub rules: Option<PathBuf>,
    /// Override the rules' confidence threshold.
    pub threshold: Option<f32>,
    /// Model that rewrites the template captions (optional LLM composition).
    pub compose_model: Option<String>,
    /// Composition instruction file (default: configs/prompts/caption_compose.v1.txt, built in).
    pub compose_prompt: Option<PathBuf>,
    /// Caption output folder (default: <work>/captions).
    pub out: Option<PathBuf>,
}

impl PipelineOptions {
    /// The defaults, working in `work`: persons, a local endpoint
    /// (`http://127.0.0.1:8000/v1`), key in `OPENAI_API_KEY`, 4 requests in flight, 120 s
    /// timeout, 5 attempts, retry waits from 2 s doubling up to 60 s.
    pub fn new(work: impl Into<PathBuf>) -> Self {
        Self {
            work: work.into(),
            dataset: None,
            kind: ObjectKind::Person,
            models: Vec::new(),
            base_url: "http://127.0.0.1:8000/v1".into(),
            api_key_env: "OPENAI_API_KEY".into(),
            concurrency: 4,
            timeout_s: 120.0,
            max_attempts: 5,
            backoff_s: 2.0,
            backoff_max_s: 60.0,
            prompt: None,
            rules: None,
            threshold: None,
            compose_model: None,
            compose_prompt: None,
            out: None,
        }
    }
}

/// The caption pipeline's stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionStage {
    /// Ask every model for confidence-scored attributes of every image (cached, resumable).
    Attributes,
    /// Merge models per attribute, complement across modalities, write the unknown-rate report.
    Merge,
    /// Compose captions in the NEXT template (optionally rewritten by an LLM).
    Compose,
    /// attributes, merge and compose in one go.
    All,
}

/// Run one caption subcommand. Failed requests do not stop the run: every output is written, the
/// failures are listed in a JSON report, and the result is a [`CaptionError::Failures`] naming it.
pub fn run_caption_stage(stage: CaptionStage, a: &PipelineOptions) -> Result<(), CaptionError> {
    match stage {
        CaptionStage::Attributes => finish(attributes_stage(a)?),
        CaptionStage::Merge => merge_stage(a),
        CaptionStage::Compose => finish(compose_stage(a)?),
        CaptionStage::All => {
            let failed = attributes_stage(a)?;
            merge_stage(a)?;
            let composed = compose_stage(a)?;
            finish(failed.or(composed))
        }
    }
}

fn finish(failures: Option<(usize, PathBuf)>) -> Result<(), CaptionError> {
    match failures {
        Some((count, report)) => Err(CaptionError::Failures { count, report }),
        None => Ok(()),
    }
}

fn client(a: &PipelineOptions) -> Result<ChatClient, CaptionError> {
    let secs = |s: f64, name: &str| {
        Duration::try_from_secs_f64(s).map_err(|_| {
            CaptionError::Config(format!("--{name} must be a non-negative number of seconds"))
        })
    };
    Ok(ChatClient::new(ClientConfig {
        base_url: a.base_url.clone(),
        api_key: std::env::var(&a.api_key_env).ok().filter(|k| !k.is_empty()),
        timeout: secs(a.timeout_s, "timeout-s")?,
        max_attempts: a.max_attempts.max(1),
        backoff_initial: secs(a.backoff_s, "backoff-s")?,
        backoff_max: secs(a.backoff_max_s, "backoff-max-s")?,
        ..ClientConfig::default()
    }))
}

fn write_failures(
    path: &Path,
    failures: &[FailedRequest],
) -> Result<Option<(usize, PathBuf)>, CaptionError> {
    let text = serde_json::to_vec_pretty(failures)
        .map_err(|e| crate::error::json_error(path, "failures", e))?;
    next_common::write_atomic(path, &text)?;
    Ok((!failures.is_empty()).then(|| (failures.len(), path.to_path_buf())))
}

fn attributes_stage(a: &PipelineOptions) -> Result<Option<(usize, PathBuf)>, CaptionError> {
    let dataset = a.dataset.as_deref().ok_or_else(|| {
        CaptionError::Config("--dataset is required for the attributes stage".into())
    })?;
    if a.models.is_empty() {
        return Err(CaptionError::Config("give at least one --model".into()));
    }
    let prompt = match &a.prompt {
        Some(p) => PromptTemplate::load(p)?,
        None => PromptTemplate::attributes(a.kind),
    };
    let jobs = scan_dataset(dataset)?;
    let config = AttributeRunConfig {
        models: a.models.clone(),
        kind: a.kind,
        prompt,
        concurrency: a.concurrency,
    };
    let cache = AnswerCache::new(a.work.join("cache"));
    let mut progress = Progress::new("attributes", (jobs.len() * a.models.len()) as u64, "req");
    let run = run_attributes(&client(a)?, &cache, &jobs, &config, &mut progress);
    progress.finish();
    eprintln!(
        "attributes: {} images x {} models: {} asked, {} from cache, {} failed",
        jobs.len(),
        a.models.len(),
        run.asked,
        run.cached,
        run.failures.len()
    );
    let report = pipeline::save_attributes(&a.work, &run.sets, &run.failures)?;
    Ok((!run.failures.is_empty()).then_some((run.failures.len(), report)))
}

fn merge_stage(a: &PipelineOptions) -> Result<(), CaptionError> {
    let mut rules = match &a.rules {
        Some(p) => ComplementRules::load(p)?,
        None => ComplementRules::default(),
    };
    if let Some(t) = a.threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(CaptionError::Config("--threshold must be in [0, 1]".into()));
        }
        rules.threshold = t;
    }
    let sets = pipeline::load_attributes(&a.work)?;
    let (merged, complemented, report) =
        pipeline::merge_and_complement(a.kind, &sets, &a.models, &rules);
    pipeline::save_merge(&a.work, a.kind, &merged, &complemented, &report)?;
    eprint!("{}", report.table(a.kind));
    Ok(())
}

fn compose_stage(a: &PipelineOptions) -> Result<Option<(usize, PathBuf)>, CaptionError> {
    let sets = pipeline::load_stage(&a.work, "complemented")?;
    let out = a.out.clone().unwrap_or_else(|| a.work.join("captions"));
    let client = client(a)?;
    let llm = match &a.compose_model {
        Some(model) => Some(LlmComposer {
            client: &client,
            model,
            prompt: match &a.compose_prompt {
                Some(p) => PromptTemplate::load(p)?,
                None => PromptTemplate::compose(),
            },
            cache: AnswerCache::new(a.work.join("cache")),
        }),
        None => None,
    };
    let (files, failures) = pipeline::compose_all(a.kind, &sets, llm.as_ref());
    pipeline::save_captions(&out, &files)?;
    eprintln!(
        "compose: {} caption files written to {}",
        files.len(),
        out.display()
    );
    write_failures(&a.work.join("compose_failures.json"), &failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_reported_not_panicked() {
        let mut options = PipelineOptions::new("w");
        options.models = vec!["m".into()];
        let err = run_caption_stage(CaptionStage::Attributes, &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--dataset"), "{err}");
        let mut options = PipelineOptions::new("/definitely/missing");
        options.threshold = Some(2.0);
        let err = run_caption_stage(CaptionStage::Merge, &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--threshold"), "{err}");
        let options = PipelineOptions::new("/definitely/missing");
        let err = run_caption_stage(CaptionStage::Compose, &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/definitely/missing"), "{err}");
    }
}
