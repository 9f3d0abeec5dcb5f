//! `hazina bench --http`: the HTTP API under load, over real HTTP on loopback with keep-alive
//! connections: single payments on the hot workload (a purse and random wallets), then raw
//! transfers through the batch endpoint. Ends by checking every ledger invariant.

// Rates and percentiles are statistics for display, where f64 is the right tool; amounts are
// decimal strings here and never pass through a float.
#![allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use hazina_ledger::rules::AccountKind;
use hazina_ledger::store::NewAccount;
use hazina_ledger::{AccountId, CustomerId, OrgId};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use rand::Rng as _;
use serde::Serialize;
use serde_json::json;

use crate::app::Services;
use crate::bench::{BenchArgs, CpuTime, kes, submit_all, transfer};
use crate::http::AppState;
use crate::tenancy;

const PAYMENTS: &str = "/v1/payments";
const BATCHES: &str = "/v1/transfers/batch";

/// What one HTTP run measured.
#[derive(Debug, Serialize)]
pub struct HttpRun {
    pub endpoint: &'static str,
    pub seconds: f64,
    pub requests_per_second: f64,
    /// Ledger transfers per second (as many as requests for single payments).
    pub transfers_per_second: f64,
    /// Payments made (201) or refused by the ledger (422), per request.
    pub succeeded: u64,
    pub refused: u64,
    /// Anything else: 4xx other than 422, 5xx, transport errors.
    pub errors: u64,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// CPU time per request of this process (server and client) and of PostgreSQL.
    pub cpu_us_per_request: f64,
    pub database_cpu_us_per_request: f64,
    /// The ledger's batches during the run, and their mean size in transfers.
    pub batches: u64,
    pub batch_size_mean: f64,
}

/// The HTTP benchmark's result, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct HttpBenchResult {
    pub connections: usize,
    pub wallets: usize,
    pub batch_size: usize,
    pub payments: HttpRun,
    pub batches: HttpRun,
    pub invariants_hold: bool,
}

/// The org the run pays within.
struct Setup {
    app_key: String,
    org_key: String,
    purse: AccountId,
    customers: Vec<CustomerId>,
    wallets: Vec<AccountId>,
}

async fn set_up(state: &AppState, wallets: usize) -> anyhow::Result<Setup> {
    let store = &state.store;
    let org = OrgId::generate();
    store.create_org(org, "bench-http").await?;
    let app = tenancy::insert_app(&state.pool, org, "bench").await?;
    let app_key = tenancy::insert_key(&state.pool, org, Some(app.app_id), "bench").await?;
    let org_key = tenancy::insert_key(&state.pool, org, None, "bench").await?;
    let external =
        store.create_account(&NewAccount::new(org, AccountKind::External, kes())).await?;
    let purse = store.create_account(&NewAccount::new(org, AccountKind::Purse, kes())).await?;
    let customers: Vec<CustomerId> = (0..wallets.max(1)).map(|_| CustomerId::generate()).collect();
    let ids: Vec<uuid::Uuid> = customers.iter().map(|c| c.0).collect();
    state
        .pool
        .get()
        .await?
        .execute(
            "INSERT INTO customers (id, org_id) SELECT unnest($1::uuid[]), $2",
            &[&ids, &org.0],
        )
        .await?;
    let mut creating = tokio::task::JoinSet::new();
    for chunk in customers.chunks(customers.len().div_ceil(16)) {
        let store = store.clone();
        let chunk = chunk.to_vec();
        creating.spawn(async move {
            let mut made = Vec::with_capacity(chunk.len());
            for customer in chunk {
                let mut wallet = NewAccount::new(org, AccountKind::Wallet, kes());
                wallet.customer = Some(customer);
                wallet.wallet_id = Some("main".into());
                made.push((customer, store.create_account(&wallet).await?.id));
            }
            anyhow::Ok(made)
        });
    }
    let mut pairs = Vec::new();
    while let Some(made) = creating.join_next().await {
        pairs.extend(made.context("creating wallets")??);
    }
    let mut requests = vec![transfer(org, external.id, purse.id, 1_000_000_000_000, "funding")];
    requests.extend(
        pairs.iter().map(|(_, wallet)| transfer(org, external.id, *wallet, 10_000_000, "funding")),
    );
    submit_all(&state.pipeline, requests.into_iter()).await?;
    store.settle().await?;
    Ok(Setup {
        app_key: app_key.token,
        org_key: org_key.token,
        purse: purse.id,
        customers: pairs.iter().map(|(customer, _)| *customer).collect(),
        wallets: pairs.iter().map(|(_, wallet)| *wallet).collect(),
    })
}

