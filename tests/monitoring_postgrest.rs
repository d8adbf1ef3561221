//! Reports and logs through the real PostgREST, as the screens read them: an
//! admin reads any past day's report, the error log and the sync log filtered
//! by day, source and kind, and can rebuild a missed day; a signed-in user who
//! is not an admin gets empty lists, anon gets nothing.
#![allow(clippy::unwrap_used)]
mod common;

use common::stack::Stack;
use common::TestDb;
use serde_json::{json, Value};

const ADMIN: &str = "00000000-0000-4000-8000-00000000a001";
const USER: &str = "00000000-0000-4000-8000-00000000a002";

async fn get(stack: &Stack, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = stack
        .http
        .get(format!("{}/{path}", stack.rest_url))
        .header("apikey", &stack.anon_key);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn admins_read_reports_and_logs_by_day_source_and_kind_through_postgrest() {
    let db = TestDb::new().await;
    db.exec(&format!(
        "insert into callsync.app_user (user_id, role) values ('{ADMIN}', 'admin');
         -- 2026-11-19 in Warsaw: a delivery, two refusals, a failed job attempt
         insert into callsync.webhook_event (source, body, size_bytes, received_at)
             values ('callyzer', '[]', 2, '2026-11-19 09:00+01');
         insert into callsync.webhook_rejection (source, reason, status_code, received_at) values
             ('callyzer', 'bad_secret', 401, '2026-11-19 10:00+01'),
             ('elevenlabs', 'bad_signature', 401, '2026-11-19 11:00+01');
         insert into callsync.job (kind, state, attempt, max_attempts, created_at, first_started_at, attempted_at,
                                   leased_by, lease_id, lease_expires_at)
             values ('crm_dispatch', 'running', 1, 5, '2026-11-19 12:00+01', '2026-11-19 12:00:01+01',
                     '2026-11-19 12:00:01+01', 'w', gen_random_uuid(), '2026-11-19 12:01+01');
         update callsync.job set state = 'retryable', lease_id = null, lease_expires_at = null,
             last_error = 'HTTP 503', updated_at = '2026-11-19 12:00:02+01', run_at = '2026-11-19 12:01+01';
         select callsync.run_daily_report_if_due('2026-11-20 00:05+01');"
    ))
    .await;
    let stack = Stack::start(db, &[]).await;
    let admin = stack.user_token(ADMIN);
    let user = stack.user_token(USER);

    let (status, reports) = get(&stack, "daily_reports?day=eq.2026-11-19", Some(&admin)).await;
    assert_eq!(status, 200, "{reports}");
    assert_eq!(reports.as_array().unwrap().len(), 1, "{reports}");
    let r = &reports[0];
    assert_eq!(r["webhooks_received"], 1);
    assert_eq!(r["webhooks_rejected"], 2);
    assert_eq!(r["job_errors"], 1);
    assert_eq!(r["by_source"]["elevenlabs"]["rejected"], 1);

    let (_, errors) = get(
        &stack,
        "error_log?day=eq.2026-11-19&source=eq.callyzer&kind=eq.webhook_rejected",
        Some(&admin),
    )
    .await;
    assert_eq!(errors.as_array().unwrap().len(), 1, "{errors}");
    assert_eq!(errors[0]["outcome"], "bad_secret");
    let (_, errors) = get(
        &stack,
        "error_log?day=eq.2026-11-19&kind=eq.crm_dispatch",
        Some(&admin),
    )
    .await;
    assert_eq!(errors[0]["message"], "HTTP 503", "{errors}");
    assert_eq!(errors[0]["source"], "bpmsoft");
    let (_, syncs) = get(
        &stack,
        "sync_log?day=eq.2026-11-19&kind=eq.webhook",
        Some(&admin),
    )
    .await;
    assert_eq!(syncs.as_array().unwrap().len(), 1, "{syncs}");

    let rebuilt = stack
        .http
        .post(format!("{}/rpc/build_daily_report", stack.rest_url))
        .header("apikey", &stack.anon_key)
        .bearer_auth(&admin)
        .json(&json!({"p_day": "2026-11-18"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rebuilt.status().as_u16(), 200);
    let (_, reports) = get(
        &stack,
        "daily_reports?day=gte.2026-11-01&order=day",
        Some(&admin),
    )
    .await;
    assert_eq!(
        reports.as_array().unwrap().len(),
        2,
        "a missed day can be added: {reports}"
    );

    for path in [
        "daily_reports",
        "error_log",
        "sync_log",
        "alerts",
        "notification_log",
        "monitor_checks",
    ] {
        let (status, rows) = get(&stack, path, Some(&user)).await;
        assert_eq!(
            (status, rows.clone()),
            (200, json!([])),
            "{path} for a non-admin"
        );
        let (status, _) = get(&stack, path, None).await;
        assert!(status == 401 || status == 403, "{path} for anon: {status}");
    }
    let refused = stack
        .http
        .post(format!("{}/rpc/build_daily_report", stack.rest_url))
        .header("apikey", &stack.anon_key)
        .bearer_auth(&user)
        .json(&json!({"p_day": "2026-11-17"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status().as_u16(),
        403,
        "only admins rebuild reports"
    );
}
