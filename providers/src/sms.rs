//! SMS segment counting by the GSM 03.38 rules: which encoding a text needs, how many units
//! (septets or UTF-16 code units) it takes, and how many messages it is sent as.
//!
//! The GSM 7-bit default alphabet and its extension table are our own table, written from
//! 3GPP TS 23.038: no maintained crate offered both the alphabet and the concatenation rule.
//! A text made only of GSM-7 characters is sent in septets (160 in one message, 153 in each
//! part of a concatenated one, the rest being the user data header); an extension character
//! (`^{}\[~]|€` and form feed) takes two septets, an escape and itself. Any other character
//! turns the whole text into UCS-2: 70 units in one message, 67 in each part, counting UTF-16
//! code units (an emoji outside the Basic Multilingual Plane takes two). A character is never
//! split across two parts (neither an escape pair nor a surrogate pair), as handsets do not.

/// The characters of the GSM 7-bit default alphabet, one septet each (the escape itself,
/// 0x1B, is not a character of a text).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The characters of the default alphabet's extension table, two septets each.
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// Units in a single (unconcatenated) GSM-7 message.
pub const GSM7_SINGLE: usize = 160;
/// Units in each part of a concatenated GSM-7 message.
pub const GSM7_PART: usize = 153;
/// Units in a single UCS-2 message.
pub const UCS2_SINGLE: usize = 70;
/// Units in each part of a concatenated UCS-2 message.
pub const UCS2_PART: usize = 67;

/// How a text goes over the air.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The GSM 7-bit default alphabet (with its extension table); units are septets.
    Gsm7,
    /// UCS-2 (UTF-16 in practice); units are UTF-16 code units.
    Ucs2,
}

/// What a text comes to as SMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2) of the whole text.
    pub units: usize,
    /// Messages it is sent as: at least one, even for an empty text.
    pub count: usize,
}

/// A text longer than a channel allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the text takes {} messages, more than the {max} allowed", segments.count)]
pub struct TooLong {
    pub segments: Segments,
    pub max: usize,
}

/// The septets a character takes in GSM-7, or `None` when it has no GSM-7 form.
#[must_use]
pub fn gsm7_septets(character: char) -> Option<usize> {
    if GSM7_BASIC.contains(character) {
        Some(1)
    } else if GSM7_EXTENSION.contains(character) {
        Some(2)
    } else {
        None
    }
}

/// Whether every character of `text` has a GSM-7 form.
#[must_use]
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|character| gsm7_septets(character).is_some())
}

/// The encoding, units and message count of `text`.
#[must_use]
pub fn segments(text: &str) -> Segments {
    if is_gsm7(text) {
        // Every character has a width here, as `is_gsm7` just checked.
        let widths = text.chars().map(|character| gsm7_septets(character).unwrap_or(1));
        pack(Encoding::Gsm7, widths, GSM7_SINGLE, GSM7_PART)
    } else {
        let widths = text.chars().map(char::len_utf16);
        pack(Encoding::Ucs2, widths, UCS2_SINGLE, UCS2_PART)
    }
}

/// `text`'s segments, when it takes at most `max` messages.
///
/// # Errors
///
/// [`TooLong`] when it takes more.
pub fn within(text: &str, max: usize) -> Result<Segments, TooLong> {
    let segments = segments(text);
    if segments.count <= max { Ok(segments) } else { Err(TooLong { segments, max }) }
}

