//! Client rollups hold one row per (advisor or team, day, client) that has
//! calls, with no count behind it (20261123150000): a key goes when its last
//! call goes. An apply that adds a call to a team key already present writes
//! nothing to that key, so a concurrent delete of the team's other call must
//! wait for the apply's commit before it decides; otherwise the team key would
//! go while a stored call still needs it. That wait must come before the
//! remover locks any day-stat row, or the apply it waits for can wait on that
//! row in turn: a deadlock (20261123180000).
//! Two applies that add days of one chain at once cannot see each other's
//! uncommitted day, so the later day may keep a stale `prev_day`: the hourly
//! repair (20261123190000) sets it right.
#![allow(clippy::unwrap_used)]
mod common;

use common::{wait_for_lock_wait, TestDb};
use deadpool_postgres::tokio_postgres;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// One team, two advisors.
const FIXTURE: &str = r#"
    insert into callsync.team (name) values ('North');
    insert into callsync.advisor (name, emp_code, team_id)
    select v.name, v.code, t.id from callsync.team as t,
           (values ('Olga', 'SALES-07'), ('Piotr', 'SALES-08')) as v(name, code);
"#;

/// A call of advisor `emp` to the same client on the same day.
fn call(id: &str, emp: &str) -> Value {
    call_to(id, emp, "601999001")
}

/// A call of advisor `emp` to `number` on the same day.
fn call_to(id: &str, emp: &str, number: &str) -> Value {
    call_on(id, emp, number, "2026-01-05")
}

/// A call of advisor `emp` to `number` on `date`.
fn call_on(id: &str, emp: &str, number: &str, date: &str) -> Value {
    json!([{"id": id, "emp_code": emp, "emp_name": emp,
            "client_country_code": "48", "client_number": number, "client_e164": format!("+48{number}"),
            "duration_s": 30, "call_type": "Incoming", "call_date": date, "call_time": "10:00:00",
            "modified_local": "2026-01-05 18:00:00", "modified_offset_s": 0, "raw": {"id": id}}])
}

const APPLY: &str = "select callsync.callyzer_apply_calls(null, $1, '[]', 'api')";
const ADVISOR_KEYS: &str =
    "select count(*) from callsync.call_day_client where client = 48601999001";
const TEAM_KEYS: &str =
    "select count(*) from callsync.call_team_day_client where client = 48601999001";

/// A database with the fixture and one committed call, cz-1 (SALES-07 to the client).
async fn with_first_call() -> TestDb {
    let db = TestDb::new().await;
    db.exec(FIXTURE).await;
    let worker = db.worker_pool.get().await.unwrap();
    worker
        .query_one(APPLY, &[&call("cz-1", "SALES-07")])
        .await
        .unwrap();
    db
}

/// Starts `sql` as the owner on a connection of its own and returns once it
/// waits for a lock (`what` names that wait); the handle yields its outcome.
async fn owner_waits(
    db: &TestDb,
    sql: &'static str,
    what: &str,
) -> JoinHandle<Result<u64, tokio_postgres::Error>> {
    let pool = db.pool.clone();
    let running = tokio::spawn(async move { pool.get().await.unwrap().execute(sql, &[]).await });
    let this_statement = format!("query = '{}'", sql.replace('\'', "''"));
    wait_for_lock_wait(db, what, &this_statement).await;
    running
}

#[tokio::test]
async fn a_team_key_stays_when_its_other_call_goes_while_an_uncommitted_call_adds_to_it() {
    let db = with_first_call().await;
    assert_eq!(db.scalar::<i64>(TEAM_KEYS).await, 1);

    // the other advisor's call to the same client that day, not committed yet:
    // the team's key is present, so the apply writes nothing to it
    let mut adding = db.worker_pool.get().await.unwrap();
    let tx = adding.transaction().await.unwrap();
    tx.query_one(APPLY, &[&call("cz-2", "SALES-08")])
        .await
        .unwrap();

    // the first call goes meanwhile: the team key's removal check must wait
    let delete = owner_waits(
        &db,
        "delete from callsync.call where id = 'cz-1'",
        "the delete waits for the adding transaction",
    )
    .await;
    tx.commit().await.unwrap();
    delete.await.unwrap().unwrap();

    assert_eq!(
        db.scalar::<i64>(ADVISOR_KEYS).await,
        1,
        "only the second advisor's key is left"
    );
    assert_eq!(
        db.scalar::<i64>(TEAM_KEYS).await,
        1,
        "cz-2 is stored, so the team's key is still there"
    );

    db.exec("delete from callsync.call where id = 'cz-2'").await;
    assert_eq!(
        db.scalar::<i64>(ADVISOR_KEYS).await + db.scalar::<i64>(TEAM_KEYS).await,
        0,
        "the last call took its keys with it"
    );
}

