//! The engine's storage, as the submitter and the worker use it: connect and migrate, enqueue a
//! batch in one transaction, cancel a job that no worker has claimed, read finished outcomes.
//!
//! Everything here is apalis's own storage and queries (`apalis_sqlite`), plus one conditional
//! `UPDATE` for cancellation, which apalis 1.0 does not offer for a job that has not started.

use std::str::FromStr;
use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskId, WaitForCompletion};
use apalis_sqlite::{Config, SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};

use crate::wire::{Envelope, WireFailure};
use crate::RemoteError;

/// How long an SQLite connection waits for another process's write lock before it reports an
/// error: several worker processes and a submitter share one file, and a write holds the lock
/// for milliseconds, so a generous bound only matters when something is stuck.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// One job to enqueue.
pub(crate) struct Outgoing {
    pub(crate) id: ulid::Ulid,
    pub(crate) envelope: Envelope,
    pub(crate) priority: usize,
    pub(crate) max_attempts: usize,
}

/// A finished job as the engine records it.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) id: ulid::Ulid,
    pub(crate) attempts: usize,
    /// The value, or the error text the worker left.
    pub(crate) result: Result<serde_json::Value, String>,
}

/// A connected, migrated backend.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pool: SqlitePool,
    queue: String,
}

impl Store {
    /// Connects to `url` (`sqlite://path/to/file.db`, created if missing) and runs the engine's
    /// migrations.
    pub(crate) async fn connect(url: &str, queue: &str) -> Result<Store, RemoteError> {
        let unreachable = |e: &dyn std::fmt::Display| RemoteError::Unreachable {
            url: url.to_owned(),
            message: e.to_string(),
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| unreachable(&e))?
            .create_if_missing(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| unreachable(&e))?;
        SqliteStorage::setup(&pool)
            .await
            .map_err(|e| unreachable(&e))?;
        Ok(Store {
            pool,
            queue: queue.to_owned(),
        })
    }

    /// The apalis storage a worker polls.
    pub(crate) fn storage(
        &self,
        heartbeat: Duration,
        missed_heartbeats: usize,
        batch: usize,
    ) -> SqliteStorage<Envelope> {
        let config = Config::default()
            .queue(&self.queue)
            .heartbeat_interval(heartbeat)
            .missed_heartbeats(missed_heartbeats)
            .batch_size(batch.max(1));
        SqliteStorage::new(&self.pool).with_config(config)
    }

    /// Enqueues every job in one transaction: all of them or none.
    pub(crate) async fn push(&self, jobs: &[Outgoing]) -> Result<(), RemoteError> {
        let backend = |e: &dyn std::fmt::Display| RemoteError::Backend {
            during: "enqueue",
            message: e.to_string(),
        };
        let mut tasks = Vec::with_capacity(jobs.len());
        for job in jobs {
            let bytes = serde_json::to_vec(&job.envelope).map_err(|e| RemoteError::BadArgs {
                task: job.envelope.task.clone(),
                message: e.to_string(),
            })?;
            tasks.push(
                TaskBuilder::new(bytes)
                    .task_id(TaskId::from_ulid(job.id))
                    .priority(job.priority)
                    .max_attempts(job.max_attempts)
                    .build(),
            );
        }
        let mut tx = self.pool.begin().await.map_err(|e| backend(&e))?;
        apalis_sqlite::queries::push_tasks(&mut *tx, &self.queue, &tasks)
            .await
            .map_err(|e| backend(&e))?;
        tx.commit().await.map_err(|e| backend(&e))
    }

    /// Marks a job cancelled if no worker has claimed it yet. Returns whether it did.
    ///
    /// Claiming is an `UPDATE ... WHERE status = 'Pending' AND lock_by IS NULL` in the engine, and
    /// so is this: the database serialises the two, so exactly one of them wins.
    pub(crate) async fn cancel(&self, id: ulid::Ulid) -> Result<bool, RemoteError> {
        let result = serde_json::to_string(&Err::<(), String>(WireFailure::Cancelled.encode()))
            .unwrap_or_default();
        let done = sqlx::query(
            "UPDATE Jobs SET status = 'Killed', done_at = strftime('%s', 'now'), last_result = ?1 \
             WHERE id = ?2 AND status = 'Pending' AND lock_by IS NULL",
        )
        .bind(result)
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| RemoteError::Backend {
            during: "cancel",
            message: e.to_string(),
        })?;
        Ok(done.rows_affected() == 1)
    }

    /// The outcomes of those of `ids` that are final: done, killed (cancelled or refused), or
    /// failed with no attempts left. Uses the engine's own completion query.
    pub(crate) async fn finished(&self, ids: &[ulid::Ulid]) -> Result<Vec<Finished>, RemoteError> {
        let mut storage: SqliteStorage<Envelope> = SqliteStorage::new(&self.pool);
        let results = WaitForCompletion::<serde_json::Value>::check_status(
            &mut storage,
            ids.iter().map(|id| TaskId::from_ulid(*id)),
        )
        .await
        .map_err(|e| RemoteError::Backend {
            during: "poll results",
            message: e.to_string(),
        })?;
        Ok(results
            .into_iter()
            .filter_map(|r| {
                Some(Finished {
                    id: r.task_id.as_ulid()?,
                    attempts: r.attempt,
                    result: r.result,
                })
            })
            .collect())
    }

    /// Counts the queue's jobs by engine status (for tests and books: `Done`, `Failed`,
    /// `Killed`, `Pending`, `Queued`, `Running`).
    pub(crate) async fn status_counts(&self) -> Result<Vec<(String, u64)>, RemoteError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM Jobs WHERE job_type = ?1 GROUP BY status ORDER BY status",
        )
        .bind(&self.queue)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| RemoteError::Backend {
            during: "count jobs",
            message: e.to_string(),
        })?;
        Ok(rows
            .into_iter()
            .map(|(s, n)| (s, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// Jobs of the queue that finished `Done` after more than one attempt: re-run after a
    /// failed attempt or after their worker died.
    pub(crate) async fn done_after_retry(&self) -> Result<u64, RemoteError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM Jobs WHERE job_type = ?1 AND status = 'Done' AND attempts > 1",
        )
        .bind(&self.queue)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| RemoteError::Backend {
            during: "count jobs",
            message: e.to_string(),
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
