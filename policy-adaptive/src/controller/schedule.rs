//! The controller thread's schedule: `controller_loop` waits for its next occasion (the interval,
//! an early request, the second look, the midway look, or a stop), takes the cheap looks that need
//! no sample, and hands the rest to a tick.

use std::time::{Duration, Instant};

use pool_core::call_quietly;
use pool_core::sync::Ordering;

use super::early_wait::{expects_ask, EarlyStep, EarlyWait, LookTimes};
use super::tick::{tick, Flow, Found};
use super::Shared;
use crate::decide::LOOK_AGAIN_AFTER;
use crate::midway::MidwayLook;
use crate::proc::{current_thread_cpu, CpuClock};
use crate::snapshot::Signals;
use crate::stretch::Stretch;

/// Early looks (asked for by a submission that found work queued) come at most this many
/// times per `interval`, and at least every `EARLY_GAP_MAX`: a sample reads up to 8 CPU clocks
/// and two `schedstat` files, so an unbounded rate would turn a submission storm into a
/// controller storm.
const EARLY_PER_INTERVAL: u32 = 10;
/// With a long interval, the early looks still come this soon after each other.
const EARLY_GAP_MAX: Duration = Duration::from_millis(10);
/// Each early look in a row that took no sample doubles the gap before the next, up to
/// `2^EARLY_BACKOFF_MAX` gaps; a sample resets it, except a regular tick that found the same
/// steady state (`keeps_backoff`). A closed loop whose client submits from outside the pool
/// keeps a task queued for an instant after each completion, beside the worker that just
/// finished (between tasks): every look finds that and skips, and the next submission asks
/// again. Without the doubling that was a look every gap, 9 per interval (64 clients of 5 ms
/// sleeps at 64 workers: 270 skipped looks in 3 s, 220 µs of controller CPU per tick against 70
/// with the clients inside the pool); with it, reset at every tick, 3 (at 1, 3 and 7 gaps: the
/// next would pass the tick, so the cap takes effect only across ticks); carried across the
/// ticks of a steady state, 0.625 (every 16 gaps). At the default interval or a shorter one
/// the cap is 1.6 intervals, so a steady state's looks come less often than its ticks: each is
/// a wake-up, and at 8 gaps, 1.25 per interval, they shortened the longest wait for a backlog
/// that forms there only from an interval to 80 ms (measured in `src/README.md`, "The cap past
/// the interval"); with a longer interval the gap stays 10 ms and the cap 160 ms. A burst that
/// starts after such looks is seen at the next regular tick or at a look, whichever comes
/// first.
const EARLY_BACKOFF_MAX: u32 = 4;

/// Why the controller woke up for a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Occasion {
    /// The interval passed.
    Tick,
    /// A submission found work queued while the controller was armed, or the last early tick
    /// grew and the controller looks again.
    Early,
    /// The second look a regular tick asked for (`ControllerState::looks_again`).
    Look,
    /// Midway between an early look that held a backlog and the next tick: a sample only if
    /// the process's CPU fell since (`MidwayLook`).
    Midway,
}

impl Shared {
    /// Counts a look between ticks that took no sample, and passes on whether it found the
    /// backlog the last sample read gone (nothing queued, or the queue covered by workers not
    /// running a task), for `ControllerState::forget_backlog`.
    fn skip_look(&self, backlog_gone: bool) -> bool {
        self.skipped_looks.fetch_add(1, Ordering::Relaxed);
        backlog_gone
    }
}

/// The first half of every look between ticks (the early look and the second look): with
/// nothing queued, or the pool already at `max`, no growth rule can act, so the look skips its
/// sample. `work_queued` comes from whatever count the look already read (a full `stats()` or
/// `queue_len`).
fn nothing_to_grow_for(shared: &Shared, work_queued: bool) -> bool {
    !work_queued || shared.pool.threads() >= shared.config.max
}

