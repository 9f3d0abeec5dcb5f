//! The messaging worker: queues send-by-tag jobs' messages and sends every due message, every
//! second and at once when a message is queued.

use std::sync::Arc;

use crate::messaging::{MessagingError, Service};

/// How often the worker looks for due messages when nothing wakes it.
pub const MESSAGING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends due messages until `shutdown` resolves; a full round runs again at once.
pub async fn send_messages(service: Arc<Service>, shutdown: impl Future<Output = ()>) {
    let round = || {
        let service = Arc::clone(&service);
        async move {
            let sent = service.run_due().await?;
            Ok::<_, MessagingError>(sent > 0)
        }
    };
    let pace = super::Pace { at_start: true, wake: Some(service.wake_signal()) };
    super::drain_loop("messaging", shutdown, pace, || MESSAGING_INTERVAL, round).await;
}
