//! Callyzer benchmark (issue 3), one run, one private PostgreSQL 15 cluster:
//!
//!   cargo bench --bench callyzer                  processing only
//!   BENCH_SCREENS=1 cargo bench --bench callyzer  also the screens at 5,000,000 calls
//!   BENCH_STATEMENTS=1 cargo bench --bench callyzer  also where the worker-alone
//!       phase went: the machine's busy cores, the CPU of Postgres and of this
//!       process (the worker runs in it) and the 25 statements with the most time
//!       (pg_stat_statements with track = all, preloaded by the private cluster;
//!       it costs a little per statement)
//!   BENCH_FLOOR=1 cargo bench --bench callyzer    the same processing with the
//!       apply cut down to the call upsert (no lead matching, no parking, no new
//!       advisors, no rollup or parent-check triggers): what the design's fixed
//!       parts (ingest, job, parse, typed rows, upsert) reach on their own
//!
//! Processing: BENCH_DELIVERIES (default 600) deliveries of 50 calls each are
//! pushed through `public.ingest_callyzer_webhook` by 4 connections as fast as
//! the database takes them, while a worker (BENCH_CONCURRENCY jobs at once,
//! default 32 like WORKER_CONCURRENCY) processes them; also each half alone.
//! The end-to-end phase sends the calls again under new ids on the next day, so
//! every rollup key it writes is new, as a new day's traffic's are.
//! The worker: parse in Rust, then the deliveries ready together go through one
//! `callyzer_apply_batch` (advisors, labels, time zone, lead matching
//! against 20,000 lead phones, unmatched parking).
//! Baseline in the same run: a bare `INSERT … ON CONFLICT (id) DO UPDATE` of the
//! same rows, 50 per statement, 4 connections, into a table shaped like
//! `callsync.call` (same columns and indexes, no foreign keys).
//!
//! Screens (BENCH_SCREENS=1): 5,000,000 calls spread evenly over 365 days (about
//! 411,000 in any 30 days), loaded as a backfill (one INSERT with the rollup insert
//! trigger off, then `callsync.call_rollups_rebuild()`), 500 advisors in 10
//! teams of 50, 200,000 leads; through PostgREST with user JWTs: the lead
//! registry page (20 newest calls of one lead), one team's statistics over 30
//! days (manager), the whole company's over 30 days (admin). p50/p95 of
//! BENCH_SCREEN_RUNS (default 50) requests each, beside a baseline in the same
//! run: a GET of the one-row view `console_me` with the admin's token (what
//! PostgREST itself costs), and the load average.
#![allow(clippy::unwrap_used)] // a benchmark: a failure should stop it loudly
#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;
#[path = "../tests/proof/cpu.rs"]
mod cpu;

use callsync::jobs::callyzer_delivery::{CallyzerDelivery, KIND};
use callsync::jobs::Handlers;
use common::{Cluster, RunningWorker, TestDb};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const CALLS_PER_DELIVERY: usize = 50;
const CONNECTIONS: usize = 4;
const LEADS: i64 = 20_000;

#[tokio::main]
async fn main() {
    let deliveries = env_or("BENCH_DELIVERIES", 600) as usize;
    let statements = env_or("BENCH_STATEMENTS", 0) == 1;
    if statements {
        // read by scripts/pg-cluster.sh when it creates the cluster below
        std::env::set_var("CALLSYNC_PG_STAT_STATEMENTS", "1");
    }
    eprintln!("starting a private cluster…");
    let cluster = Cluster::start_private("bench-callyzer");
    cluster.create_migrated_db("bench");
    let db = TestDb::on(cluster.clone(), "bench");
    fixture(&db).await;
    let floor = env_or("BENCH_FLOOR", 0) == 1;
    if floor {
        cut_apply_to_upsert(&db).await;
    }

    let bodies: Vec<Value> = (0..deliveries).map(delivery).collect();
    let calls = (deliveries * CALLS_PER_DELIVERY) as f64;

    let bare = bare_upsert(&db, &bodies).await;
    let (ingest_only, process_only, end_to_end) = pipeline(&db, &bodies, statements).await;
    let matched: i64 = db
        .scalar("select count(*) from callsync.call where lead_id is not null")
        .await;
    let stored: i64 = db.scalar("select count(*) from callsync.call").await;

    if floor {
        println!("\nFLOOR RUN: the apply is cut down to the call upsert (BENCH_FLOOR=1)");
    }
    println!("\ncallyzer processing: {deliveries} deliveries x {CALLS_PER_DELIVERY} calls, {CONNECTIONS} connections (same cluster, same run)");
    let line = |what: &str, secs: f64| {
        println!("  {what:<46} {:>9.0} calls/s  ({secs:.2} s)", calls / secs)
    };
    line("(a) end to end: RPC while the worker applies", end_to_end);
    line("    ingest RPC alone (raw event + job)", ingest_only);
    line("    worker alone on that backlog", process_only);
    line("(b) bare INSERT … ON CONFLICT, 50 rows/stmt", bare);
    println!(
        "  (a)/(b) = {:.0}%   targets: >= 50% and >= 20,000 calls/s",
        100.0 * bare / end_to_end
    );
    println!("  stored {stored} calls, {matched} matched to leads");

    if env_or("BENCH_SCREENS", 0) == 1 {
        screens(db).await;
    }
}

