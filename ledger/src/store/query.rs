//! Reads: transfers, balances now and at a time, statements and the trial balance.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Account, Balance, Store, StoreError, rows};
use crate::ids::{AccountId, OrgId, TransferId};
use crate::money::{Currency, Money};
use crate::rules::{AccountKind, Side, Sums, Transfer, TransferKind};

/// Which entries of an account's statement to read.
#[derive(Clone, Debug, Default)]
pub struct StatementQuery {
    /// Entries recorded at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Entries recorded before this time.
    pub to: Option<DateTime<Utc>>,
    /// The cursor: entries after this account version.
    pub after_version: Option<i64>,
    /// Most lines to return (at least 1).
    pub limit: i64,
}

/// One line of an account statement: an entry with the account's balance after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementLine {
    pub version: i64,
    pub transfer_id: TransferId,
    pub kind: TransferKind,
    pub code: String,
    pub side: Side,
    /// Change to the side's posted sum.
    pub amount_posted: Money,
    /// Change to the side's pending sum (negative when a reservation is released).
    pub amount_pending: Money,
    /// The account's balances after this entry: the running balance.
    pub balance: Balance,
    pub effective_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A page of a statement, in the order entries were recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementPage {
    pub lines: Vec<StatementLine>,
    /// The cursor for the next page, if there may be one.
    pub next_after_version: Option<i64>,
}

/// One account's line of a trial balance, in posted amounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrialBalanceLine {
    pub account: AccountId,
    pub kind: AccountKind,
    pub name: Option<String>,
    pub currency: Currency,
    pub normal_side: Side,
    /// Balance at the start of the period, on the normal side (negative when against it).
    pub opening: Money,
    pub debits: Money,
    pub credits: Money,
    /// Balance at the end of the period, on the normal side.
    pub closing: Money,
}

/// The totals of a trial balance in one currency. Debits equal credits in every pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrialBalanceTotals {
    pub currency: Currency,
    /// Sum of the debit balances at the start of the period.
    pub opening_debit: Money,
    /// Sum of the credit balances at the start of the period.
    pub opening_credit: Money,
    pub debits: Money,
    pub credits: Money,
    pub closing_debit: Money,
    pub closing_credit: Money,
}

/// An org's trial balance over `[from, to)` by effective time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrialBalance {
    pub org: OrgId,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub lines: Vec<TrialBalanceLine>,
    pub totals: Vec<TrialBalanceTotals>,
}

