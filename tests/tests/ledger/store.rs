//! The PostgreSQL store on its own: batches, immutability, reads, reports, expiry, migrations
//! and concurrent writers, each test against a fresh database.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use hazina_ledger::pipeline::SubmitError;
use hazina_ledger::rules::{
    AccountKind, Action, Outcome, Posting, RejectReason, Side, TransferRequest,
};
use hazina_ledger::store::{self, Clock, NewAccount, StatementQuery, Store, StoreError};
use hazina_ledger::{AccountId, Currency, CustomerId, Money, OrgId, TransferId};
use hazina_tests::{Mode, Poster, TestDb, fresh_db};
use serde_json::json;

fn kes() -> Currency {
    Currency::from_code("KES").unwrap()
}

fn money(text: &str) -> Money {
    Money::parse(kes(), text).unwrap()
}

/// A test ledger: one org with an external account, a purse and wallets, and a way to post.
struct Ledger {
    db: TestDb,
    store: Store,
    poster: Poster,
    mode: Mode,
    org: OrgId,
    external: AccountId,
    purse: AccountId,
    wallets: Vec<AccountId>,
}

async fn ledger_with(wallets: usize, clock: Clock, mode: Mode) -> Ledger {
    let db = fresh_db().await;
    let store = Store::new(db.pool()).with_clock(clock);
    let org = OrgId::generate();
    store.create_org(org, "test").await.unwrap();
    let external =
        store.create_account(&NewAccount::new(org, AccountKind::External, kes())).await.unwrap().id;
    let purse =
        store.create_account(&NewAccount::new(org, AccountKind::Purse, kes())).await.unwrap().id;
    let mut ids = Vec::new();
    for i in 0..wallets {
        let mut wallet = NewAccount::new(org, AccountKind::Wallet, kes());
        wallet.customer = Some(CustomerId::generate());
        wallet.wallet_id = Some(format!("main-{i}"));
        ids.push(store.create_account(&wallet).await.unwrap().id);
    }
    let poster = Poster::new(mode, &store);
    Ledger { db, store, poster, mode, org, external, purse, wallets: ids }
}

async fn ledger(mode: Mode) -> Ledger {
    ledger_with(2, Clock::Database, mode).await
}

/// Runs each named `async fn(Mode)` test twice: straight to the store, and through the
/// pipeline.
macro_rules! both_paths {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn direct() {
                super::$name(hazina_tests::Mode::Direct).await;
            }

            #[tokio::test]
            async fn pipeline() {
                super::$name(hazina_tests::Mode::Pipeline).await;
            }
        }
    )*};
}

both_paths!(
    a_batch_applies_in_order_and_a_rejection_affects_no_other_request,
    a_database_error_commits_nothing_of_the_batch,
    the_database_refuses_to_change_history,
    statements_balances_at_a_time_and_transfers_of_an_account,
    trial_balance_by_effective_time_balances_per_currency,
    expired_pending_transfers_are_voided_once_by_the_sweeper,
    closing_needs_an_empty_account_and_stops_postings,
    the_same_id_from_two_writers_takes_effect_once,
    balances_at_a_time_and_date_ranges_match_a_scan,
    naming_another_orgs_account_locks_nothing_of_theirs,
    a_transfer_id_is_unique_per_org,
    every_accepted_transfer_is_told_once_in_commit_order,
);

impl Ledger {
    fn transfer(&self, from: AccountId, to: AccountId, amount: &str) -> TransferRequest {
        TransferRequest {
            id: TransferId::generate(),
            id_is_new: true,
            org: self.org,
            action: Action::Post {
                postings: vec![
                    Posting { account: from, side: Side::Debit, amount: money(amount) },
                    Posting { account: to, side: Side::Credit, amount: money(amount) },
                ],
            },
            code: "payment".into(),
            effective_at: None,
            context: hazina_ledger::rules::Context::default(),
        }
    }

    async fn post(&self, requests: &[TransferRequest]) -> anyhow::Result<Vec<Outcome>> {
        self.poster.post(requests).await
    }

    async fn post_one(&self, request: &TransferRequest) -> Outcome {
        self.post(std::slice::from_ref(request)).await.unwrap().remove(0)
    }

    async fn posted(&self, account: AccountId) -> Money {
        self.store.account(self.org, account).await.unwrap().unwrap().balance().posted
    }

    async fn assert_sound(&self) {
        let violations = self.store.verify().await.unwrap();
        assert!(violations.is_empty(), "{violations:?}");
    }
}

/// A request that names another org's account is refused as if the account did not exist, and
/// locks nothing of that org's: here their purse is held by a transaction of their own, and the
/// batch still goes through at once.
async fn naming_another_orgs_account_locks_nothing_of_theirs(mode: Mode) {
    let ledger = ledger(mode).await;
    let other = OrgId::generate();
    ledger.store.create_org(other, "other").await.unwrap();
    let their_purse =
        ledger.store.create_account(&NewAccount::new(other, AccountKind::Purse, kes())).await;
    let their_purse = their_purse.unwrap().id;
    let mut holder = ledger.db.connect().await.unwrap();
    let held = holder.transaction().await.unwrap();
    held.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", &[&their_purse.0])
        .await
        .unwrap();
    let requests = [
        ledger.transfer(their_purse, ledger.wallets[0], "10"),
        ledger.transfer(ledger.external, ledger.wallets[1], "5"),
    ];
    let posted = tokio::time::timeout(std::time::Duration::from_secs(10), ledger.post(&requests));
    let outcomes = posted.await.expect("their lock is not waited for").unwrap();
    assert_eq!(outcomes.iter().map(code).collect::<Vec<_>>(), ["account_not_found", "ok"]);
    held.rollback().await.unwrap();
    assert_eq!(ledger.posted(ledger.wallets[1]).await, money("5"));
    ledger.assert_sound().await;
}

/// Ids are unique per org: another org's transfer under the same id is a transfer of its own,
/// in the same batch or later, and each replays as its own.
async fn a_transfer_id_is_unique_per_org(mode: Mode) {
    let ledger = ledger(mode).await;
    let other = OrgId::generate();
    ledger.store.create_org(other, "other").await.unwrap();
    let new = |kind| NewAccount::new(other, kind, kes());
    let their_external = ledger.store.create_account(&new(AccountKind::External)).await.unwrap().id;
    let their_purse = ledger.store.create_account(&new(AccountKind::Purse)).await.unwrap().id;
    let ours = ledger.transfer(ledger.external, ledger.purse, "10");
    let mut theirs = ledger.transfer(their_external, their_purse, "7");
    theirs.org = other;
    theirs.id = ours.id;
    let outcomes = ledger.post(&[ours.clone(), theirs.clone()]).await.unwrap();
    assert_eq!(outcomes.iter().map(code).collect::<Vec<_>>(), ["ok", "ok"]);
    let outcomes = ledger.post(&[theirs.clone(), ours.clone()]).await.unwrap();
    assert_eq!(outcomes.iter().map(code).collect::<Vec<_>>(), ["replay", "replay"]);
    assert_eq!(ledger.posted(ledger.purse).await, money("10"));
    let theirs_now = ledger.store.account(other, their_purse).await.unwrap().unwrap();
    assert_eq!(theirs_now.balance().posted, money("7"));
    let recorded = ledger.store.transfer(other, theirs.id).await.unwrap().unwrap();
    assert_eq!(recorded.org, other);
    ledger.assert_sound().await;
}

