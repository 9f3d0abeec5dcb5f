//! The parties of a payment (purses, wallets, channels, customers' mobile money) and the
//! accounts they resolve to, remembered in a cache since none of it ever changes.

use hazina_ledger::rules::AccountKind;
use hazina_ledger::store::Account;
use hazina_ledger::{AccountId, Currency, CustomerId, OrgId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{MoneyError, Service};
use crate::code::Code;
use crate::schema::{self, Holds, Keyed};

/// One side of a payment: an object with exactly one of `purse`, `wallet`, `customer` and
/// `channel`, which says what the party is and holds what finds it.
///
/// Each variant is a schema of its own (`PurseParty`, …), so that client generators give each
/// a model of its own.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Party {
    Purse(PurseRef),
    Wallet(WalletRef),
    Customer(CustomerAccountRef),
    Channel(ChannelRef),
}

/// One of the org's purses.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PurseRef {
    pub purse_id: Uuid,
}

/// A customer's wallet.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WalletRef {
    pub customer_id: Uuid,
    pub wallet_id: String,
}

/// A customer's mobile-money account, reached through one of the org's payment channels:
/// paying it is a payout (B2C), taking from it a collection (STK push, request to pay). Through
/// a bank channel, the customer's bank account (`bankAccount`) is paid, by a pain.001 file.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerAccountRef {
    pub customer_number: crate::customers::CustomerNumber,
    /// The channel's number (paybill, shortcode, MoMo account, the org's bank account).
    #[schema(min_length = 1, max_length = 64)]
    pub channel_number: String,
    /// The account a bank channel pays (required through a bank channel, refused otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_account: Option<BankAccountRef>,
}

/// A bank account to pay: its number, the holder's name and, where the scheme needs it, the
/// bank's BIC.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BankAccountRef {
    /// An IBAN (checked by its check digits; spaces allowed) or another account number of 1 to
    /// 34 letters and digits.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9 ]*[A-Za-z0-9][A-Za-z0-9 ]*$",
        example = "NL91ABNA0417164300"
    )]
    pub account_number: String,
    /// The account holder's name (`Cdtr/Nm`).
    #[schema(
        min_length = 1,
        max_length = 140,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u001f\u007f-\u009f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$",
        example = "Jane Wanjiru"
    )]
    pub name: String,
    /// The creditor's bank (8 or 11 characters); optional where the account number names it.
    #[schema(pattern = r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$", example = "ABNANL2A")]
    pub bic: Option<String>,
}

/// One of the org's payment channels itself: its clearing account, the money held at the
/// provider (to fund a payout float from a purse, or sweep collections into one).
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelRef {
    #[schema(min_length = 1, max_length = 64)]
    pub channel_number: String,
}

/// The variants of [`Party`], each a schema of its own.
const PARTY_VARIANTS: [Keyed; 4] = [
    Keyed {
        name: "PurseParty",
        key: "purse",
        holds: Holds::Schema("PurseRef"),
        description: "One of the org's purses.",
    },
    Keyed {
        name: "WalletParty",
        key: "wallet",
        holds: Holds::Schema("WalletRef"),
        description: "A customer's wallet.",
    },
    Keyed {
        name: "CustomerParty",
        key: "customer",
        holds: Holds::Schema("CustomerAccountRef"),
        description: "A customer's mobile-money account, through one of the org's payment channels.",
    },
    Keyed {
        name: "ChannelParty",
        key: "channel",
        holds: Holds::Schema("ChannelRef"),
        description: "A payment channel's clearing account.",
    },
];

impl utoipa::PartialSchema for Party {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        schema::keyed_union(
            "One side of a payment: an object with exactly one of `purse`, `wallet`, `customer` \
             and `channel`.",
            &PARTY_VARIANTS,
        )
    }
}

