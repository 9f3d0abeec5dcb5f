//! Statement files from providers and banks, read into one shape for reconciliation.
//!
//! A finance team imports an M-Pesa organisation statement, a Pull Transactions API answer, an
//! MTN MoMo transaction report, an ISO 20022 camt.053 statement or camt.054 notification, or a
//! SWIFT MT940 statement; [`parse`] turns its bytes into a [`StatementFile`]: the statements it
//! holds ([`StatementInfo`]: account, period, opening and closing balances) and every movement
//! on them ([`StatementLine`]), in file order. The readers are pure (no database, no clock), run
//! in one pass over the bytes, and refuse a malformed file with a [`ParseError`] that names the
//! place (a line, a record, an item or an entry) and the problem; they never round an amount.
//!
//! # Dedup keys
//!
//! [`StatementLine::key`] names the *transaction*, not the file, so that importing two
//! overlapping exports records each transaction once:
//!
//! - with the provider's or bank's own id (an M-Pesa receipt, a MoMo transaction id, a camt
//!   `AcctSvcrRef`, an MT940 bank reference) the key is `family:account:id`, where the family
//!   is `mpesa` (the CSV export and the Pull API share it, so a receipt seen in both is one
//!   transaction), `momo` or `bank` (camt and MT940 share it). An M-Pesa charge row carries
//!   the receipt of the payment it charges for, so its id is `receipt:charge`; a transaction
//!   of a batched bank entry appends its own reference or its place in the entry
//!   (`entry-ref/tx:2`). Should the same id still occur twice in one file, the second and later
//!   get `#2`, `#3`, … in file order.
//! - the account is the one the file names for bank formats (camt `Acct`, MT940 `:25:`), which
//!   is always present; for M-Pesa and MoMo it is [`ParseOptions::account`] (empty when not
//!   given), because their exports do not reliably say whose they are, and a key must not
//!   change with a preamble row that one export has and another lacks.
//! - without any id, the key is `family:account:` and the SHA-256 (hex) of the account, the
//!   value date, the direction, the amount, the description and the counterparty, followed by
//!   `#n`, the occurrence of that tuple in the file (`#1` for the first).
//!
//! The fallback has limits. Two genuinely different transactions with the same tuple are told
//! apart only by their order in the file, so an export that starts in the middle of a run of
//! such identical lines numbers them differently from one that holds the whole run: the
//! overlap is then recorded once too few or too many times. A bank that rewrites a
//! description between two exports changes the key. Files whose lines have ids do not have
//! these limits.

mod camt;
mod csv_table;
mod momo;
mod mpesa_csv;
mod mpesa_pull;
mod mt940;

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

use crate::ParseError;
use crate::money::{Currency, Money};

/// The statement formats we read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// The M-Pesa organisation portal's statement export (CSV).
    MpesaCsv,
    /// The M-Pesa Pull Transactions API's query answer (JSON).
    MpesaPull,
    /// The MTN MoMo partner portal's transaction report (CSV).
    MomoReport,
    /// ISO 20022 camt.053: a bank-to-customer statement.
    Camt053,
    /// ISO 20022 camt.054: a bank-to-customer debit/credit notification.
    Camt054,
    /// SWIFT MT940: a customer statement message.
    Mt940,
}

impl Format {
    /// Every format, in declaration order.
    pub const ALL: [Format; 6] = [
        Format::MpesaCsv,
        Format::MpesaPull,
        Format::MomoReport,
        Format::Camt053,
        Format::Camt054,
        Format::Mt940,
    ];

