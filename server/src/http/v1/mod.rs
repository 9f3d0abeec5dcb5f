//! The customer-scoped HTTP API under `/v1/`: tenancy and keys, customers, purses, wallets,
//! payments, transfers, accounts and reports.
//!
//! Every handler authenticates its caller ([`auth::Caller`]), reads only within the caller's
//! org (another org's resources answer 404, exactly like missing ones), and turns bad input
//! into a problem response with a stable code ([`crate::http::problem::ApiError`]) before anything changes.

pub mod customers;
mod errors;
pub mod events;
#[cfg(test)]
mod examples;
pub mod finance;
mod links;
pub mod messaging;
pub mod money;
pub mod payment_channels;
pub mod payments;
pub mod periods;
pub mod reconciliation;
pub mod tags;
pub mod tenancy;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use utoipa::OpenApi as _;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use crate::code::Code;
use crate::http::AppState;

/// Largest request body accepted.
pub const BODY_BYTES_MAX: usize = 256 * 1024;
/// Largest page a list returns.
pub const PAGE_SIZE_MAX: i64 = 500;
/// Page size when none is asked for.
pub const PAGE_SIZE_DEFAULT: i64 = 50;
/// The OpenAPI document's frame; the paths and schemas come from the handlers.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    info(
        title = "Hazina API",
        description = "Customers, purses, wallets, payments and the ledger beneath them. \
            Every request carries an API key (`Authorization: Bearer hz_…`): an org key manages \
            the org, an app key acts for one app. Errors are `application/problem+json` with a \
            stable `code`. Limits: bodies of at most 256 KiB, pages of at most 500 items."
    ),
    servers((url = "/", description = "The server that serves this document")),
    tags(
        (name = "apps", description = "The org's apps: each keeps its own data about customers \
            and acts through its own keys (org key)."),
        (name = "keys", description = "API keys: org keys manage the org, app keys act for one \
            app; a key's secret is shown once, when it is made (org key)."),
        (name = "customers", description = "Customers, found or made by number or secondary id, \
            and what is kept about them: tags, secondary ids, metadata, each app's data, \
            reminders, activities, their state and timeline."),
        (name = "tags", description = "Tags across customers: the customers with a tag, a tag \
            set on or removed from many at once, and each app's reminders for every customer \
            with a tag."),
        (name = "purses", description = "The org's own money holders."),
        (name = "wallets", description = "Customers' money holders, each in one currency."),
        (name = "payments", description = "Payments between purses, wallets, payment channels \
            and customers' mobile money, with the context they carry."),
        (name = "payment-channels", description = "The org's accounts at mobile-money \
            providers (M-Pesa paybills and tills, MTN MoMo), through which money enters and \
            leaves (org key)."),
        (name = "transfers", description = "The ledger's double-entry transfers, one at a time \
            or in batches."),
        (name = "accounts", description = "Any account of the org, its balance and statement."),
        (name = "events", description = "What happened that an app may care about, in the \
            order it happened: a page at a time, or as a stream of Server-Sent Events."),
        (name = "reports", description = "The books as finance closes them: trial balance and \
            general ledger, as JSON or CSV, balance sheet and income statement (org key)."),
        (name = "messaging", description = "Messages to and from customers on SMS, USSD, \
            voice, WhatsApp, Messenger, Telegram and email: the org's channels (org key), \
            messages one at a time or to everyone with a tag, their statuses with the \
            platform's codes, and customers' consent. A message's cost is reserved from the \
            channel's purse when it is queued and posted or voided on the provider's answer."),
        (name = "reconciliation", description = "Proving the ledger against providers' and \
            banks' statements (org key): statement files imported once per line, runs that \
            match lines with the clearing account's transfers, exceptions for what does not \
            match and their resolutions (each a ledger transfer or a recorded decision), the \
            clearing account's drift, and payments stuck with their provider."),
        (name = "webhooks", description = "Endpoints the org's events are POSTed to, signed as \
            Standard Webhooks sign them (`webhook-id`, `webhook-timestamp`, \
            `webhook-signature`), at least once, a customer's in order, retried for three days; \
            their secrets, delivery log and redeliveries. An app key manages its app's \
            endpoints, an org key all."),
    ),
    modifiers(&BearerKeys),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// Declares the bearer API keys.
struct BearerKeys;

