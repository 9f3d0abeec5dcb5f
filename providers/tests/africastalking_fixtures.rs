#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Africa's Talking SMS adapter against the public sample payloads in
//! `fixtures/africastalking/`, and the forms it writes and reads.

mod common;

use std::str::FromStr;

use hazina_providers::africastalking::{
    DeliveryReport, FetchMessagesResponse, InboundSms, Price, Recipient, Refusal, SendOutcome,
    SendSms, SendSmsResponse, UssdReply, UssdStep,
};
use hazina_providers::messaging::DeliveryStatus;
use hazina_providers::money::Currency;
use rust_decimal::Decimal;

/// Every fixture file, each read by the test named beside it.
const COVERED: &[&str] = &[
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
    assert_eq!(
        report("Rejected", Some("InsufficientCredit")).delivery_status(),
        DeliveryStatus::InsufficientCredits
    );
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
