//! The MTN MoMo Open API simulator: MoMo's token, request-to-pay and transfer paths, headers,
//! bodies and callbacks over local HTTP, with each payment's outcome scripted by its MSISDN.
//!
//! The wire shapes are those of [`hazina_providers::momo`]: a payment is `POST`ed with a
//! UUID v4 `X-Reference-Id` and answered `202` with an empty body; its status resource is read
//! back by `GET` (200 even when it failed), and sent once to `X-Callback-Url` when the outcome
//! is decided (`PUT` by default, no retry, as MTN documents). Transfer callbacks carry no
//! `referenceId`, so a receiver must correlate them on `externalId`.
//!
//! Unlike the M-Pesa simulator there is no way to inject an unsolicited incoming payment: MoMo
//! collections are pull-based (we ask the customer with a request to pay), so a payment the
//! platform did not start never arrives from MoMo.
//!
//! Outcomes follow MTN's own sandbox MSISDNs unless a [`Script`] says otherwise:
//! `46733123450` `INTERNAL_PROCESSING_ERROR`, `…451` `APPROVAL_REJECTED`, `…452` `EXPIRED`,
//! `…453`/`…454` stay `PENDING`, `…455` `NOT_ENOUGH_FUNDS`, `…456` `PAYER_LIMIT_REACHED`,
//! `…457` `PAYEE_NOT_FOUND`, `…458` `NOT_ALLOWED_TARGET_ENVIRONMENT`, `…459`
//! `INVALID_CALLBACK_URL_HOST`, `…460` `INVALID_CURRENCY`; any other number succeeds.
//!
//! Routes, relative to where the router is nested (`/simulator/momo`):
//!
//! - `POST /{collection|disbursement}/token/`: Basic `apiUser:apiKey` and
//!   `Ocp-Apim-Subscription-Key`; any non-empty user and key are accepted.
//! - `POST /collection/v1_0/requesttopay`, `POST /disbursement/v1_0/transfer`.
//! - `GET /collection/v1_0/requesttopay/{referenceId}`, `GET /disbursement/v1_0/transfer/{referenceId}`.
//! - Simulator only: `PUT /simulate/scripts/{msisdn}` (a [`Script`] as JSON),
//!   `DELETE /simulate/scripts/{msisdn}` and `DELETE /simulate/scripts`.
//! - Simulator only: `PUT /simulate/payments/{referenceId}` decides a payment still `PENDING`
//!   with an [`Outcome`] as JSON (`"successful"`, `{"failed":"NOT_ENOUGH_FUNDS"}`), sends its
//!   callbacks as its script says and answers 200 with its status resource once they are
//!   delivered; 404 when no payment has the reference id, 409 when it is already decided (a
//!   final status never changes), 400 for a reference id that is not a UUID v4, an unreadable
//!   body or `"pending"`. See [`Simulator::decide`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use base64::Engine as _;
use hazina_providers::momo::{FailureReason, NOTE_LENGTH_MAX, PartyIdType, Product, ReferenceId};
use http_body_util::{BodyExt as _, Full};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// How long one callback delivery may take before it is recorded as failed. MoMo does not
/// retry, and neither does the simulator.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// The first `financialTransactionId` handed out; ids count up from here, so they look like
/// MoMo's (ten digits) and are unique within one simulator.
const FINANCIAL_TRANSACTION_ID_FIRST: u64 = 1_000_000_000;

/// A token's lifetime as reported in the token reply; the simulator never expires tokens.
const TOKEN_LIFETIME_SECONDS: u64 = 3600;

// ---------------------------------------------------------------------------------------------
// Configuration and scripts
// ---------------------------------------------------------------------------------------------

/// The HTTP method callbacks are sent with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CallbackMethod {
    /// What the MoMo SDK documents.
    #[default]
    Put,
    /// What some versions send; a receiver should accept both.
    Post,
}

impl CallbackMethod {
    fn as_method(self) -> Method {
        match self {
            Self::Put => Method::PUT,
            Self::Post => Method::POST,
        }
    }
}

/// What the simulator accepts and how it calls back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The one currency accepted; anything else is refused with 400 `INVALID_CURRENCY`. The
    /// real sandbox takes EUR only; a demo may prefer UGX.
    pub currency: String,
    /// The `X-Target-Environment` accepted (`sandbox`).
    pub target_environment: String,
    /// The callback method (`PUT` unless set otherwise).
    pub callback_method: CallbackMethod,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            currency: "EUR".to_owned(),
            target_environment: "sandbox".to_owned(),
            callback_method: CallbackMethod::Put,
        }
    }
}

