//! Exceptions: what a run could not match, or matched with a difference, for a person to own,
//! note and resolve. A resolution is a ledger transfer or a recorded decision, never an edit
//! of history: the exception row keeps what was decided, by whom and why, and the match
//! tables take the lines and transfers it accounts for, so that no later run raises them
//! again.

use chrono::{DateTime, NaiveDate, Utc};
use hazina_ledger::rules::{Action, Outcome, Posting, Side, TransferRequest};
use hazina_ledger::{AccountId, Currency, Money, OrgId, TransferId};
use uuid::Uuid;

use super::import::lock_channel;
use super::{Direction, ReconciliationError, Service, direction_from, direction_name};
use crate::code::Code;
use crate::events::types::{Amount, ExceptionData};
use crate::events::{self, EventType, NewEvent};
use crate::payments::{self, ManualSettlement, Settlement};

/// Adjustment transfers' ids are derived from their exception's, so that a resolution
/// retried after a failure replays the same transfer instead of booking it twice.
const ADJUSTMENT_NAMESPACE: Uuid = Uuid::from_u128(0x6861_7a69_6e61_0017_8000_0000_0000_0001);

/// What kind of exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionKind {
    /// The provider moved money the ledger does not know of.
    UnmatchedStatement,
    /// The ledger thinks money moved that the provider does not show.
    UnmatchedLedger,
    /// Matched, but the amounts differ.
    Difference,
}

impl ExceptionKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnmatchedStatement => "unmatched_statement",
            Self::UnmatchedLedger => "unmatched_ledger",
            Self::Difference => "difference",
        }
    }

    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::UnmatchedStatement, Self::UnmatchedLedger, Self::Difference]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// Open or resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionStatus {
    Open,
    Resolved,
}

impl ExceptionStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
        }
    }

    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "open" => Some(Self::Open),
            "resolved" => Some(Self::Resolved),
            _ => None,
        }
    }
}

/// An exception as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exception {
    pub id: Uuid,
    pub channel: Uuid,
    pub run: Uuid,
    pub kind: ExceptionKind,
    pub line_key: Option<String>,
    pub transfer_id: Option<Uuid>,
    pub match_id: Option<Uuid>,
    pub direction: Direction,
    pub amount: Money,
    /// Statement minus ledger, for a difference; zero otherwise.
    pub difference: Money,
    pub value_date: NaiveDate,
    pub status: ExceptionStatus,
    pub owner: Option<String>,
    pub note: Option<String>,
    pub resolution: Option<String>,
    pub resolution_transfer_id: Option<Uuid>,
    pub reason: Option<String>,
    pub resolved_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The line's receipt and reference, for a person deciding (and for settling a stuck
    /// payment the line names).
    pub line_receipt: Option<String>,
    pub line_reference: Option<String>,
    pub line_counterparty: Option<String>,
    pub line_description: Option<String>,
}

pub(super) const EXCEPTION_COLUMNS: &str = "e.id, e.channel_id, e.run_id, e.kind, e.line_key, \
    e.transfer_id, e.match_id, e.direction, e.currency, e.amount_minor, e.difference_minor, \
    e.value_date, e.status, e.owner, e.note, e.resolution, e.resolution_transfer_id, e.reason, \
    e.resolved_by, e.created_at, e.resolved_at, l.receipt, l.reference, l.counterparty, \
    l.description";

pub(super) const EXCEPTION_FROM: &str = "reconciliation_exceptions e
    LEFT JOIN statement_lines l
        ON l.org_id = e.org_id AND l.channel_id = e.channel_id AND l.key = e.line_key";

pub(super) fn from_row(row: &tokio_postgres::Row) -> Result<Exception, ReconciliationError> {
    let kind: &str = row.get(3);
    let currency: &str = row.get(8);
    let currency = Currency::from_code(currency)
        .map_err(|_| ReconciliationError::Corrupt(format!("currency {currency:?}")))?;
    let status: &str = row.get(12);
    Ok(Exception {
        id: row.get(0),
        channel: row.get(1),
        run: row.get(2),
        kind: ExceptionKind::from_name(kind)
            .ok_or_else(|| ReconciliationError::Corrupt(format!("exception kind {kind:?}")))?,
        line_key: row.get(4),
        transfer_id: row.get(5),
        match_id: row.get(6),
        direction: direction_from(row.get(7))?,
        amount: Money::from_minor(currency, row.get(9)),
        difference: Money::from_minor(currency, row.get(10)),
        value_date: row.get(11),
        status: ExceptionStatus::from_name(status)
            .ok_or_else(|| ReconciliationError::Corrupt(format!("exception status {status:?}")))?,
        owner: row.get(13),
        note: row.get(14),
        resolution: row.get(15),
        resolution_transfer_id: row.get(16),
        reason: row.get(17),
        resolved_by: row.get(18),
        created_at: row.get(19),
        resolved_at: row.get(20),
        line_receipt: row.get(21),
        line_reference: row.get(22),
        line_counterparty: row.get(23),
        line_description: row.get(24),
    })
}

