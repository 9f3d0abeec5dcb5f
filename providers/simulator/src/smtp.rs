//! A real SMTP server on a local TCP port (RFC 5321: `EHLO`/`HELO`, `MAIL FROM`, `RCPT TO`,
//! `DATA` with dot-unstuffing, `RSET`, `NOOP`, `QUIT`, and optionally `AUTH PLAIN`) that
//! records every mail it accepts, envelope and parsed message; scriptable per recipient (an
//! unknown mailbox, a temporary failure, a dropped connection, a refused message); and a
//! helper that POSTs a `SendGrid` Inbound Parse form to a URL, as `SendGrid` does for inbound mail.
//!
//! The server speaks plain text, or offers `STARTTLS` (RFC 3207) and may require it before
//! anything else, or speaks TLS from the first byte (RFC 8314's implicit TLS, as on port 465).
//! Its TLS certificate is issued for `localhost` and 127.0.0.1 by a private root made when the
//! server starts: a client trusts that root ([`SmtpSimulator::root_certificate_der`]) as an
//! email channel's extra root, and nothing else does.
//!
//! Every connection has its own task; a mail is recorded under one short lock, so thousands
//! of mails a second go through.

use std::collections::HashMap;
// Writing to a `String` cannot fail, so its `fmt::Result`s are let go.
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use mail_parser::MessageParser;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;

/// The longest command line taken, and the largest message.
const LINE_MAX: usize = 64 * 1024;
const MESSAGE_MAX: usize = 32 * 1024 * 1024;

/// What the server does with one recipient. Unscripted recipients are accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum RecipientScript {
    #[default]
    Accept,
    /// `550 5.1.1 … User unknown` on `RCPT TO`.
    Unknown,
    /// `451 4.3.0 … try again later` on `RCPT TO`.
    Temporary,
    /// The connection is closed without a reply on `RCPT TO`.
    Drop,
    /// Accepted on `RCPT TO`, then `554 5.7.1 … rejected` after `DATA`.
    RejectMessage,
}

/// How the server protects its connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text only; `STARTTLS` is not offered.
    #[default]
    None,
    /// Plain text until the client sends `STARTTLS` (RFC 3207), which `EHLO` offers. When
    /// `required`, every command but `EHLO`, `NOOP`, `STARTTLS` and `QUIT` is answered
    /// `530 5.7.0 Must issue a STARTTLS command first` until then, and `AUTH` is not offered
    /// in the clear.
    StartTls { required: bool },
    /// TLS from the first byte (RFC 8314 §3.3): the greeting comes after the handshake.
    Implicit,
}

