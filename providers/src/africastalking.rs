//! Africa's Talking, SMS: the bulk send (`POST /version1/messaging`), its per-recipient
//! answer, delivery reports and inbound messages, as the provider spells them, with pure
//! transformers to our terms. Requests and callbacks are `application/x-www-form-urlencoded`;
//! answers are JSON. Africa's Talking signs no callback: a callback's URL carries a secret
//! token, and a report changes nothing we have not recorded (checked where it is applied).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::messaging::DeliveryStatus;
use crate::money::Currency;

/// The bulk-send form. `to` is every recipient, comma-separated.
#[derive(Clone, Debug, Serialize)]
pub struct SendSms<'a> {
    pub username: &'a str,
    pub to: String,
    pub message: &'a str,
    /// A short code or alphanumeric sender id; the account's default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'a str>,
    /// Who pays on a short code: 1, the sender (required for bulk sends).
    #[serde(rename = "bulkSMSMode")]
    pub bulk_sms_mode: u8,
    /// `1`: the provider queues the messages and answers before the operators do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enqueue: Option<u8>,
}

impl<'a> SendSms<'a> {
    /// A bulk send of `message` to `recipients` (E.164 numbers) from `from`.
    #[must_use]
    pub fn new(
        username: &'a str,
        recipients: &[&str],
        message: &'a str,
        from: Option<&'a str>,
    ) -> Self {
        Self { username, to: recipients.join(","), message, from, bulk_sms_mode: 1, enqueue: None }
    }

    /// The form body.
    ///
    /// # Errors
    ///
    /// None in practice: every field is a string or a number.
    pub fn form(&self) -> Result<String, serde_urlencoded::ser::Error> {
        serde_urlencoded::to_string(self)
    }
}

/// The answer to a send.
#[derive(Clone, Debug, Deserialize)]
pub struct SendSmsResponse {
    #[serde(rename = "SMSMessageData")]
    pub data: SmsMessageData,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SmsMessageData {
    /// A summary for people ("Sent to 1/1 Total Cost: KES 0.8000"); the recipients say more.
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "Recipients", default)]
    pub recipients: Vec<Recipient>,
}

/// One recipient of a send.
#[derive(Clone, Debug, Deserialize)]
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
    fn of(code: u16) -> Self {
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
}

/// An amount the provider quotes, `"<currency> <decimal>"` with up to four decimals: exact,
/// and finer than the currency's minor unit (a message may cost a fraction of a cent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    pub currency: Currency,
    pub amount: Decimal,
}

impl Price {
    /// Reads `"KES 0.8000"`; `None` for anything else (`"0"`, a blank, an unknown currency).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let (code, amount) = text.trim().split_once(' ')?;
        let currency = Currency::from_code(code).ok()?;
        let amount = crate::wire::decimal(amount).ok()?;
        (amount >= Decimal::ZERO).then_some(Self { currency, amount })
    }
}

/// A delivery report (a form posted to the channel's delivery-report URL).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    /// The send's `messageId`.
    pub id: String,
    pub status: String,
    pub phone_number: String,
    #[serde(default)]
    pub network_code: Option<String>,
    /// Only with `Rejected` or `Failed`, and not from every operator.
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
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

    /// The platform's status for it: `Sent`, `Submitted` and `Buffered` are on the way,
    /// `Success` is on the handset; `Rejected` and `Failed` are final, a blacklisted user's a
    /// refusal of consent. A status word this adapter does not know says only that the message
    /// left us.
    #[must_use]
    pub fn delivery_status(&self) -> DeliveryStatus {
        match self.status.as_str() {
            "Success" => DeliveryStatus::Delivered,
            "Rejected" | "Failed" => match self.failure_reason.as_deref() {
                Some("UserInBlackList" | "UserInBlacklist") => DeliveryStatus::NoConsent,
                Some("InsufficientCredit") => DeliveryStatus::InsufficientCredits,
                _ if self.status == "Rejected" => DeliveryStatus::Rejected,
                _ => DeliveryStatus::Failed,
            },
            _ => DeliveryStatus::Sent,
        }
    }
}

/// An inbound message: a form posted to the channel's incoming-messages URL, or an item of
/// the inbox fetch (`GET /version1/messaging`), where `id` is a number.
#[derive(Clone, Debug, Deserialize)]
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
    #[serde(default)]
    pub link_id: Option<String>,
    #[serde(default)]
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

/// A field that is a string in a form and a number in the fetch's JSON.
fn string_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u64),
    }
    Ok(match Either::deserialize(deserializer)? {
        Either::Text(text) => text,
        Either::Number(number) => number.to_string(),
    })
}

// --- USSD ------------------------------------------------------------------------------------

/// A USSD session step: a form posted to the channel's USSD URL, answered with a
/// [`UssdReply`] within the operator's deadline.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UssdStep {
    /// Stable for the session.
    pub session_id: String,
    /// The code dialled, e.g. `*384*1234#`.
    pub service_code: String,
    pub phone_number: String,
    #[serde(default)]
    pub network_code: Option<String>,
    /// Every input of the session so far joined with `*`; empty on the first step.
    #[serde(default)]
    pub text: String,
}

impl UssdStep {
    /// Reads the callback's form.
    ///
    /// # Errors
    ///
    /// When a required field is missing.
    pub fn from_form(body: &[u8]) -> Result<Self, serde_urlencoded::de::Error> {
        serde_urlencoded::from_bytes(body)
    }

    /// The customer's inputs in order (none on the first step). An input that itself holds
    /// `*` cannot be told apart from two: the provider joins them so.
    #[must_use]
    pub fn inputs(&self) -> Vec<&str> {
        if self.text.is_empty() { Vec::new() } else { self.text.split('*').collect() }
    }

    /// The latest input, if any.
    #[must_use]
    pub fn latest_input(&self) -> Option<&str> {
        self.inputs().last().copied()
    }
}

/// The answer to a USSD step: a menu that waits for input, or the session's last screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UssdReply {
    Continue(String),
    End(String),
}

impl UssdReply {
    /// The `text/plain` body: `CON <menu>` or `END <text>` (the space is part of the prefix).
    #[must_use]
    pub fn body(&self) -> String {
        match self {
            Self::Continue(menu) => format!("CON {menu}"),
            Self::End(text) => format!("END {text}"),
        }
    }

    /// Reads a body as the provider does: `CON ` or `END ` first, or nothing it accepts (it
    /// then ends the session).
    #[must_use]
    pub fn parse(body: &str) -> Option<Self> {
        if let Some(menu) = body.strip_prefix("CON ") {
            Some(Self::Continue(menu.to_owned()))
        } else {
            body.strip_prefix("END ").map(|text| Self::End(text.to_owned()))
        }
    }
}
