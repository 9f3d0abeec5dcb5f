//! Messaging channels: one number of one channel at one provider, with its credentials
//! (sealed at rest), its callback token, its price per unit and the accounts its costs move
//! between.

use hazina_ledger::rules::AccountKind;
use hazina_ledger::store::NewAccount;
use hazina_ledger::{AccountId, Currency, Money, OrgId};
use hazina_providers::messaging::Channel;
use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::{MessagingError, Service};
use crate::code::Code;
use crate::customers::NumberProvider;

/// Who carries a channel's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Africa's Talking: SMS, USSD, voice.
    #[serde(rename = "africastalking")]
    AfricasTalking,
    /// Meta's Graph API: the WhatsApp Cloud API, Messenger.
    Meta,
    /// The Telegram Bot API.
    Telegram,
    /// Email through an SMTP server.
    Smtp,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AfricasTalking => "africastalking",
            Self::Meta => "meta",
            Self::Telegram => "telegram",
            Self::Smtp => "smtp",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::AfricasTalking, Self::Meta, Self::Telegram, Self::Smtp]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The channels the provider carries.
    pub fn carries(self, channel: Channel) -> bool {
        matches!(
            (self, channel),
            (Self::AfricasTalking, Channel::Sms | Channel::Ussd | Channel::Voice)
                | (Self::Meta, Channel::WhatsApp | Channel::Messenger)
                | (Self::Telegram, Channel::Telegram)
                | (Self::Smtp, Channel::Email)
        )
    }

    /// The credentials a channel of the provider needs.
    pub fn required_credentials(self, channel: Channel) -> &'static [&'static str] {
        match (self, channel) {
            (Self::AfricasTalking, _) => &["username", "apiKey"],
            (Self::Meta, Channel::WhatsApp) => {
                &["accessToken", "appSecret", "verifyToken", "phoneNumberId"]
            }
            (Self::Meta, _) => &["accessToken", "appSecret", "verifyToken"],
            (Self::Telegram, _) => &["botToken"],
            (Self::Smtp, _) => &[],
        }
    }

    /// The hosts the provider publishes its API at (production and sandbox); none for SMTP,
    /// whose server is the org's own mail relay.
    pub fn known_hosts(self) -> Option<&'static [&'static str]> {
        match self {
            Self::AfricasTalking => Some(&[
                "api.africastalking.com",
                "api.sandbox.africastalking.com",
                "voice.africastalking.com",
                "voice.sandbox.africastalking.com",
                "content.africastalking.com",
            ]),
            Self::Meta => Some(&["graph.facebook.com"]),
            Self::Telegram => Some(&["api.telegram.org"]),
            Self::Smtp => None,
        }
    }

    /// Every credential the provider knows of.
    fn known_credentials(self) -> &'static [&'static str] {
        match self {
            Self::AfricasTalking => &["username", "apiKey"],
            Self::Meta => &["accessToken", "appSecret", "verifyToken", "phoneNumberId"],
            Self::Telegram => &["botToken"],
            // A relay whose certificate a private CA signs names that CA (base64 DER).
            Self::Smtp => &["username", "password", "rootCertificate"],
        }
    }
}

/// The SMTP relay's own root from its `rootCertificate` credential (base64 DER), if the
/// channel has one: a trust anchor beside Mozilla's roots.
///
/// # Errors
///
/// `invalid_credential` when it is not base64, or not a certificate that can anchor trust.
pub fn smtp_root(text: Option<&str>) -> Result<Option<Vec<u8>>, MessagingError> {
    use base64::Engine as _;
    let Some(text) = text else { return Ok(None) };
    let refused = |why: &str| {
        MessagingError::invalid(Code::InvalidCredential, format!("rootCertificate {why}"))
    };
    let der = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| refused("is not base64 (the certificate's DER bytes)"))?;
    hazina_providers::http::TlsConfig::with_extra_root(&der)
        .map_err(|_| refused("is not a certificate that can anchor trust"))?;
    Ok(Some(der))
}

