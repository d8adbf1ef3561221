//! callsync: Callyzer calls and ElevenLabs analyses into Supabase, leads and BPMsoft.
//!
//! Postgres is the store, the queue and the scheduler; this crate is the worker
//! that does everything that talks to the outside world, plus the `callsync`
//! command-line tool that migrates and operates it.
//!
//! # Layout
//! - [`config`]: environment → typed [`config::Config`], every problem reported at once, secrets redacted.
//! - [`secret`]: [`secret::Secret`], a value that never prints itself.
//! - [`telemetry`]: tracing subscriber set-up, JSON on Fly, readable text locally.
//! - [`shutdown`]: SIGINT/SIGTERM → a `CancellationToken`.
//! - [`db`]: the connection pool and [`db::DbError`].
//! - [`migrate`]: applies `supabase/migrations` and refuses to run when an applied file changed.
//! - [`queue`]: the job queue's Rust side: types, the SQL store, the backoff policy.
//! - [`listener`]: the LISTEN connection that wakes the worker, reconnecting on its own.
//! - [`worker`]: the claim loop, the concurrency cap, lease renewal, batched completion, drain.
//! - [`jobs`]: job handlers by kind and [`jobs::JobError`] (retryable or permanent).
//! - [`clients`]: one HTTP client per outside system, mapping outcomes to `JobError`.
//! - [`domain`]: parse-don't-validate types (phone numbers, call records, …).
//! - [`jwt`]: HS256 tokens for the local stack and tests (PostgREST keys).
//! - [`metrics`]: in-memory counters and histograms any module records into, Prometheus text out.
//! - [`health`]: the internal HTTP port (`HEALTH_ADDR`): `/healthz` and `/metrics`.
//! - [`ops`]: operator actions behind the runbooks (retry, replay, resend, pause).
//! - [`simulate`]: `callsync simulate`, a local Callyzer/BPMsoft stand-in that also serves the console (and, locally, its sign-in).

pub mod clients;
pub mod config;
pub mod db;
pub mod domain;
pub mod health;
pub mod jobs;
pub mod jwt;
pub mod listener;
pub mod metrics;
pub mod migrate;
pub mod ops;
pub mod queue;
pub mod secret;
pub mod shutdown;
pub mod simulate;
pub mod telemetry;
pub mod worker;
