//! The M-Pesa (Safaricom Daraja) simulator: Daraja's paths, bodies and callbacks on local HTTP,
//! with the outcome of each payment scripted per customer phone number.
//!
//! Routes (relative to the mount point, `/simulator/mpesa` in the server):
//!
//! - `GET /oauth/v1/generate?grant_type=client_credentials` issues a bearer token for any
//!   well-formed `Authorization: Basic …`; every other Daraja route wants one of its tokens.
//! - `POST /mpesa/stkpush/v1/processrequest` and `POST /mpesa/stkpushquery/v1/query`.
//! - `POST /mpesa/b2c/v3/paymentrequest` (refuses a repeated `OriginatorConversationID`).
//! - `POST /mpesa/transactionstatus/v1/query`.
//! - `POST /mpesa/c2b/v1/registerurl` and `POST /mpesa/c2b/v2/registerurl`.
//! - Simulator only: `POST /simulate/c2b` (a customer pays a registered shortcode),
//!   `PUT /simulate/scripts/{msisdn}` (script a number), `DELETE /simulate/scripts` (forget all
//!   scripts and records), `GET /simulate/transactions` and `GET /simulate/deliveries`.
//! - Simulator only: `PUT /simulate/transactions/{id}` decides an undecided STK push
//!   (`CheckoutRequestID`) or B2C payout (`ConversationID`), typically one scripted with
//!   `"awaitDecision":true`: `{"resultCode":"0"}` succeeds, any other code fails with it, and
//!   `"resultDesc"` is optional. Its callback goes out as its script says and the answer, once
//!   it is delivered, is 200 with the decided transaction; 404 for an unknown id, 409 when it
//!   is already decided, 400 for an unreadable body or an empty code. See [`Simulator::decide`].
//!
//! Callbacks go out over plain HTTP with hyper, once (M-Pesa documents no retries); a failed
//! delivery is recorded, not retried. Nothing here touches the database, and amounts stay
//! text or whole shillings: no floats.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine as _;
use chrono::{NaiveDateTime, TimeDelta, Utc};
use hazina_providers::mpesa::{
    B2cRequest, C2bPayment, C2bRegisterUrlRequest, C2bRegisterUrlResponse, C2bValidationReply,
    ErrorResponse, QueuedResponse, StkPushRequest, StkPushResponse, StkQueryRequest,
    StkQueryResponse, TokenResponse, TransactionStatusRequest,
};
use hazina_providers::wire::Text;
use http_body_util::{BodyExt as _, Full};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How long an issued token is valid, as Daraja says (`expires_in` `3599`).
const TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// How long a callback receiver may take to answer before the delivery counts as failed.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long Daraja waits for a validation reply before `ResponseType` applies.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(8);

/// STK amounts Daraja takes, in whole shillings.
const STK_AMOUNT_MAX: u64 = 250_000;

// ---------------------------------------------------------------------------------------------
// Scripts
// ---------------------------------------------------------------------------------------------

/// How the result of a scripted request reaches its callback URL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CallbackMode {
    /// Sent once, after the synchronous response (the usual case).
    #[default]
    Once,
    /// Sent twice with the same body, as a receiver must expect from any provider.
    Twice,
    /// Never sent: only a status query tells the outcome.
    Withheld,
    /// Sent (and its delivery awaited) before the synchronous response returns, so the
    /// receiver sees a result for a request whose response it has not read yet.
    BeforeResponse,
}

/// What the simulator does with the requests of one customer phone number (STK
/// `PhoneNumber`/`PartyA`, B2C `PartyB`). Unscripted numbers get [`Script::default`]: success,
/// one prompt callback, a healthy status endpoint.
///
/// As JSON (for `PUT /simulate/scripts/{msisdn}`) every field is optional:
/// `{"resultCode":"1032","callback":"twice","callbackDelayMs":0,"awaitDecision":false,
/// "statusDelayMs":0,"statusFails":false,"queueTimeout":false}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Script {
    /// The payment's `ResultCode`: `"0"` succeeds; any other code fails with it (for example
    /// `"1032"`, cancelled by the user, or `"2001"`, wrong PIN; B2C `"SFC_IC0003"`).
    pub result_code: String,
    /// The `ResultDesc`; by default Daraja's documented description of the code.
    pub result_desc: Option<String>,
    /// How the callback is sent.
    pub callback: CallbackMode,
    /// How long the outcome stays undecided (a status query answers "being processed") before
    /// it is decided and its callback sent.
    pub callback_delay_ms: u64,
    /// Whether the outcome stays undecided (no callback; a status query answers "being
    /// processed") until [`Simulator::decide`] decides it. `resultCode`, `resultDesc` and
    /// `callbackDelayMs` then play no part; the callback mode and the rest still do.
    pub await_decision: bool,
    /// How long the status endpoints (STK query, transaction status) take to answer about
    /// this payment.
    pub status_delay_ms: u64,
    /// Whether the status endpoints answer 500 (`500.003.1001`) about this payment.
    pub status_fails: bool,
    /// B2C only: the request times out in Daraja's queue; a notice goes to `QueueTimeOutURL`
    /// instead of a result to `ResultURL`, and no money moves.
    pub queue_timeout: bool,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            result_code: "0".to_owned(),
            result_desc: None,
            callback: CallbackMode::Once,
            callback_delay_ms: 0,
            await_decision: false,
            status_delay_ms: 0,
            status_fails: false,
            queue_timeout: false,
        }
    }
}

impl Script {
    /// The payment succeeds.
    pub fn success() -> Self {
        Self::default()
    }

    /// The payment fails with this `ResultCode` and its documented description.
    pub fn failure(result_code: &str) -> Self {
        Self { result_code: result_code.to_owned(), ..Self::default() }
    }

    /// The same script, with its callback sent as `mode` says.
    #[must_use]
    pub fn with_callback(self, mode: CallbackMode) -> Self {
        Self { callback: mode, ..self }
    }

    /// The same script, with the outcome undecided for `delay` first.
    #[must_use]
    pub fn with_callback_delay(self, delay: Duration) -> Self {
        Self { callback_delay_ms: millis(delay), ..self }
    }

    /// The same script, with the outcome undecided until [`Simulator::decide`] decides it.
    #[must_use]
    pub fn with_awaited_decision(self) -> Self {
        Self { await_decision: true, ..self }
    }

