fn main() {
    let out = std::path::Path::new("/tmp/synth_default");
    let _ = std::fs::remove_dir_all(out);
    next_data::synth::write_synthetic(&next_data::synth::SynthConfig::default(), out, &mut next_common::Progress::hidden(1)).unwrap();
}
