//! [`LevelQueue`]: five lock-free FIFO levels and a bitmap of the non-empty ones, generic over
//! what it holds. The protocol (which race each step closes) is in the crate's `src/README.md`.
//!
//! The starvation guard's state and its aging check are in `guard.rs`. What each thread counts
//! across its pops (`PopRun`) stays here, below the queue: in a file of its own its small
//! functions landed in another codegen unit and were no longer inlined into the pop's paths.

use std::cell::Cell;
use std::fmt;

use pool_core::sync::{fence, AtomicU64, AtomicU8, Backoff, CachePadded, Ordering};
use pool_core::Priority;

use crate::clock::Clock;
use crate::config::Aging;
use crate::injector::{Injector, Steal};
use crate::levels::{top_level, Counts, Entry, Slot, LEVELS, STRIPES};
use crate::stats::PerLevel;

mod guard;

use guard::{raise, Guard};

/// A thread-safe five-level priority queue with a starvation guard, generic over its entries.
///
/// This is the structure inside [`PriorityQueue`](crate::PriorityQueue), usable on its own (for
/// example to order work for another executor). Entries of a level come out first in, first out;
/// higher levels come out first, except that an entry that has waited longer than the
/// [`Aging`] bound is served ahead of newer higher-priority entries (oldest overdue first, at
/// most every other pop). `push` and `pop` are O(1) in the number of queued entries.
///
/// Each level is a lock-free FIFO (crossbeam-deque's `Injector`); a bitmap of the possibly
/// non-empty levels tells `pop` which level to take from without looking at the others. Nothing
/// takes a lock, and a push reads no clock (aging stamps come from a coarse tick, see
/// [`Aging`]). What the pool relies on holds:
///
/// - once `push` returns, a `pop`, `len` or `is_empty` that starts afterwards sees the entry
///   (unless another pop took it first);
/// - a level's entries come out in the order their pushes took effect, so one thread's pushes at
///   a level come out in program order;
/// - a pop that starts after a push at a higher level returned takes that level (or an overdue
///   one) first. The one exception: while another pop is retiring that level's bit (it found the
///   level empty just before the push), and then that other pop serves the level itself.
///
/// # Examples
///
/// ```
/// use policy_priority::{Aging, LevelQueue};
/// use pool_core::Priority;
///
/// let queue = LevelQueue::with_aging(Aging::off());
/// queue.push("index files", Priority::Idle);
/// queue.push("render preview", Priority::High);
/// queue.push("render minimap", Priority::High);
/// assert_eq!(queue.len(), 3);
/// assert_eq!(queue.pop(), Some(("render preview", Priority::High)));
/// assert_eq!(queue.pop(), Some(("render minimap", Priority::High)));
/// assert_eq!(queue.pop(), Some(("index files", Priority::Idle)));
/// assert!(queue.is_empty());
/// ```
pub struct LevelQueue<T> {
    levels: Levels<Entry<T>>,
}

/// [`LevelQueue`]'s state and protocol, generic over what a level's injector holds ([`Slot`]):
/// `LevelQueue<T>` stores each item beside its stamp, [`PriorityQueue`](crate::PriorityQueue)
/// stores pool-core's `QueuedTask` as it is, its stamp in the entry's `tag`.
pub(crate) struct Levels<S> {
    /// One FIFO per level, indexed by `Priority::index` (crossbeam pads its head and tail).
    levels: [Injector<S>; LEVELS],
    /// Bit `i` is set while level `i` may be non-empty: set by a push after its entry is in the
    /// level, cleared by a pop that found the level empty, then re-checked (README.md).
    nonempty: CachePadded<AtomicU8>,
    /// Entries taken per level, for the stats (`pushed` is these plus the ones still queued),
    /// counted by the popping thread in its own stripe: a count on the push side was a locked
    /// add per push on the submitting thread, which is the bottleneck of an external submitter
    /// (README.md, "Statistics").
    popped: [CachePadded<[AtomicU64; LEVELS]>; STRIPES],
    /// The setting, as given; `guard` is its state (`None` with aging off).
    aging: Aging,
    guard: Option<Guard>,
}

