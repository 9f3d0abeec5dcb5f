//! Apps and API keys (org key only), and the first start's default org, app and keys.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use hazina_ledger::OrgId;
use hazina_ledger::store::Store;
use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::app::AppState;
use crate::code::Code;
use crate::http::auth::{Caller, NewKey};
use crate::http::problem::{ApiError, Body, PathParams, Problem};

/// Longest app or key name.
pub const NAME_LEN_MAX: usize = 100;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list_apps, create_app))
        .routes(utoipa_axum::routes!(list_keys, create_key))
        .routes(utoipa_axum::routes!(revoke_key))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub app_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApp {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

/// A key as listed: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Key {
    pub key_id: Uuid,
    pub prefix: String,
    pub app_id: Option<Uuid>,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just created: the only time its token is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: Key,
    pub token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewKeyRequest {
    #[schema(min_length = 1, max_length = 100)]
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

fn valid_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_LEN_MAX || name.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(
            Code::InvalidName,
            format!("a name has 1 to {NAME_LEN_MAX} printable characters"),
        ));
    }
    Ok(name)
}

/// Creates an app (org key).
#[utoipa::path(post, path = "/v1/apps", tag = "apps", request_body = NewApp, responses(
    (status = 201, body = App), (status = 409, body = Problem), (status = 422, body = Problem),
    (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn create_app(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewApp>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let app = insert_app(&state.pool, caller.org, valid_name(&new.name)?).await?;
    Ok((StatusCode::CREATED, Json(app)).into_response())
}

/// The org's apps (org key).
#[utoipa::path(get, path = "/v1/apps", tag = "apps", responses(
    (status = 200, body = AppList), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_apps(caller: Caller, State(state): State<AppState>) -> Result<Response, ApiError> {
    caller.org_key()?;
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT id, name, created_at FROM apps WHERE org_id = $1 ORDER BY created_at, id",
            &[&caller.org.0],
        )
        .await?;
    let apps: Vec<App> = rows
        .iter()
        .map(|row| App { app_id: row.get(0), name: row.get(1), created_at: row.get(2) })
        .collect();
    Ok(Json(AppList { apps }).into_response())
}

/// Creates an org key, or an app key with `appId` (org key). The token is shown only here.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = NewKeyRequest, responses(
    (status = 201, body = CreatedKey), (status = 422, body = Problem),
    (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn create_key(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewKeyRequest>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let key = insert_key(&state.pool, caller.org, new.app_id, valid_name(&new.name)?).await?;
    Ok((StatusCode::CREATED, Json(key)).into_response())
}

/// The org's keys, revoked ones too, never their tokens (org key).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses(
    (status = 200, body = KeyList), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_keys(caller: Caller, State(state): State<AppState>) -> Result<Response, ApiError> {
    caller.org_key()?;
    let keys = keys(&state.pool, caller.org).await?;
    Ok(Json(KeyList { keys }).into_response())
}

/// Revokes a key at once (org key).
#[utoipa::path(delete, path = "/v1/keys/{key_id}", tag = "keys",
    params(("key_id" = Uuid, Path, description = "The key's id")),
    responses((status = 204), (status = 404, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem)))]
