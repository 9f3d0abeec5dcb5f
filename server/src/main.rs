//! The `hazina` binary: parses the command line, starts the database and runs a subcommand.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use hazina_server::config::{Cli, Command, KeysCommand, LogFormat};
use hazina_server::embedded::{Cluster, ClusterOptions};
use hazina_server::http::problem::AnnouncedIds;
use hazina_server::tenancy::{self, TenancyError};
use hazina_server::{app, db, http, payments, workers};

/// Requests allocate many small short-lived values; glibc's allocator took a quarter of the
/// server's CPU under the HTTP benchmark (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// The log filter when `RUST_LOG` is unset. PostgreSQL's notices (such as "relation already
/// exists, skipping" from idempotent migrations) are noise at info level.
const DEFAULT_LOG_FILTER: &str = "info,tokio_postgres=warn";

/// How long requests in flight get to finish after a shutdown signal.
const GRACE_PERIOD: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, the whole chain: `error: could not ...: because ...`.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
    }
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    let mut shutdown = Shutdown::listen()?;
    // The fault suite runs a database of its own, and servers as children.
    if let Command::Chaos(args) = cli.command() {
        return match shutdown.unless_signalled(chaos(cli, &args)).await {
            Some(result) => result,
            None => Err(anyhow::anyhow!("interrupted")),
        };
    }
    if let Command::CredentialsKey = cli.command() {
        let path = cli.credentials_key_file();
        hazina_server::secrets::Sealer::create_new(&path)
            .with_context(|| format!("could not create the credentials key {}", path.display()))?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "created the credentials key {} (mode 0600): back it up", path.display())?;
        return Ok(());
    }
    // A signal while starting abandons the start; dropping a half-started cluster stops it.
    let Some(database) = shutdown.unless_signalled(Database::open(cli)).await else {
        return Ok(());
    };
    let mut database = database?;
    let result = match cli.command() {
        Command::Serve => serve(cli, &database, shutdown).await,
        Command::Migrate => match shutdown.unless_signalled(migrate(&database)).await {
            Some(result) => result,
            None => Err(anyhow::anyhow!("interrupted")),
        },
        Command::Keys(command) => {
            match shutdown.unless_signalled(keys(cli, &database, &command)).await {
                Some(result) => result,
                None => Err(anyhow::anyhow!("interrupted")),
            }
        }
        Command::Bench(args) => {
            match shutdown.unless_signalled(bench(cli, &database, args)).await {
                Some(result) => result,
                None => Err(anyhow::anyhow!("interrupted")),
            }
        }
        Command::Reconcile(command) => {
            match shutdown
                .unless_signalled(finance(cli, &database, Finance::Reconcile(&command)))
                .await
            {
                Some(result) => result,
                None => Err(anyhow::anyhow!("interrupted")),
            }
        }
        Command::Payments(command) => {
            match shutdown
                .unless_signalled(finance(cli, &database, Finance::Payments(&command)))
                .await
            {
                Some(result) => result,
                None => Err(anyhow::anyhow!("interrupted")),
            }
        }
        Command::Verify(args) => {
            match shutdown.unless_signalled(verify(cli, &database, &args)).await {
                Some(result) => result,
                None => Err(anyhow::anyhow!("interrupted")),
            }
        }
        Command::Chaos(_) | Command::CredentialsKey => Ok(()),
    };
    let stopped = database.close().await;
    result.and(stopped)
}

/// The database the server runs on: an external server, or the embedded cluster it started.
struct Database {
    config: tokio_postgres::Config,
    /// How connections are encrypted (`sslmode`); off for the embedded cluster's socket.
    tls: db::Tls,
    cluster: Option<Cluster>,
}

