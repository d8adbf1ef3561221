//! The Callyzer processing SQL on its own (no HTTP): the phone rules agree
//! between Rust and SQL, lead phones normalize on insert, the worker's role may
//! apply calls but read nothing, and the newest copy wins in either order.
#![allow(clippy::unwrap_used)]
mod common;

use callsync::domain::call_record::parse_delivery;
use callsync::domain::phone_number::{PhoneNumber, SHARED_CASES};
use callsync::jobs::callyzer_delivery::{apply_calls, CallSource};
use common::*;
use serde_json::json;

#[tokio::test]
async fn normalization_in_sql_agrees_with_the_rust_phone_type_on_every_shared_case() {
    let db = TestDb::new().await;
    let c = db.pool.get().await.unwrap();
    for (cc, n, d, want) in SHARED_CASES {
        let sql: Option<String> = c
            .query_one("select callsync.e164($1, $2, $3)", &[cc, n, d])
            .await
            .unwrap()
            .get(0);
        let rust = PhoneNumber::from_parts(cc, n, d)
            .ok()
            .map(|p| p.as_str().to_string());
        assert_eq!(sql.as_deref(), *want, "SQL on {cc:?} {n:?} {d:?}");
        assert_eq!(rust, sql, "Rust and SQL differ on {cc:?} {n:?} {d:?}");
    }
}

#[tokio::test]
async fn a_lead_phone_is_normalized_with_the_default_country_and_garbage_is_refused() {
    let db = TestDb::new().await;
    db.exec("insert into callsync.lead (name) values ('L'); insert into callsync.lead_phone (lead_id, raw) values (1, '0601 202-303')")
        .await;
    assert_eq!(
        db.scalar::<String>("select e164 from callsync.lead_phone")
            .await,
        "+48601202303"
    );
    let c = db.pool.get().await.unwrap();
    let err = c
        .execute(
            "insert into callsync.lead_phone (lead_id, raw) values (1, 'call me')",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("22023"));
}

#[tokio::test]
async fn the_worker_role_applies_calls_but_cannot_read_the_tables() {
    let db = TestDb::new().await;
    let body = json!([{"emp_code": "E1", "emp_country_code": "48", "emp_number": "600100200", "call_logs": [
        {"id": "w-1", "client_number": "601202303", "duration": 3, "call_type": "Outgoing",
         "call_date": "2026-01-15", "call_time": "10:00:00", "modified_at": "2026-01-15 10:01:00"}]}]);
    let d = parse_delivery(&body, "48").unwrap();
    let worker = db.worker_pool.get().await.unwrap();
    let summary = apply_calls(&worker, None, &d.records, &d.problems, CallSource::Api)
        .await
        .unwrap();
    assert_eq!(summary["inserted"], 1);
    assert_eq!(
        db.scalar::<String>("select source from callsync.call")
            .await,
        "api"
    );
    assert!(
        worker
            .query("select * from callsync.call", &[])
            .await
            .is_err(),
        "no direct table access"
    );
}

#[tokio::test]
async fn the_newest_copy_wins_whichever_order_the_copies_arrive_in() {
    let db = TestDb::new().await;
    let copy = |modified: &str, note: &str| {
        json!([{"emp_code": "E1", "call_logs": [
            {"id": "n-1", "client_number": "601202303", "duration": 3, "call_type": "Outgoing", "note": note,
             "call_date": "2026-01-15", "call_time": "10:00:00", "modified_at": modified}]}])
    };
    let worker = db.worker_pool.get().await.unwrap();
    for body in [
        copy("2026-01-15 10:09:00 +01", "new"),
        copy("2026-01-15 10:01:00", "old"),
    ] {
        let d = parse_delivery(&body, "48").unwrap();
        apply_calls(&worker, None, &d.records, &d.problems, CallSource::Webhook)
            .await
            .unwrap();
    }
    assert_eq!(
        db.scalar::<String>("select note from callsync.call").await,
        "new"
    );
    // a batch holding two copies of one call keeps the newer one
    let both = json!([{"emp_code": "E1", "call_logs": [
        {"id": "n-2", "client_number": "1", "duration": 3, "call_type": "Missed", "note": "b",
         "call_date": "2026-01-15", "call_time": "10:00:00", "modified_at": "2026-01-15 11:00:00"},
        {"id": "n-2", "client_number": "1", "duration": 3, "call_type": "Missed", "note": "a",
         "call_date": "2026-01-15", "call_time": "10:00:00", "modified_at": "2026-01-15 10:00:00"}]}]);
    let d = parse_delivery(&both, "48").unwrap();
    let summary = apply_calls(&worker, None, &d.records, &d.problems, CallSource::Webhook)
        .await
        .unwrap();
    assert_eq!(summary["inserted"], 1);
    assert_eq!(
        db.scalar::<String>("select note from callsync.call where id = 'n-2'")
            .await,
        "b"
    );
}
