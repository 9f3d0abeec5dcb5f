//! The reconciliation pages: the runs (and a form to start one), a run with the exceptions it
//! raised, the exceptions queue (open or resolved), and an exception with what it is made of
//! and the forms that assign and resolve it.
//!
//! The forms go through the checks of the API's handlers (`run_rules`, `resolution`, `text`
//! of `crate::http::v1::reconciliation`) and call the same service methods, so a refusal has
//! the API's status and code and changes nothing. Who decided is recorded as the API records
//! it: the session's key.

use std::collections::HashMap;

use askama::Template;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Datelike as _, NaiveDate};
use hazina_ledger::rules::AccountKind;
use hazina_ledger::{Currency, Money, OrgId};
use serde::Deserialize;
use uuid::Uuid;

use super::finance::{bad_query, time};
use super::{CsrfForm, Frame, UiError, UiSession, render};
use crate::code::Code;
use crate::http::AppState;
use crate::http::problem::ApiError;
use crate::http::v1::reconciliation::{
    NewRunBody, ResolutionAction, ResolutionBody, resolution, run_rules, text,
};
use crate::payments::ChannelSummary;
use crate::reconciliation::{
    Exception, ExceptionFilter, ExceptionKind, ExceptionStatus, NewRun, RunSummary,
};

/// How many runs the runs page lists, and exceptions a page of the queue or of a run.
const PAGE_ROWS: i64 = 100;

/// Accounts offered as the other side of an adjustment, per kind.
const COUNTER_ACCOUNTS_MAX: i64 = 200;

/// Who decided, as the API records it (`crate::http::v1::reconciliation`'s `who`): the key.
pub(super) fn who(session: &UiSession) -> String {
    format!("key {}", session.key_id)
}

/// A payment channel as a form's choice and a table's cell.
#[derive(Debug)]
pub(super) struct ChannelOption {
    pub id: String,
    pub label: String,
    pub currency: Currency,
}

/// The org's payment channels, by id.
pub(super) async fn channels(state: &AppState, org: OrgId) -> Result<Vec<ChannelOption>, UiError> {
    let channels = state.payments.list_channels(org).await.map_err(ApiError::from)?;
    Ok(channels.iter().map(channel_option).collect())
}

fn channel_option(channel: &ChannelSummary) -> ChannelOption {
    let name = channel
        .name
        .clone()
        .unwrap_or_else(|| format!("{} {}", channel.provider.as_str(), channel.number));
    ChannelOption {
        id: channel.id.to_string(),
        label: format!("{name} · {}", channel.currency.code()),
        currency: channel.currency,
    }
}

/// A channel's label among `channels`, or its id when it is not one of them.
pub(super) fn channel_label(channels: &[ChannelOption], id: Uuid) -> String {
    let id = id.to_string();
    channels.iter().find(|channel| channel.id == id).map_or(id, |channel| channel.label.clone())
}

/// The id of a page's path, refused 400 `invalid_path` when it is not a UUID.
pub(super) fn path_id(
    path: Result<Path<String>, PathRejection>,
    what: &str,
) -> Result<Uuid, UiError> {
    let Path(id) =
        path.map_err(|rejection| UiError::bad_request(Code::InvalidPath, rejection.body_text()))?;
    Uuid::try_parse(&id).map_err(|_| {
        UiError::bad_request(Code::InvalidPath, format!("the {what} id is not a UUID"))
    })
}

/// A form field that must be a UUID: 400 `invalid_body` otherwise.
pub(super) fn field_id(name: &str, value: &str) -> Result<Uuid, UiError> {
    Uuid::try_parse(value.trim()).map_err(|_| {
        UiError::bad_request(Code::InvalidBody, format!("{name} is not an id (a UUID)"))
    })
}

/// A form field that must be a date: 400 `invalid_body` otherwise.
fn field_date(name: &str, value: &str) -> Result<NaiveDate, UiError> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
        UiError::bad_request(Code::InvalidBody, format!("{name} is not a date: YYYY-MM-DD"))
    })
}

