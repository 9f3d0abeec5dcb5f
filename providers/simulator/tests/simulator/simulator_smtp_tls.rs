//! The SMTP simulator's `STARTTLS` (RFC 3207) and implicit TLS (RFC 8314) over real loopback
//! sockets: the providers' lettre sender in both modes, trusting the simulator's private root
//! as an email channel's extra root; what is refused in the clear, without `STARTTLS` or under
//! the wrong root, with nothing recorded; and the conversation itself, byte by byte.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hazina_providers::Secret;
use hazina_providers::email::{SmtpConfig, SmtpSender, TlsMode};
use hazina_providers::messaging::{DeliveryStatus, Email, SendResult};
use hazina_simulator::smtp::{SmtpOptions, SmtpSimulator, SmtpTls};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use super::common::DEADLINE;

const US: &str = "Hazina <statements@hazina.example>";

async fn simulator(tls: SmtpTls, credentials: Option<(&str, &str)>) -> SmtpSimulator {
    let credentials = credentials.map(|(user, password)| (user.to_owned(), password.to_owned()));
    SmtpSimulator::start_with(SmtpOptions { credentials, tls }).await.unwrap()
}

/// A sender to `sim` at `host` in `tls` mode, trusting `root` beside the Mozilla roots.
fn sender(sim: &SmtpSimulator, host: &str, tls: TlsMode, root: Option<&[u8]>) -> SmtpSender {
    let mut config = SmtpConfig::plain(host, sim.address().port());
    config.tls = tls;
    config.extra_root_der = root.map(<[u8]>::to_vec);
    config.timeout = Duration::from_secs(5);
    SmtpSender::new(&config).unwrap()
}

fn email(subject: &str) -> Email {
    Email {
        subject: subject.to_owned(),
        plain: "Your statement is attached.".to_owned(),
        html: None,
        cc: Vec::new(),
        bcc: Vec::new(),
    }
}

/// The Message-ID an accepted send was given.
fn accepted(result: &SendResult) -> String {
    match result {
        SendResult::Accepted {
            provider_message_id: Some(id),
            status: DeliveryStatus::Sent,
            ..
        } => id.clone(),
        _ => panic!("not sent: {result:?}"),
    }
}

#[tokio::test]
async fn starttls_upgrades_then_authenticates_and_the_mails_are_recorded() {
    let sim = simulator(SmtpTls::StartTls { required: true }, Some(("hazina", "s3cret"))).await;
    let mut config = SmtpConfig::plain("127.0.0.1", sim.address().port());
    config.tls = TlsMode::StartTls;
    config.extra_root_der = sim.root_certificate_der().map(<[u8]>::to_vec);
    config.username = Some("hazina".to_owned());
    config.password = Some(Secret::new("s3cret"));
    config.timeout = Duration::from_secs(5);
    let sender = SmtpSender::new(&config).unwrap();

    // Two mails: the second goes over the pooled connection, still encrypted.
    let first = accepted(&sender.send(US, "jane@customer.example", &email("First"), None).await);
    let second = accepted(&sender.send(US, "john@customer.example", &email("Second"), None).await);

    let mails = sim.wait_for(2, DEADLINE).await;
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().all(|mail| mail.tls), "a mail came in the clear");
    assert_eq!(mails[0].message_id.as_deref(), Some(first.as_str()));
    assert_eq!(mails[0].rcpt_to, ["jane@customer.example"]);
    assert_eq!(mails[0].subject.as_deref(), Some("First"));
    assert_eq!(mails[1].message_id.as_deref(), Some(second.as_str()));
    assert_eq!(mails[1].mail_from, "statements@hazina.example");
}

