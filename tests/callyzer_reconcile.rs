//! Issue 4 on real parts: a real database and worker, and a fake Callyzer API
//! (tests/fake_callyzer, following reference callyzer.md) with paging, 429 +
//! Retry-After, 401, 403, 400, 5xx, timeouts and malformed pages. Runs are
//! started as pg_cron would (`callsync.callyzer_reconcile_start()`).
//!
//! Only `requests_never_come_faster_than_one_per_two_seconds_with_two_workers`
//! keeps the production rate limit (2.5 s between claims); every other test
//! is about something else and sets the page kind's min_interval to zero and the
//! retry backoff to zero, so it does not wait out the limit.
#![allow(clippy::unwrap_used)]
mod common;
mod fake_callyzer;

use callsync::jobs::callyzer_api_settings::{register, CallyzerApiSettings};
use callsync::jobs::callyzer_delivery::{CallyzerDelivery, KIND as DELIVERY};
use callsync::jobs::Handlers;
use common::{test_options, wait_until, RunningWorker, TestDb};
use fake_callyzer::{api_row, webhook_body, FakeCallyzer, Fault, TOKEN};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const OLGA: (&str, &str, &str) = ("SALES-07", "48", "600100200");
const PIOTR: (&str, &str, &str) = ("SALES-08", "48", "600100201");

/// Two advisors synced two hours ago; 30 leads on numbers +48601000000..29
/// (the first number shared by an Olga lead and a Piotr lead: ambiguous).
const FIXTURE: &str = r#"
    insert into callsync.team (name) values ('Team A');
    insert into callsync.advisor (name, emp_code, country_code, phone_number, phone_e164, team_id, last_synced_at) values
        ('Olga',  'SALES-07', '48', '600100200', '+48600100200', 1, '2026-01-01T00:00:00Z'),
        ('Piotr', 'SALES-08', '48', '600100201', '+48600100201', 1, '2026-01-01T00:00:00Z');
    update callsync.advisor set last_synced_at = date_trunc('second', now()) - interval '2 hours';
    insert into callsync.lead (name, advisor_id, created_at)
        select 'Lead ' || g, 1 + g % 2, now() - make_interval(days => g) from generate_series(0, 29) as g;
    insert into callsync.lead (name, advisor_id) values ('Piotr twin of lead 0', 2);
    insert into callsync.lead_phone (lead_id, raw)
        select id, '+48 601 ' || lpad((id - 1)::text, 6, '0') from callsync.lead where id <= 30;
    insert into callsync.lead_phone (lead_id, raw) values (31, '601000000');
"#;

/// Tests that are not about the rate limit do not wait it out.
const FAST: &str = r#"
    update callsync.job_kind set min_interval = interval '0' where kind = 'callyzer_reconcile_page';
    update callsync.setting set value = '"0 seconds"' where key = 'callyzer.reconcile_retry_backoff';
"#;

struct Env {
    db: TestDb,
    api: FakeCallyzer,
    workers: Vec<RunningWorker>,
}

impl Env {
    async fn start(fast: bool, timeout_secs: u64) -> Env {
        let db = TestDb::new().await;
        db.exec(FIXTURE).await;
        if fast {
            db.exec(FAST).await;
        }
        let api = FakeCallyzer::start().await;
        let mut env = Env {
            db,
            api,
            workers: Vec::new(),
        };
        env.spawn_worker("w1", timeout_secs);
        env
    }

    fn handlers(&self, timeout_secs: u64) -> Handlers {
        let vars: HashMap<&str, String> = HashMap::from([
            ("CALLYZER_API_TOKEN", TOKEN.to_string()),
            ("CALLYZER_API_BASE_URL", self.api.base_url()),
            ("CALLYZER_API_TIMEOUT_SECS", timeout_secs.to_string()),
        ]);
        let settings = CallyzerApiSettings::from_lookup(&|k| vars.get(k).cloned()).unwrap();
        let handlers =
            Handlers::new().register(DELIVERY, CallyzerDelivery::new(self.db.worker_pool.clone()));
        register(handlers, &settings, &self.db.worker_pool)
    }

