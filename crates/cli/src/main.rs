//! `next`: train, evaluate, embed, search and demo multi-modal ReID models.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: next_reid::alloc::Allocator = next_reid::alloc::Allocator;

fn main() {
    next_reid::alloc::keep_freed_memory();
    let cli = next_cli::commands::Cli::parse();
    if let Err(e) = next_cli::commands::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
