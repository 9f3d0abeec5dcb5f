//! Tests that every request body in the OpenAPI document has an example, and that every example
//! is one the server accepts: it reads as the operation's request type, the way the `Body`
//! extractor reads it, and passes the checks the handler and its service run before they touch
//! the database. An example a client copies and sees refused is worse than none.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::customers::{AdoptRequest, CustomerRef, Metadata, SecondaryIds, Tags};
use super::finance::{BATCH_TRANSFERS_MAX, NewTransfer, TransferBatch};
use super::money::{NewPayment, NewPurse, NewWallet, Party};
use super::payment_channels::{C2bRegistration, NewChannel, TreasuryLimit};
use super::tenancy::{NewApp, NewAuthToken, NewKeyRequest};
use crate::code::Code;
use crate::customers::reminders::{NewReminder, NewTagReminder};
use crate::customers::tags::{TagCustomers, UntagCustomers};
use crate::customers::{self, DataValue, NewActivity};
use crate::http::problem::ApiError;
use crate::money;
use crate::payments::ProviderHosts;

/// Whether an example is a body the operation accepts; why not, when it is not.
type Accepts = fn(&Value) -> Result<(), String>;

/// Every operation with a request body, by `operationId`, and how it reads and checks its body.
const ACCEPTS: &[(&str, Accepts)] = &[
    ("create_app", create_app),
    ("create_key", create_key),
    ("create_auth_token", create_auth_token),
    ("create_or_resolve_customer", create_or_resolve_customer),
    ("add_customer_number", add_customer_number),
    ("adopt_customer", adopt_customer),
    ("update_tags", update_tags),
    ("update_secondary_ids", update_secondary_ids),
    ("update_metadata", update_metadata),
    ("update_app_data", update_app_data),
    ("update_reminder", update_reminder),
    ("create_activity", create_activity),
    ("tag_customers", tag_customers),
    ("untag_customers", untag_customers),
    ("set_tag_reminder", set_tag_reminder),
    ("create_purse", create_purse),
    ("create_wallet", create_wallet),
    ("create_payment", create_payment),
    ("create_transfer", create_transfer),
    ("create_transfer_batch", create_transfer_batch),
    ("close_period", close_period),
    ("create_payment_channel", create_payment_channel),
    ("set_treasury_limit", set_treasury_limit),
    ("register_c2b_urls", register_c2b_urls),
    ("create_webhook_endpoint", create_webhook_endpoint),
    ("update_webhook_endpoint", update_webhook_endpoint),
    ("rotate_webhook_secret", rotate_webhook_secret),
    ("redeliver_webhook_events", redeliver_webhook_events),
    ("create_messaging_channel", create_messaging_channel),
    ("send_message", send_message),
    ("start_message_job", start_message_job),
    ("set_messaging_consent", set_messaging_consent),
    ("reply_to_event", reply_to_event),
    ("create_statement_import", create_statement_import),
    ("create_reconciliation_run", create_reconciliation_run),
    ("assign_reconciliation_exception", assign_reconciliation_exception),
    ("resolve_reconciliation_exception", resolve_reconciliation_exception),
    ("settle_stuck_payment", settle_stuck_payment),
];

fn create_statement_import(example: &Value) -> Result<(), String> {
    let new: super::reconciliation::NewStatementImport = read(example)?;
    let bytes = super::reconciliation::file_bytes(&new).map_err(refused)?;
    let format = hazina_providers::statements::Format::detect(&bytes)
        .ok_or_else(|| "the example's file is no statement".to_owned())?;
    let options = hazina_providers::statements::ParseOptions::default();
    hazina_providers::statements::parse(format, &bytes, &options)
        .map_err(|error| format!("the example's file is unreadable: {error}"))?;
    Ok(())
}

fn create_reconciliation_run(example: &Value) -> Result<(), String> {
    let body: super::reconciliation::NewRunBody = read(example)?;
    let kes = hazina_ledger::Currency::from_code("KES").map_err(|e| e.to_string())?;
    super::reconciliation::run_rules(&body, kes).map_err(refused)?;
    Ok(())
}

