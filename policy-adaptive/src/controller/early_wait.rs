//! How the controller's wait treats the early look: whether it is due now, and until when the
//! controller waits for it, so that an ask it can expect needs no wake-up.
//!
//! A closed loop whose client submits from outside the pool (each completion answered by a new
//! task, queued for an instant beside the worker that just finished) asks for an early look
//! within the backoff's gap after every look (`backed_off` in `schedule.rs`). Each ask woke the
//! controller only for it to wait again until the look was due: two wake-ups a look. While such
//! asks keep coming, the controller waits for the moment the look is due instead; the ask then
//! finds it waking in time (the promise of `ask.rs`), records the ask and does not notify, and
//! the look costs one wake-up. The handshake itself, and its invariant, are `ask.rs`'s.

use std::time::Instant;

/// What the wait does about the early look at this wake-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EarlyStep {
    /// Take it now.
    Look,
    /// Wait, no later than this (when the look is due), if at all for it.
    Wait(Option<Instant>),
}

/// The times a wake-up weighs: now, when the early look is due, where the last look's gap ends.
#[derive(Clone, Copy, Debug)]
pub(super) struct LookTimes {
    pub(super) now: Instant,
    /// The earliest moment the next early look may come (`early_at`).
    pub(super) due: Instant,
    /// The end of the backoff's gap after the last early look, if there was one.
    pub(super) gap_end: Option<Instant>,
}

/// The wait's memory of how the asks come, kept by the controller thread alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct EarlyWait {
    /// An ask came within the backoff's gap after a look, and no wait for an expected ask has
    /// ended without one since.
    asks_between: bool,
}

impl EarlyWait {
    pub(super) fn new() -> Self {
        EarlyWait { asks_between: true }
    }

    /// The step at a wake-up: `early` an ask is pending, `follow_up` the last look asked to look
    /// again without one, `expects` an ask may come (`expects_ask`: the last looks skipped and
    /// the pool is armed).
    ///
    /// A client that asks less often than the looks may come (tasks of 170 ms or more against
    /// the backoff's 160 ms cap) would make every wait for its ask end without one, a wake-up
    /// for nothing: the first such wait ends the expecting until an ask comes within the gap
    /// again, so at most one wake-up a look is spent on an ask that did not come, as the second
    /// wake-up before was.
    pub(super) fn step(
        &mut self,
        at: LookTimes,
        early: bool,
        follow_up: bool,
        expects: bool,
    ) -> EarlyStep {
        let asked = early || follow_up;
        if asked && at.now >= at.due {
            return EarlyStep::Look;
        }
        if early && at.gap_end.is_some_and(|end| at.now < end) {
            self.asks_between = true;
        }
        let expecting = !asked && expects && self.asks_between;
        if expecting && at.now >= at.due {
            // The ask did not come by then: it will wake the controller when it does.
            self.asks_between = false;
            return EarlyStep::Wait(None);
        }
        EarlyStep::Wait((asked || expecting).then_some(at.due))
    }
}

