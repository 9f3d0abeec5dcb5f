//! What a batch tells apps: one event in the outbox (`events`, migration 0013) for each
//! accepted transfer, written in the batch's transaction as its last statement before
//! `COMMIT`, so that a batch that rolls back tells nothing and one that commits is never
//! lost. The statement takes the org's next event numbers from `event_counters`, whose row it
//! then holds until the commit: every transaction that writes events does so last, so numbers
//! become visible in order and the row is held for one round trip.
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

/// Inserts the events, numbering each org's after its counter (made at its first event).
/// Counters are taken in org order, so two batches never wait on each other's in a cycle.
pub(super) const INSERT_EVENTS: &str = "WITH new AS (
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[],
             $6::timestamptz[], $7::jsonb[])
             WITH ORDINALITY AS n (org_id, id, type, app_id, customer_id, at, accounts, ord)
     ),
     counts AS (SELECT org_id, count(*) AS n FROM new GROUP BY org_id ORDER BY org_id),
     counted AS (
         INSERT INTO event_counters AS c (org_id, last_seq) SELECT org_id, n FROM counts
         ON CONFLICT (org_id) DO UPDATE SET last_seq = c.last_seq + EXCLUDED.last_seq
         RETURNING org_id, last_seq
     )
     INSERT INTO events (org_id, seq, id, type, app_id, customer_id, at, transfer_id, accounts)
     SELECT new.org_id,
         counted.last_seq - counts.n + row_number() OVER (PARTITION BY new.org_id ORDER BY ord),
         new.id, new.type, new.app_id, new.customer_id, new.at, new.id, new.accounts
     FROM new JOIN counts USING (org_id) JOIN counted USING (org_id)";

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

/// A batch's events as column arrays, in the order of its transfers. An event's id is its
/// transfer's (unique within the org, as event ids must be).
#[derive(Default)]
pub(super) struct EventColumns {
    org: Vec<Uuid>,
    transfer: Vec<Uuid>,
    kind: Vec<&'static str>,
    app: Vec<Option<Uuid>>,
    customer: Vec<Option<Uuid>>,
    at: Vec<DateTime<Utc>>,
    accounts: Vec<Json<Vec<(Uuid, i64)>>>,
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
            columns.org.push(transfer.org.0);
            columns.transfer.push(transfer.id.0);
            columns.kind.push(event_type(transfer.kind));
            columns.app.push(app);
            columns.customer.push(customer);
            columns.at.push(transfer.created_at);
            columns.accounts.push(Json(moved));
        }
        columns
    }

    /// Inserts them, when there are any.
    pub(super) async fn write(
        &self,
        client: &Client,
        statement: &Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        if self.org.is_empty() {
            return Ok(0);
        }
        let params: [&(dyn ToSql + Sync); 7] = [
            &self.org,
            &self.transfer,
            &self.kind,
            &self.app,
            &self.customer,
            &self.at,
            &self.accounts,
        ];
        client.execute(statement, &params).await
    }
}
