//! A CLIP BPE tokenizer cut down to the tokens a corpus needs, so that a small model trained on
//! that corpus carries a token-embedding table of a few hundred rows instead of 49,408.
//!
//! Kept: the 512 byte-level base tokens (every text still tokenizes), every token the corpus
//! produces, every intermediate token of the merges that build them, and the two special tokens;
//! ids are renumbered densely in the original order. Kept merges are those whose two parts and
//! result are all kept. Every merge the full tokenizer applies to a corpus word builds a kept
//! token from kept parts, so it is kept; a dropped merge was never the lowest-ranked one present
//! (it would have been applied), so on the corpus both tokenizers give the same token strings.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde_json::Value;

use crate::error::ClipError;
use crate::tokenizer::{ClipTokenizer, END_TOKEN, START_TOKEN};

/// Byte-level base tokens of CLIP's vocabulary: 256 bytes and the same 256 with `</w>`.
const BASE_TOKENS: usize = 512;

/// A restricted tokenizer: its `tokenizer.json` bytes and the ids a text config needs.
#[derive(Debug, Clone)]
pub struct RestrictedVocab {
    /// The `tokenizer.json` to write next to the model.
    pub json: Vec<u8>,
    /// Number of token ids (the text tower's `vocab_size`).
    pub vocab_size: usize,
    /// Id of `<|startoftext|>`.
    pub start_id: u32,
    /// Id of `<|endoftext|>`.
    pub end_id: u32,
}

fn bad(message: impl Into<String>) -> ClipError {
    ClipError::Tokenizer {
        path: Path::new("<builtin assets/clip/tokenizer.json>").to_path_buf(),
        message: message.into(),
    }
}

/// The two parts of a merge entry (`"a b"` or `["a", "b"]`).
fn merge_parts(entry: &Value) -> Option<(String, String)> {
    match entry {
        Value::String(s) => s
            .split_once(' ')
            .map(|(a, b)| (a.to_string(), b.to_string())),
        Value::Array(pair) => match (pair.first()?.as_str(), pair.get(1)?.as_str()) {
            (Some(a), Some(b)) => Some((a.to_string(), b.to_string())),
            _ => None,
        },
        _ => None,
    }
}

/// Restrict the built-in CLIP tokenizer to what `texts` need (see the module documentation).
pub fn restricted_vocab(texts: &[&str]) -> Result<RestrictedVocab, ClipError> {
    let full = ClipTokenizer::builtin()?;
    let mut root: Value = serde_json::from_slice(crate::tokenizer::builtin_tokenizer_json())
        .map_err(|e| bad(e.to_string()))?;
    let model = root
        .get_mut("model")
        .ok_or_else(|| bad("no `model` section"))?;
    let vocab: HashMap<String, u32> = serde_json::from_value(
        model
            .get("vocab")
            .cloned()
            .ok_or_else(|| bad("no model.vocab"))?,
    )
    .map_err(|e| bad(format!("model.vocab: {e}")))?;
    let merges: Vec<Value> = model
        .get("merges")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| bad("no model.merges"))?;
    let mut parts_of: HashMap<String, (String, String)> = HashMap::new();
    for entry in &merges {
        let (a, b) = merge_parts(entry).ok_or_else(|| bad(format!("bad merge {entry}")))?;
        parts_of.entry(format!("{a}{b}")).or_insert((a, b));
    }

    // Tokens the corpus produces, closed under "the parts of the merge that built it".
    let mut kept: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = Vec::new();
    for text in texts {
        let encoding = full
            .inner()
            .encode(*text, false)
            .map_err(|e| bad(format!("encoding {text:?}: {e}")))?;
        stack.extend(encoding.get_tokens().iter().cloned());
    }
    while let Some(token) = stack.pop() {
        if kept.insert(token.clone()) {
            if let Some((a, b)) = parts_of.get(&token) {
                stack.push(a.clone());
                stack.push(b.clone());
            }
        }
    }
    for special in [START_TOKEN, END_TOKEN] {
        kept.insert(special.to_string());
    }

    let mut by_id: Vec<(&String, u32)> = vocab.iter().map(|(t, &id)| (t, id)).collect();
    by_id.sort_by_key(|&(_, id)| id);
    let mut new_vocab = serde_json::Map::new();
    let mut new_id: HashMap<&str, u32> = HashMap::new();
    for (token, id) in by_id {
        if (id as usize) < BASE_TOKENS || kept.contains(token) {
            let next = new_id.len() as u32;
            new_id.insert(token, next);
            new_vocab.insert(token.clone(), Value::from(next));
        }
    }
    let new_merges: Vec<Value> = merges
        .iter()
        .filter(|entry| {
            merge_parts(entry).is_some_and(|(a, b)| {
                let whole = format!("{a}{b}");
                [a.as_str(), b.as_str(), whole.as_str()]
                    .iter()
                    .all(|t| new_id.contains_key(t))
            })
        })
        .cloned()
        .collect();
    let id_of = |token: &str| {
        new_id
            .get(token)
            .copied()
            .ok_or_else(|| bad(format!("no {token} in the vocabulary")))
    };
    let (start_id, end_id) = (id_of(START_TOKEN)?, id_of(END_TOKEN)?);
    let vocab_size = new_id.len();

    model["vocab"] = Value::Object(new_vocab);
    model["merges"] = Value::Array(new_merges);
    if let Some(added) = root.get_mut("added_tokens").and_then(Value::as_array_mut) {
        for token in added.iter_mut() {
            let content = token.get("content").and_then(Value::as_str).unwrap_or("");
            let id = id_of(content)?;
            token["id"] = Value::from(id);
        }
    }
    if let Some(post) = root.get_mut("post_processor") {
        for (key, token, id) in [("cls", START_TOKEN, start_id), ("sep", END_TOKEN, end_id)] {
            if post.get(key).is_some() {
                post[key] = serde_json::json!([token, id]);
            }
        }
    }
    let json = serde_json::to_vec(&root).map_err(|e| bad(e.to_string()))?;
    Ok(RestrictedVocab {
        json,
        vocab_size,
        start_id,
        end_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_tokenizer_gives_the_full_tokens_on_its_corpus_with_a_small_vocabulary() {
        let corpus = [
            "An adult female seen from the front during daytime in bright lighting.",
            "She is wearing a striped jacket with trousers, paired with casual sneakers.",
            "Her body appears warm against the background. The image appears blurry.",
        ];
        let small = restricted_vocab(&corpus).unwrap();
        assert!(small.vocab_size < 1_000, "{}", small.vocab_size);
        let restricted = ClipTokenizer::from_json(&small.json, Path::new("<restricted>")).unwrap();
        let full = ClipTokenizer::builtin().unwrap();
        assert_eq!(restricted.start_id(), small.start_id);
        assert_eq!(restricted.end_id(), small.end_id);
        assert_eq!(restricted.vocab_size(), small.vocab_size);
        for text in corpus {
            let a = full.inner().encode(text, false).unwrap();
            let b = restricted.inner().encode(text, false).unwrap();
            assert_eq!(a.get_tokens(), b.get_tokens(), "{text}");
            assert!(a.get_tokens().len() > 5);
        }
        // A word outside the corpus still tokenizes (into smaller pieces), never to nothing.
        let other = restricted.encode("zebra").unwrap();
        assert!(other.attention_mask.iter().sum::<u32>() > 2);
    }
}
