//! Errors as `application/problem+json`, and the JSON body extractor that turns every way a
//! body can be wrong into a 4xx with a stable code.

use crate::code::Code;
use crate::customers::CustomerError;
use crate::money::MoneyError;
use crate::payments::PaymentError;
use crate::tenancy::TenancyError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use hazina_ledger::pipeline::SubmitError;
use hazina_ledger::store::StoreError;
use std::fmt::Write as _;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The body of every error: an `application/problem+json` document (RFC 9457) with a stable
/// `code` to act on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Always `about:blank`: the `code` says what happened.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub code: Code,
    pub detail: String,
    /// The id a payment was given when the request named none, on every answer that may
    /// leave its outcome unknown (a 503 above all): retried under this id, it is replayed,
    /// never made twice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<uuid::Uuid>,
    /// Likewise for a transfer, or for each of a batch's transfers in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_ids: Option<Vec<uuid::Uuid>>,
    /// For a payment not made (`payment_failed`): the platform's status saying why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<crate::payments::PaymentStatus>,
    /// For a refusal (`payment_failed`, `ledger_refused`): the ledger's reason code (such as
    /// `exceeds_credits`), or the provider's result code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl utoipa::PartialSchema for Code {
    /// Every code, listed with its meaning.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let mut description =
            String::from("Stable and snake_case: act on it, never on `detail`.\n\n");
        for code in Code::ALL {
            let _ = writeln!(description, "- `{code}`: {}", code.meaning());
        }
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(Code::ALL.iter().map(|code| code.as_str())))
            .description(Some(description))
            .into()
    }
}

impl utoipa::ToSchema for Code {}

/// A failed request: a status, a stable snake_case `code` and a human-readable detail that
/// never carries internals (those go to the log).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: crate::code::Code,
    pub detail: String,
    /// Members of the body beyond the standard ones: the ids the request was given (see
    /// [`Problem::transaction_id`]), a refusal's status and reason.
    pub members: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: crate::code::Code, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), members: serde_json::Map::new() }
    }

    /// The same error, telling the client the payment's id (`transactionId`), so that a
    /// retry replays it whatever happened.
    #[must_use]
    pub fn with_transaction_id(self, id: uuid::Uuid) -> Self {
        self.with_member("transactionId", serde_json::json!(id))
    }

    /// The same error, telling the client its transfers' ids (`transferIds`, in order).
    #[must_use]
    pub fn with_transfer_ids(self, ids: &[uuid::Uuid]) -> Self {
        self.with_member("transferIds", serde_json::json!(ids))
    }

    /// The same error with one more member of its body (one the `Problem` schema documents).
    #[must_use]
    pub fn with_member(mut self, name: &str, value: serde_json::Value) -> Self {
        self.members.insert(name.to_owned(), value);
        self
    }

    /// 404: missing, or another tenant's (the two are indistinguishable).
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, Code::NotFound, format!("no such {what}"))
    }

    /// 422: well-formed but unacceptable.
    pub fn invalid(code: crate::code::Code, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// 400: the request itself is malformed (query strings, headers).
    pub fn bad_request(code: crate::code::Code, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 500: a stored value this version cannot read; logged, answered without it.
    pub fn corrupt(error: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %crate::error_chain(error), "a stored value is corrupt");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::InternalError,
            "a stored value cannot be read; the operator has been told",
        )
    }

    /// 503: the database failed; logged with its cause, answered without it.
    pub fn unavailable(error: &(dyn std::error::Error + 'static)) -> Self {
        tracing::warn!(error = %crate::error_chain(error), "request failed on the database");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::Unavailable,
            "the service is temporarily unavailable; retry later",
        )
    }
}

/// The request header that asks for a refusal's answer as it was before problems carried it
/// (`422` with the payment's or transfer's own body). Deprecated: it goes in the next release,
/// and so the OpenAPI document names it only in the two operations' descriptions (a generated
/// client should never send it).
pub const LEGACY_REFUSAL_HEADER: &str = "hazina-refusal";

/// Whether the request asked for the deprecated refusal body ([`LEGACY_REFUSAL_HEADER`]: `body`).
pub fn legacy_refusal(headers: &axum::http::HeaderMap) -> bool {
    headers.get(LEGACY_REFUSAL_HEADER).is_some_and(|value| value.as_bytes() == b"body")
}

/// Where a handler announces the ids it gave a request that named none, for an answer made
/// outside the handler: the request timeout's 503 (`hazina serve`'s outermost layer puts one in
/// every request's extensions), so that even that answer says what to replay under.
#[derive(Clone, Debug, Default)]
pub struct AnnouncedIds(std::sync::Arc<std::sync::Mutex<Option<ApiError>>>);

