//! Purses, wallets, payments between them, transfers and accounts.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hazina_ledger::context::{self, Effects};
use hazina_ledger::rules::{
    AccountKind, Action, LimitPolicy, Outcome, Posting, RejectReason, Side, TransferRequest,
};
use hazina_ledger::store::{Account, Balance, NewAccount};
use hazina_ledger::{AccountId, Currency, CustomerId, Money, TransferId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::page_size;
use crate::app::AppState;
use crate::code::Code;
use crate::customers;
use crate::http::auth::Caller;
use crate::http::problem::{AnnouncedIds, ApiError, Body, PathParams, Problem, QueryParams};
use crate::payments::PaymentStatus;

/// Longest wallet id and narration.
pub const WALLET_ID_LEN_MAX: usize = 100;
pub const NARRATION_LEN_MAX: usize = 500;

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
pub struct Value {
    /// An ISO 4217 code with minor units, e.g. `KES`.
    #[schema(pattern = "^[A-Z]{3}$", example = "KES")]
    pub currency_code: String,
    /// A plain decimal with at most the currency's decimals, e.g. `120.50`; positive for
    /// payments, within 64-bit minor units.
    #[schema(max_length = 40, example = "120.50")]
    pub amount: String,
}

impl Value {
    pub fn of(money: &Money) -> Self {
        Self {
            currency_code: money.currency().code().to_owned(),
            amount: money.amount().to_string(),
        }
    }

    /// The money, refused with a clear code when the currency or amount is wrong.
    pub fn money(&self) -> Result<Money, ApiError> {
        let currency = currency(&self.currency_code)?;
        let money = Money::parse(currency, &self.amount)
            .map_err(|error| ApiError::invalid(Code::InvalidAmount, error.to_string()))?;
        // The ledger keeps amounts as 64-bit minor units.
        money
            .to_minor()
            .map_err(|error| ApiError::invalid(Code::InvalidAmount, error.to_string()))?;
        Ok(money)
    }
}

pub fn currency(code: &str) -> Result<Currency, ApiError> {
    Currency::from_code(code)
        .map_err(|error| ApiError::invalid(Code::InvalidCurrency, error.to_string()))
}

/// Balances as the platform showed them: actual (settled), available, pending.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceView {
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewPurse {
    #[schema(pattern = "^[A-Z]{3}$", example = "KES")]
    pub currency_code: String,
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// How far the purse may go below zero, as a decimal string.
    pub overdraft_limit: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// The last id of the previous page.
    pub cursor: Option<Uuid>,
    /// Items per page, 1 to 500 (default 50).
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
    (status = 201, body = PurseView), (status = 422, body = Problem), (status = 401, body = Problem),
    (status = 403, body = Problem)))]
async fn create_purse(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewPurse>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let currency = currency(&new.currency_code)?;
    let mut account = NewAccount::new(caller.org, AccountKind::Purse, currency);
    if let Some(name) = &new.name {
        if name.trim().is_empty() || name.chars().count() > super::tenancy::NAME_LEN_MAX {
            return Err(ApiError::invalid(
                Code::InvalidName,
                "a purse name has 1 to 100 characters",
            ));
        }
        account.name = Some(name.trim().to_owned());
    }
    if let Some(limit) = &new.overdraft_limit {
        let limit = Money::parse(currency, limit)
            .and_then(|money| money.to_minor())
            .map_err(|error| ApiError::invalid(Code::InvalidAmount, error.to_string()))?;
        if limit < 0 {
            return Err(ApiError::invalid(
                Code::InvalidAmount,
                "an overdraft limit is not negative",
            ));
        }
        account.limit = Some(LimitPolicy::Overdraft(limit));
    }
    let purse = state.store.create_account(&account).await?;
    Ok((StatusCode::CREATED, Json(PurseView::from(&purse))).into_response())
}

/// The org's purses with their balances.
#[utoipa::path(get, path = "/v1/purses", tag = "purses", params(Page), responses(
    (status = 200, body = PurseList), (status = 400, body = Problem), (status = 401, body = Problem)))]
