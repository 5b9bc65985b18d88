//! How a tick splits its workers' busy time into CPU, run-queue wait and blocked time: which
//! measurement the tick needs (`off_cpu_split`), the measurement itself (`worker_time`) and the
//! snapshot's three figures from it (`measured_split`).

use std::time::{Duration, Instant};

use pool_core::WorkerStats;

use super::run_queue::{queued_share, SCHED_PAIR_LIGHT, SCHED_PAIR_MIN};
use super::{PoolSignals, Split3, HOST_FREE_BELOW};
use crate::decide::{LIGHT_TASKS, LIGHT_TASK_CPU};
use crate::snapshot::WorkerStates;

/// What the interval's busy time was made of, in worker-time.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct WorkerTime {
    /// Not parked: running tasks or looking for them.
    busy: Duration,
    /// On a CPU (from the workers' CPU clocks, capped at `busy`).
    cpu: Duration,
    /// Of `busy - cpu`, the share spent waiting in a run queue: 0 when the host has CPU to
    /// spare, else from the `schedstat` sample; `None` if that sample has nothing to say yet.
    wait_share: Option<f64>,
}

impl PoolSignals {
    /// The interval's worker time, or `None` without CPU clocks. `process_cpu`: the whole
    /// process's CPU over the interval, in cores (see `sample`).
    pub(super) fn worker_time(
        &mut self,
        workers: &[WorkerStats],
        (queued, running, completed): (u64, u64, u64),
        process_cpu: Option<f64>,
        elapsed: Duration,
        now: Instant,
    ) -> Option<WorkerTime> {
        let busy = self.busy_time(workers, elapsed);
        if busy.is_zero() {
            // Every worker parked all along: no CPU to split, no clock to read. The split
            // stays what the host says (blocked while it has a CPU free, else unknown). The
            // next busy tick's clocks do not pool with readings from before the pause.
            self.pause_sample();
            self.cpu_carry = None;
            let host_free = self.host_cpu.is_some_and(|h| h < HOST_FREE_BELOW);
            return Some(WorkerTime {
                wait_share: host_free.then_some(0.0),
                ..WorkerTime::default()
            });
        }
        let cpu = busy.mul_f64(self.cpu_share(workers)?);
        // The run-queue share only matters when the CPUs may be full (`off_cpu_split`), and
        // then, on a busy host, only to a rule that sees a backlog or workers that may be
        // saturating the cores themselves (the trim rule): otherwise the split stays unknown
        // and the files (the dearest part of a tick) are not read.
        let cores_used = cpu.as_secs_f64() / elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        // Saturating by the process's CPU too: in a large pool the workers' clocks (read a few
        // in turn) span up to seconds, and W4's CPU-bound phase at 64 threads after its sleep
        // phase read 0.3-0.5 cores from them for a second with nothing queued at the samples:
        // the split stayed unknown and the trim (rule 6) waited for it, 0.68 of the best fixed
        // size. The process's CPU is fresh; when its other threads fill the cores, the only
        // cost is the split's reading.
        let saturating = saturating(cores_used, process_cpu, self.cores);
        // Whether a share from before a growth still stands, on the process's CPU where its
        // tasks are light (see `share_cpu`).
        let stands_cpu = share_cpu(cores_used, process_cpu, completed, elapsed);
        let wait_share = match off_cpu_split(
            self.host_cpu,
            usize::try_from(running).unwrap_or(usize::MAX),
            self.cores,
            cores_used,
            process_cpu,
            queued > 0 || saturating,
        ) {
            split @ Split::Measure => self
                .wait_share(workers, running, stands_cpu, split, now)
                .or_else(|| {
                    // Before the sample's first share only, on cores left free: a share that
                    // no longer stands after a growth is no reason, and on cores our workers
                    // fill, some of them wait runnable between their sleeps while 8 states,
                    // one instant, may still read 6 asleep. W4's CPU-and-sleep phase grown
                    // 4 -> 16 read so on an early tick 12 ms later and burst 16 -> 39, then
                    // was trimmed to 8 (two runs of a first version, phases 3 and 4 at
                    // 0.92/0.87 and 0.88/0.95).
                    let first = self.last_share.is_none() && !saturating;
                    states_wait_share(self.states_now.filter(|_| first)?, busy, cpu)
                }),
            split @ Split::MeasureElseBlocked => self
                .wait_share(workers, running, stands_cpu, split, now)
                .or(Some(0.0)),
            Split::Unknown => {
                self.pause_sample();
                None
            }
            Split::Blocked => {
                self.pause_sample();
                self.last_share = None;
                Some(0.0)
            }
        };
        Some(WorkerTime {
            busy,
            cpu,
            wait_share,
        })
    }
}

