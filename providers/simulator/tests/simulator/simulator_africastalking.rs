//! The Africa's Talking simulator over real loopback HTTP, driven by the providers' client:
//! SMS sends with their answers, delivery reports and outages; inbound messages; USSD
//! sessions; voice calls in and out; airtime with its callbacks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse as _, Response};
use hazina_providers::Secret;
use hazina_providers::africastalking::airtime::{AirtimeOutcome, AirtimeRecipient, AirtimeStatus};
use hazina_providers::africastalking::client::{Client, ClientError, Config, send_results};
use hazina_providers::africastalking::voice::{self, VoiceCallback};
use hazina_providers::africastalking::{
    DeliveryReport, InboundSms, SendSms, UssdReply, UssdSessionEnd, UssdStep,
};
use hazina_providers::http::HttpClient;
use hazina_providers::messaging::{
    Body, Channel, DeliveryStatus, InboundPart, Prompt, Say, SendResult, UssdSessionStatus,
    VoiceAction, VoiceCallStatus,
};
use hazina_providers::money::{Currency, Money};
use hazina_simulator::africastalking::{
    self as at, AirtimeScript, CallEnding, Simulator, SmsScript, UssdEnding,
};

use crate::common::{DEADLINE, serve};

const API_KEY: &str = "atsk_simulated_key_do_not_print";
const SHORT_CODE: &str = "28901";

/// What our side of the callbacks saw: every request's path and body.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    fn bodies(&self, path: &str) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|(seen, _)| seen == path).map(|(_, body)| body.clone()).collect()
    }
}

fn kes(amount: &str) -> Money {
    Money::parse(Currency::from_code("KES").unwrap(), amount).unwrap()
}

fn say(text: &str) -> VoiceAction {
    VoiceAction::Say(Say { text: text.into(), voice: None, play_beep: false })
}

/// Our application's side: records every callback and answers USSD steps and voice
/// callbacks as a small app would.
async fn app(State(receiver): State<Receiver>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body).into_owned();
    receiver.seen.lock().unwrap().push((path.clone(), text));
    match path.as_str() {
        "/ussd" => ussd_menu(&body).into_response(),
        "/ussd-slow" => std::future::pending().await,
        "/voice" | "/voice/digits" => voice_app(&host, &path, &body).into_response(),
        "/voice-reject" => voice::render(&[VoiceAction::Reject], None).unwrap().into_response(),
        _ => "".into_response(),
    }
}

fn ussd_menu(body: &Bytes) -> String {
    let step = UssdStep::from_form(body).unwrap();
    let reply = match step.inputs().as_slice() {
        [] => UssdReply::Continue("1. Balance\n2. Pay".into()),
        ["1"] => UssdReply::End("Your balance is KES 10".into()),
        ["2"] => UssdReply::Continue("Amount?".into()),
        ["2", amount] => UssdReply::End(format!("Paying {amount}")),
        _ => UssdReply::End("Invalid".into()),
    };
    reply.body()
}

fn voice_app(host: &str, path: &str, body: &Bytes) -> String {
    let callback = VoiceCallback::from_form(body).unwrap();
    if !callback.is_active() {
        return String::new();
    }
    let actions = match (path, callback.dtmf_digits.as_deref()) {
        ("/voice/digits", Some("1")) => vec![say("You pressed one <&>")],
        ("/voice/digits", _) => vec![say("Goodbye")],
        _ => vec![
            say("Welcome"),
            VoiceAction::GetDigits {
                prompt: Some(Prompt::Say(Say {
                    text: "Press 1".into(),
                    voice: None,
                    play_beep: false,
                })),
                timeout_seconds: Some(10),
                finish_on_key: Some("#".into()),
                num_digits: Some(1),
            },
        ],
    };
    let digits_url = format!("http://{host}/voice/digits");
    voice::render(&actions, Some(&digits_url)).unwrap()
}

struct Env {
    sim: Simulator,
    receiver: Receiver,
    client: Client,
    base: String,
    app: String,
}

