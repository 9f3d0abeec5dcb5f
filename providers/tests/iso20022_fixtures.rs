#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every ISO 20022 sample in `fixtures/iso20022/` read through the adapter, with values from
//! the file asserted; a test fails when a new sample arrives without a test naming it.

mod common;

use chrono::{DateTime, NaiveDate};
use hazina_providers::iso20022::camt::{
    self, BalanceCheck, EntryDate, EntryStatus, MessageKind, Side,
};
use hazina_providers::iso20022::{pain001, pain002};
use hazina_providers::money::{Currency, Money};
use hazina_providers::{Status, StatusReport};

/// Every file name a test below reads; the folder listing is checked against it.
const COVERED: &[&str] = &[
    "azips_pain.002.001.10_accepted_ACSP.xml",
    "azips_pain.002.001.10_reject_AM04.xml",
    "genkgo_camt_camt052.v6.xml",
    "genkgo_camt_camt053.v2.minimal.xml",
    "genkgo_camt_camt053.v2.multi.statement.xml",
    "genkgo_camt_camt053.v8.xml",
    "genkgo_camt_camt054.v2.xml",
    "python_sepaxml_pain.001.003.03_SAMPLE_RESULT.xml",
];

fn fixture(name: &str) -> String {
    String::from_utf8(common::read("iso20022", COVERED, name)).unwrap()
}

fn money(code: &str, text: &str) -> Money {
    Money::parse(Currency::from_code(code).unwrap(), text).unwrap()
}

fn date(text: &str) -> EntryDate {
    EntryDate::Date(NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap())
}

#[test]
fn every_fixture_is_covered() {
    common::assert_every_file_covered("iso20022", COVERED);
}

// pain.001

#[test]
fn python_sepaxml_pain001_reads_back() {
    let parsed =
        pain001::parse(&fixture("python_sepaxml_pain.001.003.03_SAMPLE_RESULT.xml")).unwrap();
    assert_eq!(parsed.message_name, "pain.001.003.03");
    assert_eq!(parsed.message_id, "20180724040432-d24ce3b3e284");
    assert_eq!(parsed.created_at, "2018-07-24T16:04:32");
    assert_eq!(parsed.number_of_transactions, 2);
    assert_eq!(parsed.control_sum, Some("60.12".parse().unwrap()));
    assert_eq!(parsed.payments.len(), 1);
    let payment = &parsed.payments[0];
    assert_eq!(payment.payment_information_id, "TestCreditor-90102652f82a");
    assert_eq!(payment.method, "TRF");
    assert_eq!(payment.execution_date, "2018-07-24");
    assert_eq!(payment.debtor_iban.as_deref(), Some("NL50BANK1234567890"));
    assert_eq!(payment.debtor_bic.as_deref(), Some("BANKNL2A"));
    assert_eq!(payment.charge_bearer.as_deref(), Some("SLEV"));
    let transfers: Vec<_> = payment
        .transfers
        .iter()
        .map(|t| (t.end_to_end_id.as_str(), t.amount, t.creditor_name.as_deref().unwrap()))
        .collect();
    assert_eq!(
        transfers,
        [
            ("NOTPROVIDED", money("EUR", "10.12"), "Test von Testenstein"),
            ("NOTPROVIDED", money("EUR", "50.00"), "Test du Test"),
        ]
    );
    assert_eq!(payment.transfers[1].remittance, ["Test transaction2"]);
}

