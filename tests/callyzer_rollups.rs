//! The team-statistics rollups (`callsync.call_day_stat`, `call_day_client`
//! with each pair's previous day, `call_team_day_client`) stay exactly equal to
//! a scan of `callsync.call` through inserts, newer copies that move a call
//! (type, duration, day, client, advisor), re-matching, a deleted lead, a
//! deleted call, days that appear or go in the middle of a pair's days,
//! advisors that change team or are deleted, a deleted team and a time-zone
//! change; and `public.team_call_stats` answers exactly what the original
//! scanning version (migration 20261120100200, loaded from its file) answers,
//! for aligned, unaligned and shorter-than-a-day periods, as the database owner
//! and as admin, managers and an advisor through RLS.
#![allow(clippy::unwrap_used)]
mod common;

use callsync::domain::call_record::parse_delivery;
use callsync::jobs::callyzer_call_in::{apply_calls, CallSource};
use common::*;
use serde_json::{json, Value};

/// The original `team_call_stats` (a scan of `callsync.call`), renamed.
fn scanning_reference() -> String {
    let text = std::fs::read_to_string(
        root().join("supabase/migrations/20261120100200_create_callyzer_screens.sql"),
    )
    .unwrap();
    let start = text
        .find("create function public.team_call_stats(")
        .unwrap();
    let end = start + text[start..].find("\n$$;").unwrap() + 4;
    text[start..end].replace(
        "create function public.team_call_stats(",
        "create function public.team_call_stats_scan(",
    )
}

/// Rows of the rollups that differ from a fresh aggregation of the calls.
const ROLLUP_DIFF: &str = "
    with tz as (select callsync.call_rollup_zone() as tz),
    fresh_stat as (
        select coalesce(c.advisor_id, 0) as advisor_id, (c.called_at at time zone tz.tz)::date as day,
               count(*) filter (where c.call_type = 'Incoming')::int as incoming,
               count(*) filter (where c.call_type = 'Outgoing')::int as outgoing,
               count(*) filter (where c.call_type = 'Missed')::int as missed,
               count(*) filter (where c.call_type = 'Rejected')::int as rejected,
               count(*) filter (where c.call_type not in ('Incoming', 'Outgoing', 'Missed', 'Rejected'))::int as other,
               count(*)::int as total_calls, sum(c.duration_s)::bigint as total_duration_s,
               count(c.lead_id)::int as matched_calls
        from callsync.call as c, tz group by 1, 2
    ), fresh_client as (
        select x.*, lag(x.day) over (partition by x.advisor_id, x.client order by x.day) as prev_day
        from (select coalesce(c.advisor_id, 0) as advisor_id, (c.called_at at time zone tz.tz)::date as day,
                     substr(c.client_e164, 2)::bigint as client
              from callsync.call as c, tz where c.client_e164 is not null group by 1, 2, 3) as x
    ), fresh_team as (
        select x.*, lag(x.day) over (partition by x.team_id, x.client order by x.day) as prev_day
        from (select coalesce(a.team_id, 0) as team_id, (c.called_at at time zone tz.tz)::date as day,
                     substr(c.client_e164, 2)::bigint as client
              from callsync.call as c cross join tz left join callsync.advisor as a on a.id = c.advisor_id
              where c.client_e164 is not null group by 1, 2, 3) as x
    )
    select (select count(*) from ((select * from fresh_stat except all select * from callsync.call_day_stat)
                                  union all
                                  (select * from callsync.call_day_stat except all select * from fresh_stat)) as d)
         + (select count(*) from ((select * from fresh_client except all select * from callsync.call_day_client)
                                  union all
                                  (select * from callsync.call_day_client except all select * from fresh_client)) as d)
         + (select count(*) from ((select * from fresh_team except all select * from callsync.call_team_day_client)
                                  union all
                                  (select * from callsync.call_team_day_client except all select * from fresh_team)) as d)";

