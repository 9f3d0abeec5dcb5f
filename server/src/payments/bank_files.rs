//! A bank channel's file exchange: queued payouts cut into one pain.001 file per cut-off (or on
//! demand), written atomically into the channel's `out/` directory; the bank's pain.002 and
//! camt.054 files read from `in/`, once per digest, to post, void or hold payouts and to record
//! collections; and the worker's round over every bank channel.
//!
//! The directory is the operator's (`Settings::bank_exchange_dir`), one folder per channel id:
//! `out/` (what an SFTP agent or bank connector takes), `in/` (what it brings back), and
//! `in/processed/` and `in/unreadable/` (where read files are moved).
//!
//! A file is recorded before it is written: its row, its payments' membership and their move
//! to `pending_confirmation` commit together, and the file on disk is written from that row
//! afterwards (temp file, fsync, rename). A crash between the two leaves a `prepared` row that
//! the next round writes again — the same name, message id and payments, byte for byte — so no
//! payment is lost and none goes into a second file.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use hazina_ledger::rules::AccountKind;
use hazina_ledger::{AccountId, CustomerId, Money, OrgId};
use hazina_providers::iso20022::bank::{self, Booking, Inbound};
use hazina_providers::iso20022::camt::Statement;
use hazina_providers::iso20022::pain001::{self, Debtor, PayoutBatch, Transfer};
use hazina_providers::iso20022::pain002::PaymentStatusReport;
use hazina_providers::lifecycle::Event;
use hazina_providers::{Status, StatusReport};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::bank::{BankDetails, CreditorAccount};
use super::{
    Channel, Engine, PaymentError, PaymentStatus, Provider, Record, Stage, insert_event, tell,
};
use crate::code::Code;
use crate::events::EventType;

/// Most payouts one file carries; a cut-off with more cuts several files.
pub const FILE_PAYMENTS_MAX: i64 = 10_000;
/// Most files a listing shows, newest first.
pub const FILES_LISTED_MAX: i64 = 100;

/// Why a file was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutReason {
    /// The channel's schedule.
    CutOff,
    /// Asked for through a front door ("cut a file now").
    OnDemand,
}

impl CutReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::CutOff => "cut_off",
            Self::OnDemand => "on_demand",
        }
    }
}

/// A pain.001 file as recorded, with how its payments stand.
#[derive(Clone, Debug)]
pub struct BankFile {
    pub id: Uuid,
    pub channel: Uuid,
    pub message_id: String,
    pub file_name: String,
    pub payment_count: i32,
    pub control_sum: Money,
    pub execution_date: NaiveDate,
    /// `cut_off` or `on_demand`.
    pub reason: String,
    /// `prepared` (recorded, not yet on disk) or `written`.
    pub status: String,
    /// The bank's group status from its pain.002, once it answered.
    pub bank_status: Option<String>,
    pub created_at: DateTime<Utc>,
    pub written_at: Option<DateTime<Utc>>,
    /// Its payments posted, voided, and neither yet.
    pub posted: i64,
    pub voided: i64,
    pub open: i64,
}

const FILE_COLUMNS: &str = "f.id, f.channel_id, f.message_id, f.file_name, f.payment_count, \
    f.currency, f.control_sum_minor, f.execution_date, f.reason, f.status, f.bank_status, \
    f.created_at, f.written_at";

/// How the payments of a file stand, beside its columns.
const FILE_COUNTS: &str = "LATERAL (SELECT count(*) FILTER (WHERE p.settled = 'posted'),
        count(*) FILTER (WHERE p.settled = 'voided'), count(*) FILTER (WHERE p.settled IS NULL)
    FROM bank_file_payments m JOIN provider_payments p
        ON p.org_id = m.org_id AND p.id = m.payment_id
    WHERE m.org_id = f.org_id AND m.file_id = f.id) AS c (posted, voided, open)";

impl BankFile {
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, PaymentError> {
        let currency = super::error::stored_currency(row.get(5))?;
        Ok(Self {
            id: row.get(0),
            channel: row.get(1),
            message_id: row.get(2),
            file_name: row.get(3),
            payment_count: row.get(4),
            control_sum: Money::from_minor(currency, row.get(6)),
            execution_date: row.get(7),
            reason: row.get(8),
            status: row.get(9),
            bank_status: row.get(10),
            created_at: row.get(11),
            written_at: row.get(12),
            posted: row.get(13),
            voided: row.get(14),
            open: row.get(15),
        })
    }
}

/// What reading one inbound file did.
#[derive(Clone, Debug, Default)]
struct Applied {
    applied: i32,
    exceptions: Vec<String>,
}

