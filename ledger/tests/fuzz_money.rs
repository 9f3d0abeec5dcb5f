#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property-based fuzzing of the money readers every outside amount goes through:
//! `Currency::from_code`, `Money::parse`, `Money`'s JSON form and `Money`'s checked arithmetic.
//!
//! An amount that reads is exactly its text at the currency's scale (never rounded, never
//! finer than the currency, never through a float) and reads back as itself; an amount that
//! is refused is not a plain decimal, is finer than the currency, or is too long to hold
//! exactly. `HAZINA_FUZZ_CASES` sets the cases per target (RELIABILITY.md, "Parser fuzzing").

use hazina_fuzz::{Grammar, config};
use hazina_ledger::money::{Currency, Money, MoneyError};
use proptest::prelude::*;
use proptest::sample::select;
use rust_decimal::Decimal;

/// Currencies of every exponent (0 to 4), and codes that are not currencies or have no unit.
const CODES: &[&str] = &[
    "KES", "UGX", "TZS", "RWF", "GHS", "NGN", "ZAR", "USD", "EUR", "JPY", "BHD", "KWD", "TND",
    "CLF", "UYW", "XAU", "XDR", "XXX", "kes", "KE", "KESS", "", " KES", "ABC",
];

/// The text an amount must read as at `exponent` decimal places, in the strict grammar that
/// `Money::parse` reads: no plus sign, digits on both sides of a point.
fn at_scale(text: &str, exponent: u32) -> Option<String> {
    hazina_fuzz::at_scale(text, exponent, Grammar::Strict)
}

fn digits(text: &str) -> usize {
    text.bytes().filter(u8::is_ascii_digit).count()
}

/// Amount texts, valid and not, with the edges of 64-bit minor units and of a decimal.
fn amount_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "-?[0-9]{1,4}(\\.[0-9]{0,5})?",
        3 => "-?[0-9]{1,30}(\\.[0-9]{0,30})?",
        2 => "-?[0-9]{1,6}\\.[0-9]{0,3}0{18,30}[1-9]{1,3}",
        2 => "[-+ ]?[0-9.,_eE+ -]{0,12}",
        2 => select(&[
            "0", "-0", "0.00", "-0.00", "00012.50", "1e3", "1_000", ".5", "5.", "-", "", "+5",
            " 5", "5 ", "NaN", "１２", "92233720368547758.07", "92233720368547758.08",
            "-92233720368547758.08", "-92233720368547758.09", "9223372036854775807",
            "9223372036854775808", "922337203685477.5807", "79228162514264337593543950335",
            "7922816251426433759354395033.5", "792281625142643375935439503.35",
            "1.000000000000000000000000000009", "99999999999999999999999999999999999999999",
        ][..]).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn currency() -> impl Strategy<Value = Currency> {
    select(&CODES[..15]).prop_map(|code| Currency::from_code(code).unwrap())
}

/// The largest count of minor units a decimal holds: `Money`'s range at its currency's scale.
const MINOR_MAX: i128 = 79_228_162_514_264_337_593_543_950_335;

/// Counts of minor units: 64-bit ones, and ones near the largest a decimal holds, where a sum
/// no longer fits at the currency's scale.
fn minor() -> impl Strategy<Value = i128> {
    prop_oneof![
        3 => any::<i64>().prop_map(i128::from),
        1 => -MINOR_MAX..=MINOR_MAX,
        2 => MINOR_MAX / 2..=MINOR_MAX,
        2 => -MINOR_MAX..=-MINOR_MAX / 2,
    ]
}

fn money_of(currency: Currency, minor: i128) -> Money {
    Money::new(currency, Decimal::from_i128_with_scale(minor, currency.exponent())).unwrap()
}

/// A read amount is its text at the currency's scale, reads back as itself, and its minor
/// units (when they fit 64 bits) are the same amount.
fn exact(money: &Money, currency: Currency, text: &str) -> Result<(), TestCaseError> {
    let exponent = currency.exponent();
    prop_assert_eq!(money.currency(), currency);
    prop_assert_eq!(money.amount().scale(), exponent, "{:?} from {:?}", money, text);
    let shown = money.amount().to_string();
    prop_assert_eq!(Some(shown.clone()), at_scale(text, exponent), "{:?} from {:?}", money, text);
    prop_assert_eq!(Money::parse(currency, &shown), Ok(*money));
    let json = serde_json::to_string(money).unwrap();
    prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), *money, "{}", json);
    let minor_text: String = shown.chars().filter(|c| *c != '.').collect();
    match money.to_minor() {
        Ok(minor) => {
            prop_assert_eq!(i128::from(minor), minor_text.parse::<i128>().unwrap());
            prop_assert_eq!(Money::from_minor(currency, minor), *money);
        }
        Err(error) => {
            prop_assert_eq!(error, MoneyError::Overflow);
            prop_assert!(minor_text.parse::<i64>().is_err(), "{} fits 64 bits", minor_text);
        }
    }
    Ok(())
}