/// Our builder writes the same shape as the python-sepaxml sample (with real end-to-end ids,
/// which the sample lacks) and reads back to what was built.
#[test]
fn pain001_round_trip_matches_the_sample_shape() {
    let sample =
        pain001::parse(&fixture("python_sepaxml_pain.001.003.03_SAMPLE_RESULT.xml")).unwrap();
    let sample_payment = &sample.payments[0];
    let batch = pain001::PayoutBatch {
        message_id: sample.message_id.clone(),
        created_at: DateTime::parse_from_rfc3339("2018-07-24T16:04:32Z").unwrap().to_utc(),
        debtor: pain001::Debtor {
            name: "TestCreditor".to_owned(),
            iban: "NL50BANK1234567890".to_owned(),
            bic: "BANKNL2A".to_owned(),
        },
        execution_date: NaiveDate::from_ymd_opt(2018, 7, 24).unwrap(),
        transfers: sample_payment
            .transfers
            .iter()
            .enumerate()
            .map(|(i, t)| pain001::Transfer {
                end_to_end_id: format!("PAYOUT-{i}"),
                amount: t.amount,
                creditor_name: t.creditor_name.clone().unwrap(),
                creditor_iban: t.creditor_iban.clone().unwrap(),
                creditor_bic: t.creditor_bic.clone(),
                remittance: t.remittance.first().cloned(),
            })
            .collect(),
    };
    let xml = pain001::build(&batch).unwrap();
    let ours = pain001::parse(&xml).unwrap();
    assert_eq!(ours.message_name, "pain.001.001.03");
    assert_eq!(ours.message_id, sample.message_id);
    assert_eq!(ours.created_at, sample.created_at);
    assert_eq!(ours.number_of_transactions, sample.number_of_transactions);
    assert_eq!(ours.control_sum, sample.control_sum);
    let payment = &ours.payments[0];
    assert_eq!(payment.method, "TRF");
    assert_eq!(payment.charge_bearer.as_deref(), Some("SLEV"));
    assert_eq!(payment.execution_date, sample_payment.execution_date);
    assert_eq!(payment.debtor_iban, sample_payment.debtor_iban);
    assert_eq!(payment.debtor_bic, sample_payment.debtor_bic);
    for (i, (ours, theirs)) in payment.transfers.iter().zip(&sample_payment.transfers).enumerate() {
        assert_eq!(ours.end_to_end_id, format!("PAYOUT-{i}"));
        assert_eq!(
            (ours.amount, &ours.creditor_name, &ours.creditor_iban, &ours.creditor_bic),
            (theirs.amount, &theirs.creditor_name, &theirs.creditor_iban, &theirs.creditor_bic)
        );
        assert_eq!(ours.remittance, theirs.remittance);
    }
    assert_eq!(payment.transfers.len(), 2);
}

// pain.002

#[test]
fn azips_pain002_accepted_is_pending() {
    let parsed = pain002::parse(&fixture("azips_pain.002.001.10_accepted_ACSP.xml")).unwrap();
    assert_eq!(parsed.message_name, "pain.002.001.10");
    assert_eq!(parsed.message_id, "Q9373362/p92");
    assert_eq!(parsed.original_message_id, "NABZAZ2CAMEP230113138130000259785");
    assert_eq!(parsed.original_message_name.as_deref(), Some("pain.001.001.09"));
    assert_eq!(parsed.group_status.as_deref(), Some("ACSP"));
    assert_eq!(parsed.transactions.len(), 1);
    assert_eq!(parsed.transactions[0].original_instruction_id.as_deref(), Some("PAYMFROMMERCHANT"));
    let reports = parsed.status_reports();
    let mut expected = StatusReport::new(Status::Pending);
    expected.our_reference = Some("PAYM0001".to_owned());
    expected.request_reference = Some("NABZAZ2CAMEP230113138130000259785".to_owned());
    expected.code = Some("ACSP".to_owned());
    expected.amount = Some(money("AZN", "0.46"));
    assert_eq!(reports, [expected]);
}

