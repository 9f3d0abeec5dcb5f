//! The shared test harness: a fresh, migrated PostgreSQL database for every test.
//!
//! With `DATABASE_URL` set, databases are made on that server (its user needs `CREATEDB`).
//! Otherwise they are made on an embedded cluster kept in `<temp dir>/hazina-test-<hash of the
//! workspace root>`, with durability turned off (`fsync=off` and friends): a crash may lose it,
//! and that is fine, because it only ever holds throw-away databases.
//!
//! That cluster is *shared*: the first test process to need it starts it, and it is left
//! running when the process exits, so that later test processes and later `cargo test` runs
//! attach to it in milliseconds instead of paying for `initdb` and a start each time. A file
//! lock beside its data directory serialises "is it running? else start it" between test
//! processes (see `hazina_server::embedded`). Stop it by hand with
//! `kill -INT $(head -1 /tmp/hazina-test-*/postmaster.pid)` or just delete the folder.
//!
//! Each test gets `CREATE DATABASE t_<uuid> TEMPLATE hazina_tpl_<migrations fingerprint>`: a
//! file-level copy of a database migrated once, so a test pays for a copy, not for migrations.
//! A new migration set gets a new template name, hence a fresh template.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::Context as _;
use deadpool_postgres::Pool;
use hazina_server::db::{self, quote_ident};
use hazina_server::embedded::{Cluster, ClusterOptions, short_hash};
use tokio::sync::OnceCell;
use tokio_postgres::Config;

/// The most connections a test database's pool opens.
pub const POOL_SIZE_MAX: usize = 16;

/// Server settings of the embedded test cluster: durability off, room for many pools.
pub const TEST_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "300"),
];

/// Arbitrary, fixed key of the advisory lock held while the template is made ("hztpl").
const TEMPLATE_LOCK_KEY: i64 = 0x68_7a74_706c;

/// What every test of a process shares. Plain data only: each `#[tokio::test]` has a runtime of
/// its own, and a client or pool made on one runtime dies with it.
#[derive(Debug, Clone)]
struct Setup {
    /// A database on the server to run `CREATE DATABASE` and `DROP DATABASE` from.
    admin: Config,
    template: String,
}

static SETUP: OnceCell<Setup> = OnceCell::const_new();

/// The embedded test cluster's data directory: `HAZINA_TEST_CLUSTER_DIR` when set (CI uses a
/// folder of its own per run, and stops the cluster at the end), else
/// `<temp dir>/hazina-test-<hash of the workspace root>`.
pub static CLUSTER_DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    if let Some(dir) = std::env::var_os("HAZINA_TEST_CLUSTER_DIR").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    let name = format!("hazina-test-{}", short_hash(workspace.as_os_str().as_encoded_bytes()));
    std::env::temp_dir().join(name)
});

/// A database of its own for one test, dropped (forcibly) when this value is.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    config: Config,
    admin: Config,
    pool: Pool,
}

/// A fresh database with every migration applied; see [`try_fresh_db`] for a `Result`.
///
/// # Panics
///
/// When the database cannot be made: failing the test is the point.
pub async fn fresh_db() -> TestDb {
    match try_fresh_db().await {
        Ok(db) => db,
        Err(error) => panic!("could not make a test database: {error:#}"),
    }
}

/// A fresh database with every migration applied.
pub async fn try_fresh_db() -> anyhow::Result<TestDb> {
    let setup = setup().await?;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let client = db::connect(&setup.admin).await?;
    client
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(&setup.template)
        ))
        .await
        .with_context(|| format!("could not create database {name}"))?;
    TestDb::new(name, &setup.admin)
}

/// A fresh, empty database: no migrations applied (for testing the migrations themselves).
///
/// # Panics
///
/// When the database cannot be made: failing the test is the point.
pub async fn empty_db() -> TestDb {
    let made = async {
        let setup = setup().await?;
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let client = db::connect(&setup.admin).await?;
        client
            .batch_execute(&format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(&name)))
            .await
            .with_context(|| format!("could not create database {name}"))?;
        TestDb::new(name, &setup.admin)
    };
    match made.await {
        Ok(db) => db,
        Err(error) => panic!("could not make an empty test database: {error:#}"),
    }
}

impl TestDb {
    fn new(name: String, admin: &Config) -> anyhow::Result<Self> {
        let mut config = admin.clone();
        config.dbname(&name).application_name("hazina-tests");
        let pool = db::pool(config.clone(), POOL_SIZE_MAX)?;
        Ok(Self { name, config, admin: admin.clone(), pool })
    }

