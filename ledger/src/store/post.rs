//! The batch-posting path: the one place balances change.
//!
//! One database transaction per batch, in three round trips: read the transfers the batch
//! refers to; lock the accounts in id order and read what the rules need; write transfers,
//! entries, balances and open pending transfers in bulk (`UNNEST` arrays) and commit.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use std::pin::pin;

use tokio_postgres::Statement;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

use super::chain::{self, HeadColumns};
use super::effects::{self, Effects};
use super::events::{self, EventBatches, EventColumns};
use super::together::Settle;
use super::{Store, StoreError, rows};
use crate::chain::Link;
use crate::ids::{AccountId, OrgId, TransferId};
use crate::rules::{
    self, Outcome, RejectReason, Snapshot, Transfer, TransferKind, TransferRequest,
};

/// How many times a batch is tried again after a conflict with a concurrent writer.
const CONFLICT_RETRIES: u32 = 8;

impl Store {
    /// Applies a batch of transfer requests, in order, in one database transaction, and returns
    /// one outcome per request. A single transfer is a batch of one.
    ///
    /// A rejected request never affects the others. On an error nothing of the batch is
    /// committed, unless the error came from the commit itself, in which case the outcome is
    /// unknown: replaying the same requests (same ids) is always safe and returns the original
    /// outcomes.
    ///
    /// # Errors
    ///
    /// [`StoreError::Db`] and [`StoreError::Pool`] when the database fails, and
    /// [`StoreError::Contention`] when the batch kept colliding with concurrent writers.
    pub async fn post(&self, requests: &[TransferRequest]) -> Result<Vec<Outcome>, StoreError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        if names_an_id_under_two_orgs(requests) {
            return self.post_per_org(requests).await;
        }
        let client = self.pool.get().await?;
        for _ in 0..CONFLICT_RETRIES {
            match post_once(&client, &self.clock, requests).await {
                Ok(Some(outcomes)) => return Ok(outcomes),
                // The transfers the batch refers to changed between reading and locking.
                Ok(None) => {}
                Err(error) if error.is_conflict() => {
                    tracing::debug!(error = %error, "batch conflicted with a concurrent writer");
                }
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Contention)
    }

    /// A batch whose requests name one id under two orgs (ids are unique per org, the rules'
    /// snapshot per id), applied as one batch per org, in turn: the orgs share nothing, so each
    /// org's requests see the same effects as in one batch. Each org's batch commits on its
    /// own; on an error, the outcomes of those applied before are unknown to the caller, and a
    /// replay returns them.
    async fn post_per_org(&self, requests: &[TransferRequest]) -> Result<Vec<Outcome>, StoreError> {
        let mut orgs: Vec<OrgId> = requests.iter().map(|request| request.org).collect();
        orgs.sort_unstable();
        orgs.dedup();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; requests.len()];
        for org in orgs {
            let (at, group): (Vec<usize>, Vec<TransferRequest>) = requests
                .iter()
                .enumerate()
                .filter(|(_, request)| request.org == org)
                .map(|(i, request)| (i, request.clone()))
                .unzip();
            for (i, outcome) in at.into_iter().zip(Box::pin(self.post(&group)).await?) {
                outcomes[i] = Some(outcome);
            }
        }
        // Every request belongs to exactly one org's group, which answered it.
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// Voids up to `limit` pending transfers whose timeout has passed; returns how many.
    ///
    /// The due transfers are read across orgs (the sweeper serves them all); each expiry is
    /// then applied in its own org.
    pub async fn expire_pending(&self, limit: i64) -> Result<usize, StoreError> {
        let due = {
            let client = self.pool.get().await?;
            client
                .query(
                    "SELECT transfer_id, org_id FROM pending_open
                     WHERE expires_at <= coalesce($2, clock_timestamp())
                     ORDER BY expires_at LIMIT $1",
                    &[&limit, &self.clock.manual_now()],
                )
                .await?
        };
        let requests: Vec<TransferRequest> = due
            .iter()
            .map(|row| {
                TransferRequest::expiry(row.get::<_, Uuid>(1).into(), row.get::<_, Uuid>(0).into())
            })
            .collect();
        let outcomes = self.post(&requests).await?;
        Ok(outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Outcome::Accepted { replayed: false, .. }))
            .count())
    }
}

/// The ids a request refers to: the pending transfer it resolves or the transfer it reverses.
fn referenced(request: &TransferRequest) -> Option<TransferId> {
    request.action.pending_id().or_else(|| request.action.reversal_of())
}

