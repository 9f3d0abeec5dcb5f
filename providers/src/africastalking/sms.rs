//! Africa's Talking SMS: the bulk and premium send (`POST /version1/messaging`), its
//! per-recipient answer, delivery reports, inbound messages and premium subscription
//! notifications, as the provider spells them, with pure transformers to the platform's
//! messaging terms.

use serde::{Deserialize, Serialize};

use super::{Price, meaningful, string_or_number, timestamp};
use crate::messaging::{
    Body, Channel, DeliveryStatus, Inbound, InboundPart, SendResult, StatusUpdate,
};

/// The send form. `to` is every recipient, comma-separated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendSms {
    pub username: String,
    pub to: String,
    pub message: String,
    /// A short code or alphanumeric sender id; the account's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Who pays on a short code: 1, the sender (required for bulk sends); 0 for premium.
    #[serde(rename = "bulkSMSMode", default = "one")]
    pub bulk_sms_mode: u8,
    /// `1`: the provider queues the messages and answers before the operators do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueue: Option<u8>,
    /// Premium: the keyword of the subscription product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// Premium on-demand: the `linkId` of the customer's message this answers.
    #[serde(rename = "linkId", default, skip_serializing_if = "Option::is_none")]
    pub link_id: Option<String>,
    /// Premium subscription: how long the provider retries a message the customer cannot
    /// yet pay for.
    #[serde(rename = "retryDurationInHours", default, skip_serializing_if = "Option::is_none")]
    pub retry_duration_in_hours: Option<u32>,
}

fn one() -> u8 {
    1
}

impl SendSms {
    /// A bulk send of `message` to `recipients` (E.164 numbers) from `from`.
    #[must_use]
    pub fn new(username: &str, recipients: &[&str], message: &str, from: Option<&str>) -> Self {
        Self {
            username: username.to_owned(),
            to: recipients.join(","),
            message: message.to_owned(),
            from: from.map(str::to_owned),
            bulk_sms_mode: 1,
            enqueue: None,
            keyword: None,
            link_id: None,
            retry_duration_in_hours: None,
        }
    }

    /// The same send as a premium one (`bulkSMSMode=0`, sent to the content host), for a
    /// product's `keyword`, answering `link_id` (on-demand) or retried for
    /// `retry_duration_in_hours` (subscription).
    #[must_use]
    pub fn premium(
        self,
        keyword: Option<&str>,
        link_id: Option<&str>,
        retry_duration_in_hours: Option<u32>,
    ) -> Self {
        Self {
            bulk_sms_mode: 0,
            keyword: keyword.map(str::to_owned),
            link_id: link_id.map(str::to_owned),
            retry_duration_in_hours,
            ..self
        }
    }

    /// Whether it is a premium send (it carries a keyword or a `linkId`).
    #[must_use]
    pub fn is_premium(&self) -> bool {
        self.keyword.is_some() || self.link_id.is_some()
    }

    /// The recipients, as sent (blank entries dropped).
    #[must_use]
    pub fn recipients(&self) -> Vec<&str> {
        self.to.split(',').map(str::trim).filter(|number| !number.is_empty()).collect()
    }

    /// The form body.
    ///
    /// # Errors
    ///
    /// None in practice: every field is a string or a number.
    pub fn form(&self) -> Result<String, serde_urlencoded::ser::Error> {
        serde_urlencoded::to_string(self)
    }

    /// Reads the form (as the simulator receives it).
    ///
    /// # Errors
    ///
    /// When a required field is missing or a number is not one.
    pub fn from_form(body: &[u8]) -> Result<Self, serde_urlencoded::de::Error> {
        serde_urlencoded::from_bytes(body)
    }
}

/// The text an SMS carries for `body`: a text, or a URL on its own; `None` for a kind SMS
/// cannot carry (the caller reports it as [`DeliveryStatus::NotSupported`]).
#[must_use]
pub fn sms_text(body: &Body) -> Option<&str> {
    match body {
        Body::Text { text } => Some(text),
        Body::Url { url } => Some(url),
        _ => None,
    }
}

