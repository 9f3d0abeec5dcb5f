//! Overlapping one writer's consecutive batches, so that an org's batches use two database
//! backends instead of one.
//!
//! [`Store::post`] locks a batch's accounts first, so the next batch of the same org can do
//! nothing until the previous one commits. Here a batch is applied in two halves:
//!
//! 1. [`Store::prepare`]: read what the rules need without locking, taking the accounts the
//!    writer's previous batches left from its [`Speculation`] (their state once those batches
//!    commit), evaluate, then open a transaction and insert the transfers and entries. Those
//!    inserts take no lock another batch of the org needs, so they run while the previous
//!    batch commits on another connection.
//! 2. [`Store::commit_prepared`]: lock the accounts in id order and compare them with the
//!    states the evaluation assumed. Only when every one is the same (nothing else wrote them
//!    since) are the sums and versions updated and the transaction committed; otherwise it is
//!    rolled back and the caller applies the batch again through [`Store::post`].
//!
//! Correctness still comes from the database: the comparison happens under the locks, and
//! ids, resolutions and reversals are unique in the schema, so a concurrent writer (another
//! process, the expiry sweeper, a direct `Store::post`) only costs a retry.
//!
//! Most batches of a busy writer need no read at all: their accounts are in the speculation,
//! their ids were generated for them ([`TransferRequest::id_is_new`]) and they refer to no
//! other transfer. Such a batch takes its time from the writer's last reading of the
//! database's clock moved on by the local monotonic clock, and goes straight to its inserts.
//!
//! The times recorded never go backwards for an account. A batch's time is at least the time
//! of the writer's previous batch, and when it reads accounts from the database it reads the
//! clock after them; the comparison under the locks proves that no other entry was added to
//! its accounts since, and the same statement refuses the batch when its time is ahead of the
//! database's clock, so that whoever locks the accounts next reads a later time.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::chain::{self, AssumedHeads, Head};
use super::post::{
    BatchRows, IDS_OF_ORGS, Keys, StateChange, Statements, account_keys, appeared_elsewhere,
    lookup_ids, names_an_id_under_two_orgs, referenced_ids, resolutions_by_id, transfers_by_id,
};
use super::together::Settle;
use super::{Store, StoreError, rows};
use crate::ids::{AccountId, OrgId, TransferId};
use crate::rules::{self, AccountState, Outcome, Snapshot, Transfer, TransferRequest};

/// Opens a prepared batch's transaction.
const BEGIN: &str = "BEGIN; SET LOCAL lock_timeout = '100ms'";

/// Batches of at least this many requests insert their history with `COPY` (bulk inserts, four
/// round trips); smaller ones send `BEGIN` and both `INSERT`s at once (one round trip).
const COPY_TRANSFERS_MIN: usize = 128;

/// Most accounts a [`Speculation`] remembers; past it, it starts again empty (states it
/// forgets are read again when needed).
const REMEMBERED_ACCOUNTS_MAX: usize = 200_000;

/// How long a reading of the database's clock is moved on by the local clock before it is
/// read again. Clocks that drift apart by 100 ppm move 100 µs apart in this time, less than
/// a round trip: the guarded update almost never finds a batch's time ahead.
const CLOCK_READING_AGE_MAX: Duration = Duration::from_secs(1);

/// What one writer expects the ledger to hold once its batches in flight commit.
#[derive(Debug, Default)]
pub struct Speculation {
    /// Accounts as the writer's last batches leave them.
    accounts: HashMap<AccountId, AccountState>,
    /// Orgs' chain heads (and closed periods) as the writer's last batches leave them.
    heads: HashMap<OrgId, Head>,
    /// The records of the last prepared batch, which may not be committed yet.
    transfers: HashMap<TransferId, Transfer>,
    /// The database's clock as last read, and when (by the local monotonic clock).
    clock: Option<(DateTime<Utc>, Instant)>,
    /// The time of the writer's last prepared batch: the next one is never earlier.
    recorded: Option<DateTime<Utc>>,
}

impl Speculation {
    /// Forgets everything: after a batch failed or was applied by another path.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The database's time now, moved on from the last reading, when that is recent enough.
    fn extrapolated_now(&self) -> Option<DateTime<Utc>> {
        let (read, at) = self.clock?;
        let elapsed = at.elapsed();
        if elapsed > CLOCK_READING_AGE_MAX {
            return None;
        }
        let now = read + chrono::TimeDelta::from_std(elapsed).ok()?;
        Some(self.not_before_recorded(now))
    }

