//! `elevenlabs_analysis`: turns a stored ElevenLabs event into a
//! `call_analysis` row and, when the CRM is enabled, queues its
//! `crm_dispatch` in the same transaction. Owns the mapping from the event to
//! the analysis; the HTTP of the LLM lives in `clients::llm`, the CRM in
//! `crm_dispatch`.
//!
//! Each field is filled in three layers; a later layer only fills gaps:
//!
//! 1. **What the event states** (data-collection ids in brackets):
//!    topic ← [`topic`, `qualification_topic`, `call_topic`] or
//!    `analysis.call_summary_title`; intent ← [`intent`, `client_intent`];
//!    quality score ← [`quality_score`, `call_quality`] (1–5);
//!    summary ← `analysis.transcript_summary`; summary (RU) ← [`summary_ru`];
//!    recommendations ← [`recommendations`, `next_steps`];
//!    lead status ← [`lead_status`]; qualification comment ← [`qualification_comment`].
//! 2. **The LLM**, when `LLM_BASE_URL` is set and a field is still empty: it gets
//!    the transcript and the known fields and answers the JSON schema below;
//!    a score outside 1–5 or a wrong type is dropped, text is capped.
//! 3. **Deterministic fallbacks**: quality score = 1 + 4 × (share of
//!    evaluation criteria with result `success`), rounded, or from
//!    `call_successful` (success 4, unknown 3, failure 2), else 3; lead status
//!    from `call_successful` (`qualified` / `not_qualified` / `unknown`);
//!    qualification comment = the criteria's `id: result — rationale` joined
//!    with `; `; summary (RU) = the summary when it is mostly Cyrillic.
//!
//! Without an LLM, layers 1 and 3 make the analysis a pure function of the event.
//! An LLM that is down is retried with the job; on the job's last attempt, or
//! when the LLM answers nonsense, the analysis is saved without it (the error
//! is kept in `raw_output`), so an LLM outage never stops leads reaching the CRM.
use super::{Handler, JobError};
use crate::clients::llm::{LlmClient, LlmError};
use crate::domain::call_analysis::{CallAnalysis, QualityScore};
use crate::domain::elevenlabs_event::ElevenLabsEvent;
use crate::queue::ClaimedJob;
use deadpool_postgres::Pool;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};

/// The kind name.
pub const KIND: &str = "elevenlabs_analysis";

const GET: &str = include_str!("../../sql/queries/elevenlabs_event_get.sql");
const SAVE: &str = include_str!("../../sql/queries/call_analysis_save.sql");
const FAIL: &str = include_str!("../../sql/queries/elevenlabs_event_fail.sql");

const SYSTEM_PROMPT: &str = "You analyse a phone call between an AI sales agent and a prospective \
customer. Answer only with the JSON object the schema describes. Use the transcript and the \
fields already known; do not invent contact data. topic and intent: a few words each. \
quality_score: 1 (useless call) to 5 (excellent, qualified lead). summary: 2-4 sentences in the \
call's language. summary_ru: the same summary in Russian. recommendations: next steps for the \
sales team, in Russian. lead_status: one of qualified, not_qualified, callback, unknown. \
qualification_comment: one or two sentences in Russian on why.";

/// The JSON schema the LLM must answer (strict: every property required).
pub fn answer_schema() -> Value {
    let text = json!({"type": "string"});
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["topic", "intent", "quality_score", "summary", "summary_ru",
                     "recommendations", "lead_status", "qualification_comment"],
        "properties": {
            "topic": text, "intent": text,
            "quality_score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
            "summary": text, "summary_ru": text, "recommendations": text,
            "lead_status": {"type": "string", "enum": ["qualified", "not_qualified", "callback", "unknown"]},
            "qualification_comment": text,
        }
    })
}

/// The handler.
pub struct ElevenLabsAnalysis {
    /// The worker's pool (role `callsync_worker`).
    pub pool: Pool,
    /// The optional LLM.
    pub llm: Option<LlmClient>,
    /// Queue a CRM dispatch after saving (`EXTERNAL_CRM_ENABLED`).
    pub dispatch: bool,
    /// Calling code for national phone numbers.
    pub default_country: Option<String>,
}

impl Handler for ElevenLabsAnalysis {
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(self.analyse(job))
    }
}