/// How a scripted payment ends.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `SUCCESSFUL`, with a `financialTransactionId`.
    #[default]
    Successful,
    /// `FAILED` with this reason code (`NOT_ENOUGH_FUNDS`, …).
    Failed(String),
    /// Stays `PENDING` (and so sends no callback) until [`Simulator::decide`] says otherwise.
    Pending,
}

impl Outcome {
    /// A failure with one of MoMo's reasons.
    pub fn failed(reason: &FailureReason) -> Self {
        Self::Failed(reason.code().to_owned())
    }
}

/// Why [`Simulator::decide`] decided nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// [`Outcome::Pending`] leaves a payment as it is.
    #[error("pending is not a decision")]
    NotADecision,
    /// No payment has the reference id.
    #[error("no payment has this reference id")]
    UnknownPayment,
    /// The payment is already `SUCCESSFUL` or `FAILED`: MoMo's final states are final.
    #[error("the payment is already decided")]
    AlreadyDecided,
}

/// Which callbacks a payment's decision sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackMode {
    /// One callback, after the `202` (what MTN does).
    #[default]
    Once,
    /// No callback: only polling the status tells the outcome.
    None,
    /// The same callback twice (MTN says once; this tests the receiver's idempotency).
    Twice,
    /// One callback, delivered before the `202` is sent (the receiver sees the outcome of a
    /// payment whose initiation it has not yet seen answered).
    BeforeResponse,
}

/// What happens to a payment to or from one MSISDN. Every field has a default, so a JSON
/// script names only what it changes: `{"outcome":{"failed":"NOT_ENOUGH_FUNDS"}}`,
/// `{"callback":"twice","delay_ms":500}`, `{"status_error":503}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Script {
    /// The final status.
    pub outcome: Outcome,
    /// How long after the request the outcome is decided (and the callback sent).
    pub delay_ms: u64,
    /// Which callbacks are sent.
    pub callback: CallbackMode,
    /// How long the status endpoint takes to answer for this MSISDN's payments.
    pub status_delay_ms: u64,
    /// When set (a 5xx), the status endpoint fails with it for this MSISDN's payments. Read at
    /// each query, so clearing the script makes the endpoint recover.
    pub status_error: Option<u16>,
}

impl Script {
    /// A script whose payments end with `outcome`, otherwise as MTN behaves.
    pub fn new(outcome: Outcome) -> Self {
        Self { outcome, ..Self::default() }
    }

    /// Decides the outcome `delay` after the request.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay_ms = duration_ms(delay);
        self
    }

    /// Sends callbacks as `mode` says.
    #[must_use]
    pub fn callback(mut self, mode: CallbackMode) -> Self {
        self.callback = mode;
        self
    }

    /// Makes the status endpoint take `delay` for these payments.
    #[must_use]
    pub fn status_delay(mut self, delay: Duration) -> Self {
        self.status_delay_ms = duration_ms(delay);
        self
    }

    /// Makes the status endpoint fail with `status` (500, 503, …) for these payments.
    #[must_use]
    pub fn status_error(mut self, status: u16) -> Self {
        self.status_error = Some(status);
        self
    }

    /// MTN's sandbox behaviour for `msisdn`; see the module documentation.
    pub fn sandbox(msisdn: &str) -> Self {
        let reason = match msisdn {
            "46733123450" => FailureReason::InternalProcessingError,
            "46733123451" => FailureReason::ApprovalRejected,
            "46733123452" => FailureReason::Expired,
            "46733123453" | "46733123454" => return Self::new(Outcome::Pending),
            "46733123455" => FailureReason::NotEnoughFunds,
            "46733123456" => FailureReason::PayerLimitReached,
            "46733123457" => FailureReason::PayeeNotFound,
            "46733123458" => FailureReason::NotAllowedTargetEnvironment,
            "46733123459" => FailureReason::InvalidCallbackUrlHost,
            "46733123460" => FailureReason::InvalidCurrency,
            _ => return Self::new(Outcome::Successful),
        };
        Self::new(Outcome::failed(&reason))
    }

    /// A status error code that is a 5xx, which is all a script may ask for.
    fn status_error_code(&self) -> Option<StatusCode> {
        self.status_error
            .and_then(|code| StatusCode::from_u16(code).ok())
            .filter(StatusCode::is_server_error)
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------------
// What the simulator records
// ---------------------------------------------------------------------------------------------

/// Which endpoint a recorded request went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /{product}/token/`.
    Token(Product),
    /// `POST` request to pay or transfer.
    Payment(Product),
    /// `GET` of a status resource.
    Status(Product),
}

