//! `/metrics` in Prometheus's text format: HTTP requests and latencies by route, and the
//! posting pipeline's queue depth, batches and batch sizes.

use std::fmt::Write as _;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::AppState;

/// Counts and times every request by method, route (the matched pattern, never the raw path:
/// ids would make unbounded label sets) and status.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> Response {
    let handle = crate::metrics::handle();
    let stats = state.pipeline.stats();
    let load =
        |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
    let mut text = handle.render();
    let _ = writeln!(
        text,
        "# HELP hazina_pipeline_queue_depth Ledger requests waiting in the pipeline's queues."
    );
    let _ = writeln!(text, "# TYPE hazina_pipeline_queue_depth gauge");
    let _ = writeln!(
        text,
        "hazina_pipeline_queue_depth {}",
        stats.queued.load(std::sync::atomic::Ordering::Relaxed)
    );
    for (name, help, value) in [
        (
            "hazina_pipeline_requests_total",
            "Ledger requests applied in batches.",
            load(&stats.requests),
        ),
        (
            "hazina_pipeline_failed_batches_total",
            "Batches that failed on the database.",
            load(&stats.failed_batches),
        ),
        (
            "hazina_pipeline_overloaded_total",
            "Requests refused because a queue was full.",
            load(&stats.overloaded),
        ),
    ] {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
    // Batch sizes as a histogram over the pipeline's power-of-two buckets.
    let _ = writeln!(text, "# HELP hazina_pipeline_batch_size Requests per applied batch.");
    let _ = writeln!(text, "# TYPE hazina_pipeline_batch_size histogram");
    let mut cumulative = 0;
    for (smallest, count) in stats.batch_size_histogram() {
        cumulative += count;
        let _ = writeln!(
            text,
            "hazina_pipeline_batch_size_bucket{{le=\"{}\"}} {cumulative}",
            smallest * 2 - 1
        );
    }
    let batches = load(&stats.batches);
    let _ = writeln!(text, "hazina_pipeline_batch_size_bucket{{le=\"+Inf\"}} {batches}");
    let _ = writeln!(text, "hazina_pipeline_batch_size_sum {}", load(&stats.requests));
    let _ = writeln!(text, "hazina_pipeline_batch_size_count {batches}");
    let _ = writeln!(
        text,
        "# HELP hazina_api_key_set_reads_total Readings of the live API key prefixes (for keys \
         this process did not know).\n# TYPE hazina_api_key_set_reads_total counter\n\
         hazina_api_key_set_reads_total {}",
        state.keys.reloads()
    );
    // Payments a provider's answer disagreed with wait for an operator, across restarts: the
    // count comes from the database (left out when it does not answer in time).
    let held = tokio::time::timeout(std::time::Duration::from_secs(2), state.payments.held_count());
    if let Ok(Ok(held)) = held.await {
        let _ = writeln!(
            text,
            "# HELP hazina_payments_held_for_review Provider payments held because the \
             provider's answer disagreed with them; an operator must look.\n\
             # TYPE hazina_payments_held_for_review gauge\nhazina_payments_held_for_review {held}"
        );
    }
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
