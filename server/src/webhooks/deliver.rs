//! The delivery worker's two steps. **Fan-out**: an enabled endpoint's new events (past its
//! cursor, of its types and app) become delivery rows in the transaction that moves its cursor
//! on. **Delivery**: due deliveries are claimed in batches under a lease (`FOR UPDATE SKIP
//! LOCKED`, so workers of several processes share them), sent concurrently with their
//! signatures, and their results and attempts recorded in bulk as they finish; a lease that
//! runs out (a crashed worker) makes its deliveries due again, so none is lost.
//!
//! A worker ([`Service::run`]) keeps up to `concurrency` requests in flight, at most
//! `endpoint_concurrency` of them to one endpoint, and claims more as requests finish: a slow
//! endpoint holds its own share of the requests only, never another endpoint's deliveries.
//!
//! A customer's deliveries to an endpoint go one at a time in sequence order: one is claimed
//! only while no earlier one of the same endpoint and customer is `pending`. Events of no
//! customer are unordered.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use hazina_ledger::OrgId;
use rand::Rng as _;
use ring::hmac;
use uuid::Uuid;

use super::{Service, Settings, WebhookError, address, sign, transport};
use crate::events::{self, Event, EventFilter, EventType, NewEvent};

/// How long a worker waits after a request finishes for others to finish with it, so that
/// their attempts are recorded together.
const GATHER: Duration = Duration::from_millis(10);

/// The most of an answer's body kept in the log.
const RESPONSE_SNIPPET_MAX: usize = 1024;

/// What a round of deliveries did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Round {
    pub claimed: usize,
    pub succeeded: usize,
    /// Whether a claim was full: more may be due at once.
    pub full: bool,
}

/// Whether an endpoint of `endpoint_app` (none: the org's) receives an event of `event_app`:
/// an app's endpoint takes its app's events and those of no app.
pub(super) fn app_wants(endpoint_app: Option<Uuid>, event_app: Option<Uuid>) -> bool {
    match (endpoint_app, event_app) {
        (None, _) | (Some(_), None) => true,
        (Some(endpoint), Some(event)) => endpoint == event,
    }
}

/// Inserts a delivery for each event (and its place among the events of its sequence
/// number) not yet delivered to the endpoint; how many were new.
pub(super) async fn insert_deliveries(
    client: &impl GenericClient,
    org: OrgId,
    endpoint: Uuid,
    events: &[(Event, i32)],
) -> Result<u64, tokio_postgres::Error> {
    if events.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = events.iter().map(|_| Uuid::now_v7()).collect();
    let seqs: Vec<i64> = events.iter().map(|(event, _)| event.sequence).collect();
    let ords: Vec<i32> = events.iter().map(|(_, ord)| *ord).collect();
    let event_ids: Vec<Uuid> = events.iter().map(|(event, _)| event.id).collect();
    let types: Vec<&str> = events.iter().map(|(event, _)| event.kind.as_str()).collect();
    let at: Vec<DateTime<Utc>> = events.iter().map(|(event, _)| event.occurred_at).collect();
    let customers: Vec<Option<Uuid>> = events.iter().map(|(event, _)| event.customer_id).collect();
    let bodies: Vec<String> =
        events.iter().map(|(event, _)| serde_json::to_string(event).unwrap_or_default()).collect();
    client
        .execute(
            "INSERT INTO webhook_deliveries (org_id, endpoint_id, id, event_seq, event_ord,
                 event_id, event_type, occurred_at, customer_id, body)
             SELECT $1, $2, * FROM UNNEST($3::uuid[], $4::bigint[], $5::int[], $6::uuid[],
                 $7::text[], $8::timestamptz[], $9::uuid[], $10::text[])
             ON CONFLICT (org_id, endpoint_id, event_id) DO NOTHING",
            &[&org.0, &endpoint, &ids, &seqs, &ords, &event_ids, &types, &at, &customers, &bodies],
        )
        .await
}

/// A delivery a worker claimed.
struct Claimed {
    id: Uuid,
    endpoint: Uuid,
    event_id: Uuid,
    body: String,
    attempts: i32,
}

/// What one attempt came to.
struct Outcome {
    id: Uuid,
    endpoint: Uuid,
    attempts: i32,
    at: DateTime<Utc>,
    status_code: Option<i32>,
    latency_ms: i32,
    error: Option<String>,
    response: Option<String>,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.error.is_none() && self.status_code.is_some_and(|code| (200..300).contains(&code))
    }
}