/// The order of the push's bitmap check (see `Levels::push`). `--cfg
/// loom_broken_priority_push_order` plants it relaxed: loom-tests'
/// `a_push_racing_a_retire_stays_visible` must then fail (`.ci/loom-planted`).
#[cfg(not(loom_broken_priority_push_order))]
const PUSH_CHECK_ORDER: Ordering = Ordering::SeqCst;
#[cfg(loom_broken_priority_push_order)]
const PUSH_CHECK_ORDER: Ordering = Ordering::Relaxed;

impl<S: Slot> Levels<S> {
    /// See [`LevelQueue::with_aging`].
    pub(crate) fn with_aging(aging: Aging) -> Self {
        Levels {
            levels: std::array::from_fn(|_| Injector::new()),
            nonempty: CachePadded::new(AtomicU8::new(0)),
            popped: std::array::from_fn(|_| {
                CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0)))
            }),
            aging,
            guard: aging.bound_nanos().map(Guard::new),
        }
    }

    /// See [`LevelQueue::aging`].
    pub(crate) fn aging(&self) -> Aging {
        self.aging
    }

    /// See [`LevelQueue::push`].
    // One test of the guard, up front, and a path per setting: tested before and again after
    // the injector's push (a call), the guard cost the submitter a second test and a value kept
    // across the call on every push.
    #[inline]
    pub(crate) fn push(&self, item: S::Item, priority: Priority) {
        let i = priority.index();
        let bit = 1u8 << i;
        let Some(guard) = &self.guard else {
            self.levels[i].push(S::stamped(item, 0));
            self.publish(bit);
            return;
        };
        // A push into an empty level reads the clock: after an idle spell (no pops) the tick can
        // be arbitrarily old (clock.rs), and this entry becomes the level's front, whose stamp
        // the aging rule compares. Pushes behind it take the tick as it is.
        if self.nonempty.load(Ordering::Relaxed) & bit == 0 {
            guard.refresh_clock();
        }
        // Always the tick (not the exact time a refresh read), so that stamps only ever come
        // from one monotonic source; rounded down to the entry's stamp unit here, so that the
        // front estimates compare the same values a pop widens.
        let stamp = Clock::round(guard.clock.tick());
        self.levels[i].push(S::stamped(item, Clock::stamp_of(stamp)));
        raise(&guard.newest[i], stamp);
        if self.publish(bit) {
            // This entry is (about) the level's front now.
            guard.raise_front(i, stamp);
        }
    }

    /// A push's step (P), after its entry is in its level: sets the level's bit if it reads it
    /// clear; whether this call set it.
    ///
    /// Publish the level in the bitmap *after* the entry is in it: either a retiring pop's
    /// re-check sees this entry, or this load sees its cleared bit and sets it again (README.md,
    /// "push vs retire"). No fence: the injector's push took its slot with a `SeqCst` CAS of the
    /// level's tail (crossbeam-deque 0.8), and this `SeqCst` load comes after that CAS in the
    /// single total order of `SeqCst` operations, which the retiring pop's `SeqCst` clear, fence
    /// and `SeqCst` emptiness check pair with. The load must stay `SeqCst`: relaxed, it may read
    /// the bitmap from before that clear while the re-check misses the entry (the loom retire
    /// models fail). (The fence cost every push a second full barrier after the CAS's.)
    #[inline]
    fn publish(&self, bit: u8) -> bool {
        self.nonempty.load(PUSH_CHECK_ORDER) & bit == 0
            && self.nonempty.fetch_or(bit, Ordering::SeqCst) & bit == 0
    }

    /// See [`LevelQueue::pop`].
    #[inline]
    pub(crate) fn pop(&self) -> Option<S::Popped> {
        let run = PopRun::start();
        // Only the pop count's test inline; the guard's check is in the cold call (together the
        // two tests compiled to a branchless seven instructions on every pop).
        if run.wants_refresh() {
            self.refresh_clock();
        }
        // The common case, inline: the top level is the one to serve without an aging check
        // (one level shows work, aging is off, the previous pop was aged, or this thread skips
        // the check: `Guard::choose`'s early return). The rest (an aging check with its clock
        // read, a contended steal) is `pop_slow`, out of line, so that this path keeps few live
        // values (callgrind: the whole loop inline spent about 20 instructions a pop on register
        // saves and stack moves). Same steps as `pop_slow`'s first round; it starts over with a
        // fresh load of the bitmap.
        // The mask changes no value (only bits below `LEVELS` are ever set); it tells the
        // compiler that `top` indexes `levels` in bounds, so the lookup below needs no check.
        let bits = self.nonempty.load(Ordering::SeqCst) & ALL_LEVELS;
        if bits != 0 {
            let top = top_level(bits);
            let others = bits & !(1u8 << top);
            // `others` first: with one level busy, the common case, that is the only test.
            let plain = others == 0
                || match &self.guard {
                    None => true,
                    Some(guard) => guard.skips_check(run),
                };
            if plain {
                // Only `self`, `top` and `others` live across the steal (a call), and only its
                // success tested here: a miss (empty, or crossbeam's spurious retry) goes out of
                // line, which reads this pop's number again from the thread-local
                // (`PopRun::again`). Matching the three outcomes here cost the common path ten
                // instructions of decoding and more saved registers (callgrind, README.md).
                if let Some(entry) = self.levels[top].steal().success() {
                    return Some(self.served(entry, top, false));
                }
                return self.top_missed(top, others);
            }
        }
        self.pop_slow(run)
    }

    /// `pop`'s steal did not take an entry from its top level: the level was empty, or the
    /// steal lost a race (crossbeam's `Retry`); `others` are the other levels its bitmap showed.
    /// A level that shows an entry now is a lost race (or a push since): start over. Not
    /// handled as an empty level: a retire's re-check would raise the level's front estimate to
    /// the current tick, past the older entries still in it ("Front estimates").
    #[inline(never)]
    fn top_missed(&self, top: usize, others: u8) -> Option<S::Popped> {
        let run = PopRun::again();
        if !self.levels[top].is_empty() {
            return self.pop_slow(run);
        }
        // Another level may hold work: clear this one's bit so that pops go there, on this
        // thread's first and then every `RETIRE_EVERY`th such find; else keep it and take the
        // most urgent entry (README.md, "Lazy retire").
        if others != 0 && run.retires() {
            self.retire(top);
            return self.pop_slow(run);
        }
        // `--cfg loom_broken_priority_skip` only (loom-tests checks that a model catches it): a
        // skipped retire that passes over the levels below.
        #[cfg(loom_broken_priority_skip)]
        if others != 0 {
            return None;
        }
        // The only level the bitmap shows is empty, or a skipped retire: keep the bit (lazy
        // retire).
        self.pop_any(run)
    }

    /// A pop's every-[`REFRESH_EVERY`](crate::clock::REFRESH_EVERY)th refresh of the clock, with
    /// aging on; out of line, so that the pop path keeps only the pop count's test.
    #[cold]
    #[inline(never)]
    fn refresh_clock(&self) {
        PopRun::take_stripe();
        if let Some(guard) = &self.guard {
            guard.clock.refresh();
        }
    }

    /// Bookkeeping for an entry a pop took from `level`; hands it out (`Slot::popped`).
    #[inline]
    fn served(&self, entry: S, level: usize, by_aging: bool) -> S::Popped {
        // `PopRun::stripe` is masked, so the index needs no check. `Release`
        // (free on x86-64: the add is a locked instruction anyway), so that a `counts` that
        // reads this count also sees the level without the entry (README.md, "Statistics").
        self.popped[PopRun::stripe()][level].fetch_add(1, Ordering::Release);
        if let Some(guard) = &self.guard {
            guard.served(level, entry.stamp(), by_aging);
        }
        // No write to the run of empty pops: the next empty pop sees that its predecessor was
        // not one (`PopRun::went_quiet`).
        entry.popped(level_priority(level))
    }

    /// `pop` beyond its common case: the aging choice between several non-empty levels, a
    /// retire, a contended steal.
    #[inline(never)]
    fn pop_slow(&self, run: PopRun) -> Option<S::Popped> {
        let backoff = Backoff::new();
        loop {
            let bits = self.nonempty.load(Ordering::SeqCst) & ALL_LEVELS;
            if bits == 0 {
                return self.pop_any(run);
            }
            let top = top_level(bits);
            let (level, by_aging) = match &self.guard {
                Some(guard) => guard.choose(bits, top, run),
                None => (top, false),
            };
            match self.levels[level].steal() {
                Steal::Success(entry) => return Some(self.served(entry, level, by_aging)),
                // Another level may hold work: clear this one's bit so that pops go there. Always
                // when aging chose it (its front estimate is stale: the push that refills it
                // must set it again), else on this thread's first and then every
                // `RETIRE_EVERY`th find (README.md, "Lazy retire").
                Steal::Empty if bits & !(1u8 << level) != 0 && (by_aging || run.retires()) => {
                    self.retire(level)
                }
                // The only level the bitmap shows is empty, or a skipped retire: keep its bit
                // (README.md, "Lazy retire"). The queue has likely just drained, and the next
                // push probably goes to the same level; retiring now would cost this pop a
                // clear, a fence and a re-check, and that push a set and a clock read, on every
                // drain.
                Steal::Empty => return self.pop_any(run),
                Steal::Retry => backoff.snooze(),
            }
        }
    }

    /// A pop found level `i` empty: clear its bit, then look again, because a push may have put
    /// an entry there after we looked but read the bit before we cleared it.
    #[inline(never)]
    fn retire(&self, i: usize) {
        let bit = 1u8 << i;
        self.nonempty.fetch_and(!bit, Ordering::SeqCst);
        // `--cfg loom_broken_priority_len` only (loom-tests checks that a model catches it):
        // skip the re-check, so a push that saw the bit still set before we cleared it leaves
        // its entry in a level the bitmap does not show; later pops serve lower levels first.
        #[cfg(not(loom_broken_priority_len))]
        self.recheck(bit);
    }

    /// After clearing the bits in `cleared`: sets again the bit of every such level that holds
    /// an entry now (README.md, "push vs retire").
    fn recheck(&self, cleared: u8) {
        fence(Ordering::SeqCst);
        let mut bits = cleared;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if !self.levels[i].is_empty() {
                self.nonempty.fetch_or(1u8 << i, Ordering::SeqCst);
                if let Some(guard) = &self.guard {
                    // Its entries were pushed while the bit looked set, so no push set the
                    // front estimate; they are at most as old as now.
                    guard.raise_front(i, guard.clock.tick());
                }
            }
        }
    }

    /// The bitmap shows no level with work: look at every level itself, most urgent first, so
    /// that a `None` means every level was seen empty after this pop started (whatever the
    /// bitmap's state while a retire is under way, and whichever bits stay set lazily).
    #[inline(never)]
    fn pop_any(&self, run: PopRun) -> Option<S::Popped> {
        let backoff = Backoff::new();
        for level in (0..LEVELS).rev() {
            while !self.levels[level].is_empty() {
                match self.levels[level].steal() {
                    Steal::Success(entry) => return Some(self.served(entry, level, false)),
                    Steal::Empty => break,
                    Steal::Retry => backoff.snooze(),
                }
            }
        }
        if run.went_quiet() {
            self.retire_quiet();
        }
        None
    }

    /// This thread has found the queue empty [`QUIET_AFTER`] times in a
    /// row: the queue is idle (the pool parks a worker after 64 empty rounds). Retire every bit
    /// still set, so that the next push into each level reads the clock and sets the level's
    /// front estimate, as a push into an empty level must after an idle spell (README.md, "Lazy
    /// retire").
    #[cold]
    fn retire_quiet(&self) {
        let bits = self.nonempty.load(Ordering::Relaxed);
        if bits == 0 {
            return;
        }
        self.nonempty.fetch_and(!bits, Ordering::SeqCst);
        // `--cfg loom_broken_priority_quiet` only (loom-tests checks that a model catches it):
        // clear the bits without looking at their levels again, so a push that read its bit as
        // set just before the clear stays hidden from the bitmap.
        #[cfg(not(loom_broken_priority_quiet))]
        self.recheck(bits);
        if let Some(guard) = &self.guard {
            // Workers are about to park: keep the tick fresh for pushes into levels whose bit
            // a concurrent push set again before this clear (they do not read the clock).
            guard.clock.refresh();
        }
    }

    /// See [`LevelQueue::len`].
    pub(crate) fn len(&self) -> usize {
        self.levels.iter().map(Injector::len).sum()
    }

    /// See [`LevelQueue::is_empty`].
    pub(crate) fn is_empty(&self) -> bool {
        self.levels.iter().all(Injector::is_empty)
    }

    /// See [`LevelQueue::queued_at`].
    pub(crate) fn queued_at(&self, priority: Priority) -> usize {
        self.levels[priority.index()].len()
    }

    /// `pushed` is derived: the entries taken from a level plus those still in it, read in that
    /// order, so that a pop between the two reads makes the figure lag by that entry rather
    /// than count it twice (exact once pushes and pops have stopped). A popped count read here
    /// (`Acquire`, paired with the pop's `Release` add) comes after that pop's steal, so the
    /// length read next no longer holds its entry (README.md, "Statistics").
    pub(crate) fn counts(&self) -> Counts {
        let popped = || -> [u64; LEVELS] {
            std::array::from_fn(|i| {
                self.popped
                    .iter()
                    .map(|stripe| stripe[i].load(Ordering::Acquire))
                    .sum()
            })
        };
        let queued = || -> [usize; LEVELS] { std::array::from_fn(|i| self.levels[i].len()) };
        // `--cfg loom_broken_priority_pushed` only (loom-tests checks that a model catches it):
        // the lengths first, so a pop between the reads is counted as queued and as popped.
        #[cfg(not(loom_broken_priority_pushed))]
        let (popped, queued) = {
            let popped = popped();
            (popped, queued())
        };
        #[cfg(loom_broken_priority_pushed)]
        let (popped, queued) = {
            let queued = queued();
            (popped(), queued)
        };
        Counts {
            queued,
            pushed: std::array::from_fn(|i| popped[i] + queued[i] as u64),
            aged: self
                .guard
                .as_ref()
                .map_or(0, |guard| guard.aged.load(Ordering::Relaxed)),
        }
    }
}

