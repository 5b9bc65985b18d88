//! The round's remote jobs: a `RemoteExecutor` and a worker on a thread, over a throwaway
//! SQLite file, running one registered task whose user code is hostile where the engine (not a
//! pool) runs it as well as where a pool does: the arguments' and outputs' `Serialize`,
//! `Deserialize` and `Drop` on both sides, the task's `run` (a panic, a payload whose `Drop`
//! panics, an error), the wakers of awaited handles, and the worker's stop future.
//!
//! Each job's plan is drawn from the seed, so its outcome is known: the check is exact. Some
//! jobs are cancelled before the worker starts (each cancel must win). After the round: every
//! handle has the outcome its plan (or its cancel) gives, the worker counted exactly the
//! attempts the plans of the jobs it saw make (refused, failed, succeeded), the executor's books
//! balance with nothing outstanding, the worker stopped gracefully whatever its stop future did,
//! and every hostile value was dropped once.

use std::sync::mpsc;
use std::sync::LazyLock;
use std::time::Duration;

use pool_core::Priority;
use pool_remote::{
    BoxError, Registry, RemoteError, RemoteExecutor, RemoteHandle, RemoteTask, Worker,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::kit::{poll_with_hostile_waker, Census, Ending};
use super::patience;

/// The engine's attempts per job.
const MAX_ATTEMPTS: usize = 2;

/// Jobs per round.
const JOBS: u64 = 16;

/// The hostile values of the remote part: a static, because a `Deserialize` has no other way
/// to reach it. Remote rounds run one at a time (the hostile test runs its seeds in turn).
static CENSUS: LazyLock<Census> = LazyLock::new(Census::default);

/// What one job's user code does, and so what its handle must say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    Returns,
    /// The arguments' `Drop` panics on the submitter, after they were encoded.
    LoudArgs,
    /// The output's `Drop` panics on the worker, after it was encoded.
    LoudOutput,
    ArgsSerialize(Ending),
    ArgsDeserialize(Ending),
    RunPanics(Ending),
    RunFails,
    OutputSerialize(Ending),
    OutputDeserialize(Ending),
}

impl Plan {
    const COUNT: u8 = 14;

    /// The plan with the given code, each hostile one with both endings (a string panic on
    /// even codes, a payload whose `Drop` panics on odd ones); `None` out of range.
    fn from_code(code: u8) -> Option<Plan> {
        let ending = |code: u8| [Ending::Panics, Ending::PanicsWithPayload][usize::from(code & 1)];
        Some(match code {
            0 => Plan::Returns,
            1 => Plan::LoudArgs,
            2 => Plan::LoudOutput,
            3 => Plan::RunFails,
            4 | 5 => Plan::ArgsSerialize(ending(code)),
            6 | 7 => Plan::ArgsDeserialize(ending(code)),
            8 | 9 => Plan::RunPanics(ending(code)),
            10 | 11 => Plan::OutputSerialize(ending(code)),
            12 | 13 => Plan::OutputDeserialize(ending(code)),
            _ => return None,
        })
    }

    fn code(self) -> u8 {
        (0..Plan::COUNT)
            .find(|&c| Plan::from_code(c) == Some(self))
            .unwrap_or(0)
    }
}

/// A job's arguments or output: its id and plan go over the wire; `armed` (its `Drop` panics)
/// does not, so a decoded value is quiet.
struct Value {
    id: u64,
    plan: Plan,
    armed: bool,
    /// Whether this value is the job's output (its serde code strikes on the output's plans).
    output: bool,
}

impl Value {
    fn new(id: u64, plan: Plan, armed: bool, output: bool) -> Value {
        CENSUS.count_new();
        Value {
            id,
            plan,
            armed,
            output,
        }
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        CENSUS.count_drop();
        if self.armed && !std::thread::panicking() {
            panic!("{}: Drop of remote value {}", super::kit::MARK, self.id);
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.plan, self.output) {
            (Plan::ArgsSerialize(e), false) | (Plan::OutputSerialize(e), true) => {
                e.act(&CENSUS, "a remote value's Serialize");
            }
            _ => {}
        }
        (self.id, self.plan.code(), self.output).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (id, code, output) = <(u64, u8, bool)>::deserialize(d)?;
        let plan = Plan::from_code(code)
            .ok_or_else(|| serde::de::Error::custom(format!("no plan {code}")))?;
        match (plan, output) {
            (Plan::ArgsDeserialize(e), false) | (Plan::OutputDeserialize(e), true) => {
                e.act(&CENSUS, "a remote value's Deserialize");
            }
            _ => {}
        }
        Ok(Value::new(id, plan, false, output))
    }
}

