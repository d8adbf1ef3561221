//! The deployment files say what the code expects: fly.toml runs the worker
//! with SIGTERM, a kill timeout longer than the drain deadline, restart on
//! failure, a health check and metrics on HEALTH_ADDR's port; the Dockerfile
//! builds the crate's binary with a Rust that supports its edition and every
//! locked dependency; supabase/config.toml leaves the JWT check off for the
//! webhooks only; .env.example names every secret the functions read.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeSet;
use std::process::Command;

fn read(path: &str) -> String {
    std::fs::read_to_string(common::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn toml(path: &str) -> toml::Table {
    read(path)
        .parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("{path} is not valid TOML: {e}"))
}

fn at<'a>(t: &'a toml::Table, path: &[&str]) -> &'a toml::Value {
    let mut v = t
        .get(path[0])
        .unwrap_or_else(|| panic!("missing {}", path[0]));
    for key in &path[1..] {
        v = v
            .get(key)
            .unwrap_or_else(|| panic!("missing {}", path.join(".")));
    }
    v
}

fn str_of<'a>(t: &'a toml::Table, path: &[&str]) -> &'a str {
    at(t, path)
        .as_str()
        .unwrap_or_else(|| panic!("{} is not a string", path.join(".")))
}

/// The first block of an array of tables (`[[restart]]`, `[[metrics]]`).
fn first<'a>(t: &'a toml::Table, key: &str) -> &'a toml::Table {
    at(t, &[key]).as_array().unwrap()[0].as_table().unwrap()
}

#[test]
fn fly_toml_runs_the_worker_with_a_drain_that_fits_the_kill_timeout() {
    let fly = toml("fly.toml");
    assert_eq!(str_of(&fly, &["kill_signal"]), "SIGTERM");
    let kill_timeout = at(&fly, &["kill_timeout"]).as_integer().unwrap();
    let drain: i64 = str_of(&fly, &["env", "WORKER_DRAIN_SECS"]).parse().unwrap();
    // the drain, then up to 5 s releasing unfinished jobs, then a margin
    assert!(
        kill_timeout >= drain + 10,
        "kill_timeout {kill_timeout} s must exceed WORKER_DRAIN_SECS {drain} s + release + margin"
    );
    assert!(kill_timeout <= 300, "Fly's maximum kill_timeout is 300 s");

    let worker = str_of(&fly, &["processes", "worker"]);
    assert_eq!(
        worker, "worker",
        "the process runs `callsync worker` (the image's ENTRYPOINT)"
    );
    assert_eq!(
        str_of(&fly, &["env", "LOG_FORMAT"]),
        "json",
        "JSON logs on Fly"
    );

    let restart = first(&fly, "restart");
    assert_eq!(restart["policy"].as_str(), Some("on-failure"));

    let addr: std::net::SocketAddr = str_of(&fly, &["env", "HEALTH_ADDR"]).parse().unwrap();
    assert!(
        addr.ip().is_unspecified(),
        "Fly checks need 0.0.0.0, not loopback"
    );
    let check = at(&fly, &["checks"])
        .as_table()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert_eq!(check["type"].as_str(), Some("http"));
    assert_eq!(check["path"].as_str(), Some("/healthz"));
    assert_eq!(check["port"].as_integer(), Some(i64::from(addr.port())));
    let metrics = first(&fly, "metrics");
    assert_eq!(metrics["path"].as_str(), Some("/metrics"));
    assert_eq!(metrics["port"].as_integer(), Some(i64::from(addr.port())));

    assert!(
        fly.get("http_service").is_none() && fly.get("services").is_none(),
        "no public port"
    );
    // every [env] name is one the worker understands (a typo would be silently ignored)
    let config_doc = read("src/config.rs");
    for name in at(&fly, &["env"]).as_table().unwrap().keys() {
        assert!(
            config_doc.contains(&format!("`{name}`")) || name == "RUST_LOG",
            "fly.toml sets {name}, which src/config.rs does not document"
        );
    }
}