/// One request the simulator received, with the status it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedRequest {
    pub endpoint: Endpoint,
    /// `X-Reference-Id` (payments) or the path's reference id (status), as sent.
    pub reference_id: Option<String>,
    pub callback_url: Option<String>,
    /// The body as JSON, when it was JSON.
    pub body: Option<Value>,
    /// The HTTP status the simulator answered with.
    pub status: u16,
}

/// One callback the simulator tried to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentCallback {
    /// The payment's `X-Reference-Id`.
    pub reference_id: ReferenceId,
    pub url: String,
    pub method: Method,
    pub body: Value,
    /// The receiver's HTTP status, or why delivery failed (recorded, never retried).
    pub delivery: Result<u16, String>,
}

/// A payment the simulator accepted, as its status resource shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedPayment {
    pub product: Product,
    pub reference_id: ReferenceId,
    /// The status resource, as `GET` returns it.
    pub status: Value,
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// A payment request body as MoMo reads it: `payer` for a request to pay, `payee` for a
/// transfer. (The providers crate only serializes these, so they are read here.)
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentBody {
    amount: String,
    currency: String,
    external_id: String,
    #[serde(default)]
    payer: Option<PartyBody>,
    #[serde(default)]
    payee: Option<PartyBody>,
    #[serde(default)]
    payer_message: String,
    #[serde(default)]
    payee_note: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartyBody {
    party_id_type: PartyIdType,
    party_id: String,
}

#[derive(Clone, Debug)]
enum Decision {
    Pending,
    Successful { financial_transaction_id: String },
    Failed { reason: String },
}

#[derive(Clone, Debug)]
struct Payment {
    product: Product,
    reference_id: ReferenceId,
    body: PaymentBody,
    party: PartyBody,
    callback_url: Option<String>,
    callback: CallbackMode,
    decision: Decision,
}

impl Payment {
    /// The status resource. Callbacks for a request to pay carry `referenceId`; transfer
    /// callbacks do not (as reported of MTN), and status replies never do (it is in the URL).
    fn resource(&self, with_reference_id: bool) -> Value {
        let mut resource = json!({
            "amount": self.body.amount,
            "currency": self.body.currency,
            "externalId": self.body.external_id,
            "payerMessage": self.body.payer_message,
            "payeeNote": self.body.payee_note,
        });
        let party_field = match self.product {
            Product::Collection => "payer",
            Product::Disbursement => "payee",
        };
        resource[party_field] = json!(self.party);
        match &self.decision {
            Decision::Pending => resource["status"] = json!("PENDING"),
            Decision::Successful { financial_transaction_id } => {
                resource["financialTransactionId"] = json!(financial_transaction_id);
                resource["status"] = json!("SUCCESSFUL");
            }
            Decision::Failed { reason } => {
                resource["status"] = json!("FAILED");
                resource["reason"] = json!(reason);
            }
        }
        if with_reference_id {
            resource["referenceId"] = json!(self.reference_id.to_string());
        }
        resource
    }
}

#[derive(Debug, Default)]
struct Records {
    tokens: HashMap<String, Product>,
    scripts: HashMap<String, Script>,
    payments: HashMap<ReferenceId, Payment>,
    /// Acceptance order, for [`Simulator::payments`].
    order: Vec<ReferenceId>,
    requests: Vec<ReceivedRequest>,
    callbacks: Vec<SentCallback>,
    financial_transaction_id_next: u64,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    state: Mutex<Records>,
    /// Woken whenever a callback delivery is recorded.
    callback_recorded: Notify,
}

/// The MoMo simulator: configuration, scripts, payments and the record of requests and
/// callbacks. Cloning it is cheap and every clone shares the same state.
#[derive(Clone, Debug)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl Default for Simulator {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl Simulator {
    /// A simulator with no scripts and no payments.
    pub fn new(config: Config) -> Self {
        let state = Records {
            financial_transaction_id_next: FINANCIAL_TRANSACTION_ID_FIRST,
            ..Records::default()
        };
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(state),
                callback_recorded: Notify::new(),
            }),
        }
    }

    /// The simulator's routes (mounted under `/simulator/momo`).
    pub fn router(&self) -> axum::Router {
        // One handler per product, so each route knows its product without parsing the path.
        let token = |product: Product| {
            move |sim: State<Simulator>, headers: HeaderMap| async move { issue(product, sim, &headers) }
        };
        let pay = |product: Product| {
            move |sim: State<Simulator>, headers: HeaderMap, body: Bytes| {
                create(product, sim, headers, body)
            }
        };
        let status = |product: Product| {
            move |sim: State<Simulator>, headers: HeaderMap, path: Path<String>| {
                query(product, sim, headers, path)
            }
        };
        axum::Router::new()
            .route("/collection/token/", post(token(Product::Collection)))
            .route("/collection/token", post(token(Product::Collection)))
            .route("/disbursement/token/", post(token(Product::Disbursement)))
            .route("/disbursement/token", post(token(Product::Disbursement)))
            .route("/collection/v1_0/requesttopay", post(pay(Product::Collection)))
            .route("/disbursement/v1_0/transfer", post(pay(Product::Disbursement)))
            .route("/collection/v1_0/requesttopay/{reference_id}", get(status(Product::Collection)))
            .route("/disbursement/v1_0/transfer/{reference_id}", get(status(Product::Disbursement)))
            .route("/simulate/scripts/{msisdn}", put(put_script).delete(delete_script))
            .route("/simulate/scripts", delete(delete_scripts))
            .route("/simulate/payments/{reference_id}", put(decide_payment))
            .with_state(self.clone())
    }

    /// Scripts the payments to or from `msisdn` made from now on (the status-endpoint parts
    /// apply to existing payments too).
    pub fn script(&self, msisdn: &str, script: Script) {
        self.lock().scripts.insert(msisdn.to_owned(), script);
    }

    /// Removes every script, so MTN's sandbox behaviour applies again. Payments and the record
    /// of requests and callbacks are kept.
    pub fn clear(&self) {
        self.lock().scripts.clear();
    }

    /// Removes the script for `msisdn`.
    pub fn clear_script(&self, msisdn: &str) {
        self.lock().scripts.remove(msisdn);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.lock().requests.clone()
    }

    /// Every callback delivery attempted so far, in the order they finished.
    pub fn callbacks(&self) -> Vec<SentCallback> {
        self.lock().callbacks.clone()
    }

    /// Every payment accepted so far, in order, with its current status resource.
    pub fn payments(&self) -> Vec<AcceptedPayment> {
        let state = self.lock();
        state
            .order
            .iter()
            .filter_map(|id| state.payments.get(id))
            .map(|payment| AcceptedPayment {
                product: payment.product,
                reference_id: payment.reference_id,
                status: payment.resource(false),
            })
            .collect()
    }

    /// Waits until at least `count` callback deliveries are recorded, or `timeout` passes, and
    /// returns those recorded by then.
    pub async fn wait_for_callbacks(&self, count: usize, timeout: Duration) -> Vec<SentCallback> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.callback_recorded.notified();
            tokio::pin!(notified);
            // Registered before the check, so a delivery recorded in between still wakes us.
            notified.as_mut().enable();
            let callbacks = self.callbacks();
            if callbacks.len() >= count {
                return callbacks;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.callbacks();
            }
        }
    }

    /// Decides a payment that is still `PENDING` (a [`Outcome::Pending`] script, or one whose
    /// delay has not passed) and sends its callbacks as its script said, waiting for their
    /// delivery. Answers the payment as decided.
    ///
    /// # Errors
    ///
    /// [`DecideError::NotADecision`] for [`Outcome::Pending`], [`DecideError::UnknownPayment`]
    /// when no payment has `reference_id`, [`DecideError::AlreadyDecided`] when it is no longer
    /// pending: a payment is decided once.
    pub async fn decide(
        &self,
        reference_id: ReferenceId,
        outcome: Outcome,
    ) -> Result<AcceptedPayment, DecideError> {
        self.settle_and_call_back(reference_id, &outcome).await
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        // A panic while holding the lock leaves plain data behind, still fit to read.
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, request: ReceivedRequest) {
        self.lock().requests.push(request);
    }

    /// The script in force for `msisdn`: its own, or MTN's sandbox behaviour.
    fn script_for(&self, msisdn: &str) -> Script {
        self.lock().scripts.get(msisdn).cloned().unwrap_or_else(|| Script::sandbox(msisdn))
    }

    /// Records the outcome of a pending payment. Returns the payment as decided and the
    /// callbacks to send (the same callback once per delivery the script asks for); a payment
    /// is decided once.
    fn settle(
        &self,
        reference_id: ReferenceId,
        outcome: &Outcome,
    ) -> Result<(AcceptedPayment, Vec<Callback>), DecideError> {
        let mut state = self.lock();
        let decision = match outcome {
            Outcome::Pending => return Err(DecideError::NotADecision),
            Outcome::Successful => Decision::Successful {
                financial_transaction_id: state.financial_transaction_id_next.to_string(),
            },
            Outcome::Failed(reason) => Decision::Failed { reason: reason.clone() },
        };
        let payment = state.payments.get_mut(&reference_id).ok_or(DecideError::UnknownPayment)?;
        if !matches!(payment.decision, Decision::Pending) {
            return Err(DecideError::AlreadyDecided);
        }
        payment.decision = decision;
        let decided = AcceptedPayment {
            product: payment.product,
            reference_id,
            status: payment.resource(false),
        };
        let deliveries = match payment.callback {
            CallbackMode::None => 0,
            CallbackMode::Once | CallbackMode::BeforeResponse => 1,
            CallbackMode::Twice => 2,
        };
        let callbacks = match &payment.callback_url {
            Some(url) => {
                let body = payment.resource(payment.product == Product::Collection);
                let callback = Callback {
                    reference_id,
                    url: url.clone(),
                    method: self.inner.config.callback_method.as_method(),
                    body,
                };
                vec![callback; deliveries]
            }
            None => Vec::new(),
        };
        if matches!(outcome, Outcome::Successful) {
            state.financial_transaction_id_next += 1;
        }
        Ok((decided, callbacks))
    }

    async fn settle_and_call_back(
        &self,
        reference_id: ReferenceId,
        outcome: &Outcome,
    ) -> Result<AcceptedPayment, DecideError> {
        let (decided, callbacks) = self.settle(reference_id, outcome)?;
        for callback in callbacks {
            self.send(callback).await;
        }
        Ok(decided)
    }

    async fn send(&self, callback: Callback) {
        let delivery = match tokio::time::timeout(CALLBACK_TIMEOUT, deliver(&callback)).await {
            Ok(delivery) => delivery,
            Err(_) => Err(format!("no reply within {CALLBACK_TIMEOUT:?}")),
        };
        if let Err(error) = &delivery {
            // The URL's path carries the receiver's secret token: only its host is logged.
            let host = callback.url.split('/').take(3).collect::<Vec<_>>().join("/");
            tracing::warn!(%host, %error, "momo simulator: callback not delivered");
        }
        self.lock().callbacks.push(SentCallback {
            reference_id: callback.reference_id,
            url: callback.url,
            method: callback.method,
            body: callback.body,
            delivery,
        });
        self.inner.callback_recorded.notify_waiters();
    }
}

