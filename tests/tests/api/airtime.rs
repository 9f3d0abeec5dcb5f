//! Airtime as a payout, end to end over real HTTP: the API, the payments engine and its worker
//! on one side, the Africa's Talking simulator on the other (its own port), the airtime status
//! callbacks travelling back over loopback. The face value is reserved, sent under the
//! payment's id as the `Idempotency-Key`, posted on `Success`, voided on `Failed` or a refusal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use hazina_ledger::store::Store;
use hazina_providers::africastalking::airtime::AirtimeStatus;
use hazina_simulator::africastalking::{AirtimeScript, Simulator};
use hazina_tests::{ApiServer, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common;

const CUSTOMER: &str = "+254711000001";
const OTHER_CUSTOMER: &str = "+254711000002";
/// The channel's number: the org's name for its Africa's Talking account.
const ACCOUNT: &str = "hazina-airtime";
const API_KEY: &str = "at-api-key";

struct Env {
    server: ApiServer,
    at: Simulator,
    at_url: String,
}

async fn start() -> Env {
    let server = ApiServer::start().await;
    let (at, at_url) = common::africastalking(API_KEY).await;
    Env { server, at, at_url }
}

/// What a flaky gateway in front of the simulator saw: every airtime send's idempotency key.
#[derive(Clone, Default)]
struct Gateway {
    keys: Arc<Mutex<Vec<Option<String>>>>,
}

impl Gateway {
    /// A gateway on its own port that hands every request to the simulator at `upstream`, but
    /// answers the first airtime send with a 502 after the simulator took it: the request
    /// arrived, its answer was lost.
    async fn start(upstream: String) -> (Self, String) {
        let gateway = Self::default();
        let seen = gateway.clone();
        let http = reqwest::Client::new();
        let handler = move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
            let (seen, http, upstream) = (seen.clone(), http.clone(), upstream.clone());
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                let first = {
                    let mut keys = seen.keys.lock().unwrap();
                    keys.push(key);
                    keys.len() == 1
                };
                let mut request = http.post(format!("{upstream}{uri}")).body(body.to_vec());
                for (name, value) in &headers {
                    if name != "host" && name != "content-length" {
                        request = request.header(name.as_str(), value.as_bytes());
                    }
                }
                let answer = request.send().await.unwrap();
                let status = AxumStatus::from_u16(answer.status().as_u16()).unwrap();
                let text = answer.text().await.unwrap();
                if first { (AxumStatus::BAD_GATEWAY, String::new()) } else { (status, text) }
            }
        };
        let router = axum::Router::new().fallback(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (gateway, url)
    }

    fn keys(&self) -> Vec<Option<String>> {
        self.keys.lock().unwrap().clone()
    }
}

