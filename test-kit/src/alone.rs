//! Tests that must run alone in their process: a test that reads a process-wide figure (the
//! process's CPU clock) or ends the process cannot share it with the other tests of its binary,
//! which the harness runs on threads beside it.

use std::process::{Command, Output};

/// Runs the test `name` (its full path, as `--exact` takes it) of the current test binary alone
/// in a child process, with the environment variable `flag` set, and gives the child's output.
/// The test checks `flag` to tell which side it is on: unset, it calls this and asserts on the
/// output; set, it does the work.
///
/// # Panics
///
/// When the test binary cannot be found or started (not a test's failure: the set-up's).
///
/// # Examples
///
/// ```no_run
/// const CHILD: &str = "MY_CRATE_ALONE_CHILD";
///
/// #[test]
/// fn reads_the_whole_process() {
///     if std::env::var_os(CHILD).is_none() {
///         let child = test_kit::run_alone("reads_the_whole_process", CHILD);
///         assert!(child.status.success(), "{child:?}");
///         return;
///     }
///     // The child: nothing else of this binary runs in the process.
/// }
/// ```
pub fn run_alone(name: &str, flag: &str) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(flag, "1")
        .output()
        .expect("the test binary runs")
}
