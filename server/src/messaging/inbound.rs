//! What comes back from providers: status reports for our messages, messages customers send,
//! session steps (USSD, voice) the provider waits on an answer to, and consent.

use hazina_ledger::CustomerId;
use hazina_providers::messaging::{
    Body, Channel, DeliveryStatus, Inbound, InboundPart, Say, StatusUpdate, UssdSessionStatus,
    VoiceAction,
};
use uuid::Uuid;

use super::channels::{ChannelRecord, number_provider};
use super::replies::ReplySource;
use super::{MessagingError, Service};
use crate::customers::{self, CustomerNumber};
use crate::events::types::{ConsentData, ReceivedMessageData, SessionData};
use crate::events::{self, EventType, NewEvent};

/// Words that, alone in a message, opt the customer out or back in.
const STOP_WORDS: &[&str] = &["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"];
const START_WORDS: &[&str] = &["START", "UNSTOP", "SUBSCRIBE", "OPTIN", "YES"];

/// A received message as recorded.
#[derive(Clone, Debug)]
pub struct Received {
    pub message_id: Uuid,
    pub customer_id: Uuid,
    /// Whether this is the first time we heard of it (a provider's repeat is not).
    pub new: bool,
    /// The recorded `message.received` event, for asking the app.
    pub event_id: Option<Uuid>,
}

/// What to answer a session step with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionReply {
    /// The app's reply, or the channel's fallback.
    pub body: Body,
    /// Whether the app failed to answer in time (the fallback was used).
    pub app_error: bool,
}

/// What a keyword message says about consent, if anything.
fn keyword_consent(parts: &[InboundPart]) -> Option<bool> {
    let [InboundPart::Text { text }] = parts else { return None };
    let word = text.trim().trim_end_matches(['.', '!']).to_uppercase();
    if STOP_WORDS.contains(&word.as_str()) {
        Some(false)
    } else if START_WORDS.contains(&word.as_str()) {
        Some(true)
    } else {
        None
    }
}

impl Service {
    /// Applies status reports to our messages on `channel`: each moves its message only to a
    /// status of higher rank (a duplicate or a late `sent` changes nothing); a report for a
    /// provider id not yet recorded is parked until it is. How many messages changed. Reports
    /// that arrive together are applied in one transaction (`reports.rs`).
    pub async fn apply_statuses(
        &self,
        channel: &ChannelRecord,
        updates: &[StatusUpdate],
    ) -> Result<usize, MessagingError> {
        self.reports.apply(&self.pool, channel, updates).await
    }

    /// Applies the parked reports for provider ids just recorded, in the order of their
    /// meaning, and forgets them.
    pub(super) async fn apply_parked(
        &self,
        channel: &ChannelRecord,
        provider_ids: &[String],
    ) -> Result<(), MessagingError> {
        let updates = super::store::take_parked(&self.pool, channel, provider_ids).await?;
        if updates.is_empty() {
            return Ok(());
        }
        self.apply_statuses(channel, &updates).await?;
        Ok(())
    }

