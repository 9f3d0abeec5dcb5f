//! Model-based test of the ledger: random sequences of operations (multi-leg transfers, pending
//! transfers with post, partial post, void and expiry, reversals, account closing, replays with
//! the same and with different content) are applied to a small in-memory reference model and
//! to the PostgreSQL store. Every outcome and every balance must agree, and the store's
//! invariants must hold after every step.
//!
//! The model is written independently of `hazina_ledger::rules`, from the semantics in
//! ARCHITECTURE.md, so that the two can disagree.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use hazina_ledger::rules::{
    AccountKind, Action, LimitPolicy, Outcome, Posting, Side, TransferRequest,
};
use hazina_ledger::store::{Clock, NewAccount, Store, StoreError};
use hazina_ledger::{AccountId, Currency, CustomerId, Money, OrgId, TransferId};
use hazina_tests::{Mode, Poster};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use uuid::Uuid;

/// Cases per run: each is a fresh database and `STEPS_MIN` to `STEPS_MAX` steps. A fresh
/// database costs about as much as 40 steps, so the operations come from long cases rather
/// than many databases; a failing case shrinks to no fewer than `STEPS_MIN` steps, most of
/// them simplified to plain posts.
const CASES: u32 = 25;
const STEPS_MIN: usize = 420;
const STEPS_MAX: usize = 480;
/// Operations each run of each test applies at least: `CASES` × `STEPS_MIN`, less the few
/// replays drawn before any request exists, which do nothing.
const OPERATIONS_MIN: usize = 10_000;

// ---------------------------------------------------------------------------------------------
// Operations.

#[derive(Clone, Debug)]
enum LegsGen {
    /// Pairs of (debit account, credit account, amount, in the other currency), then an
    /// optional corruption.
    Pairs(Vec<(usize, usize, i64, bool)>, u8),
}

#[derive(Clone, Debug)]
enum AmountsGen {
    Full,
    /// Every pending amount times k/4.
    Scaled(i64),
    Random(Vec<i64>),
}

#[derive(Clone, Debug)]
enum OpGen {
    Post(LegsGen),
    Pending(LegsGen, Option<u64>),
    PostPending(prop::sample::Index, AmountsGen),
    Void(prop::sample::Index),
    Reverse(prop::sample::Index),
}

