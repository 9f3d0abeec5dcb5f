#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Meta adapters (WhatsApp Cloud API, Messenger Send API) against the sample payloads in
//! `fixtures/whatsapp/` and `fixtures/messenger/`: signatures, the verification handshake,
//! the requests built from every body, and every mapping of answers, errors and webhooks.

mod common;

use chrono::{DateTime, Utc};
use hazina_providers::messaging::{
    Body, Channel, DeliveryStatus, Email, InboundPart, Location, Media, MediaType, SendResult,
    Template, Verified,
};
use hazina_providers::messenger::{self, MessagingType, Watermark, WatermarkStatus};
use hazina_providers::meta::{self, BuildError, GraphError};
use hazina_providers::whatsapp;
use serde_json::{Value, json};

const WHATSAPP: &str = "whatsapp";
const MESSENGER: &str = "messenger";

const WHATSAPP_COVERED: &[&str] =
    &["inbound_text_webhook.json", "send_response.json", "status_webhook.json"];
const MESSENGER_COVERED: &[&str] = &[
    "message_deliveries_event.json",
    "message_reads_event.json",
    "send_api_error_invalid_token.json",
];

fn whatsapp_fixture(name: &str) -> Vec<u8> {
    common::read(WHATSAPP, WHATSAPP_COVERED, name)
}

fn messenger_fixture(name: &str) -> Vec<u8> {
    common::read(MESSENGER, MESSENGER_COVERED, name)
}

fn at_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn at_seconds(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

/// A Messenger event as it sits on the wire: inside the page envelope.
fn page_webhook(event: &[u8]) -> Vec<u8> {
    let event: Value = serde_json::from_slice(event).unwrap();
    serde_json::to_vec(&json!({
        "object": "page",
        "entry": [{ "id": "<PAGE_ID>", "time": 1_458_668_856_463_i64, "messaging": [event] }],
    }))
    .unwrap()
}

#[test]
fn every_fixture_is_covered() {
    common::assert_every_file_covered(WHATSAPP, WHATSAPP_COVERED);
    common::assert_every_file_covered(MESSENGER, MESSENGER_COVERED);
}

// =============================================================================================
// Signatures and the handshake
// =============================================================================================

#[test]
fn a_good_signature_verifies_over_the_raw_bytes() {
    let body = whatsapp_fixture("status_webhook.json");
    let header = meta::sign(b"app-secret", &body);
    assert!(header.starts_with("sha256="));
    assert_eq!(header.len(), 7 + 64);
    assert_eq!(meta::verify_signature(b"app-secret", Some(&header), &body), Verified::Yes);
    // Upper-case hex is the same MAC.
    let upper = format!("sha256={}", header[7..].to_ascii_uppercase());
    assert_eq!(meta::verify_signature(b"app-secret", Some(&upper), &body), Verified::Yes);
}

#[test]
fn bad_missing_short_or_unprefixed_signatures_and_tampered_bodies_fail() {
    let body = whatsapp_fixture("inbound_text_webhook.json");
    let header = meta::sign(b"app-secret", &body);
    let verify = |secret: &[u8], header: Option<&str>, body: &[u8]| {
        meta::verify_signature(secret, header, body)
    };
    // Another secret.
    assert_eq!(verify(b"other-secret", Some(&header), &body), Verified::No);
    // Missing header.
    assert_eq!(verify(b"app-secret", None, &body), Verified::No);
    // Missing prefix, or the sha1 prefix of the old header.
    assert_eq!(verify(b"app-secret", Some(&header[7..]), &body), Verified::No);
    let sha1 = header.replace("sha256=", "sha1=");
    assert_eq!(verify(b"app-secret", Some(&sha1), &body), Verified::No);
    // Wrong lengths.
    assert_eq!(verify(b"app-secret", Some(&header[..header.len() - 2]), &body), Verified::No);
    assert_eq!(verify(b"app-secret", Some(&format!("{header}00")), &body), Verified::No);
    assert_eq!(verify(b"app-secret", Some("sha256="), &body), Verified::No);
    // Not hex.
    let not_hex = format!("sha256={}", "z".repeat(64));
    assert_eq!(verify(b"app-secret", Some(&not_hex), &body), Verified::No);
    // One bit of the MAC flipped.
    let mut flipped = header.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert_eq!(verify(b"app-secret", Some(&flipped), &body), Verified::No);
    // A tampered body: one byte changed, one byte added, reformatted JSON.
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert_eq!(verify(b"app-secret", Some(&header), &tampered), Verified::No);
    let mut longer = body.clone();
    longer.push(b'\n');
    assert_eq!(verify(b"app-secret", Some(&header), &longer), Verified::No);
    let reformatted = serde_json::to_vec(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    assert_eq!(verify(b"app-secret", Some(&header), &reformatted), Verified::No);
}

#[test]
fn the_handshake_answers_the_challenge_only_for_our_token_and_subscribe() {
    let query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=tok%20en";
    assert_eq!(meta::verify_challenge(query, "tok en").as_deref(), Some("1158201444"));
    assert_eq!(meta::verify_challenge(query, "tok"), None);
    assert_eq!(meta::verify_challenge(&query.replace("subscribe", "other"), "tok en"), None);
    assert_eq!(meta::verify_challenge("hub.challenge=1&hub.verify_token=t", "t"), None);
    assert_eq!(meta::verify_challenge("", ""), None);
}

// =============================================================================================
// WhatsApp: requests
// =============================================================================================

fn whatsapp_json(body: &Body, reply_to: Option<&str>) -> Value {
    serde_json::to_value(whatsapp::build_send("+254712345678", body, reply_to).unwrap()).unwrap()
}

#[test]
fn whatsapp_text_and_reply() {
    assert_eq!(
        whatsapp_json(&Body::Text { text: "Hi".into() }, Some("wamid.ABC")),
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "254712345678",
            "type": "text",
            "context": { "message_id": "wamid.ABC" },
            "text": { "body": "Hi" },
        })
    );
    assert_eq!(
        whatsapp_json(&Body::Url { url: "https://example.com/x".into() }, None)["text"],
        json!({ "body": "https://example.com/x", "preview_url": true })
    );
}