impl Env {
    /// An Africa's Talking payment channel at `base_url`; with `callbacks`, the simulator
    /// sends its airtime results to the channel's status callback URL.
    async fn channel(&self, base_url: &str, callbacks: bool) -> Value {
        let new = json!({
            "provider": "africastalking", "channelNumber": ACCOUNT, "currencyCode": "KES",
            "baseUrl": base_url,
            "credentials": {"username": "sandbox", "apiKey": API_KEY},
        });
        let (status, body) =
            self.server.post(&self.server.org_key, "/v1/payment-channels", &new).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["credentialsSet"], json!(["apiKey", "username"]), "{body}");
        let path = body["airtimeStatusCallbackUrl"].as_str().unwrap();
        assert!(path.starts_with("/callbacks/africastalking-airtime/"), "{body}");
        if callbacks {
            let url = format!("{}{path}", self.server.base);
            self.at.configure(|config| config.airtime_status_url = Some(url));
        }
        body
    }

    /// A purse holding `amount` KES, paid from a float purse with an overdraft.
    async fn funded_purse(&self, amount: &str) -> String {
        common::funded_purse(&self.server, "airtime", amount).await.1
    }

    /// Asks for `amount` KES of airtime for `number`, paid from the purse: a payout to the
    /// customer's number on the airtime channel.
    async fn airtime(&self, purse: &str, number: &str, amount: &str) -> (StatusCode, Value) {
        self.server.post(&self.server.app_key, "/v1/payments", &payout(purse, number, amount)).await
    }

    async fn payment(&self, id: &str) -> Value {
        let (status, body) =
            self.server.get(&self.server.app_key, &format!("/v1/payments/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The payment once `check` holds of it (within a deadline).
    async fn until(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let waited = wait_for(what, Duration::from_secs(20), || async {
            let payment = self.payment(id).await;
            check(&payment).then_some(payment)
        })
        .await;
        match waited {
            Ok(payment) => payment,
            Err(error) => panic!("{error}: {}", self.payment(id).await),
        }
    }

    async fn settled(&self, id: &str) -> Value {
        self.until(id, "settled", |payment| {
            !matches!(payment["status"].as_str(), Some("queued" | "pending_confirmation"))
        })
        .await
    }

    /// An account's `actual/available` balance.
    async fn balance(&self, account: &str) -> String {
        let (status, body) =
            self.server.get(&self.server.org_key, &format!("/v1/accounts/{account}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let balance = &body["balance"];
        format!(
            "{}/{}",
            balance["actual"].as_str().unwrap(),
            balance["available"].as_str().unwrap()
        )
    }

    /// Posts an airtime status callback to `path` on the server.
    async fn callback(&self, path: &str, status: &AirtimeStatus) -> StatusCode {
        let response = self
            .server
            .http
            .post(format!("{}{path}", self.server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(status.form().unwrap())
            .send()
            .await
            .unwrap();
        StatusCode::from_u16(response.status().as_u16()).unwrap()
    }

    async fn invariants_hold(&self) {
        let violations = Store::new(self.server.db.pool()).verify().await.unwrap();
        assert!(violations.is_empty(), "{violations:?}");
    }
}

/// An airtime payout of `amount` from `purse` to `number`.
fn payout(purse: &str, number: &str, amount: &str) -> Value {
    json!({
        "debitParty": {"purse": {"purseId": purse}},
        "creditParty": {"customer": {
            "customerNumber": {"number": number, "provider": "cellular"},
            "channelNumber": ACCOUNT,
        }},
        "value": {"currencyCode": "KES", "amount": amount},
        "narration": "Airtime reward",
    })
}

/// A payment's first answer: 202 while the provider has it, 201 when its success callback beat
/// our response, 409 `payment_failed` when it failed first.
fn transaction_id(status: StatusCode, body: &Value) -> String {
    let expected = match (body["status"].as_str(), body["paymentStatus"].as_str()) {
        (Some("queued" | "pending_confirmation"), _) => StatusCode::ACCEPTED,
        (Some("success"), _) => StatusCode::CREATED,
        (_, Some("failed")) => StatusCode::CONFLICT,
        _ => panic!("{status} {body}"),
    };
    assert_eq!(status, expected, "{body}");
    body["transactionId"].as_str().unwrap().to_owned()
}

fn statuses(payment: &Value) -> Vec<String> {
    payment["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn airtime_is_reserved_sent_once_under_the_payment_id_and_posted_on_success() {
    let env = start().await;
    let channel = env.channel(&env.at_url, true).await;
    let purse = env.funded_purse("1000").await;
    let (status, body) = env.airtime(&purse, CUSTOMER, "100").await;
    let id = transaction_id(status, &body);
    let done = env.settled(&id).await;
    assert_eq!(done["status"], "success", "{done}");
    // The request on the wire: the customer, the face value, our id as the key.
    let requests = env.at.airtime_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].idempotency_key.as_deref(), Some(id.as_str()));
    assert_eq!(requests[0].form.username, "sandbox");
    let recipients = requests[0].form.recipients().unwrap();
    assert_eq!(recipients.len(), 1);
    assert_eq!(
        (recipients[0].phone_number.as_str(), recipients[0].amount.as_str()),
        (CUSTOMER, "KES 100.00")
    );
    // The provider's requestId is the receipt.
    let request_id = requests[0].answer.responses[0].request_id.clone().unwrap();
    assert!(request_id.starts_with("ATQid_"), "{request_id}");
    assert_eq!(done["receipt"], json!(request_id), "{done}");
    let history = statuses(&done);
    let expected = [vec!["queued", "pending_confirmation", "success"], vec!["queued", "success"]];
    assert!(expected.iter().any(|e| *e == history), "{done}");
    // The face value left the purse for the channel's clearing account; nothing is held.
    assert_eq!(env.balance(&purse).await, "900.00/900.00");
    let clearing = env.balance(channel["clearingAccountId"].as_str().unwrap()).await;
    assert_eq!(clearing, "-100.00/-100.00");
    // The callback was taken, once.
    assert!(env.at.settle(Duration::from_secs(5)).await);
    let callbacks = env.at.airtime_callbacks();
    assert_eq!(callbacks.len(), 1);
    assert!(callbacks[0].succeeded(), "{callbacks:?}");
    // Every change was told, in order.
    let (_, events) = env
        .server
        .get(&env.server.org_key, "/v1/events?limit=100&types=payment.status_changed")
        .await;
    let told: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["transactionId"] == json!(id))
        .map(|e| e["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(told, history);
    env.invariants_hold().await;
}

/// The simulator sends each status callback as it answers, so a callback often arrives while
/// the send is still recording the provider's `requestId`: whichever of the two commits last
/// must still find the other, or the payment waits for a callback already taken.
#[tokio::test]
async fn every_callback_that_races_its_answer_is_applied() {
    let env = start().await;
    env.channel(&env.at_url, true).await;
    let purse = env.funded_purse("10000").await;
    let mut payouts = tokio::task::JoinSet::new();
    for n in 0..24 {
        let (http, url) = (env.server.http.clone(), format!("{}/v1/payments", env.server.base));
        let (key, request) =
            (env.server.app_key.clone(), payout(&purse, &format!("+2547110001{n:02}"), "10"));
        payouts.spawn(async move {
            let response = http.post(url).bearer_auth(key).json(&request).send().await.unwrap();
            let status = response.status();
            transaction_id(status, &response.json().await.unwrap())
        });
    }
    let ids = payouts.join_all().await;
    for id in &ids {
        let done = env.settled(id).await;
        assert_eq!(done["status"], "success", "{done}");
    }
    assert_eq!(env.at.airtime_requests().len(), ids.len());
    assert_eq!(env.balance(&purse).await, "9760.00/9760.00");
    env.invariants_hold().await;
}

#[tokio::test]
async fn a_failed_callback_voids_and_the_purse_is_whole_again() {
    let env = start().await;
    env.channel(&env.at_url, true).await;
    let purse = env.funded_purse("1000").await;
    env.at.script_airtime(CUSTOMER, AirtimeScript::Failed { description: "Not delivered".into() });
    let (status, body) = env.airtime(&purse, CUSTOMER, "250").await;
    let id = transaction_id(status, &body);
    let done = env.settled(&id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["receipt"], Value::Null, "{done}");
    assert_eq!(env.at.airtime_requests().len(), 1);
    assert_eq!(env.balance(&purse).await, "1000.00/1000.00");
    env.invariants_hold().await;
}

#[tokio::test]
async fn airtime_refused_in_the_answer_is_voided_at_once() {
    let env = start().await;
    env.channel(&env.at_url, true).await;
    let purse = env.funded_purse("1000").await;
    env.at.script_airtime(
        CUSTOMER,
        AirtimeScript::Refused { error_message: "Insufficient Credit".into() },
    );
    let (status, body) = env.airtime(&purse, CUSTOMER, "100").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "payment_failed", "{body}");
    let id = body["transactionId"].as_str().unwrap();
    let payment = env.payment(id).await;
    assert_eq!(payment["status"], "failed", "{payment}");
    assert_eq!(statuses(&payment), vec!["queued", "failed"]);
    assert_eq!(env.balance(&purse).await, "1000.00/1000.00");
    // Nothing was sent, so no result comes.
    assert!(env.at.settle(Duration::from_secs(5)).await);
    assert!(env.at.airtime_callbacks().is_empty());
    // A collection is not what an airtime channel does: refused before anything is reserved.
    let collect = json!({
        "debitParty": {"customer": {
            "customerNumber": {"number": CUSTOMER, "provider": "cellular"},
            "channelNumber": ACCOUNT,
        }},
        "creditParty": {"purse": {"purseId": purse}},
        "value": {"currencyCode": "KES", "amount": "100"},
    });
    let (status, body) = env.server.post(&env.server.app_key, "/v1/payments", &collect).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(env.balance(&purse).await, "1000.00/1000.00");
    env.invariants_hold().await;
}

/// The simulator's airtime send has no outage switch (`fail_next_sends` is SMS only), so a
/// gateway in front of it loses the first answer: the send reached the provider, its outcome
/// is unknown to us. The worker sends it again under the same key, the provider answers as
/// the first time, and the airtime goes once.
#[tokio::test]
async fn an_unanswered_send_is_sent_again_under_the_same_key_and_airtime_goes_once() {
    let env = start().await;
    let (gateway, gateway_url) = Gateway::start(env.at_url.clone()).await;
    env.channel(&gateway_url, true).await;
    let purse = env.funded_purse("1000").await;
    let (status, body) = env.airtime(&purse, CUSTOMER, "100").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "queued", "{body}");
    let id = body["transactionId"].as_str().unwrap().to_owned();
    // Held meanwhile.
    let reserved = env.balance(&purse).await;
    assert!(reserved == "1000.00/900.00" || reserved == "900.00/900.00", "{reserved}");
    let done = env.settled(&id).await;
    assert_eq!(done["status"], "success", "{done}");
    // Sent twice through the gateway, under the payment's id both times; taken once.
    let keys = gateway.keys();
    assert!(keys.len() >= 2, "{keys:?}");
    assert!(keys.iter().all(|key| key.as_deref() == Some(id.as_str())), "{keys:?}");
    let requests = env.at.airtime_requests();
    assert_eq!(requests.len(), 1, "the provider took one send");
    assert_eq!(
        done["receipt"],
        json!(requests[0].answer.responses[0].request_id),
        "the result that came before we knew its requestId was kept and applied: {done}"
    );
    assert!(env.at.settle(Duration::from_secs(5)).await);
    assert_eq!(env.at.airtime_callbacks().len(), 1);
    assert_eq!(env.balance(&purse).await, "900.00/900.00");
    env.invariants_hold().await;
}

#[tokio::test]
async fn a_callback_without_the_token_or_for_another_request_or_amount_moves_nothing() {
    let env = start().await;
    // The simulator sends no results here: the test sends them.
    let channel = env.channel(&env.at_url, false).await;
    let path = channel["airtimeStatusCallbackUrl"].as_str().unwrap().to_owned();
    let channel_id = channel["channelId"].as_str().unwrap();
    let forged_path =
        format!("/callbacks/africastalking-airtime/{channel_id}/not-the-token/status");
    let purse = env.funded_purse("1000").await;
    let mut payments = Vec::new();
    for number in [CUSTOMER, OTHER_CUSTOMER] {
        let (status, body) = env.airtime(&purse, number, "100").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let id = body["transactionId"].as_str().unwrap().to_owned();
        env.until(&id, "sent", |p| p["status"] == "pending_confirmation").await;
        payments.push(id);
    }
    let requests = env.at.airtime_requests();
    let request_id = |n: usize| requests[n].answer.responses[0].request_id.clone().unwrap();
    let success = |request_id: String, number: &str, value: &str| AirtimeStatus {
        request_id,
        status: "Success".into(),
        phone_number: Some(number.into()),
        description: Some("Airtime Delivered Successfully".into()),
        discount: Some("KES 4.0000".into()),
        value: Some(value.into()),
    };
    let (a, b) = (&payments[0], &payments[1]);
    assert_eq!(env.balance(&purse).await, "1000.00/800.00");

    // Without the token: a hint, stored; Africa's Talking cannot be asked, so nothing moves.
    let forged = success(request_id(0), CUSTOMER, "KES 100.0000");
    assert_eq!(env.callback(&forged_path, &forged).await, StatusCode::OK);
    // With the token, for a request we never sent: parked, nothing moves.
    let unknown = success("ATQid_forged".into(), CUSTOMER, "KES 100.0000");
    assert_eq!(env.callback(&path, &unknown).await, StatusCode::OK);
    // With the token, naming our own id instead of the provider's requestId: refused.
    let ours = success(a.clone(), CUSTOMER, "KES 100.0000");
    assert_eq!(env.callback(&path, &ours).await, StatusCode::BAD_REQUEST);
    // With the token and B's requestId, for another amount: held for an operator, still
    // reserved.
    let more = success(request_id(1), OTHER_CUSTOMER, "KES 1000.0000");
    assert_eq!(env.callback(&path, &more).await, StatusCode::OK);
    let held = env.payment(b).await;
    assert_eq!(held["status"], "held_for_review", "{held}");
    // A (asked about in the meantime, to no avail) and the purse are as they were.
    let pending = env.until(a, "asked about", |p| p["status"] == "pending_confirmation").await;
    assert_eq!(pending["receipt"], Value::Null, "{pending}");
    assert_eq!(env.balance(&purse).await, "1000.00/800.00");

    // The provider's own word, with the token, settles A; B stays held even then.
    let genuine = success(request_id(0), CUSTOMER, "KES 100.0000");
    assert_eq!(env.callback(&path, &genuine).await, StatusCode::OK);
    let done = env.payment(a).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["receipt"], json!(request_id(0)));
    let late = success(request_id(1), OTHER_CUSTOMER, "KES 100.0000");
    assert_eq!(env.callback(&path, &late).await, StatusCode::OK);
    assert_eq!(env.payment(b).await["status"], "held_for_review");
    assert_eq!(env.balance(&purse).await, "900.00/800.00");
    env.invariants_hold().await;
}
