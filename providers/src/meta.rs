//! What the WhatsApp Cloud API and the Messenger Send API share, both being Meta Graph API
//! products: the `X-Hub-Signature-256` check of a webhook, the `hub.*` verification handshake,
//! the Graph API error body, and a thin client that posts a send request and reads the answer
//! as a [`SendResult`].
//!
//! The signature is `sha256=` and the lowercase hex HMAC-SHA256 of the raw request body under
//! the app secret (developers.facebook.com/docs/graph-api/webhooks/getting-started, "Validate
//! Payloads"); it is checked over the bytes as received, before any JSON is read.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Secret;
use crate::http::{HeaderText, HttpClient, HttpError, HttpRequest, HttpResponse};
use crate::messaging::{DeliveryStatus, SendResult, Verified};
use crate::wire::Text;

/// The header Meta signs a webhook POST with (lower case, as `http` names headers).
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The prefix of the signature header's value.
const SIGNATURE_PREFIX: &str = "sha256=";

/// The Graph API version a client names by default.
pub const DEFAULT_VERSION: &str = "v21.0";

/// The Graph API's address.
pub const GRAPH_URL: &str = "https://graph.facebook.com";

// =============================================================================================
// Signatures
// =============================================================================================

/// The `X-Hub-Signature-256` value Meta would send with `body`: `sha256=` and the lowercase hex
/// HMAC-SHA256 of the body under the app secret. The simulator signs with it.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, app_secret);
    let tag = ring::hmac::sign(&key, body);
    let mut header = String::with_capacity(SIGNATURE_PREFIX.len() + 64);
    header.push_str(SIGNATURE_PREFIX);
    for byte in tag.as_ref() {
        // Writing to a String cannot fail.
        let _ = write!(header, "{byte:02x}");
    }
    header
}

/// Whether `header` (the `X-Hub-Signature-256` value, `None` when absent) signs `body` under
/// the app secret. The comparison of the MAC is constant-time (`ring::hmac::verify`); a
/// missing header, a missing `sha256=` prefix, or anything but 64 hex digits is
/// [`Verified::No`]. Upper-case hex digits are accepted.
pub fn verify_signature(app_secret: &[u8], header: Option<&str>, body: &[u8]) -> Verified {
    let Some(hex) = header.and_then(|value| value.trim().strip_prefix(SIGNATURE_PREFIX)) else {
        return Verified::No;
    };
    let Some(mac) = decode_hex(hex) else {
        return Verified::No;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, app_secret);
    match ring::hmac::verify(&key, body, &mac) {
        Ok(()) => Verified::Yes,
        Err(_) => Verified::No,
    }
}

/// 32 bytes from exactly 64 hex digits.
fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// Equality in time that depends on the lengths only, for comparing a verify token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// =============================================================================================
// Verification handshake
// =============================================================================================

/// The answer to Meta's verification GET, from its query string
/// (`hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`): the challenge to echo as the
/// body of a 200 when the mode is `subscribe` and the token is ours (compared in constant
/// time), else `None` (answer 403).
pub fn verify_challenge(query: &str, verify_token: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    let find = |name: &str| pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value);
    let mode = find("hub.mode")?;
    let token = find("hub.verify_token")?;
    let challenge = find("hub.challenge")?;
    (mode == "subscribe" && constant_time_eq(token.as_bytes(), verify_token.as_bytes()))
        .then(|| challenge.clone())
}

// =============================================================================================
// Building requests
// =============================================================================================

/// Why no send request could be built from a [`crate::messaging::Body`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The channel has no such kind of message (an email on WhatsApp, a location on
    /// Messenger); the kind as [`crate::messaging::Body::kind`] names it, or the media type.
    #[error("a {0} message cannot be sent on this channel")]
    Unsupported(&'static str),
    /// The message is of a kind the channel has, but cannot be sent as given (with why).
    #[error("the message cannot be sent as given: {0}")]
    Invalid(String),
}

/// A decimal written as a JSON number with exactly its digits (coordinates), never through a
/// float.
pub(crate) fn exact_number<S: serde::Serializer>(
    value: &rust_decimal::Decimal,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::Error as _;
    let raw =
        serde_json::value::RawValue::from_string(value.to_string()).map_err(S::Error::custom)?;
    raw.serialize(serializer)
}

/// A decimal read from a JSON number or string with exactly its digits.
pub(crate) fn read_exact<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<rust_decimal::Decimal, D::Error> {
    use serde::de::Error as _;
    let text = Text::deserialize(deserializer)?;
    crate::wire::decimal(text.as_str()).map_err(D::Error::custom)
}

