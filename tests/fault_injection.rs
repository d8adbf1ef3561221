//! Fault injection on the whole system: webhooks through the Edge Functions
//! (Deno → PostgREST → Postgres) while the real worker binary is killed with
//! `kill -9` at random moments and restarted, Postgres is restarted, the fake
//! Callyzer API answers 503 and then stalls past the client timeout, and a
//! fake BPMsoft flaps between 500 and success. Some calls reach us only
//! through the API (their webhook is "lost"), so reconciliation must fill the
//! gap. At the end: every call stored exactly once and matched to the right
//! lead, every webhook event processed, every ElevenLabs event analysed once
//! and dispatched to the CRM exactly once (or recorded failed with a reason),
//! no job left running, and no secret or full phone number in any log.
//!
//! CI runs the short version (2,000 webhooks, 5 kills, 1 Postgres restart).
//! `scripts/soak.sh` runs the full one (50,000 webhooks, 20 kills, 2
//! restarts): `cargo test --release --test fault_injection -- --ignored`.
//! Both print their figures and write them to target/proof/fault-*.json.
#![allow(clippy::unwrap_used)]
mod common;
mod fake_callyzer;

use common::stack::{Stack, JWT_SECRET};
use common::*;
use fake_callyzer::{api_row, webhook_body, FakeCallyzer, Fault, TOKEN as API_TOKEN};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[path = "proof/hygiene.rs"]
mod hygiene;

const WEBHOOK_TOKEN: &str = "cz-fault-token-93f0a1b2c3d4";
const EL_SECRET: &str = "whsec_fault_7c6b5a4d3e2f";
const CRM_PATH: &str = "/0/ServiceModel/GeneratedObjectWebFormService.svc/SaveWebFormObjectData";
const LANDING: &str = "4b7d5e0a-0000-4000-8000-000000000001";
const ORIGIN: &str = "https://mir.utlik.pro";
const LEADS: u64 = 200;
const EMPLOYEES: [(&str, &str, &str); 3] = [
    ("SALES-07", "48", "600100200"),
    ("SALES-08", "48", "600100201"),
    ("SALES-20", "48", "600100202"),
];

/// How big a run is.
#[derive(Debug, Clone, Copy)]
struct Size {
    webhooks: u64,
    events: u64,
    kills: u32,
    restarts: u32,
    senders: usize,
}

/// Advisors synced two hours ago; leads 1..=200 on +48 601 000 000 + (id - 1).
const FIXTURE: &str = r#"
    insert into callsync.team (name) values ('Team A');
    insert into callsync.advisor (name, emp_code, country_code, phone_number, phone_e164, team_id, last_synced_at) values
        ('Olga',  'SALES-07', '48', '600100200', '+48600100200', 1, now() - interval '2 hours'),
        ('Piotr', 'SALES-08', '48', '600100201', '+48600100201', 1, now() - interval '2 hours'),
        ('Basia', 'SALES-20', '48', '600100202', '+48600100202', 1, now() - interval '2 hours');
    insert into callsync.lead (name, advisor_id) select 'Lead ' || g, 1 + g % 3 from generate_series(0, 199) as g;
    insert into callsync.lead_phone (lead_id, raw) select id, '+48 601 ' || lpad((id - 1)::text, 6, '0') from callsync.lead;
    -- the API rate limit has its own test (callyzer_reconcile.rs); here it would only add waiting
    update callsync.job_kind set min_interval = interval '100 milliseconds' where kind = 'callyzer_reconcile_page';
    update callsync.setting set value = '"1 second"' where key = 'callyzer.reconcile_retry_backoff';
"#;

/// Call `n`: its client number, and the lead it must match (none: 1 in 5).
fn client(n: u64) -> (String, Option<i64>) {
    if n % 5 == 0 {
        (format!("699{:06}", n % 1_000_000), None)
    } else {
        let lead = n % LEADS;
        (format!("601{lead:06}"), Some(lead as i64 + 1))
    }
}

/// Calls whose webhook is lost: only reconciliation brings them.
fn webhook_lost(n: u64) -> bool {
    n % 20 == 7
}

fn row(n: u64, now: chrono::DateTime<chrono::Utc>) -> Value {
    let (number, _) = client(n);
    api_row(
        &format!("fi-{n}"),
        EMPLOYEES[(n % 3) as usize],
        &number,
        now,
        600 + (n % 3000) as i64,
    )
}

