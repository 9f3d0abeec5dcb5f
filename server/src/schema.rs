//! OpenAPI schemas of unions that client generators can read: every variant a named schema,
//! never an inline object (a generator then has to invent names, and the common ones fail or
//! collide), and a discriminator wherever the JSON has a property that says which variant it
//! is.
//!
//! Two shapes of union are on the wire. *Keyed* ones are an object with exactly one key, which
//! says the variant (`{"purse": {...}}`, `{"string": "..."}`, serde's externally tagged enums).
//! *Typed* ones carry a `type` property beside the variant's own (serde's internally tagged
//! enums): those get an OpenAPI discriminator.

use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, Discriminator, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::{Ref, RefOr};

/// Any text: no NUL (U+0000), which no stored text can hold (a body with one is refused
/// whole, `invalid_body`). Added to every string the document does not constrain otherwise.
pub const TEXT: &str = r"^[^\u0000]*$";

/// Text that is not blank: something besides whitespace, and no NUL (`customers::check_text`).
/// Whitespace is Rust's (`char::is_whitespace`, Unicode's `White_Space`), listed, because a
/// regex's `\s` differs between engines (ECMA's has U+FEFF and lacks U+0085).
pub const WORDS: &str = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$";

/// Printable text that is not blank: no control character (Unicode category Cc, Rust's
/// `char::is_control`), and something besides whitespace.
pub const PRINTABLE: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u001f\u007f-\u009f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$";

/// A key or value of a customer's data (tags, secondary ids, activities, numbers): 1 to 256
/// characters, not blank (`WORDS`), as `customers::check_text` refuses.
pub fn key_text() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(crate::customers::KEY_LEN_MAX))
        .pattern(Some(WORDS))
        .build()
}

/// As [`key_text`], or absent or null.
pub fn optional_key_text() -> utoipa::openapi::schema::Object {
    let mut schema = key_text();
    schema.schema_type = utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]);
    schema
}

/// An app's or key's name: 1 to 100 characters, printable and not blank (`PRINTABLE`), as
/// `tenancy::valid_name` refuses.
pub fn name() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(crate::tenancy::NAME_LEN_MAX))
        .pattern(Some(PRINTABLE))
        .build()
}

/// Standard base64 with padding (RFC 4648 section 4), as `customers::data` decodes it.
/// The last character before padding carries only zero bits past the data: `QQ==` is "A",
/// `QR==` is refused.
pub const BASE64: &str =
    r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

/// A decimal amount as written, not negative: digits, and decimals after a point. Whether
/// it has more decimals than its currency, or is zero where a positive amount is needed, is
/// for the server to say (`invalid_amount`).
pub const AMOUNT: &str = r"^[0-9]+(\.[0-9]+)?$";

/// The schemas to add to the document: name and schema.
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// One variant of a keyed union: the name of its schema, its key, what the key holds, and
/// what it means.
#[derive(Clone, Copy, Debug)]
pub struct Keyed {
    pub name: &'static str,
    pub key: &'static str,
    pub holds: Holds,
    pub description: &'static str,
}

