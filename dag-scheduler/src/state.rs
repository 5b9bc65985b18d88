//! One run's per-node state, packed: 24 bytes per node, 40 with timing (see README.md, "Data").
//!
//! Plain data with no protocol of its own: `run/` decides who writes what and when, and the
//! report and `Context` read it. Nothing here calls user code.

use std::any::{Any, TypeId};

use pool_core::sync::{AtomicU64, Ordering, UnsafeCell};

/// `blocked_by` of a node no failure reached.
pub(crate) const NONE: u32 = u32::MAX;

/// The low half of a join word: dependencies not finished yet.
const PENDING: u64 = u32::MAX as u64;

/// A node's output, type-erased (`Box<()>` does not allocate).
pub(crate) type Output = Box<dyn Any + Send + Sync>;

// The outcomes other than an output are stored in the output's place as values of these private
// types: a user's output can never be one of them, so a downcast tells them apart, and the slot
// is one fat pointer (16 B) instead of an enum of 24 B. `SkippedMark` and `CancelledMark` are
// zero-sized (boxing them allocates nothing); the failed node that a skip names is already in the
// node's join word.
struct FailedMark(Box<str>);
struct SkippedMark;
struct CancelledMark;

/// What became of a node, as the run decides it.
pub(crate) enum Decision {
    Output(Output),
    Failed(Box<str>),
    /// Skipped because of the failed node in the node's `blocked_by` (the root cause).
    Skipped,
    Cancelled,
}

