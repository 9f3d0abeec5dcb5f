//! MTN MoMo Open API: wire types and pure transformers for collections (request to pay) and
//! disbursements (transfer, deposit, refund).
//!
//! The flow this module serves: we choose an `X-Reference-Id` (a UUID v4, our idempotency key)
//! and an `externalId` (our payment reference, unique by our own rule since MTN does not require
//! it), persist both, then `POST` the request. MTN answers `202 Accepted` with no body. The
//! outcome arrives once, unsigned, at `X-Callback-Url` (with no retry), and is always available
//! by `GET`-ting the resource by its reference id, which answers `200` even for a failed payment.
//!
//! Everything here is pure: requests become bodies and headers as data, response and callback
//! bodies become [`StatusReport`]s, and error replies are classified into what the caller should
//! do next ([`ErrorKind`]). Amounts, ids and phone numbers arrive as JSON strings in one version
//! and numbers in another, so they are read as [`Text`].

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{Currency, Money};
use crate::wire::Text;
use crate::{ParseError, Status, StatusReport};

/// The longest `payerMessage` or `payeeNote` MoMo accepts; a longer one is answered with 400.
pub const NOTE_LENGTH_MAX: usize = 160;

// ---------------------------------------------------------------------------------------------
// Secrets, credentials and headers
// ---------------------------------------------------------------------------------------------

pub use crate::Secret;

/// The MoMo product a call goes to; each has its own subscription key, API user and token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Product {
    /// Collections: request to pay (the customer pays us).
    Collection,
    /// Disbursements: transfer, deposit and refund (we pay the customer).
    Disbursement,
}

impl Product {
    /// The product's path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Collection => "collection",
            Self::Disbursement => "disbursement",
        }
    }

    /// The path that issues an access token (`POST`, Basic authentication).
    pub fn token_path(self) -> String {
        format!("/{}/token/", self.as_str())
    }

    /// The path that starts a payment (`POST`): request to pay, or transfer.
    pub fn payment_path(self) -> &'static str {
        match self {
            Self::Collection => "/collection/v1_0/requesttopay",
            Self::Disbursement => "/disbursement/v1_0/transfer",
        }
    }

    /// The path of a payment's status resource (`GET`), named by its `X-Reference-Id`.
    pub fn status_path(self, reference_id: &ReferenceId) -> String {
        format!("{}/{}", self.payment_path(), reference_id)
    }
}

/// The `X-Reference-Id` of one payment request: a UUID v4 we generate, persist before sending,
/// and reuse on every retry of the same request. MoMo makes it the resource id and answers a
/// second `POST` with it by 409, which is what makes a retry safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReferenceId(Uuid);

impl ReferenceId {
    /// A fresh random reference id.
    pub fn new_v4() -> Self {
        Self(Uuid::new_v4())
    }

    /// A stored reference id read back.
    ///
    /// # Errors
    ///
    /// When the text is not a UUID, or is a UUID of another version (MoMo answers 400 to
    /// anything but v4).
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let uuid = Uuid::parse_str(text)
            .map_err(|error| ParseError::Unexpected(format!("reference id {text:?}: {error}")))?;
        Self::try_from(uuid)
    }

    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl TryFrom<Uuid> for ReferenceId {
    type Error = ParseError;

    fn try_from(uuid: Uuid) -> Result<Self, Self::Error> {
        if uuid.get_version_num() == 4 {
            Ok(Self(uuid))
        } else {
            Err(ParseError::Unexpected(format!("reference id {uuid} is not a UUID v4")))
        }
    }
}

impl fmt::Display for ReferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// What every call to one MoMo product needs: the environment and the subscription key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// `X-Target-Environment`: `sandbox`, or the production environment MTN assigned
    /// (`mtnuganda`, `mtnghana`, …).
    pub target_environment: String,
    /// `Ocp-Apim-Subscription-Key`, one per product.
    pub subscription_key: Secret,
}

