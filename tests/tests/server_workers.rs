//! The server's background workers against a real database.

// A test fails by panicking, so unwrapping is how these tests assert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hazina_ledger::rules::{AccountKind, Action, Outcome, Posting, Side, TransferRequest};
use hazina_ledger::store::{NewAccount, Store};
use hazina_ledger::{Currency, Money, OrgId, TransferId};
use hazina_server::workers::sweep_expired;

#[tokio::test]
async fn the_sweeper_voids_pending_transfers_once_their_timeout_passes() {
    let db = hazina_tests::fresh_db().await;
    let store = Store::new(db.pool());
    let org = OrgId::generate();
    store.create_org(org, "test").await.unwrap();
    let kes = Currency::from_code("KES").unwrap();
    let external =
        store.create_account(&NewAccount::new(org, AccountKind::External, kes)).await.unwrap();
    let purse = store.create_account(&NewAccount::new(org, AccountKind::Purse, kes)).await.unwrap();
    let amount = Money::parse(kes, "25").unwrap();
    let postings = vec![
        Posting { account: external.id, side: Side::Debit, amount },
        Posting { account: purse.id, side: Side::Credit, amount },
    ];
    let pending = TransferRequest {
        id: TransferId::generate(),
        id_is_new: true,
        org,
        action: Action::Pending { postings, timeout_ms: Some(200) },
        code: "hold".into(),
        effective_at: None,
        context: hazina_ledger::rules::Context::default(),
    };
    let outcome = store.post(&[pending]).await.unwrap();
    assert!(matches!(outcome[0], Outcome::Accepted { .. }));
    assert_eq!(store.account(org, purse.id).await.unwrap().unwrap().sums.credits_pending, 2_500);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sweeper = tokio::spawn(sweep_expired(store.clone(), async {
        let _ = stopped.await;
    }));
    let released =
        hazina_tests::wait_for("the pending transfer to expire", Duration::from_secs(10), || {
            let store = store.clone();
            async move {
                let sums = store.account(org, purse.id).await.ok()??.sums;
                (sums.credits_pending == 0).then_some(sums)
            }
        })
        .await
        .unwrap();
    assert_eq!(released.credits_posted, 0, "expiry releases, it does not post");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), sweeper).await.unwrap().unwrap();
    assert!(store.verify().await.unwrap().is_empty());
}
