//! Customers over HTTP: the handlers of `/v1/customers/…`. Each reads its request, calls the
//! customers service (`crate::customers`) and answers; what a customer is, what is kept about
//! it and every statement are the service's.
//!
//! Tags, secondary ids and metadata belong to the org: any key of the org reads and changes
//! them. App data and reminders belong to one app: only that app's keys see them (the
//! handlers ask the caller for an app key before anything else). Activities are recorded by an
//! app and read by the whole org.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use hazina_ledger::CustomerId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::money::WalletView;
use super::page_size;
use crate::code::Code;
use crate::customers::activities::{self, Activity, ActivitySession, NewActivity};
use crate::customers::data::{self, AppData, DataValue, SecondaryId, Tag, metadata_schema};
use crate::customers::reminders::{self, NewReminder, Reminder};
use crate::customers::timeline::{self, Cursor, Payment, Timeline};
use crate::customers::{self, CustomerNumber, CustomerView, NumberProvider};
use crate::http::AppState;
use crate::http::auth::{Caller, ClientCaller};
use crate::http::problem::{ApiError, Body, PathParams, QueryParams};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_or_resolve))
        .routes(routes!(customer_state))
        .routes(routes!(add_number, delete_number))
        .routes(routes!(adopt))
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
    #[schema(schema_with = crate::schema::key_text)]
    pub key: String,
    #[schema(schema_with = crate::schema::key_text)]
    pub value: String,
}

/// Create or resolve: by number (created when new), or by secondary id (resolved only).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerRef {
    #[serde(default, deserialize_with = "present")]
    pub customer_number: Option<CustomerNumber>,
    #[serde(default, deserialize_with = "present")]
    pub secondary_id: Option<SecondaryIdRef>,
}

/// A member that is there, or absent; never `null`, as the document's `CustomerByNumber` and
/// `CustomerBySecondaryId` say (each allows nothing but its own member).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The two ways to name a customer, each a schema of its own with nothing else: the document
/// says "exactly one", which a generated request then always is.
const CUSTOMER_REFS: [(&str, &str, &str, &str); 2] = [
    (
        "CustomerByNumber",
        "customerNumber",
        "CustomerNumber",
        "By a customer number: made when new.",
    ),
    (
        "CustomerBySecondaryId",
        "secondaryId",
        "SecondaryIdRef",
        "By a live secondary id: found only.",
    ),
];

impl utoipa::PartialSchema for CustomerRef {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        CUSTOMER_REFS
            .iter()
            .fold(
                utoipa::openapi::schema::OneOfBuilder::new()
                    .description(Some("Exactly one of `customerNumber` and `secondaryId`.")),
                |one_of, (name, ..)| one_of.item(utoipa::openapi::Ref::from_schema_name(*name)),
            )
            .into()
    }
}

impl ToSchema for CustomerRef {
    fn schemas(schemas: &mut crate::schema::Schemas) {
        use utoipa::PartialSchema;
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        for (name, key, holds, description) in CUSTOMER_REFS {
            let schema = ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(description))
                .property(key, utoipa::openapi::Ref::from_schema_name(holds))
                .required(key)
                .additional_properties(Some(
                    AdditionalProperties::<utoipa::openapi::Schema>::FreeForm(false),
                ));
            schemas.push((name.to_owned(), schema.into()));
        }
        schemas.extend([
            ("CustomerNumber".to_owned(), CustomerNumber::schema()),
            ("SecondaryIdRef".to_owned(), SecondaryIdRef::schema()),
        ]);
        <CustomerNumber as ToSchema>::schemas(schemas);
    }
}

