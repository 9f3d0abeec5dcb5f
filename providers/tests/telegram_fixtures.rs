//! Telegram Bot API transformers against public payloads: the example updates of
//! core.telegram.org/bots/webhooks ("Testing your bot with updates") and answers of the Bot
//! API as documented and as client libraries record them (sources in fixtures/README.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use hazina_providers::messaging::{
    Body, Channel, DeliveryStatus, InboundPart, Location, Media, MediaType, SendResult, Template,
};
use hazina_providers::telegram::{
    BuildError, Consent, SendOptions, build_send, read_send_response, read_update,
};

const FOLDER: &str = "telegram";
const COVERED: &[&str] = &[
    "response_error_blocked.json",
    "response_error_chat_not_found.json",
    "response_error_flood.json",
    "response_error_migrated.json",
    "response_error_unauthorized.json",
    "response_send_message_ok.json",
    "update_callback_query.json",
    "update_edited_message.json",
    "update_message_audio.json",
    "update_message_document.json",
    "update_message_entities.json",
    "update_message_reply.json",
    "update_message_text.json",
    "update_message_voice.json",
    "update_my_chat_member_kicked.json",
];

fn read(name: &str) -> Vec<u8> {
    common::read(FOLDER, COVERED, name)
}

fn refused(outcome: &SendResult) -> Option<DeliveryStatus> {
    match outcome {
        SendResult::Refused { status, .. } => Some(*status),
        _ => None,
    }
}

#[test]
fn every_fixture_is_covered() {
    common::assert_every_file_covered(FOLDER, COVERED);
}

#[test]
fn a_text_update_is_an_inbound_message_and_start_opts_in() {
    let read = read_update(&read("update_message_text.json"), "hazina_bot").unwrap();
    assert_eq!(read.update_id, 10000);
    let inbound = read.inbound.unwrap();
    assert_eq!(inbound.channel, Channel::Telegram);
    assert_eq!(inbound.customer, "1111111");
    assert_eq!(inbound.channel_number, "hazina_bot");
    assert_eq!(inbound.provider_message_id.as_deref(), Some("1111111:1365"));
    assert_eq!(inbound.in_reply_to, None);
    assert_eq!(inbound.parts, [InboundPart::Text { text: "/start".into() }]);
    assert_eq!(inbound.received_at.unwrap().timestamp(), 1_441_645_532);
    assert_eq!(read.consent, Some(("1111111".to_owned(), Consent::OptIn)));
}

#[test]
fn a_reply_names_the_message_it_answers() {
    let read = read_update(&read("update_message_reply.json"), "hazina_bot").unwrap();
    let inbound = read.inbound.unwrap();
    assert_eq!(inbound.in_reply_to.as_deref(), Some("1111112:1334"));
}

#[test]
fn an_edit_and_a_callback_query_are_not_messages() {
    for name in ["update_edited_message.json", "update_callback_query.json"] {
        let read = read_update(&read(name), "hazina_bot").unwrap();
        assert_eq!(read.update_id, 10000);
        assert_eq!(read.inbound, None, "{name}");
        assert_eq!(read.consent, None, "{name}");
    }
}

#[test]
fn entities_leave_the_text_as_sent() {
    let read = read_update(&read("update_message_entities.json"), "b").unwrap();
    assert_eq!(
        read.inbound.unwrap().parts,
        [InboundPart::Text { text: "Bold and italics".into() }]
    );
    assert_eq!(read.consent, None);
}

#[test]
fn files_become_media_parts_by_their_file_id() {
    for (name, media) in [
        ("update_message_audio.json", MediaType::Audio),
        ("update_message_voice.json", MediaType::Voice),
        ("update_message_document.json", MediaType::Document),
    ] {
        let inbound = read_update(&read(name), "b").unwrap().inbound.unwrap();
        assert_eq!(
            inbound.parts,
            [InboundPart::Media(Media {
                url: "telegram:file/AwADBAADbXXXXXXXXXXXGBdhD2l6_XX".into(),
                media,
                caption: None,
            })],
            "{name}"
        );
    }
}

#[test]
fn blocking_the_bot_opts_out() {
    let read = read_update(&read("update_my_chat_member_kicked.json"), "b").unwrap();
    assert_eq!(read.update_id, 10001);
    assert_eq!(read.inbound, None);
    assert_eq!(read.consent, Some(("1111111".to_owned(), Consent::OptOut)));
}

#[test]
fn a_sent_message_is_sent_under_chat_and_message_id() {
    let outcome = read_send_response(200, &read("response_send_message_ok.json"));
    assert_eq!(
        outcome.result,
        SendResult::Accepted {
            provider_message_id: Some("-1001234567890:9".into()),
            status: DeliveryStatus::Sent,
            cost: None,
        }
    );
    assert_eq!(outcome.retry_after, None);
}

