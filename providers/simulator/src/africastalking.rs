//! The Africa's Talking simulator: the provider's SMS, voice-call and airtime paths on local
//! HTTP with its form bodies and JSON answers, and the callbacks it sends (delivery reports,
//! inbound messages, USSD sessions, voice calls, airtime results), scriptable per customer
//! number.
//!
//! Routes (relative to the mount point; every one wants the configured `apiKey` header and
//! answers 401 without it):
//!
//! - `POST /version1/messaging`: a bulk or premium SMS send. Each recipient gets an
//!   `ATXid_…` message id and a cost of the configured price per segment (GSM 03.38 segments,
//!   [`hazina_providers::sms`]), status code 101; then delivery reports go to the configured
//!   URL as each number's [`SmsScript`] says, concurrently but at most
//!   [`Config::report_concurrency`] at once. [`Simulator::fail_next_sends`] and
//!   [`Simulator::hang_next_sends`] script an outage.
//! - `POST /call`: an outbound call; each valid number is `Queued` and the call is then driven
//!   against the voice URL like [`Simulator::call_in`], without digits.
//! - `POST /version1/airtime/send`: airtime, answered `Sent` (or refused) per number as its
//!   [`AirtimeScript`] says, then a status callback per sent number.
//!
//! The simulator drives the sessions a customer starts: [`Simulator::inject_inbound`] (an
//! inbound SMS), [`Simulator::dial`] (a USSD session, step by step, with the provider's time
//! limit) and [`Simulator::call_in`] (an inbound voice call, following the XML it is given).
//! Callbacks go out over plain HTTP with pooled connections, once each; a failed delivery is
//! recorded, not retried. Amounts stay exact decimals: no floats.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hazina_providers::africastalking::airtime::{
    AirtimeEntry, AirtimeResponse, AirtimeStatus, SendAirtime,
};
use hazina_providers::africastalking::voice::{
    Action, CallEntry, MakeCall, MakeCallResponse, Response as VoiceXml, VoiceCallback,
};
use hazina_providers::africastalking::{
    DeliveryReport, InboundSms, Price, Recipient, SendSms, SendSmsResponse, SmsMessageData,
    USSD_APP_RESPONSE_TIMEOUT, UssdReply, UssdSessionEnd, UssdStep,
};
use hazina_providers::sms;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::sync::{Notify, Semaphore};

/// How long a callback receiver may take to answer a delivery report, an inbound message or
/// an airtime result before the delivery counts as failed.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(30);

/// The most steps of a voice call the simulator follows (a guard against XML that redirects
/// forever).
const CALL_STEPS_MAX: usize = 50;

/// Seconds of call time each action of a voice answer is taken to last.
const SECONDS_PER_ACTION: u32 = 5;

/// The Safaricom network code the simulated subscribers are on.
const NETWORK_CODE: &str = "63902";

/// What the provider answers a request with a wrong or missing key.
const BAD_KEY: &str = "The supplied authentication is invalid";

// ---------------------------------------------------------------------------------------------
// Configuration and scripts
// ---------------------------------------------------------------------------------------------

/// The simulator's settings: the key it accepts, its prices, where its callbacks go and how
/// it sends them. Every URL is optional: nothing is sent where none is set.
#[derive(Clone, Debug)]
pub struct Config {
    /// The `apiKey` every request must carry.
    pub api_key: String,
    /// The `username` every form must carry; any is accepted when `None`.
    pub username: Option<String>,
    /// The price of one SMS segment (`KES 0.8000`).
    pub sms_price: Price,
    /// The price of a minute of voice call, charged per started minute.
    pub voice_price_per_minute: Price,
    /// The airtime discount, in per cent of the amount (the provider's sample: 4).
    pub airtime_discount_percent: u32,
    pub delivery_report_url: Option<String>,
    pub inbound_sms_url: Option<String>,
    pub ussd_url: Option<String>,
    pub ussd_end_url: Option<String>,
    pub voice_url: Option<String>,
    pub airtime_status_url: Option<String>,
    /// How long a USSD step may take to be answered before the session times out.
    pub ussd_timeout: Duration,
    /// Delivery reports in flight at once, at most.
    pub report_concurrency: usize,
}

impl Config {
    /// Settings for `api_key`: Kenyan prices, no callback URLs, the provider's USSD time
    /// limit, 64 reports in flight.
    ///
    /// # Panics
    ///
    /// Never: the default prices are valid KES amounts.
    pub fn new(api_key: &str) -> Self {
        // Both texts read: KES is an ISO 4217 currency the ledger knows, and the amounts are
        // plain decimals.
        #[allow(clippy::expect_used)]
        let price = |text: &str| Price::parse(text).expect("a valid KES price");
        Self {
            api_key: api_key.to_owned(),
            username: None,
            sms_price: price("KES 0.8000"),
            voice_price_per_minute: price("KES 3.0000"),
            airtime_discount_percent: 4,
            delivery_report_url: None,
            inbound_sms_url: None,
            ussd_url: None,
            ussd_end_url: None,
            voice_url: None,
            airtime_status_url: None,
            ussd_timeout: USSD_APP_RESPONSE_TIMEOUT,
            report_concurrency: 64,
        }
    }
}

