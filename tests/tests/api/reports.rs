//! The financial reports over real HTTP against real PostgreSQL: the balance sheet and the
//! income statement checked against figures the test computes from the transfers it posted,
//! and an account's statement as CSV and PDF read back and compared with its JSON pages.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hazina_ledger::rules::AccountKind;
use hazina_ledger::store::{NewAccount, Store};
use hazina_ledger::{AccountId, Currency};
use hazina_tests::ApiServer;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::common::{customer, overdraft_purse};

fn kes() -> Currency {
    Currency::from_code("KES").unwrap()
}

fn time(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn decimal(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// A ledger account of `kind` made through the store (the API makes only purses, wallets and
/// channels).
async fn account(server: &ApiServer, kind: AccountKind) -> String {
    let store = Store::new(server.db.pool());
    store.create_account(&NewAccount::new(server.org, kind, kes())).await.unwrap().id.0.to_string()
}

/// A leg as the test posted it: the account, whether a debit, the amount.
type Leg = (String, bool, Decimal);

/// The transfers a test posted and the ledger accepted: what the expected figures are computed
/// from, independently of the reports.
#[derive(Default)]
struct Posted {
    /// Per transfer: its effective time and its legs.
    transfers: Vec<(DateTime<Utc>, Vec<Leg>)>,
    kinds: BTreeMap<String, &'static str>,
}

impl Posted {
    /// Posts a transfer of `legs` (account, side, amount), effective at `at` (now when none),
    /// and records it once accepted.
    async fn post(
        &mut self,
        server: &ApiServer,
        code: &str,
        at: Option<&str>,
        legs: &[(&str, &str, &str)],
    ) -> String {
        let mut body = json!({
            "type": "post",
            "code": code,
            "legs": legs.iter().map(|(account, side, amount)| json!({
                "accountId": account, "side": side,
                "value": { "currencyCode": "KES", "amount": amount },
            })).collect::<Vec<_>>(),
        });
        if let Some(at) = at {
            body["effectiveAt"] = json!(at);
        }
        let (status, answer) = server.post(&server.org_key, "/v1/transfers", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let effective = time(answer["transfer"]["effectiveAt"].as_str().unwrap());
        self.transfers.push((
            effective,
            legs.iter()
                .map(|(account, side, amount)| {
                    ((*account).to_owned(), *side == "debit", decimal(amount))
                })
                .collect(),
        ));
        answer["transferId"].as_str().unwrap().to_owned()
    }

    /// Debits less credits of the account over the entries effective in `[from, to)`.
    fn net(&self, account: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Decimal {
        self.transfers
            .iter()
            .filter(|(at, _)| from <= *at && *at < to)
            .flat_map(|(_, legs)| legs.iter())
            .filter(|(leg, _, _)| leg == account)
            .map(|(_, debit, amount)| if *debit { *amount } else { -*amount })
            .sum()
    }

    /// Per kind, the sum of the net balances (debit less credit) of its accounts before `at`.
    fn by_kind(&self, at: DateTime<Utc>) -> BTreeMap<&'static str, Decimal> {
        let mut sums = BTreeMap::new();
        for (account, kind) in &self.kinds {
            *sums.entry(*kind).or_insert(Decimal::ZERO) +=
                self.net(account, DateTime::<Utc>::MIN_UTC, at);
        }
        sums
    }
}

/// The balance of `kind` in a section of the balance sheet, or none when it is not listed.
fn listed(section: &Value, kind: &str) -> Option<Decimal> {
    section
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["kind"] == kind)
        .map(|line| decimal(line["balance"].as_str().unwrap()))
}

fn amount(value: &Value) -> Decimal {
    decimal(value.as_str().unwrap_or_else(|| panic!("not an amount: {value}")))
}

#[tokio::test]
async fn the_balance_sheet_and_income_statement_follow_from_the_transfers() {
    let server = ApiServer::start().await;
    let (posted, revenue, expense) = books(&server).await;
    balance_sheets(&server, &posted).await;
    income_statements(&server, &posted, &revenue, &expense).await;
    refusals(&server).await;
}

/// Accounts of every kind and transfers between them at three effective times and now: what
/// was posted, and the revenue and expense accounts.
async fn books(server: &ApiServer) -> (Posted, String, String) {
    let mut posted = Posted::default();
    let channel = account(server, AccountKind::Channel).await;
    let external = account(server, AccountKind::External).await;
    let revenue = account(server, AccountKind::Revenue).await;
    let expense = account(server, AccountKind::Expense).await;
    let equity = account(server, AccountKind::Equity).await;
    let (purse, wallet) = purse_and_wallet(server).await;
    for (account, kind) in [
        (&channel, "channel"),
        (&external, "external"),
        (&revenue, "revenue"),
        (&expense, "expense"),
        (&equity, "equity"),
        (&purse, "purse"),
        (&wallet, "wallet"),
    ] {
        posted.kinds.insert(account.clone(), kind);
    }

    let (t1, t2, t3) = ("2026-01-10T09:00:00Z", "2026-02-10T09:00:00Z", "2026-03-10T09:00:00Z");
    posted
        .post(
            server,
            "capital",
            Some(t1),
            &[(&channel, "debit", "1000.00"), (&equity, "credit", "1000.00")],
        )
        .await;
    posted
        .post(
            server,
            "deposit",
            Some(t1),
            &[(&channel, "debit", "500.00"), (&wallet, "credit", "500.00")],
        )
        .await;
    let fee = posted
        .post(
            server,
            "fee",
            Some(t2),
            &[(&wallet, "debit", "25.50"), (&revenue, "credit", "25.50")],
        )
        .await;
    posted
        .post(
            server,
            "provider-cost",
            Some(t2),
            &[(&expense, "debit", "3.20"), (&channel, "credit", "3.20")],
        )
        .await;
    posted
        .post(
            server,
            "purse-funding",
            Some(t3),
            &[(&external, "debit", "200.00"), (&purse, "credit", "200.00")],
        )
        .await;
    posted
        .post(
            server,
            "fee",
            Some(t3),
            &[(&wallet, "debit", "10.00"), (&revenue, "credit", "10.00")],
        )
        .await;
    posted
        .post(server, "fee", None, &[(&wallet, "debit", "1.05"), (&revenue, "credit", "1.05")])
        .await;
    // A reversal (effective now) undoes the first fee; a reservation moves no posted amount.
    let (status, body) = server
        .post(
            &server.org_key,
            "/v1/transfers",
            &json!({ "type": "reverse", "code": "refund", "reversalOf": fee }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    posted.transfers.push((
        time(body["transfer"]["effectiveAt"].as_str().unwrap()),
        vec![(wallet.clone(), false, decimal("25.50")), (revenue.clone(), true, decimal("25.50"))],
    ));
    let (status, body) = server
        .post(&server.org_key, "/v1/transfers", &json!({ "type": "pending", "code": "hold", "legs": [
            { "accountId": wallet, "side": "debit", "value": { "currencyCode": "KES", "amount": "7.00" } },
            { "accountId": revenue, "side": "credit", "value": { "currencyCode": "KES", "amount": "7.00" } },
        ] }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    (posted, revenue, expense)
}

/// A purse and a customer's wallet, made through the API: their account ids.
async fn purse_and_wallet(server: &ApiServer) -> (String, String) {
    let purse = {
        let (status, body) =
            server.post(&server.org_key, "/v1/purses", &json!({ "currencyCode": "KES" })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["purseId"].as_str().unwrap().to_owned()
    };
    let wallet = {
        let id = customer(server, "+254711000111").await;
        let (status, body) = server
            .post(
                &server.app_key,
                &format!("/v1/customers/{id}/wallets"),
                &json!({ "walletId": "main", "currencyCode": "KES" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["accountId"].as_str().unwrap().to_owned()
    };
    (purse, wallet)
}

async fn balance_sheets(server: &ApiServer, posted: &Posted) {
    // Between t2 and t3, and now (far in the future: every entry).
    for at in ["2026-02-20T00:00:00Z", "2999-01-01T00:00:00Z"] {
        let (status, sheet) =
            server.get(&server.org_key, &format!("/v1/reports/balance-sheet?at={at}")).await;
        assert_eq!(status, StatusCode::OK, "{sheet}");
        let expected = posted.by_kind(time(at));
        let kes = &sheet["currencies"][0];
        assert_eq!(kes["currencyCode"], "KES", "{sheet}");
        assert_eq!(sheet["currencies"].as_array().unwrap().len(), 1, "{sheet}");
        // Assets are debit balances; liabilities and equity credit balances.
        assert_eq!(listed(&kes["assets"], "channel"), Some(expected["channel"]), "{sheet}");
        assert_eq!(listed(&kes["assets"], "external"), Some(expected["external"]), "{sheet}");
        assert_eq!(listed(&kes["liabilities"], "wallet"), Some(-expected["wallet"]), "{sheet}");
        assert_eq!(listed(&kes["equity"], "purse"), Some(-expected["purse"]), "{sheet}");
        assert_eq!(listed(&kes["equity"], "equity"), Some(-expected["equity"]), "{sheet}");
        let result = -(expected["revenue"] + expected["expense"]);
        assert_eq!(amount(&kes["currentResult"]), result, "{sheet}");
        let assets = expected["channel"] + expected["external"];
        let liabilities = -expected["wallet"];
        let own = -(expected["purse"] + expected["equity"]);
        assert_eq!(amount(&kes["totalAssets"]), assets, "{sheet}");
        assert_eq!(amount(&kes["totalLiabilities"]), liabilities, "{sheet}");
        assert_eq!(amount(&kes["totalEquity"]), own, "{sheet}");
        assert_eq!(assets, liabilities + own + result, "the books balance");
        assert_eq!(kes["balanced"], true, "{sheet}");
    }
    // Written out once, so that a slip in the helpers cannot hide a wrong figure: between t2
    // and t3 the channel holds 1,000 + 500 - 3.20, the wallet is owed 500 - 25.50.
    let (_, sheet) =
        server.get(&server.org_key, "/v1/reports/balance-sheet?at=2026-02-20T00:00:00Z").await;
    assert_eq!(sheet["currencies"][0]["totalAssets"], "1496.80", "{sheet}");
    assert_eq!(sheet["currencies"][0]["totalLiabilities"], "474.50", "{sheet}");
    assert_eq!(sheet["currencies"][0]["currentResult"], "22.30", "{sheet}");
}

async fn income_statements(server: &ApiServer, posted: &Posted, revenue: &str, expense: &str) {
    // Over [t2, just after t3): two fees and a cost.
    let (from, to) = ("2026-02-01T00:00:00Z", "2026-03-11T00:00:00Z");
    let (status, income) = server
        .get(&server.org_key, &format!("/v1/reports/income-statement?from={from}&to={to}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{income}");
    let earned = -posted.net(revenue, time(from), time(to));
    let spent = posted.net(expense, time(from), time(to));
    assert_eq!((earned, spent), (decimal("35.50"), decimal("3.20")));
    let totals = &income["totals"][0];
    assert_eq!(amount(&totals["revenue"]), earned, "{income}");
    assert_eq!(amount(&totals["expenses"]), spent, "{income}");
    assert_eq!(amount(&totals["netResult"]), earned - spent, "{income}");
    let lines = income["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{income}");
    for line in lines {
        let expected = if line["accountId"] == revenue { earned } else { spent };
        assert_eq!(amount(&line["amount"]), expected, "{income}");
    }
    // The whole history: the reversal and the last fee count, the reservation does not.
    let (_, income) = server
        .get(
            &server.org_key,
            "/v1/reports/income-statement?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z",
        )
        .await;
    assert_eq!(income["totals"][0]["revenue"], "11.05", "{income}");
    assert_eq!(income["totals"][0]["netResult"], "7.85", "{income}");

    // The trial balance agrees with the same figures (it shares the sums at two times).
    let (status, trial) = server
        .get(&server.org_key, &format!("/v1/reports/trial-balance?from={from}&to={to}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{trial}");
    for line in trial["lines"].as_array().unwrap() {
        let account = line["account"].as_str().unwrap();
        let debit_normal = line["normal_side"] == "debit";
        let orient = |net: Decimal| if debit_normal { net } else { -net };
        assert_eq!(
            amount(&line["opening"]["amount"]),
            orient(posted.net(account, DateTime::<Utc>::MIN_UTC, time(from))),
            "{line}"
        );
        assert_eq!(
            amount(&line["closing"]["amount"]),
            orient(posted.net(account, DateTime::<Utc>::MIN_UTC, time(to))),
            "{line}"
        );
    }
}

async fn refusals(server: &ApiServer) {
    // Bad input changes nothing and says why.
    for (path, status, code) in [
        (
            "/v1/reports/income-statement?from=2026-03-01T00:00:00Z&to=2026-02-01T00:00:00Z",
            StatusCode::BAD_REQUEST,
            "invalid_period",
        ),
        (
            "/v1/reports/income-statement?from=2026-03-01T00:00:00Z",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        ("/v1/reports/balance-sheet?at=yesterday", StatusCode::BAD_REQUEST, "invalid_query"),
        (
            "/v1/reports/balance-sheet?when=2026-01-01T00:00:00Z",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
    ] {
        let (answer, body) = server.get(&server.org_key, path).await;
        assert_eq!((answer, body["code"].as_str()), (status, Some(code)), "{path}: {body}");
    }
    for path in [
        "/v1/reports/balance-sheet",
        "/v1/reports/income-statement?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z",
    ] {
        let (status, body) = server.get(&server.app_key, path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("org_key_required")),
            "{path}: {body}"
        );
    }
    // Another org's balance sheet holds none of this org's money.
    let (other_key, _) = crate::common::other_org(server).await;
    let (status, sheet) = server.get(&other_key, "/v1/reports/balance-sheet").await;
    assert_eq!((status, sheet["currencies"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
}

/// The statement's JSON lines, every page of them.
async fn json_statement(server: &ApiServer, account: &str, query: &str) -> Vec<Value> {
    let mut lines = Vec::new();
    let mut cursor = None::<i64>;
    loop {
        let mut path = format!("/v1/accounts/{account}/statement?limit=37{query}");
        if let Some(cursor) = cursor {
            path = format!("{path}&cursor={cursor}");
        }
        let (status, page) = server.get(&server.org_key, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        lines.extend(page["lines"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_i64() {
            Some(next) => cursor = Some(next),
            None => return lines,
        }
    }
}

/// `GET` with an `Accept` header: the status, the content type and the body.
async fn download(server: &ApiServer, path: &str, accept: &str) -> (StatusCode, String, Vec<u8>) {
    let response = server
        .http
        .get(format!("{}{path}", server.base))
        .bearer_auth(&server.org_key)
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.bytes().await.unwrap().to_vec())
}

fn parse_csv(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            headers.iter().map(str::to_owned).zip(record.iter().map(str::to_owned)).collect()
        })
        .collect()
}

/// The CSV rows say what the JSON lines say.
fn assert_same(rows: &[BTreeMap<String, String>], lines: &[Value]) {
    assert_eq!(rows.len(), lines.len());
    for (row, line) in rows.iter().zip(lines) {
        assert_eq!(row["sequence"], line["sequence"].to_string(), "{row:?} {line}");
        assert_eq!(row["transfer_id"], line["transferId"].as_str().unwrap());
        assert_eq!(row["kind"], line["kind"].as_str().unwrap());
        assert_eq!(row["code"], line["code"].as_str().unwrap());
        assert_eq!(row["side"], line["side"].as_str().unwrap());
        assert_eq!(row["currency"], "KES");
        let (posted, other) =
            if row["side"] == "debit" { ("debit", "credit") } else { ("credit", "debit") };
        assert_eq!(row[posted], line["amount"].as_str().unwrap(), "{row:?} {line}");
        assert_eq!(row[other], "");
        assert_eq!(row["pending_amount"], line["pendingAmount"].as_str().unwrap());
        assert_eq!(row["balance"], line["balance"]["actual"].as_str().unwrap());
        assert_eq!(row["available_balance"], line["balance"]["available"].as_str().unwrap());
        assert_eq!(row["pending_balance"], line["balance"]["pending"].as_str().unwrap());
        assert_eq!(time(&row["recorded_at"]), time(line["recordedAt"].as_str().unwrap()));
        assert_eq!(time(&row["effective_at"]), time(line["effectiveAt"].as_str().unwrap()));
    }
}

#[tokio::test]
async fn a_statement_as_csv_and_pdf_says_what_its_json_pages_say() {
    let server = ApiServer::start().await;
    let float = overdraft_purse(&server, "1000000").await;
    let (status, body) = server
        .post(&server.org_key, "/v1/purses", &json!({ "currencyCode": "KES", "name": "Till" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let till = body["purseId"].as_str().unwrap().to_owned();
    // 150 transfers, enough for three PDF pages: mostly into the till, every fifth out of it.
    let mut expected_balance = Decimal::ZERO;
    let mut amounts = Vec::new();
    let transfers: Vec<Value> = (1..=150_u32)
        .map(|n| {
            let amount = Decimal::new(i64::from(n) * 1_037 % 100_000 + 1, 2);
            let out = n % 5 == 0;
            expected_balance += if out { -amount } else { amount };
            amounts.push(amount);
            let (debit, credit) = if out { (&till, &float) } else { (&float, &till) };
            json!({ "type": "post", "code": format!("sale-{n}"), "legs": [
                { "accountId": debit, "side": "debit", "value": { "currencyCode": "KES", "amount": amount.to_string() } },
                { "accountId": credit, "side": "credit", "value": { "currencyCode": "KES", "amount": amount.to_string() } },
            ] })
        })
        .collect();
    let (status, body) = server
        .post(&server.org_key, "/v1/transfers/batch", &json!({ "transfers": transfers }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["outcomes"].as_array().unwrap().iter().all(|o| o["result"] == "accepted"),
        "{body}"
    );
    // A reservation: a line with a pending amount and no posted one.
    let (status, body) = server
        .post(&server.org_key, "/v1/transfers", &json!({ "type": "pending", "code": "hold", "legs": [
            { "accountId": till, "side": "debit", "value": { "currencyCode": "KES", "amount": "1.00" } },
            { "accountId": float, "side": "credit", "value": { "currencyCode": "KES", "amount": "1.00" } },
        ] }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let lines = json_statement(&server, &till, "").await;
    assert_eq!(lines.len(), 151);
    let path = format!("/v1/accounts/{till}/statement");
    let (status, kind, csv_by_param) =
        download(&server, &format!("{path}?format=csv"), "application/json").await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "text/csv; charset=utf-8"));
    let (status, _, csv_by_accept) = download(&server, &path, "text/csv").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(csv_by_param, csv_by_accept);
    let rows = parse_csv(&csv_by_param);
    assert_same(&rows, &lines);
    // The running balance, computed from the amounts the test sent.
    let mut running = Decimal::ZERO;
    for (row, amount) in rows.iter().zip(&amounts) {
        running += if row["side"] == "credit" { *amount } else { -*amount };
        assert_eq!(decimal(&row["balance"]), running, "{row:?}");
    }
    assert_eq!(running, expected_balance);
    assert_eq!(rows[150]["pending_amount"], "1.00");

    // A period by recording time: the same lines as the JSON pages of that period.
    let (from, to) = (
        lines[0]["recordedAt"].as_str().unwrap().to_owned(),
        lines[150]["recordedAt"].as_str().unwrap().to_owned(),
    );
    let query = format!("&from={}&to={}", from.replace('+', "%2B"), to.replace('+', "%2B"));
    let period_lines = json_statement(&server, &till, &query).await;
    assert_eq!(period_lines.len(), 150, "the reservation was recorded at `to`, so is left out");
    let (_, _, period_csv) = download(&server, &format!("{path}?format=csv{query}"), "*/*").await;
    assert_same(&parse_csv(&period_csv), &period_lines);
    // After a cursor: the rest.
    let (_, _, rest) = download(&server, &format!("{path}?format=csv&cursor=140"), "*/*").await;
    assert_same(&parse_csv(&rest), &lines[140..]);

    // The PDF: a well-formed document whose text holds the figures.
    let (status, kind, pdf) = download(&server, &path, "application/pdf").await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "application/pdf"));
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let (_, _, by_param) = download(&server, &format!("{path}?format=pdf"), "*/*").await;
    assert!(by_param.starts_with(b"%PDF-"));
    let document = lopdf::Document::load_mem(&pdf).unwrap();
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    assert_eq!(pages.len(), 3, "66 rows on the first page, 72 on the next, 12 on the last");
    let text = document.extract_text(&pages).unwrap();
    assert!(text.contains(&format!("Statement of account {till}")), "{text}");
    assert!(text.contains("Opening balance: 0.00"), "{text}");
    assert!(text.contains(&format!("Closing balance: {expected_balance}")), "{text}");
    assert!(text.contains("Page 3 of 3"), "{text}");
    for (row, amount) in rows.iter().zip(&amounts) {
        assert!(text.contains(&row["transfer_id"]), "{} is not in the PDF", row["transfer_id"]);
        assert!(text.contains(&amount.to_string()), "{amount} is not in the PDF");
        assert!(text.contains(&row["balance"]), "{} is not in the PDF", row["balance"]);
    }
    // The reservation moved no posted amount: it is not a row of the PDF.
    assert!(!text.contains(&rows[150]["transfer_id"]), "{text}");

    // Bad input: an unknown format, a bad limit; another org's account is not found.
    for (query, status, code) in [
        ("?format=xml", StatusCode::BAD_REQUEST, "invalid_query"),
        ("?format=csv&limit=0", StatusCode::BAD_REQUEST, "invalid_limit"),
    ] {
        let (answer, body) = server.get(&server.org_key, &format!("{path}{query}")).await;
        assert_eq!((answer, body["code"].as_str()), (status, Some(code)), "{query}: {body}");
    }
    let (other_key, _) = crate::common::other_org(&server).await;
    for format in ["csv", "pdf"] {
        let (status, body) = server.get(&other_key, &format!("{path}?format={format}")).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    }
}

#[tokio::test]
async fn a_pdf_statement_longer_than_it_holds_is_refused_and_csv_is_not() {
    let server = ApiServer::start().await;
    let store = Store::new(server.db.pool());
    let external = store
        .create_account(&NewAccount::new(server.org, AccountKind::External, kes()))
        .await
        .unwrap();
    let till = overdraft_purse(&server, "0").await;
    // 20,001 entries on the till, posted through the store in batches of 1,000.
    let requests: Vec<_> = (0..20_001)
        .map(|n| hazina_ledger::rules::TransferRequest {
            id: hazina_ledger::TransferId::generate(),
            id_is_new: true,
            org: server.org,
            action: hazina_ledger::rules::Action::Post {
                postings: vec![
                    hazina_ledger::rules::Posting {
                        account: external.id,
                        side: hazina_ledger::rules::Side::Debit,
                        amount: hazina_ledger::Money::from_minor(kes(), 100 + n % 7),
                    },
                    hazina_ledger::rules::Posting {
                        account: AccountId(till.parse().unwrap()),
                        side: hazina_ledger::rules::Side::Credit,
                        amount: hazina_ledger::Money::from_minor(kes(), 100 + n % 7),
                    },
                ],
            },
            code: "bulk".into(),
            effective_at: None,
            context: hazina_ledger::rules::Context::default(),
        })
        .collect();
    for batch in requests.chunks(1_000) {
        let outcomes = store.post(batch).await.unwrap();
        assert!(
            outcomes.iter().all(|o| matches!(o, hazina_ledger::rules::Outcome::Accepted { .. }))
        );
    }
    let path = format!("/v1/accounts/{till}/statement");
    let (status, body) = server.get(&server.org_key, &format!("{path}?format=pdf")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("report_too_large")),
        "{body}"
    );
    // The same period as CSV: every line, the last balance the sum the test posted.
    let (status, _, csv) = download(&server, &format!("{path}?format=csv"), "*/*").await;
    assert_eq!(status, StatusCode::OK);
    let rows = parse_csv(&csv);
    assert_eq!(rows.len(), 20_001);
    let total: i64 = (0..20_001).map(|n| 100 + n % 7).sum();
    assert_eq!(
        rows[20_000]["balance"],
        hazina_ledger::Money::from_minor(kes(), total).amount().to_string()
    );
    // Narrowed by a cursor, the PDF is made.
    let (status, _, pdf) =
        download(&server, &format!("{path}?format=pdf&cursor=19000"), "*/*").await;
    assert_eq!(status, StatusCode::OK);
    assert!(pdf.starts_with(b"%PDF-"));
}
