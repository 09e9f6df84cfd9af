//! Errors of the caption pipeline.

use std::path::PathBuf;

/// Everything that can go wrong in the caption pipeline.
#[derive(Debug, thiserror::Error)]
pub enum CaptionError {
    /// A file could not be read or written (the message names the file).
    #[error(transparent)]
    File(#[from] next_common::FileError),
    /// A JSON file did not have the expected shape.
    #[error("{path}: expected {expected}: {source}")]
    Json {
        /// The file concerned.
        path: PathBuf,
        /// What the file should contain.
        expected: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A dataset folder does not have the expected layout.
    #[error("dataset {path}: {message}")]
    Dataset {
        /// The folder concerned.
        path: PathBuf,
        /// What was expected and not found.
        message: String,
    },
    /// A request to the chat-completions endpoint failed for good.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Some images could not be processed; they are listed in the named report file.
    #[error("{count} image requests failed; see {report}")]
    Failures {
        /// How many (image, model) requests failed.
        count: usize,
        /// The JSON report listing each failure.
        report: PathBuf,
    },
}

/// A failed chat-completions exchange.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an HTTP error status.
    #[error("HTTP {status} from {url}: {body}")]
    Status {
        /// The endpoint.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// Network failure: refused connection, reset, timeout.
    #[error("transport error talking to {url}: {message}")]
    Transport {
        /// The endpoint.
        url: String,
        /// What happened.
        message: String,
    },
    /// The response was not a chat-completions object.
    #[error("unexpected response from {url}: {message}")]
    Protocol {
        /// The endpoint.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The model's answer could not be read as the attribute JSON.
    #[error("model answer rejected: {0}")]
    Answer(#[from] ExtractError),
}

impl ClientError {
    /// Whether retrying the same request may succeed (429, 5xx, timeouts, resets, bad answers).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Status { status, .. } => {
                *status == 429 || *status == 408 || *status >= 500
            }
            ClientError::Transport { .. } => true,
            ClientError::Protocol { .. } => true,
            ClientError::Answer(_) => true,
        }
    }
}

/// Why a model answer could not be turned into an attribute set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExtractError {
    /// No JSON object was found in the answer.
    #[error("no JSON object found in the answer: {0:?}")]
    NoJson(String),
    /// A JSON object was found but did not parse.
    #[error("malformed JSON in the answer: {0}")]
    Malformed(String),
    /// The JSON did not match the attribute schema.
    #[error("attribute {attribute:?}: {message}")]
    Schema {
        /// The offending attribute key.
        attribute: String,
        /// What was wrong.
        message: String,
    },
}

/// Helper: wrap a serde_json error for a named file.
pub(crate) fn json_error(
    path: impl Into<PathBuf>,
    expected: &'static str,
    source: serde_json::Error,
) -> CaptionError {
    CaptionError::Json {
        path: path.into(),
        expected,
        source,
    }
}