/// What happens to the SMS sent to one number. Unscripted numbers get
/// [`SmsScript::Delivered`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SmsScript {
    /// Accepted, then one `Success` report.
    #[default]
    Delivered,
    /// Accepted, then one `Failed` report with this `failureReason`.
    Failed { reason: String },
    /// Accepted, then one `Rejected` report, with a `failureReason` when given.
    Rejected { reason: Option<String> },
    /// Accepted; no report ever comes.
    NoReport,
    /// Accepted, then the same `Success` report twice.
    ReportTwice,
    /// Accepted, then `Success` followed by a late `Sent`.
    OutOfOrder,
    /// Refused in the send's answer with this recipient status code (e.g. 406
    /// `UserInBlacklist`); no report.
    Refused { status_code: u16 },
}

/// What happens to the airtime sent to one number. Unscripted numbers get
/// [`AirtimeScript::Success`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AirtimeScript {
    /// `Sent`, then a `Success` callback.
    #[default]
    Success,
    /// `Sent`, then a `Failed` callback with this description.
    Failed { description: String },
    /// Refused in the answer (`Failed`, this `errorMessage`); no callback.
    Refused { error_message: String },
}

/// An outage of the SMS send endpoint, for the next requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outage {
    /// Answer 500.
    Fail,
    /// Answer nothing for this long.
    Hang(Duration),
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// An SMS send the simulator received (and answered 2xx).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsRequest {
    pub form: SendSms,
    /// One per recipient, in order; `None` for a refused one.
    pub message_ids: Vec<Option<String>>,
    /// Segments of the message.
    pub segments: usize,
}

impl SmsRequest {
    /// The recipients, as sent.
    pub fn recipients(&self) -> Vec<&str> {
        self.form.recipients()
    }
}

/// One POST the simulator made to a callback URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub url: String,
    /// The form (or JSON) body sent.
    pub body: String,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// The receiver's reply, when it answered.
    pub reply: Option<String>,
    /// Why no answer came, when none did.
    pub error: Option<String>,
}

impl Delivery {
    /// Whether the receiver answered 2xx.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|status| (200..300).contains(&status))
    }
}

/// How a USSD session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UssdEnding {
    /// The application ended it with `END`.
    Completed,
    /// The customer had no more input for a `CON` menu and left.
    CustomerLeft,
    /// A step was not answered within the time limit.
    TimedOut,
    /// A step was answered with an HTTP error or a body without `CON `/`END `, or could not
    /// be delivered.
    AppError,
}

/// A USSD session the simulator drove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UssdSession {
    pub session_id: String,
    pub phone_number: String,
    pub service_code: String,
    /// Every screen the application answered, in order (their text, without `CON`/`END`).
    pub screens: Vec<String>,
    pub ending: UssdEnding,
    /// The end-of-session notification, when one was sent.
    pub notification: Option<Delivery>,
}

/// How a voice call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallEnding {
    /// The actions ran out, or the caller had no more digits: the call hung up normally.
    Completed,
    /// The application answered `Reject`.
    Rejected,
    /// A step was answered with an HTTP error or unreadable XML, or could not be delivered.
    AppError,
}

/// A voice call the simulator drove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub session_id: String,
    /// `Inbound` (a customer called us) or `Outbound` (through `/call`).
    pub direction: String,
    pub caller_number: String,
    pub destination_number: String,
    /// Every XML answer the application gave, in order.
    pub answers: Vec<VoiceXml>,
    pub ending: CallEnding,
    pub duration_seconds: u32,
    /// The final (`isActive=0`) callback, when one was sent.
    pub final_callback: Option<Delivery>,
}

/// An airtime send the simulator received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AirtimeRequest {
    pub form: SendAirtime,
    pub idempotency_key: Option<String>,
    pub answer: AirtimeResponse,
}

#[derive(Debug, Default)]
struct Records {
    sms_scripts: HashMap<String, SmsScript>,
    airtime_scripts: HashMap<String, AirtimeScript>,
    outages: Vec<Outage>,
    sms_requests: Vec<SmsRequest>,
    reports: Vec<Delivery>,
    inbound: Vec<Delivery>,
    ussd_sessions: Vec<UssdSession>,
    calls: Vec<Call>,
    call_requests: Vec<MakeCall>,
    airtime_requests: Vec<AirtimeRequest>,
    airtime_callbacks: Vec<Delivery>,
    /// Airtime answers by idempotency key: a repeated key is answered the same, once sent.
    airtime_by_key: HashMap<String, AirtimeResponse>,
    /// Send requests refused or left hanging by an outage.
    outage_hits: usize,
}

