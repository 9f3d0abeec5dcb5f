//! Safaricom M-Pesa (Daraja) adapter: wire types with Daraja's exact field names and quirks,
//! builders for the requests we send, and pure transformers from its messages to
//! [`StatusReport`]s.
//!
//! Daraja drifts between JSON strings and numbers for the same field (`ResultCode` is `0` in a
//! callback and `"1032"` in a query; `expires_in` is `3599` or `"3599"`), so every such scalar
//! is a [`Text`]. Callbacks are not signed: a report from a callback is a hint that the caller
//! confirms with a status query before money moves.

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::money::{Currency, Money};
use crate::wire::Text;
use crate::{ParseError, Secret, Status, StatusReport};

// ---------------------------------------------------------------------------------------------
// Shared shapes
// ---------------------------------------------------------------------------------------------

/// One value or a list of them: Daraja sends `ReferenceItem` (and, in some samples,
/// `ResultParameter`) as a single object when there is one entry and an array otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The entries, in the order sent.
    pub fn as_slice(&self) -> &[T] {
        match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        }
    }
}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        Self::Many(Vec::new())
    }
}

// Not `#[serde(untagged)]`: untagged buffers the input, and `Text` reads numbers through
// serde_json's raw values, which only work straight from the JSON text.
impl<'de, T: DeserializeOwned> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let text = raw.get().trim_start();
        if text.starts_with('[') {
            serde_json::from_str(text).map(Self::Many).map_err(D::Error::custom)
        } else {
            serde_json::from_str(text).map(Self::One).map_err(D::Error::custom)
        }
    }
}

impl<T: Serialize> Serialize for OneOrMany<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::One(one) => one.serialize(serializer),
            Self::Many(many) => many.serialize(serializer),
        }
    }
}

/// A `{Key, Value}` pair of a result's parameters or reference data. The value may be missing
/// (`{"Key":"TransactionReason"}`), a string or a number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Text>,
}

/// The synchronous error body of every Daraja API (`400.002.02`, `500.002.1001`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    #[serde(rename = "requestId", default)]
    pub request_id: String,
    #[serde(rename = "errorCode")]
    pub error_code: String,
    #[serde(rename = "errorMessage", default)]
    pub error_message: String,
}

impl ErrorResponse {
    /// Whether this is the duplicate-`OriginatorConversationID` refusal: the earlier request
    /// with that id exists, so its outcome is found by a status query, never by a resend.
    pub fn is_duplicate(&self) -> bool {
        self.error_code == "500.002.1001" && self.error_message.contains("Duplicate")
    }
}

/// The synchronous answer of the queued APIs (B2C, transaction status, account balance,
/// reversal): the request was queued, and its result will come to the `ResultURL`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedResponse {
    #[serde(rename = "OriginatorConversationID")]
    pub originator_conversation_id: String,
    #[serde(rename = "ConversationID")]
    pub conversation_id: String,
    #[serde(rename = "ResponseCode")]
    pub response_code: Text,
    #[serde(rename = "ResponseDescription")]
    pub response_description: String,
}

impl QueuedResponse {
    /// Whether Daraja accepted the request for processing (not whether the payment succeeded).
    pub fn is_accepted(&self) -> bool {
        self.response_code.as_str().trim() == "0"
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth
// ---------------------------------------------------------------------------------------------

/// The OAuth token response (`GET /oauth/v1/generate?grant_type=client_credentials`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: Secret,
    /// Seconds; sent as `3599` or `"3599"`.
    pub expires_in: Text,
}

impl TokenResponse {
    /// The token's lifetime in seconds.
    ///
    /// # Errors
    ///
    /// When `expires_in` is not a whole number of seconds.
    pub fn expires_in_seconds(&self) -> Result<u64, ParseError> {
        let text = self.expires_in.as_str().trim();
        text.parse()
            .map_err(|_| ParseError::Unexpected(format!("expires_in {text:?} is not a count")))
    }
}

/// The `Authorization` header value for the token request: `Basic base64(key:secret)`.
pub fn basic_auth(consumer_key: &str, consumer_secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{consumer_key}:{consumer_secret}"));
    format!("Basic {encoded}")
}

// ---------------------------------------------------------------------------------------------
// Request building helpers
// ---------------------------------------------------------------------------------------------

/// Daraja's `Timestamp` (`YYYYMMDDHHmmss`) for an instant, in East Africa Time (UTC+3, no
/// daylight saving), the clock Daraja checks it against.
///
/// # Errors
///
/// Only for instants at the very end of chrono's range.
pub fn timestamp(at: DateTime<Utc>) -> Result<String, ParseError> {
    let local = at
        .naive_utc()
        .checked_add_signed(TimeDelta::hours(3))
        .ok_or_else(|| ParseError::Unexpected(format!("{at} is out of range")))?;
    Ok(local.format("%Y%m%d%H%M%S").to_string())
}

/// The STK `Password`: `base64(Shortcode + Passkey + Timestamp)`.
pub fn stk_password(shortcode: &str, passkey: &str, timestamp: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{shortcode}{passkey}{timestamp}"))
}

fn refuse(what: impl fmt::Display) -> ParseError {
    ParseError::Unexpected(what.to_string())
}

/// Refuses text longer than Daraja allows, rather than letting Daraja cut or reject it.
fn at_most(field: &str, text: &str, chars_max: usize) -> Result<String, ParseError> {
    let count = text.chars().count();
    if count > chars_max {
        return Err(refuse(format!("{field} is {count} characters; at most {chars_max}")));
    }
    Ok(text.to_owned())
}

/// A Kenyan MSISDN in Daraja's form: `2547…`/`2541…`, twelve digits, no `+`.
fn msisdn(field: &str, text: &str) -> Result<Text, ParseError> {
    let valid =
        text.len() == 12 && text.starts_with("254") && text.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return Err(refuse(format!("{field} {text:?} is not a 12-digit 254… number")));
    }
    Ok(Text::from(text))
}

/// An amount as Daraja takes it: whole Kenyan shillings, written without decimals.
fn whole_shillings(amount: &Money, min: i64, max: i64) -> Result<Text, ParseError> {
    if amount.currency().code() != "KES" {
        return Err(refuse(format!("M-Pesa moves KES only, not {}", amount.currency())));
    }
    let value = amount.amount();
    if !value.fract().is_zero() {
        return Err(refuse(format!("M-Pesa takes whole shillings only, not {value}")));
    }
    if value < Decimal::from(min) || value > Decimal::from(max) {
        return Err(refuse(format!("amount {value} is outside KES {min}..={max}")));
    }
    Ok(Text(value.trunc().normalize().to_string()))
}

