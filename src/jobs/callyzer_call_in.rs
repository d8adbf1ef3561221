//! The parsed calls as the apply statement takes them: rows of the composite
//! type `callsync.callyzer_call_in`, sent in Postgres' binary format, and the
//! one statement that applies them (`callsync.callyzer_apply_batch`), for one
//! source ([`apply_calls`]) or several ([`ApplyBatch`]). A JSON
//! document of the same calls cost the worker its construction and Postgres a
//! parse of about 1 KB per call before any rule ran.
//! Not here: what the rules are (SQL), which calls are batched together
//! (`callyzer_apply_batcher`).
use crate::db::DbError;
use crate::domain::call_record::{CallRecord, CallyzerTimestamp, RecordProblem};
use chrono::NaiveDateTime;
use deadpool_postgres::GenericClient;
use postgres_types::ToSql;
use serde_json::Value;

const APPLY_BATCH: &str = include_str!("../../sql/queries/call_apply_batch.sql");

/// One call, borrowed from its [`CallRecord`].
#[derive(ToSql)]
#[postgres(name = "callyzer_call_in")]
pub struct CallIn<'a> {
    id: &'a str,
    event_id: Option<i64>,
    emp_code: Option<&'a str>,
    emp_name: Option<&'a str>,
    emp_country_code: Option<&'a str>,
    emp_number: Option<&'a str>,
    emp_e164: Option<&'a str>,
    emp_tags: &'a [String],
    client_name: Option<&'a str>,
    client_country_code: Option<&'a str>,
    client_number: Option<&'a str>,
    client_e164: Option<&'a str>,
    duration_s: i32,
    call_type: &'a str,
    call_date: String,
    call_time: String,
    note: Option<&'a str>,
    recording_url: Option<&'a str>,
    crm_status: Option<&'a str>,
    synced_raw: Option<&'a str>,
    synced_local: Option<NaiveDateTime>,
    synced_offset_s: Option<i32>,
    modified_raw: Option<&'a str>,
    modified_local: Option<NaiveDateTime>,
    modified_offset_s: Option<i32>,
    raw: &'a Value,
}

/// Numbers and names stay out of logs.
impl std::fmt::Debug for CallIn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallIn")
            .field("id", &self.id)
            .field("event_id", &self.event_id)
            .finish_non_exhaustive()
    }
}

impl<'a> CallIn<'a> {
    /// The row for `r`, which came from stored delivery `event_id` (`None`:
    /// from Callyzer's API).
    pub fn new(r: &'a CallRecord, event_id: Option<i64>) -> Self {
        let raw = |t: &'a Option<CallyzerTimestamp>| t.as_ref().map(|t| t.raw.as_str());
        let local = |t: &Option<CallyzerTimestamp>| t.as_ref().map(|t| t.local);
        let offset = |t: &Option<CallyzerTimestamp>| t.as_ref().and_then(|t| t.offset_s);
        CallIn {
            id: &r.id,
            event_id,
            emp_code: r.emp_code.as_deref(),
            emp_name: r.emp_name.as_deref(),
            emp_country_code: r.emp_country_code.as_deref(),
            emp_number: r.emp_number.as_deref(),
            emp_e164: r.emp_phone.as_ref().map(|p| p.as_str()),
            emp_tags: &r.emp_tags,
            client_name: r.client_name.as_deref(),
            client_country_code: r.client_country_code.as_deref(),
            client_number: r.client_number.as_deref(),
            client_e164: r.client_phone.as_ref().map(|p| p.as_str()),
            duration_s: r.duration_s,
            call_type: r.call_type.as_str(),
            call_date: r.call_date.format("%Y-%m-%d").to_string(),
            call_time: r.call_time.format("%H:%M:%S").to_string(),
            note: r.note.as_deref(),
            recording_url: r.recording_url.as_deref(),
            crm_status: r.crm_status.as_deref(),
            synced_raw: raw(&r.synced_at),
            synced_local: local(&r.synced_at),
            synced_offset_s: offset(&r.synced_at),
            modified_raw: raw(&r.modified_at),
            modified_local: local(&r.modified_at),
            modified_offset_s: offset(&r.modified_at),
            raw: &r.raw,
        }
    }
}

/// The calls of one or more sources, ready for one statement.
#[derive(Default)]
pub struct ApplyBatch<'a> {
    calls: Vec<CallIn<'a>>,
    event_ids: Vec<Option<i64>>,
    problems: Vec<Value>,
}

impl<'a> ApplyBatch<'a> {
    /// Adds the calls and the parser's problems of one source: a stored
    /// delivery (`Some(event id)`, marked processed by the statement) or
    /// Callyzer's API (`None`: the problems are counted, nothing is marked).
    pub fn add(
        &mut self,
        event_id: Option<i64>,
        records: &'a [CallRecord],
        problems: &[RecordProblem],
    ) {
        self.calls
            .extend(records.iter().map(|r| CallIn::new(r, event_id)));
        self.event_ids.push(event_id);
        self.problems
            .push(serde_json::to_value(problems).unwrap_or(Value::Array(Vec::new())));
    }

    /// Applies everything added in one statement, with calls tagged as coming
    /// from `source`, and returns the database's summary
    /// (`received`, `inserted`, `updated`, `unchanged`, `matched`,
    /// `ambiguous`, `unmatched`, `rejected`).
    ///
    /// # Errors
    /// [`DbError`] when the statement fails; nothing was applied then.
    pub async fn apply(
        &self,
        client: &impl GenericClient,
        source: CallSource,
    ) -> Result<Value, DbError> {
        let stmt = client.prepare_cached(APPLY_BATCH).await?;
        let row = client
            .query_one(
                &stmt,
                &[
                    &self.calls,
                    &self.event_ids,
                    &self.problems,
                    &source.as_str(),
                ],
            )
            .await?;
        Ok(row.try_get(0)?)
    }
}

/// Where a batch of calls came from (`callsync.call.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallSource {
    /// A webhook delivery.
    Webhook,
    /// The reconciliation poll of Callyzer's API.
    Api,
}

impl CallSource {
    fn as_str(self) -> &'static str {
        match self {
            CallSource::Webhook => "webhook",
            CallSource::Api => "api",
        }
    }
}

/// Applies parsed calls in one statement and returns the database's summary
/// (`received`, `inserted`, `updated`, `unchanged`, `matched`, `ambiguous`,
/// `unmatched`, `rejected`). With `event_id`, that event is marked processed
/// with `problems` kept on it. Reconciliation can call this with `None`.
///
/// # Errors
/// [`crate::db::DbError`] when the statement fails; nothing was applied then.
pub async fn apply_calls(
    client: &impl GenericClient,
    event_id: Option<i64>,
    records: &[CallRecord],
    problems: &[RecordProblem],
    source: CallSource,
) -> Result<serde_json::Value, crate::db::DbError> {
    let mut batch = ApplyBatch::default();
    batch.add(event_id, records, problems);
    batch.apply(client, source).await
}
