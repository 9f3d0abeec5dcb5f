//! Email: a [`messaging::Email`](crate::messaging::Email) built into a MIME message with a
//! Message-ID we choose, submitted over SMTP with `lettre` and the answer read as a
//! [`SendResult`]; and inbound mail from SendGrid's Inbound Parse webhook read as an
//! [`Inbound`].
//!
//! SMTP (RFC 5321; lettre's transport): the server's reply codes decide. `250` after `DATA` is
//! [`DeliveryStatus::Sent`] under our Message-ID (SMTP gives no id of its own that a reply can
//! be matched on); a permanent refusal of the recipient (`550`/`551`/`553`, or an enhanced
//! status `5.1.x`) is [`DeliveryStatus::CustomerNumberNotFound`]; a refused login (`530`,
//! `534`, `535`, `538`) is [`DeliveryStatus::ApplicationError`]; any other `5xx` is
//! [`DeliveryStatus::Rejected`]; a `4xx`, a broken connection or a timeout is to be retried
//! (messaging.md §9).
//!
//! SendGrid Inbound Parse (twilio.com/docs/sendgrid/for-developers/parsing-email/inbound-email)
//! POSTs `multipart/form-data` with the fields `from`, `to`, `cc`, `subject`, `text`, `html`,
//! `headers` (the raw header block), `envelope` (JSON `{"to":[…],"from":"…"}`, the SMTP
//! addresses), `charsets` (JSON: each field's charset), `spam_score`, `sender_ip`, `dkim`,
//! `SPF` and attachment parts. **SendGrid signs nothing**: the server must protect the URL it
//! gives SendGrid with a long random secret token in its path, and refuse any other path.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use mail_parser::{MessageParser, MimeHeaders as _};
use serde::Deserialize;

use crate::messaging::{Channel, DeliveryStatus, Email, Inbound, InboundPart, SendResult};
use crate::{ParseError, Secret};

// =============================================================================================
// Building a message
// =============================================================================================

/// Why a message could not be built. Nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An address that is not one (`field` says which: `from`, `to`, `cc`, `bcc`).
    #[error("an invalid {field} address: {reason}")]
    InvalidAddress { field: &'static str, reason: String },
    #[error("the message could not be built: {0}")]
    Message(#[source] lettre::error::Error),
}

/// Which earlier message this one answers: its Message-ID (without angle brackets) and the
/// thread's earlier ids, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub in_reply_to: String,
    pub references: Vec<String>,
}

/// An address as lettre reads it: `a@b.example` or `Name <a@b.example>`.
///
/// # Errors
///
/// [`BuildError::InvalidAddress`] naming `field`.
pub fn parse_mailbox(field: &'static str, text: &str) -> Result<Mailbox, BuildError> {
    text.trim()
        .parse::<Mailbox>()
        .map_err(|error| BuildError::InvalidAddress { field, reason: error.to_string() })
}

/// Whether `text` is a valid bare address (`local@domain`), by lettre's reading.
pub fn is_valid_address(text: &str) -> bool {
    text.parse::<Address>().is_ok()
}

/// A new Message-ID (without angle brackets) on the domain of our address `from`: a UUIDv7,
/// unique and in time order, so that a reply's `In-Reply-To` finds the message.
///
/// # Errors
///
/// `from` is not an address.
pub fn new_message_id(from: &str) -> Result<String, BuildError> {
    let mailbox = parse_mailbox("from", from)?;
    Ok(format!("{}@{}", uuid::Uuid::now_v7().simple(), mailbox.email.domain()))
}

