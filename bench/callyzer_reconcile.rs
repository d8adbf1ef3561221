//! Callyzer reconciliation benchmark (issue 4), one run, one private PostgreSQL
//! 15 cluster, the real `callsync worker` process (release build):
//!
//!   cargo bench --bench callyzer_reconcile          100,000 calls each way
//!   BENCH_CALLS=20000 cargo bench --bench callyzer_reconcile
//!   BENCH_BATCH_PAGES=20 BENCH_PARALLEL_APPLIES=3 cargo bench --bench callyzer_reconcile
//!   BENCH_CHAIN=1 cargo bench --bench callyzer_reconcile   one page job per page
//!   BENCH_WORKER_LOG=target/reconcile-worker.log cargo bench …  keep the worker's log
//!   BENCH_PROFILE=1 cargo bench …   time per SQL function (track_functions) in each phase
//!   BENCH_EXPLAIN=1 BENCH_SERVER_LOG=/tmp/pg.log cargo bench …   plans of statements over 200 ms
//!   BENCH_ANALYZE=1 cargo bench …   ANALYZE between (1) and (2), as autovacuum would have
//!
//! (1) webhook path: BENCH_CALLS calls as deliveries of 100 stored through
//!     `public.ingest_callyzer_webhook` while the worker is stopped; then the
//!     worker is started and timed until every delivery is processed.
//! (2) reconciliation: BENCH_CALLS other calls served by the fake Callyzer API
//!     (tests/fake_callyzer) in pages of 100, the page kind's rate limit set to
//!     zero; one run started as pg_cron starts it, timed until it succeeded.
//!     With the limit at zero the run's page job reads the chunk itself (a
//!     burst); BENCH_CHAIN=1 sets the limit to 1 µs instead, which keeps the
//!     one-job-per-page chain (every claim, request, apply and commit in turn)
//!     and prints where a page's time goes.
//! Both apply through the same SQL (advisors, labels, time zone, matching
//! against 20,000 lead phones, unmatched parking). The worker's peak resident
//! memory (VmHWM) is read at the end of each phase; each phase has its own
//! worker process, so each figure is that path's own.
#![allow(clippy::unwrap_used)] // a benchmark: a failure should stop it loudly
#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;
#[path = "../tests/proof/cpu.rs"]
mod cpu;
#[path = "../tests/fake_callyzer/mod.rs"]
mod fake_callyzer;

use common::{wait_until, Cluster, TestDb};
use fake_callyzer::{api_row, webhook_body, FakeCallyzer, TOKEN};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PAGE: usize = 100;
const ADVISORS: usize = 20;

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn advisor(i: usize) -> (String, String, String) {
    (
        format!("SALES-{i:02}"),
        "48".into(),
        format!("6001002{i:02}"),
    )
}

fn rows(prefix: &str, n: usize) -> Vec<Value> {
    let now = chrono::Utc::now();
    (0..n)
        .map(|i| {
            let (code, cc, number) = advisor(i % ADVISORS);
            api_row(
                &format!("{prefix}-{i:07}"),
                (&code, &cc, &number),
                // 40,000 client numbers; the leads hold the first 20,000
                &format!("601{:06}", i % 40_000),
                now,
                60 + (i as i64 % 72_000),
            )
        })
        .collect()
}

/// Peak resident memory of a process, in MiB.
fn peak_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The worker process; with BENCH_WORKER_LOG=<file> its reconciliation log
/// (one line per applied batch and per burst, with where the time went) goes there.
fn spawn_worker(db: &TestDb, api: &FakeCallyzer) -> Child {
    let log = std::env::var("BENCH_WORKER_LOG")
        .ok()
        .map(|path| std::fs::File::create(path).unwrap());
    Command::new(env!("CARGO_BIN_EXE_callsync"))
        .arg("worker")
        .env("DATABASE_URL", db.url("callsync_worker"))
        .env("CALLYZER_API_TOKEN", TOKEN)
        .env("CALLYZER_API_BASE_URL", api.base_url())
        .env("WORKER_ID", "bench")
        .env(
            "RUST_LOG",
            if log.is_some() {
                "warn,callsync::jobs::callyzer_reconcile=info"
            } else {
                "warn"
            },
        )
        .stdout(Stdio::null())
        .stderr(log.map_or_else(Stdio::null, Stdio::from))
        .spawn()
        .expect("start the callsync worker (cargo build --release --bins)")
}