async fn revoke_key(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(key_id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    if !revoke(&state.pool, caller.org, key_id).await? {
        return Err(ApiError::not_found("key"));
    }
    state.keys.forget();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Creates an app; a name already used in the org is a conflict.
pub async fn insert_app(pool: &Pool, org: OrgId, name: &str) -> Result<App, ApiError> {
    let client = pool.get().await?;
    let id = Uuid::now_v7();
    let row = client
        .query_one(
            "INSERT INTO apps (id, org_id, name) VALUES ($1, $2, $3) RETURNING created_at",
            &[&id, &org.0, &name],
        )
        .await
        .map_err(|error| match error.code() {
            Some(&SqlState::UNIQUE_VIOLATION) => ApiError::new(
                StatusCode::CONFLICT,
                Code::AlreadyExists,
                "the org already has an app with this name",
            ),
            _ => error.into(),
        })?;
    Ok(App { app_id: id, name: name.to_owned(), created_at: row.get(0) })
}

/// Creates a key for the org, or for one of its apps.
pub async fn insert_key(
    pool: &Pool,
    org: OrgId,
    app: Option<Uuid>,
    name: &str,
) -> Result<CreatedKey, ApiError> {
    let client = pool.get().await?;
    if let Some(app) = app {
        let found = client
            .query_opt("SELECT 1 FROM apps WHERE id = $1 AND org_id = $2", &[&app, &org.0])
            .await?;
        if found.is_none() {
            return Err(ApiError::invalid(Code::AppNotFound, "no such app in this org"));
        }
    }
    let new = NewKey::generate();
    let id = Uuid::now_v7();
    let row = client
        .query_one(
            "INSERT INTO api_keys (id, org_id, app_id, prefix, secret_sha256, name)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at",
            &[&id, &org.0, &app, &new.prefix, &new.secret_sha256, &name],
        )
        .await?;
    crate::http::auth::note_keys_changed();
    Ok(CreatedKey {
        key: Key {
            key_id: id,
            prefix: new.prefix,
            app_id: app,
            name: name.to_owned(),
            created_at: row.get(0),
            revoked_at: None,
        },
        token: new.token,
    })
}

/// The org's keys, oldest first.
pub async fn keys(pool: &Pool, org: OrgId) -> Result<Vec<Key>, ApiError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, prefix, app_id, name, created_at, revoked_at FROM api_keys
             WHERE org_id = $1 ORDER BY created_at, id",
            &[&org.0],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Key {
            key_id: row.get(0),
            prefix: row.get(1),
            app_id: row.get(2),
            name: row.get(3),
            created_at: row.get(4),
            revoked_at: row.get(5),
        })
        .collect())
}

/// Revokes a live key of the org; whether there was one.
pub async fn revoke(pool: &Pool, org: OrgId, key: Uuid) -> Result<bool, ApiError> {
    let client = pool.get().await?;
    let changed = client
        .execute(
            "UPDATE api_keys SET revoked_at = now()
             WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL",
            &[&key, &org.0],
        )
        .await?;
    Ok(changed == 1)
}

/// The keys made on first start.
#[derive(Debug)]
pub struct Bootstrapped {
    pub org: OrgId,
    pub app: App,
    pub org_key: CreatedKey,
    pub app_key: CreatedKey,
}

/// On a database with no app yet, creates the `default` org and app, an org key and an app
/// key. Two processes starting at once make them only once (an advisory lock).
pub async fn bootstrap(pool: &Pool) -> Result<Option<Bootstrapped>, ApiError> {
    /// The advisory lock's key: any constant unique to this purpose.
    const LOCK: i64 = 0x4841_5a49_4e41_0001;
    let client = pool.get().await?;
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK]).await?;
    let result = async {
        let any = client.query_one("SELECT EXISTS (SELECT 1 FROM apps)", &[]).await?;
        if any.get::<_, bool>(0) {
            return Ok(None);
        }
        let org = OrgId::generate();
        Store::new(pool.clone()).create_org(org, "default").await?;
        let app = insert_app(pool, org, "default").await?;
        let org_key = insert_key(pool, org, None, "default org key").await?;
        let app_key = insert_key(pool, org, Some(app.app_id), "default app key").await?;
        Ok(Some(Bootstrapped { org, app, org_key, app_key }))
    }
    .await;
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK]).await;
    result
}

/// The org a CLI command acts on: the given one, or the only one there is.
pub async fn only_org(pool: &Pool, org: Option<Uuid>) -> Result<OrgId, ApiError> {
    if let Some(org) = org {
        return Ok(OrgId(org));
    }
    let client = pool.get().await?;
    let rows = client.query("SELECT DISTINCT org_id FROM apps LIMIT 2", &[]).await?;
    match rows.as_slice() {
        [row] => Ok(OrgId(row.get(0))),
        [] => Err(ApiError::invalid(Code::NoOrg, "there is no org yet: start the server once")),
        _ => Err(ApiError::invalid(Code::SeveralOrgs, "there are several orgs: pass --org")),
    }
}

/// An app of the org by name.
pub async fn app_by_name(pool: &Pool, org: OrgId, name: &str) -> Result<Uuid, ApiError> {
    let client = pool.get().await?;
    client
        .query_opt("SELECT id FROM apps WHERE org_id = $1 AND name = $2", &[&org.0, &name])
        .await?
        .map(|row| row.get(0))
        .ok_or_else(|| ApiError::not_found("app"))
}
