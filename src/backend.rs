//! Backend selection: the only place where next-reid names concrete Burn backends.
//!
//! Library crates are generic over `B: Backend`; binaries, examples, benches and tests pick one of
//! the aliases below. `flex` (CPU) is always compiled; `wgpu` and `cuda` come with their features.

/// CPU inference backend (pure-Rust SIMD, multi-threaded).
pub type Cpu = burn::backend::Flex;
/// CPU training backend (autodiff over [`Cpu`]).
pub type CpuTrain = burn::backend::Autodiff<Cpu>;
/// Device of the CPU backend.
pub type CpuDevice = burn::backend::flex::FlexDevice;

/// Portable GPU inference backend (Vulkan/Metal/DX12 through wgpu).
#[cfg(feature = "wgpu")]
pub type Wgpu = burn_wgpu::Wgpu;
/// Training on wgpu (autodiff over [`Wgpu`]).
#[cfg(feature = "wgpu")]
pub type WgpuTrain = burn::backend::Autodiff<Wgpu>;

/// NVIDIA CUDA backend (training and inference).
#[cfg(feature = "cuda")]
pub type Cuda = burn_cuda::Cuda;
/// CUDA training backend (autodiff over [`Cuda`]).
#[cfg(feature = "cuda")]
pub type CudaTrain = burn::backend::Autodiff<Cuda>;

/// Names of the backends compiled into this build, in preference order for training.
pub fn compiled_backends() -> Vec<&'static str> {
    [
        (cfg!(feature = "cuda"), "cuda"),
        (cfg!(feature = "wgpu"), "wgpu"),
        (true, "flex"),
    ]
    .into_iter()
    .filter_map(|(compiled, name)| compiled.then_some(name))
    .collect()
}

/// Why a backend cannot be used on this machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The backend's cargo feature was not enabled in this build.
    #[error("the {backend} backend is not compiled into this build (rebuild with `--features {backend}`); usable backends: {usable}")]
    NotCompiled {
        /// The backend asked for.
        backend: &'static str,
        /// The backends that can be used instead, comma separated.
        usable: String,
    },
    /// No CUDA driver library could be loaded, or it reports no device.
    #[error("no usable CUDA driver: {reason}; usable backends: {usable}")]
    NoCudaDriver {
        /// What the probe found.
        reason: String,
        /// The backends that can be used instead, comma separated.
        usable: String,
    },
    /// wgpu found no adapter (no Vulkan, Metal or DX12 device or driver).
    #[error("no wgpu adapter found: {reason}; usable backends: {usable}")]
    NoWgpuAdapter {
        /// What the probe found.
        reason: String,
        /// The backends that can be used instead, comma separated.
        usable: String,
    },
}

/// The backends of this build other than `failed` that can start here, comma separated: what an
/// error offers instead.
fn usable_without(failed: &str) -> String {
    compiled_backends()
        .into_iter()
        .filter(|&b| b != failed)
        .filter(|&b| match b {
            "cuda" => cuda_driver_devices().is_ok(),
            "wgpu" => wgpu_adapter().is_ok(),
            _ => true,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Check that the named backend (`flex`, `wgpu` or `cuda`) can start on this machine, before any
/// Burn code touches it (a GPU runtime that cannot start panics inside a worker thread).
pub fn probe(backend: &str) -> Result<(), BackendError> {
    match backend {
        "cuda" => probe_cuda().map(|_| ()),
        "wgpu" => probe_wgpu().map(|_| ()),
        _ => Ok(()),
    }
}

/// Check that CUDA can start: the feature is compiled in, the driver library loads and it
/// reports at least one device. Returns the number of devices.
pub fn probe_cuda() -> Result<usize, BackendError> {
    if !cfg!(feature = "cuda") {
        return Err(BackendError::NotCompiled {
            backend: "cuda",
            usable: usable_without("cuda"),
        });
    }
    cuda_driver_devices().map_err(|reason| BackendError::NoCudaDriver {
        reason,
        usable: usable_without("cuda"),
    })
}

/// Check that wgpu can start: the feature is compiled in and an adapter is found. Returns the
/// adapter's name and backend.
pub fn probe_wgpu() -> Result<String, BackendError> {
    if !cfg!(feature = "wgpu") {
        return Err(BackendError::NotCompiled {
            backend: "wgpu",
            usable: usable_without("wgpu"),
        });
    }
    wgpu_adapter().map_err(|reason| BackendError::NoWgpuAdapter {
        reason,
        usable: usable_without("wgpu"),
    })
}

/// Names of the CUDA driver library, tried in order.
const CUDA_DRIVER_NAMES: &[&str] = if cfg!(windows) {
    &["nvcuda.dll"]
} else {
    &["libcuda.so.1", "libcuda.so"]
};

/// Load the CUDA driver library, initialise it and count its devices (compiled in every build, so
/// that it is testable without the `cuda` feature).
pub fn cuda_driver_devices() -> Result<usize, String> {
    type CuInit = unsafe extern "C" fn(u32) -> i32;
    type CuDeviceGetCount = unsafe extern "C" fn(*mut i32) -> i32;
    let mut errors = Vec::new();
    let library = CUDA_DRIVER_NAMES.iter().find_map(|name| {
        // SAFETY: loading the CUDA driver runs its initialisers, which have no preconditions.
        match unsafe { libloading::Library::new(*name) } {
            Ok(lib) => Some(lib),
            Err(e) => {
                errors.push(format!("{name}: {e}"));
                None
            }
        }
    });
    let Some(library) = library else {
        return Err(format!(
            "the CUDA driver library could not be loaded ({}); is the NVIDIA driver installed?",
            errors.join("; ")
        ));
    };
    // SAFETY: `cuInit` and `cuDeviceGetCount` have these C signatures in every CUDA driver
    // (cuda.h); the library outlives both calls.
    unsafe {
        let init = library
            .get::<CuInit>(b"cuInit\0")
            .map_err(|e| format!("the driver library has no cuInit: {e}"))?;
        let status = init(0);
        if status != 0 {
            return Err(format!(
                "cuInit failed with CUDA error {status} (100: no device, 999: unknown)"
            ));
        }
        let count_fn = library
            .get::<CuDeviceGetCount>(b"cuDeviceGetCount\0")
            .map_err(|e| format!("the driver library has no cuDeviceGetCount: {e}"))?;
        let mut count = 0i32;
        let status = count_fn(&mut count);
        if status != 0 {
            return Err(format!("cuDeviceGetCount failed with CUDA error {status}"));
        }
        match usize::try_from(count) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err("the driver reports no CUDA device".into()),
        }
    }
}

/// The name and graphics API of the adapter wgpu would use.
#[cfg(feature = "wgpu")]
fn wgpu_adapter() -> Result<String, String> {
    let instance = wgpu::Instance::default();
    let adapter = block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
        .map_err(|e| format!("{e} (is a Vulkan, Metal or DX12 driver installed?)"))?;
    let info = adapter.get_info();
    Ok(format!("{} ({:?})", info.name, info.backend))
}

/// Without the `wgpu` feature there is no adapter to ask for.
#[cfg(not(feature = "wgpu"))]
fn wgpu_adapter() -> Result<String, String> {
    Err("wgpu is not compiled in".into())
}

/// Run a future to completion on this thread (wgpu's native adapter requests are ready at once).
#[cfg(feature = "wgpu")]
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
        std::thread::yield_now();
    }
}
