//! The HTTP API end to end, over real HTTP against real PostgreSQL: keys and who may do what,
//! customers, purses, wallets and payments, bad input of every kind, and concurrent payments
//! against one purse.

use hazina_ledger::store::Store;
use hazina_tests::ApiServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{customer, other_org, pay, wallet};

async fn purse(server: &ApiServer, currency: &str) -> String {
    let (status, body) =
        server.post(&server.org_key, "/v1/purses", &json!({ "currencyCode": currency })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["purseId"].as_str().unwrap().to_owned()
}

/// Funds a purse from the org's equity: purses start empty and only an org key moves money
/// in from outside (through a raw transfer in a later issue); here, a purse with an overdraft
/// pays a second purse.
async fn funded_purse(server: &ApiServer, amount: &str) -> String {
    let (status, body) = server
        .post(
            &server.org_key,
            "/v1/purses",
            &json!({ "currencyCode": "KES", "name": "float", "overdraftLimit": "1000000" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let float = body["purseId"].as_str().unwrap().to_owned();
    let target = purse(server, "KES").await;
    let (status, body) = server
        .post(
            &server.org_key,
            "/v1/payments",
            &pay(
                &json!({ "purse": { "purseId": float } }),
                &json!({ "purse": { "purseId": target } }),
                amount,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    target
}

#[tokio::test]
async fn a_payment_from_a_purse_to_a_wallet_moves_money_and_shows_on_both() {
    let server = ApiServer::start().await;
    let purse = funded_purse(&server, "500").await;
    let customer = customer(&server, "+254712345678").await;
    wallet(&server, &customer, "main").await;
    let (status, body) = server
        .post(
            &server.app_key,
            "/v1/payments",
            &pay(
                &json!({ "purse": { "purseId": purse } }),
                &json!({ "wallet": { "customerId": customer, "walletId": "main" } }),
                "120.50",
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "success");
    let transaction = body["transactionId"].as_str().unwrap();

    let (_, purse_view) = server.get(&server.app_key, &format!("/v1/purses/{purse}")).await;
    assert_eq!(purse_view["balance"]["actual"], "379.50");
    let (status, state) = server.get(&server.app_key, &format!("/v1/customers/{customer}")).await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert_eq!(state["wallets"][0]["walletId"], "main");
    assert_eq!(state["wallets"][0]["balance"]["actual"], "120.50");
    assert_eq!(state["customerNumbers"][0]["number"], "+254712345678");

    let (status, transfer) =
        server.get(&server.org_key, &format!("/v1/transfers/{transaction}")).await;
    assert_eq!(status, StatusCode::OK, "{transfer}");
    assert_eq!(transfer["legs"].as_array().unwrap().len(), 2);
    assert_eq!(transfer["context"]["payment"]["narration"], "test");
    // The customer is linked to the payment for the timeline, in the same transaction.
    let client = server.db.pool().get().await.unwrap();
    let linked: i64 = client
        .query_one(
            "SELECT count(*) FROM customer_transfers WHERE customer_id = $1::text::uuid",
            &[&customer],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(linked, 1);
}

#[tokio::test]
async fn a_payment_beyond_the_balance_is_insufficient_funds_and_changes_nothing() {
    let server = ApiServer::start().await;
    let purse = funded_purse(&server, "100").await;
    let customer = customer(&server, "+254712345679").await;
    wallet(&server, &customer, "main").await;
    let payment = pay(
        &json!({ "purse": { "purseId": purse } }),
        &json!({ "wallet": { "customerId": customer, "walletId": "main" } }),
        "100.01",
    );
    let (status, body) = server.post(&server.app_key, "/v1/payments", &payment).await;
    assert_eq!((status, &body["code"]), (StatusCode::CONFLICT, &json!("payment_failed")), "{body}");
    assert_eq!(
        (&body["paymentStatus"], &body["reason"]),
        (&json!("insufficient_funds"), &json!("exceeds_credits"))
    );
    assert!(body["transactionId"].is_string(), "{body}");
    // The answer of the previous release, for one more release on request (deprecated).
    let legacy = server
        .http
        .post(format!("{}/v1/payments", server.base))
        .bearer_auth(&server.app_key)
        .header("Hazina-Refusal", "body")
        .json(&payment)
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(legacy.headers()["content-type"], "application/json");
    let body: Value = legacy.json().await.unwrap();
    assert_eq!(
        (&body["status"], &body["reason"]),
        (&json!("insufficient_funds"), &json!("exceeds_credits"))
    );
    let (_, purse_view) = server.get(&server.app_key, &format!("/v1/purses/{purse}")).await;
    assert_eq!(purse_view["balance"]["actual"], "100.00");
}

#[tokio::test]
async fn customers_are_resolved_by_their_normalised_number() {
    let server = ApiServer::start().await;
    let first = customer(&server, "+254 712 345 670").await;
    let again = customer(&server, "+254712345670").await;
    assert_eq!(first, again);
    let (status, body) = server
        .post(
            &server.app_key,
            "/v1/customers",
            &json!({ "customerNumber": { "number": "12345", "provider": "cellular" } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "invalid_phone_number");
}

#[tokio::test]
async fn keys_decide_who_may_do_what_and_other_orgs_see_nothing() {
    let server = ApiServer::start().await;
    let purse = purse(&server, "KES").await;
    let customer = customer(&server, "+254712345671").await;
    // No key, a malformed key, an unknown key.
    for key in [None, Some("nonsense"), Some("hz_0123456789abcdef_nope")] {
        let (status, body) =
            server.call(Method::GET, &format!("/v1/purses/{purse}"), key, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?} {body}");
        assert_eq!(body["code"], "unauthorized");
    }
    // An app key cannot manage the org.
    let (status, body) =
        server.post(&server.app_key, "/v1/purses", &json!({ "currencyCode": "KES" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "org_key_required");
    // Another org's keys see neither the purse nor the customer: 404, as if missing.
    let (other_org_key, other_app_key) = other_org(&server).await;
    for (key, path) in [
        (&other_org_key, format!("/v1/purses/{purse}")),
        (&other_app_key, format!("/v1/customers/{customer}")),
        (&other_app_key, format!("/v1/customers/{customer}/wallets")),
        (&other_org_key, format!("/v1/accounts/{purse}")),
    ] {
        let (status, body) = server.get(key, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} {body}");
        assert_eq!(body["code"], "not_found");
    }
    // A revoked key stops working at once.
    let (status, created) =
        server.post(&server.org_key, "/v1/keys", &json!({ "name": "temporary" })).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap();
    assert_eq!(server.get(token, "/v1/apps").await.0, StatusCode::OK);
    let key_id = created["keyId"].as_str().unwrap();
    let (status, _) = server
        .call(Method::DELETE, &format!("/v1/keys/{key_id}"), Some(&server.org_key), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(server.get(token, "/v1/apps").await.0, StatusCode::UNAUTHORIZED);
    // Listing keys never shows a token.
    let (_, keys) = server.get(&server.org_key, "/v1/keys").await;
    assert!(!keys.to_string().contains(token.rsplit('_').next().unwrap()));
    assert_eq!(keys["keys"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn bad_input_is_a_4xx_with_a_stable_code_and_changes_nothing() {
    let server = ApiServer::start().await;
    let purse = funded_purse(&server, "100").await;
    let customer = customer(&server, "+254712345672").await;
    wallet(&server, &customer, "main").await;
    let from = json!({ "purse": { "purseId": purse } });
    let to = json!({ "wallet": { "customerId": customer, "walletId": "main" } });
    let with_value = |value: Value| {
        let mut body = pay(&from, &to, "1");
        body["value"] = value;
        body
    };
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            with_value(json!({ "currencyCode": "KES", "amount": "1.001" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            with_value(json!({ "currencyCode": "KES", "amount": "0" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            with_value(json!({ "currencyCode": "KES", "amount": "-5" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            with_value(json!({ "currencyCode": "KES", "amount": "1e3" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            with_value(json!({ "currencyCode": "KES", "amount": "99999999999999999999999" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            with_value(json!({ "currencyCode": "XYZ", "amount": "1" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_currency",
        ),
        (
            with_value(json!({ "currencyCode": "UGX", "amount": "1" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_mismatch",
        ),
        (
            with_value(json!({ "currencyCode": "KES", "amount": 1 })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({ "debitParty": from, "creditParty": to, "value": { "currencyCode": "KES", "amount": "1" }, "extra": 1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({ "debitParty": from, "value": { "currencyCode": "KES", "amount": "1" } }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (pay(&from, &from, "1"), StatusCode::UNPROCESSABLE_ENTITY, "invalid_counter_party"),
        (
            pay(&json!({ "purse": { "purseId": "not-a-uuid" } }), &to, "1"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            pay(&json!({ "purse": { "purseId": uuid::Uuid::now_v7() } }), &to, "1"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            pay(&from, &json!({ "customer": { "customerNumber": {} } }), "1"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            pay(
                &from,
                &json!({ "customer": {
                    "customerNumber": { "number": "+254712345678", "provider": "cellular" },
                    "channelNumber": "123456",
                } }),
                "1",
            ),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = server.post(&server.app_key, "/v1/payments", &body).await;
        assert_eq!((got, answer["code"].as_str()), (status, Some(code)), "{body} -> {answer}");
        assert_eq!(answer["status"], status.as_u16(), "a problem document: {answer}");
    }
    let (_, purse_view) = server.get(&server.app_key, &format!("/v1/purses/{purse}")).await;
    assert_eq!(purse_view["balance"]["actual"], "100.00", "nothing moved");
    assert_eq!(Store::new(server.db.pool()).verify().await.unwrap(), vec![]);
}

#[tokio::test]
async fn a_replayed_transaction_id_returns_the_original_result() {
    let server = ApiServer::start().await;
    let purse = funded_purse(&server, "100").await;
    let customer = customer(&server, "+254712345673").await;
    wallet(&server, &customer, "main").await;
    let mut body = pay(
        &json!({ "purse": { "purseId": purse } }),
        &json!({ "wallet": { "customerId": customer, "walletId": "main" } }),
        "10",
    );
    body["transactionId"] = json!(uuid::Uuid::now_v7());
    let (first, original) = server.post(&server.app_key, "/v1/payments", &body).await;
    let (again, replayed) = server.post(&server.app_key, "/v1/payments", &body).await;
    assert_eq!((first, again), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(original, replayed);
    let (_, purse_view) = server.get(&server.app_key, &format!("/v1/purses/{purse}")).await;
    assert_eq!(purse_view["balance"]["actual"], "90.00", "paid once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_payments_against_one_purse_keep_every_invariant() {
    let server = std::sync::Arc::new(ApiServer::start().await);
    let purse = funded_purse(&server, "1000").await;
    let mut customers = Vec::new();
    for i in 0..8 {
        let customer = customer(&server, &format!("+25471234{:04}", 5000 + i)).await;
        wallet(&server, &customer, "main").await;
        customers.push(customer);
    }
    let mut tasks = Vec::new();
    for (i, customer) in customers.iter().enumerate() {
        let server = server.clone();
        let purse = purse.clone();
        let customer = customer.clone();
        tasks.push(tokio::spawn(async move {
            let mut paid = 0;
            for _ in 0..20 {
                let (status, body) = server
                    .post(
                        &server.app_key,
                        "/v1/payments",
                        &pay(
                            &json!({ "purse": { "purseId": purse } }),
                            &json!({ "wallet": { "customerId": customer, "walletId": "main" } }),
                            &format!("{}", 5 + i),
                        ),
                    )
                    .await;
                match (body["status"].as_str(), body["paymentStatus"].as_str()) {
                    (Some("success"), _) => paid += 5 + i,
                    (_, Some("insufficient_funds")) => {}
                    _ => panic!("{status} {body}"),
                }
            }
            paid
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert!(total <= 1000);
    let (_, purse_view) = server.get(&server.app_key, &format!("/v1/purses/{purse}")).await;
    let left: rust_decimal::Decimal =
        purse_view["balance"]["actual"].as_str().unwrap().parse().unwrap();
    assert_eq!(left, rust_decimal::Decimal::from(1000 - total));
    assert_eq!(Store::new(server.db.pool()).verify().await.unwrap(), vec![]);
}

#[tokio::test]
async fn malformed_bodies_are_problems_not_crashes() {
    let server = ApiServer::start().await;
    for (path, code) in [
        ("/v1/purses/not-a-uuid", "invalid_path"),
        ("/v1/purses?limit=many", "invalid_query"),
        ("/v1/purses?limit=0", "invalid_limit"),
        ("/v1/accounts/00000000-0000-0000-0000-000000000000?at=yesterday", "invalid_query"),
    ] {
        let (status, body) = server.get(&server.org_key, path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{path}"
        );
    }
    // Malformed JSON, the wrong content type, an oversized body.
    let url = format!("{}/v1/payments", server.base);
    let response = server
        .http
        .post(&url)
        .bearer_auth(&server.app_key)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let response =
        server.http.post(&url).bearer_auth(&server.app_key).body("{}").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = json!({ "narration": "x".repeat(300 * 1024) });
    let (status, body) = server.post(&server.app_key, "/v1/payments", &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "body_too_large");
}

#[tokio::test]
async fn a_payment_carries_its_context_all_or_nothing() {
    let server = ApiServer::start().await;
    let purse = funded_purse(&server, "100").await;
    let customer = customer(&server, "+254712345674").await;
    wallet(&server, &customer, "main").await;
    let mut body = pay(
        &json!({ "purse": { "purseId": purse } }),
        &json!({ "wallet": { "customerId": customer, "walletId": "main" } }),
        "40",
    );
    body["context"] = json!({
        "activity": { "source": "web-shop", "sessionId": "s1", "key": "checkout",
                      "properties": { "cart_total": "40" } },
        "metadata": { "tier": { "string": "gold" } },
        "appData": { "string": "step=paid" },
    });
    let (status, paid) = server.post(&server.app_key, "/v1/payments", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    let (_, state) = server.get(&server.app_key, &format!("/v1/customers/{customer}")).await;
    assert_eq!(state["metadata"]["tier"]["string"], "gold", "{state}");
    assert_eq!(state["appData"]["value"]["string"], "step=paid", "{state}");
    let activity = &state["activitySessions"][0]["activities"][0];
    assert_eq!(activity["key"], "checkout", "{state}");
    assert_eq!(activity["transactionId"], paid["transactionId"], "linked to the payment");

    // A payment that fails applies none of its context.
    body["value"]["amount"] = json!("1000");
    body["context"]["metadata"] = json!({ "tier": { "string": "platinum" } });
    body["context"]["appData"] = json!({ "string": "step=failed" });
    body["context"]["activity"]["key"] = json!("second_try");
    let (status, failed) = server.post(&server.app_key, "/v1/payments", &body).await;
    assert_eq!(
        (status, failed["paymentStatus"].as_str()),
        (StatusCode::CONFLICT, Some("insufficient_funds"))
    );
    let (_, after) = server.get(&server.app_key, &format!("/v1/customers/{customer}")).await;
    assert_eq!(after["metadata"], state["metadata"]);
    assert_eq!(after["appData"]["value"], state["appData"]["value"]);
    assert_eq!(after["activitySessions"], state["activitySessions"]);

    // Bad context is refused before anything moves: an org key has no app data to set.
    body["value"]["amount"] = json!("1");
    let (status, problem) = server.post(&server.org_key, "/v1/payments", &body).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("app_key_required"))
    );
    body["context"] = json!({ "metadata": { "k": { "bytes": "***" } } });
    let (status, problem) = server.post(&server.app_key, "/v1/payments", &body).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_base64"))
    );
    let (_, purse_view) = server.get(&server.app_key, &format!("/v1/purses/{purse}")).await;
    assert_eq!(purse_view["balance"]["actual"], "60.00");
}

/// How many times the server read the live API key prefixes so far (from `/metrics`).
async fn key_set_reads(server: &ApiServer) -> u64 {
    let metrics = server.http.get(format!("{}/metrics", server.base)).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let line = metrics.lines().find(|line| line.starts_with("hazina_api_key_set_reads_total "));
    line.and_then(|line| line.split_whitespace().nth(1)).unwrap().parse().unwrap()
}

/// A flood of unknown keys (new ones each time, concurrent or not, or one repeated) costs no
/// database lookup per request, and never pushes a real key out: they still work throughout,
/// and a key made meanwhile works at once.
#[tokio::test]
async fn unknown_keys_cost_no_lookup_each_and_never_evict_real_ones() {
    let server = ApiServer::start().await;
    let (status, _) = server.get(&server.org_key, "/v1/purses").await;
    assert_eq!(status, StatusCode::OK);
    let before = key_set_reads(&server).await;
    let random_key = || format!("hz_{}_secret", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let mut flood = Vec::new();
    for _ in 0..400 {
        let (http, url, key) =
            (server.http.clone(), format!("{}/v1/purses", server.base), random_key());
        flood.push(tokio::spawn(async move {
            http.get(url).bearer_auth(key).send().await.unwrap().status()
        }));
    }
    for request in flood {
        assert_eq!(request.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let repeated = random_key();
    for _ in 0..200 {
        let (status, _) = server.get(&repeated, "/v1/purses").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let reads = key_set_reads(&server).await - before;
    // 600 unknown keys: a few shared readings, not one lookup each.
    assert!(reads < 60, "{reads} readings of the key set for 600 unknown keys");
    let (status, _) = server.get(&server.org_key, "/v1/purses").await;
    assert_eq!(status, StatusCode::OK);
    let (status, made) =
        server.post(&server.org_key, "/v1/keys", &json!({ "name": "made during a flood" })).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (status, _) = server.get(made["token"].as_str().unwrap(), "/v1/purses").await;
    assert_eq!(status, StatusCode::OK);
}
