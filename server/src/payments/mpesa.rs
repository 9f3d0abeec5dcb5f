//! M-Pesa (Daraja) for the engine: B2C payouts under our `OriginatorConversationID`, STK push
//! collections, and C2B payments confirmed by a transaction status query.

use std::sync::{Arc, PoisonError};

use hazina_providers::mpesa::{
    self, B2cCommand, B2cPayout, B2cRequest, ResultEnvelope, StkCallbackEnvelope, StkPush,
    StkPushRequest, StkQueryRequest, StkTransactionType, TransactionStatusRequest,
};
use hazina_providers::mpesa_client::{Client, ClientError, Config};
use hazina_providers::wire::Text;
use hazina_providers::{ParseError, Secret, Status, StatusReport};

use super::{
    Channel, Engine, Flow, QueryOutcome, Record, Recovery, STK_UNKNOWN_EXPIRY, SendOutcome,
};

/// The channel's client, made once: its access token is cached for all payments.
fn client(engine: &Engine, channel: &Channel) -> Arc<Client> {
    let mut clients = engine.mpesa_clients.lock().unwrap_or_else(PoisonError::into_inner);
    Arc::clone(clients.entry(channel.id).or_insert_with(|| {
        Arc::new(Client::new(
            Config {
                base_url: channel.base_url.clone(),
                consumer_key: channel.credential("consumerKey").unwrap_or_else(|| Secret::new("")),
                consumer_secret: channel
                    .credential("consumerSecret")
                    .unwrap_or_else(|| Secret::new("")),
            },
            engine.http,
        ))
    }))
}

/// The customer's number as Daraja writes it: `2547…`, no `+`.
pub fn msisdn(e164: &str) -> String {
    e164.trim_start_matches('+').to_owned()
}

fn secret(channel: &Channel, name: &str) -> Secret {
    channel.credential(name).unwrap_or_else(|| Secret::new(""))
}

/// Daraja's `AccountReference` (at most 12 characters) for a payment.
fn account_reference(record: &Record) -> String {
    record.id.simple().to_string()[..12].to_owned()
}

fn b2c_request(
    engine: &Engine,
    channel: &Channel,
    record: &Record,
) -> Result<B2cRequest, ParseError> {
    let initiator = channel.credential("initiatorName");
    let remarks = record
        .request
        .get("narration")
        .and_then(|n| n.as_str())
        .filter(|n| n.chars().count() >= 2)
        .map_or_else(|| "Payout".to_owned(), |n| n.chars().take(100).collect());
    B2cRequest::new(&B2cPayout {
        originator_conversation_id: &record.our_reference,
        initiator_name: initiator.as_ref().map_or("", Secret::expose),
        security_credential: &secret(channel, "securityCredential"),
        command: B2cCommand::BusinessPayment,
        amount: &record.amount,
        party_a: &channel.number,
        party_b: &msisdn(&record.msisdn),
        remarks: &remarks,
        queue_timeout_url: &engine.callback_url(channel, "timeout", Some(record.id)),
        result_url: &engine.callback_url(channel, "result", Some(record.id)),
        occasion: None,
    })
}

fn stk_request(
    engine: &Engine,
    channel: &Channel,
    record: &Record,
) -> Result<StkPushRequest, ParseError> {
    StkPushRequest::new(&StkPush {
        shortcode: &channel.number,
        passkey: &secret(channel, "passkey"),
        at: chrono::Utc::now(),
        transaction_type: StkTransactionType::CustomerPayBillOnline,
        amount: &record.amount,
        phone_number: &msisdn(&record.msisdn),
        party_b: &channel.number,
        callback_url: &engine.callback_url(channel, "stk", Some(record.id)),
        account_reference: &account_reference(record),
        transaction_desc: "Payment",
    })
}

/// Whether Daraja would take this payment at all (amount in whole shillings within its
/// limits, a Kenyan number), before anything is reserved.
pub fn check(engine: &Engine, channel: &Channel, record: &Record) -> Result<(), String> {
    let built = match record.flow {
        Flow::Payout => b2c_request(engine, channel, record).map(drop),
        Flow::Collect => stk_request(engine, channel, record).map(drop),
        Flow::Received => Ok(()),
    };
    built.map_err(|error| error.to_string())
}

