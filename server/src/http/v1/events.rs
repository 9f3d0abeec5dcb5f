//! The event stream over HTTP: pages of events by sequence number (`GET /v1/events`) and the
//! same as Server-Sent Events (`GET /v1/events/stream`), resuming after `Last-Event-ID`, and
//! the stream's reply endpoint (`POST /v1/events/{eventId}/reply`), by which an app that reads
//! the stream answers a USSD or voice step. Thin over the events and messaging services.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use crate::code::Code;
use crate::events::{self, EventFilter, EventPage, EventType};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::{ApiError, Body, PathParams, QueryParams};
use crate::http::v1::page_size;

/// How often a stream looks for new events when it has seen them all.
const STREAM_POLL: Duration = Duration::from_millis(200);
/// How long one stream connection lasts: then it ends, and the client reconnects with
/// `Last-Event-ID` (a browser's `EventSource` does by itself), so that a server shutting down
/// waits for no stream longer than this.
const STREAM_LIFETIME: Duration = Duration::from_secs(30);
/// Events a stream reads at a time.
const STREAM_PAGE: i64 = 500;

/// A comma-separated list of event types, as the `types` parameters' attributes write it.
pub const TYPES_PATTERN: &str = r"^[a-z_.]+(,[a-z_.]+)*$";

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list_events))
        .routes(utoipa_axum::routes!(stream_events))
        .routes(utoipa_axum::routes!(reply_to_event))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Events after this sequence number (the previous page's `nextAfter`); from the first
    /// when absent.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Sequence numbers per page, 1 to 500 (default 50). A transfer's `balance.changed`
    /// events share its number, so a page may hold more events than this.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Only these types, comma-separated (every type but `balance.changed` when absent).
    #[param(pattern = r"^[a-z_.]+(,[a-z_.]+)*$", max_length = 1024)]
    pub types: Option<String>,
    /// Only this customer's events.
    pub customer_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Events after this sequence number, unless `Last-Event-ID` says otherwise; from the
    /// next event to happen when both are absent.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Only these types, comma-separated (every type but `balance.changed` when absent).
    #[param(pattern = r"^[a-z_.]+(,[a-z_.]+)*$", max_length = 1024)]
    pub types: Option<String>,
    /// Only this customer's events.
    pub customer_id: Option<Uuid>,
}

fn filter(
    caller: &Caller,
    types: Option<&str>,
    customer: Option<Uuid>,
) -> Result<EventFilter, ApiError> {
    let mut wanted = BTreeSet::new();
    for name in types.map(|types| types.split(',')).into_iter().flatten() {
        let kind = EventType::from_name(name).ok_or_else(|| {
            ApiError::bad_request(Code::InvalidQuery, format!("no event type is named {name:?}"))
        })?;
        wanted.insert(kind);
    }
    Ok(EventFilter { types: wanted, customer, app: caller.app })
}

fn cursor(after: Option<i64>) -> Result<Option<i64>, ApiError> {
    match after {
        Some(after) if after < 0 => {
            Err(ApiError::bad_request(Code::InvalidCursor, "after is a sequence number, 0 or more"))
        }
        other => Ok(other),
    }
}

/// The org's events in sequence order (an app key sees its app's and those of no app).
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventParams),
    responses((status = 200, body = EventPage)))]
async fn list_events(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<EventParams>,
) -> Result<Response, ApiError> {
    let filter = filter(&caller, params.types.as_deref(), params.customer_id)?;
    let after = cursor(params.after)?.unwrap_or(0);
    let limit = page_size(params.limit)?;
    let page = events::page(&state.pool, &state.store, caller.org, after, limit, &filter).await?;
    Ok(Json(page).into_response())
}

/// The org's events as Server-Sent Events (`text/event-stream`), each `data` an event's JSON
/// and its `id` the sequence number to resume after (sent on the last event of a sequence
/// number). A client that reconnects with `Last-Event-ID` misses nothing and sees nothing
/// twice. A connection lasts 30 seconds, then the client reconnects.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events", params(StreamParams,
    ("Last-Event-ID" = Option<i64>, Header, description = "The last sequence number seen")),
    responses((status = 200, content_type = "text/event-stream", body = String)))]
async fn stream_events(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<StreamParams>,
) -> Result<Response, ApiError> {
    let filter = filter(&caller, params.types.as_deref(), params.customer_id)?;
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(value) => {
            Some(value.to_str().ok().and_then(|text| text.trim().parse::<i64>().ok()).ok_or_else(
                || ApiError::bad_request(Code::InvalidCursor, "Last-Event-ID is a sequence number"),
            )?)
        }
    };
    let after = match cursor(last_event_id.or(params.after))? {
        Some(after) => after,
        None => events::last_sequence(&state.pool, caller.org).await?,
    };
    let org = caller.org;
    let stream = async_stream(state, org, after, filter);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

