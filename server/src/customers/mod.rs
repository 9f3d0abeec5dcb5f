//! Customers, the service: who they are (numbers, secondary ids), what the org and its apps
//! keep about them, and the limits on all of it. The HTTP layer (`http::v1::customers`) and
//! the payments service call it; it knows nothing of HTTP.
//!
//! Its sections: finding and making customers (store.rs), what the org and each app keep
//! about them (data.rs: tags, secondary ids, metadata, app data with its lease), tags across
//! customers (tags.rs), each app's reminders and reminders by tag (reminders.rs), activities
//! (activities.rs), their payments and the timeline (timeline.rs), their state, all of it at
//! once (state.rs), the numbers a customer holds (numbers.rs), and one customer adopting
//! another (merge.rs).

pub mod activities;
pub mod data;
pub mod merge;
pub mod numbers;
pub mod reminders;
pub mod state;
pub mod store;
pub mod tags;
pub mod timeline;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::code::Code;

pub use activities::{NewActivity, check_activity};
pub use data::{DataValue, hide_other_apps_data, metadata_schema};
pub use store::{
    Reference, by_number, by_secondary_id, check, customer, existing_by_number, lock, resolve,
};

/// Longest customer number, secondary id key or value.
pub const IDENTIFIER_LEN_MAX: usize = 256;
/// The longest E.164 number: `+` and 15 digits.
const E164_LEN_MAX: usize = 16;
/// Longest key of a tag, secondary id, metadata entry, reminder or activity, in characters.
pub const KEY_LEN_MAX: usize = 256;
/// Longest tag or secondary id value, activity source or session id, in characters.
pub const VALUE_LEN_MAX: usize = 256;
/// Largest metadata or app data value, in bytes (after decoding base64).
pub const DATA_BYTES_MAX: usize = 64 * 1024;
/// Most numbers a customer holds (more can arrive by a merge, and then none is added).
pub const CUSTOMER_NUMBERS_MAX: usize = 20;
/// Most tags a customer has (and a request sets).
pub const TAGS_MAX: usize = 100;
/// Most secondary ids a customer has (and a request sets).
pub const SECONDARY_IDS_MAX: usize = 100;
/// Most metadata keys a customer has (and a request sets).
pub const METADATA_KEYS_MAX: usize = 100;
/// Most reminders a customer has per app.
pub const REMINDERS_MAX: usize = 100;
/// Longest reminder payload, in characters.
pub const REMINDER_PAYLOAD_LEN_MAX: usize = 4096;
/// Longest reminder interval: a year, leap day included.
pub const REMINDER_INTERVAL_SECONDS_MAX: u64 = 366 * 24 * 60 * 60;
/// Most properties an activity has.
pub const PROPERTIES_MAX: usize = 50;
/// Longest activity property value, in characters.
pub const PROPERTY_VALUE_LEN_MAX: usize = 1024;
/// How long a lease keeps app data from other leases.
pub const APP_DATA_LEASE_SECONDS: u32 = 90;
/// Payments shown in a customer's state, newest first.
pub const RECENT_PAYMENTS_MAX: i64 = 20;
/// Activities read for a customer's state: the sessions shown are those of the newest ones.
pub const RECENT_ACTIVITIES_MAX: i64 = 500;
/// Activity sessions shown in a customer's state, newest first.
pub const ACTIVITY_SESSIONS_MAX: usize = 20;