/// How a server starts.
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// (user, password): a mail needs `AUTH PLAIN` with them first.
    pub credentials: Option<(String, String)>,
    pub tls: SmtpTls,
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the port could not be bound: {0}")]
    Bind(#[source] io::Error),
    #[error("the TLS certificates could not be made: {0}")]
    Certificate(#[source] rcgen::Error),
    #[error("the TLS settings could not be built: {0}")]
    Tls(#[source] rustls::Error),
}

/// One accepted mail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceivedMail {
    /// `MAIL FROM` and `RCPT TO`, as given (without angle brackets).
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// Whether the mail came over TLS (after `STARTTLS`, or implicit).
    pub tls: bool,
    /// The message as received, dot-unstuffed.
    pub raw: Vec<u8>,
    pub subject: Option<String>,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc_header: Vec<String>,
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

#[derive(Debug, Default)]
struct Records {
    scripts: HashMap<String, RecipientScript>,
    mails: Vec<ReceivedMail>,
}

/// The running server. Dropping it does not stop it; [`SmtpSimulator::stop`] does.
#[derive(Clone, Debug)]
pub struct SmtpSimulator {
    address: SocketAddr,
    records: Arc<Mutex<Records>>,
    received: Arc<Notify>,
    credentials: Option<Arc<(String, String)>>,
    tls: SmtpTls,
    root_der: Option<Arc<[u8]>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl SmtpSimulator {
    /// Listens on a free loopback port, in plain text. With `credentials` (user, password) a
    /// mail needs `AUTH PLAIN` with them first.
    ///
    /// # Errors
    ///
    /// The port could not be bound.
    pub async fn start(credentials: Option<(&str, &str)>) -> io::Result<Self> {
        let credentials =
            credentials.map(|(user, password)| (user.to_owned(), password.to_owned()));
        Self::listen(credentials, SmtpTls::None, Protection::Plain, None).await
    }

    /// Listens on a free loopback port as `options` say. With TLS, a private root and the
    /// server's certificate are made first.
    ///
    /// # Errors
    ///
    /// See [`StartError`].
    pub async fn start_with(options: SmtpOptions) -> Result<Self, StartError> {
        let (protection, root_der) = match options.tls {
            SmtpTls::None => (Protection::Plain, None),
            SmtpTls::StartTls { required } => {
                let pki = Pki::new()?;
                (Protection::StartTls { required, acceptor: pki.acceptor }, Some(pki.root_der))
            }
            SmtpTls::Implicit => {
                let pki = Pki::new()?;
                (Protection::Implicit(pki.acceptor), Some(pki.root_der))
            }
        };
        Self::listen(options.credentials, options.tls, protection, root_der)
            .await
            .map_err(StartError::Bind)
    }

    async fn listen(
        credentials: Option<(String, String)>,
        tls: SmtpTls,
        protection: Protection,
        root_der: Option<Arc<[u8]>>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let records = Arc::new(Mutex::new(Records::default()));
        let received = Arc::new(Notify::new());
        let credentials = credentials.map(Arc::new);
        let server = Server {
            records: records.clone(),
            received: received.clone(),
            credentials: credentials.clone(),
            protection,
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let server = server.clone();
                tokio::spawn(async move {
                    // A connection's end, however it comes (a failed handshake included), is
                    // the client's business.
                    let _ = server.session(stream).await;
                });
            }
        });
        Ok(Self { address, records, received, credentials, tls, root_der, task: Arc::new(task) })
    }

    /// Where the server listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Whether the server asks for credentials.
    pub fn requires_auth(&self) -> bool {
        self.credentials.is_some()
    }

    /// How the server protects its connections.
    pub fn tls(&self) -> SmtpTls {
        self.tls
    }

    /// The private root (DER) that issued the server's certificate, for a client to trust;
    /// `None` in plain text.
    pub fn root_certificate_der(&self) -> Option<&[u8]> {
        self.root_der.as_deref()
    }

    /// Scripts one recipient address (compared without case).
    pub fn script(&self, recipient: &str, script: RecipientScript) {
        self.lock().scripts.insert(recipient.trim().to_ascii_lowercase(), script);
    }

    /// Every mail accepted so far, in order.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.lock().mails.clone()
    }

    /// Forgets scripts and mails.
    pub fn clear(&self) {
        let mut records = self.lock();
        records.scripts.clear();
        records.mails.clear();
    }

    /// Waits until at least `count` mails were accepted, or `deadline` passes; the mails.
    pub async fn wait_for(&self, count: usize, deadline: Duration) -> Vec<ReceivedMail> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let notified = self.received.notified();
            let mails = self.mails();
            if mails.len() >= count {
                return mails;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return self.mails();
            }
        }
    }

    /// Stops listening (open connections finish their session).
    pub fn stop(&self) {
        self.task.abort();
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A private root and the TLS server settings with a certificate it issued for `localhost`
/// and 127.0.0.1, made fresh for each server, so that only a client told to trust this
/// server's root does.
struct Pki {
    acceptor: TlsAcceptor,
    root_der: Arc<[u8]>,
}

impl Pki {
    fn new() -> Result<Self, StartError> {
        let mut root_params =
            CertificateParams::new(Vec::new()).map_err(StartError::Certificate)?;
        root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root_key = KeyPair::generate().map_err(StartError::Certificate)?;
        let root = root_params.self_signed(&root_key).map_err(StartError::Certificate)?;
        let issuer = Issuer::new(root_params, root_key);
        let server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(StartError::Certificate)?;
        let server_key = KeyPair::generate().map_err(StartError::Certificate)?;
        let server =
            server_params.signed_by(&server_key, &issuer).map_err(StartError::Certificate)?;
        // The ring provider named, as everywhere in the workspace, rather than a process-wide
        // default that another crate could install differently.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(StartError::Tls)?
            .with_no_client_auth()
            .with_single_cert(
                vec![server.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .map_err(StartError::Tls)?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            root_der: Arc::from(root.der().as_ref()),
        })
    }
}

/// What a server does about TLS, with the settings it needs for it.
#[derive(Clone)]
enum Protection {
    Plain,
    StartTls { required: bool, acceptor: TlsAcceptor },
    Implicit(TlsAcceptor),
}

#[derive(Clone)]
struct Server {
    records: Arc<Mutex<Records>>,
    received: Arc<Notify>,
    credentials: Option<Arc<(String, String)>>,
    protection: Protection,
}

/// A connection's bytes: plain TCP, or TLS over it.
enum Transport {
    Plain(TcpStream),
    // Boxed: a TLS session's state is large beside a socket's.
    Tls(Box<TlsStream<TcpStream>>),
}

/// A connection read line by line and written whole.
struct Connection {
    transport: Transport,
    buffer: Vec<u8>,
}

impl Connection {
    fn new(stream: TcpStream) -> Self {
        Self { transport: Transport::Plain(stream), buffer: Vec::new() }
    }

    fn is_tls(&self) -> bool {
        matches!(self.transport, Transport::Tls(_))
    }

    /// The next line without its CRLF (or bare LF); `None` at the end of the stream.
    async fn line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.buffer.len() > LINE_MAX {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            // Straight into the buffer: a chunk on the stack would be held across the await
            // and make every session's future that much larger.
            self.buffer.reserve(16 * 1024);
            let read = match &mut self.transport {
                Transport::Plain(stream) => stream.read_buf(&mut self.buffer).await?,
                Transport::Tls(stream) => stream.read_buf(&mut self.buffer).await?,
            };
            if read == 0 {
                return Ok(None);
            }
        }
    }

    async fn reply(&mut self, text: &str) -> io::Result<()> {
        match &mut self.transport {
            Transport::Plain(stream) => stream.write_all(text.as_bytes()).await,
            Transport::Tls(stream) => {
                stream.write_all(text.as_bytes()).await?;
                // rustls keeps what it encrypted until it is flushed.
                stream.flush().await
            }
        }
    }

    /// The TLS handshake, as the server, on a plain connection. What the client had sent
    /// before it and was not yet read is dropped: it came in the clear.
    async fn upgrade(self, acceptor: &TlsAcceptor) -> io::Result<Self> {
        match self.transport {
            Transport::Plain(stream) => {
                let stream = acceptor.accept(stream).await?;
                Ok(Self { transport: Transport::Tls(Box::new(stream)), buffer: Vec::new() })
            }
            Transport::Tls(_) => Err(io::Error::other("TLS is already on")),
        }
    }
}

