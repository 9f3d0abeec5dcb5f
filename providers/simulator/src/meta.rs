//! The Meta Graph API simulator: the WhatsApp Cloud API and the Messenger Send API on local
//! HTTP, with Meta's paths, bodies, error shape and signed webhooks.
//!
//! Routes (at the root, as `graph.facebook.com` has them):
//!
//! - `POST /{version}/{phone_number_id}/messages`: a WhatsApp send, for a phone number id the
//!   [`Config`] names. Answers `{"messaging_product","contacts":[{"input","wa_id"}],
//!   "messages":[{"id":"wamid.…"}]}`, then POSTs status webhooks (`sent`, `delivered`, `read`,
//!   or `failed`) as the recipient's [`Script`] says.
//! - `POST /{version}/me/messages` (or the page id for `me`): a Messenger send. Answers
//!   `{"recipient_id","message_id":"m_…"}`, then POSTs a `delivery` (with `mids` and a
//!   watermark) and a `read` webhook as the script says.
//!
//! Both want the configured token as `Authorization: Bearer …` or `access_token=…` (400 with
//! code 2500 without one, 401 with code 190 for another), validate the body as Meta does
//! (400 with code 100 and a Graph error body), and keep the 24-hour rule: free-form messages
//! to a customer who has not written within 24 hours are refused (WhatsApp code 131047;
//! Messenger code 10, subcode 2018278), templates (WhatsApp) and tagged messages (Messenger,
//! with a known tag; `HUMAN_AGENT` and `CUSTOMER_FEEDBACK` only within 7 days) are not.
//! Customers open their window by writing in: see
//! [`Simulator::inject_whatsapp`], [`Simulator::inject_messenger`] and
//! [`Simulator::set_last_inbound`]. A Messenger customer's client also reports on its own,
//! whenever the test says (the customer opens the conversation later, an older client
//! reports a watermark without `mids`): [`Simulator::messenger_receipt`].
//!
//! Every webhook is signed with `X-Hub-Signature-256` under the app secret and goes to the
//! webhook URL ([`Simulator::set_webhook_url`]) over plain HTTP on a pooled client, once (a
//! failed delivery is recorded, not retried). [`Simulator::fail_next`] scripts outages (500,
//! 429 with `Retry-After`, or a request that never answers), and
//! [`Simulator::hold_answers`] holds back the answers to one recipient's sends until
//! released; every request and delivery is recorded. State sits behind one mutex held only for bookkeeping, so that thousands of
//! sends a second go through.

// The handlers pass axum `Response`s around by value, as axum does.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, TimeDelta, Utc};
use hazina_providers::meta::{self, ErrorData, GraphError, GraphErrorBody};
use hazina_providers::{messenger, whatsapp};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::Rng as _;
use serde_json::{Value, json};

/// How long a customer's message keeps the window open.
const WINDOW: TimeDelta = TimeDelta::hours(24);

/// How long a webhook receiver may take to answer before the delivery counts as failed.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Configuration and scripts
// ---------------------------------------------------------------------------------------------

/// Who the simulator is: the app's secret and token, the business numbers and the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Signs every webhook (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// The one access token the endpoints take.
    pub access_token: String,
    /// Sent in the verification handshake.
    pub verify_token: String,
    /// The WhatsApp Business Account id (`entry[].id`).
    pub waba_id: String,
    /// WhatsApp phone number ids and their display numbers (`15550783881`).
    pub phone_numbers: Vec<(String, String)>,
    /// The Messenger page id (`/me` is this page).
    pub page_id: String,
    /// The approved WhatsApp templates by name; empty takes any name.
    pub templates: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            app_secret: "simulator-app-secret".into(),
            access_token: "simulator-access-token".into(),
            verify_token: "simulator-verify-token".into(),
            waba_id: "102290129340398".into(),
            phone_numbers: vec![("106540352242922".into(), "15550783881".into())],
            page_id: "1067280970047460".into(),
            templates: Vec::new(),
        }
    }
}

/// How far a message gets, and what its webhooks say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Outcome {
    /// Sent, delivered and read.
    #[default]
    Read,
    /// Sent and delivered, never read.
    StopAtDelivered,
    /// Sent only (WhatsApp `sent`; Messenger says nothing).
    StopAtSent,
    /// WhatsApp: `sent`, then `failed` with this error code and title. Messenger sends no
    /// webhook for a failure.
    Fail { code: i64, title: String },
}