/// The run-queue share of the busy workers' off-CPU time (`busy - cpu`, this tick's) from
/// this sample's states alone, before the `schedstat` sample's first share (its first pair
/// comes 50 ms after its first reading) while our workers leave the cores free: only when the
/// states find the workers mostly asleep (`WorkerStates::mostly_blocked`), whose blocked share
/// `p` of the busy time leaves `off - p × busy` to the run queue. W3's ramp (1 ms of CPU,
/// then 4 ms asleep) read 4 of 4 asleep from its second tick (20 ms) and grew 4 -> 19 only at
/// the pair (61 ms); CPU-bound workers never read mostly asleep, so they wait for the pair as
/// before.
pub(super) fn states_wait_share(
    states: WorkerStates,
    busy: Duration,
    cpu: Duration,
) -> Option<f64> {
    let off = busy.saturating_sub(cpu).as_secs_f64();
    if !states.mostly_blocked() || off <= 0.0 {
        return None;
    }
    let p = f64::from(states.blocked) / f64::from(states.read());
    Some(queued_share(busy.as_secs_f64(), off, p))
}

/// The workers' CPU (cores) that decides whether a share from before a growth still stands
/// (`share_stands`): their clocks' figure, or the process's when lower and its CPU per
/// completed task is light (under `LIGHT_TASK_CPU` over `LIGHT_TASKS` completions or more).
/// The clocks, read a few a tick in turn, still read the last load's CPU: W4's sleep phase
/// after its CPU-and-sleep one, grown from 20 to 31 workers, read 1.4-1.9 cores by them and
/// 0.1 by the process (60 tasks per 10 ms, 20 µs each); the split stayed unknown for 40 ms
/// of early looks before its burst to 64. Not on the process's figure alone: a process starved
/// by a crowded host reads as little, and W3's 4-worker share (nearly all blocked) standing
/// for 19 workers burst them to 64; its tasks cost 1 ms of CPU each however starved.
pub(super) fn share_cpu(
    cores_used: f64,
    process_cpu: Option<f64>,
    completed: u64,
    elapsed: Duration,
) -> f64 {
    match process_cpu.filter(|p| p.is_finite() && *p >= 0.0) {
        Some(p)
            if p < cores_used
                && completed >= LIGHT_TASKS
                && p * elapsed.as_secs_f64() / (completed as f64) < LIGHT_TASK_CPU =>
        {
            p
        }
        _ => cores_used,
    }
}

/// Whether our workers may be saturating the cores (3/4 of them), so the trim rule needs the
/// split: by their own CPU (`cores_used`) or the whole process's (fresher in a large pool).
pub(super) fn saturating(cores_used: f64, process_cpu: Option<f64>, cores: usize) -> bool {
    cores_used.max(process_cpu.unwrap_or(0.0)) >= 0.75 * cores as f64
}

/// How a tick splits busy workers' off-CPU time into blocked and run-queue time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Split {
    /// Read the `schedstat` sample; unknown until it has a pair.
    Measure,
    /// Read the `schedstat` sample; until it has a pair, all blocked.
    MeasureElseBlocked,
    /// Leave it unknown (no rule needs it now): the files are not read.
    Unknown,
    /// A runnable worker finds a free CPU: all of it is blocked time.
    Blocked,
}

impl Split {
    /// Whether the sample's readings take the sampled workers' states (one `stat` re-read each,
    /// about 3 times a `schedstat` re-read) besides their `schedstat`.
    ///
    /// The states catch run-queue waits still in progress at a reading, which pile up when
    /// busy workers queue behind each other for the cores (spinners outnumbering them). Under
    /// `MeasureElseBlocked` the host has a CPU free and our workers use under a quarter of the
    /// cores (`LIGHT_CPU_PER_CORE`): their demand leaves the run queues short, so their waits
    /// end soon and `schedstat` counts them, and until the first pair that split already
    /// calls all their off-CPU time blocked. A worker that starts spinning raises `cores_used`
    /// on the next tick, which turns the split to `Measure` and the states back on.
    pub(super) fn states(self) -> bool {
        self == Split::Measure
    }

    /// How old the sample's last reading must be before the next: `SCHED_PAIR_LIGHT` for
    /// light workers on a free host, else `SCHED_PAIR_MIN`.
    pub(super) fn pair_min(self) -> Duration {
        if self == Split::MeasureElseBlocked {
            SCHED_PAIR_LIGHT
        } else {
            SCHED_PAIR_MIN
        }
    }
}

