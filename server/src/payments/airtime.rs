//! Airtime through Africa's Talking for the engine: a payout whose money becomes airtime on
//! the customer's phone. The engine's lifecycle does the money: the face value is reserved
//! from the purse or wallet, the row says `sending` before the request leaves, and the
//! provider's status callback posts it (`Success`) or voids it (`Failed`); a recipient refused
//! in the send's answer is voided at once.
//!
//! - **The channel:** a payment channel of provider `africastalking` whose credentials are the
//!   account's `username` and `apiKey`; its channel number is the org's name for it (the
//!   username is a good one), as a payout's `channelNumber` names it.
//! - **One key:** every send carries the payment's id as its `Idempotency-Key`, so a request
//!   sent again is answered as the first, never sent twice.
//! - **Unknown outcomes** (a timeout, a 5xx, an unreadable answer) leave the payment `sending`;
//!   recovering it sends it again under the same key, but only within [`RESEND_WINDOW`] of the
//!   payment's start, since how long Africa's Talking remembers a key is not published. Past
//!   that it waits for an operator, reserved, rather than risk paying twice.
//! - **The send's answer** decides for our number: `Sent` with our amount is accepted (its
//!   `requestId` kept); a refusal voids; a duplicate (a 409, or the provider's words saying
//!   so) leaves the first request's outcome to come by callback; `Sent` for another amount is
//!   an unknown outcome, neither posted nor released.
//! - **No status query:** Africa's Talking has none for airtime, so the engine's query step
//!   asks nothing and waits, with its backoff, for the status callback.
//! - **The status callback** (`POST /callbacks/africastalking-airtime/{channel}/{token}/status`,
//!   set as the account's airtime callback URL) is matched by its `requestId` to the one the
//!   send's answer gave, and moves money only with the channel's token and, where it states a
//!   value or a number, only when they are the payment's: another amount holds the payment
//!   for review. The provider's `requestId` becomes the payment's receipt.

use hazina_providers::africastalking::Price;
use hazina_providers::africastalking::airtime::{
    AirtimeOutcome, AirtimeRecipient, AirtimeResponse, AirtimeStatus,
};
use hazina_providers::africastalking::client::{Client, ClientError, Config};
use hazina_providers::{ParseError, Secret, Status, StatusReport};

use super::{Channel, Engine, Flow, QueryOutcome, Record, Recovery, SendOutcome};

/// How long after a payment started a send whose outcome is unknown may be sent again under
/// its key. Africa's Talking does not say how long it keeps a key; past this the payment waits
/// for an operator instead.
pub const RESEND_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The callback kind (the last part of its URL) of the airtime status callback.
pub const STATUS_CALLBACK: &str = "status";

/// The path of a channel's status callback, to set as the account's airtime callback URL.
pub fn status_callback_path(channel: uuid::Uuid, token: &str) -> String {
    format!("/callbacks/africastalking-airtime/{channel}/{token}/{STATUS_CALLBACK}")
}

/// The channel's client: no token to cache, so one per call.
fn client(engine: &Engine, channel: &Channel) -> Client {
    let username = channel.credential("username").map(|s| s.expose().to_owned());
    let api_key = channel.credential("apiKey").unwrap_or_else(|| Secret::new(""));
    Client::new(Config::at(&channel.base_url, &username.unwrap_or_default(), api_key), engine.http)
}

/// A text the provider writes `"None"` (or leaves blank) when there is nothing to say.
fn said(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty() && *text != "None")
}

/// Whether two E.164 numbers are the same, with or without their `+`.
fn same_number(a: &str, b: &str) -> bool {
    a.trim().trim_start_matches('+') == b.trim().trim_start_matches('+')
}

/// Whether the provider's words say it already has this request.
fn duplicate(words: &str) -> bool {
    words.to_ascii_lowercase().contains("duplicate")
}

