//! What a batch tells apps: one event in the outbox (migrations 0013 and 0017) for each
//! accepted transfer. A batch writes one `event_transfers` row per org, naming its accepted
//! transfers in order, with its other rows and before its accounts are locked, and each
//! transfer's place (batch id and `ord`) in the transfer's own row; its `event_batches` row,
//! which takes the org's next numbers from `event_counters` and holds that row until the
//! commit, is the batch's last statement before `COMMIT`. So a batch that rolls back tells
//! nothing, one that commits is never lost, numbers become visible in commit order, and
//! telling costs two rows per org however large the batch (a row per transfer cost the hot
//! workload 14%: BENCHMARKS.md).
//!
//! An event's payload is the immutable transfer and its entries, read when the event is read;
//! the row keeps what they do not hold: each transfer's customer and app, and the versions
//! each account took in the batch, through which a transfer's entries are found.

use std::collections::HashMap;

use deadpool_postgres::{Client, GenericClient};
use serde_json::Value;
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::context;
use crate::ids::{OrgId, TransferId};
use crate::rules::{Entry, Transfer, TransferKind};

/// Inserts each org batch's `event_transfers` row, its arrays sliced from the parameters'.
pub(super) const INSERT_EVENT_TRANSFERS: &str = "INSERT INTO event_transfers
         (org_id, batch_id, transfers, customers, apps, accounts, first_versions, last_versions)
     SELECT n.org_id, n.batch_id, ($3::uuid[])[n.t_from:n.t_to], ($4::uuid[])[n.t_from:n.t_to],
         ($5::uuid[])[n.t_from:n.t_to], ($8::uuid[])[n.a_from:n.a_to],
         ($9::int8[])[n.a_from:n.a_to], ($10::int8[])[n.a_from:n.a_to]
     FROM UNNEST($1::uuid[], $2::uuid[], $6::int4[], $7::int4[], $11::int4[], $12::int4[])
         AS n (org_id, batch_id, t_from, t_to, a_from, a_to)";

/// Most events one `event_batches` row numbers (the table's check); a larger batch of one org
/// is numbered by several.
const BATCH_EVENTS_MAX: usize = 10_000;

/// A new id for a batch of events: a UUIDv7 whose last 16 bits are zero, so that each of its
/// events' ids ([`event_id`]) carries the event's place in the batch there.
#[must_use]
pub fn new_event_batch_id() -> Uuid {
    let mut bytes = *Uuid::now_v7().as_bytes();
    bytes[14] = 0;
    bytes[15] = 0;
    Uuid::from_bytes(bytes)
}

/// The id of the event at `ord` (below 65,536) in the batch `batch`.
#[must_use]
pub fn event_id(batch: Uuid, ord: u16) -> Uuid {
    let mut bytes = *batch.as_bytes();
    let [high, low] = ord.to_be_bytes();
    bytes[14] = high;
    bytes[15] = low;
    Uuid::from_bytes(bytes)
}

/// The batch and place of the event with this id (see [`event_id`]).
#[must_use]
pub fn event_place(id: Uuid) -> (Uuid, u16) {
    let mut bytes = *id.as_bytes();
    let ord = u16::from_be_bytes([bytes[14], bytes[15]]);
    bytes[14] = 0;
    bytes[15] = 0;
    (Uuid::from_bytes(bytes), ord)
}

/// Numbers each org's batch after its counter (made at its first event). Counters are taken
/// in org order, so two batches never wait on each other's in a cycle.
pub(super) const NUMBER_EVENT_BATCHES: &str = "WITH new AS (
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[]) AS n (org_id, batch_id, count)
         ORDER BY org_id
     ),
     counted AS (
         INSERT INTO event_counters AS c (org_id, last_seq) SELECT org_id, count FROM new
         ON CONFLICT (org_id) DO UPDATE SET last_seq = c.last_seq + EXCLUDED.last_seq
         RETURNING org_id, last_seq
     )
     INSERT INTO event_batches (org_id, first_seq, count, batch_id)
     SELECT new.org_id, counted.last_seq - new.count + 1, new.count, new.batch_id
     FROM new JOIN counted USING (org_id)";

/// The event type of an accepted transfer of `kind`.
#[must_use]
pub fn event_type(kind: TransferKind) -> &'static str {
    match kind {
        TransferKind::Posted | TransferKind::PostPending => "transfer.posted",
        TransferKind::Pending => "transfer.pending",
        TransferKind::VoidPending => "transfer.voided",
        TransferKind::ExpirePending => "transfer.expired",
        TransferKind::Reversal => "transfer.reversed",
    }
}

