//! The Telegram Bot API simulator: `/bot<token>/<method>` on local HTTP with the real answer
//! shapes, scriptable per chat (blocked, unknown, flood control) and with failing requests on
//! demand; it records every request, and sends updates (a text, `/start`, `/stop`, a reply, a
//! block) to a webhook with the `X-Telegram-Bot-Api-Secret-Token` header.
//!
//! Routes (relative to the mount point):
//!
//! - `POST|GET /bot<token>/<method>` with a JSON body: `sendMessage`, `sendPhoto`,
//!   `sendDocument`, `sendAudio`, `sendVideo`, `sendVoice`, `sendSticker`, `sendLocation`,
//!   `getMe`, `setWebhook` (`url`, `secret_token`) and `deleteWebhook`. A wrong token or an
//!   unknown method is answered as Telegram does: 404
//!   `{"ok":false,"error_code":404,"description":"Not Found"}`.
//! - Simulator only: `PUT /simulate/chats/{chat_id}` with a [`ChatScript`] as JSON,
//!   `DELETE /simulate/chats` (forget scripts and records), `GET /simulate/requests`,
//!   `POST /simulate/updates` with an [`UpdateRequest`] (sends it to the webhook and answers
//!   with the [`Delivery`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post, put};
use http_body_util::{BodyExt as _, Full};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How long a webhook receiver may take to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// How the simulator answers sends to one chat. Unscripted chats accept everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ChatScript {
    #[default]
    Accept,
    /// The user blocked the bot: 403 "Forbidden: bot was blocked by the user".
    Blocked,
    /// No such chat: 400 "Bad Request: chat not found".
    NotFound,
    /// Flood control: 429 "Too Many Requests: retry after N" with `parameters.retry_after`.
    Flood { retry_after: u64 },
}

/// One request the simulator answered.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recorded {
    pub method: String,
    /// The JSON body as sent (`null` when it was not JSON).
    pub body: Value,
    /// The HTTP status of the answer.
    pub status: u16,
}

/// One update sent to the webhook, and what the receiver answered.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Delivery {
    pub url: String,
    pub update: Value,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// What update to send (for `POST /simulate/updates` and [`Simulator::send_update`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum UpdateRequest {
    /// A text message (`/start` and `/stop` are texts too).
    Text { chat_id: i64, text: String },
    /// A text replying to the message `reply_to_message_id` of the chat (one of ours).
    Reply { chat_id: i64, text: String, reply_to_message_id: i64 },
    /// The user blocked the bot (`my_chat_member`, `member` → `kicked`); later sends to the
    /// chat are refused with 403.
    Block { chat_id: i64 },
}

#[derive(Debug, Default)]
struct Records {
    scripts: HashMap<String, ChatScript>,
    /// How many of the next API requests fail with 500.
    failures: u32,
    requests: Vec<Recorded>,
    deliveries: Vec<Delivery>,
    message_ids: HashMap<String, i64>,
    next_update_id: i64,
    webhook: Option<(String, Option<String>)>,
}

/// The simulator. Clones share their state.
#[derive(Clone, Debug)]
pub struct Simulator {
    token: Arc<str>,
    bot_username: Arc<str>,
    records: Arc<Mutex<Records>>,
}

impl Simulator {
    /// A simulator for the bot with this token and username.
    pub fn new(token: &str, bot_username: &str) -> Self {
        let records = Records { next_update_id: 10_000, ..Records::default() };
        Self {
            token: token.into(),
            bot_username: bot_username.into(),
            records: Arc::new(Mutex::new(records)),
        }
    }

