//! ISO 20022 camt.053 statements and camt.054 notifications, read as statement lines in one
//! streaming pass.
//!
//! `iso20022::camt` reads a whole document into typed structs through serde, which suits a
//! payment's status; a statement import reads files of a million entries and wants more of
//! each entry (its `NtryRef`, charges, batch marker, additional information), so this reader
//! pulls events from quick-xml and keeps only the entry at hand. Elements are matched by local
//! name (a namespace prefix does not matter); the `Document`'s namespace must name the
//! expected message (any version, v02 to v08 have been read).
//!
//! Every `Stmt` (camt.053) or `Ntfctn` (camt.054) is a [`StatementInfo`]: `Id`, the account
//! (`Acct/Id/IBAN` or `Acct/Id/Othr/Id`) and its currency, the period (`FrToDt`), the opening
//! booked balance (`OPBD`, else `PRCD`, the previous closing) and the closing one (`CLBD`)
//! with its date, signed by their `CdtDbtInd`.
//!
//! Every `Ntry` gives lines. A batched entry — several `TxDtls`, each with its own amount
//! (`TxDtls/Amt`, or `AmtDtls/TxAmt/Amt`) in the entry's currency, adding up (with their own
//! `CdtDbtInd`) to the entry's amount — gives one line per `TxDtls`, its `batch` the entry's
//! `AcctSvcrRef` (else `NtryRef`, else `entry:` and the entry's first line's position). Any
//! other entry gives one line, its details from its first `TxDtls`. `Sts` `BOOK` is
//! completed; `PDNG`, `INFO` and anything else are pending. The receipt is the entry's
//! `AcctSvcrRef` (for a batch line, the transaction's own `Refs/AcctSvcrRef` first); the
//! reference the `EndToEndId` (not `NOTPROVIDED`), else a structured creditor reference; the
//! counterparty the debtor for money in and the creditor for money out; the description the
//! unstructured remittance lines, else `AddtlTxInf`, else `AddtlNtryInf`; the fee the
//! entry's (or transaction's) `Chrgs` (`TtlChrgsAndTaxAmt`, else the sum of the records).
//! A `BookgDt` or `ValDt` given as a date alone is midnight in [`ParseOptions::utc_offset`]
//! (UTC by default); an entry without `BookgDt` (pending) is booked at its value date.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

use super::{
    Direction, Format, LineStatus, Lines, ParseOptions, StatementInfo, StatementLine, at,
    at_offset, magnitude, midnight, utc,
};
use crate::ParseError;
use crate::money::{Currency, Money};

/// The namespace every camt message's `Document` declares, before `camt.053.001.02`.
const NAMESPACE_PREFIX: &str = "urn:iso:std:iso:20022:tech:xsd:";

/// An amount as written, before it is read as money.
#[derive(Debug, Default, Clone)]
struct RawAmount {
    value: String,
    currency: String,
}

#[derive(Debug, Default)]
struct Charges {
    total: Option<RawAmount>,
    records: Vec<RawAmount>,
}

#[derive(Debug, Default)]
struct Transaction {
    account_servicer_reference: Option<String>,
    end_to_end_id: Option<String>,
    creditor_reference: Option<String>,
    amount: Option<RawAmount>,
    tx_amount: Option<RawAmount>,
    side: Option<String>,
    debtor: Option<String>,
    creditor: Option<String>,
    remittance: Vec<String>,
    additional: Option<String>,
    charges: Charges,
}

#[derive(Debug, Default)]
struct Entry {
    amount: Option<RawAmount>,
    side: Option<String>,
    reversal: Option<String>,
    status: Option<String>,
    booking: Option<String>,
    booking_time: Option<String>,
    value: Option<String>,
    value_time: Option<String>,
    account_servicer_reference: Option<String>,
    /// `NtryRef`: unique within its statement only.
    local_reference: Option<String>,
    additional: Option<String>,
    charges: Charges,
    transactions: Vec<Transaction>,
}

#[derive(Debug, Default)]
struct Balance {
    code: Option<String>,
    amount: Option<RawAmount>,
    side: Option<String>,
    date: Option<String>,
    time: Option<String>,
}

