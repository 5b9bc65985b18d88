//! Who the workers are: each live worker's entry (its stealer, its counter block), the totals of
//! the workers that have gone, and the stealer list the workers iterate over.
//!
//! A worker joins under the registry's lock (`register`). It leaves without queueing for that
//! lock (`deregister`): it marks its block `DONE`, and one leaving worker at a time (whoever
//! takes the sweeper's turn) removes every entry so marked in one pass (`sweep`), marking each
//! `SWEPT`; the others wait for their mark, not for the lock. Why: beside a few hundred CPU-bound threads on 2 cores, workers
//! retiring one after another each queued for the lock, and every hand-over of it waited for the
//! next holder to get a CPU (policy-adaptive's `large_switch`: 448 deregistrations waited 142 s
//! in all in one run, 316 ms each); meanwhile `stats()` and the controller's reads queued behind
//! them. Now one holder removes a whole batch, and the others go as soon as they see their mark.

use super::shutdown::SubmitGates;
use super::stats::{Counters, Totals, WorkerStats, DONE, SWEPT};
use crate::deque::Stealer;
use crate::policy::Work;
use crate::sync::{Arc, AtomicBool, AtomicU64, Backoff, CachePadded, Mutex, Ordering};

/// A worker's registration, visible to the other workers (to steal) and to `stats()`.
pub(crate) struct WorkerEntry {
    pub(crate) index: usize,
    /// When the worker started, in nanoseconds after the process epoch: written once, before
    /// the entry is registered, so read under the registry's lock like the rest of the entry
    /// (kept out of `Counters` so that a block is one cache line: see there).
    pub(crate) started_at: u64,
    pub(crate) stealer: Stealer<Work>,
    pub(crate) counters: Arc<CachePadded<Counters>>,
}

#[derive(Default)]
pub(crate) struct RegistryInner {
    pub(crate) workers: Vec<WorkerEntry>,
    /// Counters of workers that have exited, folded in so totals never go backwards.
    retired: Totals,
    /// What stealing workers iterate over; replaced (not mutated) on every change.
    stealers: Arc<Vec<Stealer<Work>>>,
}

