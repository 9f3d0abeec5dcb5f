//! What the org and its apps keep about a customer: tags and secondary ids (the org's labels
//! and other ways to find the customer), metadata (the org's key-value map) and app data (one
//! value per app, with a lease that keeps other leases off it).
//!
//! Tags, secondary ids and metadata belong to the org; app data belongs to one app. An
//! expired tag or secondary id is invisible everywhere, and an expired secondary id can be
//! claimed by another customer. Every statement names the org.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use hazina_ledger::{CustomerId, OrgId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::store::{check_on, lock, remove};
use super::tags::tag_event;
use super::{
    APP_DATA_LEASE_SECONDS, CustomerError, DATA_BYTES_MAX, KEY_LEN_MAX, METADATA_KEYS_MAX,
    SECONDARY_IDS_MAX, TAGS_MAX, VALUE_LEN_MAX, check_key, check_text, too_many,
};
use crate::code::Code;
use crate::events::{self, NewEvent};
use crate::schema::{self, Holds, Keyed};

/// The schema of metadata keys and values, with their limits (utoipa states no limit on the
/// size of a map by itself).
pub fn metadata_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::ObjectBuilder::new()
        .additional_properties(Some(utoipa::openapi::Ref::from_schema_name("DataValue")))
        .property_names(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .min_length(Some(1))
                .max_length(Some(KEY_LEN_MAX))
                .pattern(Some(schema::WORDS)),
        ))
        .max_properties(Some(METADATA_KEYS_MAX))
        .build()
}

// --- Tags ---------------------------------------------------------------------------------

/// A label that selects a group of customers; invisible once expired.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tag {
    #[schema(schema_with = crate::schema::key_text)]
    pub key: String,
    #[schema(schema_with = crate::schema::key_text)]
    pub value: String,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// The customer's live tags, by key.
pub async fn tags(
    client: &impl GenericClient,
    org: OrgId,
    customer: CustomerId,
) -> Result<Vec<Tag>, CustomerError> {
    let rows = client
        .query(
            "SELECT key, value, expires_at FROM customer_tags
             WHERE org_id = $2 AND customer_id = $1 AND (expires_at IS NULL OR expires_at > now())
             ORDER BY key",
            &[&customer.0, &org.0],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Tag { key: row.get(0), value: row.get(1), expires_at: row.get(2) })
        .collect())
}

/// Sets tags: a key already there takes the new value and expiry (the last of a repeated key
/// wins); the others stay. The customer's tags after the change.
pub async fn set_tags(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    update: &[Tag],
) -> Result<Vec<Tag>, CustomerError> {
    if update.len() > TAGS_MAX {
        return Err(too_many(Code::TooManyTags, "tags", TAGS_MAX));
    }
    let mut wanted = BTreeMap::new();
    for tag in update {
        check_key(&tag.key)?;
        check_text(&tag.value, VALUE_LEN_MAX, Code::InvalidValue, "a tag value")?;
        wanted.insert(tag.key.as_str(), tag);
    }
    let keys: Vec<&str> = wanted.keys().copied().collect();
    let values: Vec<&str> = wanted.values().map(|tag| tag.value.as_str()).collect();
    let expiries: Vec<Option<DateTime<Utc>>> = wanted.values().map(|tag| tag.expires_at).collect();
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let customer = lock(&transaction, org, customer.0).await?;
    transaction
        .execute(
            "DELETE FROM customer_tags
             WHERE org_id = $2 AND customer_id = $1 AND expires_at <= now()",
            &[&customer.0, &org.0],
        )
        .await?;
    // What the customer had before: a changed value is an addition too.
    let before: BTreeMap<String, String> = transaction
        .query(
            "SELECT key, value FROM customer_tags WHERE org_id = $2 AND customer_id = $1",
            &[&customer.0, &org.0],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    transaction
        .execute(
            "INSERT INTO customer_tags (org_id, customer_id, key, value, expires_at)
             SELECT $5, $1, * FROM unnest($2::text[], $3::text[], $4::timestamptz[])
             ON CONFLICT (org_id, customer_id, key)
                 DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at",
            &[&customer.0, &keys, &values, &expiries, &org.0],
        )
        .await?;
    let tags = tags(&transaction, org, customer).await?;
    if tags.len() > TAGS_MAX {
        return Err(too_many(Code::TooManyTags, "tags", TAGS_MAX));
    }
    let events: Vec<NewEvent> = wanted
        .values()
        .filter(|tag| before.get(&tag.key) != Some(&tag.value))
        .map(|tag| tag_event(true, customer.0, &tag.key, &tag.value))
        .collect();
    events::record(&transaction, org, &events).await?;
    transaction.commit().await?;
    Ok(tags)
}

/// Removes a tag (nothing to remove is fine).
pub async fn delete_tag(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    key: &str,
) -> Result<(), CustomerError> {
    check_key(key)?;
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let customer = lock(&transaction, org, customer.0).await?;
    let removed = transaction
        .query_opt(
            "DELETE FROM customer_tags WHERE org_id = $1 AND customer_id = $2 AND key = $3
             RETURNING value, expires_at IS NULL OR expires_at > now()",
            &[&org.0, &customer.0, &key],
        )
        .await?;
    // An expired tag was invisible already: removing it tells nothing.
    if let Some(row) = removed.filter(|row| row.get::<_, bool>(1)) {
        let value: String = row.get(0);
        events::record(&transaction, org, &[tag_event(false, customer.0, key, &value)]).await?;
    }
    transaction.commit().await?;
    Ok(())
}

// --- Secondary ids ------------------------------------------------------------------------

/// Another way to find the customer: unique in the org while it has not expired.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecondaryId {
    #[schema(schema_with = crate::schema::key_text)]
    pub key: String,
    #[schema(schema_with = crate::schema::key_text)]
    pub value: String,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// The customer's live secondary ids, by key and value.
pub async fn secondary_ids(
    client: &impl GenericClient,
    org: OrgId,
    customer: CustomerId,
) -> Result<Vec<SecondaryId>, CustomerError> {
    let rows = client
        .query(
            "SELECT key, value, expires_at FROM customer_secondary_ids
             WHERE org_id = $2 AND customer_id = $1
                 AND (expires_at IS NULL OR expires_at > now())
             ORDER BY key, value",
            &[&customer.0, &org.0],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| SecondaryId { key: row.get(0), value: row.get(1), expires_at: row.get(2) })
        .collect())
}