/// Every level's bit in `nonempty`.
const ALL_LEVELS: u8 = (1 << LEVELS) - 1;

/// The level at `index` (below [`LEVELS`]), by a table lookup: `Priority::from_index` is an
/// out-of-line call in pool-core, and this runs on every pop.
#[inline]
fn level_priority(index: usize) -> Priority {
    // `Priority::ALL` is most urgent first; indices count from Idle.
    Priority::ALL[LEVELS - 1 - index]
}

impl<T> LevelQueue<T> {
    /// An empty queue with the default starvation guard ([`Aging::default`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{Aging, LevelQueue};
    ///
    /// let queue = LevelQueue::<u32>::new();
    /// assert_eq!(queue.aging(), Aging::default());
    /// ```
    pub fn new() -> Self {
        Self::with_aging(Aging::default())
    }

    /// An empty queue with the given starvation guard.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{Aging, LevelQueue};
    /// use std::time::Duration;
    ///
    /// let queue = LevelQueue::<u32>::with_aging(Aging::after(Duration::from_millis(100))?);
    /// assert_eq!(queue.aging().bound(), Some(Duration::from_millis(100)));
    /// # Ok::<(), policy_priority::ConfigError>(())
    /// ```
    pub fn with_aging(aging: Aging) -> Self {
        LevelQueue {
            levels: Levels::with_aging(aging),
        }
    }