fn code(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Accepted { replayed: false, .. } => "ok",
        Outcome::Accepted { replayed: true, .. } => "replay",
        Outcome::Rejected(reason) => reason.code(),
    }
}

async fn a_batch_applies_in_order_and_a_rejection_affects_no_other_request(mode: Mode) {
    let l = ledger(mode).await;
    let fund = l.transfer(l.external, l.purse, "100");
    let too_much = l.transfer(l.purse, l.wallets[0], "150");
    let pay = l.transfer(l.purse, l.wallets[0], "60");
    let again = l.transfer(l.purse, l.wallets[1], "60");
    let batch = [fund.clone(), too_much, pay.clone(), again, fund.clone(), pay];
    let outcomes = l.post(&batch).await.unwrap();
    let codes: Vec<&str> = outcomes.iter().map(code).collect();
    assert_eq!(codes, ["ok", "exceeds_credits", "ok", "exceeds_credits", "replay", "replay"]);
    assert_eq!(l.posted(l.purse).await, money("40"));
    assert_eq!(l.posted(l.wallets[0]).await, money("60"));
    assert_eq!(l.posted(l.wallets[1]).await, money("0"));
    // The whole batch again: every outcome is the original one and nothing moves.
    let replayed = l.post(&batch).await.unwrap();
    let codes: Vec<&str> = replayed.iter().map(code).collect();
    assert_eq!(
        codes,
        ["replay", "exceeds_credits", "replay", "exceeds_credits", "replay", "replay"]
    );
    assert_eq!(l.posted(l.purse).await, money("40"));
    l.assert_sound().await;
}

async fn a_database_error_commits_nothing_of_the_batch(mode: Mode) {
    let l = ledger(mode).await;
    l.post_one(&l.transfer(l.external, l.purse, "100")).await;
    let client = l.store.pool().get().await.unwrap();
    client
        .batch_execute(
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.code = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER boom BEFORE INSERT ON transfers FOR EACH ROW EXECUTE FUNCTION boom();",
        )
        .await
        .unwrap();
    // The fine transfer sets a customer's metadata: its statement, the first of its kind on
    // these connections, must still run inside the transaction.
    let mut fine = l.transfer(l.purse, l.wallets[0], "10");
    let customer = CustomerId::generate();
    fine.context = std::sync::Arc::new(
        json!({ "hazina": { "metadata": {
            "customer_id": customer.0, "set": { "tier": { "value": "Z29sZA==", "is_text": true } }
        } } })
        .as_object()
        .unwrap()
        .clone(),
    );
    let mut broken = l.transfer(l.purse, l.wallets[1], "10");
    broken.code = "boom".into();
    // Again and again: the error is the trigger's every time, never an aborted transaction's
    // echo from a statement behind it (which the store would take for a conflict and retry).
    for _ in 0..5 {
        let error = l.post(&[fine.clone(), broken.clone()]).await.unwrap_err();
        let cause: &StoreError = match l.mode {
            Mode::Direct => error.downcast_ref(),
            Mode::Pipeline => match error.downcast_ref() {
                Some(SubmitError::Unavailable(cause)) => Some(cause.as_ref()),
                _ => None,
            },
        }
        .unwrap_or_else(|| panic!("{error:?}"));
        let cause = match cause {
            StoreError::Db(cause) => cause.as_db_error().map(|db| db.message().to_owned()),
            _ => None,
        };
        assert!(cause.is_some_and(|cause| cause.contains("boom")), "{error:?}");
    }
    assert_eq!(l.posted(l.purse).await, money("100"));
    assert!(l.store.transfer(l.org, fine.id).await.unwrap().is_none());
    let metadata = client.query("SELECT key FROM customer_metadata", &[]).await.unwrap();
    assert!(metadata.is_empty(), "a failed batch's effect was written");
    assert_eq!(told(&l).await.len(), 1, "a failed batch told of its transfers");
    // The failed batch left the pooled connection usable and the id free.
    assert_eq!(code(&l.post_one(&fine).await), "ok");
    let told = told(&l).await;
    assert_eq!(told.iter().map(|event| event.0).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(told[1].1, fine.id.0);
    l.assert_sound().await;
}

/// The org's events: sequence number, transfer, type, and the accounts moved with their
/// versions, in sequence order.
async fn told(l: &Ledger) -> Vec<(i64, uuid::Uuid, String, serde_json::Value)> {
    let client = l.store.pool().get().await.unwrap();
    let rows = client
        .query(
            "SELECT seq, transfer_id, type, accounts FROM events WHERE org_id = $1 ORDER BY seq",
            &[&l.org.0],
        )
        .await
        .unwrap();
    rows.iter().map(|row| (row.get(0), row.get(1), row.get(2), row.get(3))).collect()
}

/// Many concurrent batches, some refused: every accepted transfer is told once, none refused
/// is, the numbers run 1, 2, 3… without a gap, and they follow the order the batches
/// committed in (the purse's versions grow with them). An expiry tells of its pending
/// transfer's customer.
async fn every_accepted_transfer_is_told_once_in_commit_order(mode: Mode) {
    let l = std::sync::Arc::new(ledger_with(8, Clock::Database, mode).await);
    l.post_one(&l.transfer(l.external, l.purse, "1000")).await;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let l = std::sync::Arc::clone(&l);
        tasks.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for i in 0..25 {
                // Every fifth asks for more than the wallet holds: refused.
                let request = if i % 5 == 4 {
                    l.transfer(l.wallets[task], l.purse, "1000000")
                } else {
                    l.transfer(l.purse, l.wallets[task], "1")
                };
                if code(&l.post_one(&request).await) == "ok" {
                    accepted.push(request.id.0);
                }
            }
            accepted
        }));
    }
    let mut accepted = Vec::new();
    for task in tasks {
        accepted.extend(task.await.unwrap());
    }
    let told = told(&l).await;
    assert_eq!(told.len(), accepted.len() + 1);
    let numbers: Vec<i64> = told.iter().map(|event| event.0).collect();
    assert_eq!(numbers, (1..=i64::try_from(told.len()).unwrap()).collect::<Vec<_>>());
    let mut told_ids: Vec<uuid::Uuid> = told[1..].iter().map(|event| event.1).collect();
    told_ids.sort();
    accepted.sort();
    assert_eq!(told_ids, accepted);
    let purse = l.purse.0.to_string();
    let purse_versions: Vec<i64> = told
        .iter()
        .filter_map(|event| {
            let moved = event.3.as_array()?;
            moved.iter().find(|pair| pair[0] == purse.as_str())?[1].as_i64()
        })
        .collect();
    assert_eq!(purse_versions.len(), told.len());
    assert!(purse_versions.windows(2).all(|w| w[0] < w[1]), "{purse_versions:?}");
    assert!(told.iter().all(|event| event.2 == "transfer.posted"));

    // A pending transfer for a customer, expired by the sweeper: told with its customer.
    let customer = CustomerId::generate();
    let mut pending = l.transfer(l.purse, l.wallets[0], "1");
    pending.action =
        Action::Pending { postings: pending.action.postings().to_vec(), timeout_ms: Some(1) };
    pending.context = std::sync::Arc::new(
        json!({ "hazina": { "customers": [customer.0.to_string()] } }).as_object().unwrap().clone(),
    );
    assert_eq!(code(&l.post_one(&pending).await), "ok");
    // Expired once its millisecond has passed: the sweeper voids it then, and only once.
    hazina_tests::wait_for(
        "the pending transfer to expire",
        std::time::Duration::from_secs(10),
        || {
            let store = l.store.clone();
            async move { (store.expire_pending(10).await.unwrap() == 1).then_some(()) }
        },
    )
    .await
    .unwrap();
    assert_eq!(l.store.expire_pending(10).await.unwrap(), 0);
    let client = l.store.pool().get().await.unwrap();
    let expired = client
        .query_one(
            "SELECT customer_id FROM events WHERE org_id = $1 AND type = 'transfer.expired'",
            &[&l.org.0],
        )
        .await
        .unwrap();
    assert_eq!(expired.get::<_, Option<uuid::Uuid>>(0), Some(customer.0));
    l.assert_sound().await;
}

