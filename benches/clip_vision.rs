//! Benchmark placeholder: replaced by the issue that owns it.
fn main() {}