fn assign_reconciliation_exception(example: &Value) -> Result<(), String> {
    let body: super::reconciliation::Assignment = read(example)?;
    super::reconciliation::text(body.owner, "owner", 200).map_err(refused)?;
    super::reconciliation::text(body.note, "note", 2000).map_err(refused)?;
    Ok(())
}

fn resolve_reconciliation_exception(example: &Value) -> Result<(), String> {
    let body: super::reconciliation::ResolutionBody = read(example)?;
    super::reconciliation::resolution(body, "example".to_owned()).map_err(refused)?;
    Ok(())
}

fn settle_stuck_payment(example: &Value) -> Result<(), String> {
    let body: super::reconciliation::SettlementBody = read(example)?;
    super::reconciliation::settlement(body, "example".to_owned()).map_err(refused)?;
    Ok(())
}

fn create_messaging_channel(example: &Value) -> Result<(), String> {
    let new: super::messaging::NewMessagingChannel = read(example)?;
    super::messaging::checked(new).map_err(|error| format!("{}: {}", error.code, error.detail))?;
    Ok(())
}

fn send_message(example: &Value) -> Result<(), String> {
    let new: super::messaging::SendMessage = read(example)?;
    if new.customer_id.is_some() == new.customer_number.is_some() {
        return Err("name the customer by customerId or customerNumber".to_owned());
    }
    // The examples send on SMS.
    crate::messaging::check_body(hazina_providers::messaging::Channel::Sms, &new.body)
        .map_err(refused)?;
    Ok(())
}

fn start_message_job(example: &Value) -> Result<(), String> {
    let new: super::messaging::StartJob = read(example)?;
    customers::check_key(&new.tag.key).map_err(refused)?;
    crate::messaging::check_body(hazina_providers::messaging::Channel::Sms, &new.body)
        .map_err(refused)?;
    Ok(())
}

fn set_messaging_consent(example: &Value) -> Result<(), String> {
    let _: super::messaging::SetConsent = read(example)?;
    Ok(())
}

fn reply_to_event(example: &Value) -> Result<(), String> {
    let reply: super::events::StepReplyRequest = read(example)?;
    // The example answers a USSD step.
    crate::messaging::check_reply(hazina_providers::messaging::Channel::Ussd, &reply.body)
        .map_err(refused)?;
    Ok(())
}

/// The suffix of the deprecated payment-channel operations: copies of the current ones under
/// the old path, served by the same handlers, so they take the same bodies.
const DEPRECATED_SUFFIX: &str = "_deprecated";

/// Reads an example as the `Body` extractor reads a request's bytes (`axum::Json`), so that a
/// refusal here is the `invalid_body` a client would get.
fn read<T: DeserializeOwned>(example: &Value) -> Result<T, String> {
    let bytes = serde_json::to_vec(example).map_err(|error| error.to_string())?;
    axum::Json::<T>::from_bytes(&bytes)
        .map(|axum::Json(body)| body)
        .map_err(|rejection| rejection.body_text())
}

/// A refusal in the words of the problem the server would answer with.
fn refused(error: impl Into<ApiError>) -> String {
    let error = error.into();
    format!("{}: {}", error.code, error.detail)
}

fn close_period(example: &Value) -> Result<(), String> {
    let new: super::periods::NewPeriodClose = read(example)?;
    super::periods::check_close(&new).map_err(refused)?;
    // The handler's other checks need the ledger: a past time passes them on a new org.
    if new.through > chrono::Utc::now() {
        return Err("the example closes a period in the future".to_owned());
    }
    Ok(())
}

fn create_app(example: &Value) -> Result<(), String> {
    let new: NewApp = read(example)?;
    crate::tenancy::valid_name(&new.name).map_err(refused)?;
    Ok(())
}

fn create_key(example: &Value) -> Result<(), String> {
    let new: NewKeyRequest = read(example)?;
    crate::tenancy::valid_name(&new.name).map_err(refused)?;
    Ok(())
}

