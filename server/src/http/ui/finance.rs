//! The finance pages: the trial balance of a period, and an account's statement with its
//! running balance and a chart of the balance over time.
//!
//! The numbers are the ledger's, read through the store queries behind
//! `/v1/reports/trial-balance` and `/v1/accounts/{id}/statement` (on the reports' pool), and
//! shown exactly as the API shows them (`rust_decimal`'s text at the currency's scale).

use askama::Template;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Datelike as _, NaiveDate, NaiveTime, Utc};
use futures_util::StreamExt as _;
use hazina_ledger::AccountId;
use hazina_ledger::store::{StatementQuery, TrialBalance};
use serde::Deserialize;
use uuid::Uuid;

use super::chart::{CHART_POINTS, Chart, line_chart, sample_times};
use super::{Frame, UiError, UiSession, render};
use crate::code::Code;
use crate::http::AppState;
use crate::http::problem::ApiError;

/// Most cursors of earlier pages a statement link carries (for "Previous").
const TRAIL_MAX: usize = 1_000;

/// How many balances of a chart are read at once.
const CHART_READS_CONCURRENT: usize = 4;

/// A period or date filter as the pages' forms send it: dates, both ends included.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

/// A date of a form (`YYYY-MM-DD`, years 1 to 9999, which PostgreSQL's times hold); an empty
/// field is none.
pub(super) fn date(name: &str, value: Option<&str>) -> Result<Option<NaiveDate>, UiError> {
    let Some(value) = value.map(str::trim).filter(|value| !value.is_empty()) else {
        return Ok(None);
    };
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .filter(|date| (1..=9_999).contains(&date.year()))
        .map(Some)
        .ok_or_else(|| {
            UiError::bad_request(
                Code::InvalidQuery,
                format!("{name} is not a date: write it as YYYY-MM-DD"),
            )
        })
}

/// The start of a day, UTC.
fn start_of(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}

/// The start of the next day, UTC: the exclusive end of a period whose last day is `date`.
fn end_of(date: NaiveDate) -> DateTime<Utc> {
    // A date of year 9999 at most (see `date`) always has a next day.
    start_of(date.succ_opt().unwrap_or(date))
}

/// Both dates of a period, refused when it ends before it starts.
fn dates(query: &PeriodQuery) -> Result<(Option<NaiveDate>, Option<NaiveDate>), UiError> {
    let from = date("from", query.from.as_deref())?;
    let to = date("to", query.to.as_deref())?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(UiError::bad_request(Code::InvalidPeriod, "from must not be after to"));
    }
    Ok((from, to))
}

/// A query string the page could not read.
pub(super) fn bad_query(rejection: &QueryRejection) -> UiError {
    UiError::bad_request(Code::InvalidQuery, rejection.body_text())
}

/// One account's line of the trial balance.
#[derive(Debug)]
struct BalanceRow {
    account: String,
    href: String,
    label: String,
    kind: &'static str,
    normal_side: &'static str,
    opening: String,
    debits: String,
    credits: String,
    closing: String,
}

/// One currency's part of the trial balance: its accounts and totals.
#[derive(Debug)]
struct CurrencySection {
    currency: &'static str,
    rows: Vec<BalanceRow>,
    opening_debit: String,
    opening_credit: String,
    debits: String,
    credits: String,
    closing_debit: String,
    closing_credit: String,
    /// Whether debits equal credits (the ledger promises they do).
    balanced: bool,
}

#[derive(Template)]
#[template(path = "ui/trial_balance.html")]
struct TrialBalancePage {
    frame: Frame,
    /// The form's dates.
    from: String,
    to: String,
    /// The period as the API takes it: `[from, to)`, RFC 3339.
    period_from: String,
    period_to: String,
    sections: Vec<CurrencySection>,
}

