//! What a bank channel needs of ISO 20022 beyond reading and writing messages, all pure: the
//! checks of an account number (IBAN with its mod-97 check digits, or another account id) and
//! a BIC, what kind of message an inbound file is, and a camt notification's booked entries as
//! bookings on one side (debits that settle our payouts, credits that are collections).

use super::camt::{CamtDocument, EntryStatus, Side, Statement};
use super::pain002::PaymentStatusReport;
use crate::money::Money;
use crate::{ParseError, Status, StatusReport};

/// The longest account id the schema allows (`Max34Text`, and an IBAN's own maximum).
pub const ACCOUNT_CHARS_MAX: usize = 34;

/// Why an account number cannot be paid to or from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("an account number has 1 to 34 letters and digits")]
    Shape,
    /// It has an IBAN's shape (country letters, check digits) but its check digits are wrong:
    /// a mistyped IBAN, refused rather than sent as another kind of account.
    #[error("the IBAN's check digits are wrong")]
    IbanCheckDigits,
}

/// The account number as a bank file carries it: spaces removed, letters upper-cased (IBANs are
/// printed in groups of four), checked as an IBAN when it has an IBAN's shape.
///
/// # Errors
///
/// [`AccountError`] for an empty or over-long number, one with other characters, or an IBAN
/// with wrong check digits.
pub fn account(text: &str) -> Result<String, AccountError> {
    let account: String =
        text.chars().filter(|c| *c != ' ').map(|c| c.to_ascii_uppercase()).collect();
    if account.is_empty()
        || account.len() > ACCOUNT_CHARS_MAX
        || !account.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(AccountError::Shape);
    }
    if iban_shaped(&account) && !is_iban(&account) {
        return Err(AccountError::IbanCheckDigits);
    }
    Ok(account)
}

/// Two letters, two digits, then 11 to 30 letters and digits: what an IBAN looks like.
fn iban_shaped(account: &str) -> bool {
    let bytes = account.as_bytes();
    (15..=ACCOUNT_CHARS_MAX).contains(&bytes.len())
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..4].iter().all(u8::is_ascii_digit)
        && bytes[4..].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Whether `account` is an IBAN with correct check digits (ISO 13616: the country and check
/// digits moved to the end, letters as 10 to 35, the number mod 97 is 1).
pub fn is_iban(account: &str) -> bool {
    if !iban_shaped(account) {
        return false;
    }
    let (head, tail) = account.split_at(4);
    let mut remainder: u32 = 0;
    for byte in tail.bytes().chain(head.bytes()) {
        let value = if byte.is_ascii_digit() {
            u32::from(byte - b'0')
        } else {
            u32::from(byte - b'A') + 10
        };
        // Two digits at most per character: the remainder stays below 97 * 100.
        let shift = if value >= 10 { 100 } else { 10 };
        remainder = (remainder * shift + value) % 97;
    }
    remainder == 1
}

/// Whether `bic` is a BIC (ISO 9362): four letters (the bank), two letters (the country), two
/// letters or digits (the location), and optionally three more (the branch).
pub fn is_bic(bic: &str) -> bool {
    let bytes = bic.as_bytes();
    (bytes.len() == 8 || bytes.len() == 11)
        && bytes[..6].iter().all(u8::is_ascii_uppercase)
        && bytes[6..].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// An inbound file, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// pain.002: the bank's answer to one of our pain.001 files.
    StatusReport(PaymentStatusReport),
    /// camt.052/053/054: what the bank booked on the account.
    Account(CamtDocument),
}

impl Inbound {
    /// The message and version (`pain.002.001.03`, `camt.054.001.02`).
    pub fn message_name(&self) -> &str {
        match self {
            Self::StatusReport(report) => &report.message_name,
            Self::Account(document) => &document.message_name,
        }
    }

    /// The message's own id (`GrpHdr/MsgId`).
    pub fn message_id(&self) -> &str {
        match self {
            Self::StatusReport(report) => &report.message_id,
            Self::Account(document) => &document.message_id,
        }
    }
}

/// Reads an inbound file as the message its namespace names: a pain.002 or a camt report,
/// statement or notification.
///
/// # Errors
///
/// Malformed XML, a message of another kind, or an unreadable amount or date.
pub fn read(xml: &str) -> Result<Inbound, ParseError> {
    if xml.contains("urn:iso:std:iso:20022:tech:xsd:pain.002") {
        return super::pain002::parse(xml).map(Inbound::StatusReport);
    }
    if xml.contains("urn:iso:std:iso:20022:tech:xsd:camt.05") {
        return super::camt::parse(xml).map(Inbound::Account);
    }
    Err(ParseError::Unexpected("neither a pain.002 nor a camt.052/053/054 message".to_owned()))
}

/// One booked movement on the account, one per transaction of a booked entry (or the entry
/// itself when it has no details).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Booking {
    /// The transaction's side, or its entry's: a debit pays out, a credit comes in.
    pub side: Side,
    /// `RvslInd`: this undoes an earlier booking.
    pub reversal: bool,
    /// The transaction's amount, or the entry's when it holds one transaction; `None` when a
    /// batch entry does not say each transaction's amount.
    pub amount: Option<Money>,
    /// `Refs/EndToEndId`, placeholder (`NOTPROVIDED`) left out.
    pub end_to_end_id: Option<String>,
    /// The bank's reference for the booking: the transaction's `AcctSvcrRef`, or the entry's.
    pub bank_reference: Option<String>,
    /// What the payer wrote: the unstructured remittance lines, then the structured creditor
    /// references.
    pub remittance: Vec<String>,
    pub debtor_name: Option<String>,
    pub debtor_account: Option<String>,
    /// The booking as a status report: `Succeeded` (or `Failed` for a reversal) with our
    /// reference, the bank's reference as the receipt, and the amount.
    pub report: StatusReport,
}