async fn start() -> Env {
    let receiver = Receiver::default();
    let app_url = serve(axum::Router::new().fallback(app).with_state(receiver.clone())).await;
    let sim = Simulator::new(at::Config::new(API_KEY));
    let base = serve(sim.router()).await;
    sim.configure(|config| {
        config.delivery_report_url = Some(format!("{app_url}/dlr"));
        config.inbound_sms_url = Some(format!("{app_url}/inbound"));
        config.ussd_url = Some(format!("{app_url}/ussd"));
        config.ussd_end_url = Some(format!("{app_url}/ussd-end"));
        config.voice_url = Some(format!("{app_url}/voice"));
        config.airtime_status_url = Some(format!("{app_url}/airtime"));
    });
    let client = client(&base, API_KEY, Duration::from_secs(10));
    Env { sim, receiver, client, base, app: app_url }
}

fn client(base: &str, key: &str, timeout: Duration) -> Client {
    Client::new(Config::at(base, "hazina", Secret::new(key)), HttpClient { timeout })
}

fn reports(receiver: &Receiver) -> Vec<DeliveryReport> {
    receiver
        .bodies("/dlr")
        .iter()
        .map(|body| DeliveryReport::from_form(body.as_bytes()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_bulk_send_is_answered_per_recipient_and_reported_as_scripted() {
    let env = start().await;
    env.sim.script_sms("+254711000002", SmsScript::Failed { reason: "UserDoesNotExist".into() });
    env.sim
        .script_sms("+254711000003", SmsScript::Rejected { reason: Some("InvalidLinkId".into()) });
    env.sim.script_sms("+254711000004", SmsScript::Refused { status_code: 406 });
    let numbers = ["+254711000001", "+254711000002", "+254711000003", "+254711000004", "0711"];
    let outcome = env.client.send_sms(&numbers, "Habari!", Some("HAZINA")).await;
    let answer = outcome.as_ref().unwrap();
    assert_eq!(answer.data.message, "Sent to 3/5 Total Cost: KES 2.4000");
    let results = send_results(&numbers, &outcome);
    let mut ids = Vec::new();
    for (number, result) in &results[..3] {
        let SendResult::Accepted { provider_message_id: Some(id), status, cost } = result else {
            panic!("{number}: {result:?}")
        };
        assert!(id.starts_with("ATXid_"), "{id}");
        assert_eq!(*status, DeliveryStatus::Sent);
        assert_eq!(*cost, Some(kes("0.80")));
        ids.push(id.clone());
    }
    assert!(matches!(&results[3].1, SendResult::Refused { status: DeliveryStatus::NoConsent, .. }));
    assert!(matches!(
        &results[4].1,
        SendResult::Refused { status: DeliveryStatus::NotSupported, .. }
    ));

    assert!(env.sim.settle(DEADLINE).await);
    let mut updates: Vec<_> =
        reports(&env.receiver).iter().map(DeliveryReport::status_update).collect();
    updates.sort_by_key(|update| ids.iter().position(|id| *id == update.provider_message_id));
    let statuses: Vec<_> = updates.iter().map(|update| update.status).collect();
    assert_eq!(
        statuses,
        [
            DeliveryStatus::Delivered,
            DeliveryStatus::CustomerNumberNotFound,
            DeliveryStatus::InvalidReplyToken
        ]
    );
    assert_eq!(updates[1].reason.as_deref(), Some("UserDoesNotExist"));

    let recorded = env.sim.sms_requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].recipients(), numbers);
    assert_eq!(recorded[0].form.message, "Habari!");
    assert_eq!(recorded[0].form.from.as_deref(), Some("HAZINA"));
    assert_eq!(recorded[0].form.username, "hazina");
    assert_eq!(env.sim.sms_counts(), (1, 5));
}

#[tokio::test]
async fn the_cost_is_the_price_per_segment() {
    let env = start().await;
    let long = "a".repeat(161);
    let unicode = "Karibu 😀";
    for (text, cost) in [(long.as_str(), "1.60"), (unicode, "0.80")] {
        let outcome = env.client.send_sms(&["+254711000001"], text, None).await;
        let results = send_results(&["+254711000001"], &outcome);
        let SendResult::Accepted { cost: Some(charged), .. } = &results[0].1 else {
            panic!("{results:?}")
        };
        assert_eq!(*charged, kes(cost), "{text}");
    }
    assert_eq!(env.sim.sms_requests()[0].segments, 2);
}

#[tokio::test]
async fn duplicate_late_and_missing_reports_are_sent_as_scripted() {
    let env = start().await;
    env.sim.script_sms("+254711000001", SmsScript::ReportTwice);
    env.sim.script_sms("+254711000002", SmsScript::OutOfOrder);
    env.sim.script_sms("+254711000003", SmsScript::NoReport);
    let numbers = ["+254711000001", "+254711000002", "+254711000003"];
    let outcome = env.client.send_sms(&numbers, "x", None).await;
    let results = send_results(&numbers, &outcome);
    let id = |index: usize| match &results[index].1 {
        SendResult::Accepted { provider_message_id: Some(id), .. } => id.clone(),
        other => panic!("{other:?}"),
    };
    assert!(env.sim.settle(DEADLINE).await);
    let seen = reports(&env.receiver);
    assert_eq!(seen.len(), 4);
    assert_eq!(seen.iter().filter(|report| report.id == id(0)).count(), 2);
    let late: Vec<_> = seen.iter().filter(|report| report.id == id(1)).collect();
    // Sent one after the other, so they arrive in this order: the late `Sent` ranks lower.
    assert_eq!(late.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(), ["Success", "Sent"]);
    assert!(late[1].delivery_status().rank() < late[0].delivery_status().rank());
    assert!(seen.iter().all(|report| report.id != id(2)));
    assert!(env.sim.reports().iter().all(at::Delivery::succeeded));
}

#[tokio::test]
async fn a_wrong_key_is_refused_as_our_fault() {
    let env = start().await;
    let wrong = client(&env.base, "not-the-key", Duration::from_secs(10));
    let outcome = wrong.send_sms(&["+254711000001"], "x", None).await;
    assert!(matches!(outcome, Err(ClientError::Refused { status: 401, .. })), "{outcome:?}");
    let results = send_results(&["+254711000001"], &outcome);
    assert!(matches!(
        &results[0].1,
        SendResult::Refused { status: DeliveryStatus::ApplicationError, .. }
    ));
    assert!(!format!("{outcome:?}").contains("not-the-key"));
    assert!(env.sim.sms_requests().is_empty());
}

#[tokio::test]
async fn an_outage_is_retried_and_then_the_send_goes_through() {
    let env = start().await;
    env.sim.fail_next_sends(1);
    env.sim.hang_next_sends(1, Duration::from_secs(5));
    let impatient = client(&env.base, API_KEY, Duration::from_millis(300));
    for _ in 0..2 {
        let outcome = impatient.send_sms(&["+254711000001"], "x", None).await;
        let results = send_results(&["+254711000001"], &outcome);
        assert!(matches!(&results[0].1, SendResult::Retry { .. }), "{results:?}");
    }
    assert_eq!(env.sim.outage_hits(), 2);
    let outcome = env.client.send_sms(&["+254711000001"], "x", None).await;
    assert!(matches!(
        &send_results(&["+254711000001"], &outcome)[0].1,
        SendResult::Accepted { .. }
    ));
    assert_eq!(env.sim.sms_counts(), (1, 1));
}

#[tokio::test]
async fn a_premium_send_carries_its_keyword_and_link_id() {
    let env = start().await;
    let send = SendSms::new("hazina", &["+254711000001"], "Reply", Some(SHORT_CODE)).premium(
        Some("NEWS"),
        Some("link-1"),
        None,
    );
    env.client.send(&send).await.unwrap();
    let recorded = &env.sim.sms_requests()[0].form;
    assert_eq!(
        (recorded.keyword.as_deref(), recorded.link_id.as_deref()),
        (Some("NEWS"), Some("link-1"))
    );
    assert_eq!(recorded.bulk_sms_mode, 0);
}

#[tokio::test]
async fn a_thousand_recipients_are_answered_and_reported() {
    let env = start().await;
    let numbers: Vec<String> = (0..1000).map(|n| format!("+2547110{n:05}")).collect();
    let numbers: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let outcome = env.client.send_sms(&numbers, "Bulk", None).await;
    let results = send_results(&numbers, &outcome);
    assert_eq!(results.len(), 1000);
    assert!(results.iter().all(|(_, result)| matches!(result, SendResult::Accepted { .. })));
    assert!(env.sim.settle(Duration::from_secs(60)).await);
    assert_eq!(reports(&env.receiver).len(), 1000);
}

#[tokio::test]
async fn an_inbound_message_reaches_our_url() {
    let env = start().await;
    let delivery = env
        .sim
        .inject_inbound("+254711000001", SHORT_CODE, "STOP & go", Some("link-9"))
        .await
        .unwrap();
    assert!(delivery.succeeded());
    let body = env.receiver.bodies("/inbound").pop().unwrap();
    let message = InboundSms::from_form(body.as_bytes()).unwrap();
    assert_eq!(message.link_id.as_deref(), Some("link-9"));
    let inbound = message.inbound();
    assert_eq!(inbound.channel, Channel::Sms);
    assert_eq!(
        (inbound.customer.as_str(), inbound.channel_number.as_str()),
        ("+254711000001", SHORT_CODE)
    );
    assert_eq!(inbound.parts, vec![InboundPart::Text { text: "STOP & go".into() }]);
    assert!(inbound.received_at.is_some());
}

#[tokio::test]
async fn a_ussd_session_is_driven_step_by_step_and_ends_with_a_notification() {
    let env = start().await;
    let session = env.sim.dial("+254711000001", "*384*1234#", &["2", "500"]).await;
    assert_eq!(session.screens, ["1. Balance\n2. Pay", "Amount?", "Paying 500"]);
    assert_eq!(session.ending, UssdEnding::Completed);
    let steps: Vec<UssdStep> = env
        .receiver
        .bodies("/ussd")
        .iter()
        .map(|b| UssdStep::from_form(b.as_bytes()).unwrap())
        .collect();
    assert_eq!(steps.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(), ["", "2", "2*500"]);
    assert!(steps.iter().all(|step| step.session_id == session.session_id));
    assert_eq!(steps[2].inbound().channel_number, "*384*1234#");
    let end = UssdSessionEnd::from_form(env.receiver.bodies("/ussd-end")[0].as_bytes()).unwrap();
    assert_eq!(end.session_status(), UssdSessionStatus::Completed);
    assert_eq!(end.input.as_deref(), Some("2*500"));
    assert_eq!(end.last_app_response.as_deref(), Some("END Paying 500"));

    // The customer leaves a menu that waits for more.
    let left = env.sim.dial("+254711000001", "*384*1234#", &[]).await;
    assert_eq!(left.ending, UssdEnding::CustomerLeft);
    let end = UssdSessionEnd::from_form(left.notification.unwrap().body.as_bytes()).unwrap();
    assert_eq!(end.session_status(), UssdSessionStatus::Incomplete);
    assert_eq!(env.sim.ussd_sessions().len(), 2);
}

#[tokio::test]
async fn a_slow_ussd_app_times_the_session_out() {
    let env = start().await;
    let app = env.app.clone();
    env.sim.configure(|config| {
        config.ussd_url = Some(format!("{app}/ussd-slow"));
        config.ussd_timeout = Duration::from_millis(200);
    });
    let session = env.sim.dial("+254711000001", "*384#", &["1"]).await;
    assert_eq!(session.ending, UssdEnding::TimedOut);
    assert!(session.screens.is_empty());
    let end = UssdSessionEnd::from_form(env.receiver.bodies("/ussd-end")[0].as_bytes()).unwrap();
    assert_eq!(end.status, "Failed");
    assert!(end.error_message.is_some());
}

#[tokio::test]
async fn an_inbound_call_follows_the_xml_and_ends_with_its_cost() {
    let env = start().await;
    let call = env.sim.call_in("+254711000001", "+254711999999", &["1"]).await;
    assert_eq!(call.ending, CallEnding::Completed);
    assert_eq!(call.answers.len(), 2);
    assert_eq!(
        call.answers[1].platform_actions(),
        vec![say("You pressed one <&>")],
        "the escaped text reads back"
    );
    let digits =
        VoiceCallback::from_form(env.receiver.bodies("/voice/digits")[0].as_bytes()).unwrap();
    let InboundPart::Voice(input) = &digits.inbound().parts[0] else { panic!() };
    assert_eq!(input.dtmf_digits.as_deref(), Some("1"));
    let voice_bodies = env.receiver.bodies("/voice");
    assert_eq!(voice_bodies.len(), 2, "the first callback and the final one");
    let last = VoiceCallback::from_form(voice_bodies[1].as_bytes()).unwrap().inbound();
    assert_eq!(last.channel, Channel::Voice);
    assert_eq!(
        (last.customer.as_str(), last.channel_number.as_str()),
        ("+254711000001", "+254711999999")
    );
    let InboundPart::Voice(input) = &last.parts[0] else { panic!() };
    assert_eq!(input.status, VoiceCallStatus::Completed);
    assert_eq!(input.duration_seconds, Some(call.duration_seconds));
    assert_eq!(last.cost, Some(kes("3")), "one started minute");
    assert_eq!(last.session_id.as_deref(), Some(call.session_id.as_str()));
}

#[tokio::test]
async fn a_rejected_call_costs_nothing() {
    let env = start().await;
    let app = env.app.clone();
    env.sim.configure(|config| config.voice_url = Some(format!("{app}/voice-reject")));
    let call = env.sim.call_in("+254711000001", "+254711999999", &[]).await;
    assert_eq!(call.ending, CallEnding::Rejected);
    let last = VoiceCallback::from_form(call.final_callback.unwrap().body.as_bytes()).unwrap();
    assert_eq!(last.inbound().cost, Some(kes("0")));
    assert_eq!(last.hangup_cause.as_deref(), Some("CALL_REJECTED"));
}

#[tokio::test]
async fn an_outbound_call_is_queued_and_then_driven() {
    let env = start().await;
    let answer = env
        .client
        .make_call("+254711999999", &["+254711000001", "07"], Some("req-1"))
        .await
        .unwrap();
    assert!(matches!(
        answer.entries[0].send_result(),
        SendResult::Accepted { status: DeliveryStatus::Queued, .. }
    ));
    assert!(matches!(answer.entries[1].send_result(), SendResult::Refused { .. }));
    assert_eq!(env.sim.call_requests()[0].client_request_id.as_deref(), Some("req-1"));
    assert!(env.sim.settle(DEADLINE).await);
    let calls = env.sim.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].direction, "Outbound");
    let first =
        VoiceCallback::from_form(env.receiver.bodies("/voice")[0].as_bytes()).unwrap().inbound();
    assert_eq!(first.customer, "+254711000001", "the called party of an outbound call");
}

