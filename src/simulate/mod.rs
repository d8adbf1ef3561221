//! `callsync simulate`: a stand-in for Callyzer (and BPMsoft) for the local demo
//! and for load. It generates advisors, leads and their calls, posts them to
//! the `callyzer-webhook` function as Callyzer does (dropping a chosen share of
//! deliveries), sends the late-recording copy of a call later with a newer
//! `modified_at`, serves the history API so reconciliation can recover what was
//! dropped, answers CRM dispatches like BPMsoft, optionally posts signed
//! ElevenLabs post-call events, and serves the operator console (with, for
//! the local demo only, a Supabase Auth stand-in to sign in to it).
//!
//! Layout: [`world`] generates (pure, seeded); [`server`] answers HTTP;
//! [`auth`] is the sign-in stand-in; [`populate`] writes advisors and leads to
//! a local database and starts the demo's first reconciliation run; this file
//! parses the options and runs the delivery loop.
pub mod auth;
pub mod populate;
pub mod server;
pub mod world;

use chrono::{Duration as ChronoDuration, Utc};
use chrono_tz::Tz;
use serde_json::json;
use server::{CallStore, Shared, Stats};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use world::{delivery, CallFactory, SimCall, World};

/// Options of `callsync simulate` (every one has a default that suits `scripts/dev.sh`).
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Edge Functions base URL; deliveries go to `<url>/callyzer-webhook`.
    #[arg(long, env = "FUNCTIONS_URL")]
    pub functions_url: Option<String>,
    /// The webhook's shared token (sent as `?token=`).
    #[arg(long, env = "CALLYZER_WEBHOOK_TOKEN", hide_env_values = true)]
    pub webhook_token: Option<String>,
    /// Live calls per minute.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Calls per delivery (raise it with the rate for load).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Share of live deliveries (0 to 1) that are never posted, as if lost on
    /// the way. Spread evenly from a random start, so the first loss comes
    /// within 1/drop deliveries.
    #[arg(long, default_value_t = 0.0)]
    pub drop: f64,
    /// Seconds after the first dropped delivery to start one reconciliation
    /// run through DATABASE_URL (0: never; pg_cron's schedule does it). The
    /// demo's newcomer then sees lost webhooks recovered in the first minute,
    /// not at pg_cron's next full minute or later.
    #[arg(long, default_value_t = 0)]
    pub reconcile_after_drop_secs: u64,
    /// Calls spread over the last 7 days, delivered at start (in deliveries of 50).
    #[arg(long, default_value_t = 0)]
    pub history: usize,
    /// Stop after this many live calls (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Seconds until a late recording's second delivery (a random part is added).
    #[arg(long, default_value_t = 20)]
    pub recording_delay_secs: u64,
    /// Share of calls (percent) to numbers no lead has.
    #[arg(long, default_value_t = 30)]
    pub unknown_percent: u32,
    /// Address of the HTTP side (history API, BPMsoft sandbox, console).
    #[arg(long, default_value = "127.0.0.1:54323")]
    pub listen: String,
    /// Bearer token the history API requires (unset: any Bearer token).
    #[arg(long, env = "CALLYZER_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Answer 429 with Retry-After to a second history request within 2 s, as Callyzer does.
    #[arg(long)]
    pub api_rate_limit: bool,
    /// Percent of CRM dispatches the BPMsoft sandbox answers with 503.
    #[arg(long, default_value_t = 0)]
    pub crm_fail_percent: u32,
    /// Post a signed ElevenLabs post-call event this often, seconds (0: never).
    #[arg(long, default_value_t = 0)]
    pub elevenlabs_every_secs: u64,
    /// The ElevenLabs webhook secret (signature `t=…,v0=…`).
    #[arg(long, env = "ELEVENLABS_WEBHOOK_SECRET", hide_env_values = true)]
    pub elevenlabs_secret: Option<String>,
    /// Write the advisors and leads into this database (the local stack's owner URL).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Do not write advisors and leads to the database.
    #[arg(long)]
    pub no_populate: bool,
    /// Generated advisors besides the seed data's three.
    #[arg(long, default_value_t = 6)]
    pub advisors: usize,
    /// Generated leads besides the seed data's three.
    #[arg(long, default_value_t = 60)]
    pub leads: usize,
    /// Seed of the advisors and leads (the same seed gives the same people).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The Callyzer account's time zone (call_date, call_time).
    #[arg(long, default_value = "Europe/Warsaw")]
    pub time_zone: String,
    /// Folder of the console's static files (served at /).
    #[arg(long, default_value = "console")]
    pub console_dir: PathBuf,
    /// PostgREST URL the console reads (written into /config.json).
    #[arg(long, env = "POSTGREST_URL")]
    pub rest_url: Option<String>,
    /// The anon key: written into /config.json (the console sends it as
    /// `apikey`) and required by the local sign-in.
    #[arg(long, env = "ANON_KEY", hide_env_values = true)]
    pub anon_key: Option<String>,
    /// Serve a Supabase Auth stand-in at /auth/v1 that signs in the seed's demo
    /// users with the public demo password, minting tokens with JWT_SECRET.
    /// Local stack only; never in production.
    #[arg(long)]
    pub local_login: bool,
}