/// The booked movements of a statement, in order. Pending and information entries are left
/// out: they have not moved money.
pub fn bookings(statement: &Statement) -> Vec<Booking> {
    let reports = statement.status_reports();
    let mut reports = reports.into_iter();
    let mut bookings = Vec::new();
    for entry in statement.entries.iter().filter(|entry| entry.status == EntryStatus::Booked) {
        // `status_reports` gives one report per transaction of each booked entry, or one for
        // an entry without details, in the same order as walked here.
        if entry.transactions.is_empty() {
            let Some(report) = reports.next() else { break };
            bookings.push(Booking {
                side: entry.side,
                reversal: entry.reversal,
                amount: Some(entry.amount),
                end_to_end_id: None,
                bank_reference: entry.account_servicer_reference.clone(),
                remittance: Vec::new(),
                debtor_name: None,
                debtor_account: None,
                report,
            });
            continue;
        }
        for transaction in &entry.transactions {
            let Some(report) = reports.next() else { break };
            let remittance = (transaction.remittance_lines.iter())
                .chain(&transaction.creditor_references)
                .cloned()
                .collect();
            bookings.push(Booking {
                side: transaction.side.unwrap_or(entry.side),
                reversal: entry.reversal,
                amount: report.amount,
                end_to_end_id: report.our_reference.clone(),
                bank_reference: report.receipt.clone(),
                remittance,
                debtor_name: transaction.debtor_name.clone(),
                debtor_account: transaction.debtor_iban.clone(),
                report,
            });
        }
    }
    bookings
}

impl Booking {
    /// Whether this booking settles a payout: a booked debit that is not a reversal. (A
    /// reversal keeps the side of the entry it undoes reversed: `CRDT` with `RvslInd` returns a
    /// debit, `DBIT` with `RvslInd` takes back a credit.)
    pub fn is_payout_settlement(&self) -> bool {
        self.side == Side::Debit && !self.reversal && self.report.status == Status::Succeeded
    }

