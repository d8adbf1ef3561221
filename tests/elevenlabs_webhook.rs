//! The elevenlabs-webhook and crm-api Edge Functions through the real stack
//! (Deno, PostgREST, PostgreSQL). Signatures are computed here with the hmac
//! crate, independently of the function's WebCrypto code.
#![allow(clippy::unwrap_used)]
mod common;

use common::stack::{Stack, JWT_SECRET};
use common::TestDb;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &str = "whsec_test_current";
const PREVIOUS: &str = "whsec_test_previous";

fn body(conv: &str) -> String {
    json!({
        "type": "post_call_transcription",
        "event_timestamp": chrono::Utc::now().timestamp(),
        "data": {
            "agent_id": "agent_01demo7x", "conversation_id": conv, "status": "done",
            "transcript": [{"role": "user", "message": "Хочу записаться на курс Python.", "time_in_call_secs": 4}],
            "metadata": {"phone_call": {"type": "sip_trunking", "direction": "inbound",
                "external_number": "+375291234567"}},
            "analysis": {"call_successful": "success", "transcript_summary": "Wants Python."}
        }
    })
    .to_string()
}

fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v0={}", hex::encode(mac.finalize().into_bytes()))
}

async fn stack() -> Stack {
    Stack::start(
        TestDb::new().await,
        &[
            ("ELEVENLABS_WEBHOOK_SECRET", SECRET),
            ("ELEVENLABS_WEBHOOK_SECRET_PREVIOUS", PREVIOUS),
        ],
    )
    .await
}

async fn post(stack: &Stack, sig: Option<String>, body: &str) -> reqwest::Response {
    let mut req = stack
        .http
        .post(format!("{}/elevenlabs-webhook", stack.functions_url))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(sig) = sig {
        req = req.header("ElevenLabs-Signature", sig);
    }
    req.send().await.unwrap()
}

async fn count(stack: &Stack, sql: &str) -> i64 {
    stack.db.scalar(sql).await
}