#[derive(Debug)]
struct Inner {
    config: Mutex<Config>,
    state: Mutex<Records>,
    http: HyperClient<HttpConnector, Full<Bytes>>,
    reports_in_flight: Semaphore,
    /// Callbacks spawned and not yet delivered.
    pending: AtomicUsize,
    settled: Notify,
}

/// The Africa's Talking simulator. Cloning is cheap and shares the state.
#[derive(Clone, Debug)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl Simulator {
    /// A simulator with `config`; every number's SMS is delivered and its airtime arrives.
    pub fn new(config: Config) -> Self {
        let concurrency = config.report_concurrency.max(1);
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HyperClient::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self {
            inner: Arc::new(Inner {
                config: Mutex::new(config),
                state: Mutex::new(Records::default()),
                http,
                reports_in_flight: Semaphore::new(concurrency),
                pending: AtomicUsize::new(0),
                settled: Notify::new(),
            }),
        }
    }

    /// The provider's routes.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/version1/messaging", post(send_sms))
            .route("/call", post(make_call))
            .route("/version1/airtime/send", post(send_airtime))
            .with_state(self.clone())
    }

    /// Changes the settings (callback URLs, prices, time limit) for what comes next.
    pub fn configure(&self, change: impl FnOnce(&mut Config)) {
        change(&mut self.config_lock());
    }

    /// The settings in force.
    pub fn config(&self) -> Config {
        self.config_lock().clone()
    }

    /// Scripts the SMS sent to `number` (E.164), replacing its earlier script.
    pub fn script_sms(&self, number: &str, script: SmsScript) {
        self.lock().sms_scripts.insert(number.to_owned(), script);
    }

    /// Scripts the airtime sent to `number`, replacing its earlier script.
    pub fn script_airtime(&self, number: &str, script: AirtimeScript) {
        self.lock().airtime_scripts.insert(number.to_owned(), script);
    }

    /// The next `count` SMS sends are answered 500 (nothing is sent).
    pub fn fail_next_sends(&self, count: usize) {
        self.lock().outages.extend(std::iter::repeat_n(Outage::Fail, count));
    }

    /// The next `count` SMS sends get no answer for `duration` (then a 500; nothing is
    /// sent), past a client's deadline.
    pub fn hang_next_sends(&self, count: usize, duration: Duration) {
        self.lock().outages.extend(std::iter::repeat_n(Outage::Hang(duration), count));
    }

    /// Every SMS send answered 2xx, oldest first.
    pub fn sms_requests(&self) -> Vec<SmsRequest> {
        self.lock().sms_requests.clone()
    }

    /// How many SMS sends were answered 2xx, and how many messages (recipients) they held.
    pub fn sms_counts(&self) -> (usize, usize) {
        let state = self.lock();
        let messages = state.sms_requests.iter().map(|request| request.message_ids.len()).sum();
        (state.sms_requests.len(), messages)
    }

    /// Send requests an outage refused or held.
    pub fn outage_hits(&self) -> usize {
        self.lock().outage_hits
    }

    /// Every delivery report sent, in the order their deliveries completed.
    pub fn reports(&self) -> Vec<Delivery> {
        self.lock().reports.clone()
    }

    /// Every inbound SMS sent.
    pub fn inbound_deliveries(&self) -> Vec<Delivery> {
        self.lock().inbound.clone()
    }

    /// Every USSD session driven.
    pub fn ussd_sessions(&self) -> Vec<UssdSession> {
        self.lock().ussd_sessions.clone()
    }

    /// Every voice call driven (inbound and outbound).
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Every outbound call request received.
    pub fn call_requests(&self) -> Vec<MakeCall> {
        self.lock().call_requests.clone()
    }

    /// Every airtime send received.
    pub fn airtime_requests(&self) -> Vec<AirtimeRequest> {
        self.lock().airtime_requests.clone()
    }

    /// Every airtime status callback sent.
    pub fn airtime_callbacks(&self) -> Vec<Delivery> {
        self.lock().airtime_callbacks.clone()
    }

    /// Forgets scripts, outages and records; the settings stay.
    pub fn clear(&self) {
        *self.lock() = Records::default();
    }

    /// Waits until every callback spawned so far (delivery reports, airtime results, calls
    /// started by `/call`) has been delivered or has failed, or `timeout` passes. Answers
    /// whether they all settled.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.pending.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.inner.pending.load(Ordering::SeqCst) == 0;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        // A panic while holding the lock leaves plain records behind, still worth reading.
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn config_lock(&self) -> MutexGuard<'_, Config> {
        self.inner.config.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses a request without the configured key (the header name in any case).
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Unauthorized> {
        let key = headers.get("apikey").and_then(|value| value.to_str().ok());
        if key == Some(self.config_lock().api_key.as_str()) { Ok(()) } else { Err(Unauthorized) }
    }

    /// Refuses a form whose `username` is not the configured one.
    fn check_username(&self, username: &str) -> Result<(), Unauthorized> {
        match &self.config_lock().username {
            Some(expected) if expected != username => Err(Unauthorized),
            _ => Ok(()),
        }
    }

    /// Runs `task` in the background, counted until it ends (see [`Self::settle`]).
    fn spawn_counted(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.pending.fetch_add(1, Ordering::SeqCst);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            task.await;
            if inner.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
                inner.settled.notify_waiters();
            }
        });
    }

    /// POSTs `body` (a form, or JSON when `json`) to `url` within `timeout`.
    async fn post(&self, url: &str, body: String, json: bool, timeout: Duration) -> Delivery {
        let content_type =
            if json { "application/json" } else { "application/x-www-form-urlencoded" };
        let outcome =
            match tokio::time::timeout(timeout, self.exchange(url, &body, content_type)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
            };
        let (status, reply, error) = match outcome {
            Ok((status, reply)) => (Some(status), Some(reply), None),
            Err(error) => (None, None, Some(error)),
        };
        Delivery { url: url.to_owned(), body, status, reply, error }
    }

    async fn exchange(
        &self,
        url: &str,
        body: &str,
        content_type: &str,
    ) -> Result<(u16, String), String> {
        let uri: hyper::Uri = url.parse().map_err(|error| format!("invalid URL: {error}"))?;
        if uri.scheme_str() != Some("http") {
            return Err("the simulator sends to http:// URLs only".to_owned());
        }
        let request = hyper::Request::post(uri)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, "*/*")
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|error| error.to_string())?;
        let response = self.inner.http.request(request).await.map_err(|error| error.to_string())?;
        let status = response.status().as_u16();
        let reply = response.into_body().collect().await.map_err(|error| error.to_string())?;
        Ok((status, String::from_utf8_lossy(&reply.to_bytes()).into_owned()))
    }
}