async fn the_database_refuses_to_change_history(mode: Mode) {
    let l = ledger(mode).await;
    let fund = l.transfer(l.external, l.purse, "100");
    l.post_one(&fund).await;
    let client = l.store.pool().get().await.unwrap();
    for statement in [
        "UPDATE transfers SET code = 'changed'",
        "DELETE FROM transfers",
        "TRUNCATE transfers CASCADE",
        "UPDATE entries SET amount_posted = 1",
        "DELETE FROM entries",
        "TRUNCATE entries",
        "DELETE FROM accounts",
        "TRUNCATE accounts CASCADE",
    ] {
        let error = client.batch_execute(statement).await.unwrap_err();
        let message = error.as_db_error().map(|db| db.message().to_owned()).unwrap_or_default();
        assert!(message.contains("immutable"), "{statement}: {message}");
    }
    // Balances cannot be pushed past a limit behind the rules' back either.
    let error = client
        .execute("UPDATE accounts SET debits_posted = 1000000 WHERE id = $1", &[&l.purse.0])
        .await
        .unwrap_err();
    assert!(error.as_db_error().is_some_and(|db| db.constraint().is_some()), "{error}");
    assert!(l.store.transfer(l.org, fund.id).await.unwrap().is_some());
}

async fn statements_balances_at_a_time_and_transfers_of_an_account(mode: Mode) {
    let l = ledger(mode).await;
    let mut times: Vec<DateTime<Utc>> = Vec::new();
    for amount in ["100", "20", "30"] {
        l.post_one(&l.transfer(l.external, l.purse, amount)).await;
        times.push(l.store.account(l.org, l.purse).await.unwrap().unwrap().created_at);
    }
    l.post_one(&l.transfer(l.purse, l.wallets[0], "45")).await;

    let page = l
        .store
        .statement(l.org, l.purse, &StatementQuery { limit: 3, ..StatementQuery::default() })
        .await
        .unwrap();
    let running: Vec<Money> = page.lines.iter().map(|line| line.balance.posted).collect();
    assert_eq!(running, [money("100"), money("120"), money("150")]);
    assert_eq!(page.next_after_version, Some(3));
    let next = l
        .store
        .statement(
            l.org,
            l.purse,
            &StatementQuery {
                after_version: page.next_after_version,
                limit: 3,
                ..StatementQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(next.lines.len(), 1);
    assert_eq!(next.lines[0].side, Side::Debit);
    assert_eq!(next.lines[0].amount_posted, money("45"));
    assert_eq!(next.lines[0].balance.posted, money("105"));
    assert_eq!(next.next_after_version, None);

    // Balance as recorded at the time of each line, and before the first.
    for line in page.lines.iter().chain(&next.lines) {
        let at = l.store.balance_at(l.org, l.purse, line.created_at).await.unwrap();
        assert_eq!(at.posted, line.balance.posted);
    }
    let before = page.lines[0].created_at - TimeDelta::seconds(1);
    assert_eq!(l.store.balance_at(l.org, l.purse, before).await.unwrap().posted, money("0"));

    // A date range selects by recording time.
    let ranged = l
        .store
        .statement(
            l.org,
            l.purse,
            &StatementQuery {
                from: Some(page.lines[1].created_at),
                limit: 10,
                ..StatementQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ranged.lines.first().map(|line| line.version), Some(2));

    let transfers = l.store.account_transfers(l.org, l.purse, None, 10).await.unwrap();
    assert_eq!(transfers.len(), 4);
    assert_eq!(transfers[0].postings[0].amount, money("45"), "newest first");
    let other_org = OrgId::generate();
    assert!(l.store.account_transfers(other_org, l.purse, None, 10).await.unwrap().is_empty());
    assert!(matches!(
        l.store.balance_at(other_org, l.purse, Utc::now()).await,
        Err(StoreError::AccountNotFound)
    ));
}

async fn trial_balance_by_effective_time_balances_per_currency(mode: Mode) {
    let l = ledger(mode).await;
    let now = Utc::now();
    let mut early = l.transfer(l.external, l.purse, "500");
    early.effective_at = Some(now - TimeDelta::days(10));
    let mut mid = l.transfer(l.purse, l.wallets[0], "120");
    mid.effective_at = Some(now - TimeDelta::days(5));
    let late = l.transfer(l.wallets[0], l.wallets[1], "20");
    for request in [&early, &mid, &late] {
        assert_eq!(code(&l.post_one(request).await), "ok");
    }
    let from = now - TimeDelta::days(7);
    let to = now - TimeDelta::days(1);
    let report = l.store.trial_balance(l.org, from, to).await.unwrap();
    let line = |id: AccountId| report.lines.iter().find(|line| line.account == id).unwrap().clone();
    let purse = line(l.purse);
    assert_eq!(
        (purse.opening, purse.debits, purse.credits, purse.closing),
        (money("500"), money("120"), money("0"), money("380"))
    );
    let external = line(l.external);
    assert_eq!((external.opening, external.closing), (money("500"), money("500")));
    let wallet = line(l.wallets[0]);
    assert_eq!(
        (wallet.opening, wallet.credits, wallet.closing),
        (money("0"), money("120"), money("120"))
    );
    assert_eq!(line(l.wallets[1]).closing, money("0"), "the late transfer is after the period");
    assert_eq!(report.totals.len(), 1);
    let totals = &report.totals[0];
    assert_eq!(totals.opening_debit, totals.opening_credit);
    assert_eq!(totals.debits, totals.credits);
    assert_eq!(totals.closing_debit, totals.closing_credit);
    assert_eq!((totals.debits, totals.closing_debit), (money("120"), money("500")));
}

async fn expired_pending_transfers_are_voided_once_by_the_sweeper(mode: Mode) {
    let start = Utc::now();
    let clock = Clock::manual(start);
    let l = ledger_with(1, clock.clone(), mode).await;
    l.post_one(&l.transfer(l.external, l.purse, "100")).await;
    let mut hold = l.transfer(l.purse, l.wallets[0], "70");
    let Action::Post { postings } = hold.action.clone() else { unreachable!() };
    hold.action = Action::Pending { postings, timeout_ms: Some(60_000) };
    assert_eq!(code(&l.post_one(&hold).await), "ok");
    let purse = l.store.account(l.org, l.purse).await.unwrap().unwrap().balance();
    assert_eq!((purse.posted, purse.available), (money("100"), money("30")));

    assert_eq!(l.store.expire_pending(100).await.unwrap(), 0, "not due yet");
    clock.advance(TimeDelta::seconds(60));
    // Two sweepers (two server processes) at once: one voids, the other's request is a replay.
    let other = l.store.clone();
    let (a, b) = tokio::join!(l.store.expire_pending(100), other.expire_pending(100));
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(l.store.expire_pending(100).await.unwrap(), 0);
    let purse = l.store.account(l.org, l.purse).await.unwrap().unwrap().balance();
    assert_eq!(
        (purse.posted, purse.available, purse.pending),
        (money("100"), money("100"), money("100"))
    );
    let post = TransferRequest {
        id: TransferId::generate(),
        id_is_new: true,
        org: l.org,
        action: Action::PostPending { pending_id: hold.id, amounts: None },
        code: "payment".into(),
        effective_at: None,
        context: hazina_ledger::rules::Context::default(),
    };
    assert_eq!(l.post_one(&post).await.rejection(), Some(RejectReason::PendingTransferExpired));
    l.assert_sound().await;
}

async fn closing_needs_an_empty_account_and_stops_postings(mode: Mode) {
    let l = ledger(mode).await;
    l.post_one(&l.transfer(l.external, l.wallets[0], "5")).await;
    assert!(matches!(
        l.store.close_account(l.org, l.wallets[0]).await,
        Err(StoreError::AccountNotEmpty)
    ));
    assert!(matches!(
        l.store.close_account(OrgId::generate(), l.wallets[0]).await,
        Err(StoreError::AccountNotFound)
    ));
    l.post_one(&l.transfer(l.wallets[0], l.external, "5")).await;
    assert!(l.store.close_account(l.org, l.wallets[0]).await.unwrap().closed);
    let outcome = l.post_one(&l.transfer(l.external, l.wallets[0], "5")).await;
    assert_eq!(outcome.rejection(), Some(RejectReason::AccountClosed));
}

#[tokio::test]
async fn accounts_refuse_duplicates_and_unknown_orgs() {
    let l = ledger(Mode::Direct).await;
    let mut wallet = NewAccount::new(l.org, AccountKind::Wallet, kes());
    wallet.customer = Some(CustomerId::generate());
    wallet.wallet_id = Some("main".into());
    l.store.create_account(&wallet).await.unwrap();
    wallet.id = AccountId::generate();
    assert!(matches!(l.store.create_account(&wallet).await, Err(StoreError::AccountExists)));
    let stray = NewAccount::new(OrgId::generate(), AccountKind::Purse, kes());
    assert!(matches!(l.store.create_account(&stray).await, Err(StoreError::OrgNotFound)));
}

#[tokio::test]
async fn migrations_run_once_and_refuse_edits() {
    let db = hazina_tests::empty_db().await;
    let mut client = db.connect().await.unwrap();
    let first = store::migrate(&mut client).await.unwrap();
    assert!(!first.is_empty());
    assert!(store::migrate(&mut client).await.unwrap().is_empty());
    client
        .execute("UPDATE schema_migrations SET checksum = 'edited' WHERE name = $1", &[&first[0]])
        .await
        .unwrap();
    let error = store::migrate(&mut client).await.unwrap_err();
    assert!(matches!(error, StoreError::MigrationEdited { .. }), "{error}");
}

async fn the_same_id_from_two_writers_takes_effect_once(mode: Mode) {
    let l = ledger(mode).await;
    l.post_one(&l.transfer(l.external, l.purse, "100")).await;
    // Two server processes: separate pools on one database.
    let other = Poster::new(mode, &Store::new(hazina_server::db::pool(l.db.config(), 4).unwrap()));
    for _ in 0..20 {
        let first = l.transfer(l.purse, l.wallets[0], "1");
        // Same id, other accounts: only one can win, the other must see it.
        let mut second = l.transfer(l.purse, l.wallets[1], "1");
        second.id = first.id;
        let (one, two) = tokio::join!(
            l.post(std::slice::from_ref(&first)),
            other.post(std::slice::from_ref(&second))
        );
        let mut codes = [code(&one.unwrap()[0]), code(&two.unwrap()[0])];
        codes.sort_unstable();
        assert_eq!(codes, ["exists_with_different_postings", "ok"]);
    }
    assert_eq!(l.posted(l.purse).await, money("80"));
    l.assert_sound().await;
}

/// Many tasks on separate connections post against one hot purse and many wallets; afterwards
/// every invariant holds and each balance equals the sum of the accepted transfers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_a_hot_purse_keep_every_invariant_direct() {
    concurrent_writers_on_a_hot_purse_keep_every_invariant(Mode::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_a_hot_purse_keep_every_invariant_pipeline() {
    concurrent_writers_on_a_hot_purse_keep_every_invariant(Mode::Pipeline).await;
}

async fn concurrent_writers_on_a_hot_purse_keep_every_invariant(mode: Mode) {
    const TASKS: usize = 12;
    const TRANSFERS: usize = 40;
    let l = ledger_with(24, Clock::Database, mode).await;
    l.post_one(&l.transfer(l.external, l.purse, "1000")).await;
    // A second server process: a pool (and a pipeline) of its own on the same database.
    let other = Poster::new(mode, &Store::new(hazina_server::db::pool(l.db.config(), 4).unwrap()));
    let ledger = std::sync::Arc::new(l);
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let l = ledger.clone();
        let poster = if task % 2 == 0 { l.poster.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let mut accepted: Vec<TransferRequest> = Vec::new();
            for i in 0..TRANSFERS {
                let wallet = l.wallets[(task * 7 + i) % l.wallets.len()];
                let amount = format!("{}.{:02}", 1 + (task + i) % 9, (i * 13) % 100);
                let request = match i % 3 {
                    0 | 1 => l.transfer(l.purse, wallet, &amount),
                    _ => l.transfer(wallet, l.purse, &amount),
                };
                // Some single transfers, some batches of three.
                let batch = if i % 4 == 0 {
                    vec![
                        request,
                        l.transfer(l.purse, wallet, "0.01"),
                        l.transfer(wallet, l.purse, "0.01"),
                    ]
                } else {
                    vec![request]
                };
                let outcomes = poster.post(&batch).await.unwrap();
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    if let Outcome::Accepted { .. } = outcome {
                        accepted.push(request);
                    }
                }
            }
            accepted
        }));
    }
    let mut expected: HashMap<AccountId, i64> = HashMap::new();
    *expected.entry(ledger.purse).or_default() += 100_000;
    let mut count = 0;
    for task in tasks {
        for request in task.await.unwrap() {
            count += 1;
            for posting in request.action.postings() {
                let minor = posting.amount.to_minor().unwrap();
                *expected.entry(posting.account).or_default() +=
                    if posting.side == Side::Credit { minor } else { -minor };
            }
        }
    }
    assert!(count > TASKS * TRANSFERS / 2, "most transfers are accepted ({count})");
    for (account, minor) in expected {
        assert_eq!(ledger.posted(account).await, Money::from_minor(kes(), minor), "{account}");
    }
    ledger.assert_sound().await;
}