/// The stream's events: pages read one after another, polling when caught up, for
/// [`STREAM_LIFETIME`].
fn async_stream(
    state: AppState,
    org: hazina_ledger::OrgId,
    after: i64,
    filter: EventFilter,
) -> impl futures_util::Stream<Item = Result<sse::Event, Infallible>> {
    let until = tokio::time::Instant::now() + STREAM_LIFETIME;
    let initial = (state, after, std::collections::VecDeque::<sse::Event>::new());
    futures_util::stream::unfold(initial, move |(state, mut after, mut queued)| {
        let filter = filter.clone();
        async move {
            loop {
                if let Some(event) = queued.pop_front() {
                    return Some((Ok(event), (state, after, queued)));
                }
                if tokio::time::Instant::now() >= until {
                    return None;
                }
                match events::page(&state.pool, &state.store, org, after, STREAM_PAGE, &filter)
                    .await
                {
                    Ok(page) => {
                        queued.extend(sse_events(&page));
                        after = page.next_after;
                        if queued.is_empty() && !page.has_more {
                            tokio::time::sleep(STREAM_POLL).await;
                        }
                    }
                    Err(error) => {
                        // The client reconnects after its last id and misses nothing.
                        tracing::warn!(error = %crate::error_chain(&error),
                            "an event stream could not read; ending it");
                        return None;
                    }
                }
            }
        }
    })
}

/// A page's events as SSE events, the id on the last of each sequence number.
fn sse_events(page: &EventPage) -> Vec<sse::Event> {
    let mut out = Vec::with_capacity(page.events.len());
    for (i, event) in page.events.iter().enumerate() {
        let data = serde_json::to_string(event).unwrap_or_default();
        let mut sent = sse::Event::default().event(event.kind.as_str()).data(data);
        let last_of_sequence =
            page.events.get(i + 1).is_none_or(|next| next.sequence != event.sequence);
        if last_of_sequence {
            sent = sent.id(event.sequence.to_string());
        }
        out.push(sent);
    }
    out
}

/// Adds every event type's payload schema to the document, and says on `Event.data` which
/// schema each type's payload has.
pub fn document_payloads(document: &mut serde_json::Value) {
    let Some(schemas) =
        document.pointer_mut("/components/schemas").and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    for (name, schema) in crate::events::types::data_schemas() {
        if let Ok(schema) = serde_json::to_value(schema) {
            schemas.entry(name).or_insert(schema);
        }
    }
    let Some(data) =
        schemas.get_mut("Event").and_then(|event| event.pointer_mut("/properties/data"))
    else {
        return;
    };
    let by_type: Vec<String> = EventType::ALL
        .iter()
        .map(|kind| format!("`{}`: `{}`", kind.as_str(), kind.data_schema()))
        .collect();
    let refs: BTreeSet<String> = EventType::ALL.iter().map(|kind| kind.data_schema()).collect();
    *data = serde_json::json!({
        "description": format!("The type's payload: {}.", by_type.join(", ")),
        "anyOf": refs
            .iter()
            .map(|name| serde_json::json!({"$ref": format!("#/components/schemas/{name}")}))
            .collect::<Vec<_>>(),
    });
}

/// An app's reply to a session step it read on the stream.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"body": {"kind": "ussd", "text": "1. Pay KES 1,250\n2. Cancel", "isTerminal": false}}))]
pub struct StepReplyRequest {
    /// The next screen of a USSD session (`{"kind": "ussd", "text", "isTerminal"}`, at most
    /// 182 characters) or a voice call's next actions (`{"kind": "voice", "actions": […]}`):
    /// the body a webhook's response would carry.
    #[schema(value_type = Object)]
    pub body: hazina_providers::messaging::Body,
}

/// A session step's reply as the provider gets it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepReplyView {
    /// The `message.received` event of the step.
    pub event_id: Uuid,
    /// The messaging channel the step came on.
    pub channel_id: Uuid,
    #[schema(value_type = Object)]
    pub body: hazina_providers::messaging::Body,
    /// Who answered: `webhook`, `stream` or `fallback`.
    #[schema(example = "stream")]
    pub source: String,
    pub answered_at: chrono::DateTime<chrono::Utc>,
}

/// Answers a USSD or voice session step told by a `message.received` event, for an app that
/// reads the stream instead of answering webhooks: the provider gets this body if it comes
/// before the step's deadline and before any other answer (the app's webhook response, the
/// channel's fallback); otherwise 409 `reply_not_awaited`, as for an event that is no such
/// step. A body of the wrong kind for the channel is 422 `unsupported_body`.
#[utoipa::path(post, operation_id = "reply_to_event", path = "/v1/events/{event_id}/reply", tag = "events",
    params(("event_id" = Uuid, Path)), request_body = StepReplyRequest,
    responses((status = 200, body = StepReplyView)))]
async fn reply_to_event(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(event_id): PathParams<Uuid>,
    Body(reply): Body<StepReplyRequest>,
) -> Result<Response, ApiError> {
    let taken = state.messaging.reply(caller.org, caller.app, event_id, reply.body).await?;
    Ok(Json(StepReplyView {
        event_id: taken.event_id,
        channel_id: taken.channel_id,
        body: taken.body,
        source: taken.source.as_str().to_owned(),
        answered_at: taken.answered_at,
    })
    .into_response())
}
