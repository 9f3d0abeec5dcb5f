//! Customers: created or resolved by customer number or secondary id; what the org knows about
//! them (tags, secondary ids, metadata); what each app keeps for them (app data with its
//! lease, reminders); their activity; and their state and timeline.
//!
//! Tags, secondary ids and metadata belong to the org: any key of the org reads and changes
//! them. App data and reminders belong to one app: only that app's keys see them. Activities
//! are recorded by an app and read by the whole org. An expired tag or secondary id is
//! invisible everywhere, and an expired secondary id can be claimed by another customer.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use hazina_ledger::rules::{AccountKind, RejectReason, Transfer};
use hazina_ledger::{CustomerId, OrgId, TransferId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::money::WalletView;
use super::page_size;
use crate::app::AppState;
use crate::code::Code;
use crate::customers::activities;
pub use crate::customers::activities::{Activity, ActivitySession, NewActivity, check_activity};
pub use crate::customers::data::{
    AppData, DataValue, SecondaryId, Tag, hide_other_apps_data, metadata_schema,
};
use crate::customers::reminders::{self, NewReminder, Reminder};
use crate::customers::{self, CustomerView, data};
pub use crate::customers::{
    ACTIVITY_SESSIONS_MAX, APP_DATA_LEASE_SECONDS, CustomerNumber, DATA_BYTES_MAX, KEY_LEN_MAX,
    METADATA_KEYS_MAX, PROPERTIES_MAX, PROPERTY_VALUE_LEN_MAX, RECENT_ACTIVITIES_MAX,
    RECENT_PAYMENTS_MAX, REMINDER_INTERVAL_SECONDS_MAX, REMINDER_PAYLOAD_LEN_MAX, REMINDERS_MAX,
    SECONDARY_IDS_MAX, TAGS_MAX, VALUE_LEN_MAX, by_number, check, check_key, check_text, lock,
    too_many,
};
use crate::http::auth::Caller;
use crate::http::problem::{ApiError, Body, PathParams, Problem, QueryParams};
use crate::payments::PaymentStatus;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_or_resolve))
        .routes(routes!(customer_state))
        .routes(routes!(update_tags))
        .routes(routes!(delete_tag))
        .routes(routes!(update_secondary_ids))
        .routes(routes!(delete_secondary_id))
        .routes(routes!(update_metadata))
        .routes(routes!(delete_metadata))
        .routes(routes!(update_app_data, delete_app_data))
        .routes(routes!(lease_app_data))
        .routes(routes!(list_reminders))
        .routes(routes!(update_reminder, delete_reminder))
        .routes(routes!(create_activity))
        .routes(routes!(timeline))
}

/// What a delete answers: nothing to remove is fine too.
fn deleted(result: Result<(), customers::CustomerError>) -> Result<StatusCode, ApiError> {
    result?;
    Ok(StatusCode::NO_CONTENT)
}

/// 201 for something new, 200 for something that was there.
fn created_or_ok(created: bool) -> StatusCode {
    if created { StatusCode::CREATED } else { StatusCode::OK }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecondaryIdRef {
    #[schema(min_length = 1, max_length = 256)]
    pub key: String,
    #[schema(min_length = 1, max_length = 256)]
    pub value: String,
}

/// Create or resolve: by number (created when new), or by secondary id (resolved only).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerRef {
    pub customer_number: Option<CustomerNumber>,
    pub secondary_id: Option<SecondaryIdRef>,
}

