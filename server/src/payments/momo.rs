//! MTN MoMo for the engine: disbursement transfers (payouts) and requests to pay
//! (collections) under our `X-Reference-Id`, asked about by their status resource.

use std::sync::{Arc, PoisonError};

use hazina_providers::momo::{self, Party, Product, ReferenceId, RequestToPay, Transfer};
use hazina_providers::momo_client::{Client, ClientError, Config};
use hazina_providers::{ParseError, Secret, StatusReport};

use super::{Channel, Engine, Flow, QueryOutcome, Record, SendOutcome};

fn product(flow: Flow) -> Product {
    match flow {
        Flow::Payout => Product::Disbursement,
        Flow::Collect | Flow::Received => Product::Collection,
    }
}

/// The channel's client for a product, made once: its token is cached for all payments.
/// Callbacks go to the channel's URL and are matched by `externalId` (our payment id).
fn client(engine: &Engine, channel: &Channel, product: Product) -> Arc<Client> {
    let key = (channel.id, product == Product::Disbursement);
    let mut clients = engine.momo_clients.lock().unwrap_or_else(PoisonError::into_inner);
    Arc::clone(clients.entry(key).or_insert_with(|| {
        let text = |name: &str| channel.credential(name).map(|s| s.expose().to_owned());
        Arc::new(Client::new(
            Config {
                base_url: channel.base_url.clone(),
                product,
                api_user: text("apiUser").unwrap_or_default(),
                api_key: channel.credential("apiKey").unwrap_or_else(|| Secret::new("")),
                subscription_key: channel
                    .credential("subscriptionKey")
                    .unwrap_or_else(|| Secret::new("")),
                target_environment: text("targetEnvironment").unwrap_or_default(),
                callback_url: Some(engine.callback_url(channel, "callback", None)),
            },
            engine.http,
        ))
    }))
}

/// The customer's number as MoMo writes it: digits, country code first.
fn msisdn(e164: &str) -> String {
    e164.trim_start_matches('+').to_owned()
}

fn narration(record: &Record) -> String {
    let text = record.request.get("narration").and_then(|n| n.as_str()).unwrap_or("Payment");
    text.replace('\'', " ").chars().take(160).collect()
}

enum Body {
    Transfer(Transfer),
    RequestToPay(RequestToPay),
}

fn body(record: &Record) -> Result<Body, ParseError> {
    let party = Party::msisdn(&msisdn(&record.msisdn))?;
    let note = narration(record);
    let external_id = record.id.to_string();
    Ok(match record.flow {
        Flow::Payout => {
            Body::Transfer(Transfer::new(&record.amount, &external_id, party, &note, &note)?)
        }
        Flow::Collect | Flow::Received => Body::RequestToPay(RequestToPay::new(
            &record.amount,
            &external_id,
            party,
            &note,
            &note,
        )?),
    })
}

/// Whether MoMo would take this payment at all, before anything is reserved.
pub fn check(record: &Record) -> Result<(), String> {
    ReferenceId::parse(&record.our_reference).map_err(|e| e.to_string())?;
    body(record).map(drop).map_err(|error| error.to_string())
}

/// Sends the payment under its `X-Reference-Id`.
pub async fn send(engine: &Engine, channel: &Channel, record: &Record) -> SendOutcome {
    let (reference, body) =
        match ReferenceId::parse(&record.our_reference).and_then(|r| Ok((r, body(record)?))) {
            Ok(ready) => ready,
            Err(error) => {
                return SendOutcome::Refused {
                    code: "invalid_request".to_owned(),
                    description: error.to_string(),
                };
            }
        };
    let client = client(engine, channel, product(record.flow));
    let result = match &body {
        Body::Transfer(transfer) => client.transfer(&reference, transfer).await,
        Body::RequestToPay(request) => client.request_to_pay(&reference, request).await,
    };
    match result {
        Ok(()) => SendOutcome::Accepted(None),
        Err(ClientError::Duplicate) => SendOutcome::Duplicate,
        Err(ClientError::Refused { status, body }) => {
            let code = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_owned))
                .unwrap_or_else(|| status.to_string());
            SendOutcome::Refused { code, description: format!("refused with HTTP {status}") }
        }
        // A 404 to a POST is no answer about the payment.
        Err(error @ (ClientError::Unknown(_) | ClientError::NotFound)) => {
            SendOutcome::Unknown(error.to_string())
        }
        Err(ClientError::NotSent(why)) => SendOutcome::NotSent(why),
    }
}

/// Reads the payment's status resource. A 404 means MoMo never got the request, so it may be
/// sent (again) under the same reference.
pub async fn query(engine: &Engine, channel: &Channel, record: &Record) -> QueryOutcome {
    let reference = match ReferenceId::parse(&record.our_reference) {
        Ok(reference) => reference,
        Err(error) => return QueryOutcome::Unknown(error.to_string()),
    };
    let client = client(engine, channel, product(record.flow));
    match client.status(&reference).await {
        Ok(status) => match status.to_report() {
            Ok(report) => QueryOutcome::Reply(report),
            Err(error) => QueryOutcome::Unknown(error.to_string()),
        },
        Err(ClientError::NotFound) => QueryOutcome::NeverArrived,
        Err(error) => QueryOutcome::Unknown(error.to_string()),
    }
}

/// Reads a callback body.
pub fn read_callback(body: &[u8]) -> Result<StatusReport, ParseError> {
    momo::parse_callback(body)
}

impl super::provider::Adapter for super::provider::Momo {
    const RECEIVES_UNPROMPTED: bool = false;

    /// MoMo wants a v4 UUID as `X-Reference-Id`.
    fn our_reference(_: uuid::Uuid) -> String {
        uuid::Uuid::new_v4().to_string()
    }

    fn check(_: &Engine, _: &Channel, record: &Record) -> Result<(), String> {
        check(record)
    }

    async fn send(engine: &Engine, channel: &Channel, record: &Record) -> SendOutcome {
        send(engine, channel, record).await
    }

    async fn query(engine: &Engine, channel: &Channel, record: &Record) -> QueryOutcome {
        query(engine, channel, record).await
    }

    fn read_callback(_: &str, body: &[u8]) -> Result<StatusReport, ParseError> {
        read_callback(body)
    }

    async fn register_unprompted(_: &Engine, _: &Channel) -> Result<(), super::PaymentError> {
        Err(super::PaymentError::invalid(
            crate::code::Code::NotSupported,
            "only M-Pesa channels receive unprompted payments",
        ))
    }
}
