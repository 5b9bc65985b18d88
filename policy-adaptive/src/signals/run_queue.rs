//! The run-queue sample: a few busy workers' `schedstat` (kept open) and, where the busy workers
//! outnumber the cores, more of their states (`stat`), which split the time a busy worker spent
//! off the CPU into run-queue wait and blocked time.

use std::time::{Duration, Instant};

use pool_core::WorkerStats;

use super::split::{Split, LIGHT_CPU_PER_CORE};
use super::PoolSignals;
use crate::proc::{SchedStat, ThreadStat, ThreadTimes};
use crate::snapshot::WorkerStates;

/// Busy workers whose `schedstat` the sample keeps open and re-reads (one `pread` each), so a
/// tick reads at most this many files, whatever the pool's size. These reads are the only
/// per-worker system calls besides the CPU clocks: the tick's cost no longer grows with the
/// pool (it cost two `/proc` reads per worker per tick before).
pub(super) const SCHED_SAMPLE: usize = 2;

/// Busy workers, besides the `schedstat` sample's, whose state (`stat`, kept open) a reading
/// that takes states reads too: 8 states a reading rather than 2, 16-24 over `SHARE_SPAN`
/// rather than 4-6. With 4-6, W3 at 18-25 workers on 2 cores (blocked about a third of their
/// busy time) read none blocked now and then, and rule 6 trimmed it: 15 trims over 8 runs,
/// 4 with 8 states a reading. Only the states, only while they are taken (busy workers
/// outnumbering the cores, not light on a free host): 6 re-reads of about 3.8 µs each.
pub(super) const STATE_SAMPLE: usize = 6;

/// Consecutive readings of the sample span at least this long: the file moves only at context
/// switches and scheduler ticks, and a wait in progress is not in it yet, so over an early
/// tick's 10 ms a CPU-bound worker queued for a CPU looked blocked.
pub(super) const SCHED_PAIR_MIN: Duration = Duration::from_millis(50);

/// `SCHED_PAIR_MIN` for light workers on a host with a CPU free (`Split::MeasureElseBlocked`):
/// every other tick at the default interval. Their run queues are short (their demand is under
/// a quarter of the cores), so their share moves little from one reading to the next; it
/// stands between readings (`SHARE_VALID` is longer), and until the first pair their off-CPU
/// time counts as blocked anyway. In `compare`'s "tasks finishing" hold on a quiet host, this
/// halves the `schedstat` re-reads of a tick.
pub(super) const SCHED_PAIR_LIGHT: Duration = Duration::from_millis(150);

/// Every this long, the longest-sampled worker makes room for the next busy worker, round
/// robin, so one odd worker (say, one long-blocked task among CPU-bound ones) does not speak
/// for the pool for ever. Opening a file costs 20-70 µs on a busy host, a re-read a few: one
/// swap a second (for the whole sample, not per sampled worker) keeps the average near the
/// re-read.
pub(super) const SCHED_ROTATE: Duration = Duration::from_secs(1);

/// ... and only once the longest-sampled worker's file has been read this many times (its
/// opening reading included): the sample is read when a tick measures, not every tick, so a
/// wall-time rotation alone paid an opening (of `schedstat`, and of `stat` where states are
/// taken: 100-140 µs together on a loaded 2-core VM) for every 2-3 readings of a still pool,
/// which then measured every fourth tick (`strace` of `tick_cost 256 busy`: 6 `schedstat` and
/// 8 `stat` opens in 5 s). A pool measured every tick reads 8 times in 0.8 s, so there the
/// rotation stays once a second; a still pool (measured every 16th tick, checked with the
/// process's CPU clock alone in between) rotates every 12.8 s, light workers read every
/// other tick every 1.6 s: each sampled worker speaks for 8 readings, whatever the tick's
/// rhythm.
pub(super) const SCHED_ROTATE_READINGS: u32 = 8;

/// Whether the longest-sampled worker, in the sample for `age` and read `reads` times (its
/// opening reading included), makes room for the next busy worker.
pub(super) fn makes_room(age: Duration, reads: u32) -> bool {
    age >= SCHED_ROTATE && reads >= SCHED_ROTATE_READINGS
}