/// Balances at a time and statement ranges find entries by binary search over versions: check
/// them against a straightforward scan at every boundary, including equal times.
async fn balances_at_a_time_and_date_ranges_match_a_scan(mode: Mode) {
    let start = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z").unwrap().to_utc();
    let clock = Clock::manual(start);
    let l = ledger_with(1, clock.clone(), mode).await;
    for i in 0..37_i64 {
        // Some entries share a time: the clock stands still now and then.
        clock.advance(TimeDelta::seconds(i64::from(i % 5 != 0)));
        l.post_one(&l.transfer(l.external, l.purse, &format!("{}", 100 + i))).await;
    }
    let recorded = l
        .store
        .statement(l.org, l.purse, &StatementQuery { limit: 100, ..StatementQuery::default() })
        .await
        .unwrap();
    // (recorded time, posted balance after) of every entry of the purse, in order.
    let history: Vec<(DateTime<Utc>, Money)> =
        recorded.lines.iter().map(|line| (line.created_at, line.balance.posted)).collect();
    assert_eq!(history.len(), 37);
    let scan_balance = |at: DateTime<Utc>| {
        history.iter().rev().find(|(time, _)| *time <= at).map_or(money("0"), |(_, b)| *b)
    };
    let mut probes: Vec<DateTime<Utc>> = history.iter().map(|(time, _)| *time).collect();
    probes.extend(history.iter().map(|(time, _)| *time - TimeDelta::milliseconds(500)));
    probes.push(start - TimeDelta::days(1));
    probes.push(start + TimeDelta::days(1));
    for at in &probes {
        let found = l.store.balance_at(l.org, l.purse, *at).await.unwrap().posted;
        assert_eq!(found, scan_balance(*at), "balance at {at}");
    }
    for from in probes.iter().step_by(3) {
        for to in probes.iter().step_by(4) {
            let query = StatementQuery {
                from: Some(*from),
                to: Some(*to),
                limit: 100,
                ..StatementQuery::default()
            };
            let page = l.store.statement(l.org, l.purse, &query).await.unwrap();
            let expected: Vec<i64> = recorded
                .lines
                .iter()
                .filter(|line| line.created_at >= *from && line.created_at < *to)
                .map(|line| line.version)
                .collect();
            let found: Vec<i64> = page.lines.iter().map(|line| line.version).collect();
            assert_eq!(found, expected, "from {from} to {to}");
        }
    }
}

