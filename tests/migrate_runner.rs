//! `callsync migrate`: applies each file once, in order, one transaction per
//! file, and refuses to run when an applied file has changed.
#![allow(clippy::unwrap_used)] // tests and benchmarks fail loudly by design

mod common;

use callsync::migrate::{self, MigrateError, Scope};
use common::*;
use std::sync::atomic::{AtomicU32, Ordering};

static N: AtomicU32 = AtomicU32::new(0);

/// A bootstrapped, unmigrated database and a private copy of the migrations folder.
fn fresh(tag: &str) -> (String, std::path::PathBuf) {
    let (cluster, _) = shared();
    let name = format!("migrate_{tag}_{}", N.fetch_add(1, Ordering::Relaxed));
    cluster.create_bootstrapped_db(&name);
    let dir = root().join("target/test-migrations").join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(root().join("supabase/migrations")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    (cluster.url("postgres", &name), dir)
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

#[tokio::test]
async fn migrations_apply_once_and_a_second_run_applies_nothing() {
    let (url, dir) = fresh("once");
    let mut client = connect(&url).await;
    let files = migrate::load(&dir).unwrap();
    let first = migrate::run(&mut client, &files, Scope::WithoutSchedules)
        .await
        .unwrap();
    assert_eq!(
        first.len(),
        files.iter().filter(|m| !m.is_schedule()).count()
    );
    let second = migrate::run(&mut client, &files, Scope::WithoutSchedules)
        .await
        .unwrap();
    assert!(second.is_empty());
    let recorded: i64 = client
        .query_one("select count(*) from callsync_migrations.applied", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded as usize, first.len());
}

#[tokio::test]
async fn a_changed_applied_migration_stops_the_run_before_anything_applies() {
    let (url, dir) = fresh("changed");
    let mut client = connect(&url).await;
    let files = migrate::load(&dir).unwrap();
    migrate::run(&mut client, &files, Scope::WithoutSchedules)
        .await
        .unwrap();

    let first = &files[0].path;
    let edited = std::fs::read_to_string(first).unwrap() + "\n-- an innocent-looking edit\n";
    std::fs::write(first, edited).unwrap();
    std::fs::write(
        dir.join("29990101000000_add_later.sql"),
        "create table callsync.later (id int);",
    )
    .unwrap();

    let err = migrate::run(
        &mut client,
        &migrate::load(&dir).unwrap(),
        Scope::WithoutSchedules,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, MigrateError::Changed(..)), "{err}");
    let later: bool = client
        .query_one("select to_regclass('callsync.later') is not null", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!later, "the new migration was not applied either");
}

#[tokio::test]
async fn a_failing_migration_is_rolled_back_whole_and_earlier_ones_stay() {
    let (url, dir) = fresh("failing");
    std::fs::write(
        dir.join("29990101000000_add_broken.sql"),
        "create table callsync.half (id int); select * from no_such_table;",
    )
    .unwrap();
    let mut client = connect(&url).await;
    let err = migrate::run(
        &mut client,
        &migrate::load(&dir).unwrap(),
        Scope::WithoutSchedules,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, MigrateError::Failed(ref name, _) if name.contains("add_broken")),
        "{err}"
    );
    let half: bool = client
        .query_one("select to_regclass('callsync.half') is not null", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!half, "nothing of the failed file was kept");
    let queue: bool = client
        .query_one("select to_regclass('callsync.job') is not null", &[])
        .await
        .unwrap()
        .get(0);
    assert!(queue, "the files before it stay applied");
}

#[tokio::test]
async fn the_migrate_command_applies_everything_to_a_database_with_pg_cron() {
    // The shared cluster's `postgres` database has pg_cron, like hosted Supabase.
    let (cluster, _) = shared();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callsync"))
        .arg("migrate")
        .arg("--dir")
        .arg(root().join("supabase/migrations"))
        .env("DATABASE_URL", cluster.url("postgres", "postgres"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = connect(&cluster.url("postgres", "postgres")).await;
    let jobs: i64 = client
        .query_one(
            "select count(*) from cron.job where jobname like 'callsync-%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(jobs >= 2, "the schedules were created");
}