    fn spawn_worker(&mut self, id: &str, timeout_secs: u64) {
        let handlers = self.handlers(timeout_secs);
        self.workers
            .push(RunningWorker::spawn(&self.db, handlers, test_options(id)));
    }

    /// Starts a run as pg_cron does and waits for its end; returns its id.
    async fn reconcile(&self) -> i64 {
        let id: i64 = self
            .db
            .scalar("select callsync.callyzer_reconcile_start()")
            .await;
        self.wait_run(id).await;
        id
    }

    async fn wait_run(&self, id: i64) {
        let sql =
            format!("select outcome <> 'running' from callsync.callyzer_sync_run where id = {id}");
        wait_until("the run to finish", WAIT, || async {
            self.db.scalar::<bool>(&sql).await
        })
        .await;
        // and its last page job to be recorded (completed or discarded)
        wait_until("no live page job", WAIT, || async {
            self.db
                .scalar::<i64>(
                    "select count(*) from callsync.job where kind = 'callyzer_reconcile_page' \
                     and state in ('available', 'running', 'retryable')",
                )
                .await
                == 0
        })
        .await;
    }

    async fn log(&self, id: i64, column: &str) -> i64 {
        self.db
            .scalar::<i64>(&format!(
                "select {column}::bigint from public.callyzer_sync_log where id = {id}"
            ))
            .await
    }

    /// How run `id` ended (`callsync.callyzer_sync_run.outcome`).
    async fn outcome(&self, id: i64) -> String {
        self.text(&format!(
            "select outcome from callsync.callyzer_sync_run where id = {id}"
        ))
        .await
    }

    async fn text(&self, sql: &str) -> String {
        self.db
            .scalar::<Option<String>>(sql)
            .await
            .unwrap_or_default()
    }

    async fn cursors(&self) -> String {
        self.text("select string_agg(last_synced_at::text, ',' order by id) from callsync.advisor")
            .await
    }

    /// Delivers rows through the webhook path (ingest RPC, then the delivery job), 50 per delivery.
    async fn deliver_by_webhook(&self, rows: &[Value]) {
        let client = self.db.pool.get().await.unwrap();
        for chunk in rows.chunks(50) {
            client
                .execute(
                    "select public.ingest_callyzer_webhook($1)",
                    &[&webhook_body(chunk).to_string()],
                )
                .await
                .unwrap();
        }
        let expect = rows.len() as i64;
        wait_until("webhook deliveries applied", WAIT, || async {
            self.db
                .scalar::<i64>("select count(*) from callsync.call")
                .await
                >= expect
        })
        .await;
    }

    async fn stop(self) {
        for w in self.workers {
            w.shutdown().await;
        }
    }
}

/// `n` calls split between the two advisors, synced in the last hour, on 50
/// client numbers of which 30 belong to leads.
fn calls(n: usize) -> Vec<Value> {
    let now = chrono::Utc::now();
    (0..n)
        .map(|i| {
            let emp = if i % 2 == 0 { OLGA } else { PIOTR };
            api_row(
                &format!("cz-{i:05}"),
                emp,
                &format!("601{:06}", i % 50),
                now,
                60 + (i as i64 % 3000),
            )
        })
        .collect()
}

/// Everything a screen shows of the stored calls, in one comparable text.
const SNAPSHOT: &str = r#"
    select string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s|%s', c.id, c.lead_id, c.lead_match_ambiguous, c.client_e164,
                             c.call_type_label, c.called_at, a.emp_code, c.duration_s, c.modified_at), E'\n' order by c.id)
           || E'\nunmatched:' || coalesce((select string_agg(u.call_id, ',' order by u.call_id) from callsync.unmatched_call as u), '')
    from callsync.call as c left join callsync.advisor as a on a.id = c.advisor_id
"#;

