//! `hazina bench --webhooks`: how fast the webhook workers deliver. Records events (half of
//! them of 1,000 customers, so ordering is exercised), points one endpoint at a receiver in
//! this process (axum on loopback, answering 204 at once), runs the workers until every
//! delivery succeeded, and reports events delivered per second, fan-out included.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use deadpool_postgres::Pool;
use hazina_ledger::OrgId;
use hazina_ledger::store::Store;

use crate::events::{EventType, NewEvent};
use crate::webhooks::{NewEndpoint, Scope, Settings};

/// Events recorded per transaction.
const RECORD_BATCH: usize = 1_000;

// A rate for people to read, not money: a float is right here.
#[allow(clippy::cast_precision_loss)]
pub async fn bench(pool: Pool, events: usize, workers: usize) -> anyhow::Result<()> {
    let org = OrgId::generate();
    Store::new(pool.clone()).create_org(org, "webhook bench").await?;
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let services = crate::app::Services::new(pool.clone());
    services.webhooks.configure(Settings {
        allow_private: true,
        poll_interval: Duration::from_millis(10),
        ..Settings::default()
    });
    let scope = Scope { org, app: None };
    let endpoint = NewEndpoint { app: None, url, event_types: Vec::new(), description: None };
    services.webhooks.create(scope, endpoint).await.context("could not make the endpoint")?;

    let started = Instant::now();
    let customers: Vec<uuid::Uuid> = (0..1_000).map(|_| uuid::Uuid::now_v7()).collect();
    let mut recorded = 0;
    while recorded < events {
        let count = RECORD_BATCH.min(events - recorded);
        let batch: Vec<NewEvent> = (recorded..recorded + count)
            .map(|i| {
                let customer = (i % 2 == 0).then(|| customers[i / 2 % customers.len()]);
                NewEvent::new(EventType::CustomerCreated, serde_json::json!({ "n": i }))
                    .customer(customer)
            })
            .collect();
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        crate::events::record(&tx, org, &batch).await?;
        tx.commit().await?;
        recorded += count;
    }
    tracing::info!(events, seconds = started.elapsed().as_secs_f64(), "events recorded");

    let started = Instant::now();
    let stops: Vec<tokio::sync::oneshot::Sender<()>> = (0..workers.max(1))
        .map(|_| {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(crate::workers::deliver_webhooks(Arc::clone(&services.webhooks), async {
                let _ = stopped.await;
            }));
            stop
        })
        .collect();
    let target = u64::try_from(events).unwrap_or(u64::MAX);
    while received.load(Ordering::Relaxed) < target {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    drop(stops);
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*)
             FROM webhook_deliveries WHERE org_id = $1",
            &[&org.0],
        )
        .await?;
    let (succeeded, all): (i64, i64) = (row.get(0), row.get(1));
    let rate = events as f64 / elapsed.as_secs_f64();
    let report = format!(
        "webhooks: {events} events delivered in {:.2} s by {workers} worker(s): {rate:.0} \
         events/s ({} requests received; {succeeded} of {all} deliveries recorded succeeded \
         when the last arrived)",
        elapsed.as_secs_f64(),
        received.load(Ordering::Relaxed),
    );
    eprintln!("{report}");
    Ok(())
}
