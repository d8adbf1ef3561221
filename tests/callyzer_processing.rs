//! The Callyzer processing SQL on its own (no HTTP): the phone rules agree
//! between Rust and SQL, lead phones normalize on insert, the worker's role may
//! apply calls but read nothing, and the newest copy wins in either order.
#![allow(clippy::unwrap_used)]
mod common;

use callsync::domain::call_record::parse_delivery;
use callsync::domain::phone_number::{PhoneNumber, SHARED_CASES};
use callsync::jobs::callyzer_call_in::{apply_calls, CallSource};
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

/// Stores `bodies` as webhook events (as the Edge Function's RPC does) and
/// parses them; returns the deliveries ready for the batcher.
async fn stored_deliveries(
    db: &TestDb,
    bodies: &[serde_json::Value],
) -> Vec<callsync::jobs::callyzer_apply_batcher::Delivery> {
    let c = db.pool.get().await.unwrap();
    let mut out = Vec::new();
    for body in bodies {
        let ack: serde_json::Value = c
            .query_one(
                "select public.ingest_callyzer_webhook($1)",
                &[&body.to_string()],
            )
            .await
            .unwrap()
            .get(0);
        let d = parse_delivery(body, "48").unwrap();
        out.push(callsync::jobs::callyzer_apply_batcher::Delivery {
            event_id: ack["event_id"].as_i64().unwrap(),
            records: d.records,
            problems: d.problems,
        });
    }
    out
}

fn two_calls(prefix: &str) -> serde_json::Value {
    json!([{"emp_code": "E1", "emp_country_code": "48", "emp_number": "600100200", "call_logs": [
        {"id": format!("{prefix}-1"), "client_number": "601202303", "duration": 3, "call_type": "Outgoing",
         "call_date": "2026-01-15", "call_time": "10:00:00", "modified_at": "2026-01-15 10:01:00"},
        {"id": format!("{prefix}-2"), "client_number": "601202304", "duration": 4, "call_type": "Missed",
         "call_date": "2026-01-15", "call_time": "10:05:00", "modified_at": "2026-01-15 10:06:00"}]}])
}

#[tokio::test]
async fn deliveries_ready_together_are_applied_in_one_statement_and_each_event_keeps_its_own_outcome(
) {
    let db = TestDb::new().await;
    // counts the deliveries each insert statement on callsync.call carried
    db.exec(
        "create table public.insert_statements (events integer);
         create function public.log_insert_statement() returns trigger language plpgsql as $$
         begin insert into public.insert_statements select count(distinct webhook_event_id) from new_rows; return null; end $$;
         create trigger log_inserts after insert on callsync.call referencing new table as new_rows
             for each statement execute function public.log_insert_statement();",
    )
    .await;
    let mut third = two_calls("c");
    third[0]["call_logs"]
        .as_array_mut()
        .unwrap()
        .push(json!({"client_number": "601202305", "call_type": "Incoming"})); // no id: refused
    let deliveries = stored_deliveries(&db, &[two_calls("a"), two_calls("b"), third]).await;
    let ids: Vec<i64> = deliveries.iter().map(|d| d.event_id).collect();

    let batcher =
        callsync::jobs::callyzer_apply_batcher::ApplyBatcher::start(db.worker_pool.clone());
    // all three are handed over before the appliers run (one-thread runtime)
    let results =
        futures_util::future::join_all(deliveries.into_iter().map(|d| batcher.apply(d))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    assert_eq!(
        db.scalar::<Vec<i32>>("select array_agg(events) from public.insert_statements")
            .await,
        vec![3],
        "one statement carried the three deliveries"
    );
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.call").await,
        6
    );
    let c = db.pool.get().await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        let row = c
            .query_one(
                "select status, error, (select count(*) from callsync.call where webhook_event_id = e.id)
                 from callsync.webhook_event as e where e.id = $1",
                &[id],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "processed", "event {i}");
        assert_eq!(row.get::<_, i64>(2), 2, "event {i} owns its two calls");
        let error: Option<String> = row.get(1);
        if i == 2 {
            assert_eq!(error.as_deref(), Some("1 of 3 records rejected"));
        } else {
            assert_eq!(error, None, "event {i}");
        }
    }
}

#[tokio::test]
async fn a_delivery_that_breaks_its_batch_fails_alone_and_the_others_are_applied() {
    let db = TestDb::new().await;
    // a fault only the middle delivery's call triggers
    db.exec(
        "create function public.refuse_poison() returns trigger language plpgsql as $$
         begin if new.id = 'poison-1' then raise exception 'poisoned call'; end if; return new; end $$;
         create trigger refuse_poison before insert on callsync.call
             for each row execute function public.refuse_poison();",
    )
    .await;
    let deliveries =
        stored_deliveries(&db, &[two_calls("a"), two_calls("poison"), two_calls("c")]).await;
    let ids: Vec<i64> = deliveries.iter().map(|d| d.event_id).collect();

    let batcher =
        callsync::jobs::callyzer_apply_batcher::ApplyBatcher::start(db.worker_pool.clone());
    let results =
        futures_util::future::join_all(deliveries.into_iter().map(|d| batcher.apply(d))).await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    let err = results[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("poisoned call"), "{err}");

    let c = db.pool.get().await.unwrap();
    let statuses: Vec<String> = c
        .query_one(
            "select array_agg(status order by id) from callsync.webhook_event where id = any($1)",
            &[&ids],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(statuses, ["processed", "received", "processed"]);
    assert_eq!(
        db.scalar::<Vec<String>>("select array_agg(id order by id) from callsync.call")
            .await,
        ["a-1", "a-2", "c-1", "c-2"]
    );
}