/// The MIME message for `email` from our address `from` to the customer `to`: the plain text
/// alone, or plain and HTML as `multipart/alternative`; `Cc` and `Bcc` (lettre leaves `Bcc`
/// out of the headers and keeps it in the envelope); `Message-ID: <message_id>`; and
/// `In-Reply-To` and `References` when it answers `reply`.
///
/// # Errors
///
/// See [`BuildError`].
pub fn build_message(
    from: &str,
    to: &str,
    email: &Email,
    message_id: &str,
    reply: Option<&Reply>,
) -> Result<Message, BuildError> {
    let mut builder = Message::builder()
        .from(parse_mailbox("from", from)?)
        .to(parse_mailbox("to", to)?)
        .subject(email.subject.clone())
        .message_id(Some(format!("<{}>", message_id.trim_matches(['<', '>']))));
    for cc in &email.cc {
        builder = builder.cc(parse_mailbox("cc", cc)?);
    }
    for bcc in &email.bcc {
        builder = builder.bcc(parse_mailbox("bcc", bcc)?);
    }
    if let Some(reply) = reply {
        let bracket = |id: &str| format!("<{}>", id.trim_matches(['<', '>']));
        builder = builder.in_reply_to(bracket(&reply.in_reply_to));
        let mut references: Vec<String> = reply.references.iter().map(|id| bracket(id)).collect();
        if !reply.references.iter().any(|id| id.trim_matches(['<', '>']) == reply.in_reply_to) {
            references.push(bracket(&reply.in_reply_to));
        }
        builder = builder.references(references.join(" "));
    }
    let built = match &email.html {
        Some(html) => {
            builder.multipart(MultiPart::alternative_plain_html(email.plain.clone(), html.clone()))
        }
        None => builder.singlepart(
            SinglePart::builder().header(ContentType::TEXT_PLAIN).body(email.plain.clone()),
        ),
    };
    built.map_err(BuildError::Message)
}

// =============================================================================================
// Reading SMTP replies
// =============================================================================================

/// What an SMTP server's negative reply (`code` and its text) means for the message.
/// `250` and other `2xx` are not refusals and are read as sent, under no id.
pub fn read_smtp_reply(code: u16, text: &str) -> SendResult {
    let reason = format!("{code} {}", text.trim()).trim().to_owned();
    match code {
        200..=299 => SendResult::Accepted {
            provider_message_id: None,
            status: DeliveryStatus::Sent,
            cost: None,
        },
        // A temporary refusal; an unknown class is not known to be final either.
        400..=499 | 0..=199 | 300..=399 | 600.. => SendResult::Retry { reason },
        // Authentication required, too weak or refused: our credentials, not the customer.
        530 | 534 | 535 | 538 => {
            SendResult::Refused { status: DeliveryStatus::ApplicationError, reason }
        }
        500..=599 => {
            let enhanced = text.split_whitespace().next().unwrap_or_default();
            let no_mailbox = enhanced.starts_with("5.1.")
                || (!enhanced.starts_with("5.") && matches!(code, 550 | 551 | 553));
            let status = if no_mailbox {
                DeliveryStatus::CustomerNumberNotFound
            } else {
                DeliveryStatus::Rejected
            };
            SendResult::Refused { status, reason }
        }
    }
}

/// What a failed submission means for the message.
pub fn read_smtp_error(error: &lettre::transport::smtp::Error) -> SendResult {
    if let Some(code) = error.status() {
        let code = code.to_string().parse::<u16>().unwrap_or(0);
        // The server's text, when it sent one, is the error's source.
        let text = std::error::Error::source(error).map(ToString::to_string).unwrap_or_default();
        return read_smtp_reply(code, &text);
    }
    if error.is_client() {
        return SendResult::Refused {
            status: DeliveryStatus::InvalidRequest,
            reason: error.to_string(),
        };
    }
    // A timeout, a refused or broken connection, a TLS failure, an unreadable reply.
    SendResult::Retry { reason: error.to_string() }
}

// =============================================================================================
// Sending
// =============================================================================================

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text: only for the local simulator or a relay on the same host.
    None,
    /// Upgraded with `STARTTLS` (port 587), which must succeed before anything else is sent.
    StartTls,
    /// TLS from the first byte (port 465, "submissions").
    Implicit,
}