/// What can go wrong with a customer, in the customers service's words.
#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    /// No such customer in the org (another org's is indistinguishable from a missing one).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// Well-formed but unacceptable: `code` says why.
    #[error("{detail}")]
    Invalid { code: Code, detail: String },
    /// Concurrent requests kept making the same customer; retry.
    #[error("customer creation kept conflicting")]
    Conflicting,
    /// The request conflicts with the state of things (another customer holds the number, a
    /// merge finds pending transfers): `code` says why.
    #[error("{detail}")]
    Conflict { code: Code, detail: String },
    /// Another customer holds the secondary id (`key=value`) and it has not expired.
    #[error("another customer has the secondary id {0}")]
    SecondaryIdTaken(String),
    /// Another lease holds the app data: until when, or `None` when that lease ran out
    /// between looking and answering (a retry takes the lease).
    #[error("{}", leased_detail(.until.as_ref()))]
    AppDataLeased { until: Option<DateTime<Utc>> },
    /// A stored value this version cannot read (a customer number's provider, say): never
    /// mapped to a default.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// The ledger's pipeline refused or failed a merge's transfer.
    #[error(transparent)]
    Submit(#[from] hazina_ledger::pipeline::SubmitError),
    /// The ledger failed to read the customer's wallets or payments.
    #[error(transparent)]
    Store(#[from] hazina_ledger::store::StoreError),
    /// The payments service failed to read the customer's payments through providers. (Boxed:
    /// a payment error can hold a customer error in turn.)
    #[error(transparent)]
    Payments(Box<crate::payments::PaymentError>),
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl CustomerError {
    pub fn invalid(code: Code, detail: impl Into<String>) -> Self {
        Self::Invalid { code, detail: detail.into() }
    }

    pub fn conflict(code: Code, detail: impl Into<String>) -> Self {
        Self::Conflict { code, detail: detail.into() }
    }

    /// The stable code a front door answers with.
    pub fn code(&self) -> Code {
        match self {
            Self::NotFound(_) => Code::NotFound,
            Self::Invalid { code, .. } | Self::Conflict { code, .. } => *code,
            Self::Submit(hazina_ledger::pipeline::SubmitError::Overloaded) => Code::Overloaded,
            Self::SecondaryIdTaken(_) => Code::SecondaryIdTaken,
            Self::AppDataLeased { .. } => Code::AppDataLeased,
            Self::Corrupt(_) => Code::InternalError,
            Self::Payments(error) => error.code(),
            Self::Store(error) => match error {
                hazina_ledger::store::StoreError::Corrupt(_) => Code::InternalError,
                _ => Code::Unavailable,
            },
            Self::Conflicting | Self::Submit(_) | Self::Database(_) | Self::Pool(_) => {
                Code::Unavailable
            }
        }
    }
}

impl From<crate::payments::PaymentError> for CustomerError {
    fn from(error: crate::payments::PaymentError) -> Self {
        Self::Payments(Box::new(error))
    }
}

fn leased_detail(until: Option<&DateTime<Utc>>) -> String {
    match until {
        Some(until) => format!("the app data is leased until {}", until.to_rfc3339()),
        None => "the app data was leased a moment ago; retry".to_owned(),
    }
}

/// Refuses text that is blank, longer than `max` characters, or holds a NUL (which PostgreSQL
/// cannot store as text).
pub fn check_text(value: &str, max: usize, code: Code, what: &str) -> Result<(), CustomerError> {
    if value.trim().is_empty() || value.chars().count() > max || value.contains('\0') {
        return Err(CustomerError::invalid(
            code,
            format!("{what} has 1 to {max} characters, no NUL"),
        ));
    }
    Ok(())
}

pub fn check_key(key: &str) -> Result<(), CustomerError> {
    check_text(key, KEY_LEN_MAX, Code::InvalidKey, "a key")
}

pub fn too_many(code: Code, what: &str, max: usize) -> CustomerError {
    CustomerError::invalid(code, format!("a customer has at most {max} {what}"))
}

// A customer with its numbers in the order they were added. (No doc comment: it would
// change the OpenAPI document.)
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerView {
    pub customer_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub customer_numbers: Vec<CustomerNumber>,
}

/// How the platform identifies a customer by a number: a phone number, an email address, a
/// `telegram`, `whatsapp`, `facebook` or `messenger` id, an app's own id.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerNumber {
    /// `cellular` and `whatsapp` numbers in international format (`+<country><number>`), stored
    /// as E.164; email addresses in lower case; the others as given, trimmed.
    // Written out, not `schema_with = crate::schema::key_text`, which would drop the
    // description above; the rule is `crate::schema::WORDS`, as a test checks.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub number: String,
    pub provider: NumberProvider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256)]
    pub partition: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NumberProvider {
    Cellular,
    Email,
    Telegram,
    Whatsapp,
    Facebook,
    /// A Messenger page-scoped id.
    Messenger,
    App,
}

impl NumberProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cellular => "cellular",
            Self::Email => "email",
            Self::Telegram => "telegram",
            Self::Whatsapp => "whatsapp",
            Self::Facebook => "facebook",
            Self::Messenger => "messenger",
            Self::App => "app",
        }
    }
}