/// Times the fake API alone (milliseconds): the first page of the run's filter
/// (the fake scans every row once per filter) and a later page (a slice).
async fn time_fake(api: &FakeCallyzer) -> (f64, f64) {
    let numbers: Vec<String> = (0..ADVISORS)
        .map(|i| {
            let (_, cc, number) = advisor(i);
            format!("{cc}-{number}")
        })
        .collect();
    let now = chrono::Utc::now().timestamp();
    let http = reqwest::Client::new();
    let url = format!("{}/v2.1/call-log/history", api.base_url());
    let mut times = Vec::new();
    for page in [1, 500] {
        let started = Instant::now();
        let body: Value = http
            .post(&url)
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({
                "synced_from": now - 3 * 86_400, "synced_to": now + 60,
                "emp_numbers": numbers, "page_no": page, "page_size": PAGE}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body["result"].is_array());
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    // the timing filter is not the run's: make the run's first request scan again, as before
    api.add(&[]);
    (times[0], times[1])
}

#[tokio::main]
async fn main() {
    let n = env_or("BENCH_CALLS", 100_000);
    eprintln!("starting a private cluster…");
    let cluster = Cluster::start_private("bench-reconcile");
    cluster.create_migrated_db("bench");
    let db = TestDb::on(cluster.clone(), "bench");
    let mut fixture = String::from(
        "insert into callsync.advisor (name, emp_code, country_code, phone_number, phone_e164, last_synced_at) values ",
    );
    for i in 0..ADVISORS {
        let (code, cc, number) = advisor(i);
        fixture.push_str(&format!(
            "{}('Advisor {i}', '{code}', '{cc}', '{number}', '+{cc}{number}', now() - interval '2 hours')",
            if i == 0 { "" } else { ", " }
        ));
    }
    fixture.push_str(";
        insert into callsync.lead (name, advisor_id) select 'Lead ' || g, 1 + g % 20 from generate_series(0, 19999) as g;
        insert into callsync.lead_phone (lead_id, raw) select id, '+48601' || lpad((id - 1)::text, 6, '0') from callsync.lead;
        analyze;");
    db.exec(&fixture).await;
    let chain = std::env::var("BENCH_CHAIN").is_ok_and(|v| v == "1");
    let batch_pages = env_or("BENCH_BATCH_PAGES", 0);
    let parallel = env_or("BENCH_PARALLEL_APPLIES", 0);
    let mut settings = format!(
        "update callsync.job_kind set min_interval = interval '{}' where kind = 'callyzer_reconcile_page';",
        if chain { "1 microsecond" } else { "0" }
    );
    for (key, value) in [
        ("callyzer.reconcile_batch_pages", batch_pages),
        ("callyzer.reconcile_parallel_applies", parallel),
    ] {
        if value > 0 {
            settings.push_str(&format!(
                "update callsync.setting set value = '{value}' where key = '{key}';"
            ));
        }
    }
    db.exec(&settings).await;
    let (batch_pages, parallel): (i64, i64) = {
        let c = db.pool.get().await.unwrap();
        let row = c
            .query_one(
                "select (select value::text::bigint from callsync.setting where key = 'callyzer.reconcile_batch_pages'),
                        (select value::text::bigint from callsync.setting where key = 'callyzer.reconcile_parallel_applies')",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };

    // BENCH_PROFILE=1: time every SQL function (trigger functions too), printed at the end
    let profile = std::env::var("BENCH_PROFILE").is_ok_and(|v| v == "1");
    if profile {
        common::psql(
            &cluster.url("supabase_admin", "bench"),
            // new sessions: the worker's, which start after this
            "alter database bench set track_functions = 'all'",
        );
    }
    if std::env::var("BENCH_EXPLAIN").is_ok_and(|v| v == "1") {
        // plans of slow statements, nested ones too (inside the SQL functions), in the server log
        for setting in [
            "session_preload_libraries = 'auto_explain'",
            "auto_explain.log_min_duration = 200",
            "auto_explain.log_nested_statements = on",
            "auto_explain.log_analyze = on",
        ] {
            common::psql(
                &cluster.url("supabase_admin", "bench"),
                &format!("alter database bench set {setting}"),
            );
        }
    }
    let api = FakeCallyzer::start().await;
    api.add(&rows("api", n));
    let fake_ms = time_fake(&api).await;

    // (1) the webhook path on a backlog of deliveries
    let webhook = rows("wh", n);
    let client = db.pool.get().await.unwrap();
    for chunk in webhook.chunks(PAGE) {
        client
            .execute(
                "select public.ingest_callyzer_webhook($1)",
                &[&webhook_body(chunk).to_string()],
            )
            .await
            .unwrap();
    }
    let mut worker = spawn_worker(&db, &api);
    let started = Instant::now();
    wait_until(
        "webhook backlog processed",
        Duration::from_secs(1800),
        || async {
            db.scalar::<i64>(
                "select count(*) from callsync.webhook_event where status <> 'processed'",
            )
            .await
                == 0
        },
    )
    .await;
    let webhook_secs = started.elapsed().as_secs_f64();
    let webhook_peak = peak_mib(worker.id());
    // a fresh worker process for (2): each path's own peak memory, not the larger
    // of the two. SIGTERM: the worker drains and records its completions, so no
    // job of (1) runs again during (2)
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(worker.id().to_string())
        .status();
    let _ = worker.wait();
    worker = spawn_worker(&db, &api);
    let functions = "select coalesce(string_agg(format('%s.%s: %s calls, %s ms self, %s ms total', schemaname, funcname, calls, round(self_time), round(total_time)), E'\n' order by self_time desc), '')
                     from (select * from pg_stat_user_functions order by self_time desc limit 12) as f";
    if profile {
        // statistics reach the view within a moment of the worker's transactions ending
        tokio::time::sleep(Duration::from_millis(700)).await;
        println!(
            "SQL functions during (1):\n{}",
            db.scalar::<String>(functions).await
        );
        common::psql(
            &cluster.url("supabase_admin", "bench"),
            "select pg_stat_reset();",
        );
    }

    // BENCH_ANALYZE=1: fresh planner statistics before (2), as autovacuum keeps
    // them in a live database (here (1) filled the tables seconds ago); without
    // them the apply (callyzer_apply_batch) plans its un-parking DELETE as a scan of every
    // waiting call (auto_explain: 450 of 590 ms for 1,000 matched calls)
    if std::env::var("BENCH_ANALYZE").is_ok_and(|v| v == "1") {
        db.exec("analyze").await;
    }

    // (2) one reconciliation over the same number of calls
    let started = Instant::now();
    let run: i64 = db
        .scalar("select callsync.callyzer_reconcile_start()")
        .await;
    let done =
        format!("select outcome <> 'running' from callsync.callyzer_sync_run where id = {run}");
    wait_until(
        "reconciliation finished",
        Duration::from_secs(1800),
        || async { db.scalar::<bool>(&done).await },
    )
    .await;
    let reconcile_secs = started.elapsed().as_secs_f64();
    if let Ok(path) = std::env::var("BENCH_SERVER_LOG") {
        // the cluster's folder goes with this process
        let _ = std::fs::copy(cluster.dir.join("server.log"), path);
    }
    if profile {
        tokio::time::sleep(Duration::from_millis(700)).await;
        println!(
            "SQL functions during (2):\n{}",
            db.scalar::<String>(functions).await
        );
    }
    let reconcile_peak = peak_mib(worker.id());
    let _ = worker.kill();
    let _ = worker.wait();

    let outcome: String = db
        .scalar(&format!("select outcome || coalesce(': ' || error, '') from callsync.callyzer_sync_run where id = {run}"))
        .await;
    let (pages, fetched, new): (i64, i64, i64) = {
        let row = client
            .query_one(
                "select pages::bigint, fetched::bigint, new::bigint from public.callyzer_sync_log where id = $1",
                &[&run],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    let matched: i64 = db
        .scalar("select count(*) from callsync.call where source = 'api' and lead_id is not null")
        .await;

    println!("\ncallyzer reconciliation: {n} calls each way, pages of {PAGE}, rate limit 0 (same cluster, same run)");
    println!(
        "  (1) webhook path, worker on a backlog of {} deliveries  {:>8.0} calls/s  ({webhook_secs:.2} s)",
        n / PAGE,
        n as f64 / webhook_secs
    );
    println!(
        "  (2) reconciliation, one run of {pages} pages              {:>8.0} calls/s  ({reconcile_secs:.2} s)",
        n as f64 / reconcile_secs
    );
    println!("      run: {outcome}; fetched {fetched}, new {new}, {matched} matched to leads");
    if chain {
        // where a page's time went: enqueue -> claim, claim -> completion recorded
        let row = client
            .query_one(
                "select avg(extract(epoch from attempted_at - created_at) * 1000)::float8,
                        avg(extract(epoch from finished_at - attempted_at) * 1000)::float8
                 from callsync.job where kind = 'callyzer_reconcile_page' and state = 'completed'",
                &[],
            )
            .await
            .unwrap();
        let (wait_ms, run_ms): (f64, f64) = (row.get(0), row.get(1));
        println!("      one job per page: {wait_ms:.1} ms from enqueue to claim, {run_ms:.1} ms from claim to completion, per page");
    } else {
        println!("      burst: batches of {batch_pages} pages, {parallel} applied side by side");
    }
    println!(
        "  fake API: {:.1} ms for the first page of a filter (a scan of every row, as each request cost before it was indexed), {:.2} ms for a later page",
        fake_ms.0, fake_ms.1
    );
    println!("  load average at the end: {}", cpu::loadavg());
    println!("  worker peak memory (VmHWM): {webhook_peak:.1} MiB in (1), {reconcile_peak:.1} MiB in (2) (a fresh worker process each)");
    println!("  targets: reconciliation >= 20,000 calls/s, worker peak < 100 MB");
}
