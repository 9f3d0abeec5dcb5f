//! Hazina's server: configuration, the database pool, the HTTP router, background workers and
//! the embedded PostgreSQL launcher. The `hazina` binary (`main.rs`) wires them together.

pub mod app;
pub mod bench;
pub mod bench_http;
pub mod bench_messaging;
pub mod bench_reconcile;
pub mod bench_reports;
pub mod bench_webhooks;
pub mod chaos;
pub mod code;
pub mod config;
pub mod customers;
pub mod db;
pub mod embedded;
pub mod events;
pub mod finance_cli;
pub mod http;
pub mod messaging;
pub mod metrics;
pub mod money;
pub mod payments;
pub mod pdf;
pub mod reconciliation;
pub mod schema;
pub mod secrets;
pub mod tenancy;
pub mod webhooks;
pub mod workers;

#[cfg(test)]
mod architecture;

/// An error and its sources on one line (`outer: inner: innermost`), for logs.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