#[test]
fn the_dockerfile_builds_this_crate_s_binary_with_a_rust_that_can() {
    let cargo = toml("Cargo.toml");
    let bin = str_of(&cargo, &["package", "name"]);
    let bins = at(&cargo, &["bin"]).as_array().unwrap();
    assert!(bins.iter().any(|b| b["name"].as_str() == Some(bin)));
    let edition = str_of(&cargo, &["package", "edition"]);
    let docker = read("Dockerfile");

    assert!(docker.contains(&format!("cargo build --release --locked --bin {bin}")));
    assert!(docker.contains(&format!("/src/target/release/{bin} /usr/local/bin/{bin}")));
    assert!(
        docker.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{bin}\"]")),
        "exec form, so SIGTERM reaches the binary"
    );
    assert!(docker.contains("CMD [\"worker\"]"));
    let stages = docker.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(
        stages >= 2,
        "multi-stage: the runtime image carries no toolchain"
    );
    assert!(
        docker.contains("FROM debian:bookworm-slim"),
        "a small runtime stage"
    );

    // the build image's Rust: `FROM rust:<major>.<minor>-...`
    let from = docker
        .lines()
        .find(|l| l.starts_with("FROM rust:"))
        .expect("a FROM rust:<version> build stage");
    let version = from["FROM rust:".len()..].split('-').next().unwrap();
    let image = parse_version(version);
    let edition_needs = match edition {
        "2015" | "2018" => (1, 31),
        "2021" => (1, 56),
        "2024" => (1, 85),
        other => panic!("unknown edition {other}"),
    };
    assert!(
        image >= edition_needs,
        "rust:{version} cannot build edition {edition}"
    );
    let (needed, who) = newest_rust_version_needed();
    assert!(
        image >= needed,
        "rust:{version} is older than {who} needs ({needed:?})"
    );
}

fn parse_version(v: &str) -> (u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap_or(0))
}

/// The highest `rust-version` of the crate and every locked dependency.
fn newest_rust_version_needed() -> ((u32, u32), String) {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .current_dir(common::root())
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let v = p["rust_version"].as_str()?;
            Some((parse_version(v), p["name"].as_str()?.to_string()))
        })
        .max()
        .unwrap()
}

#[test]
fn supabase_config_exposes_public_only_and_verifies_jwts_except_on_webhooks() {
    let cfg = toml("supabase/config.toml");
    let schemas: Vec<&str> = at(&cfg, &["api", "schemas"])
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(schemas, ["public"], "the callsync schema is never exposed");
    let functions = at(&cfg, &["functions"]).as_table().unwrap();
    let on_disk: BTreeSet<String> = std::fs::read_dir(common::root().join("supabase/functions"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('_') && n != "tests")
        .collect();
    let configured: BTreeSet<String> = functions.keys().cloned().collect();
    assert_eq!(configured, on_disk, "every deployed function is configured");
    for (name, f) in functions {
        let verify = f["verify_jwt"].as_bool().unwrap();
        let webhook = name.ends_with("-webhook");
        assert_eq!(verify, !webhook, "{name}: verify_jwt must be {}", !webhook);
    }
    assert_eq!(
        at(&cfg, &["functions", "crm-api", "verify_jwt"]).as_bool(),
        Some(true)
    );
}

#[test]
fn env_example_names_every_secret_the_functions_read() {
    let example = read("supabase/functions/.env.example");
    let listed: BTreeSet<&str> = example
        .lines()
        .map(|l| l.trim_start_matches("# ").trim())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    let mut read_by_functions = BTreeSet::new();
    let mut stack = vec![common::root().join("supabase/functions")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("tests") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "ts") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, _) in text.match_indices("Deno.env.get(\"") {
                    let rest = &text[i + "Deno.env.get(\"".len()..];
                    read_by_functions.insert(rest[..rest.find('"').unwrap()].to_string());
                }
            }
        }
    }
    assert!(read_by_functions.contains("CALLYZER_WEBHOOK_TOKEN_PREVIOUS"));
    for name in &read_by_functions {
        assert!(
            listed.contains(name.as_str()),
            ".env.example does not name {name}"
        );
    }
}
