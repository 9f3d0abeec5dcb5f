//! Cart abandonment, the platform's canonical flow, against a running Hazina:
//!
//! 1. a web shop's page records `cart_updated` for a customer with a short-lived client token
//!    (the browser never holds the app's key);
//! 2. the app sets a reminder for the customer, to look at the cart again in two seconds;
//! 3. the reminder falls due and reaches the app's webhook receiver, which checks the
//!    signature (Standard Webhooks) and nudges the customer twice: an SMS through Africa's
//!    Talking (its context records a `nudged` activity naming the reminder) and a WhatsApp
//!    template;
//! 4. the customer answers on WhatsApp; the answer reaches the receiver as `message.received`;
//! 5. the app asks the customer to pay by M-Pesa (an STK push), naming the answer as the
//!    message that led to the payment, and its success arrives as another webhook;
//! 6. the customer's timeline shows it all, linked: the cart, the nudge, the messages, the
//!    answer and the payment.
//!
//! The providers are simulators this example starts on loopback (Africa's Talking, Meta's
//! Graph API, M-Pesa), so the server must be allowed to call them and the receiver:
//!
//! ```sh
//! hazina --allow-private-webhook-urls --allow-any-provider-url
//! HAZINA_URL=http://127.0.0.1:8080 HAZINA_ORG_KEY=hz_… HAZINA_APP_KEY=hz_… \
//!     cargo run --example cart_abandonment
//! ```
//!
//! `tests/tests/api/example.rs` runs [`run`] against a test server.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// What the flow saw, for whoever runs it to check.
#[derive(Debug)]
pub struct Story {
    pub customer_id: String,
    /// The `reminder.due` event the receiver verified.
    pub reminder: Value,
    /// The SMS and the WhatsApp nudge, as `POST /v1/messages` answered them.
    pub sms: Value,
    pub whatsapp: Value,
    /// The customer's answer, the `message.received` event.
    pub reply: Value,
    /// The M-Pesa payment's final `payment.status_changed` event.
    pub payment: Value,
    /// The customer's timeline at the end, newest first.
    pub timeline: Value,
}

/// A small client for the API: one base URL, bearer keys, JSON both ways.
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request =
            self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status.is_success(), "{method} {path}: {status} {text}");
        Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? })
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, key, Some(body)).await
    }
}

/// Whether `signatures` (the `webhook-signature` header: `v1,<base64>` items, one per live
/// secret) holds the HMAC-SHA256 of `{id}.{timestamp}.{body}` under `secret` (`whsec_…`).
fn verify(secret: &str, id: &str, timestamp: &str, body: &[u8], signatures: &str) -> bool {
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|key| base64::engine::general_purpose::STANDARD.decode(key).ok())
    else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    signatures.split(' ').filter_map(|item| item.strip_prefix("v1,")).any(|signature| {
        base64::engine::general_purpose::STANDARD
            .decode(signature)
            .is_ok_and(|signature| ring::hmac::verify(&key, &signed, &signature).is_ok())
    })
}

