//! Webhooks, the service: an org's endpoints (each its app's, or the org's), their signing
//! secrets, and the delivery of the outbox's events to them — fan-out into one delivery per
//! event and endpoint (`deliver.rs`), delivery with Standard Webhooks signatures (`sign.rs`)
//! to public addresses only (`address.rs`), retries with backoff, the delivery log and
//! redeliveries. No HTTP types: the HTTP layer (`http/v1/webhooks.rs`) calls it.
//!
//! Delivery is at least once: a delivery row is written in the transaction that moves the
//! endpoint's cursor past its event, and it stays `pending` until an attempt's answer is
//! recorded. A customer's events reach an endpoint in sequence order.

mod address;
mod deliver;
pub mod sign;
mod transport;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use hazina_ledger::OrgId;
use hazina_ledger::store::Store;
use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

pub use address::{Guard, UrlProblem, check_url, is_public};
pub use deliver::Round;

use crate::code::Code;
use crate::events::EventType;
use crate::secrets::Sealer;

/// How long a rotated-out secret still signs, when the caller names no overlap.
pub const OVERLAP_DEFAULT: Duration = Duration::from_secs(24 * 3600);
/// The longest overlap a rotation may ask for.
pub const OVERLAP_MAX: Duration = Duration::from_secs(30 * 24 * 3600);
/// An endpoint whose every delivery failed for this long is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);
/// The waits between attempts: about 3.5 days in all before a delivery is `failed` (each wait
/// is lengthened by up to a fifth at random, so that an endpoint's retries spread out).
pub const RETRY_DELAYS: [Duration; 11] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(14 * 3600),
];
/// Longest endpoint description.
pub const DESCRIPTION_LEN_MAX: usize = 500;
/// Most endpoints an org may have.
pub const ENDPOINTS_MAX: i64 = 100;

/// How deliveries are made (tests shorten the waits).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Whether endpoints may be private addresses and `http://` (`--allow-private-webhook-urls`).
    pub allow_private: bool,
    /// The longest one attempt may take, answer included.
    pub timeout: Duration,
    /// The waits between attempts; when they run out the delivery is `failed`.
    pub retry_delays: Vec<Duration>,
    /// An endpoint whose every delivery failed for this long is disabled.
    pub disable_after: Duration,
    /// How long a worker holds the deliveries it claimed (longer than `timeout`).
    pub lease: Duration,
    /// Deliveries claimed at once.
    pub claim_batch: i64,
    /// Events fanned out to an endpoint at once.
    pub fan_out_batch: i64,
    /// Requests in flight at once, per worker.
    pub concurrency: usize,
    /// Requests in flight at once to one endpoint, per worker: a slow endpoint holds this many
    /// of a worker's requests at most, and the rest go on to the others.
    pub endpoint_concurrency: usize,
    /// How often an idle worker looks for work.
    pub poll_interval: Duration,
    /// The most of an answer's body read.
    pub response_bytes_max: usize,
    /// One more root certificate (DER) that `https://` endpoints may chain to, beside the
    /// Mozilla roots: for tests, whose receivers have certificates of their own making.
    pub extra_root_der: Option<Vec<u8>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout: Duration::from_secs(10),
            retry_delays: RETRY_DELAYS.to_vec(),
            disable_after: DISABLE_AFTER,
            lease: Duration::from_secs(60),
            claim_batch: 500,
            fan_out_batch: 500,
            concurrency: 256,
            endpoint_concurrency: 64,
            poll_interval: Duration::from_millis(250),
            response_bytes_max: 64 * 1024,
            extra_root_der: None,
        }
    }
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{detail}")]
    Invalid { code: Code, detail: String },
    #[error("the secret cannot be sealed or opened with this server's key")]
    Unreadable(#[source] crate::secrets::SecretsError),
    #[error("no random secret could be made")]
    NoRandomness,
    #[error(transparent)]
    Read(#[from] crate::events::ReadError),
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl WebhookError {
    fn invalid(code: Code, detail: impl Into<String>) -> Self {
        Self::Invalid { code, detail: detail.into() }
    }
}

fn url_error(problem: UrlProblem) -> WebhookError {
    match problem {
        UrlProblem::Invalid(why) => WebhookError::invalid(Code::InvalidWebhookUrl, why),
        UrlProblem::NotAllowed(why) => WebhookError::invalid(Code::WebhookUrlNotAllowed, why),
    }
}

/// Who acts: an app key manages its app's endpoints, an org key every endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Scope {
    pub org: OrgId,
    /// The app key's app; `None` for an org key.
    pub app: Option<Uuid>,
}

/// An endpoint as the API shows it (never its secrets).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub endpoint_id: Uuid,
    /// The app whose events (and the org's events of no app) it receives; none for an
    /// org-level endpoint, which receives all the org's events.
    pub app_id: Option<Uuid>,
    pub url: String,
    /// The types it receives; empty for every stored type (`balance.changed` only when named).
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `failing` when the server disabled it after its deliveries failed for days.
    pub disabled_reason: Option<String>,
    /// Since when every delivery to it failed.
    pub failing_since: Option<DateTime<Utc>>,
}