/// The answer to a send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendSmsResponse {
    #[serde(rename = "SMSMessageData")]
    pub data: SmsMessageData,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsMessageData {
    /// A summary for people ("Sent to 1/1 Total Cost: KES 0.8000"); the recipients say more.
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "Recipients", default)]
    pub recipients: Vec<Recipient>,
}

/// One recipient of a send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    pub status_code: u16,
    pub number: String,
    pub status: String,
    /// `"<currency> <amount>"`, e.g. `"KES 0.8000"`.
    pub cost: String,
    /// Opaque (`ATXid_…`, `ATPid_…`); delivery reports name it as `id`.
    pub message_id: String,
}

/// Why a recipient's message was not accepted, by the provider's status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    RiskHold,
    InvalidSenderId,
    InvalidPhoneNumber,
    UnsupportedNumberType,
    InsufficientBalance,
    UserInBlacklist,
    CouldNotRoute,
    InternalServerError,
    GatewayError,
    RejectedByGateway,
    /// A code this adapter does not know (409 among them: its meaning differs by source).
    Other(u16),
}

impl Refusal {
    /// The refusal a status code names.
    #[must_use]
    pub fn of(code: u16) -> Self {
        match code {
            401 => Self::RiskHold,
            402 => Self::InvalidSenderId,
            403 => Self::InvalidPhoneNumber,
            404 => Self::UnsupportedNumberType,
            405 => Self::InsufficientBalance,
            406 => Self::UserInBlacklist,
            407 => Self::CouldNotRoute,
            500 => Self::InternalServerError,
            501 => Self::GatewayError,
            502 => Self::RejectedByGateway,
            other => Self::Other(other),
        }
    }

    /// The provider's status code and word for it.
    #[must_use]
    pub fn code(self) -> (u16, &'static str) {
        match self {
            Self::RiskHold => (401, "RiskHold"),
            Self::InvalidSenderId => (402, "InvalidSenderId"),
            Self::InvalidPhoneNumber => (403, "InvalidPhoneNumber"),
            Self::UnsupportedNumberType => (404, "UnsupportedNumberType"),
            Self::InsufficientBalance => (405, "InsufficientBalance"),
            Self::UserInBlacklist => (406, "UserInBlacklist"),
            Self::CouldNotRoute => (407, "CouldNotRoute"),
            Self::InternalServerError => (500, "InternalServerError"),
            Self::GatewayError => (501, "GatewayError"),
            Self::RejectedByGateway => (502, "RejectedByGateway"),
            Self::Other(code) => (code, "Unknown"),
        }
    }

    /// The platform's status for it.
    #[must_use]
    pub fn status(self) -> DeliveryStatus {
        match self {
            Self::InvalidSenderId => DeliveryStatus::InvalidChannelNumber,
            Self::InvalidPhoneNumber | Self::UnsupportedNumberType => DeliveryStatus::NotSupported,
            Self::InsufficientBalance => DeliveryStatus::InsufficientCredits,
            Self::UserInBlacklist => DeliveryStatus::NoConsent,
            Self::InternalServerError | Self::GatewayError => DeliveryStatus::GatewayError,
            Self::RiskHold | Self::CouldNotRoute | Self::RejectedByGateway => {
                DeliveryStatus::Rejected
            }
            Self::Other(_) => DeliveryStatus::Failed,
        }
    }
}

/// What a send came to for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted (codes 100 Processed, 101 Sent, 102 Queued), at this cost when it was given.
    Accepted {
        message_id: String,
        status: DeliveryStatus,
        cost: Option<Price>,
    },
    Refused(Refusal),
}