/// The app's webhook receiver: answers at once (a verified event is queued for the app to
/// act on), and refuses what its signature does not vouch for, or what is five minutes old.
fn receive(
    secret: &OnceLock<String>,
    events: &mpsc::UnboundedSender<Value>,
    headers: &HeaderMap,
    body: &[u8],
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures), Some(secret)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        secret.get(),
    ) else {
        return StatusCode::BAD_REQUEST;
    };
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|sent| (chrono::Utc::now().timestamp() - sent).abs() <= 300);
    if !fresh || !verify(secret, id, timestamp, body, signatures) {
        return StatusCode::UNAUTHORIZED;
    }
    match serde_json::from_slice(body) {
        Ok(event) => {
            let _ = events.send(event);
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

/// The next event of `kind`, waiting up to `within`.
async fn next_of(
    events: &mut mpsc::UnboundedReceiver<Value>,
    kind: &str,
    within: Duration,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .with_context(|| format!("no {kind} event within {within:?}"))?
            .context("the receiver stopped")?;
        if event["type"] == kind {
            return Ok(event);
        }
    }
}

/// The customer's number, on SMS, WhatsApp and M-Pesa alike.
const CUSTOMER: &str = "+254712345678";
/// The shop's short code, WhatsApp number and paybill.
const SHORT_CODE: &str = "21525";
const WHATSAPP_NUMBER: &str = "+254711099000";
const WHATSAPP_NUMBER_ID: &str = "106540352242922";
const PAYBILL: &str = "600000";

/// The providers, simulated on loopback: what the server calls, and what calls it back.
struct Providers {
    africastalking: hazina_simulator::africastalking::Simulator,
    meta: hazina_simulator::meta::Simulator,
    /// Where each listens.
    africastalking_url: String,
    meta_url: String,
    mpesa_url: String,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

async fn serve(
    router: axum::Router,
) -> anyhow::Result<(String, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((url, tokio::spawn(async move { axum::serve(listener, router).await })))
}

impl Providers {
    async fn start() -> anyhow::Result<Self> {
        use hazina_simulator::{africastalking, meta, mpesa};
        let africastalking = africastalking::Simulator::new(africastalking::Config::new("at-key"));
        let meta = meta::Simulator::new(meta::Config {
            phone_numbers: vec![(
                WHATSAPP_NUMBER_ID.into(),
                WHATSAPP_NUMBER.trim_start_matches('+').into(),
            )],
            ..meta::Config::default()
        });
        let (africastalking_url, at) = serve(africastalking.router()).await?;
        let (meta_url, graph) = serve(meta.router()).await?;
        let (mpesa_url, daraja) = serve(mpesa::Simulator::new().router()).await?;
        Ok(Self {
            africastalking,
            meta,
            africastalking_url,
            meta_url,
            mpesa_url,
            servers: vec![at, graph, daraja],
        })
    }
}

/// What the app holds once set up: its client, the receiver's queue of verified events, the
/// channels, the providers and the customer.
struct Shop {
    api: Api,
    events: mpsc::UnboundedReceiver<Value>,
    receiver: tokio::task::JoinHandle<std::io::Result<()>>,
    providers: Providers,
    purse_id: String,
    sms_channel: String,
    whatsapp_channel: String,
    customer_id: String,
}

/// Starts the app's receiver and registers it, starts the providers, makes the purse that pays
/// for messages and takes payments, the SMS and WhatsApp channels and the M-Pesa paybill (an
/// org key's to make), and the customer.
async fn set_up(base: &str, org_key: &str, app_key: &str) -> anyhow::Result<Shop> {
    let api = Api {
        base: base.trim_end_matches('/').to_owned(),
        http: reqwest::Client::builder().timeout(Duration::from_secs(20)).build()?,
    };
    let secret = Arc::new(OnceLock::new());
    let (sender, events) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_url = format!("http://{}/hazina-events", listener.local_addr()?);
    let router = axum::Router::new().route(
        "/hazina-events",
        axum::routing::post({
            let secret = Arc::clone(&secret);
            move |headers: HeaderMap, body: Bytes| {
                std::future::ready(receive(&secret, &sender, &headers, &body))
            }
        }),
    );
    let receiver = tokio::spawn(async move { axum::serve(listener, router).await });
    let endpoint = api
        .post(
            "/v1/webhook-endpoints",
            app_key,
            json!({
                "url": receiver_url,
                "eventTypes": ["reminder.due", "payment.status_changed", "message.received"],
                "description": "cart abandonment example",
            }),
        )
        .await?;
    let endpoint_secret = endpoint["secret"].as_str().context("no secret")?.to_owned();
    secret.set(endpoint_secret).ok();

    let purse = api
        .post(
            "/v1/purses",
            org_key,
            json!({ "currencyCode": "KES", "name": "shop", "overdraftLimit": "10000" }),
        )
        .await?;
    let purse_id = purse["purseId"].as_str().context("no purse id")?.to_owned();
    let providers = Providers::start().await?;
    let (sms_channel, whatsapp_channel) = channels(&api, org_key, &providers, &purse_id).await?;
    let customer = api
        .post(
            "/v1/customers",
            app_key,
            json!({ "customerNumber": { "number": CUSTOMER, "provider": "cellular" } }),
        )
        .await?;
    let customer_id = customer["customerId"].as_str().context("no customer id")?.to_owned();
    Ok(Shop {
        api,
        events,
        receiver,
        providers,
        purse_id,
        sms_channel,
        whatsapp_channel,
        customer_id,
    })
}

/// The shop's channels, pointed at the providers and they at the server: SMS (each segment
/// paid from the purse), WhatsApp, and the M-Pesa paybill. The SMS and WhatsApp channels' ids.
async fn channels(
    api: &Api,
    org_key: &str,
    providers: &Providers,
    purse_id: &str,
) -> anyhow::Result<(String, String)> {
    let sms = api
        .post(
            "/v1/messaging-channels",
            org_key,
            json!({
                "channel": "sms", "provider": "africastalking", "channelNumber": SHORT_CODE,
                "baseUrl": providers.africastalking_url,
                "credentials": { "username": "shop", "apiKey": "at-key" },
                "unitPrice": { "currencyCode": "KES", "amount": "0.80" }, "purseId": purse_id,
            }),
        )
        .await?;
    let reports = sms["callbackUrls"]["smsDeliveryReports"].as_str().context("no report URL")?;
    let reports = format!("{}{reports}", api.base);
    providers.africastalking.configure(|config| config.delivery_report_url = Some(reports));
    let config = providers.meta.config().clone();
    let whatsapp = api
        .post(
            "/v1/messaging-channels",
            org_key,
            json!({
                "channel": "whatsapp", "provider": "meta", "channelNumber": WHATSAPP_NUMBER,
                "baseUrl": providers.meta_url,
                "credentials": {
                    "accessToken": config.access_token, "appSecret": config.app_secret,
                    "verifyToken": config.verify_token, "phoneNumberId": WHATSAPP_NUMBER_ID,
                },
                "unitPrice": { "currencyCode": "KES", "amount": "0" },
            }),
        )
        .await?;
    let webhook = whatsapp["callbackUrls"]["webhook"].as_str().context("no webhook URL")?;
    providers.meta.set_webhook_url(&format!("{}{webhook}", api.base));
    providers.meta.verify_webhook().await.context("the WhatsApp handshake")?;
    api.post(
        "/v1/payment-channels",
        org_key,
        json!({
            "provider": "mpesa", "channelNumber": PAYBILL, "currencyCode": "KES",
            "baseUrl": providers.mpesa_url,
            "credentials": {
                "consumerKey": "key", "consumerSecret": "secret",
                "passkey": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
            },
        }),
    )
    .await?;
    let id = |value: &Value| value["id"].as_str().map(str::to_owned).context("no channel id");
    Ok((id(&sms)?, id(&whatsapp)?))
}

/// The app's nudges for the reminder `event_id`: an SMS whose context records the `nudged`
/// activity (naming the reminder), and a WhatsApp template (the customer has not written, so
/// free-form text would be refused).
async fn nudge(shop: &Shop, app_key: &str, event_id: &str) -> anyhow::Result<(Value, Value)> {
    let sms = shop
        .api
        .post(
            "/v1/messages",
            app_key,
            json!({
                "channelId": shop.sms_channel, "customerId": shop.customer_id,
                "body": { "kind": "text", "text": "Your cart is waiting: 3 items, KES 1,200." },
                "context": {
                    "customerId": shop.customer_id,
                    "activity": {
                        "source": "shop-app", "sessionId": "visit-1", "key": "nudged",
                        "properties": { "reminder": event_id },
                    },
                },
            }),
        )
        .await?;
    let whatsapp = shop
        .api
        .post(
            "/v1/messages",
            app_key,
            json!({
                "channelId": shop.whatsapp_channel, "customerId": shop.customer_id,
                "body": {
                    "kind": "template", "id": "cart_reminder", "language": "en_US",
                    "params": ["3 items", "KES 1,200"],
                },
            }),
        )
        .await?;
    Ok((sms, whatsapp))
}

/// Asks the customer to pay for the cart by M-Pesa (an STK push to their phone) into the
/// shop's purse, naming the answer that led to it.
async fn collect(shop: &Shop, app_key: &str, reply_id: &str) -> anyhow::Result<String> {
    let payment = shop
        .api
        .post(
            "/v1/payments",
            app_key,
            json!({
                "debitParty": { "customer": {
                    "customerNumber": { "number": CUSTOMER, "provider": "cellular" },
                    "channelNumber": PAYBILL,
                } },
                "creditParty": { "purse": { "purseId": shop.purse_id } },
                "value": { "currencyCode": "KES", "amount": "1200" },
                "narration": "Cart 1043",
                "context": { "customerId": shop.customer_id, "messageId": reply_id },
            }),
        )
        .await?;
    payment["transactionId"].as_str().map(str::to_owned).context("no transaction id")
}

/// Runs the flow against the server at `base` with an org key and an app key.
///
/// # Errors
///
/// Whatever step fails, with what the server answered.
pub async fn run(base: &str, org_key: &str, app_key: &str) -> anyhow::Result<Story> {
    let mut shop = set_up(base, org_key, app_key).await?;
    let customer_id = shop.customer_id.clone();

    // 1. The shop's page, with a token good for this customer's activities only.
    let token = shop
        .api
        .post("/v1/auth-tokens", app_key, json!({ "customerId": customer_id, "ttlSeconds": 300 }))
        .await?;
    let token = token["token"].as_str().context("no token")?.to_owned();
    shop.api
        .post(
            &format!("/v1/customers/{customer_id}/activities"),
            &token,
            json!({
                "source": "web-shop", "sessionId": "visit-1", "key": "cart_updated",
                "properties": { "cartTotal": "1200", "items": "3" },
            }),
        )
        .await?;

    // 2. The app: look at this cart again in two seconds.
    let remind_at = chrono::Utc::now() + chrono::TimeDelta::seconds(2);
    shop.api
        .call(
            reqwest::Method::PUT,
            &format!("/v1/customers/{customer_id}/reminders/cart-abandoned"),
            app_key,
            Some(json!({ "remindAt": remind_at, "payload": "{\"cartTotal\":\"1200\"}" })),
        )
        .await?;

    // 3. The reminder arrives, verified: the cart was left, so the app nudges the customer.
    let reminder = next_of(&mut shop.events, "reminder.due", Duration::from_secs(30)).await?;
    if reminder["customerId"] != customer_id.as_str() || reminder["data"]["key"] != "cart-abandoned"
    {
        bail!("a reminder for someone else: {reminder}");
    }
    let event_id = reminder["id"].as_str().context("no event id")?;
    let (sms, whatsapp) = nudge(&shop, app_key, event_id).await?;

    // 4. The customer answers the WhatsApp nudge once it has reached them.
    let nudge_id = whatsapp["id"].as_str().context("no message id")?;
    let path = format!("/v1/messages/{nudge_id}");
    let mut sent = None;
    for _ in 0..600 {
        let message = shop.api.call(reqwest::Method::GET, &path, app_key, None).await?;
        if message["status"] == "delivered" || message["status"] == "read" {
            sent = message["providerMessageId"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = sent.context("the WhatsApp nudge was not delivered within 30 s")?;
    let answer = hazina_simulator::meta::WhatsAppInbound::Text("Yes, I still want it".into());
    shop.providers.meta.inject_whatsapp(WHATSAPP_NUMBER_ID, CUSTOMER, answer, Some(&sent)).await;
    let reply = next_of(&mut shop.events, "message.received", Duration::from_secs(30)).await?;
    let reply_id = reply["data"]["messageId"].as_str().context("no message id")?.to_owned();

    // 5. The app asks for the money; the customer approves on their phone.
    let payment_id = collect(&shop, app_key, &reply_id).await?;
    let payment = loop {
        let event =
            next_of(&mut shop.events, "payment.status_changed", Duration::from_secs(30)).await?;
        // The last word: a code of 300 (success) or more (a failure).
        let settled = event["data"]["statusCode"].as_u64().is_some_and(|code| code >= 300);
        if event["data"]["transactionId"] == payment_id.as_str() && settled {
            break event;
        }
    };

    // 6. The timeline shows it all.
    let timeline = shop
        .api
        .call(reqwest::Method::GET, &format!("/v1/customers/{customer_id}/timeline"), app_key, None)
        .await?;
    shop.receiver.abort();
    shop.providers.servers.iter().for_each(tokio::task::JoinHandle::abort);
    Ok(Story { customer_id, reminder, sms, whatsapp, reply, payment, timeline })
}

#[tokio::main]
#[allow(clippy::print_stdout)] // an example's output is its point
async fn main() -> anyhow::Result<()> {
    let variable = |name: &str| std::env::var(name).with_context(|| format!("set {name}"));
    let base = std::env::var("HAZINA_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let story = run(&base, &variable("HAZINA_ORG_KEY")?, &variable("HAZINA_APP_KEY")?).await?;
    println!("customer {}", story.customer_id);
    println!("reminder.due: {}", story.reminder["data"]);
    println!("sms: {}", story.sms["status"]);
    println!("whatsapp: {}", story.whatsapp["status"]);
    println!("message.received: {}", story.reply["data"]);
    println!("payment.status_changed: {}", story.payment["data"]);
    println!("timeline: {}", serde_json::to_string_pretty(&story.timeline["items"])?);
    Ok(())
}
