//! A backend that cannot start is a clear error before any work, never a panic in its driver.

use std::process::Command;

#[test]
fn an_unusable_backend_is_a_clear_error_naming_the_usable_ones() {
    let backend = if cfg!(feature = "cuda") {
        "wgpu"
    } else {
        "cuda"
    };
    let out = Command::new(env!("CARGO_BIN_EXE_next"))
        .args(["--backend", backend, "info"])
        .output()
        .expect("the next binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        // Only where the backend is compiled in and a device exists (not on CI's machines).
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(backend), "{stderr}");
    assert!(
        stderr.contains("usable backends:") && stderr.contains("flex"),
        "{stderr}"
    );
}
