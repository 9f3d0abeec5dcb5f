//! What `POST /v1/messages` checks and what a message changes, over real HTTP with the Africa's
//! Talking simulator: `paymentId` must be one of the customer's payments in the org, and a
//! message's `context` cannot name a message. A refused one sends nothing and charges nothing,
//! and makes no customer of a new number. A free channel applies a message's context with the
//! message. A channel whose address the operator stops allowing sends nothing and charges
//! nothing until it is allowed again.

use std::time::Duration;

use hazina_tests::{messaging_test_settings, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Env, start};
use crate::common;

const CUSTOMER: &str = "+254711000004";
const OTHER: &str = "+254711000005";
const SHORT_CODE: &str = "21525";

/// A priced SMS channel, funded; its id and its purse.
async fn channel(env: &Env) -> (String, String) {
    let purse = env.purse("10.00").await;
    let channel = env.channel("sms", SHORT_CODE, Some(&purse)).await;
    (channel["id"].as_str().unwrap().to_owned(), purse)
}

/// Pays 5 KES from `from` to `to` with `key`; the payment's id.
async fn paid(env: &Env, key: &str, from: &Value, to: &Value) -> String {
    let (status, body) = env.server.post(key, "/v1/payments", &common::pay(from, to, "5")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["transactionId"].as_str().unwrap().to_owned()
}

fn wallet(customer: &str) -> Value {
    json!({"wallet": {"customerId": customer, "walletId": "main"}})
}

fn text(text: &str) -> Value {
    json!({"kind": "text", "text": text})
}

async fn delivered(env: &Env, id: &str) -> Value {
    wait_for("the message delivered", Duration::from_secs(20), || async {
        let message = env.message(id).await;
        (message["status"] == "delivered").then_some(message)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_payment_id_must_name_one_of_the_customer_s_payments() {
    let env = start().await;
    let (channel, purse) = channel(&env).await;
    let float = common::overdraft_purse(&env.server, "100000").await;
    let float = json!({"purse": {"purseId": float}});
    let customer = common::customer(&env.server, CUSTOMER).await;
    let other = common::customer(&env.server, OTHER).await;
    for owner in [&customer, &other] {
        common::wallet(&env.server, owner, "main").await;
    }
    let app_key = env.server.app_key.clone();
    let theirs = paid(&env, &app_key, &float, &wallet(&customer)).await;
    let someone_elses = paid(&env, &app_key, &float, &wallet(&other)).await;
    let between_purses = paid(&env, &app_key, &float, &json!({"purse": {"purseId": purse}})).await;
    // The messaging purse holds 10.00 and the 5.00 just paid in.
    assert_eq!(env.balance(&purse).await, "15.00/15.00");

    // The customer's own payment: taken, by id or by number, and kept with the message.
    let (status, receipt) = env
        .send(&json!({"channelId": channel, "customerId": customer, "body": text("Received KES 5"), "paymentId": theirs}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{receipt}");
    assert_eq!(receipt["paymentId"], json!(theirs), "{receipt}");
    let receipt = receipt["id"].as_str().unwrap().to_owned();
    delivered(&env, &receipt).await;
    let (status, by_number) = env
        .send(&json!({"channelId": channel, "customerNumber": CUSTOMER, "body": text("Thank you"), "paymentId": theirs}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{by_number}");
    delivered(&env, by_number["id"].as_str().unwrap()).await;
    let (_, page) = env.server.get(&app_key, &format!("/v1/customers/{customer}/timeline")).await;
    let on_timeline = page["items"].as_array().unwrap().iter().find(|item| item["id"] == receipt);
    assert_eq!(on_timeline.unwrap()["paymentId"], json!(theirs), "{page}");
    assert_eq!(env.balance(&purse).await, "13.40/13.40");
    let taken = env.at.sms_requests().len();
    assert_eq!(taken, 2);

    // Another org's payment.
    let (other_org_key, _) = common::other_org(&env.server).await;
    let mut purses = Vec::new();
    for name in ["a", "b"] {
        let new = json!({"currencyCode": "KES", "name": name, "overdraftLimit": "100"});
        let (status, body) = env.server.post(&other_org_key, "/v1/purses", &new).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        purses.push(json!({"purse": {"purseId": body["purseId"]}}));
    }
    let another_org_s = paid(&env, &other_org_key, &purses[0], &purses[1]).await;

    let missing = uuid::Uuid::now_v7().to_string();
    for (payment, what) in [
        (&missing, "no payment has this id"),
        (&someone_elses, "another customer's payment"),
        (&between_purses, "a payment of no customer"),
        (&another_org_s, "another org's payment"),
        // A message's cost is a transfer under the message's id, linked to the customer, but
        // it is not a payment the message can be about.
        (&receipt, "a message, not a payment"),
    ] {
        for to in [json!({"customerId": customer}), json!({"customerNumber": CUSTOMER})] {
            let mut request = json!({"channelId": channel, "body": text("About your payment"), "paymentId": payment});
            request.as_object_mut().unwrap().extend(to.as_object().unwrap().clone());
            let (status, body) = env.send(&request).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("not_found")),
                "{what}: {body}"
            );
        }
    }
    // Nothing was queued, reserved or sent for them.
    assert_eq!(env.balance(&purse).await, "13.40/13.40");
    assert!(env.at.settle(Duration::from_secs(10)).await);
    assert_eq!(env.at.sms_requests().len(), taken);
    let (_, events) = env
        .server
        .get(&env.server.org_key, "/v1/events?types=message.status_changed&limit=100")
        .await;
    let queued =
        events["events"].as_array().unwrap().iter().filter(|e| e["data"]["status"] == "queued");
    assert_eq!(queued.count(), 2, "{events}");
}

#[tokio::test]
async fn a_message_s_context_cannot_name_a_message() {
    let env = start().await;
    let (channel, purse) = channel(&env).await;
    let customer = common::customer(&env.server, CUSTOMER).await;
    let activity = json!({"source": "web-shop", "sessionId": "s1", "key": "cart_nudge"});
    // A context without one is applied with the message's reservation.
    let (status, first) = env
        .send(&json!({"channelId": channel, "customerId": customer, "body": text("Your cart"), "context": {"activity": activity}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first = first["id"].as_str().unwrap().to_owned();
    delivered(&env, &first).await;
    assert_eq!(env.balance(&purse).await, "9.20/9.20");

    // With a `messageId`, the customer's own message or none at all: refused, whatever else
    // it carries.
    let missing = uuid::Uuid::now_v7().to_string();
    for context in [
        json!({"messageId": first}),
        json!({"messageId": missing}),
        json!({"messageId": first, "customerId": customer, "activity": activity}),
    ] {
        let request = json!({"channelId": channel, "customerId": customer, "body": text("Again"), "context": context});
        let (status, body) = env.send(&request).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body")),
            "{context}: {body}"
        );
        assert!(body["detail"].as_str().unwrap().contains("cannot name a message"), "{body}");
    }
    // Nothing reserved or sent, and the refused contexts' activity was not recorded.
    assert_eq!(env.balance(&purse).await, "9.20/9.20");
    assert!(env.at.settle(Duration::from_secs(10)).await);
    assert_eq!(env.at.sms_requests().len(), 1);
    let (_, page) =
        env.server.get(&env.server.app_key, &format!("/v1/customers/{customer}/timeline")).await;
    let items = page["items"].as_array().unwrap();
    let activities: Vec<&Value> = items.iter().filter(|item| item["type"] == "activity").collect();
    assert_eq!(activities.len(), 1, "{page}");
    assert_eq!(activities[0]["key"], "cart_nudge", "{page}");
}

/// An SMS channel at the simulator with a number of its own: priced and paid by `purse`, or
/// free; its customers opted in first when `consent_required`. Its id.
async fn sms_channel(
    env: &Env,
    number: &str,
    purse: Option<&str>,
    consent_required: bool,
) -> String {
    let mut new = json!({
        "channel": "sms", "provider": "africastalking", "channelNumber": number,
        "baseUrl": env.at_url, "credentials": {"username": "sandbox", "apiKey": "at-api-key"},
        "unitPrice": {"currencyCode": "KES", "amount": if purse.is_some() { "0.80" } else { "0" }},
        "consentRequired": consent_required,
    });
    if let Some(purse) = purse {
        new["purseId"] = json!(purse);
    }
    let (status, body) = env.server.post(&env.server.org_key, "/v1/messaging-channels", &new).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The org's customers as the database holds them, each with its numbers.
async fn customers_in_db(env: &Env) -> Vec<(uuid::Uuid, Vec<String>)> {
    let client = env.server.db.pool().get().await.unwrap();
    let rows = client
        .query(
            "SELECT c.id, coalesce(array_agg(n.number ORDER BY n.number)
                 FILTER (WHERE n.number IS NOT NULL), '{}')
             FROM customers c
             LEFT JOIN customer_numbers n ON n.org_id = c.org_id AND n.customer_id = c.id
             WHERE c.org_id = $1 GROUP BY c.id ORDER BY c.id",
            &[&env.server.org.0],
        )
        .await
        .unwrap();
    rows.iter().map(|row| (row.get(0), row.get(1))).collect()
}

/// The org's events of `types` (comma-separated), oldest first.
async fn told(env: &Env, types: &str) -> Vec<Value> {
    let path = format!("/v1/events?limit=500&types={types}");
    let (status, page) = env.server.get(&env.server.org_key, &path).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_refused_message_to_a_new_number_leaves_no_customer_and_tells_nothing() {
    let env = start().await;
    let (channel, purse) = channel(&env).await;
    let (status, empty) = env
        .server
        .post(&env.server.org_key, "/v1/purses", &json!({"currencyCode": "KES", "name": "empty"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{empty}");
    let empty = empty["purseId"].as_str().unwrap().to_owned();
    let unpaid = sms_channel(&env, "21526", Some(&empty), false).await;
    let opt_in = sms_channel(&env, "21527", None, true).await;
    let missing = uuid::Uuid::now_v7().to_string();
    let activity = json!({"source": "", "sessionId": "s1", "key": "cart_nudge"});
    // Each to a number no customer holds: checked as a customer with nothing, and refused.
    for (request, code) in [
        (json!({"channelId": opt_in, "customerNumber": "+254711000101"}), "no_consent"),
        (json!({"channelId": unpaid, "customerNumber": "+254711000102"}), "insufficient_credits"),
        (
            json!({"channelId": channel, "customerNumber": "+254711000103", "replyTo": missing}),
            "not_found",
        ),
        (
            json!({"channelId": channel, "customerNumber": "+254711000104", "paymentId": missing}),
            "not_found",
        ),
        (
            json!({"channelId": channel, "customerNumber": "+254711000105", "context": {"activity": activity}}),
            "invalid_source",
        ),
    ] {
        let mut request = request;
        request["body"] = text("Your order is ready");
        let (status, body) = env.send(&request).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{request}: {body}"
        );
    }
    // Nothing was made, told, reserved or sent.
    assert_eq!(customers_in_db(&env).await, []);
    assert_eq!(told(&env, "customer.created,message.status_changed").await, Vec::<Value>::new());
    assert_eq!(env.balance(&purse).await, "10.00/10.00");
    assert_eq!(env.balance(&empty).await, "0.00/0.00");
    assert!(env.at.settle(Duration::from_secs(10)).await);
    assert!(env.at.sms_requests().is_empty());

    // Taken: the customer is made with the message, and told before it.
    let number = "+254711000106";
    let (status, sent) = env
        .send(&json!({"channelId": channel, "customerNumber": number, "body": text("Welcome")}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let customer = sent["customerId"].as_str().unwrap().to_owned();
    let made = customers_in_db(&env).await;
    assert_eq!(made, [(customer.parse().unwrap(), vec![number.to_owned()])]);
    let mut events = told(&env, "customer.created,message.status_changed").await;
    // The later statuses are the worker's, whenever it sends.
    events.retain(|e| e["type"] == "customer.created" || e["data"]["status"] == "queued");
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["data"]["customerId"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("customer.created", customer.as_str()), ("message.status_changed", customer.as_str())]
    );
    assert_eq!(events[0]["data"]["number"], number, "{events:?}");
    delivered(&env, sent["id"].as_str().unwrap()).await;

    // Several at once to another new number: one customer, every message theirs.
    let number = "+254711000107";
    let request = json!({"channelId": channel, "customerNumber": number, "body": text("Hello")});
    let (a, b, c, d) = tokio::join!(
        env.send(&request),
        env.send(&request),
        env.send(&request),
        env.send(&request)
    );
    let answers = [a, b, c, d];
    let mut theirs: Vec<&str> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
            body["customerId"].as_str().unwrap()
        })
        .collect();
    theirs.dedup();
    assert_eq!(theirs.len(), 1, "{answers:?}");
    let made = customers_in_db(&env).await;
    assert_eq!(made.len(), 2, "{made:?}");
    assert!(made.contains(&(theirs[0].parse().unwrap(), vec![number.to_owned()])), "{made:?}");
    assert_eq!(told(&env, "customer.created").await.len(), 2);
}

#[tokio::test]
async fn a_free_channel_applies_a_message_s_context_with_the_message_or_not_at_all() {
    let env = start().await;
    let channel = env.channel("sms", SHORT_CODE, None).await["id"].as_str().unwrap().to_owned();
    let customer = common::customer(&env.server, CUSTOMER).await;
    let context = |key: &str, tier: &str| {
        json!({
            "activity": {"source": "web-shop", "sessionId": "s1", "key": key, "properties": {"items": "2"}},
            "metadata": {"tier": {"string": tier}},
            "appData": {"string": key},
        })
    };
    let state = |customer: String| {
        let server = &env.server;
        async move {
            let (status, state) =
                server.get(&server.app_key, &format!("/v1/customers/{customer}")).await;
            assert_eq!(status, StatusCode::OK, "{state}");
            let (status, page) =
                server.get(&server.app_key, &format!("/v1/customers/{customer}/timeline")).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let activities: Vec<Value> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|item| item["type"] == "activity")
                .map(|item| item["key"].clone())
                .collect();
            (state["metadata"].clone(), state["appData"]["value"].clone(), activities)
        }
    };

    // Queued: all of it, with the message.
    let (status, sent) = env
        .send(&json!({"channelId": channel, "customerId": customer, "body": text("Your cart"), "context": context("cart_nudge", "gold")}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    delivered(&env, sent["id"].as_str().unwrap()).await;
    let applied = (
        json!({"tier": {"string": "gold"}}),
        json!({"string": "cart_nudge"}),
        vec![json!("cart_nudge")],
    );
    assert_eq!(state(customer.clone()).await, applied);

    // Refused, for the key that sent it (an activity is an app's) or for the customer's
    // consent: none of it.
    let again = json!({"channelId": channel, "customerId": customer, "body": text("Again"), "context": context("second", "platinum")});
    let (status, body) = env.server.post(&env.server.org_key, "/v1/messages", &again).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("app_key_required")),
        "{body}"
    );
    let (status, body) = env
        .server
        .post(
            &env.server.org_key,
            "/v1/messaging-consent",
            &json!({"channelId": channel, "customerId": customer, "allowed": false}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = env.send(&again).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_consent")),
        "{body}"
    );
    assert_eq!(state(customer.clone()).await, applied);

    // To a new number: the customer is made with the message and its context.
    let (status, sent) = env
        .send(&json!({"channelId": channel, "customerNumber": OTHER, "body": text("Welcome"), "context": context("welcome", "silver")}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let made = sent["customerId"].as_str().unwrap().to_owned();
    assert_ne!(made, customer);
    delivered(&env, sent["id"].as_str().unwrap()).await;
    assert_eq!(
        state(made).await,
        (
            json!({"tier": {"string": "silver"}}),
            json!({"string": "welcome"}),
            vec![json!("welcome")]
        )
    );
    assert!(env.at.settle(Duration::from_secs(10)).await);
    assert_eq!(env.at.sms_requests().len(), 2);
}

#[tokio::test]
async fn a_channel_whose_address_the_operator_no_longer_allows_sends_nothing_and_charges_nothing() {
    let env = start().await;
    // Made while the simulator's loopback address is allowed.
    let (channel, purse) = channel(&env).await;
    let customer = common::customer(&env.server, CUSTOMER).await;
    // The operator restarts without allowing it: only the provider's own hosts.
    let strict = hazina_server::messaging::Settings {
        provider_hosts: hazina_server::payments::ProviderHosts::default(),
        ..messaging_test_settings()
    };
    env.server.messaging.configure(strict);
    let (status, sent) = env
        .send(&json!({"channelId": channel, "customerId": customer, "body": text("Your order")}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();
    // Tried, and kept for later as after an outage: nothing left, the cost held, not taken.
    let held = wait_for("the send put off", Duration::from_secs(20), || async {
        let message = env.message(&id).await;
        let reason = message["reason"].as_str().unwrap_or_default().to_owned();
        reason.contains("does not allow").then_some(message)
    })
    .await
    .unwrap();
    assert_eq!(held["status"], "queued", "{held}");
    assert_eq!(super::statuses(&held), ["queued"]);
    assert!(env.at.settle(Duration::from_secs(2)).await);
    assert!(env.at.sms_requests().is_empty());
    assert_eq!(env.balance(&purse).await, "10.00/9.20");

    // Allowed again: sent once, delivered, charged once.
    env.server.messaging.configure(messaging_test_settings());
    let message = delivered(&env, &id).await;
    assert_eq!(super::statuses(&message), ["queued", "sent", "delivered"]);
    assert_eq!(env.at.sms_requests().len(), 1);
    assert_eq!(env.balance(&purse).await, "9.20/9.20");
}
