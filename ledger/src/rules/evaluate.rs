//! Evaluation of a batch of requests: the checks, in precedence order, and their effects.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::{
    AccountState, Action, LimitPolicy, POSTINGS_MAX, Posting, RejectReason, Side, Snapshot, Sums,
    TIMEOUT_MS_MAX, Transfer, TransferKind, TransferRequest,
};
use crate::ids::{AccountId, OrgId, TransferId};
use crate::money::{Currency, Money};

/// The outcome of one request.
// Nearly every outcome is an acceptance, so boxing the transfer would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The transfer is recorded; `replayed` when this request repeated an earlier one.
    Accepted { transfer: Transfer, replayed: bool },
    /// The request changed nothing.
    Rejected(RejectReason),
}

impl Outcome {
    /// The rejection, if any.
    pub fn rejection(&self) -> Option<RejectReason> {
        match self {
            Self::Accepted { .. } => None,
            Self::Rejected(reason) => Some(*reason),
        }
    }
}

/// One account's change from one transfer, with the account's sums after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The account's org (and the transfer's).
    pub org: OrgId,
    pub account: AccountId,
    /// The account's version after this entry (1 for its first entry).
    pub version: i64,
    pub transfer: TransferId,
    pub side: Side,
    /// Added to the side's posted sum.
    pub amount_posted: i64,
    /// Added to the side's pending sum: positive to reserve, negative to release.
    pub amount_pending: i64,
    pub sums_after: Sums,
    pub effective_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// Everything a batch changes, for the store to write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// One per request, in request order.
    pub outcomes: Vec<Outcome>,
    /// New transfer records: the accepted transfers and the recorded rejections.
    pub transfers: Vec<Transfer>,
    pub entries: Vec<Entry>,
    /// Pending transfers created by the batch and still open at its end.
    pub pending_opened: Vec<TransferId>,
    /// Pending transfers, created before the batch, that it resolved.
    pub pending_closed: Vec<TransferId>,
    /// Accounts whose sums changed, in first-touched order; their new state is in the snapshot.
    pub accounts_changed: Vec<AccountId>,
}

/// Applies `requests` in order to `snapshot` at time `now`; each request sees the effects of
/// the earlier ones. Afterwards the snapshot holds the new account states, and the returned
/// [`Evaluation`] what to write.
pub fn evaluate(
    snapshot: &mut Snapshot,
    now: DateTime<Utc>,
    requests: &[TransferRequest],
) -> Evaluation {
    let mut evaluation = Evaluation::default();
    for request in requests {
        let outcome = evaluate_one(snapshot, now, request, &mut evaluation);
        evaluation.outcomes.push(outcome);
    }
    let mut seen = std::collections::HashSet::new();
    evaluation.accounts_changed = evaluation
        .entries
        .iter()
        .map(|entry| entry.account)
        .filter(|id| seen.insert(*id))
        .collect();
    evaluation
}

fn evaluate_one(
    snapshot: &mut Snapshot,
    now: DateTime<Utc>,
    request: &TransferRequest,
    evaluation: &mut Evaluation,
) -> Outcome {
    if let Err(reason) = check_request(request, now) {
        return Outcome::Rejected(reason);
    }
    if let Some(existing) = snapshot.transfers.get(&request.id) {
        return replay(existing, request);
    }
    match plan(snapshot, now, request) {
        Ok(plan) => {
            let postings = plan.legs.iter().map(|leg| leg.posting.clone()).collect();
            let transfer = record(request, now, postings, None);
            apply(snapshot, &plan, &transfer, evaluation);
            evaluation.transfers.push(transfer.clone());
            snapshot.transfers.insert(transfer.id, transfer.clone());
            Outcome::Accepted { transfer, replayed: false }
        }
        Err(reason) => {
            if reason.is_recorded() {
                let transfer =
                    record(request, now, request.action.postings().to_vec(), Some(reason));
                evaluation.transfers.push(transfer.clone());
                snapshot.transfers.insert(transfer.id, transfer);
            }
            Outcome::Rejected(reason)
        }
    }
}