/// Counts the units of characters of `widths`, and the parts they fill when packed in order
/// without splitting one.
fn pack(
    encoding: Encoding,
    widths: impl Iterator<Item = usize> + Clone,
    single: usize,
    part: usize,
) -> Segments {
    let units: usize = widths.clone().sum();
    if units <= single {
        return Segments { encoding, units, count: 1 };
    }
    let mut count = 1;
    let mut filled = 0;
    for width in widths {
        if filled + width > part {
            count += 1;
            filled = 0;
        }
        filled += width;
    }
    Segments { encoding, units, count }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;

    use super::*;

    fn gsm_char() -> impl Strategy<Value = char> {
        let all: Vec<char> = GSM7_BASIC.chars().chain(GSM7_EXTENSION.chars()).collect();
        proptest::sample::select(all)
    }

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::collection::vec(gsm_char(), 0..400).prop_map(|c| c.into_iter().collect()),
            ".{0,200}",
            "[a-z😀é€{]{0,300}",
        ]
    }

    #[test]
    fn the_alphabet_sizes_are_the_standards() {
        assert_eq!(GSM7_BASIC.chars().count(), 127);
        assert_eq!(GSM7_EXTENSION.chars().count(), 10);
    }

    #[test]
    fn known_texts_count_as_the_operators_do() {
        let plain = segments("Hello");
        assert_eq!(plain, Segments { encoding: Encoding::Gsm7, units: 5, count: 1 });
        assert_eq!(segments(&"a".repeat(160)).count, 1);
        assert_eq!(segments(&"a".repeat(161)).count, 2);
        assert_eq!(segments(&"a".repeat(306)).count, 2);
        assert_eq!(segments(&"a".repeat(307)).count, 3);
        // The euro sign takes two septets: 80 of them fill one message exactly.
        assert_eq!(
            segments(&"€".repeat(80)),
            Segments { encoding: Encoding::Gsm7, units: 160, count: 1 }
        );
        assert_eq!(segments(&"€".repeat(81)).count, 2);
        // An escape pair is not split: 152 septets and a euro sign need a second part.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        assert_eq!(segments(&text), Segments { encoding: Encoding::Gsm7, units: 164, count: 2 });
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(153));
        assert_eq!(segments(&text).count, 3);
        // One character outside the alphabet makes the whole text UCS-2.
        assert_eq!(segments("Habari ç").encoding, Encoding::Ucs2);
        assert_eq!(segments(&"ç".repeat(70)).count, 1);
        assert_eq!(segments(&"ç".repeat(71)).count, 2);
        // An emoji is two UTF-16 units, and a surrogate pair is never split.
        assert_eq!(segments("😀"), Segments { encoding: Encoding::Ucs2, units: 2, count: 1 });
        assert_eq!(segments(&"😀".repeat(35)).count, 1);
        assert_eq!(segments(&"😀".repeat(36)).count, 2);
        // 134 units would fill two parts of 67, but 33 emoji (66 units) fill one.
        assert_eq!(segments(&"😀".repeat(67)).count, 3);
        assert_eq!(segments(""), Segments { encoding: Encoding::Gsm7, units: 0, count: 1 });
    }

    #[test]
    fn a_maximum_is_checked() {
        assert!(within(&"a".repeat(306), 2).is_ok());
        let error = within(&"a".repeat(307), 2).unwrap_err();
        assert_eq!((error.segments.count, error.max), (3, 2));
    }

    proptest! {
        #[test]
        fn gsm_only_texts_of_160_characters_are_one_message(
            basic in proptest::collection::vec(proptest::sample::select(
                GSM7_BASIC.chars().collect::<Vec<_>>()), 0..=160),
            mixed in proptest::collection::vec(gsm_char(), 0..400),
        ) {
            let text: String = basic.into_iter().collect();
            prop_assert_eq!(segments(&text).count, 1);
            prop_assert_eq!(segments(&text).units, text.chars().count());
            let text: String = mixed.into_iter().collect();
            let counted = segments(&text);
            prop_assert_eq!(counted.encoding, Encoding::Gsm7);
            prop_assert_eq!(counted.count == 1, counted.units <= 160);
        }

        #[test]
        fn plain_ascii_takes_one_part_per_153_characters(length in 161usize..2_000) {
            let text = "x".repeat(length);
            prop_assert_eq!(segments(&text).count, length.div_ceil(153));
        }

        #[test]
        fn appending_never_lowers_the_count(text in any_text(), more in any_text()) {
            let before = segments(&text);
            let after = segments(&format!("{text}{more}"));
            prop_assert!(after.count >= before.count);
            prop_assert!(after.units >= before.units || after.encoding != before.encoding);
        }

        #[test]
        fn the_count_fits_the_units(text in any_text()) {
            let counted = segments(&text);
            let (single, part) = match counted.encoding {
                Encoding::Gsm7 => (GSM7_SINGLE, GSM7_PART),
                Encoding::Ucs2 => (UCS2_SINGLE, UCS2_PART),
            };
            if counted.units <= single {
                prop_assert_eq!(counted.count, 1);
            } else {
                // At least the units spread over full parts, at most one more (a character
                // that did not fit at the end of each part wastes at most one unit there).
                prop_assert!(counted.count >= counted.units.div_ceil(part));
                prop_assert!(counted.count <= counted.units.div_ceil(part - 1));
            }
            if counted.encoding == Encoding::Ucs2 {
                prop_assert_eq!(counted.units, text.encode_utf16().count());
            }
        }
    }
}
