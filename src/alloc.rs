//! The global allocator for programs that run models (the `next` binary, the benches).
//!
//! A model step allocates and frees the same large tensors over and over. glibc returns large
//! freed blocks to the OS at once, so the next allocation of that size page-faults on every page
//! (about 190,000 faults per ViT-B/16 forward); mimalloc keeps them, and [`keep_freed_memory`]
//! turns off its delayed purging as well (with purging, a training step was ~20% slower). A
//! program opts in with two lines:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: next_reid::alloc::Allocator = next_reid::alloc::Allocator;
//! // first thing in main():
//! next_reid::alloc::keep_freed_memory();
//! ```

/// mimalloc, to be installed with `#[global_allocator]`.
pub use mimalloc::MiMalloc as Allocator;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (`mimalloc.h`), which the Rust
/// bindings do not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tell mimalloc never to return freed memory to the OS (its default purges it after 10 ms).
/// Call it at the start of `main`; without [`Allocator`] installed it only sets an unused option.
pub fn keep_freed_memory() {
    // SAFETY: sets one of mimalloc's integer options; -1 is documented as "no purging at all".
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}