#[test]
fn azips_pain002_reject_is_failed_with_am04() {
    let parsed = pain002::parse(&fixture("azips_pain.002.001.10_reject_AM04.xml")).unwrap();
    assert_eq!(parsed.group_status.as_deref(), Some("RJCT"));
    let transaction = &parsed.transactions[0];
    assert_eq!(transaction.status.as_deref(), Some("RJCT"));
    let codes: Vec<_> = transaction.reasons.iter().map(|r| r.code.as_deref().unwrap()).collect();
    assert_eq!(codes, ["EA178", "AM04"]);
    assert!(transaction.reasons.iter().all(|r| r.proprietary));
    let reports = parsed.status_reports();
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.our_reference.as_deref(), Some("PAYM0001"));
    assert_eq!(report.code.as_deref(), Some("AM04"));
    assert_eq!(
        report.description.as_deref(),
        Some("AM04: Insufficient funds; EA178: RTP was rejected by authorizer")
    );
    assert_eq!(report.amount, Some(money("AZN", "8.00")));
}

// camt

#[test]
fn genkgo_camt053_v2_minimal() {
    let document = camt::parse(&fixture("genkgo_camt_camt053.v2.minimal.xml")).unwrap();
    assert_eq!(document.kind, MessageKind::Statement);
    assert_eq!(document.message_name, "camt.053.001.02");
    assert_eq!(document.message_id, "CAMT053RIB000000000001");
    let [statement] = document.statements.as_slice() else { panic!("one statement") };
    assert_eq!(statement.id, "253EURNL26VAYB8060476890");
    assert_eq!(statement.account.iban.as_deref(), Some("NL26VAYB8060476890"));
    assert_eq!(statement.account.currency, Some(Currency::from_code("EUR").unwrap()));
    let balances: Vec<_> =
        statement.balances.iter().map(|b| (b.code.as_str(), b.amount, b.side)).collect();
    assert_eq!(
        balances,
        [
            ("OPBD", money("EUR", "18.15"), Side::Credit),
            ("CLBD", money("SEK", "27.00"), Side::Debit),
            ("OPAV", money("CHF", "35.00"), Side::Credit),
            ("CLAV", money("JPY", "2700"), Side::Debit),
        ]
    );
    assert_eq!(statement.balances[0].date, Some(date("2014-12-30")));
    let [entry] = statement.entries.as_slice() else { panic!("one entry") };
    assert_eq!(entry.amount, money("EUR", "8.85"));
    assert_eq!(entry.side, Side::Credit);
    assert!(!entry.reversal);
    assert_eq!(entry.status, EntryStatus::Booked);
    assert_eq!(entry.booking_date, Some(date("2014-12-31")));
    assert_eq!(entry.value_date, Some(date("2015-01-02")));
    let [transaction] = entry.transactions.as_slice() else { panic!("one transaction") };
    assert_eq!(transaction.end_to_end_id, None);
    assert_eq!(transaction.creditor_references, ["4654654654654654"]);
    assert_eq!(transaction.debtor_name.as_deref(), Some("NAME NAME"));
    assert_eq!(transaction.debtor_iban.as_deref(), Some("NL56AGDH9619008421"));
    assert_eq!(transaction.creditor_name.as_deref(), Some("Company Name"));
    // The sample's closing balance is in SEK: the check declines rather than guessing.
    assert!(
        matches!(statement.check_balances(), BalanceCheck::Unchecked(reason) if reason.contains("SEK"))
    );
    let mut expected = StatusReport::new(Status::Succeeded);
    expected.amount = Some(money("EUR", "8.85"));
    assert_eq!(statement.status_reports(), [expected]);
}