/// An amount of Kenyan shillings from Daraja's text.
fn kes(text: &Text) -> Result<Money, ParseError> {
    Ok(Money::new(Currency::from_code("KES")?, text.decimal()?)?)
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Status mapping
// ---------------------------------------------------------------------------------------------

/// STK result codes documented as final failures (insufficient balance, limits, expiry,
/// cancelled, unreachable, wrong PIN, wrong product, locked credential).
pub const STK_FAILURE_CODES: &[&str] =
    &["1", "2", "3", "4", "8", "17", "1019", "1025", "1032", "1037", "2001", "2028", "8006"];

/// B2C result codes documented as final failures.
pub const B2C_FAILURE_CODES: &[&str] =
    &["1", "2", "3", "4", "8", "11", "21", "2001", "2006", "2028", "2040", "8006", "SFC_IC0003"];

/// Reversal result codes that are final failures. `R000001` ("already reversed") is not one:
/// the money *was* reversed, by an earlier request of ours whose result we may have missed or
/// by someone else, so neither "failed" nor "succeeded" is safe to post; it stays pending until
/// a transaction status query on the original says which.
pub const REVERSAL_FAILURE_CODES: &[&str] = &["R000002"];

/// Maps a result code with pending as the default: `0` succeeded, a listed code failed,
/// anything else (an unknown or new code) is pending.
pub fn status_of(code: &str, failure_codes: &[&str]) -> Status {
    let code = code.trim();
    if code == "0" {
        Status::Succeeded
    } else if failure_codes.contains(&code) {
        Status::Failed
    } else {
        Status::Pending
    }
}

// ---------------------------------------------------------------------------------------------
// STK push (M-Pesa Express)
// ---------------------------------------------------------------------------------------------

/// The STK transaction type: a paybill, or a till (with the till number as `PartyB`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StkTransactionType {
    CustomerPayBillOnline,
    CustomerBuyGoodsOnline,
}

impl StkTransactionType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CustomerPayBillOnline => "CustomerPayBillOnline",
            Self::CustomerBuyGoodsOnline => "CustomerBuyGoodsOnline",
        }
    }
}

/// What an STK push asks for, in our terms; [`StkPushRequest::new`] turns it into the wire
/// body.
#[derive(Clone, Debug)]
pub struct StkPush<'a> {
    pub shortcode: &'a str,
    pub passkey: &'a Secret,
    /// When the request is made; becomes `Timestamp` and part of `Password`.
    pub at: DateTime<Utc>,
    pub transaction_type: StkTransactionType,
    /// Whole shillings, KES 1 to 250,000.
    pub amount: &'a Money,
    /// The paying customer, `2547XXXXXXXX`.
    pub phone_number: &'a str,
    /// The paybill shortcode, or the till number for buy-goods.
    pub party_b: &'a str,
    pub callback_url: &'a str,
    /// At most 12 characters.
    pub account_reference: &'a str,
    /// At most 13 characters.
    pub transaction_desc: &'a str,
}

/// The STK push body (`POST /mpesa/stkpush/v1/processrequest`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StkPushRequest {
    #[serde(rename = "BusinessShortCode")]
    pub business_short_code: Text,
    #[serde(rename = "Password")]
    pub password: Secret,
    #[serde(rename = "Timestamp")]
    pub timestamp: Text,
    #[serde(rename = "TransactionType")]
    pub transaction_type: String,
    #[serde(rename = "Amount")]
    pub amount: Text,
    #[serde(rename = "PartyA")]
    pub party_a: Text,
    #[serde(rename = "PartyB")]
    pub party_b: Text,
    #[serde(rename = "PhoneNumber")]
    pub phone_number: Text,
    #[serde(rename = "CallBackURL")]
    pub callback_url: String,
    #[serde(rename = "AccountReference")]
    pub account_reference: String,
    #[serde(rename = "TransactionDesc")]
    pub transaction_desc: String,
}

impl StkPushRequest {
    /// Builds the body, refusing what Daraja would refuse or silently cut.
    ///
    /// # Errors
    ///
    /// An `AccountReference` over 12 characters or a `TransactionDesc` over 13, an amount that
    /// is not whole KES 1 to 250,000, or a phone number not in `2547XXXXXXXX` form.
    pub fn new(push: &StkPush<'_>) -> Result<Self, ParseError> {
        let account_reference = at_most("AccountReference", push.account_reference, 12)?;
        let transaction_desc = at_most("TransactionDesc", push.transaction_desc, 13)?;
        let phone = msisdn("PhoneNumber", push.phone_number)?;
        let amount = whole_shillings(push.amount, 1, 250_000)?;
        let timestamp = timestamp(push.at)?;
        Ok(Self {
            business_short_code: Text::from(push.shortcode),
            password: Secret::new(stk_password(push.shortcode, push.passkey.expose(), &timestamp)),
            timestamp: Text(timestamp),
            transaction_type: push.transaction_type.as_str().to_owned(),
            amount,
            party_a: phone.clone(),
            party_b: Text::from(push.party_b),
            phone_number: phone,
            callback_url: push.callback_url.to_owned(),
            account_reference,
            transaction_desc,
        })
    }
}

/// The synchronous STK push response. `ResponseCode` `0` means the prompt was sent, not paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StkPushResponse {
    #[serde(rename = "MerchantRequestID")]
    pub merchant_request_id: String,
    #[serde(rename = "CheckoutRequestID")]
    pub checkout_request_id: String,
    #[serde(rename = "ResponseCode")]
    pub response_code: Text,
    #[serde(rename = "ResponseDescription")]
    pub response_description: String,
    #[serde(rename = "CustomerMessage", default)]
    pub customer_message: String,
}

impl StkPushResponse {
    /// Whether the prompt was sent; the payment is then pending until its callback or query.
    pub fn is_accepted(&self) -> bool {
        self.response_code.as_str().trim() == "0"
    }
}

/// The STK callback body: `{"Body":{"stkCallback":{…}}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StkCallbackEnvelope {
    #[serde(rename = "Body")]
    pub body: StkCallbackBody,
}

/// The `Body` of an STK callback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StkCallbackBody {
    #[serde(rename = "stkCallback")]
    pub stk_callback: StkCallback,
}

/// An STK push's outcome. A failed one has no `CallbackMetadata`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StkCallback {
    #[serde(rename = "MerchantRequestID")]
    pub merchant_request_id: String,
    #[serde(rename = "CheckoutRequestID")]
    pub checkout_request_id: String,
    /// A number here (a string in the query response).
    #[serde(rename = "ResultCode")]
    pub result_code: Text,
    #[serde(rename = "ResultDesc", default)]
    pub result_desc: String,
    #[serde(rename = "CallbackMetadata", default, skip_serializing_if = "Option::is_none")]
    pub callback_metadata: Option<CallbackMetadata>,
}

/// The items of a successful STK callback (`Amount`, `MpesaReceiptNumber`, `TransactionDate`,
/// `PhoneNumber`, sometimes a value-less `Balance`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackMetadata {
    #[serde(rename = "Item", default)]
    pub item: OneOrMany<CallbackItem>,
}

/// One `{Name, Value}` item; the value may be missing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackItem {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Value", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Text>,
}

impl StkCallback {
    /// The value of a metadata item, when present and valued.
    pub fn item(&self, name: &str) -> Option<&Text> {
        let metadata = self.callback_metadata.as_ref()?;
        metadata.item.as_slice().iter().find(|item| item.name == name)?.value.as_ref()
    }

