//! Stand-alone caption pipeline command (the same subcommands as `next caption`).

use clap::Parser;

/// Caption a multi-modal ReID dataset with MLLMs: attributes, merge, compose.
#[derive(Parser)]
#[command(name = "next-captions", version)]
struct Cli {
    #[command(subcommand)]
    command: next_cli::caption_args::CaptionCommand,
}

fn main() {
    let cli = Cli::parse();
    if let Err(err) = cli.command.run() {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}
