//! What messaging adapters report, in the platform's terms: a message's delivery status with
//! the platform's status codes (`MessageDeliveryStatus`), whatever the provider called it.

/// A message's delivery status. Each provider's own statuses map onto these; a status an
/// adapter does not know is [`DeliveryStatus::Sent`] at most (the message left us), never a
/// final one it was not told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Accepted, not yet handed on.
    Queued,
    /// Handed to the provider or the operator.
    Sent,
    /// On the customer's device.
    Delivered,
    /// Read by the customer.
    Read,
    /// Not delivered, for no reason more precise below.
    Failed,
    /// The customer refused messages from this channel (opted out, blocked the sender).
    NoConsent,
    /// The provider or the operator refused it.
    Rejected,
    /// The sender's account with the provider cannot pay for it.
    InsufficientCredits,
    /// The provider or the operator's gateway failed.
    GatewayError,
    /// The channel number (sender id, short code) is not valid for sending.
    InvalidChannelNumber,
    /// The customer's number cannot receive on this channel.
    NotSupported,
}

impl DeliveryStatus {
    /// The platform's code for it.
    #[must_use]
    pub fn code(self) -> u16 {
        match self {
            Self::Queued => 100,
            Self::Sent => 101,
            Self::Delivered => 300,
            Self::Read => 301,
            Self::Failed => 400,
            Self::NoConsent => 401,
            Self::InvalidChannelNumber => 407,
            Self::NotSupported => 408,
            Self::Rejected => 415,
            Self::InsufficientCredits => 417,
            Self::GatewayError => 418,
        }
    }

    /// Whether nothing later changes it (a delivered message may still be read).
    #[must_use]
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Sent | Self::Delivered)
    }
}
