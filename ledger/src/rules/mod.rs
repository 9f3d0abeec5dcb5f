//! The ledger's rules: a pure function from account snapshots and an ordered batch of transfer
//! requests to outcomes, new transfers, entries and new balances.
//!
//! No clock, database or randomness lives here: the caller passes the time and the state the
//! batch can see ([`Snapshot`]), and [`evaluate`] applies the requests one after another, each
//! seeing the effects of the earlier ones. The store feeds it from PostgreSQL; the tests feed it
//! by hand.

mod evaluate;
mod reject;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{AccountId, OrgId, TransferId};
use crate::money::{Currency, Money};

pub use evaluate::{Entry, Evaluation, Outcome, evaluate};
pub use reject::RejectReason;

/// Most postings one transfer may have.
pub const POSTINGS_MAX: usize = 64;
/// Longest timeout of a pending transfer: 366 days.
pub const TIMEOUT_MS_MAX: u64 = 366 * 24 * 60 * 60 * 1000;
/// The code of the void the ledger writes when a pending transfer's timeout passes.
pub const EXPIRY_CODE: &str = "expiry";

/// The time as the database stores it: whole microseconds, what is finer dropped toward
/// PostgreSQL's epoch (2000-01-01), as `tokio-postgres` sends a time. The rules compare times
/// that are stored (a closed period's end) with times of requests at this precision.
pub fn as_stored(at: DateTime<Utc>) -> DateTime<Utc> {
    const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let Some(epoch) = DateTime::<Utc>::from_timestamp_micros(POSTGRES_EPOCH_MICROS) else {
        return at;
    };
    at.signed_duration_since(epoch)
        .num_microseconds()
        .and_then(|micros| micros.checked_add(POSTGRES_EPOCH_MICROS))
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .unwrap_or(at)
}

/// A side of a posting, and an account's normal side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    /// The stable name, as in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debit => "debit",
            Self::Credit => "credit",
        }
    }

    /// The other side.
    #[must_use]
    pub fn opposite(self) -> Self {
        match self {
            Self::Debit => Self::Credit,
            Self::Credit => Self::Debit,
        }
    }

    /// The side with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "debit" => Some(Self::Debit),
            "credit" => Some(Self::Credit),
            _ => None,
        }
    }
}

/// What an account is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// Money the org holds for itself.
    Purse,
    /// Money the org holds for a customer.
    Wallet,
    /// The clearing account of a provider endpoint: money held at an operator or a bank.
    Channel,
    /// Income, such as fees.
    Revenue,
    /// Costs, such as provider charges.
    Expense,
    /// The owners' capital.
    Equity,
    /// The outside world, where money comes from and goes to.
    External,
}

impl AccountKind {
    /// Every kind.
    pub const ALL: [Self; 7] = [
        Self::Purse,
        Self::Wallet,
        Self::Channel,
        Self::Revenue,
        Self::Expense,
        Self::Equity,
        Self::External,
    ];

    /// The stable name, as in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purse => "purse",
            Self::Wallet => "wallet",
            Self::Channel => "channel",
            Self::Revenue => "revenue",
            Self::Expense => "expense",
            Self::Equity => "equity",
            Self::External => "external",
        }
    }

    /// The kind with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The usual normal side: liabilities to others, income and capital are credit-normal;
    /// money held at a provider, costs and the outside world are debit-normal.
    pub fn normal_side(self) -> Side {
        match self {
            Self::Purse | Self::Wallet | Self::Revenue | Self::Equity => Side::Credit,
            Self::Channel | Self::Expense | Self::External => Side::Debit,
        }
    }

    /// The usual limit: purses and wallets cannot be overdrawn; the others are unbounded.
    pub fn limit(self) -> LimitPolicy {
        match self {
            Self::Purse | Self::Wallet => LimitPolicy::NoOverdraft,
            _ => LimitPolicy::Unbounded,
        }
    }
}

/// How far an account may go against its normal side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitPolicy {
    /// Debits (posted and pending) never exceed posted credits, for a credit-normal account;
    /// the mirror image for a debit-normal one.
    NoOverdraft,
    /// As `NoOverdraft`, but the account may go this many minor units past zero.
    Overdraft(i64),
    /// No limit (system accounts such as the outside world).
    Unbounded,
}