/// Sets secondary ids: one the customer has takes the new expiry; one another customer holds
/// unexpired is refused, and then nothing changes. The customer's secondary ids after the
/// change.
pub async fn set_secondary_ids(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    update: &[SecondaryId],
) -> Result<Vec<SecondaryId>, CustomerError> {
    if update.len() > SECONDARY_IDS_MAX {
        return Err(too_many(Code::TooManySecondaryIds, "secondary ids", SECONDARY_IDS_MAX));
    }
    let mut wanted = BTreeMap::new();
    for id in update {
        check_key(&id.key)?;
        check_text(&id.value, VALUE_LEN_MAX, Code::InvalidValue, "a secondary id value")?;
        wanted.insert((id.key.as_str(), id.value.as_str()), id.expires_at);
    }
    let keys: Vec<&str> = wanted.keys().map(|(key, _)| *key).collect();
    let values: Vec<&str> = wanted.keys().map(|(_, value)| *value).collect();
    let expiries: Vec<Option<DateTime<Utc>>> = wanted.values().copied().collect();
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let customer = lock(&transaction, org, customer.0).await?;
    transaction
        .execute(
            "DELETE FROM customer_secondary_ids
             WHERE org_id = $2 AND customer_id = $1 AND expires_at <= now()",
            &[&customer.0, &org.0],
        )
        .await?;
    // An id held by another customer is only taken over once it has expired; the row lock
    // taken by the conflict makes two customers claiming one id wait for each other.
    let claimed = transaction
        .query(
            "INSERT INTO customer_secondary_ids AS s (org_id, key, value, customer_id, expires_at)
             SELECT $1, key, value, $2, expires_at
             FROM unnest($3::text[], $4::text[], $5::timestamptz[]) AS u (key, value, expires_at)
             ON CONFLICT (org_id, key, value) DO UPDATE
                 SET customer_id = EXCLUDED.customer_id, expires_at = EXCLUDED.expires_at
                 WHERE s.customer_id = EXCLUDED.customer_id
                     OR (s.expires_at IS NOT NULL AND s.expires_at <= now())
             RETURNING key, value",
            &[&org.0, &customer.0, &keys, &values, &expiries],
        )
        .await?;
    if claimed.len() < wanted.len() {
        let claimed: Vec<(String, String)> =
            claimed.iter().map(|row| (row.get(0), row.get(1))).collect();
        let taken = wanted
            .keys()
            .find(|(key, value)| !claimed.iter().any(|(k, v)| k == key && v == value))
            .map(|(key, value)| format!("{key}={value}"))
            .unwrap_or_default();
        return Err(CustomerError::SecondaryIdTaken(taken));
    }
    let secondary_ids = secondary_ids(&transaction, org, customer).await?;
    if secondary_ids.len() > SECONDARY_IDS_MAX {
        return Err(too_many(Code::TooManySecondaryIds, "secondary ids", SECONDARY_IDS_MAX));
    }
    transaction.commit().await?;
    Ok(secondary_ids)
}