    /// The database's name (`t_<uuid>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connection settings for this database.
    pub fn config(&self) -> Config {
        self.config.clone()
    }

    /// This database's settings as a connection string, fit for `DATABASE_URL`.
    pub fn connection_string(&self) -> String {
        db::to_connection_string(&self.config)
    }

    /// A pool of up to [`POOL_SIZE_MAX`] connections (shared: clones are cheap).
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// A separate connection, outside the pool (for sessions that must not be shared, such as
    /// one holding a lock while another waits).
    pub async fn connect(&self) -> anyhow::Result<tokio_postgres::Client> {
        Ok(db::connect(&self.config).await?)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.pool.close();
        let admin = self.admin.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&self.name));
        // Drop cannot await, and the test's runtime may be shutting down: use a thread with a
        // runtime of its own, and wait for it so that the database is gone when drop returns.
        // Errors are ignored: a leftover database is harmless, and panicking here would hide
        // the test's own failure.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(client) = db::connect(&admin).await {
                    let _ = client.batch_execute(&statement).await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// Settings to reach the test server's maintenance database (for tests that look at the
/// server as a whole, e.g. which databases exist).
pub async fn admin_config() -> anyhow::Result<Config> {
    Ok(setup().await?.admin)
}

async fn setup() -> anyhow::Result<Setup> {
    SETUP
        .get_or_try_init(|| async {
            let admin = match std::env::var("DATABASE_URL") {
                Ok(url) if !url.trim().is_empty() => db::parse_url(&url)?,
                _ => start_cluster().await?,
            };
            let template = format!("hazina_tpl_{}", hazina_ledger::store::migrations_fingerprint());
            ensure_template(&admin, &template).await?;
            Ok(Setup { admin, template })
        })
        .await
        .cloned()
}

/// Starts the shared test cluster, or attaches to it when it already runs. It stays running
/// after this process exits (see the module documentation).
async fn start_cluster() -> anyhow::Result<Config> {
    let options = ClusterOptions {
        // The maintenance database: tests make their own databases.
        database: "postgres".to_owned(),
        settings: TEST_SETTINGS
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        no_sync: true,
        shared: true,
        bin_dir: std::env::var_os("HAZINA_PG_BIN_DIR").map(Into::into),
        ..ClusterOptions::new(CLUSTER_DIR.as_path())
    };
    let cluster = Cluster::start(options).await.with_context(|| {
        format!("could not start the test cluster in {}", CLUSTER_DIR.display())
    })?;
    // Dropping a shared cluster leaves it running.
    Ok(cluster.pg_config())
}

/// Makes the template database once per migration set. An advisory lock serialises test
/// processes; a template left half-made by an interrupted run is not marked as a template yet,
/// so it is dropped and made again.
async fn ensure_template(admin: &Config, template: &str) -> anyhow::Result<()> {
    let client = db::connect(admin).await?;
    client.execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK_KEY]).await?;
    let row = client
        .query_opt("SELECT datistemplate FROM pg_database WHERE datname = $1", &[&template])
        .await?;
    match row.map(|row| row.get::<_, bool>(0)) {
        Some(true) => return Ok(()),
        Some(false) => {
            client
                .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", quote_ident(template)))
                .await?;
        }
        None => {}
    }
    client.batch_execute(&format!("CREATE DATABASE {}", quote_ident(template))).await?;
    let mut config = admin.clone();
    config.dbname(template);
    {
        let (mut migrator, connection) = config.connect(tokio_postgres::NoTls).await?;
        let driver = tokio::spawn(connection);
        hazina_ledger::store::migrate(&mut migrator)
            .await
            .with_context(|| format!("could not migrate the template {template}"))?;
        // Close the session before cloning: a template with a session open cannot be copied.
        drop(migrator);
        let _ = driver.await;
    }
    client
        .batch_execute(&format!("ALTER DATABASE {} IS_TEMPLATE true", quote_ident(template)))
        .await?;
    // Dropping the client ends the session, which releases the advisory lock.
    Ok(())
}

/// Polls `check` until it returns `Some`, or fails after `timeout`. For waiting on a condition
/// (a server answering, a process gone) without sleeping a fixed time.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: std::time::Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("timed out after {}s waiting for {what}", timeout.as_secs());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// How a test sends transfer requests to the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Straight to the store, a batch per call.
    Direct,
    /// Through the group-commit pipeline, which batches on its own.
    Pipeline,
}

