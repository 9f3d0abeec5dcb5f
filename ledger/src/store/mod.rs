//! The PostgreSQL store: the only module that knows SQL.
//!
//! [`Store::post`] is where balances change: it applies a batch of transfer requests in one
//! database transaction, with the accounts locked in id order and the rules deciding every
//! outcome. [`Store::prepare`] and [`Store::commit_prepared`] apply a batch in two halves so
//! that a writer's consecutive batches overlap (`speculate.rs`). Everything else here creates
//! accounts or reads.

mod chain;
mod effects;
mod events;
mod migrate;
mod movements;
mod post;
mod query;
mod reports;
mod rows;
mod speculate;
mod together;
mod verify;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;
use tokio_postgres::error::SqlState;

use crate::ids::{AccountId, CustomerId, OrgId};
use crate::money::{Currency, Money};
use crate::rules::{AccountKind, LimitPolicy, Side, Sums};

pub use chain::{ChainReport, PeriodClose};
pub use events::{
    Told, ToldWindow, event_id, event_place, event_type, new_event_batch_id, told, told_by_id,
};
pub use migrate::{fingerprint as migrations_fingerprint, migrate};
pub use movements::Movement;
pub use query::{
    LedgerLine, StatementLine, StatementPage, StatementQuery, TrialBalance, TrialBalanceLine,
    TrialBalanceTotals,
};
pub use reports::{
    BalanceSheet, BalanceSheetCurrency, EXPORT_PAGE_ROWS, IncomeLine, IncomeStatement,
    IncomeTotals, KindBalance, Section, StatementExport,
};
pub use speculate::{Prepared, Speculation};
pub use verify::Violation;

/// A failure of the store, or a refusal of something other than a transfer (transfer
/// rejections are values: [`crate::rules::RejectReason`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A migration already applied to this database has been edited since.
    #[error("migration {name} was edited after it was applied; migrations are forward-only")]
    MigrationEdited { name: String },
    /// The org does not exist.
    #[error("org not found")]
    OrgNotFound,
    /// The account does not exist in the org.
    #[error("account not found")]
    AccountNotFound,
    /// An account with the same identity (a customer's wallet id, or the account id) exists.
    #[error("account already exists")]
    AccountExists,
    /// An account with a balance or pending transfers cannot be closed.
    #[error("account has a balance or pending transfers")]
    AccountNotEmpty,
    /// An amount does not fit the account's currency.
    #[error("invalid amount")]
    InvalidAmount(#[source] crate::money::MoneyError),
    /// A row the store wrote could not be read back: the database was changed behind its back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A period cannot be closed through a time after the time now.
    #[error("the period to close ends in the future")]
    PeriodInFuture,
    /// A period cannot be closed through a time at or before the end of the last close.
    #[error("the period is already closed")]
    PeriodAlreadyClosed,
    /// The batch kept conflicting with concurrent writers and was not applied.
    #[error("too many conflicts with concurrent writers")]
    Contention,
    /// The database refused or failed a statement.
    #[error("database error")]
    Db(#[from] tokio_postgres::Error),
    /// No connection could be taken from the pool.
    #[error("database pool error")]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl StoreError {
    /// Whether the statement failed only because an earlier one of its transaction had
    /// (`25P02`): the transaction is rolled back, and the earlier error is the cause.
    pub(crate) fn is_aborted(&self) -> bool {
        matches!(self, Self::Db(error) if error.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION))
    }

    /// Whether the failure came from a conflict with another transaction, so that the same work
    /// can simply be tried again: serialization failures, deadlocks, unique violations raised
    /// when a concurrent batch committed the same id first, and statements refused after one
    /// of these.
    pub fn is_conflict(&self) -> bool {
        let Self::Db(error) = self else { return false };
        match error.code() {
            // The last: a statement after a failed one of the same transaction (statements sent
            // together answer in order, and the failure reported may be a later statement's);
            // the transaction is rolled back, so trying the batch again is safe.
            Some(
                &SqlState::T_R_SERIALIZATION_FAILURE
                | &SqlState::T_R_DEADLOCK_DETECTED
                | &SqlState::IN_FAILED_SQL_TRANSACTION,
            ) => true,
            Some(&SqlState::UNIQUE_VIOLATION) => {
                let constraint = error.as_db_error().and_then(|db| db.constraint());
                matches!(
                    constraint,
                    Some("transfers_pkey" | "transfers_resolution" | "transfers_reversal")
                )
            }
            _ => false,
        }
    }
}

/// A new account.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub id: AccountId,
    pub org: OrgId,
    pub kind: AccountKind,
    pub currency: Currency,
    /// The kind's usual side when `None` ([`AccountKind::normal_side`]).
    pub normal_side: Option<Side>,
    /// The kind's usual limit when `None` ([`AccountKind::limit`]).
    pub limit: Option<LimitPolicy>,
    /// The owner, for a wallet.
    pub customer: Option<CustomerId>,
    /// The app-chosen wallet id, for a wallet.
    pub wallet_id: Option<String>,
    pub name: Option<String>,
}