/// Where and how to submit mail.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// `AUTH PLAIN` or `LOGIN` with these, when set.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// For each connection, command and reply.
    pub timeout: Duration,
    /// The name we greet with (`EHLO <name>`).
    pub hello_name: String,
    /// One more trusted root in DER (a private CA, or a test's own), beside the Mozilla roots.
    pub extra_root_der: Option<Vec<u8>>,
    /// Connections kept open for reuse.
    pub pool_size_max: u32,
}

impl SmtpConfig {
    /// Plain text to `host:port` without credentials, 30 s timeout: the local simulator.
    pub fn plain(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            tls: TlsMode::None,
            username: None,
            password: None,
            timeout: Duration::from_secs(30),
            hello_name: "localhost".to_owned(),
            extra_root_der: None,
            pool_size_max: 10,
        }
    }
}

/// Why a sender could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the TLS settings could not be built: {0}")]
    Tls(#[source] lettre::transport::smtp::Error),
    #[error("a username needs a password, and a password a username")]
    Credentials,
}

/// Submits mail to one SMTP server, over a pool of connections. Cheap to clone.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    target: String,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender").field("target", &self.target).finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// A sender for `config`. Nothing connects until the first send.
    ///
    /// # Errors
    ///
    /// See [`ConfigError`].
    pub fn new(config: &SmtpConfig) -> Result<Self, ConfigError> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .timeout(Some(config.timeout))
            .hello_name(ClientId::Domain(config.hello_name.clone()))
            .pool_config(PoolConfig::new().max_size(config.pool_size_max.max(1)));
        if config.tls != TlsMode::None {
            let mut parameters = TlsParameters::builder(config.host.clone());
            if let Some(der) = &config.extra_root_der {
                parameters = parameters.add_root_certificate(
                    Certificate::from_der(der.clone()).map_err(ConfigError::Tls)?,
                );
            }
            let parameters = parameters.build_rustls().map_err(ConfigError::Tls)?;
            builder = builder.tls(match config.tls {
                TlsMode::StartTls => Tls::Required(parameters),
                _ => Tls::Wrapper(parameters),
            });
        }
        match (&config.username, &config.password) {
            (Some(username), Some(password)) => {
                builder = builder
                    .credentials(Credentials::new(username.clone(), password.expose().to_owned()))
                    .authentication(vec![Mechanism::Plain, Mechanism::Login]);
            }
            (None, None) => {}
            _ => return Err(ConfigError::Credentials),
        }
        Ok(Self { transport: builder.build(), target: format!("{}:{}", config.host, config.port) })
    }

    /// Builds and submits `email` from our address `from` to the customer `to` under a new
    /// Message-ID, which is the provider message id of an accepted send. A message that cannot
    /// be built is refused as [`DeliveryStatus::InvalidRequest`] without connecting.
    pub async fn send(
        &self,
        from: &str,
        to: &str,
        email: &Email,
        reply: Option<&Reply>,
    ) -> SendResult {
        let built = new_message_id(from)
            .and_then(|id| build_message(from, to, email, &id, reply).map(|message| (id, message)));
        match built {
            Ok((id, message)) => self.send_message(&message, &id).await,
            Err(error) => SendResult::Refused {
                status: DeliveryStatus::InvalidRequest,
                reason: error.to_string(),
            },
        }
    }

    /// Submits a built message whose Message-ID is `message_id`.
    pub async fn send_message(&self, message: &Message, message_id: &str) -> SendResult {
        match self.transport.send(message.clone()).await {
            Ok(_) => SendResult::Accepted {
                provider_message_id: Some(message_id.trim_matches(['<', '>']).to_owned()),
                status: DeliveryStatus::Sent,
                cost: None,
            },
            Err(error) => read_smtp_error(&error),
        }
    }
}

// =============================================================================================
// Inbound: SendGrid Inbound Parse
// =============================================================================================

/// One part of a `multipart/form-data` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormField {
    pub name: String,
    /// The file name, for an attachment.
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    /// The part's bytes as sent.
    pub value: Vec<u8>,
}

/// The SMTP envelope SendGrid saw (`envelope`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub from: String,
}

