//! What the simulator tests share: loopback servers and how long to wait for them.

use std::time::Duration;

/// How long a test waits for a callback before failing.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Serves `router` on a free loopback port for the rest of the test; its base URL
/// (`http://127.0.0.1:<port>`).
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

/// `PUT url` with a JSON `body` (sent as written, valid or not): the status and the JSON
/// answer. The simulators' `simulate/...` endpoints decide a payment this way.
pub async fn put_json(
    client: &reqwest::Client,
    url: String,
    body: &str,
) -> (u16, serde_json::Value) {
    let response = client
        .put(url)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}
