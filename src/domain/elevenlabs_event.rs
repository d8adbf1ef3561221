//! An ElevenLabs post-call event as the analysis needs it, read leniently
//! (reference elevenlabs.md: "new fields appear often"): unknown fields are
//! ignored, wrong-typed optional fields count as absent, and only a body that
//! is not a JSON object is refused. Two shapes are accepted: the webhook
//! envelope `{type, event_timestamp, data: {…}}`, and an operator's bare
//! conversation `{conversation_id, agent_id, transcript, contacts, analysis?}`
//! submitted through `crm-api` (`transcript` may then be plain text).
use super::contact::Contact;
use super::contact_phone::ContactPhone;
use super::email_address::EmailAddress;
use serde_json::Value;
use std::collections::BTreeMap;

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// `user` or `agent` (operators' plain-text transcripts: `transcript`).
    pub role: String,
    /// What was said; tool-only turns are dropped.
    pub message: String,
}

/// One evaluation criterion's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// The criterion's id.
    pub id: String,
    /// `success`, `failure` or `unknown`.
    pub result: String,
    /// Why, in the analysing LLM's words.
    pub rationale: Option<String>,
}

/// The event. Holding one means the body was an object; every field may be empty.
#[derive(Debug, Clone, PartialEq)]
pub struct ElevenLabsEvent {
    /// `post_call_transcription`, …
    pub event_type: String,
    /// ElevenLabs' conversation id (the idempotency key), when given.
    pub conversation_id: Option<String>,
    /// The agent that handled the call.
    pub agent_id: Option<String>,
    /// The conversation's turns.
    pub transcript: Vec<Turn>,
    /// `analysis.call_successful`: `success` / `failure` / `unknown`.
    pub call_successful: Option<String>,
    /// `analysis.transcript_summary`.
    pub transcript_summary: Option<String>,
    /// `analysis.call_summary_title`.
    pub call_summary_title: Option<String>,
    /// `analysis.data_collection_results`: id → value (map and list forms merged).
    pub data_collection: BTreeMap<String, Value>,
    /// `analysis.evaluation_criteria_results` (map and list forms merged).
    pub evaluation: Vec<Criterion>,
    /// `conversation_initiation_client_data.dynamic_variables`.
    pub dynamic_variables: BTreeMap<String, Value>,
    /// `metadata.phone_call.external_number`: the customer's number.
    pub external_number: Option<String>,
    /// `metadata.phone_call.direction`: `inbound` / `outbound`.
    pub direction: Option<String>,
    /// An operator's `contacts` object (`name`, `phone`, `email`), if any.
    pub operator_contacts: BTreeMap<String, Value>,
}

/// Why a body is not an event at all.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("an ElevenLabs event must be a JSON object")]
pub struct NotAnEvent;

const NAME_KEYS: &[&str] = &[
    "name",
    "full_name",
    "client_name",
    "customer_name",
    "contact_name",
    "user_name",
];
const PHONE_KEYS: &[&str] = &[
    "phone",
    "phone_number",
    "client_phone",
    "customer_phone",
    "contact_phone",
];
const EMAIL_KEYS: &[&str] = &["email", "client_email", "customer_email", "contact_email"];