impl Exception {
    /// What its events say of it.
    pub(super) fn event(&self, kind: EventType) -> NewEvent {
        NewEvent::of(
            kind,
            &ExceptionData {
                exception_id: self.id,
                channel_id: self.channel,
                kind: self.kind.as_str().to_owned(),
                status: self.status.as_str().to_owned(),
                direction: direction_name(self.direction).to_owned(),
                amount: Amount::of(&self.amount),
                difference: Amount::of(&self.difference),
                line_key: self.line_key.clone(),
                transfer_id: self.transfer_id,
                resolution: self.resolution.clone(),
                resolution_transfer_id: self.resolution_transfer_id,
            },
        )
    }
}

/// Which exceptions to list.
#[derive(Clone, Debug, Default)]
pub struct ExceptionFilter {
    pub channel: Option<Uuid>,
    pub run: Option<Uuid>,
    pub status: Option<ExceptionStatus>,
    /// Exceptions created before this one (a page's cursor: the last id of the page before).
    pub before: Option<Uuid>,
    pub limit: i64,
}

/// How to resolve an exception.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Match it with other open exceptions (lines with transfers) by hand: the statement's
    /// and the ledger's side must both be present, in one direction. A difference left over is
    /// a new `difference` exception.
    Match { with: Vec<Uuid> },
    /// Book the amount (or the difference) by a ledger transfer between the channel's
    /// clearing account and `counter_account` (say, a fees or suspense account), so that the
    /// clearing account agrees with the statement.
    Adjust { counter_account: AccountId },
    /// Accept it as it is, with a reason: a recorded decision that moves no money.
    WriteOff,
    /// A line of money in that is a payment a customer made (a C2B whose callback never came):
    /// record it as that received payment, into the channel's receiving purse.
    RecordPayment,
    /// A line that shows a stuck payment of ours went through (its receipt or reference
    /// names the payment): settle that payment as succeeded from the line.
    SettlePayment { payment: Uuid },
}

impl Resolution {
    fn name(&self) -> &'static str {
        match self {
            Self::Match { .. } => "matched",
            Self::Adjust { .. } => "adjusted",
            Self::WriteOff => "written_off",
            Self::RecordPayment => "recorded_payment",
            Self::SettlePayment { .. } => "settled_payment",
        }
    }
}

/// A resolution as asked.
#[derive(Clone, Debug)]
pub struct Resolve {
    pub resolution: Resolution,
    /// Why (required: an auditor reads it).
    pub reason: String,
    /// Who decided.
    pub decided_by: String,
}

