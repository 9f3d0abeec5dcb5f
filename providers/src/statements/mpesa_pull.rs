//! The M-Pesa Pull Transactions API's query answer, read as a statement.
//!
//! `ResponseCode` `1000` carries transactions in `Response` (an array of arrays), `1001` means
//! there were none; any other code is refused with its message. Each item becomes a completed
//! line, numbered across the flattened array. `trxDate` is RFC 3339 (`2020-08-05T10:13:00Z`)
//! or a local time (`2020-08-05 10:13:00`, East Africa Time unless
//! [`ParseOptions::utc_offset`] says otherwise). A `transactiontype` starting `c2b` is money
//! paid in to the organisation; the API documents no other kind, so any other type is
//! refused rather than guessed.

use chrono::DateTime;

use super::mpesa_csv::local_time;
use super::{
    Direction, LineStatus, Lines, ParseOptions, StatementInfo, StatementLine, amount, at,
    at_offset, east_africa, non_empty,
};
use crate::ParseError;
use crate::money::Currency;
use crate::mpesa::PullQueryResponse;

const TIME_FORMATS: &[&str] = &["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"];

pub(super) fn parse(
    bytes: &[u8],
    options: &ParseOptions,
) -> Result<(Vec<StatementInfo>, Vec<StatementLine>), ParseError> {
    let response: PullQueryResponse = serde_json::from_slice(bytes)?;
    let code = response.response_code.as_str().trim();
    let currency = match options.currency {
        Some(currency) => currency,
        None => Currency::from_code("KES")?,
    };
    let info = StatementInfo {
        id: non_empty(&response.response_ref_id),
        currency: Some(currency),
        ..StatementInfo::default()
    };
    match code {
        "1000" => {}
        "1001" => return Ok((vec![info], Vec::new())),
        other => {
            return Err(ParseError::Unexpected(format!(
                "pull query answered {other}: {}",
                response.response_message
            )));
        }
    }
    let offset = options.utc_offset.unwrap_or_else(east_africa);
    let account = options.account.as_deref().unwrap_or_default();
    let mut lines = Lines::new("mpesa");
    for transaction in response.transactions() {
        let place = format!("item {}", lines.next_position());
        let receipt = non_empty(&transaction.transaction_id)
            .ok_or_else(|| at(&place, "transactionId is empty"))?;
        let date = transaction.trx_date.trim();
        let booked_at = match DateTime::parse_from_rfc3339(date) {
            Ok(moment) => moment.to_utc(),
            Err(_) => local_time(date, TIME_FORMATS)
                .map(|local| at_offset(local, offset))
                .ok_or_else(|| at(&place, format_args!("trxDate {date:?} is not a time")))?,
        };
        let kind = transaction.transaction_type.trim();
        if !kind.to_ascii_lowercase().starts_with("c2b") {
            return Err(at(&place, format_args!("transactiontype {kind:?} is not a c2b type")));
        }
        let money = amount(currency, transaction.amount.as_str(), false)
            .map_err(|problem| at(&place, format!("amount: {problem}")))?;
        if !money.is_positive() {
            return Err(at(&place, "amount is not positive"));
        }
        let msisdn = transaction.msisdn.as_str().trim();
        let sender = transaction.sender.trim();
        let counterparty = match (msisdn.is_empty(), sender.is_empty()) {
            (false, false) => Some(format!("{msisdn} - {sender}")),
            (false, true) => Some(msisdn.to_owned()),
            (true, false) => Some(sender.to_owned()),
            (true, true) => None,
        };
        let line = StatementLine {
            statement: 0,
            position: 0,
            key: String::new(),
            receipt: Some(receipt.clone()),
            reference: non_empty(&transaction.bill_reference),
            batch: None,
            booked_at,
            value_date: booked_at.with_timezone(&offset).date_naive(),
            direction: Direction::In,
            amount: money,
            fee: None,
            balance_after: None,
            counterparty,
            description: non_empty(kind),
            reversal: false,
            charge: false,
            status: LineStatus::Completed,
        };
        lines.push(line, account, Some(&receipt));
    }
    Ok((vec![info], lines.into_lines()))
}
