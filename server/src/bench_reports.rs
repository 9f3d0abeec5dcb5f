//! `hazina bench --reports`: the reports on a large ledger.
//!
//! It builds one org's ledger through the store's batch path (`Store::post`, the rules and every
//! invariant, no rows written behind its back): `--report-accounts` accounts, mostly wallets,
//! and about `--report-entries` entries from transfers of 16 legs (an external account debited,
//! 14 wallets credited, and a fee to revenue or a cost from expense), effective over the last
//! `--report-days` days in the order they are posted. Two loaders post in parallel, each with
//! its own external, revenue and expense accounts and half of the wallets, so that they never
//! wait on each other's locks. It then settles the tables (`VACUUM ANALYZE`) and times each
//! report `--report-runs` times after one warm-up run: the trial balance over several periods,
//! the balance sheet, the income statement, and statement pages of the busiest account (an
//! external one) and of a wallet. Times are of the store's calls (query and building the
//! report), on the reports' own connections.

// Durations and rates are statistics for display, where f64 is the right tool; no amount of
// money passes through a float here.
// Counts (transfers, accounts) are far below `i64::MAX`, so casting them cannot wrap.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{TimeDelta, Utc};
use hazina_ledger::rules::{AccountKind, Action, Outcome, Posting, Side, TransferRequest};
use hazina_ledger::store::{NewAccount, StatementQuery, Store};
use hazina_ledger::{AccountId, Currency, CustomerId, Money, OrgId, TransferId};

use crate::bench::BenchArgs;

/// Legs per transfer of the load: one external debit, 14 wallet credits, one revenue credit or
/// expense debit.
const LEGS: usize = 16;
const WALLET_LEGS: usize = 14;
/// Transfers per `Store::post` batch (the pipeline's largest).
const BATCH: usize = 1_000;
/// Loaders posting in parallel, each to accounts of its own.
const LOADERS: usize = 2;

/// One loader's accounts.
#[derive(Clone, Debug)]
struct Loader {
    external: AccountId,
    revenue: AccountId,
    expense: AccountId,
    wallets: Vec<AccountId>,
}

/// A small deterministic generator (xorshift64*), so that a load can be repeated exactly.
#[derive(Clone, Copy, Debug)]
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Runs the reports benchmark and prints its results on stderr.
pub async fn bench(store: Store, args: &BenchArgs) -> anyhow::Result<()> {
    let kes = Currency::from_code("KES").context("KES")?;
    let accounts = args.report_accounts.max(LOADERS * (3 + WALLET_LEGS));
    let transfers = (args.report_entries / LEGS).max(1);
    let days = i64::from(args.report_days.max(1));
    eprintln!(
        "reports bench: {accounts} accounts, {transfers} transfers of {LEGS} legs \
         ({} entries), effective over {days} days",
        transfers * LEGS
    );

    let started = Instant::now();
    let org = OrgId::generate();
    store.create_org(org, "bench reports").await?;
    let loaders = create_accounts(&store, org, kes, accounts).await?;
    let created = started.elapsed();
    eprintln!("  accounts created in {:.1} s", created.as_secs_f64());

    let now = Utc::now();
    let first = now - TimeDelta::days(days);
    let span_ms = (now - first).num_milliseconds();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, loader) in loaders.iter().cloned().enumerate() {
        let store = store.clone();
        tasks.spawn(async move {
            let mut random = Random(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1));
            let mut batch = Vec::with_capacity(BATCH);
            let mut rejected = 0_usize;
            let mut number = index;
            let report_every = (transfers / 10).max(1);
            while number < transfers {
                // Effective times rise with the number across both loaders: the history is
                // spread evenly over the days, oldest first.
                let offset = span_ms * number as i64 / transfers as i64;
                let effective = first + TimeDelta::milliseconds(offset);
                batch.push(transfer(org, kes, &loader, &mut random, number, effective));
                if batch.len() == BATCH || number + LOADERS >= transfers {
                    let outcomes = store.post(&batch).await?;
                    rejected += outcomes
                        .iter()
                        .filter(|outcome| !matches!(outcome, Outcome::Accepted { .. }))
                        .count();
                    batch.clear();
                }
                if index == 0 && number / report_every != (number + LOADERS) / report_every {
                    eprintln!(
                        "  loaded {} of {transfers} transfers",
                        (number + LOADERS).min(transfers)
                    );
                }
                number += LOADERS;
            }
            anyhow::Ok(rejected)
        });
    }
    let mut rejected = 0;
    while let Some(done) = tasks.join_next().await {
        rejected += done.context("loading")??;
    }
    anyhow::ensure!(rejected == 0, "{rejected} transfers of the load were rejected");
    let loaded = started.elapsed().saturating_sub(created);
    eprintln!(
        "  {} entries posted in {:.1} s ({:.0} entries/s)",
        transfers * LEGS,
        loaded.as_secs_f64(),
        (transfers * LEGS) as f64 / loaded.as_secs_f64()
    );
    store.settle().await?;
    eprintln!("  settled; setup took {:.1} s in all", started.elapsed().as_secs_f64());

    let results = measure(&store, org, &loaders, args.report_runs.max(1), first, days).await?;
    eprintln!("\n| Report | median (ms) | p99 (ms) | max (ms) |\n| --- | --- | --- | --- |");
    for (name, times) in &results {
        let at = |q: f64| {
            let index = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
            times[index].as_secs_f64() * 1_000.0
        };
        eprintln!("| {name} | {:.2} | {:.2} | {:.2} |", at(0.5), at(0.99), at(1.0));
    }
    Ok(())
}

