//! `Idempotency-Key` on POSTs over real HTTP: replays, conflicts and malformed keys.

// A test fails by panicking, so unwrapping is how these tests assert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hazina_tests::ApiServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn send(server: &ApiServer, key: &str, body: &Value) -> (StatusCode, Option<String>, Value) {
    let response = server
        .http
        .post(format!("{}/v1/transfers", server.base))
        .bearer_auth(&server.org_key)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let replayed =
        response.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap().to_owned());
    (status, replayed, response.json().await.unwrap())
}

async fn purses(server: &ApiServer) -> (String, String) {
    let (_, float) = server
        .post(
            &server.org_key,
            "/v1/purses",
            &json!({ "currencyCode": "KES", "overdraftLimit": "1000" }),
        )
        .await;
    let (_, target) =
        server.post(&server.org_key, "/v1/purses", &json!({ "currencyCode": "KES" })).await;
    (float["purseId"].as_str().unwrap().to_owned(), target["purseId"].as_str().unwrap().to_owned())
}

fn post(from: &str, to: &str, amount: &str) -> Value {
    json!({ "type": "post", "code": "test", "legs": [
        { "accountId": from, "side": "debit", "value": { "currencyCode": "KES", "amount": amount } },
        { "accountId": to, "side": "credit", "value": { "currencyCode": "KES", "amount": amount } },
    ] })
}

#[tokio::test]
async fn a_replay_returns_the_stored_response_and_moves_money_once() {
    let server = ApiServer::start().await;
    let (float, target) = purses(&server).await;
    let body = post(&float, &target, "25");
    let (first, replayed, original) = send(&server, "order-1", &body).await;
    assert_eq!((first, replayed), (StatusCode::CREATED, None), "{original}");
    let (again, replayed, repeat) = send(&server, "order-1", &body).await;
    assert_eq!((again, replayed.as_deref()), (StatusCode::CREATED, Some("true")));
    assert_eq!(original, repeat);
    let (_, purse) = server.get(&server.org_key, &format!("/v1/purses/{target}")).await;
    assert_eq!(purse["balance"]["actual"], "25.00");
    // The transfer's id comes from the key: the same key always names the same transfer.
    let (_, _, other) = send(&server, "order-2", &body).await;
    assert_ne!(other["transferId"], original["transferId"]);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let server = ApiServer::start().await;
    let (float, target) = purses(&server).await;
    send(&server, "k", &post(&float, &target, "1")).await;
    let (status, _, problem) = send(&server, "k", &post(&float, &target, "2")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused"))
    );
    let (status, _, problem) = send(&server, &"x".repeat(300), &post(&float, &target, "1")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key"))
    );
    // Keys are per caller: the app key's "k" is another key.
    let (_, purse) = server.get(&server.org_key, &format!("/v1/purses/{target}")).await;
    assert_eq!(purse["balance"]["actual"], "1.00");
}

#[tokio::test]
async fn a_stored_rejection_is_replayed_too() {
    let server = ApiServer::start().await;
    let (float, target) = purses(&server).await;
    let body = post(&float, &target, "5000");
    let (status, _, first) = send(&server, "too-much", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{first}");
    let (status, replayed, again) = send(&server, "too-much", &body).await;
    assert_eq!((status, replayed.as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("true")));
    assert_eq!(first, again);
}