impl ElevenLabsEvent {
    /// Reads `body` leniently.
    ///
    /// # Errors
    /// [`NotAnEvent`] when `body` is not a JSON object.
    pub fn parse(body: &Value) -> Result<Self, NotAnEvent> {
        if !body.is_object() {
            return Err(NotAnEvent);
        }
        let data = match body.get("data") {
            Some(d) if d.is_object() => d,
            _ => body,
        };
        let analysis = data.get("analysis").unwrap_or(&Value::Null);
        let phone_call = data.pointer("/metadata/phone_call").unwrap_or(&Value::Null);

        let mut data_collection = BTreeMap::new();
        if let Some(map) = analysis
            .get("data_collection_results")
            .and_then(Value::as_object)
        {
            for (id, r) in map {
                data_collection.insert(id.clone(), r.get("value").cloned().unwrap_or(Value::Null));
            }
        }
        for r in list(analysis.get("data_collection_results_list")) {
            if let Some(id) = text(r.get("data_collection_id")) {
                data_collection
                    .entry(id)
                    .or_insert_with(|| r.get("value").cloned().unwrap_or(Value::Null));
            }
        }

        let mut evaluation: Vec<Criterion> = Vec::new();
        let criterion = |id: String, r: &Value| Criterion {
            id,
            result: text(r.get("result")).unwrap_or_else(|| "unknown".into()),
            rationale: text(r.get("rationale")),
        };
        if let Some(map) = analysis
            .get("evaluation_criteria_results")
            .and_then(Value::as_object)
        {
            evaluation.extend(map.iter().map(|(id, r)| criterion(id.clone(), r)));
        }
        for r in list(analysis.get("evaluation_criteria_results_list")) {
            if let Some(id) = text(r.get("criteria_id")) {
                if !evaluation.iter().any(|c| c.id == id) {
                    evaluation.push(criterion(id, r));
                }
            }
        }

        let transcript = match data.get("transcript") {
            Some(Value::String(s)) if !s.trim().is_empty() => vec![Turn {
                role: "transcript".into(),
                message: s.trim().to_string(),
            }],
            Some(Value::Array(turns)) => turns
                .iter()
                .filter_map(|t| {
                    Some(Turn {
                        role: text(t.get("role")).unwrap_or_else(|| "unknown".into()),
                        message: text(t.get("message"))?,
                    })
                })
                .collect(),
            _ => Vec::new(),
        };

        Ok(ElevenLabsEvent {
            event_type: text(body.get("type")).unwrap_or_else(|| "post_call_transcription".into()),
            conversation_id: text(data.get("conversation_id"))
                .or_else(|| text(data.get("event_id"))),
            agent_id: text(data.get("agent_id")),
            transcript,
            call_successful: text(analysis.get("call_successful")),
            transcript_summary: text(analysis.get("transcript_summary"))
                .or_else(|| text(data.get("summary"))),
            call_summary_title: text(analysis.get("call_summary_title")),
            data_collection,
            evaluation,
            dynamic_variables: object(
                data.pointer("/conversation_initiation_client_data/dynamic_variables"),
            ),
            external_number: text(phone_call.get("external_number")),
            direction: text(phone_call.get("direction")),
            operator_contacts: object(data.get("contacts")),
        })
    }

    /// A data-collection value as text (strings trimmed, numbers printed).
    pub fn collected(&self, id: &str) -> Option<String> {
        scalar(self.data_collection.get(id))
    }

