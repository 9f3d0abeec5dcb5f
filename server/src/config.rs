//! The command line and environment: every setting the `hazina` binary takes.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Most connections served at once by default; past it new ones wait in the kernel's accept
/// queue until one closes.
pub const CONNECTIONS_MAX_DEFAULT: usize = 4_096;

/// Hazina, a payments ledger on PostgreSQL.
///
/// Without `DATABASE_URL`, hazina runs its own PostgreSQL (embedded) in the data directory.
#[derive(Debug, Parser)]
#[command(name = "hazina", version)]
pub struct Cli {
    /// Use this PostgreSQL server instead of the embedded one (a URL or key=value pairs).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// The embedded PostgreSQL's data directory (created on first use).
    #[arg(long, env = "HAZINA_DATA_DIR", global = true, default_value = "./.hazina/pg")]
    pub data_dir: PathBuf,

    /// The folder holding `initdb` and `postgres`; default: PATH, then the newest
    /// /usr/lib/postgresql/*/bin.
    #[arg(long, env = "HAZINA_PG_BIN_DIR", global = true)]
    pub pg_bin_dir: Option<PathBuf>,

    /// The address the HTTP server listens on.
    #[arg(long, env = "HAZINA_LISTEN", global = true, default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Serve the M-Pesa and MTN MoMo simulators too, under `/simulator/mpesa` and
    /// `/simulator/momo` (`--simulate` or `--simulate true`; `--simulate false` to refuse).
    /// Default: on with the embedded database, which is for development and demos; off with
    /// `DATABASE_URL`. Never in production: their routes take no key.
    #[arg(long, env = "HAZINA_SIMULATE", global = true, value_name = "BOOL", num_args = 0..=1,
        default_missing_value = "true")]
    pub simulate: Option<bool>,

    /// Most HTTP connections served at once; past it new connections wait to be accepted.
    #[arg(long, env = "HAZINA_CONNECTIONS_MAX", global = true,
        default_value_t = CONNECTIONS_MAX_DEFAULT)]
    pub connections_max: usize,

    /// With `DATABASE_URL` (which runs the migrations, as the tables' owner): the connection
    /// string requests use, for a role that does not own the tables; the server grants it
    /// what it needs. With the embedded database, requests use a role of their own anyway.
    #[arg(long, env = "HAZINA_APP_DATABASE_URL", global = true, hide_env_values = true)]
    pub app_database_url: Option<String>,

    /// When started as root, the user to serve as once the database is up and the port is
    /// bound. Default: the embedded database's owner (`postgres`); with `DATABASE_URL`, none
    /// (a warning says the server stays root).
    #[arg(long, env = "HAZINA_RUN_AS", global = true)]
    pub run_as: Option<String>,

    /// How many days parked provider callbacks (matched to no payment), stored
    /// `Idempotency-Key` responses and the replies to USSD and voice steps are kept before
    /// they are deleted (hourly).
    #[arg(long, env = "HAZINA_RETENTION_DAYS", global = true, default_value_t = 90,
        value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub retention_days: u32,

    /// A host (besides the providers' own) that payment channels may call, over https; may be
    /// given more than once. For a provider's new or regional API address.
    #[arg(long, env = "HAZINA_ALLOW_PROVIDER_HOST", global = true, value_delimiter = ',')]
    pub allow_provider_host: Vec<String>,

    /// Let payment channels call any http or https address: for a gateway or simulator of
    /// your own. Channel credentials go wherever a channel's base URL points, so by default
    /// only https to the providers' published hosts (and, in simulator mode, the simulators).
    #[arg(long, env = "HAZINA_ALLOW_ANY_PROVIDER_URL", global = true)]
    pub allow_any_provider_url: bool,

    /// Let webhook endpoints be private, loopback or link-local addresses, and `http://`: for
    /// receivers on your own network. By default webhooks go only to public https addresses,
    /// checked when an endpoint is made and again at every delivery (every address its host
    /// resolves to), so that an endpoint cannot make the server call its own network.
    #[arg(long, env = "HAZINA_ALLOW_PRIVATE_WEBHOOK_URLS", global = true)]
    pub allow_private_webhook_urls: bool,

    /// The address providers reach this server at, for their callbacks (e.g.
    /// `https://pay.example.com`); default: `http://` and the listening address.
    #[arg(long, env = "HAZINA_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// How long after a provider takes a payment it is first asked about, in milliseconds, if
    /// no callback settled it; later questions back off exponentially to 30 minutes apart.
    #[arg(long, env = "HAZINA_PROVIDER_QUERY_AFTER_MS", global = true, default_value_t = 30_000)]
    pub provider_query_after_ms: u64,

    /// The key that seals payment channels' credentials in the database (64 hex characters,
    /// mode 0600; created on first start). Every process serving one database needs the same
    /// file; without it, the channels' credentials cannot be read. Default: `credentials.key`
    /// beside the embedded database's data directory.
    #[arg(long, env = "HAZINA_CREDENTIALS_KEY_FILE", global = true)]
    pub credentials_key_file: Option<PathBuf>,

    /// Where bank channels exchange ISO 20022 files: one folder per channel id with `out/`
    /// (pain.001 files for the operator's SFTP agent or bank connector to take) and `in/` (the
    /// bank's pain.002 and camt.054, moved to `in/processed/` or `in/unreadable/` once read).
    /// Default: `bank-exchange` beside the embedded database's data directory (not inside it:
    /// that directory is PostgreSQL's own).
    #[arg(long, env = "HAZINA_BANK_EXCHANGE_DIR", global = true)]
    pub bank_exchange_dir: Option<PathBuf>,

    /// The most connections the server's pool opens to PostgreSQL.
    #[arg(long, env = "HAZINA_DB_POOL_SIZE_MAX", global = true, default_value_t = 16)]
    pub db_pool_size_max: usize,

    /// How long connecting to PostgreSQL may take, in milliseconds, per host (the connection
    /// string's `connect_timeout` wins).
    #[arg(long, env = "HAZINA_DB_CONNECT_TIMEOUT_MS", global = true, default_value_t = 5_000)]
    pub db_connect_timeout_ms: u64,

    /// The longest a statement of the server's may run, in milliseconds, before PostgreSQL
    /// cancels it (`statement_timeout`); 0 for no limit. Migrations and `bench` are not limited.
    #[arg(long, env = "HAZINA_DB_STATEMENT_TIMEOUT_MS", global = true, default_value_t = 10_000)]
    pub db_statement_timeout_ms: u64,

    /// The longest a statement of the server's waits for a lock, in milliseconds, before
    /// PostgreSQL gives up (`lock_timeout`); 0 for no limit. A ledger batch behind a lock held
    /// too long then fails with an unknown outcome (503) instead of holding its writer.
    #[arg(long, env = "HAZINA_DB_LOCK_TIMEOUT_MS", global = true, default_value_t = 2_000)]
    pub db_lock_timeout_ms: u64,

    /// TCP keepalive probes on database connections start after this long idle, in
    /// milliseconds; a host that vanished is noticed within about twice this.
    #[arg(long, env = "HAZINA_DB_KEEPALIVE_IDLE_MS", global = true, default_value_t = 15_000)]
    pub db_keepalive_idle_ms: u64,

    /// Every HTTP request is answered within this long, in milliseconds: one that is still
    /// waiting (on a database that stopped answering, say) gets a 503 with `Retry-After`, and
    /// its outcome is unknown until replayed under the same id.
    #[arg(long, env = "HAZINA_REQUEST_TIMEOUT_MS", global = true, default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// How logs are written (to stderr); `RUST_LOG` filters them (default: info).
    #[arg(long, env = "HAZINA_LOG_FORMAT", global = true, value_enum, default_value_t)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The external database's connection string, if one is set (an empty one counts as unset).
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref().filter(|url| !url.trim().is_empty())
    }

    /// The requests' connection string, if one is set apart from `DATABASE_URL`.
    pub fn app_database_url(&self) -> Option<&str> {
        self.app_database_url.as_deref().filter(|url| !url.trim().is_empty())
    }

    /// Whether to serve the provider simulators: as asked, else only with the embedded
    /// database.
    pub fn simulate(&self) -> bool {
        self.simulate.unwrap_or_else(|| self.database_url().is_none())
    }

    /// Where the credentials key is: as asked, else beside the data directory.
    pub fn credentials_key_file(&self) -> PathBuf {
        self.credentials_key_file.clone().unwrap_or_else(|| {
            self.data_dir.parent().unwrap_or(std::path::Path::new(".")).join("credentials.key")
        })
    }

    /// Where bank channels exchange files: as asked, else beside the data directory.
    pub fn bank_exchange_dir(&self) -> PathBuf {
        self.bank_exchange_dir.clone().unwrap_or_else(|| {
            self.data_dir.parent().unwrap_or(std::path::Path::new(".")).join("bank-exchange")
        })
    }

    /// How the server's database connections behave (`--db-*-ms`).
    pub fn connection_settings(&self) -> crate::db::ConnectionSettings {
        crate::db::ConnectionSettings {
            connect_timeout: Duration::from_millis(self.db_connect_timeout_ms.max(1)),
            keepalive_idle: Duration::from_millis(self.db_keepalive_idle_ms.max(1_000)),
            statement_timeout: (self.db_statement_timeout_ms > 0)
                .then(|| Duration::from_millis(self.db_statement_timeout_ms)),
            lock_timeout: (self.db_lock_timeout_ms > 0)
                .then(|| Duration::from_millis(self.db_lock_timeout_ms)),
        }
    }

    /// How long parked callbacks and idempotent responses are kept.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 24 * 60 * 60)
    }

    /// How long a request may take before it is answered with a 503.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    /// The subcommand, `serve` when none is given.
    pub fn command(&self) -> Command {
        self.command.clone().unwrap_or(Command::Serve)
    }
}

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Start the database (unless `DATABASE_URL`), apply migrations and serve HTTP until SIGINT or
    /// SIGTERM (the default).
    Serve,
    /// Apply the pending migrations, print their names and exit.
    Migrate,
    /// Measure the posting pipeline against the naive path on this database, then verify every
    /// ledger invariant. Sets up a new org of its own each run.
    Bench(crate::bench::BenchArgs),
    /// The fault suite: runs `hazina serve` as a child over a PostgreSQL of its own, under
    /// concurrent payments, kills the server, crashes and freezes the database, and checks
    /// that nothing acknowledged was lost or doubled and that every invariant holds.
    Chaos(crate::chaos::ChaosArgs),
    /// Check the ledger: with `--chain`, recompute every org's hash chain and print one line
    /// per org; without, every ledger invariant (the chains included). Exits non-zero when
    /// anything does not hold.
    Verify(VerifyArgs),
    /// Create, list and revoke API keys (a key's token is shown once, when created).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Create the credentials key file (`--credentials-key-file`) and exit: once per
    /// deployment on `DATABASE_URL`, whose servers never create it themselves (a server that
    /// made a new key would seal channels that the others cannot open). Refuses to overwrite.
    CredentialsKey,
    /// Reconcile a payment channel against its provider's or bank's statements: import a
    /// statement file, run the matching.
    #[command(subcommand)]
    Reconcile(ReconcileCommand),
    /// Payments through providers that need an operator: list the stuck, settle one by hand.
    #[command(subcommand)]
    Payments(PaymentsCommand),
}

