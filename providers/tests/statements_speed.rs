#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
//! How long the statement readers take on large generated files: a 1,000,000-line M-Pesa CSV
//! and a 1,000,000-entry camt.053. It prints the times and asserts only what was read (every
//! line, exact amounts, the balances adding up), since timing belongs in measurements, not
//! in pass or fail. Run it in release for the numbers:
//!
//! ```text
//! cargo test --release -p hazina-providers --test statements_speed -- --nocapture
//! ```
//!
//! A debug build (as `cargo test --workspace` runs it) reads 5,000 lines instead, to stay
//! quick; `HAZINA_STATEMENT_LINES` sets the count either way.

use std::fmt::Write as _;
use std::time::Instant;

use hazina_providers::money::{Currency, Money};
use hazina_providers::statements::{self, Direction, Format, ParseOptions};

fn lines_wanted() -> u32 {
    let default = if cfg!(debug_assertions) { 5_000 } else { 1_000_000 };
    std::env::var("HAZINA_STATEMENT_LINES").map_or(default, |text| text.trim().parse().unwrap())
}

/// The amount of line `i` in cents: varied, never zero.
fn cents(i: u32) -> i64 {
    i64::from(i % 97_531) * 13 + 1
}

#[test]
fn mpesa_csv_million_lines() {
    let count = lines_wanted();
    let mut csv = String::with_capacity(count as usize * 150);
    csv.push_str("\u{feff}\"Account Name\",\"HAZINA\"\r\n\"Short Code\",\"600123\"\r\n");
    csv.push_str("Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,Other Party Info,A/C No.\r\n");
    let mut balance: i64 = 0;
    for i in 0..count {
        let amount = cents(i);
        let paid_in = i % 3 != 0;
        balance += if paid_in { amount } else { -amount };
        let (seconds, minutes, hours) = (i % 60, (i / 60) % 60, (i / 3600) % 24);
        let day = 1 + (i / 86_400) % 28;
        let money = format!("{}.{:02}", amount / 100, amount % 100);
        let (paid, withdrawn) =
            if paid_in { (money, String::new()) } else { (String::new(), format!("-{money}")) };
        let sign = if balance < 0 { "-" } else { "" };
        let _ = write!(
            csv,
            "SX{i:08},2024-03-{day:02} {hours:02}:{minutes:02}:{seconds:02},,Customer Payment,Completed,{paid},{withdrawn},{sign}{}.{:02},\"2547{i:08} - CUSTOMER\",INV-{i}\r\n",
            balance.abs() / 100,
            balance.abs() % 100,
        );
    }
    let bytes = csv.into_bytes();
    let started = Instant::now();
    let file = statements::parse(Format::MpesaCsv, &bytes, &ParseOptions::default()).unwrap();
    let elapsed = started.elapsed();
    println!(
        "mpesa_csv: {count} lines, {} MB, parsed in {:.3} s",
        bytes.len() / 1_000_000,
        elapsed.as_secs_f64()
    );
    assert_eq!(file.lines.len(), count as usize);
    let kes = Currency::from_code("KES").unwrap();
    let mut sum = Money::zero(kes);
    for (i, line) in (0_u32..).zip(&file.lines) {
        assert_eq!(line.amount, Money::from_minor(kes, cents(i)));
        sum = match line.direction {
            Direction::In => sum.checked_add(&line.amount).unwrap(),
            Direction::Out => sum.checked_sub(&line.amount).unwrap(),
        };
    }
    assert_eq!(Some(sum), file.lines.last().and_then(|line| line.balance_after));
}

#[test]
fn camt053_million_entries() {
    let count = lines_wanted();
    let mut xml = String::with_capacity(count as usize * 420);
    xml.push_str(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><GrpHdr><MsgId>SPEED</MsgId></GrpHdr>
<Stmt><Id>SPEED-1</Id><Acct><Id><IBAN>KE00SPEED0000000001</IBAN></Id><Ccy>KES</Ccy></Acct>
<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="KES">0.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-03-01</Dt></Dt></Bal>
"#,
    );
    // The closing balance goes before the entries, where the schema puts it.
    let balance: i64 = (0..count).map(|i| if i % 3 != 0 { cents(i) } else { -cents(i) }).sum();
    let _ = writeln!(
        xml,
        "<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"KES\">{}.{:02}</Amt><CdtDbtInd>{}</CdtDbtInd><Dt><Dt>2024-03-01</Dt></Dt></Bal>",
        balance.abs() / 100,
        balance.abs() % 100,
        if balance < 0 { "DBIT" } else { "CRDT" },
    );
    for i in 0..count {
        let amount = cents(i);
        let credit = i % 3 != 0;
        let _ = writeln!(
            xml,
            "<Ntry><Amt Ccy=\"KES\">{}.{:02}</Amt><CdtDbtInd>{}</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2024-03-01</Dt></BookgDt><ValDt><Dt>2024-03-01</Dt></ValDt><AcctSvcrRef>REF{i:09}</AcctSvcrRef><NtryDtls><TxDtls><Refs><EndToEndId>E2E-{i}</EndToEndId></Refs><RltdPties><Dbtr><Nm>Payer {i}</Nm></Dbtr></RltdPties><RmtInf><Ustrd>Invoice {i}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>",
            amount / 100,
            amount % 100,
            if credit { "CRDT" } else { "DBIT" },
        );
    }
    xml.push_str("</Stmt></BkToCstmrStmt></Document>\n");
    let bytes = xml.into_bytes();
    let started = Instant::now();
    let file = statements::parse(Format::Camt053, &bytes, &ParseOptions::default()).unwrap();
    let elapsed = started.elapsed();
    println!(
        "camt053: {count} entries, {} MB, parsed in {:.3} s",
        bytes.len() / 1_000_000,
        elapsed.as_secs_f64()
    );
    assert_eq!(file.lines.len(), count as usize);
    let statement = &file.statements[0];
    let mut sum = statement.opening.unwrap();
    for (i, line) in (0_u32..).zip(&file.lines) {
        assert_eq!(line.amount.to_minor().unwrap(), cents(i));
        sum = match line.direction {
            Direction::In => sum.checked_add(&line.amount).unwrap(),
            Direction::Out => sum.checked_sub(&line.amount).unwrap(),
        };
    }
    assert_eq!(Some(sum), statement.closing);
}