    /// The starvation guard this queue was built with.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{Aging, LevelQueue};
    ///
    /// assert_eq!(LevelQueue::<()>::with_aging(Aging::off()).aging(), Aging::off());
    /// ```
    pub fn aging(&self) -> Aging {
        self.levels.aging()
    }

    /// Appends `item` at the back of `priority`'s level.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::LevelQueue;
    /// use pool_core::Priority;
    ///
    /// let queue = LevelQueue::new();
    /// queue.push(1, Priority::Low);
    /// assert_eq!(queue.queued_at(Priority::Low), 1);
    /// ```
    #[inline]
    pub fn push(&self, item: T, priority: Priority) {
        self.levels.push(item, priority);
    }

    /// Takes the next entry and the level it was queued at (see the type's docs for the order).
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::LevelQueue;
    /// use pool_core::Priority;
    ///
    /// let queue = LevelQueue::new();
    /// assert_eq!(queue.pop(), None::<(u8, Priority)>);
    /// queue.push(7, Priority::Critical);
    /// assert_eq!(queue.pop(), Some((7, Priority::Critical)));
    /// ```
    #[inline]
    pub fn pop(&self) -> Option<(T, Priority)> {
        self.levels.pop()
    }

    /// How many entries are queued: the sum of the levels' lengths, each read without a lock
    /// (exact once pushes and pops have stopped).
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::LevelQueue;
    /// use pool_core::Priority;
    ///
    /// let queue = LevelQueue::new();
    /// queue.push('a', Priority::Idle);
    /// queue.push('b', Priority::High);
    /// assert_eq!(queue.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Whether nothing is queued: every level, read without a lock, is empty (not the bitmap,
    /// which can lag behind a push for an instant while a pop retires a level).
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::LevelQueue;
    ///
    /// assert!(LevelQueue::<u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// How many entries are queued at `priority`.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::LevelQueue;
    /// use pool_core::Priority;
    ///
    /// let queue = LevelQueue::new();
    /// queue.push((), Priority::Normal);
    /// assert_eq!(queue.queued_at(Priority::Normal), 1);
    /// assert_eq!(queue.queued_at(Priority::High), 0);
    /// ```
    pub fn queued_at(&self, priority: Priority) -> usize {
        self.levels.queued_at(priority)
    }

