//! The table-driven harness for the rules: every rule test is a script run through [`check`].
//!
//! A script is one command per line; a request line ends in `=> ok`, `=> replay` or
//! `=> <reject code>`:
//!
//! ```text
//! account A purse [KES] [overdraft=500] [nooverdraft] [closed] [org=2]   a new account
//! fund A 100                                                sets A's posted sums directly
//! post 1 dX:100 cA:100 [code=c] [at=-5] [ctx=k] [org=2]     a posted transfer (`at` in ms)
//! pending 2 dA:10 cB:10 [timeout=1000]                      a pending transfer
//! postp 3 2 [amounts=5,5]                                   post pending 2
//! void 4 2 / expire 5 2 / reverse 6 1                       void, expire, reverse
//! clock +2000                                               advance time by 2 s
//! close -10 [org=2]                                         close the org's books through
//!                                                           now - 10 ms
//! sums A 0 100 0 0                                          assert debits/credits posted/pending
//! ```
//!
//! Amounts are in KES unless written `10@USD`. Transfer ids are small integers (0 is nil).

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::*;
use crate::money::{Currency, Money};

struct Harness {
    snapshot: Snapshot,
    now: DateTime<Utc>,
    names: HashMap<String, AccountId>,
}

fn currency(code: &str) -> Currency {
    Currency::from_code(code).unwrap()
}

fn money(text: &str) -> Money {
    let (amount, code) = text.split_once('@').unwrap_or((text, "KES"));
    Money::parse(currency(code), amount).unwrap()
}

fn org(n: u128) -> OrgId {
    OrgId(Uuid::from_u128(n))
}

fn tid(text: &str) -> TransferId {
    TransferId(Uuid::from_u128(text.parse().unwrap()))
}

impl Harness {
    fn new() -> Self {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
        Self { snapshot: Snapshot::default(), now, names: HashMap::new() }
    }

    /// A harness with the accounts of [`ACCOUNTS`].
    fn with_accounts() -> Self {
        let mut harness = Self::new();
        for line in ACCOUNTS.lines().filter(|line| !line.trim().is_empty()) {
            harness.run(line);
        }
        harness
    }

    fn account(&self, name: &str) -> AccountId {
        // Unknown names are accounts that do not exist.
        self.names.get(name).copied().unwrap_or(AccountId(Uuid::from_u128(u128::MAX)))
    }

    fn run(&mut self, line: &str) {
        let (command, expected) = match line.split_once("=>") {
            Some((command, expected)) => (command.trim(), Some(expected.trim())),
            None => (line.trim(), None),
        };
        let words: Vec<&str> = command.split_whitespace().collect();
        let options: HashMap<&str, &str> =
            words.iter().filter_map(|word| word.split_once('=')).collect();
        let plain: Vec<&str> = words.iter().copied().filter(|w| !w.contains('=')).collect();
        match plain[0] {
            "account" => self.open(&plain, &options),
            "fund" => {
                let id = self.account(plain[1]);
                let account = self.snapshot.accounts.get_mut(&id).unwrap();
                let amount = money(plain[2]).to_minor().unwrap();
                match account.normal_side {
                    Side::Credit => account.sums.credits_posted = amount,
                    Side::Debit => account.sums.debits_posted = amount,
                }
            }
            "clock" => {
                self.now +=
                    TimeDelta::milliseconds(plain[1].trim_start_matches('+').parse().unwrap());
            }
            "close" => {
                let through = self.now + TimeDelta::milliseconds(plain[1].parse().unwrap());
                let org = org(options.get("org").map_or(1, |n| n.parse().unwrap()));
                self.snapshot.closed_through.insert(org, through);
            }
            "sums" => {
                let id = self.account(plain[1]);
                let sums = self.snapshot.accounts[&id].sums;
                let actual = [
                    sums.debits_posted,
                    sums.credits_posted,
                    sums.debits_pending,
                    sums.credits_pending,
                ];
                let expected: Vec<i64> =
                    plain[2..].iter().map(|text| money(text).to_minor().unwrap()).collect();
                assert_eq!(actual.as_slice(), expected.as_slice(), "{line}");
            }
            _ => {
                let request = self.request(&plain, &options);
                let evaluation = evaluate(&mut self.snapshot, self.now, &[request]);
                let actual = match &evaluation.outcomes[0] {
                    Outcome::Accepted { replayed: false, .. } => "ok",
                    Outcome::Accepted { replayed: true, .. } => "replay",
                    Outcome::Rejected(reason) => reason.code(),
                };
                assert_eq!(Some(actual), expected, "{line}");
                self.check_entries(&evaluation);
            }
        }
    }

