//! The journal's hash chain: the canonical encoding of a transfer and its hash.
//!
//! Each org's accepted transfers are numbered 1, 2, 3… (`chain_seq`) in the order the ledger
//! accepted them, and each one's `chain_hash` is the SHA-256 of [`encode`]: its content, its
//! number and the previous transfer's hash (32 zero bytes for the first). Changing, removing or
//! inserting a transfer after the fact changes its hash and so every later one. Rejections are
//! not transfers and are not chained; a replay adds nothing.
//!
//! # The encoding, version 1
//!
//! An auditor can recompute every hash from a dump of `transfers` with this description. All
//! integers are big-endian. A *string* is its length in bytes as a `u32`, then its UTF-8
//! bytes. A *uuid* is its 16 bytes. An *optional* is the byte `0` for none, or `1` then the
//! value. A *time* is an `i64` of microseconds since 1970-01-01T00:00:00Z, as stored
//! (`timestamptz` keeps microseconds).
//!
//! 1. the 16 bytes `hazina-chain-v1\n`;
//! 2. `chain_seq` as a `u64`, then the previous hash (32 bytes);
//! 3. `org_id` and `id` (uuids);
//! 4. `kind` (string: `posted`, `pending`, `post_pending`, `void_pending`, `expire_pending`,
//!    `reversal`), `pending_id` and `reversal_of` (optional uuids), `code` (string);
//! 5. the postings in recorded order: their count as a `u32`, then for each the account
//!    (uuid), the side (byte `0` debit, `1` credit), the currency (string, ISO 4217 code) and
//!    the amount in minor units (`i64`);
//! 6. the partial post's requested amounts (`requested`): optional; a `u32` count, then per
//!    amount its currency (string) and minor units (`i64`);
//! 7. `timeout_ms` (optional `u64`), `expires_at` (optional time), `effective_at` (time),
//!    `created_at`, the recorded time (time);
//! 8. the context as a `u64` length, then its canonical bytes (below).
//!
//! The context is stored as `jsonb`, which keeps its value but not the bytes it was written
//! with (key order, spacing and number spelling change), so the hash covers the value, in a
//! tagged encoding that reads the same from the request and from a dump: `n` null, `t` true,
//! `f` false; `d` then a string for a number; `s` then a string; `a`, a `u32` count and the
//! items; `o`, a `u32` count and the members in bytewise order of their keys, each the key
//! (string) then the value. A number is written as its exact decimal value in the form
//! `[-]DIGITSeEXP` with no leading or trailing zeros in `DIGITS` (`0e0` for zero): `1250`,
//! `1.25e3` and `1250.00` are all `125e1`, as `jsonb` treats them as one number.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::rules::{Side, Transfer};

/// The hash before an org's first transfer.
pub const GENESIS: [u8; 32] = [0; 32];

/// The encoding's first bytes, which name its version.
const VERSION_TAG: &[u8; 16] = b"hazina-chain-v1\n";

/// An org's chain as far as it goes: the last transfer's number and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Link {
    /// The chain position (0 before the first transfer).
    pub seq: i64,
    /// The transfer's hash ([`GENESIS`] before the first).
    pub hash: [u8; 32],
}

impl Default for Link {
    fn default() -> Self {
        Self { seq: 0, hash: GENESIS }
    }
}

impl Link {
    /// The link after `transfer`, chained onto this one.
    ///
    /// # Errors
    ///
    /// [`EncodeError`] when the transfer cannot be encoded (an amount finer than its currency
    /// or past 64 bits: never for a transfer the rules accepted).
    pub fn next(&self, transfer: &Transfer) -> Result<Self, EncodeError> {
        let seq = self.seq + 1;
        let hash = hash(&encode(transfer, seq, &self.hash)?);
        Ok(Self { seq, hash })
    }
}

/// A transfer that cannot be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// An amount does not fit its currency's minor units in 64 bits.
    #[error("amount not representable in minor units")]
    Amount(#[source] crate::money::MoneyError),
    /// The context is not a JSON object, or not valid JSON.
    #[error("context is not a JSON object: {0}")]
    Context(String),
}

/// SHA-256 of `bytes`.
pub fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The bytes a transfer's hash covers (see the module's documentation), with its context taken
/// from the in-memory value.
///
/// # Errors
///
/// See [`Link::next`].
pub fn encode(transfer: &Transfer, seq: i64, previous: &[u8; 32]) -> Result<Vec<u8>, EncodeError> {
    let mut context = Vec::with_capacity(128);
    canonical_object(&mut context, &transfer.context);
    encode_with_context(transfer, seq, previous, &context)
}

