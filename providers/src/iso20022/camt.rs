//! camt.052 account reports, camt.053 statements and camt.054 debit/credit notifications: the
//! bank's record of what it booked on our account, read into one typed [`Statement`] shape.
//!
//! The three share the entry (`Ntry`) structure; they differ in the wrapper element
//! (`BkToCstmrAcctRpt/Rpt`, `BkToCstmrStmt/Stmt`, `BkToCstmrDbtCdtNtfctn/Ntfctn`). Between
//! versions, v02 writes `<Sts>BOOK</Sts>` and v08 `<Sts><Cd>BOOK</Cd></Sts>`, and v08 nests a
//! related party's name in `Pty`; both are read.

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::Deserialize;

use super::{CodeOrProprietary, WireAmount, message_name, text};
use crate::money::{Currency, Money, MoneyError};
use crate::{ParseError, Status, StatusReport};

/// Which camt message a document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// camt.052: an intraday account report; its entries may still be pending.
    Report,
    /// camt.053: the end-of-day statement with opening and closing balances.
    Statement,
    /// camt.054: a notification of individual debits and credits.
    Notification,
}

/// A camt document: its header and its statements (reports, notifications).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CamtDocument {
    pub kind: MessageKind,
    /// The message and version from the namespace (`camt.053.001.08`).
    pub message_name: String,
    pub message_id: String,
    pub statements: Vec<Statement>,
}

/// One `Stmt`, `Ntfctn` or `Rpt`: an account's balances and entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub id: String,
    pub electronic_sequence_number: Option<String>,
    pub account: Account,
    pub balances: Vec<Balance>,
    pub entries: Vec<Entry>,
}

/// The account a statement is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub iban: Option<String>,
    /// `Id/Othr/Id`, for an account identified otherwise than by IBAN.
    pub other_id: Option<String>,
    pub currency: Option<Currency>,
}

/// Credit or debit, as `CdtDbtInd` says; amounts themselves are never negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Credit,
    Debit,
}

/// One `Bal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balance {
    /// `Tp/CdOrPrtry`: `OPBD` (opening booked), `CLBD` (closing booked), `OPAV`, `CLAV`, `ITBD`, …
    pub code: String,
    pub amount: Money,
    pub side: Side,
    pub date: Option<EntryDate>,
}

impl Balance {
    /// The balance as a signed amount: a debit balance is an overdraft.
    fn signed(&self) -> Money {
        signed(self.amount, self.side)
    }
}

/// A date as the bank gave it: a day, or a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryDate {
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
}

/// An entry's status: only booked entries have moved money.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryStatus {
    Booked,
    Pending,
    /// Information only (`INFO`): never booked.
    Information,
    Other(String),
}

/// One `Ntry`: a movement on the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub amount: Money,
    pub side: Side,
    /// `RvslInd` true: this entry undoes an earlier one with the same references.
    pub reversal: bool,
    pub status: EntryStatus,
    pub booking_date: Option<EntryDate>,
    pub value_date: Option<EntryDate>,
    /// The bank's reference for the entry.
    pub account_servicer_reference: Option<String>,
    pub transactions: Vec<TransactionDetails>,
}

/// One `NtryDtls/TxDtls`: a transaction inside an entry (a batch booking holds several).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionDetails {
    pub end_to_end_id: Option<String>,
    pub instruction_id: Option<String>,
    pub account_servicer_reference: Option<String>,
    pub amount: Option<Money>,
    pub side: Option<Side>,
    /// `RmtInf/Ustrd`, one per line as sent.
    pub remittance_lines: Vec<String>,
    /// `RmtInf/Strd/CdtrRefInf/Ref`: structured creditor references (`SCOR`, ISR, …).
    pub creditor_references: Vec<String>,
    pub debtor_name: Option<String>,
    pub debtor_iban: Option<String>,
    pub creditor_name: Option<String>,
    pub creditor_iban: Option<String>,
}

/// The result of checking a statement's booked balances against its entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BalanceCheck {
    /// Opening booked balance plus the booked entries equals the closing booked balance.
    Consistent,
    /// They differ: `difference` is the stated closing minus the computed one.
    Discrepancy { computed_closing: Money, stated_closing: Money, difference: Money },
    /// No check was possible (a balance missing, or amounts in different currencies).
    Unchecked(String),
}

