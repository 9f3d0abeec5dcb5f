//! Importing a statement file: read into lines by `hazina_providers::statements`, checked
//! against the channel (its currency), and kept once per channel — a line another file
//! already brought is known, not added again — with the day's closing balances it states.
//! One transaction: a file is imported whole or not at all.

use chrono::{DateTime, NaiveDate, Utc};
use hazina_ledger::OrgId;
use hazina_providers::statements::{self, Format, LineStatus, ParseOptions, StatementFile};
use sha2::{Digest as _, Sha256};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::{ReconciliationError, Service, direction_name};
use crate::code::Code;
use crate::payments::Channel;

/// Lines written per `COPY` chunk, between progress reports.
const CHUNK_LINES: usize = 50_000;

/// A statement file to import.
#[derive(Debug)]
pub struct NewImport<'a> {
    pub org: OrgId,
    pub channel: Uuid,
    /// The format, or `None` to recognise it from the content.
    pub format: Option<Format>,
    pub file_name: Option<String>,
    pub bytes: &'a [u8],
    /// Who imports it (the key's id, or the CLI's operator).
    pub imported_by: String,
}

/// What an import did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportSummary {
    pub id: Uuid,
    pub channel: Uuid,
    pub format: String,
    pub file_name: Option<String>,
    /// SHA-256 of the file, hex.
    pub file_sha256: String,
    pub file_bytes: i64,
    /// Lines the file held.
    pub lines_read: i32,
    /// Lines new to the channel.
    pub lines_new: i32,
    /// Lines an earlier file already brought.
    pub lines_known: i32,
    /// Lines that moved no money (pending or failed on the statement).
    pub lines_skipped: i32,
    pub imported_by: String,
    pub created_at: DateTime<Utc>,
    /// The same file was imported before: this is that import, and nothing was added.
    pub replayed: bool,
}

/// Told of an import's progress (the CLI draws a bar with it). Every method has a default
/// that does nothing.
pub trait Progress: Send + Sync {
    /// The file was read into `lines` lines.
    fn parsed(&self, _lines: u64) {}
    /// `stored` of the lines are written.
    fn stored(&self, _stored: u64) {}
}

impl Progress for () {}

const COLUMNS: &str = "SELECT id, channel_id, format, file_name, file_sha256, file_bytes, lines_read, \
     lines_new, lines_known, lines_skipped, imported_by, created_at FROM statement_imports";

