//! Reminders: what an app wants to be reminded of about a customer, when, and how often; and
//! reminders by tag, for every customer with a tag. They belong to one app. Every statement
//! names the org.
//!
//! The reminders worker (`workers::reminders`) fires them: when one falls due it records a
//! `reminder.due` event (one per tagged customer for a reminder by tag) and deletes a single
//! reminder or moves a repeating one on, in one transaction. Cancelling one stops its firings.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use hazina_ledger::{CustomerId, OrgId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::store::{lock, remove};
use super::{
    CustomerError, REMINDER_INTERVAL_SECONDS_MAX, REMINDER_PAYLOAD_LEN_MAX, REMINDERS_MAX,
    check_key, too_many,
};
use crate::code::Code;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "remindAt": "2030-01-31T06:00:00Z",
    "interval": 2_592_000,
    "payload": "{\"kind\":\"loan-repayment\",\"loanId\":\"LN-2291\"}"
}))]
pub struct NewReminder {
    pub remind_at: DateTime<Utc>,
    /// Seconds between repeats, after `remindAt`; none for a single reminder.
    #[schema(minimum = 1, maximum = 31_622_400)]
    #[serde(default, deserialize_with = "crate::schema::whole_number")]
    pub interval: Option<u64>,
    #[schema(max_length = 4096)]
    pub payload: Option<String>,
}

/// A reminder the calling app set for the customer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reminder {
    pub key: String,
    pub remind_at: DateTime<Utc>,
    /// Seconds between repeats.
    pub interval: Option<u64>,
    pub payload: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An interval in seconds as stored (milliseconds), refused outside 1 s to a year.
fn interval_ms(interval: Option<u64>) -> Result<Option<i64>, CustomerError> {
    match interval {
        None => Ok(None),
        Some(seconds @ 1..=REMINDER_INTERVAL_SECONDS_MAX) => {
            // At most a year of milliseconds: far inside an i64.
            Ok(i64::try_from(seconds * 1000).ok())
        }
        Some(_) => Err(CustomerError::invalid(
            Code::InvalidInterval,
            format!("an interval is 1 to {REMINDER_INTERVAL_SECONDS_MAX} seconds"),
        )),
    }
}

/// The seconds of an interval as stored.
pub(crate) fn interval_seconds(interval_ms: Option<i64>) -> Option<u64> {
    interval_ms.and_then(|ms| u64::try_from(ms / 1000).ok())
}

fn check_payload(payload: Option<&str>) -> Result<(), CustomerError> {
    if payload.is_some_and(|p| p.chars().count() > REMINDER_PAYLOAD_LEN_MAX || p.contains('\0')) {
        return Err(CustomerError::invalid(
            Code::InvalidPayload,
            format!("a payload has at most {REMINDER_PAYLOAD_LEN_MAX} characters, no NUL"),
        ));
    }
    Ok(())
}

const REMINDER_COLUMNS: &str = "key, remind_at, interval_ms, payload, created_at";

fn reminder(row: &tokio_postgres::Row) -> Reminder {
    let interval_ms: Option<i64> = row.get(2);
    Reminder {
        key: row.get(0),
        remind_at: row.get(1),
        interval: interval_seconds(interval_ms),
        payload: row.get(3),
        created_at: row.get(4),
    }
}

/// The app's reminders for the customer, soonest first.
pub async fn reminders(
    client: &impl GenericClient,
    org: OrgId,
    customer: CustomerId,
    app: Uuid,
) -> Result<Vec<Reminder>, CustomerError> {
    let rows = client
        .query(
            &format!(
                "SELECT {REMINDER_COLUMNS} FROM reminders
                 WHERE org_id = $3 AND customer_id = $1 AND app_id = $2
                 ORDER BY remind_at, key"
            ),
            &[&customer.0, &app, &org.0],
        )
        .await?;
    Ok(rows.iter().map(reminder).collect())
}

/// [`reminders`], once the customer is found to be the org's.
pub async fn list(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    app: Uuid,
) -> Result<Vec<Reminder>, CustomerError> {
    let client = pool.get().await?;
    let customer = super::store::check_on(&client, org, customer.0).await?;
    reminders(&client, org, customer, app).await
}

