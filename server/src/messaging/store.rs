//! The messaging tables' SQL: messages and their statuses, contacts (consent, windows), jobs.
//! Every statement filters by org.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use deadpool_postgres::Pool;
use hazina_ledger::{CustomerId, Money, OrgId};
use hazina_providers::messaging::DeliveryStatus;
use tokio_postgres::types::Json;
use uuid::Uuid;

use super::MessagingError;
use super::channels::ChannelRecord;
use super::outbound::{Job, MessageView, SESSION_WINDOW, StatusChange, status_of};
use crate::events::types::{Amount, MessageStatusData};
use crate::events::{self, EventType, NewEvent};

/// The columns [`view`] reads, in order.
pub const MESSAGE_COLUMNS: &str = "m.id, m.channel_id, c.channel, m.customer_id, m.direction, \
    m.customer_number, m.body, m.status, m.reason, m.provider_message_id, m.session_id, \
    m.reply_to, m.job_id, m.payment_id, m.units, m.cost_reserved_minor, m.cost_minor, \
    c.currency, m.created_at, m.updated_at, m.app_id, m.provider_tag";

/// What a customer allowed on a channel, and when they last wrote in.
#[derive(Clone, Copy, Debug, Default)]
pub struct Contact {
    pub consent: Option<bool>,
    pub last_inbound_at: Option<DateTime<Utc>>,
}

impl Contact {
    /// Whether a message may go: not when blocked, and only when allowed if the channel asks.
    pub fn allows(&self, consent_required: bool) -> bool {
        match self.consent {
            Some(allowed) => allowed,
            None => !consent_required,
        }
    }

    /// Whether the customer wrote in within the last 24 hours.
    pub fn window_open(&self, now: DateTime<Utc>) -> bool {
        self.last_inbound_at.is_some_and(|at| now - at < SESSION_WINDOW)
    }
}

pub async fn contact(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    channel: Uuid,
) -> Result<Contact, MessagingError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT consent, last_inbound_at FROM messaging_contacts
             WHERE org_id = $1 AND customer_id = $2 AND channel_id = $3",
            &[&org.0, &customer.0, &channel],
        )
        .await?;
    Ok(row.map_or_else(Contact::default, |row| Contact {
        consent: row.get::<_, Option<&str>>(0).map(|c| c == "allowed"),
        last_inbound_at: row.get(1),
    }))
}

/// Whether the org has a message with this id to or from this customer.
pub async fn message_exists(
    pool: &Pool,
    org: OrgId,
    id: Uuid,
    customer: CustomerId,
) -> Result<bool, MessagingError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT 1 FROM messages WHERE org_id = $1 AND id = $2 AND customer_id = $3",
            &[&org.0, &id, &customer.0],
        )
        .await?;
    Ok(row.is_some())
}

/// The customer's first number of a kind (`cellular`, `email`, …).
pub async fn number_of(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    provider: &str,
) -> Result<Option<String>, MessagingError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT number FROM customer_numbers
             WHERE org_id = $1 AND customer_id = $2 AND provider = $3
             ORDER BY number LIMIT 1",
            &[&org.0, &customer.0, &provider],
        )
        .await?;
    Ok(row.map(|row| row.get(0)))
}

/// A message to queue.
#[derive(Debug)]
pub struct Queued {
    pub id: Uuid,
    pub app: Option<Uuid>,
    pub customer: Uuid,
    pub number: String,
    pub body: serde_json::Value,
    pub units: i32,
    pub cost_reserved: Money,
    pub reply_to: Option<Uuid>,
    pub job: Option<Uuid>,
    pub payment: Option<Uuid>,
    pub context: Option<serde_json::Value>,
    /// The Messenger message tag it goes with.
    pub provider_tag: Option<&'static str>,
}

