//! `crm_dispatch`: sends one analysed event to BPMsoft as a landing form and
//! records every attempt in `crm_dispatch`. Owns what the CRM receives (fields,
//! the Commentary line, lengths, the record `Id`) and the dispatch policy
//! (disabled, duplicate, no contact, dry run); the HTTP exchange and its
//! classification live in `clients::bpmsoft`.
//!
//! Order of decisions, each recorded as one row:
//! `EXTERNAL_CRM_ENABLED` false → `skipped_disabled`; a non-forced success exists
//! and this job is not forced → `skipped_duplicate`; no phone and no e-mail and
//! `CRM_NO_CONTACT_POLICY=skip` → `skipped_no_contact`; `EXTERNAL_CRM_DRY_RUN` →
//! `dry_run` (the payload stored, nothing sent); otherwise the request:
//! `success`, or `error` (retried with backoff when the client says retryable:
//! timeouts, 408, 429, 5xx; otherwise the job is discarded at once).
//!
//! Lengths sent, in characters (BPMsoft's column sizes are not documented;
//! these are Creatio's usual text sizes, to confirm with the CRM admin —
//! reference bpmsoft.md §10): Commentary 4000 (the `IDs:` tail is never cut),
//! UsrQualificationComment 500, UsrQualificationTopic, UsrIntent, UsrTSLeadStatus,
//! UsrAgentId, UsrConversationId, FullName, Email 250, Phone 50. Cut text ends in `…`.
//!
//! Record `Id`: UUIDv5 in the namespace [`record_namespace`] of
//! `elevenlabs:<conversation id>` (or `callsync-event:<event id>` without one), so
//! a repeat of the same conversation carries the same `Id` and BPMsoft should
//! refuse it on the primary key. A forced resend sends the same `Id` too.
use super::elevenlabs_crm_settings::{CrmSettings, NoContactPolicy};
use super::{Handler, JobError};
use crate::clients::bpmsoft::{BpmsoftClient, LandingForm, Outcome};
use crate::domain::call_analysis::cap;
use crate::domain::contact::Contact;
use crate::queue::ClaimedJob;
use deadpool_postgres::Pool;
use futures_util::future::BoxFuture;
use serde_json::Value;
use uuid::Uuid;

/// The kind name.
pub const KIND: &str = "crm_dispatch";

const CONTEXT: &str = include_str!("../../sql/queries/crm_dispatch_context.sql");
const RECORD: &str = include_str!("../../sql/queries/crm_dispatch_record.sql");

/// Character limits of the fields sent (see the module doc).
pub mod limits {
    /// `Commentary`
    pub const COMMENTARY: usize = 4000;
    /// `UsrQualificationComment`
    pub const QUALIFICATION_COMMENT: usize = 500;
    /// Short text columns and contact name / e-mail.
    pub const SHORT: usize = 250;
    /// `Phone`
    pub const PHONE: usize = 50;
}

/// What the dispatch reads about one event.
#[derive(Debug, Clone, Default)]
pub struct DispatchInput {
    /// Our event id (`UsrEventId`).
    pub event_id: i64,
    /// ElevenLabs' conversation id.
    pub conversation_id: Option<String>,
    /// The agent's id.
    pub agent_id: Option<String>,
    /// Analysis fields.
    pub topic: Option<String>,
    /// Analysis fields.
    pub intent: Option<String>,
    /// 1–5.
    pub quality_score: Option<i16>,
    /// Analysis fields.
    pub summary: Option<String>,
    /// Analysis fields.
    pub summary_ru: Option<String>,
    /// Analysis fields.
    pub recommendations: Option<String>,
    /// Analysis fields.
    pub lead_status: Option<String>,
    /// Analysis fields.
    pub qualification_comment: Option<String>,
    /// The caller.
    pub contact: Contact,
}

/// The namespace of record Ids: UUIDv5 of the URL `https://callsync/elevenlabs-crm`.
pub fn record_namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://callsync/elevenlabs-crm")
}

