//! A thin MTN MoMo Open API client: token, request to pay, transfer and status over
//! [`HttpClient`], built on the wire types and classification of [`crate::momo`].
//!
//! One [`Client`] serves one product (collections or disbursements), since each product has its
//! own API user, subscription key and token. What a caller does with each [`ClientError`] is
//! written on its variant; the one rule that matters is that only [`ClientError::NotSent`] and
//! [`ClientError::Refused`] say the payment was not started. Anything else is settled by a
//! status query under the same reference id, never by a new request under a new one.

use std::time::Duration;

use crate::Secret;
use crate::http::{HeaderText, HttpClient, HttpError, HttpRequest, HttpResponse, TokenCache};
use crate::momo::{
    Credentials, ErrorKind, Headers, PaymentStatus, Product, ReferenceId, RequestToPay,
    TokenResponse, Transfer, classify,
};

/// What one MoMo product's client needs. Secrets are redacted in `Debug`.
#[derive(Clone, Debug)]
pub struct Config {
    /// The API's base, without a trailing slash (`https://sandbox.momodeveloper.mtn.com`, or a
    /// simulator's `http://127.0.0.1:PORT/simulator/momo`).
    pub base_url: String,
    /// The product this client calls.
    pub product: Product,
    /// The API user (a UUID), for Basic authentication at the token endpoint.
    pub api_user: String,
    /// The API key, for Basic authentication at the token endpoint.
    pub api_key: Secret,
    /// `Ocp-Apim-Subscription-Key` of this product.
    pub subscription_key: Secret,
    /// `X-Target-Environment`: `sandbox`, or the production environment MTN assigned.
    pub target_environment: String,
    /// `X-Callback-Url` sent with every payment, when set.
    pub callback_url: Option<String>,
}

/// Why a call did not give the answer it asks for.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// 409: a request with this reference id already exists. Not a failure: its status counts.
    #[error("momo already has a request with this reference id")]
    Duplicate,
    /// 404: no request has this reference id, so it was never started.
    #[error("momo has no request with this reference id")]
    NotFound,
    /// 400, 401 or 403 (after one retry with a fresh token): refused outright, nothing was
    /// started, and sending the same request again will not help.
    #[error("momo refused the request with {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The reply body as text (MoMo's error code and message).
        body: String,
    },
    /// A timeout, a connection error, a 5xx, an unexpected status or an unreadable body: the
    /// outcome is not known. Query the status later under the same reference id.
    #[error("the outcome is unknown: {0}")]
    Unknown(String),
    /// The request was never sent (invalid, or the TLS handshake failed).
    #[error("the request was not sent: {0}")]
    NotSent(String),
}

impl From<HttpError> for ClientError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::InvalidRequest(_) | HttpError::Tls(_) => Self::NotSent(error.to_string()),
            HttpError::Timeout(_) | HttpError::Connect(_) | HttpError::Exchange(_) => {
                Self::Unknown(error.to_string())
            }
        }
    }
}

/// Maps a non-success reply to what it means for the payment.
fn reply_error(response: &HttpResponse) -> ClientError {
    let classified = classify(response.status, &response.body);
    match classified.kind {
        ErrorKind::Duplicate => ClientError::Duplicate,
        ErrorKind::NotFound => ClientError::NotFound,
        ErrorKind::Rejected => {
            ClientError::Refused { status: response.status, body: response.text() }
        }
        ErrorKind::Unknown => ClientError::Unknown(classified.to_string()),
    }
}

/// Header names as [`HttpClient`] wants them (lower case, static), for the names the
/// [`Credentials`] helpers produce, and whether the value is a credential.
fn header_name(name: &str) -> Option<(&'static str, bool)> {
    Some(match name {
        "Authorization" => ("authorization", true),
        "Ocp-Apim-Subscription-Key" => ("ocp-apim-subscription-key", true),
        "X-Reference-Id" => ("x-reference-id", false),
        "X-Target-Environment" => ("x-target-environment", false),
        "X-Callback-Url" => ("x-callback-url", false),
        "Content-Type" => ("content-type", false),
        _ => return None,
    })
}

/// Converts the [`Credentials`] helpers' headers, marking credentials as secret.
fn to_http_headers(headers: Headers) -> Result<Vec<(&'static str, HeaderText)>, ClientError> {
    headers
        .into_iter()
        .map(|(name, value)| {
            let (name, secret) = header_name(name)
                .ok_or_else(|| ClientError::NotSent(format!("an unexpected header {name}")))?;
            let value = if secret {
                HeaderText::Secret(Secret::new(value))
            } else {
                HeaderText::Plain(value)
            };
            Ok((name, value))
        })
        .collect()
}

/// A MoMo client for one product, with its token cached until shortly before it expires.
#[derive(Debug)]
pub struct Client {
    config: Config,
    credentials: Credentials,
    http: HttpClient,
    token: TokenCache,
}

impl Client {
    /// A client for `config.product`, sending through `http`.
    pub fn new(config: Config, http: HttpClient) -> Self {
        let credentials = Credentials {
            target_environment: config.target_environment.clone(),
            subscription_key: config.subscription_key.clone(),
        };
        Self { config, credentials, http, token: TokenCache::default() }
    }

