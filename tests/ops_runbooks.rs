//! Every runbook command (docs/runbooks.md) run as an operator would: the
//! `callsync` binary with DATABASE_URL of the owner role `postgres`. The worker
//! role may not run them.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// Runs `callsync <args>` as `role`; returns (success, stdout + stderr).
fn callsync(db: &TestDb, role: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_callsync"))
        .args(args)
        .env("DATABASE_URL", db.url(role))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn discarded_job(db: &TestDb, kind: &str) -> i64 {
    db.scalar(&format!(
        "insert into callsync.job (kind, state, attempt, max_attempts, last_error, attempted_at, finished_at)
         values ('{kind}', 'discarded', 3, 3, 'HTTP 503', now(), now()) returning id"
    ))
    .await
}

async fn state_of(db: &TestDb, id: i64) -> String {
    db.scalar(&format!(
        "select state::text from callsync.job where id = {id}"
    ))
    .await
}

#[tokio::test]
async fn retry_discarded_puts_discarded_jobs_of_a_kind_back_and_keeps_the_others() {
    let db = TestDb::new().await;
    let a = discarded_job(&db, "crm_dispatch").await;
    let b = discarded_job(&db, "crm_dispatch").await;
    let other = discarded_job(&db, "callyzer_delivery").await;

    let (ok, out) = callsync(
        &db,
        "callsync_worker",
        &["retry-discarded", "--kind", "crm_dispatch"],
    );
    assert!(
        !ok && out.contains("permission denied"),
        "the worker role may not: {out}"
    );

    let (ok, out) = callsync(
        &db,
        "postgres",
        &["retry-discarded", "--kind", "crm_dispatch"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("retried 2 discarded job(s)"), "{out}");
    assert_eq!(state_of(&db, a).await, "available");
    assert_eq!(state_of(&db, b).await, "available");
    assert_eq!(state_of(&db, other).await, "discarded");
    let attempts: i32 = db
        .scalar(&format!("select attempt from callsync.job where id = {a}"))
        .await;
    assert_eq!(attempts, 0, "attempts start again");

    let (ok, out) = callsync(
        &db,
        "postgres",
        &["retry-discarded", "--id", &other.to_string()],
    );
    assert!(
        ok && out.contains(&format!("job {other} is available again")),
        "{out}"
    );
    let (ok, out) = callsync(
        &db,
        "postgres",
        &["retry-discarded", "--id", &other.to_string()],
    );
    assert!(
        ok && out.contains("was not retried"),
        "a second retry changes nothing: {out}"
    );

    let old = discarded_job(&db, "noop").await;
    db.exec(&format!(
        "update callsync.job set finished_at = now() - interval '2 days' where id = {old}"
    ))
    .await;
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (ok, out) = callsync(&db, "postgres", &["retry-discarded", "--since", &since]);
    assert!(
        ok && out.contains("retried 0"),
        "only jobs discarded since then: {out}"
    );
}

#[tokio::test]
async fn replay_event_queues_a_stored_callyzer_delivery_again() {
    let db = TestDb::new().await;
    let event: i64 = db
        .scalar(
            "select (public.ingest_callyzer_webhook('[{\"emp_name\":\"Olga\",\"emp_number\":\"600100200\",\"call_logs\":[]}]') ->> 'event_id')::bigint",
        )
        .await;
    // processed once already (the original job is done)
    db.exec(&format!(
        "update callsync.job set state = 'completed', attempt = 1, attempted_at = now(), finished_at = now();
         update callsync.webhook_event set status = 'processed', processed_at = now() where id = {event}"
    ))
    .await;

    let (ok, out) = callsync(
        &db,
        "postgres",
        &["replay-event", "--id", &event.to_string()],
    );
    assert!(ok, "{out}");
    let job: i64 = db
        .scalar(&format!(
            "select id from callsync.job where kind = 'callyzer_delivery' and state = 'available'
             and args = jsonb_build_object('event_id', {event}::bigint)"
        ))
        .await;
    assert!(out.contains(&format!("queued again as job {job}")), "{out}");
    let status: String = db
        .scalar(&format!(
            "select status from callsync.webhook_event where id = {event}"
        ))
        .await;
    assert_eq!(status, "received");

    let (ok, out) = callsync(
        &db,
        "postgres",
        &["replay-event", "--id", &event.to_string()],
    );
    assert!(
        ok && out.contains("already queued"),
        "no second live replay: {out}"
    );
    let (ok, out) = callsync(&db, "postgres", &["replay-event", "--id", "999999"]);
    assert!(!ok && out.contains("does not exist"), "{out}");

    // and the worker processes the replay
    let w = RunningWorker::spawn(
        &db,
        callsync::jobs::Handlers::new().register(
            callsync::jobs::callyzer_delivery::KIND,
            callsync::jobs::callyzer_delivery::CallyzerDelivery::new(db.worker_pool.clone()),
        ),
        test_options("replay"),
    );
    wait_until(
        "the replayed delivery is processed",
        Duration::from_secs(30),
        || async {
            db.scalar::<String>(&format!(
                "select status from callsync.webhook_event where id = {event}"
            ))
            .await
                == "processed"
        },
    )
    .await;
    w.shutdown().await;
}

#[tokio::test]
async fn resend_crm_queues_a_dispatch_for_an_analysed_event() {
    let db = TestDb::new().await;
    let event: i64 = db
        .scalar(
            "insert into callsync.webhook_event (source, body, size_bytes) values ('elevenlabs', '{}', 2) returning id",
        )
        .await;
    let (ok, out) = callsync(
        &db,
        "postgres",
        &["resend-crm", "--event-id", &event.to_string()],
    );
    assert!(!ok && out.contains("has no analysis"), "{out}");

    db.exec(&format!(
        "insert into callsync.call_analysis (event_id, analyzer) values ({event}, 'event')"
    ))
    .await;
    let (ok, out) = callsync(
        &db,
        "postgres",
        &["resend-crm", "--event-id", &event.to_string(), "--force"],
    );
    assert!(ok, "{out}");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(answer["queued"], true);
    assert_eq!(answer["force"], true);
    let args: serde_json::Value = db
        .scalar(&format!(
            "select args from callsync.job where kind = 'crm_dispatch' and id = {}",
            answer["job_id"]
        ))
        .await;
    assert_eq!(args["force"], true);
    assert_eq!(
        args["requested_by"], "operator:postgres",
        "the operator is named"
    );
    let (ok, out) = callsync(
        &db,
        "postgres",
        &["resend-crm", "--event-id", &event.to_string()],
    );
    assert!(
        ok && out.contains("\"queued\":false"),
        "one live dispatch per event: {out}"
    );
}

#[tokio::test]
async fn pause_stops_claims_of_a_kind_and_resume_starts_them_again() {
    let db = TestDb::new().await;
    db.exec(
        "insert into callsync.job (kind, max_attempts) values ('crm_dispatch', 3), ('noop', 3)",
    )
    .await;
    let (ok, out) = callsync(&db, "postgres", &["pause", "--kind", "crm_dispatch"]);
    assert!(ok && out.contains("job kind crm_dispatch paused"), "{out}");
    let (ok, out) = callsync(&db, "postgres", &["pause", "--kind", "crm_dispatch"]);
    assert!(ok && out.contains("already was"), "{out}");

    let store = db.store();
    let claimed = store.claim("w", 10, Duration::from_secs(30)).await.unwrap();
    let kinds: Vec<&str> = claimed.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(kinds, ["noop"], "a paused kind is not claimed");

    let (ok, out) = callsync(&db, "postgres", &["resume", "--kind", "crm_dispatch"]);
    assert!(ok && out.contains("job kind crm_dispatch resumed"), "{out}");
    let claimed = store.claim("w", 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].kind, "crm_dispatch");

    let (ok, out) = callsync(&db, "callsync_worker", &["resume", "--kind", "noop"]);
    assert!(!ok && out.contains("permission denied"), "{out}");
}