    #[cfg(test)]
    pub(crate) fn counts(&self) -> Counts {
        self.levels.counts()
    }
}

impl<T> Default for LevelQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for LevelQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = self.levels.counts();
        f.debug_struct("LevelQueue")
            .field("queued", &PerLevel(&counts.queued))
            .field("aging", &self.levels.aging)
            .finish()
    }
}

/// Consecutive empty pops of one thread after which the queue counts as idle and its bits are
/// retired (README.md, "Lazy retire"). Well under the pool's 64 search rounds before a worker
/// parks, so a parked pool has its bits retired; well over the few empty pops of a worker that
/// keeps up with a submitter. Two under loom, so that a model reaches both sides in a few pops.
const QUIET_AFTER: u32 = if cfg!(loom) { 2 } else { 16 };

/// A thread that finds the level it took from empty while another bit is set retires that bit on
/// its first such find and then on every this-many-th (README.md, "Lazy retire"). With several
/// levels busy and the workers keeping up (the levels drain after every task), retiring on every
/// find cost a clear, a fence and a re-check in the pop, and a set and a clock read in the push
/// that refilled the level, on most tasks, with the bitmap's line bouncing between the
/// submitter and the workers. A kept bit costs a pop one empty steal and the scan (`pop_any`).
/// Two under loom, so that a model reaches both a retire and a skipped one in a few pops.
const RETIRE_EVERY: u32 = if cfg!(loom) { 2 } else { 16 };

