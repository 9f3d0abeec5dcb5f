//! The M-Pesa simulator over real loopback HTTP: Daraja's requests in, its callbacks out to a
//! recording receiver, read back through the M-Pesa adapter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::Uri;
use hazina_providers::Status;
use hazina_providers::mpesa::{self, Callback};
use hazina_simulator::mpesa::{CallbackMode, DecideError, Script, Simulator, TransactionKind};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::common::{DEADLINE, put_json, serve};

/// A callback receiver: records every POST by path; `/validate-reject` answers a C2B
/// rejection, everything else an acceptance.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(String, String)>>>,
    notify: Arc<Notify>,
}

impl Receiver {
    fn bodies(&self, path: &str) -> Vec<String> {
        let received = self.received.lock().unwrap();
        received.iter().filter(|(p, _)| p == path).map(|(_, body)| body.clone()).collect()
    }

    fn paths(&self) -> Vec<String> {
        self.received.lock().unwrap().iter().map(|(path, _)| path.clone()).collect()
    }

    /// Waits until `count` bodies arrived on `path`, up to the deadline.
    async fn wait_for(&self, path: &str, count: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            // Registered before checking, so a POST between the check and the wait wakes us.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let bodies = self.bodies(path);
            if bodies.len() >= count {
                return bodies;
            }
            let woken = tokio::time::timeout_at(deadline, notified).await.is_ok();
            assert!(woken, "{count} callbacks on {path} did not arrive; got {bodies:?}");
        }
    }
}

async fn receive(State(receiver): State<Receiver>, uri: Uri, body: String) -> axum::Json<Value> {
    let path = uri.path().to_owned();
    let reply = if path == "/validate-reject" {
        json!({"ResultCode": "C2B00012", "ResultDesc": "Rejected"})
    } else if path.starts_with("/validate") {
        json!({"ResultCode": "0", "ResultDesc": "Accepted"})
    } else {
        json!({"ResultCode": "00000000", "ResultDesc": "Accepted"})
    };
    receiver.received.lock().unwrap().push((path, body));
    receiver.notify.notify_waiters();
    axum::Json(reply)
}

struct Env {
    sim: Simulator,
    base: String,
    callbacks: String,
    receiver: Receiver,
    client: reqwest::Client,
    token: String,
}

async fn start() -> Env {
    let sim = Simulator::new();
    let base = serve(axum::Router::new().nest("/simulator/mpesa", sim.router())).await;
    let receiver = Receiver::default();
    let callbacks = serve(axum::Router::new().fallback(receive).with_state(receiver.clone())).await;
    let client = reqwest::Client::new();
    let token = token(&client, &format!("{base}/simulator/mpesa")).await;
    Env { sim, base: format!("{base}/simulator/mpesa"), callbacks, receiver, client, token }
}