/// One org's share of a batch's events (up to [`BATCH_EVENTS_MAX`]): its accepted transfers
/// in order, each with its customer and app, and the versions each account took.
struct OrgBatch {
    org: Uuid,
    id: Uuid,
    transfers: Vec<Uuid>,
    customers: Vec<Option<Uuid>>,
    apps: Vec<Option<Uuid>>,
    /// `(account, first version, last version)`, in the order first moved.
    accounts: Vec<(Uuid, i64, i64)>,
    /// Where each account is in `accounts`.
    account_index: HashMap<Uuid, usize>,
}

/// A batch's events: one `event_transfers` row per org (more for an org with more than
/// [`BATCH_EVENTS_MAX`] transfers), and each transfer's place (written with the transfer).
#[derive(Default)]
pub(super) struct EventColumns {
    /// In the order of the batch's transfers: each accepted one's batch id and place.
    places: Vec<Option<(Uuid, i32)>>,
    batches: Vec<OrgBatch>,
}

/// A UUID named by the `hazina` object at `path`.
fn uuid_in(hazina: Option<&Value>, path: &[&str]) -> Option<Uuid> {
    let mut value = hazina?;
    for key in path {
        value = value.get(key)?;
    }
    value.as_str()?.parse().ok()
}

impl EventColumns {
    /// The events of `transfers`' accepted ones; a transfer that acts on another (posting,
    /// voiding, expiring or reversing it) and names no customer of its own tells of the other's
    /// customer and app, found in `known`.
    pub(super) fn new(
        transfers: &[Transfer],
        entries: &[Entry],
        known: &HashMap<TransferId, Transfer>,
    ) -> Self {
        let mut columns = Self { places: Vec::with_capacity(transfers.len()), batches: Vec::new() };
        let mut entries = entries.iter().peekable();
        for transfer in transfers {
            if transfer.rejection.is_some() {
                columns.places.push(None);
                continue;
            }
            let acted_on = transfer.pending_id.or(transfer.reversal_of);
            let hazina = transfer
                .context
                .get(context::HAZINA)
                .or_else(|| known.get(&acted_on?)?.context.get(context::HAZINA));
            let app = uuid_in(hazina, &[context::APP])
                .or_else(|| uuid_in(hazina, &[context::ACTIVITY, "app_id"]));
            let customer = hazina
                .and_then(|hazina| hazina.get(context::CUSTOMERS))
                .and_then(|customers| customers.get(0))
                .and_then(Value::as_str)
                .and_then(|customer| customer.parse().ok());
            let org = transfer.org.0;
            let open = columns
                .batches
                .iter()
                .position(|batch| batch.org == org && batch.transfers.len() < BATCH_EVENTS_MAX);
            let index = open.unwrap_or_else(|| {
                columns.batches.push(OrgBatch {
                    org,
                    id: new_event_batch_id(),
                    transfers: Vec::new(),
                    customers: Vec::new(),
                    apps: Vec::new(),
                    accounts: Vec::new(),
                    account_index: HashMap::new(),
                });
                columns.batches.len() - 1
            });
            let Some(batch) = columns.batches.get_mut(index) else { continue };
            // Below `BATCH_EVENTS_MAX`, which fits.
            let ord = i32::try_from(batch.transfers.len()).unwrap_or(i32::MAX);
            columns.places.push(Some((batch.id, ord)));
            batch.transfers.push(transfer.id.0);
            batch.customers.push(customer);
            batch.apps.push(app);
            // The rules write each transfer's entries together, in transfer order.
            while entries.next_if(|entry| entry.transfer != transfer.id).is_some() {}
            while let Some(entry) = entries.next_if(|entry| entry.transfer == transfer.id) {
                let account = entry.account.0;
                let at = *batch.account_index.entry(account).or_insert_with(|| {
                    batch.accounts.push((account, entry.version, entry.version));
                    batch.accounts.len() - 1
                });
                if let Some(range) = batch.accounts.get_mut(at) {
                    range.1 = range.1.min(entry.version);
                    range.2 = range.2.max(entry.version);
                }
            }
        }
        columns
    }

    /// The batch id and place of the event of each of the batch's transfers (`None` for a
    /// refused one), in their order.
    pub(super) fn places(&self) -> &[Option<(Uuid, i32)>] {
        &self.places
    }

    /// Inserts the `event_transfers` rows, when there are any (with the batch's other rows).
    pub(super) async fn write_rows(
        &self,
        client: &Client,
        statement: &Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        if self.batches.is_empty() {
            return Ok(0);
        }
        let mut rows = TransferRows::default();
        for batch in &self.batches {
            rows.push(batch);
        }
        let params: [&(dyn ToSql + Sync); 12] = [
            &rows.org,
            &rows.batch,
            &rows.transfers,
            &rows.customers,
            &rows.apps,
            &rows.transfers_from,
            &rows.transfers_to,
            &rows.accounts,
            &rows.first_versions,
            &rows.last_versions,
            &rows.accounts_from,
            &rows.accounts_to,
        ];
        client.execute(statement, &params).await
    }