#[derive(Clone, Debug)]
enum Step {
    Submit { op: OpGen, org2: bool, code: &'static str, at: Option<i64>, ctx: u8, nil: bool },
    Replay(prop::sample::Index),
    Conflict(prop::sample::Index, u8),
    Advance(i64),
    Expire,
    Close(usize),
}

/// Accounts of every case: (org, kind, currency, overdraft).
const ACCOUNTS: &[(u8, AccountKind, &str, Option<i64>)] = &[
    (1, AccountKind::External, "KES", None),
    (1, AccountKind::Purse, "KES", None),
    (1, AccountKind::Wallet, "KES", None),
    (1, AccountKind::Wallet, "KES", Some(5_000)),
    (1, AccountKind::Wallet, "USD", None),
    (1, AccountKind::External, "USD", None),
    (2, AccountKind::Wallet, "KES", None),
];
/// One account index past the end: an account that does not exist.
const MISSING: usize = ACCOUNTS.len();

fn account_gen() -> impl Strategy<Value = usize> {
    // Mostly the KES accounts of org 1; now and then another currency, org or no account.
    prop_oneof![
        6 => Just(0_usize),
        6 => Just(1),
        6 => Just(2),
        4 => Just(3),
        2 => Just(4),
        2 => Just(5),
        1 => Just(6),
        1 => Just(MISSING),
    ]
}

/// Legs that pass the request checks by construction: one pair between distinct accounts of
/// org 1 in one currency (the limits may still refuse them).
fn valid_legs_gen() -> impl Strategy<Value = LegsGen> {
    let kes = prop::sample::select(vec![0_usize, 0, 1, 2, 3]);
    (prop::bool::weighted(0.15), kes.clone(), kes, 1..2_000_i64).prop_map(|(usd, a, b, amount)| {
        let (from, to) = match (usd, a == b) {
            (true, _) => {
                if a % 2 == 0 {
                    (5, 4)
                } else {
                    (4, 5)
                }
            }
            (false, false) => (a, b),
            (false, true) => (a, if a == 3 { 1 } else { a + 1 }),
        };
        LegsGen::Pairs(vec![(from, to, amount, false)], u8::MAX)
    })
}

fn legs_gen() -> impl Strategy<Value = LegsGen> {
    prop_oneof![3 => valid_legs_gen(), 1 => any_legs_gen()]
}

fn any_legs_gen() -> impl Strategy<Value = LegsGen> {
    let amount = prop_oneof![1 => Just(0_i64), 30 => 1..3_000_i64];
    let pair = (account_gen(), account_gen(), amount, prop::bool::weighted(0.05)).boxed();
    let pairs = (prop::collection::vec(pair, 2..=2), prop::bool::weighted(0.25)).prop_map(
        |(mut pairs, both)| {
            pairs.truncate(if both { 2 } else { 1 });
            pairs
        },
    );
    (pairs, 0..16_u8).prop_map(|(pairs, corrupt)| LegsGen::Pairs(pairs, corrupt))
}

fn op_gen() -> impl Strategy<Value = OpGen> {
    let timeout = prop_oneof![3 => Just(None), 1 => Just(Some(0)), 2 => Just(Some(1_000)), 2 => Just(Some(5_000))];
    let amounts = prop_oneof![
        3 => Just(AmountsGen::Full),
        3 => (0..=4_i64).prop_map(AmountsGen::Scaled),
        1 => prop::collection::vec(0..3_000_i64, 1..=3).prop_map(AmountsGen::Random),
    ];
    prop_oneof![
        5 => legs_gen().prop_map(OpGen::Post),
        3 => (legs_gen(), timeout).prop_map(|(legs, timeout)| OpGen::Pending(legs, timeout)),
        2 => (any::<prop::sample::Index>(), amounts).prop_map(|(i, a)| OpGen::PostPending(i, a)),
        1 => any::<prop::sample::Index>().prop_map(OpGen::Void),
        1 => any::<prop::sample::Index>().prop_map(OpGen::Reverse),
    ]
}

fn step_gen() -> impl Strategy<Value = Step> {
    let code = prop_oneof![24 => Just("payment"), 4 => Just("fee"), 1 => Just("Not A Code")];
    let at = prop_oneof![16 => Just(None), 2 => Just(Some(-1_000_i64)), 1 => Just(Some(1_000_i64))];
    let submit =
        (op_gen(), prop::bool::weighted(0.05), code, at, 0..3_u8, prop::bool::weighted(0.02))
            .prop_map(|(op, org2, code, at, ctx, nil)| Step::Submit {
                op,
                org2,
                code,
                at,
                ctx,
                nil,
            });
    prop_oneof![
        12 => submit,
        2 => any::<prop::sample::Index>().prop_map(Step::Replay),
        1 => (any::<prop::sample::Index>(), 0..4_u8).prop_map(|(i, m)| Step::Conflict(i, m)),
        1 => prop_oneof![Just(400_i64), Just(1_000), Just(3_000), Just(6_000)].prop_map(Step::Advance),
        1 => Just(Step::Expire),
        1 => (0..ACCOUNTS.len(), 0..4_u8).prop_map(|(account, n)| {
            // Closing is final: do it rarely.
            if n == 0 { Step::Close(account) } else { Step::Advance(400) }
        }),
    ]
}

// ---------------------------------------------------------------------------------------------
// The model's own request form: accounts by index, amounts in minor units, times in ms.

#[derive(Clone, Debug, PartialEq)]
struct Leg {
    account: usize,
    debit: bool,
    amount: i64,
    currency: &'static str,
}

#[derive(Clone, Debug, PartialEq)]
enum Op {
    Post(Vec<Leg>),
    Pending(Vec<Leg>, Option<u64>),
    PostPending(u128, Option<Vec<(i64, &'static str)>>),
    Void(u128),
    Reverse(u128),
}

#[derive(Clone, Debug, PartialEq)]
struct Req {
    id: u128,
    org: u8,
    op: Op,
    code: &'static str,
    /// Absolute effective time in ms, when given.
    at: Option<i64>,
    ctx: u8,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sums {
    dp: i64,
    cp: i64,
    dpe: i64,
    cpe: i64,
}

impl Sums {
    fn add(&mut self, debit: bool, posted: i64, pending: i64) {
        if debit {
            self.dp += posted;
            self.dpe += pending;
        } else {
            self.cp += posted;
            self.cpe += pending;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolution {
    Posted,
    Voided,
    Expired,
}

#[derive(Clone, Debug)]
struct Record {
    req: Req,
    /// The effective time recorded.
    at: i64,
    rejection: Option<&'static str>,
    /// For accepted transfers: the legs as they moved money (per leg: posted, pending change).
    legs: Vec<(Leg, i64, i64)>,
    expires_at: Option<i64>,
}

struct Model {
    sums: Vec<Sums>,
    closed: Vec<bool>,
    /// By org and id: ids are unique per org.
    records: HashMap<(u8, u128), Record>,
    resolved: HashMap<(u8, u128), Resolution>,
    reversed: HashSet<(u8, u128)>,
    now: i64,
}

type Answer = Result<bool, &'static str>;

/// The legs a request would apply (leg, posted change, pending change), and whether the closed
/// check applies.
type Plan = (Vec<(Leg, i64, i64)>, bool);

fn balanced<'a>(legs: impl Iterator<Item = (bool, i64, &'a str)>) -> bool {
    let mut net: HashMap<&str, i64> = HashMap::new();
    for (debit, amount, currency) in legs {
        *net.entry(currency).or_default() += if debit { amount } else { -amount };
    }
    net.values().all(|n| *n == 0)
}

impl Model {
    fn new() -> Self {
        Self {
            sums: vec![Sums::default(); ACCOUNTS.len()],
            closed: vec![false; ACCOUNTS.len()],
            records: HashMap::new(),
            resolved: HashMap::new(),
            reversed: HashSet::new(),
            now: 0,
        }
    }

    fn apply(&mut self, req: &Req) -> Answer {
        self.check_request(req)?;
        if let Some(record) = self.records.get(&(req.org, req.id)) {
            Self::compare(record, req)?;
            return record.rejection.map_or(Ok(true), Err);
        }
        let at = req.at.unwrap_or(self.now);
        match self.plan(req) {
            Ok((legs, moves_money)) => match self.check_accounts(req, &legs, moves_money) {
                Ok(()) => {
                    self.commit(req, at, legs);
                    Ok(false)
                }
                Err(reason) => self.reject(req, at, reason),
            },
            Err(reason) => self.reject(req, at, reason),
        }
    }

    fn reject(&mut self, req: &Req, at: i64, reason: &'static str) -> Answer {
        if !matches!(reason, "pending_transfer_not_expired") {
            let record = Record {
                req: req.clone(),
                at,
                rejection: Some(reason),
                legs: vec![],
                expires_at: None,
            };
            self.records.insert((req.org, req.id), record);
        }
        Err(reason)
    }

    fn check_request(&self, req: &Req) -> Result<(), &'static str> {
        if req.id == 0 {
            return Err("id_must_not_be_nil");
        }
        if !req.code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err("code_invalid");
        }
        match &req.op {
            Op::Post(legs) | Op::Pending(legs, _) => {
                if legs.len() < 2 {
                    return Err("postings_too_few");
                }
                if legs.iter().any(|leg| leg.amount <= 0) {
                    return Err("amount_must_be_positive");
                }
                let distinct: HashSet<usize> = legs.iter().map(|leg| leg.account).collect();
                if distinct.len() != legs.len() {
                    return Err("account_duplicated");
                }
                if !balanced(legs.iter().map(|leg| (leg.debit, leg.amount, leg.currency))) {
                    return Err("postings_unbalanced");
                }
            }
            Op::PostPending(_, Some(amounts)) if amounts.iter().all(|(amount, _)| *amount == 0) => {
                return Err("amount_must_be_positive");
            }
            _ => {}
        }
        if let Op::Pending(_, Some(0)) = req.op {
            return Err("timeout_invalid");
        }
        if req.at.is_some_and(|at| at > self.now) {
            return Err("effective_at_in_future");
        }
        Ok(())
    }

    fn compare(record: &Record, req: &Req) -> Result<(), &'static str> {
        // Records are per org: another org's request under the same id is a new transfer.
        let old = &record.req;
        let kind = |op: &Op| std::mem::discriminant(op);
        if kind(&old.op) != kind(&req.op) {
            return Err("exists_with_different_kind");
        }
        match (&old.op, &req.op) {
            (Op::PostPending(a, _) | Op::Void(a), Op::PostPending(b, _) | Op::Void(b))
                if a != b =>
            {
                return Err("exists_with_different_pending_transfer");
            }
            (Op::Reverse(a), Op::Reverse(b)) if a != b => {
                return Err("exists_with_different_reversal_target");
            }
            (Op::Post(a) | Op::Pending(a, _), Op::Post(b) | Op::Pending(b, _)) => {
                let same = a.len() == b.len()
                    && a.iter().zip(b).all(|(x, y)| x.account == y.account && x.debit == y.debit);
                if !same {
                    return Err("exists_with_different_postings");
                }
                if a.iter().zip(b).any(|(x, y)| x.amount != y.amount || x.currency != y.currency) {
                    return Err("exists_with_different_amount");
                }
            }
            (Op::PostPending(_, a), Op::PostPending(_, b)) if a != b => {
                return Err("exists_with_different_amount");
            }
            _ => {}
        }
        if old.code != req.code {
            return Err("exists_with_different_code");
        }
        let timeout = |op: &Op| if let Op::Pending(_, t) = op { *t } else { None };
        if timeout(&old.op) != timeout(&req.op) {
            return Err("exists_with_different_timeout");
        }
        if req.at.is_some_and(|at| at != record.at) {
            return Err("exists_with_different_effective_at");
        }
        if old.ctx != req.ctx {
            return Err("exists_with_different_context");
        }
        Ok(())
    }

    /// The legs a request would apply: (leg, posted change, pending change), and whether the
    /// closed check applies.
    fn plan(&self, req: &Req) -> Result<Plan, &'static str> {
        match &req.op {
            Op::Post(legs) => Ok((legs.iter().map(|l| (l.clone(), l.amount, 0)).collect(), true)),
            Op::Pending(legs, _) => {
                Ok((legs.iter().map(|l| (l.clone(), 0, l.amount)).collect(), true))
            }
            Op::PostPending(target, amounts) => {
                let pending = self.open_pending(req, *target)?;
                let Some(amounts) = amounts else {
                    return Ok((
                        pending.iter().map(|(l, _, p)| (l.clone(), *p, -p)).collect(),
                        true,
                    ));
                };
                if amounts.len() != pending.len() {
                    return Err("post_amounts_count_mismatch");
                }
                if pending.iter().zip(amounts).any(|((l, _, p), (a, c))| a > p || *c != l.currency)
                {
                    return Err("post_amount_exceeds_pending");
                }
                if !balanced(
                    pending.iter().zip(amounts).map(|((l, _, _), (a, c))| (l.debit, *a, *c)),
                ) {
                    return Err("post_amounts_unbalanced");
                }
                let legs = pending
                    .iter()
                    .zip(amounts)
                    .map(|((l, _, p), (a, _))| (Leg { amount: *a, ..l.clone() }, *a, -p))
                    .collect();
                Ok((legs, true))
            }
            Op::Void(target) => {
                let pending = self.open_pending(req, *target)?;
                Ok((pending.iter().map(|(l, _, p)| (l.clone(), 0, -p)).collect(), false))
            }
            Op::Reverse(target) => {
                let record = self
                    .records
                    .get(&(req.org, *target))
                    .filter(|r| r.req.org == req.org && r.rejection.is_none())
                    .ok_or("reversal_target_not_found")?;
                if !matches!(record.req.op, Op::Post(_) | Op::PostPending(..) | Op::Reverse(_)) {
                    return Err("reversal_target_not_posted");
                }
                if self.reversed.contains(&(req.org, *target)) {
                    return Err("reversal_target_already_reversed");
                }
                let legs = record
                    .legs
                    .iter()
                    .filter(|(_, posted, _)| *posted > 0)
                    .map(|(l, posted, _)| {
                        (Leg { debit: !l.debit, amount: *posted, ..l.clone() }, *posted, 0)
                    })
                    .collect();
                Ok((legs, true))
            }
        }
    }