/// Sends transfer requests by one [`Mode`]: every ledger test runs both ways.
#[derive(Clone, Debug)]
pub enum Poster {
    Direct(hazina_ledger::store::Store),
    Pipeline(hazina_ledger::pipeline::Pipeline),
}

impl Poster {
    /// A poster of `mode` over `store` (a pipeline is started on the current runtime).
    pub fn new(mode: Mode, store: &hazina_ledger::store::Store) -> Self {
        match mode {
            Mode::Direct => Self::Direct(store.clone()),
            Mode::Pipeline => Self::Pipeline(hazina_ledger::pipeline::Pipeline::start(
                store,
                hazina_ledger::pipeline::PipelineConfig::default(),
            )),
        }
    }

    /// Applies the requests in order and returns their outcomes. Through the pipeline they are
    /// all queued first, in order, and may be split across batches.
    pub async fn post(
        &self,
        requests: &[hazina_ledger::rules::TransferRequest],
    ) -> anyhow::Result<Vec<hazina_ledger::rules::Outcome>> {
        match self {
            Self::Direct(store) => Ok(store.post(requests).await?),
            Self::Pipeline(pipeline) => {
                let queued: Vec<_> = requests
                    .iter()
                    .map(|request| pipeline.enqueue(request.clone()))
                    .collect::<Result<_, _>>()?;
                let mut outcomes = Vec::with_capacity(queued.len());
                for submitted in queued {
                    outcomes.push(submitted.await?);
                }
                Ok(outcomes)
            }
        }
    }
}

/// Webhook settings for tests: loopback receivers allowed, one second per attempt, retries
/// 50 ms apart, idle workers looking for work every 20 ms.
pub fn webhook_test_settings() -> hazina_server::webhooks::Settings {
    hazina_server::webhooks::Settings {
        allow_private: true,
        timeout: std::time::Duration::from_secs(1),
        retry_delays: vec![std::time::Duration::from_millis(50); 8],
        lease: std::time::Duration::from_secs(5),
        poll_interval: std::time::Duration::from_millis(20),
        ..hazina_server::webhooks::Settings::default()
    }
}

/// Messaging settings for tests: sends tried again 200 ms after a failure (doubling), a
/// provider given two seconds, the app two seconds to answer a session step, and the
/// simulators' loopback ports allowed.
pub fn messaging_test_settings() -> hazina_server::messaging::Settings {
    hazina_server::messaging::Settings {
        retry_base: std::time::Duration::from_millis(200),
        provider_timeout: std::time::Duration::from_secs(2),
        reply_deadline: std::time::Duration::from_secs(2),
        // The simulators of these tests listen on loopback ports of their own.
        provider_hosts: hazina_server::payments::ProviderHosts {
            any: true,
            ..hazina_server::payments::ProviderHosts::default()
        },
        ..hazina_server::messaging::Settings::default()
    }
}

/// Starts the bank exchange worker as `hazina serve` does (every poll interval: cut-offs, files
/// written, inbound files read); it stops when the answer is sent or dropped.
fn spawn_bank_worker(state: &hazina_server::http::AppState) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hazina_server::workers::exchange_bank_files(
        std::sync::Arc::clone(&state.payments),
        async {
            let _ = stopped.await;
        },
    ));
    stop
}

/// The HTTP API over real HTTP on a loopback port, on a fresh database, with the first-start
/// org, app and keys. Stops when dropped.
#[derive(Debug)]
pub struct ApiServer {
    pub base: String,
    pub org_key: String,
    pub app_key: String,
    pub org: hazina_ledger::OrgId,
    pub app: uuid::Uuid,
    pub db: TestDb,
    pub http: reqwest::Client,
    /// The messaging service the server runs, for a test that changes its settings while it
    /// runs (as an operator restarting with other flags would).
    pub messaging: std::sync::Arc<hazina_server::messaging::Service>,
    /// The server's bank exchange directory (a fresh one under the system's temporary
    /// directory): `<channel id>/out/` and `in/` of each bank channel.
    pub bank_exchange: std::path::PathBuf,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Drop for ApiServer {
    /// Removes the server's bank exchange directory, which only this server used.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.bank_exchange);
    }
}

impl ApiServer {
    /// Starts one.
    ///
    /// # Panics
    ///
    /// When it cannot start: failing the test is the point.
    pub async fn start() -> Self {
        Self::start_with_messaging(messaging_test_settings()).await
    }

