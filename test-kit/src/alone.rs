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

/// [`run_alone`], then asserts that the child passed and that it ran the test (a name that
/// matched no test would pass too, having run nothing), with the child's status and output in
/// the message when it did not.
///
/// # Panics
///
/// When the child failed or ran no test, and as [`run_alone`].
///
/// # Examples
///
/// ```no_run
/// const CHILD: &str = "MY_CRATE_ALONE_CHILD";
///
/// #[test]
/// fn reads_the_whole_process() {
///     if std::env::var_os(CHILD).is_none() {
///         test_kit::assert_passes_alone("reads_the_whole_process", CHILD);
///         return;
///     }
///     // The child: nothing else of this binary runs in the process.
/// }
/// ```
pub fn assert_passes_alone(name: &str, flag: &str) {
    let child = run_alone(name, flag);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr),
    );
    assert!(
        child.status.success(),
        "child: {:?}\n{stdout}\n{stderr}",
        child.status
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {stdout}"
    );
}
