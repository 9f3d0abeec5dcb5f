//! The reminders worker: fires due reminders as `reminder.due` events, every
//! [`REMINDERS_INTERVAL`].
//!
//! A round looks for the orgs with something due, and for each claims its due reminders
//! (`FOR UPDATE SKIP LOCKED`, up to [`REMINDERS_BATCH_MAX`]) and, in one transaction, deletes
//! the single ones, moves the repeating ones on and records one event per reminder as the last
//! statement. Several server processes may fire at once: a reminder another one holds is
//! skipped, and once that one commits the reminder is no longer due (or gone), so every due
//! time fires exactly once.
//!
//! **Missed repeats:** a repeating reminder found late (the server was down, a backlog) fires
//! once, for the latest due time that has passed, and moves on to the first due time after
//! now: no burst of the times it missed. Its event's `remindAt` is the time it fired for.
//!
//! **Reminders by tag** fire one event per customer that has the tag (live, not expired) when
//! the firing reads it, in chunks of [`TAG_CHUNK`] customers in id order, one transaction per
//! chunk: the chunk's events and the reminder's progress (`fired_through`, the last customer
//! reached, and `remind_at` pinned to the due time being fired) commit together, so a firing
//! spread over several transactions (and servers) reaches each customer once. A customer
//! tagged during a firing is reached if its id is after the progress; one untagged before its
//! chunk is not. The last chunk (one not full) moves the reminder on or deletes it.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use deadpool_postgres::{GenericClient, Pool};
use hazina_ledger::OrgId;
use uuid::Uuid;

use crate::customers::CustomerError;
use crate::customers::reminders::interval_seconds;
use crate::events::types::{ReminderDueData, TagData};
use crate::events::{self, EventType, NewEvent};

/// How often due reminders are looked for: a reminder fires well within a second of its time.
pub const REMINDERS_INTERVAL: Duration = Duration::from_millis(250);
/// Most reminders of one org fired in one transaction.
pub const REMINDERS_BATCH_MAX: i64 = 500;
/// Most customers one transaction of a reminder by tag reaches.
pub const TAG_CHUNK: i64 = 500;
/// Most transactions of reminders by tag one round runs per org, before it lets the others'
/// turn come (the loop runs again at once).
const TAG_CHUNKS_PER_ROUND: usize = 20;

/// What a round fired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fired {
    /// Events of reminders set for a customer.
    pub reminders: u64,
    /// Events of reminders by tag (one per customer reached).
    pub by_tag: u64,
    /// Whether a batch was full: there may be more due at once.
    pub more: bool,
}

/// The due time a reminder found due at `now` fires for, and when it is due next (none for a
/// single reminder): a repeating one fires for the latest of its due times that has passed and
/// is due next at the first one after `now`.
#[must_use]
pub fn due_times(
    remind_at: DateTime<Utc>,
    interval_ms: Option<i64>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
    let Some(interval_ms) = interval_ms.filter(|ms| *ms > 0) else {
        return (remind_at, None);
    };
    let late = (now - remind_at).num_milliseconds().max(0);
    // Whole milliseconds late, floored: the time fired for is never after `now`.
    let fired_for = remind_at + TimeDelta::milliseconds(late / interval_ms * interval_ms);
    (fired_for, Some(fired_for + TimeDelta::milliseconds(interval_ms)))
}

/// Fires what is due in every org, once.
///
/// # Errors
///
/// The database's; what committed before stays committed.
pub async fn fire_due_reminders(pool: &Pool) -> Result<Fired, CustomerError> {
    let orgs: Vec<OrgId> = {
        let client = pool.get().await?;
        // Across orgs by nature: an index probe per org on `(org_id, remind_at)`.
        client
            .query(
                "SELECT o.id FROM orgs o
                 WHERE EXISTS (SELECT 1 FROM reminders r
                         WHERE r.org_id = o.id AND r.remind_at <= now())
                     OR EXISTS (SELECT 1 FROM tag_reminders t
                         WHERE t.org_id = o.id AND t.remind_at <= now())
                 ORDER BY o.id",
                &[],
            )
            .await?
            .iter()
            .map(|row| OrgId(row.get(0)))
            .collect()
    };
    let mut fired = Fired::default();
    for org in orgs {
        let mut client = pool.get().await?;
        let (count, full) = fire_reminders(&mut client, org).await?;
        fired.reminders += count;
        fired.more |= full;
        for chunk in 0.. {
            if chunk == TAG_CHUNKS_PER_ROUND {
                fired.more = true;
                break;
            }
            match fire_tag_chunk(&mut client, org).await? {
                Some(reached) => fired.by_tag += reached,
                None => break,
            }
        }
    }
    Ok(fired)
}