/// How a channel names its customers: the kind of customer number an address on it is.
pub fn number_provider(channel: Channel) -> NumberProvider {
    match channel {
        // A WhatsApp account is a phone number: the same customer as on SMS.
        Channel::Sms | Channel::Ussd | Channel::Voice | Channel::WhatsApp => {
            NumberProvider::Cellular
        }
        Channel::Telegram => NumberProvider::Telegram,
        Channel::Messenger => NumberProvider::Messenger,
        Channel::Email => NumberProvider::Email,
    }
}

/// A new channel, as the API takes it.
#[derive(Clone, Debug)]
pub struct NewChannel {
    pub channel: Channel,
    pub provider: ProviderKind,
    pub number: String,
    pub name: Option<String>,
    pub base_url: String,
    pub credentials: serde_json::Map<String, serde_json::Value>,
    /// What one unit costs (an SMS segment, a voice minute, a message).
    pub unit_price: Money,
    /// The org's purse that pays; required when the price is not zero.
    pub purse: Option<AccountId>,
    pub consent_required: bool,
    pub fallback_text: Option<String>,
}

/// A channel as stored, credentials included (never shown, never logged: `Debug` leaves
/// them out).
#[derive(Clone)]
pub struct ChannelRecord {
    pub id: Uuid,
    pub org: OrgId,
    pub channel: Channel,
    pub provider: ProviderKind,
    pub number: String,
    pub name: Option<String>,
    pub base_url: String,
    pub token: String,
    pub unit_price: Money,
    pub purse: Option<AccountId>,
    pub clearing: AccountId,
    pub consent_required: bool,
    pub fallback_text: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub credential_names: Vec<String>,
    credentials: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for ChannelRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRecord")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("provider", &self.provider)
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

const CHANNEL_COLUMNS: &str = "org_id, id, channel, provider, channel_number, name, base_url, \
    credentials, callback_token, currency, unit_price_minor, purse_id, clearing_account_id, \
    consent_required, fallback_text, created_at";

impl ChannelRecord {
    fn from_row(
        row: &tokio_postgres::Row,
        sealer: &crate::secrets::Sealer,
    ) -> Result<Self, MessagingError> {
        let id: Uuid = row.get(1);
        let channel = Channel::from_name(row.get(2)).ok_or_else(|| {
            MessagingError::Corrupt(format!("channel {:?}", row.get::<_, &str>(2)))
        })?;
        let provider = ProviderKind::from_name(row.get(3)).ok_or_else(|| {
            MessagingError::Corrupt(format!("provider {:?}", row.get::<_, &str>(3)))
        })?;
        let currency = Currency::from_code(row.get(9)).map_err(|_| {
            MessagingError::Corrupt(format!("currency {:?}", row.get::<_, &str>(9)))
        })?;
        let stored: serde_json::Value = row.get(7);
        let credential_names = crate::secrets::credential_names(&stored);
        let credentials = open(sealer, id, &stored)?;
        Ok(Self {
            org: OrgId(row.get(0)),
            id,
            channel,
            provider,
            number: row.get(4),
            name: row.get(5),
            base_url: row.get(6),
            token: row.get(8),
            unit_price: Money::from_minor(currency, row.get(10)),
            purse: row.get::<_, Option<Uuid>>(11).map(AccountId),
            clearing: AccountId(row.get(12)),
            consent_required: row.get(13),
            fallback_text: row.get(14),
            created_at: row.get(15),
            credential_names,
            credentials,
        })
    }

    /// A credential by its API name, when set.
    pub fn credential(&self, name: &str) -> Option<hazina_providers::Secret> {
        self.credentials.get(name).and_then(|v| v.as_str()).map(hazina_providers::Secret::new)
    }

    /// Whether a callback's token is this channel's: compared in constant time.
    pub fn verifies(&self, token: &str) -> bool {
        crate::secrets::constant_time_eq(self.token.as_bytes(), token.as_bytes())
    }

