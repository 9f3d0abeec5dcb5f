//! Reconciliation: matching a provider's or bank's statement to the ledger.

pub mod matching;