#[derive(Debug, Default)]
struct Statement {
    info: StatementInfo,
    iban: Option<String>,
    other_id: Option<String>,
    currency: Option<String>,
    opening_previous: Option<Money>,
    balance: Balance,
}

/// The reader's place in the document: the path of local names from the root, and where the
/// statement, entry and transaction being read start in it.
#[derive(Debug, Default)]
struct Place {
    path: String,
    lengths: Vec<usize>,
    statement: Option<usize>,
    entry: Option<usize>,
    transaction: Option<usize>,
    balance: Option<usize>,
}

impl Place {
    /// The path below the element that starts at `start`, when inside it.
    fn below(&self, start: Option<usize>) -> Option<&str> {
        let start = start?;
        self.path.get(start + 1..)
    }
}

#[allow(clippy::too_many_lines)] // One event loop: where each event goes, in document order.
pub(super) fn parse(
    format: Format,
    bytes: &[u8],
    options: &ParseOptions,
) -> Result<(Vec<StatementInfo>, Vec<StatementLine>), ParseError> {
    let (family, wrapper, element) = match format {
        Format::Camt054 => ("camt.054.", "BkToCstmrDbtCdtNtfctn", "Ntfctn"),
        _ => ("camt.053.", "BkToCstmrStmt", "Stmt"),
    };
    let statement_path = format!("Document/{wrapper}/{element}");
    let offset = options.utc_offset.unwrap_or_else(utc);
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().expand_empty_elements = true;
    let line_at = |position: u64| {
        let end = usize::try_from(position).unwrap_or(usize::MAX).min(bytes.len());
        bytes[..end].split(|&b| b == b'\n').count()
    };

    let mut place = Place::default();
    let mut text = String::new();
    let mut currency_attribute = String::new();
    let mut statements: Vec<StatementInfo> = Vec::new();
    let mut statement: Option<Statement> = None;
    let mut entry: Option<Entry> = None;
    let mut transaction: Option<Transaction> = None;
    let mut entries = 0_u32;
    let mut lines = Lines::new("bank");
    let mut seen_root = false;

    loop {
        let event = reader.read_event().map_err(|error| {
            at(format_args!("line {}", line_at(reader.error_position())), error)
        })?;
        match event {
            Event::Start(start) => {
                let name = std::str::from_utf8(start.local_name().into_inner()).map_err(|_| {
                    at(
                        format_args!("line {}", line_at(reader.buffer_position())),
                        "an element name that is not UTF-8",
                    )
                })?;
                if !seen_root {
                    seen_root = true;
                    if name != "Document" {
                        return Err(ParseError::Unexpected(format!(
                            "the root element is {name}, not a camt Document"
                        )));
                    }
                    let namespace = start
                        .try_get_attribute("xmlns")
                        .ok()
                        .flatten()
                        .and_then(|attribute| {
                            attribute.normalized_value(XmlVersion::Implicit1_0).ok()
                        })
                        .map(std::borrow::Cow::into_owned)
                        .unwrap_or_default();
                    let message = namespace.strip_prefix(NAMESPACE_PREFIX).unwrap_or_default();
                    if !message.starts_with(family) {
                        return Err(ParseError::Unexpected(format!(
                            "the Document's namespace {namespace:?} is not {}",
                            &family[..family.len() - 1]
                        )));
                    }
                }
                place.lengths.push(place.path.len());
                if !place.path.is_empty() {
                    place.path.push('/');
                }
                place.path.push_str(name);
                text.clear();
                currency_attribute.clear();
                if let Ok(Some(attribute)) = start.try_get_attribute("Ccy")
                    && let Ok(value) = attribute.normalized_value(XmlVersion::Implicit1_0)
                {
                    currency_attribute.push_str(value.trim());
                }
                if place.path == statement_path {
                    place.statement = Some(place.path.len());
                    statement = Some(Statement::default());
                    continue;
                }
                match place.below(place.statement) {
                    Some("Ntry") => {
                        entries += 1;
                        place.entry = Some(place.path.len());
                        entry = Some(Entry::default());
                    }
                    Some("Bal") => {
                        place.balance = Some(place.path.len());
                        if let Some(statement) = statement.as_mut() {
                            statement.balance = Balance::default();
                        }
                    }
                    _ => {}
                }
                if place.below(place.entry) == Some("NtryDtls/TxDtls") {
                    place.transaction = Some(place.path.len());
                    transaction = Some(Transaction::default());
                }
            }
            Event::Text(content) => {
                let content = content.decode().map_err(|error| {
                    at(format_args!("line {}", line_at(reader.buffer_position())), error)
                })?;
                text.push_str(&content);
            }
            Event::CData(content) => {
                let content = content.decode().map_err(|error| {
                    at(format_args!("line {}", line_at(reader.buffer_position())), error)
                })?;
                text.push_str(&content);
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    Ok(None) => match reference.decode().as_deref() {
                        Ok("amp") => Some('&'),
                        Ok("lt") => Some('<'),
                        Ok("gt") => Some('>'),
                        Ok("quot") => Some('"'),
                        Ok("apos") => Some('\''),
                        _ => None,
                    },
                    Err(_) => None,
                };
                let c = resolved.ok_or_else(|| {
                    at(
                        format_args!("line {}", line_at(reader.buffer_position())),
                        "an unknown entity reference",
                    )
                })?;
                text.push(c);
            }
            Event::End(_) => {
                let length = place.path.len();
                if place.transaction == Some(length) {
                    if let (Some(entry), Some(done)) = (entry.as_mut(), transaction.take()) {
                        entry.transactions.push(done);
                    }
                    place.transaction = None;
                } else if let (Some(rel), Some(transaction)) =
                    (place.below(place.transaction), transaction.as_mut())
                {
                    transaction_field(transaction, rel, &text, &currency_attribute);
                } else if place.entry == Some(length) {
                    place.entry = None;
                    if let (Some(done), Some(statement)) = (entry.take(), statement.as_ref()) {
                        let index = statements.len();
                        finish_entry(&done, statement, index, offset, &mut lines).map_err(
                            |problem| {
                                at(
                                    format_args!(
                                        "Ntry {entries} (line {})",
                                        line_at(reader.buffer_position())
                                    ),
                                    problem,
                                )
                            },
                        )?;
                    }
                } else if let (Some(rel), Some(entry)) = (place.below(place.entry), entry.as_mut())
                {
                    entry_field(entry, rel, &text, &currency_attribute);
                } else if place.balance == Some(length) {
                    place.balance = None;
                    if let Some(statement) = statement.as_mut() {
                        finish_balance(statement).map_err(|problem| {
                            at(
                                format_args!("Bal (line {})", line_at(reader.buffer_position())),
                                problem,
                            )
                        })?;
                    }
                } else if place.statement == Some(length) {
                    place.statement = None;
                    if let Some(done) = statement.take() {
                        statements.push(finish_statement(done).map_err(|problem| {
                            at(
                                format_args!(
                                    "{element} (line {})",
                                    line_at(reader.buffer_position())
                                ),
                                problem,
                            )
                        })?);
                    }
                } else if let (Some(rel), Some(statement)) =
                    (place.below(place.statement), statement.as_mut())
                {
                    statement_field(statement, rel, &text, &currency_attribute).map_err(
                        |problem| {
                            at(format_args!("line {}", line_at(reader.buffer_position())), problem)
                        },
                    )?;
                }
                text.clear();
                let previous = place.lengths.pop().unwrap_or_default();
                place.path.truncate(previous);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err(ParseError::Unexpected("no XML document".to_owned()));
    }
    Ok((statements, lines.into_lines()))
}

fn trimmed(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn raw(text: &str, currency: &str) -> RawAmount {
    RawAmount { value: text.trim().to_owned(), currency: currency.to_owned() }
}

fn charges_field(charges: &mut Charges, rel: &str, text: &str, currency: &str) {
    match rel {
        "TtlChrgsAndTaxAmt" => charges.total = Some(raw(text, currency)),
        // v02 repeats `Chrgs` with an `Amt` each; v04 and later list `Rcrd`s.
        "Amt" | "Rcrd/Amt" => charges.records.push(raw(text, currency)),
        _ => {}
    }
}

fn transaction_field(transaction: &mut Transaction, rel: &str, text: &str, currency: &str) {
    match rel {
        "Refs/AcctSvcrRef" => transaction.account_servicer_reference = trimmed(text),
        "Refs/EndToEndId" => transaction.end_to_end_id = trimmed(text),
        "RmtInf/Strd/CdtrRefInf/Ref" if transaction.creditor_reference.is_none() => {
            transaction.creditor_reference = trimmed(text);
        }
        "Amt" => transaction.amount = Some(raw(text, currency)),
        "AmtDtls/TxAmt/Amt" => transaction.tx_amount = Some(raw(text, currency)),
        "CdtDbtInd" => transaction.side = trimmed(text),
        "RltdPties/Dbtr/Nm" | "RltdPties/Dbtr/Pty/Nm" => transaction.debtor = trimmed(text),
        "RltdPties/Cdtr/Nm" | "RltdPties/Cdtr/Pty/Nm" => transaction.creditor = trimmed(text),
        "RmtInf/Ustrd" => transaction.remittance.extend(trimmed(text)),
        "AddtlTxInf" => transaction.additional = trimmed(text),
        _ => {
            if let Some(rel) = rel.strip_prefix("Chrgs/") {
                charges_field(&mut transaction.charges, rel, text, currency);
            }
        }
    }
}

fn entry_field(entry: &mut Entry, rel: &str, text: &str, currency: &str) {
    match rel {
        "Amt" => entry.amount = Some(raw(text, currency)),
        "CdtDbtInd" => entry.side = trimmed(text),
        "RvslInd" => entry.reversal = trimmed(text),
        "Sts" | "Sts/Cd" | "Sts/Prtry" => {
            if let Some(status) = trimmed(text) {
                entry.status = Some(status);
            }
        }
        "BookgDt/Dt" => entry.booking = trimmed(text),
        "BookgDt/DtTm" => entry.booking_time = trimmed(text),
        "ValDt/Dt" => entry.value = trimmed(text),
        "ValDt/DtTm" => entry.value_time = trimmed(text),
        "AcctSvcrRef" => entry.account_servicer_reference = trimmed(text),
        "NtryRef" => entry.local_reference = trimmed(text),
        "AddtlNtryInf" => entry.additional = trimmed(text),
        _ => {
            if let Some(rel) = rel.strip_prefix("Chrgs/") {
                charges_field(&mut entry.charges, rel, text, currency);
            }
        }
    }
}

fn statement_field(
    statement: &mut Statement,
    rel: &str,
    text: &str,
    currency: &str,
) -> Result<(), String> {
    match rel {
        "Id" => statement.info.id = trimmed(text),
        "Acct/Id/IBAN" => statement.iban = trimmed(text),
        "Acct/Id/Othr/Id" => statement.other_id = trimmed(text),
        "Acct/Ccy" => statement.currency = trimmed(text),
        "FrToDt/FrDtTm" => statement.info.from = Some(moment_date(text)?),
        "FrToDt/ToDtTm" => statement.info.to = Some(moment_date(text)?),
        "Bal/Tp/CdOrPrtry/Cd" | "Bal/Tp/CdOrPrtry/Prtry" => {
            statement.balance.code = trimmed(text);
        }
        "Bal/Amt" => statement.balance.amount = Some(raw(text, currency)),
        "Bal/CdtDbtInd" => statement.balance.side = trimmed(text),
        "Bal/Dt/Dt" => statement.balance.date = trimmed(text),
        "Bal/Dt/DtTm" => statement.balance.time = trimmed(text),
        _ => {}
    }
    Ok(())
}

fn money(amount: &RawAmount) -> Result<Money, String> {
    let currency = Currency::from_code(&amount.currency).map_err(|error| error.to_string())?;
    Money::parse(currency, &amount.value).map_err(|error| error.to_string())
}

fn side(indicator: Option<&str>) -> Result<Direction, String> {
    match indicator {
        Some("CRDT") => Ok(Direction::In),
        Some("DBIT") => Ok(Direction::Out),
        Some(other) => Err(format!("CdtDbtInd {other:?} is neither CRDT nor DBIT")),
        None => Err("no CdtDbtInd".to_owned()),
    }
}

fn signed(amount: Money, direction: Direction) -> Money {
    match direction {
        Direction::In => amount,
        Direction::Out => Money::zero(amount.currency()).checked_sub(&amount).unwrap_or(amount),
    }
}

fn date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| format!("date {text:?}"))
}