/// The deterministic record `Id` of an event.
pub fn record_id(event_id: i64, conversation_id: Option<&str>) -> Uuid {
    let name = match conversation_id {
        Some(c) => format!("elevenlabs:{c}"),
        None => format!("callsync-event:{event_id}"),
    };
    Uuid::new_v5(&record_namespace(), name.as_bytes())
}

/// `Тема: … | Намерение: … | Качество: … | Итог: … | Итог (RU): … |
/// Рекомендации: … | IDs: event=…, agent=…, conv=…`; a missing value is `—`.
/// Cut to [`limits::COMMENTARY`] without ever cutting the `IDs:` part.
pub fn commentary(i: &DispatchInput) -> String {
    let v = |s: &Option<String>| s.clone().unwrap_or_else(|| "—".into());
    let ids = format!(
        "IDs: event={}, agent={}, conv={}",
        i.event_id,
        v(&i.agent_id),
        v(&i.conversation_id)
    );
    let head = format!(
        "Тема: {} | Намерение: {} | Качество: {} | Итог: {} | Итог (RU): {} | Рекомендации: {}",
        v(&i.topic),
        v(&i.intent),
        i.quality_score
            .map_or_else(|| "—".into(), |s| s.to_string()),
        v(&i.summary),
        v(&i.summary_ru),
        v(&i.recommendations),
    );
    let budget = limits::COMMENTARY.saturating_sub(ids.chars().count() + 3);
    let head = cap(&head, budget).unwrap_or_default();
    format!("{head} | {ids}")
}

/// The landing form for `input`. Empty values are left out.
pub fn build_form(landing_id: Uuid, i: &DispatchInput) -> LandingForm {
    let mut fields: Vec<(String, String)> = Vec::new();
    let put = |list: &mut Vec<(String, String)>, name: &str, value: Option<&str>, max: usize| {
        if let Some(v) = value.and_then(|v| cap(v, max)) {
            list.push((name.to_string(), v));
        }
    };
    let event_id = i.event_id.to_string();
    let score = i.quality_score.map(|s| s.to_string());
    let record = record_id(i.event_id, i.conversation_id.as_deref()).to_string();
    put(&mut fields, "Id", Some(&record), 36);
    put(
        &mut fields,
        "Commentary",
        Some(&commentary(i)),
        limits::COMMENTARY,
    );
    put(
        &mut fields,
        "UsrQualificationComment",
        i.qualification_comment.as_deref(),
        limits::QUALIFICATION_COMMENT,
    );
    put(
        &mut fields,
        "UsrTSLeadStatus",
        i.lead_status.as_deref(),
        limits::SHORT,
    );
    put(
        &mut fields,
        "UsrQualificationTopic",
        i.topic.as_deref(),
        limits::SHORT,
    );
    put(&mut fields, "UsrIntent", i.intent.as_deref(), limits::SHORT);
    put(&mut fields, "UsrQualityScore", score.as_deref(), 1);
    put(&mut fields, "UsrEventId", Some(&event_id), limits::SHORT);
    put(
        &mut fields,
        "UsrAgentId",
        i.agent_id.as_deref(),
        limits::SHORT,
    );
    put(
        &mut fields,
        "UsrConversationId",
        i.conversation_id.as_deref(),
        limits::SHORT,
    );

    let mut contact_fields = Vec::new();
    put(
        &mut contact_fields,
        "FullName",
        i.contact.name.as_deref(),
        limits::SHORT,
    );
    put(
        &mut contact_fields,
        "Phone",
        i.contact.phone.as_ref().map(|p| p.as_str()),
        limits::PHONE,
    );
    put(
        &mut contact_fields,
        "Email",
        i.contact.email.as_ref().map(|e| e.as_str()),
        limits::SHORT,
    );
    LandingForm {
        form_id: landing_id,
        fields,
        contact_fields,
    }
}

/// The handler.
pub struct CrmDispatch {
    /// The worker's pool (role `callsync_worker`).
    pub pool: Pool,
    /// The CRM settings.
    pub settings: CrmSettings,
    /// `None` unless enabled and not dry-run.
    pub client: Option<BpmsoftClient>,
}

