//! The per-key slot: which execution is pending, which is running, and every transition between
//! them, each done in one critical section of the key's shard lock.
//!
//! See `README.md` in this directory for the protocol. Every function here returns what the
//! caller must do *after* releasing the lock (publish an outcome, hand a job to the executor,
//! drop a closure): user code (closure destructors, wakers, executors) never runs under a shard
//! lock, so it may re-enter the coalescer.

use std::any::Any;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::panic::{catch_unwind, AssertUnwindSafe};

use pool_core::sync::{Arc, CachePadded, ErasedArc, Mutex};
use pool_core::Priority;

use crate::exec::{BoxedWork, Exec};
use crate::keymap::{KeyMap, Place};
use crate::options::Mode;
use crate::stats::{Counts, KeyStats};

/// An execution as the map, the jobs and the handles share it.
pub(crate) type ExecutionRef<K, T> = ErasedArc<Exec<K, T>>;

/// The sharded key map. Shared (loom-aware `Arc`) by the coalescer and by every execution, so a
/// handle can detach itself without knowing the executor type.
pub(crate) struct KeySlots<K, T> {
    shards: Box<[LockedShard<K, T>]>,
    /// log2 of the shard count.
    shard_bits: u32,
    /// Hashes each submitted key once (SipHash, randomly keyed): its top bits pick the shard,
    /// and the shard's map reuses the whole hash (see `keymap.rs`).
    hasher: RandomState,
}

type LockedShard<K, T> = CachePadded<Mutex<Shard<K, T>>>;

struct Shard<K, T> {
    /// Only keys with something pending or running: an entry leaves the map in the same critical
    /// section that empties it, so the map never outgrows the keys with live work.
    map: KeyMap<K, Entry<K, T>>,
    /// This shard's books, kept under its lock so the submit path touches no shared counter.
    counts: Counts,
}

/// A key's slot: idle (absent), pending, running, or running + pending.
struct Entry<K, T> {
    running: Option<Running<K, T>>,
    pending: Option<Pending<K, T>>,
}

impl<K, T> Entry<K, T> {
    fn is_empty(&self) -> bool {
        self.running.is_none() && self.pending.is_none()
    }
}

struct Pending<K, T> {
    exec: ExecutionRef<K, T>,
    /// The latest submitter's closure (or the first one's, for `Keep` joiners).
    work: BoxedWork<T>,
    next_ticket: u64,
    /// Handles that have not cancelled; the execution is cancelled when this reaches zero.
    live: usize,
    /// The highest priority of any submitter; never lowered.
    priority: Priority,
    /// Whether a job for it was handed to the executor (a follow-up waits until the running
    /// execution of its key finishes).
    dispatched: bool,
    /// Jobs for this execution that the executor holds (the first plus priority raises). When
    /// the last one is dropped unrun, the execution is cancelled (`CoalesceCancelReason::Dropped`).
    jobs_out: usize,
}

struct Running<K, T> {
    exec: ExecutionRef<K, T>,
    next_ticket: u64,
    live: usize,
}

/// What a submission became; the caller acts on it after the lock is released.
pub(crate) struct Admission<K, T> {
    /// The submitter's key, when an entry for it existed: the caller drops it after the lock.
    pub(crate) key: Option<K>,
    /// The execution joined or created; `None` when the caller wants no handle and has no job
    /// to send (a merged fire-and-forget submit touches no reference count).
    pub(crate) exec: Option<ExecutionRef<K, T>>,
    pub(crate) ticket: u64,
    pub(crate) kept: bool,
    /// A new execution: hand its first job to the executor at this priority.
    pub(crate) dispatch: Option<Priority>,
    /// A higher-priority submitter joined a dispatched execution: send one more job at this
    /// priority; whichever job a worker reaches first runs the execution.
    pub(crate) bump: Option<Priority>,
    /// A closure to drop outside the lock (the superseded one, or the newcomer under `Keep`).
    pub(crate) dropped: Option<BoxedWork<T>>,
}

/// The submitter's key panicked in `Eq` while its shard was searched: nothing changed. The
/// caller drops the closure and the key quietly and resumes the panic.
pub(crate) struct KeyPanicked<K, T> {
    pub(crate) payload: Box<dyn Any + Send>,
    pub(crate) key: K,
    pub(crate) work: BoxedWork<T>,
}

/// What a finished run leaves to do: dispatch the key's follow-up, if one was waiting.
pub(crate) type FollowUp<K, T> = Option<(ExecutionRef<K, T>, Priority)>;

/// A key whose entry a transition removed, for the caller to drop after the lock is released
/// (its `Drop` is user code).
pub(crate) type Removed<K> = Option<K>;