// =============================================================================================
// Graph API errors
// =============================================================================================

/// A Graph API error body: `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`
/// (developers.facebook.com/docs/graph-api/guides/error-handling; WhatsApp adds
/// `error_data.details`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphErrorBody {
    pub error: GraphError,
}

/// The `error` object of a Graph API error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    /// The user-facing title some errors carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_msg: Option<String>,
    /// WhatsApp's `{"messaging_product":"whatsapp","details":"…"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<ErrorData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
}

/// WhatsApp's `error_data`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl GraphError {
    /// An error with a code and a message, as the simulator answers.
    pub fn new(code: i64, kind: &str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: Some(kind.to_owned()),
            code,
            error_subcode: None,
            error_user_title: None,
            error_user_msg: None,
            error_data: None,
            fbtrace_id: None,
        }
    }

    /// The reason to record: the code, the subcode when there is one, the message, and the
    /// details when there are some.
    pub fn reason(&self) -> String {
        let mut reason = format!("({}", self.code);
        if let Some(subcode) = self.error_subcode {
            let _ = write!(reason, "/{subcode}");
        }
        let _ = write!(reason, ") {}", self.message);
        if let Some(details) = self.error_data.as_ref().and_then(|data| data.details.as_deref()) {
            let _ = write!(reason, ": {details}");
        }
        reason
    }
}

/// Reads a Graph API error body.
///
/// # Errors
///
/// When the body is not one.
pub fn parse_error(body: &[u8]) -> Result<GraphError, crate::ParseError> {
    Ok(serde_json::from_slice::<GraphErrorBody>(body)?.error)
}

/// What a product's error code means for the message: its status, and whether sending again
/// later may work (a rate limit, a transient failure), in which case the send is
/// [`SendResult::Retry`] and the status is what to record if the retries run out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorMeaning {
    pub status: DeliveryStatus,
    pub retry: bool,
}

impl ErrorMeaning {
    /// Refused for good with `status`.
    pub const fn refused(status: DeliveryStatus) -> Self {
        Self { status, retry: false }
    }

    /// Worth sending again later; [`DeliveryStatus::GatewayError`] if the retries run out.
    pub const fn retry() -> Self {
        Self { status: DeliveryStatus::GatewayError, retry: true }
    }
}

/// The Graph API's answer to a send, as a [`SendResult`]: a 2xx through `accepted` (which
/// reads the product's answer); 429, any status outside 2xx and 4xx, or an unreadable 4xx
/// answer is [`SendResult::Retry`]; any other error body goes through `meaning`, the product's table of
/// codes. `retry_after` (a `Retry-After` header, when the caller has one) is named in the
/// reason.
pub fn classify_answer(
    status: u16,
    body: &[u8],
    retry_after: Option<&str>,
    accepted: impl FnOnce(&[u8]) -> Option<SendResult>,
    meaning: impl FnOnce(&GraphError) -> ErrorMeaning,
) -> SendResult {
    let after = retry_after.map(|after| format!(", retry after {after} s")).unwrap_or_default();
    if (200..300).contains(&status) {
        return accepted(body).unwrap_or_else(|| SendResult::Retry {
            reason: format!("HTTP {status} with an unreadable answer"),
        });
    }
    let error = parse_error(body).ok();
    // Only a 4xx refuses; a 429, a 5xx or anything stranger leaves the outcome open.
    if status == 429 || !(400..500).contains(&status) {
        let detail = error.map(|error| format!(": {}", error.reason())).unwrap_or_default();
        return SendResult::Retry { reason: format!("HTTP {status}{after}{detail}") };
    }
    let Some(error) = error else {
        return SendResult::Retry { reason: format!("HTTP {status} with an unreadable body") };
    };
    let meaning = meaning(&error);
    if meaning.retry {
        SendResult::Retry { reason: format!("{}{after}", error.reason()) }
    } else {
        SendResult::Refused { status: meaning.status, reason: error.reason() }
    }
}

// =============================================================================================
// Times
// =============================================================================================

/// A time from whole seconds since the epoch, as WhatsApp sends them (`"1603059201"`, a
/// string; a number is taken too).
pub fn from_seconds(text: &Text) -> Option<DateTime<Utc>> {
    text.as_str().trim().parse::<i64>().ok().and_then(|secs| DateTime::from_timestamp(secs, 0))
}

/// A time from milliseconds since the epoch, as Messenger sends them (`1458668856253`).
pub fn from_millis(text: &Text) -> Option<DateTime<Utc>> {
    text.as_str().trim().parse::<i64>().ok().and_then(DateTime::from_timestamp_millis)
}

