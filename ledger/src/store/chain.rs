//! Each org's chain head and period close in the store: the head row a batch locks, the
//! hashes a batch writes, the recomputation that verifies a chain, and closing a period.
//!
//! The encoding and hash are `crate::chain`'s. A batch locks the heads of its orgs (in org
//! order, before its accounts), hashes its accepted transfers in order onto them, writes each
//! transfer's `chain_seq` and `chain_hash` with its row, and moves the heads in its writes
//! round trip. An overlapped batch hashes onto the heads its writer expects and commits only
//! if they are still those (`hazina_assert_heads_unchanged`, migration 0024).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use serde::Serialize;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{Store, StoreError, rows};
use crate::chain::{self, Link};
use crate::ids::{OrgId, TransferId};
use crate::rules::Transfer;

/// What a batch needs of an org's head: where its chain ends and the end of its closed
/// period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Head {
    pub link: Link,
    pub closed_through: Option<DateTime<Utc>>,
}

/// The heads of these orgs (`$1`), locked in org order: a batch's first lock, so that batches
/// and closes of one org serialise, and before any account, in every transaction.
pub(super) const LOCK_HEADS: &str = "SELECT org_id, chain_seq, chain_hash, closed_through
     FROM ledger_heads WHERE org_id = ANY($1::uuid[]) ORDER BY org_id FOR UPDATE";

/// The heads of these orgs, unlocked (an overlapped batch's read; checked at its commit).
pub(super) const READ_HEADS: &str = "SELECT org_id, chain_seq, chain_hash, closed_through
     FROM ledger_heads WHERE org_id = ANY($1::uuid[])";

/// Makes the missing heads of existing orgs (an org inserted other than by
/// `Store::create_org`).
const MAKE_HEADS: &str = "INSERT INTO ledger_heads (org_id)
     SELECT id FROM orgs WHERE id = ANY($1::uuid[]) ON CONFLICT (org_id) DO NOTHING";

/// Moves the heads of the orgs whose chains a batch extended.
pub(super) const UPDATE_HEADS: &str = "UPDATE ledger_heads AS h
     SET chain_seq = u.chain_seq, chain_hash = u.chain_hash
     FROM UNNEST($1::uuid[], $2::int8[], $3::bytea[]) AS u (org_id, chain_seq, chain_hash)
     WHERE h.org_id = u.org_id";

/// Locks the heads an overlapped batch assumed (`$1…$4`) and fails, through
/// `hazina_assert_heads_unchanged` (HZ003), unless every one is as assumed. An aggregate, so
/// that the check runs even when no row matches.
pub(super) const ASSERT_HEADS: &str = "SELECT hazina_assert_heads_unchanged(count(*),
         cardinality($1::uuid[])) FROM (
         SELECT 1 FROM ledger_heads AS h
         JOIN UNNEST($1::uuid[], $2::int8[], $3::bytea[], $4::timestamptz[])
             AS s (org_id, chain_seq, chain_hash, closed_through) ON h.org_id = s.org_id
         WHERE h.chain_seq = s.chain_seq AND h.chain_hash = s.chain_hash
             AND h.closed_through IS NOT DISTINCT FROM s.closed_through
         ORDER BY h.org_id FOR UPDATE OF h
     ) AS unchanged";

/// The SQLSTATE of `hazina_assert_heads_unchanged`'s failure.
pub(super) const HEADS_CHANGED: &str = "HZ003";

/// The orgs of a batch, sorted and without repeats (the heads' locking order).
pub(super) fn batch_orgs(orgs: impl Iterator<Item = OrgId>) -> Vec<Uuid> {
    let mut orgs: Vec<Uuid> = orgs.map(|org| org.0).collect();
    orgs.sort_unstable();
    orgs.dedup();
    orgs
}