    /// What the callback says about the payment: keyed by `CheckoutRequestID`, with the
    /// receipt and amount when it succeeded.
    ///
    /// # Errors
    ///
    /// When the `Amount` item is not an amount of KES.
    pub fn to_report(&self) -> Result<StatusReport, ParseError> {
        let mut report = StatusReport::new(status_of(self.result_code.as_str(), STK_FAILURE_CODES));
        report.request_reference = non_empty(&self.checkout_request_id);
        report.receipt = self.item("MpesaReceiptNumber").and_then(|text| non_empty(text.as_str()));
        report.amount = self.item("Amount").map(kes).transpose()?;
        report.payer = self.item("PhoneNumber").and_then(|text| non_empty(text.as_str()));
        report.code = Some(self.result_code.to_string());
        report.description = non_empty(&self.result_desc);
        Ok(report)
    }
}

/// The STK status query body (`POST /mpesa/stkpushquery/v1/query`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StkQueryRequest {
    #[serde(rename = "BusinessShortCode")]
    pub business_short_code: Text,
    #[serde(rename = "Password")]
    pub password: Secret,
    #[serde(rename = "Timestamp")]
    pub timestamp: Text,
    #[serde(rename = "CheckoutRequestID")]
    pub checkout_request_id: String,
}

impl StkQueryRequest {
    /// The query for one STK push, authenticated like the push itself.
    ///
    /// # Errors
    ///
    /// Only for instants at the very end of chrono's range.
    pub fn new(
        shortcode: &str,
        passkey: &Secret,
        at: DateTime<Utc>,
        checkout_request_id: &str,
    ) -> Result<Self, ParseError> {
        let timestamp = timestamp(at)?;
        Ok(Self {
            business_short_code: Text::from(shortcode),
            password: Secret::new(stk_password(shortcode, passkey.expose(), &timestamp)),
            timestamp: Text(timestamp),
            checkout_request_id: checkout_request_id.to_owned(),
        })
    }
}

/// The STK status query response. `ResponseCode` is about the query; `ResultCode` (a string
/// here) is about the payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StkQueryResponse {
    #[serde(rename = "ResponseCode")]
    pub response_code: Text,
    #[serde(rename = "ResponseDescription", default)]
    pub response_description: String,
    #[serde(rename = "MerchantRequestID", default)]
    pub merchant_request_id: String,
    #[serde(rename = "CheckoutRequestID")]
    pub checkout_request_id: String,
    #[serde(rename = "ResultCode", default, skip_serializing_if = "Option::is_none")]
    pub result_code: Option<Text>,
    #[serde(rename = "ResultDesc", default, skip_serializing_if = "Option::is_none")]
    pub result_desc: Option<String>,
}

impl StkQueryResponse {
    /// The payment's state: pending unless the query was accepted *and* carries a result code
    /// that says succeeded or failed. (A query for a payment still in progress is answered
    /// with an error body instead, which says nothing about the payment either.)
    pub fn to_report(&self) -> StatusReport {
        let accepted = self.response_code.as_str().trim() == "0";
        let status = match &self.result_code {
            Some(code) if accepted => status_of(code.as_str(), STK_FAILURE_CODES),
            _ => Status::Pending,
        };
        let mut report = StatusReport::new(status);
        report.request_reference = non_empty(&self.checkout_request_id);
        report.code = self.result_code.as_ref().map(ToString::to_string);
        report.description = self.result_desc.as_deref().and_then(non_empty);
        report
    }
}

// ---------------------------------------------------------------------------------------------
// C2B
// ---------------------------------------------------------------------------------------------

/// What Daraja does with a payment when our validation URL is unreachable or late.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum C2bDefaultAction {
    Completed,
    Cancelled,
}

/// The C2B register URL body (`POST /mpesa/c2b/v2/registerurl`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct C2bRegisterUrlRequest {
    #[serde(rename = "ShortCode")]
    pub short_code: Text,
    /// `Completed` or `Cancelled`, in exactly that (sentence) case.
    #[serde(rename = "ResponseType")]
    pub response_type: String,
    #[serde(rename = "ConfirmationURL")]
    pub confirmation_url: String,
    #[serde(rename = "ValidationURL")]
    pub validation_url: String,
}

impl C2bRegisterUrlRequest {
    /// The registration of our confirmation and validation URLs for a shortcode.
    pub fn new(
        short_code: &str,
        default_action: C2bDefaultAction,
        confirmation_url: &str,
        validation_url: &str,
    ) -> Self {
        let response_type = match default_action {
            C2bDefaultAction::Completed => "Completed",
            C2bDefaultAction::Cancelled => "Cancelled",
        };
        Self {
            short_code: Text::from(short_code),
            response_type: response_type.to_owned(),
            confirmation_url: confirmation_url.to_owned(),
            validation_url: validation_url.to_owned(),
        }
    }
}

/// The register URL (and sandbox simulate) response, with Daraja's misspelled
/// `OriginatorCoversationID`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct C2bRegisterUrlResponse {
    #[serde(rename = "OriginatorCoversationID", alias = "OriginatorConversationID", default)]
    pub originator_conversation_id: String,
    #[serde(rename = "ResponseCode")]
    pub response_code: Text,
    #[serde(rename = "ResponseDescription")]
    pub response_description: String,
}

/// The sandbox-only C2B simulate body (`POST /mpesa/c2b/v1/simulate`), for tests against the
/// sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct C2bSimulateRequest {
    #[serde(rename = "ShortCode")]
    pub short_code: Text,
    #[serde(rename = "CommandID")]
    pub command_id: String,
    #[serde(rename = "Amount")]
    pub amount: Text,
    #[serde(rename = "Msisdn")]
    pub msisdn: Text,
    #[serde(rename = "BillRefNumber", default, skip_serializing_if = "Option::is_none")]
    pub bill_ref_number: Option<String>,
}

/// The body Daraja posts to both the validation and the confirmation URL; which one it is is
/// known from the URL it arrived on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct C2bPayment {
    #[serde(rename = "TransactionType", default)]
    pub transaction_type: String,
    #[serde(rename = "TransID")]
    pub trans_id: String,
    #[serde(rename = "TransTime", default = "empty_text")]
    pub trans_time: Text,
    /// A string such as `"5.00"`.
    #[serde(rename = "TransAmount")]
    pub trans_amount: Text,
    #[serde(rename = "BusinessShortCode")]
    pub business_short_code: Text,
    #[serde(rename = "BillRefNumber", default)]
    pub bill_ref_number: String,
    #[serde(rename = "InvoiceNumber", default)]
    pub invoice_number: String,
    #[serde(rename = "OrgAccountBalance", default)]
    pub org_account_balance: String,
    #[serde(rename = "ThirdPartyTransID", default)]
    pub third_party_trans_id: String,
    /// Full in v1 (`254708374149`); masked in v2 (`"2547 ***** 126"`).
    #[serde(rename = "MSISDN", default = "empty_text")]
    pub msisdn: Text,
    #[serde(rename = "FirstName", default)]
    pub first_name: String,
    #[serde(rename = "MiddleName", default)]
    pub middle_name: String,
    #[serde(rename = "LastName", default)]
    pub last_name: String,
}