impl Database {
    async fn open(cli: &Cli) -> anyhow::Result<Self> {
        if let Some(url) = cli.database_url() {
            tracing::info!("using the PostgreSQL server of DATABASE_URL");
            // Every command connects with the timeouts and keepalives; only the server's own
            // pools limit statements (see `serve`), so that migrations and `bench` may run long.
            let settings = db::ConnectionSettings {
                statement_timeout: None,
                lock_timeout: None,
                ..cli.connection_settings()
            };
            let target = db::parse_target(url)?;
            return Ok(Self {
                config: settings.apply(target.config),
                tls: target.tls,
                cluster: None,
            });
        }
        let options = ClusterOptions {
            bin_dir: cli.pg_bin_dir.clone(),
            ..ClusterOptions::new(&cli.data_dir)
        };
        let cluster =
            Cluster::start(options).await.context("could not start the embedded PostgreSQL")?;
        Ok(Self { config: cluster.pg_config(), tls: db::Tls::Off, cluster: Some(cluster) })
    }

    async fn close(&mut self) -> anyhow::Result<()> {
        if let Some(cluster) = self.cluster.take() {
            cluster.stop().await.context("could not stop the embedded PostgreSQL")?;
        }
        Ok(())
    }
}

async fn bench(
    cli: &Cli,
    database: &Database,
    args: hazina_server::bench::BenchArgs,
) -> anyhow::Result<()> {
    db::migrate_with(&database.config, &database.tls).await?;
    let pool = db::pool_with(database.config.clone(), cli.db_pool_size_max, &database.tls)?;
    let result = if args.messaging {
        let ledger_pool =
            db::pool_with(database.config.clone(), app::LEDGER_POOL_SIZE, &database.tls)?;
        let (customers, warm_up) = (args.customers, args.warm_up);
        hazina_server::bench_messaging::bench(
            pool.clone(),
            ledger_pool,
            customers,
            warm_up,
            args.json,
        )
        .await
        .map(|_| ())
    } else if args.reconcile {
        let ledger_pool =
            db::pool_with(database.config.clone(), app::LEDGER_POOL_SIZE, &database.tls)?;
        let result =
            hazina_server::bench_reconcile::bench(pool.clone(), ledger_pool, args.lines).await;
        result.and_then(|result| {
            if args.json {
                writeln!(std::io::stdout().lock(), "{}", serde_json::to_string(&result)?)?;
            }
            Ok(())
        })
    } else if args.reports {
        hazina_server::bench_reports::bench(hazina_ledger::store::Store::new(pool.clone()), &args)
            .await
    } else if args.webhooks {
        hazina_server::bench_webhooks::bench(pool.clone(), args.events, args.webhook_workers).await
    } else if args.http {
        let ledger_pool =
            db::pool_with(database.config.clone(), app::LEDGER_POOL_SIZE, &database.tls)?;
        hazina_server::bench_http::bench(pool.clone(), ledger_pool, args).await.map(|_| ())
    } else {
        hazina_server::bench::bench(hazina_ledger::store::Store::new(pool.clone()), args)
            .await
            .map(|_| ())
    };
    pool.close();
    result
}

async fn keys(cli: &Cli, database: &Database, command: &KeysCommand) -> anyhow::Result<()> {
    db::migrate_with(&database.config, &database.tls).await?;
    let pool = db::pool_with(database.config.clone(), cli.db_pool_size_max, &database.tls)?;
    let failed = |error: TenancyError| anyhow::anyhow!("{}: {}", error.code(), error);
    let mut stdout = std::io::stdout().lock();
    match command {
        KeysCommand::Create { name, app, org } => {
            let org = tenancy::only_org(&pool, *org).await.map_err(failed)?;
            let app = match app {
                Some(app) => Some(tenancy::app_by_name(&pool, org, app).await.map_err(failed)?),
                None => None,
            };
            let key = tenancy::insert_key(&pool, org, app, name).await.map_err(failed)?;
            writeln!(stdout, "key {} ({}): {}", key.key.key_id, key.key.name, key.token)?;
            writeln!(stdout, "the token is shown only now; keep it")?;
        }
        KeysCommand::List { org } => {
            let org = tenancy::only_org(&pool, *org).await.map_err(failed)?;
            for key in tenancy::keys(&pool, org).await.map_err(failed)? {
                let scope = key.app_id.map_or_else(|| "org".to_owned(), |app| format!("app {app}"));
                let state =
                    key.revoked_at.map_or_else(|| "live".to_owned(), |at| format!("revoked {at}"));
                writeln!(
                    stdout,
                    "{}  hz_{}_…  {scope}  {}  {state}",
                    key.key_id, key.prefix, key.name
                )?;
            }
        }
        KeysCommand::Revoke { key_id, org } => {
            let org = tenancy::only_org(&pool, *org).await.map_err(failed)?;
            if !tenancy::revoke(&pool, org, *key_id).await.map_err(failed)? {
                anyhow::bail!("no live key {key_id} in the org");
            }
            writeln!(stdout, "revoked {key_id}")?;
        }
    }
    pool.close();
    Ok(())
}

