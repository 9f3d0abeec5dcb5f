//! The HTTP surface: the axum router, its probes, request ids and problem responses.

use std::future::Future;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tracing::Instrument as _;

use crate::code::Code;

pub mod auth;
pub mod callbacks;
pub mod idempotency;
pub mod metrics;
pub mod problem;
mod state;
pub mod ui;
pub mod v1;

pub use state::AppState;

/// The header that carries a request's id, in and out.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The readiness check gives up after this long: a probe must answer promptly.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest request id accepted from a client; a longer (or odd) one is replaced.
const REQUEST_ID_LEN_MAX: usize = 64;

/// The router: `GET /healthz` (the process serves), `GET /readyz` (and reaches the database),
/// the API under `/v1` ([`crate::api`]), its OpenAPI document at `/openapi.json` and a browser
/// for it at `/docs`.
pub fn router(state: AppState) -> Router {
    let (api, document) = crate::http::v1::routes();
    let api = api.route_layer(middleware::from_fn_with_state(
        state.clone(),
        crate::http::idempotency::layer,
    ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::http::metrics::render))
        .merge(api)
        .merge(crate::http::callbacks::routes(&state))
        // The finance web UI (`/ui`), server-rendered pages; not in the OpenAPI document.
        .merge(crate::http::ui::routes())
        // The document at /openapi.json, browsable at /docs; the UI's files are in the binary.
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/docs")
                .external_url_unchecked("/openapi.json", document),
        )
        .fallback(not_found)
        .layer(middleware::from_fn(crate::http::metrics::track))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then stops accepting and waits
/// for the requests in flight (graceful shutdown).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(state), crate::config::CONNECTIONS_MAX_DEFAULT, shutdown).await
}

/// Serves `app` on `listener`, at most `connections_max` connections at once, until
/// `shutdown` resolves, as [`serve_on`] does.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    app: Router,
    connections_max: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limited = Limited {
        listener,
        permits: std::sync::Arc::new(tokio::sync::Semaphore::new(connections_max.max(1))),
    };
    axum::serve(limited, app).with_graceful_shutdown(shutdown).await
}

/// A listener that holds a permit for every open connection: at the limit it stops accepting,
/// so that a flood of connections waits in the kernel instead of taking memory and tasks.
struct Limited {
    listener: tokio::net::TcpListener,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl axum::serve::Listener for Limited {
    type Io = LimitedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed, so acquiring waits for a permit and never fails.
        let permit = loop {
            if let Ok(permit) = std::sync::Arc::clone(&self.permits).acquire_owned().await {
                break permit;
            }
        };
        let (stream, address) = axum::serve::Listener::accept(&mut self.listener).await;
        (LimitedStream { stream, _permit: permit }, address)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A connection and the permit it holds until it closes.
struct LimitedStream {
    stream: tokio::net::TcpStream,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl tokio::io::AsyncRead for LimitedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// An `application/problem+json` response (RFC 9457) with a stable, snake_case `code`.
pub fn problem(status: StatusCode, code: crate::code::Code, detail: &str) -> Response {
    problem_with(status, code, detail, serde_json::Map::new())
}

/// A [`problem`] with more members, such as the ids a request was given.
pub fn problem_with(
    status: StatusCode,
    code: crate::code::Code,
    detail: &str,
    mut body: serde_json::Map<String, serde_json::Value>,
) -> Response {
    for (name, value) in [
        ("type", serde_json::json!("about:blank")),
        ("title", serde_json::json!(status.canonical_reason().unwrap_or("Error"))),
        ("status", serde_json::json!(status.as_u16())),
        ("code", serde_json::json!(code.as_str())),
        ("detail", serde_json::json!(detail)),
    ] {
        body.insert(name.to_owned(), value);
    }
    let content_type = HeaderValue::from_static("application/problem+json");
    (status, [(header::CONTENT_TYPE, content_type)], Json(body)).into_response()
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let outcome = tokio::time::timeout(READY_TIMEOUT, crate::db::ping(&state.pool)).await;
    let error = match outcome {
        Ok(Ok(())) => return Json(serde_json::json!({ "status": "ok" })).into_response(),
        Ok(Err(error)) => crate::error_chain(&error),
        Err(_) => format!("no answer within {}s", READY_TIMEOUT.as_secs()),
    };
    tracing::warn!(%error, "readiness check failed");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        Code::DatabaseUnavailable,
        "the database is unavailable",
    )
}

async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, Code::NotFound, "no such resource")
}

/// Gives every request an id (the client's `x-request-id` when sensible, else a new UUIDv7),
/// logs within a span that carries it, and returns it in the response.
async fn request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= REQUEST_ID_LEN_MAX
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    // The route's pattern, never the path: a callback's path carries its channel's secret
    // token, and paths carry ids that make no useful log field.
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", axum::extract::MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        route = %route,
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
