//! A customer's payments (the ledger's transfers that name the customer, with their status
//! through a provider) and the timeline: those payments, the customer's activities and the
//! messages to and from them merged, newest first, a page at a time. Every statement names the
//! org.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use hazina_ledger::rules::{RejectReason, Transfer};
use hazina_ledger::store::Store;
use hazina_ledger::{CustomerId, OrgId, TransferId};
use hazina_providers::messaging::DeliveryStatus;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::activities::{self, Activity};
use super::{CustomerError, RECENT_PAYMENTS_MAX};
use crate::payments::{Engine, PaymentStatus};
use crate::schema::{self, Typed};

// --- Payments -----------------------------------------------------------------------------

/// One leg of a payment: money leaving (debit) or entering (credit) an account.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentLeg {
    pub account_id: Uuid,
    pub side: &'static str,
    pub currency_code: &'static str,
    /// A decimal string.
    pub amount: String,
}

/// A transfer the customer took part in, as a payment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub transaction_id: Uuid,
    pub at: DateTime<Utc>,
    /// The platform's payment status: `success`, or why it was not made; for a payment
    /// through a provider, where it is now (`pending_confirmation`, `success`, `failed`, …).
    pub status: PaymentStatus,
    /// The provider's receipt, for a payment through a provider that succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// For a payment through a provider, every status it passed through, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub status_history: Vec<crate::payments::StatusChange>,
    /// The ledger's reason when it was not made.
    pub reason: Option<&'static str>,
    pub code: String,
    pub legs: Vec<PaymentLeg>,
    pub narration: Option<String>,
    /// The parties as the payment was asked for (none for a transfer made otherwise).
    #[schema(value_type = Option<crate::money::Party>)]
    pub debit_party: Option<serde_json::Value>,
    #[schema(value_type = Option<crate::money::Party>)]
    pub credit_party: Option<serde_json::Value>,
    /// The app that made it, when an app key did.
    pub app_id: Option<Uuid>,
    /// The message that led to it (its context's `messageId`), when one was named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
}

impl From<&Transfer> for Payment {
    fn from(transfer: &Transfer) -> Self {
        let payment = transfer.context.get("payment");
        let field = |name: &str| payment.and_then(|p| p.get(name)).filter(|v| !v.is_null());
        Self {
            transaction_id: transfer.id.0,
            at: transfer.created_at,
            status: PaymentStatus::of_outcome(transfer.rejection),
            receipt: None,
            status_history: Vec::new(),
            reason: transfer.rejection.map(RejectReason::code),
            code: transfer.code.clone(),
            legs: transfer
                .postings
                .iter()
                .map(|posting| PaymentLeg {
                    account_id: posting.account.0,
                    side: posting.side.as_str(),
                    currency_code: posting.amount.currency().code(),
                    amount: posting.amount.amount().to_string(),
                })
                .collect(),
            narration: field("narration").and_then(|v| v.as_str()).map(str::to_owned),
            debit_party: field("debitParty").cloned(),
            credit_party: field("creditParty").cloned(),
            app_id: field("appId").and_then(|v| v.as_str()).and_then(|v| v.parse().ok()),
            message_id: field("messageId").and_then(|v| v.as_str()).and_then(|v| v.parse().ok()),
        }
    }
}

/// The payments with these ids, in the order of the ids; any the ledger has no record of are
/// left out.
pub(super) async fn payments(
    store: &Store,
    engine: &Engine,
    org: OrgId,
    ids: &[TransferId],
) -> Result<Vec<Payment>, CustomerError> {
    let transfers = store.transfers(org, ids).await?;
    let raw: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
    let through_providers = engine.records(org, &raw).await?;
    let provider_ids: Vec<Uuid> = through_providers.iter().map(|r| r.id).collect();
    let mut changes = engine.status_changes_of(org, &provider_ids).await?;
    Ok(ids
        .iter()
        .filter_map(|id| transfers.iter().find(|transfer| transfer.id == *id))
        .map(|transfer| {
            let mut payment = Payment::from(transfer);
            // A reservation is accepted by the ledger long before the provider settles it.
            if let Some(record) = through_providers.iter().find(|r| r.id == transfer.id.0) {
                payment.status.clone_from(&record.status);
                payment.receipt.clone_from(&record.receipt);
                payment.status_history = changes.remove(&record.id).unwrap_or_default();
            }
            payment
        })
        .collect())
}

