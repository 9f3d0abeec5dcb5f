//! The ledger against real PostgreSQL: the store, the group-commit pipeline and the
//! model-based test, in one test binary.

// A test fails by panicking, so unwrapping is how these tests assert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;
mod pipeline;
mod store;