    fn open(&mut self, plain: &[&str], options: &HashMap<&str, &str>) {
        let kind = AccountKind::from_name(plain[2]).unwrap();
        let id = AccountId(Uuid::from_u128(self.names.len() as u128 + 1));
        self.names.insert(plain[1].to_owned(), id);
        let limit = match options.get("overdraft") {
            Some(limit) => LimitPolicy::Overdraft(money(limit).to_minor().unwrap()),
            None if plain.contains(&"nooverdraft") => LimitPolicy::NoOverdraft,
            None => kind.limit(),
        };
        let state = AccountState {
            id,
            org: org(options.get("org").map_or(1, |n| n.parse().unwrap())),
            currency: currency(plain.get(3).copied().filter(|w| w.len() == 3).unwrap_or("KES")),
            normal_side: kind.normal_side(),
            limit,
            closed: plain.contains(&"closed"),
            sums: Sums::default(),
            version: 0,
        };
        self.snapshot.accounts.insert(id, state);
    }

    fn request(&self, plain: &[&str], options: &HashMap<&str, &str>) -> TransferRequest {
        let postings = || -> Vec<Posting> {
            plain[2..]
                .iter()
                .map(|leg| {
                    let side = if leg.starts_with('d') { Side::Debit } else { Side::Credit };
                    let (name, amount) = leg[1..].split_once(':').unwrap();
                    Posting { account: self.account(name), side, amount: money(amount) }
                })
                .collect()
        };
        let action = match plain[0] {
            "post" => Action::Post { postings: postings() },
            "pending" => Action::Pending {
                postings: postings(),
                timeout_ms: options.get("timeout").map(|ms| ms.parse().unwrap()),
            },
            "postp" => Action::PostPending {
                pending_id: tid(plain[2]),
                amounts: options.get("amounts").map(|list| list.split(',').map(money).collect()),
            },
            "void" => Action::VoidPending { pending_id: tid(plain[2]) },
            "expire" => Action::ExpirePending { pending_id: tid(plain[2]) },
            "reverse" => Action::Reverse { transfer_id: tid(plain[2]) },
            other => panic!("unknown command {other}"),
        };
        let mut context = serde_json::Map::new();
        if let Some(value) = options.get("ctx") {
            context.insert("note".into(), serde_json::Value::String((*value).into()));
        }
        TransferRequest {
            id: tid(plain[1]),
            id_is_new: false,
            org: org(options.get("org").map_or(1, |n| n.parse().unwrap())),
            action,
            code: options.get("code").map_or("payment", |code| code).to_owned(),
            effective_at: options
                .get("at")
                .map(|ms| self.now + TimeDelta::milliseconds(ms.parse().unwrap())),
            context: context.into(),
        }
    }

    /// Every entry's sums equal the account's sums at that point (checked at the end of the
    /// batch for the last entry of each account).
    fn check_entries(&self, evaluation: &Evaluation) {
        for id in &evaluation.accounts_changed {
            let last = evaluation.entries.iter().rev().find(|entry| entry.account == *id).unwrap();
            let account = &self.snapshot.accounts[id];
            assert_eq!(last.sums_after, account.sums);
            assert_eq!(last.version, account.version);
        }
    }
}

/// Runs a script; panics at the first line whose outcome or assertion differs.
fn check(script: &str) {
    let mut harness = Harness::new();
    for line in script.lines().map(str::trim).filter(|line| !line.is_empty()) {
        harness.run(line);
    }
}

const ACCOUNTS: &str = "
    account X external
    account A purse
    account B wallet
    account U wallet USD
    account Z wallet closed
    account O wallet org=2
    fund A 100
";