/// The ids of the customer's newest payments, newest first.
pub(super) async fn recent_payment_ids(
    client: &impl GenericClient,
    org: OrgId,
    customer: CustomerId,
) -> Result<Vec<TransferId>, CustomerError> {
    let rows = client
        .query(
            "SELECT transfer_id FROM customer_transfers WHERE org_id = $3 AND customer_id = $1
             ORDER BY at DESC, transfer_id DESC LIMIT $2",
            &[&customer.0, &RECENT_PAYMENTS_MAX, &org.0],
        )
        .await?;
    Ok(rows.iter().map(|row| TransferId(row.get(0))).collect())
}

// --- Messages -----------------------------------------------------------------------------

/// A message to or from the customer on one of the org's messaging channels, as the timeline
/// shows it (`GET /v1/messages/{id}` has the rest: its costs and every status it took).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: Uuid,
    /// `outbound` (to the customer) or `inbound` (from them).
    pub direction: String,
    /// The channel's kind: `sms`, `voice`, `ussd`, `whatsapp`, `telegram`, `messenger`,
    /// `email`.
    pub channel: String,
    /// The channel's number: its short code, sender id, USSD code, address or bot.
    pub channel_number: String,
    /// Where it is now: `queued`, `sent`, `delivered`, `read`, `failed`, …; `received` for an
    /// inbound one.
    pub status: String,
    /// The status's numeric code (1xx on its way, 3xx arrived, 4xx and 5xx not delivered).
    pub status_code: u16,
    /// What was sent (`{"kind": …}`), or the parts received for an inbound one.
    pub body: serde_json::Value,
    /// The message it answers, when known.
    pub reply_to: Option<Uuid>,
    /// The payment it is about (`paymentId` when it was sent), shown on this timeline too.
    pub payment_id: Option<Uuid>,
    /// The session (USSD, voice) it belongs to.
    pub session_id: Option<String>,
    /// When it was queued (outbound) or received (inbound).
    pub at: DateTime<Utc>,
}

/// The customer of the org's message `id` (the customer that adopted theirs, after a merge),
/// or `None` when the org has no such message.
///
/// # Errors
///
/// The database's.
pub async fn message_customer(
    pool: &Pool,
    org: OrgId,
    id: Uuid,
) -> Result<Option<CustomerId>, CustomerError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT coalesce(
                 (SELECT a.customer_id FROM customer_aliases a
                  WHERE a.org_id = m.org_id AND a.old_customer_id = m.customer_id),
                 m.customer_id)
             FROM messages m WHERE m.org_id = $1 AND m.id = $2",
            &[&org.0, &id],
        )
        .await?;
    Ok(row.map(|row| CustomerId(row.get(0))))
}

/// The customer's messages with these ids, in no particular order; ids of no message of theirs
/// are left out.
async fn messages_by_ids(
    client: &impl GenericClient,
    org: OrgId,
    customer: CustomerId,
    ids: &[Uuid],
) -> Result<Vec<Message>, CustomerError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT m.id, m.direction, c.channel, c.channel_number, m.status, m.body,
                 m.reply_to, m.payment_id, m.session_id, m.created_at
             FROM messages m
             JOIN messaging_channels c ON c.org_id = m.org_id AND c.id = m.channel_id
             WHERE m.org_id = $1 AND m.customer_id = $2 AND m.id = ANY($3)",
            &[&org.0, &customer.0, &ids],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let name: &str = row.get(4);
            let status = DeliveryStatus::from_name(name)
                .ok_or_else(|| CustomerError::Corrupt(format!("message status {name:?}")))?;
            Ok(Message {
                id: row.get(0),
                direction: row.get(1),
                channel: row.get(2),
                channel_number: row.get(3),
                status: status.as_str().to_owned(),
                status_code: status.code(),
                body: row.get(5),
                reply_to: row.get(6),
                payment_id: row.get(7),
                session_id: row.get(8),
                at: row.get(9),
            })
        })
        .collect()
}

// --- Timeline -----------------------------------------------------------------------------

