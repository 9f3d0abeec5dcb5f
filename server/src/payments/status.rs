//! A payment's status as the platform reports it, for payments through a provider and for
//! payments between purses and wallets alike.

use hazina_ledger::rules::RejectReason;

use super::PaymentError;

macro_rules! statuses {
    ($($(#[doc = $doc:literal])+ $variant:ident = $name:literal,)+) => {
        /// The platform's status of a payment.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum PaymentStatus {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl PaymentStatus {
            /// The status as it is stored and sent.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            /// A stored status; one this version does not know is corrupt, never guessed.
            pub fn from_stored(name: &str) -> Result<Self, PaymentError> {
                match name {
                    $($name => Ok(Self::$variant),)+
                    other => Err(PaymentError::Corrupt(format!("unknown payment status {other:?}"))),
                }
            }
        }
    };
}

statuses! {
    /// Reserved, not yet sent to the provider.
    Queued = "queued",
    /// Sent; the provider's word on it is awaited.
    PendingConfirmation = "pending_confirmation",
    /// The money moved.
    Success = "success",
    /// The provider refused it or it failed there; the reservation was released.
    Failed = "failed",
    /// A trusted answer disagreed with the payment: nothing moves until an operator looks.
    HeldForReview = "held_for_review",
    /// The paying account has too little available.
    InsufficientFunds = "insufficient_funds",
    /// An account is missing or closed.
    InvalidPurse = "invalid_purse",
    /// The id was used before for a different payment.
    DuplicateRequest = "duplicate_request",
    /// The ledger refused it for another reason.
    InvalidRequest = "invalid_request",
}

impl PaymentStatus {
    /// The status of a payment the ledger accepted (`None`) or refused for `reason`.
    pub fn of_outcome(reason: Option<RejectReason>) -> Self {
        match reason {
            None => Self::Success,
            Some(RejectReason::ExceedsCredits | RejectReason::ExceedsDebits) => {
                Self::InsufficientFunds
            }
            Some(RejectReason::AccountNotFound | RejectReason::AccountClosed) => Self::InvalidPurse,
            Some(reason)
                if reason.code().starts_with("exists_with_different")
                    || reason.code() == "id_already_used" =>
            {
                Self::DuplicateRequest
            }
            Some(_) => Self::InvalidRequest,
        }
    }

    /// Whether the payment may still move money (or already did).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Queued | Self::PendingConfirmation | Self::HeldForReview
        )
    }
}

impl PaymentStatus {
    /// The platform's numeric code of the status (its `PaymentStatus` enum). Held for review
    /// is, to the platform, still awaiting confirmation.
    pub fn platform_code(self) -> u16 {
        match self {
            Self::Queued => 100,
            Self::PendingConfirmation | Self::HeldForReview => 101,
            Self::InvalidRequest => 200,
            Self::InsufficientFunds => 202,
            Self::DuplicateRequest => 205,
            Self::InvalidPurse => 206,
            Self::Success => 300,
            Self::Failed => 400,
        }
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus;

    #[test]
    fn a_stored_status_reads_back_and_an_unknown_one_is_corrupt() {
        for status in [PaymentStatus::Queued, PaymentStatus::HeldForReview, PaymentStatus::Failed] {
            assert_eq!(PaymentStatus::from_stored(status.as_str()).ok(), Some(status));
        }
        assert!(matches!(
            PaymentStatus::from_stored("sucess"),
            Err(super::PaymentError::Corrupt(_))
        ));
    }
}