/// The record of a request: accepted with `postings` as they moved money, or rejected.
fn record(
    request: &TransferRequest,
    now: DateTime<Utc>,
    postings: Vec<Posting>,
    rejection: Option<RejectReason>,
) -> Transfer {
    let timeout_ms = timeout_ms(&request.action);
    Transfer {
        id: request.id,
        org: request.org,
        kind: request.action.kind(),
        code: request.code.clone(),
        postings,
        requested_amounts: match &request.action {
            Action::PostPending { amounts, .. } => amounts.clone(),
            _ => None,
        },
        pending_id: request.action.pending_id(),
        reversal_of: request.action.reversal_of(),
        timeout_ms,
        // A rejected pending transfer holds nothing, so it never expires.
        expires_at: timeout_ms.filter(|_| rejection.is_none()).map(|ms| now + timeout_delta(ms)),
        effective_at: request.effective_at.unwrap_or(now),
        created_at: now,
        context: request.context.clone(),
        rejection,
    }
}

fn timeout_ms(action: &Action) -> Option<u64> {
    match action {
        Action::Pending { timeout_ms, .. } => *timeout_ms,
        _ => None,
    }
}

fn timeout_delta(ms: u64) -> TimeDelta {
    // `check_request` bounds the timeout by `TIMEOUT_MS_MAX`, far inside `i64`.
    TimeDelta::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The checks on the request alone.
fn check_request(request: &TransferRequest, now: DateTime<Utc>) -> Result<(), RejectReason> {
    if request.id.0.is_nil() {
        return Err(RejectReason::IdMustNotBeNil);
    }
    if !code_is_valid(&request.code) {
        return Err(RejectReason::CodeInvalid);
    }
    match &request.action {
        Action::Post { postings } | Action::Pending { postings, .. } => check_postings(postings)?,
        Action::PostPending { amounts: Some(amounts), .. } => {
            let negative = amounts.iter().any(|amount| amount.amount().is_sign_negative());
            let nothing = amounts.iter().all(|amount| !amount.is_positive());
            if negative || nothing {
                return Err(RejectReason::AmountMustBePositive);
            }
        }
        _ => {}
    }
    if let Action::Pending { timeout_ms: Some(ms), .. } = request.action
        && (ms == 0 || ms > TIMEOUT_MS_MAX)
    {
        return Err(RejectReason::TimeoutInvalid);
    }
    if request.effective_at.is_some_and(|at| at > now) {
        return Err(RejectReason::EffectiveAtInFuture);
    }
    Ok(())
}

fn code_is_valid(code: &str) -> bool {
    (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b))
}

fn check_postings(postings: &[Posting]) -> Result<(), RejectReason> {
    if postings.len() < 2 {
        return Err(RejectReason::PostingsTooFew);
    }
    if postings.len() > POSTINGS_MAX {
        return Err(RejectReason::PostingsTooMany);
    }
    if postings.iter().any(|posting| !posting.amount.is_positive()) {
        return Err(RejectReason::AmountMustBePositive);
    }
    let mut accounts: Vec<AccountId> = postings.iter().map(|posting| posting.account).collect();
    accounts.sort_unstable();
    if accounts.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(RejectReason::AccountDuplicated);
    }
    if !balanced(postings.iter().map(|posting| (posting.side, &posting.amount))) {
        return Err(RejectReason::PostingsUnbalanced);
    }
    Ok(())
}

/// Whether debits equal credits in every currency.
fn balanced<'a>(legs: impl Iterator<Item = (Side, &'a Money)>) -> bool {
    let mut net: HashMap<Currency, i128> = HashMap::new();
    for (side, amount) in legs {
        let Ok(minor) = amount.to_minor() else { return false };
        let signed = match side {
            Side::Debit => i128::from(minor),
            Side::Credit => -i128::from(minor),
        };
        *net.entry(amount.currency()).or_default() += signed;
    }
    net.values().all(|sum| *sum == 0)
}

/// The answer to a request whose id is already recorded.
fn replay(existing: &Transfer, request: &TransferRequest) -> Outcome {
    if let Err(reason) = compare(existing, request) {
        return Outcome::Rejected(reason);
    }
    match existing.rejection {
        Some(reason) => Outcome::Rejected(reason),
        None => Outcome::Accepted { transfer: existing.clone(), replayed: true },
    }
}

