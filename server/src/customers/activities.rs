//! Activities: what a customer did, in a session of a source, as an app records it (by itself
//! or with a payment); the whole org reads them. Every statement names the org.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use hazina_ledger::{CustomerId, OrgId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    ACTIVITY_SESSIONS_MAX, CustomerError, KEY_LEN_MAX, PROPERTIES_MAX, PROPERTY_VALUE_LEN_MAX,
    RECENT_ACTIVITIES_MAX, VALUE_LEN_MAX, check_key, check_text,
};
use crate::code::Code;
use crate::events::{self, EventType, NewEvent};

/// The schema of an activity's properties, with their limits.
fn properties_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::ObjectBuilder::new()
        .additional_properties(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .max_length(Some(PROPERTY_VALUE_LEN_MAX)),
        ))
        .property_names(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .min_length(Some(1))
                .max_length(Some(KEY_LEN_MAX))
                .pattern(Some(crate::schema::WORDS)),
        ))
        .max_properties(Some(PROPERTIES_MAX))
        .build()
}

/// Something the customer did in a session of a source, e.g. source `web-shop`, key
/// `cart_abandoned`, properties `{"cartTotal": "1200"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "source": "web-shop",
    "sessionId": "s1",
    "key": "checkout",
    "properties": {"cartTotal": "1200.00", "items": "3"}
}))]
pub struct NewActivity {
    #[schema(schema_with = crate::schema::key_text)]
    pub source: String,
    #[schema(schema_with = crate::schema::key_text)]
    pub session_id: String,
    #[schema(schema_with = crate::schema::key_text)]
    pub key: String,
    /// At most 50, names of 1 to 256 characters, values of at most 1,024.
    #[serde(default)]
    #[schema(schema_with = properties_schema)]
    pub properties: BTreeMap<String, String>,
    /// When it happened; now when absent.
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub activity_id: Uuid,
    pub app_id: Uuid,
    pub source: String,
    pub session_id: String,
    pub key: String,
    /// Text values by name.
    #[schema(value_type = Object)]
    pub properties: serde_json::Value,
    pub at: DateTime<Utc>,
    /// The payment it came with, if any.
    pub transaction_id: Option<Uuid>,
}

const ACTIVITY_COLUMNS: &str = "id, app_id, source, session_id, key, properties, at, transfer_id";

fn activity(row: &tokio_postgres::Row) -> Activity {
    Activity {
        activity_id: row.get(0),
        app_id: row.get(1),
        source: row.get(2),
        session_id: row.get(3),
        key: row.get(4),
        properties: row.get(5),
        at: row.get(6),
        transaction_id: row.get(7),
    }
}

/// Checks an activity's fields; its properties as stored.
pub fn check_activity(new: &NewActivity) -> Result<serde_json::Value, CustomerError> {
    check_text(&new.source, VALUE_LEN_MAX, Code::InvalidSource, "a source")?;
    check_text(&new.session_id, VALUE_LEN_MAX, Code::InvalidSessionId, "a session id")?;
    check_key(&new.key)?;
    if new.properties.len() > PROPERTIES_MAX {
        return Err(CustomerError::invalid(
            Code::TooManyProperties,
            format!("an activity has at most {PROPERTIES_MAX} properties"),
        ));
    }
    for (name, value) in &new.properties {
        check_text(name, KEY_LEN_MAX, Code::InvalidProperty, "a property name")?;
        if value.chars().count() > PROPERTY_VALUE_LEN_MAX || value.contains('\0') {
            return Err(CustomerError::invalid(
                Code::InvalidProperty,
                format!("a property value has at most {PROPERTY_VALUE_LEN_MAX} characters, no NUL"),
            ));
        }
    }
    let properties = serde_json::to_value(&new.properties)
        .map_err(|error| CustomerError::invalid(Code::InvalidProperty, error.to_string()))?;
    Ok(properties)
}

/// Records an activity of the customer for the app; the activity as recorded.
pub async fn record(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    app: Uuid,
    new: &NewActivity,
) -> Result<Activity, CustomerError> {
    let properties = check_activity(new)?;
    let mut client = pool.get().await?;
    let customer = super::store::check_on(&client, org, customer.0).await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO activities
                     (id, org_id, customer_id, app_id, source, session_id, key, properties, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, clock_timestamp()))
                 RETURNING {ACTIVITY_COLUMNS}"
            ),
            &[
                &Uuid::now_v7(),
                &org.0,
                &customer.0,
                &app,
                &new.source,
                &new.session_id,
                &new.key,
                &properties,
                &new.at,
            ],
        )
        .await?;
    let activity = activity(&row);
    let event = NewEvent::of(EventType::CustomerActivityRecorded, &activity)
        .app(Some(app))
        .customer(Some(customer.0));
    events::record(&tx, org, &[event]).await?;
    tx.commit().await?;
    Ok(activity)
}

/// The customer's activities with these ids, in no particular order.
pub async fn by_ids(
    client: &impl GenericClient,
    org: OrgId,
    customer: CustomerId,
    ids: &[Uuid],
) -> Result<Vec<Activity>, CustomerError> {
    let rows = client
        .query(
            &format!(
                "SELECT {ACTIVITY_COLUMNS} FROM activities
                 WHERE org_id = $3 AND customer_id = $2 AND id = ANY($1)"
            ),
            &[&ids, &customer.0, &org.0],
        )
        .await?;
    Ok(rows.iter().map(activity).collect())
}

/// A customer's activities in one session of one source, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivitySession {
    pub source: String,
    pub session_id: String,
    pub started_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub activities: Vec<Activity>,
}

/// The sessions of the customer's newest activities, the most recently active first.
pub async fn sessions(
    client: &impl GenericClient,
    org: OrgId,
    customer: CustomerId,
) -> Result<Vec<ActivitySession>, CustomerError> {
    let rows = client
        .query(
            &format!(
                "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE org_id = $3 AND customer_id = $1
                 ORDER BY at DESC, id DESC LIMIT $2"
            ),
            &[&customer.0, &RECENT_ACTIVITIES_MAX, &org.0],
        )
        .await?;
    let mut sessions: Vec<ActivitySession> = Vec::new();
    for activity in rows.iter().map(activity) {
        let found = sessions.iter().position(|session| {
            session.source == activity.source && session.session_id == activity.session_id
        });
        match found {
            Some(index) => {
                let session = &mut sessions[index];
                session.started_at = activity.at;
                session.activities.push(activity);
            }
            None if sessions.len() < ACTIVITY_SESSIONS_MAX => sessions.push(ActivitySession {
                source: activity.source.clone(),
                session_id: activity.session_id.clone(),
                started_at: activity.at,
                last_at: activity.at,
                activities: vec![activity],
            }),
            None => {}
        }
    }
    Ok(sessions)
}
