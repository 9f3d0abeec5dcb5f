//! pain.001.001.03 customer credit transfer initiation: the payout batch we send a bank, and a
//! reader for pain.001 files (ours, or another tool's) to check what a file asks the bank to do.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{WireAmount, message_name, text};
use crate::ParseError;
use crate::money::{Currency, Money, MoneyError};

/// The namespace of the version we write: the plain ISO one most banks accept (the German
/// `pain.001.003.03` variant has the same shape for a single-currency SEPA batch).
pub const NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03";

/// `Max35Text`: the longest message, payment information or end-to-end id the schema allows.
const ID_CHARS_MAX: usize = 35;
/// The longest unstructured remittance line (`Max140Text`).
pub const REMITTANCE_CHARS_MAX: usize = 140;
/// The placeholder some tools write when the caller gave no reference; a bank echoes it back in
/// every pain.002 and camt entry, so nothing could be matched to its payout.
const NOT_PROVIDED: &str = "NOTPROVIDED";

/// A batch of payouts from one account, in one currency, on one execution date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutBatch {
    /// `GrpHdr/MsgId`, unique per message we send (banks refuse a repeated one).
    pub message_id: String,
    /// `GrpHdr/CreDtTm`, written in UTC without an offset (as the python-sepaxml sample does).
    pub created_at: DateTime<Utc>,
    pub debtor: Debtor,
    /// `PmtInf/ReqdExctnDt`: the day the bank should execute the transfers.
    pub execution_date: NaiveDate,
    pub transfers: Vec<Transfer>,
}

/// The account the batch is paid from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Debtor {
    pub name: String,
    /// The account: an IBAN (`Id/IBAN`), or another account number (`Id/Othr/Id`).
    pub iban: String,
    pub bic: String,
}

/// One payout: `CdtTrfTxInf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Our reference for the payout; the bank returns it in pain.002 (`OrgnlEndToEndId`) and
    /// in camt entries (`Refs/EndToEndId`), which is how their reports find the payout.
    pub end_to_end_id: String,
    pub amount: Money,
    pub creditor_name: String,
    /// The creditor's account: an IBAN (`Id/IBAN`), or another account number (`Id/Othr/Id`)
    /// where the bank's scheme has no IBANs.
    pub creditor_iban: String,
    /// The creditor's bank; optional within SEPA, where the IBAN identifies it.
    pub creditor_bic: Option<String>,
    /// `RmtInf/Ustrd`: what the creditor sees on their statement, at most 140 characters.
    pub remittance: Option<String>,
}