/// After an aging check that found nothing overdue, the calling thread's next this-many-minus-one
/// pops skip the check (and its clock read): with several levels busy, a clock read per pop cost
/// about a quarter of a push+pop's instructions. An overdue entry is so noticed at most this
/// many pops of each worker late (README.md, "Order").
const AGING_CHECK_EVERY: u32 = 8;

/// What the calling thread counts across its pops (thread-local: no shared line, one access per
/// pop). A thread that pops several queues counts them together; that moves when a refresh, an
/// aging check or a quiet retire happens, never whether a pop sees an entry.
struct PopCounts {
    /// Pops so far (wrapping): every [`REFRESH_EVERY`](crate::clock::REFRESH_EVERY)th refreshes
    /// the clock.
    pops: Cell<u32>,
    /// Empty pops in a row, as of the latest empty pop.
    empty: Cell<u32>,
    /// The value of `pops` at the latest empty pop: the run in `empty` goes on only if that was
    /// the pop just before. So a pop that takes an entry writes nothing to end the run.
    last_empty: Cell<u32>,
    /// The value of `pops` from which the aging check runs again.
    aging_from: Cell<u32>,
    /// Finds of an empty level with another bit set (wrapping): the first and every
    /// [`RETIRE_EVERY`]th retire the bit.
    empty_finds: Cell<u32>,
    /// The stripe of `Levels::popped` this thread counts in, masked on use: [`STRIPES`] (masked:
    /// stripe 0) until the thread's first every-32nd pop takes one (`PopRun::take_stripe`), out
    /// of the pop's common path. Any stripe is correct (the adds are atomic); its own stripe
    /// keeps a worker off the others' lines.
    stripe: Cell<usize>,
}

