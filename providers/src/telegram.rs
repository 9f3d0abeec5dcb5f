//! Telegram Bot API: the send methods' bodies built from a [`Body`], their answers read as a
//! [`SendResult`], webhook `Update`s read as an [`Inbound`] and an opt-in or opt-out, the
//! `X-Telegram-Bot-Api-Secret-Token` check, and a thin client over [`HttpClient`].
//!
//! Wire facts (core.telegram.org/bots/api, "Making requests", `Update`, `Message`,
//! `ChatMemberUpdated`, `setWebhook`): a method is `POST {base}/bot<token>/<method>` with a JSON
//! body; every answer is `{"ok":true,"result":…}` or `{"ok":false,"error_code":…,
//! "description":"…","parameters":{"retry_after":…,"migrate_to_chat_id":…}}`. Chat ids need up
//! to 52 bits, so they are `i64`. Telegram has no delivery or read receipts for bots: an
//! accepted send is [`DeliveryStatus::Sent`] and nothing later changes it.
//!
//! The bot token is part of every URL. It lives in a [`Secret`]; no error, log line or `Debug`
//! output of this module carries it or a URL built from it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::http::{HeaderText, HttpClient, HttpError, HttpRequest};
use crate::messaging::{
    Body, Channel, DeliveryStatus, Inbound, InboundPart, Location, Media, MediaType, SendResult,
    Verified,
};
use crate::{ParseError, Secret};

/// The Bot API's address.
pub const API_BASE: &str = "https://api.telegram.org";

/// The header Telegram puts the webhook's `secret_token` in.
pub const SECRET_TOKEN_HEADER: &str = "x-telegram-bot-api-secret-token";

// =============================================================================================
// Requests
// =============================================================================================

/// A chat as a send method names it: a numeric id, or `@channelusername`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatId {
    Id(i64),
    Username(String),
}

