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
