//! `hazina bench --reconcile`: how long a large statement takes to import and match.
//!
//! Posts `--lines` transfers through the ledger's pipeline between an M-Pesa channel's
//! clearing account and a purse (setup, timed apart), writes the org portal's statement export
//! for them — most lines naming their transfer (`A/C No.`, as a bill reference does), some
//! naming nothing (matched by amount and date), a few the ledger never saw — then times the
//! import (parse, check, write) and the run (read, match, record) through the reconciliation
//! service, as `hazina reconcile import` and `run` do.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use deadpool_postgres::Pool;
use hazina_ledger::rules::{AccountKind, Action, Outcome, Posting, Side, TransferRequest};
use hazina_ledger::store::NewAccount;
use hazina_ledger::{Currency, Money, OrgId, TransferId};
use serde::Serialize;

use crate::app::Services;
use crate::payments::{NewChannel, Provider};
use crate::reconciliation::{NewImport, NewRun, Rules};

/// Transfers in flight while the ledger is loaded (below one org's queue budget).
const IN_FLIGHT: usize = 2_048;

/// What the benchmark measured.
#[derive(Debug, Serialize)]
pub struct ReconcileResult {
    pub lines: usize,
    pub setup_seconds: f64,
    pub file_bytes: usize,
    pub import_seconds: f64,
    pub run_seconds: f64,
    /// Import and run together: the target is 30 s for a million lines.
    pub total_seconds: f64,
    pub matched: i32,
    pub unmatched_lines: i32,
    pub unmatched_transfers: i32,
}

/// Runs the benchmark on a new org.
#[allow(clippy::too_many_lines)] // Setup, the file, then the two timed steps, in order.
///
/// # Errors
///
/// Whatever fails.
pub async fn bench(pool: Pool, ledger_pool: Pool, lines: usize) -> anyhow::Result<ReconcileResult> {
    let services =
        Services::with_pools(pool.clone(), ledger_pool, crate::secrets::Sealer::generate()?);
    let org = OrgId::generate();
    services.store.create_org(org, "bench reconcile").await?;
    let kes = Currency::from_code("KES")?;
    let channel = services
        .payments
        .create_channel(
            org,
            NewChannel {
                provider: Provider::Mpesa,
                number: "600000".to_owned(),
                currency: kes,
                name: Some("bench".to_owned()),
                base_url: "https://sandbox.safaricom.co.ke".to_owned(),
                credentials: [("consumerKey", "k"), ("consumerSecret", "s")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                treasury_limit: None,
            },
        )
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let mut purse = NewAccount::new(org, AccountKind::Equity, kes);
    purse.name = Some("bench".to_owned());
    let purse = services.store.create_account(&purse).await?;

    // Setup: the ledger's side, one transfer per line, alternating in and out.
    eprintln!("posting {lines} transfers on the clearing account …");
    let started = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let mut ids = Vec::with_capacity(lines);
    for n in 0..lines {
        let id = TransferId::generate();
        ids.push(id);
        let amount = Money::from_minor(kes, amount_of(n));
        let (clearing_side, purse_side) =
            if n % 2 == 0 { (Side::Debit, Side::Credit) } else { (Side::Credit, Side::Debit) };
        let request = TransferRequest {
            id,
            id_is_new: true,
            org,
            action: Action::Post {
                postings: vec![
                    Posting { account: channel.clearing, side: clearing_side, amount },
                    Posting { account: purse.id, side: purse_side, amount },
                ],
            },
            code: "bench".to_owned(),
            effective_at: None,
            context: Arc::default(),
        };
        let permit = Arc::clone(&semaphore).acquire_owned().await?;
        let pipeline = services.pipeline.clone();
        tasks.spawn(async move {
            let outcome = pipeline.submit(request).await;
            drop(permit);
            outcome
        });
        while let Some(done) = tasks.try_join_next() {
            check(done?)?;
        }
    }
    while let Some(done) = tasks.join_next().await {
        check(done?)?;
    }
    let setup_seconds = started.elapsed().as_secs_f64();

    // The statement: 90% name their transfer, 9% nothing, 1% the ledger never saw (and 1% of
    // transfers are left off).
    let now = (chrono::Utc::now() + chrono::Duration::hours(3)).format("%Y-%m-%d %H:%M:%S");
    let mut file = String::with_capacity(lines * 110);
    file.push_str(
        "Receipt No.,Completion Time,Details,Transaction Status,Paid In,Withdrawn,A/C No.\n",
    );
    for (n, id) in ids.iter().enumerate() {
        let amount = Money::from_minor(kes, amount_of(n)).amount();
        let (paid_in, withdrawn) = if n % 2 == 0 {
            (amount.to_string(), String::new())
        } else {
            (String::new(), format!("-{amount}"))
        };
        let reference = match n % 100 {
            0 => continue,
            1..=9 => String::new(),
            _ => id.0.to_string(),
        };
        writeln!(file, "R{n:09},{now},Bench payment,Completed,{paid_in},{withdrawn},{reference}")?;
    }
    for n in 0..lines / 100 {
        writeln!(file, "U{n:09},{now},Unknown to the ledger,Completed,1.00,,")?;
    }

    let started = Instant::now();
    let import = services
        .reconciliation
        .import(
            NewImport {
                org,
                channel: channel.id,
                format: Some(hazina_providers::statements::Format::MpesaCsv),
                file_name: Some("bench.csv".to_owned()),
                bytes: file.as_bytes(),
                imported_by: "bench".to_owned(),
            },
            &(),
        )
        .await
        .map_err(|error| anyhow::anyhow!("{}: {error}", error.code().as_str()))?;
    let import_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(import.lines_new > 0, "nothing imported");
    let today = chrono::Utc::now().date_naive();
    let started = Instant::now();
    let run = services
        .reconciliation
        .run(&NewRun {
            org,
            channel: channel.id,
            from: today.pred_opt().context("a day before today")?,
            to: today.succ_opt().context("a day after today")?,
            rules: Rules::default(),
            dry_run: false,
            started_by: "bench".to_owned(),
        })
        .await
        .map_err(|error| anyhow::anyhow!("{}: {error}", error.code().as_str()))?;
    let run_seconds = started.elapsed().as_secs_f64();
    let result = ReconcileResult {
        lines: usize::try_from(import.lines_read).unwrap_or(0),
        setup_seconds,
        file_bytes: file.len(),
        import_seconds,
        run_seconds,
        total_seconds: import_seconds + run_seconds,
        matched: run.matched,
        unmatched_lines: run.unmatched_lines,
        unmatched_transfers: run.unmatched_items,
    };
    eprintln!(
        "{} lines ({} MB): import {:.1} s, run {:.1} s, together {:.1} s \
         ({} matched, {} lines and {} transfers unmatched); setup {:.0} s",
        result.lines,
        result.file_bytes / 1_000_000,
        result.import_seconds,
        result.run_seconds,
        result.total_seconds,
        result.matched,
        result.unmatched_lines,
        result.unmatched_transfers,
        result.setup_seconds
    );
    Ok(result)
}

/// An amount for line `n`, in minor units: varied, so that amount-and-date matching has to
/// choose among few candidates.
fn amount_of(n: usize) -> i64 {
    i64::try_from(n % 997_331).unwrap_or(0) * 7 + 100
}

fn check(outcome: Result<Outcome, hazina_ledger::pipeline::SubmitError>) -> anyhow::Result<()> {
    match outcome? {
        Outcome::Accepted { .. } => Ok(()),
        Outcome::Rejected(reason) => {
            anyhow::bail!("the ledger refused a transfer: {}", reason.code())
        }
    }
}