/// The four sums an account keeps, in minor units of its currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sums {
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub debits_pending: i64,
    pub credits_pending: i64,
}

impl Sums {
    /// The settled balance (the platform's "actual"), signed by the normal side.
    pub fn posted(&self, normal: Side) -> i128 {
        orient(normal, i128::from(self.credits_posted) - i128::from(self.debits_posted))
    }

    /// The balance once every pending transfer is posted.
    pub fn pending(&self, normal: Side) -> i128 {
        let credits = i128::from(self.credits_posted) + i128::from(self.credits_pending);
        let debits = i128::from(self.debits_posted) + i128::from(self.debits_pending);
        orient(normal, credits - debits)
    }

    /// What can be spent now: pending transfers against the normal side reserve funds, pending
    /// transfers towards it are not spendable yet.
    pub fn available(&self, normal: Side) -> i128 {
        match normal {
            Side::Credit => {
                i128::from(self.credits_posted)
                    - i128::from(self.debits_posted)
                    - i128::from(self.debits_pending)
            }
            Side::Debit => {
                i128::from(self.debits_posted)
                    - i128::from(self.credits_posted)
                    - i128::from(self.credits_pending)
            }
        }
    }
}

fn orient(normal: Side, credit_minus_debit: i128) -> i128 {
    match normal {
        Side::Credit => credit_minus_debit,
        Side::Debit => -credit_minus_debit,
    }
}

/// What the rules need to know of an account, and what they change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountState {
    pub id: AccountId,
    pub org: OrgId,
    pub currency: Currency,
    pub normal_side: Side,
    pub limit: LimitPolicy,
    pub closed: bool,
    pub sums: Sums,
    /// How many entries the account has; the next entry gets `version + 1`.
    pub version: i64,
}

/// One leg of a transfer: an amount debited or credited to an account.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Posting {
    pub account: AccountId,
    pub side: Side,
    #[serde(flatten)]
    pub amount: Money,
}

/// What a transfer request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Move money now.
    Post { postings: Vec<Posting> },
    /// Reserve money: a pending transfer, later posted, voided or expired.
    Pending { postings: Vec<Posting>, timeout_ms: Option<u64> },
    /// Post a pending transfer: fully, or partially with one amount per posting (in the pending
    /// transfer's order); what is not posted is released.
    PostPending { pending_id: TransferId, amounts: Option<Vec<Money>> },
    /// Release a pending transfer's reservation.
    VoidPending { pending_id: TransferId },
    /// Void a pending transfer whose timeout has passed (the ledger's own sweeper asks this).
    ExpirePending { pending_id: TransferId },
    /// Undo a posted transfer with a new transfer of the opposite postings.
    Reverse { transfer_id: TransferId },
}

impl Action {
    /// The kind of transfer this action records.
    pub fn kind(&self) -> TransferKind {
        match self {
            Self::Post { .. } => TransferKind::Posted,
            Self::Pending { .. } => TransferKind::Pending,
            Self::PostPending { .. } => TransferKind::PostPending,
            Self::VoidPending { .. } => TransferKind::VoidPending,
            Self::ExpirePending { .. } => TransferKind::ExpirePending,
            Self::Reverse { .. } => TransferKind::Reversal,
        }
    }

    /// The pending transfer this action resolves, if any.
    pub fn pending_id(&self) -> Option<TransferId> {
        match self {
            Self::PostPending { pending_id, .. }
            | Self::VoidPending { pending_id }
            | Self::ExpirePending { pending_id } => Some(*pending_id),
            _ => None,
        }
    }

    /// The transfer this action reverses, if any.
    pub fn reversal_of(&self) -> Option<TransferId> {
        match self {
            Self::Reverse { transfer_id } => Some(*transfer_id),
            _ => None,
        }
    }

    /// The postings the request itself carries (none for actions on other transfers).
    pub fn postings(&self) -> &[Posting] {
        match self {
            Self::Post { postings } | Self::Pending { postings, .. } => postings,
            _ => &[],
        }
    }
}

/// A transfer's free-form context: customer, app, channel, activity, message references,
/// metadata. Shared, not copied, as the transfer moves from request to record to answer.
pub type Context = std::sync::Arc<serde_json::Map<String, serde_json::Value>>;