/// The controller thread: wait for the interval (or an early request, at most
/// `EARLY_PER_INTERVAL` per interval, or a stop), decide, repeat.
pub(super) fn controller_loop(shared: &Shared, signals: &mut dyn Signals) {
    shared.control.lock().clock = CpuClock::current();
    // On every way out (a stop, a shut-down pool, a panic): the last CPU figure, then the clock
    // cleared, under the lock `controller_cpu` reads it under.
    let _clock = ClearClock(shared);
    let interval = shared.config.interval;
    let early_gap = (interval / EARLY_PER_INTERVAL).min(EARLY_GAP_MAX);
    let mut last_sample = Instant::now();
    // The last early look, for the early rate bound (none yet: the first may come at once).
    let mut last_look: Option<Instant> = None;
    // Early looks in a row that took no sample since the last sample (the backoff).
    let mut skipped_early: u32 = 0;
    // Look again after the gap without waiting for a submission (a burst submitted at once
    // asks only once): the last early tick grew, or work was queued while a worker was still
    // on its way to it.
    let mut follow_up = false;
    // The wait for the next regular tick: the interval, longer while the pool is quiet.
    let mut stretch = Stretch::new();
    // The second look a regular tick asked for (a CPU dip mid-tick: `looks_again`), due then.
    let mut look_at: Option<Instant> = None;
    let look_after = interval / LOOK_AGAIN_AFTER;
    // The look halfway to the next tick after an early look that held a backlog.
    let mut midway = MidwayLook::new();
    // The last look took no sample and found nothing queued, or the queue covered by workers
    // not running a task: the backlog the last sample read is gone
    // (`ControllerState::forget_backlog`), told to the state under the next wait's lock.
    let mut backlog_gone = false;
    // Whether the wait expects the next ask (`early_wait`).
    let mut early_wait = EarlyWait::new();
    loop {
        // The wait is the controller's schedule; `stop` and `early` are checked under the same
        // lock they are set under, so neither is missed (see `src/README.md`).
        // `now` is the wait's last clock reading: the tick's time, with no second reading.
        let (occasion, now) = {
            let mut control = shared.control.lock();
            if std::mem::take(&mut backlog_gone) {
                control.state.forget_backlog();
            }
            loop {
                // Awake: an asker from here on notifies (`ask.rs`).
                control.ask.awake();
                if control.stop {
                    return;
                }
                let now = Instant::now();
                let tick_at = last_sample + stretch.wait(interval);
                if now >= tick_at {
                    control.ask.take();
                    break (Occasion::Tick, now);
                }
                let mut until = tick_at;
                if let Some(at) = look_at {
                    if now >= at {
                        break (Occasion::Look, now);
                    }
                    until = until.min(at);
                }
                if let Some(at) = midway.due() {
                    if now >= at {
                        break (Occasion::Midway, now);
                    }
                    until = until.min(at);
                }
                // When the next early look may come: the gap after the last sample and, backed
                // off, after the last look.
                let look_gap = backed_off(early_gap, skipped_early);
                let look_due = early_at(last_look, last_sample, early_gap, look_gap);
                let times = LookTimes {
                    now,
                    due: look_due,
                    gap_end: last_look.map(|at| at + look_gap),
                };
                let expects = expects_ask(skipped_early, shared.armed.load(Ordering::Relaxed));
                match early_wait.step(times, control.ask.is_asked(), follow_up, expects) {
                    EarlyStep::Look => {
                        control.ask.take();
                        break (Occasion::Early, now);
                    }
                    EarlyStep::Wait(at) => until = at.map_or(until, |at| until.min(at)),
                }
                // An ask finds the controller waking by the look's time: it needs no notify.
                control.ask.before_wait(until, look_due);
                control = shared.wake.wait_timeout(control, until - now).0;
            }
        };
        follow_up = false;
        // Due or not, any wake-up ends the wait for the midway look (a sample moves the
        // baseline its read compares with).
        midway.cancel();
        // An early look in between (an armed pool) leaves the second look due.
        if !matches!(occasion, Occasion::Early | Occasion::Midway) {
            look_at = None;
        }
        if occasion == Occasion::Midway {
            // The cheap look, then the process's CPU clock (no baseline moves): a sample only
            // on a fall.
            let queued = shared.pool.queue_len() > 0;
            if nothing_to_grow_for(shared, queued) {
                backlog_gone = shared.skip_look(!queued);
                continue;
            }
            if !midway.samples(process_cpu_since_sample(shared, signals)) {
                backlog_gone = shared.skip_look(false);
                continue;
            }
            last_look = Some(now);
            shared.early_ticks.fetch_add(1, Ordering::Relaxed);
        }
        if occasion == Occasion::Look {
            // Not armed (CPU-bound work): no submission asked. A cheap look first, as for
            // an early one, but one that finds nothing to grow for leaves the arming as the
            // tick set it (the decision judges the busy count itself).
            last_look = Some(now);
            let queued = shared.pool.queue_len() > 0;
            if nothing_to_grow_for(shared, queued) {
                backlog_gone = shared.skip_look(!queued);
                continue;
            }
            shared.early_ticks.fetch_add(1, Ordering::Relaxed);
        }
        if occasion == Occasion::Early {
            last_look = Some(now);
            // The cheap look first: only a pool with work queued, every worker running a task
            // and room to grow is worth a sample (which reads CPU clocks and `/proc` files).
            let stats = shared.pool.stats();
            if nothing_to_grow_for(shared, stats.queued > 0) {
                shared.armed.store(true, Ordering::Relaxed);
                backlog_gone = shared.skip_look(stats.queued == 0);
                skipped_early += 1;
                continue;
            }
            if stats.running < stats.live_threads as u64 {
                // A worker is idle or between tasks: it will take the queued work, or not
                // (it is on its way): look again after the gap. The backlog is gone if those
                // workers cover it.
                follow_up = true;
                let free = (stats.live_threads as u64).saturating_sub(stats.running);
                backlog_gone = shared.skip_look(stats.queued <= free);
                skipped_early += 1;
                continue;
            }
            shared.early_ticks.fetch_add(1, Ordering::Relaxed);
        }
        let elapsed = now - last_sample;
        last_sample = now;
        let stretched = stretch.is_stretched();
        match tick(shared, signals, elapsed, stretched) {
            Flow::Stop => return,
            Flow::Go(found) => {
                match occasion {
                    Occasion::Tick => {
                        stretch.after_tick(found.quiet);
                        midway.after_tick(found.process_cpu);
                    }
                    Occasion::Early | Occasion::Look | Occasion::Midway => stretch.reset(),
                }
                if occasion == Occasion::Tick && found.look_again {
                    look_at = Some(now + look_after);
                }
                if !keeps_backoff(occasion, &found) {
                    skipped_early = 0;
                }
                let Found {
                    grew, arm, pending, ..
                } = found;
                let arm = match (occasion, arm) {
                    // A regular tick sets the arming from its snapshot.
                    (Occasion::Tick, Some(arm)) => arm,
                    // An early tick that grew looks again; one that did not disarms until the
                    // next regular tick, so a backlog the rules will not grow for costs one
                    // early sample per interval, not ten. One whose signals were pending (no
                    // blocked count yet) looks again too: the next sample will have it.
                    // A midway sample that held looks again after the gap too: its window
                    // still held the old load's last tasks (W4's read 106 us of CPU a task
                    // over 50 ms, to sleepers' 20-30). An early look that held on a pool the
                    // rules would still grow leaves a midway look, halfway to the next tick
                    // (which comes `interval` after this sample), one per regular tick.
                    (Occasion::Early | Occasion::Look | Occasion::Midway, Some(arm)) => {
                        follow_up = grew || pending || occasion == Occasion::Midway;
                        if occasion == Occasion::Early && arm && !follow_up {
                            midway.after_held_early_look(now, interval);
                        }
                        arm && grew
                    }
                    // The sample or the decision panicked: no opinion, stay disarmed.
                    (_, None) => false,
                };
                shared.armed.store(arm, Ordering::Relaxed);
            }
        }
    }
}

