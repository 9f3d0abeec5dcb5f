//! Reconciliation, the service: proving that what the ledger says moved through a payment
//! channel is what the provider or the bank says moved.
//!
//! - **Imports** (`import.rs`): a statement file (M-Pesa's, MTN MoMo's, a bank's camt.053/054
//!   or MT940) read by `hazina_providers::statements` into lines, kept once per channel however
//!   many files carry them, each with its first file and place there.
//! - **Runs** (`run.rs`): the channel's unmatched lines over a period against the ledger's
//!   unmatched movements on its clearing account, matched by the pure engine (`matching.rs`);
//!   matches recorded, and what did not match (or matched with a difference) raised as
//!   exceptions, each once.
//! - **Exceptions** (`exceptions.rs`): an owner, a note, and a resolution — matched by hand, an
//!   adjustment booked by a ledger transfer, written off with a reason, recorded as the
//!   received payment it was, or the stuck payment it settles — never an edit of history.
//! - **Drift** (`drift.rs`): per day, the clearing account's balance against the statement's.
//!
//! This module knows no HTTP.

mod drift;
mod exceptions;
mod import;
pub mod matching;
mod run;

use std::sync::Arc;

use deadpool_postgres::Pool;
use hazina_ledger::OrgId;
use hazina_ledger::pipeline::{Pipeline, SubmitError};
use hazina_ledger::store::{Store, StoreError};
use uuid::Uuid;

use crate::code::Code;
use crate::payments::{Channel, Engine, PaymentError};

pub use drift::{Drift, DriftDay};
pub use exceptions::{
    Exception, ExceptionFilter, ExceptionKind, ExceptionStatus, Resolution, Resolve,
};
pub use import::{ImportSummary, NewImport, Progress};
pub use matching::{Direction, Rules};
pub use run::{NewRun, RunSummary};

/// A failure of reconciliation, or a refusal.
#[derive(Debug, thiserror::Error)]
pub enum ReconciliationError {
    /// No such thing in the org (another org's is indistinguishable from a missing one).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// Well-formed but unacceptable: `code` says why.
    #[error("{detail}")]
    Invalid { code: Code, detail: String },
    /// Clashes with what is recorded: `code` says what.
    #[error("{detail}")]
    Conflict { code: Code, detail: String },
    /// A stored value this version does not know: never guessed at.
    #[error("a stored value is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl ReconciliationError {
    pub(crate) fn invalid(code: Code, detail: impl Into<String>) -> Self {
        Self::Invalid { code, detail: detail.into() }
    }

    /// The stable code a front door answers with.
    #[must_use]
    pub fn code(&self) -> Code {
        match self {
            Self::NotFound(_) => Code::NotFound,
            Self::Invalid { code, .. } | Self::Conflict { code, .. } => *code,
            Self::Payment(error) => error.code(),
            Self::Submit(SubmitError::Overloaded) => Code::Overloaded,
            Self::Corrupt(_) => Code::InternalError,
            Self::Submit(_) | Self::Store(_) | Self::Database(_) | Self::Pool(_) => {
                Code::Unavailable
            }
        }
    }
}

/// The reconciliation service.
#[derive(Debug)]
pub struct Service {
    pool: Pool,
    store: Store,
    pipeline: Pipeline,
    payments: Arc<Engine>,
}

impl Service {
    #[must_use]
    pub fn new(pool: Pool, store: Store, pipeline: Pipeline, payments: Arc<Engine>) -> Self {
        Self { pool, store, pipeline, payments }
    }

    /// The org's payment channel, or `NotFound`.
    async fn channel(&self, org: OrgId, id: Uuid) -> Result<Channel, ReconciliationError> {
        self.payments.channel(org, id).await?.ok_or(ReconciliationError::NotFound("channel"))
    }
}

/// A binary `COPY` into a table (`statement` names it and its columns, `types` their types).
async fn copy_in(
    tx: &deadpool_postgres::Transaction<'_>,
    statement: &str,
    types: &[tokio_postgres::types::Type],
) -> Result<tokio_postgres::binary_copy::BinaryCopyInWriter, ReconciliationError> {
    let sink = tx.copy_in(statement).await?;
    Ok(tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, types))
}

/// Money in or out, as stored.
fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::In => "in",
        Direction::Out => "out",
    }
}

fn direction_from(name: &str) -> Result<Direction, ReconciliationError> {
    match name {
        "in" => Ok(Direction::In),
        "out" => Ok(Direction::Out),
        other => Err(ReconciliationError::Corrupt(format!("direction {other:?}"))),
    }
}
