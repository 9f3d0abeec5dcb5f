//! Status reports applied in groups: the reports of one channel that arrive while a group is
//! being applied wait, and are applied together in the next transaction. A bulk send is
//! answered by one callback per message, and every transaction that records events holds the
//! org's event counter through its commit (`events::record`), so one transaction per report
//! would apply at most one report per WAL flush; a group costs one flush for all of them.
//! Each caller still gets its answer only once its reports are committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use deadpool_postgres::Pool;
use hazina_ledger::OrgId;
use hazina_providers::messaging::StatusUpdate;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::MessagingError;
use super::channels::ChannelRecord;
use super::store;

/// Most reports one transaction applies.
const GROUP_REPORTS_MAX: usize = 1_000;

/// One caller's reports, waiting for their group.
struct Waiting {
    channel: ChannelRecord,
    updates: Vec<StatusUpdate>,
    answer: oneshot::Sender<Result<usize, MessagingError>>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    /// Whether a task is applying this channel's groups.
    applying: bool,
}

/// The reports waiting per channel (org and channel id).
#[derive(Default)]
pub(super) struct Reports {
    queues: Mutex<HashMap<(OrgId, Uuid), Queue>>,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports").finish_non_exhaustive()
    }
}

impl Reports {
    /// Applies `updates` in the next group of their channel; how many messages they changed.
    pub(super) async fn apply(
        self: &Arc<Self>,
        pool: &Pool,
        channel: &ChannelRecord,
        updates: &[StatusUpdate],
    ) -> Result<usize, MessagingError> {
        if updates.is_empty() {
            return Ok(0);
        }
        let (answer, answered) = oneshot::channel();
        let key = (channel.org, channel.id);
        let start = {
            let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
            let queue = queues.entry(key).or_default();
            queue.waiting.push(Waiting {
                channel: channel.clone(),
                updates: updates.to_vec(),
                answer,
            });
            !std::mem::replace(&mut queue.applying, true)
        };
        if start {
            // A task of its own, so that a caller that goes away (a dropped connection) never
            // strands the others' reports.
            tokio::spawn(Arc::clone(self).apply_groups(pool.clone(), key));
        }
        if let Ok(result) = answered.await {
            return result;
        }
        // The applying task ended without answering (it cannot, short of a panic): apply
        // them alone.
        let updates: Vec<&StatusUpdate> = updates.iter().collect();
        apply_now(pool, channel, &updates).await.map(|changed| count(&changed))
    }

    /// Applies the channel's waiting reports a group at a time until none wait.
    async fn apply_groups(self: Arc<Self>, pool: Pool, key: (OrgId, Uuid)) {
        loop {
            let group = {
                let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(queue) = queues.get_mut(&key) else { return };
                let mut taken = 0;
                let mut size = 0;
                while taken < queue.waiting.len() && (taken == 0 || size < GROUP_REPORTS_MAX) {
                    size += queue.waiting[taken].updates.len();
                    taken += 1;
                }
                if taken == 0 {
                    queues.remove(&key);
                    return;
                }
                queue.waiting.drain(..taken).collect::<Vec<_>>()
            };
            let channel = &group[0].channel;
            let updates: Vec<&StatusUpdate> =
                group.iter().flat_map(|waiting| &waiting.updates).collect();
            match apply_now(&pool, channel, &updates).await {
                Ok(changed) => {
                    let mut changed = changed.into_iter();
                    for waiting in group {
                        let mine = changed.by_ref().take(waiting.updates.len()).filter(|c| *c);
                        let _ = waiting.answer.send(Ok(mine.count()));
                    }
                }
                // One caller's answer is its own error.
                Err(error) if group.len() == 1 => {
                    if let Some(waiting) = group.into_iter().next() {
                        let _ = waiting.answer.send(Err(error));
                    }
                }
                // A group that failed is applied again a caller at a time, so that each gets
                // the outcome of its own reports.
                Err(_) => {
                    for waiting in group {
                        let updates: Vec<&StatusUpdate> = waiting.updates.iter().collect();
                        let result = apply_now(&pool, &waiting.channel, &updates)
                            .await
                            .map(|changed| count(&changed));
                        let _ = waiting.answer.send(result);
                    }
                }
            }
        }
    }
}

fn count(changed: &[bool]) -> usize {
    changed.iter().filter(|c| **c).count()
}

/// Applies reports in one transaction; then, for any it parked whose provider id was recorded
/// meanwhile (the send's answer committed between our look and our commit, and its own look
/// at the parked reports came before ours was committed), applies the parked reports itself.
/// For each report, whether it changed its message.
async fn apply_now(
    pool: &Pool,
    channel: &ChannelRecord,
    updates: &[&StatusUpdate],
) -> Result<Vec<bool>, MessagingError> {
    let applied = store::apply_reports(pool, channel, updates).await?;
    let mut parked = applied.parked;
    while !parked.is_empty() {
        let recorded = store::recorded_provider_ids(pool, channel, &parked).await?;
        if recorded.is_empty() {
            break;
        }
        let unparked = store::take_parked(pool, channel, &recorded).await?;
        let unparked: Vec<&StatusUpdate> = unparked.iter().collect();
        parked = store::apply_reports(pool, channel, &unparked).await?.parked;
    }
    Ok(applied.changed)
}