/// The process's CPU since the last sample, from the signals (a custom source may panic: no
/// figure, counted as a callback panic).
fn process_cpu_since_sample(shared: &Shared, signals: &mut dyn Signals) -> Option<f64> {
    call_quietly(|| signals.process_cpu_since_sample()).unwrap_or_else(|| {
        shared.callback_panics.fetch_add(1, Ordering::Relaxed);
        None
    })
}

/// When an early look may come: `look_gap` after the last early look (the rate bound, backed
/// off by `backed_off`) and `gap` after the last sample of either kind.
///
/// The second bound is for the look a submission asks for right after a regular tick: it
/// sampled a fraction of a millisecond (W4's switch to sleepers, 31 ms into the phase: the tick
/// read the last phase's CPU, 1.9 cores, held, and armed; the look came 0.6 ms later, read one
/// completion, held, and disarmed until the next tick, 100 ms later, which grew 15 -> 64).
/// Over `gap` (10 ms at the default interval) its figures are the new load's, and an early
/// decision that does not grow disarms, so this adds no look.
fn early_at(
    last_look: Option<Instant>,
    last_sample: Instant,
    gap: Duration,
    look_gap: Duration,
) -> Instant {
    let after_sample = last_sample + gap;
    last_look.map_or(after_sample, |at| (at + look_gap).max(after_sample))
}

