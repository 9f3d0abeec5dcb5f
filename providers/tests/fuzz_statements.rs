#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property-based fuzzing of the statement readers (`statements::parse`), one family of targets
//! per format, in the manner of `fuzz_parsers.rs`: arbitrary bytes; files shaped like the real
//! ones with arbitrary amounts (and junk where amounts go); and the fixtures cut, spliced and
//! sprinkled with bytes. Whatever arrives, a reader must not panic; a file it reads must give
//! lines numbered 1, 2, … with distinct keys, positive amounts held at their currency's scale;
//! and for the shaped files the oracle (`hazina_fuzz::at_scale`, which works on the text
//! alone) says exactly when the file is read and what every amount must be.
//!
//! `HAZINA_FUZZ_CASES` sets the cases per target (1,024 by default).

use std::collections::HashSet;
use std::fmt::Write as _;

use hazina_fuzz::{Grammar, config};
use hazina_providers::ParseError;
use hazina_providers::money::{Currency, Money};
use hazina_providers::statements::{
    self, Direction, Format, LineStatus, ParseOptions, StatementFile,
};
use proptest::prelude::*;
use proptest::sample::select;

// =============================================================================================
// Oracles
// =============================================================================================

/// What every file read must satisfy.
fn well_formed(file: &StatementFile) -> Result<(), TestCaseError> {
    let mut keys = HashSet::new();
    for (index, line) in file.lines.iter().enumerate() {
        prop_assert_eq!(line.position as usize, index + 1);
        prop_assert!(keys.insert(line.key.clone()), "duplicate key {}", line.key);
        prop_assert!(line.amount.is_positive(), "{:?}", line.amount);
        prop_assert_eq!(line.amount.amount().scale(), line.amount.currency().exponent());
        if let Some(fee) = line.fee {
            prop_assert!(fee.is_positive());
        }
        prop_assert!(line.statement < file.statements.len());
    }
    Ok(())
}

/// The text an amount with an optional sign (`+` or `-`) and optional thousands separators
/// must read as, when it is readable at all.
fn grouped(text: &str, exponent: u32) -> Option<String> {
    let (sign, unsigned) = match text.as_bytes().first() {
        Some(b'-') => ("-", &text[1..]),
        Some(b'+') => ("", &text[1..]),
        _ => ("", text),
    };
    let (whole, fraction) =
        unsigned.split_once('.').map_or((unsigned, None), |(w, f)| (w, Some(f)));
    let whole = if whole.contains(',') {
        let groups: Vec<&str> = whole.split(',').collect();
        let ok = (1..=3).contains(&groups[0].len())
            && groups[1..].iter().all(|group| group.len() == 3)
            && groups.iter().all(|group| group.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return None;
        }
        groups.concat()
    } else {
        whole.to_owned()
    };
    let plain = match fraction {
        Some(fraction) => format!("{sign}{whole}.{fraction}"),
        None => format!("{sign}{whole}"),
    };
    hazina_fuzz::at_scale(&plain, exponent, Grammar::Strict)
}

/// The magnitude of an amount as the oracle writes it.
fn unsigned(text: &str) -> &str {
    text.strip_prefix('-').unwrap_or(text)
}

fn is_zero(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0' | b'.' | b'-'))
}

/// Amount text: mostly well-formed decimals (grouped or not, signed or not, at or past the
/// currency's scale), sometimes junk.
fn amount_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        4 => (0_u64..1_000_000_000_000, 0_u32..4, any::<bool>(), select(vec!["", "-", "+"])).prop_map(
            |(number, decimals, group, sign)| {
                let whole = number / 10_u64.pow(decimals);
                let fraction = number % 10_u64.pow(decimals);
                let mut text = String::from(sign);
                let digits = whole.to_string();
                if group {
                    for (index, c) in digits.chars().enumerate() {
                        if index > 0 && (digits.len() - index) % 3 == 0 {
                            text.push(',');
                        }
                        text.push(c);
                    }
                } else {
                    text.push_str(&digits);
                }
                if decimals > 0 {
                    let _ = write!(text, ".{fraction:0width$}", width = decimals as usize);
                }
                text
            }
        ),
        1 => "[-+0-9.,]{0,12}",
        1 => "[-+0-9.,a-z ]{0,8}",
    ]
}