#[tokio::test]
async fn one_reconciliation_stores_the_calls_webhooks_lost_once_each_and_matched_as_the_webhook_path_would(
) {
    let all = calls(1000);
    // a random 20% never arrive by webhook
    let mut rng = fastrand::Rng::with_seed(4);
    let mut lost: Vec<usize> = (0..all.len()).collect();
    rng.shuffle(&mut lost);
    lost.truncate(200);
    let delivered: Vec<Value> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !lost.contains(i))
        .map(|(_, r)| r.clone())
        .collect();

    // control: the same 1,000 calls, every one delivered by webhook
    let control = Env::start(true, 5).await;
    control.deliver_by_webhook(&all).await;
    let expected = control.text(SNAPSHOT).await;
    control.stop().await;

    let env = Env::start(true, 5).await;
    env.api.add(&all);
    env.deliver_by_webhook(&delivered).await;
    assert_eq!(
        env.db
            .scalar::<i64>("select count(*) from callsync.call")
            .await,
        800
    );
    let run = env.reconcile().await;

    assert_eq!(env.outcome(run).await, "succeeded");
    assert_eq!(
        env.db
            .scalar::<i64>("select count(*) from callsync.call")
            .await,
        1000
    );
    assert_eq!(env.log(run, "pages").await, 10);
    assert_eq!(env.log(run, "fetched").await, 1000);
    assert_eq!(env.log(run, "new").await, 200, "the lost ones");
    assert_eq!(env.log(run, "skipped").await, 800, "stored and unchanged");
    assert_eq!(env.log(run, "updated").await, 0);
    assert_eq!(
        env.db
            .scalar::<i64>("select count(*) from callsync.call where source = 'api'")
            .await,
        200
    );
    assert_eq!(
        env.text(SNAPSHOT).await,
        expected,
        "matched as the webhook path would"
    );
    assert!(
        env.db
            .scalar::<i64>("select count(*) from callsync.call where lead_id is not null")
            .await
            > 500
    );
    // the cursor moved to the window end for both advisors
    assert_eq!(
        env.db
            .scalar::<i64>(&format!(
                "select count(*) from callsync.advisor as a join callsync.callyzer_sync_run as r on r.id = {run} \
                 where a.last_synced_at = r.window_to"
            ))
            .await,
        2
    );
    // the API was asked for both numbers, in CC-NUMBER form, over cursor − 1 day .. now
    let seen = env.api.seen();
    assert_eq!(seen.len(), 10);
    let span = seen[0].synced_to - seen[0].synced_from;
    // advisors synced 2 h before the fixture ran, a 1-day buffer, up to the start of the run
    assert!((26 * 3600..=26 * 3600 + 600).contains(&span), "{span}");
    env.stop().await;
}

async fn auth_failure(status: u16, message: &'static str) {
    let env = Env::start(true, 5).await;
    env.api.add(&calls(300));
    env.api.fail_always(Some(Fault::Status(status, message)));
    let before = env.cursors().await;
    let run = env.reconcile().await;

    assert_eq!(env.outcome(run).await, "failed");
    let error = env
        .text(&format!(
            "select error from callsync.callyzer_sync_run where id = {run}"
        ))
        .await;
    assert!(
        error.contains(&status.to_string()) && error.contains(message),
        "{error}"
    );
    assert_eq!(env.api.seen().len(), 1, "no retry");
    assert_eq!(
        env.db
            .scalar::<i64>(
                "select count(*) from callsync.job where kind = 'callyzer_reconcile_page'"
            )
            .await,
        1
    );
    assert_eq!(
        env.db
            .scalar::<i64>(
                "select count(*) from callsync.alert where kind = 'callyzer_auth' and resolved_at is null"
            )
            .await,
        1,
        "admin alerted"
    );
    assert_eq!(
        env.db
            .scalar::<i64>("select count(*) from callsync.job where kind = 'notify_admin'")
            .await,
        1
    );
    assert_eq!(env.cursors().await, before, "cursor unchanged");
    assert_eq!(
        env.db
            .scalar::<i64>("select count(*) from callsync.call")
            .await,
        0
    );

    // the token is fixed: the next run succeeds and closes the incident
    env.api.fail_always(None);
    let next = env.reconcile().await;
    assert_eq!(env.log(next, "new").await, 300);
    assert_eq!(
        env.db
            .scalar::<i64>(
                "select count(*) from callsync.alert where kind = 'callyzer_auth' and resolved_at is null"
            )
            .await,
        0
    );
    env.stop().await;
}

