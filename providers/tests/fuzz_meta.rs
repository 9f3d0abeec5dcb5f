#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property-based fuzzing of the Meta adapters' readers: WhatsApp and Messenger webhooks and
//! send answers, Graph error bodies, the signature check and the verification handshake.
//!
//! Each reader is fed arbitrary bytes, documents shaped like the real messages with arbitrary
//! values, and the sample payloads in `fixtures/` with fields dropped or replaced. Whatever
//! arrives, a reader must not panic; a status update must be one the message states (never a
//! final status it did not say); a signature verifies only for the exact body and secret;
//! the handshake answers only our token. `HAZINA_FUZZ_CASES` sets the cases per target.

use hazina_fuzz::config;
use hazina_providers::messaging::{DeliveryStatus, SendResult, Verified};
use hazina_providers::{messenger, meta, whatsapp};
use proptest::prelude::*;
use serde_json::{Value, json};

fn fixture(folder: &str, name: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder)
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// An arbitrary JSON scalar, of the kinds providers drift between.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[0-9]{0,20}".prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        Just(json!("-1.2920659")),
        Just(json!(1.5e300)),
        Just(json!([])),
        Just(json!({})),
    ]
}

/// Replaces the value at a random depth-first position of `doc` with `with`, or drops the
/// key there (when `drop`).
fn mutate(doc: &mut Value, target: usize, with: &Value, drop: bool) {
    fn walk(value: &mut Value, target: usize, seen: &mut usize, with: &Value, drop: bool) -> bool {
        match value {
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for key in keys {
                    if *seen == target {
                        if drop {
                            map.remove(&key);
                        } else {
                            map.insert(key, with.clone());
                        }
                        return true;
                    }
                    *seen += 1;
                    if walk(map.get_mut(&key).unwrap(), target, seen, with, drop) {
                        return true;
                    }
                }
                false
            }
            Value::Array(items) => {
                items.iter_mut().any(|item| walk(item, target, seen, with, drop))
            }
            _ => false,
        }
    }
    let mut seen = 0;
    walk(doc, target, &mut seen, with, drop);
}

fn whatsapp_samples() -> Vec<Value> {
    vec![
        fixture("whatsapp", "inbound_text_webhook.json"),
        fixture("whatsapp", "status_webhook.json"),
        json!({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
            "messaging_product":"whatsapp",
            "metadata":{"display_phone_number":"15550783881","phone_number_id":"1"},
            "messages":[
                {"from":"1","id":"wamid.1","timestamp":"1","type":"location","location":{"latitude":1.5,"longitude":-2}},
                {"from":"1","id":"wamid.2","timestamp":"1","type":"image","image":{"id":"9","caption":"c"}},
                {"from":"1","id":"wamid.3","timestamp":"1","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"r","title":"t"}}}
            ],
            "statuses":[{"id":"wamid.4","status":"failed","timestamp":"2","recipient_id":"1","errors":[{"code":131_047,"title":"x"}]}]
        }}]}]}),
    ]
}

fn messenger_samples() -> Vec<Value> {
    let wrap =
        |event: Value| json!({"object":"page","entry":[{"id":"1","time":1,"messaging":[event]}]});
    vec![
        wrap(fixture("messenger", "message_deliveries_event.json")),
        wrap(fixture("messenger", "message_reads_event.json")),
        wrap(json!({"sender":{"id":"1"},"recipient":{"id":"2"},"timestamp":1,
            "message":{"mid":"m_1","text":"x","reply_to":{"mid":"m_0"},
                "attachments":[{"type":"location","payload":{"coordinates":{"lat":1,"long":2}}}]}})),
        wrap(json!({"sender":{"id":"1"},"recipient":{"id":"2"},"postback":{"payload":"P"}})),
    ]
}

/// Statuses a WhatsApp status word may map to.
fn whatsapp_status_allowed(word: &str, status: DeliveryStatus) -> bool {
    match word {
        "delivered" => status == DeliveryStatus::Delivered,
        "read" => status == DeliveryStatus::Read,
        // A failure is a final status other than the successes.
        "failed" => status.is_final() && !status.reached() && status != DeliveryStatus::Received,
        // `sent`, and anything else: at most sent.
        _ => status == DeliveryStatus::Sent,
    }
}

fn check_whatsapp(body: &[u8]) -> Result<(), TestCaseError> {
    let Ok(events) = whatsapp::read_webhook(body) else { return Ok(()) };
    let webhook: whatsapp::Webhook = serde_json::from_slice(body).unwrap();
    let words: Vec<_> = webhook
        .entry
        .iter()
        .flat_map(|entry| &entry.changes)
        .flat_map(|change| &change.value.statuses)
        .map(|status| status.status.clone())
        .collect();
    prop_assert_eq!(words.len(), events.statuses.len());
    for (word, update) in words.iter().zip(&events.statuses) {
        prop_assert!(whatsapp_status_allowed(word, update.status), "{} -> {:?}", word, update);
    }
    for inbound in &events.inbound {
        prop_assert!(inbound.customer.starts_with('+'));
        prop_assert!(inbound.channel_number.len() > 1);
    }
    prop_assert!(events.windows.len() <= events.inbound.len());
    Ok(())
}