impl utoipa::Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The `/v1` routes and the OpenAPI document that describes them (as JSON).
pub fn routes() -> (Router<AppState>, serde_json::Value) {
    let (router, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(tenancy::routes())
        .merge(customers::routes())
        .merge(tags::routes())
        .merge(money::routes())
        .merge(finance::routes())
        .merge(periods::routes())
        .merge(payment_channels::routes())
        .merge(payments::routes())
        .merge(events::routes())
        .merge(webhooks::routes())
        .merge(messaging::routes())
        .merge(reconciliation::routes())
        .split_for_parts();
    let mut document = serde_json::to_value(&document).unwrap_or_default();
    payment_channels::document_deprecated_routes(&mut document);
    events::document_payloads(&mut document);
    links::document(&mut document);
    errors::document(&mut document);
    problems_as_problem_json(&mut document);
    texts_hold_no_nul(&mut document);
    let router = router.merge(payment_channels::deprecated_routes());
    (router.layer(DefaultBodyLimit::max(BODY_BYTES_MAX)), document)
}

/// Declares every `Problem` response as `application/problem+json`, the content type it is
/// sent with (the handlers' annotations can only say `application/json`).
fn problems_as_problem_json(document: &mut serde_json::Value) {
    let Some(paths) = document.get_mut("paths").and_then(serde_json::Value::as_object_mut) else {
        return;
    };
    let operations = paths
        .values_mut()
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut().filter_map(|operation| operation.get_mut("responses")));
    for responses in operations.filter_map(serde_json::Value::as_object_mut) {
        for response in responses.values_mut() {
            let Some(content) =
                response.get_mut("content").and_then(serde_json::Value::as_object_mut)
            else {
                continue;
            };
            let is_problem = content
                .get("application/json")
                .and_then(|json| json.pointer("/schema/$ref"))
                .is_some_and(|reference| reference == "#/components/schemas/Problem");
            if is_problem && let Some(json) = content.remove("application/json") {
                content.insert("application/problem+json".to_owned(), json);
            }
        }
    }
}

