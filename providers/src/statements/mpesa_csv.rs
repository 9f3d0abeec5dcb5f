//! The M-Pesa organisation portal's statement export (CSV).
//!
//! Safaricom publishes no specification. The columns read are the ones third-party parsers
//! use: `Receipt No.`, `Completion Time`, `Details`, `Paid In` and `Withdrawn` (required),
//! and `Transaction Status`, `Balance`, `Other Party Info`, `A/C No.` and `Reason Type` when
//! present; other columns (`Initiation Time`, `Balance Confirmed`, `Linked Transaction ID`,
//! …) are ignored, and columns may come in any order. The header row is found by its columns
//! below the export's preamble rows (account name, short code, period); a `Short Code` there
//! becomes the statement's account.
//!
//! Times (`2024-03-01 14:05:09`, `01-03-2024 14:05:09`, `01/03/2024 14:05:09`, seconds
//! optional) are East Africa Time unless [`ParseOptions::utc_offset`] says otherwise; amounts
//! are KES unless [`ParseOptions::currency`] says otherwise, and may carry thousands
//! separators and, in `Withdrawn`, a minus sign. A row has an amount in exactly one of
//! `Paid In` (in) and `Withdrawn` (out). The portal books a transaction's charge as a row of
//! its own with the same receipt and `Details` ending in `Charge`: it stays a line of its own
//! (marked [`StatementLine::charge`], its description the `Details`), for the matcher to net.
//! A `Details` naming a reversal marks the line a reversal. A status other than `Completed`
//! is pending (`Pending`, `Authorised`, or one we do not know) or failed (`Failed`,
//! `Declined`, `Cancelled`, `Expired`).

use chrono::{FixedOffset, NaiveDateTime};

use super::csv_table::{Column, Table, normalize};
use super::{
    Direction, LineStatus, Lines, ParseOptions, StatementInfo, StatementLine, amount, at,
    at_offset, east_africa, magnitude, non_empty,
};
use crate::ParseError;
use crate::money::Currency;

const RECEIPT: usize = 0;
const COMPLETION: usize = 1;
const DETAILS: usize = 2;
const PAID_IN: usize = 3;
const WITHDRAWN: usize = 4;
const STATUS: usize = 5;
const BALANCE: usize = 6;
const OTHER_PARTY: usize = 7;
const ACCOUNT_NUMBER: usize = 8;
const REASON: usize = 9;

/// The columns read, in the order of the indices above.
pub(super) const COLUMNS: &[Column] = &[
    Column { names: &["receiptno", "receiptnumber", "receipt"], required: true },
    Column { names: &["completiontime"], required: true },
    Column { names: &["details"], required: true },
    Column { names: &["paidin"], required: true },
    Column { names: &["withdrawn"], required: true },
    Column { names: &["transactionstatus"], required: false },
    Column { names: &["balance"], required: false },
    Column { names: &["otherpartyinfo"], required: false },
    Column { names: &["acno", "accountno", "accountnumber"], required: false },
    Column { names: &["reasontype"], required: false },
];

/// The time formats the export has been seen with.
const TIME_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S",
    "%d-%m-%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d-%m-%Y %H:%M",
    "%d/%m/%Y %H:%M",
];

/// A local date and time in one of `formats`.
pub(super) fn local_time(text: &str, formats: &[&str]) -> Option<NaiveDateTime> {
    formats.iter().find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
}

pub(super) fn parse(
    bytes: &[u8],
    options: &ParseOptions,
) -> Result<(Vec<StatementInfo>, Vec<StatementLine>), ParseError> {
    let mut table = Table::open(bytes, COLUMNS, super::Format::MpesaCsv)?;
    let currency = match options.currency {
        Some(currency) => currency,
        None => Currency::from_code("KES")?,
    };
    let offset = options.utc_offset.unwrap_or_else(east_africa);
    let account = options.account.as_deref().unwrap_or_default();
    let info = StatementInfo {
        account: short_code(&table.preamble),
        currency: Some(currency),
        ..StatementInfo::default()
    };
    let mut lines = Lines::new("mpesa");
    let mut receipt_id = String::new();
    while table.next()? {
        let line = read_row(&table, currency, offset)?;
        let id = match &line.receipt {
            Some(receipt) => {
                receipt_id.clear();
                receipt_id.push_str(receipt);
                if line.charge {
                    receipt_id.push_str(":charge");
                }
                Some(receipt_id.as_str())
            }
            None => None,
        };
        lines.push(line, account, id);
    }
    Ok((vec![info], lines.into_lines()))
}

