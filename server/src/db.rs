//! Database connections: the pool the server runs on, one-off connections and migrations.

use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{
    HookError, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls;

/// Pooled connections older than this are closed instead of reused. The reason is plans, not
/// leaks: a connection caches the plans of its prepared statements, and a plan made while a
/// table was nearly empty (right after start) stays a bad plan once the table has grown.
pub const CONNECTION_LIFETIME_MAX: Duration = Duration::from_secs(30 * 60);

/// How long `pool.get()` waits for a free connection, or for a new one to be made.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// How every connection to the database behaves: how long connecting may take, how a dead
/// peer is noticed, and how long one statement may run. `None` keeps what the connection
/// string says (or the driver's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Gives up connecting (per host) after this long; the connection string's
    /// `connect_timeout` wins when it has one.
    pub connect_timeout: Duration,
    /// TCP keepalive probes start after this long idle, then every third of it, and three
    /// unanswered probes end the connection: a database host that vanished (power, network) is
    /// noticed within twice this, instead of the kernel's two hours.
    pub keepalive_idle: Duration,
    /// The server cancels a statement that runs longer (PostgreSQL's `statement_timeout`),
    /// so that a stuck query frees its connection and locks.
    pub statement_timeout: Option<Duration>,
    /// The server gives up waiting for a lock after this long (PostgreSQL's `lock_timeout`),
    /// so that a batch stuck behind a held lock fails (its waiters learn the outcome by
    /// replaying) instead of holding its writer, and every org behind it, indefinitely.
    pub lock_timeout: Option<Duration>,
}

impl Default for ConnectionSettings {
    /// The defaults for a payments API: 5 s to connect, keepalive after 15 s idle, statements
    /// cancelled after 10 s (the batch path takes milliseconds; reports over years of entries
    /// are the slowest statements and stay well under it).
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            keepalive_idle: Duration::from_secs(15),
            statement_timeout: Some(Duration::from_secs(10)),
            lock_timeout: Some(Duration::from_secs(2)),
        }
    }
}

impl ConnectionSettings {
    /// `config` with these settings applied: the connect timeout (unless the connection string
    /// set one), keepalives, and the statement timeout as a startup option (`-c
    /// statement_timeout=…`), added to the string's own `options`.
    pub fn apply(&self, mut config: Config) -> Config {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.connect_timeout);
        }
        let idle = self.keepalive_idle.max(Duration::from_secs(1));
        config
            .keepalives(true)
            .keepalives_idle(idle)
            .keepalives_interval((idle / 3).max(Duration::from_secs(1)))
            .keepalives_retries(3);
        for (name, timeout) in
            [("statement_timeout", self.statement_timeout), ("lock_timeout", self.lock_timeout)]
        {
            let Some(timeout) = timeout else { continue };
            let option = format!("-c {name}={}", timeout.as_millis().max(1));
            let options = match config.get_options() {
                Some(existing) if !existing.trim().is_empty() => format!("{existing} {option}"),
                _ => option,
            };
            config.options(options);
        }
        config
    }
}

