//! Payments with a customer's mobile money as a party (through a payment channel), and any
//! payment's status and history (`GET /v1/payments/{transaction_id}`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hazina_ledger::rules::{AccountKind, RejectReason};
use hazina_ledger::{CustomerId, Money, TransferId};
use serde::Serialize;
use uuid::Uuid;

use super::money::{MoneyValue, NewPayment, Party};
use crate::code::Code;
use crate::customers;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::{AnnouncedIds, ApiError, PathParams, legacy_refusal};
use crate::money::CustomerAccountRef;
use crate::payments::{self, Flow, PaymentStatus, Record, StatusChange};

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(get_payment))
}

/// A payment and how it got where it is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub transaction_id: Uuid,
    /// The platform's status: `queued` (reserved, not yet sent), `pending_confirmation` (with
    /// the provider), `success`, `failed`, `held_for_review` (the provider's answer disagreed
    /// with the payment: nothing moved, an operator must look; see `alert`), or why it was
    /// not made (`insufficient_funds`, …).
    pub status: PaymentStatus,
    /// The ledger's reason, or the provider's result code, when it was not made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The parties as the payment was asked for.
    pub debit_party: Party,
    pub credit_party: Party,
    pub value: MoneyValue,
    pub narration: Option<String>,
    /// The payment channel it went through, when a provider took part.
    pub channel_id: Option<Uuid>,
    /// The provider's id for our request (`CheckoutRequestID`, `ConversationID`).
    pub provider_reference: Option<String>,
    /// The provider's receipt for the money that moved (M-Pesa receipt, MoMo
    /// `financialTransactionId`).
    pub receipt: Option<String>,
    /// The provider's last result code and its words for it.
    pub provider_code: Option<String>,
    pub provider_description: Option<String>,
    /// Why it is held for review: how the provider's answer disagreed with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// Every status it passed through, oldest first.
    pub history: Vec<StatusChange>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PaymentView {
    /// The view of a payment through a provider, from its record.
    ///
    /// # Errors
    ///
    /// 500 when the record's stored request is not what this version writes.
    pub fn of(record: &Record, history: Vec<StatusChange>) -> Result<Self, ApiError> {
        let field = |name: &str| record.request.get(name).cloned().unwrap_or_default();
        let failed = !record.status.is_live();
        Ok(Self {
            transaction_id: record.id,
            status: record.status,
            reason: failed.then(|| record.provider_code.clone()).flatten(),
            debit_party: stored(field("debitParty"))?,
            credit_party: stored(field("creditParty"))?,
            value: stored(field("value"))?,
            narration: field("narration").as_str().map(str::to_owned),
            channel_id: Some(record.channel),
            provider_reference: record.request_reference.clone(),
            receipt: record.receipt.clone(),
            provider_code: record.provider_code.clone(),
            provider_description: record.provider_description.clone(),
            alert: record.alert.clone(),
            history,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }
}

/// A part of a payment as stored (validated when it was asked for, or made by us for one
/// received), read back as its type: one this version cannot read is corrupt, never shown as
/// something the document does not describe.
fn stored<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|error| ApiError::corrupt(&error))
}

/// A payment: its status, its parties and, for one through a provider, the provider's
/// references and every status it passed through.
#[utoipa::path(get, path = "/v1/payments/{transaction_id}", tag = "payments",
    params(("transaction_id" = Uuid, Path)),
    responses((status = 200, body = PaymentView)))]