impl AnnouncedIds {
    /// Announces a payment's id, when the request has a slot for it.
    pub fn transaction(slot: Option<&Self>, id: uuid::Uuid) {
        Self::put(slot, ApiError::unknown_outcome().with_transaction_id(id));
    }

    /// Announces a transfer's, or a batch's, ids.
    pub fn transfers(slot: Option<&Self>, ids: &[uuid::Uuid]) {
        Self::put(slot, ApiError::unknown_outcome().with_transfer_ids(ids));
    }

    fn put(slot: Option<&Self>, error: ApiError) {
        if let Some(slot) = slot {
            *slot.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
        }
    }

    /// The answer for a request that ran out of time: 503, with the ids announced, if any.
    pub fn timed_out(&self) -> ApiError {
        let announced = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        announced.unwrap_or_else(ApiError::unknown_outcome)
    }
}

impl ApiError {
    /// 503: the request ran out of time; what it did is unknown until replayed.
    pub fn unknown_outcome() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::Timeout,
            "the request was not completed in time; its outcome is unknown: retry with the \
             same id",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            crate::http::problem_with(self.status, self.code, &self.detail, self.members);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Overload and outages pass within seconds; a client should not hammer meanwhile.
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::OrgNotFound => Self::not_found("org"),
            StoreError::AccountNotFound => Self::not_found("account"),
            StoreError::AccountExists => Self::new(
                StatusCode::CONFLICT,
                Code::AlreadyExists,
                "an account with this identity already exists",
            ),
            StoreError::AccountNotEmpty => Self::invalid(
                Code::AccountNotEmpty,
                "the account has a balance or pending transfers",
            ),
            StoreError::InvalidAmount(error) => {
                Self::invalid(Code::InvalidAmount, error.to_string())
            }
            StoreError::Contention => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Contention,
                "too many concurrent changes to the same accounts; retry",
            ),
            other => Self::unavailable(&other),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Overloaded => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Overloaded,
                "the ledger is overloaded; retry shortly",
            ),
            other => Self::unavailable(&other),
        }
    }
}

impl From<CustomerError> for ApiError {
    fn from(error: CustomerError) -> Self {
        match error {
            CustomerError::NotFound(what) => Self::not_found(what),
            CustomerError::Invalid { code, detail } => Self::invalid(code, detail),
            CustomerError::Conflicting => Self::unavailable(&error),
            CustomerError::Conflict { code, detail } => {
                Self::new(StatusCode::CONFLICT, code, detail)
            }
            CustomerError::Submit(error) => error.into(),
            CustomerError::Corrupt(_) => Self::corrupt(&error),
            CustomerError::SecondaryIdTaken(_) => {
                Self::new(StatusCode::CONFLICT, Code::SecondaryIdTaken, error.to_string())
            }
            CustomerError::AppDataLeased { .. } => {
                Self::new(StatusCode::CONFLICT, Code::AppDataLeased, error.to_string())
            }
            CustomerError::Store(error) => error.into(),
            CustomerError::Payments(error) => (*error).into(),
            CustomerError::Database(error) => error.into(),
            CustomerError::Pool(error) => error.into(),
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        let code = error.code();
        match error {
            PaymentError::NotFound(what) => Self::not_found(what),
            PaymentError::Invalid { code, detail } => Self::invalid(code, detail),
            PaymentError::Conflict { code, detail } => {
                Self::new(StatusCode::CONFLICT, code, detail)
            }
            PaymentError::LedgerRefused { .. } => {
                Self::new(StatusCode::CONFLICT, code, error.to_string())
            }
            PaymentError::Unreadable(_) => Self::bad_request(code, error.to_string()),
            PaymentError::ProviderUnavailable(detail) => {
                Self::new(StatusCode::FAILED_DEPENDENCY, code, detail)
            }
            PaymentError::CredentialsUnreadable => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, code, error.to_string())
            }
            PaymentError::Corrupt(_) => Self::corrupt(&error),
            PaymentError::Customer(error) => error.into(),
            PaymentError::Submit(error) => error.into(),
            PaymentError::Store(error) => error.into(),
            PaymentError::Database(error) => error.into(),
            PaymentError::Pool(error) => error.into(),
        }
    }
}

impl From<crate::reconciliation::ReconciliationError> for ApiError {
    fn from(error: crate::reconciliation::ReconciliationError) -> Self {
        use crate::reconciliation::ReconciliationError;
        match error {
            ReconciliationError::NotFound(what) => Self::not_found(what),
            ReconciliationError::Invalid { code, detail } => Self::invalid(code, detail),
            ReconciliationError::Conflict { code, detail } => {
                Self::new(StatusCode::CONFLICT, code, detail)
            }
            ReconciliationError::Corrupt(_) => Self::corrupt(&error),
            ReconciliationError::Payment(error) => error.into(),
            ReconciliationError::Submit(error) => error.into(),
            ReconciliationError::Store(error) => error.into(),
            ReconciliationError::Database(error) => error.into(),
            ReconciliationError::Pool(error) => error.into(),
        }
    }
}

