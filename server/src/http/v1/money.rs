//! Purses, wallets, payments between them, transfers and accounts over HTTP: handlers over the
//! money service (`crate::money`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hazina_ledger::context::Effects;
use hazina_ledger::rules::{LimitPolicy, Outcome, RejectReason};
use hazina_ledger::store::{Account, Balance};
use hazina_ledger::{Currency, Money};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::page_size;
use super::payments::payment_failed;
use crate::customers;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::{AnnouncedIds, ApiError, Body, PathParams, QueryParams, legacy_refusal};
pub use crate::money::Party;
use crate::money::{self, NewLedgerPayment, PaymentContext};
use crate::payments::PaymentStatus;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_purses, create_purse))
        .routes(routes!(get_purse))
        .routes(routes!(list_wallets, create_wallet))
        .routes(routes!(get_wallet))
        .routes(routes!(create_payment))
        .routes(routes!(get_transfer))
        .routes(routes!(get_account))
}

/// An amount in a currency, as the platform wrote it (`currencyCode`), with the amount a
/// decimal string.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoneyValue {
    /// An ISO 4217 code with minor units, e.g. `KES`.
    #[schema(value_type = CurrencyCode, example = "KES")]
    pub currency_code: String,
    /// A plain decimal with at most the currency's decimals, e.g. `120.50`; positive for
    /// payments, within 64-bit minor units.
    #[schema(max_length = 40, pattern = r"^[0-9]+(\.[0-9]+)?$", example = "120.50")]
    pub amount: String,
}

impl MoneyValue {
    pub fn of(money: &Money) -> Self {
        Self {
            currency_code: money.currency().code().to_owned(),
            amount: money.amount().to_string(),
        }
    }

    /// The money, refused with a clear code when the currency or amount is wrong.
    pub fn money(&self) -> Result<Money, ApiError> {
        Ok(money::amount(&self.currency_code, &self.amount)?)
    }
}

pub fn currency(code: &str) -> Result<Currency, ApiError> {
    Ok(money::currency(code)?)
}

/// Balances as the platform showed them: actual (settled), available, pending.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceView {
    #[schema(value_type = CurrencyCode)]
    pub currency_code: &'static str,
    pub actual: String,
    pub available: String,
    pub pending: String,
    /// How many entries the account has: increases with every change.
    pub sequence: i64,
}

impl BalanceView {
    pub fn of(balance: &Balance, sequence: i64) -> Self {
        Self {
            currency_code: balance.currency.code(),
            actual: balance.posted.amount().to_string(),
            available: balance.available.amount().to_string(),
            pending: balance.pending.amount().to_string(),
            sequence,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurseView {
    pub purse_id: Uuid,
    pub name: Option<String>,
    pub overdraft_limit: Option<String>,
    pub balance: BalanceView,
    pub created_at: DateTime<Utc>,
}

impl From<&Account> for PurseView {
    fn from(account: &Account) -> Self {
        let overdraft = match account.limit {
            LimitPolicy::Overdraft(minor) => {
                Some(Money::from_minor(account.currency, minor).amount().to_string())
            }
            _ => None,
        };
        Self {
            purse_id: account.id.0,
            name: account.name.clone(),
            overdraft_limit: overdraft,
            balance: BalanceView::of(&account.balance(), account.version),
            created_at: account.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletView {
    pub wallet_id: String,
    pub customer_id: Uuid,
    pub account_id: Uuid,
    pub balance: BalanceView,
    pub created_at: DateTime<Utc>,
}

impl From<&Account> for WalletView {
    fn from(account: &Account) -> Self {
        Self {
            wallet_id: account.wallet_id.clone().unwrap_or_default(),
            customer_id: account.customer.map(|c| c.0).unwrap_or_default(),
            account_id: account.id.0,
            balance: BalanceView::of(&account.balance(), account.version),
            created_at: account.created_at,
        }
    }
}

/// The document's name for an ISO 4217 currency code: every code the ledger accepts (those
/// with a minor unit), listed, so that a generator makes them a type and a well-formed code
/// outside the standard is refused by the document before the server.
#[derive(Debug)]
pub struct CurrencyCode;

impl utoipa::PartialSchema for CurrencyCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(Currency::all().map(Currency::code)))
            .description(Some("An ISO 4217 currency code, such as `KES`."))
            .into()
    }
}

impl utoipa::ToSchema for CurrencyCode {}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"currencyCode": "KES", "name": "float", "overdraftLimit": "5000.00"}))]
pub struct NewPurse {
    #[schema(value_type = CurrencyCode, example = "KES")]
    pub currency_code: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub name: Option<String>,
    /// How far the purse may go below zero, as a decimal string.
    #[schema(max_length = 40, pattern = r"^[0-9]+(\.[0-9]+)?$", example = "1000")]
    pub overdraft_limit: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// The last id of the previous page.
    pub cursor: Option<Uuid>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurseList {
    pub purses: Vec<PurseView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WalletList {
    pub wallets: Vec<WalletView>,
}

/// An account and its balance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub account_id: Uuid,
    pub kind: &'static str,
    pub name: Option<String>,
    pub customer_id: Option<Uuid>,
    pub wallet_id: Option<String>,
    pub closed: bool,
    pub balance: BalanceView,
    pub created_at: DateTime<Utc>,
}

/// Creates a purse: an org-owned balance in one currency (org key).
#[utoipa::path(post, path = "/v1/purses", tag = "purses", request_body = NewPurse, responses(
    (status = 201, body = PurseView)))]