/// Inserts queued messages with their first status and events, in the transaction of
/// `client`; their events last.
pub(super) async fn insert_queued(
    client: &impl GenericClient,
    channel: &ChannelRecord,
    queued: &[Queued],
) -> Result<(), MessagingError> {
    if queued.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = queued.iter().map(|q| q.id).collect();
    let apps: Vec<Option<Uuid>> = queued.iter().map(|q| q.app).collect();
    let customers: Vec<Uuid> = queued.iter().map(|q| q.customer).collect();
    let numbers: Vec<&str> = queued.iter().map(|q| q.number.as_str()).collect();
    let bodies: Vec<Json<&serde_json::Value>> = queued.iter().map(|q| Json(&q.body)).collect();
    let units: Vec<i32> = queued.iter().map(|q| q.units).collect();
    let costs: Vec<i64> = queued.iter().map(|q| q.cost_reserved.to_minor().unwrap_or(0)).collect();
    let replies: Vec<Option<Uuid>> = queued.iter().map(|q| q.reply_to).collect();
    let jobs: Vec<Option<Uuid>> = queued.iter().map(|q| q.job).collect();
    let payments: Vec<Option<Uuid>> = queued.iter().map(|q| q.payment).collect();
    let contexts: Vec<Option<Json<&serde_json::Value>>> =
        queued.iter().map(|q| q.context.as_ref().map(Json)).collect();
    let tags: Vec<Option<&str>> = queued.iter().map(|q| q.provider_tag).collect();
    let queued_status = DeliveryStatus::Queued;
    client
        .execute(
            "INSERT INTO messages (org_id, id, app_id, channel_id, customer_id, direction,
                 customer_number, body, stage, status, status_rank, units, cost_reserved_minor,
                 reply_to, job_id, payment_id, context, provider_tag, next_attempt_at)
             SELECT $1, u.id, u.app, $2, u.customer, 'outbound', u.number, u.body, 'queued', $3,
                 $4, u.units, u.cost, u.reply, u.job, u.payment, u.context, u.tag, now()
             FROM UNNEST($5::uuid[], $6::uuid[], $7::uuid[], $8::text[], $9::jsonb[], $10::int4[],
                 $11::int8[], $12::uuid[], $13::uuid[], $14::uuid[], $15::jsonb[], $16::text[])
                 AS u (id, app, customer, number, body, units, cost, reply, job, payment, context,
                     tag)",
            &[
                &channel.org.0,
                &channel.id,
                &queued_status.as_str(),
                &i16::from(queued_status.rank()),
                &ids,
                &apps,
                &customers,
                &numbers,
                &bodies,
                &units,
                &costs,
                &replies,
                &jobs,
                &payments,
                &contexts,
                &tags,
            ],
        )
        .await?;
    client
        .execute(
            "INSERT INTO message_statuses (org_id, message_id, seq, status)
             SELECT $1, id, 1, $2 FROM UNNEST($3::uuid[]) AS u (id)",
            &[&channel.org.0, &queued_status.as_str(), &ids],
        )
        .await?;
    let events: Vec<NewEvent> = queued
        .iter()
        .map(|q| {
            status_event(channel, q.id, q.customer, q.app, queued_status, None, None, None, q.job)
        })
        .collect();
    events::record(client, channel.org, &events).await?;
    Ok(())
}

/// The `message.status_changed` event of a message.
#[allow(clippy::too_many_arguments)]
pub(super) fn status_event(
    channel: &ChannelRecord,
    message: Uuid,
    customer: Uuid,
    app: Option<Uuid>,
    status: DeliveryStatus,
    reason: Option<String>,
    provider_message_id: Option<String>,
    cost: Option<Money>,
    job: Option<Uuid>,
) -> NewEvent {
    let data = MessageStatusData {
        message_id: message,
        channel_id: channel.id,
        channel: channel.channel.as_str().to_owned(),
        customer_id: customer,
        status: status.as_str().to_owned(),
        status_code: status.code(),
        reason,
        provider_message_id,
        cost: cost.as_ref().map(Amount::of),
        job_id: job,
    };
    NewEvent::of(EventType::MessageStatusChanged, &data).app(app).customer(Some(customer))
}

/// A message with its history.
pub async fn message(
    pool: &Pool,
    org: OrgId,
    id: Uuid,
) -> Result<Option<MessageView>, MessagingError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m
                 JOIN messaging_channels c ON c.org_id = m.org_id AND c.id = m.channel_id
                 WHERE m.org_id = $1 AND m.id = $2"
            ),
            &[&org.0, &id],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let history = client
        .query(
            "SELECT status, reason, at FROM message_statuses
             WHERE org_id = $1 AND message_id = $2 ORDER BY seq",
            &[&org.0, &id],
        )
        .await?;
    let mut message = view(&row)?;
    for change in history {
        let status = status_of(change.get(0))?;
        message.history.push(StatusChange {
            status: status.as_str().to_owned(),
            status_code: status.code(),
            reason: change.get(1),
            at: change.get(2),
        });
    }
    Ok(Some(message))
}