    /// The routes, to serve or nest.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/simulate/chats/{chat_id}", put(put_script))
            .route("/simulate/chats", delete(clear))
            .route("/simulate/requests", get(requests))
            .route("/simulate/updates", post(post_update))
            .route("/{*path}", any(api))
            .with_state(self.clone())
    }

    /// Scripts the chat `chat_id` (an id, or `@channel`).
    pub fn script(&self, chat_id: &str, script: ChatScript) {
        self.lock().scripts.insert(chat_id.to_owned(), script);
    }

    /// The next `count` API requests fail with 500 "Internal Server Error".
    pub fn fail_next(&self, count: u32) {
        self.lock().failures = count;
    }

    /// Where updates go, and the secret token they carry (what `setWebhook` sets).
    pub fn set_webhook(&self, url: &str, secret_token: Option<&str>) {
        self.lock().webhook = Some((url.to_owned(), secret_token.map(str::to_owned)));
    }

    /// Every API request answered so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Every update sent so far, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// Forgets scripts, failures and records; the webhook stays.
    pub fn clear(&self) {
        let mut records = self.lock();
        records.scripts.clear();
        records.failures = 0;
        records.requests.clear();
        records.deliveries.clear();
    }

    /// Builds the update `request` describes and POSTs it to the webhook with the secret token
    /// header; the delivery is recorded and returned. Without a webhook, the delivery records
    /// the error.
    pub async fn send_update(&self, request: &UpdateRequest) -> Delivery {
        let (update, webhook) = {
            let mut records = self.lock();
            records.next_update_id += 1;
            let update_id = records.next_update_id;
            let update = match request {
                UpdateRequest::Text { chat_id, text } => {
                    let message_id = next_message_id(&mut records, &chat_id.to_string());
                    json!({"update_id": update_id, "message": user_message(*chat_id, message_id, text)})
                }
                UpdateRequest::Reply { chat_id, text, reply_to_message_id } => {
                    let message_id = next_message_id(&mut records, &chat_id.to_string());
                    let mut message = user_message(*chat_id, message_id, text);
                    message["reply_to_message"] = json!({
                        "message_id": reply_to_message_id,
                        "from": self.bot_user(),
                        "chat": private_chat(*chat_id),
                        "date": now(),
                    });
                    json!({"update_id": update_id, "message": message})
                }
                UpdateRequest::Block { chat_id } => {
                    records.scripts.insert(chat_id.to_string(), ChatScript::Blocked);
                    json!({"update_id": update_id, "my_chat_member": {
                        "chat": private_chat(*chat_id),
                        "from": user(*chat_id),
                        "date": now(),
                        "old_chat_member": {"user": self.bot_user(), "status": "member"},
                        "new_chat_member": {"user": self.bot_user(), "status": "kicked", "until_date": 0},
                    }})
                }
            };
            (update, records.webhook.clone())
        };
        let delivery = match webhook {
            None => Delivery {
                url: String::new(),
                update,
                status: None,
                error: Some("no webhook is set".to_owned()),
            },
            Some((url, secret)) => {
                let body = serde_json::to_vec(&update).unwrap_or_default();
                let header =
                    secret.as_deref().map(|secret| ("x-telegram-bot-api-secret-token", secret));
                let sent = tokio::time::timeout(
                    WEBHOOK_TIMEOUT,
                    post_bytes(&url, "application/json", header, body),
                )
                .await
                .unwrap_or_else(|_| Err("no answer in time".to_owned()));
                let (status, error) = match sent {
                    Ok((status, _)) => (Some(status), None),
                    Err(error) => (None, Some(error)),
                };
                Delivery { url, update, status, error }
            }
        };
        self.lock().deliveries.push(delivery.clone());
        delivery
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bot_id(&self) -> i64 {
        self.token.split(':').next().and_then(|id| id.parse().ok()).unwrap_or(7_000_000_001)
    }

    fn bot_user(&self) -> Value {
        json!({"id": self.bot_id(), "is_bot": true, "first_name": "Hazina simulator", "username": &*self.bot_username})
    }

    /// Answers one API call.
    fn answer(&self, method: &str, body: &Bytes) -> (StatusCode, Value) {
        let parsed: Option<Value> =
            if body.is_empty() { Some(json!({})) } else { serde_json::from_slice(body).ok() };
        let mut records = self.lock();
        let (status, answer) = self.decide(&mut records, method, parsed.as_ref());
        records.requests.push(Recorded {
            method: method.to_owned(),
            body: parsed.unwrap_or(Value::Null),
            status: status.as_u16(),
        });
        (status, answer)
    }

    fn decide(
        &self,
        records: &mut Records,
        method: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        if records.failures > 0 {
            records.failures -= 1;
            return error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", None);
        }
        let Some(body) = body.filter(|body| body.is_object()) else {
            return error(StatusCode::BAD_REQUEST, "Bad Request: can't parse JSON object", None);
        };
        // Method names are case-insensitive.
        let lower = method.to_ascii_lowercase();
        let media = match lower.as_str() {
            "getme" => return ok(&self.bot_user()),
            "setwebhook" => {
                let url = body["url"].as_str().unwrap_or_default().to_owned();
                let secret = body["secret_token"].as_str().map(str::to_owned);
                records.webhook = (!url.is_empty()).then_some((url, secret));
                return ok(&json!(true));
            }
            "deletewebhook" => {
                records.webhook = None;
                return ok(&json!(true));
            }
            "sendmessage" => None,
            "sendphoto" => Some("photo"),
            "senddocument" => Some("document"),
            "sendaudio" => Some("audio"),
            "sendvideo" => Some("video"),
            "sendvoice" => Some("voice"),
            "sendsticker" => Some("sticker"),
            "sendlocation" => Some("location"),
            _ => return error(StatusCode::NOT_FOUND, "Not Found", None),
        };
        let chat = match &body["chat_id"] {
            Value::Number(number) => number.to_string(),
            Value::String(text) => text.trim().to_owned(),
            _ => String::new(),
        };
        if chat.is_empty() {
            return error(StatusCode::BAD_REQUEST, "Bad Request: chat_id is empty", None);
        }
        match records.scripts.get(&chat).copied().unwrap_or_default() {
            ChatScript::Accept => {}
            ChatScript::Blocked => {
                return error(
                    StatusCode::FORBIDDEN,
                    "Forbidden: bot was blocked by the user",
                    None,
                );
            }
            ChatScript::NotFound => {
                return error(StatusCode::BAD_REQUEST, "Bad Request: chat not found", None);
            }
            ChatScript::Flood { retry_after } => {
                return error(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!("Too Many Requests: retry after {retry_after}"),
                    Some(json!({"retry_after": retry_after})),
                );
            }
        }
        let chat_id = chat.parse::<i64>().unwrap_or(-1_000_000_000_001);
        let message_id = next_message_id(records, &chat);
        let mut message = json!({
            "message_id": message_id,
            "from": self.bot_user(),
            "chat": private_chat(chat_id),
            "date": now(),
        });
        if let Err(refusal) = fill(&mut message, media, body) {
            return refusal;
        }
        ok(&message)
    }
}

