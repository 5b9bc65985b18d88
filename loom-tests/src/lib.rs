//! Loom models of every crate's concurrent protocol.
//!
//! The models live in `tests/`, one file per area (`core`, `idle`, `scope`, `share_count`,
//! `stats`, `policy`, `priority`, `coalesce`, `adaptive`, `dag`), each compiled only with
//! `RUSTFLAGS="--cfg loom"`; this library holds what they share: `model` (loom only) and
//! [`expect_model_fails`]. See `README.md` beside this crate's `Cargo.toml`
//! for how to run them, what each model asserts, how many interleavings each explores, and the
//! planted bugs (`.ci/loom-planted`) that show the models catch what they claim to.

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

/// Checks that a planted bug is caught: runs the ignored model `model` of this test binary in a
/// child process and asserts it fails, with `expected` in its output (loom's report or the
/// model's own assertion message).
///
/// A child process, because a loom failure cannot be caught in-process with `should_panic`: loom
/// then unwinds the other model threads' stacks, whose `Drop`s call into loom again, and the
/// process may abort ("panic in a destructor during cleanup").
pub fn expect_model_fails(model: &str, expected: &str) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = std::process::Command::new(exe)
        .args(["--exact", model, "--ignored", "--test-threads=1"])
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "loom missed the planted bug: {model} passed\n{stdout}"
    );
    assert!(
        stdout.contains(expected) || stderr.contains(expected),
        "{model} failed, but not with {expected:?}:\n{stdout}\n{stderr}"
    );
}