/// Whether Africa's Talking would take this payment: airtime is only ever paid out, to a
/// number in E.164 (`^\+\d{1,3}\d{3,}$`, as the provider's SDKs check).
pub fn check(record: &Record) -> Result<(), String> {
    if record.flow != Flow::Payout {
        return Err("an Africa's Talking channel sends airtime: it pays a customer, it \
            collects nothing"
            .to_owned());
    }
    let digits = record.msisdn.strip_prefix('+').unwrap_or_default();
    if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("airtime goes to a number in E.164, not {}", record.msisdn));
    }
    Ok(())
}

/// Sends the airtime under the payment's id as the `Idempotency-Key`.
pub async fn send(engine: &Engine, channel: &Channel, record: &Record) -> SendOutcome {
    if let Err(why) = check(record) {
        return SendOutcome::Refused { code: "invalid_request".to_owned(), description: why };
    }
    let recipient = AirtimeRecipient::new(&record.msisdn, record.amount);
    let key = record.id.to_string();
    match client(engine, channel).send_airtime(&[recipient], Some(&key)).await {
        Ok(answer) => answered(record, &answer),
        // A conflict is the provider knowing the key: the first request's outcome counts.
        Err(ClientError::Refused { status: 409, .. }) => SendOutcome::Duplicate,
        Err(ClientError::Refused { status, body }) if duplicate(&body) => {
            tracing::info!(payment = %record.id, status, "the provider has this airtime already");
            SendOutcome::Duplicate
        }
        Err(ClientError::Refused { status, body }) => SendOutcome::Refused {
            code: status.to_string(),
            description: format!("refused with HTTP {status}: {body}"),
        },
        Err(ClientError::Unknown(why)) => SendOutcome::Unknown(why),
        Err(ClientError::NotSent(why)) => SendOutcome::NotSent(why),
    }
}

/// What the send's answer says about the payment's recipient.
fn answered(record: &Record, answer: &AirtimeResponse) -> SendOutcome {
    let entry =
        answer.responses.iter().find(|entry| same_number(&entry.phone_number, &record.msisdn));
    let Some(entry) = entry else {
        // No word on our number: the request as a whole was refused, or the answer is not
        // about it.
        return match said(answer.error_message.as_deref()) {
            Some(why) if duplicate(why) => SendOutcome::Duplicate,
            Some(why) => {
                SendOutcome::Refused { code: "Failed".to_owned(), description: why.to_owned() }
            }
            None => SendOutcome::Unknown("the answer says nothing of the customer's number".into()),
        };
    };
    match entry.outcome() {
        AirtimeOutcome::Sent { request_id, .. } => {
            // Sent for another amount than ours (or one that does not read): not the payment
            // we asked for, so it is neither posted nor released.
            let stated = said(entry.amount.as_deref());
            let amount = stated.and_then(Price::parse).and_then(Price::money);
            if stated.is_some() && amount != Some(record.amount) {
                return SendOutcome::Unknown(format!(
                    "the provider sent {}, the payment is {} {}",
                    stated.unwrap_or_default(),
                    record.amount.currency().code(),
                    record.amount.amount()
                ));
            }
            SendOutcome::Accepted(Some(request_id))
        }
        AirtimeOutcome::Failed { reason } if duplicate(&reason) => SendOutcome::Duplicate,
        AirtimeOutcome::Failed { reason } => {
            SendOutcome::Refused { code: entry.status.trim().to_owned(), description: reason }
        }
    }
}

/// A payment whose send may have left: sent again under the same key within
/// [`RESEND_WINDOW`] of its start; after that it waits, reserved, for an operator.
pub fn recover(record: &Record) -> Recovery {
    if chrono::Utc::now() - record.created_at <= RESEND_WINDOW {
        Recovery::Send
    } else {
        Recovery::Query(QueryOutcome::Unknown(
            "the airtime send's outcome is unknown and Africa's Talking cannot be asked: \
             an operator must look"
                .to_owned(),
        ))
    }
}

/// Africa's Talking has no status query for airtime: the answer comes by callback.
pub fn query() -> QueryOutcome {
    QueryOutcome::Unknown(
        "Africa's Talking has no airtime status query; waiting for its status callback".to_owned(),
    )
}

