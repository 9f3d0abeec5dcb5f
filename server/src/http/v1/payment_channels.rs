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
        .route(
            &format!("{DEPRECATED_PREFIX}/{{channel_id}}/bank-files"),
            get(list_bank_files).post(cut_bank_file),
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
        .routes(utoipa_axum::routes!(list_bank_files, cut_bank_file))
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
    /// (`http://127.0.0.1:8080/simulator/mpesa` with `hazina serve --simulate`). Required for
    /// every provider but `bank`, which has none: its files go through the server's exchange
    /// directory.
    #[serde(default)]
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
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub credentials: Credentials,
    /// The most an org key may move out of the channel's clearing account in one payment or
    /// transfer, in the channel's currency; none when absent. App keys never may.
    pub treasury_limit: Option<money::MoneyValue>,
    /// A `bank` channel's details (required for one, refused for others); its channel number
    /// is the org's account at the bank, an IBAN or other account number.
    pub bank: Option<BankDetailsBody>,
}

/// A bank channel's details: who the org is to the bank, and when its payouts are sent.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BankDetailsBody {
    /// The org's name on the account (`Dbtr/Nm`).
    #[schema(
        min_length = 1,
        max_length = 140,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u001f\u007f-\u009f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub debtor_name: String,
    /// The bank's BIC (8 or 11 characters).
    #[schema(pattern = r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$", example = "KCBLKENX")]
    pub bic: String,
    /// The times of day queued payouts go out in one pain.001 file, `HH:MM` in `utcOffset`.
    #[schema(min_items = 1, max_items = 48, example = json!(["10:00", "15:00"]))]
    pub cut_offs: Vec<CutOffTime>,
    /// The UTC offset of the cut-off times, `+HH:MM` or `-HH:MM`.
    #[schema(pattern = r"^[+-](0[0-9]|1[0-4]):[0-5][0-9]$", example = "+03:00")]
    pub utc_offset: String,
}

/// A time of day, `HH:MM`.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "10:00")]
pub struct CutOffTime(pub String);

impl BankDetailsBody {
    /// The details as the payments service takes them.
    ///
    /// # Errors
    ///
    /// 422 `invalid_name`, `invalid_bic` or `invalid_cut_off`.
    pub fn details(&self) -> Result<payments::BankDetails, ApiError> {
        let cut_offs: Vec<String> = self.cut_offs.iter().map(|time| time.0.clone()).collect();
        Ok(payments::BankDetails::parse(&self.debtor_name, &self.bic, &cut_offs, &self.utc_offset)?)
    }

    fn of(details: &payments::BankDetails) -> Self {
        Self {
            debtor_name: details.debtor_name.clone(),
            bic: details.bic.clone(),
            cut_offs: details.cut_off_times().into_iter().map(CutOffTime).collect(),
            utc_offset: details.utc_offset(),
        }
    }
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
    /// Bank channels: the debtor, the BIC and the cut-off schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank: Option<BankDetailsBody>,
}

impl ChannelView {
    /// The view of a channel, with its bank details when it is a bank's.
    async fn of(
        state: &AppState,
        org: hazina_ledger::OrgId,
        channel: ChannelSummary,
    ) -> Result<Self, ApiError> {
        let bank = if channel.provider == Provider::Bank {
            state.payments.bank_details(org, channel.id).await?.as_ref().map(BankDetailsBody::of)
        } else {
            None
        };
        Ok(Self { bank, ..Self::from(channel) })
    }
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
            bank: None,
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
    let bank = match (new.provider, &new.bank) {
        (Provider::Bank, Some(bank)) => Some(bank.details()?),
        (Provider::Bank, None) => {
            return Err(ApiError::invalid(
                Code::MissingBankDetails,
                "a bank channel needs `bank`: debtorName, bic, cutOffs and utcOffset",
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid(Code::NotSupported, "`bank` is for bank channels only"));
        }
        (_, None) => None,
    };
    channel.treasury_limit =
        new.treasury_limit.as_ref().map(money::MoneyValue::money).transpose()?;
    let channel = match bank {
        Some(bank) => state.payments.create_bank_channel(caller.org, channel, bank).await?,
        None => state.payments.create_channel(caller.org, channel).await?,
    };
    let view = ChannelView::of(&state, caller.org, channel).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The org's payment channels (org key), without their credentials.
#[utoipa::path(get, operation_id = "list_payment_channels", path = "/v1/payment-channels", tag = "payment-channels", responses(
    (status = 200, body = ChannelList)))]
