//! Replies to the session steps a provider waits on (a USSD screen, a voice call's next
//! actions). A step is recorded as a `message.received` event and awaits its reply in
//! `messaging_replies` until its deadline. The app answers through its webhook's response
//! body or through the stream's reply endpoint ([`Service::reply`]), whichever comes first;
//! at the deadline the channel's fallback answers instead. Each answer sets the row's `body`
//! only while it is empty and the deadline has not passed, so exactly one answer decides what
//! the provider hears, whichever server of several took it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hazina_ledger::OrgId;
use hazina_providers::messaging::{Body, Channel};
use uuid::Uuid;

use super::channels::ChannelRecord;
use super::{MessagingError, Service};
use crate::code::Code;

/// How often a waiting step reads its row, for a reply taken by another server (a reply taken
/// by this one wakes it at once).
const POLL: Duration = Duration::from_millis(25);

/// Longest USSD screen, in characters.
pub const USSD_TEXT_MAX: usize = 182;

/// Who answered a session step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplySource {
    /// The app, in its webhook's response body.
    Webhook,
    /// The app, through the stream's reply endpoint.
    Stream,
    /// Nobody in time: the channel's fallback.
    Fallback,
}

impl ReplySource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Stream => "stream",
            Self::Fallback => "fallback",
        }
    }
}

/// A session step's reply as recorded.
#[derive(Clone, Debug)]
pub struct StepReply {
    pub event_id: Uuid,
    pub channel_id: Uuid,
    pub body: Body,
    pub source: ReplySource,
    pub answered_at: DateTime<Utc>,
}

/// The steps this server is waiting on, woken when a reply for one is taken here.
#[derive(Debug, Default)]
pub struct Waiting(Mutex<HashMap<(Uuid, Uuid), Arc<tokio::sync::Notify>>>);

impl Waiting {
    fn register(&self, org: OrgId, event: Uuid) -> Arc<tokio::sync::Notify> {
        let mut waiting = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(waiting.entry((org.0, event)).or_default())
    }

    fn forget(&self, org: OrgId, event: Uuid) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&(org.0, event));
    }

    fn wake(&self, org: OrgId, event: Uuid) {
        let waiting = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(notify) = waiting.get(&(org.0, event)) {
            notify.notify_one();
        }
    }
}

/// `body` as a reply on `channel`, if it is one: a USSD screen that fits, or voice actions.
pub fn fits(channel: Channel, body: &Body) -> Result<(), MessagingError> {
    match (channel, body) {
        (Channel::Ussd, Body::Ussd { text, .. }) if text.chars().count() > USSD_TEXT_MAX => {
            Err(MessagingError::invalid(
                Code::MessageTooLong,
                format!("a USSD screen holds at most {USSD_TEXT_MAX} characters"),
            ))
        }
        (Channel::Ussd, Body::Ussd { .. }) => Ok(()),
        (Channel::Voice, Body::Voice { actions }) if !actions.is_empty() => Ok(()),
        (Channel::Voice, Body::Voice { .. }) => Err(MessagingError::invalid(
            Code::UnsupportedBody,
            "a voice reply needs at least one action",
        )),
        (channel, _) => Err(MessagingError::invalid(
            Code::UnsupportedBody,
            format!("a {} session step is answered with a {} body", channel.as_str(), {
                if channel == Channel::Voice { "voice" } else { "ussd" }
            }),
        )),
    }
}

/// A webhook's answer (`{"body": …}`) as a reply on `channel`, if it is one.
pub fn webhook_reply(channel: Channel, answer: &str) -> Option<Body> {
    #[derive(serde::Deserialize)]
    struct Answer {
        body: Body,
    }
    let answer: Answer = serde_json::from_str(answer).ok()?;
    fits(channel, &answer.body).ok().map(|()| answer.body)
}

