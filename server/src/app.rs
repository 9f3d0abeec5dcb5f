//! The composition root: builds the services every front door shares (the pools, the ledger's
//! posting pipeline, the payments engine, the money service) once, for `hazina serve`, the
//! benchmarks and the tests. It knows no front door: each wraps [`Services`] in a state of its
//! own with what only it needs (HTTP: `http::AppState`, with the API key cache and the callback
//! limits).

use std::sync::Arc;

use deadpool_postgres::Pool;
use hazina_ledger::pipeline::{Pipeline, PipelineConfig};
use hazina_ledger::store::Store;

/// Connections of the ledger writers' own pool: two per writer (overlapped batches) and some
/// to spare.
pub const LEDGER_POOL_SIZE: usize = 10;
/// Connections of the reports' own pool (statements, trial balance, general ledger): long
/// reads and downloads never take the connections requests and payments need.
pub const REPORTS_POOL_SIZE: usize = 4;
/// The longest a report's statement may run (reports over years of entries are the slowest).
pub const REPORTS_STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// What every front door shares. (Named apart from an org's *app*, the glossary's.)
#[derive(Clone, Debug)]
pub struct Services {
    pub pool: Pool,
    pub store: Store,
    /// The store on the reports' own pool (the request pool's, unless given one).
    pub reports: Store,
    pub pipeline: Pipeline,
    /// Purses, wallets, payments between them and the parties they resolve to.
    pub money: Arc<crate::money::Service>,
    /// Payments through providers (payouts, collections, received payments).
    pub payments: Arc<crate::payments::Engine>,
    /// Webhook endpoints and the delivery of events to them.
    pub webhooks: Arc<crate::webhooks::Service>,
    /// Messaging channels, messages, consent and sessions.
    pub messaging: Arc<crate::messaging::Service>,
    pub reconciliation: Arc<crate::reconciliation::Service>,
}

impl Services {
    /// The services over a migrated database's pool, with a posting pipeline started on the
    /// current runtime that shares the pool: for a test of one request at a time. A handler
    /// holds its connection while the ledger posts for it, so under load the writers would
    /// wait for a pool their callers hold; a server, and a test of many requests at once, give
    /// the writers a pool of their own ([`Services::with_pools`]).
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

    /// The services with the ledger's writers on a pool of their own, so that they never
    /// queue for a connection behind the requests they are serving, and channel credentials
    /// sealed with `sealer`.
    pub fn with_pools(pool: Pool, ledger_pool: Pool, sealer: crate::secrets::Sealer) -> Self {
        // The services record metrics too (the payments engine's disagreements).
        crate::metrics::init();
        let store = Store::new(pool.clone());
        let pipeline = Pipeline::start(&Store::new(ledger_pool), PipelineConfig::default());
        let webhooks =
            Arc::new(crate::webhooks::Service::new(pool.clone(), store.clone(), sealer.clone()));
        let payments =
            Arc::new(crate::payments::Engine::new(pool.clone(), pipeline.clone(), sealer.clone()));
        let messaging = Arc::new(crate::messaging::Service::new(
            pool.clone(),
            store.clone(),
            pipeline.clone(),
            sealer,
            Arc::clone(&webhooks),
        ));
        let money = Arc::new(crate::money::Service::new(
            pool.clone(),
            store.clone(),
            pipeline.clone(),
            Arc::clone(&payments),
        ));
        let reconciliation = Arc::new(crate::reconciliation::Service::new(
            pool.clone(),
            store.clone(),
            pipeline.clone(),
            Arc::clone(&payments),
        ));
        Self {
            pool,
            reports: store.clone(),
            store,
            pipeline,
            money,
            payments,
            webhooks,
            messaging,
            reconciliation,
        }
    }

    /// The same services with reports (statements, trial balance, general ledger) on a pool
    /// of their own.
    #[must_use]
    pub fn with_reports_pool(mut self, pool: Pool) -> Self {
        self.reports = Store::new(pool);
        self
    }
}
