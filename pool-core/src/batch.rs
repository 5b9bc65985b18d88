//! Run a function over many inputs, report progress, and return the results in input order.

use crate::error::{CancelReason, TaskError};
use crate::sync::{Arc, Condvar, Mutex};
use crate::unwind::{call_quietly, catch_panic, drop_quietly};
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

/// Reports one input when the job is dropped without having run (discarded by `cancel_all` or
/// `shutdown_now`, or refused at submission), so a batch never waits for a job that will not run.
/// A job that ran reported first, and [`Batch::finish`] keeps the first report.
struct ReportIfUnrun<R> {
    batch: Arc<Batch<R>>,
    index: usize,
}

impl<R> Drop for ReportIfUnrun<R> {
    fn drop(&mut self) {
        self.batch
            .finish(self.index, Err(TaskError::Canceled(CancelReason::Dropped)));
    }
}

impl ThreadPool {
    /// Runs `f` over every input on the pool and returns the results in input order, calling
    /// `progress` on the calling thread as inputs finish.
    ///
    /// A panic in `f` fails only that input (`Err(TaskError::Panicked)`). An input the pool
    /// refused because it was shut down comes back as `Err(TaskError::Canceled(Shutdown))`, one
    /// discarded while queued (`cancel_all`, `shutdown_now`) as `Err(TaskError::Canceled(Dropped))`. A
    /// panic in `progress` is caught and stops further progress calls; the batch goes on.
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
    pub fn map_batch<I, T, R, F, P>(
        &self,
        inputs: I,
        f: F,
        mut progress: P,
    ) -> Vec<Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>,
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(T) -> R + Send + Sync + 'static,
        P: FnMut(BatchProgress),
    {
        let inputs: Vec<T> = inputs.into_iter().collect();
        let total = inputs.len();
        let batch = Arc::new(Batch {
            state: Mutex::new(BatchState {
                results: (0..total).map(|_| None).collect(),
                done: 0,
            }),
            progressed: Condvar::new(),
        });
        let f = Arc::new(f);
        for (index, input) in inputs.into_iter().enumerate() {
            // The guard reports the input even if the job never runs: `cancel_all` or
            // `shutdown_now` discard (drop) queued jobs, and a batch must not wait for them.
            let guard = ReportIfUnrun {
                batch: Arc::clone(&batch),
                index,
            };
            let f = Arc::clone(&f);
            let job = move || {
                let result = catch_panic(|| f(input)).map_err(TaskError::Panicked);
                guard.batch.finish(guard.index, result);
            };
            if let Err(refused) = self.spawn(job) {
                batch.finish(index, Err(TaskError::Canceled(CancelReason::Shutdown)));
                drop(refused);
            }
        }

        let mut reported = 0;
        let mut progress_alive = true;
        loop {
            let done = self.wait_for_progress(&batch, reported);
            if done > reported && progress_alive {
                reported = done;
                progress_alive = call_quietly(|| progress(BatchProgress { done, total })).is_some();
            }
            reported = reported.max(done);
            if done == total {
                break;
            }
        }
        let mut state = batch.state.lock();
        std::mem::take(&mut state.results)
            .into_iter()
            .map(|slot| slot.unwrap_or(Err(TaskError::Canceled(CancelReason::Dropped))))
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
