//! The reliability stress harness of the worker-pools workspace (not published).
//!
//! The harness is an integration test, `tests/stress/`: seeded random operations from several
//! threads on the pool alone and on every crate at once, a hostile mode in which every piece of
//! user code may panic, a watchdog that dumps state instead of hanging, and a soak mode with a
//! flat-RSS check. Run it with `cargo test -p stress --test stress`; `tests/stress/main.rs`
//! lists the environment variables (`STRESS_SEED`, `STRESS_HOSTILE_SEEDS`, `STRESS_SOAK_SECS`,
//! `STRESS_HOSTILE`). Its own crate (as tokio's `stress-test`) so that the examples crate holds
//! only programs a user would copy.

#![deny(missing_docs)]