async fn create_purse(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewPurse>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let purse = state
        .money
        .create_purse(
            caller.org,
            &new.currency_code,
            new.name.as_deref(),
            new.overdraft_limit.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(PurseView::from(&purse))).into_response())
}

/// The org's purses with their balances.
#[utoipa::path(get, path = "/v1/purses", tag = "purses", params(Page), responses(
    (status = 200, body = PurseList)))]
async fn list_purses(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(page): QueryParams<Page>,
) -> Result<Response, ApiError> {
    let limit = page_size(page.limit)?;
    let purses = state.money.purses(caller.org, page.cursor, limit).await?;
    let next = (purses.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| purses.last().map(|p| p.id.0))
        .flatten();
    let purses = purses.iter().map(PurseView::from).collect();
    Ok(Json(PurseList { purses, next_cursor: next }).into_response())
}

/// A purse of the caller's org.
pub async fn purse(state: &AppState, caller: &Caller, id: Uuid) -> Result<Account, ApiError> {
    Ok(state.money.purse(caller.org, id).await?)
}

/// A purse and its balance.
#[utoipa::path(get, path = "/v1/purses/{purse_id}", tag = "purses",
    params(("purse_id" = Uuid, Path)),
    responses((status = 200, body = PurseView)))]
async fn get_purse(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(purse_id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    let purse = purse(&state, &caller, purse_id).await?;
    Ok(Json(PurseView::from(&purse)).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"walletId": "main", "currencyCode": "KES"}))]
pub struct NewWallet {
    /// The app's name for the wallet, unique per customer.
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._-]+$")]
    pub wallet_id: String,
    #[schema(value_type = CurrencyCode, example = "KES")]
    pub currency_code: String,
}

/// Creates a customer's wallet under an app-chosen `walletId`.
#[utoipa::path(post, path = "/v1/customers/{customer_id}/wallets", tag = "wallets",
    params(("customer_id" = Uuid, Path)), request_body = NewWallet,
    responses((status = 201, body = WalletView)))]
async fn create_wallet(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
    Body(new): Body<NewWallet>,
) -> Result<Response, ApiError> {
    let wallet = state
        .money
        .create_wallet(caller.org, customer_id, &new.wallet_id, &new.currency_code)
        .await?;
    Ok((StatusCode::CREATED, Json(WalletView::from(&wallet))).into_response())
}

/// A customer's wallets with their balances.
#[utoipa::path(get, path = "/v1/customers/{customer_id}/wallets", tag = "wallets",
    params(("customer_id" = Uuid, Path)),
    responses((status = 200, body = WalletList)))]
async fn list_wallets(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    let wallets = state.money.wallets(caller.org, customer_id).await?;
    let wallets = wallets.iter().map(WalletView::from).collect();
    Ok(Json(WalletList { wallets }).into_response())
}

/// A customer's wallet and its balance.
#[utoipa::path(get, path = "/v1/customers/{customer_id}/wallets/{wallet_id}", tag = "wallets",
    params(("customer_id" = Uuid, Path),
        ("wallet_id" = String, Path, min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._-]+$")),
    responses((status = 200, body = WalletView)))]
