//! The MTN MoMo simulator over real loopback HTTP: tokens, request to pay, transfer, status,
//! callbacks (received by a small axum server) and per-MSISDN scripts, read back with the
//! MoMo adapter's own wire types.

use axum::body::Bytes;
use axum::http::Method;
use hazina_providers::Status;
use hazina_providers::momo::{self, FailureReason, PaymentStatus, ReferenceId, TokenResponse};
use hazina_simulator::momo::{
    CallbackMethod, CallbackMode, Config, DecideError, Outcome, Script, Simulator,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::common::{DEADLINE, put_json, serve};

const SUBSCRIPTION_KEY: &str = "sub-key";

/// A callback as the receiver saw it.
#[derive(Debug)]
struct Received {
    method: Method,
    body: Bytes,
}

/// A simulator on one loopback port and a callback receiver on another.
struct Harness {
    simulator: Simulator,
    base: String,
    callback_url: String,
    callbacks: mpsc::UnboundedReceiver<Received>,
    http: reqwest::Client,
}

impl Harness {
    async fn start() -> Self {
        Self::with(Config::default()).await
    }

    async fn with(config: Config) -> Self {
        let simulator = Simulator::new(config);
        let base = serve(axum::Router::new().nest("/simulator/momo", simulator.router())).await;
        let (sender, callbacks) = mpsc::unbounded_channel();
        let receiver = axum::Router::new().route(
            "/callback",
            axum::routing::any(move |method: Method, body: Bytes| {
                let sender = sender.clone();
                async move {
                    // Recorded before answering, so a delivery the simulator saw finish has
                    // already been recorded here.
                    sender.send(Received { method, body }).unwrap();
                    axum::http::StatusCode::OK
                }
            }),
        );
        let receiver = serve(receiver).await;
        Self {
            simulator,
            base: format!("{base}/simulator/momo"),
            callback_url: format!("{receiver}/callback"),
            callbacks,
            http: reqwest::Client::new(),
        }
    }

    async fn token(&self, product: &str) -> String {
        let response = self
            .http
            .post(format!("{}/{product}/token/", self.base))
            .basic_auth("api-user", Some("api-key"))
            .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let token: TokenResponse =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(token.expires_in_seconds().unwrap(), 3600);
        assert_eq!(token.token_type.as_deref(), Some("access_token"));
        token.access_token.expose().to_owned()
    }

    /// Posts a payment (`requesttopay` or `transfer`) and answers the HTTP status and body.
    async fn pay(
        &self,
        path: &str,
        token: &str,
        reference_id: &str,
        body: &Value,
        callback: bool,
    ) -> (u16, String) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("X-Reference-Id", reference_id)
            .header("X-Target-Environment", "sandbox")
            .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
            .json(body);
        if callback {
            request = request.header("X-Callback-Url", &self.callback_url);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn request_to_pay(&self, token: &str, reference_id: ReferenceId, msisdn: &str) -> u16 {
        let path = momo::Product::Collection.payment_path();
        let body = collection_body(msisdn, "EUR", "Order 17");
        self.pay(path, token, &reference_id.to_string(), &body, true).await.0
    }

    async fn status(
        &self,
        product: momo::Product,
        token: &str,
        reference_id: &str,
    ) -> (u16, Bytes) {
        let response = self
            .http
            .get(format!("{}{}/{reference_id}", self.base, product.payment_path()))
            .bearer_auth(token)
            .header("X-Target-Environment", "sandbox")
            .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.bytes().await.unwrap())
    }

    async fn collection_status(&self, token: &str, reference_id: ReferenceId) -> PaymentStatus {
        let (status, body) =
            self.status(momo::Product::Collection, token, &reference_id.to_string()).await;
        assert_eq!(status, 200, "{body:?}");
        PaymentStatus::parse(&body).unwrap()
    }

    /// `PUT /simulate/payments/{reference_id}` with `body`; answers the status and the body.
    async fn decide(&self, reference_id: &str, body: &str) -> (u16, Value) {
        put_json(&self.http, format!("{}/simulate/payments/{reference_id}", self.base), body).await
    }

    async fn next_callback(&mut self) -> Received {
        tokio::time::timeout(DEADLINE, self.callbacks.recv())
            .await
            .expect("no callback before the deadline")
            .unwrap()
    }
}

fn collection_body(msisdn: &str, currency: &str, message: &str) -> Value {
    json!({
        "amount": "1.50",
        "currency": currency,
        "externalId": format!("pay-{msisdn}"),
        "payer": {"partyIdType": "MSISDN", "partyId": msisdn},
        "payerMessage": message,
        "payeeNote": "Thanks",
    })
}

#[tokio::test]
async fn tokens_need_basic_credentials_and_a_subscription_key() {
    let harness = Harness::start().await;
    assert!(!harness.token("collection").await.is_empty());
    assert!(!harness.token("disbursement").await.is_empty());
    let without_key = harness
        .http
        .post(format!("{}/collection/token/", harness.base))
        .basic_auth("api-user", Some("api-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(without_key.status(), 401);
    let without_basic = harness
        .http
        .post(format!("{}/collection/token/", harness.base))
        .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(without_basic.status(), 401);
}

#[tokio::test]
async fn a_request_to_pay_succeeds_with_a_put_callback_and_a_status() {
    let mut harness = Harness::start().await;
    let token = harness.token("collection").await;
    let reference_id = ReferenceId::new_v4();
    let path = momo::Product::Collection.payment_path();
    let body = collection_body("256772123456", "EUR", "Order 17");
    let (status, reply) = harness.pay(path, &token, &reference_id.to_string(), &body, true).await;
    assert_eq!((status, reply.as_str()), (202, ""));

    let callback = harness.next_callback().await;
    assert_eq!(callback.method, Method::PUT);
    let report = momo::parse_callback(&callback.body).unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.our_reference.as_deref(), Some("pay-256772123456"));
    assert_eq!(report.request_reference, Some(reference_id.to_string()));
    let receipt = report.receipt.clone().expect("a financialTransactionId");

    let status = harness.collection_status(&token, reference_id).await;
    let polled = status.to_report().unwrap();
    assert_eq!(polled.status, Status::Succeeded);
    assert_eq!(polled.receipt, Some(receipt));
    assert_eq!(polled.amount.unwrap().amount().to_string(), "1.50");
    assert_eq!(status.reason, None);
    assert_eq!(status.reference_id, None, "a status reply names no reference id");
}

#[tokio::test]
async fn a_sandbox_failure_msisdn_fails_with_its_reason() {
    let mut harness = Harness::start().await;
    let token = harness.token("collection").await;
    let reference_id = ReferenceId::new_v4();
    assert_eq!(harness.request_to_pay(&token, reference_id, "46733123455").await, 202);

    let callback = PaymentStatus::parse(&harness.next_callback().await.body).unwrap();
    assert_eq!(callback.status(), Status::Failed);
    assert_eq!(callback.failure_reason(), Some(FailureReason::NotEnoughFunds));
    assert_eq!(callback.financial_transaction_id, None);

    let status = harness.collection_status(&token, reference_id).await;
    assert_eq!(status.status(), Status::Failed);
    assert_eq!(status.failure_reason(), Some(FailureReason::NotEnoughFunds));
}

#[tokio::test]
async fn a_repeated_reference_id_is_409_and_makes_no_second_payment() {
    let harness = Harness::start().await;
    let token = harness.token("collection").await;
    let reference_id = ReferenceId::new_v4();
    assert_eq!(harness.request_to_pay(&token, reference_id, "256772123456").await, 202);

    let path = momo::Product::Collection.payment_path();
    let body = collection_body("256772123456", "EUR", "Order 17");
    let (status, reply) = harness.pay(path, &token, &reference_id.to_string(), &body, true).await;
    assert_eq!(status, 409);
    let error = momo::classify(status, reply.as_bytes());
    assert_eq!(error.kind, momo::ErrorKind::Duplicate);
    assert_eq!(error.code(), Some("RESOURCE_ALREADY_EXIST"));
    assert_eq!(
        error.body.unwrap().description(),
        Some("Duplicated reference id. Creation of resource failed.")
    );
    assert_eq!(harness.simulator.payments().len(), 1);
    let answered: Vec<u16> = harness.simulator.requests().iter().map(|r| r.status).collect();
    assert_eq!(answered, [200, 202, 409]);
}

#[tokio::test]
async fn an_unknown_reference_is_404() {
    let harness = Harness::start().await;
    let token = harness.token("collection").await;
    let unknown = ReferenceId::new_v4().to_string();
    let (status, body) = harness.status(momo::Product::Collection, &token, &unknown).await;
    assert_eq!(status, 404);
    assert_eq!(momo::classify(status, &body).code(), Some("RESOURCE_NOT_FOUND"));

    // A request to pay's reference is not a transfer's.
    let reference_id = ReferenceId::new_v4();
    assert_eq!(harness.request_to_pay(&token, reference_id, "256772123456").await, 202);
    let disbursement = harness.token("disbursement").await;
    let (status, _) =
        harness.status(momo::Product::Disbursement, &disbursement, &reference_id.to_string()).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_transfer_callback_has_no_reference_id_but_its_external_id() {
    let mut harness = Harness::start().await;
    let token = harness.token("disbursement").await;
    let reference_id = ReferenceId::new_v4();
    let body = json!({
        "amount": "25.00",
        "currency": "EUR",
        "externalId": "payout-42",
        "payee": {"partyIdType": "MSISDN", "partyId": "256772000001"},
        "payerMessage": "Refund",
        "payeeNote": "Order 17",
    });
    let path = momo::Product::Disbursement.payment_path();
    let (status, _) = harness.pay(path, &token, &reference_id.to_string(), &body, true).await;
    assert_eq!(status, 202);

    let callback = harness.next_callback().await;
    let raw: Value = serde_json::from_slice(&callback.body).unwrap();
    assert!(raw.get("referenceId").is_none(), "{raw}");
    assert_eq!(raw["payee"]["partyId"], "256772000001");
    let report = momo::parse_callback(&callback.body).unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.our_reference.as_deref(), Some("payout-42"));
    assert_eq!(report.request_reference, None);

    let (status, body) =
        harness.status(momo::Product::Disbursement, &token, &reference_id.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(PaymentStatus::parse(&body).unwrap().status(), Status::Succeeded);
}

#[tokio::test]
async fn without_a_callback_only_polling_tells() {
    let mut harness = Harness::start().await;
    let token = harness.token("collection").await;
    harness.simulator.script("256772000002", Script::default().callback(CallbackMode::None));
    let silent = ReferenceId::new_v4();
    assert_eq!(harness.request_to_pay(&token, silent, "256772000002").await, 202);
    assert_eq!(harness.collection_status(&token, silent).await.status(), Status::Succeeded);

    // A later payment's callback is the first to arrive: none came for the silent one.
    let loud = ReferenceId::new_v4();
    assert_eq!(harness.request_to_pay(&token, loud, "256772000003").await, 202);
    let report = momo::parse_callback(&harness.next_callback().await.body).unwrap();
    assert_eq!(report.request_reference, Some(loud.to_string()));
    let sent = harness.simulator.callbacks();
    assert!(sent.iter().all(|callback| callback.reference_id == loud), "{sent:?}");
}

#[tokio::test]
async fn a_callback_can_arrive_before_the_202() {
    let mut harness = Harness::start().await;
    let token = harness.token("collection").await;
    harness
        .simulator
        .script("256772000004", Script::default().callback(CallbackMode::BeforeResponse));
    let reference_id = ReferenceId::new_v4();
    assert_eq!(harness.request_to_pay(&token, reference_id, "256772000004").await, 202);
    // Already here when the 202 came back, without waiting.
    let callback = harness.callbacks.try_recv().expect("the callback came before the 202");
    let report = momo::parse_callback(&callback.body).unwrap();
    assert_eq!(report.request_reference, Some(reference_id.to_string()));
}

#[tokio::test]
async fn a_duplicate_callback_script_sends_the_same_callback_twice() {
    let mut harness = Harness::start().await;
    let token = harness.token("collection").await;
    harness.simulator.script("256772000005", Script::default().callback(CallbackMode::Twice));
    assert_eq!(harness.request_to_pay(&token, ReferenceId::new_v4(), "256772000005").await, 202);
    let first = harness.next_callback().await;
    let second = harness.next_callback().await;
    assert_eq!(first.body, second.body);
}

#[tokio::test]
async fn a_failing_status_endpoint_recovers_when_the_script_is_cleared() {
    let harness = Harness::start().await;
    let token = harness.token("collection").await;
    harness.simulator.script("256772000006", Script::default().status_error(500));
    let reference_id = ReferenceId::new_v4();
    assert_eq!(harness.request_to_pay(&token, reference_id, "256772000006").await, 202);
    let (status, body) =
        harness.status(momo::Product::Collection, &token, &reference_id.to_string()).await;
    assert_eq!(status, 500);
    assert_eq!(momo::classify(status, &body).kind, momo::ErrorKind::Unknown);

    harness.simulator.clear();
    assert_eq!(harness.collection_status(&token, reference_id).await.status(), Status::Succeeded);
}

#[tokio::test]
async fn scripts_set_over_http_and_pending_payments_decided_later() {
    let mut harness = Harness::start().await;
    let token = harness.token("collection").await;
    let response = harness
        .http
        .put(format!("{}/simulate/scripts/256772000007", harness.base))
        .json(&json!({"outcome": {"failed": "APPROVAL_REJECTED"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let bad_script = harness
        .http
        .put(format!("{}/simulate/scripts/256772000007", harness.base))
        .json(&json!({"outcome": "maybe"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_script.status(), 400);
    let rejected = ReferenceId::new_v4();
    assert_eq!(harness.request_to_pay(&token, rejected, "256772000007").await, 202);
    let callback = PaymentStatus::parse(&harness.next_callback().await.body).unwrap();
    assert_eq!(callback.failure_reason(), Some(FailureReason::ApprovalRejected));

    // MTN's …453 stays pending, with no callback, until the test decides it.
    let pending = ReferenceId::new_v4();
    assert_eq!(harness.request_to_pay(&token, pending, "46733123453").await, 202);
    assert_eq!(harness.collection_status(&token, pending).await.status(), Status::Pending);
    let decided = harness.simulator.decide(pending, Outcome::Successful).await.unwrap();
    assert_eq!(decided.status["status"], "SUCCESSFUL");
    let again = harness.simulator.decide(pending, Outcome::Successful).await;
    assert_eq!(again.unwrap_err(), DecideError::AlreadyDecided, "decided once");
    let report = momo::parse_callback(&harness.next_callback().await.body).unwrap();
    assert_eq!(report.request_reference, Some(pending.to_string()));
    assert_eq!(harness.collection_status(&token, pending).await.status(), Status::Succeeded);
}

#[tokio::test]
async fn bad_reference_ids_and_notes_are_400() {
    let harness = Harness::start().await;
    let token = harness.token("collection").await;
    let path = momo::Product::Collection.payment_path();
    let body = collection_body("256772123456", "EUR", "Order 17");
    for reference_id in [uuid::Uuid::now_v7().to_string(), "not-a-uuid".to_owned()] {
        let (status, _) = harness.pay(path, &token, &reference_id, &body, true).await;
        assert_eq!(status, 400, "{reference_id}");
    }
    for message in ["a".repeat(161), "Joe's shop".to_owned()] {
        let body = collection_body("256772123456", "EUR", &message);
        let (status, _) =
            harness.pay(path, &token, &ReferenceId::new_v4().to_string(), &body, true).await;
        assert_eq!(status, 400, "{message}");
    }
    let at_limit = collection_body("256772123456", "EUR", &"a".repeat(160));
    let (status, _) =
        harness.pay(path, &token, &ReferenceId::new_v4().to_string(), &at_limit, true).await;
    assert_eq!(status, 202);

    let ugx = collection_body("256772123456", "UGX", "Order 17");
    let (status, reply) =
        harness.pay(path, &token, &ReferenceId::new_v4().to_string(), &ugx, true).await;
    assert_eq!(status, 400);
    assert_eq!(momo::classify(status, reply.as_bytes()).code(), Some("INVALID_CURRENCY"));
    assert_eq!(harness.simulator.payments().len(), 1);
}

#[tokio::test]
async fn payments_need_a_token_for_their_product() {
    let harness = Harness::start().await;
    let path = momo::Product::Collection.payment_path();
    let body = collection_body("256772123456", "EUR", "Order 17");
    let reference_id = ReferenceId::new_v4().to_string();
    let (status, _) = harness.pay(path, "no-such-token", &reference_id, &body, true).await;
    assert_eq!(status, 401);
    let disbursement = harness.token("disbursement").await;
    let (status, _) = harness.pay(path, &disbursement, &reference_id, &body, true).await;
    assert_eq!(status, 401);
    assert!(harness.simulator.payments().is_empty());
}

#[tokio::test]
async fn the_currency_and_callback_method_are_configurable() {
    let mut harness = Harness::with(Config {
        currency: "UGX".to_owned(),
        callback_method: CallbackMethod::Post,
        ..Config::default()
    })
    .await;
    let token = harness.token("collection").await;
    let body = json!({
        "amount": "5000",
        "currency": "UGX",
        "externalId": "pay-ugx",
        "payer": {"partyIdType": "MSISDN", "partyId": "256772123456"},
        "payerMessage": "",
        "payeeNote": "",
    });
    let path = momo::Product::Collection.payment_path();
    let (status, _) =
        harness.pay(path, &token, &ReferenceId::new_v4().to_string(), &body, true).await;
    assert_eq!(status, 202);
    let callback = harness.next_callback().await;
    assert_eq!(callback.method, Method::POST);
    let report = momo::parse_callback(&callback.body).unwrap();
    assert_eq!(report.amount.unwrap().to_string(), "5000 UGX");
}

#[tokio::test]
async fn callback_delivery_failures_are_recorded_not_retried() {
    let harness = Harness::start().await;
    let token = harness.token("collection").await;
    // A port that was just free: nothing listens there.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    harness
        .simulator
        .script("256772000008", Script::default().callback(CallbackMode::BeforeResponse));
    let response = harness
        .http
        .post(format!("{}/collection/v1_0/requesttopay", harness.base))
        .bearer_auth(&token)
        .header("X-Reference-Id", ReferenceId::new_v4().to_string())
        .header("X-Target-Environment", "sandbox")
        .header("X-Callback-Url", format!("http://{closed}/callback"))
        .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
        .json(&collection_body("256772000008", "EUR", "Order 17"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let sent = harness.simulator.wait_for_callbacks(1, DEADLINE).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].delivery.is_err(), "{sent:?}");
}

#[tokio::test]
async fn a_pending_payment_is_decided_over_http_once() {
    let mut harness = Harness::start().await;
    let token = harness.token("collection").await;
    let script = harness
        .http
        .put(format!("{}/simulate/scripts/256772000010", harness.base))
        .json(&json!({"outcome": "pending", "callback": "twice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 204);
    let reference_id = ReferenceId::new_v4();
    assert_eq!(harness.request_to_pay(&token, reference_id, "256772000010").await, 202);
    assert_eq!(harness.collection_status(&token, reference_id).await.status(), Status::Pending);

    // Unreadable decisions decide nothing.
    let id = reference_id.to_string();
    for body in [r#"{"outcome":"successful"}"#, r#""maybe""#, r#""pending""#, "not json"] {
        let (status, reply) = harness.decide(&id, body).await;
        assert_eq!(status, 400, "{body}: {reply}");
    }
    let (status, reply) = harness.decide("not-a-uuid", r#""successful""#).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["code"], "INVALID_REFERENCE_ID");
    assert_eq!(harness.collection_status(&token, reference_id).await.status(), Status::Pending);
    assert!(harness.simulator.callbacks().is_empty(), "a pending payment calls nobody back");
    assert!(harness.callbacks.try_recv().is_err());

    let (status, decided) = harness.decide(&id, r#"{"failed":"NOT_ENOUGH_FUNDS"}"#).await;
    assert_eq!(status, 200, "{decided}");
    let decided = PaymentStatus::parse(decided.to_string().as_bytes()).unwrap();
    assert_eq!(decided.status(), Status::Failed);
    assert_eq!(decided.failure_reason(), Some(FailureReason::NotEnoughFunds));

    // The two callbacks the script asks for, carrying the decision, and no more.
    let first = harness.next_callback().await;
    let second = harness.next_callback().await;
    assert_eq!(first.body, second.body);
    let report = momo::parse_callback(&first.body).unwrap();
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.request_reference, Some(id.clone()));
    let callback = PaymentStatus::parse(&first.body).unwrap();
    assert_eq!(callback.failure_reason(), Some(FailureReason::NotEnoughFunds));
    assert_eq!(harness.simulator.wait_for_callbacks(2, DEADLINE).await.len(), 2);
    assert!(harness.callbacks.try_recv().is_err(), "exactly the scripted callbacks");

    let status = harness.collection_status(&token, reference_id).await;
    assert_eq!(status.failure_reason(), Some(FailureReason::NotEnoughFunds));

    // A final status is final.
    let (status, reply) = harness.decide(&id, r#""successful""#).await;
    assert_eq!(status, 409, "{reply}");
    assert_eq!(harness.collection_status(&token, reference_id).await.status(), Status::Failed);
    assert_eq!(harness.simulator.callbacks().len(), 2);

    let (status, reply) =
        harness.decide(&ReferenceId::new_v4().to_string(), r#""successful""#).await;
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["code"], "RESOURCE_NOT_FOUND");
}

#[tokio::test]
async fn a_pending_transfer_is_decided_successful_over_http() {
    let mut harness = Harness::start().await;
    let token = harness.token("disbursement").await;
    // MTN's sandbox number that stays pending.
    let reference_id = ReferenceId::new_v4();
    let body = json!({
        "amount": "25.00",
        "currency": "EUR",
        "externalId": "payout-43",
        "payee": {"partyIdType": "MSISDN", "partyId": "46733123454"},
        "payerMessage": "Refund",
        "payeeNote": "Order 18",
    });
    let path = momo::Product::Disbursement.payment_path();
    let (status, _) = harness.pay(path, &token, &reference_id.to_string(), &body, true).await;
    assert_eq!(status, 202);
    let (status, body) =
        harness.status(momo::Product::Disbursement, &token, &reference_id.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(PaymentStatus::parse(&body).unwrap().status(), Status::Pending);

    let (status, decided) = harness.decide(&reference_id.to_string(), r#""successful""#).await;
    assert_eq!(status, 200, "{decided}");
    let receipt = decided["financialTransactionId"].as_str().unwrap().to_owned();

    let report = momo::parse_callback(&harness.next_callback().await.body).unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.our_reference.as_deref(), Some("payout-43"));
    assert_eq!(report.receipt, Some(receipt.clone()));
    let (_, body) =
        harness.status(momo::Product::Disbursement, &token, &reference_id.to_string()).await;
    let polled = PaymentStatus::parse(&body).unwrap();
    assert_eq!(polled.status(), Status::Succeeded);
    assert_eq!(polled.financial_transaction_id.map(|id| id.0), Some(receipt));
}