/// Why a batch cannot become a pain.001 message.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the batch has no transfers")]
    Empty,
    #[error("{field} {value:?} is empty or longer than {ID_CHARS_MAX} characters")]
    InvalidId { field: &'static str, value: String },
    /// `NOTPROVIDED` is refused because it would make the bank's reports unmatchable.
    #[error("end-to-end id {0:?} is a placeholder, not a reference")]
    EndToEndIdNotProvided(String),
    #[error("end-to-end id {0:?} appears more than once")]
    DuplicateEndToEndId(String),
    /// One batch is one `PmtInf` debiting one account, so one currency.
    #[error("transfer {end_to_end_id:?} is in {found}, the batch is in {expected}")]
    MixedCurrency { end_to_end_id: String, expected: Currency, found: Currency },
    #[error("transfer {0:?} has an amount that is not positive")]
    AmountNotPositive(String),
    #[error("transfer {end_to_end_id:?} has a remittance of {chars} characters, at most 140")]
    RemittanceTooLong { end_to_end_id: String, chars: usize },
    #[error("the control sum overflowed: {0}")]
    ControlSum(#[source] MoneyError),
    #[error("could not write the XML: {0}")]
    Xml(#[from] quick_xml::SeError),
}

/// Checks the batch and writes it as a pain.001.001.03 document: a group header with the count
/// and exact control sum, one `PmtInf` (transfer, shared charges) and one `CdtTrfTxInf` per
/// transfer, amounts written at the currency's scale (`50.00 EUR`, `2700 JPY`).
///
/// # Errors
///
/// [`BuildError`] for a batch the bank would refuse or could not report back on: no transfers,
/// a missing, placeholder or repeated end-to-end id, mixed currencies, an amount that is not
/// positive, or a remittance longer than 140 characters.
pub fn build(batch: &PayoutBatch) -> Result<String, BuildError> {
    let first = batch.transfers.first().ok_or(BuildError::Empty)?;
    check_id("message id", &batch.message_id)?;
    let currency = first.amount.currency();
    let mut seen = HashSet::new();
    let mut control_sum = Money::zero(currency);
    for transfer in &batch.transfers {
        let id = &transfer.end_to_end_id;
        check_id("end-to-end id", id)?;
        if id.trim().eq_ignore_ascii_case(NOT_PROVIDED) {
            return Err(BuildError::EndToEndIdNotProvided(id.clone()));
        }
        if !seen.insert(id.as_str()) {
            return Err(BuildError::DuplicateEndToEndId(id.clone()));
        }
        if transfer.amount.currency() != currency {
            return Err(BuildError::MixedCurrency {
                end_to_end_id: id.clone(),
                expected: currency,
                found: transfer.amount.currency(),
            });
        }
        if !transfer.amount.is_positive() {
            return Err(BuildError::AmountNotPositive(id.clone()));
        }
        if let Some(remittance) = &transfer.remittance {
            let chars = remittance.chars().count();
            if chars > REMITTANCE_CHARS_MAX {
                return Err(BuildError::RemittanceTooLong { end_to_end_id: id.clone(), chars });
            }
        }
        control_sum = control_sum.checked_add(&transfer.amount).map_err(BuildError::ControlSum)?;
    }
    let count = batch.transfers.len().to_string();
    // CtrlSum is a plain decimal without currency; at the currency's scale it reads as the
    // amounts do.
    let control_sum = control_sum.amount().to_string();
    let document = Document {
        xmlns: NAMESPACE.to_owned(),
        initiation: Initiation {
            group_header: GroupHeader {
                msg_id: batch.message_id.clone(),
                cre_dt_tm: batch.created_at.format("%Y-%m-%dT%H:%M:%S").to_string(),
                nb_of_txs: count.clone(),
                ctrl_sum: Some(control_sum.clone()),
                initg_pty: Some(Name { nm: Some(batch.debtor.name.clone()) }),
            },
            payments: vec![PaymentInformation {
                pmt_inf_id: batch.message_id.clone(),
                pmt_mtd: "TRF".to_owned(),
                btch_bookg: Some(true),
                nb_of_txs: Some(count),
                ctrl_sum: Some(control_sum),
                reqd_exctn_dt: batch.execution_date.format("%Y-%m-%d").to_string(),
                dbtr: Name { nm: Some(batch.debtor.name.clone()) },
                dbtr_acct: Account::iban(&batch.debtor.iban),
                dbtr_agt: Some(Agent::bic(&batch.debtor.bic)),
                chrg_br: Some("SLEV".to_owned()),
                transfers: batch.transfers.iter().map(TransferInformation::from).collect(),
            }],
        },
    };
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut serializer = quick_xml::se::Serializer::new(&mut xml);
    serializer.indent(' ', 2);
    document.serialize(serializer)?;
    xml.push('\n');
    Ok(xml)
}

fn check_id(field: &'static str, value: &str) -> Result<(), BuildError> {
    let chars = value.chars().count();
    if value.trim().is_empty() || chars > ID_CHARS_MAX {
        return Err(BuildError::InvalidId { field, value: value.to_owned() });
    }
    Ok(())
}

/// What a pain.001 file asks the bank to do, as read back from its XML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitiationSummary {
    /// The message and version from the namespace (`pain.001.001.03`, `pain.001.003.03`).
    pub message_name: String,
    pub message_id: String,
    pub created_at: String,
    /// `GrpHdr/NbOfTxs`, checked against the transfers present.
    pub number_of_transactions: usize,
    /// `GrpHdr/CtrlSum`, checked against the sum of the amounts when present.
    pub control_sum: Option<Decimal>,
    pub payments: Vec<PaymentSummary>,
}

/// One `PmtInf` block of a pain.001 file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentSummary {
    pub payment_information_id: String,
    pub method: String,
    pub execution_date: String,
    pub debtor_name: Option<String>,
    pub debtor_iban: Option<String>,
    pub debtor_bic: Option<String>,
    pub charge_bearer: Option<String>,
    pub transfers: Vec<TransferSummary>,
}

