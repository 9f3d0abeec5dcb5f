//! Money, the service: purses and wallets, the parties of a payment and their accounts, the
//! treasury limits on clearing accounts, and payments between the ledger's own parties, all
//! submitted through the ledger's pipeline. The HTTP layer (`http::v1::money`,
//! `http::v1::finance`, `http::v1::payments`) calls it; it knows nothing of HTTP.

mod parties;
mod payment_context;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use hazina_ledger::context::{self, Effects};
use hazina_ledger::pipeline::{Pipeline, SubmitError};
use hazina_ledger::rules::{
    AccountKind, Action, LimitPolicy, Outcome, Posting, Side, Transfer, TransferRequest,
};
use hazina_ledger::store::{Account, Balance, NewAccount, Store, StoreError};
use hazina_ledger::{AccountId, Currency, CustomerId, Money, OrgId, TransferId};
use uuid::Uuid;

pub use parties::{
    BankAccountRef, ChannelRef, CustomerAccountRef, Party, PartyAccount, PartyCache, PurseRef,
    WalletRef,
};
pub use payment_context::{PaymentContext, context_effects};

use crate::code::Code;
use crate::customers::{self, CustomerError};
use crate::payments::PaymentError;

/// Longest wallet id and narration.
pub const WALLET_ID_LEN_MAX: usize = 100;
pub const NARRATION_LEN_MAX: usize = 500;
/// Most wallets listed for a customer.
const WALLETS_LISTED_MAX: i64 = 1_000;

/// What can go wrong with purses, wallets and payments between them, in the money service's
/// words.
#[derive(Debug, thiserror::Error)]
pub enum MoneyError {
    /// No such thing in the org (another org's is indistinguishable from a missing one).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// Well-formed but unacceptable: `code` says why.
    #[error("{detail}")]
    Invalid { code: Code, detail: String },
    /// Not for this caller (an app key where only an org key may act): `code` says why.
    #[error("{detail}")]
    Forbidden { code: Code, detail: String },
    #[error(transparent)]
    Customer(#[from] CustomerError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MoneyError {
    fn invalid(code: Code, detail: impl Into<String>) -> Self {
        Self::Invalid { code, detail: detail.into() }
    }

    /// The stable code a front door answers with.
    pub fn code(&self) -> Code {
        match self {
            Self::NotFound(_) => Code::NotFound,
            Self::Invalid { code, .. } | Self::Forbidden { code, .. } => *code,
            Self::Customer(error) => error.code(),
            Self::Payment(error) => error.code(),
            Self::Submit(SubmitError::Overloaded) => Code::Overloaded,
            Self::Submit(_) | Self::Store(_) => Code::Unavailable,
        }
    }
}

/// A currency by its ISO 4217 code.
///
/// # Errors
///
/// `Invalid` (`invalid_currency`) for a code that is not one, or has no minor units.
pub fn currency(code: &str) -> Result<Currency, MoneyError> {
    Currency::from_code(code)
        .map_err(|error| MoneyError::invalid(Code::InvalidCurrency, error.to_string()))
}

/// An amount written as a plain decimal in a currency given by its code, refused when the
/// currency or the amount is wrong, or does not fit the ledger's 64-bit minor units.
///
/// # Errors
///
/// `Invalid` with `invalid_currency` or `invalid_amount`.
pub fn amount(currency_code: &str, amount: &str) -> Result<Money, MoneyError> {
    let currency = currency(currency_code)?;
    let money = Money::parse(currency, amount)
        .map_err(|error| MoneyError::invalid(Code::InvalidAmount, error.to_string()))?;
    // The ledger keeps amounts as 64-bit minor units.
    money
        .to_minor()
        .map_err(|error| MoneyError::invalid(Code::InvalidAmount, error.to_string()))?;
    Ok(money)
}

/// Refuses a payment's amount unless positive, and a narration longer than
/// [`NARRATION_LEN_MAX`] characters (whichever way the payment then goes).
///
/// # Errors
///
/// `Invalid` with `invalid_amount` or `invalid_narration`.
pub fn check_payment(amount: Money, narration: Option<&str>) -> Result<(), MoneyError> {
    if !amount.is_positive() {
        return Err(MoneyError::invalid(Code::InvalidAmount, "the amount must be positive"));
    }
    if narration.is_some_and(|n| n.chars().count() > NARRATION_LEN_MAX) {
        return Err(MoneyError::invalid(
            Code::InvalidNarration,
            "a narration has at most 500 characters",
        ));
    }
    Ok(())
}

fn valid_wallet_id(wallet_id: &str) -> Result<(), MoneyError> {
    let ok = !wallet_id.is_empty()
        && wallet_id.len() <= WALLET_ID_LEN_MAX
        && wallet_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(MoneyError::invalid(
            Code::InvalidWalletId,
            "a wallet id has 1 to 100 letters, digits, '-', '_' or '.'",
        ))
    }
}