/// Heads from rows of [`LOCK_HEADS`] or [`READ_HEADS`].
pub(super) fn heads(rows: &[tokio_postgres::Row]) -> Result<HashMap<OrgId, Head>, StoreError> {
    rows.iter()
        .map(|row| {
            let hash: &[u8] = row.get(2);
            let hash: [u8; 32] = hash.try_into().map_err(|_| {
                StoreError::Corrupt(format!("chain head hash of {} bytes", hash.len()))
            })?;
            let head = Head { link: Link { seq: row.get(1), hash }, closed_through: row.get(3) };
            Ok((OrgId(row.get(0)), head))
        })
        .collect()
}

/// Locks the heads of `orgs` in the open transaction, making those that are missing.
pub(super) async fn lock_missing_heads(
    client: &Client,
    orgs: &[Uuid],
    heads: &mut HashMap<OrgId, Head>,
) -> Result<(), StoreError> {
    let missing: Vec<Uuid> =
        orgs.iter().copied().filter(|org| !heads.contains_key(&OrgId(*org))).collect();
    if missing.is_empty() {
        return Ok(());
    }
    client.execute(MAKE_HEADS, &[&missing]).await?;
    let rows = client.query(LOCK_HEADS, &[&missing]).await?;
    heads.extend(self::heads(&rows)?);
    Ok(())
}

/// Each org's closed period's end, for the rules.
pub(super) fn closed_through(heads: &HashMap<OrgId, Head>) -> HashMap<OrgId, DateTime<Utc>> {
    heads.iter().filter_map(|(org, head)| Some((*org, head.closed_through?))).collect()
}

/// The chain links of a batch's new records, in step with them (`None` for a rejection), and
/// the heads after them: each org's accepted transfers are hashed in order onto its head.
///
/// # Errors
///
/// [`StoreError::Corrupt`] when an accepted transfer's org has no head, or cannot be encoded.
pub(super) fn links(
    transfers: &[Transfer],
    heads: &mut HashMap<OrgId, Head>,
) -> Result<Vec<Option<Link>>, StoreError> {
    transfers
        .iter()
        .map(|transfer| {
            if transfer.rejection.is_some() {
                return Ok(None);
            }
            let head = heads.get_mut(&transfer.org).ok_or_else(|| {
                StoreError::Corrupt(format!("no chain head for org {}", transfer.org))
            })?;
            head.link = head
                .link
                .next(transfer)
                .map_err(|e| StoreError::Corrupt(format!("transfer {}: {e}", transfer.id)))?;
            Ok(Some(head.link))
        })
        .collect()
}

/// The heads a batch moves (those whose org it chained transfers to), as column arrays.
#[derive(Debug, Default)]
pub(super) struct HeadColumns {
    org: Vec<Uuid>,
    seq: Vec<i64>,
    hash: Vec<Vec<u8>>,
}

impl HeadColumns {
    /// The heads after the batch of the orgs in `moved`.
    pub(super) fn new(heads: &HashMap<OrgId, Head>, moved: impl Iterator<Item = OrgId>) -> Self {
        let mut columns = Self::default();
        let mut orgs: Vec<OrgId> = moved.collect();
        orgs.sort_unstable();
        orgs.dedup();
        for org in orgs {
            if let Some(head) = heads.get(&org) {
                columns.org.push(org.0);
                columns.seq.push(head.link.seq);
                columns.hash.push(head.link.hash.to_vec());
            }
        }
        columns
    }

    pub(super) async fn write(
        &self,
        client: &Client,
        statement: &tokio_postgres::Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        if self.org.is_empty() {
            return Ok(0);
        }
        client.execute(statement, &[&self.org, &self.seq, &self.hash]).await
    }
}

/// The heads an overlapped batch assumed, as the column arrays of [`ASSERT_HEADS`].
#[derive(Debug, Default)]
pub(super) struct AssumedHeads {
    org: Vec<Uuid>,
    seq: Vec<i64>,
    hash: Vec<Vec<u8>>,
    closed_through: Vec<Option<DateTime<Utc>>>,
}

