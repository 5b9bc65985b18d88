//! `ExecutorExt::submit`: handles on any executor, whatever the executor does with the job.

use pool_core::{
    CancelReason, ExecutorExt, InlineExecutor, Priority, Rejected, TaskError, ThreadPool,
};
use test_kit::{Deferred, Dropping, Panicking, Refusing};

/// Silences the panics these tests provoke on purpose.
fn quiet_panics() {
    test_kit::quiet_panics(|message| message == "hostile executor" || message == "task failed");
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
    quiet_panics();
    let handle = Panicking.submit(|| 1);
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
    assert_eq!(deferred.priorities(), [Priority::High, Priority::Normal]);
    quiet_panics();
    assert_eq!(deferred.run_all(), 2);
    assert_eq!(high.join(), Ok(1));
    assert_eq!(
        panics.join(),
        Err(TaskError::Panicked("task failed".into()))
    );
}
