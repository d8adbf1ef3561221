//! The worker as a process lives through real trouble: NOTIFY wakes it at once,
//! a Postgres restart does not stop it, `kill -9` loses no job, and SIGTERM
//! drains within the deadline.
#![allow(clippy::unwrap_used)] // tests and benchmarks fail loudly by design

mod common;

use callsync::jobs::Handlers;
use callsync::queue::store::NewJob;
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn a_notify_wakes_an_idle_worker_without_waiting_for_the_poll() {
    let db = TestDb::new().await;
    let recorder = Recorder::default();
    let mut opts = test_options("w");
    opts.poll_interval = Duration::from_secs(3600); // only NOTIFY can wake it in time
    let w = RunningWorker::spawn(
        &db,
        Handlers::new().register("ping", recorder.clone()),
        opts,
    );
    wait_until("the listener is up", Duration::from_secs(10), || async {
        w.listener.is_alive()
    })
    .await;
    // Let the worker settle into waiting (its first pass found nothing).
    wait_until("the loop has ticked", Duration::from_secs(10), || async {
        w.worker.last_tick_ms() > 0
    })
    .await;

    db.store()
        .enqueue(&NewJob::new("ping", serde_json::json!({})))
        .await
        .unwrap();
    wait_until(
        "the job ran (an hour before the next poll)",
        Duration::from_secs(10),
        || async { count_state(&db, "completed").await == 1 },
    )
    .await;
    w.shutdown().await;
}

#[tokio::test]
async fn the_worker_survives_a_postgres_restart_and_finishes_its_jobs() {
    let cluster = Cluster::start_private("restart");
    cluster.create_migrated_db("restart_db");
    let db = TestDb::on(cluster.clone(), "restart_db");
    insert_jobs(&db, "work", 300, 100).await;
    let recorder = Recorder {
        hold: Some(Duration::from_millis(20)),
        ..Recorder::default()
    };
    let mut opts = test_options("w");
    opts.concurrency = 4;
    let w = RunningWorker::spawn(
        &db,
        Handlers::new().register("work", recorder.clone()),
        opts,
    );
    wait_until("some jobs ran", Duration::from_secs(30), || async {
        recorder.total() >= 30
    })
    .await;

    cluster.down();
    assert!(recorder.total() < 300, "the restart happens mid-run");
    cluster.up();

    wait_until(
        "every job completed after the restart",
        Duration::from_secs(90),
        || async { try_count_state(&db, "completed").await == Some(300) },
    )
    .await;
    wait_until(
        "the LISTEN connection is back",
        Duration::from_secs(30),
        || async { w.listener.is_alive() },
    )
    .await;
    w.shutdown().await;
    assert_eq!(recorder.runs.lock().unwrap().len(), 300, "every job ran");
}

fn spawn_worker_process(db: &TestDb, id: &str, extra: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callsync"));
    cmd.arg("worker")
        .env("DATABASE_URL", db.url("callsync_worker"))
        .env("WORKER_ID", id)
        .env("WORKER_CONCURRENCY", "16")
        .env("WORKER_LEASE_SECS", "2")
        .env("WORKER_POLL_INTERVAL_MS", "200")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start the worker binary")
}

async fn insert_sleepy_jobs(db: &TestDb, n: i64, sleep_ms: i64) {
    let c = db.pool.get().await.unwrap();
    c.execute(
        "insert into callsync.job (kind, args, max_attempts) \
         select 'noop', jsonb_build_object('sleep_ms', $2::bigint, 'n', g), 3 from generate_series(1, $1::bigint) g",
        &[&n, &sleep_ms],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn kill_9_of_the_worker_mid_run_loses_no_job() {
    let db = TestDb::new().await;
    insert_sleepy_jobs(&db, 600, 25).await;
    let mut first = spawn_worker_process(&db, "doomed", &[]);
    wait_until(
        "the first worker is mid-run",
        Duration::from_secs(30),
        || async {
            count_state(&db, "completed").await >= 100 && count_state(&db, "running").await > 0
        },
    )
    .await;
    first.kill().expect("kill -9"); // SIGKILL: no drain, no goodbye
    first.wait().expect("reap");
    let orphaned = count_state(&db, "running").await;
    assert!(orphaned > 0, "jobs were in flight when the worker died");

    let mut second = spawn_worker_process(&db, "survivor", &[]);
    wait_until("every job completed", Duration::from_secs(90), || async {
        count_state(&db, "completed").await == 600
    })
    .await;
    second.kill().expect("stop");
    second.wait().expect("reap");
    let rescued: i64 = db
        .scalar("select count(*) from callsync.job where attempt = 2")
        .await;
    assert!(
        rescued >= orphaned,
        "the orphaned jobs ran a second time ({rescued} of {orphaned})"
    );
}

#[tokio::test]
async fn sigterm_drains_running_jobs_before_the_worker_exits() {
    let db = TestDb::new().await;
    insert_sleepy_jobs(&db, 8, 1500).await;
    let mut worker = spawn_worker_process(&db, "draining", &[("WORKER_DRAIN_SECS", "10")]);
    wait_until("all jobs are running", Duration::from_secs(30), || async {
        count_state(&db, "running").await == 8
    })
    .await;
    let status = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let exit = worker.wait().expect("worker exits");
    assert!(exit.success(), "a clean exit after SIGTERM: {exit:?}");
    assert_eq!(
        count_state(&db, "completed").await,
        8,
        "jobs in flight finished within the drain deadline"
    );
    assert_eq!(count_state(&db, "running").await, 0);
}

#[tokio::test]
async fn the_worker_still_stops_on_a_signal_when_its_log_reader_has_gone() {
    // `scripts/dev.sh | tee log` and Ctrl-C: tee dies first, every later log
    // write fails. That must not keep the worker from shutting down.
    let db = TestDb::new().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callsync"));
    cmd.arg("worker")
        .env("DATABASE_URL", db.url("callsync_worker"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut worker = cmd.spawn().unwrap();
    let mut stderr = worker.stderr.take().unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read(&mut stderr, &mut first).unwrap(); // it has started logging
    drop(stderr); // the reader goes away
    let status = Command::new("kill")
        .args(["-INT", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = worker.try_wait().unwrap() {
            assert!(exit.success(), "clean exit: {exit:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker ignored SIGINT after its log pipe broke"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn shutdown_does_not_wait_forever_for_a_claim_stuck_in_the_database() {
    let db = TestDb::new().await;
    let recorder = Recorder::default();
    let mut opts = test_options("stuck");
    opts.poll_interval = Duration::from_millis(50);
    let w = RunningWorker::spawn(
        &db,
        Handlers::new().register("ping", recorder.clone()),
        opts,
    );
    wait_until("the loop has ticked", Duration::from_secs(10), || async {
        w.worker.last_tick_ms() > 0
    })
    .await;

    // A migration (or anything) holding the queue table: every claim waits on it.
    let (blocker, conn) = tokio_postgres::connect(&db.url("postgres"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    blocker
        .batch_execute("begin; lock table callsync.job in access exclusive mode")
        .await
        .unwrap();
    wait_for_lock_wait(
        &db,
        "a claim of the worker waits on the lock",
        "usename = 'callsync_worker'",
    )
    .await;

    let stopped = tokio::time::timeout(Duration::from_secs(20), w.shutdown()).await;
    blocker.batch_execute("rollback").await.unwrap();
    assert!(
        stopped.is_ok(),
        "the worker must stop even though its claim never came back"
    );
}
