//! Lenient readers for values providers send with drifting types: result codes, token
//! lifetimes, amounts and phone numbers arrive as JSON strings in one message and as numbers in
//! the next (`"ResultCode":"0"` in a query, `"ResultCode":0` in a callback).

use std::fmt;

use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A scalar read as the exact text it was sent as: a string's contents, or a number's digits
/// as written (`1.00` stays `1.00`; it never passes through a float).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Text(pub String);

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text as an exact decimal (amounts such as `"5.00"` or `1.00`).
    ///
    /// # Errors
    ///
    /// When it is not a plain decimal number.
    pub fn decimal(&self) -> Result<Decimal, crate::ParseError> {
        decimal(&self.0)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let raw = raw.get().trim();
        if raw.starts_with('"') {
            return serde_json::from_str::<String>(raw).map(Self).map_err(D::Error::custom);
        }
        let number = raw.starts_with(|c: char| c == '-' || c.is_ascii_digit());
        if number {
            Ok(Self(raw.to_owned()))
        } else {
            Err(D::Error::custom("a string or a number"))
        }
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// An exact decimal from a provider's text (surrounding spaces allowed; exponents refused).
///
/// # Errors
///
/// When the text is not a plain decimal number, or has more digits than a `Decimal` holds
/// exactly (refused, never rounded).
pub fn decimal(text: &str) -> Result<Decimal, crate::ParseError> {
    let text = text.trim();
    let plain = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+');
    if !plain {
        return Err(crate::ParseError::Unexpected(format!("{text:?} is not a plain decimal")));
    }
    // Not `from_str`: it rounds past 28 decimal places, so `1.000…0009` would read as `1`.
    Decimal::from_str_exact(text)
        .map_err(|error| crate::ParseError::Unexpected(format!("{text:?}: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers_read_as_their_exact_text() {
        let read = |json: &str| serde_json::from_str::<Text>(json).map(|text| text.0);
        assert_eq!(read("\"0\"").unwrap(), "0");
        assert_eq!(read("0").unwrap(), "0");
        assert_eq!(read("1.00").unwrap(), "1.00");
        assert_eq!(read("254708374149").unwrap(), "254708374149");
        assert_eq!(read("\"C2B00011\"").unwrap(), "C2B00011");
        assert!(read("true").is_err());
        assert!(read("{}").is_err());
        assert!(read("null").is_err());
    }

    #[test]
    fn decimals_are_exact_and_plain() {
        assert_eq!(decimal("5.00").unwrap().to_string(), "5.00");
        assert_eq!(decimal(" 168.00 ").unwrap().to_string(), "168.00");
        assert!(decimal("1e3").is_err());
        assert!(decimal("KES 10.00").is_err());
        assert!(decimal("").is_err());
        // Past 28 decimal places a decimal would be rounded: refused instead.
        assert!(decimal("1.000000000000000000000000000009").is_err());
        assert!(decimal("0.00000000000000000000000000001").is_err());
        assert_eq!(
            decimal("1.0000000000000000000000000009").unwrap().to_string(),
            "1.0000000000000000000000000009"
        );
    }
}
