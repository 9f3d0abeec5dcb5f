//! SWIFT MT940 customer statements: a small strict reader of the fields that carry money.
//!
//! The `mt940` crate was considered and not used: it depends, unconditionally, on clap (for
//! its command-line tool), pest and its code generator, `serde_with`, strum and deunicode, for a
//! format of a dozen fields; its `:86:` grammar refuses more than six lines of 65 characters
//! and characters outside the SWIFT set that real exports carry (it offers lossy sanitisers
//! instead); and its errors do not say on which line of the file a field was wrong.
//!
//! A file holds one or more messages, each optionally in a SWIFT envelope (`{1:…}{2:…}{4:`
//! up to `-}`) or ended by a line `-`. A message is the fields `:20:` (reference), `:21:`
//! (ignored), `:25:` (account), `:28C:` or `:28:` (statement number), `:60F:`/`:60M:`
//! (opening balance), any number of `:61:` (a line), each optionally followed by `:86:`
//! (information for the account owner), `:62F:`/`:62M:` (closing balance), `:64:`/`:65:`
//! (available balances, ignored) and a closing `:86:`. A field runs to the next line that
//! starts with a tag; any other tag is refused.
//!
//! `:61:` is `YYMMDD` value date, optional `MMDD` entry date (its year the one nearest the
//! value date), the mark `C`, `D`, `RC` (a reversal of a credit: money out) or `RD` (a
//! reversal of a debit: money in), an optional funds code letter, the amount with a decimal
//! comma, the type (`N`, `F` or `S` and three characters), the customer reference (`NONREF`
//! is none), then `//` and the bank's reference, and on the next line supplementary details.
//! Years `YY` are 20YY below 70 and 19YY from 70 on. Dates are midnight in
//! [`ParseOptions::utc_offset`] (UTC by default). The description is the `:86:` text: for the
//! structured German variant (`NNN?00…?20…`), the purpose subfields `?20`–`?29` and
//! `?60`–`?63` joined, with `?32`/`?33` as the counterparty; otherwise its lines joined by
//! spaces. The statement's period runs from the opening balance's date to the closing one's.

use chrono::{Datelike, FixedOffset, NaiveDate};

use super::{
    Direction, LineStatus, Lines, ParseOptions, StatementInfo, StatementLine, at, midnight,
    non_empty, utc,
};
use crate::ParseError;
use crate::money::{Currency, Money};

/// One `:TAG:value` field and the line it starts on.
#[derive(Debug)]
struct Field {
    tag: String,
    value: String,
    line: usize,
}

/// A statement being read.
#[derive(Debug, Default)]
struct Open {
    info: StatementInfo,
    reference: String,
    line: usize,
    number: Option<String>,
    has_opening: bool,
}

/// The file's text, read as UTF-8 or, failing that, as Latin-1 (each byte one character), as
/// banks still send it.
fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Splits the text into fields, dropping SWIFT envelopes and message ends; a message end
/// becomes a field with the tag `-`.
fn fields(text: &str) -> Result<Vec<Field>, ParseError> {
    let mut fields: Vec<Field> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let mut line = raw.trim_end_matches(['\r', ' ', '\t']);
        if line.starts_with("{1:") {
            // The basic header: everything up to the text block's start is envelope.
            match line.find("{4:") {
                Some(start) => line = &line[start + 3..],
                None => continue,
            }
            if line.is_empty() {
                continue;
            }
        }
        if line == "-" || line.starts_with("-}") {
            fields.push(Field { tag: "-".to_owned(), value: String::new(), line: number });
            continue;
        }
        if let Some(rest) = line.strip_prefix(':')
            && let Some((tag, value)) = rest.split_once(':')
            && (2..=3).contains(&tag.len())
            && tag.bytes().take(2).all(|b| b.is_ascii_digit())
            && tag.bytes().skip(2).all(|b| b.is_ascii_uppercase())
        {
            fields.push(Field { tag: tag.to_owned(), value: value.to_owned(), line: number });
            continue;
        }
        match fields.last_mut() {
            Some(field) if field.tag != "-" => {
                field.value.push('\n');
                field.value.push_str(line);
            }
            _ if line.trim().is_empty() => {}
            _ => return Err(at(format_args!("line {number}"), "text outside a field")),
        }
    }
    Ok(fields)
}