impl ChatId {
    /// The chat our customer address names: an integer is a chat id, `@name` a public channel.
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidChat`] for anything else.
    pub fn parse(customer: &str) -> Result<Self, BuildError> {
        let customer = customer.trim();
        if let Ok(id) = customer.parse::<i64>() {
            return Ok(Self::Id(id));
        }
        let username = customer.strip_prefix('@').unwrap_or_default();
        if !username.is_empty() && username.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Ok(Self::Username(customer.to_owned()));
        }
        Err(BuildError::InvalidChat)
    }
}

impl std::fmt::Display for ChatId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{id}"),
            Self::Username(name) => f.write_str(name),
        }
    }
}

/// Which message a send replies to (`reply_parameters`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyParameters {
    pub message_id: i64,
    /// Send even when the replied message is gone, rather than fail.
    #[serde(default)]
    pub allow_sending_without_reply: bool,
}

/// The body of one send method (`sendMessage`, `sendPhoto`, …, `sendLocation`): the fields the
/// method takes, the rest left out.
#[derive(Clone, Debug, Serialize)]
pub struct SendBody {
    pub chat_id: ChatId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `MarkdownV2`, `HTML` or `Markdown`, for `text` and `caption`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sticker: Option<String>,
    /// Decimal degrees written as the JSON number they are, never through a float.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latitude: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longitude: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_parameters: Option<ReplyParameters>,
}

impl SendBody {
    fn new(chat_id: ChatId) -> Self {
        Self {
            chat_id,
            text: None,
            parse_mode: None,
            caption: None,
            photo: None,
            document: None,
            audio: None,
            video: None,
            voice: None,
            sticker: None,
            latitude: None,
            longitude: None,
            reply_parameters: None,
        }
    }
}

/// A send ready to go: the method's name and its body.
#[derive(Clone, Debug)]
pub struct SendRequest {
    /// `sendMessage`, `sendPhoto`, `sendDocument`, `sendAudio`, `sendVideo`, `sendVoice`,
    /// `sendSticker` or `sendLocation`.
    pub method: &'static str,
    pub body: SendBody,
}

/// How to send, beyond what the [`Body`] says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// `parse_mode` for a text or a caption (`MarkdownV2`, `HTML`); plain text when `None`.
    pub parse_mode: Option<String>,
    /// The provider message id (`"<chat_id>:<message_id>"`, as [`Inbound`] and
    /// [`SendResult`] give it) of the message this one replies to.
    pub reply_to: Option<String>,
}

/// Why a send could not be built. Nothing was sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// Telegram has no message of this kind (`template`, `email`, `url`, `ussd`, `voice`, a
    /// media of type `contact`).
    #[error("telegram cannot send a {0} message")]
    Unsupported(&'static str),
    #[error("the customer is not a telegram chat id or @channel")]
    InvalidChat,
    #[error("the message replied to is not a telegram message id")]
    InvalidReplyTo,
    #[error("a coordinate is not a number")]
    InvalidLocation,
}

/// The send method and body for `body` to the chat `customer` names.
///
/// # Errors
///
/// See [`BuildError`].
pub fn build_send(
    customer: &str,
    body: &Body,
    options: &SendOptions,
) -> Result<SendRequest, BuildError> {
    let mut send = SendBody::new(ChatId::parse(customer)?);
    if let Some(reply_to) = &options.reply_to {
        let message_id = reply_to
            .rsplit_once(':')
            .map_or(reply_to.as_str(), |(_, id)| id)
            .parse::<i64>()
            .map_err(|_| BuildError::InvalidReplyTo)?;
        send.reply_parameters =
            Some(ReplyParameters { message_id, allow_sending_without_reply: true });
    }
    let method = match body {
        Body::Text { text } => {
            send.text = Some(text.clone());
            send.parse_mode.clone_from(&options.parse_mode);
            "sendMessage"
        }
        Body::Media(media) => {
            let url = Some(media.url.clone());
            let method = match media.media {
                MediaType::Image => {
                    send.photo = url;
                    "sendPhoto"
                }
                MediaType::Document => {
                    send.document = url;
                    "sendDocument"
                }
                MediaType::Audio => {
                    send.audio = url;
                    "sendAudio"
                }
                MediaType::Video => {
                    send.video = url;
                    "sendVideo"
                }
                MediaType::Voice => {
                    send.voice = url;
                    "sendVoice"
                }
                MediaType::Sticker => {
                    send.sticker = url;
                    "sendSticker"
                }
                MediaType::Contact => return Err(BuildError::Unsupported("contact")),
            };
            // Stickers take no caption.
            if media.media != MediaType::Sticker {
                send.caption.clone_from(&media.caption);
                if send.caption.is_some() {
                    send.parse_mode.clone_from(&options.parse_mode);
                }
            }
            method
        }
        Body::Location(location) => {
            send.latitude = Some(number(location.latitude)?);
            send.longitude = Some(number(location.longitude)?);
            "sendLocation"
        }
        other => return Err(BuildError::Unsupported(other.kind())),
    };
    Ok(SendRequest { method, body: send })
}

/// A decimal as a JSON number, exactly as written.
fn number(value: Decimal) -> Result<Box<RawValue>, BuildError> {
    RawValue::from_string(value.normalize().to_string()).map_err(|_| BuildError::InvalidLocation)
}

// =============================================================================================
// Answers
// =============================================================================================

/// Every Bot API answer.
#[derive(Clone, Debug, Deserialize)]
pub struct ApiResponse<T> {
    pub ok: bool,
    pub result: Option<T>,
    pub error_code: Option<i64>,
    pub description: Option<String>,
    pub parameters: Option<ResponseParameters>,
}

/// Why a request failed and what to do about it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ResponseParameters {
    /// Flood control: wait this many seconds before the next request.
    pub retry_after: Option<u64>,
    /// The group became this supergroup: send there instead.
    pub migrate_to_chat_id: Option<i64>,
}

/// A Telegram user or bot.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub language_code: Option<String>,
}

/// A chat (private, group, supergroup or channel).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Chat {
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`; absent in some old examples.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub title: Option<String>,
    pub username: Option<String>,
}

/// One size of a photo.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PhotoSize {
    pub file_id: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub file_size: Option<u64>,
}