    /// The same script, with status queries about the payment answering after `delay`.
    #[must_use]
    pub fn with_status_delay(self, delay: Duration) -> Self {
        Self { status_delay_ms: millis(delay), ..self }
    }

    /// The same script, with status queries about the payment answering 500.
    #[must_use]
    pub fn with_status_failing(self) -> Self {
        Self { status_fails: true, ..self }
    }

    /// The same script, with a B2C payout timing out in the queue.
    #[must_use]
    pub fn with_queue_timeout(self) -> Self {
        Self { queue_timeout: true, ..self }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Daraja's description of an STK result code.
fn stk_description(code: &str) -> String {
    let text = match code {
        "0" => "The service request is processed successfully.",
        "1" => "The balance is insufficient for the transaction.",
        "2" => "Less Than Minimum Transaction Value",
        "3" => "More Than Maximum Transaction Value",
        "4" => "Would Exceed Daily Transfer Limit",
        "8" => "Would Exceed Maximum Balance",
        "17" => "Rule limited.",
        "1019" => "Transaction has expired",
        "1025" => "An error occurred while sending a push request",
        "1032" => "Request cancelled by user",
        "1037" => "DS timeout user cannot be reached",
        "2001" => "The initiator information is invalid.",
        "2028" => "The request is not permitted according to product assignment.",
        "8006" => "The security credential is locked",
        other => return format!("Simulated result {other}"),
    };
    text.to_owned()
}

/// Daraja's description of a B2C result code.
fn b2c_description(code: &str) -> String {
    let text = match code {
        "0" => "The service request is processed successfully.",
        "1" => "The balance is insufficient for the transaction.",
        "2" => "Declined due to limit rule: less than the minimum transaction amount.",
        "3" => "Declined due to limit rule: greater than the maximum transaction amount.",
        "4" => "Declined due to limit rule: would exceed daily transfer limit.",
        "8" => "Declined due to limit rule: would exceed the maximum balance.",
        "11" => "The DebitParty is in an invalid state.",
        "21" => "The initiator is not allowed to initiate this request.",
        "2001" => "The initiator information is invalid.",
        "2006" => {
            "Declined due to account rule: The account status does not allow this transaction."
        }
        "2028" => "The request is not permitted according to product assignment.",
        "2040" => {
            "Credit Party customer type (Unregistered or Registered Customer) can't be supported by the service."
        }
        "8006" => "The security credential is locked.",
        "SFC_IC0003" => "The operator does not exist.",
        other => return format!("Simulated result {other}"),
    };
    text.to_owned()
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// Which Daraja API a recorded request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    /// An STK push; its id is the `CheckoutRequestID`.
    StkPush,
    /// A B2C payout; its id is the `ConversationID`.
    B2c,
    /// A transaction status query; its id is the query's own `ConversationID`.
    TransactionStatus,
    /// A customer payment through `/simulate/c2b`; its id is the `TransID`.
    C2b,
}

/// A request the simulator received, and what it decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transaction {
    pub kind: TransactionKind,
    /// `CheckoutRequestID`, `ConversationID` or `TransID` (see [`TransactionKind`]).
    pub id: String,
    /// STK `MerchantRequestID`, or the `OriginatorConversationID` of a B2C payout or status
    /// query.
    pub secondary_id: String,
    /// The customer's number, when the request has one.
    pub msisdn: Option<String>,
    /// Whole shillings as text, when the request moves money.
    pub amount: Option<String>,
    /// The M-Pesa receipt the payment gets if it succeeds.
    pub receipt: String,
    /// The decided `ResultCode`; `None` while the outcome is undecided.
    pub result_code: Option<String>,
    pub result_desc: Option<String>,
    /// Whether a B2C payout timed out in the queue (no result, no money moved).
    pub queue_timed_out: bool,
    /// The script in force when the request arrived.
    pub script: Script,
    /// The request body as received.
    pub request: Value,
    #[serde(skip)]
    received_at: NaiveDateTime,
}

impl Transaction {
    /// Whether the payment is decided and succeeded.
    pub fn succeeded(&self) -> bool {
        self.result_code.as_deref() == Some("0") && !self.queue_timed_out
    }
}

/// Why [`Simulator::decide`] decided nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// The result code was empty.
    #[error("a result code is required")]
    MissingResultCode,
    /// No STK push or B2C payout has the id.
    #[error("no STK push or B2C payout has this id")]
    UnknownTransaction,
    /// The payment already has its result; a payment is decided once.
    #[error("the transaction is already decided")]
    AlreadyDecided,
}

/// One HTTP POST the simulator made to a caller's URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The [`Transaction::id`] it is about.
    pub transaction_id: String,
    pub url: String,
    pub body: Value,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// The receiver's reply body, when it answered.
    pub reply: Option<String>,
    /// Why the delivery failed (unreachable, timed out, unsupported URL), when it did.
    pub error: Option<String>,
}

/// The URLs a shortcode registered for C2B.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Registration {
    confirmation_url: String,
    validation_url: String,
    /// `Completed` or `Cancelled`: what happens when validation is unreachable or late.
    completes_by_default: bool,
    /// v2 masks the payer's MSISDN in the bodies it sends.
    masks_msisdn: bool,
}

#[derive(Debug, Default)]
struct Records {
    tokens: HashMap<String, Instant>,
    scripts: HashMap<String, Script>,
    registrations: HashMap<String, Registration>,
    transactions: Vec<Transaction>,
    deliveries: Vec<Delivery>,
    sequence: u64,
}

impl Records {
    fn script_for(&self, msisdn: &str) -> Script {
        self.scripts.get(msisdn).cloned().unwrap_or_default()
    }

    fn next(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    fn find(&self, id: &str) -> Option<&Transaction> {
        self.transactions.iter().find(|transaction| transaction.id == id)
    }

    fn find_mut(&mut self, id: &str) -> Option<&mut Transaction> {
        self.transactions.iter_mut().find(|transaction| transaction.id == id)
    }
}

#[derive(Debug)]
struct Inner {
    state: Mutex<Records>,
    validation_timeout: Duration,
}

/// The M-Pesa simulator: its issued tokens, scripts, C2B registrations and everything it
/// received and sent. Cloning is cheap and shares the state.
#[derive(Clone, Debug)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl Default for Simulator {
    fn default() -> Self {
        Self::new()
    }
}

