//! The readings that are not the pool's: the process's CPU clock, the host's CPU use and memory
//! (`sysinfo`, or the `/proc` files kept open on Linux).

use std::time::{Duration, Instant};

use super::PoolSignals;
#[cfg(feature = "sysinfo")]
use crate::snapshot::Memory;

/// Memory and cgroup limits change slowly: refresh every this many ticks (2 s at the default
/// interval). On Linux the files stay open (`HostMemory`: one `pread` each, where sysinfo's
/// refresh opened seven files and cost several ordinary ticks).
#[cfg(feature = "sysinfo")]
const MEMORY_EVERY: u64 = 20;

/// Host CPU use is a guard only, and reading it (`/proc/stat`: about 30 µs re-read in place on
/// Linux, 65-220 µs through sysinfo) costs as much as the rest of a tick: refresh it no more
/// often than this.
#[cfg(feature = "sysinfo")]
pub(super) const HOST_CPU_EVERY: Duration = Duration::from_secs(1);

impl PoolSignals {
    /// The process's CPU since its last reading, in cores: fresh where the workers' CPU (a few
    /// clocks in turn, each since its own last reading) spans up to seconds in a large pool. A
    /// reading after still ticks (which skip it) covers them too: the figure is then an average,
    /// lower than the last tick's, which at worst leaves a rise unseen (as without the figure).
    pub(super) fn process_cpu(&mut self, now: Instant) -> Option<f64> {
        let clock = crate::proc::process_cpu();
        let cpu = self.process_cpu_to(clock, now);
        self.process_clock = clock.map(|clock| (clock, now));
        cpu
    }

    /// The process's CPU from its last reading to `clock` read at `now`, in cores.
    pub(super) fn process_cpu_to(&self, clock: Option<Duration>, now: Instant) -> Option<f64> {
        let ((before, at), clock) = (self.process_clock?, clock?);
        let secs = now.saturating_duration_since(at).as_secs_f64();
        (secs > 0.0).then(|| clock.saturating_sub(before).as_secs_f64() / secs)
    }

    /// Without the `sysinfo` feature, memory and host CPU stay unknown.
    #[cfg(not(feature = "sysinfo"))]
    pub(super) fn refresh_system(&mut self, _now: std::time::Instant) {}

    #[cfg(feature = "sysinfo")]
    pub(super) fn refresh_system(&mut self, now: Instant) {
        self.ticks += 1;
        let Some(system) = self.system.as_mut() else {
            return;
        };
        if self.ticks >= self.next_memory_tick {
            self.next_memory_tick = self.ticks + MEMORY_EVERY;
            if let Some(memory) = self.host_memory.as_ref() {
                if let Some((available, limit)) = memory.read() {
                    self.memory = (limit > 0).then_some(Memory { available, limit });
                }
            } else {
                system.refresh_memory();
                let mut available = system.available_memory();
                let mut limit = system.total_memory();
                if let Some(cgroup) = system.cgroup_limits() {
                    if cgroup.total_memory > 0 {
                        limit = limit.min(cgroup.total_memory);
                        available = available.min(cgroup.free_memory);
                    }
                }
                self.memory = (limit > 0).then_some(Memory { available, limit });
            }
        }
        // Host CPU use is the difference between two refreshes at least HOST_CPU_EVERY (and
        // sysinfo's MINIMUM_CPU_UPDATE_INTERVAL) apart; in between, the last value stands.
        // The first value needs two refreshes: the second comes as soon as sysinfo allows.
        let every = if self.cpu_refreshes < 2 {
            sysinfo::MINIMUM_CPU_UPDATE_INTERVAL
        } else {
            HOST_CPU_EVERY.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL)
        };
        let due =
            !matches!(self.last_cpu_refresh, Some(at) if now.saturating_duration_since(at) < every);
        if due {
            self.last_cpu_refresh = Some(now);
            self.cpu_refreshes = self.cpu_refreshes.saturating_add(1);
            if let Some(host) = self.host_stat.as_mut() {
                if let Some(share) = host.busy_share() {
                    self.host_cpu = Some(share);
                }
            } else {
                system.refresh_cpu_usage();
                if self.cpu_refreshes >= 2 {
                    self.host_cpu =
                        Some(f64::from(system.global_cpu_usage() / 100.0).clamp(0.0, 1.0));
                }
            }
        }
    }
}