/// Where a session stands.
#[derive(Default)]
struct Session {
    greeted: bool,
    authenticated: bool,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl Server {
    async fn session(&self, stream: TcpStream) -> io::Result<()> {
        let mut connection = Connection::new(stream);
        if let Protection::Implicit(acceptor) = &self.protection {
            connection = connection.upgrade(acceptor).await?;
        }
        connection.reply("220 hazina-simulator ESMTP ready\r\n").await?;
        let mut session = Session::default();
        while let Some(line) = connection.line().await? {
            let line = String::from_utf8_lossy(&line).into_owned();
            let (verb, argument) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            let argument = argument.trim();
            let verb = verb.to_ascii_uppercase();
            // RFC 3207 §4: a server that requires TLS answers every other command so until
            // the client has started it.
            if self.lacks_required_tls(&connection)
                && !matches!(verb.as_str(), "EHLO" | "NOOP" | "STARTTLS" | "QUIT")
            {
                connection.reply("530 5.7.0 Must issue a STARTTLS command first\r\n").await?;
                continue;
            }
            match verb.as_str() {
                "EHLO" => {
                    session = Session {
                        greeted: true,
                        authenticated: session.authenticated,
                        ..Session::default()
                    };
                    connection.reply(&self.ehlo(argument, &connection)).await?;
                }
                "HELO" => {
                    session = Session {
                        greeted: true,
                        authenticated: session.authenticated,
                        ..Session::default()
                    };
                    connection.reply("250 hazina-simulator\r\n").await?;
                }
                "STARTTLS" => match self.starttls(&connection, argument) {
                    Err(refusal) => connection.reply(refusal).await?,
                    Ok(acceptor) => {
                        connection.reply("220 2.0.0 Ready to start TLS\r\n").await?;
                        // Commands pipelined after STARTTLS came in the clear, where anyone on
                        // the path could have put them: they are dropped, not run inside TLS
                        // (the STARTTLS command injection of CVE-2011-0411). And RFC 3207
                        // §4.2: nothing learnt before the handshake counts, the greeting
                        // included.
                        connection = connection.upgrade(acceptor).await?;
                        session = Session::default();
                    }
                },
                "AUTH" => {
                    let reply = self.authenticate(&mut connection, argument, &mut session).await?;
                    connection.reply(reply).await?;
                }
                "MAIL" => {
                    let reply = if !session.greeted {
                        "503 5.5.1 Error: send HELO/EHLO first\r\n"
                    } else if self.credentials.is_some() && !session.authenticated {
                        "530 5.7.0 Authentication required\r\n"
                    } else if session.mail_from.is_some() {
                        "503 5.5.1 Error: nested MAIL command\r\n"
                    } else if let Some(address) = path(argument, "FROM:") {
                        session.mail_from = Some(address);
                        "250 2.1.0 Ok\r\n"
                    } else {
                        "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
                    };
                    connection.reply(reply).await?;
                }
                "RCPT" => {
                    match self.recipient(argument, &mut session) {
                        Some(reply) => connection.reply(&reply).await?,
                        // The script drops the connection.
                        None => return Ok(()),
                    }
                }
                "DATA" => {
                    if session.rcpt_to.is_empty() {
                        connection.reply("554 5.5.1 Error: no valid recipients\r\n").await?;
                        continue;
                    }
                    connection.reply("354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                    let Some(raw) = data(&mut connection).await? else { return Ok(()) };
                    let reply = self.accept(&mut session, raw, connection.is_tls());
                    connection.reply(&reply).await?;
                }
                "RSET" => {
                    session = Session {
                        greeted: session.greeted,
                        authenticated: session.authenticated,
                        ..Session::default()
                    };
                    connection.reply("250 2.0.0 Ok\r\n").await?;
                }
                "NOOP" => connection.reply("250 2.0.0 Ok\r\n").await?,
                "QUIT" => {
                    connection.reply("221 2.0.0 Bye\r\n").await?;
                    return Ok(());
                }
                _ => connection.reply("502 5.5.2 Error: command not recognized\r\n").await?,
            }
        }
        Ok(())
    }

    /// The reply to `EHLO <argument>`: the extensions the connection has now.
    fn ehlo(&self, argument: &str, connection: &Connection) -> String {
        let starttls = if self.offers_starttls(connection) { "250-STARTTLS\r\n" } else { "" };
        // No credentials go over a connection that is to be encrypted first.
        let auth = if self.credentials.is_some() && !self.lacks_required_tls(connection) {
            "250-AUTH PLAIN\r\n"
        } else {
            ""
        };
        format!(
            "250-hazina-simulator greets {argument}\r\n250-PIPELINING\r\n250-SIZE {MESSAGE_MAX}\r\n{starttls}250-8BITMIME\r\n{auth}250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
        )
    }

    /// What `STARTTLS <argument>` starts TLS with, or the refusal to send.
    fn starttls(
        &self,
        connection: &Connection,
        argument: &str,
    ) -> Result<&TlsAcceptor, &'static str> {
        let Protection::StartTls { acceptor, .. } = &self.protection else {
            // Not offered: a verb the server does not know.
            return Err("502 5.5.2 Error: command not recognized\r\n");
        };
        if connection.is_tls() {
            return Err("554 5.5.1 Error: TLS already active\r\n");
        }
        if !argument.is_empty() {
            return Err("501 5.5.4 Syntax: STARTTLS\r\n");
        }
        Ok(acceptor)
    }

    /// Whether the server requires TLS and the connection is still in the clear.
    fn lacks_required_tls(&self, connection: &Connection) -> bool {
        matches!(self.protection, Protection::StartTls { required: true, .. })
            && !connection.is_tls()
    }

    /// Whether `EHLO` offers `STARTTLS`: on a connection still in the clear, when it can start.
    fn offers_starttls(&self, connection: &Connection) -> bool {
        matches!(self.protection, Protection::StartTls { .. }) && !connection.is_tls()
    }

    /// The reply to `RCPT TO:<address>`, the recipient added when accepted; `None` when the
    /// connection is to be dropped.
    fn recipient(&self, argument: &str, session: &mut Session) -> Option<String> {
        let Some(address) = path(argument, "TO:") else {
            return Some("501 5.5.4 Syntax: RCPT TO:<address>\r\n".to_owned());
        };
        if session.mail_from.is_none() {
            return Some("503 5.5.1 Error: need MAIL command\r\n".to_owned());
        }
        Some(match self.script(&address) {
            RecipientScript::Accept | RecipientScript::RejectMessage => {
                session.rcpt_to.push(address);
                "250 2.1.5 Ok\r\n".to_owned()
            }
            RecipientScript::Unknown => format!(
                "550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table\r\n"
            ),
            RecipientScript::Temporary => {
                format!("451 4.3.0 <{address}>: Temporary lookup failure, try again later\r\n")
            }
            RecipientScript::Drop => return None,
        })
    }

    fn script(&self, address: &str) -> RecipientScript {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.scripts.get(&address.to_ascii_lowercase()).copied().unwrap_or_default()
    }

    /// `AUTH PLAIN [initial-response]`: checks `\0user\0password`.
    async fn authenticate(
        &self,
        connection: &mut Connection,
        argument: &str,
        session: &mut Session,
    ) -> io::Result<&'static str> {
        let Some(credentials) = &self.credentials else {
            return Ok("502 5.5.1 Error: authentication not enabled\r\n");
        };
        let (mechanism, initial) = argument.split_once(' ').unwrap_or((argument, ""));
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            return Ok("504 5.5.4 Unrecognized authentication type\r\n");
        }
        let response = if initial.is_empty() {
            connection.reply("334 \r\n").await?;
            match connection.line().await? {
                Some(line) => String::from_utf8_lossy(&line).into_owned(),
                None => return Ok("535 5.7.8 Error: authentication failed\r\n"),
            }
        } else {
            initial.to_owned()
        };
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(response.trim()).unwrap_or_default();
        let mut fields = decoded.split(|&b| b == 0).skip(1);
        let user = fields.next().unwrap_or_default();
        let password = fields.next().unwrap_or_default();
        if user == credentials.0.as_bytes() && password == credentials.1.as_bytes() {
            session.authenticated = true;
            Ok("235 2.7.0 Authentication successful\r\n")
        } else {
            Ok("535 5.7.8 Error: authentication failed\r\n")
        }
    }

    /// Records the mail (`tls`: whether it came over TLS) unless a recipient's script refuses
    /// it; the reply to send.
    fn accept(&self, session: &mut Session, raw: Vec<u8>, tls: bool) -> String {
        let mail_from = session.mail_from.take().unwrap_or_default();
        let rcpt_to = std::mem::take(&mut session.rcpt_to);
        let refused = rcpt_to.iter().any(|to| self.script(to) == RecipientScript::RejectMessage);
        if refused {
            return "554 5.7.1 Message rejected: content refused by policy\r\n".to_owned();
        }
        let mut mail = parse_mail(mail_from, rcpt_to, raw);
        mail.tls = tls;
        let queued = uuid::Uuid::now_v7().simple().to_string().to_ascii_uppercase();
        self.records.lock().unwrap_or_else(PoisonError::into_inner).mails.push(mail);
        self.received.notify_waiters();
        format!("250 2.0.0 Ok: queued as {}\r\n", &queued[20..])
    }
}