/// Who the workers are. Changes only when a worker starts or leaves.
pub(crate) struct Registry {
    pub(crate) inner: Mutex<RegistryInner>,
    /// Bumped on every change so workers refresh their cached stealer list with one load.
    pub(crate) generation: AtomicU64,
    /// Set while a leaving worker sweeps (`deregister`): the others wait for their mark.
    sweeping: AtomicBool,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            inner: Mutex::new(RegistryInner::default()),
            generation: AtomicU64::new(0),
            sweeping: AtomicBool::new(false),
        }
    }

    pub(crate) fn register(&self, entry: WorkerEntry) {
        let mut inner = self.inner.lock();
        // Kept in index order (workers start concurrently, so they may register out of order),
        // so that `read_workers` needs no sort: the shift costs less than the thread start it
        // is part of.
        let at = inner.workers.partition_point(|w| w.index < entry.index);
        inner.workers.insert(at, entry);
        self.changed(&mut inner);
    }

    /// Takes a leaving worker's entry out, once `counters` (its block) are final: nothing of
    /// the worker's may count after this. Returns once the entry is gone, swept by this thread
    /// or by the leaving worker sweeping meanwhile; of the leaving workers, only the one
    /// sweeping ever waits for the lock (behind a reader or a starting worker, never behind
    /// another leaving worker).
    pub(crate) fn deregister(&self, counters: &Counters) {
        // `Release`: a sweeper that reads the mark (`Acquire`) reads the final counters.
        counters.parked_since.store(DONE, Ordering::Release);
        let backoff = Backoff::new();
        loop {
            // The sweeper's turn is a flag, not a `try_lock` of the lock itself: loom 0.7 reports
            // false deadlocks around a failed `try_lock` (tokio-rs/loom#376).
            if self
                .sweeping
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                // Our mark was stored before we took the turn: this sweep removes our entry.
                self.sweep(&mut self.inner.lock());
                self.sweeping.store(false, Ordering::Release);
                return;
            }
            // Another leaving worker is sweeping. If its sweep saw our mark, we are out; if not,
            // its turn ends and we take the next. `Acquire`: pairs with the sweeper's `Release`,
            // so the entry is gone before we go.
            // (`--cfg loom_broken_registry_sweep` goes without waiting: loom-tests.)
            if cfg!(loom_broken_registry_sweep)
                || counters.parked_since.load(Ordering::Acquire) == SWEPT
            {
                return;
            }
            backoff.snooze();
        }
    }

    /// Removes every entry marked `DONE` (its counters folded into `retired`), and marks each
    /// one `SWEPT` once the stealer list no longer has it, so that its worker may go.
    fn sweep(&self, inner: &mut RegistryInner) {
        let RegistryInner {
            workers, retired, ..
        } = inner;
        let mut swept = Vec::new();
        workers.retain(|w| {
            let done = w.counters.parked_since.load(Ordering::Acquire) == DONE;
            if done {
                retired.add(&w.counters);
                swept.push(Arc::clone(&w.counters));
            }
            !done
        });
        if swept.is_empty() {
            return;
        }
        self.changed(inner);
        for counters in swept {
            counters.parked_since.store(SWEPT, Ordering::Release);
        }
    }

    /// After a change of the entries: a new stealer list, and a new generation to say so.
    fn changed(&self, inner: &mut RegistryInner) {
        inner.stealers = Arc::new(inner.workers.iter().map(|w| w.stealer.clone()).collect());
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// How each live worker has spent its life (see [`WorkerStats`]).
    pub(crate) fn worker_stats(&self) -> Vec<WorkerStats> {
        let mut stats = Vec::new();
        let inner = self.inner.lock();
        Self::read_workers(&inner, &mut stats);
        stats
    }

    /// Replaces `out` with each live worker's stats, in index order (the registry's).
    pub(crate) fn read_workers(inner: &RegistryInner, out: &mut Vec<WorkerStats>) {
        Self::fetch_blocks(inner);
        let now = crate::clock::nanos_since_epoch(std::time::Instant::now());
        out.clear();
        out.extend(
            inner
                .workers
                .iter()
                .filter_map(|w| WorkerStats::read(w.index, w.started_at, &w.counters, now)),
        );
        debug_assert!(
            out.is_sorted_by_key(|w| w.index),
            "`register` keeps index order"
        );
    }

    /// [`read_totals`](Self::read_totals) and [`worker_stats`](Self::worker_stats) in one
    /// critical section: the workers' counter blocks are fetched into the cache once (the
    /// worker pass first), and `out` is reused.
    pub(crate) fn read_all(&self, external: &SubmitGates, out: &mut Vec<WorkerStats>) -> Totals {
        let inner = self.inner.lock();
        Self::read_workers(&inner, out);
        Self::totals_of(&inner, external)
    }

    /// A balanced snapshot of every counter: retired workers', live workers' and `external`'s.
    pub(crate) fn read_totals(&self, external: &SubmitGates) -> Totals {
        let inner = self.inner.lock();
        Self::fetch_blocks(&inner);
        Self::totals_of(&inner, external)
    }

    /// Brings every live worker's counter block into the cache before a pass reads it.
    ///
    /// Read after a controller's 100 ms wait, the blocks are out of the cache, one miss each. The
    /// passes that read them do enough per block (a worker's stats, the sums) that the core has
    /// only a few of those misses in flight at once; this loop does one load per block and
    /// nothing else, so the misses overlap. Measured on a 2-core VM at 256 workers, medians of
    /// 40 reads each after a 100 ms sleep: `stats_with_workers` 15.7-19.0 µs without it,
    /// 9.9-11.4 µs with it; `stats` 11.2-11.9 and 7.5-8.0 µs; warm, 1.3-2 µs either way. The
    /// loaded values are not used: this is a cache hint, not a read any snapshot depends on,
    /// so loom (where it would only add interleavings to explore) does without it.
    #[inline]
    fn fetch_blocks(inner: &RegistryInner) {
        #[cfg(not(loom))]
        {
            let mut touched = 0;
            for worker in &inner.workers {
                touched ^= worker.counters.parked_since.load(Ordering::Relaxed);
            }
            std::hint::black_box(touched);
        }
        #[cfg(loom)]
        let _ = inner;
    }

    fn totals_of(inner: &RegistryInner, external: &SubmitGates) -> Totals {
        // The caller's lock keeps each worker either in `workers` or folded into `retired` for
        // the whole read, so none is counted twice or missed between passes.
        let blocks = inner
            .workers
            .iter()
            .map(|w| &**w.counters)
            .chain(external.blocks());
        Totals::read(inner.retired, blocks)
    }

    pub(crate) fn stealers(&self) -> Arc<Vec<Stealer<Work>>> {
        self.inner.lock().stealers.clone()
    }

    /// Entries in the registry (workers that have not deregistered yet), for tests.
    pub(crate) fn entries(&self) -> usize {
        self.inner.lock().workers.len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