/// Times each report `runs` times: the name of each and its sorted timings.
async fn measure(
    store: &Store,
    org: OrgId,
    loaders: &[Loader],
    runs: usize,
    first: chrono::DateTime<Utc>,
    days: i64,
) -> anyhow::Result<Vec<(String, Vec<Duration>)>> {
    let end = Utc::now();
    let day = TimeDelta::days(1);
    let mut results = Vec::new();
    for (name, from, to) in [
        ("trial balance, last day", end - day, end),
        ("trial balance, last 30 days", end - day * 30, end),
        (
            "trial balance, a month mid-history",
            end - TimeDelta::days(days / 2 + 15),
            end - TimeDelta::days(days / 2 - 15),
        ),
        ("trial balance, whole history", first - day, end),
    ] {
        let lines = store.trial_balance(org, from, to).await?.lines.len();
        let times = timed(runs, || async {
            store.trial_balance(org, from, to).await?;
            anyhow::Ok(())
        })
        .await?;
        results.push((format!("{name} ({lines} accounts)"), times));
    }
    // The same month mid-history once closed: its start and end are closes (each timed once:
    // the close writes every account's sums), so the report reads the closes' sums and no
    // entries.
    let month_start = end - TimeDelta::days(days / 2 + 15);
    let month_end = end - TimeDelta::days(days / 2 - 15);
    let tick = TimeDelta::microseconds(1);
    for (name, at) in
        [("close, start of the month", month_start), ("close, end of the month", month_end)]
    {
        let started = Instant::now();
        store.close_period(org, at - tick, "bench", None).await?;
        results.push((name.to_owned(), vec![started.elapsed()]));
    }
    let closed = store.trial_balance(org, month_start, month_end).await?.lines.len();
    let times = timed(runs, || async {
        store.trial_balance(org, month_start, month_end).await?;
        anyhow::Ok(())
    })
    .await?;
    results.push((format!("trial balance, the same month closed ({closed} accounts)"), times));
    let times = timed(runs, || async {
        store.balance_sheet(org, end).await?;
        anyhow::Ok(())
    })
    .await?;
    results.push(("balance sheet, now".to_owned(), times));
    let times = timed(runs, || async {
        store.income_statement(org, end - day * 30, end).await?;
        anyhow::Ok(())
    })
    .await?;
    results.push(("income statement, last 30 days".to_owned(), times));

    let busiest = store.account(org, loaders[0].external).await?.context("the external account")?;
    let wallet = loaders[0].wallets[0];
    let page = |after: Option<i64>, from| StatementQuery {
        from,
        to: None,
        after_version: after,
        limit: 50,
    };
    let middle = store
        .statement(org, busiest.id, &page(Some(busiest.version / 2), None))
        .await?
        .lines
        .first()
        .map(|line| line.created_at);
    for (name, account, query) in [
        (
            format!("statement page of 50, first ({} entries)", busiest.version),
            busiest.id,
            page(None, None),
        ),
        (
            "statement page of 50, last".to_owned(),
            busiest.id,
            page(Some(busiest.version - 50), None),
        ),
        (
            "statement page of 50, from a time mid-history".to_owned(),
            busiest.id,
            page(None, middle),
        ),
        ("statement page of 50, a wallet".to_owned(), wallet, page(None, None)),
    ] {
        let times = timed(runs, || async {
            store.statement(org, account, &query).await?;
            anyhow::Ok(())
        })
        .await?;
        results.push((name, times));
    }

    Ok(results)
}