/// A message as [`MESSAGE_COLUMNS`] read it, without its history.
pub fn view(row: &tokio_postgres::Row) -> Result<MessageView, MessagingError> {
    let status = status_of(row.get(7))?;
    let currency = hazina_ledger::Currency::from_code(row.get(17))
        .map_err(|_| MessagingError::Corrupt(format!("currency {:?}", row.get::<_, &str>(17))))?;
    let money = |minor: i64| Amount::of(&Money::from_minor(currency, minor));
    Ok(MessageView {
        id: row.get(0),
        channel_id: row.get(1),
        channel: row.get(2),
        customer_id: row.get(3),
        direction: row.get(4),
        customer_number: row.get(5),
        body: row.get(6),
        status: status.as_str().to_owned(),
        status_code: status.code(),
        reason: row.get(8),
        provider_message_id: row.get(9),
        session_id: row.get(10),
        reply_to: row.get(11),
        job_id: row.get(12),
        payment_id: row.get(13),
        units: row.get(14),
        cost_reserved: money(row.get(15)),
        cost: row.get::<_, Option<i64>>(16).map(money),
        created_at: row.get(18),
        updated_at: row.get(19),
        provider_tag: row.get(21),
        history: Vec::new(),
    })
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_job(
    pool: &Pool,
    org: OrgId,
    id: Uuid,
    app: Option<Uuid>,
    channel: Uuid,
    tag_key: &str,
    tag_value: Option<&str>,
    body: &serde_json::Value,
) -> Result<(), MessagingError> {
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO message_jobs (org_id, id, app_id, channel_id, tag_key, tag_value, body,
                 status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'running')",
            &[&org.0, &id, &app, &channel, &tag_key, &tag_value, body],
        )
        .await?;
    Ok(())
}

pub async fn job(pool: &Pool, org: OrgId, id: Uuid) -> Result<Option<Job>, MessagingError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT id, channel_id, tag_key, tag_value, status, queued, refused, created_at,
                 finished_at
             FROM message_jobs WHERE org_id = $1 AND id = $2",
            &[&org.0, &id],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let counts = client
        .query(
            "SELECT status, count(*) FROM messages WHERE org_id = $1 AND job_id = $2
             GROUP BY status",
            &[&org.0, &id],
        )
        .await?;
    Ok(Some(Job {
        id: row.get(0),
        channel_id: row.get(1),
        tag_key: row.get(2),
        tag_value: row.get(3),
        status: row.get(4),
        queued: row.get(5),
        refused: row.get(6),
        statuses: counts.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))).collect(),
        created_at: row.get(7),
        finished_at: row.get(8),
    }))
}

/// A job with customers left to queue.
#[derive(Debug)]
pub struct RunningJob {
    pub org: OrgId,
    pub id: Uuid,
    pub app: Option<Uuid>,
    pub channel: Uuid,
    pub tag_key: String,
    pub tag_value: Option<String>,
    pub body: serde_json::Value,
    pub through: Option<Uuid>,
}

/// The running jobs, oldest first (a few at a time).
pub async fn running_jobs(pool: &Pool) -> Result<Vec<RunningJob>, MessagingError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT org_id, id, app_id, channel_id, tag_key, tag_value, body, through
             FROM message_jobs WHERE status = 'running' ORDER BY created_at LIMIT 8",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| RunningJob {
            org: OrgId(row.get(0)),
            id: row.get(1),
            app: row.get(2),
            channel: row.get(3),
            tag_key: row.get(4),
            tag_value: row.get(5),
            body: row.get(6),
            through: row.get(7),
        })
        .collect())
}

/// The next customers of a job: those reachable (a number of the kind, consent) and how many
/// were skipped.
#[derive(Debug)]
pub struct Chunk {
    pub recipients: Vec<(Uuid, String)>,
    pub skipped: i64,
    pub last_customer: Option<Uuid>,
    pub done: bool,
}

