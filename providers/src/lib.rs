//! Payment provider adapters: one module per operator or bank.
//!
//! Each adapter will hold the provider's wire types (with its exact field names), pure
//! transformers between those and the ledger's types, and a thin HTTP client. Providers never
//! touch the database. The adapters arrive with the payment providers issue; this crate exists
//! now so that the workspace has its final shape and the dependency direction is fixed:
//! `providers -> ledger` (types only).

/// The ledger types an adapter speaks in, re-exported so adapters need one import path.
pub use hazina_ledger::money;
