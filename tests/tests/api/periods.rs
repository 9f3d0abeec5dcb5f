//! Period close over real HTTP: closing the books, the closes listed with their chain heads,
//! back-dated transfers refused, adjustments in the open period, and the reports that cover a
//! closed period naming its close.

use chrono::{TimeDelta, Utc};
use hazina_tests::ApiServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn purse(server: &ApiServer) -> String {
    let body = json!({ "currencyCode": "KES", "overdraftLimit": "100000" });
    let (status, body) = server.post(&server.org_key, "/v1/purses", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["purseId"].as_str().unwrap().to_owned()
}

fn move_money(from: &str, to: &str, effective_at: Option<String>) -> Value {
    let mut body = json!({ "type": "post", "code": "adjustment", "legs": [
        { "accountId": from, "side": "debit", "value": { "currencyCode": "KES", "amount": "10" } },
        { "accountId": to, "side": "credit", "value": { "currencyCode": "KES", "amount": "10" } }
    ] });
    if let Some(at) = effective_at {
        body["effectiveAt"] = json!(at);
    }
    body
}

#[tokio::test]
async fn closing_a_period_refuses_back_dated_transfers_and_is_named_by_its_reports() {
    let server = ApiServer::start().await;
    let (a, b) = (purse(&server).await, purse(&server).await);
    let through = (Utc::now() - TimeDelta::days(1)).to_rfc3339();
    let before = (Utc::now() - TimeDelta::days(2)).to_rfc3339();
    let (status, body) = server
        .post(&server.org_key, "/v1/transfers", &move_money(&a, &b, Some(before.clone())))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Only an org key closes, only a past time, and only forward.
    let close = json!({ "through": through, "note": "month end" });
    let (status, body) = server.post(&server.app_key, "/v1/periods/close", &close).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("org_key_required")));
    let future = json!({ "through": (Utc::now() + TimeDelta::hours(1)).to_rfc3339() });
    let (status, body) = server.post(&server.org_key, "/v1/periods/close", &future).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("period_in_future")),
        "{body}"
    );
    let long_note = json!({ "through": through, "note": "x".repeat(501) });
    let (status, body) = server.post(&server.org_key, "/v1/periods/close", &long_note).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_note"))
    );

    let (status, closed) = server.post(&server.org_key, "/v1/periods/close", &close).await;
    assert_eq!(status, StatusCode::CREATED, "{closed}");
    assert_eq!(closed["chainSeq"], 1, "{closed}");
    assert_eq!(closed["chainHash"].as_str().map(str::len), Some(64), "{closed}");
    assert_eq!(closed["note"], "month end");
    assert!(closed["closedBy"].as_str().is_some_and(|by| !by.is_empty()), "{closed}");
    let (status, body) = server.post(&server.org_key, "/v1/periods/close", &close).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("period_already_closed")),
        "{body}"
    );
    let (status, list) = server.get(&server.org_key, "/v1/periods").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list, json!([closed]));

    // Dated in the closed period: refused. The same in the open period, naming the closed one:
    // accepted.
    let (status, body) =
        server.post(&server.org_key, "/v1/transfers", &move_money(&a, &b, Some(before))).await;
    assert_eq!(
        (status, body["code"].as_str(), body["reason"].as_str()),
        (StatusCode::CONFLICT, Some("ledger_refused"), Some("period_closed")),
        "{body}"
    );
    let mut adjustment = move_money(&a, &b, None);
    adjustment["adjustsPeriod"] = json!(through);
    let (status, body) = server.post(&server.org_key, "/v1/transfers", &adjustment).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A report ending within the closed period names the close; one past it does not.
    let covered =
        format!("/v1/reports/trial-balance?from=2000-01-01T00:00:00Z&to={}", urlencode(&through));
    let (status, report) = server.get(&server.org_key, &covered).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["closedPeriod"],
        json!({ "through": closed["through"], "chainSeq": 1, "chainHash": closed["chainHash"] })
    );
    let (status, report) = server
        .get(
            &server.org_key,
            "/v1/reports/trial-balance?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(report.get("closedPeriod").is_none(), "{report}");
    let ledger = server
        .http
        .get(format!(
            "{}/v1/reports/general-ledger?from=2000-01-01T00:00:00Z&to={}",
            server.base,
            urlencode(&through)
        ))
        .bearer_auth(&server.org_key)
        .send()
        .await
        .unwrap();
    let header: Value =
        serde_json::from_str(ledger.headers()["hazina-closed-period"].to_str().unwrap()).unwrap();
    assert_eq!(header["chainSeq"], 1);
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}
