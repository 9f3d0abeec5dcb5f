//! Messaging: channels (org key), messages to customers one at a time or to everyone with a
//! tag, their statuses, and customers' consent. A thin door over `crate::messaging`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hazina_ledger::{AccountId, Money};
use hazina_providers::messaging::{Body as MessageBody, Channel};
use hazina_providers::messenger::MessageTag;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::money::{self, MoneyValue};
use crate::code::Code;
use crate::customers::reminders::TagSelector;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::{ApiError, Body, PathParams};
use crate::messaging::{
    ChannelRecord, Job, MessageView, NewChannel, NewJob, NewMessage, ProviderKind, Recipient,
};
use crate::money::PaymentContext;

/// Longest credential value, channel number, name and base URL.
const TEXT_LEN_MAX: usize = 4096;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list_channels, create_channel))
        .routes(utoipa_axum::routes!(get_channel))
        .routes(utoipa_axum::routes!(send_message))
        .routes(utoipa_axum::routes!(get_message))
        .routes(utoipa_axum::routes!(start_job))
        .routes(utoipa_axum::routes!(get_job))
        .routes(utoipa_axum::routes!(set_consent))
}

/// A messaging channel to add.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "channel": "sms",
    "provider": "africastalking",
    "channelNumber": "21525",
    "name": "Shop alerts",
    "baseUrl": "https://api.africastalking.com",
    "credentials": {"username": "your-app-username", "apiKey": "your-api-key"},
    "unitPrice": {"currencyCode": "KES", "amount": "0.80"},
    "purseId": "0190f5a2-8c1e-7d2b-9a3f-4e5d6c7b8a91"
}))]
pub struct NewMessagingChannel {
    /// `sms`, `ussd`, `voice`, `whatsapp`, `messenger`, `telegram` or `email`.
    #[schema(value_type = String, example = "sms")]
    pub channel: Channel,
    /// `africastalking` (SMS, USSD, voice), `meta` (WhatsApp, Messenger), `telegram`, `smtp`.
    pub provider: ProviderKind,
    /// A short code or sender id (SMS), a USSD code (`*384*123#`), an E.164 number (voice,
    /// WhatsApp), a bot name (Telegram), a page id (Messenger), an email address.
    #[schema(min_length = 1, max_length = 64)]
    pub channel_number: String,
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// The provider's API address: production, sandbox, or a simulator; for email, the
    /// SMTP server as `smtp://host:port` (plain), `smtp+starttls://host:587` or
    /// `smtps://host:465`.
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = r"^(https?|smtps?|smtp\+starttls)://[^\s\u0000]+$"
    )]
    pub base_url: String,
    /// Africa's Talking: `username`, `apiKey`. Meta: `accessToken`, `appSecret`,
    /// `verifyToken`, and `phoneNumberId` for WhatsApp. Telegram: `botToken`. SMTP:
    /// `username`, `password`, and `rootCertificate` (base64 DER) for a relay whose
    /// certificate a private CA signs. Sealed at rest, never shown again.
    #[schema(value_type = BTreeMap<String, String>)]
    pub credentials: BTreeMap<String, String>,
    /// What one unit costs: an SMS segment, a voice minute, a message.
    pub unit_price: MoneyValue,
    /// The org's purse that pays; required when the price is not zero.
    pub purse_id: Option<Uuid>,
    /// Whether customers must opt in before they are sent anything (default: unless they
    /// opted out).
    #[serde(default)]
    pub consent_required: bool,
    /// USSD and voice: what a customer gets when the app does not answer in time.
    #[schema(min_length = 1, max_length = 160)]
    pub fallback_text: Option<String>,
}

/// Where a channel's provider posts: give these to the provider, prefixed with this server's
/// public address.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallbackUrls {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_delivery_reports: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_inbound: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_subscriptions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ussd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ussd_session_end: Option<String>,
    /// Voice: the number's callback URL (every step of a call, and its end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    /// WhatsApp and Messenger: the webhook (its verify-token handshake too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Telegram: the webhook URL to `setWebhook` with this channel's `secretToken`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram_webhook: Option<String>,
    /// Telegram: the `secret_token` to give `setWebhook`; every update must carry it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram_secret_token: Option<String>,
    /// Email: the Inbound Parse URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_email: Option<String>,
}