/// A finance command of the CLI.
enum Finance<'a> {
    Reconcile(&'a hazina_server::config::ReconcileCommand),
    Payments(&'a hazina_server::config::PaymentsCommand),
}

/// Runs a finance command over the services the server runs on (the ledger's writers on a
/// pool of their own).
async fn finance(cli: &Cli, database: &Database, command: Finance<'_>) -> anyhow::Result<()> {
    db::migrate_with(&database.config, &database.tls).await?;
    let pool = db::pool_with(database.config.clone(), cli.db_pool_size_max, &database.tls)?;
    let ledger_pool = db::pool_with(database.config.clone(), app::LEDGER_POOL_SIZE, &database.tls)?;
    let sealer = credentials_sealer(cli, database)?;
    let services = app::Services::with_pools(pool.clone(), ledger_pool.clone(), sealer);
    let result = match command {
        Finance::Reconcile(command) => {
            hazina_server::finance_cli::reconcile(&services, command).await
        }
        Finance::Payments(command) => {
            hazina_server::finance_cli::payments(&services, command).await
        }
    };
    pool.close();
    ledger_pool.close();
    result
}

/// `hazina verify [--chain]`: prints what it checked and fails when anything does not hold.
async fn verify(
    cli: &Cli,
    database: &Database,
    args: &hazina_server::config::VerifyArgs,
) -> anyhow::Result<()> {
    db::migrate_with(&database.config, &database.tls).await?;
    let pool = db::pool_with(database.config.clone(), cli.db_pool_size_max, &database.tls)?;
    let store = hazina_ledger::store::Store::new(pool);
    let mut stdout = std::io::stdout().lock();
    let mut broken = 0_usize;
    if args.chain {
        for org in store.orgs().await? {
            let report = store.verify_chain(org).await?;
            if !report.is_intact() {
                broken += 1;
            }
            writeln!(stdout, "org {org}: {report}")?;
        }
    } else {
        for violation in store.verify().await? {
            broken += 1;
            writeln!(stdout, "{violation}")?;
        }
        if broken == 0 {
            writeln!(stdout, "every ledger invariant holds")?;
        }
    }
    if broken > 0 {
        anyhow::bail!("the ledger does not verify: {broken} found");
    }
    Ok(())
}

async fn migrate(database: &Database) -> anyhow::Result<()> {
    let applied = db::migrate_with(&database.config, &database.tls).await?;
    // The command's own output goes to stdout; logs go to stderr.
    let mut stdout = std::io::stdout().lock();
    if applied.is_empty() {
        writeln!(stdout, "no pending migrations: the database is up to date")?;
    }
    for name in applied {
        writeln!(stdout, "applied {name}")?;
    }
    Ok(())
}

async fn serve(cli: &Cli, database: &Database, mut shutdown: Shutdown) -> anyhow::Result<()> {
    let Some(applied) =
        shutdown.unless_signalled(db::migrate_with(&database.config, &database.tls)).await
    else {
        return Ok(());
    };
    let applied = applied?;
    tracing::info!(count = applied.len(), "migrations applied");
    let (app_config, tls) = app_connection(cli, database).await?;
    // The server's connections: connect timeout, keepalives and a statement timeout each.
    let config = cli.connection_settings().apply(app_config.clone());
    let pool = db::pool_with(config.clone(), cli.db_pool_size_max, &tls)?;
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("could not listen on {}", cli.listen))?;
    let address = listener.local_addr().context("could not read the listening address")?;
    tracing::info!(%address, "listening on http://{address}");

    let sweeper = tokio::spawn(workers::sweep_expired(
        hazina_ledger::store::Store::new(pool.clone()),
        shutdown.clone().wait(),
    ));
    let retention = tokio::spawn(workers::sweep_retention(
        pool.clone(),
        cli.retention(),
        shutdown.clone().wait(),
    ));
    if let Some(made) =
        tenancy::bootstrap(&pool).await.context("could not make the first org and keys")?
    {
        print_first_keys(&made)?;
    }
    let ledger_pool = db::pool_with(config, app::LEDGER_POOL_SIZE, &tls)?;
    let sealer = credentials_sealer(cli, database)?;
    let reports_settings = db::ConnectionSettings {
        statement_timeout: Some(app::REPORTS_STATEMENT_TIMEOUT),
        ..cli.connection_settings()
    };
    let reports_config = reports_settings.apply(app_config);
    let reports_pool = db::pool_with(reports_config, app::REPORTS_POOL_SIZE, &tls)?;
    give_up_root(cli, database)?;
    let services = app::Services::with_pools(pool.clone(), ledger_pool.clone(), sealer)
        .with_reports_pool(reports_pool.clone());
    let public_url = cli.public_url.clone().unwrap_or_else(|| format!("http://{address}"));
    services.payments.configure(payments::Settings {
        public_url: public_url.trim_end_matches('/').to_owned(),
        first_query: std::time::Duration::from_millis(cli.provider_query_after_ms.max(1)),
        provider_hosts: payments::ProviderHosts {
            extra: cli.allow_provider_host.clone(),
            any: cli.allow_any_provider_url,
            simulators: cli.simulate().then_some(address),
        },
        ..payments::Settings::default()
    });
    let worker = tokio::spawn(workers::query_providers(
        std::sync::Arc::clone(&services.payments),
        shutdown.clone().wait(),
    ));
    spawn_event_workers(cli, &services, &shutdown);
    let mut app = http::router(http::AppState::from(services));
    if cli.simulate() {
        let (mpesa, momo) = (
            hazina_simulator::mpesa::Simulator::new(),
            hazina_simulator::momo::Simulator::default(),
        );
        app = app.merge(hazina_simulator::router(&mpesa, &momo));
        tracing::warn!(
            "serving the provider simulators at http://{address}/simulator/mpesa and \
             http://{address}/simulator/momo (no keys: development only)"
        );
    }
    let limit = cli.request_timeout();
    let app = app
        .layer(axum::middleware::from_fn(move |request, next| answer_within(limit, request, next)));
    let mut server = tokio::spawn(http::serve_router(
        listener,
        app,
        cli.connections_max,
        shutdown.clone().wait(),
    ));
    let result = tokio::select! {
        joined = &mut server => joined,
        () = shutdown.clone().wait() => {
            tracing::info!("shutting down: finishing the requests in flight");
            if let Ok(joined) = tokio::time::timeout(GRACE_PERIOD, &mut server).await {
                joined
            } else {
                tracing::warn!("requests still in flight after the grace period; dropping them");
                server.abort();
                Ok(Ok(()))
            }
        }
    };
    // Stopping the sweeper mid-sweep is safe: a batch commits whole or not at all. So is
    // stopping the payments worker: a payment's every step is recorded before the next.
    sweeper.abort();
    worker.abort();
    retention.abort();
    if sweeper.await.is_err_and(|error| error.is_panic()) {
        tracing::warn!("the expiry sweeper panicked");
    }
    pool.close();
    result.context("the HTTP server task failed")?.context("the HTTP server failed")
}

