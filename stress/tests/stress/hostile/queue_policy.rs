//! The `policy` part: the round's pool takes its priority queue through a queue policy that
//! panics at random in every method the pool calls (SPEC 10: `QueuePolicy` impls are user code).
//! A push may panic having kept its entry, or before keeping it (the entry is dropped: the pool
//! counts its task cancelled); a pop may take an entry and panic (the same); `len`,
//! `is_empty` and the finished and discarded reports may panic. Before the round's pool, a build
//! whose policy's `attach` panics (having taken the queue, half the time) must be refused with
//! the typed error and leave the queue free. Panics carry a string or a payload whose own
//! `Drop` panics.

use std::sync::Arc;

use policy_priority::PriorityQueue;
use pool_core::{PolicyRefused, Priority, QueuePolicy, QueuedTask};

use super::kit::{Census, Dice, Ending};

/// How often each call panics, in percent: rare enough that most of a round's tasks get through
/// the queue, often enough that every method panics in a few rounds.
const PERCENT: u32 = 2;

/// The round's priority queue behind hostile methods.
pub struct HostileQueue {
    queue: PriorityQueue,
    dice: Arc<Dice>,
    census: Census,
    /// Whether `attach` panics (the refused build before the round's pool).
    attach_panics: bool,
}

impl std::fmt::Debug for HostileQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileQueue")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl HostileQueue {
    pub fn new(queue: &PriorityQueue, seed: u64, census: &Census, attach_panics: bool) -> Self {
        HostileQueue {
            queue: queue.clone(),
            dice: Arc::new(Dice::new(seed ^ 0x9071C7)),
            census: census.clone(),
            attach_panics,
        }
    }

    /// Panics (a string or a hostile payload, by the dice) on a roll of `percent`.
    fn maybe_panic(&self, percent: u32, what: &str) {
        if self.dice.roll(percent) {
            self.panic_now(what);
        }
    }

    /// Panics with a string or a hostile payload, by the dice.
    fn panic_now(&self, what: &str) -> ! {
        let ending = if self.dice.roll(50) {
            Ending::Panics
        } else {
            Ending::PanicsWithPayload
        };
        ending.act(&self.census, what);
        unreachable!("a panicking ending returned")
    }
}

impl QueuePolicy for HostileQueue {
    fn push(&self, task: QueuedTask) {
        if self.dice.roll(PERCENT) {
            // Before keeping it: the entry is dropped, then the panic unwinds.
            drop(task);
            self.panic_now("a queue policy's push, dropping its entry");
        }
        self.queue.push(task);
        self.maybe_panic(PERCENT, "a queue policy's push, after keeping its entry");
    }

    fn pop(&self) -> Option<QueuedTask> {
        let task = self.queue.pop();
        if task.is_some() && self.dice.roll(PERCENT) {
            drop(task);
            self.panic_now("a queue policy's pop, dropping its entry");
        }
        task
    }

    fn len(&self) -> usize {
        self.maybe_panic(PERCENT, "a queue policy's len");
        self.queue.len()
    }

    fn is_empty(&self) -> bool {
        self.maybe_panic(PERCENT, "a queue policy's is_empty");
        self.queue.is_empty()
    }

    fn honors_priority(&self) -> bool {
        self.queue.honors_priority()
    }

    fn attach(&self) -> Result<(), PolicyRefused> {
        if self.attach_panics {
            // After taking the queue half the time: the refused policy's drop must free it.
            if self.dice.roll(50) {
                let _ = self.queue.attach();
            }
            self.maybe_panic(100, "a queue policy's attach");
        }
        self.queue.attach()
    }

    fn on_finished_many(&self, priority: Priority, count: u64) {
        self.maybe_panic(PERCENT, "a queue policy's finished report");
        self.queue.on_finished_many(priority, count);
    }

    fn on_discarded(&self, priority: Priority, count: u64) {
        self.maybe_panic(PERCENT, "a queue policy's discarded report");
        self.queue.on_discarded(priority, count);
    }
}
