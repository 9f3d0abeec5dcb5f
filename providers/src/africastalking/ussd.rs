//! Africa's Talking USSD: a session step posted to our USSD URL, the `CON`/`END` reply, and
//! the end-of-session notification, with transformers to the platform's messaging terms.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{meaningful, money, timestamp};
use crate::messaging::{Body, Channel, Inbound, InboundPart, UssdInput, UssdSessionStatus};

/// How long the provider waits for our answer to a step before it ends the session.
/// Africa's Talking's help centre ("What is the duration of a USSD session for Kenyan
/// telcos") gives 15 s for the application's response (10 s to connect); other operators may
/// be stricter, so answer well within it.
pub const USSD_APP_RESPONSE_TIMEOUT: Duration = Duration::from_secs(15);

/// The longest a USSD session lasts, whatever happens in it (180 s, same source).
pub const USSD_SESSION_MAX: Duration = Duration::from_secs(180);

/// A USSD session step: a form posted to the channel's USSD URL, answered with a
/// [`UssdReply`] within [`USSD_APP_RESPONSE_TIMEOUT`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UssdStep {
    /// Stable for the session.
    pub session_id: String,
    /// The code dialled, e.g. `*384*1234#`.
    pub service_code: String,
    pub phone_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

    /// The form body (as the simulator sends it).
    ///
    /// # Errors
    ///
    /// None in practice: every field is a string.
    pub fn form(&self) -> Result<String, serde_urlencoded::ser::Error> {
        serde_urlencoded::to_string(self)
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

    /// The step in the platform's terms: an active session of the customer on our service
    /// code, with the latest input (none on the first step).
    #[must_use]
    pub fn inbound(&self) -> Inbound {
        Inbound {
            channel: Channel::Ussd,
            customer: self.phone_number.clone(),
            channel_number: self.service_code.clone(),
            provider_message_id: None,
            session_id: Some(self.session_id.clone()),
            in_reply_to: None,
            parts: vec![InboundPart::Ussd(UssdInput {
                status: UssdSessionStatus::Active,
                text: self.latest_input().map(str::to_owned),
            })],
            cost: None,
            received_at: None,
        }
    }
}

/// The answer to a USSD step: a menu that waits for input, or the session's last screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UssdReply {
    Continue(String),
    End(String),
}

impl UssdReply {
    /// The reply for a USSD body: `END` when it is terminal, else `CON`; `None` for any
    /// other kind of body.
    #[must_use]
    pub fn from_body(body: &Body) -> Option<Self> {
        match body {
            Body::Ussd { text, is_terminal: true } => Some(Self::End(text.clone())),
            Body::Ussd { text, is_terminal: false } => Some(Self::Continue(text.clone())),
            _ => None,
        }
    }

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

    /// The screen's text, without its keyword.
    #[must_use]
    pub fn text(&self) -> &str {
        match self {
            Self::Continue(text) | Self::End(text) => text,
        }
    }
}

/// The end-of-session notification (a form posted to the session-end URL).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UssdSessionEnd {
    pub session_id: String,
    pub service_code: String,
    pub phone_number: String,
    /// `Success` when the session ended with our `END`; `Failed` (or another word) when it
    /// ended otherwise (the customer left, a timeout, an unreadable reply).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// `"<currency> <amount>"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_in_millis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hops_count: Option<String>,
    /// Every input of the session joined with `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_app_response: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl UssdSessionEnd {
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

    /// `Completed` only for the provider's `Success`; anything else ended the session
    /// before the application did.
    #[must_use]
    pub fn session_status(&self) -> UssdSessionStatus {
        if self.status.trim() == "Success" {
            UssdSessionStatus::Completed
        } else {
            UssdSessionStatus::Incomplete
        }
    }

    /// The notification in the platform's terms: the session's final status, its last
    /// input and its cost when exact.
    #[must_use]
    pub fn inbound(&self) -> Inbound {
        let last_input = meaningful(self.input.as_deref())
            .and_then(|input| input.rsplit('*').next())
            .map(str::to_owned);
        Inbound {
            channel: Channel::Ussd,
            customer: self.phone_number.clone(),
            channel_number: self.service_code.clone(),
            provider_message_id: None,
            session_id: Some(self.session_id.clone()),
            in_reply_to: None,
            parts: vec![InboundPart::Ussd(UssdInput {
                status: self.session_status(),
                text: last_input,
            })],
            cost: self.cost.as_deref().and_then(money),
            received_at: self.date.as_deref().and_then(timestamp),
        }
    }
}
