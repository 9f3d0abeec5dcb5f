//! The bank exchange worker: at each bank channel's cut-offs, its queued payouts go out as one
//! pain.001 file; recorded files not yet on disk are written; and the bank's pain.002 and
//! camt.054 files are read from `in/` (`payments::bank_files`).

use std::sync::Arc;

use crate::payments::Engine;

/// Runs the bank channels' exchange every poll interval until `shutdown` resolves.
pub async fn exchange_bank_files(engine: Arc<Engine>, shutdown: impl Future<Output = ()>) {
    let round = || {
        let engine = Arc::clone(&engine);
        async move { engine.run_bank_exchange().await }
    };
    let pace = super::Pace { at_start: true, wake: None };
    let every = || engine.settings().poll_interval;
    super::drain_loop("bank exchange", shutdown, pace, every, round).await;
}
