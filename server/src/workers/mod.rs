//! Background work the server does besides answering requests. Most workers are a round run
//! again and again by one loop ([`drain_loop`]): the expiry sweeper, the provider queries, the
//! bank file exchange, the retention sweeper, the reminders worker, the messaging worker. The webhook worker runs continuously instead,
//! claiming deliveries as its requests finish (`webhooks::Service::run`).

mod bank;
mod expiry;
mod messaging;
mod provider_queries;
mod reminders;
mod retention;
mod webhooks;

pub use bank::exchange_bank_files;
pub use expiry::{EXPIRY_BATCH_MAX, EXPIRY_INTERVAL, sweep_expired};
pub use messaging::{MESSAGING_INTERVAL, send_messages};
pub use provider_queries::query_providers;
pub use reminders::{
    Fired, REMINDERS_BATCH_MAX, REMINDERS_INTERVAL, TAG_CHUNK, due_times, fire_due_reminders,
    fire_reminders_loop,
};
pub use retention::{RETENTION_INTERVAL, Retained, sweep_retention, sweep_retention_once};
pub use webhooks::deliver_webhooks;

/// When a worker's rounds run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace<'a> {
    /// Whether the first round runs at once, or after the first wait.
    pub at_start: bool,
    /// Woken early by this, if anything (the payments engine asks for a query).
    pub wake: Option<&'a tokio::sync::Notify>,
}

/// Runs `round` every `every()` (read again before each wait) until `shutdown` resolves; a
/// round that reports a full batch (`Ok(true)`) is run again at once, so that a backlog is
/// cleared without waiting. A failed round is logged and tried again after the next wait.
/// Stopping a worker mid-round is safe: every round's steps commit whole or not at all.
pub(crate) async fn drain_loop<F, Fut, E>(
    what: &'static str,
    shutdown: impl Future<Output = ()>,
    pace: Pace<'_>,
    every: impl Fn() -> std::time::Duration,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
    E: std::error::Error + 'static,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let mut first = pace.at_start;
    loop {
        if !std::mem::take(&mut first) {
            let woken = async {
                match pace.wake {
                    Some(wake) => wake.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(every()) => {}
                () = woken => {}
            }
        }
        loop {
            match round().await {
                Ok(true) => {}
                Ok(false) => break,
                Err(error) => {
                    tracing::warn!(worker = what, error = %crate::error_chain(&error),
                        "a background round failed; trying again later");
                    break;
                }
            }
        }
    }
}
