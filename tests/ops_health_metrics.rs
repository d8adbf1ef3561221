//! The worker binary's internal port (HEALTH_ADDR): /metrics moves while jobs
//! run and shows queue depth and webhook rejections from the database;
//! /healthz turns 503 with a reason when Postgres stops and 200 again after it
//! comes back.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A worker process that a failing assertion does not leave behind.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_worker(url: &str, health_port: u16) -> Worker {
    Worker(
        Command::new(env!("CARGO_BIN_EXE_callsync"))
            .arg("worker")
            .env("DATABASE_URL", url)
            .env("WORKER_ID", "metrics-test")
            .env("WORKER_POLL_INTERVAL_MS", "200")
            .env("HEALTH_ADDR", format!("127.0.0.1:{health_port}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the worker binary"),
    )
}

/// (status, body) of a GET, or None while nothing answers.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// The value of one sample line (`name{labels}`), 0 when absent.
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0)
}

fn stop(mut worker: Worker) {
    let _ = Command::new("kill")
        .args(["-TERM", &worker.0.id().to_string()])
        .status();
    let _ = worker.0.wait();
}

#[tokio::test]
async fn metrics_move_while_the_worker_processes_jobs() {
    let db = TestDb::new().await;
    // What the database side of /metrics reports: a paused kind with two due
    // jobs, a job due in an hour, two refused webhook requests.
    db.exec(
        "insert into callsync.job_kind (kind, paused) values ('held', true);
         insert into callsync.job (kind, max_attempts, run_at) values
             ('held', 3, now() - interval '90 seconds'), ('held', 3, now()),
             ('later', 3, now() + interval '1 hour');
         insert into callsync.webhook_rejection (source, reason, status_code) values
             ('callyzer', 'bad_secret', 401), ('callyzer', 'bad_secret', 401), ('elevenlabs', 'stale_timestamp', 401);",
    )
    .await;
    let port = free_port();
    let worker = spawn_worker(&db.url("callsync_worker"), port);
    wait_until("/healthz answers 200", Duration::from_secs(30), || async {
        get(port, "/healthz").await.is_some_and(|(s, _)| s == 200)
    })
    .await;

    let (status, before) = get(port, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let completed = "callsync_jobs_total{kind=\"noop\",outcome=\"completed\"}";
    assert_eq!(value(&before, completed), 0.0);
    assert_eq!(
        value(&before, "callsync_queue_available_jobs{kind=\"held\"}"),
        2.0
    );
    assert!(
        value(
            &before,
            "callsync_queue_oldest_available_age_seconds{kind=\"held\"}"
        ) >= 90.0
    );
    assert_eq!(
        value(&before, "callsync_job_kind_paused{kind=\"held\"}"),
        1.0
    );
    assert_eq!(
        value(&before, "callsync_queue_scheduled_jobs{kind=\"later\"}"),
        1.0
    );
    assert_eq!(
        value(
            &before,
            "callsync_webhook_rejections_total{source=\"callyzer\",reason=\"bad_secret\"}"
        ),
        2.0
    );
    assert_eq!(value(&before, "callsync_database_up"), 1.0);
    assert_eq!(value(&before, "callsync_listener_up"), 1.0);

    // Work arrives: 40 jobs that succeed, 3 of a kind no handler knows (discarded).
    db.exec(
        "insert into callsync.job (kind, args, max_attempts)
         select 'noop', jsonb_build_object('sleep_ms', 20), 3 from generate_series(1, 40);
         insert into callsync.job (kind, max_attempts) select 'mystery', 3 from generate_series(1, 3);",
    )
    .await;
    let during = std::sync::Mutex::new(None::<f64>);
    wait_until(
        "the counters reach 40 completed and 3 discarded",
        Duration::from_secs(60),
        || async {
            let (_, m) = get(port, "/metrics").await.unwrap();
            let mut seen = during.lock().unwrap();
            if value(&m, completed) > 0.0 && value(&m, completed) < 40.0 && seen.is_none() {
                *seen = Some(value(&m, completed)); // scraped mid-run
            }
            value(&m, completed) == 40.0
                && value(
                    &m,
                    "callsync_jobs_total{kind=\"mystery\",outcome=\"discarded\"}",
                ) == 3.0
        },
    )
    .await;
    let (_, after) = get(port, "/metrics").await.unwrap();
    assert_eq!(
        value(
            &after,
            "callsync_jobs_total{kind=\"mystery\",outcome=\"discarded\"}"
        ),
        3.0
    );
    assert_eq!(
        value(&after, "callsync_job_duration_seconds_count{kind=\"noop\"}"),
        40.0
    );
    assert_eq!(
        value(
            &after,
            "callsync_job_duration_seconds_bucket{kind=\"noop\",le=\"0.01\"}"
        ),
        0.0,
        "each slept 20 ms"
    );
    assert_eq!(
        value(
            &after,
            "callsync_job_duration_seconds_bucket{kind=\"noop\",le=\"+Inf\"}"
        ),
        40.0
    );
    assert!(after.contains("# TYPE callsync_job_duration_seconds histogram"));
    assert_eq!(
        value(&after, "callsync_queue_available_jobs{kind=\"held\"}"),
        2.0,
        "a paused kind waits"
    );
    println!(
        "scraped mid-run: {:?} of 40 completed",
        during.lock().unwrap()
    );
    stop(worker);
}

#[tokio::test]
async fn healthz_turns_unhealthy_when_postgres_stops_and_healthy_after_it_restarts() {
    let cluster = Cluster::start_private("health");
    cluster.create_migrated_db("health_db");
    let port = free_port();
    let worker = spawn_worker(&cluster.url("callsync_worker", "health_db"), port);
    wait_until("healthy", Duration::from_secs(30), || async {
        get(port, "/healthz").await.is_some_and(|(s, _)| s == 200)
    })
    .await;
    let (_, body) = get(port, "/healthz").await.unwrap();
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["database"], true);
    assert_eq!(health["listen"], true);

    cluster.down();
    let reasons = std::sync::Mutex::new(String::new());
    wait_until(
        "503 once Postgres is gone",
        Duration::from_secs(30),
        || async {
            match get(port, "/healthz").await {
                Some((503, body)) => {
                    *reasons.lock().unwrap() = body;
                    true
                }
                _ => false,
            }
        },
    )
    .await;
    let reasons = reasons.into_inner().unwrap();
    assert!(reasons.contains("database unreachable"), "{reasons}");
    let (status, _) = get(port, "/metrics").await.unwrap();
    assert_eq!(status, 200, "metrics still answer without the database");

    cluster.up();
    wait_until(
        "200 again after the restart",
        Duration::from_secs(60),
        || async { get(port, "/healthz").await.is_some_and(|(s, _)| s == 200) },
    )
    .await;
    let (_, body) = get(port, "/healthz").await.unwrap();
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        health["listen"], true,
        "the LISTEN connection is back: {body}"
    );
    stop(worker);
}
