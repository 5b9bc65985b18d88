//! A value whose `Drop` panics, produced by a coalesced execution, must not reach the join of a
//! handle that never received it (it cancelled), even when that handle holds the last reference.
//! Found by the workspace's hostile stress mode.

mod common;

use common::gated_pool;
use policy_coalesce::Coalescer;
use test_kit::PATIENCE;

struct Armed;
impl Drop for Armed {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("value Drop");
        }
    }
}

#[test]
fn join_of_a_cancelled_handle_does_not_panic() {
    let (pool, gate) = gated_pool();
    let coalescer = Coalescer::<u8, Armed, _>::builder(pool).build().unwrap();
    let a = coalescer.submit(1, || Armed).unwrap();
    let b = coalescer.submit(1, || Armed).unwrap(); // joins a's execution
    assert!(a.cancel()); // a detaches; the execution still runs for b
    gate.open();
    let value = b
        .join_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("b gets the value"));
    let b_dropped_last =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(value))).is_err();
    assert!(
        !b_dropped_last,
        "b held the last reference: the scenario does not apply"
    );
    drop(coalescer);
    let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        a.join_timeout(PATIENCE).is_err()
    }));
    assert!(
        joined.is_ok(),
        "join of the cancelled handle panicked with the value's Drop"
    );
}
