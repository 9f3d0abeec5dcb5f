//! Africa's Talking airtime: the send (`POST /version1/airtime/send`, recipients as a JSON
//! list inside the form), its per-recipient answer, and the status callback, with
//! transformers to an [`AirtimeOutcome`].

use serde::{Deserialize, Serialize};

use super::{meaningful, money};
use crate::money::Money;

/// One airtime recipient as the form's `recipients` JSON spells it: the amount is
/// `"<currency> <decimal>"`, e.g. `"KES 100.00"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AirtimeRecipient {
    pub phone_number: String,
    pub amount: String,
}

impl AirtimeRecipient {
    /// `amount` of airtime for `phone_number` (E.164).
    #[must_use]
    pub fn new(phone_number: &str, amount: Money) -> Self {
        Self {
            phone_number: phone_number.to_owned(),
            amount: format!("{} {}", amount.currency().code(), amount.amount()),
        }
    }

    /// The amount as [`Money`], when it reads.
    #[must_use]
    pub fn money(&self) -> Option<Money> {
        money(&self.amount)
    }
}

/// The send form: `username` and `recipients`, a JSON list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendAirtime {
    pub username: String,
    /// The recipients as a JSON string.
    pub recipients: String,
}

impl SendAirtime {
    /// A send of airtime to each of `recipients`.
    ///
    /// # Errors
    ///
    /// None in practice: the recipients are strings.
    pub fn new(username: &str, recipients: &[AirtimeRecipient]) -> Result<Self, serde_json::Error> {
        Ok(Self { username: username.to_owned(), recipients: serde_json::to_string(recipients)? })
    }

    /// The form body.
    ///
    /// # Errors
    ///
    /// None in practice: every field is a string.
    pub fn form(&self) -> Result<String, serde_urlencoded::ser::Error> {
        serde_urlencoded::to_string(self)
    }

    /// Reads the form (as the simulator receives it).
    ///
    /// # Errors
    ///
    /// When a field is missing.
    pub fn from_form(body: &[u8]) -> Result<Self, serde_urlencoded::de::Error> {
        serde_urlencoded::from_bytes(body)
    }

    /// The recipients the JSON lists.
    ///
    /// # Errors
    ///
    /// When it is not a list of recipients.
    pub fn recipients(&self) -> Result<Vec<AirtimeRecipient>, serde_json::Error> {
        serde_json::from_str(&self.recipients)
    }
}

/// The answer to a send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AirtimeResponse {
    /// `"None"` when the request as a whole went through.
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub num_sent: Option<u32>,
    /// `"KES 1000.0000"`.
    #[serde(default)]
    pub total_amount: Option<String>,
    #[serde(default)]
    pub total_discount: Option<String>,
    #[serde(default)]
    pub responses: Vec<AirtimeEntry>,
}

/// One recipient of a send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AirtimeEntry {
    pub phone_number: String,
    /// `"None"` when it went through.
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub amount: Option<String>,
    /// `Sent` (passed to the operator; the result comes by callback), or why not.
    pub status: String,
    /// `ATQid_…`; the status callback names it. `"None"` for a failed one.
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub discount: Option<String>,
}

/// What a send came to for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AirtimeOutcome {
    /// Passed to the operator: the status callback names `request_id` with the result.
    /// Amounts are kept when exact in their currency's minor unit.
    Sent { request_id: String, amount: Option<Money>, discount: Option<Money> },
    /// Refused for good.
    Failed { reason: String },
}

impl AirtimeEntry {
    /// The recipient's outcome: `Sent` (or `Queued`) with a request id is on its way;
    /// anything else failed, with the provider's reason.
    #[must_use]
    pub fn outcome(&self) -> AirtimeOutcome {
        let request_id = meaningful(self.request_id.as_deref());
        match (self.status.trim(), request_id) {
            ("Sent" | "Queued", Some(request_id)) => AirtimeOutcome::Sent {
                request_id: request_id.to_owned(),
                amount: self.amount.as_deref().and_then(money),
                discount: self.discount.as_deref().and_then(money),
            },
            (status, _) => AirtimeOutcome::Failed {
                reason: meaningful(self.error_message.as_deref())
                    .map_or_else(|| status.to_owned(), str::to_owned),
            },
        }
    }
}

impl AirtimeResponse {
    /// Every recipient's number and outcome, in the answer's order.
    #[must_use]
    pub fn outcomes(&self) -> Vec<(String, AirtimeOutcome)> {
        self.responses.iter().map(|entry| (entry.phone_number.clone(), entry.outcome())).collect()
    }

    /// The total sent, when it reads exactly.
    #[must_use]
    pub fn total(&self) -> Option<Money> {
        self.total_amount.as_deref().and_then(money)
    }
}

/// The status callback: the operator's final word on one request. Sent as a form, or as
/// JSON by newer accounts; [`AirtimeStatus::read`] takes either.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AirtimeStatus {
    pub request_id: String,
    /// `Success` or `Failed`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A status callback that is neither a readable form nor readable JSON.
#[derive(Debug, thiserror::Error)]
#[error("an unreadable airtime status callback")]
pub struct UnreadableStatus;

impl AirtimeStatus {
    /// Reads the callback, JSON when it starts with `{`, else a form.
    ///
    /// # Errors
    ///
    /// [`UnreadableStatus`] when a required field is missing or the body reads as neither.
    pub fn read(body: &[u8]) -> Result<Self, UnreadableStatus> {
        let json = body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
        if json {
            serde_json::from_slice(body).map_err(|_| UnreadableStatus)
        } else {
            serde_urlencoded::from_bytes(body).map_err(|_| UnreadableStatus)
        }
    }

    /// The form body (as the simulator sends it).
    ///
    /// # Errors
    ///
    /// None in practice: every field is a string.
    pub fn form(&self) -> Result<String, serde_urlencoded::ser::Error> {
        serde_urlencoded::to_string(self)
    }

    /// The request it is about and whether the airtime arrived: only `Success` says so.
    #[must_use]
    pub fn result(&self) -> (String, bool) {
        (self.request_id.clone(), self.status.trim() == "Success")
    }
}
