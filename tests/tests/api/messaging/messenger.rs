//! Messenger end to end over real HTTP against the Meta simulator: a channel made through the
//! API, the customer writing first (a signed `messages` webhook that makes them a customer and
//! opens the 24-hour window), our answer on the wire as a Send API `RESPONSE`, its `delivery`
//! and `read` webhooks (by `mids` and by watermark alone) applied in order with an event for
//! each, both messages on the customer's timeline; free-form text outside the window refused
//! (by us before anything is sent, and by Meta when its window closed first); a webhook
//! without the app secret's signature changing nothing; the verify-token handshake.

use std::time::Duration;

use hazina_simulator::meta::{self, MessengerInbound, MessengerReceipt, Outcome, Product, Script};
use hazina_tests::wait_for;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Env, start, statuses};

/// A page-scoped id, as Messenger gives one per customer and page.
const PSID: &str = "6789012345678901";
/// A customer of the page who never wrote to it.
const SILENT_PSID: &str = "6789012345678902";

struct Messenger {
    simulator: meta::Simulator,
    channel: Value,
}

impl Messenger {
    fn id(&self) -> &str {
        self.channel["id"].as_str().unwrap()
    }

    fn page_id(&self) -> String {
        self.simulator.config().page_id.clone()
    }

    /// The channel's webhook URL on the server.
    fn webhook(&self, env: &Env) -> String {
        format!("{}{}", env.server.base, self.channel["callbackUrls"]["webhook"].as_str().unwrap())
    }
}

