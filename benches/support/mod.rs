//! Set-up shared by the benches that run models: the global allocator and the thread count.

/// mimalloc keeps freed memory for reuse, where glibc returns every large block to the OS and
/// pays a page fault per page when the next tensor of that size is allocated.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (`mimalloc.h`), which the Rust
/// bindings do not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Never return freed memory to the OS (mimalloc purges after 10 ms by default, which makes
/// tensors of a training step page-fault again) and run Burn's kernels on `threads` threads.
/// Later calls do nothing.
pub fn setup(threads: usize) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| setup_once(threads));
}

fn setup_once(threads: usize) {
    // SAFETY: sets one of mimalloc's integer options; -1 is documented as "no purging at all".
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        eprintln!("rayon's thread pool was already set up ({e}); using it");
    }
}

/// `name` parsed from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