/// Starts the bank exchange worker (cut-offs, files written, the bank's files read) and, with
/// the simulators, a simulated bank answering the exchange directory. Stopping the worker
/// mid-round is safe: a file is recorded before it is written, and an inbound file is recorded
/// by its digest before it is applied, each step idempotent.
fn spawn_bank_exchange(cli: &Cli, services: &app::Services, shutdown: &Shutdown) {
    services.payments.configure(payments::Settings {
        bank_exchange_dir: cli.bank_exchange_dir(),
        ..services.payments.settings()
    });
    tokio::spawn(workers::exchange_bank_files(
        std::sync::Arc::clone(&services.payments),
        shutdown.clone().wait(),
    ));
    if cli.simulate() {
        let directory = cli.bank_exchange_dir();
        std::sync::Arc::new(hazina_simulator::bank::Bank::new(&directory))
            .spawn(std::time::Duration::from_secs(1));
        tracing::warn!(directory = %directory.display(),
            "a simulated bank answers the bank channels' files (development only)");
    }
}

/// Starts the workers that make and deliver events: the reminders worker, and the webhook
/// worker, configured from the command line. Both stop at shutdown, safely mid-round: due
/// reminders fire in the transaction that advances them, and a delivery claimed and not
/// recorded is claimed again when its lease runs out. And the bank exchange worker
/// (`spawn_bank_exchange`), whose files make payment events too.
fn spawn_event_workers(cli: &Cli, services: &app::Services, shutdown: &Shutdown) {
    spawn_bank_exchange(cli, services, shutdown);
    tokio::spawn(workers::fire_reminders_loop(services.pool.clone(), shutdown.clone().wait()));
    services.webhooks.configure(hazina_server::webhooks::Settings {
        allow_private: cli.allow_private_webhook_urls,
        ..hazina_server::webhooks::Settings::default()
    });
    tokio::spawn(workers::deliver_webhooks(
        std::sync::Arc::clone(&services.webhooks),
        shutdown.clone().wait(),
    ));
    // Messaging channels call the providers the payments engine may call.
    services.messaging.configure(hazina_server::messaging::Settings {
        provider_hosts: services.payments.settings().provider_hosts,
        ..hazina_server::messaging::Settings::default()
    });
    tokio::spawn(workers::send_messages(
        std::sync::Arc::clone(&services.messaging),
        shutdown.clone().wait(),
    ));
}

