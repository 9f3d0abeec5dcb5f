//! What the property-based fuzz targets of the ledger, the providers and the server share: how
//! many cases a run tries, and the oracle that says what a decimal amount must read as.
//!
//! The oracle works on the text alone, without `rust_decimal`, so that it can disagree with
//! the readers it checks.

use proptest::test_runner::Config;

/// Cases per target when `HAZINA_FUZZ_CASES` is not set: about a second each in a debug build.
pub const CASES_DEFAULT: u32 = 1024;

/// The proptest configuration of a fuzz target: `HAZINA_FUZZ_CASES` cases (RELIABILITY.md,
/// "Parser fuzzing"), and no regression files, since a failure prints its minimal input, which
/// becomes a unit test.
///
/// # Panics
///
/// When `HAZINA_FUZZ_CASES` is set to something that is not a count.
pub fn config() -> Config {
    let cases = std::env::var("HAZINA_FUZZ_CASES").ok().map_or(CASES_DEFAULT, |text| {
        #[allow(clippy::expect_used)] // a wrong setting of a test run stops it, saying why
        text.trim().parse().expect("HAZINA_FUZZ_CASES is a count of cases")
    });
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// Which plain decimals a reader takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grammar {
    /// `-?digits(.digits)?`: the API's and the ledger's amounts.
    Strict,
    /// `[+-]?digits?(.digits?)?` with at least one digit: providers' amounts, which may carry
    /// a plus sign and leave out the digits on either side of the point (`"5."`, `".5"`).
    Lenient,
}

/// The text a plain decimal must read as at `exponent` decimal places (`"5.5"` at 2 is
/// `"5.50"`, `"-0"` is `"0"`), or `None` when it is not a plain decimal of `grammar` or has
/// more significant decimals than `exponent`.
pub fn at_scale(text: &str, exponent: u32, grammar: Grammar) -> Option<String> {
    let (negative, digits) = match (text.as_bytes().first(), grammar) {
        (Some(b'-'), _) => (true, &text[1..]),
        (Some(b'+'), Grammar::Lenient) => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').map_or((digits, None), |(w, f)| (w, Some(f)));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    let well_formed = match grammar {
        Grammar::Strict => {
            !whole.is_empty()
                && all_digits(whole)
                && fraction.is_none_or(|f| !f.is_empty() && all_digits(f))
        }
        Grammar::Lenient => {
            let fraction = fraction.unwrap_or_default();
            !(whole.is_empty() && fraction.is_empty()) && all_digits(whole) && all_digits(fraction)
        }
    };
    if !well_formed {
        return None;
    }
    let fraction = fraction.unwrap_or_default().trim_end_matches('0');
    let exponent = usize::try_from(exponent).ok()?;
    if fraction.len() > exponent {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    let zero = whole.is_empty() && fraction.is_empty();
    let mut out = String::new();
    if negative && !zero {
        out.push('-');
    }
    out.push_str(if whole.is_empty() { "0" } else { whole });
    if exponent > 0 {
        out.push('.');
        out.push_str(fraction);
        out.extend(std::iter::repeat_n('0', exponent - fraction.len()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{Grammar, at_scale};

    #[test]
    fn the_oracle_scales_plain_decimals_and_refuses_the_rest() {
        for grammar in [Grammar::Strict, Grammar::Lenient] {
            assert_eq!(at_scale("1250.5", 2, grammar).as_deref(), Some("1250.50"));
            assert_eq!(at_scale("-0.0", 2, grammar).as_deref(), Some("0.00"));
            assert_eq!(at_scale("007", 0, grammar).as_deref(), Some("7"));
            assert_eq!(at_scale("-1.10", 1, grammar).as_deref(), Some("-1.1"));
            for refused in ["1.005", "1e3", ".", "", "-", "1,5", " 1", "--1", "0x1"] {
                assert_eq!(at_scale(refused, 2, grammar), None, "{refused:?} {grammar:?}");
            }
        }
        for lenient_only in ["+7", ".5", "5."] {
            assert_eq!(at_scale(lenient_only, 2, Grammar::Strict), None, "{lenient_only:?}");
            assert!(at_scale(lenient_only, 2, Grammar::Lenient).is_some(), "{lenient_only:?}");
        }
        assert_eq!(at_scale("+007", 0, Grammar::Lenient).as_deref(), Some("7"));
        assert_eq!(at_scale(".5", 2, Grammar::Lenient).as_deref(), Some("0.50"));
    }
}