fn create_auth_token(example: &Value) -> Result<(), String> {
    let new: NewAuthToken = read(example)?;
    // `tenancy::mint_client_token` checks the lifetime first, as here.
    let ttl =
        new.ttl_seconds.unwrap_or(u64::from(crate::tenancy::CLIENT_TOKEN_TTL_SECONDS_DEFAULT));
    if ttl == 0 || ttl > u64::from(crate::tenancy::CLIENT_TOKEN_TTL_SECONDS_MAX) {
        return Err(format!("{}: ttlSeconds out of range", Code::InvalidTtl.as_str()));
    }
    Ok(())
}

fn add_customer_number(example: &Value) -> Result<(), String> {
    let number: customers::CustomerNumber = read(example)?;
    number.normalised().map_err(refused)?;
    Ok(())
}

fn adopt_customer(example: &Value) -> Result<(), String> {
    let _: AdoptRequest = read(example)?;
    Ok(())
}

fn create_or_resolve_customer(example: &Value) -> Result<(), String> {
    let reference: CustomerRef = read(example)?;
    // The handler asks for exactly one of the two before it looks anything up.
    match (reference.customer_number, reference.secondary_id) {
        (Some(number), None) => {
            number.normalised().map_err(refused)?;
        }
        (None, Some(_)) => {}
        _ => return Err("give exactly one of customerNumber and secondaryId".to_owned()),
    }
    Ok(())
}

fn update_tags(example: &Value) -> Result<(), String> {
    let update: Tags = read(example)?;
    if update.tags.len() > customers::TAGS_MAX {
        return Err(format!("more than {} tags", customers::TAGS_MAX));
    }
    // What `customers::data::set_tags` checks of each tag before it opens a transaction.
    for tag in &update.tags {
        customers::check_key(&tag.key).map_err(refused)?;
        customers::check_text(
            &tag.value,
            customers::VALUE_LEN_MAX,
            Code::InvalidValue,
            "a tag value",
        )
        .map_err(refused)?;
    }
    Ok(())
}

fn update_secondary_ids(example: &Value) -> Result<(), String> {
    let update: SecondaryIds = read(example)?;
    if update.secondary_ids.len() > customers::SECONDARY_IDS_MAX {
        return Err(format!("more than {} secondary ids", customers::SECONDARY_IDS_MAX));
    }
    // What `customers::data::set_secondary_ids` checks of each id before it opens a transaction.
    for id in &update.secondary_ids {
        customers::check_key(&id.key).map_err(refused)?;
        customers::check_text(
            &id.value,
            customers::VALUE_LEN_MAX,
            Code::InvalidValue,
            "a secondary id value",
        )
        .map_err(refused)?;
    }
    Ok(())
}

/// What `customers::data::set_metadata` (and a payment's context) checks of metadata before it
/// opens a transaction.
fn check_metadata(metadata: &BTreeMap<String, DataValue>) -> Result<(), String> {
    if metadata.len() > customers::METADATA_KEYS_MAX {
        return Err(format!("more than {} metadata keys", customers::METADATA_KEYS_MAX));
    }
    for (key, value) in metadata {
        customers::check_key(key).map_err(refused)?;
        value.to_stored().map_err(refused)?;
    }
    Ok(())
}

fn update_metadata(example: &Value) -> Result<(), String> {
    let update: Metadata = read(example)?;
    check_metadata(&update.metadata)
}

fn update_app_data(example: &Value) -> Result<(), String> {
    let value: DataValue = read(example)?;
    value.to_stored().map_err(refused)?;
    Ok(())
}

fn update_reminder(example: &Value) -> Result<(), String> {
    // `customers::reminders::set` checks the interval and payload inline, after the key and
    // beside the database: reading the body is all there is to run here.
    let _: NewReminder = read(example)?;
    Ok(())
}

fn tag_customers(example: &Value) -> Result<(), String> {
    let change: TagCustomers = read(example)?;
    customers::tags::check_tag_customers(&change).map_err(refused)?;
    Ok(())
}