    /// The legs of an open pending transfer, each with its pending amount.
    fn open_pending(&self, req: &Req, target: u128) -> Result<Vec<(Leg, i64, i64)>, &'static str> {
        let record = self
            .records
            .get(&(req.org, target))
            .filter(|r| r.req.org == req.org && r.rejection.is_none())
            .ok_or("pending_transfer_not_found")?;
        if !matches!(record.req.op, Op::Pending(..)) {
            return Err("pending_transfer_not_pending");
        }
        match self.resolved.get(&(req.org, target)) {
            Some(Resolution::Posted) => return Err("pending_transfer_already_posted"),
            Some(Resolution::Voided) => return Err("pending_transfer_already_voided"),
            Some(Resolution::Expired) => return Err("pending_transfer_expired"),
            None => {}
        }
        if record.expires_at.is_some_and(|at| at <= self.now) {
            return Err("pending_transfer_expired");
        }
        Ok(record.legs.clone())
    }

    fn check_accounts(
        &self,
        req: &Req,
        legs: &[(Leg, i64, i64)],
        moves_money: bool,
    ) -> Result<(), &'static str> {
        let visible = |i: usize| i < ACCOUNTS.len() && ACCOUNTS[i].0 == req.org;
        if legs.iter().any(|(l, _, _)| !visible(l.account)) {
            return Err("account_not_found");
        }
        if moves_money && legs.iter().any(|(l, _, _)| self.closed[l.account]) {
            return Err("account_closed");
        }
        if legs.iter().any(|(l, _, _)| l.currency != ACCOUNTS[l.account].2) {
            return Err("currency_mismatch");
        }
        for (leg, posted, pending) in legs {
            let (_, kind, _, overdraft) = ACCOUNTS[leg.account];
            let credit_normal = kind.normal_side() == Side::Credit;
            let limited = matches!(kind, AccountKind::Purse | AccountKind::Wallet);
            if leg.debit != credit_normal || posted + pending <= 0 || !limited {
                continue;
            }
            let mut s = self.sums[leg.account];
            s.add(leg.debit, *posted, *pending);
            let allowance = overdraft.unwrap_or(0);
            let exceeds = if credit_normal {
                s.dp + s.dpe > s.cp + allowance
            } else {
                s.cp + s.cpe > s.dp + allowance
            };
            if exceeds {
                return Err(if credit_normal { "exceeds_credits" } else { "exceeds_debits" });
            }
        }
        Ok(())
    }

    fn commit(&mut self, req: &Req, at: i64, legs: Vec<(Leg, i64, i64)>) {
        for (leg, posted, pending) in &legs {
            self.sums[leg.account].add(leg.debit, *posted, *pending);
        }
        match &req.op {
            Op::PostPending(target, _) => {
                self.resolved.insert((req.org, *target), Resolution::Posted);
            }
            Op::Void(target) => {
                self.resolved.insert((req.org, *target), Resolution::Voided);
            }
            Op::Reverse(target) => {
                self.reversed.insert((req.org, *target));
            }
            _ => {}
        }
        let expires_at = match req.op {
            Op::Pending(_, Some(ms)) => Some(self.now + i64::try_from(ms).unwrap()),
            _ => None,
        };
        // A pending transfer's record keeps its legs with their pending amounts.
        let legs = match &req.op {
            Op::Pending(..) => legs.into_iter().map(|(l, _, p)| (l, 0, p)).collect(),
            _ => legs,
        };
        self.records.insert(
            (req.org, req.id),
            Record { req: req.clone(), at, rejection: None, legs, expires_at },
        );
    }

    /// Expires every due pending transfer; returns how many.
    fn expire(&mut self) -> usize {
        let due: Vec<(u8, u128)> = self
            .records
            .iter()
            .filter(|(id, r)| {
                r.rejection.is_none()
                    && r.expires_at.is_some_and(|at| at <= self.now)
                    && !self.resolved.contains_key(id)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &due {
            for (leg, _, pending) in self.records[id].legs.clone() {
                self.sums[leg.account].add(leg.debit, 0, -pending);
            }
            self.resolved.insert(*id, Resolution::Expired);
        }
        due.len()
    }

    fn close(&mut self, account: usize) -> bool {
        let s = self.sums[account];
        let empty = s.dp == s.cp && s.dpe == 0 && s.cpe == 0;
        if empty {
            self.closed[account] = true;
        }
        empty
    }
}

// ---------------------------------------------------------------------------------------------
// Building requests from the generated steps.

fn legs_of(legs_gen: &LegsGen) -> Vec<Leg> {
    let LegsGen::Pairs(pairs, corrupt) = legs_gen;
    let mut legs = Vec::new();
    for (from, to, amount, other) in pairs {
        // A transfer from an account to itself is refused; keep that case rare.
        let to = if from == to && *corrupt != 2 { &((to + 1) % ACCOUNTS.len()) } else { to };
        let usd = ACCOUNTS.get(*from).is_some_and(|account| account.2 == "USD");
        let currency = if usd == *other { "KES" } else { "USD" };
        legs.push(Leg { account: *from, debit: true, amount: *amount, currency });
        legs.push(Leg { account: *to, debit: false, amount: *amount, currency });
    }
    match corrupt {
        0 => {
            legs.pop();
        }
        1 => legs[0].amount += 1,
        _ => {}
    }
    legs
}

struct Runner {
    stats: std::sync::Arc<std::sync::Mutex<HashMap<String, usize>>>,
    model: Model,
    store: Store,
    poster: Poster,
    clock: Clock,
    accounts: Vec<AccountId>,
    submitted: Vec<Req>,
    next_id: u128,
    start: DateTime<Utc>,
}

fn org(n: u8) -> OrgId {
    OrgId(Uuid::from_u128(u128::from(n)))
}

impl Runner {
    async fn new(store: Store, mode: Mode, clock: Clock, start: DateTime<Utc>) -> Self {
        store.create_org(org(1), "one").await.unwrap();
        store.create_org(org(2), "two").await.unwrap();
        let mut accounts = Vec::new();
        for (i, (org_n, kind, currency, overdraft)) in ACCOUNTS.iter().enumerate() {
            let mut new =
                NewAccount::new(org(*org_n), *kind, Currency::from_code(currency).unwrap());
            if *kind == AccountKind::Wallet {
                new.customer = Some(CustomerId(Uuid::from_u128(7)));
                new.wallet_id = Some(format!("w{i}"));
            }
            new.limit = overdraft.map(LimitPolicy::Overdraft);
            accounts.push(store.create_account(&new).await.unwrap().id);
        }
        // One id past the end, for legs on an account that does not exist.
        accounts.push(AccountId(Uuid::from_u128(0xdead)));
        Self {
            stats: std::sync::Arc::default(),
            model: Model::new(),
            poster: Poster::new(mode, &store),
            store,
            clock,
            accounts,
            submitted: Vec::new(),
            next_id: 1,
            start,
        }
    }

    fn time(&self, ms: i64) -> DateTime<Utc> {
        self.start + TimeDelta::milliseconds(ms)
    }

    /// An earlier request's id, most often one whose operation `prefer` accepts.
    fn pick(&self, index: prop::sample::Index, prefer: fn(&Op) -> bool) -> u128 {
        let accepted = |req: &Req| {
            self.model.records.get(&(req.org, req.id)).is_some_and(|r| r.rejection.is_none())
        };
        let preferred: Vec<u128> = self
            .submitted
            .iter()
            .filter(|req| prefer(&req.op) && accepted(req))
            .map(|req| req.id)
            .collect();
        if !preferred.is_empty() && index.index(10) < 8 {
            preferred[index.index(preferred.len())]
        } else if self.submitted.is_empty() {
            999_999
        } else {
            self.submitted[index.index(self.submitted.len())].id
        }
    }

    fn build(&mut self, step: &Step) -> Option<Req> {
        match step {
            Step::Submit { op, org2, code, at, ctx, nil } => {
                let op = match op {
                    OpGen::Post(legs) => Op::Post(legs_of(legs)),
                    OpGen::Pending(legs, timeout) => Op::Pending(legs_of(legs), *timeout),
                    OpGen::PostPending(index, amounts) => {
                        let target = self.pick(*index, |op| matches!(op, Op::Pending(..)));
                        let pending: Vec<Leg> = match self
                            .model
                            .records
                            .get(&(if *org2 { 2 } else { 1 }, target))
                            .map(|r| &r.req.op)
                        {
                            Some(Op::Pending(legs, _)) => legs.clone(),
                            _ => vec![],
                        };
                        let amounts = match amounts {
                            AmountsGen::Full => None,
                            AmountsGen::Scaled(k) => Some(
                                pending.iter().map(|l| (l.amount * k / 4, l.currency)).collect(),
                            ),
                            AmountsGen::Random(list) => {
                                Some(list.iter().map(|a| (*a, "KES")).collect())
                            }
                        };
                        Op::PostPending(target, amounts)
                    }
                    OpGen::Void(index) => {
                        Op::Void(self.pick(*index, |op| matches!(op, Op::Pending(..))))
                    }
                    OpGen::Reverse(index) => Op::Reverse(
                        self.pick(*index, |op| matches!(op, Op::Post(_) | Op::PostPending(..))),
                    ),
                };
                let id = if *nil { 0 } else { self.next_id };
                self.next_id += 1;
                let req = Req {
                    id,
                    org: if *org2 { 2 } else { 1 },
                    op,
                    code,
                    at: at.map(|offset| self.model.now + offset),
                    ctx: *ctx,
                };
                self.submitted.push(req.clone());
                Some(req)
            }
            Step::Replay(index) if !self.submitted.is_empty() => {
                Some(self.submitted[index.index(self.submitted.len())].clone())
            }
            Step::Conflict(index, mutation) if !self.submitted.is_empty() => {
                let mut req = self.submitted[index.index(self.submitted.len())].clone();
                match mutation {
                    0 => req.code = if req.code == "fee" { "payment" } else { "fee" },
                    1 => req.ctx = (req.ctx + 1) % 3,
                    2 => match &mut req.op {
                        Op::Post(legs) | Op::Pending(legs, _) => {
                            for leg in legs.iter_mut() {
                                leg.amount += 1;
                            }
                        }
                        Op::PostPending(_, amounts) => *amounts = None,
                        Op::Void(target) | Op::Reverse(target) => *target += 1,
                    },
                    _ => req.org = 3 - req.org,
                }
                Some(req)
            }
            _ => None,
        }
    }

    fn request(&self, req: &Req) -> TransferRequest {
        let money = |amount: i64, currency: &str| {
            Money::from_minor(Currency::from_code(currency).unwrap(), amount)
        };
        let postings = |legs: &[Leg]| -> Vec<Posting> {
            legs.iter()
                .map(|l| Posting {
                    account: self.accounts[l.account],
                    side: if l.debit { Side::Debit } else { Side::Credit },
                    amount: money(l.amount, l.currency),
                })
                .collect()
        };
        let tid = |id: u128| TransferId(Uuid::from_u128(id));
        let action = match &req.op {
            Op::Post(legs) => Action::Post { postings: postings(legs) },
            Op::Pending(legs, timeout_ms) => {
                Action::Pending { postings: postings(legs), timeout_ms: *timeout_ms }
            }
            Op::PostPending(target, amounts) => Action::PostPending {
                pending_id: tid(*target),
                amounts: amounts
                    .as_ref()
                    .map(|list| list.iter().map(|(a, c)| money(*a, c)).collect()),
            },
            Op::Void(target) => Action::VoidPending { pending_id: tid(*target) },
            Op::Reverse(target) => Action::Reverse { transfer_id: tid(*target) },
        };
        let mut context = serde_json::Map::new();
        if req.ctx > 0 {
            context.insert("n".into(), req.ctx.into());
        }
        TransferRequest {
            id: tid(req.id),
            id_is_new: false,
            org: org(req.org),
            action,
            code: req.code.to_owned(),
            effective_at: req.at.map(|ms| self.time(ms)),
            context: context.into(),
        }
    }

    /// Applies one step to the model and the store and compares them; `false` when the step
    /// had nothing to act on (a replay before any request), and so did nothing.
    async fn step(&mut self, step: &Step) -> Result<bool, TestCaseError> {
        match step {
            Step::Advance(ms) => {
                self.model.now += ms;
                self.clock.advance(TimeDelta::milliseconds(*ms));
            }
            Step::Expire => {
                let expected = self.model.expire();
                let actual = self.store.expire_pending(1_000).await.unwrap();
                prop_assert_eq!(actual, expected, "expired count");
            }
            Step::Close(account) => {
                let expected = self.model.close(*account);
                let (org_n, ..) = ACCOUNTS[*account];
                let result = self.store.close_account(org(org_n), self.accounts[*account]).await;
                match result {
                    Ok(_) => prop_assert!(expected, "closed a non-empty account"),
                    Err(StoreError::AccountNotEmpty) => prop_assert!(!expected, "refused to close"),
                    Err(other) => return Err(TestCaseError::fail(format!("close: {other}"))),
                }
            }
            _ => {
                let Some(req) = self.build(step) else { return Ok(false) };
                let expected = self.model.apply(&req);
                let outcomes = self.poster.post(&[self.request(&req)]).await.unwrap();
                let actual: Answer = match &outcomes[0] {
                    Outcome::Accepted { replayed, .. } => Ok(*replayed),
                    Outcome::Rejected(reason) => Err(reason.code()),
                };
                prop_assert_eq!(actual, expected, "outcome of {:?}", req);
                let label = match actual {
                    Ok(false) => format!("{} accepted", op_name(&req.op)),
                    Ok(true) => "replayed".to_owned(),
                    Err(code) => code.to_owned(),
                };
                *self.stats.lock().unwrap().entry(label).or_default() += 1;
            }
        }
        self.check().await?;
        Ok(true)
    }

    /// Balances equal the model's, and every invariant holds.
    async fn check(&self) -> Result<(), TestCaseError> {
        for (i, id) in self.accounts.iter().take(ACCOUNTS.len()).enumerate() {
            let account = self.store.account(org(ACCOUNTS[i].0), *id).await.unwrap().unwrap();
            let s = account.sums;
            let actual = Sums {
                dp: s.debits_posted,
                cp: s.credits_posted,
                dpe: s.debits_pending,
                cpe: s.credits_pending,
            };
            prop_assert_eq!(actual, self.model.sums[i], "sums of account {}", i);
            prop_assert_eq!(account.closed, self.model.closed[i]);
        }
        let violations = self.store.verify().await.unwrap();
        prop_assert!(violations.is_empty(), "invariants: {:?}", violations);
        Ok(())
    }
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Post(_) => "post",
        Op::Pending(..) => "pending",
        Op::PostPending(..) => "post_pending",
        Op::Void(_) => "void",
        Op::Reverse(_) => "reverse",
    }
}