/// An endpoint just made, with its signing secret (shown only here).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_…`: verify the `webhook-signature` header with it. Shown only now.
    pub secret: String,
}

/// A new signing secret (shown only here) and until when the older ones still sign.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecret {
    pub secret: String,
    /// Until when the secrets it replaces still sign (beside it).
    pub previous_expire_at: DateTime<Utc>,
}

/// A new endpoint.
#[derive(Clone, Debug)]
pub struct NewEndpoint {
    pub app: Option<Uuid>,
    pub url: String,
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
}

/// Changes to an endpoint; `None` keeps a member as it is.
#[derive(Clone, Debug, Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub enabled: Option<bool>,
    pub description: Option<Option<String>>,
}

/// One attempt to deliver.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// The answer's status; none when no answer came.
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    /// Why no good answer came (connection refused, timeout, refused address…).
    pub error: Option<String>,
    /// The start of the answer's body.
    pub response: Option<String>,
}

/// A delivery of one event to the endpoint, with its attempts.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub delivery_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub sequence: i64,
    pub occurred_at: DateTime<Utc>,
    pub customer_id: Option<Uuid>,
    /// `pending`, `succeeded` or `failed` (after every retry).
    pub status: String,
    /// Attempts since it was last (re)queued.
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    /// Newest first.
    pub attempt_log: Vec<Attempt>,
}

/// A page of the delivery log, newest first.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    /// Pass as `cursor` for the next (older) page; none at the end.
    pub next_cursor: Option<Uuid>,
}

/// What to deliver again.
#[derive(Clone, Copy, Debug)]
pub enum Redelivery {
    /// One event (a derived `balance.changed` by its own id, once it was delivered).
    Event(Uuid),
    /// Every event delivered to the endpoint that occurred in `[from, to)`.
    Range { from: DateTime<Utc>, to: DateTime<Utc> },
}

/// Queues a delivery again, with a new round of attempts.
const REQUEUE: &str = "UPDATE webhook_deliveries SET status = 'pending', attempts = 0,
    next_attempt_at = now(), locked_until = '-infinity', lease = NULL";

/// A redelivery's event that the caller has none of: a 422, as the path's endpoint exists.
fn unknown_event() -> WebhookError {
    WebhookError::invalid(Code::UnknownEvent, "no such event (of this endpoint's app)")
}

/// The webhooks service: shared by the HTTP layer and the delivery worker.
#[derive(Debug)]
pub struct Service {
    pool: Pool,
    store: Store,
    sealer: Sealer,
    settings: RwLock<Settings>,
    guard: Guard,
    /// The client, replaced when the trusted roots change.
    transport: RwLock<transport::Transport>,
}

const ENDPOINT_COLUMNS: &str = "id, app_id, url, event_types, enabled, description, created_at, \
    disabled_reason, failing_since";

fn endpoint(row: &tokio_postgres::Row) -> Endpoint {
    let types: Vec<String> = row.get(3);
    Endpoint {
        endpoint_id: row.get(0),
        app_id: row.get(1),
        url: row.get(2),
        // A type this version does not know (a newer server's) is left out of the view.
        event_types: types.iter().filter_map(|name| EventType::from_name(name)).collect(),
        enabled: row.get(4),
        description: row.get(5),
        created_at: row.get(6),
        disabled_reason: row.get(7),
        failing_since: row.get(8),
    }
}

fn type_names(types: &[EventType]) -> Vec<&'static str> {
    let set: BTreeSet<&'static str> = types.iter().map(|kind| kind.as_str()).collect();
    set.into_iter().collect()
}

fn check_description(description: Option<&str>) -> Result<(), WebhookError> {
    match description {
        Some(text) if text.chars().count() > DESCRIPTION_LEN_MAX || text.contains('\0') => {
            Err(WebhookError::invalid(
                Code::InvalidDescription,
                "a description has at most 500 characters",
            ))
        }
        _ => Ok(()),
    }
}