/// An ISO date-time: with a zone, or without one (then in `offset`).
fn moment(text: &str, offset: FixedOffset) -> Result<DateTime<FixedOffset>, String> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|local| at_offset(local, offset).with_timezone(&offset))
        })
        .map_err(|_| format!("date-time {text:?}"))
}

/// The date of a date-time as written (its own zone's day).
fn moment_date(text: &str) -> Result<NaiveDate, String> {
    moment(text, utc()).map(|moment| moment.date_naive())
}

fn finish_balance(statement: &mut Statement) -> Result<(), String> {
    let balance = std::mem::take(&mut statement.balance);
    let code = balance.code.unwrap_or_default();
    if !matches!(code.as_str(), "OPBD" | "PRCD" | "CLBD") {
        return Ok(());
    }
    let amount = money(balance.amount.as_ref().ok_or("a balance without Amt")?)?;
    let amount = signed(amount, side(balance.side.as_deref())?);
    let date = match (balance.date, balance.time) {
        (Some(day), _) => Some(date(&day)?),
        (None, Some(time)) => Some(moment_date(&time)?),
        (None, None) => None,
    };
    match code.as_str() {
        "OPBD" => statement.info.opening = Some(amount),
        "PRCD" => statement.opening_previous = Some(amount),
        _ => {
            statement.info.closing = Some(amount);
            statement.info.closing_date = date;
        }
    }
    Ok(())
}