/// One attempt at a batch; `Ok(None)` when it must be tried again. On an error the
/// transaction is rolled back (or was never committed).
async fn post_once(
    client: &Client,
    clock: &super::Clock,
    requests: &[TransferRequest],
) -> Result<Option<Vec<Outcome>>, StoreError> {
    let result = attempt(client, clock, requests).await;
    if !matches!(result, Ok(Some(_))) {
        // Best effort: the connection must not go back to the pool inside a transaction. When
        // the error came from the connection itself, the pool discards it anyway.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result
}

/// The batch in three round trips: the referenced transfers (only when there are any); BEGIN
/// with the locks and reads; the writes with COMMIT. Statements sent together run in order, and
/// a COMMIT after a failed statement only rolls back.
async fn attempt(
    client: &Client,
    clock: &super::Clock,
    requests: &[TransferRequest],
) -> Result<Option<Vec<Outcome>>, StoreError> {
    let started = std::time::Instant::now();

    // The transfers the batch refers to, read before locking: they are immutable, and their
    // accounts are among those to lock.
    let referenced_ids = referenced_ids(requests);
    let referenced_before = if referenced_ids.is_empty() {
        HashMap::new()
    } else {
        transfers_by_id(client, &referenced_ids).await?
    };
    let keys = account_keys(requests, &referenced_before);

    // Lock, then read what the rules need: every statement after the lock sees the work of
    // any transaction that held these accounts before us.
    let lookup_ids =
        lookup_ids(requests.iter().map(|request| (request.id.0, request.org.0)), &referenced_ids);
    let lock = client
        .prepare_cached(&format!(
            "SELECT {} FROM accounts WHERE {IDS_OF_ORGS} ORDER BY id FOR UPDATE",
            rows::ACCOUNT_COLUMNS
        ))
        .await?;
    let read_clock = client.prepare_cached("SELECT clock_timestamp()").await?;
    let lock_heads = client.prepare_cached(chain::LOCK_HEADS).await?;
    let orgs = chain::batch_orgs(requests.iter().map(|request| request.org));
    let before_lock = started.elapsed();
    let lock_params: [&(dyn ToSql + Sync); 2] = [&keys.ids, &keys.orgs];
    let heads_params: [&(dyn ToSql + Sync); 1] = [&orgs];
    // The heads first: every transaction locks an org's head before its accounts.
    let ((), heads, locked, now, existing, (resolutions, reversed)) = tokio::join!(
        client.batch_execute("BEGIN"),
        client.query(&lock_heads, &heads_params),
        client.query(&lock, &lock_params),
        client.query_one(&read_clock, &[]),
        transfers_by_id(client, &lookup_ids),
        resolutions_by_id(client, &referenced_ids),
    )
    .settle()?;
    let now: DateTime<Utc> = clock.manual_now().unwrap_or_else(|| now.get(0));
    let mut heads = chain::heads(&heads)?;
    chain::lock_missing_heads(client, &orgs, &mut heads).await?;

    // A referred-to transfer that appeared after the first read may touch accounts we did not
    // lock: start again, now that it is visible.
    let locked_ids: HashSet<Uuid> = locked.iter().map(|row| row.get(0)).collect();
    if appeared_elsewhere(&referenced_ids, &referenced_before, &existing, &locked_ids) {
        return Ok(None);
    }

    let mut snapshot = Snapshot {
        accounts: locked
            .iter()
            .map(|row| rows::account_state(row).map(|state| (state.id, state)))
            .collect::<Result<_, _>>()?,
        transfers: existing,
        resolutions,
        reversed,
        closed_through: chain::closed_through(&heads),
    };
    let locked_at = started.elapsed();
    let evaluation = rules::evaluate(&mut snapshot, now, requests);
    let links = chain::links(&evaluation.transfers, &mut heads)?;
    let evaluated = started.elapsed();
    write_and_commit(client, &snapshot, &evaluation, &links, &heads).await?;
    tracing::trace!(
        size = requests.len(),
        read_us = before_lock.as_micros(),
        lock_us = locked_at.saturating_sub(before_lock).as_micros(),
        evaluate_us = evaluated.saturating_sub(locked_at).as_micros(),
        write_us = started.elapsed().saturating_sub(evaluated).as_micros(),
        "batch applied"
    );
    Ok(Some(evaluation.outcomes))
}

/// Whether the batch names one transfer id (its own or one it refers to) or one account id
/// under two orgs. Ids are unique per org, and the rules know transfers and accounts by id.
pub(super) fn names_an_id_under_two_orgs(requests: &[TransferRequest]) -> bool {
    let Some(first) = requests.first() else { return false };
    if requests.iter().all(|request| request.org == first.org) {
        return false;
    }
    let mut transfers: HashMap<Uuid, OrgId> = HashMap::new();
    let mut accounts: HashMap<Uuid, OrgId> = HashMap::new();
    let clash =
        |ids: &mut HashMap<Uuid, OrgId>, id: Uuid, org: OrgId| *ids.entry(id).or_insert(org) != org;
    requests.iter().any(|request| {
        clash(&mut transfers, request.id.0, request.org)
            || referenced(request).is_some_and(|id| clash(&mut transfers, id.0, request.org))
            || request
                .action
                .postings()
                .iter()
                .any(|posting| clash(&mut accounts, posting.account.0, request.org))
    })
}

/// The transfers a batch refers to, each with the org of the request that names it, sorted and
/// without repeats.
pub(super) fn referenced_ids(requests: &[TransferRequest]) -> Keys {
    Keys::new(requests.iter().filter_map(|request| Some((referenced(request)?.0, request.org.0))))
}

/// The accounts a batch touches: its own postings' and those of the transfers it refers to,
/// sorted (the locking order) and without repeats.
pub(super) fn account_keys(
    requests: &[TransferRequest],
    referenced: &HashMap<TransferId, Transfer>,
) -> Keys {
    Keys::new(requests.iter().flat_map(|request| {
        // Another org's transfer, named here, is refused by the rules: none of its
        // accounts is locked for it.
        let referred = self::referenced(request)
            .and_then(|id| referenced.get(&id))
            .filter(|transfer| transfer.org == request.org);
        let postings = request
            .action
            .postings()
            .iter()
            .chain(referred.into_iter().flat_map(|transfer| &transfer.postings));
        postings.map(|posting| (posting.account.0, request.org.0))
    }))
}

/// Rows a batch reads, each an id with the org of a request that names it (an id may come
/// twice, named by two orgs), in id order. Only a row of the org that names it is read or
/// locked: naming another org's account or transfer id reads and locks nothing of theirs, and
/// the rules find no such row.
#[derive(Debug, Default)]
pub(super) struct Keys {
    pub ids: Vec<Uuid>,
    pub orgs: Vec<Uuid>,
}

impl Keys {
    /// The `(id, org)` pairs, sorted and without repeats.
    pub fn new(pairs: impl Iterator<Item = (Uuid, Uuid)>) -> Self {
        let mut pairs: Vec<(Uuid, Uuid)> = pairs.collect();
        pairs.sort_unstable();
        pairs.dedup();
        Self {
            ids: pairs.iter().map(|(id, _)| *id).collect(),
            orgs: pairs.iter().map(|(_, org)| *org).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn pairs(&self) -> impl Iterator<Item = (Uuid, Uuid)> + '_ {
        self.ids.iter().copied().zip(self.orgs.iter().copied())
    }

    /// Whether `state` is an account the batch may use: one of the org that names it.
    pub fn admits(&self, state: &rules::AccountState) -> bool {
        self.pairs().any(|(id, org)| id == state.id.0 && org == state.org.0)
    }
}

/// The rows of these `(id, org)` pairs, as the statement's `$1` and `$2` arrays.
pub(super) const IDS_OF_ORGS: &str =
    "(id, org_id) IN (SELECT * FROM UNNEST($1::uuid[], $2::uuid[]))";

/// The transfers whose records the rules need: under the batch's ids (`own`, `(id, org)` pairs
/// of those that may exist) and referred to.
pub(super) fn lookup_ids(own: impl Iterator<Item = (Uuid, Uuid)>, referenced_ids: &Keys) -> Keys {
    Keys::new(own.chain(referenced_ids.pairs()))
}

/// Whether a referred-to transfer that was missing at the first read has appeared since with
/// an account outside `covered`: the batch must start again, now that it is visible.
pub(super) fn appeared_elsewhere(
    referenced_ids: &Keys,
    before: &HashMap<TransferId, Transfer>,
    existing: &HashMap<TransferId, Transfer>,
    covered: &HashSet<Uuid>,
) -> bool {
    referenced_ids
        .ids
        .iter()
        .map(|id| TransferId(*id))
        .filter(|id| !before.contains_key(id))
        .filter_map(|id| existing.get(&id))
        .any(|transfer| {
            transfer.postings.iter().any(|posting| !covered.contains(&posting.account.0))
        })
}

/// How the referred-to pending transfers were resolved, and which referred-to transfers were
/// reversed (both statements sent at once).
pub(super) async fn resolutions_by_id(
    client: &Client,
    referenced_ids: &Keys,
) -> Result<(HashMap<TransferId, TransferKind>, HashSet<TransferId>), StoreError> {
    if referenced_ids.is_empty() {
        return Ok((HashMap::new(), HashSet::new()));
    }
    let resolutions = client
        .prepare_cached(
            "SELECT pending_id, kind FROM transfers
             WHERE (pending_id, org_id) IN (SELECT * FROM UNNEST($1::uuid[], $2::uuid[]))
                 AND rejection IS NULL",
        )
        .await?;
    let reversals = client
        .prepare_cached(
            "SELECT reversal_of FROM transfers
             WHERE (reversal_of, org_id) IN (SELECT * FROM UNNEST($1::uuid[], $2::uuid[]))
                 AND rejection IS NULL",
        )
        .await?;
    let params: [&(dyn ToSql + Sync); 2] = [&referenced_ids.ids, &referenced_ids.orgs];
    let (resolved, reversed) =
        tokio::join!(client.query(&resolutions, &params), client.query(&reversals, &params))
            .settle()?;
    let resolutions = resolved
        .iter()
        .map(|row| {
            let kind: &str = row.get(1);
            let kind = TransferKind::from_name(kind)
                .ok_or_else(|| StoreError::Corrupt(format!("transfer kind {kind:?}")))?;
            Ok((TransferId(row.get(0)), kind))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((resolutions, reversed.iter().map(|row| TransferId(row.get(0))).collect()))
}

/// The transfers under these `(id, org)` keys. A batch names each id under one org (see
/// [`names_an_id_under_two_orgs`]), so the map holds one per id.
pub(super) async fn transfers_by_id(
    client: &Client,
    keys: &Keys,
) -> Result<HashMap<TransferId, Transfer>, StoreError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let statement = client
        .prepare_cached(&format!(
            "SELECT {} FROM transfers WHERE {IDS_OF_ORGS}",
            rows::TRANSFER_COLUMNS
        ))
        .await?;
    client
        .query(&statement, &[&keys.ids, &keys.orgs])
        .await?
        .iter()
        .map(|row| rows::transfer(row).map(|transfer| (transfer.id, transfer)))
        .collect()
}

const INSERT_TRANSFERS: &str =
    "INSERT INTO transfers (id, org_id, kind, code, postings, requested, pending_id,
         reversal_of, timeout_ms, expires_at, effective_at, created_at, context, rejection,
         event_batch, event_ord, chain_seq, chain_hash)
     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[],
         $6::jsonb[], $7::uuid[], $8::uuid[], $9::int8[], $10::timestamptz[],
         $11::timestamptz[], $12::timestamptz[], $13::jsonb[], $14::text[], $15::uuid[],
         $16::int4[], $17::int8[], $18::bytea[])";

const INSERT_ENTRIES: &str =
    "INSERT INTO entries (account_id, version, transfer_id, side, amount_posted,
         amount_pending, debits_posted, credits_posted, debits_pending, credits_pending,
         effective_at, created_at, org_id)
     SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::uuid[], $4::text[], $5::int8[],
         $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[],
         $11::timestamptz[], $12::timestamptz[], $13::uuid[])";

