//! The URLs providers call back: outside `/v1`, without API keys, each carrying its channel's
//! callback token. A callback with the right token is the provider's word; one without is a
//! hint that only makes us ask the provider. Every callback is stored as it came, and each is
//! answered in the format its provider expects.
//!
//! - `POST /callbacks/mpesa/{channel}/{token}/{stk|result|status|timeout}/{payment}`: an STK
//!   push result, a B2C result, a transaction status result, a queue timeout;
//! - `POST /callbacks/mpesa/{channel}/{token}/c2b/{validation|confirmation}`: C2B;
//! - `PUT` or `POST /callbacks/momo/{channel}/{token}/callback`: a MoMo payment's final status;
//! - `POST /callbacks/africastalking/{org}/{channel}/{token}/{kind}`: a messaging channel's
//!   SMS delivery reports (`sms-delivery`), inbound SMS (`sms-inbound`), premium
//!   subscription changes (`sms-subscription`), USSD session steps (`ussd`, answered with
//!   `CON …`/`END …`) and their end (`ussd-end`), voice call steps (`voice`, answered with
//!   the action XML). Africa's Talking signs nothing: a callback without the channel's token
//!   changes nothing and is refused;
//! - `GET` and `POST /callbacks/meta/{org}/{channel}/{token}`: WhatsApp's and Messenger's
//!   verify-token handshake, and their webhooks, each signed (`X-Hub-Signature-256`) with the
//!   channel's app secret;
//! - `POST /callbacks/telegram/{org}/{channel}`: Telegram updates, carrying the channel's
//!   token in `X-Telegram-Bot-Api-Secret-Token` (given to Telegram with `setWebhook`);
//! - `POST /callbacks/email/{org}/{channel}/{token}`: inbound email (SendGrid Inbound Parse),
//!   which is signed by nothing but the token.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hazina_providers::lifecycle::Event;
use hazina_providers::mpesa::{C2bValidationReply, CallbackAck};
use uuid::Uuid;

use crate::code::Code;
use crate::http::AppState;
use crate::http::problem::ApiError;
use crate::payments::{Callback, Provider, callback_event, mpesa};

/// Largest callback body taken.
const CALLBACK_BYTES_MAX: usize = 64 * 1024;

pub fn routes(state: &AppState) -> axum::Router<AppState> {
    axum::Router::new()
        .route("/callbacks/mpesa/{channel}/{token}/{kind}/{name}", post(mpesa_callback))
        .route("/callbacks/momo/{channel}/{token}/callback", post(momo_callback).put(momo_callback))
        .route("/callbacks/africastalking-airtime/{channel}/{token}/status", post(airtime_callback))
        .route(
            "/callbacks/africastalking/{org}/{channel}/{token}/{kind}",
            post(africastalking_callback),
        )
        .route("/callbacks/meta/{org}/{channel}/{token}", get(meta_handshake).post(meta_callback))
        .route("/callbacks/telegram/{org}/{channel}", post(telegram_callback))
        .route("/callbacks/email/{org}/{channel}/{token}", post(email_callback))
        .layer(DefaultBodyLimit::max(CALLBACK_BYTES_MAX))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), rate_limit))
}

/// Callbacks each payment channel takes per second, and in a burst; past them a 429. A
/// provider sends a few per payment; anyone can post them (unverified ones are stored), so a
/// flood is bounded per channel, and in all, before it costs a lookup or a row.
pub const CALLBACKS_PER_SECOND: u32 = 200;
const CALLBACK_BURST: u32 = 400;
/// All payment channels together (random channel ids included).
const CALLBACKS_PER_SECOND_ALL: u32 = 2_000;
const CALLBACK_BURST_ALL: u32 = 4_000;
/// Callbacks each messaging channel takes per second, and in a burst. A bulk send is answered
/// by one delivery report per message, as fast as the provider's carriers report — 100,000 in
/// a minute or two — and a refused report may never come again (the simulator never resends
/// one), so the limit sits above what the server can apply (BENCHMARKS.md, "Bulk SMS by tag"):
/// it bounds a flood, never a real send. A messaging callback without its channel's token
/// changes nothing and costs one channel lookup.
pub const MESSAGING_CALLBACKS_PER_SECOND: u32 = 20_000;
const MESSAGING_CALLBACK_BURST: u32 = 40_000;
/// All messaging channels together, on a budget of their own, so that a bulk send's reports
/// never crowd out payments' callbacks (nor theirs it).
const MESSAGING_CALLBACKS_PER_SECOND_ALL: u32 = 20_000;
const MESSAGING_CALLBACK_BURST_ALL: u32 = 40_000;
/// Most channels with a bucket; past it the buckets start again full.
const BUCKETS_MAX: usize = 100_000;

