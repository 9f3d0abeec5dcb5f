//! Reading the outbox back: pages of an org's events in sequence order, each rendered with
//! its payload, and a transfer's `balance.changed` events derived for those who ask for them.
//! Events are recorded with their payloads (`event_rows`) or told by the ledger's batches
//! (`event_transfers`), whose payloads are their transfers and entries, read from the ledger.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use hazina_ledger::store::{Account, Store, ToldWindow};
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

    /// The recorded types to read: those asked for (all when none are).
    fn stored_types(&self) -> Option<Vec<&'static str>> {
        if self.types.is_empty() {
            return None;
        }
        Some(
            self.types.iter().filter(|kind| !kind.is_derived()).map(|kind| kind.as_str()).collect(),
        )
    }

    /// Whether the ledger's transfers are to be read: for their own events, the balances they
    /// change, or a payment between purses and wallets (told with its transfer).
    fn reads_transfers(&self) -> bool {
        self.types.is_empty()
            || self.wants_balances()
            || self.types.contains(&EventType::PaymentStatusChanged)
            || TRANSFER_TYPES.iter().any(|kind| self.types.contains(kind))
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

/// An event found, before rendering.
struct Row {
    seq: i64,
    id: Uuid,
    app: Option<Uuid>,
    customer: Option<Uuid>,
    /// The ledger transfer it came from, if any.
    transfer: Option<Uuid>,
    source: Source,
}

/// Where an event's payload is.
enum Source {
    /// Recorded with it (`event_rows`).
    Recorded {
        /// `None` for a type this version does not know.
        kind: Option<EventType>,
        version: i16,
        at: DateTime<Utc>,
        payload: Value,
        context: Option<Value>,
    },
    /// A ledger transfer's, told by the batch `batch` (`event_transfers`): its payload is the
    /// transfer and its entries.
    Told { batch: Uuid },
}

/// Most events in one batch (`event_batches`' check): a batch that holds an event after a
/// number starts at most this far before it.
const BATCH_EVENTS_MAX: i64 = 10_000;

/// How far past its cursor a page looks at least, in sequence numbers: a filter that leaves
/// most events out still moves a reader this far a page.
const PAGE_WINDOW: i64 = 10_000;

/// Recorded events numbered in `(after, until]` (`$2`, `$3`), at most `$4`, filtered by type
/// (`$5`), customer (`$6`) and app (`$7`).
const RECORDED: &str = "SELECT b.first_seq + r.ord, r.batch_id, r.ord, r.app_id, r.customer_id,
         r.transfer_id, r.type, r.version, r.at, r.payload, r.context
     FROM event_batches AS b
     JOIN event_rows AS r ON r.org_id = b.org_id AND r.batch_id = b.batch_id
     WHERE b.org_id = $1 AND b.first_seq > $2::int8 - $8::int8 AND b.first_seq <= $3
         AND b.first_seq + r.ord > $2 AND b.first_seq + r.ord <= $3
         AND ($5::text[] IS NULL OR r.type = ANY($5))
         AND ($6::uuid IS NULL OR r.customer_id = $6)
         AND ($7::uuid IS NULL OR r.app_id IS NULL OR r.app_id = $7)
     ORDER BY b.first_seq, r.ord LIMIT $4";

/// An event's place: `ord` is below 65,536 (the tables' checks).
fn id_of(batch: Uuid, ord: i32) -> Uuid {
    hazina_ledger::store::event_id(batch, u16::try_from(ord).unwrap_or(u16::MAX))
}

/// A [`RECORDED`] row.
fn recorded(row: &tokio_postgres::Row) -> Row {
    Row {
        seq: row.get(0),
        id: id_of(row.get(1), row.get(2)),
        app: row.get(3),
        customer: row.get(4),
        transfer: row.get(5),
        source: Source::Recorded {
            kind: EventType::from_name(row.get(6)),
            version: row.get(7),
            at: row.get(8),
            payload: row.get(9),
            context: row.get(10),
        },
    }
}

/// A transfer's event as its ledger batch told it.
fn told(told: &hazina_ledger::store::Told) -> Row {
    Row {
        seq: told.seq,
        id: told.id,
        app: told.app,
        customer: told.customer,
        transfer: Some(told.transfer.0),
        source: Source::Told { batch: told.batch },
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
/// Recorded events and the ledger's are read in one snapshot, with the org's last number
/// then: numbers become visible in order, so every event up to that number is in the snapshot
/// and a page that found fewer than it may have looked at moves the cursor to what it looked
/// at, past the events the filter left out, and never past one it did not see.
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
    let limit = limit.max(1);
    let until = after.saturating_add(PAGE_WINDOW.max(limit + 1));
    let mut client = pool.get().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let last = tx
        .query_opt("SELECT last_seq FROM event_counters WHERE org_id = $1", &[&org.0])
        .await?
        .map_or(0, |row| row.get::<_, i64>(0));
    let mut rows: Vec<Row> = tx
        .query(
            RECORDED,
            &[
                &org.0,
                &after,
                &until,
                &(limit + 1),
                &filter.stored_types(),
                &filter.customer,
                &filter.app,
                &BATCH_EVENTS_MAX,
            ],
        )
        .await?
        .iter()
        .map(recorded)
        .collect();
    if filter.reads_transfers() {
        let window = ToldWindow {
            org,
            after,
            until,
            limit: limit + 1,
            app: filter.app,
            customer: filter.customer,
        };
        let found = hazina_ledger::store::told(&tx, &window).await?;
        rows.extend(found.iter().map(told));
        rows.sort_by_key(|row| row.seq);
    }
    tx.commit().await?;
    drop(client);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let (next_after, has_more) = if rows.len() > limit {
        rows.truncate(limit);
        (rows.last().map_or(after, |row| row.seq), true)
    } else {
        // Every event up to `last` is in the snapshot: what was not found was left out.
        let looked_at = until.min(last).max(after);
        (looked_at, looked_at < last)
    };
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

/// The org's event with this id, rendered.
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
    let ord = i32::from(ord);
    let client = pool.get().await?;
    let found = match hazina_ledger::store::told_by_id(&client, org, id).await? {
        Some(found) => Some(told(&found)),
        None => client
            .query_opt(
                "SELECT b.first_seq + r.ord, r.batch_id, r.ord, r.app_id, r.customer_id,
                     r.transfer_id, r.type, r.version, r.at, r.payload, r.context
                 FROM event_batches AS b
                 JOIN event_rows AS r ON r.org_id = b.org_id AND r.batch_id = b.batch_id
                 WHERE r.org_id = $1 AND r.batch_id = $2 AND r.ord = $3",
                &[&org.0, &batch, &ord],
            )
            .await?
            .as_ref()
            .map(recorded),
    };
    drop(client);
    let Some(found) = found else { return Ok(None) };
    let events = render(store, org, vec![found], &EventFilter::default()).await?;
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
    let mut told_ids = Vec::new();
    let mut batches = BTreeSet::new();
    for row in &rows {
        if let (Source::Told { batch }, Some(transfer)) = (&row.source, row.transfer) {
            told_ids.push(TransferId(transfer));
            batches.insert(*batch);
        }
    }
    let transfers: HashMap<Uuid, hazina_ledger::rules::Transfer> = store
        .transfers(org, &told_ids)
        .await?
        .into_iter()
        .map(|transfer| (transfer.id.0, transfer))
        .collect();
    let batches: Vec<Uuid> = batches.into_iter().collect();
    let moved = store.moved_by_told(org, &batches, &told_ids).await?;
    let versions: Vec<(AccountId, i64)> =
        moved.iter().map(|(_, account, version)| (*account, *version)).collect();
    let mut moved_by: HashMap<Uuid, HashMap<Uuid, i64>> = HashMap::new();
    for (transfer, account, version) in moved {
        moved_by.entry(transfer.0).or_default().insert(account.0, version);
    }
    let accounts: HashMap<(Uuid, i64), Account> = store
        .accounts_at_versions(org, &versions)
        .await?
        .into_iter()
        .map(|account| ((account.id.0, account.version), account))
        .collect();
    let mut events = Vec::new();
    for row in rows {
        let Source::Recorded { kind, version, at, payload, context } = row.source else {
            let Some(transfer) = row.transfer.and_then(|id| transfers.get(&id)) else {
                tracing::warn!(seq = row.seq, "an event's transfer is missing; left out");
                continue;
            };
            let moved = moved_by.get(&transfer.id.0);
            // In the order of the transfer's legs, each account once.
            let mut seen = BTreeSet::new();
            let balances: Vec<BalanceChangedData> = transfer
                .postings
                .iter()
                .map(|posting| posting.account.0)
                .filter(|account| seen.insert(*account))
                .filter_map(|account| accounts.get(&(account, *moved?.get(&account)?)))
                .map(|account| balance_data(account, transfer.id.0))
                .collect();
            told_events(&mut events, filter, &row, transfer, balances);
            continue;
        };
        // A type this version does not know (a newer server's) is left out, never guessed.
        let Some(kind) = kind else { continue };
        if filter.wants(kind) {
            events.push(Event {
                id: row.id,
                sequence: row.seq,
                kind,
                version,
                occurred_at: at,
                org_id: org.0,
                app_id: row.app,
                customer_id: row.customer,
                transfer_id: row.transfer,
                context,
                data: payload,
            });
        }
    }
    Ok(events)
}

/// The events a told transfer's row gives that `filter` wants: the transfer's own, a ledger
/// payment's status, and the balances it changed.
fn told_events(
    events: &mut Vec<Event>,
    filter: &EventFilter,
    row: &Row,
    transfer: &hazina_ledger::rules::Transfer,
    balances: Vec<BalanceChangedData>,
) {
    let Some(kind) = EventType::from_name(hazina_ledger::store::event_type(transfer.kind)) else {
        return;
    };
    let context = Some(Value::Object(transfer.context.as_ref().clone()));
    let envelope = Event {
        id: row.id,
        sequence: row.seq,
        kind,
        version: 1,
        occurred_at: transfer.created_at,
        org_id: transfer.org.0,
        app_id: row.app,
        customer_id: row.customer,
        transfer_id: Some(transfer.id.0),
        context,
        data: Value::Null,
    };
    if filter.wants(kind) {
        let data = transfer_data(transfer, balances.clone());
        events.push(Event {
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
