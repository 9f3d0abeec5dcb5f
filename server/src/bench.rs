//! `hazina bench`: the posting pipeline against the naive path, side by side on the same data.
//!
//! It sets up one org with a purse and many funded wallets, loads a history of transfers and
//! analyses the tables, then runs the chosen workload for a while through the pipeline and for
//! as long through the naive path (one transfer per database transaction, accounts locked with
//! a sorted `SELECT … FOR UPDATE`), prints both and their ratio, and ends by checking every
//! ledger invariant.

// Rates, percentiles and ratios are statistics for display, where f64 is the right tool; no
// amount of money passes through a float here.
#![allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use hazina_ledger::pipeline::{Pipeline, PipelineConfig, SubmitError};
use hazina_ledger::rules::{AccountKind, Action, Outcome, Posting, Side, TransferRequest};
use hazina_ledger::store::{NewAccount, Store};
use hazina_ledger::{AccountId, Currency, CustomerId, Money, OrgId, TransferId};
use hdrhistogram::Histogram;
use rand::Rng as _;
use serde::Serialize;

/// Which accounts the transfers move money between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Every transfer moves money between the purse and a random wallet.
    Hot,
    /// Every transfer moves money between two random wallets.
    Uniform,
}

/// The benchmark's options.
#[derive(Clone, Debug, Args)]
// Command-line switches are naturally booleans.
#[allow(clippy::struct_excessive_bools)]
pub struct BenchArgs {
    /// Which accounts the transfers touch.
    #[arg(long, value_enum, default_value_t = Workload::Hot)]
    pub workload: Workload,
    /// How long each of the two runs (pipeline, naive) lasts.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent submitters, each waiting for its transfer's outcome before sending the next.
    /// A closed loop's batches are never larger than this.
    #[arg(long, default_value_t = 1_024)]
    pub concurrency: usize,
    /// Instead of as fast as possible: send this many transfers per second (open loop), to
    /// measure latency at a given load.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Wallets (all funded), shared out among the orgs.
    #[arg(long, default_value_t = 10_000)]
    pub wallets: usize,
    /// Orgs, each with a purse of its own; transfers pick an org at random. More than one lets
    /// the pipeline's writers work in parallel (one writer per org).
    #[arg(long, default_value_t = 1)]
    pub orgs: usize,
    /// Transfers loaded before measuring, so that tables and indexes are populated.
    #[arg(long, default_value_t = 200_000)]
    pub history: usize,
    /// Percent of transfers made as a pending transfer and then posted (two ledger requests).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub pending_percent: u8,
    /// Skip the naive run (no ratio is printed).
    #[arg(long)]
    pub skip_naive: bool,
    /// The pipeline's largest batch.
    #[arg(long, default_value_t = PipelineConfig::default().batch_size_max)]
    pub batch_size_max: usize,
    /// The pipeline's longest wait for more requests, in microseconds.
    #[arg(long, default_value_t = 0)]
    pub batch_delay_us: u64,
    /// Apply each org's batches strictly one after another, instead of preparing the next
    /// batch while the previous one commits (to measure what the overlap brings).
    #[arg(long)]
    pub no_overlap: bool,
    /// Print the result as one JSON line on stdout, after the human-readable report on stderr.
    #[arg(long)]
    pub json: bool,
    /// Measure the HTTP API instead: single payments (hot workload) and then the batch
    /// endpoint, over keep-alive connections on loopback.
    #[arg(long)]
    pub http: bool,
    /// With `--http`: concurrent keep-alive connections, each a closed-loop client.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// With `--http`: transfers per batch request (64 connections × 50 stay within the
    /// pipeline's queue of 4,096).
    #[arg(long, default_value_t = 50)]
    pub batch_size: usize,
    /// Measure webhook delivery instead: record `--events` events, then deliver them to a
    /// receiver in this process with `--webhook-workers` workers, and report events/s.
    #[arg(long)]
    pub webhooks: bool,
    /// With `--webhooks`: events delivered.
    #[arg(long, default_value_t = 50_000)]
    pub events: usize,
    /// With `--webhooks`: delivery workers (as several server processes run them).
    #[arg(long, default_value_t = 2)]
    pub webhook_workers: usize,
    /// Measure messaging instead: one SMS to each of `--customers` customers by tag, through
    /// the Africa's Talking simulator, until every delivery report is applied.
    #[arg(long)]
    pub messaging: bool,
    /// With `--messaging`: customers with the tag (one message each).
    #[arg(long, default_value_t = 100_000)]
    pub customers: usize,
    /// With `--messaging`: customers messaged first by another tag, after which the tables
    /// are analysed, so that plans are made on the org's messages (0: none, the cold start).
    #[arg(long, default_value_t = 2_000)]
    pub warm_up: usize,
    /// Measure reconciliation instead: `--lines` transfers on a channel's clearing account,
    /// then a statement of as many lines imported and matched against them.
    #[arg(long)]
    pub reconcile: bool,
    /// With `--reconcile`: statement lines (and transfers).
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: usize,
    /// Measure the reports instead (`bench_reports`): build a ledger of `--report-accounts`
    /// accounts and about `--report-entries` entries through the store, then time the trial
    /// balance, balance sheet, income statement and statement pages.
    #[arg(long)]
    pub reports: bool,
    /// With `--reports`: accounts in the org.
    #[arg(long, default_value_t = 100_000)]
    pub report_accounts: usize,
    /// With `--reports`: entries posted (in transfers of 16 legs).
    #[arg(long, default_value_t = 10_000_000)]
    pub report_entries: usize,
    /// With `--reports`: days the entries' effective times are spread over, up to now.
    #[arg(long, default_value_t = 365)]
    pub report_days: u32,
    /// With `--reports`: timed runs of each report.
    #[arg(long, default_value_t = 30)]
    pub report_runs: usize,
}

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct RunResult {
    pub path: &'static str,
    pub seconds: f64,
    /// Ledger requests answered (accepted or rejected) per second.
    pub transfers_per_second: f64,
    pub accepted: u64,
    pub rejected: u64,
    /// Requests refused with `overloaded` (a full queue).
    pub overloaded: u64,
    /// Requests that failed with a database error.
    pub errors: u64,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// `(smallest size of the bucket, batches)`, pipeline only.
    pub batch_sizes: Vec<(usize, u64)>,
    pub batches: u64,
}

