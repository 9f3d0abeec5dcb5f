//! The group-commit pipeline's own behaviour: batching, backpressure, outages and per-org
//! writers. (Its results are checked by every ledger test, which runs through it too.)

use std::sync::atomic::Ordering;
use std::time::Duration;

use hazina_ledger::pipeline::{Pipeline, PipelineConfig, SubmitError};
use hazina_ledger::rules::{AccountKind, Action, Outcome, Posting, Side, TransferRequest};
use hazina_ledger::store::{NewAccount, Store};
use hazina_ledger::{AccountId, Currency, Money, OrgId, TransferId};
use hazina_tests::{TestDb, fresh_db, wait_for};

struct Org {
    id: OrgId,
    external: AccountId,
    purse: AccountId,
}

async fn org(store: &Store) -> Org {
    let id = OrgId::generate();
    store.create_org(id, "test").await.unwrap();
    let kes = Currency::from_code("KES").unwrap();
    let external =
        store.create_account(&NewAccount::new(id, AccountKind::External, kes)).await.unwrap().id;
    let purse =
        store.create_account(&NewAccount::new(id, AccountKind::Purse, kes)).await.unwrap().id;
    Org { id, external, purse }
}

impl Org {
    /// Moves money from outside into the purse.
    fn fund(&self, shillings: i64) -> TransferRequest {
        self.transfer(self.external, self.purse, shillings)
    }

    /// Moves money out of the purse.
    fn pay_out(&self, shillings: i64) -> TransferRequest {
        self.transfer(self.purse, self.external, shillings)
    }

    fn transfer(&self, from: AccountId, to: AccountId, shillings: i64) -> TransferRequest {
        let amount = Money::from_minor(Currency::from_code("KES").unwrap(), shillings * 100);
        TransferRequest {
            id: TransferId::generate(),
            id_is_new: true,
            org: self.id,
            action: Action::Post {
                postings: vec![
                    Posting { account: from, side: Side::Debit, amount },
                    Posting { account: to, side: Side::Credit, amount },
                ],
            },
            code: "test".into(),
            effective_at: None,
            context: hazina_ledger::rules::Context::default(),
        }
    }
}

async fn setup() -> (TestDb, Store) {
    let db = fresh_db().await;
    let store = Store::new(db.pool());
    (db, store)
}

/// Holds a row lock on the account from another connection until dropped, so that a batch
/// touching it waits.
async fn hold_lock(db: &TestDb, account: AccountId) -> tokio_postgres::Client {
    let client = db.connect().await.unwrap();
    client.batch_execute("BEGIN").await.unwrap();
    client.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", &[&account.0]).await.unwrap();
    client
}

#[tokio::test]
async fn requests_queued_together_commit_together_with_their_own_outcomes() {
    let (_db, store) = setup().await;
    let org = org(&store).await;
    let pipeline = Pipeline::start(&store, PipelineConfig::default());
    // Queued without yielding: the writer finds them all waiting.
    let requests: Vec<TransferRequest> = (1..=300).map(|i| org.fund(i)).collect();
    let queued: Vec<_> = requests.iter().map(|r| pipeline.enqueue(r.clone()).unwrap()).collect();
    for (request, submitted) in requests.iter().zip(queued) {
        match submitted.await.unwrap() {
            Outcome::Accepted { transfer, replayed: false } => assert_eq!(transfer.id, request.id),
            other => panic!("{other:?}"),
        }
    }
    let stats = pipeline.stats();
    assert_eq!(stats.requests.load(Ordering::Relaxed), 300);
    assert!(stats.batches.load(Ordering::Relaxed) <= 2, "{:?}", stats.batch_size_histogram());
    let purse = store.account(org.id, org.purse).await.unwrap().unwrap();
    assert_eq!(purse.sums.credits_posted, (1..=300).sum::<i64>() * 100);
}

/// Queues `request` and waits until the writer has taken it off the queue (its batch then
/// waits on whatever lock it meets).
async fn taken_by_the_writer(
    pipeline: &Pipeline,
    request: TransferRequest,
) -> hazina_ledger::pipeline::Submitted {
    let submitted = pipeline.enqueue(request).unwrap();
    wait_for("the writer to take the first request", Duration::from_secs(10), || async {
        (pipeline.stats().queued.load(Ordering::Relaxed) == 0).then_some(())
    })
    .await
    .unwrap();
    submitted
}

