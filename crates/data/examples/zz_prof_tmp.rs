use std::time::Instant;
fn main() {
    let dir = std::env::temp_dir().join("zzprof");
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = next_data::synth::SynthConfig { train_ids: 4, test_ids: 2, images_per_id: 4, image_size: Some([256, 128]), ..Default::default() };
    let s = next_data::synth::write_synthetic(&cfg, &dir, &mut next_common::Progress::hidden(1)).unwrap();
    let ds = next_data::load_dataset(&s.dataset_config()).unwrap();
    let next_data::TripletImages::Separate(p) = &ds.train[0].images else { panic!() };
    let bytes = std::fs::read(&p[0]).unwrap();
    let n = 300;
    let t = Instant::now();
    for _ in 0..n { let _ = std::fs::read(&p[0]).unwrap(); }
    println!("read {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n { let _ = image::load_from_memory(&bytes).unwrap(); }
    println!("decode rgb {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n { let _ = image::load_from_memory(&bytes).unwrap().to_rgb8(); }
    println!("decode+to_rgb8 {:?}", t.elapsed() / n);
    let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
    let tf = next_data::TransformConfig::from_dataset(&ds.config);
    let mut out = vec![0.0; tf.image_len()];
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(1);
    let t = Instant::now();
    for _ in 0..n { next_data::transform::train_transform(&img, &tf, &mut rng, &mut out); }
    println!("train transform {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n { next_data::transform::test_transform(&img, &tf, &mut out); }
    println!("test transform {:?}", t.elapsed() / n);
}
