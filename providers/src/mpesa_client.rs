//! A thin M-Pesa (Safaricom Daraja) client: an OAuth token cached for its lifetime, the JSON
//! calls of the payment lifecycle, and every answer classified by what it says about the
//! payment (refused, duplicate, unknown, or never sent).
//!
//! Credentials travel only in headers marked sensitive; no error, log line or `Debug` output
//! of this module carries a consumer secret or an access token.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Secret;
use crate::http::{HeaderText, HttpClient, HttpError, HttpRequest, HttpResponse, TokenCache};
use crate::mpesa::{
    B2cRequest, C2bRegisterUrlRequest, C2bRegisterUrlResponse, ErrorResponse, QueuedResponse,
    StkPushRequest, StkPushResponse, StkQueryRequest, StkQueryResponse, TokenResponse,
    TransactionStatusRequest, basic_auth,
};

/// Daraja's error code for an expired or unknown access token.
const INVALID_TOKEN: &str = "404.001.03";

/// Where Daraja is and the consumer app's credentials.
#[derive(Clone, Debug)]
pub struct Config {
    /// Daraja's base address without a trailing slash (`https://api.safaricom.co.ke`, or the
    /// simulator's `http://127.0.0.1:PORT/simulator/mpesa`).
    pub base_url: String,
    pub consumer_key: Secret,
    pub consumer_secret: Secret,
}

/// Why a call gave no usable answer, classified for the payment lifecycle.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Daraja definitely refused the request (a 4xx with its error body): nothing happened.
    #[error("refused with HTTP {status}: {} {}", error.error_code, error.error_message)]
    Refused { status: u16, error: ErrorResponse },
    /// An earlier request with this `OriginatorConversationID` exists (`500.002.1001`): its
    /// outcome counts, found by a status query, never by a resend.
    #[error("an earlier request with this OriginatorConversationID exists")]
    Duplicate,
    /// The request may have reached Daraja and its outcome is unknown (a timeout, a broken
    /// connection, a 5xx, an unreadable answer): ask about it later.
    #[error("the outcome is unknown: {0}")]
    Unknown(String),
    /// The request is known not to have been sent (an invalid request, a failed TLS
    /// handshake, no access token): nothing happened.
    #[error("not sent: {0}")]
    NotSent(String),
}

/// The Daraja client. Cheap to share behind an `Arc`; the token is fetched once for all
/// callers.
#[derive(Debug)]
pub struct Client {
    config: Config,
    http: HttpClient,
    tokens: TokenCache,
}

impl Client {
    /// A client for `config`, sending through `http`.
    pub fn new(config: Config, http: HttpClient) -> Self {
        Self { config, http, tokens: TokenCache::default() }
    }

    /// The current access token, fetched (`GET /oauth/v1/generate`) when there is none or it
    /// is about to expire.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotSent`] when no token could be had: whatever needed it was not sent.
    pub async fn token(&self) -> Result<Secret, ClientError> {
        self.tokens.get(|| self.fetch_token()).await.map_err(ClientError::NotSent)
    }

    async fn fetch_token(&self) -> Result<(Secret, Duration), String> {
        let authorization =
            basic_auth(self.config.consumer_key.expose(), self.config.consumer_secret.expose());
        let request = HttpRequest {
            method: hyper::Method::GET,
            url: format!("{}/oauth/v1/generate?grant_type=client_credentials", self.base()),
            headers: vec![("authorization", HeaderText::Secret(Secret::new(authorization)))],
            body: None,
        };
        let response =
            self.http.send(request).await.map_err(|e| format!("no access token: {e}"))?;
        if !(200..300).contains(&response.status) {
            let detail = serde_json::from_slice::<ErrorResponse>(&response.body)
                .map(|error| format!(" ({} {})", error.error_code, error.error_message))
                .unwrap_or_default();
            return Err(format!(
                "the token request was refused with HTTP {}{detail}",
                response.status
            ));
        }
        let token: TokenResponse = serde_json::from_slice(&response.body)
            .map_err(|_| "the token response is unreadable".to_owned())?;
        let seconds = token.expires_in_seconds().map_err(|e| e.to_string())?;
        Ok((token.access_token, Duration::from_secs(seconds)))
    }

