//! Messaging in the platform's terms, whatever the provider: the channels, what a message
//! carries out (text, template, media, location, email, a USSD menu, voice actions) and in,
//! the delivery statuses with the platform's codes (`MessageDeliveryStatus`), and what an
//! adapter reports back — the answer to a send, a status update, an inbound message. Every
//! messaging adapter turns its provider's wire into these and nothing else, so the server
//! handles seven channels with one set of rules. As JSON (the API's message bodies), kinds
//! and actions are snake_case and fields camelCase, like the rest of the API.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::Money;

/// A messaging channel (the platform's `MessagingChannel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Sms,
    Voice,
    Ussd,
    Messenger,
    Telegram,
    #[serde(rename = "whatsapp")]
    WhatsApp,
    Email,
}

impl Channel {
    /// Every channel, in the platform's order.
    pub const ALL: [Self; 7] = [
        Self::Sms,
        Self::Voice,
        Self::Ussd,
        Self::Messenger,
        Self::Telegram,
        Self::WhatsApp,
        Self::Email,
    ];

    /// The stable name, as the API and the database spell it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Voice => "voice",
            Self::Ussd => "ussd",
            Self::Messenger => "messenger",
            Self::Telegram => "telegram",
            Self::WhatsApp => "whatsapp",
            Self::Email => "email",
        }
    }

    /// The channel a stable name names.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|channel| channel.as_str() == name)
    }
}

/// A message's delivery status (the platform's `MessageDeliveryStatus`). Each provider's own
/// statuses map onto these; a status an adapter does not know is [`DeliveryStatus::Sent`] at
/// most (the message left us), never a final one it was not told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Accepted, not yet handed on.
    Queued,
    /// Handed to the provider or the operator.
    Sent,
    /// On the customer's device.
    Delivered,
    /// Read by the customer.
    Read,
    /// A message the customer sent us.
    Received,
    /// A session (USSD, a voice call) the message belongs to has begun.
    SessionInitiated,
    /// Not delivered, for no reason more precise below.
    Failed,
    /// The customer refused messages from this channel (opted out, blocked the sender).
    NoConsent,
    /// No final answer came within the message's time to live.
    Expired,
    /// The channel needs an open session (a 24-hour window, a live USSD session) and there is
    /// none.
    NoSessionInProgress,
    /// The reply token (Africa's Talking's `linkId` for premium SMS) is not valid.
    InvalidReplyToken,
    /// The channel number (sender id, short code) is not valid for sending.
    InvalidChannelNumber,
    /// The customer's number cannot receive on this channel.
    NotSupported,
    /// The request repeated one already made.
    DuplicateRequest,
    /// A template or message tag the provider does not know.
    TagNotFound,
    /// No such customer number at the provider (unknown subscriber, chat, address).
    CustomerNumberNotFound,
    /// The provider or the operator refused it.
    Rejected,
    /// The provider found the request itself malformed.
    InvalidRequest,
    /// The sender's account with the provider cannot pay for it.
    InsufficientCredits,
    /// The provider or the operator's gateway failed.
    GatewayError,
    /// Our credentials or our use of the provider's API is wrong (a fault of ours, not the
    /// customer's).
    ApplicationError,
}

impl DeliveryStatus {
    /// Every status, by code.
    pub const ALL: [Self; 21] = [
        Self::Queued,
        Self::Sent,
        Self::Delivered,
        Self::Read,
        Self::Received,
        Self::SessionInitiated,
        Self::Failed,
        Self::NoConsent,
        Self::Expired,
        Self::NoSessionInProgress,
        Self::InvalidReplyToken,
        Self::InvalidChannelNumber,
        Self::NotSupported,
        Self::DuplicateRequest,
        Self::TagNotFound,
        Self::CustomerNumberNotFound,
        Self::Rejected,
        Self::InvalidRequest,
        Self::InsufficientCredits,
        Self::GatewayError,
        Self::ApplicationError,
    ];

    /// The platform's code for it.
    #[must_use]
    pub fn code(self) -> u16 {
        match self {
            Self::Queued => 100,
            Self::Sent => 101,
            Self::Delivered => 300,
            Self::Read => 301,
            Self::Received => 302,
            Self::SessionInitiated => 303,
            Self::Failed => 400,
            Self::NoConsent => 401,
            Self::Expired => 403,
            Self::NoSessionInProgress => 404,
            Self::InvalidReplyToken => 406,
            Self::InvalidChannelNumber => 407,
            Self::NotSupported => 408,
            Self::DuplicateRequest => 411,
            Self::TagNotFound => 412,
            Self::CustomerNumberNotFound => 413,
            Self::Rejected => 415,
            Self::InvalidRequest => 416,
            Self::InsufficientCredits => 417,
            Self::GatewayError => 418,
            Self::ApplicationError => 501,
        }
    }

