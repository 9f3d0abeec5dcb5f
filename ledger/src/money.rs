//! Currencies and exact money amounts.
//!
//! A [`Currency`] is an ISO 4217 currency with a minor-unit exponent (the table comes from the
//! maintained `iso_currency` crate). A [`Money`] is an exact decimal amount in one currency whose
//! scale is never finer than the currency allows; nothing here rounds. The store keeps amounts as
//! whole minor units ([`Money::to_minor`]).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Why an amount or a currency was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not an ISO 4217 code, or a code without minor units (gold, special drawing rights).
    #[error("unknown currency {0:?}")]
    UnknownCurrency(String),
    /// The text is not a plain decimal number such as `1250.50`.
    #[error("invalid amount {0:?}: expected a decimal number such as 1250.50")]
    InvalidAmount(String),
    /// More decimal places than the currency has minor units.
    #[error("{currency} allows {exponent} decimal places; the amount has {scale}")]
    ScaleTooFine { currency: Currency, exponent: u32, scale: u32 },
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    /// The result does not fit the ledger's range (64-bit minor units).
    #[error("amount out of range")]
    Overflow,
}

/// An ISO 4217 currency that has minor units.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// The currency with this three-letter code (upper case, as ISO 4217 writes it).
    ///
    /// # Errors
    ///
    /// [`MoneyError::UnknownCurrency`] for a code that is not in ISO 4217 or has no minor unit.
    pub fn from_code(code: &str) -> Result<Self, MoneyError> {
        iso_currency::Currency::from_code(code)
            .filter(|currency| currency.exponent().is_some())
            .map(Self)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }

    /// Every currency [`Currency::from_code`] accepts, in ISO 4217's order.
    pub fn all() -> impl Iterator<Item = Self> {
        use iso_currency::IntoEnumIterator as _;
        iso_currency::Currency::iter().filter(|currency| currency.exponent().is_some()).map(Self)
    }

    /// The three-letter code, such as `KES`.
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// How many decimal places the minor unit has: 2 for KES, 0 for UGX, 3 for BHD.
    pub fn exponent(self) -> u32 {
        // `from_code` admits only currencies that have an exponent.
        u32::from(self.0.exponent().unwrap_or(0))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::from_code(code)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::from_code(&code).map_err(serde::de::Error::custom)
    }
}

/// An exact amount of one currency, held at exactly the currency's scale (`12.5 KES` is kept
/// as `12.50`). It may be negative (a balance can be); posting amounts are checked positive
/// by the rules.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    currency: Currency,
    amount: Decimal,
}

impl Money {
    /// An amount of `currency`.
    ///
    /// # Errors
    ///
    /// [`MoneyError::ScaleTooFine`] when `amount` has more significant decimal places than the
    /// currency's minor unit (`1.005 KES`); trailing zeros do not count (`1.500 KES` is fine).
    pub fn new(currency: Currency, amount: Decimal) -> Result<Self, MoneyError> {
        let exponent = currency.exponent();
        let normalized = amount.normalize();
        if normalized.scale() > exponent {
            return Err(MoneyError::ScaleTooFine { currency, exponent, scale: normalized.scale() });
        }
        let mut amount = normalized;
        amount.rescale(exponent);
        if amount.scale() != exponent || amount.normalize() != normalized {
            // Rescaling to the exponent ran out of the 96-bit mantissa: `rescale` then stops
            // short of the exponent, which would leave the amount at a coarser scale.
            return Err(MoneyError::Overflow);
        }
        Ok(Self { currency, amount })
    }

    /// Parses a plain decimal string (`"1250.50"`, `"-3"`) as an amount of `currency`. No
    /// exponents, signs other than a leading minus, separators or white space.
    ///
    /// # Errors
    ///
    /// [`MoneyError::InvalidAmount`] for text that is not a plain decimal, and the errors of
    /// [`Money::new`].
    pub fn parse(currency: Currency, text: &str) -> Result<Self, MoneyError> {
        let invalid = || MoneyError::InvalidAmount(text.chars().take(40).collect());
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
        let plain = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !plain(whole) || !plain(fraction) || digits.len() > 40 {
            return Err(invalid());
        }
        let amount = Decimal::from_str_exact(text).map_err(|_| invalid())?;
        Self::new(currency, amount)
    }

    /// The amount for a count of minor units (`1250` cents is `12.50`).
    pub fn from_minor(currency: Currency, minor: i64) -> Self {
        Self { currency, amount: Decimal::new(minor, currency.exponent()) }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self::from_minor(currency, 0)
    }

