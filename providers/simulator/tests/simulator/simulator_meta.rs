//! The Meta Graph API simulator over real loopback HTTP, driven by the providers' Meta client:
//! WhatsApp and Messenger sends, the 24-hour rule, scripted status webhooks signed with the
//! app secret and read back through the adapters, injected customer messages, the
//! verification handshake, outages, and many sends at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use chrono::{TimeDelta, Utc};
use hazina_providers::http::HttpClient;
use hazina_providers::messaging::{
    Body, DeliveryStatus, InboundPart, Media, MediaType, SendResult, StatusUpdate, Template,
    Verified,
};
use hazina_providers::messenger::{self, MessagingType, WatermarkStatus};
use hazina_providers::meta::{self, GraphError};
use hazina_providers::{Secret, whatsapp};
use hazina_simulator::meta::{
    Config, HandshakeError, MessengerInbound, Outage, Outcome, Product, Script, Simulator,
    WhatsAppInbound,
};
use serde_json::Value;
use tokio::sync::Notify;

use crate::common::{DEADLINE, serve};

const PHONE_NUMBER_ID: &str = "106540352242922";
const CUSTOMER: &str = "+254712345678";
const PSID: &str = "6789012345678901";

/// A webhook receiver that checks signatures and reads bodies through the adapters.
#[derive(Clone, Default)]
struct Receiver {
    app_secret: String,
    verify_token: String,
    whatsapp: Arc<Mutex<Vec<whatsapp::Events>>>,
    messenger: Arc<Mutex<Vec<messenger::Events>>>,
    unsigned: Arc<Mutex<usize>>,
    notify: Arc<Notify>,
}

impl Receiver {
    fn statuses(&self) -> Vec<StatusUpdate> {
        let whatsapp = self.whatsapp.lock().unwrap();
        let messenger = self.messenger.lock().unwrap();
        whatsapp
            .iter()
            .flat_map(|events| events.statuses.clone())
            .chain(messenger.iter().flat_map(|events| events.statuses.clone()))
            .collect()
    }

    fn statuses_of(&self, id: &str) -> Vec<DeliveryStatus> {
        self.statuses()
            .into_iter()
            .filter(|status| status.provider_message_id == id)
            .map(|status| status.status)
            .collect()
    }

    /// Waits until `ready` holds, up to the deadline.
    async fn wait_until(&self, what: &str, ready: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if ready(self) {
                return;
            }
            let woken = tokio::time::timeout_at(deadline, notified).await.is_ok();
            assert!(woken, "{what} did not happen; statuses so far: {:?}", self.statuses());
        }
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let signature = headers.get(meta::SIGNATURE_HEADER).and_then(|value| value.to_str().ok());
    if meta::verify_signature(receiver.app_secret.as_bytes(), signature, &body) != Verified::Yes {
        *receiver.unsigned.lock().unwrap() += 1;
        receiver.notify.notify_waiters();
        return StatusCode::FORBIDDEN;
    }
    if let Ok(events) = whatsapp::read_webhook(&body) {
        receiver.whatsapp.lock().unwrap().push(events);
    } else if let Ok(events) = messenger::read_webhook(&body) {
        receiver.messenger.lock().unwrap().push(events);
    } else {
        return StatusCode::BAD_REQUEST;
    }
    receiver.notify.notify_waiters();
    StatusCode::OK
}

async fn handshake(
    State(receiver): State<Receiver>,
    RawQuery(query): RawQuery,
) -> (StatusCode, String) {
    match meta::verify_challenge(&query.unwrap_or_default(), &receiver.verify_token) {
        Some(challenge) => (StatusCode::OK, challenge),
        None => (StatusCode::FORBIDDEN, String::new()),
    }
}

struct Env {
    sim: Simulator,
    receiver: Receiver,
    client: meta::Client,
    token: Secret,
    base_url: String,
}