/// Everything that can stop the simulator from starting.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("{0}")]
    Config(String),
    #[error("writing advisors and leads: {0}")]
    Populate(#[from] tokio_postgres::Error),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// Runs until `stop` is cancelled or `--count` live calls were made.
///
/// # Errors
/// Bad options, a database that refuses the demo data, a port in use.
pub async fn run(args: SimulateArgs, stop: CancellationToken) -> Result<(), SimulateError> {
    let tz: Tz = args
        .time_zone
        .parse()
        .map_err(|_| SimulateError::Config(format!("unknown time zone {:?}", args.time_zone)))?;
    if !(0.0..=1.0).contains(&args.drop) {
        return Err(SimulateError::Config(
            "--drop must be between 0 and 1".into(),
        ));
    }
    if args.rate <= 0.0 || args.batch == 0 {
        return Err(SimulateError::Config(
            "--rate and --batch must be positive".into(),
        ));
    }
    let jwt_secret = if args.local_login {
        Some(
            std::env::var("JWT_SECRET")
                .map_err(|_| SimulateError::Config("--local-login needs JWT_SECRET".into()))?,
        )
    } else {
        None
    };
    if args.reconcile_after_drop_secs > 0 && args.database_url.is_none() {
        return Err(SimulateError::Config(
            "--reconcile-after-drop-secs needs DATABASE_URL".into(),
        ));
    }
    let world = World::generate(args.seed, args.advisors, args.leads);
    if let (Some(url), false) = (&args.database_url, args.no_populate) {
        let (a, l) = populate::populate(url, &world).await?;
        tracing::info!(
            advisors = world.advisors.len(),
            leads = world.leads.len(),
            added_advisors = a,
            added_leads = l,
            "demo advisors and leads are in the database"
        );
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|source| SimulateError::Listen {
            addr: args.listen.clone(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SimulateError::Listen {
            addr: args.listen.clone(),
            source,
        })?;
    let base = format!("http://{addr}");
    let console_dir = args
        .console_dir
        .join("index.html")
        .is_file()
        .then(|| args.console_dir.clone());
    let shared = Arc::new(Shared {
        world,
        tz,
        calls: Mutex::new(CallStore::default()),
        stats: Mutex::new(Stats::default()),
        crm_submissions: Mutex::new(Vec::new()),
        crm_fail_percent: args.crm_fail_percent,
        api_token: args.api_token.clone(),
        api_rate_limit: args.api_rate_limit,
        last_api_request: Mutex::new(None),
        console_dir: console_dir.clone(),
        rest_url: args.rest_url.clone(),
        anon_key: args.anon_key.clone(),
        auth: jwt_secret.map(|secret| {
            auth::LocalAuth::new(secret, args.anon_key.clone(), format!("{base}/auth/v1"))
        }),
        dropped: tokio::sync::Notify::new(),
    });
    let server_stop = stop.clone();
    let app = server::router(shared.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { server_stop.cancelled().await })
            .await;
    });
    // One line a newcomer (and dev.sh) can read.
    println!("simulator listening on {base}");
    println!("  Callyzer history API  {base}/api/v2.1/call-log/history");
    println!("  BPMsoft sandbox       {base}/0/ServiceModel/GeneratedObjectWebFormService.svc/SaveWebFormObjectData");
    if console_dir.is_some() {
        println!("  console               {base}/");
    }
    if args.local_login {
        println!("  sign-in (local only)  {base}/auth/v1/token");
    }

    let webhook = match (&args.functions_url, &args.webhook_token) {
        (Some(f), Some(t)) => Some(format!(
            "{}/callyzer-webhook?token={}",
            f.trim_end_matches('/'),
            url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
        )),
        _ => {
            tracing::warn!("FUNCTIONS_URL or CALLYZER_WEBHOOK_TOKEN unset: calls are generated and served by the history API only");
            None
        }
    };
    let mut sim = Simulation {
        shared: shared.clone(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| SimulateError::Config(e.to_string()))?,
        webhook,
        factory: {
            let run_id = format!("{:x}", Utc::now().timestamp_millis());
            let mut f = CallFactory::new(
                args.seed ^ Utc::now().timestamp_millis().unsigned_abs(),
                &run_id,
                &base,
            );
            f.unknown_percent = args.unknown_percent.min(100);
            f
        },
        drop_credit: fastrand::f64(),
        rng: fastrand::Rng::new(),
        drop: args.drop,
        late: Vec::new(),
        base: base.clone(),
    };
    if let Some(f) = &args.functions_url {
        wait_for(&sim.http, f, &stop).await;
    }
    sim.history(args.history).await;
    let live = sim.live(&args, &stop);
    let elevenlabs = elevenlabs_loop(&args, &shared, &stop);
    let reconcile = reconcile_after_drop(&args, &shared, &stop);
    tokio::join!(live, elevenlabs, reconcile);
    stop.cancel();
    let _ = server.await;
    let stats = lock(&shared.stats).clone();
    tracing::info!(?stats, "simulator stopped");
    Ok(())
}

/// Waits (up to a minute) until the functions answer, so the first
/// deliveries of a freshly started stack are not refused.
async fn wait_for(http: &reqwest::Client, functions_url: &str, stop: &CancellationToken) {
    let url = format!("{}/", functions_url.trim_end_matches('/'));
    for _ in 0..120 {
        if matches!(http.get(&url).send().await, Ok(r) if r.status().is_success()) {
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    tracing::warn!(%url, "the functions did not answer within a minute; posting anyway");
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Simulation {
    shared: Arc<Shared>,
    http: reqwest::Client,
    webhook: Option<String>,
    factory: CallFactory,
    rng: fastrand::Rng,
    drop: f64,
    /// Grows by `drop` per delivery; a delivery is dropped each time it passes 1.
    drop_credit: f64,
    /// Calls whose recording is still to come: (due, call).
    late: Vec<(chrono::DateTime<Utc>, SimCall)>,
    base: String,
}

impl Simulation {
    /// `n` calls over the last 7 days, synced when they ended, delivered now.
    async fn history(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let now = Utc::now();
        let mut calls: Vec<SimCall> = (0..n)
            .map(|_| {
                let ago = ChronoDuration::seconds(
                    i64::try_from(self.factory.jitter(7 * 24 * 3600)).unwrap_or(0) + 60,
                );
                let ended = now - ago;
                let mut c = self.factory.call(&self.shared.world, ended, ended);
                if c.late_recording {
                    c = c.with_recording(&self.base, ended + ChronoDuration::seconds(30));
                }
                c
            })
            .collect();
        calls.sort_by_key(|c| c.synced_at);
        // history is never dropped: reconciliation looks back minutes, not days
        let drop = std::mem::replace(&mut self.drop, 0.0);
        for chunk in calls.chunks(50) {
            self.deliver(chunk.to_vec()).await;
        }
        self.drop = drop;
        tracing::info!(calls = n, "history delivered");
    }

    /// Live calls at `--rate` per minute until stopped or `--count` reached.
    async fn live(&mut self, args: &SimulateArgs, stop: &CancellationToken) {
        let every = Duration::from_secs_f64(60.0 * args.batch as f64 / args.rate);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut made = 0u64;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = Utc::now();
            let mut batch = Vec::with_capacity(args.batch);
            for _ in 0..args.batch {
                if args.count > 0 && made >= args.count {
                    break;
                }
                // most calls sync at once; a few come from a handset that was offline for hours
                let ended = if self.rng.u32(..100) < 5 {
                    now - ChronoDuration::minutes(i64::from(self.rng.u32(30..360)))
                } else {
                    now
                };
                let call = self.factory.call(&self.shared.world, ended, now);
                if call.late_recording {
                    let delay = args.recording_delay_secs
                        + self.factory.jitter(args.recording_delay_secs + 1);
                    let due = now + ChronoDuration::seconds(i64::try_from(delay).unwrap_or(0));
                    self.late.push((due, call.clone()));
                }
                batch.push(call);
                made += 1;
            }
            // late recordings that are due go out as a newer copy of the same call
            let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.late)
                .into_iter()
                .partition(|(at, _)| *at <= now);
            self.late = waiting;
            if !due.is_empty() {
                lock(&self.shared.stats).late_recordings += due.len() as u64;
            }
            batch.extend(
                due.into_iter()
                    .map(|(_, c)| c.with_recording(&self.base, now)),
            );
            if !batch.is_empty() {
                self.deliver(batch).await;
            }
            if args.count > 0 && made >= args.count && self.late.is_empty() {
                return;
            }
        }
    }

    /// Stores the calls in the "cloud" (the history API sees them) and posts
    /// them as one delivery, unless this delivery is dropped.
    async fn deliver(&mut self, calls: Vec<SimCall>) {
        {
            let mut store = lock(&self.shared.calls);
            let mut stats = lock(&self.shared.stats);
            for c in &calls {
                if !store.contains(&c.id) {
                    stats.calls_generated += 1;
                }
                store.put(c.clone());
            }
        }
        let Some(url) = &self.webhook else { return };
        // evenly spread rather than a coin per delivery: a coin can go a minute
        // without a loss, and the demo promises a recovered one in its first minute
        self.drop_credit += self.drop;
        if self.drop_credit >= 1.0 {
            self.drop_credit -= 1.0;
            {
                let mut stats = lock(&self.shared.stats);
                stats.deliveries_dropped += 1;
                stats.calls_dropped += calls.len() as u64;
            }
            self.shared.dropped.notify_one();
            tracing::info!(calls = calls.len(), "delivery dropped (--drop)");
            return;
        }
        let body = delivery(&self.shared.world, &calls, self.shared.tz);
        let outcome = self.http.post(url).json(&body).send().await;
        let mut stats = lock(&self.shared.stats);
        match outcome {
            Ok(r) if r.status().is_success() => {
                stats.deliveries_posted += 1;
                tracing::info!(calls = calls.len(), first = %calls.first().map(describe).unwrap_or_default(), "delivery posted");
            }
            Ok(r) => {
                stats.delivery_errors += 1;
                tracing::warn!(status = %r.status(), "the webhook refused a delivery");
            }
            Err(e) => {
                stats.delivery_errors += 1;
                tracing::warn!(error = %e, "delivery failed");
            }
        }
    }
}

fn describe(c: &SimCall) -> String {
    format!(
        "{} {} {}s{}",
        c.call_type,
        if c.known_client {
            "lead"
        } else {
            "unknown number"
        },
        c.duration_s,
        if c.recording_url.is_empty() {
            ""
        } else {
            " +recording"
        }
    )
}

/// Starts one reconciliation run `--reconcile-after-drop-secs` after the first
/// dropped delivery, as an operator's "run now" would.
async fn reconcile_after_drop(args: &SimulateArgs, shared: &Arc<Shared>, stop: &CancellationToken) {
    let (Some(url), secs @ 1..) = (&args.database_url, args.reconcile_after_drop_secs) else {
        return;
    };
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = shared.dropped.notified() => {}
    }
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
    }
    match populate::start_reconciliation(url).await {
        Ok(Some(run)) => tracing::info!(
            run,
            "reconciliation run started to recover the dropped deliveries"
        ),
        Ok(None) => tracing::info!(
            "a reconciliation run is already going; it recovers the dropped deliveries"
        ),
        Err(e) => tracing::warn!(error = %e, "could not start a reconciliation run"),
    }
}

