//! Tags across customers: the org's customers with a tag, a page at a time, and a tag added to
//! or removed from a set of customers at once. A set is changed whole or not at all: one
//! customer that is not the org's refuses the request. Every change records its
//! `customer.tag_added` / `customer.tag_removed` events in its transaction (as
//! `data::set_tags` and `data::delete_tag` do). Every statement names the org.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use hazina_ledger::OrgId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{CustomerError, TAGS_MAX, VALUE_LEN_MAX, check_key, check_text, too_many};
use crate::code::Code;
use crate::events::types::TagData;
use crate::events::{self, EventType, NewEvent};

/// Most customers one request tags or untags.
pub const TAGGED_IDS_MAX: usize = 500;

/// The event of a tag set on (`added`) or removed from a customer.
pub(crate) fn tag_event(added: bool, customer: Uuid, key: &str, value: &str) -> NewEvent {
    let kind = if added { EventType::CustomerTagAdded } else { EventType::CustomerTagRemoved };
    NewEvent::of(kind, &TagData { key: key.to_owned(), value: value.to_owned() })
        .customer(Some(customer))
}

/// A customer with the tag.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaggedCustomer {
    pub customer_id: Uuid,
    /// The customer's value of the tag.
    pub value: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A page of the customers with a tag, in id order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaggedCustomers {
    pub customers: Vec<TaggedCustomer>,
    /// The `after` of the next page; none on the last page.
    pub next_after: Option<Uuid>,
}

/// The org's customers with the live tag `key` (and `value`, if given), after the customer id
/// `after`, at most `limit` (1 to 500, checked by the caller).
pub async fn customers(
    pool: &Pool,
    org: OrgId,
    key: &str,
    value: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<TaggedCustomers, CustomerError> {
    check_key(key)?;
    if let Some(value) = value {
        check_text(value, VALUE_LEN_MAX, Code::InvalidValue, "a tag value")?;
    }
    let client = pool.get().await?;
    let after = after.unwrap_or_else(Uuid::nil);
    // One more than a page, to know whether there is a next one.
    let rows = client
        .query(
            "SELECT customer_id, value, expires_at FROM customer_tags
             WHERE org_id = $1 AND key = $2 AND ($3::text IS NULL OR value = $3)
                 AND customer_id > $4 AND (expires_at IS NULL OR expires_at > now())
             ORDER BY customer_id LIMIT $5",
            &[&org.0, &key, &value, &after, &(limit + 1)],
        )
        .await?;
    let mut customers: Vec<TaggedCustomer> = rows
        .iter()
        .map(|row| TaggedCustomer {
            customer_id: row.get(0),
            value: row.get(1),
            expires_at: row.get(2),
        })
        .collect();
    let more = customers.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    if more {
        customers.pop();
    }
    let next_after =
        if more { customers.last().map(|customer| customer.customer_id) } else { None };
    Ok(TaggedCustomers { customers, next_after })
}

/// A tag to set on a set of customers.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "key": "segment",
    "value": "gold",
    "expiresAt": "2030-12-31T21:00:00Z",
    "customerIds": ["0190a5d2-7c1e-7000-8000-000000000001", "0190a5d2-7c1e-7000-8000-000000000002"]
}))]
pub struct TagCustomers {
    #[schema(schema_with = crate::schema::key_text)]
    pub key: String,
    #[schema(schema_with = crate::schema::key_text)]
    pub value: String,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// At most 500; each must be one of the org's customers.
    #[schema(max_items = 500)]
    pub customer_ids: Vec<Uuid>,
}

/// A tag to remove from a set of customers.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "key": "segment",
    "customerIds": ["0190a5d2-7c1e-7000-8000-000000000001"]
}))]
pub struct UntagCustomers {
    #[schema(schema_with = crate::schema::key_text)]
    pub key: String,
    /// At most 500; each must be one of the org's customers.
    #[schema(max_items = 500)]
    pub customer_ids: Vec<Uuid>,
}

/// What a change to a set of customers did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagChange {
    /// The customers whose tag changed: added, given a new value, or removed (each has its
    /// event).
    pub changed: Vec<Uuid>,
}

/// Refuses more customers than a request may name; the distinct ids, in order.
fn distinct(ids: &[Uuid]) -> Result<Vec<Uuid>, CustomerError> {
    if ids.len() > TAGGED_IDS_MAX {
        return Err(CustomerError::invalid(
            Code::TooManyCustomers,
            format!("a request names at most {TAGGED_IDS_MAX} customers"),
        ));
    }
    Ok(ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect())
}

