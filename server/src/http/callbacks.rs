//! The URLs providers call back: outside `/v1`, without API keys, each carrying its channel's
//! callback token. A callback with the right token is the provider's word; one without is a
//! hint that only makes us ask the provider. Every callback is stored as it came, and each is
//! answered in the format its provider expects.
//!
//! - `POST /callbacks/mpesa/{channel}/{token}/{stk|result|status|timeout}/{payment}`: an STK
//!   push result, a B2C result, a transaction status result, a queue timeout;
//! - `POST /callbacks/mpesa/{channel}/{token}/c2b/{validation|confirmation}`: C2B;
//! - `PUT` or `POST /callbacks/momo/{channel}/{token}/callback`: a MoMo payment's final status.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hazina_ledger::rules::AccountKind;
use hazina_ledger::{AccountId, CustomerId, Money};
use hazina_providers::StatusReport;
use hazina_providers::lifecycle::Event;
use hazina_providers::mpesa::{C2bRejectReason, C2bValidationReply, CallbackAck, Msisdn};
use uuid::Uuid;

use crate::app::AppState;
use crate::code::Code;
use crate::http::problem::ApiError;
use crate::http::v1::customers::{self, CustomerNumber};
use crate::payments::{Channel, Provider, Stage, callback_event, mpesa};

/// Largest callback body taken.
const CALLBACK_BYTES_MAX: usize = 64 * 1024;

