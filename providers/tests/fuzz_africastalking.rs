#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property-based fuzzing of the Africa's Talking readers the voice, USSD, airtime and
//! subscription families added (the SMS answer, report, inbound and USSD-step readers are
//! fuzzed in `fuzz_parsers.rs`), and of the voice XML writer.
//!
//! Whatever arrives, a reader must not panic; an amount it reads must be exactly the text
//! sent; a success must be the provider's own word for one; and any list of voice actions,
//! whatever its text, must render to XML that reads back as the same actions.
//!
//! `HAZINA_FUZZ_CASES` sets the cases per target (see `hazina_fuzz::config`).

use hazina_fuzz::config;
use hazina_providers::africastalking::airtime::{
    AirtimeOutcome, AirtimeResponse, AirtimeStatus, SendAirtime,
};
use hazina_providers::africastalking::voice::{self, MakeCallResponse, Response, VoiceCallback};
use hazina_providers::africastalking::{Price, SendSms, SubscriptionUpdate, UssdSessionEnd};
use hazina_providers::messaging::{
    InboundPart, Prompt, Say, SendResult, UssdInput, UssdSessionStatus, Voice, VoiceAction,
    VoiceCallStatus,
};
use hazina_providers::money::Money;
use proptest::prelude::*;

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..256),
        1 => "[{}\\[\\]\":,0-9a-zA-Z .\\-]{0,128}".prop_map(String::into_bytes),
        1 => "[<>/=\" a-zA-Z0-9.:]{0,128}".prop_map(String::into_bytes),
        1 => "[=&%+a-zA-Z0-9]{0,128}".prop_map(String::into_bytes),
    ]
}

/// An amount read from `text` (`"<currency> <decimal>"`) is that decimal exactly.
fn exact(money: Money, text: &str) -> Result<(), TestCaseError> {
    let price = Price::parse(text).expect("money is read only from a price");
    prop_assert_eq!(money.currency(), price.currency);
    prop_assert_eq!(money.amount(), price.amount);
    Ok(())
}

/// Every reader this file covers, on one body: no panic, and the oracles above.
fn reads(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(callback) = VoiceCallback::from_form(body) {
        let inbound = callback.inbound();
        let InboundPart::Voice(input) = &inbound.parts[0] else {
            return Err(TestCaseError::fail("a voice callback reads as a voice part"));
        };
        if callback.is_active() {
            prop_assert_eq!(input.status, VoiceCallStatus::Active);
        }
        if let (Some(cost), Some(currency), Some(amount)) =
            (inbound.cost, &callback.currency_code, &callback.amount)
        {
            exact(cost, &format!("{} {}", currency.trim(), amount.trim()))?;
        }
    }
    if let Ok(end) = UssdSessionEnd::from_form(body) {
        let completed = end.status.trim() == "Success";
        let expected =
            if completed { UssdSessionStatus::Completed } else { UssdSessionStatus::Incomplete };
        let inbound = end.inbound();
        let InboundPart::Ussd(UssdInput { status, .. }) = &inbound.parts[0] else {
            return Err(TestCaseError::fail("a session end reads as a USSD part"));
        };
        prop_assert_eq!(*status, expected);
        if let (Some(cost), Some(text)) = (inbound.cost, &end.cost) {
            exact(cost, text)?;
        }
    }
    if let Ok(update) = SubscriptionUpdate::from_form(body) {
        prop_assert_eq!(
            update.opted_in(),
            update.update_type.trim().eq_ignore_ascii_case("addition")
        );
    }
    if let Ok(status) = AirtimeStatus::read(body) {
        prop_assert_eq!(status.result().1, status.status.trim() == "Success");
    }
    if let Ok(answer) = serde_json::from_slice::<AirtimeResponse>(body) {
        for (entry, (_, outcome)) in answer.responses.iter().zip(answer.outcomes()) {
            if let AirtimeOutcome::Sent { amount, discount, .. } = outcome {
                prop_assert!(matches!(entry.status.trim(), "Sent" | "Queued"));
                if let (Some(amount), Some(text)) = (amount, &entry.amount) {
                    exact(amount, text)?;
                }
                if let (Some(discount), Some(text)) = (discount, &entry.discount) {
                    exact(discount, text)?;
                }
            }
        }
    }
    if let Ok(answer) = serde_json::from_slice::<MakeCallResponse>(body) {
        for entry in &answer.entries {
            if matches!(entry.send_result(), SendResult::Accepted { .. }) {
                prop_assert_eq!(entry.status.trim(), "Queued");
            }
        }
    }
    if let Ok(send) = SendAirtime::from_form(body) {
        let _ = send.recipients();
    }
    if let Ok(send) = SendSms::from_form(body) {
        let _ = send.recipients();
    }
    if let Ok(text) = std::str::from_utf8(body)
        && let Ok(response) = Response::parse(text)
    {
        let _ = response.platform_actions();
        let _ = response.to_xml();
    }
    Ok(())
}

