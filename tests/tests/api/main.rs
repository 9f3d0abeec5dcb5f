//! The HTTP API end to end, over real HTTP against real PostgreSQL: one test binary for the
//! whole area, so that the server is linked once, not once per file.

// A test fails by panicking, so unwrapping is how these tests assert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod airtime;
mod bank_payouts;
mod channels;
mod common;
mod customers;
mod docs;
mod events;
mod example;
mod finance;
mod idempotency;
mod identities;
mod isolation;
mod messaging;
mod money;
mod periods;
mod provider_payments;
mod reconciliation;
mod reminders;
mod reports;
mod tenancy;
mod timeline_messages;
mod webhooks;
