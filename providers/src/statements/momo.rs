//! The MTN MoMo partner portal's transaction report (CSV).
//!
//! **The columns are unconfirmed**: MTN publishes no description of the export, and none was
//! found. The reader accepts these columns, in any order, by any of the names listed
//! (compared in lower case, letters and digits only), after any preamble rows:
//!
//! | column | names | |
//! |---|---|---|
//! | MoMo's id (the receipt) | `Id`, `Transaction Id`, `Financial Transaction Id` | required |
//! | when | `Date`, `Transaction Date`, `Date Time`, `Timestamp` | required |
//! | amount | `Amount` | required; a minus sign means money out |
//! | our or the payer's reference | `External Transaction Id`, `External Id` | |
//! | status | `Status`, `Transaction Status` | |
//! | type | `Type`, `Transaction Type` | |
//! | parties | `From`, `From Name`, `To`, `To Name` | |
//! | currency | `Currency` | else [`ParseOptions::currency`], else refused |
//! | fee, balance after | `Fee`, `Balance` | |
//! | note | `Note`, `Message`, `Information`, `Description` | |
//!
//! A header row has the required columns and at least one of `External Transaction Id` or
//! `Status`. An amount without a sign is money in, unless the `From` party is
//! [`ParseOptions::account`] (the report's own account), when it is money out. Times are
//! RFC 3339, or `2024-03-01 14:05:09` (also with a `T`, fractional seconds, or as
//! `01/03/2024 14:05:09`) in UTC unless [`ParseOptions::utc_offset`] says otherwise. A status
//! of `SUCCESSFUL` completes a line; `FAILED`, `REJECTED`, `TIMEOUT`, `EXPIRED` and
//! `CANCELLED` fail it; anything else leaves it pending. A type naming a reversal or a
//! rollback marks the line a reversal.

use chrono::{DateTime, FixedOffset};

use super::csv_table::{Column, Table, normalize};
use super::mpesa_csv::local_time;
use super::{
    Direction, LineStatus, Lines, ParseOptions, StatementInfo, StatementLine, amount, at,
    at_offset, magnitude, non_empty, utc,
};
use crate::ParseError;
use crate::money::Currency;

const ID: usize = 0;
const DATE: usize = 1;
const AMOUNT: usize = 2;
const EXTERNAL_ID: usize = 3;
const STATUS: usize = 4;
const KIND: usize = 5;
const FROM: usize = 6;
const FROM_NAME: usize = 7;
const TO: usize = 8;
const TO_NAME: usize = 9;
const CURRENCY: usize = 10;
const FEE: usize = 11;
const BALANCE: usize = 12;
const NOTE: usize = 13;

/// The columns read, in the order of the indices above.
pub(super) const COLUMNS: &[Column] = &[
    Column { names: &["id", "transactionid", "financialtransactionid"], required: true },
    Column { names: &["date", "transactiondate", "datetime", "timestamp"], required: true },
    Column { names: &["amount"], required: true },
    Column { names: &["externaltransactionid", "externalid"], required: false },
    Column { names: &["status", "transactionstatus"], required: false },
    Column { names: &["type", "transactiontype"], required: false },
    Column { names: &["from"], required: false },
    Column { names: &["fromname"], required: false },
    Column { names: &["to"], required: false },
    Column { names: &["toname"], required: false },
    Column { names: &["currency"], required: false },
    Column { names: &["fee"], required: false },
    Column { names: &["balance"], required: false },
    Column { names: &["note", "message", "information", "description"], required: false },
];

/// Whether a header row with the required columns is a MoMo report's rather than any CSV
/// with an id, a date and an amount.
pub(super) fn looks_like_report(header: &[String]) -> bool {
    header.iter().any(|cell| COLUMNS[EXTERNAL_ID].names.contains(&cell.as_str()))
        || header.iter().any(|cell| COLUMNS[STATUS].names.contains(&cell.as_str()))
}

const TIME_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%d/%m/%Y %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M",
];