/// What became of a node, as readers see it.
pub(crate) enum Slot<'a> {
    /// Not decided yet (never seen in a completed run).
    Empty,
    Output(&'a (dyn Any + Send + Sync)),
    Failed(&'a str),
    /// Skipped because of this failed node (the root cause, not the nearest dependency).
    Skipped(u32),
    Cancelled,
}

/// One node's state in one run.
pub(crate) struct NodeState {
    /// The join word: low half, dependencies not finished yet (untouched for nodes with one
    /// dependency); high half, the failed node that poisons this one, or `NONE` (the node itself
    /// when marked failed before the run). One word, so the release that makes the node ready
    /// also publishes its poison (the same location, earlier in the releasing thread).
    join: AtomicU64,
    /// Written once, by the thread that took the join counter to zero, before it releases any
    /// successor; read by successors and the report after.
    slot: UnsafeCell<Option<Output>>,
}

impl NodeState {
    pub(crate) fn new(in_degree: u32) -> Self {
        NodeState {
            join: AtomicU64::new(join_word(in_degree, NONE)),
            slot: UnsafeCell::new(None),
        }
    }

    /// Back to the state of a fresh run; the slot was emptied by [`take`](Self::take).
    pub(crate) fn reset(&self, in_degree: u32) {
        self.join
            .store(join_word(in_degree, NONE), Ordering::Relaxed);
    }

    /// Before the run starts: this node is marked failed.
    pub(crate) fn mark_failed(&self, index: u32) {
        let pending = self.join.load(Ordering::Relaxed) & PENDING;
        self.join
            .store(pending | u64::from(index) << 32, Ordering::Relaxed);
    }

    /// The failed node that poisons this one, or `NONE`.
    pub(crate) fn blocked_by(&self) -> u32 {
        (self.join.load(Ordering::Relaxed) >> 32) as u32
    }

    /// Records `cause` as the poison unless one is recorded already (the first failure wins).
    /// Published by the caller's later release of the counter (or its submission of the node).
    pub(crate) fn poison(&self, cause: u32) {
        let mut word = self.join.load(Ordering::Relaxed);
        // Retries only when a concurrent release changed the counter half.
        while word >> 32 == u64::from(NONE) {
            match self.join.compare_exchange(
                word,
                (word & PENDING) | u64::from(cause) << 32,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
    }

    /// One dependency finished; whether it was the last one. Exactly one call sees it, and
    /// `AcqRel` makes every dependency's slot write visible to the thread that does.
    pub(crate) fn release(&self) -> bool {
        self.join.fetch_sub(1, Ordering::AcqRel) & PENDING == 1
    }

    /// Records the node's outcome.
    ///
    /// # Safety
    ///
    /// The caller took the node's counter to zero (it alone writes the slot, once), and nobody
    /// reads the slot before the caller's releases.
    #[inline]
    pub(crate) unsafe fn decide(&self, decision: Decision) {
        let stored: Output = match decision {
            Decision::Output(output) => output,
            Decision::Failed(message) => Box::new(FailedMark(message)),
            Decision::Skipped => Box::new(SkippedMark),
            Decision::Cancelled => Box::new(CancelledMark),
        };
        // SAFETY: the caller's contract: this thread is the only writer, and no reader yet.
        self.slot.with_mut(|p| unsafe { *p = Some(stored) });
    }

    /// Records the node's output: the common case of [`decide`](Self::decide), one store
    /// (the slot is empty, so there is nothing to drop first).
    ///
    /// # Safety
    ///
    /// As for [`decide`](Self::decide). The slot is empty: a run decides each node once, and a
    /// state array is reused only after its slots were taken (had it held a value, that
    /// value would leak, never be read twice).
    #[inline(always)]
    pub(crate) unsafe fn put_output(&self, output: Output) {
        // SAFETY: the caller's contract: this thread is the only writer, and no reader yet.
        self.slot.with_mut(|p| unsafe {
            debug_assert!((*p).is_none(), "a slot is written once per run");
            p.write(Some(output));
        });
    }

    /// The node's outcome.
    ///
    /// # Safety
    ///
    /// The caller has acquired the slot's write (it depends on the node and its counter
    /// reached zero, or the run has completed).
    pub(crate) unsafe fn slot(&self) -> Slot<'_> {
        // SAFETY: the caller's contract: the write happened before, and none follows.
        let stored = self.slot.with(|p| unsafe { &*p });
        let Some(stored) = stored else {
            return Slot::Empty;
        };
        // Deref the box: `Any` on the box itself would name the box's type.
        let value: &(dyn Any + Send + Sync) = &**stored;
        // One virtual `type_id` call, compared with the three marks (a report reads every
        // slot: `is_success` on a 1M-node run is a million of these).
        let id = value.type_id();
        if id == TypeId::of::<FailedMark>() {
            match value.downcast_ref::<FailedMark>() {
                Some(FailedMark(message)) => Slot::Failed(message),
                None => Slot::Output(value), // unreachable: the type id matched
            }
        } else if id == TypeId::of::<SkippedMark>() {
            Slot::Skipped(self.blocked_by())
        } else if id == TypeId::of::<CancelledMark>() {
            Slot::Cancelled
        } else {
            Slot::Output(value)
        }
    }

    /// Empties the slot (the run is over: `&mut`), handing back the output for the caller to
    /// drop (user code: quietly).
    pub(crate) fn take(&mut self) -> Option<Output> {
        // SAFETY: `&mut self`: no other reference to the state exists.
        self.slot.with_mut(|p| unsafe { (*p).take() })
    }
}

fn join_word(pending: u32, blocked_by: u32) -> u64 {
    u64::from(pending) | u64::from(blocked_by) << 32
}

/// Per-node timing as the report reads it.
#[derive(Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// The thread's lane (1-based; equal for equal threads).
    pub(crate) thread: u64,
}

/// Where the thread's lane sits in [`PackedTiming::start`]: 48 bits of nanoseconds are 78
/// hours from the run's start (a user clock past that reads as its end).
const LANE_SHIFT: u32 = 48;
const TIME_MASK: u64 = (1 << LANE_SHIFT) - 1;

/// One node's timing in 16 bytes: the start in the low 48 bits with the thread's lane above
/// (0: the node did not run), and the end.
#[derive(Clone, Copy, Default)]
pub(crate) struct PackedTiming {
    start: u64,
    end: u64,
}

impl PackedTiming {
    /// `thread` is any per-thread number; two threads whose numbers are equal modulo 65535
    /// share a lane in the trace (the only cost of the packing).
    pub(crate) fn new(start: u64, end: u64, thread: u64) -> Self {
        let lane = thread % 0xFFFF + 1;
        PackedTiming {
            start: start.min(TIME_MASK) | lane << LANE_SHIFT,
            end,
        }
    }

    pub(crate) fn unpack(self) -> Option<Timing> {
        let lane = self.start >> LANE_SHIFT;
        (lane != 0).then_some(Timing {
            start: self.start & TIME_MASK,
            end: self.end,
            thread: lane,
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_node_state_is_24_bytes_and_its_timing_16() {
        assert_eq!(std::mem::size_of::<NodeState>(), 24);
        assert_eq!(std::mem::size_of::<UnsafeCell<PackedTiming>>(), 16);
    }

    #[test]
    fn the_slot_gives_back_each_outcome() {
        let state = NodeState::new(2);
        state.poison(7);
        state.poison(9); // the first failure wins
        assert!(!state.release());
        // SAFETY: one thread, no concurrent reader.
        unsafe {
            assert!(matches!(state.slot(), Slot::Empty));
            state.decide(Decision::Skipped);
            assert!(matches!(state.slot(), Slot::Skipped(7)));
            state.decide(Decision::Failed("no".into()));
            assert!(matches!(state.slot(), Slot::Failed("no")));
            state.decide(Decision::Cancelled);
            assert!(matches!(state.slot(), Slot::Cancelled));
            state.decide(Decision::Output(Box::new(5u8)));
            assert!(matches!(state.slot(), Slot::Output(v) if v.downcast_ref() == Some(&5u8)));
        }
        assert!(state.release());
    }

    #[test]
    fn timing_keeps_start_end_and_lane() {
        let t = PackedTiming::new(1_000, 2_000, 3).unpack().unwrap();
        assert_eq!((t.start, t.end, t.thread), (1_000, 2_000, 4));
        assert!(PackedTiming::default().unpack().is_none());
        let late = PackedTiming::new(u64::MAX, u64::MAX, 0).unpack().unwrap();
        assert_eq!(late.start, TIME_MASK);
    }
}
