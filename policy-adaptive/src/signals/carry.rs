//! The carried process figure: a large pool whose tasks finish at a steady pace, light on the
//! CPU, reads the process's CPU clock on every other measured sample and carries the last
//! figure in between.
//!
//! Why: that clock is the kernel's sum over every thread of the process, one task struct at a
//! time, cold after an interval: 45-60 µs at 256 workers on the test VM, half of a measured
//! sample (`tick_cost 256 churn`: 115-130 µs, of which the walk over pool-core's counters is
//! 11, the host's files 7, the workers' CPU clocks 10-13, the `schedstat` sample about 25). A
//! pool whose tasks finish every tick is never still (`still`), so it measures, and reads the
//! clock, every tick; its count is where the clock costs most.
//!
//! What it costs: a rise of the process's CPU in a carried sample shows at the next one, one
//! interval late and averaged over the two (that reading spans both). The rule is for the case
//! where that is cheapest: the figure light (under `LIGHT_CPU_PER_CORE` of the cores: no rule
//! that trims or guards the cores is near its line), as many workers busy and the same count
//! and target as at the reading, and tasks finishing at the same pace (a load of another kind
//! moves the pace: W4's switch from 5 ms sleeps at 64 workers to 1 ms of CPU on 2 cores would
//! cut it about 6-fold). Never two carries in a row, and below `CARRY_FROM_THREADS` workers
//! (where the read is cheap) never.

use super::split::LIGHT_CPU_PER_CORE;
use super::still::Counters;

/// Live workers from which a sample may carry the process's figure: the read costs about
/// 0.2 µs per thread cold (50 µs at 256), a quarter of the 100 µs budget of a tick here.
/// The count is the pool's, which stands for the process's: a process of many other threads
/// pays more than this says, never less.
pub(super) const CARRY_FROM_THREADS: usize = 128;

/// How far the pace of finished tasks (per second) may move from the reading's, as a share of
/// it, for the figure to be carried: a steady load of sleeping tasks moves it by a few percent
/// from one tick to the next.
pub(super) const CARRY_PACE_SLACK: f64 = 0.25;

/// What a sample that read the process's clock leaves for the next sample to compare with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Reading {
    /// The process's CPU over the interval before the reading, in cores.
    pub(super) cpu: f64,
    /// The pool's counters at the reading (the queue aside: a backlog that drains or grows
    /// says nothing of how much CPU the tasks take).
    pub(super) counters: Counters,
    /// Finished tasks per second over that interval.
    pub(super) pace: f64,
}

/// Whether a measured sample with `counters` and `pace` may carry `last`'s figure instead of
/// reading the clock (`last` is `None` after a sample that did not read it: a carry, a reuse,
/// or a reading with no figure yet).
pub(super) fn carries(
    last: Option<&Reading>,
    counters: &Counters,
    pace: f64,
    cores: usize,
) -> bool {
    let Some(last) = last else {
        return false;
    };
    let (before, now) = (&last.counters, counters);
    let same_pool = before.running == now.running
        && before.threads == now.threads
        && before.target == now.target
        && before.host_free == now.host_free;
    let light = last.cpu.is_finite() && last.cpu < LIGHT_CPU_PER_CORE * cores as f64;
    let steady = last.pace > 0.0
        && pace.is_finite()
        && (pace - last.pace).abs() <= CARRY_PACE_SLACK * last.pace;
    now.threads >= CARRY_FROM_THREADS && same_pool && light && steady
}