async fn start_with(config: Config, timeout: Duration) -> Env {
    let sim = Simulator::new(config.clone());
    let base_url = serve(sim.router()).await;
    let receiver = Receiver {
        app_secret: config.app_secret.clone(),
        verify_token: config.verify_token.clone(),
        ..Receiver::default()
    };
    let hook = axum::Router::new()
        .route("/webhook", get(handshake).post(receive))
        .with_state(receiver.clone());
    let hook_url = serve(hook).await;
    sim.set_webhook_url(&format!("{hook_url}/webhook"));
    let client = meta::Client::new(
        meta::Config { base_url: base_url.clone(), version: meta::DEFAULT_VERSION.to_owned() },
        HttpClient { timeout },
    );
    Env { sim, receiver, client, token: Secret::new(config.access_token), base_url }
}

async fn start() -> Env {
    start_with(Config::default(), Duration::from_secs(10)).await
}

impl Env {
    async fn send_whatsapp(&self, to: &str, body: &Body, reply_to: Option<&str>) -> SendResult {
        let request = whatsapp::build_send(to, body, reply_to).unwrap();
        self.client.send_whatsapp(&self.token, PHONE_NUMBER_ID, &request).await
    }

    async fn send_messenger(&self, body: &Body, kind: &MessagingType) -> SendResult {
        let request = messenger::build_send(PSID, body, kind).unwrap();
        self.client.send_messenger(&self.token, "me", &request).await
    }
}

fn accepted_id(result: &SendResult) -> String {
    match result {
        SendResult::Accepted { provider_message_id: Some(id), .. } => id.clone(),
        other => panic!("not accepted: {other:?}"),
    }
}

fn text(text: &str) -> Body {
    Body::Text { text: text.to_owned() }
}

// =============================================================================================
// WhatsApp
// =============================================================================================

#[tokio::test]
async fn whatsapp_a_customer_writes_in_and_a_reply_is_sent_delivered_and_read() {
    let env = start().await;
    let (inbound_id, delivery) = env
        .sim
        .inject_whatsapp(PHONE_NUMBER_ID, CUSTOMER, WhatsAppInbound::Text("Hi".into()), None)
        .await;
    assert_eq!(delivery.status, Some(200), "{delivery:?}");
    assert!(inbound_id.starts_with("wamid."));
    {
        let events = env.receiver.whatsapp.lock().unwrap();
        let inbound = &events[0].inbound[0];
        assert_eq!(inbound.customer, CUSTOMER);
        assert_eq!(inbound.channel_number, "+15550783881");
        assert_eq!(inbound.parts, vec![InboundPart::Text { text: "Hi".into() }]);
        assert_eq!(events[0].windows.len(), 1);
    }

    let result = env.send_whatsapp(CUSTOMER, &text("Hello back"), Some(&inbound_id)).await;
    assert!(matches!(result, SendResult::Accepted { status: DeliveryStatus::Queued, .. }));
    let id = accepted_id(&result);
    assert!(id.starts_with("wamid."));
    env.receiver.wait_until("three statuses", |r| r.statuses_of(&id).len() == 3).await;
    assert_eq!(
        env.receiver.statuses_of(&id),
        [DeliveryStatus::Sent, DeliveryStatus::Delivered, DeliveryStatus::Read]
    );
    assert_eq!(*env.receiver.unsigned.lock().unwrap(), 0);

    let requests = env.sim.requests();
    let last = requests.last().unwrap();
    assert_eq!(last.product, Some(Product::WhatsApp));
    assert!(last.authorized);
    assert_eq!(last.version, "v21.0");
    assert_eq!(last.body["context"]["message_id"], inbound_id.as_str());
    assert_eq!(last.message_id.as_deref(), Some(id.as_str()));
    // Every delivery carries a signature that verifies over its body.
    for delivery in env.sim.deliveries() {
        let secret = env.sim.config().app_secret.as_bytes();
        let verified =
            meta::verify_signature(secret, Some(&delivery.signature), delivery.body.as_bytes());
        assert_eq!(verified, Verified::Yes);
    }
}