impl NewAccount {
    /// A new account of `kind` with the kind's usual side and limit.
    pub fn new(org: OrgId, kind: AccountKind, currency: Currency) -> Self {
        Self {
            id: AccountId::generate(),
            org,
            kind,
            currency,
            normal_side: None,
            limit: None,
            customer: None,
            wallet_id: None,
            name: None,
        }
    }
}

/// An account with its balances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: AccountId,
    pub org: OrgId,
    pub kind: AccountKind,
    pub currency: Currency,
    pub normal_side: Side,
    #[serde(skip)]
    pub limit: LimitPolicy,
    pub customer: Option<CustomerId>,
    pub wallet_id: Option<String>,
    pub name: Option<String>,
    pub closed: bool,
    pub sums: Sums,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

impl Account {
    /// The account's balances, as money.
    pub fn balance(&self) -> Balance {
        Balance::new(self.currency, self.normal_side, self.sums)
    }
}

/// An account's balances as money: the four sums and the derived balances of `ledger.md`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Balance {
    pub currency: Currency,
    pub debits_posted: Money,
    pub credits_posted: Money,
    pub debits_pending: Money,
    pub credits_pending: Money,
    /// Settled balance (the platform's "actual").
    pub posted: Money,
    /// Balance once every pending transfer is posted.
    pub pending: Money,
    /// What can be spent now.
    pub available: Money,
}

impl Balance {
    /// The balances of sums kept in `currency` on an account with this normal side.
    pub fn new(currency: Currency, normal_side: Side, sums: Sums) -> Self {
        let money = |minor: i128| {
            // Each derived balance is a difference of two sums that fit i64, and the ledger
            // keeps every sum's total within i64 (see `BalanceOverflow`).
            Money::from_minor(currency, i64::try_from(minor).unwrap_or(i64::MAX))
        };
        Self {
            currency,
            debits_posted: Money::from_minor(currency, sums.debits_posted),
            credits_posted: Money::from_minor(currency, sums.credits_posted),
            debits_pending: Money::from_minor(currency, sums.debits_pending),
            credits_pending: Money::from_minor(currency, sums.credits_pending),
            posted: money(sums.posted(normal_side)),
            pending: money(sums.pending(normal_side)),
            available: money(sums.available(normal_side)),
        }
    }
}

/// Where the store takes the time it records transfers at.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The database's clock, read after the batch's accounts are locked (or, for an
    /// overlapped batch, after their states are read and before they are found unchanged
    /// under the lock), so that the times of an account's entries never go backwards,
    /// whichever server process writes them.
    #[default]
    Database,
    /// A clock the caller sets: for tests that need to control expiry and effective times.
    Manual(std::sync::Arc<std::sync::Mutex<DateTime<Utc>>>),
}

impl Clock {
    /// A manual clock set to `now`.
    pub fn manual(now: DateTime<Utc>) -> Self {
        Self::Manual(std::sync::Arc::new(std::sync::Mutex::new(now)))
    }

    /// The manual clock's time, or `None` for the database's clock.
    fn manual_now(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Database => None,
            // A poisoned lock still holds a valid time.
            Self::Manual(now) => {
                Some(*now.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
            }
        }
    }

    /// Moves a manual clock forward; does nothing to the database's clock.
    pub fn advance(&self, by: chrono::TimeDelta) {
        if let Self::Manual(now) = self {
            *now.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += by;
        }
    }
}

/// The ledger's storage. Cheap to clone: it holds a connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    clock: Clock,
}

impl Store {
    /// A store over this pool's database, which must be migrated ([`migrate`]).
    pub fn new(pool: Pool) -> Self {
        Self { pool, clock: Clock::Database }
    }