/// The benchmark's whole result, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct BenchResult {
    pub workload: Workload,
    pub orgs: usize,
    pub wallets: usize,
    pub history: usize,
    pub concurrency: usize,
    pub rate: Option<u64>,
    pub pending_percent: u8,
    pub batch_size_max: usize,
    pub batch_delay_us: u64,
    pub overlap_batches: bool,
    pub pipeline: RunResult,
    pub naive: Option<RunResult>,
    /// Pipeline transfers per second over naive transfers per second.
    pub ratio: Option<f64>,
    pub peak_memory_mib: Option<f64>,
    pub invariants_hold: bool,
}

/// One org's accounts.
struct Org {
    id: OrgId,
    purse: AccountId,
    wallets: Vec<AccountId>,
}

/// The accounts a run moves money between: one org's, or several orgs' (each with its own
/// purse and a share of the wallets).
struct Accounts {
    orgs: Vec<Org>,
}

pub(crate) fn kes() -> Currency {
    // KES is in ISO 4217 with two decimals; the unit tests of `money` prove it.
    Currency::from_code("KES").unwrap_or_else(|_| unreachable!("KES is an ISO 4217 currency"))
}

pub(crate) fn transfer(
    org: OrgId,
    from: AccountId,
    to: AccountId,
    minor: i64,
    code: &str,
) -> TransferRequest {
    let amount = Money::from_minor(kes(), minor);
    TransferRequest {
        id: TransferId::generate(),
        id_is_new: true,
        org,
        action: Action::Post {
            postings: vec![
                Posting { account: from, side: Side::Debit, amount },
                Posting { account: to, side: Side::Credit, amount },
            ],
        },
        code: code.to_owned(),
        effective_at: None,
        context: hazina_ledger::rules::Context::default(),
    }
}

impl Accounts {
    /// One transfer of the workload in a random org.
    fn next(&self, workload: Workload) -> TransferRequest {
        self.orgs[rand::rng().random_range(0..self.orgs.len())].next(workload)
    }
}

