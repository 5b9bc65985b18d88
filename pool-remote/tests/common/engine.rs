//! Reads the engine's job table directly, as an operator would: which worker holds which job.
//! The crate's API reports outcomes, not who ran a job; the at-least-once test needs both.

use std::collections::HashMap;

/// One job as the engine's table has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// `Pending`, `Queued`, `Running`, `Done`, `Failed` or `Killed`.
    pub status: String,
    /// The worker that claimed it last (for a finished job: the one whose outcome was recorded;
    /// the engine only accepts an acknowledgement from the worker named here).
    pub lock_by: Option<String>,
    /// Attempts so far; a re-enqueue after a missed heartbeat adds one.
    pub attempts: i64,
}

impl JobRow {
    /// Claimed and not finished: the worker in `lock_by` holds it.
    pub fn is_claimed(&self) -> bool {
        self.status == "Queued" || self.status == "Running"
    }
}

enum Pool {
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// A read-only view of one backend's job table.
pub struct EngineTable {
    runtime: tokio::runtime::Runtime,
    pool: Pool,
}

impl EngineTable {
    pub fn open(url: &str) -> EngineTable {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let pool = runtime.block_on(async {
            if url.starts_with("postgres") {
                #[cfg(feature = "postgres")]
                return Pool::Postgres(sqlx::PgPool::connect(url).await.unwrap());
                #[cfg(not(feature = "postgres"))]
                panic!("a postgres URL without the postgres feature");
            }
            Pool::Sqlite(sqlx::SqlitePool::connect(url).await.unwrap())
        });
        EngineTable { runtime, pool }
    }

    /// Every job of `queue`, by id.
    pub fn jobs(&self, queue: &str) -> HashMap<String, JobRow> {
        // The same columns on both engines; only the table's name differs.
        const SQLITE: &str = "SELECT id, status, lock_by, CAST(attempts AS BIGINT) FROM Jobs \
                              WHERE job_type = $1";
        #[cfg(feature = "postgres")]
        const POSTGRES: &str = "SELECT id, status, lock_by, CAST(attempts AS BIGINT) \
                                FROM apalis.jobs WHERE job_type = $1";
        type Raw = (String, String, Option<String>, i64);
        let rows: Vec<Raw> = self.runtime.block_on(async {
            match &self.pool {
                Pool::Sqlite(pool) => sqlx::query_as(SQLITE)
                    .bind(queue)
                    .fetch_all(pool)
                    .await
                    .unwrap(),
                #[cfg(feature = "postgres")]
                Pool::Postgres(pool) => sqlx::query_as(POSTGRES)
                    .bind(queue)
                    .fetch_all(pool)
                    .await
                    .unwrap(),
            }
        });
        rows.into_iter()
            .map(|(id, status, lock_by, attempts)| {
                let row = JobRow {
                    status,
                    lock_by,
                    attempts,
                };
                (id, row)
            })
            .collect()
    }

    /// The ids of `queue`'s jobs that `worker` has claimed and not finished.
    pub fn claimed_by(&self, queue: &str, worker: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .jobs(queue)
            .into_iter()
            .filter(|(_, row)| row.is_claimed() && row.lock_by.as_deref() == Some(worker))
            .map(|(id, _)| id)
            .collect();
        ids.sort();
        ids
    }
}