impl From<crate::messaging::MessagingError> for ApiError {
    fn from(error: crate::messaging::MessagingError) -> Self {
        use crate::messaging::MessagingError;
        let code = error.code();
        match error {
            MessagingError::NotFound(what) => Self::not_found(what),
            MessagingError::Invalid { code, detail } => Self::invalid(code, detail),
            MessagingError::Conflict { code, detail } => {
                Self::new(StatusCode::CONFLICT, code, detail)
            }
            MessagingError::LedgerRefused { .. } => {
                Self::new(StatusCode::CONFLICT, code, error.to_string())
            }
            MessagingError::Unreadable(_) => Self::bad_request(code, error.to_string()),
            MessagingError::CredentialsUnreadable => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, code, error.to_string())
            }
            MessagingError::Corrupt(_) => Self::corrupt(&error),
            MessagingError::Customer(error) => error.into(),
            MessagingError::Money(error) => error.into(),
            MessagingError::Submit(error) => error.into(),
            MessagingError::Store(error) => error.into(),
            MessagingError::Database(error) => error.into(),
            MessagingError::Pool(error) => error.into(),
        }
    }
}

impl From<MoneyError> for ApiError {
    fn from(error: MoneyError) -> Self {
        match error {
            MoneyError::NotFound(what) => Self::not_found(what),
            MoneyError::Invalid { code, detail } => Self::invalid(code, detail),
            MoneyError::Forbidden { code, detail } => {
                Self::new(StatusCode::FORBIDDEN, code, detail)
            }
            MoneyError::Customer(error) => error.into(),
            MoneyError::Payment(error) => error.into(),
            MoneyError::Submit(error) => error.into(),
            MoneyError::Store(error) => error.into(),
        }
    }
}

impl From<TenancyError> for ApiError {
    fn from(error: TenancyError) -> Self {
        match error {
            TenancyError::NotFound(what) => Self::not_found(what),
            TenancyError::AppNotFound => {
                Self::new(StatusCode::NOT_FOUND, Code::AppNotFound, error.to_string())
            }
            TenancyError::Invalid { code, detail } => Self::invalid(code, detail),
            TenancyError::AppExists => {
                Self::new(StatusCode::CONFLICT, error.code(), error.to_string())
            }
            TenancyError::Store(error) => error.into(),
            TenancyError::Database(error) => error.into(),
            TenancyError::Pool(error) => error.into(),
        }
    }
}

impl From<crate::events::ReadError> for ApiError {
    fn from(error: crate::events::ReadError) -> Self {
        match error {
            crate::events::ReadError::Store(error) => error.into(),
            other => Self::unavailable(&other),
        }
    }
}

impl From<crate::webhooks::WebhookError> for ApiError {
    fn from(error: crate::webhooks::WebhookError) -> Self {
        use crate::webhooks::WebhookError;
        match error {
            WebhookError::NotFound(what) => Self::not_found(what),
            WebhookError::Invalid { code, detail } => Self::invalid(code, detail),
            WebhookError::Unreadable(_) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::CredentialsUnreadable,
                "the endpoint's secrets cannot be opened with this server's key",
            ),
            WebhookError::NoRandomness => Self::unavailable(&error),
            WebhookError::Read(error) => Self::unavailable(&error),
            WebhookError::Database(error) => error.into(),
            WebhookError::Pool(error) => error.into(),
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::unavailable(&error)
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Self::unavailable(&error)
    }
}

/// A JSON request body. Unlike `axum::Json`, every rejection is a problem response with a
/// stable code: `unsupported_media_type` (415), `malformed_json` (400), `invalid_body` (422:
/// wrong types, missing or unknown fields, a NUL in a string), `body_too_large` (413).
#[derive(Debug, Clone, Copy, Default)]
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::UnsupportedMediaType,
                "send the body as application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(request, state).await.map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::BodyTooLarge,
                format!(
                    "the body is larger than this endpoint accepts ({} bytes; 2 MiB for batches)",
                    super::v1::BODY_BYTES_MAX
                ),
            )
        })?;
        let axum::Json(value) =
            axum::Json::<T>::from_bytes(&bytes).map_err(|rejection| body_rejection(&rejection))?;
        // Every body is an object; serde would also read a struct from an array of its fields.
        if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::invalid(Code::InvalidBody, "the body is a JSON object"));
        }
        if holds_nul(&bytes) {
            return Err(ApiError::invalid(
                Code::InvalidBody,
                "text may not hold the NUL character (\\u0000)",
            ));
        }
        Ok(Self(value))
    }
}