/// Whether the early looks' backoff carries past this sample: only a regular tick that found
/// the steady state the skipped looks saw (it held, nothing queued, the pool not quiet and
/// still armed, no second look asked for) keeps it. A look between ticks samples only when it
/// found work to grow for, a tick that grew or disarmed changed the state, a quiet pool's next
/// burst starts afresh, and a backlog the tick held on is the early looks' to watch at their
/// usual rate: carried there too (W4's third phase, where a busy worker is between tasks often
/// enough for the looks to skip), the backoff changed which samples the regular ticks' windows
/// spanned, and 4 of 11 W4 runs trimmed a probe and grew back (2 direction reversals more),
/// against 1 of 18 runs before and none of 11 with this condition.
fn keeps_backoff(occasion: Occasion, found: &Found) -> bool {
    occasion == Occasion::Tick
        && !found.grew
        && !found.quiet
        && !found.queued
        && found.arm == Some(true)
        && !found.look_again
}

/// The gap after the last early look when `skipped` early looks in a row took no sample:
/// doubled for each, up to `2^EARLY_BACKOFF_MAX` gaps (see `EARLY_BACKOFF_MAX`).
fn backed_off(gap: Duration, skipped: u32) -> Duration {
    gap * (1 << skipped.min(EARLY_BACKOFF_MAX))
}

/// Leaves the controller's last CPU figure and clears its clock (see `Control::clock`).
struct ClearClock<'a>(&'a Shared);