/// One row per reject reason, in precedence order: the script that provokes it.
const CASES: &[(RejectReason, &str)] = {
    use RejectReason as R;
    &[
        (R::IdMustNotBeNil, "post 0 dA:1 cB:1 => id_must_not_be_nil"),
        (R::CodeInvalid, "post 1 dA:1 cB:1 code=Payment => code_invalid"),
        (R::PostingsTooFew, "post 1 dA:1 => postings_too_few"),
        (R::PostingsTooMany, ""), // checked below: the script form is too long for a line
        (R::AmountMustBePositive, "post 1 dA:0 cB:0 => amount_must_be_positive"),
        (R::AccountDuplicated, "post 1 dA:1 cA:1 => account_duplicated"),
        (R::PostingsUnbalanced, "post 1 dA:2 cB:1 => postings_unbalanced"),
        (R::TimeoutInvalid, "pending 1 dA:1 cB:1 timeout=0 => timeout_invalid"),
        (R::EffectiveAtInFuture, "post 1 dA:1 cB:1 at=1 => effective_at_in_future"),
        (R::IdAlreadyUsed, "post 1 dA:1 cB:1 => ok\n post 1 dA:1 cB:1 org=2 => id_already_used"),
        (
            R::ExistsWithDifferentKind,
            "post 1 dA:1 cB:1 => ok\n pending 1 dA:1 cB:1 => exists_with_different_kind",
        ),
        (
            R::ExistsWithDifferentPendingTransfer,
            "pending 1 dA:1 cB:1 => ok\n pending 2 dA:1 cB:1 => ok\n void 3 1 => ok\n void 3 2 => exists_with_different_pending_transfer",
        ),
        (
            R::ExistsWithDifferentReversalTarget,
            "post 1 dA:1 cB:1 => ok\n post 2 dA:1 cB:1 => ok\n reverse 3 1 => ok\n reverse 3 2 => exists_with_different_reversal_target",
        ),
        (
            R::ExistsWithDifferentPostings,
            "post 1 dA:1 cB:1 => ok\n post 1 dB:1 cA:1 => exists_with_different_postings",
        ),
        (
            R::ExistsWithDifferentAmount,
            "post 1 dA:1 cB:1 => ok\n post 1 dA:2 cB:2 => exists_with_different_amount",
        ),
        (
            R::ExistsWithDifferentCode,
            "post 1 dA:1 cB:1 => ok\n post 1 dA:1 cB:1 code=fee => exists_with_different_code",
        ),
        (
            R::ExistsWithDifferentTimeout,
            "pending 1 dA:1 cB:1 timeout=5 => ok\n pending 1 dA:1 cB:1 timeout=6 => exists_with_different_timeout",
        ),
        (
            R::ExistsWithDifferentEffectiveAt,
            "post 1 dA:1 cB:1 at=-5 => ok\n post 1 dA:1 cB:1 at=-6 => exists_with_different_effective_at",
        ),
        (
            R::ExistsWithDifferentContext,
            "post 1 dA:1 cB:1 ctx=a => ok\n post 1 dA:1 cB:1 ctx=b => exists_with_different_context",
        ),
        (R::PeriodClosed, "close -10\n post 1 dA:1 cB:1 at=-10 => period_closed"),
        (R::PendingTransferNotFound, "postp 1 9 => pending_transfer_not_found"),
        (
            R::PendingTransferNotPending,
            "post 1 dA:1 cB:1 => ok\n void 2 1 => pending_transfer_not_pending",
        ),
        (
            R::PendingTransferAlreadyPosted,
            "pending 1 dA:1 cB:1 => ok\n postp 2 1 => ok\n void 3 1 => pending_transfer_already_posted",
        ),
        (
            R::PendingTransferAlreadyVoided,
            "pending 1 dA:1 cB:1 => ok\n void 2 1 => ok\n postp 3 1 => pending_transfer_already_voided",
        ),
        (
            R::PendingTransferExpired,
            "pending 1 dA:1 cB:1 timeout=10 => ok\n clock +10\n postp 2 1 => pending_transfer_expired",
        ),
        (
            R::PendingTransferNotExpired,
            "pending 1 dA:1 cB:1 timeout=10 => ok\n expire 2 1 => pending_transfer_not_expired",
        ),
        (
            R::PostAmountsCountMismatch,
            "pending 1 dA:2 cB:2 => ok\n postp 2 1 amounts=1 => post_amounts_count_mismatch",
        ),
        (
            R::PostAmountExceedsPending,
            "pending 1 dA:2 cB:2 => ok\n postp 2 1 amounts=3,3 => post_amount_exceeds_pending",
        ),
        (
            R::PostAmountsUnbalanced,
            "pending 1 dA:2 cB:2 => ok\n postp 2 1 amounts=2,1 => post_amounts_unbalanced",
        ),
        (R::ReversalTargetNotFound, "reverse 1 9 => reversal_target_not_found"),
        (
            R::ReversalTargetNotPosted,
            "pending 1 dA:1 cB:1 => ok\n reverse 2 1 => reversal_target_not_posted",
        ),
        (
            R::ReversalTargetAlreadyReversed,
            "post 1 dA:1 cB:1 => ok\n reverse 2 1 => ok\n reverse 3 1 => reversal_target_already_reversed",
        ),
        (R::AccountNotFound, "post 1 dA:1 cNOPE:1 => account_not_found"),
        (R::AccountClosed, "post 1 dA:1 cZ:1 => account_closed"),
        (R::CurrencyMismatch, "post 1 dA:1 cU:1 => currency_mismatch"),
        (
            R::BalanceOverflow,
            "post 1 dX:92233720368547758.07 cA:92233720368547758.07 => balance_overflow",
        ),
        (R::ExceedsCredits, "post 1 dA:100.01 cB:100.01 => exceeds_credits"),
        (
            R::ExceedsDebits,
            "account C channel nooverdraft\n account D channel\n fund C 5\n post 1 dD:6 cC:6 => exceeds_debits",
        ),
    ]
};

