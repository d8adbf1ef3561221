//! Unmatched calls (issue 4): the scheduled retry stops at the maximum number
//! of attempts, and a lead that gets a waiting number (created with it, or
//! given it) picks up its calls in the same transaction. Calls are applied with
//! the worker role through the same SQL as the webhook path.
#![allow(clippy::unwrap_used)]
mod common;

use common::TestDb;
use serde_json::{json, Value};

const FIXTURE: &str = r#"
    insert into callsync.advisor (name, emp_code, country_code, phone_number, phone_e164)
    values ('Olga', 'SALES-07', '48', '600100200', '+48600100200');
"#;

fn call(id: &str, client_e164: &str) -> Value {
    json!({"id": id, "emp_code": "SALES-07", "emp_name": "Olga", "emp_e164": "+48600100200",
           "client_country_code": "48", "client_number": &client_e164[3..], "client_e164": client_e164,
           "duration_s": 30, "call_type": "Missed", "call_date": "2026-01-05", "call_time": "10:00:00",
           "modified_local": "2026-01-05 10:01:00", "modified_offset_s": 0, "raw": {"id": id}})
}

/// Applies calls as the worker does (role callsync_worker, the ingest's upsert).
async fn apply(db: &TestDb, calls: Vec<Value>) {
    let client = db.worker_pool.get().await.unwrap();
    client
        .query_one(
            "select callsync.callyzer_apply_calls(null, $1, '[]', 'api')",
            &[&Value::Array(calls)],
        )
        .await
        .unwrap();
}

async fn retry(db: &TestDb) -> Value {
    let client = db.worker_pool.get().await.unwrap();
    client
        .query_one("select callsync.rematch_unmatched_calls()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn attempts_stop_at_the_maximum() {
    let db = TestDb::new().await;
    db.exec(FIXTURE).await;
    apply(
        &db,
        vec![call("cz-1", "+48601999001"), call("cz-2", "+48601999002")],
    )
    .await;
    assert_eq!(
        db.scalar::<i32>("select min(attempts) from callsync.unmatched_call")
            .await,
        1,
        "the ingest was the first attempt"
    );

    let mut checked = Vec::new();
    for _ in 0..5 {
        checked.push(retry(&db).await["checked"].as_i64().unwrap());
    }
    assert_eq!(checked, vec![2, 2, 0, 0, 0], "two retries, then none");
    assert_eq!(
        db.scalar::<String>(
            "select string_agg(attempts::text, ',' order by call_id) from callsync.unmatched_call"
        )
        .await,
        "3,3"
    );
    assert!(
        db.scalar::<bool>(
            "select bool_and(last_attempt_at > created_at) from callsync.unmatched_call"
        )
        .await
    );

    // a lower maximum (a setting) stops earlier; a higher one lets them try again
    db.exec(
        "update callsync.setting set value = '4' where key = 'callyzer.unmatched_max_attempts'",
    )
    .await;
    assert_eq!(retry(&db).await["checked"], 2);
    assert_eq!(retry(&db).await["checked"], 0);
}

#[tokio::test]
async fn the_scheduled_retry_matches_a_call_whose_lead_appeared_meanwhile() {
    let db = TestDb::new().await;
    db.exec(FIXTURE).await;
    apply(&db, vec![call("cz-1", "+48601999001")]).await;
    // a lead phone written without the trigger (e.g. a bulk load that disabled it)
    db.exec(
        "alter table callsync.lead_phone disable trigger lead_phone_pick_up_calls_on_insert;
         insert into callsync.lead (name, advisor_id) values ('Late lead', 1);
         insert into callsync.lead_phone (lead_id, raw) values (1, '+48 601 999 001');
         alter table callsync.lead_phone enable trigger lead_phone_pick_up_calls_on_insert;",
    )
    .await;
    let out = retry(&db).await;
    assert_eq!(out["matched"], 1, "{out}");
    assert_eq!(
        db.scalar::<Option<i64>>("select lead_id from callsync.call where id = 'cz-1'")
            .await,
        Some(1)
    );
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.unmatched_call")
            .await,
        0
    );
}

#[tokio::test]
async fn a_new_lead_with_a_waiting_number_gets_its_calls_at_once() {
    let db = TestDb::new().await;
    db.exec(FIXTURE).await;
    apply(
        &db,
        vec![
            call("cz-1", "+48601999001"),
            call("cz-2", "+48601999001"),
            call("cz-3", "+48601999003"),
        ],
    )
    .await;
    // even calls whose retries are spent: a new lead is new information
    db.exec("update callsync.unmatched_call set attempts = 3")
        .await;

    db.exec(
        "insert into callsync.lead (name, advisor_id) values ('New lead', 1);
         insert into callsync.lead_phone (lead_id, raw) values (1, '601 999 001');",
    )
    .await;
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.call where lead_id = 1")
            .await,
        2,
        "both waiting calls, in the same transaction"
    );
    assert_eq!(
        db.scalar::<String>("select string_agg(call_id, ',') from callsync.unmatched_call")
            .await,
        "cz-3"
    );
    assert_eq!(
        db.scalar::<i64>("select count(*) from public.lead_call_registry where lead_id = 1")
            .await,
        2,
        "on the lead details screen"
    );

    // a lead given a new number picks up that number's calls too
    db.exec("update callsync.lead_phone set raw = '+48601999003' where lead_id = 1")
        .await;
    assert_eq!(
        db.scalar::<Option<i64>>("select lead_id from callsync.call where id = 'cz-3'")
            .await,
        Some(1)
    );
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.unmatched_call")
            .await,
        0
    );
}