/// 303 to `to`: the answer to a form that did what it asked (the page it leads to shows it).
pub(super) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

// --- Runs -----------------------------------------------------------------------------------

/// A run as a row and a header.
#[derive(Debug)]
struct RunRow {
    id: String,
    channel: String,
    from: String,
    to: String,
    date_tolerance_days: u32,
    amount_tolerance: String,
    net_fees: bool,
    lines: i32,
    transfers: i32,
    matched: i32,
    differences: i32,
    unmatched_lines: i32,
    unmatched_transfers: i32,
    exceptions_opened: i32,
    exceptions_resolved: i32,
    started_by: String,
    created: String,
}

fn run_row(run: &RunSummary, channels: &[ChannelOption]) -> RunRow {
    let currency = channels
        .iter()
        .find(|channel| channel.id == run.channel_id.to_string())
        .map(|channel| channel.currency);
    let amount_tolerance = currency.map_or_else(
        || run.amount_tolerance_minor.to_string(),
        |currency| Money::from_minor(currency, run.amount_tolerance_minor).amount().to_string(),
    );
    RunRow {
        id: run.id.map(|id| id.to_string()).unwrap_or_default(),
        channel: channel_label(channels, run.channel_id),
        from: run.from.to_string(),
        to: run.to.to_string(),
        date_tolerance_days: run.date_tolerance_days,
        amount_tolerance,
        net_fees: run.net_fees,
        lines: run.lines,
        transfers: run.items,
        matched: run.matched,
        differences: run.differences,
        unmatched_lines: run.unmatched_lines,
        unmatched_transfers: run.unmatched_items,
        exceptions_opened: run.exceptions_opened,
        exceptions_resolved: run.exceptions_resolved,
        started_by: run.started_by.clone(),
        created: run.created_at.map(time).unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "ui/runs.html")]
struct RunsPage {
    frame: Frame,
    channels: Vec<ChannelOption>,
    runs: Vec<RunRow>,
    /// The start form's default period: this month so far.
    from: String,
    to: String,
}

/// `GET /ui/reconciliation`: the org's runs, newest first, and the form that starts one.
pub async fn runs(session: UiSession, State(state): State<AppState>) -> Result<Response, UiError> {
    let page = async {
        let channels = channels(&state, session.org).await?;
        let runs = state
            .reconciliation
            .runs(session.org, None, PAGE_ROWS)
            .await
            .map_err(ApiError::from)?;
        let today = chrono::Utc::now().date_naive();
        let first = today.with_day(1).unwrap_or(today);
        Ok(render(&RunsPage {
            frame: session.frame("reconciliation", "Reconciliation"),
            runs: runs.iter().map(|run| run_row(run, &channels)).collect(),
            channels,
            from: first.to_string(),
            to: today.to_string(),
        }))
    };
    page.await.map_err(|error: UiError| error.shown_to(&session))
}

/// The start form's fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunForm {
    channel: String,
    from: String,
    to: String,
    date_tolerance_days: Option<String>,
    amount_tolerance: Option<String>,
    /// A checkbox: present when ticked.
    net_fees: Option<String>,
}

