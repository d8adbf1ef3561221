//! The daily report against the raw rows: a day (and its neighbours) is
//! seeded with webhook deliveries, refusals, jobs in every outcome, calls
//! matched and unmatched, and reconciliation runs; the report the schedule
//! builds must equal what this test computes on its own from the same rows.
//! Then the report is read as an admin (and not as anyone else) and sent once
//! to a fake Slack-style webhook.
#![allow(clippy::unwrap_used)]
mod common;

use callsync::jobs::notify_admin::{NotifyAdmin, NotifySettings};
use callsync::jobs::Handlers;
use callsync::secret::Secret;
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use common::{test_options, wait_until, RunningWorker, TestDb};
use std::time::Duration;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// 2026-11-10 in Europe/Warsaw (UTC+1 in November).
const DAY: &str = "2026-11-10";

fn day_from() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 9, 23, 0, 0).unwrap()
}

fn day_to() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 10, 23, 0, 0).unwrap()
}

fn in_day(t: DateTime<Utc>) -> bool {
    t >= day_from() && t < day_to()
}

/// Somewhere from 3 hours before the day to 3 hours after it, to the microsecond.
fn around_the_day(rng: &mut fastrand::Rng) -> DateTime<Utc> {
    day_from() - Span::hours(3) + Span::microseconds(rng.i64(0..30 * 3600 * 1_000_000))
}

/// Log-uniform milliseconds in [lo, hi), to the microsecond.
fn millis(rng: &mut fastrand::Rng, lo: f64, hi: f64) -> Span {
    let ms = (lo.ln() + rng.f64() * (hi.ln() - lo.ln())).exp();
    Span::microseconds((ms * 1000.0).round() as i64)
}

fn ms(s: Span) -> f64 {
    s.num_microseconds().unwrap() as f64 / 1000.0
}

/// Nearest-rank p95.
fn p95(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = (0.95 * v.len() as f64).ceil() as usize;
    Some(v[rank.max(1) - 1])
}

