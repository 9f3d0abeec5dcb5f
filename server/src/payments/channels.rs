//! Payment channels as an org keeps them: an endpoint at a provider, with its clearing account
//! in the ledger, its credentials sealed at rest (only their names kept in the open) and its
//! treasury limit. Added, listed, read and given a limit here; the engine's own view of a
//! channel, credentials opened, is [`super::Channel`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hazina_ledger::rules::AccountKind;
use hazina_ledger::store::NewAccount;
use hazina_ledger::{AccountId, Currency, Money, OrgId};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::provider::{Adapter as _, adapter};
use super::{Engine, Flow, PaymentError, error};
use crate::code::Code;
use crate::secrets::Sealer;

/// Longest MoMo channel number.
pub const CHANNEL_NUMBER_LEN_MAX: usize = 64;

/// The providers a channel can be at.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Safaricom M-Pesa (Daraja): a paybill, till or B2C shortcode.
    Mpesa,
    /// MTN MoMo Open API: collection and disbursement.
    Momo,
    /// Africa's Talking: airtime, paid out to a customer's number (`payments/airtime.rs`).
    Africastalking,
    /// A bank account: payouts sent as ISO 20022 pain.001 files through a file-exchange
    /// directory, answered by pain.002 and camt.054 files (`payments/bank.rs`).
    Bank,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mpesa => "mpesa",
            Self::Momo => "momo",
            Self::Africastalking => "africastalking",
            Self::Bank => "bank",
        }
    }

    /// The credentials a channel of this provider needs (names as the API takes them).
    pub fn required_credentials(self) -> &'static [&'static str] {
        match self {
            Self::Mpesa => &["consumerKey", "consumerSecret"],
            Self::Momo => &["apiUser", "apiKey", "subscriptionKey", "targetEnvironment"],
            Self::Africastalking => &["username", "apiKey"],
            // The bank's files travel through a directory the operator's agent serves.
            Self::Bank => &[],
        }
    }

    /// Every credential this provider's channels may carry.
    pub fn known_credentials(self) -> &'static [&'static str] {
        match self {
            Self::Mpesa => {
                &["consumerKey", "consumerSecret", "passkey", "initiatorName", "securityCredential"]
            }
            Self::Momo => &["apiUser", "apiKey", "subscriptionKey", "targetEnvironment"],
            Self::Africastalking => &["username", "apiKey"],
            Self::Bank => &[],
        }
    }

    /// Whether `number` is a channel number of this provider.
    pub fn valid_number(self, number: &str) -> bool {
        match self {
            // Paybills, tills and shortcodes are 5 to 7 digits.
            Self::Mpesa => {
                (5..=7).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit())
            }
            // The org's name for the account (its username, say), as payouts name it.
            Self::Momo | Self::Africastalking => {
                !number.trim().is_empty()
                    && number.len() <= CHANNEL_NUMBER_LEN_MAX
                    && !number.chars().any(char::is_control)
            }
            // The org's debtor account, as a bank file writes it (an IBAN without spaces, or
            // another account number).
            Self::Bank => hazina_providers::iso20022::bank::account(number)
                .is_ok_and(|account| account == number),
        }
    }
}

/// A payment channel as the engine uses it, credentials included (never shown, never logged:
/// `Debug` leaves them out).
#[derive(Clone)]
pub struct Channel {
    pub id: Uuid,
    pub org: OrgId,
    pub provider: Provider,
    pub number: String,
    pub currency: Currency,
    pub base_url: String,
    pub clearing: AccountId,
    pub token: String,
    pub receiving_purse: Option<AccountId>,
    /// The most an org key may move out of the clearing account in one payment.
    pub treasury_limit: Money,
    credentials: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

impl Channel {
    pub(super) const COLUMNS: &str = "id, org_id, provider, channel_number, currency, base_url, \
        clearing_account_id, callback_token, receiving_purse_id, credentials, \
        treasury_limit_minor";