/// One callback to deliver.
#[derive(Clone, Debug)]
struct Callback {
    reference_id: ReferenceId,
    url: String,
    method: Method,
    body: Value,
}

/// Delivers one callback with a bare hyper connection (plain HTTP only: the simulator and its
/// receivers are local), answering the receiver's status.
async fn deliver(callback: &Callback) -> Result<u16, String> {
    let uri: hyper::Uri =
        callback.url.parse().map_err(|error| format!("invalid callback url: {error}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("invalid callback url: the simulator sends plain http only".to_owned());
    }
    let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
        return Err("the callback url has no host".to_owned());
    };
    // An IPv6 literal comes bracketed in a URL but not in a socket address.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((host, uri.port_u16().unwrap_or(80)))
        .await
        .map_err(|error| format!("connect: {error}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|error| format!("handshake: {error}"))?;
    tokio::spawn(connection);
    let body = serde_json::to_vec(&callback.body).map_err(|error| error.to_string())?;
    let request = hyper::Request::builder()
        .method(callback.method.clone())
        .uri(uri.path_and_query().map_or("/", |path| path.as_str()))
        .header(header::HOST, authority.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|error| format!("request: {error}"))?;
    let response = sender.send_request(request).await.map_err(|error| format!("send: {error}"))?;
    let status = response.status().as_u16();
    // Read the reply to the end so the receiver sees a complete exchange; its content is
    // not MoMo's concern.
    response.into_body().collect().await.map_err(|error| format!("reply: {error}"))?;
    Ok(status)
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

/// A MoMo error reply in the `{code, message}` shape.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"code": code, "message": message}))).into_response()
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok()).filter(|value| !value.is_empty())
}

/// The 401 MoMo's API gateway answers when the subscription key is missing.
fn check_subscription_key(headers: &HeaderMap) -> Result<(), Box<Response>> {
    if header_text(headers, "Ocp-Apim-Subscription-Key").is_some() {
        return Ok(());
    }
    Err(Box::new(
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({
                "statusCode": 401,
                "message": "Access denied due to missing subscription key. Make sure to include \
                            subscription key when making requests to an API.",
            })),
        )
            .into_response(),
    ))
}

