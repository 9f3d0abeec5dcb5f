//! One customer adopting another's state (a merge): the other's numbers, secondary ids, tags,
//! metadata, app data, reminders, activities, timeline and wallets' balances become the
//! adopting customer's, and the other's id resolves to it from then on.
//!
//! Money moves first, through the ledger, never by editing history: each of the other's
//! wallets with a balance is emptied into the adopting customer's wallet of the same wallet id
//! (made when missing) by a transfer whose id is derived from the wallet and its version, and
//! then closed, so that it takes no more money. The rest moves after, in one database
//! transaction with the alias and the `customer.merged` event. A crash between the two leaves
//! both customers, the other's wallets closed and empty; the same request again finds nothing
//! to move in the ledger (a transfer replayed under its derived id moves nothing twice) and
//! finishes the data. A merge asked again once done answers the customer as it is.
//!
//! On a conflict the adopting customer's own value wins: a tag, metadata key, app's data or
//! reminder key both have is the adopting customer's; the other's is dropped. Limits (tags,
//! numbers, …) are not checked: a merged customer may hold more than a request may set, and
//! then takes no more until it holds fewer.
//!
//! Refused before anything moves: adopting itself; the other having pending transfers on a
//! wallet, or a wallet whose wallet id the adopting customer holds in another currency.

use deadpool_postgres::Pool;
use hazina_ledger::pipeline::Pipeline;
use hazina_ledger::rules::{AccountKind, Action, Outcome, Posting, Side, TransferRequest};
use hazina_ledger::store::{Account, NewAccount, Store, StoreError};
use hazina_ledger::{CustomerId, Money, OrgId, TransferId};
use uuid::Uuid;

use super::store::{check_on, customer as view};
use super::{CustomerError, CustomerView};
use crate::code::Code;
use crate::events::{self, EventType, NewEvent, types::CustomerMergedData};

/// Most wallets of the other customer a merge moves.
const WALLETS_MAX: i64 = 1_000;

/// How many times a wallet is emptied and closed while payments keep arriving at it.
const DRAIN_ATTEMPTS_MAX: usize = 5;

/// What a merge's transfers are recorded as.
const MERGE_CODE: &str = "customer_merge";

/// The namespace of the ids of a merge's transfers.
const MERGE_NAMESPACE: Uuid = Uuid::from_u128(0x6d65_7267_6500_4e00_8000_6869_7a61_6e61);

/// The customer `customer` adopts `other`: see the module. Answers the customer as it is
/// after, and whether this request merged (false when `other` was adopted already).
///
/// # Errors
///
/// `NotFound` for a customer that is not the org's; `Invalid` (`cannot_adopt_itself`);
/// `Conflict` (`merge_pending_transfers`, `merge_wallet_conflict`); `Conflicting` when
/// payments kept arriving at the other's wallets (retry); the ledger's and the database's.
pub async fn adopt(
    pool: &Pool,
    store: &Store,
    pipeline: &Pipeline,
    org: OrgId,
    customer: CustomerId,
    other: Uuid,
) -> Result<(CustomerView, bool), CustomerError> {
    let client = pool.get().await?;
    let adopting = check_on(&client, org, customer.0).await?;
    // By either of its ids: an adopted customer's id names the one that adopted it.
    if other == customer.0 || other == adopting.0 {
        return Err(CustomerError::invalid(
            Code::CannotAdoptItself,
            "a customer cannot adopt itself",
        ));
    }
    let adopted = check_on(&client, org, other).await?;
    if adopted == adopting {
        return Ok((view(&client, org, adopting).await?, false));
    }
    drop(client);
    let wallets =
        store.accounts(org, AccountKind::Wallet, Some(adopted), None, WALLETS_MAX).await?;
    for wallet in &wallets {
        check_wallet(store, org, adopting, wallet).await?;
    }
    for wallet in &wallets {
        drain(store, pipeline, org, adopting, adopted, wallet).await?;
    }
    move_data(pool, org, adopting, adopted).await
}

/// Refuses a wallet that cannot be moved: pending transfers, a negative balance, or the
/// adopting customer holding its wallet id in another currency.
async fn check_wallet(
    store: &Store,
    org: OrgId,
    adopting: CustomerId,
    wallet: &Account,
) -> Result<(), CustomerError> {
    let sums = wallet.sums;
    if sums.debits_pending != 0 || sums.credits_pending != 0 {
        return Err(CustomerError::conflict(
            Code::MergePendingTransfers,
            "the customer to adopt has pending transfers on a wallet; retry once they are resolved",
        ));
    }
    let wallet_id = wallet.wallet_id.as_deref().unwrap_or_default();
    let conflict = || {
        CustomerError::conflict(
            Code::MergeWalletConflict,
            format!("the wallet {wallet_id:?} of the customer to adopt cannot be moved"),
        )
    };
    if sums.posted(wallet.normal_side) < 0 {
        return Err(conflict());
    }
    match store.wallet(org, adopting, wallet_id).await? {
        Some(own) if own.currency != wallet.currency => Err(conflict()),
        Some(own) if own.closed && sums.posted(wallet.normal_side) > 0 => Err(conflict()),
        _ => Ok(()),
    }
}

