//! `hazina bench --messaging`: bulk SMS by tag through the Africa's Talking simulator. Serves
//! the API on loopback with the messaging worker running, as `hazina serve` does; points an
//! SMS channel at the simulator (in this process, its own port), whose delivery reports come
//! back over HTTP to the channel's callback URL; gives `--customers` customers a number and a
//! tag (in bulk SQL, not measured); sends a warm-up job to `--warm-up` more customers and
//! analyses the tables, so that plans are made on this org's rows (not measured); then starts
//! one job over HTTP and reports how fast the messages were accepted (queued, cost reserved),
//! sent (taken by the provider, cost posted) and delivered (the report applied). Ends by
//! checking that every message was delivered and charged exactly once, that nothing is left
//! pending, and every ledger invariant.

// Rates are statistics for display, where f64 is the right tool; amounts are exact minor units
// and never pass through a float.
#![allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hazina_ledger::rules::AccountKind;
use hazina_ledger::store::NewAccount;
use hazina_ledger::{AccountId, Money, OrgId};
use hazina_simulator::africastalking::{Config as SimulatorConfig, Simulator};
use serde::Serialize;
use serde_json::{Value, json};

use crate::app::Services;
use crate::bench::{CpuTime, kes, submit_all, transfer};
use crate::http::AppState;
use crate::tenancy;

/// The simulator's API key, which the channel carries.
const API_KEY: &str = "bench-at-key";
/// What one message costs: one GSM-7 segment at the simulator's price, KES 0.80.
const PRICE_MINOR: i64 = 80;
/// The text every customer gets (one segment).
const TEXT: &str = "Bench: 20% off today only. Reply STOP to opt out.";
/// Customers inserted per statement while setting up.
const INSERT_CHUNK: usize = 20_000;
/// How long the whole job may take before the benchmark gives up.
const DEADLINE: Duration = Duration::from_secs(600);
/// How often the job is read over the API for the progress bars (its counts by status scan
/// the job's messages: reading them often would slow what is measured).
const POLL: Duration = Duration::from_secs(2);

/// One phase of the job, timed from its start.
#[derive(Debug, Serialize)]
pub struct Phase {
    /// From the job's start (its row's time) to the last message's change, by the database's
    /// clock.
    pub seconds: f64,
    pub messages_per_second: f64,
}

/// The messaging benchmark's result, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct MessagingBenchResult {
    pub customers: usize,
    /// Queued with the cost reserved.
    pub accepted: Phase,
    /// Taken by the provider, cost posted.
    pub sent: Phase,
    /// Delivery report applied.
    pub delivered: Phase,
    /// Bulk requests the simulator answered, and delivery reports it sent.
    pub provider_requests: usize,
    pub reports: usize,
    /// Reports whose callback was not answered 200 (refused or failed: lost).
    pub reports_failed: usize,
    /// Reports that arrived before their send's answer was recorded (applied later).
    pub reports_parked_at_peak: i64,
    /// CPU time per message of this process (server, worker and simulator) and of PostgreSQL,
    /// from the job's start to the last delivery.
    pub cpu_us_per_message: f64,
    pub database_cpu_us_per_message: f64,
    pub checks_hold: bool,
}

/// The tag value of the customers the job goes to, and of the warm-up's.
const MEASURED: &str = "bench";
const WARM_UP: &str = "warm-up";

/// The org the job runs in.
struct Setup {
    org: OrgId,
    app_key: String,
    purse: AccountId,
    channel: String,
}

/// Where things stood when the measured job started.
struct Before {
    purse_minor: i64,
    provider_requests: usize,
    provider_messages: usize,
    reports: usize,
}

/// A small HTTP client for the API: JSON in and out, with a key.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request =
            self.http.request(method, format!("{}{path}", self.base)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| format!("calling {path}"))?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }
}