/// Checks the subscription key and that the bearer token was issued for `product`.
fn check_bearer(
    sim: &Simulator,
    product: Product,
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    check_subscription_key(headers)?;
    let token = header_text(headers, header::AUTHORIZATION.as_str())
        .and_then(|value| value.strip_prefix("Bearer "));
    let valid = token.is_some_and(|token| sim.lock().tokens.get(token) == Some(&product));
    if valid {
        Ok(())
    } else {
        Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Access denied: missing or invalid access token.",
        )))
    }
}

fn issue(product: Product, State(sim): State<Simulator>, headers: &HeaderMap) -> Response {
    let response = issue_token(&sim, product, headers);
    sim.record(ReceivedRequest {
        endpoint: Endpoint::Token(product),
        reference_id: None,
        callback_url: None,
        body: None,
        status: response.status().as_u16(),
    });
    response
}

fn issue_token(sim: &Simulator, product: Product, headers: &HeaderMap) -> Response {
    if let Err(response) = check_subscription_key(headers) {
        return *response;
    }
    let credentials = header_text(headers, header::AUTHORIZATION.as_str())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| base64::engine::general_purpose::STANDARD.decode(encoded).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok());
    let valid = credentials
        .as_deref()
        .and_then(|text| text.split_once(':'))
        .is_some_and(|(user, key)| !user.is_empty() && !key.is_empty());
    if !valid {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Basic authentication with apiUser:apiKey is required.",
        );
    }
    let access_token = uuid::Uuid::new_v4().simple().to_string();
    sim.lock().tokens.insert(access_token.clone(), product);
    axum::Json(json!({
        "access_token": access_token,
        "token_type": "access_token",
        "expires_in": TOKEN_LIFETIME_SECONDS,
    }))
    .into_response()
}