async fn get_wallet(
    caller: Caller,
    State(state): State<AppState>,
    PathParams((customer_id, wallet_id)): PathParams<(Uuid, String)>,
) -> Result<Response, ApiError> {
    let wallet = state.money.wallet(caller.org, customer_id, &wallet_id).await?;
    Ok(Json(WalletView::from(&wallet)).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewPayment {
    /// The transaction id to use; a new one when absent. Replaying an id returns the
    /// original result.
    pub transaction_id: Option<Uuid>,
    pub debit_party: Party,
    pub credit_party: Party,
    pub value: MoneyValue,
    #[schema(max_length = 500)]
    pub narration: Option<String>,
    /// What the payment carries for a customer, applied with it or not at all.
    pub context: Option<PaymentContext>,
}

/// A payment's result in the platform's words.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResult {
    pub transaction_id: Uuid,
    pub status: PaymentStatus,
    /// The ledger's reason when the payment was not made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    pub debit_party: Party,
    pub credit_party: Party,
    pub value: MoneyValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narration: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
}

/// Moves money from the debit party to the credit party. Between purses, wallets and channels
/// it settles at once: `201` with status `success`, or, when not made, `409` with the problem
/// `payment_failed`, whose `paymentStatus` is the platform's status (`insufficient_funds`,
/// `invalid_purse`, …) and `reason` the ledger's. With a `customer` party it goes through the
/// channel's provider: the money is reserved first, and the answer is `202` with status
/// `pending_confirmation` (or `queued`) until the provider settles it; follow it at
/// `GET /v1/payments/{transaction_id}`. A replayed `transactionId` returns the original
/// result.
///
/// Deprecated, for this release only: the request header `Hazina-Refusal: body` answers a
/// payment not made as the previous release did, `422` with this operation's `201` body.
#[utoipa::path(post, path = "/v1/payments", tag = "payments",
    request_body(content = NewPayment, examples(
        ("purseToWallet" = (
            summary = "From the org's float purse to a customer's wallet, settled at once",
            value = json!({
                "debitParty": {"purse": {"purseId": "0192a3b4-e7f8-7a09-b1c2-d3e4f5a6b7c8"}},
                "creditParty": {"wallet": {
                    "customerId": "0192a3b4-d1e2-7f30-8a41-b52c63d74e85",
                    "walletId": "main"
                }},
                "value": {"currencyCode": "KES", "amount": "1500.00"},
                "narration": "Cashback on order 10452"
            }),
        )),
        ("collectIntoWallet" = (
            summary = "From a customer's M-Pesa into their wallet (an STK push through channel \
                600000), with the checkout that led to it",
            value = json!({
                "debitParty": {"customer": {
                    "customerNumber": {"number": "+254712345678", "provider": "cellular"},
                    "channelNumber": "600000"
                }},
                "creditParty": {"wallet": {
                    "customerId": "0192a3b4-d1e2-7f30-8a41-b52c63d74e85",
                    "walletId": "main"
                }},
                "value": {"currencyCode": "KES", "amount": "1200.00"},
                "narration": "Top-up for order 10452",
                "context": {
                    "activity": {"source": "web-shop", "sessionId": "s1", "key": "checkout"}
                }
            }),
        )),
        ("payoutToMpesa" = (
            summary = "From the float purse to a customer's M-Pesa: a B2C payout through \
                channel 600000",
            value = json!({
                "debitParty": {"purse": {"purseId": "0192a3b4-e7f8-7a09-b1c2-d3e4f5a6b7c8"}},
                "creditParty": {"customer": {
                    "customerNumber": {"number": "+254712345678", "provider": "cellular"},
                    "channelNumber": "600000"
                }},
                "value": {"currencyCode": "KES", "amount": "2500.00"},
                "narration": "Refund of order 10452"
            }),
        )),
        ("fundChannel" = (
            summary = "From the float purse to channel 600000's clearing account, to fund payouts",
            value = json!({
                "debitParty": {"purse": {"purseId": "0192a3b4-e7f8-7a09-b1c2-d3e4f5a6b7c8"}},
                "creditParty": {"channel": {"channelNumber": "600000"}},
                "value": {"currencyCode": "KES", "amount": "100000.00"},
                "narration": "Payout float for December"
            }),
        )),
    )),
    responses((status = 201, body = PaymentResult),
        (status = 202, description = "Sent to the provider; not settled yet", body = super::payments::PaymentView)))]