/// `POST /ui/reconciliation/runs`: starts a run as `POST /v1/reconciliation/runs` does, then
/// shows it.
pub async fn start_run(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<RunForm>,
) -> Result<Response, UiError> {
    let done = async {
        let channel_id = field_id("channel", &form.channel)?;
        let date_tolerance_days = match form.date_tolerance_days.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(days) => Some(days.parse::<u32>().map_err(|_| {
                UiError::from(ApiError::invalid(Code::InvalidValue, "dateToleranceDays is 0 to 31"))
            })?),
        };
        let body = NewRunBody {
            channel_id,
            from: field_date("from", &form.from)?,
            to: field_date("to", &form.to)?,
            date_tolerance_days,
            amount_tolerance: form
                .amount_tolerance
                .map(|text| text.trim().to_owned())
                .filter(|text| !text.is_empty()),
            net_fees: Some(form.net_fees.is_some()),
            dry_run: Some(false),
        };
        let channel = state
            .payments
            .channel(session.org, channel_id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::not_found("channel"))?;
        let rules = run_rules(&body, channel.currency)?;
        let run = state
            .reconciliation
            .run(&NewRun {
                org: session.org,
                channel: channel.id,
                from: body.from,
                to: body.to,
                rules,
                dry_run: false,
                started_by: who(&session),
            })
            .await
            .map_err(ApiError::from)?;
        let id = run.id.ok_or_else(|| {
            UiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::InternalError,
                "the run has no id",
            )
        })?;
        Ok(see_other(&format!("/ui/reconciliation/runs/{id}")))
    };
    done.await.map_err(|error: UiError| error.shown_to(&session))
}

#[derive(Template)]
#[template(path = "ui/run.html")]
struct RunPage {
    frame: Frame,
    run: RunRow,
    exceptions: Vec<ExceptionRow>,
}

/// `GET /ui/reconciliation/runs/{id}`: a run and the exceptions it raised.
pub async fn run(
    session: UiSession,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, UiError> {
    let page = async {
        let id = path_id(path, "run")?;
        let run =
            state.reconciliation.run_summary(session.org, id).await.map_err(ApiError::from)?;
        let channels = channels(&state, session.org).await?;
        let filter = ExceptionFilter {
            channel: None,
            run: Some(id),
            status: None,
            before: None,
            limit: crate::http::v1::PAGE_SIZE_MAX,
        };
        let exceptions =
            state.reconciliation.exceptions(session.org, &filter).await.map_err(ApiError::from)?;
        Ok(render(&RunPage {
            frame: session.frame("run", format!("Run of {} to {}", run.from, run.to)),
            run: run_row(&run, &channels),
            exceptions: exceptions.iter().map(|e| exception_row(e, &channels)).collect(),
        }))
    };
    page.await.map_err(|error: UiError| error.shown_to(&session))
}

// --- Exceptions -----------------------------------------------------------------------------

/// An exception as a row of a list.
#[derive(Debug)]
struct ExceptionRow {
    id: String,
    channel: String,
    kind: &'static str,
    direction: &'static str,
    amount: String,
    currency: &'static str,
    difference: String,
    value_date: String,
    receipt: String,
    status: &'static str,
    owner: String,
    resolution: String,
    created: String,
}

fn direction(exception: &Exception) -> &'static str {
    match exception.direction {
        crate::reconciliation::Direction::In => "in",
        crate::reconciliation::Direction::Out => "out",
    }
}

fn exception_row(exception: &Exception, channels: &[ChannelOption]) -> ExceptionRow {
    ExceptionRow {
        id: exception.id.to_string(),
        channel: channel_label(channels, exception.channel),
        kind: exception.kind.as_str(),
        direction: direction(exception),
        amount: exception.amount.amount().to_string(),
        currency: exception.amount.currency().code(),
        difference: exception.difference.amount().to_string(),
        value_date: exception.value_date.to_string(),
        receipt: exception.line_receipt.clone().unwrap_or_default(),
        status: exception.status.as_str(),
        owner: exception.owner.clone().unwrap_or_default(),
        resolution: exception.resolution.clone().unwrap_or_default(),
        created: time(exception.created_at),
    }
}

/// The queue's query: which exceptions (`open`, the default, `resolved` or `all`) and the page
/// (`before`: the last id of the page before).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    status: Option<String>,
    before: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/exceptions.html")]
struct QueuePage {
    frame: Frame,
    status: &'static str,
    exceptions: Vec<ExceptionRow>,
    next: Option<String>,
}