/// Links transfers to the customers their context names (see [`CustomerLinks`]).
const INSERT_CUSTOMER_LINKS: &str =
    "INSERT INTO customer_transfers (customer_id, transfer_id, at, org_id)
     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[], $4::uuid[])";

const COPY_TRANSFERS: &str = "COPY transfers (id, org_id, kind, code, postings, requested,
         pending_id, reversal_of, timeout_ms, expires_at, effective_at, created_at, context,
         rejection, event_batch, event_ord, chain_seq, chain_hash) FROM STDIN (FORMAT binary)";

const COPY_ENTRIES: &str = "COPY entries (account_id, version, transfer_id, side, amount_posted,
         amount_pending, debits_posted, credits_posted, debits_pending, credits_pending,
         effective_at, created_at, org_id) FROM STDIN (FORMAT binary)";

const UPDATE_ACCOUNTS: &str = "UPDATE accounts AS a SET debits_posted = u.debits_posted,
         credits_posted = u.credits_posted, debits_pending = u.debits_pending,
         credits_pending = u.credits_pending, version = u.version
     FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[],
             $7::uuid[])
         AS u (id, debits_posted, credits_posted, debits_pending, credits_pending, version,
             org_id)
     WHERE a.org_id = u.org_id AND a.id = u.id";