/// Fires a batch of the org's due reminders in one transaction: how many, and whether the
/// batch was full.
async fn fire_reminders(
    client: &mut deadpool_postgres::Client,
    org: OrgId,
) -> Result<(u64, bool), CustomerError> {
    let transaction = client.transaction().await?;
    let rows = transaction
        .query(
            "SELECT customer_id, app_id, key, remind_at, interval_ms, payload, now()
             FROM reminders WHERE org_id = $1 AND remind_at <= now()
             ORDER BY remind_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&org.0, &REMINDERS_BATCH_MAX],
        )
        .await?;
    if rows.is_empty() {
        return Ok((0, false));
    }
    let mut done: (Vec<Uuid>, Vec<Uuid>, Vec<String>) = Default::default();
    let mut moved: (Vec<Uuid>, Vec<Uuid>, Vec<String>, Vec<DateTime<Utc>>) = Default::default();
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        let (customer, app, key): (Uuid, Uuid, String) = (row.get(0), row.get(1), row.get(2));
        let interval_ms: Option<i64> = row.get(4);
        let (fired_for, next) = due_times(row.get(3), interval_ms, row.get(6));
        events.push(
            NewEvent::of(
                EventType::ReminderDue,
                &ReminderDueData {
                    key: key.clone(),
                    remind_at: fired_for,
                    interval: interval_seconds(interval_ms),
                    payload: row.get(5),
                    tag: None,
                },
            )
            .app(Some(app))
            .customer(Some(customer)),
        );
        if let Some(next) = next {
            moved.0.push(customer);
            moved.1.push(app);
            moved.2.push(key);
            moved.3.push(next);
        } else {
            done.0.push(customer);
            done.1.push(app);
            done.2.push(key);
        }
    }
    if !done.0.is_empty() {
        transaction
            .execute(
                "DELETE FROM reminders r
                 USING unnest($2::uuid[], $3::uuid[], $4::text[]) AS d (customer_id, app_id, key)
                 WHERE r.org_id = $1 AND r.customer_id = d.customer_id AND r.app_id = d.app_id
                     AND r.key = d.key",
                &[&org.0, &done.0, &done.1, &done.2],
            )
            .await?;
    }
    if !moved.0.is_empty() {
        transaction
            .execute(
                "UPDATE reminders r SET remind_at = m.next
                 FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[])
                     AS m (customer_id, app_id, key, next)
                 WHERE r.org_id = $1 AND r.customer_id = m.customer_id AND r.app_id = m.app_id
                     AND r.key = m.key",
                &[&org.0, &moved.0, &moved.1, &moved.2, &moved.3],
            )
            .await?;
    }
    events::record(&transaction, org, &events).await?;
    transaction.commit().await?;
    let count = u64::try_from(rows.len()).unwrap_or(u64::MAX);
    Ok((count, i64::try_from(rows.len()).is_ok_and(|n| n == REMINDERS_BATCH_MAX)))
}

/// Fires the next chunk of one due reminder by tag of the org in one transaction: the
/// customers reached, or `None` when none is due (or all are held by other firings).
async fn fire_tag_chunk(
    client: &mut deadpool_postgres::Client,
    org: OrgId,
) -> Result<Option<u64>, CustomerError> {
    let transaction = client.transaction().await?;
    let Some(row) = transaction
        .query_opt(
            "SELECT app_id, tag_key, key, tag_value, remind_at, interval_ms, payload,
                 fired_through, now()
             FROM tag_reminders WHERE org_id = $1 AND remind_at <= now()
             ORDER BY remind_at LIMIT 1 FOR UPDATE SKIP LOCKED",
            &[&org.0],
        )
        .await?
    else {
        return Ok(None);
    };
    let (app, tag_key, key): (Uuid, String, String) = (row.get(0), row.get(1), row.get(2));
    let tag_value: Option<String> = row.get(3);
    let interval_ms: Option<i64> = row.get(5);
    let payload: Option<String> = row.get(6);
    let fired_through: Option<Uuid> = row.get(7);
    // A firing under way goes on for the due time it pinned in `remind_at`.
    let now: DateTime<Utc> = if fired_through.is_some() { row.get(4) } else { row.get(8) };
    let (fired_for, next) = due_times(row.get(4), interval_ms, now);
    let customers = tagged_after(
        &transaction,
        org,
        &tag_key,
        tag_value.as_deref(),
        fired_through.unwrap_or_else(Uuid::nil),
    )
    .await?;
    let pk: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [&org.0, &app, &tag_key, &key];
    let full = i64::try_from(customers.len()).is_ok_and(|n| n == TAG_CHUNK);
    match (full, customers.last(), next) {
        (true, Some((last, _)), _) => {
            let mut params = pk.to_vec();
            params.extend_from_slice(&[&fired_for, last]);
            transaction
                .execute(
                    "UPDATE tag_reminders SET remind_at = $5, fired_through = $6
                     WHERE org_id = $1 AND app_id = $2 AND tag_key = $3 AND key = $4",
                    &params,
                )
                .await?;
        }
        (_, _, Some(next)) => {
            let mut params = pk.to_vec();
            params.push(&next);
            transaction
                .execute(
                    "UPDATE tag_reminders SET remind_at = $5, fired_through = NULL
                     WHERE org_id = $1 AND app_id = $2 AND tag_key = $3 AND key = $4",
                    &params,
                )
                .await?;
        }
        (_, _, None) => {
            transaction
                .execute(
                    "DELETE FROM tag_reminders
                     WHERE org_id = $1 AND app_id = $2 AND tag_key = $3 AND key = $4",
                    &pk,
                )
                .await?;
        }
    }
    let events: Vec<NewEvent> = customers
        .iter()
        .map(|(customer, value)| {
            NewEvent::of(
                EventType::ReminderDue,
                &ReminderDueData {
                    key: key.clone(),
                    remind_at: fired_for,
                    interval: interval_seconds(interval_ms),
                    payload: payload.clone(),
                    tag: Some(TagData { key: tag_key.clone(), value: value.clone() }),
                },
            )
            .app(Some(app))
            .customer(Some(*customer))
        })
        .collect();
    events::record(&transaction, org, &events).await?;
    transaction.commit().await?;
    Ok(Some(u64::try_from(customers.len()).unwrap_or(u64::MAX)))
}