/// What the simulator does with the messages to one recipient (WhatsApp digits or PSID).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    pub outcome: Outcome,
    /// Every status webhook is sent twice.
    pub duplicate: bool,
    /// The status webhooks go out latest first (`read` before `delivered` before `sent`).
    pub out_of_order: bool,
    /// The send itself is refused with this HTTP status and Graph error.
    pub refuse: Option<(u16, GraphError)>,
}

impl Script {
    /// The message fails with a WhatsApp error code.
    pub fn fail(code: i64, title: &str) -> Self {
        Self { outcome: Outcome::Fail { code, title: title.to_owned() }, ..Self::default() }
    }

    /// The message goes no further than `outcome`.
    pub fn stop(outcome: Outcome) -> Self {
        Self { outcome, ..Self::default() }
    }

    /// The send is refused with `status` and `error`.
    pub fn refuse(status: u16, error: GraphError) -> Self {
        Self { refuse: Some((status, error)), ..Self::default() }
    }

    /// The same script, with every webhook sent twice.
    #[must_use]
    pub fn duplicated(self) -> Self {
        Self { duplicate: true, ..self }
    }

    /// The same script, with the webhooks in reverse order.
    #[must_use]
    pub fn out_of_order(self) -> Self {
        Self { out_of_order: true, ..self }
    }
}

/// A scripted failure of the next request, whatever it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outage {
    /// 500 with Graph code 2 ("Please retry your request later").
    ServerError,
    /// 429 with `Retry-After` and Graph code 4 (application request limit).
    RateLimited { retry_after_seconds: u64 },
    /// No answer, ever: the client's deadline ends it.
    Hang,
}

/// Which product a request or webhook belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Product {
    WhatsApp,
    Messenger,
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// A request the simulator received and what it answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// `None` when the path named neither a phone number nor the page.
    pub product: Option<Product>,
    pub version: String,
    /// The phone number id, `me`, or the page id.
    pub node: String,
    /// Whether it carried the configured token.
    pub authorized: bool,
    /// The body as JSON (`Null` when unreadable).
    pub body: Value,
    /// The HTTP status answered; `None` for a request made to hang.
    pub status: Option<u16>,
    /// The `wamid.…` or `m_…` given to an accepted message.
    pub message_id: Option<String>,
}

/// One webhook POST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub product: Product,
    pub url: String,
    /// The body as sent (the bytes that were signed).
    pub body: String,
    /// The `X-Hub-Signature-256` value.
    pub signature: String,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// Why the verification handshake failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("no webhook URL is set")]
    NoWebhookUrl,
    #[error("the webhook URL could not be reached: {0}")]
    Unreachable(String),
    #[error("the webhook answered HTTP {0}")]
    Status(u16),
    #[error("the webhook echoed {echoed:?}, not the challenge {challenge:?}")]
    WrongEcho { challenge: String, echoed: String },
}