/// One row for `record_crm_dispatch`.
struct Row {
    status: &'static str,
    http_status: Option<i32>,
    result_code: Option<i32>,
    response_text: Option<String>,
    error: Option<String>,
    duration_ms: Option<i32>,
    payload: Option<Value>,
    record_id: Option<Uuid>,
}

impl Row {
    fn status(status: &'static str) -> Self {
        Row {
            status,
            http_status: None,
            result_code: None,
            response_text: None,
            error: None,
            duration_ms: None,
            payload: None,
            record_id: None,
        }
    }
}

impl Handler for CrmDispatch {
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(self.dispatch(job))
    }
}

impl CrmDispatch {
    async fn dispatch(&self, job: &ClaimedJob) -> Result<(), JobError> {
        let event_id = job
            .args
            .get("event_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| JobError::permanent("args.event_id is missing"))?;
        let forced = job
            .args
            .get("force")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let (input, already_sent) = self.load(event_id).await?;
        let record = |row: Row| self.record(job, event_id, forced, row);

        if !self.settings.enabled {
            return record(Row::status("skipped_disabled")).await;
        }
        if already_sent && !forced {
            return record(Row::status("skipped_duplicate")).await;
        }
        if !input.contact.is_reachable() && self.settings.no_contact == NoContactPolicy::Skip {
            return record(Row::status("skipped_no_contact")).await;
        }
        let Some(landing_id) = self.settings.landing_id else {
            return Err(JobError::permanent("CRM_LANDING_ID is not configured"));
        };
        let form = build_form(landing_id, &input);
        let payload = form.to_json();
        let record_id = Some(record_id(event_id, input.conversation_id.as_deref()));
        if self.settings.dry_run {
            return record(Row {
                payload: Some(payload),
                record_id,
                ..Row::status("dry_run")
            })
            .await;
        }
        let Some(client) = &self.client else {
            return Err(JobError::permanent("CRM_SERVICE_URL is not configured"));
        };

        let attempt = client.send(&payload).await;
        let (status, error, result) = match &attempt.outcome {
            Outcome::Success { .. } => ("success", None, Ok(())),
            Outcome::Rejected { code, message } => {
                let e = format!("BPMsoft refused (resultCode {code}): {message}");
                ("error", Some(e.clone()), Err(JobError::Permanent(e)))
            }
            Outcome::EmptyResult => {
                let e =
                    "BPMsoft returned an empty result: formData or formFieldsData did not arrive"
                        .to_string();
                ("error", Some(e.clone()), Err(JobError::Permanent(e)))
            }
            Outcome::Unreadable(why) => {
                let e = format!("BPMsoft's answer could not be read: {why}");
                ("error", Some(e.clone()), Err(JobError::Permanent(e)))
            }
            Outcome::HttpError(code) => {
                let e = format!("BPMsoft answered HTTP {code}");
                ("error", Some(e.clone()), Err(JobError::Permanent(e)))
            }
            Outcome::Retryable(why) => {
                let e = format!("BPMsoft unavailable: {why}");
                ("error", Some(e.clone()), Err(JobError::Retryable(e)))
            }
        };
        record(Row {
            http_status: attempt.http_status.map(i32::from),
            result_code: attempt.result_code.and_then(|c| i32::try_from(c).ok()),
            response_text: Some(attempt.response_text.clone()),
            error,
            duration_ms: Some(i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX)),
            payload: Some(payload),
            record_id,
            ..Row::status(status)
        })
        .await?;
        tracing::info!(event_id, forced, status, http = ?attempt.http_status, "CRM dispatch attempt");
        result
    }

