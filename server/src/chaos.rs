//! `hazina chaos`: the fault suite. It runs the real server (`hazina serve`, as a child process)
//! over an embedded PostgreSQL of its own, reached through a TCP proxy on loopback that it
//! controls, drives it with concurrent payments and transfer batches under ids it chooses, and
//! injects faults: `kill -9` of the server, an immediate shutdown of PostgreSQL, and a proxy
//! that stops forwarding bytes without closing (a database that stops answering). After each
//! round it replays every request whose outcome it did not learn, and checks that every
//! acknowledged transfer is present exactly once, that replays agree with the first answer,
//! that every balance is the sum of what was acknowledged, and that the ledger's invariants
//! hold (`Store::verify`).
//!
//! The `callbacks` scenario drives payments through providers instead: payouts and collections
//! through M-Pesa and MTN MoMo simulators that run in this process, scripted to deliver their
//! callbacks twice, late or never (so that the server's worker asks them too), while the suite
//! POSTs every delivered callback again, several copies at once. Every payment must settle as
//! its provider decided, each payout be paid once, and every balance be the sum of the payments
//! that succeeded, with nothing left reserved.
//!
//! Failover between a primary and a secondary under `pg_auto_failover` is a scenario of its own
//! (`--scenarios failover --failover-url … --failover-command …`), run against a formation the
//! operator started: the server then connects with a multi-host `DATABASE_URL` and
//! `target_session_attrs=read-write`. See `RELIABILITY.md`.

// Latency and recovery times are durations for display; amounts are integers of cents here.
#![allow(clippy::cast_possible_truncation)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hazina_ledger::rules::TransferKind;
use hazina_ledger::store::Store;
use hazina_ledger::{AccountId, OrgId, TransferId};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::Rng as _;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::watch;

use crate::db;
use crate::embedded::{Cluster, ClusterOptions};
use hazina_simulator::{momo, mpesa};

/// A database that comes back must be serving payments again within this long.
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(5);
/// How long the server gets to start and answer `/readyz`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long replays of unknown outcomes may keep meeting 503s before the round fails.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(60);
/// The pause between two attempts of a client whose request failed (a client's backoff).
const BACKOFF: Duration = Duration::from_millis(25);
/// Acknowledged requests sent again per round, to check that a replay repeats the answer.
const REPLAYS_OF_ACKNOWLEDGED: usize = 10;
/// Each purse's starting balance, in cents, so that purse-to-purse payments never run short.
const PURSE_FUNDING_CENTS: i64 = 100_000_000;

/// The faults the suite injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `kill -9` of the server under load, then a restart.
    Kill,
    /// PostgreSQL's immediate shutdown (SIGQUIT, as `pg_ctl stop -m immediate`) under load, a
    /// pause, then a restart (crash recovery).
    DbRestart,
    /// The proxy in front of PostgreSQL stops forwarding bytes (connections stay open) for
    /// longer than the server's request timeout, then resumes.
    Freeze,
    /// A `pg_auto_failover` formation fails over under load (`--failover-url`).
    Failover,
    /// Payouts and collections through the provider simulators, whose callbacks arrive twice,
    /// late or never, and are sent again in parallel copies while the server also asks.
    Callbacks,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::DbRestart => "db-restart",
            Self::Freeze => "freeze",
            Self::Failover => "failover",
            Self::Callbacks => "callbacks",
        }
    }
}

/// `hazina chaos`'s options.
// Command-line switches are booleans by nature; a state machine would not make them clearer.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    /// The scenarios to run, in order (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Scenario::Kill, Scenario::DbRestart, Scenario::Freeze, Scenario::Callbacks])]
    pub scenarios: Vec<Scenario>,
    /// Rounds of `kill -9` of the server.
    #[arg(long, default_value_t = 50)]
    pub kill_rounds: u32,
    /// Rounds of PostgreSQL immediate shutdown and restart.
    #[arg(long, default_value_t = 10)]
    pub db_restart_rounds: u32,
    /// Rounds of a frozen database connection.
    #[arg(long, default_value_t = 5)]
    pub freeze_rounds: u32,
    /// Rounds of failover (`--scenarios failover` only).
    #[arg(long, default_value_t = 3)]
    pub failover_rounds: u32,
    /// Rounds of provider payments with raced callbacks.
    #[arg(long, default_value_t = 20)]
    pub callback_rounds: u32,
    /// Copies of each delivered callback the suite POSTs at once (`callbacks`).
    #[arg(long, default_value_t = 8)]
    pub callback_copies: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// How long each round drives load before the fault, and again after recovery, in ms.
    #[arg(long, default_value_t = 1_000)]
    pub load_ms: u64,
    /// How long PostgreSQL stays down in a `db-restart` round, in ms.
    #[arg(long, default_value_t = 2_000)]
    pub outage_ms: u64,
    /// The server's `--request-timeout-ms`: every request must be answered within it (plus a
    /// margin); a `freeze` round lasts longer than it.
    #[arg(long, default_value_t = 3_000)]
    pub request_timeout_ms: u64,
    /// For `failover`: the formation's multi-host connection string, e.g.
    /// `postgresql://127.0.0.1:6001,127.0.0.1:6002/hazina?target_session_attrs=read-write`.
    #[arg(long)]
    pub failover_url: Option<String>,
    /// For `failover`: the command that makes the formation fail over (run with `sh -c`),
    /// e.g. `pg_autoctl perform failover --pgdata /var/lib/hazina-paf/monitor`.
    #[arg(long)]
    pub failover_command: Option<String>,
    /// The `hazina` binary to serve with; default: this one.
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Keep the working folder (database, server logs) even when every check passes.
    #[arg(long)]
    pub keep: bool,
    /// Print one JSON line instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Count, in the first round, one transfer as acknowledged that was never sent: the checks
    /// must then report it lost and a balance off. Proves the suite can fail.
    #[arg(long, hide = true)]
    pub inject_lost_ack: bool,
    /// Post, in the first `callbacks` round, the amount of one payout a second time (from its
    /// purse to its float, outside the payment): the checks must then report two balances
    /// off. Proves the scenario can fail.
    #[arg(long, hide = true)]
    pub inject_double_post: bool,
}

/// What one scenario's rounds came to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScenarioReport {
    pub scenario: &'static str,
    pub rounds: u32,
    /// Requests sent (first attempts, not replays).
    pub requests: u64,
    /// Transfers whose outcome the first answer gave (201/422/200).
    pub acknowledged: u64,
    /// Transfers whose outcome was unknown (503, a broken connection) and learned by replay.
    pub resolved_by_replay: u64,
    /// Acknowledged as accepted, then missing from the ledger.
    pub lost: u64,
    /// Applied twice: a replay that answered differently from the first answer.
    pub doubled: u64,
    /// `Store::verify` violations, summed over rounds.
    pub invariant_breaks: u64,
    /// Accounts whose balance differed from the sum of acknowledged transfers, over rounds.
    pub balance_mismatches: u64,
    /// 503s with `Retry-After` (expected while a fault lasts).
    pub unavailable: u64,
    /// Any other 5xx, or a 503 without `Retry-After`.
    pub server_errors: u64,
    /// `callbacks`: the copies of providers' callbacks the suite sent (also in `requests`).
    #[serde(skip_serializing_if = "is_zero")]
    pub callbacks_sent: u64,
    /// Requests not answered within the request timeout and its margin.
    pub hangs: u64,
    /// The slowest answer of the scenario, in ms.
    pub latency_ms_max: u64,
    /// From the fault's end (server restarted, database accepting, proxy thawed) to the first
    /// successful payment, in ms.
    pub recovery_ms_p50: u64,
    pub recovery_ms_max: u64,
    /// Rounds whose recovery took longer than [`RECOVERY_LIMIT`] (checked for the database
    /// scenarios only: a server restart's time is the binary's start).
    pub slow_recoveries: u64,
    #[serde(skip)]
    recoveries: Vec<u64>,
}

impl ScenarioReport {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.doubled == 0
            && self.invariant_breaks == 0
            && self.balance_mismatches == 0
            && self.server_errors == 0
            && self.hangs == 0
            && self.slow_recoveries == 0
    }

    fn finish(&mut self) {
        self.recoveries.sort_unstable();
        self.recovery_ms_p50 =
            self.recoveries.get(self.recoveries.len().saturating_sub(1) / 2).copied().unwrap_or(0);
        self.recovery_ms_max = self.recoveries.last().copied().unwrap_or(0);
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenarios: Vec<ScenarioReport>,
    pub passed: bool,
    pub seconds: u64,
}

