//! Run a function over many inputs, report progress, and return the results in input order.

use crate::error::{CancelReason, TaskError};
use crate::scope::OnReject;
use crate::sync::{Condvar, Mutex};
use crate::unwind::{call_quietly, catch_panic, drop_quietly, QuietDrop};
use crate::ThreadPool;

/// How far a batch has got, passed to the progress callback of [`ThreadPool::map_batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchProgress {
    /// Inputs finished (with a value, a panic, or refused).
    pub done: usize,
    /// Inputs in the batch.
    pub total: usize,
}

struct BatchState<R> {
    results: Vec<Option<Result<R, TaskError>>>,
    done: usize,
}

struct Batch<R> {
    state: Mutex<BatchState<R>>,
    progressed: Condvar,
}

impl<R> Batch<R> {
    /// Records input `index`'s result; the first report of an index wins (a job that ran reports,
    /// then its guard's drop reports again, possibly after the batch returned, and is ignored).
    fn finish(&self, index: usize, result: Result<R, TaskError>) {
        let mut state = self.state.lock();
        // Taken already (`results` is empty once the batch returned) or reported: ignore.
        let Some(slot @ None) = state.results.get_mut(index) else {
            drop(state);
            drop_quietly(result);
            return;
        };
        *slot = Some(result);
        state.done += 1;
        drop(state);
        self.progressed.notify_all();
    }
}

/// One input's promise to report: however its job ends (run, discarded by the pool while queued,
/// refused after shutdown), the input is counted done, so the progress loop always ends.
struct ItemGuard<'a, R> {
    batch: &'a Batch<R>,
    pool: &'a ThreadPool,
    index: usize,
    reported: bool,
}

impl<R> ItemGuard<'_, R> {
    fn report(mut self, result: Result<R, TaskError>) {
        self.reported = true;
        self.batch.finish(self.index, result);
    }
}

impl<R> Drop for ItemGuard<'_, R> {
    fn drop(&mut self) {
        if !self.reported {
            // Dropped unrun: discarded while queued (by `cancel_all`, `shutdown_now`, or a queue
            // policy that dropped the entry: the discard says which), or refused by a shut-down
            // pool.
            let reason = crate::policy::discard_reason().unwrap_or(if self.pool.is_shutdown() {
                CancelReason::Shutdown
            } else {
                CancelReason::Dropped
            });
            self.batch
                .finish(self.index, Err(TaskError::Cancelled(reason)));
        }
    }
}

impl ThreadPool {
    /// Runs `f` over every input on the pool and returns the results in input order, calling
    /// `progress` on the calling thread as inputs finish.
    ///
    /// Neither the inputs, the results nor `f` need to be `'static`: the batch runs in a
    /// [`scope`](Self::scope), so `f` may borrow from the caller's stack and the inputs may be
    /// references.
    ///
    /// A panic in `f` fails only that input (`Err(TaskError::Panicked)`). An input the pool
    /// refused because it was shut down comes back as `Err(TaskError::Cancelled(Shutdown))`, one
    /// discarded while queued by [`cancel_all`](Self::cancel_all) or
    /// [`shutdown_now`](Self::shutdown_now) as `Cancelled(CancelAll)` or `Cancelled(Shutdown)`,
    /// and one whose entry a queue policy dropped as `Cancelled(Dropped)`. A
    /// panic in `progress` is caught and stops further progress calls; the batch goes on. `f`
    /// and `progress` are dropped quietly: a `Drop` of theirs that panics cannot cost the caller
    /// the results.
    /// Called from inside one of the pool's tasks, the calling worker runs queued tasks while it
    /// waits, so a nested batch cannot deadlock the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    ///
    /// let pool = ThreadPool::new(4).unwrap();
    /// let mut seen = Vec::new();
    /// let squares = pool.map_batch(1..=5u64, |x| x * x, |p| seen.push(p.done));
    /// let squares: Vec<u64> = squares.into_iter().map(Result::unwrap).collect();
    /// assert_eq!(squares, [1, 4, 9, 16, 25]);
    /// assert_eq!(seen.last(), Some(&5));
    /// ```
    ///
    /// Borrowed inputs and a borrowing `f`:
    ///
    /// ```
    /// use pool_core::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let names = vec!["ada".to_string(), "grace".to_string()];
    /// let greeting = String::from("hello");
    /// let lines = pool.map_batch(&names, |name| format!("{greeting}, {name}"), |_| {});
    /// let lines: Vec<String> = lines.into_iter().map(Result::unwrap).collect();
    /// assert_eq!(lines, ["hello, ada", "hello, grace"]);
    /// ```
    pub fn map_batch<I, T, R, F, P>(
        &self,
        inputs: I,
        f: F,
        progress: P,
    ) -> Vec<Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>,
        T: Send,
        R: Send,
        F: Fn(T) -> R + Sync,
        P: FnMut(BatchProgress),
    {
        // Dropped when the batch returns, after the results are out of the batch's state.
        let (f, mut progress) = (QuietDrop::new(f), QuietDrop::new(progress));
        let inputs: Vec<T> = inputs.into_iter().collect();
        let total = inputs.len();
        let batch = Batch {
            state: Mutex::new(BatchState {
                results: (0..total).map(|_| None).collect(),
                done: 0,
            }),
            progressed: Condvar::new(),
        };
        let (batch_ref, f) = (&batch, &*f);
        // The body never panics (each input's panic and the callback's are caught), and refused
        // or discarded inputs are reported by their guards, so the outcome carries nothing.
        let outcome = self.scope_with(OnReject::Drop, |s| {
            for (index, input) in inputs.into_iter().enumerate() {
                let guard = ItemGuard {
                    batch: batch_ref,
                    pool: self,
                    index,
                    reported: false,
                };
                s.spawn(move |_| {
                    guard.report(catch_panic(|| f(input)).map_err(TaskError::Panicked));
                });
            }

            let mut reported = 0;
            let mut progress_alive = true;
            loop {
                let done = self.wait_for_progress(batch_ref, reported);
                if done > reported && progress_alive {
                    reported = done;
                    progress_alive =
                        call_quietly(|| (*progress)(BatchProgress { done, total })).is_some();
                }
                reported = reported.max(done);
                if done == total {
                    break;
                }
            }
        });
        if let Err(payload) = outcome.result {
            std::panic::resume_unwind(payload);
        }
        let results = std::mem::take(&mut batch.state.lock().results);
        results
            .into_iter()
            .map(|slot| slot.unwrap_or(Err(TaskError::Cancelled(CancelReason::Dropped))))
            .collect()
    }

    /// Waits until more than `seen` inputs are done (or all are), helping with queued work when
    /// called from one of this pool's workers.
    fn wait_for_progress<R>(&self, batch: &Batch<R>, seen: usize) -> usize {
        let total = batch.state.lock().results.len();
        loop {
            {
                let state = batch.state.lock();
                if state.done > seen || state.done == total {
                    return state.done;
                }
            }
            if crate::yield_now() == Some(crate::Yield::Executed) {
                continue;
            }
            let state = batch.state.lock();
            if state.done > seen || state.done == total {
                return state.done;
            }
            // Nothing to help with (or not a worker): the remaining inputs are queued for or
            // running on workers, and each notifies when it finishes.
            drop(batch.progressed.wait(state));
        }
    }
}