#[test]
fn refusals_map_to_platform_statuses() {
    let blocked = read_send_response(403, &read("response_error_blocked.json"));
    assert_eq!(refused(&blocked.result), Some(DeliveryStatus::NoConsent));
    let SendResult::Refused { reason, .. } = &blocked.result else { unreachable!() };
    assert_eq!(reason, "403 Forbidden: bot was blocked by the user");

    let missing = read_send_response(400, &read("response_error_chat_not_found.json"));
    assert_eq!(refused(&missing.result), Some(DeliveryStatus::CustomerNumberNotFound));

    let migrated = read_send_response(400, &read("response_error_migrated.json"));
    assert_eq!(refused(&migrated.result), Some(DeliveryStatus::CustomerNumberNotFound));
    let SendResult::Refused { reason, .. } = &migrated.result else { unreachable!() };
    assert!(reason.contains("-1001234567890"), "{reason}");

    let unauthorized = read_send_response(401, &read("response_error_unauthorized.json"));
    assert_eq!(refused(&unauthorized.result), Some(DeliveryStatus::ApplicationError));
}

#[test]
fn flood_control_is_retried_after_the_time_it_names() {
    let flood = read_send_response(429, &read("response_error_flood.json"));
    assert!(matches!(flood.result, SendResult::Retry { .. }), "{flood:?}");
    assert_eq!(flood.retry_after, Some(Duration::from_secs(8)));
}

#[test]
fn server_errors_and_unreadable_answers_are_retried_or_refused_by_status() {
    let answer = br#"{"ok":false,"error_code":502,"description":"Bad Gateway"}"#;
    assert!(matches!(read_send_response(502, answer).result, SendResult::Retry { .. }));
    assert!(matches!(read_send_response(503, b"<html>").result, SendResult::Retry { .. }));
    assert_eq!(refused(&read_send_response(400, b"<html>").result), Some(DeliveryStatus::Rejected));
}

#[test]
fn each_body_kind_has_its_method_or_is_unsupported() {
    let options = SendOptions { parse_mode: Some("HTML".into()), reply_to: Some("42:7".into()) };
    let text = build_send("42", &Body::Text { text: "<b>hi</b>".into() }, &options).unwrap();
    assert_eq!(text.method, "sendMessage");
    assert_eq!(
        serde_json::to_value(&text.body).unwrap(),
        serde_json::json!({"chat_id": 42, "text": "<b>hi</b>", "parse_mode": "HTML",
            "reply_parameters": {"message_id": 7, "allow_sending_without_reply": true}})
    );
    for (media, method, field) in [
        (MediaType::Image, "sendPhoto", "photo"),
        (MediaType::Document, "sendDocument", "document"),
        (MediaType::Audio, "sendAudio", "audio"),
        (MediaType::Video, "sendVideo", "video"),
        (MediaType::Voice, "sendVoice", "voice"),
        (MediaType::Sticker, "sendSticker", "sticker"),
    ] {
        let body = Body::Media(Media {
            url: "https://cdn.example/f".into(),
            media,
            caption: Some("look".into()),
        });
        let request = build_send("@channel", &body, &SendOptions::default()).unwrap();
        assert_eq!(request.method, method);
        let json = serde_json::to_value(&request.body).unwrap();
        assert_eq!(json[field], "https://cdn.example/f");
        assert_eq!(json["chat_id"], "@channel");
        assert_eq!(json.get("caption").is_some(), media != MediaType::Sticker, "{method}");
    }
    let location = Body::Location(Location {
        latitude: "51.5".parse().unwrap(),
        longitude: "-0.12".parse().unwrap(),
        label: None,
        address: None,
    });
    assert_eq!(build_send("1", &location, &SendOptions::default()).unwrap().method, "sendLocation");
    let contact = Body::Media(Media { url: "x".into(), media: MediaType::Contact, caption: None });
    assert_eq!(
        build_send("1", &contact, &SendOptions::default()).unwrap_err(),
        BuildError::Unsupported("contact")
    );
    let template = Body::Template(Template { id: "t".into(), language: None, params: vec![] });
    assert_eq!(
        build_send("1", &template, &SendOptions::default()).unwrap_err(),
        BuildError::Unsupported("template")
    );
    assert_eq!(
        build_send("1", &Body::Url { url: "https://x".into() }, &SendOptions::default())
            .unwrap_err(),
        BuildError::Unsupported("url")
    );
}
