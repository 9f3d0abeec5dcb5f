//! The channels beyond Africa's Talking SMS and USSD, end to end over real HTTP against their
//! simulators: WhatsApp (signed webhooks, the 24-hour window), Telegram (the secret token,
//! blocked bots), email (a real SMTP server on loopback, Inbound Parse) and voice (a menu
//! answered with digits).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hazina_simulator::{meta, smtp, telegram};
use hazina_tests::wait_for;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Env, start, statuses};

const CUSTOMER: &str = "+254711000002";

/// Serves `router` on loopback; its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// Makes a channel; its view.
async fn channel(env: &Env, new: Value) -> Value {
    let (status, body) = env.server.post(&env.server.org_key, "/v1/messaging-channels", &new).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn wait_status(env: &Env, id: &str, status: &str) -> Value {
    wait_for(&format!("message {id} {status}"), Duration::from_secs(20), || async {
        let message = env.message(id).await;
        (message["status"] == status).then_some(message)
    })
    .await
    .unwrap()
}

async fn events(env: &Env, types: &str) -> Vec<Value> {
    let path = format!("/v1/events?limit=500&types={types}");
    let (status, page) = env.server.get(&env.server.org_key, &path).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["events"].as_array().unwrap().clone()
}

struct WhatsApp {
    simulator: meta::Simulator,
    channel: Value,
}

async fn whatsapp(env: &Env) -> WhatsApp {
    // A number the phone-number library takes (Meta's docs' +1 555 number is fictional).
    let config = meta::Config {
        phone_numbers: vec![("106540352242922".into(), "254711099000".into())],
        ..meta::Config::default()
    };
    let simulator = meta::Simulator::new(config);
    let base = serve(simulator.router()).await;
    let config = simulator.config().clone();
    let (phone_number_id, display) = config.phone_numbers[0].clone();
    let channel = channel(
        env,
        json!({
            "channel": "whatsapp", "provider": "meta", "channelNumber": format!("+{display}"),
            "baseUrl": base,
            "credentials": {
                "accessToken": config.access_token, "appSecret": config.app_secret,
                "verifyToken": config.verify_token, "phoneNumberId": phone_number_id,
            },
            "unitPrice": {"currencyCode": "KES", "amount": "0"},
        }),
    )
    .await;
    let webhook = channel["callbackUrls"]["webhook"].as_str().unwrap();
    simulator.set_webhook_url(&format!("{}{webhook}", env.server.base));
    WhatsApp { simulator, channel }
}

#[tokio::test]
async fn whatsapp_templates_go_out_statuses_come_back_signed_and_replies_open_the_window() {
    let env = start().await;
    let wa = whatsapp(&env).await;
    // The provider's verify-token handshake passes against the channel's callback.
    wa.simulator.verify_webhook().await.unwrap();
    let send = |body: Value| json!({"channelId": wa.channel["id"], "customerNumber": CUSTOMER, "body": body});
    // Free-form text to a customer who never wrote is refused; a template goes.
    let (status, body) = env.send(&send(json!({"kind": "text", "text": "hi"}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_session_in_progress")),
        "{body}"
    );
    let template = json!({"kind": "template", "id": "cart_reminder", "language": "en_US", "params": ["2 items"]});
    let (status, sent) = env.send(&send(template)).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let id = sent["id"].as_str().unwrap();
    let read = wait_status(&env, id, "read").await;
    // In the order of their meaning, whatever order the webhooks raced in: a `sent` that
    // arrives after `delivered` is not history.
    let history = statuses(&read);
    let rank =
        |status: &str| ["queued", "sent", "delivered", "read"].iter().position(|s| *s == status);
    let ranks: Vec<_> = history.iter().map(|status| rank(status).unwrap()).collect();
    assert!(ranks.windows(2).all(|pair| pair[0] < pair[1]), "{history:?}");
    assert_eq!(history.first().map(String::as_str), Some("queued"));
    assert_eq!(history[history.len() - 2..], ["delivered", "read"], "{history:?}");
    let requests = wa.simulator.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].body["type"], "template");
    assert_eq!(read["providerMessageId"], json!(requests[0].message_id));
    // The customer replies: an event, and the window is open for free-form text.
    let phone_number_id = wa.simulator.config().phone_numbers[0].0.clone();
    let (_, delivery) = wa
        .simulator
        .inject_whatsapp(
            &phone_number_id,
            CUSTOMER,
            meta::WhatsAppInbound::Text("Yes please".into()),
            requests[0].message_id.as_deref(),
        )
        .await;
    assert_eq!(delivery.status, Some(200), "{delivery:?}");
    let received = events(&env, "message.received").await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["data"]["parts"][0]["text"], "Yes please");
    assert_eq!(received[0]["data"]["inReplyTo"], json!(id));
    let (status, body) =
        env.send(&send(json!({"kind": "text", "text": "Here is your link"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    wait_status(&env, body["id"].as_str().unwrap(), "read").await;
}

#[tokio::test]
async fn a_whatsapp_webhook_with_a_bad_signature_changes_nothing() {
    let env = start().await;
    let wa = whatsapp(&env).await;
    let webhook = wa.channel["callbackUrls"]["webhook"].as_str().unwrap();
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"1"},"messages":[{"from":"254711000002","id":"wamid.X","timestamp":"1700000000","type":"text","text":{"body":"STOP"}}]}}]}]}"#;
    for signature in
        [None, Some("sha256=00"), Some(meta_signature("not the secret", body).as_str())]
    {
        let mut request = env.server.http.post(format!("{}{webhook}", env.server.base)).body(body);
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(events(&env, "message.received").await.is_empty());
}

