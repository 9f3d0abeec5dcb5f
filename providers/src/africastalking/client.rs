//! A thin Africa's Talking client: the bulk and premium SMS send, the outbound voice call and
//! the airtime send, each a form POST with the `apiKey` header, and every answer classified
//! by what it says about the request (refused, unknown, or never sent).
//!
//! The API key travels only in a header marked sensitive; no error, log line or `Debug`
//! output of this module carries it.

use serde::de::DeserializeOwned;

use super::airtime::{AirtimeRecipient, AirtimeResponse, SendAirtime};
use super::sms::{SendSms, SendSmsResponse};
use super::voice::{MakeCall, MakeCallResponse};
use crate::Secret;
use crate::http::{HeaderText, HttpClient, HttpError, HttpRequest};
use crate::messaging::{DeliveryStatus, SendResult};

/// Where Africa's Talking is and the app's credentials. Every base URL is without a trailing
/// slash; pointed at the simulator, all three are its address.
#[derive(Clone, Debug)]
pub struct Config {
    /// `https://api.africastalking.com` (sandbox `https://api.sandbox.africastalking.com`).
    pub base_url: String,
    /// `https://voice.africastalking.com`.
    pub voice_base_url: String,
    /// Premium SMS: `https://content.africastalking.com` (the sandbox uses the api host).
    pub content_base_url: String,
    /// The app's username (`sandbox` in the sandbox).
    pub username: String,
    pub api_key: Secret,
}

impl Config {
    /// The live hosts for `username`, or the sandbox's when it is `sandbox`.
    pub fn live(username: &str, api_key: Secret) -> Self {
        let sandbox = username == "sandbox";
        let domain = if sandbox { "sandbox.africastalking.com" } else { "africastalking.com" };
        Self {
            base_url: format!("https://api.{domain}"),
            voice_base_url: format!("https://voice.{domain}"),
            content_base_url: if sandbox {
                format!("https://api.{domain}")
            } else {
                format!("https://content.{domain}")
            },
            username: username.to_owned(),
            api_key,
        }
    }

    /// Every host at `base_url` (the simulator).
    pub fn at(base_url: &str, username: &str, api_key: Secret) -> Self {
        let base = base_url.trim_end_matches('/').to_owned();
        Self {
            base_url: base.clone(),
            voice_base_url: base.clone(),
            content_base_url: base,
            username: username.to_owned(),
            api_key,
        }
    }
}

/// Why a call gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The provider refused the request (a 4xx): nothing happened. A 401 is our API key.
    #[error("refused with HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    /// The request may have reached the provider and its outcome is unknown (a timeout, a
    /// broken connection, a 5xx, an unreadable answer).
    #[error("the outcome is unknown: {0}")]
    Unknown(String),
    /// The request is known not to have been sent (an invalid request, a failed TLS
    /// handshake).
    #[error("not sent: {0}")]
    NotSent(String),
}

impl ClientError {
    /// What the failure means for a message: a refusal is final (our credentials when the
    /// provider says 401 or 403, else our request), anything else is tried again later.
    #[must_use]
    pub fn send_result(&self) -> SendResult {
        match self {
            Self::Refused { status: 401 | 403, body } => SendResult::Refused {
                status: DeliveryStatus::ApplicationError,
                reason: format!("the provider refused our credentials: {body}"),
            },
            Self::Refused { status, body } => SendResult::Refused {
                status: DeliveryStatus::InvalidRequest,
                reason: format!("HTTP {status}: {body}"),
            },
            Self::Unknown(reason) | Self::NotSent(reason) => {
                SendResult::Retry { reason: reason.clone() }
            }
        }
    }
}

/// One result per number of `requested`, from a send's outcome: the answer's per-recipient
/// results ([`SendSmsResponse::results`]), or the same [`ClientError::send_result`] for every
/// number.
#[must_use]
pub fn send_results(
    requested: &[&str],
    outcome: &Result<SendSmsResponse, ClientError>,
) -> Vec<(String, SendResult)> {
    match outcome {
        Ok(answer) => answer.results(requested),
        Err(error) => {
            requested.iter().map(|number| ((*number).to_owned(), error.send_result())).collect()
        }
    }
}

/// The Africa's Talking client. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Client {
    config: Config,
    http: HttpClient,
}

impl Client {
    /// A client for `config`, sending through `http`.
    pub fn new(config: Config, http: HttpClient) -> Self {
        Self { config, http }
    }

    /// The app's username, which every form carries.
    pub fn username(&self) -> &str {
        &self.config.username
    }