async fn list_purses(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(page): QueryParams<Page>,
) -> Result<Response, ApiError> {
    let limit = page_size(page.limit)?;
    let purses = state
        .store
        .accounts(caller.org, AccountKind::Purse, None, page.cursor.map(AccountId), limit)
        .await?;
    let next = (purses.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| purses.last().map(|p| p.id.0))
        .flatten();
    let purses = purses.iter().map(PurseView::from).collect();
    Ok(Json(PurseList { purses, next_cursor: next }).into_response())
}

pub async fn purse(state: &AppState, caller: &Caller, id: Uuid) -> Result<Account, ApiError> {
    state
        .store
        .account(caller.org, AccountId(id))
        .await?
        .filter(|account| account.kind == AccountKind::Purse)
        .ok_or_else(|| ApiError::not_found("purse"))
}

/// A purse and its balance.
#[utoipa::path(get, path = "/v1/purses/{purse_id}", tag = "purses",
    params(("purse_id" = Uuid, Path)),
    responses((status = 200, body = PurseView), (status = 404, body = Problem), (status = 401, body = Problem)))]
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
pub struct NewWallet {
    /// The app's name for the wallet, unique per customer.
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._-]+$")]
    pub wallet_id: String,
    #[schema(pattern = "^[A-Z]{3}$", example = "KES")]
    pub currency_code: String,
}

fn valid_wallet_id(wallet_id: &str) -> Result<(), ApiError> {
    let ok = !wallet_id.is_empty()
        && wallet_id.len() <= WALLET_ID_LEN_MAX
        && wallet_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            Code::InvalidWalletId,
            "a wallet id has 1 to 100 letters, digits, '-', '_' or '.'",
        ))
    }
}

/// Creates a customer's wallet under an app-chosen `walletId`.
#[utoipa::path(post, path = "/v1/customers/{customer_id}/wallets", tag = "wallets",
    params(("customer_id" = Uuid, Path)), request_body = NewWallet,
    responses((status = 201, body = WalletView), (status = 409, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem), (status = 401, body = Problem)))]
async fn create_wallet(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
    Body(new): Body<NewWallet>,
) -> Result<Response, ApiError> {
    let customer = customers::check(&state.pool, caller.org, customer_id).await?;
    valid_wallet_id(&new.wallet_id)?;
    let mut account =
        NewAccount::new(caller.org, AccountKind::Wallet, currency(&new.currency_code)?);
    account.customer = Some(customer);
    account.wallet_id = Some(new.wallet_id);
    let wallet = state.store.create_account(&account).await?;
    Ok((StatusCode::CREATED, Json(WalletView::from(&wallet))).into_response())
}

/// A customer's wallets with their balances.
#[utoipa::path(get, path = "/v1/customers/{customer_id}/wallets", tag = "wallets",
    params(("customer_id" = Uuid, Path)),
    responses((status = 200, body = WalletList), (status = 404, body = Problem), (status = 401, body = Problem)))]
async fn list_wallets(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    let customer = customers::check(&state.pool, caller.org, customer_id).await?;
    let wallets =
        state.store.accounts(caller.org, AccountKind::Wallet, Some(customer), None, 1_000).await?;
    let wallets = wallets.iter().map(WalletView::from).collect();
    Ok(Json(WalletList { wallets }).into_response())
}

async fn wallet(
    state: &AppState,
    caller: &Caller,
    customer: Uuid,
    wallet_id: &str,
) -> Result<Account, ApiError> {
    let customer = customers::check(&state.pool, caller.org, customer).await?;
    state
        .store
        .wallet(caller.org, customer, wallet_id)
        .await?
        .ok_or_else(|| ApiError::not_found("wallet"))
}

/// A customer's wallet and its balance.
#[utoipa::path(get, path = "/v1/customers/{customer_id}/wallets/{wallet_id}", tag = "wallets",
    params(("customer_id" = Uuid, Path), ("wallet_id" = String, Path)),
    responses((status = 200, body = WalletView), (status = 404, body = Problem), (status = 401, body = Problem)))]