    /// The product this client calls.
    pub fn product(&self) -> Product {
        self.config.product
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// An access token: the cached one, or a new one from `POST /{product}/token/`.
    ///
    /// # Errors
    ///
    /// As for any call: a refused token request is [`ClientError::Refused`], a timeout or 5xx
    /// [`ClientError::Unknown`], a failed TLS handshake [`ClientError::NotSent`].
    pub async fn token(&self) -> Result<Secret, ClientError> {
        self.token.get(|| self.fetch_token()).await
    }

    async fn fetch_token(&self) -> Result<(Secret, Duration), ClientError> {
        let headers = self.credentials.token_headers(&self.config.api_user, &self.config.api_key);
        let request = HttpRequest {
            method: hyper::Method::POST,
            url: self.url(&self.config.product.token_path()),
            headers: to_http_headers(headers)?,
            body: None,
        };
        let response = self.http.send(request).await?;
        if response.status != 200 {
            return Err(reply_error(&response));
        }
        let token: TokenResponse = serde_json::from_slice(&response.body)
            .map_err(|error| ClientError::Unknown(format!("an unreadable token reply: {error}")))?;
        let seconds = token
            .expires_in_seconds()
            .map_err(|error| ClientError::Unknown(format!("an unreadable token reply: {error}")))?;
        Ok((token.access_token, Duration::from_secs(seconds)))
    }

    /// Sends one call with a bearer token; a 401 clears the cached token and retries once
    /// with a fresh one.
    async fn call<F>(
        &self,
        method: &hyper::Method,
        url: &str,
        body: Option<&[u8]>,
        headers: F,
    ) -> Result<HttpResponse, ClientError>
    where
        F: Fn(&Secret) -> Headers,
    {
        let mut retried = false;
        loop {
            let token = self.token().await?;
            let request = HttpRequest {
                method: method.clone(),
                url: url.to_owned(),
                headers: to_http_headers(headers(&token))?,
                body: body.map(<[u8]>::to_vec),
            };
            let response = self.http.send(request).await?;
            if response.status == 401 && !retried {
                self.token.clear().await;
                retried = true;
                continue;
            }
            return Ok(response);
        }
    }

    async fn pay(&self, reference: &ReferenceId, body: Vec<u8>) -> Result<(), ClientError> {
        let callback_url = self.config.callback_url.as_deref();
        let url = self.url(self.config.product.payment_path());
        let response = self
            .call(&hyper::Method::POST, &url, Some(&body), |token| {
                self.credentials.payment_headers(token, reference, callback_url)
            })
            .await?;
        if response.status == 202 { Ok(()) } else { Err(reply_error(&response)) }
    }

    /// `POST /collection/v1_0/requesttopay` under `reference`: accepted (202) means the
    /// customer is being asked; the outcome comes by callback or [`Client::status`].
    ///
    /// # Errors
    ///
    /// [`ClientError::NotSent`] when this client is not a collections client, or the request
    /// could not be sent; otherwise see [`ClientError`] (a [`ClientError::Duplicate`] means the
    /// request under this reference exists: query its status).
    pub async fn request_to_pay(
        &self,
        reference: &ReferenceId,
        body: &RequestToPay,
    ) -> Result<(), ClientError> {
        if self.config.product != Product::Collection {
            return Err(ClientError::NotSent("request to pay needs a collection client".into()));
        }
        let body =
            serde_json::to_vec(body).map_err(|error| ClientError::NotSent(error.to_string()))?;
        self.pay(reference, body).await
    }

    /// `POST /disbursement/v1_0/transfer` under `reference`; see [`Client::request_to_pay`].
    ///
    /// # Errors
    ///
    /// As for [`Client::request_to_pay`], with a disbursement client required.
    pub async fn transfer(
        &self,
        reference: &ReferenceId,
        body: &Transfer,
    ) -> Result<(), ClientError> {
        if self.config.product != Product::Disbursement {
            return Err(ClientError::NotSent("a transfer needs a disbursement client".into()));
        }
        let body =
            serde_json::to_vec(body).map_err(|error| ClientError::NotSent(error.to_string()))?;
        self.pay(reference, body).await
    }

    /// `GET` the status resource of the request to pay or transfer made under `reference`. A
    /// `200` is parsed whatever it says, `FAILED` included: the status is in the body.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotFound`] when no request has this reference (it was never started);
    /// [`ClientError::Unknown`] for a 5xx, a timeout or an unreadable body.
    pub async fn status(&self, reference: &ReferenceId) -> Result<PaymentStatus, ClientError> {
        let url = self.url(&self.config.product.status_path(reference));
        let response = self
            .call(&hyper::Method::GET, &url, None, |token| self.credentials.query_headers(token))
            .await?;
        if response.status != 200 {
            return Err(reply_error(&response));
        }
        PaymentStatus::parse(&response.body)
            .map_err(|error| ClientError::Unknown(format!("an unreadable status reply: {error}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn credentials_become_secret_headers() {
        let credentials = Credentials {
            target_environment: "sandbox".to_owned(),
            subscription_key: Secret::new("sub-key"),
        };
        let headers = to_http_headers(credentials.payment_headers(
            &Secret::new("token"),
            &ReferenceId::new_v4(),
            Some("http://x/cb"),
        ))
        .unwrap();
        for (name, value) in &headers {
            let secret = matches!(value, HeaderText::Secret(_));
            let expected = matches!(*name, "authorization" | "ocp-apim-subscription-key");
            assert_eq!(secret, expected, "{name}");
        }
        assert_eq!(headers.len(), 6);
        let debug = format!("{headers:?}");
        assert!(!debug.contains("sub-key") && !debug.contains("Bearer token"), "{debug}");
    }
}