async fn create(
    product: Product,
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = accept(&sim, product, &headers, &body).await;
    sim.record(ReceivedRequest {
        endpoint: Endpoint::Payment(product),
        reference_id: header_text(&headers, "X-Reference-Id").map(str::to_owned),
        callback_url: header_text(&headers, "X-Callback-Url").map(str::to_owned),
        body: serde_json::from_slice(&body).ok(),
        status: response.status().as_u16(),
    });
    response
}

/// A positive plain decimal in major units (`"100"`, `"1.50"`), as MoMo reads amounts.
fn is_amount(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    !whole.is_empty()
        && digits(whole)
        && digits(fraction)
        && (text.contains('.') != fraction.is_empty())
        && text.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

/// MoMo refuses a message or note over 160 characters or holding an apostrophe.
fn is_note(text: &str) -> bool {
    text.chars().count() <= NOTE_LENGTH_MAX && !text.contains('\'')
}

/// Reads a payment request into a (pending) payment, or the 4xx MoMo would answer.
fn parse_payment(
    sim: &Simulator,
    product: Product,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Payment, Box<Response>> {
    let reject = |status, code, message| Err(Box::new(error(status, code, message)));
    check_bearer(sim, product, headers)?;
    let Some(reference_id) =
        header_text(headers, "X-Reference-Id").and_then(|text| ReferenceId::parse(text).ok())
    else {
        return reject(
            StatusCode::BAD_REQUEST,
            "INVALID_REFERENCE_ID",
            "X-Reference-Id must be a UUID version 4.",
        );
    };
    if header_text(headers, "X-Target-Environment") != Some(&sim.inner.config.target_environment) {
        return reject(
            StatusCode::BAD_REQUEST,
            "NOT_ALLOWED_TARGET_ENVIRONMENT",
            "Access to target environment is forbidden.",
        );
    }
    let callback_url = header_text(headers, "X-Callback-Url").map(str::to_owned);
    if let Some(url) = &callback_url {
        let valid = url.parse::<hyper::Uri>().is_ok_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
        });
        if !valid {
            return reject(
                StatusCode::BAD_REQUEST,
                "INVALID_CALLBACK_URL_HOST",
                "Callback URL is invalid.",
            );
        }
    }
    let Ok(payment_body) = serde_json::from_slice::<PaymentBody>(body) else {
        return reject(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "The request body is malformed.",
        );
    };
    let party = match product {
        Product::Collection => payment_body.payer.clone(),
        Product::Disbursement => payment_body.payee.clone(),
    };
    let Some(party) = party.filter(|party| !party.party_id.is_empty()) else {
        return reject(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "The party is missing.");
    };
    if !is_amount(&payment_body.amount) {
        return reject(StatusCode::BAD_REQUEST, "INVALID_AMOUNT", "Amount is invalid.");
    }
    if payment_body.currency != sim.inner.config.currency {
        return reject(StatusCode::BAD_REQUEST, "INVALID_CURRENCY", "Currency not supported.");
    }
    if !is_note(&payment_body.payer_message) || !is_note(&payment_body.payee_note) {
        return reject(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "payerMessage and payeeNote take at most 160 characters and no apostrophe.",
        );
    }
    Ok(Payment {
        product,
        reference_id,
        body: payment_body,
        party,
        callback_url,
        callback: CallbackMode::Once,
        decision: Decision::Pending,
    })
}