fn untag_customers(example: &Value) -> Result<(), String> {
    let change: UntagCustomers = read(example)?;
    customers::tags::check_untag_customers(&change).map_err(refused)?;
    Ok(())
}

fn set_tag_reminder(example: &Value) -> Result<(), String> {
    let new: NewTagReminder = read(example)?;
    customers::reminders::check_tag_reminder(&new).map_err(refused)?;
    Ok(())
}

fn create_activity(example: &Value) -> Result<(), String> {
    let new: NewActivity = read(example)?;
    customers::check_activity(&new).map_err(refused)?;
    Ok(())
}

fn create_purse(example: &Value) -> Result<(), String> {
    let new: NewPurse = read(example)?;
    money::currency(&new.currency_code).map_err(refused)?;
    if let Some(limit) = &new.overdraft_limit {
        money::amount(&new.currency_code, limit).map_err(refused)?;
    }
    Ok(())
}

fn create_wallet(example: &Value) -> Result<(), String> {
    let new: NewWallet = read(example)?;
    money::currency(&new.currency_code).map_err(refused)?;
    Ok(())
}

fn create_payment(example: &Value) -> Result<(), String> {
    let payment: NewPayment = read(example)?;
    let amount = payment.value.money().map_err(refused)?;
    money::check_payment(amount, payment.narration.as_deref()).map_err(refused)?;
    for party in [&payment.debit_party, &payment.credit_party] {
        if let Party::Customer(customer) = party {
            customer.customer_number.normalised().map_err(refused)?;
        }
    }
    // What `money::context_effects` checks of the context besides its customer.
    if let Some(context) = &payment.context {
        if let Some(activity) = &context.activity {
            customers::check_activity(activity).map_err(refused)?;
        }
        if let Some(metadata) = &context.metadata {
            check_metadata(metadata)?;
        }
        if let Some(value) = &context.app_data {
            value.to_stored().map_err(refused)?;
        }
    }
    Ok(())
}

/// The amounts of a transfer, read as `finance::request` reads them (the rest of its checks
/// are private to the handler's module).
fn check_transfer(new: &NewTransfer) -> Result<(), String> {
    for leg in &new.legs {
        leg.value.money().map_err(refused)?;
    }
    for amount in new.amounts.iter().flatten() {
        amount.money().map_err(refused)?;
    }
    Ok(())
}

fn create_transfer(example: &Value) -> Result<(), String> {
    let new: NewTransfer = read(example)?;
    check_transfer(&new)
}

fn create_transfer_batch(example: &Value) -> Result<(), String> {
    let batch: TransferBatch = read(example)?;
    if batch.transfers.is_empty() || batch.transfers.len() > BATCH_TRANSFERS_MAX {
        return Err(format!("a batch has 1 to {BATCH_TRANSFERS_MAX} transfers"));
    }
    batch.transfers.iter().try_for_each(check_transfer)
}

fn create_payment_channel(example: &Value) -> Result<(), String> {
    let new: NewChannel = read(example)?;
    let currency = money::currency(&new.currency_code).map_err(refused)?;
    let provider = new.provider;
    if !provider.valid_number(&new.channel_number) {
        return Err(format!(
            "{} is not a {} channel number",
            new.channel_number,
            provider.as_str()
        ));
    }
    // The server's default: the provider's own hosts, over https.
    ProviderHosts::default().check(provider, &new.base_url)?;
    // The credentials stay private to the handler's module once read: these are the example's.
    let credentials: BTreeMap<String, String> =
        read(example.get("credentials").unwrap_or(&Value::Null))?;
    let known = provider.known_credentials();
    if let Some(unknown) = credentials.keys().find(|name| !known.contains(&name.as_str())) {
        return Err(format!("{} channels take no credential {unknown}", provider.as_str()));
    }
    let required = provider.required_credentials();
    if let Some(missing) = required.iter().find(|name| !credentials.contains_key(**name)) {
        return Err(format!("a {} channel needs {missing}", provider.as_str()));
    }
    if let Some(limit) = &new.treasury_limit {
        let limit = limit.money().map_err(refused)?;
        if limit.currency() != currency {
            return Err(format!("the treasury limit is not in {}", currency.code()));
        }
    }
    Ok(())
}