/// `hazina reconcile …`: each acts on `--org`, or on the only org there is.
#[derive(Debug, Clone, Subcommand)]
pub enum ReconcileCommand {
    /// Import a statement file into a channel's lines, with a progress bar; lines an earlier
    /// file brought are not added again.
    Import {
        /// The file: M-Pesa org statement CSV, M-Pesa pull result JSON, MTN MoMo report CSV,
        /// camt.053, camt.054 or MT940.
        file: std::path::PathBuf,
        /// The payment channel whose statement it is.
        #[arg(long)]
        channel: uuid::Uuid,
        /// The format (`mpesa_csv`, `mpesa_pull`, `momo_report`, `camt053`, `camt054`,
        /// `mt940`); recognised from the content when absent.
        #[arg(long)]
        format: Option<String>,
        #[arg(long)]
        org: Option<uuid::Uuid>,
    },
    /// Match a channel's statement lines with its clearing account's transfers over a period.
    Run {
        #[arg(long)]
        channel: uuid::Uuid,
        /// The first day (YYYY-MM-DD).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// The last day, included.
        #[arg(long)]
        to: chrono::NaiveDate,
        /// Days a line's value date may be from its transfer's.
        #[arg(long, default_value_t = 1)]
        date_tolerance_days: u32,
        /// Match and count, record nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        org: Option<uuid::Uuid>,
    },
}