/// Finds the customer with a customer number (made when there is none) or with a live
/// secondary id.
#[utoipa::path(
    post,
    path = "/v1/customers",
    tag = "customers",
    request_body = CustomerRef,
    responses(
        (status = 200, description = "An existing customer", body = CustomerView),
        (status = 201, description = "A customer made for a new number", body = CustomerView),
        (status = 404, description = "No customer has the secondary id", body = Problem),
        (status = 422, description = "Neither or both references, or an invalid number", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn create_or_resolve(
    caller: Caller,
    State(state): State<AppState>,
    Body(reference): Body<CustomerRef>,
) -> Result<(StatusCode, Json<CustomerView>), ApiError> {
    let reference = match (&reference.customer_number, &reference.secondary_id) {
        (Some(number), None) => customers::Reference::Number(number),
        (None, Some(SecondaryIdRef { key, value })) => {
            customers::Reference::SecondaryId { key, value }
        }
        _ => {
            return Err(ApiError::invalid(
                Code::InvalidCustomerReference,
                "give exactly one of customerNumber and secondaryId",
            ));
        }
    };
    let (view, created) = customers::resolve(&state.pool, caller.org, reference).await?;
    Ok((created_or_ok(created), Json(view)))
}

// --- Tags ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tags {
    /// At most 100, counting the customer's tags that are kept.
    #[schema(max_items = 100)]
    pub tags: Vec<Tag>,
}

/// Sets tags: a key already there takes the new value and expiry; the others stay.
#[utoipa::path(
    put,
    path = "/v1/customers/{customer_id}/tags",
    tag = "customers",
    params(("customer_id" = Uuid, Path, description = "The customer")),
    request_body = Tags,
    responses(
        (status = 200, description = "The customer's tags after the change", body = Tags),
        (status = 404, description = "No such customer", body = Problem),
        (status = 422, description = "An invalid tag, or too many", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn update_tags(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
    Body(update): Body<Tags>,
) -> Result<Json<Tags>, ApiError> {
    let customer = CustomerId(customer_id);
    let tags = data::set_tags(&state.pool, caller.org, customer, &update.tags).await?;
    Ok(Json(Tags { tags }))
}

/// Removes a tag (nothing to remove is fine).
#[utoipa::path(
    delete,
    path = "/v1/customers/{customer_id}/tags/{key}",
    tag = "customers",
    params(
        ("customer_id" = Uuid, Path, description = "The customer"),
        ("key" = String, Path, description = "The tag's key"),
    ),
    responses(
        (status = 204, description = "The customer no longer has the tag"),
        (status = 404, description = "No such customer", body = Problem),
        (status = 422, description = "An invalid key", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn delete_tag(
    caller: Caller,
    State(state): State<AppState>,
    PathParams((customer_id, key)): PathParams<(Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    deleted(data::delete_tag(&state.pool, caller.org, CustomerId(customer_id), &key).await)
}

// --- Secondary ids ------------------------------------------------------------------------

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecondaryIds {
    /// At most 100, counting the customer's secondary ids that are kept.
    #[schema(max_items = 100)]
    pub secondary_ids: Vec<SecondaryId>,
}

/// Sets secondary ids: one the customer has takes the new expiry; one another customer holds
/// unexpired is refused, and then nothing changes.
#[utoipa::path(
    put,
    path = "/v1/customers/{customer_id}/secondary-ids",
    tag = "customers",
    params(("customer_id" = Uuid, Path, description = "The customer")),
    request_body = SecondaryIds,
    responses(
        (status = 200, description = "The customer's secondary ids after the change", body = SecondaryIds),
        (status = 404, description = "No such customer", body = Problem),
        (status = 409, description = "Another customer holds one (`secondary_id_taken`)", body = Problem),
        (status = 422, description = "An invalid secondary id, or too many", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn update_secondary_ids(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
    Body(update): Body<SecondaryIds>,
) -> Result<Json<SecondaryIds>, ApiError> {
    let customer = CustomerId(customer_id);
    let secondary_ids =
        data::set_secondary_ids(&state.pool, caller.org, customer, &update.secondary_ids).await?;
    Ok(Json(SecondaryIds { secondary_ids }))
}

/// Removes a secondary id from the customer (nothing to remove is fine).
#[utoipa::path(
    delete,
    path = "/v1/customers/{customer_id}/secondary-ids/{key}/{value}",
    tag = "customers",
    params(
        ("customer_id" = Uuid, Path, description = "The customer"),
        ("key" = String, Path, description = "The secondary id's key"),
        ("value" = String, Path, description = "The secondary id's value"),
    ),
    responses(
        (status = 204, description = "The customer no longer has the secondary id"),
        (status = 404, description = "No such customer", body = Problem),
        (status = 422, description = "An invalid key or value", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn delete_secondary_id(
    caller: Caller,
    State(state): State<AppState>,
    PathParams((customer_id, key, value)): PathParams<(Uuid, String, String)>,
) -> Result<StatusCode, ApiError> {
    let customer = CustomerId(customer_id);
    deleted(data::delete_secondary_id(&state.pool, caller.org, customer, &key, &value).await)
}

// --- Metadata -----------------------------------------------------------------------------

/// The org's key-value map for a customer.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// At most 100 keys of 1 to 256 characters, counting the customer's keys that are kept;
    /// each value at most 64 KiB.
    #[schema(schema_with = metadata_schema)]
    pub metadata: BTreeMap<String, DataValue>,
}

/// Sets metadata: a key already there takes the new value; the others stay.
#[utoipa::path(
    put,
    path = "/v1/customers/{customer_id}/metadata",
    tag = "customers",
    params(("customer_id" = Uuid, Path, description = "The customer")),
    request_body = Metadata,
    responses(
        (status = 200, description = "The customer's metadata after the change", body = Metadata),
        (status = 404, description = "No such customer", body = Problem),
        (status = 422, description = "An invalid key or value, or too many keys", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn update_metadata(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
    Body(update): Body<Metadata>,
) -> Result<Json<Metadata>, ApiError> {
    let customer = CustomerId(customer_id);
    let metadata = data::set_metadata(&state.pool, caller.org, customer, &update.metadata).await?;
    Ok(Json(Metadata { metadata }))
}

/// Removes a metadata key (nothing to remove is fine).
#[utoipa::path(
    delete,
    path = "/v1/customers/{customer_id}/metadata/{key}",
    tag = "customers",
    params(
        ("customer_id" = Uuid, Path, description = "The customer"),
        ("key" = String, Path, description = "The metadata key"),
    ),
    responses(
        (status = 204, description = "The customer no longer has the key"),
        (status = 404, description = "No such customer", body = Problem),
        (status = 422, description = "An invalid key", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn delete_metadata(
    caller: Caller,
    State(state): State<AppState>,
    PathParams((customer_id, key)): PathParams<(Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    deleted(data::delete_metadata(&state.pool, caller.org, CustomerId(customer_id), &key).await)
}

// --- App data -----------------------------------------------------------------------------

/// Sets the calling app's value for the customer; ends any lease.
#[utoipa::path(
    put,
    path = "/v1/customers/{customer_id}/app-data",
    tag = "customers",
    params(("customer_id" = Uuid, Path, description = "The customer")),
    request_body = DataValue,
    responses(
        (status = 200, description = "The app data as stored", body = AppData),
        (status = 403, description = "Not an app key", body = Problem),
        (status = 404, description = "No such customer", body = Problem),
        (status = 422, description = "Bad base64 or too large", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn update_app_data(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
    Body(value): Body<DataValue>,
) -> Result<Json<AppData>, ApiError> {
    let app = caller.app_key()?;
    let customer = CustomerId(customer_id);
    Ok(Json(data::set_app_data(&state.pool, caller.org, customer, app, &value).await?))
}

/// Removes the calling app's value for the customer, and with it any lease (nothing to
/// remove is fine).
#[utoipa::path(
    delete,
    path = "/v1/customers/{customer_id}/app-data",
    tag = "customers",
    params(("customer_id" = Uuid, Path, description = "The customer")),
    responses(
        (status = 204, description = "The app has no data for the customer"),
        (status = 403, description = "Not an app key", body = Problem),
        (status = 404, description = "No such customer", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn delete_app_data(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
) -> Result<StatusCode, ApiError> {
    let app = caller.app_key()?;
    deleted(data::delete_app_data(&state.pool, caller.org, CustomerId(customer_id), app).await)
}

/// Returns the calling app's value and leases it for 90 seconds: until then (or the next
/// update or delete) another lease is refused, so that one worker at a time reads, changes
/// and writes it back.
#[utoipa::path(
    post,
    path = "/v1/customers/{customer_id}/app-data/lease",
    tag = "customers",
    params(("customer_id" = Uuid, Path, description = "The customer")),
    responses(
        (status = 200, description = "The value, now leased", body = AppData),
        (status = 403, description = "Not an app key", body = Problem),
        (status = 404, description = "No such customer, or no app data", body = Problem),
        (status = 409, description = "Already leased (`app_data_leased`)", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn lease_app_data(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
) -> Result<Json<AppData>, ApiError> {
    let app = caller.app_key()?;
    let customer = CustomerId(customer_id);
    Ok(Json(data::lease_app_data(&state.pool, caller.org, customer, app).await?))
}

// --- Reminders ----------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct Reminders {
    pub reminders: Vec<Reminder>,
}

/// Sets one of the calling app's reminders for the customer (replacing one with the key).
/// Reminders are kept and listed; notifying the app when they are due is yet to come.
#[utoipa::path(
    put,
    path = "/v1/customers/{customer_id}/reminders/{key}",
    tag = "customers",
    params(
        ("customer_id" = Uuid, Path, description = "The customer"),
        ("key" = String, Path, description = "The reminder's key"),
    ),
    request_body = NewReminder,
    responses(
        (status = 200, description = "The reminder replaced one with the key", body = Reminder),
        (status = 201, description = "The reminder is new", body = Reminder),
        (status = 403, description = "Not an app key", body = Problem),
        (status = 404, description = "No such customer", body = Problem),
        (status = 422, description = "An invalid reminder, or too many", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn update_reminder(
    caller: Caller,
    State(state): State<AppState>,
    PathParams((customer_id, key)): PathParams<(Uuid, String)>,
    Body(new): Body<NewReminder>,
) -> Result<(StatusCode, Json<Reminder>), ApiError> {
    let app = caller.app_key()?;
    let customer = CustomerId(customer_id);
    let (reminder, created) =
        reminders::set(&state.pool, caller.org, customer, app, &key, &new).await?;
    Ok((created_or_ok(created), Json(reminder)))
}

/// The calling app's reminders for the customer, soonest first.
#[utoipa::path(
    get,
    path = "/v1/customers/{customer_id}/reminders",
    tag = "customers",
    params(("customer_id" = Uuid, Path, description = "The customer")),
    responses(
        (status = 200, description = "The reminders", body = Reminders),
        (status = 403, description = "Not an app key", body = Problem),
        (status = 404, description = "No such customer", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn list_reminders(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
) -> Result<Json<Reminders>, ApiError> {
    let app = caller.app_key()?;
    let customer = CustomerId(customer_id);
    let reminders = reminders::list(&state.pool, caller.org, customer, app).await?;
    Ok(Json(Reminders { reminders }))
}

/// Cancels one of the calling app's reminders (nothing to cancel is fine).
#[utoipa::path(
    delete,
    path = "/v1/customers/{customer_id}/reminders/{key}",
    tag = "customers",
    params(
        ("customer_id" = Uuid, Path, description = "The customer"),
        ("key" = String, Path, description = "The reminder's key"),
    ),
    responses(
        (status = 204, description = "The app has no reminder with the key for the customer"),
        (status = 403, description = "Not an app key", body = Problem),
        (status = 404, description = "No such customer", body = Problem),
        (status = 422, description = "An invalid key", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn delete_reminder(
    caller: Caller,
    State(state): State<AppState>,
    PathParams((customer_id, key)): PathParams<(Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    let app = caller.app_key()?;
    let customer = CustomerId(customer_id);
    deleted(reminders::delete(&state.pool, caller.org, customer, app, &key).await)
}

// --- Activities ---------------------------------------------------------------------------

/// Records an activity of the customer for the calling app.
#[utoipa::path(
    post,
    path = "/v1/customers/{customer_id}/activities",
    tag = "customers",
    params(("customer_id" = Uuid, Path, description = "The customer")),
    request_body = NewActivity,
    responses(
        (status = 201, description = "The activity as recorded", body = Activity),
        (status = 403, description = "Not an app key", body = Problem),
        (status = 404, description = "No such customer", body = Problem),
        (status = 422, description = "An invalid activity", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn create_activity(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
    Body(new): Body<NewActivity>,
) -> Result<(StatusCode, Json<Activity>), ApiError> {
    let app = caller.app_key()?;
    let customer = CustomerId(customer_id);
    let activity = activities::record(&state.pool, caller.org, customer, app, &new).await?;
    Ok((StatusCode::CREATED, Json(activity)))
}

// --- Payments -----------------------------------------------------------------------------

/// One leg of a payment: money leaving (debit) or entering (credit) an account.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentLeg {
    pub account_id: Uuid,
    pub side: &'static str,
    pub currency_code: &'static str,
    /// A decimal string.
    pub amount: String,
}

/// A transfer the customer took part in, as a payment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub transaction_id: Uuid,
    pub at: DateTime<Utc>,
    /// The platform's payment status: `success`, or why it was not made; for a payment
    /// through a provider, where it is now (`pending_confirmation`, `success`, `failed`, …).
    pub status: PaymentStatus,
    /// The provider's receipt, for a payment through a provider that succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// For a payment through a provider, every status it passed through, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub status_history: Vec<crate::payments::StatusChange>,
    /// The ledger's reason when it was not made.
    pub reason: Option<&'static str>,
    pub code: String,
    pub legs: Vec<PaymentLeg>,
    pub narration: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub debit_party: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub credit_party: Option<serde_json::Value>,
    /// The app that made it, when an app key did.
    pub app_id: Option<Uuid>,
}

impl From<&Transfer> for Payment {
    fn from(transfer: &Transfer) -> Self {
        let payment = transfer.context.get("payment");
        let field = |name: &str| payment.and_then(|p| p.get(name)).filter(|v| !v.is_null());
        Self {
            transaction_id: transfer.id.0,
            at: transfer.created_at,
            status: PaymentStatus::of_outcome(transfer.rejection),
            receipt: None,
            status_history: Vec::new(),
            reason: transfer.rejection.map(RejectReason::code),
            code: transfer.code.clone(),
            legs: transfer
                .postings
                .iter()
                .map(|posting| PaymentLeg {
                    account_id: posting.account.0,
                    side: posting.side.as_str(),
                    currency_code: posting.amount.currency().code(),
                    amount: posting.amount.amount().to_string(),
                })
                .collect(),
            narration: field("narration").and_then(|v| v.as_str()).map(str::to_owned),
            debit_party: field("debitParty").cloned(),
            credit_party: field("creditParty").cloned(),
            app_id: field("appId").and_then(|v| v.as_str()).and_then(|v| v.parse().ok()),
        }
    }
}

/// The payments with these ids, in the order of the ids; any the ledger has no record of are
/// left out.
async fn payments(
    state: &AppState,
    org: OrgId,
    ids: &[TransferId],
) -> Result<Vec<Payment>, ApiError> {
    let transfers = state.store.transfers(org, ids).await?;
    let raw: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
    let through_providers = state.payments.records(org, &raw).await?;
    let provider_ids: Vec<uuid::Uuid> = through_providers.iter().map(|r| r.id).collect();
    let mut changes = state.payments.status_changes_of(org, &provider_ids).await?;
    Ok(ids
        .iter()
        .filter_map(|id| transfers.iter().find(|transfer| transfer.id == *id))
        .map(|transfer| {
            let mut payment = Payment::from(transfer);
            // A reservation is accepted by the ledger long before the provider settles it.
            if let Some(record) = through_providers.iter().find(|r| r.id == transfer.id.0) {
                payment.status.clone_from(&record.status);
                payment.receipt.clone_from(&record.receipt);
                payment.status_history = changes.remove(&record.id).unwrap_or_default();
            }
            payment
        })
        .collect())
}

// --- State --------------------------------------------------------------------------------

/// What the org knows about a customer, and what the calling app keeps for it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerState {
    pub customer_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub customer_numbers: Vec<CustomerNumber>,
    pub tags: Vec<Tag>,
    pub secondary_ids: Vec<SecondaryId>,
    pub metadata: BTreeMap<String, DataValue>,
    /// The calling app's data; null for an org key or when the app has none.
    pub app_data: Option<AppData>,
    /// The calling app's reminders, soonest first; empty for an org key.
    pub reminders: Vec<Reminder>,
    pub wallets: Vec<WalletView>,
    /// The newest payments, newest first.
    pub payments: Vec<Payment>,
    /// The sessions of the newest activities, the most recently active first.
    pub activity_sessions: Vec<ActivitySession>,
}

/// The customer's state.
#[utoipa::path(
    get,
    path = "/v1/customers/{customer_id}",
    tag = "customers",
    params(("customer_id" = Uuid, Path, description = "The customer")),
    responses(
        (status = 200, description = "The customer's state", body = CustomerState),
        (status = 404, description = "No such customer", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn customer_state(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
) -> Result<Json<CustomerState>, ApiError> {
    let client = state.pool.get().await?;
    let customer = customers::customer(&client, caller.org, CustomerId(customer_id)).await?;
    let id = CustomerId(customer.customer_id);
    let (app_data, reminders) = match caller.app {
        Some(app) => (
            data::app_data(&client, caller.org, id, app).await?,
            reminders::reminders(&client, caller.org, id, app).await?,
        ),
        None => (None, Vec::new()),
    };
    let payment_ids: Vec<TransferId> = client
        .query(
            "SELECT transfer_id FROM customer_transfers WHERE org_id = $3 AND customer_id = $1
             ORDER BY at DESC, transfer_id DESC LIMIT $2",
            &[&id.0, &RECENT_PAYMENTS_MAX, &caller.org.0],
        )
        .await?
        .iter()
        .map(|row| TransferId(row.get(0)))
        .collect();
    let wallets = state
        .store
        .accounts(caller.org, AccountKind::Wallet, Some(id), None, 1_000)
        .await?
        .iter()
        .map(WalletView::from)
        .collect();
    Ok(Json(CustomerState {
        customer_id: customer.customer_id,
        created_at: customer.created_at,
        customer_numbers: customer.customer_numbers,
        tags: data::tags(&client, caller.org, id).await?,
        secondary_ids: data::secondary_ids(&client, caller.org, id).await?,
        metadata: data::metadata(&client, caller.org, id).await?,
        app_data,
        reminders,
        wallets,
        payments: payments(&state, caller.org, &payment_ids).await?,
        activity_sessions: activities::sessions(&client, caller.org, id).await?,
    }))
}

// --- Timeline -----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// One item of a timeline: an activity or a payment, each with its time `at`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum TimelineItem {
    Activity(Activity),
    Payment(Payment),
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub items: Vec<TimelineItem>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Where a timeline page ends: the time and id of its last item, which order items newest
/// first (ids break ties). Opaque to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cursor {
    at: DateTime<Utc>,
    id: Uuid,
}

impl Cursor {
    fn encode(self) -> String {
        let text = format!("{}:{}", self.at.timestamp_micros(), self.id.simple());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    fn decode(cursor: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::bad_request(Code::InvalidCursor, "not a cursor this API gave");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, id) = text.split_once(':').ok_or_else(invalid)?;
        let at =
            micros.parse().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(invalid)?;
        Ok(Self { at, id: id.parse().map_err(|_| invalid())? })
    }
}

/// The customer's activities and payments merged, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/customers/{customer_id}/timeline",
    tag = "customers",
    params(
        ("customer_id" = Uuid, Path, description = "The customer"),
        ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`"),
        ("limit" = Option<i64>, Query, description = "Items per page, 1 to 500 (default 50)"),
    ),
    responses(
        (status = 200, description = "A page of the timeline", body = Timeline),
        (status = 400, description = "A bad cursor or limit", body = Problem),
        (status = 404, description = "No such customer", body = Problem),
    ),
    security(("bearer" = [])),
)]
async fn timeline(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
    QueryParams(query): QueryParams<TimelineQuery>,
) -> Result<Json<Timeline>, ApiError> {
    let limit = page_size(query.limit)?;
    let cursor = query.cursor.as_deref().map(Cursor::decode).transpose()?;
    let customer = check(&state.pool, caller.org, customer_id).await?;
    // One more than a page, to know whether there is another.
    let fetch = limit + 1;
    let (after_activity, after_payment, org) = if cursor.is_some() {
        ("AND (at, id) < ($3, $4)", "AND (at, transfer_id) < ($3, $4)", "$5")
    } else {
        ("", "", "$3")
    };
    let sql = format!(
        "SELECT kind, id, at FROM (
             (SELECT 'activity' AS kind, id, at FROM activities
              WHERE org_id = {org} AND customer_id = $1 {after_activity} ORDER BY at DESC, id DESC LIMIT $2)
             UNION ALL
             (SELECT 'payment', transfer_id, at FROM customer_transfers
              WHERE org_id = {org} AND customer_id = $1 {after_payment} ORDER BY at DESC, transfer_id DESC LIMIT $2)
         ) AS items ORDER BY at DESC, id DESC LIMIT $2"
    );
    let client = state.pool.get().await?;
    let rows = match cursor {
        Some(Cursor { at, id }) => {
            client.query(&sql, &[&customer.0, &fetch, &at, &id, &caller.org.0]).await?
        }
        None => client.query(&sql, &[&customer.0, &fetch, &caller.org.0]).await?,
    };
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    let page: Vec<(String, Uuid, DateTime<Utc>)> = rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let activity_ids: Vec<Uuid> =
        page.iter().filter(|(kind, ..)| kind == "activity").map(|(_, id, _)| *id).collect();
    let payment_ids: Vec<TransferId> = page
        .iter()
        .filter(|(kind, ..)| kind == "payment")
        .map(|(_, id, _)| TransferId(*id))
        .collect();
    let mut activities: Vec<Option<Activity>> =
        activities::by_ids(&client, caller.org, customer, &activity_ids)
            .await?
            .into_iter()
            .map(Some)
            .collect();
    let mut payments: Vec<Option<Payment>> =
        payments(&state, caller.org, &payment_ids).await?.into_iter().map(Some).collect();
    let items = page
        .iter()
        .filter_map(|(kind, id, _)| {
            if kind == "activity" {
                let found = activities
                    .iter_mut()
                    .find(|a| a.as_ref().is_some_and(|a| a.activity_id == *id));
                found.and_then(Option::take).map(TimelineItem::Activity)
            } else {
                let found = payments
                    .iter_mut()
                    .find(|p| p.as_ref().is_some_and(|p| p.transaction_id == *id));
                found.and_then(Option::take).map(TimelineItem::Payment)
            }
        })
        .collect();
    let next_cursor =
        more.then(|| page.last().map(|(_, id, at)| Cursor { at: *at, id: *id }.encode())).flatten();
    Ok(Json(Timeline { items, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = Cursor {
            at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap_or_default(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).ok(), Some(cursor));
        for garbage in ["", "!!", "bm9wZQ", "MTIzOm5vdC1hLXV1aWQ"] {
            assert!(Cursor::decode(garbage).is_err(), "{garbage}");
        }
    }
}
