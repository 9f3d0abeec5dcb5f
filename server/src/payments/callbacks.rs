//! What a provider's callback about a payment does: stored as it came (for an operator and
//! as evidence), matched to its payment, and applied when it is the provider's word.

use hazina_providers::StatusReport;
use hazina_providers::lifecycle::Event;
use uuid::Uuid;

use super::provider::{Adapter as _, adapter};
use super::{Channel, Engine, PaymentError, Provider, Record, Stage, callback_event, references};

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

    /// Stores a callback as it came, matched to a payment or parked.
    pub async fn store_callback(
        &self,
        channel: &Channel,
        payment: Option<Uuid>,
        kind: &str,
        refs: &[String],
        verified: bool,
        body: &str,
    ) -> Result<Option<Uuid>, PaymentError> {
        let client = self.pool.get().await?;
        let payment = match payment {
            Some(id) => client
                .query_opt(
                    "SELECT id FROM provider_payments
                     WHERE org_id = $3 AND id = $1 AND channel_id = $2",
                    &[&id, &channel.id, &channel.org.0],
                )
                .await?
                .map(|row| row.get::<_, Uuid>(0)),
            None => None,
        };
        let payment = match payment {
            Some(id) => Some(id),
            None => by_references(&client, channel, refs).await?,
        };
        let stored: i64 = client
            .query_one(
                "INSERT INTO provider_callbacks
                     (org_id, channel_id, payment_id, kind, refs, verified, body)
                 VALUES ($7, $1, $2, $3, $4, $5, $6) RETURNING id",
                &[&channel.id, &payment, &kind, &refs, &verified, &body, &channel.org.0],
            )
            .await?
            .get(0);
        if payment.is_some() {
            return Ok(payment);
        }
        // The send may have recorded the provider's reference between the look-up above and
        // the insert, and looked for parked callbacks before this one was there: looked up
        // again now that it is, one of the two sees the other (each looks after its own write
        // commits), and the claim below lets only one of them apply it.
        let Some(found) = by_references(&client, channel, refs).await? else {
            tracing::warn!(channel = %channel.id, kind, "a callback matched no payment: parked");
            return Ok(None);
        };
        let claimed = client
            .execute(
                "UPDATE provider_callbacks SET payment_id = $3
                 WHERE org_id = $1 AND id = $2 AND payment_id IS NULL",
                &[&channel.org.0, &stored, &found],
            )
            .await?;
        Ok((claimed == 1).then_some(found))
    }

    /// Applies the parked callbacks that carry one of the payment's references (they came
    /// before the reference was known).
    pub(super) async fn match_parked(&self, record: &Record) -> Result<(), PaymentError> {
        let mut refs = vec![record.id.to_string(), record.our_reference.clone()];
        refs.extend(record.request_reference.clone());
        let client = self.pool.get().await?;
        let parked = client
            .query(
                "UPDATE provider_callbacks SET payment_id = $2
                 WHERE org_id = $4 AND payment_id IS NULL AND channel_id = $1 AND refs && $3
                 RETURNING kind, verified, body",
                &[&record.channel, &record.id, &refs, &record.org.0],
            )
            .await?;
        drop(client);
        if parked.is_empty() {
            return Ok(());
        }
        let Some(channel) = self.channel(record.org, record.channel).await? else { return Ok(()) };
        for row in parked {
            let (kind, verified, body): (String, bool, String) =
                (row.get(0), row.get(1), row.get(2));
            let report = adapter!(channel.provider, A => A::read_callback(&kind, body.as_bytes()));
            if let Ok(report) = report {
                let event = callback_event(&kind, report, verified);
                self.apply(record.org, record.id, &event, Stage::Sent, "callback", None).await?;
            }
        }
        Ok(())
    }
}

/// The channel's payment that carries one of `refs` (ours, the provider's or its id).
async fn by_references<C: deadpool_postgres::GenericClient>(
    client: &C,
    channel: &Channel,
    refs: &[String],
) -> Result<Option<Uuid>, PaymentError> {
    if refs.is_empty() {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "SELECT id FROM provider_payments WHERE org_id = $3 AND channel_id = $1
                 AND (our_reference = ANY($2) OR request_reference = ANY($2)
                     OR id::text = ANY($2))
             LIMIT 1",
            &[&channel.id, &refs, &channel.org.0],
        )
        .await?;
    Ok(row.map(|row| row.get(0)))
}
