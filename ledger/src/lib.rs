//! Hazina's double-entry ledger.
//!
//! [`rules`] is the pure core: account snapshots and an ordered batch of transfer requests in,
//! outcomes, entries and new balances out, with no clock, database or randomness inside.
//! [`store`] is the PostgreSQL store around it; the rules never import the store.
//! [`chain`] is the journal's hash chain: how a transfer is encoded and hashed.
//! [`pipeline`] batches concurrent submissions into few database transactions (group commit).

pub mod chain;
pub mod context;
pub mod ids;
pub mod money;
pub mod pipeline;
pub mod rules;
pub mod store;

pub use ids::{AccountId, CustomerId, OrgId, TransferId};
pub use money::{Currency, Money, MoneyError};