    /// Records a message a customer sent (or a session's step): the customer made on first
    /// contact, their window opened, STOP/START keywords applied to consent, and a
    /// `message.received` event. A provider's repeat (the same provider id) is recorded once.
    #[allow(clippy::too_many_lines)] // One transaction's statements, in order.
    pub async fn receive(
        &self,
        channel: &ChannelRecord,
        inbound: &Inbound,
    ) -> Result<Received, MessagingError> {
        let number = CustomerNumber {
            number: inbound.customer.clone(),
            provider: number_provider(channel.channel),
            partition: None,
        }
        .normalised()?;
        let (customer, _) = customers::store::by_number(&self.pool, channel.org, &number).await?;
        let id = Uuid::now_v7();
        let parts = serde_json::to_value(&inbound.parts).unwrap_or_default();
        let in_reply_to = match &inbound.in_reply_to {
            Some(provider_id) => self.message_by_provider_id(channel, provider_id).await?,
            None => None,
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let status = DeliveryStatus::Received;
        let inserted = tx
            .query_opt(
                "INSERT INTO messages (org_id, id, channel_id, customer_id, direction,
                     customer_number, body, stage, status, status_rank, provider_message_id,
                     session_id, reply_to, cost_minor)
                 VALUES ($1, $2, $3, $4, 'inbound', $5, $6, 'done', $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (org_id, channel_id, direction, provider_message_id)
                     WHERE provider_message_id IS NOT NULL DO NOTHING
                 RETURNING id",
                &[
                    &channel.org.0,
                    &id,
                    &channel.id,
                    &customer.0,
                    &number.number,
                    &parts,
                    &status.as_str(),
                    &i16::from(status.rank()),
                    &inbound.provider_message_id,
                    &inbound.session_id,
                    &in_reply_to,
                    &inbound.cost.as_ref().and_then(|c| c.to_minor().ok()),
                ],
            )
            .await?;
        if inserted.is_none() {
            let existing = tx
                .query_one(
                    "SELECT id FROM messages WHERE org_id = $1 AND channel_id = $2
                         AND direction = 'inbound' AND provider_message_id = $3",
                    &[&channel.org.0, &channel.id, &inbound.provider_message_id],
                )
                .await?;
            return Ok(Received {
                message_id: existing.get(0),
                customer_id: customer.0,
                new: false,
                event_id: None,
            });
        }
        tx.execute(
            "INSERT INTO message_statuses (org_id, message_id, seq, status) VALUES ($1, $2, 1, $3)",
            &[&channel.org.0, &id, &status.as_str()],
        )
        .await?;
        let consent = keyword_consent(&inbound.parts);
        tx.execute(
            "INSERT INTO messaging_contacts (org_id, customer_id, channel_id, consent,
                 consent_source, consent_updated_at, last_inbound_at)
             VALUES ($1, $2, $3, $4, CASE WHEN $4::text IS NULL THEN NULL ELSE 'keyword' END,
                 CASE WHEN $4::text IS NULL THEN NULL ELSE now() END, now())
             ON CONFLICT (org_id, customer_id, channel_id) DO UPDATE SET
                 last_inbound_at = now(),
                 consent = coalesce(EXCLUDED.consent, messaging_contacts.consent),
                 consent_source = coalesce(EXCLUDED.consent_source, messaging_contacts.consent_source),
                 consent_updated_at = coalesce(EXCLUDED.consent_updated_at,
                     messaging_contacts.consent_updated_at)",
            &[&channel.org.0, &customer.0, &channel.id, &consent.map(consent_name)],
        )
        .await?;
        let mut new_events = vec![
            NewEvent::of(
                EventType::MessageReceived,
                &ReceivedMessageData {
                    message_id: id,
                    channel_id: channel.id,
                    channel: channel.channel.as_str().to_owned(),
                    channel_number: channel.number.clone(),
                    customer_id: customer.0,
                    customer_number: number.number.clone(),
                    parts,
                    session_id: inbound.session_id.clone(),
                    in_reply_to,
                },
            )
            .customer(Some(customer.0)),
        ];
        if let Some(allowed) = consent {
            new_events.push(consent_event(channel, customer, allowed, "keyword"));
        }
        let ids = events::record(&tx, channel.org, &new_events).await?;
        tx.commit().await?;
        Ok(Received {
            message_id: id,
            customer_id: customer.0,
            new: true,
            event_id: ids.first().copied(),
        })
    }