#[test]
fn whatsapp_template_with_parameters_and_language() {
    let template = Template {
        id: "order_update".into(),
        language: Some("en_US".into()),
        params: vec!["Jane".into(), "KES 1,250.00".into()],
    };
    let json = whatsapp_json(&Body::Template(template.clone()), None);
    assert_eq!(json["type"], "template");
    assert_eq!(
        json["template"],
        json!({
            "name": "order_update",
            "language": { "code": "en_US" },
            "components": [{ "type": "body", "parameters": [
                { "type": "text", "text": "Jane" },
                { "type": "text", "text": "KES 1,250.00" },
            ]}],
        })
    );
    let bare = Template { params: Vec::new(), ..template.clone() };
    assert!(whatsapp_json(&Body::Template(bare), None)["template"].get("components").is_none());
    let no_language = Template { language: None, ..template };
    assert!(matches!(
        whatsapp::build_send("254712345678", &Body::Template(no_language), None),
        Err(BuildError::Invalid(_))
    ));
}

#[test]
fn whatsapp_media_by_link_with_captions_where_allowed() {
    let media = |kind, caption: Option<&str>| {
        Body::Media(Media {
            url: "https://example.com/f".into(),
            media: kind,
            caption: caption.map(str::to_owned),
        })
    };
    for (kind, name) in [
        (MediaType::Image, "image"),
        (MediaType::Video, "video"),
        (MediaType::Document, "document"),
    ] {
        let json = whatsapp_json(&media(kind, Some("look")), None);
        assert_eq!(json["type"], name);
        assert_eq!(json[name], json!({ "link": "https://example.com/f", "caption": "look" }));
    }
    for (kind, name) in
        [(MediaType::Audio, "audio"), (MediaType::Voice, "audio"), (MediaType::Sticker, "sticker")]
    {
        let json = whatsapp_json(&media(kind, None), None);
        assert_eq!(json["type"], name);
        assert_eq!(json[name], json!({ "link": "https://example.com/f" }));
        assert!(matches!(
            whatsapp::build_send("1", &media(kind, Some("x")), None),
            Err(BuildError::Invalid(_))
        ));
    }
    assert_eq!(
        whatsapp::build_send("1", &media(MediaType::Contact, None), None),
        Err(BuildError::Unsupported("contact"))
    );
}

