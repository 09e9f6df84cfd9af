//! `next`: train, evaluate, embed, search and demo multi-modal ReID models.

use clap::Parser;

fn main() {
    let cli = next_cli::commands::Cli::parse();
    if let Err(e) = next_cli::commands::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