    /// The same store, taking the time from `clock`.
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Creates an org (idempotent for the same id).
    pub async fn create_org(&self, id: OrgId, name: &str) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        // With its chain head, which every batch of the org locks (`chain.rs`).
        client
            .execute(
                "WITH org AS (
                     INSERT INTO orgs (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING
                 )
                 INSERT INTO ledger_heads (org_id) VALUES ($1) ON CONFLICT (org_id) DO NOTHING",
                &[&id.0, &name],
            )
            .await?;
        Ok(())
    }

    /// Every org's id, in id order: for work done org by org in all of them (the retention
    /// sweep). Across orgs by nature; `orgs` is small, and a reference table (one copy on
    /// every node) where the schema is distributed by org.
    pub async fn orgs(&self) -> Result<Vec<OrgId>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT id FROM orgs ORDER BY id", &[]).await?;
        Ok(rows.iter().map(|row| OrgId(row.get(0))).collect())
    }

    /// Creates an account with zero balances.
    ///
    /// # Errors
    ///
    /// [`StoreError::OrgNotFound`], and [`StoreError::AccountExists`] for a taken id or a
    /// customer's wallet id that is taken.
    pub async fn create_account(&self, new: &NewAccount) -> Result<Account, StoreError> {
        let client = self.pool.get().await?;
        let side = new.normal_side.unwrap_or_else(|| new.kind.normal_side());
        let limit = new.limit.unwrap_or_else(|| new.kind.limit());
        let (limit_kind, overdraft) = rows::limit_columns(limit);
        let result = client
            .query_one(
                &format!(
                    "INSERT INTO accounts (id, org_id, kind, currency, normal_side, limit_kind,
                         overdraft_limit, customer_id, wallet_id, name)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     RETURNING {}",
                    rows::ACCOUNT_COLUMNS
                ),
                &[
                    &new.id.0,
                    &new.org.0,
                    &new.kind.as_str(),
                    &new.currency.code(),
                    &side.as_str(),
                    &limit_kind,
                    &overdraft,
                    &new.customer.map(|id| id.0),
                    &new.wallet_id,
                    &new.name,
                ],
            )
            .await;
        match result {
            Ok(row) => rows::account(&row),
            Err(error) => Err(match error.code() {
                Some(&SqlState::FOREIGN_KEY_VIOLATION) => StoreError::OrgNotFound,
                Some(&SqlState::UNIQUE_VIOLATION) => StoreError::AccountExists,
                _ => StoreError::Db(error),
            }),
        }
    }

    /// Closes an account: it takes no further postings; its history stays.
    ///
    /// # Errors
    ///
    /// [`StoreError::AccountNotFound`], and [`StoreError::AccountNotEmpty`] while it has a
    /// posted balance or pending transfers.
    pub async fn close_account(&self, org: OrgId, id: AccountId) -> Result<Account, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE accounts SET closed = true
                     WHERE id = $1 AND org_id = $2 AND debits_posted = credits_posted
                       AND debits_pending = 0 AND credits_pending = 0
                     RETURNING {}",
                    rows::ACCOUNT_COLUMNS
                ),
                &[&id.0, &org.0],
            )
            .await?;
        match row {
            Some(row) => rows::account(&row),
            None => match self.account(org, id).await? {
                Some(_) => Err(StoreError::AccountNotEmpty),
                None => Err(StoreError::AccountNotFound),
            },
        }
    }

    /// Brings the database to a steady state after a bulk load: statistics current (plans made
    /// on empty tables stay slow), dead tuples vacuumed (so that autovacuum does not start in
    /// the middle of what follows) and, where the role may, the WAL checkpointed.
    pub async fn settle(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client.batch_execute("VACUUM ANALYZE").await?;
        if let Err(error) = client.batch_execute("CHECKPOINT").await {
            // CHECKPOINT needs privileges that a user's own database role may lack.
            tracing::info!(error = %error, "could not checkpoint; continuing");
        }
        Ok(())
    }

    /// The account, with its balances now.
    pub async fn account(&self, org: OrgId, id: AccountId) -> Result<Option<Account>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {} FROM accounts WHERE id = $1 AND org_id = $2",
                    rows::ACCOUNT_COLUMNS
                ),
                &[&id.0, &org.0],
            )
            .await?;
        row.as_ref().map(rows::account).transpose()
    }

    /// An org's accounts of one kind, optionally only one customer's, in creation order (ids
    /// are time-ordered), after the cursor `after` and at most `limit` of them.
    pub async fn accounts(
        &self,
        org: OrgId,
        kind: AccountKind,
        customer: Option<CustomerId>,
        after: Option<AccountId>,
        limit: i64,
    ) -> Result<Vec<Account>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM accounts
                     WHERE org_id = $1 AND kind = $2
                         AND ($3::uuid IS NULL OR customer_id = $3)
                         AND ($4::uuid IS NULL OR id > $4)
                     ORDER BY id LIMIT $5",
                    rows::ACCOUNT_COLUMNS
                ),
                &[&org.0, &kind.as_str(), &customer.map(|c| c.0), &after.map(|a| a.0), &limit],
            )
            .await?;
        rows.iter().map(rows::account).collect()
    }

    /// A customer's wallet by the app-chosen wallet id.
    pub async fn wallet(
        &self,
        org: OrgId,
        customer: CustomerId,
        wallet_id: &str,
    ) -> Result<Option<Account>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {} FROM accounts
                     WHERE org_id = $1 AND customer_id = $2 AND wallet_id = $3
                         AND kind = 'wallet'",
                    rows::ACCOUNT_COLUMNS
                ),
                &[&org.0, &customer.0, &wallet_id],
            )
            .await?;
        row.as_ref().map(rows::account).transpose()
    }
}