/// 50 advisors in one team, 20,000 leads with one phone each.
async fn fixture(db: &TestDb) {
    db.exec(&format!(
        "insert into callsync.team (name) values ('Bench');
         insert into callsync.advisor (name, emp_code, team_id)
             select 'Advisor ' || g, 'EMP-' || g, 1 from generate_series(1, 50) g;
         insert into callsync.lead (name, advisor_id) select 'Lead ' || g, 1 + g % 50 from generate_series(1, {LEADS}) g;
         insert into callsync.lead_phone (lead_id, raw, e164)
             select g, '+48' || (600000000 + g), '+48' || (600000000 + g) from generate_series(1, {LEADS}) g;
         analyze callsync.team, callsync.advisor, callsync.lead, callsync.lead_phone;"
    ))
    .await;
}

/// BENCH_FLOOR=1: replaces `callsync.callyzer_apply_batch` on the bench's
/// private database with the same function minus every feature beyond the call
/// upsert, cut from its live definition (so the floor follows the real apply),
/// and turns off the call table's rollup and parent-check triggers.
async fn cut_apply_to_upsert(db: &TestDb) {
    let def: String = db
        .scalar("select pg_get_functiondef('callsync.callyzer_apply_batch'::regproc)")
        .await;
    let cut = |s: &str, from: &str, to: &str, with: &str| -> String {
        let a = s
            .find(from)
            .unwrap_or_else(|| panic!("floor: {from:?} not in the apply"));
        let b = a + s[a..]
            .find(to)
            .unwrap_or_else(|| panic!("floor: {to:?} not in the apply"));
        format!("{}{with}{}", &s[..a], &s[b..])
    };
    // new advisors: both inserts, up to the calls' CTE
    let def = cut(
        &def,
        "    insert into callsync.advisor",
        "    with rec as (",
        "",
    );
    // lead matching: every call unmatched
    let def = cut(
        &def,
        "left join lateral (",
        "left join callsync.call_type_label",
        "left join lateral (select null::bigint as lead_id, 0 as candidates) as m on true\n        ",
    );
    // parking, un-parking, unknown call types
    let def = cut(
        &def,
        "), parked as (",
        "    select jsonb_build_object(",
        ")\n",
    );
    db.exec(&format!(
        "{def};
         alter table callsync.call disable trigger call_rollup_insert, disable trigger call_rollup_update,
             disable trigger call_parents_check_insert, disable trigger call_parents_check_update;"
    ))
    .await;
}

/// Delivery `d`: one employee, 50 calls, about two thirds to lead numbers.
fn delivery(d: usize) -> Value {
    let calls: Vec<Value> = (0..CALLS_PER_DELIVERY)
        .map(|i| {
            let n = d * CALLS_PER_DELIVERY + i;
            let call_type = ["Incoming", "Outgoing", "Missed", "Rejected"][n % 4];
            let client = if n % 3 == 0 { 700_000_000 + n } else { 600_000_001 + (n * 7919) % LEADS as usize };
            json!({"id": format!("bench-{n}"), "client_name": "", "client_country_code": "48",
                   "client_number": client.to_string(), "duration": n % 600,
                   "call_type": call_type,
                   "call_date": "2026-01-15", "call_time": format!("{:02}:{:02}:{:02}", 8 + n % 10, n % 60, (n / 60) % 60),
                   "note": "", "call_recording_url": "", "crm_status": "",
                   "synced_at": "2026-01-15 18:00:00", "modified_at": "2026-01-15 18:00:00"})
        })
        .collect();
    json!([{"emp_name": "Advisor", "emp_code": format!("EMP-{}", 1 + d % 50), "emp_country_code": "48",
            "emp_number": format!("{}", 500_000_000 + d % 50), "emp_tags": [], "call_logs": calls}])
}

