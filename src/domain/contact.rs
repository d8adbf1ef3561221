//! The person an ElevenLabs call was with, as the CRM needs them: a name, a
//! phone in E.164, an e-mail. Any part may be missing; [`Contact::is_reachable`]
//! says whether the CRM gets a way to call back. Stored in
//! `call_analysis.contacts` as JSON; `Debug` redacts personal data.
use super::contact_phone::ContactPhone;
use super::email_address::EmailAddress;
use serde_json::{json, Map, Value};
use std::fmt;

/// Longest name kept (longer text is not a name).
pub const NAME_MAX_CHARS: usize = 200;

/// What is known about the caller.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// Full name as given, trimmed; at most [`NAME_MAX_CHARS`].
    pub name: Option<String>,
    /// A phone that parsed.
    pub phone: Option<ContactPhone>,
    /// An e-mail that parsed.
    pub email: Option<EmailAddress>,
    /// A phone that was given but did not parse (kept for the operator, never sent).
    pub phone_unparsed: Option<String>,
}

impl Contact {
    /// A cleaned name: trimmed, inner blanks collapsed, capped; `None` when empty.
    pub fn clean_name(raw: &str) -> Option<String> {
        let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        (!name.is_empty()).then(|| name.chars().take(NAME_MAX_CHARS).collect())
    }

    /// True when the CRM can reach the person: a phone or an e-mail.
    pub fn is_reachable(&self) -> bool {
        self.phone.is_some() || self.email.is_some()
    }

    /// The JSON stored in `call_analysis.contacts`: only the keys that are known.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(n) = &self.name {
            m.insert("name".into(), json!(n));
        }
        if let Some(p) = &self.phone {
            m.insert("phone".into(), json!(p.as_str()));
        }
        if let Some(e) = &self.email {
            m.insert("email".into(), json!(e.as_str()));
        }
        if let Some(raw) = &self.phone_unparsed {
            m.insert("phone_unparsed".into(), json!(raw));
        }
        Value::Object(m)
    }

    /// Reads what [`Contact::to_json`] wrote (values are parsed again; anything
    /// that no longer parses is dropped).
    pub fn from_json(v: &Value) -> Contact {
        let text = |k: &str| v.get(k).and_then(Value::as_str);
        Contact {
            name: text("name").and_then(Contact::clean_name),
            phone: text("phone").and_then(|p| ContactPhone::parse(p, None).ok()),
            email: text("email").and_then(|e| EmailAddress::parse(e).ok()),
            phone_unparsed: text("phone_unparsed").map(str::to_string),
        }
    }
}

impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contact")
            .field("name", &self.name.as_ref().map(|_| "[redacted]"))
            .field("phone", &self.phone)
            .field("email", &self.email)
            .field(
                "phone_unparsed",
                &self.phone_unparsed.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn contacts_round_trip_through_their_json() {
        let c = Contact {
            name: Contact::clean_name("  Иван   Соколов "),
            phone: ContactPhone::parse("+375291234567", None).ok(),
            email: EmailAddress::parse("ivan@example.by").ok(),
            phone_unparsed: None,
        };
        assert_eq!(c.name.as_deref(), Some("Иван Соколов"));
        assert_eq!(Contact::from_json(&c.to_json()), c);
    }

    #[test]
    fn debug_shows_no_name_and_no_full_number() {
        let c = Contact {
            name: Some("Иван".into()),
            phone: ContactPhone::parse("+375291234567", None).ok(),
            ..Contact::default()
        };
        let d = format!("{c:?}");
        assert!(!d.contains("Иван") && !d.contains("291234"), "{d}");
    }

    #[test]
    fn a_name_alone_does_not_make_a_contact_reachable() {
        let c = Contact {
            name: Some("Иван".into()),
            ..Contact::default()
        };
        assert!(!c.is_reachable());
    }
}
