//! Customers with several identities: numbers added and removed, each finding the customer;
//! one customer adopting another (its data, its timeline, its wallets' balances by ledger
//! transfers), the old id resolving to the new; and short-lived client tokens that only record
//! activities.

use hazina_tests::ApiServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{customer, pay};

/// Resolves (or makes) the customer with a number: the status and the customer's id.
async fn by_number(server: &ApiServer, provider: &str, number: &str) -> (StatusCode, String) {
    let body = json!({ "customerNumber": { "number": number, "provider": provider } });
    let (status, found) = server.post(&server.app_key, "/v1/customers", &body).await;
    assert!(status.is_success(), "{status} {found}");
    (status, found["customerId"].as_str().unwrap().to_owned())
}

async fn add_number(
    server: &ApiServer,
    customer: &str,
    provider: &str,
    number: &str,
) -> (StatusCode, Value) {
    let path = format!("/v1/customers/{customer}/numbers");
    server.post(&server.org_key, &path, &json!({ "number": number, "provider": provider })).await
}

/// The events of the server's org, oldest first: type and payload.
async fn events(server: &ApiServer) -> Vec<(String, Value)> {
    let db = server.db.connect().await.unwrap();
    let rows = db
        .query("SELECT type, payload FROM events WHERE org_id = $1 ORDER BY seq", &[&server.org.0])
        .await
        .unwrap();
    rows.iter()
        .map(|row| (row.get(0), row.get::<_, Option<Value>>(1).unwrap_or(Value::Null)))
        .collect()
}

fn of_type<'a>(events: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|(name, _)| name == kind).map(|(_, payload)| payload).collect()
}