#[derive(Debug, Default)]
struct Records {
    webhook_url: Option<String>,
    scripts: HashMap<String, Script>,
    /// When each customer (`whatsapp:<digits>` or `messenger:<psid>`) last wrote in.
    last_inbound: HashMap<String, DateTime<Utc>>,
    outages: VecDeque<Outage>,
    /// Recipients whose sends' answers are held back, each with its gate (`true` opens it).
    holds: HashMap<String, tokio::sync::watch::Sender<bool>>,
    /// How many answers are being held back right now.
    held: usize,
    requests: Vec<Request>,
    deliveries: Vec<Delivery>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    state: Mutex<Records>,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

/// The Graph API simulator. Cloning is cheap and shares the state.
#[derive(Clone, Debug)]
pub struct Simulator {
    inner: Arc<Inner>,
}

/// How scripts and holds name a recipient: WhatsApp digits without `+`, or a PSID.
fn recipient_key(recipient: &str) -> String {
    if recipient.starts_with('+') { whatsapp::digits(recipient) } else { recipient.to_owned() }
}

fn window_key(product: Product, customer: &str) -> String {
    match product {
        Product::WhatsApp => format!("whatsapp:{}", whatsapp::digits(customer)),
        Product::Messenger => format!("messenger:{customer}"),
    }
}

impl Simulator {
    /// A simulator for `config`, with no webhook URL, no scripts (every message is read) and
    /// no customer who has written in.
    pub fn new(config: Config) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new()).build(connector);
        Self { inner: Arc::new(Inner { config, state: Mutex::new(Records::default()), http }) }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The routes, to be served at the root (the client's base URL is the server's).
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/{version}/{node}/messages", post(send_message))
            .with_state(self.clone())
    }

    /// Where webhooks go (`http://…`).
    pub fn set_webhook_url(&self, url: &str) {
        self.lock().webhook_url = Some(url.to_owned());
    }

    /// Scripts the messages to `recipient` (WhatsApp digits, with or without `+`, or a PSID).
    pub fn script(&self, recipient: &str, script: Script) {
        self.lock().scripts.insert(recipient_key(recipient), script);
    }

    /// Holds back the answers to sends to `recipient` (as [`Simulator::script`] names one)
    /// until [`Simulator::release_answers`]: each send is taken and its webhooks go out as
    /// usual, but its HTTP answer waits, as when Meta's answer is slow to come back and the
    /// customer's client reports first. [`Simulator::held_answers`] tells when a send waits.
    pub fn hold_answers(&self, recipient: &str) {
        let key = recipient_key(recipient);
        self.lock().holds.entry(key).or_insert_with(|| tokio::sync::watch::channel(false).0);
    }

    /// Sends the answers held back for `recipient`, and no longer holds new ones.
    pub fn release_answers(&self, recipient: &str) {
        if let Some(gate) = self.lock().holds.remove(&recipient_key(recipient)) {
            gate.send_replace(true);
        }
    }

    /// How many answers are being held back right now.
    pub fn held_answers(&self) -> usize {
        self.lock().held
    }

    /// The next `count` requests fail as `outage` says (after any outages already queued).
    pub fn fail_next(&self, count: usize, outage: Outage) {
        self.lock().outages.extend(std::iter::repeat_n(outage, count));
    }

    /// Sets (or with `None` forgets) when a customer last wrote in, which decides whether
    /// free-form messages may go to them.
    pub fn set_last_inbound(&self, product: Product, customer: &str, at: Option<DateTime<Utc>>) {
        let key = window_key(product, customer);
        let mut state = self.lock();
        match at {
            Some(at) => state.last_inbound.insert(key, at),
            None => state.last_inbound.remove(&key),
        };
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// How many requests were received so far.
    pub fn request_count(&self) -> usize {
        self.lock().requests.len()
    }

    /// Every webhook POST so far, in the order they completed.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// Forgets scripts, outages, windows and records, and sends the answers held back; the
    /// webhook URL stays.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.scripts.clear();
        state.outages.clear();
        for (_, gate) in state.holds.drain() {
            gate.send_replace(true);
        }
        state.last_inbound.clear();
        state.requests.clear();
        state.deliveries.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        // A panic while holding the lock leaves plain records behind, still worth reading.
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn window_open(&self, product: Product, customer: &str) -> bool {
        let key = window_key(product, customer);
        self.lock().last_inbound.get(&key).is_some_and(|at| Utc::now() - *at < WINDOW)
    }

    // -----------------------------------------------------------------------------------------
    // Handshake
    // -----------------------------------------------------------------------------------------

    /// Runs Meta's verification handshake against the webhook URL: a GET with
    /// `hub.mode=subscribe`, the verify token and a random challenge, which must come back
    /// with 200 as the body.
    ///
    /// # Errors
    ///
    /// See [`HandshakeError`].
    pub async fn verify_webhook(&self) -> Result<(), HandshakeError> {
        let url = self.lock().webhook_url.clone().ok_or(HandshakeError::NoWebhookUrl)?;
        let challenge = rand::rng().random_range(100_000_000u32..u32::MAX).to_string();
        let query = format!(
            "hub.mode=subscribe&hub.challenge={challenge}&hub.verify_token={}",
            percent_encode(&self.inner.config.verify_token)
        );
        let separator = if url.contains('?') { '&' } else { '?' };
        let uri: hyper::Uri = format!("{url}{separator}{query}").parse().map_err(
            |error: hyper::http::uri::InvalidUri| HandshakeError::Unreachable(error.to_string()),
        )?;
        let request = hyper::Request::get(uri)
            .body(Full::new(Bytes::new()))
            .map_err(|error| HandshakeError::Unreachable(error.to_string()))?;
        let (status, echoed) = self.exchange(request).await.map_err(HandshakeError::Unreachable)?;
        if status != 200 {
            return Err(HandshakeError::Status(status));
        }
        if echoed != challenge {
            return Err(HandshakeError::WrongEcho { challenge, echoed });
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Inbound messages
    // -----------------------------------------------------------------------------------------

    /// A customer (`from`, digits or E.164) writes to the business number `phone_number_id`:
    /// the window opens and a signed `messages` webhook goes out. Answers the `wamid` and the
    /// delivery.
    pub async fn inject_whatsapp(
        &self,
        phone_number_id: &str,
        from: &str,
        message: WhatsAppInbound,
        reply_to: Option<&str>,
    ) -> (String, Delivery) {
        let from = whatsapp::digits(from);
        let now = Utc::now();
        self.lock().last_inbound.insert(window_key(Product::WhatsApp, &from), now);
        let id = wamid();
        let mut body = match message {
            WhatsAppInbound::Text(text) => json!({ "type": "text", "text": { "body": text } }),
            WhatsAppInbound::Media { kind, mime_type, caption } => {
                let mut object = json!({
                    "mime_type": mime_type,
                    "sha256": random_text(44, BASE64),
                    "id": random_digits(15),
                });
                if let Some(caption) = caption {
                    object["caption"] = json!(caption);
                }
                json!({ "type": kind, kind.as_str(): object })
            }
            WhatsAppInbound::Location { latitude, longitude, name, address } => {
                let number =
                    |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
                json!({ "type": "location", "location": {
                    "latitude": number(&latitude),
                    "longitude": number(&longitude),
                    "name": name,
                    "address": address,
                }})
            }
        };
        body["from"] = json!(from);
        body["id"] = json!(id);
        body["timestamp"] = json!(now.timestamp().to_string());
        if let Some(reply_to) = reply_to {
            body["context"] =
                json!({ "from": self.display_number(phone_number_id), "id": reply_to });
        }
        let value = json!({
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self.display_number(phone_number_id),
                "phone_number_id": phone_number_id,
            },
            "contacts": [{ "profile": { "name": "Simulated Customer" }, "wa_id": from }],
            "messages": [body],
        });
        let delivery = self.post_webhook(Product::WhatsApp, &self.whatsapp_envelope(&value)).await;
        (id, delivery)
    }

    /// A customer (`psid`) writes to the page: the window opens and a signed webhook goes out.
    /// Answers the `mid` and the delivery.
    pub async fn inject_messenger(
        &self,
        psid: &str,
        message: MessengerInbound,
        reply_to: Option<&str>,
    ) -> (String, Delivery) {
        let now = Utc::now();
        self.lock().last_inbound.insert(window_key(Product::Messenger, psid), now);
        let mid = message_id();
        let mut body = match message {
            MessengerInbound::Text(text) => json!({ "mid": mid, "text": text }),
            MessengerInbound::Attachment { kind, url } => json!({
                "mid": mid,
                "attachments": [{ "type": kind, "payload": { "url": url } }],
            }),
        };
        if let Some(reply_to) = reply_to {
            body["reply_to"] = json!({ "mid": reply_to });
        }
        let event = json!({
            "sender": { "id": psid },
            "recipient": { "id": self.inner.config.page_id },
            "timestamp": now.timestamp_millis(),
            "message": body,
        });
        let delivery = self.post_webhook(Product::Messenger, &self.page_envelope(&event)).await;
        (mid, delivery)
    }

    /// The customer's (`psid`) Messenger client reports that every message the page sent
    /// them so far was delivered or read: a signed `delivery` or `read` webhook whose
    /// watermark is now. Answers the delivery.
    pub async fn messenger_receipt(&self, psid: &str, receipt: MessengerReceipt) -> Delivery {
        let event = self.messenger_receipt_event(psid, &receipt);
        self.post_webhook(Product::Messenger, &self.page_envelope(&event)).await
    }

    /// A `delivery` or `read` event from the customer `psid`, its watermark now. A delivery
    /// carries no `timestamp` and a read does, as in Meta's examples.
    fn messenger_receipt_event(&self, psid: &str, receipt: &MessengerReceipt) -> Value {
        let watermark = Utc::now().timestamp_millis();
        let mut event = json!({
            "sender": { "id": psid },
            "recipient": { "id": self.inner.config.page_id },
        });
        match receipt {
            MessengerReceipt::Delivered { mids } if mids.is_empty() => {
                event["delivery"] = json!({ "watermark": watermark });
            }
            MessengerReceipt::Delivered { mids } => {
                event["delivery"] = json!({ "mids": mids, "watermark": watermark });
            }
            MessengerReceipt::Read => {
                event["timestamp"] = json!(watermark);
                event["read"] = json!({ "watermark": watermark });
            }
        }
        event
    }

    fn display_number(&self, phone_number_id: &str) -> String {
        self.inner
            .config
            .phone_numbers
            .iter()
            .find(|(id, _)| id == phone_number_id)
            .map_or_else(String::new, |(_, display)| display.clone())
    }

    fn whatsapp_envelope(&self, value: &Value) -> Value {
        json!({
            "object": whatsapp::WEBHOOK_OBJECT,
            "entry": [{ "id": self.inner.config.waba_id, "changes": [{ "field": "messages", "value": value }] }],
        })
    }

    fn page_envelope(&self, event: &Value) -> Value {
        json!({
            "object": messenger::WEBHOOK_OBJECT,
            "entry": [{
                "id": self.inner.config.page_id,
                "time": Utc::now().timestamp_millis(),
                "messaging": [event],
            }],
        })
    }

    // -----------------------------------------------------------------------------------------
    // Webhooks out
    // -----------------------------------------------------------------------------------------

    /// Signs and POSTs one webhook, and records the delivery.
    async fn post_webhook(&self, product: Product, body: &Value) -> Delivery {
        let url = self.lock().webhook_url.clone();
        let text = body.to_string();
        let signature = meta::sign(self.inner.config.app_secret.as_bytes(), text.as_bytes());
        let mut delivery = Delivery {
            product,
            url: url.clone().unwrap_or_default(),
            body: text.clone(),
            signature: signature.clone(),
            status: None,
            error: None,
        };
        match url {
            None => delivery.error = Some("no webhook URL is set".to_owned()),
            Some(url) => {
                let request =
                    url.parse::<hyper::Uri>().map_err(|error| error.to_string()).and_then(|uri| {
                        hyper::Request::post(uri)
                            .header(header::CONTENT_TYPE, "application/json")
                            .header(meta::SIGNATURE_HEADER, signature)
                            .body(Full::new(Bytes::from(text)))
                            .map_err(|error| error.to_string())
                    });
                match request {
                    Ok(request) => match self.exchange(request).await {
                        Ok((status, _)) => delivery.status = Some(status),
                        Err(error) => delivery.error = Some(error),
                    },
                    Err(error) => delivery.error = Some(error),
                }
            }
        }
        self.lock().deliveries.push(delivery.clone());
        delivery
    }

    /// One request on the pooled client: the status and the body as text.
    async fn exchange(
        &self,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<(u16, String), String> {
        let exchange = async {
            let response =
                self.inner.http.request(request).await.map_err(|error| error.to_string())?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.map_err(|error| error.to_string())?;
            Ok((status, String::from_utf8_lossy(&body.to_bytes()).into_owned()))
        };
        tokio::time::timeout(WEBHOOK_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err("the webhook did not answer in time".to_owned()))
    }

    /// The status webhooks of an accepted WhatsApp message, in the script's order.
    async fn whatsapp_statuses(
        self,
        phone_number_id: String,
        to: String,
        id: String,
        script: Script,
    ) {
        let mut steps: Vec<(&str, Option<(i64, String)>)> = match &script.outcome {
            Outcome::Read => vec![("sent", None), ("delivered", None), ("read", None)],
            Outcome::StopAtDelivered => vec![("sent", None), ("delivered", None)],
            Outcome::StopAtSent => vec![("sent", None)],
            Outcome::Fail { code, title } => {
                vec![("sent", None), ("failed", Some((*code, title.clone())))]
            }
        };
        if script.out_of_order {
            steps.reverse();
        }
        let conversation = random_text(32, HEX);
        for (status, error) in steps {
            let mut entry = json!({
                "id": id,
                "status": status,
                "timestamp": Utc::now().timestamp().to_string(),
                "recipient_id": to,
            });
            if let Some((code, title)) = error {
                entry["errors"] = json!([{
                    "code": code,
                    "title": title,
                    "message": title,
                    "error_data": { "details": title },
                }]);
            } else {
                entry["conversation"] =
                    json!({ "id": conversation, "origin": { "type": "service" } });
                entry["pricing"] =
                    json!({ "billable": true, "pricing_model": "CBP", "category": "service" });
            }
            let value = json!({
                "messaging_product": "whatsapp",
                "metadata": {
                    "display_phone_number": self.display_number(&phone_number_id),
                    "phone_number_id": phone_number_id,
                },
                "statuses": [entry],
            });
            let body = self.whatsapp_envelope(&value);
            for _ in 0..if script.duplicate { 2 } else { 1 } {
                self.post_webhook(Product::WhatsApp, &body).await;
            }
        }
    }

    /// The delivery and read webhooks of an accepted Messenger message.
    async fn messenger_statuses(self, psid: String, mid: String, script: Script) {
        let mut steps = match script.outcome {
            Outcome::Read => vec!["delivery", "read"],
            Outcome::StopAtDelivered => vec!["delivery"],
            Outcome::StopAtSent | Outcome::Fail { .. } => Vec::new(),
        };
        if script.out_of_order {
            steps.reverse();
        }
        for step in steps {
            let receipt = if step == "delivery" {
                MessengerReceipt::Delivered { mids: vec![mid.clone()] }
            } else {
                MessengerReceipt::Read
            };
            let body = self.page_envelope(&self.messenger_receipt_event(&psid, &receipt));
            for _ in 0..if script.duplicate { 2 } else { 1 } {
                self.post_webhook(Product::Messenger, &body).await;
            }
        }
    }
}

/// What an injected WhatsApp message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WhatsAppInbound {
    Text(String),
    /// `kind` is `image`, `audio`, `video`, `document` or `sticker`.
    Media {
        kind: String,
        mime_type: String,
        caption: Option<String>,
    },
    /// Coordinates as decimal text, sent as JSON numbers.
    Location {
        latitude: String,
        longitude: String,
        name: Option<String>,
        address: Option<String>,
    },
}

/// What a customer's Messenger client reports about the page's messages: the `delivery` and
/// `read` webhook events (developers.facebook.com/docs/messenger-platform/reference/
/// webhook-events/message-deliveries and message-reads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessengerReceipt {
    /// Everything sent before the watermark was delivered; `mids` lists messages by id, and
    /// is left out when empty (older clients give only the watermark).
    Delivered { mids: Vec<String> },
    /// Everything sent at or before the watermark was read.
    Read,
}