/// The accounts the requests debit, with the amounts: what a treasury limit looks at.
pub fn debits(requests: &[TransferRequest]) -> Vec<(AccountId, Money)> {
    requests
        .iter()
        .flat_map(|request| match &request.action {
            Action::Post { postings } | Action::Pending { postings, .. } => postings.as_slice(),
            _ => &[],
        })
        .filter(|posting| posting.side == Side::Debit)
        .map(|posting| (posting.account, posting.amount))
        .collect()
}

/// The money service: accounts through the store, transfers through the pipeline, channels
/// and their treasury limits through the payments service, and the parties it has resolved.
#[derive(Debug)]
pub struct Service {
    pool: Pool,
    store: Store,
    pipeline: Pipeline,
    payments: Arc<crate::payments::Engine>,
    parties: PartyCache,
}

impl Service {
    pub fn new(
        pool: Pool,
        store: Store,
        pipeline: Pipeline,
        payments: Arc<crate::payments::Engine>,
    ) -> Self {
        Self { pool, store, pipeline, payments, parties: PartyCache::default() }
    }

    /// Creates a purse of the org: a balance in one currency, with an optional name and an
    /// optional overdraft limit (a plain decimal, not negative).
    ///
    /// # Errors
    ///
    /// `Invalid` with `invalid_currency`, `invalid_name` or `invalid_amount`.
    pub async fn create_purse(
        &self,
        org: OrgId,
        currency_code: &str,
        name: Option<&str>,
        overdraft_limit: Option<&str>,
    ) -> Result<Account, MoneyError> {
        let currency = currency(currency_code)?;
        let mut account = NewAccount::new(org, AccountKind::Purse, currency);
        if let Some(name) = name {
            if name.trim().is_empty() || name.chars().count() > crate::tenancy::NAME_LEN_MAX {
                return Err(MoneyError::invalid(
                    Code::InvalidName,
                    "a purse name has 1 to 100 characters",
                ));
            }
            account.name = Some(name.trim().to_owned());
        }
        if let Some(limit) = overdraft_limit {
            let limit = Money::parse(currency, limit)
                .and_then(|money| money.to_minor())
                .map_err(|error| MoneyError::invalid(Code::InvalidAmount, error.to_string()))?;
            if limit < 0 {
                return Err(MoneyError::invalid(
                    Code::InvalidAmount,
                    "an overdraft limit is not negative",
                ));
            }
            account.limit = Some(LimitPolicy::Overdraft(limit));
        }
        Ok(self.store.create_account(&account).await?)
    }

