//! The worker on a connection that cannot LISTEN behaves as the README says
//! ("Connecting the worker"): with LISTEN on it refuses to start, with a clear
//! message, both for a URL on port 6543 (Supabase's transaction pooler) and for
//! a server that answers LISTEN with an error; with WORKER_LISTEN=false it runs
//! poll-only through the same connection and does its work.
//!
//! The pooler here is real enough: a TCP proxy in front of the test cluster that
//! speaks the Postgres wire protocol's framing, forwards everything, and answers
//! any simple-query LISTEN itself with SQLSTATE 0A000, as a pooler in
//! transaction mode that refuses session features would.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::*;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Starts the proxy to `upstream` on a free port; returns that port.
async fn listen_refusing_proxy(upstream: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(proxy_session(client, upstream));
        }
    });
    port
}

async fn proxy_session(client: TcpStream, upstream: u16) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    // Everything the client receives goes through one channel: the server's
    // bytes and the proxy's own answers, in order.
    let (to_client, mut outbox) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(bytes) = outbox.recv().await {
            if client_tx.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let from_server = to_client.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if from_server.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    // Untyped start-up messages (SSLRequest, then StartupMessage), then typed ones.
    loop {
        let Ok(len) = client_rx.read_i32().await else {
            return;
        };
        let mut body = vec![0u8; len as usize - 4];
        if client_rx.read_exact(&mut body).await.is_err() {
            return;
        }
        let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let mut message = len.to_be_bytes().to_vec();
        message.extend_from_slice(&body);
        if server_tx.write_all(&message).await.is_err() {
            return;
        }
        if code != 80877103 && code != 80877104 {
            break; // not SSLRequest / GSSENCRequest: that was the StartupMessage
        }
    }
    loop {
        let Ok(kind) = client_rx.read_u8().await else {
            return;
        };
        let Ok(len) = client_rx.read_i32().await else {
            return;
        };
        let mut body = vec![0u8; len as usize - 4];
        if client_rx.read_exact(&mut body).await.is_err() {
            return;
        }
        let query = String::from_utf8_lossy(&body).trim().to_lowercase();
        if kind == b'Q' && query.starts_with("listen") {
            let _ = to_client.send(error_then_ready(
                "LISTEN is not supported in transaction mode",
            ));
            continue;
        }
        let mut message = vec![kind];
        message.extend_from_slice(&len.to_be_bytes());
        message.extend_from_slice(&body);
        if server_tx.write_all(&message).await.is_err() {
            return;
        }
    }
}

/// ErrorResponse (SQLSTATE 0A000, feature_not_supported) and ReadyForQuery (idle).
fn error_then_ready(message: &str) -> Vec<u8> {
    let mut fields = Vec::new();
    for (code, value) in [
        (b'S', "ERROR"),
        (b'V', "ERROR"),
        (b'C', "0A000"),
        (b'M', message),
    ] {
        fields.push(code);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&(fields.len() as i32 + 4).to_be_bytes());
    out.extend_from_slice(&fields);
    out.extend_from_slice(&[b'Z', 0, 0, 0, 5, b'I']);
    out
}

/// A worker process that a failing assertion does not leave behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the worker until it exits by itself (at most 30 s).
async fn run_worker_to_exit(url: &str, extra: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callsync"));
    cmd.arg("worker")
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let waited = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await;
    match waited {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the worker did not exit within 30 s on a connection that cannot LISTEN");
        }
    }
}

fn through_proxy(db: &TestDb, proxy_port: u16) -> String {
    db.url("callsync_worker").replace(
        &format!(":{}/", db.cluster.port),
        &format!(":{proxy_port}/"),
    )
}

#[tokio::test]
async fn the_proxy_really_refuses_listen_and_passes_everything_else() {
    let db = TestDb::new().await;
    let proxy = listen_refusing_proxy(db.cluster.port).await;
    let (client, conn) = callsync::db::connect(&through_proxy(&db, proxy))
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one("select 1 + $1::int", &[&1i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 2, "extended protocol passes");
    let err = client
        .batch_execute("listen callsync_jobs")
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "0A000");
    client.batch_execute("select 1").await.unwrap(); // the session is still usable
}

#[tokio::test]
async fn with_listen_on_a_connection_that_refuses_listen_stops_the_worker_with_a_clear_message() {
    let db = TestDb::new().await;
    let proxy = listen_refusing_proxy(db.cluster.port).await;
    let out = run_worker_to_exit(&through_proxy(&db, proxy), &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a non-zero exit, so Fly's restart policy and the deploy see it"
    );
    assert!(stderr.contains("refused LISTEN"), "{stderr}");
    assert!(stderr.contains("0A000"), "{stderr}");
    assert!(stderr.contains("session pooler (port 5432)"), "{stderr}");
    assert!(stderr.contains("WORKER_LISTEN=false"), "{stderr}");
    assert!(
        !stderr.contains("postgres:postgres@"),
        "the URL's password is never printed"
    );
}

#[tokio::test]
async fn a_url_on_the_transaction_pooler_port_stops_the_worker_before_connecting() {
    let url = "postgres://callsync_worker.ref:secret@127.0.0.1:6543/postgres?sslmode=require";
    let out = run_worker_to_exit(url, &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("port 6543, Supabase's transaction pooler"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_only_mode_works_through_the_same_connection() {
    let db = TestDb::new().await;
    let proxy = listen_refusing_proxy(db.cluster.port).await;
    db.exec(
        "insert into callsync.job (kind, max_attempts) select 'noop', 3 from generate_series(1, 20)",
    )
    .await;
    let health = free_port();
    let mut worker = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_callsync"))
            .arg("worker")
            .env("DATABASE_URL", through_proxy(&db, proxy))
            .env("WORKER_LISTEN", "false")
            .env("WORKER_POLL_INTERVAL_MS", "100")
            .env("HEALTH_ADDR", format!("127.0.0.1:{health}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(
        "every job completed by polling",
        Duration::from_secs(60),
        || async { count_state(&db, "completed").await == 20 },
    )
    .await;
    let body = reqwest::get(format!("http://127.0.0.1:{health}/healthz"))
        .await
        .unwrap();
    assert_eq!(
        body.status().as_u16(),
        200,
        "poll-only is healthy without LISTEN"
    );
    let health: serde_json::Value = body.json().await.unwrap();
    assert!(health["listen"].is_null(), "{health}");
    Command::new("kill")
        .args(["-TERM", &worker.0.id().to_string()])
        .status()
        .unwrap();
    // Wait without blocking this runtime: the proxy's tasks run on it, and the
    // worker's last statements at shutdown go through the proxy.
    wait_until(
        "the worker exits after SIGTERM",
        Duration::from_secs(30),
        || {
            let exited = worker.0.try_wait().unwrap().is_some();
            async move { exited }
        },
    )
    .await;
    assert!(worker.0.wait().unwrap().success());
}
