//! The workers' busy time (pool-core's per-worker counters, no system call) and the CPU share of
//! it, from a bounded round robin of their thread CPU clocks.

use std::time::Duration;

use pool_core::WorkerStats;

use super::PoolSignals;
use crate::proc::CpuClock;

/// Busy workers whose CPU clock a tick reads at most (one system call each, 1-3 µs on a busy
/// host: the kernel finds the thread by its id); beyond that many busy workers, `CPU_ROTATE` a
/// tick in turn. Up to this many busy workers the CPU time is exact; beyond it, the
/// sample's CPU share of its busy time stands for all (a share, so 8 workers a tick, all of
/// them in turn, tell it about as well as 16 did at half the reads).
pub(super) const CPU_SAMPLE: usize = 8;

/// Beyond `CPU_SAMPLE` busy workers, a measured tick reads this many clocks (round robin) and
/// pools them with the previous measured tick's, so each share still stands on 8 workers'
/// windows at half the reads. A worker's window runs from its last reading, every
/// `busy / CPU_ROTATE` ticks (1.6 s at 64 busy workers, 6.4 s at 256): the pooled half is one
/// tick older, a small part of windows that long. In `compare`'s "tasks finishing" hold
/// (every tick measures: the counters move) the 8 clock reads were 8 of the 12 system calls of
/// a 256-worker tick.
pub(super) const CPU_ROTATE: usize = 4;

/// `d` in nanoseconds: cheaper to add and compare than `Duration`. Exact for every duration
/// below 584 years, which covers pool-core's (it counts in `u64` nanoseconds); wrapping, not
/// saturating, because this runs twice per worker per tick.
fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .wrapping_mul(1_000_000_000)
        .wrapping_add(u64::from(d.subsec_nanos()))
}

/// The CPU share of the busy time of this tick's clock readings (`cpu` over `busy`), pooled
/// with the previous tick's (`carry`) when the clocks are read in turn (`CPU_ROTATE`), capped
/// at 1. `None` without busy time.
pub(super) fn pooled_share(
    cpu: Duration,
    busy: Duration,
    carry: Option<(Duration, Duration)>,
) -> Option<f64> {
    let (cpu_before, busy_before) = carry.unwrap_or_default();
    let (cpu, busy) = (cpu + cpu_before, busy + busy_before);
    (!busy.is_zero()).then(|| (cpu.as_secs_f64() / busy.as_secs_f64()).min(1.0))
}

/// A worker's CPU clock reading and its busy time at that moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct CpuMark {
    clock: CpuClock,
    cpu: Duration,
    busy: Duration,
}

impl PoolSignals {
    /// The workers' busy time since the last call, from pool-core's per-worker counters (no
    /// system call). Each worker's delta is capped at `elapsed`; a worker first seen (or whose
    /// index was reused by a new thread: its `alive` went down) counts from its start.
    pub(super) fn busy_time(&mut self, workers: &[WorkerStats], elapsed: Duration) -> Duration {
        // In nanoseconds: this walk runs once per worker per tick, and `Duration` arithmetic
        // (normalising seconds and nanoseconds at each step) was most of a 256-worker tick's
        // user-space instructions.
        let elapsed = nanos(elapsed);
        // The same workers as last time (no start, no retirement: nearly every tick): update
        // the list in place. A tick runs with cold caches, and a second list to write cost
        // more in cache misses (6 KB at 256 workers) than its instructions saved.
        let same = self.busy.len() == workers.len()
            && self.busy.iter().zip(workers).all(|(b, w)| b.0 == w.index);
        if same {
            let mut total = 0u64;
            for (b, w) in self.busy.iter_mut().zip(workers) {
                let (alive, busy) = (nanos(w.alive), nanos(w.busy));
                // A new thread under a reused index (its `alive` went down) counts from its
                // start.
                let start = if b.1 <= alive { b.2 } else { 0 };
                total = total.saturating_add(busy.saturating_sub(start).min(elapsed));
                *b = (w.index, alive, busy);
            }
            return Duration::from_nanos(total);
        }
        self.busy_time_changed(workers, elapsed)
    }