/// The one registered task: acts out the run's part of the plan, returns an output of the
/// same id.
struct HostileTask;

impl RemoteTask for HostileTask {
    const NAME: &'static str = "stress-hostile";
    type Args = Value;
    type Output = Value;
    fn run(&self, args: Value) -> Result<Value, BoxError> {
        match args.plan {
            Plan::RunPanics(e) => e.act(&CENSUS, "a remote task"),
            Plan::RunFails => return Err("deliberate failure of a remote task".into()),
            _ => {}
        }
        let loud = args.plan == Plan::LoudOutput;
        Ok(Value::new(args.id, args.plan, loud, true))
    }
}

/// The outcome a handle must give for `plan` (`None`: a value of the job's id).
fn expected(plan: Plan) -> Option<(&'static str, &'static str)> {
    match plan {
        Plan::Returns | Plan::LoudArgs | Plan::LoudOutput => None,
        Plan::ArgsSerialize(_) => Some(("BadArgs", "its `Serialize` panicked")),
        Plan::ArgsDeserialize(_) => Some(("BadArgs", "its `Deserialize` panicked")),
        Plan::RunPanics(_) => Some(("Panicked", "")),
        Plan::RunFails => Some(("Failed", "deliberate failure")),
        Plan::OutputSerialize(_) => Some(("BadOutput", "its `Serialize` panicked")),
        Plan::OutputDeserialize(_) => Some(("BadOutput", "its `Deserialize` panicked")),
    }
}

/// The variant name and message of an error, with the attempts where it has them.
fn describe(error: &RemoteError) -> (&'static str, &str, Option<usize>) {
    match error {
        RemoteError::BadArgs { message, .. } => ("BadArgs", message, None),
        RemoteError::BadOutput { message, .. } => ("BadOutput", message, None),
        RemoteError::Panicked {
            message, attempts, ..
        } => ("Panicked", message, Some(*attempts)),
        RemoteError::Failed {
            message, attempts, ..
        } => ("Failed", message, Some(*attempts)),
        RemoteError::Cancelled { .. } => ("Cancelled", "", None),
        _ => ("other", "", None),
    }
}

/// Checks one outcome against its plan.
#[track_caller]
fn check(ctx: &str, id: u64, plan: Plan, outcome: Result<Value, RemoteError>) {
    match (outcome, expected(plan)) {
        (Ok(value), None) => assert_eq!(value.id, id, "{ctx}: job {id} ({plan:?})"),
        (Err(error), Some((variant, text))) => {
            let (got, message, attempts) = describe(&error);
            assert_eq!(got, variant, "{ctx}: job {id} ({plan:?}): {error}");
            assert!(message.contains(text), "{ctx}: job {id}: {error}");
            if let Some(attempts) = attempts {
                assert_eq!(attempts, MAX_ATTEMPTS, "{ctx}: job {id}: {error}");
            }
        }
        (Ok(_), Some(_)) => panic!("{ctx}: job {id} ({plan:?}) gave a value"),
        (Err(error), None) => panic!("{ctx}: job {id} ({plan:?}) failed: {error}"),
    }
}

/// The worker's counts the plans of the jobs that reached it make.
fn expected_report(plans: impl Iterator<Item = Plan>) -> (u64, u64, u64) {
    let (mut refused, mut failed, mut succeeded) = (0, 0, 0);
    for plan in plans {
        match plan {
            Plan::ArgsSerialize(_) => {}
            Plan::ArgsDeserialize(_) => refused += 1,
            Plan::RunPanics(_) | Plan::RunFails => failed += MAX_ATTEMPTS as u64,
            Plan::OutputSerialize(_) => failed += 1,
            _ => succeeded += 1,
        }
    }
    (refused, failed, succeeded)
}