/// A file attached to a message (document, audio, video, voice, sticker).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FileRef {
    pub file_id: String,
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    pub file_size: Option<u64>,
}

/// A point on the map as Telegram sends it: floats on the wire, read here as exact decimals
/// from their text.
#[derive(Clone, Debug, Deserialize)]
pub struct WireLocation {
    pub latitude: Box<RawValue>,
    pub longitude: Box<RawValue>,
}

/// A message (what a send returns, and what an update carries).
#[derive(Clone, Debug, Deserialize)]
pub struct Message {
    pub message_id: i64,
    pub from: Option<User>,
    pub chat: Chat,
    /// Unix seconds.
    #[serde(default)]
    pub date: i64,
    pub text: Option<String>,
    pub caption: Option<String>,
    #[serde(default)]
    pub photo: Vec<PhotoSize>,
    pub document: Option<FileRef>,
    pub audio: Option<FileRef>,
    pub video: Option<FileRef>,
    pub voice: Option<FileRef>,
    pub sticker: Option<FileRef>,
    pub location: Option<WireLocation>,
    pub reply_to_message: Option<Box<Message>>,
}

/// A chat member's status (`creator`, `administrator`, `member`, `restricted`, `left`,
/// `kicked`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ChatMember {
    pub status: String,
    pub user: Option<User>,
}

/// The bot's own membership of a chat changed; in a private chat, `kicked` means the user
/// blocked the bot, and `member` after it that they unblocked it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ChatMemberUpdated {
    pub chat: Chat,
    pub from: Option<User>,
    #[serde(default)]
    pub date: i64,
    pub old_chat_member: Option<ChatMember>,
    pub new_chat_member: ChatMember,
}

/// A webhook delivery. At most one of the optional fields is present; those this adapter
/// does not read (`inline_query`, `callback_query`, …) are ignored.
#[derive(Clone, Debug, Deserialize)]
pub struct Update {
    /// Increases by one per update: dedupe and order on it.
    pub update_id: i64,
    pub message: Option<Message>,
    pub edited_message: Option<Message>,
    pub channel_post: Option<Message>,
    pub my_chat_member: Option<ChatMemberUpdated>,
}

/// What one send's answer says, and how long Telegram asked us to wait before the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendOutcome {
    pub result: SendResult,
    /// Flood control's `retry_after`, when it said.
    pub retry_after: Option<Duration>,
}

/// The provider message id of a message: `"<chat_id>:<message_id>"` (message ids are only
/// unique within their chat).
pub fn provider_message_id(chat_id: i64, message_id: i64) -> String {
    format!("{chat_id}:{message_id}")
}