/// Header name/value pairs, in the order they are listed.
pub type Headers = Vec<(&'static str, String)>;

impl Credentials {
    /// Headers for `POST /{product}/token/`: Basic `apiUser:apiKey` and the subscription key.
    pub fn token_headers(&self, api_user: &str, api_key: &Secret) -> Headers {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{api_user}:{}", api_key.expose()));
        vec![
            ("Authorization", format!("Basic {basic}")),
            ("Ocp-Apim-Subscription-Key", self.subscription_key.expose().to_owned()),
        ]
    }

    /// Headers for starting a payment. `callback_url` must be HTTPS on the host registered for
    /// the API user, or MoMo refuses the request (`INVALID_CALLBACK_URL_HOST`).
    pub fn payment_headers(
        &self,
        token: &Secret,
        reference_id: &ReferenceId,
        callback_url: Option<&str>,
    ) -> Headers {
        let mut headers = vec![
            ("Authorization", format!("Bearer {}", token.expose())),
            ("X-Reference-Id", reference_id.to_string()),
            ("X-Target-Environment", self.target_environment.clone()),
        ];
        if let Some(url) = callback_url {
            headers.push(("X-Callback-Url", url.to_owned()));
        }
        headers.push(("Ocp-Apim-Subscription-Key", self.subscription_key.expose().to_owned()));
        headers.push(("Content-Type", "application/json".to_owned()));
        headers
    }

    /// Headers for a status query or a balance query.
    pub fn query_headers(&self, token: &Secret) -> Headers {
        vec![
            ("Authorization", format!("Bearer {}", token.expose())),
            ("X-Target-Environment", self.target_environment.clone()),
            ("Ocp-Apim-Subscription-Key", self.subscription_key.expose().to_owned()),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// Token
// ---------------------------------------------------------------------------------------------

/// The reply to `POST /{product}/token/`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TokenResponse {
    /// The bearer token (redacted in `Debug`).
    pub access_token: Secret,
    /// Lifetime in seconds, sent as a number by some versions and a string by others.
    pub expires_in: Text,
    /// `access_token` (the SDK mock omits it).
    #[serde(default)]
    pub token_type: Option<String>,
}

impl TokenResponse {
    /// The token's lifetime in whole seconds.
    ///
    /// # Errors
    ///
    /// When `expires_in` is not a whole number of seconds.
    pub fn expires_in_seconds(&self) -> Result<u64, ParseError> {
        self.expires_in.as_str().trim().parse().map_err(|_| {
            ParseError::Unexpected(format!("expires_in {:?} is not whole seconds", self.expires_in))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Payment requests
// ---------------------------------------------------------------------------------------------

/// How a party (payer or payee) is identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PartyIdType {
    /// A phone number in international form without `+` (`256772123456`).
    Msisdn,
    /// An e-mail address.
    Email,
    /// A merchant or organisation code.
    PartyCode,
}

/// The payer of a request to pay or the payee of a transfer, as we send it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    pub party_id_type: PartyIdType,
    pub party_id: String,
}

impl Party {
    /// A party identified by phone number: digits only, country code first, no `+`.
    ///
    /// # Errors
    ///
    /// When the number is empty or has anything but digits.
    pub fn msisdn(number: &str) -> Result<Self, ParseError> {
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::Unexpected(format!(
                "MSISDN {number:?} must be digits only, country code first"
            )));
        }
        Ok(Self { party_id_type: PartyIdType::Msisdn, party_id: number.to_owned() })
    }
}

/// `POST /collection/v1_0/requesttopay`: ask a customer to pay us.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestToPay {
    /// A decimal string in major units (`"100"` UGX, `"1.50"` EUR).
    pub amount: String,
    pub currency: String,
    /// Our payment reference. MoMo does not require it to be unique; we do, because transfer
    /// callbacks carry no reference id and are matched on this alone.
    pub external_id: String,
    pub payer: Party,
    /// Shown to the payer.
    pub payer_message: String,
    /// Shown on our side's statement.
    pub payee_note: String,
}

/// `POST /disbursement/v1_0/transfer`: pay a customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    /// A decimal string in major units (`"100"` UGX, `"1.50"` EUR).
    pub amount: String,
    pub currency: String,
    /// Our payment reference; see [`RequestToPay::external_id`].
    pub external_id: String,
    pub payee: Party,
    /// Shown on our side's statement.
    pub payer_message: String,
    /// Shown to the payee.
    pub payee_note: String,
}

/// The fields a request to pay and a transfer share, checked once.
struct Checked {
    amount: String,
    currency: String,
    external_id: String,
    payer_message: String,
    payee_note: String,
}

/// Checks the shared fields against what MoMo is documented to refuse with 400, so that a
/// refusal happens here, before a reference id is spent on a request that cannot succeed.
fn checked(
    amount: &Money,
    external_id: &str,
    payer_message: &str,
    payee_note: &str,
) -> Result<Checked, ParseError> {
    if !amount.is_positive() {
        return Err(ParseError::Unexpected(format!("amount {amount} is not positive")));
    }
    if external_id.trim().is_empty() {
        return Err(ParseError::Unexpected("externalId is empty".to_owned()));
    }
    check_note("payerMessage", payer_message)?;
    check_note("payeeNote", payee_note)?;
    Ok(Checked {
        // `Money` holds the amount at the currency's scale, so this is `100` for UGX and
        // `1.50` for EUR: a plain decimal in major units, which is what MoMo reads.
        amount: amount.amount().to_string(),
        currency: amount.currency().code().to_owned(),
        external_id: external_id.to_owned(),
        payer_message: payer_message.to_owned(),
        payee_note: payee_note.to_owned(),
    })
}

/// MoMo answers 400 to a message or note longer than 160 characters or holding an apostrophe.
fn check_note(field: &str, text: &str) -> Result<(), ParseError> {
    let length = text.chars().count();
    if length > NOTE_LENGTH_MAX {
        return Err(ParseError::Unexpected(format!(
            "{field} has {length} characters; MoMo accepts at most {NOTE_LENGTH_MAX}"
        )));
    }
    if text.contains('\'') {
        return Err(ParseError::Unexpected(format!("{field} contains an apostrophe")));
    }
    Ok(())
}

impl RequestToPay {
    /// A request for `amount` from `payer`.
    ///
    /// # Errors
    ///
    /// A non-positive amount, an empty external id, or a message or note that MoMo would refuse
    /// (over [`NOTE_LENGTH_MAX`] characters, or holding an apostrophe).
    pub fn new(
        amount: &Money,
        external_id: &str,
        payer: Party,
        payer_message: &str,
        payee_note: &str,
    ) -> Result<Self, ParseError> {
        let fields = checked(amount, external_id, payer_message, payee_note)?;
        Ok(Self {
            amount: fields.amount,
            currency: fields.currency,
            external_id: fields.external_id,
            payer,
            payer_message: fields.payer_message,
            payee_note: fields.payee_note,
        })
    }
}

impl Transfer {
    /// A payment of `amount` to `payee`.
    ///
    /// # Errors
    ///
    /// As for [`RequestToPay::new`].
    pub fn new(
        amount: &Money,
        external_id: &str,
        payee: Party,
        payer_message: &str,
        payee_note: &str,
    ) -> Result<Self, ParseError> {
        let fields = checked(amount, external_id, payer_message, payee_note)?;
        Ok(Self {
            amount: fields.amount,
            currency: fields.currency,
            external_id: fields.external_id,
            payee,
            payer_message: fields.payer_message,
            payee_note: fields.payee_note,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Status resources and callbacks
// ---------------------------------------------------------------------------------------------

/// A party as MoMo reports it. Kept loose: the id arrives as a string, an integer, or (in the
/// SDK's mocks) a float such as `4609274685.0`, and is kept exactly as sent.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedParty {
    #[serde(default)]
    pub party_id_type: Option<String>,
    #[serde(default)]
    pub party_id: Option<Text>,
}

impl ReportedParty {
    /// The party's id, when it has a non-empty one.
    pub fn id(&self) -> Option<String> {
        self.party_id.as_ref().map(|id| id.as_str().trim().to_owned()).filter(|id| !id.is_empty())
    }
}

/// Why a payment failed: a bare code in most versions, `{code, message}` in others.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Reason {
    Code(String),
    Detail {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
}

impl Reason {
    /// The reason's code, such as `NOT_ENOUGH_FUNDS`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Code(code) => Some(code),
            Self::Detail { code, .. } => code.as_deref(),
        }
    }

    /// The reason's text, when the version sends one.
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Code(_) => None,
            Self::Detail { message, .. } => message.as_deref(),
        }
    }
}