#[derive(Default)]
struct Tally {
    succeeded: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    transfers: AtomicU64,
}

/// A hot-workload payment: into the purse from a random wallet, or out of it to one.
fn payment(setup: &Setup) -> serde_json::Value {
    let mut rng = rand::rng();
    let customer = setup.customers[rng.random_range(0..setup.customers.len())];
    let wallet = json!({ "wallet": { "customerId": customer.0, "walletId": "main" } });
    let purse = json!({ "purse": { "purseId": setup.purse.0 } });
    let amount = format!("{}.{:02}", rng.random_range(1..100), rng.random_range(0..100));
    let (from, to) = if rng.random_bool(0.5) { (wallet, purse) } else { (purse, wallet) };
    json!({ "debitParty": from, "creditParty": to,
            "value": { "currencyCode": "KES", "amount": amount }, "narration": "bench" })
}

/// A batch of raw hot-workload transfers.
fn batch(setup: &Setup, size: usize) -> serde_json::Value {
    let mut rng = rand::rng();
    let transfers: Vec<serde_json::Value> = (0..size)
        .map(|_| {
            let wallet = setup.wallets[rng.random_range(0..setup.wallets.len())];
            let (from, to) =
                if rng.random_bool(0.5) { (wallet, setup.purse) } else { (setup.purse, wallet) };
            let amount =
                json!({ "currencyCode": "KES", "amount": format!("{}", rng.random_range(1..100)) });
            json!({ "type": "post", "code": "bench", "legs": [
                { "accountId": from.0, "side": "debit", "value": amount },
                { "accountId": to.0, "side": "credit", "value": amount },
            ] })
        })
        .collect();
    json!({ "transfers": transfers })
}

/// Request bodies prepared before the clock starts, so that the client spends its time
/// sending them rather than building JSON: a load generator should cost the machine as little
/// as it can, since it shares the cores with the server and PostgreSQL.
fn bodies(endpoint: &str, setup: &Setup, batch_size: usize) -> anyhow::Result<Vec<Bytes>> {
    let count = if endpoint == PAYMENTS { 8_192 } else { 256 };
    (0..count)
        .map(|_| {
            let body = if endpoint == PAYMENTS { payment(setup) } else { batch(setup, batch_size) };
            Ok(Bytes::from(serde_json::to_vec(&body)?))
        })
        .collect()
}

/// One keep-alive connection, HTTP/1.1 straight over hyper (no pool, no redirects).
async fn connect(
    address: std::net::SocketAddr,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Runs `connections` closed-loop clients against one endpoint for `seconds`.
async fn run(
    state: &AppState,
    endpoint: &'static str,
    address: std::net::SocketAddr,
    key: &str,
    setup: &Setup,
    args: &BenchArgs,
) -> anyhow::Result<HttpRun> {
    let bodies: Arc<[Bytes]> = bodies(endpoint, setup, args.batch_size)?.into();
    let transfers = if endpoint == PAYMENTS { 1 } else { args.batch_size as u64 };
    let authorization = HeaderValue::from_str(&format!("Bearer {key}"))?;
    let host = HeaderValue::from_str(&address.to_string())?;
    let tally = Arc::new(Tally::default());
    let pipeline = state.pipeline.stats();
    let (batches, applied) =
        (pipeline.batches.load(Ordering::Relaxed), pipeline.requests.load(Ordering::Relaxed));
    let cpu = CpuTime::now(&state.pool).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let (tally, bodies) = (tally.clone(), bodies.clone());
        let (authorization, host) = (authorization.clone(), host.clone());
        let mut sender = connect(address).await?;
        clients.spawn(async move {
            let mut latencies = Histogram::<u64>::new_with_bounds(1, 100_000_000, 2)
                .unwrap_or_else(|_| unreachable!("valid histogram bounds"));
            let mut next = rand::rng().random_range(0..bodies.len());
            while Instant::now() < deadline {
                next = (next + 1) % bodies.len();
                let mut request = hyper::Request::new(Full::new(bodies[next].clone()));
                *request.method_mut() = hyper::Method::POST;
                *request.uri_mut() = hyper::Uri::from_static(endpoint);
                let headers = request.headers_mut();
                headers.insert(header::HOST, host.clone());
                headers.insert(header::AUTHORIZATION, authorization.clone());
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                let sent = Instant::now();
                let status = match sender.send_request(request).await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        response.into_body().collect().await.ok().map(|_| status)
                    }
                    Err(_) => None,
                };
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = latencies.record(micros.clamp(1, 100_000_000));
                let counter = match status {
                    Some(200 | 201) => &tally.succeeded,
                    Some(422) => &tally.refused,
                    _ => &tally.errors,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if matches!(status, Some(200 | 201 | 422)) {
                    tally.transfers.fetch_add(transfers, Ordering::Relaxed);
                }
                if status.is_none() {
                    // The connection is gone: carry on with a new one.
                    match connect(address).await {
                        Ok(fresh) => sender = fresh,
                        Err(_) => break,
                    }
                }
            }
            latencies
        });
    }
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 100_000_000, 2)
        .unwrap_or_else(|_| unreachable!("valid histogram bounds"));
    while let Some(done) = clients.join_next().await {
        latencies.add(done.context("a client task failed")?)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let requests = load(&tally.succeeded) + load(&tally.refused) + load(&tally.errors);
    let (cpu_us_per_request, database_cpu_us_per_request) =
        CpuTime::now(&state.pool).await.micros_per(&cpu, requests);
    let batches = pipeline.batches.load(Ordering::Relaxed) - batches;
    let applied = pipeline.requests.load(Ordering::Relaxed) - applied;
    let ms = |quantile: f64| latencies.value_at_quantile(quantile) as f64 / 1_000.0;
    Ok(HttpRun {
        endpoint,
        seconds,
        requests_per_second: requests as f64 / seconds,
        transfers_per_second: load(&tally.transfers) as f64 / seconds,
        succeeded: load(&tally.succeeded),
        refused: load(&tally.refused),
        errors: load(&tally.errors),
        latency_ms_p50: ms(0.50),
        latency_ms_p95: ms(0.95),
        latency_ms_p99: ms(0.99),
        latency_ms_max: latencies.max() as f64 / 1_000.0,
        cpu_us_per_request,
        database_cpu_us_per_request,
        batches,
        batch_size_mean: applied as f64 / batches.max(1) as f64,
    })
}

