//! What a provider does for the payments engine. Each provider is one implementation of
//! [`Adapter`] (M-Pesa in `mpesa.rs`, MoMo in `momo.rs`, Africa's Talking airtime in
//! `airtime.rs`), and the engine picks one with [`adapter!`], the only `match` on the provider
//! for sending, asking and reading: adding a provider is a `Provider` variant, an arm there,
//! and the compiler asks for the rest.

use hazina_providers::{ParseError, StatusReport};
use uuid::Uuid;

use super::{Channel, Engine, PaymentError, QueryOutcome, Record, Recovery, SendOutcome};

pub(crate) trait Adapter {
    /// Whether the provider receives payments customers make unprompted (C2B).
    const RECEIVES_UNPROMPTED: bool;

    /// The reference our request carries for the payment `id` (the provider's
    /// idempotency key, where it has one).
    fn our_reference(id: Uuid) -> String;

    /// Whether the provider would take this payment at all (its amount, number, fields).
    fn check(engine: &Engine, channel: &Channel, record: &Record) -> Result<(), String>;

    /// Sends the payment's request, under its one key.
    async fn send(engine: &Engine, channel: &Channel, record: &Record) -> SendOutcome;

    /// Asks the provider about a sent payment.
    async fn query(engine: &Engine, channel: &Channel, record: &Record) -> QueryOutcome;

    /// What a payment caught mid-send needs: by default, to be asked about.
    async fn recover(engine: &Engine, channel: &Channel, record: &Record) -> Recovery {
        Recovery::Query(Self::query(engine, channel, record).await)
    }

    /// Reads a callback of `kind` (the last part of its URL).
    fn read_callback(kind: &str, body: &[u8]) -> Result<StatusReport, ParseError>;

    /// Registers the channel's URLs for unprompted payments with the provider.
    async fn register_unprompted(engine: &Engine, channel: &Channel) -> Result<(), PaymentError>;
}

/// Safaricom M-Pesa (Daraja).
#[derive(Debug)]
pub(crate) struct Mpesa;

/// MTN MoMo.
#[derive(Debug)]
pub(crate) struct Momo;

/// Africa's Talking airtime.
#[derive(Debug)]
pub(crate) struct Airtime;

/// A bank, through ISO 20022 files.
#[derive(Debug)]
pub(crate) struct Bank;

/// Evaluates `$body` with `$adapter` naming the [`Adapter`] of `$provider`.
macro_rules! adapter {
    ($provider:expr, $adapter:ident => $body:expr) => {
        match $provider {
            $crate::payments::Provider::Mpesa => {
                type $adapter = $crate::payments::provider::Mpesa;
                $body
            }
            $crate::payments::Provider::Momo => {
                type $adapter = $crate::payments::provider::Momo;
                $body
            }
            $crate::payments::Provider::Africastalking => {
                type $adapter = $crate::payments::provider::Airtime;
                $body
            }
            $crate::payments::Provider::Bank => {
                type $adapter = $crate::payments::provider::Bank;
                $body
            }
        }
    };
}
pub(crate) use adapter;