/// A messaging channel, without its credentials' values.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagingChannelView {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub channel: Channel,
    pub provider: ProviderKind,
    pub channel_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub base_url: String,
    /// The credentials that are set (their values are never shown).
    pub credentials_set: Vec<String>,
    pub unit_price: MoneyValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purse_id: Option<Uuid>,
    /// Where its costs go: the channel's clearing account.
    pub clearing_account_id: Uuid,
    pub consent_required: bool,
    pub fallback_text: String,
    pub callback_urls: CallbackUrls,
    pub created_at: DateTime<Utc>,
}

fn view(record: &ChannelRecord) -> MessagingChannelView {
    let url = |kind: &str| {
        format!("/callbacks/africastalking/{}/{}/{}/{kind}", record.org.0, record.id, record.token)
    };
    let at = record.provider == ProviderKind::AfricasTalking;
    let sms = at && record.channel == Channel::Sms;
    let ussd = at && record.channel == Channel::Ussd;
    let voice = at && record.channel == Channel::Voice;
    let base = format!("{}/{}", record.org.0, record.id);
    let telegram = record.channel == Channel::Telegram;
    MessagingChannelView {
        id: record.id,
        channel: record.channel,
        provider: record.provider,
        channel_number: record.number.clone(),
        name: record.name.clone(),
        base_url: record.base_url.clone(),
        credentials_set: record.credential_names.clone(),
        unit_price: MoneyValue::of(&record.unit_price),
        purse_id: record.purse.map(|p| p.0),
        clearing_account_id: record.clearing.0,
        consent_required: record.consent_required,
        fallback_text: record.fallback_text.clone(),
        callback_urls: CallbackUrls {
            sms_delivery_reports: sms.then(|| url("sms-delivery")),
            sms_inbound: sms.then(|| url("sms-inbound")),
            sms_subscriptions: sms.then(|| url("sms-subscription")),
            ussd: ussd.then(|| url("ussd")),
            ussd_session_end: ussd.then(|| url("ussd-end")),
            voice: voice.then(|| url("voice")),
            webhook: (record.provider == ProviderKind::Meta)
                .then(|| format!("/callbacks/meta/{base}/{}", record.token)),
            telegram_webhook: telegram.then(|| format!("/callbacks/telegram/{base}")),
            telegram_secret_token: telegram.then(|| record.token.clone()),
            inbound_email: (record.channel == Channel::Email)
                .then(|| format!("/callbacks/email/{base}/{}", record.token)),
        },
        created_at: record.created_at,
    }
}

/// The org's messaging channels.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessagingChannelList {
    pub data: Vec<MessagingChannelView>,
}

fn check_text(value: &str, max: usize, code: Code, what: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(ApiError::invalid(code, format!("{what} is empty or longer than {max}")));
    }
    Ok(())
}

/// Adds a messaging channel with its clearing account (org key). A channel's number is unique
/// per channel in the org: 409 `channel_exists`.
#[utoipa::path(post, operation_id = "create_messaging_channel", path = "/v1/messaging-channels", tag = "messaging", request_body = NewMessagingChannel,
    responses((status = 201, body = MessagingChannelView)))]
async fn create_channel(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewMessagingChannel>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let new = checked(new)?;
    let record = state.messaging.create_channel(caller.org, new).await?;
    tracing::info!(channel = %record.id, kind = record.channel.as_str(), "messaging channel added");
    Ok((StatusCode::CREATED, Json(view(&record))).into_response())
}

/// The service's new channel from the request, checked as far as it can be without the
/// database.
pub(super) fn checked(new: NewMessagingChannel) -> Result<NewChannel, ApiError> {
    check_text(&new.base_url, 2048, Code::InvalidBaseUrl, "baseUrl")?;
    let schemes: &[&str] = if new.channel == Channel::Email {
        &["smtp://", "smtp+starttls://", "smtps://"]
    } else {
        &["https://", "http://"]
    };
    if !schemes.iter().any(|scheme| new.base_url.starts_with(scheme)) {
        return Err(ApiError::invalid(
            Code::InvalidBaseUrl,
            format!("baseUrl starts with one of {}", schemes.join(", ")),
        ));
    }
    if let Some(name) = &new.name {
        check_text(name, 100, Code::InvalidName, "name")?;
    }
    if let Some(text) = &new.fallback_text {
        check_text(text, 160, Code::InvalidValue, "fallbackText")?;
    }
    for value in new.credentials.values() {
        check_text(value, TEXT_LEN_MAX, Code::InvalidCredential, "a credential")?;
    }
    let unit_price = price(&new.unit_price)?;
    let credentials = (new.credentials.iter())
        .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
        .collect();
    let channel = NewChannel {
        channel: new.channel,
        provider: new.provider,
        number: new.channel_number,
        name: new.name.map(|n| n.trim().to_owned()),
        base_url: new.base_url.trim().to_owned(),
        credentials,
        unit_price,
        purse: new.purse_id.map(AccountId),
        consent_required: new.consent_required,
        fallback_text: new.fallback_text,
    };
    crate::messaging::check_new(&channel)?;
    Ok(channel)
}