/// Whether the controller, not asked for a look yet, may wait only until the next early look is
/// due: the last early looks skipped (`skipped_early` > 0, the closed loop of the module doc)
/// and the pool is armed (a submission that finds work queued will ask).
pub(super) fn expects_ask(skipped_early: u32, armed: bool) -> bool {
    skipped_early > 0 && armed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// What a step should give, in milliseconds after the table's start.
    #[derive(Clone, Copy, Debug)]
    enum Want {
        Look,
        Until(u64),
        NoDeadline,
    }

    /// One wake-up, in milliseconds after the table's start: `now`, when the look is due, where
    /// the last look's gap ends; whether an ask is pending (`early`), a follow-up is, and an ask
    /// is expected; and the step it should give.
    type Wake = (u64, u64, Option<u64>, bool, bool, bool, Want);

    /// Steps one `EarlyWait` through `wakes` in order, checking each step.
    fn check(wakes: &[Wake]) {
        let t0 = Instant::now();
        let ms = |m| t0 + Duration::from_millis(m);
        let mut wait = EarlyWait::new();
        for (row, &(now, due, gap_end, early, follow_up, expects, want)) in wakes.iter().enumerate()
        {
            let times = LookTimes {
                now: ms(now),
                due: ms(due),
                gap_end: gap_end.map(ms),
            };
            let expected = match want {
                Want::Look => EarlyStep::Look,
                Want::Until(at) => EarlyStep::Wait(Some(ms(at))),
                Want::NoDeadline => EarlyStep::Wait(None),
            };
            assert_eq!(
                wait.step(times, early, follow_up, expects),
                expected,
                "row {row}"
            );
        }
    }

    /// Invariant: an ask or a follow-up is looked at once its time is due, and waited for until
    /// then; with neither, the wait includes the due time only while an ask is expected.
    #[test]
    fn a_due_ask_is_looked_at_and_an_early_one_waited_for() {
        use Want::*;
        check(&[
            (80, 80, None, true, false, true, Look),
            (90, 80, None, false, true, false, Look),
            (10, 80, Some(80), true, false, false, Until(80)),
            // Not asked: waited for only while an ask is expected.
            (10, 80, Some(80), false, false, true, Until(80)),
            (10, 80, Some(80), false, false, false, NoDeadline),
        ]);
    }

    /// Asks so far, and those that found the controller waking in time (no notify).
    fn asks(pool: &crate::AdaptivePool) -> (u64, u64) {
        pool.shared.control.lock().ask.counts()
    }

    /// Invariant: a client that asks between the looks (one task at a time from outside the
    /// pool, each queued for an instant) finds the controller waking in time and does not
    /// notify it, and every ask is still looked at: with the regular tick a minute away, every
    /// ask but the last has had its look (an ask swaps the arming off, and only a look re-arms).
    /// Once the client pauses, the controller stops expecting it, and the next ask wakes it
    /// (left to a wake-up that is not coming, it would wait for the tick). A backlog of blocked
    /// tasks then still grows the pool early.
    #[test]
    fn an_expected_ask_wakes_no_one_and_every_ask_is_looked_at() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use test_kit::{eventually, Latch, PATIENCE};

        // The regular tick a minute away, and starvation out of the way: every look in the
        // test is an early one.
        let config = crate::Config {
            max: 8,
            interval: Duration::from_secs(60),
            starvation_after: Duration::from_secs(60),
            ..crate::Config::default()
        };
        let pool = crate::AdaptivePool::builder()
            .config(config.clone())
            .build()
            .unwrap();
        let looks = |pool: &crate::AdaptivePool| pool.early_ticks() + pool.skipped_looks();
        let one_task = |pool: &crate::AdaptivePool| {
            pool.submit(|| std::thread::sleep(Duration::from_millis(1)))
                .unwrap()
                .join_timeout(PATIENCE)
                .unwrap();
        };
        // The closed loop, until a few asks were left to the controller's own wake-up.
        let deadline = Instant::now() + PATIENCE;
        while asks(&pool).1 < 3 && Instant::now() < deadline {
            one_task(&pool);
        }
        let (asked, quiet) = asks(&pool);
        assert!(quiet >= 3, "{quiet} of {asked} asks left to the controller");
        assert!(
            looks(&pool) + 1 >= asked,
            "{} looks for {asked} asks",
            looks(&pool)
        );
        // (Most looks skip: one task at a time is queued beside a worker not running, or runs
        // with nothing queued. Not all: on a loaded host a look may find the worker that ran
        // the last task still counted running beside the new one, and sample.)
        // The pause: the wait for the next ask ends without one, and the controller waits for
        // the tick, telling askers to wake it.
        let promised = || pool.shared.control.lock().ask.wakes_in_time();
        assert!(eventually(|| !promised()));
        let before = looks(&pool);
        // A submission asks only if its task is still queued when it checks (a worker may have
        // taken it already, on a loaded host): submit until one asks. An ask that no look
        // answered would leave the pool disarmed (no submission asks again before a look), so
        // the looks would stay put and this would fail.
        assert!(
            eventually(|| {
                one_task(&pool);
                looks(&pool) > before
            }),
            "the ask after the pause was looked at: {:?}",
            asks(&pool)
        );
        // A backlog of blocked tasks: looked at early, it grows the pool.
        let (gate, started) = (Arc::new(Latch::default()), Arc::new(AtomicUsize::new(0)));
        let blocked: Vec<_> = (0..16)
            .map(|_| {
                let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
                pool.submit(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    gate.wait();
                })
                .unwrap()
            })
            .collect();
        let grew = eventually(|| started.load(Ordering::SeqCst) >= 3);
        gate.open();
        assert!(grew, "history {:?}", pool.history());
        assert!(pool.early_ticks() >= 1);
        assert!(
            pool.history()
                .iter()
                .all(|event| event.at < config.interval),
            "grown before the regular tick: {:?}",
            pool.history()
        );
        for task in blocked {
            task.join_timeout(PATIENCE).unwrap();
        }
        pool.shutdown();
    }

    /// Invariant: a wait for an expected ask that ends without one stops the expecting (one
    /// wake-up spent, not one per wait), and an ask within the backoff's gap after a look starts
    /// it again; an ask after the gap (a slow client, asking after each tick's gap) does not.
    #[test]
    fn an_ask_that_does_not_come_stops_the_expecting_until_one_comes_in_the_gap() {
        use Want::*;
        check(&[
            // The wait for the expected ask ends at the due time without one.
            (80, 80, Some(80), false, false, true, NoDeadline),
            // Not expected any more, for this look or the next.
            (85, 80, Some(80), false, false, true, NoDeadline),
            (100, 190, Some(190), false, false, true, NoDeadline),
            // An ask after a tick's gap began but outside the looks' gap (the last look's gap
            // ended at 190; the tick at 200 makes it due at 210): the slow client, not expected.
            (205, 210, Some(190), true, false, true, Until(210)),
            (220, 290, Some(290), false, false, true, NoDeadline),
            // An ask within the gap after the look at 210: expected again from here on.
            (230, 290, Some(290), true, false, true, Until(290)),
            (290, 290, Some(290), true, false, true, Look),
            (291, 370, Some(370), false, false, true, Until(370)),
        ]);
    }
}
