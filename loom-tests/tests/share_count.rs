//! Loom models of pool-core's `ShareCount` (`pool-core/src/share_count.rs`), the completion count
//! spread over per-thread slots that a scope counts its jobs with. Under loom every thread gets
//! slot 0 (`sync::thread_slot`), so the scope models never reach a second slot: these models pick
//! each thread's slot themselves (`add_in`), so that epochs start and end on distinct slots.
//!
//! Each model asserts, whatever the interleaving: exactly one release returns `true`; at that
//! release no share is out (`out`, decremented by each holder just before it releases, is zero);
//! and the zero-releaser sees every holder's plain write (a loom `UnsafeCell` per holder, written
//! before its release, read by the zero-releaser: loom reports the read as a data race unless the
//! releases order it).
//!
//! Planted bug: `--cfg loom_broken_share_epoch` skips a slot epoch's `total` add, so a slot's
//! 1 → 0 step takes `total` to zero while the creator's share is out. Both models catch it
//! (`.ci/loom-planted` runs `a_share_handed_between_slots_reaches_zero_once`).
//!
//! Run: `RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2
//! CARGO_TARGET_DIR=target/loom cargo test --release -p loom-tests --test share_count`.
#![cfg(loom)]

use loom_tests::model;
use pool_core::sync::{thread, Arc, AtomicUsize, Ordering, Share, ShareCount, UnsafeCell};

/// One count and what its holders report to the zero-releaser.
struct Shared {
    count: ShareCount,
    /// One plain cell per holder, written before the holder's last release.
    cells: [UnsafeCell<usize>; 3],
    /// Shares not yet handed to `release` (decremented just before each release).
    out: AtomicUsize,
    /// Releases that returned `true`.
    zeros: AtomicUsize,
}

impl Shared {
    /// A count with `out` shares in hand (the creator's included) and the creator's share.
    fn new(out: usize) -> (Arc<Self>, Share) {
        let (count, creators) = ShareCount::new();
        let shared = Shared {
            count,
            cells: [UnsafeCell::new(0), UnsafeCell::new(0), UnsafeCell::new(0)],
            out: AtomicUsize::new(out),
            zeros: AtomicUsize::new(0),
        };
        (Arc::new(shared), creators)
    }

    /// Holder `who` writes its cell, then releases `share`.
    fn write_and_release(&self, who: usize, share: Share) {
        // SAFETY: cell `who` is written only by holder `who`, and read only by the
        // zero-releaser, which the count orders after this write (what loom checks).
        self.cells[who].with_mut(|cell| unsafe { *cell = who + 1 });
        self.release(share);
    }

    /// Releases `share`; the zero-releaser checks that nothing is out and reads every cell.
    fn release(&self, share: Share) {
        self.out.fetch_sub(1, Ordering::Relaxed);
        if self.count.release(share) {
            self.zeros.fetch_add(1, Ordering::Relaxed);
            // Relaxed: the count's AcqRel releases must order every holder's decrement.
            assert_eq!(
                self.out.load(Ordering::Relaxed),
                0,
                "the count reached zero while a share was out"
            );
            for (who, cell) in self.cells.iter().enumerate() {
                // SAFETY: every holder has released (checked by loom: a read racing a
                // holder's write is reported).
                let value = cell.with(|cell| unsafe { *cell });
                assert_eq!(value, who + 1, "holder {who}'s write is not visible");
            }
        }
    }
}

/// Model (a). Invariant: a share handed from one slot's thread to another's (a job spawning its
/// successor, which another worker steals) keeps the count above zero; exactly one release
/// reaches zero, and it sees every holder's write.
///
/// The creator (slot 7) adds a share in slot 1 for thread 1 and releases its own. Thread 1 adds
/// a share for its successor in its own slot (1 → 2: no `total` write), hands it to thread 2 and
/// releases its own. Thread 2, on slot 2, first adds its own share (0 → 1: a new epoch), then
/// releases the received one (emptying slot 1, or not, as thread 1's release falls), then its
/// own. Every slot step races another slot's.
#[test]
fn a_share_handed_between_slots_reaches_zero_once() {
    model("a_share_handed_between_slots_reaches_zero_once", || {
        // Shares in hand: the creator's, thread 1's, the successor's, thread 2's own.
        let (shared, creators) = Shared::new(4);
        let first = shared.count.add_in(1);
        let one = Arc::clone(&shared);
        let t1 = thread::spawn(move || {
            let successor = one.count.add_in(1);
            let two = Arc::clone(&one);
            let t2 = thread::spawn(move || {
                let own = two.count.add_in(2);
                two.release(successor);
                two.write_and_release(2, own);
            });
            one.write_and_release(1, first);
            t2
        });
        shared.write_and_release(0, creators);
        t1.join().unwrap().join().unwrap();
        assert_eq!(shared.zeros.load(Ordering::Relaxed), 1, "zero reached once");
        assert_eq!(shared.count.outstanding(), 0);
    });
}

/// Model (b). Invariant: a slot emptied (1 → 0) by another thread while its owner starts a new
/// epoch on it (0 → 1) never lets the count reach zero early: the new epoch's `total` share is
/// taken before its share exists, and the old epoch's is released after its own.
///
/// The creator, on slot 0, adds a share there and hands it to thread 1, which writes and
/// releases it (slot 0's 1 → 0, unless the creator's next add came first). Meanwhile the creator
/// adds a second share on slot 0 (a 0 → 1 step when thread 1 emptied the slot first, even halfway
/// through thread 1's release), releases its own share, and then writes and releases the second.
#[test]
fn a_slot_emptied_while_its_owner_starts_a_new_epoch() {
    model("a_slot_emptied_while_its_owner_starts_a_new_epoch", || {
        // Shares in hand: the creator's, the handed one, the creator's second.
        let (shared, creators) = Shared::new(3);
        // Cell 2 has no holder here: filled before any share is handed out.
        // SAFETY: no other thread exists yet.
        shared.cells[2].with_mut(|cell| unsafe { *cell = 3 });
        let handed = shared.count.add_in(0);
        let other = Arc::clone(&shared);
        let t1 = thread::spawn(move || {
            other.write_and_release(1, handed);
            EMPTIED_FIRST.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let second = shared.count.add_in(0);
        // Thread 1 done by now (no loom switch point since the add's last atomic): it emptied
        // slot 0 before the add's `fetch_add`, or ran during the add's `total` add, which only a
        // new epoch makes. Either way this add started a new epoch.
        if EMPTIED_FIRST.swap(false, std::sync::atomic::Ordering::Relaxed) {
            NEW_EPOCHS_SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        shared.release(creators);
        shared.write_and_release(0, second);
        t1.join().unwrap();
        assert_eq!(shared.zeros.load(Ordering::Relaxed), 1, "zero reached once");
        assert_eq!(shared.count.outstanding(), 0);
        EMPTIED_FIRST.store(false, std::sync::atomic::Ordering::Relaxed);
    });
    // The model is only worth its time if some interleaving emptied the slot before the
    // creator's second add, which then started a new epoch.
    assert!(NEW_EPOCHS_SEEN.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// Set by thread 1 of model (b) once its release is done; plain std atomics, outside the protocol
/// (loom does not see them), only to count the interleavings that reach a new epoch.
static EMPTIED_FIRST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static NEW_EPOCHS_SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
