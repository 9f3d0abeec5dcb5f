//! Reading the outbox back: pages of an org's events in sequence order, each rendered with
//! its payload (a transfer's read from the ledger), and a transfer's `balance.changed` events
//! derived for those who ask for them.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use hazina_ledger::store::{Account, Store};
use hazina_ledger::{AccountId, OrgId, TransferId};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::EventType;
use super::types::{Amount, BalanceChangedData, LegData, PaymentStatusData, TransferData};

/// An event as apps receive it (the same in a page, the stream and a webhook's body).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique; a webhook's `webhook-id`.
    pub id: Uuid,
    /// The org's sequence number, increasing in commit order: the cursor. A transfer's
    /// `balance.changed` events share its number.
    pub sequence: i64,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The version of `data`'s schema within the type.
    pub version: i16,
    pub occurred_at: DateTime<Utc>,
    pub org_id: Uuid,
    pub app_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    /// The ledger transfer it came from, if any.
    pub transfer_id: Option<Uuid>,
    /// The context of the change: the transfer's or the payment's, as the app gave it.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// The type's payload (see the `…Data` schemas).
    #[schema(value_type = Object)]
    pub data: Value,
}

/// Which events to read.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    /// Only these types (all stored types when empty; `balance.changed` only when named).
    pub types: BTreeSet<EventType>,
    /// Only this customer's.
    pub customer: Option<Uuid>,
    /// Only what this app may see: its own events and those of no app (an app key's view).
    pub app: Option<Uuid>,
}

impl EventFilter {
    fn wants(&self, kind: EventType) -> bool {
        if self.types.is_empty() { !kind.is_derived() } else { self.types.contains(&kind) }
    }

    fn wants_balances(&self) -> bool {
        self.types.contains(&EventType::BalanceChanged)
    }

    /// The stored types to read: those asked for, and every transfer's when balances are.
    fn stored_types(&self) -> Option<Vec<&'static str>> {
        if self.types.is_empty() {
            return None;
        }
        let mut types: BTreeSet<&'static str> =
            self.types.iter().filter(|kind| !kind.is_derived()).map(|kind| kind.as_str()).collect();
        if self.wants_balances() {
            types.extend(TRANSFER_TYPES.iter().map(|kind| kind.as_str()));
        }
        if self.types.contains(&EventType::PaymentStatusChanged) {
            // A payment between purses and wallets is told with its transfer.
            types.insert(EventType::TransferPosted.as_str());
        }
        Some(types.into_iter().collect())
    }
}

const TRANSFER_TYPES: [EventType; 5] = [
    EventType::TransferPosted,
    EventType::TransferPending,
    EventType::TransferVoided,
    EventType::TransferExpired,
    EventType::TransferReversed,
];

/// A page of events.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub events: Vec<Event>,
    /// The sequence number to read after next (`after`): the last one this page looked at,
    /// which may be past its last event when the filter left events out.
    pub next_after: i64,
    /// Whether more events (of any type) may follow at once.
    pub has_more: bool,
}

/// A stored event's row, before rendering.
struct Row {
    seq: i64,
    id: Uuid,
    kind: Option<EventType>,
    version: i16,
    app: Option<Uuid>,
    customer: Option<Uuid>,
    at: DateTime<Utc>,
    transfer: Option<Uuid>,
    accounts: Option<Value>,
    payload: Option<Value>,
    context: Option<Value>,
}

/// An event's columns, numbered, from its row joined to its batch (`b`, `r`).
const COLUMNS: &str = "b.first_seq + r.ord, r.batch_id, r.ord, r.type, r.version, r.app_id, \
    r.customer_id, r.at, r.transfer_id, r.accounts, r.payload, r.context";

/// Where events are read from: each row with its batch, whose `first_seq` numbers it.
const FROM: &str = "event_batches AS b \
    JOIN event_rows AS r ON r.org_id = b.org_id AND r.batch_id = b.batch_id";

/// Most events in one batch (`event_batches`' check): a batch that holds an event after a
/// number starts at most this far before it.
const BATCH_EVENTS_MAX: i64 = 10_000;

fn row(row: &tokio_postgres::Row) -> Row {
    let ord: i32 = row.get(2);
    Row {
        seq: row.get(0),
        // `ord` is below 65,536 (the table's check).
        id: hazina_ledger::store::event_id(row.get(1), u16::try_from(ord).unwrap_or(u16::MAX)),
        kind: EventType::from_name(row.get(3)),
        version: row.get(4),
        app: row.get(5),
        customer: row.get(6),
        at: row.get(7),
        transfer: row.get(8),
        accounts: row.get(9),
        payload: row.get(10),
        context: row.get(11),
    }
}

