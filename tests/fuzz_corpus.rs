//! Replays the committed fuzz inputs (`fuzz/seeds/<target>/` and every crash the fuzzer found,
//! minimised, in `fuzz/regressions/<target>/`) through the same parser calls as the cargo-fuzz
//! targets, so an ordinary `cargo test` keeps every crash fixed without a nightly toolchain.
//! A target that panics on an input fails this test and names the input.

#[allow(dead_code)]
#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for kind in ["seeds", "regressions"] {
        if let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) {
            files.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    files.sort();
    files
}

#[test]
fn every_committed_fuzz_input_is_handled_without_a_panic() {
    let mut replayed = 0;
    for (target, body) in harness::TARGETS {
        let files = inputs(target);
        assert!(!files.is_empty(), "no seeds for fuzz target {target}");
        for file in files {
            let data = std::fs::read(&file).expect("readable fuzz input");
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(
                outcome.is_ok(),
                "fuzz target {target} panics on {}",
                file.display()
            );
            replayed += 1;
        }
    }
    assert!(replayed >= harness::TARGETS.len());
}
