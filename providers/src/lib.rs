//! Provider adapters: one module per operator, bank or messaging provider.
//!
//! Each adapter holds the provider's wire types (with its exact field names and quirks), pure
//! transformers between those and our types, and (with the payment lifecycle) a thin HTTP
//! client. Providers never touch the database, and depend on the ledger for its types only.
//!
//! What every adapter reports about a payment is a [`StatusReport`]: the provider's status
//! mapped with *pending as the default* — only an explicit success is [`Status::Succeeded`],
//! only an explicit failure is [`Status::Failed`], and anything else (an unknown code, a
//! timeout notice, a status the provider calls pending) is [`Status::Pending`], to be resolved
//! by asking the provider again.

pub mod africastalking;
pub mod email;
pub mod http;
pub mod iso20022;
pub mod lifecycle;
pub mod messaging;
pub mod messenger;
pub mod meta;
pub mod momo;
pub mod momo_client;
pub mod mpesa;
pub mod mpesa_client;
pub mod sms;
pub mod statements;
pub mod telegram;
pub mod whatsapp;
pub mod wire;

/// The ledger types an adapter speaks in, re-exported so adapters need one import path.
pub use hazina_ledger::money;

use hazina_ledger::money::Money;

/// A credential or token (consumer secret, passkey, security credential, API key, access
/// token). It goes on the wire as the plain string, and its `Debug` output is redacted so that
/// it never reaches a log through a `{:?}` of whatever holds it.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A payment's state as a provider reported it, in our terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Not known to have succeeded or failed: keep the reservation, ask again later.
    Pending,
    /// The provider explicitly says the money moved.
    Succeeded,
    /// The provider explicitly says it did not, and will not.
    Failed,
}

/// What one provider message says about one payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusReport {
    pub status: Status,
    /// Our own reference for the payment, when the message carries it (M-Pesa's
    /// `OriginatorConversationID`, MTN's `externalId`, ISO 20022's `EndToEndId`, …).
    pub our_reference: Option<String>,
    /// The provider's reference for the request (M-Pesa's `CheckoutRequestID` or
    /// `ConversationID`, MTN's reference id, …), used to match a callback to a request.
    pub request_reference: Option<String>,
    /// The provider's reference for the completed transaction (M-Pesa's receipt, MTN's
    /// `financialTransactionId`, a bank's `AcctSvcrRef`), stored when the payment posts.
    pub receipt: Option<String>,
    /// The provider's own code and description, kept verbatim for the payment's history.
    pub code: Option<String>,
    pub description: Option<String>,
    /// The amount the provider reports, when it reports one.
    pub amount: Option<Money>,
    /// Who paid and who was paid, as the provider names them (a phone number, a shortcode or
    /// an account, masked or not, sometimes followed by ` - ` and a name), when it says.
    pub payer: Option<String>,
    pub payee: Option<String>,
}

impl StatusReport {
    /// A report with only a status; the references and details are filled in by the adapter.
    pub fn new(status: Status) -> Self {
        Self {
            status,
            our_reference: None,
            request_reference: None,
            receipt: None,
            code: None,
            description: None,
            amount: None,
            payer: None,
            payee: None,
        }
    }
}

/// A provider message that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("malformed XML: {0}")]
    Xml(#[from] quick_xml::DeError),
    /// Well-formed, but not what the provider sends (with what was wrong).
    #[error("unexpected message: {0}")]
    Unexpected(String),
    #[error("invalid amount: {0}")]
    Amount(#[from] hazina_ledger::money::MoneyError),
}