/// The provider's answer to a wrong key or username.
#[derive(Clone, Copy, Debug)]
struct Unauthorized;

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        (StatusCode::UNAUTHORIZED, BAD_KEY).into_response()
    }
}

// ---------------------------------------------------------------------------------------------
// SMS
// ---------------------------------------------------------------------------------------------

/// The provider's check of a number: `+`, a country code and at least three more digits.
fn is_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|digits| digits.len() >= 4 && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// The word the provider gives a recipient status code.
fn recipient_status(code: u16) -> &'static str {
    match code {
        100 => "Processed",
        101 => "Success",
        102 => "Queued",
        other => hazina_providers::africastalking::Refusal::of(other).code().1,
    }
}

async fn send_sms(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = sim.authorize(&headers) {
        return refusal.into_response();
    }
    let outage = {
        let mut state = sim.lock();
        if state.outages.is_empty() {
            None
        } else {
            state.outage_hits += 1;
            Some(state.outages.remove(0))
        }
    };
    match outage {
        Some(Outage::Fail) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        Some(Outage::Hang(duration)) => {
            tokio::time::sleep(duration).await;
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        None => {}
    }
    let Ok(form) = SendSms::from_form(&body) else {
        return (StatusCode::BAD_REQUEST, "Invalid request").into_response();
    };
    if let Err(refusal) = sim.check_username(&form.username) {
        return refusal.into_response();
    }
    if form.message.is_empty() || form.recipients().is_empty() {
        return (StatusCode::BAD_REQUEST, "Must have to and message set").into_response();
    }
    let config = sim.config();
    let segments = sms::segments(&form.message).count;
    let price = config.sms_price.times(u64::try_from(segments).unwrap_or(u64::MAX));
    let mut recipients = Vec::new();
    let mut reports = Vec::new();
    let mut message_ids = Vec::new();
    let mut total = Price::zero(config.sms_price.currency);
    {
        let state = sim.lock();
        for number in form.recipients() {
            let script = state.sms_scripts.get(number).cloned().unwrap_or_default();
            let code = match (&script, is_e164(number)) {
                (_, false) => 403,
                (SmsScript::Refused { status_code }, true) => *status_code,
                _ => 101,
            };
            let accepted = matches!(code, 100..=102);
            let message_id = accepted.then(|| format!("ATXid_{}", uuid::Uuid::new_v4().simple()));
            let cost = match (accepted, price) {
                (true, Some(price)) => {
                    total = total.plus(price).unwrap_or(total);
                    price.to_wire()
                }
                _ => "0".to_owned(),
            };
            recipients.push(Recipient {
                status_code: code,
                number: number.to_owned(),
                status: recipient_status(code).to_owned(),
                cost,
                message_id: message_id.clone().unwrap_or_else(|| "None".to_owned()),
            });
            if let Some(id) = &message_id {
                reports.push((id.clone(), number.to_owned(), script));
            }
            message_ids.push(message_id);
        }
    }
    let sent = reports.len();
    let answer = SendSmsResponse {
        data: SmsMessageData {
            message: format!("Sent to {sent}/{} Total Cost: {}", recipients.len(), total.to_wire()),
            recipients,
        },
    };
    sim.lock().sms_requests.push(SmsRequest { form, message_ids, segments });
    if let Some(url) = config.delivery_report_url {
        for (id, number, script) in reports {
            let sim_for_task = sim.clone();
            let url = url.clone();
            sim.spawn_counted(async move { sim_for_task.report(url, id, number, script).await });
        }
    }
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

impl Simulator {
    /// Sends the delivery reports one message's script calls for, holding one of the
    /// bounded report slots for each.
    async fn report(self, url: String, id: String, number: String, script: SmsScript) {
        let report = |status: &str, reason: Option<&str>| DeliveryReport {
            id: id.clone(),
            status: status.to_owned(),
            phone_number: number.clone(),
            network_code: Some(NETWORK_CODE.to_owned()),
            failure_reason: reason.map(str::to_owned),
            retry_count: Some("0".to_owned()),
        };
        let reports = match &script {
            SmsScript::Delivered => vec![report("Success", None)],
            SmsScript::Failed { reason } => vec![report("Failed", Some(reason))],
            SmsScript::Rejected { reason } => vec![report("Rejected", reason.as_deref())],
            SmsScript::ReportTwice => vec![report("Success", None), report("Success", None)],
            SmsScript::OutOfOrder => vec![report("Success", None), report("Sent", None)],
            SmsScript::NoReport | SmsScript::Refused { .. } => Vec::new(),
        };
        for report in reports {
            let Ok(form) = report.form() else { continue };
            let Ok(_slot) = self.inner.reports_in_flight.acquire().await else { return };
            let delivery = self.post(&url, form, false, CALLBACK_TIMEOUT).await;
            self.lock().reports.push(delivery);
        }
    }

    /// A customer sends `text` from `from` to our short code `to` (with a premium `link_id`):
    /// the inbound form goes to the inbound-SMS URL. Answers the delivery, or `None` when no
    /// URL is set.
    pub async fn inject_inbound(
        &self,
        from: &str,
        to: &str,
        text: &str,
        link_id: Option<&str>,
    ) -> Option<Delivery> {
        let url = self.config().inbound_sms_url?;
        let message = InboundSms {
            from: from.to_owned(),
            to: to.to_owned(),
            text: text.to_owned(),
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            id: uuid::Uuid::new_v4().to_string(),
            link_id: link_id.map(str::to_owned),
            network_code: Some(NETWORK_CODE.to_owned()),
        };
        let form = message.form().ok()?;
        let delivery = self.post(&url, form, false, CALLBACK_TIMEOUT).await;
        self.lock().inbound.push(delivery.clone());
        Some(delivery)
    }
}

// ---------------------------------------------------------------------------------------------
// USSD
// ---------------------------------------------------------------------------------------------

impl Simulator {
    /// Posts a USSD end-of-session notification to `url`, when there is one.
    async fn notify(&self, url: Option<&str>, end: &UssdSessionEnd) -> Option<Delivery> {
        let form = end.form().ok()?;
        Some(self.post(url?, form, false, CALLBACK_TIMEOUT).await)
    }

    /// A customer on `phone` dials `service_code` and answers the menus with `inputs`, one
    /// per `CON` screen, against the USSD URL: each step within the time limit, `text` every
    /// input so far joined with `*`. The session ends with the application's `END`, when the
    /// customer has no more input, at a step past the time limit, or at an unreadable answer;
    /// the end-of-session notification then goes to its URL. Answers the session (recorded
    /// too); with no USSD URL set, a session that ended in an application error at once.
    pub async fn dial(&self, phone: &str, service_code: &str, inputs: &[&str]) -> UssdSession {
        let config = self.config();
        let session_id = format!("ATUid_{}", uuid::Uuid::new_v4().simple());
        let started = tokio::time::Instant::now();
        let mut screens = Vec::new();
        let mut last_reply = String::new();
        let mut error_message = None;
        let mut answered = 0;
        let ending = loop {
            let Some(url) = &config.ussd_url else {
                error_message = Some("no USSD URL".to_owned());
                break UssdEnding::AppError;
            };
            let step = UssdStep {
                session_id: session_id.clone(),
                service_code: service_code.to_owned(),
                phone_number: phone.to_owned(),
                network_code: Some(NETWORK_CODE.to_owned()),
                text: inputs[..answered].join("*"),
            };
            let Ok(form) = step.form() else { break UssdEnding::AppError };
            let delivery = self.post(url, form, false, config.ussd_timeout).await;
            if delivery.status.is_none()
                && delivery.error.as_deref().is_some_and(|e| e.starts_with("no answer"))
            {
                error_message = delivery.error;
                break UssdEnding::TimedOut;
            }
            let parsed = delivery.reply.as_deref().and_then(UssdReply::parse);
            let (true, Some(reply)) = (delivery.succeeded(), parsed) else {
                error_message = Some(delivery.error.unwrap_or_else(|| {
                    format!("an unreadable answer with HTTP {}", delivery.status.unwrap_or(0))
                }));
                break UssdEnding::AppError;
            };
            last_reply = reply.body();
            screens.push(reply.text().to_owned());
            match reply {
                UssdReply::End(_) => break UssdEnding::Completed,
                UssdReply::Continue(_) if answered < inputs.len() => answered += 1,
                UssdReply::Continue(_) => break UssdEnding::CustomerLeft,
            }
        };
        let end = UssdSessionEnd {
            session_id: session_id.clone(),
            service_code: service_code.to_owned(),
            phone_number: phone.to_owned(),
            status: if ending == UssdEnding::Completed { "Success" } else { "Failed" }.to_owned(),
            network_code: Some(NETWORK_CODE.to_owned()),
            date: Some(chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()),
            cost: Some("KES 0.0000".to_owned()),
            duration_in_millis: Some(started.elapsed().as_millis().to_string()),
            hops_count: Some(screens.len().to_string()),
            input: Some(inputs[..answered].join("*")),
            last_app_response: Some(last_reply),
            error_message,
        };
        let notification = self.notify(config.ussd_end_url.as_deref(), &end).await;
        let session = UssdSession {
            session_id,
            phone_number: phone.to_owned(),
            service_code: service_code.to_owned(),
            screens,
            ending,
            notification,
        };
        self.lock().ussd_sessions.push(session.clone());
        session
    }
}

// ---------------------------------------------------------------------------------------------
// Voice
// ---------------------------------------------------------------------------------------------

impl Simulator {
    /// A customer on `phone` calls our `voice_number`, pressing `digits` (one entry per
    /// `GetDigits`, in order) and speaking into each prompted `Record`. The simulator posts
    /// the first callback (`isActive=1`) to the voice URL, follows the XML it gets (a
    /// `GetDigits` or prompted `Record` posts its result to its `callbackUrl`, or the voice
    /// URL; a `Redirect` posts to its URL; new XML replaces what was left), and ends at
    /// `Reject`, when the actions run out or the caller has no more digits, with the final
    /// callback (`isActive=0`, duration and cost). Answers the call (recorded too).
    pub async fn call_in(&self, phone: &str, voice_number: &str, digits: &[&str]) -> Call {
        self.drive_call("Inbound", phone, voice_number, digits).await
    }

    // The call's state machine reads best in one place.
    #[allow(clippy::too_many_lines)]
    async fn drive_call(
        &self,
        direction: &str,
        caller: &str,
        destination: &str,
        digits: &[&str],
    ) -> Call {
        let config = self.config();
        let session_id = format!("ATVId_{}", uuid::Uuid::new_v4().simple());
        let base = VoiceCallback {
            is_active: "1".to_owned(),
            session_id: session_id.clone(),
            direction: Some(direction.to_owned()),
            caller_number: Some(caller.to_owned()),
            destination_number: Some(destination.to_owned()),
            ..VoiceCallback::default()
        };
        let mut answers = Vec::new();
        let mut seconds = 0_u32;
        let mut digits = digits.iter();
        let mut ending = CallEnding::Completed;
        let mut hangup_cause = "NORMAL_CLEARING";
        let mut next = config.voice_url.clone().map(|url| {
            (url, VoiceCallback { call_session_state: Some("Ringing".to_owned()), ..base.clone() })
        });
        if next.is_none() {
            ending = CallEnding::AppError;
        }
        let mut steps = 0;
        'call: while let Some((url, callback)) = next.take() {
            steps += 1;
            if steps > CALL_STEPS_MAX {
                break;
            }
            let Ok(form) = callback.form() else { break };
            let delivery = self.post(&url, form, false, CALLBACK_TIMEOUT).await;
            let parsed = delivery.reply.as_deref().map(VoiceXml::parse);
            let (true, Some(Ok(xml))) = (delivery.succeeded(), parsed) else {
                ending = CallEnding::AppError;
                hangup_cause = "APPLICATION_ERROR";
                break;
            };
            answers.push(xml.clone());
            for action in xml.actions {
                seconds = seconds.saturating_add(SECONDS_PER_ACTION);
                let result_url = |callback_url: &Option<String>| {
                    callback_url.clone().or_else(|| config.voice_url.clone()).unwrap_or_default()
                };
                match action {
                    Action::Reject => {
                        ending = CallEnding::Rejected;
                        hangup_cause = "CALL_REJECTED";
                        seconds = 0;
                        break 'call;
                    }
                    Action::GetDigits(get) => {
                        let Some(pressed) = digits.next() else { break 'call };
                        let callback = VoiceCallback {
                            dtmf_digits: Some((*pressed).to_owned()),
                            call_session_state: Some("Active".to_owned()),
                            ..base.clone()
                        };
                        next = Some((result_url(&get.callback_url), callback));
                        continue 'call;
                    }
                    Action::Record(record) if !record.is_session() => {
                        let callback = VoiceCallback {
                            recording_url: Some(format!(
                                "http://simulator.invalid/recordings/{session_id}.mp3"
                            )),
                            call_session_state: Some("Active".to_owned()),
                            ..base.clone()
                        };
                        next = Some((result_url(&record.callback_url), callback));
                        continue 'call;
                    }
                    Action::Redirect(url) => {
                        let callback = VoiceCallback {
                            call_session_state: Some("Transferred".to_owned()),
                            ..base.clone()
                        };
                        next = Some((url.trim().to_owned(), callback));
                        continue 'call;
                    }
                    Action::Say(_)
                    | Action::Play(_)
                    | Action::Dial(_)
                    | Action::Record(_)
                    | Action::Enqueue(_)
                    | Action::Dequeue(_)
                    | Action::Conference => {}
                }
            }
        }
        let amount = if seconds == 0 {
            Price::zero(config.voice_price_per_minute.currency)
        } else {
            let minutes = u64::from(seconds.div_ceil(60));
            config.voice_price_per_minute.times(minutes).unwrap_or(config.voice_price_per_minute)
        };
        let final_callback = match config.voice_url.clone() {
            Some(url) if ending != CallEnding::AppError || !answers.is_empty() => {
                let last = VoiceCallback {
                    is_active: "0".to_owned(),
                    duration_in_seconds: Some(seconds.to_string()),
                    currency_code: Some(amount.currency.code().to_owned()),
                    amount: Some(amount.amount.to_string()),
                    hangup_cause: Some(hangup_cause.to_owned()),
                    call_session_state: Some("Completed".to_owned()),
                    recording_url: Some(String::new()),
                    ..base.clone()
                };
                match last.form() {
                    Ok(form) => Some(self.post(&url, form, false, CALLBACK_TIMEOUT).await),
                    Err(_) => None,
                }
            }
            _ => None,
        };
        let call = Call {
            session_id,
            direction: direction.to_owned(),
            caller_number: caller.to_owned(),
            destination_number: destination.to_owned(),
            answers,
            ending,
            duration_seconds: seconds,
            final_callback,
        };
        self.lock().calls.push(call.clone());
        call
    }
}

async fn make_call(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = sim.authorize(&headers) {
        return refusal.into_response();
    }
    let Ok(request) = MakeCall::from_form(&body) else {
        return (StatusCode::BAD_REQUEST, "Invalid request").into_response();
    };
    if let Err(refusal) = sim.check_username(&request.username) {
        return refusal.into_response();
    }
    let mut entries = Vec::new();
    for number in request.to.split(',').map(str::trim).filter(|number| !number.is_empty()) {
        if is_e164(number) {
            entries.push(CallEntry {
                phone_number: number.to_owned(),
                status: "Queued".to_owned(),
                session_id: Some(format!("ATVId_{}", uuid::Uuid::new_v4().simple())),
                error_message: None,
            });
            let task_sim = sim.clone();
            let from = request.from.clone();
            let to = number.to_owned();
            sim.spawn_counted(async move {
                task_sim.drive_call("Outbound", &from, &to, &[]).await;
            });
        } else {
            entries.push(CallEntry {
                phone_number: number.to_owned(),
                status: "InvalidPhoneNumber".to_owned(),
                session_id: None,
                error_message: Some("Invalid phone number".to_owned()),
            });
        }
    }
    sim.lock().call_requests.push(request);
    let answer = MakeCallResponse { entries, error_message: Some("None".to_owned()) };
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

// ---------------------------------------------------------------------------------------------
// Airtime
// ---------------------------------------------------------------------------------------------

// One straight pass over the recipients reads best as one function.
#[allow(clippy::too_many_lines)]
async fn send_airtime(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = sim.authorize(&headers) {
        return refusal.into_response();
    }
    let idempotency_key =
        headers.get("idempotency-key").and_then(|value| value.to_str().ok()).map(str::to_owned);
    let Ok(form) = SendAirtime::from_form(&body) else {
        return (StatusCode::BAD_REQUEST, "Invalid request").into_response();
    };
    if let Err(refusal) = sim.check_username(&form.username) {
        return refusal.into_response();
    }
    let Ok(recipients) = form.recipients() else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"errorMessage": "Invalid recipients"}).to_string(),
        )
            .into_response();
    };
    if let Some(key) = &idempotency_key
        && let Some(answer) = sim.lock().airtime_by_key.get(key).cloned()
    {
        return (StatusCode::CREATED, axum::Json(answer)).into_response();
    }
    let config = sim.config();
    let mut responses = Vec::new();
    let mut callbacks = Vec::new();
    let mut totals: Option<(Price, Price)> = None;
    {
        let state = sim.lock();
        for recipient in &recipients {
            let script =
                state.airtime_scripts.get(&recipient.phone_number).cloned().unwrap_or_default();
            let amount = Price::parse(&recipient.amount);
            let refusal = match (&script, amount, is_e164(&recipient.phone_number)) {
                (_, _, false) => Some("Invalid phone number".to_owned()),
                (_, None, _) => Some("Invalid amount".to_owned()),
                (AirtimeScript::Refused { error_message }, _, _) => Some(error_message.clone()),
                _ => None,
            };
            let (Some(amount), None) = (amount, &refusal) else {
                responses.push(AirtimeEntry {
                    phone_number: recipient.phone_number.clone(),
                    error_message: refusal,
                    amount: Some(recipient.amount.clone()),
                    status: "Failed".to_owned(),
                    request_id: Some("None".to_owned()),
                    discount: Some("0".to_owned()),
                });
                continue;
            };
            let discount = amount.percent(config.airtime_discount_percent).unwrap_or(amount);
            totals = Some(match totals {
                None => (amount, discount),
                Some((total, total_discount)) => (
                    total.plus(amount).unwrap_or(total),
                    total_discount.plus(discount).unwrap_or(total_discount),
                ),
            });
            let request_id = format!("ATQid_{}", uuid::Uuid::new_v4().simple());
            responses.push(AirtimeEntry {
                phone_number: recipient.phone_number.clone(),
                error_message: Some("None".to_owned()),
                amount: Some(amount.to_wire()),
                status: "Sent".to_owned(),
                request_id: Some(request_id.clone()),
                discount: Some(discount.to_wire()),
            });
            callbacks.push(AirtimeStatus {
                request_id,
                status: if matches!(script, AirtimeScript::Success) { "Success" } else { "Failed" }
                    .to_owned(),
                phone_number: Some(recipient.phone_number.clone()),
                description: Some(match script {
                    AirtimeScript::Failed { description } => description,
                    _ => "Airtime Delivered Successfully".to_owned(),
                }),
                discount: Some(discount.to_wire()),
                value: Some(amount.to_wire()),
            });
        }
    }
    let sent = u32::try_from(callbacks.len()).unwrap_or(u32::MAX);
    let answer = AirtimeResponse {
        error_message: Some(if sent == 0 { "Failed" } else { "None" }.to_owned()),
        num_sent: Some(sent),
        total_amount: Some(totals.map_or_else(|| "0".to_owned(), |(total, _)| total.to_wire())),
        total_discount: Some(
            totals.map_or_else(|| "0".to_owned(), |(_, discount)| discount.to_wire()),
        ),
        responses,
    };
    {
        let mut state = sim.lock();
        if let Some(key) = &idempotency_key {
            state.airtime_by_key.insert(key.clone(), answer.clone());
        }
        state.airtime_requests.push(AirtimeRequest {
            form,
            idempotency_key,
            answer: answer.clone(),
        });
    }
    if let Some(url) = config.airtime_status_url {
        for status in callbacks {
            let task_sim = sim.clone();
            let url = url.clone();
            sim.spawn_counted(async move {
                let Ok(form) = status.form() else { return };
                let delivery = task_sim.post(&url, form, false, CALLBACK_TIMEOUT).await;
                task_sim.lock().airtime_callbacks.push(delivery);
            });
        }
    }
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn numbers_are_checked_as_the_provider_does() {
        assert!(is_e164("+254711000001"));
        assert!(!is_e164("0711000001"));
        assert!(!is_e164("+25"));
        assert_eq!(recipient_status(101), "Success");
        assert_eq!(recipient_status(406), "UserInBlacklist");
    }

    #[test]
    fn the_default_prices_are_kenyan() {
        let config = Config::new("key");
        assert_eq!(config.sms_price.to_wire(), "KES 0.8000");
        assert_eq!(config.ussd_timeout, USSD_APP_RESPONSE_TIMEOUT);
    }
}