/// The org, its keys, a funded purse, the SMS channel at the simulator, and the customers.
async fn set_up(
    state: &AppState,
    api: &Api,
    simulator: &Simulator,
    simulator_url: &str,
    customers: usize,
    warm_up: usize,
) -> anyhow::Result<Setup> {
    let store = &state.store;
    let org = OrgId::generate();
    store.create_org(org, "bench-messaging").await?;
    let app = tenancy::insert_app(&state.pool, org, "bench").await?;
    let app_key = tenancy::insert_key(&state.pool, org, Some(app.app_id), "bench").await?;
    let org_key = tenancy::insert_key(&state.pool, org, None, "bench").await?;
    let external =
        store.create_account(&NewAccount::new(org, AccountKind::External, kes())).await?;
    let purse = store.create_account(&NewAccount::new(org, AccountKind::Purse, kes())).await?;
    // Enough for every message and as much again: the check is that exactly their cost left.
    let funded_minor = i64::try_from(customers + warm_up)?.saturating_mul(PRICE_MINOR * 2).max(100);
    submit_all(
        &state.pipeline,
        std::iter::once(transfer(org, external.id, purse.id, funded_minor, "funding")),
    )
    .await?;

    let new_channel = json!({
        "channel": "sms", "provider": "africastalking", "channelNumber": "21525",
        "baseUrl": simulator_url,
        "credentials": {"username": "sandbox", "apiKey": API_KEY},
        "unitPrice": {"currencyCode": "KES", "amount": "0.80"},
        "purseId": purse.id.0,
    });
    let (status, channel) = api
        .call(reqwest::Method::POST, &org_key.token, "/v1/messaging-channels", Some(&new_channel))
        .await?;
    anyhow::ensure!(status == 201, "the channel was refused: {status} {channel}");
    let reports = channel["callbackUrls"]["smsDeliveryReports"]
        .as_str()
        .context("the channel has no delivery report URL")?;
    let reports = format!("{}{reports}", api.base);
    simulator.configure(|config| config.delivery_report_url = Some(reports));

    // Customers, each with a cellular number and the tag, by SQL in bulk: not measured.
    let client = state.pool.get().await?;
    let mut made = 0;
    while made < customers + warm_up {
        let count = INSERT_CHUNK.min(customers + warm_up - made);
        let ids: Vec<uuid::Uuid> = (0..count).map(|_| uuid::Uuid::now_v7()).collect();
        let numbers: Vec<String> = (made..made + count).map(|i| format!("+2547{i:08}")).collect();
        let tags: Vec<&str> =
            (made..made + count).map(|i| if i < warm_up { WARM_UP } else { MEASURED }).collect();
        client
            .execute(
                "WITH c AS (
                     INSERT INTO customers (org_id, id) SELECT $1, unnest($2::uuid[]) RETURNING id
                 ), n AS (
                     INSERT INTO customer_numbers (org_id, provider, number, customer_id)
                     SELECT $1, 'cellular', u.number, u.id
                     FROM unnest($2::uuid[], $3::text[]) AS u (id, number)
                 )
                 INSERT INTO customer_tags (org_id, customer_id, key, value)
                 SELECT $1, u.id, 'segment', u.tag
                 FROM unnest($2::uuid[], $4::text[]) AS u (id, tag)",
                &[&org.0, &ids, &numbers, &tags],
            )
            .await?;
        made += count;
    }
    drop(client);
    store.settle().await?;
    Ok(Setup {
        org,
        app_key: app_key.token,
        purse: purse.id,
        channel: channel["id"].as_str().context("the channel has no id")?.to_owned(),
    })
}

