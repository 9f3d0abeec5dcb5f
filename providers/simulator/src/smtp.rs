//! A real SMTP server on a local TCP port (RFC 5321: `EHLO`/`HELO`, `MAIL FROM`, `RCPT TO`,
//! `DATA` with dot-unstuffing, `RSET`, `NOOP`, `QUIT`, and optionally `AUTH PLAIN`) that
//! records every mail it accepts, envelope and parsed message; scriptable per recipient (an
//! unknown mailbox, a temporary failure, a dropped connection, a refused message); and a
//! helper that POSTs a `SendGrid` Inbound Parse form to a URL, as `SendGrid` does for inbound mail.
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
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

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

/// One accepted mail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceivedMail {
    /// `MAIL FROM` and `RCPT TO`, as given (without angle brackets).
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
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
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl SmtpSimulator {
    /// Listens on a free loopback port. With `credentials` (user, password) a mail needs
    /// `AUTH PLAIN` with them first.
    ///
    /// # Errors
    ///
    /// The port could not be bound.
    pub async fn start(credentials: Option<(&str, &str)>) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let records = Arc::new(Mutex::new(Records::default()));
        let received = Arc::new(Notify::new());
        let credentials =
            credentials.map(|(user, password)| Arc::new((user.to_owned(), password.to_owned())));
        let server = Server {
            records: records.clone(),
            received: received.clone(),
            credentials: credentials.clone(),
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let server = server.clone();
                tokio::spawn(async move {
                    // A connection's end, however it comes, is the client's business.
                    let _ = server.session(stream).await;
                });
            }
        });
        Ok(Self { address, records, received, credentials, task: Arc::new(task) })
    }

    /// Where the server listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Whether the server asks for credentials.
    pub fn requires_auth(&self) -> bool {
        self.credentials.is_some()
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

#[derive(Clone)]
struct Server {
    records: Arc<Mutex<Records>>,
    received: Arc<Notify>,
    credentials: Option<Arc<(String, String)>>,
}

/// A connection read line by line and written whole (with the `net` feature's readiness
/// calls, so the crate needs no more of tokio than it has).
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
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
            self.stream.readable().await?;
            let mut chunk = [0_u8; 16 * 1024];
            match self.stream.try_read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(read) => self.buffer.extend_from_slice(&chunk[..read]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
    }

    async fn reply(&mut self, text: &str) -> io::Result<()> {
        let mut bytes = text.as_bytes();
        while !bytes.is_empty() {
            self.stream.writable().await?;
            match self.stream.try_write(bytes) {
                Ok(written) => bytes = &bytes[written..],
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
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
        let mut connection = Connection { stream, buffer: Vec::new() };
        connection.reply("220 hazina-simulator ESMTP ready\r\n").await?;
        let mut session = Session::default();
        while let Some(line) = connection.line().await? {
            let line = String::from_utf8_lossy(&line).into_owned();
            let (verb, argument) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            let argument = argument.trim();
            match verb.to_ascii_uppercase().as_str() {
                "EHLO" => {
                    session = Session {
                        greeted: true,
                        authenticated: session.authenticated,
                        ..Session::default()
                    };
                    let auth = if self.credentials.is_some() { "250-AUTH PLAIN\r\n" } else { "" };
                    connection
                        .reply(&format!(
                            "250-hazina-simulator greets {argument}\r\n250-PIPELINING\r\n250-SIZE {MESSAGE_MAX}\r\n250-8BITMIME\r\n{auth}250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
                        ))
                        .await?;
                }
                "HELO" => {
                    session = Session {
                        greeted: true,
                        authenticated: session.authenticated,
                        ..Session::default()
                    };
                    connection.reply("250 hazina-simulator\r\n").await?;
                }
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
                    let reply = self.accept(&mut session, raw);
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

    /// Records the mail unless a recipient's script refuses it; the reply to send.
    fn accept(&self, session: &mut Session, raw: Vec<u8>) -> String {
        let mail_from = session.mail_from.take().unwrap_or_default();
        let rcpt_to = std::mem::take(&mut session.rcpt_to);
        let refused = rcpt_to.iter().any(|to| self.script(to) == RecipientScript::RejectMessage);
        if refused {
            return "554 5.7.1 Message rejected: content refused by policy\r\n".to_owned();
        }
        let mail = parse_mail(mail_from, rcpt_to, raw);
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