    async fn load(&self, event_id: i64) -> Result<(DispatchInput, bool), JobError> {
        let client = self.pool.get().await.map_err(JobError::retryable)?;
        let stmt = client
            .prepare_cached(CONTEXT)
            .await
            .map_err(JobError::retryable)?;
        let row = client
            .query_opt(&stmt, &[&event_id])
            .await
            .map_err(JobError::retryable)?
            .ok_or_else(|| JobError::permanent(format!("event {event_id} has no analysis")))?;
        let get = |c: &str| {
            row.try_get::<_, Option<String>>(c)
                .map_err(JobError::retryable)
        };
        let contacts: Value = row.try_get("contacts").map_err(JobError::retryable)?;
        let input = DispatchInput {
            event_id,
            conversation_id: get("conversation_id")?,
            agent_id: get("agent_id")?,
            topic: get("topic")?,
            intent: get("intent")?,
            quality_score: row.try_get("quality_score").map_err(JobError::retryable)?,
            summary: get("summary")?,
            summary_ru: get("summary_ru")?,
            recommendations: get("recommendations")?,
            lead_status: get("lead_status")?,
            qualification_comment: get("qualification_comment")?,
            contact: Contact::from_json(&contacts),
        };
        let already_sent: bool = row.try_get("already_sent").map_err(JobError::retryable)?;
        Ok((input, already_sent))
    }

    async fn record(
        &self,
        job: &ClaimedJob,
        event_id: i64,
        forced: bool,
        row: Row,
    ) -> Result<(), JobError> {
        let client = self.pool.get().await.map_err(JobError::retryable)?;
        let stmt = client
            .prepare_cached(RECORD)
            .await
            .map_err(JobError::retryable)?;
        client
            .query_one(
                &stmt,
                &[
                    &event_id,
                    &job.id.0,
                    &job.attempt,
                    &row.status,
                    &forced,
                    &row.http_status,
                    &row.result_code,
                    &row.response_text,
                    &row.error,
                    &row.duration_ms,
                    &row.payload,
                    &row.record_id,
                ],
            )
            .await
            .map_err(JobError::retryable)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::contact_phone::ContactPhone;

    fn input() -> DispatchInput {
        DispatchInput {
            event_id: 123,
            conversation_id: Some("C1".into()),
            agent_id: Some("A1".into()),
            topic: Some("Курс Python".into()),
            intent: Some("Запись".into()),
            quality_score: Some(4),
            summary: Some("Wants Python.".into()),
            summary_ru: Some("Хочет Python.".into()),
            recommendations: Some("Перезвонить после 18:00".into()),
            lead_status: Some("qualified".into()),
            qualification_comment: Some("Назвал курс".into()),
            contact: Contact {
                name: Some("Иван Иванов".into()),
                phone: ContactPhone::parse("+375291234567", None).ok(),
                ..Contact::default()
            },
        }
    }

    #[test]
    fn the_commentary_has_exactly_the_agreed_shape() {
        assert_eq!(
            commentary(&input()),
            "Тема: Курс Python | Намерение: Запись | Качество: 4 | Итог: Wants Python. | \
             Итог (RU): Хочет Python. | Рекомендации: Перезвонить после 18:00 | IDs: event=123, agent=A1, conv=C1"
        );
    }

    #[test]
    fn a_huge_commentary_is_cut_but_keeps_its_ids() {
        let mut i = input();
        i.summary = Some("x".repeat(10_000));
        let c = commentary(&i);
        assert_eq!(c.chars().count(), limits::COMMENTARY);
        assert!(c.ends_with("IDs: event=123, agent=A1, conv=C1"));
    }

    #[test]
    fn the_record_id_is_the_same_for_the_same_conversation_only() {
        assert_eq!(record_id(1, Some("C1")), record_id(2, Some("C1")));
        assert_ne!(record_id(1, Some("C1")), record_id(1, Some("C2")));
        assert_eq!(record_id(1, Some("C1")).get_version_num(), 5);
    }

    #[test]
    fn the_form_carries_the_agreed_fields_and_leaves_out_empty_ones() {
        let form = build_form(Uuid::nil(), &input());
        let names: Vec<&str> = form.fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Id",
                "Commentary",
                "UsrQualificationComment",
                "UsrTSLeadStatus",
                "UsrQualificationTopic",
                "UsrIntent",
                "UsrQualityScore",
                "UsrEventId",
                "UsrAgentId",
                "UsrConversationId"
            ]
        );
        let contacts: Vec<&str> = form
            .contact_fields
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(contacts, ["FullName", "Phone"], "no e-mail was known");
    }
}