pub(super) fn parse(
    bytes: &[u8],
    options: &ParseOptions,
) -> Result<(Vec<StatementInfo>, Vec<StatementLine>), ParseError> {
    let text = decode(bytes);
    let offset = options.utc_offset.unwrap_or_else(utc);
    let mut statements = Vec::new();
    let mut lines = Lines::new("bank");
    let mut open: Option<Open> = None;
    // The last `:61:` read, kept until its `:86:` (or the next field) arrives.
    let mut pending: Option<(StatementLine, Option<String>)> = None;
    let flush = |pending: &mut Option<(StatementLine, Option<String>)>,
                 lines: &mut Lines,
                 account: &str| {
        if let Some((line, id)) = pending.take() {
            lines.push(line, account, id.as_deref());
        }
    };
    for field in fields(&text)? {
        let place = format!("line {} (:{}:)", field.line, field.tag);
        let account = open.as_ref().and_then(|open| open.info.account.clone()).unwrap_or_default();
        if field.tag == "86" {
            if let Some((line, _)) = pending.as_mut() {
                let (description, counterparty) = information(&field.value);
                line.description = description;
                if counterparty.is_some() {
                    line.counterparty = counterparty;
                }
                flush(&mut pending, &mut lines, &account);
                continue;
            }
            if open.is_none() {
                return Err(at(place, "a field before :20:"));
            }
            continue;
        }
        flush(&mut pending, &mut lines, &account);
        match field.tag.as_str() {
            "-" => {
                if let Some(done) = open.take() {
                    statements.push(close(done)?);
                }
            }
            "20" => {
                if let Some(done) = open.take() {
                    statements.push(close(done)?);
                }
                let reference = field.value.trim().to_owned();
                open = Some(Open {
                    info: StatementInfo { id: non_empty(&reference), ..StatementInfo::default() },
                    reference,
                    line: field.line,
                    ..Open::default()
                });
            }
            tag => {
                let current = open.as_mut().ok_or_else(|| at(&place, "a field before :20:"))?;
                match tag {
                    "21" | "64" | "65" => {}
                    "25" => current.info.account = non_empty(&field.value),
                    "28C" | "28" => current.number = non_empty(&field.value),
                    "60F" | "60M" => {
                        let (date, money) = balance(&field.value).map_err(|p| at(&place, p))?;
                        current.info.currency = Some(money.currency());
                        current.info.opening = Some(money);
                        current.info.from = Some(date);
                        current.has_opening = true;
                    }
                    "62F" | "62M" => {
                        let (date, money) = balance(&field.value).map_err(|p| at(&place, p))?;
                        current.info.closing = Some(money);
                        current.info.closing_date = Some(date);
                        current.info.to = Some(date);
                    }
                    "61" => {
                        let currency =
                            current.info.currency.filter(|_| current.has_opening).ok_or_else(
                                || at(&place, ":61: before the opening balance :60F:"),
                            )?;
                        let index = statements.len();
                        let read = statement_line(&field.value, currency, offset, index)
                            .map_err(|problem| at(&place, problem))?;
                        pending = Some(read);
                    }
                    other => return Err(at(&place, format_args!("unknown field :{other}:"))),
                }
            }
        }
    }
    let account = open.as_ref().and_then(|open| open.info.account.clone()).unwrap_or_default();
    flush(&mut pending, &mut lines, &account);
    if let Some(done) = open.take() {
        statements.push(close(done)?);
    }
    if statements.is_empty() {
        return Err(ParseError::Unexpected("no MT940 statement (no :20: field)".to_owned()));
    }
    Ok((statements, lines.into_lines()))
}

/// Checks a statement's required fields.
fn close(open: Open) -> Result<StatementInfo, ParseError> {
    let place = format!("statement {:?} (line {})", open.reference, open.line);
    if open.info.account.is_none() {
        return Err(at(place, "no account :25:"));
    }
    if !open.has_opening {
        return Err(at(place, "no opening balance :60F:"));
    }
    if open.info.closing.is_none() {
        return Err(at(place, "no closing balance :62F:"));
    }
    let mut info = open.info;
    if let Some(number) = open.number {
        info.id = Some(format!("{}/{number}", open.reference));
    }
    Ok(info)
}

/// `YYMMDD`.
fn date(text: &str) -> Result<NaiveDate, String> {
    let digits = text.get(..6).filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
    let digits = digits.ok_or_else(|| format!("{text:?} does not start with a date YYMMDD"))?;
    let number = |range: std::ops::Range<usize>| digits[range].parse::<u32>().unwrap_or(0);
    let yy = i32::try_from(number(0..2)).unwrap_or(0);
    let year = if yy < 70 { 2000 + yy } else { 1900 + yy };
    NaiveDate::from_ymd_opt(year, number(2..4), number(4..6))
        .ok_or_else(|| format!("{digits:?} is not a date"))
}

/// An MT940 amount: digits with a decimal comma (`1234,56`, `1234,`).
fn amount(currency: Currency, text: &str) -> Result<Money, String> {
    let well_formed = text.bytes().filter(|&b| b == b',').count() == 1
        && text.bytes().all(|b| b.is_ascii_digit() || b == b',')
        && !text.starts_with(',')
        && text.len() <= 15;
    if !well_formed {
        return Err(format!("amount {text:?} is not digits with one decimal comma"));
    }
    let decimal = text.replace(',', ".");
    let decimal = decimal.strip_suffix('.').unwrap_or(&decimal);
    Money::parse(currency, decimal).map_err(|error| error.to_string())
}