/// The first difference between a recorded transfer and a request under its id.
fn compare(existing: &Transfer, request: &TransferRequest) -> Result<(), RejectReason> {
    if existing.org != request.org {
        return Err(RejectReason::IdAlreadyUsed);
    }
    if existing.kind != request.action.kind() {
        return Err(RejectReason::ExistsWithDifferentKind);
    }
    if existing.pending_id != request.action.pending_id() {
        return Err(RejectReason::ExistsWithDifferentPendingTransfer);
    }
    if existing.reversal_of != request.action.reversal_of() {
        return Err(RejectReason::ExistsWithDifferentReversalTarget);
    }
    match &request.action {
        Action::Post { postings } | Action::Pending { postings, .. } => {
            let same_legs = existing.postings.len() == postings.len()
                && existing
                    .postings
                    .iter()
                    .zip(postings)
                    .all(|(old, new)| old.account == new.account && old.side == new.side);
            if !same_legs {
                return Err(RejectReason::ExistsWithDifferentPostings);
            }
            if existing.postings.iter().zip(postings).any(|(old, new)| old.amount != new.amount) {
                return Err(RejectReason::ExistsWithDifferentAmount);
            }
        }
        Action::PostPending { amounts, .. } => {
            if existing.requested_amounts != *amounts {
                return Err(RejectReason::ExistsWithDifferentAmount);
            }
        }
        Action::VoidPending { .. } | Action::ExpirePending { .. } | Action::Reverse { .. } => {}
    }
    if existing.code != request.code {
        return Err(RejectReason::ExistsWithDifferentCode);
    }
    if existing.timeout_ms != timeout_ms(&request.action) {
        return Err(RejectReason::ExistsWithDifferentTimeout);
    }
    if request.effective_at.is_some_and(|at| at != existing.effective_at) {
        return Err(RejectReason::ExistsWithDifferentEffectiveAt);
    }
    if existing.context != request.context {
        return Err(RejectReason::ExistsWithDifferentContext);
    }
    Ok(())
}

/// One account's change within a transfer.
#[derive(Debug)]
struct Leg {
    /// The posting as recorded on the transfer (for a void, the amount released).
    posting: Posting,
    amount_posted: i64,
    amount_pending: i64,
}

/// What an accepted request will do.
#[derive(Debug)]
struct Plan {
    legs: Vec<Leg>,
    /// Whether the account checks (closed) apply: releasing a reservation is always allowed.
    moves_money: bool,
}

/// Checks the request against the state and works out its legs.
fn plan(
    snapshot: &Snapshot,
    now: DateTime<Utc>,
    request: &TransferRequest,
) -> Result<Plan, RejectReason> {
    let effective_at = super::as_stored(request.effective_at.unwrap_or(now));
    if snapshot.closed_through.get(&request.org).is_some_and(|through| effective_at <= *through) {
        return Err(RejectReason::PeriodClosed);
    }
    let plan = match &request.action {
        Action::Post { postings } => Plan { legs: legs_posted(postings)?, moves_money: true },
        Action::Pending { postings, .. } => Plan {
            legs: postings
                .iter()
                .map(|posting| {
                    Ok(Leg {
                        posting: posting.clone(),
                        amount_posted: 0,
                        amount_pending: minor(&posting.amount)?,
                    })
                })
                .collect::<Result<_, _>>()?,
            moves_money: true,
        },
        Action::PostPending { pending_id, amounts } => {
            let pending = open_pending(snapshot, now, request, *pending_id, false)?;
            Plan { legs: legs_post_pending(pending, amounts.as_deref())?, moves_money: true }
        }
        Action::VoidPending { pending_id } => {
            let pending = open_pending(snapshot, now, request, *pending_id, false)?;
            Plan { legs: legs_release(pending)?, moves_money: false }
        }
        Action::ExpirePending { pending_id } => {
            let pending = open_pending(snapshot, now, request, *pending_id, true)?;
            Plan { legs: legs_release(pending)?, moves_money: false }
        }
        Action::Reverse { transfer_id } => {
            let target = snapshot
                .transfers
                .get(transfer_id)
                .filter(|target| target.org == request.org && target.rejection.is_none())
                .ok_or(RejectReason::ReversalTargetNotFound)?;
            if !target.kind.moves_posted_money() {
                return Err(RejectReason::ReversalTargetNotPosted);
            }
            if snapshot.reversed.contains(transfer_id) {
                return Err(RejectReason::ReversalTargetAlreadyReversed);
            }
            let reversed: Vec<Posting> = target
                .postings
                .iter()
                .filter(|posting| posting.amount.is_positive())
                .map(|posting| Posting { side: posting.side.opposite(), ..posting.clone() })
                .collect();
            Plan { legs: legs_posted(&reversed)?, moves_money: true }
        }
    };
    check_accounts(snapshot, request, &plan)?;
    Ok(plan)
}