fn empty_text() -> Text {
    Text(String::new())
}

/// The payer's number as C2B reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msisdn {
    /// The whole number (C2B v1).
    Full(String),
    /// Masked by Daraja (C2B v2): good for display, useless for matching or paying back.
    Masked(String),
}

/// A payment a customer made to our shortcode, from a C2B confirmation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedPayment {
    /// Succeeded, with the amount, the receipt (`TransID`) and the customer's account number
    /// (`BillRefNumber`) as our reference.
    pub report: StatusReport,
    pub payer_msisdn: Option<Msisdn>,
    /// The payer's names as sent, joined with spaces.
    pub payer_name: String,
    pub business_short_code: String,
}

impl C2bPayment {
    /// The payer's number, full or masked.
    pub fn payer_msisdn(&self) -> Option<Msisdn> {
        let text = self.msisdn.as_str().trim();
        if text.is_empty() {
            None
        } else if text.bytes().all(|b| b.is_ascii_digit()) {
            Some(Msisdn::Full(text.to_owned()))
        } else {
            Some(Msisdn::Masked(text.to_owned()))
        }
    }

    /// Reads a confirmation as a received payment: a confirmation means the money moved.
    /// (A validation body is a question, not a payment: answer it with a
    /// [`C2bValidationReply`].)
    ///
    /// # Errors
    ///
    /// When `TransAmount` is not an amount of KES, or `TransID` is empty.
    pub fn to_received(&self) -> Result<ReceivedPayment, ParseError> {
        let receipt = non_empty(&self.trans_id)
            .ok_or_else(|| refuse("C2B confirmation without a TransID"))?;
        let mut report = StatusReport::new(Status::Succeeded);
        report.receipt = Some(receipt);
        report.our_reference = non_empty(&self.bill_ref_number);
        report.amount = Some(kes(&self.trans_amount)?);
        report.description = non_empty(&self.transaction_type);
        report.payer = non_empty(self.msisdn.as_str());
        report.payee = non_empty(self.business_short_code.as_str());
        let names = [&self.first_name, &self.middle_name, &self.last_name];
        let payer_name = names
            .iter()
            .map(|name| name.trim())
            .filter(|name| !name.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(ReceivedPayment {
            report,
            payer_msisdn: self.payer_msisdn(),
            payer_name,
            business_short_code: self.business_short_code.to_string(),
        })
    }
}

/// Why we refuse a C2B payment at validation (`C2B00011` to `C2B00016`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum C2bRejectReason {
    InvalidMsisdn,
    InvalidAccountNumber,
    InvalidAmount,
    InvalidKycDetails,
    InvalidShortcode,
    Other,
}

impl C2bRejectReason {
    /// Daraja's code for the reason.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidMsisdn => "C2B00011",
            Self::InvalidAccountNumber => "C2B00012",
            Self::InvalidAmount => "C2B00013",
            Self::InvalidKycDetails => "C2B00014",
            Self::InvalidShortcode => "C2B00015",
            Self::Other => "C2B00016",
        }
    }
}

/// Our reply to a C2B validation request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct C2bValidationReply {
    #[serde(rename = "ResultCode")]
    pub result_code: Text,
    #[serde(rename = "ResultDesc")]
    pub result_desc: String,
}

impl C2bValidationReply {
    /// `{"ResultCode":"0","ResultDesc":"Accepted"}`.
    pub fn accept() -> Self {
        Self { result_code: Text::from("0"), result_desc: "Accepted".to_owned() }
    }

    /// `{"ResultCode":"C2B000NN","ResultDesc":"Rejected"}`.
    pub fn reject(reason: C2bRejectReason) -> Self {
        Self { result_code: Text::from(reason.code()), result_desc: "Rejected".to_owned() }
    }

    /// Whether this reply lets the payment proceed.
    pub fn is_accept(&self) -> bool {
        self.result_code.as_str() == "0"
    }
}

/// The code of our acknowledgement of a callback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AckCode {
    /// C2B confirmations are acknowledged with the number `0`.
    Number(u32),
    /// The result callbacks are acknowledged with `"00000000"`.
    Text(String),
}

/// Our HTTP 200 reply to a callback. It only says we received it; we send it for duplicates
/// too, so that Daraja stops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackAck {
    #[serde(rename = "ResultCode")]
    pub result_code: AckCode,
    #[serde(rename = "ResultDesc")]
    pub result_desc: String,
}

impl CallbackAck {
    /// `{"ResultCode":0,"ResultDesc":"Accepted"}`, for a C2B confirmation.
    pub fn c2b() -> Self {
        Self { result_code: AckCode::Number(0), result_desc: "Accepted".to_owned() }
    }

    /// `{"ResultCode":"00000000","ResultDesc":"Accepted"}`, for STK, B2C, status, balance and
    /// reversal callbacks.
    pub fn result() -> Self {
        Self {
            result_code: AckCode::Text("00000000".to_owned()),
            result_desc: "Accepted".to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// B2C v3
// ---------------------------------------------------------------------------------------------

/// The B2C command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum B2cCommand {
    SalaryPayment,
    BusinessPayment,
    PromotionPayment,
}

impl B2cCommand {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SalaryPayment => "SalaryPayment",
            Self::BusinessPayment => "BusinessPayment",
            Self::PromotionPayment => "PromotionPayment",
        }
    }
}

/// What a B2C payout asks for, in our terms; [`B2cRequest::new`] turns it into the wire body.
#[derive(Clone, Debug)]
pub struct B2cPayout<'a> {
    /// Our unique id for the payout: Daraja refuses a second request with it (500.002.1001),
    /// which makes a retry safe.
    pub originator_conversation_id: &'a str,
    pub initiator_name: &'a str,
    /// The initiator password, RSA-encrypted with Safaricom's certificate and base64-encoded.
    pub security_credential: &'a Secret,
    pub command: B2cCommand,
    /// Whole shillings.
    pub amount: &'a Money,
    /// Our B2C shortcode.
    pub party_a: &'a str,
    /// The customer, `2547XXXXXXXX`.
    pub party_b: &'a str,
    /// 2 to 100 characters.
    pub remarks: &'a str,
    pub queue_timeout_url: &'a str,
    pub result_url: &'a str,
    pub occasion: Option<&'a str>,
}

/// The B2C v3 body (`POST /mpesa/b2c/v3/paymentrequest`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct B2cRequest {
    #[serde(rename = "OriginatorConversationID")]
    pub originator_conversation_id: String,
    #[serde(rename = "InitiatorName")]
    pub initiator_name: String,
    #[serde(rename = "SecurityCredential")]
    pub security_credential: Secret,
    #[serde(rename = "CommandID")]
    pub command_id: String,
    #[serde(rename = "Amount")]
    pub amount: Text,
    #[serde(rename = "PartyA")]
    pub party_a: Text,
    #[serde(rename = "PartyB")]
    pub party_b: Text,
    #[serde(rename = "Remarks")]
    pub remarks: String,
    #[serde(rename = "QueueTimeOutURL")]
    pub queue_timeout_url: String,
    #[serde(rename = "ResultURL")]
    pub result_url: String,
    /// Misspelled in Daraja's v3 API (v1 wrote `Occasion`).
    #[serde(rename = "Occassion", alias = "Occasion", default)]
    pub occasion: String,
}