fn describe(run: &HttpRun) -> String {
    format!(
        "{:<20} {:>8.0} requests/s ({:.0} transfers/s)   latency p50 {:.1} ms, p95 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms   {} ok, {} refused by the ledger, {} errors\n{:<20} \
         CPU per request: {:.0} µs here (server and client), {:.0} µs in PostgreSQL; \
         {} ledger batches of {:.1} on average",
        run.endpoint,
        run.requests_per_second,
        run.transfers_per_second,
        run.latency_ms_p50,
        run.latency_ms_p95,
        run.latency_ms_p99,
        run.latency_ms_max,
        run.succeeded,
        run.refused,
        run.errors,
        "",
        run.cpu_us_per_request,
        run.database_cpu_us_per_request,
        run.batches,
        run.batch_size_mean,
    )
}

/// Serves the API on loopback over `pool`'s (migrated) database and measures it.
pub async fn bench(
    pool: deadpool_postgres::Pool,
    ledger_pool: deadpool_postgres::Pool,
    args: BenchArgs,
) -> anyhow::Result<HttpBenchResult> {
    // The benchmark makes no channels: a key of its own, forgotten afterwards, is enough.
    let services = Services::with_pools(pool, ledger_pool, crate::secrets::Sealer::generate()?);
    let state = AppState::from(services);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::http::serve_on(listener, state.clone(), async {
        let _ = stopped.await;
    }));
    let mut stderr = std::io::stderr();
    writeln!(stderr, "setting up: a purse and {} customers with funded wallets", args.wallets)?;
    let setup = set_up(&state, args.wallets).await?;
    writeln!(
        stderr,
        "running {} s per endpoint with {} keep-alive connections",
        args.seconds, args.connections
    )?;
    let payments = run(&state, PAYMENTS, address, &setup.app_key, &setup, &args).await?;
    writeln!(stderr, "{}", describe(&payments))?;
    let batches = run(&state, BATCHES, address, &setup.org_key, &setup, &args).await?;
    writeln!(stderr, "{}", describe(&batches))?;
    let _ = stop.send(());
    let _ = server.await;
    writeln!(stderr, "verifying the ledger's invariants…")?;
    let violations = state.store.verify().await?;
    for violation in &violations {
        writeln!(stderr, "VIOLATION: {violation:?}")?;
    }
    let result = HttpBenchResult {
        connections: args.connections,
        wallets: args.wallets,
        batch_size: args.batch_size,
        payments,
        batches,
        invariants_hold: violations.is_empty(),
    };
    if args.json {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer(&mut stdout, &result)?;
        writeln!(stdout)?;
    }
    anyhow::ensure!(result.invariants_hold, "{} ledger invariant(s) broke", violations.len());
    writeln!(stderr, "invariants: all hold")?;
    Ok(result)
}
