//! pain.002 customer payment status report: the bank's answer to a pain.001, per group and per
//! transaction, turned into [`StatusReport`]s keyed by our end-to-end id.

use serde::Deserialize;

use super::{CodeOrProprietary, WireAmount, message_name, text};
use crate::money::Money;
use crate::{ParseError, Status, StatusReport};

/// A pain.002 as read: the original message's group status and each transaction's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentStatusReport {
    /// The message and version from the namespace (`pain.002.001.10`).
    pub message_name: String,
    /// The report's own `GrpHdr/MsgId`.
    pub message_id: String,
    /// `OrgnlMsgId`: the `MsgId` of the pain.001 this answers.
    pub original_message_id: String,
    /// `OrgnlMsgNmId` (`pain.001.001.09`).
    pub original_message_name: Option<String>,
    /// `GrpSts`: for the whole original message; `PART` means "see each transaction".
    pub group_status: Option<String>,
    /// Reasons given for the group as a whole.
    pub group_reasons: Vec<StatusReason>,
    pub transactions: Vec<TransactionStatus>,
}

/// One `TxInfAndSts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionStatus {
    /// `OrgnlEndToEndId`: our reference from the pain.001.
    pub original_end_to_end_id: Option<String>,
    pub original_instruction_id: Option<String>,
    /// `TxSts` (`ACSC`, `ACSP`, `RJCT`, …); absent when the group status speaks for it.
    pub status: Option<String>,
    pub reasons: Vec<StatusReason>,
    /// The amount from `OrgnlTxRef` (`IntrBkSttlmAmt`, or `Amt/InstdAmt`), when echoed.
    pub amount: Option<Money>,
}

/// One `StsRsnInf`: an ISO external reason code (`<Cd>AM04</Cd>`) or a scheme's own
/// (`<Prtry>EA178</Prtry>`), with its free-text explanations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusReason {
    pub code: Option<String>,
    /// Whether the code came as `Prtry` rather than `Cd`.
    pub proprietary: bool,
    pub additional_information: Vec<String>,
}

impl StatusReason {
    /// Whether the code has the shape of an ISO external status reason code (`AM04`, `AC01`):
    /// given as `Cd`, or as `Prtry` by schemes that put ISO codes there (the AZIPS sample).
    pub fn is_iso_shaped(&self) -> bool {
        let Some(code) = &self.code else { return false };
        let bytes = code.as_bytes();
        !self.proprietary
            || (bytes.len() == 4
                && bytes[..2].iter().all(u8::is_ascii_uppercase)
                && bytes[2..].iter().all(u8::is_ascii_digit))
    }
}

/// Our status for a pain.002 status code (`GrpSts` or `TxSts`).
///
/// Only settlement is success: `ACSC` (settlement on the debtor's account completed) and `ACCC`
/// (settlement on the creditor's account completed) say the money moved. Every acceptance
/// short of that — `ACTC` (technical checks passed), `ACCP`, `ACSP` (settlement in process),
/// `ACWC`, `ACWP`, `PDNG`, `RCVD`, `PART` — is [`Status::Pending`]: for a payout we debit, the
/// bank can still refuse it at settlement (funds, sanctions, the creditor's bank), and the
/// camt.054 notification or camt.053 statement that books it is the confirmation. `RJCT` is
/// an explicit refusal and `CANC` a completed cancellation, so both are [`Status::Failed`];
/// anything unknown stays pending, to be resolved by the next report.
pub fn status(code: &str) -> Status {
    match code.trim() {
        "ACSC" | "ACCC" => Status::Succeeded,
        "RJCT" | "CANC" => Status::Failed,
        _ => Status::Pending,
    }
}