impl Service {
    /// The service over the request pool; secrets sealed with `sealer`.
    pub fn new(pool: Pool, store: Store, sealer: Sealer) -> Self {
        let guard = Guard::default();
        let transport = RwLock::new(transport::transport(&guard, None));
        Self { pool, store, sealer, settings: RwLock::new(Settings::default()), guard, transport }
    }

    /// Sets how deliveries are made.
    pub fn configure(&self, settings: Settings) {
        self.guard.allow_private.store(settings.allow_private, Ordering::Relaxed);
        let mut current = self.settings.write().unwrap_or_else(PoisonError::into_inner);
        if current.extra_root_der != settings.extra_root_der {
            let rebuilt = transport::transport(&self.guard, settings.extra_root_der.as_deref());
            *self.transport.write().unwrap_or_else(PoisonError::into_inner) = rebuilt;
        }
        *current = settings;
    }

    /// The client deliveries are sent with (cheap to clone: it shares its connection pool).
    fn transport(&self) -> transport::Transport {
        self.transport.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn settings(&self) -> Settings {
        self.settings.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Makes an endpoint with its first secret; it receives the events recorded after it.
    pub async fn create(
        &self,
        scope: Scope,
        new: NewEndpoint,
    ) -> Result<CreatedEndpoint, WebhookError> {
        let settings = self.settings();
        let url = check_url(&new.url, settings.allow_private).map_err(url_error)?;
        check_description(new.description.as_deref())?;
        let app = match (scope.app, new.app) {
            (Some(own), Some(named)) if own != named => return Err(WebhookError::NotFound("app")),
            (Some(own), _) => Some(own),
            (None, named) => named,
        };
        let id = Uuid::now_v7();
        let secret = sign::new_secret().ok_or(WebhookError::NoRandomness)?;
        let secret_id = Uuid::now_v7();
        let sealed = self
            .sealer
            .seal(secret.as_bytes(), secret_id.as_bytes())
            .map_err(WebhookError::Unreadable)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let count: i64 = tx
            .query_one("SELECT count(*) FROM webhook_endpoints WHERE org_id = $1", &[&scope.org.0])
            .await?
            .get(0);
        if count >= ENDPOINTS_MAX {
            return Err(WebhookError::invalid(
                Code::TooManyWebhookEndpoints,
                format!("an org has at most {ENDPOINTS_MAX} webhook endpoints"),
            ));
        }
        // It starts after the org's last event: events committed later number above it.
        let inserted = tx
            .query_one(
                &format!(
                    "INSERT INTO webhook_endpoints
                         (org_id, id, app_id, url, event_types, description, fanned_seq)
                     VALUES ($1, $2, $3, $4, $5, $6, COALESCE(
                         (SELECT last_seq FROM event_counters WHERE org_id = $1), 0))
                     RETURNING {ENDPOINT_COLUMNS}"
                ),
                &[
                    &scope.org.0,
                    &id,
                    &app,
                    &url.as_str(),
                    &type_names(&new.event_types),
                    &new.description,
                ],
            )
            .await
            .map_err(|error| {
                if error.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
                    WebhookError::NotFound("app")
                } else {
                    error.into()
                }
            })?;
        tx.execute(
            "INSERT INTO webhook_secrets (org_id, endpoint_id, id, sealed) VALUES ($1, $2, $3, $4)",
            &[&scope.org.0, &id, &secret_id, &sealed],
        )
        .await?;
        tx.commit().await?;
        Ok(CreatedEndpoint { endpoint: endpoint(&inserted), secret })
    }

    /// The endpoints the scope manages.
    pub async fn list(&self, scope: Scope) -> Result<Vec<Endpoint>, WebhookError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
                     WHERE org_id = $1 AND ($2::uuid IS NULL OR app_id = $2) ORDER BY id"
                ),
                &[&scope.org.0, &scope.app],
            )
            .await?;
        Ok(rows.iter().map(endpoint).collect())
    }

    /// One endpoint the scope manages.
    pub async fn get(&self, scope: Scope, id: Uuid) -> Result<Endpoint, WebhookError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
                     WHERE org_id = $1 AND id = $2 AND ($3::uuid IS NULL OR app_id = $3)"
                ),
                &[&scope.org.0, &id, &scope.app],
            )
            .await?;
        row.as_ref().map(endpoint).ok_or(WebhookError::NotFound("webhook endpoint"))
    }

    /// Changes an endpoint. Enabling it clears why it was disabled and how long it failed.
    pub async fn update(
        &self,
        scope: Scope,
        id: Uuid,
        changes: EndpointChanges,
    ) -> Result<Endpoint, WebhookError> {
        let settings = self.settings();
        if let Some(url) = &changes.url {
            check_url(url, settings.allow_private).map_err(url_error)?;
        }
        if let Some(description) = &changes.description {
            check_description(description.as_deref())?;
        }
        let types = changes.event_types.as_deref().map(type_names);
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE webhook_endpoints SET
                         url = COALESCE($4, url),
                         event_types = COALESCE($5, event_types),
                         description = CASE WHEN $6 THEN $7 ELSE description END,
                         enabled = COALESCE($8, enabled),
                         disabled_reason = CASE WHEN $8 IS NULL THEN disabled_reason END,
                         failing_since = CASE WHEN $8 THEN NULL ELSE failing_since END
                     WHERE org_id = $1 AND id = $2 AND ($3::uuid IS NULL OR app_id = $3)
                     RETURNING {ENDPOINT_COLUMNS}"
                ),
                &[
                    &scope.org.0,
                    &id,
                    &scope.app,
                    &changes.url,
                    &types,
                    &changes.description.is_some(),
                    &changes.description.flatten(),
                    &changes.enabled,
                ],
            )
            .await?;
        row.as_ref().map(endpoint).ok_or(WebhookError::NotFound("webhook endpoint"))
    }

    /// Deletes an endpoint with its secrets, deliveries and their log.
    pub async fn delete(&self, scope: Scope, id: Uuid) -> Result<(), WebhookError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let found = tx
            .query_opt(
                "SELECT 1 FROM webhook_endpoints
                 WHERE org_id = $1 AND id = $2 AND ($3::uuid IS NULL OR app_id = $3) FOR UPDATE",
                &[&scope.org.0, &id, &scope.app],
            )
            .await?;
        if found.is_none() {
            return Err(WebhookError::NotFound("webhook endpoint"));
        }
        for table in ["webhook_attempts", "webhook_deliveries", "webhook_secrets"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE org_id = $1 AND endpoint_id = $2"),
                &[&scope.org.0, &id],
            )
            .await?;
        }
        tx.execute(
            "DELETE FROM webhook_endpoints WHERE org_id = $1 AND id = $2",
            &[&scope.org.0, &id],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new current secret; the live ones sign beside it for `overlap` more, then expire.
    pub async fn rotate(
        &self,
        scope: Scope,
        id: Uuid,
        overlap: Option<Duration>,
    ) -> Result<RotatedSecret, WebhookError> {
        let overlap = overlap.unwrap_or(OVERLAP_DEFAULT);
        if overlap > OVERLAP_MAX {
            return Err(WebhookError::invalid(
                Code::InvalidOverlap,
                "an overlap is at most 30 days (2592000 seconds)",
            ));
        }
        let secret = sign::new_secret().ok_or(WebhookError::NoRandomness)?;
        let secret_id = Uuid::now_v7();
        let sealed = self
            .sealer
            .seal(secret.as_bytes(), secret_id.as_bytes())
            .map_err(WebhookError::Unreadable)?;
        let overlap_ms = i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX);
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let found = tx
            .query_opt(
                "SELECT 1 FROM webhook_endpoints
                 WHERE org_id = $1 AND id = $2 AND ($3::uuid IS NULL OR app_id = $3) FOR UPDATE",
                &[&scope.org.0, &id, &scope.app],
            )
            .await?;
        if found.is_none() {
            return Err(WebhookError::NotFound("webhook endpoint"));
        }
        let expire_at: DateTime<Utc> = tx
            .query_one("SELECT now() + $1::bigint * interval '1 millisecond'", &[&overlap_ms])
            .await?
            .get(0);
        tx.execute(
            "UPDATE webhook_secrets SET expires_at = LEAST(COALESCE(expires_at, $3), $3)
             WHERE org_id = $1 AND endpoint_id = $2",
            &[&scope.org.0, &id, &expire_at],
        )
        .await?;
        tx.execute(
            "DELETE FROM webhook_secrets WHERE org_id = $1 AND endpoint_id = $2 AND expires_at < now()",
            &[&scope.org.0, &id],
        )
        .await?;
        tx.execute(
            "INSERT INTO webhook_secrets (org_id, endpoint_id, id, sealed) VALUES ($1, $2, $3, $4)",
            &[&scope.org.0, &id, &secret_id, &sealed],
        )
        .await?;
        tx.commit().await?;
        Ok(RotatedSecret { secret, previous_expire_at: expire_at })
    }

    /// The endpoint's deliveries, newest first, each with its attempts (newest first).
    pub async fn deliveries(
        &self,
        scope: Scope,
        id: Uuid,
        cursor: Option<Uuid>,
        limit: i64,
    ) -> Result<DeliveryPage, WebhookError> {
        self.get(scope, id).await?;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT d.id, d.event_id, d.event_type, d.event_seq, d.occurred_at, d.customer_id,
                     d.status, d.attempts, d.next_attempt_at, d.last_status_code,
                     COALESCE((SELECT jsonb_agg(jsonb_build_object('at', a.at,
                         'statusCode', a.status_code, 'latencyMs', a.latency_ms, 'error', a.error,
                         'response', a.response) ORDER BY a.id DESC)
                      FROM webhook_attempts a WHERE a.org_id = d.org_id AND a.delivery_id = d.id),
                      '[]')
                 FROM webhook_deliveries d
                 WHERE d.org_id = $1 AND d.endpoint_id = $2 AND ($3::uuid IS NULL OR d.id < $3)
                 ORDER BY d.id DESC LIMIT $4",
                &[&scope.org.0, &id, &cursor, &(limit + 1)],
            )
            .await?;
        let mut deliveries: Vec<Delivery> = rows
            .iter()
            .map(|row| {
                let status: String = row.get(6);
                let log: serde_json::Value = row.get(10);
                Delivery {
                    delivery_id: row.get(0),
                    event_id: row.get(1),
                    event_type: row.get(2),
                    sequence: row.get(3),
                    occurred_at: row.get(4),
                    customer_id: row.get(5),
                    next_attempt_at: (status == "pending").then(|| row.get(8)),
                    status,
                    attempts: row.get(7),
                    last_status_code: row.get(9),
                    attempt_log: serde_json::from_value(log).unwrap_or_default(),
                }
            })
            .collect();
        let more = deliveries.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        deliveries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = if more { deliveries.last().map(|d| d.delivery_id) } else { None };
        Ok(DeliveryPage { deliveries, next_cursor })
    }

    /// Queues deliveries again: a finished one becomes `pending` with a new round of
    /// attempts; an event never delivered to the endpoint (one of before it was made) is
    /// added. Returns how many were queued.
    pub async fn redeliver(
        &self,
        scope: Scope,
        id: Uuid,
        what: Redelivery,
    ) -> Result<u64, WebhookError> {
        let endpoint = self.get(scope, id).await?;
        let client = self.pool.get().await?;
        match what {
            Redelivery::Range { from, to } => {
                if from >= to {
                    return Err(WebhookError::invalid(
                        Code::InvalidRedelivery,
                        "a redelivery's `from` is before its `to`",
                    ));
                }
                let count = client
                    .execute(
                        &format!(
                            "{REQUEUE} WHERE org_id = $1 AND endpoint_id = $2
                                 AND occurred_at >= $3 AND occurred_at < $4
                                 AND status <> 'pending'"
                        ),
                        &[&scope.org.0, &id, &from, &to],
                    )
                    .await?;
                Ok(count)
            }
            Redelivery::Event(event) => {
                let count = client
                    .execute(
                        &format!(
                            "{REQUEUE} WHERE org_id = $1 AND endpoint_id = $2 AND event_id = $3"
                        ),
                        &[&scope.org.0, &id, &event],
                    )
                    .await?;
                if count > 0 {
                    return Ok(count);
                }
                drop(client);
                let Some(found) =
                    crate::events::by_id(&self.pool, &self.store, scope.org, event).await?
                else {
                    return Err(unknown_event());
                };
                if !deliver::app_wants(endpoint.app_id, found.app_id) {
                    return Err(unknown_event());
                }
                let mut client = self.pool.get().await?;
                let tx = client.transaction().await?;
                let inserted =
                    deliver::insert_deliveries(&tx, scope.org, id, &[(found, 0)]).await?;
                tx.commit().await?;
                Ok(inserted)
            }
        }
    }

    /// One round of the worker: fans new events out, then makes the due deliveries. Whether
    /// either had a full batch (so another round should run at once).
    pub async fn round(&self) -> Result<bool, WebhookError> {
        let fanned = self.fan_out().await?;
        let delivered = self.deliver().await?;
        Ok(fanned || delivered.full)
    }
}