/// An id marked new that is not (a replay sent as new) cannot be prepared: the insert meets
/// the existing transfer and the batch goes through `Store::post`, which answers it as the
/// replay it is. Through the pipeline, the replay's outcome is the original's.
#[tokio::test]
async fn an_id_wrongly_marked_new_is_answered_as_a_replay() {
    let ledger = ledger_with(1, Clock::Database, Mode::Direct).await;
    let fund = ledger.transfer(ledger.external, ledger.purse, "100");
    let pay = ledger.transfer(ledger.purse, ledger.wallets[0], "30");
    let first = ledger.store.post(&[fund, pay.clone()]).await.unwrap();
    assert!(pay.id_is_new);
    let mut speculation = store::Speculation::default();
    let prepared =
        ledger.store.prepare(&mut speculation, std::slice::from_ref(&pay)).await.unwrap();
    assert!(prepared.is_none(), "{prepared:?}");
    let again = ledger.store.post(std::slice::from_ref(&pay)).await.unwrap();
    assert!(matches!(again[0], Outcome::Accepted { replayed: true, .. }), "{again:?}");

    let pipeline = Poster::new(Mode::Pipeline, &ledger.store);
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.extend(pipeline.post(std::slice::from_ref(&pay)).await.unwrap());
    }
    for outcome in &outcomes {
        match (outcome, &first[1]) {
            (
                Outcome::Accepted { transfer, replayed: true },
                Outcome::Accepted { transfer: original, .. },
            ) => assert_eq!(transfer, original),
            _ => panic!("{outcome:?} against {:?}", first[1]),
        }
    }
    let wallet = ledger.store.account(ledger.org, ledger.wallets[0]).await.unwrap().unwrap();
    assert_eq!(wallet.balance().posted, money("30"));
    assert_eq!(ledger.store.verify().await.unwrap(), vec![]);
}

/// The check a prepared batch's guarded update makes: every assumed account unchanged
/// (`HZ001` otherwise), and the batch's time not ahead of the database's clock (`HZ002`), so
/// that a writer moving an old clock reading on with its own clock cannot record a time that
/// the next writer of the same accounts would go back from.
#[tokio::test]
async fn a_prepared_batch_ahead_of_the_database_clock_is_refused() {
    let db = fresh_db().await;
    let client = db.pool().get().await.unwrap();
    let check = "SELECT hazina_assert_prepared($1, $2, clock_timestamp() + $3 * interval '1 ms')";
    let refusal = async |unchanged: i64, ahead_ms: f64| {
        let result = client.query_one(check, &[&unchanged, &3_i64, &ahead_ms]).await;
        result.err().and_then(|error| error.code().map(|state| state.code().to_owned()))
    };
    assert_eq!(refusal(3, -50.0).await, None);
    assert_eq!(refusal(3, 1_000.0).await.as_deref(), Some("HZ002"));
    assert_eq!(refusal(2, -50.0).await.as_deref(), Some("HZ001"));
    // A manual clock's batches send no time: only the accounts are checked.
    let ok: bool =
        client.query_one("SELECT hazina_assert_prepared(3, 3, NULL)", &[]).await.unwrap().get(0);
    assert!(ok);
}

/// Every transfer is linked to each customer its context names under `hazina.customers`,
/// once, in the batch's transaction: for small batches and for those large enough to be
/// written with `COPY`, prepared or posted.
#[tokio::test]
async fn transfers_are_linked_to_the_customers_their_context_names() {
    let ledger = ledger_with(2, Clock::Database, Mode::Direct).await;
    let fund = ledger.transfer(ledger.external, ledger.purse, "10000");
    ledger.store.post(&[fund]).await.unwrap();
    let (alice, bob) = (CustomerId::generate(), CustomerId::generate());
    let named = |size: usize| -> Vec<TransferRequest> {
        (0..size)
            .map(|i| {
                let mut request = ledger.transfer(ledger.purse, ledger.wallets[i % 2], "1");
                let customers = json!([alice.0, bob.0, alice.0, "not a customer", 7]);
                request.context = std::sync::Arc::new(
                    json!({ "hazina": { "customers": customers } }).as_object().unwrap().clone(),
                );
                request
            })
            .collect()
    };
    let small = named(3);
    let large = named(130);
    let mut speculation = store::Speculation::default();
    for batch in [&small, &large] {
        let prepared = ledger.store.prepare(&mut speculation, batch).await.unwrap().unwrap();
        ledger.store.commit_prepared(prepared).await.unwrap().unwrap();
    }
    let (small_posted, large_posted) = (named(2), named(129));
    ledger.store.post(&small_posted).await.unwrap();
    ledger.store.post(&large_posted).await.unwrap();

    let client = ledger.db.pool().get().await.unwrap();
    for batch in [&small, &large, &small_posted, &large_posted] {
        let ids: Vec<uuid::Uuid> = batch.iter().map(|request| request.id.0).collect();
        let rows = client
            .query(
                "SELECT l.customer_id, count(*) FROM customer_transfers l
                 JOIN transfers t ON t.id = l.transfer_id AND t.created_at = l.at
                 WHERE l.transfer_id = ANY($1) GROUP BY l.customer_id ORDER BY l.customer_id",
                &[&ids],
            )
            .await
            .unwrap();
        let count = i64::try_from(batch.len()).unwrap();
        let mut expected = vec![(alice.0, count), (bob.0, count)];
        expected.sort();
        let found: Vec<(uuid::Uuid, i64)> =
            rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        assert_eq!(found, expected);
    }
    assert_eq!(ledger.store.verify().await.unwrap(), vec![]);
}