impl B2cRequest {
    /// Builds the body.
    ///
    /// # Errors
    ///
    /// An empty `OriginatorConversationID`, `Remarks` outside 2–100 characters, an amount that
    /// is not whole positive KES, or a `PartyB` that is not a 12-digit `254…` number.
    pub fn new(payout: &B2cPayout<'_>) -> Result<Self, ParseError> {
        if payout.originator_conversation_id.trim().is_empty() {
            return Err(refuse("a B2C payout needs our OriginatorConversationID"));
        }
        let remarks = at_most("Remarks", payout.remarks, 100)?;
        if remarks.chars().count() < 2 {
            return Err(refuse("Remarks is shorter than 2 characters"));
        }
        Ok(Self {
            originator_conversation_id: payout.originator_conversation_id.to_owned(),
            initiator_name: payout.initiator_name.to_owned(),
            security_credential: payout.security_credential.clone(),
            command_id: payout.command.as_str().to_owned(),
            amount: whole_shillings(payout.amount, 1, i64::MAX)?,
            party_a: Text::from(payout.party_a),
            party_b: msisdn("PartyB", payout.party_b)?,
            remarks,
            queue_timeout_url: payout.queue_timeout_url.to_owned(),
            result_url: payout.result_url.to_owned(),
            occasion: payout.occasion.unwrap_or_default().to_owned(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Result callbacks (B2C, B2B, transaction status, account balance, reversal)
// ---------------------------------------------------------------------------------------------

/// A result callback body: `{"Result":{…}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultEnvelope {
    #[serde(rename = "Result")]
    pub result: MpesaResult,
}

/// The result of a queued request, posted to its `ResultURL`. Which API it answers is known
/// from that URL, not from the body; a failed result has no `ResultParameters`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MpesaResult {
    #[serde(rename = "ResultType", default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<Text>,
    /// `0` on success; a number or a string such as `"R000002"` otherwise.
    #[serde(rename = "ResultCode")]
    pub result_code: Text,
    #[serde(rename = "ResultDesc", default)]
    pub result_desc: String,
    #[serde(rename = "OriginatorConversationID", default)]
    pub originator_conversation_id: String,
    #[serde(rename = "ConversationID", default)]
    pub conversation_id: String,
    #[serde(rename = "TransactionID", default)]
    pub transaction_id: String,
    #[serde(rename = "ResultParameters", default, skip_serializing_if = "Option::is_none")]
    pub result_parameters: Option<ResultParameters>,
    #[serde(rename = "ReferenceData", default, skip_serializing_if = "Option::is_none")]
    pub reference_data: Option<ReferenceData>,
}

/// The `{Key, Value}` results of a successful request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultParameters {
    #[serde(rename = "ResultParameter", default)]
    pub result_parameter: OneOrMany<KeyValue>,
}

/// What Daraja echoes back about the request (`QueueTimeoutURL`, `Occasion`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceData {
    #[serde(rename = "ReferenceItem", default)]
    pub reference_item: OneOrMany<KeyValue>,
}

/// Compares parameter keys without their spaces: older results write `"Conversation ID"`
/// for `ConversationID`.
fn same_key(sent: &str, wanted: &str) -> bool {
    sent.chars().filter(|c| !c.is_whitespace()).eq(wanted.chars())
}

impl MpesaResult {
    /// The parameters, in the order sent (empty for a failed result).
    pub fn parameters(&self) -> &[KeyValue] {
        self.result_parameters.as_ref().map_or(&[], |params| params.result_parameter.as_slice())
    }

    /// The first valued parameter with this key (spaces in the sent key ignored).
    pub fn parameter(&self, key: &str) -> Option<&Text> {
        self.parameters()
            .iter()
            .filter(|pair| same_key(&pair.key, key))
            .find_map(|pair| pair.value.as_ref())
    }

    fn parameter_text(&self, key: &str) -> Option<String> {
        self.parameter(key).and_then(|text| non_empty(text.as_str()))
    }

    fn base_report(&self, status: Status) -> StatusReport {
        let mut report = StatusReport::new(status);
        report.our_reference = non_empty(&self.originator_conversation_id);
        report.request_reference = non_empty(&self.conversation_id);
        report.code = Some(self.result_code.to_string());
        report.description = non_empty(&self.result_desc);
        report
    }

    /// Reads a B2C result: keyed by our `OriginatorConversationID`, with the receipt and
    /// amount when it succeeded.
    ///
    /// # Errors
    ///
    /// When `TransactionAmount` is not an amount of KES.
    pub fn to_b2c_report(&self) -> Result<StatusReport, ParseError> {
        let status = status_of(self.result_code.as_str(), B2C_FAILURE_CODES);
        let mut report = self.base_report(status);
        if status == Status::Succeeded {
            // A failed result carries a TransactionID too, but no money moved under it.
            report.receipt = self
                .parameter_text("TransactionReceipt")
                .or_else(|| non_empty(&self.transaction_id));
        }
        report.amount = self.parameter("TransactionAmount").map(kes).transpose()?;
        report.payee = self.parameter_text("ReceiverPartyPublicName");
        Ok(report)
    }

    /// Reads a transaction status result as a report on the *queried* payment, whose
    /// references are in the parameters (the envelope's ids are the query's own).
    ///
    /// `ResultCode` `0` only means the query was answered: the payment succeeded when its
    /// `TransactionStatus` is `Completed`. A failed query (bad credentials, unknown id) says
    /// nothing about the payment, so it stays pending, as does any other status.
    ///
    /// # Errors
    ///
    /// When `Amount` is not an amount of KES.
    pub fn to_transaction_status_report(&self) -> Result<StatusReport, ParseError> {
        let answered = self.result_code.as_str().trim() == "0";
        let completed = self
            .parameter("TransactionStatus")
            .is_some_and(|status| status.as_str().trim().eq_ignore_ascii_case("completed"));
        let status = if answered && completed { Status::Succeeded } else { Status::Pending };
        let mut report = StatusReport::new(status);
        report.our_reference = self.parameter_text("OriginatorConversationID");
        report.request_reference = self.parameter_text("ConversationID");
        report.receipt = self.parameter_text("ReceiptNo");
        report.amount = self.parameter("Amount").map(kes).transpose()?;
        report.payer = self.parameter_text("DebitPartyName");
        report.payee = self.parameter_text("CreditPartyName");
        report.code = Some(self.result_code.to_string());
        report.description =
            self.parameter_text("TransactionStatus").or_else(|| non_empty(&self.result_desc));
        Ok(report)
    }