fn cases_config() -> ProptestConfig {
    config()
}

// =============================================================================================
// Shaped files
// =============================================================================================

fn csv_cell(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

proptest! {
    #![proptest_config(cases_config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Format::detect(&bytes);
        for format in Format::ALL {
            if let Ok(file) = statements::parse(format, &bytes, &ParseOptions::default()) {
                well_formed(&file)?;
            }
        }
    }

    #[test]
    fn mpesa_csv_shaped(rows in prop::collection::vec((amount_text(), any::<bool>(), "[A-Za-z ]{0,12}", select(vec!["Completed", "Failed", "Pending", "x"])), 1..12)) {
        let mut csv = String::from("\u{feff}Account Name,X\r\nReceipt No.,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance\r\n");
        for (index, (amount, paid_in, details, status)) in rows.iter().enumerate() {
            let (paid, withdrawn) = if *paid_in { (amount.as_str(), "") } else { ("", amount.as_str()) };
            let _ = write!(csv, "R{index},2024-03-01 10:00:{:02},{},{status},{},{},\r\n", index % 60, csv_cell(details), csv_cell(paid), csv_cell(withdrawn));
        }
        let result = statements::parse(Format::MpesaCsv, csv.as_bytes(), &ParseOptions::default());
        let expected: Option<Vec<String>> = rows.iter().map(|(amount, paid_in, _, _)| {
            let read = grouped(amount.trim(), 2)?;
            let negative = read.starts_with('-');
            let refused = is_zero(&read) || (negative && *paid_in);
            (!refused).then(|| unsigned(&read).to_owned())
        }).collect();
        match (result, expected) {
            (Ok(file), Some(amounts)) => {
                well_formed(&file)?;
                let read: Vec<String> = file.lines.iter().map(|line| line.amount.amount().to_string()).collect();
                prop_assert_eq!(read, amounts);
                for (line, (_, paid_in, _, _)) in file.lines.iter().zip(&rows) {
                    prop_assert_eq!(line.direction, if *paid_in { Direction::In } else { Direction::Out });
                }
            }
            (Err(ParseError::Unexpected(message)), None) => prop_assert!(message.starts_with("line "), "{}", message),
            (result, expected) => prop_assert!(false, "{:?} but the oracle says {:?}", result, expected),
        }
    }

    #[test]
    fn mpesa_pull_shaped(items in prop::collection::vec((amount_text(), select(vec!["c2b-pay-bill-debit", "c2b-buy-goods-debit"])), 0..8)) {
        let body: Vec<String> = items.iter().enumerate().map(|(index, (amount, kind))| format!(
            r#"{{"transactionId":"T{index}","trxDate":"2020-08-05T10:13:00Z","msisdn":722000000,"sender":"S","transactiontype":"{kind}","billreference":"B","amount":{},"organizationname":"O"}}"#,
            serde_json::to_string(amount).unwrap()
        )).collect();
        let json = format!(r#"{{"ResponseRefID":"R","ResponseCode":"1000","ResponseMessage":"ok","Response":[[{}]]}}"#, body.join(","));
        let result = statements::parse(Format::MpesaPull, json.as_bytes(), &ParseOptions::default());
        let expected: Option<Vec<String>> = items.iter().map(|(amount, _)| {
            let read = hazina_fuzz::at_scale(amount.trim().strip_prefix('+').unwrap_or(amount.trim()), 2, Grammar::Strict)?;
            (!is_zero(&read) && !read.starts_with('-') && !amount.trim().starts_with("+-")).then_some(read)
        }).collect();
        match (result, expected) {
            (Ok(file), Some(amounts)) => {
                well_formed(&file)?;
                let read: Vec<String> = file.lines.iter().map(|line| line.amount.amount().to_string()).collect();
                prop_assert_eq!(read, amounts);
            }
            (Err(ParseError::Unexpected(message)), None) => prop_assert!(message.starts_with("item "), "{}", message),
            (result, expected) => prop_assert!(false, "{:?} but the oracle says {:?}", result, expected),
        }
    }

    #[test]
    fn momo_report_shaped(rows in prop::collection::vec((amount_text(), amount_text(), select(vec!["UGX", "KES", "BHD"]), select(vec!["SUCCESSFUL", "FAILED", "PENDING"])), 1..10)) {
        let mut csv = String::from("Id,External Transaction Id,Date,Status,Amount,Currency,Fee\n");
        for (index, (amount, fee, currency, status)) in rows.iter().enumerate() {
            let _ = writeln!(csv, "{index},E{index},2024-03-01 08:00:00,{status},{},{currency},{}", csv_cell(amount), csv_cell(fee));
        }
        let result = statements::parse(Format::MomoReport, csv.as_bytes(), &ParseOptions::default());
        let expected: Option<Vec<(String, bool)>> = rows.iter().map(|(amount, fee, currency, _)| {
            let exponent = Currency::from_code(currency).unwrap().exponent();
            let read = grouped(amount.trim(), exponent)?;
            if !fee.trim().is_empty() {
                grouped(fee.trim(), exponent)?;
            }
            (!is_zero(&read)).then(|| (unsigned(&read).to_owned(), read.starts_with('-')))
        }).collect();
        match (result, expected) {
            (Ok(file), Some(amounts)) => {
                well_formed(&file)?;
                for (line, (amount, negative)) in file.lines.iter().zip(amounts) {
                    prop_assert_eq!(line.amount.amount().to_string(), amount);
                    prop_assert_eq!(line.direction, if negative { Direction::Out } else { Direction::In });
                }
            }
            (Err(ParseError::Unexpected(message)), None) => prop_assert!(message.starts_with("line "), "{}", message),
            (result, expected) => prop_assert!(false, "{:?} but the oracle says {:?}", result, expected),
        }
    }

    #[test]
    fn camt_shaped(entries in prop::collection::vec((amount_text(), any::<bool>(), select(vec!["BOOK", "PDNG", "INFO"]), prop::option::of("[A-Z0-9-]{1,8}"), prop::collection::vec(amount_text(), 0..3)), 1..8), notification in any::<bool>()) {
        let (family, wrapper, element, format) = if notification {
            ("camt.054.001.02", "BkToCstmrDbtCdtNtfctn", "Ntfctn", Format::Camt054)
        } else {
            ("camt.053.001.08", "BkToCstmrStmt", "Stmt", Format::Camt053)
        };
        let mut xml = format!(r#"<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:{family}"><{wrapper}><GrpHdr><MsgId>M</MsgId></GrpHdr><{element}><Id>S</Id><Acct><Id><IBAN>KE00X</IBAN></Id></Acct>"#);
        for (amount, credit, status, reference, parts) in &entries {
            let _ = write!(xml, "<Ntry><Amt Ccy=\"KES\">{amount}</Amt><CdtDbtInd>{}</CdtDbtInd><Sts><Cd>{status}</Cd></Sts><BookgDt><Dt>2024-03-01</Dt></BookgDt>", if *credit { "CRDT" } else { "DBIT" });
            if let Some(reference) = reference {
                let _ = write!(xml, "<AcctSvcrRef>{reference}</AcctSvcrRef>");
            }
            xml.push_str("<NtryDtls>");
            for part in parts {
                let _ = write!(xml, "<TxDtls><Amt Ccy=\"KES\">{part}</Amt></TxDtls>");
            }
            xml.push_str("</NtryDtls></Ntry>");
        }
        let _ = write!(xml, "</{element}></{wrapper}></Document>");
        let result = statements::parse(format, xml.as_bytes(), &ParseOptions::default());
        let strict = |text: &str| hazina_fuzz::at_scale(text.trim(), 2, Grammar::Strict);
        let expected: Option<usize> = entries.iter().map(|(amount, _, _, _, parts)| {
            let read = strict(amount)?;
            if is_zero(&read) || read.starts_with('-') {
                return None;
            }
            // A batch splits only when it has several parts, every one positive, adding up to
            // the entry; parts are read in order until one is not positive, and a part read
            // that is not an amount refuses the file.
            if parts.len() < 2 {
                return Some(1);
            }
            let mut split = true;
            let mut sum = rust_decimal::Decimal::ZERO;
            for part in parts {
                let value: rust_decimal::Decimal = strict(part)?.parse().unwrap();
                if value <= rust_decimal::Decimal::ZERO {
                    split = false;
                    break;
                }
                sum += value;
            }
            split &= sum == read.parse::<rust_decimal::Decimal>().unwrap();
            Some(if split { parts.len() } else { 1 })
        }).sum();
        match (result, expected) {
            (Ok(file), Some(count)) => {
                well_formed(&file)?;
                prop_assert_eq!(file.lines.len(), count);
                for line in &file.lines {
                    let entry_status = line.status == LineStatus::Completed;
                    prop_assert!(entry_status || line.status == LineStatus::Pending);
                }
            }
            (Err(ParseError::Unexpected(message)), None) => prop_assert!(message.starts_with("Ntry "), "{}", message),
            (result, expected) => prop_assert!(false, "{:?} but the oracle says {:?}", result, expected),
        }
    }

    #[test]
    fn mt940_shaped(lines in prop::collection::vec(("[0-9,.-]{1,10}", select(vec!["C", "D", "RC", "RD", "CR", "DR"]), prop::option::of("[A-Z0-9]{1,16}")), 1..8)) {
        let mut text = String::from(":20:REF\r\n:25:ACC\r\n:28C:1/1\r\n:60F:C240101KES0,\r\n");
        for (amount, mark, bank) in &lines {
            let _ = write!(text, ":61:240101{mark}{amount}NTRFNONREF");
            if let Some(bank) = bank {
                let _ = write!(text, "//{bank}");
            }
            text.push_str("\r\n:86:info\r\n");
        }
        text.push_str(":62F:C240101KES0,\r\n-\r\n");
        let result = statements::parse(Format::Mt940, text.as_bytes(), &ParseOptions::default());
        let expected: Option<Vec<String>> = lines.iter().map(|(amount, _, _)| {
            let ok = amount.bytes().filter(|&b| b == b',').count() == 1
                && amount.bytes().all(|b| b.is_ascii_digit() || b == b',')
                && !amount.starts_with(',');
            if !ok {
                return None;
            }
            let decimal = amount.replace(',', ".");
            let read = hazina_fuzz::at_scale(decimal.strip_suffix('.').unwrap_or(&decimal), 2, Grammar::Strict)?;
            (!is_zero(&read)).then_some(read)
        }).collect();
        match (result, expected) {
            (Ok(file), Some(amounts)) => {
                well_formed(&file)?;
                let read: Vec<String> = file.lines.iter().map(|line| line.amount.amount().to_string()).collect();
                prop_assert_eq!(read, amounts);
                for (line, (_, mark, _)) in file.lines.iter().zip(&lines) {
                    let inward = matches!(*mark, "C" | "RD" | "CR");
                    prop_assert_eq!(line.direction, if inward { Direction::In } else { Direction::Out });
                    prop_assert_eq!(line.reversal, mark.starts_with('R'));
                }
            }
            (Err(ParseError::Unexpected(message)), None) => prop_assert!(message.starts_with("line "), "{}", message),
            (result, expected) => prop_assert!(false, "{:?} but the oracle says {:?}", result, expected),
        }
    }
}

// =============================================================================================
// Fixtures, mangled
// =============================================================================================

/// The folder `tests/fixtures/<name>`.
fn folder(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn fixtures() -> Vec<(Format, Vec<u8>)> {
    let statements = |name: &str| std::fs::read(folder("statements").join(name)).unwrap();
    let iso = |name: &str| std::fs::read(folder("iso20022").join(name)).unwrap();
    vec![
        (Format::MpesaCsv, statements("mpesa_org_statement.csv")),
        (Format::MpesaCsv, statements("mpesa_org_statement_overlap.csv")),
        (Format::MomoReport, statements("momo_transaction_report.csv")),
        (Format::Mt940, statements("mt940_two_statements.sta")),
        (Format::Camt053, statements("camt053_batch_pending_reversal.xml")),
        (Format::Camt053, iso("genkgo_camt_camt053.v2.minimal.xml")),
        (Format::Camt053, iso("genkgo_camt_camt053.v2.multi.statement.xml")),
        (Format::Camt053, iso("genkgo_camt_camt053.v8.xml")),
        (Format::Camt054, iso("genkgo_camt_camt054.v2.xml")),
        (
            Format::MpesaPull,
            std::fs::read(folder("mpesa_daraja_ghostscypher").join("pull_query_response.json"))
                .unwrap(),
        ),
    ]
}

/// A change to a file: cut a range, insert bytes, or repeat a range.
#[derive(Clone, Debug)]
enum Change {
    Cut(prop::sample::Index, usize),
    Insert(prop::sample::Index, Vec<u8>),
    Repeat(prop::sample::Index, usize),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1_usize..40)
            .prop_map(|(at, length)| Change::Cut(at, length)),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(select(b"<>/:,\"\r\n-.0123456789ACDRN?&;".to_vec()), 1..6)
        )
            .prop_map(|(at, bytes)| Change::Insert(at, bytes)),
        (any::<prop::sample::Index>(), 1_usize..200)
            .prop_map(|(at, length)| Change::Repeat(at, length)),
    ]
}