/// A failure to reach or prepare the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The connection string does not parse (the message never repeats it: it may hold a
    /// password).
    #[error("DATABASE_URL is not a valid PostgreSQL connection string")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// The pool's settings were refused.
    #[error("could not build the connection pool")]
    Pool(#[source] deadpool_postgres::BuildError),
    /// The server could not be reached, or refused the connection.
    #[error("could not connect to the database")]
    Connect(#[source] tokio_postgres::Error),
    /// The TLS settings could not be put together (an unreadable `sslrootcert`, say).
    #[error("could not set up TLS for the database: {0}")]
    Tls(String),
    /// A migration failed.
    #[error("could not apply the migrations")]
    Migrate(#[source] hazina_ledger::store::StoreError),
    /// The application role could not be made or granted its privileges.
    #[error("could not grant the application role its privileges")]
    Grant(#[source] tokio_postgres::Error),
}

/// Parses a connection string, either a URL (`postgresql://user@host/db`) or key-value pairs
/// (`host=/run/postgresql dbname=hazina`). A string asking to verify the server's certificate
/// (`sslmode=verify-full`) is refused here, because a bare [`Config`] cannot carry that: use
/// [`parse_target`].
pub fn parse_url(url: &str) -> Result<Config, DbError> {
    let target = parse_target(url)?;
    if let Tls::VerifyFull { .. } = target.tls {
        return Err(DbError::Tls(
            "sslmode=verify-full needs parse_target (a bare Config cannot carry it)".into(),
        ));
    }
    Ok(target.config)
}

/// How connections to the database are encrypted, from the connection string's `sslmode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// No TLS: `sslmode=disable`, `prefer` or none. (`prefer` would try TLS first in libpq;
    /// here it means plain, as before TLS support, so that a local socket is never slowed.)
    Off,
    /// TLS required, the server's certificate not checked: `sslmode=require`, as libpq does
    /// it without a root certificate. Protects against eavesdropping, not impersonation.
    Require,
    /// TLS with the certificate checked against `sslrootcert` (a PEM file) or, without one,
    /// the Mozilla roots, and the host name checked against it: `sslmode=verify-full` (and
    /// `verify-ca`, checked as strictly).
    VerifyFull { root_cert: Option<PathBuf> },
}

impl Tls {
    /// What a parsed [`Config`] asks for on its own: `require` when its `sslmode` says so.
    pub fn of(config: &Config) -> Self {
        match config.get_ssl_mode() {
            SslMode::Require => Self::Require,
            _ => Self::Off,
        }
    }

    /// The rustls connector for this mode, `None` for [`Tls::Off`].
    fn connector(&self) -> Result<Option<MakeRustlsConnect>, DbError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|error| DbError::Tls(error.to_string()))?;
        let config = match self {
            Self::Off => return Ok(None),
            Self::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth(),
            Self::VerifyFull { root_cert } => {
                let mut roots = rustls::RootCertStore::empty();
                match root_cert {
                    Some(path) => {
                        use rustls::pki_types::pem::PemObject as _;
                        let failed = |error: &dyn std::fmt::Display| {
                            DbError::Tls(format!("sslrootcert {}: {error}", path.display()))
                        };
                        for cert in rustls::pki_types::CertificateDer::pem_file_iter(path)
                            .map_err(|e| failed(&e))?
                        {
                            roots.add(cert.map_err(|e| failed(&e))?).map_err(|e| failed(&e))?;
                        }
                    }
                    None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        Ok(Some(MakeRustlsConnect::new(config)))
    }
}

/// `sslmode=require`'s verifier: any certificate is accepted, but the handshake's signatures
/// are still checked against it, so the session is encrypted to whoever holds its key.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A parsed connection string and how to encrypt it.
#[derive(Debug, Clone)]
pub struct Target {
    pub config: Config,
    pub tls: Tls,
}

/// Parses a connection string (see [`parse_url`]), with libpq's `sslmode=verify-full` and
/// `verify-ca` and its `sslrootcert`, which the driver's parser does not know: they are taken
/// out of the string first (key-value form: only unquoted `key=value` pairs).
pub fn parse_target(url: &str) -> Result<Target, DbError> {
    let (rest, mode, root_cert) = take_tls_options(url);
    let config = Config::from_str(&rest).map_err(DbError::InvalidUrl)?;
    let tls = match mode.as_deref() {
        Some("verify-full" | "verify-ca") => {
            Tls::VerifyFull { root_cert: root_cert.map(PathBuf::from) }
        }
        _ => Tls::of(&config),
    };
    Ok(Target { config, tls })
}

/// `url` without its `sslrootcert`, and with `sslmode=verify-*` turned into `require` (which
/// the driver knows), plus the `sslmode` and `sslrootcert` that were there.
fn take_tls_options(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root_cert) = (None, None);
    let mut keep = |key: &str, value: &str| -> Option<String> {
        match key {
            "sslrootcert" => {
                root_cert = Some(value.to_owned());
                None
            }
            "sslmode" => {
                mode = Some(value.to_owned());
                Some(if value.starts_with("verify-") { "require".into() } else { value.into() })
            }
            _ => Some(value.to_owned()),
        }
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else { return (url.to_owned(), None, None) };
        let params: Vec<String> = query
            .split('&')
            .filter_map(|pair| match pair.split_once('=') {
                Some((key, value)) => {
                    let decoded = percent_decode(value);
                    keep(key, &decoded).map(|kept| {
                        if kept == decoded { pair.to_owned() } else { format!("{key}={kept}") }
                    })
                }
                None => Some(pair.to_owned()),
            })
            .collect();
        let rest = if params.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", params.join("&"))
        };
        return (rest, mode, root_cert);
    }
    let words: Vec<String> = url
        .split_whitespace()
        .filter_map(|word| match word.split_once('=') {
            Some((key, value)) if !value.starts_with('\'') => {
                keep(key, value).map(|kept| format!("{key}={kept}"))
            }
            _ => Some(word.to_owned()),
        })
        .collect();
    (words.join(" "), mode, root_cert)
}

/// `%XX` escapes decoded (a URL's query values); anything malformed is left as it is.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(hex) = value.get(index + 1..index + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A pool of at most `size_max` connections, each closed once older than
/// [`CONNECTION_LIFETIME_MAX`]. Connections are made lazily, on the first `get`.
pub fn pool(config: Config, size_max: usize) -> Result<Pool, DbError> {
    let tls = Tls::of(&config);
    pool_with(config, size_max, &tls)
}

/// [`pool`], encrypted as `tls` says.
pub fn pool_with(mut config: Config, size_max: usize, tls: &Tls) -> Result<Pool, DbError> {
    if config.get_application_name().is_none() {
        config.application_name("hazina");
    }
    let recycling = ManagerConfig { recycling_method: RecyclingMethod::Fast };
    let manager = match tls.connector()? {
        Some(connector) => Manager::from_config(config, connector, recycling),
        None => Manager::from_config(config, NoTls, recycling),
    };
    Pool::builder(manager)
        .max_size(size_max)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_TIMEOUT))
        .create_timeout(Some(POOL_TIMEOUT))
        .recycle_timeout(Some(POOL_TIMEOUT))
        .pre_recycle(deadpool_postgres::Hook::sync_fn(|_, metrics| {
            if metrics.age() > CONNECTION_LIFETIME_MAX {
                Err(HookError::message("connection reached its maximum lifetime"))
            } else {
                Ok(())
            }
        }))
        .build()
        .map_err(DbError::Pool)
}

