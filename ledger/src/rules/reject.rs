//! Why a transfer request was rejected: one enum, in the order the rules check, with stable codes.

use serde::{Deserialize, Serialize};

/// Why the ledger rejected a transfer request.
///
/// The variants are in precedence order (which `Ord` follows): the rules check them in this
/// order and report the first that applies, so the same request against the same state always gets the same answer.
/// Codes are stable: a variant is never renumbered, renamed or reused; new ones are added where
/// they belong in the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    // The request on its own.
    /// The transfer id is the nil UUID.
    IdMustNotBeNil,
    /// The code is empty, longer than 64 characters, or uses characters other than
    /// `a-z 0-9 _ . : -`.
    CodeInvalid,
    /// Fewer than two postings.
    PostingsTooFew,
    /// More postings than [`super::POSTINGS_MAX`].
    PostingsTooMany,
    /// A posting amount is zero or negative, or a partial post asks for a negative amount or
    /// nothing at all.
    AmountMustBePositive,
    /// An account appears in more than one posting of the transfer.
    AccountDuplicated,
    /// Debits and credits differ in some currency.
    PostingsUnbalanced,
    /// The pending timeout is zero or longer than [`super::TIMEOUT_MS_MAX`].
    TimeoutInvalid,
    /// `effective_at` is later than the time the ledger records the transfer.
    EffectiveAtInFuture,

    // Idempotency: the id is taken.
    /// The id is used by a transfer of another org.
    IdAlreadyUsed,
    /// The id is used by a transfer of another kind (posted, pending, post, void, reversal).
    ExistsWithDifferentKind,
    /// The id is used by a post or void of another pending transfer.
    ExistsWithDifferentPendingTransfer,
    /// The id is used by a reversal of another transfer.
    ExistsWithDifferentReversalTarget,
    /// The id is used by a transfer with other accounts or sides.
    ExistsWithDifferentPostings,
    /// The id is used by a transfer with other amounts or currencies.
    ExistsWithDifferentAmount,
    /// The id is used by a transfer with another code.
    ExistsWithDifferentCode,
    /// The id is used by a pending transfer with another timeout.
    ExistsWithDifferentTimeout,
    /// The id is used by a transfer with another effective time.
    ExistsWithDifferentEffectiveAt,
    /// The id is used by a transfer with another context.
    ExistsWithDifferentContext,

    // The org's books.
    /// The transfer's effective time (or, without one, the time of recording) is at or before
    /// the end of a period the org has closed. An adjustment for a closed period is recorded
    /// in the open one, naming the closed period (`context.hazina.adjusts_period`). Not
    /// recorded under the id: a close is never undone, so a replay gets the same answer.
    PeriodClosed,

    // Transfers the request refers to.
    /// The pending transfer to post, void or expire does not exist in this org.
    PendingTransferNotFound,
    /// The transfer to post, void or expire is not a pending transfer.
    PendingTransferNotPending,
    /// The pending transfer was already posted.
    PendingTransferAlreadyPosted,
    /// The pending transfer was already voided.
    PendingTransferAlreadyVoided,
    /// The pending transfer has expired (its timeout passed).
    PendingTransferExpired,
    /// Expiry was asked of a pending transfer whose timeout has not passed, or that has none.
    PendingTransferNotExpired,
    /// A partial post gives a number of amounts other than the pending transfer's postings.
    PostAmountsCountMismatch,
    /// A partial post amount is larger than the pending amount of its posting, or in another
    /// currency.
    PostAmountExceedsPending,
    /// The partial post amounts do not balance per currency.
    PostAmountsUnbalanced,
    /// The transfer to reverse does not exist in this org.
    ReversalTargetNotFound,
    /// The transfer to reverse moved no posted money (it is pending, voided or expired).
    ReversalTargetNotPosted,
    /// The transfer was already reversed.
    ReversalTargetAlreadyReversed,

    // The accounts.
    /// An account does not exist in this org.
    AccountNotFound,
    /// An account is closed.
    AccountClosed,
    /// A posting's currency differs from its account's.
    CurrencyMismatch,
    /// A balance would leave the ledger's 64-bit range.
    BalanceOverflow,
    /// A credit-normal account's debits would exceed its credits (plus any overdraft limit).
    ExceedsCredits,
    /// A debit-normal account's credits would exceed its debits (plus any overdraft limit).
    ExceedsDebits,
}