impl Org {
    /// One transfer of the workload (a payment into or a payout from the purse, or a transfer
    /// between two wallets), of 1 to 100 shillings.
    fn next(&self, workload: Workload) -> TransferRequest {
        let mut rng = rand::rng();
        let amount = rng.random_range(100..=10_000);
        let wallet = self.wallets[rng.random_range(0..self.wallets.len())];
        match workload {
            Workload::Hot if rng.random_bool(0.5) => {
                transfer(self.id, wallet, self.purse, amount, "payment")
            }
            Workload::Hot => transfer(self.id, self.purse, wallet, amount, "payout"),
            Workload::Uniform => {
                let mut other = self.wallets[rng.random_range(0..self.wallets.len())];
                if other == wallet {
                    other = self.purse;
                }
                transfer(self.id, wallet, other, amount, "transfer")
            }
        }
    }
}

/// How a run sends one request: through the pipeline, or straight to the store as a batch of
/// one (the naive path).
#[derive(Clone)]
enum Path {
    Pipeline(Pipeline),
    Naive(Store),
}

/// Why a request got no outcome.
enum Failure {
    Overloaded,
    Error,
}

impl Path {
    async fn send(&self, request: TransferRequest) -> Result<Outcome, Failure> {
        match self {
            Self::Pipeline(pipeline) => match pipeline.submit(request).await {
                Ok(outcome) => Ok(outcome),
                Err(SubmitError::Overloaded) => Err(Failure::Overloaded),
                Err(_) => Err(Failure::Error),
            },
            Self::Naive(store) => match store.post(std::slice::from_ref(&request)).await {
                Ok(mut outcomes) => outcomes.pop().ok_or(Failure::Error),
                Err(_) => Err(Failure::Error),
            },
        }
    }
}

/// Counters a run's submitters share.
#[derive(Default)]
struct Tally {
    accepted: AtomicU64,
    rejected: AtomicU64,
    overloaded: AtomicU64,
    errors: AtomicU64,
}

impl Tally {
    fn answered(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed) + self.rejected.load(Ordering::Relaxed)
    }
}

/// Sends one workload item (a transfer, or a pending transfer and its post) and records it:
/// the latency of each answered request, and every outcome or failure.
async fn one(
    path: &Path,
    accounts: &Accounts,
    args: &BenchArgs,
    tally: &Tally,
    latencies: &mut impl FnMut(u64),
) {
    let mut request = accounts.next(args.workload);
    let pending = rand::rng().random_range(0..100) < args.pending_percent;
    if pending && let Action::Post { postings } = request.action.clone() {
        request.action = Action::Pending { postings, timeout_ms: Some(60_000) };
    }
    let (pending_id, org) = (request.id, request.org);
    let mut requests = vec![request];
    if pending {
        requests.push(TransferRequest {
            id: TransferId::generate(),
            id_is_new: true,
            org,
            action: Action::PostPending { pending_id, amounts: None },
            code: "capture".into(),
            effective_at: None,
            context: hazina_ledger::rules::Context::default(),
        });
    }
    for request in requests {
        let started = Instant::now();
        let result = path.send(request).await;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let counter = match result {
            Ok(Outcome::Accepted { .. }) => &tally.accepted,
            Ok(Outcome::Rejected(_)) => &tally.rejected,
            Err(Failure::Overloaded) => &tally.overloaded,
            Err(Failure::Error) => &tally.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            break;
        }
        latencies(micros);
    }
}

/// Longest latency the histograms hold (longer ones are clamped to it): 100 s, in µs.
const LATENCY_US_MAX: u64 = 100_000_000;

fn histogram() -> Histogram<u64> {
    // 1 µs to 100 s at 2 significant digits (1% resolution) keeps each histogram at about
    // 20 KiB, so that thousands of submitters do not inflate the memory being measured. The
    // bounds are valid, so this cannot fail.
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 2)
        .unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}