/// Whether the request says its body is JSON: `application/json` or `application/…+json`,
/// parameters aside (as `axum::Json` decides).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE) else {
        return false;
    };
    let essence = value.to_str().unwrap_or_default().split(';').next().unwrap_or_default();
    let essence = essence.trim().to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Whether a JSON text (already parsed, so well-formed) has a string holding U+0000, which can
/// only be written as the escape `\u0000`. PostgreSQL stores no NUL in `text` or `jsonb`: such
/// a value would fail at the database, and the client be told to retry what can never succeed.
fn holds_nul(json: &[u8]) -> bool {
    let mut rest = json;
    while let Some(at) = rest.iter().position(|&byte| byte == b'\\') {
        // An escape is the backslash and the character after it (`\\` is one escape, so the
        // backslash it escapes never starts another).
        let escape = &rest[at..];
        if escape.starts_with(br"\u0000") {
            return true;
        }
        rest = escape.get(2..).unwrap_or_default();
    }
    false
}

fn body_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::UnsupportedMediaType,
            "send the body as application/json",
        ),
        JsonRejection::JsonSyntaxError(error) => {
            ApiError::bad_request(Code::MalformedJson, error.body_text())
        }
        JsonRejection::JsonDataError(error) => {
            ApiError::invalid(Code::InvalidBody, error.body_text())
        }
        other => ApiError::bad_request(Code::InvalidBody, other.body_text()),
    }
}

/// Path parameters; a malformed one (an id that is not a UUID) is a 400 problem.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_request(Code::InvalidPath, rejection.body_text())),
        }
        .and_then(|params| {
            // Decoded, `%00` is a NUL, which no stored text may hold (see `holds_nul`).
            if parts.uri.path().contains("%00") {
                return Err(ApiError::bad_request(Code::InvalidPath, "a path may not hold %00"));
            }
            Ok(params)
        })
    }
}

/// A query string; a malformed one is a 400 problem.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_request(Code::InvalidQuery, rejection.body_text())),
        }
        .and_then(|params| {
            if parts.uri.query().is_some_and(|query| query.contains("%00")) {
                return Err(ApiError::bad_request(Code::InvalidQuery, "a query may not hold %00"));
            }
            Ok(params)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::holds_nul;

    #[test]
    fn a_nul_escape_is_found_and_an_escaped_backslash_is_not_one() {
        for (json, nul) in [
            (r#"{"name":"a\u0000b"}"#, true),
            (r#"{"a\u0000":1}"#, true),
            (r#"["\\\u0000"]"#, true),
            (r#"{"name":"a\\u0000b"}"#, false),
            (r#"{"name":"\\\\u0000"}"#, false),
            (r#"{"name":"\u00001"}"#, true),
            (r#"{"name":"\u0001"}"#, false),
            (r#"{"name":"plain"}"#, false),
            (r#""\\""#, false),
        ] {
            assert_eq!(holds_nul(json.as_bytes()), nul, "{json}");
        }
    }
}

#[cfg(test)]
mod codes {
    use hazina_ledger::pipeline::SubmitError;

    use super::ApiError;
    use crate::messaging::MessagingError;
    use crate::money::MoneyError;
    use crate::payments::PaymentError;

    /// A service's own `code()` (what a front door other than HTTP, or a log, says) is the code
    /// the HTTP layer answers with, for the failures every service shares.
    #[test]
    fn a_service_error_s_code_is_the_one_http_answers() {
        let failures = || [SubmitError::Overloaded, SubmitError::Stopped];
        for failure in failures() {
            let error = PaymentError::Submit(failure);
            assert_eq!(error.code(), ApiError::from(error).code);
        }
        for failure in failures() {
            let error = MessagingError::Submit(failure);
            assert_eq!(error.code(), ApiError::from(error).code);
        }
        for failure in failures() {
            let error = MoneyError::Submit(failure);
            assert_eq!(error.code(), ApiError::from(error).code);
        }
        let pool = || deadpool_postgres::PoolError::Closed;
        assert_eq!(
            PaymentError::Pool(pool()).code(),
            ApiError::from(PaymentError::Pool(pool())).code
        );
        let error = MessagingError::Pool(pool());
        assert_eq!(error.code(), ApiError::from(MessagingError::Pool(pool())).code);
        let error = MessagingError::NotFound("message");
        assert_eq!(error.code(), ApiError::from(MessagingError::NotFound("message")).code);
    }
}