// =============================================================================================
// Client
// =============================================================================================

/// Where the Graph API is and which version to name.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Graph API's address without a trailing slash: [`GRAPH_URL`], or the simulator's
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The version path segment, [`DEFAULT_VERSION`] by default.
    pub version: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { base_url: GRAPH_URL.to_owned(), version: DEFAULT_VERSION.to_owned() }
    }
}

/// A thin Graph API client for sending messages. The access token goes in an
/// `Authorization: Bearer` header marked sensitive (the Graph API takes a token there as well
/// as in the `access_token` parameter), so that it never sits in a URL that could be logged.
#[derive(Clone, Debug)]
pub struct Client {
    config: Config,
    http: HttpClient,
}

impl Client {
    /// A client for `config`, sending through `http`.
    pub fn new(config: Config, http: HttpClient) -> Self {
        Self { config, http }
    }

    /// Sends a WhatsApp message: `POST /{version}/{phone_number_id}/messages` with a system
    /// user or business token. A transport failure or timeout is [`SendResult::Retry`]; the
    /// answer is read by [`crate::whatsapp::read_send_answer`].
    pub async fn send_whatsapp(
        &self,
        token: &Secret,
        phone_number_id: &str,
        request: &crate::whatsapp::SendRequest,
    ) -> SendResult {
        let path = format!("/{phone_number_id}/messages");
        match self.post(token, &path, request).await {
            Ok(answer) => crate::whatsapp::read_send_answer(answer.status, &answer.body, None),
            Err(result) => result,
        }
    }

    /// Sends a Messenger message: `POST /{version}/{page}/messages` (`page` is the page id, or
    /// `me` for the page the token belongs to) with the page access token; the answer is read
    /// by [`crate::messenger::read_send_answer`].
    pub async fn send_messenger(
        &self,
        page_token: &Secret,
        page: &str,
        request: &crate::messenger::SendRequest,
    ) -> SendResult {
        let path = format!("/{page}/messages");
        match self.post(page_token, &path, request).await {
            Ok(answer) => crate::messenger::read_send_answer(answer.status, &answer.body, None),
            Err(result) => result,
        }
    }

    async fn post<B: Serialize>(
        &self,
        token: &Secret,
        path: &str,
        body: &B,
    ) -> Result<HttpResponse, SendResult> {
        let body = serde_json::to_vec(body).map_err(|error| SendResult::Refused {
            status: DeliveryStatus::ApplicationError,
            reason: format!("the request body could not be written: {error}"),
        })?;
        let url = format!(
            "{}/{}{path}",
            self.config.base_url.trim_end_matches('/'),
            self.config.version.trim_matches('/')
        );
        let request = HttpRequest {
            method: hyper::Method::POST,
            url,
            headers: vec![
                (
                    "authorization",
                    HeaderText::Secret(Secret::new(format!("Bearer {}", token.expose()))),
                ),
                ("content-type", HeaderText::Plain("application/json".to_owned())),
            ],
            body: Some(body),
        };
        // The crate's HTTP client hands back no headers, so a `Retry-After` is not seen here:
        // a 429 is a retry all the same, and the caller's backoff decides when.
        self.http.send(request).await.map_err(|error| from_http(&error))
    }
}

/// A failed exchange: never known to have been taken, so sent again later.
fn from_http(error: &HttpError) -> SendResult {
    SendResult::Retry { reason: error.to_string() }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_signature_is_the_prefixed_lowercase_hex_hmac() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_handshake_echoes_the_challenge_for_our_token_only() {
        let query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock";
        assert_eq!(verify_challenge(query, "meatyhamhock").as_deref(), Some("1158201444"));
        assert_eq!(verify_challenge(query, "meatyhamhocks"), None);
        assert_eq!(verify_challenge(query, ""), None);
        let unsubscribe = query.replace("subscribe", "unsubscribe");
        assert_eq!(verify_challenge(&unsubscribe, "meatyhamhock"), None);
        assert_eq!(verify_challenge("hub.mode=subscribe&hub.verify_token=t", "t"), None);
        assert_eq!(verify_challenge("%%%", "t"), None);
    }

    #[test]
    fn hex_must_be_exactly_sixty_four_digits() {
        assert!(decode_hex(&"0".repeat(64)).is_some());
        assert!(decode_hex(&"A".repeat(64)).is_some());
        assert!(decode_hex(&"0".repeat(63)).is_none());
        assert!(decode_hex(&"0".repeat(66)).is_none());
        assert!(decode_hex(&"g".repeat(64)).is_none());
        assert!(decode_hex(&"é".repeat(32)).is_none());
    }
}