    /// Sends an STK push (`POST /mpesa/stkpush/v1/processrequest`). Acceptance means the
    /// prompt was sent, not that the customer paid.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn stk_push(&self, request: &StkPushRequest) -> Result<StkPushResponse, ClientError> {
        self.call("/mpesa/stkpush/v1/processrequest", request).await
    }

    /// Queries an STK push (`POST /mpesa/stkpushquery/v1/query`). A prompt still open is
    /// answered with a 5xx "being processed", which is [`ClientError::Unknown`].
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn stk_query(
        &self,
        request: &StkQueryRequest,
    ) -> Result<StkQueryResponse, ClientError> {
        self.call("/mpesa/stkpushquery/v1/query", request).await
    }

    /// Queues a B2C payout (`POST /mpesa/b2c/v3/paymentrequest`); its result comes to the
    /// `ResultURL`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]; [`ClientError::Duplicate`] when the `OriginatorConversationID` was
    /// used before.
    pub async fn b2c(&self, request: &B2cRequest) -> Result<QueuedResponse, ClientError> {
        self.call("/mpesa/b2c/v3/paymentrequest", request).await
    }

    /// Queues a transaction status query (`POST /mpesa/transactionstatus/v1/query`); its
    /// result comes to the `ResultURL`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn transaction_status(
        &self,
        request: &TransactionStatusRequest,
    ) -> Result<QueuedResponse, ClientError> {
        self.call("/mpesa/transactionstatus/v1/query", request).await
    }

    /// Registers C2B confirmation and validation URLs (`POST /mpesa/c2b/v2/registerurl`).
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn register_urls(
        &self,
        request: &C2bRegisterUrlRequest,
    ) -> Result<C2bRegisterUrlResponse, ClientError> {
        self.call("/mpesa/c2b/v2/registerurl", request).await
    }

    fn base(&self) -> &str {
        self.config.base_url.trim_end_matches('/')
    }

    /// POSTs `body` with the bearer token; an invalid-token answer clears the cache and the
    /// call is retried once with a fresh token.
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body)
            .map_err(|_| ClientError::NotSent("the request body could not be written".into()))?;
        let url = format!("{}{path}", self.base());
        let mut retried = false;
        loop {
            let token = self.token().await?;
            let request = HttpRequest {
                method: hyper::Method::POST,
                url: url.clone(),
                headers: vec![
                    (
                        "authorization",
                        HeaderText::Secret(Secret::new(format!("Bearer {}", token.expose()))),
                    ),
                    ("content-type", HeaderText::Plain("application/json".to_owned())),
                ],
                body: Some(body.clone()),
            };
            let response = self.http.send(request).await.map_err(|e| from_http(&e))?;
            match classify(&response) {
                Err(ClientError::Refused { error, .. })
                    if error.error_code == INVALID_TOKEN && !retried =>
                {
                    self.tokens.clear().await;
                    retried = true;
                }
                Err(error) => return Err(error),
                Ok(()) => {
                    return serde_json::from_slice(&response.body).map_err(|_| {
                        ClientError::Unknown(format!(
                            "an unreadable answer with HTTP {}",
                            response.status
                        ))
                    });
                }
            }
        }
    }
}

/// What a failed exchange says about the request.
fn from_http(error: &HttpError) -> ClientError {
    match error {
        HttpError::InvalidRequest(_) | HttpError::Tls(_) => ClientError::NotSent(error.to_string()),
        HttpError::Timeout(_) | HttpError::Connect(_) | HttpError::Exchange(_) => {
            ClientError::Unknown(error.to_string())
        }
    }
}

/// `Ok` for a 2xx answer; otherwise what the status and error body say about the request.
fn classify(response: &HttpResponse) -> Result<(), ClientError> {
    let status = response.status;
    if (200..300).contains(&status) {
        return Ok(());
    }
    let Ok(error) = serde_json::from_slice::<ErrorResponse>(&response.body) else {
        return Err(ClientError::Unknown(format!("HTTP {status} with an unreadable body")));
    };
    if error.is_duplicate() {
        Err(ClientError::Duplicate)
    } else if (400..500).contains(&status) {
        Err(ClientError::Refused { status, error })
    } else {
        Err(ClientError::Unknown(format!(
            "HTTP {status}: {} {}",
            error.error_code, error.error_message
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn answer(status: u16, body: &str) -> HttpResponse {
        HttpResponse { status, body: body.as_bytes().to_vec() }
    }

    #[test]
    fn answers_are_classified_for_the_lifecycle() {
        assert!(classify(&answer(200, "{}")).is_ok());
        let duplicate = r#"{"requestId":"1","errorCode":"500.002.1001",
            "errorMessage":"Duplicate OriginatorConversationID."}"#;
        assert!(matches!(classify(&answer(500, duplicate)), Err(ClientError::Duplicate)));
        let invalid = r#"{"errorCode":"400.002.02","errorMessage":"Bad Request - Invalid Amount"}"#;
        assert!(matches!(
            classify(&answer(400, invalid)),
            Err(ClientError::Refused { status: 400, .. })
        ));
        let busy = r#"{"errorCode":"500.001.1001","errorMessage":"being processed"}"#;
        assert!(matches!(classify(&answer(500, busy)), Err(ClientError::Unknown(_))));
        assert!(matches!(classify(&answer(400, "<html>")), Err(ClientError::Unknown(_))));
        assert!(matches!(classify(&answer(503, "")), Err(ClientError::Unknown(_))));
    }
}