/// A refused request: 401, its reason logged, no event and no job.
async fn assert_refused(stack: &Stack, res: reqwest::Response, reason: &str) {
    assert_eq!(res.status(), 401);
    let logged: i64 = count(
        stack,
        &format!(
            "select count(*) from callsync.webhook_rejection \
             where source = 'elevenlabs' and reason = '{reason}' and status_code = 401"
        ),
    )
    .await;
    assert_eq!(logged, 1, "the refusal is logged with reason {reason}");
    assert_eq!(
        count(stack, "select count(*) from callsync.webhook_event").await,
        0
    );
    assert_eq!(
        count(stack, "select count(*) from callsync.job").await,
        0,
        "nothing is enqueued"
    );
    assert!(
        !stack.logs().contains(SECRET),
        "the secret never reaches a log"
    );
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_correctly_signed_transcription_is_stored_and_its_analysis_queued() {
    let stack = stack().await;
    let b = body("conv_sig_ok");
    let res = post(&stack, Some(signature(SECRET, now(), &b)), &b).await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["received"], true);

    let c = stack.db.pool.get().await.unwrap();
    let r = c
        .query_one(
            "select e.source, e.dedupe_key, x.conversation_id, x.agent_id, j.kind, j.state::text \
             from callsync.webhook_event e join callsync.elevenlabs_event x on x.webhook_event_id = e.id \
             join callsync.job j on j.id = e.job_id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "elevenlabs");
    assert_eq!(r.get::<_, String>(1), "post_call_transcription:conv_sig_ok");
    assert_eq!(r.get::<_, String>(2), "conv_sig_ok");
    assert_eq!(r.get::<_, String>(3), "agent_01demo7x");
    assert_eq!(r.get::<_, String>(4), "elevenlabs_analysis");
    assert_eq!(r.get::<_, String>(5), "available");
}

#[tokio::test]
async fn the_previous_secret_is_accepted_during_a_rotation() {
    let stack = stack().await;
    let b = body("conv_rotation");
    let res = post(&stack, Some(signature(PREVIOUS, now(), &b)), &b).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_wrong_secret_is_refused() {
    let stack = stack().await;
    let b = body("conv_wrong");
    let res = post(&stack, Some(signature("whsec_someone_else", now(), &b)), &b).await;
    assert_refused(&stack, res, "bad_signature").await;
}

#[tokio::test]
async fn a_timestamp_older_than_thirty_minutes_is_refused() {
    let stack = stack().await;
    let b = body("conv_stale");
    let res = post(&stack, Some(signature(SECRET, now() - 31 * 60, &b)), &b).await;
    assert_refused(&stack, res, "stale_timestamp").await;
}

#[tokio::test]
async fn a_timestamp_more_than_five_minutes_ahead_is_refused() {
    let stack = stack().await;
    let b = body("conv_future");
    let res = post(&stack, Some(signature(SECRET, now() + 10 * 60, &b)), &b).await;
    assert_refused(&stack, res, "future_timestamp").await;
}

#[tokio::test]
async fn a_tampered_body_is_refused() {
    let stack = stack().await;
    let b = body("conv_tamper");
    let sig = signature(SECRET, now(), &b);
    let res = post(&stack, Some(sig), &b.replace("conv_tamper", "conv_evil")).await;
    assert_refused(&stack, res, "bad_signature").await;
}

#[tokio::test]
async fn a_request_without_the_signature_header_is_refused() {
    let stack = stack().await;
    let res = post(&stack, None, &body("conv_nosig")).await;
    assert_refused(&stack, res, "missing_signature").await;
}

#[tokio::test]
async fn other_event_types_are_stored_and_acknowledged_without_analysis() {
    let stack = stack().await;
    let b = json!({"type": "call_initiation_failure", "event_timestamp": now(),
        "data": {"agent_id": "a1", "conversation_id": "conv_fail", "failure_reason": "busy"}})
    .to_string();
    let res = post(&stack, Some(signature(SECRET, now(), &b)), &b).await;
    assert_eq!(res.status(), 200);
    let status: String = stack
        .db
        .scalar("select status from callsync.webhook_event")
        .await;
    assert_eq!(status, "ignored");
    assert_eq!(count(&stack, "select count(*) from callsync.job").await, 0);
}

#[tokio::test]
async fn a_repeated_delivery_is_counted_on_the_same_event() {
    let stack = stack().await;
    let b = body("conv_twice");
    for _ in 0..2 {
        let res = post(&stack, Some(signature(SECRET, now(), &b)), &b).await;
        assert_eq!(res.status(), 200);
    }
    let deliveries: i32 = stack
        .db
        .scalar("select deliveries from callsync.webhook_event")
        .await;
    assert_eq!(deliveries, 2);
    assert_eq!(
        count(&stack, "select count(*) from callsync.webhook_event").await,
        1
    );
}

fn token(app_role: Option<&str>) -> String {
    let mut claims = callsync::jwt::claims(
        "authenticated",
        Some("00000000-0000-0000-0000-0000000000ad"),
        3600,
    );
    if let Some(r) = app_role {
        claims["app_role"] = json!(r);
    }
    callsync::jwt::sign(&claims, JWT_SECRET.as_bytes())
}

#[tokio::test]
async fn an_admin_submits_an_event_and_resends_it_through_crm_api() {
    let stack = stack().await;
    let event = json!({"conversation_id": "conv_api", "transcript": "Клиент: хочу курс",
        "contacts": {"name": "Анна", "phone": "+375 29 765-43-21"}});
    let res = stack
        .http
        .post(format!("{}/crm-api/analyze", stack.functions_url))
        .bearer_auth(token(Some("admin")))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let answer: Value = res.json().await.unwrap();
    let id = answer["event_id"].as_i64().unwrap();
    let source: String = stack
        .db
        .scalar(&format!(
            "select source from callsync.webhook_event where id = {id}"
        ))
        .await;
    assert_eq!(source, "operator");

    // resend needs an analysis: stand in for the worker
    stack
        .db
        .exec(&format!(
            "select callsync.save_call_analysis({id}, 't', 'i', 3::smallint, 's', 'с', 'r', 'q', 'c', '{{}}', 'event', null, false)"
        ))
        .await;
    let res = stack
        .http
        .post(format!(
            "{}/crm-api/events/{id}/resend-crm?force=true",
            stack.functions_url
        ))
        .bearer_auth(token(Some("admin")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let forced: bool = stack
        .db
        .scalar("select (args ->> 'force')::boolean from callsync.job where kind = 'crm_dispatch'")
        .await;
    assert!(forced);
}

#[tokio::test]
async fn a_signed_in_user_who_is_not_an_admin_is_refused_by_crm_api() {
    let stack = stack().await;
    let res = stack
        .http
        .post(format!("{}/crm-api/analyze", stack.functions_url))
        .bearer_auth(token(Some("advisor")))
        .json(&json!({"conversation_id": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        count(&stack, "select count(*) from callsync.webhook_event").await,
        0
    );

    let res = stack
        .http
        .post(format!("{}/crm-api/analyze", stack.functions_url))
        .json(&json!({"conversation_id": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "no token at all");
}