/// A request to the ledger. Its id is the idempotency key: a replay of the same request
/// returns the original outcome, a different request under the same id is rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRequest {
    pub id: TransferId,
    /// Whether `id` was generated for this request ([`TransferId::generate`]), so that no
    /// transfer can hold it yet: the store then does not look for an earlier transfer under it.
    /// A wrong `true` costs the batch a second attempt, never a duplicate (ids are unique in
    /// the schema). Client-supplied and derived ids are `false`.
    pub id_is_new: bool,
    pub org: OrgId,
    pub action: Action,
    /// What the transfer is for, such as `payment` or `fee`.
    pub code: String,
    /// When it happened in the world; the time of recording when absent.
    pub effective_at: Option<DateTime<Utc>>,
    /// Free-form context: customer, app, channel, activity, message references, metadata.
    pub context: Context,
}

impl TransferRequest {
    /// The request the expiry sweeper sends for a pending transfer whose timeout has passed. Its
    /// id is derived from the pending transfer's, so that sweepers in several processes send
    /// the same request and only one takes effect.
    pub fn expiry(org: OrgId, pending_id: TransferId) -> Self {
        Self {
            id: TransferId(Uuid::new_v5(&EXPIRY_NAMESPACE, pending_id.0.as_bytes())),
            id_is_new: false,
            org,
            action: Action::ExpirePending { pending_id },
            code: EXPIRY_CODE.to_owned(),
            effective_at: None,
            context: Context::default(),
        }
    }
}

/// Namespace of expiry transfer ids (a fixed, random UUID).
const EXPIRY_NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_2b1e_93a4_4d6e_8f27_c1a9_0b3d_7e42);

/// What kind of transfer a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    Posted,
    Pending,
    PostPending,
    VoidPending,
    ExpirePending,
    Reversal,
}

impl TransferKind {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::Posted,
        Self::Pending,
        Self::PostPending,
        Self::VoidPending,
        Self::ExpirePending,
        Self::Reversal,
    ];

    /// The stable name, as in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Posted => "posted",
            Self::Pending => "pending",
            Self::PostPending => "post_pending",
            Self::VoidPending => "void_pending",
            Self::ExpirePending => "expire_pending",
            Self::Reversal => "reversal",
        }
    }

    /// The kind with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// Whether the transfer moved posted money (so that it can be reversed).
    pub fn moves_posted_money(self) -> bool {
        matches!(self, Self::Posted | Self::PostPending | Self::Reversal)
    }
}

/// A transfer as the ledger records it: accepted, or rejected for a reason that depends on
/// ledger state (see [`RejectReason::is_recorded`]). Never changed once written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub id: TransferId,
    pub org: OrgId,
    pub kind: TransferKind,
    pub code: String,
    /// The legs as they moved money: for a post or void of a pending transfer, the amounts
    /// posted or released per leg; for a reversal, the reversed transfer's legs, sides swapped.
    /// Empty for a rejection of an action on another transfer.
    pub postings: Vec<Posting>,
    /// The amounts a partial post asked for.
    pub requested_amounts: Option<Vec<Money>>,
    pub pending_id: Option<TransferId>,
    pub reversal_of: Option<TransferId>,
    pub timeout_ms: Option<u64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub effective_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub context: Context,
    /// Why it was rejected; `None` for an accepted transfer.
    pub rejection: Option<RejectReason>,
}

/// The ledger state a batch can see: the accounts it touches, and the transfers it refers to or
/// whose ids it uses.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub accounts: HashMap<AccountId, AccountState>,
    /// Recorded transfers under the batch's ids, and the transfers its requests refer to.
    pub transfers: HashMap<TransferId, Transfer>,
    /// For each referred-to pending transfer that is resolved: how (post, void or expiry).
    pub resolutions: HashMap<TransferId, TransferKind>,
    /// Referred-to transfers that have been reversed.
    pub reversed: HashSet<TransferId>,
    /// For each org of the batch that has closed a period: the end (inclusive) of its last
    /// closed period. No transfer of the org may take effect at or before it.
    pub closed_through: HashMap<OrgId, DateTime<Utc>>,
}

#[cfg(test)]
mod tests;