fn set_treasury_limit(example: &Value) -> Result<(), String> {
    let body: TreasuryLimit = read(example)?;
    body.treasury_limit.money().map_err(refused)?;
    Ok(())
}

fn register_c2b_urls(example: &Value) -> Result<(), String> {
    let _: C2bRegistration = read(example)?;
    Ok(())
}

/// A webhook URL as the server checks it by default (public https addresses only).
fn webhook_url(url: &str) -> Result<(), String> {
    crate::webhooks::check_url(url, false).map(|_| ()).map_err(|problem| format!("{problem:?}"))
}

fn create_webhook_endpoint(example: &Value) -> Result<(), String> {
    let new: super::webhooks::NewWebhookEndpoint = read(example)?;
    webhook_url(&new.url)
}

fn update_webhook_endpoint(example: &Value) -> Result<(), String> {
    let changes: super::webhooks::WebhookEndpointChanges = read(example)?;
    changes.url.as_deref().map_or(Ok(()), webhook_url)
}

fn rotate_webhook_secret(example: &Value) -> Result<(), String> {
    let _: super::webhooks::SecretRotation = read(example)?;
    Ok(())
}

fn redeliver_webhook_events(example: &Value) -> Result<(), String> {
    let request: super::webhooks::RedeliveryRequest = read(example)?;
    request.redelivery().map(|_| ()).map_err(refused)
}

/// An operation of the document that takes a request body, with every example of it the
/// document gives: the operation's own and its schema's.
#[derive(Debug)]
struct Operation {
    id: String,
    examples: Vec<(String, Value)>,
}

impl Operation {
    /// The id the table knows it by.
    fn table_id(&self) -> &str {
        self.id.strip_suffix(DEPRECATED_SUFFIX).unwrap_or(&self.id)
    }
}

/// What a `$ref` in the document points at; anything else as it is.
fn resolve<'a>(document: &'a Value, mut value: &'a Value) -> &'a Value {
    // A reference may point at another; a few hops are all the document ever needs.
    for _ in 0..8 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else { break };
        let target = reference.strip_prefix('#').and_then(|pointer| document.pointer(pointer));
        value = target.unwrap_or(&Value::Null);
    }
    value
}

/// Every operation of the document that takes a request body.
fn operations_with_bodies(document: &Value) -> Vec<Operation> {
    let mut operations = Vec::new();
    let paths = document.get("paths").and_then(Value::as_object).into_iter().flatten();
    for (path, item) in paths {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let Some(body) = operation.get("requestBody") else { continue };
            let id = operation.get("operationId").and_then(Value::as_str);
            let id = id.map_or_else(|| format!("{method} {path}"), str::to_owned);
            let examples = examples(document, resolve(document, body));
            operations.push(Operation { id, examples });
        }
    }
    operations
}

/// The examples of a request body's JSON: the operation's `example` and `examples`, then its
/// schema's `example` and `examples`.
fn examples(document: &Value, body: &Value) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    let Some(media) = body.pointer("/content/application~1json") else { return found };
    if let Some(example) = media.get("example") {
        found.push(("the operation's example".to_owned(), example.clone()));
    }
    for (name, example) in media.get("examples").and_then(Value::as_object).into_iter().flatten() {
        // An Example object holds its value; one kept elsewhere (`externalValue`) is missing.
        let value = resolve(document, example).get("value").cloned().unwrap_or(Value::Null);
        found.push((format!("the operation's example {name:?}"), value));
    }
    let schema = media.get("schema").map_or(&Value::Null, |schema| resolve(document, schema));
    if let Some(example) = schema.get("example") {
        found.push(("the schema's example".to_owned(), example.clone()));
    }
    for (i, example) in
        schema.get("examples").and_then(Value::as_array).into_iter().flatten().enumerate()
    {
        found.push((format!("the schema's example {i}"), example.clone()));
    }
    found
}

