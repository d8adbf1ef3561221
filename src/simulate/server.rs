//! The simulator's HTTP side, on one port:
//! - `POST …/call-log/history`: Callyzer's history API over the simulated calls
//!   (Bearer auth, `synced_from`/`synced_to`, `emp_numbers`, `call_types`,
//!   `page_no`/`page_size` ≤ 100, envelope `{message, result, total_records}`,
//!   optionally 1 request per 2 s with 429 and `Retry-After`);
//! - `POST …/SaveWebFormObjectData`: a BPMsoft sandbox answering as Creatio does;
//! - `GET /recordings/<id>.wav`: a short tone, so recordings play;
//! - `GET /sim/stats`, `GET /sim/crm-submissions`: what the simulator did;
//! - the console (`console/`) as static files and its `config.json`;
//! - only with `--local-login`, `/auth/v1/…`: a Supabase Auth (GoTrue)
//!   stand-in for the seed's demo users ([`super::auth`]). Local use only.
use super::auth::{LocalAuth, DEMO_PASSWORD, DEMO_USERS};
use super::world::{api_row, SimCall, World};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the simulator did, for `/sim/stats` and the log.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Stats {
    pub calls_generated: u64,
    pub deliveries_posted: u64,
    pub deliveries_dropped: u64,
    pub calls_dropped: u64,
    pub delivery_errors: u64,
    pub late_recordings: u64,
    pub api_requests: u64,
    pub api_rows_served: u64,
    pub api_rate_limited: u64,
    pub crm_submissions: u64,
    pub elevenlabs_posted: u64,
}

/// The calls Callyzer's cloud holds: the newest copy of each, in sync order.
#[derive(Default)]
pub struct CallStore {
    calls: Vec<SimCall>,
    by_id: HashMap<String, usize>,
}

impl CallStore {
    /// Stores `call`, replacing an older copy with the same id.
    pub fn put(&mut self, call: SimCall) {
        match self.by_id.get(&call.id) {
            Some(&i) => self.calls[i] = call,
            None => {
                self.by_id.insert(call.id.clone(), self.calls.len());
                self.calls.push(call);
            }
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

/// Configuration and state shared by the HTTP handlers and the generator.
pub struct Shared {
    pub world: World,
    pub tz: Tz,
    pub calls: Mutex<CallStore>,
    pub stats: Mutex<Stats>,
    pub crm_submissions: Mutex<Vec<Value>>,
    pub crm_fail_percent: u32,
    /// Bearer token the history API requires; `None`: any Bearer token.
    pub api_token: Option<String>,
    /// Enforce Callyzer's 1 request per 2 s.
    pub api_rate_limit: bool,
    pub last_api_request: Mutex<Option<Instant>>,
    /// The console folder, when served.
    pub console_dir: Option<PathBuf>,
    /// The PostgREST URL the console reads.
    pub rest_url: Option<String>,
    /// The anon key the console sends as `apikey` (public by design).
    pub anon_key: Option<String>,
    /// The sign-in stand-in, only with `--local-login`.
    pub auth: Option<LocalAuth>,
    /// Signalled when a live delivery is dropped (the demo's first
    /// reconciliation run waits for it).
    pub dropped: tokio::sync::Notify,
}

type AppState = Arc<Shared>;

/// The router: one fallback handler that dispatches on method and path, so the
/// history API answers under any base path (`/api/v2.1/…`, `/v2/…`, …).
pub fn router(shared: AppState) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(shared)
}

async fn dispatch(State(s): State<AppState>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), 4 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response(),
    };
    match (&method, path.as_str()) {
        (&Method::POST, p) if p.ends_with("/call-log/history") => history(&s, &headers, &body),
        (&Method::POST, p) if p.ends_with("/SaveWebFormObjectData") => bpmsoft(&s, &headers, &body),
        (&Method::OPTIONS, p) if p.ends_with("/SaveWebFormObjectData") => Response::builder()
            .status(StatusCode::OK)
            .header("access-control-allow-origin", "*")
            .header("access-control-allow-methods", "POST")
            .header("access-control-allow-headers", "Content-Type, Accept")
            .body(Body::empty())
            .unwrap_or_default(),
        (&Method::GET, p) if p.starts_with("/recordings/") => recording(),
        (&Method::GET, "/sim/stats") => {
            let stats = lock(&s.stats).clone();
            let stored = lock(&s.calls).len();
            axum::Json(json!({"stats": stats, "calls_stored": stored})).into_response()
        }
        (&Method::GET, "/sim/crm-submissions") => {
            axum::Json(Value::Array(lock(&s.crm_submissions).clone())).into_response()
        }
        (_, p) if p.starts_with("/auth/v1/") => match &s.auth {
            Some(auth) => auth.handle(&method, &p["/auth/v1".len()..], &query, &headers, &body),
            None => (StatusCode::NOT_FOUND, "local log-in is off").into_response(),
        },
        (&Method::GET, "/config.json") => config_json(&s),
        (&Method::GET, p) => static_file(&s, p),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// A poisoned lock only means a handler panicked mid-update; the counters are
/// still usable for a simulator.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn envelope(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"message": message, "result": [], "total_records": 0})),
    )
        .into_response()
}

