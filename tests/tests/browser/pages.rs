//! The pages in Chromium: signing in, the trial balance and a statement showing exactly the
//! API's numbers, paging, the balance chart, signing out; refusals shown as such.

use std::collections::BTreeSet;

use chromiumoxide::page::Page;
use hazina_server::http::ui::CHART_POINTS;
use hazina_tests::ApiServer;
use serde_json::Value;

use crate::harness::{
    Chromium, api, error_code, eval, hold, no_error, open, purse, screenshot, sign_in, transfer,
    wait_page, wait_until,
};

/// The trial balance's account rows as shown: account id, kind and the amounts by field.
const TRIAL_BALANCE_ROWS: &str = "Array.from(document.querySelectorAll('tr[data-account]'))
    .map(tr => ({
        account: tr.dataset.account,
        kind: tr.cells[1].textContent.trim(),
        href: tr.querySelector('a').getAttribute('href'),
        fields: Object.fromEntries(Array.from(tr.querySelectorAll('[data-field]'))
            .map(td => [td.dataset.field, td.textContent.trim()])),
    }))";

/// The trial balance's totals per currency as shown.
const TRIAL_BALANCE_TOTALS: &str = "Array.from(document.querySelectorAll('table[data-totals]'))
    .map(table => ({
        currency: table.dataset.totals,
        fields: Object.fromEntries(Array.from(table.querySelectorAll('[data-field]'))
            .map(td => [td.dataset.field, td.textContent.trim()])),
    }))";

/// The statement's lines as shown.
const STATEMENT_ROWS: &str = "Array.from(document.querySelectorAll('tr[data-sequence]'))
    .map(tr => ({
        sequence: Number(tr.dataset.sequence),
        transfer: tr.dataset.transfer,
        fields: Object.fromEntries(Array.from(tr.querySelectorAll('[data-field]'))
            .map(td => [td.dataset.field, td.textContent.trim()])),
    }))";

/// The balance chart's points as drawn.
const CHART: &str = "(() => {
    const svg = document.querySelector('svg.balance-chart');
    const points = svg ? Array.from(svg.querySelectorAll('circle.point')) : [];
    return {
        declared: svg ? Number(svg.dataset.points) : null,
        line: svg ? svg.querySelector('polyline.line').getAttribute('points').split(' ').length : 0,
        balances: points.map(point => point.dataset.balance),
        titles: points.map(point => point.querySelector('title').textContent),
    };
})()";

/// Checks the statement page shown against the API's page of the same query.
async fn statement_matches_the_api(page: &Page, server: &ApiServer, account: &str, query: &str) {
    no_error(page).await;
    let shown = eval(page, STATEMENT_ROWS).await;
    let shown = shown.as_array().unwrap();
    let answer = api(server, &format!("/v1/accounts/{account}/statement?{query}")).await;
    let lines = answer["lines"].as_array().unwrap();
    assert_eq!(shown.len(), lines.len(), "{query}: {shown:?} against {lines:?}");
    assert!(!lines.is_empty());
    for (row, line) in shown.iter().zip(lines) {
        let field = |name: &str| row["fields"][name].as_str().unwrap().to_owned();
        assert_eq!(row["sequence"], line["sequence"]);
        assert_eq!(row["transfer"], line["transferId"]);
        let amount = line["amount"].as_str().unwrap();
        let (debit, credit) = if line["side"] == "debit" { (amount, "") } else { ("", amount) };
        assert_eq!((field("debit").as_str(), field("credit").as_str()), (debit, credit), "{line}");
        assert_eq!(field("pending"), line["pendingAmount"].as_str().unwrap(), "{line}");
        assert_eq!(field("balance"), line["balance"]["actual"].as_str().unwrap(), "{line}");
        assert_eq!(field("available"), line["balance"]["available"].as_str().unwrap(), "{line}");
    }
}

/// The first sequence number on the statement page shown.
async fn first_sequence(page: &Page) -> i64 {
    eval(page, "Number(document.querySelector('tr[data-sequence]').dataset.sequence)")
        .await
        .as_i64()
        .unwrap()
}