async fn get_wallet(
    caller: Caller,
    State(state): State<AppState>,
    PathParams((customer_id, wallet_id)): PathParams<(Uuid, String)>,
) -> Result<Response, ApiError> {
    let wallet = wallet(&state, &caller, customer_id, &wallet_id).await?;
    Ok(Json(WalletView::from(&wallet)).into_response())
}

/// One side of a payment.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Party {
    Purse {
        #[serde(rename = "purseId")]
        purse_id: Uuid,
    },
    Wallet {
        #[serde(rename = "customerId")]
        customer_id: Uuid,
        #[serde(rename = "walletId")]
        wallet_id: String,
    },
    /// A customer's mobile-money account, reached through one of the org's payment channels:
    /// paying it is a payout (B2C), taking from it a collection (STK push, request to pay).
    Customer {
        #[serde(rename = "customerNumber")]
        customer_number: customers::CustomerNumber,
        /// The channel's number (paybill, shortcode, MoMo account).
        #[serde(rename = "channelNumber")]
        #[schema(min_length = 1, max_length = 64)]
        channel_number: String,
    },
    /// One of the org's payment channels itself: its clearing account, the money held at the
    /// provider (to fund a payout float from a purse, or sweep collections into one).
    Channel {
        #[serde(rename = "channelNumber")]
        #[schema(min_length = 1, max_length = 64)]
        channel_number: String,
    },
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewPayment {
    /// The transaction id to use; a new one when absent. Replaying an id returns the
    /// original result.
    pub transaction_id: Option<Uuid>,
    pub debit_party: Party,
    pub credit_party: Party,
    pub value: Value,
    #[schema(max_length = 500)]
    pub narration: Option<String>,
    /// What the payment carries for a customer, applied with it or not at all.
    pub context: Option<PaymentContext>,
}

/// What a payment carries for a customer: applied in the same transaction as the payment, so
/// all of it happens if the payment succeeds and none of it otherwise.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentContext {
    /// The customer; when absent, the owner of the payment's one wallet party.
    pub customer_id: Option<Uuid>,
    /// The activity that led to the payment (app key), linked to it on the timeline.
    pub activity: Option<customers::NewActivity>,
    /// Metadata keys to set (at most 100).
    #[schema(schema_with = customers::metadata_schema)]
    pub metadata: Option<std::collections::BTreeMap<String, customers::DataValue>>,
    /// The calling app's new data for the customer (app key).
    pub app_data: Option<customers::DataValue>,
}

/// A base64 string of bytes, as the context trigger decodes them.
fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `hazina` context object the database applies with the transfer (migration 0002).
pub async fn context_effects(
    state: &AppState,
    caller: &Caller,
    context: &PaymentContext,
    wallet_customers: &[CustomerId],
) -> Result<Effects, ApiError> {
    let mut effects = Effects::default();
    let wants_customer =
        context.activity.is_some() || context.metadata.is_some() || context.app_data.is_some();
    if !wants_customer {
        return Ok(effects);
    }
    let customer = match (context.customer_id, wallet_customers) {
        (Some(id), _) => customers::check(&state.pool, caller.org, id).await?,
        (None, [only]) => *only,
        (None, _) => {
            return Err(ApiError::invalid(
                Code::CustomerRequired,
                "name the context's customerId: the payment has no single wallet party",
            ));
        }
    };
    if let Some(activity) = &context.activity {
        let app = caller.app_key()?;
        let properties = customers::check_activity(activity)?;
        effects.set_activity(serde_json::json!({
            "id": Uuid::now_v7(), "customer_id": customer.0, "app_id": app,
            "source": activity.source, "session_id": activity.session_id,
            "key": activity.key, "properties": properties,
        }));
    }
    if let Some(metadata) = &context.metadata {
        if metadata.len() > customers::METADATA_KEYS_MAX {
            return Err(ApiError::invalid(
                Code::TooManyMetadataKeys,
                format!("at most {} metadata keys", customers::METADATA_KEYS_MAX),
            ));
        }
        let mut set = serde_json::Map::new();
        for (key, value) in metadata {
            customers::check_key(key)?;
            let (bytes, is_text) = value.to_stored()?;
            set.insert(
                key.clone(),
                serde_json::json!({ "value": base64_of(&bytes), "is_text": is_text }),
            );
        }
        effects.set_metadata(serde_json::json!({ "customer_id": customer.0, "set": set }));
    }
    if let Some(value) = &context.app_data {
        let app = caller.app_key()?;
        let (bytes, is_text) = value.to_stored()?;
        effects.set_app_data(serde_json::json!({
            "customer_id": customer.0, "app_id": app,
            "value": base64_of(&bytes), "is_text": is_text,
        }));
    }
    Ok(effects)
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
    pub value: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narration: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
}