fn sections(report: &TrialBalance) -> Vec<CurrencySection> {
    report
        .totals
        .iter()
        .map(|totals| {
            let rows = report
                .lines
                .iter()
                .filter(|line| line.currency == totals.currency)
                .map(|line| BalanceRow {
                    account: line.account.0.to_string(),
                    href: format!("/ui/accounts/{}", line.account.0),
                    label: line.name.clone().unwrap_or_else(|| line.account.0.to_string()),
                    kind: line.kind.as_str(),
                    normal_side: line.normal_side.as_str(),
                    opening: line.opening.amount().to_string(),
                    debits: line.debits.amount().to_string(),
                    credits: line.credits.amount().to_string(),
                    closing: line.closing.amount().to_string(),
                })
                .collect();
            CurrencySection {
                currency: totals.currency.code(),
                rows,
                opening_debit: totals.opening_debit.amount().to_string(),
                opening_credit: totals.opening_credit.amount().to_string(),
                debits: totals.debits.amount().to_string(),
                credits: totals.credits.amount().to_string(),
                closing_debit: totals.closing_debit.amount().to_string(),
                closing_credit: totals.closing_credit.amount().to_string(),
                balanced: totals.debits == totals.credits
                    && totals.closing_debit == totals.closing_credit,
            }
        })
        .collect()
}

/// `GET /ui/` and `/ui/trial-balance?from=&to=`: the trial balance of a period by effective
/// time, both dates included (default: this month so far).
pub async fn trial_balance(
    session: UiSession,
    State(state): State<AppState>,
    query: Result<Query<PeriodQuery>, QueryRejection>,
) -> Result<Response, UiError> {
    let page = async {
        let Query(query) = query.map_err(|rejection| bad_query(&rejection))?;
        let (from, to) = dates(&query)?;
        let today = Utc::now().date_naive();
        let to = to.unwrap_or(today);
        let from = from.unwrap_or_else(|| to.with_day(1).unwrap_or(to));
        if from > to {
            return Err(UiError::bad_request(Code::InvalidPeriod, "from must not be after to"));
        }
        let (start, end) = (start_of(from), end_of(to));
        let report =
            state.reports.trial_balance(session.org, start, end).await.map_err(ApiError::from)?;
        Ok(render(&TrialBalancePage {
            frame: session.frame("trial-balance", "Trial balance"),
            from: from.to_string(),
            to: to.to_string(),
            period_from: start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            period_to: end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            sections: sections(&report),
        }))
    };
    page.await.map_err(|error: UiError| error.shown_to(&session))
}

/// A statement's query: the date filter (by recording time, both dates included), the page
/// (`cursor`, the API's `nextCursor`; `trail`, the cursors of the pages before, for
/// "Previous") and its size.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementParams {
    from: Option<String>,
    to: Option<String>,
    cursor: Option<i64>,
    limit: Option<i64>,
    trail: Option<String>,
}

/// One line of a statement.
#[derive(Debug)]
struct StatementRow {
    sequence: i64,
    recorded: String,
    effective: String,
    kind: &'static str,
    code: String,
    transfer_id: String,
    debit: String,
    credit: String,
    pending: String,
    balance: String,
    available: String,
}

/// What the statement's header says of the account.
#[derive(Debug)]
struct AccountSummary {
    id: String,
    label: String,
    kind: &'static str,
    currency: &'static str,
    normal_side: &'static str,
    actual: String,
    available: String,
    pending: String,
    created: String,
}

#[derive(Template)]
#[template(path = "ui/statement.html")]
struct StatementPage {
    frame: Frame,
    account: AccountSummary,
    from: String,
    to: String,
    limit: i64,
    rows: Vec<StatementRow>,
    first: Option<String>,
    previous: Option<String>,
    next: Option<String>,
    chart: Chart,
}

/// The cursors of a statement's earlier pages, as a link carries them (`1,40,80`).
fn trail(text: Option<&str>) -> Result<Vec<i64>, UiError> {
    let invalid = || {
        UiError::bad_request(Code::InvalidCursor, "the page's cursors are not ones this page made")
    };
    let Some(text) = text.filter(|text| !text.is_empty()) else { return Ok(Vec::new()) };
    let cursors = text
        .split(',')
        .map(|cursor| cursor.parse::<i64>().ok().filter(|cursor| *cursor >= 0))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(invalid)?;
    if cursors.len() > TRAIL_MAX {
        return Err(invalid());
    }
    Ok(cursors)
}