/// Locks the org's customers `ids` (distinct, in order) for the rest of the transaction, or
/// refuses them all when one is not the org's.
async fn lock_all(
    transaction: &impl GenericClient,
    org: OrgId,
    ids: &[Uuid],
) -> Result<(), CustomerError> {
    let locked = transaction
        .query(
            "SELECT id FROM customers WHERE org_id = $1 AND id = ANY($2)
             ORDER BY id FOR NO KEY UPDATE",
            &[&org.0, &ids],
        )
        .await?;
    if locked.len() < ids.len() {
        return Err(CustomerError::NotFound("customer"));
    }
    Ok(())
}

/// Checks what [`tag`] checks before it opens a transaction.
pub fn check_tag_customers(change: &TagCustomers) -> Result<Vec<Uuid>, CustomerError> {
    check_key(&change.key)?;
    check_text(&change.value, VALUE_LEN_MAX, Code::InvalidValue, "a tag value")?;
    distinct(&change.customer_ids)
}

/// Sets the tag on every customer named (a key already there takes the new value and expiry),
/// or on none of them.
pub async fn tag(
    pool: &Pool,
    org: OrgId,
    change: &TagCustomers,
) -> Result<TagChange, CustomerError> {
    let ids = check_tag_customers(change)?;
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    lock_all(&transaction, org, &ids).await?;
    transaction
        .execute(
            "DELETE FROM customer_tags
             WHERE org_id = $1 AND customer_id = ANY($2) AND expires_at <= now()",
            &[&org.0, &ids],
        )
        .await?;
    // What the customers had before: a changed value is an addition too.
    let before = transaction
        .query(
            "SELECT customer_id, value FROM customer_tags
             WHERE org_id = $1 AND customer_id = ANY($2) AND key = $3",
            &[&org.0, &ids, &change.key],
        )
        .await?;
    transaction
        .execute(
            "INSERT INTO customer_tags (org_id, customer_id, key, value, expires_at)
             SELECT $1, id, $3, $4, $5 FROM unnest($2::uuid[]) AS id
             ON CONFLICT (org_id, customer_id, key)
                 DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at",
            &[&org.0, &ids, &change.key, &change.value, &change.expires_at],
        )
        .await?;
    let over = transaction
        .query_opt(
            "SELECT customer_id FROM customer_tags WHERE org_id = $1 AND customer_id = ANY($2)
             GROUP BY customer_id HAVING count(*) > $3 LIMIT 1",
            &[&org.0, &ids, &i64::try_from(TAGS_MAX).unwrap_or(i64::MAX)],
        )
        .await?;
    if over.is_some() {
        return Err(too_many(Code::TooManyTags, "tags", TAGS_MAX));
    }
    let unchanged: BTreeSet<Uuid> = before
        .iter()
        .filter(|row| row.get::<_, &str>(1) == change.value)
        .map(|row| row.get(0))
        .collect();
    let changed: Vec<Uuid> = ids.into_iter().filter(|id| !unchanged.contains(id)).collect();
    let events: Vec<NewEvent> =
        changed.iter().map(|id| tag_event(true, *id, &change.key, &change.value)).collect();
    events::record(&transaction, org, &events).await?;
    transaction.commit().await?;
    Ok(TagChange { changed })
}

/// Checks what [`untag`] checks before it opens a transaction.
pub fn check_untag_customers(change: &UntagCustomers) -> Result<Vec<Uuid>, CustomerError> {
    check_key(&change.key)?;
    distinct(&change.customer_ids)
}

/// Removes the tag from every customer named (one without it is fine), or from none of them.
pub async fn untag(
    pool: &Pool,
    org: OrgId,
    change: &UntagCustomers,
) -> Result<TagChange, CustomerError> {
    let ids = check_untag_customers(change)?;
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    lock_all(&transaction, org, &ids).await?;
    let removed = transaction
        .query(
            "DELETE FROM customer_tags WHERE org_id = $1 AND customer_id = ANY($2) AND key = $3
             RETURNING customer_id, value, expires_at IS NULL OR expires_at > now()",
            &[&org.0, &ids, &change.key],
        )
        .await?;
    // An expired tag was invisible already: removing it tells nothing.
    let mut live: Vec<(Uuid, String)> = removed
        .iter()
        .filter(|row| row.get::<_, bool>(2))
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    live.sort();
    let events: Vec<NewEvent> =
        live.iter().map(|(id, value)| tag_event(false, *id, &change.key, value)).collect();
    events::record(&transaction, org, &events).await?;
    transaction.commit().await?;
    Ok(TagChange { changed: live.into_iter().map(|(id, _)| id).collect() })
}