/// Opens one connection outside any pool; its driver runs as a task on the current runtime
/// and ends when the client is dropped.
pub async fn connect(config: &Config) -> Result<Client, DbError> {
    connect_with(config, &Tls::of(config)).await
}

/// [`connect`], encrypted as `tls` says.
pub async fn connect_with(config: &Config, tls: &Tls) -> Result<Client, DbError> {
    let client = if let Some(connector) = tls.connector()? {
        let (client, connection) = config.connect(connector).await.map_err(DbError::Connect)?;
        tokio::spawn(drive(connection));
        client
    } else {
        let (client, connection) = config.connect(NoTls).await.map_err(DbError::Connect)?;
        tokio::spawn(drive(connection));
        client
    };
    Ok(client)
}

async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(error) = connection.await {
        tracing::debug!(error = %crate::error_chain(&error), "database connection ended");
    }
}

/// Applies the pending migrations over a connection of its own; returns the names applied.
pub async fn migrate(config: &Config) -> Result<Vec<String>, DbError> {
    migrate_with(config, &Tls::of(config)).await
}

/// [`migrate`], encrypted as `tls` says.
pub async fn migrate_with(config: &Config, tls: &Tls) -> Result<Vec<String>, DbError> {
    let mut client = connect_with(config, tls).await?;
    hazina_ledger::store::migrate(&mut client).await.map_err(DbError::Migrate)
}

/// The role the embedded database's server connects as for requests: not the tables' owner.
pub const APP_ROLE: &str = "hazina_app";