    /// The stable snake_case name, as the API and the database spell it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Received => "received",
            Self::SessionInitiated => "session_initiated",
            Self::Failed => "failed",
            Self::NoConsent => "no_consent",
            Self::Expired => "expired",
            Self::NoSessionInProgress => "no_session_in_progress",
            Self::InvalidReplyToken => "invalid_reply_token",
            Self::InvalidChannelNumber => "invalid_channel_number",
            Self::NotSupported => "not_supported",
            Self::DuplicateRequest => "duplicate_request",
            Self::TagNotFound => "tag_not_found",
            Self::CustomerNumberNotFound => "customer_number_not_found",
            Self::Rejected => "rejected",
            Self::InvalidRequest => "invalid_request",
            Self::InsufficientCredits => "insufficient_credits",
            Self::GatewayError => "gateway_error",
            Self::ApplicationError => "application_error",
        }
    }

    /// The status a stable name names.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }

    /// Whether the message reached the customer (delivered or read): its cost is owed.
    #[must_use]
    pub fn reached(self) -> bool {
        matches!(self, Self::Delivered | Self::Read)
    }

    /// Whether nothing later changes it (a delivered message may still be read).
    #[must_use]
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Sent | Self::Delivered | Self::SessionInitiated)
    }

    /// How far along a message this status is, for applying reports in the order of their
    /// meaning rather than of their arrival: a report moves a message only to a higher rank,
    /// so a late `sent` never overwrites `delivered`. Every failure ranks with `read`: final.
    #[must_use]
    pub fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Sent | Self::SessionInitiated => 1,
            Self::Delivered => 2,
            _ => 3,
        }
    }
}

/// What a media message carries (the platform's `MediaType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaType {
    Image,
    Audio,
    Video,
    Document,
    Voice,
    Sticker,
    Contact,
}

/// A place on the map. Coordinates are decimal degrees, kept exact as given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub latitude: Decimal,
    pub longitude: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// An email's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Email {
    pub subject: String,
    pub plain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<String>,
}

/// A media attachment by URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Media {
    pub url: String,
    pub media: MediaType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// A pre-approved template (WhatsApp message templates) and the values of its parameters,
/// in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// The template's name at the provider.
    pub id: String,
    /// The template's language, e.g. `en_US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<String>,
}

/// What an outbound message carries (the platform's `OutboundMessageBody`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum Body {
    Text {
        text: String,
    },
    Template(Template),
    Media(Media),
    Location(Location),
    Email(Email),
    Url {
        url: String,
    },
    /// The next USSD menu: `is_terminal` ends the session (`END`), else it waits for input
    /// (`CON`).
    Ussd {
        text: String,
        is_terminal: bool,
    },
    /// What a voice call does next.
    Voice {
        actions: Vec<VoiceAction>,
    },
}

impl Body {
    /// The stable name of its kind, as the API spells it.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Template(_) => "template",
            Self::Media(_) => "media",
            Self::Location(_) => "location",
            Self::Email(_) => "email",
            Self::Url { .. } => "url",
            Self::Ussd { .. } => "ussd",
            Self::Voice { .. } => "voice",
        }
    }
}

/// A text-to-speech voice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Voice {
    Male,
    Female,
}

/// Text read to the caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Say {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<Voice>,
    #[serde(default)]
    pub play_beep: bool,
}

/// What a caller hears before being asked for input: text read, or audio played.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    Say(Say),
    Play { url: String },
}

/// One step of a voice call (the platform's `VoiceCallAction`). Durations are whole seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum VoiceAction {
    Say(Say),
    Play {
        url: String,
    },
    GetDigits {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<Prompt>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_seconds: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finish_on_key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        num_digits: Option<u32>,
    },
    Dial {
        /// E.164 numbers (or SIP addresses) to call.
        customer_numbers: Vec<String>,
        #[serde(default)]
        record: bool,
        #[serde(default)]
        sequential: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ringback_tone: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caller_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_duration_seconds: Option<u32>,
    },
    RecordSession,
    GetRecording {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<Prompt>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_seconds: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_length_seconds: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finish_on_key: Option<String>,
        #[serde(default)]
        play_beep: bool,
        #[serde(default)]
        trim_silence: bool,
    },
    Enqueue {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hold_music: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue_name: Option<String>,
    },
    Dequeue {
        /// The voice number whose queue to take a caller from.
        channel_number: String,
        #[serde(default)]
        record: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue_name: Option<String>,
    },
    Reject,
    Redirect {
        url: String,
    },
}

/// A USSD session's state (the platform's `UssdSessionStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UssdSessionStatus {
    Active,
    Incomplete,
    Completed,
    AppError,
}

