//! The reports finance closes the books from: posted sums per account at two effective times
//! (the trial balance's, the balance sheet's and the income statement's common ground), the
//! balance sheet, the income statement, and an account's whole statement read in keyset pages
//! for exports.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use serde::Serialize;

use super::query::{money, statement_rows};
use super::{Account, Balance, Store, StoreError, rows};
use crate::ids::{AccountId, OrgId};
use crate::money::{Currency, Money};
use crate::rules::{AccountKind, Side, Sums};

/// Rows an export reads per statement: each page is a short indexed query of its own, so a
/// download of millions of lines neither holds one statement open for its whole length nor
/// keeps more than a page in memory.
pub const EXPORT_PAGE_ROWS: i64 = 5_000;

/// The working memory of a report's statement: enough to sort and join one row per account of
/// a large org in memory (PostgreSQL's default, 4 MB, spills 100,000 accounts to disk).
const REPORT_WORK_MEM: &str = "SET LOCAL work_mem = '128MB'";

/// Where an account kind stands on the balance sheet.
///
/// Every kind is reported in the section of what it is to the org, with its balance on that
/// section's side whatever the account's own normal side (assets debit minus credit, the others
/// credit minus debit), so that assets = liabilities + equity + the current result holds exactly
/// in every currency: every transfer's debits equal its credits per currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// What the org holds: channel clearing accounts (money held at a provider or bank) and
    /// external accounts (the other side of money that came in from outside the ledger's
    /// channels; debit-normal, so a debit balance is money received and held).
    Assets,
    /// What the org owes: customers' wallets.
    Liabilities,
    /// What is the org's own: purses (its own funds, by the glossary) and equity (capital).
    Equity,
    /// Revenue less expenses not yet closed into equity: the current result.
    Result,
}

impl Section {
    /// The section of an account kind.
    pub fn of(kind: AccountKind) -> Self {
        match kind {
            AccountKind::Channel | AccountKind::External => Self::Assets,
            AccountKind::Wallet => Self::Liabilities,
            AccountKind::Purse | AccountKind::Equity => Self::Equity,
            AccountKind::Revenue | AccountKind::Expense => Self::Result,
        }
    }

    /// The side a balance in this section is counted on.
    pub fn side(self) -> Side {
        match self {
            Self::Assets => Side::Debit,
            Self::Liabilities | Self::Equity | Self::Result => Side::Credit,
        }
    }
}

/// One kind's accounts in one currency on the balance sheet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KindBalance {
    pub kind: AccountKind,
    /// How many accounts of the kind hold the currency.
    pub accounts: i64,
    /// Their balance on the section's side (negative when against it).
    pub balance: Money,
}

/// The balance sheet in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BalanceSheetCurrency {
    pub currency: Currency,
    pub assets: Vec<KindBalance>,
    pub liabilities: Vec<KindBalance>,
    pub equity: Vec<KindBalance>,
    pub total_assets: Money,
    pub total_liabilities: Money,
    pub total_equity: Money,
    /// Revenue less expenses up to the balance sheet's time (credit minus debit of both).
    pub current_result: Money,
    /// Whether assets equal liabilities + equity + the current result, as they must.
    pub balanced: bool,
}

/// An org's balance sheet at a moment, by effective time, per currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BalanceSheet {
    pub org: OrgId,
    pub at: DateTime<Utc>,
    pub currencies: Vec<BalanceSheetCurrency>,
}

/// A revenue or expense account's movement over an income statement's period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IncomeLine {
    pub account: AccountId,
    pub kind: AccountKind,
    pub name: Option<String>,
    pub currency: Currency,
    /// Revenue earned (credits less debits) or expense incurred (debits less credits).
    pub amount: Money,
}

/// An income statement's totals in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IncomeTotals {
    pub currency: Currency,
    pub revenue: Money,
    pub expenses: Money,
    /// Revenue less expenses: the period's result.
    pub net_result: Money,
}