    /// The format's stable name (`mpesa_csv`, `camt053`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::MpesaCsv => "mpesa_csv",
            Format::MpesaPull => "mpesa_pull",
            Format::MomoReport => "momo_report",
            Format::Camt053 => "camt053",
            Format::Camt054 => "camt054",
            Format::Mt940 => "mt940",
        }
    }

    /// The format with this name: the inverse of [`Format::as_str`].
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|format| format.as_str() == name)
    }

    /// Guesses the format from the file's first bytes: an XML document whose namespace is
    /// camt.053 or camt.054; JSON with `ResponseRefID` or `Response`; an MT940 `:20:` field
    /// (or a SWIFT envelope `{1:`); or a CSV whose header row (within the first rows) has the
    /// M-Pesa or the MoMo columns. `None` when it is none of these.
    pub fn detect(bytes: &[u8]) -> Option<Format> {
        let bytes = strip_bom(bytes);
        let head = &bytes[..bytes.len().min(DETECT_WINDOW)];
        let text = String::from_utf8_lossy(head);
        let trimmed = text.trim_start();
        if trimmed.starts_with('<') {
            return if text.contains("camt.053.") {
                Some(Format::Camt053)
            } else if text.contains("camt.054.") {
                Some(Format::Camt054)
            } else {
                None
            };
        }
        if trimmed.starts_with('{') && !trimmed.starts_with("{1:") || trimmed.starts_with('[') {
            let pull = text.contains("\"ResponseRefID\"") || text.contains("\"Response\"");
            return pull.then_some(Format::MpesaPull);
        }
        if trimmed.starts_with("{1:")
            || trimmed.starts_with(":20:")
            || text.contains("\n:20:")
            || text.contains("\r:20:")
        {
            return Some(Format::Mt940);
        }
        csv_table::detect(head)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many bytes [`Format::detect`] looks at.
const DETECT_WINDOW: usize = 16 * 1024;

/// What a file does not say and the caller knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// The zone of times and dates written without one. When `None`: East Africa Time
    /// (+03:00) for M-Pesa, UTC for MoMo and the banks' dates.
    pub utc_offset: Option<FixedOffset>,
    /// The currency of amounts the file does not name one for. When `None`: KES for M-Pesa;
    /// a MoMo report without a `Currency` column is refused.
    pub currency: Option<Currency>,
    /// The account the file is for (a shortcode, a MoMo account), used in dedup keys of the
    /// formats that do not name their account reliably (M-Pesa, MoMo; see the module doc), and
    /// by MoMo to tell outgoing lines by their `From` party.
    pub account: Option<String>,
}

/// A statement file read: its statements and every line, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementFile {
    pub format: Format,
    pub statements: Vec<StatementInfo>,
    pub lines: Vec<StatementLine>,
}

/// One statement or notification in a file (a camt file and an MT940 file may hold several;
/// an M-Pesa or MoMo file is one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatementInfo {
    /// The statement's own id (camt `Stmt/Id`, MT940 `:20:` and `:28C:`), when it has one.
    pub id: Option<String>,
    /// The account as the file names it (an IBAN, an account number, a shortcode).
    pub account: Option<String>,
    pub currency: Option<Currency>,
    /// The period covered, when the file says.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// The opening and closing booked balances, signed: a debit balance is negative.
    pub opening: Option<Money>,
    pub closing: Option<Money>,
    pub closing_date: Option<NaiveDate>,
}

/// Which way money moved, seen from the account holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Into the account: paid in, a credit (`CRDT`, `C`, `RD`).
    In,
    /// Out of the account: withdrawn, a debit (`DBIT`, `D`, `RC`).
    Out,
}

impl Direction {
    /// `in` or `out`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// Whether a line moved money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LineStatus {
    /// Booked or completed: the money moved.
    Completed,
    /// Not (yet) booked: pending, information only, or a status we do not know.
    Pending,
    /// Failed, declined or cancelled: no money moved.
    Failed,
}