/// A payment's status resource: the reply to `GET …/requesttopay/{referenceId}`,
/// `…/transfer/{referenceId}`, `…/deposit/{referenceId}` and `…/refund/{referenceId}` (all one
/// shape, with `payer` for collections and `payee` for disbursements), and the body of the
/// callback MoMo sends to `X-Callback-Url`.
///
/// A `200` reply carries a failed payment too: only [`PaymentStatus::status`] says what
/// happened.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentStatus {
    /// Present in some callbacks; absent from status replies (it is in the URL) and from
    /// transfer callbacks.
    #[serde(default)]
    pub reference_id: Option<Text>,
    #[serde(default)]
    pub amount: Option<Text>,
    #[serde(default)]
    pub currency: Option<String>,
    /// MoMo's transaction id, present once the money moved.
    #[serde(default)]
    pub financial_transaction_id: Option<Text>,
    /// Our payment reference, as we sent it (the official example shows it as a number).
    #[serde(default)]
    pub external_id: Option<Text>,
    #[serde(default)]
    pub payer: Option<ReportedParty>,
    #[serde(default)]
    pub payee: Option<ReportedParty>,
    #[serde(default)]
    pub payer_message: Option<String>,
    #[serde(default)]
    pub payee_note: Option<String>,
    /// `PENDING`, `SUCCESSFUL` or `FAILED`, kept verbatim; see [`PaymentStatus::status`].
    #[serde(rename = "status")]
    pub status_text: String,
    /// Why it failed, on `FAILED`.
    #[serde(default)]
    pub reason: Option<Reason>,
}