#[test]
fn every_reject_reason_has_a_case() {
    assert_eq!(CASES.len(), RejectReason::ALL.len());
    for ((reason, script), expected) in CASES.iter().zip(RejectReason::ALL) {
        assert_eq!(*reason, expected, "cases are listed in precedence order");
        if !script.is_empty() {
            check(&format!("{ACCOUNTS}\n{script}"));
        }
    }
    let legs: Vec<String> = (0..=POSTINGS_MAX).map(|i| format!("dA{i}:1 cB{i}:1")).collect();
    let mut too_many = "post 1".to_owned();
    for leg in legs.iter().take(POSTINGS_MAX / 2 + 1) {
        too_many.push(' ');
        too_many.push_str(leg);
    }
    check(&format!("{too_many} => postings_too_many"));
}

#[test]
fn reason_codes_are_stable_snake_case_and_round_trip() {
    for reason in RejectReason::ALL {
        let code = reason.code();
        assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
        assert_eq!(RejectReason::from_code(code), Some(reason));
        assert_eq!(serde_json::to_string(&reason).unwrap(), format!("\"{code}\""));
    }
    assert!(RejectReason::ALL.windows(2).all(|pair| pair[0] < pair[1]));
}

#[test]
fn earlier_reasons_win() {
    // Unbalanced and into a closed account: the request's own fault is reported first.
    check(&format!("{ACCOUNTS}\n post 1 dA:2 cZ:1 => postings_unbalanced"));
    // Not found beats closed, closed beats currency, currency beats limits.
    check(&format!("{ACCOUNTS}\n post 1 dZ:1 cU:1@KES dNOPE:0.5 cA:0.5 => account_not_found"));
    check(&format!("{ACCOUNTS}\n post 1 dA:1000 cZ:1000 => account_closed"));
    check(&format!("{ACCOUNTS}\n post 1 dA:1000 cU:1000 => currency_mismatch"));
    // A different request under a recorded id: the idempotency conflict, before state checks.
    check(&format!(
        "{ACCOUNTS}\n post 1 dA:1 cB:1 => ok\n post 1 dA:1 cNOPE:1 => exists_with_different_postings"
    ));
}

#[test]
fn posting_moves_posted_sums_and_replays_change_nothing() {
    check(&format!(
        "{ACCOUNTS}
        post 1 dA:40 cB:40 => ok
        sums A 40 100 0 0
        sums B 0 40 0 0
        post 1 dA:40 cB:40 => replay
        sums A 40 100 0 0
        post 2 dA:60.01 cB:60.01 => exceeds_credits
        sums A 40 100 0 0
        post 3 dA:60 cB:60 => ok
        sums A 100 100 0 0"
    ));
}

