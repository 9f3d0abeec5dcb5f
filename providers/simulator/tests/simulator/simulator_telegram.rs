//! The Telegram simulator over loopback HTTP, driven by the providers' Bot API client, and its
//! updates received by a webhook that checks the secret token as the server will.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hazina_providers::Secret;
use hazina_providers::http::HttpClient;
use hazina_providers::messaging::{
    Body, DeliveryStatus, InboundPart, Location, Media, MediaType, SendResult, Verified,
};
use hazina_providers::telegram::{
    self, Client, Config, Consent, ReadUpdate, SendOptions, read_update, verify_secret_token,
};
use hazina_simulator::telegram::{ChatScript, Simulator, UpdateRequest};
use tokio::sync::mpsc;

use super::common::{DEADLINE, serve};

const TOKEN: &str = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";

async fn start() -> (Simulator, String, Client) {
    let sim = Simulator::new(TOKEN, "hazina_bot");
    let base = serve(sim.router()).await;
    let client = Client::new(
        Config { base_url: base.clone(), token: Secret::new(TOKEN) },
        HttpClient { timeout: Duration::from_secs(5) },
    );
    (sim, base, client)
}

fn text(text: &str) -> Body {
    Body::Text { text: text.to_owned() }
}

fn refused(result: &SendResult) -> Option<DeliveryStatus> {
    match result {
        SendResult::Refused { status, .. } => Some(*status),
        _ => None,
    }
}

#[tokio::test]
async fn a_text_is_sent_and_recorded() {
    let (sim, _, client) = start().await;
    let outcome =
        client.send("42", &text("Your balance is KES 10.00"), &SendOptions::default()).await;
    assert_eq!(
        outcome.result,
        SendResult::Accepted {
            provider_message_id: Some("42:1".into()),
            status: DeliveryStatus::Sent,
            cost: None,
        }
    );
    let second = client
        .send(
            "42",
            &text("again"),
            &SendOptions { parse_mode: None, reply_to: Some("42:1".into()) },
        )
        .await;
    assert!(
        matches!(&second.result, SendResult::Accepted { provider_message_id: Some(id), .. } if id == "42:2")
    );
    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "sendMessage");
    assert_eq!(requests[0].body["chat_id"], 42);
    assert_eq!(requests[0].body["text"], "Your balance is KES 10.00");
    assert_eq!(requests[1].body["reply_parameters"]["message_id"], 1);
}

#[tokio::test]
async fn media_and_locations_go_by_their_methods() {
    let (sim, _, client) = start().await;
    let photo = Body::Media(Media {
        url: "https://cdn.example/receipt.png".into(),
        media: MediaType::Image,
        caption: Some("Receipt".into()),
    });
    let location = Body::Location(Location {
        latitude: "-1.292066".parse().unwrap(),
        longitude: "36.821945".parse().unwrap(),
        label: None,
        address: None,
    });
    for body in [photo, location] {
        let outcome = client.send("7", &body, &SendOptions::default()).await;
        assert!(matches!(outcome.result, SendResult::Accepted { .. }), "{outcome:?}");
    }
    let requests = sim.requests();
    assert_eq!(requests[0].method, "sendPhoto");
    assert_eq!(requests[0].body["photo"], "https://cdn.example/receipt.png");
    assert_eq!(requests[1].method, "sendLocation");
    assert_eq!(requests[1].body["latitude"].to_string(), "-1.292066");
}

#[tokio::test]
async fn a_blocked_chat_is_no_consent_and_an_unknown_one_not_found() {
    let (sim, _, client) = start().await;
    sim.script("42", ChatScript::Blocked);
    sim.script("43", ChatScript::NotFound);
    let blocked = client.send("42", &text("hi"), &SendOptions::default()).await;
    assert_eq!(refused(&blocked.result), Some(DeliveryStatus::NoConsent));
    let missing = client.send("43", &text("hi"), &SendOptions::default()).await;
    assert_eq!(refused(&missing.result), Some(DeliveryStatus::CustomerNumberNotFound));
    let statuses: Vec<u16> = sim.requests().iter().map(|request| request.status).collect();
    assert_eq!(statuses, [403, 400]);
}

#[tokio::test]
async fn flood_control_and_server_errors_are_retried() {
    let (sim, _, client) = start().await;
    sim.script("42", ChatScript::Flood { retry_after: 3 });
    let flood = client.send("42", &text("hi"), &SendOptions::default()).await;
    assert!(matches!(flood.result, SendResult::Retry { .. }), "{flood:?}");
    assert_eq!(flood.retry_after, Some(Duration::from_secs(3)));
    sim.fail_next(2);
    for _ in 0..2 {
        let failed = client.send("44", &text("hi"), &SendOptions::default()).await;
        assert!(matches!(failed.result, SendResult::Retry { .. }), "{failed:?}");
    }
    let sent = client.send("44", &text("hi"), &SendOptions::default()).await;
    assert!(matches!(sent.result, SendResult::Accepted { .. }), "{sent:?}");
}