/// What an injected Messenger message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessengerInbound {
    Text(String),
    /// `kind` is `image`, `audio`, `video` or `file`.
    Attachment {
        kind: String,
        url: String,
    },
}

// ---------------------------------------------------------------------------------------------
// The send endpoint
// ---------------------------------------------------------------------------------------------

async fn send_message(
    State(sim): State<Simulator>,
    Path((version, node)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = &sim.inner.config;
    let product = if node == "me" || node == config.page_id {
        Some(Product::Messenger)
    } else if config.phone_numbers.iter().any(|(id, _)| *id == node) {
        Some(Product::WhatsApp)
    } else {
        None
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| query.get("access_token").cloned());
    let authorized = token.as_deref() == Some(config.access_token.as_str());
    let json_body = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let outage = sim.lock().outages.pop_front();
    let mut record = Request {
        product,
        version: version.clone(),
        node: node.clone(),
        authorized,
        body: json_body,
        status: None,
        message_id: None,
    };
    if let Some(outage) = outage {
        if outage == Outage::Hang {
            sim.lock().requests.push(record);
            return std::future::pending::<Response>().await;
        }
        let response = outage_response(outage);
        record.status = Some(response.status().as_u16());
        sim.lock().requests.push(record);
        return response;
    }
    let answer = match (token, product) {
        (None, _) => Err(graph_error(
            400,
            GraphError::new(
                2500,
                "OAuthException",
                "An active access token must be used to query information about the current user.",
            ),
        )),
        (Some(_), _) if !authorized => Err(graph_error(
            401,
            GraphError::new(
                190,
                "OAuthException",
                "Invalid OAuth access token - Cannot parse access token",
            ),
        )),
        (Some(_), None) => Err(graph_error(400, unknown_node(&node))),
        (Some(_), Some(Product::WhatsApp)) => whatsapp_send(&sim, &node, &body),
        (Some(_), Some(Product::Messenger)) => messenger_send(&sim, &body),
    };
    let response = match answer {
        Ok((id, response)) => {
            record.message_id = Some(id);
            response
        }
        Err(response) => response,
    };
    sim.hold(product, &record.body).await;
    record.status = Some(response.status().as_u16());
    sim.lock().requests.push(record);
    response
}

/// Counts an answer held back while it waits (and stops counting it when the client gives up
/// on it, which drops the wait).
struct Held<'a>(&'a Simulator);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.held = state.held.saturating_sub(1);
    }
}