pub async fn job_chunk(
    pool: &Pool,
    job: &RunningJob,
    channel: &ChannelRecord,
    number_kind: &str,
) -> Result<Chunk, MessagingError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT t.customer_id,
                 (SELECT n.number FROM customer_numbers n
                  WHERE n.org_id = t.org_id AND n.customer_id = t.customer_id AND n.provider = $5
                  ORDER BY n.number LIMIT 1),
                 (SELECT k.consent FROM messaging_contacts k
                  WHERE k.org_id = t.org_id AND k.customer_id = t.customer_id
                      AND k.channel_id = $6)
             FROM customer_tags t
             WHERE t.org_id = $1 AND t.key = $2 AND ($3::text IS NULL OR t.value = $3)
                 AND ($4::uuid IS NULL OR t.customer_id > $4)
                 AND (t.expires_at IS NULL OR t.expires_at > now())
             ORDER BY t.customer_id LIMIT $7",
            &[
                &job.org.0,
                &job.tag_key,
                &job.tag_value,
                &job.through,
                &number_kind,
                &channel.id,
                &super::outbound::JOB_CHUNK,
            ],
        )
        .await?;
    let done = i64::try_from(rows.len()).unwrap_or(i64::MAX) < super::outbound::JOB_CHUNK;
    let mut chunk = Chunk { recipients: Vec::new(), skipped: 0, last_customer: job.through, done };
    for row in rows {
        let customer: Uuid = row.get(0);
        chunk.last_customer = Some(customer);
        let number: Option<String> = row.get(1);
        let consent: Option<&str> = row.get(2);
        let allowed = match consent {
            Some(consent) => consent == "allowed",
            None => !channel.consent_required,
        };
        match number {
            Some(number) if allowed => chunk.recipients.push((customer, number)),
            _ => chunk.skipped += 1,
        }
    }
    Ok(chunk)
}

/// Queues a job's chunk and moves the job on, in one transaction.
pub async fn queue_job_chunk(
    pool: &Pool,
    channel: &ChannelRecord,
    job: &RunningJob,
    rows: &[Queued],
    refused: i64,
    through: Option<Uuid>,
    done: bool,
) -> Result<(), MessagingError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let queued = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    tx.execute(
        "UPDATE message_jobs SET through = $3, queued = queued + $4, refused = refused + $5,
             status = CASE WHEN $6 THEN 'done' ELSE status END,
             finished_at = CASE WHEN $6 THEN now() END
         WHERE org_id = $1 AND id = $2",
        &[&job.org.0, &job.id, &through, &queued, &refused, &done],
    )
    .await?;
    insert_queued(&tx, channel, rows).await?;
    tx.commit().await?;
    Ok(())
}

/// A send the provider answered, as the worker records it.
#[derive(Debug)]
pub struct Finished<'a> {
    pub id: Uuid,
    pub status: DeliveryStatus,
    pub reason: Option<&'a str>,
    pub provider_message_id: Option<&'a str>,
    pub cost_minor: Option<i64>,
}

