//! Sending: checking a message against its channel, the customer's consent and window, its
//! cost reserved in the ledger (or, on a free channel, its context applied with it), the
//! message queued (one or a tag's worth), and the reads of a message and a job.
//!
//! A message to a number no customer holds yet is checked as one to a customer with nothing
//! (no consent given, no window open, no messages, no payments), and the customer is made in
//! the transaction that records the message: a refused message leaves no customer behind.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hazina_ledger::context;
use hazina_ledger::rules::{Action, Outcome, Posting, RejectReason, Side, TransferRequest};
use hazina_ledger::{CustomerId, Money, OrgId, TransferId};
use hazina_providers::messaging::{Body, Channel, DeliveryStatus};
use hazina_providers::messenger::MessageTag;
use serde::Serialize;
use tokio_postgres::types::Json;
use uuid::Uuid;

use super::channels::{ChannelRecord, number_provider};
use super::store::{self, Contact, Queued};
use super::{MessagingError, Service};
use crate::code::Code;
use crate::customers::{self, CustomerError, CustomerNumber};
use crate::events::types::CustomerData;
use crate::events::{self, EventType, NewEvent};
use crate::money::{PaymentContext, context_effects};

/// Most SMS segments one message may take (1,530 GSM-7 characters, 670 UCS-2).
pub const SMS_SEGMENTS_MAX: usize = 10;
/// Longest text WhatsApp and Telegram carry, in characters.
const CHAT_TEXT_MAX: usize = 4_096;
/// Longest text Messenger carries.
const MESSENGER_TEXT_MAX: usize = 2_000;
/// How long after a customer's last message a free-form WhatsApp or Messenger message may go.
pub const SESSION_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// Customers one job step queues.
pub const JOB_CHUNK: i64 = 1_000;

/// Who a message goes to.
#[derive(Clone, Debug)]
pub enum Recipient {
    /// A customer of the org, at their number for the channel's kind.
    Customer(Uuid),
    /// An address on the channel (made a customer when new).
    Number(String),
}

/// A message to send, as the API takes it.
#[derive(Debug)]
pub struct NewMessage {
    pub org: OrgId,
    pub app: Option<Uuid>,
    pub channel: Uuid,
    pub to: Recipient,
    pub body: Body,
    /// Our earlier message (to or from the customer) this answers.
    pub reply_to: Option<Uuid>,
    /// What the message does for the customer, applied with its cost's reservation (in the
    /// transaction that records it, on a free channel). It names no message (`messageId`): a
    /// message answers another through `reply_to`.
    pub context: Option<PaymentContext>,
    /// The payment the message is about: one of the customer's payments in the org.
    pub payment_id: Option<Uuid>,
    /// Messenger only: the message tag it goes with, which lets it go outside the customer's
    /// window.
    pub provider_tag: Option<MessageTag>,
}

/// Who a message goes to, once found.
#[derive(Debug)]
struct To {
    /// The customer; for a new number, the id the customer is made with.
    customer: CustomerId,
    /// Their address on the channel.
    number: String,
    /// The number to make the customer with, when no customer holds it yet.
    new: Option<CustomerNumber>,
}

/// One status a message took.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: String,
    pub status_code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// A message as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub channel: String,
    pub customer_id: Uuid,
    /// `outbound` or `inbound`.
    pub direction: String,
    pub customer_number: String,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    pub status: String,
    pub status_code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<Uuid>,
    /// The Messenger message tag it went with (`MESSAGE_TAG`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_tag: Option<String>,
    /// Units charged for: SMS segments, voice minutes, messages.
    pub units: i32,
    /// What its cost's reservation holds, in the channel's currency.
    pub cost_reserved: crate::events::types::Amount,
    /// What the provider charged, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::events::types::Amount>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every status it took, oldest first.
    pub history: Vec<StatusChange>,
}

/// A message to every customer with a tag.
#[derive(Debug)]
pub struct NewJob {
    pub org: OrgId,
    pub app: Option<Uuid>,
    pub channel: Uuid,
    pub tag_key: String,
    pub tag_value: Option<String>,
    pub body: Body,
}

/// A send-by-tag job, as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub tag_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_value: Option<String>,
    /// `running` or `done`.
    pub status: String,
    /// Messages queued so far.
    pub queued: i64,
    /// Customers skipped: no number for the channel, no consent, or no credit.
    pub refused: i64,
    /// Of the queued messages, how many are in each status now.
    #[schema(value_type = Object)]
    pub statuses: std::collections::BTreeMap<String, i64>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// How many units a body costs on a channel, once it is checked to fit.