/// The address in `FROM:<a@b> SIZE=…` (after `prefix`), without brackets; `<>` is the empty
/// (bounce) path.
fn path(argument: &str, prefix: &str) -> Option<String> {
    let head = argument.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = argument[prefix.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(inner[..end].to_owned())
}

/// The message after `DATA`, up to the line holding a single dot, dot-unstuffed; `None` when
/// the connection ends first or the message is too large.
async fn data(connection: &mut Connection) -> io::Result<Option<Vec<u8>>> {
    let mut raw = Vec::new();
    while let Some(line) = connection.line().await? {
        if line == b"." {
            return Ok(Some(raw));
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if raw.len() + line.len() > MESSAGE_MAX {
            return Ok(None);
        }
        raw.extend_from_slice(line);
        raw.extend_from_slice(b"\r\n");
    }
    Ok(None)
}

fn parse_mail(mail_from: String, rcpt_to: Vec<String>, raw: Vec<u8>) -> ReceivedMail {
    let mut mail = ReceivedMail {
        mail_from,
        rcpt_to,
        tls: false,
        raw: Vec::new(),
        subject: None,
        from: Vec::new(),
        to: Vec::new(),
        cc: Vec::new(),
        bcc_header: Vec::new(),
        message_id: None,
        in_reply_to: None,
        references: Vec::new(),
        text: None,
        html: None,
    };
    if let Some(message) = MessageParser::default().parse(&raw) {
        let addresses = |address: Option<&mail_parser::Address<'_>>| -> Vec<String> {
            address
                .map(|address| {
                    address.iter().filter_map(|addr| addr.address().map(str::to_owned)).collect()
                })
                .unwrap_or_default()
        };
        let ids = |value: &mail_parser::HeaderValue<'_>| -> Vec<String> {
            match value {
                mail_parser::HeaderValue::Text(id) => vec![id.to_string()],
                mail_parser::HeaderValue::TextList(ids) => {
                    ids.iter().map(ToString::to_string).collect()
                }
                _ => Vec::new(),
            }
        };
        mail.subject = message.subject().map(str::to_owned);
        mail.from = addresses(message.from());
        mail.to = addresses(message.to());
        mail.cc = addresses(message.cc());
        mail.bcc_header = addresses(message.bcc());
        mail.message_id = message.message_id().map(str::to_owned);
        mail.in_reply_to = ids(message.in_reply_to()).into_iter().next();
        mail.references = ids(message.references());
        // Only parts that are of the type: the reader converts one body into the other when a
        // message lacks it, and the records say what was sent.
        mail.html = message
            .parts
            .iter()
            .find(|part| part.is_text_html())
            .and_then(|part| part.text_contents().map(str::to_owned));
        mail.text = message
            .parts
            .iter()
            .find(|part| part.is_text() && !part.is_text_html())
            .and_then(|part| part.text_contents().map(str::to_owned));
    }
    mail.raw = raw;
    mail
}

