//! CLIP tokenization on a Hugging Face `tokenizer.json`, with CLIP's fixed context of 77 tokens.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Device, Int, Tensor, TensorData};
use tokenizers::Tokenizer;

use crate::config::ClipTextConfig;
use crate::error::ClipError;

/// CLIP's context length: every tokenized text is exactly this long.
pub const CONTEXT_LENGTH: usize = 77;

/// Id used to pad after the end-of-text token (as OpenAI CLIP does).
pub const PAD_ID: u32 = 0;

/// Start-of-text token.
pub const START_TOKEN: &str = "<|startoftext|>";

/// End-of-text token.
pub const END_TOKEN: &str = "<|endoftext|>";

/// The committed `assets/clip/tokenizer.json`, built from OpenAI's BPE merges.
static BUILTIN_TOKENIZER_JSON: &[u8] = include_bytes!("../../../assets/clip/tokenizer.json");

/// The bytes of the built-in `tokenizer.json`.
pub(crate) fn builtin_tokenizer_json() -> &'static [u8] {
    BUILTIN_TOKENIZER_JSON
}

/// A text as CLIP token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedText {
    /// `CONTEXT_LENGTH` ids: start-of-text, the text, end-of-text, then `PAD_ID` padding.
    pub ids: Vec<u32>,
    /// 1 for the start/text/end tokens, 0 for padding.
    pub attention_mask: Vec<u32>,
    /// Whether the text was cut to fit (its end-of-text token is then the last id).
    pub truncated: bool,
}

impl TokenizedText {
    /// Number of real tokens (start and end tokens included).
    pub fn len(&self) -> usize {
        self.attention_mask.iter().filter(|&&m| m != 0).count()
    }

    /// Whether there are no real tokens (never the case for encoder output).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Stack tokenized texts into `(input_ids, attention_mask)` tensors `[N, CONTEXT_LENGTH]`, the
/// inputs of [`crate::ClipText::forward`].
pub fn batch_tensors<B: Backend>(
    texts: &[TokenizedText],
    device: &Device<B>,
) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
    let n = texts.len();
    let ids: Vec<i64> = texts
        .iter()
        .flat_map(|t| t.ids.iter().map(|&i| i64::from(i)))
        .collect();
    let mask: Vec<i64> = texts
        .iter()
        .flat_map(|t| t.attention_mask.iter().map(|&m| i64::from(m)))
        .collect();
    (
        Tensor::from_data(TensorData::new(ids, [n, CONTEXT_LENGTH]), device),
        Tensor::from_data(TensorData::new(mask, [n, CONTEXT_LENGTH]), device),
    )
}

/// CLIP's BPE tokenizer (lower-case, whitespace folded, `[SOT] ... [EOT]`, 77 tokens).
#[derive(Clone)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    start_id: u32,
    end_id: u32,
    /// The file it was read from (`<builtin ...>` for the embedded one).
    source: PathBuf,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("start_id", &self.start_id)
            .field("end_id", &self.end_id)
            .finish()
    }
}

impl ClipTokenizer {
    /// Load a Hugging Face `tokenizer.json` of a CLIP checkpoint.
    pub fn from_file(path: &Path) -> Result<Self, ClipError> {
        if !path.is_file() {
            return Err(ClipError::MissingFile {
                path: path.to_path_buf(),
                expected: "a Hugging Face CLIP tokenizer.json",
            });
        }
        let bytes = next_common::read_file(path)?;
        Self::from_bytes(&bytes, path)
    }

    /// A tokenizer from the bytes of a `tokenizer.json`; `name` names it in errors.
    pub fn from_json(bytes: &[u8], name: &Path) -> Result<Self, ClipError> {
        Self::from_bytes(bytes, name)
    }

    /// The tokenizer built from OpenAI's BPE merges and embedded in the crate.
    pub fn builtin() -> Result<Self, ClipError> {
        Self::from_bytes(
            BUILTIN_TOKENIZER_JSON,
            Path::new("<builtin assets/clip/tokenizer.json>"),
        )
    }

    fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ClipError> {
        let error = |message: String| ClipError::Tokenizer {
            path: PathBuf::from(path),
            message,
        };
        let mut inner = Tokenizer::from_bytes(bytes).map_err(|e| error(e.to_string()))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| error(e.to_string()))?;
        let id = |token: &str| {
            inner
                .token_to_id(token)
                .ok_or_else(|| error(format!("no {token} token in the vocabulary")))
        };
        let start_id = id(START_TOKEN)?;
        let end_id = id(END_TOKEN)?;
        Ok(Self {
            inner,
            start_id,
            end_id,
            source: path.to_path_buf(),
        })
    }

    /// The tokenizer of a CLIP model: `dir/tokenizer.json` when the model comes from a Hugging
    /// Face folder that has one, the built-in one otherwise; checked against the model's text
    /// config with [`ClipTokenizer::check_fits`] (`config_file` names that config in errors).
    pub fn for_model(
        dir: Option<&Path>,
        text: &ClipTextConfig,
        config_file: &Path,
    ) -> Result<Self, ClipError> {
        let tokenizer = match dir.map(|d| d.join("tokenizer.json")) {
            Some(file) if file.is_file() => Self::from_file(&file)?,
            _ => Self::builtin()?,
        };
        tokenizer.check_fits(text, config_file)?;
        Ok(tokenizer)
    }

    /// Error unless every id this tokenizer produces has a row in the text tower's embedding
    /// table (`text_config.vocab_size`) and its end token is the one the text tower pools at
    /// (`text_config.eos_token_id`); `config_file` names the model config in errors.
    pub fn check_fits(&self, text: &ClipTextConfig, config_file: &Path) -> Result<(), ClipError> {
        let mismatch = |key: &'static str, config_value: usize, tokenizer_value: usize| {
            Err(ClipError::TokenizerMismatch {
                config: config_file.to_path_buf(),
                tokenizer: self.source.clone(),
                key,
                config_value,
                tokenizer_value,
            })
        };
        let needed = self.max_id() as usize + 1;
        if needed > text.vocab_size {
            return mismatch("text_config.vocab_size", text.vocab_size, needed);
        }
        let eos = text.effective_eos_token_id();
        if self.end_id as usize != eos {
            return mismatch("text_config.eos_token_id", eos, self.end_id as usize);
        }
        Ok(())
    }

    /// The highest id this tokenizer can produce (special tokens included).
    pub fn max_id(&self) -> u32 {
        self.inner
            .get_vocab(true)
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// The wrapped Hugging Face tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Vocabulary size, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Id of `<|startoftext|>`.
    pub fn start_id(&self) -> u32 {
        self.start_id
    }

    /// Id of `<|endoftext|>`.
    pub fn end_id(&self) -> u32 {
        self.end_id
    }

    /// Tokenize one text: `[SOT] text [EOT]`, cut to 77 with the end token kept last, padded
    /// with `PAD_ID`.
    pub fn encode(&self, text: &str) -> Result<TokenizedText, ClipError> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| ClipError::Encode {
                text: text.chars().take(60).collect(),
                message: e.to_string(),
            })?;
        let body = encoding.get_ids();
        let room = CONTEXT_LENGTH - 2;
        let truncated = body.len() > room;
        let mut ids = Vec::with_capacity(CONTEXT_LENGTH);
        ids.push(self.start_id);
        ids.extend_from_slice(&body[..body.len().min(room)]);
        ids.push(self.end_id);
        let real = ids.len();
        ids.resize(CONTEXT_LENGTH, PAD_ID);
        let attention_mask = (0..CONTEXT_LENGTH).map(|i| u32::from(i < real)).collect();
        Ok(TokenizedText {
            ids,
            attention_mask,
            truncated,
        })
    }

    /// Tokenize several texts.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<TokenizedText>, ClipError> {
        texts.iter().map(|text| self.encode(text)).collect()
    }
}

/// Split a caption into sentences on '.', trimmed, empty pieces dropped.
pub fn split_sentences(caption: &str) -> Vec<String> {
    caption
        .split('.')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_tensors_stack_ids_and_masks() {
        let tokenizer = ClipTokenizer::builtin().expect("builtin");
        let texts = tokenizer
            .encode_batch(&["a red car", "a man"])
            .expect("encode");
        let (ids, mask) = batch_tensors::<burn::backend::Flex>(&texts, &Default::default());
        assert_eq!(ids.dims(), [2, CONTEXT_LENGTH]);
        let ids = ids
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .expect("ints");
        let mask = mask
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .expect("ints");
        assert_eq!(ids[CONTEXT_LENGTH], i64::from(tokenizer.start_id()));
        assert_eq!(
            mask.iter().sum::<i64>() as usize,
            texts[0].len() + texts[1].len()
        );
    }

    #[test]
    fn sentences_are_trimmed_and_non_empty() {
        let s = split_sentences("  A man in red.  He carries a bag..  Blurry. ");
        assert_eq!(s, vec!["A man in red", "He carries a bag", "Blurry"]);
        assert!(split_sentences(" . .. ").is_empty());
    }
}