    /// The currency its costs are in.
    pub fn currency(&self) -> Currency {
        self.unit_price.currency()
    }
}

fn open(
    sealer: &crate::secrets::Sealer,
    channel: Uuid,
    stored: &serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>, MessagingError> {
    // Messaging channels were sealed from their first row: one that is not is unreadable.
    crate::secrets::open_credentials(sealer, channel, stored)
        .map_err(|error| unreadable(&error))?
        .ok_or(MessagingError::CredentialsUnreadable)
}

fn unreadable(error: &dyn std::error::Error) -> MessagingError {
    tracing::error!(error = %error, "messaging channel credentials cannot be sealed or opened; \
        is this the credentials key file they were sealed with?");
    MessagingError::CredentialsUnreadable
}

/// Checks a channel number for its channel.
fn check_number(channel: Channel, number: &str) -> Result<(), MessagingError> {
    let bad = |why: &str| {
        Err(MessagingError::invalid(Code::InvalidChannelNumber, format!("{why} ({number:?})")))
    };
    let trimmed = number.trim();
    if trimmed.is_empty() || trimmed.len() > 64 || trimmed != number {
        return bad("the channel number is empty, too long or padded");
    }
    match channel {
        Channel::Sms => {
            let short_code = number.len() <= 8 && number.bytes().all(|b| b.is_ascii_digit());
            let sender_id = number.len() <= 11
                && number.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-');
            let phone = crate::customers::is_e164(number);
            if !(short_code || sender_id || phone) {
                return bad("an SMS channel number is a short code, a sender id of at most 11 \
                    letters and digits, or an E.164 number");
            }
        }
        Channel::Ussd => {
            let code = number.starts_with('*')
                && number.ends_with('#')
                && number.bytes().all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
            if !code {
                return bad("a USSD code looks like *384*123#");
            }
        }
        Channel::Voice | Channel::WhatsApp => {
            if !crate::customers::is_e164(number) {
                return bad("a voice or WhatsApp number is an E.164 number (+<country><number>)");
            }
        }
        Channel::Telegram => {
            let name = number.strip_prefix('@').unwrap_or(number);
            if !(name.len() >= 5 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')) {
                return bad("a Telegram bot name is letters, digits and underscores");
            }
        }
        Channel::Messenger => {
            if !number.bytes().all(|b| b.is_ascii_digit()) {
                return bad("a Messenger channel number is the page's numeric id");
            }
        }
        Channel::Email => {
            if !crate::customers::is_email(number) {
                return bad("an email channel number is an email address");
            }
        }
    }
    Ok(())
}

/// The checks of a new channel that need no database: the provider carries the channel, the
/// number fits it, the credentials are known and complete, the price and its purse.
pub fn check_new(new: &NewChannel) -> Result<(), MessagingError> {
    if !new.provider.carries(new.channel) {
        return Err(MessagingError::invalid(
            Code::NotSupported,
            format!("{} does not carry {}", new.provider.as_str(), new.channel.as_str()),
        ));
    }
    check_number(new.channel, &new.number)?;
    let known = new.provider.known_credentials();
    if let Some(unknown) = new.credentials.keys().find(|name| !known.contains(&name.as_str())) {
        return Err(MessagingError::invalid(
            Code::UnknownCredential,
            format!("{unknown:?} is not a credential of {}", new.provider.as_str()),
        ));
    }
    let missing: Vec<&str> = (new.provider.required_credentials(new.channel).iter())
        .copied()
        .filter(|name| {
            (new.credentials.get(*name).and_then(|v| v.as_str())).is_none_or(str::is_empty)
        })
        .collect();
    if !missing.is_empty() {
        return Err(MessagingError::invalid(
            Code::MissingCredentials,
            format!("the channel needs {}", missing.join(", ")),
        ));
    }
    if new.provider == ProviderKind::Smtp {
        smtp_root(new.credentials.get("rootCertificate").and_then(|value| value.as_str()))?;
    }
    if new.unit_price.amount().is_sign_negative() {
        return Err(MessagingError::invalid(Code::InvalidAmount, "a price is not negative"));
    }
    if new.unit_price.is_positive() && new.purse.is_none() {
        return Err(MessagingError::invalid(
            Code::InvalidPurse,
            "a channel whose messages cost money names the purse that pays (purseId)",
        ));
    }
    Ok(())
}

impl Service {
    /// Adds a channel with its clearing account. A channel's number is unique per channel in
    /// the org: `channel_exists`.
    pub async fn create_channel(
        &self,
        org: OrgId,
        new: NewChannel,
    ) -> Result<ChannelRecord, MessagingError> {
        check_new(&new)?;
        if let Some(known) = new.provider.known_hosts() {
            let hosts = self.settings().provider_hosts;
            hosts
                .check_known(known, &new.base_url)
                .map_err(|why| MessagingError::invalid(Code::ProviderUrlNotAllowed, why))?;
        }
        if let Some(purse) = new.purse {
            let account = self.store.account(org, purse).await?;
            let Some(account) = account.filter(|a| a.kind == AccountKind::Purse) else {
                return Err(MessagingError::invalid(
                    Code::InvalidPurse,
                    "no such purse in the org",
                ));
            };
            if account.currency != new.unit_price.currency() {
                return Err(MessagingError::invalid(
                    Code::CurrencyMismatch,
                    "the purse's currency is not the price's",
                ));
            }
        }
        let id = Uuid::now_v7();
        let credentials = crate::secrets::seal_credentials(&self.sealer, id, &new.credentials)
            .map_err(|e| unreadable(&e))?;
        let mut account = NewAccount::new(org, AccountKind::Channel, new.unit_price.currency());
        account.name =
            Some(format!("{} {} {}", new.provider.as_str(), new.channel.as_str(), new.number));
        let token = crate::secrets::random_token();
        let price = new
            .unit_price
            .to_minor()
            .map_err(|e| MessagingError::invalid(Code::InvalidAmount, e.to_string()))?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let inserted = tx
            .query_one(
                &format!(
                    "INSERT INTO messaging_channels (org_id, id, channel, provider, channel_number,
                         name, base_url, credentials, callback_token, currency, unit_price_minor,
                         purse_id, clearing_account_id, consent_required, fallback_text)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                         coalesce($15, 'Sorry, the service is unavailable. Please try again later.'))
                     RETURNING {CHANNEL_COLUMNS}"
                ),
                &[
                    &org.0,
                    &id,
                    &new.channel.as_str(),
                    &new.provider.as_str(),
                    &new.number,
                    &new.name,
                    &new.base_url,
                    &credentials,
                    &token,
                    &new.unit_price.currency().code(),
                    &price,
                    &new.purse.map(|p| p.0),
                    &account.id.0,
                    &new.consent_required,
                    &new.fallback_text,
                ],
            )
            .await;
        let row = match inserted {
            Ok(row) => row,
            Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                return Err(MessagingError::Conflict {
                    code: Code::ChannelExists,
                    detail: "the org already has this channel number".to_owned(),
                });
            }
            Err(error) => return Err(error.into()),
        };
        self.store.create_account(&account).await?;
        tx.commit().await?;
        ChannelRecord::from_row(&row, &self.sealer)
    }

    /// The org's channels, oldest first.
    pub async fn channels(&self, org: OrgId) -> Result<Vec<ChannelRecord>, MessagingError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {CHANNEL_COLUMNS} FROM messaging_channels WHERE org_id = $1 ORDER BY id"
                ),
                &[&org.0],
            )
            .await?;
        rows.iter().map(|row| ChannelRecord::from_row(row, &self.sealer)).collect()
    }

    /// One of the org's channels.
    pub async fn channel(&self, org: OrgId, id: Uuid) -> Result<ChannelRecord, MessagingError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {CHANNEL_COLUMNS} FROM messaging_channels WHERE org_id = $1 AND id = $2"
                ),
                &[&org.0, &id],
            )
            .await?
            .ok_or(MessagingError::Invalid {
                code: Code::ChannelNotFound,
                detail: "no such messaging channel in the org".to_owned(),
            })?;
        ChannelRecord::from_row(&row, &self.sealer)
    }

    /// A channel by id alone, for a callback whose URL names it (the token then proves it).
    pub async fn channel_of_callback(
        &self,
        id: Uuid,
    ) -> Result<Option<ChannelRecord>, MessagingError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!("SELECT {CHANNEL_COLUMNS} FROM messaging_channels WHERE id = $1"),
                &[&id],
            )
            .await?;
        row.map(|row| ChannelRecord::from_row(&row, &self.sealer)).transpose()
    }
}