    pub(super) fn from_row(
        row: &tokio_postgres::Row,
        sealer: &Sealer,
    ) -> Result<Self, PaymentError> {
        let id: Uuid = row.get(0);
        let provider = match row.get::<_, &str>(2) {
            "mpesa" => Provider::Mpesa,
            "momo" => Provider::Momo,
            "africastalking" => Provider::Africastalking,
            "bank" => Provider::Bank,
            other => return Err(PaymentError::Corrupt(format!("unknown provider {other:?}"))),
        };
        let currency: &str = row.get(4);
        let stored: serde_json::Value = row.get(9);
        let credentials = open_credentials(sealer, id, &stored)?;
        let currency = error::stored_currency(currency)?;
        Ok(Self {
            id,
            org: OrgId(row.get(1)),
            provider,
            number: row.get(3),
            currency,
            base_url: row.get(5),
            clearing: AccountId(row.get(6)),
            token: row.get(7),
            receiving_purse: row.get::<_, Option<Uuid>>(8).map(AccountId),
            treasury_limit: Money::from_minor(currency, row.get(10)),
            credentials,
        })
    }

    /// A credential by its API name, when set.
    pub(super) fn credential(&self, name: &str) -> Option<hazina_providers::Secret> {
        self.credentials.get(name).and_then(|v| v.as_str()).map(hazina_providers::Secret::new)
    }

    /// The credentials the flow needs that the channel lacks.
    pub fn missing_for(&self, flow: Flow) -> Vec<&'static str> {
        let needed: &[&'static str] = match (self.provider, flow) {
            (Provider::Mpesa, Flow::Payout | Flow::Received) => {
                &["initiatorName", "securityCredential"]
            }
            (Provider::Mpesa, Flow::Collect) => &["passkey"],
            (Provider::Momo | Provider::Africastalking | Provider::Bank, _) => &[],
        };
        needed.iter().copied().filter(|name| self.credential(name).is_none()).collect()
    }

    /// Whether a callback's token is this channel's: compared in constant time.
    pub fn verifies(&self, token: &str) -> bool {
        crate::secrets::constant_time_eq(self.token.as_bytes(), token.as_bytes())
    }
}

/// Longest credential value.
const CREDENTIAL_LEN_MAX: usize = 4096;
/// Longest base URL.
const BASE_URL_LEN_MAX: usize = 2048;

/// What a channel's summary is read from, in [`ChannelSummary::from_row`]'s order.
const SUMMARY_COLUMNS: &str = "id, provider, channel_number, currency, name, base_url, \
    clearing_account_id, credentials, created_at, receiving_purse_id, treasury_limit_minor, \
    callback_token";

/// A new payment channel, as a front door hands it over: its currency and treasury limit
/// parsed, the rest as the org gave it (checked by [`Engine::check_new_channel`]).
#[derive(Clone)]
pub struct NewChannel {
    pub provider: Provider,
    /// The paybill, till or shortcode (M-Pesa), the MoMo account's id, or the org's name for
    /// an Africa's Talking account: what payouts name.
    pub number: String,
    pub currency: Currency,
    pub name: Option<String>,
    /// The provider's API address.
    pub base_url: String,
    /// The provider's credentials by their API names.
    pub credentials: BTreeMap<String, String>,
    /// The most an org key may move out of the clearing account in one payment or transfer;
    /// none when absent.
    pub treasury_limit: Option<Money>,
}