/// How long a run-queue share stands while the next pair matures.
pub(super) const SHARE_VALID: Duration = Duration::from_millis(250);

/// The run-queue share is taken over the readings of about this long. A wait in progress is in
/// `schedstat` only once the thread gets its CPU, so on a host at load 40 (waits of tens of ms)
/// one 50 ms delta could call a spinning worker's wait "blocked"; consecutive deltas make up
/// for each other (what one misses the next counts), so a longer span averages that out.
pub(super) const SHARE_SPAN: Duration = Duration::from_millis(250);

/// One sampled worker: its open `schedstat` and the last reading of it.
#[derive(Debug)]
pub(super) struct SchedSample {
    pub(super) index: usize,
    file: SchedStat,
    /// When the worker joined the sample (the oldest makes room: `makes_room`).
    since: std::time::Instant,
    /// Readings of its file so far, the opening one included (`makes_room`).
    pub(super) reads: u32,
    /// The last reading and the worker's busy time then; `None` after a pause in sampling,
    /// so that no delta spans the pause.
    mark: Option<(ThreadTimes, Duration)>,
}

/// One worker of the state sample: its open `stat`.
#[derive(Debug)]
pub(super) struct StateSample {
    pub(super) index: usize,
    file: ThreadStat,
}

/// What one reading of the `schedstat` sample saw, summed over the sampled workers.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reading {
    pub(super) at: std::time::Instant,
    /// Busy time since the sampled workers' previous readings.
    pub(super) busy: Duration,
    /// Of it, time off the CPU.
    pub(super) off: Duration,
    /// Of that, run-queue wait that has ended (what `schedstat` counts).
    pub(super) wait: Duration,
    /// Sampled busy workers found runnable (on a CPU or queued for one) at the reading.
    pub(super) runnable: u32,
    /// Sampled busy workers found blocked at the reading.
    pub(super) blocked: u32,
}

/// The fewest state observations (over `SHARE_SPAN`) that may correct the run-queue share:
/// with fewer, one worker's moment would decide it.
const MIN_STATES: u32 = 4;

/// How many state observations `schedstat`'s own blocked share counts as, when the states
/// correct it (a prior: the states pull it their way as they add up).
const STATE_PRIOR: f64 = 2.0;

/// The run-queue share of the sampled workers' off-CPU time over the readings, or `None` with
/// too little off-CPU time to split.
///
/// `schedstat` counts a run-queue wait only when it ends, so with many workers queued for few
/// cores the waits in progress at a reading are missing from it and their time reads as
/// blocked (W3's 19 workers on 2 cores read 16.5 blocked; a CPU-bound phase's 65 read 12.6).
/// The workers' states at the readings are a sample of that time: a busy worker found blocked
/// a share `p` of the observations was blocked about `p` of its busy time, so at least
/// `off - p × busy` of its off-CPU time was run-queue wait, ended or not (`p` drawn toward
/// `schedstat`'s own blocked share by `STATE_PRIOR` observations' worth). The larger of the two
/// estimates stands: each can only miss wait (the state sample is noisy both ways, but a
/// spinning worker is never found blocked, and a sleeping one rarely runnable).
pub(super) fn run_queue_share(readings: &std::collections::VecDeque<Reading>) -> Option<f64> {
    let (mut busy, mut off, mut wait, mut runnable, mut blocked) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0u32, 0u32);
    for r in readings {
        busy += r.busy;
        off += r.off;
        wait += r.wait;
        runnable += r.runnable;
        blocked += r.blocked;
    }
    // `schedstat` moves at context switches and scheduler ticks (a few ms): under 5 ms off
    // the CPU in all is too little to split.
    if off < Duration::from_millis(5) {
        return None;
    }
    let off_s = off.as_secs_f64();
    let ended = wait.as_secs_f64() / off_s;
    let states = runnable + blocked;
    if states < MIN_STATES {
        return Some(ended);
    }
    // The blocked share of the busy time `schedstat` implies, as a prior worth `STATE_PRIOR`
    // observations: a handful of states says "never blocked" by chance (W3 at 14 workers,
    // blocked about a third of its busy time, read 0 of 5 and was trimmed to 4).
    let busy_s = busy.as_secs_f64().max(off_s);
    let prior = (off_s - wait.as_secs_f64().min(off_s)) / busy_s;
    let share = (f64::from(blocked) + STATE_PRIOR * prior) / (f64::from(states) + STATE_PRIOR);
    let seen = queued_share(busy_s, off_s, share);
    Some(ended.max(seen))
}