impl Recipient {
    /// The recipient's outcome.
    #[must_use]
    pub fn outcome(&self) -> SendOutcome {
        let status = match self.status_code {
            100 | 102 => DeliveryStatus::Queued,
            101 => DeliveryStatus::Sent,
            code => return SendOutcome::Refused(Refusal::of(code)),
        };
        SendOutcome::Accepted {
            message_id: self.message_id.clone(),
            status,
            cost: Price::parse(&self.cost),
        }
    }

    /// The recipient's outcome in the platform's terms. The cost is kept when it is a whole
    /// number of the currency's minor units ([`Price::money`]).
    #[must_use]
    pub fn send_result(&self) -> SendResult {
        match self.outcome() {
            SendOutcome::Accepted { message_id, status, cost } => SendResult::Accepted {
                provider_message_id: Some(message_id),
                status,
                cost: cost.and_then(Price::money),
            },
            SendOutcome::Refused(refusal) => SendResult::Refused {
                status: refusal.status(),
                reason: format!("{} {}", self.status_code, self.status),
            },
        }
    }
}

impl SendSmsResponse {
    /// One result per number of `requested`, in that order. A number is matched to the
    /// answer's entry with the same `number`, and otherwise to the next entry no requested
    /// number named (the provider may rewrite a number into E.164). A number the answer does
    /// not mention at all is refused as [`DeliveryStatus::Failed`]: sending it again could
    /// send it twice.
    #[must_use]
    pub fn results(&self, requested: &[&str]) -> Vec<(String, SendResult)> {
        let entries = &self.data.recipients;
        let mut used = vec![false; entries.len()];
        let mut matched: Vec<Option<usize>> = requested
            .iter()
            .map(|number| {
                let index = entries
                    .iter()
                    .enumerate()
                    .position(|(index, entry)| !used[index] && entry.number == *number)?;
                used[index] = true;
                Some(index)
            })
            .collect();
        for slot in &mut matched {
            if slot.is_none()
                && let Some(index) = used.iter().position(|taken| !taken)
            {
                used[index] = true;
                *slot = Some(index);
            }
        }
        requested
            .iter()
            .zip(matched)
            .map(|(number, index)| {
                let result = index.map_or_else(
                    || SendResult::Refused {
                        status: DeliveryStatus::Failed,
                        reason: format!("not in the provider's answer: {}", self.data.message),
                    },
                    |index| entries[index].send_result(),
                );
                ((*number).to_owned(), result)
            })
            .collect()
    }
}

/// A delivery report (a form posted to the channel's delivery-report URL).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    /// The send's `messageId`.
    pub id: String,
    pub status: String,
    pub phone_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_code: Option<String>,
    /// Only with `Rejected` or `Failed`, and not from every operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<String>,
}

impl DeliveryReport {
    /// Reads the form.
    ///
    /// # Errors
    ///
    /// When a required field is missing.
    pub fn from_form(body: &[u8]) -> Result<Self, serde_urlencoded::de::Error> {
        serde_urlencoded::from_bytes(body)
    }

    /// The form body (as the simulator sends it).
    ///
    /// # Errors
    ///
    /// None in practice: every field is a string.
    pub fn form(&self) -> Result<String, serde_urlencoded::ser::Error> {
        serde_urlencoded::to_string(self)
    }