/// A unit price: zero or more, in a currency.
fn price(value: &MoneyValue) -> Result<Money, ApiError> {
    let currency = money::currency(&value.currency_code)?;
    Money::parse(currency, &value.amount)
        .ok()
        .filter(|money| !money.amount().is_sign_negative())
        .ok_or_else(|| {
            ApiError::invalid(Code::InvalidAmount, "unitPrice is a decimal of the currency's units")
        })
}

/// The org's messaging channels (org key), without their credentials.
#[utoipa::path(get, operation_id = "list_messaging_channels", path = "/v1/messaging-channels", tag = "messaging",
    responses((status = 200, body = MessagingChannelList)))]
async fn list_channels(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let channels = state.messaging.channels(caller.org).await?;
    Ok(Json(MessagingChannelList { data: channels.iter().map(view).collect() }).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ChannelPath {
    /// The channel's id.
    id: Uuid,
}

/// One messaging channel (org key).
#[utoipa::path(get, operation_id = "get_messaging_channel", path = "/v1/messaging-channels/{id}", tag = "messaging", params(ChannelPath),
    responses((status = 200, body = MessagingChannelView)))]
async fn get_channel(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(path): PathParams<ChannelPath>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let record = match state.messaging.channel(caller.org, path.id).await {
        Err(crate::messaging::MessagingError::Invalid { code: Code::ChannelNotFound, .. }) => {
            return Err(ApiError::not_found("messaging channel"));
        }
        other => other?,
    };
    Ok(Json(view(&record)).into_response())
}

/// A message to send.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "channelId": "0190f5a2-8c1e-7d2b-9a3f-4e5d6c7b8a92",
    "customerNumber": "+254711000001",
    "body": {"kind": "text", "text": "Your cart is waiting: 2 items, KES 1,250."}
}))]
pub struct SendMessage {
    pub channel_id: Uuid,
    /// The customer, at their number of the channel's kind. Give this or `customerNumber`.
    pub customer_id: Option<Uuid>,
    /// The customer's address on the channel (E.164 number, email address, chat id); a new
    /// one makes a customer.
    #[schema(min_length = 1, max_length = 256)]
    pub customer_number: Option<String>,
    /// What to send: `{"kind": "text", "text": …}`, `template`, `media`, `location`,
    /// `email`, `url`, `voice` (`actions`).
    #[schema(value_type = Object)]
    pub body: MessageBody,
    /// Our earlier message with this customer that this answers.
    pub reply_to: Option<Uuid>,
    /// What the message does for the customer (an activity, metadata, the app's data),
    /// applied with its cost's reservation, or with the message itself on a channel whose
    /// messages cost nothing: all of it if the message is queued, none otherwise.
    /// A message's context cannot name a message: its `messageId` is refused (422
    /// `invalid_body`); name the message this one answers with `replyTo`.
    pub context: Option<PaymentContext>,
    /// The payment the message is about (shown on the timeline together): one of this
    /// customer's payments (a payment of the org that names them, as a wallet's owner or in
    /// its context, or one through a provider made with them). Any other id is refused (422
    /// `not_found`) and nothing is sent.
    pub payment_id: Option<Uuid>,
    /// Messenger only: a message tag, for a non-promotional update the customer expects.
    /// Tagged, a text or media message may go outside the customer's 24-hour window (a
    /// `HUMAN_AGENT` answer or a `CUSTOMER_FEEDBACK` survey within 7 days of their last
    /// message), and it goes as Messenger's `MESSAGE_TAG` with the tag, inside the window too.
    /// Meta's policy decides what each tag may carry: never promotions. On any other channel
    /// a tag is refused (422 `unsupported_body`); a value not listed is refused too (422
    /// `invalid_body`).
    #[schema(value_type = Option<MessengerTag>)]
    pub provider_tag: Option<MessageTag>,
}

/// The document's name for a Messenger message tag: every tag the Send API takes, listed.
#[derive(Debug)]
pub struct MessengerTag;