/// Periods that cover whole local days, cut days at both ends, a single
/// partial day, an empty period and a DST change (Europe/Warsaw, 2026-03-29).
const PERIODS: &[(&str, &str)] = &[
    ("2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00"),
    ("2026-03-27T13:30:00Z", "2026-03-30T08:15:00Z"),
    ("2026-03-28T09:00:00Z", "2026-03-28T17:00:00Z"),
    ("2026-03-28T23:00:00Z", "2026-03-29T23:00:00Z"),
    ("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
    ("2026-03-29T12:00:00Z", "2026-03-29T12:00:00Z"),
    ("2026-03-12T10:00:00Z", "2026-03-20T12:00:00Z"),
    ("2026-03-15T00:00:00+01:00", "2026-03-21T00:00:00+01:00"),
    ("2026-03-10T23:00:00Z", "2026-03-11T11:00:00Z"),
];

/// The signed-in users the comparison also runs as (RLS decides what each
/// sees; the team rollup is read only for a team the user sees whole): admin,
/// the managers of teams 1 and 2, and advisor 1.
const USERS: &[&str] = &[
    people::ADMIN,
    people::MANAGER_A,
    people::MANAGER_B,
    people::OLGA,
];
const APP_USERS: &str = "
    insert into callsync.app_user (user_id, role, team_id, advisor_id) values
        ('00000000-0000-4000-8000-00000000000a', 'admin',   null, null),
        ('00000000-0000-4000-8000-0000000000a1', 'manager', 1,    null),
        ('00000000-0000-4000-8000-0000000000b1', 'manager', 2,    null),
        ('00000000-0000-4000-8000-00000000a001', 'advisor', null, 1);
    grant execute on function public.team_call_stats_scan(timestamptz, timestamptz, bigint) to authenticated;";

/// Rows in which team_call_stats and the scan differ for these arguments.
fn stats_diff(args: &str) -> String {
    format!(
        "select (select count(*) from (
             (select * from public.team_call_stats({args}) except all select * from public.team_call_stats_scan({args}))
             union all
             (select * from public.team_call_stats_scan({args}) except all select * from public.team_call_stats({args}))) as d)
         + abs((select count(*) from public.team_call_stats({args})) - (select count(*) from public.team_call_stats_scan({args})))"
    )
}

async fn assert_exact(db: &TestDb, phase: &str) {
    let diff: i64 = db.scalar(ROLLUP_DIFF).await;
    assert_eq!(
        diff, 0,
        "{phase}: the rollups differ from a scan of the calls"
    );
    let c = db.pool.get().await.unwrap();
    for (from, to) in PERIODS {
        for team in ["null", "1", "2"] {
            let args = format!("'{from}'::timestamptz, '{to}'::timestamptz, {team}::bigint");
            let d: i64 = db.scalar(&stats_diff(&args)).await;
            assert_eq!(
                d, 0,
                "{phase}: team_call_stats({from}, {to}, {team}) differs from the scan"
            );
            for user in USERS {
                c.batch_execute(&format!(
                    "begin; set local role authenticated;
                     select set_config('request.jwt.claims', '{{\"sub\":\"{user}\",\"role\":\"authenticated\"}}', true);"
                ))
                .await
                .unwrap();
                let d: i64 = c.query_one(&stats_diff(&args), &[]).await.unwrap().get(0);
                c.batch_execute("rollback").await.unwrap();
                assert_eq!(
                    d, 0,
                    "{phase}: team_call_stats({from}, {to}, {team}) differs from the scan for user {user}"
                );
            }
        }
    }
}

/// One call log in Callyzer's format.
fn log(
    id: &str,
    client: &str,
    kind: &str,
    duration: i64,
    date: &str,
    time: &str,
    modified: &str,
) -> Value {
    json!({"id": id, "client_number": client, "client_country_code": "48", "duration": duration,
           "call_type": kind, "call_date": date, "call_time": time, "modified_at": modified})
}