fn read_row(
    table: &Table<'_>,
    currency: Currency,
    offset: FixedOffset,
) -> Result<StatementLine, ParseError> {
    let place = || format!("line {}", table.line());
    let time = table.get(COMPLETION)?;
    let completed = local_time(time, TIME_FORMATS)
        .ok_or_else(|| at(place(), format_args!("Completion Time {time:?} is not a time")))?;
    let read = |index: usize, name: &str| -> Result<Option<super::Money>, ParseError> {
        let text = table.get(index)?;
        if text.is_empty() {
            return Ok(None);
        }
        let money = amount(currency, text, true)
            .map_err(|problem| at(place(), format!("{name}: {problem}")))?;
        Ok((!money.amount().is_zero()).then_some(money))
    };
    let paid_in = read(PAID_IN, "Paid In")?;
    let withdrawn = read(WITHDRAWN, "Withdrawn")?;
    let (direction, money) = match (paid_in, withdrawn) {
        (Some(money), None) if money.is_positive() => (Direction::In, money),
        (Some(_), None) => return Err(at(place(), "Paid In is negative")),
        (None, Some(money)) => (Direction::Out, magnitude(money)),
        (Some(_), Some(_)) => return Err(at(place(), "both Paid In and Withdrawn have an amount")),
        (None, None) => return Err(at(place(), "neither Paid In nor Withdrawn has an amount")),
    };
    let balance_after = match table.get(BALANCE)? {
        "" => None,
        text => Some(
            amount(currency, text, true)
                .map_err(|problem| at(place(), format!("Balance: {problem}")))?,
        ),
    };
    let details = table.get(DETAILS)?;
    let lower = details.to_ascii_lowercase();
    let reason = table.get(REASON)?.to_ascii_lowercase();
    let is_charge = |text: &str| text.ends_with("charge") && !text.ends_with("recharge");
    let status = if table.has(STATUS) { status(table.get(STATUS)?) } else { LineStatus::Completed };
    Ok(StatementLine {
        statement: 0,
        position: 0,
        key: String::new(),
        receipt: non_empty(table.get(RECEIPT)?),
        reference: non_empty(table.get(ACCOUNT_NUMBER)?),
        batch: None,
        booked_at: at_offset(completed, offset),
        value_date: completed.date(),
        direction,
        amount: money,
        fee: None,
        balance_after,
        counterparty: non_empty(table.get(OTHER_PARTY)?),
        description: non_empty(details),
        reversal: lower.contains("reversal") || reason.contains("reversal"),
        charge: is_charge(&lower) || is_charge(&reason),
        status,
    })
}

fn status(text: &str) -> LineStatus {
    match normalize(text).as_str() {
        "completed" | "complete" | "success" | "successful" => LineStatus::Completed,
        "failed" | "declined" | "cancelled" | "canceled" | "expired" => LineStatus::Failed,
        _ => LineStatus::Pending,
    }
}

/// The `Short Code` a preamble row names (`Short Code,123456` or `Short Code: 123456`).
fn short_code(preamble: &[Vec<String>]) -> Option<String> {
    for row in preamble {
        for (index, cell) in row.iter().enumerate() {
            let (name, value) = cell.split_once(':').unwrap_or((cell, ""));
            if normalize(name) != "shortcode" {
                continue;
            }
            if let Some(value) = non_empty(value) {
                return Some(value);
            }
            return row[index + 1..].iter().find_map(|cell| non_empty(cell));
        }
    }
    None
}