async fn get_payment(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(transaction_id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    if let Some(record) = state.payments.record(caller.org, transaction_id).await? {
        let changes = state.payments.status_changes(record.org, record.id).await?;
        return Ok(Json(PaymentView::of(&record, changes)?).into_response());
    }
    let transfer = state
        .store
        .transfer(caller.org, TransferId(transaction_id))
        .await?
        .filter(|transfer| transfer.code == "payment")
        .ok_or_else(|| ApiError::not_found("payment"))?;
    let payment = transfer.context.get("payment");
    let field = |name: &str| payment.and_then(|p| p.get(name)).cloned().unwrap_or_default();
    let value = transfer.postings.first().map(|posting| MoneyValue::of(&posting.amount));
    Ok(Json(PaymentView {
        transaction_id,
        status: PaymentStatus::of_outcome(transfer.rejection),
        reason: transfer.rejection.map(|r| RejectReason::code(r).to_owned()),
        debit_party: stored(field("debitParty"))?,
        credit_party: stored(field("creditParty"))?,
        // A payment's transfer has postings; one without is corrupt like any unreadable part.
        value: stored(serde_json::to_value(value).unwrap_or_default())?,
        narration: field("narration").as_str().map(str::to_owned),
        channel_id: None,
        provider_reference: None,
        receipt: None,
        provider_code: None,
        provider_description: None,
        alert: None,
        history: Vec::new(),
        created_at: transfer.created_at,
        updated_at: transfer.created_at,
    })
    .into_response())
}

/// A payment with a customer's mobile money as one party: validated whole, then reserved and
/// sent through the channel's provider.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    announced: Option<&AnnouncedIds>,
    payment: NewPayment,
    amount: Money,
) -> Result<Response, ApiError> {
    let (mut draft, number, wallet_customer) =
        draft(state, caller, headers, &payment, amount).await?;
    let asked = draft.request.clone();
    state.payments.check(&draft).map_err(|why| ApiError::invalid(Code::InvalidRequest, why))?;
    if let Some(existing) = state.payments.record(caller.org, draft.id).await? {
        return replay(state, headers, &existing, &asked).await;
    }
    // Everything is valid: now the customer may be made.
    let (customer, _) = customers::by_number(&state.pool, caller.org, &number).await?;
    let effects = match &payment.context {
        Some(context) => {
            crate::money::context_effects(&state.pool, caller.org, caller.app, context, &[customer])
                .await?
        }
        None => hazina_ledger::context::Effects::default(),
    };
    let mut effects = effects;
    if let Some(app) = caller.app {
        effects.set_app(app);
    }
    let effects = effects.into_hazina([Some(customer), wallet_customer].into_iter().flatten());
    draft.request["context"] = serde_json::json!({
        "payment": {
            "debitParty": payment.debit_party,
            "creditParty": payment.credit_party,
            "narration": payment.narration,
            "appId": caller.app,
        },
        "hazina": effects,
    });
    if let Some(message) = payment.context.as_ref().and_then(|context| context.message_id) {
        draft.request["context"]["payment"]["messageId"] = serde_json::json!(message);
    }
    draft.customer = Some(customer.0);
    // Whatever goes wrong from here, the answer names the id: a retry under it is a replay.
    let id = draft.id;
    AnnouncedIds::transaction(announced, id);
    let (record, started) =
        state.payments.start(draft).await.map_err(|e| ApiError::from(e).with_transaction_id(id))?;
    if !started {
        return replay(state, headers, &record, &asked).await;
    }
    respond(state, headers, &record).await
}

/// The payment to start, checked against the channel and our side's account (nothing is
/// written yet); with the customer's normalised number and our side's wallet owner.
async fn draft(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    payment: &NewPayment,
    amount: Money,
) -> Result<(payments::NewProviderPayment, customers::CustomerNumber, Option<CustomerId>), ApiError>
{
    let (flow, customer, ours) = match (&payment.debit_party, &payment.credit_party) {
        (Party::Customer(customer), ours @ (Party::Purse(_) | Party::Wallet(_))) => {
            (Flow::Collect, customer, ours)
        }
        (ours @ (Party::Purse(_) | Party::Wallet(_)), Party::Customer(customer)) => {
            (Flow::Payout, customer, ours)
        }
        _ => {
            return Err(ApiError::invalid(
                Code::InvalidCounterParty,
                "a customer's mobile money pays or is paid by a purse or a wallet",
            ));
        }
    };
    let CustomerAccountRef { customer_number: number, channel_number, bank_account } = customer;
    let channel = state
        .payments
        .channel_by_number(caller.org, channel_number)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))?;
    let bank = channel.provider == payments::Provider::Bank;
    // A bank pays the customer's account, whatever number the customer is known by; mobile
    // money is reached by a cellular number.
    if !bank && number.provider != crate::customers::NumberProvider::Cellular {
        return Err(ApiError::invalid(
            Code::InvalidCounterParty,
            "a customer's mobile money is reached by a cellular number",
        ));
    }
    let number = number.normalised()?;
    check_bank_account(bank, flow, bank_account.as_ref())?;
    let missing = channel.missing_for(flow);
    if !missing.is_empty() {
        return Err(ApiError::invalid(
            Code::ChannelNotConfigured,
            format!("the channel needs the credentials {} for this payment", missing.join(", ")),
        ));
    }
    let (account, wallet_customer) = state.money.party_account(caller.org, ours).await?;
    if !matches!(account.kind, AccountKind::Purse | AccountKind::Wallet) {
        return Err(ApiError::invalid(Code::InvalidPurse, "pay from or into a purse or a wallet"));
    }
    for (what, currency) in
        [("channel", channel.currency), (account.kind.as_str(), account.currency)]
    {
        if currency != amount.currency() {
            return Err(ApiError::invalid(
                Code::CurrencyMismatch,
                format!("the {what} holds {}, not {}", currency.code(), amount.currency().code()),
            ));
        }
    }
    let id = payment
        .transaction_id
        .or_else(|| crate::http::idempotency::derived_id(caller, headers))
        .unwrap_or_else(Uuid::now_v7);
    let our_reference = payments::our_reference(channel.provider, id);
    let request = serde_json::json!({
        "debitParty": payment.debit_party,
        "creditParty": payment.credit_party,
        "value": MoneyValue::of(&amount),
        "narration": payment.narration,
    });
    let draft = payments::NewProviderPayment {
        id,
        org: caller.org,
        app: caller.app,
        channel,
        flow,
        customer: None,
        msisdn: number.number.clone(),
        account: account.id,
        amount,
        our_reference,
        request,
    };
    Ok((draft, number, wallet_customer))
}