#[tokio::test]
async fn a_401_fails_the_run_raises_an_alert_and_is_not_retried() {
    auth_failure(401, "Invalid token").await;
}

#[tokio::test]
async fn a_403_fails_the_run_raises_an_alert_and_is_not_retried() {
    auth_failure(403, "API subscription expired").await;
}

#[tokio::test]
async fn a_timeout_is_retried_at_most_three_times_then_the_run_fails() {
    let env = Env::start(true, 1).await;
    env.api.add(&calls(300));
    env.api
        .fail_page(1, vec![Fault::Delay(Duration::from_secs(3)); 10]);
    let before = env.cursors().await;
    let run = env.reconcile().await;

    assert_eq!(env.outcome(run).await, "failed");
    assert_eq!(env.api.seen().len(), 4, "the request and 3 retries");
    assert_eq!(env.log(run, "retries").await, 3);
    let error = env
        .text(&format!(
            "select error from callsync.callyzer_sync_run where id = {run}"
        ))
        .await;
    assert!(
        error.contains("after 3 retries") && error.contains("timeout"),
        "{error}"
    );
    assert_eq!(env.cursors().await, before, "cursor unchanged");
    env.stop().await;
}

#[tokio::test]
async fn a_429_fetches_the_same_page_again_after_retry_after() {
    let env = Env::start(true, 5).await;
    env.api.add(&calls(300));
    env.api
        .fail_page(2, vec![Fault::RateLimit(Some("1".into()))]);
    let run = env.reconcile().await;

    assert_eq!(env.log(run, "rate_limited").await, 1);
    assert_eq!(env.log(run, "new").await, 300);
    let seen = env.api.seen();
    let pages: Vec<i64> = seen.iter().map(|s| s.page_no).collect();
    assert_eq!(pages, vec![1, 2, 2, 3]);
    assert_eq!(seen[1].status, 429);
    let waited = seen[2].at - seen[1].at;
    assert!(
        waited >= Duration::from_secs(1),
        "asked again after {waited:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_failure_on_page_7_of_10_is_repaired_by_the_next_run() {
    let env = Env::start(true, 5).await;
    env.api.add(&calls(1000));
    // page 7 answers 500 four times: the request and its 3 retries
    env.api
        .fail_page(7, vec![Fault::Status(500, "Internal Server Error"); 4]);
    let before = env.cursors().await;
    let first = env.reconcile().await;
    assert_eq!(env.outcome(first).await, "failed");
    assert_eq!(env.log(first, "pages").await, 6);
    assert_eq!(
        env.db
            .scalar::<i64>("select count(*) from callsync.call")
            .await,
        600
    );
    assert_eq!(
        env.cursors().await,
        before,
        "a failed run leaves the cursor"
    );

    let second = env.reconcile().await;
    assert_eq!(env.outcome(second).await, "succeeded");
    let (from1, from2) = (
        env.text(&format!(
            "select window_from::text from callsync.callyzer_sync_run where id = {first}"
        ))
        .await,
        env.text(&format!(
            "select window_from::text from callsync.callyzer_sync_run where id = {second}"
        ))
        .await,
    );
    assert_eq!(from1, from2, "the next run repeats the window");
    assert_eq!(env.log(second, "fetched").await, 1000);
    assert_eq!(env.log(second, "new").await, 400);
    assert_eq!(env.log(second, "skipped").await, 600);
    assert_eq!(
        env.db
            .scalar::<i64>("select count(*) from callsync.call")
            .await,
        1000,
        "every call once"
    );
    assert_ne!(env.cursors().await, before);
    env.stop().await;
}

#[tokio::test]
async fn a_5xx_and_a_cut_off_page_are_retried_and_the_run_still_succeeds() {
    let env = Env::start(true, 5).await;
    env.api.add(&calls(250));
    env.api.fail_page(
        1,
        vec![Fault::Status(503, "Service Unavailable"), Fault::Truncated],
    );
    let run = env.reconcile().await;
    assert_eq!(env.outcome(run).await, "succeeded");
    assert_eq!(env.log(run, "retries").await, 2);
    assert_eq!(env.log(run, "new").await, 250);
    assert_eq!(env.api.seen().len(), 5);
    env.stop().await;
}

#[tokio::test]
async fn a_400_and_a_malformed_page_fail_the_run_with_the_reason_and_no_retry() {
    let env = Env::start(true, 5).await;
    env.api.add(&calls(150));
    let before = env.cursors().await;

    env.api.fail_page(
        1,
        vec![Fault::Status(400, "call_types contains an unknown type")],
    );
    let first = env.reconcile().await;
    let error = env
        .text(&format!(
            "select error from callsync.callyzer_sync_run where id = {first}"
        ))
        .await;
    assert!(
        error.contains("HTTP 400") && error.contains("unknown type"),
        "{error}"
    );
    assert_eq!(env.api.seen().len(), 1);

    env.api.fail_page(2, vec![Fault::Malformed]);
    let second = env.reconcile().await;
    let error = env
        .text(&format!(
            "select error from callsync.callyzer_sync_run where id = {second}"
        ))
        .await;
    assert!(error.contains("malformed page"), "{error}");
    assert_eq!(env.api.seen().len(), 3, "page 1, then page 2 once");
    assert_eq!(env.log(second, "pages").await, 1);
    assert_eq!(env.cursors().await, before);
    assert_eq!(
        env.db
            .scalar::<i64>("select count(*) from callsync.alert where kind = 'callyzer_auth'")
            .await,
        0,
        "not an auth problem"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_chosen_window_over_180_days_is_chunked_and_leaves_the_cursor() {
    let env = Env::start(true, 5).await;
    let now = chrono::Utc::now();
    env.api.add(&[
        api_row("cz-old", OLGA, "601000001", now, 390 * 86_400),
        api_row("cz-mid", PIOTR, "601000002", now, 200 * 86_400),
        api_row("cz-new", OLGA, "601000099", now, 10 * 86_400),
    ]);
    let before = env.cursors().await;
    let run = callsync::jobs::callyzer_reconcile::start_run(
        &env.db.worker_pool,
        Some(now - chrono::Duration::days(400)),
        Some(now),
    )
    .await
    .unwrap()
    .unwrap();
    env.wait_run(run).await;

    assert_eq!(env.outcome(run).await, "succeeded");
    assert_eq!(env.log(run, "chunks").await, 3);
    let seen = env.api.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|s| s.status == 200 && s.synced_to - s.synced_from < 180 * 86_400));
    assert_eq!(
        env.db
            .scalar::<i64>("select count(*) from callsync.call")
            .await,
        3
    );
    assert_eq!(
        env.cursors().await,
        before,
        "a chosen window never moves the cursor"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_page_job_that_runs_again_changes_nothing_and_runs_never_overlap() {
    let env = Env::start(true, 5).await;
    env.api.add(&calls(120));
    let run = env.reconcile().await;
    assert_eq!(env.api.seen().len(), 2);

    // a page job of a finished run (as after a lost lease): no request, no change
    env.db
        .exec(&format!(
            "select callsync.enqueue('callyzer_reconcile_page', '{{\"run_id\": {run}, \"chunk\": 0, \"page\": 1}}')"
        ))
        .await;
    env.wait_run(run).await;
    assert_eq!(env.api.seen().len(), 2);
    assert_eq!(env.log(run, "pages").await, 2);

    // while a run is going, a second start is refused
    env.api
        .fail_page(1, vec![Fault::Delay(Duration::from_secs(2))]);
    let next: i64 = env
        .db
        .scalar("select callsync.callyzer_reconcile_start()")
        .await;
    assert_eq!(
        env.db
            .scalar::<Option<i64>>("select callsync.callyzer_reconcile_start()")
            .await,
        None
    );
    env.wait_run(next).await;
    env.stop().await;
}

#[tokio::test]
async fn requests_never_come_faster_than_one_per_two_seconds_with_two_workers() {
    // the production limit (min_interval 2.5 s); only the retry backoff is zeroed
    let mut env = Env::start(false, 5).await;
    env.db
        .exec("update callsync.setting set value = '\"0 seconds\"' where key = 'callyzer.reconcile_retry_backoff'")
        .await;
    env.spawn_worker("w2", 5);
    env.api.add(&calls(300));
    env.api
        .fail_page(2, vec![Fault::Status(503, "Service Unavailable")]);
    env.api
        .fail_page(3, vec![Fault::RateLimit(Some("0".into()))]);
    let run = env.reconcile().await;
    assert_eq!(env.log(run, "new").await, 300);

    let seen = env.api.seen();
    assert_eq!(seen.len(), 5, "pages 1, 2, 2, 3, 3");
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].at - w[0].at).collect();
    let claims = env
        .text(
            "select string_agg(format('%s@%s', leased_by, to_char(attempted_at, 'MI:SS.MS')), ' ' order by attempted_at) \
             from callsync.job where kind = 'callyzer_reconcile_page'",
        )
        .await;
    eprintln!("claims: {claims}");
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_secs(2)),
        "gaps between requests: {gaps:?}"
    );
    let leased_by: i64 = env
        .db
        .scalar("select count(distinct leased_by) from callsync.job where kind = 'callyzer_reconcile_page'")
        .await;
    eprintln!("request gaps {gaps:?}; page jobs ran on {leased_by} worker(s)");
    env.stop().await;
}

