//! Finding and making customers (by number, by secondary id, by id), and the checks the other
//! sections start with: every statement names the org.
//!
//! A customer adopted by another (merge.rs) is found by its old id too: every lookup by id
//! follows its alias (`customer_aliases`, one hop) to the customer that adopted it.

use deadpool_postgres::{GenericClient, Pool};
use hazina_ledger::{CustomerId, OrgId};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{CustomerError, CustomerNumber, CustomerView};
use crate::events::{self, EventType, NewEvent, types::CustomerData};

/// The id a customer id resolves to: its own, or that of the customer that adopted it. `$1` is
/// the id, `$2` the org.
pub(super) const RESOLVED_ID: &str = "coalesce((SELECT customer_id FROM customer_aliases
     WHERE org_id = $2 AND old_customer_id = $1), $1)";

/// The customer with this number, if there is one.
pub async fn existing_by_number(
    pool: &Pool,
    org: OrgId,
    number: &CustomerNumber,
) -> Result<Option<CustomerId>, CustomerError> {
    let partition = number.partition.clone().unwrap_or_default();
    let client = pool.get().await?;
    let found = client
        .query_opt(
            "SELECT customer_id FROM customer_numbers
             WHERE org_id = $1 AND provider = $2 AND number = $3 AND partition = $4",
            &[&org.0, &number.provider.as_str(), &number.number, &partition],
        )
        .await?;
    Ok(found.map(|row| CustomerId(row.get(0))))
}

/// The customer with this number, created if there is none; whether it was created.
pub async fn by_number(
    pool: &Pool,
    org: OrgId,
    number: &CustomerNumber,
) -> Result<(CustomerId, bool), CustomerError> {
    let partition = number.partition.clone().unwrap_or_default();
    let mut client = pool.get().await?;
    for _ in 0..3 {
        let found = client
            .query_opt(
                "SELECT customer_id FROM customer_numbers
                 WHERE org_id = $1 AND provider = $2 AND number = $3 AND partition = $4",
                &[&org.0, &number.provider.as_str(), &number.number, &partition],
            )
            .await?;
        if let Some(row) = found {
            return Ok((CustomerId(row.get(0)), false));
        }
        let id = CustomerId::generate();
        let transaction = client.transaction().await?;
        transaction
            .execute("INSERT INTO customers (id, org_id) VALUES ($1, $2)", &[&id.0, &org.0])
            .await?;
        let inserted = transaction
            .execute(
                "INSERT INTO customer_numbers (org_id, provider, number, partition, customer_id)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&org.0, &number.provider.as_str(), &number.number, &partition, &id.0],
            )
            .await;
        match inserted {
            Ok(_) => {
                let created = CustomerData {
                    customer_id: id.0,
                    provider: Some(number.provider.as_str().to_owned()),
                    number: Some(number.number.clone()),
                };
                let event = NewEvent::of(EventType::CustomerCreated, &created).customer(Some(id.0));
                events::record(&transaction, org, &[event]).await?;
                transaction.commit().await?;
                return Ok((id, true));
            }
            // Another request created it first: read theirs.
            Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Err(CustomerError::Conflicting)
}

/// How a request names a customer to find or make.
#[derive(Clone, Copy, Debug)]
pub enum Reference<'a> {
    /// Its number, normalised here; a customer is made for a new one.
    Number(&'a CustomerNumber),
    /// A live secondary id; never makes a customer.
    SecondaryId { key: &'a str, value: &'a str },
}

/// The customer a reference names, made when it is a new number; whether it was made.
pub async fn resolve(
    pool: &Pool,
    org: OrgId,
    reference: Reference<'_>,
) -> Result<(CustomerView, bool), CustomerError> {
    let (id, created) = match reference {
        Reference::Number(number) => by_number(pool, org, &number.normalised()?).await?,
        Reference::SecondaryId { key, value } => {
            (by_secondary_id(pool, org, key, value).await?, false)
        }
    };
    let client = pool.get().await?;
    Ok((customer(&client, org, id).await?, created))
}

/// The customer with a live secondary id; a missing one and one that has expired are alike.
pub async fn by_secondary_id(
    pool: &Pool,
    org: OrgId,
    key: &str,
    value: &str,
) -> Result<CustomerId, CustomerError> {
    // PostgreSQL cannot compare text with a NUL: no customer can have it.
    if key.contains('\0') || value.contains('\0') {
        return Err(CustomerError::NotFound("customer"));
    }
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT customer_id FROM customer_secondary_ids
             WHERE org_id = $1 AND key = $2 AND value = $3
                 AND (expires_at IS NULL OR expires_at > now())",
            &[&org.0, &key, &value],
        )
        .await?
        .ok_or(CustomerError::NotFound("customer"))?;
    Ok(CustomerId(row.get(0)))
}

/// The org's customer with its numbers (the adopting customer's, for an adopted one's id).
pub async fn customer(
    client: &impl GenericClient,
    org: OrgId,
    id: CustomerId,
) -> Result<CustomerView, CustomerError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT created_at, id FROM customers WHERE id = {RESOLVED_ID} AND org_id = $2"
            ),
            &[&id.0, &org.0],
        )
        .await?
        .ok_or(CustomerError::NotFound("customer"))?;
    let id = CustomerId(row.get(1));
    let numbers = client
        .query(
            "SELECT provider, number, partition FROM customer_numbers
             WHERE org_id = $2 AND customer_id = $1 ORDER BY created_at",
            &[&id.0, &org.0],
        )
        .await?;
    let customer_numbers = numbers
        .iter()
        .map(|row| {
            let provider: String = row.get(0);
            let provider = serde_json::from_value(serde_json::Value::String(provider.clone()))
                .map_err(|_| {
                    CustomerError::Corrupt(format!("unknown customer number provider {provider:?}"))
                })?;
            let partition: String = row.get(2);
            Ok(CustomerNumber {
                number: row.get(1),
                provider,
                partition: (!partition.is_empty()).then_some(partition),
            })
        })
        .collect::<Result<_, CustomerError>>()?;
    Ok(CustomerView { customer_id: id.0, created_at: row.get(0), customer_numbers })
}

