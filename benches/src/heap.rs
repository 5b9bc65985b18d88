//! A counting global allocator: the net heap bytes requested while [`measure`] runs.
//!
//! RSS growth (see [`crate::procfs::rss_bytes`]) is what the machine pays, but the allocator may
//! serve a workload from memory an earlier workload freed, so RSS can under-report. The counter
//! is exact for the bytes requested (not the allocator's own per-chunk overhead), so the memory
//! rows show both.
//!
//! Counting is off by default: every allocation then pays one relaxed load of a flag that is
//! only written by [`measure`], so the throughput rows are not disturbed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Mutex;

static COUNTING: AtomicBool = AtomicBool::new(false);
static NET_BYTES: AtomicIsize = AtomicIsize::new(0);
/// One measurement at a time: two would count each other's allocations.
static MEASURING: Mutex<()> = Mutex::new(());

/// The system allocator, counting requested bytes while [`measure`] runs.
///
/// # Examples
///
/// ```
/// // Installed by this crate as the global allocator; using the crate is enough.
/// let (bytes, v) = benches::heap::measure(|| vec![0u8; 1000]);
/// assert!(bytes >= 1000);
/// drop(v);
/// ```
#[derive(Debug)]
pub struct CountingAllocator;

fn count(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        NET_BYTES.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is `System`'s; the counting around it touches only atomics and never
// allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        new
    }
}

/// Runs `f` and returns the net heap bytes requested (by every thread) while it ran, with
/// `f`'s result. Frees of memory allocated before the call count negative, so keep other
/// threads quiet while measuring.
///
/// # Examples
///
/// ```
/// let (bytes, boxes) = benches::heap::measure(|| (0..100).map(|i| Box::new([i as u64; 4])).collect::<Vec<_>>());
/// assert!(bytes >= 100 * 32);
/// drop(boxes);
/// ```
pub fn measure<R>(f: impl FnOnce() -> R) -> (isize, R) {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    NET_BYTES.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let result = f();
    COUNTING.store(false, Ordering::SeqCst);
    (NET_BYTES.load(Ordering::SeqCst), result)
}
