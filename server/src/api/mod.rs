//! The customer-scoped HTTP API under `/v1/`: tenancy and keys, customers, purses, wallets,
//! payments, transfers, accounts and reports.
//!
//! Every handler authenticates its caller ([`auth::Caller`]), reads only within the caller's
//! org (another org's resources answer 404, exactly like missing ones), and turns bad input
//! into a problem response with a stable code ([`error::ApiError`]) before anything changes.

pub mod auth;
pub mod customers;
pub mod error;
pub mod money;
pub mod tenancy;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use deadpool_postgres::Pool;
use hazina_ledger::pipeline::{Pipeline, PipelineConfig};
use hazina_ledger::store::Store;

/// Largest request body accepted.
pub const BODY_BYTES_MAX: usize = 256 * 1024;
/// Largest page a list returns.
pub const PAGE_SIZE_MAX: i64 = 500;
/// Page size when none is asked for.
pub const PAGE_SIZE_DEFAULT: i64 = 50;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    pub pool: Pool,
    pub store: Store,
    pub pipeline: Pipeline,
    pub keys: Arc<auth::KeyCache>,
}

impl AppState {
    /// The state over a migrated database's pool, with a posting pipeline started on the
    /// current runtime.
    pub fn new(pool: Pool) -> Self {
        let store = Store::new(pool.clone());
        let pipeline = Pipeline::start(&store, PipelineConfig::default());
        Self { pool, store, pipeline, keys: Arc::new(auth::KeyCache::default()) }
    }
}

/// The `/v1` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(tenancy::routes())
        .merge(customers::routes())
        .merge(money::routes())
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
}

/// A page size from a query: the default when absent, refused outside 1..=max.
pub fn page_size(limit: Option<i64>) -> Result<i64, error::ApiError> {
    match limit {
        None => Ok(PAGE_SIZE_DEFAULT),
        Some(limit) if (1..=PAGE_SIZE_MAX).contains(&limit) => Ok(limit),
        Some(_) => Err(error::ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {PAGE_SIZE_MAX}"),
        )),
    }
}
