//! Events, the service: what happened that an app may care about, written to the outbox
//! (`events`, migration 0013) in the transaction of the change it tells of, numbered per org
//! in commit order, and read back in that order (`GET /v1/events`, the stream, webhooks).
//!
//! The ledger tells of its transfers itself (`hazina_ledger::store`: one row per org naming a
//! batch's accepted transfers, in the batch's transaction); everything else records its events
//! with [`record`], as the last statement of its transaction (see there). This module knows
//! no HTTP.

mod read;
pub mod types;

use deadpool_postgres::GenericClient;
use hazina_ledger::OrgId;
use serde_json::Value;
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

pub use read::{Event, EventFilter, EventPage, ReadError, by_id, last_sequence, page};
pub use types::EventType;

/// Something that happened, to be recorded.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub kind: EventType,
    /// The app it belongs to, if one.
    pub app: Option<Uuid>,
    /// The customer it is about, if one: a customer's events reach an endpoint in order.
    pub customer: Option<Uuid>,
    /// The type's payload (its current version).
    pub data: Value,
    /// The context of the change it tells of (a payment's, as its app gave it).
    pub context: Option<Value>,
}

impl NewEvent {
    /// An event of `kind` with `data`, of no app and no customer.
    #[must_use]
    pub fn new(kind: EventType, data: Value) -> Self {
        Self { kind, app: None, customer: None, data, context: None }
    }

    #[must_use]
    pub fn app(mut self, app: Option<Uuid>) -> Self {
        self.app = app;
        self
    }

    #[must_use]
    pub fn customer(mut self, customer: Option<Uuid>) -> Self {
        self.customer = customer;
        self
    }

    #[must_use]
    pub fn context(mut self, context: Option<Value>) -> Self {
        self.context = context;
        self
    }

    /// An event of `kind` whose payload is `data`, serialised (a payload type of
    /// [`types`] always serialises).
    #[must_use]
    pub fn of(kind: EventType, data: &impl serde::Serialize) -> Self {
        Self::new(kind, serde_json::to_value(data).unwrap_or(Value::Null))
    }
}

/// Inserts a transaction's event rows under its batch id, each with its place (`ord`).
const INSERT_EVENT_ROWS: &str = "INSERT INTO event_rows
         (org_id, batch_id, ord, type, app_id, customer_id, at, payload, context)
     SELECT $1, $2, (n.ord - 1)::int4, n.type, n.app_id, n.customer_id, clock_timestamp(),
         n.payload, n.context
     FROM UNNEST($3::text[], $4::uuid[], $5::uuid[], $6::jsonb[], $7::jsonb[])
         WITH ORDINALITY AS n (type, app_id, customer_id, payload, context, ord)";

/// Numbers a batch of `$3` events after the org's counter (made at its first event), holding
/// the counter's row until the transaction ends (as the ledger's batches do).
const NUMBER_EVENT_BATCH: &str = "WITH counted AS (
         INSERT INTO event_counters AS c (org_id, last_seq) VALUES ($1, $3::int4)
         ON CONFLICT (org_id) DO UPDATE SET last_seq = c.last_seq + EXCLUDED.last_seq
         RETURNING last_seq
     )
     INSERT INTO event_batches (org_id, first_seq, count, batch_id)
     SELECT $1, last_seq - $3 + 1, $3, $2 FROM counted";

/// Most events one `event_batches` row numbers (the table's check).
const BATCH_EVENTS_MAX: usize = 10_000;

/// Records `events` of `org` in `client`'s transaction. Call it as the transaction's **last
/// statement** before `COMMIT`: it holds the org's event counter until then, and every other
/// writer of the org's events waits for it (a change that commits without it tells nothing,
/// one that rolls back with it tells nothing either). Returns the events' ids.
///
/// # Errors
///
/// The database's.
pub async fn record(
    client: &impl GenericClient,
    org: OrgId,
    events: &[NewEvent],
) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let insert = client.prepare_cached(INSERT_EVENT_ROWS).await?;
    let number = client.prepare_cached(NUMBER_EVENT_BATCH).await?;
    let mut ids = Vec::with_capacity(events.len());
    let mut batches = Vec::new();
    for chunk in events.chunks(BATCH_EVENTS_MAX) {
        let batch = hazina_ledger::store::new_event_batch_id();
        // A chunk holds at most `BATCH_EVENTS_MAX`, below 65,536.
        let chunk_ids = (0..chunk.len())
            .map(|ord| hazina_ledger::store::event_id(batch, u16::try_from(ord).unwrap_or(0)));
        let chunk_ids: Vec<Uuid> = chunk_ids.collect();
        let kinds: Vec<&str> = chunk.iter().map(|event| event.kind.as_str()).collect();
        let apps: Vec<Option<Uuid>> = chunk.iter().map(|event| event.app).collect();
        let customers: Vec<Option<Uuid>> = chunk.iter().map(|event| event.customer).collect();
        let payloads: Vec<Json<&Value>> = chunk.iter().map(|event| Json(&event.data)).collect();
        let contexts: Vec<Option<Json<&Value>>> =
            chunk.iter().map(|event| event.context.as_ref().map(Json)).collect();
        let params: [&(dyn ToSql + Sync); 7] =
            [&org.0, &batch, &kinds, &apps, &customers, &payloads, &contexts];
        client.execute(&insert, &params).await?;
        ids.extend(chunk_ids);
        // A chunk holds at most `BATCH_EVENTS_MAX`, which fits.
        batches.push((batch, i32::try_from(chunk.len()).unwrap_or(i32::MAX)));
    }
    // Last: the numbers, which hold the org's counter until the commit.
    for (batch, count) in batches {
        client.execute(&number, &[&org.0, &batch, &count]).await?;
    }
    Ok(ids)
}
