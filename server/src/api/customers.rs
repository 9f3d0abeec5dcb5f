//! Customers: created or resolved by customer number or secondary id, and their state.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use hazina_ledger::rules::AccountKind;
use hazina_ledger::{CustomerId, OrgId};
use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Body};
use super::money::WalletView;

/// Longest customer number, secondary id key or value.
pub const IDENTIFIER_LEN_MAX: usize = 256;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/customers", post(create_or_resolve))
        .route("/v1/customers/{customer_id}", get(customer_state))
}

/// How the platform identifies a customer by a number: a phone number, an email address, a
/// Telegram or Facebook handle, an app's own id.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerNumber {
    pub number: String,
    pub provider: Provider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Cellular,
    Email,
    Telegram,
    Facebook,
    App,
}

impl Provider {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cellular => "cellular",
            Self::Email => "email",
            Self::Telegram => "telegram",
            Self::Facebook => "facebook",
            Self::App => "app",
        }
    }
}

impl CustomerNumber {
    /// The number as stored: cellular numbers in E.164 (they must be international, `+…`),
    /// others trimmed; invalid ones refused.
    pub fn normalised(&self) -> Result<Self, ApiError> {
        let number = self.number.trim();
        if number.is_empty() || number.len() > IDENTIFIER_LEN_MAX {
            return Err(ApiError::invalid(
                "invalid_customer_number",
                "the number is empty or too long",
            ));
        }
        let number = match self.provider {
            Provider::Cellular => {
                let parsed = phonenumber::parse(None, number)
                    .ok()
                    .filter(phonenumber::is_valid)
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "invalid_phone_number",
                            "not a valid phone number in international format (+<country><number>)",
                        )
                    })?;
                parsed.format().mode(phonenumber::Mode::E164).to_string()
            }
            Provider::Email => number.to_lowercase(),
            _ => number.to_owned(),
        };
        let partition = self.partition.as_deref().map(str::trim).filter(|p| !p.is_empty());
        if partition.is_some_and(|p| p.len() > IDENTIFIER_LEN_MAX) {
            return Err(ApiError::invalid("invalid_customer_number", "the partition is too long"));
        }
        Ok(Self { number, provider: self.provider, partition: partition.map(str::to_owned) })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecondaryIdRef {
    pub key: String,
    pub value: String,
}

/// Create or resolve: by number (created when new), or by secondary id (resolved only).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerRef {
    pub customer_number: Option<CustomerNumber>,
    pub secondary_id: Option<SecondaryIdRef>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerView {
    pub customer_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub customer_numbers: Vec<CustomerNumber>,
}

async fn create_or_resolve(
    caller: Caller,
    State(state): State<AppState>,
    Body(reference): Body<CustomerRef>,
) -> Result<Response, ApiError> {
    match (reference.customer_number, reference.secondary_id) {
        (Some(number), None) => {
            let (id, created) = by_number(&state.pool, caller.org, &number.normalised()?).await?;
            let view = view(&state.pool, caller.org, id).await?;
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok((status, Json(view)).into_response())
        }
        (None, Some(secondary)) => {
            let client = state.pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT customer_id FROM customer_secondary_ids
                     WHERE org_id = $1 AND key = $2 AND value = $3
                         AND (expires_at IS NULL OR expires_at > now())",
                    &[&caller.org.0, &secondary.key, &secondary.value],
                )
                .await?
                .ok_or_else(|| ApiError::not_found("customer"))?;
            let view = view(&state.pool, caller.org, CustomerId(row.get(0))).await?;
            Ok(Json(view).into_response())
        }
        _ => Err(ApiError::invalid(
            "invalid_customer_reference",
            "give exactly one of customerNumber and secondaryId",
        )),
    }
}

/// The customer with this number, created if there is none; whether it was created.
pub async fn by_number(
    pool: &Pool,
    org: OrgId,
    number: &CustomerNumber,
) -> Result<(CustomerId, bool), ApiError> {
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
    Err(ApiError::unavailable(&std::io::Error::other("customer creation kept conflicting")))
}

/// Refuses a customer that is not the org's (indistinguishable from a missing one).
pub async fn check(pool: &Pool, org: OrgId, customer: Uuid) -> Result<CustomerId, ApiError> {
    let client = pool.get().await?;
    client
        .query_opt("SELECT 1 FROM customers WHERE id = $1 AND org_id = $2", &[&customer, &org.0])
        .await?
        .map(|_| CustomerId(customer))
        .ok_or_else(|| ApiError::not_found("customer"))
}

async fn view(pool: &Pool, org: OrgId, id: CustomerId) -> Result<CustomerView, ApiError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT created_at FROM customers WHERE id = $1 AND org_id = $2",
            &[&id.0, &org.0],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    let numbers = client
        .query(
            "SELECT provider, number, partition FROM customer_numbers
             WHERE customer_id = $1 ORDER BY created_at",
            &[&id.0],
        )
        .await?;
    let customer_numbers = numbers
        .iter()
        .filter_map(|row| {
            let provider: String = row.get(0);
            let provider = serde_json::from_value(serde_json::Value::String(provider)).ok()?;
            let partition: String = row.get(2);
            Some(CustomerNumber {
                number: row.get(1),
                provider,
                partition: (!partition.is_empty()).then_some(partition),
            })
        })
        .collect();
    Ok(CustomerView { customer_id: id.0, created_at: row.get(0), customer_numbers })
}

/// The customer's state: identity and wallets with balances.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerState {
    #[serde(flatten)]
    pub customer: CustomerView,
    pub wallets: Vec<WalletView>,
}

async fn customer_state(
    caller: Caller,
    State(state): State<AppState>,
    Path(customer_id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let customer = view(&state.pool, caller.org, CustomerId(customer_id)).await?;
    let wallets = state
        .store
        .accounts(caller.org, AccountKind::Wallet, Some(CustomerId(customer_id)), None, 1_000)
        .await?
        .iter()
        .map(WalletView::from)
        .collect();
    Ok(Json(CustomerState { customer, wallets }).into_response())
}