    /// `busy_time` when a worker started or retired since the last sample: a merge walk into
    /// a second list. Out of line, so the every-tick path stays short (a tick runs with cold
    /// caches, instructions included).
    #[cold]
    #[inline(never)]
    fn busy_time_changed(&mut self, workers: &[WorkerStats], elapsed: u64) -> Duration {
        let mut total = 0u64;
        // Both lists are sorted by index: one merge walk, no map.
        let before = &self.busy;
        let mut next = std::mem::take(&mut self.busy_next);
        next.clear();
        let mut marks = std::mem::take(&mut self.marks_next);
        marks.clear();
        let mut at = 0;
        for w in workers {
            let (alive, busy) = (nanos(w.alive), nanos(w.busy));
            while before.get(at).is_some_and(|b| b.0 < w.index) {
                at += 1;
            }
            let (start, mark) = match before.get(at) {
                Some(&(index, alive_before, busy_before)) if index == w.index => {
                    // The mark stays with its index even for a new thread under it: the mark
                    // keeps its clock, and `cpu_share` counts a different clock from zero.
                    let mark = self.marks.get(at).copied().flatten();
                    if alive_before <= alive {
                        (busy_before, mark)
                    } else {
                        (0, mark)
                    }
                }
                _ => (0, None),
            };
            total = total.saturating_add(busy.saturating_sub(start).min(elapsed));
            next.push((w.index, alive, busy));
            marks.push(mark);
        }
        // Retired workers drop out here (their marks with them), so neither list grows past
        // the live workers.
        self.busy_next = std::mem::replace(&mut self.busy, next);
        self.marks_next = std::mem::replace(&mut self.marks, marks);
        Duration::from_nanos(total)
    }

    /// The CPU share of the busy time of the workers busy in the interval, from their CPU
    /// clocks: every such worker's up to `CPU_SAMPLE`, beyond that `CPU_ROTATE` in turn pooled
    /// with the previous tick's (`pooled_share`). Each
    /// worker's CPU and busy time are taken since its clock was last read (or since it started),
    /// a window over which the ratio stays right even if the worker was parked or skipped in
    /// between: parked, neither moves. `None` without clocks or busy time.
    ///
    /// `workers` must be the list `busy_time` was last called with (the marks sit at the
    /// workers' positions in it).
    pub(super) fn cpu_share(&mut self, workers: &[WorkerStats]) -> Option<f64> {
        debug_assert_eq!(self.marks.len(), workers.len(), "`busy_time` ran first");
        // Busy in the interval: not parked now, or busy time moved since the last sample. The
        // walk starts at the round robin's cursor and stops at the first `CPU_SAMPLE + 1` such
        // workers: with more, the tick reads `CPU_ROTATE` of them in turn, so a pool of busy
        // workers is not walked (or listed) whole for 4 picks.
        let len = workers.len();
        let start = if len == 0 { 0 } else { self.cpu_cursor % len };
        let mut found = [0usize; CPU_SAMPLE + 1];
        let mut count = 0;
        for at in (start..len).chain(0..start) {
            let w = &workers[at];
            let mark = self.marks.get(at).copied().flatten();
            if !w.parked || mark.is_none_or(|mark| w.busy > mark.busy) {
                found[count] = at;
                count += 1;
                if count == found.len() {
                    break;
                }
            }
        }
        // Up to `CPU_SAMPLE` busy workers, all of them (exact); beyond, `CPU_ROTATE` in turn,
        // the next tick starting after the last one read.
        let rotating = count > CPU_SAMPLE;
        let take = if rotating { CPU_ROTATE } else { count };
        if rotating {
            self.cpu_cursor = found[take - 1] + 1;
        }
        let chosen = found[..take].iter().map(|&at| (at, &workers[at]));
        // The chosen workers' clocks, looked up under one lock (not a copy of the registry).
        let mut clocks = [None; CPU_SAMPLE];
        self.workers.with(|threads| {
            for (slot, (at, w)) in clocks.iter_mut().zip(chosen) {
                *slot = Some((at, w, threads.get(&w.index).and_then(|t| t.clock)));
            }
        });
        let (mut cpu, mut busy) = (Duration::ZERO, Duration::ZERO);
        for (at, w, clock) in clocks.into_iter().flatten() {
            let Some(clock) = clock else {
                continue;
            };
            self.clock_reads += 1;
            let Some(now) = clock.read() else {
                continue;
            };
            let Some(slot) = self.marks.get_mut(at) else {
                continue;
            };
            // A first reading, or a new thread under a reused index, counts from its start.
            let (cpu_before, busy_before) = match *slot {
                Some(mark) if mark.clock == clock => (mark.cpu, mark.busy),
                _ => (Duration::ZERO, Duration::ZERO),
            };
            cpu += now.saturating_sub(cpu_before);
            busy += w.busy.saturating_sub(busy_before);
            *slot = Some(CpuMark {
                clock,
                cpu: now,
                busy: w.busy,
            });
        }
        let carry = if rotating {
            self.cpu_carry.replace((cpu, busy))
        } else {
            self.cpu_carry = None;
            None
        };
        pooled_share(cpu, busy, carry)
    }

    /// The indices of the workers whose CPU clock has a mark (tests).
    #[cfg(test)]
    pub(super) fn marked(&self) -> Vec<usize> {
        self.busy
            .iter()
            .zip(&self.marks)
            .filter(|(_, mark)| mark.is_some())
            .map(|(b, _)| b.0)
            .collect()
    }
}
