//! How deliveries travel: hyper's pooled keep-alive HTTP/1.1 client, `https://` over rustls
//! with the *ring* provider and the Mozilla roots the providers crate trusts (plus one more root
//! where tests ask), `http://` where the operator allows private addresses. Names resolve only
//! through [`Guard`]; redirects are never followed (hyper does not follow them); no proxy.
//!
//! This is the one file of a service that names hyper: as a client, the way
//! `hazina_providers::http` calls providers, never the API's server side (the architecture test
//! allows it by name).
//!
//! There is no fallback: when the TLS settings cannot be built the transport is that error, and
//! every delivery fails with it, rather than a client without the address check ever existing.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::address::{Guard, is_public};

/// How long making a connection (resolving included) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept per host: more than a worker's requests in flight (256 by default), so
/// that a busy receiver's connections are all reused.
pub const IDLE_PER_HOST: usize = 512;
/// How long an idle connection is kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Who calls, in every delivery's `User-Agent`.
const USER_AGENT: &str = concat!("Hazina-Webhooks/", env!("CARGO_PKG_VERSION"));

/// The webhook client.
pub type WebhookClient = Client<HttpsConnector<HttpConnector<Guard>>, Full<Bytes>>;

/// The client, or why it could not be built (every delivery then fails with it).
pub type Transport = Result<WebhookClient, String>;

/// The TLS settings, the Mozilla roots and `extra_root_der` if any, and the client over them.
pub fn transport(guard: &Guard, extra_root_der: Option<&[u8]>) -> Transport {
    let tls = match extra_root_der {
        None => hazina_providers::http::TlsConfig::mozilla().map_err(|error| error.to_string()),
        Some(der) => hazina_providers::http::TlsConfig::with_extra_root(der)
            .map_err(|error| format!("the extra root is not a trust anchor: {error}")),
    };
    let tls = tls.map_err(|error| format!("the webhook client has no TLS settings: {error}"));
    if let Err(error) = &tls {
        tracing::error!(%error, "webhooks cannot be delivered");
    }
    Ok(client(guard.clone(), tls?.client_config()))
}

fn client(guard: Guard, mut tls: tokio_rustls::rustls::ClientConfig) -> WebhookClient {
    let mut http = HttpConnector::new_with_resolver(guard);
    // The scheme is the TLS layer's to judge: it speaks TLS for https:// and passes http://.
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    // hyper-rustls sets ALPN itself from the protocols enabled (none for HTTP/1.1 only), and
    // refuses settings that name any.
    tls.alpn_protocols.clear();
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(IDLE_PER_HOST)
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .build(https)
}

/// What [`Guard`] resolves a name to.
pub type Addresses = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<Name> for Guard {
    type Response = Addresses;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Addresses, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow = self.allow_private.load(Ordering::Relaxed);
        Box::pin(async move {
            let host = name.as_str();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
            if !allow && addresses.iter().any(|address| !is_public(address.ip())) {
                return Err(std::io::Error::other(format!(
                    "{host} resolves to an address that is not public"
                )));
            }
            Ok(addresses.into_iter())
        })
    }
}

/// One signed delivery.
#[derive(Debug)]
pub struct Post<'a> {
    /// Checked already (its scheme, and its host if an IP literal).
    pub url: &'a str,
    pub id: &'a str,
    pub timestamp: i64,
    pub signature: String,
    pub body: &'a str,
}

/// Sends `post` and reads its answer's body up to `read_max` bytes (the rest is never read:
/// an answer dropped unfinished closes its connection, one read to its end returns it to the
/// pool). The status and the start of the body, at most `keep` bytes. No deadline: the caller
/// sets one for the whole exchange.
pub async fn send(
    client: &WebhookClient,
    post: Post<'_>,
    read_max: usize,
    keep: usize,
) -> Result<(u16, String), String> {
    let request = hyper::Request::post(post.url)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, USER_AGENT)
        .header("webhook-id", post.id)
        .header("webhook-timestamp", post.timestamp.to_string())
        .header("webhook-signature", post.signature)
        .body(Full::new(Bytes::copy_from_slice(post.body.as_bytes())))
        .map_err(|error| format!("the request cannot be made: {error}"))?;
    let response = client.request(request).await.map_err(|error| crate::error_chain(&error))?;
    let status = response.status().as_u16();
    let mut answer = response.into_body();
    let mut body = Vec::new();
    while body.len() < read_max {
        match answer.frame().await {
            Some(frame) => {
                let frame = frame.map_err(|error| crate::error_chain(&error))?;
                if let Some(data) = frame.data_ref() {
                    body.extend_from_slice(data);
                }
            }
            None => break,
        }
    }
    drop(answer);
    body.truncate(keep);
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_resolver_refuses_a_name_of_a_private_address() {
        use tower_service::Service as _;
        let mut guard = Guard::default();
        let name: Name = "localhost".parse().unwrap();
        let refused = guard.call(name).await.unwrap_err();
        assert!(refused.to_string().contains("not public"), "{refused}");
        guard.allow_private.store(true, Ordering::Relaxed);
        let name: Name = "localhost".parse().unwrap();
        let addresses: Vec<SocketAddr> = guard.call(name).await.unwrap().collect();
        assert!(!addresses.is_empty());
        assert!(addresses.iter().all(|address| address.ip().is_loopback()), "{addresses:?}");
    }

    #[tokio::test]
    async fn the_client_is_built_with_the_mozilla_roots_or_one_more() {
        assert!(transport(&Guard::default(), None).is_ok());
        let refused = transport(&Guard::default(), Some(b"not a certificate")).unwrap_err();
        assert!(refused.contains("no TLS settings"), "{refused}");
    }
}
