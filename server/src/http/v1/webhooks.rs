//! Webhook endpoints over HTTP: thin handlers over the webhooks service. An app key manages
//! its app's endpoints; an org key every endpoint of the org, org-level ones included. An
//! endpoint's signing secret is shown once, when it is made or rotated.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::code::Code;
use crate::events::EventType;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::{ApiError, Body, PathParams, QueryParams};
use crate::webhooks::{
    CreatedEndpoint, DeliveryPage, Endpoint, EndpointChanges, NewEndpoint, Redelivery,
    RotatedSecret, Scope,
};

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list_webhook_endpoints, create_webhook_endpoint))
        .routes(utoipa_axum::routes!(
            get_webhook_endpoint,
            update_webhook_endpoint,
            delete_webhook_endpoint
        ))
        .routes(utoipa_axum::routes!(rotate_webhook_secret))
        .routes(utoipa_axum::routes!(list_webhook_deliveries))
        .routes(utoipa_axum::routes!(redeliver_webhook_events))
}

fn scope(caller: &Caller) -> Scope {
    Scope { org: caller.org, app: caller.app }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "url": "https://hooks.example.com/hazina",
    "eventTypes": ["payment.status_changed", "customer.created"],
    "description": "Order updates"
}))]
pub struct NewWebhookEndpoint {
    /// Where events are sent (`POST`): an `https://` address on the public internet (`http://` and
    /// private addresses only on a server started with `--allow-private-webhook-urls`).
    #[schema(min_length = 1, max_length = 2048, pattern = r"^https?://[^\s\u0000]+$")]
    pub url: String,
    /// The types to receive; none or empty for every stored type (`balance.changed` only
    /// when named).
    #[serde(default)]
    pub event_types: Vec<EventType>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// For an org key: the app whose events the endpoint receives (with the org's events of
    /// no app); none for an org-level endpoint. An app key's endpoints are its app's.
    pub app_id: Option<Uuid>,
}

impl NewWebhookEndpoint {
    pub fn into_new(self) -> NewEndpoint {
        NewEndpoint {
            app: self.app_id,
            url: self.url,
            event_types: self.event_types,
            description: self.description.filter(|text| !text.is_empty()),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"eventTypes": [], "enabled": true}))]
pub struct WebhookEndpointChanges {
    #[schema(min_length = 1, max_length = 2048, pattern = r"^https?://[^\s\u0000]+$")]
    pub url: Option<String>,
    /// Empty for every stored type.
    pub event_types: Option<Vec<EventType>>,
    /// `true` enables a disabled endpoint again (it resumes its pending deliveries).
    pub enabled: Option<bool>,
    /// An empty text removes the description.
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

impl WebhookEndpointChanges {
    pub fn into_changes(self) -> EndpointChanges {
        EndpointChanges {
            url: self.url,
            event_types: self.event_types,
            enabled: self.enabled,
            description: self.description.map(|text| Some(text).filter(|text| !text.is_empty())),
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"overlapSeconds": 86400}))]
pub struct SecretRotation {
    /// How long the current secrets still sign beside the new one (default 86400, a day; at
    /// most 2592000, 30 days).
    #[schema(minimum = 0, maximum = 2_592_000)]
    #[serde(default, deserialize_with = "crate::schema::whole_number")]
    pub overlap_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"eventId": "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b"}))]
pub struct RedeliveryRequest {
    /// One event to deliver again (or for the first time, if it came before the endpoint).
    pub event_id: Option<Uuid>,
    /// With `to`: every event delivered to the endpoint that occurred from this time…
    pub from: Option<DateTime<Utc>>,
    /// …until before this one.
    pub to: Option<DateTime<Utc>>,
}

