#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Statement files read into lines: every fixture in `fixtures/statements/` (constructed by us)
//! and the public camt and Pull samples, with their values asserted; format detection; dedup
//! keys stable across overlapping exports; and refusals that name their place.

mod common;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use hazina_providers::ParseError;
use hazina_providers::money::{Currency, Money};
use hazina_providers::statements::{
    self, Direction, Format, LineStatus, ParseOptions, StatementFile, StatementLine,
};

/// Every file name a test below reads from `fixtures/statements/`.
const COVERED: &[&str] = &[
    "camt053_batch_pending_reversal.xml",
    "momo_transaction_report.csv",
    "mpesa_org_statement.csv",
    "mpesa_org_statement_overlap.csv",
    "mt940_two_statements.sta",
];

fn fixture(name: &str) -> Vec<u8> {
    common::read("statements", COVERED, name)
}

/// A public sample from another folder (its own tests check that folder's coverage).
fn sample(folder: &str, name: &str) -> Vec<u8> {
    std::fs::read(common::folder(folder).join(name)).unwrap()
}

fn money(code: &str, text: &str) -> Money {
    Money::parse(Currency::from_code(code).unwrap(), text).unwrap()
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn read(format: Format, bytes: &[u8]) -> StatementFile {
    statements::parse(format, bytes, &ParseOptions::default()).unwrap()
}

fn refusal(format: Format, bytes: &[u8]) -> String {
    match statements::parse(format, bytes, &ParseOptions::default()) {
        Err(ParseError::Unexpected(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn keys(file: &StatementFile) -> Vec<&str> {
    file.lines.iter().map(|line| line.key.as_str()).collect()
}

/// Positions run 1, 2, … across the file.
fn assert_numbered(file: &StatementFile) {
    let positions: Vec<u32> = file.lines.iter().map(|line| line.position).collect();
    let expected: Vec<u32> = (1..=u32::try_from(file.lines.len()).unwrap()).collect();
    assert_eq!(positions, expected);
}

#[test]
fn every_fixture_is_covered() {
    common::assert_every_file_covered("statements", COVERED);
}

// Detection

#[test]
fn detect_names_every_fixture() {
    let cases: &[(Vec<u8>, Format)] = &[
        (fixture("mpesa_org_statement.csv"), Format::MpesaCsv),
        (fixture("mpesa_org_statement_overlap.csv"), Format::MpesaCsv),
        (fixture("momo_transaction_report.csv"), Format::MomoReport),
        (fixture("mt940_two_statements.sta"), Format::Mt940),
        (fixture("camt053_batch_pending_reversal.xml"), Format::Camt053),
        (sample("iso20022", "genkgo_camt_camt053.v2.minimal.xml"), Format::Camt053),
        (sample("iso20022", "genkgo_camt_camt053.v8.xml"), Format::Camt053),
        (sample("iso20022", "genkgo_camt_camt054.v2.xml"), Format::Camt054),
        (sample("mpesa_daraja_ghostscypher", "pull_query_response.json"), Format::MpesaPull),
    ];
    for (bytes, format) in cases {
        assert_eq!(Format::detect(bytes), Some(*format), "{format}");
    }
    assert_eq!(Format::detect(b":20:REF\r\n:25:ACC\r\n"), Some(Format::Mt940));
    assert_eq!(Format::detect(b""), None);
    assert_eq!(Format::detect(b"a,b,c\n1,2,3\n"), None);
    assert_eq!(Format::detect(br#"{"Body":{"stkCallback":{}}}"#), None);
    assert_eq!(
        Format::detect(&sample("iso20022", "genkgo_camt_camt052.v6.xml")),
        None,
        "camt.052 is not a statement format we import"
    );
}

// M-Pesa organisation statement

#[test]
fn mpesa_csv_reads_every_row() {
    let file = read(Format::MpesaCsv, &fixture("mpesa_org_statement.csv"));
    assert_eq!(file.format, Format::MpesaCsv);
    assert_eq!(file.statements.len(), 1);
    assert_eq!(file.statements[0].account.as_deref(), Some("600123"));
    assert_eq!(file.statements[0].currency, Some(Currency::from_code("KES").unwrap()));
    assert_numbered(&file);
    assert_eq!(file.lines.len(), 6);

    let payment = &file.lines[0];
    assert_eq!(payment.receipt.as_deref(), Some("SC12ABC001"));
    assert_eq!(payment.reference.as_deref(), Some("INV-1001"));
    assert_eq!(payment.booked_at, utc("2024-03-01T06:15:02Z"), "EAT is three hours east");
    assert_eq!(payment.value_date, day("2024-03-01"));
    assert_eq!(payment.direction, Direction::In);
    assert_eq!(payment.amount, money("KES", "1250.00"));
    assert_eq!(payment.balance_after, Some(money("KES", "11250.00")));
    assert_eq!(payment.counterparty.as_deref(), Some("254712345678 - JANE DOE"));
    assert_eq!(payment.description.as_deref(), Some("Customer Payment to Small Business"));
    assert_eq!(payment.status, LineStatus::Completed);
    assert!(!payment.reversal && !payment.charge);
    assert_eq!(payment.key, "mpesa::SC12ABC001");

    let payout = &file.lines[1];
    assert_eq!(payout.direction, Direction::Out);
    assert_eq!(payout.amount, money("KES", "500.00"), "a negative Withdrawn is money out");
    assert!(!payout.charge);
    let charge = &file.lines[2];
    assert_eq!(charge.receipt.as_deref(), Some("SC12ABC002"));
    assert!(charge.charge);
    assert_eq!(charge.amount, money("KES", "22.00"));
    assert_eq!(charge.description.as_deref(), Some("Business Payment to Customer via API Charge"));
    assert_eq!(payout.key, "mpesa::SC12ABC002");
    assert_eq!(charge.key, "mpesa::SC12ABC002:charge");

    let reversal = &file.lines[3];
    assert!(reversal.reversal);
    assert_eq!(reversal.direction, Direction::Out);
    assert_eq!(reversal.amount, money("KES", "1250.00"));
    assert_eq!(reversal.booked_at, utc("2024-03-01T08:00:00Z"), "dd-mm-yyyy read too");

    let failed = &file.lines[4];
    assert_eq!(failed.status, LineStatus::Failed);
    assert_eq!(failed.counterparty.as_deref(), Some("254733000222 - PETER \"PK\" KAMAU"));

    let large = &file.lines[5];
    assert_eq!(large.amount, money("KES", "2000000.50"));
    assert_eq!(large.balance_after, Some(money("KES", "2009478.50")));
    assert_eq!(large.counterparty.as_deref(), Some("254744000333 - DOE, JANE"));
}

#[test]
fn mpesa_keys_are_stable_across_overlapping_exports() {
    let options = ParseOptions { account: Some("600123".to_owned()), ..ParseOptions::default() };
    let first =
        statements::parse(Format::MpesaCsv, &fixture("mpesa_org_statement.csv"), &options).unwrap();
    let second =
        statements::parse(Format::MpesaCsv, &fixture("mpesa_org_statement_overlap.csv"), &options)
            .unwrap();
    assert_eq!(second.statements[0].account, None, "the second export has no preamble");
    let by_receipt = |file: &StatementFile, receipt: &str, charge: bool| -> StatementLine {
        file.lines
            .iter()
            .find(|line| line.receipt.as_deref() == Some(receipt) && line.charge == charge)
            .unwrap()
            .clone()
    };
    for (receipt, charge) in
        [("SC12ABC002", false), ("SC12ABC002", true), ("SC12ABC003", false), ("SC12ABC005", false)]
    {
        let (a, b) = (by_receipt(&first, receipt, charge), by_receipt(&second, receipt, charge));
        assert_eq!(a.key, b.key, "{receipt}");
        assert_eq!((a.amount, a.direction, a.booked_at), (b.amount, b.direction, b.booked_at));
    }
    assert_eq!(by_receipt(&first, "SC12ABC005", false).key, "mpesa:600123:SC12ABC005");
    let first_keys = keys(&first);
    let new: Vec<&str> =
        keys(&second).into_iter().filter(|key| !first_keys.contains(key)).collect();
    assert_eq!(new, ["mpesa:600123:SC12ABC006"]);
    let mut unique = first_keys.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), first_keys.len(), "no two lines of a file share a key");
}

#[test]
fn mpesa_csv_options_set_zone_and_currency() {
    let options = ParseOptions {
        utc_offset: Some(FixedOffset::east_opt(0).unwrap()),
        currency: Some(Currency::from_code("TZS").unwrap()),
        account: None,
    };
    let file =
        statements::parse(Format::MpesaCsv, &fixture("mpesa_org_statement.csv"), &options).unwrap();
    assert_eq!(file.lines[0].booked_at, utc("2024-03-01T09:15:02Z"));
    assert_eq!(file.lines[0].amount, money("TZS", "1250.00"));
}

#[test]
fn mpesa_csv_refusals_name_the_line() {
    let header =
        "Receipt No.,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance\n";
    let cases = [
        ("A1,2024-03-01 10:00:00,x,Completed,10.005,,1.00\n", "line 2: Paid In"),
        (
            "A1,2024-03-01 10:00:00,x,Completed,10.00,,1.00\nA2,yesterday,x,Completed,1,,1\n",
            "line 3: Completion Time",
        ),
        (
            "A1,2024-03-01 10:00:00,x,Completed,10.00,5.00,1.00\n",
            "line 2: both Paid In and Withdrawn",
        ),
        ("A1,2024-03-01 10:00:00,x,Completed,,,1.00\n", "line 2: neither Paid In nor Withdrawn"),
        ("A1,2024-03-01 10:00:00,x,Completed,-10.00,,1.00\n", "line 2: Paid In is negative"),
        (
            "A1,2024-03-01 10:00:00,x,Completed,\"1,25.00\",,1.00\n",
            "line 2: Paid In: invalid amount",
        ),
        ("A1,2024-03-01 10:00:00,x,Completed,12.00,,abc\n", "line 2: Balance"),
    ];
    for (rows, expected) in cases {
        let message = refusal(Format::MpesaCsv, format!("{header}{rows}").as_bytes());
        assert!(message.starts_with(expected), "{message:?} should start with {expected:?}");
    }
    let message = refusal(Format::MpesaCsv, b"Date,Amount\n2024-03-01,5\n");
    assert!(message.contains("no mpesa_csv header row"), "{message}");
}

// M-Pesa Pull Transactions API

#[test]
fn mpesa_pull_sample_reads_as_lines() {
    let file =
        read(Format::MpesaPull, &sample("mpesa_daraja_ghostscypher", "pull_query_response.json"));
    assert_eq!(file.statements[0].id.as_deref(), Some("26178-42530161-2"));
    assert_eq!(file.lines.len(), 5);
    assert_numbered(&file);
    let amounts: Vec<String> = file.lines.iter().map(|line| line.amount.to_string()).collect();
    assert_eq!(amounts, ["168.00 KES", "647.00 KES", "876.00 KES", "687.00 KES", "93.00 KES"]);
    let first = &file.lines[0];
    assert_eq!(first.receipt.as_deref(), Some("yzlyrEsRG1"));
    assert_eq!(first.key, "mpesa::yzlyrEsRG1");
    assert_eq!(first.reference.as_deref(), Some("37207636392"));
    assert_eq!(first.direction, Direction::In);
    assert_eq!(first.booked_at, utc("2020-08-05T10:13:00Z"));
    assert_eq!(first.value_date, day("2020-08-05"));
    assert_eq!(first.counterparty.as_deref(), Some("72200000 - UAT2"));
    assert_eq!(first.description.as_deref(), Some("c2b-pay-bill-debit"));
    assert_eq!(first.status, LineStatus::Completed);
}

#[test]
fn mpesa_pull_no_transactions_and_refusals() {
    let empty = br#"{"ResponseRefID":"1-2-3","ResponseCode":"1001","ResponseMessage":"No transactions","Response":[]}"#;
    assert!(read(Format::MpesaPull, empty).lines.is_empty());
    let message = refusal(
        Format::MpesaPull,
        br#"{"ResponseRefID":"x","ResponseCode":"1002","ResponseMessage":"Invalid shortcode"}"#,
    );
    assert!(message.contains("1002") && message.contains("Invalid shortcode"), "{message}");
    let item = |kind: &str, amount: &str, date: &str| {
        format!(
            r#"{{"ResponseRefID":"x","ResponseCode":"1000","Response":[[{{"transactionId":"A","trxDate":"2020-08-05T10:13:00Z","msisdn":1,"sender":"s","transactiontype":"c2b-pay-bill-debit","billreference":"r","amount":"1.00","organizationname":"o"}},{{"transactionId":"B","trxDate":"{date}","msisdn":1,"sender":"s","transactiontype":"{kind}","billreference":"r","amount":"{amount}","organizationname":"o"}}]]}}"#
        )
    };
    let message =
        refusal(Format::MpesaPull, item("b2c-payment", "1.00", "2020-08-05T10:13:00Z").as_bytes());
    assert!(message.starts_with("item 2: transactiontype"), "{message}");
    let message = refusal(
        Format::MpesaPull,
        item("c2b-buy-goods", "1.001", "2020-08-05T10:13:00Z").as_bytes(),
    );
    assert!(message.starts_with("item 2: amount"), "{message}");
    let message = refusal(Format::MpesaPull, item("c2b-buy-goods", "1.00", "5 Aug").as_bytes());
    assert!(message.starts_with("item 2: trxDate"), "{message}");
    let local =
        read(Format::MpesaPull, item("c2b-buy-goods", "2", "2020-08-05 10:13:00").as_bytes());
    assert_eq!(local.lines[1].booked_at, utc("2020-08-05T07:13:00Z"), "local times are EAT");
}

// MTN MoMo transaction report

#[test]
fn momo_report_reads_every_row() {
    let options =
        ParseOptions { account: Some("256700000000".to_owned()), ..ParseOptions::default() };
    let file =
        statements::parse(Format::MomoReport, &fixture("momo_transaction_report.csv"), &options)
            .unwrap();
    assert_eq!(file.statements[0].currency, Some(Currency::from_code("UGX").unwrap()));
    assert_eq!(file.lines.len(), 5);
    assert_numbered(&file);

    let payment = &file.lines[0];
    assert_eq!(payment.receipt.as_deref(), Some("1001001"));
    assert_eq!(payment.key, "momo:256700000000:1001001");
    assert_eq!(payment.reference.as_deref(), Some("INV-501"));
    assert_eq!(payment.booked_at, utc("2024-03-01T08:00:00Z"), "UTC unless told");
    assert_eq!(payment.direction, Direction::In);
    assert_eq!(payment.amount, money("UGX", "50000"));
    assert_eq!(payment.fee, None, "a zero fee is no fee");
    assert_eq!(payment.balance_after, Some(money("UGX", "150000")));
    assert_eq!(payment.counterparty.as_deref(), Some("256772000001 - ALICE NAMBI"));
    assert_eq!(payment.description.as_deref(), Some("Invoice 501"));
    assert_eq!(payment.status, LineStatus::Completed);

    let payout = &file.lines[1];
    assert_eq!(payout.direction, Direction::Out);
    assert_eq!(payout.amount, money("UGX", "20000"));
    assert_eq!(payout.fee, Some(money("UGX", "500")));
    assert_eq!(payout.counterparty.as_deref(), Some("256772000002 - BOB OKELLO"));

    assert_eq!(file.lines[2].status, LineStatus::Failed);
    assert_eq!(file.lines[2].booked_at, utc("2024-03-01T10:00:00Z"));
    assert_eq!(file.lines[2].description.as_deref(), Some("PAYMENT"), "the type without a note");
    let pending = &file.lines[3];
    assert_eq!(pending.status, LineStatus::Pending);
    assert_eq!(pending.direction, Direction::Out);
    assert_eq!(pending.booked_at, utc("2024-03-01T11:00:00.250Z"));
    assert_eq!(pending.reference, None);
    let reversal = &file.lines[4];
    assert!(reversal.reversal);
    assert_eq!(reversal.direction, Direction::In);
    assert_eq!(reversal.reference.as_deref(), Some("PO-77"));
}

#[test]
fn momo_report_refusals_name_the_line() {
    let header = "Id,External Transaction Id,Date,Status,Amount,Currency\n";
    let cases = [
        ("1,x,2024-03-01 08:00:00,SUCCESSFUL,10.5,UGX\n", "line 2: Amount"),
        ("1,x,2024-03-01 08:00:00,SUCCESSFUL,10,XYZ\n", "line 2: Currency"),
        (
            "1,x,2024-03-01 08:00:00,SUCCESSFUL,10,UGX\n,x,2024-03-01 08:00:00,SUCCESSFUL,10,UGX\n",
            "line 3: Id is empty",
        ),
        ("1,x,01 March,SUCCESSFUL,10,UGX\n", "line 2: Date"),
        ("1,x,2024-03-01 08:00:00,SUCCESSFUL,0,UGX\n", "line 2: Amount is zero"),
        ("1,x,2024-03-01 08:00:00,SUCCESSFUL,10,\n", "line 2: no currency"),
    ];
    for (rows, expected) in cases {
        let message = refusal(Format::MomoReport, format!("{header}{rows}").as_bytes());
        assert!(message.starts_with(expected), "{message:?} should start with {expected:?}");
    }
}

// ISO 20022 camt.053 and camt.054

#[test]
fn camt053_minimal_sample() {
    let file = read(Format::Camt053, &sample("iso20022", "genkgo_camt_camt053.v2.minimal.xml"));
    assert_eq!(file.statements.len(), 1);
    let info = &file.statements[0];
    assert_eq!(info.id.as_deref(), Some("253EURNL26VAYB8060476890"));
    assert_eq!(info.account.as_deref(), Some("NL26VAYB8060476890"));
    assert_eq!(info.currency, Some(Currency::from_code("EUR").unwrap()));
    assert_eq!(info.from, Some(day("2007-10-18")));
    assert_eq!(info.to, Some(day("2007-10-18")));
    assert_eq!(info.opening, Some(money("EUR", "18.15")));
    assert_eq!(info.closing, Some(money("SEK", "-27.00")), "a debit balance is negative");
    assert_eq!(info.closing_date, Some(day("2014-12-31")));
    assert_eq!(file.lines.len(), 1);
    let line = &file.lines[0];
    assert_eq!(line.amount, money("EUR", "8.85"));
    assert_eq!(line.direction, Direction::In);
    assert_eq!(line.booked_at, utc("2014-12-31T00:00:00Z"));
    assert_eq!(line.value_date, day("2015-01-02"));
    assert_eq!(line.status, LineStatus::Completed);
    assert_eq!(line.receipt, None);
    assert_eq!(line.reference.as_deref(), Some("4654654654654654"), "the creditor reference");
    assert_eq!(line.counterparty.as_deref(), Some("NAME NAME"));
    assert!(!line.reversal);
    assert!(line.key.starts_with("bank:NL26VAYB8060476890:"), "{}", line.key);
    assert!(line.key.ends_with("#1"), "no AcctSvcrRef: the fallback key, {}", line.key);
}

#[test]
fn camt053_multi_statement_sample() {
    let file =
        read(Format::Camt053, &sample("iso20022", "genkgo_camt_camt053.v2.multi.statement.xml"));
    assert_eq!(file.statements.len(), 2);
    assert_eq!(file.statements[1].id.as_deref(), Some("254EURNL26VAYB8060476890"));
    assert_eq!(file.statements[1].opening, Some(money("EUR", "27.00")));
    assert_eq!(file.statements[1].closing, Some(money("EUR", "20.00")));
    assert_eq!(file.lines.len(), 2);
    assert_numbered(&file);
    assert_eq!((file.lines[0].statement, file.lines[1].statement), (0, 1));
    assert_eq!(file.lines[0].amount, money("EUR", "8.85"));
    assert_eq!(file.lines[0].reference.as_deref(), Some("000000001"));
    assert_eq!(file.lines[0].description.as_deref(), Some("Transaction Description 1"));
    assert_eq!(file.lines[1].amount, money("EUR", "7.00"));
    assert_eq!(file.lines[1].direction, Direction::Out);
    assert_eq!(file.lines[1].counterparty.as_deref(), Some("Company Name 2"));
    assert_eq!(file.lines[1].description.as_deref(), Some("Transaction Description 2"));
    assert_ne!(file.lines[0].key, file.lines[1].key);
}

#[test]
fn camt053_v8_sample() {
    let file = read(Format::Camt053, &sample("iso20022", "genkgo_camt_camt053.v8.xml"));
    assert_eq!(file.statements[0].account.as_deref(), Some("NL26VAYB8060476890"));
    assert_eq!(file.statements[0].currency, Some(Currency::from_code("EUR").unwrap()));
    assert_eq!(file.lines.len(), 1, "a single TxDtls is not a batch");
    let line = &file.lines[0];
    assert_eq!(line.amount, money("EUR", "8.85"));
    assert_eq!(line.status, LineStatus::Completed);
    assert_eq!(line.booked_at, utc("2014-12-31T12:15:00Z"));
    assert_eq!(line.receipt.as_deref(), Some("AAAASESS-FP-CN_98765/01"));
    assert_eq!(line.key, "bank:NL26VAYB8060476890:AAAASESS-FP-CN_98765/01");
    assert_eq!(line.reference.as_deref(), Some("MUELL/FINP/RA12345"));
    assert_eq!(line.counterparty.as_deref(), Some("NAME NAME"));
    assert_eq!(line.batch, None);
}

#[test]
fn camt054_sample() {
    let file = read(Format::Camt054, &sample("iso20022", "genkgo_camt_camt054.v2.xml"));
    assert_eq!(file.statements.len(), 1);
    let info = &file.statements[0];
    assert_eq!(info.id.as_deref(), Some("AAAASESS-FP-ACCR001"));
    assert_eq!(info.account.as_deref(), Some("CH2801234000123456789"));
    assert_eq!((info.opening, info.closing, info.currency), (None, None, None));
    // Three TxDtls without amounts of their own: one line for the entry.
    assert_eq!(file.lines.len(), 1);
    let line = &file.lines[0];
    assert_eq!(line.amount, money("SEK", "200000.00"));
    assert_eq!(line.direction, Direction::Out);
    assert_eq!(line.booked_at, utc("2007-10-18T12:15:00Z"));
    assert_eq!(line.value_date, day("2007-10-18"));
    assert_eq!(line.receipt.as_deref(), Some("AAAASESS-FP-ACCR001"));
    assert_eq!(line.key, "bank:CH2801234000123456789:AAAASESS-FP-ACCR001");
    assert_eq!(line.reference.as_deref(), Some("MUELL/FINP/RA12345"));
    assert_eq!(line.description.as_deref(), Some("Unstructured Remittance Information V1"));
    assert_eq!(line.batch, None);
}

#[test]
fn camt_batch_pending_reversal_and_fallback_keys() {
    let file = read(Format::Camt053, &fixture("camt053_batch_pending_reversal.xml"));
    let info = &file.statements[0];
    assert_eq!(info.account.as_deref(), Some("0123456789"));
    assert_eq!(info.opening, Some(money("KES", "-1500.00")), "PRCD counts as opening");
    assert_eq!(info.closing, Some(money("KES", "-590.00")));
    assert_eq!(info.closing_date, Some(day("2024-03-01")));
    assert_eq!(info.from, Some(day("2024-03-01")));
    assert_numbered(&file);
    assert_eq!(file.lines.len(), 7);

    let batch: Vec<&StatementLine> = file.lines[..3].iter().collect();
    for line in &batch {
        assert_eq!(line.batch.as_deref(), Some("BNK-20240301-0001"));
        assert_eq!(line.direction, Direction::In);
        assert_eq!(line.booked_at, utc("2024-03-01T00:00:00Z"));
    }
    assert_eq!(batch[0].amount, money("KES", "1000.00"));
    assert_eq!(batch[0].key, "bank:0123456789:BNK-20240301-0001/tx:1");
    assert_eq!(batch[0].receipt.as_deref(), Some("BNK-20240301-0001"));
    assert_eq!(batch[0].counterparty.as_deref(), Some("Alpha & Sons"));
    assert_eq!(batch[0].reference.as_deref(), Some("HZ-PAY-1"));
    assert_eq!(batch[1].key, "bank:0123456789:BNK-20240301-0001/BNK-TX-2");
    assert_eq!(batch[1].receipt.as_deref(), Some("BNK-TX-2"));
    assert_eq!(batch[1].reference, None, "NOTPROVIDED is no reference");
    assert_eq!(batch[1].description.as_deref(), Some("Invoice 12 part 2"));
    assert_eq!(batch[2].amount, money("KES", "500.00"));

    let reversal = &file.lines[3];
    assert!(reversal.reversal);
    assert_eq!(reversal.direction, Direction::Out);
    assert_eq!(reversal.fee, Some(money("KES", "30.00")));
    assert_eq!(reversal.booked_at, utc("2024-03-01T11:30:00Z"));
    assert_eq!(reversal.counterparty.as_deref(), Some("Delta Supplies"));
    assert_eq!(reversal.reference.as_deref(), Some("HZ-OUT-9"));
    assert_eq!(reversal.batch, None);

    let (fee1, fee2) = (&file.lines[4], &file.lines[5]);
    assert_eq!(fee1.description.as_deref(), Some("Monthly fee"));
    let base = fee1.key.strip_suffix("#1").expect("the first of a tuple is #1");
    assert_eq!(fee2.key, format!("{base}#2"), "the same tuple twice is #1 and #2");
    assert_eq!(base.len(), "bank:0123456789:".len() + 64, "a SHA-256 in hex");

    let pending = &file.lines[6];
    assert_eq!(pending.status, LineStatus::Pending);
    assert_eq!(pending.booked_at, utc("2024-03-04T00:00:00Z"), "no BookgDt: the value date");
}

#[test]
fn camt_keys_are_stable_across_overlapping_files() {
    let whole = String::from_utf8(fixture("camt053_batch_pending_reversal.xml")).unwrap();
    // An earlier export: the same statement without its last two entries.
    let cut = whole.find("      <Ntry>\n        <Amt Ccy=\"KES\">970.00</Amt>").unwrap();
    let cut2 =
        whole[cut + 10..].find("      <Ntry>\n        <Amt Ccy=\"KES\">970.00</Amt>").unwrap()
            + cut
            + 10;
    let end = whole.find("    </Stmt>").unwrap();
    let earlier = format!("{}{}", &whole[..cut2], &whole[end..]);
    let a = read(Format::Camt053, earlier.as_bytes());
    let b = read(Format::Camt053, whole.as_bytes());
    assert_eq!(a.lines.len(), 5);
    assert_eq!(keys(&a), keys(&b)[..5]);
}

#[test]
fn camt_zone_option_sets_midnight() {
    let options =
        ParseOptions { utc_offset: FixedOffset::east_opt(3 * 3600), ..ParseOptions::default() };
    let file = statements::parse(
        Format::Camt053,
        &fixture("camt053_batch_pending_reversal.xml"),
        &options,
    )
    .unwrap();
    assert_eq!(file.lines[0].booked_at, utc("2024-02-29T21:00:00Z"));
    assert_eq!(file.lines[3].booked_at, utc("2024-03-01T11:30:00Z"), "a zoned time keeps its zone");
}

#[test]
fn camt_refusals_name_the_entry() {
    let whole = String::from_utf8(fixture("camt053_batch_pending_reversal.xml")).unwrap();
    let cases = [
        (
            whole.replace("<Amt Ccy=\"KES\">150.00</Amt>", "<Amt Ccy=\"KES\">150.001</Amt>"),
            "Ntry 2 (line",
        ),
        (
            whole.replace(
                "<CdtDbtInd>DBIT</CdtDbtInd>\n        <RvslInd>",
                "<CdtDbtInd>DEBIT</CdtDbtInd>\n        <RvslInd>",
            ),
            "Ntry 2 (line",
        ),
        (
            whole.replace("<DtTm>2024-03-01T14:30:00+03:00</DtTm>", "<DtTm>yesterday</DtTm>"),
            "Ntry 2 (line",
        ),
        (whole.replace("<Sts><Cd>PDNG</Cd></Sts>", ""), "Ntry 5 (line"),
        (
            whole.replace("<Amt Ccy=\"KES\">400.00</Amt>", "<Amt Ccy=\"KES\">0.00</Amt>"),
            "Ntry 5 (line",
        ),
        (
            whole.replace(
                "</Ntry>\n      <Ntry>\n        <Amt Ccy=\"KES\">970.00",
                "</Ntry>\n      <Ntry>\n        <Amt Ccy=\"KES\">970.00</Nope>",
            ),
            "line ",
        ),
        (whole.replace("camt.053.001.04", "camt.054.001.04"), "the Document's namespace"),
    ];
    for (xml, expected) in cases {
        let message = refusal(Format::Camt053, xml.as_bytes());
        assert!(message.starts_with(expected), "{message:?} should start with {expected:?}");
    }
    let message = refusal(Format::Camt054, whole.as_bytes());
    assert!(message.contains("is not camt.054"), "{message}");
}

// SWIFT MT940

#[test]
fn mt940_two_statements() {
    let file = read(Format::Mt940, &fixture("mt940_two_statements.sta"));
    assert_eq!(file.statements.len(), 2);
    let first = &file.statements[0];
    assert_eq!(first.id.as_deref(), Some("STMT240301/61/1"));
    assert_eq!(first.account.as_deref(), Some("KE12BANK0000123456789"));
    assert_eq!(first.currency, Some(Currency::from_code("KES").unwrap()));
    assert_eq!(first.opening, Some(money("KES", "100000.00")));
    assert_eq!(first.closing, Some(money("KES", "98499.50")));
    assert_eq!((first.from, first.to), (Some(day("2024-02-29")), Some(day("2024-03-02"))));
    assert_eq!(file.statements[1].closing, Some(money("KES", "99800.00")));
    assert_eq!(file.lines.len(), 5);
    assert_numbered(&file);

    let credit = &file.lines[0];
    assert_eq!(credit.direction, Direction::In);
    assert_eq!(credit.amount, money("KES", "25000.00"));
    assert_eq!(credit.value_date, day("2024-03-01"));
    assert_eq!(credit.booked_at, utc("2024-03-01T00:00:00Z"));
    assert_eq!(credit.reference.as_deref(), Some("INV-1001"));
    assert_eq!(credit.receipt.as_deref(), Some("BR240301001"));
    assert_eq!(credit.key, "bank:KE12BANK0000123456789:BR240301001");
    assert_eq!(credit.description.as_deref(), Some("Payment from JANE DOE invoice 1001"));

    let debit = &file.lines[1];
    assert_eq!(debit.direction, Direction::Out, "D with funds code R");
    assert_eq!(debit.amount, money("KES", "1500.50"));
    assert_eq!(debit.booked_at, utc("2024-03-02T00:00:00Z"), "the entry date");
    assert_eq!(debit.reference, None, "NONREF is no reference");
    assert_eq!(debit.description.as_deref(), Some("SVWZ+INV-2001 PARTIAL PAYMENT"));
    assert_eq!(debit.counterparty.as_deref(), Some("MAX MUSTERMANN GMBH"));

    let returned = &file.lines[2];
    assert!(returned.reversal);
    assert_eq!(returned.direction, Direction::Out, "RC reverses a credit");
    let refund = &file.lines[3];
    assert!(refund.reversal);
    assert_eq!(refund.direction, Direction::In, "RD reverses a debit");
    assert_eq!(refund.statement, 1);
    assert_eq!(refund.reference.as_deref(), Some("PAYOUT-7"));
    let fee = &file.lines[4];
    assert_eq!(fee.amount, money("KES", "200.00"));
    assert_eq!(fee.receipt, None);
    assert!(fee.key.ends_with("#1"), "{}", fee.key);
    assert_eq!(fee.description.as_deref(), Some("Fee"));
}

#[test]
fn mt940_refusals_name_the_line() {
    let good = ":20:R\n:25:ACC\n:28C:1\n:60F:C240101KES1,00\n:61:240101C1,00NTRFNONREF\n:62F:C240101KES2,00\n";
    assert_eq!(read(Format::Mt940, good.as_bytes()).lines.len(), 1);
    let cases = [
        (good.replace("C1,00NTRF", "C1,001NTRF"), "line 5 (:61:)"),
        (good.replace("C1,00NTRF", "X1,00NTRF"), "line 5 (:61:): no mark"),
        (good.replace("NTRF", "XTRF"), "line 5 (:61:): no transaction type"),
        (good.replace(":61:240101", ":61:241301"), "line 5 (:61:)"),
        (good.replace(":60F:C240101KES1,00", ":60F:C240101KES1.00"), "line 4 (:60F:)"),
        (good.replace(":60F:C240101KES1,00\n", ""), "line 4 (:61:): :61: before the opening"),
        (good.replace(":62F:C240101KES2,00\n", ""), "statement \"R\" (line 1): no closing"),
        (good.replace(":25:ACC", ":99:X"), "line 2 (:99:): unknown field"),
        (format!("garbage\n{good}"), "line 1: text outside a field"),
    ];
    for (text, expected) in cases {
        let message = refusal(Format::Mt940, text.as_bytes());
        assert!(message.starts_with(expected), "{message:?} should start with {expected:?}");
    }
    assert!(refusal(Format::Mt940, b"").contains("no MT940 statement"));
}
