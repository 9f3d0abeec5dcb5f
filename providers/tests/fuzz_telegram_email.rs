#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property-based fuzzing of the Telegram and email readers: webhook updates, send answers,
//! the secret-token check, `SendGrid` Inbound Parse forms, raw header blocks and SMTP replies.
//! Whatever arrives, a reader must not panic, and what it reads must agree with what was
//! sent: an update's id and chat come back as sent, a 4xx SMTP reply is never a refusal and a
//! 5xx never an acceptance, a form's text fields come back byte for byte.
//!
//! `HAZINA_FUZZ_CASES` sets the cases per target (see `hazina_fuzz::config`).

use hazina_fuzz::config;
use hazina_providers::Secret;
use hazina_providers::email::{
    parse_form, read_inbound_parse, read_smtp_reply, read_thread_headers,
};
use hazina_providers::messaging::{DeliveryStatus, InboundPart, SendResult, Verified};
use hazina_providers::telegram::{read_send_response, read_update, verify_secret_token};
use proptest::prelude::*;

fn json_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[ -~]{0,12}", Just("/start".to_owned()), Just("/stop".to_owned())]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn telegram_readers_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512), status in any::<u16>()) {
        let _ = read_update(&bytes, "bot");
        let _ = read_send_response(status, &bytes);
        let _ = verify_secret_token(Some(&bytes), &Secret::new("token"));
    }

    #[test]
    fn updates_shaped_like_telegrams_read_back_their_ids(
        update_id in any::<i64>(),
        chat_id in any::<i64>(),
        message_id in any::<i64>(),
        date in any::<i64>(),
        text in json_text(),
        latitude in "-?(0|[1-9][0-9]{0,2})(\\.[0-9]{1,8})?",
        status in prop_oneof![Just("kicked".to_owned()), Just("member".to_owned()), "[a-z]{0,8}"],
    ) {
        let message = serde_json::json!({
            "update_id": update_id,
            "message": {"message_id": message_id, "date": date, "chat": {"id": chat_id, "type": "private"},
                "text": text, "location": {"latitude": serde_json::from_str::<serde_json::Value>(&latitude).unwrap(), "longitude": 1.5}}
        });
        let read = read_update(message.to_string().as_bytes(), "bot").unwrap();
        prop_assert_eq!(read.update_id, update_id);
        let inbound = read.inbound.unwrap();
        prop_assert_eq!(&inbound.customer, &chat_id.to_string());
        let expected_id = format!("{chat_id}:{message_id}");
        prop_assert_eq!(inbound.provider_message_id.as_deref(), Some(expected_id.as_str()));
        let sent: rust_decimal::Decimal = latitude.parse().unwrap();
        let read_latitude = inbound.parts.iter().find_map(|part| match part {
            InboundPart::Location(location) => Some(location.latitude),
            _ => None,
        });
        prop_assert_eq!(read_latitude, Some(sent));
        let member = serde_json::json!({
            "update_id": update_id,
            "my_chat_member": {"chat": {"id": chat_id}, "date": date,
                "old_chat_member": {"status": "member"}, "new_chat_member": {"status": status}}
        });
        let read = read_update(member.to_string().as_bytes(), "bot").unwrap();
        prop_assert_eq!(read.consent.is_some(), status == "kicked");
    }

    #[test]
    fn telegram_answers_are_sent_only_when_ok(
        ok in any::<bool>(),
        code in prop_oneof![Just(400_u16), Just(403), Just(429), Just(500), any::<u16>()],
        description in json_text(),
        retry_after in proptest::option::of(any::<u64>()),
    ) {
        let body = serde_json::json!({"ok": ok, "error_code": code, "description": description,
            "parameters": {"retry_after": retry_after}, "result": {"message_id": 1, "chat": {"id": 2}}});
        let outcome = read_send_response(code, body.to_string().as_bytes());
        prop_assert_eq!(matches!(outcome.result, SendResult::Accepted { .. }), ok);
        if !ok && code == 403 {
            let no_consent = matches!(outcome.result, SendResult::Refused { status: DeliveryStatus::NoConsent, .. });
            prop_assert!(no_consent, "{:?}", outcome);
        }
        if !ok && (code == 429 || (500..600).contains(&code)) {
            let retry = matches!(outcome.result, SendResult::Retry { .. });
            prop_assert!(retry, "{:?}", outcome);
        }
    }

    #[test]
    fn a_secret_token_verifies_only_itself(token in "[A-Za-z0-9_-]{1,64}", other in "[A-Za-z0-9_-]{0,64}") {
        let secret = Secret::new(token.clone());
        prop_assert_eq!(verify_secret_token(Some(token.as_bytes()), &secret), Verified::Yes);
        prop_assert_eq!(verify_secret_token(Some(other.as_bytes()), &secret) == Verified::Yes, other == token);
    }

    #[test]
    fn email_readers_take_any_bytes(
        content_type in prop_oneof![any::<String>(), Just("multipart/form-data; boundary=xYzZY".to_owned())],
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        text in any::<String>(),
    ) {
        let _ = parse_form(&content_type, &bytes);
        let _ = read_inbound_parse(&content_type, &bytes);
        let _ = read_thread_headers(&text);
        let _ = read_thread_headers(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn smtp_replies_keep_their_class(code in 0_u16..1000, text in any::<String>()) {
        let result = read_smtp_reply(code, &text);
        let right = match code {
            200..=299 => matches!(result, SendResult::Accepted { .. }),
            400..=499 => matches!(result, SendResult::Retry { .. }),
            500..=599 => matches!(result, SendResult::Refused { .. }),
            _ => !matches!(result, SendResult::Accepted { .. }),
        };
        prop_assert!(right, "{} read as {:?}", code, result);
    }

    #[test]
    fn form_fields_come_back_byte_for_byte(
        fields in proptest::collection::vec(("[a-z_]{1,10}", "[ -~]{0,40}"), 1..8),
    ) {
        let mut body = Vec::new();
        for (name, value) in &fields {
            body.extend_from_slice(format!("--xYzZY\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
        }
        body.extend_from_slice(b"--xYzZY--\r\n");
        let read = parse_form("multipart/form-data; boundary=xYzZY", &body).unwrap();
        let read: Vec<(String, Vec<u8>)> = read.into_iter().map(|field| (field.name, field.value)).collect();
        let sent: Vec<(String, Vec<u8>)> = fields.iter().map(|(name, value)| (name.clone(), value.clone().into_bytes())).collect();
        prop_assert_eq!(read, sent);
    }
}