/// The next [`TAG_CHUNK`] customers with the live tag after the customer id `after`, in id
/// order, with their values.
async fn tagged_after(
    client: &impl GenericClient,
    org: OrgId,
    key: &str,
    value: Option<&str>,
    after: Uuid,
) -> Result<Vec<(Uuid, String)>, CustomerError> {
    let rows = match value {
        Some(value) => {
            client
                .query(
                    "SELECT customer_id, value FROM customer_tags
                     WHERE org_id = $1 AND key = $2 AND value = $3 AND customer_id > $4
                         AND (expires_at IS NULL OR expires_at > now())
                     ORDER BY customer_id LIMIT $5",
                    &[&org.0, &key, &value, &after, &TAG_CHUNK],
                )
                .await?
        }
        None => {
            client
                .query(
                    "SELECT customer_id, value FROM customer_tags
                     WHERE org_id = $1 AND key = $2 AND customer_id > $3
                         AND (expires_at IS NULL OR expires_at > now())
                     ORDER BY customer_id LIMIT $4",
                    &[&org.0, &key, &after, &TAG_CHUNK],
                )
                .await?
        }
    };
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Fires due reminders every [`REMINDERS_INTERVAL`] (and once at start) until `shutdown`
/// resolves.
pub async fn fire_reminders_loop(pool: Pool, shutdown: impl Future<Output = ()>) {
    let round = || {
        let pool = pool.clone();
        async move {
            let fired = fire_due_reminders(&pool).await?;
            if fired.reminders + fired.by_tag > 0 {
                tracing::debug!(?fired, "fired due reminders");
            }
            Ok::<_, CustomerError>(fired.more)
        }
    };
    let pace = super::Pace { at_start: true, wake: None };
    super::drain_loop("reminders", shutdown, pace, || REMINDERS_INTERVAL, round).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_single_reminder_fires_for_its_time_and_is_done() {
        let due = at("2030-01-01T00:00:00Z");
        assert_eq!(due_times(due, None, at("2030-01-05T00:00:00Z")), (due, None));
    }

    #[test]
    fn a_repeating_reminder_fires_once_for_the_latest_missed_time_and_moves_past_now() {
        let due = at("2030-01-01T00:00:00Z");
        let hour = Some(3_600_000);
        // On time: fires for its own time, next an interval later.
        assert_eq!(
            due_times(due, hour, at("2030-01-01T00:00:00.2Z")),
            (due, Some(at("2030-01-01T01:00:00Z")))
        );
        // Three and a half intervals late: once, for the third repeat; next the fourth.
        assert_eq!(
            due_times(due, hour, at("2030-01-01T03:30:00Z")),
            (at("2030-01-01T03:00:00Z"), Some(at("2030-01-01T04:00:00Z")))
        );
        // Exactly on a repeat: that repeat, and next strictly after now.
        let now = at("2030-01-01T02:00:00Z");
        let (fired_for, next) = due_times(due, hour, now);
        assert_eq!(fired_for, now);
        assert!(next.unwrap() > now);
    }
}
