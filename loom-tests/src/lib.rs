//! Loom models of every crate's concurrent protocol; see `tests/`.
