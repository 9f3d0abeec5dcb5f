//! The stuck payments page: payments through a provider still unsettled beyond a threshold
//! (a form field, in minutes), oldest first, each with a form that settles it by hand —
//! outcome, receipt, reason — as `POST /v1/stuck-payments/{id}/settlement` does, recording
//! the session's key as who decided.

use askama::Template;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::finance::{bad_query, time};
use super::reconciliation::{channel_label, channels, path_id, see_other, who};
use super::{CsrfForm, Frame, UiError, UiSession, render};
use crate::code::Code;
use crate::http::AppState;
use crate::http::problem::ApiError;
use crate::http::v1::reconciliation::{SettlementBody, SettlementOutcome, settlement};

/// The threshold by default, and its bounds (the API's 60 s to 365 days), in minutes.
const MINUTES_DEFAULT: u64 = 60;
const MINUTES_MAX: u64 = 525_600;

/// How many payments the page lists.
const ROWS: i64 = 200;

/// The page's query: the threshold, and the payment just settled (to say so).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StuckQuery {
    older_than_minutes: Option<String>,
    settled: Option<String>,
}

/// A stuck payment as a row.
#[derive(Debug)]
struct StuckRow {
    id: String,
    created: String,
    channel: String,
    flow: &'static str,
    msisdn: String,
    amount: String,
    currency: &'static str,
    status: &'static str,
    receipt: String,
    provider_description: String,
    attempts: i32,
}

/// The payment just settled, as it is now.
#[derive(Debug)]
struct Settled {
    id: String,
    status: &'static str,
    description: String,
}

#[derive(Template)]
#[template(path = "ui/stuck.html")]
struct StuckPage {
    frame: Frame,
    minutes: u64,
    payments: Vec<StuckRow>,
    settled: Option<Settled>,
}

/// `GET /ui/stuck-payments?older_than_minutes=`: the payments unsettled for longer than the
/// threshold (an hour by default).
pub async fn stuck(
    session: UiSession,
    State(state): State<AppState>,
    query: Result<Query<StuckQuery>, QueryRejection>,
) -> Result<Response, UiError> {
    let page = async {
        let Query(query) = query.map_err(|rejection| bad_query(&rejection))?;
        let minutes = match query.older_than_minutes.as_deref().map(str::trim) {
            None | Some("") => MINUTES_DEFAULT,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|minutes| (1..=MINUTES_MAX).contains(minutes))
                .ok_or_else(|| {
                    UiError::bad_request(
                        Code::InvalidQuery,
                        format!("older_than_minutes is 1 to {MINUTES_MAX}"),
                    )
                })?,
        };
        let settled = match query.settled.as_deref().filter(|id| !id.is_empty()) {
            None => None,
            Some(id) => {
                let id = uuid::Uuid::try_parse(id).map_err(|_| {
                    UiError::bad_request(Code::InvalidQuery, "settled is a payment's id")
                })?;
                let record = state
                    .payments
                    .record(session.org, id)
                    .await
                    .map_err(ApiError::from)?
                    .ok_or_else(|| ApiError::not_found("payment"))?;
                Some(Settled {
                    id: id.to_string(),
                    status: record.status.as_str(),
                    description: record.provider_description.unwrap_or_default(),
                })
            }
        };
        let records = state
            .payments
            .stuck(session.org, std::time::Duration::from_secs(minutes * 60), ROWS)
            .await
            .map_err(ApiError::from)?;
        let channels = channels(&state, session.org).await?;
        let payments = records
            .iter()
            .map(|record| StuckRow {
                id: record.id.to_string(),
                created: time(record.created_at),
                channel: channel_label(&channels, record.channel),
                flow: record.flow.as_str(),
                msisdn: record.msisdn.clone(),
                amount: record.amount.amount().to_string(),
                currency: record.amount.currency().code(),
                status: record.status.as_str(),
                receipt: record.receipt.clone().unwrap_or_default(),
                provider_description: record.provider_description.clone().unwrap_or_default(),
                attempts: record.attempts,
            })
            .collect();
        Ok(render(&StuckPage {
            frame: session.frame("stuck-payments", "Stuck payments"),
            minutes,
            payments,
            settled,
        }))
    };
    page.await.map_err(|error: UiError| error.shown_to(&session))
}

/// The settle form's fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleForm {
    outcome: String,
    receipt: Option<String>,
    reason: String,
    /// The threshold of the page the form was on, to go back to it.
    older_than_minutes: Option<u64>,
}

/// `POST /ui/stuck-payments/{id}/settlement`: settles the payment by hand, then shows the list
/// again saying how the payment ended.
pub async fn settle(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    CsrfForm { session, form }: CsrfForm<SettleForm>,
) -> Result<Response, UiError> {
    let done = async {
        let id = path_id(path, "payment")?;
        let outcome = match form.outcome.as_str() {
            "success" => SettlementOutcome::Success,
            "failed" => SettlementOutcome::Failed,
            _ => {
                return Err(UiError::bad_request(
                    Code::InvalidBody,
                    "outcome is success or failed",
                ));
            }
        };
        let body = SettlementBody {
            outcome,
            receipt: form.receipt.filter(|receipt| !receipt.is_empty()),
            reason: form.reason,
        };
        let decision = settlement(body, who(&session))?;
        state.payments.settle_by_hand(session.org, id, &decision).await.map_err(ApiError::from)?;
        let minutes = form
            .older_than_minutes
            .filter(|minutes| (1..=MINUTES_MAX).contains(minutes))
            .unwrap_or(MINUTES_DEFAULT);
        Ok(see_other(&format!("/ui/stuck-payments?older_than_minutes={minutes}&settled={id}")))
    };
    done.await.map_err(|error: UiError| error.shown_to(&session))
}
