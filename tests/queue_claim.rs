//! The claim: every job exactly once under concurrency, priority order, unique
//! keys, attempts and discard, per-kind limits.
#![allow(clippy::unwrap_used)] // tests and benchmarks fail loudly by design

mod common;

use callsync::jobs::Handlers;
use callsync::queue::store::NewJob;
use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_workers_drain_20000_jobs_each_exactly_once() {
    let db = TestDb::new().await;
    insert_jobs(&db, "count", 20_000, 100).await;
    let recorder = Recorder::default();
    let workers: Vec<RunningWorker> = (0..8)
        .map(|i| {
            RunningWorker::spawn(
                &db,
                Handlers::new().register("count", recorder.clone()),
                test_options(&format!("w{i}")),
            )
        })
        .collect();

    wait_until(
        "all 20,000 jobs completed",
        Duration::from_secs(120),
        || async { count_state(&db, "completed").await == 20_000 },
    )
    .await;
    for w in workers {
        w.shutdown().await;
    }

    assert_eq!(recorder.runs.lock().unwrap().len(), 20_000, "every job ran");
    assert_eq!(recorder.total(), 20_000, "no job ran twice");
    let by_worker: i64 = db
        .scalar("select count(distinct leased_by) from callsync.job")
        .await;
    assert!(by_worker > 1, "the work was shared, not done by one worker");
}

#[tokio::test]
async fn higher_priority_jobs_run_first() {
    let db = TestDb::new().await;
    insert_jobs(&db, "ordered", 5, 100).await; // backlog, enqueued first
    insert_jobs(&db, "ordered", 5, 10).await; // real-time, enqueued later
    let store = db.store();
    let claimed = store.claim("w", 10, Duration::from_secs(30)).await.unwrap();
    let priorities: Vec<i64> = claimed
        .iter()
        .map(|j| j.args["n"].as_i64().unwrap())
        .collect();
    assert_eq!(claimed.len(), 10);
    let ids: Vec<i64> = claimed.iter().map(|j| j.id.0).collect();
    // ids 6..=10 carry priority 10 and must all come before ids 1..=5
    assert_eq!(
        &ids[..5],
        &[6, 7, 8, 9, 10],
        "claimed in order {ids:?} ({priorities:?})"
    );
}

#[tokio::test]
async fn a_duplicate_unique_key_is_refused_while_the_first_is_live() {
    let db = TestDb::new().await;
    let store = db.store();
    let job = NewJob {
        unique_key: Some("reconcile".into()),
        ..NewJob::new("reconcile", serde_json::json!({}))
    };
    let first = store.enqueue(&job).await.unwrap();
    assert!(first.is_some());
    assert_eq!(
        store.enqueue(&job).await.unwrap(),
        None,
        "refused while available"
    );

    let claimed = store.claim("w", 1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        store.enqueue(&job).await.unwrap(),
        None,
        "refused while running"
    );

    let done = store
        .complete(&[(claimed[0].id, claimed[0].lease_id)])
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert!(
        store.enqueue(&job).await.unwrap().is_some(),
        "accepted once the first finished"
    );
}