/// Finds the customer with a customer number (made when there is none) or with a live
/// secondary id.
#[utoipa::path(
    post,
    operation_id = "create_or_resolve_customer",
    path = "/v1/customers",
    tag = "customers",
    request_body(content = CustomerRef, examples(
        ("byPhoneNumber" = (
            summary = "By phone number: the customer, made when the number is new",
            value = json!({"customerNumber": {"number": "+254712345678", "provider": "cellular"}}),
        )),
        ("bySecondaryId" = (
            summary = "By secondary id: an existing customer only",
            value = json!({"secondaryId": {"key": "nationalId", "value": "23456789"}}),
        )),
    )),
    responses(
        (status = 200, description = "An existing customer", body = CustomerView),
        (status = 201, description = "A customer made for a new number", body = CustomerView),
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

// --- Numbers and merging ------------------------------------------------------------------

/// Gives the customer another number (a phone, an email address, a `whatsapp`, `telegram`,
/// `facebook` or `messenger` id, an app's own id): the customer is then found by each of them.
#[utoipa::path(
    post,
    operation_id = "add_customer_number",
    path = "/v1/customers/{customer_id}/numbers",
    tag = "customers",
    params(("customer_id" = Uuid, Path, description = "The customer")),
    request_body(content = CustomerNumber, examples(
        ("whatsApp" = (
            summary = "A WhatsApp number, in international format",
            value = json!({"number": "+254712345678", "provider": "whatsapp"}),
        )),
        ("email" = (
            summary = "An email address",
            value = json!({"number": "amina@example.com", "provider": "email"}),
        )),
    )),
    responses(
        (status = 200, description = "The customer already held the number", body = CustomerView),
        (status = 201, description = "The customer with the number added", body = CustomerView),
    ),
    security(("bearer" = [])),
)]
async fn add_number(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
    Body(number): Body<CustomerNumber>,
) -> Result<(StatusCode, Json<CustomerView>), ApiError> {
    let (view, added) =
        customers::numbers::add(&state.pool, caller.org, CustomerId(customer_id), &number).await?;
    Ok((created_or_ok(added), Json(view)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberQuery {
    provider: NumberProvider,
    number: String,
    partition: Option<String>,
}

/// Takes a number from the customer (nothing to remove is fine), named as it was added (and
/// normalised the same way).
#[utoipa::path(
    delete,
    operation_id = "delete_customer_number",
    path = "/v1/customers/{customer_id}/numbers",
    tag = "customers",
    params(
        ("customer_id" = Uuid, Path, description = "The customer"),
        ("provider" = NumberProvider, Query, description = "The number's provider"),
        ("number" = String, Query, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$", description = "The number"),
        ("partition" = Option<String>, Query, max_length = 256, description = "The number's partition, if it has one"),
    ),
    responses(
        (status = 204, description = "The customer no longer holds the number"),
    ),
    security(("bearer" = [])),
)]
async fn delete_number(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
    QueryParams(query): QueryParams<NumberQuery>,
) -> Result<StatusCode, ApiError> {
    let NumberQuery { provider, number, partition } = query;
    let number = CustomerNumber { number, provider, partition };
    deleted(
        customers::numbers::delete(&state.pool, caller.org, CustomerId(customer_id), &number).await,
    )
}

/// The customer whose state to adopt.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"otherCustomerId": "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b"}))]
pub struct AdoptRequest {
    pub other_customer_id: Uuid,
}

/// Adopts another customer's state: its numbers, secondary ids, tags, metadata, app data,
/// reminders, activities and timeline, and its wallets' balances (moved by ledger transfers
/// into the wallets of the same wallet ids, made when missing; its wallets are then closed).
/// Where both have a tag, metadata key, app's data or reminder, this customer's stays. The
/// other's id then names this customer. Refused while the other has pending transfers on a
/// wallet. Asking again is safe: it finishes an interrupted merge, or answers the customer.
#[utoipa::path(
    post,
    operation_id = "adopt_customer",
    path = "/v1/customers/{customer_id}/adopt",
    tag = "customers",
    params(("customer_id" = Uuid, Path, description = "The customer that adopts")),
    request_body = AdoptRequest,
    responses(
        (status = 200, description = "The customer after adopting the other", body = CustomerView),
    ),
    security(("bearer" = [])),
)]
async fn adopt(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
    Body(request): Body<AdoptRequest>,
) -> Result<Json<CustomerView>, ApiError> {
    let (view, _) = customers::merge::adopt(
        &state.pool,
        &state.store,
        &state.pipeline,
        caller.org,
        CustomerId(customer_id),
        request.other_customer_id,
    )
    .await?;
    Ok(Json(view))
}