/// An org's income statement over `[from, to)` by effective time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IncomeStatement {
    pub org: OrgId,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub lines: Vec<IncomeLine>,
    pub totals: Vec<IncomeTotals>,
}

/// An account's posted sums at the two times of a report.
#[derive(Clone, Debug)]
pub(super) struct PeriodSums {
    pub account: AccountId,
    pub kind: AccountKind,
    pub name: Option<String>,
    pub currency: Currency,
    pub normal_side: Side,
    /// Posted debits and credits effective before the period's start.
    pub opening: [i64; 2],
    /// Posted debits and credits effective before the period's end.
    pub closing: [i64; 2],
}

/// Where the posted sums at a time are read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// The start of the history: the entries effective before the time, summed.
    History,
    /// The close through this time: its sums, plus the entries effective after it and before
    /// the time.
    Close(DateTime<Utc>),
    /// The end of the history: the accounts' sums of all time, less the entries effective at
    /// or after the time.
    End,
}

impl Start {
    /// The nearest start for the sums at `time`, given the org's first and last effective
    /// times and its closes (in order).
    fn of(
        time: DateTime<Utc>,
        first: Option<DateTime<Utc>>,
        last: Option<DateTime<Utc>>,
        closes: &[DateTime<Utc>],
    ) -> Self {
        let (Some(first), Some(last)) = (first, last) else { return Self::History };
        // Sums "before `time`" are those effective at or before `time` less a microsecond
        // (the stored resolution): a close through that or earlier is a start.
        let close = closes.iter().rev().find(|&&through| through < time).copied();
        let forwards = match close {
            Some(through) => Self::Close(through),
            None => Self::History,
        };
        let forward_distance = time - close.map_or(first, |through| through.max(first));
        if forward_distance <= last - time { forwards } else { Self::End }
    }

    /// The close whose sums it starts from.
    fn close(self) -> Option<DateTime<Utc>> {
        match self {
            Self::Close(through) => Some(through),
            Self::History | Self::End => None,
        }
    }

    /// The effective times `[low, high)` of the entries summed for the sums at `time`; `None`
    /// for no bound.
    fn entries_between(
        self,
        time: DateTime<Utc>,
    ) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        match self {
            Self::History => (None, Some(time)),
            // After the close: `through` is the last instant it covers.
            Self::Close(through) => {
                (Some(through + chrono::TimeDelta::microseconds(1)), Some(time))
            }
            Self::End => (Some(time), None),
        }
    }
}