#[test]
fn whatsapp_location_and_unsupported_bodies() {
    let json = whatsapp_json(
        &Body::Location(Location {
            latitude: "-1.2920659".parse().unwrap(),
            longitude: "36.8219462".parse().unwrap(),
            label: Some("Nairobi".into()),
            address: Some("Kenyatta Ave".into()),
        }),
        None,
    );
    assert_eq!(json["type"], "location");
    assert_eq!(json["location"]["name"], "Nairobi");
    assert_eq!(json["location"]["address"], "Kenyatta Ave");
    assert!(json["location"]["latitude"].is_number());
    let email = Body::Email(Email {
        subject: "s".into(),
        plain: "p".into(),
        html: None,
        cc: Vec::new(),
        bcc: Vec::new(),
    });
    for body in [
        email,
        Body::Ussd { text: "x".into(), is_terminal: true },
        Body::Voice { actions: Vec::new() },
    ] {
        assert_eq!(
            whatsapp::build_send("1", &body, None),
            Err(BuildError::Unsupported(body.kind()))
        );
    }
    assert!(matches!(
        whatsapp::build_send("+", &Body::Text { text: "x".into() }, None),
        Err(BuildError::Invalid(_))
    ));
}

// =============================================================================================
// WhatsApp: answers and errors
// =============================================================================================

#[test]
fn whatsapp_send_response_fixture_is_accepted_as_queued() {
    let body = whatsapp_fixture("send_response.json");
    let answer: whatsapp::SendResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer.contacts[0].input.as_deref(), Some("<as sent>"));
    assert_eq!(answer.contacts[0].wa_id.as_deref(), Some("<id>"));
    assert_eq!(
        whatsapp::read_send_answer(200, &body, None),
        SendResult::Accepted {
            provider_message_id: Some("wamid.…".into()),
            status: DeliveryStatus::Queued,
            cost: None,
        }
    );
    // A 200 without an id says nothing usable.
    assert!(matches!(
        whatsapp::read_send_answer(200, br#"{"messages":[]}"#, None),
        SendResult::Retry { .. }
    ));
}

fn graph_error(code: i64, subcode: Option<i64>, message: &str) -> Vec<u8> {
    let mut error = json!({ "message": message, "type": "OAuthException", "code": code,
        "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam" });
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    serde_json::to_vec(&json!({ "error": error })).unwrap()
}

#[test]
fn whatsapp_errors_map_to_platform_statuses() {
    let refused = |code| match whatsapp::read_send_answer(400, &graph_error(code, None, "m"), None)
    {
        SendResult::Refused { status, reason } => {
            assert!(reason.starts_with(&format!("({code})")), "{reason}");
            status
        }
        other => panic!("{code}: {other:?}"),
    };
    assert_eq!(refused(131_047), DeliveryStatus::NoSessionInProgress);
    assert_eq!(refused(131_026), DeliveryStatus::CustomerNumberNotFound);
    assert_eq!(refused(131_050), DeliveryStatus::NoConsent);
    assert_eq!(refused(132_001), DeliveryStatus::TagNotFound);
    assert_eq!(refused(131_051), DeliveryStatus::NotSupported);
    assert_eq!(refused(131_042), DeliveryStatus::InsufficientCredits);
    assert_eq!(refused(133_010), DeliveryStatus::InvalidChannelNumber);
    for code in [0, 3, 10, 190, 200, 230, 299, 2500] {
        assert_eq!(refused(code), DeliveryStatus::ApplicationError, "{code}");
    }
    for code in [368, 131_031, 131_048, 131_049] {
        assert_eq!(refused(code), DeliveryStatus::Rejected, "{code}");
    }
    for code in [100, 131_008, 131_009, 132_000, 132_012] {
        assert_eq!(refused(code), DeliveryStatus::InvalidRequest, "{code}");
    }
    assert_eq!(refused(999_999), DeliveryStatus::Failed);
    // Rate limits and transient codes come back as retries, even with HTTP 400.
    for code in [4, 80_007, 130_429, 131_000, 131_056] {
        let result = whatsapp::read_send_answer(400, &graph_error(code, None, "m"), None);
        assert!(matches!(result, SendResult::Retry { .. }), "{code}: {result:?}");
    }
    assert_eq!(whatsapp::error_meaning(130_429).status, DeliveryStatus::GatewayError);
}