#[test]
fn the_store_agrees_with_the_model() {
    agrees_with_the_model(Mode::Direct);
}

#[test]
fn the_pipeline_agrees_with_the_model() {
    agrees_with_the_model(Mode::Pipeline);
}

fn agrees_with_the_model(mode: Mode) {
    let stats: std::sync::Arc<std::sync::Mutex<HashMap<String, usize>>> = std::sync::Arc::default();
    // Every operation applied to both the model and the store, each followed by a comparison
    // of every balance and a check of every invariant.
    let operations = std::sync::atomic::AtomicUsize::new(0);
    let config =
        ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = TestRunner::new(config);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let strategy = prop::collection::vec(step_gen(), STEPS_MIN..=STEPS_MAX);
    let result = runner.run(&strategy, |steps| {
        rt.block_on(async {
            let db = hazina_tests::fresh_db().await;
            let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
            let clock = Clock::manual(start);
            let store = Store::new(db.pool()).with_clock(clock.clone());
            let mut run = Runner::new(store, mode, clock, start).await;
            run.stats = stats.clone();
            for step in &steps {
                if run.step(step).await? {
                    operations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok(())
        })
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    // The generator must reach every kind of success and the common rejections, or the
    // comparison above proves little.
    let stats = stats.lock().unwrap();
    let mut seen: Vec<_> = stats.iter().collect();
    seen.sort();
    let operations = operations.into_inner();
    eprintln!("{mode:?}: {operations} operations over {CASES} cases; outcomes: {seen:?}");
    assert!(
        operations >= OPERATIONS_MIN,
        "{operations} operations, fewer than the {OPERATIONS_MIN} a run must apply"
    );
    for label in [
        "post accepted",
        "pending accepted",
        "post_pending accepted",
        "void accepted",
        "reverse accepted",
        "replayed",
        "exceeds_credits",
        "account_not_found",
        "pending_transfer_already_posted",
    ] {
        assert!(stats.get(label).copied().unwrap_or(0) > 0, "no step ended {label}");
    }
}
