//! What an accepted transfer does for its customer, from its context's `hazina` object: an
//! activity, metadata set or deleted, an app's data. Written by the batch that records the
//! transfer, in its transaction, and only then: a replayed transfer is not recorded again, so
//! its effects are never applied twice.
//!
//! The context's shape (the API validates all of it before submitting):
//!
//! ```text
//! activity:  {id, customer_id, app_id, source, session_id, key, properties}
//! metadata:  {customer_id, set: {key: {value (base64), is_text}}, delete: [key]}
//! app_data:  {customer_id, app_id, value (base64), is_text}
//! ```
//!
//! An item that does not have this shape is skipped (and logged): it cannot fail the batch,
//! which holds other requests too.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use serde_json::Value;
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

use super::StoreError;
use super::post::Statements;
use super::together::Settle;
use crate::context;
use crate::rules::Transfer;

/// Activities, each at its transfer's time; an activity already recorded under its id stays.
pub(super) const INSERT_ACTIVITIES: &str = "INSERT INTO activities
         (id, org_id, customer_id, app_id, source, session_id, key, properties, at, transfer_id)
     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[],
         $6::text[], $7::text[], $8::jsonb[], $9::timestamptz[], $10::uuid[])
     ON CONFLICT DO NOTHING";

/// Metadata values, as the last accepted transfer of the batch set them.
pub(super) const UPSERT_METADATA: &str = "INSERT INTO customer_metadata
         (org_id, customer_id, key, value, is_text, updated_at)
     SELECT org_id, customer_id, key, decode(value, 'base64'), is_text, updated_at
     FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::timestamptz[], $6::uuid[])
         AS u (customer_id, key, value, is_text, updated_at, org_id)
     ON CONFLICT (org_id, customer_id, key) DO UPDATE
         SET value = EXCLUDED.value, is_text = EXCLUDED.is_text,
             updated_at = EXCLUDED.updated_at";

/// Metadata keys whose last word in the batch was a deletion.
pub(super) const DELETE_METADATA: &str = "DELETE FROM customer_metadata AS m
     USING UNNEST($1::uuid[], $2::text[], $3::uuid[]) AS d (customer_id, key, org_id)
     WHERE m.org_id = d.org_id AND m.customer_id = d.customer_id AND m.key = d.key";

/// App data, as the last accepted transfer of the batch set it; a lease ends with it.
pub(super) const UPSERT_APP_DATA: &str = "INSERT INTO app_data
         (org_id, customer_id, app_id, value, is_text, leased_until, updated_at)
     SELECT org_id, customer_id, app_id, decode(value, 'base64'), is_text, NULL, updated_at
     FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::bool[], $5::timestamptz[], $6::uuid[])
         AS u (customer_id, app_id, value, is_text, updated_at, org_id)
     ON CONFLICT (org_id, customer_id, app_id) DO UPDATE
         SET value = EXCLUDED.value, is_text = EXCLUDED.is_text, leased_until = NULL,
             updated_at = EXCLUDED.updated_at";

/// A value as the context carries it: base64 text, decoded by the database.
#[derive(Clone)]
struct Value64<'a> {
    base64: &'a str,
    is_text: bool,
    at: DateTime<Utc>,
}

/// A batch's effects for customers, each table's rows as column arrays. A key set (or deleted)
/// by several transfers of the batch appears once, with its last value: what applying the
/// transfers one by one, in order, would leave.
#[derive(Default)]
pub(super) struct Effects<'a> {
    activities: Activities<'a>,
    /// `(org, customer, key)` → the last value, or `None` for a deletion.
    metadata: HashMap<(Uuid, Uuid, &'a str), Option<Value64<'a>>>,
    /// `(org, customer, app)` → the last value.
    app_data: HashMap<(Uuid, Uuid, Uuid), Value64<'a>>,
}

#[derive(Default)]
struct Activities<'a> {
    id: Vec<Uuid>,
    org: Vec<Uuid>,
    customer: Vec<Uuid>,
    app: Vec<Uuid>,
    source: Vec<&'a str>,
    session: Vec<&'a str>,
    key: Vec<&'a str>,
    properties: Vec<Json<&'a Value>>,
    at: Vec<DateTime<Utc>>,
    transfer: Vec<Uuid>,
}

/// The properties of an activity that names none.
static NO_PROPERTIES: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::Object(serde_json::Map::new()));

fn uuid_at(item: &Value, field: &str) -> Option<Uuid> {
    item.get(field)?.as_str()?.parse().ok()
}

impl<'a> Effects<'a> {
    /// The effects of the accepted transfers among `transfers`, in their order.
    pub(super) fn new(transfers: &'a [Transfer]) -> Self {
        let mut effects = Self::default();
        for transfer in transfers.iter().filter(|transfer| transfer.rejection.is_none()) {
            let Some(hazina) = transfer.context.get(context::HAZINA).and_then(Value::as_object)
            else {
                continue;
            };
            if let Some(item) = hazina.get(context::ACTIVITY)
                && effects.add_activity(transfer, item).is_none()
            {
                tracing::warn!(transfer = %transfer.id.0, "a context's activity was skipped");
            }
            if let Some(item) = hazina.get(context::METADATA)
                && effects.add_metadata(transfer, item).is_none()
            {
                tracing::warn!(transfer = %transfer.id.0, "a context's metadata was skipped");
            }
            if let Some(item) = hazina.get(context::APP_DATA)
                && effects.add_app_data(transfer, item).is_none()
            {
                tracing::warn!(transfer = %transfer.id.0, "a context's app data was skipped");
            }
        }
        effects
    }

