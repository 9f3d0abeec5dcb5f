//! The finance web UI (`/ui`) in a real browser: headless Chromium (the Debian package
//! `chromium`) driven over CDP by `chromiumoxide`, against a real server on a
//! fresh database; and its forms' protections over plain HTTP (reqwest). `pages.rs` and
//! `forms.rs`: the finance pages and sessions; `reconciliation.rs` and `ops_forms.rs`: the
//! reconciliation, imports, stuck-payment and period-close pages and their forms (`ops.rs`
//! has what those share).
//!
//! Needs Chromium, so it is a test target of its own behind the `browser` feature:
//! `cargo test -p hazina-tests --features browser --test browser`. `HAZINA_CHROMIUM` names
//! another binary than `/usr/bin/chromium`. Every page visited is saved as a PNG into
//! `HAZINA_SCREENSHOT_DIR` (default `target/ui-screenshots/`).

// A test fails by panicking, so unwrapping is how these tests assert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod forms;
mod harness;
mod ops;
mod ops_forms;
mod pages;
mod reconciliation;
