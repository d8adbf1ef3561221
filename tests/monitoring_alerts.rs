//! Monitoring on real parts: a real database running `callsync.run_monitor`
//! (what pg_cron calls every minute), a real worker sending `notify_admin`
//! jobs, and two fakes: a Slack-style incoming webhook and the Telegram Bot
//! API (`POST /bot<token>/sendMessage`). One incident is one message whatever
//! its length; recovery is one "resolved" message; a failing or hanging
//! channel is retried a bounded number of times while calls keep flowing.
#![allow(clippy::unwrap_used)]
mod common;

use callsync::jobs::notify_admin::{NotifyAdmin, NotifySettings};
use callsync::jobs::Handlers;
use callsync::secret::Secret;
use common::{insert_jobs, test_options, wait_until, Recorder, RunningWorker, TestDb};
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WAIT: Duration = Duration::from_secs(20);
const SLACK_PATH: &str = "/services/T000/B000/XXXX";
const BOT_TOKEN: &str = "123456:TEST-token";
const CHAT: &str = "-1001234567890";

/// The two fakes; each answers with `answer` (the last one repeats).
struct Fakes {
    slack: MockServer,
    telegram: MockServer,
}

impl Fakes {
    async fn start(slack: Vec<ResponseTemplate>, telegram: Vec<ResponseTemplate>) -> Fakes {
        let s = MockServer::start().await;
        mount(&s, SLACK_PATH, json!({}), slack).await;
        let t = MockServer::start().await;
        mount(
            &t,
            &format!("/bot{BOT_TOKEN}/sendMessage"),
            json!({"chat_id": CHAT}),
            telegram,
        )
        .await;
        Fakes {
            slack: s,
            telegram: t,
        }
    }

    fn settings(&self, timeout: Duration) -> NotifySettings {
        NotifySettings {
            slack_webhook_url: Some(Secret::new(
                url::Url::parse(&format!("{}{SLACK_PATH}", self.slack.uri())).unwrap(),
            )),
            telegram: Some(callsync::jobs::notify_admin::TelegramSettings {
                api_url: url::Url::parse(&self.telegram.uri()).unwrap(),
                bot_token: Secret::new(BOT_TOKEN.into()),
                chat_id: CHAT.into(),
            }),
            timeout,
            dashboard_url: None,
        }
    }

    /// The texts each fake received, in order.
    async fn texts(&self) -> (Vec<String>, Vec<String>) {
        let read = |reqs: Vec<wiremock::Request>| -> Vec<String> {
            reqs.iter()
                .map(|r| {
                    let v: Value = serde_json::from_slice(&r.body).unwrap();
                    v["text"].as_str().unwrap().to_string()
                })
                .collect()
        };
        (
            read(self.slack.received_requests().await.unwrap()),
            read(self.telegram.received_requests().await.unwrap()),
        )
    }
}

async fn mount(server: &MockServer, at: &str, body: Value, answers: Vec<ResponseTemplate>) {
    let n = answers.len();
    for (i, answer) in answers.into_iter().enumerate() {
        let mock = Mock::given(method("POST"))
            .and(path(at))
            .and(body_partial_json(body.clone()))
            .respond_with(answer);
        if i + 1 < n {
            mock.up_to_n_times(1).with_priority(1).mount(server).await;
        } else {
            mock.with_priority(2).mount(server).await;
        }
    }
}

fn slack_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string("ok")
}

fn telegram_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {"message_id": 1}}))
}

/// One monitoring check `minutes` from now; returns each alert kind's state.
async fn check(db: &TestDb, minutes: i32) -> Value {
    let client = db.pool.get().await.unwrap();
    let row = client
        .query_one(
            "select callsync.run_monitor(now() + make_interval(mins => $1)) -> 'alerts'",
            &[&minutes],
        )
        .await
        .unwrap();
    row.get(0)
}

async fn set(db: &TestDb, key: &str, value: &str) {
    let client = db.pool.get().await.unwrap();
    client
        .execute(
            "update callsync.setting set value = $2::text::jsonb where key = $1",
            &[&key, &value],
        )
        .await
        .unwrap();
}