#[test]
fn genkgo_camt053_v2_multi_statement_balances() {
    let xml = fixture("genkgo_camt_camt053.v2.multi.statement.xml");
    let document = camt::parse(&xml).unwrap();
    let ids: Vec<_> = document.statements.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["253EURNL26VAYB8060476890", "254EURNL26VAYB8060476890"]);
    let [first, second] = document.statements.as_slice() else { panic!("two statements") };
    // 18.15 + 8.85 = 27.00, and 27.00 - 7.00 = 20.00.
    assert_eq!(first.check_balances(), BalanceCheck::Consistent);
    assert_eq!(second.check_balances(), BalanceCheck::Consistent);
    assert_eq!(second.entries[0].side, Side::Debit);
    assert_eq!(second.entries[0].amount, money("EUR", "7.00"));
    let references: Vec<_> = document
        .statements
        .iter()
        .flat_map(camt::Statement::status_reports)
        .map(|r| (r.status, r.our_reference.unwrap(), r.amount.unwrap()))
        .collect();
    assert_eq!(
        references,
        [
            (Status::Succeeded, "000000001".to_owned(), money("EUR", "8.85")),
            (Status::Succeeded, "000000002".to_owned(), money("EUR", "7.00")),
        ]
    );
    let lines: Vec<_> = document
        .statements
        .iter()
        .flat_map(|s| &s.entries)
        .flat_map(|e| &e.transactions)
        .flat_map(|t| t.remittance_lines.clone())
        .collect();
    assert_eq!(lines, ["Transaction Description 1", "Transaction Description 2"]);

    // A closing balance one cent off is reported as a discrepancy, not a panic.
    let off = xml.replacen("<Amt Ccy=\"EUR\">20.00</Amt>", "<Amt Ccy=\"EUR\">20.01</Amt>", 1);
    let document = camt::parse(&off).unwrap();
    assert_eq!(
        document.statements[1].check_balances(),
        BalanceCheck::Discrepancy {
            computed_closing: money("EUR", "20.00"),
            stated_closing: money("EUR", "20.01"),
            difference: money("EUR", "0.01"),
        }
    );

    // A reversal keeps its references and is reported as failed, for the caller to match.
    let reversed = xml.replacen("<RvslInd>false</RvslInd>", "<RvslInd>true</RvslInd>", 1);
    let reports = camt::parse(&reversed).unwrap().statements[0].status_reports();
    assert_eq!(reports[0].status, Status::Failed);
    assert_eq!(reports[0].code.as_deref(), Some("RvslInd"));
    assert_eq!(reports[0].our_reference.as_deref(), Some("000000001"));
}

#[test]
fn genkgo_camt053_v8() {
    let document = camt::parse(&fixture("genkgo_camt_camt053.v8.xml")).unwrap();
    assert_eq!(document.message_name, "camt.053.001.08");
    let [statement] = document.statements.as_slice() else { panic!("one statement") };
    assert_eq!(statement.account.iban, None);
    assert_eq!(statement.account.other_id.as_deref(), Some("NL26VAYB8060476890"));
    assert_eq!(statement.account.currency, None);
    assert_eq!(statement.balances.len(), 4);
    let [entry] = statement.entries.as_slice() else { panic!("one entry") };
    assert_eq!(entry.status, EntryStatus::Booked);
    assert_eq!(
        entry.booking_date,
        Some(EntryDate::DateTime(
            DateTime::parse_from_rfc3339("2014-12-31T13:15:00+01:00").unwrap()
        ))
    );
    assert_eq!(entry.account_servicer_reference.as_deref(), Some("AAAASESS-FP-CN_98765/01"));
    let [transaction] = entry.transactions.as_slice() else { panic!("one transaction") };
    assert_eq!(transaction.end_to_end_id.as_deref(), Some("MUELL/FINP/RA12345"));
    assert_eq!(transaction.amount, Some(money("SEK", "0")));
    assert_eq!(transaction.side, Some(Side::Credit));
    // v08 nests the party under `Pty`.
    assert_eq!(transaction.debtor_name.as_deref(), Some("NAME NAME"));
    assert_eq!(transaction.creditor_name.as_deref(), Some("Company Name"));
    assert_eq!(transaction.creditor_references, ["4654654654654654"]);
    let reports = statement.status_reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].status, Status::Succeeded);
    assert_eq!(reports[0].our_reference.as_deref(), Some("MUELL/FINP/RA12345"));
    assert_eq!(reports[0].receipt.as_deref(), Some("AAAASESS-FP-CN_98765/01"));
}

