//! Payments stuck with their provider: pending beyond a threshold, for an operator to see and
//! settle — from the provider's statement (the line that shows the money moved) or by hand —
//! each settlement a ledger transfer (the reservation posted or voided) and a recorded
//! decision: who, why, and from what.

use std::time::Duration;

use hazina_ledger::{OrgId, TransferId};
use uuid::Uuid;

use super::{
    Engine, Flow, PaymentError, PaymentStatus, Record, Stage, TRANSFER_NAMESPACE, insert_event,
    tell,
};
use crate::code::Code;
use crate::events::EventType;

/// How an operator settles a stuck payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// The money moved: post the reservation, with the provider's receipt when known.
    Succeeded { receipt: Option<String> },
    /// It did not: release the reservation.
    Failed,
}

/// An operator's decision on a stuck payment.
#[derive(Clone, Debug)]
pub struct ManualSettlement {
    pub settlement: Settlement,
    /// Why, in the operator's words (required: an auditor reads it).
    pub reason: String,
    /// Who decided: the key's id, or the operator's name from the CLI.
    pub decided_by: String,
    /// What the decision rests on: `operator` (by hand) or `statement` (a statement line).
    pub source: &'static str,
}

impl Engine {
    /// The org's payments still unsettled `older_than` after they were made, oldest first.
    ///
    /// # Errors
    ///
    /// The database's.
    pub async fn stuck(
        &self,
        org: OrgId,
        older_than: Duration,
        limit: i64,
    ) -> Result<Vec<Record>, PaymentError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM provider_payments
                     WHERE org_id = $1 AND stage <> 'settled'
                         AND created_at < now() - make_interval(secs => $2)
                     ORDER BY created_at, id LIMIT $3",
                    Record::COLUMNS
                ),
                &[&org.0, &older_than.as_secs_f64(), &limit.clamp(1, 1_000)],
            )
            .await?;
        rows.iter().map(Record::from_row).collect()
    }

    /// Settles a payment by an operator's decision, under the payment's lock: the ledger moves
    /// first (the same derived transfer ids as the provider's answer would use, so a later
    /// answer finds it settled), then the row and its history, which keep who decided and why.
    ///
    /// # Errors
    ///
    /// `NotFound` for no such payment in the org; `Conflict` (`payment_already_settled`) for
    /// one already settled, and (`payment_not_sent`) for one whose reservation may not exist
    /// yet; `Invalid` (`reason_required`) without a reason.
    pub async fn settle_by_hand(
        &self,
        org: OrgId,
        id: Uuid,
        decision: &ManualSettlement,
    ) -> Result<Record, PaymentError> {
        let reason = decision.reason.trim();
        if reason.is_empty() {
            return Err(PaymentError::invalid(
                Code::ReasonRequired,
                "say why the payment is settled by hand",
            ));
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                &format!(
                    "SELECT {} FROM provider_payments WHERE org_id = $1 AND id = $2 FOR UPDATE",
                    Record::COLUMNS
                ),
                &[&org.0, &id],
            )
            .await?
            .ok_or(PaymentError::NotFound("payment"))?;
        let record = Record::from_row(&row)?;
        match record.stage {
            Stage::Settled => {
                return Err(PaymentError::Conflict {
                    code: Code::PaymentAlreadySettled,
                    detail: format!("the payment is already settled ({})", record.status),
                });
            }
            Stage::Reserving => {
                return Err(PaymentError::Conflict {
                    code: Code::PaymentNotSent,
                    detail: "the payment's reservation is still being made; ask again shortly"
                        .to_owned(),
                });
            }
            Stage::Sending | Stage::Sent | Stage::Review => {}
        }
        let (status, settled, receipt) = match &decision.settlement {
            Settlement::Succeeded { receipt } => {
                self.post(&record).await?;
                (PaymentStatus::Success, "posted", receipt.clone().or(record.receipt.clone()))
            }
            Settlement::Failed => {
                self.void(&record).await?;
                (PaymentStatus::Failed, "voided", record.receipt.clone())
            }
        };
        let said = format!("settled by {}: {reason}", decision.decided_by);
        let updated = tx
            .query_one(
                &format!(
                    "UPDATE provider_payments SET stage = 'settled', status = $3, settled = $4,
                         receipt = $5, provider_description = $6, next_attempt_at = NULL,
                         updated_at = now()
                     WHERE org_id = $1 AND id = $2 RETURNING {}",
                    Record::COLUMNS
                ),
                &[&org.0, &id, &status.as_str(), &settled, &receipt, &said],
            )
            .await?;
        let updated = Record::from_row(&updated)?;
        insert_event(&tx, org, id, status, decision.source, None, Some(&said)).await?;
        tell(&tx, &updated, EventType::PaymentStatusChanged, Some(record.status)).await?;
        tx.commit().await?;
        Ok(updated)
    }
}

/// The ledger transfer that posted a payment's money through its channel's clearing account:
/// the post of its reservation, or, for a payment a customer made unprompted, the transfer
/// under the payment's own id.
pub fn posting_transfer_id(record: &Record) -> TransferId {
    if record.flow == Flow::Received {
        TransferId(record.id)
    } else {
        TransferId(Uuid::new_v5(&TRANSFER_NAMESPACE, format!("{}/post", record.id).as_bytes()))
    }
}
