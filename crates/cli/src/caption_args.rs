//! Command-line form of the caption pipeline (`next caption ...` and `next-captions ...`):
//! clap parsing into the `next-captions` library's [`PipelineOptions`].

use clap::{Args, Subcommand};
use next_reid::captions::{CaptionStage, ObjectKind, PipelineOptions};
use std::path::PathBuf;

/// Options shared by the caption subcommands.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Work folder for stage files, the answer cache and the captions.
    #[arg(long)]
    pub work: PathBuf,
    /// Dataset folder laid out as <split>/<RGB|NI|TI>/<images> (attributes, all).
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Persons or vehicles: person | vehicle [default: person].
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<ObjectKind>,
    /// Model asked for attributes; repeat for several (the order breaks confidence ties).
    #[arg(long = "model")]
    pub models: Vec<String>,
    /// OpenAI-compatible endpoint up to /v1 [default: http://127.0.0.1:8000/v1].
    #[arg(long)]
    pub base_url: Option<String>,
    /// Environment variable holding the API key (unset: no Authorization header) [default: OPENAI_API_KEY].
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// Requests in flight at most [default: 4].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Whole-request timeout in seconds [default: 120].
    #[arg(long)]
    pub timeout_s: Option<f64>,
    /// Attempts per request (retries on 429, 5xx, timeouts, unusable answers) [default: 5].
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// First retry wait in seconds, doubled at each retry [default: 2].
    #[arg(long)]
    pub backoff_s: Option<f64>,
    /// Longest retry wait in seconds [default: 60].
    #[arg(long)]
    pub backoff_max_s: Option<f64>,
    /// Attribute instruction file (default: the built-in configs/prompts/<kind>_attributes.v1.txt).
    #[arg(long)]
    pub prompt: Option<PathBuf>,
    /// Complement rules JSON (default: configs/captions/complement.v1.json, built in).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Override the rules' confidence threshold.
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Model that rewrites the template captions (optional LLM composition).
    #[arg(long)]
    pub compose_model: Option<String>,
    /// Composition instruction file (default: configs/prompts/caption_compose.v1.txt, built in).
    #[arg(long)]
    pub compose_prompt: Option<PathBuf>,
    /// Caption output folder (default: <work>/captions).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn parse_kind(text: &str) -> Result<ObjectKind, String> {
    match text {
        "person" => Ok(ObjectKind::Person),
        "vehicle" => Ok(ObjectKind::Vehicle),
        other => Err(format!("expected person or vehicle, got {other:?}")),
    }
}

impl PipelineArgs {
    /// The library options: given values over the library defaults.
    pub fn options(&self) -> PipelineOptions {
        let d = PipelineOptions::new(self.work.clone());
        PipelineOptions {
            dataset: self.dataset.clone(),
            kind: self.kind.unwrap_or(d.kind),
            models: self.models.clone(),
            base_url: self.base_url.clone().unwrap_or(d.base_url),
            api_key_env: self.api_key_env.clone().unwrap_or(d.api_key_env),
            concurrency: self.concurrency.unwrap_or(d.concurrency),
            timeout_s: self.timeout_s.unwrap_or(d.timeout_s),
            max_attempts: self.max_attempts.unwrap_or(d.max_attempts),
            backoff_s: self.backoff_s.unwrap_or(d.backoff_s),
            backoff_max_s: self.backoff_max_s.unwrap_or(d.backoff_max_s),
            prompt: self.prompt.clone(),
            rules: self.rules.clone(),
            threshold: self.threshold,
            compose_model: self.compose_model.clone(),
            compose_prompt: self.compose_prompt.clone(),
            out: self.out.clone(),
            work: d.work,
        }
    }
}

/// The caption pipeline's subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum CaptionCommand {
    /// Ask every model for confidence-scored attributes of every image (cached, resumable).
    Attributes(PipelineArgs),
    /// Merge models per attribute, complement across modalities, write the unknown-rate report.
    Merge(PipelineArgs),
    /// Compose captions in the NEXT template (optionally rewritten by an LLM).
    Compose(PipelineArgs),
    /// attributes, merge and compose in one go.
    All(PipelineArgs),
}

impl CaptionCommand {
    /// The stage and its options.
    pub fn stage(&self) -> (CaptionStage, PipelineOptions) {
        match self {
            CaptionCommand::Attributes(a) => (CaptionStage::Attributes, a.options()),
            CaptionCommand::Merge(a) => (CaptionStage::Merge, a.options()),
            CaptionCommand::Compose(a) => (CaptionStage::Compose, a.options()),
            CaptionCommand::All(a) => (CaptionStage::All, a.options()),
        }
    }

    /// Run the stage.
    pub fn run(&self) -> Result<(), next_reid::captions::CaptionError> {
        let (stage, options) = self.stage();
        next_reid::captions::run_caption_stage(stage, &options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: CaptionCommand,
    }

    #[test]
    fn command_line_parses() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "next",
            "all",
            "--work",
            "w",
            "--dataset",
            "d",
            "--kind",
            "vehicle",
            "--model",
            "gpt-4o",
            "--model",
            "qwen-vl",
            "--threshold",
            "0.4",
        ])
        .unwrap();
        let (stage, options) = cli.command.stage();
        assert_eq!(stage, CaptionStage::All);
        assert_eq!(options.models, ["gpt-4o", "qwen-vl"]);
        assert_eq!(
            (options.kind, options.threshold, options.concurrency),
            (ObjectKind::Vehicle, Some(0.4), 4)
        );
        assert!(
            Cli::try_parse_from(["next", "merge"]).is_err(),
            "--work is required"
        );
        assert!(Cli::try_parse_from(["next", "merge", "--work", "w", "--kind", "cat"]).is_err());
    }
}