#[tokio::test]
async fn a_full_queue_refuses_at_once_and_the_queue_drains_later() {
    let (db, store) = setup().await;
    let org = org(&store).await;
    let config = PipelineConfig {
        queue_capacity: 4,
        writers: 1,
        batch_delay_max: Duration::ZERO,
        ..PipelineConfig::default()
    };
    let pipeline = Pipeline::start(&store, config);
    let lock = hold_lock(&db, org.purse).await;
    // The first request reaches the writer, whose batch then waits on the lock.
    let first = taken_by_the_writer(&pipeline, org.fund(1)).await;
    let waiting: Vec<_> = (2..=5).map(|i| pipeline.enqueue(org.fund(i)).unwrap()).collect();
    let refused = pipeline.enqueue(org.fund(6));
    assert!(matches!(refused, Err(SubmitError::Overloaded)), "{refused:?}");
    assert!(refused.unwrap_err().is_retriable());
    assert_eq!(pipeline.stats().overloaded.load(Ordering::Relaxed), 1);

    drop(lock);
    assert!(matches!(first.await.unwrap(), Outcome::Accepted { .. }));
    for submitted in waiting {
        assert!(matches!(submitted.await.unwrap(), Outcome::Accepted { .. }));
    }
    let purse = store.account(org.id, org.purse).await.unwrap().unwrap();
    assert_eq!(purse.sums.credits_posted, 1_500, "1 + 2 + 3 + 4 + 5 shillings, not the 6th");
}

#[tokio::test]
async fn a_batch_is_queued_whole_or_refused_whole() {
    let (db, store) = setup().await;
    let org = org(&store).await;
    let config = PipelineConfig { queue_capacity: 4, writers: 1, ..PipelineConfig::default() };
    let pipeline = Pipeline::start(&store, config);
    let lock = hold_lock(&db, org.purse).await;
    let first = taken_by_the_writer(&pipeline, org.fund(1)).await;
    let held = pipeline.enqueue(org.fund(2)).unwrap();
    // Four more do not fit beside the one queued: none of them is queued.
    let refused = pipeline.enqueue_all((3..=6).map(|i| org.fund(i)).collect());
    assert!(matches!(refused, Err(SubmitError::Overloaded)), "{refused:?}");
    assert_eq!(pipeline.stats().queued.load(Ordering::Relaxed), 1);
    let fits = pipeline.enqueue_all((3..=5).map(|i| org.fund(i)).collect()).unwrap();
    drop(lock);
    for submitted in [first, held].into_iter().chain(fits) {
        assert!(matches!(submitted.await.unwrap(), Outcome::Accepted { .. }));
    }
    let purse = store.account(org.id, org.purse).await.unwrap().unwrap();
    assert_eq!(purse.sums.credits_posted, 1_500, "1 to 5 shillings, and nothing of 6");
}

#[tokio::test]
async fn an_org_past_its_queue_budget_leaves_room_for_the_others() {
    let (db, store) = setup().await;
    let (busy, quiet) = (org(&store).await, org(&store).await);
    let config = PipelineConfig {
        queue_capacity: 8,
        writers: 1,
        org_queued_max: 3,
        ..PipelineConfig::default()
    };
    let pipeline = Pipeline::start(&store, config);
    let lock = hold_lock(&db, busy.purse).await;
    let first = taken_by_the_writer(&pipeline, busy.fund(1)).await;
    let waiting: Vec<_> = (2..=4).map(|i| pipeline.enqueue(busy.fund(i)).unwrap()).collect();
    let refused = pipeline.enqueue(busy.fund(5));
    assert!(matches!(refused, Err(SubmitError::Overloaded)), "{refused:?}");
    // The other org sharing the writer still queues, and is served once the lock goes.
    let other = pipeline.enqueue(quiet.fund(7)).unwrap();
    drop(lock);
    assert!(matches!(other.await.unwrap(), Outcome::Accepted { .. }));
    for submitted in std::iter::once(first).chain(waiting) {
        assert!(matches!(submitted.await.unwrap(), Outcome::Accepted { .. }));
    }
    // Its budget is back once its requests left the queue.
    assert!(matches!(pipeline.submit(busy.fund(5)).await.unwrap(), Outcome::Accepted { .. }));
}

