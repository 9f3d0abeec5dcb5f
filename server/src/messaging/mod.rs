//! Messaging, the service: an org's channels at messaging providers, messages sent to
//! customers and received from them, their statuses, consent, sessions and costs. It knows
//! nothing of HTTP: the API (`http::v1::messaging`) and the providers' callbacks
//! (`http::callbacks`) call it.
//!
//! A message's life, outbound:
//!
//! 1. [`Service::send`] checks the body against the channel (kind, length in SMS segments),
//!    the customer's consent and session window, then reserves its cost in the ledger (a
//!    pending transfer under the message's id, from the channel's purse to its clearing
//!    account, carrying the message's context) and records the message `queued`. A refused
//!    reservation (`insufficient_credits`) records nothing. A new number's customer, and a
//!    free message's context, are made and applied in the transaction that records the
//!    message, so a refused send leaves nothing behind.
//! 2. The worker ([`Service::run_due`]) sends due messages in batches per channel and body
//!    (`stage` `sending` before a request leaves), then applies each answer: accepted posts
//!    the provider's cost (at most the reservation) and records the provider's id; refused
//!    voids; no answer (a timeout, a 5xx) is tried again with backoff until the message's time
//!    to live, after which it is `expired` and voided. An address the operator no longer
//!    allows is not sent to: tried again as after an outage.
//! 3. Status reports ([`Service::apply_statuses`]) move a message only to a status of higher
//!    rank, so duplicates and late reports change nothing; a report that names a provider id
//!    we have not recorded yet is parked and applied when the id is recorded, and a watermark
//!    (Messenger's delivery or read up to a time) is kept and applied to messages whose ids
//!    are recorded after it came.
//!
//! Inbound messages and session steps ([`Service::receive`]) make the customer on first
//! contact, record the message, open the customer's 24-hour window, and apply STOP-style
//! keywords to consent. A step the provider waits on (USSD, voice) is answered with the app's
//! reply, from its webhook's response or the stream's reply endpoint, within the provider's
//! deadline, or with the channel's fallback (`replies.rs`).

mod channels;
mod inbound;
mod outbound;
mod providers;
mod replies;
mod reports;
mod store;
mod worker;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use deadpool_postgres::Pool;
use hazina_ledger::pipeline::{Pipeline, SubmitError};
use hazina_ledger::store::{Store, StoreError};

pub use channels::{ChannelRecord, NewChannel, ProviderKind, check_new};
pub use inbound::{Received, SessionReply};
pub use outbound::{Job, MessageView, NewJob, NewMessage, Recipient, StatusChange, check_body};
pub use replies::{ReplySource, StepReply, fits as check_reply};

use crate::code::Code;
use crate::customers::CustomerError;
use crate::money::MoneyError;
use crate::secrets::Sealer;

/// How the service behaves; the operator's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Most messages one worker round sends.
    pub send_batch_max: usize,
    /// Most recipients one provider request carries (Africa's Talking takes a list).
    pub recipients_per_request_max: usize,
    /// How many provider requests are in flight at once.
    pub concurrency: usize,
    /// First wait before trying a send again; doubled each attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How long a message may wait to be taken by its provider before it is `expired`.
    pub time_to_live: Duration,
    /// How long a provider request may take.
    pub provider_timeout: Duration,
    /// How long the app has to answer a session step (USSD, voice); Africa's Talking waits
    /// about 10 s for the whole round trip, so the app gets less.
    pub reply_deadline: Duration,
    /// Which addresses channels may call (the payments engine's rule: the providers' own
    /// hosts over https, anything else as the operator allows).
    pub provider_hosts: crate::payments::ProviderHosts,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            send_batch_max: 5_000,
            recipients_per_request_max: 1_000,
            concurrency: 16,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            time_to_live: Duration::from_secs(24 * 3600),
            provider_timeout: Duration::from_secs(15),
            reply_deadline: Duration::from_secs(6),
            provider_hosts: crate::payments::ProviderHosts::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    /// No such thing in the org (another org's is indistinguishable from a missing one).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// Well-formed but unacceptable: `code` says why.
    #[error("{detail}")]
    Invalid { code: Code, detail: String },
    /// The request conflicts with what exists (`code` says how).
    #[error("{detail}")]
    Conflict { code: Code, detail: String },
    /// A callback's body is not what its provider sends.
    #[error("the callback is unreadable: {0}")]
    Unreadable(String),
    /// A channel's credentials cannot be sealed or opened with this server's key.
    #[error("the channel's credentials cannot be read; the operator must check the key file")]
    CredentialsUnreadable,
    /// The ledger refused to post or void a reservation we hold.
    #[error("the ledger refused to {what} a message's reservation: {reason}")]
    LedgerRefused { what: &'static str, reason: &'static str },
    /// A stored value this version does not know: never guessed at.
    #[error("a stored value is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Customer(#[from] CustomerError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl MessagingError {
    pub(crate) fn invalid(code: Code, detail: impl Into<String>) -> Self {
        Self::Invalid { code, detail: detail.into() }
    }

    /// The stable code a front door answers with.
    pub fn code(&self) -> Code {
        match self {
            Self::NotFound(_) => Code::NotFound,
            Self::Invalid { code, .. } | Self::Conflict { code, .. } => *code,
            Self::Unreadable(_) => Code::UnreadableCallback,
            Self::CredentialsUnreadable => Code::CredentialsUnreadable,
            Self::LedgerRefused { .. } => Code::LedgerRefused,
            Self::Customer(error) => error.code(),
            Self::Money(error) => error.code(),
            Self::Submit(SubmitError::Overloaded) => Code::Overloaded,
            Self::Corrupt(_) => Code::InternalError,
            // As the HTTP layer answers them: the database or the ledger failed, try again.
            Self::Submit(_) | Self::Store(_) | Self::Database(_) | Self::Pool(_) => {
                Code::Unavailable
            }
        }
    }
}

/// The messaging service.
#[derive(Debug)]
pub struct Service {
    pool: Pool,
    store: Store,
    pipeline: Pipeline,
    sealer: Sealer,
    webhooks: Arc<crate::webhooks::Service>,
    settings: RwLock<Settings>,
    wake: tokio::sync::Notify,
    /// Status reports waiting to be applied together.
    reports: Arc<reports::Reports>,
    /// The session steps this server waits on a reply to.
    waiting: replies::Waiting,
}

impl Service {
    pub fn new(
        pool: Pool,
        store: Store,
        pipeline: Pipeline,
        sealer: Sealer,
        webhooks: Arc<crate::webhooks::Service>,
    ) -> Self {
        Self {
            pool,
            store,
            pipeline,
            sealer,
            webhooks,
            settings: RwLock::new(Settings::default()),
            wake: tokio::sync::Notify::new(),
            reports: Arc::default(),
            waiting: replies::Waiting::default(),
        }
    }

    /// Replaces the settings.
    pub fn configure(&self, settings: Settings) {
        *self.settings.write().unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
    }

    pub fn settings(&self) -> Settings {
        self.settings.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// What the worker waits on besides its interval: a message queued to send now.
    pub fn wake_signal(&self) -> &tokio::sync::Notify {
        &self.wake
    }
}