#[tokio::test]
async fn whatsapp_free_form_outside_the_window_is_refused_but_a_template_goes() {
    let env = start().await;
    let refused = env.send_whatsapp(CUSTOMER, &text("Hello?"), None).await;
    let SendResult::Refused { status, reason } = refused else { panic!("{refused:?}") };
    assert_eq!(status, DeliveryStatus::NoSessionInProgress);
    assert!(reason.contains("131047"), "{reason}");

    // A window opened 25 hours ago is closed; one opened 23 hours ago is open.
    let long_ago = Utc::now() - TimeDelta::hours(25);
    env.sim.set_last_inbound(Product::WhatsApp, CUSTOMER, Some(long_ago));
    assert!(matches!(
        env.send_whatsapp(CUSTOMER, &text("x"), None).await,
        SendResult::Refused { status: DeliveryStatus::NoSessionInProgress, .. }
    ));
    let recent = Utc::now() - TimeDelta::hours(23);
    env.sim.set_last_inbound(Product::WhatsApp, CUSTOMER, Some(recent));
    accepted_id(&env.send_whatsapp(CUSTOMER, &text("x"), None).await);

    let template = Body::Template(Template {
        id: "order_update".into(),
        language: Some("en_US".into()),
        params: vec!["Jane".into()],
    });
    accepted_id(&env.send_whatsapp("+255700000001", &template, None).await);
}

#[tokio::test]
async fn whatsapp_an_unknown_template_is_tag_not_found() {
    let config = Config { templates: vec!["order_update".into()], ..Config::default() };
    let env = start_with(config, Duration::from_secs(10)).await;
    let template = |name: &str| {
        Body::Template(Template {
            id: name.into(),
            language: Some("en".into()),
            params: Vec::new(),
        })
    };
    accepted_id(&env.send_whatsapp(CUSTOMER, &template("order_update"), None).await);
    assert!(matches!(
        env.send_whatsapp(CUSTOMER, &template("nope"), None).await,
        SendResult::Refused { status: DeliveryStatus::TagNotFound, .. }
    ));
}

#[tokio::test]
async fn whatsapp_scripts_fail_stop_duplicate_and_reorder_the_webhooks() {
    let env = start().await;
    let customers = ["+254700000001", "+254700000002", "+254700000003", "+254700000004"];
    for customer in customers {
        env.sim.set_last_inbound(Product::WhatsApp, customer, Some(Utc::now()));
    }
    env.sim.script(customers[0], Script::fail(131_026, "Message undeliverable"));
    env.sim.script(customers[1], Script::stop(Outcome::StopAtSent));
    env.sim.script(customers[2], Script::default().duplicated());
    env.sim.script(customers[3], Script::default().out_of_order());
    let mut ids = Vec::new();
    for customer in customers {
        ids.push(accepted_id(&env.send_whatsapp(customer, &text("x"), None).await));
    }
    let receiver = &env.receiver;
    receiver
        .wait_until("all webhooks", |r| {
            r.statuses_of(&ids[0]).len() == 2
                && r.statuses_of(&ids[1]).len() == 1
                && r.statuses_of(&ids[2]).len() == 6
                && r.statuses_of(&ids[3]).len() == 3
        })
        .await;
    assert_eq!(
        receiver.statuses_of(&ids[0]),
        [DeliveryStatus::Sent, DeliveryStatus::CustomerNumberNotFound]
    );
    let failed = receiver
        .statuses()
        .into_iter()
        .find(|s| {
            s.provider_message_id == ids[0] && s.status == DeliveryStatus::CustomerNumberNotFound
        })
        .unwrap();
    assert!(failed.reason.unwrap().contains("131026"));
    assert_eq!(receiver.statuses_of(&ids[1]), [DeliveryStatus::Sent]);
    assert_eq!(
        receiver.statuses_of(&ids[2]),
        [
            DeliveryStatus::Sent,
            DeliveryStatus::Sent,
            DeliveryStatus::Delivered,
            DeliveryStatus::Delivered,
            DeliveryStatus::Read,
            DeliveryStatus::Read
        ]
    );
    assert_eq!(
        receiver.statuses_of(&ids[3]),
        [DeliveryStatus::Read, DeliveryStatus::Delivered, DeliveryStatus::Sent]
    );
}