/// Records the answers of one send of `org`'s messages in `client`'s transaction, in one
/// statement: each message still `sending` is `done` with its provider id and cost, takes the
/// answer's status (and a status row) when it ranks higher. The ids of the messages settled
/// (a message no longer `sending` was settled before and is left alone), each with whether
/// its status moved.
pub async fn finish_sends(
    client: &impl GenericClient,
    org: OrgId,
    finished: &[Finished<'_>],
) -> Result<std::collections::HashMap<Uuid, bool>, MessagingError> {
    if finished.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let ids: Vec<Uuid> = finished.iter().map(|f| f.id).collect();
    let provider_ids: Vec<Option<&str>> = finished.iter().map(|f| f.provider_message_id).collect();
    let costs: Vec<Option<i64>> = finished.iter().map(|f| f.cost_minor).collect();
    let statuses: Vec<&str> = finished.iter().map(|f| f.status.as_str()).collect();
    let ranks: Vec<i16> = finished.iter().map(|f| i16::from(f.status.rank())).collect();
    let reasons: Vec<Option<&str>> = finished.iter().map(|f| f.reason).collect();
    // Each message is in the batch once, and its row is locked by the UPDATE, so the history's
    // next number read before the statement is still the next one. The stage is compared with
    // a column of the (materialised) batch rather than a constant: a constant lets the plan
    // use the partial index of due messages (`stage <> 'done'`), which the statistics think
    // nearly empty (almost every message is done) but which during a bulk send holds the
    // org's whole backlog, scanned twice for every batch (263 ms for 1,000 in BENCHMARKS.md,
    // "Bulk SMS by tag"); the primary key is then the only way in.
    let rows = client
        .query(
            "WITH u AS MATERIALIZED (
                 SELECT *, 'sending'::text AS stage FROM UNNEST($2::uuid[], $3::text[],
                     $4::int8[], $5::text[], $6::int2[], $7::text[])
                     AS u (id, provider_id, cost, status, rank, reason)
             ), before AS (
                 SELECT m.id, m.status_rank FROM messages m JOIN u ON m.id = u.id
                 WHERE m.org_id = $1 AND m.stage = u.stage
             ), moved AS (
                 UPDATE messages m SET stage = 'done', next_attempt_at = NULL,
                     provider_message_id = coalesce(u.provider_id, m.provider_message_id),
                     cost_minor = u.cost,
                     status = CASE WHEN m.status_rank < u.rank THEN u.status ELSE m.status END,
                     reason = CASE WHEN m.status_rank < u.rank THEN u.reason ELSE m.reason END,
                     status_rank = greatest(m.status_rank, u.rank), updated_at = now()
                 FROM u
                 WHERE m.org_id = $1 AND m.id = u.id AND m.stage = u.stage
                 RETURNING m.id, u.status, u.reason, u.rank
             ), history AS (
                 INSERT INTO message_statuses (org_id, message_id, seq, status, reason)
                 SELECT $1, moved.id,
                     (SELECT coalesce(max(s.seq), 0) + 1 FROM message_statuses s
                      WHERE s.org_id = $1 AND s.message_id = moved.id),
                     moved.status, moved.reason
                 FROM moved JOIN before ON before.id = moved.id
                 WHERE before.status_rank < moved.rank
             )
             SELECT moved.id, before.status_rank < moved.rank
             FROM moved JOIN before ON before.id = moved.id",
            &[&org.0, &ids, &provider_ids, &costs, &statuses, &ranks, &reasons],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Puts sends that got no answer back in the queue, each due again after its wait, in one
/// statement (only those still `sending`).
pub async fn retry_sends(
    client: &impl GenericClient,
    org: OrgId,
    retries: &[(Uuid, &str, std::time::Duration)],
) -> Result<(), MessagingError> {
    if retries.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = retries.iter().map(|(id, _, _)| *id).collect();
    let reasons: Vec<&str> = retries.iter().map(|(_, reason, _)| *reason).collect();
    let waits: Vec<f64> = retries.iter().map(|(_, _, wait)| wait.as_secs_f64()).collect();
    client
        .execute(
            // The stage compared as in `finish_sends`, for the same reason.
            "WITH u AS MATERIALIZED (
                 SELECT *, 'sending'::text AS stage
                 FROM UNNEST($2::uuid[], $3::text[], $4::float8[]) AS u (id, reason, wait)
             )
             UPDATE messages m SET stage = 'queued', reason = u.reason,
                 next_attempt_at = now() + make_interval(secs => u.wait), updated_at = now()
             FROM u WHERE m.org_id = $1 AND m.id = u.id AND m.stage = u.stage",
            &[&org.0, &ids, &reasons, &waits],
        )
        .await?;
    Ok(())
}

/// What applying a group of status reports did.
#[derive(Debug, Default)]
pub struct Applied {
    /// For each report, in order, whether it changed its message.
    pub changed: Vec<bool>,
    /// The provider ids of the reports parked: no message of the channel had them yet.
    pub parked: Vec<String>,
}

/// A message a group of reports names.
struct Target {
    id: Uuid,
    rank: i16,
    customer: Uuid,
    app: Option<Uuid>,
    job: Option<Uuid>,
    /// Status rows this group adds, so far.
    added: i32,
}

/// The columns [`targets`] reads, in order, of `messages` as `m`.
const TARGET_COLUMNS: &str =
    "m.provider_message_id, m.id, m.status_rank, m.customer_id, m.app_id, m.job_id";

/// The messages of `rows` (read with [`TARGET_COLUMNS`] first) by provider id; a message
/// without one yet is left out, since no report can name it.
fn targets(rows: &[tokio_postgres::Row]) -> std::collections::HashMap<String, Target> {
    rows.iter()
        .filter_map(|row| {
            let provider_id: Option<String> = row.get(0);
            let target = Target {
                id: row.get(1),
                rank: row.get(2),
                customer: row.get(3),
                app: row.get(4),
                job: row.get(5),
                added: 0,
            };
            Some((provider_id?, target))
        })
        .collect()
}

/// What [`move_statuses`] did, for its caller to finish in the same transaction.
struct Moved<'a> {
    /// For each report, in order, whether it changed its message.
    changed: Vec<bool>,
    /// The reports that named no target.
    unknown: Vec<&'a hazina_providers::messaging::StatusUpdate>,
    /// The `message.status_changed` events of the moves, in order.
    events: Vec<NewEvent>,
}

