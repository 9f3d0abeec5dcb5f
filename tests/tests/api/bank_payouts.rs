//! Bank payouts and collections through ISO 20022 file exchange, end to end: the API and the
//! server's bank worker on one side, the simulated bank (`hazina_simulator::bank`) on the
//! other, real files in the server's exchange directory between them. A payout is reserved,
//! cut into a pain.001 file, answered by a pain.002 and booked by a camt.054; every test checks
//! the balances, the payment's status and the ledger's invariants.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hazina_ledger::store::Store;
use hazina_providers::iso20022::pain001;
use hazina_providers::money::{Currency, Money};
use hazina_simulator::bank::{Bank, Booking, Rules};
use hazina_tests::{ApiServer, wait_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The org's account at the bank (a valid IBAN) and the creditors' accounts.
const OURS: &str = "NL91ABNA0417164300";
const CREDITOR: &str = "DE89370400440532013000";
const REFUSED_CREDITOR: &str = "GB29NWBK60161331926819";
const CUSTOMER: &str = "+254712345678";

struct Env {
    server: ApiServer,
    bank: Bank,
    channel: String,
}

async fn start() -> Env {
    let server = ApiServer::start().await;
    let bank = Bank::new(&server.bank_exchange);
    let (status, body) =
        server.post(&server.org_key, "/v1/payment-channels", &bank_channel(OURS)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["bank"]["bic"], "ABNANL2A", "{body}");
    let channel = body["channelId"].as_str().unwrap().to_owned();
    Env { server, bank, channel }
}

/// A bank channel whose only cut-off is twelve hours away, so that only the tests that move
/// its schedule see it cut a file by itself.
fn bank_channel(account: &str) -> Value {
    let later = chrono::Utc::now() + chrono::Duration::hours(12);
    json!({
        "provider": "bank", "channelNumber": account, "currencyCode": "EUR",
        "name": "Main EUR account",
        "bank": {
            "debtorName": "Hazina Test Ltd", "bic": "ABNANL2A",
            "cutOffs": [later.format("%H:%M").to_string()], "utcOffset": "+00:00",
        },
    })
}

fn eur(amount: &str) -> Money {
    Money::parse(Currency::from_code("EUR").unwrap(), amount).unwrap()
}

fn to_bank(account: &str, name: &str) -> Value {
    json!({ "customer": {
        "customerNumber": { "number": CUSTOMER, "provider": "cellular" },
        "channelNumber": OURS,
        "bankAccount": { "accountNumber": account, "name": name },
    } })
}

impl Env {
    fn dir(&self) -> PathBuf {
        self.server.bank_exchange.join(&self.channel)
    }

    /// A purse holding `amount` EUR, paid from a float purse with an overdraft.
    async fn funded_purse(&self, amount: &str) -> String {
        let key = &self.server.org_key;
        let (_, float) = self
            .server
            .post(
                key,
                "/v1/purses",
                &json!({ "currencyCode": "EUR", "name": "float", "overdraftLimit": "1000000" }),
            )
            .await;
        let (_, target) = self
            .server
            .post(key, "/v1/purses", &json!({ "currencyCode": "EUR", "name": "payouts" }))
            .await;
        let target = target["purseId"].as_str().unwrap().to_owned();
        let (status, body) = self
            .server
            .post(
                key,
                "/v1/payments",
                &json!({
                    "debitParty": { "purse": { "purseId": float["purseId"] } },
                    "creditParty": { "purse": { "purseId": target } },
                    "value": { "currencyCode": "EUR", "amount": amount },
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        target
    }

    async fn pay(&self, purse: &str, credit: Value, amount: &str) -> (StatusCode, Value) {
        let payment = json!({
            "debitParty": { "purse": { "purseId": purse } }, "creditParty": credit,
            "value": { "currencyCode": "EUR", "amount": amount },
            "narration": "Supplier invoice 1043 & co",
        });
        self.server.post(&self.server.app_key, "/v1/payments", &payment).await
    }

    /// Pays `amount` EUR from the purse to `account`: queued for the next file.
    async fn payout(&self, purse: &str, account: &str, amount: &str) -> String {
        let (status, body) = self.pay(purse, to_bank(account, "Jane Wanjiru"), amount).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["status"], "queued", "{body}");
        body["transactionId"].as_str().unwrap().to_owned()
    }

    async fn payment(&self, id: &str) -> Value {
        let (status, body) =
            self.server.get(&self.server.app_key, &format!("/v1/payments/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Waits until the payment's status is `status` (with a deadline).
    async fn until(&self, id: &str, status: &str) -> Value {
        let waited = wait_for(status, Duration::from_secs(20), || async {
            let payment = self.payment(id).await;
            (payment["status"] == status).then_some(payment)
        })
        .await;
        match waited {
            Ok(payment) => payment,
            Err(error) => panic!("{error}: {}", self.payment(id).await),
        }
    }

    /// Cuts a file now.
    async fn cut(&self) -> Value {
        let path = format!("/v1/payment-channels/{}/bank-files", self.channel);
        let (status, body) = self.server.post(&self.server.org_key, &path, &json!(null)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn files(&self) -> Vec<Value> {
        let path = format!("/v1/payment-channels/{}/bank-files", self.channel);
        let (status, body) = self.server.get(&self.server.org_key, &path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["files"].as_array().unwrap().clone()
    }

    /// The bank takes the channel's files and answers them.
    fn bank_answers(&self) -> Vec<hazina_simulator::bank::Answered> {
        self.bank.process_channel(&self.dir()).unwrap()
    }

    /// Waits until the server has read every file in `in/` (moved aside once recorded).
    async fn inbound_read(&self) {
        let inbound = self.dir().join("in");
        let waited = wait_for("the inbound files to be read", Duration::from_secs(20), || {
            let inbound = inbound.clone();
            async move { files_in(&inbound).is_empty().then_some(()) }
        })
        .await;
        waited.unwrap();
    }

    /// A purse's `(actual, available)` balance.
    async fn purse_balance(&self, purse: &str) -> (String, String) {
        let (_, body) = self.server.get(&self.server.org_key, &format!("/v1/purses/{purse}")).await;
        let balance = &body["balance"];
        let text = |name: &str| balance[name].as_str().unwrap().to_owned();
        (text("actual"), text("available"))
    }

    /// The recorded inbound files: `(status, applied, exceptions)`, oldest first.
    async fn inbound_records(&self) -> Vec<(String, i32, Value)> {
        let client = self.server.db.connect().await.unwrap();
        let rows = client
            .query(
                "SELECT status, applied, exceptions FROM bank_inbound_files
                 ORDER BY received_at, id",
                &[],
            )
            .await
            .unwrap();
        rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect()
    }

    async fn invariants_hold(&self) {
        let violations = Store::new(self.server.db.pool()).verify().await.unwrap();
        assert!(violations.is_empty(), "{violations:?}");
    }
}

/// The names of the files directly in `dir` (none when it does not exist).
fn files_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn pair(actual: &str, available: &str) -> (String, String) {
    (actual.to_owned(), available.to_owned())
}

fn statuses(payment: &Value) -> Vec<&str> {
    payment["history"].as_array().unwrap().iter().map(|c| c["status"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_payout_accepted_and_booked_is_posted_once_even_when_the_files_come_again() {
    let env = start().await;
    let purse = env.funded_purse("1000").await;
    let id = env.payout(&purse, "de89 3704 0044 0532 0130 00", "300").await;
    // Reserved, not yet in a file: nothing is on disk.
    assert_eq!(env.purse_balance(&purse).await, pair("1000.00", "700.00"));
    assert!(files_in(&env.dir().join("out")).is_empty());
    let file = env.cut().await;
    assert_eq!(file["paymentCount"], 1, "{file}");
    assert_eq!(file["controlSum"], json!({ "currencyCode": "EUR", "amount": "300.00" }));
    assert_eq!(file["status"], "written");
    assert_eq!(file["reason"], "on_demand");
    // The file on disk is the one recorded: its message id, our end-to-end id, the creditor.
    let name = file["fileName"].as_str().unwrap();
    assert_eq!(files_in(&env.dir().join("out")), [name]);
    let xml = std::fs::read_to_string(env.dir().join("out").join(name)).unwrap();
    let initiation = pain001::parse(&xml).unwrap();
    assert_eq!(initiation.message_id, file["messageId"].as_str().unwrap());
    assert_eq!(initiation.control_sum.unwrap().to_string(), "300.00");
    let payment = &initiation.payments[0];
    assert_eq!(payment.debtor_iban.as_deref(), Some(OURS));
    let transfer = &payment.transfers[0];
    assert_eq!(transfer.end_to_end_id, id.replace('-', ""));
    assert_eq!(transfer.creditor_iban.as_deref(), Some(CREDITOR));
    assert_eq!(transfer.creditor_name.as_deref(), Some("Jane Wanjiru"));
    assert_eq!(transfer.amount, eur("300"));
    let pending = env.payment(&id).await;
    assert_eq!(pending["status"], "pending_confirmation", "{pending}");
    assert_eq!(pending["providerReference"], file["messageId"]);
    // A second cut finds nothing: the payout is in one file only.
    let path = format!("/v1/payment-channels/{}/bank-files", env.channel);
    let (status, body) = env.server.post(&env.server.org_key, &path, &json!(null)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "no_queued_payouts");

    let answered = env.bank_answers();
    assert_eq!(answered.len(), 1);
    let done = env.until(&id, "success").await;
    assert_eq!(statuses(&done), ["queued", "pending_confirmation", "success"], "{done}");
    assert!(done["receipt"].as_str().is_some_and(|r| r.starts_with("SIMB")), "{done}");
    env.inbound_read().await;
    assert_eq!(env.purse_balance(&purse).await, pair("700.00", "700.00"));
    let files = env.files().await;
    assert_eq!(files[0]["bankStatus"], "ACCP", "{files:?}");
    assert_eq!(
        (files[0]["paymentsPosted"].as_i64(), files[0]["paymentsPending"].as_i64()),
        (Some(1), Some(0))
    );

    // The bank (or the agent) delivers both files again, under other names.
    let processed = env.dir().join("in").join("processed");
    let read = files_in(&processed);
    assert_eq!(read.len(), 2, "{read:?}");
    for name in &read {
        std::fs::copy(processed.join(name), env.dir().join("in").join(format!("again-{name}")))
            .unwrap();
    }
    env.inbound_read().await;
    assert_eq!(files_in(&processed).len(), 4);
    // Recorded once each by digest: nothing applied again, nothing moved.
    assert_eq!(env.inbound_records().await.len(), 2);
    assert_eq!(env.purse_balance(&purse).await, pair("700.00", "700.00"));
    assert_eq!(statuses(&env.payment(&id).await), ["queued", "pending_confirmation", "success"]);
    env.invariants_hold().await;
}

#[tokio::test]
async fn a_rejected_payout_is_voided_and_its_reserve_released_with_the_reason() {
    let env = start().await;
    env.bank.set_rules(Rules { reject_account_prefix: Some("GB".to_owned()), ..Rules::default() });
    let purse = env.funded_purse("1000").await;
    let refused = env.payout(&purse, REFUSED_CREDITOR, "250").await;
    let paid = env.payout(&purse, CREDITOR, "100").await;
    assert_eq!(env.purse_balance(&purse).await, pair("1000.00", "650.00"));
    let file = env.cut().await;
    assert_eq!(file["paymentCount"], 2);
    assert_eq!(file["controlSum"]["amount"], "350.00");
    let answered = env.bank_answers();
    assert_eq!(answered[0].rejected.len(), 1);
    let failed = env.until(&refused, "failed").await;
    assert_eq!(failed["reason"], "AC01", "{failed}");
    assert!(failed["providerDescription"].as_str().unwrap().contains("Incorrect account"));
    env.until(&paid, "success").await;
    env.inbound_read().await;
    assert_eq!(env.purse_balance(&purse).await, pair("900.00", "900.00"));
    let files = env.files().await;
    assert_eq!(files[0]["bankStatus"], "PART");
    assert_eq!(files[0]["paymentsVoided"], 1);
    assert_eq!(files[0]["paymentsPosted"], 1);
    env.invariants_hold().await;
}

#[tokio::test]
async fn a_booking_for_another_amount_moves_no_money_and_holds_the_payout() {
    let env = start().await;
    // The bank accepts but books nothing by itself: the test writes the booking.
    env.bank.set_rules(Rules { book: false, ..Rules::default() });
    let purse = env.funded_purse("1000").await;
    let id = env.payout(&purse, CREDITOR, "300").await;
    env.cut().await;
    env.bank_answers();
    env.inbound_read().await;
    let accepted = env.payment(&id).await;
    assert_eq!(accepted["status"], "pending_confirmation", "{accepted}");
    assert_eq!(accepted["providerCode"], "ACCP", "{accepted}");
    let booking = Booking {
        credit: false,
        amount: eur("299.00"),
        end_to_end_id: Some(id.replace('-', "")),
        bank_reference: "BOOK-1".to_owned(),
        remittance: None,
        debtor_name: None,
        debtor_account: None,
    };
    env.bank.notify(&env.dir(), OURS, &[booking]).unwrap();
    let held = env.until(&id, "held_for_review").await;
    assert!(held["alert"].as_str().unwrap().contains("299.00"), "{held}");
    env.inbound_read().await;
    // Still reserved, nothing posted.
    assert_eq!(env.purse_balance(&purse).await, pair("1000.00", "700.00"));
    let records = env.inbound_records().await;
    let (status, applied, exceptions) = records.last().unwrap();
    assert_eq!((status.as_str(), *applied), ("processed", 1));
    assert!(exceptions[0].as_str().unwrap().contains("held for review"), "{exceptions}");
    env.invariants_hold().await;
}

#[tokio::test]
async fn a_credit_naming_a_customer_is_a_received_payment_once_per_bank_reference() {
    let env = start().await;
    let (_, customer) = env
        .server
        .post(
            &env.server.app_key,
            "/v1/customers",
            &json!({ "customerNumber": { "number": CUSTOMER, "provider": "cellular" } }),
        )
        .await;
    let customer = customer["customerId"].as_str().unwrap().to_owned();
    let wallet = format!("/v1/customers/{customer}/wallets");
    let (status, body) = env
        .server
        .post(&env.server.app_key, &wallet, &json!({ "walletId": "main", "currencyCode": "EUR" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let balance = || async {
        let (_, body) = env.server.get(&env.server.app_key, &format!("{wallet}/main")).await;
        body["balance"]["actual"].as_str().unwrap().to_owned()
    };
    let reference = format!("Order 17 customer {customer}");
    env.bank.credit(&env.dir(), OURS, eur("25.00"), &reference, "BREF-1").unwrap();
    let credited = wait_for("the credit", Duration::from_secs(20), || async {
        (balance().await == "25.00").then_some(())
    })
    .await;
    credited.unwrap();
    env.inbound_read().await;
    // The same booking in another notification (another message id): recorded once.
    env.bank.credit(&env.dir(), OURS, eur("25.00"), &reference, "BREF-1").unwrap();
    env.inbound_read().await;
    assert_eq!(balance().await, "25.00");
    // A credit that names nobody, on a channel without a receiving purse: nothing moves, and
    // it is recorded as an exception.
    env.bank.credit(&env.dir(), OURS, eur("9.00"), "no idea", "BREF-2").unwrap();
    env.inbound_read().await;
    let records = env.inbound_records().await;
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].1, 1);
    assert_eq!(records[1].1, 1, "applied again, changing nothing");
    assert!(records[2].2[0].as_str().unwrap().contains("names no account"), "{records:?}");
    assert_eq!(balance().await, "25.00");
    // The payment is on the customer's timeline as received.
    let (_, state) =
        env.server.get(&env.server.app_key, &format!("/v1/customers/{customer}")).await;
    let payments = state["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1, "{state}");
    assert_eq!(payments[0]["status"], "success", "{state}");
    env.invariants_hold().await;
}

#[tokio::test]
async fn an_unreadable_file_is_recorded_and_set_aside_and_the_worker_keeps_going() {
    let env = start().await;
    let inbound = env.dir().join("in");
    std::fs::create_dir_all(&inbound).unwrap();
    std::fs::write(inbound.join("0-garbage.xml"), b"\xff\xfe not even text").unwrap();
    std::fs::write(inbound.join("1-other.xml"), "<Document xmlns=\"urn:x\"/>").unwrap();
    let purse = env.funded_purse("100").await;
    let id = env.payout(&purse, CREDITOR, "40").await;
    env.cut().await;
    env.bank_answers();
    env.until(&id, "success").await;
    env.inbound_read().await;
    assert_eq!(files_in(&inbound.join("unreadable")), ["0-garbage.xml", "1-other.xml"]);
    let records = env.inbound_records().await;
    let unreadable = records.iter().filter(|r| r.0 == "unreadable").count();
    assert_eq!(unreadable, 2, "{records:?}");
    assert_eq!(env.purse_balance(&purse).await, pair("60.00", "60.00"));
    env.invariants_hold().await;
}

#[tokio::test]
async fn the_schedule_cuts_a_file_at_the_cut_off() {
    let env = start().await;
    let purse = env.funded_purse("100").await;
    let id = env.payout(&purse, CREDITOR, "10").await;
    // The channel's last cut-off was a day ago: its next one has passed.
    let client = env.server.db.connect().await.unwrap();
    client
        .execute("UPDATE bank_channels SET last_cut_off_at = now() - interval '1 day'", &[])
        .await
        .unwrap();
    let pending = env.until(&id, "pending_confirmation").await;
    let files = env.files().await;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["reason"], "cut_off");
    assert_eq!(pending["providerReference"], files[0]["messageId"]);
    let last: chrono::DateTime<chrono::Utc> =
        client.query_one("SELECT last_cut_off_at FROM bank_channels", &[]).await.unwrap().get(0);
    assert!(chrono::Utc::now() - last < chrono::Duration::hours(1));
    env.bank_answers();
    env.until(&id, "success").await;
    env.invariants_hold().await;
}

#[tokio::test]
async fn bad_input_to_bank_channels_and_payouts_is_refused_with_stable_codes() {
    let env = start().await;
    let key = &env.server.org_key;
    let refused = |body: Value, code: &'static str| {
        let server = &env.server;
        async move {
            let (status, answer) = server.post(key, "/v1/payment-channels", &body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} {answer}");
            assert_eq!(answer["code"], code, "{body} {answer}");
        }
    };
    let mut body = bank_channel("DE89370400440532013000");
    body.as_object_mut().unwrap().remove("bank");
    refused(body, "missing_bank_details").await;
    let mut body = bank_channel("DE89370400440532013000");
    body["bank"]["bic"] = json!("ABNANL2");
    refused(body, "invalid_bic").await;
    let mut body = bank_channel("DE89370400440532013000");
    body["bank"]["cutOffs"] = json!(["25:00"]);
    refused(body, "invalid_cut_off").await;
    let mut body = bank_channel("DE89370400440532013000");
    body["bank"]["utcOffset"] = json!("+15:00");
    refused(body, "invalid_cut_off").await;
    let mut body = bank_channel("DE89370400440532013000");
    body["baseUrl"] = json!("https://bank.example");
    refused(body, "invalid_base_url").await;
    refused(bank_channel("DE89370400440532013001"), "invalid_channel_number").await;
    let mpesa = json!({
        "provider": "mpesa", "channelNumber": "600000", "currencyCode": "KES",
        "baseUrl": "https://sandbox.safaricom.co.ke",
        "credentials": { "consumerKey": "k", "consumerSecret": "s" },
        "bank": bank_channel(OURS)["bank"],
    });
    refused(mpesa.clone(), "not_supported").await;
    let mut mpesa = mpesa;
    mpesa.as_object_mut().unwrap().remove("bank");
    let (status, mpesa) = env.server.post(key, "/v1/payment-channels", &mpesa).await;
    assert_eq!(status, StatusCode::CREATED, "{mpesa}");

    // Payouts: the creditor's account and name are required and checked.
    let purse = env.funded_purse("100").await;
    let mut missing = to_bank(CREDITOR, "Jane");
    missing["customer"].as_object_mut().unwrap().remove("bankAccount");
    let bad_iban = to_bank("DE89370400440532013001", "Jane");
    let other = to_bank("12-34", "Jane");
    let nameless = to_bank(CREDITOR, " ");
    let mut bad_bic = to_bank(CREDITOR, "Jane");
    bad_bic["customer"]["bankAccount"]["bic"] = json!("NOTABIC");
    for (credit, code) in [
        (missing, "missing_bank_details"),
        (bad_iban, "invalid_bank_account"),
        (other, "invalid_bank_account"),
        (nameless, "invalid_name"),
        (bad_bic, "invalid_bic"),
    ] {
        let (status, answer) = env.pay(&purse, credit.clone(), "10").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{credit} {answer}");
        assert_eq!(answer["code"], code, "{credit} {answer}");
    }
    // A missing name is a body the schema refuses.
    let mut no_name = to_bank(CREDITOR, "Jane");
    no_name["customer"]["bankAccount"].as_object_mut().unwrap().remove("name");
    let (status, answer) = env.pay(&purse, no_name, "10").await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
    );
    // Collections through a bank channel are read from its camt.054, not asked for.
    let payment = json!({
        "debitParty": to_bank(CREDITOR, "Jane"),
        "creditParty": { "purse": { "purseId": purse } },
        "value": { "currencyCode": "EUR", "amount": "10" },
    });
    let (status, answer) = env.server.post(&env.server.app_key, "/v1/payments", &payment).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_supported"))
    );
    // Files: nothing queued, not a bank channel, not a channel of the org.
    let cut = |channel: String| {
        let server = &env.server;
        async move {
            let path = format!("/v1/payment-channels/{channel}/bank-files");
            server.call(Method::POST, &path, Some(key), None).await
        }
    };
    let (status, answer) = cut(env.channel.clone()).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::CONFLICT, Some("no_queued_payouts"))
    );
    let (status, answer) = cut(mpesa["channelId"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_supported"))
    );
    let (status, answer) = cut(uuid::Uuid::now_v7().to_string()).await;
    assert_eq!((status, answer["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    // Nothing was reserved, nothing was written.
    assert_eq!(env.purse_balance(&purse).await, pair("100.00", "100.00"));
    assert!(env.files().await.is_empty());
    assert!(files_in(&env.dir().join("out")).is_empty());
    env.invariants_hold().await;
}

#[tokio::test]
async fn a_file_recorded_but_not_written_is_written_again_the_same_never_a_second_one() {
    let env = start().await;
    let purse = env.funded_purse("100").await;
    let first = env.payout(&purse, CREDITOR, "10").await;
    let second = env.payout(&purse, CREDITOR, "20").await;
    let file = env.cut().await;
    let out = env.dir().join("out");
    let name = file["fileName"].as_str().unwrap();
    let written = std::fs::read(out.join(name)).unwrap();
    // As if the process died after recording the file and before writing it: the row is
    // `prepared` and nothing is on disk.
    std::fs::remove_file(out.join(name)).unwrap();
    let client = env.server.db.connect().await.unwrap();
    client
        .execute("UPDATE bank_files SET status = 'prepared', written_at = NULL", &[])
        .await
        .unwrap();
    let again = wait_for("the file written again", Duration::from_secs(20), || {
        let path = out.join(name);
        async move { std::fs::read(path).ok() }
    })
    .await
    .unwrap();
    assert_eq!(again, written, "the same file, byte for byte");
    assert_eq!(files_in(&out), [name]);
    let files = env.files().await;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["status"], "written");
    // Its payments are in it, and in no other.
    let path = format!("/v1/payment-channels/{}/bank-files", env.channel);
    let (status, _) = env.server.call(Method::POST, &path, Some(&env.server.org_key), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    env.bank_answers();
    env.until(&first, "success").await;
    env.until(&second, "success").await;
    env.inbound_read().await;
    assert_eq!(env.purse_balance(&purse).await, pair("70.00", "70.00"));
    env.invariants_hold().await;
}
