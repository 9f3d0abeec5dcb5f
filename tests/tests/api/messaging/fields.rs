//! Two fields of `POST /v1/messages` that name other things, over real HTTP with the Africa's
//! Talking simulator: `paymentId` must be one of the customer's payments in the org, and a
//! message's `context` cannot name a message. A refused one sends nothing and charges nothing.

use std::time::Duration;

use hazina_tests::wait_for;
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