impl Report {
    /// The table `hazina chaos` prints.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<11} {:>6} {:>9} {:>8} {:>5} {:>7} {:>10} {:>11} {:>5} {:>5} {:>5} {:>8} {:>12} {:>12}",
            "scenario",
            "rounds",
            "requests",
            "acked",
            "lost",
            "doubled",
            "invariant",
            "balance-off",
            "503",
            "5xx",
            "hangs",
            "lat-max",
            "recovery-p50",
            "recovery-max"
        );
        for s in &self.scenarios {
            let _ = writeln!(
                out,
                "{:<11} {:>6} {:>9} {:>8} {:>5} {:>7} {:>10} {:>11} {:>5} {:>5} {:>5} {:>6}ms {:>10}ms {:>10}ms",
                s.scenario,
                s.rounds,
                s.requests,
                s.acknowledged + s.resolved_by_replay,
                s.lost,
                s.doubled,
                s.invariant_breaks,
                s.balance_mismatches,
                s.unavailable,
                s.server_errors,
                s.hangs,
                s.latency_ms_max,
                s.recovery_ms_p50,
                s.recovery_ms_max
            );
        }
        let _ = writeln!(
            out,
            "{} in {} s",
            if self.passed { "PASSED" } else { "FAILED" },
            self.seconds
        );
        out
    }
}

/// Runs the suite. `pg_bin_dir` is where `initdb` and `postgres` are (default: the usual
/// search). Returns the report; the caller decides what a failure means.
pub async fn run(args: &ChaosArgs, pg_bin_dir: Option<PathBuf>) -> anyhow::Result<Report> {
    let started = Instant::now();
    let work = WorkDir::new()?;
    let mut world = World::start(args, pg_bin_dir, &work.0).await?;
    let mut reports = Vec::new();
    let mut failure = None;
    for scenario in &args.scenarios {
        let rounds = match scenario {
            Scenario::Kill => args.kill_rounds,
            Scenario::DbRestart => args.db_restart_rounds,
            Scenario::Freeze => args.freeze_rounds,
            Scenario::Failover => args.failover_rounds,
            Scenario::Callbacks => args.callback_rounds,
        };
        let mut report = ScenarioReport { scenario: scenario.name(), ..ScenarioReport::default() };
        let result = world.rounds(*scenario, rounds, &mut report).await;
        report.finish();
        tracing::info!(scenario = scenario.name(), passed = report.passed(), "scenario done");
        reports.push(report);
        if let Err(error) = result {
            failure = Some(error);
            break;
        }
    }
    world.stop().await;
    let report = Report {
        passed: failure.is_none() && reports.iter().all(ScenarioReport::passed),
        scenarios: reports,
        seconds: started.elapsed().as_secs(),
    };
    if let Some(error) = failure {
        work.keep();
        return Err(
            error.context(format!("the fault suite stopped; its logs are in {}", work.0.display()))
        );
    }
    if !report.passed || args.keep {
        work.keep();
        tracing::warn!(dir = %work.0.display(), "kept the working folder");
    }
    Ok(report)
}

/// A scratch folder under /tmp (short, for the socket path; reachable by the `postgres` user),
/// removed on drop unless kept.
struct WorkDir(PathBuf, AtomicBool);