fn summary(row: &tokio_postgres::Row, replayed: bool) -> ImportSummary {
    let sha: Vec<u8> = row.get(4);
    ImportSummary {
        id: row.get(0),
        channel: row.get(1),
        format: row.get(2),
        file_name: row.get(3),
        file_sha256: hex(&sha),
        file_bytes: row.get(5),
        lines_read: row.get(6),
        lines_new: row.get(7),
        lines_known: row.get(8),
        lines_skipped: row.get(9),
        imported_by: row.get(10),
        created_at: row.get(11),
        replayed,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

impl Service {
    /// Imports a statement file into the channel's lines.
    ///
    /// # Errors
    ///
    /// `NotFound` for no such channel; `Invalid` with `statement_unreadable` for a file that is
    /// no statement we read (naming where), `statement_not_for_channel` for one in another
    /// currency; the database's.
    pub async fn import(
        &self,
        new: NewImport<'_>,
        progress: &dyn Progress,
    ) -> Result<ImportSummary, ReconciliationError> {
        let channel = self.channel(new.org, new.channel).await?;
        let sha = Sha256::digest(new.bytes).to_vec();
        if let Some(earlier) = self.import_by_digest(new.org, new.channel, &sha).await? {
            return Ok(earlier);
        }
        let format = match new.format {
            Some(format) => format,
            None => Format::detect(new.bytes).ok_or_else(|| {
                ReconciliationError::invalid(
                    Code::StatementUnreadable,
                    "the file is none of the statement formats read (mpesa_csv, mpesa_pull, \
                     momo_report, camt053, camt054, mt940); name its format",
                )
            })?,
        };
        let options = ParseOptions { currency: Some(channel.currency), ..ParseOptions::default() };
        let file = statements::parse(format, new.bytes, &options).map_err(|error| {
            ReconciliationError::invalid(
                Code::StatementUnreadable,
                format!("the {} file is unreadable: {error}", format.as_str()),
            )
        })?;
        check_currency(&file, &channel)?;
        progress.parsed(file.lines.len() as u64);
        self.store_import(&new, &channel, format, &sha, &file, progress).await
    }

    /// An earlier import of the same file into the channel.
    async fn import_by_digest(
        &self,
        org: OrgId,
        channel: Uuid,
        sha: &[u8],
    ) -> Result<Option<ImportSummary>, ReconciliationError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "{COLUMNS} WHERE org_id = $1 AND channel_id = $2 AND file_sha256 = $3
                     ORDER BY created_at LIMIT 1"
                ),
                &[&org.0, &channel, &sha],
            )
            .await?;
        Ok(row.map(|row| summary(&row, true)))
    }

    async fn store_import(
        &self,
        new: &NewImport<'_>,
        channel: &Channel,
        format: Format,
        sha: &[u8],
        file: &StatementFile,
        progress: &dyn Progress,
    ) -> Result<ImportSummary, ReconciliationError> {
        let org = new.org;
        let id = Uuid::now_v7();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Runs and resolutions of the channel wait for the import (and it for them), so that
        // a run sees a file whole or not at all.
        lock_channel(&tx, org, channel.id).await?;
        let read = i32::try_from(file.lines.len()).unwrap_or(i32::MAX);
        let skipped = file.lines.iter().filter(|line| line.status != LineStatus::Completed).count();
        let skipped = i32::try_from(skipped).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO statement_imports (org_id, id, channel_id, format, file_name,
                 file_sha256, file_bytes, lines_read, lines_new, lines_known, lines_skipped,
                 imported_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9, $10)",
            &[
                &org.0,
                &id,
                &channel.id,
                &format.as_str(),
                &new.file_name,
                &sha,
                &i64::try_from(new.bytes.len()).unwrap_or(i64::MAX),
                &read,
                &skipped,
                &new.imported_by,
            ],
        )
        .await?;
        let completed: Vec<_> =
            file.lines.iter().filter(|line| line.status == LineStatus::Completed).collect();
        // Most files bring only lines the channel has not seen: they are copied straight into
        // the channel's lines. A file that overlaps what is kept fails that on the first known
        // key, and is then copied aside and added but for the known lines.
        tx.batch_execute("SAVEPOINT direct_lines").await?;
        let new_lines =
            match copy_chunks(&tx, org, channel.id, id, &completed, "statement_lines", progress)
                .await
            {
                Ok(copied) => {
                    tx.batch_execute("RELEASE SAVEPOINT direct_lines").await?;
                    copied
                }
                Err(ReconciliationError::Database(error))
                    if error.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
                {
                    tx.batch_execute(
                        "ROLLBACK TO SAVEPOINT direct_lines;
                     CREATE TEMP TABLE import_lines (LIKE statement_lines INCLUDING DEFAULTS)
                         ON COMMIT DROP",
                    )
                    .await?;
                    copy_chunks(&tx, org, channel.id, id, &completed, "import_lines", progress)
                        .await?;
                    tx.execute(
                        "INSERT INTO statement_lines SELECT * FROM import_lines
                     ON CONFLICT (org_id, channel_id, key) DO NOTHING",
                        &[],
                    )
                    .await?
                }
                Err(error) => return Err(error),
            };
        let new_lines = i32::try_from(new_lines).unwrap_or(i32::MAX);
        let known = read - skipped - new_lines;
        store_balances(&tx, org, channel, id, file).await?;
        let row = tx
            .query_one(
                &format!(
                    "WITH updated AS (
                         UPDATE statement_imports SET lines_new = $3, lines_known = $4
                         WHERE org_id = $1 AND id = $2 RETURNING *
                     )
                     {}",
                    COLUMNS.replace("statement_imports", "updated")
                ),
                &[&org.0, &id, &new_lines, &known],
            )
            .await?;
        tx.commit().await?;
        Ok(summary(&row, false))
    }

    /// The channel's imports, newest first.
    ///
    /// # Errors
    ///
    /// The database's.
    pub async fn imports(
        &self,
        org: OrgId,
        channel: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ImportSummary>, ReconciliationError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "{COLUMNS} WHERE org_id = $1 AND ($2::uuid IS NULL OR channel_id = $2)
                     ORDER BY created_at DESC, id DESC LIMIT $3"
                ),
                &[&org.0, &channel, &limit.clamp(1, 1_000)],
            )
            .await?;
        Ok(rows.iter().map(|row| summary(row, false)).collect())
    }

    /// One import.
    ///
    /// # Errors
    ///
    /// `NotFound`; the database's.
    pub async fn import_summary(
        &self,
        org: OrgId,
        id: Uuid,
    ) -> Result<ImportSummary, ReconciliationError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(&format!("{COLUMNS} WHERE org_id = $1 AND id = $2"), &[&org.0, &id])
            .await?
            .ok_or(ReconciliationError::NotFound("import"))?;
        Ok(summary(&row, false))
    }
}

