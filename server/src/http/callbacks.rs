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
//!   `CON …`/`END …`) and their end (`ussd-end`). Africa's Talking signs nothing: a callback
//!   without the channel's token changes nothing and is refused.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
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
        .route(
            "/callbacks/africastalking/{org}/{channel}/{token}/{kind}",
            post(africastalking_callback),
        )
        .layer(DefaultBodyLimit::max(CALLBACK_BYTES_MAX))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), rate_limit))
}

/// Callbacks each channel takes per second, and in a burst; past them a 429. A provider sends
/// a few per payment; anyone can post them (unverified ones are stored), so a flood is bounded
/// per channel, and in all, before it costs a lookup or a row.
pub const CALLBACKS_PER_SECOND: u32 = 200;
const CALLBACK_BURST: u32 = 400;
/// All channels together (random channel ids included).
const CALLBACKS_PER_SECOND_ALL: u32 = 2_000;
const CALLBACK_BURST_ALL: u32 = 4_000;
/// Most channels with a bucket; past it the buckets start again full.
const BUCKETS_MAX: usize = 100_000;

/// Token buckets for callbacks: one per channel id as the URL names it, and one for all.
#[derive(Debug)]
pub struct CallbackLimits {
    per_channel: std::sync::Mutex<std::collections::HashMap<String, Bucket>>,
    all: std::sync::Mutex<Bucket>,
}

impl Default for CallbackLimits {
    fn default() -> Self {
        Self {
            per_channel: std::sync::Mutex::default(),
            all: std::sync::Mutex::new(Bucket::full(CALLBACK_BURST_ALL)),
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
    /// Whether a callback for `channel` may be taken now.
    fn admit(&self, channel: &str) -> bool {
        let mut buckets =
            self.per_channel.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= BUCKETS_MAX && !buckets.contains_key(channel) {
            buckets.clear();
        }
        let bucket =
            buckets.entry(channel.to_owned()).or_insert_with(|| Bucket::full(CALLBACK_BURST));
        if !bucket.take(CALLBACKS_PER_SECOND, CALLBACK_BURST) {
            return false;
        }
        drop(buckets);
        let mut all = self.all.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.take(CALLBACKS_PER_SECOND_ALL, CALLBACK_BURST_ALL)
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
    if state.callback_limits.admit(channel) {
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

async fn africastalking_callback(
    State(state): State<AppState>,
    Path((org, channel_id, token, kind)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    use hazina_providers::africastalking::{
        DeliveryReport, InboundSms, SubscriptionUpdate, UssdReply, UssdSessionEnd, UssdStep,
    };
    let unknown = || ApiError::not_found("callback");
    let org = hazina_ledger::OrgId(org.parse().map_err(|_| unknown())?);
    let channel_id: Uuid = channel_id.parse().map_err(|_| unknown())?;
    let channel = match state.messaging.channel(org, channel_id).await {
        Ok(channel) if channel.verifies(&token) => channel,
        // A wrong token and a missing channel look alike: nothing is told, nothing changes.
        _ => return Err(unknown()),
    };
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
