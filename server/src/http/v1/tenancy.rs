//! Apps and API keys over HTTP (org key only): thin handlers over the tenancy service.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::{ApiError, Body, PathParams};
pub use crate::tenancy::NAME_LEN_MAX;
use crate::tenancy::{self, App, ClientToken, CreatedKey, Key, valid_name};

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list_apps, create_app))
        .routes(utoipa_axum::routes!(list_keys, create_key))
        .routes(utoipa_axum::routes!(revoke_key))
        .routes(utoipa_axum::routes!(create_auth_token))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Web shop"}))]
pub struct NewApp {
    #[schema(schema_with = crate::schema::name)]
    pub name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "name": "Web shop, production",
    "appId": "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b"
}))]
pub struct NewKeyRequest {
    #[schema(schema_with = crate::schema::name)]
    pub name: String,
    /// The app the key acts for; none for an org key.
    pub app_id: Option<Uuid>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppList {
    pub apps: Vec<App>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<Key>,
}

/// Creates an app (org key).
#[utoipa::path(post, path = "/v1/apps", tag = "apps", request_body = NewApp, responses(
    (status = 201, body = App)))]
async fn create_app(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewApp>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let app = tenancy::insert_app(&state.pool, caller.org, valid_name(&new.name)?).await?;
    Ok((StatusCode::CREATED, Json(app)).into_response())
}

/// The org's apps (org key).
#[utoipa::path(get, path = "/v1/apps", tag = "apps", responses(
    (status = 200, body = AppList)))]
async fn list_apps(caller: Caller, State(state): State<AppState>) -> Result<Response, ApiError> {
    caller.org_key()?;
    let apps = tenancy::apps(&state.pool, caller.org).await?;
    Ok(Json(AppList { apps }).into_response())
}

/// Creates an org key, or an app key with `appId` (org key). The token is shown only here.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = NewKeyRequest, responses(
    (status = 201, body = CreatedKey)))]
async fn create_key(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewKeyRequest>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let key =
        tenancy::insert_key(&state.pool, caller.org, new.app_id, valid_name(&new.name)?).await?;
    Ok((StatusCode::CREATED, Json(key)).into_response())
}

/// The org's keys, revoked ones too, never their tokens (org key).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses(
    (status = 200, body = KeyList)))]
async fn list_keys(caller: Caller, State(state): State<AppState>) -> Result<Response, ApiError> {
    caller.org_key()?;
    let keys = tenancy::keys(&state.pool, caller.org).await?;
    Ok(Json(KeyList { keys }).into_response())
}

/// Revokes a key at once (org key).
#[utoipa::path(delete, path = "/v1/keys/{key_id}", tag = "keys",
    params(("key_id" = Uuid, Path, description = "The key's id")),
    responses((status = 204)))]
async fn revoke_key(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(key_id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    if !tenancy::revoke(&state.pool, caller.org, key_id).await? {
        return Err(ApiError::not_found("key"));
    }
    state.keys.forget();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A client token to mint.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"customerId": "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b", "ttlSeconds": 600}))]
pub struct NewAuthToken {
    /// The only customer the token may record activities of; any of the org's when absent.
    pub customer_id: Option<Uuid>,
    /// How long the token lasts, 1 to 3600 seconds (600 when absent).
    #[schema(minimum = 1, maximum = 3600)]
    #[serde(default, deserialize_with = "crate::schema::whole_number")]
    pub ttl_seconds: Option<u64>,
}

/// Mints a short-lived client token for a browser or a device (app key): it acts for the app
/// only to record activities (`POST /v1/customers/{customerId}/activities`), for one customer
/// when it names one, until it expires or this key is revoked. Shown only here.
#[utoipa::path(
    post,
    operation_id = "create_auth_token",
    path = "/v1/auth-tokens",
    tag = "keys",
    request_body = NewAuthToken,
    responses((status = 201, description = "The token, shown only here", body = ClientToken)),
    security(("bearer" = [])),
)]
async fn create_auth_token(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewAuthToken>,
) -> Result<Response, ApiError> {
    let app = caller.app_key()?;
    let customer = match new.customer_id {
        Some(id) => Some(crate::customers::check(&state.pool, caller.org, id).await?.0),
        None => None,
    };
    let token = tenancy::mint_client_token(
        &state.pool,
        caller.org,
        caller.key_id,
        app,
        customer,
        // Past `u32`, it is refused as out of range all the same.
        new.ttl_seconds.map(|ttl| u32::try_from(ttl).unwrap_or(u32::MAX)),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(token)).into_response())
}
