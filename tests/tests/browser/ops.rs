//! What the reconciliation, stuck-payment and period-close tests share: a server with the
//! M-Pesa simulator behind a payment channel, payouts through it, the org portal's statement
//! export for them (as `tests/tests/api/reconciliation.rs` writes it), and filling and sending
//! the pages' forms.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams;
use chromiumoxide::page::Page;
use hazina_simulator::{momo, mpesa};
use hazina_tests::{ApiServer, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{api, eval};

pub const KE: &str = "+254712345678";
pub const PAYBILL: &str = "600000";

/// A server, the M-Pesa simulator, and a channel to it.
pub struct Env {
    pub server: ApiServer,
    pub mpesa: mpesa::Simulator,
    pub channel_id: String,
    pub clearing: String,
}

impl Env {
    pub async fn start() -> Self {
        let server = ApiServer::start().await;
        let (mpesa, momo) = (mpesa::Simulator::new(), momo::Simulator::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let simulators = format!("http://{}", listener.local_addr().unwrap());
        let router = hazina_simulator::router(&mpesa, &momo);
        tokio::spawn(async move { axum::serve(listener, router).await });
        let channel = json!({
            "provider": "mpesa", "channelNumber": PAYBILL, "currencyCode": "KES",
            "name": "Paybill 600000",
            "baseUrl": format!("{simulators}/simulator/mpesa"),
            "credentials": {
                "consumerKey": "key", "consumerSecret": "secret",
                "passkey": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
                "initiatorName": "testapi", "securityCredential": "encrypted",
            },
        });
        let (status, body) = server.post(&server.org_key, "/v1/payment-channels", &channel).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let channel_id = body["channelId"].as_str().unwrap().to_owned();
        let clearing = body["clearingAccountId"].as_str().unwrap().to_owned();
        Self { server, mpesa, channel_id, clearing }
    }

    pub async fn purse(&self, name: &str, overdraft: Option<&str>) -> String {
        crate::harness::purse(&self.server, "KES", name, overdraft).await
    }

    /// A purse holding `amount`, paid from a float purse with an overdraft.
    pub async fn funded_purse(&self, amount: &str) -> String {
        let float = self.purse("float", Some("1000000")).await;
        let target = self.purse("payouts", None).await;
        let (status, body) = self
            .server
            .post(
                &self.server.org_key,
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

    /// Starts a payout of `amount` from the purse to the customer's M-Pesa: its id.
    pub async fn start_payout(&self, purse: &str, amount: &str) -> String {
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
        body["transactionId"].as_str().unwrap().to_owned()
    }

    /// Pays `amount` out and waits for its success: the provider's receipt.
    pub async fn payout(&self, purse: &str, amount: &str) -> String {
        let id = self.start_payout(purse, amount).await;
        let done = wait_for("the payout's success", Duration::from_secs(20), || async {
            let (_, payment) =
                self.server.get(&self.server.org_key, &format!("/v1/payments/{id}")).await;
            (payment["status"] == "success").then_some(payment)
        })
        .await
        .unwrap();
        done["receipt"].as_str().unwrap().to_owned()
    }

    /// The actual balance of an account, as the API gives it.
    pub async fn balance(&self, account: &str) -> String {
        api(&self.server, &format!("/v1/accounts/{account}")).await["balance"]["actual"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// A statement export as the M-Pesa org portal writes it: a preamble, then the header and one
/// row per line, `(receipt, details, paid in, withdrawn, balance)`, completed now (EAT).
pub fn statement(rows: &[(&str, &str, &str, &str, &str)]) -> String {
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

/// Writes `content` to a file of its own named `name`, for a form's file field.
pub fn temp_file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hazina-upload-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Sets the value of the form field `selector` (a select's option, a date, a text), as a
/// person choosing it would, and tells the page it changed.
pub async fn fill(page: &Page, selector: &str, value: &str) {
    let set = eval(
        page,
        &format!(
            "(() => {{ const field = document.querySelector({selector}); if (!field) return false;
                field.value = {value}; field.dispatchEvent(new Event('change', {{bubbles: true}}));
                return field.value === {value}; }})()",
            selector = json!(selector),
            value = json!(value),
        ),
    )
    .await;
    assert_eq!(set, Value::Bool(true), "{selector} = {value}");
}

/// Types `text` into the field `selector`.
pub async fn type_into(page: &Page, selector: &str, text: &str) {
    page.find_element(selector).await.unwrap().click().await.unwrap().type_str(text).await.unwrap();
}

/// Chooses `path` in the file field `selector`.
pub async fn choose_file(page: &Page, selector: &str, path: &std::path::Path) {
    let field = page.find_element(selector).await.unwrap();
    let params = SetFileInputFilesParams::builder()
        .files(vec![path.to_string_lossy().into_owned()])
        .backend_node_id(field.backend_node_id)
        .build()
        .unwrap();
    page.execute(params).await.unwrap();
}

/// Sends the form `form` (a selector) by clicking its submit button.
pub async fn submit(page: &Page, form: &str) {
    page.find_element(format!("{form} button[type=submit]")).await.unwrap().click().await.unwrap();
}

/// The `data-field` cells inside `scope` (a selector) as shown: name to text.
pub async fn fields(page: &Page, scope: &str) -> Value {
    eval(
        page,
        &format!(
            "Object.fromEntries(Array.from(document.querySelectorAll({scope} + ' [data-field]'))
                .map(e => [e.dataset.field, e.textContent.trim()]))",
            scope = json!(scope)
        ),
    )
    .await
}