async fn token(client: &reqwest::Client, base: &str) -> String {
    let response = client
        .get(format!("{base}/oauth/v1/generate?grant_type=client_credentials"))
        .header("Authorization", mpesa::basic_auth("key", "secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let token: mpesa::TokenResponse = response.json().await.unwrap();
    assert_eq!(token.expires_in_seconds().unwrap(), 3599);
    token.access_token.expose().to_owned()
}

impl Env {
    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn stk_push(&self, phone: &str, amount: &str) -> (u16, Value) {
        let body = json!({
            "BusinessShortCode": "174379",
            "Password": "cGFzcw==",
            "Timestamp": "20240101120000",
            "TransactionType": "CustomerPayBillOnline",
            "Amount": amount,
            "PartyA": phone,
            "PartyB": "174379",
            "PhoneNumber": phone,
            "CallBackURL": format!("{}/stk", self.callbacks),
            "AccountReference": "INV-1",
            "TransactionDesc": "Payment",
        });
        self.post("/mpesa/stkpush/v1/processrequest", &body).await
    }

    async fn stk_query(&self, checkout_request_id: &str) -> (u16, Value) {
        let body = json!({
            "BusinessShortCode": "174379",
            "Password": "cGFzcw==",
            "Timestamp": "20240101120000",
            "CheckoutRequestID": checkout_request_id,
        });
        self.post("/mpesa/stkpushquery/v1/query", &body).await
    }

    async fn b2c(&self, originator: &str, phone: &str, amount: &str) -> (u16, Value) {
        let body = json!({
            "OriginatorConversationID": originator,
            "InitiatorName": "testapi",
            "SecurityCredential": "cred",
            "CommandID": "BusinessPayment",
            "Amount": amount,
            "PartyA": "600992",
            "PartyB": phone,
            "Remarks": "payout",
            "QueueTimeOutURL": format!("{}/b2c-timeout", self.callbacks),
            "ResultURL": format!("{}/b2c-result", self.callbacks),
            "Occassion": "",
        });
        self.post("/mpesa/b2c/v3/paymentrequest", &body).await
    }

    /// `PUT /simulate/transactions/{id}` with `body`; answers the status and the body.
    async fn decide(&self, id: &str, body: &str) -> (u16, Value) {
        put_json(&self.client, format!("{}/simulate/transactions/{id}", self.base), body).await
    }

    async fn transaction_status(&self, transaction_id: &str) -> (u16, Value) {
        let body = json!({
            "Initiator": "testapi",
            "SecurityCredential": "cred",
            "Command ID": "TransactionStatusQuery",
            "Transaction ID": transaction_id,
            "PartyA": "600992",
            "IdentifierType": "4",
            "ResultURL": format!("{}/status-result", self.callbacks),
            "QueueTimeOutURL": format!("{}/status-timeout", self.callbacks),
            "Remarks": "status",
            "Occasion": "",
        });
        self.post("/mpesa/transactionstatus/v1/query", &body).await
    }
}

fn stk_callback(body: &str) -> mpesa::StkCallback {
    match mpesa::callback(body).unwrap() {
        Callback::Stk(callback) => callback,
        other => panic!("not an STK callback: {other:?}"),
    }
}

fn result_callback(body: &str) -> mpesa::MpesaResult {
    match mpesa::callback(body).unwrap() {
        Callback::Result(result) => result,
        other => panic!("not a result callback: {other:?}"),
    }
}

fn checkout_id(response: &Value) -> String {
    response["CheckoutRequestID"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn stk_push_succeeds_with_a_callback_the_adapter_reads() {
    let env = start().await;
    let (status, response) = env.stk_push("254708374149", "10").await;
    assert_eq!(status, 200, "{response}");
    let accepted: mpesa::StkPushResponse = serde_json::from_value(response.clone()).unwrap();
    assert!(accepted.is_accepted());
    assert!(accepted.checkout_request_id.starts_with("ws_CO_"));

    let bodies = env.receiver.wait_for("/stk", 1).await;
    let callback = stk_callback(&bodies[0]);
    let raw: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(raw["Body"]["stkCallback"]["ResultCode"], 0, "a number in the callback");
    let report = callback.to_report().unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.request_reference.as_deref(), Some(accepted.checkout_request_id.as_str()));
    assert_eq!(report.amount.unwrap().amount().to_string(), "10.00");
    let receipt = report.receipt.unwrap();
    assert_eq!(receipt.len(), 10);
    let recorded = env.sim.transactions();
    assert_eq!(recorded[0].receipt, receipt);

    // The query agrees, with the result code as a string.
    let (status, query) = env.stk_query(&accepted.checkout_request_id).await;
    assert_eq!(status, 200, "{query}");
    assert_eq!(query["ResultCode"], "0");
    let query: mpesa::StkQueryResponse = serde_json::from_value(query).unwrap();
    assert_eq!(query.to_report().status, Status::Succeeded);
}

#[tokio::test]
async fn stk_push_scripted_1032_fails() {
    let env = start().await;
    env.sim.script("254700000001", Script::failure("1032"));
    let (_, response) = env.stk_push("254700000001", "5").await;
    let bodies = env.receiver.wait_for("/stk", 1).await;
    let callback = stk_callback(&bodies[0]);
    assert_eq!(callback.checkout_request_id, checkout_id(&response));
    assert!(callback.callback_metadata.is_none(), "a failure has no metadata");
    let report = callback.to_report().unwrap();
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.code.as_deref(), Some("1032"));
    assert_eq!(report.description.as_deref(), Some("Request cancelled by user"));
}

#[tokio::test]
async fn withheld_callback_leaves_only_the_query() {
    let env = start().await;
    env.sim.script("254700000002", Script::failure("1037").with_callback(CallbackMode::Withheld));
    let (_, response) = env.stk_push("254700000002", "5").await;
    let id = checkout_id(&response);
    // The outcome is decided in the background; poll the query until it answers, bounded.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let query = loop {
        let (status, query) = env.stk_query(&id).await;
        if status == 200 {
            break query;
        }
        assert_eq!(query["errorCode"], "500.001.1001", "{query}");
        assert!(tokio::time::Instant::now() < deadline, "the query never answered");
        tokio::task::yield_now().await;
    };
    assert_eq!(query["ResultCode"], "1037");
    assert!(env.sim.deliveries().is_empty());
    assert!(env.receiver.paths().is_empty());
}

#[tokio::test]
async fn an_undecided_prompt_is_being_processed() {
    let env = start().await;
    let script = Script::success().with_callback_delay(Duration::from_secs(3600));
    env.sim.script("254700000003", script);
    let (_, response) = env.stk_push("254700000003", "5").await;
    let (status, query) = env.stk_query(&checkout_id(&response)).await;
    assert_eq!(status, 500);
    assert_eq!(query["errorCode"], "500.001.1001");
    assert_eq!(query["errorMessage"], "The transaction is being processed");

    let (status, unknown) = env.stk_query("ws_CO_unknown").await;
    assert_eq!(status, 400);
    assert_eq!(unknown["errorCode"], "400.002.02");
}

#[tokio::test]
async fn duplicate_callbacks_arrive_twice() {
    let env = start().await;
    env.sim.script("254700000004", Script::success().with_callback(CallbackMode::Twice));
    let (_, response) = env.stk_push("254700000004", "7").await;
    let bodies = env.receiver.wait_for("/stk", 2).await;
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], bodies[1]);
    for body in &bodies {
        assert_eq!(stk_callback(body).checkout_request_id, checkout_id(&response));
    }
}

