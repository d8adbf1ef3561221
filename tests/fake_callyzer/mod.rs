//! A fake Callyzer API (wiremock) that follows reference callyzer.md: `POST
//! /api/v2.1/call-log/history`, `Authorization: Bearer <token>`, a JSON body with
//! `synced_from`/`synced_to` (UNIX seconds, window under 180 days), `emp_numbers`
//! as `CC-NUMBER`, `page_no` (1-based) and `page_size` (at most 100); the
//! envelope `{"message": "Success", "total_records": n, "result": [rows]}`; 401
//! for a wrong token and 400 with a `message` for a bad request. Faults can be
//! scripted per page: 429 with Retry-After, 401, 403, 400, 5xx, a timeout (a
//! delayed answer), a malformed page. Every request is recorded with its
//! arrival time, so tests can check the rate limit. Rows are kept in the API's
//! order and as JSON text, and the rows of the filter being paged through are
//! kept between requests, so a page costs O(page), not a scan of every row
//! (the reconciliation benchmark pages through 100,000).
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const TOKEN: &str = "cz-api-token-test";
pub const HISTORY_PATH: &str = "/api/v2.1/call-log/history";

/// A scripted answer instead of the page.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with this `Retry-After` header value (none when `None`).
    RateLimit(Option<String>),
    /// Any status with a JSON `message`.
    Status(u16, &'static str),
    /// The page, but only after this delay (the client times out first).
    Delay(Duration),
    /// 200 with `result` an object instead of an array.
    Malformed,
    /// 200 cut off in the middle of the JSON.
    Truncated,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub page_no: i64,
    pub synced_from: i64,
    pub synced_to: i64,
    pub status: u16,
}

/// (synced_at as UNIX seconds, id, "CC-NUMBER" of the employee, API row as JSON text)
pub type StoredRow = (i64, String, String, Arc<str>);

#[derive(Default)]
pub struct State {
    /// sorted by synced_at and id (the API's order)
    pub calls: Mutex<Vec<StoredRow>>,
    /// The rows of the last filter asked for, so paging through it costs O(page)
    /// per request instead of a scan of every call (see [`Selection`]).
    pub selection: Mutex<Option<Selection>>,
    /// page_no -> faults answered in turn before the page itself
    pub faults: Mutex<HashMap<i64, VecDeque<Fault>>>,
    /// a fault for every request (e.g. a revoked token)
    pub always: Mutex<Option<Fault>>,
    pub seen: Mutex<Vec<Seen>>,
}

/// Which stored rows one filter (`synced_from`, `synced_to`, `emp_numbers`)
/// selects, in the API's order, each already serialized: a client pages through
/// one filter, so the first page pays the scan and every later page only slices.
/// [`FakeCallyzer::add`] drops it (the data changed).
pub struct Selection {
    from: i64,
    to: i64,
    emp_numbers: Vec<String>,
    rows: Vec<Arc<str>>,
}

pub struct FakeCallyzer {
    pub server: MockServer,
    pub state: Arc<State>,
}

