//! Property-based fuzzing of the API's readers of amounts (`MoneyValue::money`) and customer
//! numbers (`CustomerNumber::normalised`, phone numbers through the `phonenumber` crate).
//!
//! Whatever a client sends, a reader answers with a value or a 4xx problem with its stable
//! code, never a panic (a 5xx); an amount it takes is exact at the currency's scale and fits
//! the ledger's 64-bit minor units; a phone number it takes is E.164, and normalising it again
//! changes nothing. `HAZINA_FUZZ_CASES` sets the cases per target (RELIABILITY.md, "Parser
//! fuzzing").

use hazina_fuzz::{Grammar, config};
use hazina_server::customers::{CustomerNumber, NumberProvider as Provider};
use hazina_server::http::problem::ApiError;
use hazina_server::http::v1::money::MoneyValue;
use proptest::prelude::*;
use proptest::sample::select;

/// The text an amount must read as at `exponent` decimal places, in the strict grammar that the
/// API reads, as the ledger does.
fn at_scale(text: &str, exponent: u32) -> Option<String> {
    hazina_fuzz::at_scale(text, exponent, Grammar::Strict)
}

const CODES: &[&str] = &[
    "KES", "UGX", "TZS", "USD", "EUR", "JPY", "BHD", "KWD", "CLF", "UYW", "XAU", "XXX", "kes", "",
    " KES", "ABC",
];

fn amount_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "-?[0-9]{1,4}(\\.[0-9]{0,5})?",
        3 => "-?[0-9]{1,24}(\\.[0-9]{0,6})?",
        2 => "[-+ ]?[0-9.,_eE+ -]{0,12}",
        2 => select(&[
            "0", "-0", "0.00", "00012.50", "1e3", ".5", "5.", "+5", " 5", "92233720368547758.07",
            "92233720368547758.08", "-92233720368547758.08", "-92233720368547758.09",
            "9223372036854775807", "9223372036854775808", "922337203685477.5807",
            "79228162514264337593543950335", "7922816251426433759354395033.5",
            "1.000000000000000000000000000009", "99999999999999999999999999999999999999999",
        ][..]).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Phone numbers as clients type them: international or not, with spaces, dashes, dots,
/// brackets and national prefixes, too short, too long, in other scripts.
fn phone_text() -> impl Strategy<Value = String> {
    // Mobile numbers in the shapes their countries give them, written as people write them.
    let mobile = prop_oneof![
        "\\+254 ?7[0-9]{2} ?[0-9]{3} ?[0-9]{3}",
        "\\+254 ?1[01][0-9] ?[0-9]{6}",
        "\\+256 ?7[0-9]{2} ?[0-9]{6}",
        "\\+255 ?[67][0-9]{2} ?[0-9]{6}",
        "\\+250 ?7[2389][0-9] ?[0-9]{6}",
        "\\+233 ?[25][0-9] ?[0-9]{3} ?[0-9]{4}",
        "\\+234 ?[789][01][0-9] ?[0-9]{3} ?[0-9]{4}",
        "\\+1 ?\\(?[2-9][0-9]{2}\\)? ?[2-9][0-9]{2}-?[0-9]{4}",
        "\\+44 ?7[0-9]{3} ?[0-9]{6}",
        "\\+91 ?[6-9][0-9]{4} ?[0-9]{5}",
    ];
    prop_oneof![
        5 => mobile,
        3 => ("\\+?(254|256|255|250|233|234|27|1|44|91|86|49|7|800|888|979|882)",
            "[0-9]{4,13}").prop_map(|(country, national)| format!("+{country}{national}")),
        2 => "[+]?[ (]?[0-9]{1,4}[) .-]{0,2}[0-9]{2,5}[ .-]?[0-9]{2,5}[ .-]?[0-9]{0,5}",
        2 => select(&[
            "+254722000000", "+254 722 000 000", "+254 (0) 722 000000", "0722000000",
            "+2540722000000", "+1 (650) 253-0000", "+44 20 7946 0958", "+800 1234 5678",
            "+979 123456789", "+882 1234 567890", "+", "++254722000000", "+254722000000x1",
            "+254722000000;ext=12", "tel:+254722000000", "+254-722-000-000", "+٢٥٤٧٢٢٠٠٠٠٠٠",
            "+２５４７２２００００００", "+254722000000\u{0}", " +254722000000 ",
            "+2547220000000000000000", "+0254722000000", "+999 999999999",
        ][..]).prop_map(str::to_owned),
        1 => "[+0-9 ()./-]{0,30}",
        1 => any::<String>(),
    ]
}

fn provider() -> impl Strategy<Value = Provider> {
    select(
        &[
            Provider::Cellular,
            Provider::Email,
            Provider::Telegram,
            Provider::Facebook,
            Provider::App,
        ][..],
    )
}