impl Simulator {
    /// A simulator with no scripts (every payment succeeds) and no registrations.
    pub fn new() -> Self {
        Self::with_validation_timeout(VALIDATION_TIMEOUT)
    }

    /// A simulator that waits `timeout` (Daraja: about 8 s) for a C2B validation reply before
    /// the shortcode's `ResponseType` applies.
    pub fn with_validation_timeout(timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(Records::default()),
                validation_timeout: timeout,
            }),
        }
    }

    /// The simulator's routes (mounted under `/simulator/mpesa`).
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/oauth/v1/generate", get(generate_token))
            .route("/mpesa/stkpush/v1/processrequest", post(stk_push))
            .route("/mpesa/stkpushquery/v1/query", post(stk_query))
            .route("/mpesa/b2c/v3/paymentrequest", post(b2c_payment))
            .route("/mpesa/transactionstatus/v1/query", post(transaction_status))
            .route("/mpesa/c2b/v1/registerurl", post(register_v1))
            .route("/mpesa/c2b/v2/registerurl", post(register_v2))
            .route("/simulate/c2b", post(simulate_c2b))
            .route("/simulate/scripts/{msisdn}", put(put_script))
            .route("/simulate/scripts", axum::routing::delete(delete_scripts))
            .route("/simulate/transactions", get(list_transactions))
            .route("/simulate/transactions/{id}", put(decide_transaction))
            .route("/simulate/deliveries", get(list_deliveries))
            .with_state(self.clone())
    }

    /// Scripts the requests of one customer number (`2547…`), replacing its earlier script.
    pub fn script(&self, msisdn: &str, script: Script) {
        self.lock().scripts.insert(msisdn.to_owned(), script);
    }

    /// Forgets all scripts, registrations, transactions and deliveries. Issued tokens stay
    /// valid, so connected clients keep working.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.scripts.clear();
        state.registrations.clear();
        state.transactions.clear();
        state.deliveries.clear();
    }

    /// Every request received so far, oldest first.
    pub fn transactions(&self) -> Vec<Transaction> {
        self.lock().transactions.clone()
    }

    /// Every POST made to a caller's URL so far (callbacks, validations, confirmations), in
    /// the order they completed.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// Decides an STK push (`id` its `CheckoutRequestID`) or B2C payout (its `ConversationID`)
    /// that is still undecided: scripted with [`Script::with_awaited_decision`], or with a
    /// callback delay not yet passed. `result_code` `"0"` succeeds and any other fails with it;
    /// `result_desc` defaults to Daraja's description of the code. The callback then goes out
    /// as the payment's script says (once, twice or withheld; a callback meant to beat the
    /// response goes once, the response being long gone), and this waits for its delivery.
    /// Answers the decided transaction.
    ///
    /// # Errors
    ///
    /// [`DecideError::MissingResultCode`] for an empty code, [`DecideError::UnknownTransaction`]
    /// when no STK push or B2C payout has `id`, [`DecideError::AlreadyDecided`] when it has its
    /// result already.
    pub async fn decide(
        &self,
        id: &str,
        result_code: &str,
        result_desc: Option<&str>,
    ) -> Result<Transaction, DecideError> {
        let result_code = result_code.trim();
        if result_code.is_empty() {
            return Err(DecideError::MissingResultCode);
        }
        let result_desc = result_desc.map(str::trim).filter(|desc| !desc.is_empty());
        let (transaction, url, body) = self.settle(id, result_code, result_desc)?;
        self.send_callback(&transaction, &url, body).await;
        Ok(transaction)
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        // A panic while holding the lock leaves plain records behind, still worth reading.
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses a request without a current bearer token this simulator issued.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token else {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "404.001.04",
                "Invalid Authentication passed",
            ));
        };
        let valid =
            self.lock().tokens.get(token).is_some_and(|issued| issued.elapsed() < TOKEN_LIFETIME);
        if valid {
            Ok(())
        } else {
            Err(Refusal::new(StatusCode::UNAUTHORIZED, "404.001.03", "Invalid Access Token"))
        }
    }

    /// Decides an undecided STK push or B2C payout with `result_code` (the description by
    /// default Daraja's) and builds its callback: the decided transaction, where the callback
    /// goes and what it says.
    fn settle(
        &self,
        id: &str,
        result_code: &str,
        result_desc: Option<&str>,
    ) -> Result<(Transaction, String, Value), DecideError> {
        let mut state = self.lock();
        // Status queries and customer payments get their results as they are handled; only
        // a payment the simulator was asked to make waits for one.
        let transaction = match state.find_mut(id) {
            Some(transaction)
                if matches!(transaction.kind, TransactionKind::StkPush | TransactionKind::B2c) =>
            {
                transaction
            }
            _ => return Err(DecideError::UnknownTransaction),
        };
        if transaction.result_code.is_some() {
            return Err(DecideError::AlreadyDecided);
        }
        let is_stk_push = transaction.kind == TransactionKind::StkPush;
        let describe = if is_stk_push { stk_description } else { b2c_description };
        if !is_stk_push && transaction.script.queue_timeout {
            transaction.queue_timed_out = true;
        }
        transaction.result_desc =
            Some(result_desc.map_or_else(|| describe(result_code), str::to_owned));
        transaction.result_code = Some(result_code.to_owned());
        let transaction = transaction.clone();
        drop(state);
        let (url, body) = if is_stk_push {
            (text_field(&transaction.request, "CallBackURL"), stk_callback(&transaction))
        } else if transaction.queue_timed_out {
            (
                text_field(&transaction.request, "QueueTimeOutURL"),
                queue_timeout_notice(&transaction),
            )
        } else {
            (text_field(&transaction.request, "ResultURL"), b2c_result(&transaction))
        };
        Ok((transaction, url, body))
    }

    /// Sends a decided payment's callback as its script says: once, twice or not at all.
    async fn send_callback(&self, transaction: &Transaction, url: &str, body: Value) {
        let times = match transaction.script.callback {
            CallbackMode::Withheld => 0,
            CallbackMode::Once | CallbackMode::BeforeResponse => 1,
            CallbackMode::Twice => 2,
        };
        for _ in 0..times {
            self.deliver(&transaction.id, url, body.clone(), CALLBACK_TIMEOUT).await;
        }
    }

    /// Waits out the scripted delay, decides the outcome and sends its callback as scripted;
    /// leaves a payment that awaits a decision to [`Self::decide`].
    async fn settle_and_send(self, id: String, script: Script) {
        if script.await_decision {
            return;
        }
        if script.callback_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(script.callback_delay_ms)).await;
        }
        // Nothing to send when the payment was cleared or decided by hand meanwhile.
        let Ok((transaction, url, body)) =
            self.settle(&id, &script.result_code, script.result_desc.as_deref())
        else {
            return;
        };
        self.send_callback(&transaction, &url, body).await;
    }

    /// Runs [`Self::settle_and_send`] in the background, or first when the script wants the
    /// callback before the response.
    async fn dispatch(&self, id: String, script: Script) {
        if script.callback == CallbackMode::BeforeResponse {
            // Spawned and awaited, not run in the handler: like Daraja, the payment goes ahead
            // even when the caller hangs up before the response.
            let _ = tokio::spawn(self.clone().settle_and_send(id, script)).await;
        } else {
            tokio::spawn(self.clone().settle_and_send(id, script));
        }
    }

    /// POSTs `body` to `url` and records the attempt; never retried.
    async fn deliver(&self, id: &str, url: &str, body: Value, timeout: Duration) -> Delivery {
        let outcome = match tokio::time::timeout(timeout, post_json(url, &body)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        };
        let (status, reply, error) = match outcome {
            Ok((status, reply)) => (Some(status), Some(reply), None),
            Err(error) => (None, None, Some(error)),
        };
        let delivery = Delivery {
            transaction_id: id.to_owned(),
            url: url.to_owned(),
            body,
            status,
            reply,
            error,
        };
        self.lock().deliveries.push(delivery.clone());
        delivery
    }

    /// Applies the payment's scripted status-endpoint behaviour: waits, then refuses if it
    /// should fail.
    async fn status_behaviour(script: &Script) -> Result<(), Refusal> {
        if script.status_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(script.status_delay_ms)).await;
        }
        if script.status_fails {
            return Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500.003.1001",
                "Internal Server Error",
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Daraja routes
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct TokenQuery {
    grant_type: Option<String>,
}

async fn generate_token(
    State(sim): State<Simulator>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    if query.grant_type.as_deref() != Some("client_credentials") {
        return daraja_error(StatusCode::BAD_REQUEST, "400.008.02", "Invalid grant type passed");
    }
    // Any `key:secret` is accepted: the simulator has no consumer apps to check against.
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .filter(|text| text.split_once(':').is_some_and(|(key, _)| !key.is_empty()));
    if credentials.is_none() {
        return daraja_error(
            StatusCode::BAD_REQUEST,
            "400.008.01",
            "Invalid Authentication passed",
        );
    }
    let token = random_text(28, ALPHANUMERIC);
    sim.lock().tokens.insert(token.clone(), Instant::now());
    // Daraja sends `expires_in` as a number or a string; the string form is the stricter test
    // of a client.
    Json(TokenResponse {
        access_token: hazina_providers::Secret::new(token),
        expires_in: Text::from("3599"),
    })
    .into_response()
}

async fn stk_push(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = sim.authorize(&headers) {
        return refusal.into_response();
    }
    let (request, raw) = match parse::<StkPushRequest>(&body) {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.into_response(),
    };
    let phone = request.phone_number.as_str().trim().to_owned();
    if !is_msisdn(&phone) {
        return invalid("PhoneNumber");
    }
    let Some(amount) = whole_shillings(request.amount.as_str())
        .filter(|amount| (1..=STK_AMOUNT_MAX).contains(amount))
    else {
        return invalid("Amount");
    };
    if !request.callback_url.starts_with("http://") && !request.callback_url.starts_with("https://")
    {
        return invalid("CallBackURL");
    }
    let now = eat_now();
    let (id, merchant_request_id, script) = {
        let mut state = sim.lock();
        let sequence = state.next();
        let id = format!("ws_CO_{}{sequence:06}", now.format("%d%m%Y%H%M%S"));
        let merchant_request_id = format!(
            "{}-{}-{sequence}",
            rand::rng().random_range(10_000..100_000),
            rand::rng().random_range(10_000_000..100_000_000)
        );
        let script = state.script_for(&phone);
        state.transactions.push(Transaction {
            kind: TransactionKind::StkPush,
            id: id.clone(),
            secondary_id: merchant_request_id.clone(),
            msisdn: Some(phone),
            amount: Some(amount.to_string()),
            receipt: receipt(),
            result_code: None,
            result_desc: None,
            queue_timed_out: false,
            script: script.clone(),
            request: raw,
            received_at: now,
        });
        (id, merchant_request_id, script)
    };
    let response = StkPushResponse {
        merchant_request_id,
        checkout_request_id: id.clone(),
        response_code: Text::from("0"),
        response_description: "Success. Request accepted for processing".to_owned(),
        customer_message: "Success. Request accepted for processing".to_owned(),
    };
    sim.dispatch(id, script).await;
    Json(response).into_response()
}

async fn stk_query(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = sim.authorize(&headers) {
        return refusal.into_response();
    }
    let (request, _) = match parse::<StkQueryRequest>(&body) {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.into_response(),
    };
    let found = sim
        .lock()
        .find(&request.checkout_request_id)
        .filter(|transaction| transaction.kind == TransactionKind::StkPush)
        .cloned();
    let Some(transaction) = found else {
        return invalid("CheckoutRequestID");
    };
    if let Err(refusal) = Simulator::status_behaviour(&transaction.script).await {
        return refusal.into_response();
    }
    // Read again: the outcome may have been decided while the scripted delay ran.
    let transaction = sim.lock().find(&transaction.id).cloned().unwrap_or(transaction);
    let Some(code) = transaction.result_code else {
        // Daraja answers a query about a prompt still open with an error body, not a result.
        return daraja_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500.001.1001",
            "The transaction is being processed",
        );
    };
    Json(StkQueryResponse {
        response_code: Text::from("0"),
        // Daraja's own spelling.
        response_description: "The service request has been accepted successsfully".to_owned(),
        merchant_request_id: transaction.secondary_id,
        checkout_request_id: transaction.id,
        result_code: Some(Text(code)),
        result_desc: transaction.result_desc,
    })
    .into_response()
}

