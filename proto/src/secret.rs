//! [`SecretString`]: a string that must not be seen.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A string that must not be seen: zeroized on drop, `[redacted]` in `Debug`, and
/// compared in time that depends only on the lengths.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a string.
    pub fn new(s: String) -> SecretString {
        SecretString(Zeroizing::new(s))
    }
    /// The plain text. Callers must not log or echo it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The zeroizing string inside (for APIs that take one, e.g. password hashing).
    pub fn into_zeroizing(self) -> Zeroizing<String> {
        self.0
    }
}

impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }
}

impl Eq for SecretString {}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> SecretString {
        SecretString::new(s.to_owned())
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> SecretString {
        SecretString::new(s)
    }
}

impl From<Zeroizing<String>> for SecretString {
    fn from(s: Zeroizing<String>) -> SecretString {
        SecretString(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretString::from("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn equality_compares_content_and_length() {
        assert_eq!(
            SecretString::from("abc"),
            SecretString::from("abc".to_string())
        );
        assert_ne!(SecretString::from("abc"), SecretString::from("abd"));
        assert_ne!(SecretString::from("abc"), SecretString::from("abcd"));
        let parsed: SecretString = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(parsed.expose(), "abc");
    }
}
