//! The customers' SQL: every statement names the org.

use deadpool_postgres::{GenericClient, Pool};
use hazina_ledger::{CustomerId, OrgId};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::{CustomerError, CustomerNumber};

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

/// Refuses a customer that is not the org's (indistinguishable from a missing one).
pub async fn check(pool: &Pool, org: OrgId, customer: Uuid) -> Result<CustomerId, CustomerError> {
    let client = pool.get().await?;
    client
        .query_opt("SELECT 1 FROM customers WHERE id = $1 AND org_id = $2", &[&customer, &org.0])
        .await?
        .map(|_| CustomerId(customer))
        .ok_or_else(|| CustomerError::NotFound("customer"))
}

/// Locks the org's customer for the rest of the transaction, so that concurrent changes to
/// what it owns are counted against the limits one at a time; refuses it as missing when it
/// is not the org's. (`NO KEY UPDATE` leaves foreign-key checks from other tables free.)
pub async fn lock(
    transaction: &impl GenericClient,
    org: OrgId,
    customer: Uuid,
) -> Result<CustomerId, CustomerError> {
    transaction
        .query_opt(
            "SELECT 1 FROM customers WHERE id = $1 AND org_id = $2 FOR NO KEY UPDATE",
            &[&customer, &org.0],
        )
        .await?
        .map(|_| CustomerId(customer))
        .ok_or_else(|| CustomerError::NotFound("customer"))
}