/// Starts a job to the customers tagged `value`; its path.
async fn start_job(api: &Api, setup: &Setup, value: &str) -> anyhow::Result<(uuid::Uuid, String)> {
    let new_job = json!({
        "channelId": setup.channel,
        "tag": {"key": "segment", "value": value},
        "body": {"kind": "text", "text": TEXT},
    });
    let (status, job) =
        api.call(reqwest::Method::POST, &setup.app_key, "/v1/message-jobs", Some(&new_job)).await?;
    anyhow::ensure!(status == 202, "the job was refused: {status} {job}");
    let id: uuid::Uuid = job["id"].as_str().context("the job has no id")?.parse()?;
    Ok((id, format!("/v1/message-jobs/{id}")))
}

/// Sends the warm-up job and waits until every message is delivered, then brings the
/// database to a steady state (statistics of this org's messages, dead rows vacuumed).
async fn warm_up(
    state: &AppState,
    api: &Api,
    setup: &Setup,
    simulator: &Simulator,
    count: usize,
) -> anyhow::Result<()> {
    if count == 0 {
        return Ok(());
    }
    let (_, path) = start_job(api, setup, WARM_UP).await?;
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, job) = api.call(reqwest::Method::GET, &setup.app_key, &path, None).await?;
        anyhow::ensure!(status == 200, "the warm-up job could not be read: {status} {job}");
        if progress_of(&job).2 >= u64::try_from(count)? && job["status"] == "done" {
            break;
        }
        anyhow::ensure!(started.elapsed() < DEADLINE, "the warm-up did not finish: {job}");
    }
    simulator.settle(Duration::from_secs(30)).await;
    state.store.settle().await?;
    Ok(())
}

/// How many of the job's messages are past each phase, from its counts by status.
fn progress_of(job: &Value) -> (u64, u64, u64) {
    let count = |status: &str| job["statuses"][status].as_u64().unwrap_or(0);
    let accepted = job["queued"].as_u64().unwrap_or(0);
    let delivered = count("delivered");
    (accepted, count("sent") + delivered, delivered)
}

fn bar(progress: &indicatif::MultiProgress, name: &str, total: u64) -> indicatif::ProgressBar {
    let bar = progress.add(indicatif::ProgressBar::new(total));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len}  {per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_owned());
    bar
}

/// The phases' ends, by the database's clock: the last `queued`, `sent` and `delivered`
/// status any of the job's messages took, in seconds from the job's start.
async fn phases(
    pool: &deadpool_postgres::Pool,
    org: OrgId,
    job: uuid::Uuid,
) -> anyhow::Result<[f64; 3]> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT extract(epoch FROM max(s.at) FILTER (WHERE s.status = 'queued')
                     - j.created_at)::float8,
                 extract(epoch FROM max(s.at) FILTER (WHERE s.status = 'sent')
                     - j.created_at)::float8,
                 extract(epoch FROM max(s.at) FILTER (WHERE s.status = 'delivered')
                     - j.created_at)::float8
             FROM message_jobs j
             JOIN messages m ON m.org_id = j.org_id AND m.job_id = j.id
             JOIN message_statuses s ON s.org_id = m.org_id AND s.message_id = m.id
             WHERE j.org_id = $1 AND j.id = $2
             GROUP BY j.created_at",
            &[&org.0, &job],
        )
        .await?;
    let seconds = |i: usize| row.get::<_, Option<f64>>(i).unwrap_or(f64::NAN);
    Ok([seconds(0), seconds(1), seconds(2)])
}