async fn deliver(db: &TestDb, body: Value) {
    let d = parse_delivery(&body, "48").unwrap();
    let worker = db.worker_pool.get().await.unwrap();
    apply_calls(&worker, None, &d.records, &d.problems, CallSource::Webhook)
        .await
        .unwrap();
}

#[tokio::test]
async fn rollups_equal_a_scan_after_inserts_updates_rematching_and_deletes() {
    let db = TestDb::new().await;
    db.exec(&scanning_reference()).await;
    db.exec(
        "insert into callsync.team (name) values ('A'), ('B');
         insert into callsync.advisor (name, emp_code, team_id) values ('a1', 'E1', 1), ('a2', 'E2', 1), ('b1', 'E3', 2);
         insert into callsync.lead (name, advisor_id) values ('L1', 1), ('L2', 3);
         insert into callsync.lead_phone (lead_id, raw) values (1, '601000001'), (2, '601000002');",
    )
    .await;
    db.exec(APP_USERS).await;
    assert_exact(&db, "empty").await;

    // inserts: three advisors and one Callyzer has not told us about, every type,
    // an unknown type, an unreadable number, calls around midnight and the DST change
    let m0 = "2026-03-01 00:00:00";
    let mut e1 = Vec::new();
    let mut e2 = Vec::new();
    for i in 0..40 {
        let day = format!("2026-03-{:02}", 26 + i % 5);
        let time = [
            "00:00:00", "00:30:00", "01:59:59", "02:30:00", "12:00:00", "23:59:59",
        ][i % 6];
        let kind = ["Incoming", "Outgoing", "Missed", "Rejected", "Voicemail"][i % 5];
        let client = [
            "601000001",
            "601000002",
            "601000003",
            "601000004",
            "not a number",
        ][i % 5];
        e1.push(log(
            &format!("r-{i}"),
            client,
            kind,
            (i * 7) as i64,
            &day,
            time,
            m0,
        ));
        e2.push(log(
            &format!("s-{i}"),
            ["601000001", "601000005"][i % 2],
            kind,
            60,
            &day,
            time,
            m0,
        ));
    }
    deliver(
        &db,
        json!([{"emp_code": "E1", "call_logs": e1},
               {"emp_code": "E2", "call_logs": e2},
               {"emp_code": "E3", "call_logs": [log("t-1", "601000002", "Outgoing", 5, "2026-03-28", "23:30:00", m0)]},
               {"emp_code": "NEW", "call_logs": [log("u-1", "601000009", "Incoming", 9, "2026-03-28", "10:00:00", m0)]}]),
    )
    .await;
    assert_exact(&db, "after inserts").await;

    // newer copies: a changed type and duration, a call moved to another day, a
    // changed client, a call now under another advisor, a copy that changes
    // nothing counted (a recording URL), and an older copy that must not apply
    let m1 = "2026-03-31 00:00:00";
    let mut moved = log(
        "r-1",
        "601000004",
        "Missed",
        0,
        "2026-03-26",
        "00:30:00",
        m1,
    );
    moved["call_recording_url"] = json!("https://rec.example/r-1.mp3");
    let mut same = log(
        "r-2",
        "601000003",
        "Missed",
        14,
        "2026-03-28",
        "01:59:59",
        m1,
    );
    same["call_recording_url"] = json!("https://rec.example/r-2.mp3");
    deliver(
        &db,
        json!([{"emp_code": "E1", "call_logs": [
                    moved, same,
                    log("r-3", "601000004", "Rejected", 21, "2026-03-29", "23:59:59", m1),
                    log("r-4", "601000009", "Voicemail", 28, "2026-03-30", "00:00:00", m1),
                    log("r-0", "601000001", "Incoming", 0, "2026-03-26", "00:00:00", "2026-02-01 00:00:00")]},
               {"emp_code": "E3", "call_logs": [log("s-5", "601000002", "Outgoing", 61, "2026-03-27", "02:30:00", m1)]}]),
    )
    .await;
    assert_exact(&db, "after newer copies").await;
    assert_eq!(
        db.scalar::<i64>("select advisor_id from callsync.call where id = 's-5'")
            .await,
        3,
        "the copy moved s-5 to another advisor"
    );

    // re-matching: a new lead phone picks up waiting calls; a deleted lead and a
    // deleted advisor leave their calls unmatched / without an advisor
    db.exec(
        "insert into callsync.lead (name, advisor_id) values ('L3', 2);
         insert into callsync.lead_phone (lead_id, raw) values (3, '601000005');
         select callsync.rematch_unmatched_calls(array['+48601000005'], 1000);",
    )
    .await;
    assert_exact(&db, "after re-matching").await;
    db.exec("delete from callsync.lead where id = 1").await;
    assert_exact(&db, "after deleting a lead").await;
    db.exec("delete from callsync.advisor where emp_code = 'NEW'")
        .await;
    assert_exact(&db, "after deleting an advisor").await;
    db.exec("delete from callsync.call where id in ('r-5', 'r-6', 's-7')")
        .await;
    assert_exact(&db, "after deleting calls").await;

    // another account time zone moves every local day: the rollups follow
    db.exec("update callsync.setting set value = '\"America/New_York\"' where key = 'callyzer.account_time_zone'")
        .await;
    assert_exact(&db, "after a time-zone change").await;
    db.exec("truncate callsync.call cascade").await;
    assert_eq!(
        db.scalar::<i64>(
            "select (select count(*) from callsync.call_day_stat) + (select count(*) from callsync.call_day_client)
                  + (select count(*) from callsync.call_team_day_client)"
        )
        .await,
        0
    );
}