fn document_operations() -> Vec<Operation> {
    let (_, document) = super::routes();
    operations_with_bodies(&document)
}

fn accepts(operation_id: &str) -> Option<Accepts> {
    ACCEPTS.iter().find(|(id, _)| *id == operation_id).map(|(_, accepts)| *accepts)
}

#[test]
fn every_request_body_has_an_example() {
    let operations = document_operations();
    assert!(!operations.is_empty(), "the document has no request bodies");
    let without: Vec<&str> =
        operations.iter().filter(|op| op.examples.is_empty()).map(|op| op.id.as_str()).collect();
    assert!(without.is_empty(), "request bodies without an example: {without:?}");
}

#[test]
fn every_request_body_example_is_accepted() {
    let mut refused = Vec::new();
    for operation in document_operations() {
        let Some(accepts) = accepts(operation.table_id()) else {
            refused.push(format!("{}: not in the table of request types", operation.id));
            continue;
        };
        for (name, example) in &operation.examples {
            if let Err(why) = accepts(example) {
                refused.push(format!("{}: {name} is refused: {why}", operation.id));
            }
        }
    }
    assert!(refused.is_empty(), "examples not shown to be accepted:\n{}", refused.join("\n"));
}

/// The table names every operation with a body and nothing else, so that a new operation gets
/// its examples checked and a removed one leaves no stale entry.
#[test]
fn the_table_lists_exactly_the_operations_with_a_body() {
    let documented: BTreeSet<String> =
        document_operations().iter().map(|op| op.table_id().to_owned()).collect();
    let listed: BTreeSet<String> = ACCEPTS.iter().map(|(id, _)| (*id).to_owned()).collect();
    assert_eq!(ACCEPTS.len(), listed.len(), "the table lists an operation twice");
    assert_eq!(documented, listed, "the table and the document's operations with a body differ");
}

/// The checks are not a formality: each of these bodies is an example with one thing wrong,
/// and the server refuses it.
#[test]
fn the_checks_refuse_what_the_server_refuses() {
    let purse = json!({"purse": {"purseId": "0192a3b4-e7f8-7a09-b1c2-d3e4f5a6b7c8"}});
    let wallet = json!({"wallet": {
        "customerId": "0192a3b4-d1e2-7f30-8a41-b52c63d74e85",
        "walletId": "main"
    }});
    let refused: [(&str, Value); 11] = [
        ("create_auth_token", json!({"ttlSeconds": 3601})),
        ("add_customer_number", json!({"number": "0712345678", "provider": "whatsapp"})),
        ("create_app", json!({"name": "  "})),
        ("create_wallet", json!({"walletId": "main", "currencyCode": "KES", "owner": "me"})),
        ("create_purse", json!({"currencyCode": "KSH", "name": "float"})),
        (
            "create_payment",
            json!({"debitParty": purse, "creditParty": wallet,
                "value": {"currencyCode": "KES", "amount": "-1500.00"}}),
        ),
        (
            "create_payment",
            json!({"debitParty": purse, "creditParty": wallet,
                "value": {"currencyCode": "KES", "amount": "1500.001"}}),
        ),
        (
            "create_or_resolve_customer",
            json!({"customerNumber": {"number": "0712345678", "provider": "cellular"}}),
        ),
        ("create_activity", json!({"source": " ", "sessionId": "s1", "key": "checkout"})),
        ("update_app_data", json!({"bytes": "not base64!"})),
        (
            "create_payment_channel",
            json!({"provider": "mpesa", "channelNumber": "60", "currencyCode": "KES",
                "baseUrl": "https://sandbox.safaricom.co.ke",
                "credentials": {"consumerKey": "key", "consumerSecret": "secret"}}),
        ),
    ];
    for (operation, body) in refused {
        let accepts = accepts(operation).unwrap_or_else(|| panic!("{operation} is not listed"));
        assert!(accepts(&body).is_err(), "{operation} accepts {body}");
    }
}
