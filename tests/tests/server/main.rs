//! The server's parts in process, against real PostgreSQL: the HTTP probes, the background
//! workers, `hazina bench`, the schema's org rule, and the test harness itself, in one test
//! binary.

// A test fails by panicking, so unwrapping is how these tests assert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bench;
mod harness;
mod http;
mod schema;
mod workers;