impl Simulator {
    /// Waits while answers to the send's recipient are held back ([`Simulator::hold_answers`]).
    async fn hold(&self, product: Option<Product>, body: &Value) {
        let recipient = match product {
            Some(Product::WhatsApp) => body["to"].as_str(),
            Some(Product::Messenger) => body["recipient"]["id"].as_str(),
            None => None,
        };
        let Some(recipient) = recipient else { return };
        let mut gate = {
            let mut state = self.lock();
            let Some(gate) = state.holds.get(&recipient_key(recipient)) else { return };
            let gate = gate.subscribe();
            state.held += 1;
            gate
        };
        let _held = Held(self);
        // A gate dropped without being opened lets the answer go too.
        let _ = gate.wait_for(|open| *open).await;
    }
}

fn outage_response(outage: Outage) -> Response {
    match outage {
        Outage::RateLimited { retry_after_seconds } => {
            let mut response = graph_error(
                429,
                GraphError::new(4, "OAuthException", "(#4) Application request limit reached"),
            );
            if let Ok(value) = retry_after_seconds.to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Outage::ServerError | Outage::Hang => graph_error(
            500,
            GraphError::new(
                2,
                "OAuthException",
                "An unexpected error has occurred. Please retry your request later.",
            ),
        ),
    }
}

type Answer = Result<(String, Response), Response>;

fn whatsapp_send(sim: &Simulator, phone_number_id: &str, body: &Bytes) -> Answer {
    let request: whatsapp::SendRequest =
        serde_json::from_slice(body).map_err(|error| invalid(&format!("(#100) {error}")))?;
    validate_whatsapp(sim, &request)?;
    let to = request.to.clone();
    let script = sim.lock().scripts.get(&to).cloned().unwrap_or_default();
    if let Some((status, error)) = script.refuse.clone() {
        return Err(graph_error(status, error));
    }
    if !request.is_template() && !sim.window_open(Product::WhatsApp, &to) {
        let mut error =
            GraphError::new(131_047, "OAuthException", "(#131047) Re-engagement message");
        error.error_data = Some(ErrorData {
            messaging_product: Some("whatsapp".into()),
            details: Some("Message failed to send because more than 24 hours have passed since the customer last replied to this number.".into()),
        });
        return Err(graph_error(400, error));
    }
    let id = wamid();
    tokio::spawn(sim.clone().whatsapp_statuses(
        phone_number_id.to_owned(),
        to.clone(),
        id.clone(),
        script,
    ));
    let answer = json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": to }],
        "messages": [{ "id": id }],
    });
    Ok((id, (StatusCode::OK, Json(answer)).into_response()))
}

