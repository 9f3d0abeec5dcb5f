//! The HTTP client over TLS, against a TLS server on the loopback with a certificate chain made
//! at test time: a private root, trusted only when the client is told to, and a server
//! certificate it issued for `localhost` and 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use hazina_providers::Secret;
use hazina_providers::http::{HeaderText, HttpClient, HttpError, HttpRequest, TlsConfig};
use hazina_providers::momo_client::ClientError;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A private root and a TLS server configuration with a certificate that root issued.
struct Pki {
    root_der: CertificateDer<'static>,
    acceptor: TlsAcceptor,
}

impl Pki {
    fn new() -> Self {
        let mut root_params = CertificateParams::new(Vec::new()).unwrap();
        root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root_key = KeyPair::generate().unwrap();
        let root = root_params.self_signed(&root_key).unwrap();
        let issuer = Issuer::new(root_params, root_key);

        let server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = server_params.signed_by(&server_key, &issuer).unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![server.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self { root_der: root.der().clone(), acceptor: TlsAcceptor::from(Arc::new(config)) }
    }
}

/// What the server saw of the one connection it served.
#[derive(Debug)]
struct Seen {
    server_name: Option<String>,
    alpn: Option<Vec<u8>>,
    head: String,
}

/// Accepts one connection, completes the TLS handshake, reads one request head and answers
/// `200 hello`.
async fn serve_one(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Seen> {
    let (tcp, _) = listener.accept().await?;
    let mut tls = acceptor.accept(tcp).await?;
    let (_, connection) = tls.get_ref();
    let server_name = connection.server_name().map(str::to_owned);
    let alpn = connection.alpn_protocol().map(<[u8]>::to_vec);
    let mut head = Vec::new();
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let mut buffer = [0; 1024];
        let read = tls.read(&mut buffer).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buffer[..read]);
    }
    tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello")
        .await?;
    tls.flush().await?;
    Ok(Seen { server_name, alpn, head: String::from_utf8(head).unwrap() })
}

const TOKEN: &str = "Bearer do-not-print-me";

fn get(url: String) -> HttpRequest {
    HttpRequest {
        method: hyper::Method::GET,
        url,
        headers: vec![("authorization", HeaderText::Secret(Secret::new(TOKEN)))],
        body: None,
    }
}

/// A deadline for a test that would otherwise hang if the client's own deadline did not apply;
/// far longer than any of the client's.
const TEST_DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_get_over_https_reads_status_and_body_when_the_root_is_trusted() {
    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_one(listener, pki.acceptor.clone()));
    let tls = TlsConfig::with_extra_root(&pki.root_der).unwrap();
    let client = HttpClient { timeout: Duration::from_secs(10) };

    let url = format!("https://localhost:{port}/v1/ping?x=1");
    let response = tokio::time::timeout(TEST_DEADLINE, client.send_with_tls(&tls, get(url)))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "hello");
    let seen = server.await.unwrap().unwrap();
    assert_eq!(seen.server_name.as_deref(), Some("localhost"));
    assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert!(seen.head.starts_with("GET /v1/ping?x=1 HTTP/1.1\r\n"), "{}", seen.head);
    let head = seen.head.to_ascii_lowercase();
    assert!(head.contains(&format!("\r\nhost: localhost:{port}\r\n")), "{}", seen.head);
    assert!(head.contains(&format!("\r\nauthorization: {}\r\n", TOKEN.to_ascii_lowercase())));
}

#[tokio::test]
async fn an_ip_address_is_checked_against_the_certificate_too() {
    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_one(listener, pki.acceptor.clone()));
    let tls = TlsConfig::with_extra_root(&pki.root_der).unwrap();
    let client = HttpClient { timeout: Duration::from_secs(10) };

    let url = format!("https://127.0.0.1:{port}/");
    let response = tokio::time::timeout(TEST_DEADLINE, client.send_with_tls(&tls, get(url)))
        .await
        .unwrap()
        .unwrap();

    assert_eq!((response.status, response.text().as_str()), (200, "hello"));
    // No SNI for an address: the certificate's IP address entry is what matched.
    assert_eq!(server.await.unwrap().unwrap().server_name, None);
}

#[tokio::test]
async fn the_default_client_refuses_an_unknown_issuer_and_sends_nothing() {
    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_one(listener, pki.acceptor.clone()));
    let client = HttpClient { timeout: Duration::from_secs(10) };

    let url = format!("https://localhost:{port}/v1/pay");
    let error = tokio::time::timeout(TEST_DEADLINE, client.send(get(url)))
        .await
        .unwrap()
        .expect_err("a private root is not among the Mozilla roots");

    let HttpError::Tls(io) = &error else { panic!("not a TLS error: {error:?}") };
    let cause = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    assert_eq!(
        cause,
        Some(&rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)),
        "{io:?}"
    );
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains("do-not-print-me"), "{shown}");
    }
    // The client's alert ends the server's handshake: no request ever reached it.
    assert!(server.await.unwrap().is_err());
    assert!(matches!(ClientError::from(error), ClientError::NotSent(_)));
}

#[tokio::test]
async fn the_deadline_covers_a_tls_handshake_that_never_completes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let timeout = Duration::from_millis(200);
    let client = HttpClient { timeout };

    // The server accepts the TCP connection and holds it open, never answering the ClientHello.
    let url = format!("https://localhost:{port}/");
    let (accepted, result) = tokio::time::timeout(TEST_DEADLINE, async {
        tokio::join!(listener.accept(), client.send(get(url)))
    })
    .await
    .unwrap();
    let _silent = accepted.unwrap();

    assert!(matches!(result, Err(HttpError::Timeout(after)) if after == timeout), "{result:?}");
}