#[test]
fn http_failures_are_retries_whatever_the_body() {
    for read in [whatsapp::read_send_answer, messenger::read_send_answer] {
        for status in [429, 500, 502, 503] {
            let result = read(status, &graph_error(131_047, None, "m"), Some("7"));
            let SendResult::Retry { reason } = result else { panic!("{status}: {result:?}") };
            assert!(reason.contains(&status.to_string()), "{reason}");
        }
        let SendResult::Retry { reason } = read(429, b"", Some("7")) else { panic!() };
        assert!(reason.contains("retry after 7 s"), "{reason}");
        assert!(matches!(read(400, b"<html>", None), SendResult::Retry { .. }));
        assert!(matches!(read(200, b"not json", None), SendResult::Retry { .. }));
    }
}

#[test]
fn graph_error_reasons_carry_code_subcode_message_and_details() {
    let mut error = GraphError::new(131_047, "OAuthException", "(#131047) Re-engagement message");
    error.error_subcode = Some(2_494_010);
    error.error_data = Some(meta::ErrorData {
        messaging_product: Some("whatsapp".into()),
        details: Some("more than 24 hours".into()),
    });
    assert_eq!(
        error.reason(),
        "(131047/2494010) (#131047) Re-engagement message: more than 24 hours"
    );
    let body = serde_json::to_vec(&meta::GraphErrorBody { error: error.clone() }).unwrap();
    assert_eq!(meta::parse_error(&body).unwrap(), error);
    assert!(meta::parse_error(b"{}").is_err());
}

// =============================================================================================
// WhatsApp: webhooks
// =============================================================================================

#[test]
fn whatsapp_inbound_text_fixture() {
    let events = whatsapp::read_webhook(&whatsapp_fixture("inbound_text_webhook.json")).unwrap();
    assert!(events.statuses.is_empty());
    let [inbound] = events.inbound.as_slice() else { panic!("{events:?}") };
    assert_eq!(inbound.channel, Channel::WhatsApp);
    assert_eq!(inbound.customer, "+16505551234");
    assert_eq!(inbound.channel_number, "+15550783881");
    assert_eq!(inbound.provider_message_id.as_deref(), Some("wamid.inbound-1"));
    assert_eq!(inbound.in_reply_to, None);
    assert_eq!(inbound.parts, vec![InboundPart::Text { text: "Hello".into() }]);
    assert_eq!(inbound.received_at, Some(at_seconds(1_700_000_000)));
    let [window] = events.windows.as_slice() else { panic!("{events:?}") };
    assert_eq!(window.customer, "+16505551234");
    assert_eq!(window.channel_number, "+15550783881");
    assert_eq!(window.opened_at, at_seconds(1_700_000_000));
    assert_eq!(window.provider_message_id, "wamid.inbound-1");
}

#[test]
fn whatsapp_status_fixture() {
    let events = whatsapp::read_webhook(&whatsapp_fixture("status_webhook.json")).unwrap();
    assert!(events.inbound.is_empty() && events.windows.is_empty());
    let [status] = events.statuses.as_slice() else { panic!("{events:?}") };
    assert_eq!(status.provider_message_id, "wamid.outbound-1");
    assert_eq!(status.status, DeliveryStatus::Delivered);
    assert_eq!(status.at, Some(at_seconds(1_700_000_060)));
    assert_eq!(status.reason, None);
}

fn whatsapp_value(value: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": value }] }],
    }))
    .unwrap()
}

#[test]
fn whatsapp_every_status_maps() {
    let status = |status: &str, errors: Value| {
        let value = json!({
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": "1" },
            "statuses": [{ "id": "wamid.X", "status": status, "timestamp": "1700000000",
                "recipient_id": "254712345678", "errors": errors }],
        });
        let events = whatsapp::read_webhook(&whatsapp_value(&value)).unwrap();
        events.statuses.into_iter().next().unwrap()
    };
    assert_eq!(status("sent", json!([])).status, DeliveryStatus::Sent);
    assert_eq!(status("delivered", json!([])).status, DeliveryStatus::Delivered);
    assert_eq!(status("read", json!([])).status, DeliveryStatus::Read);
    assert_eq!(status("failed", json!([])).status, DeliveryStatus::Failed);
    assert_eq!(status("deleted", json!([])).status, DeliveryStatus::Sent);
    let outside = status(
        "failed",
        json!([{ "code": 131_047, "title": "Re-engagement message",
            "error_data": { "details": "more than 24 hours" } }]),
    );
    assert_eq!(outside.status, DeliveryStatus::NoSessionInProgress);
    assert_eq!(
        outside.reason.as_deref(),
        Some("(131047) Re-engagement message: more than 24 hours")
    );
    let unknown = status("failed", json!([{ "code": 131_026, "title": "Message undeliverable" }]));
    assert_eq!(unknown.status, DeliveryStatus::CustomerNumberNotFound);
}