impl Service {
    /// Waits for the reply to the step told by event `event` on `channel`: the app's, through
    /// its webhook (asked at once) or the stream's reply endpoint, until `deadline`; then the
    /// channel's `fallback`. Whether the webhook answered with something that is not a reply
    /// is returned too, for the session's reason.
    pub(super) async fn await_reply(
        &self,
        channel: &ChannelRecord,
        event: &crate::events::Event,
        deadline: Duration,
        fallback: Body,
    ) -> Result<(StepReply, bool), MessagingError> {
        let org = channel.org;
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO messaging_replies (org_id, event_id, channel_id, app_id, deadline_at)
                 VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
                 ON CONFLICT (org_id, event_id) DO NOTHING",
                &[&org.0, &event.id, &channel.id, &event.app_id, &deadline.as_secs_f64()],
            )
            .await?;
        drop(client);
        let woken = self.waiting.register(org, event.id);
        let outcome = self.race(channel, event, deadline, fallback, &woken).await;
        self.waiting.forget(org, event.id);
        outcome
    }

    async fn race(
        &self,
        channel: &ChannelRecord,
        event: &crate::events::Event,
        deadline: Duration,
        fallback: Body,
        woken: &tokio::sync::Notify,
    ) -> Result<(StepReply, bool), MessagingError> {
        let org = channel.org;
        let until = tokio::time::Instant::now() + deadline;
        let asked = self.webhooks.ask(org, event, deadline);
        tokio::pin!(asked);
        let (mut asking, mut unfit) = (true, false);
        loop {
            if let Some(reply) = self.recorded(org, event.id).await? {
                return Ok((reply, unfit));
            }
            tokio::select! {
                answer = &mut asked, if asking => {
                    asking = false;
                    let reply = answer.as_deref().and_then(|a| webhook_reply(channel.channel, a));
                    match reply {
                        Some(body) => {
                            self.answer(org, event.id, &body, ReplySource::Webhook).await?;
                        }
                        // Answered, but not with a reply: the app may still reply on the
                        // stream.
                        None => unfit |= answer.is_some(),
                    }
                }
                () = woken.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                () = tokio::time::sleep_until(until) => {
                    // Late replies are refused from here on; one that came just before wins.
                    self.answer_late(org, event.id, &fallback).await?;
                    let reply = self.recorded(org, event.id).await?.ok_or_else(|| {
                        MessagingError::Corrupt("a session step's reply vanished".to_owned())
                    })?;
                    return Ok((reply, unfit));
                }
            }
        }
    }

    /// Records `body` as the step's reply, if none is yet and its deadline has not passed.
    /// Whether it was taken.
    async fn answer(
        &self,
        org: OrgId,
        event: Uuid,
        body: &Body,
        source: ReplySource,
    ) -> Result<bool, MessagingError> {
        let json = serde_json::to_value(body)
            .map_err(|error| MessagingError::Corrupt(format!("a reply unwritable: {error}")))?;
        let client = self.pool.get().await?;
        let taken = client
            .execute(
                "UPDATE messaging_replies SET body = $3, source = $4, answered_at = now()
                 WHERE org_id = $1 AND event_id = $2 AND body IS NULL AND deadline_at > now()",
                &[&org.0, &event, &json, &source.as_str()],
            )
            .await?;
        Ok(taken == 1)
    }

    /// Records the fallback as the step's reply, deadline or not, unless a reply came first.
    async fn answer_late(
        &self,
        org: OrgId,
        event: Uuid,
        fallback: &Body,
    ) -> Result<(), MessagingError> {
        let json = serde_json::to_value(fallback)
            .map_err(|error| MessagingError::Corrupt(format!("a reply unwritable: {error}")))?;
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE messaging_replies SET body = $3, source = 'fallback', answered_at = now(),
                     deadline_at = LEAST(deadline_at, now())
                 WHERE org_id = $1 AND event_id = $2 AND body IS NULL",
                &[&org.0, &event, &json],
            )
            .await?;
        Ok(())
    }

    /// The step's reply, once there is one.
    async fn recorded(&self, org: OrgId, event: Uuid) -> Result<Option<StepReply>, MessagingError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT channel_id, body, source, answered_at FROM messaging_replies
                 WHERE org_id = $1 AND event_id = $2 AND body IS NOT NULL",
                &[&org.0, &event],
            )
            .await?;
        row.map(|row| reply_of(event, &row)).transpose()
    }

    /// The stream's reply endpoint: answers the session step told by event `event` with
    /// `body`, for an app (`None`: the org) that may see the event. Refused when the event is
    /// no step awaiting a reply, already answered, or past its deadline (`reply_not_awaited`),
    /// or when `body` is no reply on the step's channel.
    pub async fn reply(
        &self,
        org: OrgId,
        app: Option<Uuid>,
        event: Uuid,
        body: Body,
    ) -> Result<StepReply, MessagingError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT r.app_id, c.channel, r.body IS NOT NULL, r.deadline_at <= now()
                 FROM messaging_replies r
                 JOIN messaging_channels c ON c.org_id = r.org_id AND c.id = r.channel_id
                 WHERE r.org_id = $1 AND r.event_id = $2",
                &[&org.0, &event],
            )
            .await?;
        drop(client);
        let Some(row) = row else {
            let exists = crate::events::by_id(&self.pool, &self.store, org, event)
                .await
                .map_err(|error| MessagingError::Corrupt(error.to_string()))?
                .filter(|found| app.is_none() || found.app_id.is_none() || found.app_id == app);
            return Err(match exists {
                Some(_) => not_awaited("the event is not a session step that waits on a reply"),
                None => MessagingError::NotFound("event"),
            });
        };
        let owner: Option<Uuid> = row.get(0);
        if app.is_some() && owner.is_some() && owner != app {
            return Err(MessagingError::NotFound("event"));
        }
        let name: String = row.get(1);
        let channel = Channel::from_name(&name)
            .ok_or_else(|| MessagingError::Corrupt(format!("a channel kind {name:?}")))?;
        fits(channel, &body)?;
        if row.get::<_, bool>(2) {
            return Err(not_awaited("the step was answered already"));
        }
        if row.get::<_, bool>(3) || !self.answer(org, event, &body, ReplySource::Stream).await? {
            return Err(not_awaited("the step's deadline passed or it was answered first"));
        }
        self.waiting.wake(org, event);
        self.recorded(org, event)
            .await?
            .ok_or_else(|| MessagingError::Corrupt("a session step's reply vanished".to_owned()))
    }
}

