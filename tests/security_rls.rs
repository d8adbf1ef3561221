//! RLS penetration through PostgREST. The exposed objects are enumerated from
//! the catalog (every relation and function in the schemas PostgREST serves),
//! and each must have an entry in [`rights`]: who may read it and how far.
//! A new table, view or function nobody has classified fails the first test.
//! Then anon, two advisors, two managers and a signed-in stranger try to read,
//! insert, update and delete every exposed relation and call every RPC outside
//! their rights, and forged, expired, unsigned and foreign-signed tokens try
//! everything. Every answer is scanned for data the caller must not see, and
//! the whole database is fingerprinted before and after: nothing may change.
//! Admin and service role are the positive controls: the same requests, with
//! the right token, do succeed, so a refusal is about rights, never a typo.
#![allow(clippy::unwrap_used)]
mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callsync::jobs::callyzer_delivery::{CallyzerDelivery, KIND};
use callsync::jobs::Handlers;
use common::stack::{Stack, JWT_SECRET};
use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::people::{ADMIN, MANAGER_A, MANAGER_B, OLGA, PIOTR, TEAMS_AND_USERS};
/// Signed in, but not a user of the app (no `app_user` row).
const STRANGER: &str = "00000000-0000-4000-8000-0000000000ff";

/// On top of [`TEAMS_AND_USERS`]: one lead per advisor.
const PEOPLE: &str = r#"
    insert into callsync.lead (name, advisor_id) values ('Lead one', 1), ('Lead two', 2), ('Lead three', 3);
    insert into callsync.lead_phone (lead_id, raw) values (1, '601 202 303'), (2, '602 000 001'), (3, '603 000 002');
"#;

/// One row behind every admin-only screen, made through the project's own
/// functions where one exists. Each carries a marker no non-admin may see.
const ADMIN_ROWS: &str = r#"
    select callsync.store_elevenlabs_event('elevenlabs',
        '{"type":"post_call_transcription","event_timestamp":1763000000,"data":{"conversation_id":"ADMIN-ONLY-conv","agent_id":"agent-1","transcript":[]}}'::jsonb,
        120, '{}', null);
    insert into callsync.call_analysis (event_id, analyzer, summary)
        select webhook_event_id, 'event', 'ADMIN-ONLY-summary' from callsync.elevenlabs_event limit 1;
    insert into callsync.crm_dispatch (event_id, status, response_text)
        select webhook_event_id, 'dry_run', 'ADMIN-ONLY-dispatch' from callsync.elevenlabs_event limit 1;
    select callsync.callyzer_reconcile_start(now() - interval '2 hours', now() - interval '1 hour', 'operator', null);
    insert into callsync.alert (kind, message) values ('backlog', 'ADMIN-ONLY-alert');
    insert into callsync.notification_delivery (job_id, attempt, event, channel, status) values (1, 1, 'opened', 'none', 'skipped');
    insert into callsync.monitor_check (checked_at, measurements) values (now(), '{"marker":"ADMIN-ONLY-check"}');
    insert into callsync.job_error (job_id, kind, source, attempt, max_attempts, outcome, error, occurred_at)
        values (1, 'callyzer_delivery', 'callyzer', 1, 3, 'permanent', 'ADMIN-ONLY-error', now() - interval '1 hour');
    insert into callsync.job_timing_hourly (hour, kind, measure, outcome, bucket, jobs, sum_ms)
        values (date_trunc('hour', now()) - interval '1 hour', 'callyzer_delivery', 'run', 'completed', 3, 1, 5);
    select public.log_webhook_rejection('callyzer', 'bad_secret', 401, '127.0.0.1', 10, 'ADMIN-ONLY-rejection');
    select callsync.build_daily_report(current_date - 1);
"#;

/// Who may read an exposed relation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Read {
    /// Rows carry `advisor_id`; a user sees the advisors `app_user` gives them.
    ByAdvisor,
    /// Admins (and the service role) only.
    Admin,
    /// Rows carry `user_id`; a signed-in user sees their own row only.
    OwnUser,
}