/// Where requests connect, as a role that does not own the tables (so that no bug can alter
/// them or disable the triggers that keep history immutable), granted what it needs by the
/// owner that ran the migrations: the embedded database's `hazina_app`, made here; with
/// `DATABASE_URL`, the role of `--app-database-url`, which the operator makes.
async fn app_connection(
    cli: &Cli,
    database: &Database,
) -> anyhow::Result<(tokio_postgres::Config, db::Tls)> {
    if let Some(url) = cli.app_database_url() {
        let target = db::parse_target(url)?;
        let role = target.config.get_user().context("--app-database-url names no user")?;
        db::grant_app_role(&database.config, &database.tls, role, false).await?;
        tracing::info!(role, "requests connect as the application role");
        return Ok((target.config, target.tls));
    }
    if database.cluster.is_some() {
        db::grant_app_role(&database.config, &database.tls, db::APP_ROLE, true).await?;
        let mut config = database.config.clone();
        config.user(db::APP_ROLE);
        return Ok((config, database.tls.clone()));
    }
    tracing::warn!(
        "requests connect as DATABASE_URL's role, which owns the tables; give them a role of \
         their own with --app-database-url"
    );
    Ok((database.config.clone(), database.tls.clone()))
}

/// As root, serves as an unprivileged user from here on (the port is bound, the key read, the
/// embedded database started): the embedded database's owner, which can still stop it, or
/// `--run-as`. A bug in the server then has no root to misuse.
fn give_up_root(cli: &Cli, database: &Database) -> anyhow::Result<()> {
    use nix::unistd::{Uid, User, setgid, setgroups, setuid};
    if !Uid::effective().is_root() {
        return Ok(());
    }
    let name = match (&cli.run_as, database.cluster.is_some()) {
        (Some(name), _) => name.clone(),
        (None, true) => "postgres".to_owned(),
        (None, false) => {
            tracing::warn!("serving as root: give --run-as USER to serve as an unprivileged user");
            return Ok(());
        }
    };
    let user = User::from_name(&name)
        .with_context(|| format!("could not look up the user {name}"))?
        .with_context(|| format!("no user {name} to serve as"))?;
    setgroups(&[user.gid]).context("could not drop the supplementary groups")?;
    setgid(user.gid).context("could not change the group")?;
    setuid(user.uid).context("could not change the user")?;
    tracing::info!(user = %name, "serving as an unprivileged user, not root");
    Ok(())
}

