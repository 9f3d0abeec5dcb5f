//! The finance commands of the CLI: `hazina reconcile import|run` and `hazina payments
//! stuck|settle`, over the same services the HTTP API calls.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use hazina_providers::statements::Format;
use indicatif::{ProgressBar, ProgressStyle};

use crate::app::Services;
use crate::config::{PaymentsCommand, ReconcileCommand};
use crate::payments::{ManualSettlement, PaymentError, Settlement};
use crate::reconciliation::{NewImport, NewRun, Progress, ReconciliationError, Rules};
use crate::tenancy;

/// Draws an import's progress on stderr: a spinner while the file is read, then a bar of the
/// lines written.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn parsed(&self, lines: u64) {
        self.0.set_length(lines);
        self.0.set_position(0);
        self.0.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} lines ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        self.0.set_message("storing");
    }

    fn stored(&self, stored: u64) {
        self.0.set_position(stored);
    }
}

fn failed(error: &ReconciliationError) -> anyhow::Error {
    anyhow::anyhow!("{}: {error}", error.code().as_str())
}

fn payment_failed(error: &PaymentError) -> anyhow::Error {
    anyhow::anyhow!("{}: {error}", error.code().as_str())
}

/// `hazina reconcile …`.
///
/// # Errors
///
/// A refusal as `code: why`, or what failed.
pub async fn reconcile(services: &Services, command: &ReconcileCommand) -> anyhow::Result<()> {
    let only_org = |org| async move {
        tenancy::only_org(&services.pool, org)
            .await
            .map_err(|error| anyhow::anyhow!("{}: {error}", error.code().as_str()))
    };
    let mut stdout = std::io::stdout().lock();
    match command {
        ReconcileCommand::Import { file, channel, format, org } => {
            let org = only_org(*org).await?;
            let format = format
                .as_deref()
                .map(|name| {
                    Format::from_name(name).with_context(|| format!("no statement format {name}"))
                })
                .transpose()?;
            let bar = ProgressBar::new_spinner();
            bar.set_message(format!("reading {}", file.display()));
            bar.enable_steady_tick(Duration::from_millis(120));
            let path = file.clone();
            let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
                .await?
                .with_context(|| format!("could not read {}", file.display()))?;
            let progress = Bar(bar);
            let summary = services
                .reconciliation
                .import(
                    NewImport {
                        org,
                        channel: *channel,
                        format,
                        file_name: file.file_name().map(|name| name.to_string_lossy().into_owned()),
                        bytes: &bytes,
                        imported_by: "cli".to_owned(),
                    },
                    &progress,
                )
                .await
                .map_err(|error| failed(&error));
            progress.0.finish_and_clear();
            let summary = summary?;
            writeln!(
                stdout,
                "import {} ({}): {} lines read, {} new, {} known, {} skipped{}",
                summary.id,
                summary.format,
                summary.lines_read,
                summary.lines_new,
                summary.lines_known,
                summary.lines_skipped,
                if summary.replayed { " (this file was imported before)" } else { "" }
            )?;
        }
        ReconcileCommand::Run { channel, from, to, date_tolerance_days, dry_run, org } => {
            let org = only_org(*org).await?;
            let run = NewRun {
                org,
                channel: *channel,
                from: *from,
                to: *to,
                rules: Rules { date_tolerance_days: *date_tolerance_days, ..Rules::default() },
                dry_run: *dry_run,
                started_by: "cli".to_owned(),
            };
            let summary =
                services.reconciliation.run(&run).await.map_err(|error| failed(&error))?;
            writeln!(stdout, "{}", serde_json::to_string_pretty(&summary)?)?;
        }
    }
    Ok(())
}

/// `hazina payments …`.
///
/// # Errors
///
/// A refusal as `code: why`, or what failed.
pub async fn payments(services: &Services, command: &PaymentsCommand) -> anyhow::Result<()> {
    let only_org = |org| async move {
        tenancy::only_org(&services.pool, org)
            .await
            .map_err(|error| anyhow::anyhow!("{}: {error}", error.code().as_str()))
    };
    let mut stdout = std::io::stdout().lock();
    match command {
        PaymentsCommand::Stuck { older_than_seconds, org } => {
            let org = only_org(*org).await?;
            let stuck = services
                .payments
                .stuck(org, Duration::from_secs(*older_than_seconds), 1_000)
                .await
                .map_err(|error| payment_failed(&error))?;
            for record in &stuck {
                writeln!(
                    stdout,
                    "{}  {}  {}  {} {}  {}  since {}",
                    record.id,
                    record.flow.as_str(),
                    record.status,
                    record.amount.currency().code(),
                    record.amount.amount(),
                    record.msisdn,
                    record.created_at
                )?;
            }
            writeln!(stdout, "{} stuck", stuck.len())?;
        }
        PaymentsCommand::Settle { payment_id, outcome, reason, by, receipt, org } => {
            let org = only_org(*org).await?;
            let settlement = match outcome.as_str() {
                "success" => Settlement::Succeeded { receipt: receipt.clone() },
                "failed" => Settlement::Failed,
                other => anyhow::bail!("no outcome {other}: success or failed"),
            };
            let decision = ManualSettlement {
                settlement,
                reason: reason.clone(),
                decided_by: format!("cli {by}"),
                source: "operator",
            };
            let record = services
                .payments
                .settle_by_hand(org, *payment_id, &decision)
                .await
                .map_err(|error| payment_failed(&error))?;
            writeln!(stdout, "payment {}: {}", record.id, record.status)?;
        }
    }
    Ok(())
}