/// Moves the wallet's balance to the adopting customer's wallet of the same wallet id, then
/// closes it; again while money arrives between the two.
async fn drain(
    store: &Store,
    pipeline: &Pipeline,
    org: OrgId,
    adopting: CustomerId,
    adopted: CustomerId,
    wallet: &Account,
) -> Result<(), CustomerError> {
    for _ in 0..DRAIN_ATTEMPTS_MAX {
        let account =
            store.account(org, wallet.id).await?.ok_or(CustomerError::NotFound("wallet"))?;
        let sums = account.sums;
        if sums.debits_pending != 0 || sums.credits_pending != 0 {
            return Err(CustomerError::conflict(
                Code::MergePendingTransfers,
                "the customer to adopt has pending transfers on a wallet; retry once they are \
                 resolved",
            ));
        }
        let posted = sums.posted(account.normal_side);
        if account.closed && posted == 0 {
            return Ok(());
        }
        if posted > 0 {
            let minor = i64::try_from(posted).map_err(|_| {
                CustomerError::Corrupt(format!("wallet {} holds more than 64 bits", account.id.0))
            })?;
            let target = target_wallet(store, org, adopting, &account).await?;
            let amount = Money::from_minor(account.currency, minor);
            let (from_side, to_side) = match account.normal_side {
                Side::Credit => (Side::Debit, Side::Credit),
                Side::Debit => (Side::Credit, Side::Debit),
            };
            let request = TransferRequest {
                // The wallet's version names its balance: asked again with the wallet
                // unchanged, this is a replay; changed, a transfer of what it holds now.
                id: TransferId(Uuid::new_v5(
                    &MERGE_NAMESPACE,
                    format!("{}:{}:{}", org.0, account.id.0, account.version).as_bytes(),
                )),
                id_is_new: false,
                org,
                action: Action::Post {
                    postings: vec![
                        Posting { account: account.id, side: from_side, amount },
                        Posting { account: target.id, side: to_side, amount },
                    ],
                },
                code: MERGE_CODE.into(),
                effective_at: None,
                context: std::sync::Arc::new(serde_json::Map::from_iter([(
                    "merge".to_owned(),
                    serde_json::json!({
                        "customerId": adopting.0,
                        "mergedCustomerId": adopted.0,
                        "walletId": account.wallet_id,
                    }),
                )])),
            };
            match pipeline.submit(request).await? {
                Outcome::Accepted { .. } => {}
                // The balance changed under it (a payment out): read it again.
                Outcome::Rejected(reason) => {
                    tracing::info!(reason = reason.code(), "a merge's transfer was refused");
                    continue;
                }
            }
        }
        match store.close_account(org, account.id).await {
            Ok(_) => return Ok(()),
            // Money arrived since: move it too.
            Err(StoreError::AccountNotEmpty) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Err(CustomerError::Conflicting)
}

/// The adopting customer's wallet with the wallet id of `wallet`, made when missing.
async fn target_wallet(
    store: &Store,
    org: OrgId,
    adopting: CustomerId,
    wallet: &Account,
) -> Result<Account, CustomerError> {
    let wallet_id = wallet.wallet_id.clone().unwrap_or_default();
    if let Some(own) = store.wallet(org, adopting, &wallet_id).await? {
        return Ok(own);
    }
    let mut new = NewAccount::new(org, AccountKind::Wallet, wallet.currency);
    new.customer = Some(adopting);
    new.wallet_id = Some(wallet_id.clone());
    match store.create_account(&new).await {
        Ok(account) => Ok(account),
        // Made by a request in between.
        Err(StoreError::AccountExists) => {
            store.wallet(org, adopting, &wallet_id).await?.ok_or(CustomerError::Conflicting)
        }
        Err(error) => Err(error.into()),
    }
}

/// Moves everything but money to the adopting customer, points the other's id (and the ids it
/// had adopted) at it, removes the other and records `customer.merged`, in one transaction.
async fn move_data(
    pool: &Pool,
    org: OrgId,
    adopting: CustomerId,
    adopted: CustomerId,
) -> Result<(CustomerView, bool), CustomerError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let mut ids = [adopting.0, adopted.0];
    ids.sort_unstable();
    let locked = transaction
        .query(
            "SELECT id FROM customers WHERE org_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE",
            &[&org.0, &ids.as_slice()],
        )
        .await?;
    if locked.len() < 2 {
        // Another request merged one of them meanwhile: answer as things now are.
        drop(transaction);
        let adopting = check_on(&client, org, adopting.0).await?;
        let now = check_on(&client, org, adopted.0).await?;
        if now != adopting {
            return Err(CustomerError::Conflicting);
        }
        return Ok((view(&client, org, adopting).await?, false));
    }
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&org.0, &adopting.0, &adopted.0];
    for statement in MOVE_DATA {
        transaction.execute(*statement, &params).await?;
    }
    let found = view(&transaction, org, adopting).await?;
    let merged = CustomerMergedData { customer_id: adopting.0, merged_customer_id: adopted.0 };
    let event = NewEvent::of(EventType::CustomerMerged, &merged).customer(Some(adopting.0));
    events::record(&transaction, org, &[event]).await?;
    transaction.commit().await?;
    Ok((found, true))
}