/// The link to a page of the statement.
fn statement_href(
    account: Uuid,
    params: &StatementParams,
    limit: i64,
    cursor: Option<i64>,
    trail: &[i64],
) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (name, value) in [("from", &params.from), ("to", &params.to)] {
        if let Some(value) = value.as_deref().filter(|value| !value.is_empty()) {
            pairs.push((name, value.to_owned()));
        }
    }
    if limit != crate::http::v1::PAGE_SIZE_DEFAULT {
        pairs.push(("limit", limit.to_string()));
    }
    if let Some(cursor) = cursor {
        pairs.push(("cursor", cursor.to_string()));
    }
    if !trail.is_empty() {
        let trail: Vec<String> = trail.iter().map(i64::to_string).collect();
        pairs.push(("trail", trail.join(",")));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if query.is_empty() {
        format!("/ui/accounts/{account}")
    } else {
        format!("/ui/accounts/{account}?{query}")
    }
}

pub(super) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A statement line as the page shows it.
fn statement_row(line: &hazina_ledger::store::StatementLine) -> StatementRow {
    let amount = line.amount_posted.amount().to_string();
    let (debit, credit) = match line.side {
        hazina_ledger::rules::Side::Debit => (amount, String::new()),
        hazina_ledger::rules::Side::Credit => (String::new(), amount),
    };
    StatementRow {
        sequence: line.version,
        recorded: time(line.created_at),
        effective: time(line.effective_at),
        kind: line.kind.as_str(),
        code: line.code.clone(),
        transfer_id: line.transfer_id.0.to_string(),
        debit,
        credit,
        pending: line.amount_pending.amount().to_string(),
        balance: line.balance.posted.amount().to_string(),
        available: line.balance.available.amount().to_string(),
    }
}

