//! What every HTTP handler shares: the services (`app::Services`), and what only the HTTP layer
//! needs beside them: the API key cache and the callback limits.

use std::ops::Deref;
use std::sync::Arc;

use deadpool_postgres::Pool;

use crate::app::Services;
use crate::http::auth::KeyCache;
use crate::http::callbacks::CallbackLimits;

/// The axum state: cloned for every request, so it is four reference counts.
#[derive(Clone, Debug)]
pub struct AppState {
    services: Arc<Services>,
    pub keys: Arc<KeyCache>,
    /// How many callbacks each channel may still take.
    pub callback_limits: Arc<CallbackLimits>,
    /// The web UI's statement uploads and their progress (in memory).
    pub uploads: Arc<crate::http::ui::Uploads>,
}

impl AppState {
    /// The state over a migrated database's pool, with the services of [`Services::new`]
    /// (for tests).
    pub fn new(pool: Pool) -> Self {
        Self::from(Services::new(pool))
    }

    /// The services the handlers call.
    pub fn services(&self) -> &Services {
        &self.services
    }
}

impl From<Services> for AppState {
    fn from(services: Services) -> Self {
        Self {
            services: Arc::new(services),
            keys: Arc::default(),
            callback_limits: Arc::default(),
            uploads: Arc::default(),
        }
    }
}

/// Handlers reach the services through the state (`state.pool`, `state.money`, …).
impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}