#[test]
fn genkgo_camt054_v2() {
    let document = camt::parse(&fixture("genkgo_camt_camt054.v2.xml")).unwrap();
    assert_eq!(document.kind, MessageKind::Notification);
    assert_eq!(document.message_name, "camt.054.001.02");
    assert_eq!(document.message_id, "AAAASESS-FP-ACCR001");
    let [notification] = document.statements.as_slice() else { panic!("one notification") };
    assert_eq!(notification.account.other_id.as_deref(), Some("CH2801234000123456789"));
    assert!(notification.balances.is_empty());
    assert!(matches!(notification.check_balances(), BalanceCheck::Unchecked(_)));
    let [entry] = notification.entries.as_slice() else { panic!("one entry") };
    assert_eq!(entry.amount, money("SEK", "200000"));
    assert_eq!(entry.side, Side::Debit);
    assert_eq!(entry.value_date, Some(date("2007-10-18")));
    assert_eq!(entry.transactions.len(), 3);
    let remittance: Vec<_> = entry
        .transactions
        .iter()
        .map(|t| (t.remittance_lines.len(), t.creditor_references.clone()))
        .collect();
    assert_eq!(
        remittance,
        [
            (1, vec!["ISR ref number V1".to_owned()]),
            (0, vec!["ISR ref number V2".to_owned()]),
            (2, vec!["Ref number V3 block 1".to_owned(), "Ref number V3 block 2".to_owned()]),
        ]
    );
    assert_eq!(
        entry.transactions[2].remittance_lines,
        [
            "Unstructured Remittance Information V3 block 1",
            "Unstructured Remittance Information V3 block 2"
        ]
    );
    assert_eq!(entry.transactions[0].debtor_name.as_deref(), Some("MUELLER"));
    // Three transactions in one batch booking, none with its own amount: the entry's total is
    // not theirs to claim.
    let reports = notification.status_reports();
    assert_eq!(reports.len(), 3);
    assert!(reports.iter().all(|r| r.status == Status::Succeeded
        && r.our_reference.as_deref() == Some("MUELL/FINP/RA12345")
        && r.receipt.as_deref() == Some("AAAASESS-FP-ACCR001")
        && r.amount.is_none()));
}

/// camt.052 is parsed like a statement: its one entry is still pending, so it yields no
/// status report and its lone interim balance (`ITBD`) allows no check.
#[test]
fn genkgo_camt052_v6_pending_entry() {
    let document = camt::parse(&fixture("genkgo_camt_camt052.v6.xml")).unwrap();
    assert_eq!(document.kind, MessageKind::Report);
    assert_eq!(document.message_name, "camt.052.001.06");
    let [report] = document.statements.as_slice() else { panic!("one report") };
    assert_eq!(report.account.iban.as_deref(), Some("CH2801234000123456789"));
    assert_eq!(report.balances[0].code, "ITBD");
    assert_eq!(report.balances[0].amount, money("CHF", "10022.15"));
    let [entry] = report.entries.as_slice() else { panic!("one entry") };
    assert_eq!(entry.status, EntryStatus::Pending);
    assert_eq!(entry.account_servicer_reference.as_deref(), Some("ACSR160614165200001"));
    let transaction = &entry.transactions[0];
    assert_eq!(transaction.end_to_end_id.as_deref(), Some("UXC06140000015PI00001EE00001"));
    assert_eq!(transaction.instruction_id.as_deref(), Some("UXC06140000015PI00001II00001"));
    assert_eq!(transaction.amount, Some(money("USD", "4.1")));
    assert_eq!(transaction.debtor_iban.as_deref(), Some("CH2401234004141414141"));
    assert_eq!(transaction.remittance_lines, ["Example Remittance - 6 - V1"]);
    assert!(report.status_reports().is_empty());
    assert!(matches!(report.check_balances(), BalanceCheck::Unchecked(_)));
}

#[test]
fn a_camt_reader_refuses_a_pain002() {
    let error = camt::parse(&fixture("azips_pain.002.001.10_accepted_ACSP.xml")).unwrap_err();
    assert!(error.to_string().contains("is not a camt message"), "{error}");
}