#[test]
fn state_rejections_are_recorded_so_a_replay_gets_the_same_answer() {
    check(&format!(
        "{ACCOUNTS}
        post 1 dB:10 cA:10 => exceeds_credits
        post 2 dX:10 cB:10 => ok
        post 1 dB:10 cA:10 => exceeds_credits
        post 1 dB:11 cA:11 => exists_with_different_amount"
    ));
    // A request refused on its own terms is not recorded: the id stays free.
    check(&format!(
        "{ACCOUNTS}
        post 1 dA:1 cB:2 => postings_unbalanced
        post 1 dA:1 cB:1 => ok"
    ));
}

#[test]
fn pending_reserves_and_post_releases_the_rest() {
    check(&format!(
        "{ACCOUNTS}
        pending 1 dA:30 cB:30 => ok
        sums A 0 100 30 0
        sums B 0 0 0 30
        post 2 dA:70.01 cB:70.01 => exceeds_credits
        postp 3 1 amounts=20,20 => ok
        sums A 20 100 0 0
        sums B 0 20 0 0
        postp 3 1 amounts=20,20 => replay
        postp 3 1 => exists_with_different_amount
        postp 4 1 => pending_transfer_already_posted"
    ));
}

#[test]
fn void_and_expiry_release_everything_once() {
    check(&format!(
        "{ACCOUNTS}
        pending 1 dA:30 cB:30 timeout=1000 => ok
        void 2 1 => ok
        sums A 0 100 0 0
        sums B 0 0 0 0
        void 2 1 => replay
        expire 3 1 => pending_transfer_already_voided
        pending 4 dA:30 cB:30 timeout=1000 => ok
        void 5 4 => ok
        pending 6 dA:50 cB:50 timeout=1000 => ok
        clock +999
        expire 7 6 => pending_transfer_not_expired
        clock +1
        void 8 6 => pending_transfer_expired
        expire 7 6 => ok
        sums A 0 100 0 0
        postp 9 6 => pending_transfer_expired"
    ));
}

#[test]
fn reversal_restores_balances_and_needs_the_money_back() {
    check(&format!(
        "{ACCOUNTS}
        post 1 dA:60 cB:60 => ok
        reverse 2 1 => ok
        sums A 60 160 0 0
        sums B 60 60 0 0
        reverse 3 2 => ok
        post 4 dB:60 cX:60 => ok
        reverse 5 3 => exceeds_credits
        pending 6 dA:10 cB:10 => ok
        postp 7 6 amounts=4,4 => ok
        reverse 8 7 => ok
        sums B 124 124 0 0"
    ));
}

#[test]
fn an_overdraft_limit_allows_that_much_below_zero() {
    check(
        "account X external
        account A purse overdraft=50
        account B wallet
        post 1 dA:50 cB:50 => ok
        post 2 dA:0.01 cB:0.01 => exceeds_credits
        pending 3 dX:10 cA:10 => ok
        post 4 dA:0.01 cB:0.01 => exceeds_credits",
    );
}

#[test]
fn other_orgs_accounts_and_transfers_are_invisible() {
    check(&format!(
        "{ACCOUNTS}
        post 1 dA:1 cO:1 => account_not_found
        pending 2 dA:1 cB:1 => ok
        void 3 2 org=2 => pending_transfer_not_found
        post 4 dA:1 cB:1 => ok
        reverse 5 4 org=2 => reversal_target_not_found"
    ));
}

#[test]
fn closed_accounts_take_no_postings_but_reservations_can_be_released() {
    let mut harness = Harness::with_accounts();
    harness.run("pending 1 dA:10 cB:10 => ok");
    let b = harness.account("B");
    harness.snapshot.accounts.get_mut(&b).unwrap().closed = true;
    harness.run("post 2 dA:1 cB:1 => account_closed");
    harness.run("postp 3 1 => account_closed");
    harness.run("void 4 1 => ok");
}

#[test]
fn multi_currency_transfers_balance_per_currency() {
    check(&format!(
        "{ACCOUNTS}
        account V external USD
        post 1 dV:5@USD cU:5@USD dX:10 cB:10 => ok
        post 2 dV:5@USD cB:5 => postings_unbalanced"
    ));
}