fn avg(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn close(what: &str, got: Option<f64>, want: Option<f64>, rel: f64) {
    match (got, want) {
        (None, None) => {}
        (Some(g), Some(w)) => assert!(
            (g - w).abs() <= rel * w.abs() + 1e-6,
            "{what}: report {g}, raw rows {w}"
        ),
        _ => panic!("{what}: report {got:?}, raw rows {want:?}"),
    }
}

#[derive(Debug, Default, PartialEq)]
struct Expected {
    received: i64,
    processed: i64,
    failed: i64,
    rejected: i64,
    job_errors: i64,
    discarded: i64,
    processing_jobs: i64,
    new_calls: i64,
    matched: i64,
    unmatched_today: i64,
    unmatched_waiting: i64,
}

#[tokio::test]
async fn the_daily_report_equals_counts_computed_from_the_raw_rows() {
    let db = TestDb::new().await;
    let client = db.pool.get().await.unwrap();
    let mut rng = fastrand::Rng::with_seed(20261110);
    let mut want = Expected::default();

    // --- webhook deliveries: stored as received, then finished in one update
    let (mut src, mut recv, mut status, mut done) = (vec![], vec![], vec![], vec![]);
    for _ in 0..120 {
        let s = ["callyzer", "elevenlabs"][rng.usize(0..2)];
        let at = around_the_day(&mut rng);
        let st = match rng.u32(0..10) {
            0..=6 => "processed",
            7 => "failed",
            _ => "received",
        };
        let fin = at + millis(&mut rng, 20.0, 120_000.0);
        want.received += in_day(at) as i64;
        want.processed += (st == "processed" && in_day(fin)) as i64;
        want.failed += (st == "failed" && in_day(fin)) as i64;
        src.push(s.to_string());
        recv.push(at);
        status.push(st.to_string());
        done.push(fin);
    }
    client
        .execute(
            "insert into callsync.webhook_event (source, body, size_bytes, received_at) \
             select s, '{}', 2, r from unnest($1::text[], $2::timestamptz[]) as t(s, r) order by r",
            &[&src, &recv],
        )
        .await
        .unwrap();
    client
        .execute(
            "update callsync.webhook_event as e \
             set status = t.st, processed_at = t.fin, error = case when t.st = 'failed' then 'bad delivery' end \
             from unnest($1::timestamptz[], $2::text[], $3::timestamptz[]) as t(r, st, fin) \
             where e.received_at = t.r and t.st <> 'received'",
            &[&recv, &status, &done],
        )
        .await
        .unwrap();

    // --- refused requests
    let (mut rsrc, mut rat) = (vec![], vec![]);
    for _ in 0..25 {
        let at = around_the_day(&mut rng);
        want.rejected += in_day(at) as i64;
        rsrc.push(["callyzer", "elevenlabs"][rng.usize(0..2)].to_string());
        rat.push(at);
    }
    client
        .execute(
            "insert into callsync.webhook_rejection (source, reason, status_code, received_at) \
             select s, 'bad_secret', 401, r from unnest($1::text[], $2::timestamptz[]) as t(s, r)",
            &[&rsrc, &rat],
        )
        .await
        .unwrap();

    // --- jobs: claimed (running), then every attempt ended in one statement
    let kinds = ["callyzer_delivery", "elevenlabs_analysis", "crm_dispatch"];
    let (mut kind, mut created, mut started, mut ended, mut outcome) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut runs, mut waits) = (vec![], vec![]);
    for _ in 0..300 {
        let k = kinds[rng.usize(0..3)];
        let c = around_the_day(&mut rng);
        let s = c + millis(&mut rng, 2.0, 5_000.0);
        let e = s + millis(&mut rng, 3.0, 40_000.0);
        let o = match rng.u32(0..10) {
            0 => "retryable",
            1 => "discarded",
            _ => "completed",
        };
        let webhook = k != "crm_dispatch";
        if in_day(e) {
            want.job_errors += (o != "completed") as i64;
            want.discarded += (o == "discarded") as i64;
            if webhook && o == "completed" {
                want.processing_jobs += 1;
                runs.push(ms(e - s));
            }
            if webhook {
                waits.push(ms(s - c));
            }
        }
        kind.push(k.to_string());
        created.push(c);
        started.push(s);
        ended.push(e);
        outcome.push(o.to_string());
    }
    client
        .execute(
            "insert into callsync.job (kind, state, attempt, max_attempts, created_at, first_started_at, attempted_at, \
                                       leased_by, lease_id, lease_expires_at, args) \
             select k, 'running', 1, 3, c, s, s, 'seed', gen_random_uuid(), s + interval '1 hour', \
                    jsonb_build_object('n', n) \
             from unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) with ordinality as t(k, c, s, n)",
            &[&kind, &created, &started],
        )
        .await
        .unwrap();
    client
        .execute(
            "update callsync.job as j \
             set state = t.o::callsync.job_state, lease_id = null, lease_expires_at = null, \
                 finished_at = case when t.o = 'retryable' then null else t.e end, \
                 updated_at = t.e, \
                 run_at = t.e + interval '1 minute', \
                 last_error = case when t.o <> 'completed' then 'HTTP 500' end \
             from unnest($1::text[], $2::timestamptz[]) with ordinality as t(o, e, n) \
             where (j.args ->> 'n')::bigint = t.n",
            &[&outcome, &ended],
        )
        .await
        .unwrap();

    // --- calls: matched to a lead, or parked as unmatched
    let lead: i64 = client
        .query_one(
            "insert into callsync.lead (name) values ('Lead') returning id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    client
        .execute(
            "insert into callsync.lead_phone (lead_id, raw) values ($1, '+48601202303')",
            &[&lead],
        )
        .await
        .unwrap();
    for i in 0..90 {
        let at = around_the_day(&mut rng);
        let matched = rng.u32(0..10) < 6;
        want.new_calls += in_day(at) as i64;
        want.matched += (matched && in_day(at)) as i64;
        want.unmatched_today += (!matched && in_day(at)) as i64;
        want.unmatched_waiting += (!matched) as i64;
        let id = format!("call-{i}");
        client
            .execute(
                "insert into callsync.call (id, duration_s, call_type, call_date, call_time, called_at, source, raw, lead_id) \
                 values ($1, 30, 'Outgoing', '2026-11-10', '10:00:00', $2, 'webhook', '{}', $3)",
                &[&id, &at, &if matched { Some(lead) } else { None }],
            )
            .await
            .unwrap();
        if !matched {
            client
                .execute(
                    "insert into callsync.unmatched_call (call_id, client_number, called_at, call_type) \
                     values ($1, '700800900', $2, 'Outgoing')",
                    &[&id, &at],
                )
                .await
                .unwrap();
        }
    }

    // --- reconciliation runs (issue 4's sync log), when that table exists
    let has_runs: bool = db
        .scalar("select to_regclass('callsync.callyzer_sync_run') is not null")
        .await;
    if has_runs {
        db.exec(
            "insert into callsync.callyzer_sync_run (trigger, window_from, window_to, advance_cursor, chunk_length, \
                 chunks, page_size, outcome, error, started_at, finished_at, fetched, inserted, updated, skipped) values \
             ('schedule', '2026-11-09 00:00+00', '2026-11-10 02:00+00', true, '1 day', 1, 100, 'succeeded', null, \
              '2026-11-10 02:00+00', '2026-11-10 02:01+00', 40, 3, 1, 36), \
             ('schedule', '2026-11-09 00:00+00', '2026-11-10 03:00+00', true, '1 day', 1, 100, 'failed', 'HTTP 401', \
              '2026-11-10 03:00+00', '2026-11-10 03:00:05+00', 0, 0, 0, 0), \
             ('schedule', '2026-11-08 00:00+00', '2026-11-09 22:00+00', true, '1 day', 1, 100, 'succeeded', null, \
              '2026-11-09 22:00+00', '2026-11-09 22:01+00', 10, 10, 0, 0)",
        )
        .await;
    }

    // --- the schedule's first call after local midnight builds the day, once
    let built: Option<chrono::NaiveDate> = client
        .query_one(
            "select callsync.run_daily_report_if_due('2026-11-11 00:05:00+01')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(built.map(|d| d.to_string()).as_deref(), Some(DAY));
    let again: Option<chrono::NaiveDate> = client
        .query_one(
            "select callsync.run_daily_report_if_due('2026-11-11 01:05:00+01')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        again, None,
        "later hourly runs leave the stored report alone"
    );

    let r = client
        .query_one(
            "select webhooks_received, webhooks_processed, webhooks_failed, webhooks_rejected, job_errors, \
                    jobs_discarded, processing_jobs, new_calls, calls_matched, calls_unmatched, unmatched_waiting, \
                    processing_avg_ms, processing_p95_ms, wait_avg_ms, wait_p95_ms, reconciliation \
             from callsync.daily_report where day = $1::text::date",
            &[&DAY],
        )
        .await
        .unwrap();
    let got = Expected {
        received: r.get(0),
        processed: r.get(1),
        failed: r.get(2),
        rejected: r.get(3),
        job_errors: r.get(4),
        discarded: r.get(5),
        processing_jobs: r.get(6),
        new_calls: r.get(7),
        matched: r.get(8),
        unmatched_today: r.get(9),
        unmatched_waiting: r.get(10),
    };
    assert_eq!(got, want);
    assert!(
        want.received > 50 && want.job_errors > 5 && want.new_calls > 30,
        "a real sample: {want:?}"
    );
    close("processing avg", r.get(11), avg(&runs), 1e-9);
    // p95 comes from the latency buckets: within 4.5% of the exact value
    close("processing p95", r.get(12), p95(runs.clone()), 0.045);
    close("wait avg", r.get(13), avg(&waits), 1e-9);
    close("wait p95", r.get(14), p95(waits.clone()), 0.045);
    let rec: serde_json::Value = r.get(15);
    if has_runs {
        assert_eq!(rec["runs"], 2, "{rec}");
        assert_eq!(rec["succeeded"], 1);
        assert_eq!(rec["failed"], 1);
        assert_eq!(rec["new"], 3);
        assert_eq!(rec["last_error"], "HTTP 401");
    } else {
        assert_eq!(rec["available"], false);
    }

    // --- admins read it through the public view (as PostgREST would); others see nothing
    let admin = r#"{"role": "authenticated", "app_role": "admin"}"#;
    let advisor = r#"{"role": "authenticated", "sub": "00000000-0000-0000-0000-000000000001"}"#;
    for (claims, rows) in [(admin, 1_i64), (advisor, 0)] {
        let mut c = db.pool.get().await.unwrap();
        let tx = c.transaction().await.unwrap();
        tx.execute(
            "select set_config('request.jwt.claims', $1, true)",
            &[&claims],
        )
        .await
        .unwrap();
        tx.batch_execute("set local role authenticated")
            .await
            .unwrap();
        let n: i64 = tx
            .query_one(
                "select count(*) from public.daily_reports where day = $1::text::date and webhooks_received = $2",
                &[&DAY, &want.received],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, rows, "{claims}");
        let errors: i64 = tx
            .query_one(
                "select count(*) from public.error_log where day = $1::text::date",
                &[&DAY],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(errors > 0, rows > 0, "error log for {claims}");
        tx.rollback().await.unwrap();
    }

    // --- and it goes to the admin channel once
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let settings = NotifySettings {
        slack_webhook_url: Some(Secret::new(
            url::Url::parse(&format!("{}/hook", slack.uri())).unwrap(),
        )),
        ..NotifySettings::default()
    };
    let w = RunningWorker::spawn(
        &db,
        Handlers::new().register(
            callsync::jobs::notify_admin::KIND,
            NotifyAdmin::new(db.worker_pool.clone(), &settings),
        ),
        test_options("report"),
    );
    wait_until("report sent", Duration::from_secs(20), || async {
        db.scalar::<i64>(
            "select count(*) from callsync.job where kind = 'notify_admin' and state = 'completed'",
        )
        .await
            == 1
    })
    .await;
    let sent = slack.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1);
    let text = serde_json::from_slice::<serde_json::Value>(&sent[0].body).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains(&format!("Raport dzienny {DAY} (Europe/Warsaw)")),
        "{text}"
    );
    assert!(
        text.contains(&format!("odebrane {}", want.received)),
        "{text}"
    );
    assert!(text.contains(&format!("nowe {}", want.new_calls)), "{text}");
    w.shutdown().await;
}

#[tokio::test]
async fn any_past_day_can_be_rebuilt_by_an_admin_but_not_by_others_and_not_for_today() {
    let db = TestDb::new().await;
    let admin = r#"{"role": "authenticated", "app_role": "admin"}"#;
    let mut c = db.pool.get().await.unwrap();
    let tx = c.transaction().await.unwrap();
    tx.execute(
        "select set_config('request.jwt.claims', $1, true)",
        &[&admin],
    )
    .await
    .unwrap();
    tx.batch_execute("set local role authenticated")
        .await
        .unwrap();
    let report: serde_json::Value = tx
        .query_one("select public.build_daily_report('2026-01-15')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(report["day"], "2026-01-15");
    assert_eq!(report["webhooks_received"], 0);
    assert!(tx
        .query_one("select public.build_daily_report(current_date + 1)", &[])
        .await
        .is_err());
    tx.rollback().await.unwrap();

    let tx = c.transaction().await.unwrap();
    tx.execute(
        "select set_config('request.jwt.claims', '{\"role\": \"authenticated\"}', true)",
        &[],
    )
    .await
    .unwrap();
    tx.batch_execute("set local role authenticated")
        .await
        .unwrap();
    assert!(tx
        .query_one("select public.build_daily_report('2026-01-15')", &[])
        .await
        .is_err());
}