async fn b2c_payment(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = sim.authorize(&headers) {
        return refusal.into_response();
    }
    let (request, raw) = match parse::<B2cRequest>(&body) {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.into_response(),
    };
    let originator = request.originator_conversation_id.trim().to_owned();
    if originator.is_empty() {
        return invalid("OriginatorConversationID");
    }
    let Some(amount) = whole_shillings(request.amount.as_str()).filter(|amount| *amount > 0) else {
        return invalid("Amount");
    };
    let party_b = request.party_b.as_str().trim().to_owned();
    let now = eat_now();
    let (id, script) = {
        let mut state = sim.lock();
        // Checked and recorded under one lock, so two concurrent requests with the same id
        // cannot both pay.
        let duplicate = state.transactions.iter().any(|transaction| {
            transaction.kind == TransactionKind::B2c && transaction.secondary_id == originator
        });
        if duplicate {
            return daraja_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500.002.1001",
                "Duplicate OriginatorConversationID.",
            );
        }
        let sequence = state.next();
        let id = format!("AG_{}_{}{sequence:06}", now.format("%Y%m%d"), random_text(14, HEX));
        let mut script = state.script_for(&party_b);
        if !is_msisdn(&party_b) && script.result_code == "0" {
            // Daraja takes any PartyB and fails the payout in its result.
            "SFC_IC0003".clone_into(&mut script.result_code);
        }
        state.transactions.push(Transaction {
            kind: TransactionKind::B2c,
            id: id.clone(),
            secondary_id: originator.clone(),
            msisdn: Some(party_b),
            amount: Some(amount.to_string()),
            receipt: receipt(),
            result_code: None,
            result_desc: None,
            queue_timed_out: false,
            script: script.clone(),
            request: raw,
            received_at: now,
        });
        (id, script)
    };
    let response = QueuedResponse {
        originator_conversation_id: originator,
        conversation_id: id.clone(),
        response_code: Text::from("0"),
        response_description: "Accept the service request successfully.".to_owned(),
    };
    sim.dispatch(id, script).await;
    Json(response).into_response()
}