async fn list_channels(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let mut views = Vec::new();
    for channel in state.payments.list_channels(caller.org).await? {
        views.push(ChannelView::of(&state, caller.org, channel).await?);
    }
    Ok(Json(ChannelList { channels: views }).into_response())
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
    Ok(Json(ChannelView::of(&state, caller.org, channel).await?).into_response())
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

/// A pain.001 file of a bank channel's payouts, and how its payments stand.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BankFileView {
    pub file_id: Uuid,
    pub channel_id: Uuid,
    /// `GrpHdr/MsgId` and `PmtInf/PmtInfId`, unique per channel.
    pub message_id: String,
    /// The file's name in the channel's `out/` directory.
    pub file_name: String,
    /// `prepared` (recorded, not yet on disk: the worker writes it) or `written`.
    pub status: String,
    /// The bank's group status from its pain.002 (`ACCP`, `PART`, `RJCT`, …), once it answered.
    pub bank_status: Option<String>,
    /// `cut_off` (the channel's schedule) or `on_demand`.
    pub reason: String,
    /// `NbOfTxs`.
    pub payment_count: i32,
    /// `CtrlSum`, with the file's currency.
    pub control_sum: money::MoneyValue,
    /// `ReqdExctnDt`.
    pub execution_date: chrono::NaiveDate,
    /// Its payments posted (the bank booked them), voided (refused) and neither yet.
    pub payments_posted: i64,
    pub payments_voided: i64,
    pub payments_pending: i64,
    pub created_at: DateTime<Utc>,
    pub written_at: Option<DateTime<Utc>>,
}

impl From<payments::BankFile> for BankFileView {
    fn from(file: payments::BankFile) -> Self {
        Self {
            file_id: file.id,
            channel_id: file.channel,
            message_id: file.message_id,
            file_name: file.file_name,
            status: file.status,
            bank_status: file.bank_status,
            reason: file.reason,
            payment_count: file.payment_count,
            control_sum: money::MoneyValue::of(&file.control_sum),
            execution_date: file.execution_date,
            payments_posted: file.posted,
            payments_voided: file.voided,
            payments_pending: file.open,
            created_at: file.created_at,
            written_at: file.written_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BankFileList {
    /// Newest first, at most 100.
    pub files: Vec<BankFileView>,
}

/// Cuts a file of the bank channel's queued payouts now (org key), besides its cut-offs, and
/// writes it into the channel's `out/` directory; 409 `no_queued_payouts` when none waits.
#[utoipa::path(post, path = "/v1/payment-channels/{channel_id}/bank-files", tag = "payment-channels",
    params(("channel_id" = Uuid, Path)),
    responses((status = 201, body = BankFileView)))]
async fn cut_bank_file(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(channel_id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let Some(file) = state.payments.cut_bank_file(caller.org, channel_id).await? else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Code::NoQueuedPayouts,
            "no payout of this channel is waiting for a file",
        ));
    };
    Ok((StatusCode::CREATED, Json(BankFileView::from(file))).into_response())
}

/// The bank channel's pain.001 files (org key), newest first, with their counts, control sums
/// and how their payments stand.
#[utoipa::path(get, path = "/v1/payment-channels/{channel_id}/bank-files", tag = "payment-channels",
    params(("channel_id" = Uuid, Path)),
    responses((status = 200, body = BankFileList)))]
async fn list_bank_files(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(channel_id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let files = state.payments.list_bank_files(caller.org, channel_id).await?;
    Ok(Json(BankFileList { files: files.into_iter().map(BankFileView::from).collect() })
        .into_response())
}