impl WorkDir {
    fn new() -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt as _;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = PathBuf::from(format!("/tmp/hz-chaos-{}", &id[..8]));
        std::fs::create_dir(&dir).with_context(|| format!("could not create {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        Ok(Self(dir, AtomicBool::new(false)))
    }

    fn keep(&self) {
        self.1.store(true, Ordering::Relaxed);
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.1.load(Ordering::Relaxed) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One of the accounts the load moves money between.
#[derive(Debug, Clone)]
struct Account {
    /// The account id (a purse's id is its account id).
    id: String,
    /// The payment party naming it.
    party: Value,
    /// Where its balance is read.
    path: String,
}

/// The accounts: index 0 is the float (a purse with a large overdraft), then purses, then
/// customers' wallets.
const FLOAT: usize = 0;
const PURSES: std::ops::Range<usize> = 1..5;
const WALLETS: std::ops::Range<usize> = 5..7;

/// What the suite knows about the running system.
struct World {
    work_dir: PathBuf,
    options: ClusterOptions,
    /// The embedded cluster; `None` against a formation of the operator's (`--failover-url`).
    cluster: Option<Cluster>,
    proxy: Option<Proxy>,
    failover_command: Option<String>,
    server: Option<Server>,
    binary: PathBuf,
    database_url: String,
    port: u16,
    base: Arc<str>,
    request_timeout: Duration,
    http: reqwest::Client,
    org: OrgId,
    org_key: Arc<str>,
    app_key: Arc<str>,
    accounts: Arc<Vec<Account>>,
    /// Every account's balance as the acknowledged transfers make it, in cents.
    expected: Vec<i64>,
    store: Store,
    clients: usize,
    load: Duration,
    outage: Duration,
    /// `--inject-lost-ack`, until the first check consumes it.
    inject_lost_ack: bool,
    /// `--inject-double-post`, until the first `callbacks` round consumes it.
    inject_double_post: bool,
    /// The provider simulators the server's channels call (in this process, so that they
    /// outlive a killed server).
    providers: Providers,
    /// The channels and accounts of the `callbacks` scenario, made by its first round.
    provider_books: Option<ProviderBooks>,
    callback_copies: usize,
}

impl World {
    async fn start(
        args: &ChaosArgs,
        pg_bin_dir: Option<PathBuf>,
        work_dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut options = ClusterOptions::new(work_dir.join("pg"));
        options.bin_dir = pg_bin_dir;
        options.no_sync = true;
        // A crash of PostgreSQL's processes (not of the machine) loses nothing with fsync off:
        // what was written is in the OS's page cache. This keeps rounds quick on a small box.
        options.settings = vec![("fsync".into(), "off".into())];
        let (cluster, proxy, target, database_url) = if let Some(url) = &args.failover_url {
            (None, None, db::parse_target(url)?, url.clone())
        } else {
            let cluster = Cluster::start(options.clone()).await?;
            let target = db::Target { config: cluster.pg_config(), tls: db::Tls::Off };
            let upstream = cluster.socket_dir().join(".s.PGSQL.5432");
            let proxy = Proxy::start(upstream).await?;
            let mut through_proxy = tokio_postgres::Config::new();
            through_proxy
                .host("127.0.0.1")
                .port(proxy.address.port())
                .user(crate::embedded::SUPERUSER)
                .dbname("hazina");
            (Some(cluster), Some(proxy), target, db::to_connection_string(&through_proxy))
        };
        db::migrate_with(&target.config, &target.tls).await?;
        let pool = db::pool_with(target.config.clone(), 4, &target.tls)?;
        let (org, org_key, app_key) = keys(&pool).await?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let request_timeout = Duration::from_millis(args.request_timeout_ms.max(100));
        // The bound on every answer: the server's own timeout, plus time for a loaded box.
        let http = reqwest::Client::builder()
            .timeout(request_timeout + Duration::from_secs(5))
            .pool_max_idle_per_host(args.clients)
            .build()?;
        let providers = Providers::start().await?;
        let binary = match &args.binary {
            Some(binary) => binary.clone(),
            None => std::env::current_exe().context("could not find this binary")?,
        };
        let mut world = Self {
            work_dir: work_dir.to_path_buf(),
            options,
            cluster,
            proxy,
            failover_command: args.failover_command.clone(),
            server: None,
            binary,
            database_url,
            port,
            base: format!("http://127.0.0.1:{port}").into(),
            request_timeout,
            http,
            org,
            org_key: org_key.into(),
            app_key: app_key.into(),
            accounts: Arc::new(Vec::new()),
            expected: Vec::new(),
            store: Store::new(pool),
            clients: args.clients.max(1),
            load: Duration::from_millis(args.load_ms),
            outage: Duration::from_millis(args.outage_ms),
            inject_lost_ack: args.inject_lost_ack,
            inject_double_post: args.inject_double_post,
            providers,
            provider_books: None,
            callback_copies: args.callback_copies.max(1),
        };
        // As an operator does once per deployment: servers on DATABASE_URL never make it.
        crate::secrets::Sealer::load_or_create(&world.work_dir.join("credentials.key"))?;
        world.spawn_server()?;
        world.wait_ready().await?;
        world.set_up_accounts().await?;
        Ok(world)
    }

    fn spawn_server(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.work_dir.join("server.log"))?;
        let mut command = tokio::process::Command::new(&self.binary);
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(|name| name.starts_with("HAZINA_")) {
                command.env_remove(name);
            }
        }
        command
            .env("DATABASE_URL", &self.database_url)
            .env("RUST_LOG", "info,tokio_postgres=warn")
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--simulate", "false"])
            .args(["--request-timeout-ms", &self.request_timeout.as_millis().to_string()])
            // The channels call the simulators of this process, on a loopback port, and their
            // callbacks come back here; a payment not settled by one is asked about soon.
            .arg("--allow-any-provider-url")
            .args(["--public-url", &self.base])
            .args(["--provider-query-after-ms", &PROVIDER_QUERY_AFTER.as_millis().to_string()])
            .arg("--credentials-key-file")
            .arg(self.work_dir.join("credentials.key"))
            .arg("--data-dir")
            .arg(self.work_dir.join("unused"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let child =
            command.spawn().with_context(|| format!("could not run {}", self.binary.display()))?;
        self.server = Some(Server { child });
        Ok(())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let url = format!("{}/readyz", self.base);
        loop {
            if let Some(server) = &mut self.server
                && let Some(status) = server.child.try_wait()?
            {
                anyhow::bail!("the server exited while starting ({status}); see server.log");
            }
            if let Ok(response) = self.http.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "the server was not ready within 60 s");
            tokio::time::sleep(BACKOFF).await;
        }
    }

    /// A float purse, purses funded from it, and two customers with a wallet each.
    async fn set_up_accounts(&mut self) -> anyhow::Result<()> {
        let api = Api { http: self.http.clone(), base: Arc::clone(&self.base) };
        let float = api
            .post(
                &self.org_key,
                "/v1/purses",
                &json!({ "currencyCode": "KES", "overdraftLimit": "1000000000000" }),
            )
            .await?;
        let purse = |body: &Value| -> anyhow::Result<Account> {
            let id = body["purseId"].as_str().context("a purse id")?.to_owned();
            Ok(Account {
                party: json!({ "purse": { "purseId": id } }),
                path: format!("/v1/purses/{id}"),
                id,
            })
        };
        let mut accounts = vec![purse(&float)?];
        for _ in PURSES {
            accounts.push(purse(
                &api.post(&self.org_key, "/v1/purses", &json!({ "currencyCode": "KES" })).await?,
            )?);
        }
        for n in WALLETS {
            let customer = api
                .post(
                    &self.app_key,
                    "/v1/customers",
                    &json!({ "customerNumber": { "number": format!("+25471200{n:04}"), "provider": "cellular" } }),
                )
                .await?;
            let customer = customer["customerId"].as_str().context("a customer id")?.to_owned();
            let wallet = api
                .post(
                    &self.app_key,
                    &format!("/v1/customers/{customer}/wallets"),
                    &json!({ "walletId": "main", "currencyCode": "KES" }),
                )
                .await?;
            accounts.push(Account {
                id: wallet["accountId"].as_str().context("a wallet's account id")?.to_owned(),
                party: json!({ "wallet": { "customerId": customer, "walletId": "main" } }),
                path: format!("/v1/customers/{customer}/wallets/main"),
            });
        }
        self.accounts = Arc::new(accounts);
        self.expected = vec![0; self.accounts.len()];
        for purse in PURSES {
            let attempt = Attempt::payment(&self.accounts, FLOAT, purse, PURSE_FUNDING_CENTS);
            match send(&self.http, &self.base, &self.org_key, &self.app_key, &attempt).await {
                Answer::Done { resolved, .. } if resolved.iter().all(|r| r.accepted) => {
                    self.apply(&attempt, &resolved);
                }
                other => anyhow::bail!("funding a purse failed: {other:?}"),
            }
        }
        Ok(())
    }

    fn apply(&mut self, attempt: &Attempt, resolved: &[Resolved]) {
        for (planned, outcome) in attempt.transfers.iter().zip(resolved) {
            if outcome.accepted {
                self.expected[planned.debit] -= planned.cents;
                self.expected[planned.credit] += planned.cents;
            }
        }
    }

    async fn rounds(
        &mut self,
        scenario: Scenario,
        rounds: u32,
        report: &mut ScenarioReport,
    ) -> anyhow::Result<()> {
        for round in 1..=rounds {
            let done = if scenario == Scenario::Callbacks {
                self.callback_round(report).await
            } else {
                self.round(scenario, report).await
            };
            done.with_context(|| format!("{} round {round}", scenario.name()))?;
            report.rounds = round;
            tracing::info!(scenario = scenario.name(), round, "round done");
        }
        Ok(())
    }

    /// One round: load, the fault, recovery, more load, then the checks.
    async fn round(
        &mut self,
        scenario: Scenario,
        report: &mut ScenarioReport,
    ) -> anyhow::Result<()> {
        let load = self.start_load();
        let before = self.load.mul_f64(rand::rng().random_range(0.5..1.0));
        tokio::time::sleep(before).await;
        let back = match scenario {
            Scenario::Kill => {
                self.kill_server().await?;
                self.spawn_server()?;
                Instant::now()
            }
            Scenario::DbRestart => {
                self.crash_database().await?;
                tokio::time::sleep(self.outage).await;
                self.cluster = Some(Cluster::start(self.options.clone()).await?);
                Instant::now()
            }
            Scenario::Freeze => {
                let proxy = self.proxy.as_ref().context("freeze needs the embedded database")?;
                proxy.freeze(true);
                // Longer than the request timeout: requests waiting on the database must be
                // answered (503) by the server's own timeout.
                tokio::time::sleep(self.request_timeout + Duration::from_secs(1)).await;
                proxy.freeze(false);
                Instant::now()
            }
            Scenario::Failover => {
                let command = self.failover_command.as_deref().context("--failover-command")?;
                let status = tokio::process::Command::new("sh")
                    .args(["-c", command])
                    .stdin(Stdio::null())
                    // Its progress would mix with the report on stdout.
                    .stdout(Stdio::null())
                    .status()
                    .await?;
                anyhow::ensure!(status.success(), "the failover command failed ({status})");
                Instant::now()
            }
            Scenario::Callbacks => anyhow::bail!("callbacks rounds have no load and no fault"),
        };
        let recovery = load.recovery_after(back, Duration::from_secs(60)).await;
        tokio::time::sleep(self.load).await;
        let log = load.stop().await;
        let recovery = recovery.context("no payment succeeded within 60 s of the fault's end")?;
        let recovery_ms = recovery.as_millis() as u64;
        report.recoveries.push(recovery_ms);
        if matches!(scenario, Scenario::DbRestart | Scenario::Freeze) && recovery > RECOVERY_LIMIT {
            report.slow_recoveries += 1;
            tracing::warn!(recovery_ms, "recovery took longer than 5 s");
        }
        self.wait_ready().await?;
        self.check(log, report).await
    }

    fn start_load(&self) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(RoundLog::default()));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..self.clients {
            let client = Client {
                http: self.http.clone(),
                base: Arc::clone(&self.base),
                org_key: Arc::clone(&self.org_key),
                app_key: Arc::clone(&self.app_key),
                accounts: Arc::clone(&self.accounts),
                stop: Arc::clone(&stop),
                log: Arc::clone(&log),
            };
            tasks.spawn(client.run());
        }
        Load { stop, log, tasks }
    }

    async fn kill_server(&mut self) -> anyhow::Result<()> {
        let mut server = self.server.take().context("no server running")?;
        server.child.start_kill()?;
        tokio::time::timeout(Duration::from_secs(10), server.child.wait())
            .await
            .context("the killed server did not exit")??;
        Ok(())
    }

    /// PostgreSQL's immediate shutdown: SIGQUIT to the postmaster, which is what `pg_ctl stop
    /// -m immediate` sends. Every backend exits at once without a checkpoint; the next start
    /// recovers from the WAL.
    async fn crash_database(&mut self) -> anyhow::Result<()> {
        let cluster = self.cluster.take().context("no database running")?;
        let pid = Pid::from_raw(cluster.pid());
        kill(pid, Signal::SIGQUIT).context("could not signal postgres")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while process_alive(pid) {
            anyhow::ensure!(Instant::now() < deadline, "postgres survived an immediate shutdown");
            tokio::time::sleep(BACKOFF).await;
        }
        // Dropping the cluster reaps the postmaster and releases its data directory's lock.
        drop(cluster);
        Ok(())
    }