/// What a keyed variant's key holds.
#[derive(Clone, Copy, Debug)]
pub enum Holds {
    /// A named schema.
    Schema(&'static str),
    /// A string.
    Text,
    /// Bytes as standard base64 with padding.
    Base64,
}

/// The union of keyed variants: `oneOf` their schemas, by reference.
pub fn keyed_union(description: &str, variants: &[Keyed]) -> RefOr<Schema> {
    variants
        .iter()
        .fold(OneOfBuilder::new().description(Some(description)), |one_of, variant| {
            one_of.item(Ref::from_schema_name(variant.name))
        })
        .into()
}

/// The named schema of each keyed variant: an object with the one key, required, and nothing
/// else.
pub fn keyed_variants(variants: &[Keyed], schemas: &mut Schemas) {
    for variant in variants {
        let holds: RefOr<Schema> = match variant.holds {
            Holds::Schema(name) => Ref::from_schema_name(name).into(),
            Holds::Text => ObjectBuilder::new().schema_type(Type::String).into(),
            Holds::Base64 => ObjectBuilder::new()
                .schema_type(Type::String)
                .content_encoding("base64")
                .pattern(Some(BASE64))
                .into(),
        };
        let schema = ObjectBuilder::new()
            .description(Some(variant.description))
            .property(variant.key, holds)
            .required(variant.key)
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
        schemas.push((variant.name.to_owned(), schema.into()));
    }
}

/// One variant of a typed union: the value of its `type`, the name of its schema, and the
/// named schema of the rest of its properties.
#[derive(Clone, Copy, Debug)]
pub struct Typed {
    pub kind: &'static str,
    pub name: &'static str,
    pub of: &'static str,
}

/// The union of typed variants: `oneOf` their schemas, by reference, with a discriminator on
/// `type` that maps each value to its schema.
pub fn typed_union(description: &str, variants: &[Typed]) -> RefOr<Schema> {
    let mut discriminator = Discriminator::new("type");
    for variant in variants {
        discriminator
            .mapping
            .insert(variant.kind.to_owned(), format!("#/components/schemas/{}", variant.name));
    }
    variants
        .iter()
        .fold(OneOfBuilder::new().description(Some(description)), |one_of, variant| {
            one_of.item(Ref::from_schema_name(variant.name))
        })
        .discriminator(Some(discriminator))
        .into()
}

/// The named schema of each typed variant: its own schema and a required `type` of its one
/// value.
pub fn typed_variants(variants: &[Typed], schemas: &mut Schemas) {
    for variant in variants {
        let kind = ObjectBuilder::new()
            .property(
                "type",
                ObjectBuilder::new().schema_type(Type::String).enum_values(Some([variant.kind])),
            )
            .required("type");
        let schema = AllOfBuilder::new().item(Ref::from_schema_name(variant.of)).item(kind);
        schemas.push((variant.name.to_owned(), schema.into()));
    }
}

/// Reads an optional whole number as JSON Schema counts one: `integer` is any number without a
/// fraction, so `60.0` is one (serde's `u64` refuses it, and a client that writes numbers as
/// floats, as JavaScript may, would be refused for what the document allows).
///
/// # Errors
///
/// A number with a fraction, a negative one, or one past `u64`.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    use serde::Deserialize as _;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(whole) = number.as_u64() {
        return Ok(Some(whole));
    }
    // A float: whole, not negative and within `u64`, or refused. `u64::MAX as f64` rounds up
    // to 2^64, which is itself past the range.
    #[allow(clippy::cast_precision_loss, reason = "only to compare with the range's end")]
    let end = u64::MAX as f64;
    match number.as_f64() {
        Some(float) if float.fract() == 0.0 && (0.0..end).contains(&float) =>
        {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "whole, not negative and below 2^64, checked above"
            )]
            Ok(Some(float as u64))
        }
        _ => Err(serde::de::Error::custom(format!("expected a whole number, not {number}"))),
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Whole {
        #[serde(default, deserialize_with = "super::whole_number")]
        n: Option<u64>,
    }

    /// The whitespace the patterns list is exactly Rust's, which `trim` takes off.
    #[test]
    fn the_patterns_whitespace_is_rusts() {
        let listed =
            r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
        assert!(super::WORDS.contains(listed));
        // Reads the listed characters: escapes `\t \n \f \r \uXXXX`, plain ones, `a-b` ranges.
        let mut chars = Vec::new();
        let mut rest = listed;
        while !rest.is_empty() {
            let (c, after) = match rest.strip_prefix('\\') {
                Some(escape) => match escape.chars().next() {
                    Some('u') => {
                        let code = u32::from_str_radix(&escape[1..5], 16).unwrap();
                        (char::from_u32(code).unwrap(), &escape[5..])
                    }
                    Some(letter) => {
                        let c = match letter {
                            't' => '\t',
                            'n' => '\n',
                            'f' => '\u{c}',
                            'r' => '\r',
                            other => panic!("escape {other}"),
                        };
                        (c, &escape[1..])
                    }
                    None => panic!("a lone backslash"),
                },
                None => {
                    (rest.chars().next().unwrap(), &rest[rest.chars().next().unwrap().len_utf8()..])
                }
            };
            if let Some(range) = after.strip_prefix('-') {
                let end = u32::from_str_radix(&range[2..6], 16).unwrap();
                chars.extend((u32::from(c)..=end).filter_map(char::from_u32));
                rest = &range[6..];
            } else {
                chars.push(c);
                rest = after;
            }
        }
        let rusts: Vec<char> =
            (0..=0x10_FFFF).filter_map(char::from_u32).filter(|c| c.is_whitespace()).collect();
        chars.sort_unstable();
        assert_eq!(chars, rusts);
        assert!(
            super::PRINTABLE.contains(r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000")
        );
    }

    #[test]
    fn a_whole_number_may_be_written_as_a_float_and_nothing_else_passes() {
        let read = |json: &str| serde_json::from_str::<Whole>(json).map(|whole| whole.n);
        for (json, n) in [
            ("{}", None),
            (r#"{"n":null}"#, None),
            (r#"{"n":60}"#, Some(60)),
            (r#"{"n":60.0}"#, Some(60)),
            (r#"{"n":6e1}"#, Some(60)),
            (r#"{"n":0}"#, Some(0)),
        ] {
            assert_eq!(read(json).ok(), Some(n), "{json}");
        }
        for json in
            [r#"{"n":60.5}"#, r#"{"n":-1}"#, r#"{"n":-1.0}"#, r#"{"n":1e20}"#, r#"{"n":"60"}"#]
        {
            assert!(read(json).is_err(), "{json}");
        }
    }
}