/// [`UPDATE_ACCOUNTS`] for a prepared batch: locks every account the batch assumed (`$8…`, in
/// id order), and updates the changed ones only if every assumed one is as assumed and the
/// batch's time (`$16`, when the database's clock is used) is not ahead of the database's
/// clock; otherwise `hazina_assert_prepared` (migration 0007), evaluated once, fails the
/// statement with [`ACCOUNTS_CHANGED`] or [`TIME_AHEAD`]. An account's org, currency, normal
/// side and limit never change, so its sums, version and `closed` are its whole state.
const GUARDED_UPDATE_ACCOUNTS: &str = "WITH assumed AS (
         SELECT * FROM UNNEST($8::uuid[], $9::uuid[], $10::bool[], $11::int8[], $12::int8[],
             $13::int8[], $14::int8[], $15::int8[])
             AS s (id, org_id, closed, debits_posted, credits_posted, debits_pending,
                 credits_pending, version)
     ), unchanged AS (
         SELECT a.id FROM accounts AS a JOIN assumed AS s ON a.org_id = s.org_id AND a.id = s.id
         WHERE a.closed = s.closed AND a.debits_posted = s.debits_posted
             AND a.credits_posted = s.credits_posted AND a.debits_pending = s.debits_pending
             AND a.credits_pending = s.credits_pending AND a.version = s.version
         ORDER BY a.id FOR UPDATE OF a
     )
     UPDATE accounts AS a SET debits_posted = u.debits_posted,
         credits_posted = u.credits_posted, debits_pending = u.debits_pending,
         credits_pending = u.credits_pending, version = u.version
     FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[],
             $7::uuid[])
         AS u (id, debits_posted, credits_posted, debits_pending, credits_pending, version,
             org_id)
     WHERE a.org_id = u.org_id AND a.id = u.id AND (SELECT hazina_assert_prepared(
         (SELECT count(*) FROM unchanged), cardinality($8::uuid[]), $16::timestamptz))";

/// The SQLSTATE of `hazina_assert_prepared`'s failure when an assumed account changed.
pub(super) const ACCOUNTS_CHANGED: &str = "HZ001";

/// The SQLSTATE of `hazina_assert_prepared`'s failure when the batch's time is ahead of the
/// database's clock.
pub(super) const TIME_AHEAD: &str = "HZ002";

const OPEN_PENDING: &str = "INSERT INTO pending_open (transfer_id, org_id, expires_at)
     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[])";

const CLOSE_PENDING: &str = "DELETE FROM pending_open
     WHERE (transfer_id, org_id) IN (SELECT * FROM UNNEST($1::uuid[], $2::uuid[]))";

/// Writes a batch's effects, each table in one statement, and commits, all sent together.
async fn write_and_commit(
    client: &Client,
    snapshot: &Snapshot,
    evaluation: &rules::Evaluation,
    links: &[Option<Link>],
    heads: &HashMap<OrgId, chain::Head>,
) -> Result<(), StoreError> {
    if evaluation.transfers.is_empty() {
        client.batch_execute("COMMIT").await?;
        return Ok(());
    }
    let rows = BatchRows::new(evaluation, &snapshot.transfers, links);
    let state = StateChange::new(snapshot, evaluation, rows.event_batches(), heads);
    let statements = Statements::prepare(client).await?;
    tokio::join!(
        rows.write(client, &statements),
        state.write(client, &statements),
        client.batch_execute("COMMIT"),
    )
    .settle()?;
    Ok(())
}

/// The batch-posting statements, prepared once per connection, and before any of a batch's
/// writes is sent: a statement prepared between them would reach the database after the
/// `COMMIT` sent with them, outside the transaction.
pub(super) struct Statements {
    insert_customer_links: Statement,
    insert_transfers: Statement,
    insert_entries: Statement,
    update_accounts: Statement,
    guarded_update_accounts: Statement,
    open_pending: Statement,
    close_pending: Statement,
    pub(super) insert_activities: Statement,
    pub(super) upsert_metadata: Statement,
    pub(super) delete_metadata: Statement,
    pub(super) upsert_app_data: Statement,
    insert_event_transfers: Statement,
    number_event_batches: Statement,
    update_heads: Statement,
    pub(super) assert_heads: Statement,
}