    /// Replays what is unknown, then checks the round: presence, replays, balances, invariants.
    async fn check(&mut self, log: RoundLog, report: &mut ScenarioReport) -> anyhow::Result<()> {
        report.requests += log.requests;
        report.unavailable += log.unavailable;
        report.server_errors += log.server_errors;
        report.hangs += log.hangs;
        report.latency_ms_max = report.latency_ms_max.max(log.latency_ms_max);
        let mut accepted: Vec<uuid::Uuid> = Vec::new();
        if std::mem::take(&mut self.inject_lost_ack) {
            let never_sent = Attempt::payment(&self.accounts, FLOAT, PURSES.start, 1);
            let id = never_sent.transfers[0].id;
            let resolved = vec![Resolved { id, accepted: true, stamp: String::new() }];
            tracing::warn!(%id, "counting a transfer as acknowledged that was never sent");
            report.acknowledged += 1;
            self.apply(&never_sent, &resolved);
            accepted.push(id);
        }
        for (attempt, resolved) in &log.acknowledged {
            report.acknowledged += resolved.len() as u64;
            self.apply(attempt, resolved);
            accepted.extend(resolved.iter().filter(|r| r.accepted).map(|r| r.id));
        }
        for attempt in &log.unknown {
            let resolved = self.replay(attempt).await?;
            report.resolved_by_replay += resolved.len() as u64;
            // Sent again, a transfer whose outcome is now known must repeat it exactly.
            let again = self.replay(attempt).await?;
            report.doubled += differences(&resolved, &again);
            self.apply(attempt, &resolved);
            accepted.extend(resolved.iter().filter(|r| r.accepted).map(|r| r.id));
        }
        for (attempt, resolved) in log.acknowledged.iter().take(REPLAYS_OF_ACKNOWLEDGED) {
            let again = self.replay(attempt).await?;
            report.doubled += differences(resolved, &again);
        }
        for id in accepted {
            if self.store.transfer(self.org, TransferId(id)).await?.is_none() {
                tracing::error!(%id, "an acknowledged transfer is missing");
                report.lost += 1;
            }
        }
        let api = Api { http: self.http.clone(), base: Arc::clone(&self.base) };
        for (index, account) in self.accounts.iter().enumerate() {
            let view = api.get(&self.org_key, &self.app_key, &account.path).await?;
            let actual = view["balance"]["actual"].as_str().and_then(cents).context("a balance")?;
            if actual != self.expected[index] {
                tracing::error!(
                    account = %account.id,
                    actual,
                    expected = self.expected[index],
                    "a balance is not the sum of the acknowledged transfers"
                );
                report.balance_mismatches += 1;
            }
        }
        let violations = self.store.verify().await?;
        for violation in &violations {
            tracing::error!(%violation, "a ledger invariant does not hold");
        }
        report.invariant_breaks += violations.len() as u64;
        Ok(())
    }

    /// Sends `attempt` again, with the same ids and body, until it gets a definite answer.
    async fn replay(&self, attempt: &Attempt) -> anyhow::Result<Vec<Resolved>> {
        let deadline = Instant::now() + REPLAY_TIMEOUT;
        loop {
            match send(&self.http, &self.base, &self.org_key, &self.app_key, attempt).await {
                Answer::Done { resolved, .. } => return Ok(resolved),
                Answer::Failed { status, .. } if status.is_some_and(|s| s != 503) => {
                    anyhow::bail!("a replay was answered {status:?}");
                }
                Answer::Failed { .. } => {}
            }
            anyhow::ensure!(Instant::now() < deadline, "a replay got no answer within 60 s");
            tokio::time::sleep(BACKOFF * 4).await;
        }
    }

    async fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            if let Some(pid) = server.child.id().and_then(|pid| i32::try_from(pid).ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            if tokio::time::timeout(Duration::from_secs(30), server.child.wait()).await.is_err() {
                let _ = server.child.kill().await;
            }
        }
        if let Some(proxy) = &self.proxy {
            proxy.task.abort();
        }
        self.providers.task.abort();
        if let Some(cluster) = self.cluster.take()
            && let Err(error) = cluster.stop().await
        {
            tracing::warn!(error = %crate::error_chain(&error), "could not stop PostgreSQL");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The `callbacks` scenario
// ---------------------------------------------------------------------------------------------

/// How soon the server first asks a provider about a payment no callback settled (its
/// `--provider-query-after-ms`); its worker looks for due payments every second.
const PROVIDER_QUERY_AFTER: Duration = Duration::from_millis(100);
/// The longest a provider keeps a `callbacks` payment's outcome undecided: each round picks a
/// delay up to this per customer, so that callbacks arrive before, with or after the server's
/// status queries.
const CALLBACK_DELAY_MAX_MS: u64 = 1_500;
/// How long a round's payments may take to settle, and the providers to deliver their
/// callbacks.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The pause between two looks at the simulators' records of what they delivered.
const DELIVERY_POLL: Duration = Duration::from_millis(5);
/// The payout purses' starting balance, in cents.
const PAYOUT_FUNDING_CENTS: i64 = 1_000_000_000;
/// The M-Pesa paybill and the MoMo account of the scenario's channels.
const MPESA_CHANNEL: &str = "600000";
const MOMO_CHANNEL: &str = "momo-main";

/// The M-Pesa and MoMo simulators, served on a loopback port of this process.
struct Providers {
    mpesa: mpesa::Simulator,
    momo: momo::Simulator,
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Providers {
    async fn start() -> anyhow::Result<Self> {
        let (mpesa, momo) = (mpesa::Simulator::new(), momo::Simulator::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let router = hazina_simulator::router(&mpesa, &momo);
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "the provider simulators stopped");
            }
        });
        Ok(Self { mpesa, momo, base, task })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProviderKind {
    Mpesa,
    Momo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// From a purse to the customer's mobile money (M-Pesa B2C, MoMo transfer).
    Payout,
    /// From the customer's mobile money into their wallet (STK push, MoMo request to pay).
    Collection,
}

/// How the provider tells the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Told {
    /// Its callback, delivered twice.
    Twice,
    /// No callback: only the server's status query learns it.
    Withheld,
}

/// One customer of the scenario and what its provider does with its payments. Each round
/// makes one payment per case, all at once.
struct Case {
    provider: ProviderKind,
    direction: Direction,
    number: &'static str,
    /// The provider's failure code; `None` when the payment succeeds.
    failure: Option<&'static str>,
    told: Told,
}

const fn case(
    provider: ProviderKind,
    direction: Direction,
    number: &'static str,
    failure: Option<&'static str>,
    told: Told,
) -> Case {
    Case { provider, direction, number, failure, told }
}

const CASES: &[Case] = {
    use Direction::{Collection, Payout};
    use ProviderKind::{Momo, Mpesa};
    use Told::{Twice, Withheld};
    &[
        // M-Pesa B2C. A failed payout's result is never withheld: Daraja's transaction status
        // knows only payments that succeeded, so the server would (rightly) keep asking.
        case(Mpesa, Payout, "+254711100001", None, Twice),
        case(Mpesa, Payout, "+254711100002", None, Withheld),
        case(Mpesa, Payout, "+254711100003", Some("2001"), Twice),
        // STK push: its query answers failures too.
        case(Mpesa, Collection, "+254711100011", None, Twice),
        case(Mpesa, Collection, "+254711100012", None, Withheld),
        case(Mpesa, Collection, "+254711100013", Some("1032"), Twice),
        case(Mpesa, Collection, "+254711100014", Some("1032"), Withheld),
        // MoMo, failing with MTN's sandbox numbers.
        case(Momo, Payout, "+46733123401", None, Twice),
        case(Momo, Payout, "+46733123402", None, Withheld),
        case(Momo, Payout, "+46733123455", Some("NOT_ENOUGH_FUNDS"), Twice),
        case(Momo, Collection, "+46733123411", None, Twice),
        case(Momo, Collection, "+46733123451", Some("APPROVAL_REJECTED"), Twice),
        case(Momo, Collection, "+46733123452", Some("EXPIRED"), Withheld),
    ]
};

impl Case {
    fn digits(&self) -> &'static str {
        self.number.trim_start_matches('+')
    }

    fn currency(&self) -> &'static str {
        match self.provider {
            ProviderKind::Mpesa => "KES",
            ProviderKind::Momo => "EUR",
        }
    }

    fn channel(&self) -> &'static str {
        match self.provider {
            ProviderKind::Mpesa => MPESA_CHANNEL,
            ProviderKind::Momo => MOMO_CHANNEL,
        }
    }

    /// Scripts the case's number in its simulator, deciding after `delay`.
    fn script(&self, providers: &Providers, delay: Duration) {
        match self.provider {
            ProviderKind::Mpesa => {
                let script =
                    self.failure.map_or_else(mpesa::Script::success, mpesa::Script::failure);
                let told = match self.told {
                    Told::Twice => mpesa::CallbackMode::Twice,
                    Told::Withheld => mpesa::CallbackMode::Withheld,
                };
                providers
                    .mpesa
                    .script(self.digits(), script.with_callback(told).with_callback_delay(delay));
            }
            ProviderKind::Momo => {
                let told = match self.told {
                    Told::Twice => momo::CallbackMode::Twice,
                    Told::Withheld => momo::CallbackMode::None,
                };
                let script = momo::Script::sandbox(self.digits()).callback(told).delay(delay);
                providers.momo.script(self.digits(), script);
            }
        }
    }

    /// The customer's side of a payment.
    fn mobile(&self) -> Value {
        json!({ "customer": {
            "customerNumber": { "number": self.number, "provider": "cellular" },
            "channelNumber": self.channel(),
        } })
    }
}

/// The channels and accounts of the `callbacks` scenario, and what the suite expects of them.
struct ProviderBooks {
    /// The floats (KES, EUR), the payout purses (KES, EUR), then each collection's wallet.
    accounts: Vec<Account>,
    /// Each account's balance as the providers' decisions make it, in cents.
    expected: Vec<i64>,
    /// Per case, the account it pays from or into.
    case_accounts: Vec<usize>,
    /// How many of the simulators' deliveries the suite has already sent again.
    mpesa_seen: usize,
    momo_seen: usize,
}

