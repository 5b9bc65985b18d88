//! The engine's storage, as the submitter and the worker use it: connect and migrate, enqueue a
//! batch in one transaction, cancel a job that no worker has claimed, read finished outcomes.
//!
//! Everything here is apalis's own storage and queries (`apalis_sqlite`, `apalis_postgres`), plus
//! one conditional `UPDATE` for cancellation, which apalis 1.0 does not offer for a job that has
//! not started, and two counting queries for the books.

use std::str::FromStr;
use std::time::Duration;

use apalis::prelude::{Task, TaskBuilder, TaskId, TaskResult, WaitForCompletion};
#[cfg(feature = "postgres")]
use apalis_postgres::{PgPool, PostgresStorage};
use apalis_sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};

use crate::wire::{Envelope, WireFailure};
use crate::RemoteError;

/// How long an SQLite connection waits for another process's write lock before it reports an
/// error. Several worker processes and a submitter share one file; a write holds the lock for
/// milliseconds, but on an overloaded machine (load 35 on 2 cores) the holder is descheduled
/// while it holds it and SQLite's busy back-off (sleeps of up to 100 ms, first come not first
/// served) starved one worker past the earlier 30 s bound: its engine loop failed with
/// "database is locked" and the worker process ended. The bound only matters when something is
/// stuck, so it is long.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(300);

/// How long [`setup_sqlite`] retries the engine's set-up while another process holds the file's
/// write lock.
const SQLITE_SETUP_RETRY: Duration = Duration::from_secs(60);

/// Runs the engine's set-up (pragmas and migrations), retrying while SQLite reports the database
/// busy. Part of the set-up reads and then writes in one transaction; when another process
/// committed in between (a submitter enqueueing, another worker starting), SQLite returns
/// "database is locked" at once instead of waiting in its busy handler, since waiting could not
/// help that transaction (its snapshot is stale). Seen at load 20 on 2 cores: a worker process
/// started beside a submitter failed its `build` within a second. The set-up is idempotent (an
/// applied migration is recorded, a failed one rolled back), so a retry from the start is safe.
async fn setup_sqlite(pool: &SqlitePool) -> Result<(), apalis_sqlite::Error> {
    setup_sqlite_noting_busy(pool, || {}).await
}

/// [`setup_sqlite`], calling `on_busy` each time the database was busy (for tests).
async fn setup_sqlite_noting_busy(
    pool: &SqlitePool,
    mut on_busy: impl FnMut(),
) -> Result<(), apalis_sqlite::Error> {
    let deadline = std::time::Instant::now() + SQLITE_SETUP_RETRY;
    let mut pause = Duration::from_millis(5);
    loop {
        match SqliteStorage::setup(pool).await {
            Err(e) if is_sqlite_busy(&e) && std::time::Instant::now() < deadline => {
                on_busy();
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            done => return done,
        }
    }
}

/// Whether `e` is SQLite's "database is locked" (`SQLITE_BUSY` or one of its extended codes,
/// which all have 5 in their low byte).
fn is_sqlite_busy(e: &apalis_sqlite::Error) -> bool {
    let code = match e {
        apalis_sqlite::Error::Database(sqlx::Error::Database(db)) => db.code(),
        _ => None,
    };
    code.and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 5)
}

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

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

/// A connected, migrated backend.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pool: Pool,
    queue: String,
}

/// The storage a worker polls, for either backend.
pub(crate) enum WorkerStorage {
    Sqlite(SqliteStorage<Envelope>),
    #[cfg(feature = "postgres")]
    Postgres(PostgresStorage<Envelope>),
}

fn backend_error(during: &'static str) -> impl Fn(&dyn std::fmt::Display) -> RemoteError {
    move |e| RemoteError::Backend {
        during,
        message: e.to_string(),
    }
}

/// The longest `poll_interval`: it is the floor of every outcome's latency (an executor's) or
/// of a job's wait for an idle worker (a worker's); `Duration::MAX` waited forever.
pub(crate) const MAX_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// Both builders' `poll_interval`: how often the engine's tables are read.
pub(crate) fn check_poll_interval(interval: Duration) -> Result<(), RemoteError> {
    RemoteError::check(
        !interval.is_zero() && interval <= MAX_POLL_INTERVAL,
        "poll_interval",
        format_args!("must be positive and at most {MAX_POLL_INTERVAL:?}, got {interval:?}"),
    )
}