    /// `now`, or the last batch's time if that is later (clocks read on different
    /// connections, or a local clock running fast, must not take a writer's time back).
    fn not_before_recorded(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.recorded.map_or(now, |recorded| recorded.max(now))
    }

    /// The last prepared batch's record under this id, if it is of this org.
    fn transfer(&self, id: Uuid, org: Uuid) -> Option<&Transfer> {
        self.transfers.get(&TransferId(id)).filter(|transfer| transfer.org.0 == org)
    }

    /// Adds to `snapshot` what the last prepared batch recorded under the keys in `lookup`,
    /// and how it resolved or reversed the transfers under the keys in `referenced`.
    fn overlay(&self, lookup: &Keys, referenced: &Keys, snapshot: &mut Snapshot) {
        for (id, org) in lookup.pairs() {
            if let Some(transfer) = self.transfer(id, org) {
                snapshot.transfers.insert(transfer.id, transfer.clone());
            }
        }
        let refers_to = |id: TransferId, transfer: &Transfer| {
            referenced.pairs().any(|key| key == (id.0, transfer.org.0))
        };
        for transfer in self.transfers.values().filter(|transfer| transfer.rejection.is_none()) {
            if let Some(pending) = transfer.pending_id
                && refers_to(pending, transfer)
            {
                snapshot.resolutions.insert(pending, transfer.kind);
            }
            if let Some(reversed) = transfer.reversal_of
                && refers_to(reversed, transfer)
            {
                snapshot.reversed.insert(reversed);
            }
        }
    }
}

