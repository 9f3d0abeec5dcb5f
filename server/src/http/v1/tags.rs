//! Tags across customers over HTTP: the handlers of `/v1/tags/…`, thin over the customers
//! service (`crate::customers::tags`, `crate::customers::reminders`).
//!
//! `/v1/tags/customers` lists the customers with a tag and tags or untags a set of them (the
//! org's data: any key of the org). `/v1/tags/reminders` keeps the calling app's reminders by
//! tag (an app key's). The tag is named in the query or the body, never the path: a tag is a
//! label that selects customers, not a resource that exists or not, so another org's tag reads
//! as one no customer has.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::page_size;
use crate::customers::reminders::{self, NewTagReminder, TagReminder};
use crate::customers::tags::{self, TagChange, TagCustomers, TaggedCustomers, UntagCustomers};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::{ApiError, Body, QueryParams};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tagged_customers, tag_customers))
        .routes(routes!(untag_customers))
        .routes(routes!(list_tag_reminders, set_tag_reminder, delete_tag_reminder))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaggedQuery {
    key: String,
    value: Option<String>,
    after: Option<Uuid>,
    limit: Option<i64>,
}

/// The org's customers with a live tag (of a value, if given), in customer id order, a page at
/// a time.
#[utoipa::path(
    get,
    path = "/v1/tags/customers",
    tag = "tags",
    params(
        ("key" = String, Query, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$", description = "The tag's key"),
        ("value" = Option<String>, Query, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$", description = "The tag's value; any when absent"),
        ("after" = Option<Uuid>, Query, description = "The previous page's `nextAfter`"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500,
            description = "Customers per page, 1 to 500 (default 50)"),
    ),
    responses(
        (status = 200, description = "A page of the customers with the tag", body = TaggedCustomers),
    ),
    security(("bearer" = [])),
)]
async fn list_tagged_customers(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<TaggedQuery>,
) -> Result<Json<TaggedCustomers>, ApiError> {
    let limit = page_size(query.limit)?;
    let page = tags::customers(
        &state.pool,
        caller.org,
        &query.key,
        query.value.as_deref(),
        query.after,
        limit,
    )
    .await?;
    Ok(Json(page))
}

/// Sets a tag on up to 500 customers (a key already there takes the new value and expiry):
/// all of them, or none when one is not the org's.
#[utoipa::path(
    post,
    path = "/v1/tags/customers",
    tag = "tags",
    request_body = TagCustomers,
    responses(
        (status = 200, description = "The customers whose tag was added or changed", body = TagChange),
    ),
    security(("bearer" = [])),
)]
async fn tag_customers(
    caller: Caller,
    State(state): State<AppState>,
    Body(change): Body<TagCustomers>,
) -> Result<Json<TagChange>, ApiError> {
    Ok(Json(tags::tag(&state.pool, caller.org, &change).await?))
}

/// Removes a tag from up to 500 customers (one without it is fine): from all of them, or from
/// none when one is not the org's.
#[utoipa::path(
    post,
    path = "/v1/tags/customers/remove",
    tag = "tags",
    request_body = UntagCustomers,
    responses(
        (status = 200, description = "The customers whose tag was removed", body = TagChange),
    ),
    security(("bearer" = [])),
)]
async fn untag_customers(
    caller: Caller,
    State(state): State<AppState>,
    Body(change): Body<UntagCustomers>,
) -> Result<Json<TagChange>, ApiError> {
    Ok(Json(tags::untag(&state.pool, caller.org, &change).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagReminders {
    pub reminders: Vec<TagReminder>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TagRemindersQuery {
    tag_key: Option<String>,
}

/// The calling app's reminders by tag (of a tag key, if given), soonest first.
#[utoipa::path(
    get,
    path = "/v1/tags/reminders",
    tag = "tags",
    params(
        ("tagKey" = Option<String>, Query, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$", description = "Only the reminders of this tag key"),
    ),
    responses(
        (status = 200, description = "The reminders by tag", body = TagReminders),
    ),
    security(("bearer" = [])),
)]
async fn list_tag_reminders(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<TagRemindersQuery>,
) -> Result<Json<TagReminders>, ApiError> {
    let app = caller.app_key()?;
    let reminders =
        reminders::list_by_tag(&state.pool, caller.org, app, query.tag_key.as_deref()).await?;
    Ok(Json(TagReminders { reminders }))
}

/// Sets one of the calling app's reminders by tag, replacing the one with its tag key and key.
/// When it falls due, every customer with the tag then gets a `reminder.due` event.
#[utoipa::path(
    post,
    path = "/v1/tags/reminders",
    tag = "tags",
    request_body = NewTagReminder,
    responses(
        (status = 200, description = "The reminder replaced one with its tag key and key", body = TagReminder),
        (status = 201, description = "The reminder is new", body = TagReminder),
    ),
    security(("bearer" = [])),
)]
async fn set_tag_reminder(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewTagReminder>,
) -> Result<(StatusCode, Json<TagReminder>), ApiError> {
    let app = caller.app_key()?;
    let (reminder, created) = reminders::set_by_tag(&state.pool, caller.org, app, &new).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(reminder)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TagReminderQuery {
    tag_key: String,
    key: String,
}

/// Cancels one of the calling app's reminders by tag (nothing to cancel is fine).
#[utoipa::path(
    delete,
    path = "/v1/tags/reminders",
    tag = "tags",
    params(
        ("tagKey" = String, Query, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$", description = "The reminder's tag key"),
        ("key" = String, Query, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$", description = "The reminder's key"),
    ),
    responses(
        (status = 204, description = "The app has no reminder by tag with the tag key and key"),
    ),
    security(("bearer" = [])),
)]
async fn delete_tag_reminder(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<TagReminderQuery>,
) -> Result<StatusCode, ApiError> {
    let app = caller.app_key()?;
    reminders::delete_by_tag(&state.pool, caller.org, app, &query.tag_key, &query.key).await?;
    Ok(StatusCode::NO_CONTENT)
}