/// A flapping BPMsoft: answers 500 (or stalls past the client timeout) in
/// every other 1.5 s window while `flapping`, Creatio's success otherwise.
/// Counts successful answers per record `Id`.
#[derive(Clone, Default)]
struct FlappingCrm {
    flapping: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    successes: Arc<Mutex<HashMap<String, u32>>>,
}

impl Respond for FlappingCrm {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let window = chrono::Utc::now().timestamp_millis() / 1500;
        if self.flapping.load(Ordering::Relaxed) && window % 2 == 1 {
            return if n % 4 == 0 {
                ResponseTemplate::new(200).set_delay(Duration::from_secs(3))
            } else {
                ResponseTemplate::new(500).set_body_string("Internal Server Error")
            };
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let id = body["formData"]["formFieldsData"]
            .as_array()
            .and_then(|f| f.iter().find(|x| x["name"] == "Id"))
            .and_then(|x| x["value"].as_str())
            .unwrap_or("")
            .to_string();
        *self.successes.lock().unwrap().entry(id).or_default() += 1;
        ResponseTemplate::new(200).set_body_string(
            r#"{"SaveWebFormObjectDataResult":"{resultMessage:\"ok\",resultCode:0}"}"#,
        )
    }
}

fn el_body(conv: &str) -> String {
    json!({"type": "post_call_transcription", "event_timestamp": chrono::Utc::now().timestamp(),
           "data": {"agent_id": "agent_1", "conversation_id": conv, "status": "done",
                    "transcript": [{"role": "user", "message": "Proszę o kontakt."}],
                    "metadata": {"phone_call": {"direction": "inbound", "external_number": "+48512345678"}},
                    "analysis": {"call_successful": "success", "transcript_summary": "Chce kurs.",
                                 "data_collection_results": {"name": {"value": "Jan"}}}}})
    .to_string()
}