#[tokio::test]
async fn a_call_moved_off_its_client_waits_for_an_apply_in_flight_without_a_deadlock() {
    let db = with_first_call().await;

    // an apply in flight: the other advisor's call, not committed yet
    let mut adding = db.worker_pool.get().await.unwrap();
    let tx = adding.transaction().await.unwrap();
    tx.query_one(APPLY, &[&call_to("cz-2", "SALES-08", "601999002")])
        .await
        .unwrap();

    // cz-1 moves to another client (its old key may go, so the update waits for
    // the apply) and another duration (so it also changes its day-stat row)
    let update = owner_waits(
        &db,
        "update callsync.call set client_e164 = '+48601999003', duration_s = 45 where id = 'cz-1'",
        "the update waits for the apply in flight",
    )
    .await;

    // the same transaction then applies a call of cz-1's advisor that day: it
    // needs that advisor's day-stat row, which the waiting update must not hold
    tx.query_one(APPLY, &[&call_to("cz-3", "SALES-07", "601999004")])
        .await
        .expect("the second apply is not a deadlock victim");
    tx.commit().await.unwrap();
    update
        .await
        .unwrap()
        .expect("the update is not a deadlock victim and completes after the commit");

    let (calls, seconds): (i64, i64) = {
        let c = db.pool.get().await.unwrap();
        let r = c
            .query_one(
                "select s.total_calls::bigint, s.total_duration_s::bigint from callsync.call_day_stat as s
                 join callsync.advisor as a on a.id = s.advisor_id where a.emp_code = 'SALES-07'",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((calls, seconds), (2, 75), "cz-1 at 45 s and cz-3 at 30 s");
    assert_eq!(
        db.scalar::<i64>(ADVISOR_KEYS).await + db.scalar::<i64>(TEAM_KEYS).await,
        0,
        "cz-1's old client has no call left, so its keys went"
    );
}

/// `prev_day` of the advisor and team keys of client 48601999001 on `day`.
async fn prev_days(
    db: &TestDb,
    day: &str,
) -> (Option<chrono::NaiveDate>, Option<chrono::NaiveDate>) {
    let c = db.pool.get().await.unwrap();
    let r = c
        .query_one(
            &format!(
                "select (select prev_day from callsync.call_day_client where client = 48601999001 and day = '{day}'),
                        (select prev_day from callsync.call_team_day_client where client = 48601999001 and day = '{day}')"
            ),
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

#[tokio::test]
async fn two_days_of_one_chain_applied_at_once_get_the_right_prev_day_from_the_repair() {
    let db = TestDb::new().await;
    db.exec(FIXTURE).await;
    let day1 = chrono::NaiveDate::from_ymd_opt(2026, 1, 5);

    // one advisor's call to a client on the 5th, not committed yet...
    let mut first = db.worker_pool.get().await.unwrap();
    let tx = first.transaction().await.unwrap();
    tx.query_one(
        APPLY,
        &[&call_on("cz-1", "SALES-07", "601999001", "2026-01-05")],
    )
    .await
    .unwrap();
    // ...while the other advisor's call to the same client on the 7th is applied
    // and committed: neither saw the other's day (they share the team chain)
    let worker = db.worker_pool.get().await.unwrap();
    worker
        .query_one(
            APPLY,
            &[&call_on("cz-2", "SALES-08", "601999001", "2026-01-07")],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        prev_days(&db, "2026-01-07").await.1,
        None,
        "the race as it is: the team key of the 7th missed the 5th"
    );

    let fixed: i32 = db
        .scalar("select callsync.call_client_rollups_repair('2026-01-01')")
        .await;
    assert_eq!(fixed, 1, "one key repaired");
    assert_eq!(
        prev_days(&db, "2026-01-07").await,
        (None, day1),
        "the advisor chain of the 7th has no earlier day; the team chain's is the 5th"
    );
    assert_eq!(
        db.scalar::<i32>("select callsync.call_client_rollups_repair('2026-01-01')")
            .await,
        0,
        "nothing left to repair"
    );
}