/// The fields of an Inbound Parse POST that this adapter reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboundParse {
    pub from: Option<String>,
    pub to: Option<String>,
    pub cc: Option<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    /// The raw header block of the mail.
    pub headers: Option<String>,
    pub envelope: Option<Envelope>,
    pub spam_score: Option<String>,
    pub sender_ip: Option<String>,
    /// The attachments' file names, in order.
    pub attachments: Vec<String>,
}

/// Splits a `multipart/form-data` body (`content_type` is the request's `Content-Type`, with
/// its boundary) into its parts.
///
/// # Errors
///
/// Not multipart/form-data, no boundary, or not readable as MIME.
pub fn parse_form(content_type: &str, body: &[u8]) -> Result<Vec<FormField>, ParseError> {
    let unexpected = |what: &str| ParseError::Unexpected(what.to_owned());
    let lower = content_type.trim().to_ascii_lowercase();
    if !lower.starts_with("multipart/form-data") || !lower.contains("boundary=") {
        return Err(unexpected("not multipart/form-data with a boundary"));
    }
    if content_type.contains(['\r', '\n']) {
        return Err(unexpected("a line break in the content type"));
    }
    // The body is MIME multipart (RFC 7578 over RFC 2046): given the request's Content-Type as
    // its header, a MIME reader splits it.
    let mut document = Vec::with_capacity(body.len() + content_type.len() + 20);
    document.extend_from_slice(b"Content-Type: ");
    document.extend_from_slice(content_type.trim().as_bytes());
    document.extend_from_slice(b"\r\n\r\n");
    document.extend_from_slice(body);
    let message =
        MessageParser::default().parse(&document).ok_or_else(|| unexpected("unreadable MIME"))?;
    let mut fields = Vec::new();
    for part in message.parts.iter().skip(1) {
        let Some(disposition) = part.content_disposition() else { continue };
        let Some(name) = disposition.attribute("name") else { continue };
        let start = usize::try_from(part.raw_body_offset()).unwrap_or(usize::MAX);
        let end = usize::try_from(part.raw_end_offset()).unwrap_or(usize::MAX);
        let value = document.get(start..end.max(start)).unwrap_or_default();
        fields.push(FormField {
            name: name.to_owned(),
            file_name: disposition.attribute("filename").map(str::to_owned),
            content_type: part.content_type().map(|kind| match kind.subtype() {
                Some(subtype) => format!("{}/{subtype}", kind.ctype()),
                None => kind.ctype().to_owned(),
            }),
            value: value.to_vec(),
        });
    }
    Ok(fields)
}

/// Reads an Inbound Parse POST's fields, each text decoded in the charset `charsets` gives
/// it (UTF-8 by default).
///
/// # Errors
///
/// See [`parse_form`].
pub fn read_inbound_parse_form(
    content_type: &str,
    body: &[u8],
) -> Result<InboundParse, ParseError> {
    let fields = parse_form(content_type, body)?;
    let charsets: HashMap<String, String> = fields
        .iter()
        .find(|field| field.name == "charsets")
        .and_then(|field| serde_json::from_slice(&field.value).ok())
        .unwrap_or_default();
    let mut parse = InboundParse::default();
    for field in &fields {
        if field.file_name.is_some() {
            parse.attachments.push(field.file_name.clone().unwrap_or_default());
            continue;
        }
        let text = decode(&field.value, charsets.get(&field.name).map(String::as_str));
        let slot = match field.name.as_str() {
            "from" => &mut parse.from,
            "to" => &mut parse.to,
            "cc" => &mut parse.cc,
            "subject" => &mut parse.subject,
            "text" => &mut parse.text,
            "html" => &mut parse.html,
            "headers" => &mut parse.headers,
            "spam_score" => &mut parse.spam_score,
            "sender_ip" => &mut parse.sender_ip,
            "envelope" => {
                parse.envelope = serde_json::from_str(&text).ok();
                continue;
            }
            _ => continue,
        };
        *slot = Some(text);
    }
    Ok(parse)
}

