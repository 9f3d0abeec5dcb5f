//! Payments customers make unprompted (M-Pesa C2B confirmations): recorded once per provider
//! id, posted when the provider's word is trusted.

use hazina_ledger::rules::AccountKind;
use hazina_ledger::{AccountId, CustomerId, Money};
use hazina_providers::lifecycle::Event;
use hazina_providers::mpesa::{C2bRejectReason, Msisdn};
use uuid::Uuid;

use super::{
    Channel, Engine, Flow, PaymentError, PaymentStatus, Record, Stage, insert_event, mpesa, tell,
};
use crate::code::Code;
use crate::customers::{self, CustomerNumber};
use crate::events::EventType;

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
    ) -> Result<Uuid, PaymentError> {
        let first_query = self.settings().first_query;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let minor = amount
            .to_minor()
            .map_err(|e| PaymentError::invalid(Code::InvalidAmount, e.to_string()))?;
        let inserted = tx
            .query_opt(
                &format!(
                    "INSERT INTO provider_payments (id, org_id, channel_id, flow, customer_id,
                         msisdn, account_id, currency, amount_minor, our_reference, stage,
                         status, next_attempt_at, request)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'sent',
                         'pending_confirmation', now() + make_interval(secs => $11), $12)
                     ON CONFLICT (org_id, channel_id, our_reference) DO NOTHING
                     RETURNING {}",
                    Record::COLUMNS
                ),
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
            let record = Record::from_row(&row)?;
            let status = PaymentStatus::PendingConfirmation;
            insert_event(&tx, channel.org, record.id, status, "callback", None, None).await?;
            tell(&tx, &record, EventType::PaymentReceived, None).await?;
            tx.commit().await?;
            return Ok(record.id);
        }
        // A repeat of a payment already recorded.
        let row = tx
            .query_one(
                "SELECT id FROM provider_payments
                 WHERE org_id = $1 AND channel_id = $2 AND our_reference = $3",
                &[&channel.org.0, &channel.id, &trans_id],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Whether to take a C2B payment the provider asks about (validation): `None` to accept,
    /// else why not. Without the channel's token nothing is accepted.
    pub async fn validate_c2b(
        &self,
        channel: &Channel,
        verified: bool,
        body: &[u8],
    ) -> Result<Option<C2bRejectReason>, PaymentError> {
        if !verified {
            return Ok(Some(C2bRejectReason::Other));
        }
        let Ok(received) = mpesa::read_c2b(body) else {
            return Ok(Some(C2bRejectReason::InvalidAmount));
        };
        let bill_ref = received.report.our_reference.clone().unwrap_or_default();
        let amount_ok = received
            .report
            .amount
            .is_some_and(|amount| amount.currency() == channel.currency && amount.is_positive());
        if !amount_ok {
            return Ok(Some(C2bRejectReason::InvalidAmount));
        }
        match self.target(channel, received.payer_msisdn.as_ref(), &bill_ref).await? {
            Some(_) => Ok(None),
            None => Ok(Some(C2bRejectReason::InvalidAccountNumber)),
        }
    }

    /// Takes a C2B confirmation: the provider's word (with the channel's token) that a customer
    /// paid, recorded once per provider id and posted to the wallet or purse it names; without
    /// the token, only kept (see the comment below).
    pub async fn confirm_c2b(
        &self,
        channel: &Channel,
        verified: bool,
        body: &[u8],
    ) -> Result<(), PaymentError> {
        let text = String::from_utf8_lossy(body);
        let received = match mpesa::read_c2b(body) {
            Ok(received) => received,
            Err(error) => {
                self.store_callback(channel, None, "c2b", &[], verified, &text).await?;
                return Err(PaymentError::Unreadable(error.to_string()));
            }
        };
        let trans_id = received.report.receipt.clone().unwrap_or_default();
        let refs = vec![trans_id.clone()];
        if !verified {
            // Not the provider's word: it makes no payment, no customer and no query that could
            // post one. It is kept for an operator, and a payment it names that we already have
            // is only asked about sooner.
            let matched = self.store_callback(channel, None, "c2b", &refs, false, &text).await?;
            if let Some(payment) = matched {
                let event = Event::Callback { report: received.report, verified: false };
                self.apply(channel.org, payment, &event, Stage::Sent, "callback", None).await?;
            }
            return Ok(());
        }
        let bill_ref = received.report.our_reference.clone().unwrap_or_default();
        let amount = received
            .report
            .amount
            .filter(|amount| amount.currency() == channel.currency && amount.is_positive());
        let target = self.target(channel, received.payer_msisdn.as_ref(), &bill_ref).await?;
        let (Some(amount), Some(target)) = (amount, target) else {
            // Money arrived that no account takes: kept for the finance team, never guessed.
            self.store_callback(channel, None, "c2b", &refs, verified, &text).await?;
            tracing::warn!(channel = %channel.id, "a C2B payment with no account to take it: parked");
            return Ok(());
        };
        let payer = match &received.payer_msisdn {
            Some(Msisdn::Full(digits) | Msisdn::Masked(digits)) => digits.clone(),
            None => String::new(),
        };
        let id = self
            .record_received(
                channel,
                &trans_id,
                &payer,
                amount,
                &target_request(&target, &payer, &channel.number, amount, &trans_id),
                target.account,
                target.customer,
            )
            .await?;
        self.store_callback(channel, Some(id), "c2b", &refs, verified, &text).await?;
        let event = Event::Callback { report: received.report, verified };
        self.apply(channel.org, id, &event, Stage::Sent, "callback", None).await?;
        Ok(())
    }

    async fn target(
        &self,
        channel: &Channel,
        payer: Option<&Msisdn>,
        bill_ref: &str,
    ) -> Result<Option<Target>, PaymentError> {
        let customer = match payer {
            Some(Msisdn::Full(digits)) => {
                let number = CustomerNumber {
                    number: format!("+{digits}"),
                    provider: customers::NumberProvider::Cellular,
                    partition: None,
                };
                match number.normalised() {
                    Ok(number) => {
                        Some(customers::by_number(&self.pool, channel.org, &number).await?.0)
                    }
                    Err(_) => None,
                }
            }
            _ => None,
        };
        let bill_ref = bill_ref.trim();
        if let Some(customer) = customer
            && !bill_ref.is_empty()
            && let Some(wallet) = self.store().wallet(channel.org, customer, bill_ref).await?
            && wallet.currency == channel.currency
            && !wallet.closed
        {
            let party = serde_json::json!({
                "wallet": { "customerId": customer.0, "walletId": bill_ref }
            });
            return Ok(Some(Target { account: wallet.id, customer: Some(customer), party }));
        }
        // An account reference that is a phone number names its owner's one wallet in the
        // channel's currency (Daraja v2 masks the payer's own number, so this is how a payer
        // reaches a wallet, theirs or someone else's).
        if let Some(owner) = self.phone_owner(channel, bill_ref).await? {
            let wallets = self
                .store()
                .accounts(channel.org, AccountKind::Wallet, Some(owner), None, 1_000)
                .await?;
            let mut usable = wallets.iter().filter(|w| w.currency == channel.currency && !w.closed);
            if let (Some(wallet), None) = (usable.next(), usable.next()) {
                let party = serde_json::json!({
                    "wallet": { "customerId": owner.0, "walletId": wallet.wallet_id }
                });
                return Ok(Some(Target { account: wallet.id, customer: Some(owner), party }));
            }
        }
        let Some(purse) = channel.receiving_purse else { return Ok(None) };
        let purse = self
            .store()
            .account(channel.org, purse)
            .await?
            .filter(|account| account.kind == AccountKind::Purse && !account.closed);
        Ok(purse.map(|purse| Target {
            account: purse.id,
            customer,
            party: serde_json::json!({ "purse": { "purseId": purse.id.0 } }),
        }))
    }

    /// The existing customer whose phone number an account reference is (`2547…` or `+2547…`).
    pub(super) async fn phone_owner(
        &self,
        channel: &Channel,
        reference: &str,
    ) -> Result<Option<CustomerId>, PaymentError> {
        let digits = reference.trim_start_matches('+');
        if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let number = CustomerNumber {
            number: format!("+{digits}"),
            provider: customers::NumberProvider::Cellular,
            partition: None,
        };
        let Ok(number) = number.normalised() else { return Ok(None) };
        Ok(customers::existing_by_number(&self.pool, channel.org, &number).await?)
    }
}