fn finish_statement(mut statement: Statement) -> Result<StatementInfo, String> {
    if statement.info.opening.is_none() {
        statement.info.opening = statement.opening_previous;
    }
    statement.info.account = statement.iban.or(statement.other_id);
    statement.info.currency = match statement.currency {
        Some(code) => Some(Currency::from_code(&code).map_err(|error| error.to_string())?),
        None => statement.info.opening.or(statement.info.closing).map(|money| money.currency()),
    };
    Ok(statement.info)
}

fn fee(charges: &Charges) -> Result<Option<Money>, String> {
    if let Some(total) = &charges.total {
        return Ok(Some(magnitude(money(total)?)).filter(Money::is_positive));
    }
    let mut sum: Option<Money> = None;
    for record in &charges.records {
        let amount = magnitude(money(record)?);
        sum = Some(match sum {
            None => amount,
            Some(sum) => sum.checked_add(&amount).map_err(|error| format!("charges: {error}"))?,
        });
    }
    Ok(sum.filter(Money::is_positive))
}

/// The transaction amounts of a batched entry, when it is one: several transactions, each
/// with a positive amount in the entry's currency, adding up to the entry's amount.
fn batch_amounts(
    entry: &Entry,
    amount: Money,
    direction: Direction,
) -> Result<Option<Vec<(Money, Direction)>>, String> {
    if entry.transactions.len() < 2 {
        return Ok(None);
    }
    let mut parts = Vec::with_capacity(entry.transactions.len());
    let mut sum = Money::zero(amount.currency());
    for transaction in &entry.transactions {
        let Some(raw) = transaction.amount.as_ref().or(transaction.tx_amount.as_ref()) else {
            return Ok(None);
        };
        let part = money(raw)?;
        if part.currency() != amount.currency() || !part.is_positive() {
            return Ok(None);
        }
        let part_direction = match transaction.side.as_deref() {
            None => direction,
            indicator => side(indicator)?,
        };
        sum = sum.checked_add(&signed(part, part_direction)).map_err(|error| error.to_string())?;
        parts.push((part, part_direction));
    }
    Ok((sum == signed(amount, direction)).then_some(parts))
}

