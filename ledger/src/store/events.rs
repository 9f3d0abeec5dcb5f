//! What a batch tells apps: one event in the outbox (migration 0013) for each accepted
//! transfer. The events' rows (`event_rows`) are inserted with the batch's other rows, before
//! its accounts are locked; its `event_batches` row, which takes the org's next numbers from
//! `event_counters` and holds that row until the commit, is the batch's last statement before
//! `COMMIT`: a batch that rolls back tells nothing, one that commits is never lost, numbers
//! become visible in commit order, and the statement sent while the accounts are locked is one
//! row per org, however large the batch.
//!
//! An event row is narrow (the transfer and the accounts it moved, with their versions): its
//! payload is the immutable transfer and its entries, read when the event is read.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use serde_json::Value;
use tokio_postgres::Statement;
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

use crate::context;
use crate::ids::TransferId;
use crate::rules::{Entry, Transfer, TransferKind};

/// Inserts the events' rows, each under its org's batch id and its place in it.
pub(super) const INSERT_EVENT_ROWS: &str = "INSERT INTO event_rows
         (org_id, batch_id, ord, transfer_id, type, app_id, customer_id, at, accounts)
     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::uuid[], $5::text[],
         $6::uuid[], $7::uuid[], $8::timestamptz[], $9::jsonb[])";

/// Most events one `event_batches` row numbers (the table's check); a larger batch of one org
/// is numbered by several.
const BATCH_EVENTS_MAX: i32 = 10_000;

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

/// A batch's events as column arrays, in the order of its transfers, each org's numbered
/// from 0 under a batch id of its own.
#[derive(Default)]
pub(super) struct EventColumns {
    org: Vec<Uuid>,
    batch: Vec<Uuid>,
    ord: Vec<i32>,
    transfer: Vec<Uuid>,
    kind: Vec<&'static str>,
    app: Vec<Option<Uuid>>,
    customer: Vec<Option<Uuid>>,
    at: Vec<DateTime<Utc>>,
    accounts: Vec<Json<Vec<(Uuid, i64)>>>,
    /// Each org's batch: `(org, batch id, count)`.
    batches: Vec<(Uuid, Uuid, i32)>,
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
        let mut columns = Self::default();
        let accepted = transfers.iter().filter(|transfer| transfer.rejection.is_none());
        let mut entries = entries.iter().peekable();
        for transfer in accepted {
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
            // The rules write each transfer's entries together, in transfer order.
            while entries.next_if(|entry| entry.transfer != transfer.id).is_some() {}
            let mut moved = Vec::new();
            while let Some(entry) = entries.next_if(|entry| entry.transfer == transfer.id) {
                moved.push((entry.account.0, entry.version));
            }
            let org = transfer.org.0;
            let open = columns.batches.iter().position(|b| b.0 == org && b.2 < BATCH_EVENTS_MAX);
            let index = open.unwrap_or_else(|| {
                columns.batches.push((org, new_event_batch_id(), 0));
                columns.batches.len() - 1
            });
            if let Some(batch) = columns.batches.get_mut(index) {
                columns.batch.push(batch.1);
                columns.ord.push(batch.2);
                batch.2 += 1;
            }
            columns.org.push(org);
            columns.transfer.push(transfer.id.0);
            columns.kind.push(event_type(transfer.kind));
            columns.app.push(app);
            columns.customer.push(customer);
            columns.at.push(transfer.created_at);
            columns.accounts.push(Json(moved));
        }
        columns
    }

    /// Inserts the rows, when there are any (with the batch's other rows).
    pub(super) async fn write_rows(
        &self,
        client: &Client,
        statement: &Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        if self.org.is_empty() {
            return Ok(0);
        }
        let params: [&(dyn ToSql + Sync); 9] = [
            &self.org,
            &self.batch,
            &self.ord,
            &self.transfer,
            &self.kind,
            &self.app,
            &self.customer,
            &self.at,
            &self.accounts,
        ];
        client.execute(statement, &params).await
    }

    /// The batches' numbers, when there are any events: the last statement before `COMMIT`.
    pub(super) fn batches(&self) -> EventBatches {
        EventBatches {
            org: self.batches.iter().map(|batch| batch.0).collect(),
            batch: self.batches.iter().map(|batch| batch.1).collect(),
            count: self.batches.iter().map(|batch| batch.2).collect(),
        }
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