/// The result of a handle's cancel.
pub(crate) struct Detached<T> {
    /// Whether the handle detached before the execution started.
    pub(crate) before_start: bool,
    /// The execution's closure, when this was the last live handle (the execution is cancelled).
    pub(crate) cancelled: Option<BoxedWork<T>>,
}

fn same<K, T>(a: &ExecutionRef<K, T>, b: &Exec<K, T>) -> bool {
    std::ptr::eq(ErasedArc::as_ptr(a), b)
}

impl<K: Hash + Eq, T> KeySlots<K, T> {
    pub(crate) fn new(shards: usize) -> Self {
        debug_assert!(shards.is_power_of_two());
        KeySlots {
            shards: (0..shards)
                .map(|_| {
                    CachePadded::new(Mutex::new(Shard {
                        map: KeyMap::new(),
                        counts: Counts::default(),
                    }))
                })
                .collect(),
            shard_bits: shards.trailing_zeros(),
            hasher: RandomState::new(),
        }
    }

    /// The key's hash: runs the key's `Hash` (user code), so only submitters call it, before
    /// they take a lock.
    pub(crate) fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(crate) fn shard_of(&self, hash: u64) -> usize {
        if self.shard_bits == 0 {
            return 0;
        }
        (hash >> (64 - self.shard_bits)) as usize
    }

