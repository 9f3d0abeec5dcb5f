//! `hazina bench` end to end on a small scale: it runs both paths, reports, and verifies the
//! ledger (timing is the benchmark's business, not a test's).

use hazina_ledger::store::Store;
use hazina_server::bench::{BenchArgs, Workload, bench};

fn args(workload: Workload) -> BenchArgs {
    BenchArgs {
        workload,
        seconds: 1,
        concurrency: 8,
        rate: None,
        wallets: 20,
        orgs: 1,
        history: 200,
        pending_percent: 30,
        skip_naive: false,
        batch_size_max: 100,
        batch_delay_us: 200,
        no_overlap: false,
        json: false,
        http: false,
        connections: 4,
        batch_size: 10,
        webhooks: false,
        events: 0,
        webhook_workers: 1,
        messaging: false,
        customers: 0,
        warm_up: 0,
        reconcile: false,
        lines: 0,
        reports: false,
        report_accounts: 0,
        report_entries: 0,
        report_days: 1,
        report_runs: 1,
    }
}

/// `hazina bench --reconcile` on a small scale: the statement it writes is imported and
/// matched as it describes (nine in ten lines by reference, the rest by amount and date, one
/// in a hundred on each side unmatched), and the ledger stays sound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciliation_bench_imports_and_matches_its_statement() {
    let db = hazina_tests::fresh_db().await;
    let result = hazina_server::bench_reconcile::bench(db.pool(), db.pool(), 2_000).await.unwrap();
    // 2,000 transfers: 20 left off the statement, 20 lines the ledger never saw.
    assert_eq!(result.lines, 1_980 + 20, "{result:?}");
    assert!(result.matched >= 1_950, "{result:?}");
    assert!(result.unmatched_transfers >= 1, "{result:?}");
    let violations = Store::new(db.pool()).verify().await.unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_workloads_run_both_paths_and_leave_the_ledger_sound() {
    for workload in [Workload::Hot, Workload::Uniform] {
        let db = hazina_tests::fresh_db().await;
        let result = bench(Store::new(db.pool()), args(workload)).await.unwrap();
        assert!(result.invariants_hold);
        assert!(result.pipeline.accepted > 0, "{:?}", result.pipeline);
        let naive = result.naive.as_ref().unwrap();
        assert!(naive.accepted > 0, "{naive:?}");
        assert_eq!(result.pipeline.errors + naive.errors + result.pipeline.overloaded, 0);
        assert!(result.ratio.is_some());
        assert!(!result.pipeline.batch_sizes.is_empty());
        let json = serde_json::to_value(&result).unwrap();
        assert!(json["pipeline"]["transfers_per_second"].is_number());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_orgs_share_the_wallets_and_stay_sound() {
    let db = hazina_tests::fresh_db().await;
    let args = BenchArgs { orgs: 3, skip_naive: true, ..args(Workload::Uniform) };
    let result = bench(Store::new(db.pool()), args).await.unwrap();
    assert!(result.invariants_hold);
    assert!(result.pipeline.accepted > 0);
    assert_eq!(result.orgs, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_run_sends_at_the_given_rate() {
    let db = hazina_tests::fresh_db().await;
    let args = BenchArgs { rate: Some(200), skip_naive: true, ..args(Workload::Hot) };
    let result = bench(Store::new(db.pool()), args).await.unwrap();
    assert!(result.invariants_hold);
    // One second at 200 a second, with 30% of them a pending transfer and its post.
    let answered = result.pipeline.accepted + result.pipeline.rejected;
    assert!((150..=400).contains(&answered), "{answered}");
    assert!(result.naive.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_mode_pays_over_real_http_and_leaves_the_ledger_sound() {
    let db = hazina_tests::fresh_db().await;
    let args = BenchArgs { http: true, connections: 4, batch_size: 10, ..args(Workload::Hot) };
    let result = hazina_server::bench_http::bench(db.pool(), db.pool(), args).await.unwrap();
    assert!(result.invariants_hold);
    assert!(result.payments.succeeded > 0, "{:?}", result.payments);
    assert!(result.batches.succeeded > 0, "{:?}", result.batches);
    assert_eq!(result.payments.errors + result.batches.errors, 0);
    // Every accepted batch request carried its ten transfers.
    assert!(result.batches.transfers_per_second >= result.batches.requests_per_second * 9.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_bench_builds_a_sound_ledger_and_times_every_report() {
    let db = hazina_tests::fresh_db().await;
    let store = Store::new(db.pool());
    let args = BenchArgs {
        reports: true,
        report_accounts: 60,
        report_entries: 16 * 2_100,
        report_days: 30,
        report_runs: 2,
        ..args(Workload::Hot)
    };
    hazina_server::bench_reports::bench(store.clone(), &args).await.unwrap();
    let violations = store.verify().await.unwrap();
    assert!(violations.is_empty(), "the ledger's invariants hold: {violations:?}");
    let org = store.orgs().await.unwrap()[0];
    let now = chrono::Utc::now();
    let trial = store.trial_balance(org, now - chrono::TimeDelta::days(31), now).await.unwrap();
    assert_eq!(trial.lines.len(), 60);
    // 2,100 transfers of 16 legs, every one posted: 33,600 entries over the accounts.
    let mut entries = 0;
    for line in &trial.lines {
        entries += store.account(org, line.account).await.unwrap().unwrap().version;
    }
    assert_eq!(entries, 16 * 2_100);
    assert!(trial.totals.iter().all(|total| total.debits == total.credits), "{trial:?}");
    let sheet = store.balance_sheet(org, now).await.unwrap();
    assert!(sheet.currencies.iter().all(|currency| currency.balanced), "{sheet:?}");
}