/// Who may call an exposed function, and with which arguments it succeeds.
#[derive(Debug, Clone)]
enum Call {
    /// Anyone signed in; rows are scoped by advisor (or team for totals).
    ByAdvisor(Value),
    /// Admins only: others get an error or nothing.
    Admin(Value),
    /// The Edge Functions' service role only.
    Service(Value),
}

/// The rights matrix: every object PostgREST exposes, classified. An object
/// missing here fails `every_exposed_object_is_classified_and_anon_sees_none`.
fn rights() -> (BTreeMap<&'static str, Read>, BTreeMap<&'static str, Call>) {
    let day = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let period = json!({"p_from": "2020-01-01T00:00:00Z", "p_to": "2100-01-01T00:00:00Z"});
    let relations = BTreeMap::from([
        ("lead_call_registry", Read::ByAdvisor),
        ("unmatched_calls", Read::ByAdvisor),
        ("console_leads", Read::ByAdvisor),
        ("console_me", Read::OwnUser),
        ("queue_depth", Read::Admin),
        ("queue_jobs", Read::Admin),
        ("alerts", Read::Admin),
        ("call_analyses", Read::Admin),
        ("callyzer_sync_log", Read::Admin),
        ("crm_dispatches", Read::Admin),
        ("daily_reports", Read::Admin),
        ("elevenlabs_events", Read::Admin),
        ("error_log", Read::Admin),
        ("monitor_checks", Read::Admin),
        ("notification_log", Read::Admin),
        ("sync_log", Read::Admin),
    ]);
    let functions = BTreeMap::from([
        ("team_call_stats", Call::ByAdvisor(period.clone())),
        (
            "job_stats",
            Call::Admin(
                json!({"p_from": "2020-01-01T00:00:00Z", "p_to": "2100-01-01T00:00:00Z", "p_granularity": "hour"}),
            ),
        ),
        ("build_daily_report", Call::Admin(json!({"p_day": day}))),
        ("queue_retry_job", Call::Admin(json!({"p_id": 1}))),
        ("queue_cancel_job", Call::Admin(json!({"p_id": 1}))),
        ("callyzer_reconcile", Call::Admin(json!({}))),
        (
            "elevenlabs_analyze",
            Call::Admin(
                json!({"p_event": {"conversation_id": "probe", "transcript": "hi", "contacts": {}}}),
            ),
        ),
        (
            "elevenlabs_resend_crm",
            Call::Admin(json!({"p_event_id": 1, "p_force": true})),
        ),
        (
            "ingest_callyzer_webhook",
            Call::Service(json!({"p_raw": "[]", "p_header_names": [], "p_client_addr": null})),
        ),
        (
            "receive_elevenlabs_webhook",
            Call::Service(
                json!({"p_body": {"type": "probe"}, "p_size_bytes": 16, "p_header_names": [], "p_client_addr": null}),
            ),
        ),
        (
            "log_webhook_rejection",
            Call::Service(
                json!({"p_source": "callyzer", "p_reason": "probe", "p_status_code": 401,
                                 "p_client_addr": null, "p_size_bytes": null, "p_detail": null}),
            ),
        ),
    ]);
    (relations, functions)
}

/// A caller and what it may see.
struct Caller {
    name: &'static str,
    token: Option<String>,
    /// The token's subject, for rows that belong to a user.
    sub: Option<&'static str>,
    /// Advisor ids whose rows this caller may read.
    advisors: BTreeSet<i64>,
    /// Team ids whose totals this caller may read.
    teams: BTreeSet<i64>,
}

struct Env {
    stack: Stack,
    /// Every call id in the database with its advisor.
    calls: Vec<(String, i64)>,
}

fn call(id: &str, client: &str) -> Value {
    json!({"id": id, "client_name": "", "client_country_code": "48", "client_number": client,
           "duration": 60, "call_type": "Outgoing", "call_date": "2026-01-15", "call_time": "10:00:00",
           "note": format!("note of {id}"), "call_recording_url": "", "crm_status": "",
           "synced_at": "2026-01-15 10:05:00", "modified_at": "2026-01-15 10:05:00"})
}

fn employee(code: &str, number: &str, logs: Vec<Value>) -> Value {
    json!({"emp_name": code, "emp_code": code, "emp_country_code": "48", "emp_number": number,
           "emp_tags": [], "call_logs": logs})
}