impl Statements {
    pub(super) async fn prepare(client: &Client) -> Result<Self, StoreError> {
        Ok(Self {
            insert_customer_links: client.prepare_cached(INSERT_CUSTOMER_LINKS).await?,
            insert_transfers: client.prepare_cached(INSERT_TRANSFERS).await?,
            insert_entries: client.prepare_cached(INSERT_ENTRIES).await?,
            update_accounts: client.prepare_cached(UPDATE_ACCOUNTS).await?,
            guarded_update_accounts: client.prepare_cached(GUARDED_UPDATE_ACCOUNTS).await?,
            open_pending: client.prepare_cached(OPEN_PENDING).await?,
            close_pending: client.prepare_cached(CLOSE_PENDING).await?,
            insert_activities: client.prepare_cached(effects::INSERT_ACTIVITIES).await?,
            upsert_metadata: client.prepare_cached(effects::UPSERT_METADATA).await?,
            delete_metadata: client.prepare_cached(effects::DELETE_METADATA).await?,
            upsert_app_data: client.prepare_cached(effects::UPSERT_APP_DATA).await?,
            insert_event_transfers: client.prepare_cached(events::INSERT_EVENT_TRANSFERS).await?,
            number_event_batches: client.prepare_cached(events::NUMBER_EVENT_BATCHES).await?,
            update_heads: client.prepare_cached(chain::UPDATE_HEADS).await?,
            assert_heads: client.prepare_cached(chain::ASSERT_HEADS).await?,
        })
    }
}

/// What a batch adds to history: its transfer records, their entries and their customers'
/// timeline links, with what its accepted transfers do for their customers (`effects.rs`).
/// Writing the history takes no lock that another batch of the org needs; the effects lock
/// only the customers' rows they change.
pub(super) struct BatchRows<'a> {
    transfers: TransferColumns<'a>,
    entries: EntryColumns,
    links: CustomerLinks,
    effects: Effects<'a>,
    events: EventColumns,
}

impl<'a> BatchRows<'a> {
    /// `known`: the transfers the batch's requests refer to (the snapshot's), whose customer
    /// and app the events of transfers acting on them tell of.
    /// `links`: each new record's place in its org's chain, in step with the records.
    pub(super) fn new(
        evaluation: &'a rules::Evaluation,
        known: &HashMap<TransferId, Transfer>,
        links: &[Option<Link>],
    ) -> Self {
        let events = EventColumns::new(&evaluation.transfers, &evaluation.entries, known);
        Self {
            transfers: TransferColumns::new(&evaluation.transfers, events.places(), links),
            entries: EntryColumns::new(&evaluation.entries),
            links: CustomerLinks::new(&evaluation.transfers),
            effects: Effects::new(&evaluation.transfers),
            events,
        }
    }

    /// The batches its events are numbered by, as it commits.
    pub(super) fn event_batches(&self) -> EventBatches {
        self.events.batches()
    }

    /// Applies the effects for customers, when there are any (most batches have none and send
    /// nothing for them).
    async fn apply_effects(
        &self,
        client: &Client,
        statements: &Statements,
    ) -> Result<(), StoreError> {
        if self.effects.is_empty() {
            return Ok(());
        }
        // Boxed: rare, and its four statements would otherwise grow every batch's future.
        Box::pin(self.effects.write(client, statements)).await
    }

    /// Inserts the customer links, when there are any.
    async fn link_customers(
        &self,
        client: &Client,
        statement: &Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        let l = &self.links;
        if l.customer.is_empty() {
            return Ok(0);
        }
        client.execute(statement, &[&l.customer, &l.transfer, &l.at, &l.org]).await
    }

    /// Sends the inserts at once (one round trip when awaited alone).
    pub(super) async fn write(
        &self,
        client: &Client,
        statements: &Statements,
    ) -> Result<(), StoreError> {
        let t = &self.transfers;
        if t.id.is_empty() {
            return Ok(());
        }
        let transfer_params: [&(dyn ToSql + Sync); 18] = [
            &t.id,
            &t.org,
            &t.kind,
            &t.code,
            &t.postings,
            &t.requested,
            &t.pending_id,
            &t.reversal_of,
            &t.timeout_ms,
            &t.expires_at,
            &t.effective_at,
            &t.created_at,
            &t.context,
            &t.rejection,
            &t.event_batch,
            &t.event_ord,
            &t.chain_seq,
            &t.chain_hash,
        ];
        let e = &self.entries;
        let entry_params: [&(dyn ToSql + Sync); 13] = [
            &e.account,
            &e.version,
            &e.transfer,
            &e.side,
            &e.amount_posted,
            &e.amount_pending,
            &e.debits_posted,
            &e.credits_posted,
            &e.debits_pending,
            &e.credits_pending,
            &e.effective_at,
            &e.created_at,
            &e.org,
        ];
        tokio::join!(
            self.link_customers(client, &statements.insert_customer_links),
            client.execute(&statements.insert_transfers, &transfer_params),
            self.events.write_rows(client, &statements.insert_event_transfers),
            self.apply_effects(client, statements),
            async {
                if e.account.is_empty() {
                    return Ok(0);
                }
                client.execute(&statements.insert_entries, &entry_params).await
            },
        )
        .settle()?;
        Ok(())
    }
    /// Writes both with `COPY`, which PostgreSQL inserts in bulk (many rows per heap page
    /// and WAL record) where `INSERT … SELECT FROM UNNEST` inserts row by row. Each `COPY` is
    /// two round trips, so this pays where the batch is large and nothing else is waiting.
    pub(super) async fn copy(&self, client: &Client) -> Result<(), StoreError> {
        let t = &self.transfers;
        if t.id.is_empty() {
            return Ok(());
        }
        let statements = Statements::prepare(client).await?;
        tokio::join!(
            self.link_customers(client, &statements.insert_customer_links),
            self.events.write_rows(client, &statements.insert_event_transfers),
            self.apply_effects(client, &statements)
        )
        .settle()?;
        self.copy_transfers(client).await?;
        self.copy_entries(client).await
    }