    /// Our outbound message with this provider id on the channel.
    async fn message_by_provider_id(
        &self,
        channel: &ChannelRecord,
        provider_id: &str,
    ) -> Result<Option<Uuid>, MessagingError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT id FROM messages WHERE org_id = $1 AND channel_id = $2
                     AND direction = 'outbound' AND provider_message_id = $3",
                &[&channel.org.0, &channel.id, &provider_id],
            )
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Sets a customer's consent on a channel (the API, or a provider's opt-out notice).
    pub async fn set_consent(
        &self,
        channel: &ChannelRecord,
        customer: CustomerId,
        allowed: bool,
        source: &str,
    ) -> Result<(), MessagingError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO messaging_contacts (org_id, customer_id, channel_id, consent,
                 consent_source, consent_updated_at)
             VALUES ($1, $2, $3, $4, $5, now())
             ON CONFLICT (org_id, customer_id, channel_id) DO UPDATE SET
                 consent = EXCLUDED.consent, consent_source = EXCLUDED.consent_source,
                 consent_updated_at = EXCLUDED.consent_updated_at",
            &[&channel.org.0, &customer.0, &channel.id, &consent_name(allowed), &source],
        )
        .await?;
        events::record(&tx, channel.org, &[consent_event(channel, customer, allowed, source)])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A session step the provider waits on (USSD, a voice call): recorded as a received
    /// message and answered with the app's reply (a body of the channel's kind, from its
    /// webhook's response or the stream's reply endpoint: `replies.rs`) within the deadline,
    /// or with the channel's fallback and the session marked `app_error`.
    pub async fn session_step(
        &self,
        channel: &ChannelRecord,
        inbound: &Inbound,
    ) -> Result<SessionReply, MessagingError> {
        let received = self.receive(channel, inbound).await?;
        let session = inbound.session_id.clone().unwrap_or_default();
        self.session_status(channel, &session, received.customer_id, "active", None).await?;
        let settings = self.settings();
        let event = match received.event_id {
            Some(id) => {
                events::by_id(&self.pool, &self.store, channel.org, id).await.ok().flatten()
            }
            None => None,
        };
        let fallback = match channel.channel {
            Channel::Voice => Body::Voice {
                actions: vec![VoiceAction::Say(Say {
                    text: channel.fallback_text.clone(),
                    voice: None,
                    play_beep: false,
                })],
            },
            _ => Body::Ussd { text: channel.fallback_text.clone(), is_terminal: true },
        };
        let (body, source, unfit) = match event {
            Some(event) => {
                let (reply, unfit) =
                    self.await_reply(channel, &event, settings.reply_deadline, fallback).await?;
                (reply.body, reply.source, unfit)
            }
            // A provider's repeat of a step already told: nobody is asked twice.
            None => (fallback, ReplySource::Fallback, false),
        };
        let customer = received.customer_id;
        if source == ReplySource::Fallback {
            let why = if unfit {
                "the app's answer is not a reply for the channel"
            } else {
                "the app did not answer in time"
            };
            self.session_status(channel, &session, customer, "app_error", Some(why)).await?;
            return Ok(SessionReply { body, app_error: true });
        }
        if let Body::Ussd { is_terminal: true, .. } = body {
            self.session_status(channel, &session, customer, "completed", None).await?;
        }
        Ok(SessionReply { body, app_error: false })
    }

    /// Records a session's status (`active`, or how it ended); an event when it starts and
    /// when its status changes.
    pub async fn session_status(
        &self,
        channel: &ChannelRecord,
        session: &str,
        customer: Uuid,
        name: &str,
        reason: Option<&str>,
    ) -> Result<(), MessagingError> {
        let name = name.to_owned();
        let ended = name != "active";
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let before: Option<String> = tx
            .query_opt(
                "SELECT status FROM messaging_sessions
                 WHERE org_id = $1 AND channel_id = $2 AND provider_session_id = $3 FOR UPDATE",
                &[&channel.org.0, &channel.id, &session],
            )
            .await?
            .map(|row| row.get(0));
        let after: String = tx
            .query_one(
                "INSERT INTO messaging_sessions (org_id, channel_id, provider_session_id,
                     customer_id, status, steps, ended_at)
                 VALUES ($1, $2, $3, $4, $5, 1, CASE WHEN $6 THEN now() END)
                 ON CONFLICT (org_id, channel_id, provider_session_id) DO UPDATE SET
                     status = CASE WHEN messaging_sessions.ended_at IS NULL
                         OR messaging_sessions.status = 'active' THEN EXCLUDED.status
                         ELSE messaging_sessions.status END,
                     steps = messaging_sessions.steps + CASE WHEN $6 THEN 0 ELSE 1 END,
                     ended_at = coalesce(messaging_sessions.ended_at, EXCLUDED.ended_at),
                     updated_at = now()
                 RETURNING status",
                &[&channel.org.0, &channel.id, &session, &customer, &name, &ended],
            )
            .await?
            .get(0);
        // Told when it starts and when its status changes: the provider's end of a session we
        // ended already (our terminal screen) tells nothing new.
        let tells = before.as_deref() != Some(after.as_str());
        if tells {
            let data = SessionData {
                channel_id: channel.id,
                channel: channel.channel.as_str().to_owned(),
                session_id: session.to_owned(),
                customer_id: customer,
                status: after,
                reason: reason.map(str::to_owned),
            };
            let event =
                NewEvent::of(EventType::MessagingSessionChanged, &data).customer(Some(customer));
            events::record(&tx, channel.org, &[event]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A voice call's step: while the call is live, the app's next actions (asked as a USSD
    /// step is, the fallback read out when it does not answer) as Africa's Talking's XML; at
    /// its end, the call's status recorded (and an outbound call's message delivered or
    /// failed) and its cost charged. The XML, empty at the end.
    pub async fn voice_step(
        &self,
        channel: &ChannelRecord,
        step: &hazina_providers::africastalking::voice::VoiceCallback,
    ) -> Result<String, MessagingError> {
        use hazina_providers::africastalking::voice::render;
        use hazina_providers::messaging::VoiceCallStatus;
        let inbound = step.inbound();
        if step.is_active() {
            let reply = self.session_step(channel, &inbound).await?;
            let actions = match reply.body {
                Body::Voice { actions } => actions,
                _ => Vec::new(),
            };
            return render(&actions, None).map_err(|error| {
                MessagingError::Corrupt(format!("voice actions that render no XML: {error}"))
            });
        }
        let received = self.receive(channel, &inbound).await?;
        let status = step.call_status();
        self.session_status(
            channel,
            &step.session_id,
            received.customer_id,
            &call_status_name(status),
            step.hangup_cause.as_deref(),
        )
        .await?;
        if !step.is_inbound() {
            let delivered = status == VoiceCallStatus::Completed;
            let update = StatusUpdate {
                provider_message_id: step.session_id.clone(),
                status: if delivered { DeliveryStatus::Delivered } else { DeliveryStatus::Failed },
                reason: step.hangup_cause.clone(),
                cost: None,
                at: None,
            };
            self.apply_statuses(channel, &[update]).await?;
        }
        if let Some(cost) = &inbound.cost {
            self.charge_call(channel, &step.session_id, CustomerId(received.customer_id), cost)
                .await?;
        }
        Ok(String::new())
    }

    /// Charges what a call cost beyond what its message's reservation posted: a transfer from
    /// the channel's purse to its clearing account, under an id derived from the call's (a
    /// repeated end-of-call callback charges once). A purse that cannot pay is logged: the
    /// call has happened.
    async fn charge_call(
        &self,
        channel: &ChannelRecord,
        session: &str,
        customer: CustomerId,
        cost: &hazina_ledger::Money,
    ) -> Result<(), MessagingError> {
        use hazina_ledger::rules::{Action, Outcome, Posting, Side, TransferRequest};
        let Some(purse) = channel.purse else { return Ok(()) };
        if cost.currency() != channel.currency() {
            tracing::warn!(channel = %channel.id, "a call's cost is in another currency; not charged");
            return Ok(());
        }
        let client = self.pool.get().await?;
        let posted: Option<i64> = client
            .query_opt(
                "SELECT cost_minor FROM messages WHERE org_id = $1 AND channel_id = $2
                     AND direction = 'outbound' AND provider_message_id = $3",
                &[&channel.org.0, &channel.id, &session],
            )
            .await?
            .and_then(|row| row.get(0));
        drop(client);
        let due = cost.to_minor().unwrap_or(0) - posted.unwrap_or(0);
        if due <= 0 {
            return Ok(());
        }
        let amount = hazina_ledger::Money::from_minor(channel.currency(), due);
        let mut context = serde_json::Map::new();
        context.insert(
            "call".to_owned(),
            serde_json::json!({ "sessionId": session, "channelId": channel.id }),
        );
        context.insert(
            hazina_ledger::context::HAZINA.to_owned(),
            hazina_ledger::context::Effects::default().into_hazina([customer]),
        );
        let namespace = Uuid::from_u128(0x6361_6c6c_5f63_6f73_7400_0000_0000_0001);
        let request = TransferRequest {
            id: hazina_ledger::TransferId(Uuid::new_v5(
                &namespace,
                format!("{}/{session}", channel.id).as_bytes(),
            )),
            id_is_new: false,
            org: channel.org,
            action: Action::Post {
                postings: vec![
                    Posting { account: purse, side: Side::Debit, amount },
                    Posting { account: channel.clearing, side: Side::Credit, amount },
                ],
            },
            code: "call_cost".to_owned(),
            effective_at: None,
            context: std::sync::Arc::new(context),
        };
        if let Outcome::Rejected(reason) = self.pipeline.submit(request).await? {
            tracing::warn!(channel = %channel.id, session, reason = reason.code(), "a call's cost could not be charged");
        }
        Ok(())
    }

    /// The customer with an address on the channel, made when new.
    pub async fn customer_of(
        &self,
        channel: &ChannelRecord,
        address: &str,
    ) -> Result<CustomerId, MessagingError> {
        let number = CustomerNumber {
            number: address.to_owned(),
            provider: number_provider(channel.channel),
            partition: None,
        }
        .normalised()?;
        Ok(customers::store::by_number(&self.pool, channel.org, &number).await?.0)
    }

    /// A Messenger watermark: every message to the customer recorded up to `up_to` is
    /// delivered (or read), unless it is further along already. The watermark is kept, so that
    /// a message whose send is still waiting for its answer (no provider id yet) takes it when
    /// the answer is recorded (`store::apply_watermark`). How many messages it moved now.
    pub async fn apply_watermark(
        &self,
        channel: &ChannelRecord,
        customer_address: &str,
        status: DeliveryStatus,
        up_to: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, MessagingError> {
        let number = CustomerNumber {
            number: customer_address.to_owned(),
            provider: number_provider(channel.channel),
            partition: None,
        }
        .normalised()?;
        // Not made when unknown: a watermark is no contact, and names no message of ours.
        let customer =
            customers::store::existing_by_number(&self.pool, channel.org, &number).await?;
        super::store::apply_watermark(&self.pool, channel, customer, &number.number, status, up_to)
            .await
    }

    /// The last status of a session, for the provider's end-of-session notice.
    pub async fn end_session(
        &self,
        channel: &ChannelRecord,
        session: &str,
        customer_number: &str,
        status: UssdSessionStatus,
    ) -> Result<(), MessagingError> {
        let number = CustomerNumber {
            number: customer_number.to_owned(),
            provider: number_provider(channel.channel),
            partition: None,
        }
        .normalised()?;
        let (customer, _) = customers::store::by_number(&self.pool, channel.org, &number).await?;
        self.session_status(channel, session, customer.0, ussd_status_name(status), None).await
    }
}

/// The stored name of a USSD session's status.
fn ussd_status_name(status: UssdSessionStatus) -> &'static str {
    match status {
        UssdSessionStatus::Active => "active",
        UssdSessionStatus::Incomplete => "incomplete",
        UssdSessionStatus::Completed => "completed",
        UssdSessionStatus::AppError => "app_error",
    }
}

/// The stored name of a voice call's status (the platform's, snake_case).
fn call_status_name(status: hazina_providers::messaging::VoiceCallStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| "completed".to_owned())
}

/// The stored name of a consent.
fn consent_name(allowed: bool) -> &'static str {
    if allowed { "allowed" } else { "blocked" }
}

fn consent_event(
    channel: &ChannelRecord,
    customer: CustomerId,
    allowed: bool,
    source: &str,
) -> NewEvent {
    let data = ConsentData {
        customer_id: customer.0,
        channel_id: channel.id,
        consent: consent_name(allowed).to_owned(),
        source: source.to_owned(),
    };
    NewEvent::of(EventType::MessagingConsentChanged, &data).customer(Some(customer.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_alone_change_consent_and_words_in_sentences_do_not() {
        let text = |t: &str| vec![InboundPart::Text { text: t.to_owned() }];
        assert_eq!(keyword_consent(&text(" stop ")), Some(false));
        assert_eq!(keyword_consent(&text("Unsubscribe.")), Some(false));
        assert_eq!(keyword_consent(&text("START")), Some(true));
        assert_eq!(keyword_consent(&text("please stop the delivery")), None);
        assert_eq!(keyword_consent(&[]), None);
    }
}