/// Reads an airtime status callback (form or JSON).
///
/// # Errors
///
/// When it does not read, names no request, names one of our own ids instead of the
/// provider's `requestId` (which would match the payment by our reference), or states a value
/// that is not an exact amount.
pub fn read_callback(body: &[u8]) -> Result<StatusReport, ParseError> {
    let status =
        AirtimeStatus::read(body).map_err(|error| ParseError::Unexpected(error.to_string()))?;
    report(&status)
}

fn report(callback: &AirtimeStatus) -> Result<StatusReport, ParseError> {
    let (request_id, success) = callback.result();
    let request_id = request_id.trim().to_owned();
    if request_id.is_empty() || uuid::Uuid::parse_str(&request_id).is_ok() {
        return Err(ParseError::Unexpected(format!("not a requestId: {request_id:?}")));
    }
    let status = match callback.status.trim() {
        _ if success => Status::Succeeded,
        "Failed" => Status::Failed,
        // Anything else (`Sent`, `Queued`) is not the end.
        _ => Status::Pending,
    };
    let mut report = StatusReport::new(status);
    report.request_reference = Some(request_id.clone());
    report.receipt = Some(request_id);
    report.code = Some(callback.status.trim().to_owned());
    report.description = said(callback.description.as_deref()).map(str::to_owned);
    report.payee = said(callback.phone_number.as_deref()).map(str::to_owned);
    if let Some(value) = said(callback.value.as_deref()) {
        let amount = Price::parse(value).and_then(Price::money);
        report.amount = Some(amount.ok_or_else(|| {
            ParseError::Unexpected(format!("the value {value:?} is not an exact amount"))
        })?);
    }
    Ok(report)
}

impl super::provider::Adapter for super::provider::Airtime {
    const RECEIVES_UNPROMPTED: bool = false;

    fn our_reference(id: uuid::Uuid) -> String {
        id.to_string()
    }

    fn check(_: &Engine, _: &Channel, record: &Record) -> Result<(), String> {
        check(record)
    }

    async fn send(engine: &Engine, channel: &Channel, record: &Record) -> SendOutcome {
        send(engine, channel, record).await
    }

    async fn query(_: &Engine, _: &Channel, _: &Record) -> QueryOutcome {
        query()
    }

    async fn recover(_: &Engine, _: &Channel, record: &Record) -> Recovery {
        recover(record)
    }

    fn read_callback(kind: &str, body: &[u8]) -> Result<StatusReport, ParseError> {
        if kind != STATUS_CALLBACK {
            return Err(ParseError::Unexpected(format!(
                "no Africa's Talking airtime callback is called {kind}"
            )));
        }
        read_callback(body)
    }

