//! The send worker: claims due messages, sends them in batches per channel and body, and
//! applies each answer — the ledger first (the cost posted or voided under ids derived from
//! the message's), then the message's row, status and event.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use futures_util::StreamExt as _;
use hazina_ledger::rules::{Action, Outcome, TransferRequest};
use hazina_ledger::{Money, OrgId, TransferId};
use hazina_providers::messaging::{Body, Channel, DeliveryStatus, SendResult};
use uuid::Uuid;

use super::channels::ChannelRecord;
use super::providers::{Outgoing, send_batch};
use super::store::{self, status_event};
use super::{MessagingError, Service};
use crate::events;

/// Ids of the transfers that settle a message's cost: derived from the message's, so a repeat
/// after a crash is a replay.
const SETTLE_NAMESPACE: Uuid = Uuid::from_u128(0x6d65_7373_6167_655f_636f_7374_0000_0001);

/// Chunks of customers (`outbound::JOB_CHUNK` each) a round queues at least while a job has
/// customers left: four queued for every provider request's worth sent.
const JOB_CHUNKS_PER_ROUND: usize = 4;

/// A claimed message.
#[derive(Debug, Clone)]
struct Claimed {
    org: OrgId,
    id: Uuid,
    app: Option<Uuid>,
    channel: Uuid,
    customer: Uuid,
    number: String,
    body: serde_json::Value,
    cost_reserved_minor: i64,
    attempts: i32,
    created_at: chrono::DateTime<Utc>,
    job: Option<Uuid>,
    /// The provider's id of the message this one answers.
    reply_to: Option<String>,
    /// The Messenger message tag it goes with.
    provider_tag: Option<String>,
}

/// What became of one message.
#[derive(Debug)]
struct Settled {
    message: Claimed,
    result: SendResult,
}

impl Service {
    /// One round of the worker: sends the due messages and, while those sends are in flight,
    /// queues send-by-tag jobs' customers a chunk at a time. While a job has customers left to
    /// queue, queueing comes first: a round queues at least `JOB_CHUNKS_PER_ROUND` chunks and
    /// sends at most one provider request's worth, so that a job is accepted (its messages
    /// recorded, their costs reserved: what the API promised) at the pace of the ledger and
    /// the database, and sent at full speed after (BENCHMARKS.md, "Bulk SMS by tag"). How many
    /// messages were queued and sent; a job with customers left wakes the worker for another
    /// round at once.
    pub async fn run_due(&self) -> Result<usize, MessagingError> {
        let (first, mut more) = self.step_jobs().await?;
        let settings = self.settings();
        let limit =
            if more { settings.recipients_per_request_max } else { settings.send_batch_max };
        let sending_done = AtomicBool::new(false);
        let sending = async {
            let sent = self.send_due(limit).await;
            sending_done.store(true, Ordering::Release);
            sent
        };
        let stepping = async {
            let (mut queued, mut chunks) = (first, 1);
            while more && (chunks < JOB_CHUNKS_PER_ROUND || !sending_done.load(Ordering::Acquire)) {
                let (count, left) = self.step_jobs().await?;
                (queued, more, chunks) = (queued + count, left, chunks + 1);
            }
            Ok::<_, MessagingError>((queued, more))
        };
        let (sent, stepped) = tokio::join!(sending, stepping);
        let (queued, more) = stepped?;
        if more {
            self.wake.notify_one();
        }
        Ok(sent? + queued)
    }