/// A request in flight: its org, its claim's lease, and what it came to.
type InFlight<'a> = FuturesUnordered<BoxFuture<'a, (OrgId, Uuid, Outcome)>>;

/// A running worker's state ([`Service::run`]).
#[derive(Default)]
struct Worker<'a> {
    in_flight: InFlight<'a>,
    /// Requests in flight per endpoint.
    busy: HashMap<Uuid, usize>,
    /// The orgs with due deliveries as last read (read again each poll interval, and when
    /// nothing is in flight).
    orgs: Vec<OrgId>,
    orgs_read: Option<tokio::time::Instant>,
}

/// An endpoint's address and the keys of its live secrets.
struct Target {
    url: String,
    keys: Vec<hmac::Key>,
}

impl Service {
    /// Fans new events out to every enabled endpoint that is behind its org's events. Whether
    /// an endpoint had more than one batch waiting.
    pub async fn fan_out(&self) -> Result<bool, WebhookError> {
        let batch = self.settings().fan_out_batch;
        // The org is unknown by nature here: this finds the endpoints behind, of every org,
        // and each is then fanned out by statements of its own org.
        let behind = {
            let client = self.pool.get().await?;
            client
                .query(
                    "SELECT e.org_id, e.id FROM webhook_endpoints e
                     JOIN event_counters c ON c.org_id = e.org_id
                     WHERE e.enabled AND e.fanned_seq < c.last_seq",
                    &[],
                )
                .await?
        };
        let mut full = false;
        for row in behind {
            full |= self.fan_out_endpoint(OrgId(row.get(0)), row.get(1), batch).await?;
        }
        Ok(full)
    }

