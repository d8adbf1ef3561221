//! A CRM contact's phone number in E.164, as the ElevenLabs → BPMsoft pipeline
//! sends it. Accepts international forms and, with a default country calling
//! code, national ones (Belarus `8 0XX …` included). Not the Callyzer matching
//! number: that pipeline has its own type and rules.
use std::fmt;

/// `+` and 8 to 15 digits, the first not 0. Built only by [`ContactPhone::parse`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ContactPhone(String);

/// Why a string is not a usable phone number.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContactPhoneError {
    /// Nothing but blanks.
    #[error("phone number is empty")]
    Empty,
    /// A national number and no default country to read it in.
    #[error("phone number has no country code")]
    MissingCountryCode,
    /// E.164 allows 8 to 15 digits (country code included).
    #[error("phone number has {0} digits; E.164 allows 8 to 15")]
    BadLength(usize),
    /// Letters or symbols other than human formatting.
    #[error("phone number contains {0:?}")]
    BadCharacter(char),
}

impl ContactPhone {
    /// Parses `raw`. Spaces, dashes, dots, slashes and parentheses are dropped;
    /// `+` or `00` starts an international number. Otherwise, with
    /// `default_country` (digits, e.g. `"375"`):
    /// digits that already begin with it and are long enough are taken as
    /// international without the `+` (`375291234567`); Belarus's trunk prefix
    /// `80` (`80291234567`) and a single leading `0` elsewhere are replaced by it.
    ///
    /// # Errors
    /// [`ContactPhoneError`] saying what is wrong.
    pub fn parse(raw: &str, default_country: Option<&str>) -> Result<Self, ContactPhoneError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ContactPhoneError::Empty);
        }
        let (international, rest) = match raw.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
                other => return Err(ContactPhoneError::BadCharacter(other)),
            }
        }
        if digits.is_empty() {
            return Err(ContactPhoneError::Empty);
        }
        let full = if international {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_string()
        } else {
            let cc = default_country
                .map(|c| c.trim_start_matches('+'))
                .filter(|c| !c.is_empty() && c.chars().all(|d| d.is_ascii_digit()))
                .ok_or(ContactPhoneError::MissingCountryCode)?;
            if digits.starts_with(cc) && digits.len() >= cc.len() + 8 {
                digits
            } else if cc == "375" && digits.len() == 11 && digits.starts_with("80") {
                format!("375{}", &digits[2..])
            } else if let Some(national) = digits.strip_prefix('0') {
                format!("{cc}{national}")
            } else {
                return Err(ContactPhoneError::MissingCountryCode);
            }
        };
        if full.starts_with('0') {
            return Err(ContactPhoneError::MissingCountryCode);
        }
        if !(8..=15).contains(&full.len()) {
            return Err(ContactPhoneError::BadLength(full.len()));
        }
        Ok(Self(format!("+{full}")))
    }

    /// The E.164 text, `+` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Logs see only the last three digits.
impl fmt::Debug for ContactPhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = self.0.get(self.0.len().saturating_sub(3)..).unwrap_or("");
        write!(f, "ContactPhone(+…{tail})")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn by(raw: &str) -> Result<String, ContactPhoneError> {
        ContactPhone::parse(raw, Some("375")).map(|p| p.as_str().to_string())
    }

    #[test]
    fn belarus_numbers_in_every_common_form_become_the_same_e164() {
        for raw in [
            "+375 29 123-45-67",
            "+375291234567",
            "00375291234567",
            "375291234567",
            "8 029 123 45 67",
            "80291234567",
            "(029) 123-45-67",
        ] {
            assert_eq!(by(raw).as_deref(), Ok("+375291234567"), "{raw}");
        }
    }

    #[test]
    fn international_numbers_of_other_countries_are_kept() {
        assert_eq!(by("+48 601 234 567").as_deref(), Ok("+48601234567"));
        assert_eq!(by("+7 (912) 345-67-89").as_deref(), Ok("+79123456789"));
    }

    #[test]
    fn a_national_number_without_a_default_country_is_refused() {
        assert_eq!(
            ContactPhone::parse("0291234567", None),
            Err(ContactPhoneError::MissingCountryCode)
        );
    }

    #[test]
    fn letters_and_wrong_lengths_are_refused() {
        assert_eq!(by("+375 29 ABC"), Err(ContactPhoneError::BadCharacter('A')));
        assert_eq!(by("+3752"), Err(ContactPhoneError::BadLength(4)));
        assert_eq!(by("   "), Err(ContactPhoneError::Empty));
    }

    #[test]
    fn debug_shows_only_the_last_three_digits() {
        let p = ContactPhone::parse("+375291234567", None).unwrap();
        assert_eq!(format!("{p:?}"), "ContactPhone(+…567)");
    }
}