#[test]
fn whatsapp_every_inbound_kind_maps() {
    let messages = json!([
        { "from": "254712345678", "id": "wamid.1", "timestamp": "1700000001", "type": "image",
          "image": { "id": "1234", "mime_type": "image/jpeg", "sha256": "h", "caption": "pic" } },
        { "from": "254712345678", "id": "wamid.2", "timestamp": "1700000002", "type": "audio",
          "audio": { "id": "55", "mime_type": "audio/ogg; codecs=opus", "voice": true } },
        { "from": "254712345678", "id": "wamid.3", "timestamp": "1700000003", "type": "video",
          "video": { "id": "56", "mime_type": "video/mp4" } },
        { "from": "254712345678", "id": "wamid.4", "timestamp": "1700000004", "type": "document",
          "document": { "id": "57", "mime_type": "application/pdf", "filename": "a.pdf", "caption": "doc" } },
        { "from": "254712345678", "id": "wamid.5", "timestamp": "1700000005", "type": "sticker",
          "sticker": { "id": "58", "mime_type": "image/webp" } },
        { "from": "254712345678", "id": "wamid.6", "timestamp": "1700000006", "type": "location",
          "location": { "latitude": -1.292_065_9, "longitude": 36.821_946_2, "name": "Nairobi", "address": "CBD" } },
        { "from": "254712345678", "id": "wamid.7", "timestamp": "1700000007", "type": "button",
          "button": { "text": "Yes", "payload": "YES_PAYLOAD" },
          "context": { "from": "15550783881", "id": "wamid.OURS" } },
        { "from": "254712345678", "id": "wamid.8", "timestamp": "1700000008", "type": "interactive",
          "interactive": { "type": "button_reply", "button_reply": { "id": "b1", "title": "Pay now" } } },
        { "from": "254712345678", "id": "wamid.9", "timestamp": "1700000009", "type": "interactive",
          "interactive": { "type": "list_reply", "list_reply": { "id": "r1", "title": "Row", "description": "d" } } },
        { "from": "254712345678", "id": "wamid.10", "timestamp": "1700000010", "type": "text",
          "text": { "body": "a reply" }, "context": { "from": "15550783881", "id": "wamid.OURS" } },
        { "from": "254712345678", "id": "wamid.11", "timestamp": "not a time", "type": "reaction",
          "reaction": { "message_id": "wamid.OURS", "emoji": "+1" } },
    ]);
    let value = json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "+1 555-078-3881", "phone_number_id": "1" },
        "contacts": [{ "profile": { "name": "A" }, "wa_id": "254712345678" }],
        "messages": messages,
    });
    let events = whatsapp::read_webhook(&whatsapp_value(&value)).unwrap();
    assert_eq!(events.inbound.len(), 11);
    assert!(events.inbound.iter().all(|inbound| inbound.channel_number == "+15550783881"));
    assert!(events.inbound.iter().all(|inbound| inbound.customer == "+254712345678"));
    let media = |url: &str, media, caption: Option<&str>| {
        vec![InboundPart::Media(Media { url: url.into(), media, caption: caption.map(Into::into) })]
    };
    let parts: Vec<_> = events.inbound.iter().map(|inbound| inbound.parts.clone()).collect();
    assert_eq!(parts[0], media("whatsapp-media:1234", MediaType::Image, Some("pic")));
    assert_eq!(whatsapp::media_id("whatsapp-media:1234"), Some("1234"));
    assert_eq!(parts[1], media("whatsapp-media:55", MediaType::Voice, None));
    assert_eq!(parts[2], media("whatsapp-media:56", MediaType::Video, None));
    assert_eq!(parts[3], media("whatsapp-media:57", MediaType::Document, Some("doc")));
    assert_eq!(parts[4], media("whatsapp-media:58", MediaType::Sticker, None));
    assert_eq!(
        parts[5],
        vec![InboundPart::Location(Location {
            latitude: "-1.2920659".parse().unwrap(),
            longitude: "36.8219462".parse().unwrap(),
            label: Some("Nairobi".into()),
            address: Some("CBD".into()),
        })]
    );
    assert_eq!(parts[6], vec![InboundPart::Text { text: "Yes".into() }]);
    assert_eq!(events.inbound[6].in_reply_to.as_deref(), Some("wamid.OURS"));
    assert_eq!(parts[7], vec![InboundPart::Text { text: "Pay now".into() }]);
    assert_eq!(parts[8], vec![InboundPart::Text { text: "Row".into() }]);
    assert_eq!(events.inbound[9].in_reply_to.as_deref(), Some("wamid.OURS"));
    // A reaction has no part here but is still the customer's message; its time is unreadable,
    // so it opens no window the adapter can report.
    assert!(parts[10].is_empty());
    assert_eq!(events.inbound[10].received_at, None);
    assert_eq!(events.windows.len(), 10);
    assert_eq!(events.windows[9].opened_at, at_seconds(1_700_000_010));
}