    pub(super) fn is_empty(&self) -> bool {
        self.activities.id.is_empty() && self.metadata.is_empty() && self.app_data.is_empty()
    }

    fn add_activity(&mut self, transfer: &'a Transfer, item: &'a Value) -> Option<()> {
        let id = uuid_at(item, "id")?;
        if self.activities.id.contains(&id) {
            return Some(());
        }
        let a = &mut self.activities;
        let (customer, app) = (uuid_at(item, "customer_id")?, uuid_at(item, "app_id")?);
        let source = item.get("source")?.as_str()?;
        let session = item.get("session_id")?.as_str()?;
        let key = item.get("key")?.as_str()?;
        a.id.push(id);
        a.org.push(transfer.org.0);
        a.customer.push(customer);
        a.app.push(app);
        a.source.push(source);
        a.session.push(session);
        a.key.push(key);
        a.properties.push(Json(item.get("properties").unwrap_or(&NO_PROPERTIES)));
        a.at.push(transfer.created_at);
        a.transfer.push(transfer.id.0);
        Some(())
    }

    fn add_metadata(&mut self, transfer: &'a Transfer, item: &'a Value) -> Option<()> {
        let customer = uuid_at(item, "customer_id")?;
        let org = transfer.org.0;
        // Within one transfer, as before: its keys set, then its keys deleted.
        if let Some(set) = item.get("set") {
            for (key, value) in set.as_object()? {
                let base64 = value.get("value")?.as_str()?;
                let is_text = value.get("is_text")?.as_bool()?;
                let value = Value64 { base64, is_text, at: transfer.created_at };
                self.metadata.insert((org, customer, key.as_str()), Some(value));
            }
        }
        if let Some(delete) = item.get("delete") {
            for key in delete.as_array()? {
                self.metadata.insert((org, customer, key.as_str()?), None);
            }
        }
        Some(())
    }

    fn add_app_data(&mut self, transfer: &'a Transfer, item: &'a Value) -> Option<()> {
        let (customer, app) = (uuid_at(item, "customer_id")?, uuid_at(item, "app_id")?);
        let base64 = item.get("value")?.as_str()?;
        let is_text = item.get("is_text")?.as_bool()?;
        let value = Value64 { base64, is_text, at: transfer.created_at };
        self.app_data.insert((transfer.org.0, customer, app), value);
        Some(())
    }

    /// Sends a statement for each table that has rows, all at once.
    pub(super) async fn write(
        &self,
        client: &Client,
        statements: &Statements,
    ) -> Result<(), StoreError> {
        let a = &self.activities;
        let mut set = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut deleted = (Vec::new(), Vec::new(), Vec::new());
        for ((org, customer, key), value) in &self.metadata {
            if let Some(value) = value {
                set.0.push(*customer);
                set.1.push(*key);
                set.2.push(value.base64);
                set.3.push(value.is_text);
                set.4.push(value.at);
                set.5.push(*org);
            } else {
                deleted.0.push(*customer);
                deleted.1.push(*key);
                deleted.2.push(*org);
            }
        }
        let mut data = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((org, customer, app), value) in &self.app_data {
            data.0.push(*customer);
            data.1.push(*app);
            data.2.push(value.base64);
            data.3.push(value.is_text);
            data.4.push(value.at);
            data.5.push(*org);
        }
        tokio::join!(
            async {
                if a.id.is_empty() {
                    return Ok(0);
                }
                let params: [&(dyn ToSql + Sync); 10] = [
                    &a.id,
                    &a.org,
                    &a.customer,
                    &a.app,
                    &a.source,
                    &a.session,
                    &a.key,
                    &a.properties,
                    &a.at,
                    &a.transfer,
                ];
                client.execute(&statements.insert_activities, &params).await
            },
            async {
                if set.0.is_empty() {
                    return Ok(0);
                }
                let params: [&(dyn ToSql + Sync); 6] =
                    [&set.0, &set.1, &set.2, &set.3, &set.4, &set.5];
                client.execute(&statements.upsert_metadata, &params).await
            },
            async {
                if deleted.0.is_empty() {
                    return Ok(0);
                }
                let params: [&(dyn ToSql + Sync); 3] = [&deleted.0, &deleted.1, &deleted.2];
                client.execute(&statements.delete_metadata, &params).await
            },
            async {
                if data.0.is_empty() {
                    return Ok(0);
                }
                let params: [&(dyn ToSql + Sync); 6] =
                    [&data.0, &data.1, &data.2, &data.3, &data.4, &data.5];
                client.execute(&statements.upsert_app_data, &params).await
            },
        )
        .settle()?;
        Ok(())
    }
}