fn history(s: &Shared, headers: &HeaderMap, body: &Bytes) -> Response {
    lock(&s.stats).api_requests += 1;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let authorized = match (&s.api_token, bearer) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(want), Some(given)) => {
            subtle::ConstantTimeEq::ct_eq(want.as_bytes(), given.as_bytes()).into()
        }
    };
    if !authorized {
        return envelope(StatusCode::UNAUTHORIZED, "Unauthorized: invalid token");
    }
    if s.api_rate_limit {
        let mut last = lock(&s.last_api_request);
        let now = Instant::now();
        if let Some(prev) = *last {
            if now.duration_since(prev) < Duration::from_secs(2) {
                lock(&s.stats).api_rate_limited += 1;
                let mut r = envelope(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
                r.headers_mut()
                    .insert("retry-after", header::HeaderValue::from_static("2"));
                return r;
            }
        }
        *last = Some(now);
    }
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return envelope(StatusCode::BAD_REQUEST, "Invalid JSON body"),
    };
    let int = |k: &str| req.get(k).and_then(Value::as_i64);
    let (from, to) = match (int("synced_from"), int("synced_to")) {
        (Some(f), Some(t)) => (f, t),
        _ => {
            return envelope(
                StatusCode::BAD_REQUEST,
                "synced_from and synced_to (or call_from and call_to) are required",
            )
        }
    };
    if to - from >= 180 * 24 * 3600 {
        return envelope(
            StatusCode::BAD_REQUEST,
            "the window must be shorter than 180 days",
        );
    }
    let page_no = int("page_no").unwrap_or(1).max(1);
    let page_size = int("page_size").unwrap_or(100);
    if !(1..=100).contains(&page_size) {
        return envelope(StatusCode::BAD_REQUEST, "page_size must be 1 to 100");
    }
    let strings = |k: &str| -> Option<Vec<String>> {
        req.get(k).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
    };
    let emp_filter: Option<Vec<usize>> = strings("emp_numbers").map(|nums| {
        s.world
            .advisors
            .iter()
            .enumerate()
            .filter(|(_, a)| nums.contains(&a.filter_number()))
            .map(|(i, _)| i)
            .collect()
    });
    let types = strings("call_types");
    let (from, to) = (secs(from), secs(to));
    let store = lock(&s.calls);
    let mut hits: Vec<&SimCall> = store
        .calls
        .iter()
        .filter(|c| c.synced_at >= from && c.synced_at <= to)
        .filter(|c| emp_filter.as_ref().map_or(true, |e| e.contains(&c.advisor)))
        .filter(|c| {
            types
                .as_ref()
                .map_or(true, |t| t.iter().any(|x| x == c.call_type))
        })
        .collect();
    hits.sort_by(|a, b| a.synced_at.cmp(&b.synced_at).then(a.id.cmp(&b.id)));
    let total = hits.len();
    let rows: Vec<Value> = hits
        .into_iter()
        .skip(usize::try_from((page_no - 1) * page_size).unwrap_or(usize::MAX))
        .take(usize::try_from(page_size).unwrap_or(100))
        .map(|c| api_row(&s.world, c, s.tz))
        .collect();
    drop(store);
    lock(&s.stats).api_rows_served += rows.len() as u64;
    axum::Json(json!({"message": "Success", "result": rows, "total_records": total}))
        .into_response()
}

