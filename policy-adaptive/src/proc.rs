//! Thread CPU clocks (one system call each), one worker's `schedstat` from Linux's `/proc`, and
//! the registry of worker threads (id and clock).
//!
//! Every function degrades to `None` where the clock or `/proc` is missing (other platforms,
//! sandboxes), and the decision then works from the pool's counters alone.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use pool_core::sync::{Arc, Mutex};
use pool_core::ThreadPoolBuilder;

/// A thread's cumulative time on a CPU and waiting in a run queue for one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ThreadTimes {
    /// Time running on a CPU.
    pub(crate) cpu: Duration,
    /// Time runnable but waiting in a run queue.
    pub(crate) wait: Duration,
}

/// The OS thread id of the calling thread (Linux), read from the `/proc/thread-self` symlink
/// (`<pid>/task/<tid>`).
pub(crate) fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// Thread `tid`'s `schedstat` (`/proc/self/task/<tid>/schedstat`), opened once and re-read in
/// place: a read is one `pread` from offset 0 (about 1 µs), where opening, reading and closing
/// the file by its path cost 9 µs warm and 20-40 µs after a tick's sleep on a busy host (path
/// lookup, open and close dominate). The controller keeps at most a couple of these open.
///
/// Beside it, the thread's `stat` (opened at the first [`SchedStat::state`], then kept open:
/// one more `pread`; a sample that never asks for states never opens it, half of each
/// rotation's opening cost) gives its state now:
/// `schedstat`'s run-queue wait counts a wait only once it ends (when the thread gets its CPU),
/// so with many workers queued for few cores the waits in progress at a reading read as
/// off-CPU time that is not waiting, that is as blocked. The state says which it is.
#[derive(Debug)]
pub(crate) struct SchedStat {
    tid: u32,
    #[cfg(unix)]
    file: std::fs::File,
    /// `/proc/self/task/<tid>/stat`, for the state: `None` until the first `state`, then
    /// `Some(None)` if it would not open.
    state: Option<Option<ThreadStat>>,
}

/// What a thread is doing at a reading, from the state letter of its `stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThreadState {
    /// On a CPU or in a run queue (`R`).
    Runnable,
    /// Asleep, in an uninterruptible wait, or stopped: off the CPU by its own doing.
    Blocked,
}

impl SchedStat {
    /// Opens thread `tid`'s file, with its first reading; `None` where the kernel keeps no
    /// schedstats (or there is no `/proc`), or the thread is gone.
    pub(crate) fn open(tid: u32) -> Option<(SchedStat, ThreadTimes)> {
        #[cfg(unix)]
        {
            let file = std::fs::File::open(format!("/proc/self/task/{tid}/schedstat")).ok()?;
            let stat = SchedStat {
                tid,
                file,
                state: None,
            };
            // A file that opens but does not parse (no schedstats) is as good as none.
            let times = stat.read()?;
            Some((stat, times))
        }
        #[cfg(not(unix))]
        {
            let _ = tid;
            None
        }
    }

    /// The thread this file describes.
    pub(crate) fn tid(&self) -> u32 {
        self.tid
    }

    /// The thread's state now; `None` without its `stat` file or once the thread has exited.
    /// Opens the file on the first call.
    pub(crate) fn state(&mut self) -> Option<ThreadState> {
        let tid = self.tid;
        self.state
            .get_or_insert_with(|| ThreadStat::open(tid))
            .as_ref()?
            .state()
    }

    /// The thread's cumulative time on a CPU and waiting in a run queue, now (nanoseconds in
    /// the file); `None` once the thread has exited (the kernel then refuses the read).
    pub(crate) fn read(&self) -> Option<ThreadTimes> {
        #[cfg(unix)]
        {
            // Three decimal u64s and their separators fit in 64 bytes.
            reread::<96, _>(&self.file, parse_schedstat)
        }
        #[cfg(not(unix))]
        {
            None
        }
    }
}