/// Starts the small runtime (one thread named `thread_name`) that an executor or a worker drives
/// the engine on, and connects to `url` on it.
///
/// The calling thread waits on a channel, not in `block_on`: the builders may be called on a
/// thread that drives an async runtime (inside `#[tokio::main]`), where a nested `block_on`,
/// or dropping a runtime, panics. For the same reason a runtime that is not kept is shut down
/// in the background.
pub(crate) fn start(
    url: &str,
    queue: &str,
    thread_name: String,
) -> Result<(tokio::runtime::Runtime, Store), RemoteError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(thread_name)
        .enable_all()
        .build()
        .map_err(|e| RemoteError::Build {
            setting: "runtime",
            message: e.to_string(),
        })?;
    let (connected, connection) = std::sync::mpsc::channel();
    let (at, queue) = (url.to_owned(), queue.to_owned());
    runtime.spawn(async move {
        let _ = connected.send(Store::connect(&at, &queue).await);
    });
    // The sender goes with the task: a runtime that dropped it unfinished answers too.
    let store = connection.recv().unwrap_or_else(|_| {
        Err(RemoteError::Unreachable {
            url: url.to_owned(),
            message: "the connection task ended without an answer".into(),
        })
    });
    match store {
        Ok(store) => Ok((runtime, store)),
        Err(refused) => {
            runtime.shutdown_background();
            Err(refused)
        }
    }
}