/// `hazina payments …`: each acts on `--org`, or on the only org there is.
#[derive(Debug, Clone, Subcommand)]
pub enum PaymentsCommand {
    /// List payments still unsettled after `--older-than-seconds`, oldest first.
    Stuck {
        #[arg(long, default_value_t = 3_600)]
        older_than_seconds: u64,
        #[arg(long)]
        org: Option<uuid::Uuid>,
    },
    /// Settle a stuck payment by hand: `success` posts its reservation, `failed` releases it.
    Settle {
        payment_id: uuid::Uuid,
        /// `success` or `failed`.
        #[arg(long)]
        outcome: String,
        /// Why (kept in the payment's history).
        #[arg(long)]
        reason: String,
        /// Who decides (kept with the reason).
        #[arg(long)]
        by: String,
        /// The provider's receipt, when known.
        #[arg(long)]
        receipt: Option<String>,
        #[arg(long)]
        org: Option<uuid::Uuid>,
    },
}

/// `hazina verify`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Only the journal's hash chains: per org, its transfers recomputed in chain order and
    /// compared with their stored hashes, its head and its period closes.
    #[arg(long)]
    pub chain: bool,
}

/// `hazina keys …`: each acts on `--org`, or on the only org there is.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Create an org key, or an app key with `--app`; prints its token once.
    Create {
        /// The key's name, to recognise it in lists.
        #[arg(long)]
        name: String,
        /// The app (by name) the key acts for; an org key when absent.
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        org: Option<uuid::Uuid>,
    },
    /// List the org's keys (never their tokens).
    List {
        #[arg(long)]
        org: Option<uuid::Uuid>,
    },
    /// Revoke a key at once.
    Revoke {
        /// The key's id, as `list` shows it.
        key_id: uuid::Uuid,
        #[arg(long)]
        org: Option<uuid::Uuid>,
    },
}

/// The log format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn serve_is_the_default() {
        let cli = Cli::try_parse_from(["hazina", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(matches!(cli.command(), Command::Serve));
        let cli = Cli::try_parse_from(["hazina", "migrate", "--log-format", "json"]).unwrap();
        assert!(matches!(cli.command(), Command::Migrate));
        assert_eq!(cli.log_format, LogFormat::Json);
    }

    #[test]
    fn the_simulators_are_on_for_the_embedded_database_unless_refused() {
        let parse = |args: &[&str]| {
            let mut all = vec!["hazina"];
            all.extend(args);
            Cli::try_parse_from(all).unwrap()
        };
        let url = "postgres://x@localhost/db";
        assert!(parse(&[]).simulate() || std::env::var_os("DATABASE_URL").is_some());
        assert!(!parse(&["--simulate", "false"]).simulate());
        assert!(!parse(&["--database-url", url]).simulate());
        assert!(parse(&["--database-url", url, "--simulate"]).simulate());
        assert!(parse(&["--simulate", "--listen", "127.0.0.1:0"]).simulate());
    }
}