/// A voice call's state (the platform's `VoiceCallStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoiceCallStatus {
    Queued,
    Answered,
    Ringing,
    Active,
    Dialing,
    DialCompleted,
    Bridged,
    Enqueued,
    Dequeued,
    Transferred,
    TransferCompleted,
    Completed,
    InsufficientCredit,
    NotAnswered,
    InvalidPhoneNumber,
    DestinationNotSupported,
    DecommissionedCustomerId,
    Expired,
    InvalidChannelNumber,
    GatewayError,
    ApplicationError,
}

/// Where a voice call stands as a callback told it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceInput {
    /// `true` when the customer called us.
    pub inbound: bool,
    pub status: VoiceCallStatus,
    /// Digits the caller pressed, for a `get_digits` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtmf_digits: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
    /// The provider's hangup cause, as it spelt it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hangup_cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
}

/// Where a USSD session stands, and what the customer typed last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UssdInput {
    pub status: UssdSessionStatus,
    /// The customer's latest input; `None` on the session's first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One part of an inbound message (the platform's `InboundMessageBody`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum InboundPart {
    Text { text: String },
    Media(Media),
    Location(Location),
    Email(Email),
    Voice(VoiceInput),
    Ussd(UssdInput),
}

/// A message a customer sent us, or a session step (USSD, voice), as a callback told it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    pub channel: Channel,
    /// The customer's address on the channel: an E.164 number, a Telegram chat id, a
    /// Messenger page-scoped id, an email address.
    pub customer: String,
    /// Our channel number it came to (short code, USSD code, voice number, WhatsApp number,
    /// bot name, page id, email address).
    pub channel_number: String,
    /// The provider's id for the message, where it gives one: a replay of the same id is the
    /// same message.
    pub provider_message_id: Option<String>,
    /// The provider's session id (USSD, voice), which every step of a session shares.
    pub session_id: Option<String>,
    /// The provider's id of our message this replies to, where it says.
    pub in_reply_to: Option<String>,
    pub parts: Vec<InboundPart>,
    /// What the provider charged for it, where it says (a voice call's cost, premium SMS).
    pub cost: Option<Money>,
    pub received_at: Option<DateTime<Utc>>,
}

/// A change of an outbound message's status, as a callback or a query told it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The provider's id for our message.
    pub provider_message_id: String,
    pub status: DeliveryStatus,
    /// The provider's reason, as it spelt it, for a failure.
    pub reason: Option<String>,
    /// What the provider charged, where it says.
    pub cost: Option<Money>,
    pub at: Option<DateTime<Utc>>,
}

/// The provider's answer to sending one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendResult {
    /// Taken: later reports name it by `provider_message_id`.
    Accepted {
        /// `None` only for a provider that gives no id (email's SMTP `250` names none we can
        /// match later).
        provider_message_id: Option<String>,
        /// `Queued` or `Sent`, as the provider said.
        status: DeliveryStatus,
        /// What the provider says it charges, where it says.
        cost: Option<Money>,
    },
    /// Refused for good: sending again will not help.
    Refused { status: DeliveryStatus, reason: String },
    /// Not known to have been taken (a timeout, a 5xx, a rate limit): try again later, under
    /// the same idempotency key where the provider has one.
    Retry { reason: String },
}

/// The outcome of checking a callback's signature or secret token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    Yes,
    No,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip_and_are_unique() {
        let mut codes = std::collections::HashSet::new();
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::from_name(status.as_str()), Some(status));
            assert!(codes.insert(status.code()), "{status:?} shares a code");
            let json = serde_json::to_string(&status).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        for channel in Channel::ALL {
            assert_eq!(Channel::from_name(channel.as_str()), Some(channel));
        }
    }

    #[test]
    fn a_late_sent_ranks_below_delivered_and_failures_are_final() {
        assert!(DeliveryStatus::Sent.rank() < DeliveryStatus::Delivered.rank());
        assert!(DeliveryStatus::Delivered.rank() < DeliveryStatus::Read.rank());
        assert!(DeliveryStatus::Failed.is_final());
        assert!(!DeliveryStatus::Delivered.is_final());
        assert!(DeliveryStatus::Read.reached());
    }

    #[test]
    fn bodies_are_tagged_by_kind() {
        let body: Body = serde_json::from_str(
            r#"{"kind":"voice","actions":[{"action":"say","text":"Hi"},{"action":"get_digits","prompt":{"say":{"text":"Press 1"}},"numDigits":1},{"action":"reject"}]}"#,
        )
        .unwrap_or(Body::Text { text: String::new() });
        let Body::Voice { actions } = &body else { panic!("not voice: {body:?}") };
        assert_eq!(actions.len(), 3);
        assert_eq!(body.kind(), "voice");
    }
}