/// `verify` proves that an account's entries never go back in time (balances at a time rely
/// on it): an entry moved before the one before it, behind the immutability trigger's back,
/// is reported, and nothing else is.
#[tokio::test]
async fn verify_reports_an_entry_recorded_before_the_one_before_it() {
    let ledger = ledger_with(1, Clock::Database, Mode::Direct).await;
    for amount in ["50", "20"] {
        ledger.store.post(&[ledger.transfer(ledger.external, ledger.purse, amount)]).await.unwrap();
    }
    assert_eq!(ledger.store.verify().await.unwrap(), vec![]);
    let client = ledger.db.pool().get().await.unwrap();
    client
        .batch_execute(&format!(
            "ALTER TABLE entries DISABLE TRIGGER entries_immutable;
             UPDATE entries SET created_at = created_at - interval '1 hour'
                 WHERE account_id = '{}' AND version = 2;
             ALTER TABLE entries ENABLE TRIGGER entries_immutable;",
            ledger.purse.0
        ))
        .await
        .unwrap();
    let violations = ledger.store.verify().await.unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(
        violations[0].invariant,
        "an account's entries are recorded at times that never go back"
    );
    assert_eq!(violations[0].detail, format!("{} v2", ledger.purse.0));
}

/// A prepared batch commits only if its accounts are as it assumed: one changed in between
/// (here a wallet closed) makes the guarded update fail, and the batch's transaction,
/// transfers and entries included, is rolled back; applied again, it meets the new state.
/// Unchanged, it commits.
#[tokio::test]
async fn a_prepared_batch_whose_accounts_changed_commits_nothing() {
    let ledger = ledger_with(2, Clock::Database, Mode::Direct).await;
    let fund = ledger.transfer(ledger.external, ledger.purse, "100");
    ledger.store.post(&[fund]).await.unwrap();
    let mut speculation = store::Speculation::default();
    let stale = ledger.transfer(ledger.purse, ledger.wallets[1], "60");
    let prepared = ledger
        .store
        .prepare(&mut speculation, std::slice::from_ref(&stale))
        .await
        .unwrap()
        .unwrap();
    // The wallet is closed meanwhile (its balance is still zero: the batch has not committed).
    ledger.store.close_account(ledger.org, ledger.wallets[1]).await.unwrap();
    assert_eq!(ledger.store.commit_prepared(prepared).await.unwrap(), None);
    assert_eq!(ledger.store.transfer(ledger.org, stale.id).await.unwrap(), None);
    assert_eq!(ledger.store.verify().await.unwrap(), vec![]);
    let again = ledger.store.post(std::slice::from_ref(&stale)).await.unwrap();
    assert!(matches!(again[0], Outcome::Rejected(RejectReason::AccountClosed)), "{again:?}");

    // Unchanged accounts commit.
    let mut speculation = store::Speculation::default();
    let fits = ledger.transfer(ledger.purse, ledger.wallets[0], "20");
    let prepared =
        ledger.store.prepare(&mut speculation, std::slice::from_ref(&fits)).await.unwrap().unwrap();
    let outcomes = ledger.store.commit_prepared(prepared).await.unwrap().unwrap();
    assert!(matches!(outcomes[0], Outcome::Accepted { .. }), "{outcomes:?}");
    let purse = ledger.store.account(ledger.org, ledger.purse).await.unwrap().unwrap();
    assert_eq!(purse.balance().posted, money("80"));
    assert_eq!(ledger.store.verify().await.unwrap(), vec![]);
}

both_paths!(
    the_chain_verifies_and_finds_the_one_transfer_changed,
    a_closed_period_refuses_back_dated_transfers_and_keeps_replays,
);

/// A transfer of `amount` from `from` to `to` with this context.
fn with_context(mut request: TransferRequest, context: serde_json::Value) -> TransferRequest {
    let serde_json::Value::Object(map) = context else { panic!("a context is an object") };
    request.context = map.into();
    request
}

/// Runs `sql` as the owner with the immutability trigger of `transfers` off: what someone
/// rewriting history behind the ledger's back would do.
async fn tamper(l: &Ledger, sql: &str) {
    let client = l.db.pool().get().await.unwrap();
    client
        .batch_execute(&format!(
            "ALTER TABLE transfers DISABLE TRIGGER transfers_immutable;
             {sql};
             ALTER TABLE transfers ENABLE TRIGGER transfers_immutable;"
        ))
        .await
        .unwrap();
}

async fn chain_seq(l: &Ledger, id: TransferId) -> Option<i64> {
    let client = l.store.pool().get().await.unwrap();
    client
        .query_one(
            "SELECT chain_seq FROM transfers WHERE org_id = $1 AND id = $2",
            &[&l.org.0, &id.0],
        )
        .await
        .unwrap()
        .get(0)
}

/// Every accepted transfer (posted, pending, posted pending, reversal) is chained in order,
/// rejections and replays are not, and changing one transfer's amount or context behind the
/// ledger's back is found at exactly that transfer.
async fn the_chain_verifies_and_finds_the_one_transfer_changed(mode: Mode) {
    let l = ledger(mode).await;
    let fund = with_context(
        l.transfer(l.external, l.purse, "100"),
        json!({"note": "fund", "numbers": [1, 2.5, 1e16, 100.0], "nested": {"b": true, "a": null}}),
    );
    let pay = with_context(l.transfer(l.purse, l.wallets[0], "30"), json!({"note": "pay"}));
    let too_much = l.transfer(l.purse, l.wallets[1], "1000");
    let mut hold = l.transfer(l.purse, l.wallets[1], "10");
    hold.action = Action::Pending { postings: hold.action.postings().to_vec(), timeout_ms: None };
    let take = TransferRequest {
        id: TransferId::generate(),
        id_is_new: true,
        action: Action::PostPending { pending_id: hold.id, amounts: None },
        ..l.transfer(l.purse, l.wallets[1], "1")
    };
    let undo = TransferRequest {
        id: TransferId::generate(),
        id_is_new: true,
        action: Action::Reverse { transfer_id: pay.id },
        ..l.transfer(l.purse, l.wallets[1], "1")
    };
    let outcomes = l.post(&[fund.clone(), pay.clone(), too_much.clone()]).await.unwrap();
    assert_eq!(outcomes.iter().map(code).collect::<Vec<_>>(), ["ok", "ok", "exceeds_credits"]);
    for request in [&hold, &take, &undo] {
        assert_eq!(code(&l.post_one(request).await), "ok");
    }
    // A replay adds nothing to the chain. (Not of `fund`: its context's `1e16` reads back from
    // `jsonb` as an integer, which the rules' comparison of contexts takes for another value.)
    assert_eq!(code(&l.post_one(&pay).await), "replay");

    let report = l.store.verify_chain(l.org).await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!((report.transfers, report.unchained), (5, 0));
    let order = [&fund, &pay, &hold, &take, &undo];
    for (seq, request) in (1..).zip(order) {
        assert_eq!(chain_seq(&l, request.id).await, Some(seq));
    }
    assert_eq!(chain_seq(&l, too_much.id).await, None, "a rejection is not in the chain");
    l.assert_sound().await;

    // The amount of the second transfer, both legs (so it still balances).
    tamper(
        &l,
        &format!(
            "UPDATE transfers SET postings = jsonb_set(jsonb_set(postings, '{{0,amount}}', '\"31\"'),
                 '{{1,amount}}', '\"31\"')
             WHERE org_id = '{}' AND id = '{}'",
            l.org.0, pay.id.0
        ),
    )
    .await;
    let report = l.store.verify_chain(l.org).await.unwrap();
    assert_eq!(report.first_break, Some((2, pay.id)), "{report}");
    assert!(!report.head_matches);
    let violations = l.store.verify().await.unwrap();
    assert!(
        violations.iter().any(|violation| violation.detail.contains("chain broken at seq 2")),
        "{violations:?}"
    );
    // Put back as it was, the chain is whole again.
    tamper(
        &l,
        &format!(
            "UPDATE transfers SET postings = jsonb_set(jsonb_set(postings, '{{0,amount}}', '\"30\"'),
                 '{{1,amount}}', '\"30\"')
             WHERE org_id = '{}' AND id = '{}'",
            l.org.0, pay.id.0
        ),
    )
    .await;
    assert!(l.store.verify_chain(l.org).await.unwrap().is_intact());

    // The first transfer's context: a number spelt otherwise is the same value ...
    tamper(
        &l,
        &format!(
            "UPDATE transfers SET context = jsonb_set(context, '{{numbers,0}}', '1.0e0')
             WHERE org_id = '{}' AND id = '{}'",
            l.org.0, fund.id.0
        ),
    )
    .await;
    assert!(l.store.verify_chain(l.org).await.unwrap().is_intact());
    // ... and another value is found.
    tamper(
        &l,
        &format!(
            "UPDATE transfers SET context = jsonb_set(context, '{{note}}', '\"funds\"')
             WHERE org_id = '{}' AND id = '{}'",
            l.org.0, fund.id.0
        ),
    )
    .await;
    let report = l.store.verify_chain(l.org).await.unwrap();
    assert_eq!(report.first_break, Some((1, fund.id)), "{report}");
}