    /// Reads a reversal result: `0` reversed, `R000002` (invalid original) failed, anything
    /// else, including `R000001` (already reversed, see [`REVERSAL_FAILURE_CODES`]), pending.
    ///
    /// # Errors
    ///
    /// When `Amount` is not an amount of KES.
    pub fn to_reversal_report(&self) -> Result<StatusReport, ParseError> {
        let status = status_of(self.result_code.as_str(), REVERSAL_FAILURE_CODES);
        let mut report = self.base_report(status);
        if status == Status::Succeeded {
            report.receipt = non_empty(&self.transaction_id);
        }
        report.amount = self.parameter("Amount").map(kes).transpose()?;
        Ok(report)
    }

    /// The original transaction a reversal result is about, when it says.
    pub fn reversed_transaction_id(&self) -> Option<String> {
        self.parameter_text("OriginalTransactionID")
    }

    /// Reads an account balance result's `AccountBalance` parameter.
    ///
    /// # Errors
    ///
    /// When the result failed or lacks the parameter, or the text is not
    /// `Name|Currency|n|n|n|n` entries joined by `&`.
    pub fn account_balances(&self) -> Result<Vec<AccountBalance>, ParseError> {
        if self.result_code.as_str().trim() != "0" {
            return Err(refuse(format!(
                "account balance query failed: {} {}",
                self.result_code, self.result_desc
            )));
        }
        let text = self
            .parameter("AccountBalance")
            .ok_or_else(|| refuse("account balance result without AccountBalance"))?;
        parse_account_balances(text.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Account balance, transaction status and reversal requests
// ---------------------------------------------------------------------------------------------

/// One account of an organisation's balance.
///
/// The four amounts are read in the order third-party libraries name them (current,
/// available, reserved, uncleared); Daraja's docs do not name them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountBalance {
    /// `Working Account`, `Utility Account`, `Charges Paid Account`, …
    pub name: String,
    pub current: Money,
    pub available: Money,
    pub reserved: Money,
    pub uncleared: Money,
}

/// Parses `"Working Account|KES|700000.00|700000.00|0.00|0.00&Float Account|…"`.
///
/// # Errors
///
/// When an entry does not have six `|`-separated fields, or a currency or amount is invalid.
pub fn parse_account_balances(text: &str) -> Result<Vec<AccountBalance>, ParseError> {
    text.split('&')
        .map(|entry| {
            let fields: Vec<&str> = entry.split('|').map(str::trim).collect();
            let [name, currency, current, available, reserved, uncleared] = fields[..] else {
                return Err(refuse(format!("account balance entry {entry:?}")));
            };
            let currency = Currency::from_code(currency)?;
            let money = |text: &str| -> Result<Money, ParseError> {
                Ok(Money::new(currency, crate::wire::decimal(text)?)?)
            };
            Ok(AccountBalance {
                name: name.to_owned(),
                current: money(current)?,
                available: money(available)?,
                reserved: money(reserved)?,
                uncleared: money(uncleared)?,
            })
        })
        .collect()
}

/// The account balance query body (`POST /mpesa/accountbalance/v1/query`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalanceRequest {
    #[serde(rename = "Initiator")]
    pub initiator: String,
    #[serde(rename = "SecurityCredential")]
    pub security_credential: Secret,
    /// `AccountBalance`.
    #[serde(rename = "CommandID")]
    pub command_id: String,
    #[serde(rename = "PartyA")]
    pub party_a: Text,
    /// `4` for an organisation shortcode.
    #[serde(rename = "IdentifierType")]
    pub identifier_type: Text,
    #[serde(rename = "Remarks")]
    pub remarks: String,
    #[serde(rename = "QueueTimeOutURL")]
    pub queue_timeout_url: String,
    #[serde(rename = "ResultURL")]
    pub result_url: String,
}

/// The transaction status query body (`POST /mpesa/transactionstatus/v1/query`).
///
/// Daraja's portal sample spells two fields `"Command ID"` and `"Transaction ID"`; older
/// samples and every other API write `CommandID`/`TransactionID`. Both are read; we send the
/// unspaced spelling (which one Daraja accepts is unconfirmed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionStatusRequest {
    #[serde(rename = "Initiator")]
    pub initiator: String,
    #[serde(rename = "SecurityCredential")]
    pub security_credential: Secret,
    /// `TransactionStatusQuery`.
    #[serde(rename = "CommandID", alias = "Command ID")]
    pub command_id: String,
    /// The receipt to query; a B2C payment can be queried by `OriginalConversationID` instead.
    #[serde(
        rename = "TransactionID",
        alias = "Transaction ID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub transaction_id: Option<String>,
    #[serde(rename = "OriginalConversationID", default, skip_serializing_if = "Option::is_none")]
    pub original_conversation_id: Option<String>,
    #[serde(rename = "PartyA")]
    pub party_a: Text,
    #[serde(rename = "IdentifierType")]
    pub identifier_type: Text,
    #[serde(rename = "ResultURL")]
    pub result_url: String,
    #[serde(rename = "QueueTimeOutURL")]
    pub queue_timeout_url: String,
    #[serde(rename = "Remarks")]
    pub remarks: String,
    #[serde(rename = "Occasion", default)]
    pub occasion: String,
}

/// The reversal body (`POST /mpesa/reversal/v1/request`), with Daraja's misspelled
/// `RecieverIdentifierType`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReversalRequest {
    #[serde(rename = "Initiator")]
    pub initiator: String,
    #[serde(rename = "SecurityCredential")]
    pub security_credential: Secret,
    /// `TransactionReversal`.
    #[serde(rename = "CommandID")]
    pub command_id: String,
    /// The receipt of the transaction to reverse.
    #[serde(rename = "TransactionID")]
    pub transaction_id: String,
    #[serde(rename = "Amount")]
    pub amount: Text,
    #[serde(rename = "ReceiverParty")]
    pub receiver_party: Text,
    /// `11` for an organisation.
    #[serde(rename = "RecieverIdentifierType")]
    pub receiver_identifier_type: Text,
    #[serde(rename = "ResultURL")]
    pub result_url: String,
    #[serde(rename = "QueueTimeOutURL")]
    pub queue_timeout_url: String,
    #[serde(rename = "Remarks")]
    pub remarks: String,
    #[serde(rename = "Occasion", default, skip_serializing_if = "Option::is_none")]
    pub occasion: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Pull transactions (C2B reconciliation)
// ---------------------------------------------------------------------------------------------

/// The pull register body (`POST /pulltransactions/v1/register`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRegisterRequest {
    #[serde(rename = "ShortCode")]
    pub short_code: Text,
    /// `Pull`.
    #[serde(rename = "RequestType")]
    pub request_type: String,
    #[serde(rename = "NominatedNumber")]
    pub nominated_number: Text,
    #[serde(rename = "CallBackURL")]
    pub callback_url: String,
}

/// The pull register response: `1000` registered, `1001` already registered. Older responses
/// spell the fields with spaces (`"Response Status"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRegisterResponse {
    #[serde(rename = "ResponseRefID", default)]
    pub response_ref_id: String,
    #[serde(rename = "ResponseStatus", alias = "Response Status")]
    pub response_status: Text,
    #[serde(rename = "ShortCode", default = "empty_text")]
    pub short_code: Text,
    #[serde(rename = "ResponseDescription", alias = "Response Description", default)]
    pub response_description: String,
}

