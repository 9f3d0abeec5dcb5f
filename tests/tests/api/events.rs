//! The event stream end to end: what a change tells (and what a refused one does not), pages
//! by sequence number, who sees which events, and Server-Sent Events resumed from
//! `Last-Event-ID` missing nothing and repeating nothing.

use std::time::Duration;

use hazina_tests::ApiServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{customer, other_org, overdraft_purse, pay, wallet};

/// A purse able to pay 1,000,000 KES (it may overdraw), and a customer's KES wallet `main`.
async fn purse_and_wallet(server: &ApiServer, phone: &str) -> (String, String) {
    let purse = overdraft_purse(server, "1000000").await;
    let customer = customer(server, phone).await;
    wallet(server, &customer, "main").await;
    (purse, customer)
}

async fn pay_wallet(server: &ApiServer, purse: &str, customer: &str, amount: &str) -> Value {
    let (status, body) = server
        .post(
            &server.app_key,
            "/v1/payments",
            &pay(
                &json!({ "purse": { "purseId": purse } }),
                &json!({ "wallet": { "customerId": customer, "walletId": "main" } }),
                amount,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Every event the key sees with `query`, page by page (`limit` per page).
async fn all_events(server: &ApiServer, key: &str, query: &str, limit: u32) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let path = format!("/v1/events?after={after}&limit={limit}{query}");
        let (status, page) = server.get(key, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["events"].as_array().unwrap().iter().cloned());
        after = page["nextAfter"].as_i64().unwrap();
        if !page["hasMore"].as_bool().unwrap() {
            return seen;
        }
    }
}

#[tokio::test]
async fn a_payment_tells_its_transfer_with_balances_and_a_refused_one_tells_nothing() {
    let server = ApiServer::start().await;
    let (purse, customer) = purse_and_wallet(&server, "+254712000001").await;
    let payment = pay_wallet(&server, &purse, &customer, "120.50").await;
    let transaction = payment["transactionId"].as_str().unwrap();
    // More than the wallet holds: refused, and nothing is told of it.
    let (status, body) = server
        .post(
            &server.app_key,
            "/v1/payments",
            &pay(
                &json!({ "wallet": { "customerId": customer, "walletId": "main" } }),
                &json!({ "purse": { "purseId": purse } }),
                "500",
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let events = all_events(&server, &server.org_key, "&types=transfer.posted", 50).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["type"], "transfer.posted");
    assert_eq!(event["transferId"], transaction);
    assert_eq!(event["customerId"], customer.as_str());
    assert_eq!(event["appId"], server.app.to_string());
    assert_eq!(event["data"]["legs"].as_array().unwrap().len(), 2);
    assert_eq!(event["context"]["payment"]["narration"], "test");
    let balances = event["data"]["balances"].as_array().unwrap();
    let wallet = balances.iter().find(|b| b["accountKind"] == "wallet").unwrap();
    assert_eq!(wallet["actual"], "120.50");
    assert_eq!(wallet["customerId"], customer.as_str());

    // Balance events only when asked for: one per purse and wallet, under the transfer's
    // sequence number, each with an id of its own.
    let balance_events = all_events(&server, &server.org_key, "&types=balance.changed", 50).await;
    let transfer_seq = event["sequence"].as_i64().unwrap();
    let ours: Vec<&Value> =
        balance_events.iter().filter(|e| e["sequence"].as_i64() == Some(transfer_seq)).collect();
    assert_eq!(ours.len(), 2, "{balance_events:?}");
    assert_ne!(ours[0]["id"], ours[1]["id"]);
    let everything = all_events(&server, &server.org_key, "", 50).await;
    assert!(everything.iter().all(|e| e["type"] != "balance.changed"));

    // Found by its id (as a redelivery finds it), the same event; an id of no event, none.
    let pool = server.db.pool();
    let store = hazina_ledger::store::Store::new(pool.clone());
    let id: uuid::Uuid = event["id"].as_str().unwrap().parse().unwrap();
    let found = hazina_server::events::by_id(&pool, &store, server.org, id).await.unwrap();
    assert_eq!(&serde_json::to_value(found).unwrap(), event);
    let (batch, _) = hazina_ledger::store::event_place(id);
    let past_its_batch = hazina_ledger::store::event_id(batch, 9);
    let none = hazina_server::events::by_id(&pool, &store, server.org, past_its_batch).await;
    assert!(none.unwrap().is_none());
}

#[tokio::test]
async fn pages_by_sequence_miss_nothing_and_repeat_nothing() {
    let server = ApiServer::start().await;
    let (purse, customer) = purse_and_wallet(&server, "+254712000002").await;
    for _ in 0..7 {
        pay_wallet(&server, &purse, &customer, "1").await;
    }
    let (status, body) = server
        .post(
            &server.app_key,
            &format!("/v1/customers/{customer}/activities"),
            &json!({ "source": "web-shop", "sessionId": "s1", "key": "cart_updated" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let all = all_events(&server, &server.org_key, "", 500).await;
    let paged = all_events(&server, &server.org_key, "", 2).await;
    assert_eq!(all, paged);
    let mut sequences: Vec<i64> = all.iter().map(|e| e["sequence"].as_i64().unwrap()).collect();
    assert!(sequences.windows(2).all(|w| w[0] <= w[1]), "{sequences:?}");
    // A payment is told twice under its transfer's number: as the transfer, and as the
    // payment's success.
    let payments = all.iter().filter(|e| e["type"] == "payment.status_changed");
    for payment in payments {
        let transfer = all.iter().find(|e| e["transferId"] == payment["transferId"]).unwrap();
        assert_eq!(transfer["type"], "transfer.posted");
        assert_eq!(transfer["sequence"], payment["sequence"]);
        assert_eq!(payment["data"]["statusCode"], 300);
        assert_ne!(transfer["id"], payment["id"]);
    }
    // Numbered from 1 with no gap: every change that committed told once.
    sequences.dedup();
    assert_eq!(sequences, (1..=i64::try_from(sequences.len()).unwrap()).collect::<Vec<_>>());
    assert_eq!(all.iter().filter(|e| e["type"] == "payment.status_changed").count(), 7);
    let activity = all.last().unwrap();
    assert_eq!(activity["type"], "customer.activity_recorded");
    assert_eq!(activity["data"]["key"], "cart_updated");
    assert_eq!(activity["customerId"], customer.as_str());

    let mine = all_events(&server, &server.org_key, &format!("&customerId={customer}"), 3).await;
    let expected: Vec<&Value> =
        all.iter().filter(|e| e["customerId"] == customer.as_str()).collect();
    assert_eq!(mine.iter().collect::<Vec<_>>(), expected);
    assert!(mine.len() >= 8);
}

#[tokio::test]
async fn keys_see_their_own_events_and_bad_queries_are_refused() {
    let server = ApiServer::start().await;
    let (purse, customer) = purse_and_wallet(&server, "+254712000003").await;
    pay_wallet(&server, &purse, &customer, "5").await;
    let (other_org_key, _) = other_org(&server).await;
    let (status, page) = server.get(&other_org_key, "/v1/events").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["events"], json!([]));
    // Another app of the org sees no event of this app's.
    let (status, app) = server.post(&server.org_key, "/v1/apps", &json!({"name": "other"})).await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    let (status, key) = server
        .post(&server.org_key, "/v1/keys", &json!({"name": "other", "appId": app["appId"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let other_app_key = key["token"].as_str().unwrap();
    let (_, page) = server.get(other_app_key, "/v1/events?types=transfer.posted").await;
    assert_eq!(page["events"], json!([]));
    let (_, page) = server.get(&server.app_key, "/v1/events?types=transfer.posted").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);

    for (query, code) in [
        ("types=payment.nonsense", "invalid_query"),
        ("after=-1", "invalid_cursor"),
        ("limit=0", "invalid_limit"),
        ("customerId=nope", "invalid_query"),
    ] {
        let (status, body) = server.get(&server.org_key, &format!("/v1/events?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["code"], code, "{query}");
    }
}

/// Reads SSE events from `response` until `count` have arrived: each `(id, data)`, the id
/// `None` when the event had none.
async fn read_sse(mut response: reqwest::Response, count: usize) -> Vec<(Option<i64>, Value)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while events.len() < count {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("the stream went quiet")
            .unwrap()
            .expect("the stream ended");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut id, mut data) = (None, None);
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("id:") {
                    id = value.trim().parse().ok();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data = serde_json::from_str(value.trim()).ok();
                }
            }
            if let Some(data) = data {
                events.push((id, data));
            }
        }
    }
    events
}

#[tokio::test]
async fn a_stream_resumed_from_its_last_event_id_misses_nothing_and_repeats_nothing() {
    let server = ApiServer::start().await;
    let (purse, customer) = purse_and_wallet(&server, "+254712000004").await;
    let stream = |last: Option<i64>| {
        let mut request = server
            .http
            .get(format!("{}/v1/events/stream?after=0&types=transfer.posted", server.base))
            .bearer_auth(&server.org_key);
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last.to_string());
        }
        request.send()
    };
    for _ in 0..3 {
        pay_wallet(&server, &purse, &customer, "2").await;
    }
    let response = stream(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let first = read_sse(response, 3).await;
    let last_id = first.last().unwrap().0.unwrap();
    // More happens while the client is away.
    for _ in 0..2 {
        pay_wallet(&server, &purse, &customer, "2").await;
    }
    let second = read_sse(stream(Some(last_id)).await.unwrap(), 2).await;
    let transfers: Vec<Value> =
        first.iter().chain(&second).map(|(_, event)| event["transferId"].clone()).collect();
    let listed = all_events(&server, &server.org_key, "&types=transfer.posted", 50).await;
    // The stream saw every transfer, once.
    let expected: Vec<Value> = listed.iter().map(|e| e["transferId"].clone()).collect();
    assert_eq!(transfers, expected);
    // A new event reaches an open stream.
    let live = tokio::spawn(read_sse(stream(Some(last_id)).await.unwrap(), 3));
    pay_wallet(&server, &purse, &customer, "2").await;
    let live = live.await.unwrap();
    assert_eq!(live.len(), 3);
    let refused = server
        .http
        .get(format!("{}/v1/events/stream", server.base))
        .bearer_auth(&server.org_key)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}