    /// The amount as a whole number of minor units.
    ///
    /// # Errors
    ///
    /// [`MoneyError::Overflow`] when it does not fit 64 bits.
    pub fn to_minor(&self) -> Result<i64, MoneyError> {
        // The amount is held at exactly the currency's scale, so its mantissa is the count of
        // minor units.
        i64::try_from(self.amount.mantissa()).map_err(|_| MoneyError::Overflow)
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The decimal amount, at the currency's scale.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// Whether the amount is greater than zero.
    pub fn is_positive(&self) -> bool {
        self.amount > Decimal::ZERO
    }

    /// The sum of two amounts of one currency.
    ///
    /// # Errors
    ///
    /// [`MoneyError::CurrencyMismatch`] and [`MoneyError::Overflow`].
    pub fn checked_add(&self, other: &Self) -> Result<Self, MoneyError> {
        self.combine(other, Decimal::checked_add)
    }

    /// The difference of two amounts of one currency.
    ///
    /// # Errors
    ///
    /// [`MoneyError::CurrencyMismatch`] and [`MoneyError::Overflow`].
    pub fn checked_sub(&self, other: &Self) -> Result<Self, MoneyError> {
        self.combine(other, Decimal::checked_sub)
    }

    fn combine(
        &self,
        other: &Self,
        op: fn(Decimal, Decimal) -> Option<Decimal>,
    ) -> Result<Self, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            });
        }
        // A result past the 96-bit mantissa comes back rounded to fewer decimals, not as
        // `None`: refused too, since it is no longer exact.
        let amount = op(self.amount, other.amount)
            .filter(|amount| amount.scale() == self.currency.exponent())
            .ok_or(MoneyError::Overflow)?;
        Ok(Self { currency: self.currency, amount })
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// JSON form: `{"currency": "KES", "amount": "1250.50"}`, the amount always a string.
#[derive(Serialize, Deserialize)]
struct MoneyJson<'a> {
    currency: Currency,
    #[serde(borrow)]
    amount: std::borrow::Cow<'a, str>,
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let amount = self.amount.to_string();
        MoneyJson { currency: self.currency, amount: amount.into() }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = MoneyJson::deserialize(deserializer)?;
        Self::parse(json.currency, &json.amount).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kes() -> Currency {
        Currency::from_code("KES").unwrap()
    }

    #[test]
    fn currencies_know_their_exponent() {
        for (code, exponent) in [("KES", 2), ("UGX", 0), ("BHD", 3), ("USD", 2), ("JPY", 0)] {
            assert_eq!(Currency::from_code(code).unwrap().exponent(), exponent, "{code}");
        }
    }

    #[test]
    fn unknown_and_unitless_currencies_are_refused() {
        for code in ["", "kes", "KESX", "ABC", "XAU", "XDR"] {
            assert_eq!(
                Currency::from_code(code),
                Err(MoneyError::UnknownCurrency(code.into())),
                "{code}"
            );
        }
    }

    #[test]
    fn parse_accepts_plain_decimals_at_or_below_the_currency_scale() {
        let cases = [("1250.50", 125_050), ("1250.5", 125_050), ("7", 700), ("0.01", 1)];
        for (text, minor) in cases {
            let money = Money::parse(kes(), text).unwrap();
            assert_eq!(money.to_minor().unwrap(), minor, "{text}");
            assert_eq!(money.amount().scale(), 2, "{text} is held at the currency's scale");
        }
        assert_eq!(Money::parse(kes(), "-3").unwrap().to_minor().unwrap(), -300);
        assert_eq!(Money::parse(kes(), "1.500").unwrap().to_minor().unwrap(), 150);
    }

    #[test]
    fn parse_refuses_a_scale_finer_than_the_currency() {
        assert_eq!(
            Money::parse(kes(), "1.005"),
            Err(MoneyError::ScaleTooFine { currency: kes(), exponent: 2, scale: 3 })
        );
        let ugx = Currency::from_code("UGX").unwrap();
        assert!(matches!(Money::parse(ugx, "10.5"), Err(MoneyError::ScaleTooFine { .. })));
    }

    #[test]
    fn parse_refuses_anything_but_a_plain_decimal() {
        let bad = ["", "-", ".5", "5.", "+5", " 5", "5 ", "1e3", "1_000", "1,000", "0x10", "NaN"];
        for text in bad {
            assert!(
                matches!(Money::parse(kes(), text), Err(MoneyError::InvalidAmount(_))),
                "{text:?} must be refused"
            );
        }
        assert!(Money::parse(kes(), &"9".repeat(41)).is_err());
    }

    #[test]
    fn minor_units_round_trip_and_overflow_is_an_error() {
        let money = Money::from_minor(kes(), 123_456);
        assert_eq!(money.to_string(), "1234.56 KES");
        assert_eq!(Money::parse(kes(), "1234.56").unwrap(), money);
        let huge = Money::parse(kes(), "99999999999999999999").unwrap();
        assert_eq!(huge.to_minor(), Err(MoneyError::Overflow));
        // Found by fuzzing: an amount whose minor units do not fit a decimal was kept at a
        // coarser scale than its currency's (7922816251426433759354395033.5 KES, one decimal).
        let coarse = Money::parse(kes(), "7922816251426433759354395033.5");
        assert_eq!(coarse, Err(MoneyError::Overflow));
        assert_eq!(Money::new(kes(), Decimal::MAX), Err(MoneyError::Overflow));
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::parse(kes(), "10.25").unwrap();
        let b = Money::parse(kes(), "0.75").unwrap();
        assert_eq!(a.checked_add(&b).unwrap().to_minor().unwrap(), 1100);
        assert_eq!(b.checked_sub(&a).unwrap().to_minor().unwrap(), -950);
        let usd = Money::parse(Currency::from_code("USD").unwrap(), "1").unwrap();
        assert!(matches!(a.checked_add(&usd), Err(MoneyError::CurrencyMismatch { .. })));
        // Found by fuzzing: a sum past the largest decimal came back rounded to one decimal
        // (396140812571321687967719751.67 + …751.69 gave …503.4, not …503.36).
        let big = Money::parse(kes(), "396140812571321687967719751.67").unwrap();
        let bigger = Money::parse(kes(), "396140812571321687967719751.69").unwrap();
        assert_eq!(big.checked_add(&bigger), Err(MoneyError::Overflow));
        let negative = Money::zero(kes()).checked_sub(&bigger).unwrap();
        assert_eq!(negative.checked_sub(&big), Err(MoneyError::Overflow));
    }

    #[test]
    fn json_carries_the_amount_as_a_string() {
        let money = Money::parse(kes(), "1250.5").unwrap();
        let json = serde_json::to_string(&money).unwrap();
        assert_eq!(json, r#"{"currency":"KES","amount":"1250.50"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
        assert!(serde_json::from_str::<Money>(r#"{"currency":"KES","amount":1.5}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"currency":"XYZ","amount":"1"}"#).is_err());
    }
}