/// Moves `targets` (locked by the caller's transaction) by `updates`, as if one after another
/// in the order given: a report moves its message only to a status of higher rank than the
/// message's and every earlier report's for it (so a duplicate or a late `sent` changes
/// nothing), with a status row and an event for each move. The events are the caller's to
/// record.
async fn move_statuses<'a>(
    client: &impl GenericClient,
    channel: &ChannelRecord,
    targets: &mut std::collections::HashMap<String, Target>,
    updates: &[&'a hazina_providers::messaging::StatusUpdate],
) -> Result<Moved<'a>, MessagingError> {
    let mut moved = Moved {
        changed: Vec::with_capacity(updates.len()),
        unknown: Vec::new(),
        events: Vec::new(),
    };
    let mut moved_ids = Vec::new();
    let mut moved_statuses = Vec::new();
    let mut moved_ranks = Vec::new();
    let mut moved_reasons = Vec::new();
    let mut moved_seqs = Vec::new();
    for update in updates {
        let rank = i16::from(update.status.rank());
        let Some(target) = targets.get_mut(&update.provider_message_id) else {
            moved.unknown.push(update);
            moved.changed.push(false);
            continue;
        };
        if rank <= target.rank {
            moved.changed.push(false);
            continue;
        }
        target.rank = rank;
        target.added += 1;
        moved_ids.push(target.id);
        moved_statuses.push(update.status.as_str());
        moved_ranks.push(rank);
        moved_reasons.push(update.reason.as_deref());
        moved_seqs.push(target.added);
        moved.events.push(status_event(
            channel,
            target.id,
            target.customer,
            target.app,
            update.status,
            update.reason.clone(),
            Some(update.provider_message_id.clone()),
            None,
            target.job,
        ));
        moved.changed.push(true);
    }
    if !moved_ids.is_empty() {
        // A message moved twice in the group takes its last (highest) status; its history
        // gets both, numbered after what it had.
        client
            .execute(
                "WITH u AS (
                     SELECT * FROM UNNEST($2::uuid[], $3::text[], $4::int2[], $5::text[],
                         $6::int4[]) AS u (id, status, rank, reason, added)
                 ), last AS (
                     SELECT DISTINCT ON (id) id, status, rank, reason FROM u
                     ORDER BY id, added DESC
                 ), moved AS (
                     UPDATE messages m SET status = last.status, status_rank = last.rank,
                         reason = last.reason, updated_at = now()
                     FROM last WHERE m.org_id = $1 AND m.id = last.id
                 )
                 INSERT INTO message_statuses (org_id, message_id, seq, status, reason)
                 SELECT $1, u.id,
                     (SELECT coalesce(max(s.seq), 0) FROM message_statuses s
                      WHERE s.org_id = $1 AND s.message_id = u.id) + u.added,
                     u.status, u.reason
                 FROM u",
                &[
                    &channel.org.0,
                    &moved_ids,
                    &moved_statuses,
                    &moved_ranks,
                    &moved_reasons,
                    &moved_seqs,
                ],
            )
            .await?;
    }
    Ok(moved)
}