    /// Sends due messages (up to `limit`): one request per channel, body and up
    /// to `recipients_per_request_max` numbers, a few in flight at once, each answer settled
    /// as it comes. How many were sent.
    async fn send_due(&self, limit: usize) -> Result<usize, MessagingError> {
        let settings = self.settings();
        let claimed = self.claim(limit).await?;
        let count = claimed.len();
        if claimed.is_empty() {
            return Ok(0);
        }
        let mut groups: HashMap<(OrgId, Uuid, String), Vec<Claimed>> = HashMap::new();
        for message in claimed {
            let key = (message.org, message.channel, message.body.to_string());
            groups.entry(key).or_default().push(message);
        }
        let mut channels: HashMap<(OrgId, Uuid), Arc<ChannelRecord>> = HashMap::new();
        let mut batches = Vec::new();
        for ((org, channel, _), messages) in groups {
            let record = if let Some(record) = channels.get(&(org, channel)) {
                Arc::clone(record)
            } else {
                let record = Arc::new(self.channel(org, channel).await?);
                channels.insert((org, channel), Arc::clone(&record));
                record
            };
            // A number at most once per request: the provider's answer is matched by number.
            let mut chunk: Vec<Claimed> = Vec::new();
            for message in messages {
                let repeated = chunk.iter().any(|m| m.number == message.number);
                if repeated || chunk.len() >= settings.recipients_per_request_max {
                    batches.push((Arc::clone(&record), std::mem::take(&mut chunk)));
                }
                chunk.push(message);
            }
            if !chunk.is_empty() {
                batches.push((record, chunk));
            }
        }
        let http = hazina_providers::http::HttpClient { timeout: settings.provider_timeout };
        let hosts = &settings.provider_hosts;
        let sends = batches.into_iter().map(|(channel, messages)| async move {
            let settled = match serde_json::from_value::<Body>(messages[0].body.clone()) {
                Ok(body) => {
                    let outgoing: Vec<Outgoing> = messages
                        .iter()
                        .map(|m| Outgoing {
                            number: m.number.clone(),
                            reply_to: m.reply_to.clone(),
                            provider_tag: m.provider_tag.clone(),
                        })
                        .collect();
                    let results = send_batch(http, hosts, &channel, &body, &outgoing).await;
                    messages
                        .into_iter()
                        .zip(results)
                        .map(|(message, result)| Settled { message, result })
                        .collect()
                }
                Err(error) => messages
                    .into_iter()
                    .map(|message| Settled {
                        message,
                        result: SendResult::Refused {
                            status: DeliveryStatus::ApplicationError,
                            reason: format!("the stored body is unreadable: {error}"),
                        },
                    })
                    .collect::<Vec<_>>(),
            };
            (channel, settled)
        });
        let mut done =
            futures_util::stream::iter(sends).buffer_unordered(settings.concurrency.max(1));
        while let Some((channel, settled)) = done.next().await {
            self.settle(&channel, settled).await?;
        }
        Ok(count)
    }

