//! The advisor and lead a call names (20261123110000: checked once per
//! statement instead of by per-row foreign keys) hold as a foreign key would
//! under concurrency: a lead named by an uncommitted call cannot be deleted
//! until that call commits, and a call matched to a lead that is deleted
//! before it commits is refused instead of pointing at nothing; the parked
//! calls (20261123130000) follow their calls when those are deleted or truncated.
#![allow(clippy::unwrap_used)]
mod common;

use common::{wait_for_lock_wait, TestDb};
use serde_json::{json, Value};

const FIXTURE: &str = r#"
    insert into callsync.advisor (name, emp_code, country_code, phone_number, phone_e164)
    values ('Olga', 'SALES-07', '48', '600100200', '+48600100200');
    insert into callsync.lead (name) values ('Kowalski');
    insert into callsync.lead_phone (lead_id, raw) select id, '+48601999001' from callsync.lead;
"#;

/// One call to the lead's number, in the apply's JSON form.
fn call(id: &str) -> Value {
    json!([{"id": id, "emp_code": "SALES-07", "emp_name": "Olga", "emp_e164": "+48600100200",
            "client_country_code": "48", "client_number": "601999001", "client_e164": "+48601999001",
            "duration_s": 30, "call_type": "Incoming", "call_date": "2026-01-05", "call_time": "10:00:00",
            "modified_local": "2026-01-05 10:01:00", "modified_offset_s": 0, "raw": {"id": id}}])
}

const APPLY: &str = "select callsync.callyzer_apply_calls(null, $1, '[]', 'api')";

#[tokio::test]
async fn a_lead_named_by_an_uncommitted_call_cannot_be_deleted_until_it_commits() {
    let db = TestDb::new().await;
    db.exec(FIXTURE).await;
    let mut worker = db.worker_pool.get().await.unwrap();
    let tx = worker.transaction().await.unwrap();
    tx.query_one(APPLY, &[&call("cz-1")]).await.unwrap();

    let owner = db.pool.get().await.unwrap();
    owner
        .batch_execute("set lock_timeout = '300ms'")
        .await
        .unwrap();
    let refused = owner
        .execute("delete from callsync.lead", &[])
        .await
        .unwrap_err();
    assert_eq!(
        refused.code().map(|c| c.code()),
        Some("55P03"),
        "the delete waits for the call's lock: {refused}"
    );

    tx.commit().await.unwrap();
    owner
        .execute("delete from callsync.lead", &[])
        .await
        .unwrap();
    let lead: Option<i64> = db
        .scalar("select lead_id from callsync.call where id = 'cz-1'")
        .await;
    assert_eq!(lead, None, "the committed call lost its deleted lead");
}

#[tokio::test]
async fn a_call_matched_to_a_lead_deleted_before_it_commits_is_refused() {
    let db = TestDb::new().await;
    db.exec(FIXTURE).await;
    let mut owner = db.pool.get().await.unwrap();
    let deleting = owner.transaction().await.unwrap();
    deleting
        .execute("delete from callsync.lead", &[])
        .await
        .unwrap();

    // the apply still sees the lead (the delete is not committed), matches the
    // call to it, and waits at the check for the deleting transaction
    let pool = db.worker_pool.clone();
    let apply = tokio::spawn(async move {
        let worker = pool.get().await.unwrap();
        worker.query_one(APPLY, &[&call("cz-2")]).await
    });
    wait_for_lock_wait(
        &db,
        "the apply waits for the lead's lock",
        "usename = 'callsync_worker'",
    )
    .await;
    deleting.commit().await.unwrap();

    let refused = apply.await.unwrap().unwrap_err();
    assert_eq!(
        refused.code().map(|c| c.code()),
        Some("23503"),
        "the call would name a deleted lead: {refused}"
    );
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.call").await,
        0,
        "nothing of the refused apply was stored"
    );
}

#[tokio::test]
async fn truncating_the_calls_also_empties_the_parked_calls() {
    let db = TestDb::new().await;
    db.exec(FIXTURE).await;
    let worker = db.worker_pool.get().await.unwrap();
    let mut unmatched = call("cz-3");
    unmatched[0]["client_number"] = json!("601999777");
    unmatched[0]["client_e164"] = json!("+48601999777");
    worker.query_one(APPLY, &[&unmatched]).await.unwrap();
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.unmatched_call")
            .await,
        1,
        "a call to an unknown number is parked"
    );

    db.exec("truncate callsync.call").await;
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.unmatched_call")
            .await,
        0,
        "no parked row outlives its call"
    );
}

#[tokio::test]
async fn one_truncate_of_the_calls_and_the_parked_calls_together_succeeds() {
    let db = TestDb::new().await;
    db.exec(FIXTURE).await;
    let worker = db.worker_pool.get().await.unwrap();
    worker.query_one(APPLY, &[&call("cz-4")]).await.unwrap();

    db.exec("truncate callsync.call, callsync.unmatched_call")
        .await;
    assert_eq!(
        db.scalar::<i64>("select count(*) from callsync.call").await,
        0,
        "the calls are gone"
    );
}