/// One `CdtTrfTxInf` as read back; the end-to-end id is kept as written, placeholder included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferSummary {
    pub end_to_end_id: String,
    pub amount: Money,
    pub creditor_name: Option<String>,
    /// The creditor's IBAN, or its other account id (`Id/Othr/Id`) when it has no IBAN.
    pub creditor_iban: Option<String>,
    pub creditor_bic: Option<String>,
    pub remittance: Vec<String>,
}

/// Reads a pain.001 document (any `pain.001.*` version with the common shape).
///
/// # Errors
///
/// Malformed XML, another message type, an unreadable amount, or a header whose `NbOfTxs` or
/// `CtrlSum` disagrees with the transfers (a bank refuses such a file whole).
pub fn parse(xml: &str) -> Result<InitiationSummary, ParseError> {
    let document: Document = quick_xml::de::from_str(xml)?;
    let message_name = message_name(Some(document.xmlns.as_str()), "pain.001")?;
    let header = document.initiation.group_header;
    let mut payments = Vec::new();
    let mut total = Decimal::ZERO;
    let mut count = 0_usize;
    for payment in document.initiation.payments {
        let mut transfers = Vec::new();
        for transfer in payment.transfers {
            let amount = transfer.amt.instd_amt.to_money()?;
            total = total
                .checked_add(amount.amount())
                .ok_or_else(|| ParseError::Unexpected("the amounts overflow".to_owned()))?;
            transfers.push(TransferSummary {
                end_to_end_id: transfer.pmt_id.end_to_end_id.trim().to_owned(),
                amount,
                creditor_name: text(transfer.cdtr.nm.as_ref()),
                creditor_iban: text(transfer.cdtr_acct.id.iban.as_ref()).or_else(|| {
                    transfer.cdtr_acct.id.othr.as_ref().and_then(|other| text(Some(&other.id)))
                }),
                creditor_bic: transfer
                    .cdtr_agt
                    .and_then(|agent| text(agent.fin_instn_id.bic.as_ref())),
                remittance: transfer.rmt_inf.map(|remittance| remittance.ustrd).unwrap_or_default(),
            });
        }
        count += transfers.len();
        payments.push(PaymentSummary {
            payment_information_id: payment.pmt_inf_id,
            method: payment.pmt_mtd,
            execution_date: payment.reqd_exctn_dt,
            debtor_name: text(payment.dbtr.nm.as_ref()),
            debtor_iban: text(payment.dbtr_acct.id.iban.as_ref()).or_else(|| {
                payment.dbtr_acct.id.othr.as_ref().and_then(|other| text(Some(&other.id)))
            }),
            debtor_bic: payment.dbtr_agt.and_then(|agent| text(agent.fin_instn_id.bic.as_ref())),
            charge_bearer: payment.chrg_br,
            transfers,
        });
    }
    let number_of_transactions: usize = header.nb_of_txs.trim().parse().map_err(|_| {
        ParseError::Unexpected(format!("NbOfTxs {:?} is not a count", header.nb_of_txs))
    })?;
    if number_of_transactions != count {
        return Err(ParseError::Unexpected(format!(
            "NbOfTxs says {number_of_transactions}, the file holds {count} transfers"
        )));
    }
    let control_sum = header.ctrl_sum.as_deref().map(crate::wire::decimal).transpose()?;
    if let Some(control_sum) = control_sum
        && control_sum != total
    {
        return Err(ParseError::Unexpected(format!(
            "CtrlSum says {control_sum}, the amounts add up to {total}"
        )));
    }
    Ok(InitiationSummary {
        message_name,
        message_id: header.msg_id,
        created_at: header.cre_dt_tm,
        number_of_transactions,
        control_sum,
        payments,
    })
}

