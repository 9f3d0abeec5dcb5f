//! Messaging end to end over real HTTP: the API and its worker on one side, the Africa's
//! Talking simulator on the other (its own port), delivery reports, inbound messages and
//! USSD steps travelling back over loopback to the channel's callback URLs. The other
//! providers' channels are in `channels`.

mod channels;
mod email_tls;
mod fields;
mod messenger;
mod outage;
mod replies;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hazina_simulator::africastalking::{Simulator, SmsScript, UssdEnding};
use hazina_tests::{ApiServer, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CUSTOMER: &str = "+254711000001";
const SHORT_CODE: &str = "21525";
const API_KEY: &str = "at-api-key";

pub(super) struct Env {
    pub(super) server: ApiServer,
    pub(super) at: Simulator,
    pub(super) at_url: String,
}

pub(super) async fn start() -> Env {
    let server = ApiServer::start().await;
    let (at, at_url) = crate::common::africastalking(API_KEY).await;
    Env { server, at, at_url }
}

impl Env {
    /// A purse holding `amount` KES.
    pub(super) async fn purse(&self, amount: &str) -> String {
        crate::common::funded_purse(&self.server, "messaging", amount).await.1
    }

    /// An Africa's Talking channel whose callbacks point back at the server.
    pub(super) async fn channel(&self, channel: &str, number: &str, purse: Option<&str>) -> Value {
        let mut new = json!({
            "channel": channel, "provider": "africastalking", "channelNumber": number,
            "baseUrl": self.at_url,
            "credentials": {"username": "sandbox", "apiKey": API_KEY},
            "unitPrice": {"currencyCode": "KES", "amount": if purse.is_some() { "0.80" } else { "0" }},
        });
        if let Some(purse) = purse {
            new["purseId"] = json!(purse);
        }
        let (status, body) =
            self.server.post(&self.server.org_key, "/v1/messaging-channels", &new).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let urls = &body["callbackUrls"];
        let at = |name: &str| urls[name].as_str().map(|path| format!("{}{path}", self.server.base));
        self.at.configure(|config| {
            if let Some(url) = at("smsDeliveryReports") {
                config.delivery_report_url = Some(url);
            }
            if let Some(url) = at("smsInbound") {
                config.inbound_sms_url = Some(url);
            }
            if let Some(url) = at("ussd") {
                config.ussd_url = Some(url);
            }
            if let Some(url) = at("ussdSessionEnd") {
                config.ussd_end_url = Some(url);
            }
            if let Some(url) = at("voice") {
                config.voice_url = Some(url);
            }
        });
        body
    }

    pub(super) async fn balance(&self, account: &str) -> String {
        let (status, body) =
            self.server.get(&self.server.org_key, &format!("/v1/accounts/{account}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        format!(
            "{}/{}",
            body["balance"]["actual"].as_str().unwrap(),
            body["balance"]["pending"].as_str().unwrap()
        )
    }

    pub(super) async fn message(&self, id: &str) -> Value {
        let (status, body) =
            self.server.get(&self.server.app_key, &format!("/v1/messages/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The statuses `message.status_changed` events told, in order.
    pub(super) async fn told_statuses(&self) -> Vec<String> {
        let path = "/v1/events?types=message.status_changed&limit=50";
        let (status, events) = self.server.get(&self.server.org_key, path).await;
        assert_eq!(status, StatusCode::OK, "{events}");
        (events["events"].as_array().unwrap().iter())
            .map(|event| event["data"]["status"].as_str().unwrap().to_owned())
            .collect()
    }

    pub(super) async fn send(&self, body: &Value) -> (StatusCode, Value) {
        self.server.post(&self.server.app_key, "/v1/messages", body).await
    }
}

pub(super) fn statuses(message: &Value) -> Vec<String> {
    message["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_sms_goes_out_on_the_wire_its_reports_apply_once_in_order_and_its_cost_is_posted() {
    let env = start().await;
    let purse = env.purse("100.00").await;
    let channel = env.channel("sms", SHORT_CODE, Some(&purse)).await;
    let channel_id = channel["id"].as_str().unwrap();
    // Success then a late Sent: the late one must not win.
    env.at.script_sms(CUSTOMER, SmsScript::OutOfOrder);
    let text = "Your cart is waiting: 2 items, KES 1,250.";
    let (status, sent) = env
        .send(&json!({"channelId": channel_id, "customerNumber": CUSTOMER, "body": {"kind": "text", "text": text}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(sent["history"][0]["status"], "queued", "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();
    let delivered = wait_for("the message delivered", Duration::from_secs(20), || async {
        let message = env.message(&id).await;
        (message["status"] == "delivered" && env.at.settle(Duration::from_millis(10)).await)
            .then_some(message)
    })
    .await
    .unwrap();
    // The request on the wire: our short code, the customer, the text.
    let requests = env.at.sms_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].recipients(), vec![CUSTOMER]);
    assert_eq!(requests[0].form.message, text);
    assert_eq!(requests[0].form.from.as_deref(), Some(SHORT_CODE));
    assert_eq!(delivered["providerMessageId"], json!(requests[0].message_ids[0]));
    // Applied in the order of their meaning, each once: the late `sent` changed nothing.
    let message = env.message(&id).await;
    assert_eq!(message["status"], "delivered");
    assert_eq!(statuses(&message), vec!["queued", "sent", "delivered"]);
    // The provider's cost (one segment at KES 0.80) moved from the purse to the clearing
    // account, and nothing is left reserved (actual and with-pending balances agree).
    assert_eq!(message["cost"]["amount"], "0.80");
    assert_eq!(env.balance(&purse).await, "99.20/99.20");
    let clearing = env.balance(channel["clearingAccountId"].as_str().unwrap()).await;
    assert!(clearing == "0.80/0.80" || clearing == "-0.80/-0.80", "{clearing}");
    // Each change was an event for the customer.
    assert_eq!(env.told_statuses().await, ["queued", "sent", "delivered"]);
}

#[tokio::test]
async fn a_provider_outage_is_retried_until_taken_and_sends_once() {
    let env = start().await;
    let purse = env.purse("10.00").await;
    let channel = env.channel("sms", SHORT_CODE, Some(&purse)).await;
    env.at.fail_next_sends(2);
    let (status, sent) = env
        .send(&json!({"channelId": channel["id"], "customerNumber": CUSTOMER, "body": {"kind": "text", "text": "hello"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();
    wait_for("the message delivered", Duration::from_secs(20), || async {
        (env.message(&id).await["status"] == "delivered").then_some(())
    })
    .await
    .unwrap();
    assert_eq!(env.at.outage_hits(), 2);
    assert_eq!(env.at.sms_requests().len(), 1, "taken once");
    assert_eq!(env.balance(&purse).await, "9.20/9.20");
}

#[tokio::test]
async fn bad_messages_are_refused_with_stable_codes_and_change_nothing() {
    let env = start().await;
    let purse = env.purse("0.50").await;
    let channel = env.channel("sms", SHORT_CODE, Some(&purse)).await;
    let channel_id = channel["id"].as_str().unwrap();
    let text = |t: &str| json!({"kind": "text", "text": t});
    let cases = [
        (
            json!({"channelId": uuid::Uuid::now_v7(), "customerNumber": CUSTOMER, "body": text("hi")}),
            "channel_not_found",
        ),
        (
            json!({"channelId": channel_id, "customerNumber": "0711", "body": text("hi")}),
            "invalid_phone_number",
        ),
        (
            json!({"channelId": channel_id, "customerNumber": CUSTOMER, "body": text(&"x".repeat(1531))}),
            "message_too_long",
        ),
        (
            json!({"channelId": channel_id, "customerNumber": CUSTOMER, "body": text(&"中".repeat(671))}),
            "message_too_long",
        ),
        (
            json!({"channelId": channel_id, "customerNumber": CUSTOMER, "body": {"kind": "email", "subject": "s", "plain": "p"}}),
            "unsupported_body",
        ),
        // One segment costs KES 0.80; the purse holds 0.50.
        (
            json!({"channelId": channel_id, "customerNumber": CUSTOMER, "body": text("hi")}),
            "insufficient_credits",
        ),
    ];
    for (request, code) in cases {
        let (status, body) = env.send(&request).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{request} → {body}");
        assert_eq!(body["code"], code, "{request} → {body}");
    }
    assert_eq!(env.balance(&purse).await, "0.50/0.50");
    assert!(env.at.sms_requests().is_empty());
}

#[tokio::test]
async fn a_customer_who_texts_stop_is_not_sent_to_and_start_allows_again() {
    let env = start().await;
    let channel = env.channel("sms", SHORT_CODE, None).await;
    let delivery = env.at.inject_inbound(CUSTOMER, SHORT_CODE, "STOP", None).await.unwrap();
    assert!(delivery.succeeded(), "{delivery:?}");
    let request = json!({"channelId": channel["id"], "customerNumber": CUSTOMER, "body": {"kind": "text", "text": "sale!"}});
    let (status, body) = env.send(&request).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_consent")),
        "{body}"
    );
    // The inbound message is an event for the customer, made on first contact.
    let (_, events) = env
        .server
        .get(&env.server.org_key, "/v1/events?types=message.received,messaging.consent_changed")
        .await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["data"]["parts"][0]["text"], "STOP");
    assert_eq!(events[1]["data"]["consent"], "blocked");
    env.at.inject_inbound(CUSTOMER, SHORT_CODE, "start", None).await.unwrap();
    let (status, body) = env.send(&request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        env.at.sms_requests().is_empty() || env.at.sms_requests()[0].recipients() == vec![CUSTOMER]
    );
}

#[tokio::test]
async fn a_callback_without_the_channel_s_token_changes_nothing() {
    let env = start().await;
    let channel = env.channel("sms", SHORT_CODE, None).await;
    let inbound = channel["callbackUrls"]["smsInbound"].as_str().unwrap();
    let forged = inbound.replace(
        channel["callbackUrls"]["smsInbound"].as_str().unwrap().split('/').nth(5).unwrap(),
        "forged-token",
    );
    let response = env
        .server
        .http
        .post(format!("{}{forged}", env.server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("from=%2B254711000001&to={SHORT_CODE}&text=STOP&date=2026-12-07&id=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (_, events) =
        env.server.get(&env.server.org_key, "/v1/events?types=message.received").await;
    assert!(events["events"].as_array().unwrap().is_empty(), "{events}");
}

/// A webhook endpoint that answers USSD steps from a menu: the app's side of a session.
pub(super) async fn ussd_app(env: &Env, slow: bool) -> Arc<Mutex<Vec<Value>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let got = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let got = Arc::clone(&got);
            async move {
                let event: Value = serde_json::from_slice(&body).unwrap_or_default();
                got.lock().unwrap().push(event.clone());
                if slow {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                let input = event["data"]["parts"][0]["text"].as_str().unwrap_or("").to_owned();
                let (text, last) = match input.as_str() {
                    "" => ("Welcome\n1. Balance\n2. Pay", false),
                    "1" => ("Your balance is KES 250", true),
                    "2" => ("Enter amount", false),
                    _ => ("Paid. Thank you", true),
                };
                axum::Json(json!({"body": {"kind": "ussd", "text": text, "isTerminal": last}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (status, body) = env
        .server
        .post(
            &env.server.org_key,
            "/v1/webhook-endpoints",
            &json!({"url": url, "eventTypes": ["message.received"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    seen
}

#[tokio::test]
async fn a_ussd_menu_of_several_steps_is_answered_by_the_app_through_its_webhook() {
    let env = start().await;
    env.channel("ussd", "*384*123#", None).await;
    let seen = ussd_app(&env, false).await;
    let session = env.at.dial(CUSTOMER, "*384*123#", &["2", "150"]).await;
    assert_eq!(
        session.screens,
        vec!["Welcome\n1. Balance\n2. Pay", "Enter amount", "Paid. Thank you"]
    );
    assert_eq!(session.ending, UssdEnding::Completed);
    let steps: Vec<Value> =
        seen.lock().unwrap().iter().map(|e| e["data"]["parts"][0].clone()).collect();
    assert!(steps.len() >= 3, "{steps:?}");
    assert_eq!(steps[0]["kind"], "ussd");
}

#[tokio::test]
async fn a_slow_app_gets_the_fallback_and_the_session_an_app_error() {
    let env = start().await;
    env.channel("ussd", "*384*124#", None).await;
    ussd_app(&env, true).await;
    let session = env.at.dial(CUSTOMER, "*384*124#", &["1"]).await;
    assert_eq!(session.screens.len(), 1, "{session:?}");
    assert!(session.screens[0].starts_with("Sorry"), "{session:?}");
    let (_, events) =
        env.server.get(&env.server.org_key, "/v1/events?types=messaging.session_changed").await;
    let statuses: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"app_error"), "{statuses:?}");
}
