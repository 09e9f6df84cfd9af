//! Issue 17: a GPU backend that cannot start is found by a probe, with a clear error saying
//! what is missing and which backends are usable, instead of a panic inside cudarc or wgpu.

use next_reid::backend::{
    compiled_backends, cuda_driver_devices, probe, probe_cuda, probe_wgpu, BackendError,
};

/// Whether the backend's feature is compiled into this build.
fn compiled(backend: &str) -> bool {
    compiled_backends().contains(&backend)
}

/// Whether this machine has a CUDA driver library that reports a device.
fn cuda_here() -> bool {
    cuda_driver_devices().is_ok()
}

#[test]
fn the_cpu_backend_always_starts() {
    assert!(probe("flex").is_ok());
    assert!(compiled_backends().contains(&"flex"));
}

#[test]
fn cuda_probe_says_what_is_missing_and_what_is_usable() {
    match probe_cuda() {
        Ok(devices) => assert!(compiled("cuda") && devices > 0),
        Err(BackendError::NotCompiled { backend, usable }) => {
            assert!(!compiled("cuda"));
            assert_eq!(backend, "cuda");
            assert!(usable.contains("flex"), "{usable}");
            let text = probe("cuda").unwrap_err().to_string();
            assert!(
                text.contains("not compiled") && text.contains("--features cuda"),
                "{text}"
            );
        }
        Err(e @ BackendError::NoCudaDriver { .. }) => {
            assert!(compiled("cuda") && !cuda_here());
            let text = e.to_string();
            assert!(
                text.contains("no usable CUDA driver")
                    && text.contains("libcuda")
                    && text.contains("usable backends: ")
                    && text.contains("flex"),
                "{text}"
            );
        }
        Err(other) => panic!("unexpected probe error: {other}"),
    }
}

#[test]
fn the_driver_probe_reports_a_missing_library_by_name() {
    // Compiled in every build; on a machine without the NVIDIA driver it names the library.
    match cuda_driver_devices() {
        Ok(devices) => assert!(devices > 0),
        Err(reason) => assert!(
            reason.contains("libcuda") || reason.contains("nvcuda") || reason.contains("cu"),
            "{reason}"
        ),
    }
}

#[test]
fn wgpu_probe_says_what_is_missing_and_what_is_usable() {
    match probe_wgpu() {
        Ok(adapter) => assert!(compiled("wgpu") && !adapter.is_empty()),
        Err(BackendError::NotCompiled { backend, usable }) => {
            assert!(!compiled("wgpu"));
            assert_eq!(backend, "wgpu");
            assert!(usable.contains("flex"), "{usable}");
        }
        Err(e @ BackendError::NoWgpuAdapter { .. }) => {
            assert!(compiled("wgpu"));
            let text = e.to_string();
            assert!(
                text.contains("no wgpu adapter") && text.contains("flex"),
                "{text}"
            );
        }
        Err(other) => panic!("unexpected probe error: {other}"),
    }
}