    /// The org's purses in id order, at most `limit`, after `cursor`.
    pub async fn purses(
        &self,
        org: OrgId,
        cursor: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Account>, MoneyError> {
        Ok(self.store.accounts(org, AccountKind::Purse, None, cursor.map(AccountId), limit).await?)
    }

    /// A purse of the org.
    pub async fn purse(&self, org: OrgId, id: Uuid) -> Result<Account, MoneyError> {
        self.store
            .account(org, AccountId(id))
            .await?
            .filter(|account| account.kind == AccountKind::Purse)
            .ok_or(MoneyError::NotFound("purse"))
    }

    /// Creates a customer's wallet under the app's `wallet_id`.
    ///
    /// # Errors
    ///
    /// `Customer` when the org has no such customer; `Invalid` with `invalid_wallet_id` or
    /// `invalid_currency`; `Store` (`AccountExists`) when the customer has that wallet id.
    pub async fn create_wallet(
        &self,
        org: OrgId,
        customer: Uuid,
        wallet_id: &str,
        currency_code: &str,
    ) -> Result<Account, MoneyError> {
        let customer = customers::check(&self.pool, org, customer).await?;
        valid_wallet_id(wallet_id)?;
        let mut account = NewAccount::new(org, AccountKind::Wallet, currency(currency_code)?);
        account.customer = Some(customer);
        account.wallet_id = Some(wallet_id.to_owned());
        Ok(self.store.create_account(&account).await?)
    }

    /// A customer's wallets.
    pub async fn wallets(&self, org: OrgId, customer: Uuid) -> Result<Vec<Account>, MoneyError> {
        let customer = customers::check(&self.pool, org, customer).await?;
        let wallets = self
            .store
            .accounts(org, AccountKind::Wallet, Some(customer), None, WALLETS_LISTED_MAX)
            .await?;
        Ok(wallets)
    }

    /// A customer's wallet by its wallet id.
    pub async fn wallet(
        &self,
        org: OrgId,
        customer: Uuid,
        wallet_id: &str,
    ) -> Result<Account, MoneyError> {
        let customer = customers::check(&self.pool, org, customer).await?;
        self.store.wallet(org, customer, wallet_id).await?.ok_or(MoneyError::NotFound("wallet"))
    }

    /// Any account of the org.
    pub async fn account(&self, org: OrgId, id: Uuid) -> Result<Account, MoneyError> {
        self.store.account(org, AccountId(id)).await?.ok_or(MoneyError::NotFound("account"))
    }

    /// An account's balance as recorded at a time.
    pub async fn balance_at(
        &self,
        org: OrgId,
        account: AccountId,
        at: DateTime<Utc>,
    ) -> Result<Balance, MoneyError> {
        Ok(self.store.balance_at(org, account, at).await?)
    }

    /// A transfer of the org.
    pub async fn transfer(&self, org: OrgId, id: Uuid) -> Result<Transfer, MoneyError> {
        self.store.transfer(org, TransferId(id)).await?.ok_or(MoneyError::NotFound("transfer"))
    }

    /// Refuses moving money out of a channel's clearing account (the money the provider holds
    /// for the org) unless an org key does it (`app` is none), within the channel's treasury
    /// limit: an app could otherwise credit any wallet with money that exists nowhere, then pay
    /// it out.
    ///
    /// `debits` are the accounts a transfer debits with the amounts; those that are no clearing
    /// account pass.
    ///
    /// # Errors
    ///
    /// `Forbidden` (`clearing_account_forbidden`) for an app; `Invalid`
    /// (`treasury_limit_exceeded`) over the channel's limit.
    pub async fn check_treasury(
        &self,
        org: OrgId,
        app: Option<Uuid>,
        debits: &[(AccountId, Money)],
    ) -> Result<(), MoneyError> {
        let accounts: Vec<AccountId> = debits.iter().map(|(account, _)| *account).collect();
        let limits = self.payments.treasury_limits(org, &accounts).await?;
        for (account, amount) in debits {
            let Some(limit) = limits.get(account) else { continue };
            if app.is_some() {
                return Err(MoneyError::Forbidden {
                    code: Code::ClearingAccountForbidden,
                    detail: "moving money out of a channel's clearing account is a treasury \
                             operation for an org key"
                        .to_owned(),
                });
            }
            if amount.currency() == limit.currency() && amount.amount() > limit.amount() {
                return Err(MoneyError::invalid(
                    Code::TreasuryLimitExceeded,
                    format!(
                        "the channel's treasury limit is {} {} per transfer out of its clearing \
                         account",
                        limit.amount(),
                        limit.currency().code()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Submits a transfer through the pipeline and waits for its outcome.
    ///
    /// # Errors
    ///
    /// `Submit`: overloaded (retry shortly), or the batch failed (replay under the same id).
    pub async fn submit(&self, request: TransferRequest) -> Result<Outcome, MoneyError> {
        Ok(self.pipeline.submit(request).await?)
    }

    /// The accounts of a payment between the ledger's parties, checked: the parties exist, a
    /// clearing account is debited only as a treasury operation, and the two are different
    /// accounts in the payment's currency.
    pub async fn payment_accounts(
        &self,
        payment: &NewLedgerPayment<'_>,
    ) -> Result<PaymentAccounts, MoneyError> {
        let (debit, debit_customer) = self.party_account(payment.org, payment.debit_party).await?;
        let (credit, credit_customer) =
            self.party_account(payment.org, payment.credit_party).await?;
        if debit.kind == AccountKind::Channel {
            self.check_treasury(payment.org, payment.app, &[(debit.id, payment.amount)]).await?;
        }
        check_accounts(&debit, &credit, payment.amount)?;
        let wallet_customers = [debit_customer, credit_customer].into_iter().flatten().collect();
        Ok(PaymentAccounts { debit, credit, wallet_customers })
    }
}

/// Refuses a payment between one account and itself, or in another currency than either's.
fn check_accounts(
    debit: &PartyAccount,
    credit: &PartyAccount,
    amount: Money,
) -> Result<(), MoneyError> {
    if debit.id == credit.id {
        return Err(MoneyError::invalid(
            Code::InvalidCounterParty,
            "the two parties are the same account",
        ));
    }
    for account in [debit, credit] {
        if account.currency != amount.currency() {
            return Err(MoneyError::invalid(
                Code::CurrencyMismatch,
                format!(
                    "the {} account holds {}, not {}",
                    account.kind.as_str(),
                    account.currency.code(),
                    amount.currency().code()
                ),
            ));
        }
    }
    Ok(())
}

/// A payment between two of the ledger's parties (purses, wallets, channels), as asked: it
/// settles at once, in one transfer. (One with a customer's mobile money goes through a
/// provider instead: `payments::NewProviderPayment`.)
#[derive(Debug)]
pub struct NewLedgerPayment<'a> {
    pub org: OrgId,
    /// The app that asks; none for an org key.
    pub app: Option<Uuid>,
    /// The id to make it under (a replay returns the original outcome); a new one when none.
    pub transaction_id: Option<Uuid>,
    pub debit_party: &'a Party,
    pub credit_party: &'a Party,
    pub amount: Money,
    pub narration: Option<&'a str>,
    /// The message that led to it (its context's `messageId`, checked by `context_effects`).
    pub message_id: Option<Uuid>,
}

/// The checked accounts of a [`NewLedgerPayment`], and the owners of its wallets.
#[derive(Debug)]
pub struct PaymentAccounts {
    pub debit: PartyAccount,
    pub credit: PartyAccount,
    /// The customers whose wallets it debits or credits, linked to the transfer.
    pub wallet_customers: Vec<CustomerId>,
}

impl NewLedgerPayment<'_> {
    /// The transfer that makes the payment: its context holds the parties, the narration and
    /// the app, and the `hazina` object with what the transfer does for its customers
    /// (`effects`, applied in the same database transaction).
    pub fn request(&self, accounts: &PaymentAccounts, effects: Effects) -> TransferRequest {
        let id = self.transaction_id.map_or_else(TransferId::generate, TransferId);
        let mut context = serde_json::Map::new();
        let mut payment = serde_json::json!({
            "debitParty": self.debit_party,
            "creditParty": self.credit_party,
            "narration": self.narration,
            "appId": self.app,
        });
        // Only when named, so that a payment without one is asked as before.
        if let Some(message) = self.message_id {
            payment["messageId"] = serde_json::json!(message);
        }
        context.insert("payment".into(), payment);
        let mut effects = effects;
        if let Some(app) = self.app {
            effects.set_app(app);
        }
        context.insert(
            context::HAZINA.into(),
            effects.into_hazina(accounts.wallet_customers.iter().copied()),
        );
        let amount = self.amount;
        TransferRequest {
            id,
            id_is_new: self.transaction_id.is_none(),
            org: self.org,
            action: Action::Post {
                postings: vec![
                    Posting { account: accounts.debit.id, side: Side::Debit, amount },
                    Posting { account: accounts.credit.id, side: Side::Credit, amount },
                ],
            },
            code: "payment".into(),
            effective_at: None,
            context: context.into(),
        }
    }
}