#[test]
fn later_requests_in_a_batch_see_earlier_ones() {
    let mut harness = Harness::with_accounts();
    let requests: Vec<TransferRequest> = [
        "post 1 dA:70 cB:70",
        "post 2 dA:70 cB:70",
        "pending 3 dB:70 cA:70",
        "postp 4 3",
        "post 1 dA:70 cB:70",
        "reverse 5 4",
    ]
    .iter()
    .map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        harness.request(&words, &HashMap::new())
    })
    .collect();
    let evaluation = evaluate(&mut harness.snapshot, harness.now, &requests);
    let codes: Vec<&str> = evaluation
        .outcomes
        .iter()
        .map(|outcome| match outcome {
            Outcome::Accepted { replayed: false, .. } => "ok",
            Outcome::Accepted { replayed: true, .. } => "replay",
            Outcome::Rejected(reason) => reason.code(),
        })
        .collect();
    assert_eq!(codes, ["ok", "exceeds_credits", "ok", "ok", "replay", "ok"]);
    // Accepted 1, 3, 4, 5 plus the recorded rejection of 2.
    assert_eq!(evaluation.transfers.len(), 5);
    assert!(evaluation.pending_opened.is_empty(), "3 was opened and posted within the batch");
    assert_eq!(evaluation.entries.len(), 8);
    let a = &harness.snapshot.accounts[&harness.account("A")];
    assert_eq!(a.version, 4);
    assert_eq!(a.sums.posted(Side::Credit), 30 * 100);
}

#[test]
fn derived_balances_follow_the_normal_side() {
    let sums =
        Sums { debits_posted: 10, credits_posted: 100, debits_pending: 5, credits_pending: 20 };
    assert_eq!(sums.posted(Side::Credit), 90);
    assert_eq!(sums.pending(Side::Credit), 105);
    assert_eq!(sums.available(Side::Credit), 85);
    let mirror =
        Sums { debits_posted: 100, credits_posted: 10, debits_pending: 20, credits_pending: 5 };
    assert_eq!(mirror.posted(Side::Debit), 90);
    assert_eq!(mirror.pending(Side::Debit), 105);
    assert_eq!(mirror.available(Side::Debit), 85);
}

#[test]
fn the_expiry_request_is_the_same_in_every_process() {
    let pending = TransferId(Uuid::from_u128(7));
    let a = TransferRequest::expiry(org(1), pending);
    let b = TransferRequest::expiry(org(1), pending);
    assert_eq!(a, b);
    assert_ne!(a.id, pending);
}

#[test]
fn a_closed_period_takes_no_transfer_dated_in_it() {
    // At or before the end of the period: refused; after it, or without a time: accepted.
    check(&format!(
        "{ACCOUNTS}
         close -10
         post 1 dA:1 cB:1 at=-11 => period_closed
         post 2 dA:1 cB:1 at=-10 => period_closed
         post 3 dA:1 cB:1 at=-9 => ok
         post 4 dA:1 cB:1 => ok
         sums A 2 100 0 0"
    ));
    // Nothing was recorded for the refused id: the same id may be used again in the open period.
    check(&format!(
        "{ACCOUNTS}
         close -10
         post 1 dA:1 cB:1 at=-20 => period_closed
         post 1 dA:1 cB:1 at=-20 => period_closed
         post 1 dA:1 cB:1 => ok"
    ));
    // Another org's close changes nothing for this one.
    check(&format!(
        "{ACCOUNTS}
         close -10 org=2
         post 1 dA:1 cB:1 at=-20 => ok"
    ));
}

#[test]
fn transfers_from_a_closed_period_are_replayed_posted_voided_and_reversed() {
    check(&format!(
        "{ACCOUNTS}
         post 1 dA:5 cB:5 at=-20 => ok
         pending 2 dA:5 cB:5 at=-20 => ok
         pending 3 dA:5 cB:5 at=-20 => ok
         pending 4 dA:5 cB:5 at=-20 timeout=30 => ok
         close -10
         post 1 dA:5 cB:5 at=-20 => replay
         post 1 dA:6 cB:6 at=-20 => exists_with_different_amount
         postp 5 2 => ok
         void 6 3 => ok
         reverse 7 1 => ok
         clock +30
         expire 8 4 => ok
         sums A 10 105 0 0"
    ));
    // Dated in the closed period, an action on a transfer is refused before its target is
    // looked at.
    check(&format!(
        "{ACCOUNTS}
         pending 1 dA:5 cB:5 at=-20 => ok
         close -10
         postp 2 1 at=-15 => period_closed
         postp 3 9 at=-15 => period_closed
         postp 4 1 at=-5 => ok"
    ));
}