impl PaymentStatus {
    /// Reads a status reply body.
    ///
    /// # Errors
    ///
    /// When the body is not JSON, or has no `status`.
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        Ok(serde_json::from_slice(body)?)
    }

    /// The status in our terms, pending by default: only `SUCCESSFUL` is a success and only
    /// `FAILED` a failure; `PENDING` and anything MoMo may add later (`CREATED`, `ONGOING`, …)
    /// are pending, to be asked again.
    pub fn status(&self) -> Status {
        match self.status_text.as_str() {
            "SUCCESSFUL" => Status::Succeeded,
            "FAILED" => Status::Failed,
            _ => Status::Pending,
        }
    }

    /// The failure reason, when one was sent.
    pub fn failure_reason(&self) -> Option<FailureReason> {
        self.reason.as_ref().and_then(Reason::code).map(FailureReason::from_code)
    }

    /// The reported amount, when both it and an ISO 4217 currency are present. A currency
    /// that is not ISO 4217 gives `None` rather than an error: the status still counts.
    ///
    /// # Errors
    ///
    /// When the currency is valid but the amount is not a plain decimal at its scale.
    pub fn money(&self) -> Result<Option<Money>, ParseError> {
        let (Some(amount), Some(currency)) = (&self.amount, &self.currency) else {
            return Ok(None);
        };
        let Ok(currency) = Currency::from_code(currency) else {
            return Ok(None);
        };
        Ok(Some(Money::new(currency, amount.decimal()?)?))
    }

    /// The report this status makes: status as in [`PaymentStatus::status`], our reference from
    /// `externalId`, the request reference from `referenceId` when the body carries it (a status
    /// reply does not: the caller knows it from the URL), the receipt from
    /// `financialTransactionId`, the code from the failure reason (or else the status as sent),
    /// and the amount.
    ///
    /// # Errors
    ///
    /// As for [`PaymentStatus::money`].
    pub fn to_report(&self) -> Result<StatusReport, ParseError> {
        let reason_code = self.reason.as_ref().and_then(Reason::code);
        Ok(StatusReport {
            status: self.status(),
            our_reference: self.external_id.as_ref().map(|id| id.0.clone()),
            request_reference: self.reference_id.as_ref().map(|id| id.0.clone()),
            receipt: self.financial_transaction_id.as_ref().map(|id| id.0.clone()),
            code: Some(reason_code.unwrap_or(&self.status_text).to_owned()),
            description: self.reason.as_ref().and_then(Reason::message).map(str::to_owned),
            amount: self.money()?,
            payer: self.payer.as_ref().and_then(ReportedParty::id),
            payee: self.payee.as_ref().and_then(ReportedParty::id),
        })
    }
}

/// Reads a callback body (sent by `PUT`, or `POST` in some versions) into a report.
///
/// MoMo sends a callback once, without retry and without a signature, so a callback is a hint:
/// the caller should confirm it with a status query before moving money, and poll when none
/// comes. Transfer callbacks may lack `referenceId`, so the report is matched on
/// `our_reference` (`externalId`) when `request_reference` is absent.
///
/// # Errors
///
/// When the body is not a status resource, carries neither `referenceId` nor `externalId`
/// (nothing to match it to), or has an unreadable amount.
pub fn parse_callback(body: &[u8]) -> Result<StatusReport, ParseError> {
    let report = PaymentStatus::parse(body)?.to_report()?;
    if report.our_reference.is_none() && report.request_reference.is_none() {
        return Err(ParseError::Unexpected(
            "callback carries neither referenceId nor externalId".to_owned(),
        ));
    }
    Ok(report)
}

/// A failure reason MoMo sends with `FAILED`.
///
/// Whatever the reason, a `FAILED` status is final: the request will not succeed later, and a
/// new attempt needs a new `X-Reference-Id`. The reason is for the customer and for support,
/// not for deciding whether the payment failed. (The sandbox yields each reason for a fixed
/// test MSISDN: `46733123450` `INTERNAL_PROCESSING_ERROR`, `…451` `APPROVAL_REJECTED`, `…452`
/// `EXPIRED`, `…455` `PAYER_NOT_FOUND`/`NOT_ENOUGH_FUNDS`, `…456`
/// `PAYEE_NOT_ALLOWED_TO_RECEIVE`/`PAYER_LIMIT_REACHED`, `…457` `NOT_ALLOWED`/`PAYEE_NOT_FOUND`,
/// `…458` `NOT_ALLOWED_TARGET_ENVIRONMENT`, `…459` `INVALID_CALLBACK_URL_HOST`, `…460`
/// `INVALID_CURRENCY`.)
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// A generic failure; MTN has said that older versions used it for insufficient funds.
    InternalProcessingError,
    /// The customer declined.
    ApprovalRejected,
    /// The customer did not approve in time.
    Expired,
    /// No such payer (an invalid MSISDN).
    PayerNotFound,
    /// The payer's balance is too low.
    NotEnoughFunds,
    /// The payee's account may not receive this payment.
    PayeeNotAllowedToReceive,
    /// The payer reached a transaction limit.
    PayerLimitReached,
    /// The operation is not allowed for this account or API user.
    NotAllowed,
    /// No such payee (an invalid MSISDN).
    PayeeNotFound,
    /// The API user may not use this target environment.
    NotAllowedTargetEnvironment,
    /// The callback URL's host is not the one registered for the API user.
    InvalidCallbackUrlHost,
    /// The currency does not match the environment (the sandbox takes EUR only).
    InvalidCurrency,
    /// MoMo was unavailable; the payment still failed.
    ServiceUnavailable,
    /// A code not in this list, kept verbatim.
    Other(String),
}

