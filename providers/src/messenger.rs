//! Facebook Messenger Send API (Meta): the send request (`POST /{version}/me/messages`, or a
//! page id for `me`) built from a [`Body`], its answer and errors as a [`SendResult`], and the
//! page webhook (`object: page`) read into [`StatusUpdate`]s, [`Inbound`] messages and
//! [`Watermark`]s. Wire facts: `reference/messaging.md` §7; error codes from
//! developers.facebook.com/docs/messenger-platform/reference/send-api/error-codes (code 10,
//! subcode 2018278: "This message is sent outside of allowed window"; 551: the person is not
//! available; 613: calls exceed the rate limit; 100/2018001: no matching user).
//!
//! Messenger reports delivery and reading by *watermark*: everything sent to the customer
//! before that time was delivered (or read). A delivery may also list message ids (`mids`),
//! which become [`StatusUpdate`]s directly; the watermark itself must be applied by the server
//! to every earlier message to that customer.
//!
//! Signatures and the verification handshake are in [`crate::meta`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ParseError;
use crate::messaging::{
    Body, Channel, DeliveryStatus, Inbound, InboundPart, Location, Media, MediaType, SendResult,
    StatusUpdate,
};
pub use crate::meta::BuildError;
use crate::meta::{ErrorMeaning, GraphError};
use crate::wire::Text;

/// The `object` of a Messenger webhook.
pub const WEBHOOK_OBJECT: &str = "page";

/// The message tags the Send API takes with `MESSAGE_TAG` (messaging.md §7, and `HUMAN_AGENT`
/// for replies by a person within 7 days).
pub const TAGS: [&str; 5] = [
    "ACCOUNT_UPDATE",
    "CONFIRMED_EVENT_UPDATE",
    "POST_PURCHASE_UPDATE",
    "CUSTOMER_FEEDBACK",
    "HUMAN_AGENT",
];

/// A message tag: what lets a non-promotional message go outside the customer's 24-hour
/// window (`messaging_type` `MESSAGE_TAG`). Meta takes one inside the window too. Spelled as
/// the Send API spells it, in the platform's API too (`providerTag`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageTag {
    /// A non-recurring change to the customer's account or application.
    AccountUpdate,
    /// A reminder or update of an event the customer registered for.
    ConfirmedEventUpdate,
    /// An update on a recent purchase: a receipt, shipping, an order's change.
    PostPurchaseUpdate,
    /// A feedback survey, within 7 days of the customer's last message.
    CustomerFeedback,
    /// A person's answer to the customer, within 7 days of the customer's last message.
    HumanAgent,
}

impl MessageTag {
    /// Every tag, in the order of [`TAGS`].
    pub const ALL: [Self; 5] = [
        Self::AccountUpdate,
        Self::ConfirmedEventUpdate,
        Self::PostPurchaseUpdate,
        Self::CustomerFeedback,
        Self::HumanAgent,
    ];

    /// The tag as the Send API (and the platform's API) spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountUpdate => "ACCOUNT_UPDATE",
            Self::ConfirmedEventUpdate => "CONFIRMED_EVENT_UPDATE",
            Self::PostPurchaseUpdate => "POST_PURCHASE_UPDATE",
            Self::CustomerFeedback => "CUSTOMER_FEEDBACK",
            Self::HumanAgent => "HUMAN_AGENT",
        }
    }

    /// The tag a name spells.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|tag| tag.as_str() == name)
    }

    /// How long after the customer's last message a message with this tag may go, when the
    /// tag has a limit (a person's answer and a feedback survey: 7 days); the others go
    /// whenever.
    #[must_use]
    pub fn since_last_message_max(self) -> Option<chrono::TimeDelta> {
        match self {
            Self::CustomerFeedback | Self::HumanAgent => Some(chrono::TimeDelta::days(7)),
            Self::AccountUpdate | Self::ConfirmedEventUpdate | Self::PostPurchaseUpdate => None,
        }
    }
}

// =============================================================================================
// Send request
// =============================================================================================

/// Why a message is sent, which decides whether the 24-hour window applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessagingType {
    /// A reply to a customer's message, inside the window.
    Response,
    /// A message the page starts, inside the window.
    Update,
    /// A non-promotional update outside the window, with its tag (`ACCOUNT_UPDATE`, …).
    MessageTag(String),
}

/// A Send API body, as Messenger spells it. Read back by the simulator, so its parts are
/// optional on the way in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRequest {
    #[serde(default)]
    pub recipient: Recipient,
    /// `RESPONSE`, `UPDATE` or `MESSAGE_TAG`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_type: Option<String>,
    /// The tag, with `MESSAGE_TAG`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<OutMessage>,
    /// `REGULAR`, `SILENT_PUSH` or `NO_PUSH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_type: Option<String>,
}

