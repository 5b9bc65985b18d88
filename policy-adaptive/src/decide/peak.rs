//! The idle rule's window (rule 3): the most workers busy at once over the last `keep_alive` of
//! surplus time, kept as a sliding-window maximum so that neither its memory nor a tick's work
//! grows with the keep-alive.
//!
//! Why not a list of every tick, as before: with a keep-alive of an hour, a pool with someone
//! idle and nothing queued kept 36 000 ticks and summed them on every tick: `decide` took 39 µs
//! a tick once the hour had passed, against 0.07 µs with this window (a loop of `decide` calls,
//! warm, 2-core VM, 2026-12-06), and a tick's budget is 100 µs in all. With `Duration::MAX`
//! ("never retire") the list grew by one entry a tick for as long as the surplus lasted (87 µs
//! a tick on average over the first 200 000 ticks, against 0.10). Here a tick whose busy count
//! a newer tick matches or beats leaves at once (it can no longer be the peak while that newer
//! one is in the window), so the entries' busy counts fall strictly from oldest to newest and
//! there are at most as many as distinct busy counts: the pool's size plus one, whatever the
//! keep-alive.

use std::collections::VecDeque;
use std::time::Duration;

/// The most workers busy at once over the last `keep_alive` of surplus time.
#[derive(Clone, Debug, Default)]
pub(super) struct PeakWindow {
    /// Surplus time since the surplus began (saturating): the window's clock.
    clock: Duration,
    /// (when the tick ended on `clock`, its busy count), oldest first, the busy counts
    /// strictly falling.
    ticks: VecDeque<(Duration, usize)>,
}

impl PeakWindow {
    /// Surplus time since the surplus began.
    pub(super) fn time(&self) -> Duration {
        self.clock
    }

    /// A surplus tick of `elapsed` with `busy` workers busy; the window keeps the newest ticks
    /// that cover `keep_alive` (a tick that ended `keep_alive` or more ago is covered by the
    /// ticks after it).
    pub(super) fn push(&mut self, elapsed: Duration, busy: usize, keep_alive: Duration) {
        self.clock = self.clock.saturating_add(elapsed);
        while self.ticks.back().is_some_and(|&(_, b)| b <= busy) {
            self.ticks.pop_back();
        }
        self.ticks.push_back((self.clock, busy));
        let clock = self.clock;
        while self
            .ticks
            .front()
            .is_some_and(|&(end, _)| clock - end >= keep_alive)
        {
            self.ticks.pop_front();
        }
    }

    /// The most workers busy at once in the window (0 when it is empty).
    pub(super) fn peak(&self) -> usize {
        self.ticks.front().map_or(0, |&(_, busy)| busy)
    }

    /// The surplus ended: an empty window, its clock at zero.
    pub(super) fn clear(&mut self) {
        self.clock = Duration::ZERO;
        self.ticks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window as it was kept before: every tick, the oldest dropped while the rest still
    /// cover `keep_alive`, the peak the largest busy count left.
    fn every_tick_peak(ticks: &[(Duration, usize)], keep_alive: Duration) -> usize {
        let mut kept: VecDeque<(Duration, usize)> = VecDeque::new();
        for &tick in ticks {
            kept.push_back(tick);
            let mut covered: Duration = kept.iter().map(|&(e, _)| e).sum();
            while let Some(&(oldest, _)) = kept.front() {
                if covered.saturating_sub(oldest) < keep_alive {
                    break;
                }
                covered -= oldest;
                kept.pop_front();
            }
        }
        kept.iter().map(|&(_, b)| b).max().unwrap_or(0)
    }

    /// Invariant: after every tick the peak is the one the every-tick window reads, on seeded
    /// random runs of ticks (uneven lengths, as early looks make them) and keep-alives.
    #[test]
    fn reads_the_peak_the_every_tick_window_reads() {
        for seed in 0..300 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let keep_alive = Duration::from_millis(rng.u64(1..3_000));
            let mut window = PeakWindow::default();
            let mut ticks = Vec::new();
            for _ in 0..200 {
                let tick = (Duration::from_millis(rng.u64(1..400)), rng.usize(..20));
                ticks.push(tick);
                window.push(tick.0, tick.1, keep_alive);
                assert_eq!(
                    window.peak(),
                    every_tick_peak(&ticks, keep_alive),
                    "seed {seed}, after {} ticks",
                    ticks.len()
                );
            }
            assert_eq!(
                window.time(),
                ticks.iter().map(|&(e, _)| e).sum::<Duration>()
            );
        }
    }

    /// Invariant: the window holds at most one entry per distinct busy count, whatever the
    /// keep-alive (a day of 100 ms ticks with `Duration::MAX`: "never retire").
    #[test]
    fn holds_at_most_one_entry_per_busy_count_whatever_the_keep_alive() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut window = PeakWindow::default();
        for _ in 0..864_000 {
            window.push(Duration::from_millis(100), rng.usize(..=16), Duration::MAX);
            assert!(window.ticks.len() <= 17);
        }
        assert_eq!(window.peak(), 16);
        // A clock that saturates (hostile tick lengths) neither panics nor grows the window.
        window.push(Duration::MAX, 3, Duration::MAX);
        window.push(Duration::MAX, 2, Duration::from_secs(1));
        assert_eq!(window.time(), Duration::MAX);
        assert!(window.ticks.len() <= 17);
        window.clear();
        assert_eq!((window.time(), window.peak()), (Duration::ZERO, 0));
    }
}