fn check_messenger(body: &[u8]) -> Result<(), TestCaseError> {
    let Ok(events) = messenger::read_webhook(body) else { return Ok(()) };
    // Messenger never reports a failure, and a status is only ever a delivery.
    for update in &events.statuses {
        prop_assert_eq!(update.status, DeliveryStatus::Delivered);
        prop_assert!(update.at.is_some());
    }
    Ok(())
}

fn check_answer(result: &SendResult, status: u16) -> Result<(), TestCaseError> {
    match result {
        SendResult::Accepted { provider_message_id, status: accepted, .. } => {
            prop_assert!((200..300).contains(&status));
            prop_assert!(provider_message_id.is_some());
            prop_assert!(matches!(accepted, DeliveryStatus::Queued | DeliveryStatus::Sent));
        }
        SendResult::Refused { status: refused, .. } => {
            prop_assert!((400..500).contains(&status) && status != 429, "{}", status);
            prop_assert!(refused.is_final());
        }
        SendResult::Retry { .. } => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn webhook_readers_never_panic_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_whatsapp(&bytes)?;
        check_messenger(&bytes)?;
        let _ = meta::parse_error(&bytes);
    }

    #[test]
    fn whatsapp_webhooks_with_values_replaced_or_dropped(
        sample in 0..3usize, target in 0..64usize, with in scalar(), drop in any::<bool>(),
        status in "(sent|delivered|read|failed|deleted|warning|)"
    ) {
        let mut doc = whatsapp_samples()[sample].clone();
        if sample == 1 {
            doc["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = json!(status);
        }
        mutate(&mut doc, target, &with, drop);
        check_whatsapp(&serde_json::to_vec(&doc).unwrap())?;
    }

    #[test]
    fn messenger_webhooks_with_values_replaced_or_dropped(
        sample in 0..4usize, target in 0..32usize, with in scalar(), drop in any::<bool>()
    ) {
        let mut doc = messenger_samples()[sample].clone();
        mutate(&mut doc, target, &with, drop);
        check_messenger(&serde_json::to_vec(&doc).unwrap())?;
    }

    #[test]
    fn send_answers_never_panic_and_classify_by_status(
        status in prop_oneof![Just(200u16), Just(400), Just(401), Just(404), Just(429), Just(500), 100u16..600],
        code in prop_oneof![any::<i64>(), Just(131_047i64), Just(10), Just(100), Just(613)],
        subcode in proptest::option::of(any::<i64>()),
        message in "\\PC{0,32}",
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        shape in 0..4usize,
    ) {
        let body = match shape {
            0 => serde_json::to_vec(&json!({"error":{"message":message,"code":code,"error_subcode":subcode}})).unwrap(),
            1 => serde_json::to_vec(&json!({"messages":[{"id":message}],"recipient_id":"1","message_id":message})).unwrap(),
            2 => serde_json::to_vec(&json!({"messages":[],"message_id":null})).unwrap(),
            _ => bytes,
        };
        check_answer(&whatsapp::read_send_answer(status, &body, None), status)?;
        check_answer(&messenger::read_send_answer(status, &body, Some("1")), status)?;
    }

    #[test]
    fn signatures_verify_only_the_exact_body_and_secret(
        secret in proptest::collection::vec(any::<u8>(), 0..64),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        flip in any::<proptest::sample::Index>(),
        header in "\\PC{0,80}",
    ) {
        let signature = meta::sign(&secret, &body);
        prop_assert_eq!(meta::verify_signature(&secret, Some(&signature), &body), Verified::Yes);
        if !body.is_empty() {
            let mut tampered = body.clone();
            tampered[flip.index(body.len())] ^= 0x01;
            prop_assert_eq!(meta::verify_signature(&secret, Some(&signature), &tampered), Verified::No);
        }
        // HMAC pads its key with zeros, so another key must differ in more than trailing
        // zeros.
        let mut other = secret.clone();
        other.push(1);
        prop_assert_eq!(meta::verify_signature(&other, Some(&signature), &body), Verified::No);
        // An arbitrary header verifies only if it is the signature itself (ignoring case and
        // surrounding spaces).
        if meta::verify_signature(&secret, Some(&header), &body) == Verified::Yes {
            prop_assert_eq!(header.trim().to_ascii_lowercase(), signature);
        }
    }

    #[test]
    fn the_handshake_answers_only_our_token(
        query in "\\PC{0,80}",
        token in "[a-zA-Z0-9]{1,16}",
        sent in "[a-zA-Z0-9]{1,16}",
        challenge in "[0-9]{1,12}",
    ) {
        let _ = meta::verify_challenge(&query, &token);
        let query = format!("hub.mode=subscribe&hub.verify_token={sent}&hub.challenge={challenge}");
        let answer = meta::verify_challenge(&query, &token);
        if sent == token {
            prop_assert_eq!(answer, Some(challenge));
        } else {
            prop_assert_eq!(answer, None);
        }
    }
}