    /// The batches' numbers, when there are any events: the last statement before `COMMIT`.
    pub(super) fn batches(&self) -> EventBatches {
        EventBatches {
            org: self.batches.iter().map(|batch| batch.org).collect(),
            batch: self.batches.iter().map(|batch| batch.id).collect(),
            // At most `BATCH_EVENTS_MAX` each, which fits.
            count: self
                .batches
                .iter()
                .map(|batch| i32::try_from(batch.transfers.len()).unwrap_or(i32::MAX))
                .collect(),
        }
    }
}

/// [`INSERT_EVENT_TRANSFERS`]' parameters: every org batch's arrays end to end, each batch's
/// slice of them given by its first and last index (from 1, as SQL slices count).
#[derive(Default)]
struct TransferRows {
    org: Vec<Uuid>,
    batch: Vec<Uuid>,
    transfers: Vec<Uuid>,
    customers: Vec<Option<Uuid>>,
    apps: Vec<Option<Uuid>>,
    transfers_from: Vec<i32>,
    transfers_to: Vec<i32>,
    accounts: Vec<Uuid>,
    first_versions: Vec<i64>,
    last_versions: Vec<i64>,
    accounts_from: Vec<i32>,
    accounts_to: Vec<i32>,
}

impl TransferRows {
    fn push(&mut self, batch: &OrgBatch) {
        // A batch holds far fewer than `i32::MAX` transfers and accounts.
        let index = |len: usize| i32::try_from(len).unwrap_or(i32::MAX);
        self.org.push(batch.org);
        self.batch.push(batch.id);
        self.transfers_from.push(index(self.transfers.len()) + 1);
        self.transfers.extend(&batch.transfers);
        self.customers.extend(&batch.customers);
        self.apps.extend(&batch.apps);
        self.transfers_to.push(index(self.transfers.len()));
        self.accounts_from.push(index(self.accounts.len()) + 1);
        for &(account, first, last) in &batch.accounts {
            self.accounts.push(account);
            self.first_versions.push(first);
            self.last_versions.push(last);
        }
        self.accounts_to.push(index(self.accounts.len()));
    }
}

/// Each org's batch of a ledger batch's events, to be numbered as it commits.
#[derive(Default)]
pub(super) struct EventBatches {
    org: Vec<Uuid>,
    batch: Vec<Uuid>,
    count: Vec<i32>,
}

impl EventBatches {
    pub(super) async fn write(
        &self,
        client: &Client,
        statement: &Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        if self.org.is_empty() {
            return Ok(0);
        }
        let params: [&(dyn ToSql + Sync); 3] = [&self.org, &self.batch, &self.count];
        client.execute(statement, &params).await
    }
}

// --- Reading what batches told ---------------------------------------------------------------

/// Most events one `event_batches` row numbers, as a sequence-number distance: a batch that
/// holds an event after a number starts at most this far before it.
const BATCH_SPAN: i64 = 10_000;

/// Which told events to read: the org's numbered in `(after, until]`, at most `limit`, of no
/// app or of `app` when it is given, and only `customer`'s when it is given.
#[derive(Clone, Debug)]
pub struct ToldWindow {
    pub org: OrgId,
    pub after: i64,
    pub until: i64,
    pub limit: i64,
    pub app: Option<Uuid>,
    pub customer: Option<Uuid>,
}

/// A transfer's event as its batch told it; its payload is the transfer, its balances the
/// versions the transfer gave its accounts ([`super::Store::moved_by_told`]).
#[derive(Clone, Debug)]
pub struct Told {
    pub seq: i64,
    pub id: Uuid,
    /// The batch that told it.
    pub batch: Uuid,
    pub app: Option<Uuid>,
    pub customer: Option<Uuid>,
    pub transfer: TransferId,
}

/// The told transfers numbered in `(after, until]` (`$2`, `$3`), at most `$4`,
/// filtered by app (`$5`).
const TOLD: &str = "SELECT b.first_seq + told.ord - 1, x.batch_id, (told.ord - 1)::int4,
         told.app, told.customer, told.transfer
     FROM event_batches AS b
     JOIN event_transfers AS x ON x.org_id = b.org_id AND x.batch_id = b.batch_id
     CROSS JOIN LATERAL unnest(x.transfers, x.customers, x.apps) WITH ORDINALITY
         AS told (transfer, customer, app, ord)
     WHERE b.org_id = $1 AND b.first_seq > $2::int8 - $6::int8 AND b.first_seq <= $3
         AND b.first_seq + told.ord - 1 > $2 AND b.first_seq + told.ord - 1 <= $3
         AND ($5::uuid IS NULL OR told.app IS NULL OR told.app = $5)
     ORDER BY 1 LIMIT $4";

