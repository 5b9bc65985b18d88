//! User code that panics where the engine, not a pool, runs it: the `Serialize`, `Deserialize`
//! and `Drop` of arguments and outputs, on both sides, and the worker's stop future. None may
//! stop the worker taking jobs, unwind into a submitter, or leave a handle without its outcome.

mod common;

use std::sync::mpsc;

use common::{join, sqlite_url, LocalWorker, Square};
use pool_remote::{BoxError, Registry, RemoteError, RemoteExecutor, RemoteTask, Worker};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use test_kit::{no_unwind, Bomb};

/// A number whose serde code panics on some values, and whose `Drop` panics when `loud`
/// (`loud` is not sent: a decoded value is quiet).
#[derive(Debug)]
struct Touchy {
    value: u64,
    loud: bool,
}

/// Its `Serialize` panics.
const SERIALIZE_PANICS: u64 = 13;
/// Its `Deserialize` panics, with a payload whose own `Drop` panics.
const DESERIALIZE_PANICS: u64 = 14;

impl Touchy {
    fn quiet(value: u64) -> Touchy {
        Touchy { value, loud: false }
    }
}

impl Serialize for Touchy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.value == SERIALIZE_PANICS {
            panic!("hostile Serialize");
        }
        s.serialize_u64(self.value)
    }
}

impl<'de> Deserialize<'de> for Touchy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = u64::deserialize(d)?;
        if value == DESERIALIZE_PANICS {
            std::panic::panic_any(Bomb(1));
        }
        Ok(Touchy::quiet(value))
    }
}

impl Drop for Touchy {
    fn drop(&mut self) {
        if self.loud && !std::thread::panicking() {
            panic!("hostile Drop");
        }
    }
}

/// Returns its argument less 100 when it is 100 or more (so an output can be one of the
/// hostile values while the argument is not); an output of 8 is loud.
struct Shift;

impl RemoteTask for Shift {
    const NAME: &'static str = "shift";
    type Args = Touchy;
    type Output = Touchy;
    fn run(&self, args: Touchy) -> Result<Touchy, BoxError> {
        let value = args.value.checked_sub(100).unwrap_or(args.value);
        Ok(Touchy {
            value,
            loud: value == 8,
        })
    }
}

fn worker(url: &str) -> Worker {
    common::quick_worker(url, Registry::new().register(Shift).register(Square))
}

/// The message of a `BadArgs` or `BadOutput` error, which must name the task.
#[track_caller]
fn bad(error: RemoteError, args: bool) -> String {
    match (error, args) {
        (RemoteError::BadArgs { task, message }, true)
        | (RemoteError::BadOutput { task, message }, false) => {
            assert_eq!(task, "shift");
            message
        }
        (other, _) => panic!(
            "expected a bad {} error, got {other:?}",
            ["output", "args"][args as usize]
        ),
    }
}

