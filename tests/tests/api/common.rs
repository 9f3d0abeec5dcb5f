//! What the API tests share: a second org, customers, payment bodies, purses and the Africa's
//! Talking simulator.

use hazina_ledger::OrgId;
use hazina_ledger::store::Store;
use hazina_server::tenancy;
use hazina_simulator::africastalking::{Config, Simulator};
use hazina_tests::ApiServer;
use serde_json::{Value, json};

/// A second org with an org key and an app key.
pub async fn other_org(server: &ApiServer) -> (String, String) {
    let pool = server.db.pool();
    let org = OrgId::generate();
    Store::new(pool.clone()).create_org(org, "other").await.unwrap();
    let app = tenancy::insert_app(&pool, org, "other").await.unwrap();
    let org_key = tenancy::insert_key(&pool, org, None, "k").await.unwrap().token;
    let app_key = tenancy::insert_key(&pool, org, Some(app.app_id), "k").await.unwrap().token;
    (org_key, app_key)
}

/// The id of the customer with cellular number `phone`, made by the server's app key.
pub async fn customer(server: &ApiServer, phone: &str) -> String {
    let (status, body) = server
        .post(
            &server.app_key,
            "/v1/customers",
            &json!({ "customerNumber": { "number": phone, "provider": "cellular" } }),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    body["customerId"].as_str().unwrap().to_owned()
}

/// The body of a KES payment of `amount` from one party to another.
pub fn pay(from: &Value, to: &Value, amount: &str) -> Value {
    json!({
        "debitParty": from,
        "creditParty": to,
        "value": { "currencyCode": "KES", "amount": amount },
        "narration": "test",
    })
}

/// The id of a new KES purse that may go `overdraft` below zero (org key).
pub async fn overdraft_purse(server: &ApiServer, overdraft: &str) -> String {
    let (status, body) = server
        .post(
            &server.org_key,
            "/v1/purses",
            &json!({ "currencyCode": "KES", "name": "float", "overdraftLimit": overdraft }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    body["purseId"].as_str().unwrap().to_owned()
}

/// Opens the customer's KES wallet `wallet_id` (app key).
pub async fn wallet(server: &ApiServer, customer: &str, wallet_id: &str) {
    let (status, body) = server
        .post(
            &server.app_key,
            &format!("/v1/customers/{customer}/wallets"),
            &json!({ "walletId": wallet_id, "currencyCode": "KES" }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
}

/// The Africa's Talking simulator on a loopback port of its own, taking `api_key`: it and its
/// base URL.
pub async fn africastalking(api_key: &str) -> (Simulator, String) {
    let simulator = Simulator::new(Config::new(api_key));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = simulator.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (simulator, url)
}

/// A new KES purse named `name` holding `amount`, paid from a new overdraft float purse: the
/// float's id and the purse's (org key).
pub async fn funded_purse(server: &ApiServer, name: &str, amount: &str) -> (String, String) {
    let float = overdraft_purse(server, "1000000").await;
    let body = json!({ "currencyCode": "KES", "name": name });
    let (status, purse) = server.post(&server.org_key, "/v1/purses", &body).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{purse}");
    let purse = purse["purseId"].as_str().unwrap().to_owned();
    let funding = pay(
        &json!({ "purse": { "purseId": float } }),
        &json!({ "purse": { "purseId": purse } }),
        amount,
    );
    let (status, body) = server.post(&server.org_key, "/v1/payments", &funding).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    (float, purse)
}