/// The run-queue share of `off` seconds off the CPU, of `busy` seconds busy, when a share
/// `blocked` of the busy time was blocked: `off - blocked × busy` was queued.
pub(super) fn queued_share(busy: f64, off: f64, blocked: f64) -> f64 {
    (1.0 - busy * blocked / off).clamp(0.0, 1.0)
}

/// Whether a run-queue share measured `age` ago with `then` workers busy still stands with
/// `running` busy now on `cores` cores, using `cores_used` of them: younger than
/// `SHARE_VALID`, and not measured with (a quarter) fewer busy workers than now once they
/// outnumber the cores, unless they are light (under `LIGHT_CPU_PER_CORE` of the cores: then
/// they hardly queue behind each other, and a sleep-bound burst keeps growing at once).
pub(super) fn share_stands(
    age: Duration,
    then: u64,
    running: u64,
    cores: usize,
    cores_used: f64,
) -> bool {
    let light = cores_used < LIGHT_CPU_PER_CORE * cores as f64;
    age <= SHARE_VALID && (light || running <= cores as u64 || running <= then + then / 4)
}

impl PoolSignals {
    /// The run-queue share of the sampled workers' off-CPU busy time since the sample was last
    /// read.
    ///
    /// Re-reads the sampled workers' open `schedstat` files once the last reading is
    /// `SCHED_PAIR_MIN` old (a delta over at least that long): at most `SCHED_SAMPLE` `pread`s
    /// per tick, whatever the pool's size. Between readings, the last share stands for
    /// `SHARE_VALID`.
    ///
    /// A share measured with fewer workers busy than now, once they outnumber the cores, does
    /// not stand: more workers queue longer for the same cores, and a share from before a
    /// growth (a few ms old at an early decision) called W3's workers, grown from 4 to 19 on 2
    /// cores, nearly all blocked, and the burst rule grew them to 64.
    pub(super) fn wait_share(
        &mut self,
        workers: &[WorkerStats],
        running: u64,
        cores_used: f64,
        split: Split,
        now: std::time::Instant,
    ) -> Option<f64> {
        let due = self
            .sched_at
            .is_none_or(|at| now.duration_since(at) >= split.pair_min());
        let states = split.states() && states_count(running, self.cores);
        if due {
            self.sched_at = Some(now);
            if let Some(share) = self.read_sample(workers, running, now, states) {
                self.last_share = Some((share, now, running));
                return Some(share);
            }
        } else if states {
            // Between readings (an early tick, a second look 25 ms after a full tick), the
            // states alone: they are what tells a fall of our workers' CPU that is blocking
            // from one that is an outside load (rule 4), and the look is where that fall is
            // judged. 8 `stat` re-reads, no `schedstat`.
            self.states_now = self.states_between_readings(workers, running, now);
        }
        let cores = self.cores;
        self.last_share
            .filter(|&(_, at, then)| {
                share_stands(now.duration_since(at), then, running, cores, cores_used)
            })
            .map(|(share, _, _)| share)
    }

