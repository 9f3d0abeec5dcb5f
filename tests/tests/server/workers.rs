//! The server's background workers against a real database.

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

/// Parked callbacks, stored idempotent responses and session steps' replies are deleted once
/// past the retention; a callback matched to its payment is that payment's evidence and stays.
#[tokio::test]
async fn retention_deletes_old_parked_callbacks_idempotent_responses_and_replies_only() {
    let server = hazina_tests::ApiServer::start().await;
    let channel = serde_json::json!({
        "provider": "mpesa", "channelNumber": "600000", "currencyCode": "KES",
        "baseUrl": "https://sandbox.safaricom.co.ke",
        "credentials": { "consumerKey": "k", "consumerSecret": "s" },
    });
    let (status, channel) = server.post(&server.org_key, "/v1/payment-channels", &channel).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{channel}");
    let channel: uuid::Uuid = channel["channelId"].as_str().unwrap().parse().unwrap();
    let (_, purse) = server
        .post(&server.org_key, "/v1/purses", &serde_json::json!({ "currencyCode": "KES" }))
        .await;
    let purse: uuid::Uuid = purse["purseId"].as_str().unwrap().parse().unwrap();
    let client = server.db.connect().await.unwrap();
    let payment = uuid::Uuid::now_v7();
    client
        .execute(
            "INSERT INTO provider_payments (id, org_id, channel_id, flow, msisdn, account_id,
                 currency, amount_minor, our_reference, stage, status, settled, request)
             VALUES ($1, $2, $3, 'received', '254700000001', $4, 'KES', 100, 'SKE1', 'settled',
                 'success', 'posted', '{}')",
            &[&payment, &server.org.0, &channel, &purse],
        )
        .await
        .unwrap();
    for (days, matched) in [(100, None), (1, None), (100, Some(payment))] {
        client
            .execute(
                "INSERT INTO provider_callbacks (org_id, channel_id, payment_id, kind, verified,
                     body, received_at)
                 VALUES ($4, $1, $2, 'c2b', false, '{}', now() - make_interval(days => $3))",
                &[&channel, &matched, &days, &server.org.0],
            )
            .await
            .unwrap();
    }
    for (key, days) in [("old", 100), ("new", 1)] {
        client
            .execute(
                "INSERT INTO idempotent_requests (org_id, caller, key, request_sha256, status,
                     response, created_at)
                 VALUES ($1, 'k', $2, '\\x00', 201, 'null', now() - make_interval(days => $3))",
                &[&server.org.0, &key, &days],
            )
            .await
            .unwrap();
    }
    let ussd = serde_json::json!({
        "channel": "ussd", "provider": "africastalking", "channelNumber": "*384*1#",
        "baseUrl": "https://api.africastalking.com",
        "credentials": { "username": "u", "apiKey": "k" },
        "unitPrice": { "currencyCode": "KES", "amount": "0" },
    });
    let (status, ussd) = server.post(&server.org_key, "/v1/messaging-channels", &ussd).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{ussd}");
    let ussd: uuid::Uuid = ussd["id"].as_str().unwrap().parse().unwrap();
    for days in [100, 1] {
        client
            .execute(
                "INSERT INTO messaging_replies (org_id, event_id, channel_id, deadline_at, body,
                     source, answered_at, created_at)
                 VALUES ($1, $2, $3, now(), '{}', 'fallback', now(),
                     now() - make_interval(days => $4))",
                &[&server.org.0, &uuid::Uuid::now_v7(), &ussd, &days],
            )
            .await
            .unwrap();
    }
    let retention = Duration::from_secs(90 * 24 * 60 * 60);
    let retained =
        hazina_server::workers::sweep_retention_once(&server.db.pool(), retention).await.unwrap();
    let counts =
        (retained.parked_callbacks, retained.idempotent_responses, retained.session_replies);
    assert_eq!(counts, (1, 1, 1));
    let left = client
        .query(
            "SELECT payment_id IS NOT NULL, received_at > now() - interval '2 days'
             FROM provider_callbacks ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let left: Vec<(bool, bool)> = left.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(left, [(false, true), (true, false)]);
    let keys = client.query("SELECT key FROM idempotent_requests", &[]).await.unwrap();
    assert_eq!(keys.iter().map(|row| row.get::<_, String>(0)).collect::<Vec<_>>(), ["new"]);
    let replies = client.query_one("SELECT count(*) FROM messaging_replies", &[]).await.unwrap();
    assert_eq!(replies.get::<_, i64>(0), 1);
}

/// The provider queries worker serves every org's due payments, each within its org: two orgs
/// hold a payment under one id (ids are unique per org), and each is asked about once.
#[tokio::test]
async fn the_provider_worker_asks_about_every_orgs_due_payments_each_in_its_org() {
    let db = hazina_tests::fresh_db().await;
    let store = Store::new(db.pool());
    let pipeline = hazina_ledger::pipeline::Pipeline::start(
        &store,
        hazina_ledger::pipeline::PipelineConfig::default(),
    );
    let sealer = hazina_server::secrets::Sealer::generate().unwrap();
    let engine = hazina_server::payments::Engine::new(db.pool(), pipeline, sealer);
    let client = db.connect().await.unwrap();
    let kes = Currency::from_code("KES").unwrap();
    let payment = uuid::Uuid::now_v7();
    let orgs = [OrgId::generate(), OrgId::generate()];
    for org in orgs {
        store.create_org(org, "test").await.unwrap();
        let clearing =
            store.create_account(&NewAccount::new(org, AccountKind::Channel, kes)).await.unwrap();
        let purse =
            store.create_account(&NewAccount::new(org, AccountKind::Purse, kes)).await.unwrap();
        // A host no channel may call: asking fails before anything leaves, and the payment
        // is scheduled again with the reason.
        let channel = uuid::Uuid::now_v7();
        client
            .execute(
                "INSERT INTO payment_channels (id, org_id, provider, channel_number, currency,
                     base_url, credentials, clearing_account_id)
                 VALUES ($1, $2, 'mpesa', '600000', 'KES', 'https://provider.invalid', '{}', $3)",
                &[&channel, &org.0, &clearing.id.0],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO provider_payments (id, org_id, channel_id, flow, msisdn, account_id,
                     currency, amount_minor, our_reference, stage, status, next_attempt_at,
                     request)
                 VALUES ($1, $2, $3, 'payout', '254700000001', $4, 'KES', 100, 'ref', 'sent',
                     'pending_confirmation', now() - interval '1 second', '{}')",
                &[&payment, &org.0, &channel, &purse.id.0],
            )
            .await
            .unwrap();
    }
    assert_eq!(engine.run_due().await.unwrap(), 2);
    let rows = client
        .query(
            "SELECT attempts, provider_description FROM provider_payments WHERE id = $1",
            &[&payment],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let (attempts, why): (i32, Option<String>) = (row.get(0), row.get(1));
        assert_eq!(attempts, 1, "asked once, by its own org's statements");
        assert!(why.is_some_and(|why| why.contains("provider.invalid")));
    }
    // Both are leased or scheduled later now: nothing is due.
    assert_eq!(engine.run_due().await.unwrap(), 0);
}