impl utoipa::PartialSchema for MessengerTag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(MessageTag::ALL.map(MessageTag::as_str)))
            .description(Some("A Messenger message tag, such as `POST_PURCHASE_UPDATE`."))
            .into()
    }
}

impl utoipa::ToSchema for MessengerTag {}

/// Sends a message to a customer: checked (`unsupported_body`, `message_too_long`,
/// `no_consent`, `no_session_in_progress`), its cost reserved from the channel's purse
/// (`insufficient_credits`), then queued and sent in the background. The answer is the
/// message, `queued`; each later status is a `message.status_changed` event. A refused
/// message changes nothing: a new `customerNumber` makes its customer only with a message
/// that is queued.
#[utoipa::path(post, operation_id = "send_message", path = "/v1/messages", tag = "messaging", request_body = SendMessage,
    responses((status = 201, body = MessageView)))]
async fn send_message(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<SendMessage>,
) -> Result<Response, ApiError> {
    let to = match (new.customer_id, new.customer_number) {
        (Some(id), None) => Recipient::Customer(id),
        (None, Some(number)) => Recipient::Number(number),
        _ => {
            return Err(ApiError::invalid(
                Code::InvalidCustomerReference,
                "name the customer by customerId or customerNumber, one of them",
            ));
        }
    };
    let message = state
        .messaging
        .send(NewMessage {
            org: caller.org,
            app: caller.app,
            channel: new.channel_id,
            to,
            body: new.body,
            reply_to: new.reply_to,
            context: new.context,
            payment_id: new.payment_id,
            provider_tag: new.provider_tag,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(message)).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct IdPath {
    /// The id.
    id: Uuid,
}

/// A message, with every status it took.
#[utoipa::path(get, operation_id = "get_message", path = "/v1/messages/{id}", tag = "messaging", params(IdPath),
    responses((status = 200, body = MessageView)))]
async fn get_message(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(path): PathParams<IdPath>,
) -> Result<Response, ApiError> {
    Ok(Json(state.messaging.message(caller.org, path.id).await?).into_response())
}

/// A message to every customer with a tag.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "channelId": "0190f5a2-8c1e-7d2b-9a3f-4e5d6c7b8a92",
    "tag": {"key": "segment", "value": "cart-abandoners"},
    "body": {"kind": "text", "text": "20% off today only."}
}))]
pub struct StartJob {
    pub channel_id: Uuid,
    pub tag: TagSelector,
    #[schema(value_type = Object)]
    pub body: MessageBody,
}

/// Messages every customer with a tag: answered at once with the job, which queues the
/// messages in the background (each checked and charged as a single message is) and counts
/// them by status.
#[utoipa::path(post, operation_id = "start_message_job", path = "/v1/message-jobs", tag = "messaging", request_body = StartJob,
    responses((status = 202, body = Job)))]
async fn start_job(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<StartJob>,
) -> Result<Response, ApiError> {
    let job = state
        .messaging
        .start_job(NewJob {
            org: caller.org,
            app: caller.app,
            channel: new.channel_id,
            tag_key: new.tag.key,
            tag_value: new.tag.value,
            body: new.body,
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// A send-by-tag job and its counts.
#[utoipa::path(get, operation_id = "get_message_job", path = "/v1/message-jobs/{id}", tag = "messaging", params(IdPath),
    responses((status = 200, body = Job)))]
async fn get_job(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(path): PathParams<IdPath>,
) -> Result<Response, ApiError> {
    Ok(Json(state.messaging.job(caller.org, path.id).await?).into_response())
}

/// A customer's consent on a channel.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "channelId": "0190f5a2-8c1e-7d2b-9a3f-4e5d6c7b8a92",
    "customerId": "0190f5a2-8c1e-7d2b-9a3f-4e5d6c7b8a93",
    "allowed": false
}))]
pub struct SetConsent {
    pub channel_id: Uuid,
    pub customer_id: Uuid,
    /// `true`: the customer opted in; `false`: they opted out.
    pub allowed: bool,
}

/// Records that a customer opted in or out of a channel; a `messaging.consent_changed` event.
#[utoipa::path(post, operation_id = "set_messaging_consent", path = "/v1/messaging-consent", tag = "messaging", request_body = SetConsent,
    responses((status = 204)))]
async fn set_consent(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<SetConsent>,
) -> Result<Response, ApiError> {
    let channel = state.messaging.channel(caller.org, new.channel_id).await?;
    let customer = crate::customers::check(&state.pool, caller.org, new.customer_id).await?;
    state.messaging.set_consent(&channel, customer, new.allowed, "api").await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
