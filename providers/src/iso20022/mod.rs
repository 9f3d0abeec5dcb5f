//! Banks over ISO 20022: pain.001 credit transfer initiations out, pain.002 status reports and
//! camt.052/053/054 account reports, statements and notifications in.
//!
//! The wire types use the standard's element names through serde (quick-xml matches elements by
//! local name, so a namespace prefix does not matter); the namespace on `Document` tells which
//! message and version arrived, and is checked before anything is read.

pub mod bank;
pub mod camt;
pub mod pain001;
pub mod pain002;

use serde::{Deserialize, Serialize};

use crate::ParseError;
use crate::money::{Currency, Money};

/// The namespace prefix every ISO 20022 message's `Document` declares, before `pain.002.001.10`.
const NAMESPACE_PREFIX: &str = "urn:iso:std:iso:20022:tech:xsd:";

/// The message identifier (`pain.002.001.10`) named by a `Document`'s default namespace, when it
/// is one of `family`'s (`pain.002`).
fn message_name(xmlns: Option<&str>, family: &str) -> Result<String, ParseError> {
    let xmlns = xmlns.ok_or_else(|| {
        ParseError::Unexpected(format!("no namespace on Document, want {family}"))
    })?;
    match xmlns.strip_prefix(NAMESPACE_PREFIX) {
        Some(name) if name.starts_with(family) && name[family.len()..].starts_with('.') => {
            Ok(name.to_owned())
        }
        _ => Err(ParseError::Unexpected(format!("namespace {xmlns:?} is not a {family} message"))),
    }
}

/// An amount with its currency attribute, as every ISO 20022 message writes one
/// (`<Amt Ccy="EUR">10.12</Amt>`).
#[derive(Debug, Serialize, Deserialize)]
struct WireAmount {
    #[serde(rename = "@Ccy")]
    currency: String,
    #[serde(rename = "$text")]
    value: String,
}

impl WireAmount {
    /// The amount as `Money`, refusing a scale finer than the currency allows rather than
    /// rounding it.
    fn to_money(&self) -> Result<Money, ParseError> {
        let currency = Currency::from_code(self.currency.trim())?;
        Ok(Money::parse(currency, self.value.trim())?)
    }
}

/// A code that the standard lets a bank give either from the external code list or as its own
/// (`<Cd>` or `<Prtry>`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CodeOrProprietary {
    cd: Option<String>,
    prtry: Option<String>,
}

impl CodeOrProprietary {
    fn code(&self) -> Option<String> {
        self.cd.as_ref().or(self.prtry.as_ref()).map(|code| code.trim().to_owned())
    }
}

/// Text content that is present and not blank, trimmed.
fn text(value: Option<&String>) -> Option<String> {
    value.map(|value| value.trim()).filter(|value| !value.is_empty()).map(str::to_owned)
}