/// [`TOLD`] of one customer (`$6`): found through the transfers that name the customer and
/// those that post, void, expire or reverse them (which tell of its customer when they name
/// none), never by reading every batch.
const TOLD_OF_CUSTOMER: &str = "WITH named AS (
         SELECT transfer_id FROM customer_transfers WHERE org_id = $1 AND customer_id = $6
     ),
     candidates AS (
         SELECT t.event_batch, t.event_ord FROM named
         JOIN transfers AS t ON t.org_id = $1 AND t.id = named.transfer_id
         WHERE t.event_batch IS NOT NULL
         UNION
         SELECT t.event_batch, t.event_ord FROM named
         JOIN transfers AS t ON t.org_id = $1 AND t.pending_id = named.transfer_id
         WHERE t.rejection IS NULL AND t.event_batch IS NOT NULL
         UNION
         SELECT t.event_batch, t.event_ord FROM named
         JOIN transfers AS t ON t.org_id = $1 AND t.reversal_of = named.transfer_id
         WHERE t.rejection IS NULL AND t.event_batch IS NOT NULL
     )
     SELECT b.first_seq + c.event_ord, x.batch_id, c.event_ord, x.apps[c.event_ord + 1],
         x.customers[c.event_ord + 1], x.transfers[c.event_ord + 1]
     FROM candidates AS c
     JOIN event_batches AS b ON b.org_id = $1 AND b.batch_id = c.event_batch
     JOIN event_transfers AS x ON x.org_id = $1 AND x.batch_id = c.event_batch
     WHERE b.first_seq + c.event_ord > $2 AND b.first_seq + c.event_ord <= $3
         AND x.customers[c.event_ord + 1] = $6
         AND ($5::uuid IS NULL OR x.apps[c.event_ord + 1] IS NULL OR x.apps[c.event_ord + 1] = $5)
     ORDER BY 1 LIMIT $4";

fn told_row(row: &tokio_postgres::Row) -> Told {
    let batch = row.get(1);
    let ord: i32 = row.get(2);
    Told {
        seq: row.get(0),
        // `ord` is below 65,536 (`event_batches`' check).
        id: event_id(batch, u16::try_from(ord).unwrap_or(u16::MAX)),
        batch,
        app: row.get(3),
        customer: row.get(4),
        transfer: TransferId(row.get(5)),
    }
}

/// The told events `window` names, in sequence order. Run it in the snapshot that reads the
/// other events it is merged with (`client` may be a transaction).
///
/// # Errors
///
/// The database's.
pub async fn told(
    client: &impl GenericClient,
    window: &ToldWindow,
) -> Result<Vec<Told>, tokio_postgres::Error> {
    // The sixth parameter: how far back a batch may start, or the customer.
    let (statement, sixth): (&str, &(dyn ToSql + Sync)) = match &window.customer {
        None => (TOLD, &BATCH_SPAN),
        Some(customer) => (TOLD_OF_CUSTOMER, customer),
    };
    let params: [&(dyn ToSql + Sync); 6] =
        [&window.org.0, &window.after, &window.until, &window.limit, &window.app, sixth];
    let rows = client.query(statement, &params).await?;
    Ok(rows.iter().map(told_row).collect())
}

/// The org's told event with this id ([`event_id`]), if a batch told one.
///
/// # Errors
///
/// The database's.
pub async fn told_by_id(
    client: &impl GenericClient,
    org: OrgId,
    id: Uuid,
) -> Result<Option<Told>, tokio_postgres::Error> {
    let (batch, ord) = event_place(id);
    let row = client
        .query_opt(
            "SELECT b.first_seq + $3::int4, x.batch_id, $3::int4, x.apps[$3 + 1],
                 x.customers[$3 + 1], x.transfers[$3 + 1]
             FROM event_batches AS b
             JOIN event_transfers AS x ON x.org_id = b.org_id AND x.batch_id = b.batch_id
             WHERE b.org_id = $1 AND b.batch_id = $2 AND $3 < b.count",
            &[&org.0, &batch, &i32::from(ord)],
        )
        .await?;
    Ok(row.as_ref().map(told_row))
}

#[cfg(test)]
mod tests {
    use super::{event_id, event_place, new_event_batch_id};

    #[test]
    fn an_events_id_gives_back_its_batch_and_place_and_ids_differ_by_place() {
        let batch = new_event_batch_id();
        assert_eq!(batch.get_version_num(), 7);
        assert!(batch.to_string().ends_with("0000"));
        for ord in [0, 1, 511, 9_999, u16::MAX] {
            assert_eq!(event_place(event_id(batch, ord)), (batch, ord));
        }
        assert_ne!(event_id(batch, 1), event_id(batch, 2));
        assert_ne!(event_id(batch, 0), event_id(new_event_batch_id(), 0));
    }
}