fn decode(bytes: &[u8], charset: Option<&str>) -> String {
    match charset.map(str::trim) {
        Some(charset) if !charset.eq_ignore_ascii_case("utf-8") && !charset.is_empty() => {
            match mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes()) {
                Some(decoder) => decoder(bytes),
                None => String::from_utf8_lossy(bytes).into_owned(),
            }
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The Message-ID, In-Reply-To and Date of a raw header block, ids without angle brackets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreadHeaders {
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub date: Option<DateTime<Utc>>,
}

/// Reads the threading headers of a raw header block (`headers` of Inbound Parse).
pub fn read_thread_headers(headers: &str) -> ThreadHeaders {
    let mut block = headers.replace("\r\n", "\n").trim_end().replace('\n', "\r\n");
    block.push_str("\r\n\r\n");
    let Some(message) = MessageParser::default().parse_headers(block.as_bytes()) else {
        return ThreadHeaders::default();
    };
    let ids = |value: &mail_parser::HeaderValue<'_>| -> Vec<String> {
        match value {
            mail_parser::HeaderValue::Text(id) => vec![id.to_string()],
            mail_parser::HeaderValue::TextList(ids) => {
                ids.iter().map(ToString::to_string).collect()
            }
            _ => Vec::new(),
        }
    };
    ThreadHeaders {
        message_id: message.message_id().map(str::to_owned),
        in_reply_to: ids(message.in_reply_to()).into_iter().next(),
        references: ids(message.references()),
        date: message
            .date()
            .and_then(|date| DateTime::<Utc>::from_timestamp(date.to_timestamp(), 0)),
    }
}

/// The bare address in `Name <a@b>` or `a@b`.
fn bare_address(text: &str) -> Option<String> {
    let text = text.trim();
    let inner = match (text.rfind('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close => &text[open + 1..close],
        _ => text,
    };
    let inner = inner.trim();
    is_valid_address(inner).then(|| inner.to_owned())
}

/// The addresses of a header's list (`a@b, "C" <c@d>`).
fn address_list(text: &str) -> Vec<String> {
    // Commas inside a quoted display name do not split it.
    let mut addresses = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for character in text.chars() {
        match character {
            '"' => {
                quoted = !quoted;
                current.push(character);
            }
            ',' if !quoted => {
                addresses.extend(bare_address(&current));
                current.clear();
            }
            _ => current.push(character),
        }
    }
    addresses.extend(bare_address(&current));
    addresses
}

/// Reads an Inbound Parse POST as the message a customer sent: the customer is the envelope's
/// sender (the `from` field's address without one), our channel number the envelope's first
/// recipient (else the `to` field's first address), the provider message id the mail's
/// Message-ID and `in_reply_to` its In-Reply-To (the Message-ID of ours that it answers).
///
/// # Errors
///
/// See [`parse_form`]; also a POST with no sender or no recipient.
pub fn read_inbound_parse(content_type: &str, body: &[u8]) -> Result<Inbound, ParseError> {
    inbound(&read_inbound_parse_form(content_type, body)?)
}

/// [`read_inbound_parse`] from the fields already read.
///
/// # Errors
///
/// No sender or no recipient.
pub fn inbound(parse: &InboundParse) -> Result<Inbound, ParseError> {
    let envelope = parse.envelope.clone().unwrap_or_default();
    let customer = bare_address(&envelope.from)
        .or_else(|| parse.from.as_deref().and_then(|from| address_list(from).into_iter().next()))
        .ok_or_else(|| ParseError::Unexpected("no sender address".into()))?;
    let channel_number = envelope
        .to
        .iter()
        .find_map(|to| bare_address(to))
        .or_else(|| parse.to.as_deref().and_then(|to| address_list(to).into_iter().next()))
        .ok_or_else(|| ParseError::Unexpected("no recipient address".into()))?;
    let thread = parse.headers.as_deref().map(read_thread_headers).unwrap_or_default();
    let email = Email {
        subject: parse.subject.clone().unwrap_or_default(),
        plain: parse.text.clone().unwrap_or_default(),
        html: parse.html.clone().filter(|html| !html.is_empty()),
        cc: parse.cc.as_deref().map(address_list).unwrap_or_default(),
        bcc: Vec::new(),
    };
    Ok(Inbound {
        channel: Channel::Email,
        customer,
        channel_number,
        provider_message_id: thread.message_id,
        session_id: None,
        in_reply_to: thread.in_reply_to,
        parts: vec![InboundPart::Email(email)],
        cost: None,
        received_at: thread.date,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn email() -> Email {
        Email {
            subject: "Your statement".into(),
            plain: "Hello\n.\nBye".into(),
            html: Some("<p>Hello</p>".into()),
            cc: vec!["Ops <ops@example.com>".into()],
            bcc: vec!["audit@example.com".into()],
        }
    }

    #[test]
    fn a_message_carries_our_id_the_thread_and_both_bodies() {
        let reply = Reply { in_reply_to: "abc@customer.example".into(), references: vec![] };
        let message = build_message(
            "Hazina <hello@hazina.example>",
            "jane@customer.example",
            &email(),
            "0190@hazina.example",
            Some(&reply),
        )
        .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("Message-ID: <0190@hazina.example>"), "{text}");
        assert!(text.contains("In-Reply-To: <abc@customer.example>"), "{text}");
        assert!(text.contains("References: <abc@customer.example>"), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(text.contains("Cc: Ops <ops@example.com>"), "{text}");
        assert!(!text.contains("audit@example.com"), "Bcc must not be a header: {text}");
        let envelope = message.envelope();
        assert_eq!(envelope.to().len(), 3);
    }

    #[test]
    fn invalid_addresses_are_refused_by_field() {
        let error = build_message("hello@hazina.example", "not an address", &email(), "x@y", None)
            .unwrap_err();
        assert!(matches!(error, BuildError::InvalidAddress { field: "to", .. }), "{error}");
        assert!(!is_valid_address("a@"));
        assert!(is_valid_address("a@b.example"));
    }

    #[test]
    fn smtp_replies_map_to_delivery_statuses() {
        let refused = |result: SendResult| match result {
            SendResult::Refused { status, .. } => Some(status),
            _ => None,
        };
        assert_eq!(
            refused(read_smtp_reply(550, "5.1.1 <x@y>: Recipient address rejected: User unknown")),
            Some(DeliveryStatus::CustomerNumberNotFound)
        );
        assert_eq!(
            refused(read_smtp_reply(550, "No such user")),
            Some(DeliveryStatus::CustomerNumberNotFound)
        );
        assert_eq!(
            refused(read_smtp_reply(550, "5.7.1 Message rejected as spam")),
            Some(DeliveryStatus::Rejected)
        );
        assert_eq!(
            refused(read_smtp_reply(554, "Transaction failed")),
            Some(DeliveryStatus::Rejected)
        );
        assert!(matches!(read_smtp_reply(451, "4.3.0 Try again later"), SendResult::Retry { .. }));
    }

    #[test]
    fn thread_headers_are_read_without_brackets() {
        let headers = "Received: by mx.example\nMessage-ID: <CAF=abc@mail.gmail.com>\nIn-Reply-To: <0190@hazina.example>\nReferences: <a@x> <0190@hazina.example>\nDate: Tue, 3 Jun 2025 04:43:02 +0100\nSubject: Re: hi\n";
        let thread = read_thread_headers(headers);
        assert_eq!(thread.message_id.as_deref(), Some("CAF=abc@mail.gmail.com"));
        assert_eq!(thread.in_reply_to.as_deref(), Some("0190@hazina.example"));
        assert_eq!(thread.references, ["a@x", "0190@hazina.example"]);
        assert_eq!(thread.date.unwrap().to_rfc3339(), "2025-06-03T03:43:02+00:00");
    }

    #[test]
    fn address_lists_keep_commas_inside_names() {
        assert_eq!(
            address_list(r#""Doe, Jane" <jane@x.example>, bob@y.example, nonsense"#),
            ["jane@x.example", "bob@y.example"]
        );
    }
}