#[tokio::test]
async fn whatsapp_injected_media_location_and_replies_read_back() {
    let env = start().await;
    let media = WhatsAppInbound::Media {
        kind: "image".into(),
        mime_type: "image/jpeg".into(),
        caption: Some("receipt".into()),
    };
    env.sim.inject_whatsapp(PHONE_NUMBER_ID, CUSTOMER, media, None).await;
    let location = WhatsAppInbound::Location {
        latitude: "-1.2920659".into(),
        longitude: "36.8219462".into(),
        name: Some("Office".into()),
        address: None,
    };
    env.sim.inject_whatsapp(PHONE_NUMBER_ID, CUSTOMER, location, None).await;
    let (_, delivery) = env
        .sim
        .inject_whatsapp(
            PHONE_NUMBER_ID,
            CUSTOMER,
            WhatsAppInbound::Text("yes".into()),
            Some("wamid.OURS"),
        )
        .await;
    assert_eq!(delivery.status, Some(200));
    let events = env.receiver.whatsapp.lock().unwrap().clone();
    let inbound: Vec<_> = events.iter().flat_map(|events| events.inbound.clone()).collect();
    assert_eq!(inbound.len(), 3);
    let InboundPart::Media(Media { url, media, caption }) = &inbound[0].parts[0] else {
        panic!("{inbound:?}")
    };
    assert!(whatsapp::media_id(url).is_some(), "{url}");
    assert_eq!(*media, MediaType::Image);
    assert_eq!(caption.as_deref(), Some("receipt"));
    let InboundPart::Location(location) = &inbound[1].parts[0] else { panic!("{inbound:?}") };
    assert_eq!(location.latitude.to_string(), "-1.2920659");
    assert_eq!(location.label.as_deref(), Some("Office"));
    assert_eq!(inbound[2].in_reply_to.as_deref(), Some("wamid.OURS"));
}

#[tokio::test]
async fn whatsapp_bad_bodies_tokens_and_numbers_get_graph_errors() {
    let env = start().await;
    let http = reqwest::Client::new();
    let post = |path: &str, token: &str, body: &str| {
        http.post(format!("{}{path}", env.base_url))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
    };
    let path = format!("/v21.0/{PHONE_NUMBER_ID}/messages");
    let token = env.sim.config().access_token.clone();
    for body in [
        r#"{"to":"254712345678","type":"text","text":{"body":"x"}}"#,
        r#"{"messaging_product":"whatsapp","type":"text","text":{"body":"x"}}"#,
        r#"{"messaging_product":"whatsapp","to":"254712345678","type":"text","text":{"body":""}}"#,
        r#"{"messaging_product":"whatsapp","to":"254712345678","type":"image","image":{}}"#,
        r#"{"messaging_product":"whatsapp","to":"254712345678","type":"audio","audio":{"link":"https://a","caption":"c"}}"#,
        r#"{"messaging_product":"whatsapp","to":"254712345678","type":"carrier_pigeon"}"#,
        "not json",
    ] {
        let response = post(&path, &token, body).await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], 100, "{body}: {error}");
        assert!(error["error"]["fbtrace_id"].is_string());
    }
    let response = post(&path, "wrong", "{}").await.unwrap();
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], 190);

    // Through the client: a bad token is our fault; an unknown number id is a bad request.
    let wrong = meta::Client::new(
        meta::Config { base_url: env.base_url.clone(), version: "v21.0".into() },
        HttpClient::default(),
    );
    let request = whatsapp::build_send(CUSTOMER, &text("x"), None).unwrap();
    assert!(matches!(
        wrong.send_whatsapp(&Secret::new("nope"), PHONE_NUMBER_ID, &request).await,
        SendResult::Refused { status: DeliveryStatus::ApplicationError, .. }
    ));
    assert!(matches!(
        env.client.send_whatsapp(&env.token, "999", &request).await,
        SendResult::Refused { status: DeliveryStatus::InvalidRequest, .. }
    ));
    // The access_token parameter works as well as the header.
    env.sim.set_last_inbound(Product::WhatsApp, CUSTOMER, Some(Utc::now()));
    let response = http
        .post(format!("{}{path}?access_token={token}", env.base_url))
        .header("Content-Type", "application/json")
        .body(serde_json::to_string(&request).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: whatsapp::SendResponse = response.json().await.unwrap();
    assert_eq!(answer.contacts[0].wa_id.as_deref(), Some("254712345678"));
}