/// Failures reading events.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Store(#[from] hazina_ledger::store::StoreError),
}

/// Up to `limit` of the org's events after sequence number `after` that `filter` wants, in
/// sequence order.
///
/// # Errors
///
/// The database's.
pub async fn page(
    pool: &Pool,
    store: &Store,
    org: OrgId,
    after: i64,
    limit: i64,
    filter: &EventFilter,
) -> Result<EventPage, ReadError> {
    let client = pool.get().await?;
    let types = filter.stored_types();
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM {FROM}
                 WHERE b.org_id = $1 AND b.first_seq > $2::int8 - $7::int8 AND b.first_seq + r.ord > $2
                     AND ($3::text[] IS NULL OR r.type = ANY($3))
                     AND ($4::uuid IS NULL OR r.customer_id = $4)
                     AND ($6::uuid IS NULL OR r.app_id IS NULL OR r.app_id = $6)
                 ORDER BY b.first_seq, r.ord LIMIT $5"
            ),
            &[
                &org.0,
                &after,
                &types,
                &filter.customer,
                &(limit + 1),
                &filter.app,
                &BATCH_EVENTS_MAX,
            ],
        )
        .await?;
    drop(client);
    let mut rows: Vec<Row> = rows.iter().map(row).collect();
    let has_more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_after = rows.last().map_or(after, |row| row.seq);
    let events = render(store, org, rows, filter).await?;
    Ok(EventPage { events, next_after, has_more })
}

/// The org's last sequence number (0 before its first event): where a stream that starts now
/// starts after.
///
/// # Errors
///
/// The database's.
pub async fn last_sequence(pool: &Pool, org: OrgId) -> Result<i64, ReadError> {
    let client = pool.get().await?;
    let row = client
        .query_opt("SELECT last_seq FROM event_counters WHERE org_id = $1", &[&org.0])
        .await?;
    Ok(row.map_or(0, |row| row.get(0)))
}

/// The org's event with this id, rendered (with its balance events when `balances`).
///
/// # Errors
///
/// The database's.
pub async fn by_id(
    pool: &Pool,
    store: &Store,
    org: OrgId,
    id: Uuid,
) -> Result<Option<Event>, ReadError> {
    let (batch, ord) = hazina_ledger::store::event_place(id);
    let client = pool.get().await?;
    let found = client
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM {FROM}
                 WHERE r.org_id = $1 AND r.batch_id = $2 AND r.ord = $3"
            ),
            &[&org.0, &batch, &i32::from(ord)],
        )
        .await?;
    drop(client);
    let Some(found) = found else { return Ok(None) };
    let events = render(store, org, vec![row(&found)], &EventFilter::default()).await?;
    Ok(events.into_iter().next())
}

/// The events of `rows` that `filter` wants, in order, each transfer's with its balances
/// after (and its `balance.changed` events right after it, when asked for).
async fn render(
    store: &Store,
    org: OrgId,
    rows: Vec<Row>,
    filter: &EventFilter,
) -> Result<Vec<Event>, ReadError> {
    let transfer_ids: Vec<TransferId> = rows
        .iter()
        .filter(|row| row.payload.is_none())
        .filter_map(|row| row.transfer.map(TransferId))
        .collect();
    let versions: Vec<(AccountId, i64)> = rows
        .iter()
        .filter(|row| row.payload.is_none())
        .flat_map(|row| moved_accounts(row.accounts.as_ref()))
        .collect();
    let transfers: HashMap<Uuid, hazina_ledger::rules::Transfer> = store
        .transfers(org, &transfer_ids)
        .await?
        .into_iter()
        .map(|transfer| (transfer.id.0, transfer))
        .collect();
    let accounts: HashMap<(Uuid, i64), Account> = store
        .accounts_at_versions(org, &versions)
        .await?
        .into_iter()
        .map(|account| ((account.id.0, account.version), account))
        .collect();
    let mut events = Vec::new();
    for row in rows {
        // A type this version does not know (a newer server's) is left out, never guessed.
        let Some(kind) = row.kind else { continue };
        let envelope = Event {
            id: row.id,
            sequence: row.seq,
            kind,
            version: row.version,
            occurred_at: row.at,
            org_id: org.0,
            app_id: row.app,
            customer_id: row.customer,
            transfer_id: row.transfer,
            context: row.context.clone(),
            data: Value::Null,
        };
        let Some(payload) = row.payload else {
            let Some(transfer) = row.transfer.and_then(|id| transfers.get(&id)) else {
                tracing::warn!(seq = row.seq, "an event's transfer is missing; left out");
                continue;
            };
            let balances: Vec<BalanceChangedData> = moved_accounts(row.accounts.as_ref())
                .filter_map(|(account, version)| accounts.get(&(account.0, version)))
                .map(|account| balance_data(account, transfer.id.0))
                .collect();
            let context = Some(Value::Object(transfer.context.as_ref().clone()));
            if filter.wants(kind) {
                let data = transfer_data(transfer, balances.clone());
                events.push(Event {
                    context: context.clone(),
                    data: serde_json::to_value(data).unwrap_or(Value::Null),
                    ..envelope.clone()
                });
            }
            if filter.wants(EventType::PaymentStatusChanged)
                && let Some(data) = ledger_payment(transfer)
            {
                events.push(Event {
                    id: Uuid::new_v5(&row.id, EventType::PaymentStatusChanged.as_str().as_bytes()),
                    kind: EventType::PaymentStatusChanged,
                    context,
                    data: serde_json::to_value(data).unwrap_or(Value::Null),
                    ..envelope.clone()
                });
            }
            if filter.wants_balances() {
                events.extend(balances.into_iter().filter(is_money_holder).map(|balance| Event {
                    id: Uuid::new_v5(&row.id, balance.account_id.as_bytes()),
                    kind: EventType::BalanceChanged,
                    customer_id: balance.customer_id.or(envelope.customer_id),
                    data: serde_json::to_value(&balance).unwrap_or(Value::Null),
                    ..envelope.clone()
                }));
            }
            continue;
        };
        if filter.wants(kind) {
            events.push(Event { data: payload, ..envelope });
        }
    }
    Ok(events)
}

