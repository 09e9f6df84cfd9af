//! Set-up shared by the benches that run models: the global allocator and the thread count.

#[global_allocator]
static ALLOCATOR: next_reid::alloc::Allocator = next_reid::alloc::Allocator;

/// Keep freed memory (see `next_reid::alloc`) and run Burn's kernels on `threads` threads.
/// Later calls do nothing.
pub fn setup(threads: usize) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        next_reid::alloc::keep_freed_memory();
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
        {
            eprintln!("rayon's thread pool was already set up ({e}); using it");
        }
    });
}

/// `name` parsed from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