impl RejectReason {
    /// Every reason, in precedence order.
    pub const ALL: [Self; 38] = [
        Self::IdMustNotBeNil,
        Self::CodeInvalid,
        Self::PostingsTooFew,
        Self::PostingsTooMany,
        Self::AmountMustBePositive,
        Self::AccountDuplicated,
        Self::PostingsUnbalanced,
        Self::TimeoutInvalid,
        Self::EffectiveAtInFuture,
        Self::IdAlreadyUsed,
        Self::ExistsWithDifferentKind,
        Self::ExistsWithDifferentPendingTransfer,
        Self::ExistsWithDifferentReversalTarget,
        Self::ExistsWithDifferentPostings,
        Self::ExistsWithDifferentAmount,
        Self::ExistsWithDifferentCode,
        Self::ExistsWithDifferentTimeout,
        Self::ExistsWithDifferentEffectiveAt,
        Self::ExistsWithDifferentContext,
        Self::PeriodClosed,
        Self::PendingTransferNotFound,
        Self::PendingTransferNotPending,
        Self::PendingTransferAlreadyPosted,
        Self::PendingTransferAlreadyVoided,
        Self::PendingTransferExpired,
        Self::PendingTransferNotExpired,
        Self::PostAmountsCountMismatch,
        Self::PostAmountExceedsPending,
        Self::PostAmountsUnbalanced,
        Self::ReversalTargetNotFound,
        Self::ReversalTargetNotPosted,
        Self::ReversalTargetAlreadyReversed,
        Self::AccountNotFound,
        Self::AccountClosed,
        Self::CurrencyMismatch,
        Self::BalanceOverflow,
        Self::ExceedsCredits,
        Self::ExceedsDebits,
    ];

    /// The stable snake_case code, as in the API and the database.
    pub fn code(self) -> &'static str {
        match self {
            Self::IdMustNotBeNil => "id_must_not_be_nil",
            Self::CodeInvalid => "code_invalid",
            Self::PostingsTooFew => "postings_too_few",
            Self::PostingsTooMany => "postings_too_many",
            Self::AmountMustBePositive => "amount_must_be_positive",
            Self::AccountDuplicated => "account_duplicated",
            Self::PostingsUnbalanced => "postings_unbalanced",
            Self::TimeoutInvalid => "timeout_invalid",
            Self::EffectiveAtInFuture => "effective_at_in_future",
            Self::IdAlreadyUsed => "id_already_used",
            Self::ExistsWithDifferentKind => "exists_with_different_kind",
            Self::ExistsWithDifferentPendingTransfer => "exists_with_different_pending_transfer",
            Self::ExistsWithDifferentReversalTarget => "exists_with_different_reversal_target",
            Self::ExistsWithDifferentPostings => "exists_with_different_postings",
            Self::ExistsWithDifferentAmount => "exists_with_different_amount",
            Self::ExistsWithDifferentCode => "exists_with_different_code",
            Self::ExistsWithDifferentTimeout => "exists_with_different_timeout",
            Self::ExistsWithDifferentEffectiveAt => "exists_with_different_effective_at",
            Self::ExistsWithDifferentContext => "exists_with_different_context",
            Self::PeriodClosed => "period_closed",
            Self::PendingTransferNotFound => "pending_transfer_not_found",
            Self::PendingTransferNotPending => "pending_transfer_not_pending",
            Self::PendingTransferAlreadyPosted => "pending_transfer_already_posted",
            Self::PendingTransferAlreadyVoided => "pending_transfer_already_voided",
            Self::PendingTransferExpired => "pending_transfer_expired",
            Self::PendingTransferNotExpired => "pending_transfer_not_expired",
            Self::PostAmountsCountMismatch => "post_amounts_count_mismatch",
            Self::PostAmountExceedsPending => "post_amount_exceeds_pending",
            Self::PostAmountsUnbalanced => "post_amounts_unbalanced",
            Self::ReversalTargetNotFound => "reversal_target_not_found",
            Self::ReversalTargetNotPosted => "reversal_target_not_posted",
            Self::ReversalTargetAlreadyReversed => "reversal_target_already_reversed",
            Self::AccountNotFound => "account_not_found",
            Self::AccountClosed => "account_closed",
            Self::CurrencyMismatch => "currency_mismatch",
            Self::BalanceOverflow => "balance_overflow",
            Self::ExceedsCredits => "exceeds_credits",
            Self::ExceedsDebits => "exceeds_debits",
        }
    }

    /// The reason with this code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.code() == code)
    }

    /// Whether the rejection depends on ledger state rather than on the request alone.
    ///
    /// Such a rejection is recorded under the transfer's id, so that a replay returns it again
    /// even after the state has changed: an id has one outcome, forever. (A request rejected on
    /// its own terms gets the same answer on every replay without being recorded, and an id
    /// already taken cannot be recorded twice.) The one exception is an expiry asked too early:
    /// the expiry sweeper derives its id from the pending transfer's, and must be able to ask
    /// again once the timeout has passed.
    pub fn is_recorded(self) -> bool {
        self >= Self::PendingTransferNotFound && self != Self::PendingTransferNotExpired
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}
