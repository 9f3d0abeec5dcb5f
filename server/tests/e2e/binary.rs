//! The `hazina` binary end to end: the embedded PostgreSQL's life cycle (first start, reuse,
//! clean stop, stale pid file, crash leftovers), a missing PostgreSQL, `hazina migrate`, and
//! provider payments that survive the process being killed mid-payment.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use hazina_tests::{empty_db, fresh_db, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use crate::common::{Scratch, is_alive};

const START_TIMEOUT: Duration = Duration::from_secs(90);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The keys a fresh database's first start makes (as the server would, before it starts).
async fn first_keys(
    db: &hazina_tests::TestDb,
) -> anyhow::Result<hazina_server::tenancy::Bootstrapped> {
    hazina_server::tenancy::bootstrap(&db.pool())
        .await?
        .context("a fresh database gets its first keys")
}

/// A running `hazina`, with its stderr collected as it comes.
struct Hazina {
    child: Child,
    stderr: Arc<Mutex<String>>,
    /// Copies its stderr into `stderr` until the pipe closes.
    reader: std::thread::JoinHandle<()>,
    base: String,
    /// Holds its credentials key, unless the test names one of its own.
    _key_dir: Scratch,
}

impl Hazina {
    fn command() -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hazina"));
        for name in [
            "DATABASE_URL",
            "HAZINA_DATA_DIR",
            "HAZINA_PG_BIN_DIR",
            "HAZINA_LISTEN",
            "HAZINA_CREDENTIALS_KEY_FILE",
        ] {
            command.env_remove(name);
        }
        command.env("RUST_LOG", "info").env_remove("HAZINA_LOG_FORMAT");
        command
    }

    /// Starts `hazina serve` on a free port of 127.0.0.1 with `configure`'s additions.
    fn serve(configure: impl FnOnce(&mut Command)) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = Self::command();
        command.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
        // A key of its own, as an operator creates once per deployment (a server on
        // DATABASE_URL never makes one); `--credentials-key-file` in `configure` wins.
        let key_dir = Scratch::new()?;
        let key_file = key_dir.0.join("credentials.key");
        hazina_server::secrets::Sealer::create_new(&key_file)?;
        command.env("HAZINA_CREDENTIALS_KEY_FILE", &key_file);
        configure(&mut command);
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().context("stderr is piped")?;
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut text) = sink.lock() {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        });
        let base = format!("http://127.0.0.1:{port}");
        Ok(Self { child, stderr, reader, base, _key_dir: key_dir })
    }

    fn serve_embedded(data_dir: &Path) -> anyhow::Result<Self> {
        Self::serve(|command| {
            command.arg("--data-dir").arg(data_dir);
        })
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|text| text.clone()).unwrap_or_default()
    }

    fn pid(&self) -> Pid {
        // Linux pids fit in an i32 (pid_max is at most 2^22).
        Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX))
    }

    /// Waits until both probes answer 200, failing early if the process exits.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        let mut exited = None;
        let ready = wait_for("hazina to be ready", START_TIMEOUT, || {
            let client = client.clone();
            let base = self.base.clone();
            if let Ok(Some(status)) = self.child.try_wait() {
                exited = Some(status);
            }
            let gone = exited.is_some();
            async move {
                if gone {
                    return Some(false);
                }
                for probe in ["healthz", "readyz"] {
                    let response = client.get(format!("{base}/{probe}")).send().await.ok()?;
                    if response.status() != reqwest::StatusCode::OK {
                        return None;
                    }
                }
                Some(true)
            }
        })
        .await
        .with_context(|| format!("stderr:\n{}", self.stderr()))?;
        anyhow::ensure!(ready, "hazina exited ({exited:?}); stderr:\n{}", self.stderr());
        Ok(())
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        Ok(kill(self.pid(), signal)?)
    }

    async fn wait_exit(&mut self) -> anyhow::Result<ExitStatus> {
        let child = &mut self.child;
        let status = wait_for("hazina to exit", EXIT_TIMEOUT, || {
            let status = child.try_wait().ok().flatten();
            async move { status }
        })
        .await;
        // What it wrote last (an error as it exits) is read once the pipe closes: wait for
        // that, or for a while if a child of its own still holds the pipe.
        let reader = &self.reader;
        let _ = wait_for("hazina's stderr to close", EXIT_TIMEOUT, || {
            let finished = reader.is_finished();
            async move { finished.then_some(()) }
        })
        .await;
        status.with_context(|| format!("stderr:\n{}", self.stderr()))
    }
}

impl Drop for Hazina {
    fn drop(&mut self) {
        // A test that failed halfway: stop the server (and so its PostgreSQL) cleanly.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(self.pid(), Signal::SIGTERM);
            let deadline = std::time::Instant::now() + EXIT_TIMEOUT;
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The postmaster pid recorded in the data directory, if any.
fn postmaster_pid(data_dir: &Path) -> Option<Pid> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok().map(Pid::from_raw)
}

/// Every live `postgres` process whose working directory is `data_dir` (a postmaster changes
/// into its data directory, and so do its children).
fn postgres_processes_in(data_dir: &Path) -> Vec<i32> {
    let Ok(data_dir) = data_dir.canonicalize() else { return Vec::new() };
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            comm.trim_end() == "postgres"
                && std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == data_dir)
                && is_alive(*pid)
        })
        .collect()
}