impl Applied {
    fn exception(&mut self, what: String) {
        tracing::warn!(exception = what.as_str(), "a bank file's line moved no money");
        self.exceptions.push(what);
    }
}

/// Where a collection goes: a wallet or purse its reference names, else the receiving purse.
struct CreditTarget {
    account: AccountId,
    customer: Option<CustomerId>,
    party: serde_json::Value,
}

impl Engine {
    /// The channel's folder in the exchange directory.
    fn exchange_dir(&self, channel: Uuid) -> PathBuf {
        self.settings().bank_exchange_dir.join(channel.to_string())
    }

    /// The org's bank channel and its details.
    async fn bank_channel(
        &self,
        org: OrgId,
        id: Uuid,
    ) -> Result<(Channel, BankDetails), PaymentError> {
        let channel = self.channel(org, id).await?.ok_or(PaymentError::NotFound("channel"))?;
        if channel.provider != Provider::Bank {
            return Err(PaymentError::invalid(
                Code::NotSupported,
                "only bank channels exchange files with a bank",
            ));
        }
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT debtor_name, bic, cut_offs, utc_offset_minutes FROM bank_channels
                 WHERE org_id = $1 AND channel_id = $2",
                &[&org.0, &id],
            )
            .await?
            .ok_or_else(|| PaymentError::Corrupt("a bank channel without its details".into()))?;
        Ok((channel, BankDetails::from_row(&row, 0)))
    }

    /// The channel's bank details, for a channel's view (none for other providers).
    ///
    /// # Errors
    ///
    /// The database's failures.
    pub async fn bank_details(
        &self,
        org: OrgId,
        channel: Uuid,
    ) -> Result<Option<BankDetails>, PaymentError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT debtor_name, bic, cut_offs, utc_offset_minutes FROM bank_channels
                 WHERE org_id = $1 AND channel_id = $2",
                &[&org.0, &channel],
            )
            .await?;
        Ok(row.map(|row| BankDetails::from_row(&row, 0)))
    }

    /// Cuts a file of the channel's queued payouts now and writes it into `out/`; `None` when
    /// none is queued.
    ///
    /// # Errors
    ///
    /// `NotFound` for a channel the org does not have; `Invalid` `not_supported` for a channel
    /// that is not a bank's; the database's failures, and the file system's as `Corrupt`
    /// (the file stays recorded and is written by the worker's next round).
    pub async fn cut_bank_file(
        &self,
        org: OrgId,
        channel: Uuid,
    ) -> Result<Option<BankFile>, PaymentError> {
        let (channel, details) = self.bank_channel(org, channel).await?;
        let Some(file) = self.record_bank_file(&channel, &details, CutReason::OnDemand).await?
        else {
            return Ok(None);
        };
        self.write_bank_file(&channel, &details, file).await?;
        self.bank_file(org, file).await.map(Some)
    }

    /// One of the channel's files.
    async fn bank_file(&self, org: OrgId, id: Uuid) -> Result<BankFile, PaymentError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &format!(
                    "SELECT {FILE_COLUMNS}, c.posted, c.voided, c.open FROM bank_files f,
                     {FILE_COUNTS} WHERE f.org_id = $1 AND f.id = $2"
                ),
                &[&org.0, &id],
            )
            .await?;
        BankFile::from_row(&row)
    }

    /// The channel's files, newest first (at most [`FILES_LISTED_MAX`]).
    ///
    /// # Errors
    ///
    /// As [`Engine::cut_bank_file`], without the file system.
    pub async fn list_bank_files(
        &self,
        org: OrgId,
        channel: Uuid,
    ) -> Result<Vec<BankFile>, PaymentError> {
        self.bank_channel(org, channel).await?;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {FILE_COLUMNS}, c.posted, c.voided, c.open FROM bank_files f,
                     {FILE_COUNTS} WHERE f.org_id = $1 AND f.channel_id = $2
                     ORDER BY f.created_at DESC, f.id DESC LIMIT $3"
                ),
                &[&org.0, &channel, &FILES_LISTED_MAX],
            )
            .await?;
        rows.iter().map(BankFile::from_row).collect()
    }

    /// Records a file of the channel's queued payouts: its row, their membership and their
    /// move to `pending_confirmation`, in one transaction; the file's id, or `None` when none
    /// is queued. A cut-off notes that it was taken even when nothing was queued.
    async fn record_bank_file(
        &self,
        channel: &Channel,
        details: &BankDetails,
        reason: CutReason,
    ) -> Result<Option<Uuid>, PaymentError> {
        let org = channel.org;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // One cut of a channel at a time (the worker, the API, other processes): a second waits
        // here, then finds the payouts the first took already in its file.
        let now: DateTime<Utc> = tx
            .query_one(
                "SELECT now() FROM bank_channels WHERE org_id = $1 AND channel_id = $2 FOR UPDATE",
                &[&org.0, &channel.id],
            )
            .await?
            .get(0);
        if reason == CutReason::CutOff {
            tx.execute(
                "UPDATE bank_channels SET last_cut_off_at = $3 WHERE org_id = $1 AND channel_id = $2",
                &[&org.0, &channel.id, &now],
            )
            .await?;
        }
        let rows = tx
            .query(
                &format!(
                    "SELECT {} FROM provider_payments p
                     WHERE org_id = $1 AND channel_id = $2 AND flow = 'payout' AND stage = 'sending'
                         AND settled IS NULL
                         AND NOT EXISTS (SELECT 1 FROM bank_file_payments m
                             WHERE m.org_id = $1 AND m.payment_id = p.id)
                     ORDER BY created_at, id LIMIT $3 FOR UPDATE",
                    Record::COLUMNS
                ),
                &[&org.0, &channel.id, &FILE_PAYMENTS_MAX],
            )
            .await?;
        let queued: Vec<Record> = rows.iter().map(Record::from_row).collect::<Result<_, _>>()?;
        // A payout whose creditor cannot be written (never, unless the row was changed by
        // hand) stays out of the file and is refused below, after the file commits.
        let (good, bad): (Vec<&Record>, Vec<&Record>) = queued.iter().partition(|record| {
            CreditorAccount::of(record).is_ok() && record.amount.currency() == channel.currency
        });
        if good.is_empty() {
            tx.commit().await?;
            self.refuse_unwritable(org, &bad).await?;
            return Ok(None);
        }
        let mut control_sum = Money::zero(channel.currency);
        for record in &good {
            control_sum = control_sum
                .checked_add(&record.amount)
                .map_err(|error| PaymentError::invalid(Code::InvalidAmount, error.to_string()))?;
        }
        let control_sum_minor = control_sum
            .to_minor()
            .map_err(|error| PaymentError::invalid(Code::InvalidAmount, error.to_string()))?;
        let id = Uuid::now_v7();
        // `Max35Text`: "HZ" and 32 hex digits.
        let message_id = format!("HZ{}", id.simple());
        let file_name = format!("{message_id}.xml");
        let ids: Vec<Uuid> = good.iter().map(|record| record.id).collect();
        let count = i32::try_from(ids.len()).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO bank_files (org_id, id, channel_id, message_id, file_name,
                 payment_count, currency, control_sum_minor, execution_date, reason, status,
                 created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'prepared', $11)",
            &[
                &org.0,
                &id,
                &channel.id,
                &message_id,
                &file_name,
                &count,
                &channel.currency.code(),
                &control_sum_minor,
                &details.execution_date(now),
                &reason.as_str(),
                &now,
            ],
        )
        .await?;
        tx.execute(
            "INSERT INTO bank_file_payments (org_id, payment_id, file_id)
             SELECT $1, payment_id, $3 FROM unnest($2::uuid[]) AS payment_id",
            &[&org.0, &ids, &id],
        )
        .await?;
        let said = format!("in bank file {file_name}");
        self.mark_in_file(&tx, org, &ids, &message_id, &said).await?;
        tx.commit().await?;
        tracing::info!(channel = %channel.id, file = file_name.as_str(), payments = count,
            "bank file recorded");
        self.refuse_unwritable(org, &bad).await?;
        Ok(Some(id))
    }

    /// Moves the payouts put in a file to `pending_confirmation`, with the file's message id as
    /// their request reference, in the file's transaction, and tells apps.
    async fn mark_in_file(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        org: OrgId,
        ids: &[Uuid],
        message_id: &str,
        said: &str,
    ) -> Result<(), PaymentError> {
        let rows = tx
            .query(
                &format!(
                    "UPDATE provider_payments SET stage = 'sent', status = 'pending_confirmation',
                         request_reference = $3, provider_description = $4,
                         next_attempt_at = now() + make_interval(secs => $5),
                         updated_at = now()
                     WHERE org_id = $1 AND id = ANY($2) RETURNING {}",
                    Record::COLUMNS
                ),
                // Nothing to ask the bank: its files settle the payment. The worker only looks
                // at it again at the longest interval (an unsettled payment is always due
                // some time, migration 0008).
                &[
                    &org.0,
                    &ids,
                    &message_id,
                    &said,
                    &self.settings().query_interval_max.as_secs_f64(),
                ],
            )
            .await?;
        for row in &rows {
            let record = Record::from_row(row)?;
            let status = PaymentStatus::PendingConfirmation;
            insert_event(tx, org, record.id, status, "file", None, Some(said)).await?;
            tell(tx, &record, EventType::PaymentStatusChanged, Some(PaymentStatus::Queued)).await?;
        }
        Ok(())
    }

    /// Voids payouts a file cannot carry.
    async fn refuse_unwritable(&self, org: OrgId, records: &[&Record]) -> Result<(), PaymentError> {
        for record in records {
            tracing::error!(payment = %record.id, "a bank payout cannot be written to a file");
            let event = Event::Refused { code: "invalid_creditor".to_owned() };
            let said = Some("the payout's creditor or currency cannot go in a bank file");
            self.apply(org, record.id, &event, Stage::Sent, "file", said).await?;
        }
        Ok(())
    }

    /// Writes a recorded file into `out/` (again, after a crash: the same bytes) and marks it
    /// written. The file's row is locked meanwhile, so that two writers (the API's cut and the
    /// worker, or two processes) never both put it in `out/`: the second finds it written.
    async fn write_bank_file(
        &self,
        channel: &Channel,
        details: &BankDetails,
        id: Uuid,
    ) -> Result<(), PaymentError> {
        let org = channel.org;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT message_id, file_name, created_at, execution_date FROM bank_files
                 WHERE org_id = $1 AND id = $2 AND status = 'prepared' FOR UPDATE",
                &[&org.0, &id],
            )
            .await?;
        let Some(row) = row else { return Ok(()) };
        let (message_id, file_name): (String, String) = (row.get(0), row.get(1));
        let rows = tx
            .query(
                &format!(
                    "SELECT {} FROM provider_payments WHERE org_id = $1 AND id IN
                         (SELECT payment_id FROM bank_file_payments WHERE org_id = $1 AND file_id = $2)
                     ORDER BY id",
                    Record::COLUMNS
                ),
                &[&org.0, &id],
            )
            .await?;
        let mut transfers = Vec::with_capacity(rows.len());
        for row in &rows {
            let record = Record::from_row(row)?;
            let creditor = CreditorAccount::of(&record).map_err(PaymentError::Corrupt)?;
            let narration = record.request.get("narration").and_then(|n| n.as_str());
            transfers.push(Transfer {
                end_to_end_id: record.our_reference.clone(),
                amount: record.amount,
                creditor_name: creditor.name,
                creditor_iban: creditor.account,
                creditor_bic: creditor.bic,
                remittance: narration
                    .map(|text| text.chars().take(pain001::REMITTANCE_CHARS_MAX).collect()),
            });
        }
        let batch = PayoutBatch {
            message_id,
            created_at: row.get(2),
            debtor: Debtor {
                name: details.debtor_name.clone(),
                iban: channel.number.clone(),
                bic: details.bic.clone(),
            },
            execution_date: row.get(3),
            transfers,
        };
        let xml =
            pain001::build(&batch).map_err(|error| PaymentError::Corrupt(error.to_string()))?;
        let out = self.exchange_dir(channel.id).join("out");
        let written = tokio::task::spawn_blocking(move || write_atomically(&out, &file_name, &xml))
            .await
            .map_err(|error| PaymentError::Corrupt(error.to_string()))?;
        written.map_err(|error| {
            tracing::error!(file = %id, error = %error, "a bank file could not be written");
            PaymentError::Corrupt(format!("the bank file could not be written: {error}"))
        })?;
        tx.execute(
            "UPDATE bank_files SET status = 'written', written_at = now()
             WHERE org_id = $1 AND id = $2",
            &[&org.0, &id],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The worker's round over every bank channel: a file cut at each channel's due cut-off,
    /// recorded files written, and inbound files read. A channel that fails is logged and the
    /// others go on. Whether a batch was full (never: each round takes every channel).
    ///
    /// # Errors
    ///
    /// The database's failures listing the channels.
    pub async fn run_bank_exchange(&self) -> Result<bool, PaymentError> {
        for (org, id) in self.bank_channels().await? {
            if let Err(error) = self.exchange_channel(org, id).await {
                tracing::warn!(channel = %id, code = %error.code(),
                    error = %crate::error_chain(&error), "a bank channel's exchange failed");
            }
        }
        Ok(false)
    }

    /// Every org's bank channels.
    ///
    /// Across orgs by nature (the worker serves every org's bank channels): it only reads and
    /// names the channels; each is then handled with statements of its org.
    async fn bank_channels(&self) -> Result<Vec<(OrgId, Uuid)>, PaymentError> {
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT org_id, channel_id FROM bank_channels ORDER BY org_id, channel_id", &[])
            .await?;
        Ok(rows.iter().map(|row| (OrgId(row.get(0)), row.get(1))).collect())
    }

    async fn exchange_channel(&self, org: OrgId, id: Uuid) -> Result<(), PaymentError> {
        let (channel, details) = self.bank_channel(org, id).await?;
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT last_cut_off_at, now() FROM bank_channels
                 WHERE org_id = $1 AND channel_id = $2",
                &[&org.0, &id],
            )
            .await?;
        drop(client);
        let (last, now): (DateTime<Utc>, DateTime<Utc>) = (row.get(0), row.get(1));
        if details.next_cut_off(last) <= now {
            // A backlog past one file's size is cut into several at the same cut-off.
            let mut reason = CutReason::CutOff;
            while let Some(file) = self.record_bank_file(&channel, &details, reason).await? {
                self.write_bank_file(&channel, &details, file).await?;
                let full: i32 = self.bank_file(org, file).await?.payment_count;
                if i64::from(full) < FILE_PAYMENTS_MAX {
                    break;
                }
                reason = CutReason::OnDemand;
            }
        }
        let client = self.pool.get().await?;
        let prepared = client
            .query(
                "SELECT id FROM bank_files WHERE org_id = $1 AND channel_id = $2
                     AND status = 'prepared' ORDER BY id",
                &[&org.0, &id],
            )
            .await?;
        drop(client);
        for row in &prepared {
            self.write_bank_file(&channel, &details, row.get(0)).await?;
        }
        self.read_inbound(&channel).await
    }

    /// Reads every file in the channel's `in/` (oldest name first), each once by its digest,
    /// moving it to `in/processed/` or `in/unreadable/` once recorded.
    async fn read_inbound(&self, channel: &Channel) -> Result<(), PaymentError> {
        let inbound = self.exchange_dir(channel.id).join("in");
        let listed = tokio::task::spawn_blocking({
            let inbound = inbound.clone();
            move || inbound_files(&inbound)
        })
        .await
        .map_err(|error| PaymentError::Corrupt(error.to_string()))?;
        let files = match listed {
            Ok(files) => files,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(PaymentError::Corrupt(format!("cannot list {error}"))),
        };
        for path in files {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            let read = tokio::task::spawn_blocking({
                let path = path.clone();
                move || std::fs::read(path)
            })
            .await
            .map_err(|error| PaymentError::Corrupt(error.to_string()))?;
            let bytes = match read {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::warn!(file = name.as_str(), error = %error, "cannot read a bank file");
                    continue;
                }
            };
            let status = match self.take_inbound(channel, &name, &bytes).await {
                Ok(status) => status,
                Err(error) => {
                    // Recorded as `processing`: read again next round, every step idempotent.
                    tracing::warn!(file = name.as_str(), code = %error.code(),
                        error = %crate::error_chain(&error), "a bank file could not be applied");
                    continue;
                }
            };
            let aside = if status == "unreadable" { "unreadable" } else { "processed" };
            let target = inbound.join(aside);
            let moved = tokio::task::spawn_blocking(move || move_into(&path, &target)).await;
            if !matches!(moved, Ok(Ok(()))) {
                // Recorded by its digest, so it is not applied again; the move is tried again.
                tracing::warn!(file = name.as_str(), "a read bank file could not be moved aside");
            }
        }
        Ok(())
    }

    /// Records and applies one inbound file; its recorded status. The same bytes again change
    /// nothing (unless a crash stopped them midway: each step is idempotent, so they are
    /// applied again to the end).
    async fn take_inbound(
        &self,
        channel: &Channel,
        name: &str,
        bytes: &[u8],
    ) -> Result<String, PaymentError> {
        let org = channel.org;
        let digest = hex(&Sha256::digest(bytes));
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "WITH inserted AS (
                     INSERT INTO bank_inbound_files (org_id, id, channel_id, digest, file_name,
                         status)
                     VALUES ($1, $2, $3, $4, $5, 'processing')
                     ON CONFLICT (org_id, channel_id, digest) DO NOTHING RETURNING id, status)
                 SELECT id, status FROM inserted
                 UNION ALL
                 SELECT id, status FROM bank_inbound_files
                 WHERE org_id = $1 AND channel_id = $3 AND digest = $4
                 LIMIT 1",
                &[&org.0, &Uuid::now_v7(), &channel.id, &digest, &name],
            )
            .await?;
        drop(client);
        let (id, status): (Uuid, String) = (row.get(0), row.get(1));
        if status != "processing" {
            tracing::info!(file = name, status = status.as_str(), "a bank file read before");
            return Ok(status);
        }
        let read = std::str::from_utf8(bytes)
            .map_err(|error| error.to_string())
            .and_then(|xml| bank::read(xml).map_err(|error| error.to_string()));
        let inbound = match read {
            Ok(inbound) => inbound,
            Err(why) => {
                tracing::warn!(file = name, why = why.as_str(), "an unreadable bank file");
                let client = self.pool.get().await?;
                client
                    .execute(
                        "UPDATE bank_inbound_files SET status = 'unreadable', detail = $3,
                             processed_at = now() WHERE org_id = $1 AND id = $2",
                        &[&org.0, &id, &why],
                    )
                    .await?;
                return Ok("unreadable".to_owned());
            }
        };
        let mut applied = Applied::default();
        let mut status = "processed";
        match &inbound {
            Inbound::StatusReport(report) => {
                self.apply_status_report(channel, report, &mut applied).await?;
            }
            Inbound::Account(document) => {
                let ours: Vec<&Statement> =
                    document.statements.iter().filter(|s| for_account(s, channel)).collect();
                if ours.is_empty() {
                    status = "refused";
                    applied.exception(format!(
                        "{} is for another account than {}",
                        document.message_name, channel.number
                    ));
                }
                for (index, statement) in ours.into_iter().enumerate() {
                    let key = format!("{}/{}/{index}", document.message_id, statement.id);
                    self.apply_bookings(channel, statement, &key, &mut applied).await?;
                }
            }
        }
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE bank_inbound_files SET status = $3, message_name = $4, message_id = $5,
                     applied = $6, exceptions = $7, processed_at = now()
                 WHERE org_id = $1 AND id = $2",
                &[
                    &org.0,
                    &id,
                    &status,
                    &inbound.message_name(),
                    &inbound.message_id(),
                    &applied.applied,
                    &serde_json::json!(applied.exceptions),
                ],
            )
            .await?;
        tracing::info!(
            file = name,
            status,
            applied = applied.applied,
            exceptions = applied.exceptions.len(),
            "a bank file read"
        );
        Ok(status.to_owned())
    }

    /// A pain.002: each transaction's status applied to the payout of its end-to-end id in the
    /// file it answers; a report for the whole file to every payout in it.
    async fn apply_status_report(
        &self,
        channel: &Channel,
        report: &PaymentStatusReport,
        applied: &mut Applied,
    ) -> Result<(), PaymentError> {
        let org = channel.org;
        let client = self.pool.get().await?;
        let updated = client
            .execute(
                "UPDATE bank_files SET bank_status = $4
                 WHERE org_id = $1 AND channel_id = $2 AND message_id = $3",
                &[&org.0, &channel.id, &report.original_message_id, &report.group_status],
            )
            .await?;
        if updated == 0 {
            applied.exception(format!(
                "the status report answers {}, which is not one of this channel's files",
                report.original_message_id
            ));
            return Ok(());
        }
        for status in report.status_reports() {
            let payments = match &status.our_reference {
                Some(reference) => {
                    let rows = client
                        .query(
                            "SELECT p.id FROM provider_payments p JOIN bank_file_payments m
                                 ON m.org_id = p.org_id AND m.payment_id = p.id
                             JOIN bank_files f ON f.org_id = m.org_id AND f.id = m.file_id
                             WHERE p.org_id = $1 AND p.channel_id = $2 AND p.our_reference = $3
                                 AND f.message_id = $4",
                            &[&org.0, &channel.id, reference, &report.original_message_id],
                        )
                        .await?;
                    if rows.is_empty() {
                        applied.exception(format!(
                            "end-to-end id {reference} is not in file {}",
                            report.original_message_id
                        ));
                    }
                    rows
                }
                None => {
                    client
                        .query(
                            "SELECT m.payment_id FROM bank_file_payments m JOIN bank_files f
                                 ON f.org_id = m.org_id AND f.id = m.file_id
                             WHERE m.org_id = $1 AND f.channel_id = $2 AND f.message_id = $3",
                            &[&org.0, &channel.id, &report.original_message_id],
                        )
                        .await?
                }
            };
            for row in &payments {
                self.apply_bank_report(org, row.get(0), status.clone(), applied).await?;
            }
        }
        Ok(())
    }

    /// A report from the bank's files about one payout, applied as the bank's trusted word: it
    /// moves money only when it agrees with the payout (its amount and currency), and holds it
    /// for review otherwise.
    async fn apply_bank_report(
        &self,
        org: OrgId,
        id: Uuid,
        report: StatusReport,
        applied: &mut Applied,
    ) -> Result<(), PaymentError> {
        let before = self.read(org, id).await?;
        let updated =
            self.apply(org, id, &Event::StatusReply(report), Stage::Sent, "file", None).await?;
        applied.applied += 1;
        if updated.stage == Stage::Review && before.stage != Stage::Review {
            applied.exception(format!(
                "payment {id} held for review: {}",
                updated.alert.as_deref().unwrap_or("the bank disagrees")
            ));
        }
        Ok(())
    }

    /// A camt statement's bookings: debits with our end-to-end ids settle payouts, credits are
    /// recorded as received payments.
    async fn apply_bookings(
        &self,
        channel: &Channel,
        statement: &Statement,
        key: &str,
        applied: &mut Applied,
    ) -> Result<(), PaymentError> {
        let org = channel.org;
        for (index, booking) in bank::bookings(statement).into_iter().enumerate() {
            if booking.is_collection() {
                self.take_credit(channel, &booking, &format!("{key}/{index}"), applied).await?;
                continue;
            }
            let Some(reference) = &booking.end_to_end_id else {
                // A reversal here undoes a credit (money that came in going back out): a
                // received payment is never unwound by itself, its money may be spent.
                if booking.reversal || booking.side == hazina_providers::iso20022::camt::Side::Debit
                {
                    applied.exception(format!(
                        "a {} of {} ({}) without an end-to-end id: settle it by hand",
                        if booking.reversal { "reversal" } else { "debit" },
                        describe(booking.amount),
                        booking.bank_reference.as_deref().unwrap_or("no bank reference"),
                    ));
                }
                continue;
            };
            let client = self.pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT id FROM provider_payments WHERE org_id = $1 AND channel_id = $2
                         AND our_reference = $3 AND flow = 'payout'",
                    &[&org.0, &channel.id, reference],
                )
                .await?;
            drop(client);
            let Some(row) = row else {
                applied.exception(format!("a booking for end-to-end id {reference}, not ours"));
                continue;
            };
            let mut report = booking.report.clone();
            // A batch booking that does not say each transaction's amount cannot confirm one.
            if report.amount.is_none() && report.status == Status::Succeeded {
                applied.exception(format!("the booking of {reference} states no amount"));
                continue;
            }
            report.payer = None;
            report.payee = None;
            self.apply_bank_report(org, row.get(0), report, applied).await?;
        }
        Ok(())
    }

    /// A credit on the account: a received payment into the wallet or purse its reference
    /// names (else the channel's receiving purse), once per bank reference.
    async fn take_credit(
        &self,
        channel: &Channel,
        booking: &Booking,
        fallback: &str,
        applied: &mut Applied,
    ) -> Result<(), PaymentError> {
        let reference = booking.bank_reference.clone().unwrap_or_else(|| fallback.to_owned());
        let Some(amount) =
            booking.amount.filter(|a| a.currency() == channel.currency && a.is_positive())
        else {
            applied.exception(format!(
                "credit {reference} of {} is not a positive {} amount",
                describe(booking.amount),
                channel.currency.code()
            ));
            return Ok(());
        };
        let references: Vec<&str> = booking
            .end_to_end_id
            .iter()
            .chain(&booking.remittance)
            .flat_map(|text| text.split_whitespace())
            .collect();
        let Some(target) = self.credit_target(channel, &references).await? else {
            applied.exception(format!(
                "credit {reference} of {} names no account (references {:?}); nothing moved",
                describe(Some(amount)),
                booking.remittance
            ));
            return Ok(());
        };
        let payer = booking.debtor_account.clone().unwrap_or_default();
        let narration = match booking.remittance.first() {
            Some(line) => format!("Bank credit {reference}: {line}"),
            None => format!("Bank credit {reference}"),
        };
        let narration: String = narration.chars().take(200).collect();
        let debit = serde_json::json!({ "channel": { "channelNumber": channel.number } });
        let customers: Vec<String> = target.customer.iter().map(|c| c.0.to_string()).collect();
        let request = serde_json::json!({
            "debitParty": debit,
            "creditParty": target.party,
            "value": { "currencyCode": amount.currency().code(), "amount": amount.amount().to_string() },
            "narration": narration,
            "payer": { "name": booking.debtor_name, "account": booking.debtor_account },
            "context": {
                "payment": {
                    "debitParty": debit, "creditParty": target.party, "narration": narration,
                    "appId": null,
                },
                "hazina": { "customers": customers },
            },
        });
        let id = self
            .record_received(
                channel,
                &reference,
                &payer,
                amount,
                &request,
                target.account,
                target.customer,
            )
            .await?;
        let mut report = StatusReport::new(Status::Succeeded);
        report.receipt = Some(reference.clone());
        report.our_reference = Some(reference);
        report.amount = Some(amount);
        report.payee = Some(channel.number.clone());
        let event = Event::Callback { report, verified: true };
        self.apply(channel.org, id, &event, Stage::Sent, "file", None).await?;
        applied.applied += 1;
        Ok(())
    }

    /// The account a credit's references name: a customer's id (their one wallet in the
    /// channel's currency), a wallet's or purse's account id, or a customer's phone number;
    /// else the channel's receiving purse.
    async fn credit_target(
        &self,
        channel: &Channel,
        references: &[&str],
    ) -> Result<Option<CreditTarget>, PaymentError> {
        let org = channel.org;
        let usable = |account: &hazina_ledger::store::Account| {
            account.currency == channel.currency && !account.closed
        };
        for reference in references {
            let owner = if let Ok(id) = Uuid::parse_str(reference) {
                if let Some(account) = self.store().account(org, AccountId(id)).await?
                    && usable(&account)
                {
                    match account.kind {
                        AccountKind::Wallet => {
                            let party = serde_json::json!({ "wallet": {
                                "customerId": account.customer.map(|c| c.0),
                                "walletId": account.wallet_id,
                            } });
                            let customer = account.customer;
                            return Ok(Some(CreditTarget { account: account.id, customer, party }));
                        }
                        AccountKind::Purse => {
                            let party = serde_json::json!({ "purse": { "purseId": account.id.0 } });
                            return Ok(Some(CreditTarget {
                                account: account.id,
                                customer: None,
                                party,
                            }));
                        }
                        _ => {}
                    }
                }
                Some(CustomerId(id))
            } else {
                self.phone_owner(channel, reference).await?
            };
            let Some(owner) = owner else { continue };
            let wallets =
                self.store().accounts(org, AccountKind::Wallet, Some(owner), None, 1_000).await?;
            let mut found = wallets.iter().filter(|wallet| usable(wallet));
            if let (Some(wallet), None) = (found.next(), found.next()) {
                let party = serde_json::json!({
                    "wallet": { "customerId": owner.0, "walletId": wallet.wallet_id }
                });
                return Ok(Some(CreditTarget { account: wallet.id, customer: Some(owner), party }));
            }
        }
        let Some(purse) = channel.receiving_purse else { return Ok(None) };
        let purse = self
            .store()
            .account(org, purse)
            .await?
            .filter(|account| account.kind == AccountKind::Purse && usable(account));
        Ok(purse.map(|purse| CreditTarget {
            account: purse.id,
            customer: None,
            party: serde_json::json!({ "purse": { "purseId": purse.id.0 } }),
        }))
    }
}