/// Signed ElevenLabs post-call events (reference example shape), every `--elevenlabs-every-secs`.
async fn elevenlabs_loop(args: &SimulateArgs, shared: &Arc<Shared>, stop: &CancellationToken) {
    let (Some(functions), Some(secret)) = (&args.functions_url, &args.elevenlabs_secret) else {
        return;
    };
    if args.elevenlabs_every_secs == 0 {
        return;
    }
    let url = format!("{}/elevenlabs-webhook", functions.trim_end_matches('/'));
    let http = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_secs(args.elevenlabs_every_secs));
    let mut n = 0u64;
    let mut rng = fastrand::Rng::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        n += 1;
        let lead = &shared.world.leads[rng.usize(..shared.world.leads.len())];
        let now = Utc::now().timestamp();
        let phone = format!("+{}{}", lead.handset.0, lead.handset.1);
        let body = json!({
            "type": "post_call_transcription",
            "event_timestamp": now,
            "data": {
                "agent_id": "agent_sim_demo",
                "conversation_id": format!("conv_sim_{now}_{n}"),
                "status": "done",
                "transcript": [
                    {"role": "agent", "message": "Dzień dobry! W czym mogę pomóc?", "time_in_call_secs": 0},
                    {"role": "user", "message": "Chciałbym zapisać się na kurs programowania.", "time_in_call_secs": 4},
                    {"role": "agent", "message": "Oczywiście, doradca oddzwoni dziś po 18:00.", "time_in_call_secs": 9}
                ],
                "metadata": {"phone_call": {"type": "sip_trunking", "direction": "inbound",
                    "agent_number": "+48220000000", "external_number": phone}},
                "analysis": {
                    "call_successful": "success",
                    "transcript_summary": "Klient chce zapisać się na kurs programowania; prosi o telefon po 18:00.",
                    "data_collection_results": {"client_name": {"data_collection_id": "client_name", "value": lead.name}}
                }
            }
        })
        .to_string();
        let mac = crate::jwt::hmac_sha256(secret.as_bytes(), format!("{now}.{body}").as_bytes());
        let res = http
            .post(&url)
            .header("content-type", "application/json")
            .header(
                "elevenlabs-signature",
                format!("t={now},v0={}", hex::encode(mac)),
            )
            .body(body)
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => lock(&shared.stats).elevenlabs_posted += 1,
            Ok(r) => {
                tracing::warn!(status = %r.status(), "the ElevenLabs webhook refused an event")
            }
            Err(e) => tracing::warn!(error = %e, "ElevenLabs event failed"),
        }
    }
}
