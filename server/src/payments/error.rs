//! What can go wrong with a payment through a provider, in the payments service's own words;
//! each front door says it in its own (the HTTP layer: `impl From<PaymentError> for ApiError`).

use hazina_ledger::pipeline::SubmitError;
use hazina_ledger::store::StoreError;

use crate::code::Code;
use crate::customers::CustomerError;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// No such thing in the org (another org's is indistinguishable from a missing one).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// Well-formed but unacceptable: `code` says why.
    #[error("{detail}")]
    Invalid { code: Code, detail: String },
    /// Clashes with what exists (a channel number the org already has): `code` says what.
    #[error("{detail}")]
    Conflict { code: Code, detail: String },
    /// The ledger refused to post or void a reservation we hold: the books were changed
    /// behind our back, so we stop rather than record a lie.
    #[error("the ledger refused to {what} the reservation: {reason}")]
    LedgerRefused { what: String, reason: &'static str },
    /// A callback's body is not what its provider sends.
    #[error("the callback is unreadable: {0}")]
    Unreadable(String),
    /// The provider could not be asked.
    #[error("{0}")]
    ProviderUnavailable(String),
    /// A channel's credentials cannot be sealed or opened with this server's key.
    #[error("the channel's credentials cannot be read; the operator must check the key file")]
    CredentialsUnreadable,
    /// A stored value this version does not know: never guessed at.
    #[error("a stored value is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Customer(#[from] CustomerError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl PaymentError {
    pub(crate) fn invalid(code: Code, detail: impl Into<String>) -> Self {
        Self::Invalid { code, detail: detail.into() }
    }

    /// The stable code a front door answers with.
    pub fn code(&self) -> Code {
        match self {
            Self::NotFound(_) => Code::NotFound,
            Self::Invalid { code, .. } | Self::Conflict { code, .. } => *code,
            Self::Customer(error) => error.code(),
            Self::LedgerRefused { .. } => Code::LedgerRefused,
            Self::Unreadable(_) => Code::UnreadableCallback,
            Self::ProviderUnavailable(_) => Code::ProviderUnavailable,
            Self::CredentialsUnreadable => Code::CredentialsUnreadable,
            Self::Submit(SubmitError::Overloaded) => Code::Overloaded,
            Self::Corrupt(_) => Code::InternalError,
            Self::Submit(_) | Self::Store(_) | Self::Database(_) | Self::Pool(_) => {
                Code::Unavailable
            }
        }
    }
}

/// A stored currency this version cannot read.
pub(crate) fn stored_currency(code: &str) -> Result<hazina_ledger::Currency, PaymentError> {
    hazina_ledger::Currency::from_code(code)
        .map_err(|_| PaymentError::Corrupt(format!("unknown currency {code:?}")))
}