#[tokio::test]
async fn a_customer_holds_several_numbers_and_each_finds_it() {
    let server = ApiServer::start().await;
    let (status, id) = by_number(&server, "cellular", "+254712100001").await;
    assert_eq!(status, StatusCode::CREATED);

    let numbers = [
        ("whatsapp", "+254 712 100 002", "+254712100002"),
        ("email", "Amina@Example.com", "amina@example.com"),
        ("telegram", "amina_k", "amina_k"),
        ("messenger", "6543210987654321", "6543210987654321"),
        ("facebook", "amina.k", "amina.k"),
        ("app", "user-42", "user-42"),
    ];
    for (provider, sent, stored) in numbers {
        let (status, body) = add_number(&server, &id, provider, sent).await;
        assert_eq!(status, StatusCode::CREATED, "{provider}: {body}");
        assert!(
            body["customerNumbers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|number| number["provider"] == provider && number["number"] == stored),
            "{provider}: {body}"
        );
        // Each finds the same customer, as sent or as stored.
        assert_eq!(by_number(&server, provider, sent).await, (StatusCode::OK, id.clone()));
        assert_eq!(by_number(&server, provider, stored).await, (StatusCode::OK, id.clone()));
    }
    let (status, state) = server.get(&server.org_key, &format!("/v1/customers/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["customerNumbers"].as_array().unwrap().len(), 7, "{state}");

    // Adding one the customer holds is fine; another customer's is a conflict.
    let (status, _) = add_number(&server, &id, "email", "amina@example.com").await;
    assert_eq!(status, StatusCode::OK);
    let other = customer(&server, "+254712100009").await;
    let (status, body) = add_number(&server, &other, "whatsapp", "+254712100002").await;
    assert_eq!((status, &body["code"]), (StatusCode::CONFLICT, &json!("customer_number_taken")));
    let (status, body) = add_number(&server, &other, "whatsapp", "0712100002").await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("invalid_phone_number"))
    );
    let (status, body) = add_number(&server, &uuid::Uuid::new_v4().to_string(), "app", "x").await;
    assert_eq!((status, &body["code"]), (StatusCode::NOT_FOUND, &json!("not_found")));

    // Removed, the number no longer finds the customer: it makes a new one.
    let path = format!("/v1/customers/{id}/numbers?provider=whatsapp&number=%2B254712100002");
    let (status, body) = server.call(Method::DELETE, &path, Some(&server.org_key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, fresh) = by_number(&server, "whatsapp", "+254712100002").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(fresh, id);
    assert_eq!(
        by_number(&server, "email", "amina@example.com").await,
        (StatusCode::OK, id.clone())
    );
    // Another customer's number is not taken by naming it under this one.
    let path = format!("/v1/customers/{id}/numbers?provider=whatsapp&number=%2B254712100002");
    let (status, _) = server.call(Method::DELETE, &path, Some(&server.org_key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        by_number(&server, "whatsapp", "+254712100002").await,
        (StatusCode::OK, fresh.clone())
    );

    // Each customer made is told once, with the number it was made by.
    let events = events(&server).await;
    let created = of_type(&events, "customer.created");
    let made: Vec<&str> = created.iter().map(|p| p["customerId"].as_str().unwrap()).collect();
    assert_eq!(made, [id.as_str(), other.as_str(), fresh.as_str()], "{events:?}");
    assert_eq!(created[2]["provider"], "whatsapp");
    assert_eq!(created[2]["number"], "+254712100002");
}

/// A purse that may go 100,000 KES below zero, and its party.
async fn purse(server: &ApiServer) -> (String, Value) {
    let body = json!({ "currencyCode": "KES", "name": "float", "overdraftLimit": "100000" });
    let (status, body) = server.post(&server.org_key, "/v1/purses", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["purseId"].as_str().unwrap().to_owned();
    (id.clone(), json!({ "purse": { "purseId": id } }))
}

/// The customer's wallet `wallet_id`, made, with `amount` paid into it from `purse`; its
/// account id and the payment's transaction id.
async fn funded_wallet(
    server: &ApiServer,
    purse: &Value,
    customer: &str,
    wallet_id: &str,
    amount: &str,
) -> (String, String) {
    let path = format!("/v1/customers/{customer}/wallets");
    let (status, wallet) = server
        .post(&server.app_key, &path, &json!({ "walletId": wallet_id, "currencyCode": "KES" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{wallet}");
    let party = json!({ "wallet": { "customerId": customer, "walletId": wallet_id } });
    let (status, paid) =
        server.post(&server.app_key, "/v1/payments", &pay(purse, &party, amount)).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    (
        wallet["accountId"].as_str().unwrap().to_owned(),
        paid["transactionId"].as_str().unwrap().to_owned(),
    )
}

/// An account's posted balance (`actual`) and whether it is closed.
async fn account(server: &ApiServer, id: &str) -> (rust_decimal::Decimal, bool) {
    let (status, body) = server.get(&server.org_key, &format!("/v1/accounts/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body["balance"]["actual"].as_str().unwrap().parse().unwrap(), body["closed"] == true)
}

async fn put(server: &ApiServer, key: &str, path: &str, body: &Value) {
    let (status, answer) = server.call(Method::PUT, path, Some(key), Some(body)).await;
    assert!(status.is_success(), "PUT {path}: {status} {answer}");
}

/// Count of the org's transfers made by merges.
async fn merge_transfers(server: &ApiServer) -> i64 {
    let db = server.db.connect().await.unwrap();
    db.query_one(
        "SELECT count(*) FROM transfers WHERE org_id = $1 AND code = 'customer_merge'",
        &[&server.org.0],
    )
    .await
    .unwrap()
    .get(0)
}

/// Gives `keeper` a tag "tier", and `adopted` one of each: tags ("tier" too), a secondary id,
/// metadata, the app's data, a reminder and an activity; the activity.
async fn give_state(server: &ApiServer, keeper: &str, adopted: &str) -> Value {
    let (org, app) = (&server.org_key, &server.app_key);
    let base = |id: &str| format!("/v1/customers/{id}");
    // Both have the tag "tier": the keeper's stays.
    put(
        server,
        org,
        &format!("{}/tags", base(keeper)),
        &json!({ "tags": [{ "key": "tier", "value": "gold" }] }),
    )
    .await;
    put(
        server,
        org,
        &format!("{}/tags", base(adopted)),
        &json!({ "tags": [{ "key": "tier", "value": "bronze" }, { "key": "segment", "value": "sme" }] }),
    )
    .await;
    put(
        server,
        org,
        &format!("{}/secondary-ids", base(adopted)),
        &json!({ "secondaryIds": [{ "key": "nationalId", "value": "23456789" }] }),
    )
    .await;
    put(
        server,
        org,
        &format!("{}/metadata", base(adopted)),
        &json!({ "metadata": { "county": { "string": "Nairobi" } } }),
    )
    .await;
    put(server, app, &format!("{}/app-data", base(adopted)), &json!({ "string": "cart:3" })).await;
    put(
        server,
        app,
        &format!("{}/reminders/renewal", base(adopted)),
        &json!({ "remindAt": "2999-01-01T00:00:00Z" }),
    )
    .await;
    let (status, activity) = server
        .post(
            app,
            &format!("{}/activities", base(adopted)),
            &json!({ "source": "web", "sessionId": "s1", "key": "visit" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{activity}");
    activity
}

/// Checks that `state` (read by the app key) holds what `give_state` gave both customers,
/// the keeper's tag winning, and that the adopted customer's numbers and secondary id find
/// the keeper.
async fn assert_adopted(server: &ApiServer, state: &Value, activity: &Value, keeper: &str) {
    let app = &server.app_key;
    let numbers: Vec<&str> = state["customerNumbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.len(), 3, "{state}");
    for number in ["+254712200001", "+254712200002", "old@example.com"] {
        assert!(numbers.contains(&number), "{number} missing: {state}");
    }
    let tags: Vec<(&str, &str)> = state["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["key"].as_str().unwrap(), t["value"].as_str().unwrap()))
        .collect();
    assert!(tags.contains(&("tier", "gold")) && tags.contains(&("segment", "sme")), "{state}");
    assert_eq!(tags.len(), 2, "{state}");
    assert_eq!(state["secondaryIds"][0]["value"], "23456789", "{state}");
    assert_eq!(state["metadata"]["county"]["string"], "Nairobi", "{state}");
    assert_eq!(state["appData"]["value"]["string"], "cart:3", "{state}");
    assert_eq!(state["reminders"][0]["key"], "renewal", "{state}");
    assert_eq!(
        state["activitySessions"][0]["activities"][0]["activityId"], activity["activityId"],
        "{state}"
    );
    // Its numbers find the keeper; so does its secondary id.
    assert_eq!(
        by_number(server, "cellular", "+254712200002").await,
        (StatusCode::OK, keeper.to_owned())
    );
    let (status, found) = server
        .post(
            app,
            "/v1/customers",
            &json!({ "secondaryId": { "key": "nationalId", "value": "23456789" } }),
        )
        .await;
    assert_eq!((status, &found["customerId"]), (StatusCode::OK, &json!(keeper)));
}

#[tokio::test]
async fn adopting_moves_everything_and_the_old_id_resolves_to_the_new() {
    let server = ApiServer::start().await;
    let keeper = customer(&server, "+254712200001").await;
    let adopted = customer(&server, "+254712200002").await;
    let (status, _) = add_number(&server, &adopted, "email", "old@example.com").await;
    assert_eq!(status, StatusCode::CREATED);
    let (purse_id, purse) = purse(&server).await;

    // Both have a "main" wallet; only the adopted one has "savings".
    let (keeper_main, _) = funded_wallet(&server, &purse, &keeper, "main", "100").await;
    let (adopted_main, paid_main) =
        funded_wallet(&server, &purse, &adopted, "main", "250.50").await;
    let (adopted_savings, _) = funded_wallet(&server, &purse, &adopted, "savings", "40").await;

    let activity = give_state(&server, &keeper, &adopted).await;
    let (org, app) = (&server.org_key, &server.app_key);
    let base = |id: &str| format!("/v1/customers/{id}");

    let accounts = [&purse_id, &keeper_main, &adopted_main, &adopted_savings];
    let mut total_before = rust_decimal::Decimal::ZERO;
    for id in accounts {
        total_before += account(&server, id).await.0;
    }

    let adopt = json!({ "otherCustomerId": adopted });
    let (status, merged) = server.post(org, &format!("{}/adopt", base(&keeper)), &adopt).await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(merged["customerId"], keeper.as_str());

    // The old id is the keeper now, with everything the adopted customer had.
    let (status, state) = server.get(app, &base(&adopted)).await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert_eq!(state["customerId"], keeper.as_str());
    assert_adopted(&server, &state, &activity, &keeper).await;

    // The money moved by ledger transfers: the adopted wallets are empty and closed, the
    // keeper's hold it all, and the books hold what they held.
    let wallets: Vec<(&str, rust_decimal::Decimal)> = state["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["walletId"].as_str().unwrap(),
                w["balance"]["actual"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(wallets.len(), 2, "{state}");
    assert!(wallets.contains(&("main", "350.50".parse().unwrap())), "{state}");
    assert!(wallets.contains(&("savings", "40".parse().unwrap())), "{state}");
    assert_eq!(account(&server, &adopted_main).await, (rust_decimal::Decimal::ZERO, true));
    assert_eq!(account(&server, &adopted_savings).await, (rust_decimal::Decimal::ZERO, true));
    let keeper_savings = state["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["walletId"] == "savings")
        .unwrap()["accountId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut total_after = rust_decimal::Decimal::ZERO;
    for id in [&purse_id, &keeper_main, &adopted_main, &adopted_savings, &keeper_savings] {
        total_after += account(&server, id).await.0;
    }
    assert_eq!(total_after, total_before);
    assert_eq!(merge_transfers(&server).await, 2);

    // The keeper's timeline holds the adopted customer's payment and activity.
    let (status, timeline) = server.get(org, &format!("{}/timeline", base(&keeper))).await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    let items: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["activityId"].as_str().or_else(|| i["transactionId"].as_str()).unwrap())
        .collect();
    assert!(items.contains(&paid_main.as_str()), "{timeline}");
    assert!(items.contains(&activity["activityId"].as_str().unwrap()), "{timeline}");

    // Told once, as one event.
    let merged_events: Vec<Value> =
        of_type(&events(&server).await, "customer.merged").into_iter().cloned().collect();
    assert_eq!(merged_events, [json!({ "customerId": keeper, "mergedCustomerId": adopted })]);

    // Asked again, nothing more moves and nothing more is told.
    let (status, again) = server.post(org, &format!("{}/adopt", base(&keeper)), &adopt).await;
    assert_eq!((status, &again["customerId"]), (StatusCode::OK, &json!(keeper)));
    assert_eq!(merge_transfers(&server).await, 2);
    assert_eq!(of_type(&events(&server).await, "customer.merged").len(), 1);

    // A customer cannot adopt itself, by either of its ids.
    for other in [&keeper, &adopted] {
        let (status, body) = server
            .post(org, &format!("{}/adopt", base(&adopted)), &json!({ "otherCustomerId": other }))
            .await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::UNPROCESSABLE_ENTITY, &json!("cannot_adopt_itself")),
            "{other}"
        );
    }
    let missing = uuid::Uuid::new_v4();
    let (status, body) = server
        .post(org, &format!("{}/adopt", base(&keeper)), &json!({ "otherCustomerId": missing }))
        .await;
    assert_eq!((status, &body["code"]), (StatusCode::NOT_FOUND, &json!("not_found")));
}

#[tokio::test]
async fn adopting_follows_earlier_merges_in_one_hop() {
    let server = ApiServer::start().await;
    let first = customer(&server, "+254712300001").await;
    let second = customer(&server, "+254712300002").await;
    let third = customer(&server, "+254712300003").await;
    let org = &server.org_key;
    let (status, _) = server
        .post(org, &format!("/v1/customers/{second}/adopt"), &json!({ "otherCustomerId": first }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .post(org, &format!("/v1/customers/{third}/adopt"), &json!({ "otherCustomerId": second }))
        .await;
    assert_eq!(status, StatusCode::OK);
    // The first id, adopted by a customer that was adopted in turn, names the third.
    let (status, state) = server.get(org, &format!("/v1/customers/{first}")).await;
    assert_eq!((status, &state["customerId"]), (StatusCode::OK, &json!(third)));
    let db = server.db.connect().await.unwrap();
    let rows = db
        .query(
            "SELECT old_customer_id, customer_id FROM customer_aliases WHERE org_id = $1",
            &[&server.org.0],
        )
        .await
        .unwrap();
    let third_id: uuid::Uuid = third.parse().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|row| row.get::<_, uuid::Uuid>(1) == third_id));
}

#[tokio::test]
async fn adopting_is_refused_while_the_other_has_a_pending_transfer() {
    let server = ApiServer::start().await;
    let keeper = customer(&server, "+254712400001").await;
    let adopted = customer(&server, "+254712400002").await;
    let (purse_id, purse) = purse(&server).await;
    let (wallet, _) = funded_wallet(&server, &purse, &adopted, "main", "10").await;
    let value = json!({ "currencyCode": "KES", "amount": "5" });
    let pending = json!({
        "type": "pending",
        "code": "hold",
        "legs": [
            { "accountId": wallet, "side": "debit", "value": value },
            { "accountId": purse_id, "side": "credit", "value": value },
        ],
        "timeoutSeconds": 3600,
    });
    let (status, body) = server.post(&server.org_key, "/v1/transfers", &pending).await;
    assert!(status.is_success(), "a pending transfer was not made: {status} {body}");
    let (status, body) = server
        .post(
            &server.org_key,
            &format!("/v1/customers/{keeper}/adopt"),
            &json!({ "otherCustomerId": adopted }),
        )
        .await;
    assert_eq!((status, &body["code"]), (StatusCode::CONFLICT, &json!("merge_pending_transfers")));
    // Nothing moved.
    assert_eq!(account(&server, &wallet).await, ("10".parse().unwrap(), false));
    assert_eq!(merge_transfers(&server).await, 0);
    let (status, state) = server.get(&server.org_key, &format!("/v1/customers/{adopted}")).await;
    assert_eq!((status, &state["customerId"]), (StatusCode::OK, &json!(adopted)));
}

async fn mint(server: &ApiServer, key: &str, body: &Value) -> (StatusCode, Value) {
    server.post(key, "/v1/auth-tokens", body).await
}

async fn record(server: &ApiServer, token: &str, customer: &str) -> (StatusCode, Value) {
    let body = json!({ "source": "browser", "sessionId": "s1", "key": "visit" });
    server.post(token, &format!("/v1/customers/{customer}/activities"), &body).await
}

#[tokio::test]
async fn client_tokens_record_activities_and_nothing_else() {
    let server = ApiServer::start().await;
    let mine = customer(&server, "+254712500001").await;
    let theirs = customer(&server, "+254712500002").await;

    let (status, minted) = mint(&server, &server.app_key, &json!({ "customerId": mine })).await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    assert_eq!(minted["appId"], server.app.to_string());
    assert_eq!(minted["customerId"], mine.as_str());
    let expires: chrono::DateTime<chrono::Utc> =
        minted["expiresAt"].as_str().unwrap().parse().unwrap();
    assert!(expires > chrono::Utc::now() + chrono::TimeDelta::seconds(500), "{minted}");
    let token = minted["token"].as_str().unwrap().to_owned();

    let (status, activity) = record(&server, &token, &mine).await;
    assert_eq!(status, StatusCode::CREATED, "{activity}");
    let (status, body) = record(&server, &token, &theirs).await;
    assert_eq!((status, &body["code"]), (StatusCode::FORBIDDEN, &json!("client_token_scope")));
    let (status, body) = record(&server, &token, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!((status, &body["code"]), (StatusCode::FORBIDDEN, &json!("client_token_scope")));

    // Every other route refuses it.
    let refused = [
        (Method::GET, format!("/v1/customers/{mine}"), None),
        (Method::GET, format!("/v1/customers/{mine}/timeline"), None),
        (Method::GET, format!("/v1/customers/{mine}/wallets"), None),
        (Method::POST, "/v1/auth-tokens".to_owned(), Some(json!({}))),
        (
            Method::POST,
            "/v1/customers".to_owned(),
            Some(
                json!({ "customerNumber": { "number": "+254712500003", "provider": "cellular" } }),
            ),
        ),
        (Method::PUT, format!("/v1/customers/{mine}/tags"), Some(json!({ "tags": [] }))),
        (Method::GET, "/v1/purses".to_owned(), None),
    ];
    for (method, path, body) in refused {
        let (status, answer) =
            server.call(method.clone(), &path, Some(&token), body.as_ref()).await;
        assert_eq!(
            (status, &answer["code"]),
            (StatusCode::FORBIDDEN, &json!("client_token_forbidden")),
            "{method} {path}"
        );
    }

    // A token for no one customer records for any of the org's.
    let (status, minted) = mint(&server, &server.app_key, &json!({ "ttlSeconds": 60 })).await;
    assert_eq!((status, &minted["customerId"]), (StatusCode::CREATED, &Value::Null));
    let any = minted["token"].as_str().unwrap().to_owned();
    assert_eq!(record(&server, &any, &theirs).await.0, StatusCode::CREATED);

    // An org key mints none; lifetimes are 1 to 3600 seconds; the customer must exist.
    let (status, body) = mint(&server, &server.org_key, &json!({})).await;
    assert_eq!((status, &body["code"]), (StatusCode::FORBIDDEN, &json!("app_key_required")));
    for ttl in [0, 3601] {
        let (status, body) = mint(&server, &server.app_key, &json!({ "ttlSeconds": ttl })).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::UNPROCESSABLE_ENTITY, &json!("invalid_ttl"))
        );
    }
    let (status, body) =
        mint(&server, &server.app_key, &json!({ "customerId": uuid::Uuid::new_v4() })).await;
    assert_eq!((status, &body["code"]), (StatusCode::NOT_FOUND, &json!("not_found")));

    // A forged secret, and an expired token, are refused as unauthenticated.
    let forged = format!("{}x", &any[..any.len() - 1]);
    let (status, body) = record(&server, &forged, &theirs).await;
    assert_eq!((status, &body["code"]), (StatusCode::UNAUTHORIZED, &json!("unauthorized")));
    let db = server.db.connect().await.unwrap();
    let expired = db
        .execute(
            "UPDATE client_tokens SET expires_at = now() - interval '1 second' WHERE org_id = $1",
            &[&server.org.0],
        )
        .await
        .unwrap();
    assert_eq!(expired, 2);
    let (status, body) = record(&server, &token, &mine).await;
    assert_eq!((status, &body["code"]), (StatusCode::UNAUTHORIZED, &json!("unauthorized")));
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
}

#[tokio::test]
async fn a_client_token_dies_with_its_key_and_follows_a_merge() {
    let server = ApiServer::start().await;
    let adopted = customer(&server, "+254712600001").await;
    let keeper = customer(&server, "+254712600002").await;
    let (status, key) = server
        .post(&server.org_key, "/v1/keys", &json!({ "name": "browser", "appId": server.app }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let app_key = key["token"].as_str().unwrap();
    let (status, minted) = mint(&server, app_key, &json!({ "customerId": adopted })).await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let token = minted["token"].as_str().unwrap().to_owned();

    // Scoped to a customer since adopted: it records for the keeper, by either id.
    let (status, _) = server
        .post(
            &server.org_key,
            &format!("/v1/customers/{keeper}/adopt"),
            &json!({ "otherCustomerId": adopted }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, activity) = record(&server, &token, &keeper).await;
    assert_eq!(status, StatusCode::CREATED, "{activity}");
    assert_eq!(record(&server, &token, &adopted).await.0, StatusCode::CREATED);

    let path = format!("/v1/keys/{}", key["keyId"].as_str().unwrap());
    let (status, body) = server.call(Method::DELETE, &path, Some(&server.org_key), None).await;
    assert!(status.is_success(), "{status} {body}");
    let (status, body) = record(&server, &token, &keeper).await;
    assert_eq!((status, &body["code"]), (StatusCode::UNAUTHORIZED, &json!("unauthorized")));
}