/// One payment of a `callbacks` round.
struct ProviderPayment {
    case: &'static Case,
    id: uuid::Uuid,
    account: usize,
    cents: i64,
    body: Value,
}

/// What one round's copies of callbacks came to.
#[derive(Debug, Default)]
struct CallbackLog {
    sent: u64,
    server_errors: u64,
    hangs: u64,
    latency_ms_max: u64,
    mpesa_seen: usize,
    momo_seen: usize,
}

/// An answer to a request: its status (none for a broken connection), whether it carried
/// `Retry-After`, whether the client gave up waiting, how long it took, and its JSON body.
struct Reply {
    status: Option<u16>,
    retry_after: bool,
    timed_out: bool,
    latency: Duration,
    body: Option<Value>,
}

/// Whether a payment's answer tells its outcome: made (201), with the provider (202), or not
/// made (409 `payment_failed`), each naming its transaction.
fn answered(status: Option<u16>, body: Option<&Value>) -> bool {
    let Some(body) = body.filter(|body| body["transactionId"].is_string()) else {
        return false;
    };
    match status {
        Some(201 | 202) => true,
        Some(409) => body["code"] == "payment_failed",
        _ => false,
    }
}

async fn request(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let started = Instant::now();
    let mut builder = http.request(method, url);
    if let Some(key) = key {
        builder = builder.bearer_auth(key);
    }
    if let Some(body) = body {
        builder = builder.json(body);
    }
    match builder.send().await {
        Ok(response) => {
            let status = Some(response.status().as_u16());
            let retry_after = response.headers().contains_key(reqwest::header::RETRY_AFTER);
            let body = response.json().await.ok();
            Reply { status, retry_after, timed_out: false, latency: started.elapsed(), body }
        }
        Err(error) => Reply {
            status: None,
            retry_after: false,
            timed_out: error.is_timeout(),
            latency: started.elapsed(),
            body: None,
        },
    }
}

impl CallbackLog {
    fn note(&mut self, what: &str, reply: &Reply) {
        self.latency_ms_max = self.latency_ms_max.max(reply.latency.as_millis() as u64);
        match reply.status {
            Some(status) if (200..300).contains(&status) => {}
            Some(status) => {
                tracing::error!(status, body = ?reply.body, what, "a callback was not taken");
                self.server_errors += 1;
            }
            None if reply.timed_out => {
                tracing::error!(what, "a callback got no answer in time");
                self.hangs += 1;
            }
            None => tracing::warn!(what, "a callback's connection broke"),
        }
    }
}

/// Sends every callback the simulators deliver again, `copies` at once, until stopped; then
/// waits for the copies in flight. The providers' own deliveries must have been taken too.
async fn replay_callbacks(
    http: reqwest::Client,
    mpesa: mpesa::Simulator,
    momo: momo::Simulator,
    copies: usize,
    mut log: CallbackLog,
    stop: Arc<AtomicBool>,
) -> CallbackLog {
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let mut found = Vec::new();
        for delivery in mpesa.deliveries().into_iter().skip(log.mpesa_seen) {
            log.mpesa_seen += 1;
            let taken = match (delivery.status, &delivery.error) {
                (Some(status), _) => Reply {
                    status: Some(status),
                    retry_after: false,
                    timed_out: false,
                    latency: Duration::ZERO,
                    body: delivery.reply.as_deref().and_then(|r| serde_json::from_str(r).ok()),
                },
                (None, error) => Reply {
                    status: None,
                    retry_after: false,
                    timed_out: error.as_deref().is_some_and(|e| e.contains("no answer")),
                    latency: Duration::ZERO,
                    body: None,
                },
            };
            log.note("M-Pesa's own delivery", &taken);
            found.push((reqwest::Method::POST, delivery.url, delivery.body));
        }
        for callback in momo.callbacks().into_iter().skip(log.momo_seen) {
            log.momo_seen += 1;
            let taken = Reply {
                status: callback.delivery.as_ref().ok().copied(),
                retry_after: false,
                timed_out: false,
                latency: Duration::ZERO,
                body: None,
            };
            log.note("MoMo's own delivery", &taken);
            let method = reqwest::Method::from_bytes(callback.method.as_str().as_bytes())
                .unwrap_or(reqwest::Method::PUT);
            found.push((method, callback.url, callback.body));
        }
        for (method, url, body) in found {
            let body = Arc::new(body);
            for _ in 0..copies {
                let (http, method, url, body) =
                    (http.clone(), method.clone(), url.clone(), Arc::clone(&body));
                in_flight
                    .spawn(async move { request(&http, method, &url, None, Some(&body)).await });
            }
        }
        while let Some(joined) = in_flight.try_join_next() {
            if let Ok(reply) = joined {
                log.sent += 1;
                log.note("a copy", &reply);
            }
        }
        if stopping {
            break;
        }
        tokio::time::sleep(DELIVERY_POLL).await;
    }
    while let Some(joined) = in_flight.join_next().await {
        if let Ok(reply) = joined {
            log.sent += 1;
            log.note("a copy", &reply);
        }
    }
    log
}

impl World {
    /// The scenario's channels (to the simulators), payout purses funded from floats, and a
    /// wallet for each customer who pays in.
    async fn set_up_provider_books(&self) -> anyhow::Result<ProviderBooks> {
        let api = Api { http: self.http.clone(), base: Arc::clone(&self.base) };
        let simulators = &self.providers.base;
        api.post(
            &self.org_key,
            "/v1/payment-channels",
            &json!({
                "provider": "mpesa", "channelNumber": MPESA_CHANNEL, "currencyCode": "KES",
                "baseUrl": format!("{simulators}/simulator/mpesa"),
                "credentials": {
                    "consumerKey": "key", "consumerSecret": "secret",
                    "passkey": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
                    "initiatorName": "chaos", "securityCredential": "encrypted",
                },
            }),
        )
        .await?;
        api.post(
            &self.org_key,
            "/v1/payment-channels",
            &json!({
                "provider": "momo", "channelNumber": MOMO_CHANNEL, "currencyCode": "EUR",
                "baseUrl": format!("{simulators}/simulator/momo"),
                "credentials": {
                    "apiUser": "6c0bd5a2-4b8c-4d1e-9b6a-0e6f2f0a1c11", "apiKey": "api-key",
                    "subscriptionKey": "subscription", "targetEnvironment": "sandbox",
                },
            }),
        )
        .await?;
        let purse = |body: &Value| -> anyhow::Result<Account> {
            let id = body["purseId"].as_str().context("a purse id")?.to_owned();
            Ok(Account {
                party: json!({ "purse": { "purseId": id } }),
                path: format!("/v1/purses/{id}"),
                id,
            })
        };
        let mut accounts = Vec::new();
        for currency in ["KES", "EUR"] {
            let float = json!({ "currencyCode": currency, "overdraftLimit": "1000000000000" });
            accounts.push(purse(&api.post(&self.org_key, "/v1/purses", &float).await?)?);
        }
        for currency in ["KES", "EUR"] {
            let body = json!({ "currencyCode": currency });
            accounts.push(purse(&api.post(&self.org_key, "/v1/purses", &body).await?)?);
        }
        let mut expected = vec![-PAYOUT_FUNDING_CENTS, -PAYOUT_FUNDING_CENTS];
        for (float, currency) in [(0, "KES"), (1, "EUR")] {
            let funding = json!({
                "transactionId": uuid::Uuid::now_v7(),
                "debitParty": accounts[float].party,
                "creditParty": accounts[float + 2].party,
                "value": { "currencyCode": currency, "amount": amount(PAYOUT_FUNDING_CENTS) },
            });
            let funded = api.post(&self.app_key, "/v1/payments", &funding).await?;
            anyhow::ensure!(funded["status"] == "success", "funding a payout purse: {funded}");
            expected.push(PAYOUT_FUNDING_CENTS);
        }
        let mut case_accounts = Vec::new();
        for case in CASES {
            if case.direction == Direction::Payout {
                case_accounts.push(if case.provider == ProviderKind::Mpesa { 2 } else { 3 });
                continue;
            }
            let number =
                json!({ "customerNumber": { "number": case.number, "provider": "cellular" } });
            let customer = api.post(&self.app_key, "/v1/customers", &number).await?;
            let customer = customer["customerId"].as_str().context("a customer id")?.to_owned();
            let wallet = api
                .post(
                    &self.app_key,
                    &format!("/v1/customers/{customer}/wallets"),
                    &json!({ "walletId": "main", "currencyCode": case.currency() }),
                )
                .await?;
            case_accounts.push(accounts.len());
            accounts.push(Account {
                id: wallet["accountId"].as_str().context("a wallet's account id")?.to_owned(),
                party: json!({ "wallet": { "customerId": customer, "walletId": "main" } }),
                path: format!("/v1/customers/{customer}/wallets/main"),
            });
            expected.push(0);
        }
        Ok(ProviderBooks { accounts, expected, case_accounts, mpesa_seen: 0, momo_seen: 0 })
    }

