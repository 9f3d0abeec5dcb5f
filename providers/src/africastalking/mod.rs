//! Africa's Talking: SMS (bulk and premium sends, delivery reports, inbound messages,
//! subscription notifications), USSD sessions, voice calls (the XML action vocabulary and the
//! call callbacks), airtime, and a thin client for the calls we make.
//!
//! Requests and callbacks are `application/x-www-form-urlencoded`; answers are JSON (voice
//! answers are XML). Africa's Talking signs no callback: a callback's URL carries a secret
//! token, and a report changes nothing we have not recorded (checked where it is applied).
//! Every wire type here reads and writes the provider's own spelling, so that the simulator
//! speaks it with the same types.

pub mod airtime;
pub mod client;
pub mod sms;
pub mod ussd;
pub mod voice;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::money::{Currency, Money};

pub use sms::{
    DeliveryReport, FetchMessagesResponse, FetchedMessages, InboundSms, Recipient, Refusal,
    SendOutcome, SendSms, SendSmsResponse, SmsMessageData, SubscriptionUpdate,
};
pub use ussd::{USSD_APP_RESPONSE_TIMEOUT, USSD_SESSION_MAX, UssdReply, UssdSessionEnd, UssdStep};

/// An amount the provider quotes, `"<currency> <decimal>"` with up to four decimals: exact,
/// and finer than the currency's minor unit (a message may cost a fraction of a cent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    pub currency: Currency,
    pub amount: Decimal,
}

impl Price {
    /// Reads `"KES 0.8000"`; `None` for anything else (`"0"`, a blank, an unknown currency).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let (code, amount) = text.trim().split_once(' ')?;
        let currency = Currency::from_code(code).ok()?;
        let amount = crate::wire::decimal(amount).ok()?;
        (amount >= Decimal::ZERO).then_some(Self { currency, amount })
    }

    /// The price as [`Money`], when it is a whole number of the currency's minor units.
    /// A price finer than that (`USD 0.0150`) is `None`: it is never rounded here.
    #[must_use]
    pub fn money(self) -> Option<Money> {
        Money::new(self.currency, self.amount).ok()
    }

    /// `count` times the price (a message of `count` segments), unless it overflows.
    #[must_use]
    pub fn times(self, count: u64) -> Option<Self> {
        let amount = self.amount.checked_mul(Decimal::from(count))?;
        Some(Self { amount, ..self })
    }

    /// The sum of two prices of one currency; `None` across currencies or on overflow.
    #[must_use]
    pub fn plus(self, other: Self) -> Option<Self> {
        if self.currency != other.currency {
            return None;
        }
        Some(Self { amount: self.amount.checked_add(other.amount)?, ..self })
    }

    /// `percent` per cent of the price (an airtime discount), exact.
    #[must_use]
    pub fn percent(self, percent: u32) -> Option<Self> {
        let amount = self.amount.checked_mul(Decimal::new(i64::from(percent), 2))?;
        Some(Self { amount, ..self })
    }

    /// Zero of `currency`.
    #[must_use]
    pub fn zero(currency: Currency) -> Self {
        Self { currency, amount: Decimal::ZERO }
    }

    /// The provider's spelling with four decimals, `"KES 0.8000"` (a finer amount is
    /// rounded to four decimals there, as the provider's own answers are).
    #[must_use]
    pub fn to_wire(self) -> String {
        let mut amount = self.amount;
        amount.rescale(4);
        format!("{} {amount}", self.currency.code())
    }
}

/// `"<currency> <amount>"` as [`Money`], when it reads and fits the currency's minor unit.
fn money(text: &str) -> Option<Money> {
    Price::parse(text).and_then(Price::money)
}

/// A text the provider writes `"None"` (or leaves blank) when there is nothing to say.
fn meaningful(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty() && *text != "None")
}

/// A field that is a string in a form and a number in JSON.
fn string_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u64),
    }
    Ok(match Either::deserialize(deserializer)? {
        Either::Text(text) => text,
        Either::Number(number) => number.to_string(),
    })
}

/// A time as the provider writes it: RFC 3339 (`2018-03-19T08:34:18.445Z`), or
/// `YYYY-MM-DD HH:MM:SS` taken as UTC.
fn timestamp(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = text.trim();
    chrono::DateTime::parse_from_rfc3339(text).map(|time| time.to_utc()).ok().or_else(|| {
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
            .ok()
            .map(|time| time.and_utc())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn prices_become_money_only_when_exact() {
        let kes = Price::parse("KES 0.8000").unwrap();
        assert_eq!(kes.money().unwrap().amount().to_string(), "0.80");
        assert_eq!(kes.to_wire(), "KES 0.8000");
        assert_eq!(Price::parse("USD 0.0150").unwrap().money(), None);
        assert_eq!(kes.times(3).unwrap().to_wire(), "KES 2.4000");
        assert_eq!(kes.plus(kes).unwrap().to_wire(), "KES 1.6000");
        assert_eq!(Price::parse("KES 1000").unwrap().percent(4).unwrap().to_wire(), "KES 40.0000");
        assert_eq!(kes.plus(Price::parse("USD 1").unwrap()), None);
        assert_eq!(money("KES 100.0000").unwrap().amount().to_string(), "100.00");
        assert_eq!(meaningful(Some("None")), None);
        assert_eq!(meaningful(Some(" x ")), Some("x"));
    }

    #[test]
    fn times_read_in_both_spellings() {
        let iso = timestamp("2018-03-19T08:34:18.445Z").unwrap();
        assert_eq!(iso.to_rfc3339(), "2018-03-19T08:34:18.445+00:00");
        assert!(timestamp("2018-03-19 08:34:18").is_some());
        assert!(timestamp("yesterday").is_none());
    }
}