/// A free Messenger channel through the API, pointed at a Meta simulator whose webhooks go to
/// the channel's callback URL.
async fn messenger(env: &Env) -> Messenger {
    let simulator = meta::Simulator::new(meta::Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = simulator.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let config = simulator.config().clone();
    let new = json!({
        "channel": "messenger", "provider": "meta", "channelNumber": config.page_id,
        "baseUrl": base,
        "credentials": {
            "accessToken": config.access_token, "appSecret": config.app_secret,
            "verifyToken": config.verify_token,
        },
        "unitPrice": {"currencyCode": "KES", "amount": "0"},
    });
    let (status, channel) =
        env.server.post(&env.server.org_key, "/v1/messaging-channels", &new).await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    assert_eq!(channel["channel"], "messenger", "{channel}");
    let messenger = Messenger { simulator, channel };
    messenger.simulator.set_webhook_url(&messenger.webhook(env));
    messenger
}

async fn wait_status(env: &Env, id: &str, status: &str) -> Value {
    let reached = wait_for(&format!("message {id} {status}"), Duration::from_secs(20), || async {
        let message = env.message(id).await;
        (message["status"] == status).then_some(message)
    })
    .await;
    match reached {
        Ok(message) => message,
        Err(error) => panic!("{error}: {}", env.message(id).await),
    }
}

async fn events(env: &Env, types: &str) -> Vec<Value> {
    let path = format!("/v1/events?limit=500&types={types}");
    let (status, page) = env.server.get(&env.server.org_key, &path).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["events"].as_array().unwrap().clone()
}

/// The statuses `message.status_changed` told of one message, in order.
async fn told(env: &Env, id: &str) -> Vec<String> {
    let changes = events(env, "message.status_changed").await;
    changes
        .iter()
        .filter(|event| event["data"]["messageId"] == id)
        .map(|event| event["data"]["status"].as_str().unwrap().to_owned())
        .collect()
}

/// The customer writes `text` to the page; the `message.received` event's data.
async fn customer_writes(env: &Env, messenger: &Messenger, psid: &str, text: &str) -> Value {
    let before = events(env, "message.received").await.len();
    let (mid, delivery) =
        messenger.simulator.inject_messenger(psid, MessengerInbound::Text(text.into()), None).await;
    assert_eq!(delivery.status, Some(200), "{delivery:?}");
    let received = events(env, "message.received").await;
    assert_eq!(received.len(), before + 1, "{received:?}");
    let data = received[before]["data"].clone();
    assert_eq!(data["parts"][0]["text"], text, "{data}");
    let inbound = env.message(data["messageId"].as_str().unwrap()).await;
    assert_eq!(inbound["providerMessageId"], json!(mid), "{inbound}");
    data
}

/// A text to the customer; the message's id once queued.
async fn send_text(env: &Env, messenger: &Messenger, to: Value, text: &str) -> String {
    let mut request = json!({"channelId": messenger.id(), "body": {"kind": "text", "text": text}});
    request.as_object_mut().unwrap().extend(to.as_object().unwrap().clone());
    let (status, sent) = env.send(&request).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    // Queued first; the worker may have sent it before this answer was read back.
    assert_eq!(sent["history"][0]["status"], "queued", "{sent}");
    sent["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_messenger_answer_in_the_window_goes_out_as_a_response_and_is_delivered_and_read() {
    let env = start().await;
    let messenger = messenger(&env).await;
    let page_id = messenger.page_id();
    // Delivered by the simulator on its own (`mids`); read when the customer opens the
    // conversation, which the test decides.
    messenger.simulator.script(PSID, Script::stop(Outcome::StopAtDelivered));

    // The customer writes first: made a customer on first contact, their window open.
    let question = customer_writes(&env, &messenger, PSID, "Is my order ready?").await;
    assert_eq!(question["channel"], "messenger", "{question}");
    assert_eq!(question["channelId"], messenger.channel["id"], "{question}");
    assert_eq!(question["channelNumber"], json!(page_id), "{question}");
    assert_eq!(question["customerNumber"], PSID, "{question}");
    let customer = question["customerId"].as_str().unwrap().to_owned();
    let question_id = question["messageId"].as_str().unwrap().to_owned();

    // Our answer, to the customer by id, in reply to their message.
    let text = "Yes: it ships today.";
    let to = json!({"customerId": customer, "replyTo": question_id});
    let answer = send_text(&env, &messenger, to, text).await;
    let delivered = wait_status(&env, &answer, "delivered").await;
    // On the wire: the page's Send API, the customer's PSID, a response inside the window.
    let requests = messenger.simulator.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.product, Some(Product::Messenger));
    assert_eq!(request.node, page_id);
    assert!(request.authorized, "{request:?}");
    assert_eq!(request.status, Some(200));
    assert_eq!(request.body["recipient"], json!({"id": PSID}));
    assert_eq!(request.body["messaging_type"], "RESPONSE");
    assert_eq!(request.body["message"], json!({"text": text}));
    assert_eq!(delivered["providerMessageId"], json!(request.message_id), "{delivered}");
    assert_eq!(delivered["customerNumber"], PSID, "{delivered}");
    assert_eq!(delivered["replyTo"], json!(question_id), "{delivered}");

    // The customer opens the conversation: a read watermark names no message, and covers ours.
    let receipt = messenger.simulator.messenger_receipt(PSID, MessengerReceipt::Read).await;
    assert_eq!(receipt.status, Some(200), "{receipt:?}");
    let read = wait_status(&env, &answer, "read").await;
    assert_eq!(statuses(&read), ["queued", "sent", "delivered", "read"]);
    let codes: Vec<&Value> =
        read["history"].as_array().unwrap().iter().map(|s| &s["statusCode"]).collect();
    assert_eq!(codes, [&json!(100), &json!(101), &json!(300), &json!(301)], "{read}");
    assert_eq!(told(&env, &answer).await, ["queued", "sent", "delivered", "read"]);

    // A second answer, reported by an older client: a delivery watermark without `mids`.
    messenger.simulator.script(PSID, Script::stop(Outcome::StopAtSent));
    let later =
        send_text(&env, &messenger, json!({"customerNumber": PSID}), "Tracking: KE-1042").await;
    wait_status(&env, &later, "sent").await;
    let receipt = messenger
        .simulator
        .messenger_receipt(PSID, MessengerReceipt::Delivered { mids: Vec::new() })
        .await;
    assert_eq!(receipt.status, Some(200), "{receipt:?}");
    wait_status(&env, &later, "delivered").await;
    messenger.simulator.messenger_receipt(PSID, MessengerReceipt::Read).await;
    let later_read = wait_status(&env, &later, "read").await;
    assert_eq!(statuses(&later_read), ["queued", "sent", "delivered", "read"]);
    assert_eq!(told(&env, &later).await, ["queued", "sent", "delivered", "read"]);
    // The first answer was read already: the watermarks changed nothing more about it.
    assert_eq!(statuses(&env.message(&answer).await), ["queued", "sent", "delivered", "read"]);
    // Every webhook the simulator sent was signed as the channel expects.
    let deliveries = messenger.simulator.deliveries();
    assert!(deliveries.iter().all(|d| d.status == Some(200)), "{deliveries:?}");

    // The customer's timeline: their message and our two answers, newest first.
    let (status, page) =
        env.server.get(&env.server.app_key, &format!("/v1/customers/{customer}/timeline")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|item| item["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [later.as_str(), answer.as_str(), question_id.as_str()], "{page}");
    for item in items {
        assert_eq!(item["type"], "message", "{item}");
        assert_eq!(item["channel"], "messenger", "{item}");
        assert_eq!(item["channelNumber"], json!(page_id), "{item}");
    }
    assert_eq!(
        (&items[1]["direction"], &items[1]["status"], &items[1]["replyTo"]),
        (&json!("outbound"), &json!("read"), &json!(question_id)),
        "{page}"
    );
    assert_eq!(items[1]["body"]["text"], text, "{page}");
    assert_eq!(
        (&items[2]["direction"], &items[2]["status"]),
        (&json!("inbound"), &json!("received")),
        "{page}"
    );
    assert_eq!(items[2]["body"][0]["text"], "Is my order ready?", "{page}");
}

#[tokio::test]
async fn messenger_free_form_text_outside_the_window_is_refused() {
    let env = start().await;
    let messenger = messenger(&env).await;
    // A customer who never wrote: refused before anything is queued or sent.
    let request = json!({
        "channelId": messenger.id(), "customerNumber": SILENT_PSID,
        "body": {"kind": "text", "text": "20% off today"},
    });
    let (status, body) = env.send(&request).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_session_in_progress")),
        "{body}"
    );
    // Messenger has no templates to send outside the window instead.
    let template = json!({
        "channelId": messenger.id(), "customerNumber": SILENT_PSID,
        "body": {"kind": "template", "id": "offer", "language": "en_US", "params": []},
    });
    let (status, body) = env.send(&template).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unsupported_body")),
        "{body}"
    );
    assert_eq!(messenger.simulator.request_count(), 0);
    assert!(events(&env, "message.status_changed").await.is_empty());

    // The customer wrote, so we hold the window open; Meta's closed first (its clock, the
    // 24-hour edge): Meta refuses (code 10, subcode 2018278) and the message ends in the
    // platform's `no_session_in_progress`, sent once and not tried again.
    customer_writes(&env, &messenger, PSID, "hello").await;
    messenger.simulator.set_last_inbound(Product::Messenger, PSID, None);
    let id = send_text(&env, &messenger, json!({"customerNumber": PSID}), "Your order").await;
    let refused = wait_status(&env, &id, "no_session_in_progress").await;
    assert_eq!(refused["statusCode"], 404, "{refused}");
    assert_eq!(statuses(&refused), ["queued", "no_session_in_progress"]);
    let requests = messenger.simulator.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].status, Some(400));
    assert_eq!(told(&env, &id).await, ["queued", "no_session_in_progress"]);
}

