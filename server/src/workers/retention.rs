//! The retention sweeper: deletes parked callbacks, stored `Idempotency-Key` responses and
//! session steps' replies past their retention.

use std::time::Duration;

use hazina_ledger::OrgId;
use hazina_ledger::store::{Store, StoreError};

/// How often stored callbacks and idempotent responses past their retention are deleted.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// Most rows one statement deletes, so that a backlog never holds long locks.
const RETENTION_BATCH_MAX: i64 = 10_000;

/// What a retention sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retained {
    /// Parked callbacks (matched to no payment) older than the retention.
    pub parked_callbacks: u64,
    /// Responses stored for `Idempotency-Key`s older than the retention.
    pub idempotent_responses: u64,
    /// Replies to USSD and voice session steps older than the retention.
    pub session_replies: u64,
}

/// Deletes, in every org, the parked callbacks (those matched to no payment; a matched one is
/// its payment's evidence and stays), the stored `Idempotency-Key` responses and the replies
/// to session steps older than `retention`.
///
/// # Errors
///
/// When the database fails; what was deleted before stays deleted.
pub async fn sweep_retention_once(
    pool: &deadpool_postgres::Pool,
    retention: Duration,
) -> Result<Retained, StoreError> {
    // Org by org, so that every delete names its org.
    let orgs = Store::new(pool.clone()).orgs().await?;
    let client = pool.get().await?;
    let seconds = retention.as_secs_f64();
    let mut retained = Retained::default();
    for OrgId(org) in orgs {
        retained.parked_callbacks += delete_in_batches(
            &client,
            "DELETE FROM provider_callbacks WHERE org_id = $1 AND id IN (
                 SELECT c.id FROM provider_callbacks c
                 WHERE c.org_id = $1 AND c.payment_id IS NULL
                     AND c.received_at < now() - make_interval(secs => $2)
                 LIMIT $3)",
            org,
            seconds,
        )
        .await?;
        retained.idempotent_responses += delete_in_batches(
            &client,
            "DELETE FROM idempotent_requests WHERE org_id = $1 AND (org_id, caller, key) IN (
                 SELECT org_id, caller, key FROM idempotent_requests
                 WHERE org_id = $1 AND created_at < now() - make_interval(secs => $2)
                 LIMIT $3)",
            org,
            seconds,
        )
        .await?;
        retained.session_replies += delete_in_batches(
            &client,
            "DELETE FROM messaging_replies WHERE org_id = $1 AND (org_id, event_id) IN (
                 SELECT org_id, event_id FROM messaging_replies
                 WHERE org_id = $1 AND created_at < now() - make_interval(secs => $2)
                 LIMIT $3)",
            org,
            seconds,
        )
        .await?;
    }
    Ok(retained)
}

/// Runs `delete` (of the org `$1`'s rows older than `$2` seconds, at most `$3` of them) until
/// it deletes fewer than a batch; how many it deleted.
async fn delete_in_batches(
    client: &deadpool_postgres::Client,
    delete: &str,
    org: uuid::Uuid,
    seconds: f64,
) -> Result<u64, deadpool_postgres::PoolError> {
    let mut total = 0;
    loop {
        let deleted = client.execute(delete, &[&org, &seconds, &RETENTION_BATCH_MAX]).await?;
        total += deleted;
        if deleted < RETENTION_BATCH_MAX.unsigned_abs() {
            return Ok(total);
        }
    }
}

/// Sweeps past-retention rows every [`RETENTION_INTERVAL`] (and once at start) until
/// `shutdown` resolves.
pub async fn sweep_retention(
    pool: deadpool_postgres::Pool,
    retention: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let round = || {
        let pool = pool.clone();
        async move {
            let retained = sweep_retention_once(&pool, retention).await?;
            if retained != Retained::default() {
                tracing::info!(
                    ?retained,
                    "deleted callbacks, responses and replies past their retention"
                );
            }
            // Each statement already deletes in batches until none is left.
            Ok::<_, StoreError>(false)
        }
    };
    let pace = super::Pace { at_start: true, wake: None };
    super::drain_loop("retention sweep", shutdown, pace, || RETENTION_INTERVAL, round).await;
}