/// Our workers' CPU, in cores, under which a host reading of "free" is trusted until the
/// `schedstat` sample has a pair, however many of them are busy: they leave most of the cores
/// to a runnable worker.
pub(super) const LIGHT_CPU_PER_CORE: f64 = 0.25;

/// The split for a tick: `host_cpu` the host's CPU use (refreshed once a second), `busy` our
/// workers running a task now (pool-core's `running`, no walk over the workers), `cores_used`
/// the cores' worth of CPU our workers used over the interval, `needed` whether a rule needs
/// the split (a backlog, or workers that may be saturating the cores).
///
/// Off-CPU time is blocked time without a measurement only when a CPU is surely free: the
/// host below `HOST_FREE_BELOW` *and* no more of our workers busy than cores. The second half
/// is what the host reading alone misses: refreshed once a second (`HOST_CPU_EVERY`), it
/// still shows the host before our workers when they start to oversubscribe the cores (a
/// CPU-bound phase after a sleep-bound one), so their run-queue wait read as blocked time and
/// CPU-bound work grew (W4). Busy workers can queue behind each other only when they
/// outnumber the cores, and that count comes from pool-core's counters every tick. Then the
/// sample is read every tick, needed or not, so its pair is ready when a backlog comes (the
/// sample is only `SCHED_SAMPLE` files, kept open); until the first pair, workers using under
/// `LIGHT_CPU_PER_CORE` of the cores count as blocked, so a sleep-bound burst on a quiet host
/// still grows at once instead of waiting 50 ms for the pair.
///
/// Not light while the process's CPU (`process_cpu`, fresh every tick) fills the cores (9/10,
/// as the host reading's "free"), whatever the workers' clocks (read a few a tick in turn) and
/// the host reading (once a second) say: both can be stale-low after a trim or a phase change
/// (the CPU phase's start read 64 workers at 0.43 cores, the process at 1.96, and grew them to
/// 105 on 53.7 "blocked"). W4's CPU-bound phase, trimmed 28 -> 12 on a tick the controller
/// was starved to 324 ms, read 0.48 cores by the clocks and a free host (the sleep phase's
/// reading) while the process used 1.96; taken as light, its off-CPU time counted as blocked
/// until the pair, 11.5 of 12 workers, and it grew 12 -> 65, trimmed back over the next 400 ms. Not on a lower process figure: it counts
/// the process's other threads too, and a sleep phase's read 0.14-1.04 cores (the submitting
/// thread among them) where the workers' clocks read 0.2-0.6; taken as not light, those
/// ticks read states and pairs they do not need.
pub(super) fn off_cpu_split(
    host_cpu: Option<f64>,
    busy: usize,
    cores: usize,
    cores_used: f64,
    process_cpu: Option<f64>,
    needed: bool,
) -> Split {
    let host_free = host_cpu.is_some_and(|h| h < HOST_FREE_BELOW);
    let process_full = process_cpu.is_some_and(|p| p >= HOST_FREE_BELOW * cores as f64);
    if host_free && busy <= cores {
        Split::Blocked
    } else if host_free && !process_full && cores_used < LIGHT_CPU_PER_CORE * cores as f64 {
        Split::MeasureElseBlocked
    } else if needed || host_free {
        Split::Measure
    } else {
        Split::Unknown
    }
}

/// The blocked count, the workers' CPU share and their demand (CPU plus run-queue wait, in
/// cores) from one measured sample of the busy workers' time over `secs` seconds.
pub(super) fn measured_split(time: Option<WorkerTime>, secs: f64, running: u64) -> Split3 {
    let (mut blocked, mut worker_cpu, mut worker_demand) = (None, None, None);
    if let Some(time) = time.filter(|_| secs > 0.0) {
        let off = time.busy.saturating_sub(time.cpu).as_secs_f64();
        // Without a sample (no schedstats, or none of the sampled workers was off the CPU
        // yet), the split of off-CPU time is unknown while the CPUs may be full.
        // Then `blocked` and `worker_demand` stay unknown (`worker_cpu` alone known): the
        // decision holds and the controller looks again once the sample has a pair.
        worker_cpu = Some(time.cpu.as_secs_f64() / secs);
        if let Some(wait_share) = time.wait_share {
            let wait = off * wait_share;
            let busy = time.busy.as_secs_f64();
            // The blocked share of the busy time, applied to the busy count now: `blocked`
            // is compared with `running`, an instant, so it is scaled to it.
            let blocked_share = if busy > 0.0 { (off - wait) / busy } else { 0.0 };
            blocked = Some((blocked_share * running as f64).min(running as f64));
            worker_demand = Some((time.cpu.as_secs_f64() + wait) / secs);
        }
    }
    (blocked, worker_cpu, worker_demand)
}