/// The host's memory (`/proc/meminfo`'s first lines) and the cgroup's limit and use (v2
/// `memory.max` and `memory.current`, else v1 `memory.limit_in_bytes` and
/// `memory.usage_in_bytes`), each file opened once and re-read with one `pread`. sysinfo's
/// refresh plus `cgroup_limits` opened, read and closed seven files each time (and, on a host
/// without cgroup memory files, tried six that do not exist): a tick that refreshed memory cost
/// several times an ordinary one. The figures are sysinfo's: available is `MemAvailable`, and
/// with a cgroup limit the smaller of that and the limit less the cgroup's use; the limit is
/// the smaller of `MemTotal` and the cgroup's. Linux only; elsewhere sysinfo stays.
#[cfg(feature = "sysinfo")]
#[derive(Debug)]
pub(crate) struct HostMemory {
    #[cfg(unix)]
    meminfo: std::fs::File,
    /// The cgroup's (limit, use) files, if it has them.
    #[cfg(unix)]
    cgroup: Option<(std::fs::File, std::fs::File)>,
}

#[cfg(feature = "sysinfo")]
impl HostMemory {
    /// Opens the files; `None` without a readable `/proc/meminfo`.
    pub(crate) fn open() -> Option<HostMemory> {
        #[cfg(unix)]
        {
            let meminfo = std::fs::File::open("/proc/meminfo").ok()?;
            let pair = |limit: &str, used: &str| {
                Some((
                    std::fs::File::open(limit).ok()?,
                    std::fs::File::open(used).ok()?,
                ))
            };
            let cgroup = pair("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current")
                .or_else(|| {
                    pair(
                        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                        "/sys/fs/cgroup/memory/memory.usage_in_bytes",
                    )
                });
            let memory = HostMemory { meminfo, cgroup };
            memory.read()?;
            Some(memory)
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// `(available, limit)` in bytes now.
    pub(crate) fn read(&self) -> Option<(u64, u64)> {
        #[cfg(unix)]
        {
            // `MemTotal`, `MemFree` and `MemAvailable` are the first three lines.
            let (mut available, total) = reread::<256, _>(&self.meminfo, parse_meminfo)?;
            let mut limit = total;
            if let Some((max, used)) = &self.cgroup {
                // `memory.max` reads `max` without a limit: no number, no limit.
                let max = reread::<32, _>(max, |t| t.trim().parse::<u64>().ok());
                let used = reread::<32, _>(used, |t| t.trim().parse::<u64>().ok());
                if let (Some(max), Some(used)) = (max, used) {
                    limit = limit.min(max);
                    available = available.min(limit.saturating_sub(used));
                }
            }
            Some((available, limit))
        }
        #[cfg(not(unix))]
        {
            None
        }
    }
}

/// `(MemAvailable, MemTotal)` in bytes from the start of `/proc/meminfo`.
#[cfg(feature = "sysinfo")]
fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let (mut total, mut available) = (None, None);
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let slot = match fields.next() {
            Some("MemTotal:") => &mut total,
            Some("MemAvailable:") => &mut available,
            _ => continue,
        };
        *slot = fields.next()?.parse::<u64>().ok()?.checked_mul(1024);
    }
    Some((available?, total?))
}

/// The host's CPU use from `/proc/stat`'s first line (all CPUs), opened once and re-read with
/// one `pread` (about 30 µs on a busy 2-core host, where sysinfo's refresh, which parses every
/// CPU's line into its own structures, cost 65-220 µs). Linux only; elsewhere sysinfo stays.
#[cfg(feature = "sysinfo")]
#[derive(Debug)]
pub(crate) struct HostStat {
    #[cfg(unix)]
    file: std::fs::File,
    /// Busy and total jiffies at the last reading.
    last: Option<(u64, u64)>,
}

