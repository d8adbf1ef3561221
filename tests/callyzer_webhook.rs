//! The Callyzer pipeline through its real HTTP path: a delivery posted to the
//! `callyzer-webhook` Edge Function (Deno) is stored by PostgREST's RPC in
//! Postgres, processed by the worker, and read back through PostgREST as each
//! role would. One test per acceptance item and edge case of issue 3.
#![allow(clippy::unwrap_used)]
mod common;

use callsync::jobs::callyzer_delivery::{CallyzerDelivery, KIND};
use callsync::jobs::Handlers;
use common::stack::Stack;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const TOKEN: &str = "cz-test-token-0123456789abcdef";
const HEADER: &str = "x-callyzer-secret";
const HMAC_SECRET: &str = "cz-hmac-key";

use common::people::{
    ADMIN, MANAGER_A, MANAGER_B, OLGA as ADVISOR_OLGA, PIOTR as ADVISOR_PIOTR, TEAMS_AND_USERS,
};

/// On top of [`TEAMS_AND_USERS`], leads: lead 1 (Olga's,
/// +48601202303), leads 2 (Piotr's) and 3 (Basia's, team B) sharing +48602000000,
/// lead 4 (Olga's, older) also on +48602000000.
const FIXTURE: &str = r#"
    insert into callsync.lead (name, advisor_id, created_at) values
        ('Lead one',   1, now() - interval '3 days'),
        ('Lead two',   2, now() - interval '2 days'),
        ('Lead three', 3, now() - interval '1 day'),
        ('Lead four',  1, now() - interval '9 days');
    insert into callsync.lead_phone (lead_id, raw) values
        (1, '601 202 303'), (2, '+48 602 000 000'), (3, '0602-000-000'), (4, '602000000');
"#;

struct Env {
    stack: Stack,
    worker: Option<RunningWorker>,
}

impl Env {
    async fn start(extra: &[(&str, &str)]) -> Env {
        let db = TestDb::new().await;
        db.exec(TEAMS_AND_USERS).await;
        db.exec(FIXTURE).await;
        let mut vars = vec![
            ("CALLYZER_WEBHOOK_TOKEN", TOKEN),
            ("CALLYZER_WEBHOOK_HEADER", HEADER),
        ];
        vars.extend_from_slice(extra);
        let stack = Stack::start(db, &vars).await;
        let handlers =
            Handlers::new().register(KIND, CallyzerDelivery::new(stack.db.worker_pool.clone()));
        let worker = RunningWorker::spawn(&stack.db, handlers, test_options("cz"));
        Env {
            stack,
            worker: Some(worker),
        }
    }

    fn url(&self) -> String {
        format!("{}/callyzer-webhook", self.stack.functions_url)
    }

    /// Posts `body` with the token in the query string.
    async fn post(&self, body: &str) -> (u16, Value) {
        self.post_to(
            &format!("{}?token={TOKEN}", self.url()),
            body,
            "application/json",
            &[],
        )
        .await
    }