    /// Whether this booking is money coming in (a credit that is not a reversal).
    pub fn is_collection(&self) -> bool {
        self.side == Side::Credit && !self.reversal
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn ibans_are_checked_by_their_check_digits() {
        for iban in ["NL91ABNA0417164300", "DE89370400440532013000", "GB29NWBK60161331926819"] {
            assert!(is_iban(iban), "{iban}");
            assert_eq!(account(iban).unwrap(), iban);
        }
        assert_eq!(account("nl91 abna 0417 1643 00").unwrap(), "NL91ABNA0417164300");
        assert_eq!(account("NL91ABNA0417164301"), Err(AccountError::IbanCheckDigits));
        assert!(!is_iban("NL91ABNA0417164301"));
    }

    #[test]
    fn other_account_numbers_are_letters_and_digits() {
        assert_eq!(account("0123456789").unwrap(), "0123456789");
        assert_eq!(account("01-2345"), Err(AccountError::Shape));
        assert_eq!(account(""), Err(AccountError::Shape));
        assert_eq!(account(&"1".repeat(35)), Err(AccountError::Shape));
        assert!(!is_iban("0123456789"));
    }

    #[test]
    fn bics_have_eight_or_eleven_characters() {
        for bic in ["ABNANL2A", "DEUTDEFF500", "KCBLKENX"] {
            assert!(is_bic(bic), "{bic}");
        }
        for bic in ["ABNANL2", "abnanl2a", "ABN1NL2A", "DEUTDEFF50", ""] {
            assert!(!is_bic(bic), "{bic}");
        }
    }

    #[test]
    fn a_file_is_read_as_the_message_its_namespace_names() {
        let pain002 = r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03">
            <CstmrPmtStsRpt><GrpHdr><MsgId>R1</MsgId></GrpHdr>
            <OrgnlGrpInfAndSts><OrgnlMsgId>M1</OrgnlMsgId><GrpSts>ACCP</GrpSts>
            </OrgnlGrpInfAndSts></CstmrPmtStsRpt></Document>"#;
        let read_back = read(pain002).unwrap();
        assert!(matches!(read_back, Inbound::StatusReport(_)));
        assert_eq!(read_back.message_id(), "R1");
        assert!(
            read("<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.001.001.03\"/>").is_err()
        );
        assert!(read("not xml at all").is_err());
    }

    #[test]
    fn bookings_keep_each_transaction_s_side_and_references() {
        let xml = r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02">
          <BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>N1</MsgId></GrpHdr><Ntfctn><Id>N1-1</Id>
          <Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id><Ccy>EUR</Ccy></Acct>
          <Ntry><Amt Ccy="EUR">10.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
            <AcctSvcrRef>B-1</AcctSvcrRef>
            <NtryDtls><TxDtls><Refs><EndToEndId>E2E-1</EndToEndId></Refs></TxDtls></NtryDtls>
          </Ntry>
          <Ntry><Amt Ccy="EUR">5.50</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
            <AcctSvcrRef>B-2</AcctSvcrRef>
            <NtryDtls><TxDtls><Refs><AcctSvcrRef>B-2a</AcctSvcrRef>
              <EndToEndId>NOTPROVIDED</EndToEndId></Refs>
              <RmtInf><Ustrd>INV 7</Ustrd></RmtInf></TxDtls></NtryDtls>
          </Ntry>
          <Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>PDNG</Sts></Ntry>
          </Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"#;
        let Inbound::Account(document) = read(xml).unwrap() else { panic!("not camt") };
        let bookings = bookings(&document.statements[0]);
        assert_eq!(bookings.len(), 2);
        assert!(bookings[0].is_payout_settlement());
        assert_eq!(bookings[0].end_to_end_id.as_deref(), Some("E2E-1"));
        assert_eq!(bookings[0].bank_reference.as_deref(), Some("B-1"));
        assert_eq!(bookings[0].amount.unwrap().amount().to_string(), "10.00");
        assert!(bookings[1].is_collection());
        assert_eq!(bookings[1].end_to_end_id, None);
        assert_eq!(bookings[1].bank_reference.as_deref(), Some("B-2a"));
        assert_eq!(bookings[1].remittance, ["INV 7"]);
    }
}