#[tokio::test]
async fn airtime_is_sent_and_its_results_called_back_once_per_key() {
    let env = start().await;
    env.sim
        .script_airtime("+254711000002", AirtimeScript::Failed { description: "Rejected".into() });
    env.sim
        .script_airtime("+254711000003", AirtimeScript::Refused { error_message: "Limit".into() });
    let recipients = [
        AirtimeRecipient::new("+254711000001", kes("100")),
        AirtimeRecipient::new("+254711000002", kes("50")),
        AirtimeRecipient::new("+254711000003", kes("10")),
    ];
    let answer = env.client.send_airtime(&recipients, Some("key-1")).await.unwrap();
    assert_eq!(answer.num_sent, Some(2));
    assert_eq!(answer.total_amount.as_deref(), Some("KES 150.0000"));
    let outcomes = answer.outcomes();
    let AirtimeOutcome::Sent { request_id, amount, discount } = &outcomes[0].1 else {
        panic!("{outcomes:?}")
    };
    assert_eq!((*amount, *discount), (Some(kes("100")), Some(kes("4"))));
    assert_eq!(outcomes[2].1, AirtimeOutcome::Failed { reason: "Limit".into() });
    assert!(env.sim.settle(DEADLINE).await);
    let mut results: Vec<(String, bool)> = env
        .receiver
        .bodies("/airtime")
        .iter()
        .map(|body| AirtimeStatus::read(body.as_bytes()).unwrap().result())
        .collect();
    results.sort_by_key(|(id, _)| id != request_id);
    assert_eq!(results.len(), 2);
    assert_eq!(results[0], (request_id.clone(), true));
    assert!(!results[1].1);

    // The same key again: the same answer, nothing sent twice.
    let again = env.client.send_airtime(&recipients, Some("key-1")).await.unwrap();
    assert_eq!(again, answer);
    assert!(env.sim.settle(DEADLINE).await);
    assert_eq!(env.receiver.bodies("/airtime").len(), 2);
    assert_eq!(env.sim.airtime_requests().len(), 1);
    assert_eq!(env.sim.airtime_requests()[0].idempotency_key.as_deref(), Some("key-1"));
}

#[tokio::test]
async fn a_ussd_body_is_what_the_simulator_reads() {
    // The server answers a step from a `Body`; the simulator reads that answer as a screen.
    let body = Body::Ussd { text: "1. Yes".into(), is_terminal: false };
    let reply = UssdReply::from_body(&body).unwrap();
    assert_eq!(UssdReply::parse(&reply.body()), Some(reply));
}
