//! Payment channels (org key): an org's endpoints at a provider, each with a clearing account
//! in the ledger. Credentials go in and never come out: responses name the fields that are set,
//! never their values, and the credentials type prints redacted.

use std::collections::BTreeMap;
use std::fmt;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::money;
use crate::code::Code;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::{ApiError, Body, PathParams};
use crate::payments::{self, ChannelSummary, Provider};

/// The path payment channels had before messaging channels were planned: served, with the
/// same handlers, for one more release, marked deprecated in the OpenAPI document and on every
/// answer (`Deprecation`, and a `Link` to the successor).
pub const DEPRECATED_PREFIX: &str = "/v1/channels";
/// Where payment channels live.
pub const PREFIX: &str = "/v1/payment-channels";

/// The routes under [`DEPRECATED_PREFIX`].
pub fn deprecated_routes() -> axum::Router<AppState> {
    use axum::routing::{get, post, put};
    axum::Router::new()
        .route(DEPRECATED_PREFIX, get(list_channels).post(create_channel))
        .route(&format!("{DEPRECATED_PREFIX}/{{channel_id}}"), get(get_channel))
        .route(&format!("{DEPRECATED_PREFIX}/{{channel_id}}/c2b-registration"), post(register_c2b))
        .route(
            &format!("{DEPRECATED_PREFIX}/{{channel_id}}/treasury-limit"),
            put(set_treasury_limit),
        )
        .layer(axum::middleware::map_response(mark_deprecated))
}

async fn mark_deprecated(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert("deprecation", axum::http::HeaderValue::from_static("true"));
    headers.insert(
        axum::http::header::LINK,
        axum::http::HeaderValue::from_static("</v1/payment-channels>; rel=\"successor-version\""),
    );
    response
}

/// Adds the deprecated paths to `document`: copies of the payment channels' operations, each
/// marked deprecated, under [`DEPRECATED_PREFIX`].
pub fn document_deprecated_routes(document: &mut serde_json::Value) {
    let Some(paths) = document.get_mut("paths").and_then(serde_json::Value::as_object_mut) else {
        return;
    };
    let copies: Vec<(String, serde_json::Value)> = paths
        .iter()
        .filter_map(|(path, item)| {
            let rest = path.strip_prefix(PREFIX)?;
            let mut item = item.clone();
            for operation in item.as_object_mut()?.values_mut() {
                let Some(operation) = operation.as_object_mut() else { continue };
                operation.insert("deprecated".to_owned(), serde_json::Value::Bool(true));
                if let Some(id) = operation.get("operationId").and_then(|id| id.as_str()) {
                    let id = format!("{id}_deprecated");
                    operation.insert("operationId".to_owned(), serde_json::Value::String(id));
                }
            }
            Some((format!("{DEPRECATED_PREFIX}{rest}"), item))
        })
        .collect();
    paths.extend(copies);
}

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list_channels, create_channel))
        .routes(utoipa_axum::routes!(get_channel))
        .routes(utoipa_axum::routes!(register_c2b))
        .routes(utoipa_axum::routes!(set_treasury_limit))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "provider": "mpesa",
    "channelNumber": "600000",
    "currencyCode": "KES",
    "name": "Web shop paybill",
    "baseUrl": "https://sandbox.safaricom.co.ke",
    "credentials": {
        "consumerKey": "your-daraja-consumer-key",
        "consumerSecret": "your-daraja-consumer-secret",
        "passkey": "your-lipa-na-mpesa-passkey",
        "initiatorName": "your-b2c-initiator",
        "securityCredential": "your-encrypted-initiator-password"
    },
    "treasuryLimit": {"currencyCode": "KES", "amount": "250000.00"}
}))]
pub struct NewChannel {
    pub provider: Provider,
    /// The paybill, till or shortcode (M-Pesa: 5 to 7 digits), the MoMo account's id, or the
    /// org's name for an Africa's Talking account (its username, say): what payouts name.
    #[schema(min_length = 1, max_length = 64)]
    pub channel_number: String,
    #[schema(value_type = super::money::CurrencyCode, example = "KES")]
    pub currency_code: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub name: Option<String>,
    /// The provider's API address: production, sandbox, or a simulator
    /// (`http://127.0.0.1:8080/simulator/mpesa` with `hazina serve --simulate`).
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = r"^https?://[^\s\u0000]+$",
        example = "https://sandbox.safaricom.co.ke"
    )]
    pub base_url: String,
    /// M-Pesa: `consumerKey` and `consumerSecret`, and for payouts `initiatorName` and
    /// `securityCredential`, for STK push `passkey`. MoMo: `apiUser`, `apiKey`,
    /// `subscriptionKey`, `targetEnvironment`. Africa's Talking (airtime): `username`,
    /// `apiKey`. Stored, never returned.
    #[schema(value_type = BTreeMap<String, String>)]
    pub credentials: Credentials,
    /// The most an org key may move out of the channel's clearing account in one payment or
    /// transfer, in the channel's currency; none when absent. App keys never may.
    pub treasury_limit: Option<money::MoneyValue>,
}