struct Responder(Arc<State>);

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let at = Instant::now();
        let s = &self.0;
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let int = |k: &str| body.get(k).and_then(Value::as_i64);
        let page_no = int("page_no").unwrap_or(1);
        let (from, to) = (int("synced_from"), int("synced_to"));
        let answer = |status: u16, template: ResponseTemplate| {
            s.seen.lock().unwrap().push(Seen {
                at,
                page_no,
                synced_from: from.unwrap_or(0),
                synced_to: to.unwrap_or(0),
                status,
            });
            template
        };
        let bearer = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if bearer != format!("Bearer {TOKEN}") {
            return answer(
                401,
                ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthorized"})),
            );
        }
        let fault = s.always.lock().unwrap().clone().or_else(|| {
            s.faults
                .lock()
                .unwrap()
                .get_mut(&page_no)
                .and_then(VecDeque::pop_front)
        });
        let page_size = int("page_size").unwrap_or(0);
        let emp_numbers: Vec<String> = body
            .get("emp_numbers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let bad =
            |m: &str| ResponseTemplate::new(400).set_body_json(json!({"message": m, "result": []}));
        let (Some(from), Some(to)) = (from, to) else {
            return answer(
                400,
                bad("Either call_from/call_to or synced_from/synced_to is required"),
            );
        };
        if to < from || to - from >= 180 * 86_400 {
            return answer(400, bad("Date range must be less than 180 days"));
        }
        if !(1..=100).contains(&page_size) || page_no < 1 {
            return answer(400, bad("page_size must be between 1 and 100"));
        }
        if emp_numbers.iter().any(
            |n| !matches!(n.split_once('-'), Some((cc, num)) if !cc.is_empty() && !num.is_empty()),
        ) {
            return answer(400, bad("emp_numbers must be CC-NUMBER"));
        }

        // rows are kept sorted by (synced_at, id); the filter's rows are found
        // once (binary search on synced_at, then the employee filter) and kept
        let page = {
            let mut emp_sorted = emp_numbers.clone();
            emp_sorted.sort();
            emp_sorted.dedup();
            let mut selection = s.selection.lock().unwrap();
            let fresh = matches!(&*selection,
                Some(sel) if sel.from == from && sel.to == to && sel.emp_numbers == emp_sorted);
            if !fresh {
                let calls = s.calls.lock().unwrap();
                let lo = calls.partition_point(|(synced, ..)| *synced < from);
                let hi = calls.partition_point(|(synced, ..)| *synced <= to);
                let rows = calls[lo..hi.max(lo)]
                    .iter()
                    .filter(|(_, _, key, _)| emp_sorted.binary_search(key).is_ok())
                    .map(|(.., text)| text.clone())
                    .collect();
                *selection = Some(Selection {
                    from,
                    to,
                    emp_numbers: emp_sorted,
                    rows,
                });
            }
            let rows = &selection.as_ref().unwrap().rows;
            let start = ((page_no - 1) * page_size) as usize;
            let end = (start + page_size as usize).min(rows.len());
            let slice: &[Arc<str>] = rows.get(start..end).unwrap_or(&[]);
            // the envelope of reference §3.2, written around the stored rows
            let mut body = format!(
                r#"{{"message":"Success","total_records":{},"result":["#,
                rows.len()
            );
            for (i, row) in slice.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(row);
            }
            body.push_str("]}");
            body
        };
        match fault {
            None => answer(
                200,
                ResponseTemplate::new(200).set_body_raw(page, "application/json"),
            ),
            Some(Fault::RateLimit(after)) => {
                let mut t = ResponseTemplate::new(429)
                    .set_body_json(json!({"message": "Too Many Requests"}));
                if let Some(a) = after {
                    t = t.insert_header("Retry-After", a.as_str());
                }
                answer(429, t)
            }
            Some(Fault::Status(code, m)) => answer(
                code,
                ResponseTemplate::new(code).set_body_json(json!({"message": m})),
            ),
            Some(Fault::Delay(d)) => answer(
                200,
                ResponseTemplate::new(200)
                    .set_body_raw(page, "application/json")
                    .set_delay(d),
            ),
            Some(Fault::Malformed) => answer(
                200,
                ResponseTemplate::new(200)
                    .set_body_json(json!({"message": "Success", "result": {"id": "x"}})),
            ),
            Some(Fault::Truncated) => answer(
                200,
                ResponseTemplate::new(200).set_body_raw(
                    r#"{"message":"Success","result":[{"id":"#,
                    "application/json",
                ),
            ),
        }
    }
}

impl FakeCallyzer {
    pub async fn start() -> FakeCallyzer {
        let server = MockServer::start().await;
        let state = Arc::new(State::default());
        Mock::given(wiremock::matchers::method("POST"))
            .and(wiremock::matchers::path(HISTORY_PATH))
            .respond_with(Responder(state.clone()))
            .mount(&server)
            .await;
        FakeCallyzer { server, state }
    }

    /// `CALLYZER_API_BASE_URL` for this fake (the version is added by the client settings).
    pub fn base_url(&self) -> String {
        format!("{}/api", self.server.uri())
    }