impl Store {
    /// Every account of the org (of `kinds`, all when empty) with its posted debits and
    /// credits effective before `from` and before `to`, in currency, kind and creation order.
    ///
    /// Each of the two times is read from the nearest of three kinds of starting point, judged
    /// by time (standing in for the count of entries between): the start of the history (sums
    /// of zero), the last period close at or before it (every account's sums at the close,
    /// migration 0031, which nothing can change), plus the entries effective from there until
    /// the time; or the end of the history (the account's sums of all time), less the entries
    /// effective at or after the time. Entries are indexed by effective time (migration 0027),
    /// so the cost grows with the entries between each time and its starting point, not with
    /// the ledger: a report of a closed period, or one from the last close until after the
    /// last entry, reads no entries at all. One statement, so the accounts' sums, the close's
    /// and the entries are one snapshot.
    pub(super) async fn period_sums(
        &self,
        org: OrgId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        kinds: &[AccountKind],
    ) -> Result<Vec<PeriodSums>, StoreError> {
        let mut client = self.pool.get().await?;
        // A read-only transaction, so that the sums' sort and joins of one row per account
        // (100,000 and more) get the memory to run without spilling to disk, for these
        // statements only.
        let client = client.build_transaction().read_only(true).start().await?;
        client.batch_execute(REPORT_WORK_MEM).await?;
        let bounds = client
            .query_one(
                "SELECT (SELECT min(effective_at) FROM entries
                             WHERE org_id = $1 AND amount_posted > 0),
                        (SELECT max(effective_at) FROM entries
                             WHERE org_id = $1 AND amount_posted > 0),
                        ARRAY(SELECT through FROM period_closes WHERE org_id = $1
                              ORDER BY through)",
                &[&org.0],
            )
            .await?;
        let (first, last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
            (bounds.get(0), bounds.get(1));
        let closes: Vec<DateTime<Utc>> = bounds.get(2);
        let (from_start, to_start) =
            (Start::of(from, first, last, &closes), Start::of(to, first, last, &closes));
        let sums = |start: &Start, side: &str, point: &str| match start {
            Start::History | Start::Close(_) => {
                format!(
                    "(coalesce(b_{point}.{side}_posted, 0) + coalesce(m.{side}_{point}, 0))::int8"
                )
            }
            Start::End => format!("(a.{side}_posted - coalesce(m.{side}_{point}, 0))::int8"),
        };
        let sql = format!(
            "WITH moved AS (
                 SELECT account_id,
                     sum(amount_posted) FILTER (WHERE side = 'debit'
                         AND effective_at >= {b2} AND effective_at < {b3}) AS debits_from,
                     sum(amount_posted) FILTER (WHERE side = 'credit'
                         AND effective_at >= {b2} AND effective_at < {b3}) AS credits_from,
                     sum(amount_posted) FILTER (WHERE side = 'debit'
                         AND effective_at >= {b4} AND effective_at < {b5}) AS debits_to,
                     sum(amount_posted) FILTER (WHERE side = 'credit'
                         AND effective_at >= {b4} AND effective_at < {b5}) AS credits_to
                 FROM entries
                 WHERE org_id = $1 AND amount_posted > 0
                     AND ((effective_at >= {b2} AND effective_at < {b3})
                         OR (effective_at >= {b4} AND effective_at < {b5}))
                 GROUP BY account_id
             )
             SELECT a.id, a.kind, a.name, a.currency, a.normal_side, {}, {}, {}, {}
             FROM accounts a
             LEFT JOIN moved m ON m.account_id = a.id
             LEFT JOIN period_balances b_from ON b_from.org_id = a.org_id
                 AND b_from.through = $7 AND b_from.account_id = a.id
             LEFT JOIN period_balances b_to ON b_to.org_id = a.org_id
                 AND b_to.through = $8 AND b_to.account_id = a.id
             WHERE a.org_id = $1 AND (cardinality($6::text[]) = 0 OR a.kind = ANY($6))
             ORDER BY a.currency, a.kind, a.created_at, a.id",
            sums(&from_start, "debits", "from"),
            sums(&from_start, "credits", "from"),
            sums(&to_start, "debits", "to"),
            sums(&to_start, "credits", "to"),
            b2 = "coalesce($2::timestamptz, '-infinity')",
            b3 = "coalesce($3::timestamptz, 'infinity')",
            b4 = "coalesce($4::timestamptz, '-infinity')",
            b5 = "coalesce($5::timestamptz, 'infinity')",
        );
        let (from_low, from_high) = from_start.entries_between(from);
        let (to_low, to_high) = to_start.entries_between(to);
        let (from_close, to_close) = (from_start.close(), to_start.close());
        let kinds: Vec<&str> = kinds.iter().map(|kind| kind.as_str()).collect();
        let rows = client
            .query(
                &sql,
                &[&org.0, &from_low, &from_high, &to_low, &to_high, &kinds, &from_close, &to_close],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let kind: &str = row.get(1);
                Ok(PeriodSums {
                    account: AccountId(row.get(0)),
                    kind: AccountKind::from_name(kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("account kind {kind:?}")))?,
                    name: row.get(2),
                    currency: rows::currency(row.get(3))?,
                    normal_side: rows::side(row.get(4))?,
                    opening: [row.get(5), row.get(6)],
                    closing: [row.get(7), row.get(8)],
                })
            })
            .collect()
    }

    /// The org's balance sheet at `at` by effective time: every account's posted balance then,
    /// grouped by kind and currency into assets, liabilities and equity ([`Section`]), with
    /// the current result (revenue less expenses of all time up to `at`).
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidAmount`] when a total does not fit 64-bit minor units.
    pub async fn balance_sheet(
        &self,
        org: OrgId,
        at: DateTime<Utc>,
    ) -> Result<BalanceSheet, StoreError> {
        let sums = self.period_sums(org, at, at, &[]).await?;
        // Per currency and kind: accounts and the balance on the kind's section's side.
        let mut groups: BTreeMap<(&'static str, &'static str), (AccountKind, i64, i128)> =
            BTreeMap::new();
        for account in &sums {
            let [debits, credits] = account.closing;
            let net = i128::from(debits) - i128::from(credits);
            let balance = match Section::of(account.kind).side() {
                Side::Debit => net,
                Side::Credit => -net,
            };
            let group = groups.entry((account.currency.code(), account.kind.as_str())).or_insert((
                account.kind,
                0,
                0,
            ));
            group.1 += 1;
            group.2 += balance;
        }
        let mut currencies: BTreeMap<&'static str, Vec<(AccountKind, i64, i128)>> = BTreeMap::new();
        for ((code, _), group) in groups {
            currencies.entry(code).or_default().push(group);
        }
        let currencies = currencies
            .into_iter()
            .map(|(code, groups)| {
                let currency = rows::currency(code)?;
                let mut sheet = BalanceSheetCurrency {
                    currency,
                    assets: Vec::new(),
                    liabilities: Vec::new(),
                    equity: Vec::new(),
                    total_assets: Money::zero(currency),
                    total_liabilities: Money::zero(currency),
                    total_equity: Money::zero(currency),
                    current_result: Money::zero(currency),
                    balanced: false,
                };
                let mut totals = [0_i128; 4];
                for (kind, accounts, balance) in groups {
                    let line = KindBalance { kind, accounts, balance: money(currency, balance)? };
                    match Section::of(kind) {
                        Section::Assets => {
                            totals[0] += balance;
                            sheet.assets.push(line);
                        }
                        Section::Liabilities => {
                            totals[1] += balance;
                            sheet.liabilities.push(line);
                        }
                        Section::Equity => {
                            totals[2] += balance;
                            sheet.equity.push(line);
                        }
                        Section::Result => totals[3] += balance,
                    }
                }
                sheet.total_assets = money(currency, totals[0])?;
                sheet.total_liabilities = money(currency, totals[1])?;
                sheet.total_equity = money(currency, totals[2])?;
                sheet.current_result = money(currency, totals[3])?;
                sheet.balanced = totals[0] == totals[1] + totals[2] + totals[3];
                Ok(sheet)
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(BalanceSheet { org, at, currencies })
    }

    /// The org's income statement over `[from, to)` by effective time: each revenue and
    /// expense account's posted movement, and per currency revenue, expenses and the result.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidAmount`] when a total does not fit 64-bit minor units.
    pub async fn income_statement(
        &self,
        org: OrgId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<IncomeStatement, StoreError> {
        let sums =
            self.period_sums(org, from, to, &[AccountKind::Revenue, AccountKind::Expense]).await?;
        let mut lines = Vec::with_capacity(sums.len());
        let mut totals: BTreeMap<&'static str, [i128; 2]> = BTreeMap::new();
        for account in sums {
            let debits = i128::from(account.closing[0]) - i128::from(account.opening[0]);
            let credits = i128::from(account.closing[1]) - i128::from(account.opening[1]);
            let total = totals.entry(account.currency.code()).or_default();
            let amount = if account.kind == AccountKind::Revenue {
                total[0] += credits - debits;
                credits - debits
            } else {
                total[1] += debits - credits;
                debits - credits
            };
            lines.push(IncomeLine {
                account: account.account,
                kind: account.kind,
                name: account.name,
                currency: account.currency,
                amount: money(account.currency, amount)?,
            });
        }
        let totals = totals
            .into_iter()
            .map(|(code, [revenue, expenses])| {
                let currency = rows::currency(code)?;
                Ok(IncomeTotals {
                    currency,
                    revenue: money(currency, revenue)?,
                    expenses: money(currency, expenses)?,
                    net_result: money(currency, revenue - expenses)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(IncomeStatement { org, from, to, lines, totals })
    }
}

/// An account's statement over a period, for an export: the account, the entries' version
/// range and the balances at its two ends. Its lines are read by [`Store::statement_lines`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementExport {
    pub account: Account,
    /// Entries recorded at or after this time (none: from the first).
    pub from: Option<DateTime<Utc>>,
    /// Entries recorded before this time (none: up to the last when it was read).
    pub to: Option<DateTime<Utc>>,
    /// The lines are the entries after this version…
    pub after_version: i64,
    /// …up to this one.
    pub until_version: i64,
    /// The balances before the first line.
    pub opening: Balance,
    /// The balances after the last line.
    pub closing: Balance,
}

impl StatementExport {
    /// How many lines the statement has.
    pub fn line_count(&self) -> i64 {
        (self.until_version - self.after_version).max(0)
    }
}

impl Store {
    /// An account's statement for entries recorded in `[from, to)` (and after the version
    /// `after_version`, when given), with its opening and closing balances: fixed when read,
    /// since entries are numbered and immutable, so its lines read later are exactly these.
    ///
    /// # Errors
    ///
    /// [`StoreError::AccountNotFound`] when the account is not in the org.
    pub async fn statement_export(
        &self,
        org: OrgId,
        account: AccountId,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        after_version: Option<i64>,
    ) -> Result<StatementExport, StoreError> {
        let account = self.account(org, account).await?.ok_or(StoreError::AccountNotFound)?;
        let client = self.pool.get().await?;
        let (after, until) = super::query::version_range(&client, &account, from, to).await?;
        let after = after_version.unwrap_or(0).max(after).min(until.max(0));
        let rows = client
            .query(
                "SELECT version, debits_posted, credits_posted, debits_pending, credits_pending
                 FROM entries WHERE org_id = $1 AND account_id = $2 AND version IN ($3, $4)",
                &[&account.org.0, &account.id.0, &after, &until],
            )
            .await?;
        let sums_at = |version: i64| {
            rows.iter().find(|row| row.get::<_, i64>(0) == version).map_or_else(
                Sums::default,
                |row| Sums {
                    debits_posted: row.get(1),
                    credits_posted: row.get(2),
                    debits_pending: row.get(3),
                    credits_pending: row.get(4),
                },
            )
        };
        let opening = Balance::new(account.currency, account.normal_side, sums_at(after));
        let closing = Balance::new(account.currency, account.normal_side, sums_at(until));
        Ok(StatementExport {
            account,
            from,
            to,
            after_version: after,
            until_version: until,
            opening,
            closing,
        })
    }

    /// The lines of a [`StatementExport`] in version order, read [`EXPORT_PAGE_ROWS`] at a
    /// time by keyset (each page a primary-key range): memory stays flat and no statement
    /// runs longer than a page, however many lines and however slow the reader.
    pub fn statement_lines(
        &self,
        export: &StatementExport,
    ) -> impl Stream<Item = Result<super::StatementLine, StoreError>> + Send + 'static {
        let store = self.clone();
        let account = export.account.clone();
        let until = export.until_version;
        futures_util::stream::try_unfold(Some(export.after_version), move |after| {
            let store = store.clone();
            let account = account.clone();
            async move {
                let Some(after) = after.filter(|after| *after < until) else {
                    return Ok::<_, StoreError>(None);
                };
                let client = store.pool.get().await?;
                let lines =
                    statement_rows(&client, &account, after, until, EXPORT_PAGE_ROWS).await?;
                let next = lines.last().map(|line| line.version).filter(|_| {
                    i64::try_from(lines.len()).is_ok_and(|count| count == EXPORT_PAGE_ROWS)
                });
                Ok(Some((futures_util::stream::iter(lines.into_iter().map(Ok)), next)))
            }
        })
        .try_flatten()
        .boxed()
    }
}