impl AssumedHeads {
    pub(super) fn new(heads: &HashMap<OrgId, Head>) -> Self {
        let mut orgs: Vec<(&OrgId, &Head)> = heads.iter().collect();
        orgs.sort_unstable_by_key(|(org, _)| **org);
        Self {
            org: orgs.iter().map(|(org, _)| org.0).collect(),
            seq: orgs.iter().map(|(_, head)| head.link.seq).collect(),
            hash: orgs.iter().map(|(_, head)| head.link.hash.to_vec()).collect(),
            closed_through: orgs.iter().map(|(_, head)| head.closed_through).collect(),
        }
    }

    /// Locks and compares the heads; the statement fails with [`HEADS_CHANGED`] otherwise.
    pub(super) async fn check(
        &self,
        client: &Client,
        statement: &tokio_postgres::Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        if self.org.is_empty() {
            return Ok(0);
        }
        let params: [&(dyn ToSql + Sync); 4] =
            [&self.org, &self.seq, &self.hash, &self.closed_through];
        client.execute(statement, &params).await
    }
}

/// What recomputing an org's chain found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Transfers in the chain.
    pub transfers: u64,
    /// Whether the recomputed chain ends where the org's head says (position and hash).
    pub head_matches: bool,
    /// The first transfer, in chain order, whose hash does not follow from its content and the
    /// one before (or whose position is not the next): it or something before it was changed,
    /// removed or inserted.
    pub first_break: Option<(i64, TransferId)>,
    /// Whether every period close's recorded head is the recomputed chain at its position.
    pub closes_match: bool,
    /// Accepted transfers outside the chain: recorded before migration 0024 made the chain,
    /// or written behind the ledger's back.
    pub unchained: u64,
}

impl ChainReport {
    /// Whether nothing in the chain was changed: no break, and the head and every close agree.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none() && self.head_matches && self.closes_match
    }
}

impl std::fmt::Display for ChainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} transfers, ", self.transfers)?;
        if let Some((seq, id)) = self.first_break {
            write!(f, "chain broken at seq {seq} (transfer {id})")?;
        } else if !self.head_matches {
            f.write_str("chain broken: the head does not match the last transfer")?;
        } else if !self.closes_match {
            f.write_str("chain broken: a period close's hash does not match")?;
        } else {
            f.write_str("chain intact")?;
        }
        if self.unchained > 0 {
            write!(f, " ({} older transfers unchained)", self.unchained)?;
        }
        Ok(())
    }
}

/// A closed period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeriodClose {
    pub org: OrgId,
    /// The period's end, inclusive.
    pub through: DateTime<Utc>,
    pub closed_at: DateTime<Utc>,
    /// Who closed it (an API key's id, or a tool's name).
    pub closed_by: String,
    pub note: Option<String>,
    /// The org's chain head when it was closed: its hash covers every transfer recorded until
    /// then, and so every transfer of the closed period.
    pub chain_seq: i64,
    pub chain_hash: [u8; 32],
}

/// Rows of a chain read at once while verifying.
const VERIFY_PAGE: i32 = 2_000;