#[tokio::test]
async fn implicit_tls_carries_the_mail_from_the_first_byte() {
    let sim = simulator(SmtpTls::Implicit, None).await;
    assert_eq!(sim.tls(), SmtpTls::Implicit);
    // By name this time: the certificate is checked against `localhost` as well as 127.0.0.1.
    let sender = sender(&sim, "localhost", TlsMode::Implicit, sim.root_certificate_der());
    let id = accepted(&sender.send(US, "jane@customer.example", &email("Implicit"), None).await);
    let mails = sim.wait_for(1, DEADLINE).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls);
    assert_eq!(mails[0].message_id.as_deref(), Some(id.as_str()));
    assert_eq!(mails[0].text.as_deref().map(str::trim_end), Some("Your statement is attached."));
}

#[tokio::test]
async fn a_client_in_the_clear_is_refused_where_starttls_is_required() {
    let sim = simulator(SmtpTls::StartTls { required: true }, None).await;
    let plain = sender(&sim, "127.0.0.1", TlsMode::None, None);
    let refused = plain.send(US, "jane@customer.example", &email("Clear"), None).await;
    // `530`: the channel's settings are at fault, not the customer.
    assert!(
        matches!(refused, SendResult::Refused { status: DeliveryStatus::ApplicationError, .. }),
        "{refused:?}"
    );
    assert!(sim.mails().is_empty());

    // Where STARTTLS is only offered, both go through, and the records say which was which.
    let optional = simulator(SmtpTls::StartTls { required: false }, None).await;
    let plain = sender(&optional, "127.0.0.1", TlsMode::None, None);
    accepted(&plain.send(US, "jane@customer.example", &email("Clear"), None).await);
    let tls = sender(&optional, "127.0.0.1", TlsMode::StartTls, optional.root_certificate_der());
    accepted(&tls.send(US, "jane@customer.example", &email("Secret"), None).await);
    let mails = optional.wait_for(2, DEADLINE).await;
    let seen: Vec<_> = mails.iter().map(|mail| (mail.subject.as_deref(), mail.tls)).collect();
    assert_eq!(seen, [(Some("Clear"), false), (Some("Secret"), true)]);
}

#[tokio::test]
async fn a_starttls_client_does_not_fall_back_to_the_clear() {
    let sim = SmtpSimulator::start(None).await.unwrap();
    assert_eq!(sim.tls(), SmtpTls::None);
    assert!(sim.root_certificate_der().is_none());
    let other = simulator(SmtpTls::StartTls { required: false }, None).await;
    let sender = sender(&sim, "127.0.0.1", TlsMode::StartTls, other.root_certificate_der());
    let result = sender.send(US, "jane@customer.example", &email("Downgraded"), None).await;
    // Refused outright: asking again would meet the same server.
    assert!(matches!(result, SendResult::Refused { .. }), "{result:?}");
    assert!(sim.mails().is_empty());
}

#[tokio::test]
async fn a_client_with_the_wrong_root_fails_the_handshake_and_nothing_is_recorded() {
    for (tls, mode) in [
        (SmtpTls::StartTls { required: true }, TlsMode::StartTls),
        (SmtpTls::Implicit, TlsMode::Implicit),
    ] {
        let sim = simulator(tls, None).await;
        // Another simulator's root: a real CA, but not the one that issued this certificate.
        let stranger = simulator(tls, None).await;
        assert_ne!(sim.root_certificate_der(), stranger.root_certificate_der());
        for root in [stranger.root_certificate_der(), None] {
            let sender = sender(&sim, "127.0.0.1", mode, root);
            let result = sender.send(US, "jane@customer.example", &email("Spoofed"), None).await;
            assert!(matches!(result, SendResult::Retry { .. }), "{mode:?}: {result:?}");
        }
        assert!(sim.mails().is_empty(), "{mode:?}");
        // The right root on the same server goes through: the root was what failed.
        let sender = sender(&sim, "127.0.0.1", mode, sim.root_certificate_der());
        accepted(&sender.send(US, "jane@customer.example", &email("Trusted"), None).await);
        assert_eq!(sim.wait_for(1, DEADLINE).await.len(), 1, "{mode:?}");
    }
}

/// Writes `text` and reads one reply, every line of a multi-line one.
async fn exchange<S>(stream: &mut BufReader<S>, text: &str) -> String
where
    S: AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.get_mut().write_all(text.as_bytes()).await.unwrap();
    stream.get_mut().flush().await.unwrap();
    read_reply(stream).await
}