impl Service {
    /// The org's exceptions, newest first.
    ///
    /// # Errors
    ///
    /// The database's.
    pub async fn exceptions(
        &self,
        org: OrgId,
        filter: &ExceptionFilter,
    ) -> Result<Vec<Exception>, ReconciliationError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {EXCEPTION_COLUMNS} FROM {EXCEPTION_FROM}
                     WHERE e.org_id = $1 AND ($2::uuid IS NULL OR e.channel_id = $2)
                         AND ($3::uuid IS NULL OR e.run_id = $3)
                         AND ($4::text IS NULL OR e.status = $4)
                         AND ($5::uuid IS NULL OR e.id < $5)
                     ORDER BY e.id DESC LIMIT $6"
                ),
                &[
                    &org.0,
                    &filter.channel,
                    &filter.run,
                    &filter.status.map(ExceptionStatus::as_str),
                    &filter.before,
                    &filter.limit.clamp(1, 1_000),
                ],
            )
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// One exception.
    ///
    /// # Errors
    ///
    /// `NotFound`; the database's.
    pub async fn exception(&self, org: OrgId, id: Uuid) -> Result<Exception, ReconciliationError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {EXCEPTION_COLUMNS} FROM {EXCEPTION_FROM}
                     WHERE e.org_id = $1 AND e.id = $2"
                ),
                &[&org.0, &id],
            )
            .await?
            .ok_or(ReconciliationError::NotFound("exception"))?;
        from_row(&row)
    }

    /// Gives an exception an owner and a note (each kept as it is when `None`).
    ///
    /// # Errors
    ///
    /// `NotFound`; the database's.
    pub async fn assign(
        &self,
        org: OrgId,
        id: Uuid,
        owner: Option<&str>,
        note: Option<&str>,
    ) -> Result<Exception, ReconciliationError> {
        let client = self.pool.get().await?;
        let updated = client
            .execute(
                "UPDATE reconciliation_exceptions
                 SET owner = COALESCE($3, owner), note = COALESCE($4, note)
                 WHERE org_id = $1 AND id = $2",
                &[&org.0, &id, &owner, &note],
            )
            .await?;
        if updated == 0 {
            return Err(ReconciliationError::NotFound("exception"));
        }
        self.exception(org, id).await
    }

    /// Resolves an exception. Money moves first, under an id derived from the exception's
    /// (a retry replays it); then, under the channel's lock, the exception and what it
    /// accounts for are recorded with the event, all in one transaction.
    ///
    /// # Errors
    ///
    /// `NotFound`; `Conflict` (`exception_resolved`) for one resolved already; `Invalid`
    /// (`resolution_not_allowed`) for a resolution that does not fit it, (`reason_required`)
    /// without a reason; the ledger's refusal of an adjustment as `Invalid` with its code.
    pub async fn resolve(
        &self,
        org: OrgId,
        id: Uuid,
        resolve: &Resolve,
    ) -> Result<Exception, ReconciliationError> {
        let reason = resolve.reason.trim();
        if reason.is_empty() {
            return Err(ReconciliationError::invalid(
                Code::ReasonRequired,
                "say why the exception is resolved so",
            ));
        }
        let exception = self.exception(org, id).await?;
        if exception.status == ExceptionStatus::Resolved {
            return Err(already_resolved(&exception));
        }
        let channel = self.channel(org, exception.channel).await?;
        let not_allowed =
            |why: &str| ReconciliationError::invalid(Code::ResolutionNotAllowed, why.to_owned());
        // What the resolution books or settles before it is recorded.
        let mut others = Vec::new();
        let mut booked: Option<TransferId> = None;
        match &resolve.resolution {
            Resolution::Match { with } => {
                if with.is_empty() || with.contains(&exception.id) {
                    return Err(not_allowed("name the other open exceptions to match it with"));
                }
                for other in with {
                    let other = self.exception(org, *other).await?;
                    if other.status == ExceptionStatus::Resolved {
                        return Err(already_resolved(&other));
                    }
                    if other.channel != exception.channel
                        || other.direction != exception.direction
                        || other.kind == ExceptionKind::Difference
                    {
                        return Err(not_allowed(
                            "only unmatched lines and transfers of one channel and direction \
                             match together",
                        ));
                    }
                    others.push(other);
                }
                let kinds = std::iter::once(&exception).chain(&others).map(|e| e.kind);
                let (lines, items): (Vec<_>, Vec<_>) =
                    kinds.partition(|kind| *kind == ExceptionKind::UnmatchedStatement);
                if exception.kind == ExceptionKind::Difference
                    || lines.is_empty()
                    || items.is_empty()
                {
                    return Err(not_allowed(
                        "a match by hand needs at least one unmatched line and one unmatched \
                         transfer",
                    ));
                }
            }
            Resolution::Adjust { counter_account } => {
                let transfer = self
                    .adjust(
                        org,
                        &exception,
                        channel.clearing,
                        *counter_account,
                        reason,
                        &resolve.decided_by,
                    )
                    .await?;
                booked = Some(transfer);
            }
            Resolution::WriteOff => {}
            Resolution::RecordPayment => {
                if exception.kind != ExceptionKind::UnmatchedStatement
                    || exception.direction != Direction::In
                {
                    return Err(not_allowed(
                        "only an unmatched line of money in can be recorded as a received \
                         payment",
                    ));
                }
                booked = Some(self.record_payment(&exception, &channel, reason).await?);
            }
            Resolution::SettlePayment { payment } => {
                if exception.kind != ExceptionKind::UnmatchedStatement {
                    return Err(not_allowed("only an unmatched line can settle a payment"));
                }
                booked = Some(self.settle_payment(org, &exception, *payment, resolve).await?);
            }
        }
        self.record_resolution(org, &exception, &others, resolve, booked).await?;
        self.exception(org, id).await
    }

    /// Books an exception's amount (or difference) between the clearing account and
    /// `counter`, in the direction that brings the clearing account to the statement.
    async fn adjust(
        &self,
        org: OrgId,
        exception: &Exception,
        clearing: AccountId,
        counter: AccountId,
        reason: &str,
        decided_by: &str,
    ) -> Result<TransferId, ReconciliationError> {
        // What the clearing account must gain (a debit) or lose (a credit), in minor units.
        let amount = exception.amount.to_minor().unwrap_or(0);
        let difference = exception.difference.to_minor().unwrap_or(0);
        let into_clearing = match (exception.kind, exception.direction) {
            (ExceptionKind::UnmatchedStatement, Direction::In)
            | (ExceptionKind::UnmatchedLedger, Direction::Out) => amount,
            (ExceptionKind::UnmatchedStatement, Direction::Out)
            | (ExceptionKind::UnmatchedLedger, Direction::In) => -amount,
            (ExceptionKind::Difference, Direction::In) => difference,
            (ExceptionKind::Difference, Direction::Out) => -difference,
        };
        if into_clearing == 0 || counter == clearing {
            return Err(ReconciliationError::invalid(
                Code::ResolutionNotAllowed,
                "an adjustment needs an amount and a counter account other than the channel's \
                 clearing account",
            ));
        }
        let currency = exception.amount.currency();
        let money = Money::from_minor(currency, into_clearing.abs());
        let (clearing_side, counter_side) = if into_clearing > 0 {
            (Side::Debit, Side::Credit)
        } else {
            (Side::Credit, Side::Debit)
        };
        let id = TransferId(Uuid::new_v5(&ADJUSTMENT_NAMESPACE, exception.id.as_bytes()));
        let context = serde_json::json!({
            "reconciliation": {
                "exceptionId": exception.id,
                "reason": reason,
                "decidedBy": decided_by,
            }
        });
        let serde_json::Value::Object(context) = context else { unreachable!("an object") };
        let request = TransferRequest {
            id,
            id_is_new: false,
            org,
            action: Action::Post {
                postings: vec![
                    Posting { account: clearing, side: clearing_side, amount: money },
                    Posting { account: counter, side: counter_side, amount: money },
                ],
            },
            code: "reconciliation_adjustment".to_owned(),
            effective_at: None,
            context: std::sync::Arc::new(context),
        };
        match self.pipeline.submit(request).await? {
            Outcome::Accepted { .. } => Ok(id),
            Outcome::Rejected(reason) => Err(ReconciliationError::invalid(
                Code::LedgerRefused,
                format!("the ledger refused the adjustment: {}", reason.code()),
            )),
        }
    }
}