impl FailureReason {
    /// The reason for a code as MoMo sends it.
    pub fn from_code(code: &str) -> Self {
        match code {
            "INTERNAL_PROCESSING_ERROR" => Self::InternalProcessingError,
            "APPROVAL_REJECTED" => Self::ApprovalRejected,
            "EXPIRED" => Self::Expired,
            "PAYER_NOT_FOUND" => Self::PayerNotFound,
            "NOT_ENOUGH_FUNDS" => Self::NotEnoughFunds,
            "PAYEE_NOT_ALLOWED_TO_RECEIVE" => Self::PayeeNotAllowedToReceive,
            "PAYER_LIMIT_REACHED" => Self::PayerLimitReached,
            "NOT_ALLOWED" => Self::NotAllowed,
            "PAYEE_NOT_FOUND" => Self::PayeeNotFound,
            "NOT_ALLOWED_TARGET_ENVIRONMENT" => Self::NotAllowedTargetEnvironment,
            "INVALID_CALLBACK_URL_HOST" => Self::InvalidCallbackUrlHost,
            "INVALID_CURRENCY" => Self::InvalidCurrency,
            "SERVICE_UNAVAILABLE" => Self::ServiceUnavailable,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code as MoMo sends it.
    pub fn code(&self) -> &str {
        match self {
            Self::InternalProcessingError => "INTERNAL_PROCESSING_ERROR",
            Self::ApprovalRejected => "APPROVAL_REJECTED",
            Self::Expired => "EXPIRED",
            Self::PayerNotFound => "PAYER_NOT_FOUND",
            Self::NotEnoughFunds => "NOT_ENOUGH_FUNDS",
            Self::PayeeNotAllowedToReceive => "PAYEE_NOT_ALLOWED_TO_RECEIVE",
            Self::PayerLimitReached => "PAYER_LIMIT_REACHED",
            Self::NotAllowed => "NOT_ALLOWED",
            Self::PayeeNotFound => "PAYEE_NOT_FOUND",
            Self::NotAllowedTargetEnvironment => "NOT_ALLOWED_TARGET_ENVIRONMENT",
            Self::InvalidCallbackUrlHost => "INVALID_CALLBACK_URL_HOST",
            Self::InvalidCurrency => "INVALID_CURRENCY",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::Other(code) => code,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Balance
// ---------------------------------------------------------------------------------------------

/// The reply to `GET /{product}/v1_0/account/balance`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    pub available_balance: Text,
    pub currency: String,
}

impl Balance {
    /// Reads a balance reply body.
    ///
    /// # Errors
    ///
    /// When the body is not JSON or lacks a field.
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        Ok(serde_json::from_slice(body)?)
    }

    /// The available balance.
    ///
    /// # Errors
    ///
    /// When the currency is not ISO 4217 or the amount is not a plain decimal at its scale.
    pub fn to_money(&self) -> Result<Money, ParseError> {
        let currency = Currency::from_code(&self.currency)?;
        Ok(Money::new(currency, self.available_balance.decimal()?)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// An error reply body. Older versions send `{code, message}`; newer ones (and the SDK's mock)
/// send `{errorCategory, errorCode, errordescription, errorDateTime, errorParameters}`, with
/// `errordescription` in lower case.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error_category: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default, rename = "errordescription", alias = "errorDescription")]
    pub error_description: Option<String>,
    /// As sent (an RFC 3339 time in the mock); kept as text since nothing decides on it.
    #[serde(default)]
    pub error_date_time: Option<String>,
    #[serde(default)]
    pub error_parameters: Vec<ErrorParameter>,
}

/// One `{key, value}` of an error reply's `errorParameters`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ErrorParameter {
    pub key: String,
    pub value: Text,
}

impl ErrorBody {
    /// The error's code, from whichever shape was sent (`RESOURCE_ALREADY_EXIST`,
    /// `genericError`, …).
    pub fn code(&self) -> Option<&str> {
        self.error_code.as_deref().or(self.code.as_deref())
    }

    /// The error's text, from whichever shape was sent.
    pub fn description(&self) -> Option<&str> {
        self.error_description.as_deref().or(self.message.as_deref())
    }
}

/// What an error reply means for the payment, and so what the caller does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 409 `RESOURCE_ALREADY_EXIST`: a request with this `X-Reference-Id` was already accepted.
    /// Not a failure: query that request's status.
    Duplicate,
    /// 404 `RESOURCE_NOT_FOUND`: no request has this reference id, so the `POST` never got a
    /// 202 and the payment was not started.
    NotFound,
    /// 400, 401 or 403: MoMo refused the request outright (bad body or header, bad subscription
    /// key, caller not whitelisted). Nothing was started; sending it again will not help.
    Rejected,
    /// 5xx, a timeout, or anything else: the outcome is unknown. Query the status later; never
    /// send the payment again under a new reference id.
    Unknown,
}

/// An error reply from MoMo, classified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("momo replied {http_status} ({kind:?}): {}", self.code().unwrap_or("no error code"))]
pub struct MomoError {
    pub http_status: u16,
    pub kind: ErrorKind,
    /// The body, when it was one of the known error shapes.
    pub body: Option<ErrorBody>,
}

impl MomoError {
    /// The error code from the body, when there was one.
    pub fn code(&self) -> Option<&str> {
        self.body.as_ref().and_then(ErrorBody::code)
    }
}

/// Classifies a non-2xx reply by its HTTP status, and by its body's code where the status alone
/// does not say (a 409 or 404 code behind another status). An empty or unreadable body is
/// normal for 5xx and is not an error here. A timeout with no reply is [`ErrorKind::Unknown`]
/// without calling this.
pub fn classify(http_status: u16, body: &[u8]) -> MomoError {
    let body = serde_json::from_slice::<ErrorBody>(body).ok();
    let code = body.as_ref().and_then(ErrorBody::code);
    let kind = match (http_status, code) {
        (409, _) | (_, Some("RESOURCE_ALREADY_EXIST")) => ErrorKind::Duplicate,
        (404, _) | (_, Some("RESOURCE_NOT_FOUND")) => ErrorKind::NotFound,
        (400 | 401 | 403, _) => ErrorKind::Rejected,
        // 5xx, 408, 429 and anything undocumented: whether MoMo acted is not known.
        _ => ErrorKind::Unknown,
    };
    MomoError { http_status, kind, body }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use rust_decimal::Decimal;

    use super::*;

    fn money(code: &str, amount: &str) -> Money {
        Money::parse(Currency::from_code(code).unwrap(), amount).unwrap()
    }

    fn payer() -> Party {
        Party::msisdn("46733123450").unwrap()
    }

    #[test]
    fn request_to_pay_serializes_with_momo_field_names_and_a_string_amount() {
        let request =
            RequestToPay::new(&money("EUR", "1.5"), "pay-1", payer(), "Order 17", "Thanks")
                .unwrap();
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "amount": "1.50",
                "currency": "EUR",
                "externalId": "pay-1",
                "payer": {"partyIdType": "MSISDN", "partyId": "46733123450"},
                "payerMessage": "Order 17",
                "payeeNote": "Thanks",
            })
        );
    }