/// Forms and answers shaped like the provider's, with arbitrary values.
fn shaped() -> impl Strategy<Value = Vec<u8>> {
    let value = "[A-Za-z0-9%+ .*#_-]{0,12}";
    let callback = proptest::string::string_regex(&format!(
        "isActive=(0|1|{value})&sessionId={value}(&direction=(Inbound|outbound|{value}))?(&callerNumber={value})?(&durationInSeconds=[0-9-]{{0,6}})?(&currencyCode=(KES|USD|XYZ|{value}))?(&amount=[0-9.-]{{0,8}})?(&dtmfDigits={value})?(&recordingUrl={value})?"
    ))
    .expect("a valid pattern");
    let end = proptest::string::string_regex(&format!(
        "sessionId={value}&serviceCode={value}&phoneNumber={value}&status=(Success|Failed|{value})(&cost=(KES|UGX|[A-Z]{{0,3}})\\+[0-9.-]{{0,8}})?(&input=[0-9*]{{0,10}})?"
    ))
    .expect("a valid pattern");
    let subscription = proptest::string::string_regex(&format!(
        "phoneNumber={value}&shortCode={value}&keyword={value}&updateType=(addition|deletion|Addition|{value})"
    ))
    .expect("a valid pattern");
    let status = proptest::string::string_regex(&format!(
        "requestId={value}&status=(Success|Failed|{value})(&phoneNumber={value})?"
    ))
    .expect("a valid pattern");
    let money = "(KES|UGX|USD|XYZ|[A-Z]{0,3}) -?[0-9]{0,6}(\\.[0-9]{0,5})?";
    let airtime = (
        "(Sent|Queued|Failed|[A-Za-z]{0,8})",
        "(None|ATQid_[a-f0-9]{0,8}|)",
        money,
        money,
    )
        .prop_map(|(status, id, amount, discount)| {
            format!(
                r#"{{"errorMessage":"None","numSent":1,"totalAmount":"{amount}","responses":[{{"phoneNumber":"+254711000001","errorMessage":"None","amount":"{amount}","status":"{status}","requestId":"{id}","discount":"{discount}"}}]}}"#
            )
        });
    let call = ("(Queued|InvalidPhoneNumber|[A-Za-z]{0,8})", "(ATVId_[a-z0-9]{0,6}|None|)").prop_map(
        |(status, id)| {
            format!(
                r#"{{"entries":[{{"status":"{status}","phoneNumber":"+254711000001","sessionId":"{id}"}}],"errorMessage":"None"}}"#
            )
        },
    );
    let xml = "<Response>(<Say( voice=\"(man|woman|x)\")?>[a-z&;<> ]{0,10}</Say>|<Play url=\"[a-z:/.]{0,10}\"/>|<GetDigits numDigits=\"[0-9a-z]{0,3}\"( callbackUrl=\"[a-z]{0,5}\")?>(<Say>x</Say>)?</GetDigits>|<Record( finishOnKey=\"#\")?/>|<Reject/>|<Redirect>[a-z:/]{0,8}</Redirect>|<Dial phoneNumbers=\"[+0-9,]{0,12}\"( record=\"(true|false|1|x)\")?/>|<Conference/>|<Dance/>){0,4}</Response>";
    prop_oneof![
        callback.prop_map(String::into_bytes),
        end.prop_map(String::into_bytes),
        subscription.prop_map(String::into_bytes),
        status.prop_map(String::into_bytes),
        airtime.prop_map(String::into_bytes),
        call.prop_map(String::into_bytes),
        xml.prop_map(String::into_bytes),
    ]
}

// ---------------------------------------------------------------------------------------------
// Voice XML round trip
// ---------------------------------------------------------------------------------------------

/// Text as XML keeps it: no leading or trailing white space (a reader trims it), markup
/// characters welcome.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z0-9<>&\"'/;=é😀][a-zA-Z0-9<>&\"'/;=é😀 ]{0,20}[a-zA-Z0-9<>&\"';]",
    ]
}

/// An attribute value: no white space (attribute values are normalised), anything else.
fn attribute() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9<>&\"'/:;=?#*.+]{1,16}"
}