fn meta_signature(secret: &str, body: &str) -> String {
    hazina_providers::meta::sign(secret.as_bytes(), body.as_bytes())
}

#[tokio::test]
async fn telegram_sends_and_a_blocked_bot_or_stop_means_no_consent() {
    let env = start().await;
    let simulator = telegram::Simulator::new("123456:ABC-token", "shop_bot");
    let base = serve(simulator.router()).await;
    let channel = channel(
        &env,
        json!({
            "channel": "telegram", "provider": "telegram", "channelNumber": "shop_bot",
            "baseUrl": base, "credentials": {"botToken": "123456:ABC-token"},
            "unitPrice": {"currencyCode": "KES", "amount": "0"},
        }),
    )
    .await;
    let urls = &channel["callbackUrls"];
    let webhook = format!("{}{}", env.server.base, urls["telegramWebhook"].as_str().unwrap());
    simulator.set_webhook(&webhook, urls["telegramSecretToken"].as_str());
    let send = |chat: &str| json!({"channelId": channel["id"], "customerNumber": chat, "body": {"kind": "text", "text": "Your order shipped"}});
    let (status, sent) = env.send(&send("4242")).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let message = wait_status(&env, sent["id"].as_str().unwrap(), "sent").await;
    assert!(message["providerMessageId"].as_str().unwrap().starts_with("4242:"), "{message}");
    // A chat that blocked the bot: the provider refuses, the message is `no_consent`.
    simulator.script("5151", telegram::ChatScript::Blocked);
    let (_, sent) = env.send(&send("5151")).await;
    wait_status(&env, sent["id"].as_str().unwrap(), "no_consent").await;
    // `/stop` opts the chat out: nothing more is sent to it.
    let delivery = simulator
        .send_update(&telegram::UpdateRequest::Text { chat_id: 4242, text: "/stop".into() })
        .await;
    assert_eq!(delivery.status, Some(200), "{delivery:?}");
    let (status, body) = env.send(&send("4242")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_consent")),
        "{body}"
    );
    // An update without the secret token is refused and changes nothing.
    simulator.set_webhook(&webhook, Some("wrong"));
    let delivery = simulator
        .send_update(&telegram::UpdateRequest::Text { chat_id: 7, text: "/start".into() })
        .await;
    assert_eq!(delivery.status, Some(404), "{delivery:?}");
    assert_eq!(events(&env, "message.received").await.len(), 1);
}

