//! Reconciliation end to end over real HTTP: payouts through the M-Pesa simulator post to the
//! channel's clearing account with the provider's receipts; the test writes the org portal's
//! statement export for them (as Safaricom's portal writes it, with one line changed, one
//! left out and one the ledger never saw), imports it, runs the matching and resolves what it
//! raised — checking the ledger, the exceptions and the events at each step.

use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use hazina_ledger::store::Store;
use hazina_simulator::{momo, mpesa};
use hazina_tests::{ApiServer, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

const KE: &str = "+254712345678";
const PAYBILL: &str = "600000";

struct Env {
    server: ApiServer,
    mpesa: mpesa::Simulator,
    simulators: String,
}

async fn start() -> Env {
    let server = ApiServer::start().await;
    let (mpesa, momo) = (mpesa::Simulator::new(), momo::Simulator::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let simulators = format!("http://{}", listener.local_addr().unwrap());
    let router = hazina_simulator::router(&mpesa, &momo);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Env { server, mpesa, simulators }
}

impl Env {
    fn key(&self) -> &str {
        &self.server.org_key
    }

    async fn channel(&self) -> Value {
        let channel = json!({
            "provider": "mpesa", "channelNumber": PAYBILL, "currencyCode": "KES",
            "baseUrl": format!("{}/simulator/mpesa", self.simulators),
            "credentials": {
                "consumerKey": "key", "consumerSecret": "secret",
                "passkey": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
                "initiatorName": "testapi", "securityCredential": "encrypted",
            },
        });
        let (status, body) = self.server.post(self.key(), "/v1/payment-channels", &channel).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn purse(&self, name: &str, overdraft: Option<&str>) -> String {
        let mut body = json!({ "currencyCode": "KES", "name": name });
        if let Some(limit) = overdraft {
            body["overdraftLimit"] = json!(limit);
        }
        let (status, purse) = self.server.post(self.key(), "/v1/purses", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{purse}");
        purse["purseId"].as_str().unwrap().to_owned()
    }

    /// A purse holding `amount`, paid from a float purse with an overdraft.
    async fn funded_purse(&self, amount: &str) -> String {
        let float = self.purse("float", Some("1000000")).await;
        let target = self.purse("payouts", None).await;
        let (status, body) = self
            .server
            .post(
                self.key(),
                "/v1/payments",
                &json!({
                    "debitParty": { "purse": { "purseId": float } },
                    "creditParty": { "purse": { "purseId": target } },
                    "value": { "currencyCode": "KES", "amount": amount },
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        target
    }

    /// Pays `amount` from the purse to the customer's M-Pesa and waits for its success: the
    /// provider's receipt and the payment's id.
    async fn payout(&self, purse: &str, amount: &str) -> (String, String) {
        let payment = json!({
            "debitParty": { "purse": { "purseId": purse } },
            "creditParty": { "customer": {
                "customerNumber": { "number": KE, "provider": "cellular" },
                "channelNumber": PAYBILL,
            } },
            "value": { "currencyCode": "KES", "amount": amount },
        });
        let (status, body) = self.server.post(&self.server.app_key, "/v1/payments", &payment).await;
        assert!(status.is_success(), "{status} {body}");
        let id = body["transactionId"].as_str().unwrap().to_owned();
        let done = wait_for("the payout's success", Duration::from_secs(20), || async {
            let (_, payment) = self.server.get(self.key(), &format!("/v1/payments/{id}")).await;
            (payment["status"] == "success").then_some(payment)
        })
        .await
        .unwrap();
        (done["receipt"].as_str().unwrap().to_owned(), id)
    }

    async fn import(&self, channel: &str, file: &str) -> (StatusCode, Value) {
        let content = base64::engine::general_purpose::STANDARD.encode(file.as_bytes());
        let body = json!({
            "channelId": channel, "format": "mpesa_csv", "fileName": "statement.csv",
            "content": content,
        });
        self.server.post(self.key(), "/v1/statements/imports", &body).await
    }

    async fn run(&self, channel: &str) -> Value {
        let today = chrono::Utc::now().date_naive();
        let body = json!({
            "channelId": channel,
            "from": today.pred_opt().unwrap(),
            "to": today.succ_opt().unwrap(),
        });
        let (status, run) = self.server.post(self.key(), "/v1/reconciliation/runs", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{run}");
        run
    }

    async fn exceptions(&self, query: &str) -> Vec<Value> {
        let (status, page) =
            self.server.get(self.key(), &format!("/v1/reconciliation/exceptions?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["exceptions"].as_array().unwrap().clone()
    }

    async fn balance(&self, account: &str) -> String {
        let (status, body) = self.server.get(self.key(), &format!("/v1/accounts/{account}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["balance"]["actual"].as_str().unwrap_or_default().to_owned()
    }

    async fn told(&self, kind: &str) -> Vec<Value> {
        let path = format!("/v1/events?limit=500&types={kind}");
        let (status, page) = self.server.get(self.key(), &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["events"].as_array().unwrap().clone()
    }

    async fn invariants_hold(&self) {
        let violations = Store::new(self.server.db.pool()).verify().await.unwrap();
        assert!(violations.is_empty(), "{violations:?}");
    }
}

/// A statement export as the M-Pesa org portal writes it: a preamble, then the header and one
/// row per line, `(receipt, details, paid in, withdrawn, balance)`, completed now (EAT).
fn statement(rows: &[(&str, &str, &str, &str, &str)]) -> String {
    let now = (chrono::Utc::now() + chrono::Duration::hours(3)).format("%Y-%m-%d %H:%M:%S");
    let mut file = String::from(
        "Account Name,Hazina Test Paybill\r\nShort Code,600000\r\n\r\n\
         Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,\
         Withdrawn,Balance,Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,\
         A/C No.\r\n",
    );
    for (receipt, details, paid_in, withdrawn, balance) in rows {
        let _ = write!(
            file,
            "{receipt},{now},{now},{details},Completed,{paid_in},{withdrawn},{balance},true,\
             Business Payment,254712345678 - JANE DOE,,\r\n"
        );
    }
    file
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // One story: payouts, two imports, three runs, four resolutions.
async fn a_statement_is_imported_once_matched_and_its_exceptions_resolved_by_ledger_transfers() {
    let env = start().await;
    let channel = env.channel().await;
    let channel_id = channel["channelId"].as_str().unwrap();
    let clearing = channel["clearingAccountId"].as_str().unwrap();
    let purse = env.funded_purse("2000").await;
    let (r1, _) = env.payout(&purse, "300").await;
    let (r2, _) = env.payout(&purse, "200").await;
    let (r3, p3) = env.payout(&purse, "100").await;
    assert_eq!(env.balance(clearing).await, "-600.00");

    // The provider shows the first payout as recorded, the second for 250, not the third,
    // and money in that we never heard of.
    let file = statement(&[
        (&r1, "Business Payment to 254712345678", "", "-300.00", "9700.00"),
        (&r2, "Business Payment to 254712345678", "", "-250.00", "9450.00"),
        ("QX12UNKN0W", "Pay Bill from 254700000001", "500.00", "", "9950.00"),
    ]);
    let (status, import) = env.import(channel_id, &file).await;
    assert_eq!(status, StatusCode::CREATED, "{import}");
    assert_eq!((import["linesRead"].clone(), import["linesNew"].clone()), (json!(3), json!(3)));

    // The same file again is the same import; an overlapping one adds only what is new.
    let (status, again) = env.import(channel_id, &file).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["importId"], import["importId"]);
    assert_eq!(again["replayed"], true);
    let overlapping = statement(&[
        (&r1, "Business Payment to 254712345678", "", "-300.00", "9700.00"),
        ("QX13FEE000", "Bank charge", "", "-10.00", "9940.00"),
    ]);
    let (status, second) = env.import(channel_id, &overlapping).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!((second["linesNew"].clone(), second["linesKnown"].clone()), (json!(1), json!(1)));

    // The run: r1 matched, r2 matched with a difference of -50 (out 250, not 200), r3 not on
    // the statement, two lines unknown to the ledger.
    let run = env.run(channel_id).await;
    assert_eq!(run["matched"], 2, "{run}");
    assert_eq!(run["differences"], 1, "{run}");
    assert_eq!(run["unmatchedLines"], 2, "{run}");
    assert_eq!(run["unmatchedTransfers"], 1, "{run}");
    assert_eq!(run["exceptionsOpened"], 4, "{run}");
    let open = env.exceptions(&format!("status=open&channelId={channel_id}")).await;
    assert_eq!(open.len(), 4);
    let of = |kind: &str, pick: &dyn Fn(&Value) -> bool| -> Value {
        open.iter()
            .find(|e| e["kind"] == kind && pick(e))
            .unwrap_or_else(|| panic!("no {kind} in {open:?}"))
            .clone()
    };
    let difference = of("difference", &|e| e["lineReceipt"] == r2.as_str());
    assert_eq!(difference["difference"], "50.00", "{difference}");
    let missing = of("unmatched_ledger", &|_| true);
    assert_eq!(missing["amount"]["amount"], "100.00");
    let unknown = of("unmatched_statement", &|e| e["lineReceipt"] == "QX12UNKN0W");
    let fee = of("unmatched_statement", &|e| e["lineReceipt"] == "QX13FEE000");

    // Again: nothing is raised twice.
    let again = env.run(channel_id).await;
    assert_eq!((again["exceptionsOpened"].clone(), again["matched"].clone()), (json!(0), json!(0)));
    assert_eq!(env.exceptions("status=open").await.len(), 4);

    // Resolutions. The difference: the provider paid out 50 more, booked to an expense purse.
    let losses = env.purse("reconciliation losses", Some("1000000")).await;
    let resolve = |id: &Value, body: Value| {
        let path = format!("/v1/reconciliation/exceptions/{}/resolution", id.as_str().unwrap());
        let server = &env.server;
        async move { server.post(&server.org_key, &path, &body).await }
    };
    let (status, body) =
        resolve(&difference["exceptionId"], json!({"action": "adjust", "reason": "  "})).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("resolution_not_allowed")),
        "{body}"
    );
    let (status, body) = resolve(
        &difference["exceptionId"],
        json!({"action": "adjust", "reason": " ", "counterAccountId": losses}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(env.balance(clearing).await, "-600.00", "a refused resolution moves nothing");
    let (status, adjusted) = resolve(
        &difference["exceptionId"],
        json!({"action": "adjust", "reason": "Safaricom paid 250", "counterAccountId": losses}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{adjusted}");
    assert_eq!(adjusted["resolution"], "adjusted");
    assert_eq!(env.balance(clearing).await, "-650.00");
    assert_eq!(env.balance(&losses).await, "-50.00");
    let (status, twice) =
        resolve(&difference["exceptionId"], json!({"action": "write_off", "reason": "again"}))
            .await;
    assert_eq!(
        (status, twice["code"].clone()),
        (StatusCode::CONFLICT, json!("exception_resolved"))
    );

    // The unknown money in: matched by hand is impossible alone; booked to a suspense purse.
    let suspense = env.purse("suspense", None).await;
    let (status, body) = resolve(
        &unknown["exceptionId"],
        json!({"action": "adjust", "reason": "unidentified deposit", "counterAccountId": suspense}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(env.balance(&suspense).await, "500.00");
    // The charge: written off, nothing moves.
    let (status, body) = resolve(
        &fee["exceptionId"],
        json!({"action": "write_off", "reason": "charged to the bank account, booked there"}),
    )
    .await;
    assert_eq!((status, body["resolution"].clone()), (StatusCode::OK, json!("written_off")));
    // The payout the statement lacks: owned and noted, then written off.
    let path = format!(
        "/v1/reconciliation/exceptions/{}/assignment",
        missing["exceptionId"].as_str().unwrap()
    );
    let (status, body) = env
        .server
        .post(env.key(), &path, &json!({"owner": "amina", "note": "asked Safaricom"}))
        .await;
    assert_eq!((status, body["owner"].clone()), (StatusCode::OK, json!("amina")), "{body}");
    assert_eq!(missing["transferId"].as_str().map(str::len), Some(36));
    let (status, body) = resolve(
        &missing["exceptionId"],
        json!({"action": "write_off", "reason": format!("payout {p3} confirmed by the customer")}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(env.exceptions("status=open").await.is_empty());

    // A third run finds nothing new: every line and transfer is accounted for, including the
    // adjustments' own transfers on the clearing account.
    let third = env.run(channel_id).await;
    assert_eq!(third["exceptionsOpened"], 0, "{third}");
    assert_eq!(third["unmatchedTransfers"], 0, "{third}");

    let opened = env.told("reconciliation.exception_opened").await;
    let resolved = env.told("reconciliation.exception_resolved").await;
    assert_eq!((opened.len(), resolved.len()), (4, 4));
    assert_eq!(r3.len(), r1.len());
    env.invariants_hold().await;
}

#[tokio::test]
async fn a_statement_is_refused_whole_when_unreadable_or_another_account_s() {
    let env = start().await;
    let channel = env.channel().await;
    let channel_id = channel["channelId"].as_str().unwrap();
    let (status, body) =
        env.import(channel_id, "Receipt No.,Completion Time\r\nX,yesterday\r\n").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("statement_unreadable")),
        "{body}"
    );
    let (status, body) = env.import(&uuid::Uuid::now_v7().to_string(), &statement(&[])).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, list) = env.server.get(env.key(), "/v1/statements/imports").await;
    assert_eq!((status, list["imports"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
}

#[tokio::test]
async fn a_stuck_payout_is_listed_and_settled_by_hand_with_who_and_why() {
    let env = start().await;
    env.channel().await;
    env.mpesa.script(
        "254712345678",
        mpesa::Script::success().with_callback(mpesa::CallbackMode::Withheld).with_status_failing(),
    );
    let purse = env.funded_purse("1000").await;
    let payment = json!({
        "debitParty": { "purse": { "purseId": purse } },
        "creditParty": { "customer": {
            "customerNumber": { "number": KE, "provider": "cellular" },
            "channelNumber": PAYBILL,
        } },
        "value": { "currencyCode": "KES", "amount": "400" },
    });
    let (status, body) = env.server.post(&env.server.app_key, "/v1/payments", &payment).await;
    assert!(status.is_success(), "{body}");
    let id = body["transactionId"].as_str().unwrap().to_owned();
    let (status, page) = env.server.get(env.key(), "/v1/stuck-payments?olderThanSeconds=60").await;
    assert_eq!(
        (status, page["payments"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0)),
        "{page}"
    );
    let (status, page) = env.server.get(env.key(), "/v1/stuck-payments?olderThanSeconds=5").await;
    assert_eq!((status, page["code"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_query")));
    // Pretend an hour went by.
    let client = env.server.db.connect().await.unwrap();
    client
        .execute(
            "UPDATE provider_payments SET created_at = now() - interval '2 hours' WHERE id = $1",
            &[&uuid::Uuid::parse_str(&id).unwrap()],
        )
        .await
        .unwrap();
    let (status, page) = env.server.get(env.key(), "/v1/stuck-payments").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["payments"][0]["transactionId"], id.as_str(), "{page}");
    let path = format!("/v1/stuck-payments/{id}/settlement");
    let (status, body) =
        env.server.post(env.key(), &path, &json!({"outcome": "failed", "reason": " "})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = env
        .server
        .post(
            env.key(),
            &path,
            &json!({"outcome": "failed", "reason": "Safaricom confirms it never left"}),
        )
        .await;
    assert_eq!((status, body["status"].clone()), (StatusCode::OK, json!("failed")), "{body}");
    let last = body["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["source"], "operator", "{body}");
    assert!(last["description"].as_str().unwrap().contains("Safaricom confirms"), "{last}");
    let (_, purse_now) = env.server.get(env.key(), &format!("/v1/purses/{purse}")).await;
    assert_eq!(purse_now["balance"]["available"], "1000.00", "{purse_now}");
    let (status, body) = env
        .server
        .post(env.key(), &path, &json!({"outcome": "success", "reason": "changed my mind"}))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::CONFLICT, json!("payment_already_settled"))
    );
    env.invariants_hold().await;
}