/// What must hold once every message is delivered; the failures, in words.
async fn check(
    state: &AppState,
    setup: &Setup,
    before: &Before,
    simulator: &Simulator,
    job: &Value,
    customers: usize,
) -> anyhow::Result<Vec<String>> {
    let mut broken = Vec::new();
    let expected = u64::try_from(customers)?;
    let (accepted, _, delivered) = progress_of(job);
    if accepted != expected || delivered != expected || job["refused"].as_u64() != Some(0) {
        broken.push(format!("the job did not deliver every message: {job}"));
    }
    if job["status"] != "done" {
        broken.push(format!("the job is not done: {}", job["status"]));
    }
    let sent = simulator.sms_counts().1 - before.provider_messages;
    if sent != customers {
        broken.push(format!("the provider took {sent} messages, not {customers}"));
    }
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM messages WHERE org_id = $1 AND stage <> 'done'),
                 (SELECT count(*) FROM message_reports_parked WHERE org_id = $1),
                 (SELECT count(*) FROM messages WHERE org_id = $1
                  AND (cost_minor IS DISTINCT FROM $2 OR provider_message_id IS NULL))",
            &[&setup.org.0, &PRICE_MINOR],
        )
        .await?;
    let (unsent, parked, uncharged): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    if unsent + parked + uncharged > 0 {
        broken.push(format!(
            "left over: {unsent} messages not done, {parked} reports parked, {uncharged} \
             messages without their cost or provider id"
        ));
    }
    let purse =
        state.store.account(setup.org, setup.purse).await?.context("the purse is gone")?.balance();
    let charged = i64::try_from(customers)?.saturating_mul(PRICE_MINOR);
    let left = Money::from_minor(kes(), before.purse_minor - charged);
    if purse.posted != left || purse.pending != left {
        broken.push(format!(
            "the purse holds {} posted and {} with pending, not {left}",
            purse.posted, purse.pending
        ));
    }
    for violation in state.store.verify().await? {
        broken.push(format!("ledger invariant broken: {violation}"));
    }
    Ok(broken)
}