impl utoipa::ToSchema for Party {
    fn schemas(schemas: &mut schema::Schemas) {
        use utoipa::PartialSchema;
        schema::keyed_variants(&PARTY_VARIANTS, schemas);
        schemas.extend([
            ("PurseRef".to_owned(), PurseRef::schema()),
            ("WalletRef".to_owned(), WalletRef::schema()),
            ("CustomerAccountRef".to_owned(), CustomerAccountRef::schema()),
            ("ChannelRef".to_owned(), ChannelRef::schema()),
        ]);
        <CustomerAccountRef as utoipa::ToSchema>::schemas(schemas);
    }
}

/// What a payment needs of a party's account. None of it ever changes (a closed account is
/// refused by the ledger itself), so it is cached.
#[derive(Clone, Copy, Debug)]
pub struct PartyAccount {
    pub id: AccountId,
    pub currency: Currency,
    pub kind: AccountKind,
}

/// Recently resolved parties, by org and party.
#[derive(Debug, Default)]
pub struct PartyCache {
    entries: std::sync::Mutex<std::collections::HashMap<(Uuid, String), PartyAccount>>,
}

impl PartyCache {
    /// Most parties remembered; past it the cache starts again empty.
    const ENTRIES_MAX: usize = 100_000;

    fn get(&self, key: &(Uuid, String)) -> Option<PartyAccount> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).copied()
    }

    fn put(&self, key: (Uuid, String), account: PartyAccount) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= Self::ENTRIES_MAX {
            entries.clear();
        }
        entries.insert(key, account);
    }
}

/// The refusal of a customer's mobile money where only the ledger's parties may be.
fn not_a_ledger_party() -> MoneyError {
    MoneyError::invalid(
        Code::InvalidCounterParty,
        "a customer's mobile money pays or is paid by a purse or a wallet",
    )
}

impl Service {
    /// The account of a purse, wallet or channel party of the org, and the wallet's owner;
    /// a customer's mobile money has none (it goes through a provider).
    pub async fn party_account(
        &self,
        org: OrgId,
        party: &Party,
    ) -> Result<(PartyAccount, Option<CustomerId>), MoneyError> {
        let (key, customer) = match party {
            Party::Purse(PurseRef { purse_id }) => (format!("purse/{purse_id}"), None),
            Party::Wallet(WalletRef { customer_id, wallet_id }) => {
                (format!("wallet/{customer_id}/{wallet_id}"), Some(CustomerId(*customer_id)))
            }
            Party::Channel(ChannelRef { channel_number }) => {
                (format!("channel/{channel_number}"), None)
            }
            Party::Customer(_) => return Err(not_a_ledger_party()),
        };
        let key = (org.0, key);
        if let Some(account) = self.parties.get(&key) {
            return Ok((account, customer));
        }
        let (account, customer) = self.resolve_party(org, party).await?;
        let account =
            PartyAccount { id: account.id, currency: account.currency, kind: account.kind };
        self.parties.put(key, account);
        Ok((account, customer))
    }

    async fn resolve_party(
        &self,
        org: OrgId,
        party: &Party,
    ) -> Result<(Account, Option<CustomerId>), MoneyError> {
        match party {
            Party::Purse(PurseRef { purse_id }) => Ok((self.purse(org, *purse_id).await?, None)),
            Party::Wallet(WalletRef { customer_id, wallet_id }) => {
                let wallet = self.wallet(org, *customer_id, wallet_id).await?;
                Ok((wallet, Some(CustomerId(*customer_id))))
            }
            Party::Channel(ChannelRef { channel_number }) => {
                let channel = self
                    .payments
                    .channel_by_number(org, channel_number)
                    .await?
                    .ok_or(MoneyError::NotFound("channel"))?;
                let account = self
                    .store
                    .account(org, channel.clearing)
                    .await?
                    .ok_or(MoneyError::NotFound("channel"))?;
                Ok((account, None))
            }
            Party::Customer(_) => Err(not_a_ledger_party()),
        }
    }
}
