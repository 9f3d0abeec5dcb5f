//! The M-Pesa client against the M-Pesa simulator over real loopback HTTP: token caching, the
//! lifecycle calls, and how refusals, duplicates and failures are classified.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use chrono::Utc;
use hazina_providers::http::HttpClient;
use hazina_providers::money::{Currency, Money};
use hazina_providers::mpesa::{
    self, B2cCommand, B2cPayout, B2cRequest, C2bDefaultAction, C2bRegisterUrlRequest, StkPush,
    StkPushRequest, StkQueryRequest, StkTransactionType, TransactionStatusRequest,
};
use hazina_providers::mpesa_client::{Client, ClientError, Config};
use hazina_providers::wire::Text;
use hazina_providers::{Secret, Status};
use hazina_simulator::mpesa::{CallbackMode, Script, Simulator};

use crate::common::serve;

const CONSUMER_SECRET: &str = "consumer-secret-do-not-print";
const PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";
/// Callbacks go nowhere: a closed port refuses them at once, and the tests read outcomes by
/// query instead.
const NOWHERE: &str = "http://127.0.0.1:1";

/// What the test server in front of the simulator saw, and the faults it injects.
#[derive(Default)]
struct Probe {
    token_requests: AtomicUsize,
    /// Answer the next bearer request with Daraja's invalid-token refusal.
    expire_next: AtomicBool,
    /// Hold every POST far longer than the client waits.
    stall: AtomicBool,
}

struct Env {
    sim: Simulator,
    probe: Arc<Probe>,
    base: String,
}

async fn observe(probe: Arc<Probe>, request: Request, next: Next) -> Response {
    if request.uri().path().ends_with("/oauth/v1/generate") {
        probe.token_requests.fetch_add(1, Ordering::SeqCst);
    } else if request.method() == axum::http::Method::POST {
        if probe.stall.load(Ordering::SeqCst) {
            // A provider that never answers: the client's own deadline must end the wait.
            std::future::pending::<()>().await;
        }
        if probe.expire_next.swap(false, Ordering::SeqCst) {
            let body = serde_json::json!({
                "requestId": "x",
                "errorCode": "404.001.03",
                "errorMessage": "Invalid Access Token",
            });
            return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        }
    }
    next.run(request).await
}

async fn start() -> Env {
    let sim = Simulator::new();
    let probe = Arc::new(Probe::default());
    let layer_probe = probe.clone();
    let router = axum::Router::new().nest("/simulator/mpesa", sim.router()).layer(
        axum::middleware::from_fn(move |request: Request, next: Next| {
            observe(layer_probe.clone(), request, next)
        }),
    );
    let base = format!("{}/simulator/mpesa", serve(router).await);
    Env { sim, probe, base }
}

fn config(base_url: &str) -> Config {
    Config {
        base_url: base_url.to_owned(),
        consumer_key: Secret::new("consumer-key"),
        consumer_secret: Secret::new(CONSUMER_SECRET),
    }
}

fn client(base_url: &str) -> Client {
    Client::new(config(base_url), HttpClient::default())
}

fn kes(amount: &str) -> Money {
    Money::parse(Currency::from_code("KES").unwrap(), amount).unwrap()
}

fn stk_request(phone: &str, amount: &Money) -> StkPushRequest {
    let passkey = Secret::new(PASSKEY);
    let callback = format!("{NOWHERE}/stk");
    StkPushRequest::new(&StkPush {
        shortcode: "174379",
        passkey: &passkey,
        at: Utc::now(),
        transaction_type: StkTransactionType::CustomerPayBillOnline,
        amount,
        phone_number: phone,
        party_b: "174379",
        callback_url: &callback,
        account_reference: "INV-1",
        transaction_desc: "Payment",
    })
    .unwrap()
}

fn b2c_request(originator: &str, amount: &Money) -> B2cRequest {
    let credential = Secret::new("cred");
    let result_url = format!("{NOWHERE}/b2c-result");
    let timeout_url = format!("{NOWHERE}/b2c-timeout");
    B2cRequest::new(&B2cPayout {
        originator_conversation_id: originator,
        initiator_name: "testapi",
        security_credential: &credential,
        command: B2cCommand::BusinessPayment,
        amount,
        party_a: "600992",
        party_b: "254705912645",
        remarks: "payout",
        queue_timeout_url: &timeout_url,
        result_url: &result_url,
        occasion: None,
    })
    .unwrap()
}

#[tokio::test]
async fn one_token_serves_several_calls_and_an_invalid_token_is_renewed_once() {
    let env = start().await;
    let client = client(&env.base);
    let amount = kes("10");
    for _ in 0..3 {
        let response = client.stk_push(&stk_request("254708374149", &amount)).await.unwrap();
        assert!(response.is_accepted());
    }
    assert_eq!(env.probe.token_requests.load(Ordering::SeqCst), 1);

    // Daraja says the token is invalid: the cache is cleared and the call retried once.
    env.probe.expire_next.store(true, Ordering::SeqCst);
    let response = client.stk_push(&stk_request("254708374149", &amount)).await.unwrap();
    assert!(response.is_accepted());
    assert_eq!(env.probe.token_requests.load(Ordering::SeqCst), 2);
    assert_eq!(env.sim.transactions().len(), 4, "the refused attempt was not recorded");
}