// =============================================================================================
// Messenger
// =============================================================================================

#[tokio::test]
async fn messenger_a_reply_in_the_window_is_delivered_and_read_by_watermark() {
    let env = start().await;
    let (mid, delivery) =
        env.sim.inject_messenger(PSID, MessengerInbound::Text("hello page".into()), None).await;
    assert_eq!(delivery.status, Some(200));
    assert!(mid.starts_with("m_"));
    {
        let events = env.receiver.messenger.lock().unwrap();
        let inbound = &events[0].inbound[0];
        assert_eq!(inbound.customer, PSID);
        assert_eq!(inbound.channel_number, env.sim.config().page_id);
        assert_eq!(inbound.provider_message_id.as_deref(), Some(mid.as_str()));
    }
    let result = env.send_messenger(&text("hi"), &MessagingType::Response).await;
    assert!(matches!(result, SendResult::Accepted { status: DeliveryStatus::Sent, .. }));
    let id = accepted_id(&result);
    assert!(id.starts_with("m_"));
    env.receiver
        .wait_until("a read watermark", |r| {
            r.messenger
                .lock()
                .unwrap()
                .iter()
                .any(|events| events.watermarks.iter().any(|w| w.status == WatermarkStatus::Read))
        })
        .await;
    assert_eq!(env.receiver.statuses_of(&id), [DeliveryStatus::Delivered]);
    let watermarks: Vec<_> = env
        .receiver
        .messenger
        .lock()
        .unwrap()
        .iter()
        .flat_map(|events| events.watermarks.clone())
        .collect();
    assert_eq!(watermarks.len(), 2);
    assert!(watermarks.iter().all(|w| w.psid == PSID));
    assert!(watermarks[0].up_to <= watermarks[1].up_to);

    let (_, _) = env
        .sim
        .inject_messenger(
            PSID,
            MessengerInbound::Attachment { kind: "image".into(), url: "https://cdn/x.jpg".into() },
            Some(&id),
        )
        .await;
    let events = env.receiver.messenger.lock().unwrap().clone();
    let last = events.iter().flat_map(|e| e.inbound.clone()).last().unwrap();
    assert_eq!(last.in_reply_to.as_deref(), Some(id.as_str()));
    assert_eq!(
        last.parts,
        vec![InboundPart::Media(Media {
            url: "https://cdn/x.jpg".into(),
            media: MediaType::Image,
            caption: None
        })]
    );
}

#[tokio::test]
async fn messenger_window_tags_and_refusals() {
    let env = start().await;
    assert!(matches!(
        env.send_messenger(&text("hi"), &MessagingType::Update).await,
        SendResult::Refused { status: DeliveryStatus::NoSessionInProgress, .. }
    ));
    let tagged = MessagingType::MessageTag("ACCOUNT_UPDATE".into());
    accepted_id(&env.send_messenger(&text("your account"), &tagged).await);
    let bad_tag = MessagingType::MessageTag("PROMOTION".into());
    assert!(matches!(
        env.send_messenger(&text("buy"), &bad_tag).await,
        SendResult::Refused { status: DeliveryStatus::TagNotFound, .. }
    ));
    let unavailable =
        GraphError::new(551, "OAuthException", "This person isn't available right now.");
    env.sim.script(PSID, Script::refuse(400, unavailable));
    assert!(matches!(
        env.send_messenger(&text("x"), &tagged).await,
        SendResult::Refused { status: DeliveryStatus::Failed, .. }
    ));
    let mut no_user = GraphError::new(100, "OAuthException", "(#100) No matching user found");
    no_user.error_subcode = Some(2_018_001);
    env.sim.script(PSID, Script::refuse(400, no_user));
    assert!(matches!(
        env.send_messenger(&text("x"), &tagged).await,
        SendResult::Refused { status: DeliveryStatus::CustomerNumberNotFound, .. }
    ));
    let rate =
        GraphError::new(613, "OAuthException", "Calls to this API have exceeded the rate limit.");
    env.sim.script(PSID, Script::refuse(400, rate));
    assert!(matches!(env.send_messenger(&text("x"), &tagged).await, SendResult::Retry { .. }));
}

