#!/usr/bin/env python3
"""Build a Hugging Face `tokenizer.json` for CLIP from the BPE merges file.

Uses only the Python standard library. Run from the repository root:

    python3 assets/clip/make_tokenizer_json.py \
        assets/clip/bpe_simple_vocab_16e6.txt.gz assets/clip/tokenizer.json

Vocabulary layout (49,408 entries, as in OpenAI CLIP):
  0..255        the 256 byte symbols (GPT-2 byte-to-unicode table, in table order)
  256..511      the same symbols with the end-of-word suffix `</w>`
  512..49405    one entry per merge, for the first 48,894 merges of the file
  49406, 49407  `<|startoftext|>` and `<|endoftext|>`
Text rules: NFC, whitespace runs folded to one space, lower-case, CLIP's split regex,
byte-level symbols, `</w>` appended to the last symbol of every word.
"""

import gzip
import json
import sys

NUM_MERGES = 49152 - 256 - 2
START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
SPLIT_PATTERN = (
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
)


def byte_symbols():
    """The GPT-2 byte-to-unicode table as a list of symbols in table order."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\u00a1"), ord("\u00ac") + 1))
        + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    )
    byte_values = printable[:]
    code_points = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in byte_values:
            byte_values.append(byte)
            code_points.append(256 + extra)
            extra += 1
    return [chr(c) for c in code_points]


def read_merges(path):
    """The first NUM_MERGES merge pairs of the gzipped merges file (its first line is a header)."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    pairs = [tuple(line.split()) for line in lines[1 : NUM_MERGES + 1]]
    for number, pair in enumerate(pairs, start=2):
        if len(pair) != 2:
            raise SystemExit(f"{path}: line {number}: expected two symbols, found {pair!r}")
    if len(pairs) != NUM_MERGES:
        raise SystemExit(f"{path}: expected {NUM_MERGES} merges, found {len(pairs)}")
    return pairs


def build(merges_path):
    """The tokenizer.json document as a Python dictionary."""
    symbols = byte_symbols()
    merges = read_merges(merges_path)
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(p) for p in merges]
    tokens += [START_TOKEN, END_TOKEN]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise SystemExit(f"{merges_path}: duplicate vocabulary entries")

    def special(token):
        return {
            "id": vocab[token],
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": True,
            "special": True,
        }

    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special(START_TOKEN), special(END_TOKEN)],
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "NFC"},
                {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
                {"type": "Lowercase"},
            ],
        },
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": SPLIT_PATTERN},
                    "behavior": "Removed",
                    "invert": True,
                },
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": True,
                    "use_regex": False,
                },
            ],
        },
        "post_processor": {
            "type": "RobertaProcessing",
            "sep": [END_TOKEN, vocab[END_TOKEN]],
            "cls": [START_TOKEN, vocab[START_TOKEN]],
            "trim_offsets": False,
            "add_prefix_space": False,
        },
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": True,
            "trim_offsets": True,
            "use_regex": True,
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": END_TOKEN,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "</w>",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [" ".join(p) for p in merges],
        },
    }


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: make_tokenizer_json.py BPE_MERGES.txt.gz OUT/tokenizer.json")
    document = build(sys.argv[1])
    with open(sys.argv[2], "w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, separators=(",", ":"))
        handle.write("\n")


if __name__ == "__main__":
    main()