/// The sealer of channel credentials, from the key file: made on first start with the
/// embedded database (where the key lives beside it). On `DATABASE_URL` every server must share
/// one key, so none makes its own: a missing file is an operator's mistake (a wrong path, a
/// forgotten copy), and a new key would seal channels that the other servers cannot open.
fn credentials_sealer(
    cli: &Cli,
    database: &Database,
) -> anyhow::Result<hazina_server::secrets::Sealer> {
    let key_file = cli.credentials_key_file();
    if database.cluster.is_some() {
        return hazina_server::secrets::Sealer::load_or_create(&key_file)
            .with_context(|| format!("no credentials key at {}", key_file.display()));
    }
    hazina_server::secrets::Sealer::load(&key_file).with_context(|| {
        format!(
            "no credentials key at {path}: with DATABASE_URL it is never created by a \
             server; create it once with `hazina credentials-key --credentials-key-file \
             {path}` and give every server the same file",
            path = key_file.display()
        )
    })
}

/// Answers a request within `limit`: one still waiting then (on a database that stopped
/// answering, say) gets a 503 with `Retry-After`, so that no client hangs, and with the ids the
/// handler gave it (see `AnnouncedIds`). Dropping the handler is what a client disconnecting
/// does too; a transfer it submitted may still commit, and a replay under the same id learns
/// its outcome.
async fn answer_within(
    limit: Duration,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    // Never the path: a callback's carries its channel's secret token.
    let method = request.method().clone();
    let announced = AnnouncedIds::default();
    request.extensions_mut().insert(announced.clone());
    if let Ok(response) = tokio::time::timeout(limit, next.run(request)).await {
        return response;
    }
    tracing::warn!(%method, limit_ms = limit.as_millis(), "a request timed out");
    announced.timed_out().into_response()
}

/// Runs the fault suite, prints its table (or JSON line) and fails if any check failed.
async fn chaos(cli: &Cli, args: &hazina_server::chaos::ChaosArgs) -> anyhow::Result<()> {
    let report = hazina_server::chaos::run(args, cli.pg_bin_dir.clone()).await?;
    let mut stdout = std::io::stdout().lock();
    if !args.json {
        write!(stdout, "{}", report.table())?;
    }
    writeln!(stdout, "{}", serde_json::to_string(&report)?)?;
    anyhow::ensure!(report.passed, "the fault suite found a failure (see the table)");
    Ok(())
}

/// Resolves once SIGINT or SIGTERM arrives. The handlers are installed by [`Shutdown::listen`],
/// before anything starts, so a signal during startup is not lost (nor fatal).
#[derive(Clone)]
struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    fn listen() -> anyhow::Result<Self> {
        let mut interrupt = signal(SignalKind::interrupt()).context("could not handle SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("could not handle SIGTERM")?;
        let (sender, receiver) = watch::channel(false);
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            tracing::info!(signal = name, "received a shutdown signal");
            sender.send_replace(true);
            // Keep the handlers installed: a second signal must not kill the process halfway
            // through stopping PostgreSQL.
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                tracing::info!("already shutting down");
            }
        });
        Ok(Self(receiver))
    }

    async fn wait(mut self) {
        // An error means the sender is gone, which cannot happen while its task loops forever;
        // shutting down is the safe reading anyway.
        let _ = self.0.wait_for(|signalled| *signalled).await;
    }

    /// Runs `future` to completion, or returns `None` if a signal comes first.
    async fn unless_signalled<T>(&mut self, future: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            output = future => Some(output),
            () = self.clone().wait() => None,
        }
    }
}

/// Shows the keys made on first start, the only time their tokens are shown.
fn print_first_keys(made: &tenancy::Bootstrapped) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "First start: created the org `default` ({}) and the app `default` ({}).",
        made.org.0, made.app.app_id
    )?;
    writeln!(out, "These keys are shown once; keep them (`hazina keys` makes more):")?;
    writeln!(out, "  org key: {}", made.org_key.token)?;
    writeln!(out, "  app key: {}", made.app_key.token)?;
    Ok(())
}