/// Applies status reports of one channel in one transaction, as if one after another in the
/// order given: a report moves its message only to a status of higher rank than the
/// message's and every earlier report's for it (so a duplicate or a late `sent` changes
/// nothing), with a status row and an event for each move; a report naming a provider id no
/// message has is parked until the id is recorded.
pub async fn apply_reports(
    pool: &Pool,
    channel: &ChannelRecord,
    updates: &[&hazina_providers::messaging::StatusUpdate],
) -> Result<Applied, MessagingError> {
    if updates.is_empty() {
        return Ok(Applied::default());
    }
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // Plans that do not depend on which org: an org new to the table's statistics (its first
    // bulk send, before autovacuum's next analyze) looks like one row to a plan made for its
    // id, which then scans all its messages by `org_id` for every group instead of looking
    // each provider id up (measured: 12 ms against 0.3 ms a group, BENCHMARKS.md).
    tx.batch_execute("SET LOCAL plan_cache_mode = force_generic_plan").await?;
    let provider_ids: Vec<&str> = updates.iter().map(|u| u.provider_message_id.as_str()).collect();
    // Locked in id order, as every writer of many messages locks them.
    let rows = tx
        .query(
            &format!(
                "SELECT {TARGET_COLUMNS} FROM messages m
                 WHERE m.org_id = $1 AND m.channel_id = $2 AND m.direction = 'outbound'
                     AND m.provider_message_id = ANY($3)
                 ORDER BY m.id FOR UPDATE"
            ),
            &[&channel.org.0, &channel.id, &provider_ids],
        )
        .await?;
    let mut targets = targets(&rows);
    let moved = move_statuses(&tx, channel, &mut targets, updates).await?;
    let mut applied = Applied { changed: moved.changed, parked: Vec::new() };
    let parked = moved.unknown;
    if !parked.is_empty() {
        let ids: Vec<&str> = parked.iter().map(|u| u.provider_message_id.as_str()).collect();
        let statuses: Vec<&str> = parked.iter().map(|u| u.status.as_str()).collect();
        let reasons: Vec<Option<&str>> = parked.iter().map(|u| u.reason.as_deref()).collect();
        tx.execute(
            "INSERT INTO message_reports_parked
                 (org_id, channel_id, provider_message_id, status, reason)
             SELECT $1, $2, u.id, u.status, u.reason
             FROM UNNEST($3::text[], $4::text[], $5::text[]) AS u (id, status, reason)
             ON CONFLICT DO NOTHING",
            &[&channel.org.0, &channel.id, &ids, &statuses, &reasons],
        )
        .await?;
        applied.parked = ids.into_iter().map(str::to_owned).collect();
    }
    events::record(&tx, channel.org, &moved.events).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Keeps a watermark (Messenger's `delivery` or `read` without `mids`: every message to the
/// customer at `number` recorded up to `up_to` is delivered or read) and applies it, in one
/// transaction; how many messages it moved.
///
/// A message whose send has no answer yet has no provider id, and cannot be moved; the
/// watermark is kept so that the transaction recording the id applies it
/// ([`apply_kept_watermarks`]). Neither may miss the other: this transaction locks every
/// message the watermark covers, provider id or not, before it looks at their ids. A send's
/// answer recorded first (its row locked) is waited for and seen; one recorded after waits
/// for this transaction's commit, and then reads the watermark kept here.
///
/// The messages are found through `customer`, the customer who holds the number now (their
/// messages' index); a number nobody holds has no message still to be answered, and its
/// watermark is only kept.
pub async fn apply_watermark(
    pool: &Pool,
    channel: &ChannelRecord,
    customer: Option<CustomerId>,
    number: &str,
    status: DeliveryStatus,
    up_to: DateTime<Utc>,
) -> Result<usize, MessagingError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO messaging_watermarks (org_id, channel_id, customer_number, status, up_to)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (org_id, channel_id, customer_number, status) DO UPDATE SET
             up_to = greatest(messaging_watermarks.up_to, EXCLUDED.up_to), updated_at = now()",
        &[&channel.org.0, &channel.id, &number, &status.as_str(), &up_to],
    )
    .await?;
    let Some(customer) = customer else {
        tx.commit().await?;
        return Ok(0);
    };
    // Locked in id order, as every writer of many messages locks them.
    let rows = tx
        .query(
            &format!(
                "SELECT {TARGET_COLUMNS}, coalesce(m.sending_at, m.created_at) <= $3
                 FROM messages m
                 WHERE m.org_id = $1 AND m.customer_id = $2 AND m.created_at <= $3
                     AND m.channel_id = $4 AND m.direction = 'outbound'
                     AND m.customer_number = $5 AND m.status_rank < $6
                 ORDER BY m.id FOR UPDATE"
            ),
            &[&channel.org.0, &customer.0, &up_to, &channel.id, &number, &i16::from(status.rank())],
        )
        .await?;
    // Every message queued by then is locked (a send's answer waits for the watermark to be
    // kept), but one is moved only if its request had left by the watermark's time: a message
    // queued before the customer read the conversation, and sent after, is not read.
    let rows: Vec<_> = rows.into_iter().filter(|row| row.get::<_, bool>(row.len() - 1)).collect();
    let mut targets = targets(&rows);
    let updates: Vec<hazina_providers::messaging::StatusUpdate> = targets
        .keys()
        .map(|provider_id| hazina_providers::messaging::StatusUpdate {
            provider_message_id: provider_id.clone(),
            status,
            reason: None,
            cost: None,
            at: Some(up_to),
        })
        .collect();
    let updates: Vec<&hazina_providers::messaging::StatusUpdate> = updates.iter().collect();
    let moved = move_statuses(&tx, channel, &mut targets, &updates).await?;
    events::record(&tx, channel.org, &moved.events).await?;
    tx.commit().await?;
    Ok(moved.changed.iter().filter(|changed| **changed).count())
}

