//! Cart abandonment, the platform's canonical flow, against a running Hazina:
//!
//! 1. a web shop's page records `cart_updated` for a customer with a short-lived client token
//!    (the browser never holds the app's key);
//! 2. the app sets a reminder for the customer, to look at the cart again in two seconds;
//! 3. the reminder falls due and reaches the app's webhook receiver, which checks the
//!    signature (Standard Webhooks) and pays the customer a loyalty reward into a wallet,
//!    under a transaction id derived from the event's id (so that a delivery repeated
//!    pays once);
//! 4. the payment's success arrives as another webhook, and the customer's timeline shows the
//!    cart, the reward and the activity that led to it, linked.
//!
//! ```sh
//! hazina --allow-private-webhook-urls          # the receiver listens on loopback
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
    /// The reward payment's `payment.status_changed` event.
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

/// What the app holds once set up: its client, the receiver's queue of verified events, the
/// purse rewards come from and the customer.
struct Shop {
    api: Api,
    events: mpsc::UnboundedReceiver<Value>,
    receiver: tokio::task::JoinHandle<std::io::Result<()>>,
    purse_id: String,
    customer_id: String,
}

/// Starts the app's receiver and registers it, makes the rewards purse (a credit line, an org
/// key's to make), the customer and the wallet rewards go to.
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
                "eventTypes": ["reminder.due", "payment.status_changed"],
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
            json!({ "currencyCode": "KES", "name": "loyalty rewards", "overdraftLimit": "10000" }),
        )
        .await?;
    let purse_id = purse["purseId"].as_str().context("no purse id")?.to_owned();
    let customer = api
        .post(
            "/v1/customers",
            app_key,
            json!({ "customerNumber": { "number": "+254712345678", "provider": "cellular" } }),
        )
        .await?;
    let customer_id = customer["customerId"].as_str().context("no customer id")?.to_owned();
    let wallets = format!("/v1/customers/{customer_id}/wallets");
    api.post(&wallets, app_key, json!({ "walletId": "loyalty", "currencyCode": "KES" })).await?;
    Ok(Shop { api, events, receiver, purse_id, customer_id })
}

/// Pays the customer a reward for the reminder `event_id`, under an id derived from it: a
/// delivery repeated pays once. The activity behind it is linked on the timeline.
async fn pay_reward(shop: &Shop, app_key: &str, event_id: &str) -> anyhow::Result<uuid::Uuid> {
    let reward_id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, event_id.as_bytes());
    shop.api
        .post(
            "/v1/payments",
            app_key,
            json!({
                "transactionId": reward_id,
                "debitParty": { "purse": { "purseId": shop.purse_id } },
                "creditParty": {
                    "wallet": { "customerId": shop.customer_id, "walletId": "loyalty" }
                },
                "value": { "currencyCode": "KES", "amount": "50" },
                "narration": "A reward for coming back to your cart",
                "context": {
                    "customerId": shop.customer_id,
                    "activity": {
                        "source": "loyalty", "sessionId": "visit-1", "key": "reward_paid",
                        "properties": { "reminder": event_id },
                    },
                },
            }),
        )
        .await?;
    Ok(reward_id)
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

    // 3. The reminder arrives, verified: the cart was left, so the app pays a reward.
    let reminder = next_of(&mut shop.events, "reminder.due", Duration::from_secs(30)).await?;
    if reminder["customerId"] != customer_id.as_str() || reminder["data"]["key"] != "cart-abandoned"
    {
        bail!("a reminder for someone else: {reminder}");
    }
    let event_id = reminder["id"].as_str().context("no event id")?;
    let reward_id = pay_reward(&shop, app_key, event_id).await?;

    // 4. Its success arrives too; the timeline shows it all.
    let payment = loop {
        let event =
            next_of(&mut shop.events, "payment.status_changed", Duration::from_secs(30)).await?;
        if event["data"]["transactionId"] == reward_id.to_string() {
            break event;
        }
    };
    let timeline = shop
        .api
        .call(reqwest::Method::GET, &format!("/v1/customers/{customer_id}/timeline"), app_key, None)
        .await?;
    shop.receiver.abort();
    Ok(Story { customer_id, reminder, payment, timeline })
}

#[tokio::main]
#[allow(clippy::print_stdout)] // an example's output is its point
async fn main() -> anyhow::Result<()> {
    let variable = |name: &str| std::env::var(name).with_context(|| format!("set {name}"));
    let base = std::env::var("HAZINA_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let story = run(&base, &variable("HAZINA_ORG_KEY")?, &variable("HAZINA_APP_KEY")?).await?;
    println!("customer {}", story.customer_id);
    println!("reminder.due: {}", story.reminder["data"]);
    println!("payment.status_changed: {}", story.payment["data"]);
    println!("timeline: {}", serde_json::to_string_pretty(&story.timeline["items"])?);
    Ok(())
}