    /// Sends `message` to `recipients` (E.164) from `from` (the account's default sender
    /// when `None`) as one bulk send (`POST /version1/messaging`).
    ///
    /// # Errors
    ///
    /// See [`ClientError`]; [`send_results`] turns the outcome into one result per number.
    pub async fn send_sms(
        &self,
        recipients: &[&str],
        message: &str,
        from: Option<&str>,
    ) -> Result<SendSmsResponse, ClientError> {
        self.send(&SendSms::new(&self.config.username, recipients, message, from)).await
    }

    /// Sends a prepared form: a premium one ([`SendSms::premium`]) goes to the content host,
    /// any other to the api host.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn send(&self, request: &SendSms) -> Result<SendSmsResponse, ClientError> {
        let base = if request.is_premium() {
            &self.config.content_base_url
        } else {
            &self.config.base_url
        };
        let form = request.form().map_err(|e| ClientError::NotSent(e.to_string()))?;
        self.post(&format!("{}/version1/messaging", base.trim_end_matches('/')), form, None).await
    }

    /// Asks the provider to call `to` from our voice number `from` (`POST /call` on the voice
    /// host); each number's entry says whether it was queued.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn make_call(
        &self,
        from: &str,
        to: &[&str],
        client_request_id: Option<&str>,
    ) -> Result<MakeCallResponse, ClientError> {
        let request = MakeCall {
            username: self.config.username.clone(),
            from: from.to_owned(),
            to: to.join(","),
            client_request_id: client_request_id.map(str::to_owned),
        };
        let form = request.form().map_err(|e| ClientError::NotSent(e.to_string()))?;
        let url = format!("{}/call", self.config.voice_base_url.trim_end_matches('/'));
        self.post(&url, form, None).await
    }

    /// Sends airtime (`POST /version1/airtime/send`). `idempotency_key` goes in the
    /// `Idempotency-Key` header (the provider's newer documents name one without confirming
    /// its spelling): a retry with the same key is not sent twice.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn send_airtime(
        &self,
        recipients: &[AirtimeRecipient],
        idempotency_key: Option<&str>,
    ) -> Result<AirtimeResponse, ClientError> {
        let request = SendAirtime::new(&self.config.username, recipients)
            .map_err(|e| ClientError::NotSent(e.to_string()))?;
        let form = request.form().map_err(|e| ClientError::NotSent(e.to_string()))?;
        let url = format!("{}/version1/airtime/send", self.config.base_url.trim_end_matches('/'));
        self.post(&url, form, idempotency_key).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        url: &str,
        form: String,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let mut headers = vec![
            ("apikey", HeaderText::Secret(self.config.api_key.clone())),
            ("accept", HeaderText::Plain("application/json".to_owned())),
            ("content-type", HeaderText::Plain("application/x-www-form-urlencoded".to_owned())),
        ];
        if let Some(key) = idempotency_key {
            headers.push(("idempotency-key", HeaderText::Plain(key.to_owned())));
        }
        let request = HttpRequest {
            method: hyper::Method::POST,
            url: url.to_owned(),
            headers,
            body: Some(form.into_bytes()),
        };
        let response = self.http.send(request).await.map_err(|e| from_http(&e))?;
        let status = response.status;
        if (400..500).contains(&status) {
            return Err(ClientError::Refused { status, body: clipped(&response.text()) });
        }
        if !(200..300).contains(&status) {
            return Err(ClientError::Unknown(format!("HTTP {status}")));
        }
        serde_json::from_slice(&response.body)
            .map_err(|_| ClientError::Unknown(format!("an unreadable answer with HTTP {status}")))
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

/// The start of a refusal's body, enough to say why without flooding a log.
fn clipped(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn failures_become_send_results() {
        let key = ClientError::Refused {
            status: 401,
            body: "The supplied authentication is invalid".into(),
        };
        assert!(matches!(
            key.send_result(),
            SendResult::Refused { status: DeliveryStatus::ApplicationError, .. }
        ));
        let bad = ClientError::Refused { status: 400, body: "x".into() };
        assert!(matches!(
            bad.send_result(),
            SendResult::Refused { status: DeliveryStatus::InvalidRequest, .. }
        ));
        assert!(matches!(ClientError::Unknown("t".into()).send_result(), SendResult::Retry { .. }));
        let results = send_results(
            &["+254711000001", "+254711000002"],
            &Err(ClientError::NotSent("x".into())),
        );
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(|(_, result)| matches!(result, SendResult::Retry { .. })));
    }

    #[test]
    fn the_live_hosts_follow_the_username() {
        let live = Config::live("hazina", Secret::new("k"));
        assert_eq!(live.content_base_url, "https://content.africastalking.com");
        let sandbox = Config::live("sandbox", Secret::new("k"));
        assert_eq!(sandbox.content_base_url, "https://api.sandbox.africastalking.com");
        assert_eq!(sandbox.voice_base_url, "https://voice.sandbox.africastalking.com");
        assert!(!format!("{sandbox:?}").contains("\"k\""));
    }
}