    async fn copy_transfers(&self, client: &Client) -> Result<(), StoreError> {
        let t = &self.transfers;
        let sink = client.copy_in(COPY_TRANSFERS).await?;
        let mut writer = pin!(BinaryCopyInWriter::new(
            sink,
            &[
                Type::UUID,
                Type::UUID,
                Type::TEXT,
                Type::TEXT,
                Type::JSONB,
                Type::JSONB,
                Type::UUID,
                Type::UUID,
                Type::INT8,
                Type::TIMESTAMPTZ,
                Type::TIMESTAMPTZ,
                Type::TIMESTAMPTZ,
                Type::JSONB,
                Type::TEXT,
                Type::UUID,
                Type::INT4,
                Type::INT8,
                Type::BYTEA,
            ],
        ));
        for i in 0..t.id.len() {
            writer
                .as_mut()
                .write(&[
                    &t.id[i],
                    &t.org[i],
                    &t.kind[i],
                    &t.code[i],
                    &t.postings[i],
                    &t.requested[i],
                    &t.pending_id[i],
                    &t.reversal_of[i],
                    &t.timeout_ms[i],
                    &t.expires_at[i],
                    &t.effective_at[i],
                    &t.created_at[i],
                    &t.context[i],
                    &t.rejection[i],
                    &t.event_batch[i],
                    &t.event_ord[i],
                    &t.chain_seq[i],
                    &t.chain_hash[i],
                ])
                .await?;
        }
        writer.finish().await?;
        Ok(())
    }

    async fn copy_entries(&self, client: &Client) -> Result<(), StoreError> {
        let e = &self.entries;
        if e.account.is_empty() {
            return Ok(());
        }
        let sink = client.copy_in(COPY_ENTRIES).await?;
        let mut writer = pin!(BinaryCopyInWriter::new(
            sink,
            &[
                Type::UUID,
                Type::INT8,
                Type::UUID,
                Type::TEXT,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::TIMESTAMPTZ,
                Type::TIMESTAMPTZ,
                Type::UUID,
            ],
        ));
        for i in 0..e.account.len() {
            writer
                .as_mut()
                .write(&[
                    &e.account[i],
                    &e.version[i],
                    &e.transfer[i],
                    &e.side[i],
                    &e.amount_posted[i],
                    &e.amount_pending[i],
                    &e.debits_posted[i],
                    &e.credits_posted[i],
                    &e.debits_pending[i],
                    &e.credits_pending[i],
                    &e.effective_at[i],
                    &e.created_at[i],
                    &e.org[i],
                ])
                .await?;
        }
        writer.finish().await?;
        Ok(())
    }
}

/// What a batch changes in the current state: the accounts' sums and versions, and the set of
/// open pending transfers. Written with the accounts locked, and then, last before `COMMIT`,
/// the events of its accepted transfers (`events.rs`).
pub(super) struct StateChange {
    accounts: AccountColumns,
    /// The chain heads the batch moves.
    heads: HeadColumns,
    events: EventBatches,
    opened_ids: Vec<Uuid>,
    opened_orgs: Vec<Uuid>,
    opened_expiry: Vec<Option<DateTime<Utc>>>,
    closed_ids: Vec<Uuid>,
    closed_orgs: Vec<Uuid>,
}

impl StateChange {
    /// `snapshot` holds the accounts' states after the batch.
    /// `snapshot` holds the accounts' states after the batch; `events` are its rows' batches
    /// ([`BatchRows::event_batches`]).
    /// `heads`: the chain heads after the batch.
    pub(super) fn new(
        snapshot: &Snapshot,
        evaluation: &rules::Evaluation,
        events: EventBatches,
        heads: &HashMap<OrgId, chain::Head>,
    ) -> Self {
        let still_open: HashSet<TransferId> = evaluation.pending_opened.iter().copied().collect();
        let opened: Vec<&Transfer> = evaluation
            .transfers
            .iter()
            .filter(|transfer| still_open.contains(&transfer.id))
            .collect();
        // A pending transfer is closed by an accepted transfer of its own org in the batch.
        let resolvers: HashMap<TransferId, OrgId> = evaluation
            .transfers
            .iter()
            .filter(|transfer| transfer.rejection.is_none())
            .filter_map(|transfer| Some((transfer.pending_id?, transfer.org)))
            .collect();
        let chained = evaluation.transfers.iter().filter(|transfer| transfer.rejection.is_none());
        Self {
            accounts: AccountColumns::new(snapshot, &evaluation.accounts_changed),
            heads: HeadColumns::new(heads, chained.map(|transfer| transfer.org)),
            events,
            opened_ids: opened.iter().map(|transfer| transfer.id.0).collect(),
            opened_orgs: opened.iter().map(|transfer| transfer.org.0).collect(),
            opened_expiry: opened.iter().map(|transfer| transfer.expires_at).collect(),
            closed_ids: evaluation.pending_closed.iter().map(|id| id.0).collect(),
            closed_orgs: evaluation
                .pending_closed
                .iter()
                .map(|id| resolvers.get(id).map_or(Uuid::nil(), |org| org.0))
                .collect(),
        }
    }

    /// Whether the batch changes any account (a batch of rejections changes none).
    pub(super) fn changes_accounts(&self) -> bool {
        !self.accounts.id.is_empty()
    }

    /// Sends its statements at once (one round trip when awaited alone), the events last.
    pub(super) async fn write(
        &self,
        client: &Client,
        statements: &Statements,
    ) -> Result<(), StoreError> {
        self.write_checked(client, statements, None).await
    }

