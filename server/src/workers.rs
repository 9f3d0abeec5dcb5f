//! Background work the server does besides answering requests.

use std::time::Duration;

use hazina_ledger::store::Store;

/// How often the expiry sweeper looks for pending transfers whose timeout has passed.
pub const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);
/// Most pending transfers one sweep voids in one batch.
pub const EXPIRY_BATCH_MAX: i64 = 1_000;

/// Voids expired pending transfers every [`EXPIRY_INTERVAL`] until `shutdown` resolves.
///
/// Several server processes may sweep at once: the ledger derives each expiry's transfer id
/// from the pending transfer's, so only one void takes effect.
pub async fn sweep_expired(store: Store, shutdown: impl Future<Output = ()>) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut interval = tokio::time::interval(EXPIRY_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = interval.tick() => {}
        }
        // Keep going while full batches come back: a backlog is cleared without waiting.
        loop {
            match store.expire_pending(EXPIRY_BATCH_MAX).await {
                Ok(expired) if i64::try_from(expired).is_ok_and(|n| n == EXPIRY_BATCH_MAX) => {
                    tracing::info!(expired, "voided expired pending transfers; more are due");
                }
                Ok(0) => break,
                Ok(expired) => {
                    tracing::info!(expired, "voided expired pending transfers");
                    break;
                }
                Err(error) => {
                    tracing::warn!(error = %crate::error_chain(&error), "expiry sweep failed");
                    break;
                }
            }
        }
    }
}