async fn create_payment(
    caller: Caller,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    announced: Option<axum::Extension<AnnouncedIds>>,
    Body(payment): Body<NewPayment>,
) -> Result<Response, ApiError> {
    let amount = payment.value.money()?;
    money::check_payment(amount, payment.narration.as_deref())?;
    if matches!(payment.debit_party, Party::Customer(_))
        || matches!(payment.credit_party, Party::Customer(_))
    {
        let announced = announced.as_deref();
        return super::payments::create(&state, &caller, &headers, announced, payment, amount)
            .await;
    }
    let new = NewLedgerPayment {
        org: caller.org,
        app: caller.app,
        transaction_id: payment
            .transaction_id
            .or_else(|| crate::http::idempotency::derived_id(&caller, &headers)),
        debit_party: &payment.debit_party,
        credit_party: &payment.credit_party,
        amount,
        narration: payment.narration.as_deref(),
        message_id: payment.context.as_ref().and_then(|context| context.message_id),
    };
    let accounts = state.money.payment_accounts(&new).await?;
    let effects = match &payment.context {
        Some(context) => {
            money::context_effects(
                &state.pool,
                caller.org,
                caller.app,
                context,
                &accounts.wallet_customers,
            )
            .await?
        }
        None => Effects::default(),
    };
    let request = new.request(&accounts, effects);
    let id = request.id;
    // Whatever goes wrong from here, the answer names the id: a retry under it is a replay.
    AnnouncedIds::transaction(announced.as_deref(), id.0);
    let outcome = state
        .money
        .submit(request)
        .await
        .map_err(|error| ApiError::from(error).with_transaction_id(id.0))?;
    let (reason, created_at) = match &outcome {
        Outcome::Accepted { transfer, .. } => (None, Some(transfer.created_at)),
        Outcome::Rejected(reason) if !legacy_refusal(&headers) => {
            let status = PaymentStatus::of_outcome(Some(*reason));
            return Err(payment_failed(id.0, status, Some(reason.code())));
        }
        Outcome::Rejected(reason) => (Some(*reason), None),
    };
    let result = PaymentResult {
        transaction_id: id.0,
        status: PaymentStatus::of_outcome(reason),
        reason: reason.map(RejectReason::code),
        debit_party: payment.debit_party,
        credit_party: payment.credit_party,
        value: MoneyValue::of(&amount),
        narration: payment.narration,
        created_at,
    };
    let status =
        if reason.is_none() { StatusCode::CREATED } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, Json(result)).into_response())
}

/// A ledger transfer: its legs, kind, times and context (for an app key, without the app data
/// other apps wrote).
#[utoipa::path(get, path = "/v1/transfers/{transfer_id}", tag = "transfers",
    params(("transfer_id" = Uuid, Path)),
    responses((status = 200, body = TransferView)))]
async fn get_transfer(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(transfer_id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    let transfer = state.money.transfer(caller.org, transfer_id).await?;
    let mut view = TransferView::from(&transfer);
    customers::hide_other_apps_data(&mut view.context, caller.app);
    Ok(Json(view).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AtQuery {
    /// The balance as recorded at this time (RFC 3339) instead of now.
    pub at: Option<DateTime<Utc>>,
}

/// Any account of the org (purse, wallet, …) and its balance, now or `at` a time.
#[utoipa::path(get, path = "/v1/accounts/{account_id}", tag = "accounts",
    params(("account_id" = Uuid, Path), AtQuery),
    responses((status = 200, body = AccountView)))]
async fn get_account(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(account_id): PathParams<Uuid>,
    QueryParams(query): QueryParams<AtQuery>,
) -> Result<Response, ApiError> {
    let account = state.money.account(caller.org, account_id).await?;
    let balance = match query.at {
        None => BalanceView::of(&account.balance(), account.version),
        Some(at) => {
            let balance = state.money.balance_at(caller.org, account.id, at).await?;
            BalanceView::of(&balance, 0)
        }
    };
    Ok(Json(serde_json::json!({
        "accountId": account.id.0,
        "kind": account.kind.as_str(),
        "name": account.name,
        "customerId": account.customer.map(|c| c.0),
        "walletId": account.wallet_id,
        "closed": account.closed,
        "balance": balance,
        "createdAt": account.created_at,
    }))
    .into_response())
}

/// A transfer as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferView {
    pub transfer_id: Uuid,
    pub kind: &'static str,
    pub code: String,
    pub legs: Vec<LegView>,
    pub pending_id: Option<Uuid>,
    pub reversal_of: Option<Uuid>,
    pub timeout_ms: Option<u64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub effective_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub context: serde_json::Map<String, serde_json::Value>,
    /// The ledger's reason when the request was rejected (and recorded).
    pub rejection: Option<&'static str>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegView {
    pub account_id: Uuid,
    pub side: &'static str,
    #[schema(value_type = CurrencyCode)]
    pub currency_code: &'static str,
    pub amount: String,
}

impl From<&hazina_ledger::rules::Transfer> for TransferView {
    fn from(transfer: &hazina_ledger::rules::Transfer) -> Self {
        Self {
            transfer_id: transfer.id.0,
            kind: transfer.kind.as_str(),
            code: transfer.code.clone(),
            legs: transfer
                .postings
                .iter()
                .map(|posting| LegView {
                    account_id: posting.account.0,
                    side: posting.side.as_str(),
                    currency_code: posting.amount.currency().code(),
                    amount: posting.amount.amount().to_string(),
                })
                .collect(),
            pending_id: transfer.pending_id.map(|id| id.0),
            reversal_of: transfer.reversal_of.map(|id| id.0),
            timeout_ms: transfer.timeout_ms,
            expires_at: transfer.expires_at,
            effective_at: transfer.effective_at,
            created_at: transfer.created_at,
            context: transfer.context.as_ref().clone(),
            rejection: transfer.rejection.map(RejectReason::code),
        }
    }
}
