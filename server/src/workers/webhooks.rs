//! The webhook worker: fans new events out to endpoints and delivers the due deliveries
//! continuously (`webhooks::Service::run`); workers of several processes share the work.

use std::sync::Arc;

use crate::webhooks::Service;

/// Delivers webhooks until `shutdown` resolves.
pub async fn deliver_webhooks(service: Arc<Service>, shutdown: impl Future<Output = ()>) {
    service.run(shutdown).await;
}