/// A removed transfer breaks the chain at the one after it; one removed from the end leaves
/// the head unmatched.
#[tokio::test]
async fn a_removed_transfer_breaks_the_chain() {
    let l = ledger(Mode::Direct).await;
    let mut ids = Vec::new();
    for amount in ["10", "20", "30", "40"] {
        let request = l.transfer(l.external, l.purse, amount);
        ids.push(request.id);
        assert_eq!(code(&l.post_one(&request).await), "ok");
    }
    let remove = |id: TransferId| {
        format!(
            "DELETE FROM event_transfers WHERE org_id = '{0}';
             DELETE FROM customer_transfers WHERE org_id = '{0}';
             DELETE FROM transfers WHERE org_id = '{0}' AND id = '{1}'",
            l.org.0, id.0
        )
    };
    tamper(&l, &remove(ids[3])).await;
    let report = l.store.verify_chain(l.org).await.unwrap();
    assert_eq!((report.transfers, report.first_break, report.head_matches), (3, None, false));
    tamper(&l, &remove(ids[1])).await;
    let report = l.store.verify_chain(l.org).await.unwrap();
    assert_eq!(report.first_break, Some((3, ids[2])), "{report}");
}

/// A prepared batch commits only onto the chain head it assumed: another batch of the org
/// committed in between (here on other accounts) makes it roll back, and applied again it
/// chains after that one.
#[tokio::test]
async fn a_prepared_batch_whose_chain_head_moved_commits_nothing() {
    let l = ledger_with(2, Clock::Database, Mode::Direct).await;
    l.store.post(&[l.transfer(l.external, l.purse, "100")]).await.unwrap();
    let mut speculation = store::Speculation::default();
    let late = l.transfer(l.purse, l.wallets[0], "10");
    let prepared =
        l.store.prepare(&mut speculation, std::slice::from_ref(&late)).await.unwrap().unwrap();
    let between = l.transfer(l.external, l.wallets[1], "5");
    assert_eq!(code(&l.store.post(std::slice::from_ref(&between)).await.unwrap()[0]), "ok");
    assert_eq!(l.store.commit_prepared(prepared).await.unwrap(), None);
    assert_eq!(l.store.transfer(l.org, late.id).await.unwrap(), None);
    assert_eq!(code(&l.store.post(std::slice::from_ref(&late)).await.unwrap()[0]), "ok");
    assert_eq!(chain_seq(&l, between.id).await, Some(2));
    assert_eq!(chain_seq(&l, late.id).await, Some(3));
    let report = l.store.verify_chain(l.org).await.unwrap();
    assert!(report.is_intact() && report.transfers == 3, "{report}");

    // A close in between refuses it too: it was evaluated with the period open.
    let mut speculation = store::Speculation::default();
    let mut back_dated = l.transfer(l.purse, l.wallets[0], "1");
    back_dated.effective_at = Some(Utc::now() - TimeDelta::hours(1));
    let prepared = l
        .store
        .prepare(&mut speculation, std::slice::from_ref(&back_dated))
        .await
        .unwrap()
        .unwrap();
    l.store.close_period(l.org, Utc::now() - TimeDelta::minutes(30), "test", None).await.unwrap();
    assert_eq!(l.store.commit_prepared(prepared).await.unwrap(), None);
    let again = l.store.post(std::slice::from_ref(&back_dated)).await.unwrap();
    assert_eq!(code(&again[0]), "period_closed");
    l.assert_sound().await;
}

/// After a close, a transfer dated in the closed period is refused, the same adjustment dated
/// now with a reference to the closed period is accepted, transfers from before the close
/// replay, and pending transfers from the closed period are still posted or voided.
async fn a_closed_period_refuses_back_dated_transfers_and_keeps_replays(mode: Mode) {
    let l = ledger(mode).await;
    // Times as stored (whole microseconds), so that a replay's effective time is the one
    // recorded.
    let through = hazina_ledger::rules::as_stored(Utc::now() - TimeDelta::days(1));
    let mut old = l.transfer(l.external, l.purse, "100");
    old.effective_at = Some(through - TimeDelta::days(3));
    let mut hold = l.transfer(l.purse, l.wallets[0], "10");
    hold.action = Action::Pending { postings: hold.action.postings().to_vec(), timeout_ms: None };
    hold.effective_at = Some(through - TimeDelta::days(2));
    for request in [&old, &hold] {
        assert_eq!(code(&l.post_one(request).await), "ok");
    }

    let close = l.store.close_period(l.org, through, "key-1", Some("month end")).await.unwrap();
    assert_eq!((close.chain_seq, close.through), (2, through));
    let closes = l.store.period_closes(l.org).await.unwrap();
    assert_eq!(closes, vec![close.clone()]);

    // Refused: dated in the closed period, at its very end too.
    for at in [through - TimeDelta::hours(1), through] {
        let mut late = l.transfer(l.external, l.purse, "5");
        late.effective_at = Some(at);
        assert_eq!(code(&l.post_one(&late).await), "period_closed");
        assert_eq!(l.store.transfer(l.org, late.id).await.unwrap(), None, "nothing recorded");
    }
    // Accepted: the adjustment in the open period, naming the closed one.
    let adjustment = with_context(
        l.transfer(l.external, l.purse, "5"),
        json!({"hazina": {"adjusts_period": through.to_rfc3339()}}),
    );
    assert_eq!(code(&l.post_one(&adjustment).await), "ok");
    let stored = l.store.transfer(l.org, adjustment.id).await.unwrap().unwrap();
    assert_eq!(stored.context["hazina"]["adjusts_period"], json!(through.to_rfc3339()));
    // A transfer from before the close replays as it was.
    assert_eq!(code(&l.post_one(&old).await), "replay");
    // The pending transfer from the closed period is posted in the open one.
    let take = TransferRequest {
        id: TransferId::generate(),
        id_is_new: true,
        action: Action::PostPending { pending_id: hold.id, amounts: None },
        ..l.transfer(l.purse, l.wallets[0], "1")
    };
    assert_eq!(code(&l.post_one(&take).await), "ok");

    // Closing again: not the same or an earlier time, not the future.
    let refused = l.store.close_period(l.org, through, "key-1", None).await.unwrap_err();
    assert!(matches!(refused, StoreError::PeriodAlreadyClosed), "{refused}");
    let refused =
        l.store.close_period(l.org, Utc::now() + TimeDelta::hours(1), "key-1", None).await;
    assert!(matches!(refused, Err(StoreError::PeriodInFuture)), "{refused:?}");
    let next = l.store.close_period(l.org, Utc::now(), "key-2", None).await.unwrap();
    assert_eq!(next.chain_seq, 4);
    let report = l.store.verify_chain(l.org).await.unwrap();
    assert!(report.is_intact() && report.closes_match, "{report}");
    // A rewritten close is found.
    let client = l.db.pool().get().await.unwrap();
    client
        .batch_execute(&format!(
            "ALTER TABLE period_closes DISABLE TRIGGER period_closes_immutable;
             UPDATE period_closes SET chain_seq = 1 WHERE org_id = '{}' AND chain_seq = 2;
             ALTER TABLE period_closes ENABLE TRIGGER period_closes_immutable;",
            l.org.0
        ))
        .await
        .unwrap();
    assert!(!l.store.verify_chain(l.org).await.unwrap().closes_match);
}