/// Refuses a customer that is not the org's (indistinguishable from a missing one); the
/// customer's id, or the adopting customer's for an adopted one's.
pub async fn check(pool: &Pool, org: OrgId, customer: Uuid) -> Result<CustomerId, CustomerError> {
    let client = pool.get().await?;
    check_on(&client, org, customer).await
}

/// [`check`] on a client the caller goes on using.
pub(super) async fn check_on(
    client: &impl GenericClient,
    org: OrgId,
    customer: Uuid,
) -> Result<CustomerId, CustomerError> {
    client
        .query_opt(
            &format!("SELECT id FROM customers WHERE id = {RESOLVED_ID} AND org_id = $2"),
            &[&customer, &org.0],
        )
        .await?
        .map(|row| CustomerId(row.get(0)))
        .ok_or_else(|| CustomerError::NotFound("customer"))
}

/// Runs `statement` (a `DELETE` of something the customer owns) once the customer is found to
/// be the org's: `$1` is the org, `$2` the customer, `params` follow. Nothing to delete is
/// fine.
pub(super) async fn remove(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    statement: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(), CustomerError> {
    let client = pool.get().await?;
    let customer = check_on(&client, org, customer.0).await?;
    let mut all: Vec<&(dyn ToSql + Sync)> = vec![&org.0, &customer.0];
    all.extend_from_slice(params);
    client.execute(statement, &all).await?;
    Ok(())
}

/// Locks the org's customer for the rest of the transaction, so that concurrent changes to
/// what it owns are counted against the limits one at a time; refuses it as missing when it
/// is not the org's. (`NO KEY UPDATE` leaves foreign-key checks from other tables free.) An
/// adopted customer's id locks the adopting customer, whose id it returns.
pub async fn lock(
    transaction: &impl GenericClient,
    org: OrgId,
    customer: Uuid,
) -> Result<CustomerId, CustomerError> {
    let statement = format!(
        "SELECT id FROM customers WHERE id = {RESOLVED_ID} AND org_id = $2 FOR NO KEY UPDATE"
    );
    // A merge that adopted the customer while this waited for its lock leaves nothing locked;
    // the alias it committed then names the customer to lock.
    for _ in 0..2 {
        if let Some(row) = transaction.query_opt(&statement, &[&customer, &org.0]).await? {
            return Ok(CustomerId(row.get(0)));
        }
    }
    Err(CustomerError::NotFound("customer"))
}