#[test]
fn whatsapp_webhooks_that_are_not_whatsapp_are_refused() {
    assert!(whatsapp::read_webhook(&page_webhook(b"{}")).is_err());
    assert!(whatsapp::read_webhook(b"[]").is_err());
    let no_number = json!({ "messaging_product": "whatsapp",
        "messages": [{ "from": "1", "id": "wamid.1", "type": "text", "text": { "body": "x" } }] });
    assert!(whatsapp::read_webhook(&whatsapp_value(&no_number)).is_err());
    let errors = json!({ "messaging_product": "whatsapp",
        "errors": [{ "code": 131_000, "title": "Something went wrong" }] });
    let events = whatsapp::read_webhook(&whatsapp_value(&errors)).unwrap();
    assert_eq!(events.errors, vec!["(131000) Something went wrong".to_owned()]);
}

// =============================================================================================
// Messenger: requests
// =============================================================================================

fn messenger_json(body: &Body, kind: &MessagingType) -> Value {
    serde_json::to_value(messenger::build_send("1254459154682919", body, kind).unwrap()).unwrap()
}

#[test]
fn messenger_text_with_each_messaging_type() {
    assert_eq!(
        messenger_json(&Body::Text { text: "Hi".into() }, &MessagingType::Response),
        json!({
            "recipient": { "id": "1254459154682919" },
            "messaging_type": "RESPONSE",
            "message": { "text": "Hi" },
        })
    );
    assert_eq!(
        messenger_json(&Body::Url { url: "https://x".into() }, &MessagingType::Update)["messaging_type"],
        "UPDATE"
    );
    let tagged = messenger_json(
        &Body::Text { text: "Your order shipped".into() },
        &MessagingType::MessageTag("POST_PURCHASE_UPDATE".into()),
    );
    assert_eq!(tagged["messaging_type"], "MESSAGE_TAG");
    assert_eq!(tagged["tag"], "POST_PURCHASE_UPDATE");
    assert!(matches!(
        messenger::build_send(
            "1",
            &Body::Text { text: "x".into() },
            &MessagingType::MessageTag(" ".into())
        ),
        Err(BuildError::Invalid(_))
    ));
    assert!(matches!(
        messenger::build_send(" ", &Body::Text { text: "x".into() }, &MessagingType::Response),
        Err(BuildError::Invalid(_))
    ));
}

#[test]
fn messenger_attachments_and_unsupported_bodies() {
    let media = |kind, caption: Option<&str>| {
        Body::Media(Media {
            url: "https://example.com/f".into(),
            media: kind,
            caption: caption.map(str::to_owned),
        })
    };
    for (kind, name) in [
        (MediaType::Image, "image"),
        (MediaType::Sticker, "image"),
        (MediaType::Audio, "audio"),
        (MediaType::Voice, "audio"),
        (MediaType::Video, "video"),
        (MediaType::Document, "file"),
    ] {
        assert_eq!(
            messenger_json(&media(kind, None), &MessagingType::Response)["message"],
            json!({ "attachment": { "type": name, "payload": { "url": "https://example.com/f" } } })
        );
    }
    assert!(matches!(
        messenger::build_send("1", &media(MediaType::Image, Some("c")), &MessagingType::Response),
        Err(BuildError::Invalid(_))
    ));
    for body in [
        media(MediaType::Contact, None),
        Body::Template(Template { id: "t".into(), language: None, params: Vec::new() }),
        Body::Location(Location {
            latitude: 1.into(),
            longitude: 2.into(),
            label: None,
            address: None,
        }),
        Body::Ussd { text: "x".into(), is_terminal: false },
    ] {
        assert!(matches!(
            messenger::build_send("1", &body, &MessagingType::Response),
            Err(BuildError::Unsupported(_))
        ));
    }
}