/// A channel's secrets by name. Printed redacted, never serialised into a response.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Credentials(BTreeMap<String, String>);

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys().map(|name| format!("{name}: <redacted>"))).finish()
    }
}

/// A channel as the API shows it: its credentials by name only.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    pub channel_id: Uuid,
    /// As stored (the table allows only the providers of [`Provider`]).
    #[schema(value_type = Provider)]
    pub provider: String,
    pub channel_number: String,
    #[schema(value_type = super::money::CurrencyCode)]
    pub currency_code: String,
    pub name: Option<String>,
    pub base_url: String,
    /// The ledger account of the money held at the provider through this channel.
    pub clearing_account_id: Uuid,
    /// The names of the credentials set (their values are never shown).
    pub credentials_set: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Where unprompted payments go when no wallet takes them (set by C2B registration).
    pub receiving_purse_id: Option<Uuid>,
    /// The most an org key may move out of the clearing account in one payment or transfer.
    pub treasury_limit: money::MoneyValue,
    /// Africa's Talking channels: the path on this server to set as the account's airtime
    /// status callback URL (it carries the channel's secret token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub airtime_status_callback_url: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelList {
    pub channels: Vec<ChannelView>,
}

impl From<ChannelSummary> for ChannelView {
    fn from(channel: ChannelSummary) -> Self {
        ChannelView {
            channel_id: channel.id,
            provider: channel.provider.as_str().to_owned(),
            channel_number: channel.number,
            currency_code: channel.currency.code().to_owned(),
            name: channel.name,
            base_url: channel.base_url,
            clearing_account_id: channel.clearing.0,
            credentials_set: channel.credential_names,
            created_at: channel.created_at,
            receiving_purse_id: channel.receiving_purse.map(|purse| purse.0),
            treasury_limit: money::MoneyValue::of(&channel.treasury_limit),
            airtime_status_callback_url: channel.airtime_status_callback_path,
        }
    }
}

/// Adds a payment channel with its clearing account (org key). A provider's channel number is
/// unique in the org: 409 `channel_exists`.
#[utoipa::path(post, operation_id = "create_payment_channel", path = "/v1/payment-channels", tag = "payment-channels", request_body = NewChannel,
    responses((status = 201, body = ChannelView)))]
async fn create_channel(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewChannel>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let currency = money::currency(&new.currency_code)?;
    let mut channel = payments::NewChannel {
        provider: new.provider,
        number: new.channel_number,
        currency,
        name: new.name,
        base_url: new.base_url,
        credentials: new.credentials.0,
        treasury_limit: None,
    };
    // The channel's own fields are checked before its treasury limit is read, so that a
    // request with several faults is answered with the first of them, as it always was.
    state.payments.check_new_channel(&channel)?;
    channel.treasury_limit =
        new.treasury_limit.as_ref().map(money::MoneyValue::money).transpose()?;
    let channel = state.payments.create_channel(caller.org, channel).await?;
    Ok((StatusCode::CREATED, Json(ChannelView::from(channel))).into_response())
}