fn validate_whatsapp(sim: &Simulator, request: &whatsapp::SendRequest) -> Result<(), Response> {
    let param = |name: &str| invalid(&format!("(#100) The parameter {name} is required."));
    let bad = |name: &str| invalid(&format!("(#100) Param {name} is not valid"));
    if request.messaging_product != "whatsapp" {
        return Err(param("messaging_product"));
    }
    if request.to.is_empty() {
        return Err(param("to"));
    }
    if !request.to.trim_start_matches('+').bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("to"));
    }
    let media = |object: Option<&whatsapp::MediaObject>, kind: &str, caption: bool| {
        let object = object.ok_or_else(|| param(kind))?;
        let link_ok = object
            .link
            .as_deref()
            .is_some_and(|link| link.starts_with("https://") || link.starts_with("http://"));
        if !link_ok && object.id.is_none() {
            return Err(bad(&format!("{kind}['link']")));
        }
        if object.caption.is_some() && !caption {
            return Err(bad(&format!("{kind}['caption']")));
        }
        Ok(())
    };
    match request.kind() {
        "text" => {
            let body = request.text.as_ref().map_or("", |text| text.body.as_str());
            if body.is_empty() {
                return Err(param("text['body']"));
            }
            if body.chars().count() > 4096 {
                return Err(bad("text['body']"));
            }
        }
        "template" => {
            let template = request.template.as_ref().ok_or_else(|| param("template"))?;
            if template.name.is_empty() {
                return Err(param("template['name']"));
            }
            if template.language.as_ref().is_none_or(|language| language.code.is_empty()) {
                return Err(param("template['language']"));
            }
            let templates = &sim.inner.config.templates;
            if !templates.is_empty() && !templates.contains(&template.name) {
                let mut error = GraphError::new(
                    132_001,
                    "OAuthException",
                    "(#132001) Template name does not exist in the translation",
                );
                error.error_data = Some(ErrorData {
                    messaging_product: Some("whatsapp".into()),
                    details: Some(format!("template name ({}) does not exist", template.name)),
                });
                return Err(graph_error(404, error));
            }
        }
        "image" => media(request.image.as_ref(), "image", true)?,
        "video" => media(request.video.as_ref(), "video", true)?,
        "document" => media(request.document.as_ref(), "document", true)?,
        "audio" => media(request.audio.as_ref(), "audio", false)?,
        "sticker" => media(request.sticker.as_ref(), "sticker", false)?,
        "location" => {
            request.location.as_ref().ok_or_else(|| param("location"))?;
        }
        _ => return Err(bad("type")),
    }
    Ok(())
}