/// Reads the answer to a send (`status` is the HTTP status)
/// as what it means for the message (core.telegram.org/bots/api, "Making requests"; the mapping
/// is messaging.md §9): `ok` is [`DeliveryStatus::Sent`] under `"<chat_id>:<message_id>"`; 403
/// (the user blocked the bot, a deactivated user, a kicked bot) is
/// [`DeliveryStatus::NoConsent`]; 400 "chat not found" or a migrated group is
/// [`DeliveryStatus::CustomerNumberNotFound`]; 429 and 5xx are to be retried; 401 and 404 (a
/// wrong token) are [`DeliveryStatus::ApplicationError`].
pub fn read_send_response(status: u16, body: &[u8]) -> SendOutcome {
    let outcome = |result| SendOutcome { result, retry_after: None };
    let Ok(answer) = serde_json::from_slice::<ApiResponse<Message>>(body) else {
        // An answer we cannot read: the HTTP status alone decides.
        return outcome(match status {
            200..=299 => SendResult::Accepted {
                provider_message_id: None,
                status: DeliveryStatus::Sent,
                cost: None,
            },
            429 | 500..=599 => SendResult::Retry { reason: format!("HTTP {status}") },
            _ => SendResult::Refused {
                status: DeliveryStatus::Rejected,
                reason: format!("HTTP {status} with an unreadable body"),
            },
        });
    };
    if answer.ok {
        let id = answer.result.as_ref().map(|message| {
            let chat_id = message.chat.id;
            provider_message_id(chat_id, message.message_id)
        });
        return outcome(SendResult::Accepted {
            provider_message_id: id,
            status: DeliveryStatus::Sent,
            cost: None,
        });
    }
    let code = answer.error_code.and_then(|code| u16::try_from(code).ok()).unwrap_or(status);
    let description = answer.description.unwrap_or_default();
    let parameters = answer.parameters.unwrap_or_default();
    let reason = format!("{code} {description}").trim().to_owned();
    let refused = |status| SendResult::Refused { status, reason: reason.clone() };
    let lower = description.to_ascii_lowercase();
    let result = match code {
        429 => {
            let retry_after = parameters.retry_after.map(Duration::from_secs);
            return SendOutcome { result: SendResult::Retry { reason }, retry_after };
        }
        500..=599 => SendResult::Retry { reason },
        403 => refused(DeliveryStatus::NoConsent),
        400 if parameters.migrate_to_chat_id.is_some() => {
            let to = parameters.migrate_to_chat_id.unwrap_or_default();
            SendResult::Refused {
                status: DeliveryStatus::CustomerNumberNotFound,
                reason: format!("{reason} (the group is now chat {to})"),
            }
        }
        400 if lower.contains("chat not found") || lower.contains("user not found") => {
            refused(DeliveryStatus::CustomerNumberNotFound)
        }
        400 | 413 => refused(DeliveryStatus::InvalidRequest),
        401 | 404 | 409 => refused(DeliveryStatus::ApplicationError),
        _ => refused(DeliveryStatus::Rejected),
    };
    outcome(result)
}

// =============================================================================================
// Webhook
// =============================================================================================

/// Whether the `X-Telegram-Bot-Api-Secret-Token` header carries the `secret_token` given to
/// `setWebhook`, compared in constant time. A missing header is [`Verified::No`].
pub fn verify_secret_token(header: Option<&[u8]>, expected: &Secret) -> Verified {
    let Some(header) = header else { return Verified::No };
    let expected = expected.expose().as_bytes();
    // Every byte of the expected token is compared whatever the header holds, so the time
    // taken says nothing about how much of it matched.
    let mut difference = u8::from(header.len() != expected.len());
    for (index, byte) in expected.iter().enumerate() {
        difference |= byte ^ header.get(index).copied().unwrap_or(0);
    }
    if difference == 0 && !expected.is_empty() { Verified::Yes } else { Verified::No }
}

/// A customer's consent to hear from the bot, as an update told it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consent {
    /// `/start`, or the user unblocked the bot.
    OptIn,
    /// `/stop`, or the user blocked the bot (`my_chat_member` with status `kicked`).
    OptOut,
}

/// What one update says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadUpdate {
    pub update_id: i64,
    /// The message the customer sent, if the update is one (a `message` or `channel_post`;
    /// edits and other kinds are not messages to us).
    pub inbound: Option<Inbound>,
    /// An opt-in or opt-out, for the chat `customer`.
    pub consent: Option<(String, Consent)>,
}

/// Reads a webhook body. `bot_name` is our channel number (the bot's username).
///
/// # Errors
///
/// The body is not an `Update`.
pub fn read_update(body: &[u8], bot_name: &str) -> Result<ReadUpdate, ParseError> {
    let update: Update = serde_json::from_slice(body)?;
    let mut read = ReadUpdate { update_id: update.update_id, inbound: None, consent: None };
    if let Some(message) = update.message.as_ref().or(update.channel_post.as_ref()) {
        let customer = message.chat.id.to_string();
        read.consent = command(message.text.as_deref()).map(|consent| (customer, consent));
        read.inbound = Some(inbound(message, bot_name));
    } else if let Some(member) = &update.my_chat_member {
        let customer = member.chat.id.to_string();
        let was = member.old_chat_member.as_ref().map(|member| member.status.as_str());
        read.consent = match (was, member.new_chat_member.status.as_str()) {
            (_, "kicked") => Some((customer, Consent::OptOut)),
            (Some("kicked"), "member") => Some((customer, Consent::OptIn)),
            _ => None,
        };
    }
    Ok(read)
}