/// What a payment needs of a party's account. None of it ever changes (a closed account is
/// refused by the ledger itself), so it is cached.
#[derive(Clone, Copy, Debug)]
pub struct PartyAccount {
    pub id: AccountId,
    pub currency: Currency,
    pub kind: AccountKind,
}

/// Recently resolved parties, by org and party.
#[derive(Debug, Default)]
pub struct PartyCache {
    entries: std::sync::Mutex<std::collections::HashMap<(Uuid, String), PartyAccount>>,
}

impl PartyCache {
    /// Most parties remembered; past it the cache starts again empty.
    const ENTRIES_MAX: usize = 100_000;

    fn get(&self, key: &(Uuid, String)) -> Option<PartyAccount> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).copied()
    }

    fn put(&self, key: (Uuid, String), account: PartyAccount) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= Self::ENTRIES_MAX {
            entries.clear();
        }
        entries.insert(key, account);
    }
}

pub async fn party_account(
    state: &AppState,
    caller: &Caller,
    party: &Party,
) -> Result<(PartyAccount, Option<CustomerId>), ApiError> {
    let (key, customer) = match party {
        Party::Purse { purse_id } => (format!("purse/{purse_id}"), None),
        Party::Wallet { customer_id, wallet_id } => {
            (format!("wallet/{customer_id}/{wallet_id}"), Some(CustomerId(*customer_id)))
        }
        Party::Channel { channel_number } => (format!("channel/{channel_number}"), None),
        Party::Customer { .. } => {
            return Err(ApiError::invalid(
                Code::InvalidCounterParty,
                "a customer's mobile money pays or is paid by a purse or a wallet",
            ));
        }
    };
    let key = (caller.org.0, key);
    if let Some(account) = state.parties.get(&key) {
        return Ok((account, customer));
    }
    let (account, customer) = resolve_party(state, caller, party).await?;
    let account = PartyAccount { id: account.id, currency: account.currency, kind: account.kind };
    state.parties.put(key, account);
    Ok((account, customer))
}

async fn resolve_party(
    state: &AppState,
    caller: &Caller,
    party: &Party,
) -> Result<(Account, Option<CustomerId>), ApiError> {
    match party {
        Party::Purse { purse_id } => Ok((purse(state, caller, *purse_id).await?, None)),
        Party::Wallet { customer_id, wallet_id } => {
            let wallet = wallet(state, caller, *customer_id, wallet_id).await?;
            Ok((wallet, Some(CustomerId(*customer_id))))
        }
        Party::Channel { channel_number } => {
            let channel =
                state.payments.channel_by_number(caller.org, channel_number).await?.ok_or_else(
                    || ApiError::invalid(Code::InvalidChannelNumber, "the org has no such channel"),
                )?;
            let account = state
                .store
                .account(caller.org, channel.clearing)
                .await?
                .ok_or_else(|| ApiError::not_found("channel"))?;
            Ok((account, None))
        }
        Party::Customer { .. } => Err(ApiError::invalid(
            Code::InvalidCounterParty,
            "a customer's mobile money pays or is paid by a purse or a wallet",
        )),
    }
}

