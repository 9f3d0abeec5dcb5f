//! Messages on the customer timeline, over real HTTP with the Africa's Talking simulator: an
//! SMS out and its reports, the customer's reply in, a payment whose context names the reply
//! and a receipt about the payment, merged with an activity newest first, linked both ways
//! (`messageId` on the payment, `paymentId` on the message), and paged across kinds.

use std::time::Duration;

use hazina_simulator::africastalking::{Simulator, SmsScript};
use hazina_tests::{ApiServer, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common;

const CUSTOMER: &str = "+254711000077";
const OTHER: &str = "+254711000078";
const SHORT_CODE: &str = "21525";
const API_KEY: &str = "at-api-key";

struct Env {
    server: ApiServer,
    at: Simulator,
    at_url: String,
}

/// An SMS channel: its id and the URL of its delivery reports.
struct Channel {
    id: String,
    reports: String,
}

async fn start() -> Env {
    let server = ApiServer::start().await;
    let (at, at_url) = common::africastalking(API_KEY).await;
    Env { server, at, at_url }
}

impl Env {
    /// A float purse that may go below zero, and a messaging purse it funded with KES 100.
    async fn purses(&self) -> (String, String) {
        common::funded_purse(&self.server, "messaging", "100.00").await
    }

    /// A priced SMS channel paid from `purse`. The customer's texts come in through its
    /// inbound URL; its delivery reports are the test's to send ([`Env::sms_delivered`]).
    async fn sms_channel(&self, purse: &str) -> Channel {
        let new = json!({
            "channel": "sms", "provider": "africastalking", "channelNumber": SHORT_CODE,
            "baseUrl": self.at_url,
            "credentials": {"username": "sandbox", "apiKey": API_KEY},
            "unitPrice": {"currencyCode": "KES", "amount": "0.80"},
            "purseId": purse,
        });
        let (status, body) =
            self.server.post(&self.server.org_key, "/v1/messaging-channels", &new).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let urls = &body["callbackUrls"];
        let url = |name: &str| format!("{}{}", self.server.base, urls[name].as_str().unwrap());
        let inbound = url("smsInbound");
        self.at.configure(|config| config.inbound_sms_url = Some(inbound));
        self.at.script_sms(CUSTOMER, SmsScript::NoReport);
        Channel { id: body["id"].as_str().unwrap().to_owned(), reports: url("smsDeliveryReports") }
    }

    /// Sends an SMS, waits until Africa's Talking has taken it (`sent`), then reports it
    /// delivered as Africa's Talking does and waits until it is; its id. (The report is sent
    /// once the send's answer is recorded, so that this test does not hang on a report that
    /// beats it: that race is the messaging tests' to cover.)
    async fn sms_delivered(&self, channel: &Channel, request: &Value) -> String {
        let mut request = request.clone();
        request["channelId"] = json!(channel.id);
        let (status, sent) = self.server.post(&self.server.app_key, "/v1/messages", &request).await;
        assert_eq!(status, StatusCode::CREATED, "{sent}");
        let id = sent["id"].as_str().unwrap().to_owned();
        let taken = self.wait_for_status(&id, "sent").await;
        let provider_id = taken["providerMessageId"].as_str().unwrap();
        let form = format!(
            "id={provider_id}&status=Success&phoneNumber=%2B{}&networkCode=63902&retryCount=0",
            CUSTOMER.trim_start_matches('+')
        );
        let response = self
            .server
            .http
            .post(&channel.reports)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{response:?}");
        self.wait_for_status(&id, "delivered").await;
        id
    }

    /// The message once its status is `status`.
    async fn wait_for_status(&self, id: &str, status: &str) -> Value {
        let path = format!("/v1/messages/{id}");
        // A deadline, not a timing: the whole suite shares two cores.
        let reached = wait_for(status, Duration::from_secs(60), || async {
            let (_, message) = self.server.get(&self.server.app_key, &path).await;
            (message["status"] == status).then_some(message)
        })
        .await;
        match reached {
            Ok(message) => message,
            Err(error) => {
                let (_, message) = self.server.get(&self.server.app_key, &path).await;
                panic!("{error}: {message}");
            }
        }
    }

    /// The customer texts `text` to the short code; the id of the message recorded.
    async fn reply(&self, text: &str) -> String {
        let delivery = self.at.inject_inbound(CUSTOMER, SHORT_CODE, text, None).await.unwrap();
        assert!(delivery.succeeded(), "{delivery:?}");
        let (status, events) =
            self.server.get(&self.server.org_key, "/v1/events?types=message.received").await;
        assert_eq!(status, StatusCode::OK, "{events}");
        let received = events["events"].as_array().unwrap();
        let last = received.last().unwrap();
        assert_eq!(last["data"]["parts"][0]["text"], text, "{events}");
        last["data"]["messageId"].as_str().unwrap().to_owned()
    }

    async fn timeline(&self, customer: &str, query: &str) -> Value {
        let path = format!("/v1/customers/{customer}/timeline{query}");
        let (status, page) = self.server.get(&self.server.app_key, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page
    }

    /// The ids of a customer's timeline read `limit` at a time following the cursors, and how
    /// many pages that took.
    async fn every_page(&self, customer: &str, limit: usize) -> (Vec<String>, usize) {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        for pages in 1..100 {
            let query = match &cursor {
                Some(cursor) => format!("?limit={limit}&cursor={cursor}"),
                None => format!("?limit={limit}"),
            };
            let page = self.timeline(customer, &query).await;
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= limit, "{page}");
            ids.extend(items.iter().map(item_id));
            match page["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return (ids, pages),
            }
        }
        panic!("the cursor does not advance");
    }
}

fn item_id(item: &Value) -> String {
    let id = match item["type"].as_str() {
        Some("activity") => &item["activityId"],
        Some("payment") => &item["transactionId"],
        Some("message") => &item["id"],
        _ => panic!("an item of no known type: {item}"),
    };
    id.as_str().unwrap().to_owned()
}

fn wallet(customer: &str) -> Value {
    json!({"wallet": {"customerId": customer, "walletId": "main"}})
}

#[tokio::test]
async fn messages_sit_on_the_timeline_beside_activities_and_payments_linked_both_ways() {
    let env = start().await;
    let (float, purse) = env.purses().await;
    let channel = env.sms_channel(&purse).await;
    let customer = common::customer(&env.server, CUSTOMER).await;
    common::wallet(&env.server, &customer, "main").await;

    let (status, activity) = env
        .server
        .post(
            &env.server.app_key,
            &format!("/v1/customers/{customer}/activities"),
            &json!({"source": "web-shop", "sessionId": "s1", "key": "checkout"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{activity}");
    let offer = env
        .sms_delivered(
            &channel,
            &json!({
                "customerId": customer,
                "body": {"kind": "text", "text": "Top up KES 250 for order 10452? Reply YES"},
            }),
        )
        .await;
    let reply = env.reply("YES").await;
    let mut payment = common::pay(&json!({"purse": {"purseId": float}}), &wallet(&customer), "250");
    payment["context"] = json!({"messageId": reply});
    let (status, paid) = env.server.post(&env.server.app_key, "/v1/payments", &payment).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    let paid_at = paid["createdAt"].clone();
    let paid = paid["transactionId"].as_str().unwrap().to_owned();
    let receipt = env
        .sms_delivered(
            &channel,
            &json!({
                "customerId": customer,
                "body": {"kind": "text", "text": "Received KES 250. Thank you"},
                "replyTo": reply, "paymentId": paid,
            }),
        )
        .await;

    // Every item at the time its own resource gives, newest first (ids break ties): a
    // message's is when it was recorded, a payment's the ledger's. (The ledger's time may
    // trail the database's clock by a moment, so the order is the recorded times', which is
    // also the order things happened here unless the machine is very slow.)
    let mut known = vec![
        (activity["at"].clone(), activity["activityId"].as_str().unwrap().to_owned()),
        (paid_at, paid.clone()),
    ];
    for message in [&offer, &reply, &receipt] {
        let (_, view) =
            env.server.get(&env.server.app_key, &format!("/v1/messages/{message}")).await;
        known.push((view["createdAt"].clone(), message.clone()));
    }
    let time = |at: &Value| at.as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    known.sort_by(|(a, a_id), (b, b_id)| (time(b), b_id).cmp(&(time(a), a_id)));
    let expected: Vec<String> = known.iter().map(|(_, id)| id.clone()).collect();
    // The receipt came after everything, the activity before: on any machine.
    assert_eq!(expected.first(), Some(&receipt), "{known:?}");
    assert_eq!(
        expected.last().and_then(|id| activity["activityId"].as_str().map(|a| a == id)),
        Some(true)
    );

    // The messages' costs (transfers under their ids) are not shown a second time as payments.
    let page = env.timeline(&customer, "").await;
    assert_eq!(page["nextCursor"], Value::Null, "{page}");
    let items = page["items"].as_array().unwrap();
    let ids: Vec<String> = items.iter().map(item_id).collect();
    assert_eq!(ids, expected, "{page}");
    for (item, (at, _)) in items.iter().zip(&known) {
        assert_eq!(time(&item["at"]), time(at), "{item}");
    }
    let item = |id: &str| items.iter().find(|item| item_id(item) == id).unwrap();
    let kinds: Vec<&str> =
        [&receipt, &paid, &reply, &offer].map(|id| item(id)["type"].as_str().unwrap()).to_vec();
    assert_eq!(kinds, ["message", "payment", "message", "message"]);

    // The links: the payment names the reply that led to it, the receipt the payment (and the
    // reply it answers).
    let (receipt_item, payment_item, reply_item, offer_item) =
        (item(&receipt), item(&paid), item(&reply), item(&offer));
    assert_eq!(payment_item["messageId"], json!(reply), "{payment_item}");
    assert_eq!(payment_item["status"], "success");
    assert_eq!(payment_item["creditParty"], wallet(&customer));
    assert_eq!(receipt_item["paymentId"], json!(paid), "{receipt_item}");
    assert_eq!(receipt_item["replyTo"], json!(reply), "{receipt_item}");
    assert_eq!(offer_item["paymentId"], Value::Null, "{offer_item}");
    // Each message as it is: direction, channel, status, body.
    for (item, direction, status, code) in [
        (receipt_item, "outbound", "delivered", 300),
        (reply_item, "inbound", "received", 302),
        (offer_item, "outbound", "delivered", 300),
    ] {
        assert_eq!(item["direction"], direction, "{item}");
        assert_eq!(item["channel"], "sms", "{item}");
        assert_eq!(item["channelNumber"], SHORT_CODE, "{item}");
        assert_eq!((&item["status"], &item["statusCode"]), (&json!(status), &json!(code)));
        assert_eq!(item["sessionId"], Value::Null, "{item}");
    }
    assert_eq!(offer_item["body"]["text"], "Top up KES 250 for order 10452? Reply YES");
    assert_eq!(reply_item["body"][0]["text"], "YES", "{reply_item}");
    // The payment's transfer keeps the message in its context.
    let (_, transfer) = env.server.get(&env.server.app_key, &format!("/v1/transfers/{paid}")).await;
    assert_eq!(transfer["context"]["payment"]["messageId"], json!(reply), "{transfer}");

    pages_across_kinds(&env, &customer, &expected, &reply).await;
}

/// The customer's timeline a page at a time, across kinds, is `expected` in the same order;
/// a cursor that ends on `message` goes on from it.
async fn pages_across_kinds(env: &Env, customer: &str, expected: &[String], message: &str) {
    // A page at a time, across kinds: the same items in the same order.
    assert_eq!(env.every_page(customer, 2).await, (expected.to_vec(), 3));
    assert_eq!(env.every_page(customer, 1).await, (expected.to_vec(), 5));
    // A cursor that ends on a message goes on from it.
    let at_message = expected.iter().position(|id| id == message).unwrap();
    let first = env.timeline(customer, &format!("?limit={}", at_message + 1)).await;
    assert_eq!(item_id(&first["items"][at_message]), message);
    let cursor = first["nextCursor"].as_str().unwrap();
    let rest = env.timeline(customer, &format!("?limit=10&cursor={cursor}")).await;
    let ids: Vec<String> = rest["items"].as_array().unwrap().iter().map(item_id).collect();
    assert_eq!(ids, expected[at_message + 1..], "after {cursor}: {rest}");
}

#[tokio::test]
async fn a_payment_naming_a_message_not_of_its_customer_or_org_is_refused_and_moves_nothing() {
    let env = start().await;
    let (float, purse) = env.purses().await;
    let channel = env.sms_channel(&purse).await;
    let customer = common::customer(&env.server, CUSTOMER).await;
    let other = common::customer(&env.server, OTHER).await;
    common::wallet(&env.server, &other, "main").await;
    let sent = env
        .sms_delivered(
            &channel,
            &json!({
                "customerId": customer,
                "body": {"kind": "text", "text": "Your order has shipped"},
            }),
        )
        .await;
    let from_float = json!({"purse": {"purseId": float}});
    let to_purse = json!({"purse": {"purseId": purse}});
    let paying = |to: &Value, context: Value| {
        let mut payment = common::pay(&from_float, to, "5");
        payment["context"] = context;
        payment
    };
    let missing = uuid::Uuid::now_v7().to_string();
    let cases = [
        // No message of the org has this id.
        paying(&wallet(&other), json!({"messageId": missing})),
        // The message is another customer's: the wallet's owner, or the customer named.
        paying(&wallet(&other), json!({"messageId": sent})),
        paying(&to_purse, json!({"customerId": other, "messageId": sent})),
        paying(&wallet(&other), json!({"customerId": other, "messageId": sent})),
    ];
    for payment in &cases {
        let (status, body) = env.server.post(&env.server.app_key, "/v1/payments", payment).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("message_not_found")),
            "{payment} → {body}"
        );
    }
    // Another org cannot name it either.
    let (other_org_key, _) = common::other_org(&env.server).await;
    let mut theirs = Vec::new();
    for name in ["a", "b"] {
        let new = json!({"currencyCode": "KES", "name": name, "overdraftLimit": "100"});
        let (status, body) = env.server.post(&other_org_key, "/v1/purses", &new).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        theirs.push(json!({"purse": {"purseId": body["purseId"]}}));
    }
    let (a, b) = (&theirs[0], &theirs[1]);
    let mut payment = common::pay(a, b, "5");
    payment["context"] = json!({"messageId": sent});
    let (status, body) = env.server.post(&other_org_key, "/v1/payments", &payment).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("message_not_found")),
        "{body}"
    );
    // Nothing moved, and the other customer's timeline is empty.
    let (_, account) =
        env.server.get(&env.server.org_key, &format!("/v1/customers/{other}/wallets/main")).await;
    assert_eq!(account["balance"]["actual"], "0.00", "{account}");
    let page = env.timeline(&other, "").await;
    assert_eq!(page["items"], json!([]), "{page}");
    // Between purses, with no customer, a message of the org is enough; so is the customer's
    // own, named.
    let (status, body) = env
        .server
        .post(&env.server.app_key, "/v1/payments", &paying(&to_purse, json!({"messageId": sent})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let named = json!({"customerId": customer, "messageId": sent});
    let (status, body) =
        env.server.post(&env.server.app_key, "/v1/payments", &paying(&to_purse, named)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
