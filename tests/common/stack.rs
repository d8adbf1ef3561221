//! The HTTP side of the stack for tests: PostgREST and the Edge Functions
//! (Deno) on free ports in front of one test database, started with the same
//! scripts the local stack uses. Processes die with the `Stack`.
use super::{free_port, root, wait_until, TestDb};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub const JWT_SECRET: &str = "test-jwt-secret-with-at-least-32-characters!!";

pub struct Stack {
    pub db: TestDb,
    pub rest_url: String,
    pub functions_url: String,
    pub service_key: String,
    pub anon_key: String,
    pub http: reqwest::Client,
    /// Where the processes write their output (scanned for secrets by hygiene tests).
    pub log_dir: std::path::PathBuf,
    children: Vec<Child>,
}

impl Stack {
    /// Starts PostgREST and the functions for `db`; `function_env` are the
    /// functions' secrets and settings.
    pub async fn start(db: TestDb, function_env: &[(&str, &str)]) -> Stack {
        let rest_port = free_port();
        let fn_port = free_port();
        let log_dir = root().join("target/test-logs").join(&db.name);
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let service_key = callsync::jwt::sign(
            &callsync::jwt::claims("service_role", None, 3600),
            JWT_SECRET.as_bytes(),
        );
        let anon_key = callsync::jwt::sign(
            &callsync::jwt::claims("anon", None, 3600),
            JWT_SECRET.as_bytes(),
        );
        let rest_url = format!("http://127.0.0.1:{rest_port}");

        let postgrest = spawn(
            Command::new("bash")
                .arg(root().join("scripts/run-postgrest.sh"))
                .env("DB_URI", db.url("authenticator"))
                .env("PORT", rest_port.to_string())
                .env("JWT_SECRET", JWT_SECRET),
            &log_dir.join("postgrest.log"),
        );
        let mut functions = Command::new("bash");
        functions
            .arg(root().join("scripts/run-functions.sh"))
            .env("PORT", fn_port.to_string())
            .env("CALLSYNC_REST_URL", &rest_url)
            .env("SUPABASE_SERVICE_ROLE_KEY", &service_key);
        for (k, v) in function_env {
            functions.env(k, v);
        }
        let functions = spawn(&mut functions, &log_dir.join("functions.log"));

        let stack = Stack {
            db,
            functions_url: format!("http://127.0.0.1:{fn_port}/functions/v1"),
            rest_url,
            service_key,
            anon_key,
            http: reqwest::Client::new(),
            log_dir,
            children: vec![postgrest, functions],
        };
        let (http, rest, fns, key) = (
            stack.http.clone(),
            stack.rest_url.clone(),
            stack.functions_url.clone(),
            stack.service_key.clone(),
        );
        wait_until("PostgREST answers", Duration::from_secs(30), || {
            let (http, rest, key) = (http.clone(), rest.clone(), key.clone());
            async move {
                matches!(http.get(format!("{rest}/")).bearer_auth(key).send().await, Ok(r) if r.status().is_success())
            }
        })
        .await;
        wait_until("the functions answer", Duration::from_secs(60), || {
            let (http, fns) = (http.clone(), fns.clone());
            async move {
                matches!(http.get(format!("{fns}/")).send().await, Ok(r) if r.status().is_success())
            }
        })
        .await;
        stack
    }

    /// A user token for PostgREST (role `authenticated`, subject `sub`).
    pub fn user_token(&self, sub: &str) -> String {
        callsync::jwt::sign(
            &callsync::jwt::claims("authenticated", Some(sub), 3600),
            JWT_SECRET.as_bytes(),
        )
    }

    /// The process ids of PostgREST and Deno (the scripts `exec` them, so
    /// these are the servers themselves), for CPU accounting.
    pub fn pids(&self) -> (Option<u32>, Option<u32>) {
        (self.children[0].id(), self.children[1].id())
    }

    /// Everything the stack's processes have logged so far.
    pub fn logs(&self) -> String {
        ["postgrest.log", "functions.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.log_dir.join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn spawn(cmd: &mut Command, log: &std::path::Path) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn stack process")
}
