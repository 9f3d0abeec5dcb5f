#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Africa's Talking adapter (SMS, USSD, voice, airtime) against the public sample
//! payloads in `fixtures/africastalking/`, and the forms and XML it writes and reads.

mod common;

use std::str::FromStr;

use hazina_providers::africastalking::airtime::{
    AirtimeOutcome, AirtimeRecipient, AirtimeResponse, AirtimeStatus, SendAirtime,
};
use hazina_providers::africastalking::sms::sms_text;
use hazina_providers::africastalking::voice::{
    self, Action, CallEntry, MakeCallResponse, Response, VoiceCallback,
};
use hazina_providers::africastalking::{
    DeliveryReport, FetchMessagesResponse, InboundSms, Price, Recipient, Refusal, SendOutcome,
    SendSms, SendSmsResponse, SubscriptionUpdate, USSD_APP_RESPONSE_TIMEOUT, UssdReply,
    UssdSessionEnd, UssdStep,
};
use hazina_providers::messaging::{
    Body, Channel, DeliveryStatus, InboundPart, Prompt, Say, SendResult, UssdInput,
    UssdSessionStatus, Voice, VoiceAction, VoiceCallStatus,
};
use hazina_providers::money::Currency;
use hazina_providers::money::Money;
use rust_decimal::Decimal;

/// Every fixture file, each read by the test named beside it.
const COVERED: &[&str] = &[
    "airtime_send_response.json",       // sdk_airtime_send_response
    "sms_fetch_messages_response.json", // sdk_inbox_fetch
    "sms_send_response.json",           // sdk_send_response
];

fn fixture(name: &str) -> Vec<u8> {
    common::read("africastalking", COVERED, name)
}

#[test]
fn every_fixture_is_covered() {
    common::assert_every_file_covered("africastalking", COVERED);
}

#[test]
fn sdk_send_response() {
    let answer: SendSmsResponse =
        serde_json::from_slice(&fixture("sms_send_response.json")).unwrap();
    assert_eq!(answer.data.recipients.len(), 1);
    let SendOutcome::Accepted { message_id, status, cost } = answer.data.recipients[0].outcome()
    else {
        panic!("status code 101 is accepted");
    };
    assert_eq!(message_id, "ATPid_SampleTxnId123");
    assert_eq!(status, DeliveryStatus::Sent);
    let cost = cost.unwrap();
    assert_eq!(cost.currency, Currency::from_code("KES").unwrap());
    assert_eq!(cost.amount, Decimal::from_str("0.8").unwrap());
}

#[test]
fn sdk_inbox_fetch() {
    let answer: FetchMessagesResponse =
        serde_json::from_slice(&fixture("sms_fetch_messages_response.json")).unwrap();
    let message = &answer.data.messages[0];
    assert_eq!(message.id, "15071", "a number in the fetch, read as the callback's string");
    assert_eq!((message.from.as_str(), message.to.as_str()), ("+254711XXXYYY", "28901"));
    assert_eq!(message.text, "Hello");
    assert_eq!(message.link_id.as_deref(), Some("SampleLinkId123"));
}

#[test]
fn a_send_is_the_documented_form() {
    let send =
        SendSms::new("sandbox", &["+254711000001", "+254711000002"], "Hi & bye", Some("HAZINA"));
    let form = send.form().unwrap();
    assert_eq!(
        form,
        "username=sandbox&to=%2B254711000001%2C%2B254711000002&message=Hi+%26+bye&from=HAZINA&bulkSMSMode=1"
    );
}

fn recipient(code: u16, cost: &str) -> Recipient {
    serde_json::from_value(serde_json::json!({
        "statusCode": code, "number": "+254711000001", "status": "x", "cost": cost,
        "messageId": "None",
    }))
    .unwrap()
}

#[test]
fn each_refusal_code_maps_to_the_platforms_status() {
    let cases = [
        (401, Refusal::RiskHold, DeliveryStatus::Rejected),
        (402, Refusal::InvalidSenderId, DeliveryStatus::InvalidChannelNumber),
        (403, Refusal::InvalidPhoneNumber, DeliveryStatus::NotSupported),
        (404, Refusal::UnsupportedNumberType, DeliveryStatus::NotSupported),
        (405, Refusal::InsufficientBalance, DeliveryStatus::InsufficientCredits),
        (406, Refusal::UserInBlacklist, DeliveryStatus::NoConsent),
        (407, Refusal::CouldNotRoute, DeliveryStatus::Rejected),
        (409, Refusal::Other(409), DeliveryStatus::Failed),
        (500, Refusal::InternalServerError, DeliveryStatus::GatewayError),
        (501, Refusal::GatewayError, DeliveryStatus::GatewayError),
        (502, Refusal::RejectedByGateway, DeliveryStatus::Rejected),
    ];
    for (code, refusal, status) in cases {
        assert_eq!(recipient(code, "0").outcome(), SendOutcome::Refused(refusal), "{code}");
        assert_eq!(refusal.status(), status, "{code}");
    }
    let queued = recipient(102, "KES 1.6000").outcome();
    assert!(matches!(queued, SendOutcome::Accepted { status: DeliveryStatus::Queued, .. }));
}