/// Reads a pain.002 status report (any `pain.002.*` version with the common shape).
///
/// # Errors
///
/// Malformed XML, another message type, or an unreadable amount.
pub fn parse(xml: &str) -> Result<PaymentStatusReport, ParseError> {
    let document: Document = quick_xml::de::from_str(xml)?;
    let message_name = message_name(document.xmlns.as_deref(), "pain.002")?;
    let report = document.report;
    let group = report.orgnl_grp_inf_and_sts;
    let mut transactions = Vec::new();
    for payment in report.orgnl_pmt_inf_and_sts {
        for transaction in payment.tx_inf_and_sts {
            let amount = match transaction.orgnl_tx_ref {
                Some(reference) => match (reference.intr_bk_sttlm_amt, reference.amt) {
                    (Some(amount), _) | (None, Some(InstructedAmount { instd_amt: amount })) => {
                        Some(amount.to_money()?)
                    }
                    (None, None) => None,
                },
                None => None,
            };
            transactions.push(TransactionStatus {
                original_end_to_end_id: text(transaction.orgnl_end_to_end_id.as_ref()),
                original_instruction_id: text(transaction.orgnl_instr_id.as_ref()),
                status: text(transaction.tx_sts.as_ref()),
                reasons: transaction.sts_rsn_inf.into_iter().map(StatusReason::from).collect(),
                amount,
            });
        }
    }
    Ok(PaymentStatusReport {
        message_name,
        message_id: report.grp_hdr.msg_id.trim().to_owned(),
        original_message_id: group.orgnl_msg_id.trim().to_owned(),
        original_message_name: text(group.orgnl_msg_nm_id.as_ref()),
        group_status: text(group.grp_sts.as_ref()),
        group_reasons: group.sts_rsn_inf.into_iter().map(StatusReason::from).collect(),
        transactions,
    })
}

impl PaymentStatusReport {
    /// One [`StatusReport`] per transaction, `our_reference` being its `OrgnlEndToEndId` and
    /// `request_reference` the original message id.
    ///
    /// A transaction without its own `TxSts` takes the group status, except `PART` (which only
    /// says the transactions differ, so it leaves them pending). A report without transactions
    /// yields one report for the whole original message, with no `our_reference`: the caller
    /// applies it to every payout of that message.
    pub fn status_reports(&self) -> Vec<StatusReport> {
        let group_status =
            self.group_status.as_deref().filter(|status| *status != "PART").unwrap_or_default();
        if self.transactions.is_empty() {
            let mut report = StatusReport::new(status(group_status));
            report.request_reference = Some(self.original_message_id.clone());
            report.code = Some(group_status.to_owned()).filter(|code| !code.is_empty());
            fill_reasons(&mut report, &self.group_reasons);
            return vec![report];
        }
        self.transactions
            .iter()
            .map(|transaction| {
                let code = transaction.status.as_deref().unwrap_or(group_status);
                let mut report = StatusReport::new(status(code));
                report.our_reference.clone_from(&transaction.original_end_to_end_id);
                report.request_reference = Some(self.original_message_id.clone());
                report.amount = transaction.amount;
                report.code = Some(code.to_owned()).filter(|code| !code.is_empty());
                fill_reasons(&mut report, &transaction.reasons);
                report
            })
            .collect()
    }
}

/// Puts the reasons on a report: the code becomes the first ISO-shaped reason (`AM04`, the one
/// a caller can act on) or else the first reason, and the description keeps every reason
/// verbatim, chosen one first (`AM04: Insufficient funds; EA178: RTP was rejected by …`).
/// Without reasons, the status code stays as the code.
fn fill_reasons(report: &mut StatusReport, reasons: &[StatusReason]) {
    let chosen = reasons.iter().position(StatusReason::is_iso_shaped).unwrap_or(0);
    let Some(first) = reasons.get(chosen) else { return };
    if first.code.is_some() {
        report.code.clone_from(&first.code);
    }
    let ordered = std::iter::once(first)
        .chain(reasons.iter().enumerate().filter(|(i, _)| *i != chosen).map(|(_, r)| r));
    let parts: Vec<String> = ordered
        .map(|reason| {
            let code = reason.code.as_deref().unwrap_or("-");
            if reason.additional_information.is_empty() {
                code.to_owned()
            } else {
                format!("{code}: {}", reason.additional_information.join(" "))
            }
        })
        .collect();
    report.description = Some(parts.join("; "));
}