impl RedeliveryRequest {
    pub fn redelivery(&self) -> Result<Redelivery, ApiError> {
        match (self.event_id, self.from, self.to) {
            (Some(event), None, None) => Ok(Redelivery::Event(event)),
            (None, Some(from), Some(to)) if from < to => Ok(Redelivery::Range { from, to }),
            _ => Err(ApiError::invalid(
                Code::InvalidRedelivery,
                "a redelivery names an `eventId`, or a `from` and a later `to`",
            )),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpointList {
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedeliveryQueued {
    /// How many deliveries were queued.
    pub queued: u64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// The `nextCursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// Deliveries per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Makes a webhook endpoint; the answer holds its signing secret, shown only now. It receives
/// the events recorded from now on.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks",
    request_body = NewWebhookEndpoint,
    responses((status = 201, body = CreatedEndpoint)))]
async fn create_webhook_endpoint(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewWebhookEndpoint>,
) -> Result<Response, ApiError> {
    let created = state.webhooks.create(scope(&caller), new.into_new()).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The webhook endpoints the key manages (an app key: its app's; an org key: all).
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks",
    responses((status = 200, body = WebhookEndpointList)))]
async fn list_webhook_endpoints(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let endpoints = state.webhooks.list(scope(&caller)).await?;
    Ok(Json(WebhookEndpointList { endpoints }).into_response())
}

/// A webhook endpoint.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = Uuid, Path, description = "The endpoint's id")),
    responses((status = 200, body = Endpoint)))]
async fn get_webhook_endpoint(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(endpoint_id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    Ok(Json(state.webhooks.get(scope(&caller), endpoint_id).await?).into_response())
}

/// Changes a webhook endpoint's URL, types, description, or whether it is enabled.
#[utoipa::path(patch, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = Uuid, Path, description = "The endpoint's id")),
    request_body = WebhookEndpointChanges,
    responses((status = 200, body = Endpoint)))]
async fn update_webhook_endpoint(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(endpoint_id): PathParams<Uuid>,
    Body(changes): Body<WebhookEndpointChanges>,
) -> Result<Response, ApiError> {
    let endpoint =
        state.webhooks.update(scope(&caller), endpoint_id, changes.into_changes()).await?;
    Ok(Json(endpoint).into_response())
}

/// Deletes a webhook endpoint, its secrets and its delivery log.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = Uuid, Path, description = "The endpoint's id")),
    responses((status = 204)))]
async fn delete_webhook_endpoint(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(endpoint_id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    state.webhooks.delete(scope(&caller), endpoint_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Rotates the signing secret: the answer holds the new one, shown only now; the current ones
/// sign beside it for the overlap (a day by default), so receivers can switch without a gap.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{endpoint_id}/secrets", tag = "webhooks",
    params(("endpoint_id" = Uuid, Path, description = "The endpoint's id")),
    request_body = SecretRotation,
    responses((status = 201, body = RotatedSecret)))]
async fn rotate_webhook_secret(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(endpoint_id): PathParams<Uuid>,
    Body(rotation): Body<SecretRotation>,
) -> Result<Response, ApiError> {
    let overlap = rotation.overlap_seconds.map(std::time::Duration::from_secs);
    let rotated = state.webhooks.rotate(scope(&caller), endpoint_id, overlap).await?;
    Ok((StatusCode::CREATED, Json(rotated)).into_response())
}

/// The endpoint's deliveries, newest first, each with its attempts: status codes, latency,
/// errors and the start of each answer.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{endpoint_id}/deliveries", tag = "webhooks",
    params(("endpoint_id" = Uuid, Path, description = "The endpoint's id"), DeliveryParams),
    responses((status = 200, body = DeliveryPage)))]
async fn list_webhook_deliveries(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(endpoint_id): PathParams<Uuid>,
    QueryParams(params): QueryParams<DeliveryParams>,
) -> Result<Response, ApiError> {
    let limit = super::page_size(params.limit)?;
    let page = state.webhooks.deliveries(scope(&caller), endpoint_id, params.cursor, limit).await?;
    Ok(Json(page).into_response())
}

/// Delivers events again: one (`eventId`), or every one delivered to the endpoint that
/// occurred in a time range (`from`, `to`). Each is queued with a new round of attempts.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{endpoint_id}/redeliveries",
    tag = "webhooks",
    params(("endpoint_id" = Uuid, Path, description = "The endpoint's id")),
    request_body = RedeliveryRequest,
    responses((status = 202, body = RedeliveryQueued)))]
async fn redeliver_webhook_events(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(endpoint_id): PathParams<Uuid>,
    Body(request): Body<RedeliveryRequest>,
) -> Result<Response, ApiError> {
    let what = request.redelivery()?;
    let queued = state.webhooks.redeliver(scope(&caller), endpoint_id, what).await?;
    Ok((StatusCode::ACCEPTED, Json(RedeliveryQueued { queued })).into_response())
}
