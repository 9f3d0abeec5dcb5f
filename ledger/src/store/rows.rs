//! Mapping between the store's rows and the ledger's types.

use tokio_postgres::Row;

use super::{Account, StoreError};
use crate::ids::{AccountId, CustomerId, OrgId, TransferId};
use crate::money::{Currency, Money};
use crate::rules::{
    AccountKind, AccountState, LimitPolicy, Posting, RejectReason, Side, Sums, Transfer,
    TransferKind,
};

/// The columns [`account`] reads, in its order.
pub const ACCOUNT_COLUMNS: &str = "id, org_id, kind, currency, normal_side, limit_kind, \
    overdraft_limit, customer_id, wallet_id, name, closed, debits_posted, credits_posted, \
    debits_pending, credits_pending, version, created_at";

/// The columns [`transfer`] reads, in its order.
pub const TRANSFER_COLUMNS: &str = "id, org_id, kind, code, postings, requested, pending_id, \
    reversal_of, timeout_ms, expires_at, effective_at, created_at, context, rejection";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

pub fn currency(code: &str) -> Result<Currency, StoreError> {
    Currency::from_code(code).map_err(|_| corrupt("currency", code))
}

pub fn side(name: &str) -> Result<Side, StoreError> {
    Side::from_name(name).ok_or_else(|| corrupt("side", name))
}

pub fn limit_columns(limit: LimitPolicy) -> (&'static str, i64) {
    match limit {
        LimitPolicy::NoOverdraft => ("no_overdraft", 0),
        LimitPolicy::Overdraft(limit) => ("overdraft", limit),
        LimitPolicy::Unbounded => ("unbounded", 0),
    }
}

fn limit(kind: &str, overdraft: i64) -> Result<LimitPolicy, StoreError> {
    match kind {
        "no_overdraft" => Ok(LimitPolicy::NoOverdraft),
        "overdraft" => Ok(LimitPolicy::Overdraft(overdraft)),
        "unbounded" => Ok(LimitPolicy::Unbounded),
        _ => Err(corrupt("limit", kind)),
    }
}

fn sums(row: &Row, first: usize) -> Sums {
    Sums {
        debits_posted: row.get(first),
        credits_posted: row.get(first + 1),
        debits_pending: row.get(first + 2),
        credits_pending: row.get(first + 3),
    }
}

/// An account from a row of [`ACCOUNT_COLUMNS`].
pub fn account(row: &Row) -> Result<Account, StoreError> {
    let kind: &str = row.get(2);
    Ok(Account {
        id: AccountId(row.get(0)),
        org: OrgId(row.get(1)),
        kind: AccountKind::from_name(kind).ok_or_else(|| corrupt("account kind", kind))?,
        currency: currency(row.get(3))?,
        normal_side: side(row.get(4))?,
        limit: limit(row.get(5), row.get(6))?,
        customer: row.get::<_, Option<uuid::Uuid>>(7).map(CustomerId),
        wallet_id: row.get(8),
        name: row.get(9),
        closed: row.get(10),
        sums: sums(row, 11),
        version: row.get(15),
        created_at: row.get(16),
    })
}

/// What the rules need of an account, from a row of [`ACCOUNT_COLUMNS`].
pub fn account_state(row: &Row) -> Result<AccountState, StoreError> {
    let account = account(row)?;
    Ok(AccountState {
        id: account.id,
        org: account.org,
        currency: account.currency,
        normal_side: account.normal_side,
        limit: account.limit,
        closed: account.closed,
        sums: account.sums,
        version: account.version,
    })
}

/// A transfer from a row of [`TRANSFER_COLUMNS`].
pub fn transfer(row: &Row) -> Result<Transfer, StoreError> {
    let kind: &str = row.get(2);
    let postings: serde_json::Value = row.get(4);
    let requested: Option<serde_json::Value> = row.get(5);
    let context: serde_json::Value = row.get(12);
    let rejection: Option<&str> = row.get(13);
    let timeout_ms: Option<i64> = row.get(8);
    Ok(Transfer {
        id: TransferId(row.get(0)),
        org: OrgId(row.get(1)),
        kind: TransferKind::from_name(kind).ok_or_else(|| corrupt("transfer kind", kind))?,
        code: row.get(3),
        postings: serde_json::from_value::<Vec<Posting>>(postings)
            .map_err(|e| corrupt("postings", &e.to_string()))?,
        requested_amounts: requested
            .map(serde_json::from_value::<Vec<Money>>)
            .transpose()
            .map_err(|e| corrupt("requested amounts", &e.to_string()))?,
        pending_id: row.get::<_, Option<uuid::Uuid>>(6).map(TransferId),
        reversal_of: row.get::<_, Option<uuid::Uuid>>(7).map(TransferId),
        timeout_ms: timeout_ms
            .map(|ms| u64::try_from(ms).map_err(|_| corrupt("timeout", &ms.to_string())))
            .transpose()?,
        expires_at: row.get(9),
        effective_at: row.get(10),
        created_at: row.get(11),
        context: match context {
            serde_json::Value::Object(map) => map.into(),
            other => return Err(corrupt("context", &other.to_string())),
        },
        rejection: rejection
            .map(|code| RejectReason::from_code(code).ok_or_else(|| corrupt("rejection", code)))
            .transpose()?,
    })
}
