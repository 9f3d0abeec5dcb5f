//! A payment through a provider as the engine stores it: which way it goes (`Flow`), where it
//! is in its life (`Stage`), its row (`Record`) and the statuses it passed through.

use chrono::{DateTime, Utc};
use hazina_ledger::{AccountId, Money, OrgId};
use hazina_providers::lifecycle::{self, Settled};
use uuid::Uuid;

use super::{PaymentError, PaymentStatus, error};

/// Which way a payment goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Purse or wallet to the customer's mobile money (B2C, MoMo disbursement).
    Payout,
    /// The customer's mobile money to a purse or wallet, on our request (STK push, MoMo
    /// request to pay).
    Collect,
    /// The customer paid the channel unprompted (C2B confirmation).
    Received,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Payout => "payout",
            Self::Collect => "collect",
            Self::Received => "received",
        }
    }

    fn from_stored(name: &str) -> Result<Self, PaymentError> {
        match name {
            "payout" => Ok(Self::Payout),
            "collect" => Ok(Self::Collect),
            "received" => Ok(Self::Received),
            other => Err(PaymentError::Corrupt(format!("unknown payment flow {other:?}"))),
        }
    }
}

/// Where a payment is in its life (the row's `stage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Reserving,
    Sending,
    Sent,
    /// A trusted answer disagreed with the payment: held for an operator, nothing moves.
    Review,
    Settled,
}

impl Stage {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Reserving => "reserving",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Review => "review",
            Self::Settled => "settled",
        }
    }

    fn from_stored(name: &str) -> Result<Self, PaymentError> {
        match name {
            "reserving" => Ok(Self::Reserving),
            "sending" => Ok(Self::Sending),
            "sent" => Ok(Self::Sent),
            "review" => Ok(Self::Review),
            "settled" => Ok(Self::Settled),
            other => Err(PaymentError::Corrupt(format!("unknown payment stage {other:?}"))),
        }
    }
}

/// A payment through a provider, as stored.
#[derive(Clone, Debug)]
pub struct Record {
    pub id: Uuid,
    pub org: OrgId,
    pub app: Option<Uuid>,
    pub channel: Uuid,
    pub flow: Flow,
    pub customer: Option<Uuid>,
    pub msisdn: String,
    pub account: AccountId,
    pub amount: Money,
    pub our_reference: String,
    pub stage: Stage,
    pub status: PaymentStatus,
    pub settled: Option<Settled>,
    pub request_reference: Option<String>,
    pub receipt: Option<String>,
    pub provider_code: Option<String>,
    pub provider_description: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub request: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Why the payment is held for review, when it is.
    pub alert: Option<String>,
}

impl Record {
    pub(super) const COLUMNS: &str = "id, org_id, app_id, channel_id, flow, customer_id, msisdn, \
        account_id, currency, amount_minor, our_reference, stage, status, settled, \
        request_reference, receipt, provider_code, provider_description, attempts, \
        next_attempt_at, request, created_at, updated_at, alert";

    pub(super) fn from_row(row: &tokio_postgres::Row) -> Result<Self, PaymentError> {
        let currency = error::stored_currency(row.get(8))?;
        Ok(Self {
            id: row.get(0),
            org: OrgId(row.get(1)),
            app: row.get(2),
            channel: row.get(3),
            flow: Flow::from_stored(row.get(4))?,
            customer: row.get(5),
            msisdn: row.get(6),
            account: AccountId(row.get(7)),
            amount: Money::from_minor(currency, row.get(9)),
            our_reference: row.get(10),
            stage: Stage::from_stored(row.get(11))?,
            status: PaymentStatus::from_stored(row.get(12))?,
            settled: match row.get::<_, Option<&str>>(13) {
                None => None,
                Some("posted") => Some(Settled::Posted),
                Some("voided") => Some(Settled::Voided),
                Some(other) => {
                    return Err(PaymentError::Corrupt(format!("unknown settlement {other:?}")));
                }
            },
            request_reference: row.get(14),
            receipt: row.get(15),
            provider_code: row.get(16),
            provider_description: row.get(17),
            attempts: row.get(18),
            next_attempt_at: row.get(19),
            request: row.get(20),
            created_at: row.get(21),
            updated_at: row.get(22),
            alert: row.get(23),
        })
    }

    /// The payment's state for the lifecycle, with what a provider's answer must agree with:
    /// its amount, the customer's number and the channel's (`channel_number`) on their sides,
    /// and for a received payment, which only the provider's word made, its receipt too.
    pub(super) fn lifecycle(&self, channel_number: &str) -> lifecycle::Payment {
        let customer = Some(self.msisdn.clone()).filter(|m| !m.is_empty());
        let ours = Some(channel_number.to_owned());
        let (payer, payee) = match self.flow {
            Flow::Payout => (ours, customer),
            Flow::Collect | Flow::Received => (customer, ours),
        };
        let received = self.flow == Flow::Received;
        lifecycle::Payment {
            request_reference: self.request_reference.clone(),
            settled: self.settled,
            receipt: self.receipt.clone(),
            expected: Some(lifecycle::Expected {
                amount: self.amount,
                payer,
                payee,
                receipt: received.then(|| self.our_reference.clone()),
                complete: received,
            }),
        }
    }
}

/// One status a payment passed through.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: PaymentStatus,
    pub at: DateTime<Utc>,
    /// What said it: `request`, `response`, `callback`, `query` or `recovery`.
    pub source: String,
    pub provider_code: Option<String>,
    pub description: Option<String>,
}