/// Holds the channel's reconciliation lock until the transaction ends: imports, runs and
/// resolutions of one channel take turns. `FOR NO KEY UPDATE` does not block the foreign key
/// checks of payments being recorded on the channel.
pub(super) async fn lock_channel(
    tx: &deadpool_postgres::Transaction<'_>,
    org: OrgId,
    channel: Uuid,
) -> Result<(), ReconciliationError> {
    tx.query_opt(
        "SELECT 1 FROM payment_channels WHERE org_id = $1 AND id = $2 FOR NO KEY UPDATE",
        &[&org.0, &channel],
    )
    .await?
    .ok_or(ReconciliationError::NotFound("channel"))?;
    Ok(())
}

/// Every amount and stated balance must be in the channel's currency: a file in another is
/// another account's.
fn check_currency(file: &StatementFile, channel: &Channel) -> Result<(), ReconciliationError> {
    let other = |currency: hazina_ledger::Currency| {
        ReconciliationError::invalid(
            Code::StatementNotForChannel,
            format!(
                "the statement is in {}, the channel in {}",
                currency.code(),
                channel.currency.code()
            ),
        )
    };
    for info in &file.statements {
        if let Some(currency) = info.currency
            && currency != channel.currency
        {
            return Err(other(currency));
        }
    }
    for line in &file.lines {
        if line.amount.currency() != channel.currency {
            return Err(other(line.amount.currency()));
        }
    }
    Ok(())
}

/// Copies `lines` into `table` in chunks, telling `progress` after each; returns the lines
/// copied.
async fn copy_chunks(
    tx: &deadpool_postgres::Transaction<'_>,
    org: OrgId,
    channel: Uuid,
    import: Uuid,
    lines: &[&statements::StatementLine],
    table: &str,
    progress: &dyn Progress,
) -> Result<u64, ReconciliationError> {
    let mut stored = 0_u64;
    for chunk in lines.chunks(CHUNK_LINES) {
        copy_lines(tx, org, channel, import, chunk, table).await?;
        stored += chunk.len() as u64;
        progress.stored(stored);
    }
    Ok(stored)
}