    /// The platform's status for it: `Sent`, `Submitted` and `Buffered` are on the way,
    /// `Success` is on the handset; `Rejected` and `Failed` are final, refined by the failure
    /// reason (messaging.md §9): a blacklisted or unsubscribed user refused consent, an
    /// unknown or foreign subscriber is no such customer number, an invalid `linkId` is an
    /// invalid reply token, and the *subscriber's* `InsufficientCredit` (for a premium
    /// message) is a plain failure, not [`DeliveryStatus::InsufficientCredits`], which is
    /// our own account's. A status word this adapter does not know says only that the
    /// message left us.
    #[must_use]
    pub fn delivery_status(&self) -> DeliveryStatus {
        match self.status.as_str() {
            "Success" => DeliveryStatus::Delivered,
            "Rejected" | "Failed" => match self.failure_reason.as_deref().map(str::trim) {
                Some("UserInBlackList" | "UserInBlacklist" | "UserNotSubscribedToProduct") => {
                    DeliveryStatus::NoConsent
                }
                Some("UserDoesNotExist" | "NotNetworkSubcriber" | "NotNetworkSubscriber") => {
                    DeliveryStatus::CustomerNumberNotFound
                }
                Some("InvalidLinkId") => DeliveryStatus::InvalidReplyToken,
                Some("InsufficientCredit") => DeliveryStatus::Failed,
                _ if self.status == "Rejected" => DeliveryStatus::Rejected,
                _ => DeliveryStatus::Failed,
            },
            _ => DeliveryStatus::Sent,
        }
    }

    /// The report in the platform's terms.
    #[must_use]
    pub fn status_update(&self) -> StatusUpdate {
        StatusUpdate {
            provider_message_id: self.id.clone(),
            status: self.delivery_status(),
            reason: meaningful(self.failure_reason.as_deref()).map(str::to_owned),
            cost: None,
            at: None,
        }
    }
}

/// An inbound message: a form posted to the channel's incoming-messages URL, or an item of
/// the inbox fetch (`GET /version1/messaging`), where `id` is a number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundSms {
    pub from: String,
    /// The short code or number it was sent to.
    pub to: String,
    pub text: String,
    pub date: String,
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// Premium services only: echoed back when replying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_code: Option<String>,
}

impl InboundSms {
    /// Reads the callback's form.
    ///
    /// # Errors
    ///
    /// When a required field is missing.
    pub fn from_form(body: &[u8]) -> Result<Self, serde_urlencoded::de::Error> {
        serde_urlencoded::from_bytes(body)
    }

    /// The form body (as the simulator sends it).
    ///
    /// # Errors
    ///
    /// None in practice: every field is a string.
    pub fn form(&self) -> Result<String, serde_urlencoded::ser::Error> {
        serde_urlencoded::to_string(self)
    }

    /// The message in the platform's terms: from the customer's number to our short code.
    /// The premium `linkId` has no place there; a reply reads it from this message.
    #[must_use]
    pub fn inbound(&self) -> Inbound {
        Inbound {
            channel: Channel::Sms,
            customer: self.from.clone(),
            channel_number: self.to.clone(),
            provider_message_id: Some(self.id.clone()),
            session_id: None,
            in_reply_to: None,
            parts: vec![InboundPart::Text { text: self.text.clone() }],
            cost: None,
            received_at: timestamp(&self.date),
        }
    }
}

/// The inbox fetch's answer.
#[derive(Clone, Debug, Deserialize)]
pub struct FetchMessagesResponse {
    #[serde(rename = "SMSMessageData")]
    pub data: FetchedMessages,
}

#[derive(Clone, Debug, Deserialize)]
pub struct FetchedMessages {
    #[serde(rename = "Messages", default)]
    pub messages: Vec<InboundSms>,
}

/// A premium subscription notification (a form posted to the subscription URL): the
/// customer subscribed to (`addition`) or left (`deletion`) a product of our short code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionUpdate {
    pub phone_number: String,
    pub short_code: String,
    pub keyword: String,
    /// `addition` or `deletion`.
    pub update_type: String,
}

impl SubscriptionUpdate {
    /// Reads the form.
    ///
    /// # Errors
    ///
    /// When a required field is missing.
    pub fn from_form(body: &[u8]) -> Result<Self, serde_urlencoded::de::Error> {
        serde_urlencoded::from_bytes(body)
    }

    /// Whether the customer is now subscribed: only an `addition` says so; a `deletion`, or
    /// a word this adapter does not know, counts as opted out (no consent assumed).
    #[must_use]
    pub fn opted_in(&self) -> bool {
        self.update_type.trim().eq_ignore_ascii_case("addition")
    }
}