/// E.164: a `+`, a country code that does not start with 0, at most 15 digits in all.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn amounts_are_exact_or_a_client_error(
        currency_code in prop_oneof![select(CODES).prop_map(str::to_owned), any::<String>()],
        amount in amount_text(),
    ) {
        let value = MoneyValue { currency_code: currency_code.clone(), amount: amount.clone() };
        let currency = hazina_ledger::Currency::from_code(&currency_code).ok();
        match value.money() {
            Ok(money) => {
                let currency = currency.unwrap();
                prop_assert_eq!(money.currency(), currency);
                prop_assert_eq!(money.amount().scale(), currency.exponent());
                let shown = money.amount().to_string();
                prop_assert_eq!(Some(shown.clone()), at_scale(&amount, currency.exponent()), "{:?}", amount);
                let minor = money.to_minor().unwrap();
                let digits: String = shown.chars().filter(|c| *c != '.').collect();
                prop_assert_eq!(i128::from(minor), digits.parse::<i128>().unwrap());
                prop_assert_eq!(MoneyValue::of(&money).money().unwrap(), money);
            }
            Err(error) => {
                prop_assert!(error.status.is_client_error(), "{:?}", error);
                let expected = if currency.is_some() { "invalid_amount" } else { "invalid_currency" };
                prop_assert_eq!(error.code.as_str(), expected, "{:?}", error);
                // An amount is refused only when it is not one, is finer than the currency, or
                // does not fit 64-bit minor units.
                if let Some(currency) = currency
                    && let Some(canonical) = at_scale(&amount, currency.exponent())
                {
                    let minor: String = canonical.chars().filter(|c| *c != '.').collect();
                    prop_assert!(
                        minor.parse::<i64>().is_err() || amount.len() > 40,
                        "{:?} refused: {:?}", amount, error
                    );
                }
            }
        }
    }

    #[test]
    fn phone_numbers_normalise_to_e164_once_and_for_all(
        number in phone_text(),
        partition in prop::option::of(prop_oneof!["[a-z ]{0,8}", any::<String>()]),
    ) {
        let input = CustomerNumber { number: number.clone(), provider: Provider::Cellular, partition };
        match input.normalised() {
            Ok(normalised) => {
                prop_assert!(is_e164(&normalised.number), "{:?} became {:?}", number, normalised.number);
                prop_assert_eq!(normalised.provider, Provider::Cellular);
                prop_assert_eq!(normalised.normalised().ok(), Some(normalised.clone()), "from {:?}", number);
            }
            Err(error) => {
                let error = ApiError::from(error);
                prop_assert!(error.status.is_client_error(), "{:?}", error);
                prop_assert!(
                    ["invalid_phone_number", "invalid_customer_number"].contains(&error.code.as_str()),
                    "{:?}", error
                );
            }
        }
    }

    #[test]
    fn other_customer_numbers_normalise_once_and_for_all(
        provider in provider(),
        number in prop_oneof![phone_text(), "[A-Za-z0-9@._ -]{0,30}", any::<String>()],
    ) {
        let input = CustomerNumber { number, provider, partition: None };
        match input.normalised() {
            Ok(normalised) => {
                prop_assert_eq!(normalised.normalised().ok(), Some(normalised.clone()));
            }
            Err(error) => {
                let error = ApiError::from(error);
                prop_assert!(error.status.is_client_error(), "{:?}", error);
            }
        }
    }
}

#[test]
fn the_oracles_know_e164() {
    assert!(is_e164("+254722000000"));
    for not in ["254722000000", "+0254722000000", "+2547220000000000", "+", "+254 722"] {
        assert!(!is_e164(not), "{not}");
    }
    assert_eq!(at_scale("120.5", 2).as_deref(), Some("120.50"));
    assert_eq!(at_scale("120.505", 2), None);
}

#[test]
fn the_generators_reach_past_the_refusals() {
    // A target whose inputs are all refused proves nothing about what is accepted.
    use proptest::strategy::ValueTree as _;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let count = 300;
    let (mut phones, mut amounts) = (0, 0);
    for _ in 0..count {
        let number = phone_text().new_tree(&mut runner).unwrap().current();
        let input = CustomerNumber { number, provider: Provider::Cellular, partition: None };
        phones += usize::from(input.normalised().is_ok());
        let amount = amount_text().new_tree(&mut runner).unwrap().current();
        let value = MoneyValue { currency_code: "KES".into(), amount };
        amounts += usize::from(value.money().is_ok());
    }
    eprintln!("of {count}: {phones} phone numbers and {amounts} amounts read");
    assert!(phones * 100 >= count * 25, "{phones} of {count} phone numbers read");
    assert!(amounts * 100 >= count * 25, "{amounts} of {count} amounts read");
}