#[tokio::test]
async fn a_wrong_token_is_not_found_like_the_real_api() {
    let (_sim, base, _) = start().await;
    let response = reqwest::Client::new()
        .post(format!("{base}/bot999:wrong/sendMessage"))
        .json(&serde_json::json!({"chat_id": 1, "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"ok": false, "error_code": 404, "description": "Not Found"})
    );
    let client = Client::new(
        Config { base_url: base, token: Secret::new("999:wrong") },
        HttpClient::default(),
    );
    let outcome = client.send("1", &text("x"), &SendOptions::default()).await;
    assert_eq!(refused(&outcome.result), Some(DeliveryStatus::ApplicationError));
    assert!(!format!("{outcome:?}").contains("wrong"), "the token leaked: {outcome:?}");
}

#[derive(Clone)]
struct Receiver {
    secret: Secret,
    updates: mpsc::UnboundedSender<ReadUpdate>,
}

/// A webhook as the server will have it: the secret token checked first, then the update read.
async fn webhook(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = headers.get(telegram::SECRET_TOKEN_HEADER).map(axum::http::HeaderValue::as_bytes);
    if verify_secret_token(header, &receiver.secret) == Verified::No {
        return StatusCode::UNAUTHORIZED;
    }
    match read_update(&body, "hazina_bot") {
        Ok(update) => {
            let _ = receiver.updates.send(update);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

async fn receiver(secret: &str) -> (String, mpsc::UnboundedReceiver<ReadUpdate>) {
    let (updates, received) = mpsc::unbounded_channel();
    let router = axum::Router::new()
        .route("/telegram/webhook", post(webhook))
        .with_state(Receiver { secret: Secret::new(secret), updates });
    (format!("{}/telegram/webhook", serve(router).await), received)
}

#[tokio::test]
async fn updates_reach_the_webhook_with_the_secret_token() {
    let (sim, base, client) = start().await;
    let (url, mut received) = receiver("webhook_secret-1").await;
    // As the server would: setWebhook through the API, with a secret token.
    let set = reqwest::Client::new()
        .post(format!("{base}/bot{TOKEN}/setWebhook"))
        .json(&serde_json::json!({"url": url, "secret_token": "webhook_secret-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);

    let ours = client.send("555", &text("Pay now?"), &SendOptions::default()).await;
    let SendResult::Accepted { provider_message_id: Some(ours), .. } = ours.result else {
        panic!("not sent: {ours:?}")
    };
    let requests = [
        UpdateRequest::Text { chat_id: 555, text: "/start".into() },
        UpdateRequest::Reply { chat_id: 555, text: "Yes".into(), reply_to_message_id: 1 },
        UpdateRequest::Text { chat_id: 555, text: "/stop".into() },
        UpdateRequest::Block { chat_id: 555 },
    ];
    for request in &requests {
        let delivery = sim.send_update(request).await;
        assert_eq!(delivery.status, Some(200), "{delivery:?}");
    }
    let mut updates = Vec::new();
    for _ in 0..requests.len() {
        updates.push(tokio::time::timeout(DEADLINE, received.recv()).await.unwrap().unwrap());
    }
    assert_eq!(updates[0].consent, Some(("555".into(), Consent::OptIn)));
    let reply = updates[1].inbound.as_ref().unwrap();
    assert_eq!(reply.in_reply_to.as_deref(), Some(ours.as_str()));
    assert_eq!(reply.parts, [InboundPart::Text { text: "Yes".into() }]);
    assert_eq!(updates[2].consent, Some(("555".into(), Consent::OptOut)));
    assert_eq!(updates[3].consent, Some(("555".into(), Consent::OptOut)));
    assert!(updates.windows(2).all(|pair| pair[0].update_id < pair[1].update_id));
    // Blocked now: the next send is refused.
    let after = client.send("555", &text("hello?"), &SendOptions::default()).await;
    assert_eq!(refused(&after.result), Some(DeliveryStatus::NoConsent));
}

#[tokio::test]
async fn a_wrong_secret_token_is_refused() {
    let (sim, _, _) = start().await;
    let (url, mut received) = receiver("the-right-one").await;
    sim.set_webhook(&url, Some("the-wrong-one"));
    let delivery = sim.send_update(&UpdateRequest::Text { chat_id: 1, text: "hi".into() }).await;
    assert_eq!(delivery.status, Some(401));
    sim.set_webhook(&url, None);
    let delivery = sim.send_update(&UpdateRequest::Text { chat_id: 1, text: "hi".into() }).await;
    assert_eq!(delivery.status, Some(401));
    assert!(received.try_recv().is_err());
    assert_eq!(sim.deliveries().len(), 2);
}

#[tokio::test]
async fn a_thousand_sends_are_all_answered_and_recorded() {
    let (sim, _, client) = start().await;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..20_i64 {
        let client = client.clone();
        tasks.spawn(async move {
            let mut accepted = 0;
            for _ in 0..50 {
                let outcome =
                    client.send(&worker.to_string(), &text("bulk"), &SendOptions::default()).await;
                accepted += usize::from(matches!(outcome.result, SendResult::Accepted { .. }));
            }
            accepted
        });
    }
    let mut accepted = 0;
    while let Some(count) = tasks.join_next().await {
        accepted += count.unwrap();
    }
    assert_eq!(accepted, 1000);
    assert_eq!(sim.requests().len(), 1000);
}
