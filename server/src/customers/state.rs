//! A customer's state: what the org knows about the customer and what one app keeps for it,
//! read at once.

use std::collections::BTreeMap;

use deadpool_postgres::Pool;
use hazina_ledger::rules::AccountKind;
use hazina_ledger::store::{Account, Store};
use hazina_ledger::{CustomerId, OrgId};
use uuid::Uuid;

use super::activities::{self, ActivitySession};
use super::data::{self, AppData, DataValue, SecondaryId, Tag};
use super::reminders::{self, Reminder};
use super::timeline::{self, Payment};
use super::{CustomerError, CustomerView};
use crate::payments::Engine;

/// Most wallets a customer's state shows.
const WALLETS_MAX: i64 = 1_000;

/// Everything the customer's state shows. (The HTTP layer shows the wallets as money's
/// views, so this is not the response itself.)
#[derive(Debug)]
pub struct Overview {
    pub customer: CustomerView,
    pub tags: Vec<Tag>,
    pub secondary_ids: Vec<SecondaryId>,
    pub metadata: BTreeMap<String, DataValue>,
    /// The app's data; `None` for an org key or when the app has none.
    pub app_data: Option<AppData>,
    /// The app's reminders, soonest first; empty for an org key.
    pub reminders: Vec<Reminder>,
    pub wallets: Vec<Account>,
    /// The newest payments, newest first.
    pub payments: Vec<Payment>,
    /// The sessions of the newest activities, the most recently active first.
    pub activity_sessions: Vec<ActivitySession>,
}

/// The customer's state, with what `app` keeps for it (nothing for an org key, `None`).
pub async fn overview(
    pool: &Pool,
    store: &Store,
    engine: &Engine,
    org: OrgId,
    customer: CustomerId,
    app: Option<Uuid>,
) -> Result<Overview, CustomerError> {
    let client = pool.get().await?;
    let customer = super::store::customer(&client, org, customer).await?;
    let id = CustomerId(customer.customer_id);
    let (app_data, reminders) = match app {
        Some(app) => (
            data::app_data(&client, org, id, app).await?,
            reminders::reminders(&client, org, id, app).await?,
        ),
        None => (None, Vec::new()),
    };
    let payment_ids = timeline::recent_payment_ids(&client, org, id).await?;
    let wallets = store.accounts(org, AccountKind::Wallet, Some(id), None, WALLETS_MAX).await?;
    Ok(Overview {
        customer,
        tags: data::tags(&client, org, id).await?,
        secondary_ids: data::secondary_ids(&client, org, id).await?,
        metadata: data::metadata(&client, org, id).await?,
        app_data,
        reminders,
        wallets,
        payments: timeline::payments(store, engine, org, &payment_ids).await?,
        activity_sessions: activities::sessions(&client, org, id).await?,
    })
}