    async fn register_unprompted(_: &Engine, _: &Channel) -> Result<(), super::PaymentError> {
        Err(super::PaymentError::invalid(
            crate::code::Code::NotSupported,
            "only M-Pesa channels receive unprompted payments",
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use hazina_ledger::{Currency, Money};
    use hazina_providers::africastalking::airtime::AirtimeEntry;

    use super::*;

    fn kes(amount: &str) -> Money {
        Money::new(Currency::from_code("KES").unwrap(), amount.parse().unwrap()).unwrap()
    }

    fn record(amount: &str) -> Record {
        let now = chrono::Utc::now();
        Record {
            id: uuid::Uuid::now_v7(),
            org: hazina_ledger::OrgId(uuid::Uuid::now_v7()),
            app: None,
            channel: uuid::Uuid::now_v7(),
            flow: Flow::Payout,
            customer: None,
            msisdn: "+254711000001".to_owned(),
            account: hazina_ledger::AccountId(uuid::Uuid::now_v7()),
            amount: kes(amount),
            our_reference: String::new(),
            stage: super::super::Stage::Sending,
            status: super::super::PaymentStatus::Queued,
            settled: None,
            request_reference: None,
            receipt: None,
            provider_code: None,
            provider_description: None,
            attempts: 0,
            next_attempt_at: None,
            request: serde_json::Value::Null,
            created_at: now,
            updated_at: now,
            alert: None,
        }
    }

    fn entry(status: &str, amount: &str, request_id: &str, error: &str) -> AirtimeEntry {
        AirtimeEntry {
            phone_number: "+254711000001".to_owned(),
            error_message: Some(error.to_owned()),
            amount: Some(amount.to_owned()),
            status: status.to_owned(),
            request_id: Some(request_id.to_owned()),
            discount: Some("KES 4.0000".to_owned()),
        }
    }

    fn answer(entries: Vec<AirtimeEntry>, error: &str) -> AirtimeResponse {
        AirtimeResponse {
            error_message: Some(error.to_owned()),
            num_sent: None,
            total_amount: None,
            total_discount: None,
            responses: entries,
        }
    }

    #[test]
    fn the_answer_for_our_number_decides_the_send() {
        let ours = record("100");
        let sent = answer(vec![entry("Sent", "KES 100.0000", "ATQid_1", "None")], "None");
        assert!(
            matches!(answered(&ours, &sent), SendOutcome::Accepted(Some(id)) if id == "ATQid_1")
        );
        let refused =
            answer(vec![entry("Failed", "KES 100", "None", "Insufficient balance")], "Failed");
        assert!(matches!(answered(&ours, &refused),
            SendOutcome::Refused { code, description } if code == "Failed" && description == "Insufficient balance"));
        let again = answer(
            vec![entry("Failed", "KES 100", "None", "A duplicate request was received")],
            "None",
        );
        assert!(matches!(answered(&ours, &again), SendOutcome::Duplicate));
        // Sent for another amount, or one that does not read: neither posted nor released.
        for amount in ["KES 1000.0000", "KES 100.005", "UGX 100"] {
            let other = answer(vec![entry("Sent", amount, "ATQid_2", "None")], "None");
            assert!(matches!(answered(&ours, &other), SendOutcome::Unknown(_)), "{amount}");
        }
        assert!(matches!(answered(&ours, &answer(vec![], "None")), SendOutcome::Unknown(_)));
        assert!(matches!(
            answered(&ours, &answer(vec![], "Invalid username")),
            SendOutcome::Refused { .. }
        ));
    }

    #[test]
    fn only_payouts_to_e164_numbers_are_taken() {
        assert!(check(&record("10")).is_ok());
        let mut collect = record("10");
        collect.flow = Flow::Collect;
        assert!(check(&collect).is_err());
        let mut local = record("10");
        local.msisdn = "0711000001".to_owned();
        assert!(check(&local).is_err());
    }

    #[test]
    fn a_status_callback_reads_in_both_encodings_and_checks_what_it_states() {
        let form =
            b"requestId=ATQid_9&status=Success&phoneNumber=%2B254711000001&value=KES+100.0000";
        let report = read_callback(form).unwrap();
        assert_eq!(report.status, Status::Succeeded);
        assert_eq!(report.request_reference.as_deref(), Some("ATQid_9"));
        assert_eq!(report.receipt.as_deref(), Some("ATQid_9"));
        assert_eq!(report.amount, Some(kes("100")));
        assert_eq!(report.payee.as_deref(), Some("+254711000001"));
        let json = br#"{"requestId":"ATQid_9","status":"Failed","description":"Not delivered"}"#;
        let report = read_callback(json).unwrap();
        assert_eq!((report.status, report.amount), (Status::Failed, None));
        let later = read_callback(b"requestId=ATQid_9&status=Queued").unwrap();
        assert_eq!(later.status, Status::Pending);
        // One of our own ids is no requestId; an inexact value is no amount.
        let ours = format!("requestId={}&status=Success", uuid::Uuid::now_v7());
        assert!(read_callback(ours.as_bytes()).is_err());
        assert!(read_callback(b"requestId=ATQid_9&status=Success&value=KES+1.005").is_err());
        assert!(read_callback(b"status=Success").is_err());
    }

    #[test]
    fn an_unknown_send_is_sent_again_only_within_the_window() {
        assert!(matches!(recover(&record("10")), Recovery::Send));
        let mut old = record("10");
        old.created_at -= RESEND_WINDOW + chrono::TimeDelta::seconds(1);
        assert!(matches!(recover(&old), Recovery::Query(QueryOutcome::Unknown(_))));
    }
}