    /// As [`StateChange::write`], but the accounts are updated only if every one in `assumed`
    /// is still in that state under its lock and `recorded_at` (the batch's time, `None` for a
    /// manual clock) is not ahead of the database's clock; otherwise the statement fails with
    /// [`ACCOUNTS_CHANGED`] or [`TIME_AHEAD`], and the transaction with it. Only for a batch
    /// that [changes accounts](StateChange::changes_accounts): the checks ride on the update.
    ///
    /// The chain heads in `assumed_heads` are locked and compared first, in the same round
    /// trip: a head that is not as assumed fails the statement with
    /// [`chain::HEADS_CHANGED`].
    pub(super) async fn write_guarded(
        &self,
        client: &Client,
        statements: &Statements,
        assumed: &[rules::AccountState],
        assumed_heads: &chain::AssumedHeads,
        recorded_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let guard = Guard { assumed, heads: assumed_heads, recorded_at };
        self.write_checked(client, statements, Some(guard)).await
    }

    async fn write_checked(
        &self,
        client: &Client,
        statements: &Statements,
        guard: Option<Guard<'_>>,
    ) -> Result<(), StoreError> {
        let a = &self.accounts;
        let assumed_heads = guard.as_ref().map(|guard| guard.heads);
        let assumed = guard.map(|guard| (AssumedColumns::new(guard.assumed), guard.recorded_at));
        // Heads before accounts, as every transaction locks them.
        tokio::join!(
            async {
                match assumed_heads {
                    Some(heads) => heads.check(client, &statements.assert_heads).await,
                    None => Ok(0),
                }
            },
            self.heads.write(client, &statements.update_heads),
            async {
                if a.id.is_empty() {
                    return Ok(0);
                }
                let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                    &a.id,
                    &a.debits_posted,
                    &a.credits_posted,
                    &a.debits_pending,
                    &a.credits_pending,
                    &a.version,
                    &a.org,
                ];
                let statement = match &assumed {
                    None => &statements.update_accounts,
                    Some((s, recorded_at)) => {
                        params.extend([
                            &s.id as &(dyn ToSql + Sync),
                            &s.org,
                            &s.closed,
                            &s.debits_posted,
                            &s.credits_posted,
                            &s.debits_pending,
                            &s.credits_pending,
                            &s.version,
                            recorded_at,
                        ]);
                        &statements.guarded_update_accounts
                    }
                };
                client.execute(statement, &params).await
            },
            async {
                if self.opened_ids.is_empty() {
                    return Ok(0);
                }
                let params: [&(dyn ToSql + Sync); 3] =
                    [&self.opened_ids, &self.opened_orgs, &self.opened_expiry];
                client.execute(&statements.open_pending, &params).await
            },
            async {
                if self.closed_ids.is_empty() {
                    return Ok(0);
                }
                let params: [&(dyn ToSql + Sync); 2] = [&self.closed_ids, &self.closed_orgs];
                client.execute(&statements.close_pending, &params).await
            },
            self.events.write(client, &statements.number_event_batches),
        )
        .settle()?;
        Ok(())
    }
}

/// What a prepared batch's commit checks: the account states and chain heads it assumed, and
/// its time.
struct Guard<'a> {
    assumed: &'a [rules::AccountState],
    heads: &'a chain::AssumedHeads,
    recorded_at: Option<DateTime<Utc>>,
}

/// The states a prepared batch assumed, as column arrays.
struct AssumedColumns {
    id: Vec<Uuid>,
    org: Vec<Uuid>,
    closed: Vec<bool>,
    debits_posted: Vec<i64>,
    credits_posted: Vec<i64>,
    debits_pending: Vec<i64>,
    credits_pending: Vec<i64>,
    version: Vec<i64>,
}

impl AssumedColumns {
    fn new(assumed: &[rules::AccountState]) -> Self {
        Self {
            id: assumed.iter().map(|state| state.id.0).collect(),
            org: assumed.iter().map(|state| state.org.0).collect(),
            closed: assumed.iter().map(|state| state.closed).collect(),
            debits_posted: assumed.iter().map(|state| state.sums.debits_posted).collect(),
            credits_posted: assumed.iter().map(|state| state.sums.credits_posted).collect(),
            debits_pending: assumed.iter().map(|state| state.sums.debits_pending).collect(),
            credits_pending: assumed.iter().map(|state| state.sums.credits_pending).collect(),
            version: assumed.iter().map(|state| state.version).collect(),
        }
    }
}

/// The new transfers as column arrays.
struct TransferColumns<'a> {
    id: Vec<Uuid>,
    org: Vec<Uuid>,
    kind: Vec<&'static str>,
    code: Vec<&'a str>,
    postings: Vec<Json<&'a [rules::Posting]>>,
    requested: Vec<Option<Json<&'a [crate::money::Money]>>>,
    pending_id: Vec<Option<Uuid>>,
    reversal_of: Vec<Option<Uuid>>,
    timeout_ms: Vec<Option<i64>>,
    expires_at: Vec<Option<DateTime<Utc>>>,
    effective_at: Vec<DateTime<Utc>>,
    created_at: Vec<DateTime<Utc>>,
    context: Vec<Json<&'a serde_json::Map<String, serde_json::Value>>>,
    rejection: Vec<Option<&'static str>>,
    /// Its event's batch id and place (`None` for a refused transfer).
    event_batch: Vec<Option<Uuid>>,
    event_ord: Vec<Option<i32>>,
    /// Its place in its org's chain (`None` for a refused transfer).
    chain_seq: Vec<Option<i64>>,
    chain_hash: Vec<Option<Vec<u8>>>,
}