#[tokio::test]
async fn stk_push_is_accepted_and_its_query_tells_the_outcome() {
    let env = start().await;
    // Decided before the push returns, so the query that follows finds the result.
    env.sim.script("254708374149", Script::success().with_callback(CallbackMode::BeforeResponse));
    env.sim.script(
        "254708374150",
        Script::failure("1032").with_callback(CallbackMode::BeforeResponse),
    );
    let client = client(&env.base);
    let amount = kes("10");
    let passkey = Secret::new(PASSKEY);
    for (phone, expected) in [("254708374149", Status::Succeeded), ("254708374150", Status::Failed)]
    {
        let push = client.stk_push(&stk_request(phone, &amount)).await.unwrap();
        assert!(push.is_accepted());
        let query = StkQueryRequest::new("174379", &passkey, Utc::now(), &push.checkout_request_id)
            .unwrap();
        let answer = client.stk_query(&query).await.unwrap();
        assert_eq!(answer.checkout_request_id, push.checkout_request_id);
        assert_eq!(answer.to_report().status, expected, "{phone}");
    }
}

#[tokio::test]
async fn a_query_about_an_open_prompt_is_unknown() {
    let env = start().await;
    env.sim.script("254708374149", Script::success().with_callback_delay(Duration::from_secs(30)));
    let client = client(&env.base);
    let push = client.stk_push(&stk_request("254708374149", &kes("5"))).await.unwrap();
    let query = StkQueryRequest::new(
        "174379",
        &Secret::new(PASSKEY),
        Utc::now(),
        &push.checkout_request_id,
    )
    .unwrap();
    let error = client.stk_query(&query).await.unwrap_err();
    assert!(matches!(error, ClientError::Unknown(_)), "{error:?}");
}

#[tokio::test]
async fn b2c_is_accepted_once_and_a_resend_is_a_duplicate() {
    let env = start().await;
    let client = client(&env.base);
    let amount = kes("100");
    let first = client.b2c(&b2c_request("ours-1", &amount)).await.unwrap();
    assert!(first.is_accepted());
    assert_eq!(first.originator_conversation_id, "ours-1");
    let again = client.b2c(&b2c_request("ours-1", &amount)).await.unwrap_err();
    assert!(matches!(again, ClientError::Duplicate), "{again:?}");

    // The payout's outcome is asked for by its id.
    let status = TransactionStatusRequest {
        initiator: "testapi".to_owned(),
        security_credential: Secret::new("cred"),
        command_id: "TransactionStatusQuery".to_owned(),
        transaction_id: None,
        original_conversation_id: Some("ours-1".to_owned()),
        party_a: Text::from("600992"),
        identifier_type: Text::from("4"),
        result_url: format!("{NOWHERE}/status-result"),
        queue_timeout_url: format!("{NOWHERE}/status-timeout"),
        remarks: "status".to_owned(),
        occasion: String::new(),
    };
    assert!(client.transaction_status(&status).await.unwrap().is_accepted());
}

#[tokio::test]
async fn urls_are_registered() {
    let env = start().await;
    let client = client(&env.base);
    let request = C2bRegisterUrlRequest::new(
        "600992",
        C2bDefaultAction::Completed,
        &format!("{NOWHERE}/confirm"),
        &format!("{NOWHERE}/validate"),
    );
    let response = client.register_urls(&request).await.unwrap();
    assert_eq!(response.response_code.as_str(), "0");
}

#[tokio::test]
async fn a_bad_amount_is_refused() {
    let env = start().await;
    let client = client(&env.base);
    // The builder refuses a zero amount, so the wire body is edited after building.
    let mut request = stk_request("254708374149", &kes("1"));
    request.amount = Text::from("0");
    let error = client.stk_push(&request).await.unwrap_err();
    let ClientError::Refused { status, error } = error else { panic!("not refused: {error:?}") };
    assert_eq!(status, 400);
    assert_eq!(error.error_code, "400.002.02");
    assert!(env.sim.transactions().is_empty());
}

#[tokio::test]
async fn no_answer_in_time_is_unknown() {
    let env = start().await;
    let client = Client::new(config(&env.base), HttpClient { timeout: Duration::from_millis(500) });
    client.token().await.unwrap();
    env.probe.stall.store(true, Ordering::SeqCst);
    let error = client.b2c(&b2c_request("ours-2", &kes("10"))).await.unwrap_err();
    assert!(matches!(error, ClientError::Unknown(_)), "{error:?}");
}

#[tokio::test]
async fn an_unreachable_daraja_means_nothing_was_sent() {
    // A port that was just free: the token request cannot connect, so the payment request
    // never leaves.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = client(&format!("http://127.0.0.1:{port}"));
    let error = client.stk_push(&stk_request("254708374149", &kes("1"))).await.unwrap_err();
    assert!(matches!(error, ClientError::NotSent(_)), "{error:?}");
    assert!(!error.to_string().contains(CONSUMER_SECRET));
}

#[tokio::test]
async fn debug_output_shows_no_credentials() {
    let env = start().await;
    let client = client(&env.base);
    let token = client.token().await.unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains(CONSUMER_SECRET), "{shown}");
    assert!(!shown.contains(token.expose()), "{shown}");
    let basic = mpesa::basic_auth("consumer-key", CONSUMER_SECRET);
    assert!(!shown.contains(basic.trim_start_matches("Basic ")), "{shown}");
}