/// Moves the messages `ids` of the channel, whose provider ids `client`'s transaction has just
/// recorded ([`finish_sends`], which locked them), by the kept watermarks that cover them
/// ([`apply_watermark`]), delivered before read. The events of the moves, to be recorded in the
/// same transaction.
pub async fn apply_kept_watermarks(
    client: &impl GenericClient,
    channel: &ChannelRecord,
    ids: &[Uuid],
) -> Result<Vec<NewEvent>, MessagingError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            &format!(
                "SELECT {TARGET_COLUMNS}, w.status, w.up_to FROM messages m
                 JOIN messaging_watermarks w ON w.org_id = m.org_id
                     AND w.channel_id = m.channel_id AND w.customer_number = m.customer_number
                 WHERE m.org_id = $1 AND m.id = ANY($2) AND m.channel_id = $3
                     AND m.provider_message_id IS NOT NULL AND w.org_id = $1
                     AND w.channel_id = $3 AND m.sending_at <= w.up_to"
            ),
            &[&channel.org.0, &ids, &channel.id],
        )
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut updates: Vec<hazina_providers::messaging::StatusUpdate> = rows
        .iter()
        .filter_map(|row| {
            Some(hazina_providers::messaging::StatusUpdate {
                provider_message_id: row.get::<_, Option<String>>(0)?,
                status: DeliveryStatus::from_name(row.get(6))?,
                reason: None,
                cost: None,
                at: Some(row.get(7)),
            })
        })
        .collect();
    updates.sort_by_key(|update| update.status.rank());
    let updates: Vec<&hazina_providers::messaging::StatusUpdate> = updates.iter().collect();
    let mut targets = targets(&rows);
    Ok(move_statuses(client, channel, &mut targets, &updates).await?.events)
}

/// Of `provider_ids`, those a message of the channel has now.
pub async fn recorded_provider_ids(
    pool: &Pool,
    channel: &ChannelRecord,
    provider_ids: &[String],
) -> Result<Vec<String>, MessagingError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT provider_message_id FROM messages
             WHERE org_id = $1 AND channel_id = $2 AND direction = 'outbound'
                 AND provider_message_id = ANY($3)",
            &[&channel.org.0, &channel.id, &provider_ids],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Takes the parked reports of `provider_ids` (they are forgotten), in the order of their
/// meaning.
pub async fn take_parked(
    pool: &Pool,
    channel: &ChannelRecord,
    provider_ids: &[String],
) -> Result<Vec<hazina_providers::messaging::StatusUpdate>, MessagingError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "DELETE FROM message_reports_parked
             WHERE org_id = $1 AND channel_id = $2 AND provider_message_id = ANY($3)
             RETURNING provider_message_id, status, reason",
            &[&channel.org.0, &channel.id, &provider_ids],
        )
        .await?;
    let mut updates: Vec<hazina_providers::messaging::StatusUpdate> = rows
        .iter()
        .filter_map(|row| {
            Some(hazina_providers::messaging::StatusUpdate {
                provider_message_id: row.get(0),
                status: DeliveryStatus::from_name(row.get(1))?,
                reason: row.get(2),
                cost: None,
                at: None,
            })
        })
        .collect();
    updates.sort_by_key(|update| update.status.rank());
    Ok(updates)
}