impl std::fmt::Debug for NewChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The credentials' values never reach a log: their names do.
        f.debug_struct("NewChannel")
            .field("provider", &self.provider)
            .field("number", &self.number)
            .field("currency", &self.currency)
            .field("base_url", &self.base_url)
            .field("credentials", &self.credentials.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A payment channel as the org sees it: everything but its credentials' values.
#[derive(Clone, Debug)]
pub struct ChannelSummary {
    pub id: Uuid,
    pub provider: Provider,
    pub number: String,
    pub currency: Currency,
    pub name: Option<String>,
    pub base_url: String,
    /// The ledger account of the money held at the provider through this channel.
    pub clearing: AccountId,
    /// The names of the credentials set.
    pub credential_names: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Where unprompted payments go when no wallet takes them (set by C2B registration).
    pub receiving_purse: Option<AccountId>,
    /// The most an org key may move out of the clearing account in one payment or transfer.
    pub treasury_limit: Money,
    /// Africa's Talking channels: the path on this server of the account's airtime status
    /// callback (it carries the channel's secret token).
    pub airtime_status_callback_path: Option<String>,
}

impl ChannelSummary {
    pub(super) fn from_row(row: &tokio_postgres::Row) -> Result<Self, PaymentError> {
        let id: Uuid = row.get(0);
        let provider = stored_provider(row.get(1))?;
        let currency = error::stored_currency(row.get(3))?;
        let credentials: serde_json::Value = row.get(7);
        let airtime_status_callback_path = (provider == Provider::Africastalking)
            .then(|| super::airtime::status_callback_path(id, row.get(11)));
        Ok(Self {
            id,
            provider,
            number: row.get(2),
            currency,
            name: row.get(4),
            base_url: row.get(5),
            clearing: AccountId(row.get(6)),
            credential_names: crate::secrets::credential_names(&credentials),
            created_at: row.get(8),
            receiving_purse: row.get::<_, Option<Uuid>>(9).map(AccountId),
            treasury_limit: Money::from_minor(currency, row.get(10)),
            airtime_status_callback_path,
        })
    }
}

/// A stored provider name this version cannot read is corrupt, never guessed at.
fn stored_provider(name: &str) -> Result<Provider, PaymentError> {
    [Provider::Mpesa, Provider::Momo, Provider::Africastalking, Provider::Bank]
        .into_iter()
        .find(|provider| provider.as_str() == name)
        .ok_or_else(|| PaymentError::Corrupt(format!("unknown provider {name:?}")))
}

/// The credentials of a stored channel: sealed, or plain from before sealing existed.
pub(super) fn open_credentials(
    sealer: &Sealer,
    channel: Uuid,
    stored: &serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>, PaymentError> {
    match crate::secrets::open_credentials(sealer, channel, stored) {
        Ok(Some(credentials)) => Ok(credentials),
        Ok(None) => Ok(stored.as_object().cloned().unwrap_or_default()),
        Err(error) => Err(unreadable(&error)),
    }
}

/// Credentials that cannot be sealed or opened: the key file is not the one they were sealed
/// with, or the system has no randomness. The operator's problem, logged, never shown.
fn unreadable(error: &dyn std::error::Error) -> PaymentError {
    tracing::error!(error = %error, "channel credentials cannot be sealed or opened; \
        is this the credentials key file they were sealed with?");
    PaymentError::CredentialsUnreadable
}

/// The checks of a new channel's own fields, in the order a request with several faults is
/// answered: its number for its provider, its name, its address, then its credentials (each
/// known to the provider and of a sane length, in name order) and the ones the provider needs.
fn check(new: &NewChannel) -> Result<(), PaymentError> {
    let provider = new.provider;
    if !provider.valid_number(&new.number) {
        return Err(PaymentError::invalid(
            Code::InvalidChannelNumber,
            match provider {
                Provider::Mpesa => {
                    "an M-Pesa channel number is a paybill, till or shortcode of 5 to 7 digits"
                }
                Provider::Momo => "a MoMo channel number has 1 to 64 characters",
                Provider::Africastalking => {
                    "an Africa's Talking channel number (the org's name for the account, its \
                     username say) has 1 to 64 characters"
                }
                Provider::Bank => {
                    "a bank channel number is the org's account: an IBAN with correct check \
                     digits, or an account number of 1 to 34 letters and digits, without spaces"
                }
            },
        ));
    }
    if let Some(name) = &new.name
        && (name.trim().is_empty() || name.chars().count() > crate::tenancy::NAME_LEN_MAX)
    {
        return Err(PaymentError::invalid(
            Code::InvalidName,
            "a channel name has 1 to 100 characters",
        ));
    }
    let url = new.base_url.trim();
    if provider == Provider::Bank {
        // Files travel through the operator's exchange directory: no address comes from the
        // API, so that no caller can make the server reach anywhere.
        if !url.is_empty() {
            return Err(PaymentError::invalid(
                Code::InvalidBaseUrl,
                "a bank channel exchanges files through the server's directory; it has no base URL",
            ));
        }
        return check_credentials(new);
    }
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok || url.len() > BASE_URL_LEN_MAX || url.chars().any(char::is_whitespace) {
        return Err(PaymentError::invalid(
            Code::InvalidBaseUrl,
            "a base URL is an http:// or https:// address of at most 2048 characters",
        ));
    }
    check_credentials(new)
}

/// The checks of a new channel's credentials: each known to the provider and of a sane length,
/// in name order, then the ones the provider needs.
fn check_credentials(new: &NewChannel) -> Result<(), PaymentError> {
    let provider = new.provider;
    let known = provider.known_credentials();
    for (name, value) in &new.credentials {
        if !known.contains(&name.as_str()) {
            return Err(PaymentError::invalid(
                Code::UnknownCredential,
                format!("{} channels take the credentials {}", provider.as_str(), known.join(", ")),
            ));
        }
        if value.is_empty() || value.len() > CREDENTIAL_LEN_MAX || value.contains('\0') {
            return Err(PaymentError::invalid(
                Code::InvalidCredential,
                format!("the credential {name} is empty or too long"),
            ));
        }
    }
    let missing: Vec<&str> = provider
        .required_credentials()
        .iter()
        .copied()
        .filter(|name| !new.credentials.contains_key(*name))
        .collect();
    if !missing.is_empty() {
        return Err(PaymentError::invalid(
            Code::MissingCredentials,
            format!("a {} channel needs {}", provider.as_str(), missing.join(", ")),
        ));
    }
    Ok(())
}

/// A treasury limit in the channel's currency, as minor units.
fn treasury_limit_minor(limit: Money, currency: Currency) -> Result<i64, PaymentError> {
    if limit.currency() != currency {
        return Err(PaymentError::invalid(
            Code::CurrencyMismatch,
            format!("the channel moves {}, not {}", currency.code(), limit.currency().code()),
        ));
    }
    if limit.amount().is_sign_negative() {
        return Err(PaymentError::invalid(Code::InvalidAmount, "a treasury limit is not negative"));
    }
    limit.to_minor().map_err(|error| PaymentError::invalid(Code::InvalidAmount, error.to_string()))
}

impl Engine {
    /// The checks of a new channel that need no database: its own fields (see [`check`]), and
    /// an address the operator lets channels of its provider call. The treasury limit is
    /// checked by [`Engine::create_channel`], against the channel's currency.
    ///
    /// # Errors
    ///
    /// `Invalid`, with the code of the first fault.
    pub fn check_new_channel(&self, new: &NewChannel) -> Result<(), PaymentError> {
        check(new)?;
        (self.settings().provider_hosts.check(new.provider, &new.base_url))
            .map_err(|why| PaymentError::invalid(Code::ProviderUrlNotAllowed, why))
    }

    /// Adds a payment channel with its clearing account. A provider's channel number is unique
    /// in the org: `Conflict` with `channel_exists`.
    ///
    /// # Errors
    ///
    /// `Invalid` as [`Engine::check_new_channel`], or for a treasury limit in another currency
    /// or below zero; `Conflict`; `CredentialsUnreadable` when they cannot be sealed; the
    /// database's and the ledger store's failures.
    pub async fn create_channel(
        &self,
        org: OrgId,
        new: NewChannel,
    ) -> Result<ChannelSummary, PaymentError> {
        self.create_channel_with(org, new, None).await
    }

    /// Adds a bank channel: the channel as [`Engine::create_channel`] does, and its bank
    /// details and cut-off schedule in the same transaction.
    ///
    /// # Errors
    ///
    /// As [`Engine::create_channel`]; `Invalid` `not_supported` for another provider.
    pub async fn create_bank_channel(
        &self,
        org: OrgId,
        new: NewChannel,
        bank: super::bank::BankDetails,
    ) -> Result<ChannelSummary, PaymentError> {
        if new.provider != Provider::Bank {
            return Err(PaymentError::invalid(
                Code::NotSupported,
                "bank details are for bank channels only",
            ));
        }
        self.create_channel_with(org, new, Some(bank)).await
    }

    async fn create_channel_with(
        &self,
        org: OrgId,
        new: NewChannel,
        bank: Option<super::bank::BankDetails>,
    ) -> Result<ChannelSummary, PaymentError> {
        self.check_new_channel(&new)?;
        if new.provider == Provider::Bank && bank.is_none() {
            return Err(PaymentError::invalid(
                Code::MissingBankDetails,
                "a bank channel needs its bank details: debtor name, BIC and cut-off times",
            ));
        }
        let limit =
            new.treasury_limit.map_or(Ok(0), |limit| treasury_limit_minor(limit, new.currency))?;
        let mut account = NewAccount::new(org, AccountKind::Channel, new.currency);
        account.name = Some(format!("{} {}", new.provider.as_str(), new.number));
        let credentials: serde_json::Map<String, serde_json::Value> = (new.credentials.iter())
            .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
            .collect();
        let id = Uuid::now_v7();
        // Sealed at rest, bound to this row; only their names are kept in the open.
        let credentials = crate::secrets::seal_credentials(&self.sealer, id, &credentials)
            .map_err(|error| unreadable(&error))?;
        // The channel's row is written first and committed last: a duplicate fails before any
        // account exists, and a failure to create the account leaves no channel behind.
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let inserted = tx
            .query_one(
                &format!(
                    "INSERT INTO payment_channels (id, org_id, provider, channel_number, currency,
                         name, base_url, credentials, clearing_account_id, treasury_limit_minor)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     RETURNING {SUMMARY_COLUMNS}"
                ),
                &[
                    &id,
                    &org.0,
                    &new.provider.as_str(),
                    &new.number,
                    &new.currency.code(),
                    &new.name.as_deref().map(str::trim),
                    &new.base_url.trim(),
                    &credentials,
                    &account.id.0,
                    &limit,
                ],
            )
            .await;
        let row = match inserted {
            Ok(row) => row,
            Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                return Err(PaymentError::Conflict {
                    code: Code::ChannelExists,
                    detail: "the org already has this provider's channel number".to_owned(),
                });
            }
            Err(error) => return Err(error.into()),
        };
        if let Some(bank) = &bank {
            bank.insert(&tx, org, id).await?;
        }
        self.store().create_account(&account).await?;
        tx.commit().await?;
        tracing::info!(channel = %id, provider = new.provider.as_str(), "channel added");
        ChannelSummary::from_row(&row)
    }

    /// The org's payment channels, oldest first.
    pub async fn list_channels(&self, org: OrgId) -> Result<Vec<ChannelSummary>, PaymentError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM payment_channels WHERE org_id = $1 ORDER BY id"
                ),
                &[&org.0],
            )
            .await?;
        rows.iter().map(ChannelSummary::from_row).collect()
    }

    /// One of the org's payment channels (another org's is indistinguishable from a missing
    /// one: `NotFound`).
    pub async fn channel_summary(
        &self,
        org: OrgId,
        id: Uuid,
    ) -> Result<ChannelSummary, PaymentError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM payment_channels WHERE id = $1 AND org_id = $2"
                ),
                &[&id, &org.0],
            )
            .await?
            .ok_or(PaymentError::NotFound("channel"))?;
        ChannelSummary::from_row(&row)
    }

    /// Sets how much an org key may move out of the channel's clearing account in one payment
    /// or transfer (`limit`, in the channel's currency; zero allows none).
    ///
    /// # Errors
    ///
    /// `NotFound`; `Invalid` for a limit in another currency or below zero.
    pub async fn set_treasury_limit(
        &self,
        org: OrgId,
        id: Uuid,
        limit: Money,
    ) -> Result<ChannelSummary, PaymentError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT currency FROM payment_channels WHERE id = $1 AND org_id = $2",
                &[&id, &org.0],
            )
            .await?
            .ok_or(PaymentError::NotFound("channel"))?;
        let limit = treasury_limit_minor(limit, error::stored_currency(row.get(0))?)?;
        let row = client
            .query_one(
                &format!(
                    "UPDATE payment_channels SET treasury_limit_minor = $3
                     WHERE id = $1 AND org_id = $2 RETURNING {SUMMARY_COLUMNS}"
                ),
                &[&id, &org.0, &limit],
            )
            .await?;
        tracing::info!(channel = %id, limit, "treasury limit set");
        ChannelSummary::from_row(&row)
    }
}