/// Runs the workload on `path` for `args.seconds`, closed loop (or open loop at `args.rate`).
async fn run(
    name: &'static str,
    path: Path,
    accounts: &Arc<Accounts>,
    args: &BenchArgs,
    progress: &indicatif::MultiProgress,
) -> RunResult {
    let tally = Arc::new(Tally::default());
    let latencies = Arc::new(Mutex::new(histogram()));
    let duration = Duration::from_secs(args.seconds);
    let bar = progress.add(indicatif::ProgressBar::new(args.seconds));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(name);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    let senders = if args.rate.is_some() { 1 } else { args.concurrency.max(1) };
    for _ in 0..senders {
        let (path, accounts, args, tally, latencies) =
            (path.clone(), accounts.clone(), args.clone(), tally.clone(), latencies.clone());
        tasks.spawn(async move {
            let mut local = histogram();
            match args.rate {
                None => {
                    // Latencies beyond the histogram's range are clamped to it.
                    let mut record = |micros: u64| {
                        let _ = local.record(micros.clamp(1, LATENCY_US_MAX));
                    };
                    while tokio::time::Instant::now() < deadline {
                        one(&path, &accounts, &args, &tally, &mut record).await;
                    }
                }
                Some(rate) => {
                    open_loop(rate, deadline, &path, &accounts, &args, &tally, &latencies).await;
                }
            }
            latencies.lock().unwrap_or_else(PoisonError::into_inner).add(&local).ok();
        });
    }
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    let mut last = (Instant::now(), 0);
    while !tasks.is_empty() {
        tokio::select! {
            _ = tasks.join_next() => {}
            _ = ticker.tick() => {
                let answered = tally.answered();
                let rate = (answered - last.1) as f64 / last.0.elapsed().as_secs_f64();
                last = (Instant::now(), answered);
                bar.set_position(started.elapsed().as_secs().min(args.seconds));
                bar.set_message(format!("{rate:>9.0} transfers/s"));
            }
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let latencies = latencies.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let ms = |quantile: f64| latencies.value_at_quantile(quantile) as f64 / 1_000.0;
    let (batch_sizes, batches) = match &path {
        Path::Pipeline(pipeline) => (
            pipeline.stats().batch_size_histogram(),
            pipeline.stats().batches.load(Ordering::Relaxed),
        ),
        Path::Naive(_) => (Vec::new(), tally.answered()),
    };
    RunResult {
        path: name,
        seconds,
        transfers_per_second: tally.answered() as f64 / seconds,
        accepted: tally.accepted.load(Ordering::Relaxed),
        rejected: tally.rejected.load(Ordering::Relaxed),
        overloaded: tally.overloaded.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        latency_ms_p50: ms(0.50),
        latency_ms_p95: ms(0.95),
        latency_ms_p99: ms(0.99),
        latency_ms_max: latencies.max() as f64 / 1_000.0,
        batch_sizes,
        batches,
    }
}

/// Sends `rate` workload items per second until `deadline`, each in a task of its own.
async fn open_loop(
    rate: u64,
    deadline: tokio::time::Instant,
    path: &Path,
    accounts: &Arc<Accounts>,
    args: &BenchArgs,
    tally: &Arc<Tally>,
    latencies: &Arc<Mutex<Histogram<u64>>>,
) {
    let started = tokio::time::Instant::now();
    let mut sent: u64 = 0;
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    let mut inflight = tokio::task::JoinSet::new();
    while tokio::time::Instant::now() < deadline {
        ticker.tick().await;
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            sent += 1;
            let (path, accounts, args, tally, latencies) =
                (path.clone(), accounts.clone(), args.clone(), tally.clone(), latencies.clone());
            inflight.spawn(async move {
                // One histogram for all: a histogram per in-flight request would be the
                // largest use of memory under overload.
                let mut record = |micros: u64| {
                    let mut shared = latencies.lock().unwrap_or_else(PoisonError::into_inner);
                    let _ = shared.record(micros.clamp(1, LATENCY_US_MAX));
                };
                one(&path, &accounts, &args, &tally, &mut record).await;
            });
        }
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
}

/// Creates the org, the purse and the wallets, funds them, loads the history, then vacuums,
/// analyses and checkpoints.
async fn set_up(store: &Store, pipeline: &Pipeline, args: &BenchArgs) -> anyhow::Result<Accounts> {
    let orgs = args.orgs.max(1);
    let mut accounts = Accounts { orgs: Vec::with_capacity(orgs) };
    let mut funding = Vec::new();
    for index in 0..orgs {
        let wallets = args.wallets / orgs + usize::from(index < args.wallets % orgs);
        let (org, external) = set_up_org(store, wallets).await?;
        // A float of 10 billion shillings in the purse and 100,000 in every wallet.
        funding.push(transfer(org.id, external, org.purse, 1_000_000_000_000, "funding"));
        funding.extend(
            org.wallets.iter().map(|w| transfer(org.id, external, *w, 10_000_000, "funding")),
        );
        accounts.orgs.push(org);
    }
    let history = (0..args.history).map(|_| accounts.next(args.workload));
    submit_all(pipeline, funding.into_iter().chain(history)).await?;
    // Start measuring from a steady state: statistics current (plans made on empty tables are
    // the trap of ledger benchmarks), the load's dead tuples vacuumed so that autovacuum does
    // not start during the run, and the load's WAL checkpointed.
    store.settle().await?;
    Ok(accounts)
}

/// Creates an org with an external account, a purse and `wallets` wallets; returns the org and
/// its external account.
async fn set_up_org(store: &Store, wallets: usize) -> anyhow::Result<(Org, AccountId)> {
    let org = OrgId::generate();
    store.create_org(org, "bench").await?;
    let external =
        store.create_account(&NewAccount::new(org, AccountKind::External, kes())).await?;
    let purse = store.create_account(&NewAccount::new(org, AccountKind::Purse, kes())).await?;
    let mut creating = tokio::task::JoinSet::new();
    let chunks = 16;
    for chunk in 0..chunks {
        let store = store.clone();
        let count = wallets / chunks + usize::from(chunk < wallets % chunks);
        creating.spawn(async move {
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                let mut wallet = NewAccount::new(org, AccountKind::Wallet, kes());
                wallet.customer = Some(CustomerId::generate());
                wallet.wallet_id = Some("main".into());
                ids.push(store.create_account(&wallet).await?.id);
            }
            anyhow::Ok(ids)
        });
    }
    let mut ids = Vec::with_capacity(wallets);
    while let Some(created) = creating.join_next().await {
        ids.extend(created.context("creating wallets")??);
    }
    anyhow::ensure!(!ids.is_empty(), "the benchmark needs at least one wallet per org");
    Ok((Org { id: org, purse: purse.id, wallets: ids }, external.id))
}

/// Submits everything through the pipeline, a window at a time, retrying when overloaded.
pub(crate) async fn submit_all(
    pipeline: &Pipeline,
    requests: impl Iterator<Item = TransferRequest>,
) -> anyhow::Result<()> {
    let mut window = tokio::task::JoinSet::new();
    for request in requests {
        if window.len() >= 4_096
            && let Some(done) = window.join_next().await
        {
            done.context("loading")??;
        }
        let pipeline = pipeline.clone();
        window.spawn(async move {
            loop {
                match pipeline.submit(request.clone()).await {
                    Err(SubmitError::Overloaded) => tokio::task::yield_now().await,
                    Err(error) => return Err(anyhow::Error::new(error)),
                    Ok(_) => return Ok(()),
                }
            }
        });
    }
    while let Some(done) = window.join_next().await {
        done.context("loading")??;
    }
    Ok(())
}

/// The process's peak resident memory, from `/proc/self/status` (Linux only).
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU time used by this process and by the database's server processes, read from `/proc`
/// (Linux; the database's share only when it runs on this machine).
#[derive(Clone, Copy, Debug)]
pub struct CpuTime {
    pub own: Duration,
    pub database: Duration,
}

impl CpuTime {
    /// Now, with the database's processes found through `pg_stat_activity`.
    pub async fn now(pool: &deadpool_postgres::Pool) -> Self {
        let pids: Vec<i32> = match pool.get().await {
            Ok(client) => client
                .query("SELECT pid FROM pg_stat_activity", &[])
                .await
                .map(|rows| rows.iter().map(|row| row.get(0)).collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let database = pids
            .iter()
            .filter_map(|pid| process_cpu(&format!("/proc/{pid}/stat"), "(postgres)"))
            .sum();
        Self { own: process_cpu("/proc/self/stat", "").unwrap_or_default(), database }
    }

    /// The time used since `earlier`, per unit of work, in microseconds.
    pub fn micros_per(&self, earlier: &Self, units: u64) -> (f64, f64) {
        let per = |now: Duration, then: Duration| {
            now.saturating_sub(then).as_secs_f64() * 1e6 / units.max(1) as f64
        };
        (per(self.own, earlier.own), per(self.database, earlier.database))
    }
}

/// User and system time of one process from its `stat` file, when its command is `comm` (any
/// when empty). The kernel counts in `USER_HZ`, which is 100 on every Linux ABI.
fn process_cpu(path: &str, comm: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (name, rest) = stat.split_at(stat.rfind(')')? + 1);
    if !comm.is_empty() && !name.ends_with(comm) {
        return None;
    }
    // After the command: state is field 3, utime and stime are fields 14 and 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn describe(run: &RunResult) -> String {
    let total = run.accepted + run.rejected;
    let rejected = if total == 0 { 0.0 } else { run.rejected as f64 * 100.0 / total as f64 };
    format!(
        "{:>8}: {:>9.0} transfers/s   latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms   \
         {} answered ({rejected:.1}% rejected), {} overloaded, {} errors",
        run.path,
        run.transfers_per_second,
        run.latency_ms_p50,
        run.latency_ms_p95,
        run.latency_ms_p99,
        run.latency_ms_max,
        total,
        run.overloaded,
        run.errors,
    )
}

/// Runs the benchmark on the store's database and reports. Fails when an invariant breaks.
pub async fn bench(store: Store, args: BenchArgs) -> anyhow::Result<BenchResult> {
    let config = PipelineConfig {
        batch_size_max: args.batch_size_max,
        batch_delay_max: Duration::from_micros(args.batch_delay_us),
        overlap_batches: !args.no_overlap,
        ..PipelineConfig::default()
    };
    let progress =
        indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr());
    // Progress bars draw only on a terminal; elsewhere the report still goes to stderr.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let note = |text: String| {
        if terminal {
            progress.println(text).ok();
        } else {
            eprintln!("{text}");
        }
    };
    note(format!(
        "setting up: {} org(s) with a purse each, {} wallets, {} transfers of history ({:?} workload)",
        args.orgs, args.wallets, args.history, args.workload
    ));
    let loader = Pipeline::start(&store, config);
    let accounts = Arc::new(set_up(&store, &loader, &args).await?);
    drop(loader);

    let mode = match args.rate {
        Some(rate) => format!("open loop at {rate} transfers/s"),
        None => format!("{} concurrent submitters", args.concurrency),
    };
    note(format!("running {} s per path, {mode}", args.seconds));
    let pipeline = Pipeline::start(&store, config);
    let pipeline_run = run("pipeline", Path::Pipeline(pipeline), &accounts, &args, &progress).await;
    note(describe(&pipeline_run));
    note(format!(
        "          batches: {}, by size: {:?}",
        pipeline_run.batches, pipeline_run.batch_sizes
    ));
    let naive = if args.skip_naive {
        None
    } else {
        let naive = run("naive", Path::Naive(store.clone()), &accounts, &args, &progress).await;
        note(describe(&naive));
        Some(naive)
    };
    let ratio = naive
        .as_ref()
        .filter(|naive| naive.transfers_per_second > 0.0)
        .map(|naive| pipeline_run.transfers_per_second / naive.transfers_per_second);
    if let Some(ratio) = ratio {
        note(format!("pipeline / naive: {ratio:.1}x"));
    }
    let peak_memory_mib = peak_memory_mib();
    if let Some(mib) = peak_memory_mib {
        note(format!("peak memory: {mib:.0} MiB"));
    }
    note("verifying the ledger's invariants…".to_owned());
    let violations = store.verify().await?;
    let result = BenchResult {
        workload: args.workload,
        orgs: args.orgs,
        wallets: args.wallets,
        history: args.history,
        concurrency: args.concurrency,
        rate: args.rate,
        pending_percent: args.pending_percent,
        batch_size_max: args.batch_size_max,
        batch_delay_us: args.batch_delay_us,
        overlap_batches: !args.no_overlap,
        pipeline: pipeline_run,
        naive,
        ratio,
        peak_memory_mib,
        invariants_hold: violations.is_empty(),
    };
    if args.json {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer(&mut stdout, &result)?;
        writeln!(stdout)?;
    }
    if !violations.is_empty() {
        for violation in violations.iter().take(20) {
            note(format!("INVARIANT BROKEN: {violation}"));
        }
        anyhow::bail!("{} ledger invariant violations", violations.len());
    }
    note("invariants: all hold".to_owned());
    Ok(result)
}