/// Whether a statement is for the channel's account (its IBAN or other id, spaces aside).
fn for_account(statement: &Statement, channel: &Channel) -> bool {
    [&statement.account.iban, &statement.account.other_id]
        .into_iter()
        .flatten()
        .any(|account| bank::account(account).is_ok_and(|account| account == channel.number))
}

fn describe(amount: Option<Money>) -> String {
    amount.map_or_else(
        || "no stated amount".to_owned(),
        |amount| format!("{} {}", amount.amount(), amount.currency().code()),
    )
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// Writes `contents` as `dir/name` all at once: into a hidden temporary file, synced, then
/// renamed over the name (atomic within a file system), and the directory synced, so that an
/// agent never sees half a file and a crash leaves the whole file or none.
fn write_atomically(dir: &Path, name: &str, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// The files in `dir` an agent finished writing (hidden and temporary ones left out), by name.
fn inbound_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.ends_with(".tmp") || !entry.file_type()?.is_file() {
            continue;
        }
        files.push(entry.path());
    }
    files.sort();
    Ok(files)
}

/// Moves a read file into `dir`, under its name, or its name with a suffix when the name was
/// read before.
fn move_into(path: &Path, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let mut target = dir.join(&name);
    let mut attempt = 1;
    while target.exists() {
        target = dir.join(format!("{name}.{attempt}"));
        attempt += 1;
    }
    std::fs::rename(path, target)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_file_is_written_whole_and_read_back_by_name_without_temporaries() {
        let dir = std::env::temp_dir().join(format!("hazina-bank-unit-{}", Uuid::now_v7()));
        write_atomically(&dir, "B.xml", "<b/>").unwrap();
        write_atomically(&dir, "A.xml", "<a/>").unwrap();
        // A temporary an agent (or a crash) left behind is not a file to read.
        std::fs::write(dir.join(".C.xml.tmp"), "half").unwrap();
        let files = inbound_files(&dir).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["A.xml", "B.xml"]);
        assert_eq!(std::fs::read_to_string(dir.join("A.xml")).unwrap(), "<a/>");
        // The same name moved aside twice keeps both.
        move_into(&dir.join("A.xml"), &dir.join("done")).unwrap();
        write_atomically(&dir, "A.xml", "<a2/>").unwrap();
        move_into(&dir.join("A.xml"), &dir.join("done")).unwrap();
        assert!(dir.join("done/A.xml").exists() && dir.join("done/A.xml.1").exists());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