/// Removes a secondary id from the customer (nothing to remove is fine).
pub async fn delete_secondary_id(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    key: &str,
    value: &str,
) -> Result<(), CustomerError> {
    check_key(key)?;
    check_text(value, VALUE_LEN_MAX, Code::InvalidValue, "a secondary id value")?;
    remove(
        pool,
        org,
        customer,
        "DELETE FROM customer_secondary_ids
         WHERE org_id = $1 AND customer_id = $2 AND key = $3 AND value = $4",
        &[&key, &value],
    )
    .await
}

// --- Metadata and app data values ---------------------------------------------------------

/// A stored value: text, or bytes in standard base64 (with padding).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", try_from = "DataValueFields")]
pub enum DataValue {
    String(String),
    Bytes(String),
}

/// The variants of [`DataValue`], each a schema of its own.
const DATA_VALUES: [Keyed; 2] = [
    Keyed { name: "TextValue", key: "string", holds: Holds::Text, description: "Text." },
    Keyed {
        name: "BytesValue",
        key: "bytes",
        holds: Holds::Base64,
        description: "Bytes, in standard base64 with padding.",
    },
];

impl utoipa::PartialSchema for DataValue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        schema::keyed_union(
            "A stored value: an object with exactly one of `string` (text) and `bytes` (bytes in \
             standard base64, with padding).",
            &DATA_VALUES,
        )
    }
}

impl ToSchema for DataValue {
    fn schemas(schemas: &mut schema::Schemas) {
        schema::keyed_variants(&DATA_VALUES, schemas);
    }
}

/// A value as sent: read field by field so that both or neither is a 422 like any other
/// wrong body (an externally tagged enum would make it a JSON syntax error).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataValueFields {
    string: Option<String>,
    bytes: Option<String>,
}

impl TryFrom<DataValueFields> for DataValue {
    type Error = &'static str;

    fn try_from(fields: DataValueFields) -> Result<Self, Self::Error> {
        match (fields.string, fields.bytes) {
            (Some(text), None) => Ok(Self::String(text)),
            (None, Some(bytes)) => Ok(Self::Bytes(bytes)),
            _ => Err("a value has exactly one of `string` and `bytes`"),
        }
    }
}

impl DataValue {
    /// The bytes to store and whether they are text; refuses bad base64 and large values.
    pub fn to_stored(&self) -> Result<(Vec<u8>, bool), CustomerError> {
        let (bytes, is_text) = match self {
            Self::String(text) => (text.as_bytes().to_vec(), true),
            Self::Bytes(encoded) => {
                let bytes =
                    base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|error| {
                        CustomerError::invalid(Code::InvalidBase64, error.to_string())
                    })?;
                (bytes, false)
            }
        };
        if bytes.len() > DATA_BYTES_MAX {
            return Err(CustomerError::invalid(
                Code::ValueTooLarge,
                format!("a value has at most {DATA_BYTES_MAX} bytes"),
            ));
        }
        Ok((bytes, is_text))
    }

    /// The value as stored; text that is not UTF-8 (it can only come from outside the API)
    /// is shown as bytes rather than lost.
    fn from_stored(bytes: Vec<u8>, is_text: bool) -> Self {
        if is_text {
            match String::from_utf8(bytes) {
                Ok(text) => return Self::String(text),
                Err(error) => return Self::bytes(error.as_bytes()),
            }
        }
        Self::bytes(&bytes)
    }

    fn bytes(bytes: &[u8]) -> Self {
        Self::Bytes(base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

// --- Metadata -----------------------------------------------------------------------------

/// The org's key-value map for the customer.
pub async fn metadata(
    client: &impl GenericClient,
    org: OrgId,
    customer: CustomerId,
) -> Result<BTreeMap<String, DataValue>, CustomerError> {
    let rows = client
        .query(
            "SELECT key, value, is_text FROM customer_metadata
             WHERE org_id = $2 AND customer_id = $1",
            &[&customer.0, &org.0],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.get(0), DataValue::from_stored(row.get(1), row.get(2))))
        .collect())
}

