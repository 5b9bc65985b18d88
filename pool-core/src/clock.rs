//! One process-wide epoch, so instants can live in 8-byte atomics as nanoseconds after it.

use std::time::Instant;

/// The process's epoch: the first time anyone asked.
pub(crate) fn epoch() -> Instant {
    // Configuration-like global, not part of any protocol: std's `OnceLock` is fine here.
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds from the epoch to `at` (0 for instants before it; saturates after 584 years).
pub(crate) fn nanos_since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}