/// Gives `role` what the server needs for requests and nothing more, connected as the tables'
/// owner (`config`): reading and writing rows, never `UPDATE`, `DELETE` or `TRUNCATE` of the
/// ledger's history (transfers, entries), never deleting accounts or orgs, never the
/// migrations' record; and, not owning the tables, it cannot alter them or disable their
/// triggers. With `create`, the role is made first when missing (login, no other power).
/// Tables made by later migrations (run by the same owner) are granted by default.
///
/// # Errors
///
/// When the owner cannot connect or grant.
pub async fn grant_app_role(
    config: &Config,
    tls: &Tls,
    role: &str,
    create: bool,
) -> Result<(), DbError> {
    let client = connect_with(config, tls).await?;
    let role_ident = quote_ident(role);
    let mut statements = Vec::new();
    if create {
        let literal = role.replace('\'', "''");
        statements.push(format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{literal}') THEN \
             CREATE ROLE {role_ident} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
             NOBYPASSRLS; END IF; END $$"
        ));
    }
    let database = quote_ident(config.get_dbname().unwrap_or("postgres"));
    for statement in [
        format!("GRANT CONNECT ON DATABASE {database} TO {role_ident}"),
        format!("GRANT USAGE ON SCHEMA public TO {role_ident}"),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role_ident}"
        ),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role_ident}"),
        format!(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public \
             GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role_ident}"
        ),
        format!(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES \
             TO {role_ident}"
        ),
        format!("REVOKE UPDATE, DELETE, TRUNCATE ON transfers, entries FROM {role_ident}"),
        // Statement lines are what a provider said, kept as imported.
        format!("REVOKE UPDATE, DELETE, TRUNCATE ON statement_lines FROM {role_ident}"),
        format!("REVOKE DELETE, TRUNCATE ON accounts, orgs FROM {role_ident}"),
        format!("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM {role_ident}"),
    ] {
        statements.push(statement);
    }
    client.batch_execute(&statements.join(";\n")).await.map_err(DbError::Grant)?;
    Ok(())
}

/// Runs `SELECT 1` on a pooled connection: the readiness check.
pub async fn ping(pool: &Pool) -> Result<(), PoolError> {
    let client = pool.get().await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}