/// One item of a timeline: an activity, a payment or a message, each with its time `at`, told
/// apart by `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum TimelineItem {
    Activity(Activity),
    Payment(Payment),
    Message(Message),
}

/// The kinds of [`TimelineItem`], each a schema of its own.
const TIMELINE_ITEMS: [Typed; 3] = [
    Typed { kind: "activity", name: "ActivityItem", of: "Activity" },
    Typed { kind: "payment", name: "PaymentItem", of: "Payment" },
    Typed { kind: "message", name: "MessageItem", of: "Message" },
];

impl utoipa::PartialSchema for TimelineItem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        schema::typed_union(
            "One item of a timeline: an activity, a payment or a message, each with its time \
             `at`, told apart by `type`. A payment names the message that led to it \
             (`messageId`), a message the payment it is about (`paymentId`).",
            &TIMELINE_ITEMS,
        )
    }
}

impl ToSchema for TimelineItem {
    fn schemas(schemas: &mut schema::Schemas) {
        use utoipa::PartialSchema;
        schema::typed_variants(&TIMELINE_ITEMS, schemas);
        schemas.extend([
            ("Activity".to_owned(), Activity::schema()),
            ("Payment".to_owned(), Payment::schema()),
            ("Message".to_owned(), Message::schema()),
        ]);
        <Activity as ToSchema>::schemas(schemas);
        <Payment as ToSchema>::schemas(schemas);
        <Message as ToSchema>::schemas(schemas);
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub items: Vec<TimelineItem>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Where a timeline page ends: the time and id of its last item, which order items newest
/// first (ids break ties), whatever its kind: every kind is read after the same position, so a
/// cursor given before messages were on the timeline still reads (they are all UUIDs, and a
/// message's time is its `created_at`). Opaque to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    at: DateTime<Utc>,
    id: Uuid,
}

/// What a cursor looks like: the time in microseconds since 1970 and the id, so that the
/// document can say exactly which cursors the server takes (any position is a valid one).
pub const CURSOR_PATTERN: &str = "^-?[0-9]{1,18}_[0-9a-f]{32}$";

impl Cursor {
    /// The cursor as clients see it (`CURSOR_PATTERN`).
    pub fn encode(self) -> String {
        format!("{}_{}", self.at.timestamp_micros(), self.id.simple())
    }

