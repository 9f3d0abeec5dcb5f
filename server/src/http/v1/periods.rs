//! Period close (org key): closing the org's books through a time, after which the ledger
//! refuses every transfer dated at or before it (`ledger_refused`, reason `period_closed`), and
//! the list of closes, each with the journal's hash-chain head when it was made.
//!
//! The ledger does the work (`Store::close_period`, `Store::period_closes`): the close is
//! ordered with the org's posting batches under its chain head's lock.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hazina_ledger::store::{PeriodClose, StoreError};
use serde::{Deserialize, Serialize};

use crate::code::Code;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::{ApiError, Body};

/// Longest note on a close, in characters.
pub const NOTE_LEN_MAX: usize = 500;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(close_period))
        .routes(utoipa_axum::routes!(list_period_closes))
}

/// A close to make.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"through": "2026-11-30T23:59:59.999999Z", "note": "November 2026"}))]
pub struct NewPeriodClose {
    /// The end of the period, inclusive: no transfer may then take effect at or before it. Not
    /// after the time now, and after the end of the last close.
    pub through: DateTime<Utc>,
    /// Why, or what the period is.
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

/// A closed period, and the journal's hash-chain head when it was closed: the hash covers
/// every transfer the ledger had recorded, so every transfer of the period.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeriodCloseView {
    pub through: DateTime<Utc>,
    pub closed_at: DateTime<Utc>,
    /// The id of the API key that closed it (or the tool's name).
    pub closed_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The position of the org's last transfer in its hash chain when the period was closed.
    pub chain_seq: i64,
    /// That transfer's chain hash (SHA-256, lower-case hex); 64 zeros before any transfer.
    #[schema(
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u001f\u007f-\u009f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub chain_hash: String,
}

impl PeriodCloseView {
    pub fn of(close: &PeriodClose) -> Self {
        Self {
            through: close.through,
            closed_at: close.closed_at,
            closed_by: close.closed_by.clone(),
            note: close.note.clone(),
            chain_seq: close.chain_seq,
            chain_hash: hazina_ledger::chain::to_hex(&close.chain_hash),
        }
    }
}

/// What a report covering a closed period carries: the close that covers it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClosedPeriodView {
    pub through: DateTime<Utc>,
    pub chain_seq: i64,
    #[schema(
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u001f\u007f-\u009f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub chain_hash: String,
}

impl ClosedPeriodView {
    pub fn of(close: &PeriodClose) -> Self {
        Self {
            through: close.through,
            chain_seq: close.chain_seq,
            chain_hash: hazina_ledger::chain::to_hex(&close.chain_hash),
        }
    }
}

/// Checks a close's note before anything is done.
///
/// # Errors
///
/// 422 `invalid_note` for a note longer than [`NOTE_LEN_MAX`] characters.
pub fn check_close(new: &NewPeriodClose) -> Result<(), ApiError> {
    if new.note.as_deref().is_some_and(|note| note.chars().count() > NOTE_LEN_MAX) {
        return Err(ApiError::invalid(Code::InvalidNote, "a note has at most 500 characters"));
    }
    Ok(())
}

/// Closes the org's books through `through` (org key). Afterwards a transfer dated at or
/// before it is refused (409 `ledger_refused`, reason `period_closed`); an adjustment goes into
/// the open period, dated now, naming the closed period in its context
/// (`hazina.adjusts_period`).
#[utoipa::path(post, operation_id = "close_period", path = "/v1/periods/close", tag = "reports",
    request_body = NewPeriodClose,
    responses((status = 201, body = PeriodCloseView)))]
async fn close_period(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewPeriodClose>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    check_close(&new)?;
    let closed_by = caller.key_id.to_string();
    let close = state
        .store
        .close_period(caller.org, new.through, &closed_by, new.note.as_deref())
        .await
        .map_err(refusal)?;
    Ok((StatusCode::CREATED, Json(PeriodCloseView::of(&close))).into_response())
}

/// The org's closed periods, oldest first (org key).
#[utoipa::path(get, operation_id = "list_period_closes", path = "/v1/periods", tag = "reports",
    responses((status = 200, body = Vec<PeriodCloseView>)))]
async fn list_period_closes(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let closes = state.reports.period_closes(caller.org).await?;
    Ok(Json(closes.iter().map(PeriodCloseView::of).collect::<Vec<_>>()).into_response())
}

/// A close the ledger refused, in the API's words.
pub(crate) fn refusal(error: StoreError) -> ApiError {
    match error {
        StoreError::PeriodAlreadyClosed => ApiError::new(
            StatusCode::CONFLICT,
            Code::PeriodAlreadyClosed,
            "the org's books are already closed through this time or later",
        ),
        StoreError::PeriodInFuture => {
            ApiError::invalid(Code::PeriodInFuture, "a period cannot be closed through the future")
        }
        other => ApiError::from(other),
    }
}