    #[test]
    fn amounts_are_decimal_strings_at_the_currency_scale() {
        let amount =
            |code, text| Transfer::new(&money(code, text), "x", payer(), "", "").unwrap().amount;
        assert_eq!(amount("UGX", "100"), "100");
        assert_eq!(amount("EUR", "100"), "100.00");
        assert_eq!(amount("EUR", "0.05"), "0.05");
        assert_eq!(amount("BHD", "1.5"), "1.500");
        let json = serde_json::to_value(
            Transfer::new(&money("UGX", "5000"), "x", payer(), "", "").unwrap(),
        )
        .unwrap();
        assert_eq!(json["amount"], "5000");
        assert_eq!(json["payee"]["partyIdType"], "MSISDN");
    }

    #[test]
    fn zero_amounts_and_empty_external_ids_are_refused() {
        let zero = Money::zero(Currency::from_code("UGX").unwrap());
        assert!(RequestToPay::new(&zero, "x", payer(), "", "").is_err());
        assert!(RequestToPay::new(&money("UGX", "1"), " ", payer(), "", "").is_err());
    }

    #[test]
    fn notes_over_160_characters_are_refused() {
        let amount = money("UGX", "100");
        let at_limit = "é".repeat(NOTE_LENGTH_MAX);
        let over = "a".repeat(NOTE_LENGTH_MAX + 1);
        // Characters are counted, not bytes: 160 two-byte characters are accepted.
        assert!(RequestToPay::new(&amount, "x", payer(), &at_limit, &at_limit).is_ok());
        let error = RequestToPay::new(&amount, "x", payer(), &over, "").unwrap_err();
        assert!(error.to_string().contains("payerMessage has 161 characters"), "{error}");
        let error = Transfer::new(&amount, "x", payer(), "", &over).unwrap_err();
        assert!(error.to_string().contains("payeeNote has 161 characters"), "{error}");
    }

