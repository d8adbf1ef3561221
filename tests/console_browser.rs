//! The operator console in a real browser: a fresh database with the seed's
//! demo users, PostgREST and the Edge Functions (Stack), the worker binary and
//! `callsync simulate` (calls, history API, BPMsoft sandbox, the console and its
//! local sign-in), with scripts/dev.sh's demo settings. Then Debian's Chromium,
//! through playwright-core, signs in through the console's form:
//! - `tests/browser/first_minute.mjs`, started the moment every process
//!   answers: within 60 s the admin sees calls arriving, matched and unmatched
//!   calls, team statistics moving and a reconciliation run that recovered
//!   dropped webhooks (the README's promise; the seconds are printed);
//! - `tests/browser/console.mjs`: a wrong password is refused, each role sees
//!   exactly its screens and rows, an admin retries a discarded job and sees it
//!   complete and resends a CRM dispatch, and a session is refreshed, ends at
//!   the form when it cannot be, and is revoked at sign-out.
//!
//! Screenshots land in tests/artifacts/console (git-ignored).
//!
//! Ignored by a plain `cargo test` (it needs Chromium and tools/node_modules):
//! `scripts/test.sh` installs both and runs it with `--ignored`.
#![allow(clippy::unwrap_used)]
mod common;

use common::stack::{Stack, JWT_SECRET};
use common::*;
use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::process::{Child, Command};

const TOKEN: &str = "cz-console-test-token-0123456789";
const EL_SECRET: &str = "wsec_console_test_secret_0123456789";
const LANDING: &str = "3b0f6c2e-9d41-4a57-8e1c-5f2a7d9b4c10";

