//! Cross-crate example programs; run `cargo run -p examples --example tour`.
