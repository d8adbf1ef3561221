//! ElevenLabs → BPMsoft on real parts: a real database and worker, a fake
//! BPMsoft (wiremock) that only answers a request in Creatio's wire format with
//! the trusted Origin and Referer (anything else gets its 404), and a fake
//! OpenAI-compatible LLM. The UAT plan's cases A–E are one test each.
#![allow(clippy::unwrap_used)]
mod common;

use callsync::jobs::elevenlabs_crm_settings::{register, ElevenLabsCrmSettings};
use callsync::jobs::Handlers;
use common::{test_options, wait_until, RunningWorker, TestDb};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CRM_PATH: &str = "/0/ServiceModel/GeneratedObjectWebFormService.svc/SaveWebFormObjectData";
const LANDING: &str = "cd8c698b-4b42-4a47-aaf4-7a9e72a0344b";
const ORIGIN: &str = "https://mir.utlik.pro";
const OK: &str = r#"{"SaveWebFormObjectDataResult":"{resultMessage:\"Данные успешно сохранены\",resultCode:0}"}"#;
const WAIT: Duration = Duration::from_secs(20);

/// Matches only Creatio's wire format for our landing (reference bpmsoft.md §2).
struct WireFormat;

impl wiremock::Match for WireFormat {
    fn matches(&self, req: &Request) -> bool {
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return false;
        };
        let form = &body["formData"];
        let named = |list: &Value, name: &str| {
            list.as_array().is_some_and(|l| {
                l.iter()
                    .any(|f| f["name"] == name && f["value"].is_string())
            })
        };
        body.get("landingId").is_none()
            && body.get("fields").is_none()
            && form["formId"] == LANDING
            && named(&form["formFieldsData"], "Id")
            && named(&form["formFieldsData"], "Commentary")
            && named(&form["formFieldsData"], "UsrEventId")
            && form["contactFieldsData"].is_array()
    }
}

/// A fake BPMsoft answering `answers` in turn (the last one repeats).
async fn fake_crm(answers: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    let n = answers.len();
    for (i, answer) in answers.into_iter().enumerate() {
        let mock = Mock::given(method("POST"))
            .and(path(CRM_PATH))
            .and(header("Origin", ORIGIN))
            .and(header("Referer", "https://mir.utlik.pro/"))
            .and(header("Content-Type", "application/json; charset=UTF-8"))
            .and(WireFormat)
            .respond_with(answer);
        if i + 1 < n {
            mock.up_to_n_times(1).with_priority(1).mount(&server).await;
        } else {
            mock.with_priority(2).mount(&server).await;
        }
    }
    server
}

fn settings(pairs: &[(&str, &str)]) -> ElevenLabsCrmSettings {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ElevenLabsCrmSettings::from_lookup(&|k: &str| map.get(k).cloned()).unwrap()
}

/// A real send to `crm` (dry-run off), plus `extra` settings.
fn sending_to(crm: &MockServer, extra: &[(&str, &str)]) -> ElevenLabsCrmSettings {
    let url = format!("{}{CRM_PATH}", crm.uri());
    let mut pairs = vec![
        ("EXTERNAL_CRM_ENABLED", "true"),
        ("EXTERNAL_CRM_DRY_RUN", "false"),
        ("CRM_SERVICE_URL", url.as_str()),
        ("CRM_LANDING_ID", LANDING),
        ("CRM_TRUSTED_ORIGIN", ORIGIN),
        ("CRM_TIMEOUT_SECS", "1"),
    ];
    pairs.extend_from_slice(extra);
    settings(&pairs)
}

fn worker(db: &TestDb, s: &ElevenLabsCrmSettings) -> RunningWorker {
    RunningWorker::spawn(
        db,
        register(Handlers::new(), s, &db.worker_pool),
        test_options("crm"),
    )
}

/// An operator's event, as `POST /analyze` takes it.
fn operator_event(conv: &str, contacts: Value) -> Value {
    json!({
        "conversation_id": conv,
        "agent_id": "agent_uat",
        "transcript": [
            {"role": "agent", "message": "Добрый день! Чем могу помочь?"},
            {"role": "user", "message": "Хочу записаться на курс Python."}
        ],
        "analysis": {
            "call_successful": "success",
            "transcript_summary": "Клиент хочет записаться на курс Python.",
            "call_summary_title": "Курс Python",
            "data_collection_results": {"intent": {"value": "Запись на курс"}}
        },
        "contacts": contacts
    })
}