/// Sets one of the app's reminders for the customer, replacing one with the key: the reminder,
/// and whether it is new.
pub async fn set(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    app: Uuid,
    key: &str,
    new: &NewReminder,
) -> Result<(Reminder, bool), CustomerError> {
    check_key(key)?;
    let interval_ms = interval_ms(new.interval)?;
    check_payload(new.payload.as_deref())?;
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let customer = lock(&transaction, org, customer.0).await?;
    let row = transaction
        .query_one(
            &format!(
                "INSERT INTO reminders
                     (org_id, customer_id, app_id, key, remind_at, interval_ms, payload)
                 VALUES ($7, $1, $2, $3, $4, $5, $6)
                 ON CONFLICT (org_id, customer_id, app_id, key) DO UPDATE
                     SET remind_at = EXCLUDED.remind_at, interval_ms = EXCLUDED.interval_ms,
                         payload = EXCLUDED.payload
                 RETURNING {REMINDER_COLUMNS}, xmax = 0"
            ),
            &[&customer.0, &app, &key, &new.remind_at, &interval_ms, &new.payload, &org.0],
        )
        .await?;
    let count: i64 = transaction
        .query_one(
            "SELECT count(*) FROM reminders WHERE org_id = $3 AND customer_id = $1 AND app_id = $2",
            &[&customer.0, &app, &org.0],
        )
        .await?
        .get(0);
    if usize::try_from(count).unwrap_or(usize::MAX) > REMINDERS_MAX {
        return Err(too_many(Code::TooManyReminders, "reminders per app", REMINDERS_MAX));
    }
    transaction.commit().await?;
    // `xmax = 0`: the row was inserted, not updated.
    let created: bool = row.get(5);
    Ok((reminder(&row), created))
}

/// Cancels one of the app's reminders (nothing to cancel is fine).
pub async fn delete(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    app: Uuid,
    key: &str,
) -> Result<(), CustomerError> {
    check_key(key)?;
    remove(
        pool,
        org,
        customer,
        "DELETE FROM reminders
         WHERE org_id = $1 AND customer_id = $2 AND app_id = $3 AND key = $4",
        &[&app, &key],
    )
    .await
}

// --- Reminders by tag ---------------------------------------------------------------------

/// The customers a reminder by tag is for: those with the tag `key`, and `value` if given.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagSelector {
    #[schema(schema_with = crate::schema::key_text)]
    pub key: String,
    /// Any value when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::optional_key_text)]
    pub value: Option<String>,
}

/// A reminder for every customer with a tag, set by the calling app.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "key": "monthly-statement",
    "tag": {"key": "segment", "value": "gold"},
    "remindAt": "2030-01-31T06:00:00Z",
    "interval": 2_592_000,
    "payload": "{\"kind\":\"statement\"}"
}))]
pub struct NewTagReminder {
    /// The reminder's key, one per tag key and app.
    #[schema(schema_with = crate::schema::key_text)]
    pub key: String,
    pub tag: TagSelector,
    pub remind_at: DateTime<Utc>,
    /// Seconds between repeats, after `remindAt`; none for a single reminder.
    #[schema(minimum = 1, maximum = 31_622_400)]
    #[serde(default, deserialize_with = "crate::schema::whole_number")]
    pub interval: Option<u64>,
    #[schema(max_length = 4096)]
    pub payload: Option<String>,
}

/// A reminder by tag the calling app set.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagReminder {
    pub key: String,
    pub tag: TagSelector,
    /// When it is next due.
    pub remind_at: DateTime<Utc>,
    /// Seconds between repeats.
    pub interval: Option<u64>,
    pub payload: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Most reminders by tag an app has.
pub const TAG_REMINDERS_MAX: usize = 1_000;

const TAG_REMINDER_COLUMNS: &str = "key, tag_key, tag_value, remind_at, interval_ms, payload, \
    created_at";

fn tag_reminder(row: &tokio_postgres::Row) -> TagReminder {
    TagReminder {
        key: row.get(0),
        tag: TagSelector { key: row.get(1), value: row.get(2) },
        remind_at: row.get(3),
        interval: interval_seconds(row.get(4)),
        payload: row.get(5),
        created_at: row.get(6),
    }
}