pub fn routes(state: &AppState) -> axum::Router<AppState> {
    axum::Router::new()
        .route("/callbacks/mpesa/{channel}/{token}/{kind}/{name}", post(mpesa_callback))
        .route("/callbacks/momo/{channel}/{token}/callback", post(momo_callback).put(momo_callback))
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

async fn channel(state: &AppState, id: &str, provider: Provider) -> Result<Channel, ApiError> {
    let id: Uuid = id.parse().map_err(|_| ApiError::not_found("channel"))?;
    state
        .payments
        .channel(id)
        .await?
        .filter(|channel| channel.provider == provider)
        .ok_or_else(|| ApiError::not_found("channel"))
}

fn unreadable(error: &dyn std::fmt::Display) -> ApiError {
    ApiError::bad_request(Code::UnreadableCallback, format!("the callback is unreadable: {error}"))
}

async fn mpesa_callback(
    State(state): State<AppState>,
    Path((channel_id, token, kind, name)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let channel = channel(&state, &channel_id, Provider::Mpesa).await?;
    let verified = channel.verifies(&token);
    if kind == "c2b" {
        return match name.as_str() {
            "validation" => c2b_validation(&state, &channel, verified, &body).await,
            "confirmation" => c2b_confirmation(&state, &channel, verified, &body).await,
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
    callback
        .record(&state, &body, report, source, |report| {
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
    let channel = channel(&state, &channel_id, Provider::Momo).await?;
    let verified = channel.verifies(&token);
    let callback = Callback { channel: &channel, payment: None, kind: "callback", verified };
    let report = crate::payments::momo::read_callback(&body);
    callback
        .record(&state, &body, report, "callback", |report| {
            callback_event("callback", report, verified)
        })
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// A provider's callback about a payment it was sent.
struct Callback<'a> {
    channel: &'a Channel,
    /// The payment its URL names, if it names one (else it is matched by its references).
    payment: Option<Uuid>,
    kind: &'a str,
    /// Whether its URL carried the channel's token.
    verified: bool,
}

impl Callback<'_> {
    /// Stores the callback (with `body`, as it came) and applies what it says, as `event`
    /// reads it, to the payment it matches. An unreadable one is stored unmatched, for an
    /// operator, and refused with a 400.
    async fn record<E: std::fmt::Display>(
        &self,
        state: &AppState,
        body: &[u8],
        report: Result<StatusReport, E>,
        source: &str,
        event: impl FnOnce(StatusReport) -> Event,
    ) -> Result<(), ApiError> {
        let Self { channel, payment, kind, verified } = *self;
        let text = String::from_utf8_lossy(body);
        let report = match report {
            Ok(report) => report,
            Err(error) => {
                state.payments.store_callback(channel, None, kind, &[], verified, &text).await?;
                return Err(unreadable(&error));
            }
        };
        let refs = crate::payments::references(&report);
        let matched =
            state.payments.store_callback(channel, payment, kind, &refs, verified, &text).await?;
        if let Some(payment) = matched {
            state.payments.apply(payment, &event(report), Stage::Sent, source, None).await?;
        }
        Ok(())
    }
}

/// Where a customer's unprompted payment goes: the wallet its account reference names (of the
/// customer with the paying number), else the channel's receiving purse.
struct Target {
    account: AccountId,
    customer: Option<CustomerId>,
    party: serde_json::Value,
}

async fn target(
    state: &AppState,
    channel: &Channel,
    payer: Option<&Msisdn>,
    bill_ref: &str,
) -> Result<Option<Target>, ApiError> {
    let customer = match payer {
        Some(Msisdn::Full(digits)) => {
            let number = CustomerNumber {
                number: format!("+{digits}"),
                provider: customers::Provider::Cellular,
                partition: None,
            };
            match number.normalised() {
                Ok(number) => {
                    Some(customers::by_number(&state.pool, channel.org, &number).await?.0)
                }
                Err(_) => None,
            }
        }
        _ => None,
    };
    let bill_ref = bill_ref.trim();
    if let Some(customer) = customer
        && !bill_ref.is_empty()
        && let Some(wallet) = state.store.wallet(channel.org, customer, bill_ref).await?
        && wallet.currency == channel.currency
        && !wallet.closed
    {
        let party = serde_json::json!({
            "wallet": { "customerId": customer.0, "walletId": bill_ref }
        });
        return Ok(Some(Target { account: wallet.id, customer: Some(customer), party }));
    }
    // An account reference that is a phone number names its owner's one wallet in the
    // channel's currency (Daraja v2 masks the payer's own number, so this is how a payer
    // reaches a wallet, theirs or someone else's).
    if let Some(owner) = phone_owner(state, channel, bill_ref).await? {
        let wallets = state
            .store
            .accounts(channel.org, AccountKind::Wallet, Some(owner), None, 1_000)
            .await?;
        let mut usable = wallets.iter().filter(|w| w.currency == channel.currency && !w.closed);
        if let (Some(wallet), None) = (usable.next(), usable.next()) {
            let party = serde_json::json!({
                "wallet": { "customerId": owner.0, "walletId": wallet.wallet_id }
            });
            return Ok(Some(Target { account: wallet.id, customer: Some(owner), party }));
        }
    }
    let Some(purse) = channel.receiving_purse else { return Ok(None) };
    let purse = state
        .store
        .account(channel.org, purse)
        .await?
        .filter(|account| account.kind == AccountKind::Purse && !account.closed);
    Ok(purse.map(|purse| Target {
        account: purse.id,
        customer,
        party: serde_json::json!({ "purse": { "purseId": purse.id.0 } }),
    }))
}

/// The existing customer whose phone number an account reference is (`2547…` or `+2547…`).
async fn phone_owner(
    state: &AppState,
    channel: &Channel,
    reference: &str,
) -> Result<Option<CustomerId>, ApiError> {
    let digits = reference.trim_start_matches('+');
    if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let number = CustomerNumber {
        number: format!("+{digits}"),
        provider: customers::Provider::Cellular,
        partition: None,
    };
    let Ok(number) = number.normalised() else { return Ok(None) };
    customers::existing_by_number(&state.pool, channel.org, &number).await
}

async fn c2b_validation(
    state: &AppState,
    channel: &Channel,
    verified: bool,
    body: &[u8],
) -> Result<Response, ApiError> {
    let reply = |reason: Option<C2bRejectReason>| {
        Ok(Json(reason.map_or_else(C2bValidationReply::accept, C2bValidationReply::reject))
            .into_response())
    };
    if !verified {
        return reply(Some(C2bRejectReason::Other));
    }
    let Ok(received) = mpesa::read_c2b(body) else {
        return reply(Some(C2bRejectReason::InvalidAmount));
    };
    let bill_ref = received.report.our_reference.clone().unwrap_or_default();
    let amount_ok = received
        .report
        .amount
        .is_some_and(|amount| amount.currency() == channel.currency && amount.is_positive());
    if !amount_ok {
        return reply(Some(C2bRejectReason::InvalidAmount));
    }
    match target(state, channel, received.payer_msisdn.as_ref(), &bill_ref).await? {
        Some(_) => reply(None),
        None => reply(Some(C2bRejectReason::InvalidAccountNumber)),
    }
}

async fn c2b_confirmation(
    state: &AppState,
    channel: &Channel,
    verified: bool,
    body: &[u8],
) -> Result<Response, ApiError> {
    let text = String::from_utf8_lossy(body);
    let ack = || Ok(Json(CallbackAck::c2b()).into_response());
    let received = match mpesa::read_c2b(body) {
        Ok(received) => received,
        Err(error) => {
            state.payments.store_callback(channel, None, "c2b", &[], verified, &text).await?;
            return Err(unreadable(&error));
        }
    };
    let trans_id = received.report.receipt.clone().unwrap_or_default();
    let refs = vec![trans_id.clone()];
    if !verified {
        // Not the provider's word: it makes no payment, no customer and no query that could
        // post one. It is kept for an operator, and a payment it names that we already have
        // is only asked about sooner.
        let matched =
            state.payments.store_callback(channel, None, "c2b", &refs, false, &text).await?;
        if let Some(payment) = matched {
            let event = Event::Callback { report: received.report, verified: false };
            state.payments.apply(payment, &event, Stage::Sent, "callback", None).await?;
        }
        return ack();
    }
    let bill_ref = received.report.our_reference.clone().unwrap_or_default();
    let amount = received
        .report
        .amount
        .filter(|amount| amount.currency() == channel.currency && amount.is_positive());
    let target = target(state, channel, received.payer_msisdn.as_ref(), &bill_ref).await?;
    let (Some(amount), Some(target)) = (amount, target) else {
        // Money arrived that no account takes: kept for the finance team, never guessed.
        state.payments.store_callback(channel, None, "c2b", &refs, verified, &text).await?;
        tracing::warn!(channel = %channel.id, "a C2B payment with no account to take it: parked");
        return ack();
    };
    let payer = match &received.payer_msisdn {
        Some(Msisdn::Full(digits) | Msisdn::Masked(digits)) => digits.clone(),
        None => String::new(),
    };
    let id = state
        .payments
        .record_received(
            channel,
            &trans_id,
            &payer,
            amount,
            &target_request(&target, &payer, amount, &trans_id),
            target.account,
            target.customer,
        )
        .await?;
    state.payments.store_callback(channel, Some(id), "c2b", &refs, verified, &text).await?;
    let event = Event::Callback { report: received.report, verified };
    state.payments.apply(id, &event, Stage::Sent, "callback", None).await?;
    ack()
}

/// The stored request of a received payment: its parties and the ledger context that links it
/// to the customer's timeline.
fn target_request(
    target: &Target,
    payer: &str,
    amount: Money,
    trans_id: &str,
) -> serde_json::Value {
    let debit = serde_json::json!({ "customer": { "customerNumber": {
        "number": format!("+{payer}"), "provider": "cellular" } } });
    let narration = format!("M-Pesa payment {trans_id}");
    let customers: Vec<String> = target.customer.iter().map(|c| c.0.to_string()).collect();
    serde_json::json!({
        "debitParty": debit,
        "creditParty": target.party,
        "value": crate::http::v1::money::Value::of(&amount),
        "narration": narration,
        "context": {
            "payment": {
                "debitParty": debit, "creditParty": target.party, "narration": narration,
                "appId": null,
            },
            "hazina": { "customers": customers },
        },
    })
}
