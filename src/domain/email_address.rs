//! An e-mail address good enough to hand to a CRM: one `@`, a non-empty local
//! part, a domain with a dot, no blanks; lowercased domain. Deliverability is
//! not this type's business.
use std::fmt;

/// A plausible e-mail address. Built only by [`EmailAddress::parse`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

/// Why a string is not an e-mail address.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an e-mail address")]
pub struct EmailAddressError;

impl EmailAddress {
    /// Trims, checks the shape, lowercases the domain. At most 254 characters.
    ///
    /// # Errors
    /// [`EmailAddressError`] when the shape is wrong.
    pub fn parse(raw: &str) -> Result<Self, EmailAddressError> {
        let raw = raw.trim().trim_start_matches("mailto:");
        let (local, domain) = raw.rsplit_once('@').ok_or(EmailAddressError)?;
        let ok = !local.is_empty()
            && !local.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && raw.chars().count() <= 254
            && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(EmailAddressError);
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Logs see the domain only.
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        write!(f, "EmailAddress(…@{domain})")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_trimmed_and_its_domain_lowercased() {
        let e = EmailAddress::parse("  Ivan.Petrov@Example.BY ").unwrap();
        assert_eq!(e.as_str(), "Ivan.Petrov@example.by");
        assert_eq!(format!("{e:?}"), "EmailAddress(…@example.by)");
    }

    #[test]
    fn shapes_that_are_not_addresses_are_refused() {
        for raw in [
            "",
            "ivan",
            "ivan@",
            "@example.by",
            "ivan@example",
            "iv an@example.by",
        ] {
            assert_eq!(EmailAddress::parse(raw), Err(EmailAddressError), "{raw}");
        }
    }
}
