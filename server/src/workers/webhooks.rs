//! The webhook worker: fans new events out to endpoints and delivers the due deliveries, round
//! after round (`webhooks::Service::round`); workers of several processes share the work.

use std::sync::Arc;

use super::{Pace, drain_loop};
use crate::webhooks::Service;

/// Runs webhook rounds until `shutdown` resolves: again at once while a batch was full, else
/// after the poll interval.
pub async fn deliver_webhooks(service: Arc<Service>, shutdown: impl Future<Output = ()>) {
    let pace = Pace { at_start: true, wake: None };
    let every = || service.settings().poll_interval;
    drain_loop("webhooks", shutdown, pace, every, || service.round()).await;
}