impl PullRegisterResponse {
    /// Whether the shortcode is registered now (newly, or from before).
    pub fn is_registered(&self) -> bool {
        matches!(self.response_status.as_str().trim(), "1000" | "1001")
    }
}

/// The pull query body (`POST /pulltransactions/v1/query`); it covers the last 48 hours only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullQueryRequest {
    #[serde(rename = "ShortCode")]
    pub short_code: Text,
    /// `2020-08-04 8:36:00`.
    #[serde(rename = "StartDate")]
    pub start_date: String,
    #[serde(rename = "EndDate")]
    pub end_date: String,
    #[serde(rename = "OffSetValue")]
    pub offset_value: Text,
}

/// The pull query response; `Response` is an array of arrays of transactions, and code
/// `1001` means there were none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullQueryResponse {
    #[serde(rename = "ResponseRefID", default)]
    pub response_ref_id: String,
    #[serde(rename = "ResponseCode")]
    pub response_code: Text,
    #[serde(rename = "ResponseMessage", default)]
    pub response_message: String,
    #[serde(rename = "Response", default)]
    pub response: Vec<Vec<PullTransaction>>,
}

impl PullQueryResponse {
    /// The transactions, flattened out of Daraja's nested array.
    pub fn transactions(&self) -> impl Iterator<Item = &PullTransaction> {
        self.response.iter().flatten()
    }
}

/// One transaction of a pull query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullTransaction {
    #[serde(rename = "transactionId")]
    pub transaction_id: String,
    /// `2020-08-05T10:13:00Z`.
    #[serde(rename = "trxDate", default)]
    pub trx_date: String,
    #[serde(rename = "msisdn", default = "empty_text")]
    pub msisdn: Text,
    #[serde(rename = "sender", default)]
    pub sender: String,
    /// `c2b-pay-bill-debit`, …
    #[serde(rename = "transactiontype", default)]
    pub transaction_type: String,
    #[serde(rename = "billreference", default)]
    pub bill_reference: String,
    #[serde(rename = "amount")]
    pub amount: Text,
    #[serde(rename = "organizationname", default)]
    pub organization_name: String,
}

impl PullTransaction {
    /// The amount, in KES.
    ///
    /// # Errors
    ///
    /// When `amount` is not an amount of KES.
    pub fn amount(&self) -> Result<Money, ParseError> {
        kes(&self.amount)
    }
}

// ---------------------------------------------------------------------------------------------
// Callback entry point
// ---------------------------------------------------------------------------------------------

/// A callback body, by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Callback {
    /// An STK push outcome (`{"Body":{"stkCallback":…}}`).
    Stk(StkCallback),
    /// A queued request's result (`{"Result":…}`): B2C, transaction status, account balance,
    /// reversal or B2B, told apart by the URL it arrived on.
    Result(MpesaResult),
    /// A C2B validation or confirmation, told apart by the URL it arrived on.
    C2b(C2bPayment),
}

/// Just enough of a body to tell the callback kinds apart.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "Body")]
    body: Option<IgnoredAny>,
    #[serde(rename = "Result")]
    result: Option<IgnoredAny>,
    #[serde(rename = "TransID")]
    trans_id: Option<IgnoredAny>,
}