impl CustomerNumber {
    /// The number as stored: `cellular` and `whatsapp` numbers in E.164 (they must be
    /// international, `+…`), email addresses lowercased, others trimmed; invalid ones refused.
    pub fn normalised(&self) -> Result<Self, CustomerError> {
        // Counted as sent, as the document's `maxLength` counts.
        let sent = self.number.chars().count();
        let number = self.number.trim();
        if number.is_empty() || sent > IDENTIFIER_LEN_MAX || number.contains('\0') {
            return Err(CustomerError::invalid(
                Code::InvalidCustomerNumber,
                "the number is empty or too long",
            ));
        }
        let number = match self.provider {
            NumberProvider::Cellular | NumberProvider::Whatsapp => {
                let parsed = phonenumber::parse(None, number)
                    .ok()
                    .filter(phonenumber::is_valid)
                    .ok_or_else(|| {
                        CustomerError::invalid(
                            Code::InvalidPhoneNumber,
                            "not a valid phone number in international format (+<country><number>)",
                        )
                    })?;
                let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
                // The library calls some longer numbers valid (a German one of 16 digits); E.164,
                // which every provider and our store expect, has at most 15.
                if e164.len() > E164_LEN_MAX {
                    return Err(CustomerError::invalid(
                        Code::InvalidPhoneNumber,
                        "not a valid phone number in international format (+<country><number>)",
                    ));
                }
                e164
            }
            NumberProvider::Email => number.to_lowercase(),
            _ => number.to_owned(),
        };
        // Lowercasing can lengthen a number ("İ" becomes two characters): the limit holds for
        // what is stored, so that normalising again accepts it.
        if number.chars().count() > IDENTIFIER_LEN_MAX {
            return Err(CustomerError::invalid(
                Code::InvalidCustomerNumber,
                "the number is empty or too long",
            ));
        }
        let sent = self.partition.as_deref().map_or(0, |p| p.chars().count());
        let partition = self.partition.as_deref().map(str::trim).filter(|p| !p.is_empty());
        if sent > IDENTIFIER_LEN_MAX || partition.is_some_and(|p| p.contains('\0')) {
            return Err(CustomerError::invalid(
                Code::InvalidCustomerNumber,
                "the partition is too long",
            ));
        }
        Ok(Self { number, provider: self.provider, partition: partition.map(str::to_owned) })
    }
}

/// Whether `number` is a valid phone number written in E.164 (`+<country><number>`).
pub fn is_e164(number: &str) -> bool {
    let normalised = CustomerNumber {
        number: number.to_owned(),
        provider: NumberProvider::Cellular,
        partition: None,
    }
    .normalised();
    normalised.is_ok_and(|n| n.number == number)
}

/// Whether `address` is an email address (an addr-spec: local part, `@`, a domain).
pub fn is_email(address: &str) -> bool {
    address.parse::<lettre::Address>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_normalised_number_normalises_to_itself() {
        // Lowercasing "İ" gives two characters: 200 of them are 400 once lowercased.
        let email = |text: String| CustomerNumber {
            number: text,
            provider: NumberProvider::Email,
            partition: None,
        };
        assert!(email("İ".repeat(200)).normalised().is_err());
        let fits = email("İ".repeat(128)).normalised().unwrap();
        assert_eq!(fits.normalised().unwrap().number, fits.number);
    }

    /// The fuzz test's find: `phonenumber` takes this German number of 16 digits as valid, but
    /// E.164 has at most 15, so it is refused rather than stored as something no provider takes.
    #[test]
    fn a_cellular_number_longer_than_e164_is_refused() {
        let cellular = |text: &str| CustomerNumber {
            number: text.to_owned(),
            provider: NumberProvider::Cellular,
            partition: None,
        };
        let error = cellular("+49)20100000000000").normalised().unwrap_err();
        assert_eq!(error.code(), Code::InvalidPhoneNumber);
        assert_eq!(cellular("+254 722 000 000").normalised().unwrap().number, "+254722000000");
    }

    #[test]
    fn whatsapp_numbers_are_e164_and_messenger_ids_are_text() {
        let number = |provider, text: &str| CustomerNumber {
            number: text.to_owned(),
            provider,
            partition: None,
        };
        let whatsapp = number(NumberProvider::Whatsapp, " +254 722 000 000 ").normalised().unwrap();
        assert_eq!(whatsapp.number, "+254722000000");
        let error = number(NumberProvider::Whatsapp, "0722000000").normalised().unwrap_err();
        assert_eq!(error.code(), Code::InvalidPhoneNumber);
        let messenger = number(NumberProvider::Messenger, " 1234567890123456 ").normalised();
        assert_eq!(messenger.unwrap().number, "1234567890123456");
    }
}