impl Service {
    /// Records an unmatched line of money in as the received payment it was, into the
    /// channel's receiving purse, and settles it from the line: the transfer that posted it.
    async fn record_payment(
        &self,
        exception: &Exception,
        channel: &payments::Channel,
        reason: &str,
    ) -> Result<TransferId, ReconciliationError> {
        let purse = channel.receiving_purse.ok_or_else(|| {
            ReconciliationError::invalid(
                Code::ResolutionNotAllowed,
                "the channel has no receiving purse to record a received payment into",
            )
        })?;
        let receipt = exception
            .line_receipt
            .clone()
            .or_else(|| exception.line_key.clone())
            .unwrap_or_else(|| exception.id.to_string());
        let payer = exception.line_counterparty.clone().unwrap_or_default();
        let request = serde_json::json!({
            "source": "statement",
            "exceptionId": exception.id,
            "lineKey": exception.line_key,
            "reference": exception.line_reference,
        });
        let payment = self
            .payments
            .record_received(channel, &receipt, &payer, exception.amount, &request, purse, None)
            .await?;
        let decision = ManualSettlement {
            settlement: Settlement::Succeeded { receipt: Some(receipt) },
            reason: format!(
                "recorded from statement line {}: {reason}",
                exception.line_key.as_deref().unwrap_or("")
            ),
            decided_by: "reconciliation".to_owned(),
            source: "statement",
        };
        self.settled(channel.org, payment, &decision, exception).await
    }