/// The ids a status query may name the payment by, beyond what
/// [`TransactionStatusRequest`] reads.
#[derive(Deserialize)]
struct StatusLookup {
    #[serde(rename = "OriginatorConversationID", default)]
    originator_conversation_id: Option<String>,
}

async fn transaction_status(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = sim.authorize(&headers) {
        return refusal.into_response();
    }
    let (request, raw) = match parse::<TransactionStatusRequest>(&body) {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.into_response(),
    };
    let lookup = serde_json::from_slice::<StatusLookup>(&body).ok();
    let receipt = non_empty(request.transaction_id.as_deref());
    let originator = non_empty(request.original_conversation_id.as_deref())
        .or_else(|| non_empty(lookup.and_then(|l| l.originator_conversation_id).as_deref()));
    let now = eat_now();
    let (id, query_originator, original) = {
        let mut state = sim.lock();
        let original = state
            .transactions
            .iter()
            .filter(|transaction| transaction.kind != TransactionKind::TransactionStatus)
            .find(|transaction| {
                receipt.as_deref() == Some(transaction.receipt.as_str())
                    || (transaction.kind == TransactionKind::B2c
                        && originator.as_deref() == Some(transaction.secondary_id.as_str()))
            })
            .cloned();
        let sequence = state.next();
        let id = format!("AG_{}_{}{sequence:06}", now.format("%Y%m%d"), random_text(14, HEX));
        let query_originator = format!(
            "{}-{}-{sequence}",
            rand::rng().random_range(1000..10_000),
            rand::rng().random_range(1_000_000..10_000_000)
        );
        state.transactions.push(Transaction {
            kind: TransactionKind::TransactionStatus,
            id: id.clone(),
            secondary_id: query_originator.clone(),
            msisdn: None,
            amount: None,
            receipt: String::new(),
            result_code: None,
            result_desc: None,
            queue_timed_out: false,
            script: original.as_ref().map(|o| o.script.clone()).unwrap_or_default(),
            request: raw,
            received_at: now,
        });
        (id, query_originator, original)
    };
    if let Some(original) = &original
        && let Err(refusal) = Simulator::status_behaviour(&original.script).await
    {
        return refusal.into_response();
    }
    // The original's outcome as it is now, not as it was when the query arrived.
    let original = original
        .and_then(|original| sim.lock().find(&original.id).cloned())
        .filter(Transaction::succeeded);
    let result = status_result(&id, &query_originator, original.as_ref());
    {
        let mut state = sim.lock();
        if let Some(query) = state.find_mut(&id) {
            query.result_code = Some(text_field(&result["Result"], "ResultCode"));
            query.result_desc = Some(text_field(&result["Result"], "ResultDesc"));
        }
    }
    let response = QueuedResponse {
        originator_conversation_id: query_originator,
        conversation_id: id.clone(),
        response_code: Text::from("0"),
        response_description: "Accept the service request successfully.".to_owned(),
    };
    let url = request.result_url.clone();
    let sender = sim.clone();
    tokio::spawn(async move {
        sender.deliver(&id, &url, result, CALLBACK_TIMEOUT).await;
    });
    Json(response).into_response()
}

async fn register_v1(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    register(&sim, &headers, &body, false)
}

async fn register_v2(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    register(&sim, &headers, &body, true)
}

fn register(sim: &Simulator, headers: &HeaderMap, body: &Bytes, masks_msisdn: bool) -> Response {
    if let Err(refusal) = sim.authorize(headers) {
        return refusal.into_response();
    }
    let (request, _) = match parse::<C2bRegisterUrlRequest>(body) {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.into_response(),
    };
    // Daraja wants the sentence case exactly.
    let completes_by_default = match request.response_type.as_str() {
        "Completed" => true,
        "Cancelled" => false,
        _ => return invalid("ResponseType"),
    };
    let short_code = request.short_code.as_str().trim().to_owned();
    if short_code.is_empty() {
        return invalid("ShortCode");
    }
    sim.lock().registrations.insert(
        short_code,
        Registration {
            confirmation_url: request.confirmation_url,
            validation_url: request.validation_url,
            completes_by_default,
            masks_msisdn,
        },
    );
    Json(C2bRegisterUrlResponse {
        originator_conversation_id: format!(
            "{}-{}-1",
            rand::rng().random_range(1000..10_000),
            rand::rng().random_range(1_000_000..10_000_000)
        ),
        response_code: Text::from("0"),
        response_description: "Success".to_owned(),
    })
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Simulator-only routes
// ---------------------------------------------------------------------------------------------

/// A customer paying a registered shortcode (`POST /simulate/c2b`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivePayment {
    pub short_code: Text,
    pub msisdn: Text,
    /// Whole shillings, as a string or a number.
    pub amount: Text,
    #[serde(default)]
    pub bill_ref_number: String,
}