fn minor(amount: &Money) -> Result<i64, RejectReason> {
    amount.to_minor().map_err(|_| RejectReason::BalanceOverflow)
}

fn legs_posted(postings: &[Posting]) -> Result<Vec<Leg>, RejectReason> {
    postings
        .iter()
        .map(|posting| {
            Ok(Leg {
                posting: posting.clone(),
                amount_posted: minor(&posting.amount)?,
                amount_pending: 0,
            })
        })
        .collect()
}

fn legs_release(pending: &Transfer) -> Result<Vec<Leg>, RejectReason> {
    pending
        .postings
        .iter()
        .map(|posting| {
            Ok(Leg {
                posting: posting.clone(),
                amount_posted: 0,
                amount_pending: -minor(&posting.amount)?,
            })
        })
        .collect()
}

fn legs_post_pending(
    pending: &Transfer,
    amounts: Option<&[Money]>,
) -> Result<Vec<Leg>, RejectReason> {
    let Some(amounts) = amounts else {
        return pending
            .postings
            .iter()
            .map(|posting| {
                let amount = minor(&posting.amount)?;
                Ok(Leg { posting: posting.clone(), amount_posted: amount, amount_pending: -amount })
            })
            .collect();
    };
    if amounts.len() != pending.postings.len() {
        return Err(RejectReason::PostAmountsCountMismatch);
    }
    let exceeds = pending.postings.iter().zip(amounts).any(|(posting, amount)| {
        amount.currency() != posting.amount.currency() || amount.amount() > posting.amount.amount()
    });
    if exceeds {
        return Err(RejectReason::PostAmountExceedsPending);
    }
    let sides = pending.postings.iter().map(|posting| posting.side);
    if !balanced(sides.zip(amounts)) {
        return Err(RejectReason::PostAmountsUnbalanced);
    }
    pending
        .postings
        .iter()
        .zip(amounts)
        .map(|(posting, amount)| {
            Ok(Leg {
                posting: Posting { amount: *amount, ..posting.clone() },
                amount_posted: minor(amount)?,
                amount_pending: -minor(&posting.amount)?,
            })
        })
        .collect()
}

/// The pending transfer a post, void or expiry acts on, if it is still open.
fn open_pending<'a>(
    snapshot: &'a Snapshot,
    now: DateTime<Utc>,
    request: &TransferRequest,
    pending_id: TransferId,
    expiring: bool,
) -> Result<&'a Transfer, RejectReason> {
    let pending = snapshot
        .transfers
        .get(&pending_id)
        .filter(|pending| pending.org == request.org && pending.rejection.is_none())
        .ok_or(RejectReason::PendingTransferNotFound)?;
    if pending.kind != TransferKind::Pending {
        return Err(RejectReason::PendingTransferNotPending);
    }
    match snapshot.resolutions.get(&pending_id) {
        Some(TransferKind::PostPending) => return Err(RejectReason::PendingTransferAlreadyPosted),
        Some(TransferKind::VoidPending) => return Err(RejectReason::PendingTransferAlreadyVoided),
        Some(_) => return Err(RejectReason::PendingTransferExpired),
        None => {}
    }
    let expired = pending.expires_at.is_some_and(|at| at <= now);
    if expiring && !expired {
        return Err(RejectReason::PendingTransferNotExpired);
    }
    if !expiring && expired {
        return Err(RejectReason::PendingTransferExpired);
    }
    Ok(pending)
}