impl ElevenLabsAnalysis {
    async fn analyse(&self, job: &ClaimedJob) -> Result<(), JobError> {
        let event_id = job
            .args
            .get("event_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| JobError::permanent("args.event_id is missing"))?;
        let row = {
            let client = self.pool.get().await.map_err(JobError::retryable)?;
            let stmt = client
                .prepare_cached(GET)
                .await
                .map_err(JobError::retryable)?;
            client
                .query_opt(&stmt, &[&event_id])
                .await
                .map_err(JobError::retryable)?
        };
        let Some(row) = row else {
            return Err(JobError::permanent(format!(
                "event {event_id} does not exist"
            )));
        };
        let body: Value = row.try_get("body").map_err(JobError::retryable)?;
        let event = match ElevenLabsEvent::parse(&body) {
            Ok(e) => e,
            Err(e) => {
                self.fail(event_id, &e.to_string()).await?;
                return Err(JobError::permanent(e));
            }
        };
        let contact = event.contact(self.default_country.as_deref());

        let mut analysis = stated(&event);
        let mut analyzer = "event";
        let mut raw = json!({"stated": analysis.to_json()});
        if let Some(llm) = &self.llm {
            if !analysis.missing().is_empty() {
                match ask(llm, &event, &analysis).await {
                    Ok(answer) => {
                        analysis.fill_from(&CallAnalysis::from_json(&answer));
                        analyzer = "llm";
                        raw = json!({"model": llm.model(), "answer": answer, "stated": raw["stated"]});
                    }
                    Err(LlmError::Retryable(e)) if job.attempts_left() > 0 => {
                        return Err(JobError::Retryable(format!("LLM: {e}")));
                    }
                    Err(e) => {
                        tracing::warn!(event_id, error = %e, "LLM analysis failed; saving the event's own analysis");
                        raw["llm_error"] = json!(e.to_string());
                    }
                }
            }
        }
        analysis.fill_from(&derived(&event, &analysis));

        let client = self.pool.get().await.map_err(JobError::retryable)?;
        let stmt = client
            .prepare_cached(SAVE)
            .await
            .map_err(JobError::retryable)?;
        let score = analysis.quality_score.map(|s| i16::from(s.get()));
        client
            .query_one(
                &stmt,
                &[
                    &event_id,
                    &analysis.topic,
                    &analysis.intent,
                    &score,
                    &analysis.summary,
                    &analysis.summary_ru,
                    &analysis.recommendations,
                    &analysis.lead_status,
                    &analysis.qualification_comment,
                    &contact.to_json(),
                    &analyzer,
                    &raw,
                    &self.dispatch,
                ],
            )
            .await
            .map_err(JobError::retryable)?;
        tracing::info!(
            event_id,
            analyzer,
            reachable = contact.is_reachable(),
            "call analysed"
        );
        Ok(())
    }

    async fn fail(&self, event_id: i64, error: &str) -> Result<(), JobError> {
        let client = self.pool.get().await.map_err(JobError::retryable)?;
        let stmt = client
            .prepare_cached(FAIL)
            .await
            .map_err(JobError::retryable)?;
        client
            .execute(&stmt, &[&event_id, &error])
            .await
            .map_err(JobError::retryable)?;
        Ok(())
    }
}

async fn ask(
    llm: &LlmClient,
    event: &ElevenLabsEvent,
    known: &CallAnalysis,
) -> Result<Value, LlmError> {
    // a transcript of several hours is cut: the summary is enough for the rest
    let transcript: String = event.transcript_text().chars().take(30_000).collect();
    let user = format!(
        "Transcript:\n{transcript}\n\nKnown fields (keep them; fill the null ones):\n{}\n\nCall successful: {}",
        known.to_json(),
        event.call_successful.as_deref().unwrap_or("unknown"),
    );
    llm.complete_json("call_analysis", &answer_schema(), SYSTEM_PROMPT, &user)
        .await
}

/// Layer 1: only what the event itself states.
pub fn stated(event: &ElevenLabsEvent) -> CallAnalysis {
    let pick = |ids: &[&str]| ids.iter().find_map(|id| event.collected(id));
    let mut a = CallAnalysis::default();
    a.set(
        "topic",
        pick(&["topic", "qualification_topic", "call_topic"])
            .or_else(|| event.call_summary_title.clone())
            .as_deref(),
    );
    a.set("intent", pick(&["intent", "client_intent"]).as_deref());
    a.set("summary", event.transcript_summary.as_deref());
    a.set("summary_ru", pick(&["summary_ru"]).as_deref());
    a.set(
        "recommendations",
        pick(&["recommendations", "next_steps"]).as_deref(),
    );
    a.set("lead_status", pick(&["lead_status"]).as_deref());
    a.set(
        "qualification_comment",
        pick(&["qualification_comment"]).as_deref(),
    );
    a.quality_score = ["quality_score", "call_quality"].iter().find_map(|id| {
        event
            .data_collection
            .get(*id)
            .and_then(QualityScore::from_json)
    });
    a
}

/// Layer 3: fallbacks derived from the event's verdicts.
pub fn derived(event: &ElevenLabsEvent, so_far: &CallAnalysis) -> CallAnalysis {
    let mut a = CallAnalysis::default();
    let judged: Vec<_> = event
        .evaluation
        .iter()
        .filter(|c| c.result == "success" || c.result == "failure")
        .collect();
    a.quality_score = if judged.is_empty() {
        QualityScore::new(match event.call_successful.as_deref() {
            Some("success") => 4,
            Some("failure") => 2,
            _ => 3,
        })
    } else {
        let share =
            judged.iter().filter(|c| c.result == "success").count() as f64 / judged.len() as f64;
        QualityScore::new((1.0 + 4.0 * share).round() as u8)
    };
    a.set(
        "lead_status",
        Some(match event.call_successful.as_deref() {
            Some("success") => "qualified",
            Some("failure") => "not_qualified",
            _ => "unknown",
        }),
    );
    let comment = event
        .evaluation
        .iter()
        .map(|c| match &c.rationale {
            Some(r) => format!("{}: {} — {r}", c.id, c.result),
            None => format!("{}: {}", c.id, c.result),
        })
        .collect::<Vec<_>>()
        .join("; ");
    a.set("qualification_comment", Some(&comment));
    if let Some(summary) = &so_far.summary {
        let letters = summary.chars().filter(|c| c.is_alphabetic()).count();
        let cyrillic = summary
            .chars()
            .filter(|c| ('\u{0400}'..='\u{04FF}').contains(c))
            .count();
        if letters > 0 && cyrillic * 2 > letters {
            a.set("summary_ru", Some(summary));
        }
    }
    a
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn event(v: Value) -> ElevenLabsEvent {
        ElevenLabsEvent::parse(&v).unwrap()
    }

    #[test]
    fn without_an_llm_the_analysis_comes_from_the_event_alone() {
        let e = event(
            json!({"type": "post_call_transcription", "data": {"analysis": {
            "call_successful": "success",
            "transcript_summary": "Клиент хочет записаться на курс Python.",
            "call_summary_title": "Курс Python",
            "evaluation_criteria_results": {
                "lead_qualified": {"result": "success", "rationale": "Назвал курс."},
                "budget_known": {"result": "failure", "rationale": "Бюджет не назван."}},
            "data_collection_results": {"intent": {"value": "Запись на курс"}}}}}),
        );
        let mut a = stated(&e);
        a.fill_from(&derived(&e, &a));
        assert_eq!(a.topic.as_deref(), Some("Курс Python"));
        assert_eq!(a.intent.as_deref(), Some("Запись на курс"));
        assert_eq!(
            a.quality_score,
            QualityScore::new(3),
            "one of two criteria met"
        );
        assert_eq!(a.lead_status.as_deref(), Some("qualified"));
        assert_eq!(
            a.summary_ru, a.summary,
            "a Russian summary is its own translation"
        );
        assert!(a
            .qualification_comment
            .unwrap()
            .contains("budget_known: failure — Бюджет не назван."));
    }

    #[test]
    fn a_stated_quality_score_wins_over_the_derived_one() {
        let e = event(json!({"data": {"analysis": {"call_successful": "failure",
            "data_collection_results": {"quality_score": {"value": 5}}}}}));
        let mut a = stated(&e);
        a.fill_from(&derived(&e, &a));
        assert_eq!(a.quality_score, QualityScore::new(5));
    }

    #[test]
    fn an_english_summary_is_not_taken_as_russian() {
        let e = event(json!({"data": {"analysis": {"transcript_summary": "Wants a course."}}}));
        let mut a = stated(&e);
        a.fill_from(&derived(&e, &a));
        assert_eq!(a.summary_ru, None);
    }
}