    async fn post_to(
        &self,
        url: &str,
        body: &str,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self
            .stack
            .http
            .post(url)
            .header("content-type", content_type)
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the event is processed (or failed) by the worker.
    async fn processed(&self, event_id: i64) {
        let pool = self.stack.db.pool.clone();
        wait_until("the delivery is processed", Duration::from_secs(20), || {
            let pool = pool.clone();
            async move {
                let c = pool.get().await.unwrap();
                let row = c
                    .query_one(
                        "select status from callsync.webhook_event where id = $1",
                        &[&event_id],
                    )
                    .await
                    .unwrap();
                matches!(row.get::<_, String>(0).as_str(), "processed" | "failed")
            }
        })
        .await;
    }

    /// Posts a delivery, expects 200, waits for processing; returns the event id.
    async fn deliver(&self, body: &Value) -> i64 {
        let (status, answer) = self.post(&body.to_string()).await;
        assert_eq!(status, 200, "{answer}");
        let id = answer["event_id"].as_i64().unwrap();
        self.processed(id).await;
        id
    }

    /// GET through PostgREST with `token` (None: no Authorization at all).
    async fn rest(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self
            .stack
            .http
            .get(format!("{}/{path}", self.stack.rest_url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    async fn rpc(&self, fn_name: &str, args: Value, token: &str) -> (u16, Value) {
        let res = self
            .stack
            .http
            .post(format!("{}/rpc/{fn_name}", self.stack.rest_url))
            .bearer_auth(token)
            .json(&args)
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    async fn rejections(&self) -> Vec<(String, i32, Option<String>)> {
        let c = self.stack.db.pool.get().await.unwrap();
        c.query(
            "select reason, status_code, detail from callsync.webhook_rejection order by id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    }

    async fn shutdown(mut self) {
        if let Some(w) = self.worker.take() {
            w.shutdown().await;
        }
    }
}

fn call(id: &str, client: &str, call_type: &str, modified: &str) -> Value {
    json!({"id": id, "client_name": "", "client_country_code": "48", "client_number": client,
           "duration": 60, "call_type": call_type, "call_date": "2026-01-15", "call_time": "10:00:00",
           "note": "", "call_recording_url": "", "crm_status": "", "reminder_date": "", "reminder_time": "",
           "synced_at": modified, "modified_at": modified})
}

fn employee(code: &str, number: &str, logs: Vec<Value>) -> Value {
    json!({"emp_name": code, "emp_code": code, "emp_country_code": "48", "emp_number": number,
           "emp_tags": ["sales"], "call_logs": logs})
}

async fn ids(db: &TestDb, sql: &str) -> Vec<String> {
    let c = db.pool.get().await.unwrap();
    c.query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn call_ids(rows: &Value) -> Vec<String> {
    let mut v: Vec<String> = rows
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["call_id"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_ends_as_labelled_calls_matched_or_parked_and_visible_only_to_the_right_roles() {
    let env = Env::start(&[]).await;
    let body = json!([
        employee(
            "SALES-07",
            "600100200",
            vec![
                call("c-olga-1", "601 202 303", "Outgoing", "2026-01-15 10:05:00"),
                call(
                    "c-olga-2",
                    "0601-202-303",
                    "Incoming",
                    "2026-01-15 10:06:00"
                ),
                call("c-olga-x", "699 999 999", "Missed", "2026-01-15 10:07:00"),
            ]
        ),
        employee(
            "SALES-20",
            "600100202",
            vec![call(
                "c-basia-1",
                "+48 601 202 303",
                "Rejected",
                "2026-01-15 10:08:00"
            )]
        ),
    ]);
    env.deliver(&body).await;
    let db = &env.stack.db;

    let labels = ids(db, "select id || '=' || call_type_label from callsync.call where call_type_label is not null order by id").await;
    assert_eq!(
        labels,
        [
            "c-basia-1=Odrzucone",
            "c-olga-1=Wychodzące",
            "c-olga-2=Przychodzące",
            "c-olga-x=Nieodebrane"
        ]
    );
    assert_eq!(
        ids(
            db,
            "select id from callsync.call where lead_id = 1 order by id"
        )
        .await,
        ["c-basia-1", "c-olga-1", "c-olga-2"]
    );
    assert_eq!(
        ids(db, "select call_id from callsync.unmatched_call").await,
        ["c-olga-x"]
    );

    let admin = env.stack.user_token(ADMIN);
    let (status, rows) = env
        .rest(
            "lead_call_registry?lead_id=eq.1&order=called_at.desc",
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        call_ids(&rows),
        ["c-basia-1", "c-olga-1", "c-olga-2"],
        "admin sees every call of the lead"
    );
    assert!(rows[0]["call_type_label"].is_string() && rows[0]["advisor_name"].is_string());

    let expected: [(&str, &[&str], &str); 4] = [
        (
            MANAGER_A,
            &["c-olga-1", "c-olga-2"],
            "team A's manager sees team A's calls only",
        ),
        (
            MANAGER_B,
            &["c-basia-1"],
            "team B's manager does not see team A's calls",
        ),
        (
            ADVISOR_OLGA,
            &["c-olga-1", "c-olga-2"],
            "an advisor sees their own calls",
        ),
        (ADVISOR_PIOTR, &[], "another advisor sees nothing"),
    ];
    for (user, calls, why) in expected {
        let (_, rows) = env
            .rest(
                "lead_call_registry?lead_id=eq.1",
                Some(&env.stack.user_token(user)),
            )
            .await;
        assert_eq!(call_ids(&rows), calls, "{why}");
    }
    let (_, rows) = env
        .rest(
            "unmatched_calls",
            Some(&env.stack.user_token(ADVISOR_PIOTR)),
        )
        .await;
    assert_eq!(
        call_ids(&rows),
        Vec::<String>::new(),
        "nor another advisor's unmatched calls"
    );
    let (_, rows) = env
        .rest("unmatched_calls", Some(&env.stack.user_token(MANAGER_A)))
        .await;
    assert_eq!(call_ids(&rows), ["c-olga-x"]);

    let (status, _) = env
        .rest("lead_call_registry?lead_id=eq.1", Some(&env.stack.anon_key))
        .await;
    assert_eq!(status, 401, "anon is refused");
    let (status, _) = env.rest("lead_call_registry?lead_id=eq.1", None).await;
    assert_eq!(status, 401, "no token is anon");
    let (status, _) = env
        .rpc(
            "team_call_stats",
            json!({"p_from": "2026-01-01T00:00:00Z", "p_to": "2026-02-01T00:00:00Z"}),
            &env.stack.anon_key,
        )
        .await;
    assert_eq!(status, 401, "anon cannot read statistics");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_call_twice_then_newer_with_a_recording_is_one_row_updated_once_and_never_reverted(
) {
    let env = Env::start(&[]).await;
    let first = call("c-1", "601202303", "Outgoing", "2026-01-15 10:05:00");
    env.deliver(&json!([employee(
        "SALES-07",
        "600100200",
        vec![first.clone()]
    )]))
    .await;
    // the same call in a different delivery (another call beside it, so the body differs)
    env.deliver(&json!([employee(
        "SALES-07",
        "600100200",
        vec![
            first.clone(),
            call("c-2", "601202303", "Missed", "2026-01-15 10:09:00")
        ]
    )]))
    .await;
    let mut newer = call("c-1", "601202303", "Outgoing", "2026-01-15 10:30:00");
    newer["call_recording_url"] = json!("https://rec.callyzer.example/c-1.mp3");
    newer["duration"] = json!(75);
    env.deliver(&json!([employee("SALES-07", "600100200", vec![newer])]))
        .await;
    // the old copy arrives late
    let mut late = first.clone();
    late["note"] = json!("stale copy");
    env.deliver(&json!([employee("SALES-07", "600100200", vec![late])]))
        .await;

    let db = &env.stack.db;
    let row: (i64, i32, Option<String>, i32, Option<String>) = {
        let c = db.pool.get().await.unwrap();
        let r = c
            .query_one("select (select count(*) from callsync.call where id = 'c-1'), revision, recording_url, duration_s, note from callsync.call where id = 'c-1'", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
    };
    assert_eq!(row.0, 1, "one row");
    assert_eq!(row.1, 2, "updated exactly once");
    assert_eq!(
        row.2.as_deref(),
        Some("https://rec.callyzer.example/c-1.mp3"),
        "the later recording URL landed"
    );
    assert_eq!(row.3, 75);
    assert_eq!(row.4, None, "the older copy did not overwrite");
    let (_, rows) = env
        .rest(
            "lead_call_registry?lead_id=eq.1&call_id=eq.c-1",
            Some(&env.stack.user_token(ADMIN)),
        )
        .await;
    assert_eq!(
        rows[0]["recording_url"],
        "https://rec.callyzer.example/c-1.mp3"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_payload_delivered_twice_is_stored_once_and_processed_once() {
    let env = Env::start(&[]).await;
    let body = json!([employee(
        "SALES-07",
        "600100200",
        vec![call("c-1", "601202303", "Outgoing", "2026-01-15 10:05:00")]
    )])
    .to_string();
    let (s1, a1) = env.post(&body).await;
    let (s2, a2) = env.post(&body).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(a1["event_id"], a2["event_id"]);
    assert_eq!(a2["duplicate"], true);
    env.processed(a1["event_id"].as_i64().unwrap()).await;
    let db = &env.stack.db;
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.webhook_event")
            .await,
        1
    );
    assert_eq!(
        db.scalar::<i32>("select deliveries from callsync.webhook_event")
            .await,
        2
    );
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.job where kind = 'callyzer_delivery'")
            .await,
        1
    );
    assert_eq!(
        db.scalar::<i32>("select revision from callsync.call where id = 'c-1'")
            .await,
        1
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused_with_401_and_logged_without_the_secret() {
    let env = Env::start(&[]).await;
    let body = json!([employee(
        "SALES-07",
        "600100200",
        vec![call("c-1", "601202303", "Outgoing", "2026-01-15 10:05:00")]
    )])
    .to_string();
    let (status, answer) = env
        .post_to(
            &format!("{}?token=not-the-token", env.url()),
            &body,
            "application/json",
            &[],
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(answer["error"], "bad_secret");
    let (status, _) = env
        .post_to(
            &format!("{}/wrong-path-token", env.url()),
            &body,
            "application/json",
            &[],
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = env
        .post_to(&env.url(), &body, "application/json", &[(HEADER, "nope")])
        .await;
    assert_eq!(status, 401);
    let logged = env.rejections().await;
    assert_eq!(
        logged
            .iter()
            .map(|r| (r.0.as_str(), r.1))
            .collect::<Vec<_>>(),
        [("bad_secret", 401); 3]
    );
    let c = env.stack.db.pool.get().await.unwrap();
    let dump: String = c
        .query_one(
            "select coalesce(string_agg(r::text, ' '), '') from callsync.webhook_rejection r",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!dump.contains(TOKEN) && !dump.contains("not-the-token") && !dump.contains("nope"));
    assert!(
        !env.stack.logs().contains(TOKEN),
        "the secret is not in the function logs"
    );
    assert_eq!(
        env.stack
            .db
            .scalar::<i64>("select count(*) from callsync.webhook_event")
            .await,
        0
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_secret_is_refused_with_401_and_logged() {
    let env = Env::start(&[]).await;
    let (status, answer) = env.post_to(&env.url(), "[]", "application/json", &[]).await;
    assert_eq!(status, 401);
    assert_eq!(answer["error"], "missing_secret");
    assert_eq!(env.rejections().await[0].0, "missing_secret");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_with_413_and_logged() {
    let env = Env::start(&[]).await;
    let big = format!("[{{\"pad\":\"{}\"}}]", "x".repeat(1024 * 1024 + 10));
    let (status, answer) = env.post(&big).await;
    assert_eq!(status, 413);
    assert_eq!(answer["error"], "too_large");
    let c = env.stack.db.pool.get().await.unwrap();
    let size: Option<i32> = c
        .query_one("select size_bytes from callsync.webhook_rejection", &[])
        .await
        .unwrap()
        .get(0);
    assert!(size.unwrap() > 1024 * 1024, "the size is logged");
    assert_eq!(
        env.stack
            .db
            .scalar::<i64>("select count(*) from callsync.webhook_event")
            .await,
        0
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_json_content_type_is_refused_with_415_and_logged() {
    let env = Env::start(&[]).await;
    let (status, _) = env
        .post_to(
            &format!("{}?token={TOKEN}", env.url()),
            "[]",
            "text/plain",
            &[],
        )
        .await;
    assert_eq!(status, 415);
    assert_eq!(env.rejections().await[0].0, "not_json_content_type");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_refused_with_400_and_logged() {
    let env = Env::start(&[]).await;
    let (status, answer) = env.post("[{\"emp_code\": ").await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "bad_json");
    assert_eq!(env.rejections().await[0].0, "bad_json");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_of_the_wrong_shape_is_refused_with_400_and_logged() {
    let env = Env::start(&[]).await;
    let (status, answer) = env.post("{\"call_logs\": []}").await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "bad_shape");
    let (status, _) = env.post("[1, 2]").await;
    assert_eq!(status, 400);
    assert_eq!(env.rejections().await.len(), 2);
    env.shutdown().await;
}

/// Delivers one bad record between two good ones; returns the event's record_errors.
async fn one_bad_between_two_good(env: &Env, bad: Value) -> Value {
    let id = env
        .deliver(&json!([employee(
            "SALES-07",
            "600100200",
            vec![
                call("good-1", "601202303", "Outgoing", "2026-01-15 10:05:00"),
                bad,
                call("good-2", "699999999", "Incoming", "2026-01-15 10:06:00"),
            ]
        )]))
        .await;
    let c = env.stack.db.pool.get().await.unwrap();
    let row = c
        .query_one(
            "select status, record_errors from callsync.webhook_event where id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "processed");
    let stored = ids(
        &env.stack.db,
        "select id from callsync.call where id like 'good-%' order by id",
    )
    .await;
    assert_eq!(
        stored,
        ["good-1", "good-2"],
        "the valid records beside the bad one are stored"
    );
    row.get::<_, Option<Value>>(1).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_missing_its_id_is_reported_and_its_neighbours_are_stored() {
    let env = Env::start(&[]).await;
    let mut bad = call("x", "601202303", "Outgoing", "2026-01-15 10:05:00");
    bad.as_object_mut().unwrap().remove("id");
    let errors = one_bad_between_two_good(&env, bad).await;
    assert_eq!(errors[0]["call"], 1);
    assert_eq!(errors[0]["stored"], false);
    assert!(errors[0]["error"].as_str().unwrap().contains("id"));
    assert_eq!(
        env.stack
            .db
            .scalar::<i64>("select count(*) from callsync.call")
            .await,
        2
    );
    let error: String = env
        .stack
        .db
        .scalar("select error from callsync.webhook_event")
        .await;
    assert_eq!(error, "1 of 3 records rejected");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_call_type_is_stored_raw_and_counted_beside_valid_records() {
    let env = Env::start(&[]).await;
    let errors = one_bad_between_two_good(
        &env,
        call("odd-1", "601202303", "Voicemail", "2026-01-15 10:05:00"),
    )
    .await;
    assert_eq!(errors, Value::Null, "an unknown type is not an error");
    let db = &env.stack.db;
    assert_eq!(
        db.scalar::<String>("select call_type from callsync.call where id = 'odd-1'")
            .await,
        "Voicemail"
    );
    assert_eq!(
        db.scalar::<Option<String>>("select call_type_label from callsync.call where id = 'odd-1'")
            .await,
        None
    );
    assert_eq!(
        db.scalar::<i64>(
            "select seen from callsync.callyzer_unknown_call_type where call_type = 'Voicemail'"
        )
        .await,
        1
    );
    let (_, rows) = env
        .rest(
            "lead_call_registry?call_id=eq.odd-1",
            Some(&env.stack.user_token(ADMIN)),
        )
        .await;
    assert_eq!(
        rows[0]["call_type_label"], "Voicemail",
        "the screen shows the raw value"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparseable_client_number_is_stored_unmatched_with_a_warning() {
    let env = Env::start(&[]).await;
    let errors = one_bad_between_two_good(
        &env,
        call(
            "hidden-1",
            "Private number",
            "Incoming",
            "2026-01-15 10:05:00",
        ),
    )
    .await;
    assert_eq!(errors[0]["call_id"], "hidden-1");
    assert_eq!(errors[0]["stored"], true);
    let db = &env.stack.db;
    assert_eq!(
        db.scalar::<Option<String>>("select client_e164 from callsync.call where id = 'hidden-1'")
            .await,
        None
    );
    assert_eq!(
        db.scalar::<Option<String>>(
            "select client_number from callsync.unmatched_call where call_id = 'hidden-1'"
        )
        .await
        .as_deref(),
        Some("Private number")
    );
    assert_eq!(
        db.scalar::<Option<String>>("select error from callsync.webhook_event")
            .await,
        None,
        "nothing was rejected"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_in_a_wrong_format_is_reported_and_its_neighbours_are_stored() {
    let env = Env::start(&[]).await;
    let mut bad = call("bad-date", "601202303", "Outgoing", "2026-01-15 10:05:00");
    bad["call_date"] = json!("15/01/2026");
    let errors = one_bad_between_two_good(&env, bad).await;
    assert_eq!(errors[0]["call_id"], "bad-date");
    assert_eq!(errors[0]["stored"], false);
    assert!(errors[0]["error"].as_str().unwrap().contains("call_date"));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_in_a_header_or_the_path_and_a_valid_hmac_signature_are_accepted() {
    let env = Env::start(&[("CALLYZER_WEBHOOK_HMAC_SECRET", HMAC_SECRET)]).await;
    let body = |id: &str| {
        json!([employee(
            "SALES-07",
            "600100200",
            vec![call(id, "601202303", "Outgoing", "2026-01-15 10:05:00")]
        )])
        .to_string()
    };
    let (s, _) = env
        .post_to(
            &env.url(),
            &body("h-1"),
            "application/json",
            &[(HEADER, TOKEN)],
        )
        .await;
    assert_eq!(s, 200, "token in the configured header");
    let (s, _) = env
        .post_to(
            &format!("{}/{TOKEN}", env.url()),
            &body("p-1"),
            "application/json; charset=utf-8",
            &[],
        )
        .await;
    assert_eq!(s, 200, "token as the last path segment");
    let b = body("s-1");
    let sig = hex::encode(callsync::jwt::hmac_sha256(
        HMAC_SECRET.as_bytes(),
        b.as_bytes(),
    ));
    let (s, _) = env
        .post_to(
            &env.url(),
            &b,
            "application/json",
            &[("x-callyzer-signature", &format!("sha256={sig}"))],
        )
        .await;
    assert_eq!(s, 200, "a valid signature without a token");
    let (s, a) = env
        .post_to(
            &env.url(),
            &body("s-2"),
            "application/json",
            &[("x-callyzer-signature", &sig)],
        )
        .await;
    assert_eq!(
        (s, a["error"].as_str()),
        (401, Some("bad_signature")),
        "a signature over another body"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_shared_by_several_leads_prefers_the_advisors_own_lead_then_the_newest_and_is_flagged(
) {
    let env = Env::start(&[]).await;
    env.deliver(&json!([
        employee(
            "SALES-07",
            "600100200",
            vec![call(
                "own",
                "602 000 000",
                "Outgoing",
                "2026-01-15 10:05:00"
            )]
        ),
        employee(
            "SALES-99",
            "600100299",
            vec![call(
                "newest",
                "602000000",
                "Outgoing",
                "2026-01-15 10:05:00"
            )]
        ),
    ]))
    .await;
    let db = &env.stack.db;
    assert_eq!(
        db.scalar::<i64>("select lead_id from callsync.call where id = 'own'")
            .await,
        4,
        "Olga's own (older) lead"
    );
    assert_eq!(
        db.scalar::<i64>("select lead_id from callsync.call where id = 'newest'")
            .await,
        3,
        "nobody's own: the newest lead"
    );
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.call where lead_match_ambiguous")
            .await,
        2
    );
    assert_eq!(
        db.scalar::<String>("select name from callsync.advisor where emp_code = 'SALES-99'")
            .await,
        "SALES-99",
        "an unknown employee becomes an advisor"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_date_and_time_are_read_in_the_account_time_zone_and_kept_raw() {
    let env = Env::start(&[]).await;
    let mut summer = call("summer", "601202303", "Outgoing", "2026-07-15 10:05:00");
    summer["call_date"] = json!("2026-07-15");
    env.deliver(&json!([employee(
        "SALES-07",
        "600100200",
        vec![
            call("winter", "601202303", "Outgoing", "2026-01-15 10:05:00"),
            summer
        ]
    )]))
    .await;
    let utc = |id: &str| {
        format!("select to_char(called_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') || ' ' || call_date || ' ' || call_time from callsync.call where id = '{id}'")
    };
    let db = &env.stack.db;
    assert_eq!(
        db.scalar::<String>(&utc("winter")).await,
        "2026-01-15 09:00 2026-01-15 10:00:00",
        "CET is UTC+1"
    );
    assert_eq!(
        db.scalar::<String>(&utc("summer")).await,
        "2026-07-15 08:00 2026-07-15 10:00:00",
        "CEST is UTC+2"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_statistics_count_calls_by_type_per_advisor_with_team_totals_for_the_managers_team_only(
) {
    let env = Env::start(&[]).await;
    env.deliver(&json!([
        employee(
            "SALES-07",
            "600100200",
            vec![
                call("o1", "601202303", "Outgoing", "2026-01-15 10:05:00"),
                call("o2", "601202303", "Incoming", "2026-01-15 10:06:00"),
                call("o3", "699999999", "Missed", "2026-01-15 10:07:00"),
            ]
        ),
        employee(
            "SALES-08",
            "600100201",
            vec![call("p1", "601202303", "Outgoing", "2026-01-15 10:08:00")]
        ),
        employee(
            "SALES-20",
            "600100202",
            vec![call("b1", "601202303", "Rejected", "2026-01-15 10:09:00")]
        ),
    ]))
    .await;
    let period = json!({"p_from": "2026-01-01T00:00:00Z", "p_to": "2026-02-01T00:00:00Z"});
    let (status, rows) = env
        .rpc(
            "team_call_stats",
            period.clone(),
            &env.stack.user_token(MANAGER_A),
        )
        .await;
    assert_eq!(status, 200, "{rows}");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "Olga, Piotr and team A's total: {rows:?}");
    let olga = rows.iter().find(|r| r["advisor_name"] == "Olga").unwrap();
    assert_eq!(
        (
            olga["outgoing"].as_i64(),
            olga["incoming"].as_i64(),
            olga["missed"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(olga["total_duration_s"], 180);
    assert_eq!(olga["unique_clients"], 2);
    assert_eq!(olga["matched_calls"], 2);
    let total = rows.iter().find(|r| r["is_total"] == true).unwrap();
    assert_eq!(total["total_calls"], 4);
    assert_eq!(
        total["unique_clients"], 2,
        "unique across the team, not summed"
    );
    let (_, rows) = env
        .rpc(
            "team_call_stats",
            period.clone(),
            &env.stack.user_token(ADMIN),
        )
        .await;
    assert_eq!(rows.as_array().unwrap().len(), 5, "admin: both teams");
    let (_, rows) = env.rpc("team_call_stats", json!({"p_from": "2026-01-01T00:00:00Z", "p_to": "2026-02-01T00:00:00Z", "p_team_id": 1}), &env.stack.user_token(MANAGER_B)).await;
    assert_eq!(
        rows.as_array().unwrap().len(),
        0,
        "another team's manager gets nothing for team A"
    );
    let (_, rows) = env
        .rpc(
            "team_call_stats",
            period,
            &env.stack.user_token(ADVISOR_PIOTR),
        )
        .await;
    let rows = rows.as_array().unwrap();
    assert!(
        rows.iter()
            .all(|r| r["advisor_name"] == "Piotr" || r["is_total"] == true),
        "an advisor sees only themselves"
    );
    env.shutdown().await;
}