fn sent(result: Result<(bool, String, String, String), ClientError>) -> SendOutcome {
    match result {
        Ok((true, reference, _, _)) => SendOutcome::Accepted(Some(reference)),
        Ok((false, _, code, description)) => SendOutcome::Refused { code, description },
        Err(ClientError::Refused { error, .. }) => {
            SendOutcome::Refused { code: error.error_code, description: error.error_message }
        }
        Err(ClientError::Duplicate) => SendOutcome::Duplicate,
        Err(ClientError::Unknown(why)) => SendOutcome::Unknown(why),
        Err(ClientError::NotSent(why)) => SendOutcome::NotSent(why),
    }
}

/// Sends the payment's request.
pub async fn send(engine: &Engine, channel: &Channel, record: &Record) -> SendOutcome {
    let client = client(engine, channel);
    match record.flow {
        Flow::Payout => {
            let request = match b2c_request(engine, channel, record) {
                Ok(request) => request,
                Err(error) => return refused_locally(&error),
            };
            sent(client.b2c(&request).await.map(|r| {
                let accepted = r.is_accepted();
                (accepted, r.conversation_id, r.response_code.to_string(), r.response_description)
            }))
        }
        Flow::Collect => {
            let request = match stk_request(engine, channel, record) {
                Ok(request) => request,
                Err(error) => return refused_locally(&error),
            };
            sent(client.stk_push(&request).await.map(|r| {
                let accepted = r.is_accepted();
                (
                    accepted,
                    r.checkout_request_id,
                    r.response_code.to_string(),
                    r.response_description,
                )
            }))
        }
        // A received payment is not sent: it is confirmed by asking.
        Flow::Received => SendOutcome::Duplicate,
    }
}

fn refused_locally(error: &ParseError) -> SendOutcome {
    SendOutcome::Refused { code: "invalid_request".to_owned(), description: error.to_string() }
}

/// A payment whose request may have left: a payout is sent again under the same
/// `OriginatorConversationID` (Daraja refuses a second one as a duplicate); an STK push, which
/// has no such key, is only ever asked about once its `CheckoutRequestID` is known, and
/// expires when none comes.
pub async fn recover(engine: &Engine, channel: &Channel, record: &Record) -> Recovery {
    match record.flow {
        Flow::Payout => Recovery::Send,
        Flow::Received => Recovery::Query(query(engine, channel, record).await),
        Flow::Collect if record.request_reference.is_some() => {
            Recovery::Query(query(engine, channel, record).await)
        }
        Flow::Collect if chrono::Utc::now() - record.created_at > STK_UNKNOWN_EXPIRY => {
            Recovery::Expire
        }
        Flow::Collect => Recovery::Wait,
    }
}

/// Asks about a payment: STK push by its query (answered at once), payouts and received
/// payments by a transaction status query (answered by callback).
pub async fn query(engine: &Engine, channel: &Channel, record: &Record) -> QueryOutcome {
    let client = client(engine, channel);
    match record.flow {
        Flow::Collect => {
            let Some(checkout) = &record.request_reference else {
                return QueryOutcome::Unknown("no CheckoutRequestID to ask with".to_owned());
            };
            let request = match StkQueryRequest::new(
                &channel.number,
                &secret(channel, "passkey"),
                chrono::Utc::now(),
                checkout,
            ) {
                Ok(request) => request,
                Err(error) => return QueryOutcome::Unknown(error.to_string()),
            };
            match client.stk_query(&request).await {
                Ok(reply) => QueryOutcome::Reply(reply.to_report()),
                Err(error) => QueryOutcome::Unknown(error.to_string()),
            }
        }
        Flow::Payout | Flow::Received => {
            let (transaction_id, original) = if record.flow == Flow::Received {
                (Some(record.our_reference.clone()), None)
            } else {
                (record.receipt.clone(), Some(record.our_reference.clone()))
            };
            let initiator = channel.credential("initiatorName");
            let request = TransactionStatusRequest {
                initiator: initiator.as_ref().map_or("", Secret::expose).to_owned(),
                security_credential: secret(channel, "securityCredential"),
                command_id: "TransactionStatusQuery".to_owned(),
                transaction_id,
                original_conversation_id: original,
                party_a: Text::from(channel.number.as_str()),
                identifier_type: Text::from("4"),
                result_url: engine.callback_url(channel, "status", Some(record.id)),
                queue_timeout_url: engine.callback_url(channel, "timeout", Some(record.id)),
                remarks: "Status".to_owned(),
                occasion: String::new(),
            };
            match client.transaction_status(&request).await {
                Ok(reply) if reply.is_accepted() => QueryOutcome::Asked,
                Ok(reply) => QueryOutcome::Unknown(format!(
                    "the status query was refused: {} {}",
                    reply.response_code, reply.response_description
                )),
                Err(error) => QueryOutcome::Unknown(error.to_string()),
            }
        }
    }
}

