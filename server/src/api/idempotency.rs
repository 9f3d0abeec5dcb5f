//! `Idempotency-Key` on every `POST`: the first response is stored per caller and key, and a
//! replay with the same body gets it back (with `Idempotent-Replayed: true`); the same key with
//! a different body is a 422 `idempotency_key_reused`; a replay while the first is still
//! running is a 409 `idempotency_request_in_progress`.
//!
//! Money is safe even if a process dies between moving it and storing the response: payments
//! and transfers sent without an id take one derived from the key ([`derived_id`]), so running
//! the request again finds the ledger's original outcome.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Longest key accepted.
pub const KEY_LEN_MAX: usize = 255;
/// A first request still marked running after this long is taken to have died.
const ABANDONED_AFTER_SECONDS: f64 = 60.0;

/// The key of a request, refused when malformed.
pub fn key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(&IDEMPOTENCY_KEY) else { return Ok(None) };
    value
        .to_str()
        .ok()
        .filter(|key| !key.is_empty() && key.len() <= KEY_LEN_MAX)
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "an Idempotency-Key has 1 to 255 visible ASCII characters",
            )
        })
}

/// The id a payment or transfer takes when the request names none but has a key: the same key
/// from the same caller always gives the same id.
pub fn derived_id(caller: &Caller, headers: &HeaderMap) -> Option<Uuid> {
    let key = key(headers).ok().flatten()?;
    let name = format!("{}/{}/{key}", caller.org.0, caller.scope());
    Some(Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()))
}

/// The middleware (on the `/v1` routes).
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match handle(&state, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn handle(state: &AppState, request: Request, next: Next) -> Result<Response, Response> {
    if request.method() != Method::POST {
        return Ok(next.run(request).await);
    }
    let Some(key) = key(request.headers()).map_err(IntoResponse::into_response)?.map(str::to_owned)
    else {
        return Ok(next.run(request).await);
    };
    // Unauthenticated requests go on, to be refused by the handler.
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    let caller = match token {
        Some(token) => state
            .keys
            .authenticate(&state.pool, token.trim())
            .await
            .map_err(IntoResponse::into_response)?,
        None => None,
    };
    let Some(caller) = caller else { return Ok(next.run(request).await) };
    // The handler's `Caller` extractor takes it from here instead of authenticating again.
    let mut request = request;
    request.extensions_mut().insert(caller);

    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, super::finance::BATCH_BODY_BYTES_MAX).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the body is too large")
            .into_response()
    })?;
    let mut hasher = Sha256::new();
    hasher.update(parts.uri.path().as_bytes());
    hasher.update([0]);
    hasher.update(&bytes);
    let digest = hasher.finalize().to_vec();
    let scope = caller.scope();

    let client = state.pool.get().await.map_err(|e| ApiError::from(e).into_response())?;
    let claimed = client
        .execute(
            "INSERT INTO idempotent_requests (org_id, caller, key, request_sha256, status, response)
             VALUES ($1, $2, $3, $4, 0, 'null')
             ON CONFLICT (org_id, caller, key) DO UPDATE
                 SET request_sha256 = EXCLUDED.request_sha256, created_at = now()
                 WHERE idempotent_requests.status = 0
                     AND idempotent_requests.request_sha256 = EXCLUDED.request_sha256
                     AND idempotent_requests.created_at
                         < now() - make_interval(secs => $5)",
            &[&caller.org.0, &scope, &key, &digest, &ABANDONED_AFTER_SECONDS],
        )
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    if claimed == 0 {
        let row = client
            .query_one(
                "SELECT request_sha256, status, response FROM idempotent_requests
                 WHERE org_id = $1 AND caller = $2 AND key = $3",
                &[&caller.org.0, &scope, &key],
            )
            .await
            .map_err(|e| ApiError::from(e).into_response())?;
        let stored: Vec<u8> = row.get(0);
        if stored != digest {
            return Err(ApiError::invalid(
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            )
            .into_response());
        }
        let status: i16 = row.get(1);
        if status == 0 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_request_in_progress",
                "the first request with this Idempotency-Key is still running; retry shortly",
            )
            .into_response());
        }
        let body: serde_json::Value = row.get(2);
        return Ok(stored_response(status, &body));
    }
    drop(client);

    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    record(state, &caller, &key, response).await
}

/// Stores the first response under the key (or frees the key after a server error).
async fn record(
    state: &AppState,
    caller: &Caller,
    key: &str,
    response: Response,
) -> Result<Response, Response> {
    let scope = caller.scope();
    let status = response.status();
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let client = state.pool.get().await.map_err(|e| ApiError::from(e).into_response())?;
    if status.is_server_error() {
        // Nothing worth keeping: let a retry run the request again.
        let _ = client
            .execute(
                "DELETE FROM idempotent_requests WHERE org_id = $1 AND caller = $2 AND key = $3",
                &[&caller.org.0, &scope, &key],
            )
            .await;
    } else {
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        let code = i16::try_from(status.as_u16()).unwrap_or(i16::MAX);
        client
            .execute(
                "UPDATE idempotent_requests SET status = $4, response = $5
                 WHERE org_id = $1 AND caller = $2 AND key = $3",
                &[&caller.org.0, &scope, &key, &code, &json],
            )
            .await
            .map_err(|e| ApiError::from(e).into_response())?;
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

fn stored_response(status: i16, body: &serde_json::Value) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::OK);
    let content_type =
        if status.is_client_error() { "application/problem+json" } else { "application/json" };
    let mut response = if body.is_null() {
        status.into_response()
    } else {
        (status, axum::Json(body)).into_response()
    };
    if !body.is_null() {
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