/// `:60F:`/`:62F:`: `C` or `D`, `YYMMDD`, currency, amount; signed.
fn balance(value: &str) -> Result<(NaiveDate, Money), String> {
    let value = value.trim();
    let (negative, rest) = match value.as_bytes().first() {
        Some(b'C') => (false, &value[1..]),
        Some(b'D') => (true, &value[1..]),
        _ => return Err(format!("balance {value:?} does not start with C or D")),
    };
    let day = date(rest)?;
    let code = rest.get(6..9).ok_or_else(|| format!("balance {value:?} has no currency"))?;
    let currency = Currency::from_code(code).map_err(|error| error.to_string())?;
    let money = amount(currency, &rest[9..])?;
    let money = if negative {
        Money::zero(currency).checked_sub(&money).map_err(|error| error.to_string())?
    } else {
        money
    };
    Ok((day, money))
}

/// The `MMDD` entry date nearest `value_date`.
fn entry_date(value_date: NaiveDate, digits: &str) -> Result<NaiveDate, String> {
    let month = digits[..2].parse::<u32>().unwrap_or(0);
    let day = digits[2..4].parse::<u32>().unwrap_or(0);
    let year = value_date.year();
    [year - 1, year, year + 1]
        .into_iter()
        .filter_map(|year| NaiveDate::from_ymd_opt(year, month, day))
        .min_by_key(|date| (*date - value_date).num_days().abs())
        .ok_or_else(|| format!("entry date {digits:?} is not a date"))
}

/// Reads a `:61:` field into a line (its key, position, description and counterparty left
/// for later) and its id for the dedup key.
fn statement_line(
    value: &str,
    currency: Currency,
    offset: FixedOffset,
    statement: usize,
) -> Result<(StatementLine, Option<String>), String> {
    let (first, details) = value.split_once('\n').unwrap_or((value, ""));
    let first = first.trim();
    let value_date = date(first)?;
    let mut rest = &first[6..];
    let mut booking = value_date;
    if rest.len() >= 4 && rest.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
        booking = entry_date(value_date, &rest[..4])?;
        rest = &rest[4..];
    }
    let (direction, reversal, after) = if let Some(after) = rest.strip_prefix("RC") {
        (Direction::Out, true, after)
    } else if let Some(after) = rest.strip_prefix("RD") {
        (Direction::In, true, after)
    } else if let Some(after) = rest.strip_prefix('C') {
        (Direction::In, false, after)
    } else if let Some(after) = rest.strip_prefix('D') {
        (Direction::Out, false, after)
    } else {
        return Err(format!("no mark C, D, RC or RD in {first:?}"));
    };
    rest = after;
    if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        // The funds code: the third letter of the currency's code.
        rest = &rest[1..];
    }
    let digits = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b',').count();
    let money = amount(currency, &rest[..digits])?;
    if !money.is_positive() {
        return Err("amount is zero".to_owned());
    }
    rest = &rest[digits..];
    let kind_ok = rest.len() >= 4
        && matches!(rest.as_bytes()[0], b'N' | b'F' | b'S')
        && rest.as_bytes()[1..4].iter().all(u8::is_ascii_alphanumeric);
    if !kind_ok {
        return Err(format!("no transaction type (N, F or S and three characters) in {first:?}"));
    }
    rest = &rest[4..];
    let (customer, bank) = rest.split_once("//").unwrap_or((rest, ""));
    let meaningful =
        |text: &str| non_empty(text).filter(|text| !text.eq_ignore_ascii_case("NONREF"));
    let receipt = meaningful(bank);
    let line = StatementLine {
        statement,
        position: 0,
        key: String::new(),
        receipt: receipt.clone(),
        reference: meaningful(customer),
        batch: None,
        booked_at: midnight(booking, offset),
        value_date,
        direction,
        amount: money,
        fee: None,
        balance_after: None,
        counterparty: None,
        description: non_empty(details),
        reversal,
        charge: false,
        status: LineStatus::Completed,
    };
    Ok((line, receipt))
}

/// An `:86:` field's description and counterparty.
fn information(value: &str) -> (Option<String>, Option<String>) {
    let joined: String = value.lines().map(str::trim_end).collect();
    let structured = joined.len() > 4
        && joined.as_bytes()[..3].iter().all(u8::is_ascii_digit)
        && joined.as_bytes()[3] == b'?';
    if !structured {
        let spaced: Vec<&str> = value.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        return (non_empty(&spaced.join(" ")), None);
    }
    let mut purpose = String::new();
    let mut name = String::new();
    for subfield in joined[4..].split('?') {
        let (Some(code), Some(text)) = (subfield.get(..2), subfield.get(2..)) else {
            continue;
        };
        match code {
            "20" | "21" | "22" | "23" | "24" | "25" | "26" | "27" | "28" | "29" | "60" | "61"
            | "62" | "63" => purpose.push_str(text),
            "32" | "33" => name.push_str(text),
            _ => {}
        }
    }
    (non_empty(&purpose), non_empty(&name))
}