#[tokio::test]
async fn email_goes_out_over_smtp_and_comes_in_through_inbound_parse() {
    let env = start().await;
    let server = smtp::SmtpSimulator::start(None).await.unwrap();
    let channel = channel(
        &env,
        json!({
            "channel": "email", "provider": "smtp", "channelNumber": "orders@shop.example",
            "baseUrl": format!("smtp://{}", server.address()), "credentials": {},
            "unitPrice": {"currencyCode": "KES", "amount": "0"},
        }),
    )
    .await;
    let mail = json!({"kind": "email", "subject": "Your cart", "plain": "2 items are waiting.", "cc": ["team@shop.example"]});
    let (status, sent) = env
        .send(&json!({"channelId": channel["id"], "customerNumber": "Buyer@Example.com", "body": mail}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let message = wait_status(&env, sent["id"].as_str().unwrap(), "sent").await;
    let mails = server.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].subject.as_deref(), Some("Your cart"));
    assert_eq!(mails[0].rcpt_to, vec!["buyer@example.com", "team@shop.example"]);
    assert_eq!(message["providerMessageId"], json!(mails[0].message_id));
    // An unknown mailbox: refused for good.
    server.script("nobody@example.com", smtp::RecipientScript::Unknown);
    let (_, sent) = env
        .send(&json!({"channelId": channel["id"], "customerNumber": "nobody@example.com", "body": mail}))
        .await;
    wait_status(&env, sent["id"].as_str().unwrap(), "customer_number_not_found").await;
    // Not an address: refused before anything is queued.
    let (status, body) = env
        .send(
            &json!({"channelId": channel["id"], "customerNumber": "not an address", "body": mail}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_customer_number")),
        "{body}"
    );
    // The customer answers: Inbound Parse posts it to the channel's URL.
    let url =
        format!("{}{}", env.server.base, channel["callbackUrls"]["inboundEmail"].as_str().unwrap());
    let answer = smtp::InboundMail {
        from: "buyer@example.com".into(),
        to: "orders@shop.example".into(),
        cc: Vec::new(),
        subject: "Re: Your cart".into(),
        text: "I'll check out tonight".into(),
        html: None,
        message_id: None,
        in_reply_to: mails[0].message_id.clone(),
    };
    let (status, _) = smtp::post_inbound(&url, &answer).await.unwrap();
    assert_eq!(status, 200);
    let received = events(&env, "message.received").await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["data"]["parts"][0]["subject"], "Re: Your cart");
    assert_eq!(received[0]["data"]["inReplyTo"], sent_id(&message));
    // A forged token changes nothing.
    let forged = url.replace(
        channel["callbackUrls"]["inboundEmail"].as_str().unwrap().rsplit('/').next().unwrap(),
        "forged",
    );
    let (status, _) = smtp::post_inbound(&forged, &answer).await.unwrap();
    assert_eq!(status, 404);
}

fn sent_id(message: &Value) -> Value {
    message["id"].clone()
}

#[tokio::test]
async fn a_voice_menu_is_answered_by_the_app_and_the_call_recorded() {
    let env = start().await;
    let purse = env.purse("100.00").await;
    env.channel("voice", "+254711082000", Some(&purse)).await;
    // The app: a menu on the first step, thanks once a digit is pressed.
    let steps = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&steps);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                let event: Value = serde_json::from_slice(&body).unwrap_or_default();
                let part = event["data"]["parts"][0].clone();
                seen.lock().unwrap().push(part.clone());
                let actions = match part["dtmfDigits"].as_str() {
                    None => json!([{"action": "get_digits", "prompt": {"say": {"text": "Press 1 to pay"}}, "numDigits": 1}]),
                    Some(digits) => json!([{"action": "say", "text": format!("You pressed {digits}. Goodbye")}]),
                };
                axum::Json(json!({"body": {"kind": "voice", "actions": actions}}))
            }
        }),
    );
    let url = format!("{}/hook", serve(app).await);
    let (status, body) = env
        .server
        .post(
            &env.server.org_key,
            "/v1/webhook-endpoints",
            &json!({"url": url, "eventTypes": ["message.received"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let call = env.at.call_in(CUSTOMER, "+254711082000", &["1"]).await;
    assert_eq!(call.answers.len(), 2, "{call:?}");
    let spoken = format!("{:?}", call.answers[1]);
    assert!(spoken.contains("You pressed 1"), "{spoken}");
    let sessions = events(&env, "messaging.session_changed").await;
    let last = sessions.last().unwrap();
    assert_eq!(last["data"]["status"], "completed", "{sessions:?}");
}
