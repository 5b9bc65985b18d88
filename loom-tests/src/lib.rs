//! Loom models of every crate's concurrent protocol.
//!
//! The models live in `tests/`, one file per area (`core`, `priority`, `coalesce`, `adaptive`,
//! `dag`), each compiled only with `RUSTFLAGS="--cfg loom"`; this library holds only [`model`],
//! which they share. See `README.md` beside this crate's `Cargo.toml` for how to run them, what
//! each model asserts, how many interleavings each explores, and the planted bugs
//! (`.ci/loom-planted`) that show the models catch what they claim to.

/// Runs `f` under `loom::model` and prints how many interleavings loom explored (seen with
/// `--nocapture`; the counts are in `loom-tests/README.md`).
#[cfg(loom)]
pub fn model(name: &'static str, f: impl Fn() + Send + Sync + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let iterations = Arc::new(AtomicUsize::new(0));
    let counted = iterations.clone();
    loom::model(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        f();
    });
    let n = iterations.load(Ordering::Relaxed);
    eprintln!("{name}: {n} interleavings explored");
}