/// One remote round of [`JOBS`] jobs; all plans `Returns` unless `hostile`. Returns the jobs
/// submitted.
pub fn run(seed: u64, hostile: bool, ctx: &str) -> u64 {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5E_5707E);
    let dir = std::env::temp_dir().join(format!("stress-remote-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let url = format!("sqlite://{}", dir.join("jobs.db").display());
    let remote = RemoteExecutor::builder(&url)
        .max_attempts(MAX_ATTEMPTS)
        .build()
        .expect("remote executor");

    // Submitted in batches of 1 to 3 (all or none: a batch with an argument whose `Serialize`
    // panics enqueues nothing).
    let mut handles: Vec<(u64, Plan, RemoteHandle<Value>)> = Vec::new();
    let mut refused_at_submit = 0;
    let mut id = 0;
    while id < JOBS {
        let size = rng.u64(1..=3).min(JOBS - id);
        let plans: Vec<Plan> = (0..size)
            .map(|_| {
                let code = if hostile { rng.u8(..Plan::COUNT) } else { 0 };
                Plan::from_code(code).unwrap_or(Plan::Returns)
            })
            .collect();
        let items = plans.iter().enumerate().map(|(i, &plan)| {
            let armed = plan == Plan::LoudArgs;
            let value = Value::new(id + i as u64, plan, armed, false);
            (Priority::ALL[rng.usize(..5)], value)
        });
        match remote.submit_batch::<HostileTask>(items.collect::<Vec<_>>()) {
            Ok(batch) => {
                assert!(
                    !plans.iter().any(|p| matches!(p, Plan::ArgsSerialize(_))),
                    "{ctx}: a batch with an argument that cannot be encoded was enqueued"
                );
                for (i, (plan, handle)) in plans.into_iter().zip(batch).enumerate() {
                    handles.push((id + i as u64, plan, handle));
                }
            }
            Err(error) => {
                let culprit = plans.iter().find(|p| matches!(p, Plan::ArgsSerialize(_)));
                let plan = culprit.copied().unwrap_or(Plan::Returns);
                check(ctx, id, plan, Err(error));
                refused_at_submit += size;
            }
        }
        id += size;
    }

    // Some cancelled before any worker runs: each cancel wins (nothing is claimed yet), settles
    // its handle as `Cancelled` before it returns, and the worker never sees the job.
    let mut cancelled = 0;
    let mut kept = Vec::with_capacity(handles.len());
    for (id, plan, handle) in handles {
        if rng.u8(..8) != 0 {
            kept.push((id, plan, handle));
            continue;
        }
        let won = handle.cancel();
        assert!(
            matches!(won, Ok(true)),
            "{ctx}: job {id}'s cancel lost: {won:?}"
        );
        match handle.join_timeout(Duration::ZERO) {
            Err(Err(RemoteError::Cancelled { .. })) => cancelled += 1,
            Err(Err(error)) => panic!("{ctx}: job {id} cancelled, then failed: {error}"),
            Err(Ok(_)) => panic!("{ctx}: job {id} cancelled, then unsettled"),
            Ok(_) => panic!("{ctx}: job {id} cancelled, then a value"),
        }
    }
    let handles = kept;

    let (stop, stopped) = mpsc::channel::<()>();
    let stop_ending = Ending::pick(&mut rng, hostile);
    let worker = Worker::builder(&url, Registry::new().register(HostileTask))
        .threads(2)
        .heartbeat(Duration::from_secs(1))
        .poll_interval(Duration::from_millis(2))
        .build()
        .expect("worker");
    let running = std::thread::spawn(move || {
        worker.run_until(async move {
            let _ = tokio::task::spawn_blocking(move || stopped.recv()).await;
            stop_ending.act(&CENSUS, "a worker's stop future");
        })
    });

    let reached: Vec<Plan> = handles.iter().map(|(_, plan, _)| *plan).collect();
    for (id, plan, mut handle) in handles {
        // Awaited once with a waker that panics when woken, then joined.
        let polled = rng.u8(..4) == 0;
        let outcome = match polled.then(|| poll_with_hostile_waker(&mut handle, &mut rng)) {
            Some(std::task::Poll::Ready(outcome)) => outcome,
            _ => match handle.join_timeout(patience()) {
                Ok(value) => Ok(value),
                Err(Err(error)) => Err(error),
                Err(Ok(handle)) => panic!("{ctx}: no outcome for {handle:?} ({plan:?})"),
            },
        };
        check(ctx, id, plan, outcome);
    }

    let _ = stop.send(());
    let report = match running.join() {
        Ok(Ok(report)) => report,
        Ok(Err(error)) => panic!("{ctx}: the worker failed: {error}"),
        Err(_) => panic!("{ctx}: the worker's thread unwound ({stop_ending:?} stop future)"),
    };
    let (refused, failed, succeeded) = expected_report(reached.iter().copied());
    assert_eq!(
        (report.refused, report.failed, report.succeeded),
        (refused, failed, succeeded),
        "{ctx}: the worker's counts (refused, failed, succeeded) for {reached:?}"
    );
    let stats = remote.stats();
    let enqueued = JOBS - refused_at_submit;
    assert_eq!(
        (stats.submitted, stats.outstanding, stats.cancelled),
        (enqueued, 0, cancelled),
        "{ctx}: remote books {stats:?}"
    );
    assert_eq!(
        stats.completed + stats.failed + stats.cancelled,
        enqueued,
        "{ctx}: remote books {stats:?}"
    );
    drop(remote);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        CENSUS.live(),
        0,
        "{ctx}: remote values leaked (or dropped twice)"
    );
    JOBS
}