// =============================================================================================
// Messenger: answers and errors
// =============================================================================================

#[test]
fn messenger_send_answer_is_sent() {
    let body = br#"{"recipient_id":"1254477777772919","message_id":"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"}"#;
    let SendResult::Accepted { provider_message_id, status, cost } =
        messenger::read_send_answer(200, body, None)
    else {
        panic!()
    };
    assert!(provider_message_id.unwrap().starts_with("m_AG5Hz2Uq"));
    assert_eq!(status, DeliveryStatus::Sent);
    assert_eq!(cost, None);
}

#[test]
fn messenger_invalid_token_fixture_is_an_application_error() {
    let body = messenger_fixture("send_api_error_invalid_token.json");
    let error = meta::parse_error(&body).unwrap();
    assert_eq!(error.code, 190);
    assert_eq!(error.error_subcode, Some(1_234_567));
    assert_eq!(error.kind.as_deref(), Some("OAuthException"));
    assert_eq!(error.fbtrace_id.as_deref(), Some("BLBz/WZt8dN"));
    assert_eq!(
        messenger::read_send_answer(400, &body, None),
        SendResult::Refused {
            status: DeliveryStatus::ApplicationError,
            reason: "(190/1234567) Invalid OAuth access token.".into(),
        }
    );
}

#[test]
fn messenger_errors_map_to_platform_statuses() {
    let read = |code, subcode, message: &str| {
        messenger::read_send_answer(400, &graph_error(code, subcode, message), None)
    };
    let refused = |code, subcode, message: &str| match read(code, subcode, message) {
        SendResult::Refused { status, .. } => status,
        other => panic!("{code}: {other:?}"),
    };
    assert_eq!(
        refused(551, None, "This person isn't available right now."),
        DeliveryStatus::Failed
    );
    assert_eq!(
        refused(10, Some(2_018_278), "This message is sent outside of allowed window."),
        DeliveryStatus::NoSessionInProgress
    );
    assert_eq!(refused(10, None, "Permission denied"), DeliveryStatus::ApplicationError);
    assert_eq!(refused(100, Some(2_018_001), "No matching user found"), {
        DeliveryStatus::CustomerNumberNotFound
    });
    assert_eq!(refused(100, None, "(#100) Param tag must be valid"), DeliveryStatus::TagNotFound);
    assert_eq!(refused(100, None, "(#100) Invalid parameter"), DeliveryStatus::InvalidRequest);
    for code in [190, 200, 230] {
        assert_eq!(refused(code, None, "x"), DeliveryStatus::ApplicationError, "{code}");
    }
    assert_eq!(refused(368, None, "x"), DeliveryStatus::Rejected);
    assert_eq!(refused(12_345, None, "x"), DeliveryStatus::Failed);
    for code in [613, 4, 2, 1200] {
        assert!(matches!(read(code, None, "x"), SendResult::Retry { .. }), "{code}");
    }
    let rate =
        GraphError::new(613, "OAuthException", "Calls to this API have exceeded the rate limit.");
    assert_eq!(messenger::error_meaning(&rate).status, DeliveryStatus::GatewayError);
}

// =============================================================================================
// Messenger: webhooks
// =============================================================================================

#[test]
fn messenger_delivery_fixture_gives_a_status_per_mid_and_a_watermark() {
    let body = page_webhook(&messenger_fixture("message_deliveries_event.json"));
    let events = messenger::read_webhook(&body).unwrap();
    let [status] = events.statuses.as_slice() else { panic!("{events:?}") };
    assert_eq!(status.provider_message_id, "mid.1458668856218:ed81099e15d3f4f233");
    assert_eq!(status.status, DeliveryStatus::Delivered);
    assert_eq!(status.at, Some(at_millis(1_458_668_856_253)));
    assert_eq!(
        events.watermarks,
        vec![Watermark {
            page_id: "<PAGE_ID>".into(),
            psid: "<PSID>".into(),
            status: WatermarkStatus::Delivered,
            up_to: at_millis(1_458_668_856_253),
        }]
    );
    assert!(events.inbound.is_empty());
}