/// Identifies and reads a callback body.
///
/// # Errors
///
/// Malformed JSON, a body that is none of the kinds (or looks like more than one), or one
/// that is missing a field its kind requires.
pub fn callback(body: &str) -> Result<Callback, ParseError> {
    let probe: Probe = serde_json::from_str(body)?;
    match (probe.body.is_some(), probe.result.is_some(), probe.trans_id.is_some()) {
        (true, false, false) => {
            Ok(Callback::Stk(serde_json::from_str::<StkCallbackEnvelope>(body)?.body.stk_callback))
        }
        (false, true, false) => {
            Ok(Callback::Result(serde_json::from_str::<ResultEnvelope>(body)?.result))
        }
        (false, false, true) => Ok(Callback::C2b(serde_json::from_str(body)?)),
        _ => Err(refuse("not an M-Pesa STK, result or C2B callback")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn kes_money(text: &str) -> Money {
        Money::parse(Currency::from_code("KES").unwrap(), text).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    const SANDBOX_PASSKEY: &str =
        "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";

    static SANDBOX_SECRET: std::sync::LazyLock<Secret> =
        std::sync::LazyLock::new(|| Secret::new(SANDBOX_PASSKEY));

    fn push<'a>(amount: &'a Money, reference: &'a str, desc: &'a str) -> StkPush<'a> {
        StkPush {
            shortcode: "174379",
            passkey: &SANDBOX_SECRET,
            at: at("2021-06-28T06:24:08Z"),
            transaction_type: StkTransactionType::CustomerPayBillOnline,
            amount,
            phone_number: "254722111111",
            party_b: "174379",
            callback_url: "https://example.com/cb",
            account_reference: reference,
            transaction_desc: desc,
        }
    }

    #[test]
    fn stk_password_and_timestamp_match_the_portal_sample() {
        // The portal sample's password is the sandbox shortcode, passkey and timestamp.
        let stamp = timestamp(at("2021-06-28T06:24:08Z")).unwrap();
        assert_eq!(stamp, "20210628092408", "Daraja's clock is East Africa Time");
        assert_eq!(
            stk_password("174379", SANDBOX_PASSKEY, &stamp),
            "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQyYzkxOTIwMjEwNjI4MDkyNDA4"
        );
    }

    #[test]
    fn stk_push_builds_the_wire_body() {
        let amount = kes_money("1.00");
        let request = StkPushRequest::new(&push(&amount, "accountref", "txndesc")).unwrap();
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["Amount"], "1");
        assert_eq!(json["Timestamp"], "20210628092408");
        assert_eq!(json["PartyA"], "254722111111");
        assert_eq!(json["PhoneNumber"], "254722111111");
        assert_eq!(json["TransactionType"], "CustomerPayBillOnline");
        assert_eq!(json["CallBackURL"], "https://example.com/cb");
        assert_eq!(json["AccountReference"], "accountref");
    }

    #[test]
    fn stk_push_refuses_long_references_and_bad_amounts() {
        let amount = kes_money("1");
        assert!(StkPushRequest::new(&push(&amount, "123456789012", "1234567890123")).is_ok());
        let long_reference = StkPushRequest::new(&push(&amount, "1234567890123", "d"));
        assert!(long_reference.unwrap_err().to_string().contains("AccountReference"));
        let long_desc = StkPushRequest::new(&push(&amount, "r", "12345678901234"));
        assert!(long_desc.unwrap_err().to_string().contains("TransactionDesc"));
        // Characters count, not bytes.
        assert!(StkPushRequest::new(&push(&amount, "ñññññññññññ", "d")).is_ok());
        for bad in ["1.50", "0", "250001"] {
            let amount = kes_money(bad);
            assert!(StkPushRequest::new(&push(&amount, "r", "d")).is_err(), "{bad}");
        }
        let usd = Money::parse(Currency::from_code("USD").unwrap(), "1").unwrap();
        assert!(StkPushRequest::new(&push(&usd, "r", "d")).is_err());
        let mut bad_phone = push(&amount, "r", "d");
        bad_phone.phone_number = "+254722111111";
        assert!(StkPushRequest::new(&bad_phone).is_err());
    }

    #[test]
    fn b2c_request_validates_and_spells_occassion() {
        let amount = kes_money("10");
        let credential = Secret::new("cred");
        let payout = B2cPayout {
            originator_conversation_id: "ours-1",
            initiator_name: "testapi",
            security_credential: &credential,
            command: B2cCommand::BusinessPayment,
            amount: &amount,
            party_a: "600992",
            party_b: "254705912645",
            remarks: "remarked",
            queue_timeout_url: "https://example.com/q",
            result_url: "https://example.com/r",
            occasion: Some("ChristmasPay"),
        };
        let json = serde_json::to_value(B2cRequest::new(&payout).unwrap()).unwrap();
        assert_eq!(json["Occassion"], "ChristmasPay");
        assert_eq!(json["OriginatorConversationID"], "ours-1");
        assert_eq!(json["Amount"], "10");
        assert!(B2cRequest::new(&B2cPayout { remarks: "x", ..payout.clone() }).is_err());
        let long = "x".repeat(101);
        assert!(B2cRequest::new(&B2cPayout { remarks: &long, ..payout.clone() }).is_err());
        assert!(B2cRequest::new(&B2cPayout { party_b: "0705912645", ..payout.clone() }).is_err());
        assert!(B2cRequest::new(&B2cPayout { originator_conversation_id: " ", ..payout }).is_err());
    }

    #[test]
    fn status_mapping_defaults_to_pending() {
        assert_eq!(status_of("0", STK_FAILURE_CODES), Status::Succeeded);
        assert_eq!(status_of(" 0 ", STK_FAILURE_CODES), Status::Succeeded);
        for code in STK_FAILURE_CODES {
            assert_eq!(status_of(code, STK_FAILURE_CODES), Status::Failed, "{code}");
        }
        assert_eq!(status_of("SFC_IC0003", B2C_FAILURE_CODES), Status::Failed);
        assert_eq!(status_of("2040", B2C_FAILURE_CODES), Status::Failed);
        assert_eq!(status_of("9999", STK_FAILURE_CODES), Status::Pending);
        assert_eq!(status_of("4999", B2C_FAILURE_CODES), Status::Pending);
        assert_eq!(status_of("", STK_FAILURE_CODES), Status::Pending);
        assert_eq!(status_of("R000002", REVERSAL_FAILURE_CODES), Status::Failed);
        assert_eq!(status_of("R000001", REVERSAL_FAILURE_CODES), Status::Pending);
    }

    #[test]
    fn stk_query_is_pending_unless_the_query_was_accepted() {
        let read = |json: &str| serde_json::from_str::<StkQueryResponse>(json).unwrap().to_report();
        let refused = r#"{"ResponseCode":"1","CheckoutRequestID":"ws_1","ResultCode":"0"}"#;
        assert_eq!(read(refused).status, Status::Pending);
        let no_result = r#"{"ResponseCode":"0","CheckoutRequestID":"ws_1"}"#;
        assert_eq!(read(no_result).status, Status::Pending);
        let paid = r#"{"ResponseCode":"0","CheckoutRequestID":"ws_1","ResultCode":"0"}"#;
        assert_eq!(read(paid).status, Status::Succeeded);
        let unknown = r#"{"ResponseCode":"0","CheckoutRequestID":"ws_1","ResultCode":"4242"}"#;
        assert_eq!(read(unknown).status, Status::Pending);
    }

    #[test]
    fn unknown_result_codes_are_pending() {
        let body = r#"{"Result":{"ResultType":0,"ResultCode":"X123","ResultDesc":"new",
            "OriginatorConversationID":"ours","ConversationID":"AG_1","TransactionID":"T"}}"#;
        let Callback::Result(result) = callback(body).unwrap() else { panic!("not a result") };
        assert_eq!(result.to_b2c_report().unwrap().status, Status::Pending);
        assert_eq!(result.to_reversal_report().unwrap().status, Status::Pending);
        assert_eq!(result.to_transaction_status_report().unwrap().status, Status::Pending);
    }

    #[test]
    fn transaction_status_needs_completed() {
        let body = r#"{"Result":{"ResultCode":0,"ResultDesc":"ok","ConversationID":"AG_1",
            "ResultParameters":{"ResultParameter":{"Key":"TransactionStatus","Value":"Pending"}}}}"#;
        let Callback::Result(result) = callback(body).unwrap() else { panic!("not a result") };
        assert_eq!(result.parameters().len(), 1, "a single parameter object is read");
        assert_eq!(result.to_transaction_status_report().unwrap().status, Status::Pending);
    }

    #[test]
    fn acks_and_replies_serialise_as_daraja_expects() {
        assert_eq!(json(&CallbackAck::c2b()), r#"{"ResultCode":0,"ResultDesc":"Accepted"}"#);
        assert_eq!(
            json(&CallbackAck::result()),
            r#"{"ResultCode":"00000000","ResultDesc":"Accepted"}"#
        );
        assert_eq!(
            json(&C2bValidationReply::accept()),
            r#"{"ResultCode":"0","ResultDesc":"Accepted"}"#
        );
        assert_eq!(
            json(&C2bValidationReply::reject(C2bRejectReason::InvalidAmount)),
            r#"{"ResultCode":"C2B00013","ResultDesc":"Rejected"}"#
        );
    }

    fn json<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).unwrap()
    }

    #[test]
    fn account_balances_refuse_malformed_entries() {
        assert!(parse_account_balances("Working Account|KES|1.00|1.00|0.00").is_err());
        assert!(parse_account_balances("Working Account|XXX|1.00|1.00|0.00|0.00").is_err());
        assert!(parse_account_balances("Working Account|KES|1.001|1.00|0.00|0.00").is_err());
        let one = parse_account_balances("Working Account|KES|1.00|2.00|0.00|0.00").unwrap();
        assert_eq!(one[0].available, kes_money("2.00"));
    }

    #[test]
    fn callback_refuses_other_bodies() {
        assert!(matches!(callback("{}"), Err(ParseError::Unexpected(_))));
        assert!(matches!(callback(r#"{"foo":1}"#), Err(ParseError::Unexpected(_))));
        assert!(matches!(callback("[1]"), Err(ParseError::Json(_))));
        assert!(matches!(callback("not json"), Err(ParseError::Json(_))));
        let both = r#"{"Body":{},"Result":{}}"#;
        assert!(matches!(callback(both), Err(ParseError::Unexpected(_))));
        // The right marker but not the right shape.
        assert!(matches!(callback(r#"{"Body":{"x":1}}"#), Err(ParseError::Json(_))));
    }
}