/// Puts what the send carries into the answered message: its text, location or file.
fn fill(message: &mut Value, media: Option<&str>, body: &Value) -> Result<(), (StatusCode, Value)> {
    let message_id = message["message_id"].as_i64().unwrap_or_default();
    match media {
        None => {
            let text = body["text"].as_str().unwrap_or_default();
            if text.trim().is_empty() {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: message text is empty",
                    None,
                ));
            }
            message["text"] = json!(text);
        }
        Some("location") => {
            let (Some(latitude), Some(longitude)) = (
                body.get("latitude").filter(|v| v.is_number()),
                body.get("longitude").filter(|v| v.is_number()),
            ) else {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: wrong latitude or longitude",
                    None,
                ));
            };
            message["location"] = json!({"latitude": latitude, "longitude": longitude});
        }
        Some(field) => {
            let Some(url) = body[field].as_str().filter(|url| !url.is_empty()) else {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    &format!("Bad Request: there is no {field} in the request"),
                    None,
                ));
            };
            let file_id = format!("sim-{field}-{message_id}");
            let file =
                json!({"file_id": file_id, "file_unique_id": file_id, "file_size": url.len()});
            message[field] = if field == "photo" {
                json!([{"file_id": file_id, "file_unique_id": file_id, "width": 90, "height": 90}, file])
            } else {
                file
            };
            if let Some(caption) = body["caption"].as_str() {
                message["caption"] = json!(caption);
            }
        }
    }
    Ok(())
}

