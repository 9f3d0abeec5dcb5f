//! The customer-scoped HTTP API under `/v1/`: tenancy and keys, customers, purses, wallets,
//! payments, transfers, accounts and reports.
//!
//! Every handler authenticates its caller ([`auth::Caller`]), reads only within the caller's
//! org (another org's resources answer 404, exactly like missing ones), and turns bad input
//! into a problem response with a stable code ([`crate::http::problem::ApiError`]) before anything changes.

pub mod customers;
pub mod finance;
pub mod money;
pub mod payment_channels;
pub mod payments;
pub mod tenancy;

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
        .merge(money::routes())
        .merge(finance::routes())
        .merge(payment_channels::routes())
        .merge(payments::routes())
        .split_for_parts();
    let mut document = serde_json::to_value(&document).unwrap_or_default();
    payment_channels::document_deprecated_routes(&mut document);
    problems_as_problem_json(&mut document);
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
}