#[cfg(feature = "sysinfo")]
impl HostStat {
    /// Opens `/proc/stat`; `None` where there is none.
    pub(crate) fn open() -> Option<HostStat> {
        #[cfg(unix)]
        {
            let file = std::fs::File::open("/proc/stat").ok()?;
            let mut stat = HostStat { file, last: None };
            stat.jiffies()?;
            Some(stat)
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// Busy and total jiffies of all CPUs so far.
    fn jiffies(&mut self) -> Option<(u64, u64)> {
        #[cfg(unix)]
        {
            // The first line ("cpu  user nice system idle iowait irq softirq steal guest
            // guest_nice") is well under 256 bytes.
            reread::<256, _>(&self.file, parse_proc_stat)
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// The share of the host's CPU time that was busy since the last call (0..=1); `None` on
    /// the first call, or when no time passed.
    pub(crate) fn busy_share(&mut self) -> Option<f64> {
        let now = self.jiffies()?;
        let before = self.last.replace(now)?;
        let busy = now.0.saturating_sub(before.0);
        let total = now.1.saturating_sub(before.1);
        (total > 0).then(|| (busy as f64 / total as f64).clamp(0.0, 1.0))
    }
}

/// Busy and total jiffies from `/proc/stat`'s first line; idle and iowait are not busy, and
/// guest time is already inside user time.
#[cfg(feature = "sysinfo")]
fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = values.iter().sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Thread `tid`'s `stat`, opened once and re-read in place (one `pread`, about 3.8 µs warm)
/// for the thread's state alone: the state sample beside the `schedstat` one.
#[derive(Debug)]
pub(crate) struct ThreadStat {
    tid: u32,
    #[cfg(unix)]
    file: std::fs::File,
}

impl ThreadStat {
    /// Opens thread `tid`'s `stat`; `None` where there is no `/proc` or the thread is gone.
    pub(crate) fn open(tid: u32) -> Option<ThreadStat> {
        #[cfg(unix)]
        {
            let file = std::fs::File::open(format!("/proc/self/task/{tid}/stat")).ok()?;
            Some(ThreadStat { tid, file })
        }
        #[cfg(not(unix))]
        {
            let _ = tid;
            None
        }
    }

    /// The thread this file describes.
    pub(crate) fn tid(&self) -> u32 {
        self.tid
    }

    /// The thread's state now; `None` once the thread has exited.
    pub(crate) fn state(&self) -> Option<ThreadState> {
        #[cfg(unix)]
        {
            // `pid (comm) S ...`: the name is at most 16 bytes, so the letter is in the first 64.
            reread::<64, _>(&self.file, parse_state)
        }
        #[cfg(not(unix))]
        {
            None
        }
    }
}

/// The first `N` bytes of an open `/proc` file, read in place (one `pread` from offset 0: the
/// kernel regenerates the text) and parsed.
#[cfg(unix)]
fn reread<const N: usize, T>(
    file: &std::fs::File,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Option<T> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; N];
    let len = file.read_at(&mut buf, 0).ok()?;
    parse(std::str::from_utf8(&buf[..len]).ok()?)
}

/// Reads a POSIX CPU clock (`CLOCK_PROCESS_CPUTIME_ID`, `CLOCK_THREAD_CPUTIME_ID`).
#[cfg(unix)]
fn cpu_clock(clock: libc::clockid_t) -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable `timespec` for the duration of the call, and
    // `clock_gettime` writes nothing else; an unsupported clock returns -1 and writes nothing.
    let status = unsafe { libc::clock_gettime(clock, &mut now) };
    if status != 0 {
        return None;
    }
    let secs = u64::try_from(now.tv_sec).ok()?;
    let nanos = u32::try_from(now.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

/// A thread's CPU clock (`pthread_getcpuclockid`), readable from any thread of the process:
/// one system call gives that thread's CPU time, to the nanosecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CpuClock(#[cfg(unix)] libc::clockid_t);

impl CpuClock {
    /// The calling thread's clock; `None` where the platform has none.
    pub(crate) fn current() -> Option<CpuClock> {
        #[cfg(unix)]
        {
            let mut clock: libc::clockid_t = 0;
            // SAFETY: `pthread_self()` is the calling thread, alive for the call, and `clock` is
            // a valid, writable `clockid_t`; on failure nothing is written and we return `None`.
            let status = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
            (status == 0).then_some(CpuClock(clock))
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// The thread's CPU time so far; `None` once the thread has exited (the clock is invalid).
    pub(crate) fn read(self) -> Option<Duration> {
        #[cfg(unix)]
        {
            cpu_clock(self.0)
        }
        #[cfg(not(unix))]
        {
            None
        }
    }
}

/// The calling thread's CPU time so far: one system call.
pub(crate) fn current_thread_cpu() -> Option<Duration> {
    #[cfg(unix)]
    {
        cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The whole process's CPU time so far (every thread's, the workers' and the rest): one system
/// call, whose kernel side sums the process's threads.
pub(crate) fn process_cpu() -> Option<Duration> {
    #[cfg(unix)]
    {
        cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The state letter of a `/proc/.../stat` line (after the name in parentheses, which may itself
/// hold a `)`: the last one closes it).
fn parse_state(text: &str) -> Option<ThreadState> {
    let (_, rest) = text.rsplit_once(')')?;
    match rest.trim_start().chars().next()? {
        'R' => Some(ThreadState::Runnable),
        'S' | 'D' | 'T' | 't' | 'I' | 'W' | 'P' => Some(ThreadState::Blocked),
        _ => None,
    }
}

fn parse_schedstat(text: &str) -> Option<ThreadTimes> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    let cpu = fields.next()??;
    let wait = fields.next()??;
    Some(ThreadTimes {
        cpu: Duration::from_nanos(cpu),
        wait: Duration::from_nanos(wait),
    })
}

/// The OS thread ids of a pool's workers, by worker index, recorded by the pool's start hook.
///
/// [`AdaptivePool`](crate::AdaptivePool) installs the hooks itself; use this type directly only
/// to run [`PoolSignals`](crate::PoolSignals) on a pool you build (a custom
/// [`Signals`](crate::Signals) that wraps them, say): [`recording`](Self::recording) adds the
/// hooks to that pool's builder.
///
/// # Examples
///
/// ```
/// use policy_adaptive::WorkerThreads;
/// use pool_core::ThreadPool;
///
/// let workers = WorkerThreads::new();
/// let pool = workers
///     .recording(ThreadPool::builder().threads(2))
///     .build()
///     .unwrap();
/// pool.wait_idle(std::time::Duration::from_secs(10));
/// # #[cfg(target_os = "linux")]
/// # { let _ = workers.tids(); }
/// pool.shutdown();
/// assert!(workers.tids().is_empty());
/// ```
#[derive(Clone, Default)]
pub struct WorkerThreads {
    tids: Arc<Mutex<BTreeMap<usize, WorkerThread>>>,
}

/// What the start hook records about one worker thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WorkerThread {
    /// The OS thread id (Linux), for its `schedstat`.
    pub(crate) tid: Option<u32>,
    /// Its CPU clock.
    pub(crate) clock: Option<CpuClock>,
}

impl WorkerThreads {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the calling thread as worker `index` (call from `on_thread_start`): its OS thread
    /// id and CPU clock, where the platform has them.
    pub fn record_current(&self, index: usize) {
        let thread = WorkerThread {
            tid: current_tid(),
            clock: CpuClock::current(),
        };
        if thread.tid.is_some() || thread.clock.is_some() {
            self.tids.lock().insert(index, thread);
        }
    }

    /// Forgets worker `index` (call from `on_thread_stop`).
    pub fn forget(&self, index: usize) {
        self.tids.lock().remove(&index);
    }

    /// `builder` with a start hook that records each worker here
    /// ([`record_current`](Self::record_current)) and a stop hook that forgets it
    /// ([`forget`](Self::forget)); they add up with the builder's own hooks.
    pub fn recording(&self, builder: ThreadPoolBuilder) -> ThreadPoolBuilder {
        let (on_start, on_stop) = (self.clone(), self.clone());
        builder
            .on_thread_start(move |index| on_start.record_current(index))
            .on_thread_stop(move |index| on_stop.forget(index))
    }

    /// Runs `f` on the registry under its lock: a tick looks up a handful of a pool's up to
    /// 256 workers, without copying the whole registry.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&BTreeMap<usize, WorkerThread>) -> R) -> R {
        f(&self.tids.lock())
    }

    /// The recorded thread ids.
    pub fn tids(&self) -> Vec<u32> {
        self.tids.lock().values().filter_map(|t| t.tid).collect()
    }
}

impl fmt::Debug for WorkerThreads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerThreads")
            .field("recorded", &self.tids.lock().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "sysinfo")]
    #[test]
    fn proc_stat_gives_busy_and_total() {
        let text = "cpu  100 5 50 800 40 0 5 0 0 0\ncpu0 50 2 25 400 20 0 3 0 0 0\n";
        assert_eq!(parse_proc_stat(text), Some((160, 1000)));
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_proc_stat("cpu  1 x\n"), None);
    }

    #[cfg(all(target_os = "linux", feature = "sysinfo"))]
    #[test]
    fn host_stat_reads_a_share_from_the_second_call() {
        let mut host = HostStat::open().expect("/proc/stat");
        // The jiffies move every scheduler tick: wait for them, not for a fixed time.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let share = loop {
            if let Some(share) = host.busy_share() {
                break share;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "/proc/stat never moved"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!((0.0..=1.0).contains(&share));
    }

    #[test]
    fn schedstat_gives_cpu_and_wait() {
        let times = parse_schedstat("1500000 2500000 7\n").unwrap();
        assert_eq!(times.cpu, Duration::from_micros(1500));
        assert_eq!(times.wait, Duration::from_micros(2500));
        assert_eq!(parse_schedstat("garbage"), None);
    }

    #[cfg(feature = "sysinfo")]
    #[test]
    fn meminfo_gives_available_and_total() {
        let text = "MemTotal:        8000000 kB\nMemFree:          100000 kB\nMemAvailable:    6000000 kB\nBuff";
        assert_eq!(
            parse_meminfo(text),
            Some((6_000_000 * 1024, 8_000_000 * 1024))
        );
        assert_eq!(parse_meminfo("MemTotal: 8 kB\n"), None);
    }

    #[cfg(all(target_os = "linux", feature = "sysinfo"))]
    #[test]
    fn host_memory_matches_sysinfo() {
        let memory = HostMemory::open().expect("Linux has /proc/meminfo");
        let (available, limit) = memory.read().expect("a reading");
        let mut system = sysinfo::System::new();
        system.refresh_memory();
        let mut their_limit = system.total_memory();
        if let Some(cgroup) = system.cgroup_limits() {
            their_limit = their_limit.min(cgroup.total_memory);
        }
        assert_eq!(limit, their_limit);
        assert!(available <= limit);
    }

    /// The calling thread reads its own `stat` while on a CPU: runnable.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_threads_stat_gives_its_state() {
        let tid = current_tid().expect("a tid");
        let stat = ThreadStat::open(tid).expect("its stat");
        assert_eq!(stat.tid(), tid);
        assert_eq!(stat.state(), Some(ThreadState::Runnable));
    }

    #[test]
    fn stat_gives_the_state_after_the_name() {
        assert_eq!(
            parse_state("42 (pool) worker) R 1 2"),
            Some(ThreadState::Runnable)
        );
        assert_eq!(parse_state("42 (w) S 1"), Some(ThreadState::Blocked));
        assert_eq!(parse_state("42 (w) D 1"), Some(ThreadState::Blocked));
        assert_eq!(parse_state("42 (w) Z 1"), None);
        assert_eq!(parse_state("42 (truncated"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_calling_thread_is_found_in_proc() {
        let tid = current_tid().expect("Linux has /proc/thread-self");
        let (mut stat, first) = SchedStat::open(tid).expect("the calling thread's schedstat");
        // The `stat` file is opened only when a state is first asked for.
        assert!(stat.state.is_none());
        let before = current_thread_cpu().expect("a thread CPU clock");
        let clock = CpuClock::current().expect("the thread's clock");
        // Burn a little CPU: the clock read through the clock id moves with the thread's own.
        let mut x = 1u64;
        for i in 0..1_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(clock.read().expect("a readable clock") > before);
        // The open file follows the thread: its CPU time moved too (schedstat moves at context
        // switches and scheduler ticks, so wait for that rather than for a fixed spin).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while stat.read().expect("the thread is alive").cpu == first.cpu {
            assert!(
                std::time::Instant::now() < deadline,
                "schedstat never moved"
            );
            std::thread::yield_now();
        }
        assert_eq!(stat.tid(), tid);
        // Reading its own state, the thread is on a CPU.
        assert_eq!(stat.state(), Some(ThreadState::Runnable));
        assert!(matches!(stat.state, Some(Some(_))));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_exited_thread_reads_as_none() {
        let (mut stat, _) = std::thread::spawn(|| SchedStat::open(current_tid().expect("a tid")))
            .join()
            .expect("the thread ran")
            .expect("its schedstat");
        // `join` returns once the thread has cleared its tid futex, which the kernel does just
        // before it releases the task; `/proc` may show the task for a moment after that (it
        // did once under load), so wait for the release itself.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while let Some(times) = stat.read() {
            assert!(
                std::time::Instant::now() < deadline,
                "an exited thread still reads {times:?} 10 s later"
            );
            std::thread::yield_now();
        }
        // Its `stat`, never opened while it ran, does not open now.
        assert_eq!(stat.state(), None);
    }
}
