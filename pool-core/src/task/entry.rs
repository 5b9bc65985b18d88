//! The queue's entry for a task with a handle: a thin pointer to the cell's header that holds
//! one strong count of the cell, and the per-type table through which it reaches the typed cell.
//! Split from `cell.rs`, which owns the cell's layout (`repr(C)`, the header at offset 0) that
//! every `unsafe` block here relies on.

use std::ptr::NonNull;

use super::cell::{Header, RawTask, RunOutcome, TaskCell, TaskFn};
use crate::error::CancelReason;
use crate::sync::ErasedArc as Arc;

/// The queue's reference to a task with a handle: one strong count of the task's `Arc`, held as a
/// thin pointer to the cell's header (8 bytes, so a queue entry is 16: see `policy::Work`). The
/// header's [`EntryVTable`] knows the cell's real type.
///
/// Dropping it while the task is still queued cancels the task with [`CancelReason::Dropped`], so
/// no handle waits forever on work an executor threw away.
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: a `TaskRef` is a strong count of an `Arc<TaskCell<F, T>>` with `F: Send, T: Send`; such
// an `Arc` is `Send` and `Sync` because the cell is `Send + Sync` (see the `Sync` impl of
// `TaskCell`: only the winner of the claim touches `F`; the rest is atomics and a mutex). Moving
// the count to another thread, or reading the header from two, is what that `Arc` allows.
unsafe impl Send for TaskRef {}
// SAFETY: as for `Send`: `&TaskRef` only reads the header, which is `Sync`.
unsafe impl Sync for TaskRef {}

/// The typed operations behind a [`TaskRef`], one static table per cell type.
pub(crate) struct EntryVTable {
    run: unsafe fn(NonNull<Header>, &dyn Fn()) -> RunOutcome,
    cancel: unsafe fn(NonNull<Header>, CancelReason) -> bool,
    release: unsafe fn(NonNull<Header>),
}

impl EntryVTable {
    pub(super) fn of<F, T>() -> &'static EntryVTable
    where
        F: TaskFn<T> + 'static,
        T: Send + 'static,
    {
        struct Table<F, T>(std::marker::PhantomData<(F, T)>);
        impl<F, T> Table<F, T>
        where
            F: TaskFn<T> + 'static,
            T: Send + 'static,
        {
            const VTABLE: EntryVTable = EntryVTable {
                run: run_entry::<F, T>,
                cancel: cancel_entry::<F, T>,
                release: release_entry::<F, T>,
            };
        }
        &Table::<F, T>::VTABLE
    }
}

/// # Safety
///
/// `header` points to the header of a live `TaskCell<F, T>` (these exact types), kept alive by a
/// strong count the caller holds. Every `TaskRef` satisfies this: it is made only from an
/// `Arc<TaskCell<F, T>>` whose header's vtable is `EntryVTable::of::<F, T>()`.
unsafe fn cell_of<'a, F, T>(header: NonNull<Header>) -> &'a TaskCell<F, T> {
    // SAFETY: the header is at offset 0 of the `repr(C)` cell, so the pointers are equal; the
    // caller's strong count keeps the cell alive for `'a` (see the function's contract).
    unsafe { header.cast::<TaskCell<F, T>>().as_ref() }
}

/// # Safety
///
/// As [`cell_of`].
unsafe fn run_entry<F, T>(header: NonNull<Header>, on_start: &dyn Fn()) -> RunOutcome
where
    F: TaskFn<T> + 'static,
    T: Send + 'static,
{
    // SAFETY: forwarded contract.
    let cell = unsafe { cell_of::<F, T>(header) };
    RawTask::run(cell, on_start)
}

/// # Safety
///
/// As [`cell_of`].
unsafe fn cancel_entry<F, T>(header: NonNull<Header>, reason: CancelReason) -> bool
where
    F: TaskFn<T> + 'static,
    T: Send + 'static,
{
    // SAFETY: forwarded contract.
    let cell = unsafe { cell_of::<F, T>(header) };
    RawTask::cancel(cell, reason)
}

/// Gives back the caller's strong count (dropping the cell if it was the last).
///
/// # Safety
///
/// As [`cell_of`], and the caller gives up its strong count: it never uses `header` again.
unsafe fn release_entry<F, T>(header: NonNull<Header>)
where
    F: TaskFn<T> + 'static,
    T: Send + 'static,
{
    // SAFETY: the pointer came from `Arc::into_raw` of an `Arc<TaskCell<F, T>>` (the cell's
    // address is its header's, `repr(C)`), and the caller hands over the count it held.
    drop(unsafe { Arc::from_raw(header.cast::<TaskCell<F, T>>().as_ptr()) });
}

impl TaskRef {
    /// Turns one strong count of a typed cell into a queue entry.
    pub(super) fn from_cell<F, T>(cell: Arc<TaskCell<F, T>>) -> TaskRef
    where
        F: TaskFn<T> + 'static,
        T: Send + 'static,
    {
        let raw = Arc::into_raw(cell).cast_mut().cast::<Header>();
        // SAFETY: `Arc::into_raw` never returns null.
        TaskRef(unsafe { NonNull::new_unchecked(raw) })
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: `self` holds a strong count, so the cell (and its header at offset 0) is alive
        // for as long as `self` is borrowed.
        unsafe { self.0.as_ref() }
    }

    pub(crate) fn run(self, on_start: &dyn Fn()) -> RunOutcome {
        let header = self.0;
        let vtable = self.header().vtable;
        // The count is given back below, by hand: `Drop` (which would cancel a still-queued task)
        // must not run as well.
        std::mem::forget(self);
        // SAFETY: `header` is a `TaskRef`'s pointer, whose count we now hold (forgotten above).
        let outcome = unsafe { (vtable.run)(header, on_start) };
        // If the handle is gone, this drops the cell, and with it the task's value, on the
        // worker: a panicking destructor there must not take the worker down.
        // SAFETY: we give up the count we held, and never use `header` again.
        crate::unwind::call_quietly(|| unsafe { (vtable.release)(header) });
        outcome
    }

    /// Cancels the task if still queued, and says whether this discard counts it.
    pub(crate) fn discard(self, reason: CancelReason) -> Discarded {
        let cancelled_now = self.cancel(reason);
        let count = self.header().is_cancelled() && self.header().claim_accounting();
        Discarded {
            cancelled_now,
            count,
        }
    }

    fn cancel(&self, reason: CancelReason) -> bool {
        // SAFETY: `self` holds a strong count for the whole call.
        unsafe { (self.header().vtable.cancel)(self.0, reason) }
    }

    /// Another queue entry for a task that has one already (used to raise its priority).
    pub(crate) fn another_entry(task: &Arc<dyn RawTask>) -> TaskRef {
        // The data pointer of the `dyn` is the cell's address, which is its header's (`repr(C)`).
        let raw = Arc::into_raw(Arc::clone(task)).cast::<Header>().cast_mut();
        // SAFETY: `Arc::into_raw` never returns null; the count taken by the clone is now this
        // entry's, and is given back through the header's vtable, which knows the cell's type.
        TaskRef(unsafe { NonNull::new_unchecked(raw) })
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        if self.header().is_queued() {
            self.cancel(CancelReason::Dropped);
        }
        let vtable = self.header().vtable;
        // SAFETY: `self` is being dropped: its count is given up here and never used again.
        unsafe { (vtable.release)(self.0) }
    }
}

/// What discarding an entry did.
pub(crate) struct Discarded {
    /// This discard prevented the task's start (it was still queued).
    pub(crate) cancelled_now: bool,
    /// This discard is the one that counts the cancellation in the stats.
    pub(crate) count: bool,
}
