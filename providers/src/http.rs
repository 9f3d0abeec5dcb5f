//! A thin HTTP/1.1 client for provider APIs: one request per connection, one deadline for the
//! whole exchange, credentials marked sensitive, and errors that never carry a secret.
//!
//! Plain `http://` only for now, which is what the simulators speak; an `https://` address is
//! refused with [`HttpError::TlsUnsupported`] until a TLS stack is chosen.

use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};

use crate::Secret;

/// What a provider answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as text (providers answer JSON or XML in UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why no answer came. Every variant means the outcome of the request is unknown, except
/// [`HttpError::InvalidRequest`] and [`HttpError::TlsUnsupported`], which were never sent.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("the request was not sent: {0}")]
    InvalidRequest(String),
    #[error("https needs a TLS stack, which this build does not have yet")]
    TlsUnsupported,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("could not connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("the exchange failed: {0}")]
    Exchange(#[source] hyper::Error),
}

/// A header's value: plain, or a credential (sent as is, marked sensitive so that hyper never
/// prints it, and never shown by this crate's `Debug`).
#[derive(Clone, Debug)]
pub enum HeaderText {
    Plain(String),
    Secret(Secret),
}

/// One request to a provider.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub method: hyper::Method,
    pub url: String,
    pub headers: Vec<(&'static str, HeaderText)>,
    pub body: Option<Vec<u8>>,
}

/// The client: a deadline per request.
#[derive(Clone, Copy, Debug)]
pub struct HttpClient {
    pub timeout: Duration,
}

impl Default for HttpClient {
    /// 30 s: Daraja and MoMo answer within seconds, or their answer is unknown anyway.
    fn default() -> Self {
        Self { timeout: Duration::from_secs(30) }
    }
}

impl HttpClient {
    /// Sends `request` and reads the whole answer, or fails within the deadline.
    ///
    /// # Errors
    ///
    /// See [`HttpError`]: only `InvalidRequest` and `TlsUnsupported` are known not to have
    /// reached the provider.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (host, authority, path) = split_url(&request.url)?;
        let mut built =
            hyper::Request::new(Full::new(Bytes::from(request.body.unwrap_or_default())));
        *built.method_mut() = request.method;
        *built.uri_mut() =
            path.parse().map_err(|_| HttpError::InvalidRequest("an invalid path".into()))?;
        let headers = built.headers_mut();
        let invalid = |name: &str| HttpError::InvalidRequest(format!("an invalid {name} header"));
        headers.insert(
            hyper::header::HOST,
            HeaderValue::from_str(&authority).map_err(|_| invalid("host"))?,
        );
        for (name, value) in request.headers {
            let header = HeaderName::from_static(name);
            let value = match &value {
                HeaderText::Plain(text) => HeaderValue::from_str(text),
                HeaderText::Secret(secret) => {
                    HeaderValue::from_str(secret.expose()).map(|mut v| {
                        v.set_sensitive(true);
                        v
                    })
                }
            }
            .map_err(|_| invalid(name))?;
            headers.insert(header, value);
        }
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(&host).await.map_err(HttpError::Connect)?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(HttpError::Exchange)?;
            let driver = tokio::spawn(connection);
            let response = sender.send_request(built).await.map_err(HttpError::Exchange)?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.map_err(HttpError::Exchange)?;
            driver.abort();
            Ok(HttpResponse { status, body: body.to_bytes().to_vec() })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))?
    }
}

/// `(host:port to connect to, Host header, path and query)` of an `http://` URL.
fn split_url(url: &str) -> Result<(String, String, String), HttpError> {
    if url.starts_with("https://") {
        return Err(HttpError::TlsUnsupported);
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HttpError::InvalidRequest("not an http:// address".into()))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(HttpError::InvalidRequest("an invalid host".into()));
    }
    let host = if authority.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok()) {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((host, authority.to_owned(), path.to_owned()))
}

/// An access token and when to stop using it.
#[derive(Debug, Default)]
pub struct TokenCache {
    current: tokio::sync::Mutex<Option<(Secret, tokio::time::Instant)>>,
}

impl TokenCache {
    /// Renew this long before the provider says the token expires, so that a request never
    /// leaves with a token that dies on the way.
    const MARGIN: Duration = Duration::from_secs(60);

    /// The cached token, or a new one from `fetch` (which returns the token and its lifetime).
    /// Concurrent callers wait for one fetch rather than each fetching.
    ///
    /// # Errors
    ///
    /// `fetch`'s error; nothing is cached then.
    pub async fn get<E, F, Fut>(&self, fetch: F) -> Result<Secret, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Secret, Duration), E>>,
    {
        let mut current = self.current.lock().await;
        if let Some((token, until)) = &*current
            && tokio::time::Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = fetch().await?;
        let until = tokio::time::Instant::now() + lifetime.saturating_sub(Self::MARGIN);
        *current = Some((token.clone(), until));
        Ok(token)
    }

    /// Forgets the token (after the provider refused it).
    pub async fn clear(&self) {
        *self.current.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn urls_split_into_where_to_connect_and_what_to_ask() {
        let (host, authority, path) =
            split_url("http://127.0.0.1:8080/simulator/mpesa/x?y=1").unwrap();
        assert_eq!((host.as_str(), authority.as_str()), ("127.0.0.1:8080", "127.0.0.1:8080"));
        assert_eq!(path, "/simulator/mpesa/x?y=1");
        assert_eq!(split_url("http://example.com").unwrap().0, "example.com:80");
        assert!(matches!(
            split_url("https://api.safaricom.co.ke/x"),
            Err(HttpError::TlsUnsupported)
        ));
        assert!(matches!(split_url("ftp://x"), Err(HttpError::InvalidRequest(_))));
        assert!(matches!(split_url("http://user:pw@host/"), Err(HttpError::InvalidRequest(_))));
    }

    #[tokio::test]
    async fn a_token_is_fetched_once_and_renewed_before_it_expires() {
        let cache = TokenCache::default();
        let fetches = std::sync::atomic::AtomicU32::new(0);
        let fetch = || async {
            fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok::<_, ()>((Secret::new("t"), Duration::from_secs(3599)))
        };
        assert_eq!(cache.get(fetch).await.unwrap().expose(), "t");
        assert_eq!(cache.get(fetch).await.unwrap().expose(), "t");
        assert_eq!(fetches.load(std::sync::atomic::Ordering::Relaxed), 1);
        // A lifetime inside the margin is never reused.
        cache.clear().await;
        let short = || async { Ok::<_, ()>((Secret::new("s"), Duration::from_secs(30))) };
        cache.get(short).await.unwrap();
        cache.get(fetch).await.unwrap();
        assert_eq!(fetches.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