    /// Starts one whose messaging service runs with `messaging` (for a test of a provider's
    /// timeouts and the backoff between attempts).
    ///
    /// # Panics
    ///
    /// When it cannot start: failing the test is the point.
    pub async fn start_with_messaging(messaging: hazina_server::messaging::Settings) -> Self {
        let db = fresh_db().await;
        let pool = db.pool();
        let made = match hazina_server::tenancy::bootstrap(&pool).await {
            Ok(Some(made)) => made,
            other => panic!("the first start made no keys: {other:?}"),
        };
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(error) => panic!("could not listen: {error}"),
        };
        let base = match listener.local_addr() {
            Ok(address) => format!("http://{address}"),
            Err(error) => panic!("no local address: {error}"),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // The ledger's writers on a pool of their own, as in `hazina serve`: a handler that
        // holds a connection while the ledger posts for it must never wait for its own pool.
        let ledger_pool =
            match hazina_server::db::pool(db.config(), hazina_server::app::LEDGER_POOL_SIZE) {
                Ok(pool) => pool,
                Err(error) => panic!("no pool for the ledger's writers: {error}"),
            };
        let sealer = match hazina_server::secrets::Sealer::generate() {
            Ok(sealer) => sealer,
            Err(error) => panic!("no key to seal credentials with: {error}"),
        };
        let services = hazina_server::app::Services::with_pools(pool, ledger_pool, sealer);
        let state = hazina_server::http::AppState::from(services);
        let bank_exchange =
            std::env::temp_dir().join(format!("hazina-bank-exchange-{}", uuid::Uuid::now_v7()));
        // Providers call back here, and payments are asked about soon: tests do not wait long.
        state.payments.configure(hazina_server::payments::Settings {
            public_url: base.clone(),
            first_query: std::time::Duration::from_millis(300),
            query_interval_max: std::time::Duration::from_secs(2),
            lease: std::time::Duration::from_secs(5),
            respond_within: std::time::Duration::from_secs(5),
            poll_interval: std::time::Duration::from_millis(100),
            // The simulators of these tests listen on loopback ports of their own.
            provider_hosts: hazina_server::payments::ProviderHosts {
                any: true,
                ..hazina_server::payments::ProviderHosts::default()
            },
            bank_exchange_dir: bank_exchange.clone(),
        });
        // Webhooks go to the tests' receivers on loopback, and are retried soon.
        state.webhooks.configure(webhook_test_settings());
        let (stop_webhooks, webhooks_stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(hazina_server::workers::deliver_webhooks(
            std::sync::Arc::clone(&state.webhooks),
            async {
                let _ = webhooks_stopped.await;
            },
        ));
        let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(hazina_server::workers::query_providers(
            std::sync::Arc::clone(&state.payments),
            async {
                let _ = worker_stopped.await;
            },
        ));
        let stop_bank = spawn_bank_worker(&state);
        // Messages are sent as in `hazina serve`, retried soon.
        state.messaging.configure(messaging);
        let (stop_messaging, messaging_stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(hazina_server::workers::send_messages(
            std::sync::Arc::clone(&state.messaging),
            async {
                let _ = messaging_stopped.await;
            },
        ));
        let messaging = std::sync::Arc::clone(&state.messaging);
        // Reminders fire as in `hazina serve`.
        let (stop_reminders, reminders_stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(hazina_server::workers::fire_reminders_loop(state.pool.clone(), async {
            let _ = reminders_stopped.await;
        }));
        tokio::spawn(hazina_server::http::serve_on(listener, state, async {
            let _ = stopped.await;
            let _ = stop_worker.send(());
            let _ = stop_bank.send(());
            let _ = stop_reminders.send(());
            let _ = stop_webhooks.send(());
            let _ = stop_messaging.send(());
        }));
        let http =
            match reqwest::Client::builder().timeout(std::time::Duration::from_secs(20)).build() {
                Ok(client) => client,
                Err(error) => panic!("could not build an HTTP client: {error}"),
            };
        Self {
            base,
            org_key: made.org_key.token,
            app_key: made.app_key.token,
            org: made.org,
            app: made.app.app_id,
            db,
            http,
            messaging,
            bank_exchange,
            _stop: stop,
        }
    }

    /// Sends a request with the key (if any) and a JSON body (if any); the status and the
    /// parsed body (`Null` when empty or not JSON).
    ///
    /// # Panics
    ///
    /// When the request cannot be sent at all.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => panic!("request to {path} failed: {error}"),
        };
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    /// `POST` with a key and a body.
    pub async fn post(
        &self,
        key: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.call(reqwest::Method::POST, path, Some(key), Some(body)).await
    }

    /// `GET` with a key.
    pub async fn get(&self, key: &str, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        self.call(reqwest::Method::GET, path, Some(key), None).await
    }
}