/// How a simulated customer payment's validation went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Validation {
    /// No validation URL registered: the payment proceeds.
    Skipped,
    /// The validation URL answered `ResultCode` `0`.
    Accepted,
    /// The validation URL answered a rejection (`C2B00011`…`C2B00016`).
    Rejected,
    /// The validation URL was unreachable, late or unreadable: the registered `ResponseType`
    /// decided.
    Unanswered,
}

/// What happened to a simulated customer payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedPayment {
    pub trans_id: String,
    pub validation: Validation,
    /// The validation reply's `ResultCode`, when there was a readable one.
    pub validation_result_code: Option<String>,
    /// Whether the payment went through (and its confirmation was sent).
    pub completed: bool,
    /// Whether the confirmation URL answered with a 2xx.
    pub confirmation_delivered: bool,
}

async fn simulate_c2b(State(sim): State<Simulator>, body: Bytes) -> Response {
    let request = match serde_json::from_slice::<ReceivePayment>(&body) {
        Ok(request) => request,
        Err(error) => return simulator_error(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    Json(sim.receive_payment(&request).await).into_response()
}

impl Simulator {
    /// A customer pays a registered shortcode: Daraja's validation request (if a validation
    /// URL is registered; its reply is honoured, and an unreachable or late one lets the
    /// shortcode's `ResponseType` decide), then the confirmation, with a new `TransID`.
    ///
    /// Unregistered shortcodes and amounts that are not positive whole shillings are still
    /// recorded, as rejected payments that sent nothing.
    pub async fn receive_payment(&self, request: &ReceivePayment) -> ReceivedPayment {
        let short_code = request.short_code.as_str().trim().to_owned();
        let msisdn = request.msisdn.as_str().trim().to_owned();
        let amount = whole_shillings(request.amount.as_str()).filter(|amount| *amount > 0);
        let now = eat_now();
        let trans_id = receipt();
        let registration = self.lock().registrations.get(&short_code).cloned();
        let mut outcome = ReceivedPayment {
            trans_id: trans_id.clone(),
            validation: Validation::Skipped,
            validation_result_code: None,
            completed: false,
            confirmation_delivered: false,
        };
        let payment = C2bPayment {
            transaction_type: "Pay Bill".to_owned(),
            trans_id: trans_id.clone(),
            trans_time: Text(now.format("%Y%m%d%H%M%S").to_string()),
            trans_amount: Text(format!("{}.00", amount.unwrap_or_default())),
            business_short_code: Text(short_code.clone()),
            bill_ref_number: request.bill_ref_number.clone(),
            invoice_number: String::new(),
            org_account_balance: String::new(),
            third_party_trans_id: String::new(),
            msisdn: Text(if registration.as_ref().is_some_and(|r| r.masks_msisdn) {
                mask(&msisdn)
            } else {
                msisdn.clone()
            }),
            first_name: "Simulated".to_owned(),
            middle_name: String::new(),
            last_name: "Customer".to_owned(),
        };
        let body = serde_json::to_value(&payment).unwrap_or(Value::Null);
        self.lock().transactions.push(Transaction {
            kind: TransactionKind::C2b,
            id: trans_id.clone(),
            secondary_id: request.bill_ref_number.clone(),
            msisdn: Some(msisdn),
            amount: amount.map(|amount| amount.to_string()),
            receipt: trans_id.clone(),
            result_code: None,
            result_desc: None,
            queue_timed_out: false,
            script: Script::default(),
            request: body.clone(),
            received_at: now,
        });
        let (code, desc) = match (registration, amount) {
            (None, _) => ("C2B00015", "Invalid shortcode: no URLs registered"),
            (Some(_), None) => ("C2B00013", "Invalid amount"),
            (Some(registration), Some(_)) => {
                self.validate_and_confirm(&registration, &trans_id, body, &mut outcome).await;
                if outcome.completed {
                    ("0", "Completed")
                } else {
                    ("C2B00016", "Rejected at validation")
                }
            }
        };
        let mut state = self.lock();
        if let Some(transaction) = state.find_mut(&trans_id) {
            // A rejection keeps the receiver's own code (`C2B00012`, …) when it gave one.
            let rejection = outcome.validation_result_code.clone().filter(|code| code != "0");
            transaction.result_code = Some(if outcome.completed {
                "0".to_owned()
            } else {
                rejection.unwrap_or_else(|| code.to_owned())
            });
            transaction.result_desc = Some(desc.to_owned());
        }
        outcome
    }

    async fn validate_and_confirm(
        &self,
        registration: &Registration,
        trans_id: &str,
        body: Value,
        outcome: &mut ReceivedPayment,
    ) {
        let proceed = if registration.validation_url.trim().is_empty() {
            true
        } else {
            let delivery = self
                .deliver(
                    trans_id,
                    &registration.validation_url,
                    body.clone(),
                    self.inner.validation_timeout,
                )
                .await;
            let reply = delivery
                .reply
                .filter(|_| delivery.status.is_some_and(|status| (200..300).contains(&status)))
                .and_then(|reply| serde_json::from_str::<C2bValidationReply>(&reply).ok());
            if let Some(reply) = reply {
                outcome.validation_result_code = Some(reply.result_code.to_string());
                outcome.validation =
                    if reply.is_accept() { Validation::Accepted } else { Validation::Rejected };
                reply.is_accept()
            } else {
                outcome.validation = Validation::Unanswered;
                registration.completes_by_default
            }
        };
        outcome.completed = proceed;
        if proceed {
            let delivery = self
                .deliver(trans_id, &registration.confirmation_url, body, CALLBACK_TIMEOUT)
                .await;
            outcome.confirmation_delivered =
                delivery.status.is_some_and(|status| (200..300).contains(&status));
        }
    }
}

async fn put_script(
    State(sim): State<Simulator>,
    Path(msisdn): Path<String>,
    body: Bytes,
) -> Response {
    match serde_json::from_slice::<Script>(&body) {
        Ok(script) => {
            sim.script(&msisdn, script.clone());
            Json(script).into_response()
        }
        Err(error) => simulator_error(StatusCode::BAD_REQUEST, &error.to_string()),
    }
}

async fn delete_scripts(State(sim): State<Simulator>) -> StatusCode {
    sim.clear();
    StatusCode::NO_CONTENT
}

async fn list_transactions(State(sim): State<Simulator>) -> Json<Vec<Transaction>> {
    Json(sim.transactions())
}

async fn list_deliveries(State(sim): State<Simulator>) -> Json<Vec<Delivery>> {
    Json(sim.deliveries())
}

/// The body of `PUT /simulate/transactions/{id}`: `{"resultCode":"0"}`, or a failure code
/// (as a string or a number) with an optional `resultDesc`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DecisionRequest {
    result_code: Text,
    #[serde(default)]
    result_desc: Option<String>,
}

/// `PUT /simulate/transactions/{id}`: the simulator decides an undecided payment by hand.
async fn decide_transaction(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let decision = match serde_json::from_slice::<DecisionRequest>(&body) {
        Ok(decision) => decision,
        Err(error) => return simulator_error(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    let decided =
        sim.decide(&id, decision.result_code.as_str(), decision.result_desc.as_deref()).await;
    match decided {
        Ok(transaction) => Json(transaction).into_response(),
        Err(error) => {
            let status = match error {
                DecideError::MissingResultCode => StatusCode::BAD_REQUEST,
                DecideError::UnknownTransaction => StatusCode::NOT_FOUND,
                DecideError::AlreadyDecided => StatusCode::CONFLICT,
            };
            simulator_error(status, &error.to_string())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Callback bodies
// ---------------------------------------------------------------------------------------------

// The callback bodies are built with `json!` rather than the adapter's types: Daraja sends
// `ResultCode`, amounts, dates and phone numbers there as JSON numbers, and the adapter's
// `Text` always serialises as a string. Tests read them back through the adapter.

/// A JSON number for digits (phone numbers, `YYYYMMDDHHmmss` dates, whole amounts), or the
/// text itself if it is not one.
fn number(text: &str) -> Value {
    text.parse::<u64>().map_or_else(|_| json!(text), |value| json!(value))
}

/// A result code as Daraja sends it in callbacks: a number when it is one (`0`, `1032`), a
/// string otherwise (`"SFC_IC0003"`).
fn result_code(code: &str) -> Value {
    number(code)
}

fn stk_callback(transaction: &Transaction) -> Value {
    let code = transaction.result_code.clone().unwrap_or_default();
    let mut callback = json!({
        "MerchantRequestID": transaction.secondary_id,
        "CheckoutRequestID": transaction.id,
        "ResultCode": result_code(&code),
        "ResultDesc": transaction.result_desc,
    });
    if code == "0" {
        let stamp = eat_now().format("%Y%m%d%H%M%S").to_string();
        callback["CallbackMetadata"] = json!({ "Item": [
            { "Name": "Amount", "Value": number(transaction.amount.as_deref().unwrap_or("0")) },
            { "Name": "MpesaReceiptNumber", "Value": transaction.receipt },
            { "Name": "Balance" },
            { "Name": "TransactionDate", "Value": number(&stamp) },
            { "Name": "PhoneNumber", "Value": number(transaction.msisdn.as_deref().unwrap_or("")) },
        ]});
    }
    json!({ "Body": { "stkCallback": callback } })
}

fn reference_data(transaction: &Transaction) -> Value {
    json!({ "ReferenceItem": {
        "Key": "QueueTimeoutURL",
        "Value": text_field(&transaction.request, "QueueTimeOutURL"),
    }})
}

fn b2c_result(transaction: &Transaction) -> Value {
    let code = transaction.result_code.clone().unwrap_or_default();
    let msisdn = transaction.msisdn.clone().unwrap_or_default();
    let mut result = json!({
        "ResultType": 0,
        "ResultCode": result_code(&code),
        "ResultDesc": transaction.result_desc,
        "OriginatorConversationID": transaction.secondary_id,
        "ConversationID": transaction.id,
        "TransactionID": transaction.receipt,
        "ReferenceData": reference_data(transaction),
    });
    if code == "0" {
        let completed = eat_now().format("%d.%m.%Y %H:%M:%S").to_string();
        result["ResultParameters"] = json!({ "ResultParameter": [
            { "Key": "TransactionAmount", "Value": number(transaction.amount.as_deref().unwrap_or("0")) },
            { "Key": "TransactionReceipt", "Value": transaction.receipt },
            { "Key": "ReceiverPartyPublicName", "Value": format!("{msisdn} - SIMULATED CUSTOMER") },
            { "Key": "TransactionCompletedDateTime", "Value": completed },
            { "Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y" },
        ]});
    }
    json!({ "Result": result })
}

/// No public sample of Daraja's queue-timeout notice exists; this one has the result shape
/// with a code no adapter reads as success or failure, so the payout stays unknown until a
/// status query, as it should.
fn queue_timeout_notice(transaction: &Transaction) -> Value {
    json!({ "Result": {
        "ResultType": 1,
        "ResultCode": "SVC0403",
        "ResultDesc": "The request timed out in the queue.",
        "OriginatorConversationID": transaction.secondary_id,
        "ConversationID": transaction.id,
        "TransactionID": "",
        "ReferenceData": reference_data(transaction),
    }})
}

/// The shortcode a transaction went through, as its request named it.
fn shortcode(transaction: &Transaction) -> String {
    ["PartyA", "BusinessShortCode", "ShortCode"]
        .iter()
        .find_map(|field| transaction.request.get(*field))
        .map(|code| match code {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

/// The result of a transaction status query: the queried payment's parameters when it
/// succeeded, a failure otherwise (Daraja publishes no sample of that; the code is its
/// "invalid original transaction" one).
fn status_result(id: &str, query_originator: &str, original: Option<&Transaction>) -> Value {
    let Some(original) = original else {
        return json!({ "Result": {
            "ResultType": 0,
            "ResultCode": "R000002",
            "ResultDesc": "The OriginalTransactionID is invalid.",
            "OriginatorConversationID": query_originator,
            "ConversationID": id,
            "TransactionID": "",
        }});
    };
    let initiated = original.received_at.format("%Y%m%d%H%M%S").to_string();
    let finalised = eat_now().format("%Y%m%d%H%M%S").to_string();
    let msisdn = original.msisdn.clone().unwrap_or_default();
    let (original_originator, original_conversation) = match original.kind {
        TransactionKind::B2c => (original.secondary_id.clone(), original.id.clone()),
        _ => (String::new(), original.id.clone()),
    };
    // The parties as Daraja names them, `number - name`, on the side the money left and the
    // side it reached: the shortcode pays a payout, the customer pays a collection or a C2B.
    let organisation = format!("{} - Simulated Organisation", shortcode(original));
    let customer = format!("{msisdn} - Simulated Customer");
    let (debit_party, credit_party) = match original.kind {
        TransactionKind::B2c => (organisation, customer),
        _ => (customer, organisation),
    };
    json!({ "Result": {
        "ResultType": 0,
        "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": query_originator,
        "ConversationID": id,
        "TransactionID": original.receipt,
        "ResultParameters": { "ResultParameter": [
            { "Key": "DebitPartyName", "Value": debit_party },
            { "Key": "CreditPartyName", "Value": credit_party },
            { "Key": "OriginatorConversationID", "Value": original_originator },
            { "Key": "InitiatedTime", "Value": number(&initiated) },
            { "Key": "DebitAccountType", "Value": "Utility Account" },
            { "Key": "DebitPartyCharges", "Value": "" },
            { "Key": "TransactionReason" },
            { "Key": "ReasonType", "Value": "Business Payment to Individual via API" },
            { "Key": "TransactionStatus", "Value": "Completed" },
            { "Key": "FinalisedTime", "Value": number(&finalised) },
            { "Key": "Amount", "Value": number(original.amount.as_deref().unwrap_or("0")) },
            { "Key": "ConversationID", "Value": original_conversation },
            { "Key": "ReceiptNo", "Value": original.receipt },
        ]},
        "ReferenceData": { "ReferenceItem": { "Key": "Occasion" } },
    }})
}

// ---------------------------------------------------------------------------------------------
// HTTP client for callbacks
// ---------------------------------------------------------------------------------------------

/// POSTs a JSON body with a bare hyper connection; answers the status and the reply body.
/// Only `http://` URLs: the simulator talks to local receivers and carries no TLS.
async fn post_json(url: &str, body: &Value) -> Result<(u16, String), String> {
    let uri: hyper::Uri = url.parse().map_err(|error| format!("invalid callback URL: {error}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("the simulator sends to http:// URLs only".to_owned());
    }
    let authority =
        uri.authority().ok_or_else(|| "no host in the callback URL".to_owned())?.clone();
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((authority.host(), port))
        .await
        .map_err(|error| format!("connect {authority}: {error}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|error| format!("handshake {authority}: {error}"))?;
    tokio::spawn(connection);
    let path = uri.path_and_query().map_or("/", hyper::http::uri::PathAndQuery::as_str);
    let bytes = serde_json::to_vec(body).map_err(|error| error.to_string())?;
    let request = hyper::Request::post(path)
        .header(header::HOST, authority.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|error| error.to_string())?;
    let response = sender.send_request(request).await.map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    let reply = response.into_body().collect().await.map_err(|error| error.to_string())?;
    Ok((status, String::from_utf8_lossy(&reply.to_bytes()).into_owned()))
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const HEX: &[u8] = b"0123456789abcdef";

fn random_text(length: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..length).map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())])).collect()
}

/// A receipt like Daraja's (`NLJ7RT61SV`): ten upper-case letters and digits, a letter first.
fn receipt() -> String {
    let first = random_text(1, &UPPER_ALPHANUMERIC[..26]);
    format!("{first}{}", random_text(9, UPPER_ALPHANUMERIC))
}

/// The time on Daraja's clock: East Africa Time, UTC+3 all year.
fn eat_now() -> NaiveDateTime {
    (Utc::now() + TimeDelta::hours(3)).naive_utc()
}

/// A Kenyan number in Daraja's form: twelve digits starting `254`.
fn is_msisdn(text: &str) -> bool {
    text.len() == 12 && text.starts_with("254") && text.bytes().all(|b| b.is_ascii_digit())
}

/// Whole shillings from Daraja's amount text (`"10"`, `10`, `"10.00"`); `None` for anything
/// with a non-zero fraction or not a plain number.
fn whole_shillings(text: &str) -> Option<u64> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let plain = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b == b'0')
        && !(text.ends_with('.'));
    if plain { whole.parse().ok() } else { None }
}

/// The v2 C2B masking of a payer's number: `2547 ***** 126`.
fn mask(msisdn: &str) -> String {
    if msisdn.len() < 8 || !msisdn.is_ascii() {
        return msisdn.to_owned();
    }
    format!("{} ***** {}", &msisdn[..4], &msisdn[msisdn.len() - 3..])
}

fn non_empty(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|text| !text.is_empty()).map(str::to_owned)
}

/// A string field of a JSON object, or the text of a number there; empty when absent.
fn text_field(value: &Value, key: &str) -> String {
    match &value[key] {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => String::new(),
    }
}

/// Reads a request body as a Daraja type, keeping the raw JSON for the records.
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<(T, Value), Refusal> {
    let invalid_payload =
        || Refusal::new(StatusCode::BAD_REQUEST, "400.002.05", "Invalid Request Payload");
    let typed = serde_json::from_slice::<T>(body).map_err(|_| invalid_payload())?;
    let raw = serde_json::from_slice::<Value>(body).map_err(|_| invalid_payload())?;
    Ok((typed, raw))
}

/// Daraja's refusal of one field: `400.002.02 Bad Request - Invalid <field>`.
fn invalid(field: &str) -> Response {
    daraja_error(StatusCode::BAD_REQUEST, "400.002.02", &format!("Bad Request - Invalid {field}"))
}

/// A Daraja error body not yet sent; small, so the `Result`s that carry it stay small.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        Self { status, code, message }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        daraja_error(self.status, self.code, self.message)
    }
}

/// Daraja's synchronous error body.
fn daraja_error(status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = format!(
        "{}-{}-1",
        rand::rng().random_range(1000..100_000),
        rand::rng().random_range(1_000_000..100_000_000)
    );
    let body = ErrorResponse {
        request_id,
        error_code: code.to_owned(),
        error_message: message.to_owned(),
    };
    (status, Json(body)).into_response()
}

/// An error of a simulator-only route (not Daraja's shape: Daraja has no such route).
fn simulator_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