#[test]
fn prices_are_exact_and_anything_else_is_none() {
    let price = Price::parse("USD 0.0150").unwrap();
    assert_eq!(price.amount, Decimal::from_str("0.015").unwrap());
    for text in ["0", "", "KES", "XYZ 1.0", "KES one", "KES -1.0"] {
        assert_eq!(Price::parse(text), None, "{text:?}");
    }
}

#[test]
fn delivery_reports_map_to_the_platforms_status() {
    let report = |status: &str, reason: Option<&str>| {
        let mut form =
            format!("id=ATXid_1&status={status}&phoneNumber=%2B254711000001&networkCode=63902");
        if let Some(reason) = reason {
            form = format!("{form}&failureReason={reason}");
        }
        DeliveryReport::from_form(form.as_bytes()).unwrap()
    };
    assert_eq!(report("Success", None).delivery_status(), DeliveryStatus::Delivered);
    for on_the_way in ["Sent", "Submitted", "Buffered", "SomethingNew"] {
        assert_eq!(report(on_the_way, None).delivery_status(), DeliveryStatus::Sent);
    }
    assert_eq!(report("Rejected", None).delivery_status(), DeliveryStatus::Rejected);
    assert_eq!(report("Failed", Some("DeliveryFailure")).delivery_status(), DeliveryStatus::Failed);
    assert_eq!(
        report("Failed", Some("UserInBlackList")).delivery_status(),
        DeliveryStatus::NoConsent
    );
    // The subscriber's credit for a premium message, not ours (messaging.md §9).
    assert_eq!(
        report("Rejected", Some("InsufficientCredit")).delivery_status(),
        DeliveryStatus::Failed
    );
    for (reason, status) in [
        ("UserDoesNotExist", DeliveryStatus::CustomerNumberNotFound),
        ("NotNetworkSubcriber", DeliveryStatus::CustomerNumberNotFound),
        ("InvalidLinkId", DeliveryStatus::InvalidReplyToken),
        ("UserNotSubscribedToProduct", DeliveryStatus::NoConsent),
        ("UserIsInactive", DeliveryStatus::Failed),
    ] {
        assert_eq!(report("Failed", Some(reason)).delivery_status(), status, "{reason}");
    }
    let update = report("Failed", Some("UserDoesNotExist")).status_update();
    assert_eq!(update.provider_message_id, "ATXid_1");
    assert_eq!(update.status, DeliveryStatus::CustomerNumberNotFound);
    assert_eq!(update.reason.as_deref(), Some("UserDoesNotExist"));
    assert_eq!(report("Success", None).status_update().reason, None);
    let full = report("Failed", Some("UserDoesNotExist"));
    assert_eq!(full.phone_number, "+254711000001");
    assert_eq!(full.network_code.as_deref(), Some("63902"));
    assert!(DeliveryReport::from_form(b"status=Success").is_err(), "a report without an id");
}

#[test]
fn an_inbound_message_is_read_from_its_form() {
    let form = "from=%2B254711000001&to=28901&text=STOP&date=2026-12-07T10%3A00%3A00Z&id=abc-1&networkCode=63902";
    let message = InboundSms::from_form(form.as_bytes()).unwrap();
    assert_eq!((message.id.as_str(), message.text.as_str()), ("abc-1", "STOP"));
    assert_eq!(message.link_id, None);
    assert!(InboundSms::from_form(b"from=%2B254711000001&to=28901").is_err());
}