/// One movement on a statement's account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementLine {
    /// Index into [`StatementFile::statements`].
    pub statement: usize,
    /// 1-based place in the file: the CSV data record, the JSON item, the camt line (an entry
    /// or one transaction of a batched entry), the MT940 `:61:` — counted across the file.
    pub position: u32,
    /// The dedup key (see the module doc).
    pub key: String,
    /// The provider's or bank's own id for the transaction.
    pub receipt: Option<String>,
    /// The reference we or the payer gave (camt `EndToEndId`, MoMo external id, M-Pesa bill
    /// reference or account number, MT940 customer reference).
    pub reference: Option<String>,
    /// For one transaction of a batched bank entry: the entry's id, shared by its lines.
    pub batch: Option<String>,
    /// When it completed or was booked (a date alone is midnight in the file's zone).
    pub booked_at: DateTime<Utc>,
    pub value_date: NaiveDate,
    pub direction: Direction,
    /// The amount moved, positive.
    pub amount: Money,
    /// A charge stated on the same line or entry, positive.
    pub fee: Option<Money>,
    /// The account's balance after the line, signed.
    pub balance_after: Option<Money>,
    pub counterparty: Option<String>,
    pub description: Option<String>,
    /// The line undoes an earlier one (camt `RvslInd`, MT940 `RC`/`RD`, an M-Pesa reversal).
    pub reversal: bool,
    /// The line is the provider's charge for another line (an M-Pesa "… Charge" row), which
    /// carries the same receipt.
    pub charge: bool,
    pub status: LineStatus,
}

/// Reads a statement file of `format`.
///
/// # Errors
///
/// [`ParseError::Unexpected`] naming the place (line, record, item or entry) and the problem:
/// a file of another format, a missing column or field, an unreadable date or amount, an
/// amount finer than its currency, a line that is neither in nor out.
pub fn parse(
    format: Format,
    bytes: &[u8],
    options: &ParseOptions,
) -> Result<StatementFile, ParseError> {
    let bytes = strip_bom(bytes);
    let (statements, lines) = match format {
        Format::MpesaCsv => mpesa_csv::parse(bytes, options)?,
        Format::MpesaPull => mpesa_pull::parse(bytes, options)?,
        Format::MomoReport => momo::parse(bytes, options)?,
        Format::Camt053 | Format::Camt054 => camt::parse(format, bytes, options)?,
        Format::Mt940 => mt940::parse(bytes, options)?,
    };
    Ok(StatementFile { format, statements, lines })
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// East Africa Time, M-Pesa's zone.
fn east_africa() -> FixedOffset {
    // Three hours east is inside the ±24 hours `east_opt` accepts, so the fallback (UTC) is
    // never taken.
    FixedOffset::east_opt(3 * 3600).unwrap_or(utc())
}

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("zero is a valid offset"))
}

/// A local time in `offset`, as UTC.
fn at_offset(local: NaiveDateTime, offset: FixedOffset) -> DateTime<Utc> {
    (local - offset).and_utc()
}

/// Midnight of `date` in `offset`, as UTC.
fn midnight(date: NaiveDate, offset: FixedOffset) -> DateTime<Utc> {
    at_offset(date.and_time(chrono::NaiveTime::MIN), offset)
}

/// A problem at a place in the file.
fn at(place: impl fmt::Display, problem: impl fmt::Display) -> ParseError {
    ParseError::Unexpected(format!("{place}: {problem}"))
}

/// Text that is present and not blank, trimmed.
fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// An amount as statements write it: a plain decimal, optionally signed, optionally with
/// thousands separators (`1,250.00`) when `grouped` is allowed. Never rounded.
fn amount(currency: Currency, text: &str, grouped: bool) -> Result<Money, String> {
    let text = text.trim();
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if unsigned.starts_with(['-', '+']) {
        return Err(format!("invalid amount {text:?}: two signs"));
    }
    let plain = if grouped && unsigned.contains(',') {
        let (whole, fraction) =
            unsigned.split_once('.').map_or((unsigned, None), |(w, f)| (w, Some(f)));
        let mut groups = whole.split(',');
        let first = groups.next().unwrap_or_default();
        let well_grouped = (1..=3).contains(&first.len())
            && groups.all(|group| group.len() == 3)
            && whole.bytes().all(|b| b.is_ascii_digit() || b == b',');
        if !well_grouped {
            return Err(format!("invalid amount {text:?}: misplaced thousands separator"));
        }
        let mut plain: String = whole.chars().filter(|&c| c != ',').collect();
        if let Some(fraction) = fraction {
            plain.push('.');
            plain.push_str(fraction);
        }
        plain
    } else {
        unsigned.to_owned()
    };
    let plain = if text.starts_with('-') { format!("-{plain}") } else { plain };
    Money::parse(currency, &plain).map_err(|error| error.to_string())
}

