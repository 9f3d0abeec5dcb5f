//! Events, the service: what happened that an app may care about, written to the outbox
//! (`events`, migration 0013) in the transaction of the change it tells of, numbered per org
//! in commit order, and read back in that order (`GET /v1/events`, the stream, webhooks).
//!
//! The ledger writes the events of its transfers itself (`hazina_ledger::store`, one row per
//! accepted transfer, in the batch's transaction); everything else records its events with
//! [`record`], as the last statement of its transaction (see there). This module knows no
//! HTTP.

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

/// Inserts events, numbering them after the org's counter (as the ledger's batches do).
const INSERT_EVENTS: &str = "WITH new AS (
         SELECT * FROM UNNEST($2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::jsonb[],
             $8::jsonb[])
             WITH ORDINALITY AS n (id, type, app_id, customer_id, payload, context, ord)
     ),
     counted AS (
         INSERT INTO event_counters AS c (org_id, last_seq)
         SELECT $1, count(*) FROM new HAVING count(*) > 0
         ON CONFLICT (org_id) DO UPDATE SET last_seq = c.last_seq + EXCLUDED.last_seq
         RETURNING last_seq
     )
     INSERT INTO events (org_id, seq, id, type, app_id, customer_id, at, payload, context)
     SELECT $1, counted.last_seq - $7 + new.ord, new.id, new.type, new.app_id,
         new.customer_id, clock_timestamp(), new.payload, new.context
     FROM new, counted";

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
    let ids: Vec<Uuid> = events.iter().map(|_| Uuid::now_v7()).collect();
    let kinds: Vec<&str> = events.iter().map(|event| event.kind.as_str()).collect();
    let apps: Vec<Option<Uuid>> = events.iter().map(|event| event.app).collect();
    let customers: Vec<Option<Uuid>> = events.iter().map(|event| event.customer).collect();
    let payloads: Vec<Json<&Value>> = events.iter().map(|event| Json(&event.data)).collect();
    let contexts: Vec<Option<Json<&Value>>> =
        events.iter().map(|event| event.context.as_ref().map(Json)).collect();
    let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let params: [&(dyn ToSql + Sync); 8] =
        [&org.0, &ids, &kinds, &apps, &customers, &payloads, &count, &contexts];
    let statement = client.prepare_cached(INSERT_EVENTS).await?;
    client.execute(&statement, &params).await?;
    Ok(ids)
}