/// The org's accounts: per loader an external, a revenue and an expense account, and the rest
/// wallets shared out between the loaders.
async fn create_accounts(
    store: &Store,
    org: OrgId,
    kes: Currency,
    accounts: usize,
) -> anyhow::Result<Vec<Loader>> {
    let mut loaders = Vec::with_capacity(LOADERS);
    for _ in 0..LOADERS {
        let mut made = Vec::with_capacity(3);
        for kind in [AccountKind::External, AccountKind::Revenue, AccountKind::Expense] {
            made.push(store.create_account(&NewAccount::new(org, kind, kes)).await?.id);
        }
        loaders.push(Loader {
            external: made[0],
            revenue: made[1],
            expense: made[2],
            wallets: Vec::new(),
        });
    }
    let wallets = accounts - 3 * LOADERS;
    let chunks = 16;
    let mut creating = tokio::task::JoinSet::new();
    for chunk in 0..chunks {
        let store = store.clone();
        let count = wallets / chunks + usize::from(chunk < wallets % chunks);
        creating.spawn(async move {
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                let mut wallet = NewAccount::new(org, AccountKind::Wallet, kes);
                wallet.customer = Some(CustomerId::generate());
                wallet.wallet_id = Some("main".into());
                ids.push(store.create_account(&wallet).await?.id);
            }
            anyhow::Ok(ids)
        });
    }
    let mut index = 0;
    while let Some(created) = creating.join_next().await {
        for id in created.context("creating wallets")?? {
            loaders[index % LOADERS].wallets.push(id);
            index += 1;
        }
    }
    Ok(loaders)
}

/// Transfer `number` of a loader: 14 distinct wallets credited 1.00 to 100.00 each, a fee to
/// revenue (even numbers) or a cost from expense (odd), and the external account debited the
/// rest.
fn transfer(
    org: OrgId,
    kes: Currency,
    loader: &Loader,
    random: &mut Random,
    number: usize,
    effective: chrono::DateTime<Utc>,
) -> TransferRequest {
    let mut postings = Vec::with_capacity(LEGS);
    let mut credited = 0_i64;
    let start = random.below(loader.wallets.len());
    let stride = 1 + random.below((loader.wallets.len() / WALLET_LEGS).max(1));
    for leg in 0..WALLET_LEGS {
        let wallet = loader.wallets[(start + leg * stride) % loader.wallets.len()];
        let amount = 100 + random.below(9_901) as i64;
        credited += amount;
        postings.push(Posting {
            account: wallet,
            side: Side::Credit,
            amount: Money::from_minor(kes, amount),
        });
    }
    let other = 10 + random.below(90) as i64;
    let external = if number.is_multiple_of(2) {
        postings.push(Posting {
            account: loader.revenue,
            side: Side::Credit,
            amount: Money::from_minor(kes, other),
        });
        credited + other
    } else {
        postings.push(Posting {
            account: loader.expense,
            side: Side::Debit,
            amount: Money::from_minor(kes, other),
        });
        credited - other
    };
    postings.push(Posting {
        account: loader.external,
        side: Side::Debit,
        amount: Money::from_minor(kes, external),
    });
    TransferRequest {
        id: TransferId::generate(),
        id_is_new: true,
        org,
        action: Action::Post { postings },
        code: if number.is_multiple_of(2) { "sale".into() } else { "payout".into() },
        effective_at: Some(effective),
        context: hazina_ledger::rules::Context::default(),
    }
}

/// `runs` timings of `run`, after one untimed warm-up run, sorted.
async fn timed<F, Fut>(runs: usize, mut run: F) -> anyhow::Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    run().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        run().await?;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    Ok(times)
}