/// When the migrations were applied: a value written once, on the first start.
async fn applied_at(data_dir: &Path) -> anyhow::Result<String> {
    let mut config = tokio_postgres::Config::new();
    config.host_path(data_dir).port(5432).user("hazina").dbname("hazina");
    let client = hazina_server::db::connect(&config).await?;
    let row = client.query_one("SELECT min(applied_at)::text FROM schema_migrations", &[]).await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn embedded_postgres_lives_and_dies_with_the_server() -> anyhow::Result<()> {
    let scratch = Scratch::new()?;
    let data_dir = scratch.data_dir();

    // First start: initdb, start, migrate, serve.
    let mut first = Hazina::serve_embedded(&data_dir)?;
    first.wait_ready().await?;
    assert!(first.stderr().contains("initialised a new PostgreSQL cluster"), "{}", first.stderr());
    assert!(first.stderr().contains(&format!("listening on {}", first.base)), "{}", first.stderr());
    assert!(data_dir.join("PG_VERSION").exists());
    let postmaster = postmaster_pid(&data_dir).context("a postmaster.pid while serving")?;
    assert!(is_alive(postmaster.as_raw()));
    let marker = applied_at(&data_dir).await?;
    // Started as root, it serves as the database's owner, not as root.
    if nix::unistd::Uid::effective().is_root() {
        let status = std::fs::read_to_string(format!("/proc/{}/status", first.pid()))?;
        let uids = status.lines().find(|line| line.starts_with("Uid:")).context("a Uid line")?;
        assert!(uids.split_whitespace().skip(1).all(|uid| uid != "0"), "{uids}");
        assert!(first.stderr().contains("serving as an unprivileged user"), "{}", first.stderr());
    }

    // SIGTERM: a clean exit, and no PostgreSQL left behind.
    first.signal(Signal::SIGTERM)?;
    assert!(first.wait_exit().await?.success(), "{}", first.stderr());
    assert!(!data_dir.join("postmaster.pid").exists());
    assert!(!is_alive(postmaster.as_raw()));
    assert_eq!(postgres_processes_in(&data_dir), Vec::<i32>::new());
    assert!(first.stderr().contains("stopped the embedded PostgreSQL"), "{}", first.stderr());

    // Second start on the same data directory: the data is reused, initdb does not run again.
    let mut second = Hazina::serve_embedded(&data_dir)?;
    second.wait_ready().await?;
    assert!(!second.stderr().contains("initialised"), "{}", second.stderr());
    assert_eq!(applied_at(&data_dir).await?, marker);
    second.signal(Signal::SIGINT)?;
    assert!(second.wait_exit().await?.success(), "{}", second.stderr());
    assert!(!data_dir.join("postmaster.pid").exists());

    // A stale postmaster.pid (its process is dead) does not block the next start.
    let mut dead = Command::new("true").spawn()?;
    let dead_pid = dead.id();
    dead.wait()?;
    let stale = format!("{dead_pid}\n{}\n1700000000\n5432\n{}\n\n", data_dir.display(), "/tmp");
    std::fs::write(data_dir.join("postmaster.pid"), stale)?;
    let mut third = Hazina::serve_embedded(&data_dir)?;
    third.wait_ready().await?;
    assert!(third.stderr().contains("stale postmaster.pid"), "{}", third.stderr());

    // A crash of the server (SIGKILL) orphans its PostgreSQL; the next start stops that one and
    // starts afresh.
    let orphan = postmaster_pid(&data_dir).context("a postmaster.pid while serving")?;
    third.signal(Signal::SIGKILL)?;
    assert!(!third.wait_exit().await?.success());
    assert!(is_alive(orphan.as_raw()), "PostgreSQL outlives a killed server");
    let mut fourth = Hazina::serve_embedded(&data_dir)?;
    fourth.wait_ready().await?;
    assert!(fourth.stderr().contains("left running"), "{}", fourth.stderr());
    assert!(!is_alive(orphan.as_raw()));
    assert_eq!(applied_at(&data_dir).await?, marker);
    fourth.signal(Signal::SIGTERM)?;
    assert!(fourth.wait_exit().await?.success(), "{}", fourth.stderr());
    assert!(!data_dir.join("postmaster.pid").exists());
    assert_eq!(postgres_processes_in(&data_dir), Vec::<i32>::new());
    Ok(())
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused() -> anyhow::Result<()> {
    let scratch = Scratch::new()?;
    let mut first = Hazina::serve_embedded(&scratch.data_dir())?;
    first.wait_ready().await?;
    let mut second = Hazina::serve_embedded(&scratch.data_dir())?;
    let status = second.wait_exit().await?;
    assert!(!status.success());
    assert!(second.stderr().contains("in use by another hazina process"), "{}", second.stderr());
    // The first one is unharmed.
    first.wait_ready().await?;
    first.signal(Signal::SIGTERM)?;
    assert!(first.wait_exit().await?.success(), "{}", first.stderr());
    Ok(())
}

#[tokio::test]
async fn missing_postgres_binaries_are_one_clear_line() -> anyhow::Result<()> {
    let scratch = Scratch::new()?;
    let empty = scratch.0.join("bin");
    std::fs::create_dir(&empty)?;
    let mut server = Hazina::serve(|command| {
        command.arg("--data-dir").arg(scratch.data_dir()).env("HAZINA_PG_BIN_DIR", &empty);
        command.env("PATH", &empty);
    })?;
    let status = server.wait_exit().await?;
    assert!(!status.success());
    let stderr = server.stderr();
    let error = stderr.lines().last().unwrap_or_default();
    assert!(error.starts_with("error: "), "{stderr}");
    assert!(error.contains("`postgresql`") && error.contains("DATABASE_URL"), "{stderr}");
    assert!(!scratch.data_dir().exists(), "nothing is created before the binaries are found");
    Ok(())
}

#[tokio::test]
async fn migrate_applies_once_and_is_idempotent() -> anyhow::Result<()> {
    let db = empty_db().await;
    let run = || {
        let mut command = tokio::process::Command::from(Hazina::command());
        command.arg("migrate").env("DATABASE_URL", db.connection_string());
        command.output()
    };
    let first = run().await?;
    let stdout = String::from_utf8(first.stdout)?;
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let applied: Vec<&str> =
        stdout.lines().filter_map(|line| line.strip_prefix("applied ")).collect();
    assert!(!applied.is_empty(), "{stdout}");

    let client = db.connect().await?;
    let names: Vec<String> = client
        .query("SELECT name FROM schema_migrations ORDER BY name", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(names, applied);

    let second = run().await?;
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(
        String::from_utf8(second.stdout)?.trim(),
        "no pending migrations: the database is up to date"
    );
    let count: i64 = client.query_one("SELECT count(*) FROM schema_migrations", &[]).await?.get(0);
    assert_eq!(usize::try_from(count)?, names.len());
    Ok(())
}

#[tokio::test]
async fn serve_uses_database_url_instead_of_the_embedded_postgres() -> anyhow::Result<()> {
    let db = fresh_db().await;
    let scratch = Scratch::new()?;
    let mut server = Hazina::serve(|command| {
        command
            .env("DATABASE_URL", db.connection_string())
            .arg("--data-dir")
            .arg(scratch.data_dir())
            .args(["--log-format", "json"]);
    })?;
    server.wait_ready().await?;
    assert!(!scratch.data_dir().exists(), "no embedded PostgreSQL with DATABASE_URL");
    server.signal(Signal::SIGTERM)?;
    assert!(server.wait_exit().await?.success(), "{}", server.stderr());
    // With --log-format json, every line on stderr is a JSON object.
    let stderr = server.stderr();
    for line in stderr.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).with_context(|| line.to_owned())?;
        assert!(event["level"].is_string(), "{line}");
    }
    assert!(stderr.contains("listening on"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn simulate_serves_the_provider_simulators_and_only_then() -> anyhow::Result<()> {
    let db = fresh_db().await;
    let client = reqwest::Client::new();
    let token_path = "/simulator/mpesa/oauth/v1/generate?grant_type=client_credentials";
    for simulate in [true, false] {
        let mut server = Hazina::serve(|command| {
            command.env("DATABASE_URL", db.connection_string());
            if simulate {
                command.arg("--simulate");
            }
        })?;
        server.wait_ready().await?;
        let token = client
            .get(format!("{}{token_path}", server.base))
            .basic_auth("consumer-key", Some("consumer-secret"))
            .send()
            .await?;
        let momo =
            client.get(format!("{}/simulator/momo/collection/v1_0/requesttopay/x", server.base));
        let momo = momo.send().await?.status();
        server.signal(Signal::SIGTERM)?;
        assert!(server.wait_exit().await?.success(), "{}", server.stderr());
        if simulate {
            assert_eq!(token.status(), reqwest::StatusCode::OK);
            let body: serde_json::Value = token.json().await?;
            assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
            // MoMo's simulator answers (here: no token), rather than the API's 404.
            assert_eq!(momo, reqwest::StatusCode::UNAUTHORIZED);
            assert!(server.stderr().contains("/simulator/mpesa"), "{}", server.stderr());
        } else {
            assert_eq!(token.status(), reqwest::StatusCode::NOT_FOUND);
            assert_eq!(momo, reqwest::StatusCode::NOT_FOUND);
        }
    }
    Ok(())
}

#[tokio::test]
async fn keys_are_created_listed_and_revoked_from_the_command_line() -> anyhow::Result<()> {
    let db = fresh_db().await;
    let run = |args: Vec<String>| {
        let mut command = tokio::process::Command::from(Hazina::command());
        command.arg("keys").args(args).env("DATABASE_URL", db.connection_string());
        command.output()
    };
    // Before the first start there is no org to make keys for.
    let early = run(vec!["list".into()]).await?;
    assert!(!early.status.success());
    assert!(String::from_utf8_lossy(&early.stderr).contains("no_org"), "{early:?}");

    let made = hazina_server::tenancy::bootstrap(&db.pool())
        .await?
        .context("the first start makes keys")?;
    let created =
        run(vec!["create".into(), "--name".into(), "ci".into(), "--app".into(), "default".into()])
            .await?;
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let stdout = String::from_utf8(created.stdout)?;
    let token =
        stdout.split_whitespace().find(|word| word.starts_with("hz_")).context("a token")?;
    let key_id = stdout.split_whitespace().nth(1).context("an id")?.to_owned();
    // The token works against the API's key lookup, as an app key.
    let keys = hazina_server::http::auth::KeyCache::default();
    let caller =
        keys.authenticate(&db.pool(), token).await.map_err(|e| anyhow::anyhow!(e.detail))?;
    assert_eq!(caller.context("the new key authenticates")?.app, Some(made.app.app_id));

    let listed = String::from_utf8(run(vec!["list".into()]).await?.stdout)?;
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(!listed.contains(token), "a list never shows tokens");
    let revoked = run(vec!["revoke".into(), key_id.clone()]).await?;
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let listed = String::from_utf8(run(vec!["list".into()]).await?.stdout)?;
    assert!(
        listed.lines().any(|line| line.starts_with(&key_id) && line.contains("revoked")),
        "{listed}"
    );
    let again = run(vec!["revoke".into(), key_id]).await?;
    assert!(!again.status.success(), "revoking twice is an error");
    Ok(())
}

/// An API client for a running `hazina`.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn post(
        &self,
        key: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }

    async fn get(&self, key: &str, path: &str) -> anyhow::Result<serde_json::Value> {
        let response =
            self.http.get(format!("{}{path}", self.base)).bearer_auth(key).send().await?;
        Ok(response.json().await?)
    }
}

/// An M-Pesa and a MoMo channel at `providers`, and a KES and a EUR purse holding 1000 each.
async fn channels_and_purses(
    api: &Api,
    org_key: &str,
    providers: &str,
) -> anyhow::Result<Vec<String>> {
    api.post(
        org_key,
        "/v1/payment-channels",
        &json!({
            "provider": "mpesa", "channelNumber": "600000", "currencyCode": "KES",
            "baseUrl": format!("{providers}/simulator/mpesa"),
            "credentials": { "consumerKey": "k", "consumerSecret": "s", "initiatorName": "api",
                "securityCredential": "c" },
        }),
    )
    .await?;
    api.post(
        org_key,
        "/v1/payment-channels",
        &json!({
            "provider": "momo", "channelNumber": "momo-main", "currencyCode": "EUR",
            "baseUrl": format!("{providers}/simulator/momo"),
            "credentials": { "apiUser": "6c0bd5a2-4b8c-4d1e-9b6a-0e6f2f0a1c11", "apiKey": "k",
                "subscriptionKey": "s", "targetEnvironment": "sandbox" },
        }),
    )
    .await?;
    let mut purses = Vec::new();
    for currency in ["KES", "EUR"] {
        let float = api
            .post(
                org_key,
                "/v1/purses",
                &json!({ "currencyCode": currency, "overdraftLimit": "100000" }),
            )
            .await?;
        let purse = api.post(org_key, "/v1/purses", &json!({ "currencyCode": currency })).await?;
        api.post(
            org_key,
            "/v1/payments",
            &json!({
                "debitParty": { "purse": { "purseId": float["purseId"] } },
                "creditParty": { "purse": { "purseId": purse["purseId"] } },
                "value": { "currencyCode": currency, "amount": "1000" },
            }),
        )
        .await?;
        purses.push(purse["purseId"].as_str().context("a purse id")?.to_owned());
    }
    Ok(purses)
}

/// Two customers whose payouts the providers hold unanswered for 4 s (M-Pesa `…001`, MoMo
/// `…499`), and one whose payout M-Pesa accepts at once with its result 4 s late (`…002`).
fn script_slow_providers(
    mpesa_sim: &hazina_simulator::mpesa::Simulator,
    momo_sim: &hazina_simulator::momo::Simulator,
) {
    use hazina_simulator::{momo, mpesa};
    let slow = Duration::from_secs(4);
    mpesa_sim.script(
        "254711000001",
        mpesa::Script::success()
            .with_callback(mpesa::CallbackMode::BeforeResponse)
            .with_callback_delay(slow),
    );
    momo_sim.script(
        "46733123499",
        momo::Script::new(momo::Outcome::Successful)
            .callback(momo::CallbackMode::BeforeResponse)
            .delay(slow),
    );
    mpesa_sim.script("254711000002", mpesa::Script::success().with_callback_delay(slow));
}

/// A payout of 100 from a purse to a customer's mobile money.
fn payout_body(
    id: uuid::Uuid,
    purse: &str,
    number: &str,
    channel: &str,
    currency: &str,
) -> serde_json::Value {
    json!({
        "transactionId": id,
        "debitParty": { "purse": { "purseId": purse } },
        "creditParty": { "customer": {
            "customerNumber": { "number": number, "provider": "cellular" },
            "channelNumber": channel } },
        "value": { "currencyCode": currency, "amount": "100" },
    })
}

/// Kills `hazina` (SIGKILL) at the worst moments of three payouts — two while the provider
/// holds our request unanswered (M-Pesa B2C, MoMo transfer), one after M-Pesa accepted it but
/// before its result — then starts it again on the same database: each payout converges to the
/// provider's truth, paid once and posted once, and the books balance.
#[tokio::test]
async fn payouts_converge_after_the_server_is_killed_mid_payment() -> anyhow::Result<()> {
    use hazina_simulator::{momo, mpesa};
    let db = fresh_db().await;
    let made = first_keys(&db).await?;
    let (org_key, app_key) = (made.org_key.token, made.app_key.token);
    // The providers live in this process, so they outlive the server.
    let (mpesa_sim, momo_sim) = (mpesa::Simulator::new(), momo::Simulator::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let providers = format!("http://{}", listener.local_addr()?);
    let router = hazina_simulator::router(&mpesa_sim, &momo_sim);
    tokio::spawn(async move { axum::serve(listener, router).await });
    // One credentials key for both lives of the server, as an operator keeps it.
    let scratch = Scratch::new()?;
    let key_file = scratch.0.join("credentials.key");
    let created = tokio::process::Command::from(Hazina::command())
        .arg("credentials-key")
        .arg("--credentials-key-file")
        .arg(&key_file)
        .output()
        .await?;
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let serve = || {
        Hazina::serve(|command| {
            command
                .env("DATABASE_URL", db.connection_string())
                .env("HAZINA_PROVIDER_QUERY_AFTER_MS", "200")
                // The providers here are simulators on a loopback port of the test's own.
                .arg("--allow-any-provider-url")
                .arg("--credentials-key-file")
                .arg(&key_file);
        })
    };
    let mut server = serve()?;
    server.wait_ready().await?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let api = Api { http: http.clone(), base: server.base.clone() };
    let purses = channels_and_purses(&api, &org_key, &providers).await?;
    script_slow_providers(&mpesa_sim, &momo_sim);
    let ids = [uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7()];
    let accepted = api
        .post(
            &app_key,
            "/v1/payments",
            &payout_body(ids[2], &purses[0], "+254711000002", "600000", "KES"),
        )
        .await?;
    assert_eq!(accepted["status"], "pending_confirmation", "{accepted}");
    for body in [
        payout_body(ids[0], &purses[0], "+254711000001", "600000", "KES"),
        payout_body(ids[1], &purses[1], "+46733123499", "momo-main", "EUR"),
    ] {
        let (http, url, key) =
            (http.clone(), format!("{}/v1/payments", server.base), app_key.clone());
        // Their answers never come: the server dies first.
        tokio::spawn(async move { http.post(url).bearer_auth(key).json(&body).send().await });
    }
    wait_for("the providers to hold both requests", Duration::from_secs(20), || {
        let held = mpesa_sim.transactions().len() >= 2 && !momo_sim.payments().is_empty();
        async move { held.then_some(()) }
    })
    .await?;
    server.signal(Signal::SIGKILL)?;
    server.wait_exit().await?;

    let mut server = serve()?;
    server.wait_ready().await?;
    let api = Api { http, base: server.base.clone() };
    for id in ids {
        let payment = wait_for("the payout to settle", Duration::from_secs(60), || {
            let api = &api;
            let key = &app_key;
            async move {
                let payment = api.get(key, &format!("/v1/payments/{id}")).await.ok()?;
                (payment["status"] == "success").then_some(payment)
            }
        })
        .await
        .with_context(|| format!("stderr:\n{}", server.stderr()))?;
        assert!(payment["receipt"].is_string(), "{payment}");
    }
    // Paid once each: M-Pesa refused the resend of the B2C that was held, as a duplicate.
    let paid = |number: &str| {
        mpesa_sim
            .transactions()
            .iter()
            .filter(|t| {
                t.kind == mpesa::TransactionKind::B2c && t.msisdn.as_deref() == Some(number)
            })
            .filter(|t| t.succeeded())
            .count()
    };
    assert_eq!((paid("254711000001"), paid("254711000002")), (1, 1));
    assert_eq!(momo_sim.payments().len(), 1);
    let balance = |purse: &str| {
        let (api, key, purse) = (&api, &org_key, purse.to_owned());
        async move { api.get(key, &format!("/v1/purses/{purse}")).await }
    };
    assert_eq!(balance(&purses[0]).await?["balance"]["actual"], "800.00");
    assert_eq!(balance(&purses[1]).await?["balance"]["actual"], "900.00");
    let violations = hazina_ledger::store::Store::new(db.pool()).verify().await?;
    assert!(violations.is_empty(), "{violations:?}");
    server.signal(Signal::SIGTERM)?;
    assert!(server.wait_exit().await?.success(), "{}", server.stderr());
    Ok(())
}

/// A callback's URL carries its channel's secret token: no log line, metrics label or error
/// body may show it, whatever the route does with the request (debug logs included).
#[tokio::test]
async fn callback_tokens_never_reach_logs_metrics_or_error_bodies() -> anyhow::Result<()> {
    let db = fresh_db().await;
    let mut server = Hazina::serve(|command| {
        command.env("DATABASE_URL", db.connection_string()).env("RUST_LOG", "debug");
    })?;
    server.wait_ready().await?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let channel = uuid::Uuid::now_v7();
    let paths = [
        format!("/callbacks/mpesa/{channel}/tok3n-mpesa-result/result/{}", uuid::Uuid::now_v7()),
        format!("/callbacks/mpesa/{channel}/tok3n-mpesa-c2b/c2b/confirmation"),
        format!("/callbacks/momo/{channel}/tok3n-momo/callback"),
        format!("/callbacks/momo/{channel}/tok3n-unmatched/elsewhere"),
    ];
    let mut bodies = String::new();
    for path in &paths {
        for method in [reqwest::Method::POST, reqwest::Method::GET] {
            let response =
                http.request(method, format!("{}{path}", server.base)).body("{}").send().await?;
            assert!(response.status().is_client_error(), "{path}: {}", response.status());
            bodies.push_str(&response.text().await?);
        }
    }
    let metrics = http.get(format!("{}/metrics", server.base)).send().await?.text().await?;
    server.signal(Signal::SIGTERM)?;
    assert!(server.wait_exit().await?.success(), "{}", server.stderr());
    let stderr = server.stderr();
    // The requests were logged (at debug), by their route pattern.
    assert!(stderr.contains("/callbacks/mpesa/{channel}/{token}/{kind}/{name}"), "{stderr}");
    for (what, text) in [("logs", &stderr), ("bodies", &bodies), ("metrics", &metrics)] {
        assert!(!text.contains("tok3n"), "a token in the {what}:\n{text}");
    }
    Ok(())
}

/// A payment or batch without ids whose outcome becomes unknown because its batch gave up
/// waiting for a lock is answered 503 with `Retry-After` and the ids it was given, so that
/// retrying under them replays instead of paying twice.
#[tokio::test]
async fn an_unknown_outcome_names_the_ids_to_replay_under() -> anyhow::Result<()> {
    unknown_outcome_names_its_ids(&["--db-lock-timeout-ms", "300"], "unavailable").await
}

/// Likewise when the request itself runs out of time (the database does not answer it).
#[tokio::test]
async fn a_request_that_runs_out_of_time_names_the_ids_to_replay_under() -> anyhow::Result<()> {
    let args = ["--db-lock-timeout-ms", "0", "--request-timeout-ms", "500"];
    unknown_outcome_names_its_ids(&args, "timeout").await
}

async fn unknown_outcome_names_its_ids(args: &[&str], code: &str) -> anyhow::Result<()> {
    let db = fresh_db().await;
    let made = first_keys(&db).await?;
    let org_key = made.org_key.token;
    let mut server = Hazina::serve(|command| {
        command.env("DATABASE_URL", db.connection_string()).args(args);
    })?;
    server.wait_ready().await?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let api = Api { http: http.clone(), base: server.base.clone() };
    let purse =
        |name: &str| json!({ "currencyCode": "KES", "name": name, "overdraftLimit": "1000" });
    let float = api.post(&org_key, "/v1/purses", &purse("float")).await?["purseId"].clone();
    let target = api.post(&org_key, "/v1/purses", &purse("target")).await?["purseId"].clone();
    let payment = json!({
        "debitParty": { "purse": { "purseId": float } },
        "creditParty": { "purse": { "purseId": target } },
        "value": { "currencyCode": "KES", "amount": "10" },
    });
    let leg = |account: &serde_json::Value, side: &str| {
        json!({ "accountId": account, "side": side,
            "value": { "currencyCode": "KES", "amount": "1" } })
    };
    let transfer = json!({ "type": "post", "code": "test",
        "legs": [leg(&float, "debit"), leg(&target, "credit")] });
    let batch = json!({ "transfers": [transfer, transfer] });
    // Someone holds the float purse's row: the batches wait, then give up.
    let mut holder = db.connect().await?;
    let lock = holder.transaction().await?;
    lock.execute("SELECT 1 FROM accounts WHERE id = $1::text::uuid FOR UPDATE", &[&float.as_str()])
        .await?;
    let send = |path: &'static str, body: &serde_json::Value| {
        http.post(format!("{}{path}", server.base)).bearer_auth(&org_key).json(body).send()
    };
    let unknown = send("/v1/payments", &payment).await?;
    assert_eq!(unknown.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(unknown.headers().contains_key("retry-after"));
    let unknown: serde_json::Value = unknown.json().await?;
    assert_eq!(unknown["code"], code, "{unknown}");
    let id = unknown["transactionId"].as_str().context("the payment's id")?.to_owned();
    let unknown_batch: serde_json::Value =
        send("/v1/transfers/batch", &batch).await?.json().await?;
    assert_eq!(unknown_batch["code"], code, "{unknown_batch}");
    let ids = unknown_batch["transferIds"].as_array().context("the batch's ids")?.clone();
    assert_eq!(ids.len(), 2, "{unknown_batch}");
    lock.rollback().await?;
    // Replayed under those ids, each takes effect once, however often it is sent.
    for _ in 0..2 {
        let mut again = payment.clone();
        again["transactionId"] = json!(id);
        assert_eq!(api.post(&org_key, "/v1/payments", &again).await?["status"], "success");
        let mut again = batch.clone();
        for (index, id) in ids.iter().enumerate() {
            again["transfers"][index]["transferId"] = id.clone();
        }
        let outcomes = api.post(&org_key, "/v1/transfers/batch", &again).await?;
        assert!(
            outcomes["outcomes"]
                .as_array()
                .is_some_and(|o| o.iter().all(|o| o["result"] == "accepted"))
        );
    }
    let balance =
        api.get(&org_key, &format!("/v1/purses/{}", target.as_str().unwrap_or(""))).await?;
    assert_eq!(balance["balance"]["actual"], "12.00", "{balance}");
    server.signal(Signal::SIGTERM)?;
    assert!(server.wait_exit().await?.success(), "{}", server.stderr());
    Ok(())
}

/// Channel credentials go wherever a channel's base URL points: by default only https to the
/// provider's published hosts, anything else only as the operator allows.
#[tokio::test]
async fn channels_call_only_the_providers_hosts_unless_the_operator_allows_more()
-> anyhow::Result<()> {
    let db = fresh_db().await;
    let made = first_keys(&db).await?;
    let mut server = Hazina::serve(|command| {
        command
            .env("DATABASE_URL", db.connection_string())
            .args(["--allow-provider-host", "momo.example.ug"]);
    })?;
    server.wait_ready().await?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let channel = |provider: &str, number: &str, base_url: &str| {
        let credentials = if provider == "mpesa" {
            json!({ "consumerKey": "k", "consumerSecret": "s" })
        } else {
            json!({ "apiUser": "u", "apiKey": "k", "subscriptionKey": "s",
                "targetEnvironment": "sandbox" })
        };
        json!({ "provider": provider, "channelNumber": number, "currencyCode": "KES",
            "baseUrl": base_url, "credentials": credentials })
    };
    for (body, expected) in [
        (channel("mpesa", "600001", "http://127.0.0.1:9/simulator/mpesa"), 422),
        (channel("mpesa", "600002", "https://api.safaricom.co.ke@attacker.example"), 422),
        (channel("mpesa", "600003", "https://sandbox.safaricom.co.ke"), 201),
        (channel("momo", "main", "https://momo.example.ug"), 201),
    ] {
        let response = http
            .post(format!("{}/v1/payment-channels", server.base))
            .bearer_auth(&made.org_key.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let answer: serde_json::Value = response.json().await?;
        assert_eq!(status, expected, "{body}: {answer}");
        if expected == 422 {
            assert_eq!(answer["code"], "provider_url_not_allowed", "{answer}");
        }
    }
    server.signal(Signal::SIGTERM)?;
    assert!(server.wait_exit().await?.success(), "{}", server.stderr());
    Ok(())
}

/// On `DATABASE_URL` every server must share one credentials key: a server never makes one, and
/// a missing file is a clear error; `hazina credentials-key` makes it once, and never again.
#[tokio::test]
async fn a_missing_credentials_key_on_a_database_url_is_an_error_not_a_new_key()
-> anyhow::Result<()> {
    let db = fresh_db().await;
    let scratch = Scratch::new()?;
    let key_file = scratch.0.join("credentials.key");
    let mut server = Hazina::serve(|command| {
        command
            .env("DATABASE_URL", db.connection_string())
            .arg("--credentials-key-file")
            .arg(&key_file);
    })?;
    let status = server.wait_exit().await?;
    assert!(!status.success());
    let stderr = server.stderr();
    let error = stderr.lines().last().unwrap_or_default();
    assert!(error.starts_with("error: no credentials key at"), "{stderr}");
    assert!(error.contains("hazina credentials-key"), "{stderr}");
    assert!(!key_file.exists(), "a server made a key");
    let create = || {
        tokio::process::Command::from(Hazina::command())
            .arg("credentials-key")
            .arg("--credentials-key-file")
            .arg(&key_file)
            .output()
    };
    let created = create().await?;
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let key = std::fs::read(&key_file)?;
    let again = create().await?;
    assert!(!again.status.success(), "the key file was made again");
    assert_eq!(std::fs::read(&key_file)?, key);
    Ok(())
}

/// Requests connect as a role that does not own the tables: it cannot alter them, disable the
/// triggers that keep history immutable, or change a transfer, even by a bug; payments work.
#[tokio::test]
async fn requests_run_as_a_role_that_cannot_rewrite_history() -> anyhow::Result<()> {
    let db = fresh_db().await;
    let made = first_keys(&db).await?;
    let role = format!("hz_app_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let owner = db.connect().await?;
    owner.batch_execute(&format!("CREATE ROLE {role} LOGIN")).await?;
    let mut app_config = db.config();
    app_config.user(&role);
    let app_url = hazina_server::db::to_connection_string(&app_config);
    let mut server = Hazina::serve(|command| {
        command
            .env("DATABASE_URL", db.connection_string())
            .env("HAZINA_APP_DATABASE_URL", &app_url);
    })?;
    server.wait_ready().await?;
    let api = Api {
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
        base: server.base.clone(),
    };
    let key = &made.org_key.token;
    let purse =
        |name: &str| json!({ "currencyCode": "KES", "name": name, "overdraftLimit": "100" });
    let float = api.post(key, "/v1/purses", &purse("float")).await?["purseId"].clone();
    let target = api.post(key, "/v1/purses", &purse("target")).await?["purseId"].clone();
    let payment = json!({
        "debitParty": { "purse": { "purseId": float } },
        "creditParty": { "purse": { "purseId": target } },
        "value": { "currencyCode": "KES", "amount": "10" },
    });
    assert_eq!(api.post(key, "/v1/payments", &payment).await?["status"], "success");
    let connected: i64 = owner
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND usename = $1",
            &[&role],
        )
        .await?
        .get(0);
    assert!(connected > 0, "the server does not connect as {role}");
    let app = hazina_server::db::connect(&app_config).await?;
    for statement in [
        "ALTER TABLE transfers DISABLE TRIGGER ALL",
        "UPDATE transfers SET code = 'rewritten'",
        "DELETE FROM entries",
        "TRUNCATE transfers",
        "DROP TABLE entries",
        "DELETE FROM schema_migrations",
    ] {
        let error = app.batch_execute(statement).await.expect_err(statement);
        assert_eq!(
            error.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{statement}: {error}"
        );
    }
    server.signal(Signal::SIGTERM)?;
    assert!(server.wait_exit().await?.success(), "{}", server.stderr());
    Ok(())
}

#[tokio::test]
async fn a_statement_is_imported_and_reconciled_from_the_command_line() -> anyhow::Result<()> {
    let db = fresh_db().await;
    let made = hazina_server::tenancy::bootstrap(&db.pool()).await?.context("the first keys")?;
    let scratch = Scratch::new()?;
    let key_file = scratch.0.join("credentials.key");
    hazina_server::secrets::Sealer::create_new(&key_file)?;
    let services = hazina_server::app::Services::with_pools(
        db.pool(),
        db.pool(),
        hazina_server::secrets::Sealer::load(&key_file)?,
    );
    let channel = services
        .payments
        .create_channel(
            made.org,
            hazina_server::payments::NewChannel {
                provider: hazina_server::payments::Provider::Mpesa,
                number: "600000".to_owned(),
                currency: hazina_ledger::Currency::from_code("KES")?,
                name: None,
                base_url: "https://sandbox.safaricom.co.ke".to_owned(),
                credentials: [("consumerKey", "k"), ("consumerSecret", "s")]
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value.to_owned()))
                    .collect(),
                treasury_limit: None,
            },
        )
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let now = chrono::Utc::now() + chrono::Duration::hours(3);
    let file = scratch.0.join("statement.csv");
    std::fs::write(
        &file,
        format!(
            "Receipt No.,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance\n\
             QA1,{at},Pay Bill from 254700000001,Completed,100.00,,100.00\n\
             QA2,{at},Pay Bill from 254700000002,Completed,250.50,,350.50\n\
             QA3,{at},Pay Bill from 254700000003,Pending,80.00,,350.50\n",
            at = now.format("%Y-%m-%d %H:%M:%S")
        ),
    )?;
    let hazina = |args: Vec<String>| {
        let mut command = tokio::process::Command::from(Hazina::command());
        command
            .args(args)
            .env("DATABASE_URL", db.connection_string())
            .env("HAZINA_CREDENTIALS_KEY_FILE", &key_file);
        command.output()
    };
    let channel_id = channel.id.to_string();
    let import = vec![
        "reconcile".into(),
        "import".into(),
        file.display().to_string(),
        "--channel".into(),
        channel_id.clone(),
    ];
    let first = hazina(import.clone()).await?;
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let stdout = String::from_utf8(first.stdout)?;
    assert!(stdout.contains("3 lines read, 2 new, 0 known, 1 skipped"), "{stdout}");
    let again = String::from_utf8(hazina(import).await?.stdout)?;
    assert!(again.contains("imported before"), "{again}");

    let today = chrono::Utc::now().date_naive();
    let run = hazina(vec![
        "reconcile".into(),
        "run".into(),
        "--channel".into(),
        channel_id.clone(),
        "--from".into(),
        today.pred_opt().context("yesterday")?.to_string(),
        "--to".into(),
        today.succ_opt().context("tomorrow")?.to_string(),
    ])
    .await?;
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout)?;
    assert_eq!(summary["unmatchedLines"], 2, "{summary}");
    assert_eq!(summary["exceptionsOpened"], 2, "{summary}");

    let unknown = hazina(vec![
        "reconcile".into(),
        "import".into(),
        file.display().to_string(),
        "--channel".into(),
        uuid::Uuid::new_v4().to_string(),
    ])
    .await?;
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not_found"), "{unknown:?}");
    let stuck = hazina(vec!["payments".into(), "stuck".into()]).await?;
    assert!(String::from_utf8(stuck.stdout)?.contains("0 stuck"));
    Ok(())
}