    /// One `callbacks` round: a payment per case, all at once, with every callback sent again
    /// in parallel copies while the server's worker asks the providers too; then the checks.
    async fn callback_round(&mut self, report: &mut ScenarioReport) -> anyhow::Result<()> {
        if self.provider_books.is_none() {
            self.provider_books = Some(self.set_up_provider_books().await?);
        }
        let mut books = self.provider_books.take().context("the scenario's books")?;
        let inject = std::mem::take(&mut self.inject_double_post);
        let result = self.callback_round_with(&mut books, inject, report).await;
        self.provider_books = Some(books);
        result
    }

    async fn callback_round_with(
        &self,
        books: &mut ProviderBooks,
        inject_double_post: bool,
        report: &mut ScenarioReport,
    ) -> anyhow::Result<()> {
        let payments: Vec<ProviderPayment> = {
            let mut rng = rand::rng();
            CASES
                .iter()
                .zip(&books.case_accounts)
                .map(|(case, &account)| {
                    case.script(
                        &self.providers,
                        Duration::from_millis(rng.random_range(0..=CALLBACK_DELAY_MAX_MS)),
                    );
                    // Whole units: Daraja takes whole shillings.
                    let cents = match case.provider {
                        ProviderKind::Mpesa => rng.random_range(10..=500) * 100,
                        ProviderKind::Momo => rng.random_range(1..=50) * 100,
                    };
                    let id = uuid::Uuid::now_v7();
                    let ours = &books.accounts[account].party;
                    let (debit, credit) = match case.direction {
                        Direction::Payout => (ours.clone(), case.mobile()),
                        Direction::Collection => (case.mobile(), ours.clone()),
                    };
                    let body = json!({
                        "transactionId": id,
                        "debitParty": debit,
                        "creditParty": credit,
                        "value": { "currencyCode": case.currency(), "amount": amount(cents) },
                        "narration": "chaos callbacks",
                    });
                    ProviderPayment { case, id, account, cents, body }
                })
                .collect()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let replayer = tokio::spawn(replay_callbacks(
            self.http.clone(),
            self.providers.mpesa.clone(),
            self.providers.momo.clone(),
            self.callback_copies,
            CallbackLog {
                mpesa_seen: books.mpesa_seen,
                momo_seen: books.momo_seen,
                ..CallbackLog::default()
            },
            Arc::clone(&stop),
        ));
        let outcome = self.pay_and_settle(&payments, report).await;
        stop.store(true, Ordering::Relaxed);
        let log = replayer.await.context("the callback sender panicked")?;
        books.mpesa_seen = log.mpesa_seen;
        books.momo_seen = log.momo_seen;
        report.requests += log.sent;
        report.callbacks_sent += log.sent;
        report.server_errors += log.server_errors;
        report.hangs += log.hangs;
        report.latency_ms_max = report.latency_ms_max.max(log.latency_ms_max);
        let settled = outcome?;
        if inject_double_post {
            self.post_a_payout_again(books, &payments).await?;
        }
        self.check_provider_payments(books, &payments, &settled, report).await
    }

    /// Moves the first payout's amount out of its purse once more, as a second post of it
    /// would, into the float (`--inject-double-post`).
    async fn post_a_payout_again(
        &self,
        books: &ProviderBooks,
        payments: &[ProviderPayment],
    ) -> anyhow::Result<()> {
        let payout = payments
            .iter()
            .find(|p| p.case.direction == Direction::Payout)
            .context("a payout to post again")?;
        let float = usize::from(payout.case.provider == ProviderKind::Momo);
        let body = json!({
            "transactionId": uuid::Uuid::now_v7(),
            "debitParty": books.accounts[payout.account].party,
            "creditParty": books.accounts[float].party,
            "value": { "currencyCode": payout.case.currency(), "amount": amount(payout.cents) },
        });
        tracing::warn!(payment = %payout.id, "posting a payout's amount a second time");
        let api = Api { http: self.http.clone(), base: Arc::clone(&self.base) };
        let posted = api.post(&self.app_key, "/v1/payments", &body).await?;
        anyhow::ensure!(posted["status"] == "success", "the injected post failed: {posted}");
        Ok(())
    }

    /// Sends the round's payments at once (replaying any whose answer was unknown), then waits
    /// until each has settled and the providers have delivered the callbacks they meant to.
    /// Answers each payment's final view (`None`: not settled in time).
    async fn pay_and_settle(
        &self,
        payments: &[ProviderPayment],
        report: &mut ScenarioReport,
    ) -> anyhow::Result<Vec<Option<Value>>> {
        let url = format!("{}/v1/payments", self.base);
        let mut sends = tokio::task::JoinSet::new();
        for (index, payment) in payments.iter().enumerate() {
            let (http, url, key, body) =
                (self.http.clone(), url.clone(), Arc::clone(&self.app_key), payment.body.clone());
            sends.spawn(async move {
                let deadline = Instant::now() + REPLAY_TIMEOUT;
                let mut replies = Vec::new();
                loop {
                    let reply =
                        request(&http, reqwest::Method::POST, &url, Some(&key), Some(&body)).await;
                    let known = answered(reply.status, reply.body.as_ref());
                    let retriable = reply.status.is_none_or(|s| s == 503);
                    replies.push(reply);
                    if known || !retriable || Instant::now() >= deadline {
                        return (index, replies);
                    }
                    tokio::time::sleep(BACKOFF * 4).await;
                }
            });
        }
        while let Some(joined) = sends.join_next().await {
            let (index, replies) = joined.context("a payment's sender panicked")?;
            report.requests += 1;
            for (attempt, reply) in replies.iter().enumerate() {
                report.latency_ms_max = report.latency_ms_max.max(reply.latency.as_millis() as u64);
                match reply.status {
                    status if answered(status, reply.body.as_ref()) => {
                        if attempt == 0 {
                            report.acknowledged += 1;
                        } else {
                            report.resolved_by_replay += 1;
                        }
                    }
                    Some(503) if reply.retry_after => report.unavailable += 1,
                    Some(status) => {
                        tracing::error!(status, body = ?reply.body, payment = %payments[index].id,
                            "a provider payment was answered unexpectedly");
                        report.server_errors += 1;
                    }
                    None if reply.timed_out => report.hangs += 1,
                    None => {}
                }
            }
        }
        let settled = self.wait_settled(payments, report).await;
        self.wait_delivered(payments).await?;
        Ok(settled)
    }

    /// Each payment's view once it is no longer `queued` or `pending_confirmation`, waiting
    /// at most [`SETTLE_TIMEOUT`] for all of them.
    async fn wait_settled(
        &self,
        payments: &[ProviderPayment],
        report: &mut ScenarioReport,
    ) -> Vec<Option<Value>> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let mut settled: Vec<Option<Value>> = vec![None; payments.len()];
        loop {
            for (payment, view) in payments.iter().zip(settled.iter_mut()) {
                if view.is_some() {
                    continue;
                }
                let url = format!("{}/v1/payments/{}", self.base, payment.id);
                let reply =
                    request(&self.http, reqwest::Method::GET, &url, Some(&self.app_key), None)
                        .await;
                match (reply.status, reply.body) {
                    (Some(200), Some(body))
                        if !matches!(
                            body["status"].as_str(),
                            Some("queued" | "pending_confirmation")
                        ) =>
                    {
                        *view = Some(body);
                    }
                    (Some(200 | 503) | None, _) => {}
                    (Some(status), body) => {
                        tracing::error!(status, ?body, payment = %payment.id,
                            "reading a payment was answered unexpectedly");
                        report.server_errors += 1;
                    }
                }
            }
            if settled.iter().all(Option::is_some) || Instant::now() >= deadline {
                return settled;
            }
            tokio::time::sleep(BACKOFF * 4).await;
        }
    }