fn not_awaited(detail: &str) -> MessagingError {
    MessagingError::Conflict { code: Code::ReplyNotAwaited, detail: detail.to_owned() }
}

fn reply_of(event: Uuid, row: &tokio_postgres::Row) -> Result<StepReply, MessagingError> {
    let body: serde_json::Value = row.get(1);
    let body = serde_json::from_value(body)
        .map_err(|error| MessagingError::Corrupt(format!("a stored reply: {error}")))?;
    let source = match row.get::<_, &str>(2) {
        "webhook" => ReplySource::Webhook,
        "stream" => ReplySource::Stream,
        "fallback" => ReplySource::Fallback,
        other => return Err(MessagingError::Corrupt(format!("a reply's source {other:?}"))),
    };
    Ok(StepReply { event_id: event, channel_id: row.get(0), body, source, answered_at: row.get(3) })
}

#[cfg(test)]
mod tests {
    use hazina_providers::messaging::{Say, VoiceAction};

    use super::*;

    #[test]
    fn only_a_screen_that_fits_or_voice_actions_answer_a_step() {
        let screen = |text: &str| Body::Ussd { text: text.to_owned(), is_terminal: false };
        assert!(fits(Channel::Ussd, &screen("1. Pay\n2. Balance")).is_ok());
        let long = fits(Channel::Ussd, &screen(&"x".repeat(USSD_TEXT_MAX + 1)));
        assert_eq!(long.unwrap_err().code(), Code::MessageTooLong);
        assert_eq!(fits(Channel::Voice, &screen("hi")).unwrap_err().code(), Code::UnsupportedBody);
        let say = VoiceAction::Say(Say { text: "Hello".to_owned(), voice: None, play_beep: false });
        assert!(fits(Channel::Voice, &Body::Voice { actions: vec![say] }).is_ok());
        let silent = fits(Channel::Voice, &Body::Voice { actions: Vec::new() });
        assert_eq!(silent.unwrap_err().code(), Code::UnsupportedBody);
    }

    #[test]
    fn only_a_webhook_answer_of_the_channel_s_kind_is_a_reply() {
        let ussd = r#"{"body":{"kind":"ussd","text":"1. Pay\n2. Cancel","isTerminal":false}}"#;
        assert!(webhook_reply(Channel::Ussd, ussd).is_some());
        assert!(webhook_reply(Channel::Voice, ussd).is_none());
        assert!(webhook_reply(Channel::Ussd, "not json").is_none());
        let long = format!(
            r#"{{"body":{{"kind":"ussd","text":"{}","isTerminal":true}}}}"#,
            "x".repeat(200)
        );
        assert!(webhook_reply(Channel::Ussd, &long).is_none());
    }
}