impl From<WireReason> for StatusReason {
    fn from(reason: WireReason) -> Self {
        let code = reason.rsn.unwrap_or_default();
        Self {
            proprietary: code.cd.is_none() && code.prtry.is_some(),
            code: code.code(),
            additional_information: reason
                .addtl_inf
                .iter()
                .filter_map(|line| text(Some(line)))
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Document {
    #[serde(rename = "@xmlns")]
    xmlns: Option<String>,
    #[serde(rename = "CstmrPmtStsRpt")]
    report: WireReport,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireReport {
    grp_hdr: GroupHeader,
    orgnl_grp_inf_and_sts: OriginalGroup,
    #[serde(default)]
    orgnl_pmt_inf_and_sts: Vec<OriginalPayment>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GroupHeader {
    msg_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OriginalGroup {
    orgnl_msg_id: String,
    orgnl_msg_nm_id: Option<String>,
    grp_sts: Option<String>,
    #[serde(default)]
    sts_rsn_inf: Vec<WireReason>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OriginalPayment {
    #[serde(default)]
    tx_inf_and_sts: Vec<WireTransaction>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireTransaction {
    orgnl_instr_id: Option<String>,
    orgnl_end_to_end_id: Option<String>,
    tx_sts: Option<String>,
    #[serde(default)]
    sts_rsn_inf: Vec<WireReason>,
    orgnl_tx_ref: Option<OriginalTransactionReference>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireReason {
    rsn: Option<CodeOrProprietary>,
    #[serde(default)]
    addtl_inf: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OriginalTransactionReference {
    intr_bk_sttlm_amt: Option<WireAmount>,
    amt: Option<InstructedAmount>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InstructedAmount {
    instd_amt: WireAmount,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn only_settlement_succeeds_and_only_refusal_fails() {
        for code in ["ACSC", "ACCC"] {
            assert_eq!(status(code), Status::Succeeded, "{code}");
        }
        for code in ["RJCT", "CANC"] {
            assert_eq!(status(code), Status::Failed, "{code}");
        }
        for code in ["ACTC", "ACCP", "ACSP", "ACWC", "ACWP", "PDNG", "RCVD", "PART", "XXXX", ""] {
            assert_eq!(status(code), Status::Pending, "{code}");
        }
    }

    fn report(group: &str, transactions: &str) -> PaymentStatusReport {
        let xml = format!(
            r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>
            <GrpHdr><MsgId>R1</MsgId></GrpHdr>
            <OrgnlGrpInfAndSts><OrgnlMsgId>M1</OrgnlMsgId>{group}</OrgnlGrpInfAndSts>
            <OrgnlPmtInfAndSts>{transactions}</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>"#
        );
        parse(&xml).unwrap()
    }

    #[test]
    fn part_group_defers_to_each_transaction() {
        let parsed = report(
            "<GrpSts>PART</GrpSts>",
            "<TxInfAndSts><OrgnlEndToEndId>A</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts>
             <TxInfAndSts><OrgnlEndToEndId>B</OrgnlEndToEndId><TxSts>RJCT</TxSts>
               <StsRsnInf><Rsn><Cd>AC04</Cd></Rsn></StsRsnInf></TxInfAndSts>
             <TxInfAndSts><OrgnlEndToEndId>C</OrgnlEndToEndId></TxInfAndSts>",
        );
        let reports = parsed.status_reports();
        let summary: Vec<_> = reports
            .iter()
            .map(|r| (r.our_reference.as_deref().unwrap(), r.status, r.code.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("A", Status::Succeeded, Some("ACSC")),
                ("B", Status::Failed, Some("AC04")),
                ("C", Status::Pending, None),
            ]
        );
        assert!(reports.iter().all(|r| r.request_reference.as_deref() == Some("M1")));
    }

    #[test]
    fn group_rejection_without_transactions_reports_the_message() {
        let parsed = report(
            "<GrpSts>RJCT</GrpSts><StsRsnInf><Rsn><Cd>FF01</Cd></Rsn>
             <AddtlInf>Invalid file format</AddtlInf></StsRsnInf>",
            "",
        );
        let reports = parsed.status_reports();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].status, Status::Failed);
        assert_eq!(reports[0].our_reference, None);
        assert_eq!(reports[0].request_reference.as_deref(), Some("M1"));
        assert_eq!(reports[0].code.as_deref(), Some("FF01"));
        assert_eq!(reports[0].description.as_deref(), Some("FF01: Invalid file format"));
    }

    #[test]
    fn another_message_is_refused() {
        let error = parse(
            r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"><CstmrPmtStsRpt>
            <GrpHdr><MsgId>R1</MsgId></GrpHdr><OrgnlGrpInfAndSts><OrgnlMsgId>M1</OrgnlMsgId>
            </OrgnlGrpInfAndSts></CstmrPmtStsRpt></Document>"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("is not a pain.002 message"), "{error}");
    }
}
