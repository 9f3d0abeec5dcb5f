//! The numbers a customer holds: several, of any provider, each finding the customer (by
//! `resolve` and the payments that name it); one number belongs to one customer of the org.

use deadpool_postgres::Pool;
use hazina_ledger::{CustomerId, OrgId};

use super::store::{customer as view, lock, remove};
use super::{CUSTOMER_NUMBERS_MAX, CustomerError, CustomerNumber, CustomerView, too_many};
use crate::code::Code;

/// Gives the customer a number; whether it was new to the customer (one it already holds is
/// fine). The customer with its numbers after the change.
///
/// # Errors
///
/// `NotFound` for another org's customer; `Invalid` for a number that is not one
/// (`invalid_customer_number`, `invalid_phone_number`) or one too many
/// (`too_many_customer_numbers`); `Conflict` (`customer_number_taken`) when another customer
/// holds it, and then nothing changes.
pub async fn add(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    number: &CustomerNumber,
) -> Result<(CustomerView, bool), CustomerError> {
    let number = number.normalised()?;
    let partition = number.partition.clone().unwrap_or_default();
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let customer = lock(&transaction, org, customer.0).await?;
    let inserted = transaction
        .execute(
            "INSERT INTO customer_numbers (org_id, provider, number, partition, customer_id)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[&org.0, &number.provider.as_str(), &number.number, &partition, &customer.0],
        )
        .await?;
    if inserted == 0 {
        let holder: Option<uuid::Uuid> = transaction
            .query_opt(
                "SELECT customer_id FROM customer_numbers
                 WHERE org_id = $1 AND provider = $2 AND number = $3 AND partition = $4",
                &[&org.0, &number.provider.as_str(), &number.number, &partition],
            )
            .await?
            .map(|row| row.get(0));
        // Gone between the two statements (removed by another request): it can be added again.
        if holder.is_some_and(|holder| holder != customer.0) {
            return Err(CustomerError::conflict(
                Code::CustomerNumberTaken,
                "another customer holds this number",
            ));
        }
        if holder.is_none() {
            return Err(CustomerError::Conflicting);
        }
    }
    let found = view(&transaction, org, customer).await?;
    if inserted > 0 && found.customer_numbers.len() > CUSTOMER_NUMBERS_MAX {
        return Err(too_many(Code::TooManyCustomerNumbers, "numbers", CUSTOMER_NUMBERS_MAX));
    }
    transaction.commit().await?;
    Ok((found, inserted > 0))
}

/// Takes a number from the customer (nothing to remove is fine, and so is another customer's
/// number, which stays theirs). The customer keeps its other numbers, if any; with none it is
/// still found by its id and secondary ids.
///
/// # Errors
///
/// `NotFound` for another org's customer; `Invalid` for a number that is not one.
pub async fn delete(
    pool: &Pool,
    org: OrgId,
    customer: CustomerId,
    number: &CustomerNumber,
) -> Result<(), CustomerError> {
    let number = number.normalised()?;
    let partition = number.partition.clone().unwrap_or_default();
    remove(
        pool,
        org,
        customer,
        "DELETE FROM customer_numbers
         WHERE org_id = $1 AND customer_id = $2 AND provider = $3 AND number = $4
             AND partition = $5",
        &[&number.provider.as_str(), &number.number, &partition],
    )
    .await
}
