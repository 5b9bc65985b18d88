#![cfg(loom)]
use pool_core::ThreadPool;

#[test]
fn one_task_runs() {
    loom::model(|| {
        let pool = ThreadPool::new(1).unwrap();
        let h = pool.submit(|| 7).unwrap();
        assert_eq!(h.join().unwrap(), 7);
        pool.shutdown();
    });
}
