//! A thin HTTP/1.1 client for provider APIs: one request per connection, one deadline for the
//! whole exchange, credentials marked sensitive, and errors that never carry a secret.
//!
//! `https://` goes over TLS 1.2 or 1.3 (rustls with the *ring* provider, ALPN `http/1.1`),
//! trusting the Mozilla roots that `webpki-roots` embeds rather than the machine's certificate
//! store, so that what a provider's certificate must chain to is the same on every machine.
//! [`TlsConfig::with_extra_root`] adds one more root (a private CA, or a test's own).
//! `http://` stays plain, which is what the simulators speak.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

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

/// Why no answer came.
///
/// Two variants mean the request never reached the provider: [`HttpError::InvalidRequest`]
/// (nothing was built) and [`HttpError::Tls`] (nothing of the request is written before the
/// handshake completes, as this client sends no TLS early data). Every other variant leaves
/// the outcome unknown. [`HttpError::Connect`] in fact also means nothing was sent, since no
/// connection was made, but it is counted as unknown with the rest, the cautious reading; so is
/// a [`HttpError::Timeout`], even one that struck during the TLS handshake.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("the request was not sent: {0}")]
    InvalidRequest(String),
    /// The TLS handshake failed (an untrusted or mismatched certificate, no common protocol
    /// version, the connection dropped mid-handshake), or the TLS settings could not be built.
    /// A certificate problem is a [`rustls::Error`] inside the [`std::io::Error`].
    #[error("the TLS handshake failed: {0}")]
    Tls(#[source] std::io::Error),
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

/// The TLS settings of `https://` requests: which roots to trust, TLS 1.2 and 1.3 only, ALPN
/// `http/1.1`, no early data. Build one once and share it: a clone shares the settings and
/// their session cache, so that later connections to the same provider resume their session.
#[derive(Clone, Debug)]
pub struct TlsConfig(Arc<rustls::ClientConfig>);

impl TlsConfig {
    /// The Mozilla roots and one more trust anchor, a certificate in DER.
    ///
    /// # Errors
    ///
    /// The certificate cannot be read as a trust anchor.
    pub fn with_extra_root(certificate_der: &[u8]) -> Result<Self, rustls::Error> {
        let mut roots = mozilla_roots();
        roots.add(CertificateDer::from(certificate_der.to_vec()))?;
        Self::new(roots)
    }

    /// The Mozilla roots only, which is what [`HttpClient::send`] trusts; built once.
    ///
    /// # Errors
    ///
    /// [`HttpError::Tls`]: the settings could not be built (the provider offers none of the
    /// protocol versions).
    pub fn mozilla() -> Result<Self, HttpError> {
        static MOZILLA: LazyLock<Result<TlsConfig, rustls::Error>> =
            LazyLock::new(|| TlsConfig::new(mozilla_roots()));
        MOZILLA.clone().map_err(|error| HttpError::Tls(std::io::Error::other(error)))
    }

    /// The rustls settings, for a client that makes its own connections (the webhook sender):
    /// a copy that shares the roots, the *ring* provider and the session cache.
    pub fn client_config(&self) -> rustls::ClientConfig {
        rustls::ClientConfig::clone(&self.0)
    }

    fn new(roots: rustls::RootCertStore) -> Result<Self, rustls::Error> {
        // The provider is named rather than taken from the process default, which would be
        // ambiguous (and panic) the day another crate in the build enables aws-lc-rs as well.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Early data stays off (the default): without it nothing of a request is written
        // before the handshake completes, which is why a failed handshake means "not sent".
        debug_assert!(!config.enable_early_data);
        Ok(Self(Arc::new(config)))
    }
}

fn mozilla_roots() -> rustls::RootCertStore {
    rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

/// The client: a deadline per request. `https://` requests trust the Mozilla roots, unless
/// sent with [`HttpClient::send_with_tls`].
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
    /// Sends `request` and reads the whole answer, or fails within the deadline. An `https://`
    /// request trusts the Mozilla roots only.
    ///
    /// # Errors
    ///
    /// See [`HttpError`]: only `InvalidRequest` and `Tls` are known not to have reached the
    /// provider.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.send_over(request, None).await
    }

    /// As [`HttpClient::send`], with `tls` for an `https://` request instead of the Mozilla
    /// roots alone.
    ///
    /// # Errors
    ///
    /// As for [`HttpClient::send`].
    pub async fn send_with_tls(
        &self,
        tls: &TlsConfig,
        request: HttpRequest,
    ) -> Result<HttpResponse, HttpError> {
        self.send_over(request, Some(tls)).await
    }

    async fn send_over(
        &self,
        request: HttpRequest,
        tls: Option<&TlsConfig>,
    ) -> Result<HttpResponse, HttpError> {
        let target = Target::parse(&request.url)?;
        let secure = if target.tls {
            let config = match tls {
                Some(config) => config.clone(),
                None => TlsConfig::mozilla()?,
            };
            let name = ServerName::try_from(target.host.clone())
                .map_err(|_| HttpError::InvalidRequest("an invalid host".into()))?;
            Some((tokio_rustls::TlsConnector::from(config.0), name))
        } else {
            None
        };
        let mut built =
            hyper::Request::new(Full::new(Bytes::from(request.body.unwrap_or_default())));
        *built.method_mut() = request.method;
        *built.uri_mut() =
            target.path.parse().map_err(|_| HttpError::InvalidRequest("an invalid path".into()))?;
        let headers = built.headers_mut();
        let invalid = |name: &str| HttpError::InvalidRequest(format!("an invalid {name} header"));
        headers.insert(
            hyper::header::HOST,
            HeaderValue::from_str(&target.authority).map_err(|_| invalid("host"))?,
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
            let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
                .await
                .map_err(HttpError::Connect)?;
            match secure {
                Some((connector, name)) => {
                    let stream = connector.connect(name, stream).await.map_err(HttpError::Tls)?;
                    exchange(stream, built).await
                }
                None => exchange(stream, built).await,
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))?
    }
}