/// `recipient`: the customer's page-scoped id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `message`: text (under 2000 characters) or one attachment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// Echoed back in the message echo (under 1000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

/// `message.attachment`: `image`, `audio`, `video`, `file` or `template`, and its payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub payload: AttachmentPayload,
}

/// An attachment's payload: the file by URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_reusable: Option<bool>,
}

/// The send request for `body` to the customer `psid`, sent as `messaging_type` says.
///
/// Text and URLs are `message.text`; media are an attachment by URL (`document` as `file`,
/// `voice` as `audio`, a sticker as `image`).
///
/// # Errors
///
/// [`BuildError::Unsupported`] for what the Send API does not carry here (templates,
/// locations, email, USSD, voice, contact cards); [`BuildError::Invalid`] for an empty
/// recipient, an empty tag, or a caption (a Messenger attachment has none: send the text as
/// its own message).
pub fn build_send(
    psid: &str,
    body: &Body,
    messaging_type: &MessagingType,
) -> Result<SendRequest, BuildError> {
    if psid.trim().is_empty() {
        return Err(BuildError::Invalid("the recipient is empty".into()));
    }
    let (messaging_type, tag) = match messaging_type {
        MessagingType::Response => ("RESPONSE", None),
        MessagingType::Update => ("UPDATE", None),
        MessagingType::MessageTag(tag) if tag.trim().is_empty() => {
            return Err(BuildError::Invalid("MESSAGE_TAG needs a tag".into()));
        }
        MessagingType::MessageTag(tag) => ("MESSAGE_TAG", Some(tag.clone())),
    };
    let message = match body {
        Body::Text { text } | Body::Url { url: text } => {
            OutMessage { text: Some(text.clone()), ..OutMessage::default() }
        }
        Body::Media(media) => {
            let kind = match media.media {
                MediaType::Image | MediaType::Sticker => "image",
                MediaType::Audio | MediaType::Voice => "audio",
                MediaType::Video => "video",
                MediaType::Document => "file",
                MediaType::Contact => return Err(BuildError::Unsupported("contact")),
            };
            if media.caption.is_some() {
                return Err(BuildError::Invalid("a Messenger attachment has no caption".into()));
            }
            OutMessage {
                attachment: Some(Attachment {
                    kind: kind.to_owned(),
                    payload: AttachmentPayload { url: Some(media.url.clone()), is_reusable: None },
                }),
                ..OutMessage::default()
            }
        }
        Body::Template(_)
        | Body::Location(_)
        | Body::Email(_)
        | Body::Ussd { .. }
        | Body::Voice { .. } => return Err(BuildError::Unsupported(body.kind())),
    };
    Ok(SendRequest {
        recipient: Recipient { id: Some(psid.to_owned()) },
        messaging_type: Some(messaging_type.to_owned()),
        tag,
        message: Some(message),
        notification_type: None,
    })
}

// =============================================================================================
// Send answer
// =============================================================================================

/// The answer to a send: `{"recipient_id":"<PSID>","message_id":"<mid>"}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponse {
    /// Absent when the recipient was named by `user_ref` or `phone_number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// The Send API's answer (HTTP status and body; `retry_after` from a `Retry-After` header
/// when the caller saw one) as a [`SendResult`]: 200 with a `message_id` is accepted as
/// [`DeliveryStatus::Sent`]; 429, 5xx, 613 and other transient codes are retries; other error
/// codes map by [`error_meaning`].
pub fn read_send_answer(status: u16, body: &[u8], retry_after: Option<&str>) -> SendResult {
    crate::meta::classify_answer(
        status,
        body,
        retry_after,
        |body| {
            let answer: SendResponse = serde_json::from_slice(body).ok()?;
            Some(SendResult::Accepted {
                provider_message_id: Some(answer.message_id?),
                status: DeliveryStatus::Sent,
                cost: None,
            })
        },
        error_meaning,
    )
}

/// What a Send API error means for a message. Codes not listed are
/// [`DeliveryStatus::Failed`].
pub fn error_meaning(error: &GraphError) -> ErrorMeaning {
    use DeliveryStatus as S;
    let refused = ErrorMeaning::refused;
    match (error.code, error.error_subcode) {
        // Outside the 24-hour window (or without the permission a window-free send needs).
        (10, Some(2_018_278 | 2_018_065 | 2_018_108)) => refused(S::NoSessionInProgress),
        // No matching user found.
        (100, Some(2_018_001)) => refused(S::CustomerNumberNotFound),
        // A tag the Send API does not take: Meta documents no subcode for it, so the message
        // says (inferred).
        (100, _) if error.message.to_ascii_lowercase().contains("tag") => refused(S::TagNotFound),
        (100, _) => refused(S::InvalidRequest),
        // Temporary send failure, unexpected error, rate limits: try again later, then
        // gateway error.
        (2 | 4 | 613 | 1200, _) => ErrorMeaning::retry(),
        // Token and permissions.
        (10 | 190 | 200..=299 | 2500, _) => refused(S::ApplicationError),
        // Abusive behaviour, thread owned by another app, already replied.
        (368 | 10_900 | 10_903, _) => refused(S::Rejected),
        // 551 (this person isn't available right now) and anything unknown.
        _ => refused(S::Failed),
    }
}