#[test]
fn messenger_read_fixture_gives_a_read_watermark_only() {
    let body = page_webhook(&messenger_fixture("message_reads_event.json"));
    let events = messenger::read_webhook(&body).unwrap();
    assert!(events.statuses.is_empty() && events.inbound.is_empty());
    assert_eq!(
        events.watermarks,
        vec![Watermark {
            page_id: "<PAGE_ID>".into(),
            psid: "<PSID>".into(),
            status: WatermarkStatus::Read,
            up_to: at_millis(1_458_668_856_253),
        }]
    );
    assert_eq!(WatermarkStatus::Read.status(), DeliveryStatus::Read);
}

#[test]
fn messenger_messages_postbacks_and_echoes() {
    let event = |body: Value| {
        let mut event = json!({ "sender": { "id": "PSID1" }, "recipient": { "id": "PAGE1" },
            "timestamp": 1_700_000_000_123_i64 });
        for (key, value) in body.as_object().unwrap() {
            event[key] = value.clone();
        }
        event
    };
    let webhook = json!({ "object": "page", "entry": [{ "id": "PAGE1", "time": 1, "messaging": [
        event(json!({ "message": { "mid": "m_1", "text": "hello", "reply_to": { "mid": "m_OURS" } } })),
        event(json!({ "message": { "mid": "m_2", "attachments": [
            { "type": "image", "payload": { "url": "https://cdn/x.jpg" } },
            { "type": "image", "payload": { "url": "https://cdn/s.png", "sticker_id": 369_239_263_222_822_i64 } },
            { "type": "file", "payload": { "url": "https://cdn/a.pdf" } },
            { "type": "location", "payload": { "coordinates": { "lat": -1.29, "long": 36.82 } } },
            { "type": "fallback", "payload": { "url": "https://link" } },
        ] } })),
        event(json!({ "message": { "mid": "m_3", "text": "ours", "is_echo": true } })),
        event(json!({ "postback": { "title": "Get Started", "payload": "GET_STARTED", "mid": "m_4" } })),
        event(json!({ "message": { "mid": "m_5", "quick_reply": { "payload": "QR" } } })),
        json!({ "recipient": { "id": "PAGE1" }, "message": { "mid": "m_6", "text": "no sender" } }),
    ]}]});
    let events = messenger::read_webhook(&serde_json::to_vec(&webhook).unwrap()).unwrap();
    assert_eq!(events.inbound.len(), 4, "{events:?}");
    let first = &events.inbound[0];
    assert_eq!(first.channel, Channel::Messenger);
    assert_eq!(first.customer, "PSID1");
    assert_eq!(first.channel_number, "PAGE1");
    assert_eq!(first.provider_message_id.as_deref(), Some("m_1"));
    assert_eq!(first.in_reply_to.as_deref(), Some("m_OURS"));
    assert_eq!(first.received_at, Some(at_millis(1_700_000_000_123)));
    assert_eq!(first.parts, vec![InboundPart::Text { text: "hello".into() }]);
    let media =
        |url: &str, media| InboundPart::Media(Media { url: url.into(), media, caption: None });
    assert_eq!(
        events.inbound[1].parts,
        vec![
            media("https://cdn/x.jpg", MediaType::Image),
            media("https://cdn/s.png", MediaType::Sticker),
            media("https://cdn/a.pdf", MediaType::Document),
            InboundPart::Location(Location {
                latitude: "-1.29".parse().unwrap(),
                longitude: "36.82".parse().unwrap(),
                label: None,
                address: None,
            }),
        ]
    );
    assert_eq!(events.inbound[2].provider_message_id.as_deref(), Some("m_4"));
    assert_eq!(events.inbound[2].parts, vec![InboundPart::Text { text: "GET_STARTED".into() }]);
    assert_eq!(events.inbound[3].parts, vec![InboundPart::Text { text: "QR".into() }]);
}

#[test]
fn messenger_webhooks_that_are_not_pages_are_refused() {
    assert!(messenger::read_webhook(&whatsapp_fixture("status_webhook.json")).is_err());
    assert!(messenger::read_webhook(b"null").is_err());
    // A delivery whose watermark is not a time is skipped, not guessed.
    let odd = json!({ "object": "page", "entry": [{ "messaging": [
        { "sender": { "id": "P" }, "recipient": { "id": "G" },
          "delivery": { "mids": ["m_1"], "watermark": "soon" } },
    ]}]});
    let events = messenger::read_webhook(&serde_json::to_vec(&odd).unwrap()).unwrap();
    assert!(events.statuses.is_empty() && events.watermarks.is_empty());
}