/// `/start` or `/stop` (also addressed as `/stop@bot`, and with a payload after a space).
fn command(text: Option<&str>) -> Option<Consent> {
    let first = text?.split_whitespace().next()?;
    let name = first.split_once('@').map_or(first, |(name, _)| name);
    match name {
        "/start" => Some(Consent::OptIn),
        "/stop" => Some(Consent::OptOut),
        _ => None,
    }
}

fn inbound(message: &Message, bot_name: &str) -> Inbound {
    let chat_id = message.chat.id;
    let mut parts = Vec::new();
    let caption = message.caption.clone();
    let file = |media: MediaType, file: &FileRef| {
        InboundPart::Media(Media { url: file_url(&file.file_id), media, caption: caption.clone() })
    };
    if let Some(largest) = message.photo.iter().max_by_key(|size| {
        (u64::from(size.width.unwrap_or(0)) * u64::from(size.height.unwrap_or(0)), size.file_size)
    }) {
        parts.push(InboundPart::Media(Media {
            url: file_url(&largest.file_id),
            media: MediaType::Image,
            caption: caption.clone(),
        }));
    }
    for (media, attached) in [
        (MediaType::Document, &message.document),
        (MediaType::Audio, &message.audio),
        (MediaType::Video, &message.video),
        (MediaType::Voice, &message.voice),
        (MediaType::Sticker, &message.sticker),
    ] {
        if let Some(attached) = attached {
            parts.push(file(media, attached));
        }
    }
    if let Some(text) = &message.text {
        parts.push(InboundPart::Text { text: text.clone() });
    }
    if let Some(location) = &message.location
        && let (Some(latitude), Some(longitude)) =
            (decimal(&location.latitude), decimal(&location.longitude))
    {
        parts.push(InboundPart::Location(Location {
            latitude,
            longitude,
            label: None,
            address: None,
        }));
    }
    Inbound {
        channel: Channel::Telegram,
        customer: chat_id.to_string(),
        channel_number: bot_name.to_owned(),
        provider_message_id: Some(provider_message_id(chat_id, message.message_id)),
        session_id: None,
        in_reply_to: message
            .reply_to_message
            .as_ref()
            .map(|replied| provider_message_id(replied.chat.id, replied.message_id)),
        parts,
        cost: None,
        received_at: DateTime::<Utc>::from_timestamp(message.date, 0).filter(|_| message.date > 0),
    }
}

/// Where an inbound file is: Telegram gives a `file_id`, which `getFile` turns into a download
/// path under the bot's token; the token must not be stored, so the id is kept as
/// `telegram:file/<file_id>`.
pub fn file_url(file_id: &str) -> String {
    format!("telegram:file/{file_id}")
}

/// A JSON number's text as an exact decimal (plain or scientific).
fn decimal(raw: &RawValue) -> Option<Decimal> {
    let text = raw.get().trim();
    text.parse::<Decimal>().ok().or_else(|| Decimal::from_scientific(text).ok())
}

// =============================================================================================
// Client
// =============================================================================================

/// Where the Bot API is and which bot speaks.
#[derive(Clone, Debug)]
pub struct Config {
    /// [`API_BASE`], or the simulator's `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    /// The bot's token (`123456:ABC-…`), which Telegram wants in the path.
    pub token: Secret,
}