fn reference(transaction: &Transaction) -> Option<String> {
    transaction
        .end_to_end_id
        .clone()
        .filter(|id| !id.eq_ignore_ascii_case("NOTPROVIDED"))
        .or_else(|| transaction.creditor_reference.clone())
}

fn description(transaction: Option<&Transaction>, entry: &Entry) -> Option<String> {
    transaction
        .and_then(|transaction| {
            (!transaction.remittance.is_empty())
                .then(|| transaction.remittance.join(" "))
                .or_else(|| transaction.additional.clone())
        })
        .or_else(|| entry.additional.clone())
}

fn counterparty(transaction: Option<&Transaction>, direction: Direction) -> Option<String> {
    transaction.and_then(|transaction| match direction {
        Direction::In => transaction.debtor.clone(),
        Direction::Out => transaction.creditor.clone(),
    })
}

fn finish_entry(
    entry: &Entry,
    statement: &Statement,
    index: usize,
    offset: FixedOffset,
    lines: &mut Lines,
) -> Result<(), String> {
    let amount = money(entry.amount.as_ref().ok_or("no Amt")?)?;
    if !amount.is_positive() {
        return Err(format!("amount {} is not positive", amount.amount()));
    }
    let direction = side(entry.side.as_deref())?;
    let reversal = match entry.reversal.as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => return Err(format!("RvslInd {other:?} is not a boolean")),
    };
    let status = match entry.status.as_deref() {
        Some("BOOK") => LineStatus::Completed,
        Some(_) => LineStatus::Pending,
        None => return Err("no Sts".to_owned()),
    };
    let value_date = match (&entry.value, &entry.value_time) {
        (Some(day), _) => Some(date(day)?),
        (None, Some(time)) => Some(moment(time, offset)?.date_naive()),
        (None, None) => None,
    };
    let booked_at = match (&entry.booking, &entry.booking_time) {
        (_, Some(time)) => moment(time, offset)?.to_utc(),
        (Some(day), None) => midnight(date(day)?, offset),
        (None, None) => midnight(value_date.ok_or("neither BookgDt nor ValDt")?, offset),
    };
    let value_date = value_date.unwrap_or_else(|| booked_at.with_timezone(&offset).date_naive());
    let account = statement.iban.as_deref().or(statement.other_id.as_deref()).unwrap_or_default();
    let base = StatementLine {
        statement: index,
        position: 0,
        key: String::new(),
        receipt: None,
        reference: None,
        batch: None,
        booked_at,
        value_date,
        direction,
        amount,
        fee: None,
        balance_after: None,
        counterparty: None,
        description: None,
        reversal,
        charge: false,
        status,
    };
    if let Some(parts) = batch_amounts(entry, amount, direction)? {
        let batch = entry
            .account_servicer_reference
            .clone()
            .or_else(|| entry.local_reference.clone())
            .unwrap_or_else(|| format!("entry:{}", lines.next_position()));
        for (number, (transaction, (part, part_direction))) in
            entry.transactions.iter().zip(parts).enumerate()
        {
            let own = transaction.account_servicer_reference.as_deref();
            let id = match (&entry.account_servicer_reference, own) {
                (Some(local_reference), Some(own)) => Some(format!("{local_reference}/{own}")),
                (Some(local_reference), None) => {
                    Some(format!("{local_reference}/tx:{}", number + 1))
                }
                (None, Some(own)) => Some(own.to_owned()),
                (None, None) => None,
            };
            let line = StatementLine {
                receipt: own
                    .map(str::to_owned)
                    .or_else(|| entry.account_servicer_reference.clone()),
                reference: reference(transaction),
                batch: Some(batch.clone()),
                direction: part_direction,
                amount: part,
                fee: fee(&transaction.charges)?,
                counterparty: counterparty(Some(transaction), part_direction),
                description: description(Some(transaction), entry),
                ..base.clone()
            };
            lines.push(line, account, id.as_deref());
        }
        return Ok(());
    }
    let first = entry.transactions.first();
    let receipt = entry.account_servicer_reference.clone().or_else(|| {
        (entry.transactions.len() == 1)
            .then(|| first.and_then(|transaction| transaction.account_servicer_reference.clone()))
            .flatten()
    });
    let line = StatementLine {
        receipt: receipt.clone(),
        reference: first.and_then(reference),
        fee: fee(&entry.charges)?,
        counterparty: counterparty(first, direction),
        description: description(first, entry),
        ..base
    };
    lines.push(line, account, receipt.as_deref());
    Ok(())
}