/// Moves money from the debit party to the credit party. Between purses, wallets and channels
/// it settles at once: `201` with status `success`, or `422` with the platform's status
/// (`insufficient_funds`, `invalid_purse`, …) and the ledger's reason. With a `customer` party
/// it goes through the channel's provider: the money is reserved first, and the answer is
/// `202` with status `pending_confirmation` (or `queued`) until the provider settles it; follow
/// it at `GET /v1/payments/{transaction_id}`. A replayed `transactionId` returns the original
/// result.
#[utoipa::path(post, path = "/v1/payments", tag = "payments", request_body = NewPayment,
    responses((status = 201, body = PaymentResult),
        (status = 202, description = "Sent to the provider; not settled yet", body = super::payments::PaymentView),
        (status = 422, description = "Not made (the platform's status and the ledger's reason), or an invalid request",
            content((PaymentResult = "application/json"), (Problem = "application/problem+json"))),
        (status = 404, body = Problem), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 503, body = Problem)))]
async fn create_payment(
    caller: Caller,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    announced: Option<axum::Extension<AnnouncedIds>>,
    Body(payment): Body<NewPayment>,
) -> Result<Response, ApiError> {
    let amount = payment.value.money()?;
    if !amount.is_positive() {
        return Err(ApiError::invalid(Code::InvalidAmount, "the amount must be positive"));
    }
    if payment.narration.as_ref().is_some_and(|n| n.chars().count() > NARRATION_LEN_MAX) {
        return Err(ApiError::invalid(
            Code::InvalidNarration,
            "a narration has at most 500 characters",
        ));
    }
    if matches!(payment.debit_party, Party::Customer { .. })
        || matches!(payment.credit_party, Party::Customer { .. })
    {
        let announced = announced.as_deref();
        return super::payments::create(&state, &caller, &headers, announced, payment, amount)
            .await;
    }
    let (debit, debit_customer) = party_account(&state, &caller, &payment.debit_party).await?;
    let (credit, credit_customer) = party_account(&state, &caller, &payment.credit_party).await?;
    if debit.kind == AccountKind::Channel {
        check_treasury(&state, &caller, &[(debit.id, amount)]).await?;
    }
    check_accounts(&debit, &credit, amount)?;
    let given =
        payment.transaction_id.or_else(|| crate::http::idempotency::derived_id(&caller, &headers));
    let id = given.map_or_else(TransferId::generate, TransferId);
    let wallet_customers: Vec<CustomerId> =
        [debit_customer, credit_customer].into_iter().flatten().collect();
    let effects = match &payment.context {
        Some(context) => context_effects(&state, &caller, context, &wallet_customers).await?,
        None => Effects::default(),
    };
    let mut context = serde_json::Map::new();
    context.insert(
        "payment".into(),
        serde_json::json!({
            "debitParty": payment.debit_party,
            "creditParty": payment.credit_party,
            "narration": payment.narration,
            "appId": caller.app,
        }),
    );
    context.insert(context::HAZINA.into(), effects.into_hazina(wallet_customers));
    let request = TransferRequest {
        id,
        id_is_new: given.is_none(),
        org: caller.org,
        action: Action::Post {
            postings: vec![
                Posting { account: debit.id, side: Side::Debit, amount },
                Posting { account: credit.id, side: Side::Credit, amount },
            ],
        },
        code: "payment".into(),
        effective_at: None,
        context: context.into(),
    };
    // Whatever goes wrong from here, the answer names the id: a retry under it is a replay.
    AnnouncedIds::transaction(announced.as_deref(), id.0);
    let outcome = submit(&state, request).await.map_err(|e| e.with_transaction_id(id.0))?;
    let (reason, created_at) = match &outcome {
        Outcome::Accepted { transfer, .. } => (None, Some(transfer.created_at)),
        Outcome::Rejected(reason) => (Some(*reason), None),
    };
    let result = PaymentResult {
        transaction_id: id.0,
        status: PaymentStatus::of_outcome(reason),
        reason: reason.map(RejectReason::code),
        debit_party: payment.debit_party,
        credit_party: payment.credit_party,
        value: Value::of(&amount),
        narration: payment.narration,
        created_at,
    };
    let status =
        if reason.is_none() { StatusCode::CREATED } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, Json(result)).into_response())
}