impl Store {
    /// Connects to `url` and runs the engine's migrations: `sqlite://path/to/file.db` (created
    /// if missing) or, with the `postgres` feature, `postgres://user@host:port/db`.
    pub(crate) async fn connect(url: &str, queue: &str) -> Result<Store, RemoteError> {
        let unreachable = |e: &dyn std::fmt::Display| RemoteError::Unreachable {
            url: url.to_owned(),
            message: e.to_string(),
        };
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::connect_postgres(url)
                .await
                .map_err(|e| unreachable(&e))?
        } else {
            // WAL with `synchronous = NORMAL` on every connection: a commit appends to the log
            // without an fsync, so the one write lock of the file is held for microseconds, not
            // for a disk flush. With the default FULL, each commit fsynced under that lock; on a
            // loaded disk an fsync took 60-300 ms, every other writer (heartbeats among them)
            // slept in SQLite's busy back-off, throughput fell twentyfold, and live workers
            // missed enough heartbeats for their claimed jobs to be re-enqueued and run twice.
            // The cost: a power loss or OS crash (not a process crash) can undo the last
            // commits. (apalis's `setup` sets `synchronous = OFF`, on one connection only.)
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| unreachable(&e))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|e| unreachable(&e))?;
            setup_sqlite(&pool).await.map_err(|e| unreachable(&e))?;
            Pool::Sqlite(pool)
        };
        Ok(Store {
            pool,
            queue: queue.to_owned(),
        })
    }

    #[cfg(feature = "postgres")]
    async fn connect_postgres(url: &str) -> Result<Pool, String> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| e.to_string())?;
        PostgresStorage::setup(&pool)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Pool::Postgres(pool))
    }

    #[cfg(not(feature = "postgres"))]
    async fn connect_postgres(_url: &str) -> Result<Pool, String> {
        Err("this build has no PostgreSQL support (enable the `postgres` feature)".into())
    }

    /// The apalis storage a worker polls.
    pub(crate) fn storage(
        &self,
        heartbeat: Duration,
        missed_heartbeats: usize,
        batch: usize,
    ) -> WorkerStorage {
        // The two engines' `Config`s are distinct types with the same setters.
        macro_rules! config {
            ($config:ty) => {
                <$config>::default()
                    .queue(&self.queue)
                    .heartbeat_interval(heartbeat)
                    .missed_heartbeats(missed_heartbeats)
                    .batch_size(batch.max(1))
            };
        }
        match &self.pool {
            Pool::Sqlite(pool) => WorkerStorage::Sqlite(
                SqliteStorage::new(pool).with_config(config!(apalis_sqlite::Config)),
            ),
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => WorkerStorage::Postgres(
                PostgresStorage::new(pool).with_config(config!(apalis_postgres::Config)),
            ),
        }
    }

    /// Enqueues every job in one transaction: all of them or none.
    pub(crate) async fn push(&self, jobs: &[Outgoing]) -> Result<(), RemoteError> {
        let backend = backend_error("enqueue");
        let mut tasks: Vec<Task<Vec<u8>>> = Vec::with_capacity(jobs.len());
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
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await.map_err(|e| backend(&e))?;
                apalis_sqlite::queries::push_tasks(&mut *tx, &self.queue, &tasks)
                    .await
                    .map_err(|e| backend(&e))?;
                tx.commit().await.map_err(|e| backend(&e))
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => {
                // One multi-row INSERT: atomic on its own.
                let mut conn = pool.acquire().await.map_err(|e| backend(&e))?;
                apalis_postgres::queries::push_tasks(&mut *conn, &self.queue, tasks)
                    .await
                    .map_err(|e| backend(&e))
            }
        }
    }

    /// Marks a job cancelled if no worker has claimed it yet. Returns whether it did.
    ///
    /// Claiming is an `UPDATE ... WHERE status = 'Pending' AND lock_by IS NULL` in the engine, and
    /// so is this: the database serialises the two, so exactly one of them wins.
    pub(crate) async fn cancel(&self, id: ulid::Ulid) -> Result<bool, RemoteError> {
        let backend = backend_error("cancel");
        let result = serde_json::to_string(&Err::<(), String>(WireFailure::Cancelled.encode()))
            .unwrap_or_default();
        let done = match &self.pool {
            Pool::Sqlite(pool) => sqlx::query(
                "UPDATE Jobs SET status = 'Killed', done_at = strftime('%s', 'now'), \
                 last_result = ?1 WHERE id = ?2 AND status = 'Pending' AND lock_by IS NULL",
            )
            .bind(result)
            .bind(id.to_string())
            .execute(pool)
            .await
            .map_err(|e| backend(&e))?
            .rows_affected(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => sqlx::query(
                "UPDATE apalis.jobs SET status = 'Killed', done_at = NOW(), \
                 last_result = $1::jsonb WHERE id = $2 AND status = 'Pending' AND lock_by IS NULL",
            )
            .bind(result)
            .bind(id.to_string())
            .execute(pool)
            .await
            .map_err(|e| backend(&e))?
            .rows_affected(),
        };
        Ok(done == 1)
    }

    /// The outcomes of those of `ids` that are final: done, killed (cancelled or refused), or
    /// failed with no attempts left. Uses the engine's own completion query.
    pub(crate) async fn finished(&self, ids: &[ulid::Ulid]) -> Result<Vec<Finished>, RemoteError> {
        let backend = backend_error("poll results");
        let ids = ids.iter().map(|id| TaskId::from_ulid(*id));
        let results: Vec<TaskResult<serde_json::Value>> = match &self.pool {
            Pool::Sqlite(pool) => {
                let mut storage: SqliteStorage<Envelope> = SqliteStorage::new(pool);
                WaitForCompletion::<serde_json::Value>::check_status(&mut storage, ids)
                    .await
                    .map_err(|e| backend(&e))?
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => {
                let mut storage: PostgresStorage<Envelope> = PostgresStorage::new(pool);
                let mut results =
                    WaitForCompletion::<serde_json::Value>::check_status(&mut storage, ids)
                        .await
                        .map_err(|e| backend(&e))?;
                // apalis-postgres 1.0's `check_status` reports every attempt count as 0 (its
                // `wait_for` reads the column); read the column for the finished ones.
                if !results.is_empty() {
                    let finished: Vec<String> =
                        results.iter().map(|r| r.task_id.to_string()).collect();
                    let rows: Vec<(String, i32)> =
                        sqlx::query_as("SELECT id, attempts FROM apalis.jobs WHERE id = ANY($1)")
                            .bind(&finished)
                            .fetch_all(pool)
                            .await
                            .map_err(|e| backend(&e))?;
                    let attempts: std::collections::HashMap<String, i32> =
                        rows.into_iter().collect();
                    for r in &mut results {
                        if let Some(n) = attempts.get(&r.task_id.to_string()) {
                            r.attempt = usize::try_from(*n).unwrap_or(0);
                        }
                    }
                }
                results
            }
        };
        Ok(results
            .into_iter()
            .filter_map(|r| {
                Some(Finished {
                    id: r
                        .task_id
                        .as_ulid()
                        .or_else(|| ulid::Ulid::from_string(r.task_id.as_string()?).ok())?,
                    attempts: r.attempt,
                    result: r.result,
                })
            })
            .collect())
    }

    /// Counts the queue's jobs by engine status (for tests and books: `Done`, `Failed`,
    /// `Killed`, `Pending`, `Queued`, `Running`).
    pub(crate) async fn status_counts(&self) -> Result<Vec<(String, u64)>, RemoteError> {
        let backend = backend_error("count jobs");
        let rows: Vec<(String, i64)> = match &self.pool {
            Pool::Sqlite(pool) => sqlx::query_as(
                "SELECT status, COUNT(*) FROM Jobs WHERE job_type = ?1 \
                 GROUP BY status ORDER BY status",
            )
            .bind(&self.queue)
            .fetch_all(pool)
            .await
            .map_err(|e| backend(&e))?,
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => sqlx::query_as(
                "SELECT status, COUNT(*) FROM apalis.jobs WHERE job_type = $1 \
                 GROUP BY status ORDER BY status",
            )
            .bind(&self.queue)
            .fetch_all(pool)
            .await
            .map_err(|e| backend(&e))?,
        };
        Ok(rows
            .into_iter()
            .map(|(s, n)| (s, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// Jobs of the queue that finished `Done` after more than one attempt: re-run after a
    /// failed attempt or after their worker died.
    pub(crate) async fn done_after_retry(&self) -> Result<u64, RemoteError> {
        let backend = backend_error("count jobs");
        let (n,): (i64,) = match &self.pool {
            Pool::Sqlite(pool) => sqlx::query_as(
                "SELECT COUNT(*) FROM Jobs WHERE job_type = ?1 AND status = 'Done' AND attempts > 1",
            )
            .bind(&self.queue)
            .fetch_one(pool)
            .await
            .map_err(|e| backend(&e))?,
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => sqlx::query_as(
                "SELECT COUNT(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Done' \
                 AND attempts > 1",
            )
            .bind(&self.queue)
            .fetch_one(pool)
            .await
            .map_err(|e| backend(&e))?,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh database file of its own and its URL.
    fn scratch_db(test: &str) -> (std::path::PathBuf, String) {
        let dir = std::env::temp_dir().join(format!(
            "pool-remote-backend-{test}-{}-{}",
            std::process::id(),
            ulid::Ulid::generate()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("jobs.db").display());
        (dir, url)
    }

    /// Runs `test` on a runtime of its own with a scratch database's URL, then removes the
    /// database's directory.
    fn on_scratch_db<F: std::future::Future<Output = ()>>(
        name: &str,
        test: impl FnOnce(String) -> F,
    ) {
        let (dir, url) = scratch_db(name);
        tokio::runtime::Runtime::new().unwrap().block_on(test(url));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A pool whose connections never wait in SQLite's busy handler: every lock conflict comes
    /// back at once as "database is locked", as a stale snapshot's write does.
    async fn impatient_pool(url: &str) -> SqlitePool {
        let options = SqliteConnectOptions::from_str(url)
            .unwrap()
            .create_if_missing(true)
            .busy_timeout(Duration::ZERO);
        SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .unwrap()
    }

    /// An impatient pool on `url`, and one of its connections holding the file exclusively
    /// (until it runs `ROLLBACK`).
    async fn impatient_pool_held(
        url: &str,
    ) -> (SqlitePool, sqlx::pool::PoolConnection<sqlx::Sqlite>) {
        let pool = impatient_pool(url).await;
        let mut holder = pool.acquire().await.unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut *holder)
            .await
            .unwrap();
        (pool, holder)
    }

    /// Invariant: `is_sqlite_busy` tells "database is locked" from every other database error.
    /// A write while another connection holds an exclusive lock fails busy; a syntax error does
    /// not.
    #[test]
    fn busy_is_told_from_other_errors() {
        on_scratch_db("busy", |url| async move {
            let (pool, mut holder) = impatient_pool_held(&url).await;
            let locked = sqlx::query("CREATE TABLE t (x)")
                .execute(&pool)
                .await
                .unwrap_err();
            assert!(is_sqlite_busy(&apalis_sqlite::Error::Database(locked)));
            sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
            let syntax = sqlx::query("NOT SQL").execute(&pool).await.unwrap_err();
            assert!(!is_sqlite_busy(&apalis_sqlite::Error::Database(syntax)));
        });
    }

    /// Invariant: the engine's set-up outlasts another process's write lock instead of failing
    /// with "database is locked". Another connection holds the file exclusively until the set-up
    /// has been refused at least once (it says so through `on_busy`), then lets go; the set-up
    /// then completes and the engine's tables exist.
    #[test]
    fn setup_retries_while_the_database_is_locked() {
        on_scratch_db("setup", |url| async move {
            let (pool, mut holder) = impatient_pool_held(&url).await;
            let (refused, mut was_refused) = tokio::sync::mpsc::unbounded_channel();
            let setup_pool = pool.clone();
            let setup = tokio::spawn(async move {
                setup_sqlite_noting_busy(&setup_pool, || {
                    // The receiver may have stopped listening after the first: nothing to tell.
                    let _ = refused.send(());
                })
                .await
            });
            tokio::time::timeout(Duration::from_secs(60), was_refused.recv())
                .await
                .expect("the set-up was refused while the lock was held")
                .expect("the set-up task is alive");
            sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
            drop(holder);
            setup.await.unwrap().unwrap();
            let tables: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'Jobs'")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            assert_eq!(tables, 1, "the engine's table exists after the set-up");
        });
    }
}