/// Only the check under test: the others off, so they cannot add messages.
async fn only(db: &TestDb, keep: &str) {
    for key in [
        "monitor.backlog_max_jobs",
        "monitor.backlog_max_age_s",
        "monitor.processing_avg_max_ms",
        "monitor.processing_p95_max_ms",
        "monitor.errors_max",
    ] {
        if key != keep {
            set(db, key, "null").await;
        }
    }
}

async fn notify_jobs(db: &TestDb, state: &str) -> i64 {
    db.scalar(&format!(
        "select count(*) from callsync.job where kind = 'notify_admin' and state = '{state}'"
    ))
    .await
}

async fn messages_settle(db: &TestDb, fakes: &Fakes, expected: usize) {
    wait_until("notify jobs done", WAIT, || async {
        db.scalar::<i64>(
            "select count(*) from callsync.job where kind = 'notify_admin' and state not in ('completed', 'discarded')",
        )
        .await
            == 0
    })
    .await;
    wait_until("messages received", WAIT, || async {
        let (s, t) = fakes.texts().await;
        s.len() >= expected && t.len() >= expected
    })
    .await;
}

fn worker(db: &TestDb, settings: &NotifySettings) -> RunningWorker {
    let handlers = Handlers::new().register(
        callsync::jobs::notify_admin::KIND,
        NotifyAdmin::new(db.worker_pool.clone(), settings),
    );
    RunningWorker::spawn(db, handlers, test_options("monitor"))
}

#[tokio::test]
async fn a_backlog_above_the_threshold_sends_one_message_however_long_it_lasts_and_one_when_resolved(
) {
    let db = TestDb::new().await;
    only(&db, "monitor.backlog_max_jobs").await;
    set(&db, "monitor.backlog_max_jobs", "5").await;
    // a paused kind is a backlog nobody works off: the jobs stay available
    db.exec(
        "insert into callsync.job_kind (kind, paused) values ('callyzer_delivery', true) \
             on conflict (kind) do update set paused = true",
    )
    .await;
    insert_jobs(&db, "callyzer_delivery", 8, 10).await;
    let fakes = Fakes::start(vec![slack_ok()], vec![telegram_ok()]).await;
    let w = worker(&db, &fakes.settings(Duration::from_secs(5)));

    assert_eq!(check(&db, 0).await["webhook_backlog"], "opened");
    for minute in 1..=30 {
        assert_eq!(check(&db, minute).await["webhook_backlog"], "open");
    }
    messages_settle(&db, &fakes, 1).await;
    let (slack, telegram) = fakes.texts().await;
    assert_eq!(
        (slack.len(), telegram.len()),
        (1, 1),
        "{slack:?} {telegram:?}"
    );
    assert!(
        slack[0].contains("ALERT: zaległe webhooki") && slack[0].contains("Czeka 8"),
        "{}",
        slack[0]
    );
    assert!(slack[0].contains("próg 5"), "{}", slack[0]);
    assert_eq!(slack, telegram, "one text for every channel");
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.alert")
            .await,
        1
    );
    assert_eq!(
        db.scalar::<i32>("select repeats from callsync.alert").await,
        30,
        "the repeats are counted, not sent"
    );

    db.exec("select callsync.cancel_job(id) from callsync.job where kind = 'callyzer_delivery'")
        .await;
    assert_eq!(check(&db, 31).await["webhook_backlog"], "resolved");
    assert_eq!(check(&db, 32).await["webhook_backlog"], "ok");
    messages_settle(&db, &fakes, 2).await;
    let (slack, telegram) = fakes.texts().await;
    assert_eq!((slack.len(), telegram.len()), (2, 2));
    assert!(
        slack[1].starts_with("✅ ROZWIĄZANE: zaległe webhooki"),
        "{}",
        slack[1]
    );
    assert_eq!(notify_jobs(&db, "completed").await, 2);
    assert_eq!(
        db.scalar::<i64>("select count(*) from public.notification_log where status = 'sent'")
            .await,
        4,
        "two messages, two channels each, all recorded"
    );
    w.shutdown().await;
}