#[tokio::test]
async fn callback_can_arrive_before_the_response() {
    let env = start().await;
    let script = Script::success().with_callback(CallbackMode::BeforeResponse);
    env.sim.script("254700000005", script);
    let (status, response) = env.stk_push("254700000005", "9").await;
    assert_eq!(status, 200);
    // Already there when the response is read: no waiting.
    let bodies = env.receiver.bodies("/stk");
    assert_eq!(bodies.len(), 1);
    assert_eq!(stk_callback(&bodies[0]).checkout_request_id, checkout_id(&response));
}

#[tokio::test]
async fn stk_refuses_bad_amounts_and_phones() {
    let env = start().await;
    for amount in ["0", "250001", "1.50", "ten"] {
        let (status, body) = env.stk_push("254700000006", amount).await;
        assert_eq!(status, 400, "{amount}");
        assert_eq!(body["errorCode"], "400.002.02");
        assert_eq!(body["errorMessage"], "Bad Request - Invalid Amount");
    }
    let (status, body) = env.stk_push("254700000006", "250000").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = env.stk_push("0700000006", "1").await;
    assert_eq!(status, 400);
    assert_eq!(body["errorMessage"], "Bad Request - Invalid PhoneNumber");
}

#[tokio::test]
async fn b2c_pays_once_and_refuses_a_duplicate() {
    let env = start().await;
    let (status, response) = env.b2c("ours-1", "254705912645", "10").await;
    assert_eq!(status, 200, "{response}");
    let queued: mpesa::QueuedResponse = serde_json::from_value(response).unwrap();
    assert!(queued.is_accepted());
    assert_eq!(queued.originator_conversation_id, "ours-1");
    assert!(queued.conversation_id.starts_with("AG_"));

    let (status, duplicate) = env.b2c("ours-1", "254705912645", "10").await;
    assert_eq!(status, 500);
    let error: mpesa::ErrorResponse = serde_json::from_value(duplicate).unwrap();
    assert_eq!(error.error_code, "500.002.1001");
    assert!(error.is_duplicate());

    let bodies = env.receiver.wait_for("/b2c-result", 1).await;
    let result = result_callback(&bodies[0]);
    let report = result.to_b2c_report().unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.our_reference.as_deref(), Some("ours-1"));
    assert_eq!(report.amount.unwrap().amount().to_string(), "10.00");
    assert!(result.parameter("TransactionReceipt").is_some());
    assert_eq!(result.parameter("B2CRecipientIsRegisteredCustomer").unwrap().as_str(), "Y");
    let completed = result.parameter("TransactionCompletedDateTime").unwrap().to_string();
    assert!(chrono::NaiveDateTime::parse_from_str(&completed, "%d.%m.%Y %H:%M:%S").is_ok());

    let payouts: Vec<_> =
        env.sim.transactions().into_iter().filter(|t| t.kind == TransactionKind::B2c).collect();
    assert_eq!(payouts.len(), 1, "the duplicate paid nothing");
}

