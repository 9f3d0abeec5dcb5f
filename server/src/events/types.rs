//! The event types: stable names, each with a versioned payload (`data`) documented as a
//! schema of its own. A payload only ever gains optional members within a version; anything
//! else is a new version.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::customers::activities::Activity;

macro_rules! event_types {
    ($($(#[doc = $doc:literal])+ $variant:ident = $name:literal => $data:ty,)+) => {
        /// What happened.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize,
            serde::Deserialize)]
        pub enum EventType {
            $($(#[doc = $doc])+ #[serde(rename = $name)] $variant,)+
        }

        impl EventType {
            /// Every type, in the order documented.
            pub const ALL: &[Self] = &[$(Self::$variant,)+];

            /// The type's stable name.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            /// The type with this name.
            #[must_use]
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The name of the schema of the type's payload.
            #[must_use]
            pub fn data_schema(self) -> String {
                match self {
                    $(Self::$variant => <$data as ToSchema>::name().into_owned(),)+
                }
            }
        }

        // By hand: a derive would not see the names through this macro's literals.
        impl utoipa::PartialSchema for EventType {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let names = [$($name,)+];
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .description(Some(format!(
                        "What happened: {}.",
                        names.map(|name| format!("`{name}`")).join(", ")
                    )))
                    .enum_values(Some(names))
                    .into()
            }
        }

        impl ToSchema for EventType {}

        /// The payload schemas, by name, for the OpenAPI document.
        pub fn data_schemas() -> Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::Schema>)> {
            let mut schemas = Vec::new();
            $(
                schemas.push((
                    <$data as ToSchema>::name().into_owned(),
                    <$data as utoipa::PartialSchema>::schema(),
                ));
                <$data as ToSchema>::schemas(&mut schemas);
            )+
            schemas.sort_by(|a, b| a.0.cmp(&b.0));
            schemas.dedup_by(|a, b| a.0 == b.0);
            schemas
        }
    };
}

event_types! {
    /// A payment's status changed (every status, with the platform's status code); for a
    /// payment between purses and wallets, told with its transfer (same sequence number).
    PaymentStatusChanged = "payment.status_changed" => PaymentStatusData,
    /// A customer paid unprompted (an M-Pesa C2B payment), as first recorded.
    PaymentReceived = "payment.received" => PaymentStatusData,
    /// A purse's or wallet's balance changed (delivered only to those who ask for it: one per
    /// account a transfer moved).
    BalanceChanged = "balance.changed" => BalanceChangedData,
    /// A transfer was posted (directly, or a pending one posted).
    TransferPosted = "transfer.posted" => TransferData,
    /// A pending transfer reserved money.
    TransferPending = "transfer.pending" => TransferData,
    /// A pending transfer was voided.
    TransferVoided = "transfer.voided" => TransferData,
    /// A pending transfer expired.
    TransferExpired = "transfer.expired" => TransferData,
    /// A transfer was reversed.
    TransferReversed = "transfer.reversed" => TransferData,
    /// A reminder fell due.
    ReminderDue = "reminder.due" => ReminderDueData,
    /// An app recorded what a customer did.
    CustomerActivityRecorded = "customer.activity_recorded" => Activity,
    /// A customer was made (first seen by a number).
    CustomerCreated = "customer.created" => CustomerData,
    /// A customer adopted another's state; the other's id now resolves to it.
    CustomerMerged = "customer.merged" => CustomerMergedData,
    /// A tag was set on a customer (new, or a new value).
    CustomerTagAdded = "customer.tag_added" => TagData,
    /// A tag was removed from a customer.
    CustomerTagRemoved = "customer.tag_removed" => TagData,
    /// A message's delivery status changed (every status, with the platform's status code).
    MessageStatusChanged = "message.status_changed" => MessageStatusData,
    /// A customer sent a message, or a session (USSD, a voice call) took a step.
    MessageReceived = "message.received" => ReceivedMessageData,
    /// A customer allowed or blocked messages on a channel.
    MessagingConsentChanged = "messaging.consent_changed" => ConsentData,
    /// A USSD session or a voice call ended, or an app failed to answer one of its steps.
    MessagingSessionChanged = "messaging.session_changed" => SessionData,
    /// A webhook endpoint failed for so long that it was disabled.
    WebhookEndpointDisabled = "webhook_endpoint.disabled" => WebhookEndpointDisabledData,
    /// A reconciliation run found something it could not match, or matched with a
    /// difference: an exception for a person to resolve.
    ReconciliationExceptionOpened = "reconciliation.exception_opened" => ExceptionData,
    /// A reconciliation exception was resolved (by hand, or matched by a later run).
    ReconciliationExceptionResolved = "reconciliation.exception_resolved" => ExceptionData,
}

impl EventType {
    /// Whether the type is derived from another event when delivered, rather than stored: a
    /// transfer's `balance.changed` events.
    #[must_use]
    pub fn is_derived(self) -> bool {
        self == Self::BalanceChanged
    }
}

/// An amount in a currency, as payloads carry it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Amount {
    pub currency_code: String,
    /// A plain decimal string, exact.
    pub amount: String,
}

impl Amount {
    #[must_use]
    pub fn of(money: &hazina_ledger::Money) -> Self {
        Self {
            currency_code: money.currency().code().to_owned(),
            amount: money.amount().to_string(),
        }
    }
}