    /// The transcript as `role: message` lines.
    pub fn transcript_text(&self) -> String {
        self.transcript
            .iter()
            .map(|t| format!("{}: {}", t.role, t.message))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The caller's contact. Sources in order, first usable value wins:
    /// the operator's `contacts`; for the phone `metadata.phone_call.external_number`;
    /// then data-collection results; then dynamic variables (incl.
    /// `system__caller_id` on inbound and `system__called_number` on outbound
    /// calls, should ElevenLabs include them). National numbers are read with
    /// `default_country` (calling code digits).
    pub fn contact(&self, default_country: Option<&str>) -> Contact {
        let sources = [
            &self.operator_contacts,
            &self.data_collection,
            &self.dynamic_variables,
        ];
        let first = |keys: &[&str]| -> Vec<String> {
            sources
                .iter()
                .flat_map(|s| keys.iter().filter_map(|k| scalar(s.get(*k))))
                .collect()
        };

        let name = first(NAME_KEYS).iter().find_map(|n| Contact::clean_name(n));

        let mut phones = Vec::new();
        phones.extend(scalar(self.operator_contacts.get("phone")));
        phones.extend(self.external_number.clone());
        phones.extend(first(PHONE_KEYS));
        let system_key = match self.direction.as_deref() {
            Some("outbound") => "system__called_number",
            _ => "system__caller_id",
        };
        phones.extend(scalar(self.dynamic_variables.get(system_key)));
        let phone = phones
            .iter()
            .find_map(|p| ContactPhone::parse(p, default_country).ok());
        let phone_unparsed = if phone.is_none() {
            phones.first().cloned()
        } else {
            None
        };

        let email = first(EMAIL_KEYS)
            .iter()
            .find_map(|e| EmailAddress::parse(e).ok());
        Contact {
            name,
            phone,
            email,
            phone_unparsed,
        }
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn list(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten()
}

fn object(v: Option<&Value>) -> BTreeMap<String, Value> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference_example() -> Value {
        json!({
          "type": "post_call_transcription",
          "event_timestamp": 1767225600,
          "data": {
            "agent_id": "agent_01demo7x", "conversation_id": "conv_01demo9k", "status": "done",
            "transcript": [
              {"role": "agent", "message": "Добрый день! Чем могу помочь?", "time_in_call_secs": 0},
              {"role": "agent", "message": null, "tool_calls": []},
              {"role": "user", "message": "Хочу записаться на курс Python.", "time_in_call_secs": 4}
            ],
            "metadata": {"phone_call": {"type": "sip_trunking", "direction": "inbound",
                "agent_number": "+375170000000", "external_number": "+375291234567"}},
            "analysis": {
              "call_successful": "success",
              "transcript_summary": "Caller wants to enrol in a Python course.",
              "evaluation_criteria_results": {"lead_qualified": {"criteria_id": "lead_qualified",
                  "result": "success", "rationale": "Named a course."}},
              "data_collection_results": {"client_name": {"data_collection_id": "client_name",
                  "value": "Иван", "rationale": "Introduced himself."}},
              "some_new_field": {"nested": true}
            },
            "conversation_initiation_client_data": {"dynamic_variables": {"campaign": "winter"}},
            "has_audio": true
          }
        })
    }

    #[test]
    fn the_reference_example_parses_with_its_contact() {
        let e = ElevenLabsEvent::parse(&reference_example()).unwrap();
        assert_eq!(e.conversation_id.as_deref(), Some("conv_01demo9k"));
        assert_eq!(e.agent_id.as_deref(), Some("agent_01demo7x"));
        assert_eq!(e.transcript.len(), 2, "tool-only turns are dropped");
        assert_eq!(e.call_successful.as_deref(), Some("success"));
        assert_eq!(e.evaluation[0].result, "success");
        let c = e.contact(Some("375"));
        assert_eq!(c.name.as_deref(), Some("Иван"));
        assert_eq!(c.phone.unwrap().as_str(), "+375291234567");
    }

    #[test]
    fn wrong_typed_fields_count_as_absent() {
        let e = ElevenLabsEvent::parse(&json!({"type": "post_call_transcription",
            "data": {"conversation_id": 5, "transcript": "oops-not-a-list-but-text", "analysis": []}}))
        .unwrap();
        assert_eq!(e.conversation_id, None);
        assert_eq!(e.transcript.len(), 1);
        assert!(e.data_collection.is_empty());
    }

    #[test]
    fn an_operator_submission_gives_its_contacts_first() {
        let e = ElevenLabsEvent::parse(
            &json!({"conversation_id": "op-1", "transcript": "Клиент: хочу курс",
            "contacts": {"name": "Анна", "phone": "8 029 765 43 21", "email": "anna@example.by"}}),
        )
        .unwrap();
        assert_eq!(e.event_type, "post_call_transcription");
        let c = e.contact(Some("375"));
        assert_eq!(c.phone.unwrap().as_str(), "+375297654321");
        assert_eq!(c.email.unwrap().as_str(), "anna@example.by");
    }

    #[test]
    fn a_phone_that_does_not_parse_is_kept_apart_and_not_used() {
        let e = ElevenLabsEvent::parse(&json!({"contacts": {"phone": "call me maybe"}})).unwrap();
        let c = e.contact(Some("375"));
        assert!(c.phone.is_none());
        assert_eq!(c.phone_unparsed.as_deref(), Some("call me maybe"));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_not_an_event() {
        assert_eq!(ElevenLabsEvent::parse(&json!([1, 2])), Err(NotAnEvent));
    }
}