/// Where a customer's unprompted payment goes: the wallet its account reference names (of the
/// customer with the paying number), else the channel's receiving purse.
struct Target {
    account: AccountId,
    customer: Option<CustomerId>,
    party: serde_json::Value,
}

/// The stored request of a received payment: its parties (as a payment asked for through the
/// API names them, so that its view is a `Party` too) and the ledger context that links it to
/// the customer's timeline.
fn target_request(
    target: &Target,
    payer: &str,
    channel_number: &str,
    amount: Money,
    trans_id: &str,
) -> serde_json::Value {
    let debit = serde_json::json!({ "customer": {
        "customerNumber": { "number": format!("+{payer}"), "provider": "cellular" },
        "channelNumber": channel_number,
    } });
    let narration = format!("M-Pesa payment {trans_id}");
    let customers: Vec<String> = target.customer.iter().map(|c| c.0.to_string()).collect();
    serde_json::json!({
        "debitParty": debit,
        "creditParty": target.party,
        "value": { "currencyCode": amount.currency().code(), "amount": amount.amount().to_string() },
        "narration": narration,
        "context": {
            "payment": {
                "debitParty": debit, "creditParty": target.party, "narration": narration,
                "appId": null,
            },
            "hazina": { "customers": customers },
        },
    })
}
