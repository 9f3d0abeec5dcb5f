//! Reminders: what an app wants to be reminded of about a customer, when, and how often.
//! They belong to one app. They are kept and listed; notifying the app when they are due is
//! yet to come. Every statement names the org.

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

const REMINDER_COLUMNS: &str = "key, remind_at, interval_ms, payload, created_at";

fn reminder(row: &tokio_postgres::Row) -> Reminder {
    let interval_ms: Option<i64> = row.get(2);
    Reminder {
        key: row.get(0),
        remind_at: row.get(1),
        interval: interval_ms.and_then(|ms| u64::try_from(ms / 1000).ok()),
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
    let interval_ms = match new.interval {
        None => None,
        Some(seconds @ 1..=REMINDER_INTERVAL_SECONDS_MAX) => {
            // At most a year of milliseconds: far inside an i64.
            i64::try_from(seconds * 1000).ok()
        }
        Some(_) => {
            return Err(CustomerError::invalid(
                Code::InvalidInterval,
                format!("an interval is 1 to {REMINDER_INTERVAL_SECONDS_MAX} seconds"),
            ));
        }
    };
    if new
        .payload
        .as_ref()
        .is_some_and(|p| p.chars().count() > REMINDER_PAYLOAD_LEN_MAX || p.contains('\0'))
    {
        return Err(CustomerError::invalid(
            Code::InvalidPayload,
            format!("a payload has at most {REMINDER_PAYLOAD_LEN_MAX} characters, no NUL"),
        ));
    }
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