/// States the rule that holds for every text (`crate::schema::TEXT`: no NUL) on each string
/// and map key that states nothing stricter, so that the document says what the server
/// accepts: a body with a NUL anywhere is refused whole. Not for the `Problem` schema, whose
/// `detail` may quote the request.
fn texts_hold_no_nul(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(object) => {
            let is_string = match object.get("type") {
                Some(Value::String(kind)) => kind == "string",
                Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == "string"),
                _ => false,
            };
            let constrained = ["pattern", "format", "enum", "const", "contentEncoding"]
                .iter()
                .any(|key| object.contains_key(*key));
            if is_string && !constrained {
                object.insert("pattern".to_owned(), crate::schema::TEXT.into());
            }
            let is_map = object.get("additionalProperties").is_some_and(Value::is_object);
            if is_map && !object.contains_key("propertyNames") {
                let names = serde_json::json!({ "type": "string", "pattern": crate::schema::TEXT });
                object.insert("propertyNames".to_owned(), names);
            }
            for (key, value) in object.iter_mut() {
                // A problem's `detail` may quote what was wrong with a request, NUL included.
                if key != "Problem" {
                    texts_hold_no_nul(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(texts_hold_no_nul),
        _ => {}
    }
}

/// A page size from a query: the default when absent, refused outside 1..=max.
pub fn page_size(limit: Option<i64>) -> Result<i64, crate::http::problem::ApiError> {
    match limit {
        None => Ok(PAGE_SIZE_DEFAULT),
        Some(limit) if (1..=PAGE_SIZE_MAX).contains(&limit) => Ok(limit),
        Some(_) => Err(crate::http::problem::ApiError::bad_request(
            Code::InvalidLimit,
            format!("limit must be between 1 and {PAGE_SIZE_MAX}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::code::Code;

    #[test]
    fn every_problem_code_is_documented_with_its_meaning() {
        let (_, document) = super::routes();
        let code = &document["components"]["schemas"]["Problem"]["properties"]["code"];
        let code = match code.get("$ref").and_then(serde_json::Value::as_str) {
            Some(reference) => {
                &document["components"]["schemas"][reference.rsplit('/').next().unwrap_or_default()]
            }
            None => code,
        };
        let listed: Vec<&str> = code["enum"]
            .as_array()
            .map(|codes| codes.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        let description = code["description"].as_str().unwrap_or_default();
        for code in Code::ALL {
            assert!(listed.contains(&code.as_str()), "{code} is not listed in the document");
            assert!(
                description.contains(&format!("`{code}`: {}", code.meaning())),
                "{code} is not explained in the document"
            );
        }
        assert_eq!(listed.len(), Code::ALL.len(), "the document lists codes that do not exist");
    }

    /// Calls `visit` with every object of the document and its JSON pointer.
    fn objects(
        value: &serde_json::Value,
        path: &str,
        visit: &mut impl FnMut(&serde_json::Map<String, serde_json::Value>, &str),
    ) {
        match value {
            serde_json::Value::Object(object) => {
                visit(object, path);
                for (key, value) in object {
                    objects(value, &format!("{path}/{key}"), visit);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    objects(item, &format!("{path}/{i}"), visit);
                }
            }
            _ => {}
        }
    }

    /// Every pattern in the document is one of the rules `crate::schema` names (or one of the
    /// few written beside their field and listed here), so that an attribute's copy of a rule
    /// cannot drift from it; and every string states one.
    #[test]
    fn every_text_states_its_rule_and_every_rule_is_a_known_one() {
        let known = [
            crate::schema::TEXT,
            crate::schema::WORDS,
            crate::schema::PRINTABLE,
            crate::schema::BASE64,
            crate::schema::AMOUNT,
            // Wallet ids, provider URLs, timeline cursors.
            "^[A-Za-z0-9._-]+$",
            r"^https?://[^\s\u0000]+$",
            // Messaging channels' addresses: a provider's API, or an SMTP server.
            r"^(https?|smtps?|smtp\+starttls)://[^\s\u0000]+$",
            // Bank accounts (IBANs printed with spaces), BICs, cut-off times and UTC offsets
            // (`payment_channels::BankDetailsBody`, `money::BankAccountRef`).
            "^[A-Za-z0-9 ]*[A-Za-z0-9][A-Za-z0-9 ]*$",
            "^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$",
            "^([01][0-9]|2[0-3]):[0-5][0-9]$",
            "^[+-](0[0-9]|1[0-4]):[0-5][0-9]$",
            crate::customers::timeline::CURSOR_PATTERN,
            super::events::TYPES_PATTERN,
        ];
        let (_, document) = super::routes();
        let mut found = Vec::new();
        objects(&document, "", &mut |object, path| {
            if let Some(pattern) = object.get("pattern").and_then(|p| p.as_str())
                && !known.contains(&pattern)
            {
                found.push(format!("{path}: {pattern}"));
            }
            let is_string = object.get("type").is_some_and(|kind| {
                kind == "string" || kind.as_array().is_some_and(|k| k.contains(&"string".into()))
            });
            let stated = ["pattern", "format", "enum", "const", "contentEncoding"]
                .iter()
                .any(|key| object.contains_key(*key));
            // The answers' `Problem` quotes requests and states no rule.
            let quotes = path.starts_with("/components/schemas/Problem/");
            if is_string && !stated && !quotes {
                found.push(format!("{path}: a string without a rule"));
            }
        });
        assert!(found.is_empty(), "{found:#?}");
    }

    /// Client generators name what the document leaves unnamed, and the usual ones fail on
    /// unions of inline objects (openapi-python-client dropped every payment party): every
    /// member of a `oneOf` or `anyOf` is a reference to a named schema (or `null`).
    #[test]
    fn every_union_is_of_named_schemas() {
        let (_, document) = super::routes();
        let mut inline = Vec::new();
        objects(&document, "", &mut |object, path| {
            for union in ["oneOf", "anyOf"] {
                let members = object.get(union).and_then(serde_json::Value::as_array);
                for (i, member) in members.into_iter().flatten().enumerate() {
                    let named = member.get("$ref").is_some()
                        || member.get("type").is_some_and(|kind| kind == "null");
                    if !named {
                        inline.push(format!("{path}/{union}/{i}"));
                    }
                }
            }
        });
        assert!(inline.is_empty(), "unions with inline members: {inline:?}");
    }

    /// A union whose JSON says which member it is carries a discriminator that maps each value
    /// to a schema the document has.
    #[test]
    fn typed_unions_map_their_discriminator_to_schemas() {
        let (_, document) = super::routes();
        let item = &document["components"]["schemas"]["TimelineItem"];
        assert_eq!(item["discriminator"]["propertyName"], "type", "{item}");
        let mapping = item["discriminator"]["mapping"].as_object().cloned().unwrap_or_default();
        assert_eq!(mapping.len(), 3, "{item}");
        for target in mapping.values() {
            let name = target.as_str().and_then(|t| t.rsplit('/').next()).unwrap_or_default();
            assert!(document["components"]["schemas"][name].is_object(), "{target} is missing");
        }
    }
}