/// A batch whose history is written, in an open transaction, but whose accounts are not yet
/// locked or updated.
pub struct Prepared {
    /// `None` once committed or rolled back.
    client: Option<Client>,
    /// The states the evaluation started from, by account id.
    assumed: Vec<AccountState>,
    /// The chain heads the evaluation started from, of every org of the batch.
    assumed_heads: AssumedHeads,
    /// The batch's time, which the database's clock must have reached at commit (`None` with a
    /// manual clock).
    recorded_at: Option<DateTime<Utc>>,
    state: StateChange,
    outcomes: Vec<Outcome>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("open", &self.client.is_some())
            .field("accounts", &self.assumed.len())
            .field("requests", &self.outcomes.len())
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// Rolls the transaction back.
    pub async fn abandon(mut self) {
        if let Some(client) = self.client.take() {
            // Best effort: if the connection is broken the pool discards it anyway.
            let _ = client.batch_execute("ROLLBACK").await;
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // Dropped inside its transaction (the writer was cancelled): close the connection,
        // which rolls back, instead of returning it to the pool mid-transaction.
        if let Some(client) = self.client.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

impl Store {
    /// The first half of a batch (see the module's documentation): `Ok(None)` when the batch
    /// cannot be prepared this way and must go through [`Store::post`].
    ///
    /// # Errors
    ///
    /// As [`Store::post`]; the transaction is rolled back.
    pub async fn prepare(
        &self,
        speculation: &mut Speculation,
        requests: &[TransferRequest],
    ) -> Result<Option<Prepared>, StoreError> {
        // A batch naming one id under two orgs is applied per org, by `Store::post`.
        if requests.is_empty() || names_an_id_under_two_orgs(requests) {
            return Ok(None);
        }
        let client = self.pool.get().await?;
        let result = prepare_on(&client, &self.clock, speculation, requests).await;
        match result {
            Ok(Some(PreparedParts { assumed, assumed_heads, recorded_at, state, outcomes })) => {
                Ok(Some(Prepared {
                    client: Some(client),
                    assumed,
                    assumed_heads,
                    recorded_at,
                    state,
                    outcomes,
                }))
            }
            other => {
                let _ = client.batch_execute("ROLLBACK").await;
                match other {
                    // An aborted transaction's echo is settled away (`together.rs`); should one
                    // still come, the batch is applied again through `Store::post`, always safe.
                    Err(error)
                        if !is_lock_timeout(&error)
                            && !is_duplicate_id(&error)
                            && !error.is_aborted() =>
                    {
                        Err(error)
                    }
                    _ => Ok(None),
                }
            }
        }
    }

    /// The second half of a prepared batch: its outcomes once committed, or `Ok(None)` when its
    /// accounts changed since it was prepared (it was rolled back; apply it again).
    ///
    /// # Errors
    ///
    /// As [`Store::post`]. An error from the commit itself leaves the outcome unknown;
    /// replaying the same requests is safe.
    pub async fn commit_prepared(
        &self,
        mut prepared: Prepared,
    ) -> Result<Option<Vec<Outcome>>, StoreError> {
        let Some(client) = prepared.client.take() else {
            return Ok(None);
        };
        let result = lock_compare_commit(&client, &prepared).await;
        if !matches!(result, Ok(true)) {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        match result {
            Ok(true) => Ok(Some(std::mem::take(&mut prepared.outcomes))),
            Ok(false) => Ok(None),
            Err(error) if is_lock_timeout(&error) || error.is_aborted() => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// Whether a batch's insert met a transfer id that exists already: one marked
/// [new](TransferRequest::id_is_new) that was not (a replay). [`Store::post`] looks every id
/// up and answers it.
fn is_duplicate_id(error: &StoreError) -> bool {
    has_state(error, &tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Whether a prepared transaction gave up waiting for a lock (see [`BEGIN`]).
fn is_lock_timeout(error: &StoreError) -> bool {
    has_state(error, &tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
}

fn has_state(error: &StoreError, state: &tokio_postgres::error::SqlState) -> bool {
    matches!(error, StoreError::Db(error) if error.code() == Some(state))
}

/// What [`Prepared`] holds besides its connection.
struct PreparedParts {
    assumed: Vec<AccountState>,
    assumed_heads: AssumedHeads,
    recorded_at: Option<DateTime<Utc>>,
    state: StateChange,
    outcomes: Vec<Outcome>,
}

async fn prepare_on(
    client: &Client,
    clock: &super::Clock,
    speculation: &mut Speculation,
    requests: &[TransferRequest],
) -> Result<Option<PreparedParts>, StoreError> {
    let started = std::time::Instant::now();
    let Some((mut snapshot, heads, now)) = read(client, clock, speculation, requests).await? else {
        return Ok(None);
    };
    let mut assumed: Vec<AccountState> = snapshot.accounts.values().cloned().collect();
    assumed.sort_unstable_by_key(|state| state.id.0);
    let assumed_heads = AssumedHeads::new(&heads);

    let read = started.elapsed();
    let evaluation = rules::evaluate(&mut snapshot, now, requests);
    // A closed period's refusal is not recorded, so it cannot meet the id of an earlier
    // transfer at insert the way other outcomes do: an id wrongly marked new (a replay) would
    // be answered `period_closed` instead of replayed. `Store::post` looks every id up.
    let unlooked_refusal = requests.iter().zip(&evaluation.outcomes).any(|(request, outcome)| {
        request.id_is_new && outcome.rejection() == Some(rules::RejectReason::PeriodClosed)
    });
    if unlooked_refusal {
        return Ok(None);
    }
    let mut heads_after = heads;
    let links = chain::links(&evaluation.transfers, &mut heads_after)?;
    let rows = BatchRows::new(&evaluation, &snapshot.transfers, &links);
    let evaluated = started.elapsed();
    let state = StateChange::new(&snapshot, &evaluation, rows.event_batches(), &heads_after);
    // While prepared, the transaction holds the new entries' keys (account, version), which a
    // concurrent writer of the same accounts also needs, and waits for the writer's previous
    // batch, which may wait for that concurrent writer's locks: a cycle the database cannot
    // see. Bounding every lock wait of the prepared transaction breaks it.
    if requests.len() < COPY_TRANSFERS_MIN {
        let statements = Statements::prepare(client).await?;
        tokio::join!(client.batch_execute(BEGIN), rows.write(client, &statements),).settle()?;
    } else {
        client.batch_execute(BEGIN).await?;
        rows.copy(client).await?;
    }
    tracing::trace!(
        size = requests.len(),
        read_us = read.as_micros(),
        evaluate_us = evaluated.saturating_sub(read).as_micros(),
        write_us = started.elapsed().saturating_sub(evaluated).as_micros(),
        "batch prepared"
    );

    if speculation.accounts.len() + snapshot.accounts.len() > REMEMBERED_ACCOUNTS_MAX {
        speculation.accounts.clear();
    }
    speculation.accounts.extend(snapshot.accounts);
    speculation.heads.extend(heads_after);
    speculation.transfers =
        evaluation.transfers.into_iter().map(|transfer| (transfer.id, transfer)).collect();
    speculation.recorded = Some(now);
    let recorded_at = clock.manual_now().is_none().then_some(now);
    Ok(Some(PreparedParts {
        assumed,
        assumed_heads,
        recorded_at,
        state,
        outcomes: evaluation.outcomes,
    }))
}

/// What the rules need for the batch, without locking: the accounts from the speculation or
/// else the database, the transfers under its ids (unless generated for it) and the ones it
/// refers to (the last prepared batch's too), its orgs' chain heads (from the speculation or
/// else the database), and the time. `None` when a transfer it refers to appeared meanwhile,
/// or an org has no head yet ([`Store::post`] makes it).
async fn read(
    client: &Client,
    clock: &super::Clock,
    speculation: &mut Speculation,
    requests: &[TransferRequest],
) -> Result<Option<(Snapshot, HashMap<OrgId, Head>, DateTime<Utc>)>, StoreError> {
    let referenced_ids = referenced_ids(requests);
    let unknown = Keys::new(
        referenced_ids.pairs().filter(|(id, org)| speculation.transfer(*id, *org).is_none()),
    );
    let mut referenced_before =
        if unknown.is_empty() { HashMap::new() } else { transfers_by_id(client, &unknown).await? };
    for (id, org) in referenced_ids.pairs() {
        if let Some(transfer) = speculation.transfer(id, org) {
            referenced_before.insert(transfer.id, transfer.clone());
        }
    }
    let keys = account_keys(requests, &referenced_before);
    // An account is taken from the speculation only when it is of the org that names it.
    let to_read = Keys::new(keys.pairs().filter(|(id, org)| {
        speculation.accounts.get(&AccountId(*id)).is_none_or(|state| state.org.0 != *org)
    }));
    // Ids generated for their requests cannot be under an earlier transfer.
    let own = requests
        .iter()
        .filter(|request| !request.id_is_new)
        .map(|request| (request.id.0, request.org.0));
    let lookup_ids = lookup_ids(own, &referenced_ids);
    let orgs = chain::batch_orgs(requests.iter().map(|request| request.org));
    let heads_to_read: Vec<Uuid> =
        orgs.iter().copied().filter(|org| !speculation.heads.contains_key(&OrgId(*org))).collect();

    // A batch that needs nothing from the database reads nothing, not even the clock: it moves
    // the writer's last reading on (see the module's documentation).
    let quiet = to_read.is_empty()
        && lookup_ids.is_empty()
        && referenced_ids.is_empty()
        && heads_to_read.is_empty();
    let moved_on =
        if quiet { clock.manual_now().or_else(|| speculation.extrapolated_now()) } else { None };
    let (read, heads_read, now, existing, (resolutions, reversed)) = if let Some(now) = moved_on {
        (Vec::new(), Vec::new(), now, HashMap::new(), (HashMap::new(), HashSet::new()))
    } else {
        let (read, heads_read, read_at, existing, resolved) =
            read_with_clock(client, &to_read, &heads_to_read, &lookup_ids, &referenced_ids).await?;
        speculation.clock = Some((read_at, Instant::now()));
        let now = clock.manual_now().unwrap_or_else(|| speculation.not_before_recorded(read_at));
        (read, heads_read, now, existing, resolved)
    };
    let mut heads = chain::heads(&heads_read)?;
    for org in &orgs {
        if let Some(head) = speculation.heads.get(&OrgId(*org)) {
            heads.insert(OrgId(*org), *head);
        }
    }
    if heads.len() != orgs.len() {
        return Ok(None);
    }

    // A referred-to transfer that appeared after the first read may touch accounts not read.
    let known: HashSet<Uuid> = keys.ids.iter().copied().collect();
    if appeared_elsewhere(&referenced_ids, &referenced_before, &existing, &known) {
        return Ok(None);
    }

    let mut accounts: HashMap<AccountId, AccountState> = read
        .iter()
        .map(|row| rows::account_state(row).map(|state| (state.id, state)))
        .collect::<Result<_, _>>()?;
    for id in &keys.ids {
        if let Some(state) = speculation.accounts.get(&AccountId(*id))
            && keys.admits(state)
        {
            accounts.insert(state.id, state.clone());
        }
    }
    let mut snapshot = Snapshot {
        accounts,
        transfers: existing,
        resolutions,
        reversed,
        closed_through: chain::closed_through(&heads),
    };
    speculation.overlay(&lookup_ids, &referenced_ids, &mut snapshot);
    Ok(Some((snapshot, heads, now)))
}

/// What [`read`] takes from the database, in one round trip: the accounts not in the
/// speculation and the chain heads of `heads_to_read`, then the clock (every entry they show
/// was recorded before the time this batch records), the transfers under `lookup_ids`, and
/// how the referred-to ones were resolved.
async fn read_with_clock(
    client: &Client,
    to_read: &Keys,
    heads_to_read: &[Uuid],
    lookup_ids: &Keys,
    referenced_ids: &Keys,
) -> Result<
    (
        Vec<tokio_postgres::Row>,
        Vec<tokio_postgres::Row>,
        DateTime<Utc>,
        HashMap<TransferId, Transfer>,
        (HashMap<TransferId, rules::TransferKind>, HashSet<TransferId>),
    ),
    StoreError,
> {
    let read_accounts = client
        .prepare_cached(&format!(
            "SELECT {} FROM accounts WHERE {IDS_OF_ORGS}",
            rows::ACCOUNT_COLUMNS
        ))
        .await?;
    let read_clock = client.prepare_cached("SELECT clock_timestamp()").await?;
    let read_heads = client.prepare_cached(chain::READ_HEADS).await?;
    let (read, heads, now, existing, resolved) = tokio::join!(
        async {
            // Most batches find every account in the speculation: no statement for none.
            if to_read.ids.is_empty() {
                return Ok(Vec::new());
            }
            client.query(&read_accounts, &[&to_read.ids, &to_read.orgs]).await
        },
        async {
            if heads_to_read.is_empty() {
                return Ok(Vec::new());
            }
            client.query(&read_heads, &[&heads_to_read]).await
        },
        client.query_one(&read_clock, &[]),
        transfers_by_id(client, lookup_ids),
        resolutions_by_id(client, referenced_ids),
    )
    .settle()?;
    Ok((read, heads, now.get(0), existing, resolved))
}

/// Locks the prepared batch's accounts; when they are as assumed, updates them and commits.
/// `Ok(false)`: they are not (the caller rolls back).
///
/// A batch that changes accounts does it all in one round trip: the guarded update (which
/// locks, compares and updates in one statement, and fails when an account changed) with the
/// `COMMIT` behind it, which then becomes a rollback.
async fn lock_compare_commit(client: &Client, prepared: &Prepared) -> Result<bool, StoreError> {
    if prepared.state.changes_accounts() {
        let started = std::time::Instant::now();
        let statements = Statements::prepare(client).await?;
        let committed = tokio::join!(
            prepared.state.write_guarded(
                client,
                &statements,
                &prepared.assumed,
                &prepared.assumed_heads,
                prepared.recorded_at
            ),
            client.batch_execute("COMMIT"),
        )
        .settle();
        return match committed {
            Ok(_) => {
                tracing::trace!(
                    size = prepared.outcomes.len(),
                    commit_us = started.elapsed().as_micros(),
                    "prepared batch committed"
                );
                Ok(true)
            }
            Err(StoreError::Db(error))
                if matches!(
                    error.code().map(tokio_postgres::error::SqlState::code),
                    Some(
                        super::post::ACCOUNTS_CHANGED
                            | super::post::TIME_AHEAD
                            | chain::HEADS_CHANGED
                    )
                ) =>
            {
                tracing::debug!(%error, "a prepared batch was refused at commit");
                Ok(false)
            }
            Err(error) => Err(error),
        };
    }
    let started = std::time::Instant::now();
    let ids: Vec<Uuid> = prepared.assumed.iter().map(|state| state.id.0).collect();
    let orgs: Vec<Uuid> = prepared.assumed.iter().map(|state| state.org.0).collect();
    let lock = client
        .prepare_cached(&format!(
            "SELECT {} FROM accounts WHERE {IDS_OF_ORGS} ORDER BY id FOR UPDATE",
            rows::ACCOUNT_COLUMNS
        ))
        .await?;
    // The heads first, as every transaction locks them; a head not as assumed (another
    // process's batch, a close) fails the statement.
    let statements = Statements::prepare(client).await?;
    let lock_params: [&(dyn ToSql + Sync); 2] = [&ids, &orgs];
    let checked = tokio::join!(
        prepared.assumed_heads.check(client, &statements.assert_heads),
        client.query(&lock, &lock_params),
    )
    .settle();
    let locked = match checked {
        Ok((_, locked)) => locked,
        Err(StoreError::Db(error))
            if error.code().map(tokio_postgres::error::SqlState::code)
                == Some(chain::HEADS_CHANGED) =>
        {
            tracing::debug!("a prepared batch's chain head changed before it was committed");
            return Ok(false);
        }
        Err(error) => return Err(error),
    };
    let mut actual: Vec<AccountState> =
        locked.iter().map(rows::account_state).collect::<Result<_, _>>()?;
    actual.sort_unstable_by_key(|state| state.id.0);
    if actual != prepared.assumed {
        tracing::debug!("a prepared batch's accounts changed before it was committed");
        return Ok(false);
    }
    let locked_at = started.elapsed();
    tokio::join!(prepared.state.write(client, &statements), client.batch_execute("COMMIT"),)
        .settle()?;
    tracing::trace!(
        size = prepared.outcomes.len(),
        lock_us = locked_at.as_micros(),
        commit_us = started.elapsed().saturating_sub(locked_at).as_micros(),
        "prepared batch committed"
    );
    Ok(true)
}