/// A close and a stream of back-dated transfers serialise on the org's head: every transfer
/// dated in the closed period that was accepted is in the chain before the close's position,
/// and every one after it was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_close_and_concurrent_posting_serialise() {
    for mode in [Mode::Direct, Mode::Pipeline] {
        let l = ledger_with(8, Clock::Database, mode).await;
        l.post_one(&l.transfer(l.external, l.purse, "100000")).await;
        let dated = Utc::now() - TimeDelta::hours(2);
        let through = Utc::now() - TimeDelta::hours(1);
        let l = std::sync::Arc::new(l);
        let (started, mut posting) = tokio::sync::mpsc::channel(8);
        let mut posters = Vec::new();
        for n in 0..8 {
            let l = l.clone();
            let started = started.clone();
            posters.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..40 {
                    let mut request = l.transfer(l.purse, l.wallets[n], "1");
                    request.effective_at = Some(dated);
                    let outcome = l.post_one(&request).await;
                    ids.push((request.id, code(&outcome)));
                    if i == 4 {
                        let _ = started.send(()).await;
                    }
                }
                ids
            }));
        }
        // Close once posting is under way.
        posting.recv().await.unwrap();
        let close = l.store.close_period(l.org, through, "test", None).await.unwrap();
        let mut accepted = 0;
        let mut refused = 0;
        for poster in posters {
            for (id, outcome) in poster.await.unwrap() {
                match outcome {
                    "ok" => {
                        accepted += 1;
                        let seq = chain_seq(&l, id).await.unwrap();
                        assert!(seq <= close.chain_seq, "{seq} after the close at {close:?}");
                    }
                    "period_closed" => refused += 1,
                    other => panic!("{other}"),
                }
            }
        }
        assert_eq!(accepted + refused, 320);
        assert_eq!(close.chain_seq, 1 + accepted, "{mode:?}");
        l.assert_sound().await;
    }
}

/// The trial balance reads a closed period's sums from the close (migration 0031) and other
/// times from the nearest close or end of the history: whichever it reads from, every
/// account's opening and closing equal its entries summed by effective time.
#[tokio::test]
async fn trial_balances_from_closes_agree_with_the_entries_summed() {
    let l = ledger_with(3, Clock::Database, Mode::Direct).await;
    let now = hazina_ledger::rules::as_stored(Utc::now());
    let day = |n: i64| now - TimeDelta::days(n);
    let accounts = [l.external, l.purse, l.wallets[0], l.wallets[1], l.wallets[2]];
    // Thirty transfers, one every other day from 60 days ago, from outside to changing
    // accounts.
    let post = |n: i64, effective_at: DateTime<Utc>| {
        let i = usize::try_from(n).unwrap();
        let mut request =
            l.transfer(accounts[0], accounts[1 + i % 4], &format!("{}.{:02}", 10 + n, n % 100));
        request.effective_at = Some(effective_at);
        request
    };
    let mut early: Vec<_> =
        (0..30).map(|n| post(n, day(60 - 2 * n) + TimeDelta::hours(n))).collect();
    // One at the very instant the first close will end: inside it.
    early.push(post(40, day(40)));
    for request in &early {
        assert_eq!(code(&l.post_one(request).await), "ok");
    }
    // Two closes, the second from the first's sums plus what followed; then more in the open
    // period, some dated before its last transfer.
    let first = l.store.close_period(l.org, day(40), "test", None).await.unwrap();
    let second = l.store.close_period(l.org, day(20), "test", None).await.unwrap();
    let late: Vec<_> = (30..36).map(|n| post(n, day(19) + TimeDelta::hours(n))).collect();
    for request in &late {
        assert_eq!(code(&l.post_one(request).await), "ok");
    }

    let client = l.db.pool().get().await.unwrap();
    let summed = |at: DateTime<Utc>| {
        let client = &client;
        async move {
            let rows = client
                .query(
                    "SELECT account_id,
                         COALESCE(sum(amount_posted) FILTER (WHERE side = 'debit'), 0)::int8,
                         COALESCE(sum(amount_posted) FILTER (WHERE side = 'credit'), 0)::int8
                     FROM entries WHERE org_id = $1 AND amount_posted > 0 AND effective_at < $2
                     GROUP BY account_id",
                    &[&l.org.0, &at],
                )
                .await
                .unwrap();
            rows.iter()
                .map(|row| (AccountId(row.get(0)), row.get::<_, i64>(1) - row.get::<_, i64>(2)))
                .collect::<HashMap<AccountId, i64>>()
        }
    };
    let after = |through: DateTime<Utc>| through + TimeDelta::microseconds(1);
    let times = [
        day(90),
        day(59),
        first.through,
        after(first.through),
        day(30),
        after(second.through),
        day(19) + TimeDelta::hours(32),
        now,
        now + TimeDelta::days(1),
    ];
    for (i, &from) in times.iter().enumerate() {
        for &to in &times[i..] {
            let report = l.store.trial_balance(l.org, from, to).await.unwrap();
            let (opening, closing) = (summed(from).await, summed(to).await);
            for line in &report.lines {
                // Debit-normal accounts count debits less credits, the others the reverse.
                let sign = if line.normal_side == Side::Debit { 1 } else { -1 };
                let expected = |sums: &HashMap<AccountId, i64>| {
                    Money::from_minor(kes(), sign * sums.get(&line.account).copied().unwrap_or(0))
                };
                assert_eq!(
                    (line.opening, line.closing),
                    (expected(&opening), expected(&closing)),
                    "account {:?} over [{from}, {to})",
                    line.account
                );
            }
            let totals = &report.totals[0];
            assert_eq!(totals.debits, totals.credits);
        }
    }
    // The second close's sums were built on the first's; both equal the entries summed.
    for close in [&first, &second] {
        let stored: HashMap<AccountId, i64> = client
            .query(
                "SELECT account_id, debits_posted - credits_posted FROM period_balances
                 WHERE org_id = $1 AND through = $2",
                &[&l.org.0, &close.through],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (AccountId(row.get(0)), row.get(1)))
            .collect();
        assert_eq!(stored, summed(after(close.through)).await);
    }
}
