//! A provider that hangs, end to end over real HTTP: the Africa's Talking simulator holds SMS
//! sends far past the server's provider timeout; each attempt is given up at the timeout and
//! tried again after the backoff (doubling), the message stays queued with its cost reserved
//! under one reservation, and once the provider answers again it is taken once, delivered and
//! its cost posted once. A layer in front of the simulator notes when each send arrived, hung
//! ones included: the attempts as the provider saw them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hazina_simulator::africastalking::{Config, Simulator};
use hazina_tests::{ApiServer, messaging_test_settings, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Env, statuses};

const CUSTOMER: &str = "+254711000003";
const SHORT_CODE: &str = "21525";
const API_KEY: &str = "at-api-key";
/// How long the server gives the provider: short, so that the backoff is most of the wait
/// between attempts and a missing backoff cannot hide in the timeout.
const PROVIDER_TIMEOUT: Duration = Duration::from_millis(300);
/// The first wait before a send is tried again (then 2 s, 4 s, …).
const RETRY_BASE: Duration = Duration::from_secs(1);

/// A server with a short provider timeout, and the simulator behind a layer that notes when
/// each SMS send arrives.
async fn start() -> (Env, Arc<Mutex<Vec<Instant>>>) {
    let settings = hazina_server::messaging::Settings {
        provider_timeout: PROVIDER_TIMEOUT,
        retry_base: RETRY_BASE,
        ..messaging_test_settings()
    };
    let server = ApiServer::start_with_messaging(settings).await;
    let at = Simulator::new(Config::new(API_KEY));
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let noted = Arc::clone(&arrivals);
    let router = at.router().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let noted = Arc::clone(&noted);
            async move {
                if request.uri().path() == "/version1/messaging" {
                    noted.lock().unwrap().push(Instant::now());
                }
                next.run(request).await
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (Env { server, at, at_url }, arrivals)
}

/// The purse's statement lines of message costs: (code, transfer, amount, pending amount).
async fn message_cost_lines(env: &Env, purse: &str) -> Vec<(String, String, String, String)> {
    let path = format!("/v1/accounts/{purse}/statement?limit=100");
    let (status, statement) = env.server.get(&env.server.org_key, &path).await;
    assert_eq!(status, StatusCode::OK, "{statement}");
    let text = |line: &Value, name: &str| line[name].as_str().unwrap().to_owned();
    statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|line| line["code"].as_str().unwrap().starts_with("message_cost"))
        .map(|line| {
            (
                text(line, "code"),
                text(line, "transferId"),
                text(line, "amount"),
                text(line, "pendingAmount"),
            )
        })
        .collect()
}

fn at(change: &Value) -> chrono::DateTime<chrono::Utc> {
    change["at"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_provider_that_hangs_is_given_up_at_the_timeout_retried_after_backoff_and_sent_once() {
    let (env, arrivals) = start().await;
    let purse = env.purse("10.00").await;
    let channel = env.channel("sms", SHORT_CODE, Some(&purse)).await;
    // Every send hangs far past the provider timeout, until the outage is over.
    env.at.hang_next_sends(1_000, Duration::from_secs(120));
    let request = json!({
        "channelId": channel["id"], "customerNumber": CUSTOMER,
        "body": {"kind": "text", "text": "Your order has shipped"},
    });
    let (status, sent) = env.send(&request).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();

    // Two attempts hung and the first was given up: while the provider is out nothing can be
    // taken, so what the message and the purse say now is settled, not a moment of a race.
    wait_for("two attempts hung", Duration::from_secs(20), || async {
        (env.at.outage_hits() >= 2).then_some(())
    })
    .await
    .unwrap();
    let waiting = env.message(&id).await;
    assert_eq!(waiting["status"], "queued", "{waiting}");
    assert_eq!(statuses(&waiting), ["queued"], "{waiting}");
    let reason = waiting["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no answer within"), "{waiting}");
    assert_eq!(waiting["cost"], Value::Null, "{waiting}");
    // Reserved, not charged: the purse holds its 10.00, 0.80 of it pending for the message.
    assert_eq!(env.balance(&purse).await, "10.00/9.20");
    assert_eq!(
        message_cost_lines(&env, &purse).await,
        [("message_cost".to_owned(), id.clone(), "0.00".to_owned(), "0.80".to_owned())]
    );
    // A hung request is not taken.
    assert!(env.at.sms_requests().is_empty());
    let hung = env.at.outage_hits();

    // The provider answers again: the next attempt is taken.
    env.at.clear();
    let delivered = wait_for("the message delivered", Duration::from_secs(30), || async {
        let message = env.message(&id).await;
        (message["status"] == "delivered").then_some(message)
    })
    .await
    .unwrap();
    let requests = env.at.sms_requests();
    assert_eq!(requests.len(), 1, "taken once: {requests:?}");
    assert_eq!(requests[0].recipients(), vec![CUSTOMER]);
    assert_eq!(delivered["providerMessageId"], json!(requests[0].message_ids[0]));
    // Never failed or expired on the way: queued until taken.
    assert_eq!(statuses(&delivered), ["queued", "sent", "delivered"]);
    // The reservation made when it was queued was posted, once; nothing else was charged.
    assert_eq!(delivered["cost"]["amount"], "0.80", "{delivered}");
    assert_eq!(env.balance(&purse).await, "9.20/9.20");
    let lines = message_cost_lines(&env, &purse).await;
    assert_eq!(lines[0].1, id, "{lines:?}");
    let moves: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|(code, _, amount, pending)| (code.as_str(), amount.as_str(), pending.as_str()))
        .collect();
    assert_eq!(moves, [("message_cost", "0.00", "0.80"), ("message_cost_post", "0.80", "-0.80")]);

    // Each attempt waited out its backoff step after the one before gave up: 1 s, then 2 s,
    // … (without a backoff an attempt would follow the last by little more than the timeout).
    let arrivals = arrivals.lock().unwrap().clone();
    assert!(arrivals.len() > hung, "{} attempts, {hung} hung", arrivals.len());
    for (step, pair) in arrivals.windows(2).enumerate() {
        let backoff = RETRY_BASE * 2_u32.pow(u32::try_from(step).unwrap());
        let gap = pair[1] - pair[0];
        assert!(gap >= backoff, "attempt {} came {gap:?} after the one before", step + 2);
    }
    // The server's own times say the same: taken no sooner than the first attempt's timeout
    // and the first backoff step after it was queued.
    let history = delivered["history"].as_array().unwrap();
    let waited = (at(&history[1]) - at(&history[0])).to_std().unwrap();
    assert!(waited >= RETRY_BASE + PROVIDER_TIMEOUT, "sent {waited:?} after queued");
    // And every change was an event: none for the attempts that hung.
    assert_eq!(env.told_statuses().await, ["queued", "sent", "delivered"]);
}
