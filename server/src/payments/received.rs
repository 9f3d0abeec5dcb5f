//! Payments customers make unprompted (M-Pesa C2B confirmations): recorded once per provider
//! id, posted when the provider's word is trusted.

use hazina_ledger::{AccountId, CustomerId, Money};
use uuid::Uuid;

use super::{Channel, Engine, Flow, insert_event};
use crate::code::Code;
use crate::http::problem::ApiError;

impl Engine {
    /// Records a payment a customer made unprompted (once per provider id: a repeat finds the
    /// first), to be posted when the provider's word is trusted.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_received(
        &self,
        channel: &Channel,
        trans_id: &str,
        payer: &str,
        amount: Money,
        request: &serde_json::Value,
        account: AccountId,
        customer: Option<CustomerId>,
    ) -> Result<Uuid, ApiError> {
        let first_query = self.settings().first_query;
        let client = self.pool.get().await?;
        let minor =
            amount.to_minor().map_err(|e| ApiError::invalid(Code::InvalidAmount, e.to_string()))?;
        let inserted = client
            .query_opt(
                "INSERT INTO provider_payments (id, org_id, channel_id, flow, customer_id, msisdn,
                     account_id, currency, amount_minor, our_reference, stage, status,
                     next_attempt_at, request)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'sent', 'pending_confirmation',
                     now() + make_interval(secs => $11), $12)
                 ON CONFLICT (channel_id, our_reference) DO NOTHING
                 RETURNING id",
                &[
                    &Uuid::now_v7(),
                    &channel.org.0,
                    &channel.id,
                    &Flow::Received.as_str(),
                    &customer.map(|c| c.0),
                    &payer,
                    &account.0,
                    &amount.currency().code(),
                    &minor,
                    &trans_id,
                    &first_query.as_secs_f64(),
                    request,
                ],
            )
            .await?;
        if let Some(row) = inserted {
            let id: Uuid = row.get(0);
            insert_event(&client, id, "pending_confirmation", "callback", None, None).await?;
            return Ok(id);
        }
        // A repeat of a payment already recorded.
        let row = client
            .query_one(
                "SELECT id FROM provider_payments WHERE channel_id = $1 AND our_reference = $2",
                &[&channel.id, &trans_id],
            )
            .await?;
        Ok(row.get(0))
    }
}