    /// Runs the submit transition: join the pending execution (replacing its closure, or not
    /// under `Keep`), join the running one (`Keep`), queue a follow-up behind the running one,
    /// or create a new pending execution.
    ///
    /// `hash` is [`KeySlots::hash`] of `key`. The key's `Eq` runs in the search, before anything
    /// changes; if it panics, the submission is handed back untouched and uncounted.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn admit(
        slots: &Arc<Self>,
        key: K,
        hash: u64,
        mode: Mode,
        priority: Priority,
        work: BoxedWork<T>,
        bumps: bool,
        want_handle: bool,
    ) -> Result<Admission<K, T>, KeyPanicked<K, T>> {
        let index = slots.shard_of(hash);
        let mut guard = slots.shards[index].lock();
        let Shard { map, counts } = &mut *guard;
        let search = {
            let (map, key) = (&mut *map, &key);
            catch_unwind(AssertUnwindSafe(move || {
                let map = map; // moved, not reborrowed: the found entry outlives the closure
                map.find(hash, key)
            }))
        };
        let found = match search {
            Ok(found) => found,
            Err(payload) => return Err(KeyPanicked { payload, key, work }),
        };
        counts.submitted += 1;
        let Some((place, entry)) = found else {
            let mut created = None;
            map.insert(hash, key, |place| {
                let exec = ErasedArc::new(Exec::new(slots.clone(), place, index));
                created = Some(exec.clone());
                Entry {
                    running: None,
                    pending: Some(Pending::new(exec, work, priority, true)),
                }
            });
            let Some(exec) = created else {
                unreachable!("insert makes the entry")
            };
            return Ok(Admission::created(exec, Some(priority)));
        };
        let key = Some(key);
        if mode == Mode::Replace {
            if let Some(running) = &entry.running {
                if !running.exec.stop_requested() {
                    running.exec.request_stop();
                    counts.replaced += 1;
                }
            }
        }
        if let Some(pending) = entry.pending.as_mut() {
            let ticket = pending.next_ticket;
            pending.next_ticket += 1;
            pending.live += 1;
            counts.coalesced += 1;
            let (kept, dropped) = if mode == Mode::Keep {
                counts.kept += 1;
                (true, work)
            } else {
                counts.superseded += 1;
                pending.exec.install(ticket);
                (false, std::mem::replace(&mut pending.work, work))
            };
            let mut bump = None;
            if priority > pending.priority {
                pending.priority = priority;
                // An undispatched follow-up is simply dispatched at the raised priority later.
                if pending.dispatched && bumps {
                    pending.jobs_out += 1;
                    bump = Some(priority);
                }
            }
            return Ok(Admission {
                key,
                exec: (want_handle || bump.is_some()).then(|| pending.exec.clone()),
                ticket,
                kept,
                dispatch: None,
                bump,
                dropped: Some(dropped),
            });
        }
        if let (Mode::Keep, Some(running)) = (mode, entry.running.as_mut()) {
            let ticket = running.next_ticket;
            running.next_ticket += 1;
            running.live += 1;
            counts.coalesced += 1;
            counts.kept += 1;
            return Ok(Admission {
                key,
                exec: want_handle.then(|| running.exec.clone()),
                ticket,
                kept: true,
                dispatch: None,
                bump: None,
                dropped: Some(work),
            });
        }
        // Running and nothing pending: the follow-up waits until the running execution finishes
        // (one execution per key at a time), so it is not dispatched yet. An entry is never
        // empty, so `running` is set here; were it not, the new execution is dispatched now.
        let waits = entry.running.is_some();
        #[cfg(loom_broken_coalesce_followup)] // planted bug (loom-tests, `.ci/loom-planted`)
        let waits = false;
        let exec = ErasedArc::new(Exec::new(slots.clone(), place, index));
        entry.pending = Some(Pending::new(exec.clone(), work, priority, !waits));
        Ok(Admission {
            key,
            ..Admission::created(exec, (!waits).then_some(priority))
        })
    }

    /// A job for `exec` was reached by a worker: if the execution is still pending, it becomes
    /// the key's running execution and the caller gets its closure. `None` for a stale job (a
    /// priority raise's duplicate, or a cancelled execution).
    pub(crate) fn start(&self, exec: &Exec<K, T>) -> Option<BoxedWork<T>> {
        let mut guard = self.shards[exec.shard].lock();
        let Shard { map, counts } = &mut *guard;
        let entry = map.get(exec.place)?;
        if !entry.pending.as_ref().is_some_and(|p| same(&p.exec, exec)) {
            return None;
        }
        let pending = entry.pending.take()?;
        debug_assert!(entry.running.is_none(), "one execution per key at a time");
        exec.mark_running();
        counts.executed += 1;
        entry.running = Some(Running {
            exec: pending.exec,
            next_ticket: pending.next_ticket,
            live: pending.live,
        });
        Some(pending.work)
    }

    /// The running execution of the key returned (or panicked). Clears the running slot and
    /// releases the follow-up, if one waits; removes the entry when nothing is left.
    pub(crate) fn finish(&self, exec: &Exec<K, T>, panicked: bool) -> (FollowUp<K, T>, Removed<K>) {
        let mut guard = self.shards[exec.shard].lock();
        let Shard { map, counts } = &mut *guard;
        if panicked {
            counts.panicked += 1;
        } else {
            counts.completed += 1;
        }
        let Some(entry) = map.get(exec.place) else {
            return (None, None);
        };
        if entry.running.as_ref().is_some_and(|r| same(&r.exec, exec)) {
            entry.running = None;
        }
        let follow_up = match entry.pending.as_mut() {
            Some(pending) if !pending.dispatched => {
                pending.dispatched = true;
                pending.jobs_out = 1;
                Some((pending.exec.clone(), pending.priority))
            }
            _ => None,
        };
        (follow_up, remove_if_empty(map, exec.place))
    }

    /// A job for `exec` was dropped without running. When it was the last one the executor
    /// held and the execution is still pending, the execution is cancelled and its closure is
    /// returned (the caller publishes `Cancelled(Dropped)`).
    pub(crate) fn job_gone(&self, exec: &Exec<K, T>) -> (Option<BoxedWork<T>>, Removed<K>) {
        let mut guard = self.shards[exec.shard].lock();
        let Shard { map, counts } = &mut *guard;
        let Some(entry) = map.get(exec.place) else {
            return (None, None);
        };
        let Some(pending) = entry.pending.as_mut().filter(|p| same(&p.exec, exec)) else {
            return (None, None);
        };
        pending.jobs_out = pending.jobs_out.saturating_sub(1);
        if pending.jobs_out > 0 {
            return (None, None);
        }
        let work = entry.pending.take().map(|p| p.work);
        counts.cancelled += 1;
        (work, remove_if_empty(map, exec.place))
    }

    /// The executor refused the job that was meant to start `exec`. If no other job for it is
    /// out, the execution is removed and its closure returned, with the ticket of the submitter
    /// it belongs to (the caller publishes `Rejected`, and may hand the closure back).
    #[allow(clippy::type_complexity)]
    pub(crate) fn refused(&self, exec: &Exec<K, T>) -> (Option<(BoxedWork<T>, u64)>, Removed<K>) {
        let mut guard = self.shards[exec.shard].lock();
        let Shard { map, counts } = &mut *guard;
        let Some(entry) = map.get(exec.place) else {
            return (None, None);
        };
        let Some(pending) = entry.pending.as_mut().filter(|p| same(&p.exec, exec)) else {
            return (None, None);
        };
        if pending.jobs_out > 1 {
            // A priority raise's job is still out and may yet run it; the refused job's guard
            // decrements `jobs_out` when the caller drops it.
            return (None, None);
        }
        let work = entry.pending.take().map(|p| (p.work, exec.installed()));
        counts.rejected += 1;
        (work, remove_if_empty(map, exec.place))
    }

    /// A handle gives up its vote. Before the start it detaches (and the last live handle
    /// cancels the execution); while running, the last live handle asks the closure to stop.
    pub(crate) fn detach(&self, exec: &Exec<K, T>) -> (Detached<T>, Removed<K>) {
        let mut guard = self.shards[exec.shard].lock();
        let Shard { map, counts } = &mut *guard;
        let not_found = Detached {
            before_start: false,
            cancelled: None,
        };
        let Some(entry) = map.get(exec.place) else {
            return (not_found, None);
        };
        if let Some(pending) = entry.pending.as_mut().filter(|p| same(&p.exec, exec)) {
            pending.live -= 1;
            if pending.live > 0 {
                let detached = Detached {
                    before_start: true,
                    cancelled: None,
                };
                return (detached, None);
            }
            let cancelled = entry.pending.take().map(|p| p.work);
            counts.cancelled += 1;
            let detached = Detached {
                before_start: true,
                cancelled,
            };
            return (detached, remove_if_empty(map, exec.place));
        }
        if let Some(running) = entry.running.as_mut().filter(|r| same(&r.exec, exec)) {
            running.live -= 1;
            if running.live == 0 {
                exec.request_stop();
            }
        }
        (not_found, None)
    }

    /// Cancels the key's pending execution (returned, for the caller to resolve) and asks the
    /// running one to stop. The second value says whether a running execution was asked.
    ///
    /// `hash` is [`KeySlots::hash`] of `key`; the key's `Eq` runs in the search, before anything
    /// changes, and a panic there reaches the caller (whose key it is).
    #[allow(clippy::type_complexity)]
    pub(crate) fn cancel_key(
        &self,
        key: &K,
        hash: u64,
    ) -> (Option<(ExecutionRef<K, T>, BoxedWork<T>)>, bool, Removed<K>) {
        let mut guard = self.shards[self.shard_of(hash)].lock();
        let Shard { map, counts } = &mut *guard;
        let Some((place, entry)) = map.find(hash, key) else {
            return (None, false, None);
        };
        let cancelled = entry.pending.take().map(|p| (p.exec, p.work));
        if cancelled.is_some() {
            counts.cancelled += 1;
        }
        let stopped = match &entry.running {
            Some(running) => {
                running.exec.request_stop();
                true
            }
            None => false,
        };
        (cancelled, stopped, remove_if_empty(map, place))
    }

    /// The books of every shard, summed. Each shard's snapshot is taken under its lock and
    /// balances on its own, so the sum balances too.
    pub(crate) fn counts(&self) -> (Counts, usize, u64, u64) {
        let mut total = Counts::default();
        let (mut keys, mut pending, mut running) = (0, 0, 0);
        for shard in self.shards.iter() {
            let shard = shard.lock();
            total.add(&shard.counts);
            keys += shard.map.len();
            for entry in shard.map.values() {
                pending += u64::from(entry.pending.is_some());
                running += u64::from(entry.running.is_some());
            }
        }
        (total, keys, pending, running)
    }

    /// What `key` has in flight; `hash` is [`KeySlots::hash`] of `key` (its `Eq` runs here).
    pub(crate) fn key_stats(&self, key: &K, hash: u64) -> Option<KeyStats> {
        let mut shard = self.shards[self.shard_of(hash)].lock();
        let (_, entry) = shard.map.find(hash, key)?;
        Some(KeyStats {
            pending: entry.pending.as_ref().map(|p| (p.exec.id, p.priority)),
            running: entry.running.as_ref().map(|r| r.exec.id),
            live_handles: entry.pending.as_ref().map_or(0, |p| p.live)
                + entry.running.as_ref().map_or(0, |r| r.live),
        })
    }
}

/// Keeps the invariant "an entry is never empty": the transition that empties an entry removes
/// it in the same critical section. The key comes back to be dropped after the lock.
fn remove_if_empty<K: Eq, T>(map: &mut KeyMap<K, Entry<K, T>>, place: Place) -> Removed<K> {
    if !map.get(place)?.is_empty() {
        return None;
    }
    map.remove(place).map(|(key, _)| key)
}

impl<K, T> Pending<K, T> {
    fn new(
        exec: ExecutionRef<K, T>,
        work: BoxedWork<T>,
        priority: Priority,
        dispatched: bool,
    ) -> Self {
        Pending {
            exec,
            work,
            next_ticket: 1,
            live: 1,
            priority,
            dispatched,
            jobs_out: usize::from(dispatched),
        }
    }
}

impl<K, T> Admission<K, T> {
    fn created(exec: ExecutionRef<K, T>, dispatch: Option<Priority>) -> Self {
        Admission {
            key: None,
            exec: Some(exec),
            ticket: 0,
            kept: false,
            dispatch,
            bump: None,
            dropped: None,
        }
    }
}
