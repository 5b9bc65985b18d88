//! Reading this process's CPU time and resident memory from `/proc` (Linux), without libc.
//!
//! CPU time prefers `schedstat` (nanoseconds of run time as the scheduler counts it) over
//! `stat`'s utime + stime, which only has clock-tick resolution (10 ms at 100 Hz: far too coarse
//! for an idle pool whose target is under 1 ms per 10 s).

use std::fs;

/// Assumed clock-tick rate of `stat`'s utime/stime (USER_HZ is 100 on every mainstream Linux).
const TICKS_PER_SECOND: u64 = 100;
/// Assumed page size for `statm` (4 KiB on x86_64 and most aarch64 Linux).
const PAGE_SIZE: u64 = 4096;

/// The resident set size of this process in bytes, `None` where `/proc` is unavailable.
///
/// # Examples
///
/// ```
/// if let Some(rss) = benches::procfs::rss_bytes() {
///     assert!(rss > 0);
/// }
/// ```
pub fn rss_bytes() -> Option<u64> {
    let statm = fs::read_to_string("/proc/self/statm").ok()?;
    let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident * PAGE_SIZE)
}

/// CPU time, in nanoseconds, used by this process's threads whose name starts with `prefix`
/// (thread names are cut to 15 bytes by the kernel), and how many such threads there are.
/// `None` where `/proc` is unavailable.
///
/// # Examples
///
/// ```
/// let t = std::thread::Builder::new().name("procfs-doc".into()).spawn(|| {
///     let (ns, n) = benches::procfs::threads_cpu_ns("procfs-doc").unwrap_or((0, 1));
///     assert_eq!(n, 1);
///     ns
/// }).unwrap();
/// t.join().unwrap();
/// ```
pub fn threads_cpu_ns(prefix: &str) -> Option<(u64, usize)> {
    let mut total = 0;
    let mut threads = 0;
    for dir in threads_named(prefix)? {
        if let Some(ns) = task_cpu_ns(&dir) {
            total += ns;
            threads += 1;
        }
    }
    Some((total, threads))
}

/// How many of this process's threads have a name starting with `prefix` (cut to the 15 bytes
/// the kernel keeps), `None` where `/proc` is unavailable. A thread that a pool's shutdown
/// released but that has not yet exited still counts.
///
/// # Examples
///
/// ```
/// let t = std::thread::Builder::new().name("procfs-count".into()).spawn(|| {
///     benches::procfs::thread_count("procfs-count")
/// }).unwrap();
/// let during = t.join().unwrap();
/// assert!(during.is_none() || during == Some(1));
/// // After the join it may still read 1 for a moment: the thread is not yet gone from `/proc`.
/// ```
pub fn thread_count(prefix: &str) -> Option<usize> {
    Some(threads_named(prefix)?.count())
}

/// The `/proc/self/task` directories of the threads whose name starts with `prefix`.
fn threads_named(prefix: &str) -> Option<impl Iterator<Item = std::path::PathBuf> + '_> {
    const COMM_BYTES: usize = 15;
    let prefix = prefix.get(..COMM_BYTES).unwrap_or(prefix);
    let tasks = fs::read_dir("/proc/self/task").ok()?;
    Some(tasks.filter_map(move |entry| {
        let dir = entry.ok()?.path();
        // No `comm`: the thread exited meanwhile.
        let comm = fs::read_to_string(dir.join("comm")).ok()?;
        comm.trim_end().starts_with(prefix).then_some(dir)
    }))
}

/// How many OS threads the process has now, whoever started them (`Threads:` in
/// `/proc/self/status`: one read, whatever their number, where [`thread_count`] reads every
/// thread's name). Not pool-core's `ThreadPool::process_threads`, the shares its pools hold.
///
/// # Examples
///
/// ```
/// // Read from a second thread: the process has at least that one and the main thread.
/// let during = std::thread::spawn(benches::procfs::os_threads).join().unwrap();
/// assert!(during.is_none() || during >= Some(2));
/// ```
pub fn os_threads() -> Option<usize> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// CPU time of the whole process in nanoseconds (all threads, living or exited).
///
/// # Examples
///
/// ```
/// // Clock-tick resolution: a fresh process may still show 0.
/// let ns = benches::procfs::process_cpu_ns();
/// assert!(ns.is_some() || !cfg!(target_os = "linux"));
/// ```
pub fn process_cpu_ns() -> Option<u64> {
    // `/proc/self/schedstat` is the main thread's alone; `/proc/self/stat` sums every thread.
    stat_cpu_ns(std::path::Path::new("/proc/self"))
}

fn task_cpu_ns(dir: &std::path::Path) -> Option<u64> {
    if let Ok(schedstat) = fs::read_to_string(dir.join("schedstat")) {
        if let Some(ns) = schedstat
            .split_whitespace()
            .next()
            .and_then(|f| f.parse().ok())
        {
            return Some(ns);
        }
    }
    stat_cpu_ns(dir)
}

fn stat_cpu_ns(dir: &std::path::Path) -> Option<u64> {
    let stat = fs::read_to_string(dir.join("stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields count after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After ')': state is field 3 of the full line; utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 1_000_000_000 / TICKS_PER_SECOND)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    /// glibc: releases free memory at the top of every arena and free whole pages inside them.
    fn malloc_trim(pad: usize) -> i32;
}

/// Gives the allocator's free memory back to the system (glibc `malloc_trim(0)`; a no-op
/// elsewhere), so that RSS growth measured next reflects new memory, not freed memory reused.
///
/// # Examples
///
/// ```
/// drop(vec![0u8; 1 << 20]);
/// benches::procfs::trim_heap();
/// ```
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes a plain integer, touches only glibc's own allocator state
    // under its own locks, and is safe to call at any time from any thread.
    unsafe {
        malloc_trim(0);
    }
}