// --- Tags ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"tags": [
    {"key": "segment", "value": "gold"},
    {"key": "campaign", "value": "december-promo", "expiresAt": "2030-12-31T21:00:00Z"}
]}))]
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
        ("key" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$", description = "The tag's key"),
    ),
    responses(
        (status = 204, description = "The customer no longer has the tag"),
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
#[schema(example = json!({"secondaryIds": [
    {"key": "nationalId", "value": "23456789"},
    {"key": "loyaltyCard", "value": "LC-104233", "expiresAt": "2030-06-30T21:00:00Z"}
]}))]
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
        ("key" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$", description = "The secondary id's key"),
        ("value" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$", description = "The secondary id's value"),
    ),
    responses(
        (status = 204, description = "The customer no longer has the secondary id"),
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
#[schema(example = json!({"metadata": {
    "county": {"string": "Nairobi"},
    "preferredLanguage": {"string": "sw"},
    "idPhotoSha256": {"bytes": "cD6vWmoPILQilplReSHcKgTiIH31pGyV2Wt3Lb4Tm1U="}
}}))]
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
        ("key" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$", description = "The metadata key"),
    ),
    responses(
        (status = 204, description = "The customer no longer has the key"),
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
    request_body(
        content = DataValue,
        example = json!({"string": "{\"loyaltyPoints\":1250,\"tier\":\"gold\"}"}),
    ),
    responses(
        (status = 200, description = "The app data as stored", body = AppData),
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
        ("key" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$", description = "The reminder's key"),
    ),
    request_body = NewReminder,
    responses(
        (status = 200, description = "The reminder replaced one with the key", body = Reminder),
        (status = 201, description = "The reminder is new", body = Reminder),
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
        ("key" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$", description = "The reminder's key"),
    ),
    responses(
        (status = 204, description = "The app has no reminder with the key for the customer"),
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

/// Records an activity of the customer for the calling app. A client token of the app may
/// call it too (for its customer only, when it names one).
#[utoipa::path(
    post,
    path = "/v1/customers/{customer_id}/activities",
    tag = "customers",
    params(("customer_id" = Uuid, Path, description = "The customer")),
    request_body = NewActivity,
    responses(
        (status = 201, description = "The activity as recorded", body = Activity),
    ),
    security(("bearer" = [])),
)]
async fn create_activity(
    caller: ClientCaller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
    Body(new): Body<NewActivity>,
) -> Result<(StatusCode, Json<Activity>), ApiError> {
    let ClientCaller { caller, client_token } = caller;
    let app = caller.app_key()?;
    let mut customer = CustomerId(customer_id);
    if let Some(Some(scoped)) = client_token {
        customer = within_scope(&state, caller.org, customer, scoped).await?;
    }
    let activity = activities::record(&state.pool, caller.org, customer, app, &new).await?;
    Ok((StatusCode::CREATED, Json(activity)))
}

/// The customer a client token limited to `scoped` names, refused with 403
/// `client_token_scope` when it is another (a missing one too: the token tells nothing of
/// other customers). Either id may be one a merge retired.
async fn within_scope(
    state: &AppState,
    org: hazina_ledger::OrgId,
    customer: CustomerId,
    scoped: Uuid,
) -> Result<CustomerId, ApiError> {
    let scoped = customers::check(&state.pool, org, scoped).await?;
    let named = match customers::check(&state.pool, org, customer.0).await {
        Ok(named) => Some(named),
        Err(customers::CustomerError::NotFound(_)) => None,
        Err(error) => return Err(error.into()),
    };
    if named != Some(scoped) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            Code::ClientTokenScope,
            "the client token is for another customer",
        ));
    }
    Ok(scoped)
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
    operation_id = "get_customer",
    path = "/v1/customers/{customer_id}",
    tag = "customers",
    params(("customer_id" = Uuid, Path, description = "The customer")),
    responses(
        (status = 200, description = "The customer's state", body = CustomerState),
    ),
    security(("bearer" = [])),
)]
async fn customer_state(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(customer_id): PathParams<Uuid>,
) -> Result<Json<CustomerState>, ApiError> {
    let overview = customers::state::overview(
        &state.pool,
        &state.store,
        &state.payments,
        caller.org,
        CustomerId(customer_id),
        caller.app,
    )
    .await?;
    Ok(Json(CustomerState {
        customer_id: overview.customer.customer_id,
        created_at: overview.customer.created_at,
        customer_numbers: overview.customer.customer_numbers,
        tags: overview.tags,
        secondary_ids: overview.secondary_ids,
        metadata: overview.metadata,
        app_data: overview.app_data,
        reminders: overview.reminders,
        wallets: overview.wallets.iter().map(WalletView::from).collect(),
        payments: overview.payments,
        activity_sessions: overview.activity_sessions,
    }))
}

// --- Timeline -----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// The customer's activities, payments and messages (sent and received, on every messaging
/// channel) merged, newest first, a page at a time. A payment whose context named the message
/// that led to it shows it as `messageId`; a message sent about a payment shows it as
/// `paymentId`.
#[utoipa::path(
    get,
    operation_id = "get_customer_timeline",
    path = "/v1/customers/{customer_id}/timeline",
    tag = "customers",
    params(
        ("customer_id" = Uuid, Path, description = "The customer"),
        ("cursor" = Option<String>, Query, pattern = "^-?[0-9]{1,18}_[0-9a-f]{32}$",
            description = "The previous page's `nextCursor`"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500,
            description = "Items per page, 1 to 500 (default 50)"),
    ),
    responses(
        (status = 200, description = "A page of the timeline", body = Timeline),
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
    let cursor = query
        .cursor
        .as_deref()
        .map(|cursor| {
            Cursor::decode(cursor).ok_or_else(|| {
                ApiError::bad_request(Code::InvalidCursor, "not a cursor this API gave")
            })
        })
        .transpose()?;
    let page = timeline::page(
        &state.pool,
        &state.store,
        &state.payments,
        caller.org,
        CustomerId(customer_id),
        cursor,
        limit,
    )
    .await?;
    Ok(Json(page))
}
