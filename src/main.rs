//! The `callsync` command: `migrate` applies the migrations, `worker` runs the
//! job loop until SIGINT/SIGTERM, `jwt` mints local keys, `enqueue` adds a job;
//! the runbook subcommands (`retry-discarded`, `replay-event`, `resend-crm`,
//! `pause`, `resume`) are [`callsync::ops::Command`].
//! The only place `anyhow` is used: errors here end the process with context.
use anyhow::Context;
use callsync::config::Config;
use callsync::queue::store::{NewJob, Store};
use callsync::{db, jobs, jwt, listener, migrate, shutdown, telemetry, worker};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "callsync",
    version,
    about = "Callyzer and ElevenLabs call data into Supabase, leads and BPMsoft"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply supabase/migrations to the database in DATABASE_URL.
    Migrate {
        /// Folder of <version>_<name>.sql files.
        #[arg(long, default_value = "supabase/migrations")]
        dir: PathBuf,
        /// Skip *_schedule_* files (databases without pg_cron).
        #[arg(long)]
        skip_schedules: bool,
    },
    /// Run the job loop until SIGINT or SIGTERM (configuration: see README).
    Worker,
    /// Print an HS256 token signed with JWT_SECRET (local keys and testing only).
    Jwt {
        /// The role claim: anon, authenticated, service_role.
        #[arg(long)]
        role: String,
        /// The subject (a user id) for authenticated tokens.
        #[arg(long)]
        sub: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 10 * 365 * 24 * 3600)]
        ttl_secs: i64,
    },
    /// Enqueue a job (operators and smoke tests).
    Enqueue {
        /// Job kind, e.g. noop.
        #[arg(long)]
        kind: String,
        /// JSON arguments.
        #[arg(long, default_value = "{}")]
        args: String,
        /// Lower runs first.
        #[arg(long, default_value_t = 100)]
        priority: i16,
    },
    #[command(flatten)]
    Ops(callsync::ops::Command),
    /// Start a Callyzer reconciliation now: over --from..--to (the cursor stays), or the cursor window.
    Reconcile {
        /// Window start: 2026-01-01T10:00:00Z or 2026-01-01 (UTC).
        #[arg(long, requires = "to", value_parser = callsync::jobs::callyzer_reconcile::parse_instant)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Window end, same forms.
        #[arg(long, requires = "from", value_parser = callsync::jobs::callyzer_reconcile::parse_instant)]
        to: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Simulate Callyzer (webhooks, history API) and BPMsoft, and serve the console (local demo, load).
    Simulate(Box<callsync::simulate::SimulateArgs>),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Migrate {
            dir,
            skip_schedules,
        } => {
            telemetry::init(telemetry::LogFormat::Pretty);
            let url = std::env::var("DATABASE_URL").context("DATABASE_URL is required")?;
            let migrations =
                migrate::load(&dir).with_context(|| format!("reading {}", dir.display()))?;
            let (mut client, connection) = db::connect(&url)
                .await
                .context("connecting to DATABASE_URL")?;
            tokio::spawn(connection);
            let scope = if skip_schedules {
                migrate::Scope::WithoutSchedules
            } else {
                migrate::Scope::All
            };
            let applied = migrate::run(&mut client, &migrations, scope).await?;
            println!(
                "applied {} migration(s); {} known",
                applied.len(),
                migrations.len()
            );
        }
        Command::Worker => {
            let config = Config::from_env()?;
            telemetry::init(config.log_format);
            run_worker(config).await?;
        }
        Command::Jwt {
            role,
            sub,
            ttl_secs,
        } => {
            let secret = std::env::var("JWT_SECRET").context("JWT_SECRET is required")?;
            println!(
                "{}",
                jwt::sign(
                    &jwt::claims(&role, sub.as_deref(), ttl_secs),
                    secret.as_bytes()
                )
            );
        }
        Command::Enqueue {
            kind,
            args,
            priority,
        } => {
            let url = std::env::var("DATABASE_URL").context("DATABASE_URL is required")?;
            let args: serde_json::Value =
                serde_json::from_str(&args).context("--args must be JSON")?;
            let store = Store::new(db::pool(&url, 1)?);
            let job = NewJob {
                priority,
                ..NewJob::new(kind, args)
            };
            match store.enqueue(&job).await? {
                Some(id) => println!("enqueued job {id}"),
                None => println!("not enqueued: a live job holds the same unique key"),
            }
        }
        Command::Ops(command) => {
            let url = std::env::var("DATABASE_URL")
                .context("DATABASE_URL is required (an operator role: see docs/runbooks.md)")?;
            println!(
                "{}",
                callsync::ops::run(&db::pool(&url, 1)?, command).await?
            );
        }
        Command::Reconcile { from, to } => {
            let url = std::env::var("DATABASE_URL").context("DATABASE_URL is required")?;
            let pool = db::pool(&url, 1)?;
            match jobs::callyzer_reconcile::start_run(&pool, from, to).await? {
                Some(id) => println!(
                    "started reconciliation run {id}; follow it in public.callyzer_sync_log"
                ),
                None => println!("not started: a reconciliation run is still going"),
            }
        }
        Command::Simulate(args) => {
            telemetry::init(telemetry::LogFormat::Pretty);
            let token = shutdown::on_signal().context("installing signal handlers")?;
            callsync::simulate::run(*args, token).await?;
        }
    }
    Ok(())
}

async fn run_worker(config: Config) -> anyhow::Result<()> {
    let token = shutdown::on_signal().context("installing signal handlers")?;
    listener::check_connection_mode(&config.database_url, config.listen).await?;
    let pool = db::pool(config.database_url.expose(), config.pool_size.get())?;
    let handlers = jobs::all(&config, &pool);
    let store = Store::new(pool);
    let worker = worker::Worker::new(store, handlers, worker::WorkerOptions::from_config(&config));
    let listener_state = config.listen.then(listener::ListenerState::default);
    let listening = if let Some(state) = listener_state.clone() {
        Some(tokio::spawn(listener::run(
            config.database_url.clone(),
            worker.wake_handle(),
            state,
            token.clone(),
        )))
    } else {
        tracing::warn!(
            "WORKER_LISTEN=false: polling only, every {:?}",
            config.poll_interval
        );
        None
    };
    let health = match config.health_addr {
        Some(addr) => Some(
            callsync::health::HealthServer::start(
                addr,
                config.database_url.expose(),
                worker.clone(),
                listener_state,
                config.poll_interval,
                token.clone(),
            )
            .await
            .with_context(|| format!("serving HEALTH_ADDR {addr}"))?,
        ),
        None => None,
    };
    worker.run(token).await;
    if let Some(health) = health {
        health.stop().await;
    }
    if let Some(l) = listening {
        let _ = l.await;
    }
    Ok(())
}