impl<'a> TransferColumns<'a> {
    /// Borrows what it sends: the JSON columns are serialised straight into the statement's
    /// parameters, never copied into a tree of their own.
    /// `places`: each transfer's event's batch id and place, in step with `transfers`.
    /// `links`: each transfer's chain link, in step with `transfers`.
    fn new(
        transfers: &'a [Transfer],
        places: &[Option<(Uuid, i32)>],
        links: &[Option<Link>],
    ) -> Self {
        let mut columns = Self {
            id: Vec::with_capacity(transfers.len()),
            org: Vec::with_capacity(transfers.len()),
            kind: Vec::with_capacity(transfers.len()),
            code: Vec::with_capacity(transfers.len()),
            postings: Vec::with_capacity(transfers.len()),
            requested: Vec::with_capacity(transfers.len()),
            pending_id: Vec::with_capacity(transfers.len()),
            reversal_of: Vec::with_capacity(transfers.len()),
            timeout_ms: Vec::with_capacity(transfers.len()),
            expires_at: Vec::with_capacity(transfers.len()),
            effective_at: Vec::with_capacity(transfers.len()),
            created_at: Vec::with_capacity(transfers.len()),
            context: Vec::with_capacity(transfers.len()),
            rejection: Vec::with_capacity(transfers.len()),
            event_batch: places.iter().map(|place| place.map(|place| place.0)).collect(),
            event_ord: places.iter().map(|place| place.map(|place| place.1)).collect(),
            chain_seq: links.iter().map(|link| link.map(|link| link.seq)).collect(),
            chain_hash: links.iter().map(|link| link.map(|link| link.hash.to_vec())).collect(),
        };
        for transfer in transfers {
            columns.id.push(transfer.id.0);
            columns.org.push(transfer.org.0);
            columns.kind.push(transfer.kind.as_str());
            columns.code.push(&transfer.code);
            columns.postings.push(Json(&transfer.postings));
            columns.requested.push(transfer.requested_amounts.as_deref().map(Json));
            columns.pending_id.push(transfer.pending_id.map(|id| id.0));
            columns.reversal_of.push(transfer.reversal_of.map(|id| id.0));
            // The rules bound timeouts far inside i64.
            columns.timeout_ms.push(transfer.timeout_ms.and_then(|ms| i64::try_from(ms).ok()));
            columns.expires_at.push(transfer.expires_at);
            columns.effective_at.push(transfer.effective_at);
            columns.created_at.push(transfer.created_at);
            columns.context.push(Json(&transfer.context));
            columns.rejection.push(transfer.rejection.map(RejectReason::code));
        }
        columns
    }
}

/// The customers each new transfer is linked to for their timelines: those its context names
/// under `hazina.customers` (the API puts a payment's wallet owners and the customer of its
/// activity there), once each.
#[derive(Default)]
struct CustomerLinks {
    customer: Vec<Uuid>,
    transfer: Vec<Uuid>,
    at: Vec<DateTime<Utc>>,
    org: Vec<Uuid>,
}

impl CustomerLinks {
    fn new(transfers: &[Transfer]) -> Self {
        let mut links = Self::default();
        for transfer in transfers {
            let Some(customers) = transfer
                .context
                .get(crate::context::HAZINA)
                .and_then(|hazina| hazina.get(crate::context::CUSTOMERS))
                .and_then(serde_json::Value::as_array)
            else {
                continue;
            };
            let first = links.customer.len();
            for customer in customers.iter().filter_map(serde_json::Value::as_str) {
                let Ok(customer) = customer.parse::<Uuid>() else { continue };
                if links.customer[first..].contains(&customer) {
                    continue;
                }
                links.customer.push(customer);
                links.transfer.push(transfer.id.0);
                links.at.push(transfer.created_at);
                links.org.push(transfer.org.0);
            }
        }
        links
    }
}

/// The new entries as column arrays.
#[derive(Default)]
struct EntryColumns {
    account: Vec<Uuid>,
    version: Vec<i64>,
    transfer: Vec<Uuid>,
    side: Vec<&'static str>,
    amount_posted: Vec<i64>,
    amount_pending: Vec<i64>,
    debits_posted: Vec<i64>,
    credits_posted: Vec<i64>,
    debits_pending: Vec<i64>,
    credits_pending: Vec<i64>,
    effective_at: Vec<DateTime<Utc>>,
    created_at: Vec<DateTime<Utc>>,
    org: Vec<Uuid>,
}

impl EntryColumns {
    fn new(entries: &[rules::Entry]) -> Self {
        let mut columns = Self::default();
        for entry in entries {
            columns.account.push(entry.account.0);
            columns.version.push(entry.version);
            columns.transfer.push(entry.transfer.0);
            columns.side.push(entry.side.as_str());
            columns.amount_posted.push(entry.amount_posted);
            columns.amount_pending.push(entry.amount_pending);
            columns.debits_posted.push(entry.sums_after.debits_posted);
            columns.credits_posted.push(entry.sums_after.credits_posted);
            columns.debits_pending.push(entry.sums_after.debits_pending);
            columns.credits_pending.push(entry.sums_after.credits_pending);
            columns.effective_at.push(entry.effective_at);
            columns.created_at.push(entry.created_at);
            columns.org.push(entry.org.0);
        }
        columns
    }
}

/// The changed accounts' new sums and versions as column arrays.
#[derive(Default)]
struct AccountColumns {
    id: Vec<Uuid>,
    debits_posted: Vec<i64>,
    credits_posted: Vec<i64>,
    debits_pending: Vec<i64>,
    credits_pending: Vec<i64>,
    version: Vec<i64>,
    org: Vec<Uuid>,
}

impl AccountColumns {
    fn new(snapshot: &Snapshot, changed: &[AccountId]) -> Self {
        let mut columns = Self::default();
        for account in changed.iter().filter_map(|id| snapshot.accounts.get(id)) {
            columns.id.push(account.id.0);
            columns.debits_posted.push(account.sums.debits_posted);
            columns.credits_posted.push(account.sums.credits_posted);
            columns.debits_pending.push(account.sums.debits_pending);
            columns.credits_pending.push(account.sums.credits_pending);
            columns.version.push(account.version);
            columns.org.push(account.org.0);
        }
        columns
    }
}