// =============================================================================================
// Inbound: `SendGrid` Inbound Parse
// =============================================================================================

/// A mail a customer sends us, to be posted as `SendGrid`'s Inbound Parse form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboundMail {
    /// The customer's address (envelope sender and `From`).
    pub from: String,
    /// Our address (envelope recipient and `To`).
    pub to: String,
    pub cc: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// Without angle brackets; one is made up when `None`.
    pub message_id: Option<String>,
    /// The Message-ID of ours it answers, without angle brackets.
    pub in_reply_to: Option<String>,
}

/// The boundary `SendGrid`'s parser uses.
pub const INBOUND_BOUNDARY: &str = "xYzZY";

/// The `multipart/form-data` body `SendGrid`'s Inbound Parse posts for `mail`, with the
/// Content-Type that goes with it: the fields `headers`, `dkim`, `to`, `html`, `from`, `text`,
/// `sender_ip`, `envelope`, `attachments`, `subject`, `charsets`, `SPF` and `spam_score`.
pub fn inbound_parse_form(mail: &InboundMail) -> (String, Vec<u8>) {
    let message_id = mail
        .message_id
        .clone()
        .unwrap_or_else(|| format!("{}@customer.simulator", uuid::Uuid::now_v7().simple()));
    let mut headers = format!(
        "Received: by mx.simulator with SMTP id sim\nDate: {}\nFrom: {}\nTo: {}\n",
        chrono::Utc::now().to_rfc2822(),
        mail.from,
        mail.to
    );
    if !mail.cc.is_empty() {
        let _ = writeln!(headers, "Cc: {}", mail.cc.join(", "));
    }
    let _ = write!(headers, "Message-ID: <{message_id}>\nSubject: {}\n", mail.subject);
    if let Some(reply) = &mail.in_reply_to {
        let _ = write!(headers, "In-Reply-To: <{reply}>\nReferences: <{reply}>\n");
    }
    headers.push_str("MIME-Version: 1.0\n");
    let envelope = serde_json::json!({"to": [mail.to], "from": mail.from}).to_string();
    let mut fields: Vec<(&str, String)> = vec![
        ("headers", headers),
        ("dkim", "{@customer.simulator : pass}".to_owned()),
        ("to", mail.to.clone()),
    ];
    if let Some(html) = &mail.html {
        fields.push(("html", html.clone()));
    }
    fields.push(("from", mail.from.clone()));
    if !mail.cc.is_empty() {
        fields.push(("cc", mail.cc.join(", ")));
    }
    fields.extend([
        ("text", mail.text.clone()),
        ("sender_ip", "127.0.0.1".to_owned()),
        ("envelope", envelope),
        ("attachments", "0".to_owned()),
        ("subject", mail.subject.clone()),
        (
            "charsets",
            r#"{"to":"UTF-8","html":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"UTF-8"}"#
                .to_owned(),
        ),
        ("SPF", "pass".to_owned()),
        ("spam_score", "0.1".to_owned()),
    ]);
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{INBOUND_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{INBOUND_BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={INBOUND_BOUNDARY}"), body)
}

/// POSTs `mail` as an Inbound Parse form to `url` (`http://` only); the status and the
/// answer's text.
///
/// # Errors
///
/// No answer (the text says why).
pub async fn post_inbound(url: &str, mail: &InboundMail) -> Result<(u16, String), String> {
    let (content_type, body) = inbound_parse_form(mail);
    crate::telegram::post_bytes(url, &content_type, None, body).await
}
