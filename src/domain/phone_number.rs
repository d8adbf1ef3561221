//! Phone numbers of the Callyzer pipeline: E.164, built from Callyzer's split
//! country-code and number fields with a default country, by the same rules as
//! the SQL function `callsync.e164` that normalizes lead phones (a test keeps
//! the two in step). Not the CRM contact number (see `contact_phone`).
use std::fmt;

/// A number in E.164 form: `+`, then 8 to 15 digits, the first not 0.
/// Built only by [`PhoneNumber::from_parts`], so holding one means it is valid.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

/// Why a number could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    /// Nothing but blanks and formatting.
    #[error("phone number is empty")]
    Empty,
    /// A national number and neither a country-code field nor a default country.
    #[error("phone number has no country code")]
    MissingCountryCode,
    /// E.164 allows 8 to 15 digits, the first not 0.
    #[error("phone number has {0} digits or starts with 0; E.164 allows 8 to 15, the first not 0")]
    BadLength(usize),
    /// Letters or symbols other than human formatting.
    #[error("phone number contains {0:?}")]
    BadCharacter(char),
}

impl PhoneNumber {
    /// Reads Callyzer's `*_country_code` and `*_number` fields.
    ///
    /// Spaces, dashes, dots, slashes and parentheses are dropped. A number that
    /// starts with `+` or `00` is international and the country code field is
    /// ignored. Otherwise one leading trunk `0` is dropped and the country code
    /// (the field, else `default_country`) is put in front, unless the number
    /// has 11 or more digits and already starts with that code.
    ///
    /// # Errors
    /// [`PhoneNumberError`] saying what is wrong.
    pub fn from_parts(
        country_code: &str,
        number: &str,
        default_country: &str,
    ) -> Result<Self, PhoneNumberError> {
        let mut n = String::with_capacity(number.len());
        for c in number.chars() {
            match c {
                '0'..='9' | '+' => n.push(c),
                c if c.is_whitespace() => {}
                '-' | '.' | '(' | ')' | '/' => {}
                other => return Err(PhoneNumberError::BadCharacter(other)),
            }
        }
        if n.is_empty() {
            return Err(PhoneNumberError::Empty);
        }
        let cc_field: String = country_code.chars().filter(char::is_ascii_digit).collect();
        let cc: String = if country_code.trim().is_empty() {
            default_country
                .chars()
                .filter(char::is_ascii_digit)
                .collect()
        } else {
            cc_field
        };
        let digits = if let Some(rest) = n.strip_prefix('+') {
            rest.to_string()
        } else if let Some(rest) = n.strip_prefix("00") {
            rest.to_string()
        } else {
            if cc.is_empty() {
                return Err(PhoneNumberError::MissingCountryCode);
            }
            let national = n.strip_prefix('0').unwrap_or(&n);
            if national.len() >= 11 && national.starts_with(cc.as_str()) {
                national.to_string()
            } else {
                format!("{cc}{national}")
            }
        };
        if let Some(c) = digits.chars().find(|c| !c.is_ascii_digit()) {
            return Err(PhoneNumberError::BadCharacter(c));
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(PhoneNumberError::BadLength(digits.len()));
        }
        Ok(Self(format!("+{digits}")))
    }

    /// The E.164 text, `+` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Logs see only the last three digits.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = self.0.get(self.0.len().saturating_sub(3)..).unwrap_or("");
        write!(f, "PhoneNumber(+…{tail})")
    }
}

/// The cases `callsync.e164` must agree on (tests/callyzer_processing.rs runs
/// them through the SQL function): (country code, number, default, E.164 or None).
pub const SHARED_CASES: &[(&str, &str, &str, Option<&str>)] = &[
    ("48", "600 100 200", "48", Some("+48600100200")),
    ("", "0600-100-200", "48", Some("+48600100200")),
    ("", "600100200", "48", Some("+48600100200")),
    ("48", "+44 7700 900123", "48", Some("+447700900123")),
    ("48", "0048 600 100 200", "48", Some("+48600100200")),
    ("48", "48600100200", "48", Some("+48600100200")),
    ("375", "291112233", "48", Some("+375291112233")),
    ("+375", "(29) 111-22-33", "48", Some("+375291112233")),
    ("", "600100200", "", None),
    ("48", "abc", "48", None),
    ("48", "12", "48", None),
    ("48", "", "48", None),
    ("48", "+0123456789", "48", None),
    ("48", "+1234567890123456", "48", None),
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_cases_hold() {
        for (cc, n, d, want) in SHARED_CASES {
            let got = PhoneNumber::from_parts(cc, n, d).ok();
            assert_eq!(
                got.as_ref().map(PhoneNumber::as_str),
                *want,
                "{cc:?} {n:?} {d:?}"
            );
        }
    }

    #[test]
    fn a_local_number_without_any_country_is_refused() {
        assert_eq!(
            PhoneNumber::from_parts("", "600100200", ""),
            Err(PhoneNumberError::MissingCountryCode)
        );
    }

    #[test]
    fn letters_are_refused_by_name() {
        assert_eq!(
            PhoneNumber::from_parts("48", "60x100200", "48"),
            Err(PhoneNumberError::BadCharacter('x'))
        );
    }

    #[test]
    fn debug_shows_only_the_last_three_digits() {
        let n = PhoneNumber::from_parts("48", "600100200", "48").unwrap();
        assert_eq!(format!("{n:?}"), "PhoneNumber(+…200)");
    }
}