impl Store {
    /// The transfer with this id in the org, if it was accepted.
    pub async fn transfer(
        &self,
        org: OrgId,
        id: TransferId,
    ) -> Result<Option<Transfer>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {} FROM transfers WHERE id = $1 AND org_id = $2 AND rejection IS NULL",
                    rows::TRANSFER_COLUMNS
                ),
                &[&id.0, &org.0],
            )
            .await?;
        row.as_ref().map(rows::transfer).transpose()
    }

    /// The transfers the ledger recorded under these ids in the org, accepted or rejected, in
    /// no particular order; ids it has no record of are left out. For reading many at once
    /// (a customer's payments), where [`Store::transfer`] would take a round trip each.
    pub async fn transfers(
        &self,
        org: OrgId,
        ids: &[TransferId],
    ) -> Result<Vec<Transfer>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM transfers WHERE id = ANY($1) AND org_id = $2",
                    rows::TRANSFER_COLUMNS
                ),
                &[&ids, &org.0],
            )
            .await?;
        rows.iter().map(rows::transfer).collect()
    }

    /// The accounts each of `transfers` moved and the version it gave each, in no particular
    /// order: found through the event batches that told of them (`batches`, migration 0017),
    /// which hold the versions each account took in them, since entries have no index by
    /// transfer. Transfers told by none of `batches` are left out.
    pub async fn moved_by_told(
        &self,
        org: OrgId,
        batches: &[uuid::Uuid],
        transfers: &[TransferId],
    ) -> Result<Vec<(TransferId, AccountId, i64)>, StoreError> {
        if transfers.is_empty() {
            return Ok(Vec::new());
        }
        let transfers: Vec<uuid::Uuid> = transfers.iter().map(|id| id.0).collect();
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT e.transfer_id, e.account_id, e.version
                 FROM event_transfers AS x
                 CROSS JOIN LATERAL unnest(x.accounts, x.first_versions, x.last_versions)
                     AS moved (account, first, last)
                 JOIN entries AS e ON e.org_id = x.org_id AND e.account_id = moved.account
                     AND e.version BETWEEN moved.first AND moved.last
                 WHERE x.org_id = $1 AND x.batch_id = ANY($2) AND e.transfer_id = ANY($3)",
                &[&org.0, &batches, &transfers],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| (TransferId(row.get(0)), AccountId(row.get(1)), row.get(2)))
            .collect())
    }

    /// The accounts at these versions: each as it was right after the entry that gave it
    /// that version (its sums then, and that version), for telling what a transfer left.
    /// Versions with no entry (or accounts of another org) are left out.
    pub async fn accounts_at_versions(
        &self,
        org: OrgId,
        versions: &[(AccountId, i64)],
    ) -> Result<Vec<Account>, StoreError> {
        if versions.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, numbers): (Vec<uuid::Uuid>, Vec<i64>) =
            versions.iter().map(|(id, version)| (id.0, *version)).unzip();
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT a.id, a.org_id, a.kind, a.currency, a.normal_side, a.limit_kind,
                     a.overdraft_limit, a.customer_id, a.wallet_id, a.name, a.closed,
                     e.debits_posted, e.credits_posted, e.debits_pending, e.credits_pending,
                     e.version, a.created_at
                 FROM UNNEST($1::uuid[], $2::bigint[]) AS k (account_id, version)
                 JOIN entries AS e
                     ON e.org_id = $3 AND e.account_id = k.account_id AND e.version = k.version
                 JOIN accounts AS a ON a.org_id = $3 AND a.id = k.account_id",
                &[&ids, &numbers, &org.0],
            )
            .await?;
        rows.iter().map(rows::account).collect()
    }

    /// The account's balances as the ledger recorded them at `at`: those after the last entry
    /// recorded at or before then (an index lookup), or zero before the first.
    ///
    /// # Errors
    ///
    /// [`StoreError::AccountNotFound`] when the account is not in the org.
    pub async fn balance_at(
        &self,
        org: OrgId,
        account: AccountId,
        at: DateTime<Utc>,
    ) -> Result<Balance, StoreError> {
        let account = self.account(org, account).await?.ok_or(StoreError::AccountNotFound)?;
        let client = self.pool.get().await?;
        let version = last_version_recorded(&client, &account, at, true).await?;
        let row = client
            .query_opt(
                "SELECT debits_posted, credits_posted, debits_pending, credits_pending
                 FROM entries WHERE org_id = $3 AND account_id = $1 AND version = $2",
                &[&account.id.0, &version, &account.org.0],
            )
            .await?;
        let sums = row.map_or_else(Sums::default, |row| Sums {
            debits_posted: row.get(0),
            credits_posted: row.get(1),
            debits_pending: row.get(2),
            credits_pending: row.get(3),
        });
        Ok(Balance::new(account.currency, account.normal_side, sums))
    }

    /// A page of the account's statement: its entries in the order they were recorded, with the
    /// running balance after each.
    ///
    /// # Errors
    ///
    /// [`StoreError::AccountNotFound`] when the account is not in the org.
    pub async fn statement(
        &self,
        org: OrgId,
        account: AccountId,
        query: &StatementQuery,
    ) -> Result<StatementPage, StoreError> {
        let account = self.account(org, account).await?.ok_or(StoreError::AccountNotFound)?;
        let limit = query.limit.max(1);
        let client = self.pool.get().await?;
        let (after, until) = version_range(&client, &account, query.from, query.to).await?;
        let after = query.after_version.unwrap_or(0).max(after);
        let lines = statement_rows(&client, &account, after, until, limit).await?;
        let full = i64::try_from(lines.len()).is_ok_and(|n| n == limit);
        let next_after_version = if full { lines.last().map(|line| line.version) } else { None };
        Ok(StatementPage { lines, next_after_version })
    }

    /// The accepted transfers that touched the account, newest first, before the cursor
    /// `before_version` (an account version) when given.
    pub async fn account_transfers(
        &self,
        org: OrgId,
        account: AccountId,
        before_version: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Transfer>, StoreError> {
        let client = self.pool.get().await?;
        let columns: String = rows::TRANSFER_COLUMNS
            .split(", ")
            .map(|column| format!("t.{column}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = client
            .query(
                &format!(
                    "SELECT {columns} FROM entries e
                     JOIN transfers t ON t.org_id = e.org_id AND t.id = e.transfer_id
                     WHERE e.org_id = $2 AND e.account_id = $1 AND e.version < $3
                     ORDER BY e.version DESC LIMIT $4"
                ),
                &[&account.0, &org.0, &before_version.unwrap_or(i64::MAX), &limit.max(1)],
            )
            .await?;
        rows.iter().map(rows::transfer).collect()
    }

    /// The org's trial balance over `[from, to)` by effective time: per account the opening
    /// balance, the period's posted debits and credits, and the closing balance; per currency
    /// totals in which debits equal credits.
    pub async fn trial_balance(
        &self,
        org: OrgId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<TrialBalance, StoreError> {
        let accounts = self.period_sums(org, from, to, &[]).await?;
        let mut lines = Vec::with_capacity(accounts.len());
        let mut totals: BTreeMap<&'static str, [i128; 6]> = BTreeMap::new();
        for account in accounts {
            let currency = account.currency;
            let normal_side = account.normal_side;
            let [opening_debits, opening_credits] = account.opening;
            let debits = account.closing[0] - opening_debits;
            let credits = account.closing[1] - opening_credits;
            let oriented = |debit: i128, credit: i128| match normal_side {
                Side::Credit => credit - debit,
                Side::Debit => debit - credit,
            };
            let opening = oriented(opening_debits.into(), opening_credits.into());
            let closing = opening + oriented(debits.into(), credits.into());
            let opening_net = i128::from(opening_debits) - i128::from(opening_credits);
            let closing_net = opening_net + i128::from(debits) - i128::from(credits);
            let total = totals.entry(currency.code()).or_default();
            total[0] += opening_net.max(0);
            total[1] += (-opening_net).max(0);
            total[2] += i128::from(debits);
            total[3] += i128::from(credits);
            total[4] += closing_net.max(0);
            total[5] += (-closing_net).max(0);
            lines.push(TrialBalanceLine {
                account: account.account,
                kind: account.kind,
                name: account.name,
                currency,
                normal_side,
                opening: money(currency, opening)?,
                debits: Money::from_minor(currency, debits),
                credits: Money::from_minor(currency, credits),
                closing: money(currency, closing)?,
            });
        }
        let totals = totals
            .into_iter()
            .map(
                |(
                    code,
                    [opening_debit, opening_credit, debits, credits, closing_debit, closing_credit],
                )| {
                    let currency = rows::currency(code)?;
                    Ok(TrialBalanceTotals {
                        currency,
                        opening_debit: money(currency, opening_debit)?,
                        opening_credit: money(currency, opening_credit)?,
                        debits: money(currency, debits)?,
                        credits: money(currency, credits)?,
                        closing_debit: money(currency, closing_debit)?,
                        closing_credit: money(currency, closing_credit)?,
                    })
                },
            )
            .collect::<Result<_, StoreError>>()?;
        Ok(TrialBalance { org, from, to, lines, totals })
    }
}

/// The version of the account's last entry recorded at or before `at` (`inclusive`) or
/// strictly before it; 0 when there is none.
///
/// An account's entries are recorded in version order at times that never go back (the store
/// reads the clock after locking the account), so a binary search over the primary key finds
/// it in about log2(versions) index lookups, with no index on the time.
async fn last_version_recorded(
    client: &deadpool_postgres::Client,
    account: &super::Account,
    at: DateTime<Utc>,
    inclusive: bool,
) -> Result<i64, StoreError> {
    let row = client
        .query_one(
            "WITH RECURSIVE search (lo, hi) AS (
                 SELECT 0::int8, $2::int8
               UNION ALL
                 SELECT CASE WHEN found THEN mid ELSE s.lo END,
                        CASE WHEN found THEN s.hi ELSE mid - 1 END
                 FROM search s
                 CROSS JOIN LATERAL (SELECT (s.lo + s.hi + 1) / 2 AS mid) m
                 JOIN entries e ON e.org_id = $5 AND e.account_id = $1 AND e.version = m.mid
                 CROSS JOIN LATERAL (
                     SELECT e.created_at < $3 OR ($4 AND e.created_at = $3) AS found
                 ) f
                 WHERE s.lo < s.hi
             )
             SELECT min(hi) FROM search",
            &[&account.id.0, &account.version, &at, &inclusive, &account.org.0],
        )
        .await?;
    Ok(row.get::<_, Option<i64>>(0).unwrap_or(0))
}

/// The versions an account's statement of entries recorded in `[from, to)` spans: its lines
/// are the entries after the first number up to the second.
pub(super) async fn version_range(
    client: &deadpool_postgres::Client,
    account: &super::Account,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(i64, i64), StoreError> {
    // Entries recorded in [from, to) are those after the last one recorded before `from`, up
    // to the last one recorded before `to`.
    let after = match from {
        Some(from) => last_version_recorded(client, account, from, false).await?,
        None => 0,
    };
    let until = match to {
        Some(to) => last_version_recorded(client, account, to, false).await?,
        None => account.version,
    };
    Ok((after, until))
}

/// At most `limit` statement lines of the account: its entries after version `after` up to
/// `until`, in version order (a primary-key range), each with its transfer's kind and code.
pub(super) async fn statement_rows(
    client: &deadpool_postgres::Client,
    account: &super::Account,
    after: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<StatementLine>, StoreError> {
    let rows = client
        .query(
            "SELECT e.version, e.transfer_id, t.kind, t.code, e.side, e.amount_posted,
                 e.amount_pending, e.debits_posted, e.credits_posted, e.debits_pending,
                 e.credits_pending, e.effective_at, e.created_at
             FROM entries e JOIN transfers t ON t.org_id = e.org_id AND t.id = e.transfer_id
             WHERE e.org_id = $5 AND e.account_id = $1 AND e.version > $2 AND e.version <= $3
             ORDER BY e.version LIMIT $4",
            &[&account.id.0, &after, &until, &limit, &account.org.0],
        )
        .await?;
    let currency = account.currency;
    rows.iter()
        .map(|row| {
            let kind: &str = row.get(2);
            let sums = Sums {
                debits_posted: row.get(7),
                credits_posted: row.get(8),
                debits_pending: row.get(9),
                credits_pending: row.get(10),
            };
            Ok(StatementLine {
                version: row.get(0),
                transfer_id: TransferId(row.get(1)),
                kind: TransferKind::from_name(kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("transfer kind {kind:?}")))?,
                code: row.get(3),
                side: rows::side(row.get(4))?,
                amount_posted: Money::from_minor(currency, row.get(5)),
                amount_pending: Money::from_minor(currency, row.get(6)),
                balance: Balance::new(currency, account.normal_side, sums),
                effective_at: row.get(11),
                created_at: row.get(12),
            })
        })
        .collect()
}

pub(super) fn money(currency: Currency, minor: i128) -> Result<Money, StoreError> {
    let minor = i64::try_from(minor)
        .map_err(|_| StoreError::InvalidAmount(crate::money::MoneyError::Overflow))?;
    Ok(Money::from_minor(currency, minor))
}

/// One posted entry of the general ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerLine {
    pub effective_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub transfer_id: TransferId,
    pub kind: TransferKind,
    pub code: String,
    pub account: AccountId,
    pub account_kind: AccountKind,
    pub account_name: Option<String>,
    pub side: Side,
    pub amount: Money,
}

/// Where a general ledger export has read up to: the last line's place in its order.
type LedgerCursor = (DateTime<Utc>, uuid::Uuid, uuid::Uuid, i64);

impl Store {
    /// The org's posted entries whose effective time is in `[from, to)`, in effective-time
    /// order (then transfer, account and version), as a stream read in keyset pages of
    /// [`super::EXPORT_PAGE_ROWS`] through the entries' effective-time index (migration 0027):
    /// memory stays flat however long the period, and no statement runs longer than a page
    /// however slow the reader. Each page is its own snapshot: an entry committed during the
    /// download is in it only if its place comes after what was already read (a period that
    /// is closed does not change).
    ///
    /// The stream's items carry the failures.
    pub fn general_ledger(
        &self,
        org: OrgId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl futures_util::Stream<Item = Result<LedgerLine, StoreError>> + Send + 'static {
        use futures_util::{StreamExt as _, TryStreamExt as _};
        let store = self.clone();
        let pages = futures_util::stream::try_unfold(
            Some(None::<LedgerCursor>),
            move |cursor: Option<Option<LedgerCursor>>| {
                let store = store.clone();
                async move {
                    let Some(cursor) = cursor else { return Ok::<_, StoreError>(None) };
                    let (lines, next) = store.ledger_page(org, from, to, cursor).await?;
                    Ok(Some((
                        futures_util::stream::iter(lines.into_iter().map(Ok)),
                        next.map(Some),
                    )))
                }
            },
        );
        pages.try_flatten().boxed()
    }

    /// One page of [`Store::general_ledger`] after `cursor`, and the cursor of the next page
    /// when this one is full.
    async fn ledger_page(
        &self,
        org: OrgId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<LedgerCursor>,
    ) -> Result<(Vec<LedgerLine>, Option<LedgerCursor>), StoreError> {
        let client = self.pool.get().await?;
        let (at, transfer, account, version) =
            cursor.map_or((from, None, None, None), |c| (c.0, Some(c.1), Some(c.2), Some(c.3)));
        let rows = client
            .query(
                "SELECT e.effective_at, e.created_at, e.transfer_id, t.kind, t.code, e.account_id,
                     a.kind, a.name, a.currency, e.side, e.amount_posted, e.version
                 FROM entries e
                 JOIN accounts a ON a.org_id = e.org_id AND a.id = e.account_id
                 JOIN transfers t ON t.org_id = e.org_id AND t.id = e.transfer_id
                 WHERE e.org_id = $1 AND e.effective_at >= $2 AND e.effective_at < $3
                     AND e.amount_posted > 0
                     AND ($4::uuid IS NULL
                         OR (e.effective_at, e.transfer_id, e.account_id, e.version)
                             > ($2, $4, $5, $6))
                 ORDER BY e.effective_at, e.transfer_id, e.account_id, e.version
                 LIMIT $7",
                &[&org.0, &at, &to, &transfer, &account, &version, &super::EXPORT_PAGE_ROWS],
            )
            .await?;
        let mut next = None;
        let lines = rows
            .iter()
            .map(|row| {
                next = Some((row.get(0), row.get(2), row.get(5), row.get(11)));
                ledger_line(row)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let full = i64::try_from(lines.len()).is_ok_and(|n| n == super::EXPORT_PAGE_ROWS);
        Ok((lines, next.filter(|_| full)))
    }
}

/// A general ledger line from a row of [`Store::ledger_page`]'s query.
fn ledger_line(row: &tokio_postgres::Row) -> Result<LedgerLine, StoreError> {
    let kind: &str = row.get(3);
    let account_kind: &str = row.get(6);
    let currency = rows::currency(row.get(8))?;
    Ok(LedgerLine {
        effective_at: row.get(0),
        recorded_at: row.get(1),
        transfer_id: TransferId(row.get(2)),
        kind: TransferKind::from_name(kind)
            .ok_or_else(|| StoreError::Corrupt(format!("transfer kind {kind:?}")))?,
        code: row.get(4),
        account: AccountId(row.get(5)),
        account_kind: AccountKind::from_name(account_kind)
            .ok_or_else(|| StoreError::Corrupt(format!("account kind {account_kind:?}")))?,
        account_name: row.get(7),
        side: rows::side(row.get(9))?,
        amount: Money::from_minor(currency, row.get(10)),
    })
}