    #[test]
    fn apostrophes_are_refused() {
        let amount = money("UGX", "100");
        let error = RequestToPay::new(&amount, "x", payer(), "Joe's shop", "").unwrap_err();
        assert!(error.to_string().contains("payerMessage contains an apostrophe"), "{error}");
        let error = Transfer::new(&amount, "x", payer(), "", "it's paid").unwrap_err();
        assert!(error.to_string().contains("payeeNote contains an apostrophe"), "{error}");
    }

    #[test]
    fn msisdns_are_digits_only() {
        assert!(Party::msisdn("+256772123456").is_err());
        assert!(Party::msisdn("").is_err());
        assert_eq!(Party::msisdn("256772123456").unwrap().party_id, "256772123456");
    }

    #[test]
    fn reference_ids_are_uuid_v4() {
        let id = ReferenceId::new_v4();
        assert_eq!(ReferenceId::parse(&id.to_string()).unwrap(), id);
        assert!(ReferenceId::parse(&Uuid::now_v7().to_string()).is_err());
        assert!(ReferenceId::parse("not-a-uuid").is_err());
    }

    #[test]
    fn headers_carry_the_reference_id_and_secrets_are_not_debug_printed() {
        let credentials = Credentials {
            target_environment: "sandbox".to_owned(),
            subscription_key: Secret::new("sub-key-123"),
        };
        let token = Secret::new("token-456");
        let id = ReferenceId::new_v4();
        let headers = credentials.payment_headers(&token, &id, Some("https://hooks.example/momo"));
        let get = |name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("X-Reference-Id"), Some(id.to_string().as_str()));
        assert_eq!(get("X-Target-Environment"), Some("sandbox"));
        assert_eq!(get("X-Callback-Url"), Some("https://hooks.example/momo"));
        assert_eq!(get("Ocp-Apim-Subscription-Key"), Some("sub-key-123"));
        assert_eq!(get("Authorization"), Some("Bearer token-456"));
        let without = credentials.payment_headers(&token, &id, None);
        assert!(without.iter().all(|(name, _)| *name != "X-Callback-Url"));

        let basic = credentials.token_headers("user", &Secret::new("key"));
        assert_eq!(basic[0], ("Authorization", "Basic dXNlcjprZXk=".to_owned()));