/// `Money::parse`'s verdict on `text`, checked both ways.
fn parse_checks(currency: Currency, text: &str) -> Result<(), TestCaseError> {
    let exponent = currency.exponent();
    match Money::parse(currency, text) {
        Ok(money) => exact(&money, currency, text)?,
        Err(MoneyError::InvalidAmount(_)) => {
            let plain = text.strip_prefix('-').unwrap_or(text);
            let (whole, fraction) = plain.split_once('.').unwrap_or((plain, "0"));
            let strict = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            // Refused as not an amount: not `-?digits[.digits]`, or too long to hold exactly.
            prop_assert!(
                !strict(whole) || !strict(fraction) || plain.len() > 40 || digits(text) > 28,
                "{:?} refused as not an amount",
                text
            );
        }
        Err(MoneyError::ScaleTooFine { exponent: refused_at, .. }) => {
            prop_assert_eq!(refused_at, exponent);
            prop_assert_eq!(at_scale(text, exponent), None, "{:?} refused as too fine", text);
        }
        Err(MoneyError::Overflow) => {
            // Only an amount whose minor units a decimal cannot hold.
            let canonical = at_scale(text, exponent).unwrap();
            prop_assert!(digits(&canonical) > 28, "{:?} refused as too large", text);
        }
        Err(other) => prop_assert!(false, "{:?} refused with {}", text, other),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn currency_codes(code in prop_oneof![select(CODES).prop_map(str::to_owned), any::<String>(), "[A-Z]{3}"]) {
        match Currency::from_code(&code) {
            Ok(currency) => {
                prop_assert_eq!(currency.code(), code.as_str());
                prop_assert!(code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()));
                prop_assert!(currency.exponent() <= 4);
                prop_assert_eq!(code.parse::<Currency>(), Ok(currency));
                let json = serde_json::to_string(&code).unwrap();
                prop_assert_eq!(serde_json::from_str::<Currency>(&json).unwrap(), currency);
            }
            Err(error) => prop_assert_eq!(error, MoneyError::UnknownCurrency(code.clone())),
        }
    }

    #[test]
    fn amounts_read_exactly(currency in currency(), text in amount_text()) {
        parse_checks(currency, &text)?;
    }

    #[test]
    fn amounts_in_json(
        code in prop_oneof![select(CODES).prop_map(str::to_owned), any::<String>()],
        text in amount_text(),
        number in prop::bool::weighted(0.2),
    ) {
        // The JSON form refuses a number: an amount is always a string.
        let amount = if number { text.clone() } else { serde_json::to_string(&text).unwrap() };
        let json = format!(r#"{{"currency":{},"amount":{amount}}}"#, serde_json::to_string(&code).unwrap());
        if let Ok(money) = serde_json::from_str::<Money>(&json) {
            prop_assert!(!number, "{} read with a number for an amount", json);
            exact(&money, Currency::from_code(&code).unwrap(), &text)?;
        }
    }

    #[test]
    fn minor_units_round_trip(currency in currency(), minor in any::<i64>()) {
        let money = Money::from_minor(currency, minor);
        prop_assert_eq!(money.to_minor(), Ok(minor));
        exact(&money, currency, &money.amount().to_string())?;
    }

    #[test]
    fn arithmetic_is_exact_or_refused(
        currency in currency(),
        other in prop::option::weighted(0.1, currency()),
        a in minor(),
        b in minor(),
    ) {
        let (a, b) = (money_of(currency, a), money_of(other.unwrap_or(currency), b));
        let (a_minor, b_minor) = (a.amount().mantissa(), b.amount().mantissa());
        let same = a.currency() == b.currency();
        for (result, exact_minor) in
            [(a.checked_add(&b), a_minor + b_minor), (a.checked_sub(&b), a_minor - b_minor)]
        {
            match result {
                Ok(sum) => {
                    prop_assert!(same);
                    prop_assert_eq!(sum.currency(), a.currency());
                    prop_assert_eq!(sum.amount().scale(), a.currency().exponent(), "{:?} {:?} gave {:?}", a, b, sum);
                    prop_assert_eq!(sum.amount().mantissa(), exact_minor, "{:?} {:?} gave {:?}", a, b, sum);
                }
                Err(MoneyError::CurrencyMismatch { .. }) => prop_assert!(!same),
                Err(MoneyError::Overflow) => {
                    prop_assert!(same);
                    prop_assert!(exact_minor.abs() > MINOR_MAX, "{:?} {:?} refused", a, b);
                }
                Err(other) => prop_assert!(false, "{:?} {:?}: {}", a, b, other),
            }
        }
    }
}

#[test]
fn the_oracle_reads_what_money_reads() {
    assert_eq!(at_scale("1250.5", 2).as_deref(), Some("1250.50"));
    assert_eq!(at_scale("-0.0", 2).as_deref(), Some("0.00"));
    assert_eq!(at_scale("7", 0).as_deref(), Some("7"));
    for refused in ["1.005", "5.", ".5", "+5", "-", "", "1e3"] {
        assert_eq!(at_scale(refused, 2), None, "{refused:?}");
    }
    let kes = Currency::from_code("KES").unwrap();
    assert!(parse_checks(kes, "12.5").is_ok());
    let twelve = Money::parse(kes, "12.50").unwrap();
    assert!(exact(&twelve, kes, "12.51").is_err());
}

#[test]
fn the_generators_reach_both_answers() {
    // A target whose inputs are all refused, or all taken, checks only half of its property.
    use proptest::strategy::ValueTree as _;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let kes = Currency::from_code("KES").unwrap();
    let count = 300;
    let (mut read, mut sums, mut overflows) = (0, 0, 0);
    for _ in 0..count {
        let text = amount_text().new_tree(&mut runner).unwrap().current();
        read += usize::from(Money::parse(kes, &text).is_ok());
        let a = money_of(kes, minor().new_tree(&mut runner).unwrap().current());
        let b = money_of(kes, minor().new_tree(&mut runner).unwrap().current());
        match a.checked_add(&b) {
            Ok(_) => sums += 1,
            Err(_) => overflows += 1,
        }
    }
    eprintln!("of {count}: {read} amounts read, {sums} sums, {overflows} overflows");
    assert!(read * 100 >= count * 25 && read * 100 <= count * 90, "{read} of {count} read");
    assert!(sums * 100 >= count * 25, "{sums} of {count} sums");
    assert!(overflows * 100 >= count * 5, "{overflows} of {count} overflows");
}