/// Seconds for the bare batched upsert of the same rows.
async fn bare_upsert(db: &TestDb, bodies: &[Value]) -> f64 {
    db.exec("create table public.bench_bare (like callsync.call including defaults including constraints including indexes)")
        .await;
    let sql = "insert into public.bench_bare (id, emp_code, client_number, client_e164, duration_s, call_type, call_date, call_time, called_at, source, raw)
               select r.id, r.emp_code, r.client_number, r.client_e164, r.duration_s, r.call_type, r.call_date, r.call_time,
                      (r.call_date || ' ' || r.call_time)::timestamp at time zone 'Europe/Warsaw', 'webhook', r.raw
               from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::jsonb[])
                    as r(id, emp_code, client_number, client_e164, duration_s, call_type, call_date, call_time, raw)
               on conflict (id) do update set duration_s = excluded.duration_s, raw = excluded.raw, updated_at = now()";
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let pool = db.pool.clone();
        let mine: Vec<Value> = bodies
            .iter()
            .skip(c)
            .step_by(CONNECTIONS)
            .cloned()
            .collect();
        tasks.push(tokio::spawn(async move {
            let client = pool.get().await.unwrap();
            let stmt = client.prepare(sql).await.unwrap();
            for body in mine {
                let logs = body[0]["call_logs"].as_array().unwrap();
                let col = |k: &str| {
                    logs.iter()
                        .map(|l| l[k].as_str().unwrap_or("").to_string())
                        .collect::<Vec<String>>()
                };
                let e164: Vec<String> = logs
                    .iter()
                    .map(|l| format!("+48{}", l["client_number"].as_str().unwrap()))
                    .collect();
                let emp: Vec<String> = logs
                    .iter()
                    .map(|_| body[0]["emp_code"].as_str().unwrap().to_string())
                    .collect();
                let dur: Vec<i32> = logs
                    .iter()
                    .map(|l| l["duration"].as_i64().unwrap() as i32)
                    .collect();
                let raw: Vec<Value> = logs.to_vec();
                client
                    .execute(
                        &stmt,
                        &[
                            &col("id"),
                            &emp,
                            &col("client_number"),
                            &e164,
                            &dur,
                            &col("call_type"),
                            &col("call_date"),
                            &col("call_time"),
                            &raw,
                        ],
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed().as_secs_f64()
}

/// Pushes `bodies` through the ingest RPC on 4 connections; returns seconds.
async fn ingest(db: &TestDb, bodies: &[String]) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let pool = db.pool.clone();
        let mine: Vec<String> = bodies
            .iter()
            .skip(c)
            .step_by(CONNECTIONS)
            .cloned()
            .collect();
        tasks.push(tokio::spawn(async move {
            let client = pool.get().await.unwrap();
            let stmt = client
                .prepare("select public.ingest_callyzer_webhook($1, '{content-type}', '127.0.0.1')")
                .await
                .unwrap();
            for raw in mine {
                client.query_one(&stmt, &[&raw]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed().as_secs_f64()
}

/// CPU so far of this process (the worker runs in it) and of the cluster's
/// Postgres processes, and the machine's busy time.
fn cpu_now(db: &TestDb) -> cpu::Snapshot {
    let me = cpu::Named {
        name: "bench process (the worker)",
        pid: std::process::id(),
    };
    let postmaster = cpu::postmaster_pid(&db.cluster.dir).unwrap_or(0);
    cpu::snapshot(&[me], postmaster, &std::collections::BTreeMap::new())
}

fn worker(db: &TestDb) -> RunningWorker {
    let handlers = Handlers::new().register(KIND, CallyzerDelivery::new(db.worker_pool.clone()));
    let mut opts = common::test_options("bench");
    opts.concurrency = env_or("BENCH_CONCURRENCY", 32) as usize; // WORKER_CONCURRENCY's default
    RunningWorker::spawn(db, handlers, opts)
}

async fn all_processed(db: &TestDb, total: i64) {
    common::wait_until(
        "every delivery processed",
        Duration::from_secs(900),
        || async {
            db.scalar::<i64>(
                "select count(*) from callsync.webhook_event where status = 'processed'",
            )
            .await
                == total
        },
    )
    .await;
}

/// The three pipeline figures, in seconds: ingest alone (no worker), processing
/// of that backlog alone, and end to end (ingest while the worker processes, on
/// fresh call ids). `statements`: print where the worker-alone phase went.
async fn pipeline(db: &TestDb, bodies: &[Value], statements: bool) -> (f64, f64, f64) {
    let first: Vec<String> = bodies.iter().map(Value::to_string).collect();
    let n = bodies.len() as i64;
    let ingest_only = ingest(db, &first).await;
    // pg_stat_statements wants the superuser
    let superuser = db.url("supabase_admin");
    if statements {
        common::psql(
            &superuser,
            "create extension if not exists pg_stat_statements; select pg_stat_statements_reset()",
        );
    }
    let before = cpu_now(db);
    let start = Instant::now();
    let w = worker(db);
    all_processed(db, n).await;
    let process_only = start.elapsed().as_secs_f64();
    if statements {
        let used = cpu::between(&before, &cpu_now(db), bodies.len() as u64);
        print!("\n{}", cpu::table("worker alone", &used));
        println!("  statements by total time (ms, calls, rows, top level?, text):");
        print!(
            "{}",
            common::psql(
                &superuser,
                "select round(total_exec_time::numeric, 1), calls, rows, toplevel,
                        left(regexp_replace(query, '\\s+', ' ', 'g'), 110)
                 from pg_stat_statements order by total_exec_time desc limit 25"
            )
        );
    }
    // end to end on fresh ids (new bodies, so no deduplication) and on the next
    // day: every advisor/day/client rollup key is new, as each day's traffic's is
    // (the same day again would only find the first phase's keys)
    let second: Vec<String> = first
        .iter()
        .map(|b| {
            b.replace("\"bench-", "\"again-")
                .replace("2026-01-15", "2026-01-16")
        })
        .collect();
    let start = Instant::now();
    ingest(db, &second).await;
    all_processed(db, 2 * n).await;
    let end_to_end = start.elapsed().as_secs_f64();
    w.shutdown().await;
    (ingest_only, process_only, end_to_end)
}

/// Screen latencies at 5,000,000 calls through PostgREST.
async fn screens(db: TestDb) {
    let calls = env_or("BENCH_CALLS", 5_000_000) as i64;
    let runs = env_or("BENCH_SCREEN_RUNS", 50) as usize;
    eprintln!("loading {calls} calls, 500 advisors, 200,000 leads…");
    let load = Instant::now();
    db.exec(&format!(
        "truncate callsync.call, callsync.unmatched_call, callsync.lead_phone, callsync.lead, callsync.advisor, callsync.team restart identity cascade;
         insert into callsync.team (name) select 'Team ' || g from generate_series(1, 10) g;
         insert into callsync.advisor (name, emp_code, team_id) select 'Advisor ' || g, 'EMP-' || g, 1 + (g - 1) / 50 from generate_series(1, 500) g;
         insert into callsync.lead (name, advisor_id) select 'Lead ' || g, 1 + g % 500 from generate_series(1, 200000) g;
         insert into callsync.lead_phone (lead_id, raw, e164) select g, '+48' || (600000000 + g), '+48' || (600000000 + g) from generate_series(1, 200000) g;
         insert into callsync.app_user (user_id, role, team_id) values
             ('00000000-0000-4000-8000-00000000000a', 'admin', null),
             ('00000000-0000-4000-8000-0000000000a1', 'manager', 3);
         -- one statement of 5,000,000 rows: load it as a backfill (triggers off, then
         -- the exact rebuild, the same function a migration or a zone change uses)
         alter table callsync.call disable trigger call_rollup_insert;
         insert into callsync.call (id, advisor_id, client_e164, duration_s, call_type, call_type_label, call_date, call_time, called_at, source, raw, lead_id)
             select 'c' || g, 1 + g % 500, '+48' || (600000000 + (g * 7919) % 300000), g % 600,
                    (array['Incoming','Outgoing','Missed','Rejected'])[1 + g % 4],
                    (array['Przychodzące','Wychodzące','Nieodebrane','Odrzucone'])[1 + g % 4],
                    '2026-01-01', '10:00:00', timestamptz '2026-11-20 00:00Z' - (g * 31536000 / {calls}) * interval '1 second',
                    'webhook', '{{}}', case when (g * 7919) % 300000 between 1 and 200000 then (g * 7919) % 300000 end
             from generate_series(1::bigint, {calls}) g;
         alter table callsync.call enable trigger call_rollup_insert;
         select callsync.call_rollups_rebuild();
         analyze;"
    ))
    .await;
    // index-only scans of the fresh rollups need the visibility map
    db.exec("vacuum analyze callsync.call_day_stat").await;
    db.exec("vacuum analyze callsync.call_day_client").await;
    db.exec("vacuum analyze callsync.call_team_day_client")
        .await;
    db.exec("vacuum analyze callsync.call").await;
    eprintln!("loaded in {:.0} s", load.elapsed().as_secs_f64());

    let stack = common::stack::Stack::start(db, &[]).await;
    let admin = stack.user_token("00000000-0000-4000-8000-00000000000a");
    let manager = stack.user_token("00000000-0000-4000-8000-0000000000a1");
    let registry = format!(
        "{}/lead_call_registry?lead_id=eq.4242&order=called_at.desc&limit=20",
        stack.rest_url
    );
    // what PostgREST itself costs with the same token: a one-row view
    let baseline = format!("{}/console_me", stack.rest_url);
    let stats = format!("{}/rpc/team_call_stats", stack.rest_url);
    let period = json!({"p_from": "2026-10-21T00:00:00Z", "p_to": "2026-11-20T00:00:00Z"});

    let mut base = Vec::new();
    let mut reg = Vec::new();
    let mut team = Vec::new();
    let mut company = Vec::new();
    let load_before = cpu::loadavg();
    for i in 0..runs + 3 {
        let t = Instant::now();
        let r = stack
            .http
            .get(&baseline)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let _ = ok(r).await.bytes().await;
        let z = t.elapsed().as_secs_f64() * 1000.0;
        let t = Instant::now();
        let r = stack
            .http
            .get(&registry)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let r = ok(r).await;
        let _ = r.bytes().await;
        let a = t.elapsed().as_secs_f64() * 1000.0;
        let t = Instant::now();
        let r = stack
            .http
            .post(&stats)
            .bearer_auth(&manager)
            .json(&period)
            .send()
            .await
            .unwrap();
        let r = ok(r).await;
        let rows: Value = r.json().await.unwrap();
        let b = t.elapsed().as_secs_f64() * 1000.0;
        let t = Instant::now();
        let r = stack
            .http
            .post(&stats)
            .bearer_auth(&admin)
            .json(&period)
            .send()
            .await
            .unwrap();
        let r = ok(r).await;
        let _ = r.bytes().await;
        let c = t.elapsed().as_secs_f64() * 1000.0;
        if i >= 3 {
            base.push(z);
            reg.push(a);
            team.push(b);
            company.push(c);
        } else if i == 0 {
            eprintln!("team rows: {}", rows.as_array().map(Vec::len).unwrap_or(0));
        }
    }
    println!("\nscreens at {calls} calls, 500 advisors, 200,000 leads, through PostgREST ({runs} requests each, load average {load_before} before, {} after):", cpu::loadavg());
    let b50 = pct(&mut base, 50.0);
    let b95 = pct(&mut base, 95.0);
    println!(
        "  baseline: one-row view (console_me) p50 {b50:>7.1} ms  p95 {b95:>7.1} ms  (same token)"
    );
    for (what, v, target) in [
        ("lead registry page (20 rows)", &mut reg, "p95 < 5 ms"),
        ("team stats, 50 advisors, 30 days", &mut team, "p95 < 50 ms"),
        ("company stats, 500 adv., 30 days", &mut company, "< 300 ms"),
    ] {
        let (p50, p95) = (pct(v, 50.0), pct(v, 95.0));
        println!(
            "  {what:<34} p50 {p50:>7.1} ms  p95 {p95:>7.1} ms  ({:.1}x / {:.1}x the baseline)  target {target}",
            p50 / b50,
            p95 / b95
        );
    }
}

/// The response, or a panic that shows PostgREST's answer (a statement timeout
/// under load reads differently from a permission error).
async fn ok(r: reqwest::Response) -> reqwest::Response {
    if r.status().is_success() {
        return r;
    }
    let status = r.status();
    panic!("{status}: {}", r.text().await.unwrap_or_default());
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let i = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}