impl Store {
    /// Recomputes the org's chain from its transfers in chain order, streaming (a page at a
    /// time through a portal, so memory stays bounded however long the chain), and compares it
    /// with the stored hashes, the head and the period closes. Reads one repeatable-read
    /// snapshot.
    pub async fn verify_chain(&self, org: OrgId) -> Result<ChainReport, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let head = tx
            .query_opt(
                "SELECT chain_seq, chain_hash, closed_through FROM ledger_heads WHERE org_id = $1",
                &[&org.0],
            )
            .await?;
        let head = head.as_ref().map(heads_row).transpose()?;
        let closes = tx
            .query(
                "SELECT chain_seq, chain_hash FROM period_closes WHERE org_id = $1
                 ORDER BY chain_seq",
                &[&org.0],
            )
            .await?;
        let mut closes: std::collections::VecDeque<(i64, Vec<u8>)> =
            closes.iter().map(|row| (row.get(0), row.get(1))).collect();
        let unchained: i64 = tx
            .query_one(
                "SELECT count(*) FROM transfers
                 WHERE org_id = $1 AND rejection IS NULL AND chain_seq IS NULL",
                &[&org.0],
            )
            .await?
            .get(0);
        let statement = tx
            .prepare(&format!(
                "SELECT {}, chain_seq, chain_hash, context::text FROM transfers
                 WHERE org_id = $1 AND chain_seq IS NOT NULL ORDER BY chain_seq",
                rows::TRANSFER_COLUMNS
            ))
            .await?;
        let portal = tx.bind(&statement, &[&org.0]).await?;
        let mut report = ChainReport {
            transfers: 0,
            head_matches: false,
            first_break: None,
            closes_match: true,
            unchained: u64::try_from(unchained).unwrap_or(0),
        };
        // Close records before the first transfer name position 0 and the genesis hash.
        let mut link = Link::default();
        check_closes(&mut closes, &link, &mut report);
        loop {
            let page = tx.query_portal(&portal, VERIFY_PAGE).await?;
            if page.is_empty() {
                break;
            }
            for row in &page {
                report.transfers += 1;
                let id = TransferId(row.get(0));
                let seq: i64 = row.get(14);
                let stored: &[u8] = row.get(15);
                let next = recompute(row, &link);
                let follows = seq == link.seq + 1
                    && next.as_ref().is_some_and(|next| next.hash.as_slice() == stored);
                if !follows && report.first_break.is_none() {
                    report.first_break = Some((seq, id));
                }
                // Past a break, the chain is followed as recomputed, so that every later hash
                // disagrees too and the head cannot match.
                link = next.unwrap_or(Link { seq, hash: chain::GENESIS });
                check_closes(&mut closes, &link, &mut report);
            }
        }
        if !closes.is_empty() {
            report.closes_match = false;
        }
        report.head_matches = head.is_some_and(|head| head.link == link);
        tx.commit().await?;
        Ok(report)
    }

    /// Closes the org's books through `through` (inclusive): afterwards the ledger refuses
    /// every transfer with an effective time at or before it (`period_closed`). Records the
    /// close with the chain's head at this moment, under the head's lock, so that it is
    /// ordered with the org's batches.
    ///
    /// # Errors
    ///
    /// [`StoreError::OrgNotFound`]; [`StoreError::PeriodAlreadyClosed`] when `through` is not
    /// after the last close; [`StoreError::PeriodInFuture`] when it is after the time now.
    pub async fn close_period(
        &self,
        org: OrgId,
        through: DateTime<Utc>,
        closed_by: &str,
        note: Option<&str>,
    ) -> Result<PeriodClose, StoreError> {
        // As it is stored, so that the close answered is the close recorded.
        let through = crate::rules::as_stored(through);
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let orgs = vec![org.0];
        let rows = tx.query(LOCK_HEADS, &[&orgs]).await?;
        let mut found = heads(&rows)?;
        if found.is_empty() {
            tx.execute(MAKE_HEADS, &[&orgs]).await?;
            found = heads(&tx.query(LOCK_HEADS, &[&orgs]).await?)?;
        }
        let head = *found.get(&org).ok_or(StoreError::OrgNotFound)?;
        let now: DateTime<Utc> = match self.clock.manual_now() {
            Some(now) => now,
            None => tx.query_one("SELECT clock_timestamp()", &[]).await?.get(0),
        };
        if through > now {
            return Err(StoreError::PeriodInFuture);
        }
        if head.closed_through.is_some_and(|closed| through <= closed) {
            return Err(StoreError::PeriodAlreadyClosed);
        }
        let close = PeriodClose {
            org,
            through,
            closed_at: now,
            closed_by: closed_by.to_owned(),
            note: note.map(str::to_owned),
            chain_seq: head.link.seq,
            chain_hash: head.link.hash,
        };
        tx.execute(
            "INSERT INTO period_closes (org_id, through, closed_at, closed_by, note, chain_seq,
                 chain_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &org.0,
                &close.through,
                &close.closed_at,
                &close.closed_by,
                &close.note,
                &close.chain_seq,
                &close.chain_hash.as_slice(),
            ],
        )
        .await?;
        // Every account's posted sums at the close (migration 0031): the previous close's,
        // plus the entries effective after it, up to and including `through`.
        tx.execute(
            "INSERT INTO period_balances (org_id, through, account_id, debits_posted,
                 credits_posted)
             SELECT $1, $2, account_id, sum(debits)::int8, sum(credits)::int8
             FROM (
                 SELECT account_id, debits_posted AS debits, credits_posted AS credits
                 FROM period_balances WHERE org_id = $1 AND through = $3
                 UNION ALL
                 SELECT account_id,
                     CASE WHEN side = 'debit' THEN amount_posted ELSE 0 END,
                     CASE WHEN side = 'credit' THEN amount_posted ELSE 0 END
                 FROM entries
                 WHERE org_id = $1 AND amount_posted > 0 AND effective_at <= $2
                     AND ($3::timestamptz IS NULL OR effective_at > $3)
             ) AS moved
             GROUP BY account_id",
            &[&org.0, &close.through, &head.closed_through],
        )
        .await?;
        tx.execute(
            "UPDATE ledger_heads SET closed_through = $2 WHERE org_id = $1",
            &[&org.0, &through],
        )
        .await?;
        tx.commit().await?;
        Ok(close)
    }

    /// The org's period closes, oldest first.
    pub async fn period_closes(&self, org: OrgId) -> Result<Vec<PeriodClose>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT through, closed_at, closed_by, note, chain_seq, chain_hash
                 FROM period_closes WHERE org_id = $1 ORDER BY through",
                &[&org.0],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let hash: &[u8] = row.get(5);
                Ok(PeriodClose {
                    org,
                    through: row.get(0),
                    closed_at: row.get(1),
                    closed_by: row.get(2),
                    note: row.get(3),
                    chain_seq: row.get(4),
                    chain_hash: hash.try_into().map_err(|_| {
                        StoreError::Corrupt(format!("period close hash of {} bytes", hash.len()))
                    })?,
                })
            })
            .collect()
    }

    /// The last period close of the org whose end is at or after `at`: the close that covers
    /// a report ending at `at`, if any.
    pub async fn period_close_covering(
        &self,
        org: OrgId,
        at: DateTime<Utc>,
    ) -> Result<Option<PeriodClose>, StoreError> {
        Ok(self.period_closes(org).await?.into_iter().find(|close| close.through >= at))
    }
}