/// Checks the trial balance shown (of `from` to `to`) against the API's report of the same period:
/// every account of `accounts` (the second is Sales), every amount and every total.
async fn trial_balance_matches_the_api(
    page: &Page,
    server: &ApiServer,
    (from, to): (&str, &str),
    accounts: &[&String],
) {
    let period = eval(
        page,
        "(e => [e.dataset.periodFrom, e.dataset.periodTo])(document.querySelector('[data-period-from]'))",
    )
    .await;
    assert_eq!(period, serde_json::json!([from, to]));
    let report = api(server, &format!("/v1/reports/trial-balance?from={from}&to={to}")).await;
    let rows = eval(page, TRIAL_BALANCE_ROWS).await;
    let rows = rows.as_array().unwrap();
    let lines = report["lines"].as_array().unwrap();
    assert_eq!(rows.len(), lines.len(), "{rows:?}");
    for ours in accounts {
        assert!(lines.iter().any(|line| line["account"] == ours.as_str()), "{ours}: {report}");
    }
    for line in lines {
        let account = line["account"].as_str().unwrap();
        let row = rows.iter().find(|row| row["account"] == account).unwrap_or_else(|| {
            panic!("the page lacks {account}: {rows:?}");
        });
        assert_eq!(row["kind"], line["kind"]);
        assert_eq!(row["href"], Value::from(format!("/ui/accounts/{account}")));
        for field in ["opening", "debits", "credits", "closing"] {
            assert_eq!(row["fields"][field], line[field]["amount"], "{field} of {line}");
        }
    }
    let totals = eval(page, TRIAL_BALANCE_TOTALS).await;
    let totals = totals.as_array().unwrap();
    let expected = report["totals"].as_array().unwrap();
    assert_eq!(totals.len(), expected.len());
    for currency in ["KES", "USD"] {
        assert!(expected.iter().any(|total| total["currency"] == currency), "{report}");
    }
    for total in expected {
        let shown = totals.iter().find(|shown| shown["currency"] == total["currency"]).unwrap();
        for field in [
            "opening_debit",
            "opening_credit",
            "debits",
            "credits",
            "closing_debit",
            "closing_credit",
        ] {
            assert_eq!(shown["fields"][field], total[field]["amount"], "{field} of {total}");
        }
    }
    // Exact decimals, as the API gives them.
    let sales_row = rows.iter().find(|row| row["account"] == accounts[1].as_str()).unwrap();
    assert_eq!(sales_row["fields"]["credits"], "369.80");
}

/// Checks the balance chart of Sales: its points, each an exact balance the account had,
/// ending at its balance now.
async fn chart_matches_the_api(page: &Page, server: &ApiServer, sales: &str) {
    let chart = eval(page, CHART).await;
    assert_eq!(chart["declared"], CHART_POINTS);
    assert_eq!(chart["line"], CHART_POINTS);
    let balances: Vec<&str> =
        chart["balances"].as_array().unwrap().iter().map(|b| b.as_str().unwrap()).collect();
    assert_eq!(balances.len(), CHART_POINTS);
    let account = api(server, &format!("/v1/accounts/{sales}")).await;
    assert_eq!(balances.last().copied(), account["balance"]["actual"].as_str());
    assert_eq!(balances.last().copied(), Some("366.55"));
    let statement = api(server, &format!("/v1/accounts/{sales}/statement")).await;
    let mut had: BTreeSet<&str> = statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["balance"]["actual"].as_str().unwrap())
        .collect();
    had.insert("0.00");
    for balance in &balances {
        assert!(had.contains(balance), "the chart shows {balance}, which the account never had");
    }
    let titles = chart["titles"].as_array().unwrap();
    assert!(titles.last().unwrap().as_str().unwrap().ends_with(": 366.55 KES"), "{titles:?}");
}