/// As [`encode`], with the context's canonical bytes already made (from a dump's text:
/// [`canonical_context_text`]).
///
/// # Errors
///
/// See [`Link::next`].
pub fn encode_with_context(
    transfer: &Transfer,
    seq: i64,
    previous: &[u8; 32],
    context: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(256 + context.len() + 64 * transfer.postings.len());
    out.extend_from_slice(VERSION_TAG);
    // Chain positions start at 1, so the cast keeps the value.
    out.extend_from_slice(&seq.max(0).cast_unsigned().to_be_bytes());
    out.extend_from_slice(previous);
    out.extend_from_slice(transfer.org.0.as_bytes());
    out.extend_from_slice(transfer.id.0.as_bytes());
    string(&mut out, transfer.kind.as_str());
    optional_uuid(&mut out, transfer.pending_id.map(|id| id.0));
    optional_uuid(&mut out, transfer.reversal_of.map(|id| id.0));
    string(&mut out, &transfer.code);
    count(&mut out, transfer.postings.len());
    for posting in &transfer.postings {
        out.extend_from_slice(posting.account.0.as_bytes());
        out.push(match posting.side {
            Side::Debit => 0,
            Side::Credit => 1,
        });
        string(&mut out, posting.amount.currency().code());
        let minor = posting.amount.to_minor().map_err(EncodeError::Amount)?;
        out.extend_from_slice(&minor.to_be_bytes());
    }
    match &transfer.requested_amounts {
        None => out.push(0),
        Some(amounts) => {
            out.push(1);
            count(&mut out, amounts.len());
            for amount in amounts {
                string(&mut out, amount.currency().code());
                let minor = amount.to_minor().map_err(EncodeError::Amount)?;
                out.extend_from_slice(&minor.to_be_bytes());
            }
        }
    }
    match transfer.timeout_ms {
        None => out.push(0),
        Some(ms) => {
            out.push(1);
            out.extend_from_slice(&ms.to_be_bytes());
        }
    }
    match transfer.expires_at {
        None => out.push(0),
        Some(at) => {
            out.push(1);
            time(&mut out, at);
        }
    }
    time(&mut out, transfer.effective_at);
    time(&mut out, transfer.created_at);
    out.extend_from_slice(&(context.len() as u64).to_be_bytes());
    out.extend_from_slice(context);
    Ok(out)
}

/// The canonical bytes of a context stored as JSON text (as `jsonb` prints it, or as it was
/// sent): the same bytes [`encode`] makes from the value, with every number read exactly from
/// its text.
///
/// # Errors
///
/// [`EncodeError::Context`] when the text is not a JSON object.
pub fn canonical_context_text(text: &str) -> Result<Vec<u8>, EncodeError> {
    let raw: &serde_json::value::RawValue =
        serde_json::from_str(text).map_err(|e| EncodeError::Context(e.to_string()))?;
    if !raw.get().trim_start().starts_with('{') {
        return Err(EncodeError::Context("not an object".to_owned()));
    }
    let mut out = Vec::with_capacity(text.len());
    canonical_raw(&mut out, raw)?;
    Ok(out)
}

fn count(out: &mut Vec<u8>, n: usize) {
    // Lengths here are bounded far below 4 GiB: postings by the rules, strings and JSON by
    // the request size; saturating keeps the encoding total all the same.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

fn string(out: &mut Vec<u8>, s: &str) {
    count(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn optional_uuid(out: &mut Vec<u8>, id: Option<uuid::Uuid>) {
    match id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(id.as_bytes());
        }
    }
}

/// Microseconds since the Unix epoch, as PostgreSQL stores the time: it keeps microseconds,
/// truncating toward its own epoch (2000-01-01) what is finer.
fn time(out: &mut Vec<u8>, at: DateTime<Utc>) {
    out.extend_from_slice(&stored_micros(at).to_be_bytes());
}

/// The time as stored, in microseconds since the Unix epoch ([`crate::rules::as_stored`]): a
/// time read back is already whole microseconds, so both sides agree.
fn stored_micros(at: DateTime<Utc>) -> i64 {
    crate::rules::as_stored(at).timestamp_micros()
}

fn canonical_object(out: &mut Vec<u8>, map: &serde_json::Map<String, serde_json::Value>) {
    out.push(b'o');
    count(out, map.len());
    let mut members: Vec<(&String, &serde_json::Value)> = map.iter().collect();
    // `String`'s order is bytewise; the map may keep insertion order (`preserve_order`).
    members.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (key, value) in members {
        string(out, key);
        canonical_value(out, value);
    }
}

fn canonical_value(out: &mut Vec<u8>, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Null => out.push(b'n'),
        Value::Bool(true) => out.push(b't'),
        Value::Bool(false) => out.push(b'f'),
        Value::Number(number) => {
            out.push(b'd');
            // The number as serde_json writes it into the stored JSON.
            string(out, &normal_number(&number.to_string()).unwrap_or_default());
        }
        Value::String(s) => {
            out.push(b's');
            string(out, s);
        }
        Value::Array(items) => {
            out.push(b'a');
            count(out, items.len());
            for item in items {
                canonical_value(out, item);
            }
        }
        Value::Object(map) => canonical_object(out, map),
    }
}