pub(super) fn parse(
    bytes: &[u8],
    options: &ParseOptions,
) -> Result<(Vec<StatementInfo>, Vec<StatementLine>), ParseError> {
    let mut table = Table::open(bytes, COLUMNS, super::Format::MomoReport)?;
    let offset = options.utc_offset.unwrap_or_else(utc);
    let account = options.account.as_deref().unwrap_or_default();
    let mut lines = Lines::new("momo");
    let mut currencies = Vec::new();
    while table.next()? {
        let line = read_row(&table, options, offset)?;
        if !currencies.contains(&line.amount.currency()) {
            currencies.push(line.amount.currency());
        }
        let receipt = line.receipt.clone();
        lines.push(line, account, receipt.as_deref());
    }
    let info = StatementInfo {
        account: options.account.clone(),
        currency: match currencies.as_slice() {
            [one] => Some(*one),
            [] => options.currency,
            _ => None,
        },
        ..StatementInfo::default()
    };
    Ok((vec![info], lines.into_lines()))
}

fn read_row(
    table: &Table<'_>,
    options: &ParseOptions,
    offset: FixedOffset,
) -> Result<StatementLine, ParseError> {
    let place = || format!("line {}", table.line());
    let currency = match table.get(CURRENCY)? {
        "" => options.currency.ok_or_else(|| at(place(), "no currency, and none was given"))?,
        code => Currency::from_code(&code.to_ascii_uppercase())
            .map_err(|error| at(place(), format!("Currency: {error}")))?,
    };
    let receipt = non_empty(table.get(ID)?).ok_or_else(|| at(place(), "Id is empty"))?;
    let date = table.get(DATE)?;
    let booked_at = match DateTime::parse_from_rfc3339(date) {
        Ok(moment) => moment.to_utc(),
        Err(_) => local_time(date, TIME_FORMATS)
            .map(|local| at_offset(local, offset))
            .ok_or_else(|| at(place(), format_args!("Date {date:?} is not a time")))?,
    };
    let read = |index: usize, name: &str| -> Result<Option<super::Money>, ParseError> {
        match table.get(index)? {
            "" => Ok(None),
            text => amount(currency, text, true)
                .map(Some)
                .map_err(|problem| at(place(), format!("{name}: {problem}"))),
        }
    };
    let signed = read(AMOUNT, "Amount")?.ok_or_else(|| at(place(), "Amount is empty"))?;
    if signed.amount().is_zero() {
        return Err(at(place(), "Amount is zero"));
    }
    let from = table.get(FROM)?;
    let ours = options.account.as_deref().is_some_and(|account| account.trim() == from);
    let direction =
        if signed.amount().is_sign_negative() || ours { Direction::Out } else { Direction::In };
    let fee = read(FEE, "Fee")?.map(magnitude).filter(super::Money::is_positive);
    let party = |id: &str, name: &str| match (id.is_empty(), name.is_empty()) {
        (false, false) => Some(format!("{id} - {name}")),
        (false, true) => Some(id.to_owned()),
        (true, false) => Some(name.to_owned()),
        (true, true) => None,
    };
    let counterparty = match direction {
        Direction::In => party(from, table.get(FROM_NAME)?),
        Direction::Out => party(table.get(TO)?, table.get(TO_NAME)?),
    };
    let kind = table.get(KIND)?;
    let lower = kind.to_ascii_lowercase();
    let status = if table.has(STATUS) { status(table.get(STATUS)?) } else { LineStatus::Completed };
    Ok(StatementLine {
        statement: 0,
        position: 0,
        key: String::new(),
        receipt: Some(receipt),
        reference: non_empty(table.get(EXTERNAL_ID)?),
        batch: None,
        booked_at,
        value_date: booked_at.with_timezone(&offset).date_naive(),
        direction,
        amount: magnitude(signed),
        fee,
        balance_after: read(BALANCE, "Balance")?,
        counterparty,
        description: non_empty(table.get(NOTE)?).or_else(|| non_empty(kind)),
        reversal: lower.contains("reversal") || lower.contains("rollback"),
        charge: false,
        status,
    })
}

fn status(text: &str) -> LineStatus {
    match normalize(text).as_str() {
        "successful" | "success" | "completed" => LineStatus::Completed,
        "failed" | "rejected" | "timeout" | "expired" | "cancelled" | "canceled" => {
            LineStatus::Failed
        }
        _ => LineStatus::Pending,
    }
}