// =============================================================================================
// Webhook
// =============================================================================================

/// A webhook POST body: `{"object":"page","entry":[{"id","time","messaging":[…]}]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub object: String,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

/// `entry[]`: one page and its events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The page id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Text>,
    #[serde(default)]
    pub messaging: Vec<Event>,
}

/// `messaging[]`: one event (a message, a delivery, a read, a postback).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Party>,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<InMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<Read>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postback: Option<Postback>,
}

/// `sender` / `recipient`: a PSID or a page id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub id: Text,
}

/// `message`: a customer's message (or, with `is_echo`, ours echoed back).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_echo: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<InAttachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyTo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick_reply: Option<QuickReply>,
}

/// An inbound attachment: `image`, `audio`, `video`, `file`, `location`, `fallback`, ….
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InAttachment {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<InPayload>,
}

/// An inbound attachment's payload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticker_id: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<Coordinates>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A shared location's coordinates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coordinates {
    pub lat: Text,
    pub long: Text,
}

/// `message.reply_to`: the message replied to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
}

/// `message.quick_reply`: the payload of a quick reply tapped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickReply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// `delivery`: the messages delivered (`mids`, when given) and the watermark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mids: Vec<String>,
    pub watermark: Text,
}

/// `read`: the watermark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Read {
    pub watermark: Text,
}

/// `postback`: a button tapped (Get Started, a persistent-menu item, a template button).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Postback {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
}

/// What a watermark reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatermarkStatus {
    Delivered,
    Read,
}

impl WatermarkStatus {
    /// The platform status it gives every message it covers.
    pub fn status(self) -> DeliveryStatus {
        match self {
            Self::Delivered => DeliveryStatus::Delivered,
            Self::Read => DeliveryStatus::Read,
        }
    }
}

/// Every message the page sent the customer before `up_to` was delivered (or read). The
/// server applies it to all of them; Messenger names no message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watermark {
    pub page_id: String,
    pub psid: String,
    pub status: WatermarkStatus,
    pub up_to: DateTime<Utc>,
}

/// What one webhook says, in our terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// One per `delivery.mids` entry, delivered at the watermark.
    pub statuses: Vec<StatusUpdate>,
    pub inbound: Vec<Inbound>,
    pub watermarks: Vec<Watermark>,
}

/// Reads a webhook body (after [`crate::meta::verify_signature`] passed on the same bytes).
/// A customer's message or postback is an [`Inbound`] (customer: the PSID; channel number: the
/// page id), its time the start of the 24-hour window; an echo of our own message is skipped;
/// a delivery gives a [`Watermark`] and a status per listed `mid`; a read gives a
/// [`Watermark`]. Events of other kinds, or without sender, recipient or a readable
/// watermark, are skipped.
///
/// # Errors
///
/// Not JSON, or not a page webhook (`object`).
pub fn read_webhook(body: &[u8]) -> Result<Events, ParseError> {
    let webhook: Webhook = serde_json::from_slice(body)?;
    if webhook.object != WEBHOOK_OBJECT {
        return Err(ParseError::Unexpected(format!("object {:?}", webhook.object)));
    }
    let mut events = Events::default();
    for event in webhook.entry.iter().flat_map(|entry| &entry.messaging) {
        read_event(event, &mut events);
    }
    Ok(events)
}