/// A payment between the ledger's parties (purses and wallets), made by the payments API
/// (code `payment`, its parties under `context.payment`): succeeded when its transfer posted.
fn ledger_payment(transfer: &hazina_ledger::rules::Transfer) -> Option<PaymentStatusData> {
    let is_payment = transfer.kind == hazina_ledger::rules::TransferKind::Posted
        && transfer.code == "payment"
        && transfer.context.get("payment").is_some_and(Value::is_object);
    if !is_payment {
        return None;
    }
    let status = crate::payments::PaymentStatus::Success;
    Some(PaymentStatusData {
        transaction_id: transfer.id.0,
        flow: "ledger".to_owned(),
        status: status.as_str().to_owned(),
        status_code: status.platform_code(),
        previous_status: None,
        value: Amount::of(&transfer.postings.first()?.amount),
        channel_id: None,
        customer_number: None,
        provider_code: None,
        description: None,
    })
}

/// Purses and wallets: the balances apps watch.
fn is_money_holder(balance: &BalanceChangedData) -> bool {
    matches!(balance.account_kind.as_str(), "purse" | "wallet")
}

/// The `[[account, version], …]` a transfer's event names.
fn moved_accounts(accounts: Option<&Value>) -> impl Iterator<Item = (AccountId, i64)> + '_ {
    accounts.and_then(Value::as_array).into_iter().flatten().filter_map(|pair| {
        let account = pair.get(0)?.as_str()?.parse().ok()?;
        Some((AccountId(account), pair.get(1)?.as_i64()?))
    })
}

fn balance_data(account: &Account, transfer: Uuid) -> BalanceChangedData {
    let balance = account.balance();
    BalanceChangedData {
        account_id: account.id.0,
        account_kind: account.kind.as_str().to_owned(),
        customer_id: account.customer.map(|customer| customer.0),
        wallet_id: account.wallet_id.clone(),
        transfer_id: transfer,
        version: account.version,
        currency_code: account.currency.code().to_owned(),
        actual: balance.posted.amount().to_string(),
        available: balance.available.amount().to_string(),
        pending: balance.pending.amount().to_string(),
    }
}

fn transfer_data(
    transfer: &hazina_ledger::rules::Transfer,
    balances: Vec<BalanceChangedData>,
) -> TransferData {
    TransferData {
        transfer_id: transfer.id.0,
        kind: transfer.kind.as_str().to_owned(),
        code: transfer.code.clone(),
        legs: transfer
            .postings
            .iter()
            .map(|posting| LegData {
                account_id: posting.account.0,
                side: posting.side.as_str().to_owned(),
                currency_code: posting.amount.currency().code().to_owned(),
                amount: posting.amount.amount().to_string(),
            })
            .collect(),
        pending_id: transfer.pending_id.map(|id| id.0),
        reversal_of: transfer.reversal_of.map(|id| id.0),
        effective_at: transfer.effective_at,
        created_at: transfer.created_at,
        balances,
    }
}
