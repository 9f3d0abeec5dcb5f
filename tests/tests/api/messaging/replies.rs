//! The stream's reply endpoint: an app that reads the event stream (no webhook endpoint)
//! answers USSD steps with `POST /v1/events/{eventId}/reply`, within the provider's deadline;
//! one answer per step, whoever sends it first.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hazina_simulator::africastalking::UssdEnding;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{CUSTOMER, Env, start, ussd_app};

/// The app's menu: the screen for what the customer typed last.
fn menu(input: &str) -> Value {
    let (text, last) = match input {
        "" => ("Welcome\n1. Balance\n2. Pay", false),
        "1" => ("Your balance is KES 250", true),
        "2" => ("Enter amount", false),
        _ => ("Paid. Thank you", true),
    };
    json!({"body": {"kind": "ussd", "text": text, "isTerminal": last}})
}

/// An app on the event stream (its app key, `message.received` only) that answers every step
/// it reads through the reply endpoint; every reply's answer, in order.
fn stream_app(env: &Env) -> Arc<Mutex<Vec<(StatusCode, Value)>>> {
    let answers = Arc::new(Mutex::new(Vec::new()));
    let (http, base, key) =
        (env.server.http.clone(), env.server.base.clone(), env.server.app_key.clone());
    let seen = Arc::clone(&answers);
    tokio::spawn(async move {
        let url = format!("{base}/v1/events/stream?after=0&types=message.received");
        let mut stream = http.get(url).bearer_auth(&key).send().await.unwrap();
        let mut pending = String::new();
        while let Ok(Some(chunk)) = stream.chunk().await {
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find("\n\n") {
                let frame: String = pending.drain(..end + 2).collect();
                let Some(data) = frame.lines().find_map(|line| line.strip_prefix("data:")) else {
                    continue;
                };
                let event: Value = serde_json::from_str(data.trim()).unwrap();
                let input = event["data"]["parts"][0]["text"].as_str().unwrap_or("").to_owned();
                let reply = format!("{base}/v1/events/{}/reply", event["id"].as_str().unwrap());
                let response =
                    http.post(reply).bearer_auth(&key).json(&menu(&input)).send().await.unwrap();
                let status = response.status();
                let answer = response.json().await.unwrap_or_default();
                seen.lock().unwrap().push((status, answer));
            }
        }
    });
    answers
}

/// The stream app's answers once it has had `count` (its answer comes back after the provider
/// may already have had the reply).
async fn all_answered(
    answers: &Mutex<Vec<(StatusCode, Value)>>,
    count: usize,
) -> Vec<(StatusCode, Value)> {
    let waited = hazina_tests::wait_for("the app's replies", Duration::from_secs(10), || async {
        let answers = answers.lock().unwrap().clone();
        (answers.len() >= count).then_some(answers)
    });
    waited.await.unwrap()
}

async fn received(env: &Env) -> Vec<Value> {
    let (status, page) =
        env.server.get(&env.server.org_key, "/v1/events?types=message.received").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["events"].as_array().unwrap().clone()
}

async fn reply(env: &Env, event: &str, body: &Value) -> (StatusCode, Value) {
    env.server.post(&env.server.app_key, &format!("/v1/events/{event}/reply"), body).await
}

#[tokio::test]
async fn an_app_on_the_stream_answers_a_ussd_menu_through_the_reply_endpoint() {
    let env = start().await;
    env.channel("ussd", "*384*125#", None).await;
    let answers = stream_app(&env);
    let session = env.at.dial(CUSTOMER, "*384*125#", &["2", "150"]).await;
    assert_eq!(
        session.screens,
        vec!["Welcome\n1. Balance\n2. Pay", "Enter amount", "Paid. Thank you"]
    );
    assert_eq!(session.ending, UssdEnding::Completed);
    let answers = all_answered(&answers, 3).await;
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        assert_eq!(answer["source"], "stream", "{answer}");
    }
    // Each step is answered once: a second reply is refused and changes nothing.
    let first = answers[0].1["eventId"].as_str().unwrap().to_owned();
    let (status, body) = reply(&env, &first, &menu("1")).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("reply_not_awaited")));
    // The session ended completed, never app_error.
    let (_, sessions) =
        env.server.get(&env.server.org_key, "/v1/events?types=messaging.session_changed").await;
    let statuses: Vec<&str> = (sessions["events"].as_array().unwrap().iter())
        .map(|e| e["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["active", "completed"], "{sessions}");
}

#[tokio::test]
async fn a_reply_too_late_wrong_or_to_no_step_is_refused_and_the_fallback_stands() {
    let env = start().await;
    env.channel("ussd", "*384*126#", None).await;
    // Nobody answers: the customer gets the channel's fallback.
    let session = env.at.dial(CUSTOMER, "*384*126#", &[]).await;
    assert_eq!(session.screens.len(), 1, "{session:?}");
    assert!(session.screens[0].starts_with("Sorry"), "{session:?}");
    let steps = received(&env).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    let step = steps[0]["id"].as_str().unwrap();
    // After the deadline: refused, and the provider was answered once, with the fallback.
    let (status, body) = reply(&env, step, &menu("")).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("reply_not_awaited")));
    // A body that is no USSD screen, or too long for one.
    let text = json!({"body": {"kind": "text", "text": "hello"}});
    let (status, body) = reply(&env, step, &text).await;
    let code = body["code"].as_str();
    assert_eq!((status, code), (StatusCode::UNPROCESSABLE_ENTITY, Some("unsupported_body")));
    let long = json!({"body": {"kind": "ussd", "text": "x".repeat(183), "isTerminal": true}});
    let (status, body) = reply(&env, step, &long).await;
    let code = body["code"].as_str();
    assert_eq!((status, code), (StatusCode::UNPROCESSABLE_ENTITY, Some("message_too_long")));
    // An event that is no session step, and one that does not exist.
    let (_, sessions) =
        env.server.get(&env.server.org_key, "/v1/events?types=messaging.session_changed").await;
    let other = sessions["events"][0]["id"].as_str().unwrap();
    let (status, body) = reply(&env, other, &menu("")).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("reply_not_awaited")));
    let missing = uuid::Uuid::new_v4();
    let (status, body) = reply(&env, &missing.to_string(), &menu("")).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

/// A webhook that answers every step at once and an app on the stream that answers too: the
/// provider gets exactly one of the two for each step, and the other is told it was too late.
#[tokio::test]
async fn a_webhook_and_the_stream_answering_together_reach_the_provider_once() {
    let env = start().await;
    env.channel("ussd", "*384*127#", None).await;
    ussd_app(&env, false).await;
    let answers = stream_app(&env);
    let session = env.at.dial(CUSTOMER, "*384*127#", &["2", "150"]).await;
    assert_eq!(
        session.screens,
        vec!["Welcome\n1. Balance\n2. Pay", "Enter amount", "Paid. Thank you"]
    );
    for (status, answer) in &all_answered(&answers, 3).await {
        let took = *status == StatusCode::OK && answer["source"] == "stream";
        let late = *status == StatusCode::CONFLICT && answer["code"] == "reply_not_awaited";
        assert!(took || late, "{status} {answer}");
    }
}