// A `const` initialiser where std allows it: no lazy-init check on the pop path. Loom's
// `thread_local!` has no `const` form.
#[cfg(not(loom))]
std::thread_local! {
    static POPS: PopCounts = const { PopCounts::new() };
}
#[cfg(loom)]
pool_core::sync::thread_local! {
    static POPS: PopCounts = PopCounts::new();
}

impl PopCounts {
    /// A thread's counts before its first pop: no stripe taken yet.
    const fn new() -> Self {
        PopCounts {
            pops: Cell::new(0),
            empty: Cell::new(0),
            last_empty: Cell::new(0),
            aging_from: Cell::new(0),
            empty_finds: Cell::new(0),
            stripe: Cell::new(STRIPES),
        }
    }
}

/// One pop's number in its thread's count (read once at its start), and the calls that move
/// the other counters. Each reads the thread-local itself, only on the path that needs it: with a
/// `const` thread-local that is an offset from the thread pointer, cheaper than carrying values.
#[derive(Clone, Copy)]
struct PopRun {
    n: u32,
}

impl PopRun {
    #[inline]
    fn start() -> Self {
        POPS.with(|counts| {
            let n = counts.pops.get().wrapping_add(1);
            counts.pops.set(n);
            PopRun { n }
        })
    }

    /// The current pop's run, read again (the number `start` gave it: no other pop of this
    /// thread ran since), so that the pop need not keep it across its steal.
    #[inline]
    fn again() -> Self {
        POPS.with(|counts| PopRun {
            n: counts.pops.get(),
        })
    }

    /// This thread's stripe of `Levels::popped` (see `PopCounts::stripe`).
    #[inline]
    fn stripe() -> usize {
        POPS.with(|counts| counts.stripe.get() & (STRIPES - 1))
    }

    /// Takes this thread's stripe if it has none yet (on the every-32nd pop's cold path). Under
    /// loom every thread keeps stripe 0 (see `levels::my_stripe`).
    #[cold]
    fn take_stripe() {
        #[cfg(not(loom))]
        POPS.with(|counts| {
            if counts.stripe.get() == STRIPES {
                counts.stripe.set(crate::levels::my_stripe());
            }
        });
    }

    #[inline]
    fn wants_refresh(self) -> bool {
        self.n & (crate::clock::REFRESH_EVERY - 1) == 0
    }

    /// Whether this pop may run the aging check: not within a skip after a check that found
    /// nothing overdue (a wrapping comparison: `aging_from` is at most AGING_CHECK_EVERY ahead).
    #[inline]
    fn may_check_aging(self) -> bool {
        POPS.with(|counts| self.n.wrapping_sub(counts.aging_from.get()) as i32 >= 0)
    }

    /// This pop found the level it chose empty while another bit is set: whether it retires
    /// that bit (this thread's first such find, then every [`RETIRE_EVERY`]th) or keeps it.
    /// `--cfg loom_broken_priority_skip` plants a skipped retire that passes over the other
    /// levels (`Levels::pop` then returns `None`): loom-tests'
    /// `a_skipped_retire_serves_the_levels_below` must then fail (`.ci/loom-planted`).
    #[inline]
    fn retires(self) -> bool {
        POPS.with(|counts| {
            let finds = counts.empty_finds.get();
            counts.empty_finds.set(finds.wrapping_add(1));
            finds % RETIRE_EVERY == 0
        })
    }

    /// An aging check found nothing overdue: skip it on this thread's next pops.
    #[cold]
    fn nothing_overdue(self) {
        POPS.with(|counts| {
            counts
                .aging_from
                .set(self.n.wrapping_add(AGING_CHECK_EVERY))
        });
    }

    /// The pop found nothing: true when that makes [`QUIET_AFTER`] in a row (and then every
    /// [`QUIET_AFTER`]th more, so that a worker searching for long retires bits set again by
    /// pushes it did not see). Every pop takes the next number (`start`), so the run goes on
    /// only if this thread's previous pop was the latest empty one; otherwise a pop in between
    /// took an entry and the run starts again at this one (which saves that pop a write).
    fn went_quiet(self) -> bool {
        POPS.with(|counts| {
            let previous = counts.last_empty.replace(self.n);
            let run = if previous == self.n.wrapping_sub(1) {
                counts.empty.get()
            } else {
                0
            };
            let empty = run.wrapping_add(1);
            counts.empty.set(empty);
            empty % QUIET_AFTER == 0
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