/// Refuses a payment between one account and itself, or in another currency than either's.
fn check_accounts(
    debit: &PartyAccount,
    credit: &PartyAccount,
    amount: Money,
) -> Result<(), ApiError> {
    if debit.id == credit.id {
        return Err(ApiError::invalid(
            Code::InvalidCounterParty,
            "the two parties are the same account",
        ));
    }
    for account in [debit, credit] {
        if account.currency != amount.currency() {
            return Err(ApiError::invalid(
                Code::CurrencyMismatch,
                format!(
                    "the {} account holds {}, not {}",
                    account.kind.as_str(),
                    account.currency.code(),
                    amount.currency().code()
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses moving money out of a channel's clearing account (the money the provider holds for
/// the org) unless an org key does it, within the channel's treasury limit: an app could
/// otherwise credit any wallet with money that exists nowhere, then pay it out.
///
/// `debits` are the accounts a transfer debits with the amounts; those that are no clearing
/// account pass.
///
/// # Errors
///
/// 403 `clearing_account_forbidden` for an app key; 422 `treasury_limit_exceeded` over the
/// channel's limit.
pub async fn check_treasury(
    state: &AppState,
    caller: &Caller,
    debits: &[(AccountId, Money)],
) -> Result<(), ApiError> {
    let accounts: Vec<AccountId> = debits.iter().map(|(account, _)| *account).collect();
    let limits = state.payments.treasury_limits(caller.org, &accounts).await?;
    for (account, amount) in debits {
        let Some(limit) = limits.get(account) else { continue };
        if caller.app.is_some() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                Code::ClearingAccountForbidden,
                "moving money out of a channel's clearing account is a treasury operation for \
                 an org key",
            ));
        }
        if amount.currency() == limit.currency() && amount.amount() > limit.amount() {
            return Err(ApiError::invalid(
                Code::TreasuryLimitExceeded,
                format!(
                    "the channel's treasury limit is {} {} per transfer out of its clearing \
                     account",
                    limit.amount(),
                    limit.currency().code()
                ),
            ));
        }
    }
    Ok(())
}

/// Submits through the pipeline; overload is a 503 with `Retry-After`.
pub async fn submit(state: &AppState, request: TransferRequest) -> Result<Outcome, ApiError> {
    Ok(state.pipeline.submit(request).await?)
}

/// A ledger transfer: its legs, kind, times and context (for an app key, without the app data
/// other apps wrote).
#[utoipa::path(get, path = "/v1/transfers/{transfer_id}", tag = "transfers",
    params(("transfer_id" = Uuid, Path)),
    responses((status = 200, body = TransferView), (status = 404, body = Problem), (status = 401, body = Problem)))]
async fn get_transfer(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(transfer_id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    let transfer = state
        .store
        .transfer(caller.org, TransferId(transfer_id))
        .await?
        .ok_or_else(|| ApiError::not_found("transfer"))?;
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
    responses((status = 200, body = AccountView), (status = 404, body = Problem), (status = 400, body = Problem),
        (status = 401, body = Problem)))]
async fn get_account(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(account_id): PathParams<Uuid>,
    QueryParams(query): QueryParams<AtQuery>,
) -> Result<Response, ApiError> {
    let account = state
        .store
        .account(caller.org, AccountId(account_id))
        .await?
        .ok_or_else(|| ApiError::not_found("account"))?;
    let balance = match query.at {
        None => BalanceView::of(&account.balance(), account.version),
        Some(at) => {
            let balance = state.store.balance_at(caller.org, account.id, at).await?;
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