/// Validates the request, records the payment and decides it as its script says.
async fn accept(sim: &Simulator, product: Product, headers: &HeaderMap, body: &[u8]) -> Response {
    let mut payment = match parse_payment(sim, product, headers, body) {
        Ok(payment) => payment,
        Err(response) => return *response,
    };
    let reference_id = payment.reference_id;
    let script = sim.script_for(&payment.party.party_id);
    payment.callback = script.callback;
    {
        let mut state = sim.lock();
        if state.payments.contains_key(&reference_id) {
            return error(
                StatusCode::CONFLICT,
                "RESOURCE_ALREADY_EXIST",
                "Duplicated reference id. Creation of resource failed.",
            );
        }
        state.payments.insert(reference_id, payment);
        state.order.push(reference_id);
    }
    let delay = Duration::from_millis(script.delay_ms);
    if script.callback == CallbackMode::BeforeResponse {
        // The one case where the 202 waits: the script asks for the callback to land first.
        // Spawned and awaited, so that the payment goes ahead even if the caller hangs up.
        let (sim, outcome) = (sim.clone(), script.outcome.clone());
        let _ = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // A pending outcome, or a payment already decided by hand, sends nothing.
            let _ = sim.settle_and_call_back(reference_id, &outcome).await;
        })
        .await;
    } else if delay.is_zero() {
        // Decided before the 202, so a status query right after it already sees the outcome;
        // only the delivery runs in the background.
        if let Ok((_, callbacks)) = sim.settle(reference_id, &script.outcome) {
            let sim = sim.clone();
            tokio::spawn(async move {
                for callback in callbacks {
                    sim.send(callback).await;
                }
            });
        }
    } else {
        let sim = sim.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // A pending outcome, or a payment already decided by hand, sends nothing.
            let _ = sim.settle_and_call_back(reference_id, &script.outcome).await;
        });
    }
    StatusCode::ACCEPTED.into_response()
}

async fn query(
    product: Product,
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(reference_id): Path<String>,
) -> Response {
    let response = report(&sim, product, &headers, &reference_id).await;
    sim.record(ReceivedRequest {
        endpoint: Endpoint::Status(product),
        reference_id: Some(reference_id),
        callback_url: None,
        body: None,
        status: response.status().as_u16(),
    });
    response
}