async fn copy_lines(
    tx: &deadpool_postgres::Transaction<'_>,
    org: OrgId,
    channel: Uuid,
    import: Uuid,
    lines: &[&statements::StatementLine],
    table: &str,
) -> Result<(), ReconciliationError> {
    let sink = tx
        .copy_in(&format!(
            "COPY {table} (org_id, channel_id, key, import_id, position, receipt, reference,
                 batch, direction, currency, amount_minor, fee_minor, is_fee, booked_at,
                 value_date, balance_after_minor, counterparty, description, reversal)
             FROM STDIN BINARY"
        ))
        .await?;
    let types = [
        Type::UUID,
        Type::UUID,
        Type::TEXT,
        Type::UUID,
        Type::INT4,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::BOOL,
        Type::TIMESTAMPTZ,
        Type::DATE,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::BOOL,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures_util::pin_mut!(writer);
    for line in lines {
        let amount = minor(&line.amount)?;
        let fee = line.fee.as_ref().map(minor).transpose()?.unwrap_or(0);
        let balance = line.balance_after.as_ref().map(minor).transpose()?;
        let position = i32::try_from(line.position).unwrap_or(i32::MAX);
        let is_fee = line.charge;
        let direction = match line.direction {
            statements::Direction::In => super::Direction::In,
            statements::Direction::Out => super::Direction::Out,
        };
        let row: [&(dyn ToSql + Sync); 19] = [
            &org.0,
            &channel,
            &line.key,
            &import,
            &position,
            &line.receipt,
            &line.reference,
            &line.batch,
            &direction_name(direction),
            &line.amount.currency().code(),
            &amount,
            &fee,
            &is_fee,
            &line.booked_at,
            &line.value_date,
            &balance,
            &line.counterparty,
            &line.description,
            &line.reversal,
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    Ok(())
}

fn minor(money: &hazina_ledger::Money) -> Result<i64, ReconciliationError> {
    money.to_minor().map_err(|error| {
        ReconciliationError::invalid(Code::StatementUnreadable, format!("an amount: {error}"))
    })
}

/// The day closing balances the file states: each statement's closing balance on its date,
/// and otherwise the balance after each day's last line (in booking order). A later import's
/// figure for a day replaces an earlier one's.
async fn store_balances(
    tx: &deadpool_postgres::Transaction<'_>,
    org: OrgId,
    channel: &Channel,
    import: Uuid,
    file: &StatementFile,
) -> Result<(), ReconciliationError> {
    let mut days: std::collections::BTreeMap<NaiveDate, (DateTime<Utc>, u32, i64)> =
        std::collections::BTreeMap::new();
    for line in &file.lines {
        let Some(balance) = &line.balance_after else { continue };
        if line.status != LineStatus::Completed {
            continue;
        }
        let balance = minor(balance)?;
        let day = line.booked_at.date_naive();
        let later = days
            .get(&day)
            .is_none_or(|(at, position, _)| (line.booked_at, line.position) >= (*at, *position));
        if later {
            days.insert(day, (line.booked_at, line.position, balance));
        }
    }
    let mut closing: std::collections::BTreeMap<NaiveDate, i64> =
        days.into_iter().map(|(day, (_, _, balance))| (day, balance)).collect();
    for info in &file.statements {
        if let (Some(balance), Some(day)) = (&info.closing, info.closing_date) {
            closing.insert(day, minor(balance)?);
        }
    }
    if closing.is_empty() {
        return Ok(());
    }
    let (days, balances): (Vec<NaiveDate>, Vec<i64>) = closing.into_iter().unzip();
    tx.execute(
        "INSERT INTO statement_balances (org_id, channel_id, day, currency, closing_minor,
             import_id)
         SELECT $1, $2, d.day, $3, d.closing, $4
         FROM UNNEST($5::date[], $6::int8[]) AS d (day, closing)
         ON CONFLICT (org_id, channel_id, day) DO UPDATE
             SET closing_minor = EXCLUDED.closing_minor, import_id = EXCLUDED.import_id",
        &[&org.0, &channel.id, &channel.currency.code(), &import, &days, &balances],
    )
    .await?;
    Ok(())
}