// The wire shape, written and read with the standard's element names, in schema order (the
// serializer writes fields in declaration order, and the schema is a sequence).

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename = "Document")]
struct Document {
    #[serde(rename = "@xmlns")]
    xmlns: String,
    #[serde(rename = "CstmrCdtTrfInitn")]
    initiation: Initiation,
}

#[derive(Debug, Serialize, Deserialize)]
struct Initiation {
    #[serde(rename = "GrpHdr")]
    group_header: GroupHeader,
    #[serde(rename = "PmtInf")]
    payments: Vec<PaymentInformation>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GroupHeader {
    msg_id: String,
    cre_dt_tm: String,
    nb_of_txs: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ctrl_sum: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    initg_pty: Option<Name>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PaymentInformation {
    pmt_inf_id: String,
    pmt_mtd: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    btch_bookg: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nb_of_txs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ctrl_sum: Option<String>,
    reqd_exctn_dt: String,
    dbtr: Name,
    dbtr_acct: Account,
    #[serde(skip_serializing_if = "Option::is_none")]
    dbtr_agt: Option<Agent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chrg_br: Option<String>,
    #[serde(rename = "CdtTrfTxInf")]
    transfers: Vec<TransferInformation>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransferInformation {
    pmt_id: PaymentId,
    amt: Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    cdtr_agt: Option<Agent>,
    cdtr: Name,
    cdtr_acct: Account,
    #[serde(skip_serializing_if = "Option::is_none")]
    rmt_inf: Option<Remittance>,
}

impl From<&Transfer> for TransferInformation {
    fn from(transfer: &Transfer) -> Self {
        Self {
            pmt_id: PaymentId { end_to_end_id: transfer.end_to_end_id.clone() },
            amt: Amount {
                instd_amt: WireAmount {
                    currency: transfer.amount.currency().code().to_owned(),
                    // Money holds its amount at the currency's scale, so this writes `50.00`.
                    value: transfer.amount.amount().to_string(),
                },
            },
            cdtr_agt: transfer.creditor_bic.as_deref().map(Agent::bic),
            cdtr: Name { nm: Some(transfer.creditor_name.clone()) },
            cdtr_acct: Account::iban(&transfer.creditor_iban),
            rmt_inf: transfer
                .remittance
                .as_ref()
                .map(|remittance| Remittance { ustrd: vec![remittance.clone()] }),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PaymentId {
    end_to_end_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Amount {
    instd_amt: WireAmount,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Name {
    #[serde(skip_serializing_if = "Option::is_none")]
    nm: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Account {
    id: AccountId,
}

impl Account {
    /// An IBAN as `Id/IBAN`; any other account number as `Id/Othr/Id` (the schema's IBAN
    /// pattern would make a bank refuse the file otherwise).
    fn iban(account: &str) -> Self {
        if super::bank::is_iban(account) {
            Self { id: AccountId { iban: Some(account.to_owned()), othr: None } }
        } else {
            Self {
                id: AccountId { iban: None, othr: Some(OtherAccount { id: account.to_owned() }) },
            }
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AccountId {
    #[serde(rename = "IBAN", skip_serializing_if = "Option::is_none")]
    iban: Option<String>,
    #[serde(rename = "Othr", skip_serializing_if = "Option::is_none")]
    othr: Option<OtherAccount>,
}

#[derive(Debug, Serialize, Deserialize)]
struct OtherAccount {
    #[serde(rename = "Id")]
    id: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Agent {
    fin_instn_id: FinancialInstitution,
}

impl Agent {
    fn bic(bic: &str) -> Self {
        Self { fin_instn_id: FinancialInstitution { bic: Some(bic.to_owned()) } }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct FinancialInstitution {
    #[serde(rename = "BIC", skip_serializing_if = "Option::is_none")]
    bic: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Remittance {
    #[serde(default)]
    ustrd: Vec<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn eur(text: &str) -> Money {
        Money::parse(Currency::from_code("EUR").unwrap(), text).unwrap()
    }

    fn transfer(id: &str, amount: Money) -> Transfer {
        Transfer {
            end_to_end_id: id.to_owned(),
            amount,
            creditor_name: "Creditor".to_owned(),
            creditor_iban: "NL50BANK1234567890".to_owned(),
            creditor_bic: None,
            remittance: Some("Invoice 1".to_owned()),
        }
    }

    fn batch(transfers: Vec<Transfer>) -> PayoutBatch {
        PayoutBatch {
            message_id: "MSG-1".to_owned(),
            created_at: DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z").unwrap().to_utc(),
            debtor: Debtor {
                name: "Hazina".to_owned(),
                iban: "NL50BANK1234567890".to_owned(),
                bic: "BANKNL2A".to_owned(),
            },
            execution_date: NaiveDate::from_ymd_opt(2024, 5, 2).unwrap(),
            transfers,
        }
    }

    #[test]
    fn refuses_mixed_currencies() {
        let kes = Money::parse(Currency::from_code("KES").unwrap(), "5").unwrap();
        let error = build(&batch(vec![transfer("A", eur("1")), transfer("B", kes)])).unwrap_err();
        assert!(
            matches!(&error, BuildError::MixedCurrency { end_to_end_id, .. } if end_to_end_id == "B"),
            "{error}"
        );
    }

    #[test]
    fn refuses_duplicate_and_placeholder_end_to_end_ids() {
        let error = build(&batch(vec![transfer("A", eur("1")), transfer("A", eur("2"))]));
        assert!(matches!(error, Err(BuildError::DuplicateEndToEndId(id)) if id == "A"));
        let error = build(&batch(vec![transfer("NOTPROVIDED", eur("1"))]));
        assert!(matches!(error, Err(BuildError::EndToEndIdNotProvided(_))));
        let error = build(&batch(vec![transfer(&"X".repeat(36), eur("1"))]));
        assert!(matches!(error, Err(BuildError::InvalidId { field: "end-to-end id", .. })));
    }

    #[test]
    fn refuses_a_remittance_over_140_characters() {
        let mut long = transfer("A", eur("1"));
        // 141 characters but more bytes: the limit counts characters.
        long.remittance = Some("é".repeat(141));
        let error = build(&batch(vec![long.clone()])).unwrap_err();
        assert!(matches!(error, BuildError::RemittanceTooLong { chars: 141, .. }), "{error}");
        long.remittance = Some("é".repeat(140));
        assert!(build(&batch(vec![long])).is_ok());
    }

    #[test]
    fn refuses_empty_batches_and_non_positive_amounts() {
        assert!(matches!(build(&batch(vec![])), Err(BuildError::Empty)));
        let error = build(&batch(vec![transfer("A", eur("0"))]));
        assert!(matches!(error, Err(BuildError::AmountNotPositive(_))));
    }

    #[test]
    fn writes_amounts_at_the_currency_scale_and_an_exact_control_sum() {
        let xml = build(&batch(vec![
            transfer("A", eur("10.1")),
            transfer("B", eur("0.2")),
            transfer("C", eur("50")),
        ]))
        .unwrap();
        assert!(xml.contains(r#"<InstdAmt Ccy="EUR">10.10</InstdAmt>"#), "{xml}");
        assert!(xml.contains(r#"<InstdAmt Ccy="EUR">50.00</InstdAmt>"#), "{xml}");
        assert!(xml.contains("<CtrlSum>60.30</CtrlSum>"), "{xml}");
        assert!(xml.contains("<CreDtTm>2024-05-01T10:00:00</CreDtTm>"), "{xml}");
        assert!(xml.contains(&format!(r#"<Document xmlns="{NAMESPACE}">"#)), "{xml}");
    }
}
