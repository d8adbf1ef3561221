//! Test harness on real parts. Each test binary starts its own PostgreSQL
//! cluster (scripts/pg-cluster.sh, the same script the local stack uses) on a
//! free port, migrates a template database once, and gives every test a fresh
//! clone of it. The cluster stops and its folder is removed when the test
//! process exits. Nothing here mocks the database.
#![allow(dead_code)]

pub mod people;
pub mod stack;

use callsync::queue::store::Store;
use deadpool_postgres::Pool;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running cluster owned by this test process.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
}

impl Cluster {
    /// Starts a new cluster in a fresh folder (for tests that restart or stop it).
    pub fn start_private(tag: &str) -> Cluster {
        let port = free_port();
        let dir = root()
            .join("target/test-clusters")
            .join(format!("{tag}-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cluster = Cluster { dir, port };
        cluster.up();
        cluster
    }

    /// Starts (or restarts) the server; bootstraps roles and pg_cron idempotently.
    pub fn up(&self) {
        let out = Command::new("bash")
            .arg(root().join("scripts/pg-cluster.sh"))
            .arg("up")
            .arg(&self.dir)
            .arg(self.port.to_string())
            .arg(std::process::id().to_string())
            .output()
            .expect("run scripts/pg-cluster.sh");
        assert!(
            out.status.success(),
            "pg-cluster.sh up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Fast shutdown (the database goes away under the worker).
    pub fn down(&self) {
        let out = Command::new("bash")
            .arg(root().join("scripts/pg-cluster.sh"))
            .arg("down")
            .arg(&self.dir)
            .output()
            .expect("run scripts/pg-cluster.sh");
        assert!(out.status.success(), "pg-cluster.sh down failed");
    }

    /// A URL for `role` (every local role's password is `postgres`).
    pub fn url(&self, role: &str, db: &str) -> String {
        format!("postgres://{role}:postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a database ready for migrations (the per-database bootstrap).
    pub fn create_bootstrapped_db(&self, name: &str) {
        psql(
            &self.url("supabase_admin", "postgres"),
            &format!("create database \"{name}\" owner postgres"),
        );
        psql_file(
            &self.url("supabase_admin", name),
            &root().join("sql/bootstrap/02_database.sql"),
        );
    }

    /// Creates a migrated database (pg_cron schedules skipped) named `name`.
    pub fn create_migrated_db(&self, name: &str) {
        self.create_bootstrapped_db(name);
        let url = self.url("postgres", name);
        run_async(async move {
            let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(conn);
            let migrations = callsync::migrate::load(&root().join("supabase/migrations"))
                .expect("load migrations");
            callsync::migrate::run(
                &mut client,
                &migrations,
                callsync::migrate::Scope::WithoutSchedules,
            )
            .await
            .expect("migrate template");
        });
    }
}

static SHARED: OnceLock<(Cluster, String)> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// This binary's shared cluster and the name of its migrated template.
pub fn shared() -> &'static (Cluster, String) {
    SHARED.get_or_init(|| {
        let cluster = Cluster::start_private("shared");
        cluster.create_migrated_db("callsync_template");
        (cluster, "callsync_template".to_string())
    })
}

/// One test's own database, cloned from the migrated template.
pub struct TestDb {
    /// Connected as `postgres` (the owner): set-up and assertions.
    pub pool: Pool,
    /// Connected as `callsync_worker`: what the worker may do, and no more.
    pub worker_pool: Pool,
    pub name: String,
    pub cluster: Cluster,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let (cluster, template) = shared();
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin = cluster.url("supabase_admin", "postgres");
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .expect("admin connect");
        tokio::spawn(conn);
        // Identifiers cannot be bound parameters; both names are made here, not input.
        client
            .batch_execute(&format!(
                "create database \"{name}\" template \"{template}\" owner postgres"
            ))
            .await
            .expect("clone the template (is a session still connected to it?)");
        TestDb::on(cluster.clone(), &name)
    }

    /// Pools on an existing database of `cluster`.
    pub fn on(cluster: Cluster, name: &str) -> TestDb {
        TestDb {
            pool: callsync::db::pool(&cluster.url("postgres", name), 8).expect("pool"),
            worker_pool: callsync::db::pool(&cluster.url("callsync_worker", name), 32)
                .expect("pool"),
            name: name.to_string(),
            cluster,
        }
    }

    pub fn url(&self, role: &str) -> String {
        self.cluster.url(role, &self.name)
    }

    /// The queue store as the worker sees it.
    pub fn store(&self) -> Store {
        Store::new(self.worker_pool.clone())
    }

    /// One value from a query run as the owner.
    pub async fn scalar<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> T {
        let client = self.pool.get().await.expect("connection");
        client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    /// Runs statements as the owner.
    pub async fn exec(&self, sql: &str) {
        let client = self.pool.get().await.expect("connection");
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// Waits until `check` returns true, polling every 20 ms, or panics with `what`
/// after `deadline`. Tests wait on conditions, never on fixed sleeps.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to 10 s, else panics with `what`) until a session of
/// `pg_stat_activity` matching `sessions` (an SQL condition) waits for a lock:
/// how a test knows the other side of a race has reached its lock.
pub async fn wait_for_lock_wait(db: &TestDb, what: &str, sessions: &str) {
    let sql = format!(
        "select count(*) from pg_stat_activity where ({sessions}) and wait_event_type = 'Lock'"
    );
    wait_until(what, Duration::from_secs(10), || async {
        db.scalar::<i64>(&sql).await > 0
    })
    .await;
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Runs `sql` with psql as `url`'s role; returns what it printed, unaligned and
/// tuples only (one row per line, columns split by `|`).
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn psql_file(url: &str, file: &Path) {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-f"])
        .arg(file)
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql -f {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a future to completion on its own runtime, from sync or async code alike.
pub fn run_async<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    })
    .join()
    .expect("set-up thread panicked");
}

// ---------------------------------------------------------------------------
// Workers in tests
// ---------------------------------------------------------------------------
use callsync::jobs::{Handler, Handlers, JobError};
use callsync::queue::retry::Backoff;
use callsync::queue::ClaimedJob;
use callsync::worker::{Worker, WorkerOptions};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Worker options for tests: short lease, fast retries, a poll interval long
/// enough that a test relying on NOTIFY would notice it did not come.
pub fn test_options(id: &str) -> WorkerOptions {
    WorkerOptions {
        worker_id: id.to_string(),
        concurrency: 16,
        poll_interval: Duration::from_millis(200),
        lease: Duration::from_secs(30), // long: a loaded CI machine must not outrun it (tests of expiry set their own)
        drain_deadline: Duration::from_secs(5),
        backoff: Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(10),
            jitter: 0.0,
        },
        claim_loops: 2,
    }
}

/// A running worker (with its LISTEN connection) and how to stop it.
pub struct RunningWorker {
    pub worker: Worker,
    pub listener: callsync::listener::ListenerState,
    pub stop: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl RunningWorker {
    pub fn spawn(db: &TestDb, handlers: Handlers, opts: WorkerOptions) -> RunningWorker {
        let worker = Worker::new(db.store(), handlers, opts);
        let stop = CancellationToken::new();
        let listener = callsync::listener::ListenerState::default();
        let url = callsync::secret::Secret::new(db.url("callsync_worker"));
        let l = tokio::spawn(callsync::listener::run(
            url,
            worker.wake_handle(),
            listener.clone(),
            stop.clone(),
        ));
        let w = worker.clone();
        let token = stop.clone();
        let handle = tokio::spawn(async move {
            w.run(token).await;
            let _ = l.await;
        });
        RunningWorker {
            worker,
            listener,
            stop,
            handle,
        }
    }

    /// Cancels and waits for the drain to finish.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.handle.await;
    }
}

/// A handler that records every run: how often each job ran, and in what order.
#[derive(Clone, Default)]
pub struct Recorder {
    pub runs: Arc<Mutex<HashMap<i64, u32>>>,
    pub order: Arc<Mutex<Vec<i64>>>,
    /// Fail every attempt with this error (retryable when the bool is true).
    pub fail_with: Option<(bool, String)>,
    /// Hold each job this long (work in flight).
    pub hold: Option<Duration>,
}

impl Recorder {
    pub fn count(&self, id: i64) -> u32 {
        self.runs.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
    pub fn total(&self) -> usize {
        self.runs
            .lock()
            .unwrap()
            .values()
            .map(|&n| n as usize)
            .sum()
    }
}

impl Handler for Recorder {
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            *self.runs.lock().unwrap().entry(job.id.0).or_default() += 1;
            self.order.lock().unwrap().push(job.id.0);
            if let Some(hold) = self.hold {
                tokio::time::sleep(hold).await;
            }
            match &self.fail_with {
                Some((true, e)) => Err(JobError::Retryable(e.clone())),
                Some((false, e)) => Err(JobError::Permanent(e.clone())),
                None => Ok(()),
            }
        })
    }
}

/// Counts jobs by state.
pub async fn count_state(db: &TestDb, state: &str) -> i64 {
    try_count_state(db, state).await.expect("count jobs")
}

/// Counts jobs by state; `None` while the database is unreachable (restart tests).
pub async fn try_count_state(db: &TestDb, state: &str) -> Option<i64> {
    let client = db.pool.get().await.ok()?;
    client
        .query_one(
            "select count(*) from callsync.job where state = $1::text::callsync.job_state",
            &[&state],
        )
        .await
        .ok()
        .map(|r| r.get(0))
}

/// Enqueues `n` jobs of `kind` in one statement (as the owner).
pub async fn insert_jobs(db: &TestDb, kind: &str, n: i64, priority: i16) {
    let client = db.pool.get().await.expect("connection");
    client
        .execute(
            "insert into callsync.job (kind, args, priority, max_attempts) \
             select $1, jsonb_build_object('n', g), $3, 3 from generate_series(1, $2::bigint) g",
            &[&kind, &n, &priority],
        )
        .await
        .expect("insert jobs");
}