/// A payment, as its status changed: through a provider (every status it passes), or between
/// the ledger's parties (purses, wallets: `success` at once, told with its transfer).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentStatusData {
    pub transaction_id: Uuid,
    /// `payout`, `collection` or `received` through a provider; `ledger` between purses and
    /// wallets (its parties are in the event's `context.payment`).
    pub flow: String,
    /// The new status, e.g. `success`.
    pub status: String,
    /// The platform's numeric code of the status (e.g. 300 for success).
    pub status_code: u16,
    /// The status before, if there was one.
    pub previous_status: Option<String>,
    pub value: Amount,
    /// The provider channel (none between the ledger's parties).
    pub channel_id: Option<Uuid>,
    /// The customer's mobile-money number (none between the ledger's parties).
    pub customer_number: Option<String>,
    pub provider_code: Option<String>,
    pub description: Option<String>,
}

/// A transfer, as the ledger recorded it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferData {
    pub transfer_id: Uuid,
    /// `posted`, `pending`, `post_pending`, `void_pending`, `expire_pending` or `reversal`.
    pub kind: String,
    pub code: String,
    pub legs: Vec<LegData>,
    pub pending_id: Option<Uuid>,
    pub reversal_of: Option<Uuid>,
    pub effective_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// What each account moved holds after it.
    pub balances: Vec<BalanceChangedData>,
}

/// One leg of a transfer.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegData {
    pub account_id: Uuid,
    /// `debit` or `credit`.
    pub side: String,
    pub currency_code: String,
    pub amount: String,
}

/// An account's balances after a transfer.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceChangedData {
    pub account_id: Uuid,
    /// `purse`, `wallet`, `channel`, …
    pub account_kind: String,
    pub customer_id: Option<Uuid>,
    pub wallet_id: Option<String>,
    pub transfer_id: Uuid,
    /// The account's version after the transfer: balance events of one account are ordered
    /// by it.
    pub version: i64,
    pub currency_code: String,
    /// Settled balance.
    pub actual: String,
    /// What can be spent now.
    pub available: String,
    /// Once every pending transfer is posted.
    pub pending: String,
}

/// A reminder that fell due.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReminderDueData {
    pub key: String,
    /// The time it was due (the one it fired for).
    pub remind_at: DateTime<Utc>,
    /// Seconds between repeats, for a repeating reminder.
    pub interval: Option<u64>,
    pub payload: Option<String>,
    /// The tag that chose the customer, for a reminder set by tag.
    pub tag: Option<TagData>,
}

/// A customer, by the number it was first seen with.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerData {
    pub customer_id: Uuid,
    /// The number's provider (`cellular`, `email`, …), if made by number.
    pub provider: Option<String>,
    pub number: Option<String>,
}

/// A customer that adopted another's state.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerMergedData {
    /// The customer that remains.
    pub customer_id: Uuid,
    /// The customer adopted, whose id now resolves to `customerId`.
    pub merged_customer_id: Uuid,
}

/// A customer's tag.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagData {
    pub key: String,
    pub value: String,
}

/// A webhook endpoint disabled for failing.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpointDisabledData {
    pub endpoint_id: Uuid,
    pub url: String,
    /// Since when every delivery to it failed.
    pub failing_since: DateTime<Utc>,
}

/// A message's status, as `message.status_changed` tells it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageStatusData {
    pub message_id: Uuid,
    pub channel_id: Uuid,
    pub channel: String,
    pub customer_id: Uuid,
    /// `queued`, `sent`, `delivered`, `read`, `failed`, `no_consent`, `expired`, …
    pub status: String,
    /// The platform's delivery status code (`MessageDeliveryStatus`).
    pub status_code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    /// What the provider charged, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Amount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
}

/// A message from a customer, or a session's step, as `message.received` tells it. For a
/// USSD step or a voice call step, the endpoint's answer (`{"body": {...}}`) is the reply.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedMessageData {
    pub message_id: Uuid,
    pub channel_id: Uuid,
    pub channel: String,
    pub channel_number: String,
    pub customer_id: Uuid,
    pub customer_number: String,
    /// The message's parts: `text`, `media`, `location`, `email`, `ussd`, `voice`.
    #[schema(value_type = Vec<Object>)]
    pub parts: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Our message it answers, where the provider says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<Uuid>,
}

/// A customer's consent on a channel, as `messaging.consent_changed` tells it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentData {
    pub customer_id: Uuid,
    pub channel_id: Uuid,
    /// `allowed` or `blocked`.
    pub consent: String,
    /// Who said so: `api`, `keyword`, `provider`.
    pub source: String,
}

/// A session's status, as `messaging.session_changed` tells it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionData {
    pub channel_id: Uuid,
    pub channel: String,
    pub session_id: String,
    pub customer_id: Uuid,
    /// USSD: `active`, `completed`, `incomplete`, `app_error`; voice: the call's status.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A reconciliation exception, as its events tell it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionData {
    pub exception_id: Uuid,
    pub channel_id: Uuid,
    /// `unmatched_statement`, `unmatched_ledger` or `difference`.
    pub kind: String,
    /// `open` or `resolved`.
    pub status: String,
    /// `in` or `out` of the channel's account at the provider.
    pub direction: String,
    pub amount: Amount,
    /// Statement minus ledger, for a difference.
    pub difference: Amount,
    /// The statement line's key, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_key: Option<String>,
    /// The ledger transfer, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<Uuid>,
    /// How it was resolved, once it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// The transfer the resolution booked, if it booked one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution_transfer_id: Option<Uuid>,
}