/// The account checks, each over all legs before the next, in precedence order.
fn check_accounts(
    snapshot: &Snapshot,
    request: &TransferRequest,
    plan: &Plan,
) -> Result<(), RejectReason> {
    let account = |leg: &Leg| {
        snapshot.accounts.get(&leg.posting.account).filter(|account| account.org == request.org)
    };
    if plan.legs.iter().any(|leg| account(leg).is_none()) {
        return Err(RejectReason::AccountNotFound);
    }
    let accounts: Vec<&AccountState> = plan.legs.iter().filter_map(account).collect();
    if plan.moves_money && accounts.iter().any(|account| account.closed) {
        return Err(RejectReason::AccountClosed);
    }
    if plan
        .legs
        .iter()
        .zip(&accounts)
        .any(|(leg, account)| leg.posting.amount.currency() != account.currency)
    {
        return Err(RejectReason::CurrencyMismatch);
    }
    let mut after = Vec::with_capacity(accounts.len());
    for (leg, account) in plan.legs.iter().zip(&accounts) {
        after.push(apply_leg(&account.sums, leg).ok_or(RejectReason::BalanceOverflow)?);
    }
    for ((leg, account), sums) in plan.legs.iter().zip(&accounts).zip(&after) {
        if exceeds_limit(account, leg, sums) {
            return Err(match account.normal_side {
                Side::Credit => RejectReason::ExceedsCredits,
                Side::Debit => RejectReason::ExceedsDebits,
            });
        }
    }
    Ok(())
}

/// The sums after one leg, or `None` on overflow.
fn apply_leg(sums: &Sums, leg: &Leg) -> Option<Sums> {
    let mut after = *sums;
    let (posted, pending) = match leg.posting.side {
        Side::Debit => (&mut after.debits_posted, &mut after.debits_pending),
        Side::Credit => (&mut after.credits_posted, &mut after.credits_pending),
    };
    *posted = posted.checked_add(leg.amount_posted)?;
    *pending = pending.checked_add(leg.amount_pending)?;
    (*pending >= 0).then_some(after)
}

/// Whether the leg pushes the account past its limit. Only a leg against the normal side that
/// grows the account's exposure (posted plus pending) can.
fn exceeds_limit(account: &AccountState, leg: &Leg, after: &Sums) -> bool {
    if leg.posting.side == account.normal_side || leg.amount_posted + leg.amount_pending <= 0 {
        return false;
    }
    let allowance = match account.limit {
        LimitPolicy::Unbounded => return false,
        LimitPolicy::NoOverdraft => 0,
        LimitPolicy::Overdraft(limit) => i128::from(limit),
    };
    let (against, towards) = match account.normal_side {
        Side::Credit => (
            i128::from(after.debits_posted) + i128::from(after.debits_pending),
            i128::from(after.credits_posted),
        ),
        Side::Debit => (
            i128::from(after.credits_posted) + i128::from(after.credits_pending),
            i128::from(after.debits_posted),
        ),
    };
    against > towards + allowance
}

/// Applies an accepted transfer's legs to the snapshot and records its effects.
fn apply(snapshot: &mut Snapshot, plan: &Plan, transfer: &Transfer, evaluation: &mut Evaluation) {
    for leg in &plan.legs {
        let Some(account) = snapshot.accounts.get_mut(&leg.posting.account) else { continue };
        // `check_accounts` proved the legs apply without overflow.
        let Some(sums) = apply_leg(&account.sums, leg) else { continue };
        account.sums = sums;
        account.version += 1;
        evaluation.entries.push(Entry {
            org: account.org,
            account: account.id,
            version: account.version,
            transfer: transfer.id,
            side: leg.posting.side,
            amount_posted: leg.amount_posted,
            amount_pending: leg.amount_pending,
            sums_after: sums,
            effective_at: transfer.effective_at,
            created_at: transfer.created_at,
        });
    }
    match transfer.kind {
        TransferKind::Pending => evaluation.pending_opened.push(transfer.id),
        TransferKind::PostPending | TransferKind::VoidPending | TransferKind::ExpirePending => {
            if let Some(pending_id) = transfer.pending_id {
                snapshot.resolutions.insert(pending_id, transfer.kind);
                if let Some(at) = evaluation.pending_opened.iter().position(|id| *id == pending_id)
                {
                    evaluation.pending_opened.remove(at);
                } else {
                    evaluation.pending_closed.push(pending_id);
                }
            }
        }
        TransferKind::Posted | TransferKind::Reversal => {}
    }
    if let Some(target) = transfer.reversal_of {
        snapshot.reversed.insert(target);
    }
}