/// What a merge moves, in order: `$1` the org, `$2` the adopting customer, `$3` the other.
/// Where both have a row under one key, the adopting customer's stays and the other's goes.
/// (Every statement names all three, as one parameter list serves them all; the deletes never
/// touch the adopting customer's rows.)
const MOVE_DATA: &[&str] = &[
    "UPDATE customer_numbers SET customer_id = $2 WHERE org_id = $1 AND customer_id = $3",
    "UPDATE customer_secondary_ids SET customer_id = $2 WHERE org_id = $1 AND customer_id = $3",
    "DELETE FROM customer_tags AS t WHERE org_id = $1 AND customer_id = $3
         AND EXISTS (SELECT 1 FROM customer_tags AS own
             WHERE own.org_id = $1 AND own.customer_id = $2 AND own.key = t.key)",
    "UPDATE customer_tags SET customer_id = $2 WHERE org_id = $1 AND customer_id = $3",
    "DELETE FROM customer_metadata AS m WHERE org_id = $1 AND customer_id = $3
         AND EXISTS (SELECT 1 FROM customer_metadata AS own
             WHERE own.org_id = $1 AND own.customer_id = $2 AND own.key = m.key)",
    "UPDATE customer_metadata SET customer_id = $2 WHERE org_id = $1 AND customer_id = $3",
    "DELETE FROM app_data AS d WHERE org_id = $1 AND customer_id = $3
         AND EXISTS (SELECT 1 FROM app_data AS own
             WHERE own.org_id = $1 AND own.customer_id = $2 AND own.app_id = d.app_id)",
    "UPDATE app_data SET customer_id = $2 WHERE org_id = $1 AND customer_id = $3",
    "DELETE FROM reminders AS r WHERE org_id = $1 AND customer_id = $3
         AND EXISTS (SELECT 1 FROM reminders AS own
             WHERE own.org_id = $1 AND own.customer_id = $2 AND own.app_id = r.app_id
                 AND own.key = r.key)",
    "UPDATE reminders SET customer_id = $2 WHERE org_id = $1 AND customer_id = $3",
    "UPDATE activities SET customer_id = $2 WHERE org_id = $1 AND customer_id = $3",
    // Messages and sessions follow their customer; of the consent on one channel, the
    // adopting customer's stays (the other's last message still opens the window).
    "UPDATE messages SET customer_id = $2 WHERE org_id = $1 AND customer_id = $3",
    "UPDATE messaging_sessions SET customer_id = $2 WHERE org_id = $1 AND customer_id = $3",
    "INSERT INTO messaging_contacts AS own (org_id, customer_id, channel_id, consent,
         consent_source, consent_updated_at, last_inbound_at)
         SELECT org_id, $2, channel_id, consent, consent_source, consent_updated_at,
             last_inbound_at
         FROM messaging_contacts WHERE org_id = $1 AND customer_id = $3
         ON CONFLICT (org_id, customer_id, channel_id) DO UPDATE SET
             consent = coalesce(own.consent, EXCLUDED.consent),
             consent_source = coalesce(own.consent_source, EXCLUDED.consent_source),
             consent_updated_at = coalesce(own.consent_updated_at, EXCLUDED.consent_updated_at),
             last_inbound_at = greatest(own.last_inbound_at, EXCLUDED.last_inbound_at)",
    "DELETE FROM messaging_contacts WHERE org_id = $1 AND customer_id = $3 AND customer_id <> $2",
    // A transfer between the two is on both timelines: once is enough.
    "INSERT INTO customer_transfers (org_id, customer_id, transfer_id, at)
         SELECT org_id, $2, transfer_id, at FROM customer_transfers
         WHERE org_id = $1 AND customer_id = $3
         ON CONFLICT DO NOTHING",
    "DELETE FROM customer_transfers WHERE org_id = $1 AND customer_id = $3 AND customer_id <> $2",
    // The ids the other had adopted now resolve to the adopting customer: one hop, always.
    "UPDATE customer_aliases SET customer_id = $2 WHERE org_id = $1 AND customer_id = $3",
    "INSERT INTO customer_aliases (org_id, old_customer_id, customer_id) VALUES ($1, $3, $2)",
    "DELETE FROM customers WHERE org_id = $1 AND id = $3 AND id <> $2",
];
