//! The customer-scoped HTTP API under `/v1/`: tenancy and keys, customers, purses, wallets,
//! payments, transfers, accounts and reports.
//!
//! Every handler authenticates its caller ([`auth::Caller`]), reads only within the caller's
//! org (another org's resources answer 404, exactly like missing ones), and turns bad input
//! into a problem response with a stable code ([`error::ApiError`]) before anything changes.

pub mod auth;
pub mod channels;
pub mod customers;
pub mod error;
pub mod finance;
pub mod idempotency;
pub mod money;
pub mod payments;
pub mod tenancy;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use deadpool_postgres::Pool;
use hazina_ledger::pipeline::{Pipeline, PipelineConfig};
use hazina_ledger::store::Store;
use utoipa::OpenApi as _;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

/// Largest request body accepted.
pub const BODY_BYTES_MAX: usize = 256 * 1024;
/// Largest page a list returns.
pub const PAGE_SIZE_MAX: i64 = 500;
/// Page size when none is asked for.
pub const PAGE_SIZE_DEFAULT: i64 = 50;
/// Connections of the ledger writers' own pool: two per writer (overlapped batches) and some
/// to spare.
pub const LEDGER_POOL_SIZE: usize = 10;
/// Connections of the reports' own pool (statements, trial balance, general ledger): long
/// reads and downloads never take the connections requests and payments need.
pub const REPORTS_POOL_SIZE: usize = 4;
/// The longest a report's statement may run (reports over years of entries are the slowest).
pub const REPORTS_STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    pub pool: Pool,
    pub store: Store,
    /// The store on the reports' own pool (the request pool's, unless given one).
    pub reports: Store,
    pub pipeline: Pipeline,
    pub keys: Arc<auth::KeyCache>,
    pub parties: Arc<money::PartyCache>,
    /// Payments through providers (payouts, collections, received payments).
    pub payments: Arc<crate::payments::Engine>,
    /// How many callbacks each channel may still take.
    pub callback_limits: Arc<crate::payments::callbacks::CallbackLimits>,
}

impl AppState {
    /// The state over a migrated database's pool, with a posting pipeline started on the
    /// current runtime that shares the pool (for tests; see [`AppState::with_pools`]).
    pub fn new(pool: Pool) -> Self {
        Self::with_pools(pool.clone(), pool, Self::test_sealer())
    }

    /// A sealer with a key of its own for a server that lives as long as its test, taken from
    /// a fresh UUID's randomness when the system's generator refuses (it never does on a
    /// machine that runs tests; a server's key comes from its key file instead).
    fn test_sealer() -> crate::secrets::Sealer {
        crate::secrets::Sealer::generate().unwrap_or_else(|_| {
            let mut key = [0; 32];
            key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            crate::secrets::Sealer::from_key(&key)
        })
    }

    /// The state with the ledger's writers on a pool of their own, so that they never queue
    /// for a connection behind the requests they are serving, and channel credentials sealed
    /// with `sealer`.
    pub fn with_pools(pool: Pool, ledger_pool: Pool, sealer: crate::secrets::Sealer) -> Self {
        crate::metrics::init();
        let store = Store::new(pool.clone());
        let pipeline = Pipeline::start(&Store::new(ledger_pool), PipelineConfig::default());
        let payments =
            Arc::new(crate::payments::Engine::new(pool.clone(), pipeline.clone(), sealer));
        Self {
            pool,
            reports: store.clone(),
            store,
            pipeline,
            payments,
            keys: Arc::new(auth::KeyCache::default()),
            parties: Arc::new(money::PartyCache::default()),
            callback_limits: Arc::new(crate::payments::callbacks::CallbackLimits::default()),
        }
    }
}

impl AppState {
    /// The same state with reports (statements, trial balance, general ledger) on a pool of
    /// their own.
    #[must_use]
    pub fn with_reports_pool(mut self, pool: Pool) -> Self {
        self.reports = Store::new(pool);
        self
    }
}

/// The OpenAPI document's frame; the paths and schemas come from the handlers.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    info(
        title = "Hazina API",
        description = "Customers, purses, wallets, payments and the ledger beneath them. \
            Every request carries an API key (`Authorization: Bearer hz_…`): an org key manages \
            the org, an app key acts for one app. Errors are `application/problem+json` with a \
            stable `code`. Limits: bodies of at most 256 KiB, pages of at most 500 items."
    ),
    modifiers(&BearerKeys),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// Declares the bearer API keys.
struct BearerKeys;

impl utoipa::Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The `/v1` routes and the OpenAPI document that describes them (as JSON).
pub fn routes() -> (Router<AppState>, serde_json::Value) {
    let (router, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(tenancy::routes())
        .merge(customers::routes())
        .merge(money::routes())
        .merge(finance::routes())
        .merge(channels::routes())
        .merge(payments::routes())
        .split_for_parts();
    let mut document = serde_json::to_value(&document).unwrap_or_default();
    problems_as_problem_json(&mut document);
    (router.layer(DefaultBodyLimit::max(BODY_BYTES_MAX)), document)
}

/// Declares every `Problem` response as `application/problem+json`, the content type it is
/// sent with (the handlers' annotations can only say `application/json`).
fn problems_as_problem_json(document: &mut serde_json::Value) {
    let Some(paths) = document.get_mut("paths").and_then(serde_json::Value::as_object_mut) else {
        return;
    };
    let operations = paths
        .values_mut()
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut().filter_map(|operation| operation.get_mut("responses")));
    for responses in operations.filter_map(serde_json::Value::as_object_mut) {
        for response in responses.values_mut() {
            let Some(content) =
                response.get_mut("content").and_then(serde_json::Value::as_object_mut)
            else {
                continue;
            };
            let is_problem = content
                .get("application/json")
                .and_then(|json| json.pointer("/schema/$ref"))
                .is_some_and(|reference| reference == "#/components/schemas/Problem");
            if is_problem && let Some(json) = content.remove("application/json") {
                content.insert("application/problem+json".to_owned(), json);
            }
        }
    }
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