/// `GET /ui/reconciliation/exceptions?status=open|resolved|all`: the org's exceptions, newest
/// first, a page at a time.
pub async fn queue(
    session: UiSession,
    State(state): State<AppState>,
    query: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Response, UiError> {
    let page = async {
        let Query(query) = query.map_err(|rejection| bad_query(&rejection))?;
        let (status, filter_status) = match query.status.as_deref().unwrap_or("open") {
            "open" => ("open", Some(ExceptionStatus::Open)),
            "resolved" => ("resolved", Some(ExceptionStatus::Resolved)),
            "all" => ("all", None),
            _ => {
                return Err(UiError::bad_request(
                    Code::InvalidQuery,
                    "status is open, resolved or all",
                ));
            }
        };
        let before = match query.before.as_deref().filter(|before| !before.is_empty()) {
            None => None,
            Some(before) => Some(Uuid::try_parse(before).map_err(|_| {
                UiError::bad_request(Code::InvalidCursor, "before is an exception's id")
            })?),
        };
        let filter = ExceptionFilter {
            channel: None,
            run: None,
            status: filter_status,
            before,
            limit: PAGE_ROWS,
        };
        let exceptions =
            state.reconciliation.exceptions(session.org, &filter).await.map_err(ApiError::from)?;
        let channels = channels(&state, session.org).await?;
        let full = i64::try_from(exceptions.len()).is_ok_and(|n| n == PAGE_ROWS);
        let next = exceptions.last().filter(|_| full).map(|last| {
            format!("/ui/reconciliation/exceptions?status={status}&before={}", last.id)
        });
        Ok(render(&QueuePage {
            frame: session.frame("exceptions", "Exceptions"),
            status,
            exceptions: exceptions.iter().map(|e| exception_row(e, &channels)).collect(),
            next,
        }))
    };
    page.await.map_err(|error: UiError| error.shown_to(&session))
}

/// An exception in full.
#[derive(Debug)]
struct ExceptionDetail {
    row: ExceptionRow,
    run_id: String,
    line_key: String,
    line_reference: String,
    line_counterparty: String,
    line_description: String,
    transfer_id: String,
    note: String,
    resolution_transfer_id: String,
    reason: String,
    resolved_by: String,
    resolved: String,
}

/// An account offered as the other side of an adjustment.
#[derive(Debug)]
struct AccountOption {
    id: String,
    label: String,
}

/// Another open exception of the channel, offered to match with.
#[derive(Debug)]
struct MatchOption {
    id: String,
    label: String,
}

#[derive(Template)]
#[template(path = "ui/exception.html")]
struct ExceptionPage {
    frame: Frame,
    /// Open or resolved: see `exception.row.status`.
    exception: ExceptionDetail,
    /// The resolutions that fit it (the service refuses the others).
    can_match: bool,
    can_record_payment: bool,
    can_settle_payment: bool,
    counter_accounts: Vec<AccountOption>,
    match_options: Vec<MatchOption>,
}

/// The accounts of the org in `currency` an adjustment may book against: purses, revenue,
/// expense and equity accounts (a clearing account is the adjustment's own side).
async fn counter_accounts(
    state: &AppState,
    org: OrgId,
    currency: Currency,
) -> Result<Vec<AccountOption>, UiError> {
    let mut options = Vec::new();
    for kind in
        [AccountKind::Purse, AccountKind::Expense, AccountKind::Revenue, AccountKind::Equity]
    {
        let accounts = state
            .store
            .accounts(org, kind, None, None, COUNTER_ACCOUNTS_MAX)
            .await
            .map_err(ApiError::from)?;
        options.extend(accounts.into_iter().filter(|a| a.currency == currency && !a.closed).map(
            |account| AccountOption {
                id: account.id.0.to_string(),
                label: format!(
                    "{} ({})",
                    account.name.unwrap_or_else(|| account.id.0.to_string()),
                    kind.as_str()
                ),
            },
        ));
    }
    Ok(options)
}

/// `GET /ui/reconciliation/exceptions/{id}`: an exception, its line and transfer, and (while
/// it is open) the forms that assign and resolve it.
pub async fn exception(
    session: UiSession,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, UiError> {
    let page = async {
        let id = path_id(path, "exception")?;
        let exception =
            state.reconciliation.exception(session.org, id).await.map_err(ApiError::from)?;
        let channels = channels(&state, session.org).await?;
        let open = exception.status == ExceptionStatus::Open;
        let (counter_accounts, match_options) = if open {
            let currency = exception.amount.currency();
            let filter = ExceptionFilter {
                channel: Some(exception.channel),
                run: None,
                status: Some(ExceptionStatus::Open),
                before: None,
                limit: crate::http::v1::PAGE_SIZE_MAX,
            };
            let others = state
                .reconciliation
                .exceptions(session.org, &filter)
                .await
                .map_err(ApiError::from)?;
            let match_options = others
                .iter()
                .filter(|other| {
                    other.id != exception.id
                        && other.kind != ExceptionKind::Difference
                        && other.direction == exception.direction
                })
                .map(|other| MatchOption {
                    id: other.id.to_string(),
                    label: format!(
                        "{} {} {} on {}{}",
                        other.kind.as_str(),
                        other.amount.amount(),
                        other.amount.currency().code(),
                        other.value_date,
                        other
                            .line_receipt
                            .as_deref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    ),
                })
                .collect();
            (counter_accounts(&state, session.org, currency).await?, match_options)
        } else {
            (Vec::new(), Vec::new())
        };
        let line = exception.kind == ExceptionKind::UnmatchedStatement;
        let detail = ExceptionDetail {
            row: exception_row(&exception, &channels),
            run_id: exception.run.to_string(),
            line_key: exception.line_key.clone().unwrap_or_default(),
            line_reference: exception.line_reference.clone().unwrap_or_default(),
            line_counterparty: exception.line_counterparty.clone().unwrap_or_default(),
            line_description: exception.line_description.clone().unwrap_or_default(),
            transfer_id: exception.transfer_id.map(|id| id.to_string()).unwrap_or_default(),
            note: exception.note.clone().unwrap_or_default(),
            resolution_transfer_id: exception
                .resolution_transfer_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            reason: exception.reason.clone().unwrap_or_default(),
            resolved_by: exception.resolved_by.clone().unwrap_or_default(),
            resolved: exception.resolved_at.map(time).unwrap_or_default(),
        };
        Ok(render(&ExceptionPage {
            frame: session.frame("exception", format!("Exception {}", exception.kind.as_str())),
            exception: detail,
            can_match: exception.kind != ExceptionKind::Difference,
            can_record_payment: line && exception.direction == crate::reconciliation::Direction::In,
            can_settle_payment: line,
            counter_accounts,
            match_options,
        }))
    };
    page.await.map_err(|error: UiError| error.shown_to(&session))
}

/// The assignment form's fields: an empty field keeps what is recorded, as an absent one does
/// in the API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignForm {
    owner: Option<String>,
    note: Option<String>,
}

/// `POST /ui/reconciliation/exceptions/{id}/assignment`: gives the exception an owner and a
/// note, as `POST /v1/reconciliation/exceptions/{id}/assignment` does.
pub async fn assign(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    CsrfForm { session, form }: CsrfForm<AssignForm>,
) -> Result<Response, UiError> {
    let done = async {
        let id = path_id(path, "exception")?;
        let present = |value: Option<String>| value.filter(|value| !value.is_empty());
        let owner = text(present(form.owner), "owner", 200)?;
        let note = text(present(form.note), "note", 2000)?;
        state
            .reconciliation
            .assign(session.org, id, owner.as_deref(), note.as_deref())
            .await
            .map_err(ApiError::from)?;
        Ok(see_other(&format!("/ui/reconciliation/exceptions/{id}")))
    };
    done.await.map_err(|error: UiError| error.shown_to(&session))
}

/// The resolution form's fields, as the API's body has them: `action`, `reason`,
/// `with` (repeated, for `match`), `counter_account` (for `adjust`), `payment` (for
/// `settle_payment`).
fn resolution_body(pairs: Vec<(String, String)>) -> Result<ResolutionBody, UiError> {
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut with = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "with" => with.push(field_id("with", &value)?),
            "action" | "reason" | "counter_account" | "payment" => {
                if fields.insert(name.clone(), value).is_some() {
                    return Err(UiError::bad_request(
                        Code::InvalidBody,
                        format!("{name} is given twice"),
                    ));
                }
            }
            other => {
                return Err(UiError::bad_request(
                    Code::InvalidBody,
                    format!("the form has an unknown field {other}"),
                ));
            }
        }
    }
    let action = match fields.get("action").map(String::as_str) {
        Some("match") => ResolutionAction::Match,
        Some("adjust") => ResolutionAction::Adjust,
        Some("write_off") => ResolutionAction::WriteOff,
        Some("record_payment") => ResolutionAction::RecordPayment,
        Some("settle_payment") => ResolutionAction::SettlePayment,
        _ => {
            return Err(UiError::bad_request(
                Code::InvalidBody,
                "action is match, adjust, write_off, record_payment or settle_payment",
            ));
        }
    };
    let optional_id = |name: &str| -> Result<Option<Uuid>, UiError> {
        fields
            .get(name)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
            .map(|value| field_id(name, value))
            .transpose()
    };
    Ok(ResolutionBody {
        action,
        reason: fields.get("reason").cloned().unwrap_or_default(),
        with_exception_ids: (matches!(action, ResolutionAction::Match) && !with.is_empty())
            .then_some(with),
        counter_account_id: optional_id("counter_account")?,
        payment_id: optional_id("payment")?,
    })
}

