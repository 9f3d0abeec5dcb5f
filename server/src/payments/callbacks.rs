//! What a provider's callback about a payment does: stored as it came (for an operator and
//! as evidence), matched to its payment, and applied when it is the provider's word.

use hazina_providers::StatusReport;
use hazina_providers::lifecycle::Event;
use uuid::Uuid;

use super::{Channel, Engine, PaymentError, Provider, Stage, references};

/// A provider's callback about a payment it was sent.
#[derive(Clone, Copy, Debug)]
pub struct Callback<'a> {
    pub channel: &'a Channel,
    /// The payment its URL names, if it names one (else it is matched by its references).
    pub payment: Option<Uuid>,
    pub kind: &'a str,
    /// Whether its URL carried the channel's token.
    pub verified: bool,
}

impl Engine {
    /// The channel a callback's URL names, if it is one of `provider`'s.
    ///
    /// Across orgs by nature: a provider's callback names no org, only the channel's id (in
    /// its URL), so this finds the org from the channel, and everything the callback does
    /// afterwards is within that org (`channel.org`). This is the one statement of the
    /// payments service that names no org.
    pub async fn callback_channel(
        &self,
        id: &str,
        provider: Provider,
    ) -> Result<Channel, PaymentError> {
        let id: Uuid = id.parse().map_err(|_| PaymentError::NotFound("channel"))?;
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!("SELECT {} FROM payment_channels WHERE id = $1", Channel::COLUMNS),
                &[&id],
            )
            .await?;
        drop(client);
        row.as_ref()
            .map(|row| Channel::from_row(row, &self.sealer))
            .transpose()?
            .filter(|channel| channel.provider == provider)
            .ok_or(PaymentError::NotFound("channel"))
    }

    /// Stores `callback` (with `body`, as it came) and applies what it says, as `event`
    /// reads it, to the payment it matches; `source` is what the payment's history calls it.
    /// An unreadable one is stored unmatched, for an operator, and refused.
    pub async fn take_callback<E: std::fmt::Display>(
        &self,
        callback: Callback<'_>,
        body: &[u8],
        report: Result<StatusReport, E>,
        source: &str,
        event: impl FnOnce(StatusReport) -> Event,
    ) -> Result<(), PaymentError> {
        let Callback { channel, payment, kind, verified } = callback;
        let text = String::from_utf8_lossy(body);
        let report = match report {
            Ok(report) => report,
            Err(error) => {
                self.store_callback(channel, None, kind, &[], verified, &text).await?;
                return Err(PaymentError::Unreadable(error.to_string()));
            }
        };
        let refs = references(&report);
        let matched = self.store_callback(channel, payment, kind, &refs, verified, &text).await?;
        if let Some(payment) = matched {
            self.apply(channel.org, payment, &event(report), Stage::Sent, source, None).await?;
        }
        Ok(())
    }
}