#[tokio::test]
async fn a_database_outage_fails_the_waiters_with_a_retriable_error() {
    let (db, store) = setup().await;
    let org = org(&store).await;
    let pipeline = Pipeline::start(&store, PipelineConfig::default());
    let accepted = pipeline.submit(org.fund(10)).await.unwrap();
    assert!(matches!(accepted, Outcome::Accepted { .. }));
    // The database goes away under the pool.
    let admin =
        hazina_server::db::connect(&hazina_tests::admin_config().await.unwrap()).await.unwrap();
    let drop = format!("DROP DATABASE {} WITH (FORCE)", hazina_server::db::quote_ident(db.name()));
    admin.batch_execute(&drop).await.unwrap();
    let error = pipeline.submit(org.fund(20)).await.unwrap_err();
    assert!(matches!(error, SubmitError::Unavailable(_)), "{error:?}");
    assert!(error.is_retriable());
    assert!(pipeline.stats().failed_batches.load(Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn one_org_waiting_on_a_lock_does_not_hold_up_another() {
    let (db, store) = setup().await;
    let pipeline =
        Pipeline::start(&store, PipelineConfig { writers: 2, ..PipelineConfig::default() });
    let blocked = org(&store).await;
    let mut free = org(&store).await;
    while pipeline.writer_for(free.id) == pipeline.writer_for(blocked.id) {
        free = org(&store).await;
    }
    let lock = hold_lock(&db, blocked.purse).await;
    let waiting = pipeline.enqueue(blocked.fund(1)).unwrap();
    let outcome =
        tokio::time::timeout(Duration::from_secs(20), pipeline.submit(free.fund(1))).await;
    assert!(matches!(outcome, Ok(Ok(Outcome::Accepted { .. }))), "{outcome:?}");
    drop(lock);
    assert!(matches!(waiting.await.unwrap(), Outcome::Accepted { .. }));
}

#[tokio::test]
async fn a_batch_prepared_on_balances_another_writer_changed_is_decided_again() {
    let (_db, store) = setup().await;
    let org = org(&store).await;
    let config = PipelineConfig { writers: 1, ..PipelineConfig::default() };
    let pipeline = Pipeline::start(&store, config);
    // The writer now expects the purse to hold 100.
    assert!(matches!(pipeline.submit(org.fund(100)).await.unwrap(), Outcome::Accepted { .. }));
    // Another writer (another process, say) takes 80 of it.
    let outcomes = store.post(&[org.pay_out(80)]).await.unwrap();
    assert!(matches!(outcomes[0], Outcome::Accepted { .. }), "{outcomes:?}");
    // On what the writer expected, 50 would fit; on what the ledger holds, it does not.
    match pipeline.submit(org.pay_out(50)).await.unwrap() {
        Outcome::Rejected(reason) => assert_eq!(reason.code(), "exceeds_credits"),
        accepted @ Outcome::Accepted { .. } => panic!("{accepted:?}"),
    }
    // And the writer carries on from the ledger's state.
    assert!(matches!(pipeline.submit(org.pay_out(20)).await.unwrap(), Outcome::Accepted { .. }));
    let purse = store.account(org.id, org.purse).await.unwrap().unwrap();
    assert_eq!((purse.sums.credits_posted, purse.sums.debits_posted), (10_000, 10_000));
    assert_eq!(store.verify().await.unwrap(), vec![]);
}

#[tokio::test]
async fn the_same_requests_through_two_pipelines_take_effect_once() {
    let (_db, store) = setup().await;
    let org = org(&store).await;
    // Two server processes, each with its pipeline, receive the same requests.
    let first = Pipeline::start(&store, PipelineConfig::default());
    let second = Pipeline::start(&store, PipelineConfig::default());
    let requests: Vec<TransferRequest> = (1..=300).map(|i| org.fund(i)).collect();
    let reversed: Vec<TransferRequest> = requests.iter().rev().cloned().collect();
    let (a, b) = tokio::join!(submit_all(&first, &requests), submit_all(&second, &reversed));
    for (outcome, other) in a.iter().zip(b.iter().rev()) {
        let (
            Outcome::Accepted { transfer, replayed },
            Outcome::Accepted { transfer: again, replayed: replayed_again },
        ) = (outcome, other)
        else {
            panic!("{outcome:?} {other:?}");
        };
        assert_eq!(transfer, again);
        assert!(replayed ^ replayed_again, "exactly one of them applied it");
    }
    let purse = store.account(org.id, org.purse).await.unwrap().unwrap();
    assert_eq!(purse.sums.credits_posted, (1..=300).sum::<i64>() * 100);
    assert_eq!(store.verify().await.unwrap(), vec![]);
}

/// Queues every request at once, then waits for all of their outcomes.
async fn submit_all(pipeline: &Pipeline, requests: &[TransferRequest]) -> Vec<Outcome> {
    let queued: Vec<_> = requests.iter().map(|r| pipeline.enqueue(r.clone()).unwrap()).collect();
    let mut outcomes = Vec::new();
    for submitted in queued {
        outcomes.push(submitted.await.unwrap());
    }
    outcomes
}
