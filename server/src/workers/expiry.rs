//! The expiry sweeper: voids pending transfers whose timeout has passed.

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
///
/// A sweep across orgs: `Store::expire_pending` reads the due pending transfers of every org
/// (a read, no lock), and each expiry is then a transfer of its pending transfer's org.
pub async fn sweep_expired(store: Store, shutdown: impl Future<Output = ()>) {
    let round = || {
        let store = store.clone();
        async move {
            let expired = store.expire_pending(EXPIRY_BATCH_MAX).await?;
            if expired > 0 {
                tracing::info!(expired, "voided expired pending transfers");
            }
            // A full batch: a backlog is cleared without waiting.
            Ok::<_, hazina_ledger::store::StoreError>(
                i64::try_from(expired).is_ok_and(|n| n == EXPIRY_BATCH_MAX),
            )
        }
    };
    let pace = super::Pace { at_start: true, wake: None };
    super::drain_loop("expiry sweep", shutdown, pace, || EXPIRY_INTERVAL, round).await;
}