fn next_message_id(records: &mut Records, chat: &str) -> i64 {
    let next = records.message_ids.entry(chat.to_owned()).or_insert(0);
    *next += 1;
    *next
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn user(id: i64) -> Value {
    json!({"id": id, "is_bot": false, "first_name": "Test", "username": format!("user{id}"), "language_code": "en"})
}

fn private_chat(id: i64) -> Value {
    json!({"id": id, "first_name": "Test", "username": format!("user{id}"), "type": "private"})
}

fn user_message(chat_id: i64, message_id: i64, text: &str) -> Value {
    let mut message = json!({
        "message_id": message_id,
        "from": user(chat_id),
        "chat": private_chat(chat_id),
        "date": now(),
        "text": text,
    });
    if text.starts_with('/') {
        let length =
            text.split_whitespace().next().map_or(0, |command| command.encode_utf16().count());
        message["entities"] = json!([{"offset": 0, "length": length, "type": "bot_command"}]);
    }
    message
}

fn ok(result: &Value) -> (StatusCode, Value) {
    (StatusCode::OK, json!({"ok": true, "result": result}))
}

fn error(status: StatusCode, description: &str, parameters: Option<Value>) -> (StatusCode, Value) {
    let mut body = json!({"ok": false, "error_code": status.as_u16(), "description": description});
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    (status, body)
}

async fn api(State(sim): State<Simulator>, Path(path): Path<String>, body: Bytes) -> Response {
    let not_found = || {
        let (status, body) = error(StatusCode::NOT_FOUND, "Not Found", None);
        (status, Json(body)).into_response()
    };
    let Some((token, method)) = path.strip_prefix("bot").and_then(|rest| rest.rsplit_once('/'))
    else {
        return not_found();
    };
    if token != &*sim.token || method.is_empty() {
        return not_found();
    }
    let (status, answer) = sim.answer(method, &body);
    (status, Json(answer)).into_response()
}

async fn put_script(
    State(sim): State<Simulator>,
    Path(chat_id): Path<String>,
    body: Bytes,
) -> Response {
    match serde_json::from_slice::<ChatScript>(&body) {
        Ok(script) => {
            sim.script(&chat_id, script);
            (StatusCode::OK, Json(json!({"chatId": chat_id, "script": script}))).into_response()
        }
        Err(error) => {
            (StatusCode::BAD_REQUEST, Json(json!({"error": error.to_string()}))).into_response()
        }
    }
}

async fn clear(State(sim): State<Simulator>) -> StatusCode {
    sim.clear();
    StatusCode::NO_CONTENT
}

async fn requests(State(sim): State<Simulator>) -> Json<Vec<Recorded>> {
    Json(sim.requests())
}

async fn post_update(State(sim): State<Simulator>, body: Bytes) -> Response {
    match serde_json::from_slice::<UpdateRequest>(&body) {
        Ok(request) => Json(sim.send_update(&request).await).into_response(),
        Err(error) => {
            (StatusCode::BAD_REQUEST, Json(json!({"error": error.to_string()}))).into_response()
        }
    }
}

/// POSTs `body` to an `http://` URL with one extra header; the status and the answer's text.
pub(crate) async fn post_bytes(
    url: &str,
    content_type: &str,
    extra: Option<(&str, &str)>,
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    let uri: hyper::Uri = url.parse().map_err(|error| format!("invalid URL: {error}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("the simulator sends to http:// URLs only".to_owned());
    }
    let authority = uri.authority().ok_or_else(|| "no host in the URL".to_owned())?.clone();
    let port = authority.port_u16().unwrap_or(80);
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|error| format!("connect {authority}: {error}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|error| format!("handshake {authority}: {error}"))?;
    tokio::spawn(connection);
    let path = uri.path_and_query().map_or("/", hyper::http::uri::PathAndQuery::as_str);
    let mut request = hyper::Request::post(path)
        .header(header::HOST, authority.as_str())
        .header(header::CONTENT_TYPE, content_type);
    if let Some((name, value)) = extra {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(Bytes::from(body))).map_err(|error| error.to_string())?;
    let response = sender.send_request(request).await.map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    let reply = response.into_body().collect().await.map_err(|error| error.to_string())?;
    Ok((status, String::from_utf8_lossy(&reply.to_bytes()).into_owned()))
}