fn heads_row(row: &tokio_postgres::Row) -> Result<Head, StoreError> {
    let hash: &[u8] = row.get(1);
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("chain head hash of {} bytes", hash.len())))?;
    Ok(Head { link: Link { seq: row.get(0), hash }, closed_through: row.get(2) })
}

/// The link a stored transfer's content makes onto `previous`; `None` when the row cannot be
/// read as a transfer at all (which the caller counts as a break).
fn recompute(row: &tokio_postgres::Row, previous: &Link) -> Option<Link> {
    let transfer = rows::transfer(row).ok()?;
    let context: &str = row.get(16);
    let context = chain::canonical_context_text(context).ok()?;
    let seq = row.get::<_, i64>(14);
    let bytes = chain::encode_with_context(&transfer, seq, &previous.hash, &context).ok()?;
    Some(Link { seq, hash: chain::hash(&bytes) })
}

/// Checks the closes recorded at the chain's current position against it.
fn check_closes(
    closes: &mut std::collections::VecDeque<(i64, Vec<u8>)>,
    link: &Link,
    report: &mut ChainReport,
) {
    while let Some((seq, hash)) = closes.front() {
        if *seq > link.seq {
            break;
        }
        if *seq < link.seq || hash.as_slice() != link.hash.as_slice() {
            report.closes_match = false;
        }
        closes.pop_front();
    }
}