    /// Claims due messages: `sending` from now, and due again after the provider's timeout
    /// and some, should this process stop mid-send. The due messages of every org are read in
    /// the claim's order through `messages_claim` (migration 0022), so a claim reads only the
    /// rows it takes, however long the backlog.
    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, MessagingError> {
        let lease = self.settings().provider_timeout.as_secs_f64() * 2.0 + 30.0;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                // Each claimed row is found again by its `ctid` (it is locked, so it stays
                // put), which no plan can get wrong: with an org new to the table's statistics
                // every index led by `org_id` looks like one row, and a join on the key was
                // planned as a scan of all the org's messages per claimed one.
                "WITH due AS (
                     SELECT ctid, org_id, id FROM messages
                     WHERE stage <> 'done' AND next_attempt_at <= now()
                     ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
                 )
                 UPDATE messages m SET stage = 'sending', attempts = m.attempts + 1,
                     next_attempt_at = now() + make_interval(secs => $2), updated_at = now(),
                     sending_at = now()
                 FROM due WHERE m.ctid = due.ctid AND m.org_id = due.org_id AND m.id = due.id
                 RETURNING m.org_id, m.id, m.app_id, m.channel_id, m.customer_id,
                     m.customer_number, m.body, m.cost_reserved_minor, m.attempts, m.created_at,
                     m.job_id,
                     CASE WHEN m.reply_to IS NOT NULL THEN
                         (SELECT r.provider_message_id FROM messages r
                          WHERE r.org_id = m.org_id AND r.id = m.reply_to)
                     END,
                     m.provider_tag",
                &[&i64::try_from(limit).unwrap_or(i64::MAX), &lease],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| Claimed {
                org: OrgId(row.get(0)),
                id: row.get(1),
                app: row.get(2),
                channel: row.get(3),
                customer: row.get(4),
                number: row.get(5),
                body: row.get(6),
                cost_reserved_minor: row.get(7),
                attempts: row.get(8),
                created_at: row.get(9),
                job: row.get(10),
                reply_to: row.get(11),
                provider_tag: row.get(12),
            })
            .collect())
    }

    /// Applies the answers of one batch: the ledger first, then the rows, statuses and events
    /// in one transaction (with the watermarks kept for the messages), then any reports that
    /// came before the provider's ids were known.
    #[allow(clippy::too_many_lines)] // The ledger, then one transaction, then parked reports.
    async fn settle(
        &self,
        channel: &ChannelRecord,
        settled: Vec<Settled>,
    ) -> Result<(), MessagingError> {
        let settings = self.settings();
        let now = Utc::now();
        let ttl =
            chrono::TimeDelta::from_std(settings.time_to_live).unwrap_or(chrono::TimeDelta::MAX);
        let mut ledger = Vec::new();
        let mut finished = Vec::new();
        let mut retries = Vec::new();
        for Settled { message, result } in settled {
            let reserved = Money::from_minor(channel.currency(), message.cost_reserved_minor);
            match result {
                SendResult::Accepted { provider_message_id, status, cost } => {
                    let charged = match cost {
                        Some(cost) if cost.currency() == reserved.currency() => {
                            if cost.amount() > reserved.amount() {
                                tracing::warn!(message = %message.id, "the provider charged more than was reserved; posting the reservation");
                                reserved
                            } else {
                                cost
                            }
                        }
                        _ => reserved,
                    };
                    if reserved.is_positive() {
                        ledger.push(Self::settle_request(channel, &message, Some(charged)));
                    }
                    finished.push((message, status, None, provider_message_id, Some(charged)));
                }
                SendResult::Refused { status, reason } => {
                    if reserved.is_positive() {
                        ledger.push(Self::settle_request(channel, &message, None));
                    }
                    finished.push((message, status, Some(reason), None, None));
                }
                SendResult::Retry { reason } => {
                    if now - message.created_at > ttl {
                        if reserved.is_positive() {
                            ledger.push(Self::settle_request(channel, &message, None));
                        }
                        let why =
                            format!("not taken by the provider within its time to live: {reason}");
                        finished.push((message, DeliveryStatus::Expired, Some(why), None, None));
                    } else {
                        let exponent =
                            u32::try_from(message.attempts.clamp(1, 20) - 1).unwrap_or(0);
                        let wait =
                            settings.retry_base.saturating_mul(2_u32.saturating_pow(exponent));
                        retries.push((message, wait.min(settings.retry_max), reason));
                    }
                }
            }
        }
        let outcomes = futures_util::future::join_all(
            ledger.into_iter().map(|request| self.pipeline.submit(request)),
        )
        .await;
        for outcome in outcomes {
            if let Outcome::Rejected(reason) = outcome? {
                // Settling our own open reservation cannot be refused unless the books were
                // changed behind our back (or it expired): stop rather than record a lie.
                tracing::error!(
                    reason = reason.code(),
                    "the ledger refused to settle a message's cost"
                );
                return Err(MessagingError::LedgerRefused {
                    what: "settle",
                    reason: reason.code(),
                });
            }
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let rows: Vec<store::Finished<'_>> = finished
            .iter()
            .map(|(message, status, reason, provider_id, cost)| store::Finished {
                id: message.id,
                status: *status,
                reason: reason.as_deref(),
                provider_message_id: provider_id.as_deref(),
                cost_minor: cost.as_ref().and_then(|c| c.to_minor().ok()),
            })
            .collect();
        let changed = store::finish_sends(&tx, channel.org, &rows).await?;
        let mut events = Vec::new();
        let mut recorded = Vec::new();
        for (message, status, reason, provider_id, cost) in &finished {
            let Some(&moved) = changed.get(&message.id) else { continue };
            if let Some(id) = provider_id {
                recorded.push(id.clone());
            }
            if !moved {
                continue;
            }
            events.push(status_event(
                channel,
                message.id,
                message.customer,
                message.app,
                *status,
                reason.clone(),
                provider_id.clone(),
                *cost,
                message.job,
            ));
        }
        // Watermarks that came before these answers (Messenger's alone), applied in the
        // transaction that records the provider ids: `store::apply_watermark`.
        if channel.channel == Channel::Messenger {
            let ids: Vec<Uuid> = finished
                .iter()
                .filter(|(message, _, _, provider_id, _)| {
                    provider_id.is_some() && changed.contains_key(&message.id)
                })
                .map(|(message, ..)| message.id)
                .collect();
            events.extend(store::apply_kept_watermarks(&tx, channel, &ids).await?);
        }
        let retries: Vec<(Uuid, &str, std::time::Duration)> = retries
            .iter()
            .map(|(message, wait, reason)| (message.id, reason.as_str(), *wait))
            .collect();
        store::retry_sends(&tx, channel.org, &retries).await?;
        events::record(&tx, channel.org, &events).await?;
        tx.commit().await?;
        drop(client);
        if !recorded.is_empty() {
            self.apply_parked(channel, &recorded).await?;
        }
        Ok(())
    }

    /// The transfer that posts `charged` of a message's reservation (what is left is released),
    /// or voids it (`None`).
    fn settle_request(
        channel: &ChannelRecord,
        message: &Claimed,
        charged: Option<Money>,
    ) -> TransferRequest {
        let pending_id = TransferId(message.id);
        let (what, action) = match charged {
            Some(charged) if charged.is_positive() => {
                ("post", Action::PostPending { pending_id, amounts: Some(vec![charged, charged]) })
            }
            _ => ("void", Action::VoidPending { pending_id }),
        };
        let mut context = serde_json::Map::new();
        context.insert(
            "message".to_owned(),
            serde_json::json!({ "id": message.id, "channelId": channel.id }),
        );
        TransferRequest {
            id: TransferId(Uuid::new_v5(
                &SETTLE_NAMESPACE,
                format!("{}/{what}", message.id).as_bytes(),
            )),
            id_is_new: false,
            org: message.org,
            action,
            code: format!("message_cost_{what}"),
            effective_at: None,
            context: Arc::new(context),
        }
    }
}