/// Reads a camt.052, camt.053 or camt.054 document.
///
/// # Errors
///
/// Malformed XML, another message type, or an unreadable amount, date or indicator.
pub fn parse(xml: &str) -> Result<CamtDocument, ParseError> {
    let document: Document = quick_xml::de::from_str(xml)?;
    let message_name = message_name(document.xmlns.as_deref(), "camt")?;
    let (kind, wrapper, statements) = if message_name.starts_with("camt.053.") {
        (MessageKind::Statement, document.statement, "BkToCstmrStmt")
    } else if message_name.starts_with("camt.054.") {
        (MessageKind::Notification, document.notification, "BkToCstmrDbtCdtNtfctn")
    } else if message_name.starts_with("camt.052.") {
        (MessageKind::Report, document.report, "BkToCstmrAcctRpt")
    } else {
        return Err(ParseError::Unexpected(format!("{message_name} is not a camt.052/053/054")));
    };
    let wrapper = wrapper
        .ok_or_else(|| ParseError::Unexpected(format!("{message_name} without {statements}")))?;
    let statements = wrapper
        .statements
        .into_iter()
        .chain(wrapper.notifications)
        .chain(wrapper.reports)
        .map(Statement::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CamtDocument {
        kind,
        message_name,
        message_id: wrapper.grp_hdr.msg_id.trim().to_owned(),
        statements,
    })
}

impl Statement {
    /// One [`StatusReport`] per transaction of each *booked* entry (an entry without details
    /// gives one report). Pending and information entries are left out: they have not moved
    /// money, and a later statement books or drops them.
    ///
    /// A booked entry is [`Status::Succeeded`]. A reversal (`RvslInd` true) is reported as
    /// [`Status::Failed`] with the code `RvslInd` and the same references as the entry it
    /// reverses, so the caller finds the original payout by `our_reference` and books a
    /// correcting transfer (entries already posted are never edited).
    ///
    /// `our_reference` is the `EndToEndId` (not the `NOTPROVIDED` placeholder), `receipt` the
    /// bank's `AcctSvcrRef`, and `amount` the transaction's amount, or the entry's when the
    /// entry holds a single transaction.
    pub fn status_reports(&self) -> Vec<StatusReport> {
        let mut reports = Vec::new();
        for entry in self.entries.iter().filter(|entry| entry.status == EntryStatus::Booked) {
            let base = || {
                let mut report = StatusReport::new(if entry.reversal {
                    Status::Failed
                } else {
                    Status::Succeeded
                });
                report.receipt.clone_from(&entry.account_servicer_reference);
                if entry.reversal {
                    report.code = Some("RvslInd".to_owned());
                    report.description = Some("reversal of an earlier booked entry".to_owned());
                }
                report
            };
            if entry.transactions.is_empty() {
                let mut report = base();
                report.amount = Some(entry.amount);
                reports.push(report);
                continue;
            }
            let single = entry.transactions.len() == 1;
            for transaction in &entry.transactions {
                let mut report = base();
                report.our_reference = transaction
                    .end_to_end_id
                    .clone()
                    .filter(|id| !id.eq_ignore_ascii_case("NOTPROVIDED"));
                if transaction.account_servicer_reference.is_some() {
                    report.receipt.clone_from(&transaction.account_servicer_reference);
                }
                report.amount = transaction.amount.or(single.then_some(entry.amount));
                reports.push(report);
            }
        }
        reports
    }

    /// The first balance with this type code (`OPBD`, `CLBD`, …).
    pub fn balance(&self, code: &str) -> Option<&Balance> {
        self.balances.iter().find(|balance| balance.code == code)
    }

    /// Checks that the opening booked balance (`OPBD`, or `PRCD`, the previous closing) plus
    /// the booked entries (credits added, debits subtracted, reversals by their own indicator)
    /// equals the closing booked balance (`CLBD`). A mismatch is returned, not raised: the
    /// caller decides whether to hold the statement for a person.
    pub fn check_balances(&self) -> BalanceCheck {
        let Some(opening) = self.balance("OPBD").or_else(|| self.balance("PRCD")) else {
            return BalanceCheck::Unchecked("no opening booked balance (OPBD)".to_owned());
        };
        let Some(closing) = self.balance("CLBD") else {
            return BalanceCheck::Unchecked("no closing booked balance (CLBD)".to_owned());
        };
        let unchecked = |error: MoneyError| BalanceCheck::Unchecked(error.to_string());
        let mut computed = opening.signed();
        for entry in self.entries.iter().filter(|entry| entry.status == EntryStatus::Booked) {
            computed = match computed.checked_add(&signed(entry.amount, entry.side)) {
                Ok(sum) => sum,
                Err(error) => return unchecked(error),
            };
        }
        let stated = closing.signed();
        match stated.checked_sub(&computed) {
            Err(error) => unchecked(error),
            Ok(difference) if difference.amount().is_zero() => BalanceCheck::Consistent,
            Ok(difference) => BalanceCheck::Discrepancy {
                computed_closing: computed,
                stated_closing: stated,
                difference,
            },
        }
    }
}

