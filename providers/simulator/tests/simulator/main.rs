//! The M-Pesa and MoMo simulators over real loopback HTTP, on their own and driven by the
//! providers' clients, in one test binary.

// A test fails by panicking, so unwrapping is how these tests assert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_momo;
mod client_mpesa;
mod common;
mod simulator_africastalking;
mod simulator_meta;
mod simulator_momo;
mod simulator_mpesa;
mod simulator_smtp;
mod simulator_smtp_tls;
mod simulator_telegram;