/// The worker binary as its own process (`kill -9` needs one), on the fake API,
/// with a 2 s lease so a killed worker's page job is rescued quickly.
fn spawn_worker_process(env: &Env, id: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_callsync"))
        .arg("worker")
        .env("DATABASE_URL", env.db.url("callsync_worker"))
        .env("WORKER_ID", id)
        .env("WORKER_LEASE_SECS", "2")
        .env("WORKER_POLL_INTERVAL_MS", "200")
        .env("RUST_LOG", "warn")
        .env("CALLYZER_API_TOKEN", TOKEN)
        .env("CALLYZER_API_BASE_URL", env.api.base_url())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the worker binary")
}

#[tokio::test]
async fn a_worker_killed_at_any_point_of_a_burst_loses_no_page_and_counts_no_call_twice() {
    // no in-process worker: the binary is what gets killed
    let db = TestDb::new().await;
    db.exec(FIXTURE).await;
    db.exec(FAST).await;
    // small batches, two side by side: commits out of order, and many moments to die in
    db.exec(
        "update callsync.setting set value = '3' where key = 'callyzer.reconcile_batch_pages';
         update callsync.setting set value = '2' where key = 'callyzer.reconcile_parallel_applies';",
    )
    .await;
    let env = Env {
        db,
        api: FakeCallyzer::start().await,
        workers: Vec::new(),
    };
    env.api.add(&calls(4000));
    // 40 pages, each answered after 40 ms: the run lasts long enough to be killed in
    for page in 1..=40 {
        env.api
            .fail_page(page, vec![Fault::Delay(Duration::from_millis(40))]);
    }
    let before = env.cursors().await;
    let mut worker = spawn_worker_process(&env, "k0");
    let run: i64 = env
        .db
        .scalar("select callsync.callyzer_reconcile_start()")
        .await;
    let pages = format!("select pages::bigint from callsync.callyzer_sync_run where id = {run}");
    let mut rng = fastrand::Rng::with_seed(9);
    for kill in 1..=3 {
        wait_until("pages applied before the next kill", WAIT, || async {
            env.db.scalar::<i64>(&pages).await >= kill * 9
        })
        .await;
        // not a wait for work: a random moment to die at (between requests,
        // mid-request, mid-apply or mid-commit)
        tokio::time::sleep(Duration::from_millis(rng.u64(0..60))).await;
        worker.kill().unwrap(); // SIGKILL
        worker.wait().unwrap();
        worker = spawn_worker_process(&env, &format!("k{kill}"));
    }
    env.wait_run(run).await;
    worker.kill().unwrap();
    worker.wait().unwrap();

    assert_eq!(
        env.text(&format!(
            "select outcome || coalesce(': ' || error, '') from callsync.callyzer_sync_run where id = {run}"
        ))
        .await,
        "succeeded"
    );
    assert_eq!(
        env.db
            .scalar::<i64>("select count(*) from callsync.call")
            .await,
        4000,
        "every call, once"
    );
    // each page counted exactly once: what a killed attempt had not committed was read again
    assert_eq!(env.log(run, "pages").await, 40);
    assert_eq!(env.log(run, "fetched").await, 4000);
    assert_eq!(env.log(run, "new").await, 4000);
    assert_eq!(env.log(run, "skipped").await, 0);
    assert!(
        env.db
            .scalar::<i64>(
                "select max(attempt)::bigint from callsync.job where kind = 'callyzer_reconcile_page'"
            )
            .await
            >= 2,
        "the killed burst's job was rescued and went on"
    );
    assert_ne!(
        env.cursors().await,
        before,
        "the cursor moved after the run"
    );
}