/// Checks what [`set_by_tag`] checks before it opens a transaction: the stored interval.
pub fn check_tag_reminder(new: &NewTagReminder) -> Result<Option<i64>, CustomerError> {
    check_key(&new.key)?;
    check_key(&new.tag.key)?;
    if let Some(value) = &new.tag.value {
        super::check_text(value, super::VALUE_LEN_MAX, Code::InvalidValue, "a tag value")?;
    }
    let interval_ms = interval_ms(new.interval)?;
    check_payload(new.payload.as_deref())?;
    Ok(interval_ms)
}

/// Sets one of the app's reminders by tag, replacing the one with its tag key and key (and
/// abandoning a firing of it under way): the reminder, and whether it is new.
pub async fn set_by_tag(
    pool: &Pool,
    org: OrgId,
    app: Uuid,
    new: &NewTagReminder,
) -> Result<(TagReminder, bool), CustomerError> {
    let interval_ms = check_tag_reminder(new)?;
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    // The app's row, locked: reminders of one app are counted one change at a time.
    transaction
        .query_one(
            "SELECT 1 FROM apps WHERE org_id = $1 AND id = $2 FOR NO KEY UPDATE",
            &[&org.0, &app],
        )
        .await?;
    let row = transaction
        .query_one(
            &format!(
                "INSERT INTO tag_reminders (org_id, app_id, tag_key, key, tag_value, remind_at,
                     interval_ms, payload)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (org_id, app_id, tag_key, key) DO UPDATE
                     SET tag_value = EXCLUDED.tag_value, remind_at = EXCLUDED.remind_at,
                         interval_ms = EXCLUDED.interval_ms, payload = EXCLUDED.payload,
                         fired_through = NULL
                 RETURNING {TAG_REMINDER_COLUMNS}, xmax = 0"
            ),
            &[
                &org.0,
                &app,
                &new.tag.key,
                &new.key,
                &new.tag.value,
                &new.remind_at,
                &interval_ms,
                &new.payload,
            ],
        )
        .await?;
    let count: i64 = transaction
        .query_one(
            "SELECT count(*) FROM tag_reminders WHERE org_id = $1 AND app_id = $2",
            &[&org.0, &app],
        )
        .await?
        .get(0);
    if usize::try_from(count).unwrap_or(usize::MAX) > TAG_REMINDERS_MAX {
        return Err(CustomerError::invalid(
            Code::TooManyReminders,
            format!("an app has at most {TAG_REMINDERS_MAX} reminders by tag"),
        ));
    }
    transaction.commit().await?;
    // `xmax = 0`: the row was inserted, not updated.
    let created: bool = row.get(7);
    Ok((tag_reminder(&row), created))
}

/// The app's reminders by tag (of the tag key, if given), soonest first.
pub async fn list_by_tag(
    pool: &Pool,
    org: OrgId,
    app: Uuid,
    tag_key: Option<&str>,
) -> Result<Vec<TagReminder>, CustomerError> {
    if let Some(tag_key) = tag_key {
        check_key(tag_key)?;
    }
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {TAG_REMINDER_COLUMNS} FROM tag_reminders
                 WHERE org_id = $1 AND app_id = $2 AND ($3::text IS NULL OR tag_key = $3)
                 ORDER BY remind_at, tag_key, key"
            ),
            &[&org.0, &app, &tag_key],
        )
        .await?;
    Ok(rows.iter().map(tag_reminder).collect())
}

/// Cancels one of the app's reminders by tag (nothing to cancel is fine); a firing of it under
/// way stops with the chunk it is on.
pub async fn delete_by_tag(
    pool: &Pool,
    org: OrgId,
    app: Uuid,
    tag_key: &str,
    key: &str,
) -> Result<(), CustomerError> {
    check_key(tag_key)?;
    check_key(key)?;
    let client = pool.get().await?;
    client
        .execute(
            "DELETE FROM tag_reminders
             WHERE org_id = $1 AND app_id = $2 AND tag_key = $3 AND key = $4",
            &[&org.0, &app, &tag_key, &key],
        )
        .await?;
    Ok(())
}