#[tokio::test]
async fn a_job_is_discarded_after_max_attempts_with_its_last_error() {
    let db = TestDb::new().await;
    let store = db.store();
    let id = store
        .enqueue(&NewJob::new("flaky", serde_json::json!({})))
        .await
        .unwrap()
        .unwrap();
    let recorder = Recorder {
        fail_with: Some((true, "upstream timed out".into())),
        ..Recorder::default()
    };
    let w = RunningWorker::spawn(
        &db,
        Handlers::new().register("flaky", recorder.clone()),
        test_options("w"),
    );
    wait_until("the job is discarded", Duration::from_secs(30), || async {
        count_state(&db, "discarded").await == 1
    })
    .await;
    w.shutdown().await;

    assert_eq!(
        recorder.count(id.0),
        3,
        "three attempts (the default max), no more"
    );
    let (attempt, error): (i32, String) = {
        let c = db.pool.get().await.unwrap();
        let r = c
            .query_one(
                "select attempt, last_error from callsync.job where id = $1",
                &[&id.0],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(attempt, 3);
    assert_eq!(error, "upstream timed out");
}

#[tokio::test]
async fn a_permanent_error_discards_at_once() {
    let db = TestDb::new().await;
    let store = db.store();
    let id = store
        .enqueue(&NewJob::new("bad", serde_json::json!({})))
        .await
        .unwrap()
        .unwrap();
    let recorder = Recorder {
        fail_with: Some((false, "malformed payload".into())),
        ..Recorder::default()
    };
    let w = RunningWorker::spawn(
        &db,
        Handlers::new().register("bad", recorder.clone()),
        test_options("w"),
    );
    wait_until("the job is discarded", Duration::from_secs(30), || async {
        count_state(&db, "discarded").await == 1
    })
    .await;
    w.shutdown().await;
    assert_eq!(recorder.count(id.0), 1, "no retry for a permanent error");
}

#[tokio::test]
async fn a_job_of_an_unknown_kind_is_discarded_with_a_clear_error() {
    let db = TestDb::new().await;
    db.store()
        .enqueue(&NewJob::new("mystery", serde_json::json!({})))
        .await
        .unwrap();
    let w = RunningWorker::spawn(
        &db,
        Handlers::new().register("count", Recorder::default()),
        test_options("w"),
    );
    wait_until("the job is discarded", Duration::from_secs(30), || async {
        count_state(&db, "discarded").await == 1
    })
    .await;
    w.shutdown().await;
    let error: String = db.scalar("select last_error from callsync.job").await;
    assert!(
        error.contains("no handler for job kind \"mystery\""),
        "{error}"
    );
}

#[tokio::test]
async fn the_max_attempts_setting_applies_to_new_jobs_without_a_restart() {
    let db = TestDb::new().await;
    db.exec("update callsync.setting set value = '5' where key = 'queue.max_attempts'")
        .await;
    db.store()
        .enqueue(&NewJob::new("x", serde_json::json!({})))
        .await
        .unwrap();
    let max: i32 = db.scalar("select max_attempts from callsync.job").await;
    assert_eq!(max, 5);
}

#[tokio::test]
async fn a_kind_with_max_running_never_exceeds_it_across_workers() {
    let db = TestDb::new().await;
    db.exec("insert into callsync.job_kind (kind, max_running) values ('limited', 2)")
        .await;
    insert_jobs(&db, "limited", 10, 100).await;
    let a = db
        .store()
        .claim("a", 10, Duration::from_secs(30))
        .await
        .unwrap();
    let b = db
        .store()
        .claim("b", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(a.len() + b.len(), 2, "two slots in all, whoever asks");
    db.store()
        .complete(&[(a[0].id, a[0].lease_id)])
        .await
        .unwrap();
    let c = db
        .store()
        .claim("c", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(c.len(), 1, "a finished job frees one slot");
}

#[tokio::test]
async fn a_rate_limited_kind_starts_at_most_once_per_interval() {
    let db = TestDb::new().await;
    db.exec("insert into callsync.job_kind (kind, min_interval) values ('api_call', '1 hour')")
        .await;
    insert_jobs(&db, "api_call", 3, 100).await;
    insert_jobs(&db, "other", 3, 100).await;
    let first = db
        .store()
        .claim("a", 10, Duration::from_secs(30))
        .await
        .unwrap();
    let second = db
        .store()
        .claim("b", 10, Duration::from_secs(30))
        .await
        .unwrap();
    let api_calls = first
        .iter()
        .chain(second.iter())
        .filter(|j| j.kind == "api_call")
        .count();
    let others = first
        .iter()
        .chain(second.iter())
        .filter(|j| j.kind == "other")
        .count();
    assert_eq!(api_calls, 1, "one start per interval across both claimers");
    assert_eq!(others, 3, "unlimited kinds are not held back");
}

#[tokio::test]
async fn a_paused_kind_is_not_claimed_until_resumed() {
    let db = TestDb::new().await;
    db.exec("insert into callsync.job_kind (kind, paused) values ('held', true)")
        .await;
    insert_jobs(&db, "held", 2, 100).await;
    assert!(db
        .store()
        .claim("a", 10, Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());
    db.exec("update callsync.job_kind set paused = false where kind = 'held'")
        .await;
    assert_eq!(
        db.store()
            .claim("a", 10, Duration::from_secs(30))
            .await
            .unwrap()
            .len(),
        2
    );
}