#[test]
fn a_ussd_step_gives_its_inputs_in_order() {
    let first = UssdStep::from_form(
        b"sessionId=ATUid_1&serviceCode=%2A384%2A1234%23&phoneNumber=%2B254711000001&networkCode=63902&text=",
    )
    .unwrap();
    assert_eq!(first.service_code, "*384*1234#");
    assert!(first.inputs().is_empty());
    assert_eq!(first.latest_input(), None);
    let third = UssdStep::from_form(
        b"sessionId=ATUid_1&serviceCode=%2A384%23&phoneNumber=%2B254711000001&text=1%2A2%2A0712",
    )
    .unwrap();
    assert_eq!(third.inputs(), ["1", "2", "0712"]);
    assert_eq!(third.latest_input(), Some("0712"));
    assert!(UssdStep::from_form(b"serviceCode=%2A384%23&phoneNumber=%2B254711000001").is_err());
}

#[test]
fn a_ussd_reply_is_con_or_end_and_reads_back() {
    let menu = UssdReply::Continue("1. Balance\n2. Pay".to_owned());
    assert_eq!(menu.body(), "CON 1. Balance\n2. Pay");
    assert_eq!(UssdReply::parse(&menu.body()), Some(menu));
    let end = UssdReply::End("Thank you".to_owned());
    assert_eq!(end.body(), "END Thank you");
    assert_eq!(UssdReply::parse(&end.body()), Some(end));
    for refused in ["CONTINUE", "con menu", "", "END", "Hello"] {
        assert_eq!(UssdReply::parse(refused), None, "{refused:?}");
    }
}

#[test]
fn sdk_airtime_send_response() {
    let answer: AirtimeResponse =
        serde_json::from_slice(&fixture("airtime_send_response.json")).unwrap();
    let kes = Currency::from_code("KES").unwrap();
    assert_eq!(answer.num_sent, Some(1));
    assert_eq!(answer.total(), Some(Money::parse(kes, "1000").unwrap()));
    let outcomes = answer.outcomes();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].0, "+254711XXXYYY");
    assert_eq!(
        outcomes[0].1,
        AirtimeOutcome::Sent {
            request_id: "ATQid_1be914ac47845eef1a1dab5d89ec50ff".to_owned(),
            amount: Some(Money::parse(kes, "1000").unwrap()),
            discount: Some(Money::parse(kes, "40").unwrap()),
        }
    );
}

#[test]
fn a_failed_airtime_recipient_says_why() {
    let answer: AirtimeResponse = serde_json::from_value(serde_json::json!({
        "errorMessage": "None", "numSent": 0, "totalAmount": "KES 0.0000",
        "totalDiscount": "KES 0.0000",
        "responses": [{"phoneNumber": "+254711000001", "errorMessage": "Invalid phone number",
            "amount": "KES 10.0000", "status": "Failed", "requestId": "None", "discount": "KES 0.0000"}],
    }))
    .unwrap();
    assert_eq!(
        answer.outcomes()[0].1,
        AirtimeOutcome::Failed { reason: "Invalid phone number".to_owned() }
    );
}