fn say() -> impl Strategy<Value = Say> {
    (text(), prop::option::of(prop_oneof![Just(Voice::Male), Just(Voice::Female)]), any::<bool>())
        .prop_map(|(text, voice, play_beep)| Say { text, voice, play_beep })
}

fn prompt() -> impl Strategy<Value = Option<Prompt>> {
    prop::option::of(prop_oneof![
        say().prop_map(Prompt::Say),
        attribute().prop_map(|url| Prompt::Play { url }),
    ])
}

fn number() -> impl Strategy<Value = String> {
    "\\+[0-9]{4,12}"
}

fn action() -> impl Strategy<Value = VoiceAction> {
    let seconds = || prop::option::of(0u32..100_000);
    prop_oneof![
        say().prop_map(VoiceAction::Say),
        attribute().prop_map(|url| VoiceAction::Play { url }),
        (prompt(), seconds(), prop::option::of(attribute()), seconds()).prop_map(
            |(prompt, timeout_seconds, finish_on_key, num_digits)| VoiceAction::GetDigits {
                prompt,
                timeout_seconds,
                finish_on_key,
                num_digits,
            }
        ),
        (
            prop::collection::vec(number(), 1..4),
            any::<bool>(),
            any::<bool>(),
            prop::option::of(attribute()),
            prop::option::of(attribute()),
            seconds(),
        )
            .prop_map(
                |(customer_numbers, record, sequential, ringback_tone, caller_id, max)| {
                    VoiceAction::Dial {
                        customer_numbers,
                        record,
                        sequential,
                        ringback_tone,
                        caller_id,
                        max_duration_seconds: max,
                    }
                }
            ),
        Just(VoiceAction::RecordSession),
        (
            prompt(),
            seconds(),
            seconds(),
            prop::option::of(attribute()),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(
                |(
                    prompt,
                    timeout_seconds,
                    max_length_seconds,
                    finish_on_key,
                    play_beep,
                    trim_silence,
                )| {
                    VoiceAction::GetRecording {
                        prompt,
                        timeout_seconds,
                        max_length_seconds,
                        finish_on_key,
                        play_beep,
                        trim_silence,
                    }
                }
            ),
        (prop::option::of(attribute()), prop::option::of(attribute()))
            .prop_map(|(hold_music, queue_name)| VoiceAction::Enqueue { hold_music, queue_name }),
        (number(), prop::option::of(attribute())).prop_map(|(channel_number, queue_name)| {
            VoiceAction::Dequeue { channel_number, record: false, queue_name }
        }),
        attribute().prop_map(|url| VoiceAction::Redirect { url }),
        Just(VoiceAction::Reject),
    ]
}

/// What an action reads back as: a recording asked for with nothing to tell it from one of
/// the whole session is that.
fn as_read(action: VoiceAction) -> VoiceAction {
    match action {
        VoiceAction::GetRecording {
            prompt: None,
            timeout_seconds: None,
            max_length_seconds: None,
            finish_on_key: None,
            play_beep: false,
            trim_silence: false,
        } => VoiceAction::RecordSession,
        other => other,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn africastalking_more_arbitrary_bytes(body in bytes()) {
        reads(&body)?;
    }

    #[test]
    fn africastalking_more_shaped_bodies(body in shaped()) {
        reads(&body)?;
    }

    #[test]
    fn voice_actions_read_back_as_written(
        actions in prop::collection::vec(action(), 0..6),
        callback_url in prop::option::of(attribute()),
    ) {
        let xml = voice::render(&actions, callback_url.as_deref()).unwrap();
        let read = Response::parse(&xml).unwrap();
        let expected: Vec<VoiceAction> = actions.into_iter().map(as_read).collect();
        prop_assert_eq!(read.platform_actions(), expected);
        prop_assert_eq!(read.to_xml().unwrap(), xml);
    }
}

#[test]
fn the_oracles_catch_what_they_are_for() {
    let kes = Price::parse("KES 1.5").unwrap().money().unwrap();
    assert!(exact(kes, "KES 1.50").is_ok());
    assert!(exact(kes, "KES 1.51").is_err());
    assert!(exact(kes, "UGX 1.5").is_err());
    assert_eq!(
        as_read(VoiceAction::GetRecording {
            prompt: None,
            timeout_seconds: None,
            max_length_seconds: None,
            finish_on_key: None,
            play_beep: false,
            trim_silence: false,
        }),
        VoiceAction::RecordSession
    );
}