/// Calls straight into callsync.call, one statement: (id, advisor (0: none),
/// client number after +48, local time in Europe/Warsaw).
fn insert_calls(rows: &[(&str, i64, i64, &str)]) -> String {
    let values: Vec<String> = rows
        .iter()
        .map(|(id, advisor, client, at)| {
            format!(
                "('{id}', nullif({advisor}, 0), '+48{client}', 30, 'Outgoing', '{at}', '', \
                 '{at}'::timestamp at time zone 'Europe/Warsaw', 'api', '{{}}')"
            )
        })
        .collect();
    format!(
        "insert into callsync.call (id, advisor_id, client_e164, duration_s, call_type, call_date, call_time, called_at, source, raw) values {}",
        values.join(", ")
    )
}

/// prev_day (the pair's previous day) and the team rollup through the writes
/// that move a pair's neighbours: a day that appears between two others, several
/// days of one pair in one statement out of order, a day that falls to zero, a
/// call moved across another day of its pair, to another advisor and team, an
/// advisor who changes team (and loses it), a deleted team, a deleted advisor,
/// calls without an advisor; after each, everything equals a scan, and
/// team_call_stats equals the original scan for admin, managers and an advisor
/// (periods with partial edge days whose clients also appear on whole days).
#[tokio::test]
async fn first_days_and_team_rollup_stay_exact_when_days_appear_go_and_advisors_move() {
    let db = TestDb::new().await;
    db.exec(&scanning_reference()).await;
    db.exec(
        "insert into callsync.team (name) values ('A'), ('B');
         insert into callsync.advisor (name, emp_code, team_id) values
             ('a1', 'E1', 1), ('a2', 'E2', 1), ('b1', 'E3', 2), ('n1', 'E4', null);",
    )
    .await;
    db.exec(APP_USERS).await;

    // chains: (a1, c1) on the 10th and 20th, (a2, c1) on the 15th: team 1's c1
    // chain is 10, 15, 20; (a1, c2) once; a call at each edge of the periods
    db.exec(&insert_calls(&[
        ("k-1", 1, 601000001, "2026-03-10 10:00"),
        ("k-2", 1, 601000001, "2026-03-20 10:00"),
        ("k-3", 2, 601000001, "2026-03-15 12:00"),
        ("k-4", 1, 601000002, "2026-03-10 12:00"),
        ("k-5", 1, 601000002, "2026-03-12 12:00"),
        ("k-6", 3, 601000001, "2026-03-12 09:00"),
        ("k-7", 3, 601000009, "2026-03-20 14:00"),
    ]))
    .await;
    assert_exact(&db, "first chains").await;

    // a day between two others: the later day's prev_day moves to it
    db.exec(&insert_calls(&[("k-8", 1, 601000001, "2026-03-15 09:00")]))
        .await;
    assert_exact(&db, "a day in the middle of a pair's days").await;

    // several days of one pair in one statement, out of order, one of them a
    // second call on an existing day (a count, not a new row)
    db.exec(&insert_calls(&[
        ("k-9", 1, 601000003, "2026-03-25 10:00"),
        ("k-10", 1, 601000003, "2026-03-05 10:00"),
        ("k-11", 1, 601000003, "2026-03-12 10:00"),
        ("k-12", 1, 601000001, "2026-03-20 16:00"),
        ("k-13", 2, 601000003, "2026-03-18 10:00"),
    ]))
    .await;
    assert_exact(&db, "several days of a pair in one statement").await;

    // the only call of a middle day goes: the next day points past it again
    db.exec("delete from callsync.call where id = 'k-8'").await;
    assert_exact(&db, "a middle day falls to zero").await;

    // one update moves calls across other days of their pair (the 5th to the
    // 30th, the 12th to the 1st), to another advisor in another team, and off a
    // day that keeps another call
    db.exec(
        "update callsync.call set called_at = called_at + interval '25 days' where id = 'k-10';
         update callsync.call
         set called_at = case id when 'k-11' then called_at - interval '11 days' else called_at end,
             advisor_id = case id when 'k-2' then 3 else advisor_id end
         where id in ('k-11', 'k-2');
         update callsync.call set called_at = called_at - interval '2 days' where id = 'k-12';",
    )
    .await;
    assert_exact(&db, "calls moved across days, advisors and teams").await;

    // an advisor changes team, an advisor without a team gets one, one loses it
    db.exec(&insert_calls(&[
        ("k-14", 4, 601000001, "2026-03-16 10:00"),
        ("k-15", 4, 601000004, "2026-03-21 10:00"),
    ]))
    .await;
    assert_exact(&db, "an advisor without a team").await;
    db.exec("update callsync.advisor set team_id = 2 where id = 2")
        .await;
    assert_exact(&db, "an advisor moved to another team").await;
    db.exec("update callsync.advisor set team_id = case id when 4 then 1 when 1 then null end where id in (1, 4)")
        .await;
    assert_exact(&db, "advisors swapped in and out of a team").await;
    db.exec("update callsync.advisor set team_id = 1 where id = 1")
        .await;

    // calls without an advisor count under team 0 with advisors without a team;
    // k-18 and k-19: one client on the first day of a period that cuts it
    // (2026-03-12T10:00Z), before and after the cut: still a client of the period
    db.exec(&insert_calls(&[
        ("k-16", 0, 601000001, "2026-03-17 10:00"),
        ("k-17", 0, 601000004, "2026-03-21 11:00"),
        ("k-18", 0, 601000005, "2026-03-12 09:00"),
        ("k-19", 0, 601000005, "2026-03-12 16:00"),
    ]))
    .await;
    assert_exact(&db, "calls without an advisor").await;

    // over 100 advisors asked for: team_call_stats reads cut edge days with one
    // time range for everyone (the company's way) instead of one per advisor
    db.exec(
        "insert into callsync.advisor (name, emp_code, team_id)
             select 'idle ' || g, 'IDLE-' || g, 1 from generate_series(1, 100) g",
    )
    .await;
    assert_exact(&db, "more than 100 advisors asked for").await;
    db.exec("delete from callsync.advisor where emp_code like 'IDLE-%'")
        .await;

    // a deleted team: its advisors lose their team (its manager first)
    db.exec(
        "delete from callsync.app_user where user_id = '00000000-0000-4000-8000-0000000000b1';
         delete from callsync.team where id = 2;",
    )
    .await;
    assert_exact(&db, "a deleted team").await;

    // a deleted advisor with a team: its calls lose their advisor
    db.exec("delete from callsync.advisor where id = 4").await;
    assert_exact(&db, "a deleted advisor").await;

    db.exec("select callsync.call_rollups_rebuild()").await;
    assert_exact(&db, "after a rebuild").await;
}