    async fn fan_out_endpoint(
        &self,
        org: OrgId,
        endpoint: Uuid,
        batch: i64,
    ) -> Result<bool, WebhookError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Another worker fanning out this endpoint holds it: it is theirs this round.
        let Some(row) = tx
            .query_opt(
                "SELECT fanned_seq, app_id, event_types FROM webhook_endpoints
                 WHERE org_id = $1 AND id = $2 AND enabled FOR UPDATE SKIP LOCKED",
                &[&org.0, &endpoint],
            )
            .await?
        else {
            return Ok(false);
        };
        let after: i64 = row.get(0);
        let app: Option<Uuid> = row.get(1);
        let names: Vec<String> = row.get(2);
        let types: BTreeSet<EventType> =
            names.iter().filter_map(|name| EventType::from_name(name)).collect();
        if types.is_empty() && !names.is_empty() {
            // Only types this version does not know: nothing to send, and nothing skipped
            // for good (the cursor stays) in case a newer server knows them.
            return Ok(false);
        }
        let filter = EventFilter { types, customer: None, app };
        let page = events::page(&self.pool, &self.store, org, after, batch, &filter).await?;
        let mut wanted = Vec::with_capacity(page.events.len());
        let mut previous = None;
        let mut ord = 0;
        for event in page.events {
            ord = if previous == Some(event.sequence) { ord + 1 } else { 0 };
            previous = Some(event.sequence);
            if app_wants(app, event.app_id) {
                wanted.push((event, ord));
            }
        }
        insert_deliveries(&tx, org, endpoint, &wanted).await?;
        tx.execute(
            "UPDATE webhook_endpoints SET fanned_seq = $3 WHERE org_id = $1 AND id = $2",
            &[&org.0, &endpoint, &page.next_after.max(after)],
        )
        .await?;
        tx.commit().await?;
        Ok(page.has_more)
    }

    /// Claims, sends and records the due deliveries of every org, one claim per org.
    pub async fn deliver(&self) -> Result<Round, WebhookError> {
        let settings = self.settings();
        let orgs = self.orgs_due().await?;
        let mut round = Round::default();
        for org in orgs {
            let lease = Uuid::new_v4();
            let (claimed, full) =
                self.claim(org, lease, &settings, settings.claim_batch, &HashMap::new()).await?;
            round.claimed += claimed.len();
            let mut per_endpoint: HashMap<Uuid, usize> = HashMap::new();
            for delivery in &claimed {
                *per_endpoint.entry(delivery.endpoint).or_default() += 1;
            }
            // An endpoint given all its room may have more due.
            let room = settings.endpoint_concurrency.max(1);
            round.full |= full || per_endpoint.values().any(|count| *count >= room);
            if claimed.is_empty() {
                continue;
            }
            let outcomes = self.send_all(org, claimed, &settings).await?;
            round.succeeded += outcomes.iter().filter(|outcome| outcome.succeeded()).count();
            self.record(org, lease, &outcomes, &settings).await?;
        }
        Ok(round)
    }

    /// The orgs with due deliveries (or deliveries in flight): those with an enabled endpoint
    /// whose first pending delivery is due, each found through the claims' index.
    async fn orgs_due(&self) -> Result<Vec<OrgId>, WebhookError> {
        // The org is unknown by nature here: this finds the orgs with due deliveries, whose
        // deliveries are then claimed by statements of that org.
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT DISTINCT e.org_id FROM webhook_endpoints e
                 CROSS JOIN LATERAL (SELECT 1 FROM webhook_deliveries d
                     WHERE d.org_id = e.org_id AND d.endpoint_id = e.id
                         AND d.status = 'pending' AND d.next_attempt_at <= now()
                     ORDER BY d.next_attempt_at LIMIT 1) AS due
                 WHERE e.enabled",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|row| OrgId(row.get(0))).collect())
    }

    /// Delivers until `shutdown` resolves: fans new events out, claims due deliveries while
    /// fewer than `concurrency` requests are in flight (at most `endpoint_concurrency` to one
    /// endpoint), and records each group of attempts as it finishes. A failure to reach the
    /// database is logged and tried again after the poll interval. At shutdown it claims no
    /// more and records what is in flight (a request lasts at most `timeout`).
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut worker = Worker::default();
        loop {
            // Read again each time: an operator's change applies to the next claims.
            let settings = Arc::new(self.settings());
            let more = match self.top_up(&mut worker, &settings).await {
                Ok(more) => more,
                Err(error) => {
                    tracing::warn!(error = %crate::error_chain(&error),
                        "webhook deliveries could not be claimed; trying again later");
                    false
                }
            };
            let room = worker.in_flight.len() < settings.concurrency.max(1);
            let wait = if more && room { Duration::ZERO } else { settings.poll_interval };
            let in_flight = &mut worker.in_flight;
            tokio::select! {
                () = &mut shutdown => break,
                Some(first) = in_flight.next(), if !in_flight.is_empty() => {
                    // What finishes soon after is recorded with it: one transaction for many.
                    let mut finished = vec![first];
                    let until = tokio::time::Instant::now() + GATHER;
                    while let Ok(Some(next)) = tokio::time::timeout_at(until, in_flight.next()).await {
                        finished.push(next);
                    }
                    self.settle(&mut worker.busy, finished, &settings).await;
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
        let finished: Vec<(OrgId, Uuid, Outcome)> = worker.in_flight.collect().await;
        self.settle(&mut worker.busy, finished, &self.settings()).await;
    }

    /// Fans out, then claims and starts as many due deliveries as there is room for. Whether
    /// more may be waiting.
    async fn top_up<'a>(
        &'a self,
        worker: &mut Worker<'a>,
        settings: &Arc<Settings>,
    ) -> Result<bool, WebhookError> {
        let mut more = self.fan_out().await?;
        let stale = worker.orgs_read.is_none_or(|read| read.elapsed() >= settings.poll_interval);
        if stale || worker.in_flight.is_empty() {
            worker.orgs = self.orgs_due().await?;
            worker.orgs_read = Some(tokio::time::Instant::now());
        }
        for &org in &worker.orgs {
            let room = settings.concurrency.max(1).saturating_sub(worker.in_flight.len());
            if room == 0 {
                return Ok(true);
            }
            let lease = Uuid::new_v4();
            let limit = i64::try_from(room).unwrap_or(i64::MAX).min(settings.claim_batch);
            let (claimed, full) = self.claim(org, lease, settings, limit, &worker.busy).await?;
            more |= full;
            if claimed.is_empty() {
                continue;
            }
            let targets = self.targets(org, &claimed).await?;
            for delivery in claimed {
                *worker.busy.entry(delivery.endpoint).or_default() += 1;
                let target = targets.get(&delivery.endpoint).cloned();
                let settings = Arc::clone(settings);
                worker.in_flight.push(Box::pin(async move {
                    (org, lease, self.send(target, delivery, &settings).await)
                }));
            }
        }
        Ok(more)
    }

    /// Records finished attempts, each claim's together, and frees their endpoints' room.
    async fn settle(
        &self,
        busy: &mut HashMap<Uuid, usize>,
        finished: Vec<(OrgId, Uuid, Outcome)>,
        settings: &Settings,
    ) {
        let mut claims: HashMap<(OrgId, Uuid), Vec<Outcome>> = HashMap::new();
        for (org, lease, outcome) in finished {
            if let Some(count) = busy.get_mut(&outcome.endpoint) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    busy.remove(&outcome.endpoint);
                }
            }
            claims.entry((org, lease)).or_default().push(outcome);
        }
        for ((org, lease), outcomes) in claims {
            if let Err(error) = self.record(org, lease, &outcomes, settings).await {
                // Their lease runs out and they are sent again: at least once.
                tracing::warn!(error = %crate::error_chain(&error),
                    "webhook attempts could not be recorded; they will be sent again");
            }
        }
    }

    /// Claims up to `limit` of the org's due deliveries under `lease`, skipping those another
    /// worker holds, those of disabled endpoints, those behind an earlier pending delivery of
    /// the same endpoint and customer, and those past an endpoint's room (`endpoint_concurrency`
    /// less what this worker has in flight to it, `busy`). With whether the claim was full
    /// (more may be due at once).
    async fn claim(
        &self,
        org: OrgId,
        lease: Uuid,
        settings: &Settings,
        limit: i64,
        busy: &HashMap<Uuid, usize>,
    ) -> Result<(Vec<Claimed>, bool), WebhookError> {
        let lease_ms = i64::try_from(settings.lease.as_millis()).unwrap_or(i64::MAX);
        let room = i64::try_from(settings.endpoint_concurrency.max(1)).unwrap_or(i64::MAX);
        let (busy_endpoints, busy_counts): (Vec<Uuid>, Vec<i64>) = busy
            .iter()
            .map(|(endpoint, count)| (*endpoint, i64::try_from(*count).unwrap_or(i64::MAX)))
            .unzip();
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "WITH endpoints AS (
                     SELECT e.id, $7 - coalesce(b.count, 0) AS room
                     FROM webhook_endpoints e
                     LEFT JOIN UNNEST($5::uuid[], $6::bigint[]) AS b (endpoint_id, count)
                         ON b.endpoint_id = e.id
                     WHERE e.org_id = $1 AND e.enabled
                     -- No endpoint is always last to be served.
                     ORDER BY random()
                 ),
                 due AS (
                     SELECT d.id FROM endpoints
                     CROSS JOIN LATERAL (
                         SELECT d.id FROM webhook_deliveries d
                         WHERE d.org_id = $1 AND d.endpoint_id = endpoints.id
                             AND d.status = 'pending' AND d.next_attempt_at <= now()
                             AND d.locked_until <= now()
                             AND (d.customer_id IS NULL OR NOT EXISTS (
                                 SELECT 1 FROM webhook_deliveries p
                                 WHERE p.org_id = d.org_id AND p.endpoint_id = d.endpoint_id
                                     AND p.customer_id = d.customer_id AND p.status = 'pending'
                                     AND (p.event_seq, p.event_ord) < (d.event_seq, d.event_ord)))
                         ORDER BY d.next_attempt_at, d.event_seq, d.event_ord
                         LIMIT greatest(endpoints.room, 0)
                         FOR UPDATE OF d SKIP LOCKED
                     ) AS d
                     LIMIT $2
                 )
                 UPDATE webhook_deliveries d
                 SET locked_until = now() + $3::bigint * interval '1 millisecond', lease = $4
                 FROM due WHERE d.org_id = $1 AND d.id = due.id
                 RETURNING d.id, d.endpoint_id, d.event_id, d.body, d.attempts",
                &[&org.0, &limit, &lease_ms, &lease, &busy_endpoints, &busy_counts, &room],
            )
            .await?;
        let claimed: Vec<Claimed> = rows
            .iter()
            .map(|row| Claimed {
                id: row.get(0),
                endpoint: row.get(1),
                event_id: row.get(2),
                body: row.get(3),
                attempts: row.get(4),
            })
            .collect();
        let full = i64::try_from(claimed.len()).unwrap_or(i64::MAX) >= limit;
        Ok((claimed, full))
    }

    /// Posts one recorded event at once to the org's enabled endpoints that take it (its type
    /// and app), and returns the body of the first 2xx answer within `deadline`, at most
    /// `ANSWER_MAX` bytes of it; `None` when none answered so in time. For a session step a
    /// provider waits on: the answer is the app's reply. The event is also delivered as usual
    /// later, under the same `webhook-id`, which receivers drop as a repeat.
    pub async fn ask(&self, org: OrgId, event: &Event, deadline: Duration) -> Option<String> {
        const ANSWER_MAX: usize = 16 * 1024;
        let asked = async {
            let client = self.pool.get().await.ok()?;
            let rows = client
                .query(
                    "SELECT id, app_id, event_types FROM webhook_endpoints
                     WHERE org_id = $1 AND enabled ORDER BY id",
                    &[&org.0],
                )
                .await
                .ok()?;
            drop(client);
            let body = serde_json::to_string(event).ok()?;
            let claimed: Vec<Claimed> = rows
                .iter()
                .filter(|row| {
                    let types: Vec<String> = row.get(2);
                    (types.is_empty() || types.iter().any(|t| t == event.kind.as_str()))
                        && app_wants(row.get(1), event.app_id)
                })
                .map(|row| Claimed {
                    id: Uuid::nil(),
                    endpoint: row.get(0),
                    event_id: event.id,
                    body: body.clone(),
                    attempts: 0,
                })
                .collect();
            if claimed.is_empty() {
                return None;
            }
            let targets = self.targets(org, &claimed).await.ok()?;
            let settings = self.settings();
            let transport = self.transport().ok()?;
            let timestamp = Utc::now().timestamp();
            let id = event.id.to_string();
            let mut asks: FuturesUnordered<_> = claimed
                .iter()
                .filter_map(|delivery| targets.get(&delivery.endpoint).cloned())
                .filter(|target| !target.keys.is_empty())
                .map(|target| {
                    let (transport, id, body) = (&transport, &id, &body);
                    let allow_private = settings.allow_private;
                    async move {
                        let url = reqwest::Url::parse(&target.url).ok()?;
                        if !address::literal_allowed(&url, allow_private) {
                            return None;
                        }
                        let signature =
                            sign::signature(&target.keys, id, timestamp, body.as_bytes());
                        let post =
                            transport::Post { url: url.as_str(), id, timestamp, signature, body };
                        match transport::send(transport, post, ANSWER_MAX, ANSWER_MAX).await {
                            Ok((status, answer)) if (200..300).contains(&status) => Some(answer),
                            _ => None,
                        }
                    }
                })
                .collect();
            while let Some(answer) = asks.next().await {
                if answer.is_some() {
                    return answer;
                }
            }
            None
        };
        tokio::time::timeout(deadline, asked).await.ok().flatten()
    }

    /// The addresses and live secrets of the endpoints of `claimed`.
    async fn targets(
        &self,
        org: OrgId,
        claimed: &[Claimed],
    ) -> Result<HashMap<Uuid, Arc<Target>>, WebhookError> {
        let endpoints: Vec<Uuid> =
            claimed.iter().map(|c| c.endpoint).collect::<BTreeSet<_>>().into_iter().collect();
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT e.id, e.url, s.id, s.sealed FROM webhook_endpoints e
                 LEFT JOIN webhook_secrets s ON s.org_id = e.org_id AND s.endpoint_id = e.id
                     AND (s.expires_at IS NULL OR s.expires_at > now())
                 WHERE e.org_id = $1 AND e.id = ANY($2)
                 ORDER BY e.id, s.id DESC",
                &[&org.0, &endpoints],
            )
            .await?;
        let mut targets: HashMap<Uuid, Target> = HashMap::new();
        for row in rows {
            let target = targets
                .entry(row.get(0))
                .or_insert_with(|| Target { url: row.get(1), keys: Vec::new() });
            let (Some(secret), Some(sealed)) =
                (row.get::<_, Option<Uuid>>(2), row.get::<_, Option<String>>(3))
            else {
                continue;
            };
            let opened =
                self.sealer.open(&sealed, secret.as_bytes()).map_err(WebhookError::Unreadable)?;
            match std::str::from_utf8(&opened).ok().and_then(sign::key) {
                Some(key) => target.keys.push(key),
                None => {
                    tracing::warn!(%secret, "a webhook secret is malformed; not signing with it");
                }
            }
        }
        Ok(targets.into_iter().map(|(endpoint, target)| (endpoint, Arc::new(target))).collect())
    }

    async fn send_all(
        &self,
        org: OrgId,
        claimed: Vec<Claimed>,
        settings: &Settings,
    ) -> Result<Vec<Outcome>, WebhookError> {
        let targets = self.targets(org, &claimed).await?;
        let sends = claimed.into_iter().map(|delivery| {
            let target = targets.get(&delivery.endpoint).cloned();
            self.send(target, delivery, settings)
        });
        Ok(futures_util::stream::iter(sends)
            .buffer_unordered(settings.concurrency.max(1))
            .collect()
            .await)
    }

    /// One attempt: the signed POST, its answer read up to the cap, within the timeout.
    async fn send(
        &self,
        target: Option<Arc<Target>>,
        delivery: Claimed,
        settings: &Settings,
    ) -> Outcome {
        let at = Utc::now();
        let started = Instant::now();
        let mut outcome = Outcome {
            id: delivery.id,
            endpoint: delivery.endpoint,
            attempts: delivery.attempts + 1,
            at,
            status_code: None,
            latency_ms: 0,
            error: None,
            response: None,
        };
        let result = match target.as_deref() {
            None => Err("the endpoint is gone".to_owned()),
            Some(target) if target.keys.is_empty() => {
                Err("the endpoint has no live signing secret".to_owned())
            }
            Some(target) => self.post(target, &delivery, at.timestamp(), settings).await,
        };
        outcome.latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        match result {
            Ok((status, body)) => {
                outcome.status_code = Some(i32::from(status));
                outcome.response = Some(body);
                if (300..400).contains(&status) {
                    outcome.error = Some("redirects are not followed".to_owned());
                }
            }
            Err(error) => outcome.error = Some(error),
        }
        outcome
    }

    async fn post(
        &self,
        target: &Target,
        delivery: &Claimed,
        timestamp: i64,
        settings: &Settings,
    ) -> Result<(u16, String), String> {
        let url = reqwest::Url::parse(&target.url).map_err(|error| error.to_string())?;
        if !address::literal_allowed(&url, settings.allow_private) {
            return Err("the address is not public".to_owned());
        }
        let client = self.transport()?;
        let id = delivery.event_id.to_string();
        let signature = sign::signature(&target.keys, &id, timestamp, delivery.body.as_bytes());
        let post = transport::Post {
            url: url.as_str(),
            id: &id,
            timestamp,
            signature,
            body: &delivery.body,
        };
        let exchange =
            transport::send(&client, post, settings.response_bytes_max, RESPONSE_SNIPPET_MAX);
        match tokio::time::timeout(settings.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {} ms", settings.timeout.as_millis())),
        }
    }

    /// Records the attempts and each delivery's new state (for the claims still held under
    /// `lease`), then the endpoints' health: failing since the first failure, healthy again
    /// at a success, disabled — with its event — once failing for longer than allowed.
    async fn record(
        &self,
        org: OrgId,
        lease: Uuid,
        outcomes: &[Outcome],
        settings: &Settings,
    ) -> Result<(), WebhookError> {
        let (ids, statuses, codes, delays) = plan(outcomes, settings);
        let attempt_ids: Vec<Uuid> = outcomes.iter().map(|_| Uuid::now_v7()).collect();
        let endpoints: Vec<Uuid> = outcomes.iter().map(|o| o.endpoint).collect();
        let at: Vec<DateTime<Utc>> = outcomes.iter().map(|o| o.at).collect();
        let latencies: Vec<i32> = outcomes.iter().map(|o| o.latency_ms).collect();
        let errors: Vec<Option<&str>> = outcomes.iter().map(|o| o.error.as_deref()).collect();
        let responses: Vec<Option<&str>> = outcomes.iter().map(|o| o.response.as_deref()).collect();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "WITH r AS (SELECT * FROM UNNEST($2::uuid[], $3::text[], $4::int[], $5::bigint[])
                 AS r (id, status, code, delay_ms))
             UPDATE webhook_deliveries d SET status = r.status, attempts = d.attempts + 1,
                 last_status_code = r.code, locked_until = '-infinity', lease = NULL,
                 next_attempt_at = CASE WHEN r.status = 'pending'
                     THEN now() + r.delay_ms * interval '1 millisecond'
                     ELSE d.next_attempt_at END
             FROM r WHERE d.org_id = $1 AND d.id = r.id AND d.lease = $6",
            &[&org.0, &ids, &statuses, &codes, &delays, &lease],
        )
        .await?;
        // A delivery deleted meanwhile (its endpoint was) takes no attempt.
        tx.execute(
            "INSERT INTO webhook_attempts (org_id, delivery_id, id, endpoint_id, at, status_code,
                 latency_ms, error, response)
             SELECT $1, u.* FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::timestamptz[],
                 $6::int[], $7::int[], $8::text[], $9::text[])
                 AS u (delivery_id, id, endpoint_id, at, status_code, latency_ms, error, response)
             WHERE EXISTS (SELECT 1 FROM webhook_deliveries d
                 WHERE d.org_id = $1 AND d.id = u.delivery_id)",
            &[&org.0, &ids, &attempt_ids, &endpoints, &at, &codes, &latencies, &errors, &responses],
        )
        .await?;
        tx.commit().await?;
        self.record_health(org, outcomes, settings).await
    }

    async fn record_health(
        &self,
        org: OrgId,
        outcomes: &[Outcome],
        settings: &Settings,
    ) -> Result<(), WebhookError> {
        let healthy: BTreeSet<Uuid> =
            outcomes.iter().filter(|o| o.succeeded()).map(|o| o.endpoint).collect();
        let failing: BTreeSet<Uuid> = outcomes
            .iter()
            .filter(|o| !o.succeeded())
            .map(|o| o.endpoint)
            .filter(|endpoint| !healthy.contains(endpoint))
            .collect();
        let healthy: Vec<Uuid> = healthy.into_iter().collect();
        let failing: Vec<Uuid> = failing.into_iter().collect();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if !healthy.is_empty() {
            tx.execute(
                "UPDATE webhook_endpoints SET failing_since = NULL
                 WHERE org_id = $1 AND id = ANY($2) AND failing_since IS NOT NULL",
                &[&org.0, &healthy],
            )
            .await?;
        }
        if failing.is_empty() {
            tx.commit().await?;
            return Ok(());
        }
        tx.execute(
            "UPDATE webhook_endpoints SET failing_since = now()
             WHERE org_id = $1 AND id = ANY($2) AND failing_since IS NULL",
            &[&org.0, &failing],
        )
        .await?;
        let after_ms = i64::try_from(settings.disable_after.as_millis()).unwrap_or(i64::MAX);
        let disabled = tx
            .query(
                "UPDATE webhook_endpoints SET enabled = false, disabled_reason = 'failing'
                 WHERE org_id = $1 AND id = ANY($2) AND enabled
                     AND failing_since <= now() - $3::bigint * interval '1 millisecond'
                 RETURNING id, app_id, url, failing_since",
                &[&org.0, &failing, &after_ms],
            )
            .await?;
        let events: Vec<NewEvent> = disabled
            .iter()
            .map(|row| {
                let data = events::types::WebhookEndpointDisabledData {
                    endpoint_id: row.get(0),
                    url: row.get(2),
                    failing_since: row.get(3),
                };
                tracing::warn!(endpoint = %data.endpoint_id, "a webhook endpoint failed for too long; disabled");
                NewEvent::of(EventType::WebhookEndpointDisabled, &data).app(row.get(1))
            })
            .collect();
        // The transaction's last statement, as recording events must be.
        events::record(&tx, org, &events).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Each outcome's delivery's next state: `succeeded`, `pending` again after its wait (with
/// jitter), or `failed` once the waits have run out.
#[allow(clippy::type_complexity)]
fn plan(
    outcomes: &[Outcome],
    settings: &Settings,
) -> (Vec<Uuid>, Vec<&'static str>, Vec<Option<i32>>, Vec<i64>) {
    let mut random = rand::rng();
    let mut ids = Vec::with_capacity(outcomes.len());
    let mut statuses = Vec::with_capacity(outcomes.len());
    let mut codes = Vec::with_capacity(outcomes.len());
    let mut delays = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        ids.push(outcome.id);
        codes.push(outcome.status_code);
        let waited = usize::try_from(outcome.attempts - 1).unwrap_or(usize::MAX);
        let (status, delay) = if outcome.succeeded() {
            ("succeeded", Duration::ZERO)
        } else if let Some(delay) = settings.retry_delays.get(waited) {
            ("pending", *delay)
        } else {
            ("failed", Duration::ZERO)
        };
        statuses.push(status);
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let jitter = random.random_range(0..=delay_ms / 5);
        delays.push(i64::try_from(delay_ms.saturating_add(jitter)).unwrap_or(i64::MAX));
    }
    (ids, statuses, codes, delays)
}