async fn report(
    sim: &Simulator,
    product: Product,
    headers: &HeaderMap,
    reference_id: &str,
) -> Response {
    if let Err(response) = check_bearer(sim, product, headers) {
        return *response;
    }
    let not_found =
        || error(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND", "Requested resource was not found.");
    let Ok(reference_id) = ReferenceId::parse(reference_id) else {
        return not_found();
    };
    let msisdn = match sim.lock().payments.get(&reference_id) {
        Some(payment) if payment.product == product => payment.party.party_id.clone(),
        _ => return not_found(),
    };
    let script = sim.script_for(&msisdn);
    if script.status_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(script.status_delay_ms)).await;
    }
    if let Some(code) = script.status_error_code() {
        return if code == StatusCode::SERVICE_UNAVAILABLE {
            error(code, "SERVICE_UNAVAILABLE", "Service unavailable.")
        } else {
            error(code, "INTERNAL_PROCESSING_ERROR", "An internal error occurred while processing.")
        };
    }
    // Read after the delay, so a slow reply shows the status as it is when it is sent.
    match sim.lock().payments.get(&reference_id) {
        Some(payment) => axum::Json(payment.resource(false)).into_response(),
        None => not_found(),
    }
}

async fn put_script(
    State(sim): State<Simulator>,
    Path(msisdn): Path<String>,
    body: Bytes,
) -> Response {
    match serde_json::from_slice::<Script>(&body) {
        Ok(script) if script.status_error.is_some() && script.status_error_code().is_none() => {
            error(StatusCode::BAD_REQUEST, "INVALID_SCRIPT", "status_error must be a 5xx status.")
        }
        Ok(script) => {
            sim.script(&msisdn, script);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(parse_error) => {
            error(StatusCode::BAD_REQUEST, "INVALID_SCRIPT", &parse_error.to_string())
        }
    }
}

async fn delete_script(State(sim): State<Simulator>, Path(msisdn): Path<String>) -> StatusCode {
    sim.clear_script(&msisdn);
    StatusCode::NO_CONTENT
}

async fn delete_scripts(State(sim): State<Simulator>) -> StatusCode {
    sim.clear();
    StatusCode::NO_CONTENT
}

/// `PUT /simulate/payments/{referenceId}`: the simulator decides a pending payment by hand.
async fn decide_payment(
    State(sim): State<Simulator>,
    Path(reference_id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(reference_id) = ReferenceId::parse(&reference_id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REFERENCE_ID",
            "The reference id must be a UUID version 4.",
        );
    };
    let outcome = match serde_json::from_slice::<Outcome>(&body) {
        Ok(outcome) => outcome,
        Err(parse_error) => {
            return error(StatusCode::BAD_REQUEST, "INVALID_OUTCOME", &parse_error.to_string());
        }
    };
    match sim.decide(reference_id, outcome).await {
        Ok(payment) => axum::Json(payment.status).into_response(),
        Err(refusal @ DecideError::NotADecision) => {
            error(StatusCode::BAD_REQUEST, "INVALID_OUTCOME", &refusal.to_string())
        }
        Err(DecideError::UnknownPayment) => {
            error(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND", "Requested resource was not found.")
        }
        Err(refusal @ DecideError::AlreadyDecided) => {
            error(StatusCode::CONFLICT, "ALREADY_DECIDED", &refusal.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_positive_plain_decimals() {
        for good in ["1", "100", "1.50", "0.01", "010"] {
            assert!(is_amount(good), "{good}");
        }
        for bad in ["", "0", "0.00", "-1", "1.", ".5", "1.5.0", "1e3", " 1", "1,000"] {
            assert!(!is_amount(bad), "{bad}");
        }
    }

    #[test]
    fn scripts_read_from_json_with_defaults() {
        let script: Script =
            serde_json::from_str(r#"{"outcome":{"failed":"NOT_ENOUGH_FUNDS"},"callback":"twice"}"#)
                .unwrap_or_default();
        assert_eq!(
            script,
            Script::new(Outcome::failed(&FailureReason::NotEnoughFunds))
                .callback(CallbackMode::Twice)
        );
        assert!(serde_json::from_str::<Script>(r#"{"outcom":"pending"}"#).is_err());
        assert_eq!(Script::sandbox("46733123453").outcome, Outcome::Pending);
        assert_eq!(Script::sandbox("256772123456").outcome, Outcome::Successful);
    }
}