fn spawn(cmd: &mut Command, log: &std::path::Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test]
#[ignore = "needs Chromium and playwright-core: scripts/test.sh installs them and runs this with --ignored"]
async fn console_in_chromium_as_admin_manager_and_advisor() {
    let db = TestDb::new().await;
    psql_file(&db.url("postgres"), &root().join("supabase/seed.sql"));
    // as scripts/dev.sh sets the local database (hosted projects keep 1 day)
    db.exec("update callsync.setting set value = '\"15 minutes\"' where key = 'callyzer.reconcile_safety_buffer'")
        .await;
    let stack = Stack::start(
        db,
        &[
            ("CALLYZER_WEBHOOK_TOKEN", TOKEN),
            ("ELEVENLABS_WEBHOOK_SECRET", EL_SECRET),
        ],
    )
    .await;
    let sim_port = free_port();
    let sim_url = format!("http://127.0.0.1:{sim_port}");
    let crm_url =
        format!("{sim_url}/0/ServiceModel/GeneratedObjectWebFormService.svc/SaveWebFormObjectData");
    let worker = spawn(
        Command::new(env!("CARGO_BIN_EXE_callsync"))
            .arg("worker")
            .env("DATABASE_URL", stack.db.url("callsync_worker"))
            .env("WORKER_ID", "console-test")
            .env("WORKER_POLL_INTERVAL_MS", "200")
            .env("EXTERNAL_CRM_ENABLED", "true")
            .env("EXTERNAL_CRM_DRY_RUN", "false")
            .env("CRM_SERVICE_URL", &crm_url)
            .env("CRM_LANDING_ID", LANDING)
            .env("CRM_TRUSTED_ORIGIN", "http://localhost/")
            .env("CALLYZER_API_BASE_URL", format!("{sim_url}/api"))
            .env("CALLYZER_API_TOKEN", "sim-token"),
        &stack.log_dir.join("worker.log"),
    );
    // scripts/dev.sh's demo: 30 calls a minute, a fifth of them lost, 400 calls
    // of history, a reconciliation 2 s after the first loss (the ElevenLabs
    // event is posted at start either way; dev.sh repeats it every 90 s)
    let simulator = spawn(
        Command::new(env!("CARGO_BIN_EXE_callsync"))
            .current_dir(root())
            .args([
                "simulate",
                "--listen",
                &format!("127.0.0.1:{sim_port}"),
                "--local-login",
                "--rate",
                "30",
                "--drop",
                "0.2",
                "--history",
                "400",
                "--reconcile-after-drop-secs",
                "2",
                "--elevenlabs-every-secs",
                "3600",
            ])
            .env("JWT_SECRET", JWT_SECRET)
            .env("ANON_KEY", &stack.anon_key)
            .env("DATABASE_URL", stack.db.url("postgres"))
            .env("FUNCTIONS_URL", &stack.functions_url)
            .env("POSTGREST_URL", &stack.rest_url)
            .env("CALLYZER_WEBHOOK_TOKEN", TOKEN)
            .env("ELEVENLABS_WEBHOOK_SECRET", EL_SECRET)
            .env("CALLYZER_API_TOKEN", "sim-token"),
        &stack.log_dir.join("simulator.log"),
    );

    // Ready as scripts/dev.sh means it: every process answers, the console too.
    let http = stack.http.clone();
    let config_url = format!("{sim_url}/config.json");
    wait_until(
        "the simulator serves the console",
        Duration::from_secs(60),
        || {
            let (http, url) = (http.clone(), config_url.clone());
            async move { matches!(http.get(url).send().await, Ok(r) if r.status().is_success()) }
        },
    )
    .await;
    let ready_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();

    // The README's first minute, from this moment on, in the browser.
    let first_minute = run_node(
        "first_minute.mjs",
        &[
            ("CONSOLE_URL", format!("{sim_url}/")),
            ("READY_AT", ready_at.to_string()),
            ("DEADLINE_S", "60".into()),
        ],
        Duration::from_secs(150),
    )
    .await;
    assert!(
        first_minute.0,
        "the first minute did not show everything:\n{}\nlogs in {}",
        first_minute.1,
        stack.log_dir.display()
    );

    // Calls arrived and were processed, and the ElevenLabs event reached the sandbox.
    let pool = stack.db.pool.clone();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            let c = pool.get().await.unwrap();
            c.query_one(sql, &[]).await.unwrap().get::<_, i64>(0)
        }
    };
    wait_until(
        "the simulator's history is processed",
        Duration::from_secs(60),
        || async { count("select count(*) from callsync.call").await >= 400 },
    )
    .await;
    wait_until(
        "a CRM dispatch reached the BPMsoft sandbox",
        Duration::from_secs(60),
        || async {
            count("select count(*) from callsync.crm_dispatch where status = 'success'").await >= 1
        },
    )
    .await;
    let event: i64 = stack
        .db
        .scalar("select event_id from callsync.crm_dispatch where status = 'success' limit 1")
        .await;
    // A job that failed for good, for the admin to retry from the console.
    let discarded: i64 = stack
        .db
        .scalar(
            "insert into callsync.job (kind, args, state, max_attempts, attempt, attempted_at, last_error, finished_at)
             values ('noop', '{\"from\": \"console test\"}', 'discarded', 3, 3, now(), 'simulated failure: BPMsoft answered 503', now())
             returning id",
        )
        .await;
    let names = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            let c = pool.get().await.unwrap();
            c.query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        }
    };
    let all = names("select name from callsync.advisor").await;
    let warszawa = names(
        "select a.name from callsync.advisor a join callsync.team t on t.id = a.team_id
         where t.name = 'Demo team Warszawa'",
    )
    .await;
    let expect = json!({
        "restUrl": stack.rest_url,
        "discardedJob": discarded,
        "crmEvent": event,
        "allowedAdvisors": {"admin": all, "manager": warszawa, "advisor": ["Olga Nowak"]},
        "mustSee": {"admin": ["Basia Zielińska", "Olga Nowak"], "manager": ["Olga Nowak"], "advisor": ["Olga Nowak"]},
    });

    let (ok, report) = run_node(
        "console.mjs",
        &[
            ("CONSOLE_URL", format!("{sim_url}/")),
            ("EXPECT", expect.to_string()),
        ],
        Duration::from_secs(300),
    )
    .await;
    drop(simulator);
    drop(worker);
    assert!(
        ok,
        "browser test failed:\n{report}\nlogs in {}",
        stack.log_dir.display()
    );
}

/// Runs `tests/browser/<script>` with node; prints and returns its output and
/// whether it succeeded.
async fn run_node(script: &str, env: &[(&str, String)], limit: Duration) -> (bool, String) {
    let mut cmd = Command::new("node");
    cmd.arg(root().join("tests/browser").join(script))
        .env("ARTIFACTS_DIR", root().join("tests/artifacts/console"))
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{script} finishes within {limit:?}"))
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    (out.status.success(), report)
}
