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