/// Invariant: a panic in the serde code of arguments or outputs is the typed error of a value
/// serde refuses (`BadArgs`, `BadOutput`, naming the panic), on whichever side it happens, and
/// the worker goes on taking jobs. A `Drop` that panics after encoding loses nothing. Before,
/// an argument whose `Deserialize` panicked on the worker stopped the worker: the jobs queued
/// after it never ran (no outcome within 120 s).
#[test]
fn serde_code_that_panics_is_a_typed_error_and_the_worker_keeps_taking_jobs() {
    test_kit::quiet_panics(|message| message.starts_with("hostile"));
    let (_dir, url) = sqlite_url("hostile-serde");
    let remote = RemoteExecutor::builder(&url)
        .max_attempts(3)
        .build()
        .unwrap();

    // Submitter side: nothing is enqueued, nothing unwinds.
    let refused = no_unwind(|| remote.submit::<Shift>(Touchy::quiet(SERIALIZE_PANICS)));
    let message = bad(refused.expect("no unwind").unwrap_err(), true);
    assert_eq!(message, "its `Serialize` panicked: hostile Serialize");
    // In a batch: none enqueued, and the arguments after it are dropped quietly.
    let batch = [
        Touchy::quiet(1),
        Touchy::quiet(SERIALIZE_PANICS),
        Touchy {
            value: 2,
            loud: true,
        },
    ];
    let refused = no_unwind(|| {
        remote.submit_batch::<Shift>(batch.map(|args| (pool_core::Priority::Normal, args)))
    });
    bad(refused.expect("no unwind").unwrap_err(), true);
    assert_eq!(remote.stats().submitted, 0);
    // Encoded, then dropped loudly: submitted all the same.
    let loud_args = no_unwind(|| {
        remote.submit::<Shift>(Touchy {
            value: 3,
            loud: true,
        })
    });
    let loud_args = loud_args.expect("no unwind").unwrap();

    // Worker side, in submission order: a `Deserialize` that panics (with a payload whose
    // `Drop` panics), an output whose `Serialize` panics, an output that is loud when dropped,
    // then the submitter's `Deserialize` of an output panics, then well-behaved jobs.
    let undecodable = remote
        .submit::<Shift>(Touchy::quiet(DESERIALIZE_PANICS))
        .unwrap();
    let unencodable = remote
        .submit::<Shift>(Touchy::quiet(100 + SERIALIZE_PANICS))
        .unwrap();
    let loud_output = remote.submit::<Shift>(Touchy::quiet(108)).unwrap();
    let undecoded = remote
        .submit::<Shift>(Touchy::quiet(100 + DESERIALIZE_PANICS))
        .unwrap();
    let fine = remote.submit::<Shift>(Touchy::quiet(105)).unwrap();
    let square = remote.submit::<Square>(9).unwrap();
    let worker = LocalWorker::start(worker(&url));

    assert_eq!(join(square).unwrap(), 81);
    assert_eq!(join(fine).unwrap().value, 5);
    assert_eq!(join(loud_args).unwrap().value, 3);
    assert_eq!(join(loud_output).unwrap().value, 8);
    let message = bad(join(undecodable).unwrap_err(), true);
    assert_eq!(
        message,
        "its `Deserialize` panicked: a panic with a non-string payload"
    );
    let message = bad(join(unencodable).unwrap_err(), false);
    assert_eq!(message, "its `Serialize` panicked: hostile Serialize");
    let decoded = no_unwind(|| join(undecoded));
    let message = bad(decoded.expect("no unwind").unwrap_err(), false);
    assert_eq!(
        message,
        "its `Deserialize` panicked: a panic with a non-string payload"
    );

    let report = worker.stop();
    // One refused (the arguments), one failed without a retry (the output), five ran.
    assert_eq!((report.refused, report.failed, report.succeeded), (1, 1, 5));
    let stats = remote.stats();
    assert_eq!((stats.submitted, stats.completed), (7, 5));
    assert_eq!((stats.failed, stats.outstanding), (2, 0));
}

/// Invariant: a stop future that panics stops the worker as its completion would: gracefully,
/// with its report, the pool joined. Before, the panic unwound out of `run_until`.
#[test]
fn a_stop_future_that_panics_stops_the_worker_gracefully() {
    test_kit::quiet_panics(|message| message.starts_with("hostile"));
    let (_dir, url) = sqlite_url("hostile-stop");
    let remote = RemoteExecutor::builder(&url).build().unwrap();
    let square = remote.submit::<Square>(7).unwrap();
    let worker = worker(&url);
    let (stop, stopped) = mpsc::channel::<()>();
    let running = std::thread::spawn(move || {
        no_unwind(|| {
            worker.run_until(async move {
                let _ = tokio::task::spawn_blocking(move || stopped.recv()).await;
                std::panic::panic_any(Bomb(1));
            })
        })
    });
    assert_eq!(join(square).unwrap(), 49);
    stop.send(()).unwrap();
    let ran = running.join().unwrap().expect("no unwind out of run_until");
    assert_eq!(ran.unwrap().succeeded, 1);
}
