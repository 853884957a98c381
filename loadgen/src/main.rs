//! `loadgen`: placeholder entry point, being written.
fn main() {}