#[test]
fn an_airtime_send_is_a_json_list_in_a_form() {
    let kes = Currency::from_code("KES").unwrap();
    let recipient = AirtimeRecipient::new("+254711000001", Money::parse(kes, "100").unwrap());
    assert_eq!(recipient.amount, "KES 100.00");
    let send = SendAirtime::new("sandbox", std::slice::from_ref(&recipient)).unwrap();
    assert_eq!(send.recipients, r#"[{"phoneNumber":"+254711000001","amount":"KES 100.00"}]"#);
    let form = send.form().unwrap();
    let back = SendAirtime::from_form(form.as_bytes()).unwrap();
    assert_eq!(back.recipients().unwrap(), vec![recipient]);
}

#[test]
fn an_airtime_status_callback_reads_as_a_form_or_json() {
    let form = AirtimeStatus::read(b"requestId=ATQid_1&status=Success&phoneNumber=%2B254711000001")
        .unwrap();
    assert_eq!(form.result(), ("ATQid_1".to_owned(), true));
    let json = AirtimeStatus::read(
        br#"{"phoneNumber":"+254711000001","description":"Airtime Delivered Successfully","status":"Failed","requestId":"ATQid_2","discount":"KES 0.6000","value":"KES 15.0000"}"#,
    )
    .unwrap();
    assert_eq!(json.result(), ("ATQid_2".to_owned(), false));
    assert!(AirtimeStatus::read(b"status=Success").is_err());
    assert!(AirtimeStatus::read(b"{").is_err());
}

#[test]
fn a_send_answer_becomes_one_result_per_requested_number() {
    let answer: SendSmsResponse = serde_json::from_value(serde_json::json!({"SMSMessageData": {
    "Message": "Sent to 2/3 Total Cost: KES 1.6000",
    "Recipients": [
        {"statusCode": 101, "number": "+254711000002", "status": "Success",
         "cost": "KES 0.8000", "messageId": "ATXid_2"},
        {"statusCode": 406, "number": "+254711000001", "status": "UserInBlacklist",
         "cost": "0", "messageId": "None"},
        {"statusCode": 102, "number": "+254711000003", "status": "Queued",
         "cost": "USD 0.0150", "messageId": "ATXid_3"},
    ]}}))
    .unwrap();
    let results =
        answer.results(&["+254711000001", "+254711000002", "+254711000003", "+254711000004"]);
    let kes = Currency::from_code("KES").unwrap();
    assert_eq!(results[0].0, "+254711000001");
    assert_eq!(
        results[0].1,
        SendResult::Refused {
            status: DeliveryStatus::NoConsent,
            reason: "406 UserInBlacklist".into()
        }
    );
    assert_eq!(
        results[1].1,
        SendResult::Accepted {
            provider_message_id: Some("ATXid_2".into()),
            status: DeliveryStatus::Sent,
            cost: Some(Money::parse(kes, "0.80").unwrap()),
        }
    );
    // A cost finer than cents is not rounded: it is left out.
    assert!(matches!(
        &results[2].1,
        SendResult::Accepted { status: DeliveryStatus::Queued, cost: None, .. }
    ));
    assert!(matches!(&results[3].1, SendResult::Refused { status: DeliveryStatus::Failed, .. }));
}

#[test]
fn a_premium_send_carries_its_parameters() {
    let send = SendSms::new("hazina", &["+254711000001"], "Thanks", Some("28901")).premium(
        Some("NEWS"),
        Some("SampleLinkId123"),
        Some(24),
    );
    assert!(send.is_premium());
    let form = send.form().unwrap();
    assert_eq!(
        form,
        "username=hazina&to=%2B254711000001&message=Thanks&from=28901&bulkSMSMode=0&keyword=NEWS&linkId=SampleLinkId123&retryDurationInHours=24"
    );
    assert_eq!(SendSms::from_form(form.as_bytes()).unwrap(), send);
    assert_eq!(sms_text(&Body::Text { text: "hi".into() }), Some("hi"));
    assert_eq!(sms_text(&Body::Url { url: "https://x".into() }), Some("https://x"));
    assert_eq!(sms_text(&Body::Ussd { text: "x".into(), is_terminal: true }), None);
}

#[test]
fn an_inbound_message_becomes_the_platforms_inbound() {
    let answer: FetchMessagesResponse =
        serde_json::from_slice(&fixture("sms_fetch_messages_response.json")).unwrap();
    let inbound = answer.data.messages[0].inbound();
    assert_eq!(inbound.channel, Channel::Sms);
    assert_eq!(
        (inbound.customer.as_str(), inbound.channel_number.as_str()),
        ("+254711XXXYYY", "28901")
    );
    assert_eq!(inbound.provider_message_id.as_deref(), Some("15071"));
    assert_eq!(inbound.parts, vec![InboundPart::Text { text: "Hello".into() }]);
    assert_eq!(inbound.received_at.unwrap().to_rfc3339(), "2018-03-19T08:34:18.445+00:00");
}

#[test]
fn a_subscription_update_says_whether_the_customer_opted_in() {
    let added = SubscriptionUpdate::from_form(
        b"phoneNumber=%2B254711000001&shortCode=28901&keyword=NEWS&updateType=addition",
    )
    .unwrap();
    assert!(added.opted_in());
    assert_eq!(added.keyword, "NEWS");
    let removed = SubscriptionUpdate::from_form(
        b"phoneNumber=%2B254711000001&shortCode=28901&keyword=NEWS&updateType=deletion",
    )
    .unwrap();
    assert!(!removed.opted_in());
    assert!(SubscriptionUpdate::from_form(b"phoneNumber=%2B254711000001").is_err());
}

#[test]
fn a_ussd_step_and_its_end_become_the_platforms_inbound() {
    let step = UssdStep::from_form(
        b"sessionId=ATUid_1&serviceCode=%2A384%2A1234%23&phoneNumber=%2B254711000001&networkCode=63902&text=1%2A2",
    )
    .unwrap();
    let inbound = step.inbound();
    assert_eq!(inbound.channel, Channel::Ussd);
    assert_eq!(inbound.channel_number, "*384*1234#");
    assert_eq!(inbound.session_id.as_deref(), Some("ATUid_1"));
    assert_eq!(
        inbound.parts,
        vec![InboundPart::Ussd(UssdInput {
            status: UssdSessionStatus::Active,
            text: Some("2".into())
        })]
    );
    let end = UssdSessionEnd::from_form(
        b"sessionId=ATUid_1&serviceCode=%2A384%2A1234%23&phoneNumber=%2B254711000001&networkCode=63902&status=Success&cost=KES+0.0500&durationInMillis=5400&hopsCount=3&input=1%2A2&lastAppResponse=END+Bye&errorMessage=&date=2026-01-02+10%3A00%3A00",
    )
    .unwrap();
    assert_eq!(end.session_status(), UssdSessionStatus::Completed);
    let inbound = end.inbound();
    assert_eq!(
        inbound.parts,
        vec![InboundPart::Ussd(UssdInput {
            status: UssdSessionStatus::Completed,
            text: Some("2".into())
        })]
    );
    assert_eq!(inbound.cost.unwrap().amount().to_string(), "0.05", "trailing zeros are exact");
    let failed = UssdSessionEnd { status: "Failed".into(), cost: Some("KES 1.0000".into()), ..end };
    assert_eq!(failed.session_status(), UssdSessionStatus::Incomplete);
    assert_eq!(failed.inbound().cost.unwrap().amount().to_string(), "1.00");
    assert_eq!(USSD_APP_RESPONSE_TIMEOUT.as_secs(), 15);
}

#[test]
fn a_ussd_reply_comes_from_a_ussd_body() {
    let menu = Body::Ussd { text: "1. Balance".into(), is_terminal: false };
    assert_eq!(UssdReply::from_body(&menu).unwrap().body(), "CON 1. Balance");
    let end = Body::Ussd { text: "Bye".into(), is_terminal: true };
    assert_eq!(UssdReply::from_body(&end).unwrap().body(), "END Bye");
    assert_eq!(UssdReply::from_body(&Body::Text { text: "x".into() }), None);
}

fn say(text: &str) -> Say {
    Say { text: text.into(), voice: None, play_beep: false }
}

#[test]
fn voice_actions_render_as_the_providers_xml() {
    let actions = vec![
        VoiceAction::Say(Say {
            text: "Karibu <&> \"x\"".into(),
            voice: Some(Voice::Female),
            play_beep: true,
        }),
        VoiceAction::Play { url: "https://x.test/a.mp3?a=1&b=2".into() },
        VoiceAction::GetDigits {
            prompt: Some(Prompt::Say(say("Press 1"))),
            timeout_seconds: Some(30),
            finish_on_key: Some("#".into()),
            num_digits: Some(1),
        },
        VoiceAction::Dial {
            customer_numbers: vec!["+254711000001".into(), "+254711000002".into()],
            record: true,
            sequential: true,
            ringback_tone: Some("https://x.test/ring.mp3".into()),
            caller_id: Some("+254711000000".into()),
            max_duration_seconds: Some(60),
        },
        VoiceAction::RecordSession,
        VoiceAction::GetRecording {
            prompt: Some(Prompt::Play { url: "https://x.test/beep.mp3".into() }),
            timeout_seconds: Some(5),
            max_length_seconds: Some(30),
            finish_on_key: Some("*".into()),
            play_beep: true,
            trim_silence: true,
        },
        VoiceAction::Enqueue {
            hold_music: Some("https://x.test/hold.mp3".into()),
            queue_name: Some("support".into()),
        },
        VoiceAction::Dequeue {
            channel_number: "+254711000000".into(),
            record: false,
            queue_name: Some("support".into()),
        },
        VoiceAction::Redirect { url: "https://x.test/next".into() },
        VoiceAction::Reject,
    ];
    let xml = voice::render(&actions, Some("https://us.test/voice/digits")).unwrap();
    let expected = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#,
        r#"<Say voice="woman" playBeep="true">Karibu &lt;&amp;&gt; "x"</Say>"#,
        r#"<Play url="https://x.test/a.mp3?a=1&amp;b=2"/>"#,
        r##"<GetDigits timeout="30" finishOnKey="#" numDigits="1" callbackUrl="https://us.test/voice/digits"><Say>Press 1</Say></GetDigits>"##,
        r#"<Dial phoneNumbers="+254711000001,+254711000002" record="true" sequential="true" ringbackTone="https://x.test/ring.mp3" callerId="+254711000000" maxDuration="60"/>"#,
        r#"<Record/>"#,
        r#"<Record finishOnKey="*" maxLength="30" timeout="5" trimSilence="true" playBeep="true" callbackUrl="https://us.test/voice/digits"><Play url="https://x.test/beep.mp3"/></Record>"#,
        r#"<Enqueue holdMusic="https://x.test/hold.mp3" name="support"/>"#,
        r#"<Dequeue phoneNumber="+254711000000" name="support"/>"#,
        r#"<Redirect>https://x.test/next</Redirect>"#,
        r#"<Reject/>"#,
        r#"</Response>"#,
    );
    assert_eq!(xml, expected);
    // It reads back as the same actions.
    let read = Response::parse(&xml).unwrap();
    assert_eq!(read.platform_actions(), actions);
    let Action::GetDigits(digits) = &read.actions[2] else { panic!("{:?}", read.actions[2]) };
    assert_eq!(digits.callback_url.as_deref(), Some("https://us.test/voice/digits"));
    assert_eq!(
        voice::render(&[], None).unwrap(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
    );
    assert!(Response::parse("<Response><Dance/></Response>").is_err());
}

#[test]
fn voice_callbacks_become_the_platforms_inbound() {
    let first = VoiceCallback::from_form(
        b"isActive=1&sessionId=ATVId_1&direction=Inbound&callerNumber=%2B254711000001&destinationNumber=%2B254711000000&callSessionState=Ringing",
    )
    .unwrap();
    let inbound = first.inbound();
    assert_eq!(inbound.channel, Channel::Voice);
    assert_eq!(
        (inbound.customer.as_str(), inbound.channel_number.as_str()),
        ("+254711000001", "+254711000000")
    );
    let InboundPart::Voice(input) = &inbound.parts[0] else { panic!("{:?}", inbound.parts) };
    assert!(input.inbound);
    assert_eq!(input.status, VoiceCallStatus::Active);
    let digits = VoiceCallback::from_form(
        b"isActive=1&sessionId=ATVId_1&direction=Inbound&callerNumber=%2B254711000001&destinationNumber=%2B254711000000&dtmfDigits=42&recordingUrl=",
    )
    .unwrap()
    .inbound();
    let InboundPart::Voice(input) = &digits.parts[0] else { panic!() };
    assert_eq!((input.dtmf_digits.as_deref(), input.recording_url.as_deref()), (Some("42"), None));
    let last = VoiceCallback::from_form(
        b"isActive=0&sessionId=ATVId_1&direction=outbound&callerNumber=%2B254711000000&destinationNumber=%2B254711000001&durationInSeconds=42&currencyCode=KES&amount=2.5&hangupCause=NORMAL_CLEARING",
    )
    .unwrap()
    .inbound();
    assert_eq!(last.customer, "+254711000001", "the called party of an outbound call");
    let InboundPart::Voice(input) = &last.parts[0] else { panic!() };
    assert!(!input.inbound);
    assert_eq!(input.status, VoiceCallStatus::Completed);
    assert_eq!(input.duration_seconds, Some(42));
    assert_eq!(input.hangup_cause.as_deref(), Some("NORMAL_CLEARING"));
    assert_eq!(last.cost.unwrap().amount().to_string(), "2.50");
    let unanswered =
        VoiceCallback::from_form(b"isActive=0&sessionId=ATVId_2&durationInSeconds=0").unwrap();
    assert_eq!(unanswered.call_status(), VoiceCallStatus::NotAnswered);
    assert!(VoiceCallback::from_form(b"sessionId=ATVId_2").is_err());
}

#[test]
fn a_call_request_answer_becomes_results() {
    let answer: MakeCallResponse = serde_json::from_value(serde_json::json!({
        "entries": [
            {"status": "Queued", "phoneNumber": "+254711000001", "sessionId": "ATVId_1"},
            {"status": "InvalidPhoneNumber", "phoneNumber": "07", "errorMessage": "bad"},
        ],
        "errorMessage": "None",
    }))
    .unwrap();
    assert_eq!(
        answer.entries[0].send_result(),
        SendResult::Accepted {
            provider_message_id: Some("ATVId_1".into()),
            status: DeliveryStatus::Queued,
            cost: None
        }
    );
    assert_eq!(
        answer.entries[1].send_result(),
        SendResult::Refused {
            status: DeliveryStatus::NotSupported,
            reason: "InvalidPhoneNumber: bad".into()
        }
    );
    let unknown = CallEntry {
        phone_number: "+254711000001".into(),
        status: "Whatever".into(),
        session_id: None,
        error_message: None,
    };
    assert!(matches!(
        unknown.send_result(),
        SendResult::Refused { status: DeliveryStatus::Failed, .. }
    ));
}
