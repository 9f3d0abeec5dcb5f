//! The HTTP probes over real HTTP, against a real database: `/healthz`, `/readyz`, problem
//! responses, request ids and graceful shutdown.

use std::time::Duration;

use hazina_server::{db, http};
use hazina_tests::{admin_config, fresh_db};
use reqwest::StatusCode;
use tokio::sync::oneshot;

/// A server on an ephemeral port; dropping the sender shuts it down.
struct Running {
    base: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(pool: deadpool_postgres::Pool) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let task =
        tokio::spawn(http::serve_on(listener, hazina_server::http::AppState::new(pool), async {
            let _ = stopped.await;
        }));
    Ok(Running { base, stop, task })
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|error| panic!("could not build an HTTP client: {error}"))
}

#[tokio::test]
async fn probes_answer_ok_with_a_reachable_database() -> anyhow::Result<()> {
    let db = fresh_db().await;
    let server = start(db.pool()).await?;
    let client = client();

    let health = client.get(format!("{}/healthz", server.base)).send().await?;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<serde_json::Value>().await?, serde_json::json!({"status": "ok"}));

    let ready = client.get(format!("{}/readyz", server.base)).send().await?;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<serde_json::Value>().await?, serde_json::json!({"status": "ok"}));

    drop(server.stop);
    server.task.await??;
    Ok(())
}

#[tokio::test]
async fn readyz_is_503_without_internals_when_the_database_is_gone() -> anyhow::Result<()> {
    let db = fresh_db().await;
    let pool = db.pool();
    let server = start(pool.clone()).await?;
    let client = client();
    assert_eq!(client.get(format!("{}/readyz", server.base)).send().await?.status(), 200);

    // Take the database away under the server's feet (the pool itself stays open).
    let name = db.name().to_owned();
    let admin = db::connect(&admin_config().await?).await?;
    admin.batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", db::quote_ident(&name))).await?;

    let ready = client.get(format!("{}/readyz", server.base)).send().await?;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = ready.json().await?;
    assert_eq!(body["code"], "database_unavailable");
    assert_eq!(body["status"], 503);
    let text = body.to_string();
    assert!(!text.contains(&name) && !text.contains("does not exist"), "{text}");

    // Liveness does not depend on the database.
    let health = client.get(format!("{}/healthz", server.base)).send().await?;
    assert_eq!(health.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn readyz_is_503_when_postgres_is_unreachable() -> anyhow::Result<()> {
    let mut config = tokio_postgres::Config::new();
    config.host_path("/nonexistent-hazina-socket-dir").user("nobody").dbname("nothing");
    let pool = db::pool(config, 2)?;
    let server = start(pool).await?;
    let ready = client().get(format!("{}/readyz", server.base)).send().await?;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await?;
    assert_eq!(body["code"], "database_unavailable");
    assert!(!body.to_string().contains("nonexistent"), "{body}");
    Ok(())
}

#[tokio::test]
async fn unknown_paths_are_problem_404s_and_request_ids_round_trip() -> anyhow::Result<()> {
    let db = fresh_db().await;
    let server = start(db.pool()).await?;
    let client = client();

    let missing = client.get(format!("{}/nope", server.base)).send().await?;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
    assert!(!missing.headers()["x-request-id"].is_empty(), "a generated id");
    assert_eq!(missing.json::<serde_json::Value>().await?["code"], "not_found");

    let echoed = client
        .get(format!("{}/healthz", server.base))
        .header("x-request-id", "abc-123")
        .send()
        .await?;
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");

    let odd = client
        .get(format!("{}/healthz", server.base))
        .header("x-request-id", "not a sane id")
        .send()
        .await?;
    assert_ne!(odd.headers()["x-request-id"], "not a sane id");
    Ok(())
}

#[tokio::test]
async fn shutdown_stops_accepting_connections() -> anyhow::Result<()> {
    let db = fresh_db().await;
    let server = start(db.pool()).await?;
    let client = client();
    assert_eq!(client.get(format!("{}/healthz", server.base)).send().await?.status(), 200);
    server.stop.send(()).map_err(|()| anyhow::anyhow!("the server is gone already"))?;
    tokio::time::timeout(Duration::from_secs(10), server.task).await???;
    // A fresh client: no pooled keep-alive connection to reuse.
    assert!(self::client().get(format!("{}/healthz", server.base)).send().await.is_err());
    Ok(())
}

/// Reports read on a pool of their own: with every request connection taken, a trial balance
/// still answers.
#[tokio::test]
async fn reports_have_a_pool_of_their_own() -> anyhow::Result<()> {
    let db = fresh_db().await;
    let made = hazina_server::tenancy::bootstrap(&db.pool())
        .await?
        .ok_or_else(|| anyhow::anyhow!("a fresh database gets its first keys"))?;
    let requests = db::pool(db.config(), 2)?;
    let services = hazina_server::app::Services::with_pools(
        requests.clone(),
        db.pool(),
        hazina_server::secrets::Sealer::generate()?,
    )
    .with_reports_pool(db::pool(db.config(), 1)?);
    let state = http::AppState::from(services);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(http::serve_on(listener, state, async {
        let _ = stopped.await;
    }));
    let client = client();
    let report = format!(
        "{base}/v1/reports/trial-balance?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z"
    );
    let key = &made.org_key.token;
    // Once, so that the key is known without a lookup.
    assert_eq!(client.get(&report).bearer_auth(key).send().await?.status(), StatusCode::OK);
    let held = (requests.get().await?, requests.get().await?);
    let answer = client.get(&report).bearer_auth(key).send().await?;
    assert_eq!(answer.status(), StatusCode::OK, "{}", answer.text().await?);
    drop(held);
    let _ = stop.send(());
    task.await??;
    Ok(())
}

/// At most `connections_max` connections are served at once: another waits to be accepted
/// until one closes.
#[tokio::test]
async fn connections_past_the_limit_wait_until_one_closes() -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let db = fresh_db().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = http::router(hazina_server::http::AppState::new(db.pool()));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(http::serve_router(listener, app, 2, async {
        let _ = stopped.await;
    }));
    let probe = || async move {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await?;
        let mut answer = [0_u8; 12];
        stream.read_exact(&mut answer).await?;
        anyhow::Ok((stream, answer))
    };
    let (first, answer) = probe().await?;
    assert_eq!(&answer, b"HTTP/1.1 200");
    let (second, _) = probe().await?;
    // Both stay open (keep-alive): a third is not served meanwhile.
    let mut third = tokio::spawn(probe());
    let waited = tokio::time::timeout(Duration::from_millis(500), &mut third).await;
    assert!(waited.is_err(), "a third connection was served beside two");
    drop(first);
    let (_third, answer) = tokio::time::timeout(Duration::from_secs(10), third).await???;
    assert_eq!(&answer, b"HTTP/1.1 200");
    drop(second);
    let _ = stop.send(());
    task.await??;
    Ok(())
}