#[tokio::test]
async fn b2c_failure_has_no_parameters() {
    let env = start().await;
    env.sim.script("254705912646", Script::failure("2001"));
    env.b2c("ours-2", "254705912646", "10").await;
    let bodies = env.receiver.wait_for("/b2c-result", 1).await;
    let result = result_callback(&bodies[0]);
    assert!(result.result_parameters.is_none());
    assert_eq!(result.to_b2c_report().unwrap().status, Status::Failed);
    assert_eq!(result.result_desc, "The initiator information is invalid.");
}

#[tokio::test]
async fn b2c_queue_timeout_notifies_the_timeout_url() {
    let env = start().await;
    env.sim.script("254705912647", Script::success().with_queue_timeout());
    let (status, _) = env.b2c("ours-3", "254705912647", "10").await;
    assert_eq!(status, 200);
    let bodies = env.receiver.wait_for("/b2c-timeout", 1).await;
    let notice = result_callback(&bodies[0]);
    assert_eq!(notice.originator_conversation_id, "ours-3");
    assert_eq!(notice.to_b2c_report().unwrap().status, Status::Pending, "unknown, not failed");
    assert!(env.receiver.bodies("/b2c-result").is_empty());
    let payout = &env.sim.transactions()[0];
    assert!(payout.queue_timed_out && !payout.succeeded());
}

#[tokio::test]
async fn transaction_status_reports_a_known_payment_and_fails_an_unknown_one() {
    let env = start().await;
    env.b2c("ours-4", "254705912648", "25").await;
    let bodies = env.receiver.wait_for("/b2c-result", 1).await;
    let receipt = result_callback(&bodies[0]).transaction_id;

    let (status, response) = env.transaction_status(&receipt).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["ResponseCode"], "0");
    let bodies = env.receiver.wait_for("/status-result", 1).await;
    let report = result_callback(&bodies[0]).to_transaction_status_report().unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.receipt.as_deref(), Some(receipt.as_str()));
    assert_eq!(report.our_reference.as_deref(), Some("ours-4"));
    assert_eq!(report.amount.unwrap().amount().to_string(), "25.00");

    // By our own id, with the unspaced spelling.
    let body = json!({
        "Initiator": "testapi", "SecurityCredential": "cred",
        "CommandID": "TransactionStatusQuery", "OriginalConversationID": "ours-4",
        "PartyA": "600992", "IdentifierType": "4",
        "ResultURL": format!("{}/status-result", env.callbacks),
        "QueueTimeOutURL": format!("{}/status-timeout", env.callbacks),
        "Remarks": "status",
    });
    let (status, _) = env.post("/mpesa/transactionstatus/v1/query", &body).await;
    assert_eq!(status, 200);
    let bodies = env.receiver.wait_for("/status-result", 2).await;
    let report = result_callback(&bodies[1]).to_transaction_status_report().unwrap();
    assert_eq!(report.receipt.as_deref(), Some(receipt.as_str()));

    env.transaction_status("NOSUCHRCPT").await;
    let bodies = env.receiver.wait_for("/status-result", 3).await;
    let unknown = result_callback(&bodies[2]);
    assert_ne!(unknown.result_code.as_str(), "0");
    assert_eq!(unknown.to_transaction_status_report().unwrap().status, Status::Pending);
}

#[tokio::test]
async fn a_failing_status_endpoint_answers_500() {
    let env = start().await;
    env.sim.script("254705912649", Script::success().with_status_failing());
    env.b2c("ours-5", "254705912649", "10").await;
    let bodies = env.receiver.wait_for("/b2c-result", 1).await;
    let receipt = result_callback(&bodies[0]).transaction_id;
    let (status, body) = env.transaction_status(&receipt).await;
    assert_eq!(status, 500);
    assert_eq!(body["errorCode"], "500.003.1001");
}