/// `POST /ui/reconciliation/exceptions/{id}/resolution`: resolves the exception as
/// `POST /v1/reconciliation/exceptions/{id}/resolution` does.
pub async fn resolve(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    CsrfForm { session, form }: CsrfForm<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let done = async {
        let id = path_id(path, "exception")?;
        let body = resolution_body(form)?;
        let resolve = resolution(body, who(&session))?;
        state.reconciliation.resolve(session.org, id, &resolve).await.map_err(ApiError::from)?;
        Ok(see_other(&format!("/ui/reconciliation/exceptions/{id}")))
    };
    done.await.map_err(|error: UiError| error.shown_to(&session))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn resolution_forms_read_as_the_apis_bodies() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let body = resolution_body(pairs(&[
            ("action", "match"),
            ("reason", "same payout"),
            ("with", &a.to_string()),
            ("with", &b.to_string()),
            ("counter_account", ""),
        ]))
        .unwrap();
        assert!(matches!(body.action, ResolutionAction::Match));
        assert_eq!(body.with_exception_ids, Some(vec![a, b]));
        assert_eq!(body.counter_account_id, None);
        let body = resolution_body(pairs(&[
            ("action", "adjust"),
            ("reason", "fee"),
            ("counter_account", &a.to_string()),
        ]))
        .unwrap();
        assert_eq!(body.counter_account_id, Some(a));
        for odd in [
            pairs(&[("action", "burn"), ("reason", "x")]),
            pairs(&[("reason", "x")]),
            pairs(&[("action", "write_off"), ("action", "adjust"), ("reason", "x")]),
            pairs(&[("action", "match"), ("with", "not-an-id"), ("reason", "x")]),
            pairs(&[("action", "write_off"), ("reason", "x"), ("amount", "5")]),
        ] {
            match resolution_body(odd.clone()) {
                Err(UiError::Page { status, code, .. }) => {
                    assert_eq!((status, code), (StatusCode::BAD_REQUEST, Code::InvalidBody));
                }
                other => panic!("{odd:?}: {other:?}"),
            }
        }
    }
}