    /// The cursor [`Cursor::encode`] gives, or one the previous release gave (the same in
    /// URL-safe base64, with `:`), or `None` for anything else.
    pub fn decode(cursor: &str) -> Option<Self> {
        let previous;
        let (micros, id) = if let Some(parts) = cursor.split_once('_') {
            parts
        } else {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
            previous = String::from_utf8(bytes).ok()?;
            previous.split_once(':')?
        };
        let at = micros.parse().ok().and_then(DateTime::from_timestamp_micros)?;
        // Every position is a valid cursor, but PostgreSQL keeps no time before 4713 BC: one
        // before all that it can keep is before everything, which its earliest time is too.
        let earliest = chrono::NaiveDate::from_ymd_opt(-4712, 1, 1)
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map(|time| time.and_utc())?;
        Some(Self { at: at.max(earliest), id: id.parse().ok()? })
    }
}

/// A page of the customer's timeline: its activities, payments and messages merged, newest
/// first (ids break ties), at most `limit` items after `cursor`.
pub async fn page(
    pool: &Pool,
    store: &Store,
    engine: &Engine,
    org: OrgId,
    customer: CustomerId,
    cursor: Option<Cursor>,
    limit: i64,
) -> Result<Timeline, CustomerError> {
    let client = pool.get().await?;
    let customer = super::store::check_on(&client, org, customer.0).await?;
    // One more than a page, to know whether there is another.
    let fetch = limit + 1;
    // A priced message's cost is a transfer under the message's id, linked to its customer:
    // the timeline shows the message once, as a message (its cost is on the message). Every
    // kind is read after the same position, so a cursor given before messages were on the
    // timeline reads as it did.
    let (after_activity, after_payment, after_message, org_param) = if cursor.is_some() {
        (
            "AND (at, id) < ($3, $4)",
            "AND (at, transfer_id) < ($3, $4)",
            "AND (created_at, id) < ($3, $4)",
            "$5",
        )
    } else {
        ("", "", "", "$3")
    };
    let sql = format!(
        "SELECT kind, id, at FROM (
             (SELECT 'activity' AS kind, id, at FROM activities
              WHERE org_id = {org_param} AND customer_id = $1 {after_activity}
              ORDER BY at DESC, id DESC LIMIT $2)
             UNION ALL
             (SELECT 'payment', transfer_id, at FROM customer_transfers t
              WHERE org_id = {org_param} AND customer_id = $1 {after_payment}
                  AND NOT EXISTS (SELECT 1 FROM messages m
                      WHERE m.org_id = t.org_id AND m.id = t.transfer_id)
              ORDER BY at DESC, transfer_id DESC LIMIT $2)
             UNION ALL
             (SELECT 'message', id, created_at FROM messages
              WHERE org_id = {org_param} AND customer_id = $1 {after_message}
              ORDER BY created_at DESC, id DESC LIMIT $2)
         ) AS items ORDER BY at DESC, id DESC LIMIT $2"
    );
    let rows = match cursor {
        Some(Cursor { at, id }) => {
            client.query(&sql, &[&customer.0, &fetch, &at, &id, &org.0]).await?
        }
        None => client.query(&sql, &[&customer.0, &fetch, &org.0]).await?,
    };
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    let page: Vec<(String, Uuid, DateTime<Utc>)> = rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let activity_ids: Vec<Uuid> =
        page.iter().filter(|(kind, ..)| kind == "activity").map(|(_, id, _)| *id).collect();
    let payment_ids: Vec<TransferId> = page
        .iter()
        .filter(|(kind, ..)| kind == "payment")
        .map(|(_, id, _)| TransferId(*id))
        .collect();
    let mut activities: Vec<Option<Activity>> =
        activities::by_ids(&client, org, customer, &activity_ids)
            .await?
            .into_iter()
            .map(Some)
            .collect();
    let mut payments: Vec<Option<Payment>> =
        payments(store, engine, org, &payment_ids).await?.into_iter().map(Some).collect();
    let message_ids: Vec<Uuid> =
        page.iter().filter(|(kind, ..)| kind == "message").map(|(_, id, _)| *id).collect();
    let mut messages: Vec<Option<Message>> = messages_by_ids(&client, org, customer, &message_ids)
        .await?
        .into_iter()
        .map(Some)
        .collect();
    let items = page
        .iter()
        .filter_map(|(kind, id, _)| match kind.as_str() {
            "activity" => {
                let found = activities
                    .iter_mut()
                    .find(|a| a.as_ref().is_some_and(|a| a.activity_id == *id));
                found.and_then(Option::take).map(TimelineItem::Activity)
            }
            "payment" => {
                let found = payments
                    .iter_mut()
                    .find(|p| p.as_ref().is_some_and(|p| p.transaction_id == *id));
                found.and_then(Option::take).map(TimelineItem::Payment)
            }
            _ => {
                let found = messages.iter_mut().find(|m| m.as_ref().is_some_and(|m| m.id == *id));
                found.and_then(Option::take).map(TimelineItem::Message)
            }
        })
        .collect();
    let next_cursor =
        more.then(|| page.last().map(|(_, id, at)| Cursor { at: *at, id: *id }.encode())).flatten();
    Ok(Timeline { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = Cursor {
            at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap_or_default(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        let (micros, id) =
            cursor.encode().split_once('_').map(|(m, i)| (m.len(), i.len())).unwrap();
        assert_eq!((micros, id), (16, 32), "{}", cursor.encode());
        // The previous release's form still reads.
        let previous = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("1700000000123456:{}", cursor.id.simple()));
        assert_eq!(Cursor::decode(&previous), Some(cursor));
        // Every cursor the document's pattern allows is a position, the extremes too.
        for edge in ["999999999999999999", "-999999999999999999", "0"] {
            let cursor = format!("{edge}_{}", "f".repeat(32));
            assert!(Cursor::decode(&cursor).is_some(), "{cursor}");
        }
        for garbage in
            ["", "!!", "bm9wZQ", "MTIzOm5vdC1hLXV1aWQ", "1_2", "x_ffffffffffffffffffffffffffffffff"]
        {
            assert!(Cursor::decode(garbage).is_none(), "{garbage}");
        }
    }
}
