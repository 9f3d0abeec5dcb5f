//! The `hazina` binary and the server library's edges end to end, in one test binary: the
//! process's life cycle, the embedded PostgreSQL launcher, and the fuzzing of the API's input
//! readers. The fault suite stays a binary of its own (`chaos.rs`): it judges recoveries
//! against wall-clock limits, so it must not share the machine with these tests' threads.

// A test fails by panicking, so unwrapping is how these tests assert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod common;
mod embedded;
mod fuzz_api_input;
