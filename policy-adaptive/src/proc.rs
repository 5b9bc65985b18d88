//! Per-thread CPU time from Linux's `/proc`, and the registry of worker thread ids.
//!
//! Every function degrades to `None` where `/proc` is missing (other platforms, sandboxes), and
//! the decision then works from the pool's counters alone.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use pool_core::sync::{Arc, Mutex};

/// Linux reports `utime`/`stime` in clock ticks of `USER_HZ`, which is 100 on every Linux ABI
/// (the kernel converts; `sysconf(_SC_CLK_TCK)` returns this constant).
const USER_HZ: u64 = 100;

/// A thread's cumulative time on a CPU and waiting for one, and whether it sleeps right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ThreadTimes {
    /// Time running on a CPU.
    pub(crate) cpu: Duration,
    /// Time runnable but waiting in a run queue; `None` when only `stat` was readable.
    pub(crate) wait: Option<Duration>,
    /// The thread is asleep in the kernel now (state `S` or `D`: a futex, I/O, a timer), as
    /// opposed to running or runnable (`R`).
    pub(crate) sleeping: bool,
}

/// The OS thread id of the calling thread (Linux), read from the `/proc/thread-self` symlink
/// (`<pid>/task/<tid>`).
pub(crate) fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// The cumulative times and the current state of thread `tid` of this process.
pub(crate) fn thread_times(tid: u32) -> Option<ThreadTimes> {
    // `stat` gives the state (and CPU time in 10 ms ticks); `schedstat`, when the kernel keeps
    // schedstats, gives nanoseconds and the run-queue wait that tells a thread starved of CPU
    // from a blocked one.
    let mut times =
        parse_stat(&std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?)?;
    if let Ok(text) = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")) {
        if let Some(precise) = parse_schedstat(&text) {
            times.cpu = precise.cpu;
            times.wait = precise.wait;
        }
    }
    Some(times)
}

/// The calling thread's CPU time so far.
pub(crate) fn current_thread_cpu() -> Option<Duration> {
    if let Ok(text) = std::fs::read_to_string("/proc/thread-self/schedstat") {
        if let Some(times) = parse_schedstat(&text) {
            return Some(times.cpu);
        }
    }
    parse_stat(&std::fs::read_to_string("/proc/thread-self/stat").ok()?).map(|t| t.cpu)
}

fn parse_schedstat(text: &str) -> Option<ThreadTimes> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    let cpu = fields.next()??;
    let wait = fields.next()??;
    Some(ThreadTimes {
        cpu: Duration::from_nanos(cpu),
        wait: Some(Duration::from_nanos(wait)),
        sleeping: false,
    })
}

fn parse_stat(text: &str) -> Option<ThreadTimes> {
    // The command name (field 2) may contain spaces and parentheses: fields are counted from the
    // last ')'. utime and stime are fields 14 and 15, i.e. the 12th and 13th after the name.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let sleeping = matches!(fields.next()?, "S" | "D");
    let mut fields = fields.skip(10);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(ThreadTimes {
        cpu: Duration::from_millis(ticks * 1000 / USER_HZ),
        wait: None,
        sleeping,
    })
}

/// The OS thread ids of a pool's workers, by worker index, recorded by the pool's start hook.
///
/// [`AdaptivePool`](crate::AdaptivePool) installs the hooks itself; use this type directly only
/// to run [`PoolSignals`](crate::PoolSignals) on a pool you build.
///
/// # Examples
///
/// ```
/// use policy_adaptive::WorkerThreads;
/// use pool_core::ThreadPool;
///
/// let workers = WorkerThreads::new();
/// let (on_start, on_stop) = (workers.clone(), workers.clone());
/// let pool = ThreadPool::builder()
///     .threads(2)
///     .on_thread_start(move |index| on_start.record_current(index))
///     .on_thread_stop(move |index| on_stop.forget(index))
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
    tids: Arc<Mutex<BTreeMap<usize, u32>>>,
}

impl WorkerThreads {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the calling thread as worker `index` (call from `on_thread_start`). Does nothing
    /// where the thread id is unknown.
    pub fn record_current(&self, index: usize) {
        if let Some(tid) = current_tid() {
            self.tids.lock().insert(index, tid);
        }
    }

    /// Forgets worker `index` (call from `on_thread_stop`).
    pub fn forget(&self, index: usize) {
        self.tids.lock().remove(&index);
    }

    /// The recorded thread ids.
    pub fn tids(&self) -> Vec<u32> {
        self.tids.lock().values().copied().collect()
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

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "42 (a (weird) name) S 1 1 1 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        let times = parse_stat(line).unwrap();
        assert_eq!(times.cpu, Duration::from_millis(3000));
        assert_eq!(times.wait, None);
        assert!(times.sleeping);
        assert!(
            !parse_stat("7 (x) R 1 1 1 0 -1 0 0 0 0 0 1 1 0 0")
                .unwrap()
                .sleeping
        );
    }

    #[test]
    fn schedstat_gives_cpu_and_wait() {
        let times = parse_schedstat("1500000 2500000 7\n").unwrap();
        assert_eq!(times.cpu, Duration::from_micros(1500));
        assert_eq!(times.wait, Some(Duration::from_micros(2500)));
        assert_eq!(parse_schedstat("garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_calling_thread_is_found_in_proc() {
        let tid = current_tid().expect("Linux has /proc/thread-self");
        assert!(thread_times(tid).is_some());
        assert!(current_thread_cpu().is_some());
    }
}