pub fn check_body(channel: Channel, body: &Body) -> Result<i32, MessagingError> {
    let unsupported = || {
        MessagingError::invalid(
            Code::UnsupportedBody,
            format!("a {} channel cannot carry a {} body", channel.as_str(), body.kind()),
        )
    };
    let too_long = |detail: String| MessagingError::invalid(Code::MessageTooLong, detail);
    let text_at_most = |text: &str, max: usize| {
        let length = text.chars().count();
        if length == 0 {
            return Err(MessagingError::invalid(Code::InvalidBody, "the text is empty"));
        }
        if length > max {
            return Err(too_long(format!(
                "{length} characters; a {} message takes {max}",
                channel.as_str()
            )));
        }
        Ok(1)
    };
    match (channel, body) {
        (Channel::Sms, Body::Text { text } | Body::Url { url: text }) => {
            if text.is_empty() {
                return Err(MessagingError::invalid(Code::InvalidBody, "the text is empty"));
            }
            let segments = hazina_providers::sms::segments(text);
            if segments.count > SMS_SEGMENTS_MAX {
                return Err(too_long(format!(
                    "{} SMS segments ({:?}); a message takes at most {SMS_SEGMENTS_MAX}",
                    segments.count, segments.encoding
                )));
            }
            Ok(i32::try_from(segments.count).unwrap_or(i32::MAX))
        }
        (Channel::WhatsApp | Channel::Telegram, Body::Text { text } | Body::Url { url: text }) => {
            text_at_most(text, CHAT_TEXT_MAX)
        }
        (Channel::Messenger, Body::Text { text } | Body::Url { url: text }) => {
            text_at_most(text, MESSENGER_TEXT_MAX)
        }
        (Channel::WhatsApp, Body::Template(_))
        | (Channel::WhatsApp | Channel::Telegram | Channel::Messenger, Body::Media(_))
        | (Channel::WhatsApp | Channel::Telegram, Body::Location(_))
        | (Channel::Email, Body::Email(_)) => Ok(1),
        (Channel::Voice, Body::Voice { actions }) => {
            if actions.is_empty() {
                return Err(MessagingError::invalid(Code::InvalidBody, "a call needs actions"));
            }
            Ok(1)
        }
        _ => Err(unsupported()),
    }
}

/// Whether a free-form message on the channel needs the customer's 24-hour window open.
fn needs_window(channel: Channel, body: &Body) -> bool {
    matches!(channel, Channel::WhatsApp | Channel::Messenger) && !matches!(body, Body::Template(_))
}

/// Refuses a provider tag on a channel that takes none: only Messenger has message tags.
fn check_provider_tag(channel: Channel, tag: Option<MessageTag>) -> Result<(), MessagingError> {
    match tag {
        Some(tag) if channel != Channel::Messenger => Err(MessagingError::invalid(
            Code::UnsupportedBody,
            format!(
                "providerTag {} is a Messenger message tag: a {} channel takes none",
                tag.as_str(),
                channel.as_str()
            ),
        )),
        _ => Ok(()),
    }
}

/// Refuses a message that needs the customer's window when it is shut: a free-form one
/// without a tag needs the 24-hour window; a tagged one goes outside it, but a person's answer
/// or a survey only within 7 days of the customer's last message.
fn check_window(
    channel: Channel,
    body: &Body,
    tag: Option<MessageTag>,
    contact: &Contact,
) -> Result<(), MessagingError> {
    if !needs_window(channel, body) {
        return Ok(());
    }
    let now = Utc::now();
    let wrote_within = |max| contact.last_inbound_at.is_some_and(|at| now - at < max);
    match tag.map(|tag| (tag, tag.since_last_message_max())) {
        None if !contact.window_open(now) => Err(MessagingError::invalid(
            Code::NoSessionInProgress,
            "the customer has not written in the last 24 hours: send a template (WhatsApp) or \
             a message tag (Messenger, providerTag)",
        )),
        Some((tag, Some(max))) if !wrote_within(max) => Err(MessagingError::invalid(
            Code::NoSessionInProgress,
            format!(
                "{} goes only within {} days of the customer's last message",
                tag.as_str(),
                max.num_days()
            ),
        )),
        _ => Ok(()),
    }
}

