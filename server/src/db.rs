//! Database connections: the pool the server runs on, one-off connections and migrations.

use std::str::FromStr as _;
use std::time::Duration;

use deadpool_postgres::{
    HookError, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::{Client, Config, NoTls};

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
        if let Some(timeout) = self.statement_timeout {
            let option = format!("-c statement_timeout={}", timeout.as_millis().max(1));
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
    /// A migration failed.
    #[error("could not apply the migrations")]
    Migrate(#[source] hazina_ledger::store::StoreError),
}

/// Parses a connection string, either a URL (`postgresql://user@host/db`) or key-value pairs
/// (`host=/run/postgresql dbname=hazina`).
pub fn parse_url(url: &str) -> Result<Config, DbError> {
    Config::from_str(url).map_err(DbError::InvalidUrl)
}

/// A pool of at most `size_max` connections, each closed once older than
/// [`CONNECTION_LIFETIME_MAX`]. Connections are made lazily, on the first `get`.
pub fn pool(mut config: Config, size_max: usize) -> Result<Pool, DbError> {
    if config.get_application_name().is_none() {
        config.application_name("hazina");
    }
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig { recycling_method: RecyclingMethod::Fast },
    );
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
    let (client, connection) = config.connect(NoTls).await.map_err(DbError::Connect)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %crate::error_chain(&error), "database connection ended");
        }
    });
    Ok(client)
}

/// Applies the pending migrations over a connection of its own; returns the names applied.
pub async fn migrate(config: &Config) -> Result<Vec<String>, DbError> {
    let mut client = connect(config).await?;
    hazina_ledger::store::migrate(&mut client).await.map_err(DbError::Migrate)
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
    fn invalid_urls_do_not_echo_the_password() {
        let error = parse_url("postgresql://u:hunter2@host:notaport/db").unwrap_err();
        assert!(!crate::error_chain(&error).contains("hunter2"));
    }
}