/// One `messaging[]` event into `events`.
pub fn read_event(event: &Event, events: &mut Events) {
    let (Some(sender), Some(recipient)) = (&event.sender, &event.recipient) else {
        return;
    };
    let at = event.timestamp.as_ref().and_then(crate::meta::from_millis);
    if let Some(message) = &event.message {
        if message.is_echo == Some(true) {
            return;
        }
        events.inbound.push(Inbound {
            channel: Channel::Messenger,
            customer: sender.id.to_string(),
            channel_number: recipient.id.to_string(),
            provider_message_id: message.mid.clone(),
            session_id: None,
            in_reply_to: message.reply_to.as_ref().and_then(|reply| reply.mid.clone()),
            parts: message_parts(message),
            cost: None,
            received_at: at,
        });
    } else if let Some(postback) = &event.postback {
        let text = postback.payload.clone().or_else(|| postback.title.clone());
        events.inbound.push(Inbound {
            channel: Channel::Messenger,
            customer: sender.id.to_string(),
            channel_number: recipient.id.to_string(),
            provider_message_id: postback.mid.clone(),
            session_id: None,
            in_reply_to: None,
            parts: text.map(|text| InboundPart::Text { text }).into_iter().collect(),
            cost: None,
            received_at: at,
        });
    } else if let Some(delivery) = &event.delivery {
        let Some(up_to) = crate::meta::from_millis(&delivery.watermark) else {
            return;
        };
        events.statuses.extend(delivery.mids.iter().map(|mid| StatusUpdate {
            provider_message_id: mid.clone(),
            status: DeliveryStatus::Delivered,
            reason: None,
            cost: None,
            at: Some(up_to),
        }));
        events.watermarks.push(Watermark {
            page_id: recipient.id.to_string(),
            psid: sender.id.to_string(),
            status: WatermarkStatus::Delivered,
            up_to,
        });
    } else if let Some(read) = &event.read {
        let Some(up_to) = crate::meta::from_millis(&read.watermark) else {
            return;
        };
        events.watermarks.push(Watermark {
            page_id: recipient.id.to_string(),
            psid: sender.id.to_string(),
            status: WatermarkStatus::Read,
            up_to,
        });
    }
}

fn message_parts(message: &InMessage) -> Vec<InboundPart> {
    let mut parts = Vec::new();
    if let Some(text) = &message.text {
        parts.push(InboundPart::Text { text: text.clone() });
    } else if let Some(payload) = message.quick_reply.as_ref().and_then(|q| q.payload.clone()) {
        parts.push(InboundPart::Text { text: payload });
    }
    for attachment in &message.attachments {
        let Some(payload) = &attachment.payload else { continue };
        let kind = match attachment.kind.as_str() {
            "image" if payload.sticker_id.is_some() => MediaType::Sticker,
            "image" => MediaType::Image,
            "audio" => MediaType::Audio,
            "video" => MediaType::Video,
            "file" => MediaType::Document,
            "location" => {
                if let Some(location) = payload.coordinates.as_ref().and_then(|c| {
                    Some(Location {
                        latitude: crate::wire::decimal(c.lat.as_str()).ok()?,
                        longitude: crate::wire::decimal(c.long.as_str()).ok()?,
                        label: payload.title.clone(),
                        address: None,
                    })
                }) {
                    parts.push(InboundPart::Location(location));
                }
                continue;
            }
            _ => continue,
        };
        if let Some(url) = &payload.url {
            parts.push(InboundPart::Media(Media { url: url.clone(), media: kind, caption: None }));
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::{MessageTag, MessagingType, TAGS, build_send};
    use crate::messaging::Body;

    #[test]
    fn every_message_tag_is_one_the_send_api_takes_and_reads_back_as_itself() {
        let names: Vec<&str> = MessageTag::ALL.iter().map(|tag| tag.as_str()).collect();
        assert_eq!(names, TAGS);
        for tag in MessageTag::ALL {
            assert_eq!(MessageTag::from_name(tag.as_str()), Some(tag));
            let json = serde_json::to_value(tag).unwrap();
            assert_eq!(json, serde_json::json!(tag.as_str()));
            assert_eq!(serde_json::from_value::<MessageTag>(json).unwrap(), tag);
            // On the wire as the tag of a MESSAGE_TAG send.
            let body = Body::Text { text: "Your order shipped".into() };
            let kind = MessagingType::MessageTag(tag.as_str().to_owned());
            let request = build_send("1254459154682919", &body, &kind).unwrap();
            assert_eq!(request.messaging_type.as_deref(), Some("MESSAGE_TAG"));
            assert_eq!(request.tag.as_deref(), Some(tag.as_str()));
        }
        for unknown in ["account_update", "SHIPPING_UPDATE", ""] {
            assert_eq!(MessageTag::from_name(unknown), None, "{unknown}");
            assert!(serde_json::from_value::<MessageTag>(serde_json::json!(unknown)).is_err());
        }
    }

    #[test]
    fn only_a_person_s_answer_and_a_survey_are_held_to_a_week_after_the_last_message() {
        let week = Some(chrono::TimeDelta::days(7));
        assert_eq!(MessageTag::HumanAgent.since_last_message_max(), week);
        assert_eq!(MessageTag::CustomerFeedback.since_last_message_max(), week);
        for tag in [
            MessageTag::AccountUpdate,
            MessageTag::ConfirmedEventUpdate,
            MessageTag::PostPurchaseUpdate,
        ] {
            assert_eq!(tag.since_last_message_max(), None, "{tag:?}");
        }
    }
}
