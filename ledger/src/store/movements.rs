//! What moved on one account by effective time: the posted movements reconciliation matches
//! against a provider's statement, and the account's posted balance at an effective time
//! (what a clearing account held at the end of a statement's day).

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::ids::{AccountId, OrgId, TransferId};
use crate::rules::{Side, TransferKind};

/// One posted movement on an account: an entry whose posted sum changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movement {
    pub transfer_id: TransferId,
    pub kind: TransferKind,
    /// The pending transfer a post resolves (a provider payment's id), or the transfer a
    /// reversal reverses.
    pub refers_to: Option<TransferId>,
    pub code: String,
    pub side: Side,
    /// Posted amount in minor units, positive.
    pub amount_minor: i64,
    pub effective_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// The account's posted movements with an effective time in `[from, to)`, in the order
    /// they were recorded. Reads every entry of the account once (a pass over its primary
    /// key): the effective-time index (migration 0027) is the org's, not the account's.
    ///
    /// # Errors
    ///
    /// [`StoreError::AccountNotFound`] when the account is not in the org.
    pub async fn movements(
        &self,
        org: OrgId,
        account: AccountId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Movement>, StoreError> {
        let account = self.account(org, account).await?.ok_or(StoreError::AccountNotFound)?;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT e.transfer_id, t.kind, COALESCE(t.pending_id, t.reversal_of), t.code,
                     e.side, e.amount_posted, e.effective_at, e.created_at
                 FROM entries e JOIN transfers t ON t.org_id = e.org_id AND t.id = e.transfer_id
                 WHERE e.org_id = $1 AND e.account_id = $2 AND e.amount_posted > 0
                     AND e.effective_at >= $3 AND e.effective_at < $4
                 ORDER BY e.version",
                &[&org.0, &account.id.0, &from, &to],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let kind: &str = row.get(1);
                Ok(Movement {
                    transfer_id: TransferId(row.get(0)),
                    kind: TransferKind::from_name(kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("transfer kind {kind:?}")))?,
                    refers_to: row.get::<_, Option<uuid::Uuid>>(2).map(TransferId),
                    code: row.get(3),
                    side: super::rows::side(row.get(4))?,
                    amount_minor: row.get(5),
                    effective_at: row.get(6),
                    created_at: row.get(7),
                })
            })
            .collect()
    }

    /// The account's posted debits and credits (minor units) over entries with an effective
    /// time before `at`: its posted balance as of `at` by effective time.
    ///
    /// # Errors
    ///
    /// [`StoreError::AccountNotFound`] when the account is not in the org.
    pub async fn posted_sums_before(
        &self,
        org: OrgId,
        account: AccountId,
        at: DateTime<Utc>,
    ) -> Result<(i64, i64), StoreError> {
        let account = self.account(org, account).await?.ok_or(StoreError::AccountNotFound)?;
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT COALESCE(sum(e.amount_posted) FILTER (WHERE e.side = 'debit'), 0)::int8,
                     COALESCE(sum(e.amount_posted) FILTER (WHERE e.side = 'credit'), 0)::int8
                 FROM entries e
                 WHERE e.org_id = $1 AND e.account_id = $2 AND e.effective_at < $3",
                &[&org.0, &account.id.0, &at],
            )
            .await?;
        Ok((row.get(0), row.get(1)))
    }
}