/// `n` completed webhook jobs that each ran `run_ms`, finished a minute ago.
async fn finished_jobs(db: &TestDb, n: i32, run_ms: f64) {
    let client = db.pool.get().await.unwrap();
    client
        .execute(
            "insert into callsync.job (kind, state, attempt, max_attempts, created_at, first_started_at, \
                                       attempted_at, finished_at) \
             select 'callyzer_delivery', 'completed', 1, 3, t - make_interval(secs => $2::float8 / 1000 + 1), \
                    t - make_interval(secs => $2::float8 / 1000), t - make_interval(secs => $2::float8 / 1000), t \
             from generate_series(1, $1) as g, lateral (select now() - interval '1 minute' as t) as x",
            &[&n, &run_ms],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn slow_processing_sends_one_message_while_it_lasts_and_one_when_it_is_over() {
    let db = TestDb::new().await;
    only(&db, "monitor.processing_p95_max_ms").await;
    finished_jobs(&db, 6, 90_000.0).await;
    let fakes = Fakes::start(vec![slack_ok()], vec![telegram_ok()]).await;
    let w = worker(&db, &fakes.settings(Duration::from_secs(5)));

    assert_eq!(check(&db, 0).await["slow_processing"], "opened");
    for minute in 1..=10 {
        assert_eq!(check(&db, minute).await["slow_processing"], "open");
    }
    messages_settle(&db, &fakes, 1).await;
    let (slack, _) = fakes.texts().await;
    assert_eq!(slack.len(), 1);
    assert!(
        slack[0].contains("ALERT: wolne przetwarzanie") && slack[0].contains("p95 1 min 30 s"),
        "{}",
        slack[0]
    );

    // 15 minutes later the slow jobs have left the window
    assert_eq!(check(&db, 16).await["slow_processing"], "resolved");
    assert_eq!(check(&db, 17).await["slow_processing"], "ok");
    messages_settle(&db, &fakes, 2).await;
    let (slack, telegram) = fakes.texts().await;
    assert_eq!((slack.len(), telegram.len()), (2, 2));
    assert!(
        slack[1].starts_with("✅ ROZWIĄZANE: wolne przetwarzanie"),
        "{}",
        slack[1]
    );
    w.shutdown().await;
}

#[tokio::test]
async fn failing_jobs_above_the_threshold_send_one_message_and_one_when_they_stop() {
    let db = TestDb::new().await;
    only(&db, "monitor.errors_max").await;
    set(&db, "monitor.errors_max", "3").await;
    let fakes = Fakes::start(vec![slack_ok()], vec![telegram_ok()]).await;
    let failing = Recorder {
        fail_with: Some((false, "CRM said no".into())),
        ..Recorder::default()
    };
    let handlers = Handlers::new()
        .register(
            callsync::jobs::notify_admin::KIND,
            NotifyAdmin::new(
                db.worker_pool.clone(),
                &fakes.settings(Duration::from_secs(5)),
            ),
        )
        .register("crm_dispatch", failing);
    let w = RunningWorker::spawn(&db, handlers, test_options("errors"));
    insert_jobs(&db, "crm_dispatch", 5, 100).await;
    wait_until("five failures logged", WAIT, || async {
        db.scalar::<i64>("select count(*) from callsync.job_error")
            .await
            == 5
    })
    .await;

    assert_eq!(check(&db, 0).await["job_errors"], "opened");
    assert_eq!(check(&db, 1).await["job_errors"], "open");
    assert_eq!(check(&db, 2).await["job_errors"], "open");
    messages_settle(&db, &fakes, 1).await;
    let (slack, _) = fakes.texts().await;
    assert_eq!(slack.len(), 1);
    assert!(
        slack[0].contains("5 nieudanych prób") && slack[0].contains("crm_dispatch 5"),
        "{}",
        slack[0]
    );
    assert_eq!(
        db.scalar::<i64>("select count(*) from public.error_log where kind = 'crm_dispatch' and outcome = 'permanent'")
            .await,
        5,
        "every failure is in the error log with its kind"
    );

    assert_eq!(check(&db, 20).await["job_errors"], "resolved");
    messages_settle(&db, &fakes, 2).await;
    let (slack, telegram) = fakes.texts().await;
    assert_eq!((slack.len(), telegram.len()), (2, 2));
    assert!(
        slack[1].starts_with("✅ ROZWIĄZANE: błędy zadań"),
        "{}",
        slack[1]
    );
    w.shutdown().await;
}

#[tokio::test]
async fn a_threshold_changed_in_the_settings_table_applies_at_the_next_check() {
    let db = TestDb::new().await;
    only(&db, "monitor.backlog_max_jobs").await;
    db.exec(
        "insert into callsync.job_kind (kind, paused) values ('callyzer_delivery', true) \
             on conflict (kind) do update set paused = true",
    )
    .await;
    insert_jobs(&db, "callyzer_delivery", 8, 10).await;

    assert_eq!(
        check(&db, 0).await["webhook_backlog"],
        "ok",
        "8 is under the default 100"
    );
    set(&db, "monitor.backlog_max_jobs", "5").await;
    assert_eq!(check(&db, 1).await["webhook_backlog"], "opened");
    set(&db, "monitor.backlog_max_jobs", "50").await;
    assert_eq!(check(&db, 2).await["webhook_backlog"], "resolved");
    set(&db, "monitor.backlog_max_jobs", "null").await;
    set(&db, "monitor.backlog_max_age_s", "0").await;
    let states = check(&db, 3).await;
    assert_eq!(states["webhook_backlog"], "ok", "null switches a check off");
    assert_eq!(
        states["webhook_stalled"], "opened",
        "any other threshold works the same way"
    );
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.job where kind = 'notify_admin'")
            .await,
        3,
        "opened, resolved, opened: one message each"
    );
}

#[tokio::test]
async fn a_failing_and_a_hanging_channel_are_retried_a_bounded_number_of_times_while_calls_keep_flowing(
) {
    let db = TestDb::new().await;
    // Slack answers 503 every time; Telegram never answers within the timeout
    let fakes = Fakes::start(
        vec![ResponseTemplate::new(503).set_body_string("down")],
        vec![telegram_ok().set_delay(Duration::from_secs(30))],
    )
    .await;
    let handlers = Handlers::new()
        .register(
            callsync::jobs::notify_admin::KIND,
            NotifyAdmin::new(
                db.worker_pool.clone(),
                &fakes.settings(Duration::from_secs(2)),
            ),
        )
        .register(
            callsync::jobs::callyzer_delivery::KIND,
            callsync::jobs::callyzer_delivery::CallyzerDelivery::new(db.worker_pool.clone()),
        );
    // a lease long enough that a loaded machine cannot make it expire mid-attempt
    let mut opts = test_options("channels");
    opts.lease = Duration::from_secs(60);
    let w = RunningWorker::spawn(&db, handlers, opts);
    db.exec("select callsync.raise_alert('callyzer_auth', 'Callyzer odrzuca klucz API (401).')")
        .await;

    for i in 0..3 {
        let body = json!([{"emp_code": "E1", "emp_country_code": "48", "emp_number": "600100200", "call_logs": [
            {"id": format!("c-{i}"), "client_number": "601202303", "duration": 30, "call_type": "Outgoing",
             "call_date": "2026-11-20", "call_time": "10:00:00", "modified_at": "2026-11-20 10:01:00"}]}]);
        let client = db.pool.get().await.unwrap();
        client
            .execute(
                "select public.ingest_callyzer_webhook($1)",
                &[&body.to_string()],
            )
            .await
            .unwrap();
    }
    wait_until("calls processed", WAIT, || async {
        db.scalar::<i64>("select count(*) from callsync.call").await == 3
    })
    .await;
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.webhook_event where status = 'processed'")
            .await,
        3
    );
    assert_eq!(
        notify_jobs(&db, "discarded").await + notify_jobs(&db, "completed").await,
        0,
        "calls were processed while the notification was still being tried"
    );

    wait_until("notification given up", Duration::from_secs(60), || async {
        notify_jobs(&db, "discarded").await == 1
    })
    .await;
    let attempts: i64 = db
        .scalar("select (callsync.setting_value('queue.max_attempts', '3') #>> '{}')::bigint")
        .await;
    assert_eq!(
        fakes.slack.received_requests().await.unwrap().len() as i64,
        attempts,
        "one POST per attempt, no more"
    );
    assert_eq!(
        db.scalar::<i64>("select count(*) from public.notification_log where channel = 'slack' and status = 'failed' and http_status = 503")
            .await,
        attempts
    );
    assert_eq!(
        db.scalar::<i64>("select count(*) from public.notification_log where channel = 'telegram' and status = 'failed' and error like 'timeout%'")
            .await,
        attempts,
        "the hanging channel is cut off by the timeout and logged"
    );
    assert!(
        db.scalar::<String>("select message from public.error_log where kind = 'notify_admin' and outcome = 'exhausted'")
            .await
            .contains("slack: HTTP 503"),
        "the given-up job is in the error log"
    );
    assert_eq!(
        db.scalar::<i64>("select count(*) from public.error_log where kind = 'notification'")
            .await,
        2 * attempts,
        "every failed delivery is visible to admins"
    );
    assert!(
        !db.scalar::<String>("select string_agg(error, ' ') from callsync.notification_delivery")
            .await
            .contains(BOT_TOKEN),
        "the bot token never reaches the log"
    );
    w.shutdown().await;
}