impl Env {
    /// A database with people, calls of every advisor (matched and not), a
    /// row behind every admin screen, and PostgREST in front of it.
    async fn start() -> Env {
        let db = TestDb::new().await;
        db.exec(TEAMS_AND_USERS).await;
        db.exec(PEOPLE).await;
        db.exec(ADMIN_ROWS).await;
        let stack = Stack::start(db, &[]).await;
        let delivery = json!([
            employee(
                "SALES-07",
                "600100200",
                vec![
                    call("olga-matched", "601 202 303"),
                    call("olga-unmatched", "699 000 001")
                ]
            ),
            employee(
                "SALES-08",
                "600100201",
                vec![
                    call("piotr-matched", "602 000 001"),
                    call("piotr-unmatched", "699 000 002")
                ]
            ),
            employee(
                "SALES-20",
                "600100202",
                vec![
                    call("basia-matched", "603 000 002"),
                    call("basia-unmatched", "699 000 003")
                ]
            ),
        ]);
        let (status, body) = post(
            &stack,
            "rpc/ingest_callyzer_webhook",
            Some(&stack.service_key),
            &json!({"p_raw": delivery.to_string(), "p_header_names": [], "p_client_addr": null}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let handlers =
            Handlers::new().register(KIND, CallyzerDelivery::new(stack.db.worker_pool.clone()));
        let worker = RunningWorker::spawn(&stack.db, handlers, test_options("rls"));
        let pool = stack.db.pool.clone();
        wait_until("the delivery is processed", Duration::from_secs(30), || {
            let pool = pool.clone();
            async move {
                let c = pool.get().await.unwrap();
                c.query_one(
                    "select count(*) from callsync.webhook_event where source = 'callyzer' and status = 'processed'",
                    &[],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
                    == 1
            }
        })
        .await;
        worker.shutdown().await;
        let c = stack.db.pool.get().await.unwrap();
        let calls = c
            .query("select id, advisor_id from callsync.call", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect::<Vec<(String, i64)>>();
        assert_eq!(calls.len(), 6, "all six calls stored");
        Env { stack, calls }
    }

    fn token(&self, sub: &str) -> String {
        self.stack.user_token(sub)
    }

    /// The callers that are not admins, with what each may see.
    fn outsiders(&self) -> Vec<Caller> {
        let set = |v: &[i64]| v.iter().copied().collect::<BTreeSet<i64>>();
        vec![
            Caller {
                name: "no token",
                sub: None,
                token: None,
                advisors: set(&[]),
                teams: set(&[]),
            },
            Caller {
                name: "anon key",
                sub: None,
                token: Some(self.stack.anon_key.clone()),
                advisors: set(&[]),
                teams: set(&[]),
            },
            Caller {
                name: "advisor Olga",
                sub: Some(OLGA),
                token: Some(self.token(OLGA)),
                advisors: set(&[1]),
                teams: set(&[1]),
            },
            Caller {
                name: "advisor Piotr",
                sub: Some(PIOTR),
                token: Some(self.token(PIOTR)),
                advisors: set(&[2]),
                teams: set(&[1]),
            },
            Caller {
                name: "manager of team A",
                sub: Some(MANAGER_A),
                token: Some(self.token(MANAGER_A)),
                advisors: set(&[1, 2]),
                teams: set(&[1]),
            },
            Caller {
                name: "manager of team B",
                sub: Some(MANAGER_B),
                token: Some(self.token(MANAGER_B)),
                advisors: set(&[3]),
                teams: set(&[2]),
            },
            Caller {
                name: "signed-in stranger",
                sub: Some(STRANGER),
                token: Some(self.token(STRANGER)),
                advisors: set(&[]),
                teams: set(&[]),
            },
            Caller {
                name: "Olga with app_role=admin in user_metadata",
                sub: Some(OLGA),
                token: Some(sign(
                    &json!({"role": "authenticated", "sub": OLGA, "aud": "authenticated",
                    "exp": chrono::Utc::now().timestamp() + 600,
                    "user_metadata": {"app_role": "admin", "role": "admin"},
                    "app_metadata": {"role": "admin"}}),
                )),
                advisors: set(&[1]),
                teams: set(&[1]),
            },
        ]
    }

    /// Markers of everything `caller` must not see: other advisors' call ids
    /// and every admin-only row.
    fn forbidden(&self, caller: &Caller) -> Vec<String> {
        let mut words: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, a)| !caller.advisors.contains(a))
            .map(|(id, _)| id.clone())
            .collect();
        words.push("ADMIN-ONLY".into());
        words
    }

    /// A fingerprint of every row of every table the app owns.
    async fn fingerprint(&self) -> String {
        self.stack
            .db
            .scalar::<String>(
                "select string_agg(format('%s.%s=%s', n.nspname, c.relname,
                     (xpath('/row/h/text()', query_to_xml(format(
                        'select md5(coalesce(string_agg(t::text, ''|'' order by t::text), '''')) as h from %I.%I t',
                        n.nspname, c.relname), false, true, '')))[1]::text), ',' order by n.nspname, c.relname)
                 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 where n.nspname in ('callsync', 'public', 'auth') and c.relkind in ('r', 'p')",
            )
            .await
    }
}

fn sign(claims: &Value) -> String {
    callsync::jwt::sign(claims, JWT_SECRET.as_bytes())
}

async fn send(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut req = stack
        .http
        .request(method, format!("{}/{path}", stack.rest_url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.text().await.unwrap(), headers)
}

async fn get(stack: &Stack, path: &str, token: Option<&str>) -> (u16, Value) {
    let (s, text, _) = send(stack, reqwest::Method::GET, path, token, None, &[]).await;
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post(stack: &Stack, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let (s, text, _) = send(stack, reqwest::Method::POST, path, token, Some(body), &[]).await;
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn rows(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Nothing in `text` that `caller` must not see.
fn assert_no_leak(env: &Env, caller: &Caller, what: &str, text: &str) {
    for word in env.forbidden(caller) {
        assert!(
            !text.contains(&word),
            "{}: {what} shows {word:?}: {}",
            caller.name,
            &text[..text.len().min(400)]
        );
    }
}

/// Relations and functions in the schemas PostgREST serves, from the
/// catalog; objects that belong to extensions are the extensions' own.
async fn exposed(db: &TestDb) -> (BTreeSet<String>, BTreeSet<String>) {
    let c = db.pool.get().await.unwrap();
    let rels = c
        .query(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f')
               and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let fns = c
        .query(
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where n.nspname = 'public'
               and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (rels, fns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exposed_object_is_classified_and_anon_sees_none() {
    let env = Env::start().await;
    let (relations, functions) = rights();
    let (rels, fns) = exposed(&env.stack.db).await;
    let unclassified: Vec<&String> = rels
        .iter()
        .filter(|r| !relations.contains_key(r.as_str()))
        .chain(fns.iter().filter(|f| !functions.contains_key(f.as_str())))
        .collect();
    assert!(
        unclassified.is_empty(),
        "exposed through PostgREST but not in tests/security_rls.rs rights(): {unclassified:?}. \
         Decide who may read or call each (and give it RLS and grants to match)."
    );

    // What PostgREST itself describes agrees with the catalog.
    let (status, api) = get(&env.stack, "", Some(&env.stack.service_key)).await;
    assert_eq!(status, 200);
    let paths: BTreeSet<String> = api["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|p| p.as_str() != "/")
        .map(|p| {
            p.trim_start_matches("/rpc/")
                .trim_start_matches('/')
                .to_string()
        })
        .collect();
    for p in &paths {
        assert!(
            rels.contains(p) || fns.contains(p),
            "PostgREST exposes {p}, which the catalog scan missed"
        );
    }
    assert!(paths.len() >= relations.len(), "{paths:?}");

    // With follow-privileges, anon's API description lists what anon can use: nothing.
    for token in [None, Some(env.stack.anon_key.as_str())] {
        let (status, api) = get(&env.stack, "", token).await;
        let visible: Vec<&String> = api["paths"]
            .as_object()
            .map(|p| p.keys().filter(|k| k.as_str() != "/").collect())
            .unwrap_or_default();
        assert!(
            status >= 400 || visible.is_empty(),
            "anon is offered {visible:?}"
        );
    }

    // Catalog level: anon has no privilege on anything exposed, and every
    // table the app owns has row level security.
    let leaks: Vec<String> = env
        .stack
        .db
        .pool
        .get()
        .await
        .unwrap()
        .query(
            "select n.nspname || '.' || c.relname || ' (' || c.relkind::text || ')'
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname in ('public', 'callsync') and c.relkind in ('r', 'p', 'v', 'm', 'f')
               and (has_table_privilege('anon', c.oid, 'select, insert, update, delete, truncate, references, trigger')
                    or (c.relkind in ('r', 'p') and not c.relrowsecurity)
                    or (c.relkind = 'v' and n.nspname = 'public'
                        and not coalesce('security_invoker=true' = any (c.reloptions), false)))
             union all
             select 'function ' || p.oid::regprocedure::text
             from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where n.nspname in ('public', 'callsync') and has_function_privilege('anon', p.oid, 'execute')
               and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        leaks.is_empty(),
        "anon privileges, tables without RLS or views without security_invoker: {leaks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_role_reads_beyond_its_rights_and_none_writes_anything() {
    let env = Env::start().await;
    let (relations, functions) = rights();
    let admin = env.token(ADMIN);
    let before = env.fingerprint().await;
    let mut tried = 0usize;

    for (rel, read) in &relations {
        // positive control: the admin sees the rows the others must not
        let (status, all) = get(&env.stack, &format!("{rel}?select=*"), Some(&admin)).await;
        assert_eq!(status, 200, "admin reads {rel}: {all}");
        assert!(
            !rows(&all).is_empty(),
            "the fixture leaves {rel} empty, so this test would prove nothing about it"
        );
        let sample = rows(&all)[0].clone();
        let first_col = sample.as_object().unwrap().keys().next().unwrap().clone();

        for caller in env.outsiders() {
            let token = caller.token.as_deref();
            // read everything, and try to filter one's way into others' rows
            for path in [
                format!("{rel}?select=*"),
                format!("{rel}?select=*&advisor_id=eq.3"),
                format!("{rel}?select=*&or=(advisor_id.eq.1,advisor_id.eq.2,advisor_id.eq.3)"),
                format!("{rel}?select=*&order={first_col}.desc&limit=1000&offset=0"),
            ] {
                tried += 1;
                let (status, text, headers) = send(
                    &env.stack,
                    reqwest::Method::GET,
                    &path,
                    token,
                    None,
                    &[("Prefer", "count=exact")],
                )
                .await;
                assert_no_leak(&env, &caller, &format!("GET {path}"), &text);
                let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let seen = rows(&body);
                if *read == Read::OwnUser {
                    for r in seen {
                        assert_eq!(
                            r["user_id"].as_str(),
                            caller.sub,
                            "{}: {path} shows another user",
                            caller.name
                        );
                    }
                } else if caller.advisors.is_empty() || *read == Read::Admin {
                    assert!(
                        status >= 400 || seen.is_empty(),
                        "{}: GET {path} answered {status} with {} rows",
                        caller.name,
                        seen.len()
                    );
                } else {
                    for r in seen {
                        let a = r["advisor_id"].as_i64().unwrap();
                        assert!(
                            caller.advisors.contains(&a),
                            "{}: {path} shows advisor {a}",
                            caller.name
                        );
                    }
                }
                // the total in Content-Range must not count rows one cannot see
                if let Some(total) = headers
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.rsplit('/').next())
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    assert_eq!(
                        total,
                        seen.len(),
                        "{}: {path} counts hidden rows",
                        caller.name
                    );
                }
            }
            if *read == Read::ByAdvisor && !caller.advisors.is_empty() {
                let (_, mine) = get(&env.stack, &format!("{rel}?select=*"), token).await;
                assert!(
                    !rows(&mine).is_empty(),
                    "{} sees none of their own rows in {rel}: the scoping is too tight to prove anything",
                    caller.name
                );
            }

            // write: insert a copy, update everything, delete everything
            for (method, path, body) in [
                (reqwest::Method::POST, rel.to_string(), Some(sample.clone())),
                (
                    reqwest::Method::PATCH,
                    format!("{rel}?{first_col}=not.is.null"),
                    Some(json!({ first_col.clone(): sample[&first_col] })),
                ),
                (
                    reqwest::Method::DELETE,
                    format!("{rel}?{first_col}=not.is.null"),
                    None,
                ),
                (reqwest::Method::DELETE, rel.to_string(), None),
            ] {
                tried += 1;
                let (status, text, _) = send(
                    &env.stack,
                    method.clone(),
                    &path,
                    token,
                    body.as_ref(),
                    &[("Prefer", "return=representation")],
                )
                .await;
                assert!(
                    status >= 400,
                    "{}: {method} {path} answered {status}: {text}",
                    caller.name
                );
                assert_no_leak(&env, &caller, &format!("{method} {path}"), &text);
            }
        }
    }

    // the private schema is not reachable by switching profiles
    for caller in env.outsiders() {
        for (method, path) in [
            (reqwest::Method::GET, "call?select=*"),
            (reqwest::Method::GET, "job?select=*"),
            (reqwest::Method::POST, "rpc/enqueue"),
        ] {
            tried += 1;
            let (status, text, _) = send(
                &env.stack,
                method.clone(),
                path,
                caller.token.as_deref(),
                Some(&json!({})),
                &[
                    ("Accept-Profile", "callsync"),
                    ("Content-Profile", "callsync"),
                ],
            )
            .await;
            assert!(
                status >= 400,
                "{}: {method} callsync.{path} answered {status}",
                caller.name
            );
            assert_no_leak(&env, &caller, path, &text);
        }
    }

    for (name, call) in &functions {
        for caller in env.outsiders() {
            let token = caller.token.as_deref();
            tried += 1;
            match call {
                Call::ByAdvisor(args) => {
                    let (status, body) =
                        post(&env.stack, &format!("rpc/{name}"), token, args).await;
                    assert_no_leak(&env, &caller, name, &body.to_string());
                    for r in rows(&body) {
                        match r["advisor_id"].as_i64() {
                            Some(a) => assert!(
                                caller.advisors.contains(&a),
                                "{}: {name} shows advisor {a}",
                                caller.name
                            ),
                            None => {
                                let t = r["team_id"].as_i64().unwrap();
                                assert!(
                                    caller.teams.contains(&t),
                                    "{}: {name} shows team {t}",
                                    caller.name
                                );
                            }
                        }
                    }
                    if caller.advisors.is_empty() {
                        assert!(
                            status >= 400 || rows(&body).is_empty(),
                            "{}: {name}: {body}",
                            caller.name
                        );
                    }
                    // asking for another team by id gives nothing of it
                    let mut other = args.clone();
                    other["p_team_id"] = json!(2);
                    let (_, body) = post(&env.stack, &format!("rpc/{name}"), token, &other).await;
                    assert_no_leak(&env, &caller, name, &body.to_string());
                    if !caller.teams.contains(&2) {
                        assert!(
                            rows(&body).is_empty(),
                            "{}: {name} for team 2: {body}",
                            caller.name
                        );
                    }
                }
                Call::Admin(args) | Call::Service(args) => {
                    let (status, body) =
                        post(&env.stack, &format!("rpc/{name}"), token, args).await;
                    assert_no_leak(&env, &caller, name, &body.to_string());
                    assert!(
                        status >= 400 || rows(&body).is_empty() && !body.is_object(),
                        "{}: {name} answered {status}: {body}",
                        caller.name
                    );
                }
            }
        }
    }

    assert_eq!(
        env.fingerprint().await,
        before,
        "a refused request changed the database"
    );

    // positive controls: the same calls succeed for the roles that own them
    for (name, call) in &functions {
        let (token, args) = match call {
            Call::ByAdvisor(a) | Call::Admin(a) => (admin.clone(), a),
            Call::Service(a) => (env.stack.service_key.clone(), a),
        };
        let (status, body) = post(&env.stack, &format!("rpc/{name}"), Some(&token), args).await;
        assert!(
            status < 300,
            "the rightful caller of {name} was refused ({status}): {body}"
        );
    }
    println!(
        "rls: {tried} refused or scoped requests, {} relations, {} functions",
        relations.len(),
        functions.len()
    );
}

/// A token with `claims` as its payload but `from`'s signature.
fn swap_payload(from: &str, claims: &Value) -> String {
    let mut parts = from.split('.');
    let (h, _, s) = (parts.next().unwrap(), parts.next(), parts.next().unwrap());
    format!("{h}.{}.{s}", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_unsigned_and_foreign_tokens_are_refused_everywhere() {
    let env = Env::start().await;
    let (relations, functions) = rights();
    let now = chrono::Utc::now().timestamp();
    let admin_claims =
        json!({"role": "authenticated", "sub": ADMIN, "aud": "authenticated", "exp": now + 600});
    let olga = env.token(OLGA);
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let attacks: Vec<(&str, String)> = vec![
        (
            "expired admin token",
            sign(
                &json!({"role": "authenticated", "sub": ADMIN, "aud": "authenticated", "exp": now - 60}),
            ),
        ),
        (
            "admin token signed with another secret",
            callsync::jwt::sign(&admin_claims, b"another-secret-that-is-32-characters-long"),
        ),
        (
            "service_role key signed with another secret",
            callsync::jwt::sign(
                &json!({"role": "service_role", "exp": now + 600}),
                b"another-secret-that-is-32-characters-long",
            ),
        ),
        (
            "Olga's token with the admin's sub",
            swap_payload(&olga, &admin_claims),
        ),
        (
            "Olga's token claiming service_role",
            swap_payload(
                &olga,
                &json!({"role": "service_role", "sub": OLGA, "exp": now + 600}),
            ),
        ),
        (
            "Olga's token claiming app_role admin",
            swap_payload(
                &olga,
                &json!({"role": "authenticated", "sub": OLGA, "app_role": "admin", "exp": now + 600}),
            ),
        ),
        (
            "unsigned (alg none) admin token",
            format!(
                "{none_header}.{}.",
                URL_SAFE_NO_PAD.encode(admin_claims.to_string())
            ),
        ),
        (
            "token with the signature cut off",
            olga.rsplit_once('.').unwrap().0.to_string(),
        ),
        ("garbage bearer", "not-a-jwt".to_string()),
        (
            "correctly signed token for the database owner role",
            sign(&json!({"role": "postgres", "exp": now + 600})),
        ),
        (
            "correctly signed token for the superuser role",
            sign(&json!({"role": "supabase_admin", "exp": now + 600})),
        ),
        (
            "correctly signed token for the worker's role",
            sign(&json!({"role": "callsync_worker", "exp": now + 600})),
        ),
    ];
    let stranger = Caller {
        name: "attacker",
        token: None,
        sub: None,
        advisors: BTreeSet::new(),
        teams: BTreeSet::new(),
    };
    let before = env.fingerprint().await;
    let mut tried = 0;
    for (what, token) in &attacks {
        for rel in relations.keys() {
            for (method, body) in [
                (reqwest::Method::GET, None),
                (reqwest::Method::POST, Some(json!({}))),
                (reqwest::Method::DELETE, None),
            ] {
                tried += 1;
                let path = if method == reqwest::Method::DELETE {
                    format!("{rel}?advisor_id=not.is.null")
                } else {
                    format!("{rel}?select=*")
                };
                let (status, text, _) = send(
                    &env.stack,
                    method.clone(),
                    &path,
                    Some(token),
                    body.as_ref(),
                    &[],
                )
                .await;
                assert!(
                    status == 401 || status == 403,
                    "{what}: {method} {rel} answered {status}: {text}"
                );
                assert_no_leak(&env, &stranger, rel, &text);
            }
        }
        for (name, call) in &functions {
            tried += 1;
            let (Call::ByAdvisor(args) | Call::Admin(args) | Call::Service(args)) = call;
            let (status, text, _) = send(
                &env.stack,
                reqwest::Method::POST,
                &format!("rpc/{name}"),
                Some(token),
                Some(args),
                &[],
            )
            .await;
            assert!(
                status == 401 || status == 403,
                "{what}: rpc/{name} answered {status}: {text}"
            );
            assert_no_leak(&env, &stranger, name, &text);
        }
    }
    assert_eq!(
        env.fingerprint().await,
        before,
        "a refused token changed the database"
    );
    println!(
        "rls: {tried} requests with {} bad tokens, all refused",
        attacks.len()
    );
}
