//! Tokenizer: exact ids of transformers' CLIPTokenizer on real captions, CLIP's padding and
//! truncation rules, sentence splitting.

mod common;

use std::io::Read;

use common::repo_root;
use next_clip::{split_sentences, ClipTokenizer, CONTEXT_LENGTH, PAD_ID};
use serde_json::Value;

/// Must match CAPTIONS_PER_FILE in tests/fixtures/make_clip_fixtures.py.
const CAPTIONS_PER_FILE: usize = 120;

/// The first CAPTIONS_PER_FILE captions of every caption file, files in sorted order.
fn caption_sample() -> Vec<String> {
    let root = repo_root().join("tests/data/next-captions");
    let mut datasets: Vec<_> = std::fs::read_dir(&root)
        .expect("caption folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    datasets.sort();
    let mut texts = Vec::new();
    for dataset in datasets {
        let mut files: Vec<_> = std::fs::read_dir(&dataset)
            .expect("dataset")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for file in files {
            let entries: Value =
                serde_json::from_slice(&std::fs::read(&file).expect("captions")).expect("json");
            let entries = entries.as_array().expect("a JSON list");
            for entry in entries.iter().take(CAPTIONS_PER_FILE) {
                texts.push(
                    entry["description"]
                        .as_str()
                        .expect("description")
                        .to_string(),
                );
            }
        }
    }
    texts
}

fn expected_ids() -> Vec<Vec<u32>> {
    let path = repo_root().join("tests/fixtures/clip/tokenizer_ids.txt.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("ids fixture"))
        .read_to_string(&mut text)
        .expect("gzip text");
    text.lines()
        .map(|line| {
            line.split(' ')
                .map(|id| id.parse().expect("an id"))
                .collect()
        })
        .collect()
}

#[test]
fn ids_equal_transformers_clip_tokenizer_on_2160_real_captions() {
    let tokenizer = ClipTokenizer::builtin().expect("builtin tokenizer");
    let texts = caption_sample();
    let expected = expected_ids();
    assert_eq!(texts.len(), expected.len());
    assert!(texts.len() >= 2000, "only {} captions", texts.len());
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let encoded = tokenizer.encode_batch(&refs).expect("encode");
    let mut truncated = 0;
    for ((text, want), got) in texts.iter().zip(&expected).zip(&encoded) {
        let n = want.len();
        assert_eq!(&got.ids[..n], &want[..], "ids of {text:?}");
        assert!(
            got.ids[n..].iter().all(|&id| id == PAD_ID),
            "padding of {text:?}"
        );
        assert_eq!(got.len(), n);
        truncated += usize::from(got.truncated);
    }
    eprintln!("{} captions match, {truncated} truncated", texts.len());
}

#[test]
fn short_text_is_wrapped_lowercased_and_padded() {
    let tokenizer = ClipTokenizer::builtin().expect("builtin tokenizer");
    let a = tokenizer.encode("A  Man\tIN red.").expect("encode");
    let b = tokenizer.encode("a man in red.").expect("encode");
    assert_eq!(a, b, "case and whitespace are folded");
    assert_eq!(a.ids.len(), CONTEXT_LENGTH);
    assert_eq!(a.attention_mask.len(), CONTEXT_LENGTH);
    assert_eq!(a.ids[0], 49406);
    let n = a.len();
    assert_eq!(a.ids[n - 1], 49407);
    assert!(!a.truncated);
    assert!(a.ids[n..].iter().all(|&id| id == PAD_ID));
    assert!(a.attention_mask[..n].iter().all(|&m| m == 1));
    assert!(a.attention_mask[n..].iter().all(|&m| m == 0));
    let empty = tokenizer.encode("").expect("encode");
    assert_eq!(&empty.ids[..3], &[49406, 49407, PAD_ID]);
}

#[test]
fn long_text_is_cut_to_77_with_eot_last() {
    let tokenizer = ClipTokenizer::builtin().expect("builtin tokenizer");
    let long = "person walking ".repeat(60);
    let t = tokenizer.encode(&long).expect("encode");
    assert!(t.truncated);
    assert_eq!(t.ids.len(), CONTEXT_LENGTH);
    assert_eq!(t.ids[0], tokenizer.start_id());
    assert_eq!(t.ids[CONTEXT_LENGTH - 1], tokenizer.end_id());
    assert!(t.attention_mask.iter().all(|&m| m == 1));
    // Exactly 75 text tokens fit: no truncation flag at the limit.
    let fits = "a ".repeat(75);
    let t = tokenizer.encode(&fits).expect("encode");
    assert!(!t.truncated);
    assert_eq!(t.len(), CONTEXT_LENGTH);
    let over = "a ".repeat(76);
    assert!(tokenizer.encode(&over).expect("encode").truncated);
}

#[test]
fn from_file_loads_the_committed_json_and_names_a_missing_file() {
    let path = repo_root().join("assets/clip/tokenizer.json");
    let from_file = ClipTokenizer::from_file(&path).expect("tokenizer.json");
    assert_eq!(from_file.vocab_size(), 49408);
    let err = ClipTokenizer::from_file(&repo_root().join("no/such/tokenizer.json")).unwrap_err();
    assert!(err.to_string().contains("no/such/tokenizer.json"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("tokenizer.json");
    std::fs::write(&bad, b"{\"not\": \"a tokenizer\"}").expect("write");
    let err = ClipTokenizer::from_file(&bad).unwrap_err();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
}

#[test]
fn captions_split_into_sentences() {
    let caption =
        "An adult female seen from the back. She is holding a bottle. The image appears blurry.";
    assert_eq!(
        split_sentences(caption),
        vec![
            "An adult female seen from the back",
            "She is holding a bottle",
            "The image appears blurry"
        ]
    );
}

#[test]
fn a_tokenizer_with_ids_beyond_the_text_vocabulary_is_refused_at_load_naming_the_key() {
    let dir = common::tiny_dir();
    let config = next_clip::ClipConfig::from_hf_dir(&dir).expect("tiny config");
    let config_file = dir.join("config.json");
    // The built-in tokenizer (49,408 ids) against the tiny model's 1,000-id embedding table: this
    // used to panic inside Burn's embedding at the first caption.
    let builtin = ClipTokenizer::builtin().expect("builtin tokenizer");
    let err = builtin
        .check_fits(&config.text, &config_file)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config.json")
            && err.contains("text_config.vocab_size")
            && err.contains("1000")
            && err.contains("49408"),
        "{err}"
    );
    // The fixture's own tokenizer.json (tests/fixtures/make_tiny_tokenizer.py) fits, and is
    // the one picked for the folder; every id of a real caption is inside the vocabulary.
    let tokenizer = ClipTokenizer::for_model(Some(&dir), &config.text, &config_file)
        .expect("the fixture's tokenizer fits its model");
    assert_eq!(tokenizer.max_id(), 999);
    let ids = tokenizer
        .encode("A woman in a red coat carries a black bag.")
        .expect("encode")
        .ids;
    assert!(ids.iter().all(|&id| id < 1000), "{ids:?}");
    // Another end token than the one the text tower pools at is refused too.
    let mut other_eos = config.text.clone();
    other_eos.eos_token_id = 997;
    let err = tokenizer
        .check_fits(&other_eos, &config_file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("text_config.eos_token_id"), "{err}");
}