#[tokio::test]
async fn a_retry_sends_only_to_the_channel_that_failed() {
    let db = TestDb::new().await;
    let fakes = Fakes::start(
        vec![
            ResponseTemplate::new(500),
            ResponseTemplate::new(429),
            slack_ok(),
        ],
        vec![telegram_ok()],
    )
    .await;
    let w = worker(&db, &fakes.settings(Duration::from_secs(5)));
    db.exec("select callsync.raise_alert('callyzer_auth', 'Callyzer odrzuca klucz API (401).')")
        .await;
    wait_until("notification sent", WAIT, || async {
        notify_jobs(&db, "completed").await == 1
    })
    .await;
    let (slack, telegram) = fakes.texts().await;
    assert_eq!(slack.len(), 3, "two failures, then the message");
    assert_eq!(
        telegram.len(),
        1,
        "telegram took it the first time and was not asked again"
    );
    assert!(
        telegram[0].contains("ALERT: callyzer auth") && telegram[0].contains("401"),
        "{}",
        telegram[0]
    );
    w.shutdown().await;
}

#[tokio::test]
async fn a_reminder_cooldown_set_in_the_table_spaces_reminders_while_an_alert_stays_open() {
    let db = TestDb::new().await;
    only(&db, "monitor.backlog_max_jobs").await;
    set(&db, "monitor.backlog_max_jobs", "5").await;
    db.exec(
        "insert into callsync.job_kind (kind, paused) values ('callyzer_delivery', true) \
             on conflict (kind) do update set paused = true",
    )
    .await;
    insert_jobs(&db, "callyzer_delivery", 8, 10).await;
    let reminders = || async {
        db.scalar::<i64>(
            "select count(*) from callsync.job where kind = 'notify_admin' and args ->> 'event' = 'reminder'",
        )
        .await
    };

    assert_eq!(check(&db, 0).await["webhook_backlog"], "opened");
    for minute in 1..=30 {
        check(&db, minute).await;
    }
    assert_eq!(
        reminders().await,
        0,
        "off by default: one incident, one message"
    );

    set(&db, "alert.remind_after", "\"10 minutes\"").await;
    check(&db, 31).await;
    assert_eq!(
        reminders().await,
        1,
        "the first check after the change reminds"
    );
    for minute in 32..=40 {
        check(&db, minute).await;
    }
    assert_eq!(reminders().await, 1, "not again within 10 minutes");
    check(&db, 41).await;
    assert_eq!(reminders().await, 2, "again after 10 minutes");
    assert_eq!(
        db.scalar::<i32>("select reminders from callsync.alert")
            .await,
        2
    );
}
