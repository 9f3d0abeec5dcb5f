//! `Idempotency-Key` on every `POST`: the first response is stored per API key and
//! Idempotency-Key, and a replay with the same body gets it back as it was, headers included
//! (with `Idempotent-Replayed: true`); the same key with a different body is a 422
//! `idempotency_key_reused`; a replay while the first is still running is a 409
//! `idempotency_request_in_progress`.
//!
//! A first request runs to its end even when its client goes away or its answer times out (it
//! runs as a task of its own), and holds its key by a lease it renews while it runs: a retry
//! never takes it over and runs it a second time. Only when the process running it died does
//! the lease lapse, and the next retry runs it again.
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

use super::auth::Caller;
use super::problem::ApiError;
use crate::code::Code;
use crate::http::AppState;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Longest key accepted.
pub const KEY_LEN_MAX: usize = 255;
/// How long a running first request holds its key without renewing the hold; it renews it
/// every third of this, so only a request whose process died loses it.
const LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// Response headers not kept for replays: each answer has its own.
const UNKEPT_HEADERS: [&str; 5] =
    ["date", "content-length", "transfer-encoding", "connection", "x-request-id"];

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
                Code::InvalidIdempotencyKey,
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
    let bytes = to_bytes(body, super::v1::finance::BATCH_BODY_BYTES_MAX).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, Code::BodyTooLarge, "the body is too large")
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
            "INSERT INTO idempotent_requests
                 (org_id, caller, key, request_sha256, status, response, running_until)
             VALUES ($1, $2, $3, $4, 0, 'null', now() + make_interval(secs => $5))
             ON CONFLICT (org_id, caller, key) DO UPDATE
                 SET request_sha256 = EXCLUDED.request_sha256, created_at = now(),
                     running_until = EXCLUDED.running_until
                 WHERE idempotent_requests.status = 0
                     AND idempotent_requests.request_sha256 = EXCLUDED.request_sha256
                     AND COALESCE(idempotent_requests.running_until,
                         idempotent_requests.created_at + interval '1 minute') < now()",
            &[&caller.org.0, &scope, &key, &digest, &LEASE.as_secs_f64()],
        )
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    if claimed == 0 {
        let row = client
            .query_one(
                "SELECT request_sha256, status, response, response_headers, response_body
                 FROM idempotent_requests WHERE org_id = $1 AND caller = $2 AND key = $3",
                &[&caller.org.0, &scope, &key],
            )
            .await
            .map_err(|e| ApiError::from(e).into_response())?;
        let stored: Vec<u8> = row.get(0);
        if stored != digest {
            return Err(ApiError::invalid(
                Code::IdempotencyKeyReused,
                "this Idempotency-Key was used with a different request",
            )
            .into_response());
        }
        let status: i16 = row.get(1);
        if status == 0 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                Code::IdempotencyRequestInProgress,
                "the first request with this Idempotency-Key is still running; retry shortly",
            )
            .into_response());
        }
        return Ok(stored_response(status, &row.get(2), row.get(3), row.get(4)));
    }
    drop(client);

    run_first(state.clone(), caller, key, Request::from_parts(parts, Body::from(bytes)), next).await
}

/// Runs the first request with a key as a task of its own, so that it runs to its end and
/// stores its answer whatever happens to the request that started it (a client gone, a timeout).
async fn run_first(
    state: AppState,
    caller: Caller,
    key: String,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    let first = tokio::spawn(async move {
        let response = tokio::select! {
            response = next.run(request) => response,
            () = renew_lease(&state, &caller, &key) => unreachable_lease(),
        };
        record(&state, &caller, &key, response).await
    });
    match first.await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::error!(%error, "a request with an Idempotency-Key failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::InternalError,
                "the request failed; retry it with the same Idempotency-Key",
            )
            .into_response())
        }
    }
}

/// Renews the first request's hold on its key while it runs (never returns).
async fn renew_lease(state: &AppState, caller: &Caller, key: &str) {
    let scope = caller.scope();
    loop {
        tokio::time::sleep(LEASE / 3).await;
        let renewed = match state.pool.get().await {
            Ok(client) => client
                .execute(
                    "UPDATE idempotent_requests
                     SET running_until = now() + make_interval(secs => $4)
                     WHERE org_id = $1 AND caller = $2 AND key = $3 AND status = 0",
                    &[&caller.org.0, &scope, &key, &LEASE.as_secs_f64()],
                )
                .await
                .map(drop)
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = renewed {
            tracing::warn!(%error, "could not renew a running request's Idempotency-Key lease");
        }
    }
}

/// What the lease's never-ending renewal "returns".
fn unreachable_lease() -> Response {
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
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
        let code = i16::try_from(status.as_u16()).unwrap_or(i16::MAX);
        let headers: serde_json::Map<String, serde_json::Value> = parts
            .headers
            .iter()
            .filter(|(name, _)| !UNKEPT_HEADERS.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), serde_json::json!(value.to_str().ok()?)))
            })
            .collect();
        client
            .execute(
                "UPDATE idempotent_requests SET status = $4, response = 'null',
                     response_headers = $5, response_body = $6, running_until = NULL
                 WHERE org_id = $1 AND caller = $2 AND key = $3",
                &[
                    &caller.org.0,
                    &scope,
                    &key,
                    &code,
                    &serde_json::Value::Object(headers),
                    &bytes.as_ref(),
                ],
            )
            .await
            .map_err(|e| ApiError::from(e).into_response())?;
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// A stored answer as it was first given: its status, headers and body (older rows kept only
/// a JSON body).
fn stored_response(
    status: i16,
    json: &serde_json::Value,
    headers: Option<serde_json::Value>,
    body: Option<Vec<u8>>,
) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = match (headers, body) {
        (Some(headers), Some(body)) => {
            let mut response = (status, body).into_response();
            response.headers_mut().remove(header::CONTENT_TYPE);
            for (name, value) in headers.as_object().into_iter().flatten() {
                let name = HeaderName::from_bytes(name.as_bytes());
                let value = value.as_str().map(HeaderValue::from_str);
                if let (Ok(name), Some(Ok(value))) = (name, value) {
                    response.headers_mut().append(name, value);
                }
            }
            response
        }
        _ if json.is_null() => status.into_response(),
        _ => {
            let content_type = if status.is_client_error() {
                "application/problem+json"
            } else {
                "application/json"
            };
            let mut response = (status, axum::Json(json)).into_response();
            let value = HeaderValue::from_static(content_type);
            response.headers_mut().insert(header::CONTENT_TYPE, value);
            response
        }
    };
    response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