/// Runs the benchmark on `pool`'s (migrated) database with `customers` customers.
#[allow(clippy::too_many_lines)] // Set up, run, measure, check: one story.
pub async fn bench(
    pool: deadpool_postgres::Pool,
    ledger_pool: deadpool_postgres::Pool,
    customers: usize,
    warm_up_customers: usize,
    json_out: bool,
) -> anyhow::Result<MessagingBenchResult> {
    let mut stderr = std::io::stderr();
    let services = Services::with_pools(pool, ledger_pool, crate::secrets::Sealer::generate()?);
    let state = AppState::from(services);
    // The simulator listens on loopback, which only an operator's choice allows.
    state.messaging.configure(crate::messaging::Settings {
        provider_hosts: crate::payments::ProviderHosts {
            any: true,
            ..crate::payments::ProviderHosts::default()
        },
        ..crate::messaging::Settings::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::http::serve_on(listener, state.clone(), async {
        let _ = stopped.await;
    }));
    let simulator = Simulator::new(SimulatorConfig::new(API_KEY));
    let simulator_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let simulator_url = format!("http://{}", simulator_listener.local_addr()?);
    let router = simulator.router();
    let simulator_server =
        tokio::spawn(async move { axum::serve(simulator_listener, router).await });
    let api = Api { http: reqwest::Client::builder().build()?, base };

    writeln!(
        stderr,
        "setting up: an SMS channel at the simulator and {customers} customers (and \
         {warm_up_customers} for the warm-up)"
    )?;
    let setup =
        set_up(&state, &api, &simulator, &simulator_url, customers, warm_up_customers).await?;
    let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(crate::workers::send_messages(
        std::sync::Arc::clone(&state.messaging),
        async {
            let _ = worker_stopped.await;
        },
    ));
    if warm_up_customers > 0 {
        writeln!(stderr, "warming up: a job to {warm_up_customers} customers, then ANALYZE")?;
    }
    warm_up(&state, &api, &setup, &simulator, warm_up_customers).await?;
    let purse = state.store.account(setup.org, setup.purse).await?.context("no purse")?;
    let before = Before {
        purse_minor: purse.balance().posted.to_minor()?,
        provider_requests: simulator.sms_counts().0,
        provider_messages: simulator.sms_counts().1,
        reports: simulator.reports().len(),
    };

    writeln!(stderr, "sending one message to each of {customers} customers by tag")?;
    let cpu = CpuTime::now(&state.pool).await;
    let started = Instant::now();
    let (job_id, job_path) = start_job(&api, &setup, MEASURED).await?;

    let progress =
        indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr());
    let total = u64::try_from(customers)?;
    let bars = [
        bar(&progress, "accepted", total),
        bar(&progress, "sent", total),
        bar(&progress, "delivered", total),
    ];
    let mut parked_peak = 0_i64;
    let job = loop {
        tokio::time::sleep(POLL).await;
        let (status, job) = api.call(reqwest::Method::GET, &setup.app_key, &job_path, None).await?;
        anyhow::ensure!(status == 200, "the job could not be read: {status} {job}");
        let (accepted, sent, delivered) = progress_of(&job);
        for (bar, position) in bars.iter().zip([accepted, sent, delivered]) {
            bar.set_position(position);
        }
        let parked: i64 = state
            .pool
            .get()
            .await?
            .query_one(
                "SELECT count(*) FROM message_reports_parked WHERE org_id = $1",
                &[&setup.org.0],
            )
            .await?
            .get(0);
        parked_peak = parked_peak.max(parked);
        if delivered >= total && job["status"] == "done" {
            break job;
        }
        if started.elapsed() > DEADLINE {
            for bar in &bars {
                bar.abandon();
            }
            anyhow::bail!("not every message was delivered within {DEADLINE:?}: {job}");
        }
    };
    for bar in &bars {
        bar.finish();
    }
    let (cpu_us_per_message, database_cpu_us_per_message) =
        CpuTime::now(&state.pool).await.micros_per(&cpu, total);
    let _ = stop_worker.send(());
    let _ = worker.await;
    simulator.settle(Duration::from_secs(30)).await;

    let [accepted, sent, delivered] = phases(&state.pool, setup.org, job_id).await?;
    let phase = |seconds: f64| Phase { seconds, messages_per_second: customers as f64 / seconds };
    let reports = simulator.reports();
    let reports = &reports[before.reports.min(reports.len())..];
    let reports_failed = reports.iter().filter(|report| report.status != Some(200)).count();
    let provider_requests = simulator.sms_counts().0 - before.provider_requests;
    writeln!(stderr, "checking: every message delivered and charged once, nothing pending…")?;
    let broken = check(&state, &setup, &before, &simulator, &job, customers).await?;
    let _ = stop.send(());
    let _ = server.await;
    simulator_server.abort();

    let result = MessagingBenchResult {
        customers,
        accepted: phase(accepted),
        sent: phase(sent),
        delivered: phase(delivered),
        provider_requests,
        reports: reports.len(),
        reports_failed,
        reports_parked_at_peak: parked_peak,
        cpu_us_per_message,
        database_cpu_us_per_message,
        checks_hold: broken.is_empty(),
    };
    for (name, phase) in
        [("accepted", &result.accepted), ("sent", &result.sent), ("delivered", &result.delivered)]
    {
        writeln!(
            stderr,
            "{name:>10}: all {customers} in {:.2} s: {:.0} messages/s",
            phase.seconds, phase.messages_per_second
        )?;
    }
    writeln!(
        stderr,
        "{} bulk requests, {} delivery reports over HTTP ({} not answered 200), at most {} \
         parked at once; CPU per message: {:.0} µs here (server, worker, simulator), {:.0} µs \
         in PostgreSQL",
        result.provider_requests,
        result.reports,
        result.reports_failed,
        result.reports_parked_at_peak,
        result.cpu_us_per_message,
        result.database_cpu_us_per_message,
    )?;
    if json_out {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer(&mut stdout, &result)?;
        writeln!(stdout)?;
    }
    for problem in &broken {
        writeln!(stderr, "CHECK FAILED: {problem}")?;
    }
    anyhow::ensure!(broken.is_empty(), "{} check(s) failed", broken.len());
    writeln!(
        stderr,
        "checks: every message delivered, the purse debited by exactly {customers} × KES 0.80, \
         nothing pending, the ledger's invariants hold"
    )?;
    Ok(result)
}