    /// Waits until the providers delivered what each payment's script says they would (both
    /// copies of a doubled callback, the answer to an M-Pesa payout's status query), so that
    /// the suite has sent each of them again before the checks.
    async fn wait_delivered(&self, payments: &[ProviderPayment]) -> anyhow::Result<()> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let deliveries = self.providers.mpesa.deliveries();
            let callbacks = self.providers.momo.callbacks();
            let missing = payments.iter().find(|payment| {
                let id = payment.id.to_string();
                let mpesa = |kind: &str| {
                    let path = format!("/{kind}/{id}");
                    deliveries.iter().filter(|d| d.url.ends_with(&path)).count()
                };
                match (payment.case.provider, payment.case.told) {
                    (ProviderKind::Mpesa, Told::Twice) => mpesa("result") + mpesa("stk") < 2,
                    (ProviderKind::Mpesa, Told::Withheld) => {
                        payment.case.direction == Direction::Payout && mpesa("status") < 1
                    }
                    (ProviderKind::Momo, Told::Twice) => {
                        callbacks.iter().filter(|c| c.body["externalId"] == id.as_str()).count() < 2
                    }
                    (ProviderKind::Momo, Told::Withheld) => false,
                }
            });
            let Some(missing) = missing else { return Ok(()) };
            anyhow::ensure!(
                Instant::now() < deadline,
                "the simulator did not deliver the callbacks of payment {} ({}) within 60 s",
                missing.id,
                missing.case.number
            );
            tokio::time::sleep(DELIVERY_POLL).await;
        }
    }

    /// The round's checks: each payment settled as its provider decided, each payout paid
    /// once, each reservation resolved once, every balance the sum of the successes with
    /// nothing left reserved, and the ledger's invariants.
    async fn check_provider_payments(
        &self,
        books: &mut ProviderBooks,
        payments: &[ProviderPayment],
        settled: &[Option<Value>],
        report: &mut ScenarioReport,
    ) -> anyhow::Result<()> {
        let paid_out = self.providers.mpesa.transactions();
        let momo_payments = self.providers.momo.payments();
        let mut resolutions: std::collections::HashMap<uuid::Uuid, Vec<(TransferId, bool)>> =
            std::collections::HashMap::new();
        let touched: std::collections::BTreeSet<usize> =
            payments.iter().map(|payment| payment.account).collect();
        for account in touched {
            let id: uuid::Uuid = books.accounts[account].id.parse()?;
            for transfer in
                self.store.account_transfers(self.org, AccountId(id), None, 100_000).await?
            {
                let posted = match transfer.kind {
                    TransferKind::PostPending => true,
                    TransferKind::VoidPending | TransferKind::ExpirePending => false,
                    _ => continue,
                };
                if let Some(pending) = transfer.pending_id {
                    let seen = resolutions.entry(pending.0).or_default();
                    if !seen.iter().any(|(id, _)| *id == transfer.id) {
                        seen.push((transfer.id, posted));
                    }
                }
            }
        }
        for (payment, view) in payments.iter().zip(settled) {
            let case = payment.case;
            let succeeds = case.failure.is_none();
            let id = payment.id.to_string();
            let status = view.as_ref().and_then(|v| v["status"].as_str());
            let wanted = if succeeds { "success" } else { "failed" };
            if status != Some(wanted) {
                tracing::error!(%id, number = case.number, ?status, wanted, ?view,
                    "a payment did not settle as its provider decided");
                report.lost += 1;
            }
            if succeeds {
                let sign = if case.direction == Direction::Payout { -1 } else { 1 };
                books.expected[payment.account] += sign * payment.cents;
            }
            let resolved = resolutions.get(&payment.id).map_or(&[][..], Vec::as_slice);
            match resolved {
                [(_, posted)] if *posted == succeeds => {}
                [] | [_] => {
                    tracing::error!(%id, ?resolved, succeeds, "a reservation was not resolved as the provider decided");
                    report.lost += 1;
                }
                _ => {
                    tracing::error!(%id, ?resolved, "a reservation was resolved more than once");
                    report.doubled += 1;
                }
            }
            if case.direction == Direction::Payout {
                let paid = match case.provider {
                    ProviderKind::Mpesa => paid_out
                        .iter()
                        .filter(|t| t.kind == mpesa::TransactionKind::B2c)
                        .filter(|t| t.secondary_id == id && t.succeeded())
                        .count(),
                    ProviderKind::Momo => momo_payments
                        .iter()
                        .filter(|p| p.status["externalId"] == id.as_str())
                        .filter(|p| p.status["status"] == "SUCCESSFUL")
                        .count(),
                };
                if paid > 1 {
                    tracing::error!(%id, paid, "the provider paid a payout more than once");
                    report.doubled += 1;
                } else if (paid == 1) != succeeds {
                    tracing::error!(%id, paid, succeeds, "the provider did not pay as scripted");
                    report.lost += 1;
                }
            }
        }
        let api = Api { http: self.http.clone(), base: Arc::clone(&self.base) };
        for (account, expected) in books.accounts.iter().zip(&books.expected) {
            let view = api.get(&self.org_key, &self.app_key, &account.path).await?;
            let balance = |name: &str| view["balance"][name].as_str().and_then(cents);
            let (actual, available) = (balance("actual"), balance("available"));
            if actual != Some(*expected) || available != Some(*expected) {
                tracing::error!(account = %account.id, ?actual, ?available, expected,
                    "a balance is not the sum of the payments that succeeded");
                report.balance_mismatches += 1;
            }
        }
        let violations = self.store.verify().await?;
        for violation in &violations {
            tracing::error!(%violation, "a ledger invariant does not hold");
        }
        report.invariant_breaks += violations.len() as u64;
        Ok(())
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference.
fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// How many transfers two answers to the same request disagree on.
fn differences(first: &[Resolved], again: &[Resolved]) -> u64 {
    if first.len() != again.len() {
        return first.len().max(again.len()) as u64;
    }
    let differ = first.iter().zip(again).filter(|(a, b)| a != b).count();
    if differ > 0 {
        tracing::error!(?first, ?again, "a replay answered differently");
    }
    differ as u64
}

fn process_alive(pid: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X')
    })
}

/// `"-12.34"` as cents.
fn cents(amount: &str) -> Option<i64> {
    let (negative, digits) = match amount.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, amount),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if fraction.len() > 2 {
        return None;
    }
    let fraction = format!("{fraction:0<2}");
    let value = whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(fraction.parse().ok()?)?;
    Some(if negative { -value } else { value })
}

fn amount(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The running server.
struct Server {
    child: tokio::process::Child,
}

/// A request the load sends: a payment (one transfer) or a batch of transfers.
#[derive(Debug, Clone)]
struct Attempt {
    path: &'static str,
    org_key: bool,
    body: Value,
    transfers: Vec<Planned>,
}

/// One transfer of an attempt, and what it does to balances if accepted.
#[derive(Debug, Clone)]
struct Planned {
    id: uuid::Uuid,
    debit: usize,
    credit: usize,
    cents: i64,
}

impl Attempt {
    fn payment(accounts: &[Account], debit: usize, credit: usize, cents: i64) -> Self {
        let id = uuid::Uuid::now_v7();
        Self {
            path: "/v1/payments",
            org_key: false,
            body: json!({
                "transactionId": id,
                "debitParty": accounts[debit].party,
                "creditParty": accounts[credit].party,
                "value": { "currencyCode": "KES", "amount": amount(cents) },
                "narration": "chaos",
            }),
            transfers: vec![Planned { id, debit, credit, cents }],
        }
    }

    fn batch(accounts: &[Account], legs: &[(usize, usize, i64)]) -> Self {
        let transfers: Vec<Planned> = legs
            .iter()
            .map(|&(debit, credit, cents)| Planned {
                id: uuid::Uuid::now_v7(),
                debit,
                credit,
                cents,
            })
            .collect();
        let bodies: Vec<Value> = transfers
            .iter()
            .map(|t| {
                let value = json!({ "currencyCode": "KES", "amount": amount(t.cents) });
                json!({
                    "transferId": t.id, "type": "post", "code": "chaos",
                    "legs": [
                        { "accountId": accounts[t.debit].id, "side": "debit", "value": value },
                        { "accountId": accounts[t.credit].id, "side": "credit", "value": value },
                    ],
                })
            })
            .collect();
        Self {
            path: "/v1/transfers/batch",
            org_key: true,
            body: json!({ "transfers": bodies }),
            transfers,
        }
    }

    /// A random request: a payment into a purse or a wallet from the float, between two
    /// purses, or a batch of five transfers from the float to purses.
    fn random(accounts: &[Account]) -> Self {
        let mut rng = rand::rng();
        let cents = rng.random_range(1..10_000);
        match rng.random_range(0..4) {
            0 => Self::payment(accounts, FLOAT, rng.random_range(PURSES), cents),
            1 => Self::payment(accounts, FLOAT, rng.random_range(WALLETS), cents),
            2 => {
                let debit = rng.random_range(PURSES);
                let mut credit = rng.random_range(PURSES);
                if credit == debit {
                    credit = if debit + 1 < PURSES.end { debit + 1 } else { PURSES.start };
                }
                Self::payment(accounts, debit, credit, cents)
            }
            _ => {
                let legs: Vec<(usize, usize, i64)> = (0..5)
                    .map(|_| (FLOAT, rng.random_range(PURSES), rng.random_range(1..10_000)))
                    .collect();
                Self::batch(accounts, &legs)
            }
        }
    }
}

/// A transfer's definite outcome, as answered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolved {
    id: uuid::Uuid,
    accepted: bool,
    /// What identifies the recorded transfer in the answer (its time), so that a replay that
    /// applied it again would differ.
    stamp: String,
}