// =============================================================================================
// Handshake, outages, load
// =============================================================================================

#[tokio::test]
async fn the_handshake_runs_against_the_webhook() {
    let env = start().await;
    env.sim.verify_webhook().await.unwrap();
    // A receiver that expects another token refuses it.
    let other = Simulator::new(Config { verify_token: "another".into(), ..Config::default() });
    other.set_webhook_url(&format!("{}/webhook", {
        let hook =
            axum::Router::new().route("/webhook", get(handshake)).with_state(env.receiver.clone());
        serve(hook).await
    }));
    assert_eq!(other.verify_webhook().await, Err(HandshakeError::Status(403)));
    let nowhere = Simulator::new(Config::default());
    assert_eq!(nowhere.verify_webhook().await, Err(HandshakeError::NoWebhookUrl));
}

#[tokio::test]
async fn outages_are_retries_and_then_sends_go_through() {
    let env = start_with(Config::default(), Duration::from_millis(300)).await;
    env.sim.set_last_inbound(Product::WhatsApp, CUSTOMER, Some(Utc::now()));
    env.sim.fail_next(1, Outage::ServerError);
    env.sim.fail_next(1, Outage::RateLimited { retry_after_seconds: 3 });
    env.sim.fail_next(1, Outage::Hang);
    let first = env.send_whatsapp(CUSTOMER, &text("x"), None).await;
    let SendResult::Retry { reason } = first else { panic!("{first:?}") };
    assert!(reason.contains("500"), "{reason}");
    let second = env.send_whatsapp(CUSTOMER, &text("x"), None).await;
    let SendResult::Retry { reason } = second else { panic!("{second:?}") };
    assert!(reason.contains("429"), "{reason}");
    let third = env.send_whatsapp(CUSTOMER, &text("x"), None).await;
    assert!(matches!(third, SendResult::Retry { .. }), "{third:?}");
    accepted_id(&env.send_whatsapp(CUSTOMER, &text("x"), None).await);
    let statuses: Vec<_> = env.sim.requests().iter().map(|request| request.status).collect();
    assert_eq!(statuses, [Some(500), Some(429), None, Some(200)]);

    // The 429 carries Retry-After.
    env.sim.fail_next(1, Outage::RateLimited { retry_after_seconds: 9 });
    let response = reqwest::Client::new()
        .post(format!("{}/v21.0/me/messages", env.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "9");
}

#[tokio::test]
async fn hundreds_of_concurrent_sends_are_answered_and_reported() {
    let env = Arc::new(start().await);
    let count = 300;
    let mut tasks = Vec::new();
    for n in 0..count {
        let env = env.clone();
        tasks.push(tokio::spawn(async move {
            let customer = format!("+2547{n:08}");
            env.sim.set_last_inbound(Product::WhatsApp, &customer, Some(Utc::now()));
            env.sim.script(&customer, Script::stop(Outcome::StopAtSent));
            accepted_id(&env.send_whatsapp(&customer, &text("bulk"), None).await)
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count);
    assert_eq!(env.sim.request_count(), count);
    env.receiver.wait_until("every sent status", |r| r.statuses().len() >= count).await;
    assert!(ids.iter().all(|id| env.receiver.statuses_of(id) == [DeliveryStatus::Sent]));
}