impl Drop for ClearClock<'_> {
    fn drop(&mut self) {
        let mut control = self.0.control.lock();
        if let Some(cpu) = current_thread_cpu() {
            let ns = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
            self.0.controller_cpu_ns.store(ns, Ordering::Relaxed);
        }
        control.clock = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Invariant: an early look comes no sooner than the gap after the last early look and
    /// after the last sample (a regular tick's included), and as soon as both have passed.
    #[test]
    fn an_early_look_waits_the_gap_after_any_sample() {
        let gap = Duration::from_millis(10);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Right after a regular tick: the gap after it, whatever the last look.
        assert_eq!(early_at(None, t0, gap, gap), t0 + gap);
        assert_eq!(early_at(Some(t0 - ms(500)), t0, gap, gap), t0 + gap);
        // A recent look bounds it further.
        assert_eq!(early_at(Some(t0 + ms(5)), t0, gap, gap), t0 + ms(15));
        // Long after both: at once (the bound is in the past).
        assert!(early_at(Some(t0), t0, gap, gap) <= t0 + gap);
    }

    /// Invariant: each early look in a row that took no sample doubles the gap to the next,
    /// up to 16 gaps; the gap after a sample is not backed off. From a reset, a closed loop's
    /// instant backlogs cost 3 looks per interval, not 9 (the cap is not reached before the
    /// tick).
    #[test]
    fn skipped_early_looks_back_off_to_sixteen_gaps() {
        let gap = Duration::from_millis(10);
        let ms = Duration::from_millis;
        let backoffs: Vec<_> = (0..6).map(|k| backed_off(gap, k)).collect();
        assert_eq!(backoffs, [ms(10), ms(20), ms(40), ms(80), ms(160), ms(160)]);
        let t0 = Instant::now();
        // Two skipped looks since the sample at t0, the last at t0 + 30 ms: the next at 70.
        assert_eq!(
            early_at(Some(t0 + ms(30)), t0, gap, backed_off(gap, 2)),
            t0 + ms(70)
        );
        // Looks at 10, 30 and 70 ms after a tick, then the next tick at 100: 3 per interval.
        let mut at = ms(0);
        let mut looks = Vec::new();
        for skipped in 0.. {
            at = if skipped == 0 {
                gap
            } else {
                at + backed_off(gap, skipped)
            };
            if at >= ms(100) {
                break;
            }
            looks.push(at);
        }
        assert_eq!(looks, [ms(10), ms(30), ms(70)]);
    }

    /// The early looks of a closed loop whose every look skips, over 4 intervals of 100 ms
    /// from a sample at 0, with every regular tick held and armed; `keep` says whether those
    /// ticks keep the backoff. Milliseconds after the first sample.
    fn steady_looks(keep: bool) -> Vec<u64> {
        let (gap, ms) = (Duration::from_millis(10), Duration::from_millis);
        let t0 = Instant::now();
        let (mut last_sample, mut last_look, mut skipped) = (t0, None, 0);
        let mut tick_at = t0 + ms(100);
        let mut looks = Vec::new();
        loop {
            let at = early_at(last_look, last_sample, gap, backed_off(gap, skipped));
            if at < tick_at {
                looks.push((at - t0).as_millis() as u64);
                (last_look, skipped) = (Some(at), skipped + 1);
            } else if tick_at - t0 < ms(400) {
                (last_sample, tick_at) = (tick_at, tick_at + ms(100));
                if !keep {
                    skipped = 0;
                }
            } else {
                return looks;
            }
        }
    }

    /// Invariant: a regular tick that finds the steady state the skipped looks saw (held,
    /// nothing queued, not quiet, armed, no second look) keeps their backoff, so the looks of a
    /// steady closed loop come 16 gaps apart, 0.625 per interval, where a reset at every tick
    /// gave 3; any other sample resets it.
    #[test]
    fn a_steady_tick_keeps_the_backoff_of_the_looks_before_it() {
        let steady = Found {
            arm: Some(true),
            ..Found::default()
        };
        assert!(keeps_backoff(Occasion::Tick, &steady));
        // The tick grew, found the pool quiet or work queued, disarmed, had no opinion or
        // asked for a second look: the state changed, or a backlog is there to watch.
        for found in [
            Found {
                grew: true,
                ..steady
            },
            Found {
                quiet: true,
                ..steady
            },
            Found {
                queued: true,
                ..steady
            },
            Found {
                arm: Some(false),
                ..steady
            },
            Found {
                arm: None,
                ..steady
            },
            Found {
                look_again: true,
                ..steady
            },
        ] {
            assert!(!keeps_backoff(Occasion::Tick, &found), "{found:?}");
        }
        // A look between ticks samples only when it found work to grow for.
        for occasion in [Occasion::Early, Occasion::Look, Occasion::Midway] {
            assert!(!keeps_backoff(occasion, &steady), "{occasion:?}");
        }
        assert_eq!(steady_looks(true), [10, 30, 70, 150, 310]);
        assert_eq!(
            steady_looks(false),
            [10, 30, 70, 110, 130, 170, 210, 230, 270, 310, 330, 370]
        );
    }

    /// Invariant: a closed loop submitting from outside the pool (each completion answered by
    /// a new submission, which queues for an instant beside the worker that just finished)
    /// costs at most 5 looks without a sample per tick: 3 early ones (the backoff; 0.625 once it
    /// carries across steady ticks, but a loaded host's early samples reset it), the second
    /// look and the midway look. Without the backoff it was 9 early looks per tick.
    #[test]
    fn an_outside_closed_loop_costs_a_few_looks_per_tick() {
        use std::sync::atomic::AtomicBool;
        use std::sync::{mpsc, Arc};

        let pool = Arc::new(
            crate::AdaptivePool::builder()
                .min(1)
                .max(64)
                .build()
                .unwrap(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let client = {
            let (pool, stop) = (Arc::clone(&pool), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut in_flight = 0;
                let mut submitted = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    while in_flight < 16 {
                        let done = done_tx.clone();
                        pool.spawn(move || {
                            std::thread::sleep(Duration::from_millis(2));
                            let _ = done.send(());
                        })
                        .unwrap();
                        in_flight += 1;
                        submitted += 1;
                    }
                    if done_rx.recv_timeout(Duration::from_millis(10)).is_ok() {
                        in_flight -= 1;
                    }
                }
                submitted
            })
        };
        // Past the ramp (the first ticks grow), then 10 ticks of the steady loop.
        let ticks_past = |n: u64| test_kit::eventually(|| pool.ticks() >= n);
        assert!(ticks_past(5));
        let (ticks, skipped) = (pool.ticks(), pool.skipped_looks());
        assert!(ticks_past(ticks + 10));
        let (ticks, skipped) = (pool.ticks() - ticks, pool.skipped_looks() - skipped);
        stop.store(true, Ordering::Relaxed);
        let submitted = client.join().unwrap();
        pool.shutdown();
        assert!(
            skipped <= 5 * ticks + 5,
            "{skipped} looks without a sample over {ticks} ticks"
        );
        let stats = pool.stats();
        assert_eq!(stats.completed, submitted, "{stats}");
        assert!(stats.is_balanced(), "{stats}");
    }
}
