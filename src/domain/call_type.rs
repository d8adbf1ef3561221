//! Callyzer's `call_type` and its Polish label. An unknown type is kept with
//! its raw value (never an error): the database counts it and the screens
//! show it raw until someone adds a label to `callsync.call_type_label`.
use std::fmt;

/// The type of one call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CallType {
    /// Przychodzące.
    Incoming,
    /// Wychodzące.
    Outgoing,
    /// Nieodebrane.
    Missed,
    /// Odrzucone.
    Rejected,
    /// Anything else Callyzer sends, as sent (trimmed, never empty).
    Other(String),
}

/// The type field was missing or blank.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("call_type is missing or empty")]
pub struct CallTypeError;

impl CallType {
    /// Reads Callyzer's value; case matters as Callyzer documents it.
    ///
    /// # Errors
    /// [`CallTypeError`] for a blank value.
    pub fn parse(raw: &str) -> Result<Self, CallTypeError> {
        Ok(match raw.trim() {
            "" => return Err(CallTypeError),
            "Incoming" => CallType::Incoming,
            "Outgoing" => CallType::Outgoing,
            "Missed" => CallType::Missed,
            "Rejected" => CallType::Rejected,
            other => CallType::Other(other.to_string()),
        })
    }

    /// The value as Callyzer spells it (what the database stores).
    pub fn as_str(&self) -> &str {
        match self {
            CallType::Incoming => "Incoming",
            CallType::Outgoing => "Outgoing",
            CallType::Missed => "Missed",
            CallType::Rejected => "Rejected",
            CallType::Other(raw) => raw,
        }
    }

    /// The Polish label the screens show; `None` for an unknown type.
    pub fn label_pl(&self) -> Option<&'static str> {
        match self {
            CallType::Incoming => Some("Przychodzące"),
            CallType::Outgoing => Some("Wychodzące"),
            CallType::Missed => Some("Nieodebrane"),
            CallType::Rejected => Some("Odrzucone"),
            CallType::Other(_) => None,
        }
    }
}

impl fmt::Display for CallType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_four_known_types_have_polish_labels() {
        for (raw, label) in [
            ("Incoming", "Przychodzące"),
            ("Outgoing", "Wychodzące"),
            ("Missed", "Nieodebrane"),
            ("Rejected", "Odrzucone"),
        ] {
            let t = CallType::parse(raw).unwrap();
            assert_eq!(t.label_pl(), Some(label));
            assert_eq!(t.as_str(), raw);
        }
    }

    #[test]
    fn an_unknown_type_keeps_its_raw_value_and_has_no_label() {
        let t = CallType::parse(" Voicemail ").unwrap();
        assert_eq!(t, CallType::Other("Voicemail".into()));
        assert_eq!(t.label_pl(), None);
    }

    #[test]
    fn a_blank_type_is_an_error() {
        assert_eq!(CallType::parse("  "), Err(CallTypeError));
    }
}