async fn register(env: &Env, short_code: &str, validation_path: &str) {
    let body = json!({
        "ShortCode": short_code,
        "ResponseType": "Completed",
        "ConfirmationURL": format!("{}/confirm", env.callbacks),
        "ValidationURL": format!("{}{validation_path}", env.callbacks),
    });
    let (status, response) = env.post("/mpesa/c2b/v2/registerurl", &body).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["ResponseDescription"], "Success");
    assert!(response.get("OriginatorCoversationID").is_some(), "Daraja's spelling");
}

async fn receive_payment(env: &Env, short_code: &str) -> Value {
    let body = json!({
        "shortCode": short_code, "msisdn": "254708374149", "amount": "100", "billRefNumber": "ACC-7",
    });
    let response =
        env.client.post(format!("{}/simulate/c2b", env.base)).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn c2b_validates_then_confirms() {
    let env = start().await;
    register(&env, "600000", "/validate").await;
    let outcome = receive_payment(&env, "600000").await;
    assert_eq!(outcome["validation"], "accepted");
    assert_eq!(outcome["completed"], true);
    assert_eq!(outcome["confirmationDelivered"], true);
    assert_eq!(env.receiver.paths(), ["/validate", "/confirm"], "validation first");

    let confirmation = match mpesa::callback(&env.receiver.bodies("/confirm")[0]).unwrap() {
        Callback::C2b(payment) => payment,
        other => panic!("not a C2B body: {other:?}"),
    };
    assert_eq!(confirmation.trans_id, outcome["transId"].as_str().unwrap());
    assert_eq!(confirmation.trans_amount.as_str(), "100.00");
    assert_eq!(confirmation.msisdn.as_str(), "2547 ***** 149", "v2 masks the number");
    let received = confirmation.to_received().unwrap();
    assert_eq!(received.report.our_reference.as_deref(), Some("ACC-7"));
}

#[tokio::test]
async fn a_rejecting_validation_stops_the_confirmation() {
    let env = start().await;
    register(&env, "600001", "/validate-reject").await;
    let outcome = receive_payment(&env, "600001").await;
    assert_eq!(outcome["validation"], "rejected");
    assert_eq!(outcome["validationResultCode"], "C2B00012");
    assert_eq!(outcome["completed"], false);
    assert_eq!(env.receiver.paths(), ["/validate-reject"]);
    let payment = &env.sim.transactions()[0];
    assert_eq!(payment.result_code.as_deref(), Some("C2B00012"));
}

#[tokio::test]
async fn requests_need_a_token_it_issued() {
    let env = start().await;
    let url = format!("{}/mpesa/stkpush/v1/processrequest", env.base);
    let none = env.client.post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(none.status(), 400);
    let bogus = env.client.post(&url).bearer_auth("nope").json(&json!({})).send().await.unwrap();
    assert_eq!(bogus.status(), 401);
    let error: mpesa::ErrorResponse = bogus.json().await.unwrap();
    assert_eq!(error.error_code, "404.001.03");
    assert_eq!(error.error_message, "Invalid Access Token");

    let oauth = format!("{}/oauth/v1/generate?grant_type=client_credentials", env.base);
    let no_basic = env.client.get(&oauth).send().await.unwrap();
    assert_eq!(no_basic.status(), 400);
    assert!(env.sim.transactions().is_empty());
}

#[tokio::test]
async fn scripts_can_be_set_over_http() {
    let env = start().await;
    let response = env
        .client
        .put(format!("{}/simulate/scripts/254700000009", env.base))
        .json(&json!({"resultCode": "1", "callback": "twice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    env.stk_push("254700000009", "5").await;
    let bodies = env.receiver.wait_for("/stk", 2).await;
    assert_eq!(stk_callback(&bodies[1]).to_report().unwrap().status, Status::Failed);

    let refused = env
        .client
        .put(format!("{}/simulate/scripts/254700000009", env.base))
        .json(&json!({"outcome": "maybe"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
}

#[tokio::test]
async fn an_stk_push_awaiting_a_decision_is_decided_over_http_once() {
    let env = start().await;
    let script = env
        .client
        .put(format!("{}/simulate/scripts/254700000010", env.base))
        .json(&json!({"awaitDecision": true, "callback": "twice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    let (status, response) = env.stk_push("254700000010", "5").await;
    assert_eq!(status, 200, "{response}");
    let id = checkout_id(&response);

    // Undecided: the query says so, and bad decisions change nothing.
    for body in [r#"{"resultCode":""}"#, r#"{"code":"0"}"#, r#"{"resultCode":"0","x":1}"#, "{"] {
        let (status, reply) = env.decide(&id, body).await;
        assert_eq!(status, 400, "{body}: {reply}");
    }
    let (status, query) = env.stk_query(&id).await;
    assert_eq!(status, 500, "{query}");
    assert_eq!(query["errorMessage"], "The transaction is being processed");
    assert!(env.sim.deliveries().is_empty(), "no callback before the decision");
    assert_eq!(env.sim.transactions()[0].result_code, None);

    let (status, decided) = env.decide(&id, r#"{"resultCode":"1032"}"#).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["id"], id.as_str());
    assert_eq!(decided["result_code"], "1032");
    assert_eq!(decided["result_desc"], "Request cancelled by user");

    // The two callbacks the script asks for, carrying the decision, and no more.
    let bodies = env.receiver.wait_for("/stk", 2).await;
    assert_eq!(bodies[0], bodies[1]);
    let callback = stk_callback(&bodies[0]);
    assert_eq!(callback.checkout_request_id, id);
    let report = callback.to_report().unwrap();
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.code.as_deref(), Some("1032"));
    assert_eq!(env.sim.deliveries().len(), 2);
    assert_eq!(env.receiver.paths(), ["/stk", "/stk"]);

    let (status, query) = env.stk_query(&id).await;
    assert_eq!(status, 200, "{query}");
    assert_eq!(query["ResultCode"], "1032");

    // Decided once.
    let (status, reply) = env.decide(&id, r#"{"resultCode":"0"}"#).await;
    assert_eq!(status, 409, "{reply}");
    assert_eq!(env.stk_query(&id).await.1["ResultCode"], "1032");
    assert_eq!(env.sim.deliveries().len(), 2);

    let (status, reply) = env.decide("ws_CO_unknown", r#"{"resultCode":"0"}"#).await;
    assert_eq!(status, 404, "{reply}");
}

#[tokio::test]
async fn a_b2c_payout_awaiting_a_decision_pays_when_decided() {
    let env = start().await;
    env.sim.script("254705912650", Script::success().with_awaited_decision());
    let (status, response) = env.b2c("ours-6", "254705912650", "30").await;
    assert_eq!(status, 200, "{response}");
    let id = response["ConversationID"].as_str().unwrap().to_owned();

    // A status query finds no completed payout yet.
    env.transaction_status(&env.sim.transactions()[0].receipt).await;
    let bodies = env.receiver.wait_for("/status-result", 1).await;
    let undecided = result_callback(&bodies[0]).to_transaction_status_report().unwrap();
    assert_eq!(undecided.status, Status::Pending);
    assert!(env.receiver.bodies("/b2c-result").is_empty(), "no result before the decision");

    // A code may come as a number, with a description of our own.
    let (status, decided) =
        env.decide(&id, r#"{"resultCode":0,"resultDesc":"Paid by hand"}"#).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["result_code"], "0");
    let bodies = env.receiver.wait_for("/b2c-result", 1).await;
    let result = result_callback(&bodies[0]);
    assert_eq!(result.result_desc, "Paid by hand");
    let report = result.to_b2c_report().unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.our_reference.as_deref(), Some("ours-6"));
    assert_eq!(report.amount.unwrap().amount().to_string(), "30.00");

    env.transaction_status(&result.transaction_id).await;
    let bodies = env.receiver.wait_for("/status-result", 2).await;
    let paid = result_callback(&bodies[1]).to_transaction_status_report().unwrap();
    assert_eq!(paid.status, Status::Succeeded);

    // The same answers in process: decided once, and only payments can be decided.
    let again = env.sim.decide(&id, "1", None).await;
    assert_eq!(again.unwrap_err(), DecideError::AlreadyDecided);
    let (status, _) = env.decide(&id, r#"{"resultCode":"1"}"#).await;
    assert_eq!(status, 409);
    let query = env.sim.transactions()[1].clone();
    assert_eq!(query.kind, TransactionKind::TransactionStatus);
    let not_a_payment = env.sim.decide(&query.id, "0", None).await;
    assert_eq!(not_a_payment.unwrap_err(), DecideError::UnknownTransaction);
    assert_eq!(env.receiver.bodies("/b2c-result").len(), 1);
}
