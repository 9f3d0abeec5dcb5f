//! `Idempotency-Key` on POSTs over real HTTP: replays, conflicts and malformed keys.

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
    assert_eq!(status, StatusCode::CONFLICT, "{first}");
    let (status, replayed, again) = send(&server, "too-much", &body).await;
    assert_eq!((status, replayed.as_deref()), (StatusCode::CONFLICT, Some("true")));
    assert_eq!(first, again);
}

async fn send_as(
    server: &ApiServer,
    api_key: &str,
    key: &str,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    let url = format!("{}{path}", server.base);
    let request = server.http.post(url).bearer_auth(api_key).header("idempotency-key", key);
    request.json(body).send().await.unwrap()
}

/// An Idempotency-Key belongs to the API key that sent it: another key of the same org (two
/// services, say) never gets its answer or a conflict with it.
#[tokio::test]
async fn idempotency_keys_are_scoped_by_api_key() {
    let server = ApiServer::start().await;
    let (float, target) = purses(&server).await;
    let (status, other_key) =
        server.post(&server.org_key, "/v1/keys", &json!({ "name": "second service" })).await;
    assert_eq!(status, StatusCode::CREATED, "{other_key}");
    let other_key = other_key["token"].as_str().unwrap();
    for (api_key, amount) in [(server.org_key.as_str(), "1"), (other_key, "2")] {
        let body = post(&float, &target, amount);
        let response = send_as(&server, api_key, "k", "/v1/transfers", &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(response.headers().get("idempotent-replayed").is_none());
    }
    let (_, purse) = server.get(&server.org_key, &format!("/v1/purses/{target}")).await;
    assert_eq!(purse["balance"]["actual"], "3.00");
}

/// A replay is the first answer as it was, headers included: a payment not made is an
/// `application/problem+json` the second time too.
#[tokio::test]
async fn a_replay_keeps_the_first_answers_headers() {
    let server = ApiServer::start().await;
    let (float, target) = purses(&server).await;
    let payment = json!({
        "debitParty": { "purse": { "purseId": target } },
        "creditParty": { "purse": { "purseId": float } },
        "value": { "currencyCode": "KES", "amount": "5" },
    });
    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = send_as(&server, &server.org_key, "pay-1", "/v1/payments", &payment).await;
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let (status, body) = (response.status(), response.json::<Value>().await.unwrap());
        answers.push((status, content_type, body));
    }
    assert_eq!(answers[0].0, StatusCode::CONFLICT, "{:?}", answers[0]);
    assert_eq!(answers[0].1, "application/problem+json");
    assert_eq!(answers[0].2["paymentStatus"], "insufficient_funds");
    assert_eq!(answers[0], answers[1]);
}

/// A first request still running keeps its key however long it runs: a retry is told to wait,
/// and is never run beside it.
#[tokio::test]
async fn a_running_first_request_is_never_taken_over() {
    let server = ApiServer::start().await;
    let (float, target) = purses(&server).await;
    // The first request waits on a lock held on the float purse.
    let mut holder = server.db.connect().await.unwrap();
    let lock = holder.transaction().await.unwrap();
    lock.execute("SELECT 1 FROM accounts WHERE id = $1::text::uuid FOR UPDATE", &[&float])
        .await
        .unwrap();
    let body = post(&float, &target, "7");
    let first = tokio::spawn({
        let (http, url, api_key, body) = (
            server.http.clone(),
            format!("{}/v1/transfers", server.base),
            server.org_key.clone(),
            body.clone(),
        );
        async move {
            let request = http.post(url).bearer_auth(api_key).header("idempotency-key", "slow");
            request.json(&body).send().await.unwrap().status()
        }
    });
    let client = server.db.connect().await.unwrap();
    hazina_tests::wait_for(
        "the first request to hold its key",
        std::time::Duration::from_secs(10),
        || async {
            let row = client
                .query_one("SELECT count(*) FROM idempotent_requests WHERE key = 'slow'", &[])
                .await
                .unwrap();
            (row.get::<_, i64>(0) == 1).then_some(())
        },
    )
    .await
    .unwrap();
    // However old it looks, it is running: it is not taken over.
    client
        .execute("UPDATE idempotent_requests SET created_at = now() - interval '1 hour'", &[])
        .await
        .unwrap();
    // (Run beside it, the retry would wait on the lock too: it must be answered at once.)
    let retry =
        tokio::time::timeout(std::time::Duration::from_secs(10), send(&server, "slow", &body));
    let (status, _, problem) = retry.await.expect("the retry is answered, not run");
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_request_in_progress"))
    );
    lock.rollback().await.unwrap();
    assert_eq!(first.await.unwrap(), StatusCode::CREATED);
    let (status, replayed, _) = send(&server, "slow", &body).await;
    assert_eq!((status, replayed.as_deref()), (StatusCode::CREATED, Some("true")));
    let (_, purse) = server.get(&server.org_key, &format!("/v1/purses/{target}")).await;
    assert_eq!(purse["balance"]["actual"], "7.00");
}