/// Sets metadata: a key already there takes the new value; the others stay. The customer's
/// metadata after the change.
pub async fn set_metadata(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    update: &BTreeMap<String, DataValue>,
) -> Result<BTreeMap<String, DataValue>, CustomerError> {
    if update.len() > METADATA_KEYS_MAX {
        return Err(too_many(Code::TooManyMetadataKeys, "metadata keys", METADATA_KEYS_MAX));
    }
    let mut keys = Vec::with_capacity(update.len());
    let mut values = Vec::with_capacity(update.len());
    let mut texts = Vec::with_capacity(update.len());
    for (key, value) in update {
        check_key(key)?;
        let (bytes, is_text) = value.to_stored()?;
        keys.push(key.as_str());
        values.push(bytes);
        texts.push(is_text);
    }
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let customer = lock(&transaction, org, customer.0).await?;
    transaction
        .execute(
            "INSERT INTO customer_metadata (org_id, customer_id, key, value, is_text, updated_at)
             SELECT $5, $1, *, now() FROM unnest($2::text[], $3::bytea[], $4::boolean[])
             ON CONFLICT (org_id, customer_id, key) DO UPDATE
                 SET value = EXCLUDED.value, is_text = EXCLUDED.is_text,
                     updated_at = EXCLUDED.updated_at",
            &[&customer.0, &keys, &values, &texts, &org.0],
        )
        .await?;
    let metadata = metadata(&transaction, org, customer).await?;
    if metadata.len() > METADATA_KEYS_MAX {
        return Err(too_many(Code::TooManyMetadataKeys, "metadata keys", METADATA_KEYS_MAX));
    }
    transaction.commit().await?;
    Ok(metadata)
}

/// Removes a metadata key (nothing to remove is fine).
pub async fn delete_metadata(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    key: &str,
) -> Result<(), CustomerError> {
    check_key(key)?;
    remove(
        pool,
        org,
        customer,
        "DELETE FROM customer_metadata WHERE org_id = $1 AND customer_id = $2 AND key = $3",
        &[&key],
    )
    .await
}

// --- App data -----------------------------------------------------------------------------

/// The calling app's value for the customer, and the lease on it if there is one.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppData {
    pub value: DataValue,
    /// Until when a lease keeps other leases off; absent when not leased.
    pub leased_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl AppData {
    fn from_row(row: &tokio_postgres::Row) -> Self {
        Self {
            value: DataValue::from_stored(row.get(0), row.get(1)),
            leased_until: row.get(2),
            updated_at: row.get(3),
        }
    }
}

/// Drops from a transfer's context what an `app` key may not see: the app data a payment
/// wrote (`hazina.app_data`) belongs to the app that wrote it, like the app data itself, so
/// another app does not see it. An org key (`None`) sees everything; activities, metadata and
/// the linked customers stay, because the whole org reads them.
pub fn hide_other_apps_data(
    context: &mut serde_json::Map<String, serde_json::Value>,
    app: Option<Uuid>,
) {
    let Some(app) = app else { return };
    let Some(effects) =
        context.get_mut(hazina_ledger::context::HAZINA).and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    let writer = effects
        .get(hazina_ledger::context::APP_DATA)
        .and_then(|data| data.get("app_id"))
        .and_then(serde_json::Value::as_str)
        .and_then(|id| id.parse::<Uuid>().ok());
    // App data whose writer cannot be read is nobody's to show.
    if writer != Some(app) {
        effects.remove(hazina_ledger::context::APP_DATA);
    }
}

/// A lease still running at `now()`, as the database sees it.
const LIVE_LEASE: &str = "CASE WHEN leased_until > now() THEN leased_until END";

/// The app's value for the customer, if it has one.
pub async fn app_data(
    client: &impl GenericClient,
    org: OrgId,
    customer: CustomerId,
    app: Uuid,
) -> Result<Option<AppData>, CustomerError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT value, is_text, {LIVE_LEASE}, updated_at FROM app_data
                 WHERE org_id = $3 AND customer_id = $1 AND app_id = $2"
            ),
            &[&customer.0, &app, &org.0],
        )
        .await?;
    Ok(row.as_ref().map(AppData::from_row))
}