#[derive(Debug)]
enum Answer {
    Done { resolved: Vec<Resolved>, latency: Duration },
    Failed { status: Option<u16>, retry_after: bool, timed_out: bool, latency: Duration },
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    org_key: &str,
    app_key: &str,
    attempt: &Attempt,
) -> Answer {
    let started = Instant::now();
    let key = if attempt.org_key { org_key } else { app_key };
    let sent = http
        .post(format!("{base}{}", attempt.path))
        .bearer_auth(key)
        .json(&attempt.body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => {
            return Answer::Failed {
                status: None,
                retry_after: false,
                timed_out: error.is_timeout(),
                latency: started.elapsed(),
            };
        }
    };
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key(reqwest::header::RETRY_AFTER);
    let body: Option<Value> = response.json().await.ok();
    let latency = started.elapsed();
    let failed = Answer::Failed { status: Some(status), retry_after, timed_out: false, latency };
    let Some(body) = body else { return failed };
    let resolved = match (attempt.path, status) {
        ("/v1/payments", status) if answered(Some(status), Some(&body)) => {
            let Some(planned) = attempt.transfers.first() else { return failed };
            vec![Resolved {
                id: planned.id,
                accepted: status == 201 && body["status"] == "success",
                stamp: body["createdAt"].to_string(),
            }]
        }
        ("/v1/transfers/batch", 200) => {
            let Some(outcomes) = body["outcomes"].as_array() else { return failed };
            outcomes
                .iter()
                .zip(&attempt.transfers)
                .map(|(outcome, planned)| Resolved {
                    id: planned.id,
                    accepted: outcome["result"] == "accepted",
                    stamp: outcome["transfer"]["createdAt"].to_string(),
                })
                .collect()
        }
        _ => return failed,
    };
    Answer::Done { resolved, latency }
}

/// What one round's clients saw.
#[derive(Debug, Default)]
struct RoundLog {
    requests: u64,
    acknowledged: Vec<(Attempt, Vec<Resolved>)>,
    unknown: Vec<Attempt>,
    successes: Vec<Instant>,
    unavailable: u64,
    server_errors: u64,
    hangs: u64,
    latency_ms_max: u64,
}

/// The load of a round: its clients and what they saw.
struct Load {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<RoundLog>>,
    tasks: tokio::task::JoinSet<()>,
}

impl Load {
    /// How long after `back` the first payment succeeded, waiting at most `timeout`.
    async fn recovery_after(&self, back: Instant, timeout: Duration) -> Option<Duration> {
        let deadline = back + timeout;
        loop {
            let first = {
                let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
                log.successes.iter().filter(|at| **at >= back).min().copied()
            };
            if let Some(at) = first {
                return Some(at - back);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(mut self) -> RoundLog {
        self.stop.store(true, Ordering::Relaxed);
        while self.tasks.join_next().await.is_some() {}
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *log)
    }
}

/// One HTTP client of the load.
struct Client {
    http: reqwest::Client,
    base: Arc<str>,
    org_key: Arc<str>,
    app_key: Arc<str>,
    accounts: Arc<Vec<Account>>,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<RoundLog>>,
}

impl Client {
    async fn run(self) {
        while !self.stop.load(Ordering::Relaxed) {
            let attempt = Attempt::random(&self.accounts);
            let answer = send(&self.http, &self.base, &self.org_key, &self.app_key, &attempt).await;
            let pause = {
                let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
                log.requests += 1;
                match answer {
                    Answer::Done { resolved, latency } => {
                        log.latency_ms_max = log.latency_ms_max.max(latency.as_millis() as u64);
                        if resolved.iter().any(|r| r.accepted) {
                            log.successes.push(Instant::now());
                        }
                        log.acknowledged.push((attempt, resolved));
                        false
                    }
                    Answer::Failed { status, retry_after, timed_out, latency } => {
                        match status {
                            Some(503) if retry_after => log.unavailable += 1,
                            Some(status) if status >= 500 => {
                                tracing::error!(status, "a server error");
                                log.server_errors += 1;
                            }
                            Some(status) => {
                                tracing::error!(status, body = %attempt.body, "an unexpected answer");
                                log.server_errors += 1;
                            }
                            None if timed_out => {
                                tracing::error!("a request got no answer in time");
                                log.hangs += 1;
                            }
                            None => {}
                        }
                        if status.is_some() || timed_out {
                            log.latency_ms_max = log.latency_ms_max.max(latency.as_millis() as u64);
                        }
                        log.unknown.push(attempt);
                        true
                    }
                }
            };
            if pause {
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}

/// A small JSON API client for setting up and reading balances.
struct Api {
    http: reqwest::Client,
    base: Arc<str>,
}

impl Api {
    async fn post(&self, key: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }

    /// A GET with the org key, or the app key for a customer's resources.
    async fn get(&self, org_key: &str, app_key: &str, path: &str) -> anyhow::Result<Value> {
        let key = if path.starts_with("/v1/customers") { app_key } else { org_key };
        let response =
            self.http.get(format!("{}{path}", self.base)).bearer_auth(key).send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }
}

/// A TCP proxy on loopback to PostgreSQL's Unix socket that can be frozen: while frozen it
/// forwards no byte in either direction and connects nothing new, but closes nothing either,
/// as a database host that stopped answering looks from the client.
struct Proxy {
    address: SocketAddr,
    frozen: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: PathBuf) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (frozen, watching) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                tokio::spawn(forward(client, upstream.clone(), watching.clone()));
            }
        });
        Ok(Self { address, frozen, task })
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

async fn thawed(frozen: &mut watch::Receiver<bool>) {
    // An error means the proxy is gone; forwarding then ends with the connection anyway.
    let _ = frozen.wait_for(|frozen| !*frozen).await;
}

async fn forward(
    client: tokio::net::TcpStream,
    upstream: PathBuf,
    mut frozen: watch::Receiver<bool>,
) {
    thawed(&mut frozen).await;
    let Ok(server) = tokio::net::UnixStream::connect(&upstream).await else { return };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Either side closing ends both: PostgreSQL's protocol has no half-closed state.
    tokio::select! {
        _ = pump(client_read, server_write, frozen.clone()) => {}
        _ = pump(server_read, client_write, frozen) => {}
    }
}

async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    mut frozen: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        thawed(&mut frozen).await;
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        thawed(&mut frozen).await;
        to.write_all(&buffer[..read]).await?;
    }
}

/// The org and its keys: the first start's (bootstrap), or new keys for the org already there
/// (a formation reused from an earlier run).
async fn keys(pool: &deadpool_postgres::Pool) -> anyhow::Result<(OrgId, String, String)> {
    use crate::tenancy;
    let failed = |error: tenancy::TenancyError| anyhow::anyhow!("{}: {}", error.code(), error);
    if let Some(made) = tenancy::bootstrap(pool).await.map_err(failed)? {
        return Ok((made.org, made.org_key.token, made.app_key.token));
    }
    let org = tenancy::only_org(pool, None).await.map_err(failed)?;
    let app = tenancy::app_by_name(pool, org, "default").await.map_err(failed)?;
    let org_key = tenancy::insert_key(pool, org, None, "chaos").await.map_err(failed)?;
    let app_key = tenancy::insert_key(pool, org, Some(app), "chaos").await.map_err(failed)?;
    Ok((org, org_key.token, app_key.token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_as_cents() {
        for value in [0, 1, 99, 100, 123_456, -5, -100_001] {
            let text = if value < 0 { format!("-{}", amount(-value)) } else { amount(value) };
            assert_eq!(cents(&text), Some(value), "{text}");
        }
        assert_eq!(cents("12"), Some(1_200));
        assert_eq!(cents("1.5"), Some(150));
        assert_eq!(cents("1.505"), None);
    }

    #[test]
    fn the_callback_cases_are_what_the_providers_do() {
        for case in CASES {
            match case.provider {
                ProviderKind::Momo => {
                    let outcome = case.failure.map_or(momo::Outcome::Successful, |code| {
                        momo::Outcome::Failed(code.to_owned())
                    });
                    let script = momo::Script::sandbox(case.digits());
                    assert_eq!(script.outcome, outcome, "{}", case.number);
                }
                // Daraja's transaction status knows only successful payouts: a failed one
                // whose result is withheld would never settle.
                ProviderKind::Mpesa => assert!(
                    !(case.direction == Direction::Payout
                        && case.failure.is_some()
                        && case.told == Told::Withheld),
                    "{}",
                    case.number
                ),
            }
        }
    }

    #[test]
    fn the_median_and_max_of_recoveries() {
        let mut report = ScenarioReport { recoveries: vec![30, 10, 20, 40], ..Default::default() };
        report.finish();
        assert_eq!((report.recovery_ms_p50, report.recovery_ms_max), (20, 40));
        assert!(report.passed());
        report.lost = 1;
        assert!(!report.passed());
    }
}