/// A payment's bank account: required and valid for a payout through a bank channel (which
/// takes no collections), refused for any other channel.
fn check_bank_account(
    bank: bool,
    flow: Flow,
    bank_account: Option<&crate::money::BankAccountRef>,
) -> Result<(), ApiError> {
    match (bank, bank_account) {
        (true, _) if flow != Flow::Payout => {
            return Err(ApiError::invalid(
                Code::NotSupported,
                "a bank channel pays out; money coming in is read from the bank's camt.054",
            ));
        }
        (true, None) => {
            return Err(ApiError::invalid(
                Code::MissingBankDetails,
                "a payout through a bank channel names the creditor's bankAccount",
            ));
        }
        (true, Some(account)) => {
            payments::CreditorAccount::parse(
                &account.account_number,
                &account.name,
                account.bic.as_deref(),
            )?;
        }
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                Code::NotSupported,
                "bankAccount is for payouts through a bank channel",
            ));
        }
        (false, None) => {}
    }
    Ok(())
}

/// The answer to a payment asked again under its id: the payment as it is now, unless the
/// request differs.
async fn replay(
    state: &AppState,
    headers: &HeaderMap,
    record: &Record,
    asked: &serde_json::Value,
) -> Result<Response, ApiError> {
    let same = ["debitParty", "creditParty", "value", "narration"]
        .iter()
        .all(|field| record.request.get(*field) == asked.get(*field));
    if !same {
        return Err(ApiError::invalid(
            Code::IdAlreadyUsed,
            "a different payment has this transactionId",
        ));
    }
    respond(state, headers, record).await
}

async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    record: &Record,
) -> Result<Response, ApiError> {
    let status = match record.status {
        PaymentStatus::Success => StatusCode::CREATED,
        live if live.is_live() => StatusCode::ACCEPTED,
        _ if !legacy_refusal(headers) => {
            let reason = record.provider_code.as_deref();
            return Err(payment_failed(record.id, record.status, reason));
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let changes = state.payments.status_changes(record.org, record.id).await?;
    Ok((status, Json(PaymentView::of(record, changes)?)).into_response())
}

/// 409 `payment_failed`: a payment that was not made, with its id, the platform's status and
/// the ledger's or provider's reason.
pub fn payment_failed(id: Uuid, status: PaymentStatus, reason: Option<&str>) -> ApiError {
    let detail = match reason {
        Some(reason) => format!("the payment was not made: {status} ({reason})"),
        None => format!("the payment was not made: {status}"),
    };
    let error = ApiError::new(StatusCode::CONFLICT, Code::PaymentFailed, detail)
        .with_transaction_id(id)
        .with_member("paymentStatus", serde_json::json!(status));
    match reason {
        Some(reason) => error.with_member("reason", serde_json::json!(reason)),
        None => error,
    }
}