/// Sets the app's value for the customer; ends any lease. The app data as stored.
pub async fn set_app_data(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    app: Uuid,
    value: &DataValue,
) -> Result<AppData, CustomerError> {
    let (bytes, is_text) = value.to_stored()?;
    let client = pool.get().await?;
    let customer = check_on(&client, org, customer.0).await?;
    let row = client
        .query_one(
            "INSERT INTO app_data
                 (org_id, customer_id, app_id, value, is_text, leased_until, updated_at)
             VALUES ($5, $1, $2, $3, $4, NULL, now())
             ON CONFLICT (org_id, customer_id, app_id) DO UPDATE
                 SET value = EXCLUDED.value, is_text = EXCLUDED.is_text, leased_until = NULL,
                     updated_at = EXCLUDED.updated_at
             RETURNING value, is_text, leased_until, updated_at",
            &[&customer.0, &app, &bytes, &is_text, &org.0],
        )
        .await?;
    Ok(AppData::from_row(&row))
}

/// Removes the app's value for the customer, and with it any lease (nothing to remove is
/// fine).
pub async fn delete_app_data(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    app: Uuid,
) -> Result<(), CustomerError> {
    remove(
        pool,
        org,
        customer,
        "DELETE FROM app_data WHERE org_id = $1 AND customer_id = $2 AND app_id = $3",
        &[&app],
    )
    .await
}

/// Returns the app's value and leases it for [`APP_DATA_LEASE_SECONDS`]: until then (or the
/// next update or delete) another lease is refused, so that one worker at a time reads,
/// changes and writes it back.
pub async fn lease_app_data(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    app: Uuid,
) -> Result<AppData, CustomerError> {
    let client = pool.get().await?;
    let customer = check_on(&client, org, customer.0).await?;
    // One statement: two leases racing for the row take its lock in turn, and the second
    // sees the first's lease.
    let leased = client
        .query_opt(
            &format!(
                "UPDATE app_data
                 SET leased_until = now() + interval '{APP_DATA_LEASE_SECONDS} seconds'
                 WHERE org_id = $3 AND customer_id = $1 AND app_id = $2
                     AND (leased_until IS NULL OR leased_until <= now())
                 RETURNING value, is_text, leased_until, updated_at"
            ),
            &[&customer.0, &app, &org.0],
        )
        .await?;
    if let Some(row) = leased {
        return Ok(AppData::from_row(&row));
    }
    match app_data(&client, org, customer, app).await? {
        None => Err(CustomerError::NotFound("app data")),
        // `None` when the lease ran out between the two statements: a retry takes it.
        Some(AppData { leased_until, .. }) => {
            Err(CustomerError::AppDataLeased { until: leased_until })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfers_context_shows_app_data_only_to_its_app_and_the_org() {
        let (writer, other) = (Uuid::now_v7(), Uuid::now_v7());
        let context = serde_json::json!({
            "payment": { "narration": "n" },
            "hazina": {
                "app_data": { "app_id": writer, "value": "c2VjcmV0", "is_text": true },
                "activity": { "app_id": writer, "key": "paid" },
                "customers": ["c"],
            },
        });
        let serde_json::Value::Object(context) = context else { unreachable!() };
        let seen_by = |app: Option<Uuid>| {
            let mut seen = context.clone();
            hide_other_apps_data(&mut seen, app);
            seen
        };
        assert_eq!(seen_by(None), context);
        assert_eq!(seen_by(Some(writer)), context);
        let mut without = context.clone();
        without["hazina"].as_object_mut().unwrap().remove("app_data");
        assert_eq!(seen_by(Some(other)), without);
        assert_eq!(without["hazina"]["activity"]["key"], "paid");
    }

    #[test]
    fn values_keep_text_and_bytes_apart() {
        let text = DataValue::String("hello".into());
        assert_eq!(text.to_stored().ok(), Some((b"hello".to_vec(), true)));
        let bytes = DataValue::Bytes("AAEC/w==".into());
        assert_eq!(bytes.to_stored().ok(), Some((vec![0, 1, 2, 255], false)));
        assert_eq!(DataValue::from_stored(vec![0, 1, 2, 255], false), bytes);
        assert_eq!(DataValue::from_stored(vec![0xff], true), DataValue::Bytes("/w==".into()));
        assert!(DataValue::Bytes("not base64!".into()).to_stored().is_err());
        let large = DataValue::String("x".repeat(DATA_BYTES_MAX + 1));
        assert!(matches!(
            large.to_stored(),
            Err(CustomerError::Invalid { code: Code::ValueTooLarge, .. })
        ));
    }
}