fn apply(bytes: &mut Vec<u8>, change: &Change) {
    if bytes.is_empty() {
        return;
    }
    match change {
        Change::Cut(at, length) => {
            let start = at.index(bytes.len());
            let end = (start + length).min(bytes.len());
            bytes.drain(start..end);
        }
        Change::Insert(at, inserted) => {
            let start = at.index(bytes.len());
            bytes.splice(start..start, inserted.iter().copied());
        }
        Change::Repeat(at, length) => {
            let start = at.index(bytes.len());
            let end = (start + length).min(bytes.len());
            let copy = bytes[start..end].to_vec();
            bytes.splice(end..end, copy);
        }
    }
}

proptest! {
    #![proptest_config(cases_config())]

    #[test]
    fn mangled_fixtures_never_panic(which in any::<prop::sample::Index>(), changes in prop::collection::vec(change(), 1..4)) {
        let all = fixtures();
        let (format, mut bytes) = all[which.index(all.len())].clone();
        for change in &changes {
            apply(&mut bytes, change);
        }
        let _ = Format::detect(&bytes);
        match statements::parse(format, &bytes, &ParseOptions::default()) {
            Ok(file) => {
                well_formed(&file)?;
                for line in &file.lines {
                    let text = line.amount.amount().to_string();
                    prop_assert_eq!(Money::parse(line.amount.currency(), &text).ok(), Some(line.amount));
                }
            }
            Err(ParseError::Unexpected(message)) => prop_assert!(!message.is_empty()),
            Err(ParseError::Json(_) | ParseError::Xml(_) | ParseError::Amount(_)) => {}
        }
    }
}

#[test]
fn fixtures_read_unchanged() {
    for (format, bytes) in fixtures() {
        let file = statements::parse(format, &bytes, &ParseOptions::default()).unwrap();
        assert!(!file.lines.is_empty(), "{format}");
    }
}
