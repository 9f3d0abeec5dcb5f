//! The period close page: the org's closed periods, oldest first, each with the journal's
//! hash-chain head when it was closed, and the form that closes the books through a day (its
//! end, or a time of it), as `POST /v1/periods/close` does — the same checks, the same
//! refusals (`period_in_future`, `period_already_closed`, `invalid_note`), the key recorded as
//! who closed it.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use serde::Deserialize;

use super::finance::time;
use super::reconciliation::see_other;
use super::{CsrfForm, Frame, UiError, UiSession, render};
use crate::code::Code;
use crate::http::AppState;
use crate::http::problem::ApiError;
use crate::http::v1::periods::{NOTE_LEN_MAX, NewPeriodClose, check_close, refusal};

/// A close as a row.
#[derive(Debug)]
struct CloseRow {
    /// As the API writes it (RFC 3339, UTC).
    through: String,
    closed: String,
    closed_by: String,
    note: String,
    chain_seq: i64,
    chain_hash: String,
}

#[derive(Template)]
#[template(path = "ui/periods.html")]
struct PeriodsPage {
    frame: Frame,
    closes: Vec<CloseRow>,
    /// The form's default day: yesterday (UTC), the last whole day.
    yesterday: String,
    note_len_max: usize,
}

/// `GET /ui/periods`: the closed periods and the form that closes one.
pub async fn periods(
    session: UiSession,
    State(state): State<AppState>,
) -> Result<Response, UiError> {
    let page = async {
        let closes = state.reports.period_closes(session.org).await.map_err(ApiError::from)?;
        let today = Utc::now().date_naive();
        Ok(render(&PeriodsPage {
            frame: session.frame("periods", "Period close"),
            closes: closes
                .iter()
                .map(|close| CloseRow {
                    through: close.through.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                    closed: time(close.closed_at),
                    closed_by: close.closed_by.clone(),
                    note: close.note.clone().unwrap_or_default(),
                    chain_seq: close.chain_seq,
                    chain_hash: hazina_ledger::chain::to_hex(&close.chain_hash),
                })
                .collect(),
            yesterday: today.pred_opt().unwrap_or(today).to_string(),
            note_len_max: NOTE_LEN_MAX,
        }))
    };
    page.await.map_err(|error: UiError| error.shown_to(&session))
}

/// The close form's fields: the day, a time of it (`HH:MM` or `HH:MM:SS`, UTC; the day's end
/// when empty), and a note.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseForm {
    through_date: String,
    through_time: Option<String>,
    note: Option<String>,
}

/// The instant a close form names: the day's last microsecond (as the API's example does),
/// or the time given, inclusive.
fn through(form: &CloseForm) -> Result<DateTime<Utc>, UiError> {
    let day = NaiveDate::parse_from_str(form.through_date.trim(), "%Y-%m-%d").map_err(|_| {
        UiError::bad_request(Code::InvalidBody, "the day is not a date: YYYY-MM-DD")
    })?;
    let at = match form.through_time.as_deref().map(str::trim).filter(|time| !time.is_empty()) {
        None => NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap_or(NaiveTime::MIN),
        Some(text) => NaiveTime::parse_from_str(text, "%H:%M:%S")
            .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
            .map_err(|_| {
                UiError::bad_request(Code::InvalidBody, "the time is not a time: HH:MM:SS")
            })?,
    };
    Ok(day.and_time(at).and_utc())
}

/// `POST /ui/periods/close`: closes the org's books through the form's time.
pub async fn close(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<CloseForm>,
) -> Result<Response, UiError> {
    let done = async {
        let new = NewPeriodClose {
            through: through(&form)?,
            note: form.note.clone().filter(|note| !note.trim().is_empty()),
        };
        check_close(&new)?;
        // Who closed it, as the API records it: the key's id.
        let closed_by = session.key_id.to_string();
        state
            .store
            .close_period(session.org, new.through, &closed_by, new.note.as_deref())
            .await
            .map_err(refusal)?;
        Ok(see_other("/ui/periods"))
    };
    done.await.map_err(|error: UiError| error.shown_to(&session))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_is_through_the_days_end_or_the_time_given() {
        let form = |date: &str, time: Option<&str>| CloseForm {
            through_date: date.to_owned(),
            through_time: time.map(str::to_owned),
            note: None,
        };
        let text = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        assert_eq!(
            text(through(&form("2026-11-30", None)).unwrap()),
            "2026-11-30T23:59:59.999999Z"
        );
        assert_eq!(
            text(through(&form("2026-11-30", Some(""))).unwrap()),
            "2026-11-30T23:59:59.999999Z"
        );
        assert_eq!(
            text(through(&form("2026-11-30", Some("12:30"))).unwrap()),
            "2026-11-30T12:30:00Z"
        );
        assert_eq!(
            text(through(&form("2026-11-30", Some("12:30:05"))).unwrap()),
            "2026-11-30T12:30:05Z"
        );
        for (date, time) in
            [("2026-11-31", None), ("yesterday", None), ("2026-11-30", Some("25:00"))]
        {
            assert!(through(&form(date, time)).is_err(), "{date} {time:?}");
        }
    }
}