/// The thin Bot API client.
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

    /// Sends `body` to the chat `customer` names and reads the answer
    /// ([`read_send_response`]). A body Telegram cannot carry, or a customer that is no chat,
    /// is refused as [`DeliveryStatus::InvalidRequest`] or [`DeliveryStatus::NotSupported`]
    /// without a request.
    pub async fn send(&self, customer: &str, body: &Body, options: &SendOptions) -> SendOutcome {
        let request = match build_send(customer, body, options) {
            Ok(request) => request,
            Err(error) => {
                let status = match error {
                    BuildError::Unsupported(_) => DeliveryStatus::NotSupported,
                    _ => DeliveryStatus::InvalidRequest,
                };
                return SendOutcome {
                    result: SendResult::Refused { status, reason: error.to_string() },
                    retry_after: None,
                };
            }
        };
        self.call(&request).await
    }

    /// Sends a built request.
    pub async fn call(&self, request: &SendRequest) -> SendOutcome {
        let refused = |status, reason: String| SendOutcome {
            result: SendResult::Refused { status, reason },
            retry_after: None,
        };
        let Ok(body) = serde_json::to_vec(&request.body) else {
            return refused(
                DeliveryStatus::ApplicationError,
                "the request could not be written".into(),
            );
        };
        let url = format!(
            "{}/bot{}/{}",
            self.config.base_url.trim_end_matches('/'),
            self.config.token.expose(),
            request.method
        );
        let http = HttpRequest {
            method: hyper::Method::POST,
            url,
            headers: vec![("content-type", HeaderText::Plain("application/json".to_owned()))],
            body: Some(body),
        };
        match self.http.send(http).await {
            Ok(response) => read_send_response(response.status, &response.body),
            // None of these carries the URL, and so none carries the token.
            Err(HttpError::InvalidRequest(reason)) => {
                refused(DeliveryStatus::ApplicationError, format!("not sent: {reason}"))
            }
            Err(error) => SendOutcome {
                result: SendResult::Retry { reason: error.to_string() },
                retry_after: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn chat_ids_are_integers_or_channel_names() {
        assert_eq!(ChatId::parse("-1001234567890"), Ok(ChatId::Id(-1_001_234_567_890)));
        assert_eq!(ChatId::parse("@news_feed"), Ok(ChatId::Username("@news_feed".into())));
        assert_eq!(ChatId::parse("news"), Err(BuildError::InvalidChat));
        assert_eq!(ChatId::parse("@"), Err(BuildError::InvalidChat));
    }

    #[test]
    fn a_location_goes_as_exact_json_numbers() {
        let body = Body::Location(Location {
            latitude: "-1.292066".parse().unwrap(),
            longitude: "36.821945".parse().unwrap(),
            label: None,
            address: None,
        });
        let request = build_send("42", &body, &SendOptions::default()).unwrap();
        assert_eq!(request.method, "sendLocation");
        assert_eq!(
            serde_json::to_string(&request.body).unwrap(),
            r#"{"chat_id":42,"latitude":-1.292066,"longitude":36.821945}"#
        );
    }

    #[test]
    fn the_secret_token_must_match_exactly() {
        let secret = Secret::new("s3cr3t_T-ok");
        assert_eq!(verify_secret_token(Some(b"s3cr3t_T-ok"), &secret), Verified::Yes);
        assert_eq!(verify_secret_token(Some(b"s3cr3t_T-o"), &secret), Verified::No);
        assert_eq!(verify_secret_token(Some(b"s3cr3t_T-okk"), &secret), Verified::No);
        assert_eq!(verify_secret_token(Some(b""), &secret), Verified::No);
        assert_eq!(verify_secret_token(None, &secret), Verified::No);
        assert_eq!(verify_secret_token(Some(b""), &Secret::new("")), Verified::No);
    }

    #[test]
    fn commands_may_name_the_bot_and_carry_a_payload() {
        assert_eq!(command(Some("/start")), Some(Consent::OptIn));
        assert_eq!(command(Some("/start ref-42")), Some(Consent::OptIn));
        assert_eq!(command(Some("/stop@hazina_bot")), Some(Consent::OptOut));
        assert_eq!(command(Some("stop")), None);
        assert_eq!(command(Some("/stopped")), None);
        assert_eq!(command(None), None);
    }

    #[test]
    fn the_token_stays_out_of_debug_output() {
        let client = Client::new(
            Config { base_url: API_BASE.into(), token: Secret::new("123456:ABC-DEF") },
            HttpClient::default(),
        );
        assert!(!format!("{client:?}").contains("ABC-DEF"));
    }
}
