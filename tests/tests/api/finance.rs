//! Finance operations over real HTTP: raw transfers (multi-leg, pending, post, void,
//! reverse), batches, statements and the reports.

use hazina_tests::ApiServer;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Value, json};

async fn purse(server: &ApiServer, overdraft: Option<&str>) -> String {
    let mut body = json!({ "currencyCode": "KES" });
    if let Some(limit) = overdraft {
        body["overdraftLimit"] = json!(limit);
    }
    let (status, body) = server.post(&server.org_key, "/v1/purses", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["purseId"].as_str().unwrap().to_owned()
}

fn leg(account: &str, side: &str, amount: &str) -> Value {
    json!({ "accountId": account, "side": side, "value": { "currencyCode": "KES", "amount": amount } })
}

async fn actual(server: &ApiServer, account: &str) -> String {
    let (status, body) = server.get(&server.org_key, &format!("/v1/accounts/{account}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["balance"]["actual"].as_str().unwrap().to_owned()
}

async fn transfer(server: &ApiServer, body: &Value) -> (StatusCode, Value) {
    server.post(&server.org_key, "/v1/transfers", body).await
}

#[tokio::test]
async fn multi_leg_pending_post_void_and_reverse() {
    let server = ApiServer::start().await;
    let float = purse(&server, Some("10000")).await;
    let a = purse(&server, None).await;
    let b = purse(&server, None).await;
    // One debit, two credits.
    let (status, body) = transfer(
        &server,
        &json!({ "type": "post", "code": "funding", "legs": [
            leg(&float, "debit", "300"), leg(&a, "credit", "200"), leg(&b, "credit", "100")
        ] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (actual(&server, &a).await, actual(&server, &b).await),
        ("200.00".into(), "100.00".into())
    );

    // Reserve 50 from a, post 30 of it: 20 is released.
    let (status, pending) = transfer(
        &server,
        &json!({ "type": "pending", "code": "hold", "timeoutSeconds": 600,
                 "legs": [leg(&a, "debit", "50"), leg(&b, "credit", "50")] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{pending}");
    let pending_id = pending["transferId"].as_str().unwrap();
    let (_, account) = server.get(&server.org_key, &format!("/v1/accounts/{a}")).await;
    assert_eq!(account["balance"]["available"], "150.00");
    let (status, posted) = transfer(
        &server,
        &json!({ "type": "post_pending", "code": "capture", "pendingId": pending_id,
                 "amounts": [{ "currencyCode": "KES", "amount": "30" }, { "currencyCode": "KES", "amount": "30" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    assert_eq!(actual(&server, &a).await, "170.00");
    // Posting it again is refused with the ledger's reason.
    let (status, again) = transfer(
        &server,
        &json!({ "type": "void_pending", "code": "release", "pendingId": pending_id }),
    )
    .await;
    assert_eq!((status, &again["code"]), (StatusCode::CONFLICT, &json!("ledger_refused")));
    assert_eq!(again["reason"], "pending_transfer_already_posted");

    // Reverse the funding: everything goes back.
    let funding = body["transferId"].as_str().unwrap();
    let (status, reversal) =
        transfer(&server, &json!({ "type": "reverse", "code": "refund", "reversalOf": funding }))
            .await;
    // a no longer holds 200 (30 left with the capture): the reversal is refused, changing nothing.
    assert_eq!(status, StatusCode::CONFLICT, "{reversal}");
    assert_eq!(reversal["reason"], "exceeds_credits");
    assert_eq!(actual(&server, &a).await, "170.00");

    // A replay returns the original outcome, marked as replayed.
    let mut body = json!({ "transferId": uuid::Uuid::now_v7(), "type": "post", "code": "x",
                           "legs": [leg(&float, "debit", "1"), leg(&a, "credit", "1")] });
    let (first, original) = transfer(&server, &body).await;
    let (second, replayed) = transfer(&server, &body).await;
    assert_eq!((first, second), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(replayed["replayed"], true);
    assert_eq!(original["transfer"], replayed["transfer"]);
    body["legs"][0]["value"]["amount"] = json!("2");
    body["legs"][1]["value"]["amount"] = json!("2");
    let (status, different) = transfer(&server, &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{different}");
    assert!(
        different["reason"].as_str().unwrap().starts_with("exists_with_different"),
        "{different}"
    );
}

#[tokio::test]
async fn malformed_transfers_are_refused_before_the_ledger() {
    let server = ApiServer::start().await;
    let a = purse(&server, None).await;
    let b = purse(&server, None).await;
    for (body, code) in [
        (json!({ "type": "post", "code": "x", "legs": [] }), "invalid_transfer"),
        (
            json!({ "type": "post", "code": "", "legs": [leg(&a, "debit", "1"), leg(&b, "credit", "1")] }),
            "invalid_transfer",
        ),
        (json!({ "type": "void_pending", "code": "x" }), "invalid_transfer"),
        (
            json!({ "type": "pending", "code": "x", "timeoutSeconds": 0, "legs": [leg(&a, "debit", "1"), leg(&b, "credit", "1")] }),
            "invalid_transfer",
        ),
        (json!({ "type": "teleport", "code": "x" }), "invalid_body"),
        (
            json!({ "type": "post", "code": "x", "legs": [leg(&a, "sideways", "1")] }),
            "invalid_body",
        ),
        (
            json!({ "type": "post", "code": "x", "legs": [leg(&a, "debit", "0.001"), leg(&b, "credit", "0.001")] }),
            "invalid_amount",
        ),
    ] {
        let (status, answer) = transfer(&server, &body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{body} -> {answer}"
        );
    }
    // Only org keys move money directly.
    let (status, answer) = server
        .post(&server.app_key, "/v1/transfers", &json!({ "type": "post", "code": "x", "legs": [leg(&a, "debit", "1"), leg(&b, "credit", "1")] }))
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("org_key_required"))
    );
}

#[tokio::test]
async fn a_batch_applies_in_order_with_an_outcome_each() {
    let server = ApiServer::start().await;
    let float = purse(&server, Some("100")).await;
    let a = purse(&server, None).await;
    let transfers: Vec<Value> = (0..3)
        .map(|_| json!({ "type": "post", "code": "batch", "legs": [leg(&float, "debit", "40"), leg(&a, "credit", "40")] }))
        .collect();
    let (status, body) = server
        .post(&server.org_key, "/v1/transfers/batch", &json!({ "transfers": transfers }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results: Vec<&str> = body["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["accepted", "accepted", "rejected"], "the third goes past the overdraft");
    assert_eq!(actual(&server, &a).await, "80.00");
    for transfers in [json!([]), Value::Array(vec![transfers[0].clone(); 1_001])] {
        let (status, body) = server
            .post(&server.org_key, "/v1/transfers/batch", &json!({ "transfers": transfers }))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_batch"))
        );
    }
}

#[tokio::test]
async fn statements_and_reports_add_up() {
    let server = ApiServer::start().await;
    let float = purse(&server, Some("1000")).await;
    let a = purse(&server, None).await;
    for amount in ["10", "20", "30"] {
        let (status, body) = transfer(&server, &json!({ "type": "post", "code": "fund", "legs": [leg(&float, "debit", amount), leg(&a, "credit", amount)] })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // A statement in pages of two, with the running balance.
    let (status, page) =
        server.get(&server.org_key, &format!("/v1/accounts/{a}/statement?limit=2")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let balances: Vec<&str> = page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["balance"]["actual"].as_str().unwrap())
        .collect();
    assert_eq!(balances, ["10.00", "30.00"]);
    let cursor = page["nextCursor"].as_i64().unwrap();
    let (_, rest) = server
        .get(&server.org_key, &format!("/v1/accounts/{a}/statement?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(rest["lines"][0]["balance"]["actual"], "60.00");
    let (status, _) =
        server.get(&server.org_key, &format!("/v1/accounts/{a}/statement?limit=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let period = "from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z";
    let (status, report) =
        server.get(&server.org_key, &format!("/v1/reports/trial-balance?{period}")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let totals = &report["totals"][0];
    assert_eq!(totals["debits"]["amount"], totals["credits"]["amount"], "{report}");
    let csv = server
        .http
        .get(format!("{}/v1/reports/trial-balance?{period}&format=csv", server.base))
        .bearer_auth(&server.org_key)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert_eq!(csv.lines().count(), 1 + 2, "{csv}");

    let ledger = server
        .http
        .get(format!("{}/v1/reports/general-ledger?{period}", server.base))
        .bearer_auth(&server.org_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows: Vec<Vec<&str>> =
        ledger.lines().skip(1).map(|line| line.split(',').collect()).collect();
    assert_eq!(rows.len(), 6, "{ledger}");
    let sum = |column: usize| {
        rows.iter().filter_map(|row| row[column].parse::<Decimal>().ok()).sum::<Decimal>()
    };
    assert_eq!(sum(9), sum(10), "debits equal credits: {ledger}");
    assert_eq!(sum(9), Decimal::from(60));
    let (status, body) = server
        .get(
            &server.org_key,
            "/v1/reports/general-ledger?from=2100-01-01T00:00:00Z&to=2000-01-01T00:00:00Z",
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_period")));
    // An empty period is a question with an answer: the balances then, and no movement.
    let (status, body) = server
        .get(
            &server.org_key,
            "/v1/reports/trial-balance?from=2000-01-01T00:00:00Z&to=2000-01-01T00:00:00Z",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