/// One request and its whole answer over a connected (and, for https, handshaken) stream.
async fn exchange<S>(
    stream: S,
    request: hyper::Request<Full<Bytes>>,
) -> Result<HttpResponse, HttpError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(HttpError::Exchange)?;
    let _driver = AbortOnDrop(tokio::spawn(connection));
    let response = sender.send_request(request).await.map_err(HttpError::Exchange)?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(HttpError::Exchange)?;
    Ok(HttpResponse { status, body: body.to_bytes().to_vec() })
}

/// Ends the connection's task with the exchange, however the exchange ends: with the answer, an
/// error, or the deadline dropping it. Otherwise a server that never answers would keep the task
/// and its socket alive long after the deadline.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where and how to send a request, from its `http://` or `https://` URL.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    tls: bool,
    /// The host to connect to and, for https, to name in SNI and to find in the certificate:
    /// a name or an IP address (an IPv6 one without its brackets).
    host: String,
    port: u16,
    /// The URL's authority as written, for the `Host` header.
    authority: String,
    /// The path and query.
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, HttpError> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(HttpError::InvalidRequest("not an http:// or https:// address".into()));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(end) if rest[end..].starts_with('?') => {
                (&rest[..end], format!("/{}", &rest[end..]))
            }
            Some(end) => (&rest[..end], rest[end..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        let invalid_host = || HttpError::InvalidRequest("an invalid host".into());
        // Credentials in a URL would end up in logs and errors: they go in headers instead.
        if authority.contains('@') {
            return Err(invalid_host());
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => bracketed.split_once(']').ok_or_else(invalid_host)?,
            None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
        };
        let port = match port {
            "" if tls => 443,
            "" => 80,
            _ => port
                .strip_prefix(':')
                .and_then(|port| port.parse::<u16>().ok())
                .ok_or_else(invalid_host)?,
        };
        if host.is_empty() {
            return Err(invalid_host());
        }
        Ok(Self { tls, host: host.to_owned(), port, authority: authority.to_owned(), path })
    }
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

    fn target(tls: bool, host: &str, port: u16, authority: &str, path: &str) -> Target {
        Target { tls, host: host.into(), port, authority: authority.into(), path: path.into() }
    }

    #[test]
    fn urls_split_into_where_to_connect_and_what_to_ask() {
        let parse = |url| Target::parse(url).unwrap();
        assert_eq!(
            parse("http://127.0.0.1:8080/simulator/mpesa/x?y=1"),
            target(false, "127.0.0.1", 8080, "127.0.0.1:8080", "/simulator/mpesa/x?y=1"),
        );
        assert_eq!(
            parse("http://example.com"),
            target(false, "example.com", 80, "example.com", "/")
        );
        assert_eq!(
            parse("https://api.safaricom.co.ke"),
            target(true, "api.safaricom.co.ke", 443, "api.safaricom.co.ke", "/"),
        );
        assert_eq!(
            parse("https://host:8443/path?q"),
            target(true, "host", 8443, "host:8443", "/path?q"),
        );
        assert_eq!(parse("https://host?q=1"), target(true, "host", 443, "host", "/?q=1"));
        assert_eq!(parse("https://[::1]:8443/x"), target(true, "::1", 8443, "[::1]:8443", "/x"));
        assert_eq!(parse("http://[::1]/"), target(false, "::1", 80, "[::1]", "/"));
    }

    #[test]
    fn urls_that_cannot_be_sent_are_refused_before_connecting() {
        for url in [
            "ftp://x",
            "api.safaricom.co.ke/x",
            "http://user:pw@host/",
            "https://user@host/",
            "https:///x",
            "https://:443/x",
            "https://host:/x",
            "https://host:port/x",
            "https://host:65536/x",
            "https://::1/x",
            "https://[::1/x",
        ] {
            assert!(
                matches!(Target::parse(url), Err(HttpError::InvalidRequest(_))),
                "{url} was accepted"
            );
        }
    }

    #[test]
    fn an_extra_root_must_be_a_certificate() {
        assert!(TlsConfig::with_extra_root(b"not a certificate").is_err());
    }

    #[test]
    fn the_default_tls_settings_are_built_and_speak_http_1_1() {
        let config = TlsConfig::mozilla().unwrap();
        assert_eq!(config.0.alpn_protocols, [b"http/1.1".to_vec()]);
        assert!(!config.0.enable_early_data);
        let copy = config.client_config();
        assert_eq!(copy.alpn_protocols, [b"http/1.1".to_vec()]);
        assert_eq!(copy.crypto_provider().cipher_suites, config.0.crypto_provider().cipher_suites);
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