#[tokio::test]
async fn a_messenger_webhook_without_the_app_secret_s_signature_changes_nothing() {
    let env = start().await;
    let messenger = messenger(&env).await;
    messenger.simulator.script(PSID, Script::stop(Outcome::StopAtDelivered));
    customer_writes(&env, &messenger, PSID, "hi").await;
    let id = send_text(&env, &messenger, json!({"customerNumber": PSID}), "Hello!").await;
    wait_status(&env, &id, "delivered").await;
    let page_id = messenger.page_id();
    let now = chrono::Utc::now().timestamp_millis();
    // A read of our message, and a STOP from the customer: each would change something.
    let read = json!({"object": "page", "entry": [{"id": page_id, "time": now, "messaging": [{
        "sender": {"id": PSID}, "recipient": {"id": page_id}, "timestamp": now,
        "read": {"watermark": now},
    }]}]})
    .to_string();
    let stop = json!({"object": "page", "entry": [{"id": page_id, "time": now, "messaging": [{
        "sender": {"id": PSID}, "recipient": {"id": page_id}, "timestamp": now,
        "message": {"mid": "m_forged", "text": "STOP"},
    }]}]})
    .to_string();
    let url = messenger.webhook(&env);
    let secret = messenger.simulator.config().app_secret.clone();
    for body in [&read, &stop] {
        let forged = hazina_providers::meta::sign(b"not the app secret", body.as_bytes());
        for signature in [None, Some("sha256=00"), Some(forged.as_str())] {
            let mut request = env.server.http.post(&url).body(body.clone());
            if let Some(signature) = signature {
                request = request.header("x-hub-signature-256", signature);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{signature:?} {body}");
        }
        // Signed by the app secret, but at another channel's token: no such callback.
        let wrong_token = url.replace(
            messenger.channel["callbackUrls"]["webhook"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap(),
            "forged-token",
        );
        let signature = hazina_providers::meta::sign(secret.as_bytes(), body.as_bytes());
        let response = env
            .server
            .http
            .post(&wrong_token)
            .header("x-hub-signature-256", &signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{body}");
    }
    let message = env.message(&id).await;
    assert_eq!(statuses(&message), ["queued", "sent", "delivered"]);
    let received = events(&env, "message.received").await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(events(&env, "messaging.consent_changed").await.is_empty());

    // The same read, signed with the app secret, is taken: the body itself was never the
    // problem.
    let signature = hazina_providers::meta::sign(secret.as_bytes(), read.as_bytes());
    let response =
        env.server.http.post(&url).header("x-hub-signature-256", signature).body(read).send();
    assert_eq!(response.await.unwrap().status(), StatusCode::OK);
    wait_status(&env, &id, "read").await;
}

#[tokio::test]
async fn the_messenger_handshake_echoes_the_challenge_only_for_the_channel_s_verify_token() {
    let env = start().await;
    let messenger = messenger(&env).await;
    // As Meta runs it when the webhook is set up.
    messenger.simulator.verify_webhook().await.unwrap();
    let url = messenger.webhook(&env);
    let verify_token = messenger.simulator.config().verify_token.clone();
    let handshake = |url: String, query: String| {
        let http = env.server.http.clone();
        async move {
            let response = http.get(format!("{url}?{query}")).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let query = |mode: &str, token: &str| {
        format!("hub.mode={mode}&hub.challenge=1158201444&hub.verify_token={token}")
    };
    assert_eq!(
        handshake(url.clone(), query("subscribe", &verify_token)).await,
        (StatusCode::OK, "1158201444".to_owned())
    );
    for wrong in [
        query("subscribe", "not-the-token"),
        query("subscribe", ""),
        query("unsubscribe", &verify_token),
        "hub.mode=subscribe&hub.challenge=1158201444".to_owned(),
    ] {
        let (status, body) = handshake(url.clone(), wrong.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{wrong}: {body}");
        assert!(!body.contains("1158201444"), "{wrong}: {body}");
    }
    // The right verify token at a wrong channel token: no such callback.
    let token = messenger.channel["callbackUrls"]["webhook"].as_str().unwrap().rsplit('/').next();
    let forged = url.replace(token.unwrap(), "forged-token");
    let (status, body) = handshake(forged, query("subscribe", &verify_token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn watermarks_that_come_before_the_send_s_answer_still_move_the_message() {
    let env = start().await;
    let messenger = messenger(&env).await;
    // Meta says nothing of its own: only the customer's client moves the message on.
    messenger.simulator.script(PSID, Script::stop(Outcome::StopAtSent));
    customer_writes(&env, &messenger, PSID, "Where is my parcel?").await;

    // Meta takes the send, but its answer (the message's id) is slow to come back.
    messenger.simulator.hold_answers(PSID);
    let id = send_text(&env, &messenger, json!({"customerNumber": PSID}), "On its way").await;
    wait_for("the send's answer held back", Duration::from_secs(20), || async {
        (messenger.simulator.held_answers() == 1).then_some(())
    })
    .await
    .unwrap();
    // Meanwhile the customer's client (an older one, without `mids`) reports the message
    // delivered and then read: watermarks naming no message, for one whose provider id we do
    // not know yet.
    let delivered = messenger
        .simulator
        .messenger_receipt(PSID, MessengerReceipt::Delivered { mids: Vec::new() })
        .await;
    assert_eq!(delivered.status, Some(200), "{delivered:?}");
    let read = messenger.simulator.messenger_receipt(PSID, MessengerReceipt::Read).await;
    assert_eq!(read.status, Some(200), "{read:?}");
    let waiting = env.message(&id).await;
    assert_eq!(waiting["providerMessageId"], Value::Null, "{waiting}");
    assert_eq!(statuses(&waiting), ["queued"]);

    // The answer comes: the watermarks kept for the customer move the message, in order.
    messenger.simulator.release_answers(PSID);
    let message = wait_status(&env, &id, "read").await;
    assert_eq!(statuses(&message), ["queued", "sent", "delivered", "read"]);
    assert_eq!(told(&env, &id).await, ["queued", "sent", "delivered", "read"]);
    let requests = messenger.simulator.requests();
    let last = requests.last().unwrap();
    assert_eq!(message["providerMessageId"], json!(last.message_id), "{message}");

    // A kept watermark covers only what was recorded before it: the next message stays sent
    // (the watermarks are applied in the transaction that records its provider id, so it is
    // final once it is `sent`).
    let next =
        send_text(&env, &messenger, json!({"customerNumber": PSID}), "Out for delivery").await;
    let sent = wait_status(&env, &next, "sent").await;
    assert_eq!(statuses(&sent), ["queued", "sent"]);
    assert_eq!(statuses(&env.message(&id).await), ["queued", "sent", "delivered", "read"]);
}

/// Moves the customer's last message to us `ago` into the past, for us and for Meta: their
/// window shut as time would have shut it.
async fn wrote_ago(env: &Env, messenger: &Messenger, psid: &str, ago: chrono::TimeDelta) {
    let at = chrono::Utc::now() - ago;
    messenger.simulator.set_last_inbound(Product::Messenger, psid, Some(at));
    let client = env.server.db.pool().get().await.unwrap();
    let moved = client
        .execute(
            "UPDATE messaging_contacts SET last_inbound_at = $3
             WHERE org_id = $1 AND channel_id = $2
                 AND customer_id = (SELECT customer_id FROM customer_numbers
                                    WHERE org_id = $1 AND number = $4)",
            &[&env.server.org.0, &messenger.id().parse::<uuid::Uuid>().unwrap(), &at, &psid],
        )
        .await
        .unwrap();
    assert_eq!(moved, 1);
}

/// A message to `psid` with `providerTag` `tag` (none for `Null`); the answer.
async fn send_tagged(
    env: &Env,
    messenger: &Messenger,
    psid: &str,
    tag: Value,
) -> (StatusCode, Value) {
    let mut request = json!({
        "channelId": messenger.id(), "customerNumber": psid,
        "body": {"kind": "text", "text": "Your parcel KE-1042 was delivered."},
    });
    if !tag.is_null() {
        request["providerTag"] = tag;
    }
    env.send(&request).await
}

#[tokio::test]
async fn a_tagged_messenger_message_goes_as_a_message_tag_outside_the_window_too() {
    let env = start().await;
    let messenger = messenger(&env).await;
    for psid in [PSID, SILENT_PSID] {
        messenger.simulator.script(psid, Script::stop(Outcome::StopAtDelivered));
    }
    let refused = |answer: (StatusCode, Value), code: &str| {
        assert_eq!(
            (answer.0, answer.1["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{}",
            answer.1
        );
    };

    // A customer who never wrote: untagged, or a person's answer (7 days after their last
    // message, of which there is none), refused before anything is made or sent.
    refused(
        send_tagged(&env, &messenger, SILENT_PSID, Value::Null).await,
        "no_session_in_progress",
    );
    refused(
        send_tagged(&env, &messenger, SILENT_PSID, json!("HUMAN_AGENT")).await,
        "no_session_in_progress",
    );
    assert_eq!(messenger.simulator.request_count(), 0);
    assert!(events(&env, "customer.created").await.is_empty());
    // An update on their purchase goes, as MESSAGE_TAG with its tag.
    let (status, sent) =
        send_tagged(&env, &messenger, SILENT_PSID, json!("POST_PURCHASE_UPDATE")).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(sent["providerTag"], "POST_PURCHASE_UPDATE", "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();
    let delivered = wait_status(&env, &id, "delivered").await;
    assert_eq!(delivered["providerTag"], "POST_PURCHASE_UPDATE", "{delivered}");
    let requests = messenger.simulator.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].status, Some(200));
    assert_eq!(requests[0].body["recipient"], json!({"id": SILENT_PSID}));
    assert_eq!(requests[0].body["messaging_type"], "MESSAGE_TAG");
    assert_eq!(requests[0].body["tag"], "POST_PURCHASE_UPDATE");

    // A customer who wrote two days ago: untagged refused; a person's answer goes.
    customer_writes(&env, &messenger, PSID, "Can someone call me?").await;
    wrote_ago(&env, &messenger, PSID, chrono::TimeDelta::days(2)).await;
    refused(send_tagged(&env, &messenger, PSID, Value::Null).await, "no_session_in_progress");
    let (status, sent) = send_tagged(&env, &messenger, PSID, json!("HUMAN_AGENT")).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    wait_status(&env, sent["id"].as_str().unwrap(), "delivered").await;
    let requests = messenger.simulator.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        (&requests[1].body["messaging_type"], &requests[1].body["tag"]),
        (&json!("MESSAGE_TAG"), &json!("HUMAN_AGENT"))
    );

    // Inside the window, a tag still goes as a tag (Meta takes it there too).
    customer_writes(&env, &messenger, PSID, "Thanks!").await;
    let (status, sent) = send_tagged(&env, &messenger, PSID, json!("ACCOUNT_UPDATE")).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    wait_status(&env, sent["id"].as_str().unwrap(), "delivered").await;
    let requests = messenger.simulator.requests();
    assert_eq!(
        (&requests[2].body["messaging_type"], &requests[2].body["tag"]),
        (&json!("MESSAGE_TAG"), &json!("ACCOUNT_UPDATE"))
    );

    // Meta holds a person's answer to 7 days too: when its clock says the customer wrote 8
    // days ago (ours, a moment ago), Meta refuses, and the message ends as our check would
    // have ended it.
    messenger.simulator.set_last_inbound(
        Product::Messenger,
        PSID,
        Some(chrono::Utc::now() - chrono::TimeDelta::days(8)),
    );
    let (status, sent) = send_tagged(&env, &messenger, PSID, json!("HUMAN_AGENT")).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let ended = wait_status(&env, sent["id"].as_str().unwrap(), "no_session_in_progress").await;
    assert_eq!(statuses(&ended), ["queued", "no_session_in_progress"]);
    assert_eq!(messenger.simulator.requests()[3].status, Some(400));

    // A value Messenger does not know, or a tag on a channel without tags: refused.
    for tag in [json!("SHIPPING_UPDATE"), json!("account_update"), json!("")] {
        refused(send_tagged(&env, &messenger, PSID, tag).await, "invalid_body");
    }
    let sms = env.channel("sms", "21525", None).await;
    let (status, body) = env
        .send(&json!({
            "channelId": sms["id"], "customerNumber": "+254711000001",
            "body": {"kind": "text", "text": "Your parcel was delivered."},
            "providerTag": "POST_PURCHASE_UPDATE",
        }))
        .await;
    refused((status, body), "unsupported_body");
    assert_eq!(messenger.simulator.request_count(), 4);
    assert!(env.at.sms_requests().is_empty());
}

/// A watermark covers what had been sent by its time, not what was merely queued: a message
/// whose first request hung, read past by the customer meanwhile and sent again after, is
/// delivered but not read until a later read covers it.
#[tokio::test]
async fn a_read_before_a_message_went_out_does_not_mark_it_read() {
    let env = start().await;
    let messenger = messenger(&env).await;
    messenger.simulator.script(PSID, Script::stop(Outcome::StopAtDelivered));
    customer_writes(&env, &messenger, PSID, "Any news?").await;
    messenger.simulator.fail_next(1, meta::Outage::Hang);
    let id = send_text(&env, &messenger, json!({"customerNumber": PSID}), "Tomorrow").await;
    wait_for("the first request hanging", Duration::from_secs(20), || async {
        (messenger.simulator.request_count() == 1).then_some(())
    })
    .await
    .unwrap();
    // The customer reads the conversation while our first request hangs.
    let read = messenger.simulator.messenger_receipt(PSID, MessengerReceipt::Read).await;
    assert_eq!(read.status, Some(200), "{read:?}");
    // The request times out and is sent again, after the read: delivered, not read.
    let delivered = wait_status(&env, &id, "delivered").await;
    assert_eq!(statuses(&delivered), ["queued", "sent", "delivered"]);
    assert_eq!(messenger.simulator.request_count(), 2);
    // A read after it covers it.
    let read = messenger.simulator.messenger_receipt(PSID, MessengerReceipt::Read).await;
    assert_eq!(read.status, Some(200), "{read:?}");
    let message = wait_status(&env, &id, "read").await;
    assert_eq!(statuses(&message), ["queued", "sent", "delivered", "read"]);
}