fn ivan() -> Value {
    json!({"name": "Иван Иванов", "phone": "8 029 123 45 67", "email": "ivan@example.by"})
}

/// `public.elevenlabs_analyze` as a signed-in admin. Returns the event id.
async fn analyze(db: &TestDb, event: &Value) -> i64 {
    let mut c = db.pool.get().await.unwrap();
    let tx = c.transaction().await.unwrap();
    tx.batch_execute(
        "set local role authenticated; \
         set local request.jwt.claims = '{\"role\":\"authenticated\",\"sub\":\"00000000-0000-0000-0000-00000000000a\",\"app_role\":\"admin\"}'",
    )
    .await
    .unwrap();
    let r: Value = tx
        .query_one("select public.elevenlabs_analyze($1)", &[event])
        .await
        .unwrap()
        .get(0);
    tx.commit().await.unwrap();
    r["event_id"].as_i64().unwrap()
}

/// `public.elevenlabs_resend_crm` as a signed-in admin.
async fn resend(db: &TestDb, event_id: i64, force: bool) -> Value {
    let mut c = db.pool.get().await.unwrap();
    let tx = c.transaction().await.unwrap();
    tx.batch_execute(
        "set local role authenticated; \
         set local request.jwt.claims = '{\"role\":\"authenticated\",\"sub\":\"00000000-0000-0000-0000-00000000000a\",\"app_role\":\"admin\"}'",
    )
    .await
    .unwrap();
    let r: Value = tx
        .query_one(
            "select public.elevenlabs_resend_crm($1, $2)",
            &[&event_id, &force],
        )
        .await
        .unwrap()
        .get(0);
    tx.commit().await.unwrap();
    r
}