impl Service {
    /// Checks and queues a message; its cost reserved first. `no_consent`,
    /// `no_session_in_progress` and `insufficient_credits` refuse it with nothing recorded, not
    /// even the customer a new number would have made.
    pub async fn send(&self, new: NewMessage) -> Result<MessageView, MessagingError> {
        // A payment's context names the message that led to it; a message's would name
        // nothing the message keeps, so it is refused rather than dropped in silence.
        if new.context.as_ref().is_some_and(|context| context.message_id.is_some()) {
            return Err(MessagingError::invalid(
                Code::InvalidBody,
                "a message's context cannot name a message: answer one with replyTo",
            ));
        }
        let channel = self.channel(new.org, new.channel).await?;
        let units = check_body(channel.channel, &new.body)?;
        check_provider_tag(channel.channel, new.provider_tag)?;
        // A new number's customer made meanwhile by another request (a message from them, a
        // send to them) is found on the next try, and the message checked against them.
        for _ in 0..3 {
            if let Some(id) = self.try_send(&new, &channel, units).await? {
                self.wake.notify_one();
                return self.message(new.org, id).await;
            }
        }
        Err(CustomerError::Conflicting.into())
    }

    /// One try of [`Service::send`]: the message's id once queued, or `None` when the new
    /// number it was checked for turned out to be a customer's by then (nothing was changed).
    async fn try_send(
        &self,
        new: &NewMessage,
        channel: &ChannelRecord,
        units: i32,
    ) -> Result<Option<Uuid>, MessagingError> {
        let org = channel.org;
        let to = self.recipient(channel, &new.to).await?;
        let customer = to.customer;
        // A customer yet to be made has given no consent, opened no window, and has no
        // messages or payments: nothing to read.
        let known = to.new.is_none();
        let contact = if known {
            store::contact(&self.pool, org, customer, channel.id).await?
        } else {
            Contact::default()
        };
        if !contact.allows(channel.consent_required) {
            return Err(MessagingError::invalid(
                Code::NoConsent,
                "the customer has not allowed messages on this channel",
            ));
        }
        check_window(channel.channel, &new.body, new.provider_tag, &contact)?;
        if let Some(reply_to) = new.reply_to
            && !(known && store::message_exists(&self.pool, org, reply_to, customer).await?)
        {
            return Err(MessagingError::invalid(
                Code::NotFound,
                "replyTo names no message of this customer",
            ));
        }
        if let Some(payment) = new.payment_id
            && !(known && customer_payment_exists(&self.pool, org, payment, customer).await?)
        {
            return Err(MessagingError::invalid(
                Code::NotFound,
                "paymentId names no payment of this customer",
            ));
        }
        let id = Uuid::now_v7();
        let hazina = match &new.context {
            Some(context) => Some(
                context_effects(&self.pool, org, new.app, context, &[customer])
                    .await?
                    .into_hazina([customer]),
            ),
            None => None,
        };
        let cost = Self::cost(channel, units)?;
        // A new number's customer is made first, in the transaction that will record the
        // message, and held by it: another request making the same number waits for this one
        // to commit (and then finds the customer) or to roll back, as it does when the
        // message is refused. Nothing else waits on it: the ledger's reservation does not
        // read customers.
        let mut early = None;
        let mut made = None;
        if let Some(number) = &to.new {
            let tx = early.insert(self.pool.get().await?).transaction().await?;
            if !make_customer(&tx, org, customer, number).await? {
                return Ok(None);
            }
            made = Some(tx);
        }
        if cost.is_positive() {
            self.reserve(channel, id, customer, cost, hazina.clone()).await?.map_err(refused)?;
        }
        let mut late = None;
        let tx = match made {
            Some(tx) => tx,
            None => late.insert(self.pool.get().await?).transaction().await?,
        };
        // A free message has no reservation to carry its context: it is applied here, with
        // the message, so that all of it happens if the message is queued and none otherwise.
        if let Some(hazina) = hazina.as_ref().filter(|_| !cost.is_positive()) {
            apply_context(&tx, org, hazina).await?;
        }
        if let Some(number) = &to.new {
            let created = CustomerData {
                customer_id: customer.0,
                provider: Some(number.provider.as_str().to_owned()),
                number: Some(number.number.clone()),
            };
            let event =
                NewEvent::of(EventType::CustomerCreated, &created).customer(Some(customer.0));
            events::record(&tx, org, &[event]).await?;
        }
        let queued = Queued {
            id,
            app: new.app,
            customer: customer.0,
            number: to.number,
            body: serde_json::to_value(&new.body).unwrap_or_default(),
            units,
            cost_reserved: cost,
            reply_to: new.reply_to,
            job: None,
            payment: new.payment_id,
            context: new.context.as_ref().map(|_| serde_json::json!({"applied": true})),
            provider_tag: new.provider_tag.map(MessageTag::as_str),
        };
        store::insert_queued(&tx, channel, &[queued]).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// The customer a recipient names, and their address on the channel; for a number no
    /// customer holds, the customer to make.
    async fn recipient(
        &self,
        channel: &ChannelRecord,
        to: &Recipient,
    ) -> Result<To, MessagingError> {
        let provider = number_provider(channel.channel);
        match to {
            Recipient::Customer(id) => {
                let customer = customers::check(&self.pool, channel.org, *id).await?;
                let number = store::number_of(&self.pool, channel.org, customer, provider.as_str())
                    .await?
                    .ok_or_else(|| {
                        MessagingError::invalid(
                            Code::InvalidCustomerNumber,
                            format!("the customer has no {} number", provider.as_str()),
                        )
                    })?;
                Ok(To { customer, number, new: None })
            }
            Recipient::Number(number) => {
                if channel.channel == Channel::Email && !customers::is_email(number.trim()) {
                    return Err(MessagingError::invalid(
                        Code::InvalidCustomerNumber,
                        "not a valid email address",
                    ));
                }
                let number = CustomerNumber { number: number.clone(), provider, partition: None }
                    .normalised()?;
                let existing =
                    customers::existing_by_number(&self.pool, channel.org, &number).await?;
                Ok(match existing {
                    Some(customer) => To { customer, number: number.number, new: None },
                    None => To {
                        customer: CustomerId::generate(),
                        number: number.number.clone(),
                        new: Some(number),
                    },
                })
            }
        }
    }

    /// What `units` cost on the channel.
    fn cost(channel: &ChannelRecord, units: i32) -> Result<Money, MessagingError> {
        let amount = channel.unit_price.amount() * rust_decimal::Decimal::from(units);
        Money::new(channel.currency(), amount)
            .map_err(|error| MessagingError::invalid(Code::InvalidAmount, error.to_string()))
    }

    /// Reserves a message's cost: a pending transfer under the message's id from the purse to
    /// the clearing account, timing out a little after the message's time to live (so a
    /// reservation whose message was never recorded, after a crash, is released by the
    /// ledger's sweeper). `Err(reason)` when the ledger refused it.
    pub(super) async fn reserve(
        &self,
        channel: &ChannelRecord,
        id: Uuid,
        customer: CustomerId,
        cost: Money,
        hazina: Option<serde_json::Value>,
    ) -> Result<Result<(), RejectReason>, MessagingError> {
        let Some(purse) = channel.purse else {
            return Err(MessagingError::Corrupt("a priced channel without a purse".to_owned()));
        };
        let ttl = self.settings().time_to_live + std::time::Duration::from_secs(3600);
        let mut context = serde_json::Map::new();
        context
            .insert("message".to_owned(), serde_json::json!({ "id": id, "channelId": channel.id }));
        context.insert(
            context::HAZINA.to_owned(),
            hazina.unwrap_or_else(|| context::Effects::default().into_hazina([customer])),
        );
        let request = TransferRequest {
            id: TransferId(id),
            id_is_new: true,
            org: channel.org,
            action: Action::Pending {
                postings: vec![
                    Posting { account: purse, side: Side::Debit, amount: cost },
                    Posting { account: channel.clearing, side: Side::Credit, amount: cost },
                ],
                timeout_ms: Some(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
            },
            code: "message_cost".to_owned(),
            effective_at: None,
            context: Arc::new(context),
        };
        Ok(match self.pipeline.submit(request).await? {
            Outcome::Accepted { .. } => Ok(()),
            Outcome::Rejected(reason) => Err(reason),
        })
    }

    /// One of the org's messages, with its history.
    pub async fn message(&self, org: OrgId, id: Uuid) -> Result<MessageView, MessagingError> {
        store::message(&self.pool, org, id).await?.ok_or(MessagingError::NotFound("message"))
    }

    /// Starts a send-by-tag job: the messages are queued in the background, a chunk of
    /// customers at a time, each checked and charged as a single message is.
    pub async fn start_job(&self, new: NewJob) -> Result<Job, MessagingError> {
        let channel = self.channel(new.org, new.channel).await?;
        check_body(channel.channel, &new.body)?;
        if needs_window(channel.channel, &new.body) {
            return Err(MessagingError::invalid(
                Code::NoSessionInProgress,
                "a message by tag goes outside customers' windows: send a template",
            ));
        }
        customers::check_key(&new.tag_key)?;
        let id = Uuid::now_v7();
        let body = serde_json::to_value(&new.body).unwrap_or_default();
        store::insert_job(
            &self.pool,
            new.org,
            id,
            new.app,
            channel.id,
            &new.tag_key,
            new.tag_value.as_deref(),
            &body,
        )
        .await?;
        self.wake.notify_one();
        self.job(new.org, id).await
    }

    /// A job with its counts.
    pub async fn job(&self, org: OrgId, id: Uuid) -> Result<Job, MessagingError> {
        store::job(&self.pool, org, id).await?.ok_or(MessagingError::NotFound("job"))
    }

    /// Queues the next chunk of every running job; how many messages were queued, and whether
    /// any job has more customers to queue.
    pub async fn step_jobs(&self) -> Result<(usize, bool), MessagingError> {
        let jobs = store::running_jobs(&self.pool).await?;
        let (mut queued, mut more) = (0, false);
        for job in jobs {
            let (count, left) = self.step_job(&job).await?;
            queued += count;
            more |= left;
        }
        Ok((queued, more))
    }

    /// Queues the next chunk of customers of one job; how many messages, and whether it has
    /// more.
    async fn step_job(&self, job: &store::RunningJob) -> Result<(usize, bool), MessagingError> {
        let channel = self.channel(job.org, job.channel).await?;
        let body: Body = serde_json::from_value(job.body.clone())
            .map_err(|error| MessagingError::Corrupt(format!("job body: {error}")))?;
        let units = check_body(channel.channel, &body)?;
        let cost = Self::cost(&channel, units)?;
        let chunk =
            store::job_chunk(&self.pool, job, &channel, number_provider(channel.channel).as_str())
                .await?;
        let last = chunk.last_customer;
        let mut queued = Vec::with_capacity(chunk.recipients.len());
        let mut refused = chunk.skipped;
        let ids: Vec<Uuid> = chunk.recipients.iter().map(|_| Uuid::now_v7()).collect();
        if cost.is_positive() {
            let reservations = chunk.recipients.iter().zip(&ids).map(|((customer, _), id)| {
                self.reserve(&channel, *id, CustomerId(*customer), cost, None)
            });
            let outcomes = futures_util::future::join_all(reservations).await;
            for (((customer, number), id), outcome) in
                chunk.recipients.into_iter().zip(ids).zip(outcomes)
            {
                match outcome? {
                    Ok(()) => queued.push((customer, number, id)),
                    Err(_) => refused += 1,
                }
            }
        } else {
            queued = chunk.recipients.into_iter().zip(ids).map(|((c, n), id)| (c, n, id)).collect();
        }
        let rows: Vec<Queued> = queued
            .into_iter()
            .map(|(customer, number, id)| Queued {
                id,
                app: job.app,
                customer,
                number,
                body: job.body.clone(),
                units,
                cost_reserved: cost,
                reply_to: None,
                job: Some(job.id),
                payment: None,
                context: None,
                provider_tag: None,
            })
            .collect();
        let done = chunk.done;
        store::queue_job_chunk(&self.pool, &channel, job, &rows, refused, last, done).await?;
        if !rows.is_empty() {
            self.wake.notify_one();
        }
        Ok((rows.len(), !done))
    }
}

/// Makes the customer `id` holding `number`, in the caller's transaction (its
/// `customer.created` event is the caller's to record); `false` when another customer holds
/// the number by now, for the caller to roll back. A customer made by a transaction still open
/// is waited for.
async fn make_customer(
    tx: &impl deadpool_postgres::GenericClient,
    org: OrgId,
    id: CustomerId,
    number: &CustomerNumber,
) -> Result<bool, MessagingError> {
    let partition = number.partition.clone().unwrap_or_default();
    tx.execute("INSERT INTO customers (id, org_id) VALUES ($1, $2)", &[&id.0, &org.0]).await?;
    let inserted = tx
        .execute(
            "INSERT INTO customer_numbers (org_id, provider, number, partition, customer_id)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (org_id, provider, number, partition) DO NOTHING",
            &[&org.0, &number.provider.as_str(), &number.number, &partition, &id.0],
        )
        .await?;
    Ok(inserted == 1)
}

/// Applies a free message's context (the `hazina` object `context_effects` made, as a
/// reservation would carry it) in the caller's transaction, as the ledger's store applies a
/// transfer's (`hazina_ledger::store` `effects.rs`): the activity recorded (linked to no
/// transfer: there is none), metadata keys and the app's data set, ending any lease.
async fn apply_context(
    tx: &impl deadpool_postgres::GenericClient,
    org: OrgId,
    hazina: &serde_json::Value,
) -> Result<(), MessagingError> {
    if let Some(activity) = hazina.get(context::ACTIVITY) {
        tx.execute(
            "INSERT INTO activities
                 (id, org_id, customer_id, app_id, source, session_id, key, properties, at)
             SELECT (a->>'id')::uuid, $1, (a->>'customer_id')::uuid, (a->>'app_id')::uuid,
                 a->>'source', a->>'session_id', a->>'key',
                 coalesce(a->'properties', '{}'::jsonb), clock_timestamp()
             FROM (SELECT $2::jsonb AS a) AS given
             ON CONFLICT DO NOTHING",
            &[&org.0, &Json(activity)],
        )
        .await?;
    }
    if let Some(metadata) = hazina.get(context::METADATA) {
        tx.execute(
            "INSERT INTO customer_metadata (org_id, customer_id, key, value, is_text, updated_at)
             SELECT $1, (m->>'customer_id')::uuid, s.key, decode(s.value->>'value', 'base64'),
                 (s.value->>'is_text')::boolean, now()
             FROM (SELECT $2::jsonb AS m) AS given,
                 jsonb_each(coalesce(m->'set', '{}'::jsonb)) AS s
             ON CONFLICT (org_id, customer_id, key) DO UPDATE
                 SET value = EXCLUDED.value, is_text = EXCLUDED.is_text,
                     updated_at = EXCLUDED.updated_at",
            &[&org.0, &Json(metadata)],
        )
        .await?;
    }
    if let Some(data) = hazina.get(context::APP_DATA) {
        tx.execute(
            "INSERT INTO app_data
                 (org_id, customer_id, app_id, value, is_text, leased_until, updated_at)
             SELECT $1, (d->>'customer_id')::uuid, (d->>'app_id')::uuid,
                 decode(d->>'value', 'base64'), (d->>'is_text')::boolean, NULL, now()
             FROM (SELECT $2::jsonb AS d) AS given
             ON CONFLICT (org_id, customer_id, app_id) DO UPDATE
                 SET value = EXCLUDED.value, is_text = EXCLUDED.is_text, leased_until = NULL,
                     updated_at = EXCLUDED.updated_at",
            &[&org.0, &Json(data)],
        )
        .await?;
    }
    Ok(())
}

/// Whether `payment` is one of the customer's payments in the org: a transfer their timeline
/// shows (one that names them as a wallet's owner or in its context, `customer_transfers`, or
/// a payment through a provider made with them), not a message's own cost (a transfer under
/// the message's id).
async fn customer_payment_exists(
    pool: &deadpool_postgres::Pool,
    org: OrgId,
    payment: Uuid,
    customer: CustomerId,
) -> Result<bool, MessagingError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT (EXISTS (SELECT 1 FROM customer_transfers
                             WHERE org_id = $1 AND customer_id = $3 AND transfer_id = $2)
                     OR EXISTS (SELECT 1 FROM provider_payments
                                WHERE org_id = $1 AND id = $2 AND customer_id = $3))
                 AND NOT EXISTS (SELECT 1 FROM messages WHERE org_id = $1 AND id = $2)",
            &[&org.0, &payment, &customer.0],
        )
        .await?;
    Ok(row.get(0))
}

/// A reservation the ledger refused, in the API's words.
fn refused(reason: RejectReason) -> MessagingError {
    match reason {
        RejectReason::ExceedsCredits => MessagingError::invalid(
            Code::InsufficientCredits,
            "the channel's purse cannot pay for this message; nothing was sent",
        ),
        other => MessagingError::invalid(
            Code::LedgerRefused,
            format!("the ledger refused the message's cost: {}", other.code()),
        ),
    }
}

/// The platform's name and code of a stored status.
pub(super) fn status_of(name: &str) -> Result<DeliveryStatus, MessagingError> {
    DeliveryStatus::from_name(name)
        .ok_or_else(|| MessagingError::Corrupt(format!("status {name:?}")))
}