/// Reads a callback of this kind (`stk`, `result`, `status`, `timeout`).
pub fn read_callback(kind: &str, body: &[u8]) -> Result<StatusReport, ParseError> {
    match kind {
        "stk" => serde_json::from_slice::<StkCallbackEnvelope>(body)?.body.stk_callback.to_report(),
        "result" => serde_json::from_slice::<ResultEnvelope>(body)?.result.to_b2c_report(),
        "status" => {
            serde_json::from_slice::<ResultEnvelope>(body)?.result.to_transaction_status_report()
        }
        // A queue timeout says only that Daraja did not get to it in time: still unknown.
        "timeout" => Ok(StatusReport::new(Status::Pending)),
        _ => Err(ParseError::Unexpected(format!("no M-Pesa callback is called {kind}"))),
    }
}

/// The received payment a C2B body describes.
pub fn read_c2b(body: &[u8]) -> Result<mpesa::ReceivedPayment, ParseError> {
    serde_json::from_slice::<mpesa::C2bPayment>(body)?.to_received()
}

/// Registers the channel's C2B validation and confirmation URLs with Daraja. With
/// `Cancelled` as the default action, Daraja refuses a payment when our validation does not
/// answer in time.
///
/// # Errors
///
/// Daraja's refusal, or why it could not be asked.
pub async fn register_c2b(engine: &Engine, channel: &Channel) -> Result<(), ClientError> {
    let request = mpesa::C2bRegisterUrlRequest::new(
        &channel.number,
        mpesa::C2bDefaultAction::Cancelled,
        &engine.callback_url(channel, "c2b/confirmation", None),
        &engine.callback_url(channel, "c2b/validation", None),
    );
    let reply = client(engine, channel).register_urls(&request).await?;
    if reply.response_code.as_str().trim() == "0" {
        Ok(())
    } else {
        Err(ClientError::Unknown(format!(
            "registration answered {} {}",
            reply.response_code, reply.response_description
        )))
    }
}

impl super::provider::Adapter for super::provider::Mpesa {
    const RECEIVES_UNPROMPTED: bool = true;

    fn our_reference(id: uuid::Uuid) -> String {
        id.to_string()
    }

    fn check(engine: &Engine, channel: &Channel, record: &Record) -> Result<(), String> {
        check(engine, channel, record)
    }

    async fn send(engine: &Engine, channel: &Channel, record: &Record) -> SendOutcome {
        send(engine, channel, record).await
    }

    async fn query(engine: &Engine, channel: &Channel, record: &Record) -> QueryOutcome {
        query(engine, channel, record).await
    }

    async fn recover(engine: &Engine, channel: &Channel, record: &Record) -> Recovery {
        recover(engine, channel, record).await
    }

    fn read_callback(kind: &str, body: &[u8]) -> Result<StatusReport, ParseError> {
        read_callback(kind, body)
    }

    async fn register_unprompted(
        engine: &Engine,
        channel: &Channel,
    ) -> Result<(), super::PaymentError> {
        register_c2b(engine, channel).await.map_err(|error| match error {
            ClientError::Refused { error, .. } => super::PaymentError::invalid(
                crate::code::Code::ProviderRefused,
                format!("M-Pesa refused: {} {}", error.error_code, error.error_message),
            ),
            other => super::PaymentError::ProviderUnavailable(format!(
                "M-Pesa could not be asked: {other}"
            )),
        })
    }
}
