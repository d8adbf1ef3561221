//! Leases: an expired lease is rescued and the job runs again; a stale lease
//! can neither complete nor fail the job; a heartbeat keeps a long job's lease.
#![allow(clippy::unwrap_used)] // tests and benchmarks fail loudly by design

mod common;

use callsync::jobs::Handlers;
use callsync::queue::store::NewJob;
use callsync::queue::JobState;
use common::*;
use std::time::Duration;

async fn lease_has_expired(db: &TestDb) -> bool {
    db.scalar::<bool>("select coalesce(bool_and(lease_expires_at < now()), false) from callsync.job where state = 'running'")
        .await
}

#[tokio::test]
async fn a_job_whose_lease_expired_is_rescued_and_run_again() {
    let db = TestDb::new().await;
    let store = db.store();
    let id = store
        .enqueue(&NewJob::new("work", serde_json::json!({})))
        .await
        .unwrap()
        .unwrap();
    // A worker claims the job and then dies: nothing ever completes it.
    let claimed = store
        .claim("crashed-worker", 1, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    wait_until("the lease expires", Duration::from_secs(10), || {
        lease_has_expired(&db)
    })
    .await;

    assert_eq!(store.rescue_expired().await.unwrap(), 1);
    assert_eq!(count_state(&db, "retryable").await, 1);
    let error: String = db.scalar("select last_error from callsync.job").await;
    assert!(
        error.contains("crashed-worker"),
        "the rescue says whose lease expired: {error}"
    );

    let recorder = Recorder::default();
    let w = RunningWorker::spawn(
        &db,
        Handlers::new().register("work", recorder.clone()),
        test_options("healthy"),
    );
    wait_until(
        "the rescued job completes",
        Duration::from_secs(10),
        || async { count_state(&db, "completed").await == 1 },
    )
    .await;
    w.shutdown().await;
    assert_eq!(recorder.count(id.0), 1);
    let attempt: i32 = db.scalar("select attempt from callsync.job").await;
    assert_eq!(attempt, 2, "the crashed attempt counts");
}

#[tokio::test]
async fn a_stale_lease_can_neither_complete_nor_fail_the_job() {
    let db = TestDb::new().await;
    let store = db.store();
    store
        .enqueue(&NewJob::new("work", serde_json::json!({})))
        .await
        .unwrap();
    let old = store
        .claim("slow", 1, Duration::from_millis(200))
        .await
        .unwrap()
        .remove(0);
    wait_until("the lease expires", Duration::from_secs(10), || {
        lease_has_expired(&db)
    })
    .await;
    store.rescue_expired().await.unwrap();
    let new = store
        .claim("fast", 1, Duration::from_secs(30))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(new.id, old.id);

    assert!(
        store
            .complete(&[(old.id, old.lease_id)])
            .await
            .unwrap()
            .is_empty(),
        "stale complete refused"
    );
    assert_eq!(
        store.fail(&old, "late failure", None).await.unwrap(),
        None,
        "stale fail refused"
    );
    assert!(
        !store
            .renew_lease(old.id, old.lease_id, Duration::from_secs(30))
            .await
            .unwrap(),
        "stale renew refused"
    );
    assert_eq!(
        count_state(&db, "running").await,
        1,
        "the new attempt is untouched"
    );

    assert_eq!(
        store.complete(&[(new.id, new.lease_id)]).await.unwrap(),
        vec![new.id]
    );
    assert_eq!(count_state(&db, "completed").await, 1);
}

#[tokio::test]
async fn the_last_attempt_is_discarded_when_its_lease_expires() {
    let db = TestDb::new().await;
    let store = db.store();
    let job = NewJob {
        max_attempts: Some(1),
        ..NewJob::new("work", serde_json::json!({}))
    };
    store.enqueue(&job).await.unwrap();
    store
        .claim("crashed", 1, Duration::from_millis(100))
        .await
        .unwrap();
    wait_until("the lease expires", Duration::from_secs(10), || {
        lease_has_expired(&db)
    })
    .await;
    store.rescue_expired().await.unwrap();
    assert_eq!(
        count_state(&db, "discarded").await,
        1,
        "a job that keeps killing workers does not loop forever"
    );
}

#[tokio::test]
async fn a_long_job_keeps_its_lease_by_heartbeat() {
    let db = TestDb::new().await;
    db.store()
        .enqueue(&NewJob::new("long", serde_json::json!({})))
        .await
        .unwrap();
    let recorder = Recorder {
        hold: Some(Duration::from_millis(7000)), // more than two leases long
        ..Recorder::default()
    };
    let mut opts = test_options("w");
    // renewed every second; two seconds of slack for a loaded machine
    opts.lease = Duration::from_millis(3000);
    let w = RunningWorker::spawn(
        &db,
        Handlers::new().register("long", recorder.clone()),
        opts,
    );
    // Meanwhile another process rescues expired leases as often as it can.
    let store = db.store();
    wait_until(
        "the long job completes",
        Duration::from_secs(60),
        || async {
            store.rescue_expired().await.unwrap();
            count_state(&db, "completed").await == 1
        },
    )
    .await;
    w.shutdown().await;
    assert_eq!(
        recorder.total(),
        1,
        "never rescued while its worker was alive"
    );
}

#[tokio::test]
async fn shutdown_releases_jobs_still_running_at_the_drain_deadline() {
    let db = TestDb::new().await;
    db.store()
        .enqueue(&NewJob::new("stuck", serde_json::json!({})))
        .await
        .unwrap();
    let recorder = Recorder {
        hold: Some(Duration::from_secs(3600)),
        ..Recorder::default()
    };
    let mut opts = test_options("w");
    opts.drain_deadline = Duration::from_millis(300);
    let w = RunningWorker::spawn(
        &db,
        Handlers::new().register("stuck", recorder.clone()),
        opts,
    );
    wait_until("the job is running", Duration::from_secs(10), || async {
        recorder.total() == 1
    })
    .await;
    w.shutdown().await;
    assert_eq!(
        count_state(&db, "available").await,
        1,
        "given back to the queue, not left running"
    );
    let attempt: i32 = db.scalar("select attempt from callsync.job").await;
    assert_eq!(attempt, 0, "an interrupted attempt is not spent");
}

#[tokio::test]
async fn an_operator_retries_a_discarded_job_and_it_runs_again() {
    let db = TestDb::new().await;
    let store = db.store();
    let job = store
        .enqueue(&NewJob::new("work", serde_json::json!({})))
        .await
        .unwrap()
        .unwrap();
    let claimed = store
        .claim("w", 1, Duration::from_secs(30))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        store.fail(&claimed, "bad input", None).await.unwrap(),
        Some(JobState::Discarded)
    );
    let retried: bool = db
        .scalar(&format!("select callsync.retry_job({})", job.0))
        .await;
    assert!(retried);
    let again = store.claim("w", 1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 1, "attempts start again");
    let error: String = db.scalar("select last_error from callsync.job").await;
    assert_eq!(error, "bad input", "the last error stays as evidence");
}