fn signed(amount: Money, side: Side) -> Money {
    match side {
        Side::Credit => amount,
        // Negating cannot overflow (a decimal's range is symmetric) nor mismatch currencies, so
        // the fallback is never taken.
        Side::Debit => Money::zero(amount.currency()).checked_sub(&amount).unwrap_or(amount),
    }
}

impl TryFrom<WireStatement> for Statement {
    type Error = ParseError;

    fn try_from(statement: WireStatement) -> Result<Self, ParseError> {
        let account = statement.acct.unwrap_or_default();
        let currency =
            text(account.ccy.as_ref()).map(|code| Currency::from_code(&code)).transpose()?;
        let balances = statement
            .bal
            .into_iter()
            .map(|balance| {
                Ok(Balance {
                    code: balance.tp.cd_or_prtry.code().unwrap_or_default(),
                    amount: balance.amt.to_money()?,
                    side: side(&balance.cdt_dbt_ind)?,
                    date: balance.dt.map(WireDate::parse).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, ParseError>>()?;
        let entries = statement.ntry.into_iter().map(Entry::try_from).collect::<Result<_, _>>()?;
        Ok(Self {
            id: statement.id.trim().to_owned(),
            electronic_sequence_number: text(statement.elctrnc_seq_nb.as_ref()),
            account: Account {
                iban: text(account.id.iban.as_ref()),
                other_id: account.id.othr.and_then(|other| text(other.id.as_ref())),
                currency,
            },
            balances,
            entries,
        })
    }
}

impl TryFrom<WireEntry> for Entry {
    type Error = ParseError;

    fn try_from(entry: WireEntry) -> Result<Self, ParseError> {
        let status = entry.sts.and_then(|status| text(status.text.as_ref()).or(status.cd));
        let status = match status.as_deref().map(str::trim) {
            Some("BOOK") => EntryStatus::Booked,
            Some("PDNG") => EntryStatus::Pending,
            Some("INFO") => EntryStatus::Information,
            other => EntryStatus::Other(other.unwrap_or_default().to_owned()),
        };
        let transactions = entry
            .ntry_dtls
            .into_iter()
            .flat_map(|details| details.tx_dtls)
            .map(TransactionDetails::try_from)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            amount: entry.amt.to_money()?,
            side: side(&entry.cdt_dbt_ind)?,
            reversal: entry.rvsl_ind.unwrap_or(false),
            status,
            booking_date: entry.bookg_dt.map(WireDate::parse).transpose()?,
            value_date: entry.val_dt.map(WireDate::parse).transpose()?,
            account_servicer_reference: text(entry.acct_svcr_ref.as_ref()),
            transactions,
        })
    }
}

impl TryFrom<WireTransaction> for TransactionDetails {
    type Error = ParseError;

    fn try_from(transaction: WireTransaction) -> Result<Self, ParseError> {
        let references = transaction.refs.unwrap_or_default();
        let remittance = transaction.rmt_inf.unwrap_or_default();
        let parties = transaction.rltd_pties.unwrap_or_default();
        Ok(Self {
            end_to_end_id: text(references.end_to_end_id.as_ref()),
            instruction_id: text(references.instr_id.as_ref()),
            account_servicer_reference: text(references.acct_svcr_ref.as_ref()),
            amount: transaction.amt.map(|amount| amount.to_money()).transpose()?,
            side: transaction.cdt_dbt_ind.as_deref().map(side).transpose()?,
            remittance_lines: remittance.ustrd.iter().filter_map(|line| text(Some(line))).collect(),
            creditor_references: remittance
                .strd
                .into_iter()
                .filter_map(|structured| structured.cdtr_ref_inf)
                .filter_map(|reference| text(reference.r#ref.as_ref()))
                .collect(),
            debtor_name: parties.dbtr.and_then(Party::name),
            debtor_iban: parties.dbtr_acct.and_then(|account| text(account.id.iban.as_ref())),
            creditor_name: parties.cdtr.and_then(Party::name),
            creditor_iban: parties.cdtr_acct.and_then(|account| text(account.id.iban.as_ref())),
        })
    }
}

fn side(indicator: &str) -> Result<Side, ParseError> {
    match indicator.trim() {
        "CRDT" => Ok(Side::Credit),
        "DBIT" => Ok(Side::Debit),
        other => Err(ParseError::Unexpected(format!("CdtDbtInd {other:?}"))),
    }
}

#[derive(Debug, Deserialize)]
struct Document {
    #[serde(rename = "@xmlns")]
    xmlns: Option<String>,
    #[serde(rename = "BkToCstmrStmt")]
    statement: Option<Wrapper>,
    #[serde(rename = "BkToCstmrDbtCdtNtfctn")]
    notification: Option<Wrapper>,
    #[serde(rename = "BkToCstmrAcctRpt")]
    report: Option<Wrapper>,
}

/// The three wrappers differ only in the repeated element's name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Wrapper {
    grp_hdr: GroupHeader,
    #[serde(rename = "Stmt", default)]
    statements: Vec<WireStatement>,
    #[serde(rename = "Ntfctn", default)]
    notifications: Vec<WireStatement>,
    #[serde(rename = "Rpt", default)]
    reports: Vec<WireStatement>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GroupHeader {
    msg_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireStatement {
    id: String,
    elctrnc_seq_nb: Option<String>,
    acct: Option<WireAccount>,
    #[serde(default)]
    bal: Vec<WireBalance>,
    #[serde(default)]
    ntry: Vec<WireEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireAccount {
    #[serde(default)]
    id: AccountId,
    ccy: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AccountId {
    #[serde(rename = "IBAN")]
    iban: Option<String>,
    othr: Option<OtherId>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OtherId {
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireBalance {
    tp: BalanceType,
    amt: WireAmount,
    cdt_dbt_ind: String,
    dt: Option<WireDate>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BalanceType {
    #[serde(default)]
    cd_or_prtry: CodeOrProprietary,
}

/// `DateAndDateTimeChoice`: `<Dt>` or `<DtTm>`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireDate {
    dt: Option<String>,
    dt_tm: Option<String>,
}

impl WireDate {
    fn parse(self) -> Result<EntryDate, ParseError> {
        let invalid = |value: &str| ParseError::Unexpected(format!("date {value:?}"));
        if let Some(date) = text(self.dt.as_ref()) {
            return NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                .map(EntryDate::Date)
                .map_err(|_| invalid(&date));
        }
        if let Some(moment) = text(self.dt_tm.as_ref()) {
            return DateTime::parse_from_rfc3339(&moment)
                .map(EntryDate::DateTime)
                .map_err(|_| invalid(&moment));
        }
        Err(ParseError::Unexpected("a date with neither Dt nor DtTm".to_owned()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireEntry {
    amt: WireAmount,
    cdt_dbt_ind: String,
    rvsl_ind: Option<bool>,
    sts: Option<WireEntryStatus>,
    bookg_dt: Option<WireDate>,
    val_dt: Option<WireDate>,
    acct_svcr_ref: Option<String>,
    #[serde(default)]
    ntry_dtls: Vec<EntryDetails>,
}

/// v02 `<Sts>BOOK</Sts>` (text) or v08 `<Sts><Cd>BOOK</Cd></Sts>`.
#[derive(Debug, Deserialize)]
struct WireEntryStatus {
    #[serde(rename = "$text")]
    text: Option<String>,
    #[serde(rename = "Cd")]
    cd: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryDetails {
    #[serde(default)]
    tx_dtls: Vec<WireTransaction>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireTransaction {
    refs: Option<References>,
    amt: Option<WireAmount>,
    cdt_dbt_ind: Option<String>,
    rltd_pties: Option<RelatedParties>,
    rmt_inf: Option<Remittance>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct References {
    acct_svcr_ref: Option<String>,
    instr_id: Option<String>,
    end_to_end_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RelatedParties {
    dbtr: Option<Party>,
    dbtr_acct: Option<WireAccount>,
    cdtr: Option<Party>,
    cdtr_acct: Option<WireAccount>,
}

/// v02 names the party directly; v08 wraps it in `Pty` (beside a possible `Agt`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Party {
    nm: Option<String>,
    pty: Option<PartyName>,
}

impl Party {
    fn name(self) -> Option<String> {
        text(self.nm.as_ref()).or_else(|| self.pty.and_then(|party| text(party.nm.as_ref())))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PartyName {
    nm: Option<String>,
}

/// `Ustrd` lines come before `Strd` blocks in every sample; quick-xml without its
/// `overlapped-lists` feature could not read them interleaved.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Remittance {
    #[serde(default)]
    ustrd: Vec<String>,
    #[serde(default)]
    strd: Vec<Structured>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Structured {
    cdtr_ref_inf: Option<CreditorReference>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreditorReference {
    #[serde(rename = "Ref")]
    r#ref: Option<String>,
}
