//! The provider queries worker: asks providers about every payment whose next attempt is
//! due, so that a payment whose callback never comes still converges.

use std::sync::Arc;

use crate::payments::{DUE_BATCH_MAX, Engine};

/// Works on due payments until `shutdown` resolves: every poll interval, and at once when a
/// query is asked for.
pub async fn query_providers(engine: Arc<Engine>, shutdown: impl Future<Output = ()>) {
    let round = || {
        let engine = Arc::clone(&engine);
        async move {
            let worked = engine.run_due().await?;
            Ok::<_, crate::payments::PaymentError>(
                i64::try_from(worked).is_ok_and(|n| n == DUE_BATCH_MAX),
            )
        }
    };
    let pace = super::Pace { at_start: false, wake: Some(engine.wake_signal()) };
    let every = || engine.settings().poll_interval;
    super::drain_loop("provider queries", shutdown, pace, every, round).await;
}