/// `amount`, without its sign.
fn magnitude(money: Money) -> Money {
    if money.amount().is_sign_negative() {
        Money::zero(money.currency()).checked_sub(&money).unwrap_or(money)
    } else {
        money
    }
}

/// Gathers a file's lines, numbering them and giving each its dedup key.
#[derive(Debug)]
struct Lines {
    family: &'static str,
    gathered: Vec<StatementLine>,
    /// How often each key base occurred so far.
    seen: HashMap<String, u32>,
}

impl Lines {
    fn new(family: &'static str) -> Self {
        Self { family, gathered: Vec::new(), seen: HashMap::new() }
    }

    /// The position the next line gets.
    fn next_position(&self) -> u32 {
        u32::try_from(self.gathered.len() + 1).unwrap_or(u32::MAX)
    }

    /// Adds `line` (its `position` and `key` are set here) for `account`, identified by `id`
    /// when it has one (see the module doc).
    fn push(&mut self, mut line: StatementLine, account: &str, id: Option<&str>) {
        line.position = self.next_position();
        let mut base = String::with_capacity(64);
        base.push_str(self.family);
        base.push(':');
        base.push_str(account);
        base.push(':');
        if let Some(id) = id {
            base.push_str(id);
        } else {
            let mut hash = Sha256::new();
            for part in [
                account,
                &line.value_date.to_string(),
                line.direction.as_str(),
                &line.amount.to_string(),
                line.description.as_deref().unwrap_or_default(),
                line.counterparty.as_deref().unwrap_or_default(),
            ] {
                // Each part after its length, so that no two tuples hash the same bytes.
                hash.update((part.len() as u64).to_le_bytes());
                hash.update(part.as_bytes());
            }
            for byte in hash.finalize() {
                let _ = write!(base, "{byte:02x}");
            }
        }
        let count = if let Some(count) = self.seen.get_mut(&base) {
            *count += 1;
            *count
        } else {
            self.seen.insert(base.clone(), 1);
            1
        };
        if id.is_none() || count > 1 {
            let _ = write!(base, "#{count}");
        }
        line.key = base;
        self.gathered.push(line);
    }

    fn into_lines(self) -> Vec<StatementLine> {
        self.gathered
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn kes() -> Currency {
        Currency::from_code("KES").unwrap()
    }

    #[test]
    fn grouped_amounts_read_exactly() {
        assert_eq!(amount(kes(), "1,250.00", true).unwrap().to_string(), "1250.00 KES");
        assert_eq!(
            amount(kes(), "-1,250,000.5", true).unwrap().amount().to_string(),
            "-1250000.50"
        );
        assert_eq!(amount(kes(), "100", true).unwrap().amount().to_string(), "100.00");
        assert!(amount(kes(), "1,25.00", true).is_err());
        assert!(amount(kes(), ",125.00", true).is_err());
        assert!(amount(kes(), "1,250.00", false).is_err());
        assert!(amount(kes(), "1.005", true).is_err());
        assert!(amount(kes(), "--1", true).is_err());
        assert!(amount(kes(), "+-1", true).is_err());
        assert_eq!(amount(kes(), "+1", true).unwrap().amount().to_string(), "1.00");
    }

    #[test]
    fn names_round_trip() {
        for format in Format::ALL {
            assert_eq!(Format::from_name(format.as_str()), Some(format));
        }
        assert_eq!(Format::from_name("camt052"), None);
    }
}