async fn read_reply<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) -> String {
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        let read = tokio::time::timeout(DEADLINE, stream.read_line(&mut line)).await.unwrap();
        assert!(read.unwrap() > 0, "the server hung up after {reply:?}");
        reply.push_str(&line);
        // The last line of a reply has a space after its code, the others a hyphen.
        if line.as_bytes().get(3) != Some(&b'-') {
            return reply;
        }
    }
}

#[tokio::test]
async fn the_conversation_follows_rfc_3207_and_drops_commands_injected_before_the_handshake() {
    let sim = simulator(SmtpTls::StartTls { required: true }, Some(("hazina", "s3cret"))).await;
    let tcp = TcpStream::connect(sim.address()).await.unwrap();
    let mut clear = BufReader::new(tcp);
    assert!(read_reply(&mut clear).await.starts_with("220 "));

    let ehlo = exchange(&mut clear, "EHLO client.example\r\n").await;
    assert!(ehlo.contains("\r\n250-STARTTLS\r\n"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "credentials offered in the clear: {ehlo}");
    for command in ["MAIL FROM:<jane@customer.example>\r\n", "AUTH PLAIN\r\n", "HELO x\r\n"] {
        let refused = exchange(&mut clear, command).await;
        assert_eq!(refused, "530 5.7.0 Must issue a STARTTLS command first\r\n", "{command}");
    }
    assert_eq!(exchange(&mut clear, "NOOP\r\n").await, "250 2.0.0 Ok\r\n");
    assert!(exchange(&mut clear, "STARTTLS now\r\n").await.starts_with("501 "));
    // A command pipelined behind STARTTLS, as a man in the middle would slip one in.
    let ready = exchange(&mut clear, "STARTTLS\r\nMAIL FROM:<injected@attacker.example>\r\n").await;
    assert_eq!(ready, "220 2.0.0 Ready to start TLS\r\n");

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(sim.root_certificate_der().unwrap().to_vec())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = TlsConnector::from(Arc::new(config)).connect(name, clear.into_inner()).await.unwrap();
    let mut secret = BufReader::new(tls);

    // The injected MAIL was dropped: the first reply inside TLS answers our EHLO, which offers
    // AUTH now and STARTTLS no more.
    let ehlo = exchange(&mut secret, "EHLO client.example\r\n").await;
    assert!(ehlo.starts_with("250-hazina-simulator greets client.example\r\n"), "{ehlo}");
    assert!(ehlo.contains("\r\n250-AUTH PLAIN\r\n"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(
        exchange(&mut secret, "STARTTLS\r\n").await,
        "554 5.5.1 Error: TLS already active\r\n"
    );
    let login = base64::engine::general_purpose::STANDARD.encode("\0hazina\0s3cret");
    assert!(exchange(&mut secret, &format!("AUTH PLAIN {login}\r\n")).await.starts_with("235 "));
    let mail_from = exchange(&mut secret, "MAIL FROM:<statements@hazina.example>\r\n").await;
    assert_eq!(mail_from, "250 2.1.0 Ok\r\n");
    assert!(exchange(&mut secret, "RCPT TO:<jane@customer.example>\r\n").await.starts_with("250 "));
    assert!(exchange(&mut secret, "DATA\r\n").await.starts_with("354 "));
    let message = "Subject: Over TLS\r\nMessage-ID: <wire-1@hazina.example>\r\n\r\nHello.\r\n.\r\n";
    assert!(exchange(&mut secret, message).await.starts_with("250 2.0.0 Ok: queued as "));
    assert!(exchange(&mut secret, "QUIT\r\n").await.starts_with("221 "));

    let mails = sim.wait_for(1, DEADLINE).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].mail_from, "statements@hazina.example");
    assert_eq!(mails[0].message_id.as_deref(), Some("wire-1@hazina.example"));
    assert!(mails[0].tls);
}