fn el_signature(body: &str) -> String {
    let t = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(EL_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// The real worker binary, its stderr appended to `log`.
fn spawn_worker(db: &TestDb, api: &str, crm: &str, log: &std::path::Path, id: u32) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_callsync"))
        .arg("worker")
        .env("DATABASE_URL", db.url("callsync_worker"))
        .env("WORKER_ID", format!("fault-{id}"))
        .env("WORKER_CONCURRENCY", "16")
        .env("WORKER_LEASE_SECS", "3")
        .env("WORKER_POLL_INTERVAL_MS", "250")
        .env("RUST_LOG", "info")
        .env("CALLYZER_API_TOKEN", API_TOKEN)
        .env("CALLYZER_API_BASE_URL", api)
        .env("CALLYZER_API_TIMEOUT_SECS", "1")
        .env("EXTERNAL_CRM_ENABLED", "true")
        .env("EXTERNAL_CRM_DRY_RUN", "false")
        .env("CRM_SERVICE_URL", format!("{crm}{CRM_PATH}"))
        .env("CRM_LANDING_ID", LANDING)
        .env("CRM_TRUSTED_ORIGIN", ORIGIN)
        .env("CRM_TIMEOUT_SECS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(out))
        .spawn()
        .expect("spawn the worker binary")
}

/// Posts until the function answers 200, as Callyzer and ElevenLabs retry.
/// Returns the acknowledgement time of the accepted attempt and the number
/// of refused attempts (503 while Postgres restarts, connection errors).
async fn deliver(http: &reqwest::Client, url: &str, body: String, sign: bool) -> (Duration, u32) {
    let mut refused = 0;
    loop {
        let mut req = http
            .post(url)
            .header("Content-Type", "application/json")
            .timeout(Duration::from_secs(30));
        if sign {
            req = req.header("ElevenLabs-Signature", el_signature(&body));
        }
        let started = Instant::now();
        match req.body(body.clone()).send().await {
            Ok(r) if r.status().as_u16() == 200 => return (started.elapsed(), refused),
            Ok(r) => assert!(
                r.status().is_server_error(),
                "a valid request refused with {}",
                r.status()
            ),
            Err(_) => {}
        }
        refused += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.scalar::<i64>(sql).await
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn run(size: Size) {
    let started = Instant::now();
    let cluster = Cluster::start_private("fault");
    cluster.create_migrated_db("fault");
    let db = TestDb::on(cluster.clone(), "fault");
    db.exec(FIXTURE).await;

    let api = FakeCallyzer::start().await;
    let now = chrono::Utc::now();
    let rows: Vec<Value> = (0..size.webhooks).map(|n| row(n, now)).collect();
    api.add(&rows);
    let crm_state = FlappingCrm::default();
    crm_state.flapping.store(true, Ordering::Relaxed);
    let crm = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(CRM_PATH))
        .respond_with(crm_state.clone())
        .mount(&crm)
        .await;

    let stack = Stack::start(
        db,
        &[
            ("CALLYZER_WEBHOOK_TOKEN", WEBHOOK_TOKEN),
            ("ELEVENLABS_WEBHOOK_SECRET", EL_SECRET),
        ],
    )
    .await;
    let worker_log = stack.log_dir.join("worker.log");
    let _ = std::fs::remove_file(&worker_log);
    let api_url = api.base_url();
    let crm_url = crm.uri();
    let mut worker = spawn_worker(&stack.db, &api_url, &crm_url, &worker_log, 0);

    // a reconciliation while the API answers 503 (it must fail with a reason, not hang)
    api.fail_always(Some(Fault::Status(503, "Service Unavailable")));
    let first_run: Option<i64> = stack
        .db
        .scalar("select callsync.callyzer_reconcile_start()")
        .await;

    // the work, interleaved: ElevenLabs events spread among the webhooks
    #[derive(Clone, Copy)]
    enum Work {
        Webhook(u64),
        Event(u64),
    }
    let stride = (size.webhooks / size.events.max(1)).max(1);
    let mut work = Vec::new();
    for n in 0..size.webhooks {
        if n % stride == 0 && n / stride < size.events {
            work.push(Work::Event(n / stride));
        }
        if !webhook_lost(n) {
            work.push(Work::Webhook(n));
        }
    }
    let work = Arc::new(work);
    let total = work.len() as u64;

    // senders
    let next = Arc::new(AtomicU64::new(0));
    let acks = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let refused = Arc::new(AtomicU64::new(0));
    let cz_url = format!(
        "{}/callyzer-webhook?token={WEBHOOK_TOKEN}",
        stack.functions_url
    );
    let el_url = format!("{}/elevenlabs-webhook", stack.functions_url);
    let mut senders = Vec::new();
    for _ in 0..size.senders {
        let (next, acks, refused, rows, work) = (
            next.clone(),
            acks.clone(),
            refused.clone(),
            rows.clone(),
            work.clone(),
        );
        let (cz_url, el_url, http) = (cz_url.clone(), el_url.clone(), stack.http.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = work.get(i as usize).copied() else {
                    break;
                };
                let (ack, r) = match item {
                    Work::Event(k) => {
                        deliver(&http, &el_url, el_body(&format!("conv-fault-{k}")), true).await
                    }
                    Work::Webhook(n) => {
                        let body = webhook_body(&[rows[n as usize].clone()]).to_string();
                        // 1 in 50 deliveries arrives twice, as a retrying sender does
                        if n % 50 == 3 {
                            let _ = deliver(&http, &cz_url, body.clone(), false).await;
                        }
                        deliver(&http, &cz_url, body, false).await
                    }
                };
                acks.lock().unwrap().push(ack);
                refused.fetch_add(u64::from(r), Ordering::Relaxed);
            }
        }));
    }

    // chaos: kills at random moments, Postgres restarts, API faults
    let mut kills = 0;
    let mut restarts = 0;
    let mut worker_id = 0;
    let chaos_started = Instant::now();
    // about 60 ms per request per sender on the 2-core machine (debug build)
    let send_estimate = Duration::from_millis(total * 60 / size.senders as u64);
    let mut events: Vec<(Duration, &'static str)> = Vec::new();
    for k in 0..size.kills {
        events.push((
            send_estimate * (k + 1) / (size.kills + 1)
                + Duration::from_millis(fastrand::u64(0..700)),
            "kill",
        ));
    }
    for r in 0..size.restarts {
        events.push((
            send_estimate * (2 * r + 1) / (2 * size.restarts + 1) + Duration::from_millis(333),
            "restart",
        ));
    }
    events.push((send_estimate / 3, "api stalls"));
    events.push((send_estimate * 2 / 3, "api healthy"));
    events.sort();
    for (at, what) in events {
        if let Some(wait) = at.checked_sub(chaos_started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        // a late fault still lands at a random point of a running worker's life
        tokio::time::sleep(Duration::from_millis(fastrand::u64(200..900))).await;
        match what {
            "kill" => {
                worker.kill().unwrap(); // SIGKILL
                worker.wait().unwrap();
                kills += 1;
                worker_id += 1;
                worker = spawn_worker(&stack.db, &api_url, &crm_url, &worker_log, worker_id);
            }
            "restart" => {
                cluster.down();
                tokio::time::sleep(Duration::from_millis(1500)).await;
                cluster.up();
                restarts += 1;
            }
            "api stalls" => api.fail_always(Some(Fault::Delay(Duration::from_secs(3)))),
            _ => api.fail_always(None),
        }
        println!("fault: {what} at {:?}", chaos_started.elapsed());
    }
    for s in senders {
        s.await.unwrap();
    }
    let send_time = chaos_started.elapsed();
    api.fail_always(None);
    crm_state.flapping.store(false, Ordering::Relaxed);

    // Postgres restarted under the stack's pools: check with fresh connections
    let check = TestDb::on(cluster.clone(), "fault");
    // the first run ended on its own, failed with a reason
    if let Some(id) = first_run {
        let sql =
            format!("select outcome <> 'running' from callsync.callyzer_sync_run where id = {id}");
        wait_until(
            "the run during the 503s to end",
            Duration::from_secs(120),
            || async { check.scalar::<bool>(&sql).await },
        )
        .await;
    }
    // a reconciliation with the API healthy brings every lost webhook's call
    let final_run: i64 = loop {
        let id: Option<i64> = stack
            .db
            .scalar("select callsync.callyzer_reconcile_start()")
            .await;
        if let Some(id) = id {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let sql = format!(
        "select outcome <> 'running' from callsync.callyzer_sync_run where id = {final_run}"
    );
    wait_until(
        "the final reconciliation",
        Duration::from_secs(300),
        || async { check.scalar::<bool>(&sql).await },
    )
    .await;
    wait_until("the queue is empty", Duration::from_secs(600), || async {
        count(
            &check,
            "select count(*) from callsync.job where state in ('available', 'running', 'retryable')",
        )
        .await
            == 0
    })
    .await;
    worker.kill().unwrap();
    worker.wait().unwrap();

    // ---- the promises
    let db = &check;
    let c = db.pool.get().await.unwrap();
    let stored: Vec<(String, Option<i64>, String)> = c
        .query(
            "select id, lead_id, coalesce(client_e164, '') from callsync.call",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let by_id: BTreeMap<&str, Option<i64>> =
        stored.iter().map(|(i, l, _)| (i.as_str(), *l)).collect();
    let mut lost = Vec::new();
    let mut mismatched = Vec::new();
    for n in 0..size.webhooks {
        let id = format!("fi-{n}");
        match by_id.get(id.as_str()) {
            None => lost.push(id),
            Some(lead) if *lead != client(n).1 => mismatched.push((id, *lead, client(n).1)),
            Some(_) => {}
        }
    }
    let strangers = stored.len() as i64 - by_id.len() as i64
        + stored
            .iter()
            .filter(|(i, _, _)| !i.starts_with("fi-"))
            .count() as i64;
    let final_outcome: String = db
        .scalar(&format!(
            "select outcome from callsync.callyzer_sync_run where id = {final_run}"
        ))
        .await;
    let failed_runs: Vec<(String, Option<String>)> = c
        .query(
            "select outcome, error from callsync.callyzer_sync_run where id <> $1",
            &[&final_run],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let unprocessed = count(
        db,
        "select count(*) from callsync.webhook_event where status not in ('processed')",
    )
    .await;
    let running = count(
        db,
        "select count(*) from callsync.job where state = 'running'",
    )
    .await;
    let discarded: Vec<(String, Option<String>)> = c
        .query(
            "select kind, last_error from callsync.job where state = 'discarded'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let events_stored = count(
        db,
        "select count(*) from callsync.elevenlabs_event where conversation_id like 'conv-fault-%'",
    )
    .await;
    let analysed = count(
        db,
        "select count(distinct a.event_id) from callsync.call_analysis a",
    )
    .await;
    let dispatched_ok = count(
        db,
        "select count(*) from callsync.crm_dispatch where status = 'success'",
    )
    .await;
    let double_ok = count(db, "select count(*) from (select event_id from callsync.crm_dispatch where status = 'success' group by event_id having count(*) > 1) d").await;
    let failed_with_reason = count(db, "select count(*) from callsync.elevenlabs_event e where not exists (select 1 from callsync.crm_dispatch d where d.event_id = e.webhook_event_id and d.status = 'success') and exists (select 1 from callsync.crm_dispatch d where d.event_id = e.webhook_event_id and d.status = 'error' and d.error is not null)").await;
    let crm_answers: HashMap<String, u32> = crm_state.successes.lock().unwrap().clone();
    let crm_repeats: u32 = crm_answers.values().map(|n| n - 1).sum();

    let mut acks = acks.lock().unwrap().clone();
    acks.sort();
    let figures = json!({
        "webhooks": size.webhooks,
        "webhooks_sent": size.webhooks - (0..size.webhooks).filter(|n| webhook_lost(*n)).count() as u64,
        "webhooks_lost_on_purpose": (0..size.webhooks).filter(|n| webhook_lost(*n)).count(),
        "elevenlabs_events": size.events,
        "kills": kills,
        "postgres_restarts": restarts,
        "attempts_refused_and_retried": refused.load(Ordering::Relaxed),
        "calls_lost": lost.len(),
        "calls_duplicated": strangers,
        "lead_mismatches": mismatched.len(),
        "unprocessed_events": unprocessed,
        "jobs_running_at_end": running,
        "jobs_discarded": discarded.len(),
        "runs_failed_with_reason": failed_runs.iter().filter(|(o, e)| o == "failed" && e.is_some()).count(),
        "final_reconciliation": final_outcome,
        "runs_during_faults": failed_runs.iter().map(|(o, _)| o.as_str()).collect::<Vec<_>>(),
        "events_analysed": analysed,
        "crm_dispatched_once": dispatched_ok,
        "crm_events_failed_with_reason": failed_with_reason,
        "crm_double_success_rows": double_ok,
        "crm_requests": crm_state.requests.load(Ordering::Relaxed),
        "crm_repeat_posts_same_record_id": crm_repeats,
        "ack_p50_ms": percentile(&acks, 0.50).as_secs_f64() * 1000.0,
        "ack_p99_ms": percentile(&acks, 0.99).as_secs_f64() * 1000.0,
        "ack_max_ms": acks.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        "send_seconds": send_time.as_secs_f64(),
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    println!("fault figures: {figures:#}");
    let out = root().join("target/proof");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join(format!("fault-{}.json", size.webhooks)),
        serde_json::to_string_pretty(&figures).unwrap(),
    )
    .unwrap();

    assert_eq!(kills, size.kills);
    assert_eq!(restarts, size.restarts);
    assert!(
        lost.is_empty(),
        "{} calls lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert_eq!(strangers, 0, "calls stored twice or never sent");
    assert!(
        mismatched.is_empty(),
        "wrong lead matches: {:?}",
        &mismatched[..mismatched.len().min(5)]
    );
    assert_eq!(final_outcome, "succeeded");
    for (outcome, error) in &failed_runs {
        assert!(
            outcome == "succeeded" || error.is_some(),
            "a run ended {outcome} without a reason"
        );
    }
    assert_eq!(unprocessed, 0, "webhook events not processed");
    assert_eq!(running, 0, "jobs stuck in running");
    for (kind, error) in &discarded {
        assert!(
            kind == "crm_dispatch" || kind == "callyzer_reconcile_page",
            "a {kind} job was discarded: {error:?}"
        );
        assert!(
            error.is_some(),
            "a {kind} job was discarded without a reason"
        );
    }
    assert_eq!(
        events_stored, size.events as i64,
        "every ElevenLabs event stored once"
    );
    assert_eq!(analysed, size.events as i64, "every event analysed once");
    assert_eq!(double_ok, 0, "an event dispatched successfully twice");
    assert_eq!(
        dispatched_ok + failed_with_reason,
        size.events as i64,
        "every event dispatched once or recorded failed with its reason"
    );
    assert!(
        crm_answers.len() as i64 >= dispatched_ok,
        "the CRM saw fewer records than we recorded as sent"
    );

    let mut numbers: Vec<String> = (0..size.webhooks.min(500)).map(|n| client(n).0).collect();
    numbers.push("512345678".into());
    let number_refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    hygiene::assert_clean(
        &[
            ("PostgREST and Deno", stack.logs()),
            (
                "worker (all runs)",
                std::fs::read_to_string(&worker_log).unwrap_or_default(),
            ),
            (
                "Postgres server",
                std::fs::read_to_string(cluster.dir.join("server.log")).unwrap_or_default(),
            ),
        ],
        &[
            WEBHOOK_TOKEN,
            EL_SECRET,
            API_TOKEN,
            JWT_SECRET,
            &stack.service_key,
        ],
        &number_refs,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_webhooks_survive_five_kills_a_postgres_restart_and_flapping_apis() {
    run(Size {
        webhooks: 2_000,
        events: 100,
        kills: 5,
        restarts: 1,
        senders: 8,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long suite (about 15 min): scripts/soak.sh"]
async fn fifty_thousand_webhooks_survive_twenty_kills_two_postgres_restarts_and_flapping_apis() {
    run(Size {
        webhooks: 50_000,
        events: 1_000,
        kills: 20,
        restarts: 2,
        senders: 16,
    })
    .await;
}