impl Engine {
    /// Sets the channel's receiving purse and registers its C2B URLs with the provider.
    ///
    /// # Errors
    ///
    /// 422 `not_supported` for a provider without unprompted payments, `provider_refused` when
    /// the provider refuses; 424 `provider_unavailable` when it cannot be reached.
    pub async fn register_c2b(
        &self,
        channel: &Channel,
        receiving_purse: AccountId,
    ) -> Result<(), PaymentError> {
        if !adapter!(channel.provider, A => A::RECEIVES_UNPROMPTED) {
            return Err(PaymentError::invalid(
                Code::NotSupported,
                "only M-Pesa channels receive unprompted payments",
            ));
        }
        self.settings()
            .provider_hosts
            .check(channel.provider, &channel.base_url)
            .map_err(|why| PaymentError::invalid(Code::ProviderUrlNotAllowed, why))?;
        // The provider first: a refusal, or a provider that cannot be reached, leaves the
        // channel as it was. Registering again is harmless, so a failure to record the purse
        // after it is mended by asking again.
        adapter!(channel.provider, A => A::register_unprompted(self, channel).await)?;
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE payment_channels SET receiving_purse_id = $3 WHERE org_id = $1 AND id = $2",
                &[&channel.org.0, &channel.id, &receiving_purse.0],
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn kes() -> Currency {
        Currency::from_code("KES").unwrap()
    }

    fn paybill() -> NewChannel {
        NewChannel {
            provider: Provider::Mpesa,
            number: "600000".to_owned(),
            currency: kes(),
            name: Some("Web shop paybill".to_owned()),
            base_url: "https://sandbox.safaricom.co.ke".to_owned(),
            credentials: [("consumerKey", "k3y"), ("consumerSecret", "s3cr3t")]
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
            treasury_limit: None,
        }
    }

    fn code(new: &NewChannel) -> Option<Code> {
        check(new).err().map(|error| error.code())
    }

    #[test]
    fn a_request_with_several_faults_is_answered_with_the_first() {
        type Fault = fn(&mut NewChannel);
        let mut new = paybill();
        assert_eq!(code(&new), None);
        // Each fault is added in front of the ones before it, and must be the one answered.
        let faults: [(Fault, Code); 6] = [
            (|new| drop(new.credentials.remove("consumerSecret")), Code::MissingCredentials),
            (
                |new| drop(new.credentials.insert("zzz".to_owned(), "v".to_owned())),
                Code::UnknownCredential,
            ),
            (
                |new| drop(new.credentials.insert("consumerKey".to_owned(), String::new())),
                Code::InvalidCredential,
            ),
            (|new| new.base_url = "ftp://sandbox.safaricom.co.ke".to_owned(), Code::InvalidBaseUrl),
            (|new| new.name = Some(" ".to_owned()), Code::InvalidName),
            (|new| new.number = "12".to_owned(), Code::InvalidChannelNumber),
        ];
        for (fault, expected) in faults {
            fault(&mut new);
            assert_eq!(code(&new), Some(expected), "{new:?}");
        }
    }

    #[test]
    fn a_treasury_limit_is_in_the_channel_s_currency_and_not_negative() {
        let money = |currency: &str, amount: &str| {
            Money::parse(Currency::from_code(currency).unwrap(), amount).unwrap()
        };
        assert_eq!(treasury_limit_minor(money("KES", "250000.00"), kes()).unwrap(), 25_000_000);
        assert_eq!(treasury_limit_minor(money("KES", "0"), kes()).unwrap(), 0);
        for (limit, expected) in
            [(money("EUR", "1"), Code::CurrencyMismatch), (money("KES", "-1"), Code::InvalidAmount)]
        {
            let error = treasury_limit_minor(limit, kes()).unwrap_err();
            assert_eq!(error.code(), expected, "{error}");
        }
    }

    #[test]
    fn a_new_channel_prints_its_credentials_names_not_their_values() {
        let printed = format!("{:?}", paybill());
        assert!(printed.contains("consumerSecret"), "{printed}");
        assert!(!printed.contains("s3cr3t") && !printed.contains("k3y"), "{printed}");
    }
}