#[tokio::test]
async fn the_worker_role_cannot_read_or_write_the_rollups_and_users_see_their_own() {
    let db = TestDb::new().await;
    let worker = db.worker_pool.get().await.unwrap();
    for sql in [
        "select * from callsync.call_day_stat",
        "select * from callsync.call_day_client",
        "select * from callsync.call_team_day_client",
        "select callsync.call_rollups_rebuild()",
        "delete from callsync.call_day_stat",
    ] {
        assert!(
            worker.execute(sql, &[]).await.is_err(),
            "{sql} as the worker"
        );
    }
    // RLS: an advisor sees their own day rows only
    db.exec(
        "insert into callsync.team (name) values ('A');
         insert into callsync.advisor (name, emp_code, team_id) values ('a1', 'E1', 1), ('a2', 'E2', 1);
         insert into callsync.app_user (user_id, role, advisor_id) values ('00000000-0000-4000-8000-000000000001', 'advisor', 1);",
    )
    .await;
    deliver(
        &db,
        json!([{"emp_code": "E1", "call_logs": [log("v-1", "601000001", "Incoming", 5, "2026-03-02", "10:00:00", "2026-03-02 10:00:00")]},
               {"emp_code": "E2", "call_logs": [log("v-2", "601000001", "Incoming", 5, "2026-03-02", "10:00:00", "2026-03-02 10:00:00")]}]),
    )
    .await;
    let c = db.pool.get().await.unwrap();
    c.batch_execute(
        "begin; set local role authenticated;
         select set_config('request.jwt.claims', '{\"sub\":\"00000000-0000-4000-8000-000000000001\",\"role\":\"authenticated\"}', true);",
    )
    .await
    .unwrap();
    let own: i64 = c
        .query_one(
            "select count(*) from callsync.call_day_stat where advisor_id = 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let all: i64 = c
        .query_one(
            "select (select count(*) from callsync.call_day_stat) + (select count(*) from callsync.call_day_client)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // a team's rollup is about the other advisors' clients too: not for an advisor
    let team: i64 = c
        .query_one("select count(*) from callsync.call_team_day_client", &[])
        .await
        .unwrap()
        .get(0);
    c.batch_execute("rollback").await.unwrap();
    assert_eq!(
        (own, all, team),
        (1, 2, 0),
        "an advisor sees only their own rows"
    );
    // the team's manager sees the team's row, another team's manager nothing
    db.exec(
        "insert into callsync.team (name) values ('B');
         insert into callsync.app_user (user_id, role, team_id) values
             ('00000000-0000-4000-8000-0000000000a1', 'manager', 1), ('00000000-0000-4000-8000-0000000000b1', 'manager', 2);",
    )
    .await;
    for (user, expected) in [(people::MANAGER_A, 1i64), (people::MANAGER_B, 0)] {
        c.batch_execute(&format!(
            "begin; set local role authenticated;
             select set_config('request.jwt.claims', '{{\"sub\":\"{user}\",\"role\":\"authenticated\"}}', true);"
        ))
        .await
        .unwrap();
        let n: i64 = c
            .query_one("select count(*) from callsync.call_team_day_client", &[])
            .await
            .unwrap()
            .get(0);
        c.batch_execute("rollback").await.unwrap();
        assert_eq!(n, expected, "team rollup rows the manager {user} sees");
    }
}
