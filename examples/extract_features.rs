//! Extract features of image folders with a checkpoint and rank a gallery for each query,
//! torchreid style; the checkpoint alone is enough (no dataset, no CLIP folder).
//!
//! `cargo run --release --example extract_features -- CHECKPOINT QUERY_DIR GALLERY_DIR [TOP]`
//! (each folder holds `RGB/ NI/ TI/` subfolders paired by file name).

use next_reid::burn::backend::Flex;
use next_reid::train::FeatureExtractor;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(checkpoint), Some(query), Some(gallery)) = (args.first(), args.get(1), args.get(2))
    else {
        eprintln!("usage: extract_features CHECKPOINT QUERY_DIR GALLERY_DIR [TOP]");
        std::process::exit(2);
    };
    let top = match args.get(3).map(|t| t.parse::<usize>()) {
        None => 5,
        Some(Ok(t)) if t > 0 => t,
        Some(_) => {
            eprintln!("TOP: expected a positive integer, got {:?}", args[3]);
            std::process::exit(2);
        }
    };
    if let Err(e) = run(checkpoint.into(), query.into(), gallery.into(), top) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(
    checkpoint: PathBuf,
    query: PathBuf,
    gallery: PathBuf,
    top: usize,
) -> Result<(), next_reid::train::TrainError> {
    let extractor = FeatureExtractor::<Flex>::from_checkpoint(&checkpoint, &Default::default())?;
    let query = extractor.extract_folder(&query)?;
    let gallery = extractor.extract_folder(&gallery)?;
    println!(
        "{} query and {} gallery features of dimension {}",
        query.features.rows(),
        gallery.features.rows(),
        query.features.dim()
    );
    for (q, neighbours) in extractor.search(&query, &gallery, top)?.iter().enumerate() {
        println!("{}:", query.keys[q]);
        for (rank, n) in neighbours.iter().enumerate() {
            println!(
                "  {:>3}. {} (distance {:.4})",
                rank + 1,
                gallery.keys[n.index],
                n.distance
            );
        }
    }
    Ok(())
}