/// The org's payment channels (org key), without their credentials.
#[utoipa::path(get, operation_id = "list_payment_channels", path = "/v1/payment-channels", tag = "payment-channels", responses(
    (status = 200, body = ChannelList)))]
async fn list_channels(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let channels = state.payments.list_channels(caller.org).await?;
    let channels = channels.into_iter().map(ChannelView::from).collect();
    Ok(Json(ChannelList { channels }).into_response())
}

/// One payment channel (org key), without its credentials.
#[utoipa::path(get, operation_id = "get_payment_channel", path = "/v1/payment-channels/{channel_id}", tag = "payment-channels",
    params(("channel_id" = Uuid, Path)),
    responses((status = 200, body = ChannelView)))]
async fn get_channel(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(channel_id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let channel = state.payments.channel_summary(caller.org, channel_id).await?;
    Ok(Json(ChannelView::from(channel)).into_response())
}

/// A channel's treasury limit.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"treasuryLimit": {"currencyCode": "KES", "amount": "250000.00"}}))]
pub struct TreasuryLimit {
    /// The most an org key may move out of the clearing account in one payment or transfer,
    /// in the channel's currency (`0` allows none).
    pub treasury_limit: money::MoneyValue,
}

/// Sets how much an org key may move out of the channel's clearing account in one payment or
/// transfer (org key).
#[utoipa::path(put, path = "/v1/payment-channels/{channel_id}/treasury-limit", tag = "payment-channels",
    params(("channel_id" = Uuid, Path)), request_body = TreasuryLimit,
    responses((status = 200, body = ChannelView)))]
async fn set_treasury_limit(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(channel_id): PathParams<Uuid>,
    Body(body): Body<TreasuryLimit>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    // A missing channel is a 404 whatever the body says: it is looked for before the limit is
    // read.
    state.payments.channel_summary(caller.org, channel_id).await?;
    let limit = body.treasury_limit.money()?;
    let channel = state.payments.set_treasury_limit(caller.org, channel_id, limit).await?;
    Ok(Json(ChannelView::from(channel)).into_response())
}

/// Where a channel's unprompted payments go.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"receivingPurseId": "0192a3b4-e7f8-7a09-b1c2-d3e4f5a6b7c8"}))]
pub struct C2bRegistration {
    /// The purse that takes payments whose account reference names none of the paying
    /// customer's wallets.
    pub receiving_purse_id: Uuid,
}

/// Registers an M-Pesa channel's C2B URLs with Daraja (org key), so that customers can pay it
/// unprompted: a payment whose account reference is one of the paying customer's wallet ids
/// goes to that wallet, any other to the receiving purse. Daraja asks us to validate each
/// payment first, and refuses it when we do not answer.
#[utoipa::path(post, operation_id = "register_c2b_urls", path = "/v1/payment-channels/{channel_id}/c2b-registration", tag = "payment-channels",
    params(("channel_id" = Uuid, Path)), request_body = C2bRegistration,
    responses((status = 200, body = ChannelView)))]
async fn register_c2b(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(channel_id): PathParams<Uuid>,
    Body(registration): Body<C2bRegistration>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let channel = state
        .payments
        .channel(caller.org, channel_id)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))?;
    let purse = money::purse(&state, &caller, registration.receiving_purse_id).await?;
    if purse.currency != channel.currency {
        return Err(ApiError::invalid(
            Code::CurrencyMismatch,
            format!("the purse holds {}, the channel moves {}", purse.currency, channel.currency),
        ));
    }
    state.payments.register_c2b(&channel, purse.id).await?;
    let channel = state.payments.channel_summary(caller.org, channel_id).await?;
    Ok(Json(ChannelView::from(channel)).into_response())
}
