//! The operator console in a real browser: a fresh database with the seed's
//! demo users, PostgREST and the Edge Functions (Stack), the worker binary and
//! `callsync simulate` (calls, history API, BPMsoft sandbox, the console), and
//! then `tests/browser/console.mjs` drives Debian's Chromium through
//! playwright-core: each role sees exactly its screens and rows, an admin
//! retries a discarded job and sees it complete, and resends a CRM dispatch.
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
use std::time::Duration;
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
    let simulator = spawn(
        Command::new(env!("CARGO_BIN_EXE_callsync"))
            .current_dir(root())
            .args([
                "simulate",
                "--listen",
                &format!("127.0.0.1:{sim_port}"),
                "--local-login",
                "--rate",
                "120",
                "--history",
                "150",
                "--elevenlabs-every-secs",
                "3600",
            ])
            .env("JWT_SECRET", JWT_SECRET)
            .env("DATABASE_URL", stack.db.url("postgres"))
            .env("FUNCTIONS_URL", &stack.functions_url)
            .env("POSTGREST_URL", &stack.rest_url)
            .env("CALLYZER_WEBHOOK_TOKEN", TOKEN)
            .env("ELEVENLABS_WEBHOOK_SECRET", EL_SECRET)
            .env("CALLYZER_API_TOKEN", "sim-token"),
        &stack.log_dir.join("simulator.log"),
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
        || async { count("select count(*) from callsync.call").await >= 150 },
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

    let out = Command::new("node")
        .arg(root().join("tests/browser/console.mjs"))
        .env("CONSOLE_URL", format!("{sim_url}/"))
        .env("EXPECT", expect.to_string())
        .env("ARTIFACTS_DIR", root().join("tests/artifacts/console"))
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), out)
        .await
        .expect("the browser test finishes within 4 minutes")
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    drop(simulator);
    drop(worker);
    assert!(
        out.status.success(),
        "browser test failed:\n{report}\nlogs in {}",
        stack.log_dir.display()
    );
}