fn messenger_send(sim: &Simulator, body: &Bytes) -> Answer {
    let request: messenger::SendRequest =
        serde_json::from_slice(body).map_err(|error| invalid(&format!("(#100) {error}")))?;
    let psid = request
        .recipient
        .id
        .clone()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| invalid("(#100) param recipient must be non-empty."))?;
    let tagged = match request.messaging_type.as_deref() {
        Some("RESPONSE" | "UPDATE") => false,
        Some("MESSAGE_TAG") => {
            let tag = request.tag.as_deref().unwrap_or_default();
            if !messenger::TAGS.contains(&tag) {
                return Err(invalid(&format!(
                    "(#100) Param tag must be a valid message tag, not {tag:?}"
                )));
            }
            true
        }
        _ => {
            return Err(invalid(
                "(#100) param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}",
            ));
        }
    };
    let message = request
        .message
        .as_ref()
        .ok_or_else(|| invalid("(#100) Must send either message or state"))?;
    match (&message.text, &message.attachment) {
        (Some(text), None) if text.is_empty() => {
            return Err(invalid("(#100) param message[text] must be non-empty."));
        }
        (Some(text), None) if text.chars().count() > 2000 => {
            return Err(invalid(
                "(#100) Length of param message[text] must be less than or equal to 2000",
            ));
        }
        (Some(_), None) => {}
        (None, Some(attachment)) => {
            if !["image", "audio", "video", "file", "template"].contains(&attachment.kind.as_str())
            {
                return Err(invalid("(#100) Param message[attachment][type] is not valid"));
            }
            if attachment.kind != "template" && attachment.payload.url.is_none() {
                return Err(invalid("(#100) Incorrect attachment payload"));
            }
        }
        _ => return Err(invalid("(#100) Must send either message text or an attachment")),
    }
    let script = sim.lock().scripts.get(&psid).cloned().unwrap_or_default();
    if let Some((status, error)) = script.refuse.clone() {
        return Err(graph_error(status, error));
    }
    // A tagged message goes outside the 24-hour window, but a person's answer or a survey
    // only within 7 days of the customer's last message.
    let window = match request.tag.as_deref().and_then(messenger::MessageTag::from_name) {
        Some(tag) if tagged => tag.since_last_message_max(),
        _ => Some(WINDOW),
    };
    let key = window_key(Product::Messenger, &psid);
    let last_inbound = sim.lock().last_inbound.get(&key).copied();
    let open = window.is_none_or(|window| last_inbound.is_some_and(|at| Utc::now() - at < window));
    if !open {
        let mut error = GraphError::new(
            10,
            "OAuthException",
            "(#10) This message is sent outside of allowed window.",
        );
        error.error_subcode = Some(2_018_278);
        return Err(graph_error(400, error));
    }
    let mid = message_id();
    tokio::spawn(sim.clone().messenger_statuses(psid.clone(), mid.clone(), script));
    let answer = json!({ "recipient_id": psid, "message_id": mid });
    Ok((mid, (StatusCode::OK, Json(answer)).into_response()))
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn unknown_node(node: &str) -> GraphError {
    let mut error = GraphError::new(
        100,
        "GraphMethodException",
        format!(
            "Unsupported post request. Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
        ),
    );
    error.error_subcode = Some(33);
    error
}

fn invalid(message: &str) -> Response {
    graph_error(400, GraphError::new(100, "OAuthException", message))
}

/// Meta's error shape with a fresh `fbtrace_id`.
fn graph_error(status: u16, mut error: GraphError) -> Response {
    error.fbtrace_id = Some(random_text(11, BASE64));
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(GraphErrorBody { error })).into_response()
}

/// A query value with everything but unreserved characters percent-encoded.
fn percent_encode(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";

fn random_text(length: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..length).map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())])).collect()
}

fn random_digits(length: usize) -> String {
    random_text(length, b"0123456789")
}

/// A WhatsApp message id: `wamid.` and base64 text, like `wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI…`.
fn wamid() -> String {
    format!("wamid.HBgM{}AA==", random_text(48, ALPHANUMERIC))
}

/// A Messenger message id: `m_` and URL-safe text.
fn message_id() -> String {
    format!("m_{}", random_text(86, ALPHANUMERIC))
}