        let debug = format!("{credentials:?} {token:?}");
        assert!(!debug.contains("sub-key-123") && !debug.contains("token-456"), "{debug}");
        assert!(debug.contains("sandbox"));
    }

    #[test]
    fn paths_follow_the_sdk() {
        let id = ReferenceId::parse("3f2d1f0e-2b4a-4c6d-8e9f-0a1b2c3d4e5f").unwrap();
        assert_eq!(
            Product::Collection.status_path(&id),
            "/collection/v1_0/requesttopay/3f2d1f0e-2b4a-4c6d-8e9f-0a1b2c3d4e5f"
        );
        assert_eq!(Product::Disbursement.payment_path(), "/disbursement/v1_0/transfer");
        assert_eq!(Product::Disbursement.token_path(), "/disbursement/token/");
    }

    fn status(json: &str) -> StatusReport {
        PaymentStatus::parse(json.as_bytes()).unwrap().to_report().unwrap()
    }

    #[test]
    fn statuses_map_with_pending_as_the_default() {
        assert_eq!(status(r#"{"status":"SUCCESSFUL"}"#).status, Status::Succeeded);
        assert_eq!(status(r#"{"status":"FAILED"}"#).status, Status::Failed);
        assert_eq!(status(r#"{"status":"PENDING"}"#).status, Status::Pending);
        assert_eq!(status(r#"{"status":"ONGOING"}"#).status, Status::Pending);
        assert_eq!(status(r#"{"status":"successful"}"#).status, Status::Pending);
        let unknown = status(r#"{"status":"TIMEOUT_SOMETHING_NEW"}"#);
        assert_eq!(unknown.status, Status::Pending);
        assert_eq!(unknown.code.as_deref(), Some("TIMEOUT_SOMETHING_NEW"));
        assert!(PaymentStatus::parse(br#"{"amount":"1"}"#).is_err());
    }

    #[test]
    fn reasons_are_read_as_a_code_or_an_object() {
        let bare = status(r#"{"status":"FAILED","reason":"NOT_ENOUGH_FUNDS"}"#);
        assert_eq!(bare.code.as_deref(), Some("NOT_ENOUGH_FUNDS"));
        assert_eq!(bare.description, None);
        let object = PaymentStatus::parse(
            br#"{"status":"FAILED","reason":{"code":"PAYER_NOT_FOUND","message":"Payer not found"}}"#,
        )
        .unwrap();
        assert_eq!(object.failure_reason(), Some(FailureReason::PayerNotFound));
        let report = object.to_report().unwrap();
        assert_eq!(report.status, Status::Failed);
        assert_eq!(report.code.as_deref(), Some("PAYER_NOT_FOUND"));
        assert_eq!(report.description.as_deref(), Some("Payer not found"));
    }

    #[test]
    fn failure_reasons_round_trip_their_codes() {
        for code in [
            "INTERNAL_PROCESSING_ERROR",
            "APPROVAL_REJECTED",
            "EXPIRED",
            "PAYER_NOT_FOUND",
            "NOT_ENOUGH_FUNDS",
            "PAYEE_NOT_ALLOWED_TO_RECEIVE",
            "PAYER_LIMIT_REACHED",
            "NOT_ALLOWED",
            "PAYEE_NOT_FOUND",
            "NOT_ALLOWED_TARGET_ENVIRONMENT",
            "INVALID_CALLBACK_URL_HOST",
            "INVALID_CURRENCY",
            "SERVICE_UNAVAILABLE",
        ] {
            let reason = FailureReason::from_code(code);
            assert!(!matches!(reason, FailureReason::Other(_)), "{code}");
            assert_eq!(reason.code(), code);
        }
        assert_eq!(FailureReason::from_code("NEW_ONE"), FailureReason::Other("NEW_ONE".into()));
    }

    #[test]
    fn amounts_become_money_only_with_an_iso_currency() {
        let report = status(r#"{"status":"SUCCESSFUL","amount":"1.50","currency":"EUR"}"#);
        assert_eq!(report.amount, Some(money("EUR", "1.50")));
        let report = status(r#"{"status":"SUCCESSFUL","amount":"1.50","currency":"XYZ"}"#);
        assert_eq!(report.amount, None);
        let too_fine =
            PaymentStatus::parse(br#"{"status":"SUCCESSFUL","amount":"1.5","currency":"UGX"}"#)
                .unwrap();
        // UGX has no minor unit, so 1.5 UGX is not an amount.
        assert!(too_fine.to_report().is_err());
        assert_eq!(
            Decimal::from(100),
            status(r#"{"status":"x","amount":100,"currency":"UGX"}"#).amount.unwrap().amount()
        );
    }

    #[test]
    fn callbacks_need_something_to_match_on() {
        let report = parse_callback(
            br#"{"externalId":"pay-1","status":"SUCCESSFUL","financialTransactionId":"99"}"#,
        )
        .unwrap();
        assert_eq!(report.our_reference.as_deref(), Some("pay-1"));
        assert_eq!(report.request_reference, None);
        assert_eq!(report.receipt.as_deref(), Some("99"));
        let error = parse_callback(br#"{"status":"SUCCESSFUL"}"#).unwrap_err();
        assert!(error.to_string().contains("neither referenceId nor externalId"), "{error}");
    }

    #[test]
    fn errors_are_classified_by_status_then_code() {
        let duplicate = classify(
            409,
            br#"{"code":"RESOURCE_ALREADY_EXIST","message":"Duplicated reference id. Creation of resource failed."}"#,
        );
        assert_eq!(duplicate.kind, ErrorKind::Duplicate);
        assert_eq!(duplicate.code(), Some("RESOURCE_ALREADY_EXIST"));
        let not_found = classify(404, br#"{"code":"RESOURCE_NOT_FOUND","message":"x"}"#);
        assert_eq!(not_found.kind, ErrorKind::NotFound);
        assert_eq!(classify(404, b"").kind, ErrorKind::NotFound);
        for status in [400, 401, 403] {
            assert_eq!(classify(status, b"").kind, ErrorKind::Rejected, "{status}");
        }
        for status in [500, 502, 503, 504, 408, 429, 202] {
            assert_eq!(classify(status, b"").kind, ErrorKind::Unknown, "{status}");
        }
        assert_eq!(classify(500, b"<html>oops</html>").body, None);
        // A code that says more than the status is believed.
        assert_eq!(
            classify(500, br#"{"code":"RESOURCE_ALREADY_EXIST"}"#).kind,
            ErrorKind::Duplicate
        );
    }
}