/// Token buckets for callbacks: one per channel id as the URL names it, and one for all, for
/// payment channels and messaging channels apart.
#[derive(Debug)]
pub struct CallbackLimits {
    per_channel: std::sync::Mutex<std::collections::HashMap<String, Bucket>>,
    all: std::sync::Mutex<Bucket>,
    messaging_all: std::sync::Mutex<Bucket>,
}

impl Default for CallbackLimits {
    fn default() -> Self {
        Self {
            per_channel: std::sync::Mutex::default(),
            all: std::sync::Mutex::new(Bucket::full(CALLBACK_BURST_ALL)),
            messaging_all: std::sync::Mutex::new(Bucket::full(MESSAGING_CALLBACK_BURST_ALL)),
        }
    }
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

impl Bucket {
    fn full(burst: u32) -> Self {
        Self { tokens: f64::from(burst), at: std::time::Instant::now() }
    }

    /// Takes a token, refilled at `rate` per second up to `burst`; whether there was one.
    fn take(&mut self, rate: u32, burst: u32) -> bool {
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * f64::from(rate);
        self.tokens = (self.tokens + refill).min(f64::from(burst));
        self.at = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

impl CallbackLimits {
    /// Whether a callback for `channel` (a messaging channel's when `messaging`) may be taken
    /// now.
    fn admit(&self, channel: &str, messaging: bool) -> bool {
        let (rate, burst, all, rate_all, burst_all) = if messaging {
            (
                MESSAGING_CALLBACKS_PER_SECOND,
                MESSAGING_CALLBACK_BURST,
                &self.messaging_all,
                MESSAGING_CALLBACKS_PER_SECOND_ALL,
                MESSAGING_CALLBACK_BURST_ALL,
            )
        } else {
            (
                CALLBACKS_PER_SECOND,
                CALLBACK_BURST,
                &self.all,
                CALLBACKS_PER_SECOND_ALL,
                CALLBACK_BURST_ALL,
            )
        };
        let mut buckets =
            self.per_channel.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= BUCKETS_MAX && !buckets.contains_key(channel) {
            buckets.clear();
        }
        let bucket = buckets.entry(channel.to_owned()).or_insert_with(|| Bucket::full(burst));
        if !bucket.take(rate, burst) {
            return false;
        }
        drop(buckets);
        let mut all = all.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.take(rate_all, burst_all)
    }
}

/// Refuses a callback past its channel's rate (or all channels') with 429 and `Retry-After`.
async fn rate_limit(
    State(state): State<AppState>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let channel = params.get("channel").map_or("", String::as_str);
    // The messaging callbacks are the ones whose path names the org.
    let messaging = params.contains_key("org");
    if state.callback_limits.admit(channel, messaging) {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        Code::RateLimited,
        "too many callbacks for this channel; retry shortly",
    )
    .into_response();
    response
        .headers_mut()
        .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    response
}

async fn mpesa_callback(
    State(state): State<AppState>,
    Path((channel_id, token, kind, name)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let channel = state.payments.callback_channel(&channel_id, Provider::Mpesa).await?;
    let verified = channel.verifies(&token);
    if kind == "c2b" {
        return match name.as_str() {
            "validation" => {
                let refused = state.payments.validate_c2b(&channel, verified, &body).await?;
                let reply =
                    refused.map_or_else(C2bValidationReply::accept, C2bValidationReply::reject);
                Ok(Json(reply).into_response())
            }
            "confirmation" => {
                state.payments.confirm_c2b(&channel, verified, &body).await?;
                Ok(Json(CallbackAck::c2b()).into_response())
            }
            _ => Err(ApiError::not_found("callback")),
        };
    }
    if !matches!(kind.as_str(), "stk" | "result" | "status" | "timeout") {
        return Err(ApiError::not_found("callback"));
    }
    let payment: Uuid = name.parse().map_err(|_| ApiError::not_found("payment"))?;
    let callback = Callback { channel: &channel, payment: Some(payment), kind: &kind, verified };
    let report = mpesa::read_callback(&kind, &body);
    // A transaction status result answers our own query.
    let source = if kind == "status" { "query" } else { "callback" };
    state
        .payments
        .take_callback(callback, &body, report, source, |report| {
            if kind == "timeout" { Event::Unknown } else { callback_event(&kind, report, verified) }
        })
        .await?;
    Ok(Json(if kind == "stk" { CallbackAck::c2b() } else { CallbackAck::result() }).into_response())
}

async fn momo_callback(
    State(state): State<AppState>,
    Path((channel_id, token)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let channel = state.payments.callback_channel(&channel_id, Provider::Momo).await?;
    let verified = channel.verifies(&token);
    let callback = Callback { channel: &channel, payment: None, kind: "callback", verified };
    let report = crate::payments::momo::read_callback(&body);
    state
        .payments
        .take_callback(callback, &body, report, "callback", |report| {
            callback_event("callback", report, verified)
        })
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /callbacks/africastalking-airtime/{channel}/{token}/status`: an airtime payment's
/// result, matched by its `requestId`; without the channel's token only a hint.
async fn airtime_callback(
    State(state): State<AppState>,
    Path((channel_id, token)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    use crate::payments::airtime::{STATUS_CALLBACK, read_callback};
    let channel = state.payments.callback_channel(&channel_id, Provider::Africastalking).await?;
    let verified = channel.verifies(&token);
    let callback = Callback { channel: &channel, payment: None, kind: STATUS_CALLBACK, verified };
    state
        .payments
        .take_callback(callback, &body, read_callback(&body), "callback", |report| {
            Event::Callback { report, verified }
        })
        .await?;
    Ok(StatusCode::OK.into_response())
}

async fn africastalking_callback(
    State(state): State<AppState>,
    Path((org, channel_id, token, kind)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    use hazina_providers::africastalking::{
        DeliveryReport, InboundSms, SubscriptionUpdate, UssdReply, UssdSessionEnd, UssdStep,
    };
    let unknown = || ApiError::not_found("callback");
    let channel = messaging_channel(&state, &org, &channel_id, Some(&token)).await?;
    let org = channel.org;
    let unreadable = |error: &dyn std::error::Error| {
        ApiError::bad_request(
            Code::UnreadableCallback,
            format!("the callback is unreadable: {error}"),
        )
    };
    match kind.as_str() {
        "sms-delivery" => {
            let report = DeliveryReport::from_form(&body).map_err(|e| unreadable(&e))?;
            state.messaging.apply_statuses(&channel, &[report.status_update()]).await?;
            Ok(StatusCode::OK.into_response())
        }
        "sms-inbound" => {
            let inbound = InboundSms::from_form(&body).map_err(|e| unreadable(&e))?;
            state.messaging.receive(&channel, &inbound.inbound()).await?;
            Ok(StatusCode::OK.into_response())
        }
        "sms-subscription" => {
            let update = SubscriptionUpdate::from_form(&body).map_err(|e| unreadable(&e))?;
            let number = crate::customers::CustomerNumber {
                number: update.phone_number.clone(),
                provider: crate::customers::NumberProvider::Cellular,
                partition: None,
            }
            .normalised()?;
            let (customer, _) =
                crate::customers::store::by_number(&state.pool, org, &number).await?;
            state.messaging.set_consent(&channel, customer, update.opted_in(), "provider").await?;
            Ok(StatusCode::OK.into_response())
        }
        "ussd" => {
            let step = UssdStep::from_form(&body).map_err(|e| unreadable(&e))?;
            let reply = state.messaging.session_step(&channel, &step.inbound()).await?;
            let text = UssdReply::from_body(&reply.body)
                .unwrap_or(UssdReply::End(channel.fallback_text.clone()))
                .body();
            Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], text)
                .into_response())
        }
        "voice" => {
            let step = hazina_providers::africastalking::voice::VoiceCallback::from_form(&body)
                .map_err(|e| unreadable(&e))?;
            let xml = state.messaging.voice_step(&channel, &step).await?;
            Ok(([(axum::http::header::CONTENT_TYPE, "application/xml")], xml).into_response())
        }
        "ussd-end" => {
            let end = UssdSessionEnd::from_form(&body).map_err(|e| unreadable(&e))?;
            state
                .messaging
                .end_session(&channel, &end.session_id, &end.phone_number, end.session_status())
                .await?;
            Ok(StatusCode::OK.into_response())
        }
        _ => Err(unknown()),
    }
}

/// The messaging channel a callback's path names, when `token` (if the path has one) is its
/// token. A wrong token and a missing channel look alike: 404, nothing told, nothing changed.
async fn messaging_channel(
    state: &AppState,
    org: &str,
    channel: &str,
    token: Option<&str>,
) -> Result<crate::messaging::ChannelRecord, ApiError> {
    let unknown = || ApiError::not_found("callback");
    let org = hazina_ledger::OrgId(org.parse().map_err(|_| unknown())?);
    let id: Uuid = channel.parse().map_err(|_| unknown())?;
    match state.messaging.channel(org, id).await {
        Ok(channel) if token.is_none_or(|token| channel.verifies(token)) => Ok(channel),
        _ => Err(unknown()),
    }
}

fn unreadable_callback(error: &dyn std::fmt::Display) -> ApiError {
    ApiError::bad_request(Code::UnreadableCallback, format!("the callback is unreadable: {error}"))
}

/// Meta's verify-token handshake: the challenge echoed when the verify token is the channel's.
async fn meta_handshake(
    State(state): State<AppState>,
    Path((org, channel_id, token)): Path<(String, String, String)>,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let channel = messaging_channel(&state, &org, &channel_id, Some(&token)).await?;
    let verify_token =
        channel.credential("verifyToken").ok_or_else(|| ApiError::not_found("callback"))?;
    let query = uri.query().unwrap_or("");
    match hazina_providers::meta::verify_challenge(query, verify_token.expose()) {
        Some(challenge) => Ok(challenge.into_response()),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            Code::Unauthorized,
            "the verify token is not the channel's",
        )),
    }
}

/// A WhatsApp or Messenger webhook, signed with the channel's app secret.
async fn meta_callback(
    State(state): State<AppState>,
    Path((org, channel_id, token)): Path<(String, String, String)>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    use hazina_providers::messaging::{Channel, Verified};
    let channel = messaging_channel(&state, &org, &channel_id, Some(&token)).await?;
    let secret = channel.credential("appSecret").ok_or_else(|| ApiError::not_found("callback"))?;
    let signature =
        headers.get(hazina_providers::meta::SIGNATURE_HEADER).and_then(|value| value.to_str().ok());
    let verified =
        hazina_providers::meta::verify_signature(secret.expose().as_bytes(), signature, &body);
    if verified != Verified::Yes {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthorized,
            "the webhook's signature is not the channel's",
        ));
    }
    let messaging = &state.messaging;
    if channel.channel == Channel::WhatsApp {
        let events =
            hazina_providers::whatsapp::read_webhook(&body).map_err(|e| unreadable_callback(&e))?;
        for inbound in &events.inbound {
            messaging.receive(&channel, inbound).await?;
        }
        messaging.apply_statuses(&channel, &events.statuses).await?;
    } else {
        let events = hazina_providers::messenger::read_webhook(&body)
            .map_err(|e| unreadable_callback(&e))?;
        for inbound in &events.inbound {
            messaging.receive(&channel, inbound).await?;
        }
        messaging.apply_statuses(&channel, &events.statuses).await?;
        for mark in &events.watermarks {
            messaging
                .apply_watermark(&channel, &mark.psid, mark.status.status(), mark.up_to)
                .await?;
        }
    }
    Ok(StatusCode::OK.into_response())
}

/// A Telegram update, carrying the channel's token as its secret token.
async fn telegram_callback(
    State(state): State<AppState>,
    Path((org, channel_id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    use hazina_providers::messaging::Verified;
    let channel = messaging_channel(&state, &org, &channel_id, None).await?;
    let presented = headers
        .get(hazina_providers::telegram::SECRET_TOKEN_HEADER)
        .map(axum::http::HeaderValue::as_bytes);
    let expected = hazina_providers::Secret::new(channel.token.clone());
    if hazina_providers::telegram::verify_secret_token(presented, &expected) != Verified::Yes {
        return Err(ApiError::not_found("callback"));
    }
    let update = hazina_providers::telegram::read_update(&body, &channel.number)
        .map_err(|e| unreadable_callback(&e))?;
    let customer = match &update.inbound {
        Some(inbound) => Some(state.messaging.receive(&channel, inbound).await?.customer_id),
        None => None,
    };
    if let Some((chat, consent)) = &update.consent {
        let customer = match customer {
            Some(customer) => hazina_ledger::CustomerId(customer),
            None => state.messaging.customer_of(&channel, chat).await?,
        };
        let allowed = *consent == hazina_providers::telegram::Consent::OptIn;
        state.messaging.set_consent(&channel, customer, allowed, "keyword").await?;
    }
    Ok(StatusCode::OK.into_response())
}

/// Inbound email through SendGrid Inbound Parse (multipart/form-data).
async fn email_callback(
    State(state): State<AppState>,
    Path((org, channel_id, token)): Path<(String, String, String)>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let channel = messaging_channel(&state, &org, &channel_id, Some(&token)).await?;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let inbound = hazina_providers::email::read_inbound_parse(content_type, &body)
        .map_err(|e| unreadable_callback(&e))?;
    state.messaging.receive(&channel, &inbound).await?;
    Ok(StatusCode::OK.into_response())
}