/// Quotes an SQL identifier (a database name, say) for use in a statement that cannot take
/// it as a parameter.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Renders `config` as a key-value connection string (`host=... user=...`) that
/// [`parse_url`] and `libpq` accept, so that it can be handed on as `DATABASE_URL`.
pub fn to_connection_string(config: &Config) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.to_string_lossy().into_owned(),
        })
        .collect();
    if !hosts.is_empty() {
        pairs.push(("host", hosts.join(",")));
    }
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    if !ports.is_empty() {
        pairs.push(("port", ports.join(",")));
    }
    if let Some(user) = config.get_user() {
        pairs.push(("user", user.to_owned()));
    }
    if let Some(password) = config.get_password() {
        pairs.push(("password", String::from_utf8_lossy(password).into_owned()));
    }
    if let Some(dbname) = config.get_dbname() {
        pairs.push(("dbname", dbname.to_owned()));
    }
    if let Some(name) = config.get_application_name() {
        pairs.push(("application_name", name.to_owned()));
    }
    pairs
        .into_iter()
        .map(|(key, value)| format!("{key}={}", quote_value(&value)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote_value(value: &str) -> String {
    if !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c == '\'' || c == '\\') {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_round_trip() {
        let mut config = Config::new();
        config
            .host_path("/tmp/with space")
            .port(5432)
            .user("hazina")
            .password("it's\\secret")
            .dbname("t_1");
        let text = to_connection_string(&config);
        let parsed = parse_url(&text).unwrap();
        assert_eq!(parsed.get_hosts(), config.get_hosts());
        assert_eq!(parsed.get_ports(), config.get_ports());
        assert_eq!(parsed.get_user(), Some("hazina"));
        assert_eq!(parsed.get_password(), Some(&b"it's\\secret"[..]));
        assert_eq!(parsed.get_dbname(), Some("t_1"));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("t_1"), "\"t_1\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn verify_full_and_the_root_certificate_are_taken_out_for_the_driver() {
        let url = "postgresql://u@h1:5432,h2:5433/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&target_session_attrs=read-write";
        let target = parse_target(url).unwrap();
        assert_eq!(target.tls, Tls::VerifyFull { root_cert: Some("/tmp/ca.pem".into()) });
        assert_eq!(target.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(target.config.get_hosts().len(), 2);
        assert_eq!(
            target.config.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
        let target = parse_target("host=h sslmode=verify-ca sslrootcert=/ca.pem dbname=d").unwrap();
        assert_eq!(target.tls, Tls::VerifyFull { root_cert: Some("/ca.pem".into()) });
        assert_eq!(target.config.get_dbname(), Some("d"));
        assert_eq!(parse_target("host=h sslmode=require").unwrap().tls, Tls::Require);
        assert_eq!(parse_target("postgres://h/d").unwrap().tls, Tls::Off);
        assert_eq!(parse_target("postgres://h/d?sslmode=prefer").unwrap().tls, Tls::Off);
        assert!(parse_url("postgres://h/d?sslmode=verify-full").is_err());
    }

    #[test]
    fn settings_add_the_statement_timeout_to_the_options() {
        let config = parse_url("host=h options='-c search_path=x' connect_timeout=2").unwrap();
        let config = ConnectionSettings::default().apply(config);
        assert_eq!(
            config.get_options(),
            Some("-c search_path=x -c statement_timeout=10000 -c lock_timeout=2000")
        );
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert!(config.get_keepalives());
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(15));
    }

    /// An embedded cluster with `ssl=on` and a self-signed certificate, listening on a random
    /// loopback address (127.0.0.1:5432 may be taken; the port also names the Unix socket).
    #[tokio::test]
    async fn tls_connects_with_require_and_verify_full() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let id = uuid::Uuid::new_v4();
        let scratch = PathBuf::from(format!("/tmp/hz-tls-{}", &id.simple().to_string()[..8]));
        std::fs::create_dir(&scratch)?;
        std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o755))?;
        let result = tls_cluster_checks(&scratch, id.as_bytes()).await;
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    /// DER as PEM (rcgen is built without its `pem` feature).
    fn pem(label: &str, der: &[u8]) -> String {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap_or_default())
            .collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    async fn tls_cluster_checks(scratch: &std::path::Path, random: &[u8]) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let ip = format!("127.{}.{}.{}", random[0], random[1], random[2].max(1));
        let made = rcgen::generate_simple_self_signed(vec![ip.clone()])?;
        let (cert, key, hba) =
            (scratch.join("server.crt"), scratch.join("server.key"), scratch.join("pg_hba.conf"));
        std::fs::write(&cert, pem("CERTIFICATE", made.cert.der()))?;
        std::fs::write(&key, pem("PRIVATE KEY", &made.signing_key.serialize_der()))?;
        std::fs::write(&hba, "local all all trust\nhost all all 127.0.0.0/8 trust\n")?;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        if nix::unistd::Uid::effective().is_root()
            && let Some(user) = nix::unistd::User::from_name("postgres")?
        {
            std::os::unix::fs::chown(&key, Some(user.uid.as_raw()), Some(user.gid.as_raw()))?;
        }
        let mut options = crate::embedded::ClusterOptions::new(scratch.join("pg"));
        options.no_sync = true;
        let path = |p: &std::path::Path| p.display().to_string();
        options.settings = vec![
            ("listen_addresses".into(), ip.clone()),
            ("hba_file".into(), path(&hba)),
            ("ssl".into(), "on".into()),
            ("ssl_cert_file".into(), path(&cert)),
            ("ssl_key_file".into(), path(&key)),
        ];
        let cluster = crate::embedded::Cluster::start(options).await?;
        let base = format!("host={ip} port=5432 user=hazina dbname=hazina connect_timeout=5");
        let encrypted = |url: String| async move {
            let target = parse_target(&url)?;
            let client = connect_with(&target.config, &target.tls).await?;
            let row = client
                .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
                .await?;
            anyhow::Ok(row.get::<_, bool>(0))
        };
        let checks = async {
            assert!(!encrypted(format!("{base} sslmode=disable")).await?);
            assert!(encrypted(format!("{base} sslmode=require")).await?);
            let root = format!("sslrootcert={}", path(&cert));
            assert!(encrypted(format!("{base} sslmode=verify-full {root}")).await?);
            // Without the root certificate, a self-signed one is not trusted.
            assert!(encrypted(format!("{base} sslmode=verify-full")).await.is_err());
            // A pool encrypts every connection it makes, too.
            let target = parse_target(&format!("{base} sslmode=require"))?;
            let pool = pool_with(target.config, 2, &target.tls)?;
            let client = pool.get().await?;
            let row = client
                .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
                .await?;
            assert!(row.get::<_, bool>(0));
            anyhow::Ok(())
        }
        .await;
        cluster.stop().await?;
        checks
    }

    #[test]
    fn invalid_urls_do_not_echo_the_password() {
        let error = parse_url("postgresql://u:hunter2@host:notaport/db").unwrap_err();
        assert!(!crate::error_chain(&error).contains("hunter2"));
    }
}
