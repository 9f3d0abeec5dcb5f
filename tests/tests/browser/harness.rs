//! What the browser tests share: Chromium launched for one test with a profile of its own,
//! waiting on a page's state, reading it, screenshots, and data made through the API.

use std::path::PathBuf;
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::{Page, ScreenshotParams};
use futures_util::StreamExt as _;
use hazina_tests::ApiServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// How long a page may take to reach the state a test waits for.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// A headless Chromium with a fresh profile, closed (and its profile deleted) by [`close`].
///
/// [`close`]: Chromium::close
pub struct Chromium {
    pub browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    profile: PathBuf,
}

impl Chromium {
    /// Launches `/usr/bin/chromium` (or `HAZINA_CHROMIUM`) headless, with the flags that keep
    /// it off the network on a closed machine.
    pub async fn launch() -> Self {
        let profile =
            std::env::temp_dir().join(format!("hazina-chromium-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&profile).unwrap();
        let executable = std::env::var_os("HAZINA_CHROMIUM")
            .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
        let config = BrowserConfig::builder()
            .chrome_executable(executable)
            .no_sandbox()
            .user_data_dir(&profile)
            .window_size(1280, 900)
            .viewport(Viewport {
                width: 1280,
                height: 900,
                device_scale_factor: Some(1.0),
                emulating_mobile: false,
                is_landscape: true,
                has_touch: false,
            })
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(30))
            .args([
                "disable-gpu",
                "disable-quic",
                "no-first-run",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
            ])
            .build()
            .unwrap();
        let (browser, mut handler) = match Browser::launch(config).await {
            Ok(launched) => launched,
            Err(error) => panic!(
                "could not launch Chromium (install the Debian package chromium, or set \
                 HAZINA_CHROMIUM): {error}"
            ),
        };
        // The handler drives the connection to the browser; it must be polled for anything to
        // happen. An event it cannot read is no reason to stop.
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Self { browser, handler, profile }
    }

    /// A new tab at `url`.
    pub async fn page(&self, url: &str) -> Page {
        self.browser.new_page(url).await.unwrap()
    }

    /// Closes the browser and deletes its profile.
    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The value of a JavaScript expression in the page, passed through JSON.
pub async fn eval(page: &Page, expression: &str) -> Value {
    let text: String = page
        .evaluate(format!("JSON.stringify({expression})"))
        .await
        .unwrap_or_else(|error| panic!("{expression}: {error}"))
        .into_value()
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Waits until the JavaScript `condition` holds in the page (it may be navigating meanwhile).
pub async fn wait_until(page: &Page, condition: &str) {
    let expression =
        format!("JSON.stringify(document.readyState === 'complete' && !!({condition}))");
    let waited = hazina_tests::wait_for(condition, PAGE_TIMEOUT, || async {
        let value = page.evaluate(expression.as_str()).await.ok()?;
        (value.into_value::<String>().ok()? == "true").then_some(())
    })
    .await;
    if let Err(error) = waited {
        panic!("{error}; the page is at {:?}", page.url().await.ok().flatten());
    }
}

/// Waits until the page shown is `name` (the `data-page` of its body: `login`,
/// `trial-balance`, `statement`, `error`).
pub async fn wait_page(page: &Page, name: &str) {
    wait_until(page, &format!("document.body && document.body.dataset.page === '{name}'")).await;
}

/// Fails when the page shows an error: an error page, or a refusal on a form.
pub async fn no_error(page: &Page) {
    let code = error_code(page).await;
    let address = page.url().await.ok().flatten().unwrap_or_default();
    assert!(code.is_none(), "{address} shows the error {code:?}");
}

/// The error code the page shows, if any.
pub async fn error_code(page: &Page) -> Option<String> {
    let code = eval(
        page,
        "(document.querySelector('[data-error-code]') || {dataset: {}}).dataset.errorCode || null",
    )
    .await;
    code.as_str().map(str::to_owned)
}

/// Goes to `url` and waits for the page `name`.
pub async fn open(page: &Page, url: &str, name: &str) {
    page.goto(url).await.unwrap();
    wait_page(page, name).await;
}

/// Saves the whole page as `<HAZINA_SCREENSHOT_DIR>/<name>.png`.
pub async fn screenshot(page: &Page, name: &str) {
    let dir = std::env::var_os("HAZINA_SCREENSHOT_DIR").filter(|dir| !dir.is_empty()).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    let params = ScreenshotParams::builder().full_page(true).build();
    page.save_screenshot(params, dir.join(format!("{name}.png"))).await.unwrap();
}

/// Signs in on the page shown (the sign-in form) with `key`, typing it as a person would.
pub async fn sign_in(page: &Page, key: &str) {
    wait_page(page, "login").await;
    page.find_element("input[name=key]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str(key)
        .await
        .unwrap();
    page.find_element("form.stack button[type=submit]").await.unwrap().click().await.unwrap();
}

/// A new purse in `currency` (with an overdraft limit, for a float), its account id.
pub async fn purse(
    server: &ApiServer,
    currency: &str,
    name: &str,
    overdraft: Option<&str>,
) -> String {
    let mut body = json!({ "currencyCode": currency, "name": name });
    if let Some(limit) = overdraft {
        body["overdraftLimit"] = json!(limit);
    }
    let (status, body) = server.post(&server.org_key, "/v1/purses", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["purseId"].as_str().unwrap().to_owned()
}

/// Posts `amount` from one account to another (org key), as a raw transfer with `code`.
pub async fn transfer(
    server: &ApiServer,
    from: &str,
    to: &str,
    currency: &str,
    amount: &str,
    code: &str,
) {
    let value = json!({ "currencyCode": currency, "amount": amount });
    let body = json!({ "type": "post", "code": code, "legs": [
        { "accountId": from, "side": "debit", "value": value },
        { "accountId": to, "side": "credit", "value": value },
    ] });
    let (status, body) = server.post(&server.org_key, "/v1/transfers", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Reserves `amount` from one account to another (a pending transfer, org key).
pub async fn hold(server: &ApiServer, from: &str, to: &str, currency: &str, amount: &str) {
    let value = json!({ "currencyCode": currency, "amount": amount });
    let body = json!({ "type": "pending", "code": "hold", "timeoutSeconds": 3600, "legs": [
        { "accountId": from, "side": "debit", "value": value },
        { "accountId": to, "side": "credit", "value": value },
    ] });
    let (status, body) = server.post(&server.org_key, "/v1/transfers", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// `GET` on the API with the org key, which must answer 200.
pub async fn api(server: &ApiServer, path: &str) -> Value {
    let (status, body) = server.get(&server.org_key, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}