fn canonical_raw(out: &mut Vec<u8>, raw: &serde_json::value::RawValue) -> Result<(), EncodeError> {
    use serde_json::value::RawValue;
    let text = raw.get().trim();
    let invalid = |e: serde_json::Error| EncodeError::Context(e.to_string());
    match text.as_bytes().first() {
        Some(b'n') => out.push(b'n'),
        Some(b't') => out.push(b't'),
        Some(b'f') => out.push(b'f'),
        Some(b'"') => {
            let s: String = serde_json::from_str(text).map_err(invalid)?;
            out.push(b's');
            string(out, &s);
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(invalid)?;
            out.push(b'a');
            count(out, items.len());
            for item in items {
                canonical_raw(out, item)?;
            }
        }
        Some(b'{') => {
            // A map keyed by the members' keys: sorted bytewise, and a repeated key keeps
            // its last value, as `jsonb` does.
            let members: std::collections::BTreeMap<String, &RawValue> =
                serde_json::from_str(text).map_err(invalid)?;
            out.push(b'o');
            count(out, members.len());
            for (key, value) in members {
                string(out, &key);
                canonical_raw(out, value)?;
            }
        }
        _ => {
            let normal = normal_number(text)
                .ok_or_else(|| EncodeError::Context(format!("not a JSON value: {text:?}")))?;
            out.push(b'd');
            string(out, &normal);
        }
    }
    Ok(())
}

/// A JSON number's exact value as `[-]DIGITSeEXP` without leading or trailing zeros in
/// `DIGITS` (`0e0` for zero); `None` when `text` is not a JSON number.
fn normal_number(text: &str) -> Option<String> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => {
            let exponent = unsigned[at + 1..].strip_prefix('+').unwrap_or(&unsigned[at + 1..]);
            (&unsigned[..at], exponent.parse::<i64>().ok()?)
        }
        None => (unsigned, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if integer.is_empty() || !digits_only(integer) || !digits_only(fraction) {
        return None;
    }
    if mantissa.contains('.') && fraction.is_empty() {
        return None;
    }
    let all: String = [integer, fraction].concat();
    let trimmed_start = all.trim_start_matches('0');
    let significant = trimmed_start.trim_end_matches('0');
    if significant.is_empty() {
        return Some("0e0".to_owned());
    }
    let trailing = trimmed_start.len() - significant.len();
    let fraction_len = i64::try_from(fraction.len()).ok()?;
    let trailing = i64::try_from(trailing).ok()?;
    let exponent = exponent.checked_sub(fraction_len)?.checked_add(trailing)?;
    Some(format!("{}{significant}e{exponent}", if negative { "-" } else { "" }))
}

/// Lower-case hexadecimal of `bytes`: how hashes are shown.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut hex, byte| {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalise_to_their_exact_value() {
        for (text, normal) in [
            ("0", "0e0"),
            ("-0.0", "0e0"),
            ("1250", "125e1"),
            ("1.25e3", "125e1"),
            ("1250.00", "125e1"),
            ("0.0000001", "1e-7"),
            ("1e-7", "1e-7"),
            ("1E+16", "1e16"),
            ("10000000000000000", "1e16"),
            ("-12.5", "-125e-1"),
            ("18446744073709551615", "18446744073709551615e0"),
            ("12345678901234567890123", "12345678901234567890123e0"),
        ] {
            assert_eq!(normal_number(text).as_deref(), Some(normal), "{text}");
        }
        for bad in ["", "-", "1.", ".5", "1e", "abc", "1x"] {
            assert_eq!(normal_number(bad), None, "{bad}");
        }
    }

    /// The context read from the database (`jsonb`'s spelling: keys by length, plain
    /// decimals) encodes as the value the request held.
    #[test]
    fn a_context_reads_back_the_same_as_written() {
        let written = serde_json::json!({
            "zeta": [1, 2.5, 1e16, -0.0, 100.0, null, true, false, "x\"y"],
            "a": {"nested": {"b": 1, "a": "é"}},
            "hazina": {"customers": ["0190c2d0-0000-7000-8000-000000000001"]}
        });
        let serde_json::Value::Object(map) = written else { unreachable!() };
        let mut from_value = Vec::new();
        canonical_object(&mut from_value, &map);
        let as_jsonb = r#"{"a": {"nested": {"a": "é", "b": 1}}, "zeta": [1, 2.5, 10000000000000000, 0.0, 100.0, null, true, false, "x\"y"], "hazina": {"customers": ["0190c2d0-0000-7000-8000-000000000001"]}}"#;
        assert_eq!(canonical_context_text(as_jsonb).ok(), Some(from_value.clone()));
        let as_sent = serde_json::to_string(&map).unwrap_or_default();
        assert_eq!(canonical_context_text(&as_sent).ok(), Some(from_value));
    }

    #[test]
    fn a_different_value_encodes_differently() {
        let all: Vec<Option<Vec<u8>>> = [
            r#"{"a": "1"}"#,
            r#"{"a": 1}"#,
            r#"{"a": [1]}"#,
            r#"{"a": {}}"#,
            r#"{"a": 1, "b": null}"#,
        ]
        .into_iter()
        .map(|text| canonical_context_text(text).ok())
        .collect();
        for (i, x) in all.iter().enumerate() {
            assert!(x.is_some());
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert!(canonical_context_text("[1]").is_err());
        assert!(canonical_context_text("{").is_err());
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(to_hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
