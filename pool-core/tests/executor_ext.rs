//! `ExecutorExt::submit`: handles on any executor, whatever the executor does with the job.

use pool_core::{
    CancelReason, Executor, ExecutorExt, InlineExecutor, Job, Priority, Rejected, TaskError,
    ThreadPool,
};
use std::sync::Mutex;

/// Refuses every job, handing it back.
struct Refusing;
impl Executor for Refusing {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        Err(Rejected(job))
    }
}

/// Accepts every job and drops it without running it.
struct Dropping;
impl Executor for Dropping {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        drop(job);
        Ok(())
    }
}

/// Panics in `execute` (the job is dropped while unwinding).
struct Panicking;
impl Executor for Panicking {
    fn execute(&self, _job: Job) -> Result<(), Rejected<Job>> {
        panic!("hostile executor");
    }
}

/// Keeps jobs and the priorities they came with, to run later.
#[derive(Default)]
struct Deferred(Mutex<Vec<(Priority, Job)>>);
impl Executor for Deferred {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.execute_with_priority(job, Priority::Normal)
    }
    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        self.0.lock().unwrap().push((priority, job));
        Ok(())
    }
}

#[test]
fn a_value_comes_back_through_the_handle() {
    assert_eq!(InlineExecutor.submit(|| 6 * 7).unwrap().join(), Ok(42));
    let pool = ThreadPool::new(2).unwrap();
    let handle = ExecutorExt::submit(&pool, || "on the pool").unwrap();
    assert_eq!(handle.join(), Ok("on the pool"));
}

#[test]
fn a_refused_closure_comes_back_to_the_caller() {
    let Err(Rejected(f)) = Refusing.submit(|| 5) else {
        panic!("a refusing executor accepted the job");
    };
    assert_eq!(f(), 5);
}

#[test]
fn a_job_the_executor_drops_resolves_its_handle_as_cancelled() {
    let handle = Dropping.submit(|| 1).unwrap();
    assert_eq!(
        handle.join(),
        Err(TaskError::Cancelled(CancelReason::Dropped))
    );
}

#[test]
fn an_executor_that_panics_resolves_the_handle_and_does_not_unwind_into_the_caller() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let handle = Panicking.submit(|| 1);
    std::panic::set_hook(previous);
    let handle = handle.unwrap_or_else(|_| panic!("a panicking executor is not a refusal"));
    assert_eq!(
        handle.join(),
        Err(TaskError::Cancelled(CancelReason::Dropped))
    );
}

#[test]
fn the_priority_hint_reaches_the_executor_and_a_panic_reaches_the_handle() {
    let deferred = Deferred::default();
    let high = deferred.submit_at(Priority::High, || 1).unwrap();
    let panics = deferred.submit(|| -> u8 { panic!("task failed") }).unwrap();
    let jobs = std::mem::take(&mut *deferred.0.lock().unwrap());
    assert_eq!(
        jobs.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        [Priority::High, Priority::Normal]
    );
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for (_, job) in jobs {
        job();
    }
    std::panic::set_hook(previous);
    assert_eq!(high.join(), Ok(1));
    assert_eq!(
        panics.join(),
        Err(TaskError::Panicked("task failed".into()))
    );
}