fn secs(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

/// Creatio's `SaveWebFormObjectData` as reference bpmsoft.md §3–5 describes it.
fn bpmsoft(s: &Shared, headers: &HeaderMap, body: &Bytes) -> Response {
    let answer = |inner: String| {
        (
            StatusCode::OK,
            [("access-control-allow-origin", "*")],
            axum::Json(json!({ "SaveWebFormObjectDataResult": inner })),
        )
            .into_response()
    };
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "<html><body>Request Error: the body is not valid JSON</body></html>",
            )
                .into_response()
        }
    };
    let n = {
        let mut st = lock(&s.stats);
        st.crm_submissions += 1;
        st.crm_submissions
    };
    let referer = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    {
        let mut subs = lock(&s.crm_submissions);
        if subs.len() >= 1000 {
            subs.remove(0);
        }
        subs.push(json!({"received_at": Utc::now(), "referer": referer, "body": req}));
    }
    let form = req.get("formData");
    let fields_ok = form
        .and_then(|f| f.get("formFieldsData"))
        .is_some_and(Value::is_array);
    if !fields_ok {
        return answer(String::new()); // wrong wrapper: Creatio answers an empty result
    }
    let form_id_ok = form
        .and_then(|f| f.get("formId"))
        .and_then(Value::as_str)
        .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok());
    if !form_id_ok {
        return answer(
            "{resultMessage:\"Неизвестный идентификатор веб-формы\",resultCode:-1}".into(),
        );
    }
    let skip_referer = form
        .and_then(|f| f.pointer("/options/disableRefererPolicy"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if referer.is_none() && !skip_referer {
        return answer("{resultMessage:\"Запрос с недопустимого адреса\",resultCode:-1}".into());
    }
    if s.crm_fail_percent > 0 && (n * 37 % 100) < u64::from(s.crm_fail_percent) {
        return (StatusCode::SERVICE_UNAVAILABLE, "sandbox: simulated outage").into_response();
    }
    answer("{resultMessage:\"Данные успешно сохранены\",resultCode:0}".into())
}

/// A one-second 440 Hz tone, 8 kHz mono 8-bit WAV.
fn recording() -> Response {
    const RATE: u32 = 8000;
    let samples: Vec<u8> = (0..RATE)
        .map(|i| {
            let t = f64::from(i) / f64::from(RATE);
            (128.0 + 60.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as u8
        })
        .collect();
    let mut wav = Vec::with_capacity(44 + samples.len());
    let len = u32::try_from(samples.len()).unwrap_or(0);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&RATE.to_le_bytes());
    wav.extend_from_slice(&RATE.to_le_bytes()); // bytes per second
    wav.extend_from_slice(&1u16.to_le_bytes()); // block align
    wav.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&len.to_le_bytes());
    wav.extend_from_slice(&samples);
    ([(header::CONTENT_TYPE, "audio/wav")], wav).into_response()
}

/// What the console needs: where PostgREST and Auth are, and the key both
/// want. With `--local-login` Auth is the stand-in on this port (a relative
/// URL, so it works under any host name), and the demo accounts are listed.
fn config_json(s: &Shared) -> Response {
    let local = s.auth.is_some();
    let users: Vec<Value> = DEMO_USERS
        .iter()
        .filter(|_| local)
        .map(|u| json!({"email": u.email, "role": u.role, "label": u.label}))
        .collect();
    axum::Json(json!({
        "restUrl": s.rest_url,
        "authUrl": local.then_some("auth/v1"),
        "anonKey": s.anon_key,
        "localLogin": local,
        "demoUsers": users,
        "demoPassword": local.then_some(DEMO_PASSWORD),
    }))
    .into_response()
}

fn static_file(s: &Shared, path: &str) -> Response {
    let Some(dir) = &s.console_dir else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    // no way out of the folder: plain names only
    if rel
        .split('/')
        .any(|seg| seg.is_empty() || seg.starts_with('.'))
    {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let file = dir.join(rel);
    let mime = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    match std::fs::read(&file) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