    /// Reads the sample: the run-queue share of its off-CPU time since the last reading, if
    /// there is enough of it. Drops workers that retired, were replaced under their index, are
    /// parked now, or (one per `SCHED_ROTATE`) have been sampled longest; then fills the
    /// sample up with busy workers, round robin (their first reading is the baseline of the
    /// next delta).
    pub(super) fn read_sample(
        &mut self,
        workers: &[WorkerStats],
        running: u64,
        now: std::time::Instant,
        states: bool,
    ) -> Option<f64> {
        // `workers` is sorted by index.
        let stats_of = |index: usize| {
            workers
                .binary_search_by_key(&index, |w| w.index)
                .ok()
                .map(|at| &workers[at])
        };
        let registry = &self.workers;
        let (mut busy_time, mut off, mut wait) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let mut read = WorkerStates::default();
        // The longest-sampled worker makes room, once per `SCHED_ROTATE`.
        // Only when a busy worker is left out: with no other to take its place, the worker
        // would be dropped and its two files opened again (twice a re-read's cost, each).
        let others = running > self.sched.len() as u64;
        // The states correct the split only while the busy workers outnumber the cores (and
        // the split says they may: `Split::states`); they are read wherever the split says so,
        // for the snapshot (`Snapshot::states`, rule 4's fall), wherever they can count there.
        let oversubscribed = states && running > self.cores as u64;
        let due = self
            .rotated_at
            .is_none_or(|at| now.duration_since(at) >= SCHED_ROTATE);
        let rotate = (due && others)
            .then(|| self.sched.iter().min_by_key(|s| s.since))
            .flatten()
            .filter(|oldest| makes_room(now.duration_since(oldest.since), oldest.reads))
            .map(|oldest| oldest.since);
        let mut rotated = false;
        self.sched.retain_mut(|sample| {
            let Some(w) = stats_of(sample.index) else {
                return false;
            };
            let tid = registry.with(|threads| threads.get(&sample.index).and_then(|t| t.tid));
            if tid != Some(sample.file.tid()) {
                return false;
            }
            let Some(times) = sample.file.read() else {
                return false;
            };
            sample.reads = sample.reads.saturating_add(1);
            if let Some((before, busy_before)) = sample.mark {
                let d_busy = w.busy.saturating_sub(busy_before);
                let d_off = d_busy.saturating_sub(times.cpu.saturating_sub(before.cpu));
                busy_time += d_busy;
                off += d_off;
                wait += times.wait.saturating_sub(before.wait).min(d_off);
                // The state of a worker busy now (a parked one is neither: it has no task). In
                // the split only while the busy workers outnumber the cores: then waits in
                // progress pile up (fewer, and they queue only behind other processes, whose
                // waits end sooner). `stat` costs about 3 times `schedstat` to re-read (3.8
                // against 1.3 µs warm).
                if !w.parked && states {
                    read.count(sample.file.state());
                }
            }
            sample.mark = Some((times, w.busy));
            if w.parked {
                return false;
            }
            if !rotated && rotate == Some(sample.since) {
                rotated = true;
                return false;
            }
            true
        });
        if rotated {
            self.rotated_at = Some(now);
        }
        let mut busy = std::mem::take(&mut self.picks);
        busy.clear();
        // The candidates only when the sample has room: most readings keep the same workers,
        // and this walk over every worker was a tenth of a 256-worker tick's instructions.
        if self.sched.len() < SCHED_SAMPLE {
            busy.extend(
                workers
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| !w.parked && !self.sched.iter().any(|s| s.index == w.index))
                    .map(|(at, _)| at),
            );
        }
        let take = SCHED_SAMPLE
            .saturating_sub(self.sched.len())
            .min(busy.len());
        let start = if busy.is_empty() {
            0
        } else {
            self.cursor % busy.len()
        };
        for k in 0..take {
            let w = &workers[busy[(start + k) % busy.len()]];
            let tid = registry.with(|threads| threads.get(&w.index).and_then(|t| t.tid));
            if let Some((file, times)) = tid.and_then(SchedStat::open) {
                self.sched.push(SchedSample {
                    index: w.index,
                    file,
                    since: now,
                    reads: 1,
                    mark: Some((times, w.busy)),
                });
            }
        }
        if take > 0 {
            // The round robin moves on only when it picked (a full sample keeps its place).
            self.cursor = start + take;
        }
        self.picks = busy;
        if states {
            let more = self.read_states(workers, running, now);
            read.runnable += more.runnable;
            read.blocked += more.blocked;
            self.states_now = read.if_any();
        }
        let WorkerStates { runnable, blocked } = if oversubscribed {
            read
        } else {
            WorkerStates::default()
        };
        // The share over the readings of the last `SHARE_SPAN`.
        self.readings.push_back(Reading {
            at: now,
            busy: busy_time,
            off,
            wait,
            runnable,
            blocked,
        });
        while self
            .readings
            .front()
            .is_some_and(|r| now.duration_since(r.at) > SHARE_SPAN)
        {
            self.readings.pop_front();
        }
        run_queue_share(&self.readings)
    }

    /// Both samples' busy workers' states now, between the sample's readings: the `schedstat`
    /// sample's workers keep their marks (their next reading spans from the last), the state
    /// sample rotates and fills up as at a reading.
    pub(super) fn states_between_readings(
        &mut self,
        workers: &[WorkerStats],
        running: u64,
        now: Instant,
    ) -> Option<WorkerStates> {
        let mut read = self.read_states(workers, running, now);
        for sample in &mut self.sched {
            if busy_now(workers, sample.index) {
                read.count(sample.file.state());
            }
        }
        read.if_any()
    }

    /// The states of the state sample's busy workers now: (runnable, blocked). Drops workers
    /// that retired, were replaced under their index, or are parked, and (once per
    /// `SCHED_ROTATE`, while a busy worker is left out) the longest-sampled one; then fills
    /// the sample up with busy workers outside both samples, round robin. A state is an
    /// instant's: a worker counts from the reading that opens its file.
    pub(super) fn read_states(
        &mut self,
        workers: &[WorkerStats],
        running: u64,
        now: Instant,
    ) -> WorkerStates {
        let registry = &self.workers;
        let tid_of =
            |index: usize| registry.with(|threads| threads.get(&index).and_then(|t| t.tid));
        let sampled = (self.sched.len() + self.states.len()) as u64;
        let due = self
            .states_rotated_at
            .is_some_and(|at| now.duration_since(at) >= SCHED_ROTATE);
        if due && running > sampled && !self.states.is_empty() {
            self.states.remove(0);
            self.states_rotated_at = Some(now);
        }
        let states = &mut self.states;
        registry.with(|threads| {
            states.retain(|s| {
                busy_now(workers, s.index)
                    && threads.get(&s.index).and_then(|t| t.tid) == Some(s.file.tid())
            });
        });
        if self.states.len() < STATE_SAMPLE {
            let sched = &self.sched;
            let states = &self.states;
            let candidates: Vec<usize> = workers
                .iter()
                .filter(|w| !w.parked)
                .map(|w| w.index)
                .filter(|&i| !sched.iter().any(|s| s.index == i))
                .filter(|&i| !states.iter().any(|s| s.index == i))
                .collect();
            let take = (STATE_SAMPLE - self.states.len()).min(candidates.len());
            let start = self.states_cursor % candidates.len().max(1);
            for k in 0..take {
                let index = candidates[(start + k) % candidates.len()];
                if let Some(file) = tid_of(index).and_then(ThreadStat::open) {
                    self.states.push(StateSample { index, file });
                    self.states_rotated_at.get_or_insert(now);
                }
            }
            self.states_cursor = start + take;
        }
        let mut read = WorkerStates::default();
        for sample in &self.states {
            read.count(sample.file.state());
        }
        read
    }

    /// Stops the run-queue sample for now: its files stay open (re-opening costs more than
    /// keeping two descriptors), but the next reading starts a new delta.
    pub(super) fn pause_sample(&mut self) {
        for sample in &mut self.sched {
            sample.mark = None;
        }
        self.sched_at = None;
        self.readings.clear();
    }
}

/// Whether the worker at `index` in `workers` (sorted by index) is busy now: listed and not
/// parked.
fn busy_now(workers: &[WorkerStats], index: usize) -> bool {
    workers
        .binary_search_by_key(&index, |w| w.index)
        .is_ok_and(|at| !workers[at].parked)
}

/// Whether the busy workers' states can count at a sample: in the split while the busy
/// workers outnumber the cores, in rule 4's verdict (`WorkerStates::mostly_runnable`) from
/// `MOSTLY_RUNNABLE_READ` (3) states up. With fewer busy workers than both, a `stat` re-read
/// would count nowhere: one busy worker with a backlog on a busy host paid 32-34 µs a tick
/// with them against 23-25 without (`tick_cost 1 busy` beside two busy loops).
pub(super) fn states_count(running: u64, cores: usize) -> bool {
    running > cores as u64 || running >= u64::from(crate::snapshot::MOSTLY_RUNNABLE_READ)
}