    /// Adds API rows (each needs `synced_at` as `YYYY-MM-DD HH:MM:SS +00`).
    pub fn add(&self, rows: &[Value]) {
        let mut added: Vec<StoredRow> = rows
            .iter()
            .map(|row| {
                let synced = chrono::NaiveDateTime::parse_from_str(
                    &row["synced_at"].as_str().unwrap()[..19],
                    "%Y-%m-%d %H:%M:%S",
                )
                .unwrap()
                .and_utc()
                .timestamp();
                let key = format!(
                    "{}-{}",
                    row["emp_country_code"].as_str().unwrap_or(""),
                    row["emp_number"].as_str().unwrap_or("")
                );
                let id = row["id"].as_str().unwrap_or("").to_string();
                (synced, id, key, Arc::from(row.to_string()))
            })
            .collect();
        let mut calls = self.state.calls.lock().unwrap();
        calls.append(&mut added);
        calls.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        // after the rows' lock is let go: the responder takes the two the other way round
        drop(calls);
        *self.state.selection.lock().unwrap() = None;
    }

    /// Answers `page_no` with `faults` in turn before serving it.
    pub fn fail_page(&self, page_no: i64, faults: Vec<Fault>) {
        self.state
            .faults
            .lock()
            .unwrap()
            .entry(page_no)
            .or_default()
            .extend(faults);
    }

    pub fn fail_always(&self, fault: Option<Fault>) {
        *self.state.always.lock().unwrap() = fault;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

/// One API row (reference §3.2) for employee `emp` (`(code, cc, number)`), synced
/// `synced_ago_s` seconds before `now`.
pub fn api_row(
    id: &str,
    emp: (&str, &str, &str),
    client_number: &str,
    now: chrono::DateTime<chrono::Utc>,
    synced_ago_s: i64,
) -> Value {
    let synced = now - chrono::Duration::seconds(synced_ago_s);
    let called = synced - chrono::Duration::seconds(120);
    let stamp = synced.format("%Y-%m-%d %H:%M:%S +00").to_string();
    let call_type = ["Incoming", "Outgoing", "Missed", "Rejected"][id.len() % 4];
    json!({
        "id": id,
        "emp_name": format!("Employee {}", emp.0), "emp_code": emp.0,
        "emp_country_code": emp.1, "emp_number": emp.2, "emp_tags": ["sales"],
        "client_name": "", "client_country_code": "48", "client_number": client_number,
        "duration": 60, "call_type": call_type,
        "call_date": called.format("%Y-%m-%d").to_string(),
        "call_time": called.format("%H:%M:%S").to_string(),
        "note": "", "call_recording_url": null,
        "crm_status": "", "reminder_date": "", "reminder_time": "",
        "synced_at": stamp, "modified_at": stamp, "lead_id": ""
    })
}

/// The same rows as a webhook delivery: an array of employees with `call_logs`
/// (reference §5; the employee fields move up, the zone of the stamps stays).
pub fn webhook_body(rows: &[Value]) -> Value {
    let mut employees: Vec<(String, Value)> = Vec::new();
    for row in rows {
        let code = row["emp_code"].as_str().unwrap().to_string();
        let mut log = row.clone();
        let o = log.as_object_mut().unwrap();
        for k in [
            "emp_name",
            "emp_code",
            "emp_country_code",
            "emp_number",
            "emp_tags",
        ] {
            o.remove(k);
        }
        match employees.iter_mut().find(|(c, _)| *c == code) {
            Some((_, e)) => e["call_logs"].as_array_mut().unwrap().push(log),
            None => employees.push((
                code,
                json!({
                    "emp_name": row["emp_name"], "emp_code": row["emp_code"],
                    "emp_country_code": row["emp_country_code"], "emp_number": row["emp_number"],
                    "emp_tags": row["emp_tags"], "call_logs": [log]
                }),
            )),
        }
    }
    Value::Array(employees.into_iter().map(|(_, e)| e).collect())
}
