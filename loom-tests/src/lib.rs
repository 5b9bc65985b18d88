//! Loom models of every crate's concurrent protocol.
//!
//! The models live in `tests/`, one file per area (`core`, `priority`, `coalesce`, `adaptive`,
//! `dag`), each compiled only with `RUSTFLAGS="--cfg loom"`; this library is empty. See
//! `README.md` beside this crate's `Cargo.toml` for how to run them, what each model asserts,
//! how long each takes, and the deliberately broken variant (`--cfg loom_broken`) that shows the
//! core models catch a lost wake-up.