#[tokio::test]
async fn a_rate_limit_set_during_a_burst_stops_it_and_the_run_goes_on_one_request_per_claim() {
    // the default batches (10 pages, 2 side by side): the burst must not wait for
    // a batch to learn of the limit
    let env = Env::start(true, 5).await;
    env.api.add(&calls(1000));
    for page in 1..=10 {
        env.api
            .fail_page(page, vec![Fault::Delay(Duration::from_millis(100))]);
    }
    let run: i64 = env
        .db
        .scalar("select callsync.callyzer_reconcile_start()")
        .await;
    // mid-fetch: the first batch (10 pages) is not even complete
    wait_until("a burst under way", WAIT, || async {
        env.api.seen().len() >= 3
    })
    .await;
    env.db
        .exec("update callsync.job_kind set min_interval = interval '1 second' where kind = 'callyzer_reconcile_page'")
        .await;
    let limited_at = std::time::Instant::now();
    env.wait_run(run).await;

    assert_eq!(env.outcome(run).await, "succeeded");
    assert_eq!(env.log(run, "new").await, 1000);
    assert_eq!(env.log(run, "pages").await, 10);
    let seen = env.api.seen();
    assert_eq!(
        seen.len(),
        10,
        "no page asked twice: fetched pages are applied, not dropped"
    );
    assert!(
        env.db
            .scalar::<i64>(
                "select count(*) from callsync.job where kind = 'callyzer_reconcile_page' and args ->> 'burst' = 'false'"
            )
            .await
            >= 1,
        "the run went on in rate-limited page jobs"
    );
    // The burst asks every 100 ms whether it may go on: the request already on
    // its way, and one more sent before the next check, may still come quickly;
    // every later one waits the interval.
    let after: Vec<_> = seen.iter().filter(|s| s.at > limited_at).collect();
    let gaps: Vec<Duration> = after.windows(2).map(|w| w[1].at - w[0].at).collect();
    let quick = gaps.iter().filter(|g| **g < Duration::from_secs(1)).count();
    assert!(quick <= 2, "gaps after the limit was set: {gaps:?}");
    assert!(
        gaps.iter().skip(2).all(|g| *g >= Duration::from_secs(1)),
        "gaps after the limit was set: {gaps:?}"
    );
}