#[tokio::test]
async fn the_pages_show_the_ledgers_numbers_as_the_api_gives_them() {
    let server = ApiServer::start().await;
    let float = purse(&server, "KES", "Float", Some("1000000")).await;
    let sales = purse(&server, "KES", "Sales", None).await;
    let fees = purse(&server, "KES", "Fees", None).await;
    let dollars_float = purse(&server, "USD", "Dollar float", Some("1000000")).await;
    let dollars = purse(&server, "USD", "Dollar reserve", None).await;
    for amount in ["12.50", "100.00", "7.25", "0.05", "250"] {
        transfer(&server, &float, &sales, "KES", amount, "sale").await;
    }
    transfer(&server, &sales, &fees, "KES", "3.25", "fee").await;
    hold(&server, &sales, &fees, "KES", "10.00").await;
    transfer(&server, &dollars_float, &dollars, "USD", "40.10", "reserve").await;

    let chromium = Chromium::launch().await;
    let page = chromium.page(&format!("{}/ui/", server.base)).await;
    // Signed out, every page leads to signing in.
    wait_page(&page, "login").await;
    no_error(&page).await;
    screenshot(&page, "01-sign-in").await;
    sign_in(&page, &server.org_key).await;
    wait_page(&page, "trial-balance").await;
    no_error(&page).await;
    screenshot(&page, "02-trial-balance-this-month").await;

    // The trial balance of a period, against the API's report of the same period.
    let (from, to) = ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z");
    let accounts = [&float, &sales, &fees, &dollars_float, &dollars];
    let url = format!("{}/ui/trial-balance?from=2000-01-01&to=2099-12-31", server.base);
    open(&page, &url, "trial-balance").await;
    no_error(&page).await;
    trial_balance_matches_the_api(&page, &server, (from, to), &accounts).await;
    screenshot(&page, "03-trial-balance").await;

    // Every account links to its statement: its running balances are the API's.
    page.find_element(format!("tr[data-account='{sales}'] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_page(&page, "statement").await;
    statement_matches_the_api(&page, &server, &sales, "limit=50").await;
    let shown = eval(&page, STATEMENT_ROWS).await;
    assert_eq!(shown.as_array().unwrap().len(), 7);

    chart_matches_the_api(&page, &server, &sales).await;
    screenshot(&page, "04-statement").await;

    // Pages of three, forward by the API's cursor and back.
    let url = format!("{}/ui/accounts/{sales}?limit=3", server.base);
    open(&page, &url, "statement").await;
    statement_matches_the_api(&page, &server, &sales, "limit=3").await;
    let first = first_sequence(&page).await;
    let cursor =
        api(&server, &format!("/v1/accounts/{sales}/statement?limit=3")).await["nextCursor"]
            .as_i64()
            .unwrap();
    page.find_element("a.next").await.unwrap().click().await.unwrap();
    wait_until(
        &page,
        &format!("document.querySelector('tr[data-sequence]').dataset.sequence !== '{first}'"),
    )
    .await;
    statement_matches_the_api(&page, &server, &sales, &format!("limit=3&cursor={cursor}")).await;
    screenshot(&page, "05-statement-page-2").await;
    page.find_element("a.prev").await.unwrap().click().await.unwrap();
    wait_until(
        &page,
        &format!("document.querySelector('tr[data-sequence]').dataset.sequence === '{first}'"),
    )
    .await;
    statement_matches_the_api(&page, &server, &sales, "limit=3").await;

    // Signing out ends the session: its row is gone, and pages lead to signing in again.
    page.find_element("form.logout button").await.unwrap().click().await.unwrap();
    wait_page(&page, "login").await;
    no_error(&page).await;
    let client = server.db.connect().await.unwrap();
    let left: i64 = client
        .query_one("SELECT count(*) FROM ui_sessions WHERE org_id = $1", &[&server.org.0])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    open(&page, &format!("{}/ui/trial-balance", server.base), "login").await;
    chromium.close().await;
}

#[tokio::test]
async fn refusals_are_shown_with_their_reason() {
    let server = ApiServer::start().await;
    let chromium = Chromium::launch().await;
    let page = chromium.page(&format!("{}/ui/login", server.base)).await;

    // A wrong key, and an app key: the form again, saying why.
    sign_in(&page, "hz_0123456789abcdef_not-a-key").await;
    wait_until(&page, "document.querySelector('[data-error-code]')").await;
    assert_eq!(error_code(&page).await.as_deref(), Some("unauthorized"));
    let alert = eval(&page, "document.querySelector('[role=alert]').textContent").await;
    assert!(alert.as_str().unwrap().contains("unknown or revoked"), "{alert}");
    screenshot(&page, "06-sign-in-refused").await;
    open(&page, &format!("{}/ui/login", server.base), "login").await;
    sign_in(&page, &server.app_key).await;
    wait_until(&page, "document.querySelector('[data-error-code]')").await;
    assert_eq!(error_code(&page).await.as_deref(), Some("org_key_required"));

    // Signed in: an unknown account and a malformed date are error pages with their codes.
    open(&page, &format!("{}/ui/login", server.base), "login").await;
    sign_in(&page, &server.org_key).await;
    wait_page(&page, "trial-balance").await;
    no_error(&page).await;
    let unknown = format!("{}/ui/accounts/{}", server.base, uuid::Uuid::now_v7());
    open(&page, &unknown, "error").await;
    assert_eq!(error_code(&page).await.as_deref(), Some("not_found"));
    let status = eval(&page, "document.querySelector('[data-status]').dataset.status").await;
    assert_eq!(status, "404");
    // Still signed in: the error page has the nav bar.
    let org = eval(&page, "document.querySelector('.org').textContent").await;
    assert!(!org.as_str().unwrap().is_empty());
    screenshot(&page, "07-unknown-account").await;
    open(&page, &format!("{}/ui/trial-balance?from=yesterday", server.base), "error").await;
    assert_eq!(error_code(&page).await.as_deref(), Some("invalid_query"));
    open(
        &page,
        &format!("{}/ui/trial-balance?from=2026-02-01&to=2026-01-01", server.base),
        "error",
    )
    .await;
    assert_eq!(error_code(&page).await.as_deref(), Some("invalid_period"));
    chromium.close().await;
}