/// The chart of the account's actual balance over the filtered days (or from its opening),
/// up to now: the ledger's balance at each of [`CHART_POINTS`] times.
async fn balance_chart(
    state: &AppState,
    account: &hazina_ledger::store::Account,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Chart, ApiError> {
    let now = Utc::now();
    let chart_from = from.map_or(account.created_at, start_of).min(now);
    let chart_to = to.map_or(now, end_of).min(now).max(chart_from);
    let times = sample_times(chart_from, chart_to, CHART_POINTS);
    let reports = &state.reports;
    let balances: Vec<_> = futures_util::stream::iter(times.iter().copied())
        .map(|at| async move { reports.balance_at(account.org, account.id, at).await })
        .buffered(CHART_READS_CONCURRENT)
        .collect()
        .await;
    let samples = times
        .iter()
        .zip(balances)
        .map(|(at, balance)| Ok((*at, balance.map_err(ApiError::from)?.posted.amount())))
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(line_chart(&samples, account.currency.code()))
}

/// `GET /ui/accounts/{id}`: the account's statement, a page at a time, and its balance over
/// the filtered range (or its whole life) at [`CHART_POINTS`] times.
pub async fn statement(
    session: UiSession,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<StatementParams>, QueryRejection>,
) -> Result<Response, UiError> {
    let page = async {
        let Path(id) = path
            .map_err(|rejection| UiError::bad_request(Code::InvalidPath, rejection.body_text()))?;
        let id = Uuid::try_parse(&id)
            .map_err(|_| UiError::bad_request(Code::InvalidPath, "the account id is not a UUID"))?;
        let Query(params) = query.map_err(|rejection| bad_query(&rejection))?;
        let (from, to) = dates(&PeriodQuery { from: params.from.clone(), to: params.to.clone() })?;
        let limit = crate::http::v1::page_size(params.limit)?;
        if params.cursor.is_some_and(|cursor| cursor < 0) {
            return Err(UiError::bad_request(Code::InvalidCursor, "cursor is a sequence number"));
        }
        let trail = trail(params.trail.as_deref())?;
        let account = state
            .reports
            .account(session.org, AccountId(id))
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| {
                UiError::new(StatusCode::NOT_FOUND, Code::NotFound, "no such account")
            })?;
        let query = StatementQuery {
            from: from.map(start_of),
            to: to.map(end_of),
            after_version: params.cursor,
            limit,
        };
        let page = state
            .reports
            .statement(session.org, account.id, &query)
            .await
            .map_err(ApiError::from)?;

        let currency = account.currency.code();
        let chart = balance_chart(&state, &account, from, to).await?;

        let rows = page.lines.iter().map(statement_row).collect();
        let mut next_trail = trail.clone();
        next_trail.push(params.cursor.unwrap_or(0));
        let next = page
            .next_after_version
            .map(|cursor| statement_href(id, &params, limit, Some(cursor), &next_trail));
        let previous = trail.split_last().map(|(cursor, before)| {
            let cursor = Some(*cursor).filter(|cursor| *cursor > 0);
            statement_href(id, &params, limit, cursor, before)
        });
        let first = params
            .cursor
            .filter(|cursor| *cursor > 0)
            .map(|_| statement_href(id, &params, limit, None, &[]));
        let balance = account.balance();
        let label =
            account.name.clone().unwrap_or_else(|| format!("{} account", account.kind.as_str()));
        Ok(render(&StatementPage {
            frame: session.frame("statement", format!("Statement · {label}")),
            account: AccountSummary {
                id: id.to_string(),
                label,
                kind: account.kind.as_str(),
                currency,
                normal_side: account.normal_side.as_str(),
                actual: balance.posted.amount().to_string(),
                available: balance.available.amount().to_string(),
                pending: balance.pending.amount().to_string(),
                created: time(account.created_at),
            },
            from: from.map(|date| date.to_string()).unwrap_or_default(),
            to: to.map(|date| date.to_string()).unwrap_or_default(),
            limit,
            rows,
            first,
            previous,
            next,
            chart,
        }))
    };
    page.await.map_err(|error: UiError| error.shown_to(&session))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_days_and_periods_run_forward() {
        let query = |from: &str, to: &str| PeriodQuery {
            from: Some(from.to_owned()),
            to: Some(to.to_owned()),
        };
        let (from, to) = dates(&query("2026-01-31", "2026-02-01")).unwrap();
        assert_eq!(start_of(from.unwrap()).to_rfc3339(), "2026-01-31T00:00:00+00:00");
        assert_eq!(end_of(to.unwrap()).to_rfc3339(), "2026-02-02T00:00:00+00:00");
        assert_eq!(dates(&query("", " ")).unwrap(), (None, None));
        for (from, to, code) in [
            ("2026-02-01", "2026-01-31", Code::InvalidPeriod),
            ("2026-13-01", "", Code::InvalidQuery),
            ("yesterday", "", Code::InvalidQuery),
            ("0000-01-01", "", Code::InvalidQuery),
            ("", "+10000-01-01", Code::InvalidQuery),
        ] {
            match dates(&query(from, to)) {
                Err(UiError::Page { status, code: found, .. }) => {
                    assert_eq!((status, found), (StatusCode::BAD_REQUEST, code), "{from} {to}");
                }
                other => panic!("{from} {to}: {other:?}"),
            }
        }
        assert_eq!(end_of(NaiveDate::from_ymd_opt(9_999, 12, 31).unwrap()).year(), 10_000);
    }

    #[test]
    fn trails_are_cursors_and_links_carry_them() {
        assert_eq!(trail(Some("0,2,4")).unwrap(), vec![0, 2, 4]);
        assert!(trail(None).unwrap().is_empty());
        for odd in ["x", "1,,2", "-1", &vec!["1"; TRAIL_MAX + 1].join(",")] {
            assert!(trail(Some(odd)).is_err(), "{odd}");
        }
        let id = Uuid::nil();
        let params = StatementParams {
            from: Some("2026-01-01".to_owned()),
            to: None,
            cursor: None,
            limit: None,
            trail: None,
        };
        assert_eq!(
            statement_href(id, &params, 2, Some(4), &[0, 2]),
            format!("/ui/accounts/{id}?from=2026-01-01&limit=2&cursor=4&trail=0%2C2")
        );
        let plain = StatementParams { from: None, ..params };
        assert_eq!(statement_href(id, &plain, 50, None, &[]), format!("/ui/accounts/{id}"));
    }
}