/// The dispatch rows of an event, oldest first: (status, forced, http, error, payload).
async fn dispatches(
    db: &TestDb,
    event_id: i64,
) -> Vec<(String, bool, Option<i32>, Option<String>, Option<Value>)> {
    let c = db.pool.get().await.unwrap();
    c.query(
        "select status, forced, http_status, error, payload from callsync.crm_dispatch \
         where event_id = $1 order by id",
        &[&event_id],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

/// Waits until no pipeline job is live and `n` dispatch rows exist for the event.
async fn settle(db: &TestDb, event_id: i64, n: i64) {
    wait_until("the pipeline settles", WAIT, || async {
        let c = db.pool.get().await.unwrap();
        let live: i64 = c
            .query_one(
                "select count(*) from callsync.job where kind in ('elevenlabs_analysis', 'crm_dispatch') \
                 and state in ('available', 'running', 'retryable')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let rows: i64 = c
            .query_one("select count(*) from callsync.crm_dispatch where event_id = $1", &[&event_id])
            .await
            .unwrap()
            .get(0);
        live == 0 && rows >= n
    })
    .await;
}

fn field<'a>(payload: &'a Value, list: &str, name: &str) -> Option<&'a str> {
    payload["formData"][list]
        .as_array()?
        .iter()
        .find(|f| f["name"] == name)?["value"]
        .as_str()
}

async fn sent_bodies(crm: &MockServer) -> Vec<Value> {
    crm.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn case_a_a_dry_run_stores_analysis_and_payload_and_sends_nothing() {
    let db = TestDb::new().await;
    let crm = fake_crm(vec![ResponseTemplate::new(200).set_body_string(OK)]).await;
    let url = format!("{}{CRM_PATH}", crm.uri());
    let s = settings(&[
        ("EXTERNAL_CRM_ENABLED", "true"),
        ("EXTERNAL_CRM_DRY_RUN", "true"),
        ("CRM_SERVICE_URL", url.as_str()),
        ("CRM_LANDING_ID", LANDING),
        ("CRM_TRUSTED_ORIGIN", ORIGIN),
    ]);
    let w = worker(&db, &s);
    let id = analyze(&db, &operator_event("conv-a", ivan())).await;
    settle(&db, id, 1).await;
    w.shutdown().await;

    let rows = dispatches(&db, id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "dry_run");
    let payload = rows[0].4.as_ref().unwrap();
    assert_eq!(payload["formData"]["formId"], LANDING);
    assert_eq!(
        field(payload, "contactFieldsData", "Phone"),
        Some("+375291234567")
    );
    assert!(
        crm.received_requests().await.unwrap().is_empty(),
        "nothing was sent"
    );
    let topic: Option<String> = db
        .scalar(&format!(
            "select topic from callsync.call_analysis where event_id = {id}"
        ))
        .await;
    assert_eq!(topic.as_deref(), Some("Курс Python"));
}

#[tokio::test]
async fn case_b_a_real_send_in_the_wire_format_records_success() {
    let db = TestDb::new().await;
    let crm = fake_crm(vec![ResponseTemplate::new(200).set_body_string(OK)]).await;
    let w = worker(&db, &sending_to(&crm, &[]));
    let id = analyze(&db, &operator_event("conv-b", ivan())).await;
    settle(&db, id, 1).await;
    w.shutdown().await;

    let rows = dispatches(&db, id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1, rows[0].2),
        ("success", false, Some(200))
    );
    let sent = sent_bodies(&crm).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        rows[0].4.as_ref(),
        Some(&sent[0]),
        "the exact payload sent is recorded"
    );
    let commentary = field(&sent[0], "formFieldsData", "Commentary").unwrap();
    assert!(
        commentary
            .starts_with("Тема: Курс Python | Намерение: Запись на курс | Качество: 4 | Итог: ")
            && commentary.ends_with(&format!("IDs: event={id}, agent=agent_uat, conv=conv-b")),
        "{commentary}"
    );
    assert_eq!(
        field(&sent[0], "formFieldsData", "UsrConversationId"),
        Some("conv-b")
    );
    assert_eq!(
        field(&sent[0], "contactFieldsData", "FullName"),
        Some("Иван Иванов")
    );
    let record_id = field(&sent[0], "formFieldsData", "Id").unwrap();
    assert_eq!(
        uuid::Uuid::parse_str(record_id).unwrap().get_version_num(),
        5
    );
    let (code, ms): (Option<i32>, Option<i32>) = {
        let c = db.pool.get().await.unwrap();
        let r = c
            .query_one(
                "select result_code, duration_ms from callsync.crm_dispatch where event_id = $1",
                &[&id],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(code, Some(0));
    assert!(ms.is_some());
}

#[tokio::test]
async fn case_c_an_email_without_a_phone_is_sent() {
    let db = TestDb::new().await;
    let crm = fake_crm(vec![ResponseTemplate::new(200).set_body_string(OK)]).await;
    let w = worker(&db, &sending_to(&crm, &[]));
    let id = analyze(
        &db,
        &operator_event(
            "conv-c",
            json!({"name": "Анна", "email": "anna@example.by"}),
        ),
    )
    .await;
    settle(&db, id, 1).await;
    w.shutdown().await;

    assert_eq!(dispatches(&db, id).await[0].0, "success");
    let sent = sent_bodies(&crm).await;
    assert_eq!(
        field(&sent[0], "contactFieldsData", "Email"),
        Some("anna@example.by")
    );
    assert_eq!(field(&sent[0], "contactFieldsData", "Phone"), None);
}

#[tokio::test]
async fn case_d_the_same_event_again_is_not_sent_again() {
    let db = TestDb::new().await;
    let crm = fake_crm(vec![ResponseTemplate::new(200).set_body_string(OK)]).await;
    let w = worker(&db, &sending_to(&crm, &[]));
    let id = analyze(&db, &operator_event("conv-d", ivan())).await;
    settle(&db, id, 1).await;
    let again = analyze(&db, &operator_event("conv-d", ivan())).await;
    assert_eq!(again, id, "the same conversation is the same event");
    settle(&db, id, 2).await;
    w.shutdown().await;

    let statuses: Vec<String> = dispatches(&db, id).await.into_iter().map(|r| r.0).collect();
    assert_eq!(statuses, ["success", "skipped_duplicate"]);
    assert_eq!(crm.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn case_e_a_forced_resend_is_sent_and_recorded_as_forced() {
    let db = TestDb::new().await;
    let crm = fake_crm(vec![ResponseTemplate::new(200).set_body_string(OK)]).await;
    let w = worker(&db, &sending_to(&crm, &[]));
    let id = analyze(&db, &operator_event("conv-e", ivan())).await;
    settle(&db, id, 1).await;
    let r = resend(&db, id, true).await;
    assert_eq!(r["queued"], true);
    settle(&db, id, 2).await;
    w.shutdown().await;

    let rows = dispatches(&db, id).await;
    let shape: Vec<(&str, bool)> = rows.iter().map(|r| (r.0.as_str(), r.1)).collect();
    assert_eq!(shape, [("success", false), ("success", true)]);
    let sent = sent_bodies(&crm).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(
        field(&sent[0], "formFieldsData", "Id"),
        field(&sent[1], "formFieldsData", "Id"),
        "the resend carries the same deterministic record Id"
    );
}

#[tokio::test]
async fn a_resend_without_force_after_a_success_is_a_skipped_duplicate() {
    let db = TestDb::new().await;
    let crm = fake_crm(vec![ResponseTemplate::new(200).set_body_string(OK)]).await;
    let w = worker(&db, &sending_to(&crm, &[]));
    let id = analyze(&db, &operator_event("conv-r", ivan())).await;
    settle(&db, id, 1).await;
    resend(&db, id, false).await;
    settle(&db, id, 2).await;
    w.shutdown().await;
    let statuses: Vec<String> = dispatches(&db, id).await.into_iter().map(|r| r.0).collect();
    assert_eq!(statuses, ["success", "skipped_duplicate"]);
}

#[tokio::test]
async fn a_crm_that_answers_500_twice_then_succeeds_leaves_three_attempts_and_one_success() {
    let db = TestDb::new().await;
    let crm = fake_crm(vec![
        ResponseTemplate::new(500).set_body_string("boom"),
        ResponseTemplate::new(500).set_body_string("boom"),
        ResponseTemplate::new(200).set_body_string(OK),
    ])
    .await;
    let w = worker(&db, &sending_to(&crm, &[]));
    let id = analyze(&db, &operator_event("conv-500", ivan())).await;
    settle(&db, id, 3).await;
    w.shutdown().await;

    let rows = dispatches(&db, id).await;
    let shape: Vec<(&str, Option<i32>)> = rows.iter().map(|r| (r.0.as_str(), r.2)).collect();
    assert_eq!(
        shape,
        [
            ("error", Some(500)),
            ("error", Some(500)),
            ("success", Some(200))
        ]
    );
    let completed: i64 = db
        .scalar(
            "select count(*) from callsync.job where kind = 'crm_dispatch' and state = 'completed'",
        )
        .await;
    assert_eq!(completed, 1);
}

#[tokio::test]
async fn a_crm_answering_minus_one_leaves_one_error_row_with_its_message_and_no_retry() {
    let db = TestDb::new().await;
    let refused = r#"{"SaveWebFormObjectDataResult":"{\"resultCode\":-1,\"resultMessage\":\"Запрос с недопустимого адреса\"}"}"#;
    let crm = fake_crm(vec![ResponseTemplate::new(200).set_body_string(refused)]).await;
    let w = worker(&db, &sending_to(&crm, &[]));
    let id = analyze(&db, &operator_event("conv-m1", ivan())).await;
    settle(&db, id, 1).await;
    w.shutdown().await;

    let rows = dispatches(&db, id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "error");
    assert!(rows[0]
        .3
        .as_deref()
        .unwrap()
        .contains("Запрос с недопустимого адреса"));
    assert_eq!(
        crm.received_requests().await.unwrap().len(),
        1,
        "not retried"
    );
    let discarded: i64 = db
        .scalar(
            "select count(*) from callsync.job where kind = 'crm_dispatch' and state = 'discarded'",
        )
        .await;
    assert_eq!(discarded, 1);
    let processed: String = db
        .scalar(&format!(
            "select status from callsync.webhook_event where id = {id}"
        ))
        .await;
    assert_eq!(
        processed, "processed",
        "a CRM failure does not fail the event"
    );
}

#[tokio::test]
async fn an_empty_inner_result_is_an_error_that_is_not_retried() {
    let db = TestDb::new().await;
    let crm = fake_crm(vec![
        ResponseTemplate::new(200).set_body_string(r#"{"SaveWebFormObjectDataResult":""}"#)
    ])
    .await;
    let w = worker(&db, &sending_to(&crm, &[]));
    let id = analyze(&db, &operator_event("conv-empty", ivan())).await;
    settle(&db, id, 1).await;
    w.shutdown().await;
    let rows = dispatches(&db, id).await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].3.as_deref().unwrap().contains("empty result"));
    assert_eq!(crm.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_crm_that_times_out_is_retried_until_the_attempts_run_out() {
    let db = TestDb::new().await;
    db.exec("update callsync.setting set value = '2' where key = 'crm.max_attempts'")
        .await;
    let crm = fake_crm(vec![ResponseTemplate::new(200)
        .set_body_string(OK)
        .set_delay(Duration::from_secs(3))])
    .await;
    let w = worker(&db, &sending_to(&crm, &[]));
    let id = analyze(&db, &operator_event("conv-slow", ivan())).await;
    settle(&db, id, 2).await;
    w.shutdown().await;
    let rows = dispatches(&db, id).await;
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!((r.0.as_str(), r.2), ("error", None));
        assert!(r.3.as_deref().unwrap().contains("timeout"), "{:?}", r.3);
    }
}

#[tokio::test]
async fn a_crm_answering_400_is_not_retried() {
    let db = TestDb::new().await;
    let crm = fake_crm(vec![
        ResponseTemplate::new(400).set_body_string("<html>Bad Request</html>")
    ])
    .await;
    let w = worker(&db, &sending_to(&crm, &[]));
    let id = analyze(&db, &operator_event("conv-400", ivan())).await;
    settle(&db, id, 1).await;
    w.shutdown().await;
    let rows = dispatches(&db, id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].0.as_str(), rows[0].2), ("error", Some(400)));
}

#[tokio::test]
async fn an_event_without_any_contact_is_skipped_under_the_skip_policy() {
    let db = TestDb::new().await;
    let crm = fake_crm(vec![ResponseTemplate::new(200).set_body_string(OK)]).await;
    let w = worker(&db, &sending_to(&crm, &[("CRM_NO_CONTACT_POLICY", "skip")]));
    let id = analyze(
        &db,
        &operator_event("conv-nc", json!({"name": "Без контактов"})),
    )
    .await;
    settle(&db, id, 1).await;
    w.shutdown().await;
    assert_eq!(dispatches(&db, id).await[0].0, "skipped_no_contact");
    assert!(crm.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_event_without_any_contact_is_sent_under_the_send_policy() {
    let db = TestDb::new().await;
    let crm = fake_crm(vec![ResponseTemplate::new(200).set_body_string(OK)]).await;
    let w = worker(&db, &sending_to(&crm, &[("CRM_NO_CONTACT_POLICY", "send")]));
    let id = analyze(&db, &operator_event("conv-ns", json!({}))).await;
    settle(&db, id, 1).await;
    w.shutdown().await;
    assert_eq!(dispatches(&db, id).await[0].0, "success");
}

#[tokio::test]
async fn with_the_crm_disabled_the_analysis_is_saved_and_nothing_is_dispatched() {
    let db = TestDb::new().await;
    let w = worker(&db, &settings(&[]));
    let id = analyze(&db, &operator_event("conv-off", ivan())).await;
    wait_until("the event is processed", WAIT, || async {
        let s: String = db
            .scalar(&format!(
                "select status from callsync.webhook_event where id = {id}"
            ))
            .await;
        s == "processed"
    })
    .await;
    w.shutdown().await;
    let jobs: i64 = db
        .scalar("select count(*) from callsync.job where kind = 'crm_dispatch'")
        .await;
    assert_eq!(jobs, 0);
}

/// A fake OpenAI-compatible endpoint answering `content` as the message.
async fn fake_llm(content: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("Authorization", "Bearer sk-test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": content.to_string()}}]
        })))
        .mount(&server)
        .await;
    server
}