    /// Settles a stuck payment of ours as succeeded from the statement line that shows it,
    /// when the line names it and agrees with it (amount, direction).
    async fn settle_payment(
        &self,
        org: OrgId,
        exception: &Exception,
        payment: Uuid,
        resolve: &Resolve,
    ) -> Result<TransferId, ReconciliationError> {
        let record = self
            .payments
            .record(org, payment)
            .await?
            .ok_or(ReconciliationError::NotFound("payment"))?;
        let not_allowed =
            |why: String| ReconciliationError::invalid(Code::ResolutionNotAllowed, why);
        if record.channel != exception.channel {
            return Err(not_allowed("the payment went through another channel".to_owned()));
        }
        let names: Vec<String> = [
            Some(record.id.to_string()),
            Some(record.our_reference.clone()),
            record.request_reference.clone(),
            record.receipt.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let named = [&exception.line_receipt, &exception.line_reference]
            .into_iter()
            .flatten()
            .any(|said| names.iter().any(|name| name == said.trim()));
        if !named {
            return Err(not_allowed(
                "the line's receipt and reference name another payment".to_owned(),
            ));
        }
        let direction = match record.flow {
            payments::Flow::Payout => Direction::Out,
            payments::Flow::Collect | payments::Flow::Received => Direction::In,
        };
        if direction != exception.direction || record.amount != exception.amount {
            return Err(not_allowed(format!(
                "the line ({} {}) disagrees with the payment ({} {})",
                direction_name(exception.direction),
                exception.amount.amount(),
                direction_name(direction),
                record.amount.amount()
            )));
        }
        let decision = ManualSettlement {
            settlement: Settlement::Succeeded { receipt: exception.line_receipt.clone() },
            reason: resolve.reason.trim().to_owned(),
            decided_by: resolve.decided_by.clone(),
            source: "statement",
        };
        self.settled(org, payment, &decision, exception).await
    }

    /// Settles the payment by `decision`, or finds it settled (posted) already: the transfer
    /// that posted it.
    async fn settled(
        &self,
        org: OrgId,
        payment: Uuid,
        decision: &ManualSettlement,
        exception: &Exception,
    ) -> Result<TransferId, ReconciliationError> {
        let record = match self.payments.settle_by_hand(org, payment, decision).await {
            Ok(record) => record,
            Err(payments::PaymentError::Conflict { code: Code::PaymentAlreadySettled, .. }) => self
                .payments
                .record(org, payment)
                .await?
                .ok_or(ReconciliationError::NotFound("payment"))?,
            Err(error) => return Err(error.into()),
        };
        if record.status != payments::PaymentStatus::Success {
            return Err(ReconciliationError::invalid(
                Code::ResolutionNotAllowed,
                format!(
                    "payment {} ended {}, not as exception {} shows",
                    record.id, record.status, exception.id
                ),
            ));
        }
        Ok(payments::posting_transfer_id(&record))
    }

    /// Records a resolution with what it accounts for, under the channel's lock, in one
    /// transaction with its events.
    #[allow(clippy::too_many_lines)] // One transaction's statements, in order.
    async fn record_resolution(
        &self,
        org: OrgId,
        exception: &Exception,
        others: &[Exception],
        resolve: &Resolve,
        booked: Option<TransferId>,
    ) -> Result<(), ReconciliationError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        lock_channel(&tx, org, exception.channel).await?;
        let all: Vec<&Exception> = std::iter::once(exception).chain(others).collect();
        let ids: Vec<Uuid> = all.iter().map(|e| e.id).collect();
        let open: i64 = tx
            .query_one(
                "SELECT count(*) FROM reconciliation_exceptions
                 WHERE org_id = $1 AND id = ANY($2) AND status = 'open'",
                &[&org.0, &ids],
            )
            .await?
            .get(0);
        if usize::try_from(open).ok() != Some(ids.len()) {
            return Err(already_resolved(exception));
        }
        let lines: Vec<String> = all
            .iter()
            .filter(|e| e.kind == ExceptionKind::UnmatchedStatement)
            .filter_map(|e| e.line_key.clone())
            .collect();
        let mut transfers: Vec<Uuid> = all
            .iter()
            .filter(|e| e.kind == ExceptionKind::UnmatchedLedger)
            .filter_map(|e| e.transfer_id)
            .collect();
        transfers.extend(booked.map(|id| id.0));
        let rule = resolve.resolution.name();
        let mut opened = Vec::new();
        let match_id = if exception.kind == ExceptionKind::Difference {
            // The match stands; an adjustment's transfer joins it.
            if let (Some(match_id), Some(booked)) = (exception.match_id, booked) {
                insert_matched(&tx, org, exception.channel, match_id, &[], &[booked.0]).await?;
            }
            exception.match_id
        } else {
            let difference = match resolve.resolution {
                Resolution::Match { .. } => {
                    let sum = |kind| -> i64 {
                        all.iter()
                            .filter(|e| e.kind == kind)
                            .map(|e| e.amount.to_minor().unwrap_or(0))
                            .sum()
                    };
                    sum(ExceptionKind::UnmatchedStatement) - sum(ExceptionKind::UnmatchedLedger)
                }
                _ => 0,
            };
            let match_id = Uuid::now_v7();
            tx.execute(
                "INSERT INTO reconciliation_matches (org_id, id, channel_id, run_id, rule,
                     amount_difference_minor, days_difference, decided_by)
                 VALUES ($1, $2, $3, NULL, $4, $5, 0, $6)",
                &[&org.0, &match_id, &exception.channel, &rule, &difference, &resolve.decided_by],
            )
            .await?;
            insert_matched(&tx, org, exception.channel, match_id, &lines, &transfers).await?;
            if difference != 0 {
                let row = tx
                    .query_one(
                        "INSERT INTO reconciliation_exceptions (org_id, id, channel_id, run_id,
                             kind, line_key, transfer_id, match_id, currency, direction,
                             amount_minor, difference_minor, value_date, status)
                         VALUES ($1, $2, $3, $4, 'difference', $5, $6, $7, $8, $9, $10, $11,
                             $12, 'open')
                         RETURNING id",
                        &[
                            &org.0,
                            &Uuid::now_v7(),
                            &exception.channel,
                            &exception.run,
                            &lines.first(),
                            &transfers.first(),
                            &match_id,
                            &exception.amount.currency().code(),
                            &direction_name(exception.direction),
                            &exception.amount.to_minor().unwrap_or(0),
                            &difference,
                            &exception.value_date,
                        ],
                    )
                    .await?;
                opened.push(row.get::<_, Uuid>(0));
            }
            Some(match_id)
        };
        let rows = tx
            .query(
                &format!(
                    "WITH resolved AS (
                         UPDATE reconciliation_exceptions SET status = 'resolved',
                             resolution = $3, resolution_transfer_id = $4,
                             resolution_match_id = $5, reason = $6, resolved_by = $7,
                             resolved_at = now()
                         WHERE org_id = $1 AND id = ANY($2) RETURNING *
                     )
                     SELECT {EXCEPTION_COLUMNS} FROM {}",
                    EXCEPTION_FROM.replacen("reconciliation_exceptions e", "resolved e", 1)
                ),
                &[
                    &org.0,
                    &ids,
                    &rule,
                    &booked.map(|id| id.0),
                    &match_id,
                    &resolve.reason.trim(),
                    &resolve.decided_by,
                ],
            )
            .await?;
        let mut told = Vec::new();
        for row in &rows {
            told.push(from_row(row)?.event(EventType::ReconciliationExceptionResolved));
        }
        for id in opened {
            let row = tx
                .query_one(
                    &format!(
                        "SELECT {EXCEPTION_COLUMNS} FROM {EXCEPTION_FROM}
                         WHERE e.org_id = $1 AND e.id = $2"
                    ),
                    &[&org.0, &id],
                )
                .await?;
            told.push(from_row(&row)?.event(EventType::ReconciliationExceptionOpened));
        }
        events::record(&tx, org, &told).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Records which lines and transfers a match accounts for; the keys refuse one matched twice.
pub(super) async fn insert_matched(
    tx: &deadpool_postgres::Transaction<'_>,
    org: OrgId,
    channel: Uuid,
    match_id: Uuid,
    lines: &[String],
    transfers: &[Uuid],
) -> Result<(), ReconciliationError> {
    if !lines.is_empty() {
        tx.execute(
            "INSERT INTO reconciliation_matched_lines (org_id, channel_id, line_key, match_id)
             SELECT $1, $2, key, $3 FROM UNNEST($4::text[]) AS key",
            &[&org.0, &channel, &match_id, &lines],
        )
        .await?;
    }
    if !transfers.is_empty() {
        tx.execute(
            "INSERT INTO reconciliation_matched_transfers (org_id, channel_id, transfer_id,
                 match_id)
             SELECT $1, $2, id, $3 FROM UNNEST($4::uuid[]) AS id",
            &[&org.0, &channel, &match_id, &transfers],
        )
        .await?;
    }
    Ok(())
}

fn already_resolved(exception: &Exception) -> ReconciliationError {
    ReconciliationError::Conflict {
        code: Code::ExceptionResolved,
        detail: format!(
            "exception {} is resolved already ({})",
            exception.id,
            exception.resolution.as_deref().unwrap_or("resolved")
        ),
    }
}