fn with_llm(llm: &MockServer) -> ElevenLabsCrmSettings {
    let base = format!("{}/v1", llm.uri());
    settings(&[
        ("LLM_BASE_URL", base.as_str()),
        ("LLM_MODEL", "fake-model"),
        ("LLM_API_KEY", "sk-test"),
    ])
}

#[tokio::test]
async fn an_llm_fills_the_fields_the_event_does_not_state() {
    let db = TestDb::new().await;
    let llm = fake_llm(json!({
        "topic": "LLM topic", "intent": "LLM intent", "quality_score": 5,
        "summary": "LLM summary", "summary_ru": "Клиент хочет курс Python.",
        "recommendations": "Перезвонить завтра", "lead_status": "callback",
        "qualification_comment": "Готов платить"
    }))
    .await;
    let w = worker(&db, &with_llm(&llm));
    let id = analyze(&db, &operator_event("conv-llm", ivan())).await;
    wait_for_analysis(&db, id).await;
    w.shutdown().await;

    let c = db.pool.get().await.unwrap();
    let r = c
        .query_one(
            "select analyzer, topic, intent, quality_score, recommendations, lead_status \
             from callsync.call_analysis where event_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "llm");
    assert_eq!(
        r.get::<_, String>(1),
        "Курс Python",
        "the event's own title is kept"
    );
    assert_eq!(
        r.get::<_, String>(2),
        "Запись на курс",
        "the event's own intent is kept"
    );
    assert_eq!(r.get::<_, i16>(3), 5);
    assert_eq!(r.get::<_, String>(4), "Перезвонить завтра");
    assert_eq!(r.get::<_, String>(5), "callback");

    let asked: Value =
        serde_json::from_slice(&llm.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(asked["model"], "fake-model");
    assert_eq!(asked["response_format"]["type"], "json_schema");
    assert_eq!(asked["response_format"]["json_schema"]["strict"], true);
}

#[tokio::test]
async fn an_llm_score_out_of_range_is_dropped_for_the_deterministic_one() {
    let db = TestDb::new().await;
    let llm = fake_llm(json!({
        "topic": "t", "intent": "i", "quality_score": 9, "summary": "s", "summary_ru": "с",
        "recommendations": "r", "lead_status": "qualified", "qualification_comment": "q"
    }))
    .await;
    let w = worker(&db, &with_llm(&llm));
    let id = analyze(&db, &operator_event("conv-llm9", ivan())).await;
    wait_for_analysis(&db, id).await;
    w.shutdown().await;
    let score: i16 = db
        .scalar(&format!(
            "select quality_score from callsync.call_analysis where event_id = {id}"
        ))
        .await;
    assert_eq!(score, 4, "call_successful = success maps to 4");
}

#[tokio::test]
async fn an_llm_that_answers_nonsense_does_not_stop_the_analysis() {
    let db = TestDb::new().await;
    let llm = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"message": {"role": "assistant", "content": "I cannot do JSON today"}}]
        })))
        .mount(&llm)
        .await;
    let w = worker(&db, &with_llm(&llm));
    let id = analyze(&db, &operator_event("conv-llm-bad", ivan())).await;
    wait_for_analysis(&db, id).await;
    w.shutdown().await;
    let (analyzer, error): (String, Option<String>) = {
        let c = db.pool.get().await.unwrap();
        let r = c
            .query_one(
                "select analyzer, raw_output ->> 'llm_error' from callsync.call_analysis where event_id = $1",
                &[&id],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(analyzer, "event");
    assert!(error.unwrap().contains("not a JSON object"));
}

/// Waits until the analysis of event `id` is stored.
async fn wait_for_analysis(db: &TestDb, id: i64) {
    wait_until("the analysis exists", WAIT, || async {
        let n: i64 = db
            .scalar(&format!(
                "select count(*) from callsync.call_analysis where event_id = {id}"
            ))
            .await;
        n == 1
    })
    .await;
}
